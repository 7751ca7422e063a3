/* tests/unit/test_json.c — core/json: bounded parsing and typed getters. */
#include "testutil.h"
#include "core/cleanup.h"
#include "core/json.h"

#include <stdlib.h>
#include <string.h>

static json_t *parse_ok(const char *s)
{
        err_t err = ERR_INIT;
        json_t *j = json_parse(s, strlen(s), false, &err);
        if (!j)
                fail_msg("parse %s: %s", s, err.msg);
        return j;
}

/* Builds n nested arrays: "[[[...]]]" (caller frees). */
static char *nested(size_t n, char open, char close)
{
        char *s = malloc(2 * n + 1);
        assert_non_null(s);
        for (size_t i = 0; i < n; i++) {
                s[i] = open;
                s[2 * n - 1 - i] = close;
        }
        s[2 * n] = '\0';
        return s;
}

static void test_parse_object(void **state)
{
        err_t err = ERR_INIT;
        _cleanup_json_ json_t *j = json_parse("{\"a\":1}", 7, true, &err);
        assert_non_null(j);
        assert_true(json_is_object(j));
        assert_int_equal(json_integer_value(json_object_get(j, "a")), 1);
}

static void test_parse_rejects_duplicate_keys(void **state)
{
        err_t err = ERR_INIT;
        const char *s = "{\"a\":1,\"a\":2}";
        json_t *j = json_parse(s, strlen(s), true, &err);
        assert_null(j);
        assert_string_equal(err.code, ERR_INVALID);
        assert_non_null(strstr(err.msg, "duplicate"));
}

static void test_parse_error_names_line_and_column(void **state)
{
        err_t err = ERR_INIT;
        const char *s = "{\n  \"a\": ,\n}";
        json_t *j = json_parse(s, strlen(s), true, &err);
        assert_null(j);
        assert_true(strncmp(err.msg, "invalid JSON at line 2 column ", 30) == 0);
        /* jansson's own text follows the position */
        assert_non_null(strstr(err.msg, ": "));
}

static void test_parse_require_object_refuses_array(void **state)
{
        err_t err = ERR_INIT;
        json_t *j = json_parse("[1]", 3, true, &err);
        assert_null(j);
        assert_string_equal(err.msg, "JSON top level must be an object, got array");
}

static void test_parse_require_object_refuses_scalar(void **state)
{
        err_t err = ERR_INIT;
        json_t *j = json_parse("\"x\"", 3, true, &err);
        assert_null(j);
        assert_string_equal(err.msg, "JSON top level must be an object, got string");
}

static void test_parse_any_top_level_when_not_required(void **state)
{
        _cleanup_json_ json_t *a = parse_ok("[1,2]");
        _cleanup_json_ json_t *n = parse_ok("42");
        assert_true(json_is_array(a));
        assert_true(json_is_integer(n));
}

static void test_parse_depth_32_accepted(void **state)
{
        _cleanup_free_ char *s = nested(JSON_MAX_DEPTH, '[', ']');
        _cleanup_json_ json_t *j = parse_ok(s);
        assert_true(json_is_array(j));
}

static void test_parse_depth_33_refused(void **state)
{
        err_t err = ERR_INIT;
        _cleanup_free_ char *s = nested(JSON_MAX_DEPTH + 1, '[', ']');
        json_t *j = json_parse(s, strlen(s), false, &err);
        assert_null(j);
        assert_string_equal(err.msg, "JSON nesting deeper than 32 levels");
}

static void test_parse_deep_objects_refused(void **state)
{
        /* {"a":{"a":...{}}} with 33 objects */
        char s[33 * 6 + 33 + 1];
        size_t n = 0;
        for (int i = 0; i < 32; i++) {
                memcpy(s + n, "{\"a\":", 5);
                n += 5;
        }
        s[n++] = '{';
        for (int i = 0; i < 33; i++)
                s[n++] = '}';
        s[n] = '\0';
        err_t err = ERR_INIT;
        json_t *j = json_parse(s, n, true, &err);
        assert_null(j);
        assert_string_equal(err.msg, "JSON nesting deeper than 32 levels");
}

static void test_parse_very_deep_input_fails_without_crash(void **state)
{
        err_t err = ERR_INIT;
        _cleanup_free_ char *s = nested(100000, '[', ']');
        json_t *j = json_parse(s, strlen(s), false, &err);
        assert_null(j);
        assert_true(err_is_set(&err));
}

static void test_parse_uses_length_not_nul(void **state)
{
        err_t err = ERR_INIT;
        /* the bytes after len are garbage and must not be read as JSON */
        _cleanup_json_ json_t *j = json_parse("{\"a\":true}xyz", 10, true, &err);
        assert_non_null(j);
        assert_true(json_is_true(json_object_get(j, "a")));
}

static void test_parse_rejects_trailing_garbage(void **state)
{
        err_t err = ERR_INIT;
        json_t *j = json_parse("{} x", 4, true, &err);
        assert_null(j);
        assert_true(strncmp(err.msg, "invalid JSON at line 1 column ", 30) == 0);
}

static void test_parse_rejects_empty_input(void **state)
{
        err_t err = ERR_INIT;
        assert_null(json_parse("", 0, false, &err));
        assert_string_equal(err.code, ERR_INVALID);
        err_clear(&err);
        assert_null(json_parse(NULL, 0, false, &err));
        assert_true(strncmp(err.msg, "invalid JSON at line", 20) == 0);
}

static void test_parse_rejects_embedded_nul_byte(void **state)
{
        err_t err = ERR_INIT;
        assert_null(json_parse("{\"a\":\0 1}", 9, true, &err));
        assert_string_equal(err.code, ERR_INVALID);
}

static void test_parse_rejects_escaped_nul_in_string(void **state)
{
        err_t err = ERR_INIT;
        const char *s = "{\"a\":\"x\\u0000y\"}";
        assert_null(json_parse(s, strlen(s), true, &err));
}

static void test_get_string(void **state)
{
        err_t err = ERR_INIT;
        _cleanup_json_ json_t *j = parse_ok("{\"name\":\"web\"}");
        const char *v = NULL;
        bool present = false;
        assert_int_equal(json_get_string(j, "name", true, &v, &present, &err), 0);
        assert_true(present);
        assert_string_equal(v, "web");
}

static void test_get_string_wrong_type(void **state)
{
        err_t err = ERR_INIT;
        _cleanup_json_ json_t *j = parse_ok("{\"name\":5}");
        const char *v = NULL;
        assert_int_equal(json_get_string(j, "name", true, &v, NULL, &err), -1);
        assert_string_equal(err.code, ERR_INVALID);
        assert_string_equal(err.msg, "field \"name\" must be a string, got integer");
}

static void test_get_int(void **state)
{
        err_t err = ERR_INIT;
        _cleanup_json_ json_t *j = parse_ok("{\"n\":-9007199254740993}");
        int64_t v = 0;
        assert_int_equal(json_get_int(j, "n", true, INT64_MIN, INT64_MAX, &v, NULL, &err), 0);
        assert_true(v == -9007199254740993LL);
}

static void test_get_int_refuses_string(void **state)
{
        err_t err = ERR_INIT;
        _cleanup_json_ json_t *j = parse_ok("{\"timeout_seconds\":\"30\"}");
        int64_t v = 0;
        assert_int_equal(json_get_int(j, "timeout_seconds", true, 0, 100, &v, NULL, &err), -1);
        assert_string_equal(err.msg, "field \"timeout_seconds\" must be an integer, got string");
}

static void test_get_int_refuses_integral_real(void **state)
{
        err_t err = ERR_INIT;
        _cleanup_json_ json_t *j = parse_ok("{\"n\":5.0}");
        int64_t v = 0;
        assert_int_equal(json_get_int(j, "n", true, 0, 10, &v, NULL, &err), -1);
        assert_string_equal(err.msg, "field \"n\" must be an integer, got number");
}

static void test_get_int_refuses_bool(void **state)
{
        err_t err = ERR_INIT;
        _cleanup_json_ json_t *j = parse_ok("{\"n\":true}");
        int64_t v = 0;
        assert_int_equal(json_get_int(j, "n", true, 0, 10, &v, NULL, &err), -1);
        assert_string_equal(err.msg, "field \"n\" must be an integer, got boolean");
}

static void test_get_int_out_of_range(void **state)
{
        err_t err = ERR_INIT;
        _cleanup_json_ json_t *j = parse_ok("{\"x\":9}");
        int64_t v = 0;
        assert_int_equal(json_get_int(j, "x", true, 1, 5, &v, NULL, &err), -1);
        assert_string_equal(err.msg, "field \"x\" must be between 1 and 5, got 9");
        assert_int_equal(v, 0);
}

static void test_get_int_bounds_inclusive(void **state)
{
        err_t err = ERR_INIT;
        _cleanup_json_ json_t *j = parse_ok("{\"lo\":1,\"hi\":5,\"below\":0}");
        int64_t v = 0;
        assert_int_equal(json_get_int(j, "lo", true, 1, 5, &v, NULL, &err), 0);
        assert_int_equal(v, 1);
        assert_int_equal(json_get_int(j, "hi", true, 1, 5, &v, NULL, &err), 0);
        assert_int_equal(v, 5);
        assert_int_equal(json_get_int(j, "below", true, 1, 5, &v, NULL, &err), -1);
        assert_string_equal(err.msg, "field \"below\" must be between 1 and 5, got 0");
}

static void test_get_missing_required(void **state)
{
        err_t err = ERR_INIT;
        _cleanup_json_ json_t *j = parse_ok("{}");
        const char *v = NULL;
        assert_int_equal(json_get_string(j, "command", true, &v, NULL, &err), -1);
        assert_string_equal(err.code, ERR_INVALID);
        assert_string_equal(err.msg, "missing required field \"command\"");
}

static void test_get_missing_optional_keeps_default(void **state)
{
        err_t err = ERR_INIT;
        _cleanup_json_ json_t *j = parse_ok("{}");
        int64_t v = 77;
        bool present = true;
        assert_int_equal(json_get_int(j, "n", false, 0, 100, &v, &present, &err), 0);
        assert_false(present);
        assert_int_equal(v, 77);
        assert_false(err_is_set(&err));
}

static void test_get_null_counts_as_missing(void **state)
{
        err_t err = ERR_INIT;
        _cleanup_json_ json_t *j = parse_ok("{\"command\":null}");
        bool present = true;
        bool b = false;
        assert_int_equal(json_get_bool(j, "command", false, &b, &present, &err), 0);
        assert_false(present);
        assert_int_equal(json_get_bool(j, "command", true, &b, &present, &err), -1);
        assert_string_equal(err.msg, "missing required field \"command\"");
}

static void test_get_bool(void **state)
{
        err_t err = ERR_INIT;
        _cleanup_json_ json_t *j = parse_ok("{\"t\":true,\"f\":false,\"n\":1}");
        bool v = false;
        assert_int_equal(json_get_bool(j, "t", true, &v, NULL, &err), 0);
        assert_true(v);
        assert_int_equal(json_get_bool(j, "f", true, &v, NULL, &err), 0);
        assert_false(v);
        assert_int_equal(json_get_bool(j, "n", true, &v, NULL, &err), -1);
        assert_string_equal(err.msg, "field \"n\" must be a boolean, got integer");
}

static void test_get_object_and_array(void **state)
{
        err_t err = ERR_INIT;
        _cleanup_json_ json_t *j = parse_ok("{\"o\":{\"k\":1},\"a\":[1,2]}");
        json_t *o = NULL, *a = NULL;
        assert_int_equal(json_get_object(j, "o", true, &o, NULL, &err), 0);
        assert_true(json_is_object(o));
        assert_int_equal(json_get_array(j, "a", true, &a, NULL, &err), 0);
        assert_int_equal(json_array_size(a), 2);
}

static void test_get_object_and_array_wrong_type(void **state)
{
        err_t err = ERR_INIT;
        _cleanup_json_ json_t *j = parse_ok("{\"o\":[1],\"a\":{}}");
        json_t *x = NULL;
        assert_int_equal(json_get_object(j, "o", true, &x, NULL, &err), -1);
        assert_string_equal(err.msg, "field \"o\" must be an object, got array");
        assert_int_equal(json_get_array(j, "a", true, &x, NULL, &err), -1);
        assert_string_equal(err.msg, "field \"a\" must be an array, got object");
}

static void test_get_from_non_object_fails(void **state)
{
        err_t err = ERR_INIT;
        _cleanup_json_ json_t *j = parse_ok("[1]");
        const char *v = NULL;
        assert_int_equal(json_get_string(j, "x", false, &v, NULL, &err), -1);
        assert_string_equal(err.code, ERR_INVALID);
}

static void test_check_keys_accepts_known(void **state)
{
        err_t err = ERR_INIT;
        _cleanup_json_ json_t *j = parse_ok("{\"a\":1,\"b\":2}");
        static const char *const allowed[] = { "a", "b", "c", NULL };
        assert_int_equal(json_check_keys(j, allowed, &err), 0);
}

static void test_check_keys_refuses_unknown(void **state)
{
        err_t err = ERR_INIT;
        _cleanup_json_ json_t *j = parse_ok("{\"a\":1,\"x\":2}");
        static const char *const allowed[] = { "a", "b", NULL };
        assert_int_equal(json_check_keys(j, allowed, &err), -1);
        assert_string_equal(err.msg, "unknown field \"x\"");
}

static void test_check_keys_empty_list_refuses_any_key(void **state)
{
        err_t err = ERR_INIT;
        _cleanup_json_ json_t *j = parse_ok("{\"a\":1}");
        _cleanup_json_ json_t *e = parse_ok("{}");
        static const char *const none[] = { NULL };
        assert_int_equal(json_check_keys(e, none, &err), 0);
        assert_int_equal(json_check_keys(j, none, &err), -1);
        assert_string_equal(err.msg, "unknown field \"a\"");
}

static void test_dump_compact_keeps_insertion_order(void **state)
{
        _cleanup_json_ json_t *j = parse_ok("{ \"z\" : 1, \"a\" : [ 1, \"s\" ], \"m\" : null }");
        _cleanup_free_ char *s = json_dump_compact(j);
        assert_non_null(s);
        assert_string_equal(s, "{\"z\":1,\"a\":[1,\"s\"],\"m\":null}");
}

static void test_dump_compact_scalar(void **state)
{
        _cleanup_json_ json_t *j = json_integer(5);
        _cleanup_free_ char *s = json_dump_compact(j);
        assert_non_null(s);
        assert_string_equal(s, "5");
}

static void test_type_names(void **state)
{
        _cleanup_json_ json_t *j =
                parse_ok("[{},[],\"s\",1,1.5,true,false,null]");
        static const char *const want[] = { "object", "array", "string", "integer", "number",
                                            "boolean", "boolean", "null" };
        for (size_t i = 0; i < 8; i++)
                assert_string_equal(json_type_name(json_array_get(j, i)), want[i]);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_object),
                cmocka_unit_test(test_parse_rejects_duplicate_keys),
                cmocka_unit_test(test_parse_error_names_line_and_column),
                cmocka_unit_test(test_parse_require_object_refuses_array),
                cmocka_unit_test(test_parse_require_object_refuses_scalar),
                cmocka_unit_test(test_parse_any_top_level_when_not_required),
                cmocka_unit_test(test_parse_depth_32_accepted),
                cmocka_unit_test(test_parse_depth_33_refused),
                cmocka_unit_test(test_parse_deep_objects_refused),
                cmocka_unit_test(test_parse_very_deep_input_fails_without_crash),
                cmocka_unit_test(test_parse_uses_length_not_nul),
                cmocka_unit_test(test_parse_rejects_trailing_garbage),
                cmocka_unit_test(test_parse_rejects_empty_input),
                cmocka_unit_test(test_parse_rejects_embedded_nul_byte),
                cmocka_unit_test(test_parse_rejects_escaped_nul_in_string),
                cmocka_unit_test(test_get_string),
                cmocka_unit_test(test_get_string_wrong_type),
                cmocka_unit_test(test_get_int),
                cmocka_unit_test(test_get_int_refuses_string),
                cmocka_unit_test(test_get_int_refuses_integral_real),
                cmocka_unit_test(test_get_int_refuses_bool),
                cmocka_unit_test(test_get_int_out_of_range),
                cmocka_unit_test(test_get_int_bounds_inclusive),
                cmocka_unit_test(test_get_missing_required),
                cmocka_unit_test(test_get_missing_optional_keeps_default),
                cmocka_unit_test(test_get_null_counts_as_missing),
                cmocka_unit_test(test_get_bool),
                cmocka_unit_test(test_get_object_and_array),
                cmocka_unit_test(test_get_object_and_array_wrong_type),
                cmocka_unit_test(test_get_from_non_object_fails),
                cmocka_unit_test(test_check_keys_accepts_known),
                cmocka_unit_test(test_check_keys_refuses_unknown),
                cmocka_unit_test(test_check_keys_empty_list_refuses_any_key),
                cmocka_unit_test(test_dump_compact_keeps_insertion_order),
                cmocka_unit_test(test_dump_compact_scalar),
                cmocka_unit_test(test_type_names),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
