/* tests/unit/test_ms_policy_fs.c — policy/fs: FsPolicyV1 path semantics (spec mothership §6.2),
 * the §11.1 defaults and the fs/net/approval/device section validation (§6.1). */
#include "testutil.h"
#include "policy/policy.h"

#include <string.h>

static void check_norm(const char *in, const char *want)
{
        char out[256];
        assert_true(mspol_fs_normalize(in, out, sizeof(out)) >= 0);
        assert_string_equal(out, want);
}

/* spec mothership §13 #353 */
static void test_normalize_trailing_slash(void **state)
{
        check_norm("/workspace/", "/workspace");
}

/* spec mothership §13 #354 */
static void test_normalize_prepends_slash(void **state)
{
        check_norm("workspace", "/workspace");
}

/* spec mothership §13 #355 */
static void test_normalize_collapses_slashes(void **state)
{
        check_norm("/workspace//src", "/workspace/src");
}

/* spec mothership §13 #356 */
static void test_normalize_root(void **state)
{
        check_norm("/", "/");
}

/* spec mothership §13 #357 */
static void test_normalize_workspace_selector(void **state)
{
        check_norm("workspace:**", "/workspace");
}

/* spec mothership §13 #358 */
static void test_normalize_dotdot_escapes_workspace(void **state)
{
        check_norm("/workspace/../etc/passwd", "/etc/passwd");
}

/* spec mothership §13 #359 */
static void test_normalize_double_dotdot(void **state)
{
        check_norm("/workspace/src/../../secret", "/secret");
}

/* spec mothership §13 #360 */
static void test_normalize_dot_segment(void **state)
{
        check_norm("/workspace/./src", "/workspace/src");
}

/* spec mothership §13 #361 */
static void test_normalize_dotdot_never_above_root(void **state)
{
        check_norm("/../../../", "/");
}

static void test_normalize_quirk_selector_path_kept_literal(void **state)
{
        /* §6.2 quirk: "workspace:/x" is not understood */
        check_norm("workspace:/x", "/workspace:/x");
        check_norm("", "/");
}

static void test_normalize_refuses_small_buffer(void **state)
{
        char out[6];
        assert_int_equal(mspol_fs_normalize("/workspace", out, sizeof(out)), -1);
        assert_string_equal(out, "");
        assert_int_equal(mspol_fs_normalize("/", out, 1), -1);
        assert_int_equal(mspol_fs_normalize(NULL, out, sizeof(out)), -1);
        /* fits exactly: "/abcd" + NUL */
        assert_int_equal(mspol_fs_normalize("abcd", out, sizeof(out)), 5);
}

static bool covered1(const char *target, const char *p1, const char *p2)
{
        json_t *l = p2 ? json_pack("[s,s]", p1, p2) : p1 ? json_pack("[s]", p1) : json_array();
        bool r = mspol_fs_covered(target, l);
        json_decref(l);
        return r;
}

/* spec mothership §13 #362 */
static void test_covered_dotdot_escape_refused(void **state)
{
        assert_false(covered1("/workspace/../etc/passwd", "/workspace", NULL));
}

/* spec mothership §13 #363 */
static void test_covered_double_dotdot_refused(void **state)
{
        assert_false(covered1("/workspace/../../etc/shadow", "/workspace", NULL));
}

/* spec mothership §13 #364 */
static void test_covered_equal(void **state)
{
        assert_true(covered1("/workspace", "/workspace", NULL));
}

/* spec mothership §13 #365 */
static void test_covered_below(void **state)
{
        assert_true(covered1("/workspace/src/main.rs", "/workspace", NULL));
}

/* spec mothership §13 #366 */
static void test_covered_outside(void **state)
{
        assert_false(covered1("/etc/passwd", "/workspace", NULL));
}

/* spec mothership §13 #367 */
static void test_covered_second_prefix(void **state)
{
        assert_true(covered1("/tmp/file", "/workspace", "/tmp"));
}

/* spec mothership §13 #368 */
static void test_covered_empty_list(void **state)
{
        assert_false(covered1("/workspace", NULL, NULL));
        assert_false(mspol_fs_covered("/workspace", NULL));
        json_t *notarr = json_string("/workspace");
        assert_false(mspol_fs_covered("/workspace", notarr));
        json_decref(notarr);
}

/* spec mothership §13 #369 */
static void test_covered_root_prefix(void **state)
{
        assert_true(covered1("/any/path", "/", NULL));
}

/* spec mothership §13 #370 */
static void test_covered_selector_prefix(void **state)
{
        assert_true(covered1("/workspace/file", "workspace:**", NULL));
}

static void test_covered_sibling_prefix_is_not_parent(void **state)
{
        assert_false(covered1("/workspace2/x", "/workspace", NULL));
}

static void test_covered_ignores_non_string_and_nul_entries(void **state)
{
        json_t *l = json_array();
        json_array_append_new(l, json_integer(1));
        json_array_append_new(l, json_stringn("/\0x", 3));
        assert_false(mspol_fs_covered("/x", l));
        json_decref(l);
}

static json_t *fsobj(const char *json)
{
        json_error_t e;
        json_t *v = json_loads(json, JSON_DECODE_ANY, &e);
        assert_non_null(v);
        return v;
}

static void check_intersect(const char *a, const char *b, const char *want)
{
        json_t *ja = a ? fsobj(a) : NULL, *jb = b ? fsobj(b) : NULL, *jw = fsobj(want);
        json_t *got = mspol_fs_intersect(ja, jb);
        assert_non_null(got);
        if (!json_equal(got, jw)) {
                char *g = json_dumps(got, JSON_COMPACT);
                fail_msg("intersect(%s, %s) = %s, want %s", a, b, g, want);
        }
        json_decref(ja);
        json_decref(jb);
        json_decref(jw);
        json_decref(got);
}

/* spec mothership §13 #371 */
static void test_intersect_same_selector(void **state)
{
        check_intersect("{\"read\":[\"workspace:**\"],\"write\":[\"workspace:**\"]}",
                        "{\"read\":[\"workspace:**\"],\"write\":[\"workspace:**\"]}",
                        "{\"read\":[\"workspace:**\"],\"write\":[\"workspace:**\"]}");
}

/* spec mothership §13 #372 */
static void test_intersect_disjoint(void **state)
{
        check_intersect("{\"read\":[\"/workspace\"],\"write\":[\"/workspace\"]}",
                        "{\"read\":[\"/home\"],\"write\":[\"/home\"]}",
                        "{\"read\":[],\"write\":[]}");
}

/* spec mothership §13 #373 */
static void test_intersect_with_empty(void **state)
{
        check_intersect("{\"read\":[\"/workspace\"],\"write\":[\"/workspace\"]}", "{}",
                        "{\"read\":[],\"write\":[]}");
}

/* spec mothership §13 #374 */
static void test_intersect_narrower_wins(void **state)
{
        check_intersect("{\"read\":[\"/workspace\"],\"write\":[\"/workspace\"]}",
                        "{\"read\":[\"/workspace/src\"],\"write\":[\"/workspace/src\"]}",
                        "{\"read\":[\"/workspace/src\"],\"write\":[\"/workspace/src\"]}");
}

/* spec mothership §13 #375 */
static void test_intersect_null(void **state)
{
        check_intersect(NULL, "{\"read\":[\"/workspace\"],\"write\":[]}",
                        "{\"read\":[],\"write\":[]}");
}

static void test_intersect_keeps_spelling_of_a_on_equal(void **state)
{
        check_intersect("{\"read\":[\"workspace:**\"]}", "{\"read\":[\"/workspace/\"]}",
                        "{\"read\":[\"workspace:**\"],\"write\":[]}");
}

static void test_intersect_bare_root_covers_nothing(void **state)
{
        /* §6.2 quirk: unlike covered(), "/" does not cover anything in intersect */
        check_intersect("{\"read\":[\"/\"]}", "{\"read\":[\"/etc\"]}",
                        "{\"read\":[],\"write\":[]}");
        check_intersect("{\"read\":[\"/\"]}", "{\"read\":[\"/\"]}",
                        "{\"read\":[\"/\"],\"write\":[]}");
}

static void test_intersect_removes_duplicates_in_order(void **state)
{
        check_intersect("{\"read\":[\"/a/x\",\"/a/y\",\"/a/x\"]}", "{\"read\":[\"/a\",\"/a/x\"]}",
                        "{\"read\":[\"/a/x\",\"/a/y\"],\"write\":[]}");
        /* descendant of A emitted from B */
        check_intersect("{\"read\":[\"/a\"]}", "{\"read\":[\"/a/q\",\"/b\",\"/a/r\"]}",
                        "{\"read\":[\"/a/q\",\"/a/r\"],\"write\":[]}");
}

static void test_intersect_dotdot_cannot_widen(void **state)
{
        check_intersect("{\"read\":[\"/workspace\"]}", "{\"read\":[\"/workspace/../etc\"]}",
                        "{\"read\":[],\"write\":[]}");
}

static void test_intersect_wrong_types_are_empty(void **state)
{
        check_intersect("{\"read\":\"/workspace\",\"write\":[1,null]}",
                        "{\"read\":[\"/workspace\"],\"write\":[\"/workspace\"]}",
                        "{\"read\":[],\"write\":[]}");
        check_intersect("[1]", "{\"read\":[\"/workspace\"]}", "{\"read\":[],\"write\":[]}");
}

static json_t *eval(const char *req, const char *pol)
{
        json_t *r = fsobj(req), *p = fsobj(pol);
        json_t *out = mspol_fs_evaluate(r, p);
        json_decref(r);
        json_decref(p);
        assert_non_null(out);
        return out;
}

/* spec mothership §13 #376 */
static void test_evaluate_within_policy_allowed(void **state)
{
        json_t *o = eval("{\"read\":[\"workspace:**\"],\"write\":[\"workspace:**\"]}",
                         "{\"read\":[\"workspace:**\"],\"write\":[\"workspace:**\"]}");
        assert_true(json_is_true(json_object_get(o, "allowed")));
        assert_int_equal(json_array_size(json_object_get(o, "violations")), 0);
        json_decref(o);
}

/* spec mothership §13 #377 */
static void test_evaluate_write_not_covered(void **state)
{
        json_t *o = eval("{\"write\":[\"workspace:**\"]}",
                         "{\"read\":[\"workspace:**\"],\"write\":[]}");
        assert_true(json_is_false(json_object_get(o, "allowed")));
        json_t *v = json_object_get(o, "violations");
        assert_int_equal(json_array_size(v), 1);
        assert_string_equal(json_string_value(json_array_get(v, 0)),
                            "write path workspace:** not covered by policy");
        json_decref(o);
}

/* spec mothership §13 #378 */
static void test_evaluate_empty_policy_denies(void **state)
{
        json_t *o = eval("{\"read\":[\"/workspace\"]}", "{}");
        assert_true(json_is_false(json_object_get(o, "allowed")));
        assert_string_equal(json_string_value(json_array_get(json_object_get(o, "violations"),
                                                             0)),
                            "read path /workspace not covered by policy");
        json_decref(o);
}

/* spec mothership §13 #379 */
static void test_evaluate_empty_request_allowed(void **state)
{
        json_t *o = eval("{}", "{}");
        assert_true(json_is_true(json_object_get(o, "allowed")));
        json_decref(o);
}

static void test_evaluate_non_string_entry_is_violation(void **state)
{
        json_t *o = eval("{\"read\":[5]}", "{\"read\":[\"/\"]}");
        assert_true(json_is_false(json_object_get(o, "allowed")));
        json_decref(o);
}

static void test_defaults_per_profile(void **state)
{
        /* spec mothership §11.1 */
        const char *ws[] = { "untrusted", "trusted", "darwin-automation" };
        for (size_t i = 0; i < 3; i++) {
                json_t *d = mspol_fs_defaults(ws[i]);
                json_t *w = fsobj("{\"read\":[\"workspace:**\"],\"write\":[\"workspace:**\"]}");
                assert_true(json_equal(d, w));
                json_decref(d);
                json_decref(w);
        }
        const char *empty[] = { "host", "spaceship", NULL };
        for (size_t i = 0; i < 3; i++) {
                json_t *d = mspol_fs_defaults(empty[i]);
                json_t *w = fsobj("{\"read\":[],\"write\":[]}");
                assert_true(json_equal(d, w));
                json_decref(d);
                json_decref(w);
        }
}

/* ---- §6.1 section validation ---- */

static int validate(const char *key, const char *json, char *why, size_t whysz)
{
        json_t *v = json ? fsobj(json) : NULL;
        int rc = mspol_validate_section(key, v, why, whysz);
        json_decref(v);
        return rc;
}

static void expect_invalid(const char *key, const char *json, const char *msg)
{
        char why[256];
        assert_int_equal(validate(key, json, why, sizeof(why)), -1);
        if (strcmp(why, msg) != 0)
                fail_msg("%s %s: got \"%s\", want \"%s\"", key, json, why, msg);
}

static void expect_valid(const char *key, const char *json)
{
        char why[256];
        if (validate(key, json, why, sizeof(why)) != 0)
                fail_msg("%s %s refused: %s", key, json, why);
}

static void test_validate_blank_sections_valid(void **state)
{
        const char *keys[] = { "fs", "net", "approval", "device", "secrets",
                               "sandbox_profile_rules" };
        for (size_t i = 0; i < 6; i++) {
                expect_valid(keys[i], NULL);
                expect_valid(keys[i], "null");
                expect_valid(keys[i], "{}");
        }
}

static void test_validate_unknown_section(void **state)
{
        expect_invalid("limits", "{}", "unknown policy section \"limits\"");
}

static void test_validate_section_not_object(void **state)
{
        expect_invalid("fs", "[]", "fs must be an object");
        expect_invalid("secrets", "\"x\"", "secrets must be an object");
}

static void test_validate_fs_unknown_keys(void **state)
{
        expect_invalid("fs", "{\"read\":[],\"foo\":1,\"bar\":2}",
                       "fs contains unknown keys: foo, bar");
}

static void test_validate_fs_lists(void **state)
{
        expect_valid("fs", "{\"read\":[\"/workspace\"],\"write\":[]}");
        expect_invalid("fs", "{\"read\":\"/x\"}", "fs.read must be an array of strings");
        expect_invalid("fs", "{\"write\":[1]}", "fs.write must be an array of strings");
}

static void test_validate_fs_at_most_100_entries(void **state)
{
        /* spec mothership §13 #S16 (101 fs.read entries → 422) */
        json_t *fs = json_object(), *arr = json_array();
        for (int i = 0; i < 101; i++)
                json_array_append_new(arr, json_string("/w"));
        json_object_set_new(fs, "read", arr);
        char why[128];
        assert_int_equal(mspol_validate_section("fs", fs, why, sizeof(why)), -1);
        assert_string_equal(why, "fs.read must have at most 100 entries");
        json_array_remove(arr, 0);
        assert_int_equal(mspol_validate_section("fs", fs, why, sizeof(why)), 0);
        json_decref(fs);
}

static void test_validate_fs_path_nul_and_length(void **state)
{
        json_t *fs = json_object(), *arr = json_array();
        json_array_append_new(arr, json_stringn("/a\0b", 4));
        json_object_set_new(fs, "read", arr);
        char why[128];
        assert_int_equal(mspol_validate_section("fs", fs, why, sizeof(why)), -1);
        assert_string_equal(why, "fs.read[0] must not contain NUL");
        json_array_clear(arr);
        char big[4098];
        memset(big, 'a', sizeof(big) - 1);
        big[0] = '/';
        big[sizeof(big) - 1] = '\0';
        json_array_append_new(arr, json_string(big));
        assert_int_equal(mspol_validate_section("fs", fs, why, sizeof(why)), -1);
        assert_string_equal(why, "fs.read[0] must be at most 4096 bytes");
        big[4096] = '\0';
        json_array_set_new(arr, 0, json_string(big));
        assert_int_equal(mspol_validate_section("fs", fs, why, sizeof(why)), 0);
        json_decref(fs);
}

static void test_validate_net_mode(void **state)
{
        expect_valid("net", "{\"mode\":\"none\"}");
        expect_valid("net", "{\"mode\":\"unrestricted\"}");
        expect_valid("net", "{\"mode\":\"allowlist\",\"allow\":[\"github.com:443\"]}");
        expect_invalid("net", "{\"mode\":\"open\"}",
                       "net.mode must be one of none, allowlist, unrestricted");
        expect_invalid("net", "{\"mode\":1}",
                       "net.mode must be one of none, allowlist, unrestricted");
}

static void test_validate_net_stricter_than_ref(void **state)
{
        /* REF stores these; we refuse them (NetCapabilityV1 + lib/proto allowlist grammar) */
        expect_invalid("net", "{\"mode\":\"allowlist\"}",
                       "net.allow: required when mode is \"allowlist\"");
        expect_invalid("net", "{\"mode\":\"allowlist\",\"allow\":[\"1.2.3.4:443\"]}",
                       "net.allow[0]: IP literal is not allowed in V1: \"1.2.3.4\"");
        expect_invalid("net", "{\"mode\":\"none\",\"allow\":[\"a.com:1\"]}",
                       "net.allow: must be absent when mode is \"none\"");
        expect_invalid("net", "{\"allow\":[\"a.com:1\"]}",
                       "net: missing required field \"mode\"");
        char why[256];
        assert_int_equal(validate("net", "{\"mode\":\"allowlist\",\"allow\":[\"a.com:70000\"]}",
                                  why, sizeof(why)), -1);
        assert_true(strncmp(why, "net.allow[0]: ", 14) == 0);
}

static void test_validate_approval_values(void **state)
{
        expect_valid("approval", "{\"host_profile\":\"needs_approval\",\"default\":\"skip\","
                                 "\"net_unrestricted\":\"forbidden\"}");
        expect_invalid("approval", "{\"host_profile\":\"maybe\"}",
                       "approval.host_profile must be one of skip, needs_approval, forbidden");
        expect_invalid("approval", "{\"host_profile\":1}",
                       "approval.host_profile must be one of skip, needs_approval, forbidden");
}

/* spec mothership §13 #260 */
static void test_validate_device_unknown_key(void **state)
{
        char why[256];
        assert_int_equal(validate("device", "{\"allowed\":[],\"bogus\":[]}", why, sizeof(why)),
                         -1);
        assert_non_null(strstr(why, "unknown keys"));
        assert_non_null(strstr(why, "bogus"));
}

/* spec mothership §13 #261 */
static void test_validate_device_allowed_string(void **state)
{
        char why[256];
        assert_int_equal(validate("device", "{\"allowed\":\"camera.*\"}", why, sizeof(why)), -1);
        assert_non_null(strstr(why, "must be an array"));
}

/* spec mothership §13 #262 */
static void test_validate_device_all_arrays_valid(void **state)
{
        expect_valid("device", "{\"allowed\":[\"camera.*\"],\"denied\":[\"sms.send\"],"
                               "\"approval_required\":[\"camera.snap\"]}");
}

static void test_validate_any_object_for_secrets_and_rules(void **state)
{
        expect_valid("secrets", "{\"allowed_refs\":[\"A\"],\"x\":{\"y\":1}}");
        expect_valid("sandbox_profile_rules", "{\"allow_host\":false}");
}

static void test_validate_null_why_buffer(void **state)
{
        json_t *v = fsobj("{\"foo\":1}");
        assert_int_equal(mspol_validate_section("fs", v, NULL, 0), -1);
        assert_int_equal(mspol_validate_section(NULL, v, NULL, 0), -1);
        json_decref(v);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_normalize_trailing_slash),
                cmocka_unit_test(test_normalize_prepends_slash),
                cmocka_unit_test(test_normalize_collapses_slashes),
                cmocka_unit_test(test_normalize_root),
                cmocka_unit_test(test_normalize_workspace_selector),
                cmocka_unit_test(test_normalize_dotdot_escapes_workspace),
                cmocka_unit_test(test_normalize_double_dotdot),
                cmocka_unit_test(test_normalize_dot_segment),
                cmocka_unit_test(test_normalize_dotdot_never_above_root),
                cmocka_unit_test(test_normalize_quirk_selector_path_kept_literal),
                cmocka_unit_test(test_normalize_refuses_small_buffer),
                cmocka_unit_test(test_covered_dotdot_escape_refused),
                cmocka_unit_test(test_covered_double_dotdot_refused),
                cmocka_unit_test(test_covered_equal),
                cmocka_unit_test(test_covered_below),
                cmocka_unit_test(test_covered_outside),
                cmocka_unit_test(test_covered_second_prefix),
                cmocka_unit_test(test_covered_empty_list),
                cmocka_unit_test(test_covered_root_prefix),
                cmocka_unit_test(test_covered_selector_prefix),
                cmocka_unit_test(test_covered_sibling_prefix_is_not_parent),
                cmocka_unit_test(test_covered_ignores_non_string_and_nul_entries),
                cmocka_unit_test(test_intersect_same_selector),
                cmocka_unit_test(test_intersect_disjoint),
                cmocka_unit_test(test_intersect_with_empty),
                cmocka_unit_test(test_intersect_narrower_wins),
                cmocka_unit_test(test_intersect_null),
                cmocka_unit_test(test_intersect_keeps_spelling_of_a_on_equal),
                cmocka_unit_test(test_intersect_bare_root_covers_nothing),
                cmocka_unit_test(test_intersect_removes_duplicates_in_order),
                cmocka_unit_test(test_intersect_dotdot_cannot_widen),
                cmocka_unit_test(test_intersect_wrong_types_are_empty),
                cmocka_unit_test(test_evaluate_within_policy_allowed),
                cmocka_unit_test(test_evaluate_write_not_covered),
                cmocka_unit_test(test_evaluate_empty_policy_denies),
                cmocka_unit_test(test_evaluate_empty_request_allowed),
                cmocka_unit_test(test_evaluate_non_string_entry_is_violation),
                cmocka_unit_test(test_defaults_per_profile),
                cmocka_unit_test(test_validate_blank_sections_valid),
                cmocka_unit_test(test_validate_unknown_section),
                cmocka_unit_test(test_validate_section_not_object),
                cmocka_unit_test(test_validate_fs_unknown_keys),
                cmocka_unit_test(test_validate_fs_lists),
                cmocka_unit_test(test_validate_fs_at_most_100_entries),
                cmocka_unit_test(test_validate_fs_path_nul_and_length),
                cmocka_unit_test(test_validate_net_mode),
                cmocka_unit_test(test_validate_net_stricter_than_ref),
                cmocka_unit_test(test_validate_approval_values),
                cmocka_unit_test(test_validate_device_unknown_key),
                cmocka_unit_test(test_validate_device_allowed_string),
                cmocka_unit_test(test_validate_device_all_arrays_valid),
                cmocka_unit_test(test_validate_any_object_for_secrets_and_rules),
                cmocka_unit_test(test_validate_null_why_buffer),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
