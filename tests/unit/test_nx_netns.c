/* tests/unit/test_nx_netns.c — sandbox/netns: a listener opened inside another process's
 * network namespace (DESIGN D13, contract step 4). The target is an `unshare -n` child with
 * its loopback brought up; reachability is checked from a forked child that enters that
 * namespace (setns) and from the test's own namespace. Needs root (CAP_SYS_ADMIN). */
#include "testutil.h"
#include "sandbox/netns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/str.h"

static pid_t ns_child;           /* unshare -n ... sleep, our direct child */

/* Starts `unshare -n sh -c 'ip link set lo up; echo ready; exec sleep 600'` and waits for
 * "ready" on its stdout. */
static int start_ns_child(void)
{
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -1;
        pid_t pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                dup2(p[1], 1);
                execl("/usr/bin/unshare", "unshare", "-n", "/bin/sh", "-c",
                      "ip link set lo up && echo ready && exec sleep 600", (char *)NULL);
                _exit(127);
        }
        close(p[1]);
        char buf[16] = { 0 };
        struct pollfd pfd = { p[0], POLLIN, 0 };
        ssize_t n = 0;
        if (poll(&pfd, 1, 20000) == 1)
                n = read(p[0], buf, sizeof(buf) - 1);
        close(p[0]);
        if (n < 5 || strncmp(buf, "ready", 5) != 0) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                return -1;
        }
        ns_child = pid;
        return 0;
}

static int group_setup(void **state)
{
        return start_ns_child();
}

static int group_teardown(void **state)
{
        if (ns_child > 0) {
                kill(ns_child, SIGKILL);
                waitpid(ns_child, NULL, 0);
        }
        return 0;
}

/* A port free in the test's own namespace right now. */
static uint16_t free_host_port(void)
{
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(a);
        assert_true(s >= 0);
        assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
        close(s);
        return ntohs(a.sin_port);
}

static ino_t my_netns(void)
{
        struct stat st;
        assert_int_equal(stat("/proc/thread-self/ns/net", &st), 0);
        return st.st_ino;
}

/* Connects to 127.0.0.1:port, from inside pid's netns when pid > 0 (forked child + setns).
 * Returns 0 when connected, else the errno. */
static int connect_from(pid_t pid, uint16_t port)
{
        pid_t c = fork();
        assert_true(c >= 0);
        if (c == 0) {
                if (pid > 0) {
                        char path[64];
                        str_printf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
                        int fd = open(path, O_RDONLY | O_CLOEXEC);
                        if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
                                _exit(100);
                }
                int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
                                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
                if (connect(s, (struct sockaddr *)&a, sizeof(a)) == 0)
                        _exit(0);
                _exit(errno & 0x7f);
        }
        int st = 0;
        assert_int_equal(waitpid(c, &st, 0), c);
        assert_true(WIFEXITED(st));
        assert_int_not_equal(WEXITSTATUS(st), 100);
        return WEXITSTATUS(st);
}

static void test_target_lives_in_another_netns(void **state)
{
        err_t err = ERR_INIT;
        assert_int_equal(nx_netns_is_other(ns_child, &err), 1);
        assert_int_equal(nx_netns_is_other(getpid(), &err), 0);
}

static void test_listener_is_nonblocking_cloexec_on_requested_address(void **state)
{
        err_t err = ERR_INIT;
        int fd = -1;
        uint16_t port = free_host_port();
        assert_int_equal(nx_netns_listen(ns_child, "127.0.0.1", port, &fd, &err), 0);
        assert_true(fd >= 0);
        assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
        struct sockaddr_in a;
        socklen_t len = sizeof(a);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
        assert_int_equal(ntohs(a.sin_port), port);
        assert_int_equal(ntohl(a.sin_addr.s_addr), INADDR_LOOPBACK);
        close(fd);
}

static void test_listener_reachable_from_inside_the_namespace(void **state)
{
        err_t err = ERR_INIT;
        int fd = -1;
        uint16_t port = free_host_port();
        assert_int_equal(nx_netns_listen(ns_child, "127.0.0.1", port, &fd, &err), 0);
        assert_int_equal(connect_from(ns_child, port), 0);
        struct pollfd p = { fd, POLLIN, 0 };
        assert_int_equal(poll(&p, 1, 5000), 1);
        int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        assert_true(c >= 0);
        close(c);
        close(fd);
}

static void test_listener_not_reachable_from_the_host(void **state)
{
        err_t err = ERR_INIT;
        int fd = -1;
        uint16_t port = free_host_port();
        assert_int_equal(nx_netns_listen(ns_child, "127.0.0.1", port, &fd, &err), 0);
        assert_int_equal(connect_from(0, port), ECONNREFUSED);
        close(fd);
}

static void test_caller_namespace_restored(void **state)
{
        err_t err = ERR_INIT;
        int fd = -1;
        ino_t before = my_netns();
        assert_int_equal(nx_netns_listen(ns_child, "127.0.0.1", free_host_port(), &fd, &err), 0);
        assert_true(my_netns() == before);
        close(fd);
        /* a socket made afterwards is in our namespace: a host listener is reachable */
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(a);
        assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(listen(s, 1), 0);
        assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
        assert_int_equal(connect_from(0, ntohs(a.sin_port)), 0);
        close(s);
}

static void test_bind_failure_fails_closed_and_restores_namespace(void **state)
{
        err_t err = ERR_INIT;
        int fd = -1, fd2 = 7;
        uint16_t port = free_host_port();
        ino_t before = my_netns();
        assert_int_equal(nx_netns_listen(ns_child, "127.0.0.1", port, &fd, &err), 0);
        assert_int_equal(nx_netns_listen(ns_child, "127.0.0.1", port, &fd2, &err), -1);
        assert_int_equal(fd2, -1);
        assert_non_null(strstr(err.msg, "Address already in use"));
        assert_true(my_netns() == before);
        close(fd);
}

static void test_ipv6_loopback_listener(void **state)
{
        err_t err = ERR_INIT;
        int fd = -1;
        if (access("/proc/net/if_inet6", F_OK) != 0)
                SKIP_BECAUSE("IPv6 is disabled in this kernel");
        assert_int_equal(nx_netns_listen(ns_child, "::1", free_host_port(), &fd, &err), 0);
        struct sockaddr_in6 a;
        socklen_t len = sizeof(a);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
        assert_int_equal(a.sin6_family, AF_INET6);
        close(fd);
}

static void test_expected_parent_accepted(void **state)
{
        err_t err = ERR_INIT;
        int fd = -1;
        /* the sleeping process is our child (unshare execs sh which execs sleep) */
        assert_int_equal(nx_netns_listen_child(ns_child, getpid(), "127.0.0.1",
                                               free_host_port(), &fd, &err), 0);
        close(fd);
}

static void test_wrong_parent_refused(void **state)
{
        err_t err = ERR_INIT;
        int fd = 5;
        assert_int_equal(nx_netns_listen_child(ns_child, 1, "127.0.0.1", free_host_port(), &fd,
                                               &err), -1);
        assert_int_equal(fd, -1);
        assert_non_null(strstr(err.msg, "is not a child of 1"));
}

static void test_dead_process_refused(void **state)
{
        err_t err = ERR_INIT;
        int fd = 5;
        pid_t c = fork();
        assert_true(c >= 0);
        if (c == 0)
                _exit(0);
        assert_int_equal(waitpid(c, NULL, 0), c);
        assert_int_equal(nx_netns_listen(c, "127.0.0.1", 9080, &fd, &err), -1);
        assert_int_equal(fd, -1);
}

/* bwrap reports the sandbox pid before its child has finished setting up `lo`; in the
 * window where lo is up but 127.0.0.1 not yet assigned, bind fails with EADDRNOTAVAIL (2 of
 * ~520 starts). The listener waits for the address (bounded) instead of failing. Target: a
 * namespace whose lo is up without 127.0.0.1 when it says "ready", and gets it 30 ms later;
 * the listener must succeed and be reachable. */
static void test_listener_waits_for_loopback_address(void **state)
{
        err_t err = ERR_INIT;
        int fd = -1, p[2];
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        pid_t c = fork();
        assert_true(c >= 0);
        if (c == 0) {
                dup2(p[1], 1);
                execl("/usr/bin/unshare", "unshare", "-n", "/bin/sh", "-c",
                      "ip link set lo up && ip addr del 127.0.0.1/8 dev lo && echo ready && "
                      "sleep 0.03 && ip addr add 127.0.0.1/8 dev lo && exec sleep 600",
                      (char *)NULL);
                _exit(127);
        }
        close(p[1]);
        char buf[16] = { 0 };
        struct pollfd pfd = { p[0], POLLIN, 0 };
        ssize_t n = 0;
        if (poll(&pfd, 1, 20000) == 1)
                n = read(p[0], buf, sizeof(buf) - 1);
        close(p[0]);
        int rc = -1;
        uint16_t port = free_host_port();
        if (n >= 5 && strncmp(buf, "ready", 5) == 0) {
                rc = nx_netns_listen_child(c, getpid(), "127.0.0.1", port, &fd, &err);
                if (rc == 0)
                        rc = connect_from(c, port);
        }
        kill(c, SIGKILL);
        waitpid(c, NULL, 0);
        if (fd >= 0)
                close(fd);
        if (rc != 0)
                fail_msg("listener: %d %s", rc, err.msg);
}

static void test_invalid_arguments_refused(void **state)
{
        err_t err = ERR_INIT;
        int fd = 5;
        assert_int_equal(nx_netns_listen(0, "127.0.0.1", 9080, &fd, &err), -1);
        assert_int_equal(fd, -1);
        assert_int_equal(nx_netns_listen(ns_child, "127.0.0.1", 0, &fd, &err), -1);
        assert_string_equal(err.msg, "netns listen: port 0 is not allowed");
        assert_int_equal(nx_netns_listen(ns_child, "localhost", 9080, &fd, &err), -1);
        assert_non_null(strstr(err.msg, "is not an IP literal"));
        assert_int_equal(nx_netns_listen(ns_child, "", 9080, &fd, &err), -1);
}

int main(void)
{
        if (geteuid() != 0) {
                printf("1..0 # SKIP needs root (CAP_SYS_ADMIN for setns)\n");
                return 0;
        }
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_target_lives_in_another_netns),
                cmocka_unit_test(test_listener_is_nonblocking_cloexec_on_requested_address),
                cmocka_unit_test(test_listener_reachable_from_inside_the_namespace),
                cmocka_unit_test(test_listener_not_reachable_from_the_host),
                cmocka_unit_test(test_caller_namespace_restored),
                cmocka_unit_test(test_bind_failure_fails_closed_and_restores_namespace),
                cmocka_unit_test(test_ipv6_loopback_listener),
                cmocka_unit_test(test_expected_parent_accepted),
                cmocka_unit_test(test_wrong_parent_refused),
                cmocka_unit_test(test_dead_process_refused),
                cmocka_unit_test(test_listener_waits_for_loopback_address),
                cmocka_unit_test(test_invalid_arguments_refused),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
