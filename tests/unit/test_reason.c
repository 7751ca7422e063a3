/* tests/unit/test_reason.c — proto/reason: the frozen V1 reason-code vocabularies. */
#include "testutil.h"
#include "proto/reason.h"

#include <jansson.h>
#include <string.h>

#ifndef VECTORS_DIR
#define VECTORS_DIR "tests/vectors"
#endif
#define NET_SCHEMA \
        VECTORS_DIR "/../../../shared/contract/directivespec_capabilities_net.schema.v1.json"

/* schema order, NetDecisionReasonCodeV1 (nexus §7.12) */
static const char *const decision_codes[] = {
        "OK", "NET_MODE_NONE", "NOT_IN_ALLOWLIST", "PORT_NOT_ALLOWED", "INVALID_DESTINATION",
        "PROXY_REQUIRED", "SNI_MISMATCH", "DNS_DENIED", "POLICY_EXPIRED", "APPROVAL_REQUIRED",
        "INTERNAL_ERROR", "OTHER",
};

static const char *const approval_codes[] = {
        "NET_UNRESTRICTED_REQUESTED", "NET_NON_DEFAULT_PORT_REQUESTED",
        "NET_WILDCARD_DOMAIN_REQUESTED", "NET_PRIVATE_DESTINATION_REQUESTED",
        "NET_CUSTOM_POLICY_REQUESTED",
};

static void test_reason_names_follow_frozen_order(void **state)
{
        assert_int_equal(NET_REASON__COUNT, sizeof(decision_codes) / sizeof(decision_codes[0]));
        for (int i = 0; i < NET_REASON__COUNT; i++)
                assert_string_equal(net_reason_name((net_reason)i), decision_codes[i]);
}

static void test_reason_parse_roundtrips_every_code(void **state)
{
        for (int i = 0; i < NET_REASON__COUNT; i++)
                assert_int_equal(net_reason_parse(net_reason_name((net_reason)i)), i);
}

static void test_reason_unknown_text_maps_to_other(void **state)
{
        assert_int_equal(net_reason_parse(NULL), NET_REASON_OTHER);
        assert_int_equal(net_reason_parse(""), NET_REASON_OTHER);
        assert_int_equal(net_reason_parse("ok"), NET_REASON_OTHER);        /* case-sensitive */
        assert_int_equal(net_reason_parse("OK "), NET_REASON_OTHER);
        assert_int_equal(net_reason_parse("NET_MODE_FULL"), NET_REASON_OTHER);
}

static void test_reason_out_of_range_names_other(void **state)
{
        assert_string_equal(net_reason_name(NET_REASON__COUNT), "OTHER");
        assert_string_equal(net_reason_name((net_reason)-1), "OTHER");
        assert_string_equal(net_reason_name((net_reason)1000), "OTHER");
}

static void test_reason_only_ok_allows(void **state)
{
        assert_true(net_reason_allows(NET_REASON_OK));
        for (int i = 1; i < NET_REASON__COUNT; i++)
                assert_false(net_reason_allows((net_reason)i));
        assert_false(net_reason_allows((net_reason)-1));
        assert_false(net_reason_allows(NET_REASON__COUNT));
}

static void test_approval_names_and_roundtrip(void **state)
{
        assert_int_equal(NET_APPROVAL_REASON__COUNT,
                         sizeof(approval_codes) / sizeof(approval_codes[0]));
        for (int i = 0; i < NET_APPROVAL_REASON__COUNT; i++) {
                net_approval_reason r = NET_CUSTOM_POLICY_REQUESTED;
                assert_string_equal(net_approval_reason_name((net_approval_reason)i),
                                    approval_codes[i]);
                assert_int_equal(net_approval_reason_parse(approval_codes[i], &r), 0);
                assert_int_equal(r, i);
        }
}

static void test_approval_unknown_is_refused(void **state)
{
        net_approval_reason r = NET_WILDCARD_DOMAIN_REQUESTED;
        assert_int_equal(net_approval_reason_parse(NULL, &r), -1);
        assert_int_equal(net_approval_reason_parse("OK", &r), -1);
        assert_int_equal(net_approval_reason_parse("net_unrestricted_requested", &r), -1);
        assert_int_equal(r, NET_WILDCARD_DOMAIN_REQUESTED);   /* untouched */
        assert_null(net_approval_reason_name(NET_APPROVAL_REASON__COUNT));
        assert_null(net_approval_reason_name((net_approval_reason)-3));
}

/* The tables must equal the contract's enums, in order: a drift fails here. */
static void check_enum(const json_t *schema, const char *def, const char *const *want, size_t n)
{
        const json_t *e = json_object_get(json_object_get(json_object_get(schema, "$defs"), def),
                                          "enum");
        assert_true(json_is_array(e));
        assert_int_equal(json_array_size(e), n);
        for (size_t i = 0; i < n; i++)
                assert_string_equal(json_string_value(json_array_get(e, i)), want[i]);
}

static void test_reason_tables_equal_contract_enums(void **state)
{
        json_error_t je;
        json_t *schema = json_load_file(NET_SCHEMA, 0, &je);
        if (!schema)
                SKIP_BECAUSE("contract schema not readable at %s: %s", NET_SCHEMA, je.text);
        check_enum(schema, "NetDecisionReasonCodeV1", decision_codes,
                   sizeof(decision_codes) / sizeof(decision_codes[0]));
        check_enum(schema, "NetApprovalReasonCodeV1", approval_codes,
                   sizeof(approval_codes) / sizeof(approval_codes[0]));
        json_decref(schema);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_reason_names_follow_frozen_order),
                cmocka_unit_test(test_reason_parse_roundtrips_every_code),
                cmocka_unit_test(test_reason_unknown_text_maps_to_other),
                cmocka_unit_test(test_reason_out_of_range_names_other),
                cmocka_unit_test(test_reason_only_ok_allows),
                cmocka_unit_test(test_approval_names_and_roundtrip),
                cmocka_unit_test(test_approval_unknown_is_refused),
                cmocka_unit_test(test_reason_tables_equal_contract_enums),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
