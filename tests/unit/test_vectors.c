/* tests/unit/test_vectors.c — table-driven vectors for lib/proto (tests/vectors, one .tsv
 * per module).
 *
 * Every non-comment line of every vector file becomes ONE cmocka test, registered at run time,
 * so adding a case is adding a line. A line with the wrong number of cells, an unreadable file,
 * a file without cases and a *.tsv file nobody handles each become a failing test: nothing is
 * skipped silently.
 *
 * File format: UTF-8, one case per line, cells separated by one TAB; lines starting with '#'
 * are comments (the first explains the columns); blank lines are ignored. JSON cells are raw
 * JSON text. Text cells understand \t \n \r \\ and \xHH (so a cell can hold a NUL byte or a
 * tab); a text cell that is exactly (null) stands for a NULL pointer where the column allows. */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include "proto/addr.h"
#include "proto/allowlist.h"
#include "proto/fscap.h"
#include "proto/netcap.h"
#include "proto/reason.h"

#ifndef VECTORS_DIR
#define VECTORS_DIR "tests/vectors"
#endif

#define MAX_CELLS 8
#define MAX_LINE 65536

struct row;
typedef void (*row_fn)(const struct row *r);

struct vfile {
        const char *name;
        size_t ncols;
        row_fn run;
};

struct row {
        const struct vfile *vf;
        char file[64];
        int line;
        size_t ncells;
        char *cells[MAX_CELLS];
        char *malformed;         /* set: the case fails with this message */
        char *name;
};

/* ---- cell helpers ---- */

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

/* Decodes a text cell into a fresh buffer (NUL-terminated, *len excludes it). Fails the case
 * on a bad escape. */
static char *unescape(const char *cell, size_t *len)
{
        size_t n = strlen(cell), o = 0;
        char *out = malloc(n + 1);
        assert_non_null(out);
        for (size_t i = 0; i < n; i++) {
                if (cell[i] != '\\') {
                        out[o++] = cell[i];
                        continue;
                }
                if (i + 1 >= n) {
                        free(out);
                        fail_msg("dangling backslash in cell \"%s\"", cell);
                }
                char c = cell[++i];
                if (c == 't')
                        out[o++] = '\t';
                else if (c == 'n')
                        out[o++] = '\n';
                else if (c == 'r')
                        out[o++] = '\r';
                else if (c == '\\')
                        out[o++] = '\\';
                else if (c == 'x' && i + 2 < n && hexval(cell[i + 1]) >= 0 &&
                         hexval(cell[i + 2]) >= 0) {
                        out[o++] = (char)(hexval(cell[i + 1]) * 16 + hexval(cell[i + 2]));
                        i += 2;
                } else {
                        free(out);
                        fail_msg("bad escape \\%c in cell \"%s\"", c, cell);
                }
        }
        out[o] = '\0';
        if (len)
                *len = o;
        return out;
}

static json_t *parse_json_cell(const char *cell)
{
        json_error_t je;
        json_t *j = json_loads(cell, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES,
                               &je);
        if (!j)
                fail_msg("vector JSON does not parse (%s): %s", je.text, cell);
        return j;
}

static bool expect_ok(const char *cell)
{
        if (strcmp(cell, "ok") == 0)
                return true;
        if (strcmp(cell, "err") == 0)
                return false;
        fail_msg("expect cell must be ok or err, got \"%s\"", cell);
        return false;
}

static void check_error(const err_t *err, const char *want, const char *what)
{
        if (!err_is_set(err))
                fail_msg("%s: error expected but none set", what);
        if (strcmp(want, "-") != 0 && !strstr(err->msg, want))
                fail_msg("%s: error \"%s\" lacks \"%s\"", what, err->msg, want);
}

/* "host:port" (host escaped; split at the last ':'; port 0-65535) */
static char *split_dest(const char *cell, uint16_t *port)
{
        char *d = unescape(cell, NULL);
        char *colon = strrchr(d, ':');
        bool ok = colon && colon[1] != '\0';
        unsigned long v = 0;
        for (const char *p = ok ? colon + 1 : ""; ok && *p; p++) {
                ok = *p >= '0' && *p <= '9' && v <= 65535;
                v = v * 10 + (unsigned long)(*p - '0');
        }
        if (!ok || v > 65535) {
                free(d);
                fail_msg("destination cell must be host:port with port 0-65535, got \"%s\"",
                         cell);
                return NULL;
        }
        *colon = '\0';
        *port = (uint16_t)v;
        return d;
}

/* ---- handlers, one per file ---- */

/* entry | ok/err | canonical or error substring | ref */
static void run_allowlist_parse(const struct row *r)
{
        size_t len;
        char *entry = unescape(r->cells[0], &len);
        allow_entry e;
        err_t err = ERR_INIT;
        int rc = allow_entry_parse(entry, &e, &err);
        bool want_ok = expect_ok(r->cells[1]);
        if (want_ok) {
                if (rc != 0) {
                        free(entry);
                        fail_msg("expected ok, got error: %s", err.msg);
                }
                char canon[ALLOW_ENTRY_MAX_LEN + 8];
                assert_true(allow_entry_format(&e, canon, sizeof(canon)) > 0);
                if (strcmp(canon, r->cells[2]) != 0) {
                        free(entry);
                        fail_msg("canonical \"%s\", expected \"%s\"", canon, r->cells[2]);
                }
                /* the canonical form is a fixed point */
                allow_entry again;
                assert_int_equal(allow_entry_parse(canon, &again, &err), 0);
                assert_string_equal(again.host, e.host);
                assert_int_equal(again.port, e.port);
                assert_int_equal(again.wildcard, e.wildcard);
        } else {
                free(entry);
                if (rc == 0)
                        fail_msg("expected an error, parsed as host \"%s\" port %u", e.host,
                                 (unsigned)e.port);
                check_error(&err, r->cells[2], "allow_entry_parse");
                return;
        }
        free(entry);
}

/* rules (JSON array) | host:port | match/nomatch | ref */
static void run_allowlist_match(const struct row *r)
{
        json_t *rules = parse_json_cell(r->cells[0]);
        allowlist l = { NULL, 0 };
        err_t err = ERR_INIT;
        if (allowlist_parse_json(rules, &l, &err) < 0) {
                json_decref(rules);
                fail_msg("rules do not parse: %s", err.msg);
        }
        json_decref(rules);
        uint16_t port;
        char *host = split_dest(r->cells[1], &port);
        bool want;
        if (strcmp(r->cells[2], "match") == 0) {
                want = true;
        } else if (strcmp(r->cells[2], "nomatch") == 0) {
                want = false;
        } else {
                free(host);
                allowlist_free(&l);
                fail_msg("expect must be match or nomatch, got \"%s\"", r->cells[2]);
                return;
        }
        bool got = allowlist_match(&l, host, port);
        /* the list answer must agree with asking each entry */
        bool any = false;
        for (size_t i = 0; i < l.n; i++)
                any = any || allow_entry_match(&l.entries[i], host, port);
        allowlist_free(&l);
        free(host);
        if (got != any)
                fail_msg("allowlist_match=%d but entries say %d", got, any);
        if (got != want)
                fail_msg("expected %s, got %s", want ? "match" : "nomatch",
                         got ? "match" : "nomatch");
}

/* capability JSON or - (absent) | host:port or - | allow/deny/error | reason or substring */
static void run_net_policy(const struct row *r)
{
        json_t *cap = strcmp(r->cells[0], "-") == 0 ? NULL : parse_json_cell(r->cells[0]);
        net_policy p = NET_POLICY_INIT;
        err_t err = ERR_INIT;
        int rc = net_policy_from_json(cap, &p, &err);
        json_decref(cap);
        const char *want = r->cells[2];
        if (strcmp(want, "error") == 0) {
                net_policy_free(&p);
                if (rc == 0)
                        fail_msg("expected the policy build to fail");
                check_error(&err, r->cells[3], "net_policy_from_json");
                /* a failed build leaves a policy that denies */
                assert_int_equal(p.mode, NET_MODE_NONE);
                return;
        }
        if (rc != 0)
                fail_msg("policy build failed: %s", err.msg);
        uint16_t port;
        char *host = split_dest(r->cells[1], &port);
        net_reason got = net_policy_check(&p, host, port);
        net_policy_free(&p);
        free(host);
        net_reason exp = net_reason_parse(r->cells[3]);
        if (strcmp(net_reason_name(exp), r->cells[3]) != 0)
                fail_msg("unknown reason code in vector: \"%s\"", r->cells[3]);
        bool allow = strcmp(want, "allow") == 0;
        if (!allow && strcmp(want, "deny") != 0)
                fail_msg("decision must be allow, deny or error, got \"%s\"", want);
        if (net_reason_allows(got) != allow || got != exp)
                fail_msg("expected %s %s, got %s", want, r->cells[3], net_reason_name(got));
}

/* input | default port | ok/err | "host port" or error substring | ref */
static void run_authority(const struct row *r)
{
        size_t len;
        char *in = unescape(r->cells[0], &len);
        char *end = NULL;
        errno = 0;
        unsigned long def = strtoul(r->cells[1], &end, 10);
        if (errno || !end || *end || def > 65535) {
                free(in);
                fail_msg("default port cell must be 0-65535, got \"%s\"", r->cells[1]);
        }
        char host[ALLOW_HOST_MAX_LEN + 1] = "";
        uint16_t port = 0;
        err_t err = ERR_INIT;
        int rc = authority_parse(in, len, (uint16_t)def, host, sizeof(host), &port, &err);
        free(in);
        if (expect_ok(r->cells[2])) {
                if (rc != 0)
                        fail_msg("expected ok, got error: %s", err.msg);
                char got[ALLOW_HOST_MAX_LEN + 16];
                int n = snprintf(got, sizeof(got), "%s %u", host, (unsigned)port);
                assert_true(n > 0 && (size_t)n < sizeof(got));
                if (strcmp(got, r->cells[3]) != 0)
                        fail_msg("got \"%s\", expected \"%s\"", got, r->cells[3]);
        } else {
                if (rc == 0)
                        fail_msg("expected an error, got host \"%s\" port %u", host,
                                 (unsigned)port);
                check_error(&err, r->cells[3], "authority_parse");
        }
}

static bool yes_no(const char *cell)
{
        if (strcmp(cell, "yes") == 0)
                return true;
        if (strcmp(cell, "no") == 0)
                return false;
        fail_msg("cell must be yes or no, got \"%s\"", cell);
        return false;
}

/* address or (null) | class | denied yes/no | IP literal yes/no | ref */
static void run_addr(const struct row *r)
{
        bool is_null = strcmp(r->cells[0], "(null)") == 0;
        char *a = is_null ? NULL : unescape(r->cells[0], NULL);
        addr_class c = addr_classify_str(a);
        bool lit = host_is_ip_literal(a);
        const char *want = r->cells[1];
        bool want_denied = yes_no(r->cells[2]);
        bool want_lit = yes_no(r->cells[3]);
        /* the strict forms must classify the same through a sockaddr */
        if (a) {
                struct sockaddr_in sin = { .sin_family = AF_INET };
                struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
                if (inet_pton(AF_INET, a, &sin.sin_addr) == 1)
                        assert_int_equal(addr_classify_sockaddr((struct sockaddr *)&sin,
                                                                sizeof(sin)), c);
                else if (inet_pton(AF_INET6, a, &sin6.sin6_addr) == 1)
                        assert_int_equal(addr_classify_sockaddr((struct sockaddr *)&sin6,
                                                                sizeof(sin6)), c);
        }
        free(a);
        if (strcmp(addr_class_name(c), want) != 0)
                fail_msg("class %s, expected %s", addr_class_name(c), want);
        if (addr_is_denied(c) != want_denied)
                fail_msg("denied=%d, expected %d", addr_is_denied(c), want_denied);
        if (lit != want_lit)
                fail_msg("host_is_ip_literal=%d, expected %d", lit, want_lit);
}

/* JSON or - (NULL) | ok/err | error substring or - | ref */
static void run_netcap(const struct row *r)
{
        json_t *cap = strcmp(r->cells[0], "-") == 0 ? NULL : parse_json_cell(r->cells[0]);
        err_t err = ERR_INIT;
        int rc = netcap_validate(cap, &err);
        net_policy p = NET_POLICY_INIT;
        err_t perr = ERR_INIT;
        int prc = rc == 0 ? net_policy_from_json(cap, &p, &perr) : 0;
        net_mode mode = p.mode;
        net_policy_free(&p);
        json_decref(cap);
        if (expect_ok(r->cells[1])) {
                if (rc != 0)
                        fail_msg("expected valid, got: %s", err.msg);
                /* whatever validates must build a policy with a known mode */
                if (prc != 0)
                        fail_msg("valid capability but policy build failed: %s", perr.msg);
                assert_int_not_equal(mode, NET_MODE_UNKNOWN);
        } else {
                if (rc == 0)
                        fail_msg("expected invalid, but it validated");
                check_error(&err, r->cells[2], "netcap_validate");
        }
}

static void run_fscap(const struct row *r)
{
        json_t *cap = strcmp(r->cells[0], "-") == 0 ? NULL : parse_json_cell(r->cells[0]);
        err_t err = ERR_INIT;
        int rc = fscap_validate(cap, &err);
        json_decref(cap);
        if (expect_ok(r->cells[1])) {
                if (rc != 0)
                        fail_msg("expected valid, got: %s", err.msg);
        } else {
                if (rc == 0)
                        fail_msg("expected invalid, but it validated");
                check_error(&err, r->cells[2], "fscap_validate");
        }
}

static const struct vfile vfiles[] = {
        { "allowlist_parse.tsv", 4, run_allowlist_parse },
        { "allowlist_match.tsv", 4, run_allowlist_match },
        { "net_policy.tsv", 5, run_net_policy },
        { "authority.tsv", 5, run_authority },
        { "addr.tsv", 5, run_addr },
        { "netcap_schema.tsv", 4, run_netcap },
        { "fscap_schema.tsv", 4, run_fscap },
};
#define NVFILES (sizeof(vfiles) / sizeof(vfiles[0]))

/* ---- registration ---- */

static void run_row(void **state)
{
        const struct row *r = *state;
        if (r->malformed)
                fail_msg("%s:%d: %s", r->file, r->line, r->malformed);
        r->vf->run(r);
}

struct rows {
        struct row **v;
        size_t n, cap;
};

static struct row *row_new(struct rows *rs, const struct vfile *vf, const char *file, int line)
{
        if (rs->n == rs->cap) {
                size_t ncap = rs->cap ? rs->cap * 2 : 256;
                struct row **nv = realloc(rs->v, ncap * sizeof(*nv));
                if (!nv)
                        abort();   /* test harness: out of memory is not a vector result */
                rs->v = nv;
                rs->cap = ncap;
        }
        struct row *r = calloc(1, sizeof(*r));
        if (!r)
                abort();
        r->vf = vf;
        int n = snprintf(r->file, sizeof(r->file), "%s", file);
        (void)n;   /* a long file name is only cut in the test name */
        r->line = line;
        rs->v[rs->n++] = r;
        return r;
}

/* Test names are one TAP line: '#' would start a TAP directive, control bytes would break the
 * line; both are shown escaped, and long cells are cut. */
static void row_name(struct row *r)
{
        char summary[72];
        size_t o = 0;
        const char *src = r->ncells ? r->cells[0] : "";
        for (size_t i = 0; src[i] && o + 5 < sizeof(summary); i++) {
                unsigned char c = (unsigned char)src[i];
                if (c == '#') {
                        memcpy(summary + o, "%23", 3);
                        o += 3;
                } else if (c < 0x20 || c == 0x7f) {
                        int w = snprintf(summary + o, sizeof(summary) - o, "\\x%02x", c);
                        if (w < 0)
                                break;
                        o += (size_t)w;
                } else {
                        summary[o++] = (char)c;
                }
        }
        summary[o] = '\0';
        size_t need = strlen(r->file) + sizeof(summary) + 32;
        r->name = malloc(need);
        if (!r->name)
                abort();
        int n = snprintf(r->name, need, "%s:%d %s", r->file, r->line, summary);
        (void)n;
}

static void load_file(struct rows *rs, const char *dir, const struct vfile *vf)
{
        char path[4096];
        int n = snprintf(path, sizeof(path), "%s/%s", dir, vf->name);
        size_t before = rs->n;
        FILE *f = (n > 0 && (size_t)n < sizeof(path)) ? fopen(path, "r") : NULL;
        if (!f) {
                struct row *r = row_new(rs, vf, vf->name, 0);
                r->malformed = strdup("cannot open vector file");
                row_name(r);
                return;
        }
        char *line = NULL;
        size_t lcap = 0;
        ssize_t got;
        int lineno = 0;
        while ((got = getline(&line, &lcap, f)) >= 0) {
                lineno++;
                size_t len = (size_t)got;
                if (len && line[len - 1] == '\n')
                        line[--len] = '\0';
                if (len == 0 || line[0] == '#')
                        continue;
                struct row *r = row_new(rs, vf, vf->name, lineno);
                if (len > MAX_LINE || strchr(line, '\r') || strlen(line) != len) {
                        r->malformed = strdup("line too long, or holds CR or NUL");
                } else {
                        char *p = line;
                        while (1) {
                                char *tab = strchr(p, '\t');
                                size_t cl = tab ? (size_t)(tab - p) : strlen(p);
                                if (r->ncells == MAX_CELLS) {
                                        r->ncells++;
                                        break;
                                }
                                r->cells[r->ncells] = strndup(p, cl);
                                if (!r->cells[r->ncells])
                                        abort();
                                r->ncells++;
                                if (!tab)
                                        break;
                                p = tab + 1;
                        }
                        if (r->ncells != vf->ncols) {
                                char msg[128];
                                int w = snprintf(msg, sizeof(msg),
                                                 "malformed line: %zu cells, expected %zu",
                                                 r->ncells, vf->ncols);
                                (void)w;
                                r->malformed = strdup(msg);
                                if (r->ncells > MAX_CELLS)
                                        r->ncells = MAX_CELLS;
                        }
                }
                row_name(r);
        }
        free(line);
        fclose(f);
        if (rs->n == before) {
                struct row *r = row_new(rs, vf, vf->name, 0);
                r->malformed = strdup("vector file has no cases");
                row_name(r);
        }
}

/* A *.tsv the harness has no handler for would otherwise be silently ignored. */
static void check_unknown_files(struct rows *rs, const char *dir)
{
        DIR *d = opendir(dir);
        if (!d) {
                struct row *r = row_new(rs, &vfiles[0], "(dir)", 0);
                r->malformed = strdup("cannot open the vectors directory");
                row_name(r);
                return;
        }
        struct dirent *de;
        while ((de = readdir(d))) {
                size_t l = strlen(de->d_name);
                if (l < 4 || strcmp(de->d_name + l - 4, ".tsv") != 0)
                        continue;
                bool known = false;
                for (size_t i = 0; i < NVFILES; i++)
                        known = known || strcmp(vfiles[i].name, de->d_name) == 0;
                if (!known) {
                        struct row *r = row_new(rs, &vfiles[0], de->d_name, 0);
                        r->malformed = strdup("no handler for this vector file");
                        row_name(r);
                }
        }
        closedir(d);
}

int main(void)
{
        const char *dir = getenv("VECTORS_DIR");
        if (!dir || !*dir)
                dir = VECTORS_DIR;
        struct rows rs = { NULL, 0, 0 };
        for (size_t i = 0; i < NVFILES; i++)
                load_file(&rs, dir, &vfiles[i]);
        check_unknown_files(&rs, dir);

        struct CMUnitTest *tests = calloc(rs.n, sizeof(*tests));
        if (!tests)
                abort();
        for (size_t i = 0; i < rs.n; i++) {
                tests[i].name = rs.v[i]->name;
                tests[i].test_func = run_row;
                tests[i].setup_func = NULL;
                tests[i].teardown_func = NULL;
                tests[i].initial_state = rs.v[i];
        }
        int rc = _cmocka_run_group_tests("vectors", tests, rs.n, NULL, NULL);
        for (size_t i = 0; i < rs.n; i++) {
                for (size_t c = 0; c < rs.v[i]->ncells; c++)
                        free(rs.v[i]->cells[c]);
                free(rs.v[i]->malformed);
                free(rs.v[i]->name);
                free(rs.v[i]);
        }
        free(rs.v);
        free(tests);
        return rc;
}
