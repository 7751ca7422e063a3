/* tests/unit/test_nx_wal.c — agent/wal: the finished-report WAL (DESIGN D16, spec nexus §5.14
 * + ADVISED). Line format and checksum, round trips through the file, crash leftovers (torn
 * tail, garbage, flipped bytes, over-long lines), removal by atomic rewrite, bounds, modes,
 * symlink refusal, locking, and clear errors when the directory is read-only. */
#include "testutil.h"
#include "agent/wal.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/capability.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/crypto.h"
#include "core/json.h"
#include "core/str.h"

#define T_MS INT64_C(1772202622123)   /* 2026-02-27T14:30:22.123Z */
#define ID1 "0195f0e4-7a1b-7c3d-8e9f-0a1b2c3d4e5f"
#define ID2 "0195f0e4-7a1b-7c3d-8e9f-0a1b2c3d4e60"
#define ID3 "0195f0e4-7a1b-7c3d-8e9f-0a1b2c3d4e61"

typedef struct fixture {
        char base[64];
        char dir[128];          /* <base>/work/.nexus — does not exist before the test */
        char file[160];         /* <dir>/finished.wal */
        bool caps_dropped;
} fixture;

/* ── capabilities: root ignores file modes, so "read-only" needs DAC caps dropped ────── */

static int dac_caps(bool keep)
{
        if (geteuid() != 0)
                return 0;
        struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
        struct __user_cap_data_struct d[2];
        if (syscall(SYS_capget, &h, d) < 0)
                return -1;
        uint32_t mask = (1u << CAP_DAC_OVERRIDE) | (1u << CAP_DAC_READ_SEARCH) |
                        (1u << CAP_FOWNER);
        if (keep)
                d[0].effective |= mask & d[0].permitted;
        else
                d[0].effective &= ~mask;
        return (int)syscall(SYS_capset, &h, d);
}

static void drop_dac(fixture *f)
{
        if (dac_caps(false) < 0)
                SKIP_BECAUSE("capset to drop CAP_DAC_OVERRIDE failed: %s", strerror(errno));
        f->caps_dropped = true;
}

static void restore_dac(fixture *f)
{
        if (f->caps_dropped)
                (void)dac_caps(true);
        f->caps_dropped = false;
}

static int setup(void **state)
{
        fixture *f = calloc(1, sizeof(*f));
        if (!f)
                return -1;
        if (str_copy(f->base, sizeof(f->base), "/tmp/nx_wal_XXXXXX") < 0 || !mkdtemp(f->base))
                return -1;
        if (str_printf(f->dir, sizeof(f->dir), "%s/work/.nexus", f->base) < 0 ||
            str_printf(f->file, sizeof(f->file), "%s/finished.wal", f->dir) < 0)
                return -1;
        *state = f;
        return 0;
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        return remove(p);
}

static int chmod_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)ftw;
        if (flag == FTW_D || flag == FTW_DP)
                (void)chmod(p, 0700);
        (void)st;
        return 0;
}

static int teardown(void **state)
{
        fixture *f = *state;
        restore_dac(f);
        nftw(f->base, chmod_entry, 16, FTW_PHYS);
        nftw(f->base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(f);
        return 0;
}

/* ── helpers ────────────────────────────────────────────────────────────────────────── */

static json_t *report(const char *status, int exit_code)
{
        return json_pack("{s:i,s:s,s:o,s:s}", "exit_code", exit_code, "status", status,
                         "artifacts_manifest", json_object(), "finished_at",
                         "2026-02-27T14:30:22.123Z");
}

static nx_wal *open_ok(const char *dir)
{
        err_t err = ERR_INIT;
        nx_wal *w = NULL;
        if (nx_wal_open(dir, &w, &err) < 0)
                fail_msg("nx_wal_open: %s", err.msg);
        assert_non_null(w);
        return w;
}

static void append_ok(nx_wal *w, const char *id, const json_t *r)
{
        err_t err = ERR_INIT;
        if (nx_wal_append(w, id, r, &err) < 0)
                fail_msg("nx_wal_append(%s): %s", id, err.msg);
}

static void remove_ok(nx_wal *w, const char *id)
{
        err_t err = ERR_INIT;
        if (nx_wal_remove(w, id, &err) < 0)
                fail_msg("nx_wal_remove(%s): %s", id, err.msg);
}

typedef struct pending {
        nx_wal_entry *v;
        size_t n;
        size_t skipped;
} pending;

static pending pending_ok(nx_wal *w)
{
        pending p = { NULL, 0, 777 };
        err_t err = ERR_INIT;
        if (nx_wal_pending(w, &p.v, &p.n, &p.skipped, &err) < 0)
                fail_msg("nx_wal_pending: %s", err.msg);
        return p;
}

static void pending_free(pending *p)
{
        nx_wal_entries_free(p->v, p->n);
        p->v = NULL;
        p->n = 0;
}

static char *slurp(const char *path, size_t *len)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                *len = 0;
                return strdup("");
        }
        struct stat st;
        assert_int_equal(fstat(fd, &st), 0);
        char *data = malloc((size_t)st.st_size + 1);
        assert_non_null(data);
        size_t got = 0;
        while (got < (size_t)st.st_size) {
                ssize_t r = read(fd, data + got, (size_t)st.st_size - got);
                assert_true(r > 0);
                got += (size_t)r;
        }
        close(fd);
        data[got] = '\0';
        *len = got;
        return data;
}

static void write_bytes(const char *path, const char *data, size_t len, int flags)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0600);
        assert_true(fd >= 0);
        size_t off = 0;
        while (off < len) {
                ssize_t r = write(fd, data + off, len - off);
                assert_true(r > 0);
                off += (size_t)r;
        }
        close(fd);
}

static size_t count_char(const char *s, size_t len, char c)
{
        size_t n = 0;
        for (size_t i = 0; i < len; i++)
                n += s[i] == c;
        return n;
}

static char *line_for(const char *id, const json_t *r, size_t *len)
{
        err_t err = ERR_INIT;
        char *line = NULL;
        if (nx_wal_format_line(id, T_MS, r, &line, len, &err) < 0)
                fail_msg("nx_wal_format_line: %s", err.msg);
        return line;
}

/* Creates the WAL directory (by opening once) and replaces the file with data. */
static void prepare_file(fixture *f, const char *data, size_t len)
{
        nx_wal_close(open_ok(f->dir));
        write_bytes(f->file, data, len, O_TRUNC);
}

static void id_n(char *out, size_t sz, int i)
{
        assert_true(str_printf(out, sz, "d-%05d", i) > 0);
}

/* ── ids ────────────────────────────────────────────────────────────────────────────── */

static void test_wal_check_id_accepts_uuid_and_safe_chars(void **state)
{
        err_t err = ERR_INIT;
        assert_int_equal(nx_wal_check_id(ID1, &err), 0);
        assert_int_equal(nx_wal_check_id("a.b_C-9", &err), 0);
        char max[NX_WAL_ID_MAX + 1];
        memset(max, 'a', NX_WAL_ID_MAX);
        max[NX_WAL_ID_MAX] = '\0';
        assert_int_equal(nx_wal_check_id(max, &err), 0);
}

static void test_wal_check_id_refuses_path_and_url_trouble(void **state)
{
        const char *bad[] = { "", ".", "..", "a/b", "../x", "a b", "a%2f", "a?b", "a\nb",
                              "caf\xc3\xa9" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                err_t err = ERR_INIT;
                if (nx_wal_check_id(bad[i], &err) == 0)
                        fail_msg("accepted id \"%s\"", bad[i]);
                assert_string_equal(err.code, ERR_INVALID);
        }
        char longer[NX_WAL_ID_MAX + 2];
        memset(longer, 'a', NX_WAL_ID_MAX + 1);
        longer[NX_WAL_ID_MAX + 1] = '\0';
        err_t err = ERR_INIT;
        assert_int_equal(nx_wal_check_id(longer, &err), -1);
        assert_non_null(strstr(err.msg, "longer than 128"));
        assert_int_equal(nx_wal_check_id(NULL, &err), -1);
        /* verdict only: no error object needed */
        assert_int_equal(nx_wal_check_id("a/b", NULL), -1);
        assert_int_equal(nx_wal_check_id(ID1, NULL), 0);
}

/* ── line format ────────────────────────────────────────────────────────────────────── */

static void test_wal_format_then_parse_round_trips(void **state)
{
        json_t *r = report("succeeded", 0);
        size_t len = 0;
        char *line = line_for(ID1, r, &len);
        assert_int_equal(line[len - 1], '\n');
        assert_int_equal(count_char(line, len, '\n'), 1);
        nx_wal_entry e;
        err_t err = ERR_INIT;
        if (nx_wal_parse_line(line, len, &e, &err) < 0)
                fail_msg("parse: %s", err.msg);
        assert_string_equal(e.directive_id, ID1);
        assert_int_equal(e.written_at_ms, T_MS);
        assert_true(json_equal(e.report, r));
        nx_wal_entry_clear(&e);
        /* without the newline too */
        assert_int_equal(nx_wal_parse_line(line, len - 1, &e, &err), 0);
        nx_wal_entry_clear(&e);
        free(line);
        json_decref(r);
}

static void test_wal_line_has_exactly_the_documented_fields(void **state)
{
        json_t *r = report("failed", 1);
        size_t len = 0;
        char *line = line_for(ID1, r, &len);
        err_t err = ERR_INIT;
        json_t *j = json_parse(line, len, true, &err);
        assert_non_null(j);
        const char *want[] = { "v", "directive_id", "written_at", "report", "sha256" };
        size_t i = 0;
        for (void *it = json_object_iter(j); it; it = json_object_iter_next(j, it), i++)
                assert_string_equal(json_object_iter_key(it), want[i]);
        assert_int_equal(i, 5);
        assert_int_equal(json_integer_value(json_object_get(j, "v")), 1);
        assert_string_equal(json_string_value(json_object_get(j, "written_at")),
                            "2026-02-27T14:30:22.123Z");
        /* DESIGN D16 decision: no directive token at rest */
        assert_null(strstr(line, "token"));
        json_decref(j);
        free(line);
        json_decref(r);
}

static void test_wal_checksum_covers_canonical_entry_without_sha(void **state)
{
        /* Recompute the documented checksum independently with jansson's own sorting. */
        json_t *r = json_pack("{s:s,s:i,s:{s:i,s:i}}", "status", "failed", "exit_code", 2,
                              "z", "b", 1, "a", 2);
        size_t len = 0;
        char *line = line_for(ID2, r, &len);
        json_t *entry = json_pack("{s:i,s:s,s:s,s:O}", "v", 1, "directive_id", ID2,
                                  "written_at", "2026-02-27T14:30:22.123Z", "report", r);
        char *canon = json_dumps(entry, JSON_COMPACT | JSON_SORT_KEYS);
        char hex[CRYPTO_SHA256_HEX_LEN + 1];
        assert_int_equal(crypto_sha256_hex(canon, strlen(canon), hex), 0);
        err_t err = ERR_INIT;
        json_t *j = json_parse(line, len, true, &err);
        assert_string_equal(json_string_value(json_object_get(j, "sha256")), hex);
        json_decref(j);
        free(canon);
        json_decref(entry);
        free(line);
        json_decref(r);
}

static void test_wal_report_key_order_does_not_change_the_line(void **state)
{
        json_t *a = json_pack("{s:i,s:s}", "exit_code", 0, "status", "succeeded");
        json_t *b = json_pack("{s:s,s:i}", "status", "succeeded", "exit_code", 0);
        size_t la = 0, lb = 0;
        char *x = line_for(ID1, a, &la);
        char *y = line_for(ID1, b, &lb);
        assert_int_equal(la, lb);
        assert_memory_equal(x, y, la);
        free(x);
        free(y);
        json_decref(a);
        json_decref(b);
}

static void test_wal_every_single_byte_flip_is_detected(void **state)
{
        json_t *r = report("succeeded", 0);
        size_t len = 0;
        char *line = line_for(ID1, r, &len);
        for (size_t i = 0; i + 1 < len; i++) {
                for (int bit = 0; bit < 8; bit += 3) {
                        char saved = line[i];
                        line[i] = (char)(line[i] ^ (1 << bit));
                        nx_wal_entry e;
                        err_t err = ERR_INIT;
                        if (nx_wal_parse_line(line, len, &e, &err) == 0)
                                fail_msg("flip of bit %d at offset %zu accepted", bit, i);
                        assert_true(err_is_set(&err));
                        line[i] = saved;
                }
        }
        free(line);
        json_decref(r);
}

static void test_wal_every_truncation_is_detected(void **state)
{
        json_t *r = report("succeeded", 0);
        size_t len = 0;
        char *line = line_for(ID1, r, &len);
        for (size_t cut = 0; cut + 1 < len; cut++) {
                nx_wal_entry e;
                err_t err = ERR_INIT;
                if (nx_wal_parse_line(line, cut, &e, &err) == 0)
                        fail_msg("line cut at %zu accepted", cut);
        }
        free(line);
        json_decref(r);
}

static void test_wal_parse_rejects_wrong_version_with_reason(void **state)
{
        const char *l = "{\"v\":2,\"directive_id\":\"a\",\"written_at\":\"2026-02-27T14:30:22."
                        "123Z\",\"report\":{},\"sha256\":\"00\"}";
        nx_wal_entry e;
        err_t err = ERR_INIT;
        assert_int_equal(nx_wal_parse_line(l, strlen(l), &e, &err), -1);
        assert_non_null(strstr(err.msg, "unsupported entry version 2"));
}

/* spec nexus §12 #239 (REF differs: REF stores the directive token in the WAL; ours never does) */
static void test_wal_parse_rejects_extra_token_field(void **state)
{
        /* a REF-style entry carrying a token is not ours, even if otherwise valid */
        json_t *r = report("succeeded", 0);
        size_t len = 0;
        char *line = line_for(ID1, r, &len);
        err_t err = ERR_INIT;
        json_t *j = json_parse(line, len, true, &err);
        json_object_set_new(j, "token", json_string("secret"));
        char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        nx_wal_entry e;
        assert_int_equal(nx_wal_parse_line(s, strlen(s), &e, &err), -1);
        assert_non_null(strstr(err.msg, "token"));
        free(s);
        json_decref(j);
        free(line);
        json_decref(r);
}

static void test_wal_parse_rejects_upper_case_checksum(void **state)
{
        json_t *r = report("succeeded", 0);
        size_t len = 0;
        char *line = line_for(ID1, r, &len);
        char *sha = strstr(line, "\"sha256\":\"") + 10;
        for (char *p = sha; *p != '"'; p++)
                if (*p >= 'a' && *p <= 'f')
                        *p = (char)(*p - 'a' + 'A');
        nx_wal_entry e;
        err_t err = ERR_INIT;
        assert_int_equal(nx_wal_parse_line(line, len, &e, &err), -1);
        assert_non_null(strstr(err.msg, "lower-case hex"));
        free(line);
        json_decref(r);
}

static void test_wal_parse_rejects_garbage(void **state)
{
        static const struct { const char *s; size_t n; } bad[] = {
                { "", 0 }, { "\n", 1 }, { "{}", 2 }, { "null", 4 }, { "[1,2]", 5 },
                { "{\"v\":1}", 7 }, { "\x00\x01\x02\xff", 4 }, { "{\"v\":1,\"v\":1}", 13 },
                { "{\"v\":1.0,\"directive_id\":\"a\",\"written_at\":\"x\",\"report\":{},"
                  "\"sha256\":\"\"}", 0 },
                { "{\"v\":1,\"directive_id\":\"a\",\"written_at\":\"yesterday\","
                  "\"report\":{},\"sha256\":\"\"}", 0 },
                { "{\"v\":1,\"directive_id\":\"a/b\",\"written_at\":\"2026-02-27T14:30:22Z\","
                  "\"report\":{},\"sha256\":\"\"}", 0 },
                { "{\"v\":1,\"directive_id\":\"a\",\"written_at\":\"2026-02-27T14:30:22Z\","
                  "\"report\":[],\"sha256\":\"\"}", 0 },
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                nx_wal_entry e = { .report = NULL };
                err_t err = ERR_INIT;
                size_t n = bad[i].n ? bad[i].n : strlen(bad[i].s);
                if (nx_wal_parse_line(bad[i].s, n, &e, &err) == 0)
                        fail_msg("garbage %zu accepted", i);
                assert_true(err_is_set(&err));
                assert_null(e.report);
        }
}

static void test_wal_format_refuses_unstorable_reports(void **state)
{
        char *line = NULL;
        size_t len = 0;
        err_t err = ERR_INIT;
        json_t *arr = json_array();
        assert_int_equal(nx_wal_format_line(ID1, T_MS, arr, &line, &len, &err), -1);
        assert_non_null(strstr(err.msg, "must be a JSON object, got array"));
        assert_null(line);
        json_decref(arr);

        json_t *nul = json_pack("{s:s%}", "s", "a\0b", (size_t)3);
        err_clear(&err);
        assert_int_equal(nx_wal_format_line(ID1, T_MS, nul, &line, &len, &err), -1);
        assert_non_null(strstr(err.msg, "NUL"));
        json_decref(nul);

        /* the reader refuses depth > 32 with the entry at level 1: report ≤ 31 levels */
        json_t *deep = json_object();
        json_t *cur = deep;
        for (int i = 1; i < 31; i++) {
                json_t *n = json_object();
                json_object_set_new(cur, "n", n);
                cur = n;
        }
        assert_int_equal(nx_wal_format_line(ID1, T_MS, deep, &line, &len, &err), 0);
        nx_wal_entry e;
        assert_int_equal(nx_wal_parse_line(line, len, &e, &err), 0);
        nx_wal_entry_clear(&e);
        free(line);
        line = NULL;
        json_object_set_new(cur, "n", json_object());
        err_clear(&err);
        assert_int_equal(nx_wal_format_line(ID1, T_MS, deep, &line, &len, &err), -1);
        assert_non_null(strstr(err.msg, "deeper"));
        json_decref(deep);

        json_t *r = report("succeeded", 0);
        err_clear(&err);
        assert_int_equal(nx_wal_format_line("../x", T_MS, r, &line, &len, &err), -1);
        assert_true(str_has_prefix(err.msg, "wal: directive id"));
        json_decref(r);
}

/* ── bounds ─────────────────────────────────────────────────────────────────────────── */

/* A report whose line (newline excluded) is exactly target bytes. */
static json_t *report_with_line_len(size_t target)
{
        json_t *r = json_pack("{s:s}", "pad", "");
        size_t len = 0;
        char *line = line_for(ID1, r, &len);
        free(line);
        json_decref(r);
        size_t base = len - 1;
        assert_true(target >= base);
        char *pad = malloc(target - base + 1);
        assert_non_null(pad);
        memset(pad, 'a', target - base);
        pad[target - base] = '\0';
        r = json_pack("{s:s}", "pad", pad);
        free(pad);
        return r;
}

static void test_wal_line_of_exactly_max_is_stored_one_more_is_refused(void **state)
{
        fixture *f = *state;
        nx_wal *w = open_ok(f->dir);
        json_t *r = report_with_line_len(NX_WAL_MAX_LINE);
        append_ok(w, ID1, r);
        json_t *big = report_with_line_len(NX_WAL_MAX_LINE + 1);
        err_t err = ERR_INIT;
        assert_int_equal(nx_wal_append(w, ID2, big, &err), -1);
        assert_string_equal(err.code, ERR_TOO_LARGE);
        assert_non_null(strstr(err.msg, "line limit"));
        assert_int_equal(nx_wal_depth(w), 1);
        nx_wal_close(w);
        w = open_ok(f->dir);
        pending p = pending_ok(w);
        assert_int_equal(p.n, 1);
        assert_int_equal(p.skipped, 0);
        assert_true(json_equal(p.v[0].report, r));
        pending_free(&p);
        nx_wal_close(w);
        json_decref(r);
        json_decref(big);
}

static void test_wal_overlong_line_is_skipped_not_fatal(void **state)
{
        fixture *f = *state;
        json_t *r1 = report("succeeded", 0), *r2 = report("failed", 1);
        size_t l1 = 0, l2 = 0;
        char *a = line_for(ID1, r1, &l1), *b = line_for(ID2, r2, &l2);
        size_t glen = (size_t)NX_WAL_MAX_LINE + 4096;
        size_t total = l1 + glen + 1 + l2;
        char *img = malloc(total);
        assert_non_null(img);
        memcpy(img, a, l1);
        memset(img + l1, 'x', glen);
        img[l1 + glen] = '\n';
        memcpy(img + l1 + glen + 1, b, l2);
        prepare_file(f, img, total);
        nx_wal *w = open_ok(f->dir);
        pending p = pending_ok(w);
        assert_int_equal(p.n, 2);
        assert_int_equal(p.skipped, 1);
        assert_string_equal(p.v[0].directive_id, ID1);
        assert_string_equal(p.v[1].directive_id, ID2);
        pending_free(&p);
        nx_wal_close(w);
        free(img);
        free(a);
        free(b);
        json_decref(r1);
        json_decref(r2);
}

static void test_wal_max_entries_then_append_fails_clearly(void **state)
{
        fixture *f = *state;
        json_t *r = report("succeeded", 0);
        /* build the file directly: 10000 fdatasyncs would only test the disk */
        size_t cap = (size_t)NX_WAL_MAX_ENTRIES * 512, used = 0;
        char *img = malloc(cap);
        assert_non_null(img);
        for (int i = 0; i < NX_WAL_MAX_ENTRIES; i++) {
                char id[32];
                id_n(id, sizeof(id), i);
                size_t len = 0;
                char *line = line_for(id, r, &len);
                assert_true(used + len <= cap);
                memcpy(img + used, line, len);
                used += len;
                free(line);
        }
        prepare_file(f, img, used);
        free(img);
        nx_wal *w = open_ok(f->dir);
        assert_int_equal(nx_wal_depth(w), NX_WAL_MAX_ENTRIES);
        err_t err = ERR_INIT;
        assert_int_equal(nx_wal_append(w, ID1, r, &err), -1);
        assert_string_equal(err.code, ERR_TOO_LARGE);
        assert_non_null(strstr(err.msg, "10000 reports are already pending"));
        /* replacing a pending entry does not grow the WAL and is still allowed */
        json_t *r2 = report("failed", 3);
        append_ok(w, "d-00042", r2);
        assert_int_equal(nx_wal_depth(w), NX_WAL_MAX_ENTRIES);
        /* after one removal there is room again */
        remove_ok(w, "d-00000");
        append_ok(w, ID1, r);
        assert_int_equal(nx_wal_depth(w), NX_WAL_MAX_ENTRIES);
        nx_wal_close(w);
        json_decref(r);
        json_decref(r2);
}

static void test_wal_load_counts_entries_beyond_max_as_skipped(void **state)
{
        json_t *r = report("succeeded", 0);
        size_t cap = (size_t)(NX_WAL_MAX_ENTRIES + 1) * 512, used = 0;
        char *img = malloc(cap);
        assert_non_null(img);
        for (int i = 0; i <= NX_WAL_MAX_ENTRIES; i++) {
                char id[32];
                id_n(id, sizeof(id), i);
                size_t len = 0;
                char *line = line_for(id, r, &len);
                memcpy(img + used, line, len);
                used += len;
                free(line);
        }
        nx_wal_entry *v = NULL;
        size_t n = 0, skipped = 0;
        err_t err = ERR_INIT;
        assert_int_equal(nx_wal_load_buffer(img, used, &v, &n, &skipped, &err), 0);
        assert_int_equal(n, NX_WAL_MAX_ENTRIES);
        assert_int_equal(skipped, 1);
        nx_wal_entries_free(v, n);
        free(img);
        json_decref(r);
}

/* ── the file: round trips ──────────────────────────────────────────────────────────── */

/* spec nexus §12 #74, #239 (<work_dir>/.nexus/finished.wal, 0600) */
static void test_wal_open_creates_dirs_0700_and_file_0600(void **state)
{
        fixture *f = *state;
        mode_t old = umask(022);
        nx_wal *w = open_ok(f->dir);
        umask(old);
        struct stat st;
        char work[100];
        assert_true(str_printf(work, sizeof(work), "%s/work", f->base) > 0);
        assert_int_equal(stat(work, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0700);
        assert_int_equal(stat(f->dir, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0700);
        assert_int_equal(stat(f->file, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(st.st_size, 0);
        nx_wal_close(w);
}

static void test_wal_open_tightens_existing_file_to_0600(void **state)
{
        fixture *f = *state;
        nx_wal_close(open_ok(f->dir));
        assert_int_equal(chmod(f->file, 0644), 0);
        nx_wal *w = open_ok(f->dir);
        struct stat st;
        assert_int_equal(stat(f->file, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        nx_wal_close(w);
}

/* spec nexus §12 #70 */
static void test_wal_fresh_dir_has_nothing_pending(void **state)
{
        fixture *f = *state;
        nx_wal *w = open_ok(f->dir);
        assert_int_equal(nx_wal_depth(w), 0);
        pending p = pending_ok(w);
        assert_int_equal(p.n, 0);
        assert_null(p.v);
        assert_int_equal(p.skipped, 0);
        nx_wal_close(w);
}

/* spec nexus §12 #69 */
static void test_wal_appends_survive_reopen_in_order(void **state)
{
        fixture *f = *state;
        json_t *r1 = report("succeeded", 0), *r2 = report("failed", 7);
        nx_wal *w = open_ok(f->dir);
        int64_t before = clock_now_ms();
        append_ok(w, ID1, r1);
        append_ok(w, ID2, r2);
        int64_t after = clock_now_ms();
        assert_int_equal(nx_wal_depth(w), 2);
        nx_wal_close(w);

        w = open_ok(f->dir);
        pending p = pending_ok(w);
        assert_int_equal(p.n, 2);
        assert_int_equal(p.skipped, 0);
        assert_string_equal(p.v[0].directive_id, ID1);
        assert_string_equal(p.v[1].directive_id, ID2);
        assert_true(json_equal(p.v[0].report, r1));
        assert_true(json_equal(p.v[1].report, r2));
        assert_string_equal(json_string_value(json_object_get(p.v[1].report, "status")),
                            "failed");
        assert_in_range(p.v[0].written_at_ms, before, after);
        pending_free(&p);
        nx_wal_close(w);
        json_decref(r1);
        json_decref(r2);
}

static void test_wal_file_holds_one_line_per_append(void **state)
{
        fixture *f = *state;
        json_t *r = report("succeeded", 0);
        nx_wal *w = open_ok(f->dir);
        append_ok(w, ID1, r);
        append_ok(w, ID2, r);
        size_t len = 0;
        char *data = slurp(f->file, &len);
        assert_int_equal(count_char(data, len, '\n'), 2);
        assert_int_equal(data[len - 1], '\n');
        free(data);
        nx_wal_close(w);
        json_decref(r);
}

static void test_wal_remove_leaves_the_others(void **state)
{
        fixture *f = *state;
        json_t *r1 = report("succeeded", 0), *r2 = report("failed", 1),
               *r3 = report("canceled", 137);
        nx_wal *w = open_ok(f->dir);
        append_ok(w, ID1, r1);
        append_ok(w, ID2, r2);
        append_ok(w, ID3, r3);
        remove_ok(w, ID2);
        assert_int_equal(nx_wal_depth(w), 2);
        pending p = pending_ok(w);
        assert_int_equal(p.n, 2);
        assert_string_equal(p.v[0].directive_id, ID1);
        assert_string_equal(p.v[1].directive_id, ID3);
        assert_true(json_equal(p.v[1].report, r3));
        pending_free(&p);
        /* appends after a rewrite go to the new file */
        append_ok(w, ID2, r2);
        nx_wal_close(w);

        w = open_ok(f->dir);
        p = pending_ok(w);
        assert_int_equal(p.n, 3);
        assert_string_equal(p.v[2].directive_id, ID2);
        pending_free(&p);
        nx_wal_close(w);
        size_t len = 0;
        char *data = slurp(f->file, &len);
        assert_int_equal(count_char(data, len, '\n'), 3);
        free(data);
        json_decref(r1);
        json_decref(r2);
        json_decref(r3);
}

static void test_wal_remove_is_atomic_rewrite_without_leftovers(void **state)
{
        fixture *f = *state;
        json_t *r = report("succeeded", 0);
        nx_wal *w = open_ok(f->dir);
        append_ok(w, ID1, r);
        append_ok(w, ID2, r);
        struct stat before, after;
        assert_int_equal(stat(f->file, &before), 0);
        remove_ok(w, ID1);
        assert_int_equal(stat(f->file, &after), 0);
        assert_true(before.st_ino != after.st_ino);      /* renamed over, not edited */
        assert_int_equal(after.st_mode & 07777, 0600);
        char tmp[200];
        assert_true(str_printf(tmp, sizeof(tmp), "%s.tmp", f->file) > 0);
        assert_int_equal(access(tmp, F_OK), -1);
        size_t len = 0;
        char *data = slurp(f->file, &len);
        nx_wal_entry e;
        err_t err = ERR_INIT;
        assert_int_equal(count_char(data, len, '\n'), 1);
        assert_int_equal(nx_wal_parse_line(data, len, &e, &err), 0);
        assert_string_equal(e.directive_id, ID2);
        nx_wal_entry_clear(&e);
        free(data);
        nx_wal_close(w);
        json_decref(r);
}

/* spec nexus §12 #71, #239 (entries removed one by one, file left empty) */
static void test_wal_remove_all_leaves_empty_file(void **state)
{
        fixture *f = *state;
        json_t *r = report("succeeded", 0);
        nx_wal *w = open_ok(f->dir);
        append_ok(w, ID1, r);
        append_ok(w, ID2, r);
        remove_ok(w, ID2);
        remove_ok(w, ID1);
        assert_int_equal(nx_wal_depth(w), 0);
        nx_wal_close(w);
        struct stat st;
        assert_int_equal(stat(f->file, &st), 0);
        assert_int_equal(st.st_size, 0);
        w = open_ok(f->dir);
        assert_int_equal(nx_wal_depth(w), 0);
        nx_wal_close(w);
        json_decref(r);
}

static void test_wal_remove_of_unknown_id_is_a_noop(void **state)
{
        fixture *f = *state;
        json_t *r = report("succeeded", 0);
        nx_wal *w = open_ok(f->dir);
        append_ok(w, ID1, r);
        struct stat before, after;
        assert_int_equal(stat(f->file, &before), 0);
        remove_ok(w, ID2);
        assert_int_equal(stat(f->file, &after), 0);
        assert_true(before.st_ino == after.st_ino);
        assert_int_equal(nx_wal_depth(w), 1);
        err_t err = ERR_INIT;
        assert_int_equal(nx_wal_remove(w, "../etc", &err), -1);
        assert_non_null(strstr(err.msg, "wal: remove"));
        nx_wal_close(w);
        json_decref(r);
}

static void test_wal_duplicate_id_last_wins(void **state)
{
        fixture *f = *state;
        json_t *old = report("failed", 1), *newer = report("succeeded", 0);
        nx_wal *w = open_ok(f->dir);
        append_ok(w, ID1, old);
        append_ok(w, ID2, old);
        append_ok(w, ID1, newer);
        assert_int_equal(nx_wal_depth(w), 2);
        pending p = pending_ok(w);
        assert_int_equal(p.n, 2);
        assert_string_equal(p.v[0].directive_id, ID1);
        assert_true(json_equal(p.v[0].report, newer));
        pending_free(&p);
        nx_wal_close(w);

        w = open_ok(f->dir);   /* and on load */
        p = pending_ok(w);
        assert_int_equal(p.n, 2);
        assert_int_equal(p.skipped, 0);
        assert_true(json_equal(p.v[0].report, newer));
        pending_free(&p);
        remove_ok(w, ID1);     /* removes the id, both of its lines */
        nx_wal_close(w);
        w = open_ok(f->dir);
        p = pending_ok(w);
        assert_int_equal(p.n, 1);
        assert_string_equal(p.v[0].directive_id, ID2);
        pending_free(&p);
        nx_wal_close(w);
        json_decref(old);
        json_decref(newer);
}

static void test_wal_append_refuses_bad_id_and_non_object(void **state)
{
        fixture *f = *state;
        nx_wal *w = open_ok(f->dir);
        json_t *r = report("succeeded", 0);
        err_t err = ERR_INIT;
        assert_int_equal(nx_wal_append(w, "a/b", r, &err), -1);
        assert_non_null(strstr(err.msg, "[A-Za-z0-9._-]"));
        json_t *s = json_string("x");
        err_clear(&err);
        assert_int_equal(nx_wal_append(w, ID1, s, &err), -1);
        assert_non_null(strstr(err.msg, "must be a JSON object"));
        assert_int_equal(nx_wal_depth(w), 0);
        struct stat st;
        assert_int_equal(stat(f->file, &st), 0);
        assert_int_equal(st.st_size, 0);
        json_decref(s);
        json_decref(r);
        nx_wal_close(w);
}

static void test_wal_append_refuses_report_that_does_not_read_back(void **state)
{
        fixture *f = *state;
        nx_wal *w = open_ok(f->dir);
        json_t *r = json_object();
        /* jansson's nocheck setter lets invalid UTF-8 in; the reader would refuse it */
        json_object_set_new(r, "status", json_stringn_nocheck("\xff\xfe", 2));
        err_t err = ERR_INIT;
        assert_int_equal(nx_wal_append(w, ID1, r, &err), -1);
        assert_non_null(strstr(err.msg, "not UTF-8"));
        assert_int_equal(nx_wal_depth(w), 0);
        json_decref(r);
        nx_wal_close(w);
}

/* ── crash leftovers ────────────────────────────────────────────────────────────────── */

/* spec nexus §12 #72 */
static void test_wal_non_json_line_between_valid_lines_is_skipped(void **state)
{
        fixture *f = *state;
        json_t *r = report("succeeded", 0);
        size_t l1 = 0, l2 = 0;
        char *a = line_for(ID1, r, &l1), *b = line_for(ID2, r, &l2);
        char img[4096];
        size_t n = 0;
        memcpy(img + n, a, l1);
        n += l1;
        memcpy(img + n, "this is not json\n\n", 18);
        n += 18;
        memcpy(img + n, b, l2);
        n += l2;
        prepare_file(f, img, n);
        nx_wal *w = open_ok(f->dir);
        pending p = pending_ok(w);
        assert_int_equal(p.n, 2);
        assert_int_equal(p.skipped, 1);   /* the blank line is not counted */
        pending_free(&p);
        nx_wal_close(w);
        free(a);
        free(b);
        json_decref(r);
}

static void test_wal_torn_tail_is_skipped_and_next_append_starts_clean(void **state)
{
        fixture *f = *state;
        json_t *r = report("succeeded", 0);
        nx_wal *w = open_ok(f->dir);
        append_ok(w, ID1, r);
        append_ok(w, ID2, r);
        nx_wal_close(w);
        /* crash in the middle of writing the second line */
        struct stat st;
        assert_int_equal(stat(f->file, &st), 0);
        assert_int_equal(truncate(f->file, st.st_size - 20), 0);

        w = open_ok(f->dir);
        pending p = pending_ok(w);
        assert_int_equal(p.n, 1);
        assert_int_equal(p.skipped, 1);
        assert_string_equal(p.v[0].directive_id, ID1);
        pending_free(&p);
        append_ok(w, ID3, r);
        nx_wal_close(w);

        w = open_ok(f->dir);
        p = pending_ok(w);
        assert_int_equal(p.n, 2);
        assert_int_equal(p.skipped, 1);
        assert_string_equal(p.v[1].directive_id, ID3);
        pending_free(&p);
        /* the next rewrite drops the torn line for good */
        remove_ok(w, ID1);
        nx_wal_close(w);
        w = open_ok(f->dir);
        p = pending_ok(w);
        assert_int_equal(p.n, 1);
        assert_int_equal(p.skipped, 0);
        pending_free(&p);
        nx_wal_close(w);
        json_decref(r);
}

static void test_wal_flipped_byte_in_file_skips_only_that_entry(void **state)
{
        fixture *f = *state;
        json_t *r1 = report("succeeded", 0), *r2 = report("failed", 1),
               *r3 = report("timed_out", 124);
        nx_wal *w = open_ok(f->dir);
        append_ok(w, ID1, r1);
        append_ok(w, ID2, r2);
        append_ok(w, ID3, r3);
        nx_wal_close(w);
        size_t len = 0;
        char *data = slurp(f->file, &len);
        char *second = strstr(data, "\"failed\"");
        assert_non_null(second);
        second[2] ^= 0x20;   /* "failed" → "fAiled": still valid JSON */
        write_bytes(f->file, data, len, O_TRUNC);
        free(data);

        w = open_ok(f->dir);
        pending p = pending_ok(w);
        assert_int_equal(p.n, 2);
        assert_int_equal(p.skipped, 1);
        assert_string_equal(p.v[0].directive_id, ID1);
        assert_string_equal(p.v[1].directive_id, ID3);
        pending_free(&p);
        nx_wal_close(w);
        json_decref(r1);
        json_decref(r2);
        json_decref(r3);
}

static void test_wal_flipped_byte_in_directive_id_is_detected(void **state)
{
        fixture *f = *state;
        json_t *r = report("succeeded", 0);
        nx_wal *w = open_ok(f->dir);
        append_ok(w, ID1, r);
        nx_wal_close(w);
        size_t len = 0;
        char *data = slurp(f->file, &len);
        char *id = strstr(data, ID1);
        assert_non_null(id);
        id[0] = '1';   /* another well-formed id: only the checksum can tell */
        write_bytes(f->file, data, len, O_TRUNC);
        free(data);
        w = open_ok(f->dir);
        pending p = pending_ok(w);
        assert_int_equal(p.n, 0);
        assert_int_equal(p.skipped, 1);
        nx_wal_close(w);
        json_decref(r);
}

static void test_wal_garbage_file_loads_as_empty(void **state)
{
        fixture *f = *state;
        char img[8192];
        uint64_t x = 88172645463325252ull;
        for (size_t i = 0; i < sizeof(img); i++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                img[i] = (char)x;
        }
        prepare_file(f, img, sizeof(img));
        nx_wal *w = open_ok(f->dir);
        pending p = pending_ok(w);
        assert_int_equal(p.n, 0);
        assert_true(p.skipped >= 1);
        assert_int_equal(nx_wal_depth(w), 0);
        /* and the WAL still works on top of it */
        json_t *r = report("succeeded", 0);
        append_ok(w, ID1, r);
        nx_wal_close(w);
        w = open_ok(f->dir);
        assert_int_equal(nx_wal_depth(w), 1);
        nx_wal_close(w);
        json_decref(r);
}

static void test_wal_entry_corrupted_after_open_is_skipped_then_dropped(void **state)
{
        fixture *f = *state;
        json_t *r = report("succeeded", 0);
        nx_wal *w = open_ok(f->dir);
        append_ok(w, ID1, r);
        append_ok(w, ID2, r);
        /* another writer scribbles over the first entry while we hold the WAL */
        int fd = open(f->file, O_WRONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, "XXXX", 4, 30), 4);
        close(fd);
        pending p = pending_ok(w);
        assert_int_equal(p.n, 1);
        assert_int_equal(p.skipped, 1);
        assert_string_equal(p.v[0].directive_id, ID2);
        pending_free(&p);
        remove_ok(w, ID2);   /* the rewrite cannot keep what no longer verifies */
        assert_int_equal(nx_wal_depth(w), 0);
        p = pending_ok(w);
        assert_int_equal(p.skipped, 1);
        nx_wal_close(w);
        json_decref(r);
}

static void test_wal_entry_whose_bytes_vanished_does_not_block_rewrite(void **state)
{
        fixture *f = *state;
        json_t *r = report("succeeded", 0);
        nx_wal *w = open_ok(f->dir);
        append_ok(w, ID1, r);
        struct stat st;
        assert_int_equal(stat(f->file, &st), 0);
        append_ok(w, ID2, r);
        /* someone truncates the file behind our back, REF-style */
        assert_int_equal(truncate(f->file, st.st_size), 0);
        pending p = pending_ok(w);
        assert_int_equal(p.n, 1);
        assert_int_equal(p.skipped, 1);
        pending_free(&p);
        remove_ok(w, ID1);
        assert_int_equal(nx_wal_depth(w), 0);
        append_ok(w, ID3, r);
        nx_wal_close(w);
        w = open_ok(f->dir);
        p = pending_ok(w);
        assert_int_equal(p.n, 1);
        assert_int_equal(p.skipped, 0);
        assert_string_equal(p.v[0].directive_id, ID3);
        pending_free(&p);
        nx_wal_close(w);
        json_decref(r);
}

static void test_wal_stale_temp_file_is_removed_at_open(void **state)
{
        fixture *f = *state;
        nx_wal_close(open_ok(f->dir));
        char tmp[200];
        assert_true(str_printf(tmp, sizeof(tmp), "%s.tmp", f->file) > 0);
        write_bytes(tmp, "half a rewrite", 14, O_TRUNC);
        nx_wal *w = open_ok(f->dir);
        assert_int_equal(access(tmp, F_OK), -1);
        nx_wal_close(w);
}

static void test_wal_many_superseded_lines_are_compacted(void **state)
{
        fixture *f = *state;
        json_t *r = report("succeeded", 0);
        size_t len = 0;
        char *line = line_for(ID1, r, &len);
        size_t lines = 2 * NX_WAL_MAX_ENTRIES;
        char *img = malloc(lines * len);
        assert_non_null(img);
        for (size_t i = 0; i < lines; i++)
                memcpy(img + i * len, line, len);
        prepare_file(f, img, lines * len);
        free(img);
        free(line);
        nx_wal *w = open_ok(f->dir);
        assert_int_equal(nx_wal_depth(w), 1);
        append_ok(w, ID2, r);
        nx_wal_close(w);
        size_t flen = 0;
        char *data = slurp(f->file, &flen);
        assert_int_equal(count_char(data, flen, '\n'), 2);
        free(data);
        json_decref(r);
}

static void test_wal_load_buffer_agrees_with_file_load(void **state)
{
        json_t *r = report("succeeded", 0);
        size_t l1 = 0;
        char *a = line_for(ID1, r, &l1);
        char img[2048];
        size_t n = 0;
        memcpy(img, "junk\n", 5);
        n += 5;
        memcpy(img + n, a, l1);
        n += l1;
        memcpy(img + n, a, l1 - 10);   /* torn copy, no newline */
        n += l1 - 10;
        nx_wal_entry *v = NULL;
        size_t cnt = 0, skipped = 0;
        err_t err = ERR_INIT;
        assert_int_equal(nx_wal_load_buffer(img, n, &v, &cnt, &skipped, &err), 0);
        assert_int_equal(cnt, 1);
        assert_int_equal(skipped, 2);
        assert_string_equal(v[0].directive_id, ID1);
        nx_wal_entries_free(v, cnt);
        assert_int_equal(nx_wal_load_buffer(NULL, 0, &v, &cnt, &skipped, &err), 0);
        assert_int_equal(cnt, 0);
        assert_int_equal(skipped, 0);
        free(a);
        json_decref(r);
}

/* ── refusals and errors ────────────────────────────────────────────────────────────── */

static void test_wal_symlinked_file_is_refused(void **state)
{
        fixture *f = *state;
        nx_wal_close(open_ok(f->dir));
        char target[200];
        assert_true(str_printf(target, sizeof(target), "%s/elsewhere", f->base) > 0);
        write_bytes(target, "precious\n", 9, O_TRUNC);
        assert_int_equal(unlink(f->file), 0);
        assert_int_equal(symlink(target, f->file), 0);
        nx_wal *w = (nx_wal *)f;   /* must be reset to NULL */
        err_t err = ERR_INIT;
        assert_int_equal(nx_wal_open(f->dir, &w, &err), -1);
        assert_null(w);
        assert_string_equal(err.code, ERR_FORBIDDEN);
        assert_non_null(strstr(err.msg, "symbolic link"));
        size_t len = 0;
        char *data = slurp(target, &len);
        assert_string_equal(data, "precious\n");
        free(data);
}

static void test_wal_non_regular_file_is_refused(void **state)
{
        fixture *f = *state;
        nx_wal_close(open_ok(f->dir));
        assert_int_equal(unlink(f->file), 0);
        assert_int_equal(mkfifo(f->file, 0600), 0);
        nx_wal *w = NULL;
        err_t err = ERR_INIT;
        assert_int_equal(nx_wal_open(f->dir, &w, &err), -1);
        assert_non_null(strstr(err.msg, "not a regular file"));
}

static void test_wal_second_open_of_same_dir_is_refused(void **state)
{
        fixture *f = *state;
        nx_wal *w = open_ok(f->dir);
        nx_wal *w2 = NULL;
        err_t err = ERR_INIT;
        assert_int_equal(nx_wal_open(f->dir, &w2, &err), -1);
        assert_null(w2);
        assert_string_equal(err.code, ERR_CONFLICT);
        assert_non_null(strstr(err.msg, "in use"));
        nx_wal_close(w);
        w2 = open_ok(f->dir);   /* the lock goes with the handle */
        nx_wal_close(w2);
}

static void test_wal_dir_under_a_file_fails_clearly(void **state)
{
        fixture *f = *state;
        char file[100], dir[160];
        assert_true(str_printf(file, sizeof(file), "%s/plain", f->base) > 0);
        write_bytes(file, "x", 1, O_TRUNC);
        assert_true(str_printf(dir, sizeof(dir), "%s/.nexus", file) > 0);
        nx_wal *w = NULL;
        err_t err = ERR_INIT;
        assert_int_equal(nx_wal_open(dir, &w, &err), -1);
        assert_true(str_has_prefix(err.msg, "wal: create WAL directory"));
        assert_int_equal(err.errnum, ENOTDIR);
        assert_int_equal(nx_wal_open("", &w, &err), -1);
}

static void test_wal_read_only_dir_open_fails_clearly(void **state)
{
        fixture *f = *state;
        nx_wal_close(open_ok(f->dir));
        assert_int_equal(unlink(f->file), 0);
        assert_int_equal(chmod(f->dir, 0500), 0);
        drop_dac(f);
        nx_wal *w = NULL;
        err_t err = ERR_INIT;
        int r = nx_wal_open(f->dir, &w, &err);
        restore_dac(f);
        assert_int_equal(r, -1);
        assert_int_equal(err.errnum, EACCES);
        assert_non_null(strstr(err.msg, "wal: open "));
        assert_non_null(strstr(err.msg, "finished.wal"));
        assert_non_null(strstr(err.msg, "Permission denied"));
}

static void test_wal_read_only_parent_mkdir_fails_clearly(void **state)
{
        fixture *f = *state;
        assert_int_equal(chmod(f->base, 0500), 0);
        drop_dac(f);
        nx_wal *w = NULL;
        err_t err = ERR_INIT;
        int r = nx_wal_open(f->dir, &w, &err);
        restore_dac(f);
        assert_int_equal(r, -1);
        assert_true(str_has_prefix(err.msg, "wal: create WAL directory "));
        assert_int_equal(err.errnum, EACCES);
}

static void test_wal_read_only_dir_remove_fails_and_keeps_entry(void **state)
{
        fixture *f = *state;
        json_t *r = report("succeeded", 0);
        nx_wal *w = open_ok(f->dir);
        append_ok(w, ID1, r);
        append_ok(w, ID2, r);
        assert_int_equal(chmod(f->dir, 0500), 0);
        drop_dac(f);
        err_t err = ERR_INIT;
        int rr = nx_wal_remove(w, ID1, &err);
        /* the open file itself stays writable: appends keep working */
        err_t err2 = ERR_INIT;
        int ra = nx_wal_append(w, ID3, r, &err2);
        restore_dac(f);
        assert_int_equal(rr, -1);
        assert_non_null(strstr(err.msg, "wal: create temp file in "));
        assert_non_null(strstr(err.msg, "Permission denied"));
        if (ra < 0)
                fail_msg("append in read-only dir: %s", err2.msg);
        assert_int_equal(nx_wal_depth(w), 3);
        pending p = pending_ok(w);
        assert_int_equal(p.n, 3);
        pending_free(&p);
        assert_int_equal(chmod(f->dir, 0700), 0);
        remove_ok(w, ID1);
        assert_int_equal(nx_wal_depth(w), 2);
        nx_wal_close(w);
        json_decref(r);
}

/* ── concurrency ────────────────────────────────────────────────────────────────────── */

struct appender {
        nx_wal *w;
        int i;
        int rc;
};

static void *append_thread(void *p)
{
        struct appender *a = p;
        char id[32];
        if (str_printf(id, sizeof(id), "conc-%02d", a->i) < 0)
                return NULL;
        json_t *r = json_pack("{s:i,s:s}", "exit_code", a->i, "status", "failed");
        err_t err = ERR_INIT;
        a->rc = nx_wal_append(a->w, id, r, &err);
        json_decref(r);
        return NULL;
}

/* spec nexus §12 #73 */
static void test_wal_twenty_concurrent_appends_give_twenty_entries(void **state)
{
        fixture *f = *state;
        nx_wal *w = open_ok(f->dir);
        pthread_t th[20];
        struct appender a[20];
        for (int i = 0; i < 20; i++) {
                a[i] = (struct appender){ w, i, -2 };
                assert_int_equal(pthread_create(&th[i], NULL, append_thread, &a[i]), 0);
        }
        for (int i = 0; i < 20; i++) {
                pthread_join(th[i], NULL);
                assert_int_equal(a[i].rc, 0);
        }
        nx_wal_close(w);
        w = open_ok(f->dir);
        pending p = pending_ok(w);
        assert_int_equal(p.n, 20);
        assert_int_equal(p.skipped, 0);
        bool seen[20] = { false };
        for (size_t i = 0; i < p.n; i++) {
                int64_t code = json_integer_value(json_object_get(p.v[i].report, "exit_code"));
                assert_in_range(code, 0, 19);
                assert_false(seen[code]);
                seen[code] = true;
        }
        pending_free(&p);
        nx_wal_close(w);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_wal_check_id_accepts_uuid_and_safe_chars),
                cmocka_unit_test(test_wal_check_id_refuses_path_and_url_trouble),
                cmocka_unit_test(test_wal_format_then_parse_round_trips),
                cmocka_unit_test(test_wal_line_has_exactly_the_documented_fields),
                cmocka_unit_test(test_wal_checksum_covers_canonical_entry_without_sha),
                cmocka_unit_test(test_wal_report_key_order_does_not_change_the_line),
                cmocka_unit_test(test_wal_every_single_byte_flip_is_detected),
                cmocka_unit_test(test_wal_every_truncation_is_detected),
                cmocka_unit_test(test_wal_parse_rejects_wrong_version_with_reason),
                cmocka_unit_test(test_wal_parse_rejects_extra_token_field),
                cmocka_unit_test(test_wal_parse_rejects_upper_case_checksum),
                cmocka_unit_test(test_wal_parse_rejects_garbage),
                cmocka_unit_test(test_wal_format_refuses_unstorable_reports),
                T(test_wal_line_of_exactly_max_is_stored_one_more_is_refused),
                T(test_wal_overlong_line_is_skipped_not_fatal),
                T(test_wal_max_entries_then_append_fails_clearly),
                cmocka_unit_test(test_wal_load_counts_entries_beyond_max_as_skipped),
                T(test_wal_open_creates_dirs_0700_and_file_0600),
                T(test_wal_open_tightens_existing_file_to_0600),
                T(test_wal_fresh_dir_has_nothing_pending),
                T(test_wal_appends_survive_reopen_in_order),
                T(test_wal_file_holds_one_line_per_append),
                T(test_wal_remove_leaves_the_others),
                T(test_wal_remove_is_atomic_rewrite_without_leftovers),
                T(test_wal_remove_all_leaves_empty_file),
                T(test_wal_remove_of_unknown_id_is_a_noop),
                T(test_wal_duplicate_id_last_wins),
                T(test_wal_append_refuses_bad_id_and_non_object),
                T(test_wal_append_refuses_report_that_does_not_read_back),
                T(test_wal_non_json_line_between_valid_lines_is_skipped),
                T(test_wal_torn_tail_is_skipped_and_next_append_starts_clean),
                T(test_wal_flipped_byte_in_file_skips_only_that_entry),
                T(test_wal_flipped_byte_in_directive_id_is_detected),
                T(test_wal_garbage_file_loads_as_empty),
                T(test_wal_entry_corrupted_after_open_is_skipped_then_dropped),
                T(test_wal_entry_whose_bytes_vanished_does_not_block_rewrite),
                T(test_wal_stale_temp_file_is_removed_at_open),
                T(test_wal_many_superseded_lines_are_compacted),
                cmocka_unit_test(test_wal_load_buffer_agrees_with_file_load),
                T(test_wal_symlinked_file_is_refused),
                T(test_wal_non_regular_file_is_refused),
                T(test_wal_second_open_of_same_dir_is_refused),
                T(test_wal_dir_under_a_file_fails_clearly),
                T(test_wal_read_only_dir_open_fails_clearly),
                T(test_wal_read_only_parent_mkdir_fails_clearly),
                T(test_wal_read_only_dir_remove_fails_and_keeps_entry),
                T(test_wal_twenty_concurrent_appends_give_twenty_entries),
        };
#undef T
        return cmocka_run_group_tests(tests, NULL, NULL);
}
