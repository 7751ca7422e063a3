/* tests/unit/test_ms_policy_merge.c — policy/merge: the hierarchical merge (spec mothership
 * §6.5), the ApprovalEvaluator (§6.7) and the PolicyResolver (§6.6). Policies are built in
 * memory, already filtered and sorted as ms_policy_list_applicable() returns them (vectors
 * 257-258 about inactive / foreign policies belong to the store's filter). */
#include "testutil.h"
#include "policy/policy.h"

#include <string.h>

/* policy tables list only the leading sections they set; the rest are NULL ({}) on purpose */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

static json_t *J(const char *s)
{
        json_error_t e;
        json_t *v = json_loads(s, JSON_DECODE_ANY, &e);
        if (!v)
                fail_msg("bad test JSON %s: %s", s, e.text);
        return v;
}

static void assert_json(const json_t *got, const char *want)
{
        json_t *w = J(want);
        if (!json_equal(got, w)) {
                char *g = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
                fail_msg("got %s, want %s", g ? g : "NULL", want);
        }
        json_decref(w);
}

typedef struct pdef {
        const char *id;
        const char *fs, *net, *secrets, *spr, *approval, *device;
} pdef;

static void build(ms_policy *out, const pdef *d, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                memset(&out[i], 0, sizeof(out[i]));
                snprintf(out[i].id, sizeof(out[i].id), "%s", d[i].id);
                out[i].priority = (int64_t)i * 10;
                out[i].fs = d[i].fs ? J(d[i].fs) : json_object();
                out[i].net = d[i].net ? J(d[i].net) : json_object();
                out[i].secrets = d[i].secrets ? J(d[i].secrets) : json_object();
                out[i].sandbox_profile_rules = d[i].spr ? J(d[i].spr) : json_object();
                out[i].approval = d[i].approval ? J(d[i].approval) : json_object();
                out[i].device = d[i].device ? J(d[i].device) : json_object();
        }
}

static void unbuild(ms_policy *ps, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                json_decref(ps[i].fs);
                json_decref(ps[i].net);
                json_decref(ps[i].secrets);
                json_decref(ps[i].sandbox_profile_rules);
                json_decref(ps[i].approval);
                json_decref(ps[i].device);
        }
}

static json_t *merge_of(const pdef *d, size_t n)
{
        ms_policy ps[8];
        build(ps, d, n);
        json_t *m = mspol_merge(ps, n);
        unbuild(ps, n);
        assert_non_null(m);
        return m;
}

/* spec mothership §13 #250 */
static void test_merge_no_policies(void **state)
{
        json_t *m = mspol_merge(NULL, 0);
        assert_json(m, "{\"fs\":{},\"net\":{},\"secrets\":{},\"sandbox_profile_rules\":{},"
                       "\"approval\":{},\"device\":{},\"policy_ids\":[]}");
        json_decref(m);
}

/* spec mothership §13 #251 */
static void test_merge_one_global_policy(void **state)
{
        pdef d[] = { { "g", "{\"read\":[\"workspace:**\"],\"write\":[]}", "{\"mode\":\"none\"}",
                       NULL, NULL, "{\"host_profile\":\"forbidden\"}", NULL } };
        json_t *m = merge_of(d, 1);
        assert_json(json_object_get(m, "fs"), "{\"read\":[\"workspace:**\"],\"write\":[]}");
        assert_json(json_object_get(m, "net"), "{\"mode\":\"none\"}");
        assert_json(json_object_get(m, "approval"), "{\"host_profile\":\"forbidden\"}");
        assert_json(json_object_get(m, "policy_ids"), "[\"g\"]");
        json_decref(m);
}

/* spec mothership §13 #252 */
static void test_merge_account_policy_allowlist(void **state)
{
        pdef d[] = { { "acct", NULL, "{\"mode\":\"allowlist\",\"allow\":[\"github.com:443\"]}" } };
        json_t *m = merge_of(d, 1);
        assert_string_equal(json_string_value(json_object_get(json_object_get(m, "net"), "mode")),
                            "allowlist");
        json_decref(m);
}

/* spec mothership §13 #253 */
static void test_merge_fs_write_narrowed_to_empty(void **state)
{
        pdef d[] = { { "g", "{\"read\":[\"workspace:**\"],\"write\":[\"workspace:**\"]}" },
                     { "a", "{\"read\":[\"workspace:**\"],\"write\":[]}" } };
        json_t *m = merge_of(d, 2);
        assert_json(json_object_get(m, "fs"), "{\"read\":[\"workspace:**\"],\"write\":[]}");
        assert_json(json_object_get(m, "policy_ids"), "[\"g\",\"a\"]");
        json_decref(m);
}

/* spec mothership §13 #254 */
static void test_merge_net_lower_rank_replaces(void **state)
{
        pdef d[] = { { "g", NULL, "{\"mode\":\"unrestricted\"}" },
                     { "a", NULL, "{\"mode\":\"allowlist\",\"allow\":[\"github.com:443\"]}" } };
        json_t *m = merge_of(d, 2);
        assert_json(json_object_get(m, "net"),
                    "{\"mode\":\"allowlist\",\"allow\":[\"github.com:443\"]}");
        json_decref(m);
}

static void test_merge_net_higher_rank_ignored_and_equal_intersects(void **state)
{
        pdef d[] = { { "g", NULL, "{\"mode\":\"allowlist\",\"allow\":[\"a.com:1\",\"b.com:2\"]}" },
                     { "a", NULL, "{\"mode\":\"unrestricted\"}" },
                     { "u", NULL, "{\"mode\":\"allowlist\",\"allow\":[\"b.com:2\",\"c.com:3\"]}" } };
        json_t *m = merge_of(d, 3);
        assert_json(json_object_get(m, "net"), "{\"mode\":\"allowlist\",\"allow\":[\"b.com:2\"]}");
        json_decref(m);
}

/* spec mothership §13 #255 */
static void test_merge_secrets_last_wins(void **state)
{
        pdef d[] = { { "g", NULL, NULL, "{\"allowed_refs\":[\"SECRET_A\"]}" },
                     { "x", NULL, NULL, NULL },
                     { "f", NULL, NULL, "{\"allowed_refs\":[\"SECRET_C\"]}" } };
        json_t *m = merge_of(d, 3);
        assert_json(json_object_get(m, "secrets"), "{\"allowed_refs\":[\"SECRET_C\"]}");
        json_decref(m);
}

/* spec mothership §13 #256 */
static void test_merge_approval_most_restrictive_per_key(void **state)
{
        pdef d[] = { { "g", NULL, NULL, NULL, NULL,
                       "{\"host_profile\":\"needs_approval\",\"net_unrestricted\":\"skip\"}" },
                     { "a", NULL, NULL, NULL, NULL,
                       "{\"host_profile\":\"skip\",\"net_unrestricted\":\"forbidden\","
                       "\"default\":\"skip\"}" } };
        json_t *m = merge_of(d, 2);
        assert_json(json_object_get(m, "approval"),
                    "{\"host_profile\":\"needs_approval\",\"net_unrestricted\":\"forbidden\","
                    "\"default\":\"skip\"}");
        json_decref(m);
}

/* spec mothership §13 #259 */
static void test_merge_sandbox_profile_rules(void **state)
{
        pdef d[] = { { "g" }, { "f", NULL, NULL, NULL, "{\"allow_host\":false}" } };
        json_t *m = merge_of(d, 2);
        assert_json(json_object_get(m, "sandbox_profile_rules"), "{\"allow_host\":false}");
        json_decref(m);
}

/* spec mothership §13 #263 */
static void test_merge_device_dimension(void **state)
{
        pdef d[] = { { "g", NULL, NULL, NULL, NULL, NULL,
                       "{\"allowed\":[\"camera.*\",\"audio.*\"],\"denied\":[\"sms.send\"]}" },
                     { "a", NULL, NULL, NULL, NULL, NULL,
                       "{\"allowed\":[\"camera.snap\"],\"approval_required\":[\"camera.snap\"]}" } };
        json_t *m = merge_of(d, 2);
        json_t *dev = json_object_get(m, "device");
        assert_true(mspol_dev_matches("camera.snap", json_object_get(dev, "allowed")));
        assert_false(mspol_dev_matches("audio.record", json_object_get(dev, "allowed")));
        assert_true(mspol_dev_matches("sms.send", json_object_get(dev, "denied")));
        assert_true(mspol_dev_matches("camera.snap", json_object_get(dev, "approval_required")));
        json_decref(m);
}

/* Stricter than REF: once the allowed lists' intersection is empty, a later policy's list does
 * not replace it (REF's "taken if the current has none" would widen past p0/p1). */
static void test_merge_device_empty_intersection_not_widened(void **state)
{
        pdef d[] = { { "g", NULL, NULL, NULL, NULL, NULL, "{\"allowed\":[\"camera.snap\"]}" },
                     { "a", NULL, NULL, NULL, NULL, NULL, "{\"allowed\":[\"audio.*\"]}" },
                     { "u", NULL, NULL, NULL, NULL, NULL, "{\"allowed\":[\"*\"]}" } };
        json_t *m = merge_of(d, 3);
        assert_json(json_object_get(json_object_get(m, "device"), "allowed"), "[]");
        json_decref(m);
        /* a blank first list does not count as set */
        pdef e[] = { { "g", NULL, NULL, NULL, NULL, NULL, "{\"allowed\":[],\"denied\":[\"x\"]}" },
                     { "a", NULL, NULL, NULL, NULL, NULL, "{\"allowed\":[\"audio.*\"]}" } };
        m = merge_of(e, 2);
        assert_json(json_object_get(m, "device"), "{\"allowed\":[\"audio.*\"],\"denied\":[\"x\"]}");
        json_decref(m);
}

/* spec mothership §13 #264 */
static void test_merge_no_device_sections(void **state)
{
        pdef d[] = { { "g", "{\"read\":[]}" }, { "a" } };
        json_t *m = merge_of(d, 2);
        assert_json(json_object_get(m, "device"), "{}");
        json_decref(m);
}

static void test_merge_non_object_sections_are_blank(void **state)
{
        pdef d[] = { { "g", "[1]", "\"x\"", "5", "true", "[]", "null" } };
        json_t *m = merge_of(d, 1);
        assert_json(m, "{\"fs\":{},\"net\":{},\"secrets\":{},\"sandbox_profile_rules\":{},"
                       "\"approval\":{},\"device\":{},\"policy_ids\":[\"g\"]}");
        json_decref(m);
}

/* ---- §6.7 ApprovalEvaluator ---- */

static const char *approve(const char *effective, const char *rules, const char *profile,
                           json_t **reasons)
{
        json_t *e = J(effective), *r = J(rules);
        *reasons = json_array();
        const char *v = mspol_approval_evaluate(e, r, profile, *reasons);
        json_decref(e);
        json_decref(r);
        return v;
}

static bool reasons_mention(const json_t *reasons, const char *word)
{
        size_t i;
        json_t *e;
        json_array_foreach(reasons, i, e)
                if (strstr(json_string_value(e), word))
                        return true;
        return false;
}

/* spec mothership §13 #301 */
static void test_approval_empty_rules_skip(void **state)
{
        json_t *r;
        assert_string_equal(approve("{}", "{}", "host", &r), "skip");
        assert_int_equal(json_array_size(r), 0);
        json_decref(r);
}

/* spec mothership §13 #302 */
static void test_approval_default_key_has_no_effect(void **state)
{
        json_t *r;
        assert_string_equal(approve("{}", "{\"default\":\"skip\"}", "host", &r), "skip");
        json_decref(r);
        assert_string_equal(approve("{}", "{\"default\":\"forbidden\"}", "host", &r), "skip");
        json_decref(r);
}

/* spec mothership §13 #303 */
static void test_approval_host_profile_fires(void **state)
{
        json_t *r;
        assert_string_equal(approve("{}", "{\"host_profile\":\"needs_approval\"}", "host", &r),
                            "needs_approval");
        assert_true(reasons_mention(r, "host"));
        assert_string_equal(json_string_value(json_array_get(r, 0)),
                            "host profile requires: needs_approval");
        json_decref(r);
}

/* spec mothership §13 #304 */
static void test_approval_host_rule_untrusted_profile(void **state)
{
        json_t *r;
        assert_string_equal(approve("{}", "{\"host_profile\":\"needs_approval\"}", "untrusted",
                                    &r), "skip");
        assert_int_equal(json_array_size(r), 0);
        json_decref(r);
}

/* spec mothership §13 #305 */
static void test_approval_net_unrestricted_forbidden(void **state)
{
        json_t *r;
        assert_string_equal(approve("{\"net\":{\"mode\":\"unrestricted\"}}",
                                    "{\"net_unrestricted\":\"forbidden\"}", "trusted", &r),
                            "forbidden");
        assert_true(reasons_mention(r, "net"));
        assert_string_equal(json_string_value(json_array_get(r, 0)),
                            "unrestricted network requires: forbidden");
        json_decref(r);
}

/* spec mothership §13 #306 */
static void test_approval_net_rule_allowlist_mode(void **state)
{
        json_t *r;
        assert_string_equal(approve("{\"net\":{\"mode\":\"allowlist\",\"allow\":[\"a.com:1\"]}}",
                                    "{\"net_unrestricted\":\"forbidden\"}", "trusted", &r),
                            "skip");
        json_decref(r);
}

/* spec mothership §13 #307 */
static void test_approval_both_fire_most_restrictive(void **state)
{
        json_t *r;
        assert_string_equal(approve("{\"net\":{\"mode\":\"unrestricted\"}}",
                                    "{\"host_profile\":\"needs_approval\","
                                    "\"net_unrestricted\":\"forbidden\"}", "host", &r),
                            "forbidden");
        assert_true(json_array_size(r) >= 2);
        /* table order */
        assert_string_equal(json_string_value(json_array_get(r, 0)),
                            "host profile requires: needs_approval");
        json_decref(r);
}

/* spec mothership §13 #308 */
static void test_approval_skip_rule_does_not_lower(void **state)
{
        json_t *r;
        assert_string_equal(approve("{\"net\":{\"mode\":\"unrestricted\"}}",
                                    "{\"host_profile\":\"needs_approval\","
                                    "\"net_unrestricted\":\"skip\"}", "host", &r),
                            "needs_approval");
        assert_int_equal(json_array_size(r), 1);        /* skip-verdict checks give no reason */
        json_decref(r);
}

/* spec mothership §13 #309 */
static void test_approval_fs_outside_workspace(void **state)
{
        json_t *r;
        assert_string_equal(approve("{\"fs\":{\"write\":[\"/workspace\",\"/tmp\"]}}",
                                    "{\"fs_outside_workspace\":\"needs_approval\"}", "trusted",
                                    &r), "needs_approval");
        assert_string_equal(json_string_value(json_array_get(r, 0)),
                            "filesystem access outside workspace requires: needs_approval");
        json_decref(r);
}

/* spec mothership §13 #310 */
static void test_approval_fs_inside_workspace(void **state)
{
        json_t *r;
        assert_string_equal(approve("{\"fs\":{\"write\":[\"workspace:**\"]}}",
                                    "{\"fs_outside_workspace\":\"needs_approval\"}", "trusted",
                                    &r), "skip");
        json_decref(r);
        assert_string_equal(approve("{\"fs\":{\"write\":[\"/workspace/a/../b\"]}}",
                                    "{\"fs_outside_workspace\":\"forbidden\"}", "trusted", &r),
                            "skip");
        json_decref(r);
        /* ".." escaping the workspace fires */
        assert_string_equal(approve("{\"fs\":{\"write\":[\"/workspace/../etc\"]}}",
                                    "{\"fs_outside_workspace\":\"forbidden\"}", "trusted", &r),
                            "forbidden");
        json_decref(r);
        /* "/workspace2" is not under "/workspace" */
        assert_string_equal(approve("{\"fs\":{\"write\":[\"/workspace2\"]}}",
                                    "{\"fs_outside_workspace\":\"forbidden\"}", "trusted", &r),
                            "forbidden");
        json_decref(r);
}

static void test_approval_wrong_types(void **state)
{
        json_t *reasons = json_array();
        assert_string_equal(mspol_approval_evaluate(NULL, NULL, NULL, reasons), "skip");
        json_t *rules = J("{\"host_profile\":\"forbidden\"}");
        assert_string_equal(mspol_approval_evaluate(NULL, rules, "host", NULL), "forbidden");
        json_t *eff = J("{\"fs\":{\"write\":[3]}}");
        json_t *r2 = J("{\"fs_outside_workspace\":\"needs_approval\"}");
        assert_string_equal(mspol_approval_evaluate(eff, r2, "trusted", reasons),
                            "needs_approval");  /* fail closed on a non-path entry */
        json_decref(rules);
        json_decref(r2);
        json_decref(eff);
        json_decref(reasons);
}

/* ---- §6.6 PolicyResolver ---- */

#define NOW_MS 1772202622123LL  /* 2026-02-27T14:30:22.123Z */

static void resolve(const pdef *d, size_t n, const char *profile, const char *requested,
                    mspol_resolution *r)
{
        ms_policy ps[8];
        build(ps, d, n);
        json_t *req = requested ? J(requested) : NULL;
        err_t err = ERR_INIT;
        assert_int_equal(mspol_resolve(ps, n, profile, req, NOW_MS, r, &err), 0);
        json_decref(req);
        unbuild(ps, n);
}

static void test_resolve_no_policies_untrusted(void **state)
{
        /* §6.6 last paragraph; spec mothership §13.6 #86 */
        mspol_resolution r;
        resolve(NULL, 0, "untrusted", NULL, &r);
        assert_json(r.effective, "{\"fs\":{\"read\":[\"workspace:**\"],\"write\":"
                                 "[\"workspace:**\"]},\"net\":{},\"secrets\":{},"
                                 "\"sandbox_profile_rules\":{}}");
        assert_string_equal(r.verdict, "skip");
        assert_json(r.reasons, "[]");
        assert_json(r.policies_applied, "[]");
        assert_json(r.snapshot, "{\"policies_applied\":[],\"resolved_at\":"
                                "\"2026-02-27T14:30:22Z\",\"fs\":{},\"net\":{},\"secrets\":{},"
                                "\"sandbox_profile_rules\":{},\"approval\":{}}");
        mspol_resolution_clear(&r);
        assert_null(r.effective);
        mspol_resolution_clear(&r);     /* twice is fine */
}

static void test_resolve_host_defaults_empty(void **state)
{
        mspol_resolution r;
        resolve(NULL, 0, "host", "{\"fs\":{\"read\":[\"workspace:**\"]}}", &r);
        assert_json(json_object_get(r.effective, "fs"), "{\"read\":[],\"write\":[]}");
        mspol_resolution_clear(&r);
        resolve(NULL, 0, "no-such-profile", NULL, &r);
        assert_json(json_object_get(r.effective, "fs"), "{\"read\":[],\"write\":[]}");
        mspol_resolution_clear(&r);
}

static void test_resolve_request_narrows_defaults(void **state)
{
        mspol_resolution r;
        resolve(NULL, 0, "trusted", "{\"fs\":{\"read\":[\"/workspace/src\"],\"write\":[]}}", &r);
        assert_json(json_object_get(r.effective, "fs"),
                    "{\"read\":[\"/workspace/src\"],\"write\":[]}");
        mspol_resolution_clear(&r);
}

/* spec mothership §13.6 #90 */
static void test_resolve_policy_fs_intersection(void **state)
{
        pdef d[] = { { "p", "{\"read\":[\"/workspace/src\"],\"write\":[]}" } };
        mspol_resolution r;
        resolve(d, 1, "trusted", "{\"fs\":{\"read\":[\"/workspace\"],\"write\":[\"/workspace\"]}}",
                &r);
        assert_json(json_object_get(r.effective, "fs"),
                    "{\"read\":[\"/workspace/src\"],\"write\":[]}");
        mspol_resolution_clear(&r);
}

/* spec mothership §13.6 #89 */
static void test_resolve_policy_net_none_caps_request(void **state)
{
        pdef d[] = { { "p", NULL, "{\"mode\":\"none\"}" } };
        mspol_resolution r;
        resolve(d, 1, "trusted", "{\"net\":{\"mode\":\"unrestricted\"}}", &r);
        assert_json(json_object_get(r.effective, "net"), "{\"mode\":\"none\"}");
        mspol_resolution_clear(&r);
}

static void test_resolve_requested_allowlist_narrowed(void **state)
{
        pdef d[] = { { "p", NULL, "{\"mode\":\"allowlist\",\"allow\":[\"github.com:443\"]}" } };
        mspol_resolution r;
        resolve(d, 1, "trusted", "{\"net\":{\"mode\":\"allowlist\",\"allow\":"
                                 "[\"github.com:443\",\"evil.com:443\"]},\"network\":true}", &r);
        assert_json(json_object_get(r.effective, "net"),
                    "{\"mode\":\"allowlist\",\"allow\":[\"github.com:443\"]}");
        mspol_resolution_clear(&r);
}

/* spec mothership §13.6 #88 (approval) */
static void test_resolve_host_needs_approval(void **state)
{
        pdef d[] = { { "p", NULL, NULL, NULL, NULL, "{\"host_profile\":\"needs_approval\"}" } };
        mspol_resolution r;
        resolve(d, 1, "host", NULL, &r);
        assert_string_equal(r.verdict, "needs_approval");
        assert_json(r.reasons, "[\"host profile requires: needs_approval\"]");
        assert_json(r.policies_applied, "[\"p\"]");
        assert_json(json_object_get(r.snapshot, "approval"), "{\"host_profile\":\"needs_approval\"}");
        mspol_resolution_clear(&r);
}

static void test_resolve_net_unrestricted_forbidden(void **state)
{
        pdef d[] = { { "p", NULL, "{\"mode\":\"unrestricted\"}", NULL, NULL,
                       "{\"net_unrestricted\":\"forbidden\"}" } };
        mspol_resolution r;
        resolve(d, 1, "trusted", NULL, &r);
        assert_string_equal(r.verdict, "forbidden");
        mspol_resolution_clear(&r);
        /* the request narrowing to an allowlist avoids the rule */
        resolve(d, 1, "trusted", "{\"net\":{\"mode\":\"allowlist\",\"allow\":[\"a.com:1\"]}}", &r);
        assert_string_equal(r.verdict, "skip");
        mspol_resolution_clear(&r);
}

static void test_resolve_snapshot_holds_merged_sections(void **state)
{
        pdef d[] = { { "g", "{\"read\":[\"/w\"],\"write\":[]}", "{\"mode\":\"none\"}",
                       "{\"s\":1}", "{\"r\":2}", "{\"default\":\"skip\"}" },
                     { "f" } };
        mspol_resolution r;
        resolve(d, 2, "trusted", NULL, &r);
        assert_json(r.snapshot, "{\"policies_applied\":[\"g\",\"f\"],\"resolved_at\":"
                                "\"2026-02-27T14:30:22Z\",\"fs\":{\"read\":[\"/w\"],\"write\":[]},"
                                "\"net\":{\"mode\":\"none\"},\"secrets\":{\"s\":1},"
                                "\"sandbox_profile_rules\":{\"r\":2},"
                                "\"approval\":{\"default\":\"skip\"}}");
        assert_json(json_object_get(r.effective, "secrets"), "{\"s\":1}");
        assert_json(json_object_get(r.effective, "sandbox_profile_rules"), "{\"r\":2}");
        mspol_resolution_clear(&r);
}

static void test_resolve_requested_not_object(void **state)
{
        mspol_resolution r;
        resolve(NULL, 0, "trusted", "[1,2]", &r);
        assert_json(json_object_get(r.effective, "fs"),
                    "{\"read\":[\"workspace:**\"],\"write\":[\"workspace:**\"]}");
        mspol_resolution_clear(&r);
}

/* issue #4 item 2: requested writable_roots / read_only_subpaths only narrow */
static void test_resolve_roots_kept_only_where_effective_fs_allows(void **state)
{
        mspol_resolution r;
        resolve(NULL, 0, "untrusted",
                "{\"fs\":{\"read\":[\"workspace:**\"],\"write\":[\"workspace:**\"],"
                "\"writable_roots\":[\"/workspace/src\",\"/etc\",\"/workspace2\"],"
                "\"read_only_subpaths\":[\"/workspace/.git\",\"/root/.ssh\"]}}", &r);
        assert_json(json_object_get(r.effective, "fs"),
                    "{\"read\":[\"workspace:**\"],\"write\":[\"workspace:**\"],"
                    "\"writable_roots\":[\"/workspace/src\"],"
                    "\"read_only_subpaths\":[\"/workspace/.git\"]}");
        mspol_resolution_clear(&r);
}

static void test_resolve_roots_need_the_write_list(void **state)
{
        /* a policy that allows reading only: no writable root survives, a read-only one does */
        pdef d[] = { { "g", "{\"read\":[\"/workspace\"],\"write\":[]}" } };
        mspol_resolution r;
        resolve(d, 1, "untrusted",
                "{\"fs\":{\"read\":[\"/workspace\"],\"write\":[\"/workspace\"],"
                "\"writable_roots\":[\"/workspace/src\"],"
                "\"read_only_subpaths\":[\"/workspace/docs\"]}}", &r);
        const json_t *fs = json_object_get(r.effective, "fs");
        assert_null(json_object_get(fs, "writable_roots"));
        assert_json(json_object_get(fs, "read_only_subpaths"), "[\"/workspace/docs\"]");
        mspol_resolution_clear(&r);
}

static void test_resolve_time_out_of_range_fails_cleanly(void **state)
{
        mspol_resolution r;
        err_t err = ERR_INIT;
        assert_int_equal(mspol_resolve(NULL, 0, "trusted", NULL, INT64_MAX, &r, &err), -1);
        assert_non_null(err.code);
        assert_null(r.effective);
        assert_null(r.snapshot);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_merge_no_policies),
                cmocka_unit_test(test_merge_one_global_policy),
                cmocka_unit_test(test_merge_account_policy_allowlist),
                cmocka_unit_test(test_merge_fs_write_narrowed_to_empty),
                cmocka_unit_test(test_merge_net_lower_rank_replaces),
                cmocka_unit_test(test_merge_net_higher_rank_ignored_and_equal_intersects),
                cmocka_unit_test(test_merge_secrets_last_wins),
                cmocka_unit_test(test_merge_approval_most_restrictive_per_key),
                cmocka_unit_test(test_merge_sandbox_profile_rules),
                cmocka_unit_test(test_merge_device_dimension),
                cmocka_unit_test(test_merge_device_empty_intersection_not_widened),
                cmocka_unit_test(test_merge_no_device_sections),
                cmocka_unit_test(test_merge_non_object_sections_are_blank),
                cmocka_unit_test(test_approval_empty_rules_skip),
                cmocka_unit_test(test_approval_default_key_has_no_effect),
                cmocka_unit_test(test_approval_host_profile_fires),
                cmocka_unit_test(test_approval_host_rule_untrusted_profile),
                cmocka_unit_test(test_approval_net_unrestricted_forbidden),
                cmocka_unit_test(test_approval_net_rule_allowlist_mode),
                cmocka_unit_test(test_approval_both_fire_most_restrictive),
                cmocka_unit_test(test_approval_skip_rule_does_not_lower),
                cmocka_unit_test(test_approval_fs_outside_workspace),
                cmocka_unit_test(test_approval_fs_inside_workspace),
                cmocka_unit_test(test_approval_wrong_types),
                cmocka_unit_test(test_resolve_no_policies_untrusted),
                cmocka_unit_test(test_resolve_host_defaults_empty),
                cmocka_unit_test(test_resolve_request_narrows_defaults),
                cmocka_unit_test(test_resolve_policy_fs_intersection),
                cmocka_unit_test(test_resolve_policy_net_none_caps_request),
                cmocka_unit_test(test_resolve_requested_allowlist_narrowed),
                cmocka_unit_test(test_resolve_host_needs_approval),
                cmocka_unit_test(test_resolve_net_unrestricted_forbidden),
                cmocka_unit_test(test_resolve_snapshot_holds_merged_sections),
                cmocka_unit_test(test_resolve_requested_not_object),
                cmocka_unit_test(test_resolve_roots_kept_only_where_effective_fs_allows),
                cmocka_unit_test(test_resolve_roots_need_the_write_list),
                cmocka_unit_test(test_resolve_time_out_of_range_fails_cleanly),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
