/* http/router.c — route table and strict path matching (see router.h). */
#include "http/router.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/str.h"

#define ROUTER_MAX_ROUTES 256
#define ROUTER_MAX_PREFIX_RULES 32
#define PATTERN_MAX 1024

typedef struct route_seg {
        const char *text;       /* literal, or the parameter name */
        size_t len;
        bool is_param;
} route_seg;

typedef struct route_entry {
        ms_http_route route;    /* strings point into `strings` below */
        char *strings;          /* one allocation: method \0 pattern \0 name \0 segments */
        route_seg segs[MS_HTTP_MAX_SEGMENTS];
        size_t nsegs;
} route_entry;

typedef struct prefix_rule {
        char *method;
        char *prefix;
        const ms_ratelimit_rule *rule;
} prefix_rule;

struct ms_http_router {
        route_entry *routes;
        size_t nroutes;
        prefix_rule prefix_rules[ROUTER_MAX_PREFIX_RULES];
        size_t nprefix_rules;
};

ms_http_router *ms_http_router_new(void)
{
        return calloc(1, sizeof(ms_http_router));
}

void ms_http_router_free(ms_http_router *r)
{
        if (!r)
                return;
        for (size_t i = 0; i < r->nroutes; i++)
                FREE_AND_NULL(r->routes[i].strings);
        FREE_AND_NULL(r->routes);
        for (size_t i = 0; i < r->nprefix_rules; i++) {
                FREE_AND_NULL(r->prefix_rules[i].method);
                FREE_AND_NULL(r->prefix_rules[i].prefix);
        }
        free(r);
}

static bool method_ok(const char *m)
{
        if (!m || !*m || strlen(m) > 32)
                return false;
        for (const char *p = m; *p; p++)
                if (!(*p >= 'A' && *p <= 'Z'))
                        return false;
        return true;
}

/* RFC 3986 pchar without pct-encoded: unreserved / sub-delims / ':' / '@'. */
static bool literal_char_ok(char c)
{
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
                return true;
        return strchr("-._~!$&'()*+,;=:@", c) != NULL && c != '\0';
}

static bool param_name_ok(const char *s, size_t len)
{
        if (len == 0 || len > 64)
                return false;
        if (!((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
                return false;
        for (size_t i = 1; i < len; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
                        return false;
        }
        return true;
}

/* Splits the pattern (a private copy, modified in place) into segments. */
static int parse_pattern(char *pat, route_seg *segs, size_t *nsegs, err_t *err)
{
        const char *orig_start = pat;
        size_t n = 0, nparams = 0;

        if (pat[0] != '/')
                return err_set(err, "route pattern \"%s\" must start with '/'", orig_start);
        if (pat[1] == '\0') {
                *nsegs = 0;     /* "/" */
                return 0;
        }
        char *p = pat + 1;
        for (;;) {
                char *slash = strchr(p, '/');
                size_t len = slash ? (size_t)(slash - p) : strlen(p);
                if (len == 0)
                        return err_set(err, "route pattern has an empty segment");
                if (n == MS_HTTP_MAX_SEGMENTS)
                        return err_set(err, "route pattern has more than %d segments",
                                       MS_HTTP_MAX_SEGMENTS);
                if (p[0] == '{') {
                        if (len < 3 || p[len - 1] != '}' || !param_name_ok(p + 1, len - 2))
                                return err_set(err, "route pattern parameter \"%.*s\" must be "
                                               "{name} with name [a-z_][a-z0-9_]*",
                                               (int)len, p);
                        if (nparams == MS_HTTP_MAX_PARAMS)
                                return err_set(err, "route pattern has more than %d parameters",
                                               MS_HTTP_MAX_PARAMS);
                        for (size_t i = 0; i < n; i++)
                                if (segs[i].is_param && segs[i].len == len - 2 &&
                                    memcmp(segs[i].text, p + 1, len - 2) == 0)
                                        return err_set(err, "route pattern repeats parameter "
                                                       "\"%.*s\"", (int)(len - 2), p + 1);
                        segs[n] = (route_seg){ .text = p + 1, .len = len - 2, .is_param = true };
                        p[len - 1] = '\0';   /* names are C strings (ms_http_param.name) */
                        nparams++;
                } else {
                        for (size_t i = 0; i < len; i++)
                                if (!literal_char_ok(p[i]))
                                        return err_set(err, "route pattern segment \"%.*s\" has "
                                                       "a character outside RFC 3986 pchar",
                                                       (int)len, p);
                        segs[n] = (route_seg){ .text = p, .len = len, .is_param = false };
                }
                n++;
                if (!slash)
                        break;
                *slash = '\0';
                p = slash + 1;
        }
        *nsegs = n;
        return 0;
}

int ms_http_router_add(ms_http_router *r, const ms_http_route *route, err_t *err)
{
        if (!route || !route->pattern)
                return err_set(err, "route has no pattern");
        if (!method_ok(route->method))
                return err_set(err, "route %s: method \"%s\" must be an upper-case token",
                               route->pattern, route->method ? route->method : "(null)");
        if (!route->handler)
                return err_set(err, "route %s %s has no handler", route->method, route->pattern);
        if (route->rate_key != MS_HTTP_RATE_KEY_PEER && route->rate_key != MS_HTTP_RATE_KEY_CALLER)
                return err_set(err, "route %s %s: unknown rate key kind", route->method,
                               route->pattern);
        if (route->rate_rule && (route->rate_rule->period_s == 0 || !route->rate_rule->name))
                return err_set(err, "route %s %s: rate rule needs a name and a period",
                               route->method, route->pattern);
        size_t plen = strlen(route->pattern);
        if (plen > PATTERN_MAX)
                return err_set(err, "route pattern longer than %d bytes", PATTERN_MAX);
        if (r->nroutes == ROUTER_MAX_ROUTES)
                return err_set(err, "router holds at most %d routes", ROUTER_MAX_ROUTES);
        for (size_t i = 0; i < r->nroutes; i++)
                if (strcmp(r->routes[i].route.method, route->method) == 0 &&
                    strcmp(r->routes[i].route.pattern, route->pattern) == 0)
                        return err_set(err, "route %s %s is already registered", route->method,
                                       route->pattern);

        const char *name = route->name ? route->name : route->pattern;
        size_t mlen = strlen(route->method), nlen = strlen(name);
        /* method \0 pattern \0 name \0 pattern-copy-for-segments \0 */
        _cleanup_free_ char *strings = malloc(mlen + 1 + plen + 1 + nlen + 1 + plen + 1);
        if (!strings)
                return err_errno(err, ENOMEM, "router: add %s", route->pattern);
        char *m = strings, *p = m + mlen + 1, *nm = p + plen + 1, *segbuf = nm + nlen + 1;
        memcpy(m, route->method, mlen + 1);
        memcpy(p, route->pattern, plen + 1);
        memcpy(nm, name, nlen + 1);
        memcpy(segbuf, route->pattern, plen + 1);

        route_entry e = { 0 };
        if (parse_pattern(segbuf, e.segs, &e.nsegs, err) < 0)
                return err_wrap(err, "route %s %s", route->method, route->pattern);

        route_entry *grown = realloc(r->routes, (r->nroutes + 1) * sizeof(*grown));
        if (!grown)
                return err_errno(err, ENOMEM, "router: add %s", route->pattern);
        r->routes = grown;
        e.route = *route;
        e.route.method = m;
        e.route.pattern = p;
        e.route.name = nm;
        e.strings = steal_ptr(&strings);
        r->routes[r->nroutes++] = e;
        return 0;
}

int ms_http_router_add_prefix_rate_rule(ms_http_router *r, const char *method, const char *prefix,
                                        const ms_ratelimit_rule *rule, err_t *err)
{
        if (!method_ok(method))
                return err_set(err, "prefix rate rule: method must be an upper-case token");
        if (!prefix || prefix[0] != '/')
                return err_set(err, "prefix rate rule: prefix must start with '/'");
        if (!rule || !rule->name || rule->period_s == 0)
                return err_set(err, "prefix rate rule: rule needs a name and a period");
        if (r->nprefix_rules == ROUTER_MAX_PREFIX_RULES)
                return err_set(err, "router holds at most %d prefix rate rules",
                               ROUTER_MAX_PREFIX_RULES);
        prefix_rule *pr = &r->prefix_rules[r->nprefix_rules];
        pr->method = strdup(method);
        pr->prefix = strdup(prefix);
        if (!pr->method || !pr->prefix) {
                FREE_AND_NULL(pr->method);
                FREE_AND_NULL(pr->prefix);
                return err_errno(err, ENOMEM, "router: add prefix rule");
        }
        pr->rule = rule;
        r->nprefix_rules++;
        return 0;
}

const ms_ratelimit_rule *ms_http_router_prefix_rule(const ms_http_router *r, const char *method,
                                                    const char *path)
{
        for (size_t i = 0; i < r->nprefix_rules; i++)
                if (strcmp(r->prefix_rules[i].method, method) == 0 &&
                    str_has_prefix(path, r->prefix_rules[i].prefix))
                        return r->prefix_rules[i].rule;
        return NULL;
}

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int ms_http_percent_decode(const char *s, size_t len, bool plus_is_space, char *out, size_t outsz,
                           size_t *outlen, err_t *err)
{
        size_t o = 0;
        for (size_t i = 0; i < len; i++) {
                char c = s[i];
                if (c == '%') {
                        if (len - i < 3 || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0)
                                return err_set(err, "malformed percent-encoding at byte %zu", i);
                        c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
                        i += 2;
                } else if (c == '+' && plus_is_space) {
                        c = ' ';
                }
                if (o + 1 >= outsz)
                        return err_set(err, "decoded value longer than %zu bytes",
                                       outsz ? outsz - 1 : 0);
                out[o++] = c;
        }
        if (outsz == 0)
                return err_set(err, "no room for the decoded value");
        out[o] = '\0';
        if (outlen)
                *outlen = o;
        return 0;
}

/* A path split into decoded segments, each kept with its length (it may hold '/' or NUL). */
typedef struct path_segs {
        char *seg[MS_HTTP_MAX_SEGMENTS];
        size_t len[MS_HTTP_MAX_SEGMENTS];
        size_t n;
        bool too_many;
} path_segs;

static void path_segs_free(path_segs *ps)
{
        for (size_t i = 0; i < ps->n; i++)
                FREE_AND_NULL(ps->seg[i]);
        ps->n = 0;
}

/* Returns 0 (ps filled; ps->too_many when it has more segments than any pattern may have, or an
 * empty segment — then no route can match), or -1 with err on malformed percent-encoding. */
static int split_path(const char *path, path_segs *ps, err_t *err)
{
        memset(ps, 0, sizeof(*ps));
        if (path[0] != '/') {
                ps->too_many = true;
                return 0;
        }
        if (path[1] == '\0')
                return 0;
        const char *p = path + 1;
        for (;;) {
                const char *slash = strchr(p, '/');
                size_t len = slash ? (size_t)(slash - p) : strlen(p);
                if (len == 0 || ps->n == MS_HTTP_MAX_SEGMENTS) {
                        ps->too_many = true;
                        /* still validate the encoding of the whole path below */
                }
                if (!ps->too_many) {
                        char *d = malloc(len + 1);
                        if (!d) {
                                path_segs_free(ps);
                                return err_errno(err, ENOMEM, "router: split path");
                        }
                        if (ms_http_percent_decode(p, len, false, d, len + 1, &ps->len[ps->n],
                                                   err) < 0) {
                                free(d);
                                path_segs_free(ps);
                                return err_wrap(err, "path segment %zu", ps->n + 1);
                        }
                        ps->seg[ps->n++] = d;
                } else {
                        char scratch[8];
                        /* Only the encoding matters here: decode 2-char windows around '%'. */
                        for (size_t i = 0; i < len; i++) {
                                if (p[i] != '%')
                                        continue;
                                if (ms_http_percent_decode(p + i, len - i < 3 ? len - i : 3,
                                                           false, scratch, sizeof(scratch), NULL,
                                                           err) < 0) {
                                        path_segs_free(ps);
                                        return err_wrap(err, "path");
                                }
                                i += 2;
                        }
                }
                if (!slash)
                        break;
                p = slash + 1;
        }
        return 0;
}

/* 1 = match, 0 = no match, -1 = would match but a parameter is unacceptable (err set). */
static int match_entry(const route_entry *e, const path_segs *ps, ms_http_match *m, err_t *err)
{
        if (e->nsegs != ps->n)
                return 0;
        for (size_t i = 0; i < e->nsegs; i++) {
                if (e->segs[i].is_param)
                        continue;
                if (e->segs[i].len != ps->len[i] ||
                    memcmp(e->segs[i].text, ps->seg[i], ps->len[i]) != 0)
                        return 0;
        }
        m->nparams = 0;
        for (size_t i = 0; i < e->nsegs; i++) {
                if (!e->segs[i].is_param)
                        continue;
                const char *v = ps->seg[i];
                size_t len = ps->len[i];
                /* A decoded '/' would let "a%2F..%2Fb" pose as one id; NUL would cut C strings. */
                if (memchr(v, '/', len))
                        return err_set(err, "path parameter {%.*s} must not contain '/'",
                                       (int)e->segs[i].len, e->segs[i].text);
                if (memchr(v, '\0', len))
                        return err_set(err, "path parameter {%.*s} must not contain NUL",
                                       (int)e->segs[i].len, e->segs[i].text);
                if (len > MS_HTTP_PARAM_MAX)
                        return err_set(err, "path parameter {%.*s} is longer than %d bytes",
                                       (int)e->segs[i].len, e->segs[i].text,
                                       MS_HTTP_PARAM_MAX);
                ms_http_param *prm = &m->params[m->nparams++];
                prm->name = e->segs[i].text;   /* NUL-terminated by parse_pattern() */
                prm->len = len;
                memcpy(prm->value, v, len);
                prm->value[len] = '\0';
        }
        m->route = &e->route;
        return 1;
}

int ms_http_router_match(const ms_http_router *r, const char *method, const char *path,
                         ms_http_match *m, err_t *err)
{
        m->route = NULL;
        m->nparams = 0;
        if (!method || !path)
                return 0;
        path_segs ps;
        if (split_path(path, &ps, err) < 0)
                return -1;
        if (ps.too_many) {
                path_segs_free(&ps);
                return 0;
        }
        int rc = 0;
        err_t param_err = ERR_INIT;
        bool bad_param = false;
        /* Pass 0: exact method. Pass 1: HEAD falls back to GET. */
        for (int pass = 0; pass < 2 && rc == 0; pass++) {
                const char *want = method;
                if (pass == 1) {
                        if (strcmp(method, "HEAD") != 0)
                                break;
                        want = "GET";
                }
                for (size_t i = 0; i < r->nroutes; i++) {
                        if (strcmp(r->routes[i].route.method, want) != 0)
                                continue;
                        err_t scratch = ERR_INIT;
                        int mr = match_entry(&r->routes[i], &ps, m, &scratch);
                        if (mr == 1) {
                                rc = 1;
                                break;
                        }
                        if (mr < 0 && !bad_param) {
                                param_err = scratch;
                                bad_param = true;
                        }
                }
        }
        path_segs_free(&ps);
        if (rc == 1)
                return 1;
        m->route = NULL;
        m->nparams = 0;
        if (bad_param) {
                /* Only the first offending route's message is kept. */
                *err = param_err;
                return -1;
        }
        return 0;
}

const char *ms_http_match_param(const ms_http_match *m, const char *name)
{
        for (size_t i = 0; i < m->nparams; i++) {
                if (strcmp(m->params[i].name, name) == 0)
                        return m->params[i].value;
        }
        return NULL;
}

size_t ms_http_router_count(const ms_http_router *r)
{
        return r->nroutes;
}

const ms_http_route *ms_http_router_route(const ms_http_router *r, size_t i)
{
        return i < r->nroutes ? &r->routes[i].route : NULL;
}
