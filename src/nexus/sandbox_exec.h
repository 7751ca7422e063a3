/* sandbox_exec.h — `nexusd sandbox exec`: one command under the full untrusted stack
 * (cgroup + bwrap + seccomp + Landlock + egress proxy in a libuv loop), for debugging, the
 * security tests and the benchmarks (contract: sandbox_contract.md "Debug/bench entry point").
 *
 *   nexusd sandbox exec [-c FILE] [--workspace DIR] [--net JSON] [--limits JSON] [--cwd P]
 *                       [--rootfs DIR] [--audit FILE] [--timeout SECONDS] -- COMMAND...
 *
 * COMMAND is an argv (use `sh -c '...'` for a shell line). stdout/stderr stream through;
 * proxy audit records are written as JSONL to --audit (default: stderr, each line prefixed
 * "[egress] "). Exit: the command's exit code (128+N when killed by signal N; 124 after
 * --timeout), or 125 with a one-line "nexusd sandbox exec: ..." error when the sandbox could
 * not be set up. Defaults: workspace = a fresh temporary directory (removed afterwards),
 * net = {"mode":"none"}, limits = none besides the default pids limit. --limits takes
 * {"cpu": millicores, "memory_mb": N, "pids": N}. With -c the bwrap.* keys of that config
 * apply (bwrap_path, rootfs_path, sandbox_helper_path, sandbox_uid, pids_limit). */
#pragma once

/* argv[0] is "sandbox". Returns the process exit code. */
int nx_sandbox_exec_main(int argc, char **argv);
