/* proto/allowlist.c — allowlist grammar, matcher and authority parser (see allowlist.h;
 * spec nexus §7.3, §7.7, mothership §6.3). */
#include "proto/allowlist.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/json.h"
#include "core/str.h"
#include "proto/addr.h"

#define QUOTE_MAX 128   /* quoted user text in a message, enough to recognise it */

const char *allow_quote(const char *s, size_t len, char *out, size_t outsz)
{
        static const char hex[] = "0123456789abcdef";
        size_t o = 0;
        if (outsz == 0)
                return out;
        if (!s)
                len = 0;
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)s[i];
                char tmp[4];
                size_t n;
                if (c == '"' || c == '\\') {
                        tmp[0] = '\\';
                        tmp[1] = (char)c;
                        n = 2;
                } else if (c >= 0x20 && c < 0x7f) {
                        tmp[0] = (char)c;
                        n = 1;
                } else {
                        tmp[0] = '\\';
                        tmp[1] = 'x';
                        tmp[2] = hex[c >> 4];
                        tmp[3] = hex[c & 0xf];
                        n = 4;
                }
                /* keep room for "..." and the NUL so a cut is visible */
                if (o + n + 4 > outsz) {
                        if (o + 4 <= outsz) {
                                memcpy(out + o, "...", 3);
                                o += 3;
                        }
                        break;
                }
                memcpy(out + o, tmp, n);
                o += n;
        }
        out[o] = '\0';
        return out;
}

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

static char lower(char c)
{
        return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* [0-9]{1,5} with value 1-65535 (ADVISED in §7.7: no sign, no spaces, as the schema says).
 * Returns 0, -1 (not [0-9]{1,5}) or -2 (out of range, *val set). */
static int port_parse(const char *s, size_t len, unsigned *val)
{
        unsigned v = 0;
        if (len == 0 || len > 5)
                return -1;
        for (size_t i = 0; i < len; i++) {
                if (!is_digit(s[i]))
                        return -1;
                v = v * 10 + (unsigned)(s[i] - '0');
        }
        *val = v;
        if (v < 1 || v > 65535)
                return -2;
        return 0;
}

/* One DNS label of the §7.7 grammar: 1-63 of [a-z0-9-], no '-' at either end. */
static bool label_ok(const char *s, size_t n)
{
        if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || is_digit(c) || c == '-'))
                        return false;
        }
        return true;
}

/* h is normalised (lower case). "localhost" only without a wildcard; otherwise >= 2 labels.
 * Beyond §7.7, the last label must not be all digits (no top-level domain is, RFC 3696 §2):
 * a name like "1.2.3.4.5" can only be an attempt to look like an address. */
static bool host_grammar_ok(const char *h, size_t n, bool wildcard)
{
        if (!wildcard && n == 9 && memcmp(h, "localhost", 9) == 0)
                return true;
        size_t labels = 0, start = 0;
        bool last_numeric = true;
        for (size_t i = 0; i <= n; i++) {
                if (i == n || h[i] == '.') {
                        if (!label_ok(h + start, i - start))
                                return false;
                        labels++;
                        start = i + 1;
                        if (i < n)
                                last_numeric = true;
                } else if (!is_digit(h[i])) {
                        last_numeric = false;
                }
        }
        return labels >= 2 && !last_numeric;
}

/* §7.7 normalisation: trim, drop ONE trailing '.', lower-case. Fails if the result does not
 * fit a DNS name. */
static int host_normalise(const char *s, size_t len, char *out, size_t outsz, size_t *outlen)
{
        size_t n;
        const char *p = str_trim(s, len, &n);
        if (n > 0 && p[n - 1] == '.')
                n--;
        if (n > ALLOW_HOST_MAX_LEN || n >= outsz)
                return -1;
        for (size_t i = 0; i < n; i++)
                out[i] = lower(p[i]);
        out[n] = '\0';
        *outlen = n;
        return 0;
}

int allow_entry_parse(const char *s, allow_entry *out, err_t *err)
{
        char q[QUOTE_MAX];
        if (!s)
                return err_set(err, "invalid allowlist entry format, expected host:port");
        size_t len;
        /* bound the work before anything else: trimming is linear, everything after is cheap */
        const char *p = str_trim(s, strlen(s), &len);
        if (len > ALLOW_ENTRY_MAX_LEN)
                return err_set(err, "allowlist entry too long (%zu > %d bytes)", len,
                               ALLOW_ENTRY_MAX_LEN);
        const char *colon = len ? memrchr(p, ':', len) : NULL;
        if (!colon || colon == p || colon == p + len - 1)
                return err_set(err, "invalid allowlist entry format, expected host:port");

        const char *host = p;
        size_t hlen = (size_t)(colon - p);
        const char *pstr = colon + 1;
        size_t plen = len - hlen - 1;
        unsigned port = 0;
        int r = port_parse(pstr, plen, &port);
        if (r == -1)
                return err_set(err, "invalid port \"%s\"", allow_quote(pstr, plen, q, sizeof(q)));
        if (r == -2)
                return err_set(err, "port out of range: %u", port);

        /* spec nexus §7.7 step 3: IP literals can never be allowlisted (V1) */
        char raw[ALLOW_ENTRY_MAX_LEN + 1];
        memcpy(raw, host, hlen);
        raw[hlen] = '\0';
        if (host[0] == '[' || memchr(host, ':', hlen) || host_is_ip_literal(raw))
                return err_set(err, "IP literal is not allowed in V1: \"%s\"",
                               allow_quote(host, hlen, q, sizeof(q)));

        /* §7.7 step 4: wildcard, then normalise the rest */
        bool wildcard = hlen >= 2 && host[0] == '*' && host[1] == '.';
        const char *rest = wildcard ? host + 2 : host;
        size_t rlen = wildcard ? hlen - 2 : hlen;
        size_t nlen = 0;
        if (host_normalise(rest, rlen, out->host, sizeof(out->host), &nlen) < 0)
                return err_set(err, "invalid host: \"%s\"", allow_quote(host, hlen, q, sizeof(q)));
        /* normalising may have uncovered an address ("127.0.0.1.", " 10.0.0.1", "*.1.2.3.4") */
        if (host_is_ip_literal(out->host))
                return err_set(err, "IP literal is not allowed in V1: \"%s\"",
                               allow_quote(host, hlen, q, sizeof(q)));
        if (!host_grammar_ok(out->host, nlen, wildcard))
                return err_set(err, "invalid host: \"%s\"", allow_quote(host, hlen, q, sizeof(q)));
        out->port = (uint16_t)port;
        out->wildcard = wildcard;
        return 0;
}

int allow_entry_format(const allow_entry *e, char *out, size_t outsz)
{
        if (!e || !out || outsz == 0)
                return -1;
        int n = snprintf(out, outsz, "%s%s:%u", e->wildcard ? "*." : "", e->host,
                         (unsigned)e->port);
        if (n < 0 || (size_t)n >= outsz)
                return -1;
        return n;
}

/* Destination normalisation for matching (§7.7) plus a plausibility check: a destination that
 * no DNS resolver could look up as a name never matches, so odd bytes can never ride on a
 * wildcard suffix ("evil.com/.github.com", "a..github.com"). '_' is allowed: real host names
 * carry it. */
static bool dest_normalise(const char *host, char *out, size_t outsz, size_t *outlen)
{
        size_t n;
        if (host_normalise(host, strlen(host), out, outsz, &n) < 0 || n == 0)
                return false;
        size_t start = 0;
        for (size_t i = 0; i <= n; i++) {
                if (i == n || out[i] == '.') {
                        if (i == start || i - start > 63)
                                return false;
                        start = i + 1;
                        continue;
                }
                char c = out[i];
                if (!((c >= 'a' && c <= 'z') || is_digit(c) || c == '-' || c == '_'))
                        return false;
        }
        *outlen = n;
        return true;
}

static bool entry_match_normalised(const allow_entry *e, const char *h, size_t hlen,
                                   uint16_t port)
{
        if (e->port != port)
                return false;
        size_t dlen = strlen(e->host);
        if (!e->wildcard)
                return hlen == dlen && memcmp(h, e->host, dlen) == 0;
        /* "*.d": h != d and h ends with ".d", any depth */
        return hlen > dlen + 1 && h[hlen - dlen - 1] == '.' &&
               memcmp(h + hlen - dlen, e->host, dlen) == 0;
}

bool allow_entry_match(const allow_entry *e, const char *host, uint16_t port)
{
        char h[ALLOW_HOST_MAX_LEN + 1];
        size_t hlen;
        if (!e || !host || !dest_normalise(host, h, sizeof(h), &hlen))
                return false;
        return entry_match_normalised(e, h, hlen, port);
}

bool allowlist_match(const allowlist *l, const char *host, uint16_t port)
{
        char h[ALLOW_HOST_MAX_LEN + 1];
        size_t hlen;
        if (!l || !l->entries || !host || !dest_normalise(host, h, sizeof(h), &hlen))
                return false;
        for (size_t i = 0; i < l->n; i++)
                if (entry_match_normalised(&l->entries[i], h, hlen, port))
                        return true;
        return false;
}

void allowlist_free(allowlist *l)
{
        if (!l)
                return;
        FREE_AND_NULL(l->entries);
        l->n = 0;
}

int allowlist_parse_json(const json_t *arr, allowlist *out, err_t *err)
{
        out->entries = NULL;
        out->n = 0;
        if (!json_is_array(arr))
                return err_set(err, "allow: must be an array, got %s", json_type_name(arr));
        size_t n = json_array_size(arr);
        if (n > ALLOWLIST_MAX_ENTRIES)
                return err_set(err, "allow: too many entries (%zu > %d)", n,
                               ALLOWLIST_MAX_ENTRIES);
        if (n == 0)
                return 0;   /* an empty allowlist is valid and denies everything (§7.6) */
        allow_entry *entries = calloc(n, sizeof(*entries));
        if (!entries)
                return err_errno(err, ENOMEM, "allow: %zu entries", n);
        for (size_t i = 0; i < n; i++) {
                const json_t *v = json_array_get(arr, i);
                if (!json_is_string(v)) {
                        free(entries);
                        return err_set(err, "allow[%zu]: must be a string, got %s", i,
                                       json_type_name(v));
                }
                const char *s = json_string_value(v);
                /* "github.com:443\u0000x" must not pass as "github.com:443" */
                if (strlen(s) != json_string_length(v)) {
                        free(entries);
                        return err_set(err, "allow[%zu]: must not contain NUL", i);
                }
                if (allow_entry_parse(s, &entries[i], err) < 0) {
                        free(entries);
                        return err_wrap(err, "allow[%zu]", i);
                }
        }
        out->entries = entries;
        out->n = n;
        return 0;
}

int authority_parse(const char *s, size_t len, uint16_t default_port, char *host, size_t hostsz,
                    uint16_t *port, err_t *err)
{
        char q[QUOTE_MAX];
        const char *h;
        size_t hlen;
        const char *pstr = NULL;
        size_t plen = 0;
        bool bracketed = false;

        if (!s || len == 0)
                return err_set(err, "empty destination");
        if (len > ALLOW_HOST_MAX_LEN + 8)   /* "[" host "]:" 5 digits */
                return err_set(err, "destination too long (%zu bytes)", len);
        if (s[0] == '[') {
                const char *close = memchr(s, ']', len);
                if (!close)
                        return err_set(err, "invalid destination \"%s\": unbalanced '['",
                                       allow_quote(s, len, q, sizeof(q)));
                h = s + 1;
                hlen = (size_t)(close - h);
                size_t after = len - (size_t)(close - s) - 1;
                if (after > 0) {
                        if (close[1] != ':')
                                return err_set(err, "invalid destination \"%s\": "
                                               "expected ':' after ']'",
                                               allow_quote(s, len, q, sizeof(q)));
                        pstr = close + 2;
                        plen = after - 1;
                        if (plen == 0)
                                return err_set(err, "invalid destination \"%s\": empty port",
                                               allow_quote(s, len, q, sizeof(q)));
                }
                bracketed = true;
        } else {
                const char *colon = memchr(s, ':', len);
                h = s;
                hlen = len;
                if (colon) {
                        if (memchr(colon + 1, ':', len - (size_t)(colon - s) - 1))
                                return err_set(err, "invalid destination \"%s\": "
                                               "IPv6 address must be in brackets",
                                               allow_quote(s, len, q, sizeof(q)));
                        hlen = (size_t)(colon - s);
                        pstr = colon + 1;
                        plen = len - hlen - 1;
                        if (plen == 0)
                                return err_set(err, "invalid destination \"%s\": empty port",
                                               allow_quote(s, len, q, sizeof(q)));
                }
        }
        if (hlen == 0)
                return err_set(err, "invalid destination \"%s\": empty host",
                               allow_quote(s, len, q, sizeof(q)));
        if (hlen > ALLOW_HOST_MAX_LEN || hlen >= hostsz)
                return err_set(err, "invalid destination: host too long (%zu bytes)", hlen);

        if (bracketed) {
                /* only an IPv6 literal, without zone id: a zone names an interface of the
                 * proxy host, which a sandboxed client has no business choosing */
                if (memchr(h, '%', hlen))
                        return err_set(err, "invalid destination \"%s\": zone id not allowed",
                                       allow_quote(s, len, q, sizeof(q)));
                char tmp[ALLOW_HOST_MAX_LEN + 1];
                memcpy(tmp, h, hlen);
                tmp[hlen] = '\0';
                if (memchr(tmp, '\0', hlen) || !memchr(tmp, ':', hlen) ||
                    addr_classify_str(tmp) == ADDR_INVALID)
                        return err_set(err, "invalid destination \"%s\": not an IPv6 address",
                                       allow_quote(s, len, q, sizeof(q)));
        } else {
                for (size_t i = 0; i < hlen; i++) {
                        char c = h[i];
                        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) ||
                              c == '-' || c == '.' || c == '_'))
                                return err_set(err, "invalid destination \"%s\": "
                                               "bad character in host",
                                               allow_quote(s, len, q, sizeof(q)));
                }
        }

        unsigned pv = default_port;
        if (pstr) {
                int r = port_parse(pstr, plen, &pv);
                if (r == -1)
                        return err_set(err, "invalid port \"%s\"",
                                       allow_quote(pstr, plen, q, sizeof(q)));
                if (r == -2)
                        return err_set(err, "port out of range: %u", pv);
        } else if (default_port == 0) {
                return err_set(err, "invalid destination \"%s\": missing port",
                               allow_quote(s, len, q, sizeof(q)));
        }
        memcpy(host, h, hlen);
        host[hlen] = '\0';
        *port = (uint16_t)pv;
        return 0;
}
