/* sandbox/netns.c — listener inside another network namespace (DESIGN D13). See netns.h. */
#include "sandbox/netns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/str.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

static int pidfd_open_(pid_t pid)
{
        return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* PPid of pid from /proc/<pid>/status, -1 when unreadable. */
static pid_t parent_of(pid_t pid)
{
        char path[64], buf[4096];
        str_printf(path, sizeof(path), "/proc/%d/status", (int)pid);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -1;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return -1;
        buf[n] = '\0';
        const char *p = strstr(buf, "\nPPid:");
        if (!p)
                return -1;
        p += 6;
        while (*p == ' ' || *p == '\t')
                p++;
        char *end = NULL;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0)
                return -1;
        return (pid_t)v;
}

/* Opens the target namespace: a pidfd (setns accepts it for CLONE_NEWNET since 5.8), else
 * /proc/<pid>/ns/net. *is_pidfd tells which. */
static int open_target(pid_t pid, pid_t expect_ppid, bool *is_pidfd, err_t *err)
{
        int fd = pidfd_open_(pid);
        *is_pidfd = fd >= 0;
        if (fd < 0) {
                if (errno == ESRCH)
                        return err_errno(err, errno, "sandbox process %d is gone", (int)pid);
                char path[64];
                str_printf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
                fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        return err_errno(err, errno, "open %s", path);
        }
        /* checked after the pidfd pins the process: a reused pid fails here */
        if (expect_ppid > 0) {
                pid_t pp = parent_of(pid);
                if (pp != expect_ppid) {
                        close(fd);
                        return err_set(err, "process %d is not a child of %d (parent %d)",
                                       (int)pid, (int)expect_ppid, (int)pp);
                }
        }
        return fd;
}

/* The loopback interface of a fresh network namespace is down until someone brings it up.
 * bwrap does that for --unshare-net, but in its child, AFTER the parent has reported the pid
 * on --info-fd: a listener made right away raced it and bind() to 127.0.0.1 failed with
 * EADDRNOTAVAIL (2 of ~520 starts in bench/sandbox). We must not bring `lo` up ourselves:
 * bwrap adds 127.0.0.1 with RTM_NEWADDR before it sets the link up, and an address the
 * kernel already assigned makes that fail ("bwrap: loopback: Failed RTM_NEWADDR") — tried,
 * it killed half the sandboxes. So the bind is retried while the address is not there yet,
 * backing off from 50 us, for at most NETNS_ADDR_WAIT_MS; a namespace whose loopback never
 * comes up still fails with EADDRNOTAVAIL. */
#define NETNS_ADDR_WAIT_MS 2000
#define NETNS_FIRST_WAIT_NS (50 * 1000)
#define NETNS_MAX_WAIT_NS (4 * 1000 * 1000)

static int bind_when_up(int fd, const struct sockaddr *sa, socklen_t len)
{
        int64_t deadline = clock_mono_ms() + NETNS_ADDR_WAIT_MS;
        long step = NETNS_FIRST_WAIT_NS;
        for (;;) {
                if (bind(fd, sa, len) == 0)
                        return 0;
                if (errno != EADDRNOTAVAIL || clock_mono_ms() >= deadline)
                        return -1;
                struct timespec ts = { 0, step };
                while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                        ;
                step = step * 2 > NETNS_MAX_WAIT_NS ? NETNS_MAX_WAIT_NS : step * 2;
        }
}

static int make_listener(const char *ip, uint16_t port, err_t *err)
{
        struct sockaddr_storage ss;
        socklen_t len;
        memset(&ss, 0, sizeof(ss));
        struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
        if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
                a4->sin_family = AF_INET;
                a4->sin_port = htons(port);
                len = sizeof(*a4);
        } else if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
                a6->sin6_family = AF_INET6;
                a6->sin6_port = htons(port);
                len = sizeof(*a6);
        } else {
                return err_set(err, "listen address \"%s\" is not an IP literal", ip);
        }
        int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return err_errno(err, errno, "socket");
        int one = 1;
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind_when_up(fd, (struct sockaddr *)&ss, len) < 0) {
                int e = errno;
                close(fd);
                return err_errno(err, e, "bind %s:%u", ip, (unsigned)port);
        }
        if (listen(fd, NX_NETNS_BACKLOG) < 0) {
                int e = errno;
                close(fd);
                return err_errno(err, e, "listen %s:%u", ip, (unsigned)port);
        }
        return fd;
}

int nx_netns_listen_child(pid_t pid, pid_t expect_ppid, const char *ip, uint16_t port,
                          int *fd_out, err_t *err)
{
        *fd_out = -1;
        if (pid <= 0)
                return err_set(err, "netns listen: invalid pid %d", (int)pid);
        if (!ip || !*ip)
                return err_set(err, "netns listen: address is required");
        if (port == 0)
                return err_set(err, "netns listen: port 0 is not allowed");
        /* the thread's own namespace, to come back to */
        _cleanup_close_ int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        if (self < 0)
                return err_errno(err, errno, "open /proc/thread-self/ns/net");
        bool is_pidfd = false;
        _cleanup_close_ int target = open_target(pid, expect_ppid, &is_pidfd, err);
        if (target < 0)
                return err_wrap(err, "netns listen");
        if (setns(target, CLONE_NEWNET) < 0) {
                int e = errno;
                if (!is_pidfd || (e != EINVAL && e != ENOSYS))
                        return err_errno(err, e, "netns listen: enter the network namespace "
                                         "of process %d", (int)pid);
                /* kernel without pidfd setns: the /proc path (the pidfd still pins pid) */
                char path[64];
                str_printf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
                _cleanup_close_ int nsfd = open(path, O_RDONLY | O_CLOEXEC);
                if (nsfd < 0)
                        return err_errno(err, errno, "netns listen: open %s", path);
                if (syscall(SYS_pidfd_send_signal, target, 0, NULL, 0) < 0)
                        return err_errno(err, errno, "netns listen: process %d", (int)pid);
                if (setns(nsfd, CLONE_NEWNET) < 0)
                        return err_errno(err, errno, "netns listen: enter the network "
                                         "namespace of process %d", (int)pid);
        }
        err_t lerr = ERR_INIT;
        int fd = make_listener(ip, port, &lerr);
        if (setns(self, CLONE_NEWNET) < 0) {
                /* this thread now lives in the sandbox's namespace and every later socket of
                 * the daemon would too: nothing safe is left to do */
                log_error("cannot return to the daemon's network namespace",
                          LOG_STR("error", strerror(errno)));
                abort();
        }
        if (fd < 0) {
                *err = lerr;
                return err_wrap(err, "netns listen in process %d", (int)pid);
        }
        *fd_out = fd;
        return 0;
}

int nx_netns_listen(pid_t pid, const char *ip, uint16_t port, int *fd_out, err_t *err)
{
        return nx_netns_listen_child(pid, 0, ip, port, fd_out, err);
}

int nx_netns_is_other(pid_t pid, err_t *err)
{
        char path[64];
        struct stat a, b;
        str_printf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
        if (stat(path, &a) < 0)
                return err_errno(err, errno, "stat %s", path);
        if (stat("/proc/thread-self/ns/net", &b) < 0)
                return err_errno(err, errno, "stat /proc/thread-self/ns/net");
        return a.st_ino != b.st_ino || a.st_dev != b.st_dev ? 1 : 0;
}
