/* http/request.c — the request object seen by handlers: accessors, the response functions,
 * extra headers, rate-limit answers, and the per-request metrics record (see server.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/cleanup.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "http/server_impl.h"

static const char *method_label(const char *m)
{
        static const char *const known[] = {
                "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
        };
        /* Client-chosen method strings must not create metric series. */
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
                if (m && strcmp(m, known[i]) == 0)
                        return known[i];
        return "other";
}

/* ------------------------------------------------------------ responses */

static void record(ms_http_req *req, unsigned status)
{
        ms_http_server *s = req->srv;
        int64_t elapsed = clock_mono_ms() - req->start_mono_ms;
        if (s->m_requests) {
                char st[16];
                (void)snprintf(st, sizeof(st), "%u", status);
                const char *vals[] = { req->route_label, method_label(req->method), st };
                (void)metric_inc(s->m_requests, vals, 1);
        }
        if (s->m_duration) {
                const char *vals[] = { req->route_label };
                (void)metric_observe(s->m_duration, vals, (double)elapsed / 1000.0);
        }
        if (log_enabled(LOG_LEVEL_DEBUG))
                log_debug("http request", LOG_STR("method", req->method),
                          LOG_STR("path", req->path), LOG_INT("status", status),
                          LOG_INT("duration_ms", elapsed), LOG_STR("peer", req->peer));
}

static bool header_name_ok(const char *n)
{
        if (!n || !*n || strlen(n) > 64)
                return false;
        for (const char *p = n; *p; p++) {
                char c = *p;
                bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c);
                if (!ok)
                        return false;
        }
        return true;
}

static bool header_value_ok(const char *v)
{
        if (!v || strlen(v) > 4096)
                return false;
        /* CR/LF would let a value smuggle extra headers or a second response. */
        return strpbrk(v, "\r\n") == NULL;
}

int ms_http_add_header(ms_http_req *req, const char *name, const char *value)
{
        if (!req || req->status || req->nheaders == MS_HTTP_MAX_EXTRA_HEADERS ||
            !header_name_ok(name) || !header_value_ok(value))
                return -1;
        if (strcasecmp(name, "Content-Type") == 0 || strcasecmp(name, "Content-Length") == 0)
                return -1;      /* set by the respond functions / libmicrohttpd */
        char *n = strdup(name), *v = strdup(value);
        if (!n || !v) {
                free(n);
                free(v);
                return -1;
        }
        req->headers[req->nheaders++] = (extra_header){ .name = n, .value = v };
        return 0;
}

/* Queues data (ownership taken: freed on every path). */
static int queue_take(ms_http_req *req, unsigned status, const char *ctype, void *data,
                      size_t len)
{
        if (!req || !req->in_callback || req->status || status < 100 || status > 599) {
                free(data);
                return -1;
        }
        static char empty[1];
        struct MHD_Response *resp;
        if (len == 0) {
                free(data);
                resp = MHD_create_response_from_buffer(0, empty, MHD_RESPMEM_PERSISTENT);
        } else {
                resp = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
                if (!resp)
                        free(data);
        }
        if (!resp) {
                log_error("http: cannot create a response", LOG_STR("path", req->path));
                return -1;
        }
        int ok = 1;
        if (ctype)
                ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype) == MHD_YES;
        for (size_t i = 0; ok && i < req->nheaders; i++)
                ok = MHD_add_response_header(resp, req->headers[i].name,
                                             req->headers[i].value) == MHD_YES;
        if (ok)
                ok = MHD_queue_response(req->conn, status, resp) == MHD_YES;
        MHD_destroy_response(resp);
        if (!ok) {
                log_error("http: response refused", LOG_STR("path", req->path),
                          LOG_INT("status", status));
                return -1;
        }
        req->status = (int)status;
        record(req, status);
        return (int)status;
}

int ms_http_respond_take(ms_http_req *req, unsigned status, const char *content_type, void *data,
                         size_t len)
{
        return queue_take(req, status, content_type, data, len);
}

int ms_http_respond_bytes(ms_http_req *req, unsigned status, const char *content_type,
                          const void *data, size_t len)
{
        void *copy = NULL;
        if (len) {
                if (!data || !(copy = malloc(len)))
                        return -1;
                memcpy(copy, data, len);
        }
        return queue_take(req, status, content_type, copy, len);
}

int ms_http_respond_text(ms_http_req *req, unsigned status, const char *content_type,
                         const char *text)
{
        return ms_http_respond_bytes(req, status, content_type, text ? text : "",
                                     text ? strlen(text) : 0);
}

int ms_http_respond_json(ms_http_req *req, unsigned status, json_t *body)
{
        if (!body)
                return ms_http_respond_error(req, 500, ERR_INTERNAL, "internal error");
        char *text = json_dump_compact(body);
        json_decref(body);
        if (!text)
                return ms_http_respond_error(req, 500, ERR_INTERNAL, "internal error");
        return queue_take(req, status, MS_HTTP_JSON_TYPE, text, strlen(text));
}

static int respond_error_v(ms_http_req *req, unsigned status, const char *code, const char *fmt,
                           va_list ap) __attribute__((format(printf, 4, 0)));
static int respond_error_v(ms_http_req *req, unsigned status, const char *code, const char *fmt,
                           va_list ap)
{
        char detail[1024];
        int n = vsnprintf(detail, sizeof(detail), fmt, ap);
        if (n < 0)
                detail[0] = '\0';
        json_t *j = json_pack("{s:s, s:s}", "error", code ? code : ERR_INTERNAL, "detail",
                              detail);
        if (!j) {
                /* A detail that is not UTF-8 is refused by jansson: keep the code at least. */
                j = json_pack("{s:s, s:s}", "error", code ? code : ERR_INTERNAL, "detail", "");
                if (!j)
                        return -1;
        }
        char *text = json_dump_compact(j);
        json_decref(j);
        if (!text)
                return -1;
        return queue_take(req, status, MS_HTTP_JSON_TYPE, text, strlen(text));
}

int ms_http_respond_error(ms_http_req *req, unsigned status, const char *code, const char *fmt,
                          ...)
{
        va_list ap;
        va_start(ap, fmt);
        int rc = respond_error_v(req, status, code, fmt, ap);
        va_end(ap);
        return rc;
}

int ms_http_respond_rate_limited(ms_http_req *req, const ms_ratelimit_rule *rule)
{
        char ra[16];
        (void)snprintf(ra, sizeof(ra), "%u", rule->period_s);
        /* spec §3.1.4: Retry-After is the full period, not the time remaining. */
        if (ms_http_add_header(req, "Retry-After", ra) < 0)
                return -1;
        return ms_http_respond_error(req, 429, "rate_limited", "too many requests");
}

bool ms_http_rate_refused(ms_http_req *req, const ms_ratelimit_rule *rule, const char *key)
{
        ms_ratelimit_verdict v = ms_ratelimit_hit(req->srv->ratelimit, rule, key, NULL);
        if (v == MS_RATELIMIT_BAD_KEY)
                log_warn("rate limit key refused", LOG_STR("rule", rule->name),
                         LOG_STR("path", req->path));
        return v != MS_RATELIMIT_ALLOW;
}

int ms_http_rate_limit(ms_http_req *req, const char *key)
{
        const ms_http_route *r = req ? req->match.route : NULL;
        if (req)
                req->rate_checked = true;
        /* Peer-keyed rules were counted before the handler: never count a request twice. */
        if (!r || !r->rate_rule || r->rate_key != MS_HTTP_RATE_KEY_CALLER || !req->srv->ratelimit)
                return 0;
        if (!ms_http_rate_refused(req, r->rate_rule, key))
                return 0;
        return ms_http_respond_rate_limited(req, r->rate_rule) < 0 ? -1 : 429;
}

/* ------------------------------------------------------------- accessors */

const char *ms_http_req_method(const ms_http_req *req)
{
        return req->method;
}

const char *ms_http_req_path(const ms_http_req *req)
{
        return req->path;
}

const char *ms_http_req_peer(const ms_http_req *req)
{
        return req->peer;
}

const ms_http_route *ms_http_req_route(const ms_http_req *req)
{
        return req->match.route;
}

ms_http_server *ms_http_req_server(const ms_http_req *req)
{
        return req->srv;
}

int64_t ms_http_req_start_ms(const ms_http_req *req)
{
        return req->start_unix_ms;
}

int64_t ms_http_req_elapsed_ms(const ms_http_req *req)
{
        return clock_mono_ms() - req->start_mono_ms;
}

void *ms_http_req_auth(const ms_http_req *req)
{
        return req->auth;
}

int ms_http_req_status(const ms_http_req *req)
{
        return req->status;
}

int ms_http_req_fd(const ms_http_req *req)
{
        return req->fd;
}

const char *ms_http_req_param(const ms_http_req *req, const char *name)
{
        return ms_http_match_param(&req->match, name);
}

const char *ms_http_req_query(const ms_http_req *req, const char *name)
{
        for (size_t i = 0; i < req->nquery; i++)
                if (strcmp(req->qname[i], name) == 0)
                        return req->qvalue[i];
        return NULL;
}

size_t ms_http_req_query_count(const ms_http_req *req)
{
        return req->nquery;
}

int ms_http_req_query_at(const ms_http_req *req, size_t i, const char **name, const char **value)
{
        if (i >= req->nquery)
                return -1;
        if (name)
                *name = req->qname[i];
        if (value)
                *value = req->qvalue[i];
        return 0;
}

const char *ms_http_req_header(const ms_http_req *req, const char *name)
{
        if (!name)
                return NULL;
        return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *ms_http_req_body(const ms_http_req *req, size_t *len)
{
        if (len)
                *len = req->body.len;
        return req->body.data ? req->body.data : "";
}

void ms_http_req_set_auth(ms_http_req *req, void *auth, void (*free_fn)(void *))
{
        if (req->auth && req->auth_free && req->auth != auth)
                req->auth_free(req->auth);
        req->auth = auth;
        req->auth_free = free_fn;
}

int ms_http_req_on_done(ms_http_req *req, void (*fn)(void *), void *arg)
{
        if (!fn || req->nhooks == MS_HTTP_MAX_DONE_HOOKS)
                return -1;
        req->hooks[req->nhooks++] = (done_hook){ .fn = fn, .arg = arg };
        return 0;
}

void ms_http_req_free(ms_http_req *req)
{
        for (size_t i = req->nhooks; i > 0; i--)
                req->hooks[i - 1].fn(req->hooks[i - 1].arg);
        if (req->auth && req->auth_free)
                req->auth_free(req->auth);
        for (size_t i = 0; i < req->nquery; i++) {
                FREE_AND_NULL(req->qname[i]);
                FREE_AND_NULL(req->qvalue[i]);
        }
        for (size_t i = 0; i < req->nheaders; i++) {
                FREE_AND_NULL(req->headers[i].name);
                FREE_AND_NULL(req->headers[i].value);
        }
        FREE_AND_NULL(req->park.topic);
        buf_free(&req->body);
        free(req);
}
