/* sandbox/seccomp.c — see seccomp.h. */
#include "sandbox/seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/cleanup.h"

/* Syscalls refused outright. nr_fallback is used when libseccomp 2.5 does not know the name
 * (syscalls >= 424 have the same number on every architecture but alpha); 0 = none. */
typedef struct denied_syscall {
        const char *name;
        int nr_fallback;
} denied_syscall;

static const denied_syscall denied[] = {
        /* The mount family and chroot: undo or bypass the read-only tree bwrap built. */
        { "mount", 0 }, { "umount2", 0 }, { "pivot_root", 0 }, { "chroot", 0 },
        { "open_tree", 0 }, { "move_mount", 0 }, { "fsopen", 0 }, { "fsconfig", 0 },
        { "fsmount", 0 }, { "fspick", 0 }, { "mount_setattr", 0 }, { "open_tree_attr", 467 },
        /* Reaching into other processes (a sibling in the sandbox, or nexus-sandbox itself). */
        { "ptrace", 0 }, { "process_vm_readv", 0 }, { "process_vm_writev", 0 },
        { "process_madvise", 0 }, { "pidfd_getfd", 0 }, { "kcmp", 0 },
        /* Large kernel attack surface with a history of privilege escalations. */
        { "bpf", 0 }, { "perf_event_open", 0 }, { "userfaultfd", 0 },
        { "io_uring_setup", 0 }, { "io_uring_enter", 0 }, { "io_uring_register", 0 },
        /* The keyring is not namespaced: keys of other users/containers could be probed. */
        { "keyctl", 0 }, { "add_key", 0 }, { "request_key", 0 },
        /* Kernel replacement and modules. */
        { "kexec_load", 0 }, { "kexec_file_load", 0 }, { "init_module", 0 },
        { "finit_module", 0 }, { "delete_module", 0 },
        /* File handles bypass the path walk (the classic "shocker" container escape). */
        { "open_by_handle_at", 0 }, { "name_to_handle_at", 0 },
        /* New namespaces: bwrap --disable-userns already blocks user namespaces; this is the
         * second lock, and also covers joining an existing namespace by fd. */
        { "unshare", 0 }, { "setns", 0 },
        /* Host administration: all need a capability the sandbox lacks; refusing them keeps the
         * kernel paths behind the capability check out of reach. */
        { "acct", 0 }, { "swapon", 0 }, { "swapoff", 0 }, { "reboot", 0 }, { "syslog", 0 },
        { "quotactl", 0 }, { "quotactl_fd", 0 }, { "iopl", 0 }, { "ioperm", 0 },
        { "lookup_dcookie", 0 }, { "vhangup", 0 }, { "uselib", 0 },
        { "settimeofday", 0 }, { "clock_settime", 0 }, { "clock_adjtime", 0 },
        { "adjtimex", 0 }, { "fanotify_init", 0 },
};

#define DENIED_COUNT (sizeof(denied) / sizeof(denied[0]))

/* CLONE_NEW* flags that clone() accepts (CLONE_NEWTIME shares its bit with CSIGNAL there and
 * is only reachable through clone3/unshare, both refused). */
static const uint64_t clone_ns_flags[] = {
        CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID,
        CLONE_NEWNET,
};

/* Socket families allowed: AF_UNIX(1), AF_INET(2), AF_INET6(10), AF_NETLINK(16; getifaddrs
 * and glibc's AI_ADDRCONFIG use it, and it only sees the sandbox's empty netns). Everything
 * else is refused, notably AF_VSOCK (not network-namespaced: it would reach the VM host
 * directly), AF_PACKET, AF_ALG (kernel crypto API attack surface), AF_KEY, AF_XDP,
 * AF_BLUETOOTH and the legacy protocol families. */
#define SOCKET_FAMILY_MAX 45   /* AF_MCTP (45), the highest family of Linux 6.x */

static int family_allowed(int af)
{
        return af == AF_UNIX || af == AF_INET || af == AF_INET6 || af == AF_NETLINK;
}

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t cache_bpf[NX_SECCOMP_BPF_MAX];
static size_t cache_len;   /* 0 until built */

static int rule_add(scmp_filter_ctx ctx, uint32_t action, int nr, const char *what,
                    unsigned n_cmp, const struct scmp_arg_cmp *cmp, err_t *err)
{
        int r = seccomp_rule_add_array(ctx, action, nr, n_cmp, cmp);
        if (r < 0)
                return err_errno(err, -r, "seccomp: add rule for %s", what);
        return 0;
}

static struct scmp_arg_cmp arg_cmp(unsigned arg, enum scmp_compare op, uint64_t a, uint64_t b)
{
        /* spelled out: the two-argument SCMP_A0 form leaves datum_b implicit (clang warns) */
        struct scmp_arg_cmp c = { .arg = arg, .op = op, .datum_a = a, .datum_b = b };
        return c;
}

static int build_rules(scmp_filter_ctx ctx, err_t *err)
{
        /* A syscall of another ABI (i386 through int 0x80, x32 on x86_64) would bypass every
         * rule below, which is written against native numbers: kill the whole process. */
        int r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
        if (r < 0)
                return err_errno(err, -r, "seccomp: set bad-arch action");

        for (size_t i = 0; i < DENIED_COUNT; i++) {
                int nr = seccomp_syscall_resolve_name(denied[i].name);
                if (nr == __NR_SCMP_ERROR)
                        nr = denied[i].nr_fallback;
                if (nr <= 0)
                        return err_setc(err, ERR_INTERNAL, "seccomp: syscall %s unknown to "
                                        "libseccomp", denied[i].name);
                if (rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, denied[i].name, 0, NULL, err) < 0)
                        return -1;
        }

        /* clone3 passes its flags in memory that BPF cannot read: ENOSYS makes glibc and
         * others fall back to clone(), whose flags are checked below. */
        if (rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), "clone3", 0, NULL, err) < 0)
                return -1;
        for (size_t i = 0; i < sizeof(clone_ns_flags) / sizeof(clone_ns_flags[0]); i++) {
                struct scmp_arg_cmp c = arg_cmp(0, SCMP_CMP_MASKED_EQ, clone_ns_flags[i],
                                                clone_ns_flags[i]);
                if (rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), "clone", 1, &c,
                             err) < 0)
                        return -1;
        }

        /* TIOCSTI pushes input into a terminal (the controlling tty of whoever reads next);
         * TIOCLINUX can do the same on a VT. The kernel takes cmd as unsigned int, so only the
         * low 32 bits are compared: high garbage bits cannot slip past. */
        static const uint64_t bad_ioctls[] = { TIOCSTI, TIOCLINUX };
        for (size_t i = 0; i < sizeof(bad_ioctls) / sizeof(bad_ioctls[0]); i++) {
                struct scmp_arg_cmp c = arg_cmp(1, SCMP_CMP_MASKED_EQ, 0xffffffffu, bad_ioctls[i]);
                if (rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), "ioctl", 1, &c,
                             err) < 0)
                        return -1;
        }

        /* socket(): refuse every family but the allowed ones. A value with any high bit set
         * is above SOCKET_FAMILY_MAX and refused by the GT rule (the kernel would truncate it
         * to int). */
        for (int af = 0; af <= SOCKET_FAMILY_MAX; af++) {
                if (family_allowed(af))
                        continue;
                struct scmp_arg_cmp c = arg_cmp(0, SCMP_CMP_EQ, (uint64_t)af, 0);
                if (rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), "socket", 1,
                             &c, err) < 0)
                        return -1;
        }
        struct scmp_arg_cmp gt = arg_cmp(0, SCMP_CMP_GT, SOCKET_FAMILY_MAX, 0);
        if (rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), "socket", 1, &gt,
                     err) < 0)
                return -1;
        return 0;
}

static int read_all(int fd, uint8_t *dst, size_t cap, size_t *len_out)
{
        size_t len = 0;
        for (;;) {
                if (len == cap) {
                        /* one more byte would exceed the cap: check for EOF */
                        uint8_t extra;
                        ssize_t n = read(fd, &extra, 1);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0)
                                return -1;
                        if (n > 0) {
                                errno = EFBIG;
                                return -1;
                        }
                        break;
                }
                ssize_t n = read(fd, dst + len, cap - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -1;
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        *len_out = len;
        return 0;
}

static int write_all(int fd, const uint8_t *src, size_t len)
{
        while (len > 0) {
                ssize_t n = write(fd, src, len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -1;
                src += n;
                len -= (size_t)n;
        }
        return 0;
}

/* Builds the program into cache_bpf. Called with cache_lock held. */
static int build_locked(err_t *err)
{
        scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
        if (!ctx)
                return err_setc(err, ERR_SYSTEM, "seccomp: seccomp_init failed");
        int ret = build_rules(ctx, err);
        if (ret < 0) {
                seccomp_release(ctx);
                return -1;
        }
        /* libseccomp 2.5 exports to an fd only; a scratch memfd avoids touching the disk. */
        _cleanup_close_ int fd = memfd_create("nx-seccomp-build", MFD_CLOEXEC);
        if (fd < 0) {
                seccomp_release(ctx);
                return err_errno(err, errno, "seccomp: memfd_create");
        }
        int r = seccomp_export_bpf(ctx, fd);
        seccomp_release(ctx);
        if (r < 0)
                return err_errno(err, -r, "seccomp: export BPF");
        if (lseek(fd, 0, SEEK_SET) < 0)
                return err_errno(err, errno, "seccomp: rewind BPF memfd");
        size_t len = 0;
        if (read_all(fd, cache_bpf, sizeof(cache_bpf), &len) < 0)
                return err_errno(err, errno, "seccomp: read back BPF (cap %zu bytes)",
                                 sizeof(cache_bpf));
        if (len == 0 || len % sizeof(struct sock_filter) != 0)
                return err_setc(err, ERR_INTERNAL, "seccomp: exported program has bad size %zu",
                                len);
        cache_len = len;
        return 0;
}

int nx_seccomp_bpf(const void **bytes, size_t *len, err_t *err)
{
        pthread_mutex_lock(&cache_lock);
        int r = 0;
        if (cache_len == 0)
                r = build_locked(err);
        pthread_mutex_unlock(&cache_lock);
        if (r < 0)
                return -1;
        /* Once built the cache is never written again, so reading it unlocked is safe. */
        *bytes = cache_bpf;
        *len = cache_len;
        return 0;
}

int nx_seccomp_memfd(int *fd_out, err_t *err)
{
        const void *bytes = NULL;
        size_t len = 0;
        if (nx_seccomp_bpf(&bytes, &len, err) < 0)
                return -1;
        _cleanup_close_ int fd = memfd_create("nx-seccomp", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                return err_errno(err, errno, "seccomp: memfd_create");
        if (write_all(fd, bytes, len) < 0)
                return err_errno(err, errno, "seccomp: write BPF to memfd");
        /* Sealed so nothing holding the fd (bwrap, a child that inherited it) can change the
         * program between creation and load. */
        if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
                return err_errno(err, errno, "seccomp: seal memfd");
        if (lseek(fd, 0, SEEK_SET) < 0)
                return err_errno(err, errno, "seccomp: rewind memfd");
        *fd_out = steal_fd(&fd);
        return 0;
}

/* Installs a program into the calling thread. No allocation: safe in a forked child of a
 * multi-threaded daemon. */
static int install_program(const void *bytes, size_t len, err_t *err)
{
        if (len == 0 || len % sizeof(struct sock_filter) != 0 ||
            len / sizeof(struct sock_filter) > BPF_MAXINSNS)
                return err_setc(err, ERR_INVALID, "seccomp: program of %zu bytes is not a valid "
                                "BPF program", len);
        struct sock_fprog prog = {
                .len = (unsigned short)(len / sizeof(struct sock_filter)),
                .filter = (struct sock_filter *)(uintptr_t)bytes,   /* the kernel only reads */
        };
        /* Without CAP_SYS_ADMIN the kernel requires no_new_privs before a filter. */
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return err_errno(err, errno, "seccomp: set no_new_privs");
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
                return err_errno(err, errno, "seccomp: install filter");
        return 0;
}

int nx_seccomp_load_fd(int fd, err_t *err)
{
        _cleanup_free_ uint8_t *buf = malloc(NX_SECCOMP_BPF_MAX);
        if (!buf)
                return err_errno(err, ENOMEM, "seccomp: load");
        size_t len = 0;
        if (read_all(fd, buf, NX_SECCOMP_BPF_MAX, &len) < 0)
                return err_errno(err, errno, "seccomp: read program from fd %d", fd);
        return install_program(buf, len, err);
}

/* Child exit codes of the probe, mapped to text in one place. */
enum {
        PROBE_OK = 0,
        PROBE_LOAD_FAILED = 10,
        PROBE_UNSHARE_ALLOWED = 11,
        PROBE_GETPID_BROKEN = 12,
};

int nx_seccomp_probe(err_t *err)
{
        /* Exercise the memfd path too, as bwrap will use it. */
        _cleanup_close_ int fd = -1;
        if (nx_seccomp_memfd(&fd, err) < 0)
                return err_wrap(err, "seccomp probe");
        const void *bytes = NULL;
        size_t len = 0;
        if (nx_seccomp_bpf(&bytes, &len, err) < 0)
                return err_wrap(err, "seccomp probe");
        pid_t pid = fork();
        if (pid < 0)
                return err_errno(err, errno, "seccomp probe: fork");
        if (pid == 0) {
                /* the cached bytes, not the memfd: no malloc after fork in a threaded daemon */
                err_t cerr = ERR_INIT;
                if (install_program(bytes, len, &cerr) < 0)
                        _exit(PROBE_LOAD_FAILED);
                errno = 0;
                if (unshare(CLONE_NEWUSER) == 0 || errno != EPERM)
                        _exit(PROBE_UNSHARE_ALLOWED);
                if (syscall(SYS_getpid) <= 0)
                        _exit(PROBE_GETPID_BROKEN);
                _exit(PROBE_OK);
        }
        int status = 0;
        while (waitpid(pid, &status, 0) < 0) {
                if (errno != EINTR)
                        return err_errno(err, errno, "seccomp probe: waitpid");
        }
        if (WIFSIGNALED(status))
                return err_setc(err, ERR_SYSTEM, "seccomp probe: child killed by signal %d",
                                WTERMSIG(status));
        switch (WEXITSTATUS(status)) {
        case PROBE_OK:
                return 0;
        case PROBE_LOAD_FAILED:
                return err_setc(err, ERR_SYSTEM, "seccomp probe: the kernel refused the filter");
        case PROBE_UNSHARE_ALLOWED:
                return err_setc(err, ERR_SYSTEM, "seccomp probe: unshare(CLONE_NEWUSER) was not "
                                "refused under the filter");
        case PROBE_GETPID_BROKEN:
                return err_setc(err, ERR_SYSTEM, "seccomp probe: getpid failed under the filter");
        default:
                return err_setc(err, ERR_SYSTEM, "seccomp probe: child exited with %d",
                                WEXITSTATUS(status));
        }
}

/* denied[] names, then clone3 (refused with ENOSYS), then NULL. */
static const char *denied_names[DENIED_COUNT + 2];
static pthread_once_t denied_names_once = PTHREAD_ONCE_INIT;

static void denied_names_fill(void)
{
        for (size_t i = 0; i < DENIED_COUNT; i++)
                denied_names[i] = denied[i].name;
        denied_names[DENIED_COUNT] = "clone3";
        denied_names[DENIED_COUNT + 1] = NULL;
}

const char *const *nx_seccomp_denied_names(void)
{
        pthread_once(&denied_names_once, denied_names_fill);
        return denied_names;
}
