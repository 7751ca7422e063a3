/* agent/gitsafe.h — git for the daemon, without repository code on the host (DESIGN D15).
 *
 * Every git the daemon runs for the host profile (clone, diff collection) runs inside a
 * throw-away bubblewrap jail: no capabilities, its own PID/IPC/UTS namespaces,
 * a read-only /usr, a private /tmp, the facility at /workspace (read-only for diff), no
 * network except for clone, and no host configuration (GIT_CONFIG_NOSYSTEM, global config
 * /dev/null, HOME in the jail's tmpfs). On top of the jail, config-driven execution is
 * switched off on the command line (core.fsmonitor, core.hooksPath, diff.external,
 * --no-ext-diff, --no-textconv), so a planted .git/config normally runs nothing at all and,
 * if git ever did run something, it would run jailed. The diff replaces .git/config with a
 * clean one and pins GIT_DIR/GIT_COMMON_DIR to /workspace/.git, so a planted commondir cannot
 * point git at another config. Without bwrap nothing runs (fail closed): no clone, no diff.
 * The untrusted profile clones inside its own sandbox instead (sandbox/bwrap.h, through the
 * directive's egress proxy) with nx_git_safe_args()/nx_git_safe_env(), and collects its diff
 * there too (nx_git_diff_sandboxed, no network).
 *
 * These functions block (fork, pipes, waitpid): call them from the uv thread pool. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct nx_git_result {
        int exit_code;                  /* git's exit code, 128+N for a signal, -1 unknown */
        bool timed_out;
        uint8_t *out;                   /* stdout, bounded (diff); malloc'd */
        size_t out_len;
        bool out_truncated;             /* stdout was longer than the cap */
        char log[4096];                 /* stderr (+ stdout for clone), bounded tail */
} nx_git_result;

void nx_git_result_free(nx_git_result *r);

/* The `-c` options that switch config-driven execution off for one git invocation (D15):
 * core.fsmonitor, core.hooksPath, diff.external, credential helpers, file/ext protocols...
 * NULL-terminated, static. Used here and by the untrusted profile's in-sandbox clone. */
const char *const *nx_git_safe_args(void);
/* The environment git runs with: no system or global config, no prompts, no pager.
 * NULL-terminated "K=V", static. */
const char *const *nx_git_safe_env(void);

/* git clone --depth 1 -- <url> . into the (empty) facility directory. The URL must already
 * have passed nx_repo_url_check(). */
int nx_git_clone(const char *bwrap_path, const char *facility_path, const char *repo_url,
                 int64_t timeout_ms, nx_git_result *res, err_t *err);

/* git diff HEAD of the facility, stdout capped at max_bytes (out_truncated when cut). A
 * facility without a .git directory gives exit_code 0 and an empty diff. */
int nx_git_diff(const char *bwrap_path, const char *facility_path, size_t max_bytes,
                int64_t timeout_ms, nx_git_result *res, err_t *err);

/* The untrusted profile's diff (DESIGN D15, security review M3): the same git diff HEAD,
 * arguments and output handling (cap, out_truncated, timeout) as nx_git_diff, but run inside
 * the directive's own sandbox stack (sandbox/bwrap.h): a fresh cgroup "<directive_id>.diff"
 * with base's limits, bwrap with the seccomp filter, nexus-sandbox (Landlock, base->fs),
 * the sandbox uid when base->drop_ids, and no network (no proxy listener is opened in the
 * empty netns). base is the directive's own nx_bwrap_run; its command/shell/argv/cwd/envp/
 * net/repo_url are replaced. The repository's own config may run (filters, ...): with the
 * directive's privileges only. At the deadline the whole cgroup is killed (timed_out, -1
 * with "timed out"). No .git directory: exit_code 0, empty diff. */
struct nx_bwrap_run;
int nx_git_diff_sandboxed(const struct nx_bwrap_run *base, size_t max_bytes, int64_t timeout_ms,
                          nx_git_result *res, err_t *err);
