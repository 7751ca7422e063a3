/* tests/unit/test_fscap.c — proto/fscap beyond the vectors: API edges, bounds, and drift
 * against the contract schema. */
#include "testutil.h"
#include "proto/fscap.h"

#include <string.h>

#ifndef VECTORS_DIR
#define VECTORS_DIR "tests/vectors"
#endif
#define FS_SCHEMA \
        VECTORS_DIR "/../../../shared/contract/directivespec_capabilities_fs.schema.v1.json"

static void test_validate_null_pointer_is_refused(void **state)
{
        err_t err = ERR_INIT;
        assert_int_equal(fscap_validate(NULL, &err), -1);
        assert_string_equal(err.msg, "capabilities.fs: must be an object, got null");
}

static void test_dotdot_root_message_names_field_and_index(void **state)
{
        err_t err = ERR_INIT;
        json_t *cap = json_pack("{s:[s,s]}", "writable_roots", "/srv/a", "/srv/a/../../etc");
        assert_int_equal(fscap_validate(cap, &err), -1);
        assert_string_equal(err.msg, "capabilities.fs.writable_roots[1]: path component \".\" or "
                                     "\"..\" is not allowed in \"/srv/a/../../etc\"");
        json_decref(cap);
}

static void test_selector_direct_checks(void **state)
{
        assert_false(fscap_selector_ok(NULL, 0));
        assert_true(fscap_selector_ok("workspace:**", 12));
        assert_false(fscap_selector_ok("workspace:**", 11));        /* length-aware */
        assert_false(fscap_selector_ok("workspace:/a\0b", 14));
        /* bytes that are not UTF-8 (only possible through the C API) are not whitespace */
        assert_true(fscap_selector_ok("host:/\xff\xfe", 8));
        assert_true(fscap_selector_ok("host:/\xe2\x80", 8));        /* a cut sequence is no space */
        assert_false(fscap_selector_ok("host:/a\xe2\x80\xa8", 10)); /* U+2028 */
}

static void test_host_path_direct_checks(void **state)
{
        assert_false(fscap_host_path_ok(NULL, 0));
        assert_false(fscap_host_path_ok("", 0));
        assert_true(fscap_host_path_ok("/", 1));
        assert_false(fscap_host_path_ok("/..", 3));
        assert_false(fscap_host_path_ok("/..", 2));                 /* "/." is refused too */
        assert_true(fscap_host_path_ok("/..a", 4));
}

static void test_host_path_single_dot_refused_directly(void **state)
{
        assert_false(fscap_host_path_ok("/.", 2));
        assert_false(fscap_host_path_ok("/a/./b", 6));
        assert_true(fscap_host_path_ok("/a/.b", 5));
}

static json_t *many(const char *field, const char *prefix, size_t n, bool dup_last)
{
        json_t *a = json_array();
        char buf[64];
        for (size_t i = 0; i < n; i++) {
                size_t k = (dup_last && i == n - 1) ? 0 : i;
                int w = snprintf(buf, sizeof(buf), "%s%zu", prefix, k);
                assert_true(w > 0 && (size_t)w < sizeof(buf));
                json_array_append_new(a, json_string(buf));
        }
        json_t *cap = json_object();
        json_object_set_new(cap, field, a);
        return cap;
}

static void test_item_count_is_capped_and_duplicates_found_far_apart(void **state)
{
        err_t err = ERR_INIT;
        json_t *ok = many("read", "workspace:/d", FSCAP_MAX_ITEMS, false);
        assert_int_equal(fscap_validate(ok, &err), 0);
        json_decref(ok);
        json_t *dup = many("read_only_subpaths", "/d", FSCAP_MAX_ITEMS, true);
        assert_int_equal(fscap_validate(dup, &err), -1);
        assert_string_equal(err.msg, "capabilities.fs.read_only_subpaths[4095]: duplicate of "
                                     "read_only_subpaths[0] (\"/d0\")");
        json_decref(dup);
        json_t *over = many("write", "workspace:/d", FSCAP_MAX_ITEMS + 1, false);
        assert_int_equal(fscap_validate(over, &err), -1);
        assert_string_equal(err.msg, "capabilities.fs.write: too many items (4097 > 4096)");
        json_decref(over);
}

static void test_first_failing_field_in_schema_order(void **state)
{
        err_t err = ERR_INIT;
        json_t *cap = json_pack("{s:[s],s:[s]}", "read_only_subpaths", "rel", "read", "bad");
        assert_int_equal(fscap_validate(cap, &err), -1);
        assert_non_null(strstr(err.msg, "capabilities.fs.read[0]"));
        json_decref(cap);
}

static void test_contract_schema_matches_implemented_rules(void **state)
{
        json_error_t je;
        json_t *s = json_load_file(FS_SCHEMA, 0, &je);
        if (!s)
                SKIP_BECAUSE("contract schema not readable at %s: %s", FS_SCHEMA, je.text);
        const json_t *defs = json_object_get(s, "$defs");
        const json_t *sel = json_object_get(defs, "FsPathSelectorV1");
        const json_t *hp = json_object_get(defs, "HostAbsolutePathV1");
        assert_string_equal(json_string_value(json_object_get(sel, "pattern")),
                            "^(workspace:(\\*\\*|/[^\\s]*)|host:/[^\\s]*)$");
        assert_int_equal(json_integer_value(json_object_get(sel, "minLength")), 3);
        assert_int_equal(json_integer_value(json_object_get(sel, "maxLength")),
                         FSCAP_SELECTOR_MAX);
        assert_string_equal(json_string_value(json_object_get(hp, "pattern")), "^/[^\\s]*$");
        assert_int_equal(json_integer_value(json_object_get(hp, "minLength")), 1);
        assert_int_equal(json_integer_value(json_object_get(hp, "maxLength")), FSCAP_PATH_MAX);
        assert_true(json_is_false(json_object_get(s, "additionalProperties")));
        const json_t *props = json_object_get(s, "properties");
        assert_int_equal(json_object_size(props), 4);
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)(uintptr_t)props, key, v) {
                assert_true(json_is_true(json_object_get(v, "uniqueItems")));
                json_t *cap = json_pack("{s:[]}", key);
                err_t err = ERR_INIT;
                assert_int_equal(fscap_validate(cap, &err), 0);
                json_decref(cap);
        }
        json_decref(s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_validate_null_pointer_is_refused),
                cmocka_unit_test(test_dotdot_root_message_names_field_and_index),
                cmocka_unit_test(test_selector_direct_checks),
                cmocka_unit_test(test_host_path_direct_checks),
                cmocka_unit_test(test_host_path_single_dot_refused_directly),
                cmocka_unit_test(test_item_count_is_capped_and_duplicates_found_far_apart),
                cmocka_unit_test(test_first_failing_field_in_schema_order),
                cmocka_unit_test(test_contract_schema_matches_implemented_rules),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
