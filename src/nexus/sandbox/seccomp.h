/* sandbox/seccomp.h — the seccomp filter of the `untrusted` profile (DESIGN D13, issue #6,
 * spec nexus Appendix B #16).
 *
 * One classic-BPF program, built with libseccomp for the native ABI, default action ALLOW.
 * It refuses (EPERM unless noted) the syscalls an unprivileged process in a bwrap sandbox does
 * not need and that widen the kernel attack surface or could undo the namespaces: the mount
 * family, chroot, ptrace and process_vm_*, bpf, perf_event_open, the keyring, kexec and module
 * loading, userfaultfd, open_by_handle_at, io_uring, unshare, setns, clone with any CLONE_NEW*
 * flag, clone3 (ENOSYS so libc falls back to the filtered clone), the TIOCSTI/TIOCLINUX ioctls,
 * plus host-administration calls and socket families other than unix/inet/inet6/netlink
 * (see nx_seccomp_denied_names()). A syscall of a non-native ABI (i386 int 0x80, x32)
 * kills the process.
 *
 * The program is built once per process and cached (thread-safe); each nx_seccomp_memfd()
 * call hands out a fresh sealed memfd holding the bytes, for `bwrap --seccomp FD`. */
#pragma once
#include <stddef.h>

#include "core/error.h"

/* Upper bound of the exported program (bytes). The real one is a few KiB. */
#define NX_SECCOMP_BPF_MAX (64 * 1024)

/* Creates a new memfd (MFD_CLOEXEC|MFD_ALLOW_SEALING) holding the BPF program, sealed against
 * every change (F_SEAL_SEAL|SHRINK|GROW|WRITE), file offset 0. The caller owns *fd_out and must
 * clear CLOEXEC itself (or name it in the spawn's extra fds) to hand it to bwrap. Each call
 * returns a new fd. Returns 0, or -1 with err (libseccomp or memfd failure). */
int nx_seccomp_memfd(int *fd_out, err_t *err);

/* The cached program bytes (built on first use). *bytes points to static storage valid for the
 * life of the process. Returns 0, or -1 with err. */
int nx_seccomp_bpf(const void **bytes, size_t *len, err_t *err);

/* Reads a BPF program from fd (from its current offset, as bwrap does) and installs it into the
 * calling thread after setting no_new_privs. Irreversible: call it only in a child that is
 * about to exec or exit. Returns 0, or -1 with err. */
int nx_seccomp_load_fd(int fd, err_t *err);

/* Doctor check (issue #6 item 5): builds the program, then loads it in a forked child that
 * checks that unshare(CLONE_NEWUSER) fails with EPERM and getpid still works. Returns 0, or
 * -1 with err saying which step failed. */
int nx_seccomp_probe(err_t *err);

/* NULL-terminated list of the syscall names the filter refuses unconditionally (for doctor
 * output and docs); the conditional ones (clone, ioctl, socket, personality) are not listed. */
const char *const *nx_seccomp_denied_names(void);
