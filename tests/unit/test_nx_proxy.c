/* tests/unit/test_nx_proxy.c — proxy/proxy: the egress proxy end to end on loopback (nexus §7,
 * DESIGN D14; vectors §7.13 rows 23-33 and §12 #187-204 as they apply to an in-loop proxy).
 *
 * The proxy and the test servers (an echo server, a one-shot HTTP origin) run on a libuv loop
 * in a thread; the test drives them with blocking sockets. The resolver and dial seams of
 * nx_proxy_opts map test names to addresses: the classifier judges what the "resolver" said,
 * then the dial seam redirects the checked public address to a loopback test server. */
#include "testutil.h"
#include "proxy/proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/egress_report.h"
#include "core/json.h"
#include "core/str.h"
#include "proxy/socks5.h"

#define PUBLIC_IP "93.184.216.34"
#define NODE_IP "11.22.33.98"     /* put on lo by the node-address test only */
#define MAX_RECORDS 1024
#define WAIT_MS 5000

/* ── harness: a loop thread ──────────────────────────────────────────────────────────────── */

typedef struct harness {
        uv_loop_t loop;
        uv_async_t wake;
        pthread_t thr;
        pthread_mutex_t mu;
        pthread_cond_t cv;
        void (*cmd)(void *);
        void *cmd_arg;
        bool cmd_done;
        bool stop;

        nx_proxy *proxy;
        uint16_t proxy_port;
        bool closed;
        json_t *records[MAX_RECORDS];
        size_t n_records;
        nx_egress_report *report;

        uv_tcp_t echo;
        uint16_t echo_port;
        uv_tcp_t origin;
        uint16_t origin_port;
        char origin_head[8192];         /* what the origin received */
        size_t origin_len;
        uint16_t refused_port;
        int resolve_calls;
        char dialled_checked[64];       /* the address the proxy checked and asked to dial */
} harness;

static harness H;

static void on_wake(uv_async_t *a)
{
        (void)a;
        pthread_mutex_lock(&H.mu);
        void (*fn)(void *) = H.cmd;
        void *arg = H.cmd_arg;
        H.cmd = NULL;
        pthread_mutex_unlock(&H.mu);
        if (fn)
                fn(arg);
        pthread_mutex_lock(&H.mu);
        if (fn) {
                H.cmd_done = true;
                pthread_cond_broadcast(&H.cv);
        }
        bool stop = H.stop;
        pthread_mutex_unlock(&H.mu);
        if (stop)
                uv_stop(&H.loop);
}

/* Runs fn(arg) on the loop thread and waits for it. */
static void on_loop(void (*fn)(void *), void *arg)
{
        pthread_mutex_lock(&H.mu);
        H.cmd = fn;
        H.cmd_arg = arg;
        H.cmd_done = false;
        uv_async_send(&H.wake);
        while (!H.cmd_done)
                pthread_cond_wait(&H.cv, &H.mu);
        pthread_mutex_unlock(&H.mu);
}

static void *loop_main(void *arg)
{
        (void)arg;
        uv_run(&H.loop, UV_RUN_DEFAULT);
        return NULL;
}

static void audit_cb(void *ud, json_t *rec)
{
        (void)ud;
        pthread_mutex_lock(&H.mu);
        if (H.n_records < MAX_RECORDS)
                H.records[H.n_records++] = json_deep_copy(rec);
        if (H.report)
                nx_egress_report_audit_cb(H.report, rec);
        pthread_cond_broadcast(&H.cv);
        pthread_mutex_unlock(&H.mu);
}

/* Waits until at least n audit records exist; returns how many there are. */
static size_t wait_records(size_t n)
{
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += WAIT_MS / 1000;
        pthread_mutex_lock(&H.mu);
        while (H.n_records < n)
                if (pthread_cond_timedwait(&H.cv, &H.mu, &dl) != 0)
                        break;
        size_t got = H.n_records;
        pthread_mutex_unlock(&H.mu);
        return got;
}

static json_t *record(size_t i)
{
        assert_true(wait_records(i + 1) > i);
        return H.records[i];
}

static const char *rs(json_t *r, const char *k)
{
        return json_string_value(json_object_get(r, k));
}

static int64_t ri(json_t *r, const char *k)
{
        return json_integer_value(json_object_get(r, k));
}

/* ── test servers on the loop ────────────────────────────────────────────────────────────── */

typedef struct srv_conn {
        uv_tcp_t t;
        char buf[65536];
        uv_write_t w;
        bool origin;
        bool answered;
} srv_conn;

static void srv_closed(uv_handle_t *h)
{
        free(h->data);
}

static void srv_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
        srv_conn *c = h->data;
        (void)sz;
        *b = uv_buf_init(c->buf, sizeof(c->buf));
}

static void srv_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);

static void echo_written(uv_write_t *w, int status)
{
        srv_conn *c = w->data;
        if (status < 0) {
                if (!uv_is_closing((uv_handle_t *)&c->t))
                        uv_close((uv_handle_t *)&c->t, srv_closed);
                return;
        }
        uv_read_start((uv_stream_t *)&c->t, srv_alloc, srv_read);
}

static void origin_answered(uv_write_t *w, int status)
{
        srv_conn *c = w->data;
        (void)status;
        uv_close((uv_handle_t *)&c->t, srv_closed);
}

static void srv_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
        srv_conn *c = s->data;
        if (n == 0)
                return;
        if (n < 0) {
                if (!uv_is_closing((uv_handle_t *)s))
                        uv_close((uv_handle_t *)s, srv_closed);
                return;
        }
        if (c->origin) {
                pthread_mutex_lock(&H.mu);
                size_t room = sizeof(H.origin_head) - 1 - H.origin_len;
                size_t k = (size_t)n < room ? (size_t)n : room;
                memcpy(H.origin_head + H.origin_len, b->base, k);
                H.origin_len += k;
                H.origin_head[H.origin_len] = '\0';
                bool ended = strstr(H.origin_head, "\r\n\r\n") != NULL;
                pthread_mutex_unlock(&H.mu);
                if (ended && !c->answered) {
                        c->answered = true;
                        static char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                                             "Connection: close\r\n\r\nhello";
                        uv_buf_t r = uv_buf_init(resp, sizeof(resp) - 1);
                        c->w.data = c;
                        uv_read_stop(s);
                        uv_write(&c->w, s, &r, 1, origin_answered);
                }
                return;
        }
        uv_buf_t r = uv_buf_init(b->base, (unsigned)n);
        c->w.data = c;
        uv_read_stop(s);
        uv_write(&c->w, s, &r, 1, echo_written);
}

static void srv_accept(uv_stream_t *server, int status)
{
        if (status < 0)
                return;
        srv_conn *c = calloc(1, sizeof(*c));
        uv_tcp_init(&H.loop, &c->t);
        c->t.data = c;
        c->origin = server == (uv_stream_t *)&H.origin;
        if (uv_accept(server, (uv_stream_t *)&c->t) < 0) {
                uv_close((uv_handle_t *)&c->t, srv_closed);
                return;
        }
        uv_read_start((uv_stream_t *)&c->t, srv_alloc, srv_read);
}

static uint16_t srv_listen(uv_tcp_t *t)
{
        struct sockaddr_in a;
        uv_ip4_addr("127.0.0.1", 0, &a);
        uv_tcp_init(&H.loop, t);
        assert_int_equal(uv_tcp_bind(t, (struct sockaddr *)&a, 0), 0);
        assert_int_equal(uv_listen((uv_stream_t *)t, 64, srv_accept), 0);
        struct sockaddr_in b;
        int bl = sizeof(b);
        uv_tcp_getsockname(t, (struct sockaddr *)&b, &bl);
        return ntohs(b.sin_port);
}

/* ── seams ───────────────────────────────────────────────────────────────────────────────── */

static void put(struct sockaddr_storage *ss, const char *ip)
{
        memset(ss, 0, sizeof(*ss));
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
                s4->sin_family = AF_INET;
        } else {
                assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
                s6->sin6_family = AF_INET6;
        }
}

static int fake_resolve(void *ud, const char *host, struct sockaddr_storage *a, size_t max,
                        size_t *n)
{
        (void)ud;
        (void)max;
        H.resolve_calls++;
        static const struct { const char *name; const char *ips[3]; } map[] = {
                { "allowed.test", { PUBLIC_IP } },
                { "registry.npmjs.org", { PUBLIC_IP } },
                { "example.com", { PUBLIC_IP } },
                { "evil.test", { "127.0.0.1" } },
                { "meta.test", { "169.254.169.254" } },
                { "ten.test", { "10.0.0.1" } },
                { "mapped.test", { "::ffff:127.0.0.1" } },
                { "nat64.test", { "64:ff9b::7f00:1" } },
                { "sixtofour.test", { "2002:7f00:1::1" } },
                { "unspec.test", { "::" } },
                { "mixed.test", { "10.0.0.1", "::1", PUBLIC_IP } },
                { "private.test", { "10.0.0.1", "192.168.1.1" } },
                { "self.test", { NODE_IP } },
        };
        for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
                if (strcmp(map[i].name, host) != 0)
                        continue;
                *n = 0;
                for (size_t k = 0; k < 3 && map[i].ips[k]; k++)
                        put(&a[(*n)++], map[i].ips[k]);
                return 0;
        }
        return -1;      /* NXDOMAIN */
}

/* The checked public address → a loopback test server chosen by port: 443 echo, 80 origin,
 * 444 a closed port (connection refused). Anything else is a test failure. */
static int fake_dial(void *ud, const struct sockaddr *checked, struct sockaddr_storage *dial,
                     socklen_t *len)
{
        (void)ud;
        char ip[64];
        uint16_t port;
        if (checked->sa_family == AF_INET) {
                const struct sockaddr_in *s = (const struct sockaddr_in *)checked;
                inet_ntop(AF_INET, &s->sin_addr, ip, sizeof(ip));
                port = ntohs(s->sin_port);
        } else {
                const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)checked;
                inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof(ip));
                port = ntohs(s->sin6_port);
        }
        int w = snprintf(H.dialled_checked, sizeof(H.dialled_checked), "%s:%u", ip, port);
        assert_true(w > 0 && (size_t)w < sizeof(H.dialled_checked));
        struct sockaddr_in *d = (struct sockaddr_in *)dial;
        memset(dial, 0, sizeof(*dial));
        uint16_t to = port == 443 ? H.echo_port : port == 80 ? H.origin_port : H.refused_port;
        uv_ip4_addr("127.0.0.1", to, d);
        *len = sizeof(*d);
        return 0;
}

/* ── proxy lifecycle ─────────────────────────────────────────────────────────────────────── */

typedef struct start_args {
        const char *cap;        /* JSON text or NULL (absent) */
        nx_proxy_opts opts;
        bool real_seams;        /* no seams at all */
} start_args;

static void do_start(void *arg)
{
        start_args *a = arg;
        err_t e = ERR_INIT;
        json_t *cap = NULL;
        if (a->cap)
                cap = json_loads(a->cap, 0, NULL);
        H.proxy = nx_proxy_new(&H.loop, "dir-123", cap, &a->opts, audit_cb, NULL, &e);
        json_decref(cap);
        if (H.proxy)
                nx_proxy_listen_tcp(H.proxy, "127.0.0.1", 0, &H.proxy_port, &e);
}

static void on_proxy_done(void *ud)
{
        (void)ud;
        pthread_mutex_lock(&H.mu);
        H.closed = true;
        pthread_cond_broadcast(&H.cv);
        pthread_mutex_unlock(&H.mu);
}

static void do_close(void *arg)
{
        (void)arg;
        if (H.proxy)
                nx_proxy_close(H.proxy, on_proxy_done, NULL);
}

static void wait_closed(void)
{
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += WAIT_MS / 1000;
        pthread_mutex_lock(&H.mu);
        while (!H.closed)
                if (pthread_cond_timedwait(&H.cv, &H.mu, &dl) != 0)
                        break;
        bool c = H.closed;
        pthread_mutex_unlock(&H.mu);
        assert_true(c);
}

static void close_proxy(void)
{
        if (!H.proxy)
                return;
        on_loop(do_close, NULL);
        wait_closed();
        H.proxy = NULL;
}

static nx_proxy_stats stats_tmp;
static void do_stats(void *arg)
{
        (void)arg;
        nx_proxy_stats_get(H.proxy, &stats_tmp);
}

static nx_proxy_stats get_stats(void)
{
        on_loop(do_stats, NULL);
        return stats_tmp;
}

static void start_opts(const char *cap, const nx_proxy_opts *o)
{
        start_args a = { .cap = cap };
        if (o)
                a.opts = *o;
        if (!a.opts.resolve) {
                a.opts.resolve = fake_resolve;
                a.opts.dial = fake_dial;
        }
        a.opts.no_summary = true;
        on_loop(do_start, &a);
        assert_non_null(H.proxy);
        assert_true(H.proxy_port > 0);
}

static void start(const char *cap)
{
        start_opts(cap, NULL);
}

#define CAP_NULL NULL
#define CAP_NONE "{\"mode\":\"none\"}"
#define CAP_UNRESTRICTED "{\"mode\":\"unrestricted\"}"
#define CAP_ALLOWED "{\"mode\":\"allowlist\",\"allow\":[\"allowed.test:443\",\"allowed.test:80\"," \
        "\"evil.test:443\",\"meta.test:443\",\"ten.test:443\",\"mapped.test:443\"," \
        "\"nat64.test:443\",\"sixtofour.test:443\",\"unspec.test:443\",\"mixed.test:443\"," \
        "\"private.test:443\",\"nx.test:443\",\"allowed.test:444\",\"*.npmjs.org:443\"," \
        "\"github.com:443\"]}"

static int setup(void **state)
{
        (void)state;
        memset(&H, 0, sizeof(H));
        signal(SIGPIPE, SIG_IGN);       /* as nexusd does: libuv writes with write(2) */
        pthread_mutex_init(&H.mu, NULL);
        pthread_cond_init(&H.cv, NULL);
        uv_loop_init(&H.loop);
        uv_async_init(&H.loop, &H.wake, on_wake);
        H.echo_port = srv_listen(&H.echo);
        H.origin_port = srv_listen(&H.origin);
        /* a port nobody listens on */
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = { .sin_family = AF_INET };
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        bind(fd, (struct sockaddr *)&a, sizeof(a));
        socklen_t al = sizeof(a);
        getsockname(fd, (struct sockaddr *)&a, &al);
        H.refused_port = ntohs(a.sin_port);
        close(fd);
        pthread_create(&H.thr, NULL, loop_main, NULL);
        return 0;
}

static void walk_close(uv_handle_t *h, void *arg)
{
        (void)arg;
        if (!uv_is_closing(h))
                uv_close(h, h->data ? srv_closed : NULL);  /* only server conns have data */
}

static void do_stop(void *arg)
{
        (void)arg;
        H.stop = true;
}

static int teardown(void **state)
{
        (void)state;
        close_proxy();
        on_loop(do_stop, NULL);
        pthread_join(H.thr, NULL);
        uv_walk(&H.loop, walk_close, NULL);
        uv_run(&H.loop, UV_RUN_DEFAULT);
        assert_int_equal(uv_loop_close(&H.loop), 0);
        for (size_t i = 0; i < H.n_records; i++)
                json_decref(H.records[i]);
        nx_egress_report_free(H.report);
        pthread_mutex_destroy(&H.mu);
        pthread_cond_destroy(&H.cv);
        return 0;
}

/* ── client helpers (blocking sockets with timeouts) ─────────────────────────────────────── */

static int dial_proxy(void)
{
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(H.proxy_port) };
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        struct timeval tv = { WAIT_MS / 1000, 0 };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        return fd;
}

static void send_all(int fd, const void *p, size_t n)
{
        const char *c = p;
        while (n > 0) {
                ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
                assert_true(w > 0);
                c += w;
                n -= (size_t)w;
        }
}

static void send_str(int fd, const char *s)
{
        send_all(fd, s, strlen(s));
}

/* Reads until want bytes, EOF or timeout. Returns bytes read (NUL-terminated in out). */
static size_t recv_n(int fd, char *out, size_t cap, size_t want)
{
        size_t n = 0;
        while (n < want && n < cap - 1) {
                ssize_t r = recv(fd, out + n, cap - 1 - n, 0);
                if (r <= 0)
                        break;
                n += (size_t)r;
        }
        out[n] = '\0';
        return n;
}

/* Reads until EOF (or timeout). */
static size_t recv_all(int fd, char *out, size_t cap)
{
        return recv_n(fd, out, cap, cap);
}

/* Reads an HTTP response head (until CRLFCRLF). */
static size_t recv_head(int fd, char *out, size_t cap)
{
        size_t n = 0;
        out[0] = '\0';
        while (n < cap - 1 && !strstr(out, "\r\n\r\n")) {
                ssize_t r = recv(fd, out + n, 1, 0);
                if (r <= 0)
                        break;
                n += (size_t)r;
                out[n] = '\0';
        }
        return n;
}

static bool peer_closed(int fd)
{
        char c;
        ssize_t r = recv(fd, &c, 1, 0);
        return r == 0 || (r < 0 && errno == ECONNRESET);
}

static void echo_roundtrip(int fd, const char *msg)
{
        char buf[256];
        send_str(fd, msg);
        assert_int_equal(recv_n(fd, buf, sizeof(buf), strlen(msg)), strlen(msg));
        assert_string_equal(buf, msg);
}

/* The 3-digit status code of "HTTP/1.x NNN ...", 0 if there is none. */
static int status_of(const char *resp)
{
        if (strncmp(resp, "HTTP/1.", 7) != 0 || strlen(resp) < 12)
                return 0;
        int64_t v = 0;
        if (str_to_int64n(resp + 9, 3, 100, 599, &v) < 0)
                return 0;
        return (int)v;
}

/* One CONNECT: returns the status line's code and leaves the fd open in *fdp (or closes it). */
static int http_connect(const char *target, const char *extra_headers, int *fdp)
{
        int fd = dial_proxy();
        char req[1024];
        snprintf(req, sizeof(req), "CONNECT %s HTTP/1.1\r\n%s\r\n", target,
                 extra_headers ? extra_headers : "");
        send_str(fd, req);
        char head[2048];
        recv_head(fd, head, sizeof(head));
        int code = status_of(head);
        if (fdp)
                *fdp = fd;
        else
                close(fd);
        return code;
}

static void assert_deny(size_t i, const char *reason, const char *method)
{
        json_t *r = record(i);
        assert_string_equal(rs(r, "decision"), "deny");
        assert_string_equal(rs(r, "reason_code"), reason);
        if (method)
                assert_string_equal(rs(r, "method"), method);
}

/* ── SOCKS5 client ───────────────────────────────────────────────────────────────────────── */

static int socks_greet(void)
{
        int fd = dial_proxy();
        const uint8_t g[] = { 5, 1, 0 };
        send_all(fd, g, sizeof(g));
        char r[8];
        assert_int_equal(recv_n(fd, r, sizeof(r), 2), 2);
        assert_int_equal(r[0], 5);
        assert_int_equal(r[1], 0);
        return fd;
}

static int socks_domain(int fd, uint8_t cmd, const char *host, uint16_t port)
{
        uint8_t b[300] = { 5, cmd, 0, 3 };
        size_t n = strlen(host);
        b[4] = (uint8_t)n;
        memcpy(b + 5, host, n);
        b[5 + n] = (uint8_t)(port >> 8);
        b[6 + n] = (uint8_t)port;
        send_all(fd, b, 7 + n);
        char r[16];
        if (recv_n(fd, r, sizeof(r), 10) != 10)
                return -1;
        assert_int_equal(r[0], 5);
        return (uint8_t)r[1];
}

static int socks_ipv4(int fd, const char *ip, uint16_t port)
{
        uint8_t b[10] = { 5, 1, 0, 1 };
        inet_pton(AF_INET, ip, b + 4);
        b[8] = (uint8_t)(port >> 8);
        b[9] = (uint8_t)port;
        send_all(fd, b, sizeof(b));
        char r[16];
        if (recv_n(fd, r, sizeof(r), 10) != 10)
                return -1;
        return (uint8_t)r[1];
}

static int socks_ipv6(int fd, const char *ip, uint16_t port)
{
        uint8_t b[22] = { 5, 1, 0, 4 };
        inet_pton(AF_INET6, ip, b + 4);
        b[20] = (uint8_t)(port >> 8);
        b[21] = (uint8_t)port;
        send_all(fd, b, sizeof(b));
        char r[16];
        if (recv_n(fd, r, sizeof(r), 10) != 10)
                return -1;
        return (uint8_t)r[1];
}

/* ═══ tests: lifecycle ═══════════════════════════════════════════════════════════════════ */

/* spec nexus §7.13 row 16, §12 #189 */
static void test_new_invalid_allowlist_fails(void **state)
{
        (void)state;
        err_t e = ERR_INIT;
        json_t *cap = json_loads("{\"mode\":\"allowlist\",\"allow\":[\"invalid-entry\"]}", 0,
                                 NULL);
        assert_null(nx_proxy_new(&H.loop, "dir-123", cap, NULL, NULL, NULL, &e));
        assert_non_null(strstr(e.msg, "create policy"));
        assert_non_null(strstr(e.msg, "allow[0]"));
        json_decref(cap);
}

/* spec nexus §12 #190, #191 */
static void test_new_invalid_directive_ids_fail(void **state)
{
        (void)state;
        char long_id[201];
        memset(long_id, 'a', 200);
        long_id[200] = '\0';
        const char *bad[] = { "../etc/passwd", "foo/bar", "", ".hidden", "hello world", long_id };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                err_t e = ERR_INIT;
                assert_null(nx_proxy_new(&H.loop, bad[i], NULL, NULL, NULL, NULL, &e));
                assert_non_null(strstr(e.msg, "invalid directive ID"));
        }
}

static int done_calls;
static void count_done(void *ud)
{
        (void)ud;
        done_calls++;
}

/* both calls before the loop runs the close: the second is ignored (p is freed only later) */
static void do_close_twice(void *arg)
{
        (void)arg;
        nx_proxy_close(H.proxy, on_proxy_done, NULL);
        nx_proxy_close(H.proxy, count_done, NULL);
}

/* spec nexus §12 #187, #188: accepts connections; stop twice is harmless */
static void test_listen_accepts_and_close_twice_harmless(void **state)
{
        (void)state;
        start(CAP_NONE);
        int fd = dial_proxy();
        close(fd);
        on_loop(do_close_twice, NULL);
        wait_closed();
        H.proxy = NULL;
        assert_int_equal(done_calls, 0);
        int fd2 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(H.proxy_port) };
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_not_equal(connect(fd2, (struct sockaddr *)&a, sizeof(a)), 0);
        close(fd2);
}

static int adopt_fd;
static void do_adopt(void *arg)
{
        (void)arg;
        err_t e = ERR_INIT;
        nx_proxy_opts o = { .resolve = fake_resolve, .dial = fake_dial, .no_summary = true };
        json_t *cap = json_loads(CAP_ALLOWED, 0, NULL);
        H.proxy = nx_proxy_new(&H.loop, "dir-123", cap, &o, audit_cb, NULL, &e);
        json_decref(cap);
        assert_int_equal(nx_proxy_adopt_listener(H.proxy, adopt_fd, &e), 0);
}

static void test_adopt_listener_serves(void **state)
{
        (void)state;
        int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = { .sin_family = AF_INET };
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(listen(lfd, 16), 0);
        socklen_t al = sizeof(a);
        getsockname(lfd, (struct sockaddr *)&a, &al);
        H.proxy_port = ntohs(a.sin_port);
        adopt_fd = lfd;
        on_loop(do_adopt, NULL);
        int fd = -1;
        assert_int_equal(http_connect("allowed.test:443", NULL, &fd), 200);
        echo_roundtrip(fd, "adopted");
        close(fd);
}

static void do_summary_start(void *arg)
{
        (void)arg;
        err_t e = ERR_INIT;
        nx_proxy_opts o = { .resolve = fake_resolve, .dial = fake_dial };
        H.proxy = nx_proxy_new(&H.loop, "dir-123", NULL, &o, audit_cb, NULL, &e);
        nx_proxy_listen_tcp(H.proxy, "127.0.0.1", 0, &H.proxy_port, &e);
}

static void test_close_emits_summary_record(void **state)
{
        (void)state;
        on_loop(do_summary_start, NULL);
        assert_int_equal(http_connect("example.com:443", NULL, NULL), 403);
        wait_records(1);
        close_proxy();
        json_t *s = record(1);
        assert_string_equal(rs(s, "type"), "summary");
        assert_int_equal(ri(s, "connections"), 1);
        assert_int_equal(ri(s, "denied"), 1);
        assert_null(json_object_get(s, "decision"));
}

/* ═══ tests: HTTP CONNECT ════════════════════════════════════════════════════════════════ */

/* spec nexus §7.13 row 23 */
static void test_connect_capability_null_403(void **state)
{
        (void)state;
        start(CAP_NULL);
        int fd = dial_proxy();
        send_str(fd, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
        char resp[2048];
        recv_all(fd, resp, sizeof(resp));
        close(fd);
        assert_true(strncmp(resp, "HTTP/1.1 403 ", 13) == 0);
        assert_non_null(strstr(resp, "X-Proxy-Error: NET_MODE_NONE\r\n"));
        assert_non_null(strstr(resp, "X-Content-Type-Options: nosniff\r\n"));
        assert_non_null(strstr(resp, "Content-Type: text/plain; charset=utf-8\r\n"));
        assert_non_null(strstr(resp, "\r\n\r\negress denied: NET_MODE_NONE\n"));
        assert_deny(0, "NET_MODE_NONE", "CONNECT");
}

/* spec nexus §7.13 row 14 */
static void test_connect_mode_none_403(void **state)
{
        (void)state;
        start(CAP_NONE);
        assert_int_equal(http_connect("example.com:443", NULL, NULL), 403);
        assert_deny(0, "NET_MODE_NONE", "CONNECT");
}

/* spec nexus §7.13 rows 24, 12 */
static void test_connect_not_in_allowlist_403(void **state)
{
        (void)state;
        start(CAP_ALLOWED);
        assert_int_equal(http_connect("evil.com:443", NULL, NULL), 403);
        assert_deny(0, "NOT_IN_ALLOWLIST", "CONNECT");
        assert_string_equal(rs(record(0), "dest_host"), "evil.com");
        assert_int_equal(H.resolve_calls, 0);   /* denied before any lookup */
}

/* spec nexus §7.13 row 9: a port mismatch is NOT_IN_ALLOWLIST; issue: port 22 not allowed */
static void test_connect_port_not_allowed_is_not_in_allowlist(void **state)
{
        (void)state;
        start(CAP_ALLOWED);
        assert_int_equal(http_connect("allowed.test:22", NULL, NULL), 403);
        assert_deny(0, "NOT_IN_ALLOWLIST", "CONNECT");
        assert_int_equal(ri(record(0), "dest_port"), 22);
}

/* spec nexus §7.13 row 22 */
static void test_connect_unknown_mode_internal_error(void **state)
{
        (void)state;
        start("{\"mode\":\"full\"}");
        assert_int_equal(http_connect("example.com:443", NULL, NULL), 403);
        assert_deny(0, "INTERNAL_ERROR", "CONNECT");
}

/* spec nexus §7.13 rows 8, 27 (CONNECT flavour); §12 #200 record fields */
static void test_connect_allowed_relays_and_audits(void **state)
{
        (void)state;
        start(CAP_ALLOWED);
        int fd = -1;
        assert_int_equal(http_connect("allowed.test:443", "Host: allowed.test:443\r\n", &fd),
                         200);
        echo_roundtrip(fd, "ping through the tunnel");
        close(fd);
        json_t *r = record(0);
        assert_string_equal(rs(r, "decision"), "allow");
        assert_string_equal(rs(r, "reason_code"), "OK");
        assert_string_equal(rs(r, "method"), "CONNECT");
        assert_string_equal(rs(r, "dest_host"), "allowed.test");
        assert_int_equal(ri(r, "dest_port"), 443);
        assert_string_equal(rs(r, "resolved_ip"), PUBLIC_IP);
        assert_string_equal(rs(r, "directive_id"), "dir-123");
        assert_true(strlen(rs(r, "ts")) > 0);
        assert_string_equal(H.dialled_checked, PUBLIC_IP ":443");
}

static void test_connect_response_is_exact(void **state)
{
        (void)state;
        start(CAP_ALLOWED);
        int fd = dial_proxy();
        send_str(fd, "CONNECT allowed.test:443 HTTP/1.1\r\n\r\n");
        const char *want = "HTTP/1.1 200 Connection Established\r\n\r\n";
        char buf[128];
        assert_int_equal(recv_n(fd, buf, sizeof(buf), strlen(want)), strlen(want));
        assert_string_equal(buf, want);
        close(fd);
}

/* pipelined bytes after the CONNECT head are forwarded once the upstream connects */
static void test_connect_pipelined_bytes_forwarded(void **state)
{
        (void)state;
        start(CAP_ALLOWED);
        int fd = dial_proxy();
        send_str(fd, "CONNECT allowed.test:443 HTTP/1.1\r\n\r\nEARLY");
        char head[256];
        recv_head(fd, head, sizeof(head));
        assert_true(strncmp(head, "HTTP/1.1 200", 12) == 0);
        char buf[16];
        assert_int_equal(recv_n(fd, buf, sizeof(buf), 5), 5);
        assert_string_equal(buf, "EARLY");
        close(fd);
}

/* a second CONNECT inside a tunnel is just bytes for the destination (chained CONNECT) */
static void test_connect_inside_tunnel_is_opaque(void **state)
{
        (void)state;
        start(CAP_ALLOWED);
        int fd = -1;
        assert_int_equal(http_connect("allowed.test:443", NULL, &fd), 200);
        echo_roundtrip(fd, "CONNECT evil.test:443 HTTP/1.1\r\n\r\n");
        close(fd);
        assert_int_equal(wait_records(1), 1);
        assert_int_equal(H.n_records, 1);
}

/* spec nexus §7.13 row 10 / 11 through the proxy (wildcard) */
static void test_connect_wildcard_subdomain_allowed_apex_denied(void **state)
{
        (void)state;
        start(CAP_ALLOWED);
        int fd = -1;
        assert_int_equal(http_connect("registry.npmjs.org:443", NULL, &fd), 200);
        close(fd);
        assert_int_equal(http_connect("npmjs.org:443", NULL, NULL), 403);
        assert_string_equal(rs(record(0), "decision"), "allow");
        assert_deny(1, "NOT_IN_ALLOWLIST", "CONNECT");
}

/* spec nexus §7.13 row 15 */
static void test_connect_unrestricted_public_name_allowed(void **state)
{
        (void)state;
        start(CAP_UNRESTRICTED);
        int fd = -1;
        assert_int_equal(http_connect("example.com:443", NULL, &fd), 200);
        echo_roundtrip(fd, "x");
        close(fd);
        assert_string_equal(rs(record(0), "reason_code"), "OK");
}

/* Runs `ip addr VERB NODE_IP/32 dev lo`; returns its exit status, or -1 when it cannot run. */
static int ip_addr_lo(const char *verb)
{
        char w[7][32];
        const char *words[] = { "ip", "addr", verb, NODE_IP "/32", "dev", "lo" };
        char *argv[7];
        for (size_t i = 0; i < 6; i++) {
                str_copy(w[i], sizeof(w[i]), words[i]);
                argv[i] = w[i];
        }
        argv[6] = NULL;
        pid_t pid;
        if (posix_spawnp(&pid, "ip", NULL, NULL, argv, environ) != 0)
                return -1;
        int st = 0;
        if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
                return -1;
        return WEXITSTATUS(st);
}

/* Security review L2: lookups beyond NX_PROXY_DNS_INFLIGHT per proxy wait in a queue that
 * drains as lookups finish (the real resolver: "localhost" comes from /etc/hosts, answers
 * loopback only, so each is denied DNS_DENIED quickly). A stalled queue would leave the
 * waiting ones to the 10 s connect timeout, which answers differently. */
static void test_lookups_beyond_the_cap_are_queued_and_all_answered(void **state)
{
        (void)state;
        start_args a = { .cap = CAP_UNRESTRICTED };
        a.opts.no_summary = true;
        on_loop(do_start, &a);
        assert_non_null(H.proxy);
        enum { N = 3 * NX_PROXY_DNS_INFLIGHT };
        int fds[N];
        for (int i = 0; i < N; i++) {
                fds[i] = dial_proxy();
                send_str(fds[i], "CONNECT localhost:443 HTTP/1.1\r\n\r\n");
        }
        for (int i = 0; i < N; i++) {
                char head[2048];
                recv_head(fds[i], head, sizeof(head));
                assert_int_equal(status_of(head), 403);
                close(fds[i]);
        }
        assert_int_equal(wait_records(N), N);
        for (int i = 0; i < N; i++)
                assert_string_equal(rs(record((size_t)i), "reason_code"), "DNS_DENIED");
}

/* Security review L4: a public address of the node itself is the node — denied like loopback,
 * also in unrestricted mode. The address is put on lo for the test and removed after. */
static void test_connect_unrestricted_node_address_denied(void **state)
{
        (void)state;
        if (geteuid() != 0 || ip_addr_lo("add") != 0)
                SKIP_BECAUSE("cannot add a test address to lo (needs root and iproute2)");
        start(CAP_UNRESTRICTED);
        int rc = http_connect("self.test:443", NULL, NULL);
        (void)ip_addr_lo("del");
        assert_int_equal(rc, 403);
        assert_deny(0, "DNS_DENIED", "CONNECT");
        assert_string_equal(rs(record(0), "resolved_ip"), NODE_IP);
}

static void test_connect_host_header_mismatch_400(void **state)
{
        (void)state;
        start(CAP_ALLOWED);
        assert_int_equal(http_connect("allowed.test:443", "Host: evil.test:443\r\n", NULL), 400);
        assert_deny(0, "INVALID_DESTINATION", "CONNECT");
        assert_string_equal(rs(record(0), "dest_host"), "allowed.test");
        assert_int_equal(H.resolve_calls, 0);
}

static void test_connect_host_header_port_mismatch_400(void **state)
{
        (void)state;
        start(CAP_ALLOWED);
        assert_int_equal(http_connect("allowed.test:443", "Host: allowed.test:80\r\n", NULL),
                         400);
        assert_deny(0, "INVALID_DESTINATION", "CONNECT");
}

static void test_connect_duplicate_host_headers_400(void **state)
{
        (void)state;
        start(CAP_ALLOWED);
        assert_int_equal(http_connect("allowed.test:443",
                                      "Host: allowed.test:443\r\nHost: evil.test:443\r\n", NULL),
                         400);
        assert_deny(0, "INVALID_DESTINATION", "CONNECT");
}

static void test_connect_host_header_case_and_default_port_ok(void **state)
{
        (void)state;
        start(CAP_ALLOWED);
        int fd = -1;
        assert_int_equal(http_connect("allowed.test:443", "Host: ALLOWED.test\r\n", &fd), 200);
        close(fd);
}

/* spec nexus §7.13 row 33 */
static void test_connect_invalid_authorities_400(void **state)
{
        (void)state;
        start(CAP_UNRESTRICTED);
        const char *bad[] = { ":443", "example.com:0", "example.com:99999", "example.com:-1",
                              "example.com:65536", "example.com:" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                assert_int_equal(http_connect(bad[i], NULL, NULL), 400);
                assert_deny(i, "INVALID_DESTINATION", "CONNECT");
                assert_int_equal(ri(record(i), "dest_port"), 0);
        }
        assert_int_equal(H.resolve_calls, 0);
}

/* spec nexus §7.13 row 33 (empty authority: the request line itself is malformed) */
static void test_connect_empty_authority_400(void **state)
{
        (void)state;
        start(CAP_UNRESTRICTED);
        int fd = dial_proxy();
        send_str(fd, "CONNECT  HTTP/1.1\r\n\r\n");
        char resp[512];
        recv_all(fd, resp, sizeof(resp));
        close(fd);
        assert_true(strncmp(resp, "HTTP/1.1 400 ", 13) == 0);
        assert_deny(0, "INVALID_DESTINATION", NULL);
}

/* IPv6 zone ids are INVALID_DESTINATION */
static void test_connect_zone_id_invalid_destination(void **state)
{
        (void)state;
        start(CAP_UNRESTRICTED);
        assert_int_equal(http_connect("[fe80::1%eth0]:443", NULL, NULL), 400);
        assert_deny(0, "INVALID_DESTINATION", "CONNECT");
}

/* spec nexus §7.13 row 32 [::1]:443 → (::1, 443); private → DNS_DENIED, never resolved */
static void test_connect_ipv6_literal_loopback_denied(void **state)
{
        (void)state;
        start(CAP_UNRESTRICTED);
        assert_int_equal(http_connect("[::1]:443", NULL, NULL), 403);
        assert_deny(0, "DNS_DENIED", "CONNECT");
        assert_string_equal(rs(record(0), "dest_host"), "::1");
        assert_string_equal(rs(record(0), "resolved_ip"), "::1");
        assert_int_equal(H.resolve_calls, 0);
}

/* issue #6: IPv4 literals in decimal, octal, hex and short form are canonicalised and denied */
static void test_connect_ipv4_literal_forms_unrestricted_denied(void **state)
{
        (void)state;
        start(CAP_UNRESTRICTED);
        const char *forms[] = { "2130706433:443", "0177.0.0.1:443", "0x7f.1:443", "127.1:443",
                                "0x7f000001:443", "127.0.0.1.:443" };
        for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
                assert_int_equal(http_connect(forms[i], NULL, NULL), 403);
                assert_deny(i, "DNS_DENIED", "CONNECT");
                assert_string_equal(rs(record(i), "resolved_ip"), "127.0.0.1");
        }
        assert_int_equal(H.resolve_calls, 0);   /* never handed to a resolver */
}

static void test_connect_ipv4_literal_forms_allowlist_not_in_allowlist(void **state)
{
        (void)state;
        start(CAP_ALLOWED);
        const char *forms[] = { "2130706433:443", "0177.0.0.1:443", "0x7f.1:443", "127.1:443",
                                PUBLIC_IP ":443" };
        for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
                assert_int_equal(http_connect(forms[i], NULL, NULL), 403);
                assert_deny(i, "NOT_IN_ALLOWLIST", "CONNECT");
        }
        assert_int_equal(H.resolve_calls, 0);
}

/* a literal whose value inet_aton refuses is not a name either */
static void test_connect_out_of_range_ipv4_literal_invalid(void **state)
{
        (void)state;
        start(CAP_UNRESTRICTED);
        assert_int_equal(http_connect("999.1.1.1:443", NULL, NULL), 400);
        assert_deny(0, "INVALID_DESTINATION", "CONNECT");
        assert_int_equal(H.resolve_calls, 0);
}

static void test_connect_public_ipv4_literal_unrestricted_dialled(void **state)
{
        (void)state;
        start(CAP_UNRESTRICTED);
        int fd = -1;
        assert_int_equal(http_connect(PUBLIC_IP ":443", NULL, &fd), 200);
        echo_roundtrip(fd, "literal");
        close(fd);
        assert_string_equal(H.dialled_checked, PUBLIC_IP ":443");
        assert_int_equal(H.resolve_calls, 0);
}

/* issue #6: an allowlisted name that resolves to a denied address */
static void test_connect_allowlisted_name_private_answers_denied(void **state)
{
        (void)state;
        start(CAP_ALLOWED);
        struct { const char *name; const char *ip; } v[] = {
                { "evil.test", "127.0.0.1" },
                { "meta.test", "169.254.169.254" },
                { "ten.test", "10.0.0.1" },
                { "mapped.test", "::ffff:127.0.0.1" },
                { "nat64.test", "64:ff9b::7f00:1" },
                { "sixtofour.test", "2002:7f00:1::1" },
                { "unspec.test", "::" },
                { "private.test", "10.0.0.1" },
        };
        for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
                char t[128];
                snprintf(t, sizeof(t), "%s:443", v[i].name);
                assert_int_equal(http_connect(t, NULL, NULL), 403);
                assert_deny(i, "DNS_DENIED", "CONNECT");
                assert_string_equal(rs(record(i), "resolved_ip"), v[i].ip);
        }
        assert_string_equal(H.dialled_checked, "");     /* nothing was dialled */
}

/* D14: every answer is checked; denied ones are skipped, the first allowed one is dialled */
static void test_connect_mixed_answers_dial_first_public(void **state)
{
        (void)state;
        start(CAP_ALLOWED);
        int fd = -1;
        assert_int_equal(http_connect("mixed.test:443", NULL, &fd), 200);
        close(fd);
        assert_string_equal(H.dialled_checked, PUBLIC_IP ":443");
        assert_string_equal(rs(record(0), "resolved_ip"), PUBLIC_IP);
}

static void test_connect_lookup_failure_dns_denied(void **state)
{
        (void)state;
        start(CAP_ALLOWED);
        assert_int_equal(http_connect("nx.test:443", NULL, NULL), 403);
        assert_deny(0, "DNS_DENIED", "CONNECT");
        assert_null(json_object_get(record(0), "resolved_ip"));
}

/* spec nexus §7.3 step 3: dial failure → 502, audit OTHER with resolved_ip */
static void test_connect_refused_502_other(void **state)
{
        (void)state;
        start(CAP_ALLOWED);
        assert_int_equal(http_connect("allowed.test:444", NULL, NULL), 502);
        assert_deny(0, "OTHER", "CONNECT");
        assert_string_equal(rs(record(0), "resolved_ip"), PUBLIC_IP);
}

/* the real resolver path (uv_getaddrinfo): "localhost" resolves to loopback only → denied */
static void test_connect_real_resolver_localhost_denied(void **state)
{
        (void)state;
        start_args a = { .cap = CAP_UNRESTRICTED };
        a.opts.no_summary = true;
        on_loop(do_start, &a);
        assert_non_null(H.proxy);
        assert_int_equal(http_connect("localhost:443", NULL, NULL), 403);
        assert_deny(0, "DNS_DENIED", "CONNECT");
}

/* ═══ tests: HTTP absolute-form and other requests ═══════════════════════════════════════ */

static int http_get(const char *req, char *resp, size_t cap)
{
        int fd = dial_proxy();
        send_str(fd, req);
        recv_all(fd, resp, cap);
        close(fd);
        return status_of(resp);
}

/* spec nexus §7.13 row 25 */
static void test_absolute_capability_null_403(void **state)
{
        (void)state;
        start(CAP_NULL);
        char resp[2048];
        assert_int_equal(http_get("GET http://example.com/test HTTP/1.1\r\nHost: example.com"
                                  "\r\n\r\n", resp, sizeof(resp)), 403);
        assert_deny(0, "NET_MODE_NONE", "HTTP");
}

/* spec nexus §7.13 row 26 */
static void test_absolute_unrestricted_loopback_literal_403(void **state)
{
        (void)state;
        start(CAP_UNRESTRICTED);
        char req[256], resp[2048];
        snprintf(req, sizeof(req), "GET http://127.0.0.1:%u/test HTTP/1.1\r\n\r\n",
                 H.origin_port);
        assert_int_equal(http_get(req, resp, sizeof(resp)), 403);
        assert_deny(0, "DNS_DENIED", "HTTP");
        assert_int_equal(H.origin_len, 0);
}

static void test_absolute_allowed_forwards_and_rewrites(void **state)
{
        (void)state;
        start(CAP_ALLOWED);
        char resp[2048];
        int code = http_get("GET http://allowed.test/path?q=1 HTTP/1.1\r\n"
                            "Host: evil.test\r\n"
                            "Proxy-Authorization: Basic c2VjcmV0\r\n"
                            "Proxy-Connection: keep-alive\r\n"
                            "Keep-Alive: 300\r\n"
                            "Connection: keep-alive, X-Drop-Me\r\n"
                            "X-Drop-Me: 1\r\n"
                            "TE: trailers\r\n"
                            "Upgrade: h2c\r\n"
                            "Accept: */*\r\n\r\n", resp, sizeof(resp));
        assert_int_equal(code, 200);
        assert_non_null(strstr(resp, "\r\n\r\nhello"));
        pthread_mutex_lock(&H.mu);
        char got[8192];
        memcpy(got, H.origin_head, sizeof(got));
        pthread_mutex_unlock(&H.mu);
        assert_true(strncmp(got, "GET /path?q=1 HTTP/1.1\r\n", 24) == 0);
        assert_non_null(strstr(got, "\r\nHost: allowed.test\r\n"));
        assert_null(strstr(got, "evil.test"));
        assert_null(strcasestr(got, "Proxy-Authorization"));
        assert_null(strcasestr(got, "Proxy-Connection"));
        assert_null(strcasestr(got, "Keep-Alive"));
        assert_null(strcasestr(got, "X-Drop-Me"));
        assert_null(strcasestr(got, "\r\nTE:"));
        assert_null(strcasestr(got, "Upgrade"));
        assert_non_null(strstr(got, "\r\nAccept: */*\r\n"));
        assert_non_null(strstr(got, "\r\nConnection: close\r\n\r\n"));
        json_t *r = record(0);
        assert_string_equal(rs(r, "decision"), "allow");
        assert_string_equal(rs(r, "method"), "HTTP");
        assert_int_equal(ri(r, "dest_port"), 80);
}

static void test_absolute_body_forwarded_by_content_length(void **state)
{
        (void)state;
        start(CAP_ALLOWED);
        char resp[2048];
        int code = http_get("POST http://allowed.test/submit HTTP/1.1\r\n"
                            "Content-Length: 4\r\n\r\nDATAextra-ignored", resp, sizeof(resp));
        assert_int_equal(code, 200);
        pthread_mutex_lock(&H.mu);
        const char *body = strstr(H.origin_head, "\r\n\r\n");
        bool ok = body && strcmp(body + 4, "DATA") == 0;
        pthread_mutex_unlock(&H.mu);
        assert_true(ok);
}

static void test_absolute_chunked_body_refused_501(void **state)
{
        (void)state;
        start(CAP_ALLOWED);
        char resp[2048];
        assert_int_equal(http_get("POST http://allowed.test/ HTTP/1.1\r\n"
                                  "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", resp,
                                  sizeof(resp)), 501);
        assert_deny(0, "OTHER", "HTTP");
}

static void test_absolute_bad_content_length_400(void **state)
{
        (void)state;
        start(CAP_ALLOWED);
        char resp[2048];
        assert_int_equal(http_get("POST http://allowed.test/ HTTP/1.1\r\nContent-Length: 1\r\n"
                                  "Content-Length: 2\r\n\r\n", resp, sizeof(resp)), 400);
        assert_deny(0, "OTHER", "HTTP");
}

static void test_absolute_not_in_allowlist_403(void **state)
{
        (void)state;
        start(CAP_ALLOWED);
        char resp[2048];
        assert_int_equal(http_get("GET http://github.com/ HTTP/1.1\r\n\r\n", resp,
                                  sizeof(resp)), 403);
        assert_deny(0, "NOT_IN_ALLOWLIST", "HTTP");
        assert_non_null(strstr(resp, "X-Proxy-Error: NOT_IN_ALLOWLIST\r\n"));
}

/* spec nexus §7.4 step 2 */
static void test_absolute_bad_ports_400(void **state)
{
        (void)state;
        start(CAP_UNRESTRICTED);
        const char *reqs[] = { "GET http://example.com:abc/ HTTP/1.1\r\n\r\n",
                               "GET http://example.com:70000/ HTTP/1.1\r\n\r\n",
                               "GET http://example.com:0/ HTTP/1.1\r\n\r\n" };
        for (size_t i = 0; i < 3; i++) {
                char resp[1024];
                assert_int_equal(http_get(reqs[i], resp, sizeof(resp)), 400);
                assert_deny(i, "INVALID_DESTINATION", "HTTP");
        }
}

static void test_absolute_userinfo_400(void **state)
{
        (void)state;
        start(CAP_UNRESTRICTED);
        char resp[1024];
        assert_int_equal(http_get("GET http://allowed.test@evil.test/ HTTP/1.1\r\n\r\n", resp,
                                  sizeof(resp)), 400);
        assert_deny(0, "INVALID_DESTINATION", "HTTP");
}

/* spec nexus §7.4 step 1 */
static void test_origin_form_not_a_proxy_request(void **state)
{
        (void)state;
        start(CAP_UNRESTRICTED);
        char resp[1024];
        assert_int_equal(http_get("GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n", resp,
                                  sizeof(resp)), 400);
        assert_non_null(strstr(resp, "not a proxy request\n"));
        assert_deny(0, "INVALID_DESTINATION", "HTTP");
        assert_string_equal(rs(record(0), "dest_host"), "");
}

static void test_https_absolute_uri_refused(void **state)
{
        (void)state;
        start(CAP_UNRESTRICTED);
        char resp[1024];
        assert_int_equal(http_get("GET https://example.com/ HTTP/1.1\r\n\r\n", resp,
                                  sizeof(resp)), 400);
        assert_deny(0, "INVALID_DESTINATION", "HTTP");
}

static void test_malformed_head_400(void **state)
{
        (void)state;
        start(CAP_UNRESTRICTED);
        char resp[1024];
        assert_int_equal(http_get("GET http://example.com/ HTTP/1.1\r\nBad Header\r\n\r\n",
                                  resp, sizeof(resp)), 400);
        assert_deny(0, "INVALID_DESTINATION", "HTTP");
}

/* D14: the head is capped at 16 KiB → 431 and an audit record */
static void test_oversized_head_431(void **state)
{
        (void)state;
        start(CAP_UNRESTRICTED);
        int fd = dial_proxy();
        static char big[NX_PROXY_HEAD_MAX + 2048];
        memset(big, 'a', sizeof(big));
        memcpy(big, "GET http://example.com/ HTTP/1.1\r\nX-Big: ", 41);
        /* the proxy may answer and close before everything is sent */
        size_t off = 0;
        while (off < sizeof(big)) {
                ssize_t w = send(fd, big + off, sizeof(big) - off, MSG_NOSIGNAL);
                if (w <= 0)
                        break;
                off += (size_t)w;
        }
        char resp[1024];
        recv_head(fd, resp, sizeof(resp));
        close(fd);
        assert_true(strncmp(resp, "HTTP/1.1 431 ", 13) == 0);
        assert_deny(0, "INVALID_DESTINATION", "HTTP");
}

/* slowloris: a head that never completes is cut at head_timeout_ms */
static void test_slowloris_head_timeout_408(void **state)
{
        (void)state;
        nx_proxy_opts o = { .head_timeout_ms = 200 };
        start_opts(CAP_UNRESTRICTED, &o);
        int fd = dial_proxy();
        send_str(fd, "GET http://example.com/ HTTP/1.1\r\nX-A: ");
        char resp[1024];
        recv_all(fd, resp, sizeof(resp));       /* returns at EOF: the proxy closed */
        assert_true(strncmp(resp, "HTTP/1.1 408 ", 13) == 0);
        assert_non_null(strstr(resp, "request head timeout\n"));
        assert_true(peer_closed(fd));
        close(fd);
        assert_deny(0, "OTHER", "HTTP");
}

/* spec nexus §7.2: no first byte in time → closed, nothing decided */
static void test_first_byte_timeout_closes_silently(void **state)
{
        (void)state;
        nx_proxy_opts o = { .first_byte_timeout_ms = 100 };
        start_opts(CAP_UNRESTRICTED, &o);
        int fd = dial_proxy();
        assert_true(peer_closed(fd));
        close(fd);
        nx_proxy_stats st = get_stats();
        assert_int_equal(st.allowed + st.denied, 0);
        assert_int_equal(H.n_records, 0);
}

static void test_idle_tunnel_closed(void **state)
{
        (void)state;
        nx_proxy_opts o = { .idle_timeout_ms = 200 };
        start_opts(CAP_ALLOWED, &o);
        int fd = -1;
        assert_int_equal(http_connect("allowed.test:443", NULL, &fd), 200);
        echo_roundtrip(fd, "a");
        assert_true(peer_closed(fd));   /* idle for 200 ms → closed by the proxy */
        close(fd);
}

/* D14: max concurrent connections; the extra one is closed and audited OTHER */
static void test_max_conns_extra_closed_and_audited(void **state)
{
        (void)state;
        nx_proxy_opts o = { .max_conns = 2 };
        start_opts(CAP_ALLOWED, &o);
        int a = -1, b = -1;
        assert_int_equal(http_connect("allowed.test:443", NULL, &a), 200);
        assert_int_equal(http_connect("allowed.test:443", NULL, &b), 200);
        int c = dial_proxy();
        assert_true(peer_closed(c));
        close(c);
        assert_deny(2, "OTHER", NULL);
        nx_proxy_stats st = get_stats();
        assert_int_equal(st.rejected, 1);
        assert_int_equal(st.active, 2);
        close(a);
        close(b);
}

/* ═══ tests: SOCKS5 ══════════════════════════════════════════════════════════════════════ */

/* spec nexus §7.13 row 27 */
static void test_socks_domain_allowed_relays(void **state)
{
        (void)state;
        start("{\"mode\":\"allowlist\",\"allow\":[\"example.com:443\"]}");
        int fd = socks_greet();
        assert_int_equal(socks_domain(fd, 1, "example.com", 443), 0);
        echo_roundtrip(fd, "socks bytes");
        close(fd);
        json_t *r = record(0);
        assert_string_equal(rs(r, "decision"), "allow");
        assert_string_equal(rs(r, "reason_code"), "OK");
        assert_string_equal(rs(r, "method"), "SOCKS5");
        assert_string_equal(rs(r, "resolved_ip"), PUBLIC_IP);
}

/* pipelined tunnel bytes right after the SOCKS request */
static void test_socks_pipelined_bytes_forwarded(void **state)
{
        (void)state;
        start(CAP_ALLOWED);
        int fd = dial_proxy();
        uint8_t b[64] = { 5, 1, 0, 5, 1, 0, 3, 12 };
        memcpy(b + 8, "allowed.test", 12);
        b[20] = 1;
        b[21] = 0xbb;
        memcpy(b + 22, "HI", 2);
        send_all(fd, b, 24);
        char r[32];
        assert_int_equal(recv_n(fd, r, sizeof(r), 2 + 10 + 2), 14);
        assert_int_equal(r[3], 0);
        assert_memory_equal(r + 12, "HI", 2);
        close(fd);
}

/* spec nexus §7.13 row 28 */
static void test_socks_capability_null_denied(void **state)
{
        (void)state;
        start(CAP_NULL);
        int fd = socks_greet();
        assert_int_equal(socks_domain(fd, 1, "example.com", 443), NX_SOCKS5_REP_NOT_ALLOWED);
        close(fd);
        assert_deny(0, "NET_MODE_NONE", "SOCKS5");
}

/* spec nexus §7.13 row 29 */
static void test_socks_not_in_allowlist_denied(void **state)
{
        (void)state;
        start("{\"mode\":\"allowlist\",\"allow\":[\"github.com:443\"]}");
        int fd = socks_greet();
        assert_int_equal(socks_domain(fd, 1, "evil.com", 443), NX_SOCKS5_REP_NOT_ALLOWED);
        close(fd);
        assert_deny(0, "NOT_IN_ALLOWLIST", "SOCKS5");
}

/* spec nexus §7.13 row 30 — D14 differs from REF: IPv4 is accepted and goes through the
 * policy; a private literal is DNS_DENIED (REF: INVALID_DESTINATION, reply 0x08) */
static void test_socks_ipv4_private_literal_denied(void **state)
{
        (void)state;
        start(CAP_UNRESTRICTED);
        int fd = socks_greet();
        assert_int_equal(socks_ipv4(fd, "127.0.0.1", 443), NX_SOCKS5_REP_NOT_ALLOWED);
        close(fd);
        assert_deny(0, "DNS_DENIED", "SOCKS5");
}

static void test_socks_ipv4_literal_allowlist_never_matches(void **state)
{
        (void)state;
        start(CAP_ALLOWED);
        int fd = socks_greet();
        assert_int_equal(socks_ipv4(fd, "1.2.3.4", 443), NX_SOCKS5_REP_NOT_ALLOWED);
        close(fd);
        assert_deny(0, "NOT_IN_ALLOWLIST", "SOCKS5");
}

static void test_socks_ipv4_public_literal_unrestricted_relays(void **state)
{
        (void)state;
        start(CAP_UNRESTRICTED);
        int fd = socks_greet();
        assert_int_equal(socks_ipv4(fd, PUBLIC_IP, 443), 0);
        echo_roundtrip(fd, "v4");
        close(fd);
        assert_string_equal(H.dialled_checked, PUBLIC_IP ":443");
}

static void test_socks_ipv6_loopback_denied(void **state)
{
        (void)state;
        start(CAP_UNRESTRICTED);
        int fd = socks_greet();
        assert_int_equal(socks_ipv6(fd, "::1", 443), NX_SOCKS5_REP_NOT_ALLOWED);
        close(fd);
        assert_deny(0, "DNS_DENIED", "SOCKS5");
        assert_string_equal(rs(record(0), "dest_host"), "::1");
}

static void test_socks_ipv6_mapped_loopback_denied(void **state)
{
        (void)state;
        start(CAP_UNRESTRICTED);
        int fd = socks_greet();
        assert_int_equal(socks_ipv6(fd, "::ffff:127.0.0.1", 443), NX_SOCKS5_REP_NOT_ALLOWED);
        close(fd);
        assert_deny(0, "DNS_DENIED", "SOCKS5");
}

/* spec nexus §7.13 row 31 */
static void test_socks_bind_07(void **state)
{
        (void)state;
        start(CAP_UNRESTRICTED);
        int fd = socks_greet();
        assert_int_equal(socks_domain(fd, 2, "foo", 443), NX_SOCKS5_REP_CMD_UNSUPPORTED);
        close(fd);
        assert_deny(0, "INVALID_DESTINATION", "SOCKS5");
}

static void test_socks_udp_associate_07(void **state)
{
        (void)state;
        start(CAP_UNRESTRICTED);
        int fd = socks_greet();
        assert_int_equal(socks_domain(fd, 3, "example.com", 53), NX_SOCKS5_REP_CMD_UNSUPPORTED);
        close(fd);
        assert_deny(0, "INVALID_DESTINATION", "SOCKS5");
}

static void test_socks_bad_atyp_08(void **state)
{
        (void)state;
        start(CAP_UNRESTRICTED);
        int fd = socks_greet();
        const uint8_t b[] = { 5, 1, 0, 7, 1, 2, 3, 4 };
        send_all(fd, b, sizeof(b));
        char r[16];
        assert_int_equal(recv_n(fd, r, sizeof(r), 10), 10);
        assert_int_equal(r[1], NX_SOCKS5_REP_ATYP_UNSUPPORTED);
        close(fd);
        assert_deny(0, "INVALID_DESTINATION", "SOCKS5");
}

static void test_socks_zone_id_domain_08(void **state)
{
        (void)state;
        start(CAP_UNRESTRICTED);
        int fd = socks_greet();
        assert_int_equal(socks_domain(fd, 1, "fe80::1%eth0", 443),
                         NX_SOCKS5_REP_ATYP_UNSUPPORTED);
        close(fd);
        assert_deny(0, "INVALID_DESTINATION", "SOCKS5");
}

static void test_socks_auth_methods_only_refused_ff(void **state)
{
        (void)state;
        start(CAP_UNRESTRICTED);
        int fd = dial_proxy();
        const uint8_t g[] = { 5, 1, 2 };        /* username/password only */
        send_all(fd, g, sizeof(g));
        char r[8];
        assert_int_equal(recv_n(fd, r, sizeof(r), 2), 2);
        assert_int_equal((uint8_t)r[0], 5);
        assert_int_equal((uint8_t)r[1], 0xff);
        assert_true(peer_closed(fd));
        close(fd);
        assert_deny(0, "OTHER", "SOCKS5");
}

static void test_socks_refused_05(void **state)
{
        (void)state;
        start(CAP_ALLOWED);
        int fd = socks_greet();
        assert_int_equal(socks_domain(fd, 1, "allowed.test", 444), NX_SOCKS5_REP_REFUSED);
        close(fd);
        assert_deny(0, "OTHER", "SOCKS5");
}

static void test_socks_lookup_failure_04(void **state)
{
        (void)state;
        start(CAP_ALLOWED);
        int fd = socks_greet();
        assert_int_equal(socks_domain(fd, 1, "nx.test", 443), NX_SOCKS5_REP_HOST_UNREACHABLE);
        close(fd);
        assert_deny(0, "DNS_DENIED", "SOCKS5");
}

static void test_socks_private_answer_02(void **state)
{
        (void)state;
        start(CAP_ALLOWED);
        int fd = socks_greet();
        assert_int_equal(socks_domain(fd, 1, "meta.test", 443), NX_SOCKS5_REP_NOT_ALLOWED);
        close(fd);
        assert_deny(0, "DNS_DENIED", "SOCKS5");
        assert_string_equal(rs(record(0), "resolved_ip"), "169.254.169.254");
}

/* ═══ tests: audit, stats, leaks ═════════════════════════════════════════════════════════ */

/* spec nexus §12 #201: 10 concurrent decisions → exactly 10 JSONL lines */
static void test_ten_concurrent_audits_ten_lines(void **state)
{
        (void)state;
        err_t e = ERR_INIT;
        assert_int_equal(nx_egress_report_new(NULL, &H.report, &e), 0);
        start(CAP_NONE);
        int fds[10];
        for (int i = 0; i < 10; i++) {
                fds[i] = dial_proxy();
                send_str(fds[i], "CONNECT example.com:443 HTTP/1.1\r\n\r\n");
        }
        for (int i = 0; i < 10; i++) {
                char resp[512];
                recv_all(fds[i], resp, sizeof(resp));
                close(fds[i]);
        }
        assert_int_equal(wait_records(10), 10);
        close_proxy();
        nx_egress_report_finish(H.report);
        nx_egress_chunk c;
        size_t lines = 0;
        while (nx_egress_report_next(H.report, &c)) {
                for (size_t i = 0; i < c.len; i++)
                        lines += c.bytes[i] == '\n';
                nx_egress_report_chunk_done(H.report, &c);
        }
        assert_int_equal(lines, 10);
}

/* spec nexus §12 #203: repeated denied CONNECTs do not leak (ASan) and shutdown is clean */
static void test_repeated_denied_connects_no_leak(void **state)
{
        (void)state;
        start(CAP_ALLOWED);
        for (int i = 0; i < 200; i++)
                assert_int_equal(http_connect("evil.com:443", NULL, NULL), 403);
        assert_int_equal(wait_records(200), 200);
        nx_proxy_stats st = get_stats();
        assert_int_equal(st.denied, 200);
        close_proxy();
}

static void test_stats_count_bytes_both_ways(void **state)
{
        (void)state;
        start(CAP_ALLOWED);
        int fd = -1;
        assert_int_equal(http_connect("allowed.test:443", NULL, &fd), 200);
        echo_roundtrip(fd, "0123456789");
        close(fd);
        nx_proxy_stats st;
        for (int i = 0; i < 100; i++) {
                st = get_stats();
                if (st.active == 0)
                        break;
                usleep(10000);
        }
        assert_int_equal(st.bytes_up, 10);
        assert_int_equal(st.bytes_down, 10);
        assert_int_equal(st.allowed, 1);
        assert_int_equal(st.conns, 1);
        assert_int_equal(st.active, 0);
}

/* closing the proxy with tunnels open closes them (client sees EOF) and frees everything */
static void test_close_with_open_tunnels(void **state)
{
        (void)state;
        start(CAP_ALLOWED);
        int a = -1, b = -1;
        assert_int_equal(http_connect("allowed.test:443", NULL, &a), 200);
        int s = socks_greet();
        assert_int_equal(socks_domain(s, 1, "allowed.test", 443), 0);
        b = dial_proxy();       /* still waiting for its first byte */
        echo_roundtrip(a, "x");
        close_proxy();
        assert_true(peer_closed(a));
        assert_true(peer_closed(s));
        assert_true(peer_closed(b));
        close(a);
        close(b);
        close(s);
}

/* half-close: the client's EOF reaches the destination, whose answer still comes back */
static void test_connect_half_close_propagates(void **state)
{
        (void)state;
        start(CAP_ALLOWED);
        int fd = -1;
        assert_int_equal(http_connect("allowed.test:443", NULL, &fd), 200);
        send_str(fd, "bye");
        shutdown(fd, SHUT_WR);
        char buf[16];
        assert_int_equal(recv_all(fd, buf, sizeof(buf)), 3);    /* echo, then EOF */
        assert_string_equal(buf, "bye");
        close(fd);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
                T(test_new_invalid_allowlist_fails),
                T(test_new_invalid_directive_ids_fail),
                T(test_listen_accepts_and_close_twice_harmless),
                T(test_adopt_listener_serves),
                T(test_close_emits_summary_record),
                T(test_connect_capability_null_403),
                T(test_connect_mode_none_403),
                T(test_connect_not_in_allowlist_403),
                T(test_connect_port_not_allowed_is_not_in_allowlist),
                T(test_connect_unknown_mode_internal_error),
                T(test_connect_allowed_relays_and_audits),
                T(test_connect_response_is_exact),
                T(test_connect_pipelined_bytes_forwarded),
                T(test_connect_inside_tunnel_is_opaque),
                T(test_connect_wildcard_subdomain_allowed_apex_denied),
                T(test_connect_unrestricted_public_name_allowed),
                T(test_connect_unrestricted_node_address_denied),
                T(test_lookups_beyond_the_cap_are_queued_and_all_answered),
                T(test_connect_host_header_mismatch_400),
                T(test_connect_host_header_port_mismatch_400),
                T(test_connect_duplicate_host_headers_400),
                T(test_connect_host_header_case_and_default_port_ok),
                T(test_connect_invalid_authorities_400),
                T(test_connect_empty_authority_400),
                T(test_connect_zone_id_invalid_destination),
                T(test_connect_ipv6_literal_loopback_denied),
                T(test_connect_ipv4_literal_forms_unrestricted_denied),
                T(test_connect_ipv4_literal_forms_allowlist_not_in_allowlist),
                T(test_connect_out_of_range_ipv4_literal_invalid),
                T(test_connect_public_ipv4_literal_unrestricted_dialled),
                T(test_connect_allowlisted_name_private_answers_denied),
                T(test_connect_mixed_answers_dial_first_public),
                T(test_connect_lookup_failure_dns_denied),
                T(test_connect_refused_502_other),
                T(test_connect_real_resolver_localhost_denied),
                T(test_connect_half_close_propagates),
                T(test_absolute_capability_null_403),
                T(test_absolute_unrestricted_loopback_literal_403),
                T(test_absolute_allowed_forwards_and_rewrites),
                T(test_absolute_body_forwarded_by_content_length),
                T(test_absolute_chunked_body_refused_501),
                T(test_absolute_bad_content_length_400),
                T(test_absolute_not_in_allowlist_403),
                T(test_absolute_bad_ports_400),
                T(test_absolute_userinfo_400),
                T(test_origin_form_not_a_proxy_request),
                T(test_https_absolute_uri_refused),
                T(test_malformed_head_400),
                T(test_oversized_head_431),
                T(test_slowloris_head_timeout_408),
                T(test_first_byte_timeout_closes_silently),
                T(test_idle_tunnel_closed),
                T(test_max_conns_extra_closed_and_audited),
                T(test_socks_domain_allowed_relays),
                T(test_socks_pipelined_bytes_forwarded),
                T(test_socks_capability_null_denied),
                T(test_socks_not_in_allowlist_denied),
                T(test_socks_ipv4_private_literal_denied),
                T(test_socks_ipv4_literal_allowlist_never_matches),
                T(test_socks_ipv4_public_literal_unrestricted_relays),
                T(test_socks_ipv6_loopback_denied),
                T(test_socks_ipv6_mapped_loopback_denied),
                T(test_socks_bind_07),
                T(test_socks_udp_associate_07),
                T(test_socks_bad_atyp_08),
                T(test_socks_zone_id_domain_08),
                T(test_socks_auth_methods_only_refused_ff),
                T(test_socks_refused_05),
                T(test_socks_lookup_failure_04),
                T(test_socks_private_answer_02),
                T(test_ten_concurrent_audits_ten_lines),
                T(test_repeated_denied_connects_no_leak),
                T(test_stats_count_bytes_both_ways),
                T(test_close_with_open_tunnels),
#undef T
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
