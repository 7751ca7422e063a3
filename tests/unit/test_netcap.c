/* tests/unit/test_netcap.c — proto/netcap beyond the vectors: API edges, the daemon policy's
 * lifecycle, bounds, and drift against the contract schema. */
#include "testutil.h"
#include "proto/netcap.h"

#include <string.h>

#ifndef VECTORS_DIR
#define VECTORS_DIR "tests/vectors"
#endif
#define NET_SCHEMA \
        VECTORS_DIR "/../../../shared/contract/directivespec_capabilities_net.schema.v1.json"

static json_t *j(const char *text)
{
        json_error_t je;
        json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        assert_non_null(v);
        return v;
}

static int validate_text(const char *text, err_t *err)
{
        json_t *v = j(text);
        int rc = netcap_validate(v, err);
        json_decref(v);
        return rc;
}

static void test_validate_null_pointer_is_refused(void **state)
{
        err_t err = ERR_INIT;
        assert_int_equal(netcap_validate(NULL, &err), -1);
        assert_string_equal(err.msg, "capabilities.net: must be an object, got null");
}

static void test_validate_messages_name_full_path(void **state)
{
        err_t err = ERR_INIT;
        assert_int_equal(validate_text("{\"mode\":\"allowlist\",\"allow\":[\"a.com:1\","
                                       "\"b.com:2\",\"c.com:70000\"]}", &err), -1);
        assert_string_equal(err.msg, "capabilities.net.allow[2]: port out of range: 70000");
        assert_int_equal(validate_text("{\"mode\":\"allowlist\",\"allow\":[\"a.com:1\","
                                       "\"a.com:1\"]}", &err), -1);
        assert_string_equal(err.msg,
                            "capabilities.net.allow[1]: duplicate of allow[0] (\"a.com:1\")");
}

static json_t *allowlist_cap(size_t n, bool duplicate_last)
{
        json_t *cap = j("{\"mode\":\"allowlist\"}");
        json_t *a = json_array();
        char buf[64];
        for (size_t i = 0; i < n; i++) {
                size_t k = (duplicate_last && i == n - 1) ? 0 : i;
                int w = snprintf(buf, sizeof(buf), "h%zu.example.com:443", k);
                assert_true(w > 0 && (size_t)w < sizeof(buf));
                json_array_append_new(a, json_string(buf));
        }
        json_object_set_new(cap, "allow", a);
        return cap;
}

static void test_validate_caps_allow_size_and_finds_far_duplicates(void **state)
{
        err_t err = ERR_INIT;
        json_t *ok = allowlist_cap(ALLOWLIST_MAX_ENTRIES, false);
        assert_int_equal(netcap_validate(ok, &err), 0);
        json_decref(ok);
        json_t *dup = allowlist_cap(ALLOWLIST_MAX_ENTRIES, true);
        assert_int_equal(netcap_validate(dup, &err), -1);
        assert_non_null(strstr(err.msg, "allow[4095]: duplicate of allow[0]"));
        json_decref(dup);
        json_t *over = allowlist_cap(ALLOWLIST_MAX_ENTRIES + 1, false);
        assert_int_equal(netcap_validate(over, &err), -1);
        assert_string_equal(err.msg, "capabilities.net.allow: too many entries (4097 > 4096)");
        json_decref(over);
}

static void test_entry_pattern_direct(void **state)
{
        assert_false(netcap_entry_pattern_ok(NULL, 0));
        assert_true(netcap_entry_pattern_ok("localhost:1", 11));
        assert_true(netcap_entry_pattern_ok("A.b:99999", 9));       /* pattern alone: 5 digits */
        assert_false(netcap_entry_pattern_ok("localhost:1", 10));   /* length-aware */
        assert_false(netcap_entry_pattern_ok("*.localhost:1", 13));
        assert_false(netcap_entry_pattern_ok("a.b:1\n", 6));        /* "$" is end of input */
        assert_false(netcap_entry_pattern_ok("a.b\0c:1", 7));
}

static void test_policy_null_capability_is_mode_none(void **state)
{
        net_policy p = NET_POLICY_INIT;
        err_t err = ERR_INIT;
        assert_int_equal(net_policy_from_json(NULL, &p, &err), 0);
        assert_int_equal(p.mode, NET_MODE_NONE);
        assert_int_equal(net_policy_check(&p, "example.com", 443), NET_REASON_NET_MODE_NONE);
        json_t *null = json_null();
        assert_int_equal(net_policy_from_json(null, &p, &err), 0);
        assert_int_equal(p.mode, NET_MODE_NONE);
        json_decref(null);
}

/* mothership §6.6 sends net {} when nothing set a network: blank = absent = none, while an
 * object with keys but no mode stays INTERNAL_ERROR (§7.6). */
static void test_policy_empty_object_is_mode_none_but_missing_mode_is_not(void **state)
{
        (void)state;
        net_policy p = NET_POLICY_INIT;
        err_t err = ERR_INIT;
        json_t *empty = json_object();
        assert_int_equal(net_policy_from_json(empty, &p, &err), 0);
        assert_int_equal(net_policy_check(&p, "example.com", 443), NET_REASON_NET_MODE_NONE);
        json_decref(empty);
        json_t *nomode = json_pack("{s:[s]}", "allow", "example.com:443");
        assert_int_equal(net_policy_from_json(nomode, &p, &err), 0);
        assert_int_equal(net_policy_check(&p, "example.com", 443), NET_REASON_INTERNAL_ERROR);
        net_policy_free(&p);
        json_decref(nomode);
}

static void test_policy_build_failure_leaves_deny_all(void **state)
{
        net_policy p = NET_POLICY_INIT;
        err_t err = ERR_INIT;
        json_t *cap = j("{\"mode\":\"allowlist\",\"allow\":[\"github.com:443\",\"1.2.3.4:1\"]}");
        assert_int_equal(net_policy_from_json(cap, &p, &err), -1);
        assert_string_equal(err.msg, "capabilities.net: allow[1]: IP literal is not allowed in "
                                     "V1: \"1.2.3.4\"");
        assert_int_equal(p.mode, NET_MODE_NONE);
        assert_null(p.allow.entries);
        assert_int_equal(net_policy_check(&p, "github.com", 443), NET_REASON_NET_MODE_NONE);
        json_decref(cap);
}

static void test_port_mismatch_is_not_in_allowlist_never_port_not_allowed(void **state)
{
        net_policy p = NET_POLICY_INIT;
        err_t err = ERR_INIT;
        json_t *cap = j("{\"mode\":\"allowlist\",\"allow\":[\"github.com:443\"]}");
        assert_int_equal(net_policy_from_json(cap, &p, &err), 0);
        for (unsigned port = 1; port <= 65535; port++) {
                net_reason r = net_policy_check(&p, "github.com", (uint16_t)port);
                assert_int_not_equal(r, NET_REASON_PORT_NOT_ALLOWED);
                assert_int_equal(r, port == 443 ? NET_REASON_OK : NET_REASON_NOT_IN_ALLOWLIST);
        }
        net_policy_free(&p);
        json_decref(cap);
}

static void test_policy_check_null_policy_and_host(void **state)
{
        assert_int_equal(net_policy_check(NULL, "example.com", 443), NET_REASON_INTERNAL_ERROR);
        net_policy p = { NET_MODE_UNRESTRICTED, { NULL, 0 } };
        assert_int_equal(net_policy_check(&p, NULL, 443), NET_REASON_INVALID_DESTINATION);
        assert_int_equal(net_policy_check(&p, "", 443), NET_REASON_INVALID_DESTINATION);
        p.mode = (net_mode)42;   /* corrupted state fails closed */
        assert_int_equal(net_policy_check(&p, "example.com", 443), NET_REASON_INTERNAL_ERROR);
}

static void test_policy_free_twice_then_denies(void **state)
{
        net_policy p = NET_POLICY_INIT;
        err_t err = ERR_INIT;
        json_t *cap = j("{\"mode\":\"allowlist\",\"allow\":[\"github.com:443\"]}");
        assert_int_equal(net_policy_from_json(cap, &p, &err), 0);
        assert_int_equal(p.mode, NET_MODE_ALLOWLIST);
        assert_int_equal(p.allow.n, 1);
        net_policy_free(&p);
        net_policy_free(&p);
        net_policy_free(NULL);
        assert_int_equal(net_policy_check(&p, "github.com", 443), NET_REASON_NET_MODE_NONE);
        json_decref(cap);
}

static void test_validator_refuses_what_daemon_would_deny_internally(void **state)
{
        /* §7.6 keeps an unknown mode as deny-all; §8.3 ADVISED refuses it before running */
        err_t err = ERR_INIT;
        net_policy p = NET_POLICY_INIT;
        json_t *cap = j("{\"mode\":\"full\"}");
        assert_int_equal(netcap_validate(cap, &err), -1);
        assert_int_equal(net_policy_from_json(cap, &p, &err), 0);
        assert_int_equal(p.mode, NET_MODE_UNKNOWN);
        assert_int_equal(net_policy_check(&p, "example.com", 443), NET_REASON_INTERNAL_ERROR);
        json_decref(cap);
}

static void test_mode_names(void **state)
{
        assert_string_equal(net_mode_name(NET_MODE_NONE), "none");
        assert_string_equal(net_mode_name(NET_MODE_ALLOWLIST), "allowlist");
        assert_string_equal(net_mode_name(NET_MODE_UNRESTRICTED), "unrestricted");
        assert_string_equal(net_mode_name(NET_MODE_UNKNOWN), "unknown");
        assert_string_equal(net_mode_name((net_mode)99), "unknown");
}

/* The hand-written checks implement these exact schema values; a contract change fails here. */
static void test_contract_schema_matches_implemented_rules(void **state)
{
        json_error_t je;
        json_t *s = json_load_file(NET_SCHEMA, 0, &je);
        if (!s)
                SKIP_BECAUSE("contract schema not readable at %s: %s", NET_SCHEMA, je.text);
        const json_t *props = json_object_get(s, "properties");
        const json_t *entry = json_object_get(json_object_get(s, "$defs"), "NetAllowlistEntryV1");
        assert_string_equal(json_string_value(json_object_get(entry, "pattern")),
                            "^(localhost|(\\*\\.)?([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
                            "(\\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+):([0-9]{1,5})$");
        assert_int_equal(json_integer_value(json_object_get(entry, "minLength")), 4);
        assert_int_equal(json_integer_value(json_object_get(entry, "maxLength")),
                         ALLOW_ENTRY_MAX_LEN);
        const json_t *ttl = json_object_get(props, "ttl_seconds");
        assert_int_equal(json_integer_value(json_object_get(ttl, "minimum")), 1);
        assert_int_equal(json_integer_value(json_object_get(ttl, "maximum")), NETCAP_TTL_MAX);
        assert_string_equal(json_string_value(json_object_get(json_object_get(
                json_object_get(props, "x_ext"), "propertyNames"), "pattern")),
                "^x_[A-Za-z0-9_]+$");
        assert_true(json_is_false(json_object_get(s, "additionalProperties")));
        assert_int_equal(json_object_size(props), 5);
        const json_t *modes = json_object_get(json_object_get(props, "mode"), "enum");
        assert_int_equal(json_array_size(modes), 3);
        const json_t *presets = json_object_get(json_object_get(props, "preset"), "enum");
        assert_int_equal(json_array_size(presets), 5);
        /* every enum value validates, so the lists agree */
        err_t err = ERR_INIT;
        size_t i;
        json_t *v;
        json_array_foreach(presets, i, v) {
                json_t *cap = json_pack("{s:s,s:O}", "mode", "none", "preset", v);
                assert_int_equal(netcap_validate(cap, &err), 0);
                json_decref(cap);
        }
        json_array_foreach(modes, i, v) {
                json_t *cap = json_pack("{s:O}", "mode", v);
                if (strcmp(json_string_value(v), "allowlist") == 0)
                        json_object_set_new(cap, "allow", json_array());
                assert_int_equal(netcap_validate(cap, &err), 0);
                json_decref(cap);
        }
        json_decref(s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_validate_null_pointer_is_refused),
                cmocka_unit_test(test_validate_messages_name_full_path),
                cmocka_unit_test(test_validate_caps_allow_size_and_finds_far_duplicates),
                cmocka_unit_test(test_entry_pattern_direct),
                cmocka_unit_test(test_policy_null_capability_is_mode_none),
                cmocka_unit_test(test_policy_empty_object_is_mode_none_but_missing_mode_is_not),
                cmocka_unit_test(test_policy_build_failure_leaves_deny_all),
                cmocka_unit_test(test_port_mismatch_is_not_in_allowlist_never_port_not_allowed),
                cmocka_unit_test(test_policy_check_null_policy_and_host),
                cmocka_unit_test(test_policy_free_twice_then_denies),
                cmocka_unit_test(test_validator_refuses_what_daemon_would_deny_internally),
                cmocka_unit_test(test_mode_names),
                cmocka_unit_test(test_contract_schema_matches_implemented_rules),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
