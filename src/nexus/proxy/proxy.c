/* proxy/proxy.c — the per-directive egress proxy on libuv (see proxy.h; nexus §7, DESIGN D14).
 *
 * One nx_conn per accepted client. States:
 *   FIRST ──0x05──▶ SOCKS_GREET ─▶ SOCKS_REQ ─┐
 *     └────other──▶ HTTP_HEAD ────────────────┴▶ (decide) ─▶ RESOLVING ─▶ CONNECTING ─▶ RELAY
 * and RESPONDING (an error answer is being written, then the connection closes). One timer per
 * connection carries whichever deadline the state has (first byte, head, resolve+connect, idle).
 * A connection is freed when its last handle is closed and no getaddrinfo is outstanding. */
#include "proxy/proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "core/clock.h"
#include "core/str.h"
#include "proto/addr.h"
#include "proto/allowlist.h"
#include "proto/netcap.h"
#include "proto/reason.h"
#include "proto/wire.h"
#include "proxy/httphead.h"
#include "proxy/socks5.h"

/* Relay buffer per direction of a tunnel, allocated when the tunnel starts relaying (the
 * request head is read through a HEAD_BUF one first). 256 KiB reads: fewer syscalls and loop
 * turns per byte (docs/benchmarks.md "Egress proxy (issue 6)"). Memory is bounded: at most one
 * buffer per direction is in flight (relay_write pauses the source), so a tunnel holds
 * 2 x RELAY_BUF = 512 KiB, and a proxy at most max_conns (NX_PROXY_MAX_CONNS = 256) tunnels:
 * 128 MiB in the worst case, ~17 KiB per connection still reading its head. */
#define RELAY_BUF (256 * 1024)
#define HEAD_BUF (NX_PROXY_HEAD_MAX + 1)
#define RESP_MAX 512
#define HOST_MAX 256
#define LISTEN_BACKLOG 128

typedef enum conn_state {
        CS_FIRST = 0,
        CS_HTTP_HEAD,
        CS_SOCKS_GREET,
        CS_SOCKS_REQ,
        CS_RESOLVING,
        CS_CONNECTING,
        CS_RELAY,
        CS_RESPONDING,
        CS_CLOSED,
} conn_state;

typedef enum conn_method { M_NONE = 0, M_CONNECT, M_HTTP, M_SOCKS5 } conn_method;

typedef struct nx_conn nx_conn;

struct nx_proxy {
        uv_loop_t *loop;
        char directive_id[WIRE_ID_MAX + 1];
        net_policy pol;
        nx_proxy_opts o;
        nx_proxy_audit_fn fn;
        void *ud;
        uv_timer_t life;                /* always open: gives nx_proxy_close a close callback */
        uv_tcp_t listener;
        bool has_listener;
        unsigned handles;               /* open proxy-level handles (life, listener, rejects) */
        nx_conn *conns;                 /* doubly linked */
        nx_proxy_stats st;
        bool closing;
        void (*done)(void *ud);
        void *done_ud;
        /* the node's own interface addresses, read at creation: a public address of this
         * machine is still this machine (security review L4) */
        struct in6_addr local[NX_PROXY_LOCAL_MAX];      /* IPv4 as v4-mapped */
        size_t nlocal;
        /* lookups run on libuv's shared pool: at most NX_PROXY_DNS_INFLIGHT per proxy, the
         * rest wait here in arrival order (security review L2) */
        unsigned gai_inflight;
        nx_conn *gai_wait_head, *gai_wait_tail;
};

struct nx_conn {
        nx_proxy *p;
        nx_conn *prev, *next;
        conn_state state;
        conn_method method;
        uv_tcp_t client;
        uv_tcp_t up;
        uv_timer_t timer;
        bool up_init;
        unsigned refs;                  /* open handles + outstanding getaddrinfo */
        bool closing;

        buf in;                         /* head bytes read so far (cap head_max) */
        buf pend;                       /* bytes for upstream once connected */
        uint8_t *cbuf;                  /* client → upstream read buffer */
        uint8_t *ubuf;                  /* upstream → client read buffer */

        char host[HOST_MAX];
        uint16_t port;
        char resolved_ip[INET6_ADDRSTRLEN];
        struct sockaddr_storage target;

        uv_getaddrinfo_t gai;
        bool gai_active;
        bool gai_waiting;               /* queued behind the per-proxy lookup cap */
        nx_conn *gai_next;
        bool gai_cancelled;             /* uv_cancel tried once (never twice) */
        uv_connect_t creq;

        uint64_t body_left;             /* HTTP absolute-form: request body bytes to forward */
        bool up_done, down_done;        /* relay directions finished */
        bool up_writing, down_writing;  /* a relay write is queued in that direction */
        bool client_eof;
        bool up_shut, down_shut;
        uint64_t last_activity;

        uv_write_t wreq_resp, wreq_pend, wreq_up, wreq_down;
        uv_shutdown_t sreq_client, sreq_up;
        char resp[RESP_MAX];
};

static void conn_close(nx_conn *c);
static void conn_decide(nx_conn *c);
static void proxy_maybe_finish(nx_proxy *p);

/* ── audit ───────────────────────────────────────────────────────────────────────────────── */

static const char *method_name(conn_method m)
{
        switch (m) {
        case M_CONNECT: return "CONNECT";
        case M_HTTP: return "HTTP";
        case M_SOCKS5: return "SOCKS5";
        case M_NONE:
        default: return NULL;
        }
}

/* One record per decision (§7.10). host is untrusted text: it goes in verbatim when it is valid
 * UTF-8 (json_string needs that), else quoted with \xNN escapes. */
static void audit(nx_proxy *p, const char *host, uint16_t port, const char *resolved_ip,
                  net_reason reason, conn_method m)
{
        bool allow = net_reason_allows(reason);
        if (allow)
                p->st.allowed++;
        else
                p->st.denied++;
        if (!p->fn)
                return;
        char ts[RFC3339_MS_LEN];
        if (rfc3339_now_ms(ts, sizeof(ts)) < 0)
                ts[0] = '\0';
        if (!host)
                host = "";
        char quoted[HOST_MAX * 4 + 8];
        const char *h = host;
        if (!str_utf8_valid(host, strlen(host)))
                h = allow_quote(host, strlen(host), quoted, sizeof(quoted));
        json_t *r = json_object();
        if (!r)
                return;
        int rc = 0;
        rc |= json_object_set_new(r, "ts", json_string(ts));
        rc |= json_object_set_new(r, "directive_id", json_string(p->directive_id));
        rc |= json_object_set_new(r, "dest_host", json_string(h));
        rc |= json_object_set_new(r, "dest_port", json_integer(port));
        if (resolved_ip && resolved_ip[0])
                rc |= json_object_set_new(r, "resolved_ip", json_string(resolved_ip));
        rc |= json_object_set_new(r, "decision", json_string(allow ? "allow" : "deny"));
        rc |= json_object_set_new(r, "reason_code", json_string(net_reason_name(reason)));
        const char *mn = method_name(m);
        if (mn)
                rc |= json_object_set_new(r, "method", json_string(mn));
        if (rc == 0)
                p->fn(p->ud, r);
        json_decref(r);
}

static void audit_summary(nx_proxy *p)
{
        if (!p->fn || p->o.no_summary)
                return;
        char ts[RFC3339_MS_LEN];
        if (rfc3339_now_ms(ts, sizeof(ts)) < 0)
                ts[0] = '\0';
        json_t *r = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I}",
                              "ts", ts, "directive_id", p->directive_id, "type", "summary",
                              "connections", (json_int_t)p->st.conns,
                              "allowed", (json_int_t)p->st.allowed,
                              "denied", (json_int_t)p->st.denied,
                              "rejected", (json_int_t)p->st.rejected,
                              "bytes_up", (json_int_t)p->st.bytes_up,
                              "bytes_down", (json_int_t)p->st.bytes_down);
        if (r)
                p->fn(p->ud, r);
        json_decref(r);
}

/* ── connection teardown ─────────────────────────────────────────────────────────────────── */

static void conn_free(nx_conn *c)
{
        nx_proxy *p = c->p;
        if (c->prev)
                c->prev->next = c->next;
        else
                p->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        buf_free(&c->in);
        buf_free(&c->pend);
        free(c->cbuf);
        c->cbuf = NULL;
        free(c->ubuf);
        c->ubuf = NULL;
        free(c);
        if (p->st.active > 0)
                p->st.active--;
        proxy_maybe_finish(p);
}

static void conn_unref(nx_conn *c)
{
        if (c->refs > 0)
                c->refs--;
        if (c->refs == 0 && c->closing)
                conn_free(c);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
        conn_unref(h->data);
}

static void close_handle(nx_conn *c, uv_handle_t *h)
{
        if (!uv_is_closing(h))
                uv_close(h, on_conn_handle_closed);
}

static void conn_gai_cancel(nx_conn *c)
{
        if (c->gai_active && !c->gai_cancelled) {
                c->gai_cancelled = true;
                (void)uv_cancel((uv_req_t *)&c->gai);
        }
}

static void gai_unqueue(nx_conn *c)
{
        nx_proxy *p = c->p;
        nx_conn **pp = &p->gai_wait_head, *prev = NULL;
        while (*pp && *pp != c) {
                prev = *pp;
                pp = &(*pp)->gai_next;
        }
        if (*pp) {
                *pp = c->gai_next;
                if (p->gai_wait_tail == c)
                        p->gai_wait_tail = prev;
        }
        c->gai_next = NULL;
        c->gai_waiting = false;
}

static void conn_close(nx_conn *c)
{
        if (c->closing)
                return;
        c->closing = true;
        c->state = CS_CLOSED;
        if (c->gai_waiting)
                gai_unqueue(c);
        conn_gai_cancel(c);          /* if it already runs, its callback unrefs */
        close_handle(c, (uv_handle_t *)&c->client);
        close_handle(c, (uv_handle_t *)&c->timer);
        if (c->up_init)
                close_handle(c, (uv_handle_t *)&c->up);
        if (c->refs == 0)
                conn_free(c);
}

/* ── timers ──────────────────────────────────────────────────────────────────────────────── */

static void on_timer(uv_timer_t *t);

static void arm(nx_conn *c, uint64_t ms)
{
        uv_timer_stop(&c->timer);
        uv_timer_start(&c->timer, on_timer, ms, 0);
}

/* ── answering errors ────────────────────────────────────────────────────────────────────── */

static void on_shutdown_then_close(uv_shutdown_t *req, int status)
{
        (void)status;
        conn_close(req->data);
}

static void on_resp_written(uv_write_t *req, int status)
{
        nx_conn *c = req->data;
        if (c->closing)
                return;
        if (status < 0) {
                conn_close(c);
                return;
        }
        c->sreq_client.data = c;
        if (uv_shutdown(&c->sreq_client, (uv_stream_t *)&c->client, on_shutdown_then_close) < 0)
                conn_close(c);
}

/* Writes c->resp[0..len) to the client, then shuts the write side down and closes. */
static void respond_and_close(nx_conn *c, size_t len)
{
        if (c->closing)
                return;
        c->state = CS_RESPONDING;
        uv_read_stop((uv_stream_t *)&c->client);
        arm(c, c->p->o.head_timeout_ms);        /* a client that never reads cannot pin us */
        uv_buf_t b = uv_buf_init(c->resp, (unsigned)len);
        c->wreq_resp.data = c;
        if (uv_write(&c->wreq_resp, (uv_stream_t *)&c->client, &b, 1, on_resp_written) < 0)
                conn_close(c);
}

static const char *status_text(int code)
{
        switch (code) {
        case 400: return "Bad Request";
        case 403: return "Forbidden";
        case 408: return "Request Timeout";
        case 431: return "Request Header Fields Too Large";
        case 501: return "Not Implemented";
        case 502: return "Bad Gateway";
        case 505: return "HTTP Version Not Supported";
        default: return "Error";
        }
}

/* §7.3 error answer: plain-text body + newline, nosniff, and the ADVISED X-Proxy-Error. */
static void http_error(nx_conn *c, int code, const char *body, net_reason reason)
{
        size_t blen = strlen(body) + 1;
        int n = str_printf(c->resp, sizeof(c->resp),
                           "HTTP/1.1 %d %s\r\n"
                           "Content-Type: text/plain; charset=utf-8\r\n"
                           "X-Content-Type-Options: nosniff\r\n"
                           "X-Proxy-Error: %s\r\n"
                           "Content-Length: %zu\r\n"
                           "Connection: close\r\n\r\n%s\n",
                           code, status_text(code), net_reason_name(reason), blen, body);
        if (n < 0) {
                conn_close(c);
                return;
        }
        respond_and_close(c, (size_t)n);
}

static void socks_error(nx_conn *c, uint8_t rep)
{
        nx_socks5_reply(rep, (uint8_t *)c->resp);
        respond_and_close(c, NX_SOCKS5_REPLY_LEN);
}

/* A deny after the destination is known: audit once, then the protocol's answer. */
static void deny(nx_conn *c, net_reason reason, int http_code, const char *http_body,
                 uint8_t socks_rep)
{
        audit(c->p, c->host, c->port, c->resolved_ip, reason, c->method);
        if (c->method == M_SOCKS5)
                socks_error(c, socks_rep);
        else
                http_error(c, http_code, http_body, reason);
}

static void deny_policy(nx_conn *c, net_reason reason)
{
        char body[96];
        int n = snprintf(body, sizeof(body), "egress denied: %s", net_reason_name(reason));
        if (n < 0)
                body[0] = '\0';
        deny(c, reason, 403, body, NX_SOCKS5_REP_NOT_ALLOWED);
}

/* ── relay ───────────────────────────────────────────────────────────────────────────────── */

static void relay_maybe_done(nx_conn *c)
{
        if (c->up_done && c->down_done)
                conn_close(c);
}

static void on_up_shutdown(uv_shutdown_t *req, int status)
{
        nx_conn *c = req->data;
        (void)status;
        if (c->closing)
                return;
        c->up_done = true;
        relay_maybe_done(c);
}

static void on_client_shutdown(uv_shutdown_t *req, int status)
{
        nx_conn *c = req->data;
        (void)status;
        if (c->closing)
                return;
        c->down_done = true;
        relay_maybe_done(c);
}

/* EOF from the client: pass the half-close on (uv_shutdown waits for queued writes). */
static void finish_up(nx_conn *c)
{
        if (c->up_shut)
                return;
        c->up_shut = true;
        c->sreq_up.data = c;
        if (uv_shutdown(&c->sreq_up, (uv_stream_t *)&c->up, on_up_shutdown) < 0)
                conn_close(c);
}

static void finish_down(nx_conn *c)
{
        if (c->down_shut)
                return;
        c->down_shut = true;
        c->sreq_client.data = c;
        if (uv_shutdown(&c->sreq_client, (uv_stream_t *)&c->client, on_client_shutdown) < 0)
                conn_close(c);
}

static void alloc_cbuf(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
        nx_conn *c = h->data;
        (void)suggested;
        *b = uv_buf_init((char *)c->cbuf, RELAY_BUF);
}

static void alloc_ubuf(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
        nx_conn *c = h->data;
        (void)suggested;
        *b = uv_buf_init((char *)c->ubuf, RELAY_BUF);
}

static void on_client_read_relay(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);
static void on_up_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);

static void on_relay_up_written(uv_write_t *req, int status)
{
        nx_conn *c = req->data;
        if (c->closing)
                return;
        c->up_writing = false;
        if (status < 0) {
                conn_close(c);
                return;
        }
        if (!c->client_eof && !c->up_done &&
            uv_read_start((uv_stream_t *)&c->client, alloc_cbuf, on_client_read_relay) < 0)
                conn_close(c);
}

static void on_relay_down_written(uv_write_t *req, int status)
{
        nx_conn *c = req->data;
        if (c->closing)
                return;
        c->down_writing = false;
        if (status < 0) {
                conn_close(c);
                return;
        }
        if (!c->down_shut &&
            uv_read_start((uv_stream_t *)&c->up, alloc_ubuf, on_up_read) < 0)
                conn_close(c);
}

/* Writes what it can at once; queues the rest and pauses the source until it is written, so
 * at most one buffer per direction is ever in flight (bounded memory, natural backpressure). */
static int relay_write(nx_conn *c, uv_stream_t *dst, uv_stream_t *src, uv_write_t *req,
                       bool *writing, char *data, size_t len, uv_write_cb cb)
{
        uv_buf_t b = uv_buf_init(data, (unsigned)len);
        int r = uv_try_write(dst, &b, 1);
        if (r == (int)len)
                return 0;
        if (r < 0 && r != UV_EAGAIN)
                return r;
        if (r > 0)
                b = uv_buf_init(data + r, (unsigned)(len - (size_t)r));
        req->data = c;
        *writing = true;
        uv_read_stop(src);
        return uv_write(req, dst, &b, 1, cb);
}

static void on_client_read_relay(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
        nx_conn *c = s->data;
        if (c->closing || nread == 0)
                return;
        if (nread < 0) {
                uv_read_stop(s);
                if (nread != UV_EOF) {
                        conn_close(c);
                        return;
                }
                c->client_eof = true;
                finish_up(c);
                return;
        }
        c->last_activity = uv_now(c->p->loop);
        size_t n = (size_t)nread;
        if (c->method == M_HTTP) {
                /* one-shot request: forward exactly the declared body, then stop reading */
                if (n > c->body_left)
                        n = (size_t)c->body_left;
                c->body_left -= n;
                if (c->body_left == 0) {
                        uv_read_stop(s);
                        c->up_done = true;
                }
                if (n == 0) {
                        relay_maybe_done(c);
                        return;
                }
        }
        c->p->st.bytes_up += n;
        if (relay_write(c, (uv_stream_t *)&c->up, s, &c->wreq_up, &c->up_writing, b->base, n,
                        on_relay_up_written) < 0)
                conn_close(c);
}

static void on_up_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
        nx_conn *c = s->data;
        if (c->closing || nread == 0)
                return;
        if (nread < 0) {
                uv_read_stop(s);
                if (nread != UV_EOF) {
                        conn_close(c);
                        return;
                }
                if (c->method == M_HTTP) {
                        /* the response is over: nothing more will be relayed either way */
                        c->up_done = true;
                }
                finish_down(c);
                return;
        }
        c->last_activity = uv_now(c->p->loop);
        c->p->st.bytes_down += (uint64_t)nread;
        if (relay_write(c, (uv_stream_t *)&c->client, s, &c->wreq_down, &c->down_writing,
                        b->base, (size_t)nread, on_relay_down_written) < 0)
                conn_close(c);
}

static void on_pend_written(uv_write_t *req, int status)
{
        nx_conn *c = req->data;
        if (c->closing)
                return;
        if (status < 0)
                conn_close(c);
}

static void relay_start(nx_conn *c)
{
        c->state = CS_RELAY;
        /* the head is parsed and copied (c->in, c->pend): the head buffer becomes a relay one */
        free(c->cbuf);
        c->cbuf = malloc(RELAY_BUF);
        c->ubuf = malloc(RELAY_BUF);
        if (!c->cbuf || !c->ubuf) {
                conn_close(c);
                return;
        }
        c->last_activity = uv_now(c->p->loop);
        arm(c, c->p->o.idle_timeout_ms);
        if (c->pend.len > 0) {
                uv_buf_t b = uv_buf_init(c->pend.data, (unsigned)c->pend.len);
                c->wreq_pend.data = c;
                if (uv_write(&c->wreq_pend, (uv_stream_t *)&c->up, &b, 1, on_pend_written) < 0) {
                        conn_close(c);
                        return;
                }
        }
        if (uv_read_start((uv_stream_t *)&c->up, alloc_ubuf, on_up_read) < 0) {
                conn_close(c);
                return;
        }
        if (c->method == M_HTTP && c->body_left == 0) {
                c->up_done = true;      /* nothing more to read from the client */
                return;
        }
        if (uv_read_start((uv_stream_t *)&c->client, alloc_cbuf, on_client_read_relay) < 0)
                conn_close(c);
}

/* ── connect ─────────────────────────────────────────────────────────────────────────────── */

static void on_connected(uv_connect_t *req, int status)
{
        nx_conn *c = req->data;
        if (c->closing || c->state != CS_CONNECTING)
                return;
        if (status < 0) {
                close_handle(c, (uv_handle_t *)&c->up);
                c->up_init = false;
                uint8_t rep = NX_SOCKS5_REP_FAILURE;
                if (status == UV_ECONNREFUSED)
                        rep = NX_SOCKS5_REP_REFUSED;
                else if (status == UV_ENETUNREACH)
                        rep = NX_SOCKS5_REP_NET_UNREACHABLE;
                else if (status == UV_EHOSTUNREACH || status == UV_ETIMEDOUT)
                        rep = NX_SOCKS5_REP_HOST_UNREACHABLE;
                deny(c, NET_REASON_OTHER, 502,
                     c->method == M_HTTP ? "upstream error" : "connection failed", rep);
                return;
        }
        uv_tcp_nodelay(&c->up, 1);
        audit(c->p, c->host, c->port, c->resolved_ip, NET_REASON_OK, c->method);
        /* the success answer of the tunnel methods (an absolute-form request has none) */
        size_t rlen = 0;
        if (c->method == M_CONNECT) {
                static const char ok[] = "HTTP/1.1 200 Connection Established\r\n\r\n";
                memcpy(c->resp, ok, sizeof(ok) - 1);
                rlen = sizeof(ok) - 1;
        } else if (c->method == M_SOCKS5) {
                nx_socks5_reply(NX_SOCKS5_REP_OK, (uint8_t *)c->resp);
                rlen = NX_SOCKS5_REPLY_LEN;
        }
        if (rlen > 0) {
                uv_buf_t b = uv_buf_init(c->resp, (unsigned)rlen);
                c->wreq_resp.data = c;
                if (uv_write(&c->wreq_resp, (uv_stream_t *)&c->client, &b, 1,
                             on_pend_written) < 0) {
                        conn_close(c);
                        return;
                }
        }
        relay_start(c);
}

static socklen_t sa_len(const struct sockaddr *sa)
{
        return sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                         : sizeof(struct sockaddr_in);
}

/* Dials the address that was checked (§7.8: never re-resolved, nothing else tried). */
static void conn_dial(nx_conn *c)
{
        nx_proxy *p = c->p;
        struct sockaddr_storage dial;
        memcpy(&dial, &c->target, sizeof(dial));
        if (p->o.dial) {
                socklen_t dl = sizeof(dial);
                if (p->o.dial(p->o.dial_ud, (const struct sockaddr *)&c->target, &dial,
                              &dl) < 0) {
                        deny(c, NET_REASON_OTHER, 502,
                             c->method == M_HTTP ? "upstream error" : "connection failed",
                             NX_SOCKS5_REP_REFUSED);
                        return;
                }
        }
        if (uv_tcp_init(p->loop, &c->up) < 0) {
                deny(c, NET_REASON_INTERNAL_ERROR, 502, "connection failed",
                     NX_SOCKS5_REP_FAILURE);
                return;
        }
        c->up.data = c;
        c->up_init = true;
        c->refs++;
        c->state = CS_CONNECTING;
        c->creq.data = c;
        int r = uv_tcp_connect(&c->creq, &c->up, (const struct sockaddr *)&dial,
                               on_connected);
        if (r < 0)
                on_connected(&c->creq, r);
}

/* ── resolve ─────────────────────────────────────────────────────────────────────────────── */

static void sa_text(const struct sockaddr *sa, char *out, size_t outsz)
{
        const void *a = sa->sa_family == AF_INET6
                ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
        if (!inet_ntop(sa->sa_family, a, out, (socklen_t)outsz))
                out[0] = '\0';
}

/* sa as an IPv6 address (IPv4 → ::ffff:a.b.c.d); false for other families. */
static bool sa_as_v6(const struct sockaddr *sa, struct in6_addr *out)
{
        if (sa->sa_family == AF_INET6) {
                *out = ((const struct sockaddr_in6 *)sa)->sin6_addr;
                return true;
        }
        if (sa->sa_family != AF_INET)
                return false;
        memset(out, 0, sizeof(*out));
        out->s6_addr[10] = out->s6_addr[11] = 0xff;
        memcpy(&out->s6_addr[12], &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return true;
}

static void load_local_addresses(nx_proxy *p)
{
        struct ifaddrs *ifs = NULL;
        if (getifaddrs(&ifs) < 0)
                return;
        for (struct ifaddrs *i = ifs; i && p->nlocal < NX_PROXY_LOCAL_MAX; i = i->ifa_next)
                if (i->ifa_addr && sa_as_v6(i->ifa_addr, &p->local[p->nlocal]))
                        p->nlocal++;
        freeifaddrs(ifs);
}

/* A destination that is one of the node's own addresses (any interface, any range) is denied
 * like a private one: it reaches services of the host bound to 0.0.0.0. */
static bool is_node_address(const nx_proxy *p, const struct sockaddr *sa)
{
        struct in6_addr a;
        if (!sa_as_v6(sa, &a))
                return false;
        for (size_t i = 0; i < p->nlocal; i++)
                if (memcmp(&a, &p->local[i], sizeof(a)) == 0)
                        return true;
        return false;
}

static bool destination_denied(const nx_proxy *p, const struct sockaddr *sa)
{
        return addr_is_denied(addr_classify_sockaddr(sa, sa_len(sa))) || is_node_address(p, sa);
}

/* §7.8 with D14: classify EVERY answer; skip denied ones; dial the first allowed one. */
static void conn_pick(nx_conn *c, const struct sockaddr *const *addrs, size_t n)
{
        c->resolved_ip[0] = '\0';
        for (size_t i = 0; i < n; i++) {
                const struct sockaddr *sa = addrs[i];
                if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
                        continue;
                if (!c->resolved_ip[0])
                        sa_text(sa, c->resolved_ip, sizeof(c->resolved_ip));
                if (destination_denied(c->p, sa))
                        continue;
                sa_text(sa, c->resolved_ip, sizeof(c->resolved_ip));
                memset(&c->target, 0, sizeof(c->target));
                memcpy(&c->target, sa, sa_len(sa));
                if (sa->sa_family == AF_INET6)
                        ((struct sockaddr_in6 *)&c->target)->sin6_port = htons(c->port);
                else
                        ((struct sockaddr_in *)&c->target)->sin_port = htons(c->port);
                conn_dial(c);
                return;
        }
        /* all answers denied (or none): a policy refusal, SOCKS 0x02 (documented) */
        deny(c, NET_REASON_DNS_DENIED, 403, "connection failed", NX_SOCKS5_REP_NOT_ALLOWED);
}

static void gai_start(nx_conn *c);

/* Starts waiting lookups while the proxy is under its cap. */
static void gai_pump(nx_proxy *p)
{
        while (p->gai_inflight < NX_PROXY_DNS_INFLIGHT && p->gai_wait_head) {
                nx_conn *next = p->gai_wait_head;
                gai_unqueue(next);
                if (!next->closing && next->state == CS_RESOLVING)
                        gai_start(next);
        }
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
        nx_conn *c = req->data;
        nx_proxy *p = c->p;
        /* before c may be freed below (and p with it, when it was the last connection of a
         * closing proxy — whose queue is then empty, as every queued connection closed) */
        p->gai_inflight--;
        gai_pump(p);
        c->gai_active = false;
        if (c->closing || c->state != CS_RESOLVING) {
                if (res)
                        uv_freeaddrinfo(res);
                conn_unref(c);
                return;
        }
        c->refs--;      /* the connection still holds its handles, so refs stays > 0 */
        if (status < 0 || !res) {
                if (res)
                        uv_freeaddrinfo(res);
                /* lookup failure: no address at all → host unreachable for SOCKS */
                c->resolved_ip[0] = '\0';
                deny(c, NET_REASON_DNS_DENIED, 403, "connection failed",
                     NX_SOCKS5_REP_HOST_UNREACHABLE);
                return;
        }
        const struct sockaddr *addrs[NX_PROXY_RESOLVE_MAX];
        size_t n = 0;
        for (struct addrinfo *ai = res; ai && n < NX_PROXY_RESOLVE_MAX; ai = ai->ai_next) {
                if (!ai->ai_addr)
                        continue;
                if ((ai->ai_family == AF_INET && ai->ai_addrlen >= sizeof(struct sockaddr_in)) ||
                    (ai->ai_family == AF_INET6 &&
                     ai->ai_addrlen >= sizeof(struct sockaddr_in6)))
                        addrs[n++] = ai->ai_addr;
        }
        conn_pick(c, addrs, n);
        uv_freeaddrinfo(res);
}

static void conn_resolve(nx_conn *c)
{
        nx_proxy *p = c->p;
        c->state = CS_RESOLVING;
        arm(c, p->o.connect_timeout_ms);
        uv_read_stop((uv_stream_t *)&c->client);
        if (p->o.resolve) {
                struct sockaddr_storage ss[NX_PROXY_RESOLVE_MAX];
                size_t n = 0;
                if (p->o.resolve(p->o.resolve_ud, c->host, ss, NX_PROXY_RESOLVE_MAX, &n) < 0) {
                        deny(c, NET_REASON_DNS_DENIED, 403, "connection failed",
                             NX_SOCKS5_REP_HOST_UNREACHABLE);
                        return;
                }
                if (n > NX_PROXY_RESOLVE_MAX)
                        n = NX_PROXY_RESOLVE_MAX;
                const struct sockaddr *addrs[NX_PROXY_RESOLVE_MAX];
                for (size_t i = 0; i < n; i++)
                        addrs[i] = (const struct sockaddr *)&ss[i];
                conn_pick(c, addrs, n);
                return;
        }
        if (p->gai_inflight >= NX_PROXY_DNS_INFLIGHT) {
                /* waits for a free slot; the connect timeout armed above still runs */
                c->gai_waiting = true;
                c->gai_next = NULL;
                if (p->gai_wait_tail)
                        p->gai_wait_tail->gai_next = c;
                else
                        p->gai_wait_head = c;
                p->gai_wait_tail = c;
                return;
        }
        gai_start(c);
}

static void gai_start(nx_conn *c)
{
        nx_proxy *p = c->p;
        struct addrinfo hints;
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_protocol = IPPROTO_TCP;
        c->gai.data = c;
        c->gai_active = true;
        c->refs++;
        int r = uv_getaddrinfo(p->loop, &c->gai, on_resolved, c->host, NULL, &hints);
        if (r < 0) {
                c->gai_active = false;
                c->refs--;
                deny(c, NET_REASON_DNS_DENIED, 403, "connection failed",
                     NX_SOCKS5_REP_HOST_UNREACHABLE);
                return;
        }
        p->gai_inflight++;
}

/* ── decision ────────────────────────────────────────────────────────────────────────────── */

/* An IP-literal host (anything inet_aton or inet_pton would read, host_is_ip_literal) is never
 * resolved: canonicalise it into c->target. Returns -1 if it is not a usable address. */
static int literal_to_target(nx_conn *c)
{
        char h[HOST_MAX];
        size_t n = strlen(c->host);
        const char *s = c->host;
        if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
                s++;
                n -= 2;
        }
        if (n > 0 && s[n - 1] == '.')
                n--;
        if (str_copyn(h, sizeof(h), s, n) < 0 || strchr(h, '%'))
                return -1;
        memset(&c->target, 0, sizeof(c->target));
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&c->target;
        struct sockaddr_in *s4 = (struct sockaddr_in *)&c->target;
        if (inet_pton(AF_INET6, h, &s6->sin6_addr) == 1) {
                s6->sin6_family = AF_INET6;
                s6->sin6_port = htons(c->port);
        } else if (inet_aton(h, &s4->sin_addr) != 0) {
                /* "2130706433", "0177.0.0.1", "0x7f.1", "127.1" all land here as 127.0.0.1 */
                s4->sin_family = AF_INET;
                s4->sin_port = htons(c->port);
        } else {
                return -1;
        }
        sa_text((const struct sockaddr *)&c->target, c->resolved_ip, sizeof(c->resolved_ip));
        return 0;
}

static void conn_decide(nx_conn *c)
{
        nx_proxy *p = c->p;
        uv_read_stop((uv_stream_t *)&c->client);
        if (c->host[0] == '\0' || c->port == 0 || strchr(c->host, '%')) {
                deny(c, NET_REASON_INVALID_DESTINATION, 400, "invalid host:port",
                     NX_SOCKS5_REP_ATYP_UNSUPPORTED);
                return;
        }
        net_reason r = net_policy_check(&p->pol, c->host, c->port);
        bool literal = host_is_ip_literal(c->host);
        /* IP literals never match an allowlist (§7.5 note, §7.7), whatever the entries say */
        if (r == NET_REASON_OK && literal && p->pol.mode != NET_MODE_UNRESTRICTED)
                r = NET_REASON_NOT_IN_ALLOWLIST;
        if (r != NET_REASON_OK) {
                deny_policy(c, r);
                return;
        }
        if (!literal) {
                conn_resolve(c);
                return;
        }
        arm(c, p->o.connect_timeout_ms);
        if (literal_to_target(c) < 0) {
                c->resolved_ip[0] = '\0';
                deny(c, NET_REASON_INVALID_DESTINATION, 400, "invalid host:port",
                     NX_SOCKS5_REP_ATYP_UNSUPPORTED);
                return;
        }
        const struct sockaddr *sa = (const struct sockaddr *)&c->target;
        if (destination_denied(p, sa)) {
                deny(c, NET_REASON_DNS_DENIED, 403, "connection failed",
                     NX_SOCKS5_REP_NOT_ALLOWED);
                return;
        }
        conn_dial(c);
}

/* ── HTTP ────────────────────────────────────────────────────────────────────────────────── */

static bool host_eq(const char *a, size_t an, const char *b, size_t bn)
{
        if (an > 0 && a[an - 1] == '.')
                an--;
        if (bn > 0 && b[bn - 1] == '.')
                bn--;
        return an == bn && (an == 0 || strncasecmp(a, b, an) == 0);
}

/* Sets c->host from untrusted bytes for an audit record (truncated, never overflowing). */
static void set_raw_host(nx_conn *c, const char *s, size_t n)
{
        /* a longer name keeps its prefix (str_copyn fails but fills c->host); an embedded NUL
         * simply ends the text early */
        (void)str_copyn(c->host, sizeof(c->host), s, n);
}

static void http_invalid(nx_conn *c, int code, const char *body)
{
        c->port = 0;
        deny(c, NET_REASON_INVALID_DESTINATION, code, body, 0);
}

static void http_connect(nx_conn *c, const nx_httphead *h)
{
        c->method = M_CONNECT;
        err_t e = ERR_INIT;
        uint16_t port = 0;
        if (authority_parse(h->target.p, h->target.len, 443, c->host, sizeof(c->host), &port,
                            &e) < 0) {
                set_raw_host(c, h->target.p, h->target.len);
                http_invalid(c, 400, "invalid host:port");
                return;
        }
        c->port = port;
        /* Host must name the CONNECT target (stricter than REF): a mismatch is how a client
         * smuggles a different virtual host past an audit that logs the authority. */
        size_t hc = 0;
        const nx_http_header *hh = nx_httphead_get(h, "Host", &hc);
        if (hc > 1) {
                deny(c, NET_REASON_INVALID_DESTINATION, 400, "multiple Host headers", 0);
                return;
        }
        if (hh) {
                char hhost[HOST_MAX];
                uint16_t hport = 0;
                err_t e2 = ERR_INIT;
                if (authority_parse(hh->value.p, hh->value.len, 443, hhost, sizeof(hhost),
                                    &hport, &e2) < 0 ||
                    hport != port || !host_eq(hhost, strlen(hhost), c->host, strlen(c->host))) {
                        deny(c, NET_REASON_INVALID_DESTINATION, 400,
                             "Host header does not match CONNECT target", 0);
                        return;
                }
        }
        /* bytes pipelined after the head go to the destination once it is connected */
        if (buf_append(&c->pend, c->in.data + h->head_len, c->in.len - h->head_len) < 0) {
                conn_close(c);
                return;
        }
        conn_decide(c);
}

static int parse_content_length(const nx_httphead *h, uint64_t *out)
{
        size_t n = 0;
        const nx_http_header *cl = nx_httphead_get(h, "Content-Length", &n);
        *out = 0;
        if (!cl)
                return 0;
        if (n > 1 || cl->value.len == 0 || cl->value.len > 15)
                return -1;
        uint64_t v = 0;
        for (size_t i = 0; i < cl->value.len; i++) {
                char ch = cl->value.p[i];
                if (ch < '0' || ch > '9')
                        return -1;
                v = v * 10 + (uint64_t)(ch - '0');
        }
        *out = v;
        return 0;
}

/* The request for the destination: origin-form target, Host from the URI (RFC 9112 §3.2.2),
 * hop-by-hop headers and those named in Connection removed, "Connection: close" (one-shot). */
static int http_build_upstream(nx_conn *c, const nx_httphead *h, nx_http_slice authority,
                               nx_http_slice path)
{
        buf *b = &c->pend;
        int rc = 0;
        rc |= buf_appendf(b, "%.*s ", (int)h->method.len, h->method.p);
        if (path.len == 0 || path.p[0] != '/')
                rc |= buf_putc(b, '/');
        rc |= buf_append(b, path.p, path.len);
        rc |= buf_appendf(b, " HTTP/1.%d\r\nHost: %.*s\r\n", h->minor, (int)authority.len,
                          authority.p);
        for (size_t i = 0; i < h->n_headers; i++) {
                const nx_http_header *x = &h->headers[i];
                if (nx_http_is_hop_by_hop(x->name) || nx_http_slice_ieq(x->name, "Host") ||
                    nx_httphead_connection_lists(h, x->name))
                        continue;
                rc |= buf_append(b, x->name.p, x->name.len);
                rc |= buf_append(b, ": ", 2);
                rc |= buf_append(b, x->value.p, x->value.len);
                rc |= buf_append(b, "\r\n", 2);
        }
        rc |= buf_append_str(b, "Connection: close\r\n\r\n");
        return rc ? -1 : 0;
}

static void http_absolute(nx_conn *c, const nx_httphead *h)
{
        c->method = M_HTTP;
        err_t e = ERR_INIT;
        nx_http_slice authority, path;
        if (nx_http_absolute_split(h->target, &authority, &path, &e) < 0) {
                set_raw_host(c, h->target.p, h->target.len);
                http_invalid(c, 400, "invalid request URI");
                return;
        }
        uint16_t port = 0;
        if (authority_parse(authority.p, authority.len, 80, c->host, sizeof(c->host), &port,
                            &e) < 0) {
                set_raw_host(c, authority.p, authority.len);
                http_invalid(c, 400, "invalid port");
                return;
        }
        c->port = port;
        net_reason r = net_policy_check(&c->p->pol, c->host, c->port);
        if (r != NET_REASON_OK) {
                deny_policy(c, r);
                return;
        }
        /* Raw relay of the body: only Content-Length framing is forwarded. A chunked body would
         * need re-framing once Transfer-Encoding (hop-by-hop) is removed — refused instead. */
        if (nx_httphead_get(h, "Transfer-Encoding", NULL)) {
                deny(c, NET_REASON_OTHER, 501, "chunked request bodies are not supported", 0);
                return;
        }
        uint64_t cl = 0;
        if (parse_content_length(h, &cl) < 0) {
                deny(c, NET_REASON_OTHER, 400, "invalid Content-Length", 0);
                return;
        }
        if (http_build_upstream(c, h, authority, path) < 0) {
                deny(c, NET_REASON_INVALID_DESTINATION, 431, "request head too large", 0);
                return;
        }
        size_t extra = c->in.len - h->head_len;
        if (extra > cl)
                extra = (size_t)cl;    /* a pipelined second request is dropped: one-shot */
        if (buf_append(&c->pend, c->in.data + h->head_len, extra) < 0) {
                deny(c, NET_REASON_INVALID_DESTINATION, 431, "request head too large", 0);
                return;
        }
        c->body_left = cl - extra;
        conn_decide(c);
}

static void http_head_complete(nx_conn *c, size_t end)
{
        nx_httphead *h = malloc(sizeof(*h));    /* ~3 KiB: keep it off the loop's stack */
        if (!h) {
                conn_close(c);
                return;
        }
        int status = 0;
        err_t e = ERR_INIT;
        c->method = M_HTTP;
        if (nx_httphead_parse(c->in.data, end, h, &status, &e) < 0) {
                free(h);
                http_invalid(c, status ? status : 400, status == 431 ? "request head too large"
                                                                   : "malformed request");
                return;
        }
        if (nx_http_slice_eq(h->method, "CONNECT"))
                http_connect(c, h);
        else if (h->target.len >= 7 && strncasecmp(h->target.p, "http://", 7) == 0)
                http_absolute(c, h);
        else if (h->target.len > 0 && h->target.p[0] != '/' &&
                 memmem(h->target.p, h->target.len, "://", 3))
                /* https:// etc.: TLS origins are reached with CONNECT, never re-originated */
                http_invalid(c, 400, "only http:// URIs are forwarded; use CONNECT");
        else
                http_invalid(c, 400, "not a proxy request");
        free(h);
}

/* ── SOCKS5 ──────────────────────────────────────────────────────────────────────────────── */

static void socks_step(nx_conn *c)
{
        err_t e = ERR_INIT;
        size_t used = 0;
        if (c->state == CS_SOCKS_GREET) {
                nx_socks5_result r = nx_socks5_parse_greeting((const uint8_t *)c->in.data,
                                                              c->in.len, &used, &e);
                if (r == NX_SOCKS5_NEED_MORE)
                        return;
                if (r == NX_SOCKS5_CLOSE) {
                        conn_close(c);
                        return;
                }
                if (r == NX_SOCKS5_REPLY_AND_CLOSE) {
                        /* only no-auth is served (RFC 1928 §3: X'FF' = no acceptable method) */
                        audit(c->p, "", 0, NULL, NET_REASON_OTHER, M_SOCKS5);
                        c->resp[0] = NX_SOCKS5_VERSION;
                        c->resp[1] = (char)0xff;
                        respond_and_close(c, 2);
                        return;
                }
                buf_consume(&c->in, used);
                char ok[2] = { NX_SOCKS5_VERSION, 0x00 };
                uv_buf_t b = uv_buf_init(ok, 2);
                if (uv_try_write((uv_stream_t *)&c->client, &b, 1) != 2) {
                        conn_close(c);  /* 2 bytes on a fresh socket cannot block */
                        return;
                }
                c->state = CS_SOCKS_REQ;
        }
        nx_socks5_request rq;
        uint8_t rep = 0;
        nx_socks5_result r = nx_socks5_parse_request((const uint8_t *)c->in.data, c->in.len,
                                                     &rq, &used, &rep, &e);
        if (r == NX_SOCKS5_NEED_MORE)
                return;
        if (r == NX_SOCKS5_CLOSE) {
                conn_close(c);
                return;
        }
        (void)str_copy(c->host, sizeof(c->host), rq.host);
        c->port = rq.port;
        if (r == NX_SOCKS5_REPLY_AND_CLOSE) {
                audit(c->p, c->host, c->port, NULL, NET_REASON_INVALID_DESTINATION, M_SOCKS5);
                socks_error(c, rep);
                return;
        }
        if (buf_append(&c->pend, c->in.data + used, c->in.len - used) < 0) {
                conn_close(c);
                return;
        }
        conn_decide(c);
}

/* ── head phase reading ──────────────────────────────────────────────────────────────────── */

static void on_client_read_head(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
        nx_conn *c = s->data;
        if (c->closing || nread == 0)
                return;
        if (nread < 0) {
                conn_close(c);  /* EOF or error before a complete request: nothing to decide */
                return;
        }
        if (c->state == CS_FIRST) {
                c->state = (uint8_t)b->base[0] == NX_SOCKS5_VERSION ? CS_SOCKS_GREET
                                                                    : CS_HTTP_HEAD;
                c->method = c->state == CS_SOCKS_GREET ? M_SOCKS5 : M_HTTP;
                arm(c, c->p->o.head_timeout_ms);
        }
        if (buf_append(&c->in, b->base, (size_t)nread) < 0) {
                if (c->state == CS_HTTP_HEAD) {
                        http_invalid(c, 431, "request head too large");
                } else {
                        audit(c->p, "", 0, NULL, NET_REASON_INVALID_DESTINATION, M_SOCKS5);
                        socks_error(c, NX_SOCKS5_REP_FAILURE);
                }
                return;
        }
        if (c->state == CS_SOCKS_GREET || c->state == CS_SOCKS_REQ) {
                socks_step(c);
                return;
        }
        size_t end = nx_httphead_end(c->in.data, c->in.len);
        if (end > 0)
                http_head_complete(c, end);
}

static void alloc_head(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
        nx_conn *c = h->data;
        (void)suggested;
        /* read at most one byte past the cap so an oversized head is detected, never stored */
        size_t room = c->in.max - c->in.len + 1;
        if (room > HEAD_BUF)
                room = HEAD_BUF;
        *b = uv_buf_init((char *)c->cbuf, (unsigned)room);
}

static void on_timer(uv_timer_t *t)
{
        nx_conn *c = t->data;
        if (c->closing)
                return;
        switch (c->state) {
        case CS_FIRST:
                conn_close(c);  /* §7.2: no first byte in time → close */
                return;
        case CS_HTTP_HEAD:
                /* slowloris: the whole head must arrive within head_timeout_ms */
                c->host[0] = '\0';
                deny(c, NET_REASON_OTHER, 408, "request head timeout", 0);
                return;
        case CS_SOCKS_GREET:
        case CS_SOCKS_REQ:
                audit(c->p, "", 0, NULL, NET_REASON_OTHER, M_SOCKS5);
                conn_close(c);
                return;
        case CS_RESOLVING:
                conn_gai_cancel(c);
                c->state = CS_RESPONDING;       /* a late on_resolved is ignored */
                deny(c, NET_REASON_DNS_DENIED, 403, "connection failed",
                     NX_SOCKS5_REP_HOST_UNREACHABLE);
                return;
        case CS_CONNECTING:
                c->state = CS_RESPONDING;       /* a late on_connected is ignored */
                close_handle(c, (uv_handle_t *)&c->up);
                deny(c, NET_REASON_OTHER, 502, "connection failed",
                     NX_SOCKS5_REP_HOST_UNREACHABLE);
                return;
        case CS_RELAY: {
                uint64_t now = uv_now(c->p->loop);
                uint64_t idle = c->p->o.idle_timeout_ms;
                if (now - c->last_activity >= idle) {
                        conn_close(c);
                        return;
                }
                arm(c, idle - (now - c->last_activity));
                return;
        }
        case CS_RESPONDING:
        case CS_CLOSED:
        default:
                conn_close(c);
                return;
        }
}

/* ── accept ──────────────────────────────────────────────────────────────────────────────── */

static void on_reject_closed(uv_handle_t *h)
{
        nx_proxy *p = h->data;
        free(h);
        p->handles--;
        proxy_maybe_finish(p);
}

static void reject_conn(nx_proxy *p, uv_stream_t *server)
{
        uv_tcp_t *t = malloc(sizeof(*t));
        if (!t)
                return;
        if (uv_tcp_init(p->loop, t) < 0) {
                free(t);
                return;
        }
        t->data = p;
        p->handles++;
        (void)uv_accept(server, (uv_stream_t *)t);
        uv_close((uv_handle_t *)t, on_reject_closed);
}

static void on_connection(uv_stream_t *server, int status)
{
        nx_proxy *p = server->data;
        if (status < 0 || p->closing)
                return;
        p->st.conns++;
        if (p->st.active >= p->o.max_conns) {
                p->st.rejected++;
                reject_conn(p, server);
                audit(p, "", 0, NULL, NET_REASON_OTHER, M_NONE);
                return;
        }
        nx_conn *c = calloc(1, sizeof(*c));
        if (!c) {
                reject_conn(p, server);
                return;
        }
        c->p = p;
        c->in = BUF_INIT(NX_PROXY_HEAD_MAX);
        c->pend = BUF_INIT(NX_PROXY_HEAD_MAX + 1024);
        c->cbuf = malloc(HEAD_BUF);
        if (!c->cbuf || uv_tcp_init(p->loop, &c->client) < 0) {
                free(c->cbuf);
                free(c);
                reject_conn(p, server);
                return;
        }
        c->client.data = c;
        c->refs++;
        c->next = p->conns;
        if (p->conns)
                p->conns->prev = c;
        p->conns = c;
        p->st.active++;
        uv_timer_init(p->loop, &c->timer);
        c->timer.data = c;
        c->refs++;
        if (uv_accept(server, (uv_stream_t *)&c->client) < 0) {
                conn_close(c);
                return;
        }
        uv_tcp_nodelay(&c->client, 1);
        c->state = CS_FIRST;
        arm(c, p->o.first_byte_timeout_ms);
        if (uv_read_start((uv_stream_t *)&c->client, alloc_head, on_client_read_head) < 0)
                conn_close(c);
}

/* ── proxy ───────────────────────────────────────────────────────────────────────────────── */

nx_proxy *nx_proxy_new(uv_loop_t *loop, const char *directive_id, const json_t *net_capability,
                       const nx_proxy_opts *opts, nx_proxy_audit_fn fn, void *ud, err_t *err)
{
        if (!loop) {
                err_set(err, "egress proxy: no loop");
                return NULL;
        }
        if (!directive_id || !wire_id_is_valid(directive_id)) {
                char q[80];
                const char *id = directive_id ? directive_id : "";
                err_set(err, "invalid directive ID: \"%s\"", allow_quote(id, strlen(id), q,
                                                                          sizeof(q)));
                return NULL;
        }
        nx_proxy *p = calloc(1, sizeof(*p));
        if (!p) {
                err_errno(err, ENOMEM, "egress proxy");
                return NULL;
        }
        if (net_policy_from_json(net_capability, &p->pol, err) < 0) {
                err_wrap(err, "create policy");
                free(p);
                return NULL;
        }
        (void)str_copy(p->directive_id, sizeof(p->directive_id), directive_id);
        if (opts)
                p->o = *opts;
        if (!p->o.first_byte_timeout_ms)
                p->o.first_byte_timeout_ms = NX_PROXY_FIRST_BYTE_TIMEOUT_MS;
        if (!p->o.head_timeout_ms)
                p->o.head_timeout_ms = NX_PROXY_HEAD_TIMEOUT_MS;
        if (!p->o.connect_timeout_ms)
                p->o.connect_timeout_ms = NX_PROXY_CONNECT_TIMEOUT_MS;
        if (!p->o.idle_timeout_ms)
                p->o.idle_timeout_ms = NX_PROXY_IDLE_TIMEOUT_MS;
        if (!p->o.max_conns)
                p->o.max_conns = NX_PROXY_MAX_CONNS;
        p->loop = loop;
        p->fn = fn;
        p->ud = ud;
        load_local_addresses(p);
        uv_timer_init(loop, &p->life);
        p->life.data = p;
        p->handles = 1;
        return p;
}

static int listener_init(nx_proxy *p, err_t *err)
{
        if (p->has_listener || p->closing)
                return err_set(err, "egress proxy: already listening or closing");
        int r = uv_tcp_init(p->loop, &p->listener);
        if (r < 0)
                return err_setc(err, ERR_SYSTEM, "egress proxy: tcp init: %s", uv_strerror(r));
        p->listener.data = p;
        p->has_listener = true;
        p->handles++;
        return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
        nx_proxy *p = h->data;
        p->handles--;
        proxy_maybe_finish(p);
}

static void listener_drop(nx_proxy *p)
{
        if (p->has_listener && !uv_is_closing((uv_handle_t *)&p->listener))
                uv_close((uv_handle_t *)&p->listener, on_listener_closed);
}

int nx_proxy_adopt_listener(nx_proxy *p, int listen_fd, err_t *err)
{
        if (listen_fd < 0)
                return err_set(err, "egress proxy: invalid listener fd");
        if (listener_init(p, err) < 0) {
                close(listen_fd);
                return -1;
        }
        (void)fcntl(listen_fd, F_SETFD, FD_CLOEXEC);
        int r = uv_tcp_open(&p->listener, listen_fd);
        if (r < 0) {
                close(listen_fd);
                listener_drop(p);
                return err_setc(err, ERR_SYSTEM, "egress proxy: adopt listener: %s",
                                uv_strerror(r));
        }
        r = uv_listen((uv_stream_t *)&p->listener, LISTEN_BACKLOG, on_connection);
        if (r < 0) {
                listener_drop(p);       /* closes the fd too */
                return err_setc(err, ERR_SYSTEM, "egress proxy: listen: %s", uv_strerror(r));
        }
        return 0;
}

int nx_proxy_listen_tcp(nx_proxy *p, const char *host, uint16_t port, uint16_t *bound,
                        err_t *err)
{
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof(ss));
        if (!host)
                host = "127.0.0.1";
        if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
            uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)
                return err_set(err, "egress proxy: listen address \"%s\" is not an IP", host);
        if (listener_init(p, err) < 0)
                return -1;
        int r = uv_tcp_bind(&p->listener, (const struct sockaddr *)&ss, 0);
        if (r == 0)
                r = uv_listen((uv_stream_t *)&p->listener, LISTEN_BACKLOG, on_connection);
        if (r < 0) {
                listener_drop(p);
                return err_setc(err, ERR_SYSTEM, "egress proxy: listen on %s:%u: %s", host,
                                (unsigned)port, uv_strerror(r));
        }
        if (bound) {
                struct sockaddr_storage b;
                int bl = sizeof(b);
                memset(&b, 0, sizeof(b));
                if (uv_tcp_getsockname(&p->listener, (struct sockaddr *)&b, &bl) == 0)
                        *bound = ntohs(b.ss_family == AF_INET6
                                       ? ((struct sockaddr_in6 *)&b)->sin6_port
                                       : ((struct sockaddr_in *)&b)->sin_port);
        }
        return 0;
}

void nx_proxy_stats_get(const nx_proxy *p, nx_proxy_stats *out)
{
        memset(out, 0, sizeof(*out));
        if (p)
                *out = p->st;
}

static void proxy_maybe_finish(nx_proxy *p)
{
        if (!p->closing || p->handles > 0 || p->conns)
                return;
        void (*done)(void *) = p->done;
        void *ud = p->done_ud;
        net_policy_free(&p->pol);
        free(p);
        if (done)
                done(ud);
}

static void on_life_closed(uv_handle_t *h)
{
        nx_proxy *p = h->data;
        p->handles--;
        proxy_maybe_finish(p);
}

void nx_proxy_close(nx_proxy *p, void (*done)(void *ud), void *ud)
{
        if (!p || p->closing)
                return;
        p->closing = true;
        p->done = done;
        p->done_ud = ud;
        listener_drop(p);
        for (nx_conn *c = p->conns, *next; c; c = next) {
                next = c->next;
                conn_close(c);
        }
        audit_summary(p);
        uv_close((uv_handle_t *)&p->life, on_life_closed);
}
