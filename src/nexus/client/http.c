/* client/http.c — see http.h.
 *
 * Loop integration (DESIGN D11): curl reports the sockets it wants watched through
 * CURLMOPT_SOCKETFUNCTION; each gets an nx_http_sock (a uv_poll_t) attached to the socket with
 * curl_multi_assign(). CURLMOPT_TIMERFUNCTION arms one uv_timer_t. Poll and timer callbacks
 * call curl_multi_socket_action() and then drain curl_multi_info_read() to finish requests.
 *
 * Handle lifetime: a uv handle is freed only in its close callback, and h itself only after
 * the close callbacks of the timer and of every poll have run (open_handles counts them), so
 * no frame on the stack and no curl socket entry ever points at freed memory. */
#include "client/http.h"

#include <curl/curl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "build_info.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/json.h"
#include "core/str.h"

#define NX_HTTP_PATH_MAX 4096
#define NX_HTTP_TOKEN_MAX 8192        /* a directive JWT is a few hundred bytes */
#define NX_HTTP_RETRY_AFTER_MAX INT32_MAX
#define NX_HTTP_TIMEOUT_MAX_MS (24LL * 3600 * 1000)

typedef struct nx_http_opts {
        char *base_url;           /* without trailing '/' */
        char *territory_hdr;      /* "X-Nexus-Territory-Id: <id>", or NULL */
        char *ca_file;
        char *client_cert;        /* both set, or both NULL */
        char *client_key;
        char *user_agent;
        bool insecure;
        int64_t timeout_ms;
        size_t max_response;
} nx_http_opts;

typedef struct nx_http_sock {
        uv_poll_t poll;           /* first: the close callback gets &poll */
        nx_http *h;
        curl_socket_t fd;
        bool closing;             /* uv_close() issued; freed in its callback */
        struct nx_http_sock *prev, *next;
} nx_http_sock;

struct nx_http_req {
        nx_http *h;               /* NULL for a *_sync request */
        CURL *easy;
        struct curl_slist *headers;
        char *url;
        char *body;               /* request body (POST) */
        buf resp;                 /* capped at opts.max_response */
        int64_t retry_after_s;
        bool over_cap;            /* write callback refused: body longer than the cap */
        bool oom;                 /* write callback refused: out of memory */
        bool json_required;       /* a 2xx body must be a JSON object (POST) */
        bool completing;          /* callback entered; cancel is a no-op */
        nx_http_cb cb;
        void *ctx;
        char errbuf[CURL_ERROR_SIZE];
        nx_http_req *prev, *next;
};

struct nx_http {
        uv_loop_t *loop;
        CURLM *multi;
        uv_timer_t timer;
        nx_http_opts opts;
        nx_http_req *reqs;        /* in flight */
        size_t inflight;
        nx_http_sock *socks;      /* polls not yet closing */
        unsigned open_handles;    /* timer + polls whose close callback has not run */
        bool in_timer_cb;
        bool closing;
        void (*done)(void *ctx);
        void *done_ctx;
};

/* ---- global ---- */

int nx_http_global_init(err_t *err)
{
        CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
        if (rc != CURLE_OK)
                return err_setc(err, ERR_INTERNAL, "curl_global_init: %s",
                                curl_easy_strerror(rc));
        const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
        if (!v || !(v->features & CURL_VERSION_SSL)) {
                curl_global_cleanup();
                return err_setc(err, ERR_INTERNAL, "libcurl %s has no TLS support",
                                v ? v->version : "?");
        }
        /* A synchronous resolver would block the loop thread for the whole DNS lookup. */
        if (!(v->features & CURL_VERSION_ASYNCHDNS)) {
                curl_global_cleanup();
                return err_setc(err, ERR_INTERNAL,
                                "libcurl %s resolves names synchronously (no AsynchDNS)",
                                v->version);
        }
        return 0;
}

void nx_http_global_cleanup(void)
{
        curl_global_cleanup();
}

/* ---- small helpers ---- */

/* Header-safe text: printable ASCII without space (a CR or LF would inject a header). */
static bool token_ok(const char *s, size_t max)
{
        size_t n = 0;
        for (; s[n]; n++) {
                unsigned char c = (unsigned char)s[n];
                if (c <= 0x20 || c >= 0x7f || n >= max)
                        return false;
        }
        return true;
}

static bool has_prefix_nocase(const char *s, const char *prefix)
{
        return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

static void opts_free(nx_http_opts *o)
{
        FREE_AND_NULL(o->base_url);
        FREE_AND_NULL(o->territory_hdr);
        FREE_AND_NULL(o->ca_file);
        FREE_AND_NULL(o->client_cert);
        FREE_AND_NULL(o->client_key);
        FREE_AND_NULL(o->user_agent);
}

static int dup_opt(char **dst, const char *src, err_t *err)
{
        *dst = NULL;
        if (!src || !src[0])
                return 0;
        *dst = strdup(src);
        if (!*dst)
                return err_errno(err, ENOMEM, "http client config");
        return 0;
}

static int opts_from_cfg(const nx_http_cfg *cfg, nx_http_opts *o, err_t *err)
{
        memset(o, 0, sizeof(*o));
        if (!cfg || !cfg->base_url || !cfg->base_url[0])
                return err_set(err, "server url is required");
        if (!has_prefix_nocase(cfg->base_url, "http://") &&
            !has_prefix_nocase(cfg->base_url, "https://"))
                return err_set(err, "server url \"%s\" must start with http:// or https://",
                               cfg->base_url);
        if (!token_ok(cfg->base_url, NX_HTTP_PATH_MAX))
                return err_set(err, "server url \"%s\" contains a space or control character",
                               cfg->base_url);
        if (cfg->territory_id && cfg->territory_id[0] &&
            !token_ok(cfg->territory_id, 256))
                return err_set(err, "territory id must be 1-256 printable ASCII characters "
                               "without spaces");
        if (cfg->user_agent && cfg->user_agent[0]) {
                for (const char *p = cfg->user_agent; *p; p++) {
                        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
                                return err_set(err, "user agent contains a control character");
                }
        }

        size_t n = strlen(cfg->base_url);
        while (n > 0 && cfg->base_url[n - 1] == '/')
                n--;
        o->base_url = strndup(cfg->base_url, n);
        if (!o->base_url)
                goto oom;
        if (cfg->territory_id && cfg->territory_id[0]) {
                /* spec §4.2: on every request, enroll included. */
                o->territory_hdr = str_dup_printf("X-Nexus-Territory-Id: %s", cfg->territory_id);
                if (!o->territory_hdr)
                        goto oom;
        }
        if (dup_opt(&o->ca_file, cfg->ca_file, err) < 0)
                goto fail;
        /* spec §4.2: a client certificate only when both cert and key are configured. */
        if (cfg->client_cert && cfg->client_cert[0] && cfg->client_key && cfg->client_key[0]) {
                if (dup_opt(&o->client_cert, cfg->client_cert, err) < 0 ||
                    dup_opt(&o->client_key, cfg->client_key, err) < 0)
                        goto fail;
        }
        if (cfg->user_agent && cfg->user_agent[0])
                o->user_agent = strdup(cfg->user_agent);
        else
                o->user_agent = strdup("nexusd/" CONDUITS_VERSION);
        if (!o->user_agent)
                goto oom;
        o->insecure = cfg->insecure_skip_verify;
        o->timeout_ms = cfg->default_timeout_ms > 0 ? cfg->default_timeout_ms
                                                    : NX_HTTP_DEFAULT_TIMEOUT_MS;
        o->max_response = cfg->max_response_bytes ? cfg->max_response_bytes
                                                  : NX_HTTP_DEFAULT_MAX_RESPONSE;
        return 0;
oom:
        err_errno(err, ENOMEM, "http client config");
fail:
        opts_free(o);
        return -1;
}

void nx_http_result_clear(nx_http_result *res)
{
        if (!res)
                return;
        json_decref(res->body);
        res->body = NULL;
}

static void result_init(nx_http_result *res)
{
        memset(res, 0, sizeof(*res));
        res->retry_after_s = -1;
}

char *nx_http_path_escape(const char *segment)
{
        static const char hex[] = "0123456789ABCDEF";
        if (!segment)
                segment = "";
        size_t n = strlen(segment);
        bool dots = (n == 1 && segment[0] == '.') ||
                    (n == 2 && segment[0] == '.' && segment[1] == '.');
        char *out = malloc(n * 3 + 1);
        if (!out)
                return NULL;
        size_t o = 0;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)segment[i];
                bool keep = !dots && ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                                      (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                                      c == '_' || c == '~');
                if (keep) {
                        out[o++] = (char)c;
                } else {
                        out[o++] = '%';
                        out[o++] = hex[c >> 4];
                        out[o++] = hex[c & 0x0f];
                }
        }
        out[o] = '\0';
        return out;
}

/* ---- one transfer ---- */

static size_t on_write(char *p, size_t size, size_t n, void *ud)
{
        nx_http_req *r = ud;
        size_t len = size * n;
        size_t room = r->resp.max - r->resp.len;
        if (len > room) {
                /* Keep what fits, for the excerpt of an HTTP error; returning less than len
                 * makes curl abort the transfer with CURLE_WRITE_ERROR. */
                if (room > 0 && buf_append(&r->resp, p, room) < 0)
                        r->oom = true;
                r->over_cap = true;
                return 0;
        }
        if (buf_append(&r->resp, p, len) < 0) {
                r->oom = true;
                return 0;
        }
        return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
        static const char name[] = "retry-after:";
        nx_http_req *r = ud;
        size_t len = size * n;
        /* A new status line (after a 1xx) starts a new header block. */
        if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
                r->retry_after_s = -1;
                return len;
        }
        if (len >= sizeof(name) - 1 && strncasecmp(p, name, sizeof(name) - 1) == 0) {
                size_t vlen = 0;
                const char *v = str_trim(p + sizeof(name) - 1, len - (sizeof(name) - 1), &vlen);
                int64_t secs = 0;
                /* spec §4.2: only a positive integer number of seconds; an HTTP-date, 0,
                 * a negative or an absurd value count as absent. */
                if (str_to_int64n(v, vlen, 1, NX_HTTP_RETRY_AFTER_MAX, &secs) == 0)
                        r->retry_after_s = secs;
                else
                        r->retry_after_s = -1;
        }
        return len;
}

static void req_free(nx_http_req *r)
{
        if (!r)
                return;
        if (r->easy)
                curl_easy_cleanup(r->easy);
        r->easy = NULL;
        curl_slist_free_all(r->headers);
        r->headers = NULL;
        FREE_AND_NULL(r->url);
        FREE_AND_NULL(r->body);
        buf_free(&r->resp);
        free(r);
}

static int add_header(nx_http_req *r, const char *line, err_t *err)
{
        struct curl_slist *l = curl_slist_append(r->headers, line);
        if (!l)
                return err_errno(err, ENOMEM, "request header");
        r->headers = l;
        return 0;
}

#define SETOPT(opt, val) do { \
        CURLcode c_ = curl_easy_setopt(r->easy, opt, val); \
        if (c_ != CURLE_OK) { \
                err_setc(err, ERR_INTERNAL, "curl option %s: %s", #opt, \
                         curl_easy_strerror(c_)); \
                goto fail; \
        } \
} while (0)

/* Builds an easy handle for POST (post=true) or GET of path. */
static nx_http_req *req_new(const nx_http_opts *o, bool post, const char *path,
                            const json_t *body, const char *bearer, int64_t timeout_ms,
                            err_t *err)
{
        if (!path || path[0] != '/') {
                err_set(err, "request path \"%s\" must start with '/'", path ? path : "(null)");
                return NULL;
        }
        if (!token_ok(path, NX_HTTP_PATH_MAX)) {
                err_set(err, "request path must be at most %d printable ASCII characters "
                        "without spaces (escape ids with nx_http_path_escape)",
                        NX_HTTP_PATH_MAX);
                return NULL;
        }
        if (bearer && bearer[0] && !token_ok(bearer, NX_HTTP_TOKEN_MAX)) {
                err_set(err, "bearer token must be at most %d printable ASCII characters "
                        "without spaces", NX_HTTP_TOKEN_MAX);
                return NULL;
        }

        nx_http_req *r = calloc(1, sizeof(*r));
        if (!r) {
                err_errno(err, ENOMEM, "http request");
                return NULL;
        }
        r->resp = BUF_INIT(o->max_response);
        r->retry_after_s = -1;
        r->json_required = post;

        r->url = str_dup_printf("%s%s", o->base_url, path);
        if (!r->url)
                goto oom;
        if (post) {
                r->body = body ? json_dump_compact(body) : strdup("{}");
                if (!r->body) {
                        err_set(err, "encode request body as JSON");
                        goto fail;
                }
                if (add_header(r, "Content-Type: application/json", err) < 0)
                        goto fail;
        }
        if (add_header(r, "Accept: application/json", err) < 0)
                goto fail;
        /* No "Expect: 100-continue" round trip before a large body: it costs latency and the
         * server never refuses on headers alone. */
        if (add_header(r, "Expect:", err) < 0)
                goto fail;
        if (o->territory_hdr && add_header(r, o->territory_hdr, err) < 0)
                goto fail;
        if (bearer && bearer[0]) {
                _cleanup_free_ char *auth = str_dup_printf("Authorization: Bearer %s", bearer);
                if (!auth)
                        goto oom;
                if (add_header(r, auth, err) < 0)
                        goto fail;
        }

        r->easy = curl_easy_init();
        if (!r->easy) {
                err_setc(err, ERR_INTERNAL, "curl_easy_init failed");
                goto fail;
        }
        if (timeout_ms <= 0)
                timeout_ms = o->timeout_ms;
        if (timeout_ms > NX_HTTP_TIMEOUT_MAX_MS)
                timeout_ms = NX_HTTP_TIMEOUT_MAX_MS;

        SETOPT(CURLOPT_PRIVATE, (void *)r);
        SETOPT(CURLOPT_ERRORBUFFER, r->errbuf);
        SETOPT(CURLOPT_URL, r->url);
        /* Send the path as built: no dot-segment squashing ("/x/../y"). */
        SETOPT(CURLOPT_PATH_AS_IS, 1L);
        SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
        SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
        SETOPT(CURLOPT_PROXY, "");       /* ignore http_proxy & co. from the environment */
        SETOPT(CURLOPT_NOSIGNAL, 1L);    /* no SIGALRM in a threaded daemon */
        SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
        SETOPT(CURLOPT_TCP_NODELAY, 1L);
        /* Long polls sit idle for up to 25 s behind NATs: keep the mapping alive. */
        SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
        SETOPT(CURLOPT_TCP_KEEPIDLE, 30L);
        SETOPT(CURLOPT_TCP_KEEPINTVL, 15L);
        SETOPT(CURLOPT_TIMEOUT_MS, (long)timeout_ms);
        SETOPT(CURLOPT_USERAGENT, o->user_agent);
        SETOPT(CURLOPT_HTTPHEADER, r->headers);
        SETOPT(CURLOPT_WRITEFUNCTION, on_write);
        SETOPT(CURLOPT_WRITEDATA, (void *)r);
        SETOPT(CURLOPT_HEADERFUNCTION, on_header);
        SETOPT(CURLOPT_HEADERDATA, (void *)r);
        /* Refuse early when Content-Length already says the body is over the cap; on_write
         * enforces it for chunked bodies. */
        SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->max_response);
        if (post) {
                SETOPT(CURLOPT_POST, 1L);
                SETOPT(CURLOPT_POSTFIELDS, r->body);
                SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(r->body));
        } else {
                SETOPT(CURLOPT_HTTPGET, 1L);
        }
        /* spec §4.2: TLS >= 1.2; tls.ca_file as the only trust root when set. */
        SETOPT(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
        if (o->ca_file) {
                SETOPT(CURLOPT_CAINFO, o->ca_file);
                SETOPT(CURLOPT_CAPATH, (char *)NULL);
        }
        if (o->insecure) {
                SETOPT(CURLOPT_SSL_VERIFYPEER, 0L);
                SETOPT(CURLOPT_SSL_VERIFYHOST, 0L);
        } else {
                SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
                SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
        }
        if (o->client_cert && o->client_key) {
                SETOPT(CURLOPT_SSLCERT, o->client_cert);
                SETOPT(CURLOPT_SSLCERTTYPE, "PEM");
                SETOPT(CURLOPT_SSLKEY, o->client_key);
                SETOPT(CURLOPT_SSLKEYTYPE, "PEM");
        }
        return r;
oom:
        err_errno(err, ENOMEM, "http request");
fail:
        req_free(r);
        return NULL;
}

/* One line of at most NX_HTTP_ERROR_EXCERPT bytes of body for an error message: control
 * characters become spaces, a UTF-8 sequence is never cut in half, trailing space dropped. */
static void body_excerpt(const char *data, size_t len, char *out, size_t outsz)
{
        size_t cut = len < NX_HTTP_ERROR_EXCERPT ? len : NX_HTTP_ERROR_EXCERPT;
        if (cut < len) {
                while (cut > 0 && ((unsigned char)data[cut] & 0xc0) == 0x80)
                        cut--;
        }
        if (cut >= outsz)
                cut = outsz - 1;
        for (size_t i = 0; i < cut; i++) {
                unsigned char c = (unsigned char)data[i];
                out[i] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
        }
        while (cut > 0 && out[cut - 1] == ' ')
                cut--;
        out[cut] = '\0';
}

/* Turns a finished transfer into a result (spec §4.2). res->body is a new reference. */
static void result_build(nx_http_req *r, CURLcode rc, nx_http_result *res)
{
        result_init(res);
        long code = 0;
        if (curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK)
                code = 0;
        bool over_cap = r->over_cap || rc == CURLE_FILESIZE_EXCEEDED;

        if (r->oom) {
                str_copy(res->error, sizeof(res->error), "out of memory reading response");
                return;
        }
        if ((rc != CURLE_OK && !over_cap) || code <= 0) {
                res->timed_out = rc == CURLE_OPERATION_TIMEDOUT;
                const char *why = r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc);
                if (rc == CURLE_OK)
                        why = "no HTTP status in response";
                str_copy(res->error, sizeof(res->error), why);
                return;
        }
        res->retry_after_s = r->retry_after_s;

        if (code < 200 || code > 299) {
                /* An HTTP error keeps its status even when its body was too long to read. */
                char ex[NX_HTTP_ERROR_EXCERPT + 1];
                body_excerpt(r->resp.data ? r->resp.data : "", r->resp.len, ex, sizeof(ex));
                if (over_cap && !ex[0])   /* refused on Content-Length: nothing was read */
                        (void)str_printf(ex, sizeof(ex), "(body exceeds %zu bytes)",
                                         r->resp.max);
                res->status = code;
                if (!over_cap && r->resp.len > 0) {
                        err_t jerr = ERR_INIT;
                        res->body = json_parse(r->resp.data, r->resp.len, true, &jerr);
                }
                if (res->retry_after_s > 0)
                        (void)str_printf(res->error, sizeof(res->error),
                                         "HTTP %ld (retry after %llds): %s", code,
                                         (long long)res->retry_after_s, ex);
                else
                        (void)str_printf(res->error, sizeof(res->error), "HTTP %ld: %s",
                                         code, ex);
                return;
        }
        if (over_cap) {
                (void)str_printf(res->error, sizeof(res->error),
                                 "response body exceeds %zu bytes (HTTP %ld)",
                                 r->resp.max, code);
                return;
        }
        if (r->resp.len == 0) {
                /* spec §4.2: an empty 2xx body is success with a zero-valued response. */
                res->ok = true;
                res->status = code;
                return;
        }
        err_t jerr = ERR_INIT;
        res->body = json_parse(r->resp.data, r->resp.len, true, &jerr);
        if (!res->body && r->json_required) {
                (void)str_printf(res->error, sizeof(res->error), "decode response: %s",
                                 jerr.msg);
                return;
        }
        res->ok = true;
        res->status = code;
}

/* ---- multi + libuv ---- */

static void handle_closed(nx_http *h)
{
        h->open_handles--;
        if (!h->closing || h->open_handles > 0)
                return;
        void (*done)(void *) = h->done;
        void *ctx = h->done_ctx;
        opts_free(&h->opts);
        free(h);
        if (done)
                done(ctx);
}

static void on_sock_closed(uv_handle_t *handle)
{
        nx_http_sock *sk = handle->data;
        nx_http *h = sk->h;
        free(sk);
        handle_closed(h);
}

static void sock_close(nx_http_sock *sk)
{
        if (sk->closing)
                return;
        sk->closing = true;
        nx_http *h = sk->h;
        if (sk->prev)
                sk->prev->next = sk->next;
        else
                h->socks = sk->next;
        if (sk->next)
                sk->next->prev = sk->prev;
        sk->prev = sk->next = NULL;
        /* uv_close stops polling and drops the fd from epoll now, so curl may close the fd
         * and reuse its number at once; the memory lives until on_sock_closed. */
        uv_close((uv_handle_t *)&sk->poll, on_sock_closed);
}

static void req_complete(nx_http_req *r, CURLcode rc, bool canceled);

static void multi_drain(nx_http *h)
{
        CURLMsg *msg;
        int left = 0;
        while (!h->closing && (msg = curl_multi_info_read(h->multi, &left))) {
                if (msg->msg != CURLMSG_DONE)
                        continue;
                /* msg is invalid once the handle is removed: copy what we need. */
                CURL *easy = msg->easy_handle;
                CURLcode rc = msg->data.result;
                char *priv = NULL;
                if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv) != CURLE_OK || !priv) {
                        curl_multi_remove_handle(h->multi, easy);
                        continue;
                }
                req_complete((nx_http_req *)(void *)priv, rc, false);
        }
}

static void on_poll(uv_poll_t *p, int status, int events)
{
        nx_http_sock *sk = p->data;
        nx_http *h = sk->h;
        curl_socket_t fd = sk->fd;
        if (h->closing)
                return;
        int flags = 0;
        if (status < 0) {
                flags = CURL_CSELECT_ERR;
        } else {
                if (events & UV_READABLE)
                        flags |= CURL_CSELECT_IN;
                if (events & UV_WRITABLE)
                        flags |= CURL_CSELECT_OUT;
        }
        int running = 0;
        /* sk may be closed inside (CURL_POLL_REMOVE); only h and fd are used from here on. */
        curl_multi_socket_action(h->multi, fd, flags, &running);
        multi_drain(h);
}

static void on_timer(uv_timer_t *t)
{
        nx_http *h = t->data;
        if (h->closing)
                return;
        int running = 0;
        h->in_timer_cb = true;
        curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        h->in_timer_cb = false;
        multi_drain(h);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
        nx_http *h = userp;
        (void)multi;
        if (h->closing)
                return 0;
        if (timeout_ms < 0) {
                uv_timer_stop(&h->timer);
                return 0;
        }
        /* curl forbids calling socket_action from this callback; 0 means "as soon as
         * possible", which the next loop iteration is. Re-armed at 0 from inside on_timer,
         * libuv 1.44 would run it again in the same timer phase: use 1 ms there. */
        uint64_t ms = (uint64_t)timeout_ms;
        if (ms == 0 && h->in_timer_cb)
                ms = 1;
        return uv_timer_start(&h->timer, on_timer, ms, 0) < 0 ? -1 : 0;
}

static int on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
        nx_http *h = userp;
        nx_http_sock *sk = socketp;
        (void)easy;
        if (what == CURL_POLL_REMOVE) {
                if (sk) {
                        /* During curl_multi_cleanup() the multi is half torn down: only
                         * touch our own handle then. */
                        if (!h->closing)
                                curl_multi_assign(h->multi, s, NULL);
                        sock_close(sk);
                }
                return 0;
        }
        if (h->closing)
                return 0;
        if (!sk) {
                sk = calloc(1, sizeof(*sk));
                if (!sk)
                        return -1;
                if (uv_poll_init_socket(h->loop, &sk->poll, s) < 0) {
                        free(sk);       /* not registered with the loop on failure */
                        return -1;
                }
                sk->poll.data = sk;
                sk->h = h;
                sk->fd = s;
                sk->next = h->socks;
                if (h->socks)
                        h->socks->prev = sk;
                h->socks = sk;
                h->open_handles++;
                if (curl_multi_assign(h->multi, s, sk) != CURLM_OK) {
                        sock_close(sk);
                        return -1;
                }
        }
        int events = 0;
        if (what & CURL_POLL_IN)
                events |= UV_READABLE;
        if (what & CURL_POLL_OUT)
                events |= UV_WRITABLE;
        int rc = events ? uv_poll_start(&sk->poll, events, on_poll) : uv_poll_stop(&sk->poll);
        if (rc < 0) {
                curl_multi_assign(h->multi, s, NULL);
                sock_close(sk);
                return -1;      /* curl fails the transfers on this socket */
        }
        return 0;
}

static void req_complete(nx_http_req *r, CURLcode rc, bool canceled)
{
        nx_http *h = r->h;
        r->completing = true;
        if (r->prev)
                r->prev->next = r->next;
        else
                h->reqs = r->next;
        if (r->next)
                r->next->prev = r->prev;
        r->prev = r->next = NULL;
        h->inflight--;
        curl_multi_remove_handle(h->multi, r->easy);

        nx_http_result res;
        if (canceled) {
                result_init(&res);
                res.canceled = true;
                str_copy(res.error, sizeof(res.error), "canceled");
        } else {
                result_build(r, rc, &res);
        }
        if (r->cb)
                r->cb(r->ctx, &res);
        nx_http_result_clear(&res);
        req_free(r);
}

int nx_http_new(uv_loop_t *loop, const nx_http_cfg *cfg, nx_http **out, err_t *err)
{
        *out = NULL;
        if (!loop)
                return err_set(err, "http client needs a loop");
        nx_http *h = calloc(1, sizeof(*h));
        if (!h)
                return err_errno(err, ENOMEM, "http client");
        if (opts_from_cfg(cfg, &h->opts, err) < 0) {
                free(h);
                return -1;
        }
        h->loop = loop;
        h->multi = curl_multi_init();
        if (!h->multi) {
                opts_free(&h->opts);
                free(h);
                return err_setc(err, ERR_INTERNAL, "curl_multi_init failed");
        }
        if (curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
            curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, (void *)h) != CURLM_OK ||
            curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
            curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, (void *)h) != CURLM_OK) {
                curl_multi_cleanup(h->multi);
                opts_free(&h->opts);
                free(h);
                return err_setc(err, ERR_INTERNAL, "curl multi callbacks refused");
        }
        int rc = uv_timer_init(loop, &h->timer);
        if (rc < 0) {
                curl_multi_cleanup(h->multi);
                opts_free(&h->opts);
                free(h);
                return err_setc(err, ERR_INTERNAL, "uv_timer_init: %s", uv_strerror(rc));
        }
        h->timer.data = h;
        h->open_handles = 1;
        *out = h;
        return 0;
}

nx_http_req *nx_http_post(nx_http *h, const char *path, const json_t *body, const char *bearer,
                          int64_t timeout_ms, nx_http_cb cb, void *ctx, err_t *err)
{
        if (h->closing) {
                err_set(err, "http client is closing");
                return NULL;
        }
        nx_http_req *r = req_new(&h->opts, true, path, body, bearer, timeout_ms, err);
        if (!r)
                return NULL;
        r->h = h;
        r->cb = cb;
        r->ctx = ctx;
        CURLMcode mc = curl_multi_add_handle(h->multi, r->easy);
        if (mc != CURLM_OK) {
                err_setc(err, ERR_INTERNAL, "start request: %s", curl_multi_strerror(mc));
                req_free(r);
                return NULL;
        }
        r->next = h->reqs;
        if (h->reqs)
                h->reqs->prev = r;
        h->reqs = r;
        h->inflight++;
        return r;
}

void nx_http_cancel(nx_http_req *r)
{
        if (!r || r->completing || !r->h)
                return;
        req_complete(r, CURLE_OK, true);
}

size_t nx_http_inflight(const nx_http *h)
{
        return h ? h->inflight : 0;
}

static void on_timer_closed(uv_handle_t *handle)
{
        handle_closed(handle->data);
}

void nx_http_close(nx_http *h, void (*done)(void *ctx), void *ctx)
{
        if (!h || h->closing)
                return;
        h->closing = true;
        h->done = done;
        h->done_ctx = ctx;
        /* Callbacks may cancel other requests: always take the current head. */
        while (h->reqs)
                req_complete(h->reqs, CURLE_OK, true);
        /* Close our polls before curl closes the sockets, so no epoll registration outlives
         * its fd; REMOVE callbacks from the cleanup then find them already closing. */
        while (h->socks)
                sock_close(h->socks);
        curl_multi_cleanup(h->multi);
        h->multi = NULL;
        uv_close((uv_handle_t *)&h->timer, on_timer_closed);
}

/* ---- blocking variants ---- */

static const char *http_err_code(long status)
{
        switch (status) {
        case 400:
        case 422:
                return ERR_INVALID;
        case 401:
                return ERR_UNAUTHORIZED;
        case 403:
                return ERR_FORBIDDEN;
        case 404:
                return ERR_NOT_FOUND;
        case 409:
                return ERR_CONFLICT;
        case 413:
                return ERR_TOO_LARGE;
        default:
                return ERR_SYSTEM;
        }
}

static int sync_request(const nx_http_cfg *cfg, bool post, const char *path,
                        const json_t *body, const char *bearer, int64_t timeout_ms,
                        nx_http_result *out, err_t *err)
{
        result_init(out);
        nx_http_opts o;
        if (opts_from_cfg(cfg, &o, err) < 0) {
                str_copy(out->error, sizeof(out->error), err->msg);
                return -1;
        }
        nx_http_req *r = req_new(&o, post, path, body, bearer, timeout_ms, err);
        if (!r) {
                opts_free(&o);
                str_copy(out->error, sizeof(out->error), err->msg);
                return -1;
        }
        CURLcode rc = curl_easy_perform(r->easy);
        result_build(r, rc, out);
        req_free(r);
        opts_free(&o);
        if (out->ok)
                return 0;
        return err_setc(err, http_err_code(out->status), "%s %s: %s", post ? "POST" : "GET",
                        path, out->error);
}

int nx_http_post_sync(const nx_http_cfg *cfg, const char *path, const json_t *body,
                      const char *bearer, int64_t timeout_ms, nx_http_result *out, err_t *err)
{
        return sync_request(cfg, true, path, body, bearer, timeout_ms, out, err);
}

int nx_http_get_sync(const nx_http_cfg *cfg, const char *path, int64_t timeout_ms,
                     nx_http_result *out, err_t *err)
{
        return sync_request(cfg, false, path, NULL, NULL, timeout_ms, out, err);
}
