/* tests/unit/test_allowlist.c — proto/allowlist beyond the vectors: JSON lists, ownership,
 * bounds, and the authority parser's API contract. */
#include "testutil.h"
#include "proto/allowlist.h"

#include <stdlib.h>
#include <string.h>

static json_t *jarr(const char *text)
{
        json_error_t je;
        json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        assert_non_null(j);
        return j;
}

static void test_parse_json_refuses_non_array(void **state)
{
        allowlist l = { NULL, 0 };
        err_t err = ERR_INIT;
        json_t *j = jarr("{\"a\":1}");
        assert_int_equal(allowlist_parse_json(j, &l, &err), -1);
        assert_string_equal(err.msg, "allow: must be an array, got object");
        assert_null(l.entries);
        json_decref(j);
        assert_int_equal(allowlist_parse_json(NULL, &l, &err), -1);
        assert_string_equal(err.msg, "allow: must be an array, got null");
}

static void test_parse_json_error_names_index_of_non_string(void **state)
{
        allowlist l = { NULL, 0 };
        err_t err = ERR_INIT;
        json_t *j = jarr("[\"a.com:1\", 5]");
        assert_int_equal(allowlist_parse_json(j, &l, &err), -1);
        assert_string_equal(err.msg, "allow[1]: must be a string, got integer");
        json_decref(j);
}

static void test_parse_json_error_names_index_of_bad_entry(void **state)
{
        allowlist l = { NULL, 0 };
        err_t err = ERR_INIT;
        json_t *j = jarr("[\"a.com:1\", \"b.com:2\", \"c.com:x\"]");
        assert_int_equal(allowlist_parse_json(j, &l, &err), -1);
        assert_string_equal(err.msg, "allow[2]: invalid port \"x\"");
        assert_string_equal(err.code, ERR_INVALID);
        /* on failure nothing is handed out */
        assert_null(l.entries);
        assert_int_equal(l.n, 0);
        json_decref(j);
}

static void test_parse_json_refuses_nul_smuggling(void **state)
{
        allowlist l = { NULL, 0 };
        err_t err = ERR_INIT;
        json_t *j = jarr("[\"github.com:443\\u0000.evil.com\"]");
        assert_int_equal(allowlist_parse_json(j, &l, &err), -1);
        assert_string_equal(err.msg, "allow[0]: must not contain NUL");
        json_decref(j);
}

static void test_parse_json_empty_list_denies_everything(void **state)
{
        allowlist l = { NULL, 0 };
        err_t err = ERR_INIT;
        json_t *j = jarr("[]");
        assert_int_equal(allowlist_parse_json(j, &l, &err), 0);
        assert_int_equal(l.n, 0);
        assert_false(allowlist_match(&l, "github.com", 443));
        allowlist_free(&l);
        json_decref(j);
}

static json_t *many_entries(size_t n)
{
        json_t *a = json_array();
        char buf[64];
        for (size_t i = 0; i < n; i++) {
                int w = snprintf(buf, sizeof(buf), "h%zu.example.com:443", i);
                assert_true(w > 0 && (size_t)w < sizeof(buf));
                assert_int_equal(json_array_append_new(a, json_string(buf)), 0);
        }
        return a;
}

static void test_parse_json_caps_entry_count(void **state)
{
        allowlist l = { NULL, 0 };
        err_t err = ERR_INIT;
        json_t *ok = many_entries(ALLOWLIST_MAX_ENTRIES);
        assert_int_equal(allowlist_parse_json(ok, &l, &err), 0);
        assert_int_equal(l.n, ALLOWLIST_MAX_ENTRIES);
        assert_true(allowlist_match(&l, "h4095.example.com", 443));
        assert_false(allowlist_match(&l, "h4096.example.com", 443));
        allowlist_free(&l);
        json_decref(ok);
        json_t *over = many_entries(ALLOWLIST_MAX_ENTRIES + 1);
        assert_int_equal(allowlist_parse_json(over, &l, &err), -1);
        assert_string_equal(err.msg, "allow: too many entries (4097 > 4096)");
        json_decref(over);
}

static void test_allowlist_free_twice_is_safe(void **state)
{
        allowlist l = { NULL, 0 };
        err_t err = ERR_INIT;
        json_t *j = jarr("[\"a.com:1\"]");
        assert_int_equal(allowlist_parse_json(j, &l, &err), 0);
        allowlist_free(&l);
        assert_null(l.entries);
        assert_int_equal(l.n, 0);
        allowlist_free(&l);
        allowlist_free(NULL);
        assert_false(allowlist_match(&l, "a.com", 1));
        json_decref(j);
}

static void test_entry_parse_fills_fields(void **state)
{
        allow_entry e;
        err_t err = ERR_INIT;
        assert_int_equal(allow_entry_parse("*.Example.COM.:8443", &e, &err), 0);
        assert_true(e.wildcard);
        assert_string_equal(e.host, "example.com");
        assert_int_equal(e.port, 8443);
        assert_int_equal(allow_entry_parse("example.com:1", &e, &err), 0);
        assert_false(e.wildcard);
}

static void test_entry_parse_null_and_huge_input(void **state)
{
        allow_entry e;
        err_t err = ERR_INIT;
        assert_int_equal(allow_entry_parse(NULL, &e, &err), -1);
        size_t n = 1 << 20;
        char *big = malloc(n + 1);
        assert_non_null(big);
        memset(big, 'a', n);
        big[n] = '\0';
        assert_int_equal(allow_entry_parse(big, &e, &err), -1);
        assert_string_equal(err.msg, "allowlist entry too long (1048576 > 255 bytes)");
        free(big);
}

static void test_entry_format_reports_truncation(void **state)
{
        allow_entry e;
        err_t err = ERR_INIT;
        char out[8];
        assert_int_equal(allow_entry_parse("*.example.com:443", &e, &err), 0);
        assert_int_equal(allow_entry_format(&e, out, sizeof(out)), -1);
        assert_int_equal(strlen(out), sizeof(out) - 1);   /* cut, but terminated */
        char full[64];
        assert_int_equal(allow_entry_format(&e, full, sizeof(full)), 17);
        assert_string_equal(full, "*.example.com:443");
        assert_int_equal(allow_entry_format(NULL, full, sizeof(full)), -1);
        assert_int_equal(allow_entry_format(&e, full, 0), -1);
}

static void test_entry_match_null_arguments_never_match(void **state)
{
        allow_entry e;
        err_t err = ERR_INIT;
        assert_int_equal(allow_entry_parse("example.com:443", &e, &err), 0);
        assert_false(allow_entry_match(NULL, "example.com", 443));
        assert_false(allow_entry_match(&e, NULL, 443));
        assert_false(allowlist_match(NULL, "example.com", 443));
        allowlist l = { &e, 1 };
        assert_false(allowlist_match(&l, NULL, 443));
        assert_true(allowlist_match(&l, "example.com", 443));
}

static void test_wildcard_never_matches_its_own_apex_at_any_case(void **state)
{
        allow_entry e;
        err_t err = ERR_INIT;
        assert_int_equal(allow_entry_parse("*.example.com:443", &e, &err), 0);
        assert_false(allow_entry_match(&e, "EXAMPLE.COM.", 443));
        assert_false(allow_entry_match(&e, " example.com", 443));
        assert_true(allow_entry_match(&e, "x.EXAMPLE.com", 443));
}

static void test_authority_failure_leaves_outputs_untouched(void **state)
{
        char host[16] = "unchanged";
        uint16_t port = 7;
        err_t err = ERR_INIT;
        assert_int_equal(authority_parse("example.com:0", 13, 443, host, sizeof(host), &port,
                                         &err), -1);
        assert_string_equal(host, "unchanged");
        assert_int_equal(port, 7);
        assert_int_equal(authority_parse(NULL, 0, 443, host, sizeof(host), &port, &err), -1);
        assert_string_equal(err.msg, "empty destination");
}

static void test_authority_respects_host_buffer_size(void **state)
{
        char host[8];
        uint16_t port = 0;
        err_t err = ERR_INIT;
        assert_int_equal(authority_parse("example.com:443", 15, 443, host, sizeof(host), &port,
                                         &err), -1);
        assert_non_null(strstr(err.msg, "host too long"));
        assert_int_equal(authority_parse("a.io:443", 8, 443, host, sizeof(host), &port, &err), 0);
        assert_string_equal(host, "a.io");
}

static void test_authority_reads_only_len_bytes(void **state)
{
        /* the proxy hands a slice of its header buffer: bytes after len are not part of it */
        const char *buf = "example.com:443 HTTP/1.1\r\n";
        char host[64];
        uint16_t port = 0;
        err_t err = ERR_INIT;
        assert_int_equal(authority_parse(buf, 15, 443, host, sizeof(host), &port, &err), 0);
        assert_string_equal(host, "example.com");
        assert_int_equal(port, 443);
        assert_int_equal(authority_parse(buf, 11, 80, host, sizeof(host), &port, &err), 0);
        assert_int_equal(port, 80);
}

static void test_quote_escapes_and_cuts(void **state)
{
        char out[16];
        assert_string_equal(allow_quote("a\"b\\c\n", 6, out, sizeof(out)), "a\\\"b\\\\c\\x0a");
        assert_string_equal(allow_quote("abcdefghijklmnopqrstuvwxyz", 26, out, sizeof(out)),
                            "abcdefghijkl...");
        assert_string_equal(allow_quote(NULL, 5, out, sizeof(out)), "");
        char one[1] = { 'x' };
        allow_quote("abc", 3, one, sizeof(one));
        assert_int_equal(one[0], '\0');
        allow_quote("abc", 3, one, 0);   /* must not write */
        assert_int_equal(one[0], '\0');
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_json_refuses_non_array),
                cmocka_unit_test(test_parse_json_error_names_index_of_non_string),
                cmocka_unit_test(test_parse_json_error_names_index_of_bad_entry),
                cmocka_unit_test(test_parse_json_refuses_nul_smuggling),
                cmocka_unit_test(test_parse_json_empty_list_denies_everything),
                cmocka_unit_test(test_parse_json_caps_entry_count),
                cmocka_unit_test(test_allowlist_free_twice_is_safe),
                cmocka_unit_test(test_entry_parse_fills_fields),
                cmocka_unit_test(test_entry_parse_null_and_huge_input),
                cmocka_unit_test(test_entry_format_reports_truncation),
                cmocka_unit_test(test_entry_match_null_arguments_never_match),
                cmocka_unit_test(test_wildcard_never_matches_its_own_apex_at_any_case),
                cmocka_unit_test(test_authority_failure_leaves_outputs_untouched),
                cmocka_unit_test(test_authority_respects_host_buffer_size),
                cmocka_unit_test(test_authority_reads_only_len_bytes),
                cmocka_unit_test(test_quote_escapes_and_cuts),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
