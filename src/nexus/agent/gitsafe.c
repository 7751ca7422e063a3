/* agent/gitsafe.c — see gitsafe.h. */
#include "agent/gitsafe.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/clock.h"
#include "core/str.h"
#include "sandbox/bwrap.h"
#include "sandbox/cgroup.h"
#include "sandbox/proctree.h"

void nx_git_result_free(nx_git_result *r)
{
        FREE_AND_NULL(r->out);
        r->out_len = 0;
}

static const char *const git_env[] = {
        "PATH=/usr/bin:/bin",
        "HOME=/tmp",
        "LANG=C.UTF-8",
        "LC_ALL=C.UTF-8",
        "GIT_CONFIG_NOSYSTEM=1",
        "GIT_CONFIG_GLOBAL=/dev/null",
        "GIT_TERMINAL_PROMPT=0",
        "GIT_ASKPASS=true",
        "SSH_ASKPASS=true",
        "GIT_PROTOCOL_FROM_USER=0",
        "GIT_ALLOW_PROTOCOL=http:https:ssh:git",
        "GIT_PAGER=cat",
        "GIT_OPTIONAL_LOCKS=0",
        NULL,
};

/* Config that could run a program, switched off for this invocation (D15). */
#define GIT_SAFE_CONFIG \
        "-c", "safe.directory=*", "-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null", \
        "-c", "core.untrackedCache=false", "-c", "diff.external=", "-c", "core.pager=cat", \
        "-c", "core.sshCommand=ssh", "-c", "protocol.file.allow=never", \
        "-c", "protocol.ext.allow=never", "-c", "credential.helper="

static const char *const git_safe_args[] = { GIT_SAFE_CONFIG, NULL };

const char *const *nx_git_safe_args(void)
{
        return git_safe_args;
}

const char *const *nx_git_safe_env(void)
{
        return git_env;
}

static void append_tail(nx_git_result *r, const char *data, size_t n)
{
        size_t cur = strlen(r->log), cap = sizeof(r->log) - 1;
        if (n >= cap) {
                data += n - cap;
                n = cap;
        }
        if (cur + n > cap) {   /* keep the tail: drop the oldest bytes */
                size_t drop = cur + n - cap;
                memmove(r->log, r->log + drop, cur - drop);
                cur -= drop;
        }
        memcpy(r->log + cur, data, n);
        r->log[cur + n] = '\0';
}

/* The diff's environment: git_env plus the repository pinned to /workspace/.git. A planted
 * .git/commondir (worktree layout) would otherwise make git read its config — hooks,
 * fsmonitor, filter drivers — from another directory than the clean config bound over
 * /workspace/.git/config (D15). PATH and HOME stay first: git_sandbox_env skips them. */
static const char *const git_diff_env[] = {
        "PATH=/usr/bin:/bin",
        "HOME=/tmp",
        "LANG=C.UTF-8",
        "LC_ALL=C.UTF-8",
        "GIT_CONFIG_NOSYSTEM=1",
        "GIT_CONFIG_GLOBAL=/dev/null",
        "GIT_TERMINAL_PROMPT=0",
        "GIT_ASKPASS=true",
        "SSH_ASKPASS=true",
        "GIT_PROTOCOL_FROM_USER=0",
        "GIT_ALLOW_PROTOCOL=http:https:ssh:git",
        "GIT_PAGER=cat",
        "GIT_OPTIONAL_LOCKS=0",
        "GIT_DIR=/workspace/.git",
        "GIT_COMMON_DIR=/workspace/.git",
        "GIT_WORK_TREE=/workspace",
        "GIT_ATTR_NOSYSTEM=1",
        NULL,
};

/* stdout (diff): keep at most max_out bytes; the caller keeps reading (and dropping) the
 * rest so the writer never blocks, and out_truncated says so. */
static void take_out(nx_git_result *res, const char *data, size_t n, size_t max_out,
                     size_t *cap_alloc)
{
        size_t room = max_out > res->out_len ? max_out - res->out_len : 0;
        size_t take = n < room ? n : room;
        if (take < n)
                res->out_truncated = true;
        if (!take)
                return;
        if (res->out_len + take > *cap_alloc) {
                size_t want = *cap_alloc ? *cap_alloc * 2 : 65536;
                while (want < res->out_len + take)
                        want *= 2;
                if (want > max_out)
                        want = max_out;
                uint8_t *p = realloc(res->out, want);
                if (!p) {
                        res->out_truncated = true;
                        return;
                }
                res->out = p;
                *cap_alloc = want;
        }
        memcpy(res->out + res->out_len, data, take);
        res->out_len += take;
}

static int run_jailed(char *const argv[], const char *const *envp, int64_t timeout_ms,
                      size_t max_out, bool out_to_log, nx_git_result *res, err_t *err)
{
        int outp[2], errp[2];
        if (pipe2(outp, O_CLOEXEC) < 0)
                return err_errno(err, errno, "git: pipe");
        if (pipe2(errp, O_CLOEXEC) < 0) {
                close(outp[0]);
                close(outp[1]);
                return err_errno(err, errno, "git: pipe");
        }
        pid_t pid = fork();
        if (pid < 0) {
                int e = errno;
                close(outp[0]);
                close(outp[1]);
                close(errp[0]);
                close(errp[1]);
                return err_errno(err, e, "git: fork");
        }
        if (pid == 0) {
                int devnull = open("/dev/null", O_RDONLY);
                if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(outp[1], 1) < 0 ||
                    dup2(errp[1], 2) < 0)
                        _exit(127);
                /* nothing of the daemon (libcurl's sockets are not CLOEXEC) reaches bwrap or
                 * git; close_range needs Linux 5.9, the loop covers older kernels */
                if (close_range(3, ~0U, 0) < 0)
                        for (int fd = 3; fd < 65536; fd++)
                                (void)close(fd);
                setpgid(0, 0);
                /* execve() takes char *const[]; the strings are never written */
                execve(argv[0], argv, (char *const *)(uintptr_t)envp);
                _exit(127);
        }
        close(outp[1]);
        close(errp[1]);
        res->exit_code = -1;
        int64_t deadline = clock_mono_ms() + timeout_ms;
        struct pollfd pfd[2] = { { outp[0], POLLIN, 0 }, { errp[0], POLLIN, 0 } };
        size_t cap_alloc = 0;
        char tmp[16384];
        while (pfd[0].fd >= 0 || pfd[1].fd >= 0) {
                int64_t left = deadline - clock_mono_ms();
                if (left <= 0) {
                        res->timed_out = true;
                        kill(-pid, SIGKILL);
                        kill(pid, SIGKILL);
                        break;
                }
                int n = poll(pfd, 2, (int)(left > 1000 ? 1000 : left));
                if (n < 0 && errno != EINTR)
                        break;
                for (int i = 0; i < 2; i++) {
                        if (pfd[i].fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                                continue;
                        ssize_t r = read(pfd[i].fd, tmp, sizeof(tmp));
                        if (r <= 0) {
                                close(pfd[i].fd);
                                pfd[i].fd = -1;
                                continue;
                        }
                        if (i == 1 || out_to_log) {
                                append_tail(res, tmp, (size_t)r);
                                continue;
                        }
                        take_out(res, tmp, (size_t)r, max_out, &cap_alloc);
                }
        }
        for (int i = 0; i < 2; i++)
                if (pfd[i].fd >= 0)
                        close(pfd[i].fd);
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (WIFEXITED(status))
                res->exit_code = WEXITSTATUS(status);
        else if (WIFSIGNALED(status))
                res->exit_code = 128 + WTERMSIG(status);
        if (res->timed_out)
                return err_setc(err, ERR_SYSTEM, "git timed out after %lld ms",
                                (long long)timeout_ms);
        return 0;
}

static bool executable(const char *p)
{
        return p && p[0] == '/' && access(p, X_OK) == 0;
}

/* bwrap_path as configured: an absolute path, or a name searched in the usual places. */
static int find_bwrap(const char *configured, char *out, size_t outsz, err_t *err)
{
        const char *name = configured && *configured ? configured : "bwrap";
        if (strchr(name, '/')) {
                if (!executable(name))
                        return err_set(err, "bwrap not found at %s: git is never run unjailed",
                                       name);
                return str_copy(out, outsz, name) < 0 ? err_set(err, "bwrap path too long") : 0;
        }
        const char *dirs[] = { "/usr/bin", "/bin", "/usr/local/bin", "/usr/sbin", NULL };
        for (size_t i = 0; dirs[i]; i++) {
                if (str_printf(out, outsz, "%s/%s", dirs[i], name) > 0 && executable(out))
                        return 0;
        }
        return err_set(err, "bwrap not found: git is never run unjailed (install bubblewrap)");
}

static bool is_dir(const char *p)
{
        struct stat st;
        return lstat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *p)
{
        struct stat st;
        return lstat(p, &st) == 0 && S_ISREG(st.st_mode);
}

#define MAX_ARGS 96

typedef struct argv_b {
        char *v[MAX_ARGS];
        size_t n;
} argv_b;

static void add(argv_b *a, const char *s)
{
        if (a->n < MAX_ARGS - 1)
                a->v[a->n++] = (char *)(uintptr_t)s;   /* execve's prototype, not mutated */
        a->v[a->n] = NULL;
}

static void add_jail_base(argv_b *a, const char *bwrap, bool network)
{
        add(a, bwrap);
        if (network) {
                add(a, "--unshare-ipc");
                add(a, "--unshare-pid");
                add(a, "--unshare-uts");
                add(a, "--unshare-cgroup-try");
        } else {
                add(a, "--unshare-all");
        }
        add(a, "--die-with-parent");
        add(a, "--new-session");
        add(a, "--cap-drop");
        add(a, "ALL");
        add(a, "--tmpfs");
        add(a, "/");
        add(a, "--ro-bind");
        add(a, "/usr");
        add(a, "/usr");
        add(a, "--symlink");
        add(a, "usr/bin");
        add(a, "/bin");
        add(a, "--symlink");
        add(a, "usr/sbin");
        add(a, "/sbin");
        add(a, "--symlink");
        add(a, "usr/lib");
        add(a, "/lib");
        if (is_dir("/usr/lib64")) {
                add(a, "--symlink");
                add(a, "usr/lib64");
                add(a, "/lib64");
        }
        add(a, "--proc");
        add(a, "/proc");
        add(a, "--dev");
        add(a, "/dev");
        add(a, "--tmpfs");
        add(a, "/tmp");
        if (network) {
                /* only what name resolution and TLS need, read-only */
                static const char *const etc[] = { "/etc/resolv.conf", "/etc/hosts",
                                                   "/etc/nsswitch.conf", "/etc/ssl",
                                                   "/etc/ca-certificates", NULL };
                for (size_t i = 0; etc[i]; i++) {
                        if (is_file(etc[i]) || is_dir(etc[i])) {
                                add(a, "--ro-bind");
                                add(a, etc[i]);
                                add(a, etc[i]);
                        }
                }
        }
}

int nx_git_clone(const char *bwrap_path, const char *facility_path, const char *repo_url,
                 int64_t timeout_ms, nx_git_result *res, err_t *err)
{
        memset(res, 0, sizeof(*res));
        char bwrap[512];
        if (find_bwrap(bwrap_path, bwrap, sizeof(bwrap), err) < 0)
                return -1;
        argv_b a = { .n = 0 };
        add_jail_base(&a, bwrap, true);
        add(&a, "--bind");
        add(&a, facility_path);
        add(&a, "/workspace");
        add(&a, "--chdir");
        add(&a, "/workspace");
        add(&a, "--");
        add(&a, "/usr/bin/git");
        const char *const cfg[] = { GIT_SAFE_CONFIG };
        for (size_t i = 0; i < sizeof(cfg) / sizeof(cfg[0]); i++)
                add(&a, cfg[i]);
        add(&a, "clone");
        add(&a, "--depth");
        add(&a, "1");
        add(&a, "--no-recurse-submodules");
        add(&a, "--");
        add(&a, repo_url);
        add(&a, ".");
        if (run_jailed(a.v, git_env, timeout_ms, 0, true, res, err) < 0)
                return err_wrap(err, "git clone");
        return 0;
}

int nx_git_diff(const char *bwrap_path, const char *facility_path, size_t max_bytes,
                int64_t timeout_ms, nx_git_result *res, err_t *err)
{
        memset(res, 0, sizeof(*res));
        char gitdir[4200];
        if (str_printf(gitdir, sizeof(gitdir), "%s/.git", facility_path) < 0)
                return err_set(err, "git diff: facility path too long");
        if (!is_dir(gitdir))   /* lstat: a .git symlink is not followed */
                return 0;
        char bwrap[512];
        if (find_bwrap(bwrap_path, bwrap, sizeof(bwrap), err) < 0)
                return -1;
        /* The repository's own config is replaced for this run: whatever it defines —
         * filter drivers (which git runs whenever .gitattributes selects them), textconv,
         * fsmonitor, includes pulling in more — is simply not there. */
        char clean_cfg[] = "/tmp/nexus-gitcfg-XXXXXX";
        _cleanup_close_ int cfd = mkostemp(clean_cfg, O_CLOEXEC);
        if (cfd < 0)
                return err_errno(err, errno, "git diff: create clean config");
        static const char cfg_text[] = "[core]\n\trepositoryformatversion = 0\n\tbare = false\n";
        bool wrote = write(cfd, cfg_text, sizeof(cfg_text) - 1) == (ssize_t)(sizeof(cfg_text) - 1);
        if (!wrote) {
                unlink(clean_cfg);
                return err_errno(err, errno, "git diff: write clean config");
        }
        argv_b a = { .n = 0 };
        add_jail_base(&a, bwrap, false);
        add(&a, "--ro-bind");
        add(&a, facility_path);
        add(&a, "/workspace");
        add(&a, "--ro-bind");
        add(&a, clean_cfg);
        add(&a, "/workspace/.git/config");
        add(&a, "--chdir");
        add(&a, "/workspace");
        add(&a, "--");
        add(&a, "/usr/bin/git");
        const char *const cfg[] = { GIT_SAFE_CONFIG };
        for (size_t i = 0; i < sizeof(cfg) / sizeof(cfg[0]); i++)
                add(&a, cfg[i]);
        add(&a, "--no-pager");
        add(&a, "diff");
        add(&a, "--no-ext-diff");
        add(&a, "--no-textconv");
        add(&a, "--no-color");
        add(&a, "HEAD");
        int r = run_jailed(a.v, git_diff_env, timeout_ms, max_bytes, false, res, err);
        unlink(clean_cfg);
        return r < 0 ? err_wrap(err, "git diff") : 0;
}

/* ---------------------------------------------------------------- untrusted (D15) ---- */

/* The diff's environment inside the directive's sandbox: git_diff_env without its first two
 * entries, PATH and HOME, which nx_bwrap_sandbox_env sets (the sandbox's PATH,
 * HOME=/workspace). */
static const char *const *const git_sandbox_env = git_diff_env + 2;

/* Reads the sandbox's stdout (capped) and stderr (tail) until both close or the deadline;
 * at the deadline the whole cgroup is killed (a repository filter or fsmonitor that never
 * ends, and everything it forked). Then reaps bwrap. */
static void sandbox_collect(nx_child *c, nx_cgroup *cg, int64_t timeout_ms, size_t max_out,
                            nx_git_result *res)
{
        int64_t deadline = clock_mono_ms() + timeout_ms;
        size_t cap_alloc = 0;
        char tmp[16384];
        err_t ign = ERR_INIT;
        while (c->stdout_fd >= 0 || c->stderr_fd >= 0) {
                int64_t left = deadline - clock_mono_ms();
                if (left <= 0) {
                        res->timed_out = true;
                        (void)nx_child_kill_tree(c, cg, SIGKILL, &ign);
                        break;
                }
                struct pollfd pfd[2] = { { c->stdout_fd, POLLIN, 0 }, { c->stderr_fd, POLLIN, 0 } };
                int n = poll(pfd, 2, (int)(left > 1000 ? 1000 : left));
                if (n < 0 && errno != EINTR)
                        break;
                for (int i = 0; i < 2; i++) {
                        int *fd = i == 0 ? &c->stdout_fd : &c->stderr_fd;
                        if (*fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                                continue;
                        ssize_t r = read(*fd, tmp, sizeof(tmp));
                        if (r < 0 && (errno == EAGAIN || errno == EINTR))
                                continue;
                        if (r <= 0) {
                                close(*fd);
                                *fd = -1;
                                continue;
                        }
                        if (i == 1)
                                append_tail(res, tmp, (size_t)r);
                        else
                                take_out(res, tmp, (size_t)r, max_out, &cap_alloc);
                }
        }
        if (!res->timed_out && nx_child_reap(c, false, &ign) == 0) {
                /* both pipes closed but bwrap still runs: bounded by the same deadline */
                while (clock_mono_ms() < deadline && nx_child_reap(c, false, &ign) == 0) {
                        struct timespec ts = { 0, 20 * 1000000L };
                        nanosleep(&ts, NULL);
                }
                if (!c->reaped) {
                        res->timed_out = true;
                        (void)nx_child_kill_tree(c, cg, SIGKILL, &ign);
                }
        }
        if (!c->reaped)
                (void)nx_child_reap(c, true, &ign);
        /* nothing the diff started outlives it */
        (void)nx_cgroup_kill(cg, &ign);
        res->exit_code = c->reaped ? nx_wait_status_to_exit_code(c->wait_status) : -1;
}

int nx_git_diff_sandboxed(const struct nx_bwrap_run *base, size_t max_bytes, int64_t timeout_ms,
                          nx_git_result *res, err_t *err)
{
        memset(res, 0, sizeof(*res));
        res->exit_code = -1;
        if (!base || !base->directive_id || !base->facility_path)
                return err_set(err, "git diff: no sandbox description");
        char gitdir[4200];
        if (str_printf(gitdir, sizeof(gitdir), "%s/.git", base->facility_path) < 0)
                return err_set(err, "git diff: facility path too long");
        if (!is_dir(gitdir)) {   /* lstat: a .git symlink is not followed */
                res->exit_code = 0;
                return 0;
        }
        /* its own cgroup (the directive's may still be being removed), same limits */
        char id[NX_CGROUP_ID_MAX + 1];
        if (str_printf(id, sizeof(id), "%s.diff", base->directive_id) < 0)
                return err_set(err, "git diff: directive id too long");
        /* Same arguments as nx_git_diff (the output is the same for every profile); the
         * repository's own config is NOT replaced here: whatever it still runs (filters...)
         * runs with exactly the directive's privileges, inside its sandbox. */
        const char *argv[MAX_ARGS];
        size_t n = 0;
        argv[n++] = "git";
        const char *const cfg[] = { GIT_SAFE_CONFIG };
        for (size_t i = 0; i < sizeof(cfg) / sizeof(cfg[0]); i++)
                argv[n++] = cfg[i];
        static const char *const tail[] = { "--no-pager", "diff", "--no-ext-diff",
                                            "--no-textconv", "--no-color", "HEAD", NULL };
        for (size_t i = 0; tail[i]; i++)
                argv[n++] = tail[i];
        argv[n] = NULL;

        nx_bwrap_run in = *base;
        in.directive_id = id;
        in.command = NULL;
        in.shell = NULL;
        in.argv = (char *const *)(uintptr_t)argv;            /* never written */
        in.cwd = "";
        in.envp = (char *const *)(uintptr_t)git_sandbox_env; /* never written */
        in.net = NULL;        /* no proxy listener: the empty netns has no way out */
        in.repo_url = NULL;
        nx_bwrap_prepared prep;
        if (nx_bwrap_prepare(&in, &prep, err) < 0)
                return err_wrap(err, "git diff: sandbox setup failed");
        nx_child c = NX_CHILD_INIT;
        int rc = -1;
        if (nx_bwrap_start(&prep, &c, NULL, NULL, err) < 0) {   /* no listener: no network */
                err_wrap(err, "git diff");
                goto out;
        }
        sandbox_collect(&c, prep.cgroup, timeout_ms, max_bytes, res);
        rc = 0;
out:
        nx_child_close(&c);
        err_t ferr = ERR_INIT;
        if (nx_bwrap_prepared_free(&prep, &ferr) < 0 && rc == 0) {
                rc = err_set(err, "git diff: cgroup cleanup failed: %s", ferr.msg);
        }
        if (rc == 0 && res->timed_out)
                rc = err_setc(err, ERR_SYSTEM, "git diff: git timed out after %lld ms",
                              (long long)timeout_ms);
        return rc;
}
