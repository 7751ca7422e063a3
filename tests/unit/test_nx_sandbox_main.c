/* Tests for the nexus-sandbox program (src/nexus/sandbox_main.c) run as a real process: the
 * usage errors (125), the fail-closed Landlock ABI check (126), exec and its exit codes,
 * rlimits, the Landlock rules it applies, and that it is static so it runs inside a bwrap
 * whose root holds nothing but itself and a busybox. The binary is built next to this test
 * (<build>/src/nexus/nexus-sandbox), so it is found beside /proc/self/exe. */
#include "testutil.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "sandbox/landlock.h"

#define OUT_MAX 4096

static char sandbox_path[PATH_MAX];

typedef struct run_result {
        int code;                    /* exit code, or 128+signal */
        char out[OUT_MAX];           /* stdout */
        char err[OUT_MAX];           /* stderr */
} run_result;

static int find_sandbox(void **state)
{
        (void)state;
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n <= 0)
                return -1;
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (!slash)
                return -1;
        *slash = '\0';
        int r = snprintf(sandbox_path, sizeof(sandbox_path), "%s/nexus-sandbox", self);
        if (r < 0 || (size_t)r >= sizeof(sandbox_path))
                return -1;
        return access(sandbox_path, X_OK);
}

static void read_pipe(int fd, char *dst)
{
        size_t len = 0;
        for (;;) {
                if (len >= OUT_MAX - 1) {
                        char sink[256];
                        if (read(fd, sink, sizeof(sink)) <= 0)
                                break;
                        continue;
                }
                ssize_t n = read(fd, dst + len, OUT_MAX - 1 - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                len += (size_t)n;
        }
        dst[len] = '\0';
}

/* Runs argv (argv[0] is replaced by the path of the program when NULL). Output is small in
 * these tests, so stdout is read to the end before stderr without deadlock. */
static void run(const char *const argv[], run_result *res)
{
        int po[2], pe[2];
        assert_int_equal(pipe2(po, O_CLOEXEC), 0);
        assert_int_equal(pipe2(pe, O_CLOEXEC), 0);
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                dup2(po[1], 1);
                dup2(pe[1], 2);
                char *v[40];
                size_t i = 0;
                v[i++] = sandbox_path;
                for (; argv[i] && i < 39; i++)
                        v[i] = strdup(argv[i]);
                v[i] = NULL;
                execv(v[0], v);
                _exit(120);
        }
        close(po[1]);
        close(pe[1]);
        read_pipe(po[0], res->out);
        read_pipe(pe[0], res->err);
        close(po[0]);
        close(pe[0]);
        int st = 0;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        res->code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void expect_usage_error(const char *const argv[], const char *msg_part)
{
        static run_result r;
        run(argv, &r);
        if (r.code != 125)
                fail_msg("exit %d, stderr: %s", r.code, r.err);
        assert_non_null(strstr(r.err, "nexus-sandbox: "));
        assert_non_null(strstr(r.err, msg_part));
}

static void test_no_args_is_usage_error(void **state)
{
        (void)state;
        const char *const argv[] = { NULL, NULL };
        expect_usage_error(argv, "missing \"--\"");
}

static void test_unknown_option_is_usage_error(void **state)
{
        (void)state;
        const char *const argv[] = { NULL, "--bogus", "x", "--", "true", NULL };
        expect_usage_error(argv, "unknown option \"--bogus\"");
}

static void test_missing_program_is_usage_error(void **state)
{
        (void)state;
        const char *const argv[] = { NULL, "--ro", "/", "--", NULL };
        expect_usage_error(argv, "missing program");
}

static void test_option_without_value_is_usage_error(void **state)
{
        (void)state;
        const char *const argv[] = { NULL, "--ro", NULL };
        expect_usage_error(argv, "--ro needs a PATH");
}

static void test_port_zero_is_usage_error(void **state)
{
        (void)state;
        const char *const argv[] = { NULL, "--connect-port", "0", "--", "true", NULL };
        expect_usage_error(argv, "port \"0\" out of range 1-65535");
}

static void test_port_65536_is_usage_error(void **state)
{
        (void)state;
        const char *const argv[] = { NULL, "--connect-port", "65536", "--", "true", NULL };
        expect_usage_error(argv, "port \"65536\" out of range 1-65535");
}

static void test_port_not_a_number_is_usage_error(void **state)
{
        (void)state;
        const char *const argv[] = { NULL, "--connect-port", "+80", "--", "true", NULL };
        expect_usage_error(argv, "port \"+80\"");
}

static void test_bad_min_abi_is_usage_error(void **state)
{
        (void)state;
        const char *const argv[] = { NULL, "--min-abi", "-1", "--", "true", NULL };
        expect_usage_error(argv, "--min-abi \"-1\"");
}

static void test_unknown_rlimit_is_usage_error(void **state)
{
        (void)state;
        const char *const argv[] = { NULL, "--rlimit", "bogus=1", "--", "true", NULL };
        expect_usage_error(argv, "unknown limit name");
}

static void test_rlimit_soft_above_hard_is_usage_error(void **state)
{
        (void)state;
        const char *const argv[] = { NULL, "--rlimit", "nofile=100:50", "--", "true", NULL };
        expect_usage_error(argv, "soft limit above hard limit");
}

static void test_rlimit_without_equals_is_usage_error(void **state)
{
        (void)state;
        const char *const argv[] = { NULL, "--rlimit", "nofile", "--", "true", NULL };
        expect_usage_error(argv, "expected NAME=SOFT[:HARD]");
}

static void test_help_exits_zero(void **state)
{
        (void)state;
        static run_result r;
        const char *const argv[] = { NULL, "--help", NULL };
        run(argv, &r);
        assert_int_equal(r.code, 0);
        assert_non_null(strstr(r.out, "usage: nexus-sandbox"));
}

static void test_min_abi_99_fails_closed_126(void **state)
{
        (void)state;
        static run_result r;
        const char *const argv[] = { NULL, "--min-abi", "99", "--", "/bin/sh", "-c",
                                     "echo ran", NULL };
        run(argv, &r);
        assert_int_equal(r.code, 126);
        char want[80];
        int n = snprintf(want, sizeof(want), "nexus-sandbox: Landlock ABI %d < required 99",
                         nx_landlock_abi());
        assert_true(n > 0 && (size_t)n < sizeof(want));
        assert_non_null(strstr(r.err, want));
        assert_null(strstr(r.out, "ran"));   /* the program never ran */
}

static void test_exec_passes_exit_code_and_args(void **state)
{
        (void)state;
        static run_result r;
        const char *const argv[] = { NULL, "--", "/bin/sh", "-c", "echo \"$0-$1\"; exit 7",
                                     "a", "b", NULL };
        run(argv, &r);
        assert_int_equal(r.code, 7);
        assert_string_equal(r.out, "a-b\n");
}

static void test_exec_searches_path(void **state)
{
        (void)state;
        static run_result r;
        const char *const argv[] = { NULL, "--", "true", NULL };
        run(argv, &r);
        assert_int_equal(r.code, 0);
}

static void test_program_not_found_127(void **state)
{
        (void)state;
        static run_result r;
        const char *const argv[] = { NULL, "--", "/nonexistent/prog", NULL };
        run(argv, &r);
        assert_int_equal(r.code, 127);
        assert_non_null(strstr(r.err, "nexus-sandbox: exec \"/nonexistent/prog\""));
}

static void test_missing_rw_path_fails_126(void **state)
{
        (void)state;
        static run_result r;
        const char *const argv[] = { NULL, "--rw", "/nonexistent/dir", "--", "true", NULL };
        run(argv, &r);
        assert_int_equal(r.code, 126);
        assert_non_null(strstr(r.err, "/nonexistent/dir"));
}

static void test_missing_ro_path_is_skipped(void **state)
{
        (void)state;
        static run_result r;
        const char *const argv[] = { NULL, "--ro", "/", "--ro", "/nonexistent/dir", "--",
                                     "true", NULL };
        run(argv, &r);
        assert_int_equal(r.code, 0);
}

static void test_rlimit_applied(void **state)
{
        (void)state;
        static run_result r;
        const char *const argv[] = { NULL, "--rlimit", "nofile=50:60", "--", "/bin/sh", "-c",
                                     "ulimit -n; ulimit -Hn", NULL };
        run(argv, &r);
        assert_int_equal(r.code, 0);
        assert_string_equal(r.out, "50\n60\n");
}

static void test_core_dumps_off_by_default(void **state)
{
        (void)state;
        static run_result r;
        const char *const argv[] = { NULL, "--", "/bin/sh", "-c", "ulimit -c; ulimit -Hc", NULL };
        run(argv, &r);
        assert_int_equal(r.code, 0);
        assert_string_equal(r.out, "0\n0\n");
}

static void test_rlimit_core_can_be_given(void **state)
{
        (void)state;
        static run_result r;
        const char *const argv[] = { NULL, "--rlimit", "core=unlimited", "--", "/bin/sh", "-c",
                                     "ulimit -c", NULL };
        run(argv, &r);
        /* may be refused when our own hard limit is lower; then it is a setup failure */
        if (r.code == 126)
                assert_non_null(strstr(r.err, "setrlimit core"));
        else
                assert_string_equal(r.out, "unlimited\n");
}

static void test_inherited_fds_are_closed_before_exec(void **state)
{
        (void)state;
        /* an fd without CLOEXEC, as a careless caller would leak it */
        int fd = open("/dev/null", O_RDONLY);
        assert_true(fd >= 3);
        char script[128];
        int n = snprintf(script, sizeof(script),
                         "[ -e /proc/self/fd/%d ] && echo leaked; echo done", fd);
        assert_true(n > 0 && (size_t)n < sizeof(script));
        static run_result r;
        const char *const argv[] = { NULL, "--", "/bin/sh", "-c", script, NULL };
        run(argv, &r);
        close(fd);
        assert_int_equal(r.code, 0);
        assert_string_equal(r.out, "done\n");
}

typedef struct tmpdirs {
        char rw[64];
        char other[64];
} tmpdirs;

static void make_dirs(tmpdirs *d)
{
        int n = snprintf(d->rw, sizeof(d->rw), "/tmp/nx-sbx-rw-XXXXXX");
        assert_true(n > 0);
        assert_non_null(mkdtemp(d->rw));
        n = snprintf(d->other, sizeof(d->other), "/tmp/nx-sbx-other-XXXXXX");
        assert_true(n > 0);
        assert_non_null(mkdtemp(d->other));
}

static void remove_dirs(tmpdirs *d)
{
        char p[128];
        int n = snprintf(p, sizeof(p), "%s/f", d->rw);
        assert_true(n > 0);
        unlink(p);
        n = snprintf(p, sizeof(p), "%s/f", d->other);
        assert_true(n > 0);
        unlink(p);
        rmdir(d->rw);
        rmdir(d->other);
}

static void test_landlock_rw_writable_other_denied(void **state)
{
        (void)state;
        if (nx_landlock_abi() < 1)
                SKIP_BECAUSE("Landlock not available");
        tmpdirs d;
        make_dirs(&d);
        char script[256];
        int n = snprintf(script, sizeof(script),
                         "echo ok > %s/f || exit 3; echo bad > %s/f 2>/dev/null && exit 4; "
                         "cat /etc/hostname >/dev/null || exit 5; exit 0", d.rw, d.other);
        assert_true(n > 0 && (size_t)n < sizeof(script));
        static run_result r;
        const char *const argv[] = { NULL, "--ro", "/", "--rw", d.rw, "--dev", "/dev", "--",
                                     "/bin/sh", "-c", script, NULL };
        run(argv, &r);
        remove_dirs(&d);
        if (r.code != 0)
                fail_msg("exit %d: %s", r.code, r.err);
}

static void test_landlock_connect_port_rule_applied(void **state)
{
        (void)state;
        if (nx_landlock_abi() < 4)
                SKIP_BECAUSE("Landlock ABI %d < 4 (TCP network rules)", nx_landlock_abi());
        /* bash's /dev/tcp is not in dash; python3 does the connect attempt. Port 1 is closed
         * on loopback: allowed → ECONNREFUSED, refused by Landlock → EACCES. */
        static run_result r;
        const char *const argv[] = {
                NULL, "--ro", "/", "--dev", "/dev", "--connect-port", "1", "--", "python3", "-c",
                "import socket,errno\n"
                "def t(p):\n"
                "  s=socket.socket()\n"
                "  try:\n"
                "    s.connect(('127.0.0.1',p)); return 0\n"
                "  except OSError as e: return e.errno\n"
                "print(t(1)==errno.ECONNREFUSED, t(2)==errno.EACCES)\n",
                NULL };
        run(argv, &r);
        if (r.code != 0)
                fail_msg("exit %d: %s", r.code, r.err);
        assert_string_equal(r.out, "True True\n");
}

/* A static binary has no PT_INTERP program header. */
static void test_binary_is_static(void **state)
{
        (void)state;
        _cleanup_close_ int fd = open(sandbox_path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        Elf64_Ehdr eh;
        assert_int_equal(pread(fd, &eh, sizeof(eh), 0), (ssize_t)sizeof(eh));
        assert_memory_equal(eh.e_ident, ELFMAG, SELFMAG);
        assert_true(eh.e_phnum > 0 && eh.e_phnum < 64);
        for (unsigned i = 0; i < eh.e_phnum; i++) {
                Elf64_Phdr ph;
                off_t off = (off_t)eh.e_phoff + (off_t)i * eh.e_phentsize;
                assert_int_equal(pread(fd, &ph, sizeof(ph), off), (ssize_t)sizeof(ph));
                assert_int_not_equal(ph.p_type, PT_INTERP);
        }
}

/* The deployment shape: an otherwise empty bwrap root with only nexus-sandbox and busybox, and
 * the default rules (no --ro/--rw): /workspace and /tmp writable, /scratch (a writable tmpfs
 * that no default names) refused by Landlock. */
static void test_runs_in_bwrap_with_busybox_only_root(void **state)
{
        (void)state;
        if (access("/usr/bin/bwrap", X_OK) < 0)
                SKIP_BECAUSE("bubblewrap not installed");
        if (access("/bin/busybox", X_OK) < 0)
                SKIP_BECAUSE("busybox-static not installed");
        static run_result r;
        int po[2];
        assert_int_equal(pipe2(po, O_CLOEXEC), 0);
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                dup2(po[1], 1);
                const char *const a[] = {
                        "bwrap", "--unshare-all", "--die-with-parent", "--tmpfs", "/",
                        "--ro-bind", sandbox_path, "/run/nexus/sandbox",
                        "--ro-bind", "/bin/busybox", "/bin/busybox",
                        "--symlink", "busybox", "/bin/sh", "--dev", "/dev", "--proc", "/proc",
                        "--tmpfs", "/workspace", "--tmpfs", "/scratch", "--tmpfs", "/tmp",
                        "--", "/run/nexus/sandbox", "--min-abi", "1", "--",
                        "/bin/sh", "-c",
                        "echo ok > /workspace/f && cat /workspace/f; "
                        "echo x > /scratch/f 2>/dev/null && echo BAD; "
                        "echo x > /tmp/f && echo tmp; echo ok2 > /dev/null && echo dev",
                        NULL };
                char *v[40];
                size_t i = 0;
                for (; a[i]; i++)
                        v[i] = strdup(a[i]);
                v[i] = NULL;
                execvp(v[0], v);
                _exit(120);
        }
        close(po[1]);
        read_pipe(po[0], r.out);
        close(po[0]);
        int st = 0;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
        assert_string_equal(r.out, "ok\ntmp\ndev\n");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_no_args_is_usage_error),
                cmocka_unit_test(test_unknown_option_is_usage_error),
                cmocka_unit_test(test_missing_program_is_usage_error),
                cmocka_unit_test(test_option_without_value_is_usage_error),
                cmocka_unit_test(test_port_zero_is_usage_error),
                cmocka_unit_test(test_port_65536_is_usage_error),
                cmocka_unit_test(test_port_not_a_number_is_usage_error),
                cmocka_unit_test(test_bad_min_abi_is_usage_error),
                cmocka_unit_test(test_unknown_rlimit_is_usage_error),
                cmocka_unit_test(test_rlimit_soft_above_hard_is_usage_error),
                cmocka_unit_test(test_rlimit_without_equals_is_usage_error),
                cmocka_unit_test(test_help_exits_zero),
                cmocka_unit_test(test_min_abi_99_fails_closed_126),
                cmocka_unit_test(test_exec_passes_exit_code_and_args),
                cmocka_unit_test(test_exec_searches_path),
                cmocka_unit_test(test_program_not_found_127),
                cmocka_unit_test(test_missing_rw_path_fails_126),
                cmocka_unit_test(test_missing_ro_path_is_skipped),
                cmocka_unit_test(test_rlimit_applied),
                cmocka_unit_test(test_core_dumps_off_by_default),
                cmocka_unit_test(test_rlimit_core_can_be_given),
                cmocka_unit_test(test_inherited_fds_are_closed_before_exec),
                cmocka_unit_test(test_landlock_rw_writable_other_denied),
                cmocka_unit_test(test_landlock_connect_port_rule_applied),
                cmocka_unit_test(test_binary_is_static),
                cmocka_unit_test(test_runs_in_bwrap_with_busybox_only_root),
        };
        return cmocka_run_group_tests(tests, find_sandbox, NULL);
}
