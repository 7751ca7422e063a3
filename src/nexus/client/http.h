/* client/http.h — nexusd's control-plane HTTP client (spec nexus §4.2, DESIGN D11).
 *
 * Asynchronous requests run on the daemon's libuv loop through libcurl's multi *socket* API:
 * curl tells us which sockets to watch (one uv_poll_t each) and when to wake it (one
 * uv_timer_t); nothing here blocks the loop thread, and connections are kept alive and reused
 * (HTTP/1.1, TCP_NODELAY). A blocking variant (nx_http_post_sync / nx_http_get_sync) serves
 * `nexusd -enroll-token` and `-doctor`, which run before any loop exists.
 *
 * Every request carries Content-Type/Accept: application/json, X-Nexus-Territory-Id when a
 * territory id is configured, and Authorization: Bearer when a bearer token is given. TLS is
 * at least 1.2; when ca_file is set it is the only trust root; a client certificate is
 * presented only when both client_cert and client_key are set. Proxies from the environment
 * (http_proxy, …) are ignored: the daemon talks to its server directly. Redirects are not
 * followed.
 *
 * Responses are read up to max_response_bytes (4 MiB by default); a longer body aborts the
 * transfer. Refused: a path not starting with '/', and a path, bearer token or territory id
 * containing bytes outside printable ASCII (a CR/LF would inject a header). Directive ids
 * taken from leases must be escaped with nx_http_path_escape() before they go into a path
 * (spec §4.2 ADVISED).
 *
 * Threading: call nx_http_global_init() once from main() before any thread starts. An
 * nx_http belongs to its loop: every function except the *_sync ones must be called on the
 * loop thread. The *_sync functions may run on any thread (each call has its own handle). */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/error.h"

#define NX_HTTP_DEFAULT_TIMEOUT_MS 25000             /* spec §4.2: poll.long_poll_timeout */
#define NX_HTTP_DEFAULT_MAX_RESPONSE (4u << 20)      /* spec §4.2: body read up to 4 MiB */
#define NX_HTTP_ERROR_EXCERPT 200                    /* body bytes quoted in "HTTP <code>: …" */

typedef struct nx_http_cfg {
        const char *base_url;          /* "https://host[:port][/prefix]"; trailing '/' dropped */
        const char *territory_id;      /* NULL or "" = no X-Nexus-Territory-Id header */
        const char *ca_file;           /* NULL = system trust roots */
        const char *client_cert;       /* PEM; used only together with client_key */
        const char *client_key;        /* PEM */
        bool insecure_skip_verify;     /* no peer/host verification (spec §4.2, dev only) */
        int64_t default_timeout_ms;    /* whole-request timeout when a call passes <= 0;
                                        * <= 0 here means NX_HTTP_DEFAULT_TIMEOUT_MS */
        size_t max_response_bytes;     /* 0 = NX_HTTP_DEFAULT_MAX_RESPONSE */
        const char *user_agent;        /* NULL = "nexusd/<version>" */
} nx_http_cfg;

typedef struct nx_http_result {
        /* true for a 2xx whose body is empty (body NULL) or a JSON object (body set). */
        bool ok;
        /* The HTTP status when ok, or of a non-2xx response (an "HTTP error", spec §4.7);
         * 0 for every other failure: connection, TLS, timeout, reset, body over the cap,
         * undecodable 2xx body, cancellation. The §4.7 retry rules can be applied to
         * (status, ok) alone. */
        long status;
        /* Parsed JSON object: the response of an ok call, or the error body of a non-2xx
         * response when it is a JSON object; NULL otherwise. In a callback it is borrowed
         * (json_incref() to keep it); from a *_sync call it is owned (nx_http_result_clear). */
        json_t *body;
        int64_t retry_after_s;         /* Retry-After as positive integer seconds; -1 absent
                                        * (HTTP-date form ignored, spec §4.2) */
        bool timed_out;                /* the whole-request timeout expired */
        bool canceled;                 /* nx_http_cancel() or nx_http_close() */
        /* "" when ok; else one line: the transport error, "timeout …", "canceled",
         * "response body exceeds N bytes", "decode response: …", or
         * "HTTP <code>: <first 200 bytes of body>" / "HTTP <code> (retry after <n>s): …". */
        char error[256];
} nx_http_result;

typedef struct nx_http nx_http;
typedef struct nx_http_req nx_http_req;

/* Called exactly once per request that nx_http_post() accepted: on completion, on
 * nx_http_cancel() or on nx_http_close(). It runs on the loop thread and may start new
 * requests, cancel other requests or close the client. The request handle is invalid as soon
 * as the callback has been entered. */
typedef void (*nx_http_cb)(void *ctx, const nx_http_result *res);

/* curl_global_init() plus a check that libcurl has TLS and an asynchronous resolver (a
 * blocking resolver would stall the loop thread). Call once from main() before any thread
 * starts; pair with nx_http_global_cleanup() at exit. Returns 0 or -1 with err. */
int nx_http_global_init(err_t *err);
void nx_http_global_cleanup(void);

/* Creates a client on loop. cfg is copied. Returns 0 or -1 with err (invalid base_url or
 * territory id, ENOMEM). */
int nx_http_new(uv_loop_t *loop, const nx_http_cfg *cfg, nx_http **out, err_t *err);

/* Starts POST <base_url><path> with body serialised compactly (NULL sends {}), bearer NULL or
 * "" for no Authorization header, timeout_ms <= 0 for the configured default. Returns a
 * handle for nx_http_cancel(), or NULL with err (invalid path or bearer, client closing,
 * ENOMEM) — then cb is never called. cb may be NULL (fire and forget). */
nx_http_req *nx_http_post(nx_http *h, const char *path, const json_t *body, const char *bearer,
                          int64_t timeout_ms, nx_http_cb cb, void *ctx, err_t *err);

/* Aborts a request: its callback runs before this returns, with status 0, canceled=true and
 * error "canceled". No-op for NULL or from inside the request's own callback. Never pass a
 * handle whose callback has already run. */
void nx_http_cancel(nx_http_req *r);

/* Requests started and not yet completed. */
size_t nx_http_inflight(const nx_http *h);

/* Cancels every request (their callbacks run before this returns), refuses new ones and
 * closes the uv handles; done(ctx) is called from the loop once they are closed, after which
 * h is freed. The loop must keep running until then. A second call is ignored. */
void nx_http_close(nx_http *h, void (*done)(void *ctx), void *ctx);

/* Blocking POST (enrollment) and GET (doctor's /up), no loop needed. out is always filled.
 * Returns 0 when out->ok, else -1 with err = "<METHOD> <path>: <out->error>" (code from the
 * status: 404 → ERR_NOT_FOUND, 409 → ERR_CONFLICT, …; ERR_SYSTEM for transport errors); a
 * non-2xx keeps its status and body in out. A GET accepts a 2xx body that is not JSON (a
 * health page): ok, body NULL. */
int nx_http_post_sync(const nx_http_cfg *cfg, const char *path, const json_t *body,
                      const char *bearer, int64_t timeout_ms, nx_http_result *out, err_t *err);
int nx_http_get_sync(const nx_http_cfg *cfg, const char *path, int64_t timeout_ms,
                     nx_http_result *out, err_t *err);
/* Drops out->body. */
void nx_http_result_clear(nx_http_result *res);

/* Percent-encodes one path segment: everything but RFC 3986 unreserved characters
 * (A-Z a-z 0-9 - . _ ~), and "." / ".." entirely (so no segment can climb the path).
 * Returns a new string or NULL on ENOMEM. */
char *nx_http_path_escape(const char *segment);
