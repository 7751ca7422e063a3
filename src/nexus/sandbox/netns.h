/* sandbox/netns.h — a TCP listener opened inside another process's network namespace
 * (DESIGN D13, D14; contract: sandbox_contract.md step 4).
 *
 * The bwrap sandbox has an empty network namespace (loopback only). nexusd opens the egress
 * proxy's listener on 127.0.0.1:<port> INSIDE that namespace and serves it from its own loop:
 * a socket keeps the namespace it was created in, whatever thread later uses it. So: enter the
 * sandbox's netns on the calling thread (setns is per-thread for CLONE_NEWNET), create, bind
 * and listen, and return to the original netns through an fd of it kept open for that purpose.
 * No socat, no bridge process, no Unix socket in the sandbox.
 *
 * The target is named by pid but entered through a pidfd (setns(pidfd, CLONE_NEWNET), Linux
 * 5.8) where the kernel has one, so a pid that is reused between the lookup and the setns
 * cannot redirect us into a stranger's namespace; nx_netns_listen_child() also checks, after
 * the pidfd is open, that the process is a child of an expected parent (bwrap's monitor, which
 * nexusd has not reaped yet, so that pid cannot have been reused). /proc/<pid>/ns/net is the
 * fallback on kernels without pidfd setns.
 *
 * Fails closed: any step failing (including the return to the original netns — then the
 * calling thread would be stranded, so the process aborts rather than serve the daemon from
 * the sandbox's namespace) gives -1 and no fd. Every fd is O_CLOEXEC; the listener is
 * non-blocking. Needs CAP_SYS_ADMIN (nexusd runs as root). Blocking-free: a few syscalls, fine
 * on the loop thread. */
#pragma once
#include <stdint.h>
#include <sys/types.h>

#include "core/error.h"

/* Listen backlog of the proxy listener. */
#define NX_NETNS_BACKLOG 64

/* Opens a listening TCP socket on ip:port (IPv4 or IPv6 literal) in pid's network namespace.
 * *fd_out gets a non-blocking, CLOEXEC listening socket owned by the caller. */
int nx_netns_listen(pid_t pid, const char *ip, uint16_t port, int *fd_out, err_t *err);

/* The same, after checking that pid's parent is expect_ppid (0 = no check). */
int nx_netns_listen_child(pid_t pid, pid_t expect_ppid, const char *ip, uint16_t port,
                          int *fd_out, err_t *err);

/* True (1) when pid lives in a network namespace other than the caller's, 0 when it is the
 * same, -1 with err when it cannot be told. */
int nx_netns_is_other(pid_t pid, err_t *err);
