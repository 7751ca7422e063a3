/* sandbox/bwrap.h — the `bwrap` driver of the `untrusted` profile minus the event loop
 * (spec nexus §6.2, §6.0, §6.6; DESIGN D12–D15; contract: sandbox_contract.md).
 *
 * One directive = one fresh cgroup (limits + a default pids limit, joined before exec) →
 * bubblewrap with every namespace, no capabilities, no nested user namespaces and a seccomp
 * filter (N1's memfd, `--seccomp FD`) → nexus-sandbox bound at /run/nexus/sandbox (Landlock +
 * rlimits, then exec) → the shell. The system tree is read-only: a prepared rootfs bound at /,
 * or the host's /usr (+ merged-usr symlinks) with a GENERATED minimal /etc — never the host's
 * /etc (Appendix B #2). The facility is the only writable host path (/workspace); /tmp and
 * /run are private tmpfs. The network namespace is empty: nexusd opens the egress proxy's
 * listener inside it (sandbox/netns.h) after reading the sandbox's pid from --info-fd, and only
 * then releases the command through --block-fd.
 *
 * Differences from the reference argv (§6.2, vectors #118–125), all deliberate (D13):
 *   - no host /etc: a generated one (passwd, group, hosts, nsswitch.conf, resolv.conf that
 *     resolves nothing) plus read-only binds of the public bits tools need (/etc/ssl/certs,
 *     /etc/ca-certificates*, /etc/alternatives, /etc/ld.so.cache, /etc/localtime, ...);
 *   - no socat and no wrapper script: the proxy listener is created in the sandbox netns by
 *     nexusd (setns), and the command is exec'd by nexus-sandbox directly;
 *   - the environment is given with --clearenv/--setenv (no re-exec through env -i);
 *   - --unshare-all --unshare-user --disable-userns, --seccomp, --info-fd, --block-fd;
 *   - --chdir goes straight to the requested cwd (REF: always /workspace, then `cd` in the
 *     wrapper) unless a clone runs first, which needs /workspace as its cwd.
 *
 * Identity (decided after trying both on this machine; docs/architecture.md "Untrusted profile
 * run sequence"): when nexusd is root, bwrap is started with drop_ids as a dedicated
 * unprivileged host uid (config sandbox.uid, default NX_SANDBOX_DEFAULT_UID), so the sandboxed
 * process is never host uid 0 even in the user namespace bwrap creates; inside it appears as
 * uid/gid NX_BWRAP_INNER_UID "sandbox". The facility root is chowned to that uid (files the
 * sandbox writes are owned by it on the host) and every bind source must be reachable by it
 * (work_dir is made 0711 by the daemon). A non-root nexusd runs bwrap as itself (the reference
 * model). For this profile the end-of-run git diff runs in the same stack, as the sandbox uid
 * (nx_git_diff_sandboxed); only the host profile's diff reads them from the gitsafe jail.
 *
 * Usage: nx_bwrap_prepare() → nx_bwrap_start() (nx_spawn, nx_bwrap_after_spawn,
 * nx_bwrap_child_pid, nx_netns_listen_child → the proxy adopts it, nx_bwrap_release)
 * → loop reads pipes / polls the pidfd → nx_child_kill_tree(&child,
 * prep.cgroup, SIGKILL) on deadline/cancel → reap → nx_run_outcome() → nx_bwrap_prepared_free().
 * Not thread-safe per object; no global state. */
#pragma once
#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/error.h"
#include "sandbox/cgroup.h"
#include "sandbox/proctree.h"

#define NX_BWRAP_WORKSPACE "/workspace"
#define NX_BWRAP_HELPER_DEST "/run/nexus/sandbox"   /* nexus-sandbox inside */
#define NX_BWRAP_HELPER_NAME "nexus-sandbox"
#define NX_EGRESS_HOST "127.0.0.1"
#define NX_EGRESS_PORT 9080
#define NX_SANDBOX_DEFAULT_PIDS 512
/* Host uid/gid the sandbox runs as when nexusd is root: Debian reserves 65000-65533 (never
 * allocated to an account), so no other process shares it. */
#define NX_SANDBOX_DEFAULT_UID 65100
/* uid/gid inside the sandbox (named "sandbox" in the generated /etc/passwd). */
#define NX_BWRAP_INNER_UID 1000
#define NX_BWRAP_INNER_GID 1000
/* Descriptor numbers in bwrap's process. */
#define NX_BWRAP_FD_SECCOMP 3
#define NX_BWRAP_FD_INFO 4
#define NX_BWRAP_FD_BLOCK 5
/* The PATH inside (and of the bwrap process, §6.2 step 5). */
#define NX_BWRAP_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
/* How long nx_bwrap_child_pid waits for --info-fd (bwrap writes it right after clone). */
#define NX_BWRAP_INFO_TIMEOUT_MS 5000
/* Hard caps on what one argv may hold. */
#define NX_BWRAP_MAX_ARGS 512
#define NX_BWRAP_MAX_ENV 96

/* One untrusted run. Strings are borrowed and must outlive the prepared struct. */
typedef struct nx_bwrap_run {
        const char *directive_id;    /* cgroup name: ^[A-Za-z0-9][A-Za-z0-9_.-]*$ */
        const char *command;         /* shell command (non-empty) unless argv is given */
        const char *shell;           /* NULL or "" → /bin/sh */
        char *const *argv;           /* `sandbox exec`: run this argv instead of shell -c */
        const char *facility_path;   /* absolute host path, bound read-write at /workspace */
        const char *cwd;             /* as requested (§6.2 step 2 rules) */
        char *const *envp;           /* directive variables (nx_env_standard); PATH, HOME and
                                      * the proxy variables are added, keys validated */
        nx_cgroup_limits limits;     /* pids_max 0 → default_pids */
        int64_t default_pids;        /* 0 → NX_SANDBOX_DEFAULT_PIDS */
        const char *rootfs_path;     /* NULL/"" → host /usr + generated /etc */
        const json_t *net;           /* NetCapabilityV1 (borrowed) or NULL: enforced by the
                                      * proxy, echoed by nx_bwrap_summary */
        const json_t *fs;            /* FsCapabilityV1 (borrowed) or NULL: writable_roots /
                                      * read_only_subpaths become Landlock rules (§6.5) */
        const char *bwrap_path;      /* absolute (nx_bwrap_find) */
        const char *helper_path;     /* nexus-sandbox, absolute (nx_bwrap_find_helper) */
        int landlock_min_abi;        /* --min-abi for nexus-sandbox; 0 = best available */
        uint16_t proxy_port;         /* 0 → NX_EGRESS_PORT */
        const char *repo_url;        /* non-NULL: git clone into the empty workspace first,
                                      * inside this sandbox, through the proxy (D15) */
        bool drop_ids;               /* run bwrap as uid/gid (nexusd is root) */
        uid_t uid;
        gid_t gid;
        const char *tmp_dir;         /* parent of the shared generated /etc; NULL → $TMPDIR,
                                      * /tmp */
        const nx_cgroup_sys *cgroup_sys;   /* NULL: the real system */
} nx_bwrap_run;

/* What the pure argv builder needs besides the request. */
typedef struct nx_bwrap_layout {
        const char *etc_dir;         /* generated /etc (host path); unused with a rootfs */
        bool lib64_symlink;          /* host /lib64 is a symlink → --symlink usr/lib64 /lib64 */
        const char *const *etc_binds;/* NULL-terminated host /etc paths bound read-only over
                                      * the generated /etc (those that exist) */
        int seccomp_fd;              /* descriptor numbers in bwrap's process */
        int info_fd;
        int block_fd;
} nx_bwrap_layout;

/* Everything one run needs; req points into this struct (do not copy it). */
typedef struct nx_bwrap_prepared {
        nx_spawn_req req;
        nx_cgroup *cgroup;           /* owned; never NULL after a successful prepare */
        char **argv;                 /* owned (nx_bwrap_argv_free) */
        char *envp[5];               /* bwrap's own environment (§6.2 step 5), static strings */
        nx_spawn_fd fds[3];
        int seccomp_fd;              /* parent copies, closed by after_spawn/free */
        int info_rd, info_wr;
        int block_rd, block_wr;
        pid_t child_pid;             /* from --info-fd, 0 until read */
        char tmp_dir[PATH_MAX];      /* per-run private dir removed at free; "" if none (the
                                      * generated /etc is shared: nx_bwrap_etc_shared) */
        char cwd[PATH_MAX];          /* in-sandbox cwd */
        char host_cwd[PATH_MAX];     /* where bwrap itself starts ("/") */
} nx_bwrap_prepared;

/* §6.2 step 2: ""/"." → /workspace; relative → /workspace/<rel>; cleaned; must be
 * /workspace or below, else `cwd "<x>" escapes workspace` (vectors #121, #124). */
int nx_bwrap_resolve_cwd(const char *cwd, char *out, size_t outsz, err_t *err);

/* The environment inside: PATH, HOME=/workspace, the directive's variables (keys checked
 * with nx_env_key_valid: `invalid env key: "<k>"`), then the proxy variables
 * (HTTP(S)_PROXY/http(s)_proxy = http://127.0.0.1:<port>, ALL_PROXY/all_proxy =
 * socks5h://127.0.0.1:<port>, NO_PROXY/no_proxy empty) and NX_EGRESS_PORT, which override.
 * NULL-terminated "K=V" array, free with nx_env_free. */
char **nx_bwrap_sandbox_env(char *const *directive_env, uint16_t port, err_t *err);

/* Pure: the full argv for in + lay (see the top of this file for its shape). Checks what the
 * reference checks (`bwrap path is required`, `facility path is required`, the cwd escape)
 * plus the helper path, the command, the env keys. NULL-terminated, owned strings. */
char **nx_bwrap_build_argv(const nx_bwrap_run *in, const nx_bwrap_layout *lay, err_t *err);
void nx_bwrap_argv_free(char **argv);

/* The host /etc paths bound read-only into the sandbox's /etc when they exist (public data
 * only: CA certificates, alternatives symlinks, the loader cache, zone info, ...). */
const char *const *nx_bwrap_etc_binds(void);

/* Writes the generated /etc into dir (created 0755 by the caller): passwd, group, hosts,
 * nsswitch.conf, resolv.conf (no nameserver: names resolve only through the proxy), and the
 * mount points the binds need. Files 0644, nothing secret. */
int nx_bwrap_write_etc(const char *dir, err_t *err);

/* Checks that dir is exactly what nx_bwrap_write_etc writes, as made by the shared cache:
 * the directory 0755, every file 0644 with the expected content and one link, every mount
 * point of the right type, all owned by our euid; nothing followed through a symlink. */
int nx_bwrap_verify_etc(const char *dir, err_t *err);

/* The generated /etc shared by every run of this process (the content is static): made once
 * under parent (an absolute directory; prepare uses in->tmp_dir, else $TMPDIR, else /tmp) as
 * <parent>/nexus-etc-XXXXXX/etc (mkdtemp + O_EXCL/O_NOFOLLOW creates), verified with
 * nx_bwrap_verify_etc before every reuse and made again when anything differs. out gets the
 * etc path. Removed at exit (atexit, only by the process that made it) or by
 * nx_bwrap_etc_shared_release(). Thread-safe (a mutex). */
int nx_bwrap_etc_shared(const char *parent, char *out, size_t outsz, err_t *err);
void nx_bwrap_etc_shared_release(void);

/* Checks the request, resolves the cwd, creates the cgroup (limits + pids, fail closed), gets
 * the seccomp memfd, makes the info/block pipes and the generated /etc, chowns the facility
 * root to in->uid when drop_ids, and builds argv. On failure nothing is left behind. */
int nx_bwrap_prepare(const nx_bwrap_run *in, nx_bwrap_prepared *out, err_t *err);

/* With drop_ids bwrap opens every bind source as uid: each directory above path must be
 * searchable by it (owner, group or other x bit). Error names the first one that is not:
 * "... is not reachable by the sandbox uid 65100: /root is not searchable". */
int nx_bwrap_check_reachable(const char *path, uid_t uid, gid_t gid, err_t *err);

/* Gives the facility to the sandbox uid: lchown of every entry not owned by uid:gid yet,
 * never following a symlink (fchownat AT_SYMLINK_NOFOLLOW, directories opened O_NOFOLLOW
 * relative to their parent), depth at most 256. A facility prepared on the host (a host
 * profile clone, files the operator put there) becomes writable inside; what the sandbox
 * writes is owned by uid on the host. */
int nx_bwrap_chown_tree(const char *path, uid_t uid, gid_t gid, err_t *err);


/* Closes the descriptors that now live in bwrap (seccomp, info write end, block read end). */
void nx_bwrap_after_spawn(nx_bwrap_prepared *p);

/* Reads --info-fd ({"child-pid": N, ...}) waiting at most timeout_ms. bwrap exiting early
 * (EOF) or garbage gives an error naming it. */
int nx_bwrap_child_pid(nx_bwrap_prepared *p, int timeout_ms, pid_t *pid, err_t *err);

/* Lets the command start (one byte to --block-fd), then closes the write end. */
int nx_bwrap_release(nx_bwrap_prepared *p, err_t *err);

/* Takes ownership of the listener fd (closes it on failure too). */
typedef int (*nx_bwrap_adopt_fn)(void *ud, int listen_fd, err_t *err);

/* Spawns the prepared sandbox into c and lets its command start: nx_spawn → after_spawn →
 * the sandbox pid from --info-fd → with adopt, a listener on NX_EGRESS_HOST:NX_EGRESS_PORT
 * inside the sandbox's netns handed to adopt → nx_bwrap_release (the command starts only
 * once the proxy listens). adopt NULL: no listener (nothing in the empty netns gets out). A
 * failure after the spawn kills the tree, reaps it and closes c's fds. */
int nx_bwrap_start(nx_bwrap_prepared *p, nx_child *c, nx_bwrap_adopt_fn adopt, void *ud,
                   err_t *err);

/* Kills whatever is still in the cgroup, removes it, closes fds, removes the generated /etc
 * and frees argv. Idempotent. -1 with err when the cgroup could not be removed. */
int nx_bwrap_prepared_free(nx_bwrap_prepared *p, err_t *err);

/* bwrap as configured: an absolute path, or a name looked up in /usr/bin, /bin,
 * /usr/local/bin, /usr/sbin. */
int nx_bwrap_find(const char *configured, char *out, size_t outsz, err_t *err);

/* nexus-sandbox: the configured path (bwrap.sandbox_helper_path) if non-empty; else next to
 * the running executable (/proc/self/exe's directory: the build tree, or where nexusd is
 * installed); else /usr/libexec/nexusd, /usr/lib/nexusd, /usr/local/libexec/nexusd,
 * /usr/local/lib/nexusd, /usr/local/bin, /usr/bin. */
int nx_bwrap_find_helper(const char *configured, char *out, size_t outsz, err_t *err);

/* Driver health (§6.2 Health, D12): bwrap and nexus-sandbox found and a functional probe of
 * the real stack (a namespace sandbox with --disable-userns and the seccomp filter running
 * nexus-sandbox → /bin/true, 5 s limit; as uid when drop_ids). {"healthy": bool,
 * "details": {"driver": "bwrap", "bwrap_path", "helper_path", "error"?}}. Blocks (fork,
 * wait): thread pool or startup only. New reference; NULL on ENOMEM. */
json_t *nx_bwrap_health(const char *bwrap_path, const char *helper_path, const char *rootfs,
                        bool drop_ids, uid_t uid, gid_t gid);

/* finished/started effective_capabilities_summary for this driver: {"driver": "bwrap",
 * "profile", "net", "fs", "landlock_abi", "seccomp": true, "pids_max", ...}. New reference. */
json_t *nx_bwrap_summary(const nx_bwrap_run *in, int landlock_abi);
