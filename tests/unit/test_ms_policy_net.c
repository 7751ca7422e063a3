/* tests/unit/test_ms_policy_net.c — policy/net: net ranks and the effective net capability
 * (spec mothership §6.3, §6.6 step 5; issue #4 item 3: a requested allowlist is narrowed by the
 * policy's, never allowed to replace or widen it — stricter than REF). */
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

static void check_effective(const char *policy, const char *requested, const char *want)
{
        json_t *p = policy ? J(policy) : NULL, *r = requested ? J(requested) : NULL, *w = J(want);
        json_t *got = mspol_net_effective(p, r);
        assert_non_null(got);
        if (!json_equal(got, w)) {
                char *g = json_dumps(got, JSON_COMPACT);
                fail_msg("effective(%s, %s) = %s, want %s", policy, requested, g, want);
        }
        json_decref(p);
        json_decref(r);
        json_decref(w);
        json_decref(got);
}

static void test_rank_values(void **state)
{
        json_t *v;
        assert_int_equal(mspol_net_rank(v = J("{\"mode\":\"none\"}")), 0);
        json_decref(v);
        assert_int_equal(mspol_net_rank(v = J("{\"mode\":\"allowlist\"}")), 1);
        json_decref(v);
        assert_int_equal(mspol_net_rank(v = J("{\"mode\":\"unrestricted\"}")), 2);
        json_decref(v);
        /* §6.5: missing or unknown mode ranks 2 */
        assert_int_equal(mspol_net_rank(v = J("{\"allow\":[]}")), 2);
        json_decref(v);
        assert_int_equal(mspol_net_rank(v = J("{\"mode\":\"NONE\"}")), 2);
        json_decref(v);
        assert_int_equal(mspol_net_rank(NULL), 2);
}

static void test_both_blank_gives_empty_object(void **state)
{
        check_effective(NULL, NULL, "{}");
        check_effective("{}", "null", "{}");
        check_effective("\"x\"", "[]", "{}");      /* wrong types are blank */
}

static void test_policy_blank_takes_request(void **state)
{
        check_effective("{}", "{\"mode\":\"unrestricted\"}", "{\"mode\":\"unrestricted\"}");
}

static void test_request_blank_takes_policy(void **state)
{
        check_effective("{\"mode\":\"allowlist\",\"allow\":[\"github.com:443\"]}", "{}",
                        "{\"mode\":\"allowlist\",\"allow\":[\"github.com:443\"]}");
}

/* spec mothership §13.6 #89: a net "none" policy caps an unrestricted request */
static void test_wider_request_gets_policy(void **state)
{
        check_effective("{\"mode\":\"none\"}", "{\"mode\":\"unrestricted\"}", "{\"mode\":\"none\"}");
        check_effective("{\"mode\":\"allowlist\",\"allow\":[\"a.com:443\"]}",
                        "{\"mode\":\"unrestricted\"}",
                        "{\"mode\":\"allowlist\",\"allow\":[\"a.com:443\"]}");
}

static void test_narrower_request_kept(void **state)
{
        check_effective("{\"mode\":\"unrestricted\"}",
                        "{\"mode\":\"allowlist\",\"allow\":[\"x.org:80\"]}",
                        "{\"mode\":\"allowlist\",\"allow\":[\"x.org:80\"]}");
        check_effective("{\"mode\":\"allowlist\",\"allow\":[\"a.com:443\"]}",
                        "{\"mode\":\"none\"}", "{\"mode\":\"none\"}");
}

static void test_allowlist_request_cannot_replace_policy_list(void **state)
{
        /* REF quirk (§6.6 step 5) would return the request as is */
        check_effective("{\"mode\":\"allowlist\",\"allow\":[\"github.com:443\"]}",
                        "{\"mode\":\"allowlist\",\"allow\":[\"evil.com:443\",\"github.com:443\"]}",
                        "{\"mode\":\"allowlist\",\"allow\":[\"github.com:443\"]}");
}

static void test_allowlist_disjoint_becomes_none(void **state)
{
        /* an allowlist with no entries is forbidden by NetCapabilityV1 */
        check_effective("{\"mode\":\"allowlist\",\"allow\":[\"github.com:443\"]}",
                        "{\"mode\":\"allowlist\",\"allow\":[\"evil.com:443\"]}",
                        "{\"mode\":\"none\"}");
}

static void test_allowlist_port_must_match(void **state)
{
        check_effective("{\"mode\":\"allowlist\",\"allow\":[\"github.com:443\"]}",
                        "{\"mode\":\"allowlist\",\"allow\":[\"github.com:22\"]}",
                        "{\"mode\":\"none\"}");
}

static void test_allowlist_policy_wildcard_covers_subdomains(void **state)
{
        check_effective("{\"mode\":\"allowlist\",\"allow\":[\"*.github.com:443\"]}",
                        "{\"mode\":\"allowlist\",\"allow\":[\"api.github.com:443\","
                        "\"github.com:443\",\"*.x.github.com:443\",\"*.github.com:443\"]}",
                        "{\"mode\":\"allowlist\",\"allow\":[\"api.github.com:443\","
                        "\"*.x.github.com:443\",\"*.github.com:443\"]}");
}

static void test_allowlist_exact_policy_does_not_cover_wildcard(void **state)
{
        check_effective("{\"mode\":\"allowlist\",\"allow\":[\"github.com:443\"]}",
                        "{\"mode\":\"allowlist\",\"allow\":[\"*.github.com:443\"]}",
                        "{\"mode\":\"none\"}");
}

static void test_allowlist_canonical_and_unique(void **state)
{
        check_effective("{\"mode\":\"allowlist\",\"allow\":[\"GitHub.com.:443\"]}",
                        "{\"mode\":\"allowlist\",\"allow\":[\" github.COM:443 \","
                        "\"github.com:443\",\"bad entry\",5]}",
                        "{\"mode\":\"allowlist\",\"allow\":[\"github.com:443\"]}");
}

static void test_allowlist_copies_preset_ttl_ext_from_request(void **state)
{
        check_effective("{\"mode\":\"allowlist\",\"allow\":[\"a.com:1\"],\"preset\":\"strict\"}",
                        "{\"mode\":\"allowlist\",\"allow\":[\"a.com:1\"],\"preset\":\"custom\","
                        "\"ttl_seconds\":60,\"x_ext\":{\"x_a\":1},\"junk\":1}",
                        "{\"mode\":\"allowlist\",\"allow\":[\"a.com:1\"],\"preset\":\"custom\","
                        "\"ttl_seconds\":60,\"x_ext\":{\"x_a\":1}}");
}

static void test_empty_policy_allowlist_becomes_none(void **state)
{
        check_effective("{\"mode\":\"allowlist\",\"allow\":[]}", "{}", "{\"mode\":\"none\"}");
        check_effective("{\"mode\":\"allowlist\"}", NULL, "{\"mode\":\"none\"}");
}

static void test_invalid_policy_entries_cover_nothing(void **state)
{
        check_effective("{\"mode\":\"allowlist\",\"allow\":[\"1.2.3.4:443\",7]}",
                        "{\"mode\":\"allowlist\",\"allow\":[\"a.com:443\"]}",
                        "{\"mode\":\"none\"}");
}

static void test_entry_covered_helper(void **state)
{
        json_t *pol = J("[\"*.d.com:443\",\"x.org:80\",\"bad\"]");
        assert_true(mspol_net_entry_covered("a.d.com:443", pol));
        assert_true(mspol_net_entry_covered("*.a.d.com:443", pol));
        assert_true(mspol_net_entry_covered("*.d.com:443", pol));
        assert_true(mspol_net_entry_covered("X.org:80", pol));
        assert_false(mspol_net_entry_covered("d.com:443", pol));
        assert_false(mspol_net_entry_covered("a.d.com:444", pol));
        assert_false(mspol_net_entry_covered("ad.com:443", pol));     /* no label boundary */
        assert_false(mspol_net_entry_covered("*.org:80", pol));
        assert_false(mspol_net_entry_covered("bad", pol));
        assert_false(mspol_net_entry_covered(NULL, pol));
        assert_false(mspol_net_entry_covered("x.org:80", NULL));
        json_decref(pol);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rank_values),
                cmocka_unit_test(test_both_blank_gives_empty_object),
                cmocka_unit_test(test_policy_blank_takes_request),
                cmocka_unit_test(test_request_blank_takes_policy),
                cmocka_unit_test(test_wider_request_gets_policy),
                cmocka_unit_test(test_narrower_request_kept),
                cmocka_unit_test(test_allowlist_request_cannot_replace_policy_list),
                cmocka_unit_test(test_allowlist_disjoint_becomes_none),
                cmocka_unit_test(test_allowlist_port_must_match),
                cmocka_unit_test(test_allowlist_policy_wildcard_covers_subdomains),
                cmocka_unit_test(test_allowlist_exact_policy_does_not_cover_wildcard),
                cmocka_unit_test(test_allowlist_canonical_and_unique),
                cmocka_unit_test(test_allowlist_copies_preset_ttl_ext_from_request),
                cmocka_unit_test(test_empty_policy_allowlist_becomes_none),
                cmocka_unit_test(test_invalid_policy_entries_cover_nothing),
                cmocka_unit_test(test_entry_covered_helper),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
