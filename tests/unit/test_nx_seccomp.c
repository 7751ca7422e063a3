/* Tests for sandbox/seccomp: the memfd hand-out, and every refusal of the filter checked in a
 * forked child that loaded the exact bytes bwrap would get (issue #6 item 1). Children call
 * setsid() first so that nothing they do can reach the test runner's terminal, and use
 * harmless arguments, so that without the filter each call fails with some errno other than
 * the one asserted (or succeeds) — which is what makes these tests able to fail. */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "sandbox/seccomp.h"

#ifndef SYS_open_tree_attr
#define SYS_open_tree_attr 467
#endif

/* ---- child runner ------------------------------------------------------------------------ */

typedef int (*child_fn)(const void *arg);

/* Forks; the child loads the filter from a fresh memfd (unless filtered is false), then returns
 * fn's result as its exit status. Returns the raw wait status. */
static int run_child(bool filtered, child_fn fn, const void *arg)
{
        int fd = -1;
        if (filtered) {
                err_t err = ERR_INIT;
                int r = nx_seccomp_memfd(&fd, &err);
                if (r < 0)
                        fail_msg("nx_seccomp_memfd: %s", err.msg);
        }
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                setsid();
                if (filtered) {
                        err_t err = ERR_INIT;
                        if (nx_seccomp_load_fd(fd, &err) < 0) {
                                fprintf(stderr, "load: %s\n", err.msg);
                                _exit(99);
                        }
                }
                _exit(fn(arg));
        }
        if (fd >= 0)
                close(fd);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        return status;
}

static void assert_exit0(int status)
{
        if (WIFSIGNALED(status))
                fail_msg("child killed by signal %d", WTERMSIG(status));
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- table of refused syscalls ---------------------------------------------------------- */

typedef struct denied_case {
        const char *name;            /* test name */
        long nr;
        long a[6];
        int expect_errno;
} denied_case;

#define BAD_PTR 1L   /* EFAULT without the filter */

static const denied_case denied_cases[] = {
        { "mount_eperm", SYS_mount, { 0, 0, 0, 0, 0, 0 }, EPERM },
        { "umount2_eperm", SYS_umount2, { 0, 0 }, EPERM },
        { "pivot_root_eperm", SYS_pivot_root, { 0, 0 }, EPERM },
        { "chroot_eperm", SYS_chroot, { BAD_PTR }, EPERM },
        { "open_tree_eperm", SYS_open_tree, { -1, 0, 0 }, EPERM },
        { "move_mount_eperm", SYS_move_mount, { -1, 0, -1, 0, 0 }, EPERM },
        { "fsopen_eperm", SYS_fsopen, { 0, 0 }, EPERM },
        { "fsconfig_eperm", SYS_fsconfig, { -1, 0, 0, 0, 0 }, EPERM },
        { "fsmount_eperm", SYS_fsmount, { -1, 0, 0 }, EPERM },
        { "fspick_eperm", SYS_fspick, { -1, 0, 0 }, EPERM },
        { "mount_setattr_eperm", SYS_mount_setattr, { -1, 0, 0, 0, 0 }, EPERM },
        { "open_tree_attr_eperm", SYS_open_tree_attr, { -1, 0, 0, 0, 0 }, EPERM },
        { "ptrace_eperm", SYS_ptrace, { 0xdead, -1, 0, 0 }, EPERM },
        { "process_vm_readv_eperm", SYS_process_vm_readv, { -1, 0, 0, 0, 0, 0 }, EPERM },
        { "process_vm_writev_eperm", SYS_process_vm_writev, { -1, 0, 0, 0, 0, 0 }, EPERM },
        { "process_madvise_eperm", SYS_process_madvise, { -1, 0, 0, 0, 0 }, EPERM },
        { "pidfd_getfd_eperm", SYS_pidfd_getfd, { -1, 0, 0 }, EPERM },
        { "kcmp_eperm", SYS_kcmp, { -1, -1, 0, 0, 0 }, EPERM },
        { "bpf_eperm", SYS_bpf, { -1, 0, 0 }, EPERM },
        { "perf_event_open_eperm", SYS_perf_event_open, { 0, 0, -1, -1, 0 }, EPERM },
        { "userfaultfd_eperm", SYS_userfaultfd, { 0x7fffffff }, EPERM },
        { "io_uring_setup_eperm", SYS_io_uring_setup, { 0, 0 }, EPERM },
        { "io_uring_enter_eperm", SYS_io_uring_enter, { -1, 0, 0, 0, 0, 0 }, EPERM },
        { "io_uring_register_eperm", SYS_io_uring_register, { -1, 0, 0, 0 }, EPERM },
        { "keyctl_eperm", SYS_keyctl, { -1, 0, 0, 0, 0 }, EPERM },
        { "add_key_eperm", SYS_add_key, { 0, 0, 0, 0, 0 }, EPERM },
        { "request_key_eperm", SYS_request_key, { 0, 0, 0, 0 }, EPERM },
        { "kexec_load_eperm", SYS_kexec_load, { 0, 0, 0, 0x7fffffff }, EPERM },
        { "kexec_file_load_eperm", SYS_kexec_file_load, { -1, -1, 0, 0, 0x7fffffff }, EPERM },
        { "init_module_eperm", SYS_init_module, { 0, 0, 0 }, EPERM },
        { "finit_module_eperm", SYS_finit_module, { -1, 0, 0 }, EPERM },
        { "delete_module_eperm", SYS_delete_module, { 0, 0 }, EPERM },
        { "open_by_handle_at_eperm", SYS_open_by_handle_at, { -1, 0, 0 }, EPERM },
        { "name_to_handle_at_eperm", SYS_name_to_handle_at, { -1, 0, 0, 0, 0 }, EPERM },
        { "unshare_newuser_eperm", SYS_unshare, { CLONE_NEWUSER }, EPERM },
        { "unshare_newns_eperm", SYS_unshare, { CLONE_NEWNS }, EPERM },
        { "setns_eperm", SYS_setns, { -1, 0 }, EPERM },
        { "clone3_enosys", SYS_clone3, { 0, 0 }, ENOSYS },
        { "acct_eperm", SYS_acct, { BAD_PTR }, EPERM },
        { "swapon_eperm", SYS_swapon, { BAD_PTR, 0 }, EPERM },
        { "swapoff_eperm", SYS_swapoff, { BAD_PTR }, EPERM },
        { "reboot_eperm", SYS_reboot, { 0, 0, 0, 0 }, EPERM },
        { "syslog_eperm", SYS_syslog, { -1, 0, 0 }, EPERM },
        { "quotactl_eperm", SYS_quotactl, { 0, BAD_PTR, 0, 0 }, EPERM },
        { "quotactl_fd_eperm", SYS_quotactl_fd, { -1, 0, 0, 0 }, EPERM },
        { "iopl_eperm", SYS_iopl, { 99 }, EPERM },
        { "ioperm_eperm", SYS_ioperm, { 0xffffffffL, 10, 1 }, EPERM },
        { "settimeofday_eperm", SYS_settimeofday, { BAD_PTR, BAD_PTR }, EPERM },
        { "clock_settime_eperm", SYS_clock_settime, { -1, 0 }, EPERM },
        { "clock_adjtime_eperm", SYS_clock_adjtime, { -1, 0 }, EPERM },
        { "adjtimex_eperm", SYS_adjtimex, { BAD_PTR }, EPERM },
        { "fanotify_init_eperm", SYS_fanotify_init, { 0x7fffffff, 0 }, EPERM },
        { "vhangup_eperm", SYS_vhangup, { 0 }, EPERM },
        /* clone() with each namespace flag; SIGCHLD keeps it a plain fork otherwise. */
        { "clone_newns_eperm", SYS_clone, { CLONE_NEWNS | SIGCHLD }, EPERM },
        { "clone_newcgroup_eperm", SYS_clone, { CLONE_NEWCGROUP | SIGCHLD }, EPERM },
        { "clone_newuts_eperm", SYS_clone, { CLONE_NEWUTS | SIGCHLD }, EPERM },
        { "clone_newipc_eperm", SYS_clone, { CLONE_NEWIPC | SIGCHLD }, EPERM },
        { "clone_newuser_eperm", SYS_clone, { CLONE_NEWUSER | SIGCHLD }, EPERM },
        { "clone_newpid_eperm", SYS_clone, { CLONE_NEWPID | SIGCHLD }, EPERM },
        { "clone_newnet_eperm", SYS_clone, { CLONE_NEWNET | SIGCHLD }, EPERM },
        /* TIOCSTI / TIOCLINUX, also with garbage in the high 32 bits (the kernel ignores it). */
        { "ioctl_tiocsti_eperm", SYS_ioctl, { -1, TIOCSTI, 0 }, EPERM },
        { "ioctl_tiocsti_high_bits_eperm", SYS_ioctl, { -1, (long)(0x100000000ULL | TIOCSTI), 0 },
          EPERM },
        { "ioctl_tioclinux_eperm", SYS_ioctl, { -1, TIOCLINUX, 0 }, EPERM },
        /* Socket families outside unix/inet/inet6/netlink (only families this kernel has, so
         * that the case fails without the filter; the others share the same rule loop). */
        { "socket_af_packet_eafnosupport", SYS_socket, { AF_PACKET, SOCK_RAW, 0 }, EAFNOSUPPORT },
        { "socket_af_vsock_eafnosupport", SYS_socket, { AF_VSOCK, SOCK_STREAM, 0 }, EAFNOSUPPORT },
        { "socket_af_packet_high_bits_eafnosupport", SYS_socket,
          { (long)(0x100000000ULL | AF_PACKET), SOCK_RAW, 0 }, EAFNOSUPPORT },
};

#define N_DENIED (sizeof(denied_cases) / sizeof(denied_cases[0]))

/* Child: 0 when the syscall failed with the expected errno, 1 when it succeeded, 2 on a
 * different errno (both printed). A clone that unexpectedly created a child exits it. */
static int child_denied(const void *arg)
{
        const denied_case *c = arg;
        errno = 0;
        long r = syscall(c->nr, c->a[0], c->a[1], c->a[2], c->a[3], c->a[4], c->a[5]);
        int e = errno;
        if (c->nr == SYS_clone && r == 0)
                _exit(0);   /* the unfiltered clone child */
        if (r >= 0) {
                fprintf(stderr, "%s: succeeded (%ld)\n", c->name, r);
                return 1;
        }
        if (e != c->expect_errno) {
                fprintf(stderr, "%s: errno %d (%s), expected %d\n", c->name, e, strerror(e),
                        c->expect_errno);
                return 2;
        }
        return 0;
}

static void test_denied_syscall(void **state)
{
        const denied_case *c = *state;
        assert_exit0(run_child(true, child_denied, c));
}

/* ---- what must still work ---------------------------------------------------------------- */

static int child_plain_clone_fork(const void *arg)
{
        (void)arg;
        long r = syscall(SYS_clone, (long)SIGCHLD, 0L, 0L, 0L, 0L);
        if (r == 0)
                _exit(42);
        if (r < 0)
                return 1;
        int st = 0;
        if (waitpid((pid_t)r, &st, 0) != (pid_t)r || !WIFEXITED(st) || WEXITSTATUS(st) != 42)
                return 2;
        /* glibc's fork() tries clone3 first on some versions; ENOSYS must make it fall back */
        pid_t p = fork();
        if (p == 0)
                _exit(43);
        if (p < 0 || waitpid(p, &st, 0) != p || WEXITSTATUS(st) != 43)
                return 3;
        return 0;
}

static void test_plain_clone_and_fork_still_work(void **state)
{
        (void)state;
        assert_exit0(run_child(true, child_plain_clone_fork, NULL));
}

static int child_allowed_sockets(const void *arg)
{
        (void)arg;
        static const int fams[] = { AF_UNIX, AF_INET, AF_INET6, AF_NETLINK };
        static const int types[] = { SOCK_STREAM, SOCK_STREAM, SOCK_STREAM, SOCK_RAW };
        for (size_t i = 0; i < 4; i++) {
                int fd = socket(fams[i], types[i] | SOCK_CLOEXEC, 0);
                if (fd < 0 && errno == EAFNOSUPPORT) {
                        fprintf(stderr, "family %d refused\n", fams[i]);
                        return 1;
                }
                if (fd >= 0)
                        close(fd);
        }
        return 0;
}

static void test_unix_inet_inet6_netlink_sockets_allowed(void **state)
{
        (void)state;
        assert_exit0(run_child(true, child_allowed_sockets, NULL));
}

static int child_ordinary_ioctl(const void *arg)
{
        (void)arg;
        int fds[2];
        if (pipe(fds) < 0)
                return 1;
        int n = -1;
        if (ioctl(fds[0], FIONREAD, &n) < 0 || n != 0)
                return 2;
        return 0;
}

static void test_ordinary_ioctl_allowed(void **state)
{
        (void)state;
        assert_exit0(run_child(true, child_ordinary_ioctl, NULL));
}

/* Control: without the filter, a new user namespace is possible here — so the EPERM cases
 * above really measure the filter. */
static int child_unshare_user(const void *arg)
{
        (void)arg;
        return unshare(CLONE_NEWUSER) == 0 ? 0 : 1;
}

static void test_control_unshare_user_works_without_filter(void **state)
{
        (void)state;
        int st = run_child(false, child_unshare_user, NULL);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 1)
                SKIP_BECAUSE("user namespaces unavailable on this kernel");
        assert_exit0(st);
}

/* ---- non-native ABIs (x86_64 only) ------------------------------------------------------- */

#if defined(__x86_64__)
#define X32_SYSCALL_BIT 0x40000000L

static long x32_getpid(void)
{
        long ret;
        long nr = X32_SYSCALL_BIT | 39;   /* x32 getpid */
        __asm__ volatile("syscall" : "=a"(ret) : "a"(nr) : "rcx", "r11", "memory");
        return ret;
}

static long i386_getpid(void)
{
        long ret;
        long nr = 20;   /* i386 getpid */
        __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr) : "memory");
        return ret;
}

static int child_x32(const void *arg)
{
        (void)arg;
        long r = x32_getpid();
        fprintf(stderr, "x32 getpid returned %ld\n", r);
        return 5;   /* reaching here under the filter is the failure */
}

static int child_i386(const void *arg)
{
        (void)arg;
        long r = i386_getpid();
        return r == (long)getpid() ? 6 : 7;
}

static void assert_killed_by_sigsys(int st)
{
        if (WIFEXITED(st))
                fail_msg("child exited with %d instead of being killed", WEXITSTATUS(st));
        assert_true(WIFSIGNALED(st));
        assert_int_equal(WTERMSIG(st), SIGSYS);
}

static void test_x32_syscall_kills_process(void **state)
{
        (void)state;
        assert_killed_by_sigsys(run_child(true, child_x32, NULL));
}

static void test_i386_int80_syscall_kills_process(void **state)
{
        (void)state;
        /* Control first: without IA32 emulation int 0x80 faults (SIGSEGV) with or without us. */
        int st = run_child(false, child_i386, NULL);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 6)
                SKIP_BECAUSE("kernel without IA32 emulation (int 0x80 does not work here)");
        assert_killed_by_sigsys(run_child(true, child_i386, NULL));
}
#endif

/* ---- memfd, cache, probe ----------------------------------------------------------------- */

static void test_memfd_is_sealed_cloexec_at_offset0(void **state)
{
        (void)state;
        err_t err = ERR_INIT;
        _cleanup_close_ int fd = -1;
        assert_int_equal(nx_seccomp_memfd(&fd, &err), 0);
        assert_true(fd >= 0);
        assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        int seals = fcntl(fd, F_GET_SEALS);
        assert_true(seals >= 0);
        assert_int_equal(seals & (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE),
                         F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE);
        assert_int_equal(lseek(fd, 0, SEEK_CUR), 0);
        /* writes are refused by the seal */
        assert_int_equal(write(fd, "x", 1), -1);
        assert_int_equal(errno, EPERM);
}

static void test_memfd_holds_the_cached_program(void **state)
{
        (void)state;
        err_t err = ERR_INIT;
        const void *bytes = NULL;
        size_t len = 0;
        assert_int_equal(nx_seccomp_bpf(&bytes, &len, &err), 0);
        assert_true(len > 0 && len % 8 == 0 && len <= NX_SECCOMP_BPF_MAX);
        _cleanup_close_ int fd = -1;
        assert_int_equal(nx_seccomp_memfd(&fd, &err), 0);
        struct stat st;
        assert_int_equal(fstat(fd, &st), 0);
        assert_int_equal((size_t)st.st_size, len);
        _cleanup_free_ char *got = malloc(len);
        assert_non_null(got);
        assert_int_equal(read(fd, got, len), (ssize_t)len);
        assert_memory_equal(got, bytes, len);
}

static void test_memfd_each_call_new_fd(void **state)
{
        (void)state;
        err_t err = ERR_INIT;
        _cleanup_close_ int a = -1;
        _cleanup_close_ int b = -1;
        assert_int_equal(nx_seccomp_memfd(&a, &err), 0);
        assert_int_equal(nx_seccomp_memfd(&b, &err), 0);
        assert_int_not_equal(a, b);
        struct stat sa, sb;
        assert_int_equal(fstat(a, &sa), 0);
        assert_int_equal(fstat(b, &sb), 0);
        assert_true(sa.st_ino != sb.st_ino);   /* not a dup of one file */
}

static void test_bpf_cache_returns_same_storage(void **state)
{
        (void)state;
        err_t err = ERR_INIT;
        const void *b1 = NULL, *b2 = NULL;
        size_t l1 = 0, l2 = 0;
        assert_int_equal(nx_seccomp_bpf(&b1, &l1, &err), 0);
        assert_int_equal(nx_seccomp_bpf(&b2, &l2, &err), 0);
        assert_ptr_equal(b1, b2);
        assert_int_equal(l1, l2);
}

static void test_load_fd_rejects_garbage_program(void **state)
{
        (void)state;
        _cleanup_close_ int fd = memfd_create("junk", MFD_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "abc", 3), 3);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        err_t err = ERR_INIT;
        /* rejected before no_new_privs or the kernel is touched */
        assert_int_equal(nx_seccomp_load_fd(fd, &err), -1);
        assert_non_null(strstr(err.msg, "not a valid BPF program"));
}

static void test_probe_succeeds(void **state)
{
        (void)state;
        err_t err = ERR_INIT;
        if (nx_seccomp_probe(&err) < 0)
                fail_msg("probe: %s", err.msg);
}

static void test_denied_names_lists_mount_and_clone3(void **state)
{
        (void)state;
        const char *const *names = nx_seccomp_denied_names();
        bool mount = false, clone3 = false, io_uring = false;
        size_t n = 0;
        for (; names[n]; n++) {
                mount |= strcmp(names[n], "mount") == 0;
                clone3 |= strcmp(names[n], "clone3") == 0;
                io_uring |= strcmp(names[n], "io_uring_setup") == 0;
        }
        assert_true(mount && clone3 && io_uring);
        assert_true(n > 30);
}

/* ---- real programs under the filter ------------------------------------------------------ */

/* execvp with a const argv (copies it; only called in a child about to exec). */
static void exec_argv(const char *const argv[])
{
        char *v[32];
        size_t i = 0;
        for (; argv[i] && i < 31; i++)
                v[i] = strdup(argv[i]);
        v[i] = NULL;
        execvp(v[0], v);
}

/* Execs argv in a child under the filter with stdout/stderr to /dev/null; returns the status. */
static int exec_filtered(const char *const argv[])
{
        err_t err = ERR_INIT;
        int fd = -1;
        if (nx_seccomp_memfd(&fd, &err) < 0)
                fail_msg("memfd: %s", err.msg);
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                setsid();
                int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
                if (devnull >= 0) {
                        dup2(devnull, 1);
                        dup2(devnull, 2);
                }
                if (nx_seccomp_load_fd(fd, &err) < 0)
                        _exit(99);
                exec_argv(argv);
                _exit(127);
        }
        close(fd);
        int st = 0;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        return st;
}

static void test_sh_works_under_filter(void **state)
{
        (void)state;
        const char *const argv[] = { "/bin/sh", "-c",
                         "x=$(echo hi | cat); test \"$x\" = hi", NULL };
        assert_exit0(exec_filtered(argv));
}

static void test_git_version_works_under_filter(void **state)
{
        (void)state;
        const char *const argv[] = { "git", "--version", NULL };
        assert_exit0(exec_filtered(argv));
}

static void test_python3_works_under_filter(void **state)
{
        (void)state;
        const char *const argv[] = { "python3", "-c",
                         "import subprocess,threading,socket;"
                                 "t=threading.Thread(target=lambda:None);t.start();t.join();"
                                 "assert subprocess.run(['true']).returncode==0", NULL };
        assert_exit0(exec_filtered(argv));
}

static void test_curl_version_works_under_filter(void **state)
{
        (void)state;
        const char *const argv[] = { "curl", "--version", NULL };
        assert_exit0(exec_filtered(argv));
}

static void test_unshare_command_fails_under_filter(void **state)
{
        (void)state;
        const char *const argv[] = { "unshare", "-U", "true", NULL };
        int st = exec_filtered(argv);
        assert_true(WIFEXITED(st));
        assert_int_not_equal(WEXITSTATUS(st), 0);
}

/* ---- through real bwrap ------------------------------------------------------------------ */

/* Runs `bwrap --ro-bind / / --dev /dev --proc /proc --unshare-pid --seccomp FD -- /bin/sh -c
 * script`; returns the exit code (or -1 on a signal). */
static int bwrap_sh(const char *script)
{
        err_t err = ERR_INIT;
        int fd = -1;
        if (nx_seccomp_memfd(&fd, &err) < 0)
                fail_msg("memfd: %s", err.msg);
        char fdstr[16];
        int n = snprintf(fdstr, sizeof(fdstr), "%d", fd);
        assert_true(n > 0 && (size_t)n < sizeof(fdstr));
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                setsid();
                int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
                if (devnull >= 0)
                        dup2(devnull, 1);
                int fl = fcntl(fd, F_GETFD);
                if (fl < 0 || fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC) < 0)
                        _exit(98);
                const char *const argv[] = { "bwrap", "--ro-bind", "/", "/",
                                 "--dev", "/dev", "--proc",
                                 "/proc", "--unshare-pid",
                                 "--die-with-parent", "--seccomp", fdstr,
                                 "--", "/bin/sh", "-c",
                                 script, NULL };
                exec_argv(argv);
                _exit(97);
        }
        close(fd);
        int st = 0;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        if (!WIFEXITED(st))
                return -1;
        return WEXITSTATUS(st);
}

static void test_bwrap_seccomp_true_works(void **state)
{
        (void)state;
        if (access("/usr/bin/bwrap", X_OK) < 0 && access("/bin/bwrap", X_OK) < 0)
                SKIP_BECAUSE("bubblewrap not installed");
        assert_int_equal(bwrap_sh("true"), 0);
}

static void test_bwrap_seccomp_unshare_user_fails(void **state)
{
        (void)state;
        if (access("/usr/bin/bwrap", X_OK) < 0 && access("/bin/bwrap", X_OK) < 0)
                SKIP_BECAUSE("bubblewrap not installed");
        /* exit 3 if unshare worked, 0 if it was refused */
        assert_int_equal(bwrap_sh("unshare -U true 2>/dev/null && exit 3; exit 0"), 0);
}

static void test_bwrap_seccomp_mount_fails(void **state)
{
        (void)state;
        if (access("/usr/bin/bwrap", X_OK) < 0 && access("/bin/bwrap", X_OK) < 0)
                SKIP_BECAUSE("bubblewrap not installed");
        assert_int_equal(bwrap_sh("mount -t tmpfs none /mnt 2>/dev/null && exit 3; exit 0"), 0);
}

int main(void)
{
        static const struct CMUnitTest fixed[] = {
                cmocka_unit_test(test_plain_clone_and_fork_still_work),
                cmocka_unit_test(test_unix_inet_inet6_netlink_sockets_allowed),
                cmocka_unit_test(test_ordinary_ioctl_allowed),
                cmocka_unit_test(test_control_unshare_user_works_without_filter),
#if defined(__x86_64__)
                cmocka_unit_test(test_x32_syscall_kills_process),
                cmocka_unit_test(test_i386_int80_syscall_kills_process),
#endif
                cmocka_unit_test(test_memfd_is_sealed_cloexec_at_offset0),
                cmocka_unit_test(test_memfd_holds_the_cached_program),
                cmocka_unit_test(test_memfd_each_call_new_fd),
                cmocka_unit_test(test_bpf_cache_returns_same_storage),
                cmocka_unit_test(test_load_fd_rejects_garbage_program),
                cmocka_unit_test(test_probe_succeeds),
                cmocka_unit_test(test_denied_names_lists_mount_and_clone3),
                cmocka_unit_test(test_sh_works_under_filter),
                cmocka_unit_test(test_git_version_works_under_filter),
                cmocka_unit_test(test_python3_works_under_filter),
                cmocka_unit_test(test_curl_version_works_under_filter),
                cmocka_unit_test(test_unshare_command_fails_under_filter),
                cmocka_unit_test(test_bwrap_seccomp_true_works),
                cmocka_unit_test(test_bwrap_seccomp_unshare_user_fails),
                cmocka_unit_test(test_bwrap_seccomp_mount_fails),
        };
        enum { N_FIXED = sizeof(fixed) / sizeof(fixed[0]) };
        static struct CMUnitTest tests[N_DENIED + N_FIXED];
        static char names[N_DENIED][80];
        for (size_t i = 0; i < N_DENIED; i++) {
                int n = snprintf(names[i], sizeof(names[i]), "test_denied_%s",
                                 denied_cases[i].name);
                if (n < 0 || (size_t)n >= sizeof(names[i]))
                        return 1;
                tests[i] = (struct CMUnitTest){
                        .name = names[i],
                        .test_func = test_denied_syscall,
                        .initial_state = (void *)(uintptr_t)&denied_cases[i],
                };
        }
        for (size_t i = 0; i < N_FIXED; i++)
                tests[N_DENIED + i] = fixed[i];
        return _cmocka_run_group_tests("nx_seccomp", tests, N_DENIED + N_FIXED, NULL, NULL);
}
