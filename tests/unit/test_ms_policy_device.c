/* tests/unit/test_ms_policy_device.c — policy/device: DevicePolicyV1 patterns, intersection,
 * merge and evaluation (spec mothership §6.4). */
#include "testutil.h"
#include "policy/policy.h"

#include <string.h>

static json_t *J(const char *s)
{
        json_error_t e;
        json_t *v = json_loads(s, JSON_DECODE_ANY, &e);
        assert_non_null(v);
        return v;
}

static bool matches(const char *cap, const char *patterns)
{
        json_t *p = patterns ? J(patterns) : NULL;
        bool r = mspol_dev_matches(cap, p);
        json_decref(p);
        return r;
}

/* spec mothership §13 #339 */
static void test_match_exact(void **state)
{
        assert_true(matches("camera.snap", "[\"camera.snap\"]"));
        assert_false(matches("camera.snap", "[\"camera.record\"]"));
}

/* spec mothership §13 #340 */
static void test_match_wildcard(void **state)
{
        assert_true(matches("camera.snap", "[\"camera.*\"]"));
        assert_true(matches("camera.record", "[\"camera.*\"]"));
        assert_false(matches("audio.record", "[\"camera.*\"]"));
}

/* spec mothership §13 #341 */
static void test_match_star(void **state)
{
        assert_true(matches("anything.at.all", "[\"*\"]"));
        assert_true(matches("x", "[\"*\"]"));
}

/* spec mothership §13 #342 */
static void test_match_empty_or_absent(void **state)
{
        assert_false(matches("camera.snap", "[]"));
        assert_false(matches("camera.snap", NULL));
        assert_false(matches("camera.snap", "\"camera.*\""));
}

static void test_match_wildcard_not_prefix_itself_but_any_depth(void **state)
{
        assert_false(matches("camera", "[\"camera.*\"]"));
        assert_true(matches("camera.x.y", "[\"camera.*\"]"));
        assert_false(matches("cameras.x", "[\"camera.*\"]"));
        assert_false(matches("camera.snap", "[\"camera*\"]"));  /* only ".*" is a wildcard */
        assert_false(matches(NULL, "[\"*\"]"));
}

static void test_covers(void **state)
{
        assert_true(mspol_dev_covers("*", "x"));
        assert_true(mspol_dev_covers("camera.*", "camera.snap"));
        assert_true(mspol_dev_covers("camera.*", "camera.*"));
        assert_true(mspol_dev_covers("camera.*", "camera.x.*"));
        assert_false(mspol_dev_covers("camera.snap", "camera.snap"));   /* not a wildcard */
        assert_false(mspol_dev_covers("camera.*", "audio.x"));
        assert_false(mspol_dev_covers("camera.*", "*"));
        assert_false(mspol_dev_covers(NULL, "x"));
}

static void check_intersect(const char *a, const char *b, const char *want)
{
        json_t *ja = J(a), *jb = J(b), *jw = J(want);
        json_t *got = mspol_dev_intersect(ja, jb);
        assert_non_null(got);
        if (!json_equal(got, jw))
                fail_msg("dev_intersect(%s, %s) = %s, want %s", a, b,
                         json_dumps(got, JSON_COMPACT), want);
        json_decref(ja);
        json_decref(jb);
        json_decref(jw);
        json_decref(got);
}

static void test_intersect_spec_examples(void **state)
{
        /* §6.4 examples */
        check_intersect("[\"camera.*\",\"location.get\"]", "[\"camera.snap\",\"audio.*\"]",
                        "[\"camera.snap\"]");
        check_intersect("[\"camera.*\",\"audio.*\"]", "[\"camera.snap\"]", "[\"camera.snap\"]");
}

static void test_intersect_order_and_duplicates(void **state)
{
        check_intersect("[\"b\",\"a\",\"x.*\",\"a\"]", "[\"a\",\"b\",\"x.1\",\"*\"]",
                        "[\"b\",\"a\",\"x.*\",\"x.1\"]");
        check_intersect("[\"a\"]", "[]", "[]");
        check_intersect("[1,\"a\"]", "[\"a\",null]", "[\"a\"]");
}

static ms_policy pol(const char *id, int64_t prio, const char *device)
{
        ms_policy p;
        memset(&p, 0, sizeof(p));
        snprintf(p.id, sizeof(p.id), "%s", id);
        p.priority = prio;
        p.device = device ? J(device) : NULL;
        return p;
}

static void pols_clear(ms_policy *ps, size_t n)
{
        for (size_t i = 0; i < n; i++)
                json_decref(ps[i].device);
}

static const char *eval(const char *cap, const ms_policy *ps, size_t n, const char **reason)
{
        json_t *m = mspol_dev_merge(ps, n);
        assert_non_null(m);
        const char *v = mspol_dev_evaluate(cap, m, reason);
        json_decref(m);
        return v;
}

/* spec mothership §13 #343 */
static void test_evaluate_allowed(void **state)
{
        ms_policy p = pol("p", 0, "{\"allowed\":[\"camera.*\",\"location.get\"]}");
        const char *reason = "x";
        assert_string_equal(eval("camera.snap", &p, 1, &reason), "allowed");
        assert_null(reason);
        pols_clear(&p, 1);
}

/* spec mothership §13 #344 */
static void test_evaluate_explicitly_denied(void **state)
{
        ms_policy p = pol("p", 0, "{\"allowed\":[\"camera.*\"],\"denied\":[\"camera.snap\"]}");
        const char *reason = NULL;
        assert_string_equal(eval("camera.snap", &p, 1, &reason), "denied");
        assert_string_equal(reason, "explicitly denied");
        pols_clear(&p, 1);
}

/* spec mothership §13 #345 */
static void test_evaluate_not_in_allowed(void **state)
{
        ms_policy p = pol("p", 0, "{\"allowed\":[\"camera.*\"]}");
        const char *reason = NULL;
        assert_string_equal(eval("sms.send", &p, 1, &reason), "denied");
        assert_string_equal(reason, "not in allowed list");
        pols_clear(&p, 1);
}

/* spec mothership §13 #346 */
static void test_evaluate_needs_approval(void **state)
{
        ms_policy p = pol("p", 0,
                          "{\"allowed\":[\"camera.*\"],\"approval_required\":[\"camera.record\"]}");
        const char *reason = NULL;
        assert_string_equal(eval("camera.record", &p, 1, &reason), "needs_approval");
        assert_string_equal(reason, "approval required");
        assert_string_equal(eval("camera.snap", &p, 1, &reason), "allowed");
        pols_clear(&p, 1);
}

/* spec mothership §13 #347 */
static void test_evaluate_two_policies_intersect(void **state)
{
        ms_policy ps[2] = { pol("a", 0, "{\"allowed\":[\"camera.*\",\"location.get\"]}"),
                            pol("b", 10, "{\"allowed\":[\"camera.snap\",\"audio.*\"]}") };
        assert_string_equal(eval("camera.snap", ps, 2, NULL), "allowed");
        assert_string_equal(eval("camera.record", ps, 2, NULL), "denied");
        assert_string_equal(eval("location.get", ps, 2, NULL), "denied");
        pols_clear(ps, 2);
}

/* spec mothership §13 #348 */
static void test_evaluate_denied_union(void **state)
{
        ms_policy ps[2] = { pol("a", 0, "{\"allowed\":[\"*\"],\"denied\":[\"sms.send\"]}"),
                            pol("b", 10, "{\"denied\":[\"camera.record\"]}") };
        const char *reason = NULL;
        assert_string_equal(eval("sms.send", ps, 2, &reason), "denied");
        assert_string_equal(reason, "explicitly denied");
        assert_string_equal(eval("camera.record", ps, 2, &reason), "denied");
        assert_string_equal(reason, "explicitly denied");
        assert_string_equal(eval("camera.snap", ps, 2, &reason), "allowed");
        pols_clear(ps, 2);
}

/* spec mothership §13 #349 */
static void test_evaluate_approval_union(void **state)
{
        ms_policy ps[2] = { pol("a", 0, "{\"allowed\":[\"*\"],\"approval_required\":[\"a.x\"]}"),
                            pol("b", 10, "{\"approval_required\":[\"b.y\"]}") };
        assert_string_equal(eval("a.x", ps, 2, NULL), "needs_approval");
        assert_string_equal(eval("b.y", ps, 2, NULL), "needs_approval");
        assert_string_equal(eval("c.z", ps, 2, NULL), "allowed");
        pols_clear(ps, 2);
}

/* spec mothership §13 #350 */
static void test_evaluate_empty_device_denies_all(void **state)
{
        ms_policy p = pol("p", 0, "{}");
        const char *reason = NULL;
        assert_string_equal(eval("camera.snap", &p, 1, &reason), "denied");
        assert_string_equal(reason, "not in allowed list");
        pols_clear(&p, 1);
        p = pol("p", 0, "{\"allowed\":[]}");    /* "allowed: []" is blank: no constraint... */
        assert_string_equal(eval("camera.snap", &p, 1, NULL), "denied"); /* ...so deny all */
        pols_clear(&p, 1);
}

/* spec mothership §13 #351 */
static void test_evaluate_stored_policy(void **state)
{
        ms_policy p = pol("p", 0, "{\"allowed\":[\"camera.*\",\"location.get\"],"
                                  "\"denied\":[\"camera.record\"]}");
        assert_string_equal(eval("camera.snap", &p, 1, NULL), "allowed");
        assert_string_equal(eval("camera.record", &p, 1, NULL), "denied");
        pols_clear(&p, 1);
}

/* spec mothership §13 #352 */
static void test_evaluate_stored_two_policies(void **state)
{
        ms_policy ps[2] = { pol("a", 0, "{\"allowed\":[\"camera.*\",\"audio.*\"]}"),
                            pol("b", 10, "{\"allowed\":[\"camera.snap\"],"
                                         "\"approval_required\":[\"camera.snap\"]}") };
        assert_string_equal(eval("camera.snap", ps, 2, NULL), "needs_approval");
        assert_string_equal(eval("audio.record", ps, 2, NULL), "denied");
        pols_clear(ps, 2);
}

static void test_merge_shape_and_blank_allowed_ignored(void **state)
{
        ms_policy ps[3] = { pol("a", 0, "{\"allowed\":[\"camera.*\"],\"denied\":[\"x\"]}"),
                            pol("b", 5, "{\"allowed\":[],\"denied\":[\"x\",\"y\"]}"),
                            pol("c", 9, "\"junk\"") };
        json_t *m = mspol_dev_merge(ps, 3);
        json_t *want = J("{\"allowed\":[\"camera.*\"],\"denied\":[\"x\",\"y\"],"
                         "\"approval_required\":[]}");
        assert_true(json_equal(m, want));
        json_decref(m);
        json_decref(want);
        m = mspol_dev_merge(NULL, 0);
        want = J("{\"allowed\":[],\"denied\":[],\"approval_required\":[]}");
        assert_true(json_equal(m, want));
        json_decref(m);
        json_decref(want);
        pols_clear(ps, 3);
}

static void test_evaluate_wrong_merged_type_denies(void **state)
{
        json_t *m = J("[1]");
        const char *reason = NULL;
        assert_string_equal(mspol_dev_evaluate("camera.snap", m, &reason), "denied");
        assert_string_equal(reason, "not in allowed list");
        assert_string_equal(mspol_dev_evaluate(NULL, NULL, &reason), "denied");
        json_decref(m);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_match_exact),
                cmocka_unit_test(test_match_wildcard),
                cmocka_unit_test(test_match_star),
                cmocka_unit_test(test_match_empty_or_absent),
                cmocka_unit_test(test_match_wildcard_not_prefix_itself_but_any_depth),
                cmocka_unit_test(test_covers),
                cmocka_unit_test(test_intersect_spec_examples),
                cmocka_unit_test(test_intersect_order_and_duplicates),
                cmocka_unit_test(test_evaluate_allowed),
                cmocka_unit_test(test_evaluate_explicitly_denied),
                cmocka_unit_test(test_evaluate_not_in_allowed),
                cmocka_unit_test(test_evaluate_needs_approval),
                cmocka_unit_test(test_evaluate_two_policies_intersect),
                cmocka_unit_test(test_evaluate_denied_union),
                cmocka_unit_test(test_evaluate_approval_union),
                cmocka_unit_test(test_evaluate_empty_device_denies_all),
                cmocka_unit_test(test_evaluate_stored_policy),
                cmocka_unit_test(test_evaluate_stored_two_policies),
                cmocka_unit_test(test_merge_shape_and_blank_allowed_ignored),
                cmocka_unit_test(test_evaluate_wrong_merged_type_denies),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
