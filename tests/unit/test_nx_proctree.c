/* tests/unit/test_nx_proctree.c — sandbox/proctree: spawning with real processes, error
 * reporting from the child, exit-code mapping (§5.8) and tree-kill (§6.0). The test process
 * is a child subreaper, so every orphaned descendant comes back to it and a test can prove
 * that a whole tree is gone by reaping it; every test kills and reaps what it started. */
#include "testutil.h"
#include "sandbox/proctree.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/str.h"

/* Upper bound for waiting on a child event; a test that hits it fails instead of hanging. */
#define WAIT_STEPS 5000
#define STEP_NS (2 * 1000 * 1000)

/* ---- helpers ---- */

static char **vec(const char *first, ...)
{
        va_list ap;
        size_t n = 0;
        char **v = calloc(32, sizeof(*v));

        assert_non_null(v);
        va_start(ap, first);
        for (const char *s = first; s && n < 31; s = va_arg(ap, const char *)) {
                v[n] = strdup(s);
                assert_non_null(v[n]);
                n++;
        }
        va_end(ap);
        return v;
}

static void vec_free(char **v)
{
        for (size_t i = 0; v && v[i]; i++)
                free(v[i]);
        free(v);
}

static void step_sleep(void)
{
        struct timespec ts = { 0, STEP_NS };
        nanosleep(&ts, NULL);
}

typedef struct outbuf {
        char out[16384];
        size_t out_len;
        char err[16384];
        size_t err_len;
} outbuf;

/* Reads both pipes to EOF (they are non-blocking). */
static void drain(nx_child *c, outbuf *o)
{
        memset(o, 0, sizeof(*o));
        while (c->stdout_fd >= 0 || c->stderr_fd >= 0) {
                struct pollfd p[2] = { { c->stdout_fd, POLLIN, 0 }, { c->stderr_fd, POLLIN, 0 } };
                int r = poll(p, 2, 30000);
                assert_true(r > 0);   /* 30 s without output or EOF: the test is broken */
                for (int i = 0; i < 2; i++) {
                        int *fd = i == 0 ? &c->stdout_fd : &c->stderr_fd;
                        char *buf = i == 0 ? o->out : o->err;
                        size_t *len = i == 0 ? &o->out_len : &o->err_len;
                        if (*fd < 0 || !p[i].revents)
                                continue;
                        ssize_t n = read(*fd, buf + *len, sizeof(o->out) - 1 - *len);
                        if (n > 0) {
                                *len += (size_t)n;
                        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                                close(*fd);
                                *fd = -1;
                        }
                }
        }
}

/* Spawns, drains, reaps. Returns the nx_spawn result. */
static int run(const nx_spawn_req *req, outbuf *o, int *exit_code, err_t *err)
{
        nx_child c;
        err_t e2 = ERR_INIT;

        if (nx_spawn(req, &c, err) < 0)
                return -1;
        drain(&c, o);
        assert_int_equal(nx_child_reap(&c, true, &e2), 1);
        *exit_code = nx_wait_status_to_exit_code(c.wait_status);
        nx_child_close(&c);
        return 0;
}

/* Reads decimal pids, one per line, from the child's stdout. */
static void read_pids(nx_child *c, pid_t *pids, size_t n)
{
        char buf[256];
        size_t len = 0, got = 0;

        while (got < n) {
                struct pollfd p = { c->stdout_fd, POLLIN, 0 };
                assert_true(poll(&p, 1, 30000) > 0);
                ssize_t r = read(c->stdout_fd, buf + len, sizeof(buf) - 1 - len);
                if (r < 0 && errno == EAGAIN)
                        continue;
                assert_true(r > 0);
                len += (size_t)r;
                buf[len] = '\0';
                char *nl;
                while (got < n && (nl = strchr(buf, '\n'))) {
                        *nl = '\0';
                        int64_t v;
                        assert_int_equal(str_to_int64(buf, 1, INT32_MAX, &v), 0);
                        pids[got++] = (pid_t)v;
                        size_t rest = len - (size_t)(nl + 1 - buf);
                        memmove(buf, nl + 1, rest + 1);
                        len = rest;
                }
        }
}

/* Reaps every descendant that came back to us (subreaper) until none is left. */
static bool all_descendants_gone(void)
{
        for (int i = 0; i < WAIT_STEPS; i++) {
                int st;
                pid_t r = waitpid(-1, &st, WNOHANG);
                if (r < 0 && errno == ECHILD)
                        return true;
                if (r == 0)
                        step_sleep();
        }
        return false;
}

/* Alive and not a zombie. */
static bool process_running(pid_t pid)
{
        char path[64], stat[512];
        int fd;
        ssize_t n;

        if (kill(pid, 0) < 0)
                return false;
        (void)str_printf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        n = read(fd, stat, sizeof(stat) - 1);
        close(fd);
        if (n <= 0)
                return false;
        stat[n] = '\0';
        const char *rp = strrchr(stat, ')');
        return rp && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
}

static void kill_and_reap(nx_child *c)
{
        err_t e = ERR_INIT;
        if (c->pid > 0 && !c->reaped) {
                (void)nx_child_kill_tree(c, NULL, SIGKILL, &e);
                (void)nx_child_reap(c, true, &e);
        }
        nx_child_close(c);
}

static nx_spawn_req base_req(char **argv, char **envp)
{
        nx_spawn_req r;
        memset(&r, 0, sizeof(r));
        r.argv = argv;
        r.envp = envp;
        r.cwd = "/";
        r.new_session = true;
        return r;
}

/* ---- spawning and output ---- */

/* spec nexus §12 #110 */
static void test_spawn_echo_output_and_exit_zero(void **state)
{
        char **argv = vec("/bin/echo", "hello", "world", NULL);
        char **envp = vec("A=1", NULL);
        nx_spawn_req req = base_req(argv, envp);
        outbuf o;
        int code = -1;
        err_t err = ERR_INIT;

        assert_int_equal(run(&req, &o, &code, &err), 0);
        assert_string_equal(o.out, "hello world\n");
        assert_string_equal(o.err, "");
        assert_int_equal(code, 0);
        vec_free(argv);
        vec_free(envp);
}

/* spec nexus §12 #114 */
static void test_child_sees_exactly_the_given_environment(void **state)
{
        char **argv = vec("/usr/bin/env", NULL);
        char **envp = vec("A=1", "B=two words", NULL);
        nx_spawn_req req = base_req(argv, envp);
        outbuf o;
        int code = -1;
        err_t err = ERR_INIT;

        assert_int_equal(run(&req, &o, &code, &err), 0);
        assert_string_equal(o.out, "A=1\nB=two words\n");
        assert_int_equal(code, 0);
        vec_free(argv);
        vec_free(envp);
}

static void test_null_envp_gives_empty_environment(void **state)
{
        char **argv = vec("/usr/bin/env", NULL);
        nx_spawn_req req = base_req(argv, NULL);
        outbuf o;
        int code = -1;
        err_t err = ERR_INIT;

        assert_int_equal(run(&req, &o, &code, &err), 0);
        assert_string_equal(o.out, "");
        vec_free(argv);
}

static void test_bare_name_is_found_in_child_path(void **state)
{
        char **argv = vec("echo", "found", NULL);
        char **envp = vec("PATH=relative:/nonexistent:/bin:/usr/bin", NULL);
        nx_spawn_req req = base_req(argv, envp);
        outbuf o;
        int code = -1;
        err_t err = ERR_INIT;

        assert_int_equal(run(&req, &o, &code, &err), 0);
        assert_string_equal(o.out, "found\n");
        vec_free(argv);
        vec_free(envp);
}

static void test_bare_name_not_in_path_is_clear_error(void **state)
{
        char **argv = vec("no-such-program-nx", NULL);
        char **envp = vec("PATH=/bin:/usr/bin", NULL);
        nx_spawn_req req = base_req(argv, envp);
        nx_child c;
        err_t err = ERR_INIT;

        assert_int_equal(nx_spawn(&req, &c, &err), -1);
        assert_string_equal(err.msg, "exec no-such-program-nx: not found in PATH");
        assert_int_equal(c.pid, 0);
        vec_free(argv);
        vec_free(envp);
}

static void test_exec_failure_is_reported_and_child_reaped(void **state)
{
        char **argv = vec("/nonexistent/prog", NULL);
        nx_spawn_req req = base_req(argv, NULL);
        nx_child c;
        err_t err = ERR_INIT;
        int st;

        assert_int_equal(nx_spawn(&req, &c, &err), -1);
        assert_string_equal(err.msg, "exec /nonexistent/prog: No such file or directory");
        assert_int_equal(err.errnum, ENOENT);
        assert_int_equal(c.pid, 0);
        assert_int_equal(c.stdout_fd, -1);
        /* no zombie left: we have no child at all */
        assert_int_equal(waitpid(-1, &st, WNOHANG), -1);
        assert_int_equal(errno, ECHILD);
        vec_free(argv);
}

static void test_exec_of_non_executable_is_reported(void **state)
{
        char path[] = "/tmp/nx-proctree-noexec-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(fchmod(fd, 0644), 0);
        close(fd);
        char **argv = vec(path, NULL);
        nx_spawn_req req = base_req(argv, NULL);
        nx_child c;
        err_t err = ERR_INIT;
        char want[128];

        int rc = nx_spawn(&req, &c, &err);
        unlink(path);
        assert_int_equal(rc, -1);
        (void)str_printf(want, sizeof(want), "exec %s: Permission denied", path);
        assert_string_equal(err.msg, want);
        vec_free(argv);
}

static void test_chdir_failure_is_reported(void **state)
{
        char **argv = vec("/bin/true", NULL);
        nx_spawn_req req = base_req(argv, NULL);
        nx_child c;
        err_t err = ERR_INIT;
        int st;

        req.cwd = "/nonexistent-dir-nx";
        assert_int_equal(nx_spawn(&req, &c, &err), -1);
        assert_string_equal(err.msg, "chdir /nonexistent-dir-nx: No such file or directory");
        assert_int_equal(waitpid(-1, &st, WNOHANG), -1);
        assert_int_equal(errno, ECHILD);
        vec_free(argv);
}

static void test_relative_cwd_refused_before_fork(void **state)
{
        char **argv = vec("/bin/true", NULL);
        nx_spawn_req req = base_req(argv, NULL);
        nx_child c;
        err_t err = ERR_INIT;

        req.cwd = "tmp";
        assert_int_equal(nx_spawn(&req, &c, &err), -1);
        assert_string_equal(err.msg, "spawn: cwd \"tmp\" must be absolute");
        vec_free(argv);
}

static void test_empty_argv_refused(void **state)
{
        char **argv = vec(NULL);
        nx_spawn_req req = base_req(argv, NULL);
        nx_child c;
        err_t err = ERR_INIT;

        assert_int_equal(nx_spawn(&req, &c, &err), -1);
        assert_string_equal(err.msg, "spawn: empty argv");
        vec_free(argv);
}

static void test_cwd_is_applied(void **state)
{
        char **argv = vec("/bin/pwd", NULL);
        nx_spawn_req req = base_req(argv, NULL);
        outbuf o;
        int code = -1;
        err_t err = ERR_INIT;

        req.cwd = "/usr/share";
        assert_int_equal(run(&req, &o, &code, &err), 0);
        assert_string_equal(o.out, "/usr/share\n");
        vec_free(argv);
}

static void test_stdin_is_dev_null(void **state)
{
        char **argv = vec("/bin/cat", NULL);
        nx_spawn_req req = base_req(argv, NULL);
        outbuf o;
        int code = -1;
        err_t err = ERR_INIT;

        assert_int_equal(run(&req, &o, &code, &err), 0);
        assert_string_equal(o.out, "");
        assert_int_equal(code, 0);
        vec_free(argv);
}

static void test_stdout_and_stderr_are_separate_pipes(void **state)
{
        char **argv = vec("/bin/sh", "-c", "echo out; echo err >&2", NULL);
        nx_spawn_req req = base_req(argv, NULL);
        outbuf o;
        int code = -1;
        err_t err = ERR_INIT;

        assert_int_equal(run(&req, &o, &code, &err), 0);
        assert_string_equal(o.out, "out\n");
        assert_string_equal(o.err, "err\n");
        vec_free(argv);
}

static void test_parent_ends_are_nonblocking_and_cloexec(void **state)
{
        char **argv = vec("/bin/true", NULL);
        nx_spawn_req req = base_req(argv, NULL);
        nx_child c;
        err_t err = ERR_INIT;

        assert_int_equal(nx_spawn(&req, &c, &err), 0);
        int fds[2] = { c.stdout_fd, c.stderr_fd };
        for (int i = 0; i < 2; i++) {
                assert_true(fcntl(fds[i], F_GETFL) & O_NONBLOCK);
                assert_true(fcntl(fds[i], F_GETFD) & FD_CLOEXEC);
        }
        if (c.pidfd >= 0)
                assert_true(fcntl(c.pidfd, F_GETFD) & FD_CLOEXEC);
        assert_int_equal(nx_child_reap(&c, true, &err), 1);
        nx_child_close(&c);
        assert_int_equal(c.stdout_fd, -1);
        assert_int_equal(c.pidfd, -1);
        vec_free(argv);
}

static void test_inherited_non_cloexec_fd_is_closed_in_child(void **state)
{
        int leak = open("/dev/null", O_RDONLY);   /* deliberately without O_CLOEXEC */
        char script[128];
        assert_true(leak >= 3);
        (void)str_printf(script, sizeof(script), "test -e /proc/self/fd/%d", leak);
        char **argv = vec("/bin/sh", "-c", script, NULL);
        nx_spawn_req req = base_req(argv, NULL);
        outbuf o;
        int code = -1;
        err_t err = ERR_INIT;

        assert_int_equal(run(&req, &o, &code, &err), 0);
        assert_int_equal(code, 1);   /* test -e failed: the fd is not there */
        close(leak);
        vec_free(argv);
}

static void test_extra_fd_is_passed_at_requested_number(void **state)
{
        int p[2];
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        assert_int_equal(write(p[1], "via-fd-5", 8), 8);
        close(p[1]);
        char **argv = vec("/bin/sh", "-c", "cat <&5", NULL);
        nx_spawn_req req = base_req(argv, NULL);
        nx_spawn_fd extra = { p[0], 5 };
        outbuf o;
        int code = -1;
        err_t err = ERR_INIT;

        req.extra_fds = &extra;
        req.n_extra_fds = 1;
        assert_int_equal(run(&req, &o, &code, &err), 0);
        assert_string_equal(o.out, "via-fd-5");
        assert_int_equal(code, 0);
        close(p[0]);
        vec_free(argv);
}

static void test_extra_fd_below_three_refused(void **state)
{
        char **argv = vec("/bin/true", NULL);
        nx_spawn_req req = base_req(argv, NULL);
        nx_spawn_fd extra = { 0, 2 };
        nx_child c;
        err_t err = ERR_INIT;

        req.extra_fds = &extra;
        req.n_extra_fds = 1;
        assert_int_equal(nx_spawn(&req, &c, &err), -1);
        assert_non_null(strstr(err.msg, "out of range"));
        vec_free(argv);
}

static void test_rlimit_is_applied_in_child(void **state)
{
        char **argv = vec("/bin/sh", "-c", "ulimit -n", NULL);
        nx_spawn_req req = base_req(argv, NULL);
        nx_spawn_rlimit rl = { RLIMIT_NOFILE, { 77, 77 } };
        outbuf o;
        int code = -1;
        err_t err = ERR_INIT;

        req.rlimits = &rl;
        req.n_rlimits = 1;
        assert_int_equal(run(&req, &o, &code, &err), 0);
        assert_string_equal(o.out, "77\n");
        vec_free(argv);
}

static void test_id_drop_runs_child_as_nobody(void **state)
{
        if (geteuid() != 0)
                SKIP_BECAUSE("needs root to change uid");
        char **argv = vec("/bin/sh", "-c", "id -u; id -g; id -G", NULL);
        char **envp = vec("PATH=/bin:/usr/bin", NULL);
        nx_spawn_req req = base_req(argv, envp);
        outbuf o;
        int code = -1;
        err_t err = ERR_INIT;

        req.drop_ids = true;
        req.uid = 65534;
        req.gid = 65534;
        assert_int_equal(run(&req, &o, &code, &err), 0);
        assert_string_equal(o.out, "65534\n65534\n65534\n");
        vec_free(envp);
        vec_free(argv);
}

static void test_signal_dispositions_and_mask_are_reset(void **state)
{
        struct sigaction ign, old_pipe, old_term;
        sigset_t block, old_mask;
        char **argv = vec("/bin/sh", "-c", "grep -E '^Sig(Blk|Ign)' /proc/self/status", NULL);
        nx_spawn_req req = base_req(argv, NULL);
        outbuf o;
        int code = -1;
        err_t err = ERR_INIT;

        memset(&ign, 0, sizeof(ign));
        ign.sa_handler = SIG_IGN;
        sigaction(SIGPIPE, &ign, &old_pipe);
        sigaction(SIGTERM, &ign, &old_term);
        sigemptyset(&block);
        sigaddset(&block, SIGUSR1);
        sigprocmask(SIG_BLOCK, &block, &old_mask);
        int rc = run(&req, &o, &code, &err);
        sigaction(SIGPIPE, &old_pipe, NULL);
        sigaction(SIGTERM, &old_term, NULL);
        sigprocmask(SIG_SETMASK, &old_mask, NULL);
        assert_int_equal(rc, 0);
        assert_string_equal(o.out, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
        vec_free(argv);
}

/* ---- sessions and groups ---- */

static void test_new_session_makes_child_session_and_group_leader(void **state)
{
        char **argv = vec("/bin/sleep", "100", NULL);
        nx_spawn_req req = base_req(argv, NULL);
        nx_child c;
        err_t err = ERR_INIT;

        assert_int_equal(nx_spawn(&req, &c, &err), 0);
        assert_int_equal(getsid(c.pid), c.pid);
        assert_int_equal(getpgid(c.pid), c.pid);
        assert_int_equal(c.pgid, c.pid);
        kill_and_reap(&c);
        vec_free(argv);
}

static void test_without_new_session_child_leads_own_group_only(void **state)
{
        char **argv = vec("/bin/sleep", "100", NULL);
        nx_spawn_req req = base_req(argv, NULL);
        nx_child c;
        err_t err = ERR_INIT;

        req.new_session = false;
        assert_int_equal(nx_spawn(&req, &c, &err), 0);
        assert_int_equal(getpgid(c.pid), c.pid);
        assert_int_equal(getsid(c.pid), getsid(0));
        kill_and_reap(&c);
        vec_free(argv);
}

static void test_pidfd_becomes_readable_when_child_exits(void **state)
{
        char **argv = vec("/bin/true", NULL);
        nx_spawn_req req = base_req(argv, NULL);
        nx_child c;
        err_t err = ERR_INIT;

        assert_int_equal(nx_spawn(&req, &c, &err), 0);
        if (c.pidfd < 0) {
                kill_and_reap(&c);
                vec_free(argv);
                SKIP_BECAUSE("pidfd_open is not available on this kernel");
        }
        struct pollfd p = { c.pidfd, POLLIN, 0 };
        assert_int_equal(poll(&p, 1, 30000), 1);
        assert_int_equal(nx_child_reap(&c, false, &err), 1);
        assert_int_equal(nx_wait_status_to_exit_code(c.wait_status), 0);
        nx_child_close(&c);
        vec_free(argv);
}

static void test_reap_nonblocking_returns_zero_while_running(void **state)
{
        char **argv = vec("/bin/sleep", "100", NULL);
        nx_spawn_req req = base_req(argv, NULL);
        nx_child c;
        err_t err = ERR_INIT;

        assert_int_equal(nx_spawn(&req, &c, &err), 0);
        assert_int_equal(nx_child_reap(&c, false, &err), 0);
        assert_false(c.reaped);
        kill_and_reap(&c);
        assert_true(c.reaped);
        vec_free(argv);
}

/* ---- exit codes (§5.8) ---- */

static void test_exit_code_three_is_three(void **state)
{
        char **argv = vec("/bin/sh", "-c", "exit 3", NULL);
        nx_spawn_req req = base_req(argv, NULL);
        outbuf o;
        int code = -1;
        err_t err = ERR_INIT;

        assert_int_equal(run(&req, &o, &code, &err), 0);
        assert_int_equal(code, 3);
        vec_free(argv);
}

static void test_sigkill_maps_to_137(void **state)
{
        char **argv = vec("/bin/sleep", "100", NULL);
        nx_spawn_req req = base_req(argv, NULL);
        nx_child c;
        err_t err = ERR_INIT;

        assert_int_equal(nx_spawn(&req, &c, &err), 0);
        assert_int_equal(nx_child_kill_tree(&c, NULL, SIGKILL, &err), 0);
        assert_int_equal(nx_child_reap(&c, true, &err), 1);
        assert_int_equal(nx_wait_status_to_exit_code(c.wait_status), 137);
        nx_child_close(&c);
        vec_free(argv);
}

static void test_sigterm_maps_to_143(void **state)
{
        char **argv = vec("/bin/sh", "-c", "kill -TERM $$; sleep 100", NULL);
        nx_spawn_req req = base_req(argv, NULL);
        outbuf o;
        int code = -1;
        err_t err = ERR_INIT;

        assert_int_equal(run(&req, &o, &code, &err), 0);
        assert_int_equal(code, 143);
        vec_free(argv);
}

/* spec nexus §12 #99 */
static void test_wait_status_mapping_table(void **state)
{
        assert_int_equal(nx_wait_status_to_exit_code(W_EXITCODE(0, 0)), 0);
        assert_int_equal(nx_wait_status_to_exit_code(W_EXITCODE(3, 0)), 3);
        assert_int_equal(nx_wait_status_to_exit_code(W_EXITCODE(255, 0)), 255);
        assert_int_equal(nx_wait_status_to_exit_code(W_EXITCODE(0, SIGKILL)), 137);
        assert_int_equal(nx_wait_status_to_exit_code(W_EXITCODE(0, SIGTERM)), 143);
        /* stopped: neither exit nor signal death */
        assert_int_equal(nx_wait_status_to_exit_code(W_STOPCODE(SIGSTOP)), 1);
}

/* spec nexus §12 #98, #115, #240 (deadline → timed_out, exit 124) */
static void test_run_outcome_deadline_forces_124_even_after_exit_zero(void **state)
{
        int code = -1;
        assert_string_equal(nx_run_outcome(W_EXITCODE(0, 0), true, false, &code), "timed_out");
        assert_int_equal(code, 124);
        assert_string_equal(nx_run_outcome(W_EXITCODE(0, SIGKILL), true, true, &code),
                            "timed_out");
        assert_int_equal(code, 124);
}

/* spec nexus §12 #98, #116 (cancel → canceled) */
static void test_run_outcome_cancel_keeps_signal_exit_code(void **state)
{
        int code = -1;
        assert_string_equal(nx_run_outcome(W_EXITCODE(0, SIGKILL), false, true, &code),
                            "canceled");
        assert_int_equal(code, 137);
}

/* spec nexus §12 #98, #99, #110, #111 */
static void test_run_outcome_success_and_failure(void **state)
{
        int code = -1;
        assert_string_equal(nx_run_outcome(W_EXITCODE(0, 0), false, false, &code), "succeeded");
        assert_int_equal(code, 0);
        assert_string_equal(nx_run_outcome(W_EXITCODE(2, 0), false, false, &code), "failed");
        assert_int_equal(code, 2);
}

/* ---- tree-kill (§6.0) ---- */

static void test_group_kill_kills_grandchildren(void **state)
{
        char **argv = vec("/bin/sh", "-c",
                          "sleep 100 & echo $!; sleep 100 & echo $!; wait", NULL);
        nx_spawn_req req = base_req(argv, NULL);
        nx_child c;
        pid_t gc[2];
        err_t err = ERR_INIT;

        assert_int_equal(nx_spawn(&req, &c, &err), 0);
        read_pids(&c, gc, 2);
        assert_true(process_running(gc[0]));
        assert_true(process_running(gc[1]));
        assert_int_equal(nx_child_kill_tree(&c, NULL, SIGKILL, &err), 0);
        assert_int_equal(nx_child_reap(&c, true, &err), 1);
        assert_int_equal(nx_wait_status_to_exit_code(c.wait_status), 137);
        assert_true(all_descendants_gone());
        assert_int_equal(kill(gc[0], 0), -1);
        assert_int_equal(errno, ESRCH);
        assert_int_equal(kill(gc[1], 0), -1);
        nx_child_close(&c);
        vec_free(argv);
}

static void test_group_kill_after_leader_reaped_still_reaches_group(void **state)
{
        char **argv = vec("/bin/sh", "-c", "sleep 100 & echo $!; exit 0", NULL);
        nx_spawn_req req = base_req(argv, NULL);
        nx_child c;
        pid_t gc;
        err_t err = ERR_INIT;

        assert_int_equal(nx_spawn(&req, &c, &err), 0);
        read_pids(&c, &gc, 1);
        assert_int_equal(nx_child_reap(&c, true, &err), 1);
        assert_true(process_running(gc));
        assert_int_equal(nx_child_kill_tree(&c, NULL, SIGKILL, &err), 0);
        assert_true(all_descendants_gone());
        assert_false(process_running(gc));
        nx_child_close(&c);
        vec_free(argv);
}

/* Documents why cgroups are needed (§6.0 REF weakness): without one, a descendant that
 * starts its own session is out of reach of the group kill. */
static void test_setsid_escapee_survives_group_kill_without_cgroup(void **state)
{
        char **argv = vec("/bin/sh", "-c", "setsid sleep 100 & echo $!; sleep 100", NULL);
        char **envp = vec("PATH=/usr/bin:/bin", NULL);
        nx_spawn_req req = base_req(argv, envp);
        nx_child c;
        pid_t esc;
        err_t err = ERR_INIT;

        assert_int_equal(nx_spawn(&req, &c, &err), 0);
        read_pids(&c, &esc, 1);
        int i;
        for (i = 0; i < WAIT_STEPS && getsid(esc) == c.pid; i++)
                step_sleep();
        assert_true(i < WAIT_STEPS);
        assert_int_equal(nx_child_kill_tree(&c, NULL, SIGKILL, &err), 0);
        assert_int_equal(nx_child_reap(&c, true, &err), 1);
        bool survived = process_running(esc);
        (void)kill(esc, SIGKILL);
        assert_true(all_descendants_gone());
        assert_true(survived);
        nx_child_close(&c);
        vec_free(argv);
        vec_free(envp);
}

static void test_kill_tree_of_exited_child_is_not_an_error(void **state)
{
        char **argv = vec("/bin/true", NULL);
        nx_spawn_req req = base_req(argv, NULL);
        nx_child c;
        err_t err = ERR_INIT;

        assert_int_equal(nx_spawn(&req, &c, &err), 0);
        assert_int_equal(nx_child_reap(&c, true, &err), 1);
        assert_int_equal(nx_child_kill_tree(&c, NULL, SIGKILL, &err), 0);
        nx_child_close(&c);
        vec_free(argv);
}

/* Whatever a failed test left behind: SIGKILL our children (orphans included, we are the
 * subreaper) and reap them all. */
static int teardown_reap(void **state)
{
        char path[64], buf[4096];

        for (int round = 0; round < 100; round++) {
                (void)str_printf(path, sizeof(path), "/proc/self/task/%ld/children",
                                 (long)getpid());
                int fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        break;
                ssize_t n = read(fd, buf, sizeof(buf) - 1);
                close(fd);
                if (n <= 0)
                        break;
                buf[n] = '\0';
                for (char *p = buf; *p;) {
                        char *end;
                        long v = strtol(p, &end, 10);
                        if (end == p)
                                break;
                        if (v > 1)
                                (void)kill((pid_t)v, SIGKILL);
                        p = end;
                        while (*p == ' ' || *p == '\n')
                                p++;
                }
                (void)all_descendants_gone();
        }
        (void)all_descendants_gone();
        return 0;
}

int main(void)
{
        /* orphaned grandchildren come back to us, so tests can prove a tree is gone */
        (void)prctl(PR_SET_CHILD_SUBREAPER, 1);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_spawn_echo_output_and_exit_zero, teardown_reap),
                cmocka_unit_test_teardown(test_child_sees_exactly_the_given_environment, teardown_reap),
                cmocka_unit_test_teardown(test_null_envp_gives_empty_environment, teardown_reap),
                cmocka_unit_test_teardown(test_bare_name_is_found_in_child_path, teardown_reap),
                cmocka_unit_test_teardown(test_bare_name_not_in_path_is_clear_error, teardown_reap),
                cmocka_unit_test_teardown(test_exec_failure_is_reported_and_child_reaped, teardown_reap),
                cmocka_unit_test_teardown(test_exec_of_non_executable_is_reported, teardown_reap),
                cmocka_unit_test_teardown(test_chdir_failure_is_reported, teardown_reap),
                cmocka_unit_test_teardown(test_relative_cwd_refused_before_fork, teardown_reap),
                cmocka_unit_test_teardown(test_empty_argv_refused, teardown_reap),
                cmocka_unit_test_teardown(test_cwd_is_applied, teardown_reap),
                cmocka_unit_test_teardown(test_stdin_is_dev_null, teardown_reap),
                cmocka_unit_test_teardown(test_stdout_and_stderr_are_separate_pipes, teardown_reap),
                cmocka_unit_test_teardown(test_parent_ends_are_nonblocking_and_cloexec, teardown_reap),
                cmocka_unit_test_teardown(test_inherited_non_cloexec_fd_is_closed_in_child, teardown_reap),
                cmocka_unit_test_teardown(test_extra_fd_is_passed_at_requested_number, teardown_reap),
                cmocka_unit_test_teardown(test_extra_fd_below_three_refused, teardown_reap),
                cmocka_unit_test_teardown(test_rlimit_is_applied_in_child, teardown_reap),
                cmocka_unit_test_teardown(test_id_drop_runs_child_as_nobody, teardown_reap),
                cmocka_unit_test_teardown(test_signal_dispositions_and_mask_are_reset, teardown_reap),
                cmocka_unit_test_teardown(test_new_session_makes_child_session_and_group_leader, teardown_reap),
                cmocka_unit_test_teardown(test_without_new_session_child_leads_own_group_only, teardown_reap),
                cmocka_unit_test_teardown(test_pidfd_becomes_readable_when_child_exits, teardown_reap),
                cmocka_unit_test_teardown(test_reap_nonblocking_returns_zero_while_running, teardown_reap),
                cmocka_unit_test_teardown(test_exit_code_three_is_three, teardown_reap),
                cmocka_unit_test_teardown(test_sigkill_maps_to_137, teardown_reap),
                cmocka_unit_test_teardown(test_sigterm_maps_to_143, teardown_reap),
                cmocka_unit_test(test_wait_status_mapping_table),
                cmocka_unit_test(test_run_outcome_deadline_forces_124_even_after_exit_zero),
                cmocka_unit_test(test_run_outcome_cancel_keeps_signal_exit_code),
                cmocka_unit_test(test_run_outcome_success_and_failure),
                cmocka_unit_test_teardown(test_group_kill_kills_grandchildren, teardown_reap),
                cmocka_unit_test_teardown(test_group_kill_after_leader_reaped_still_reaches_group, teardown_reap),
                cmocka_unit_test_teardown(test_setsid_escapee_survives_group_kill_without_cgroup, teardown_reap),
                cmocka_unit_test_teardown(test_kill_tree_of_exited_child_is_not_an_error, teardown_reap),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
