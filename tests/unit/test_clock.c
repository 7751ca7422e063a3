/* tests/unit/test_clock.c — core/clock: RFC 3339 formatting and strict parsing. */
#include "testutil.h"
#include "core/clock.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* 2026-02-27T14:30:22.123Z */
#define T_KNOWN_MS INT64_C(1772202622123)
/* 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z */
#define T_YEAR0_S INT64_C(-62167219200)
#define T_YEAR9999_END_S INT64_C(253402300799)

static int64_t parse_ok(const char *s)
{
        err_t err = ERR_INIT;
        int64_t ms = -777;
        if (rfc3339_parse(s, &ms, &err) != 0)
                fail_msg("rfc3339_parse(\"%s\") failed: %s", s, err.msg);
        return ms;
}

/* Asserts the parse fails and the message contains want. */
static void parse_fails(const char *s, const char *want)
{
        err_t err = ERR_INIT;
        int64_t ms = -777;
        if (rfc3339_parse(s, &ms, &err) == 0)
                fail_msg("rfc3339_parse(\"%s\") accepted: %lld", s, (long long)ms);
        assert_int_equal(ms, -777);
        assert_string_equal(err.code, ERR_INVALID);
        if (!strstr(err.msg, want))
                fail_msg("message \"%s\" lacks \"%s\"", err.msg, want);
}

static void test_format_ms_known_instant(void **state)
{
        char out[RFC3339_MS_LEN];
        assert_int_equal(rfc3339_format_ms(T_KNOWN_MS, out, sizeof(out)), 0);
        assert_string_equal(out, "2026-02-27T14:30:22.123Z");
}

static void test_format_ms_pads_fraction_to_three_digits(void **state)
{
        char out[RFC3339_MS_LEN];
        assert_int_equal(rfc3339_format_ms(0, out, sizeof(out)), 0);
        assert_string_equal(out, "1970-01-01T00:00:00.000Z");
        assert_int_equal(rfc3339_format_ms(7, out, sizeof(out)), 0);
        assert_string_equal(out, "1970-01-01T00:00:00.007Z");
}

static void test_format_ms_before_epoch_floors(void **state)
{
        char out[RFC3339_MS_LEN];
        assert_int_equal(rfc3339_format_ms(-1, out, sizeof(out)), 0);
        assert_string_equal(out, "1969-12-31T23:59:59.999Z");
        assert_int_equal(rfc3339_format_ms(T_YEAR0_S * 1000, out, sizeof(out)), 0);
        assert_string_equal(out, "0000-01-01T00:00:00.000Z");
}

static void test_format_s_known_instant(void **state)
{
        char out[RFC3339_S_LEN];
        assert_int_equal(rfc3339_format_s(T_KNOWN_MS / 1000, out, sizeof(out)), 0);
        assert_string_equal(out, "2026-02-27T14:30:22Z");
        assert_int_equal(rfc3339_format_s(T_YEAR9999_END_S, out, sizeof(out)), 0);
        assert_string_equal(out, "9999-12-31T23:59:59Z");
}

static void test_format_refuses_small_buffer(void **state)
{
        char out[RFC3339_MS_LEN];
        assert_int_equal(rfc3339_format_ms(T_KNOWN_MS, out, RFC3339_MS_LEN - 1), -1);
        assert_string_equal(out, "");
        assert_int_equal(rfc3339_format_s(0, out, RFC3339_S_LEN - 1), -1);
        assert_string_equal(out, "");
        assert_int_equal(rfc3339_format_s(0, out, 0), -1);
}

static void test_format_refuses_years_outside_four_digits(void **state)
{
        char out[RFC3339_MS_LEN];
        assert_int_equal(rfc3339_format_s(T_YEAR9999_END_S + 1, out, sizeof(out)), -1);
        assert_int_equal(rfc3339_format_s(T_YEAR0_S - 1, out, sizeof(out)), -1);
        assert_int_equal(rfc3339_format_ms(INT64_MAX, out, sizeof(out)), -1);
        assert_int_equal(rfc3339_format_ms(INT64_MIN, out, sizeof(out)), -1);
        assert_int_equal(rfc3339_format_s(INT64_MIN, out, sizeof(out)), -1);
}

static void test_parse_known_instant(void **state)
{
        assert_true(parse_ok("2026-02-27T14:30:22.123Z") == T_KNOWN_MS);
        assert_true(parse_ok("1970-01-01T00:00:00Z") == 0);
        assert_true(parse_ok("0000-01-01T00:00:00Z") == T_YEAR0_S * 1000);
        assert_true(parse_ok("9999-12-31T23:59:59.999Z") == T_YEAR9999_END_S * 1000 + 999);
}

static void test_parse_accepts_lower_case_t_and_z(void **state)
{
        assert_true(parse_ok("2026-02-27t14:30:22.123z") == T_KNOWN_MS);
}

static void test_parse_applies_numeric_offsets(void **state)
{
        /* 14:30:22Z written in other zones */
        assert_true(parse_ok("2026-02-27T20:00:22.123+05:30") == T_KNOWN_MS);
        assert_true(parse_ok("2026-02-27T06:30:22.123-08:00") == T_KNOWN_MS);
        assert_true(parse_ok("2026-02-27T14:30:22.123+00:00") == T_KNOWN_MS);
        assert_true(parse_ok("2026-02-27T14:30:22.123-00:00") == T_KNOWN_MS);
        /* an offset can move the instant across a day boundary */
        assert_true(parse_ok("2026-02-28T00:30:22.123+10:00") == T_KNOWN_MS);
}

static void test_parse_fraction_digits_truncate_past_ms(void **state)
{
        assert_true(parse_ok("1970-01-01T00:00:00.1Z") == 100);
        assert_true(parse_ok("1970-01-01T00:00:00.12Z") == 120);
        assert_true(parse_ok("1970-01-01T00:00:00.123999999Z") == 123);
        assert_true(parse_ok("1969-12-31T23:59:59.9999Z") == -1);
        parse_fails("1970-01-01T00:00:00.Z", "fraction digits");
        parse_fails("1970-01-01T00:00:00.1234567890Z", "more than 9 fraction digits");
}

static void test_parse_rejects_month_out_of_range(void **state)
{
        parse_fails("2026-13-01T00:00:00Z", "rfc3339: month 13 out of range in \"2026-13-01");
        parse_fails("2026-00-01T00:00:00Z", "month 0 out of range");
}

static void test_parse_rejects_day_out_of_range(void **state)
{
        parse_fails("2026-01-00T00:00:00Z", "day 0 out of range");
        parse_fails("2026-01-32T00:00:00Z", "day 32 out of range");
        parse_fails("2026-04-31T00:00:00Z", "day 31 out of range");
        parse_fails("2024-02-30T00:00:00Z", "day 30 out of range");
        assert_true(parse_ok("2026-12-31T00:00:00Z") > 0);
}

static void test_parse_feb_29_follows_century_rule(void **state)
{
        assert_true(parse_ok("2024-02-29T00:00:00Z") > 0);
        assert_true(parse_ok("2000-02-29T00:00:00Z") > 0);
        parse_fails("2023-02-29T00:00:00Z", "day 29 out of range");
        parse_fails("1900-02-29T00:00:00Z", "day 29 out of range");
        parse_fails("2100-02-29T00:00:00Z", "day 29 out of range");
        assert_true(parse_ok("2000-03-01T00:00:00Z") - parse_ok("2000-02-28T00:00:00Z") ==
                    2 * 86400000LL);
}

static void test_parse_rejects_time_fields_out_of_range(void **state)
{
        parse_fails("2026-02-27T24:00:00Z", "hour 24 out of range");
        parse_fails("2026-02-27T23:60:00Z", "minute 60 out of range");
        parse_fails("2026-02-27T23:59:61Z", "second 61 out of range");
}

static void test_parse_rejects_leap_second(void **state)
{
        /* a real leap second (2016-12-31); see the comment in clock.c for why it is refused */
        parse_fails("2016-12-31T23:59:60Z", "second 60 out of range");
}

static void test_parse_rejects_offset_out_of_range(void **state)
{
        parse_fails("2026-02-27T14:30:22+24:00", "offset hour 24 out of range");
        parse_fails("2026-02-27T14:30:22+05:60", "offset minute 60 out of range");
        parse_fails("2026-02-27T14:30:22+0530", "':' in offset");
        parse_fails("2026-02-27T14:30:22+05", "':' in offset");
}

static void test_parse_rejects_missing_parts(void **state)
{
        parse_fails("", "4-digit year");
        parse_fails("2026-02-27", "'T' after date");
        parse_fails("2026-02-27T", "2-digit hour");
        parse_fails("2026-02-27T14:30", "':' after minute");
        parse_fails("2026-02-27T14:30:22", "'Z' or a numeric offset");
        parse_fails("2026-2-27T14:30:22Z", "2-digit month");
        parse_fails("2026-02-27 14:30:22Z", "'T' after date");
        err_t err = ERR_INIT;
        int64_t ms;
        assert_int_equal(rfc3339_parse(NULL, &ms, &err), -1);
}

static void test_parse_rejects_trailing_garbage(void **state)
{
        parse_fails("2026-02-27T14:30:22Zjunk", "trailing characters");
        parse_fails("2026-02-27T14:30:22+01:00 ", "trailing characters");
        parse_fails("2026-02-27T14:30:22.123Z\n", "trailing characters");
}

static void test_parse_rejects_years_outside_four_digits(void **state)
{
        parse_fails("-001-01-01T00:00:00Z", "4-digit year");
        parse_fails("10000-01-01T00:00:00Z", "'-' after year");
        parse_fails("+2026-01-01T00:00:00Z", "4-digit year");
}

static void test_parse_error_message_is_bounded(void **state)
{
        char big[4096];
        memset(big, '9', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        memcpy(big, "2026-13-01T00:00:00Z", 20);
        err_t err = ERR_INIT;
        int64_t ms;
        assert_int_equal(rfc3339_parse(big, &ms, &err), -1);
        assert_true(strlen(err.msg) < 200);
}

static void test_results_do_not_depend_on_tz(void **state)
{
        const char *old = getenv("TZ");
        char *saved = old ? strdup(old) : NULL;
        char out[RFC3339_MS_LEN];
        static const char *const zones[] = { "UTC", "America/New_York", "Asia/Kolkata",
                                             "XST-14" };
        for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++) {
                setenv("TZ", zones[i], 1);
                tzset();
                assert_true(parse_ok("2026-02-27T14:30:22.123Z") == T_KNOWN_MS);
                assert_int_equal(rfc3339_format_ms(T_KNOWN_MS, out, sizeof(out)), 0);
                assert_string_equal(out, "2026-02-27T14:30:22.123Z");
        }
        if (saved)
                setenv("TZ", saved, 1);
        else
                unsetenv("TZ");
        tzset();
        free(saved); saved = NULL;
}

static void test_days_from_civil_known_dates(void **state)
{
        assert_int_equal(clock_days_from_civil(1970, 1, 1), 0);
        assert_int_equal(clock_days_from_civil(1969, 12, 31), -1);
        assert_int_equal(clock_days_from_civil(2000, 3, 1), 11017);
        assert_int_equal(clock_days_from_civil(0, 3, 1), -719468);
}

static void test_format_parse_round_trip_over_whole_range(void **state)
{
        /* every 7th day and a varying time of day from 0000 to 9999, plus every day of
         * 1896-2104 (the leap-year edge cases); deterministic */
        char out[RFC3339_MS_LEN];
        const int64_t first = clock_days_from_civil(0, 1, 1);
        const int64_t last = clock_days_from_civil(9999, 12, 31);
        for (int64_t d = first; d <= last; d++) {
                bool dense = d >= clock_days_from_civil(1896, 1, 1) &&
                             d <= clock_days_from_civil(2104, 12, 31);
                if (!dense && (d - first) % 7 != 0)
                        continue;
                int64_t ms = d * 86400000LL + (d * 7919 % 86400000 + 86400000) % 86400000;
                assert_int_equal(rfc3339_format_ms(ms, out, sizeof(out)), 0);
                int64_t back = parse_ok(out);
                if (back != ms)
                        fail_msg("%s parsed to %lld, want %lld", out, (long long)back,
                                 (long long)ms);
        }
}

static void test_now_is_after_2020_and_mono_does_not_go_back(void **state)
{
        /* 2020-01-01T00:00:00Z */
        assert_true(clock_now_ms() > INT64_C(1577836800000));
        int64_t a = clock_mono_ms();
        int64_t b = clock_mono_ms();
        assert_true(b >= a);
        char out[RFC3339_MS_LEN];
        assert_int_equal(rfc3339_now_ms(out, sizeof(out)), 0);
        assert_int_equal(strlen(out), RFC3339_MS_LEN - 1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_format_ms_known_instant),
                cmocka_unit_test(test_format_ms_pads_fraction_to_three_digits),
                cmocka_unit_test(test_format_ms_before_epoch_floors),
                cmocka_unit_test(test_format_s_known_instant),
                cmocka_unit_test(test_format_refuses_small_buffer),
                cmocka_unit_test(test_format_refuses_years_outside_four_digits),
                cmocka_unit_test(test_parse_known_instant),
                cmocka_unit_test(test_parse_accepts_lower_case_t_and_z),
                cmocka_unit_test(test_parse_applies_numeric_offsets),
                cmocka_unit_test(test_parse_fraction_digits_truncate_past_ms),
                cmocka_unit_test(test_parse_rejects_month_out_of_range),
                cmocka_unit_test(test_parse_rejects_day_out_of_range),
                cmocka_unit_test(test_parse_feb_29_follows_century_rule),
                cmocka_unit_test(test_parse_rejects_time_fields_out_of_range),
                cmocka_unit_test(test_parse_rejects_leap_second),
                cmocka_unit_test(test_parse_rejects_offset_out_of_range),
                cmocka_unit_test(test_parse_rejects_missing_parts),
                cmocka_unit_test(test_parse_rejects_trailing_garbage),
                cmocka_unit_test(test_parse_rejects_years_outside_four_digits),
                cmocka_unit_test(test_parse_error_message_is_bounded),
                cmocka_unit_test(test_results_do_not_depend_on_tz),
                cmocka_unit_test(test_days_from_civil_known_dates),
                cmocka_unit_test(test_format_parse_round_trip_over_whole_range),
                cmocka_unit_test(test_now_is_after_2020_and_mono_does_not_go_back),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
