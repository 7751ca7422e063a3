/* proxy/proxy.h — the per-directive egress proxy (spec nexus §7, DESIGN D14, issue #6 item 2).
 *
 * One nx_proxy per untrusted directive, served from nexusd's libuv loop (D11): no threads of its
 * own (name resolution runs on the uv thread pool through uv_getaddrinfo), no global state.
 * Everything is called on the loop thread.
 *
 * One listener demuxes by the first byte (§7.2): 0x05 → SOCKS5 (§7.5), anything else → HTTP:
 * CONNECT (§7.3, also "[v6]:port") or absolute-form "http://" (§7.4). Every other request gets
 * 400 "not a proxy request". Policy from the directive's NetCapabilityV1 (lib/proto/netcap.h,
 * §7.6): none / allowlist / unrestricted, absent capability = none. Any host a resolver could
 * read as an IPv4/IPv6 address ("2130706433", "0177.0.0.1", "0x7f.1", "127.1", "[::1]") is an IP
 * literal: it never matches an allowlist, and in unrestricted mode it is canonicalised with
 * inet_aton/inet_pton and checked by the denied-address classifier (lib/proto/addr.h) — it is
 * never handed to the resolver. Zone ids ("fe80::1%eth0") and ports 0 / > 65535 are
 * INVALID_DESTINATION.
 *
 * Names are resolved once (uv_getaddrinfo); EVERY answer is classified; denied answers are
 * skipped and the first allowed one is dialled — that exact sockaddr, never re-resolved, no other
 * address tried on failure (§7.8). All answers denied → DNS_DENIED with resolved_ip = the first.
 *
 * Bounds (D14): first byte 2 s, request head 10 s and 16 KiB (→ 431, audit INVALID_DESTINATION),
 * connect 10 s, tunnel idle 300 s, 256 concurrent connections (extra ones are closed at once and
 * audited OTHER). Error responses carry "X-Proxy-Error: <REASON>".
 *
 * Audit: exactly one record per decision, handed to the audit callback (borrowed; copy or
 * serialise it before returning):
 *   {"ts","directive_id","dest_host","dest_port","resolved_ip"?,"decision":"allow"|"deny",
 *    "reason_code","method":"CONNECT"|"HTTP"|"SOCKS5"}
 * plus, once at nx_proxy_close(), a summary record {"ts","directive_id","type":"summary",
 * "connections","allowed","denied","rejected","bytes_up","bytes_down"} (records without "type"
 * are decisions).
 *
 * The process must ignore SIGPIPE (nexusd does): libuv writes to sockets with write(2). */
#pragma once
#include <jansson.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>
#include "core/error.h"

#define NX_PROXY_FIRST_BYTE_TIMEOUT_MS 2000
#define NX_PROXY_HEAD_TIMEOUT_MS 10000
#define NX_PROXY_CONNECT_TIMEOUT_MS 10000
#define NX_PROXY_IDLE_TIMEOUT_MS 300000
#define NX_PROXY_MAX_CONNS 256
#define NX_PROXY_DNS_INFLIGHT 8   /* lookups running at once per proxy; the rest queue */
#define NX_PROXY_LOCAL_MAX 64     /* node interface addresses remembered per proxy */
#define NX_PROXY_HEAD_MAX 16384          /* request head cap (HTTP and SOCKS5 alike) */
#define NX_PROXY_RESOLVE_MAX 16          /* answers considered per lookup */

typedef struct nx_proxy nx_proxy;

typedef void (*nx_proxy_audit_fn)(void *ud, json_t *record /* borrowed */);

/* UNIT-TEST seams (production passes NULL opts). The resolver override replaces uv_getaddrinfo:
 * fill up to max addresses (AF_INET/AF_INET6 sockaddrs) into addrs, set *n, return 0; return -1
 * for a lookup failure (→ DNS_DENIED). The classifier ALWAYS judges what it returned. The dial
 * override is applied AFTER the check: it maps the checked address to the one actually dialled
 * (e.g. a loopback test server); return -1 to simulate a refused connection. */
typedef int (*nx_proxy_resolve_fn)(void *ud, const char *host, struct sockaddr_storage *addrs,
                                   size_t max, size_t *n);
typedef int (*nx_proxy_dial_fn)(void *ud, const struct sockaddr *checked,
                                struct sockaddr_storage *dial, socklen_t *dial_len);

typedef struct nx_proxy_opts {
        uint64_t first_byte_timeout_ms; /* 0 = NX_PROXY_FIRST_BYTE_TIMEOUT_MS */
        uint64_t head_timeout_ms;       /* 0 = NX_PROXY_HEAD_TIMEOUT_MS */
        uint64_t connect_timeout_ms;    /* 0 = NX_PROXY_CONNECT_TIMEOUT_MS (also the wait for
                                         * the resolver) */
        uint64_t idle_timeout_ms;       /* 0 = NX_PROXY_IDLE_TIMEOUT_MS */
        size_t max_conns;               /* 0 = NX_PROXY_MAX_CONNS */
        nx_proxy_resolve_fn resolve;    /* NULL = uv_getaddrinfo */
        void *resolve_ud;
        nx_proxy_dial_fn dial;          /* NULL = dial the checked address */
        void *dial_ud;
        bool no_summary;                /* do not emit the summary record at close */
} nx_proxy_opts;

typedef struct nx_proxy_stats {
        uint64_t conns;                 /* accepted connections, including rejected ones */
        uint64_t active;                /* client connections open now */
        uint64_t rejected;              /* closed at once: over max_conns */
        uint64_t allowed;               /* allow decisions */
        uint64_t denied;                /* deny decisions */
        uint64_t bytes_up;              /* client → destination payload bytes (after the head) */
        uint64_t bytes_down;            /* destination → client bytes */
} nx_proxy_stats;

/* Creates a proxy for directive_id (wire_id_is_valid, §7.1: "invalid directive ID") with the
 * policy built from net_capability (NULL or JSON null = mode none; borrowed). An invalid
 * capability or allowlist entry → NULL + err (the directive must not start, vector 16/#189).
 * No listener yet. fn may be NULL (no audit). */
nx_proxy *nx_proxy_new(uv_loop_t *loop, const char *directive_id, const json_t *net_capability,
                       const nx_proxy_opts *opts, nx_proxy_audit_fn fn, void *ud, err_t *err);

/* Serves an already listening TCP socket (e.g. one opened inside the sandbox's netns). Takes
 * ownership of listen_fd in every case (closed on failure). One listener per proxy. */
int nx_proxy_adopt_listener(nx_proxy *p, int listen_fd, err_t *err);

/* Binds and listens on host:port (port 0 = ephemeral; *bound gets the port when non-NULL).
 * For tests and benchmarks. */
int nx_proxy_listen_tcp(nx_proxy *p, const char *host, uint16_t port, uint16_t *bound,
                        err_t *err);

void nx_proxy_stats_get(const nx_proxy *p, nx_proxy_stats *out);

/* Closes the listener and every connection (tunnels too), emits the summary record, then
 * frees p and calls done(ud) from the loop once every handle is closed. Idempotent: a second
 * call before the first completes is ignored (its done is not called). p must not be used
 * after the first call. */
void nx_proxy_close(nx_proxy *p, void (*done)(void *ud), void *ud);
