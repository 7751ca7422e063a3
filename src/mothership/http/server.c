/* http/server.c — the libmicrohttpd daemon and the life of a request (see server.h).
 *
 * Life of a request in the access callback (*con_cls is our ms_http_req):
 *   1st call     create req, route, rate-limit by peer, decode the query, check Content-Length.
 *                An early answer (400/404/413/429) is sent at once when a body follows (so it is
 *                never read; libmicrohttpd then closes the connection), else at the final call.
 *   body calls   append to req->body up to the route's cap; past it, discard and remember.
 *   final call   dispatch(): run the handler, then settle() what it did — answered, parked
 *                (park.c suspends the connection), or neither (500).
 *   after resume the final call comes again: dispatch() with the wake reason.
 * Stop: quiesce (no new connections), wake every parked request (park.c), give running requests
 * a grace period, stop the daemon, then the park timer. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "core/cleanup.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/str.h"
#include "http/server_impl.h"

#define MAX_IMMEDIATE_REENTRIES 16
/* A chunked body past its cap is discarded; past this much more, the connection is dropped. */
#define MAX_DISCARD_BYTES (8 * 1024 * 1024)

static void peer_text(struct MHD_Connection *c, char *out, size_t outsz)
{
        const union MHD_ConnectionInfo *ci =
                MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        out[0] = '\0';
        if (!ci || !ci->client_addr) {
                (void)str_copy(out, outsz, "unknown");
                return;
        }
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
                if (!inet_ntop(AF_INET, &in->sin_addr, out, (socklen_t)outsz))
                        (void)str_copy(out, outsz, "unknown");
        } else if (sa->sa_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
                /* One client, one key: ::ffff:1.2.3.4 is 1.2.3.4 (rate limits, logs). */
                if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
                        if (!inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], out,
                                       (socklen_t)outsz))
                                (void)str_copy(out, outsz, "unknown");
                } else if (!inet_ntop(AF_INET6, &in6->sin6_addr, out, (socklen_t)outsz)) {
                        (void)str_copy(out, outsz, "unknown");
                }
        } else {
                (void)str_copy(out, outsz, "unknown");
        }
}

static enum MHD_Result query_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
        ms_http_req *req = cls;
        (void)kind;
        if (req->query_bad)
                return MHD_NO;
        if (req->nquery == MS_HTTP_MAX_QUERY_ARGS) {
                req->query_bad = true;
                err_set(&req->query_err, "more than %d query parameters",
                        MS_HTTP_MAX_QUERY_ARGS);
                return MHD_NO;
        }
        if (!key)
                key = "";
        if (!value)
                value = "";
        size_t kl = strlen(key), vl = strlen(value), dk, dv;
        char *k = malloc(kl + 1), *v = malloc(vl + 1);
        if (!k || !v) {
                free(k);
                free(v);
                req->query_bad = true;
                err_errno(&req->query_err, ENOMEM, "query");
                return MHD_NO;
        }
        /* The daemon leaves %XX alone (identity unescaper): decode strictly here. */
        if (ms_http_percent_decode(key, kl, true, k, kl + 1, &dk, &req->query_err) < 0 ||
            ms_http_percent_decode(value, vl, true, v, vl + 1, &dv, &req->query_err) < 0) {
                free(k);
                free(v);
                req->query_bad = true;
                err_wrap(&req->query_err, "query parameter");
                return MHD_NO;
        }
        if (memchr(k, '\0', dk) || memchr(v, '\0', dv)) {
                free(k);
                free(v);
                req->query_bad = true;
                err_set(&req->query_err, "query parameter contains NUL");
                return MHD_NO;
        }
        req->qname[req->nquery] = k;
        req->qvalue[req->nquery] = v;
        req->nquery++;
        return MHD_YES;
}

static bool has_body(ms_http_req *req)
{
        const char *cl = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
                                        MHD_HTTP_HEADER_TRANSFER_ENCODING))
                return true;
        return cl && strcmp(cl, "0") != 0;
}

static void set_early(ms_http_req *req, unsigned status, const char *code,
                      const ms_ratelimit_rule *rule, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));
static void set_early(ms_http_req *req, unsigned status, const char *code,
                      const ms_ratelimit_rule *rule, const char *fmt, ...)
{
        va_list ap;
        req->early_pending = true;
        req->early_status = status;
        req->early_rule = rule;
        (void)str_copy(req->early_code, sizeof(req->early_code), code);
        va_start(ap, fmt);
        int n = vsnprintf(req->early_detail, sizeof(req->early_detail), fmt, ap);
        va_end(ap);
        if (n < 0)
                req->early_detail[0] = '\0';
}

static void send_early(ms_http_req *req)
{
        req->early_pending = false;
        if (req->early_status == 429 && req->early_rule) {
                (void)ms_http_respond_rate_limited(req, req->early_rule);
                return;
        }
        (void)ms_http_respond_error(req, req->early_status, req->early_code, "%s",
                                    req->early_detail);
}

/* First callback: everything decided before the body is read. */
static void first_call(ms_http_req *req)
{
        ms_http_server *s = req->srv;
        err_t err = ERR_INIT;
        int mr = ms_http_router_match(s->router, req->method, req->path, &req->match, &err);
        req->route_label = mr == 1 ? req->match.route->name : "unmatched";
        if (mr < 0) {
                set_early(req, 400, "bad_request", NULL, "%s", err.msg);
                return;
        }
        if (mr == 0) {
                /* spec §3.1.4: rate rules apply before routing, matched or not. */
                const ms_ratelimit_rule *pr =
                        ms_http_router_prefix_rule(s->router, req->method, req->path);
                if (pr && s->ratelimit && ms_http_rate_refused(req, pr, req->peer)) {
                        set_early(req, 429, "rate_limited", pr, "too many requests");
                        return;
                }
                set_early(req, 404, ERR_NOT_FOUND, NULL, "no route for %s %s", req->method,
                          req->path);
                return;
        }
        const ms_http_route *r = req->match.route;
        if (r->rate_rule && r->rate_key == MS_HTTP_RATE_KEY_PEER && s->ratelimit &&
            ms_http_rate_refused(req, r->rate_rule, req->peer)) {
                set_early(req, 429, "rate_limited", r->rate_rule, "too many requests");
                return;
        }
        MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, query_iter, req);
        if (req->query_bad) {
                set_early(req, 400, "bad_request", NULL, "%s", req->query_err.msg);
                return;
        }
        size_t cap = r->max_body_bytes ? r->max_body_bytes : MS_HTTP_DEFAULT_MAX_BODY;
        req->body = BUF_INIT(cap);
        const char *cl = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        int64_t declared;
        if (cl && str_to_int64(cl, 0, INT64_MAX, &declared) == 0 && (uint64_t)declared > cap) {
                req->too_large = true;
                set_early(req, 413, ERR_TOO_LARGE, NULL, "request body exceeds %zu bytes", cap);
        }
}

typedef enum settle_result {
        SETTLE_DONE,
        SETTLE_SUSPENDED,
        SETTLE_AGAIN,
} settle_result;

/* After a handler call: decide between answered, parked, re-entry, or a server error. */
static settle_result settle(ms_http_req *req, int rc)
{
        ms_http_server *s = req->srv;
        switch (ms_http_park_settle(req, rc)) {
        case MS_HTTP_PARK_SUSPENDED:
                return SETTLE_SUSPENDED;
        case MS_HTTP_PARK_AGAIN:
                return SETTLE_AGAIN;
        case MS_HTTP_PARK_NOTHING:
        default:
                break;
        }
        if (req->status) {
                const ms_http_route *rt = req->match.route;
                if (rt->rate_rule && rt->rate_key == MS_HTTP_RATE_KEY_CALLER &&
                    !req->rate_checked && req->status != 429 &&
                    !atomic_exchange(&s->warned_unchecked_rate, true))
                        log_warn("handler of a caller-keyed rate-limited route never called "
                                 "ms_http_rate_limit()", LOG_STR("route", req->route_label));
                if (rc >= 100 && rc != req->status)
                        log_warn("handler returned a status other than the one it sent",
                                 LOG_STR("route", req->route_label), LOG_INT("returned", rc),
                                 LOG_INT("sent", req->status));
                return SETTLE_DONE;
        }
        if (rc == MS_HTTP_PARKED && atomic_load(&s->stopping)) {
                (void)ms_http_respond_error(req, 503, "unavailable", "server is shutting down");
                return SETTLE_DONE;
        }
        log_error("handler did not answer", LOG_STR("route", req->route_label),
                  LOG_STR("method", req->method), LOG_INT("returned", rc));
        (void)ms_http_respond_error(req, 500, ERR_INTERNAL, "internal error");
        return SETTLE_DONE;
}

static void dispatch(ms_http_req *req)
{
        for (int round = 0; round < MAX_IMMEDIATE_REENTRIES; round++) {
                int rc;
                ms_http_resume_fn fn = req->park.resume;
                void *ctx = req->park.ctx;
                req->park.resume = NULL;
                req->park.ctx = NULL;
                if (req->wake != MS_HTTP_WAKE_NONE && fn)
                        rc = fn(req, req->wake, ctx);
                else
                        rc = req->match.route->handler(req, req->match.route->ctx);
                if (settle(req, rc) != SETTLE_AGAIN)
                        return;
        }
        /* A handler that keeps parking and being woken at once: answer rather than spin. */
        (void)ms_http_respond_error(req, 503, "unavailable", "request could not be parked");
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
{
        ms_http_server *s = cls;
        ms_http_req *req = *con_cls;
        (void)version;

        if (!req) {
                req = calloc(1, sizeof(*req));
                if (!req)
                        return MHD_NO;
                req->srv = s;
                req->conn = conn;
                req->method = method;
                req->path = url;
                req->fd = -1;
                req->start_unix_ms = clock_now_ms();
                req->start_mono_ms = clock_mono_ms();
                req->body = BUF_INIT(0);
                const union MHD_ConnectionInfo *ci =
                        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
                if (ci)
                        req->fd = ci->connect_fd;
                peer_text(conn, req->peer, sizeof(req->peer));
                *con_cls = req;
                atomic_fetch_add(&s->active, 1);
                req->in_callback = true;
                first_call(req);
                /* With a body on the way, answer now so it is never read. */
                if (req->early_pending && has_body(req))
                        send_early(req);
                req->in_callback = false;
                return MHD_YES;
        }
        if (req->status) {
                *upload_data_size = 0;
                return MHD_YES;
        }
        if (*upload_data_size > 0) {
                size_t n = *upload_data_size;
                *upload_data_size = 0;
                if (req->early_pending || req->too_large) {
                        req->discarded += n;
                        return req->discarded > MAX_DISCARD_BYTES ? MHD_NO : MHD_YES;
                }
                if (buf_append(&req->body, upload_data, n) < 0) {
                        req->too_large = true;
                        req->discarded += n;
                        buf_free(&req->body);
                }
                return MHD_YES;
        }

        req->in_callback = true;
        if (req->park.state == PARK_WOKEN)
                ms_http_park_resumed(req);     /* the remover dropped the entry before resuming */
        if (req->early_pending) {
                send_early(req);
        } else if (req->too_large) {
                size_t cap = req->match.route->max_body_bytes ? req->match.route->max_body_bytes
                                                              : MS_HTTP_DEFAULT_MAX_BODY;
                (void)ms_http_respond_error(req, 413, ERR_TOO_LARGE,
                                            "request body exceeds %zu bytes", cap);
        } else {
                dispatch(req);
        }
        req->in_callback = false;
        return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
        ms_http_server *s = cls;
        ms_http_req *req = *con_cls;
        (void)conn;
        if (!req)
                return;
        *con_cls = NULL;
        if (req->park.state != PARK_NONE)
                ms_http_park_forget(req);
        if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && log_enabled(LOG_LEVEL_DEBUG))
                log_debug("http request ended early", LOG_STR("path", req->path),
                          LOG_INT("code", (int64_t)toe));
        ms_http_req_free(req);
        if (atomic_fetch_sub(&s->active, 1) == 1 && atomic_load(&s->stopping)) {
                pthread_mutex_lock(&s->park_lock);
                pthread_cond_broadcast(&s->idle_cond);
                pthread_mutex_unlock(&s->park_lock);
        }
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
        ms_http_server *s = cls;
        (void)socket_context;
        if (toe != MHD_CONNECTION_NOTIFY_STARTED)
                return;
        const union MHD_ConnectionInfo *ci =
                MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        int one = 1;
        /* DESIGN D8: small JSON answers must not wait for Nagle. */
        if (!ci || setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0) {
                if (atomic_fetch_add(&s->nodelay_failures, 1) == 0)
                        log_warn("http: cannot set TCP_NODELAY",
                                 LOG_STR("error", ci ? strerror(errno) : "no socket"));
        }
}

/* The daemon decodes %XX in the path and query before we see them, which would turn "%2F" into
 * a path separator. Leave them alone; the router and query_iter decode strictly. */
static size_t identity_unescape(void *cls, struct MHD_Connection *c, char *s)
{
        (void)cls;
        (void)c;
        return strlen(s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
        char msg[512];
        (void)cls;
        int n = vsnprintf(msg, sizeof(msg), fmt, ap);
        if (n < 0)
                return;
        size_t len = strlen(msg);
        while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
                msg[--len] = '\0';
        log_warn("libmicrohttpd", LOG_STR("detail", msg));
}

/* ---------------------------------------------------------- start / stop */

static int parse_host(const char *host, uint16_t port, struct sockaddr_storage *ss, bool *v6,
                      err_t *err)
{
        memset(ss, 0, sizeof(*ss));
        if (!host || strcmp(host, "localhost") == 0)
                host = "127.0.0.1";
        struct sockaddr_in *in = (struct sockaddr_in *)(void *)ss;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)ss;
        if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
                in->sin_family = AF_INET;
                in->sin_port = htons(port);
                *v6 = false;
                return 0;
        }
        /* Accept "[::1]" as well as "::1". */
        char tmp[INET6_ADDRSTRLEN + 2];
        const char *h = host;
        size_t hl = strlen(host);
        if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']' && hl - 2 < sizeof(tmp)) {
                memcpy(tmp, host + 1, hl - 2);
                tmp[hl - 2] = '\0';
                h = tmp;
        }
        if (inet_pton(AF_INET6, h, &in6->sin6_addr) == 1) {
                in6->sin6_family = AF_INET6;
                in6->sin6_port = htons(port);
                *v6 = true;
                return 0;
        }
        return err_set(err, "host \"%s\" must be a numeric IPv4 or IPv6 address", host);
}

int ms_http_server_start(const ms_http_server_config *cfg, ms_http_server **out, err_t *err)
{
        *out = NULL;
        if (!cfg || !cfg->router)
                return err_set(err, "http server: a router is required");
        for (size_t i = 0; i < ms_http_router_count(cfg->router); i++) {
                const ms_http_route *r = ms_http_router_route(cfg->router, i);
                if (r->rate_rule && !cfg->ratelimit)
                        return err_set(err, "http server: route %s %s has a rate rule but no "
                                       "rate limiter is configured", r->method, r->pattern);
        }
        struct sockaddr_storage ss;
        bool v6 = false;
        if (parse_host(cfg->host, cfg->port, &ss, &v6, err) < 0)
                return -1;

        /* DESIGN D8: a peer closing early must not kill the process (writes get EPIPE). */
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_IGN;
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGPIPE, &sa, NULL) < 0)
                return err_errno(err, errno, "http server: ignore SIGPIPE");

        ms_http_server *s = calloc(1, sizeof(*s));
        if (!s)
                return err_errno(err, ENOMEM, "http server");
        s->router = cfg->router;
        s->ratelimit = cfg->ratelimit;
        s->metrics = cfg->metrics;
        s->park_max_ms = cfg->park_max_ms > 0 ? cfg->park_max_ms : MS_HTTP_DEFAULT_PARK_MAX_MS;
        s->max_parked = cfg->max_parked ? cfg->max_parked : MS_HTTP_DEFAULT_MAX_PARKED;
        s->grace_ms = cfg->shutdown_grace_ms > 0 ? cfg->shutdown_grace_ms
                                                 : MS_HTTP_DEFAULT_GRACE_MS;

        if (s->metrics) {
                static const char *const req_labels[] = { "route", "method", "status" };
                static const char *const dur_labels[] = { "route" };
                s->m_requests = metrics_counter(s->metrics, "http_requests_total",
                                                   "HTTP requests answered, by route, method "
                                                   "and status.", 3, req_labels, err);
                if (!s->m_requests)
                        goto fail;
                s->m_duration = metrics_histogram(s->metrics, "http_request_duration_seconds",
                                                     "Time from request headers to response "
                                                     "queued, by route.", 1, dur_labels,
                                                     metrics_latency_buckets,
                                                     metrics_latency_nbuckets, err);
                if (!s->m_duration)
                        goto fail;
        }

        if (ms_http_park_init(s, err) < 0) {
                free(s);
                return -1;
        }

        unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
                         MHD_USE_ERROR_LOG;
        if (v6)
                flags |= MHD_USE_IPv6;
        s->daemon = MHD_start_daemon(
                flags, cfg->port, NULL, NULL, on_access, s,
                /* first, so that every daemon message goes to our logger */
                MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                MHD_OPTION_THREAD_POOL_SIZE,
                (unsigned int)(cfg->thread_pool_size ? cfg->thread_pool_size
                                                     : MS_HTTP_DEFAULT_POOL),
                MHD_OPTION_CONNECTION_LIMIT,
                (unsigned int)(cfg->connection_limit ? cfg->connection_limit
                                                     : MS_HTTP_DEFAULT_CONN_LIMIT),
                MHD_OPTION_CONNECTION_TIMEOUT,
                (unsigned int)(cfg->connection_timeout_s ? cfg->connection_timeout_s
                                                         : MS_HTTP_DEFAULT_CONN_TIMEOUT_S),
                /* room for a request head with many headers or query arguments: with the
                 * 32 KiB default, libmicrohttpd ran out of pool memory on ~500 query
                 * arguments and dropped the connection without an answer; with this it
                 * parses them and our own limits answer with a JSON 400 */
                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
                MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                MHD_OPTION_UNESCAPE_CALLBACK, identity_unescape, s,
                MHD_OPTION_END);
        if (!s->daemon) {
                char hostbuf[INET6_ADDRSTRLEN];
                const void *a = v6 ? (const void *)&((struct sockaddr_in6 *)(void *)&ss)->sin6_addr
                                   : (const void *)&((struct sockaddr_in *)(void *)&ss)->sin_addr;
                if (!inet_ntop(v6 ? AF_INET6 : AF_INET, a, hostbuf, sizeof(hostbuf)))
                        (void)str_copy(hostbuf, sizeof(hostbuf), "?");
                err_setc(err, ERR_SYSTEM, "http server: listen on %s%s%s:%u failed (address in "
                         "use, no permission, or bad option)", v6 ? "[" : "", hostbuf,
                         v6 ? "]" : "", (unsigned)cfg->port);
                goto fail;
        }
        const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
        s->port = di ? di->port : cfg->port;
        *out = s;
        return 0;
fail:
        ms_http_park_fini(s);
        free(s);
        return -1;
}

uint16_t ms_http_server_port(const ms_http_server *srv)
{
        return srv->port;
}

void ms_http_server_stop(ms_http_server *s)
{
        if (!s)
                return;
        /* Stop accepting first; existing connections keep being served during the grace. */
        MHD_socket lfd = MHD_quiesce_daemon(s->daemon);
        ms_http_park_shutdown(s);

        /* Let running requests (including the ones just woken) finish their answers. */
        int64_t until = clock_mono_ms() + s->grace_ms;
        pthread_mutex_lock(&s->park_lock);
        for (;;) {
                int64_t left = until - clock_mono_ms();
                if (atomic_load(&s->active) == 0 || left <= 0)
                        break;
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                ts.tv_nsec += (left < 50 ? left : 50) * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&s->idle_cond, &s->park_lock, &ts);
        }
        pthread_mutex_unlock(&s->park_lock);

        MHD_stop_daemon(s->daemon);
        s->daemon = NULL;
        if (lfd != MHD_INVALID_SOCKET)
                close(lfd);
        ms_http_park_fini(s);
        free(s);
}
