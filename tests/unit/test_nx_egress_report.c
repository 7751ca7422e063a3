/* tests/unit/test_nx_egress_report.c — agent/egress_report: audit records → JSONL "egress" log
 * chunks with their own seq and cap (issue #6 item 2; nexus §7.10, mothership §3.2.6). */
#include "testutil.h"
#include "agent/egress_report.h"

#include <stdlib.h>
#include <string.h>

#include "core/base64.h"
#include "core/cleanup.h"
#include "core/json.h"

static nx_egress_report *mk(size_t chunk, int64_t cap)
{
        nx_egress_report_cfg cfg = { chunk, cap };
        nx_egress_report *r = NULL;
        err_t e = ERR_INIT;
        assert_int_equal(nx_egress_report_new(&cfg, &r, &e), 0);
        return r;
}

static json_t *rec(int i)
{
        return json_pack("{s:s, s:s, s:i, s:s, s:s}", "directive_id", "dir-123", "dest_host",
                         "example.com", "dest_port", i, "decision", "deny", "reason_code",
                         "NOT_IN_ALLOWLIST");
}

static void append(nx_egress_report *r, int i)
{
        json_t *j = rec(i);
        err_t e = ERR_INIT;
        assert_int_equal(nx_egress_report_append(r, j, &e), 0);
        json_decref(j);
}

static size_t count_lines(const uint8_t *b, size_t n)
{
        size_t c = 0;
        for (size_t i = 0; i < n; i++)
                c += b[i] == '\n';
        return c;
}

static void test_defaults_accepted(void **state)
{
        (void)state;
        nx_egress_report *r = NULL;
        err_t e = ERR_INIT;
        assert_int_equal(nx_egress_report_new(NULL, &r, &e), 0);
        nx_egress_report_free(r);
}

static void test_bad_cfg_refused(void **state)
{
        (void)state;
        nx_egress_report *r = NULL;
        err_t e = ERR_INIT;
        nx_egress_report_cfg small = { 100, 0 }, neg = { 0, -1 }, big = { 1u << 30, 0 };
        assert_int_equal(nx_egress_report_new(&small, &r, &e), -1);
        assert_int_equal(nx_egress_report_new(&neg, &r, &e), -1);
        assert_int_equal(nx_egress_report_new(&big, &r, &e), -1);
}

static void test_open_batch_not_returned_until_flush(void **state)
{
        (void)state;
        nx_egress_report *r = mk(0, 0);
        append(r, 1);
        nx_egress_chunk c;
        assert_false(nx_egress_report_next(r, &c));
        nx_egress_report_flush(r);
        assert_true(nx_egress_report_next(r, &c));
        assert_int_equal(c.seq, 0);
        assert_int_equal(count_lines(c.bytes, c.len), 1);
        assert_int_equal(c.bytes[c.len - 1], '\n');
        nx_egress_report_chunk_done(r, &c);
        assert_null(c.node_);
        nx_egress_report_free(r);
}

static void test_line_is_the_compact_record(void **state)
{
        (void)state;
        nx_egress_report *r = mk(0, 0);
        append(r, 443);
        nx_egress_report_flush(r);
        nx_egress_chunk c;
        assert_true(nx_egress_report_next(r, &c));
        err_t e = ERR_INIT;
        json_t *j = json_parse((const char *)c.bytes, c.len - 1, true, &e);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "dest_host")), "example.com");
        assert_int_equal(json_integer_value(json_object_get(j, "dest_port")), 443);
        json_decref(j);
        nx_egress_report_chunk_done(r, &c);
        nx_egress_report_free(r);
}

static void test_batches_split_at_chunk_bytes_whole_lines(void **state)
{
        (void)state;
        nx_egress_report *r = mk(NX_EGRESS_LINE_MAX, 0);
        for (int i = 0; i < 100; i++)
                append(r, i);
        nx_egress_report_flush(r);
        nx_egress_chunk c;
        size_t lines = 0;
        int64_t want = 0;
        while (nx_egress_report_next(r, &c)) {
                assert_int_equal(c.seq, want++);
                assert_true(c.len <= NX_EGRESS_LINE_MAX);
                assert_int_equal(c.bytes[c.len - 1], '\n');
                lines += count_lines(c.bytes, c.len);
                nx_egress_report_chunk_done(r, &c);
        }
        assert_true(want > 1);
        assert_int_equal(lines, 100);
        nx_egress_report_free(r);
}

/* spec nexus §12 #201: 10 records → exactly 10 lines */
static void test_ten_records_ten_lines(void **state)
{
        (void)state;
        nx_egress_report *r = mk(0, 0);
        for (int i = 0; i < 10; i++)
                append(r, i);
        nx_egress_report_finish(r);
        nx_egress_chunk c;
        assert_true(nx_egress_report_next(r, &c));
        assert_int_equal(count_lines(c.bytes, c.len), 10);
        assert_false(c.truncated);
        nx_egress_report_chunk_done(r, &c);
        assert_false(nx_egress_report_next(r, &c));
        nx_egress_report_free(r);
}

static void test_cap_drops_and_finish_adds_truncation_line(void **state)
{
        (void)state;
        json_t *j = rec(1);
        _cleanup_free_ char *s = json_dump_compact(j);
        size_t line = strlen(s) + 1;
        nx_egress_report *r = mk(0, (int64_t)(line * 3));
        err_t e = ERR_INIT;
        for (int i = 0; i < 5; i++) {
                int rc = nx_egress_report_append(r, j, &e);
                assert_int_equal(rc, i < 3 ? 0 : -1);
        }
        json_decref(j);
        nx_egress_report_stats st;
        nx_egress_report_stats_get(r, &st);
        assert_int_equal(st.records, 3);
        assert_int_equal(st.dropped, 2);
        assert_true(st.truncated);
        nx_egress_report_finish(r);
        nx_egress_report_finish(r);     /* idempotent */
        nx_egress_chunk c;
        assert_true(nx_egress_report_next(r, &c));
        assert_true(c.truncated);
        assert_int_equal(count_lines(c.bytes, c.len), 4);
        const char *last = "{\"truncated\":true,\"dropped\":2}\n";
        assert_true(c.len >= strlen(last));
        assert_memory_equal(c.bytes + c.len - strlen(last), last, strlen(last));
        nx_egress_report_chunk_done(r, &c);
        assert_false(nx_egress_report_next(r, &c));
        nx_egress_report_free(r);
}

static void test_no_truncation_line_without_drops(void **state)
{
        (void)state;
        nx_egress_report *r = mk(0, 0);
        append(r, 1);
        nx_egress_report_finish(r);
        nx_egress_chunk c;
        assert_true(nx_egress_report_next(r, &c));
        assert_false(c.truncated);
        assert_null(memmem(c.bytes, c.len, "truncated", 9));
        nx_egress_report_chunk_done(r, &c);
        nx_egress_report_free(r);
}

static void test_append_after_finish_refused(void **state)
{
        (void)state;
        nx_egress_report *r = mk(0, 0);
        nx_egress_report_finish(r);
        json_t *j = rec(1);
        err_t e = ERR_INIT;
        assert_int_equal(nx_egress_report_append(r, j, &e), -1);
        json_decref(j);
        nx_egress_report_free(r);
}

static void test_oversized_record_dropped(void **state)
{
        (void)state;
        nx_egress_report *r = mk(0, 0);
        static char big[NX_EGRESS_LINE_MAX + 10];
        memset(big, 'a', sizeof(big) - 1);
        json_t *j = json_pack("{s:s}", "dest_host", big);
        err_t e = ERR_INIT;
        assert_int_equal(nx_egress_report_append(r, j, &e), -1);
        json_decref(j);
        nx_egress_report_stats st;
        nx_egress_report_stats_get(r, &st);
        assert_int_equal(st.dropped, 1);
        assert_int_equal(st.records, 0);
        nx_egress_report_free(r);
}

static void test_requeue_keeps_seq_and_order(void **state)
{
        (void)state;
        nx_egress_report *r = mk(0, 0);
        append(r, 1);
        nx_egress_report_flush(r);
        append(r, 2);
        nx_egress_report_flush(r);
        nx_egress_chunk c;
        assert_true(nx_egress_report_next(r, &c));
        assert_int_equal(c.seq, 0);
        nx_egress_report_chunk_requeue(r, &c);
        assert_true(nx_egress_report_next(r, &c));
        assert_int_equal(c.seq, 0);
        nx_egress_report_chunk_done(r, &c);
        assert_true(nx_egress_report_next(r, &c));
        assert_int_equal(c.seq, 1);
        nx_egress_report_chunk_done(r, &c);
        nx_egress_report_free(r);
}

static void test_free_releases_handed_out_chunks(void **state)
{
        (void)state;
        nx_egress_report *r = mk(0, 0);
        append(r, 1);
        nx_egress_report_flush(r);
        nx_egress_chunk c;
        assert_true(nx_egress_report_next(r, &c));
        nx_egress_report_free(r);       /* ASan reports a leak if c's node is not freed */
}

static void test_chunk_json_wire_fields(void **state)
{
        (void)state;
        nx_egress_report *r = mk(0, 0);
        append(r, 7);
        nx_egress_report_flush(r);
        nx_egress_chunk c;
        assert_true(nx_egress_report_next(r, &c));
        err_t e = ERR_INIT;
        json_t *j = nx_egress_chunk_to_json(&c, &e);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "stream")), "egress");
        assert_int_equal(json_integer_value(json_object_get(j, "seq")), 0);
        assert_null(json_object_get(j, "truncated"));
        const char *b64 = json_string_value(json_object_get(j, "bytes"));
        assert_non_null(b64);
        uint8_t *dec = NULL;
        size_t dl = 0;
        assert_int_equal(base64_decode(b64, strlen(b64), 1 << 20, &dec, &dl, &e), 0);
        assert_int_equal(dl, c.len);
        assert_memory_equal(dec, c.bytes, dl);
        free(dec);
        json_decref(j);
        nx_egress_report_chunk_done(r, &c);
        nx_egress_chunk z = { 0 };
        assert_null(nx_egress_chunk_to_json(&z, &e));
        nx_egress_report_free(r);
}

static void test_audit_cb_adapter_appends(void **state)
{
        (void)state;
        nx_egress_report *r = mk(0, 0);
        json_t *j = rec(1);
        nx_egress_report_audit_cb(r, j);
        nx_egress_report_audit_cb(r, j);
        json_decref(j);
        nx_egress_report_stats st;
        nx_egress_report_stats_get(r, &st);
        assert_int_equal(st.records, 2);
        nx_egress_report_free(r);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults_accepted),
                cmocka_unit_test(test_bad_cfg_refused),
                cmocka_unit_test(test_open_batch_not_returned_until_flush),
                cmocka_unit_test(test_line_is_the_compact_record),
                cmocka_unit_test(test_batches_split_at_chunk_bytes_whole_lines),
                cmocka_unit_test(test_ten_records_ten_lines),
                cmocka_unit_test(test_cap_drops_and_finish_adds_truncation_line),
                cmocka_unit_test(test_no_truncation_line_without_drops),
                cmocka_unit_test(test_append_after_finish_refused),
                cmocka_unit_test(test_oversized_record_dropped),
                cmocka_unit_test(test_requeue_keeps_seq_and_order),
                cmocka_unit_test(test_free_releases_handed_out_chunks),
                cmocka_unit_test(test_chunk_json_wire_fields),
                cmocka_unit_test(test_audit_cb_adapter_appends),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
