/* proxy/httphead.h — bounded HTTP/1.x request-head parser for the egress proxy (spec nexus §7.3,
 * §7.4; RFC 9112). Pure: no I/O, no allocation; fuzzed by tests/fuzz/fuzz_httphead.c.
 *
 * Accepts: "METHOD SP request-target SP HTTP/1.0|1.1" then header lines "name: value", lines
 * ending in CRLF (a bare LF is tolerated, RFC 9112 §2.2), an empty line last. Method is a token
 * of at most 32 bytes. Header names are tokens; values are trimmed of SP/HTAB and may hold any
 * visible byte, SP, HTAB and obs-text, never CTLs or NUL.
 * Refuses (status 400 unless noted): leading empty lines, obs-fold continuation lines, a space
 * before the colon, a missing colon, an empty name, CTL/NUL bytes, a request-target with
 * whitespace or CTLs, versions other than HTTP/1.0 and HTTP/1.1 (505), more than
 * NX_HTTPHEAD_MAX_HEADERS headers (431), a head longer than the caller's cap (431). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/error.h"

#define NX_HTTPHEAD_MAX_HEADERS 100
#define NX_HTTPHEAD_METHOD_MAX 32

typedef struct nx_http_slice {
        const char *p;                  /* points into the parsed buffer; NOT NUL-terminated */
        size_t len;
} nx_http_slice;

typedef struct nx_http_header {
        nx_http_slice name;
        nx_http_slice value;            /* trimmed */
} nx_http_header;

typedef struct nx_httphead {
        nx_http_slice method;
        nx_http_slice target;
        int minor;                      /* HTTP/1.<minor>: 0 or 1 */
        size_t head_len;                /* bytes of the head, terminating empty line included */
        size_t n_headers;
        nx_http_header headers[NX_HTTPHEAD_MAX_HEADERS];
} nx_httphead;

/* Length of the head in buf[0..len) including the empty line that ends it; 0 when it has not
 * ended yet. Only looks for the terminator (CRLFCRLF, LFLF, CRLFLF, LFCRLF). */
size_t nx_httphead_end(const char *buf, size_t len);

/* Parses the complete head buf[0..len) (len = nx_httphead_end()). Returns 0, or -1 with err
 * set and *status = the HTTP status to answer (400, 431, 505). */
int nx_httphead_parse(const char *buf, size_t len, nx_httphead *out, int *status, err_t *err);

/* Case-insensitive comparisons on slices. */
bool nx_http_slice_eq(nx_http_slice s, const char *lit);
bool nx_http_slice_ieq(nx_http_slice s, const char *lit);

/* The first header with this name (case-insensitive), NULL if none; *count (when non-NULL) gets
 * how many there are. */
const nx_http_header *nx_httphead_get(const nx_httphead *h, const char *name, size_t *count);

/* True for the fixed hop-by-hop list of §7.4 step 4 (vector #202): Connection, Keep-Alive,
 * Proxy-Authenticate, Proxy-Authorization, TE, Trailers, Transfer-Encoding, Upgrade — plus the
 * de-facto Proxy-Connection. */
bool nx_http_is_hop_by_hop(nx_http_slice name);

/* True if name is listed in any Connection header's comma-separated tokens (those headers are
 * hop-by-hop too, RFC 9110 §7.6.1; REF does not remove them, we do). */
bool nx_httphead_connection_lists(const nx_httphead *h, nx_http_slice name);

/* Splits an absolute-form target "http://authority[/path][?query]" (scheme case-insensitive;
 * only http — a TLS origin is reached with CONNECT): authority and path-and-query (path "" means
 * "/"). Refuses other schemes, userinfo ('@' in the authority), an empty authority and a
 * fragment. The authority is then parsed with proto/allowlist.h authority_parse (default port
 * 80). Returns 0, or -1 with err. */
int nx_http_absolute_split(nx_http_slice target, nx_http_slice *authority, nx_http_slice *path,
                           err_t *err);
