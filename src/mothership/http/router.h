/* http/router.h — the mothership route table: {method, pattern} → handler (spec mothership §3.0).
 *
 * A pattern is a path of literal segments and {name} parameters:
 *   "/conduits/v1/directives/{id}/started"
 * Matching is segment by segment and exact (no trailing-slash folding, no empty segments). Each
 * path segment is percent-decoded strictly before it is compared: a '%' not followed by two hex
 * digits makes the whole request a 400. A parameter value must be 1..MS_HTTP_PARAM_MAX bytes once
 * decoded and may not contain '/' (%2F) or NUL (%00): such a value is refused with a 400 instead
 * of reaching a handler. Routes are tried in the order they were added; the first match wins.
 * A HEAD request is served by the GET route of the same path when no HEAD route exists.
 * Anything else (unknown path, known path with another method) is "no route" — the server
 * answers 404 (spec §3.0 "any other path/method combination → 404").
 *
 * The router is built before the server starts and is read-only afterwards, so matching needs
 * no lock. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "http/ratelimit.h"

#define MS_HTTP_PARAM_MAX 256       /* longest decoded {param} value, bytes */
#define MS_HTTP_MAX_PARAMS 8        /* {params} per pattern */
#define MS_HTTP_MAX_SEGMENTS 16     /* segments per pattern and per matched path */
#define MS_HTTP_DEFAULT_MAX_BODY (64 * 1024)   /* body cap when a route says 0 */

typedef struct ms_http_req ms_http_req;

/* What a handler returns: the HTTP status it responded with (>= 100), MS_HTTP_PARKED after a
 * successful ms_http_park(), or < 0 on an internal failure (the server answers 500 when nothing
 * was sent). */
#define MS_HTTP_PARKED 0
typedef int (*ms_http_handler_fn)(ms_http_req *req, void *ctx);

/* Who supplies the rate-limit counter key for a route's rule. */
typedef enum ms_http_rate_key {
        /* The server counts the peer address before the body is read, before the handler. */
        MS_HTTP_RATE_KEY_PEER = 0,
        /* The handler authenticates first, then calls ms_http_rate_limit(req, identity). Never a
         * client-chosen header: an unauthenticated value lets a client pick a fresh bucket. */
        MS_HTTP_RATE_KEY_CALLER = 1,
} ms_http_rate_key;

typedef struct ms_http_route {
        const char *method;                 /* "GET", "POST", ... (upper case) */
        const char *pattern;                /* "/conduits/v1/directives/{id}/started" */
        ms_http_handler_fn handler;
        void *ctx;                          /* handed to the handler; not owned */
        size_t max_body_bytes;              /* request body cap; 0 = MS_HTTP_DEFAULT_MAX_BODY */
        const ms_ratelimit_rule *rate_rule; /* NULL = not rate-limited (must outlive the router) */
        ms_http_rate_key rate_key;
        const char *name;                   /* metrics "route" label; NULL = the pattern */
} ms_http_route;

typedef struct ms_http_param {
        const char *name;                      /* points into the router */
        size_t len;
        char value[MS_HTTP_PARAM_MAX + 1];     /* decoded, NUL-terminated */
} ms_http_param;

typedef struct ms_http_match {
        const ms_http_route *route;            /* NULL when nothing matched */
        size_t nparams;
        ms_http_param params[MS_HTTP_MAX_PARAMS];
} ms_http_match;

typedef struct ms_http_router ms_http_router;

ms_http_router *ms_http_router_new(void);
void ms_http_router_free(ms_http_router *r);

/* Copies route (and its strings) into the table. Refuses a pattern that does not start with '/',
 * has an empty segment, more than MS_HTTP_MAX_SEGMENTS segments or MS_HTTP_MAX_PARAMS params, a
 * malformed or duplicate {name}, a literal with characters outside RFC 3986 pchar (no '%'), a
 * lower-case or empty method, a NULL handler, or a {method, pattern} pair already present. */
int ms_http_router_add(ms_http_router *r, const ms_http_route *route, err_t *err);

/* Rate-limits requests that match NO route but whose method is `method` and whose raw path
 * starts with `prefix`, keyed by the peer address (spec §3.1.4 applies its rules "before routing,
 * successful or not": e.g. every POST under /conduits/v1/directives/). */
int ms_http_router_add_prefix_rate_rule(ms_http_router *r, const char *method, const char *prefix,
                                        const ms_ratelimit_rule *rule, err_t *err);
/* The prefix rule for an unmatched request, or NULL. */
const ms_ratelimit_rule *ms_http_router_prefix_rule(const ms_http_router *r, const char *method,
                                                    const char *path);

/* Matches a raw (still percent-encoded) path. Returns 1 with m filled, 0 when no route matches
 * (m->route == NULL), -1 with err set (code ERR_INVALID) when the path is malformed or a
 * parameter is unacceptable — the server turns that into a 400. */
int ms_http_router_match(const ms_http_router *r, const char *method, const char *path,
                         ms_http_match *m, err_t *err);

/* Value of a matched parameter, NULL when the pattern has no such name. */
const char *ms_http_match_param(const ms_http_match *m, const char *name);

size_t ms_http_router_count(const ms_http_router *r);
/* The i-th route (0-based), NULL past the end. */
const ms_http_route *ms_http_router_route(const ms_http_router *r, size_t i);

/* Strict percent-decoding of len bytes of s into out (outsz >= len + 1 always suffices).
 * With plus_is_space, '+' becomes ' ' (form/query encoding). Decoded bytes may include NUL; the
 * output is NUL-terminated and *outlen gets the decoded length. Returns 0, or -1 with err set
 * when a '%' is not followed by two hex digits or the output does not fit. */
int ms_http_percent_decode(const char *s, size_t len, bool plus_is_space, char *out, size_t outsz,
                           size_t *outlen, err_t *err);
