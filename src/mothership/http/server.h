/* http/server.h — the mothership HTTP server on libmicrohttpd (DESIGN D8).
 *
 * libmicrohttpd runs an internal epoll thread pool; handlers run on those threads and never block
 * waiting for work. A long-poll PARKS its request: the connection is suspended and resumed later
 * by ms_http_notify() from any thread, by its server-side timeout (always present), or by
 * shutdown; the handler (or the resume callback given to ms_http_park) is then called again on a
 * pool thread to produce the response. Sockets get TCP_NODELAY; SIGPIPE is ignored process-wide.
 *
 * Per request, before any handler runs (all on the first callback, before the body is read):
 *   route lookup (router.h) — malformed path encoding or bad {param} → 400 bad_request, no route
 *   → 404 not_found "no route for METHOD /path"; the route's rate rule when keyed by peer
 *   (ratelimit.h) → 429 rate_limited with Retry-After; query string decoding → 400; a declared
 *   Content-Length over the route's body cap → 413 too_large (the body is never read). A chunked
 *   body that outgrows the cap is discarded and answered 413 at its end.
 * Every response is counted in http_requests_total{route,method,status} and
 * http_request_duration_seconds{route} when a metrics registry is configured (route = the route
 * name or pattern; "unmatched" when no route applied).
 *
 * Threading contract: a request object belongs to the pool thread running its callback; every
 * ms_http_req_* / ms_http_respond_* / ms_http_park call must be made from inside the handler (or
 * resume callback) for that request. ms_http_notify() and ms_http_server_parked() may be called
 * from any thread. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/metrics.h"
#include "http/ratelimit.h"
#include "http/router.h"

#define MS_HTTP_JSON_TYPE "application/json; charset=utf-8"
#define MS_HTTP_DEFAULT_POOL 4
#define MS_HTTP_DEFAULT_CONN_LIMIT 1024
#define MS_HTTP_DEFAULT_CONN_TIMEOUT_S 30
#define MS_HTTP_DEFAULT_PARK_MAX_MS 120000
#define MS_HTTP_DEFAULT_MAX_PARKED 10000
#define MS_HTTP_DEFAULT_GRACE_MS 2000
#define MS_HTTP_TOPIC_MAX 256          /* longest notify topic, bytes */
#define MS_HTTP_MAX_QUERY_ARGS 64
#define MS_HTTP_MAX_EXTRA_HEADERS 16

typedef struct ms_http_server ms_http_server;

typedef struct ms_http_server_config {
        const char *host;                /* numeric IPv4/IPv6 or "localhost"; NULL = 127.0.0.1 */
        uint16_t port;                   /* 0 = ephemeral, see ms_http_server_port() */
        unsigned thread_pool_size;       /* 0 = MS_HTTP_DEFAULT_POOL */
        unsigned connection_limit;       /* 0 = MS_HTTP_DEFAULT_CONN_LIMIT */
        unsigned connection_timeout_s;   /* idle connections; 0 = MS_HTTP_DEFAULT_CONN_TIMEOUT_S */
        int64_t park_max_ms;             /* cap on every park timeout; 0 = default */
        size_t max_parked;               /* 0 = MS_HTTP_DEFAULT_MAX_PARKED */
        int64_t shutdown_grace_ms;       /* how long stop waits for running requests; 0 = default */
        const ms_http_router *router;    /* required; not owned, must outlive the server */
        metrics_reg *metrics;             /* optional; not owned */
        ms_ratelimit *ratelimit;         /* required when any route has a rate rule; not owned */
} ms_http_server_config;

/* Binds and starts serving. Returns 0 with *out set, or -1 with err naming what failed
 * ("host \"x\" must be a numeric IPv4 or IPv6 address", "listen on 127.0.0.1:80: ..."). */
int ms_http_server_start(const ms_http_server_config *cfg, ms_http_server **out, err_t *err);
/* The bound port (the real one when the config said 0). */
uint16_t ms_http_server_port(const ms_http_server *srv);
/* Stops accepting, wakes every parked request with MS_HTTP_WAKE_SHUTDOWN, waits up to the grace
 * period for running requests, stops the daemon and frees srv. NULL is fine. */
void ms_http_server_stop(ms_http_server *srv);

/* ---- request ---- */

const char *ms_http_req_method(const ms_http_req *req);
/* The path as sent (still percent-encoded), without the query string. */
const char *ms_http_req_path(const ms_http_req *req);
/* Decoded {name} path parameter; NULL if the route has none of that name. */
const char *ms_http_req_param(const ms_http_req *req, const char *name);
/* Decoded query parameter (first occurrence); "" for a bare "?flag"; NULL when absent. */
const char *ms_http_req_query(const ms_http_req *req, const char *name);
size_t ms_http_req_query_count(const ms_http_req *req);
/* i-th query parameter in order of appearance; returns -1 past the end. */
int ms_http_req_query_at(const ms_http_req *req, size_t i, const char **name, const char **value);
/* Request header, case-insensitive name; NULL when absent. */
const char *ms_http_req_header(const ms_http_req *req, const char *name);
/* The body (NUL-terminated; "" when none); *len (may be NULL) gets its length. */
const char *ms_http_req_body(const ms_http_req *req, size_t *len);
/* Peer address as text ("127.0.0.1", "::1"; IPv4-mapped IPv6 shown as IPv4). */
const char *ms_http_req_peer(const ms_http_req *req);
/* The matched route (never NULL inside a handler). */
const ms_http_route *ms_http_req_route(const ms_http_req *req);
ms_http_server *ms_http_req_server(const ms_http_req *req);
/* Start of the request: wall clock (Unix ms) and elapsed monotonic time since, in ms. */
int64_t ms_http_req_start_ms(const ms_http_req *req);
int64_t ms_http_req_elapsed_ms(const ms_http_req *req);
/* Authentication slot for the caller's identity object; free_fn (may be NULL) runs when the
 * request ends or the slot is set again. */
void *ms_http_req_auth(const ms_http_req *req);
void ms_http_req_set_auth(ms_http_req *req, void *auth, void (*free_fn)(void *));
/* Runs fn(arg) when the request ends (completed, failed, or the server stopped), in reverse order
 * of registration; at most 8 per request. Returns 0 or -1 when full. */
int ms_http_req_on_done(ms_http_req *req, void (*fn)(void *), void *arg);
/* Status already queued for this request, 0 when none. */
int ms_http_req_status(const ms_http_req *req);
/* The accepted socket (diagnostics, e.g. checking TCP_NODELAY); -1 if unknown. */
int ms_http_req_fd(const ms_http_req *req);

/* ---- responses (exactly one per request) ----
 * Each returns the status it queued, or -1 (already answered, not inside the request's callback,
 * invalid argument, or the daemon refused). A handler may simply `return ms_http_respond_...`. */

/* Adds a header to the response queued next (e.g. "Retry-After"). Refuses CR/LF/NUL, names that
 * are not HTTP tokens, and more than MS_HTTP_MAX_EXTRA_HEADERS. Returns 0 or -1. */
int ms_http_add_header(ms_http_req *req, const char *name, const char *value);
/* Serialises body compactly with Content-Type MS_HTTP_JSON_TYPE. Takes ownership of body
 * (NULL, e.g. a failed json_pack(), becomes a 500). */
int ms_http_respond_json(ms_http_req *req, unsigned status, json_t *body);
/* {"error": code, "detail": formatted text} (spec §0.3). */
int ms_http_respond_error(ms_http_req *req, unsigned status, const char *code, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
int ms_http_respond_text(ms_http_req *req, unsigned status, const char *content_type,
                         const char *text);
int ms_http_respond_bytes(ms_http_req *req, unsigned status, const char *content_type,
                          const void *data, size_t len);
/* Like respond_bytes but takes ownership of data (malloc'd; freed by the server in all cases). */
int ms_http_respond_take(ms_http_req *req, unsigned status, const char *content_type, void *data,
                         size_t len);

/* Applies the route's rate rule with a caller-chosen key, for MS_HTTP_RATE_KEY_CALLER routes: the
 * authenticated identity, or the peer address when there is none (never a raw client header).
 * Returns 0 when allowed (or the route has no caller-keyed rule: peer-keyed rules were already
 * counted before the handler), or 429 after answering {"error":"rate_limited","detail":"too many
 * requests"} with Retry-After = the rule's full period (spec §3.1.4). A handler of a caller-keyed
 * route that never calls it gets a warning logged (once). */
int ms_http_rate_limit(ms_http_req *req, const char *key);

/* ---- long-poll parking ---- */

typedef enum ms_http_wake {
        MS_HTTP_WAKE_NONE = 0,      /* first call of the handler */
        MS_HTTP_WAKE_NOTIFY,        /* ms_http_notify() on the request's topic */
        MS_HTTP_WAKE_TIMEOUT,       /* the park timeout passed */
        MS_HTTP_WAKE_SHUTDOWN,      /* the server is stopping: answer now */
} ms_http_wake;

/* Called instead of the route handler when a parked request wakes; returns like a handler. */
typedef int (*ms_http_resume_fn)(ms_http_req *req, ms_http_wake why, void *ctx);

/* Registers the request to be parked on `topic` (NULL: only the timeout wakes it) for at most
 * timeout_ms (> 0; capped by the server's park_max_ms). The handler then returns MS_HTTP_PARKED.
 * Call it BEFORE looking for work: a notify that arrives between this call and the handler's
 * return is not lost (the request is re-entered at once). If the handler responds after parking
 * (work was found after all), the park is cancelled. On wake-up, resume (if not NULL) is called
 * with ctx, else the route handler again; ms_http_req_wake() tells why. ctx is not owned: free it
 * from the resume callback or with ms_http_req_on_done(). Returns 0, or -1 with err (not inside
 * the handler, already answered or parked, bad topic/timeout, too many parked requests, server
 * stopping) — then the handler must answer itself. */
int ms_http_park(ms_http_req *req, const char *topic, int64_t timeout_ms, ms_http_resume_fn resume,
                 void *ctx, err_t *err);
/* Why the current call happens (MS_HTTP_WAKE_NONE on the first call). */
ms_http_wake ms_http_req_wake(const ms_http_req *req);
/* Wakes every request parked on topic. Any thread. Returns how many were woken. */
int ms_http_notify(ms_http_server *srv, const char *topic);
/* Requests currently parked (registered and not yet woken). */
size_t ms_http_server_parked(ms_http_server *srv);
