/* tests/unit/test_str.c — core/str: bounded string helpers and strict integers. */
#include "testutil.h"
#include "core/str.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void test_copy_fits(void **state)
{
        char d[8];
        assert_int_equal(str_copy(d, sizeof(d), "abcdefg"), 0);
        assert_string_equal(d, "abcdefg");
}

static void test_copy_too_long_truncates_with_enametoolong(void **state)
{
        char d[8];
        errno = 0;
        assert_int_equal(str_copy(d, sizeof(d), "abcdefgh"), -1);
        assert_int_equal(errno, ENAMETOOLONG);
        assert_string_equal(d, "abcdefg");
}

static void test_copy_into_zero_sized_buffer_fails(void **state)
{
        char d[1] = { 'z' };
        assert_int_equal(str_copy(d, 0, ""), -1);
        assert_int_equal(errno, ENAMETOOLONG);
        assert_int_equal(d[0], 'z');
}

static void test_copyn_stops_at_n(void **state)
{
        char d[8];
        assert_int_equal(str_copyn(d, sizeof(d), "hello world", 5), 0);
        assert_string_equal(d, "hello");
        assert_int_equal(str_copyn(d, sizeof(d), "hi", 5), 0);
        assert_string_equal(d, "hi");
        assert_int_equal(str_copyn(d, 4, "hello", 5), -1);
        assert_string_equal(d, "hel");
}

static void test_printf_returns_length(void **state)
{
        char d[16];
        assert_int_equal(str_printf(d, sizeof(d), "%s:%d", "h", 80), 4);
        assert_string_equal(d, "h:80");
}

static void test_printf_truncation_is_reported(void **state)
{
        char d[6];
        errno = 0;
        assert_int_equal(str_printf(d, sizeof(d), "port %d", 65535), -1);
        assert_int_equal(errno, ENAMETOOLONG);
        assert_string_equal(d, "port ");
}

static void test_dup_printf_allocates_exact_string(void **state)
{
        char *p = str_dup_printf("%s-%03d", "lease", 7);
        assert_non_null(p);
        assert_string_equal(p, "lease-007");
        free(p); p = NULL;
        char *big = str_dup_printf("%0300d", 1);
        assert_non_null(big);
        assert_int_equal(strlen(big), 300);
        free(big); big = NULL;
}

static void test_int64_accepts_plain_and_negative_and_leading_zeros(void **state)
{
        static const struct { const char *s; int64_t v; } ok[] = {
                { "0", 0 }, { "-0", 0 }, { "7", 7 }, { "007", 7 }, { "123456", 123456 },
                { "-45", -45 }, { "000000000000000000000000001", 1 },
        };
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                int64_t v = 99;
                assert_int_equal(str_to_int64(ok[i].s, INT64_MIN, INT64_MAX, &v), 0);
                assert_int_equal(v, ok[i].v);
        }
}

static void test_int64_accepts_exact_limits(void **state)
{
        int64_t v;
        assert_int_equal(str_to_int64("9223372036854775807", INT64_MIN, INT64_MAX, &v), 0);
        assert_true(v == INT64_MAX);
        assert_int_equal(str_to_int64("-9223372036854775808", INT64_MIN, INT64_MAX, &v), 0);
        assert_true(v == INT64_MIN);
}

static void test_int64_overflow_is_erange(void **state)
{
        static const char *const bad[] = {
                "9223372036854775808", "-9223372036854775809", "99999999999999999999",
                "-99999999999999999999999",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                int64_t v = 42;
                errno = 0;
                assert_int_equal(str_to_int64(bad[i], INT64_MIN, INT64_MAX, &v), -1);
                assert_int_equal(errno, ERANGE);
                assert_int_equal(v, 42);
        }
}

static void test_int64_rejects_non_numbers_with_einval(void **state)
{
        static const char *const bad[] = {
                "", "-", "+1", "+", " 1", "1 ", "\t1", "1\n", "12a", "0x10", "1.0", "--1",
                "1-", "١", "1e3", "99999999999999999999x",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                int64_t v = 42;
                errno = 0;
                assert_int_equal(str_to_int64(bad[i], INT64_MIN, INT64_MAX, &v), -1);
                assert_int_equal(errno, EINVAL);
                assert_int_equal(v, 42);
        }
        errno = 0;
        assert_int_equal(str_to_int64(NULL, 0, 1, &(int64_t){ 0 }), -1);
        assert_int_equal(errno, EINVAL);
}

static void test_int64_enforces_caller_range(void **state)
{
        int64_t v = 0;
        assert_int_equal(str_to_int64("65535", 1, 65535, &v), 0);
        assert_int_equal(v, 65535);
        errno = 0;
        assert_int_equal(str_to_int64("65536", 1, 65535, &v), -1);
        assert_int_equal(errno, ERANGE);
        errno = 0;
        assert_int_equal(str_to_int64("0", 1, 65535, &v), -1);
        assert_int_equal(errno, ERANGE);
        assert_int_equal(v, 65535);
}

static void test_int64n_reads_only_the_given_bytes(void **state)
{
        const char s[] = "8080/tcp";
        int64_t v = 0;
        assert_int_equal(str_to_int64n(s, 4, 0, 65535, &v), 0);
        assert_int_equal(v, 8080);
        errno = 0;
        assert_int_equal(str_to_int64n(s, 5, 0, 65535, &v), -1);
        assert_int_equal(errno, EINVAL);
        errno = 0;
        assert_int_equal(str_to_int64n(s, 0, 0, 65535, &v), -1);
        assert_int_equal(errno, EINVAL);
        /* an embedded NUL inside the range is not a digit */
        assert_int_equal(str_to_int64n("1\0002", 3, 0, 999, &v), -1);
}

static void test_prefix_and_suffix(void **state)
{
        assert_true(str_has_prefix("nexus/v1", "nexus/"));
        assert_true(str_has_prefix("abc", ""));
        assert_false(str_has_prefix("ne", "nexus"));
        assert_false(str_has_prefix(NULL, "a"));
        assert_true(str_has_suffix("rootfs.tar.gz", ".tar.gz"));
        assert_true(str_has_suffix("abc", "abc"));
        assert_false(str_has_suffix("gz", ".tar.gz"));
        assert_false(str_has_suffix("abc", NULL));
}

static void test_is_blank(void **state)
{
        assert_true(str_is_blank(NULL));
        assert_true(str_is_blank(""));
        assert_true(str_is_blank(" \t\r\n\v\f"));
        assert_false(str_is_blank("  x "));
}

static void test_ascii_lower_leaves_non_ascii(void **state)
{
        char s[] = "AbC-Z\xc3\x89";
        assert_ptr_equal(str_ascii_lower(s), s);
        assert_string_equal(s, "abc-z\xc3\x89");
        assert_null(str_ascii_lower(NULL));
}

static void test_trim_both_ends_without_modifying(void **state)
{
        const char *s = " \t value here \r\n";
        size_t n = 0;
        const char *t = str_trim(s, strlen(s), &n);
        assert_int_equal(n, strlen("value here"));
        assert_memory_equal(t, "value here", n);
        assert_string_equal(s, " \t value here \r\n");
        t = str_trim("   ", 3, &n);
        assert_int_equal(n, 0);
        t = str_trim("ab  cd", 2, &n);   /* only the first len bytes count */
        assert_int_equal(n, 2);
        assert_memory_equal(t, "ab", 2);
}

static void test_utf8_valid_accepts_and_refuses(void **state)
{
        assert_true(str_utf8_valid("", 0));
        assert_true(str_utf8_valid("plain", 5));
        assert_true(str_utf8_valid("\xc3\xa9\xe2\x98\x83\xf0\x9f\x9a\x80", 9)); /* é ☃ 🚀 */
        assert_false(str_utf8_valid("\xc0\xaf", 2));           /* overlong '/' */
        assert_false(str_utf8_valid("\xed\xa0\x80", 3));       /* surrogate */
        assert_false(str_utf8_valid("\xf4\x90\x80\x80", 4));   /* above U+10FFFF */
        assert_false(str_utf8_valid("\xe2\x98", 2));            /* truncated */
        assert_false(str_utf8_valid("\xff", 1));
        assert_false(str_utf8_valid("a\x80", 2));                /* stray continuation */
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_utf8_valid_accepts_and_refuses),
                cmocka_unit_test(test_copy_fits),
                cmocka_unit_test(test_copy_too_long_truncates_with_enametoolong),
                cmocka_unit_test(test_copy_into_zero_sized_buffer_fails),
                cmocka_unit_test(test_copyn_stops_at_n),
                cmocka_unit_test(test_printf_returns_length),
                cmocka_unit_test(test_printf_truncation_is_reported),
                cmocka_unit_test(test_dup_printf_allocates_exact_string),
                cmocka_unit_test(test_int64_accepts_plain_and_negative_and_leading_zeros),
                cmocka_unit_test(test_int64_accepts_exact_limits),
                cmocka_unit_test(test_int64_overflow_is_erange),
                cmocka_unit_test(test_int64_rejects_non_numbers_with_einval),
                cmocka_unit_test(test_int64_enforces_caller_range),
                cmocka_unit_test(test_int64n_reads_only_the_given_bytes),
                cmocka_unit_test(test_prefix_and_suffix),
                cmocka_unit_test(test_is_blank),
                cmocka_unit_test(test_ascii_lower_leaves_non_ascii),
                cmocka_unit_test(test_trim_both_ends_without_modifying),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
