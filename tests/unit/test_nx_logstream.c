/* tests/unit/test_nx_logstream.c — agent/logstream: chunking, seqs, the shared cap, truncation
 * flags, the bounded outbox, overflow to disk and its symlink defences (nexus §5.9, §5.10). */
#include "testutil.h"
#include "agent/logstream.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "core/json.h"
#include "core/str.h"

#define ID "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
#define KIB 1024

/* ── fixtures ─────────────────────────────────────────────────────────────────────── */

typedef struct fixture {
        char root[128];         /* mkdtemp: holds facility/ and outside/ */
        char facility[192];
        char outside[192];      /* where a planted symlink points: must stay untouched */
        int facility_fd;
        bool no_openat2;
} fixture;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
        (void)sb;
        (void)flag;
        (void)ftw;
        return remove(path);
}

static int fixture_setup_mode(void **state, bool no_openat2)
{
        fixture *f = calloc(1, sizeof(*f));
        if (!f)
                return -1;
        const char *tmp = getenv("TMPDIR");
        if (str_printf(f->root, sizeof(f->root), "%s/nxlog.XXXXXX", tmp && tmp[0] ? tmp : "/tmp")
            < 0 || !mkdtemp(f->root))
                return -1;
        if (str_printf(f->facility, sizeof(f->facility), "%s/facility", f->root) < 0 ||
            str_printf(f->outside, sizeof(f->outside), "%s/outside", f->root) < 0 ||
            mkdir(f->facility, 0755) < 0 || mkdir(f->outside, 0755) < 0)
                return -1;
        f->facility_fd = open(f->facility, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (f->facility_fd < 0)
                return -1;
        f->no_openat2 = no_openat2;
        *state = f;
        return 0;
}

static int fixture_setup(void **state) { return fixture_setup_mode(state, false); }
static int fixture_setup_fallback(void **state) { return fixture_setup_mode(state, true); }

static int fixture_teardown(void **state)
{
        fixture *f = *state;
        if (!f)
                return 0;
        close(f->facility_fd);
        nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(f);
        *state = NULL;
        return 0;
}

/* Small chunks, no overflow: the shape of most cases. */
static nx_logstream_cfg cfg_plain(int64_t cap, size_t chunk)
{
        return (nx_logstream_cfg){
                .cap_bytes = cap,
                .chunk_bytes = chunk,
                .outbox_max_bytes = 1024 * KIB,
                .overflow_enabled = false,
                .facility_dirfd = -1,
        };
}

static nx_logstream_cfg cfg_overflow(const fixture *f, int64_t cap, size_t chunk,
                                     int64_t per_stream)
{
        nx_logstream_cfg c = cfg_plain(cap, chunk);
        c.overflow_enabled = true;
        c.facility_dirfd = f->facility_fd;
        c.directive_id = ID;
        c.overflow_max_per_stream = per_stream;
        c.no_openat2 = f->no_openat2;
        return c;
}

static nx_logstream *new_ok(const nx_logstream_cfg *c)
{
        err_t err = ERR_INIT;
        nx_logstream *ls = NULL;
        int rc = nx_logstream_new(c, &ls, &err);
        if (rc < 0)
                fail_msg("nx_logstream_new: %s", err.msg);
        return ls;
}

static void write_ok(nx_logstream *ls, nx_stream s, const void *p, size_t n)
{
        err_t err = ERR_INIT;
        if (nx_logstream_write(ls, s, p, n, &err) < 0)
                fail_msg("nx_logstream_write: %s", err.msg);
}

static void write_str(nx_logstream *ls, nx_stream s, const char *text)
{
        write_ok(ls, s, text, strlen(text));
}

/* What the uploader saw, per stream. */
typedef struct drained {
        buf data[NX_STREAM_COUNT];
        int64_t seqs[NX_STREAM_COUNT][64];
        size_t lens[NX_STREAM_COUNT][64];
        bool trunc[NX_STREAM_COUNT][64];
        size_t n[NX_STREAM_COUNT];
        size_t total_chunks;
} drained;

static void drained_init(drained *d)
{
        memset(d, 0, sizeof(*d));
        for (int i = 0; i < NX_STREAM_COUNT; i++)
                d->data[i] = BUF_INIT(128 * 1024 * 1024);
}

static void drained_free(drained *d)
{
        for (int i = 0; i < NX_STREAM_COUNT; i++)
                buf_free(&d->data[i]);
}

static void drain(nx_logstream *ls, drained *d)
{
        nx_log_chunk c;
        while (nx_logstream_next(ls, &c)) {
                int s = (int)c.stream;
                assert_int_equal(buf_append(&d->data[s], c.bytes, c.len), 0);
                if (d->n[s] < 64) {
                        d->seqs[s][d->n[s]] = c.seq;
                        d->lens[s][d->n[s]] = c.len;
                        d->trunc[s][d->n[s]] = c.truncated;
                }
                d->n[s]++;
                d->total_chunks++;
                nx_logstream_chunk_done(ls, &c);
        }
}

static char *overflow_path(const fixture *f, const char *file)
{
        char *p = str_dup_printf("%s/.nexus/overflow/%s/%s", f->facility, ID, file);
        assert_non_null(p);
        return p;
}

/* Reads a whole file; NULL (and *len 0) when it does not exist. */
static char *slurp(const char *path, size_t *len)
{
        *len = 0;
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return NULL;
        _cleanup_buf_ buf b = BUF_INIT(256 * 1024 * 1024);
        char tmp[65536];
        for (;;) {
                ssize_t r = read(fd, tmp, sizeof(tmp));
                assert_true(r >= 0);
                if (r == 0)
                        break;
                assert_int_equal(buf_append(&b, tmp, (size_t)r), 0);
        }
        assert_int_equal(buf_append(&b, "", 0), 0);
        return buf_steal(&b, len);
}

static bool exists_nofollow(const char *path)
{
        struct stat st;
        return lstat(path, &st) == 0;
}

static size_t dir_entries(const char *path)
{
        size_t n = 0;
        DIR *d = opendir(path);
        if (!d)
                return 0;
        struct dirent *e;
        while ((e = readdir(d)))
                if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                        n++;
        closedir(d);
        return n;
}

/* Deterministic non-repeating bytes so a misplaced range shows. */
static void fill_pattern(uint8_t *p, size_t n, uint32_t seed)
{
        uint32_t x = seed * 2654435761u + 1;
        for (size_t i = 0; i < n; i++) {
                x = x * 1103515245u + 12345u;
                p[i] = (uint8_t)(x >> 16);
        }
}

/* ── configuration ────────────────────────────────────────────────────────────────── */

static void test_new_rejects_zero_chunk_bytes(void **state)
{
        nx_logstream_cfg c = cfg_plain(100, 0);
        nx_logstream *ls = NULL;
        err_t err = ERR_INIT;
        assert_int_equal(nx_logstream_new(&c, &ls, &err), -1);
        assert_null(ls);
        assert_non_null(strstr(err.msg, "chunk_bytes"));
}

static void test_new_rejects_chunk_larger_than_server_max(void **state)
{
        nx_logstream_cfg c = cfg_plain(100, NX_LOGSTREAM_CHUNK_MAX + 1);
        c.outbox_max_bytes = 4 * NX_LOGSTREAM_CHUNK_MAX;
        nx_logstream *ls = NULL;
        err_t err = ERR_INIT;
        assert_int_equal(nx_logstream_new(&c, &ls, &err), -1);
        assert_non_null(strstr(err.msg, "out of range"));
}

static void test_new_rejects_outbox_that_cannot_hold_one_chunk(void **state)
{
        nx_logstream_cfg c = cfg_plain(100, 4096);
        c.outbox_max_bytes = 4096;      /* payload fits, bookkeeping does not */
        nx_logstream *ls = NULL;
        err_t err = ERR_INIT;
        assert_int_equal(nx_logstream_new(&c, &ls, &err), -1);
        assert_non_null(strstr(err.msg, "outbox"));
        c.outbox_max_bytes = nx_logstream_chunk_charge(4096);
        assert_int_equal(nx_logstream_new(&c, &ls, &err), 0);
        nx_logstream_free(ls);
}

static void test_new_rejects_negative_cap(void **state)
{
        nx_logstream_cfg c = cfg_plain(-1, 16);
        nx_logstream *ls = NULL;
        err_t err = ERR_INIT;
        assert_int_equal(nx_logstream_new(&c, &ls, &err), -1);
        assert_non_null(strstr(err.msg, ">= 0"));
}

static void test_new_rejects_unsafe_directive_id_when_overflow_on(void **state)
{
        fixture *f = *state;
        const char *bad[] = { "../x", "a/b", "", ".", "..", ".hidden" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                nx_logstream_cfg c = cfg_overflow(f, 10, 4, 100);
                c.directive_id = bad[i];
                nx_logstream *ls = NULL;
                err_t err = ERR_INIT;
                assert_int_equal(nx_logstream_new(&c, &ls, &err), -1);
                assert_null(ls);
                assert_non_null(strstr(err.msg, "directive id"));
        }
}

static void test_new_rejects_overflow_dir_with_dotdot_or_absolute(void **state)
{
        fixture *f = *state;
        const char *bad[] = { "../escape", ".nexus/../../x", "/etc", ".." };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                nx_logstream_cfg c = cfg_overflow(f, 10, 4, 100);
                c.overflow_rel_dir = bad[i];
                nx_logstream *ls = NULL;
                err_t err = ERR_INIT;
                assert_int_equal(nx_logstream_new(&c, &ls, &err), -1);
                assert_non_null(strstr(err.msg, "log_overflow.dir"));
        }
}

static void test_overflow_without_facility_is_off_and_manifest_empty(void **state)
{
        nx_logstream_cfg c = cfg_plain(4, 4);
        c.overflow_enabled = true;
        c.overflow_max_per_stream = 100;
        c.directive_id = ID;    /* facility_dirfd stays -1 */
        nx_logstream *ls = new_ok(&c);
        write_str(ls, NX_STDOUT, "0123456789");
        nx_logstream_stats st;
        nx_logstream_stats_get(ls, NX_STDOUT, &st);
        assert_int_equal(st.overflow, NX_OVERFLOW_OFF);
        assert_int_equal(st.discarded_bytes, 6);
        json_t *m = nx_logstream_manifest(ls);
        assert_int_equal(json_object_size(m), 0);
        json_decref(m);
        nx_logstream_free(ls);
}

/* ── seqs and chunking (§5.9) ─────────────────────────────────────────────────────── */

static void test_seq_starts_at_zero_and_counts_per_chunk(void **state)
{
        nx_logstream_cfg c = cfg_plain(1000, 16);
        nx_logstream *ls = new_ok(&c);
        write_str(ls, NX_STDOUT, "a");
        write_str(ls, NX_STDOUT, "b");
        write_str(ls, NX_STDOUT, "c");
        drained d;
        drained_init(&d);
        drain(ls, &d);
        assert_int_equal(d.n[NX_STDOUT], 3);
        for (int i = 0; i < 3; i++)
                assert_int_equal(d.seqs[NX_STDOUT][i], i);
        drained_free(&d);
        nx_logstream_free(ls);
}

static void test_seq_counters_are_independent_per_stream(void **state)
{
        nx_logstream_cfg c = cfg_plain(1000, 16);
        nx_logstream *ls = new_ok(&c);
        write_str(ls, NX_STDOUT, "o1");
        write_str(ls, NX_STDERR, "e1");
        write_str(ls, NX_STDOUT, "o2");
        write_str(ls, NX_STDERR, "e2");
        write_str(ls, NX_STDERR, "e3");
        drained d;
        drained_init(&d);
        drain(ls, &d);
        assert_int_equal(d.n[NX_STDOUT], 2);
        assert_int_equal(d.n[NX_STDERR], 3);
        assert_int_equal(d.seqs[NX_STDOUT][1], 1);
        assert_int_equal(d.seqs[NX_STDERR][0], 0);
        assert_int_equal(d.seqs[NX_STDERR][2], 2);
        assert_string_equal(d.data[NX_STDERR].data, "e1e2e3");
        drained_free(&d);
        nx_logstream_free(ls);
}

static void test_chunks_come_out_in_write_order_across_streams(void **state)
{
        nx_logstream_cfg c = cfg_plain(1000, 16);
        nx_logstream *ls = new_ok(&c);
        write_str(ls, NX_STDERR, "first");
        write_str(ls, NX_STDOUT, "second");
        nx_log_chunk ch;
        assert_true(nx_logstream_next(ls, &ch));
        assert_int_equal(ch.stream, NX_STDERR);
        assert_memory_equal(ch.bytes, "first", 5);
        nx_logstream_chunk_done(ls, &ch);
        assert_true(nx_logstream_next(ls, &ch));
        assert_int_equal(ch.stream, NX_STDOUT);
        nx_logstream_chunk_done(ls, &ch);
        assert_false(nx_logstream_next(ls, &ch));
        nx_logstream_free(ls);
}

static void test_write_is_split_into_chunk_bytes_pieces(void **state)
{
        nx_logstream_cfg c = cfg_plain(1000, 4);
        nx_logstream *ls = new_ok(&c);
        write_str(ls, NX_STDOUT, "0123456789");
        drained d;
        drained_init(&d);
        drain(ls, &d);
        assert_int_equal(d.n[NX_STDOUT], 3);
        assert_int_equal(d.lens[NX_STDOUT][0], 4);
        assert_int_equal(d.lens[NX_STDOUT][1], 4);
        assert_int_equal(d.lens[NX_STDOUT][2], 2);
        assert_int_equal(d.seqs[NX_STDOUT][2], 2);
        assert_string_equal(d.data[NX_STDOUT].data, "0123456789");
        for (int i = 0; i < 3; i++)
                assert_false(d.trunc[NX_STDOUT][i]);
        drained_free(&d);
        nx_logstream_free(ls);
}

static void test_empty_write_produces_no_chunk_and_no_seq(void **state)
{
        nx_logstream_cfg c = cfg_plain(1000, 4);
        nx_logstream *ls = new_ok(&c);
        write_ok(ls, NX_STDOUT, "", 0);
        nx_log_chunk ch;
        assert_false(nx_logstream_next(ls, &ch));
        write_str(ls, NX_STDOUT, "x");
        assert_true(nx_logstream_next(ls, &ch));
        assert_int_equal(ch.seq, 0);
        nx_logstream_chunk_done(ls, &ch);
        nx_logstream_free(ls);
}

static void test_unknown_stream_is_refused(void **state)
{
        nx_logstream_cfg c = cfg_plain(1000, 4);
        nx_logstream *ls = new_ok(&c);
        err_t err = ERR_INIT;
        assert_int_equal(nx_logstream_write(ls, (nx_stream)2, "x", 1, &err), -1);
        assert_non_null(strstr(err.msg, "neither stdout nor stderr"));
        nx_log_chunk ch;
        assert_false(nx_logstream_next(ls, &ch));
        nx_logstream_free(ls);
}

static void test_message_shares_seq_and_is_split(void **state)
{
        nx_logstream_cfg c = cfg_plain(1000, 8);
        nx_logstream *ls = new_ok(&c);
        err_t err = ERR_INIT;
        assert_int_equal(nx_logstream_message(ls, NX_STDERR,
                                              "[prepare] facility empty; cloning x\n", &err), 0);
        write_str(ls, NX_STDERR, "git says hi");
        drained d;
        drained_init(&d);
        drain(ls, &d);
        /* 36 bytes → 5 chunks of <= 8, then the output continues the numbering */
        assert_int_equal(d.n[NX_STDERR], 7);
        assert_int_equal(d.seqs[NX_STDERR][5], 5);
        assert_string_equal(d.data[NX_STDERR].data,
                            "[prepare] facility empty; cloning x\ngit says hi");
        drained_free(&d);
        nx_logstream_free(ls);
}

/* spec nexus §12 #36 */
static void test_chunk_to_json_matches_log_chunk_request(void **state)
{
        nx_logstream_cfg c = cfg_plain(3, 8);
        nx_logstream *ls = new_ok(&c);
        write_str(ls, NX_STDERR, "hello");
        nx_log_chunk ch;
        assert_true(nx_logstream_next(ls, &ch));
        err_t err = ERR_INIT;
        json_t *j = nx_log_chunk_to_json(&ch, &err);
        assert_non_null(j);
        _cleanup_free_ char *s = json_dump_compact(j);
        assert_string_equal(s, "{\"stream\":\"stderr\",\"seq\":0,\"bytes\":\"aGVs\","
                               "\"truncated\":true}");
        json_decref(j);
        nx_logstream_chunk_done(ls, &ch);
        write_str(ls, NX_STDOUT, "x");
        nx_logstream_free(ls);
}

static void test_chunk_to_json_omits_truncated_when_false(void **state)
{
        nx_logstream_cfg c = cfg_plain(100, 8);
        nx_logstream *ls = new_ok(&c);
        write_str(ls, NX_STDOUT, "ok");
        nx_log_chunk ch;
        assert_true(nx_logstream_next(ls, &ch));
        err_t err = ERR_INIT;
        json_t *j = nx_log_chunk_to_json(&ch, &err);
        _cleanup_free_ char *s = json_dump_compact(j);
        assert_string_equal(s, "{\"stream\":\"stdout\",\"seq\":0,\"bytes\":\"b2s=\"}");
        json_decref(j);
        nx_logstream_chunk_done(ls, &ch);
        nx_logstream_free(ls);
}

/* ── the shared cap and truncation flags ──────────────────────────────────────────── */

static void test_output_exactly_at_cap_is_not_truncated(void **state)
{
        nx_logstream_cfg c = cfg_plain(10, 4);
        nx_logstream *ls = new_ok(&c);
        write_str(ls, NX_STDOUT, "0123456789");
        drained d;
        drained_init(&d);
        drain(ls, &d);
        assert_int_equal(d.n[NX_STDOUT], 3);
        for (int i = 0; i < 3; i++)
                assert_false(d.trunc[NX_STDOUT][i]);
        assert_false(nx_logstream_truncated(ls, NX_STDOUT));
        drained_free(&d);
        nx_logstream_free(ls);
}

/* spec nexus §12 #205 */
static void test_cap_hit_mid_chunk_flags_that_chunk_only(void **state)
{
        nx_logstream_cfg c = cfg_plain(10, 4);
        nx_logstream *ls = new_ok(&c);
        write_str(ls, NX_STDOUT, "0123456789AB");
        drained d;
        drained_init(&d);
        drain(ls, &d);
        /* pieces 4,4,4: the third gets 2 of its 4 bytes */
        assert_int_equal(d.n[NX_STDOUT], 3);
        assert_false(d.trunc[NX_STDOUT][0]);
        assert_false(d.trunc[NX_STDOUT][1]);
        assert_true(d.trunc[NX_STDOUT][2]);
        assert_int_equal(d.lens[NX_STDOUT][2], 2);
        assert_string_equal(d.data[NX_STDOUT].data, "0123456789");
        assert_true(nx_logstream_truncated(ls, NX_STDOUT));
        drained_free(&d);
        nx_logstream_free(ls);
}

static void test_exhausted_budget_truncates_without_a_chunk(void **state)
{
        nx_logstream_cfg c = cfg_plain(10, 16);
        nx_logstream *ls = new_ok(&c);
        write_str(ls, NX_STDOUT, "0123456789");
        assert_false(nx_logstream_truncated(ls, NX_STDOUT));
        write_str(ls, NX_STDOUT, "z");
        drained d;
        drained_init(&d);
        drain(ls, &d);
        assert_int_equal(d.n[NX_STDOUT], 1);
        assert_false(d.trunc[NX_STDOUT][0]);
        assert_true(nx_logstream_truncated(ls, NX_STDOUT));
        nx_logstream_stats st;
        nx_logstream_stats_get(ls, NX_STDOUT, &st);
        assert_int_equal(st.next_seq, 1);
        drained_free(&d);
        nx_logstream_free(ls);
}

/* spec nexus §12 #206 */
static void test_budget_is_shared_by_both_streams(void **state)
{
        nx_logstream_cfg c = cfg_plain(10, 16);
        nx_logstream *ls = new_ok(&c);
        write_str(ls, NX_STDOUT, "oooooo");
        write_str(ls, NX_STDERR, "eeeeee");
        drained d;
        drained_init(&d);
        drain(ls, &d);
        assert_string_equal(d.data[NX_STDOUT].data, "oooooo");
        assert_string_equal(d.data[NX_STDERR].data, "eeee");
        assert_true(d.trunc[NX_STDERR][0]);
        assert_false(d.trunc[NX_STDOUT][0]);
        assert_false(nx_logstream_truncated(ls, NX_STDOUT));
        assert_true(nx_logstream_truncated(ls, NX_STDERR));
        drained_free(&d);
        nx_logstream_free(ls);
}

/* spec nexus §12 #206 */
static void test_stream_writing_after_exhaustion_is_truncated_alone(void **state)
{
        nx_logstream_cfg c = cfg_plain(4, 16);
        nx_logstream *ls = new_ok(&c);
        write_str(ls, NX_STDERR, "eeee");       /* uses it all, exactly */
        write_str(ls, NX_STDOUT, "o");          /* stdout pays for it */
        assert_true(nx_logstream_truncated(ls, NX_STDOUT));
        assert_false(nx_logstream_truncated(ls, NX_STDERR));
        nx_logstream_free(ls);
}

static void test_zero_cap_uploads_nothing(void **state)
{
        nx_logstream_cfg c = cfg_plain(0, 16);
        nx_logstream *ls = new_ok(&c);
        write_str(ls, NX_STDOUT, "abc");
        nx_log_chunk ch;
        assert_false(nx_logstream_next(ls, &ch));
        assert_true(nx_logstream_truncated(ls, NX_STDOUT));
        nx_logstream_free(ls);
}

static void test_reading_continues_after_cap_without_growth(void **state)
{
        nx_logstream_cfg c = cfg_plain(8, 4);
        nx_logstream *ls = new_ok(&c);
        uint8_t block[4096];
        fill_pattern(block, sizeof(block), 7);
        for (int i = 0; i < 1000; i++)
                write_ok(ls, NX_STDOUT, block, sizeof(block));
        assert_int_equal(nx_logstream_queued_bytes(ls), 2 * nx_logstream_chunk_charge(4));
        nx_logstream_stats st;
        nx_logstream_stats_get(ls, NX_STDOUT, &st);
        assert_int_equal(st.fed_bytes, 4096u * 1000u);
        assert_int_equal(st.uploaded_bytes, 8);
        assert_int_equal(st.discarded_bytes, 4096u * 1000u - 8);
        nx_logstream_free(ls);
}

/* ── the bounded outbox ───────────────────────────────────────────────────────────── */

static void test_backpressure_turns_on_at_bound_and_off_after_drain(void **state)
{
        nx_logstream_cfg c = cfg_plain(1 << 20, 100);
        c.outbox_max_bytes = 3 * nx_logstream_chunk_charge(100);
        nx_logstream *ls = new_ok(&c);
        uint8_t b[100] = { 0 };
        assert_false(nx_logstream_backpressure(ls));
        write_ok(ls, NX_STDOUT, b, 100);
        write_ok(ls, NX_STDOUT, b, 100);
        assert_false(nx_logstream_backpressure(ls));
        write_ok(ls, NX_STDOUT, b, 100);
        assert_true(nx_logstream_backpressure(ls));
        nx_log_chunk ch;
        assert_true(nx_logstream_next(ls, &ch));
        /* handed out is still held: no relief until it is done */
        assert_true(nx_logstream_backpressure(ls));
        nx_logstream_chunk_done(ls, &ch);
        assert_false(nx_logstream_backpressure(ls));
        nx_logstream_free(ls);
}

static void test_full_outbox_drops_marks_truncated_and_keeps_bound(void **state)
{
        nx_logstream_cfg c = cfg_plain(1 << 20, 100);
        c.outbox_max_bytes = 2 * nx_logstream_chunk_charge(100);
        nx_logstream *ls = new_ok(&c);
        uint8_t b[100] = { 0 };
        for (int i = 0; i < 5; i++)
                write_ok(ls, NX_STDERR, b, 100);
        nx_logstream_stats st;
        nx_logstream_stats_get(ls, NX_STDERR, &st);
        assert_int_equal(st.uploaded_bytes, 200);
        assert_int_equal(st.dropped_bytes, 300);
        assert_int_equal(st.next_seq, 2);       /* dropped pieces use no seq */
        assert_true(st.truncated);
        assert_true(nx_logstream_queued_bytes(ls) <= c.outbox_max_bytes);
        nx_logstream_free(ls);
}

static void test_dropped_bytes_do_not_consume_the_budget(void **state)
{
        nx_logstream_cfg c = cfg_plain(300, 100);
        c.outbox_max_bytes = nx_logstream_chunk_charge(100);
        nx_logstream *ls = new_ok(&c);
        uint8_t b[100] = { 0 };
        write_ok(ls, NX_STDOUT, b, 100);
        write_ok(ls, NX_STDOUT, b, 100);        /* dropped */
        drained d;
        drained_init(&d);
        drain(ls, &d);
        write_ok(ls, NX_STDOUT, b, 100);
        drain(ls, &d);
        write_ok(ls, NX_STDOUT, b, 100);
        drain(ls, &d);
        assert_int_equal(d.data[NX_STDOUT].len, 300);
        assert_int_equal(d.seqs[NX_STDOUT][2], 2);
        drained_free(&d);
        nx_logstream_free(ls);
}

static void test_memory_stays_bounded_over_50mb_without_draining(void **state)
{
        fixture *f = *state;
        nx_logstream_cfg c = cfg_overflow(f, 100 * 1024 * KIB, 16 * KIB, 1024 * KIB);
        c.outbox_max_bytes = 1024 * KIB;
        nx_logstream *ls = new_ok(&c);
        static uint8_t block[64 * KIB];
        fill_pattern(block, sizeof(block), 50);
        size_t max_seen = 0;
        for (size_t fed = 0; fed < 50u * 1024 * KIB; fed += sizeof(block)) {
                write_ok(ls, (fed / sizeof(block)) % 2 ? NX_STDERR : NX_STDOUT, block,
                         sizeof(block));
                size_t q = nx_logstream_queued_bytes(ls);
                if (q > max_seen)
                        max_seen = q;
                assert_true(q <= c.outbox_max_bytes + c.chunk_bytes);
        }
        assert_true(max_seen <= c.outbox_max_bytes);
        assert_true(max_seen > c.outbox_max_bytes / 2);    /* it did fill up */
        nx_logstream_stats so, se;
        nx_logstream_stats_get(ls, NX_STDOUT, &so);
        nx_logstream_stats_get(ls, NX_STDERR, &se);
        assert_int_equal(so.fed_bytes + se.fed_bytes, 50u * 1024 * KIB);
        assert_true(so.dropped_bytes + se.dropped_bytes > 48u * 1024 * KIB);
        /* overflow files obey their own cap too */
        assert_int_equal(so.overflow_bytes, 1024 * KIB);
        assert_int_equal(so.overflow, NX_OVERFLOW_FULL);
        nx_logstream_free(ls);
}

static void test_caller_honouring_backpressure_loses_nothing(void **state)
{
        nx_logstream_cfg c = cfg_plain(1 << 30, 1000);
        c.outbox_max_bytes = 4 * nx_logstream_chunk_charge(1000);
        nx_logstream *ls = new_ok(&c);
        static uint8_t input[300000];
        fill_pattern(input, sizeof(input), 3);
        drained d;
        drained_init(&d);
        size_t off = 0;
        while (off < sizeof(input)) {
                if (nx_logstream_backpressure(ls)) {
                        drain(ls, &d);
                        continue;
                }
                size_t n = sizeof(input) - off < 1000 ? sizeof(input) - off : 1000;
                write_ok(ls, NX_STDOUT, input + off, n);
                off += n;
        }
        drain(ls, &d);
        assert_int_equal(d.data[NX_STDOUT].len, sizeof(input));
        assert_memory_equal(d.data[NX_STDOUT].data, input, sizeof(input));
        assert_false(nx_logstream_truncated(ls, NX_STDOUT));
        nx_logstream_stats st;
        nx_logstream_stats_get(ls, NX_STDOUT, &st);
        assert_int_equal(st.dropped_bytes, 0);
        assert_int_equal(st.next_seq, 300);
        drained_free(&d);
        nx_logstream_free(ls);
}

static void test_chunk_done_returns_memory(void **state)
{
        nx_logstream_cfg c = cfg_plain(1000, 10);
        nx_logstream *ls = new_ok(&c);
        write_str(ls, NX_STDOUT, "0123456789abc");
        assert_int_equal(nx_logstream_queued_bytes(ls),
                         nx_logstream_chunk_charge(10) + nx_logstream_chunk_charge(3));
        drained d;
        drained_init(&d);
        drain(ls, &d);
        assert_int_equal(nx_logstream_queued_bytes(ls), 0);
        drained_free(&d);
        nx_logstream_free(ls);
}

static void test_requeue_puts_chunk_back_first_with_same_seq(void **state)
{
        nx_logstream_cfg c = cfg_plain(1000, 4);
        nx_logstream *ls = new_ok(&c);
        write_str(ls, NX_STDOUT, "aaaabbbb");
        nx_log_chunk ch;
        assert_true(nx_logstream_next(ls, &ch));
        assert_int_equal(ch.seq, 0);
        size_t held = nx_logstream_queued_bytes(ls);
        nx_logstream_chunk_requeue(ls, &ch);
        assert_null(ch.node_);
        assert_int_equal(nx_logstream_queued_bytes(ls), held);
        assert_true(nx_logstream_next(ls, &ch));
        assert_int_equal(ch.seq, 0);
        assert_memory_equal(ch.bytes, "aaaa", 4);
        nx_logstream_chunk_done(ls, &ch);
        assert_true(nx_logstream_next(ls, &ch));
        assert_int_equal(ch.seq, 1);
        nx_logstream_chunk_done(ls, &ch);
        nx_logstream_free(ls);
}

static void test_free_releases_chunks_still_handed_out(void **state)
{
        nx_logstream_cfg c = cfg_plain(1000, 4);
        nx_logstream *ls = new_ok(&c);
        write_str(ls, NX_STDOUT, "aaaabbbbcccc");
        nx_log_chunk a, b;
        assert_true(nx_logstream_next(ls, &a));
        assert_true(nx_logstream_next(ls, &b));
        nx_logstream_chunk_done(ls, &a);
        nx_logstream_chunk_done(ls, &a);        /* zeroed by the first call: ignored */
        nx_logstream_free(ls);                  /* b and the queued one: LeakSanitizer */
}

/* ── overflow to disk (§5.10) ─────────────────────────────────────────────────────── */

/* spec nexus §12 #207 */
static void test_overflow_holds_exactly_the_bytes_not_uploaded(void **state)
{
        fixture *f = *state;
        nx_logstream_cfg c = cfg_overflow(f, 5000, 512, 1 << 20);
        nx_logstream *ls = new_ok(&c);
        static uint8_t out[8000], errb[3000];
        fill_pattern(out, sizeof(out), 1);
        fill_pattern(errb, sizeof(errb), 2);
        /* interleave odd-sized reads */
        size_t oo = 0, eo = 0;
        while (oo < sizeof(out) || eo < sizeof(errb)) {
                size_t n = sizeof(out) - oo < 777 ? sizeof(out) - oo : 777;
                write_ok(ls, NX_STDOUT, out + oo, n);
                oo += n;
                n = sizeof(errb) - eo < 301 ? sizeof(errb) - eo : 301;
                write_ok(ls, NX_STDERR, errb + eo, n);
                eo += n;
        }
        drained d;
        drained_init(&d);
        drain(ls, &d);
        assert_int_equal(d.data[NX_STDOUT].len + d.data[NX_STDERR].len, 5000);
        const uint8_t *in[2] = { out, errb };
        size_t inlen[2] = { sizeof(out), sizeof(errb) };
        const char *file[2] = { "stdout.log", "stderr.log" };
        for (int s = 0; s < 2; s++) {
                _cleanup_free_ char *p = overflow_path(f, file[s]);
                size_t flen;
                _cleanup_free_ char *ovf = slurp(p, &flen);
                size_t up = d.data[s].len;
                assert_non_null(ovf);
                assert_int_equal(up + flen, inlen[s]);
                assert_memory_equal(d.data[s].data, in[s], up);
                assert_memory_equal(ovf, in[s] + up, flen);
                assert_true(nx_logstream_truncated(ls, (nx_stream)s));
        }
        drained_free(&d);
        nx_logstream_free(ls);
}

static void test_overflow_files_are_created_lazily(void **state)
{
        fixture *f = *state;
        nx_logstream_cfg c = cfg_overflow(f, 10, 4, 100);
        nx_logstream *ls = new_ok(&c);
        write_str(ls, NX_STDOUT, "0123456789");
        assert_int_equal(dir_entries(f->facility), 0);
        write_str(ls, NX_STDERR, "x");
        _cleanup_free_ char *pe = overflow_path(f, "stderr.log");
        _cleanup_free_ char *po = overflow_path(f, "stdout.log");
        assert_true(exists_nofollow(pe));
        assert_false(exists_nofollow(po));
        nx_logstream_free(ls);
}

static void test_overflow_modes_are_0755_and_0644(void **state)
{
        fixture *f = *state;
        mode_t um = umask(022);
        nx_logstream_cfg c = cfg_overflow(f, 0, 4, 100);
        nx_logstream *ls = new_ok(&c);
        write_str(ls, NX_STDOUT, "x");
        nx_logstream_free(ls);
        umask(um);
        struct stat st;
        _cleanup_free_ char *p = overflow_path(f, "stdout.log");
        assert_int_equal(lstat(p, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0644);
        _cleanup_free_ char *dir = str_dup_printf("%s/.nexus/overflow/%s", f->facility, ID);
        assert_int_equal(lstat(dir, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0755);
}

/* spec nexus §12 #208 */
static void test_overflow_cap_writes_notice_once(void **state)
{
        fixture *f = *state;
        nx_logstream_cfg c = cfg_overflow(f, 0, 4, 10);
        nx_logstream *ls = new_ok(&c);
        write_str(ls, NX_STDOUT, "0123456");
        write_str(ls, NX_STDOUT, "789ABC");     /* 3 fit, 3 refused: notice */
        write_str(ls, NX_STDOUT, "DEF");        /* no second notice */
        nx_logstream_stats st;
        nx_logstream_stats_get(ls, NX_STDOUT, &st);
        assert_int_equal(st.overflow_bytes, 10);
        assert_int_equal(st.discarded_bytes, 6);
        assert_int_equal(st.overflow, NX_OVERFLOW_FULL);
        nx_logstream_free(ls);
        _cleanup_free_ char *p = overflow_path(f, "stdout.log");
        size_t n;
        _cleanup_free_ char *body = slurp(p, &n);
        assert_string_equal(body,
                            "0123456789\n[nexus] overflow file reached max_bytes_per_stream=10\n");
}

static void test_overflow_ending_exactly_at_cap_writes_no_notice(void **state)
{
        fixture *f = *state;
        nx_logstream_cfg c = cfg_overflow(f, 0, 4, 10);
        nx_logstream *ls = new_ok(&c);
        write_str(ls, NX_STDOUT, "0123456789");
        nx_logstream_free(ls);
        _cleanup_free_ char *p = overflow_path(f, "stdout.log");
        size_t n;
        _cleanup_free_ char *body = slurp(p, &n);
        assert_string_equal(body, "0123456789");
}

static void test_overflow_caps_are_per_stream(void **state)
{
        fixture *f = *state;
        nx_logstream_cfg c = cfg_overflow(f, 0, 64, 5);
        nx_logstream *ls = new_ok(&c);
        write_str(ls, NX_STDOUT, "oooooooo");
        write_str(ls, NX_STDERR, "eee");
        nx_logstream_stats so, se;
        nx_logstream_stats_get(ls, NX_STDOUT, &so);
        nx_logstream_stats_get(ls, NX_STDERR, &se);
        assert_int_equal(so.overflow, NX_OVERFLOW_FULL);
        assert_int_equal(se.overflow, NX_OVERFLOW_OPEN);
        assert_int_equal(se.overflow_bytes, 3);
        nx_logstream_free(ls);
}

static void test_overflow_disabled_by_config_discards(void **state)
{
        fixture *f = *state;
        nx_logstream_cfg c = cfg_overflow(f, 2, 4, 100);
        c.overflow_enabled = false;
        nx_logstream *ls = new_ok(&c);
        write_str(ls, NX_STDOUT, "abcdef");
        nx_logstream_stats st;
        nx_logstream_stats_get(ls, NX_STDOUT, &st);
        assert_int_equal(st.discarded_bytes, 4);
        assert_int_equal(st.overflow, NX_OVERFLOW_OFF);
        assert_int_equal(dir_entries(f->facility), 0);
        nx_logstream_free(ls);
}

static void test_overflow_zero_per_stream_max_disables(void **state)
{
        fixture *f = *state;
        nx_logstream_cfg c = cfg_overflow(f, 2, 4, 0);
        c.directive_id = NULL;  /* not needed when overflow is off */
        nx_logstream *ls = new_ok(&c);
        write_str(ls, NX_STDOUT, "abcdef");
        assert_int_equal(dir_entries(f->facility), 0);
        nx_logstream_free(ls);
}

static void test_overflow_works_after_caller_closes_facility_fd(void **state)
{
        fixture *f = *state;
        int fd = open(f->facility, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(fd >= 0);
        nx_logstream_cfg c = cfg_overflow(f, 0, 4, 100);
        c.facility_dirfd = fd;
        nx_logstream *ls = new_ok(&c);
        close(fd);
        write_str(ls, NX_STDOUT, "later");
        nx_logstream_free(ls);
        _cleanup_free_ char *p = overflow_path(f, "stdout.log");
        size_t n;
        _cleanup_free_ char *body = slurp(p, &n);
        assert_string_equal(body, "later");
}

static void test_overflow_appends_to_existing_regular_file(void **state)
{
        fixture *f = *state;
        _cleanup_free_ char *dir = str_dup_printf("%s/.nexus/overflow/%s", f->facility, ID);
        _cleanup_free_ char *nexus = str_dup_printf("%s/.nexus", f->facility);
        _cleanup_free_ char *ovd = str_dup_printf("%s/.nexus/overflow", f->facility);
        assert_int_equal(mkdir(nexus, 0755), 0);
        assert_int_equal(mkdir(ovd, 0755), 0);
        assert_int_equal(mkdir(dir, 0755), 0);
        _cleanup_free_ char *p = overflow_path(f, "stdout.log");
        int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "old|", 4), 4);
        close(fd);
        nx_logstream_cfg c = cfg_overflow(f, 0, 4, 100);
        nx_logstream *ls = new_ok(&c);
        write_str(ls, NX_STDOUT, "new");
        nx_logstream_stats st;
        nx_logstream_stats_get(ls, NX_STDOUT, &st);
        assert_int_equal(st.overflow_bytes, 3);
        nx_logstream_free(ls);
        size_t n;
        _cleanup_free_ char *body = slurp(p, &n);
        assert_string_equal(body, "old|new");
}

/* ── symlink and file-type attacks on the overflow path ───────────────────────────── */

/* Prepares <facility>/.nexus[/overflow[/<ID>]] as real directories up to depth. */
static void make_dirs(const fixture *f, int depth)
{
        const char *rel[] = { ".nexus", ".nexus/overflow", (".nexus/overflow/" ID) };
        for (int i = 0; i < depth; i++) {
                _cleanup_free_ char *p = str_dup_printf("%s/%s", f->facility, rel[i]);
                assert_int_equal(mkdir(p, 0755), 0);
        }
}

/* Runs output that overflows on stdout and asserts overflow was refused for stdout, the
 * process carried on, and nothing appeared in (or changed under) outside/. */
static void expect_stdout_overflow_refused(fixture *f, const char *why)
{
        nx_logstream_cfg c = cfg_overflow(f, 4, 4, 1000);
        nx_logstream *ls = new_ok(&c);
        write_str(ls, NX_STDOUT, "uploaded-then-OVERFLOW-BYTES");
        nx_logstream_stats st;
        nx_logstream_stats_get(ls, NX_STDOUT, &st);
        assert_int_equal(st.overflow, NX_OVERFLOW_DISABLED);
        assert_int_equal(st.overflow_bytes, 0);
        assert_int_equal(st.discarded_bytes, 24);
        assert_true(st.truncated);
        char msg[ERR_MSG_MAX];
        assert_int_equal(str_copy(msg, sizeof(msg), nx_logstream_overflow_error(ls, NX_STDOUT)),
                         0);
        write_str(ls, NX_STDOUT, "more");       /* keeps going, no retry of the open */
        json_t *m = nx_logstream_manifest(ls);
        assert_true(json_is_true(json_object_get(json_object_get(m, "log_overflow"),
                                                 "stdout_disabled")));
        json_decref(m);
        nx_logstream_free(ls);
        assert_true(strlen(msg) > 0);
        if (why && !strstr(msg, why))
                fail_msg("overflow error \"%s\" does not say \"%s\"", msg, why);
}

static void test_symlinked_overflow_dir_is_not_followed(void **state)
{
        fixture *f = *state;
        make_dirs(f, 1);
        _cleanup_free_ char *link = str_dup_printf("%s/.nexus/overflow", f->facility);
        assert_int_equal(symlink(f->outside, link), 0);
        expect_stdout_overflow_refused(f, "symlink");
        assert_int_equal(dir_entries(f->outside), 0);
}

static void test_symlinked_dot_nexus_is_not_followed(void **state)
{
        fixture *f = *state;
        _cleanup_free_ char *link = str_dup_printf("%s/.nexus", f->facility);
        assert_int_equal(symlink(f->outside, link), 0);
        expect_stdout_overflow_refused(f, "symlink");
        assert_int_equal(dir_entries(f->outside), 0);
}

static void test_symlinked_directive_dir_is_not_followed(void **state)
{
        fixture *f = *state;
        make_dirs(f, 2);
        _cleanup_free_ char *link = str_dup_printf("%s/.nexus/overflow/%s", f->facility, ID);
        assert_int_equal(symlink(f->outside, link), 0);
        expect_stdout_overflow_refused(f, "symlink");
        assert_int_equal(dir_entries(f->outside), 0);
}

static void test_relative_symlink_escaping_facility_is_not_followed(void **state)
{
        fixture *f = *state;
        make_dirs(f, 1);
        _cleanup_free_ char *link = str_dup_printf("%s/.nexus/overflow", f->facility);
        assert_int_equal(symlink("../../outside", link), 0);
        expect_stdout_overflow_refused(f, "symlink");
        assert_int_equal(dir_entries(f->outside), 0);
}

static void test_log_symlink_to_passwd_like_file_not_written(void **state)
{
        fixture *f = *state;
        make_dirs(f, 3);
        _cleanup_free_ char *target = str_dup_printf("%s/passwd", f->outside);
        int fd = open(target, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "root:x:0:0::/root:/bin/sh\n", 26), 26);
        close(fd);
        _cleanup_free_ char *link = overflow_path(f, "stdout.log");
        assert_int_equal(symlink(target, link), 0);
        expect_stdout_overflow_refused(f, "symlink");
        size_t n;
        _cleanup_free_ char *body = slurp(target, &n);
        assert_string_equal(body, "root:x:0:0::/root:/bin/sh\n");
}

static void test_dangling_log_symlink_creates_nothing(void **state)
{
        fixture *f = *state;
        make_dirs(f, 3);
        _cleanup_free_ char *target = str_dup_printf("%s/created-by-us", f->outside);
        _cleanup_free_ char *link = overflow_path(f, "stdout.log");
        assert_int_equal(symlink(target, link), 0);
        expect_stdout_overflow_refused(f, "symlink");
        assert_false(exists_nofollow(target));
}

static void test_symlink_on_stdout_leaves_stderr_overflow_working(void **state)
{
        fixture *f = *state;
        make_dirs(f, 3);
        _cleanup_free_ char *target = str_dup_printf("%s/t", f->outside);
        _cleanup_free_ char *link = overflow_path(f, "stdout.log");
        assert_int_equal(symlink(target, link), 0);
        nx_logstream_cfg c = cfg_overflow(f, 0, 4, 1000);
        nx_logstream *ls = new_ok(&c);
        write_str(ls, NX_STDOUT, "out");
        write_str(ls, NX_STDERR, "err");
        nx_logstream_stats se;
        nx_logstream_stats_get(ls, NX_STDERR, &se);
        assert_int_equal(se.overflow, NX_OVERFLOW_OPEN);
        assert_int_equal(se.overflow_bytes, 3);
        assert_string_equal(nx_logstream_overflow_error(ls, NX_STDERR), "");
        nx_logstream_free(ls);
}

static void test_fifo_planted_as_log_does_not_block_and_is_refused(void **state)
{
        fixture *f = *state;
        make_dirs(f, 3);
        _cleanup_free_ char *p = overflow_path(f, "stdout.log");
        assert_int_equal(mkfifo(p, 0644), 0);
        expect_stdout_overflow_refused(f, NULL);
}

static void test_fifo_with_a_reader_is_refused_as_not_regular(void **state)
{
        fixture *f = *state;
        make_dirs(f, 3);
        _cleanup_free_ char *p = overflow_path(f, "stdout.log");
        assert_int_equal(mkfifo(p, 0644), 0);
        /* the sandbox holds the read end: the open succeeds, the type check must refuse */
        _cleanup_close_ int rd = open(p, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        assert_true(rd >= 0);
        expect_stdout_overflow_refused(f, "not a regular file");
        char tmp[64];
        assert_true(read(rd, tmp, sizeof(tmp)) <= 0);
}

static void test_hardlinked_log_file_is_refused(void **state)
{
        fixture *f = *state;
        make_dirs(f, 3);
        _cleanup_free_ char *target = str_dup_printf("%s/victim", f->outside);
        int fd = open(target, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        close(fd);
        _cleanup_free_ char *p = overflow_path(f, "stdout.log");
        if (link(target, p) < 0)
                SKIP_BECAUSE("hard links inside the test tmpdir: %s", strerror(errno));
        expect_stdout_overflow_refused(f, "links");
        size_t n;
        _cleanup_free_ char *body = slurp(target, &n);
        assert_non_null(body);
        assert_int_equal(n, 0);
}

static void test_directory_in_place_of_log_file_is_refused(void **state)
{
        fixture *f = *state;
        make_dirs(f, 3);
        _cleanup_free_ char *p = overflow_path(f, "stdout.log");
        assert_int_equal(mkdir(p, 0755), 0);
        expect_stdout_overflow_refused(f, "Is a directory");
}

static void test_file_in_place_of_overflow_dir_is_refused(void **state)
{
        fixture *f = *state;
        make_dirs(f, 1);
        _cleanup_free_ char *p = str_dup_printf("%s/.nexus/overflow", f->facility);
        int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        close(fd);
        expect_stdout_overflow_refused(f, "Not a directory");
}

/* ── manifest (§5.10) ─────────────────────────────────────────────────────────────── */

static void test_manifest_is_empty_when_nothing_truncated(void **state)
{
        fixture *f = *state;
        nx_logstream_cfg c = cfg_overflow(f, 100, 4, 1000);
        nx_logstream *ls = new_ok(&c);
        write_str(ls, NX_STDOUT, "small");
        json_t *m = nx_logstream_manifest(ls);
        assert_true(json_is_object(m));
        assert_int_equal(json_object_size(m), 0);
        json_decref(m);
        nx_logstream_free(ls);
}

static void test_manifest_is_empty_when_overflow_disabled(void **state)
{
        nx_logstream_cfg c = cfg_plain(1, 4);
        nx_logstream *ls = new_ok(&c);
        write_str(ls, NX_STDOUT, "truncated");
        json_t *m = nx_logstream_manifest(ls);
        assert_int_equal(json_object_size(m), 0);
        json_decref(m);
        nx_logstream_free(ls);
}

static void test_manifest_shape_paths_and_counts_without_notice(void **state)
{
        fixture *f = *state;
        nx_logstream_cfg c = cfg_overflow(f, 2, 4, 5);
        nx_logstream *ls = new_ok(&c);
        write_str(ls, NX_STDOUT, "ab0123456789");  /* 2 uploaded, 5 to file, rest refused */
        write_str(ls, NX_STDERR, "xyz");
        json_t *m = nx_logstream_manifest(ls);
        _cleanup_free_ char *s = json_dump_compact(m);
        assert_string_equal(s,
                "{\"log_overflow\":{"
                "\"stdout_path\":\"/workspace/.nexus/overflow/" ID "/stdout.log\","
                "\"stderr_path\":\"/workspace/.nexus/overflow/" ID "/stderr.log\","
                "\"stdout_bytes\":5,\"stderr_bytes\":3,\"max_bytes_per_stream\":5}}");
        json_decref(m);
        nx_logstream_free(ls);
}

static void test_manifest_paths_are_cleaned_and_use_mount(void **state)
{
        fixture *f = *state;
        nx_logstream_cfg c = cfg_overflow(f, 0, 4, 100);
        c.mount = "/srv//w/../work/";
        c.overflow_rel_dir = "./logs//over/";
        nx_logstream *ls = new_ok(&c);
        write_str(ls, NX_STDERR, "x");
        json_t *m = nx_logstream_manifest(ls);
        json_t *lo = json_object_get(m, "log_overflow");
        assert_string_equal(json_string_value(json_object_get(lo, "stderr_path")),
                            "/srv/work/logs/over/" ID "/stderr.log");
        json_decref(m);
        nx_logstream_free(ls);
        /* and the file went where the normalised dir says */
        _cleanup_free_ char *p = str_dup_printf("%s/logs/over/%s/stderr.log", f->facility, ID);
        assert_true(exists_nofollow(p));
}

static void test_manifest_reports_stream_truncated_by_full_outbox(void **state)
{
        fixture *f = *state;
        nx_logstream_cfg c = cfg_overflow(f, 1 << 20, 100, 1000);
        c.outbox_max_bytes = nx_logstream_chunk_charge(100);
        nx_logstream *ls = new_ok(&c);
        static uint8_t b[200];
        fill_pattern(b, sizeof(b), 9);
        write_ok(ls, NX_STDOUT, b, 200);        /* second piece does not fit */
        json_t *m = nx_logstream_manifest(ls);
        json_t *lo = json_object_get(m, "log_overflow");
        assert_int_equal(json_integer_value(json_object_get(lo, "stdout_bytes")), 100);
        json_decref(m);
        nx_logstream_free(ls);
        _cleanup_free_ char *p = overflow_path(f, "stdout.log");
        size_t n;
        _cleanup_free_ char *body = slurp(p, &n);
        assert_int_equal(n, 100);
        assert_memory_equal(body, b + 100, 100);
}

/* The same attacks with the openat(O_NOFOLLOW) walk used when openat2 is unavailable. */
static void test_overflow_holds_exactly_the_bytes_not_uploaded_openat_fallback(void **state)
{
        test_overflow_holds_exactly_the_bytes_not_uploaded(state);
}

static void test_symlinked_overflow_dir_is_not_followed_openat_fallback(void **state)
{
        test_symlinked_overflow_dir_is_not_followed(state);
}

static void test_symlinked_dot_nexus_is_not_followed_openat_fallback(void **state)
{
        test_symlinked_dot_nexus_is_not_followed(state);
}

static void test_symlinked_directive_dir_is_not_followed_openat_fallback(void **state)
{
        test_symlinked_directive_dir_is_not_followed(state);
}

static void test_log_symlink_to_passwd_like_file_not_written_openat_fallback(void **state)
{
        test_log_symlink_to_passwd_like_file_not_written(state);
}

static void test_dangling_log_symlink_creates_nothing_openat_fallback(void **state)
{
        test_dangling_log_symlink_creates_nothing(state);
}

static void test_fifo_planted_as_log_does_not_block_and_is_refused_openat_fallback(void **state)
{
        test_fifo_planted_as_log_does_not_block_and_is_refused(state);
}

static void test_file_in_place_of_overflow_dir_is_refused_openat_fallback(void **state)
{
        test_file_in_place_of_overflow_dir_is_refused(state);
}


#define FX(t) cmocka_unit_test_setup_teardown(t, fixture_setup, fixture_teardown)
#define FB(t) cmocka_unit_test_setup_teardown(t, fixture_setup_fallback, fixture_teardown)

/* ---- spec nexus §12 acceptance vectors, verbatim ------------------------------------ */

/* spec nexus §12 #205 */
static void test_vec_chunk_10_cap_15_sixteen_bytes(void **state)
{
        (void)state;
        nx_logstream_cfg c = cfg_plain(15, 10);
        nx_logstream *ls = new_ok(&c);
        write_str(ls, NX_STDOUT, "1234567890ABCDEF");
        drained d;
        drained_init(&d);
        drain(ls, &d);
        assert_int_equal(d.total_chunks, 2);
        assert_int_equal(d.n[NX_STDOUT], 2);
        assert_int_equal(d.seqs[NX_STDOUT][0], 0);
        assert_int_equal(d.lens[NX_STDOUT][0], 10);
        assert_false(d.trunc[NX_STDOUT][0]);
        assert_int_equal(d.seqs[NX_STDOUT][1], 1);
        assert_int_equal(d.lens[NX_STDOUT][1], 5);
        assert_true(d.trunc[NX_STDOUT][1]);
        assert_int_equal(d.data[NX_STDOUT].len, 15);
        assert_memory_equal(d.data[NX_STDOUT].data, "1234567890ABCDE", 15);
        assert_true(nx_logstream_truncated(ls, NX_STDOUT));
        assert_false(nx_logstream_truncated(ls, NX_STDERR));
        drained_free(&d);
        nx_logstream_free(ls);
}

/* spec nexus §12 #206 */
static void test_vec_cap_10_shared_between_streams(void **state)
{
        (void)state;
        nx_logstream_cfg c = cfg_plain(10, 16);
        nx_logstream *ls = new_ok(&c);
        write_str(ls, NX_STDOUT, "12345");
        write_str(ls, NX_STDERR, "abcdef");
        write_str(ls, NX_STDOUT, "Z");
        drained d;
        drained_init(&d);
        drain(ls, &d);
        assert_int_equal(d.total_chunks, 2);
        assert_int_equal(d.n[NX_STDOUT], 1);
        assert_int_equal(d.seqs[NX_STDOUT][0], 0);
        assert_int_equal(d.data[NX_STDOUT].len, 5);
        assert_memory_equal(d.data[NX_STDOUT].data, "12345", 5);
        assert_false(d.trunc[NX_STDOUT][0]);
        assert_int_equal(d.n[NX_STDERR], 1);
        assert_int_equal(d.seqs[NX_STDERR][0], 0);
        assert_int_equal(d.data[NX_STDERR].len, 5);
        assert_memory_equal(d.data[NX_STDERR].data, "abcde", 5);
        assert_true(d.trunc[NX_STDERR][0]);
        assert_true(nx_logstream_truncated(ls, NX_STDOUT));
        assert_true(nx_logstream_truncated(ls, NX_STDERR));
        drained_free(&d);
        nx_logstream_free(ls);
}

/* spec nexus §12 #207 */
static void test_vec_cap_5_overflow_holds_rest(void **state)
{
        fixture *f = *state;
        nx_logstream_cfg c = cfg_overflow(f, 5, 16, 1 << 20);
        nx_logstream *ls = new_ok(&c);
        write_str(ls, NX_STDOUT, "1234567890");
        nx_logstream_free(ls);
        _cleanup_free_ char *p = overflow_path(f, "stdout.log");
        size_t n;
        _cleanup_free_ char *body = slurp(p, &n);
        assert_non_null(body);
        assert_int_equal(n, 5);
        assert_memory_equal(body, "67890", 5);
}

/* spec nexus §12 #208 */
static void test_vec_cap_1_overflow_cap_3(void **state)
{
        fixture *f = *state;
        nx_logstream_cfg c = cfg_overflow(f, 1, 16, 3);
        nx_logstream *ls = new_ok(&c);
        write_str(ls, NX_STDOUT, "1234567890");
        nx_logstream_free(ls);
        _cleanup_free_ char *p = overflow_path(f, "stdout.log");
        size_t n;
        _cleanup_free_ char *body = slurp(p, &n);
        assert_non_null(body);
        assert_true(str_has_prefix(body, "234"));
        assert_non_null(strstr(body, "overflow file reached max_bytes_per_stream=3"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_new_rejects_zero_chunk_bytes),
                cmocka_unit_test(test_new_rejects_chunk_larger_than_server_max),
                cmocka_unit_test(test_new_rejects_outbox_that_cannot_hold_one_chunk),
                cmocka_unit_test(test_new_rejects_negative_cap),
                FX(test_new_rejects_unsafe_directive_id_when_overflow_on),
                FX(test_new_rejects_overflow_dir_with_dotdot_or_absolute),
                cmocka_unit_test(test_overflow_without_facility_is_off_and_manifest_empty),
                cmocka_unit_test(test_seq_starts_at_zero_and_counts_per_chunk),
                cmocka_unit_test(test_seq_counters_are_independent_per_stream),
                cmocka_unit_test(test_chunks_come_out_in_write_order_across_streams),
                cmocka_unit_test(test_write_is_split_into_chunk_bytes_pieces),
                cmocka_unit_test(test_empty_write_produces_no_chunk_and_no_seq),
                cmocka_unit_test(test_unknown_stream_is_refused),
                cmocka_unit_test(test_message_shares_seq_and_is_split),
                cmocka_unit_test(test_chunk_to_json_matches_log_chunk_request),
                cmocka_unit_test(test_chunk_to_json_omits_truncated_when_false),
                cmocka_unit_test(test_output_exactly_at_cap_is_not_truncated),
                cmocka_unit_test(test_cap_hit_mid_chunk_flags_that_chunk_only),
                cmocka_unit_test(test_exhausted_budget_truncates_without_a_chunk),
                cmocka_unit_test(test_budget_is_shared_by_both_streams),
                cmocka_unit_test(test_stream_writing_after_exhaustion_is_truncated_alone),
                cmocka_unit_test(test_zero_cap_uploads_nothing),
                cmocka_unit_test(test_reading_continues_after_cap_without_growth),
                cmocka_unit_test(test_backpressure_turns_on_at_bound_and_off_after_drain),
                cmocka_unit_test(test_full_outbox_drops_marks_truncated_and_keeps_bound),
                cmocka_unit_test(test_dropped_bytes_do_not_consume_the_budget),
                FX(test_memory_stays_bounded_over_50mb_without_draining),
                cmocka_unit_test(test_caller_honouring_backpressure_loses_nothing),
                cmocka_unit_test(test_chunk_done_returns_memory),
                cmocka_unit_test(test_requeue_puts_chunk_back_first_with_same_seq),
                cmocka_unit_test(test_free_releases_chunks_still_handed_out),
                FX(test_overflow_holds_exactly_the_bytes_not_uploaded),
                FB(test_overflow_holds_exactly_the_bytes_not_uploaded_openat_fallback),
                FX(test_overflow_files_are_created_lazily),
                FX(test_overflow_modes_are_0755_and_0644),
                FX(test_overflow_cap_writes_notice_once),
                cmocka_unit_test(test_vec_chunk_10_cap_15_sixteen_bytes),
                cmocka_unit_test(test_vec_cap_10_shared_between_streams),
                FX(test_vec_cap_5_overflow_holds_rest),
                FX(test_vec_cap_1_overflow_cap_3),
                FX(test_overflow_ending_exactly_at_cap_writes_no_notice),
                FX(test_overflow_caps_are_per_stream),
                FX(test_overflow_disabled_by_config_discards),
                FX(test_overflow_zero_per_stream_max_disables),
                FX(test_overflow_works_after_caller_closes_facility_fd),
                FX(test_overflow_appends_to_existing_regular_file),
                FX(test_symlinked_overflow_dir_is_not_followed),
                FB(test_symlinked_overflow_dir_is_not_followed_openat_fallback),
                FX(test_symlinked_dot_nexus_is_not_followed),
                FB(test_symlinked_dot_nexus_is_not_followed_openat_fallback),
                FX(test_symlinked_directive_dir_is_not_followed),
                FB(test_symlinked_directive_dir_is_not_followed_openat_fallback),
                FX(test_relative_symlink_escaping_facility_is_not_followed),
                FX(test_log_symlink_to_passwd_like_file_not_written),
                FB(test_log_symlink_to_passwd_like_file_not_written_openat_fallback),
                FX(test_dangling_log_symlink_creates_nothing),
                FB(test_dangling_log_symlink_creates_nothing_openat_fallback),
                FX(test_symlink_on_stdout_leaves_stderr_overflow_working),
                FX(test_fifo_planted_as_log_does_not_block_and_is_refused),
                FB(test_fifo_planted_as_log_does_not_block_and_is_refused_openat_fallback),
                FX(test_fifo_with_a_reader_is_refused_as_not_regular),
                FX(test_hardlinked_log_file_is_refused),
                FX(test_directory_in_place_of_log_file_is_refused),
                FX(test_file_in_place_of_overflow_dir_is_refused),
                FB(test_file_in_place_of_overflow_dir_is_refused_openat_fallback),
                FX(test_manifest_is_empty_when_nothing_truncated),
                cmocka_unit_test(test_manifest_is_empty_when_overflow_disabled),
                FX(test_manifest_shape_paths_and_counts_without_notice),
                FX(test_manifest_paths_are_cleaned_and_use_mount),
                FX(test_manifest_reports_stream_truncated_by_full_outbox),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
