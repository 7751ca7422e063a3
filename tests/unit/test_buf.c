/* tests/unit/test_buf.c — core/buf: bounded growable buffer. */
#include "testutil.h"
#include "core/buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void test_append_keeps_data_nul_terminated(void **state)
{
        _cleanup_buf_ buf b = BUF_INIT(100);
        assert_int_equal(buf_append(&b, "abc", 3), 0);
        assert_int_equal(buf_append(&b, "de", 2), 0);
        assert_int_equal(b.len, 5);
        assert_string_equal(b.data, "abcde");
        assert_true(b.alloc >= b.len + 1);
}

static void test_zero_length_append_gives_empty_c_string(void **state)
{
        _cleanup_buf_ buf b = BUF_INIT(10);
        assert_null(b.data);
        assert_int_equal(buf_append(&b, NULL, 0), 0);
        assert_non_null(b.data);
        assert_string_equal(b.data, "");
        assert_int_equal(b.len, 0);
}

static void test_growth_doubles_and_stops_at_cap_plus_nul(void **state)
{
        _cleanup_buf_ buf b = BUF_INIT(1000);
        size_t prev = 0;
        for (int i = 0; i < 1000; i++) {
                assert_int_equal(buf_putc(&b, 'x'), 0);
                if (b.alloc != prev) {
                        /* every growth step doubles, except the last clamp to max + 1 */
                        if (prev != 0 && b.alloc != 1001)
                                assert_int_equal(b.alloc, prev * 2);
                        prev = b.alloc;
                }
                assert_true(b.alloc <= 1001);
        }
        assert_int_equal(b.len, 1000);
        assert_int_equal(b.alloc, 1001);
        assert_int_equal(b.data[1000], '\0');
}

static void test_append_exactly_to_cap_succeeds(void **state)
{
        _cleanup_buf_ buf b = BUF_INIT(4);
        assert_int_equal(buf_append(&b, "abcd", 4), 0);
        assert_string_equal(b.data, "abcd");
        assert_int_equal(b.alloc, 5);
}

static void test_append_past_cap_fails_emsgsize_and_leaves_buf_unchanged(void **state)
{
        _cleanup_buf_ buf b = BUF_INIT(5);
        assert_int_equal(buf_append(&b, "abc", 3), 0);
        errno = 0;
        assert_int_equal(buf_append(&b, "def", 3), -1);
        assert_int_equal(errno, EMSGSIZE);
        assert_int_equal(b.len, 3);
        assert_string_equal(b.data, "abc");
        errno = 0;
        assert_int_equal(buf_putc(&b, 'x'), 0);
        assert_int_equal(buf_putc(&b, 'y'), 0);
        assert_int_equal(buf_putc(&b, 'z'), -1);
        assert_int_equal(errno, EMSGSIZE);
        assert_string_equal(b.data, "abcxy");
}

static void test_huge_length_does_not_wrap_size_arithmetic(void **state)
{
        /* With no cap at all, len + n + 1 would wrap to a tiny allocation. */
        _cleanup_buf_ buf b = BUF_INIT(SIZE_MAX);
        assert_int_equal(buf_append(&b, "ab", 2), 0);
        errno = 0;
        assert_int_equal(buf_append(&b, "x", SIZE_MAX - 1), -1);
        assert_int_equal(errno, EMSGSIZE);
        errno = 0;
        assert_int_equal(buf_append(&b, "x", SIZE_MAX - 2), -1);
        assert_int_equal(errno, ENOMEM);
        assert_int_equal(b.len, 2);
        assert_string_equal(b.data, "ab");
}

static void test_append_str_rejects_null(void **state)
{
        _cleanup_buf_ buf b = BUF_INIT(10);
        errno = 0;
        assert_int_equal(buf_append_str(&b, NULL), -1);
        assert_int_equal(errno, EINVAL);
        assert_int_equal(buf_append_str(&b, "hi"), 0);
        assert_string_equal(b.data, "hi");
}

static void test_appendf_formats(void **state)
{
        _cleanup_buf_ buf b = BUF_INIT(100);
        assert_int_equal(buf_appendf(&b, "port %d", 8080), 0);
        assert_int_equal(buf_appendf(&b, " host %s", "a.b"), 0);
        assert_string_equal(b.data, "port 8080 host a.b");
        assert_int_equal(b.len, strlen("port 8080 host a.b"));
}

static void test_appendf_over_cap_appends_nothing(void **state)
{
        _cleanup_buf_ buf b = BUF_INIT(10);
        assert_int_equal(buf_append_str(&b, "12345"), 0);
        errno = 0;
        assert_int_equal(buf_appendf(&b, "%s", "abcdefgh"), -1);
        assert_int_equal(errno, EMSGSIZE);
        assert_int_equal(b.len, 5);
        assert_string_equal(b.data, "12345");
}

static void test_appendf_long_output_over_cap_appends_nothing(void **state)
{
        /* past the 256-byte stack temporary, so the heap path is taken */
        _cleanup_buf_ buf b = BUF_INIT(400);
        assert_int_equal(buf_append_str(&b, "head"), 0);
        assert_int_equal(buf_appendf(&b, "%0500d", 7), -1);
        assert_int_equal(errno, EMSGSIZE);
        assert_string_equal(b.data, "head");
}

static void test_appendf_long_output_is_complete(void **state)
{
        _cleanup_buf_ buf b = BUF_INIT(10000);
        assert_int_equal(buf_appendf(&b, "<%01000d>", 42), 0);
        assert_int_equal(b.len, 1002);
        assert_int_equal(b.data[0], '<');
        assert_int_equal(b.data[998], '0');
        assert_int_equal(b.data[999], '4');
        assert_int_equal(b.data[1000], '2');
        assert_int_equal(b.data[1001], '>');
        assert_int_equal(b.data[1002], '\0');
}

static void test_appendf_argument_pointing_into_buf_is_safe(void **state)
{
        _cleanup_buf_ buf b = BUF_INIT(100000);
        assert_int_equal(buf_append_str(&b, "ab"), 0);
        for (int i = 0; i < 12; i++)
                assert_int_equal(buf_appendf(&b, "%s", b.data), 0);
        assert_int_equal(b.len, 2u << 12);
        for (size_t i = 0; i < b.len; i += 2)
                assert_memory_equal(b.data + i, "ab", 2);
}

static void test_append_own_bytes_survives_realloc(void **state)
{
        _cleanup_buf_ buf b = BUF_INIT(1 << 20);
        assert_int_equal(buf_append_str(&b, "xyz"), 0);
        for (int i = 0; i < 10; i++)
                assert_int_equal(buf_append(&b, b.data, b.len), 0);
        assert_int_equal(b.len, 3u << 10);
        assert_memory_equal(b.data + b.len - 3, "xyz", 3);
}

static void test_consume_drops_prefix(void **state)
{
        _cleanup_buf_ buf b = BUF_INIT(100);
        assert_int_equal(buf_append_str(&b, "GET / HTTP/1.1"), 0);
        buf_consume(&b, 4);
        assert_string_equal(b.data, "/ HTTP/1.1");
        assert_int_equal(b.len, 10);
}

static void test_consume_more_than_len_empties(void **state)
{
        _cleanup_buf_ buf b = BUF_INIT(100);
        assert_int_equal(buf_append_str(&b, "abc"), 0);
        buf_consume(&b, 99);
        assert_int_equal(b.len, 0);
        assert_string_equal(b.data, "");
        buf_free(&b);
        buf_consume(&b, 1);   /* on a never-used buffer: no crash */
        assert_null(b.data);
}

static void test_reset_keeps_storage_and_cap(void **state)
{
        _cleanup_buf_ buf b = BUF_INIT(8);
        assert_int_equal(buf_append_str(&b, "abcdefgh"), 0);
        size_t alloc = b.alloc;
        buf_reset(&b);
        assert_int_equal(b.len, 0);
        assert_int_equal(b.alloc, alloc);
        assert_string_equal(b.data, "");
        assert_int_equal(buf_append_str(&b, "12345678"), 0);
        assert_int_equal(buf_putc(&b, '9'), -1);
}

static void test_free_releases_storage_and_keeps_cap(void **state)
{
        buf b = BUF_INIT(3);
        assert_int_equal(buf_append_str(&b, "abc"), 0);
        buf_free(&b);
        assert_null(b.data);
        assert_int_equal(b.len, 0);
        assert_int_equal(b.alloc, 0);
        assert_int_equal(b.max, 3);
        assert_int_equal(buf_append_str(&b, "abcd"), -1);
        assert_int_equal(errno, EMSGSIZE);
        buf_free(&b);
}

static void test_steal_hands_over_data_and_empties(void **state)
{
        _cleanup_buf_ buf b = BUF_INIT(100);
        assert_int_equal(buf_append_str(&b, "body"), 0);
        size_t len = 0;
        char *p = buf_steal(&b, &len);
        assert_non_null(p);
        assert_string_equal(p, "body");
        assert_int_equal(len, 4);
        assert_null(b.data);
        assert_int_equal(b.len, 0);
        assert_int_equal(b.max, 100);
        free(p); p = NULL;
}

static void test_steal_of_empty_buffer_returns_empty_string(void **state)
{
        buf b = BUF_INIT(100);
        size_t len = 7;
        char *p = buf_steal(&b, &len);
        assert_non_null(p);
        assert_string_equal(p, "");
        assert_int_equal(len, 0);
        free(p); p = NULL;
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_append_keeps_data_nul_terminated),
                cmocka_unit_test(test_zero_length_append_gives_empty_c_string),
                cmocka_unit_test(test_growth_doubles_and_stops_at_cap_plus_nul),
                cmocka_unit_test(test_append_exactly_to_cap_succeeds),
                cmocka_unit_test(test_append_past_cap_fails_emsgsize_and_leaves_buf_unchanged),
                cmocka_unit_test(test_huge_length_does_not_wrap_size_arithmetic),
                cmocka_unit_test(test_append_str_rejects_null),
                cmocka_unit_test(test_appendf_formats),
                cmocka_unit_test(test_appendf_over_cap_appends_nothing),
                cmocka_unit_test(test_appendf_long_output_over_cap_appends_nothing),
                cmocka_unit_test(test_appendf_long_output_is_complete),
                cmocka_unit_test(test_appendf_argument_pointing_into_buf_is_safe),
                cmocka_unit_test(test_append_own_bytes_survives_realloc),
                cmocka_unit_test(test_consume_drops_prefix),
                cmocka_unit_test(test_consume_more_than_len_empties),
                cmocka_unit_test(test_reset_keeps_storage_and_cap),
                cmocka_unit_test(test_free_releases_storage_and_keeps_cap),
                cmocka_unit_test(test_steal_hands_over_data_and_empties),
                cmocka_unit_test(test_steal_of_empty_buffer_returns_empty_string),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
