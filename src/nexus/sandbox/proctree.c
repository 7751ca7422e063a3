/* sandbox/proctree.c — fork/exec with cgroup join before exec, tree-kill (spec nexus §5.8,
 * §6.0). See proctree.h. */
#include "sandbox/proctree.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/str.h"

/* Used when the child's environment has no PATH (same list as §5.6 gives bwrap). */
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
/* Highest descriptor number a child may ask for. */
#define MAX_CHILD_FD 1023

/* What the child reports when a step before exec fails. */
typedef enum spawn_step {
        STEP_SESSION = 1,
        STEP_CGROUP,
        STEP_FDS,
        STEP_RLIMIT,
        STEP_SETGROUPS,
        STEP_SETGID,
        STEP_SETUID,
        STEP_CHDIR,
        STEP_EXEC,
} spawn_step;

typedef struct child_report {
        int32_t step;
        int32_t err;
        int32_t index;
} child_report;

/* Everything the child needs, computed before fork (no allocation after it). */
typedef struct child_plan {
        const nx_spawn_req *req;
        const char *exec_path;
        int errpipe;
        int sources[3 + NX_SPAWN_MAX_EXTRA_FDS];   /* stdin, stdout, stderr, extras */
        int targets[3 + NX_SPAWN_MAX_EXTRA_FDS];
        size_t n_fds;
        int max_target;
        int hi;                                    /* first fd above every source and target */
} child_plan;

/* ---- child side: async-signal-safe only ---- */

static _Noreturn void child_fail(int errpipe, spawn_step step, int index, int e)
{
        child_report r = { (int32_t)step, (int32_t)e, (int32_t)index };
        ssize_t n;

        do {
                n = write(errpipe, &r, sizeof(r));
        } while (n < 0 && errno == EINTR);
        _exit(127);
}

static _Noreturn void child_main(const child_plan *p)
{
        const nx_spawn_req *req = p->req;
        int errpipe = p->errpipe;
        int moved[3 + NX_SPAWN_MAX_EXTRA_FDS];
        struct sigaction dfl;
        sigset_t none;

        /* The daemon may ignore SIGPIPE or have handlers; ignored dispositions survive exec. */
        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        for (int sig = 1; sig < NSIG; sig++) {
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void)sigaction(sig, &dfl, NULL);
        }
        /* glibc refuses to touch the real-time signals it reserves for itself (32, 33), yet
         * an inherited SIG_IGN on them would survive exec: reset them with the raw call */
        struct {
                void (*handler)(int);
                unsigned long flags;
                void (*restorer)(void);
                uint64_t mask;
        } kdfl = { SIG_DFL, 0, NULL, 0 };
        for (int sig = 32; sig < SIGRTMIN; sig++)
                (void)syscall(SYS_rt_sigaction, sig, &kdfl, NULL, sizeof(kdfl.mask));

        /* own process group (§6.0) so a group kill reaches the tree */
        if (req->new_session ? setsid() < 0 : setpgid(0, 0) < 0)
                child_fail(errpipe, STEP_SESSION, 0, errno);

        /* join before anything runs: whatever the command forks is inside (§6.6 ADVISED) */
        for (size_t i = 0; i < req->n_cgroup_joins; i++) {
                ssize_t n;
                do {
                        n = write(req->cgroup_joins[i].procs_fd, "0", 1);
                } while (n < 0 && errno == EINTR);
                if (n != 1)
                        child_fail(errpipe, STEP_CGROUP, (int)i, n < 0 ? errno : EIO);
        }

        /* Move the error pipe and every source above all targets first, so that no dup2 can
         * overwrite a descriptor still to be moved. */
        int ep = fcntl(errpipe, F_DUPFD_CLOEXEC, p->hi);
        if (ep < 0)
                child_fail(errpipe, STEP_FDS, -1, errno);
        errpipe = ep;
        for (size_t i = 0; i < p->n_fds; i++) {
                moved[i] = fcntl(p->sources[i], F_DUPFD_CLOEXEC, p->hi);
                if (moved[i] < 0)
                        child_fail(errpipe, STEP_FDS, (int)i, errno);
        }
        for (size_t i = 0; i < p->n_fds; i++) {
                if (dup2(moved[i], p->targets[i]) < 0)
                        child_fail(errpipe, STEP_FDS, (int)i, errno);
        }
        /* everything else goes at exec: fds below max_target that are not targets ... */
        for (int fd = 3; fd <= p->max_target; fd++) {
                bool keep = false;
                for (size_t i = 0; i < p->n_fds; i++)
                        keep = keep || p->targets[i] == fd;
                if (!keep)
                        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
        }
        /* ... and every fd above (the error pipe stays usable until exec). CLOSE_RANGE_CLOEXEC
         * needs Linux 5.11; before that, every possible fd is marked one by one (slow, but
         * nothing of the daemon may reach the child: libcurl's sockets are not CLOEXEC). */
        long cr = -1;
#ifdef SYS_close_range
        cr = syscall(SYS_close_range, (unsigned)p->max_target + 1, ~0U, 4U /* CLOEXEC */);
#endif
        if (cr < 0)
                for (int fd = p->max_target + 1; fd < 65536; fd++)
                        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);

        for (size_t i = 0; i < req->n_rlimits; i++) {
                if (setrlimit((__rlimit_resource_t)req->rlimits[i].resource,
                              &req->rlimits[i].limit) < 0)
                        child_fail(errpipe, STEP_RLIMIT, (int)i, errno);
        }
        if (req->drop_ids) {
                /* raw syscalls: the child has one thread, no libc setxid broadcast wanted */
                if (syscall(SYS_setgroups, 0, NULL) < 0)
                        child_fail(errpipe, STEP_SETGROUPS, 0, errno);
                if (syscall(SYS_setresgid, req->gid, req->gid, req->gid) < 0)
                        child_fail(errpipe, STEP_SETGID, 0, errno);
                if (syscall(SYS_setresuid, req->uid, req->uid, req->uid) < 0)
                        child_fail(errpipe, STEP_SETUID, 0, errno);
        }
        if (chdir(req->cwd) < 0)
                child_fail(errpipe, STEP_CHDIR, 0, errno);

        sigemptyset(&none);
        (void)sigprocmask(SIG_SETMASK, &none, NULL);
        static char *const empty_env[] = { NULL };
        execve(p->exec_path, req->argv, req->envp ? req->envp : empty_env);
        child_fail(errpipe, STEP_EXEC, 0, errno);
}

/* ---- parent side ---- */

static const char *env_get(char *const *envp, const char *key)
{
        size_t klen = strlen(key);

        for (size_t i = 0; envp && envp[i]; i++) {
                if (strncmp(envp[i], key, klen) == 0 && envp[i][klen] == '=')
                        return envp[i] + klen + 1;
        }
        return NULL;
}

static bool is_executable_file(const char *path)
{
        struct stat st;

        return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* A bare name is looked up in the child's PATH here, before fork: execvpe is not
 * async-signal-safe. Relative and empty PATH entries are skipped (never search the cwd). */
static int resolve_exec(const nx_spawn_req *req, char *out, size_t outsz, err_t *err)
{
        const char *name = req->argv[0];
        const char *path = env_get(req->envp, "PATH");

        if (strchr(name, '/')) {
                if (str_copy(out, outsz, name) < 0)
                        return err_set(err, "executable path is too long");
                return 0;
        }
        if (!path)
                path = DEFAULT_PATH;
        for (const char *p = path; *p;) {
                const char *e = strchr(p, ':');
                size_t len = e ? (size_t)(e - p) : strlen(p);
                if (len > 0 && p[0] == '/' &&
                    str_printf(out, outsz, "%.*s/%s", (int)len, p, name) >= 0 &&
                    is_executable_file(out))
                        return 0;
                p += len;
                if (*p == ':')
                        p++;
        }
        return err_setc(err, ERR_NOT_FOUND, "exec %s: not found in PATH", name);
}

static int validate_req(const nx_spawn_req *req, err_t *err)
{
        if (!req->argv || !req->argv[0] || !req->argv[0][0])
                return err_set(err, "spawn: empty argv");
        if (!req->cwd || req->cwd[0] != '/')
                return err_set(err, "spawn: cwd \"%s\" must be absolute",
                               req->cwd ? req->cwd : "");
        if (req->n_extra_fds > NX_SPAWN_MAX_EXTRA_FDS)
                return err_set(err, "spawn: %zu extra fds exceed the maximum %d",
                               req->n_extra_fds, NX_SPAWN_MAX_EXTRA_FDS);
        if (req->n_rlimits > NX_SPAWN_MAX_RLIMITS)
                return err_set(err, "spawn: %zu rlimits exceed the maximum %d", req->n_rlimits,
                               NX_SPAWN_MAX_RLIMITS);
        if (req->n_cgroup_joins > NX_SPAWN_MAX_JOINS)
                return err_set(err, "spawn: %zu cgroups exceed the maximum %d",
                               req->n_cgroup_joins, NX_SPAWN_MAX_JOINS);
        if ((req->n_extra_fds && !req->extra_fds) || (req->n_rlimits && !req->rlimits) ||
            (req->n_cgroup_joins && !req->cgroup_joins))
                return err_set(err, "spawn: list count without list");
        for (size_t i = 0; i < req->n_extra_fds; i++) {
                const nx_spawn_fd *f = &req->extra_fds[i];
                if (f->parent_fd < 0 || f->child_fd < 3 || f->child_fd > MAX_CHILD_FD)
                        return err_set(err, "spawn: extra fd %d -> %d out of range 3-%d",
                                       f->parent_fd, f->child_fd, MAX_CHILD_FD);
                for (size_t j = 0; j < i; j++)
                        if (req->extra_fds[j].child_fd == f->child_fd)
                                return err_set(err, "spawn: child fd %d given twice",
                                               f->child_fd);
        }
        for (size_t i = 0; i < req->n_cgroup_joins; i++)
                if (req->cgroup_joins[i].procs_fd < 0)
                        return err_set(err, "spawn: cgroup %zu has no cgroup.procs fd", i);
        return 0;
}

static void plan_fds(child_plan *p, int devnull, int out_w, int err_w)
{
        const nx_spawn_req *req = p->req;
        int hi = p->errpipe;

        p->sources[0] = devnull;
        p->targets[0] = 0;
        p->sources[1] = out_w;
        p->targets[1] = 1;
        p->sources[2] = err_w;
        p->targets[2] = 2;
        p->n_fds = 3;
        p->max_target = 2;
        for (size_t i = 0; i < req->n_extra_fds; i++) {
                p->sources[p->n_fds] = req->extra_fds[i].parent_fd;
                p->targets[p->n_fds] = req->extra_fds[i].child_fd;
                p->n_fds++;
                if (req->extra_fds[i].child_fd > p->max_target)
                        p->max_target = req->extra_fds[i].child_fd;
        }
        for (size_t i = 0; i < p->n_fds; i++) {
                if (p->sources[i] > hi)
                        hi = p->sources[i];
                if (p->targets[i] > hi)
                        hi = p->targets[i];
        }
        p->hi = hi + 1;
}

static int step_error(const nx_spawn_req *req, const char *exec_path, const child_report *r,
                      err_t *err)
{
        int e = r->err;

        switch ((spawn_step)r->step) {
        case STEP_SESSION:
                return err_errno(err, e, "%s", req->new_session ? "setsid" : "setpgid");
        case STEP_CGROUP:
                if (r->index >= 0 && (size_t)r->index < req->n_cgroup_joins)
                        return err_errno(err, e, "join cgroup %s",
                                         req->cgroup_joins[r->index].path);
                return err_errno(err, e, "join cgroup");
        case STEP_FDS:
                return err_errno(err, e, "set up child descriptors");
        case STEP_RLIMIT:
                if (r->index >= 0 && (size_t)r->index < req->n_rlimits)
                        return err_errno(err, e, "setrlimit %d",
                                         req->rlimits[r->index].resource);
                return err_errno(err, e, "setrlimit");
        case STEP_SETGROUPS:
                return err_errno(err, e, "setgroups");
        case STEP_SETGID:
                return err_errno(err, e, "setresgid %u", (unsigned)req->gid);
        case STEP_SETUID:
                return err_errno(err, e, "setresuid %u", (unsigned)req->uid);
        case STEP_CHDIR:
                return err_errno(err, e, "chdir %s", req->cwd);
        case STEP_EXEC:
                return err_errno(err, e, "exec %s", exec_path);
        default:
                return err_errno(err, e, "spawn step %d", (int)r->step);
        }
}

static void reap_blocking(pid_t pid)
{
        int st;

        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
}

static int open_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
        /* the child is ours and unreaped, so its pid cannot have been reused */
        long fd = syscall(SYS_pidfd_open, pid, 0);
        return fd < 0 ? -1 : (int)fd;   /* pidfds are always close-on-exec */
#else
        (void)pid;
        return -1;
#endif
}

static int set_nonblock(int fd, err_t *err)
{
        int fl = fcntl(fd, F_GETFL);

        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
                return err_errno(err, errno, "set O_NONBLOCK");
        return 0;
}

int nx_spawn(const nx_spawn_req *req, nx_child *out, err_t *err)
{
        char exec_path[PATH_MAX];
        int out_p[2] = { -1, -1 }, err_p[2] = { -1, -1 }, err_pipe[2] = { -1, -1 };
        _cleanup_close_ int devnull = -1;
        child_plan plan;
        sigset_t all, saved;
        child_report rep;
        size_t got = 0;
        int rc = -1;
        pid_t pid;

        *out = (nx_child)NX_CHILD_INIT;
        if (validate_req(req, err) < 0 || resolve_exec(req, exec_path, sizeof(exec_path), err) < 0)
                return -1;
        devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (devnull < 0)
                return err_errno(err, errno, "open /dev/null");
        if (pipe2(out_p, O_CLOEXEC) < 0 || pipe2(err_p, O_CLOEXEC) < 0 ||
            pipe2(err_pipe, O_CLOEXEC) < 0) {
                err_errno(err, errno, "pipe");
                goto out;
        }
        memset(&plan, 0, sizeof(plan));
        plan.req = req;
        plan.exec_path = exec_path;
        plan.errpipe = err_pipe[1];
        plan_fds(&plan, devnull, out_p[1], err_p[1]);

        /* No handler of ours may run in the child before its dispositions are reset. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &saved);
        pid = fork();
        if (pid == 0)
                child_main(&plan);
        int fork_errno = errno;
        pthread_sigmask(SIG_SETMASK, &saved, NULL);
        if (pid < 0) {
                err_errno(err, fork_errno, "fork");
                goto out;
        }

        close(err_pipe[1]);
        err_pipe[1] = -1;
        close(out_p[1]);
        out_p[1] = -1;
        close(err_p[1]);
        err_p[1] = -1;
        /* EOF without a report = exec succeeded (the pipe was close-on-exec) */
        while (got < sizeof(rep)) {
                ssize_t n = read(err_pipe[0], (char *)&rep + got, sizeof(rep) - got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                got += (size_t)n;
        }
        if (got == sizeof(rep)) {
                reap_blocking(pid);   /* no zombie: the child has already _exit()ed */
                step_error(req, exec_path, &rep, err);
                goto out;
        }
        if (set_nonblock(out_p[0], err) < 0 || set_nonblock(err_p[0], err) < 0) {
                (void)kill(pid, SIGKILL);
                reap_blocking(pid);
                goto out;
        }
        out->pid = pid;
        out->pgid = pid;
        out->pidfd = open_pidfd(pid);
        out->stdout_fd = steal_fd(&out_p[0]);
        out->stderr_fd = steal_fd(&err_p[0]);
        rc = 0;
out:
        for (int i = 0; i < 2; i++) {
                cleanup_closep(&out_p[i]);
                cleanup_closep(&err_p[i]);
                cleanup_closep(&err_pipe[i]);
        }
        return rc;
}

int nx_child_reap(nx_child *child, bool block, err_t *err)
{
        int st = 0;
        pid_t r;

        if (child->reaped)
                return 1;
        if (child->pid <= 0)
                return err_set(err, "reap: no child");
        do {
                r = waitpid(child->pid, &st, block ? 0 : WNOHANG);
        } while (r < 0 && errno == EINTR);
        if (r == 0)
                return 0;
        if (r < 0)
                return err_errno(err, errno, "waitpid %ld", (long)child->pid);
        child->reaped = true;
        child->wait_status = st;
        return 1;
}

int nx_child_kill_tree(nx_child *child, nx_cgroup *cg, int sig, err_t *err)
{
        int delivered = 0;
        int last_errno = 0;
        err_t cge = ERR_INIT;

        if (cg && nx_cgroup_can_kill(cg)) {
                int r = sig == SIGKILL ? nx_cgroup_kill(cg, &cge) : nx_cgroup_signal(cg, sig, &cge);
                if (r == 0)
                        delivered++;
        }
        /* The group outlives its reaped leader while members remain, and its id cannot be
         * reused while it has members; once it is empty this is ESRCH. */
        if (child->pgid > 1) {
                if (kill(-child->pgid, sig) == 0)
                        delivered++;
                else if (errno != ESRCH)
                        last_errno = errno;
        }
        if (!child->reaped && child->pid > 1) {
                int r = -1;
#ifdef SYS_pidfd_send_signal
                if (child->pidfd >= 0)
                        r = (int)syscall(SYS_pidfd_send_signal, child->pidfd, sig, NULL, 0);
                else
#endif
                        r = kill(child->pid, sig);
                if (r == 0)
                        delivered++;
                else if (errno != ESRCH)
                        last_errno = errno;
        }
        if (delivered == 0 && err_is_set(&cge)) {
                *err = cge;
                return -1;
        }
        if (delivered == 0 && last_errno)
                return err_errno(err, last_errno, "kill process group %ld", (long)child->pgid);
        return 0;
}

void nx_child_close(nx_child *child)
{
        cleanup_closep(&child->pidfd);
        cleanup_closep(&child->stdout_fd);
        cleanup_closep(&child->stderr_fd);
}

int nx_wait_status_to_exit_code(int st)
{
        if (WIFEXITED(st))
                return WEXITSTATUS(st);
        if (WIFSIGNALED(st))
                return 128 + WTERMSIG(st);
        return 1;
}

const char *nx_run_outcome(int wait_status, bool deadline_passed, bool canceled, int *exit_code)
{
        int code = nx_wait_status_to_exit_code(wait_status);

        if (deadline_passed) {
                *exit_code = 124;
                return "timed_out";
        }
        *exit_code = code;
        if (canceled)
                return "canceled";
        return code == 0 ? "succeeded" : "failed";
}
