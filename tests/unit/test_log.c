/* tests/unit/test_log.c — core/log: JSON-lines records, escaping, bounds, levels.
 * Every record is captured and parsed back with jansson, so "valid JSON" is checked by a
 * parser that is not ours. */
#include "testutil.h"
#include "core/log.h"
#include "core/clock.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Capture of everything logged between cap_begin() and cap_end(). */
typedef struct capture {
        FILE *f;
        char *text;
        size_t len;
} capture;

static void cap_begin(capture *c)
{
        c->text = NULL;
        c->len = 0;
        c->f = open_memstream(&c->text, &c->len);
        assert_non_null(c->f);
        log_set_output(c->f);
}

static void cap_end(capture *c)
{
        log_set_output(NULL);
        assert_int_equal(fclose(c->f), 0);
        c->f = NULL;
}

static void cap_free(capture *c)
{
        free(c->text); c->text = NULL;
}

/* The captured text must be exactly one line of JSON; returns the object. */
static json_t *one_record(const capture *c)
{
        assert_non_null(c->text);
        assert_true(c->len > 0);
        assert_int_equal(c->text[c->len - 1], '\n');
        const char *nl = memchr(c->text, '\n', c->len);
        assert_ptr_equal(nl, c->text + c->len - 1);
        json_error_t jerr;
        json_t *j = json_loadb(c->text, c->len - 1, 0, &jerr);
        if (!j)
                fail_msg("not JSON (%s): %s", jerr.text, c->text);
        assert_true(json_is_object(j));
        return j;
}

static const char *get_str(json_t *j, const char *key)
{
        json_t *v = json_object_get(j, key);
        if (!json_is_string(v))
                fail_msg("\"%s\" is not a string", key);
        return json_string_value(v);
}

static int setup(void **state)
{
        log_set_level(LOG_LEVEL_DEBUG);
        return 0;
}

static int teardown(void **state)
{
        log_set_output(NULL);
        log_set_level(LOG_LEVEL_INFO);
        return 0;
}

static void test_record_has_ts_level_msg(void **state)
{
        capture c;
        cap_begin(&c);
        int64_t before = clock_now_ms();
        log_info("directive started");
        int64_t after = clock_now_ms();
        cap_end(&c);
        json_t *j = one_record(&c);
        assert_string_equal(get_str(j, "level"), "info");
        assert_string_equal(get_str(j, "msg"), "directive started");
        const char *ts = get_str(j, "ts");
        assert_int_equal(strlen(ts), RFC3339_MS_LEN - 1);
        assert_int_equal(ts[23], 'Z');
        err_t err = ERR_INIT;
        int64_t ms;
        assert_int_equal(rfc3339_parse(ts, &ms, &err), 0);
        assert_true(ms >= before && ms <= after);
        assert_int_equal(json_object_size(j), 3);
        /* the fixed keys come first, in this order */
        assert_true(strncmp(c.text, "{\"ts\":", 6) == 0);
        assert_non_null(strstr(c.text, "\"level\":\"info\",\"msg\":"));
        json_decref(j);
        cap_free(&c);
}

static void test_typed_fields_keep_their_json_types(void **state)
{
        capture c;
        cap_begin(&c);
        log_warn("lease expired", LOG_STR("directive_id", "0195f3a2"), LOG_INT("pid", 4242),
                 LOG_BOOL("retry", 1), LOG_DBL("elapsed_s", 1.5),
                 LOG_INT("min", INT64_MIN));
        cap_end(&c);
        json_t *j = one_record(&c);
        assert_string_equal(get_str(j, "level"), "warn");
        assert_string_equal(get_str(j, "directive_id"), "0195f3a2");
        assert_true(json_is_integer(json_object_get(j, "pid")));
        assert_int_equal(json_integer_value(json_object_get(j, "pid")), 4242);
        assert_true(json_is_true(json_object_get(j, "retry")));
        assert_true(json_is_real(json_object_get(j, "elapsed_s")));
        assert_true(json_real_value(json_object_get(j, "elapsed_s")) == 1.5);
        assert_true(json_integer_value(json_object_get(j, "min")) == INT64_MIN);
        json_decref(j);
        cap_free(&c);
}

static void test_double_round_trips_and_non_finite_is_null(void **state)
{
        capture c;
        cap_begin(&c);
        log_info("d", LOG_DBL("tenth", 0.1), LOG_DBL("third", 1.0 / 3.0),
                 LOG_DBL("nan", NAN), LOG_DBL("inf", INFINITY));
        cap_end(&c);
        json_t *j = one_record(&c);
        assert_true(json_number_value(json_object_get(j, "tenth")) == 0.1);
        assert_true(json_number_value(json_object_get(j, "third")) == 1.0 / 3.0);
        assert_true(json_is_null(json_object_get(j, "nan")));
        assert_true(json_is_null(json_object_get(j, "inf")));
        json_decref(j);
        cap_free(&c);
}

static void test_log_err_adds_error_message(void **state)
{
        err_t err = ERR_INIT;
        err_set(&err, "port \"99999\" out of range 1-65535");
        capture c;
        cap_begin(&c);
        log_error("config rejected", LOG_ERR(&err));
        cap_end(&c);
        json_t *j = one_record(&c);
        assert_string_equal(get_str(j, "level"), "error");
        assert_string_equal(get_str(j, "error"), "port \"99999\" out of range 1-65535");
        json_decref(j);
        cap_free(&c);
}

static void test_clear_err_and_null_string_are_null(void **state)
{
        err_t err = ERR_INIT;
        capture c;
        cap_begin(&c);
        log_info("x", LOG_ERR(&err), LOG_STR("s", NULL));
        cap_end(&c);
        json_t *j = one_record(&c);
        assert_true(json_is_null(json_object_get(j, "error")));
        assert_true(json_is_null(json_object_get(j, "s")));
        json_decref(j);
        cap_free(&c);
}

static void test_hostile_string_stays_one_line_and_round_trips(void **state)
{
        const char *evil = "line1\nline2\r\n\"}, {\"level\":\"error\"\\ \t\b\f\x01\x1f\x7f end";
        capture c;
        cap_begin(&c);
        log_info(evil, LOG_STR("output", evil), LOG_STR("k\"ey\n", "v"));
        cap_end(&c);
        json_t *j = one_record(&c);
        assert_string_equal(get_str(j, "msg"), evil);
        assert_string_equal(get_str(j, "output"), evil);
        assert_string_equal(get_str(j, "k\"ey\n"), "v");
        assert_string_equal(get_str(j, "level"), "info");
        assert_non_null(strstr(c.text, "\\u0001"));
        assert_non_null(strstr(c.text, "\\u007f"));
        json_decref(j);
        cap_free(&c);
}

static void test_valid_utf8_is_kept(void **state)
{
        const char *s = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf";
        capture c;
        cap_begin(&c);
        log_info("u", LOG_STR("s", s));
        cap_end(&c);
        json_t *j = one_record(&c);
        assert_string_equal(get_str(j, "s"), s);
        json_decref(j);
        cap_free(&c);
}

static void test_invalid_utf8_becomes_replacement_character(void **state)
{
        static const struct { const char *in, *out; } cases[] = {
                { "a\xff" "b", "a\xef\xbf\xbd" "b" },                 /* never valid */
                { "\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd" },           /* overlong '/' */
                { "\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" }, /* surrogate */
                { "\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
                { "x\xe2\x82", "x\xef\xbf\xbd\xef\xbf\xbd" },         /* cut at the end */
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                capture c;
                cap_begin(&c);
                log_info("u", LOG_STR("s", cases[i].in));
                cap_end(&c);
                json_t *j = one_record(&c);
                assert_string_equal(get_str(j, "s"), cases[i].out);
                json_decref(j);
                cap_free(&c);
        }
}

static void test_records_below_level_are_dropped(void **state)
{
        capture c;
        cap_begin(&c);
        log_set_level(LOG_LEVEL_WARN);
        log_debug("hidden");
        log_info("hidden");
        log_warn("shown");
        log_error("shown too");
        log_set_level(LOG_LEVEL_DEBUG);
        log_debug("shown at debug");
        cap_end(&c);
        assert_null(strstr(c.text, "hidden"));
        int lines = 0;
        for (size_t i = 0; i < c.len; i++)
                lines += c.text[i] == '\n';
        assert_int_equal(lines, 3);
        assert_non_null(strstr(c.text, "\"level\":\"debug\",\"msg\":\"shown at debug\""));
        cap_free(&c);
}

static void test_enabled_and_get_level_follow_set_level(void **state)
{
        log_set_level(LOG_LEVEL_ERROR);
        assert_int_equal(log_get_level(), LOG_LEVEL_ERROR);
        assert_false(log_enabled(LOG_LEVEL_WARN));
        assert_true(log_enabled(LOG_LEVEL_ERROR));
        log_set_level(LOG_LEVEL_DEBUG);
        assert_true(log_enabled(LOG_LEVEL_DEBUG));
}

static void test_level_parse_and_name(void **state)
{
        assert_int_equal(log_level_parse("debug"), LOG_LEVEL_DEBUG);
        assert_int_equal(log_level_parse("info"), LOG_LEVEL_INFO);
        assert_int_equal(log_level_parse("WARN"), LOG_LEVEL_WARN);
        assert_int_equal(log_level_parse("Error"), LOG_LEVEL_ERROR);
        assert_int_equal(log_level_parse("verbose"), -1);
        assert_int_equal(log_level_parse("info "), -1);
        assert_int_equal(log_level_parse(""), -1);
        assert_int_equal(log_level_parse(NULL), -1);
        assert_string_equal(log_level_name(LOG_LEVEL_WARN), "warn");
        assert_string_equal(log_level_name((log_level)42), "unknown");
}

static char *repeat(const char *unit, size_t times)
{
        size_t n = strlen(unit);
        char *p = malloc(n * times + 1);
        assert_non_null(p);
        for (size_t i = 0; i < times; i++)
                memcpy(p + i * n, unit, n);
        p[n * times] = '\0';
        return p;
}

static void test_long_value_is_truncated_and_marked(void **state)
{
        char *big = repeat("a", 100000);
        capture c;
        cap_begin(&c);
        log_info("upload", LOG_STR("id", "short-id"), LOG_STR("body", big), LOG_INT("n", 7));
        cap_end(&c);
        assert_true(c.len <= LOG_RECORD_MAX);
        assert_true(c.len > LOG_RECORD_MAX - 64);   /* the budget is used, not wasted */
        json_t *j = one_record(&c);
        assert_true(json_is_true(json_object_get(j, "truncated")));
        assert_string_equal(get_str(j, "id"), "short-id");
        assert_string_equal(get_str(j, "msg"), "upload");
        assert_int_equal(json_integer_value(json_object_get(j, "n")), 7);
        const char *body = get_str(j, "body");
        assert_true(strlen(body) > 16000);
        assert_memory_equal(body, big, strlen(body));
        json_decref(j);
        cap_free(&c);
        free(big); big = NULL;
}

static void test_record_at_limit_is_not_marked(void **state)
{
        /* a record just under the cap keeps its value whole and has no "truncated" */
        char *mid = repeat("b", 16000);
        capture c;
        cap_begin(&c);
        log_info("m", LOG_STR("v", mid));
        cap_end(&c);
        assert_true(c.len <= LOG_RECORD_MAX);
        json_t *j = one_record(&c);
        assert_null(json_object_get(j, "truncated"));
        assert_string_equal(get_str(j, "v"), mid);
        json_decref(j);
        cap_free(&c);
        free(mid); mid = NULL;
}

static void test_two_long_values_share_the_budget(void **state)
{
        char *a = repeat("x", 30000), *b = repeat("y", 30000);
        capture c;
        cap_begin(&c);
        log_info("both", LOG_STR("a", a), LOG_STR("b", b));
        cap_end(&c);
        assert_true(c.len <= LOG_RECORD_MAX);
        json_t *j = one_record(&c);
        size_t la = strlen(get_str(j, "a")), lb = strlen(get_str(j, "b"));
        assert_true(la > 7000 && lb > 7000);
        assert_true(la == lb);
        json_decref(j);
        cap_free(&c);
        free(a); a = NULL;
        free(b); b = NULL;
}

static void test_truncation_never_splits_an_escape(void **state)
{
        char *nl = repeat("\n", 20000);     /* each byte becomes two */
        char *ctl = repeat("\x01", 5000);   /* each byte becomes six */
        capture c;
        cap_begin(&c);
        log_info("esc", LOG_STR("nl", nl), LOG_STR("ctl", ctl));
        cap_end(&c);
        assert_true(c.len <= LOG_RECORD_MAX);
        json_t *j = one_record(&c);
        assert_true(json_is_true(json_object_get(j, "truncated")));
        const char *v = get_str(j, "nl");
        assert_true(strspn(v, "\n") == strlen(v));
        v = get_str(j, "ctl");
        assert_true(strspn(v, "\x01") == strlen(v));
        json_decref(j);
        cap_free(&c);
        free(nl); nl = NULL;
        free(ctl); ctl = NULL;
}

static void test_truncation_never_splits_utf8(void **state)
{
        char *e = repeat("\xf0\x9f\x98\x80", 10000);
        capture c;
        cap_begin(&c);
        log_info(e);   /* the message itself is a string value too */
        cap_end(&c);
        assert_true(c.len <= LOG_RECORD_MAX);
        json_t *j = one_record(&c);   /* jansson rejects broken UTF-8 */
        const char *m = get_str(j, "msg");
        assert_int_equal(strlen(m) % 4, 0);
        assert_true(json_is_true(json_object_get(j, "truncated")));
        json_decref(j);
        cap_free(&c);
        free(e); e = NULL;
}

static void test_too_many_fields_are_dropped_not_overflowed(void **state)
{
        enum { N = 600 };
        log_kv *kvs = calloc(N + 1, sizeof(*kvs));
        assert_non_null(kvs);
        char (*keys)[16] = calloc(N, 16);
        assert_non_null(keys);
        char *val = repeat("v", 100);
        for (int i = 0; i < N; i++) {
                int n = snprintf(keys[i], 16, "key%d", i);
                assert_true(n > 0 && n < 16);
                kvs[i] = LOG_STR(keys[i], val);
        }
        kvs[N] = LOG_END;
        capture c;
        cap_begin(&c);
        log_write(LOG_LEVEL_INFO, "many", kvs);
        cap_end(&c);
        assert_true(c.len <= LOG_RECORD_MAX);
        json_t *j = one_record(&c);
        assert_true(json_is_true(json_object_get(j, "truncated")));
        assert_non_null(json_object_get(j, "key0"));
        assert_null(json_object_get(j, "key599"));
        json_decref(j);
        cap_free(&c);
        free(val); val = NULL;
        free(keys); keys = NULL;
        free(kvs); kvs = NULL;
}

static void test_overlong_key_is_cut_and_marked(void **state)
{
        char *key = repeat("k", 1000);
        capture c;
        cap_begin(&c);
        log_info("k", LOG_STR(key, "v"));
        cap_end(&c);
        json_t *j = one_record(&c);
        assert_true(json_is_true(json_object_get(j, "truncated")));
        key[128] = '\0';
        assert_string_equal(get_str(j, key), "v");
        json_decref(j);
        cap_free(&c);
        free(key); key = NULL;
}

enum { LOG_THREADS = 4, LOG_PER_THREAD = 200 };

static void *log_many(void *arg)
{
        char *pad = arg;
        for (int i = 0; i < LOG_PER_THREAD; i++)
                log_info("concurrent", LOG_STR("pad", pad), LOG_INT("i", i));
        return NULL;
}

static void test_concurrent_records_do_not_interleave(void **state)
{
        char *pad = repeat("p", 3000);
        capture c;
        cap_begin(&c);
        pthread_t th[LOG_THREADS];
        for (int t = 0; t < LOG_THREADS; t++)
                assert_int_equal(pthread_create(&th[t], NULL, log_many, pad), 0);
        for (int t = 0; t < LOG_THREADS; t++)
                assert_int_equal(pthread_join(th[t], NULL), 0);
        cap_end(&c);
        int lines = 0;
        const char *p = c.text, *end = c.text + c.len;
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                assert_non_null(nl);
                json_error_t jerr;
                json_t *j = json_loadb(p, (size_t)(nl - p), 0, &jerr);
                if (!j)
                        fail_msg("line %d is not JSON: %s", lines, jerr.text);
                assert_string_equal(get_str(j, "pad"), pad);
                json_decref(j);
                lines++;
                p = nl + 1;
        }
        assert_int_equal(lines, LOG_THREADS * LOG_PER_THREAD);
        cap_free(&c);
        free(pad); pad = NULL;
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_record_has_ts_level_msg, setup, teardown),
                cmocka_unit_test_setup_teardown(test_typed_fields_keep_their_json_types, setup, teardown),
                cmocka_unit_test_setup_teardown(test_double_round_trips_and_non_finite_is_null, setup, teardown),
                cmocka_unit_test_setup_teardown(test_log_err_adds_error_message, setup, teardown),
                cmocka_unit_test_setup_teardown(test_clear_err_and_null_string_are_null, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hostile_string_stays_one_line_and_round_trips, setup, teardown),
                cmocka_unit_test_setup_teardown(test_valid_utf8_is_kept, setup, teardown),
                cmocka_unit_test_setup_teardown(test_invalid_utf8_becomes_replacement_character, setup, teardown),
                cmocka_unit_test_setup_teardown(test_records_below_level_are_dropped, setup, teardown),
                cmocka_unit_test_setup_teardown(test_enabled_and_get_level_follow_set_level, setup, teardown),
                cmocka_unit_test_setup_teardown(test_level_parse_and_name, setup, teardown),
                cmocka_unit_test_setup_teardown(test_long_value_is_truncated_and_marked, setup, teardown),
                cmocka_unit_test_setup_teardown(test_record_at_limit_is_not_marked, setup, teardown),
                cmocka_unit_test_setup_teardown(test_two_long_values_share_the_budget, setup, teardown),
                cmocka_unit_test_setup_teardown(test_truncation_never_splits_an_escape, setup, teardown),
                cmocka_unit_test_setup_teardown(test_truncation_never_splits_utf8, setup, teardown),
                cmocka_unit_test_setup_teardown(test_too_many_fields_are_dropped_not_overflowed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_overlong_key_is_cut_and_marked, setup, teardown),
                cmocka_unit_test_setup_teardown(test_concurrent_records_do_not_interleave, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
