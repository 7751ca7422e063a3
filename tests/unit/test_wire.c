/* tests/unit/test_wire.c — proto/wire: parse / serialise / validate of every Conduits message.
 *
 * Round trips build a struct in C, serialise it, parse it back and compare both the fields
 * (X_equal helpers) and the re-serialised JSON. Golden tests pin the key presence rules of
 * nexus §4.3. Negative tests cover missing fields, wrong types, bad enums, ranges, base64 and
 * oversize input, and check that the message names the field and its path. */
#include "testutil.h"
#include "core/cleanup.h"
#include "core/json.h"
#include "core/str.h"
#include "proto/wire.h"

#include <stdlib.h>
#include <string.h>

/* ── helpers ───────────────────────────────────────────────────────────────────────────── */

static char *S(const char *s)
{
        char *p = strdup(s);
        assert_non_null(p);
        return p;
}

static json_t *J(const char *text)
{
        err_t err = ERR_INIT;
        json_t *j = json_parse(text, strlen(text), false, &err);
        if (!j)
                fail_msg("test JSON does not parse: %s: %s", err.msg, text);
        return j;
}

static json_t *J_owned(char *text)
{
        json_t *j = J(text);
        free(text);
        return j;
}

static void assert_ok(int rc, const err_t *err)
{
        if (rc < 0)
                fail_msg("unexpected error: %s", err->msg);
}

static void assert_err(int rc, const err_t *err, const char *needle)
{
        if (rc >= 0)
                fail_msg("expected an error containing \"%s\", got success", needle);
        if (!strstr(err->msg, needle))
                fail_msg("error \"%s\" does not contain \"%s\"", err->msg, needle);
}

static void assert_dump(const json_t *j, const char *want)
{
        assert_non_null(j);
        char *got = json_dump_compact(j);
        assert_non_null(got);
        if (strcmp(got, want) != 0)
                fail_msg("serialised\n  got:  %s\n  want: %s", got, want);
        free(got);
}

static bool str_eq(const char *a, const char *b)
{
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}

static bool json_eq_or_null(const json_t *a, const json_t *b)
{
        if (!a || !b)
                return a == b;
        return json_equal(a, b);
}

static bool strlist_eq(const wire_strlist *a, const wire_strlist *b)
{
        if (a->n != b->n)
                return false;
        for (size_t i = 0; i < a->n; i++) {
                if (!str_eq(a->items[i], b->items[i]))
                        return false;
        }
        return true;
}

static bool bytes_eq(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
        return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static wire_strlist strlist2(const char *a, const char *b)
{
        wire_strlist l = { calloc(2, sizeof(char *)), 2 };
        assert_non_null(l.items);
        l.items[0] = S(a);
        l.items[1] = S(b);
        return l;
}

static uint8_t *B(const char *s, size_t n)
{
        uint8_t *p = malloc(n ? n : 1);
        assert_non_null(p);
        memcpy(p, s, n);
        return p;
}

/* Serialise x, parse it into y, validate y, serialise y, and require the same JSON. */
#define ROUND_TRIP(T, x, y)                                                                   \
        do {                                                                                  \
                err_t rt_err = ERR_INIT;                                                      \
                assert_ok(wire_##T##_validate(&(x), &rt_err), &rt_err);                       \
                json_t *rt_j1 = wire_##T##_to_json(&(x), &rt_err);                            \
                if (!rt_j1)                                                                   \
                        fail_msg("to_json: %s", rt_err.msg);                                  \
                assert_ok(wire_##T##_parse(rt_j1, &(y), &rt_err), &rt_err);                   \
                assert_ok(wire_##T##_validate(&(y), &rt_err), &rt_err);                       \
                json_t *rt_j2 = wire_##T##_to_json(&(y), &rt_err);                            \
                if (!rt_j2)                                                                   \
                        fail_msg("to_json (second): %s", rt_err.msg);                         \
                assert_true(json_equal(rt_j1, rt_j2));                                        \
                json_decref(rt_j1);                                                           \
                json_decref(rt_j2);                                                           \
        } while (0)

/* Parses text as T and validates it; returns the first failure. */
#define PARSE_VALIDATE(T, text, out, err)                                                     \
        ({                                                                                    \
                json_t *pv_j = J(text);                                                       \
                int pv_rc = wire_##T##_parse(pv_j, (out), (err));                             \
                if (pv_rc == 0) {                                                             \
                        pv_rc = wire_##T##_validate((out), (err));                            \
                }                                                                             \
                json_decref(pv_j);                                                            \
                pv_rc;                                                                        \
        })

static const char *const SPEC_OK =
        "{\"directive_id\":\"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b\","
        "\"facility\":{\"id\":\"fac-1\",\"mount\":\"/workspace\"},"
        "\"sandbox_profile\":\"untrusted\",\"command\":\"make test\","
        "\"timeout_seconds\":300,\"limits\":{},\"capabilities\":{},\"artifacts\":{}}";

/* ── limits ────────────────────────────────────────────────────────────────────────────── */

static bool limits_equal(const wire_limits *a, const wire_limits *b)
{
        return a->has_cpu == b->has_cpu && a->cpu == b->cpu &&
               a->has_memory_mb == b->has_memory_mb && a->memory_mb == b->memory_mb &&
               a->has_disk_mb == b->has_disk_mb && a->disk_mb == b->disk_mb &&
               a->has_max_output_bytes == b->has_max_output_bytes &&
               a->max_output_bytes == b->max_output_bytes &&
               a->has_max_diff_bytes == b->has_max_diff_bytes &&
               a->max_diff_bytes == b->max_diff_bytes;
}

static void test_limits_round_trip(void **state)
{
        wire_limits x = { .cpu = 1500, .has_cpu = true, .memory_mb = 0, .has_memory_mb = true,
                          .max_diff_bytes = 1048576, .has_max_diff_bytes = true };
        wire_limits y;
        ROUND_TRIP(limits, x, y);
        assert_true(limits_equal(&x, &y));
        assert_false(y.has_disk_mb);
}

static void test_limits_negative_value_refused(void **state)
{
        err_t err = ERR_INIT;
        wire_limits y;
        assert_err(PARSE_VALIDATE(limits, "{\"memory_mb\":-1}", &y, &err), &err,
                   "field \"memory_mb\" must be >= 0, got -1");
}

static void test_limits_real_number_refused(void **state)
{
        err_t err = ERR_INIT;
        wire_limits y;
        assert_err(PARSE_VALIDATE(limits, "{\"cpu\":1.5}", &y, &err), &err,
                   "field \"cpu\" must be an integer, got number");
}

/* ── directive spec ────────────────────────────────────────────────────────────────────── */

static bool spec_equal(const wire_directive_spec *a, const wire_directive_spec *b)
{
        return str_eq(a->directive_id, b->directive_id) &&
               str_eq(a->facility.id, b->facility.id) &&
               str_eq(a->facility.mount, b->facility.mount) &&
               str_eq(a->facility.repo_url, b->facility.repo_url) &&
               str_eq(a->sandbox_profile, b->sandbox_profile) &&
               str_eq(a->command, b->command) && str_eq(a->shell, b->shell) &&
               str_eq(a->cwd, b->cwd) && a->has_timeout_seconds == b->has_timeout_seconds &&
               a->timeout_seconds == b->timeout_seconds && limits_equal(&a->limits, &b->limits) &&
               json_eq_or_null(a->cap_net, b->cap_net) && json_eq_or_null(a->cap_fs, b->cap_fs) &&
               strlist_eq(&a->artifacts_collect, &b->artifacts_collect) &&
               a->artifacts_always_diff == b->artifacts_always_diff;
}

static void spec_fill(wire_directive_spec *x)
{
        memset(x, 0, sizeof(*x));
        x->directive_id = S("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
        x->facility.id = S("fac_1");
        x->facility.mount = S("/workspace");
        x->facility.repo_url = S("https://github.com/example/repo.git");
        x->sandbox_profile = S("untrusted");
        x->command = S("echo 'hi' && make -j4 test");
        x->shell = S("/bin/bash");
        x->cwd = S("src");
        x->timeout_seconds = 600;
        x->has_timeout_seconds = true;
        x->limits.cpu = 2000;
        x->limits.has_cpu = true;
        x->limits.max_output_bytes = 2000000;
        x->limits.has_max_output_bytes = true;
        x->cap_net = J("{\"mode\":\"allowlist\",\"allow\":[\"github.com:443\",\"*.npmjs.org:443\"]}");
        x->cap_fs = J("{\"read\":[\"workspace:**\"],\"write\":[\"workspace:/src\"]}");
        x->artifacts_collect = strlist2("dist/*.tar.gz", "coverage/**");
        x->artifacts_always_diff = true;
}

/* spec nexus §12 #52 */
static void test_spec_round_trip(void **state)
{
        wire_directive_spec x, y;
        spec_fill(&x);
        ROUND_TRIP(directive_spec, x, y);
        assert_true(spec_equal(&x, &y));
        wire_directive_spec_free(&x);
        wire_directive_spec_free(&y);
}

/* spec nexus §12 #52 (absent sections stay absent) */
static void test_spec_minimal_round_trip(void **state)
{
        wire_directive_spec x = { 0 }, y;
        x.directive_id = S("d1");
        x.facility.id = S("f1");
        x.command = S("true");
        ROUND_TRIP(directive_spec, x, y);
        assert_true(spec_equal(&x, &y));
        assert_null(y.sandbox_profile);
        assert_null(y.cap_net);
        wire_directive_spec_free(&x);
        wire_directive_spec_free(&y);
}

/* mothership §7.5: limits, capabilities and artifacts are always objects. */
static void test_spec_serialises_empty_sections_as_objects(void **state)
{
        err_t err = ERR_INIT;
        wire_directive_spec x = { 0 };
        x.directive_id = S("d1");
        x.facility.id = S("f1");
        x.command = S("true");
        json_t *j = wire_directive_spec_to_json(&x, &err);
        assert_dump(j, "{\"directive_id\":\"d1\",\"facility\":{\"id\":\"f1\"},"
                       "\"command\":\"true\",\"limits\":{},\"capabilities\":{},"
                       "\"artifacts\":{}}");
        json_decref(j);
        wire_directive_spec_free(&x);
}

static void test_spec_parse_text_accepts_server_shape(void **state)
{
        err_t err = ERR_INIT;
        wire_directive_spec y;
        const char *t =
                "{\"directive_id\":\"d-1\",\"facility\":{\"id\":\"f\",\"mount\":\"/workspace\"},"
                "\"sandbox_profile\":\"trusted\",\"command\":\"ls\",\"shell\":\"/bin/sh\","
                "\"cwd\":\"/workspace\",\"timeout_seconds\":300,\"limits\":{},"
                "\"capabilities\":{\"fs\":{\"read\":[\"workspace:**\"],"
                "\"write\":[\"workspace:**\"]},\"net\":{},\"secrets\":{},"
                "\"sandbox_profile_rules\":{}},\"artifacts\":{},\"env_refs\":[]}";
        assert_ok(wire_directive_spec_parse_text(t, strlen(t), &y, &err), &err);
        assert_string_equal(y.sandbox_profile, "trusted");
        /* net {} is "no policy" (mothership §6.6): kept, not schema-checked. */
        assert_non_null(y.cap_net);
        assert_int_equal(json_object_size(y.cap_net), 0);
        assert_int_equal(y.timeout_seconds, 300);
        wire_directive_spec_free(&y);
}

static void test_spec_missing_command(void **state)
{
        err_t err = ERR_INIT;
        wire_directive_spec y;
        const char *t = "{\"directive_id\":\"d\",\"facility\":{\"id\":\"f\"}}";
        assert_err(wire_directive_spec_parse_text(t, strlen(t), &y, &err), &err,
                   "spec: missing required field \"command\"");
        assert_null(y.directive_id);   /* left zeroed on failure */
}

static void test_spec_limits_wrong_type_names_path(void **state)
{
        err_t err = ERR_INIT;
        wire_directive_spec y;
        const char *t = "{\"directive_id\":\"d\",\"facility\":{\"id\":\"f\"},\"command\":\"x\","
                        "\"limits\":{\"cpu\":\"1000\"}}";
        int rc = wire_directive_spec_parse_text(t, strlen(t), &y, &err);
        assert_err(rc, &err, "spec.limits: field \"cpu\" must be an integer, got string");
        assert_string_equal(err.code, ERR_INVALID);
}

static void test_spec_facility_missing_id(void **state)
{
        err_t err = ERR_INIT;
        wire_directive_spec y;
        const char *t = "{\"directive_id\":\"d\",\"facility\":{\"mount\":\"/w\"},\"command\":\"x\"}";
        assert_err(wire_directive_spec_parse_text(t, strlen(t), &y, &err), &err,
                   "spec.facility: missing required field \"id\"");
}

static void test_spec_timeout_zero_refused(void **state)
{
        err_t err = ERR_INIT;
        wire_directive_spec y;
        const char *t = "{\"directive_id\":\"d\",\"facility\":{\"id\":\"f\"},\"command\":\"x\","
                        "\"timeout_seconds\":0}";
        assert_err(wire_directive_spec_parse_text(t, strlen(t), &y, &err), &err,
                   "spec: field \"timeout_seconds\" must be >= 1, got 0");
}

static void test_spec_timeout_as_string_refused(void **state)
{
        err_t err = ERR_INIT;
        wire_directive_spec y;
        const char *t = "{\"directive_id\":\"d\",\"facility\":{\"id\":\"f\"},\"command\":\"x\","
                        "\"timeout_seconds\":\"300\"}";
        assert_err(wire_directive_spec_parse_text(t, strlen(t), &y, &err), &err,
                   "spec: field \"timeout_seconds\" must be an integer, got string");
}

/* spec nexus §12 #233 (REF differs: an empty sandbox_profile is refused here, and a missing
 * one is rejected by run.c, never run on host) */
static void test_spec_bad_profile_refused(void **state)
{
        static const char *const bad[] = { "Untrusted", "", "un trusted",
                                           "a-very-long-profile-name-over-32c", "host;rm" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                err_t err = ERR_INIT;
                wire_directive_spec y;
                json_t *j = J(SPEC_OK);
                json_object_set_new(j, "sandbox_profile", json_string(bad[i]));
                int rc = wire_directive_spec_parse(j, &y, &err);
                if (rc == 0) {
                        rc = wire_directive_spec_validate(&y, &err);
                        wire_directive_spec_free(&y);
                }
                json_decref(j);
                assert_err(rc, &err, "sandbox_profile");
        }
}

static void test_spec_profile_token_accepted(void **state)
{
        assert_true(wire_profile_is_valid("darwin-automation"));
        assert_true(wire_profile_is_valid("gpu-2"));
        assert_true(wire_profile_is_valid("abcdefghijklmnopqrstuvwxyz012345"));
        assert_false(wire_profile_is_valid("abcdefghijklmnopqrstuvwxyz0123456"));
        assert_false(wire_profile_is_valid("Host"));
        assert_false(wire_profile_is_valid(""));
        assert_false(wire_profile_is_valid(NULL));
}

static void test_spec_command_oversize_refused(void **state)
{
        err_t err = ERR_INIT;
        wire_directive_spec y;
        char *cmd = malloc(WIRE_COMMAND_MAX + 2);
        assert_non_null(cmd);
        memset(cmd, 'a', WIRE_COMMAND_MAX + 1);
        cmd[WIRE_COMMAND_MAX + 1] = '\0';
        json_t *j = J(SPEC_OK);
        json_object_set_new(j, "command", json_string(cmd));
        free(cmd);
        int rc = wire_directive_spec_parse(j, &y, &err);
        json_decref(j);
        assert_err(rc, &err, "spec: field \"command\" is too long (65537 bytes, max 65536)");
}

static void test_spec_empty_command_refused(void **state)
{
        err_t err = ERR_INIT;
        wire_directive_spec y;
        const char *t = "{\"directive_id\":\"d\",\"facility\":{\"id\":\"f\"},\"command\":\"\"}";
        assert_err(wire_directive_spec_parse_text(t, strlen(t), &y, &err), &err,
                   "spec: field \"command\" must not be empty");
}

static void test_spec_invalid_net_capability_refused(void **state)
{
        err_t err = ERR_INIT;
        wire_directive_spec y;
        const char *t = "{\"directive_id\":\"d\",\"facility\":{\"id\":\"f\"},\"command\":\"x\","
                        "\"capabilities\":{\"net\":{\"mode\":\"everything\"}}}";
        assert_err(wire_directive_spec_parse_text(t, strlen(t), &y, &err), &err,
                   "spec.capabilities.net");
}

static void test_spec_net_allowlist_with_ip_literal_refused(void **state)
{
        err_t err = ERR_INIT;
        wire_directive_spec y;
        const char *t = "{\"directive_id\":\"d\",\"facility\":{\"id\":\"f\"},\"command\":\"x\","
                        "\"capabilities\":{\"net\":{\"mode\":\"allowlist\","
                        "\"allow\":[\"169.254.169.254:80\"]}}}";
        assert_err(wire_directive_spec_parse_text(t, strlen(t), &y, &err), &err,
                   "spec.capabilities.net");
}

static void test_spec_invalid_fs_capability_refused(void **state)
{
        err_t err = ERR_INIT;
        wire_directive_spec y;
        const char *t = "{\"directive_id\":\"d\",\"facility\":{\"id\":\"f\"},\"command\":\"x\","
                        "\"capabilities\":{\"fs\":{\"read\":[\"/etc/passwd\"]}}}";
        assert_err(wire_directive_spec_parse_text(t, strlen(t), &y, &err), &err,
                   "spec.capabilities.fs");
}

static void test_spec_capability_not_object_refused(void **state)
{
        err_t err = ERR_INIT;
        wire_directive_spec y;
        const char *t = "{\"directive_id\":\"d\",\"facility\":{\"id\":\"f\"},\"command\":\"x\","
                        "\"capabilities\":{\"net\":\"allow-all\"}}";
        assert_err(wire_directive_spec_parse_text(t, strlen(t), &y, &err), &err,
                   "spec.capabilities: field \"net\" must be an object, got string");
}

static void test_spec_null_net_means_absent(void **state)
{
        err_t err = ERR_INIT;
        wire_directive_spec y;
        const char *t = "{\"directive_id\":\"d\",\"facility\":{\"id\":\"f\"},\"command\":\"x\","
                        "\"capabilities\":{\"net\":null}}";
        assert_ok(wire_directive_spec_parse_text(t, strlen(t), &y, &err), &err);
        assert_null(y.cap_net);
        wire_directive_spec_free(&y);
}

static void test_spec_artifact_collect_item_not_string(void **state)
{
        err_t err = ERR_INIT;
        wire_directive_spec y;
        const char *t = "{\"directive_id\":\"d\",\"facility\":{\"id\":\"f\"},\"command\":\"x\","
                        "\"artifacts\":{\"collect\":[\"a\",7]}}";
        assert_err(wire_directive_spec_parse_text(t, strlen(t), &y, &err), &err,
                   "spec.artifacts: field \"collect\" item 1 must be a string, got integer");
}

/* Ids become URL path segments and file names in nexusd (nexus §4.2, §5.3). */
static void test_spec_directive_id_with_slash_refused(void **state)
{
        err_t err = ERR_INIT;
        wire_directive_spec y;
        const char *t = "{\"directive_id\":\"../../etc\",\"facility\":{\"id\":\"f\"},"
                        "\"command\":\"x\"}";
        assert_err(wire_directive_spec_parse_text(t, strlen(t), &y, &err), &err,
                   "spec: field \"directive_id\"");
}

/* json_parse already refuses \u0000; a json_t built in code can still carry one. */
static void test_spec_nul_in_string_refused(void **state)
{
        err_t err = ERR_INIT;
        wire_directive_spec y;
        json_t *j = J(SPEC_OK);
        json_object_set_new(j, "command", json_stringn("ls\0rm -rf /", 12));
        int rc = wire_directive_spec_parse(j, &y, &err);
        json_decref(j);
        assert_err(rc, &err, "spec: field \"command\" must not contain NUL characters");
        const char *t = "{\"directive_id\":\"d\",\"facility\":{\"id\":\"f\"},"
                        "\"command\":\"ls\\u0000rm -rf /\"}";
        assert_err(wire_directive_spec_parse_text(t, strlen(t), &y, &err), &err, "u0000");
}

static void test_spec_unknown_fields_ignored(void **state)
{
        err_t err = ERR_INIT;
        wire_directive_spec y;
        const char *t = "{\"directive_id\":\"d\",\"facility\":{\"id\":\"f\",\"x\":1},"
                        "\"command\":\"x\",\"env_allowlist\":[],\"future\":{\"a\":[1]}}";
        assert_ok(wire_directive_spec_parse_text(t, strlen(t), &y, &err), &err);
        wire_directive_spec_free(&y);
}

static void test_spec_parse_text_refuses_bad_json(void **state)
{
        err_t err = ERR_INIT;
        wire_directive_spec y;
        assert_err(wire_directive_spec_parse_text("{\"a\":", 5, &y, &err), &err,
                   "invalid JSON");
        assert_err(wire_directive_spec_parse_text("[1]", 3, &y, &err), &err,
                   "must be an object");
        const char *dup = "{\"directive_id\":\"d\",\"directive_id\":\"e\"}";
        assert_err(wire_directive_spec_parse_text(dup, strlen(dup), &y, &err), &err,
                   "duplicate");
}

static void test_spec_free_twice_is_safe(void **state)
{
        wire_directive_spec x;
        spec_fill(&x);
        wire_directive_spec_free(&x);
        wire_directive_spec_free(&x);
        assert_null(x.command);
        assert_null(x.cap_net);
}

/* ── lease ─────────────────────────────────────────────────────────────────────────────── */

static void test_lease_round_trip(void **state)
{
        wire_directive_lease x = { 0 }, y;
        x.directive_id = S("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
        x.directive_token = S("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJkIn0.c2ln");
        spec_fill(&x.spec);
        ROUND_TRIP(directive_lease, x, y);
        assert_true(str_eq(x.directive_id, y.directive_id));
        assert_true(str_eq(x.directive_token, y.directive_token));
        assert_true(spec_equal(&x.spec, &y.spec));
        wire_directive_lease_free(&x);
        wire_directive_lease_free(&y);
}

static void test_lease_missing_token(void **state)
{
        err_t err = ERR_INIT;
        wire_directive_lease y;
        char *t = str_dup_printf("{\"directive_id\":\"d\",\"spec\":%s}", SPEC_OK);
        assert_non_null(t);
        int rc = wire_directive_lease_parse_text(t, strlen(t), &y, &err);
        free(t);
        assert_err(rc, &err, "missing required field \"directive_token\"");
}

static void test_lease_empty_token_refused(void **state)
{
        err_t err = ERR_INIT;
        wire_directive_lease y;
        char *t = str_dup_printf("{\"directive_id\":\"d\",\"directive_token\":\"\",\"spec\":%s}",
                                 SPEC_OK);
        assert_non_null(t);
        int rc = wire_directive_lease_parse_text(t, strlen(t), &y, &err);
        free(t);
        assert_err(rc, &err, "field \"directive_token\" must not be empty");
}

static void test_lease_token_oversize_refused(void **state)
{
        err_t err = ERR_INIT;
        wire_directive_lease y;
        char *tok = malloc(WIRE_TOKEN_MAX + 2);
        assert_non_null(tok);
        memset(tok, 'A', WIRE_TOKEN_MAX + 1);
        tok[WIRE_TOKEN_MAX + 1] = '\0';
        json_t *j = J("{\"directive_id\":\"d\"}");
        json_object_set_new(j, "directive_token", json_string(tok));
        json_object_set_new(j, "spec", J(SPEC_OK));
        free(tok);
        int rc = wire_directive_lease_parse(j, &y, &err);
        json_decref(j);
        assert_err(rc, &err, "field \"directive_token\" is too long (4097 bytes, max 4096)");
}

static void test_lease_spec_error_has_spec_prefix(void **state)
{
        err_t err = ERR_INIT;
        wire_directive_lease y;
        const char *t = "{\"directive_id\":\"d\",\"directive_token\":\"t\","
                        "\"spec\":{\"directive_id\":\"d\",\"facility\":{\"id\":\"f\"},"
                        "\"command\":\"x\",\"shell\":5}}";
        assert_err(wire_directive_lease_parse_text(t, strlen(t), &y, &err), &err,
                   "spec: field \"shell\" must be a string, got integer");
}

/* ── poll ──────────────────────────────────────────────────────────────────────────────── */

/* spec nexus §12 #45 */
static void test_poll_request_round_trip(void **state)
{
        wire_poll_request x = { 0 }, y;
        x.supported_sandbox_profiles = strlist2("host", "untrusted");
        x.max_directives_to_claim = 3;
        x.wait_seconds = 25;
        ROUND_TRIP(poll_request, x, y);
        assert_true(strlist_eq(&x.supported_sandbox_profiles, &y.supported_sandbox_profiles));
        assert_int_equal(y.max_directives_to_claim, 3);
        assert_int_equal(y.wait_seconds, 25);
        wire_poll_request_free(&x);
        wire_poll_request_free(&y);
}

/* nexus §4.3: profiles always present, max_directives_to_claim omitted when 0. */
static void test_poll_request_golden_omits_zero_fields(void **state)
{
        err_t err = ERR_INIT;
        wire_poll_request x = { 0 };
        json_t *j = wire_poll_request_to_json(&x, &err);
        assert_dump(j, "{\"supported_sandbox_profiles\":[]}");
        json_decref(j);
        x.max_directives_to_claim = 1;
        j = wire_poll_request_to_json(&x, &err);
        assert_dump(j, "{\"supported_sandbox_profiles\":[],\"max_directives_to_claim\":1}");
        json_decref(j);
}

static void test_poll_request_claim_out_of_range(void **state)
{
        err_t err = ERR_INIT;
        wire_poll_request y;
        assert_err(PARSE_VALIDATE(poll_request, "{\"max_directives_to_claim\":6}", &y, &err),
                   &err, "field \"max_directives_to_claim\" must be in 1..5, got 6");
        wire_poll_request_free(&y);
        assert_err(PARSE_VALIDATE(poll_request, "{\"max_directives_to_claim\":-1}", &y, &err),
                   &err, "max_directives_to_claim");
        wire_poll_request_free(&y);
}

static void test_poll_request_wait_out_of_range(void **state)
{
        err_t err = ERR_INIT;
        wire_poll_request y;
        assert_err(PARSE_VALIDATE(poll_request, "{\"wait_seconds\":31}", &y, &err), &err,
                   "field \"wait_seconds\" must be in 0..30, got 31");
        wire_poll_request_free(&y);
}

static void test_poll_request_bad_profile_item(void **state)
{
        err_t err = ERR_INIT;
        wire_poll_request y;
        assert_err(PARSE_VALIDATE(poll_request,
                                  "{\"supported_sandbox_profiles\":[\"host\",\"UNTRUSTED\"]}", &y,
                                  &err),
                   &err, "supported_sandbox_profiles\" item 1");
        wire_poll_request_free(&y);
        /* a single string is not an array (strict types; mothership §3.2.3 is lenient) */
        assert_err(PARSE_VALIDATE(poll_request, "{\"supported_sandbox_profiles\":\"host\"}", &y,
                                  &err),
                   &err, "must be an array, got string");
}

static void test_poll_request_too_many_profiles(void **state)
{
        err_t err = ERR_INIT;
        wire_poll_request y;
        json_t *j = J("{}");
        json_t *a = json_array();
        for (int i = 0; i <= WIRE_PROFILES_MAX; i++)
                json_array_append_new(a, json_string("host"));
        json_object_set_new(j, "supported_sandbox_profiles", a);
        int rc = wire_poll_request_parse(j, &y, &err);
        json_decref(j);
        assert_err(rc, &err, "has too many items (17, max 16)");
}

/* spec nexus §12 #30 (decode of leases; endpoint path in test_nexus_e2e.py) */
static void test_poll_response_round_trip(void **state)
{
        wire_poll_response x = { 0 }, y;
        x.n_directives = 2;
        x.directives = calloc(2, sizeof(*x.directives));
        assert_non_null(x.directives);
        for (size_t i = 0; i < 2; i++) {
                x.directives[i].directive_id = S(i ? "lease-2" : "lease-1");
                x.directives[i].directive_token = S("tok");
                spec_fill(&x.directives[i].spec);
        }
        x.lease_ttl_seconds = 300;
        x.has_lease_ttl_seconds = true;
        x.retry_after_seconds = 0;
        x.has_retry_after_seconds = true;
        ROUND_TRIP(poll_response, x, y);
        assert_int_equal(y.n_directives, 2);
        assert_string_equal(y.directives[1].directive_id, "lease-2");
        assert_true(spec_equal(&x.directives[1].spec, &y.directives[1].spec));
        assert_true(y.has_retry_after_seconds);
        assert_int_equal(y.retry_after_seconds, 0);
        wire_poll_response_free(&x);
        wire_poll_response_free(&y);
}

/* spec nexus §12 #31 */
static void test_poll_response_empty(void **state)
{
        err_t err = ERR_INIT;
        wire_poll_response y;
        const char *t = "{\"directives\":[],\"lease_ttl_seconds\":300,\"retry_after_seconds\":2}";
        assert_ok(wire_poll_response_parse_text(t, strlen(t), &y, &err), &err);
        assert_int_equal(y.n_directives, 0);
        assert_null(y.directives);
        assert_int_equal(y.retry_after_seconds, 2);
        wire_poll_response_free(&y);
}

static void test_poll_response_missing_directives(void **state)
{
        err_t err = ERR_INIT;
        wire_poll_response y;
        const char *t = "{\"retry_after_seconds\":2}";
        assert_err(wire_poll_response_parse_text(t, strlen(t), &y, &err), &err,
                   "missing required field \"directives\"");
}

static void test_poll_response_bad_lease_names_index(void **state)
{
        err_t err = ERR_INIT;
        wire_poll_response y;
        char *t = str_dup_printf("{\"directives\":[{\"directive_id\":\"a\",\"directive_token\":"
                                 "\"t\",\"spec\":%s},{\"directive_id\":\"b\",\"directive_token\":"
                                 "\"t\",\"spec\":{\"directive_id\":\"b\",\"facility\":{\"id\":"
                                 "\"f\"},\"command\":\"x\",\"limits\":{\"cpu\":true}}}]}",
                                 SPEC_OK);
        assert_non_null(t);
        int rc = wire_poll_response_parse_text(t, strlen(t), &y, &err);
        free(t);
        assert_err(rc, &err,
                   "directives[1]: spec.limits: field \"cpu\" must be an integer, got boolean");
        assert_int_equal(y.n_directives, 0);
}

static void test_poll_response_negative_retry_refused(void **state)
{
        err_t err = ERR_INIT;
        wire_poll_response y;
        const char *t = "{\"directives\":[],\"retry_after_seconds\":-2}";
        assert_err(wire_poll_response_parse_text(t, strlen(t), &y, &err), &err,
                   "field \"retry_after_seconds\" must be >= 0, got -2");
}

static void test_poll_response_too_many_leases(void **state)
{
        err_t err = ERR_INIT;
        wire_poll_response y;
        json_t *j = J("{}");
        json_t *a = json_array();
        for (int i = 0; i <= WIRE_LEASES_MAX; i++)
                json_array_append_new(a, json_object());
        json_object_set_new(j, "directives", a);
        int rc = wire_poll_response_parse(j, &y, &err);
        json_decref(j);
        assert_err(rc, &err, "field \"directives\" has too many items (33, max 32)");
}

/* ── pending command ───────────────────────────────────────────────────────────────────── */

static void test_pending_command_round_trip(void **state)
{
        wire_pending_command x = { 0 }, y;
        x.command_id = S("0190a1b2-0000-7000-8000-000000000001");
        x.capability = S("iot.light.control");
        x.params = J("{\"brightness\":80,\"color\":[255,200,0]}");
        x.bridge_entity_ref = S("light.living_room");
        x.timeout_seconds = 30;
        x.created_at = S("2026-02-27T14:30:22Z");
        ROUND_TRIP(pending_command, x, y);
        assert_true(str_eq(x.command_id, y.command_id));
        assert_true(str_eq(x.capability, y.capability));
        assert_true(json_eq_or_null(x.params, y.params));
        assert_true(str_eq(x.bridge_entity_ref, y.bridge_entity_ref));
        assert_int_equal(y.timeout_seconds, 30);
        assert_true(str_eq(x.created_at, y.created_at));
        wire_pending_command_free(&x);
        wire_pending_command_free(&y);
}

/* mothership §3.2.8: params is an object and bridge_entity_ref is null when unset. */
static void test_pending_command_golden_null_entity(void **state)
{
        err_t err = ERR_INIT;
        wire_pending_command x = { 0 };
        x.command_id = S("c1");
        x.capability = S("camera.snap");
        x.timeout_seconds = 30;
        x.created_at = S("2026-02-27T14:30:22Z");
        json_t *j = wire_pending_command_to_json(&x, &err);
        assert_dump(j, "{\"command_id\":\"c1\",\"capability\":\"camera.snap\",\"params\":{},"
                       "\"bridge_entity_ref\":null,\"timeout_seconds\":30,"
                       "\"created_at\":\"2026-02-27T14:30:22Z\"}");
        json_decref(j);
        wire_pending_command_free(&x);
}

static void test_pending_command_timeout_out_of_range(void **state)
{
        err_t err = ERR_INIT;
        wire_pending_command y;
        assert_err(PARSE_VALIDATE(pending_command,
                                  "{\"command_id\":\"c\",\"capability\":\"camera.snap\","
                                  "\"timeout_seconds\":301,\"created_at\":\"2026-02-27T14:30:22Z\"}",
                                  &y, &err),
                   &err, "field \"timeout_seconds\" must be in 1..300, got 301");
        wire_pending_command_free(&y);
        assert_err(PARSE_VALIDATE(pending_command,
                                  "{\"command_id\":\"c\",\"capability\":\"camera.snap\","
                                  "\"timeout_seconds\":0,\"created_at\":\"2026-02-27T14:30:22Z\"}",
                                  &y, &err),
                   &err, "field \"timeout_seconds\" must be in 1..300, got 0");
        wire_pending_command_free(&y);
}

static void test_pending_command_missing_created_at(void **state)
{
        err_t err = ERR_INIT;
        wire_pending_command y;
        assert_err(PARSE_VALIDATE(pending_command,
                                  "{\"command_id\":\"c\",\"capability\":\"camera.snap\","
                                  "\"timeout_seconds\":30}", &y, &err),
                   &err, "missing required field \"created_at\"");
}

static void test_pending_command_capability_with_space_refused(void **state)
{
        err_t err = ERR_INIT;
        wire_pending_command y;
        assert_err(PARSE_VALIDATE(pending_command,
                                  "{\"command_id\":\"c\",\"capability\":\"camera snap\","
                                  "\"timeout_seconds\":30,\"created_at\":\"2026-02-27T14:30:22Z\"}",
                                  &y, &err),
                   &err, "field \"capability\"");
        wire_pending_command_free(&y);
}

/* ── enrollment ────────────────────────────────────────────────────────────────────────── */

/* spec nexus §12 #32, #47 */
static void test_enroll_request_round_trip(void **state)
{
        wire_enroll_request x = { 0 }, y;
        x.enroll_token = S("et_0123456789abcdef");
        x.name = S("build-box-1");
        x.kind = WIRE_KIND_DESKTOP;
        x.platform = S("linux-amd64");
        x.display_name = S("Build box \xc3\xa9t\xc3\xa9");
        x.labels = J("{\"rack\":\"b2\",\"gpu\":\"none\"}");
        x.metadata = J("{\"capacity\":{\"max_concurrent\":4}}");
        x.csr_pem = S("-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n");
        ROUND_TRIP(enroll_request, x, y);
        assert_true(str_eq(x.enroll_token, y.enroll_token));
        assert_true(str_eq(x.name, y.name));
        assert_int_equal(y.kind, WIRE_KIND_DESKTOP);
        assert_true(str_eq(x.platform, y.platform));
        assert_true(str_eq(x.display_name, y.display_name));
        assert_true(json_eq_or_null(x.labels, y.labels));
        assert_true(json_eq_or_null(x.metadata, y.metadata));
        assert_true(str_eq(x.csr_pem, y.csr_pem));
        wire_enroll_request_free(&x);
        wire_enroll_request_free(&y);
}

/* nexus §3.1: name and labels are omitted when empty; kind omitted when unset. */
/* spec nexus §12 #47 */
static void test_enroll_request_golden_omits_empty(void **state)
{
        err_t err = ERR_INIT;
        wire_enroll_request x = { 0 };
        x.enroll_token = S("tok");
        x.name = S("");
        x.labels = json_object();
        json_t *j = wire_enroll_request_to_json(&x, &err);
        assert_dump(j, "{\"enroll_token\":\"tok\"}");
        json_decref(j);
        wire_enroll_request_free(&x);
}

static void test_enroll_request_bad_kind(void **state)
{
        err_t err = ERR_INIT;
        wire_enroll_request y;
        assert_err(PARSE_VALIDATE(enroll_request, "{\"enroll_token\":\"t\",\"kind\":\"robot\"}", &y,
                                  &err),
                   &err, "field \"kind\": \"robot\" is not one of server, desktop, mobile, bridge");
}

static void test_enroll_request_missing_token(void **state)
{
        err_t err = ERR_INIT;
        wire_enroll_request y;
        assert_err(PARSE_VALIDATE(enroll_request, "{\"name\":\"n\"}", &y, &err), &err,
                   "missing required field \"enroll_token\"");
}

static void test_enroll_request_csr_oversize(void **state)
{
        err_t err = ERR_INIT;
        wire_enroll_request y;
        char *pem = malloc(WIRE_PEM_MAX + 2);
        assert_non_null(pem);
        memset(pem, 'M', WIRE_PEM_MAX + 1);
        pem[WIRE_PEM_MAX + 1] = '\0';
        json_t *j = J("{\"enroll_token\":\"t\"}");
        json_object_set_new(j, "csr_pem", json_string(pem));
        free(pem);
        int rc = wire_enroll_request_parse(j, &y, &err);
        json_decref(j);
        assert_err(rc, &err, "field \"csr_pem\" is too long (16385 bytes, max 16384)");
}

static void test_enroll_response_round_trip(void **state)
{
        wire_enroll_response x = { 0 }, y;
        x.territory_id = S("0190a1b2-0000-7000-8000-0000000000aa");
        x.kind = WIRE_KIND_SERVER;
        x.mtls_client_cert_pem = S("-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n");
        x.ca_bundle_pem = S("-----BEGIN CERTIFICATE-----\nMIID\n-----END CERTIFICATE-----\n");
        x.config.poll_interval_seconds = 2;
        x.config.has_poll_interval_seconds = true;
        x.config.heartbeat_interval_seconds = 30;
        x.config.has_heartbeat_interval_seconds = true;
        x.config.heartbeat_interval_ws_seconds = 300;
        x.config.has_heartbeat_interval_ws_seconds = true;
        x.config.lease_ttl_seconds = 300;
        x.config.has_lease_ttl_seconds = true;
        x.config.cable_url = S("/cable");
        ROUND_TRIP(enroll_response, x, y);
        assert_true(str_eq(x.territory_id, y.territory_id));
        assert_int_equal(y.kind, WIRE_KIND_SERVER);
        assert_true(str_eq(x.mtls_client_cert_pem, y.mtls_client_cert_pem));
        assert_true(str_eq(x.ca_bundle_pem, y.ca_bundle_pem));
        assert_int_equal(y.config.heartbeat_interval_ws_seconds, 300);
        assert_true(y.config.has_lease_ttl_seconds);
        assert_true(str_eq(x.config.cable_url, y.config.cable_url));
        wire_enroll_response_free(&x);
        wire_enroll_response_free(&y);
}

static void test_enroll_response_missing_config(void **state)
{
        err_t err = ERR_INIT;
        wire_enroll_response y;
        assert_err(PARSE_VALIDATE(enroll_response, "{\"territory_id\":\"t1\"}", &y, &err), &err,
                   "missing required field \"config\"");
}

static void test_enroll_response_config_wrong_type(void **state)
{
        err_t err = ERR_INIT;
        wire_enroll_response y;
        assert_err(PARSE_VALIDATE(enroll_response,
                                  "{\"territory_id\":\"t1\",\"config\":{\"poll_interval_seconds\":"
                                  "\"2\"}}", &y, &err),
                   &err, "config: field \"poll_interval_seconds\" must be an integer, got string");
}

static void test_enroll_response_zero_interval_refused(void **state)
{
        err_t err = ERR_INIT;
        wire_enroll_response y;
        assert_err(PARSE_VALIDATE(enroll_response,
                                  "{\"territory_id\":\"t1\",\"config\":{\"lease_ttl_seconds\":0}}",
                                  &y, &err),
                   &err, "config: field \"lease_ttl_seconds\" must be >= 1, got 0");
        wire_enroll_response_free(&y);
}

/* ── territory heartbeat ───────────────────────────────────────────────────────────────── */

static void test_territory_heartbeat_request_round_trip(void **state)
{
        wire_territory_heartbeat_request x = { 0 }, y;
        x.nexus_version = S("0.1.0");
        x.running_directives_count = 2;
        x.labels = J("{\"env\":\"prod\"}");
        x.capacity = J("{\"max_concurrent\":4,\"sandbox_health\":{\"bwrap\":{\"healthy\":true,"
                       "\"details\":{}}},\"supported_profiles\":[\"host\",\"untrusted\"],"
                       "\"untrusted_driver\":\"bwrap\"}");
        x.runtime_status = J("{\"running_directives\":2}");
        x.capabilities = strlist2("sandbox.exec", "sandbox.bwrap");
        x.bridge_entities = J("[{\"entity_ref\":\"light.kitchen\",\"entity_type\":\"light\","
                              "\"capabilities\":[\"iot.light.control\"],\"state\":{\"on\":true}}]");
        x.telemetry = J("{\"load1\":0}");
        ROUND_TRIP(territory_heartbeat_request, x, y);
        assert_true(str_eq(x.nexus_version, y.nexus_version));
        assert_int_equal(y.running_directives_count, 2);
        assert_true(json_eq_or_null(x.labels, y.labels));
        assert_true(json_eq_or_null(x.capacity, y.capacity));
        assert_true(json_eq_or_null(x.runtime_status, y.runtime_status));
        assert_true(strlist_eq(&x.capabilities, &y.capabilities));
        assert_true(json_eq_or_null(x.bridge_entities, y.bridge_entities));
        assert_true(json_eq_or_null(x.telemetry, y.telemetry));
        wire_territory_heartbeat_request_free(&x);
        wire_territory_heartbeat_request_free(&y);
}

/* nexus §4.3: running_directives_count is always present, even when 0. */
static void test_territory_heartbeat_request_golden_count_always_present(void **state)
{
        err_t err = ERR_INIT;
        wire_territory_heartbeat_request x = { 0 };
        x.nexus_version = S("0.1.0");
        json_t *j = wire_territory_heartbeat_request_to_json(&x, &err);
        assert_dump(j, "{\"nexus_version\":\"0.1.0\",\"running_directives_count\":0}");
        json_decref(j);
        wire_territory_heartbeat_request_free(&x);
}

static void test_territory_heartbeat_request_negative_count(void **state)
{
        err_t err = ERR_INIT;
        wire_territory_heartbeat_request y;
        assert_err(PARSE_VALIDATE(territory_heartbeat_request,
                                  "{\"running_directives_count\":-1}", &y, &err),
                   &err, "field \"running_directives_count\" must be >= 0, got -1");
        wire_territory_heartbeat_request_free(&y);
}

static void test_territory_heartbeat_request_bridge_entity_without_type(void **state)
{
        err_t err = ERR_INIT;
        wire_territory_heartbeat_request y;
        assert_err(PARSE_VALIDATE(territory_heartbeat_request,
                                  "{\"bridge_entities\":[{\"entity_ref\":\"a\",\"entity_type\":"
                                  "\"light\"},{\"entity_ref\":\"b\"}]}", &y, &err),
                   &err, "bridge_entities[1]: missing required field \"entity_type\"");
        wire_territory_heartbeat_request_free(&y);
}

static void test_territory_heartbeat_request_capability_not_string(void **state)
{
        err_t err = ERR_INIT;
        wire_territory_heartbeat_request y;
        assert_err(PARSE_VALIDATE(territory_heartbeat_request,
                                  "{\"capabilities\":[\"camera.snap\",{}]}", &y, &err),
                   &err, "field \"capabilities\" item 1 must be a string, got object");
}

static void test_territory_heartbeat_request_capability_with_space_refused(void **state)
{
        err_t err = ERR_INIT;
        wire_territory_heartbeat_request y;
        assert_err(PARSE_VALIDATE(territory_heartbeat_request,
                                  "{\"capabilities\":[\"camera.snap\",\"camera record\"]}", &y,
                                  &err),
                   &err, "field \"capabilities\" item 1 (\"camera record\") must be printable");
        wire_territory_heartbeat_request_free(&y);
}

static void test_territory_heartbeat_request_capacity_wrong_type(void **state)
{
        err_t err = ERR_INIT;
        wire_territory_heartbeat_request y;
        assert_err(PARSE_VALIDATE(territory_heartbeat_request, "{\"capacity\":[1]}", &y, &err),
                   &err, "field \"capacity\" must be an object, got array");
}

static void test_territory_heartbeat_response_round_trip(void **state)
{
        wire_territory_heartbeat_response x = { 0 }, y;
        x.ok = true;
        x.territory_id = S("t-1");
        x.next_heartbeat_interval_seconds = 300;
        x.websocket_connected = true;
        x.upgrade_available = true;
        x.latest_version = S("0.2.0");
        x.min_compatible_version = S("0.1.0");
        ROUND_TRIP(territory_heartbeat_response, x, y);
        assert_true(y.ok);
        assert_true(str_eq(x.territory_id, y.territory_id));
        assert_int_equal(y.next_heartbeat_interval_seconds, 300);
        assert_true(y.websocket_connected);
        assert_true(y.upgrade_available);
        assert_true(str_eq(x.latest_version, y.latest_version));
        assert_true(str_eq(x.min_compatible_version, y.min_compatible_version));
        wire_territory_heartbeat_response_free(&x);
        wire_territory_heartbeat_response_free(&y);
}

static void test_territory_heartbeat_response_wrong_type(void **state)
{
        err_t err = ERR_INIT;
        wire_territory_heartbeat_response y;
        assert_err(PARSE_VALIDATE(territory_heartbeat_response, "{\"ok\":\"yes\"}", &y, &err),
                   &err, "field \"ok\" must be a boolean, got string");
}

/* nexus §0: unknown response fields are ignored; everything here is optional. */
/* spec nexus §12 #33 */
static void test_territory_heartbeat_response_unknown_and_empty(void **state)
{
        err_t err = ERR_INIT;
        wire_territory_heartbeat_response y;
        assert_ok(PARSE_VALIDATE(territory_heartbeat_response,
                                 "{\"ok\":true,\"protocol_version\":2,\"x\":{}}", &y, &err), &err);
        assert_true(y.ok);
        assert_null(y.territory_id);
        wire_territory_heartbeat_response_free(&y);
        assert_ok(PARSE_VALIDATE(territory_heartbeat_response, "{}", &y, &err), &err);
        wire_territory_heartbeat_response_free(&y);
}

/* ── started ───────────────────────────────────────────────────────────────────────────── */

static void test_started_request_round_trip(void **state)
{
        wire_started_request x = { 0 }, y;
        x.effective_capabilities_summary = J("{\"driver\":\"bwrap\",\"profile\":\"untrusted\","
                                             "\"net\":null,\"fs\":{\"read\":[\"workspace:**\"]}}");
        x.sandbox_version = S("phase1-bwrap");
        x.nexus_version = S("0.1.0");
        x.runtime_ref = S("ctr-1234");
        x.started_at = S("2026-02-23T12:00:00.123456789Z");
        ROUND_TRIP(started_request, x, y);
        assert_true(json_eq_or_null(x.effective_capabilities_summary,
                                    y.effective_capabilities_summary));
        assert_true(str_eq(x.sandbox_version, y.sandbox_version));
        assert_true(str_eq(x.nexus_version, y.nexus_version));
        assert_true(str_eq(x.runtime_ref, y.runtime_ref));
        assert_true(str_eq(x.started_at, y.started_at));
        wire_started_request_free(&x);
        wire_started_request_free(&y);
}

static void test_started_request_bad_timestamp(void **state)
{
        err_t err = ERR_INIT;
        wire_started_request y;
        assert_err(PARSE_VALIDATE(started_request, "{\"started_at\":\"yesterday\"}", &y, &err),
                   &err, "field \"started_at\"");
        wire_started_request_free(&y);
}

static void test_started_request_summary_wrong_type(void **state)
{
        err_t err = ERR_INIT;
        wire_started_request y;
        assert_err(PARSE_VALIDATE(started_request, "{\"effective_capabilities_summary\":\"x\"}",
                                  &y, &err),
                   &err, "field \"effective_capabilities_summary\" must be an object, got string");
}

static void test_started_response_round_trip(void **state)
{
        wire_started_response x = { .ok = true, .duplicate = true }, y;
        x.directive_id = S("d-1");
        x.state = S("running");
        ROUND_TRIP(started_response, x, y);
        assert_true(y.ok);
        assert_true(y.duplicate);
        assert_true(str_eq(x.directive_id, y.directive_id));
        assert_true(str_eq(x.state, y.state));
        wire_started_response_free(&x);
        wire_started_response_free(&y);
}

static void test_started_response_missing_duplicate(void **state)
{
        err_t err = ERR_INIT;
        wire_started_response y;
        assert_err(PARSE_VALIDATE(started_response,
                                  "{\"ok\":true,\"directive_id\":\"d\",\"state\":\"running\"}", &y,
                                  &err),
                   &err, "missing required field \"duplicate\"");
}

/* ── directive heartbeat ───────────────────────────────────────────────────────────────── */

static void test_directive_heartbeat_request_round_trip(void **state)
{
        wire_directive_heartbeat_request x = { 0 }, y;
        x.progress = J("{\"state\":\"running\"}");
        x.last_output_seq = 17;
        x.has_last_output_seq = true;
        x.now = S("2026-02-23T12:00:10Z");
        ROUND_TRIP(directive_heartbeat_request, x, y);
        assert_true(json_eq_or_null(x.progress, y.progress));
        assert_true(y.has_last_output_seq);
        assert_int_equal(y.last_output_seq, 17);
        assert_true(str_eq(x.now, y.now));
        wire_directive_heartbeat_request_free(&x);
        wire_directive_heartbeat_request_free(&y);
}

static void test_directive_heartbeat_request_negative_seq(void **state)
{
        err_t err = ERR_INIT;
        wire_directive_heartbeat_request y;
        assert_err(PARSE_VALIDATE(directive_heartbeat_request, "{\"last_output_seq\":-5}", &y,
                                  &err),
                   &err, "field \"last_output_seq\" must be >= 0, got -5");
        wire_directive_heartbeat_request_free(&y);
}

static void test_directive_heartbeat_request_bad_now(void **state)
{
        err_t err = ERR_INIT;
        wire_directive_heartbeat_request y;
        assert_err(PARSE_VALIDATE(directive_heartbeat_request,
                                  "{\"now\":\"2026-02-30T12:00:00Z\"}", &y, &err),
                   &err, "field \"now\"");
        wire_directive_heartbeat_request_free(&y);
}

/* spec nexus §12 #35 */
static void test_directive_heartbeat_response_round_trip(void **state)
{
        wire_directive_heartbeat_response x = { .cancel_requested = true, .lease_renewed = true },
                                          y;
        x.directive_token = S("eyJ.new.token");
        ROUND_TRIP(directive_heartbeat_response, x, y);
        assert_true(y.cancel_requested);
        assert_true(y.lease_renewed);
        assert_true(str_eq(x.directive_token, y.directive_token));
        wire_directive_heartbeat_response_free(&x);
        wire_directive_heartbeat_response_free(&y);
}

static void test_directive_heartbeat_response_token_wrong_type(void **state)
{
        err_t err = ERR_INIT;
        wire_directive_heartbeat_response y;
        assert_err(PARSE_VALIDATE(directive_heartbeat_response,
                                  "{\"cancel_requested\":false,\"directive_token\":42}", &y, &err),
                   &err, "field \"directive_token\" must be a string, got integer");
}

/* ── log chunks ────────────────────────────────────────────────────────────────────────── */

/* spec nexus §12 #53 */
static void test_log_chunk_request_round_trip(void **state)
{
        static const char payload[] = "line 1\n\x00\xff binary\n";
        wire_log_chunk_request x = { .stream = WIRE_STREAM_STDERR, .seq = 42, .truncated = true },
                               y;
        x.bytes_len = sizeof(payload) - 1;
        x.bytes = B(payload, x.bytes_len);
        ROUND_TRIP(log_chunk_request, x, y);
        assert_int_equal(y.stream, WIRE_STREAM_STDERR);
        assert_int_equal(y.seq, 42);
        assert_true(y.truncated);
        assert_true(bytes_eq(x.bytes, x.bytes_len, y.bytes, y.bytes_len));
        wire_log_chunk_request_free(&x);
        wire_log_chunk_request_free(&y);
}

/* nexus §4.3: seq always present (even 0); truncated omitted when false. */
/* spec nexus §12 #36 */
static void test_log_chunk_request_golden(void **state)
{
        err_t err = ERR_INIT;
        wire_log_chunk_request x = { .stream = WIRE_STREAM_STDOUT, .seq = 0 };
        x.bytes_len = 3;
        x.bytes = B("hi\n", 3);
        json_t *j = wire_log_chunk_request_to_json(&x, &err);
        assert_dump(j, "{\"stream\":\"stdout\",\"seq\":0,\"bytes\":\"aGkK\"}");
        json_decref(j);
        wire_log_chunk_request_free(&x);
}

static void test_log_chunk_request_bad_stream(void **state)
{
        err_t err = ERR_INIT;
        wire_log_chunk_request y;
        assert_err(PARSE_VALIDATE(log_chunk_request,
                                  "{\"stream\":\"stdin\",\"seq\":0,\"bytes\":\"aGkK\"}", &y, &err),
                   &err, "field \"stream\": \"stdin\" is not one of stdout, stderr");
}

static void test_log_chunk_request_negative_seq(void **state)
{
        err_t err = ERR_INIT;
        wire_log_chunk_request y;
        assert_err(PARSE_VALIDATE(log_chunk_request,
                                  "{\"stream\":\"stdout\",\"seq\":-1,\"bytes\":\"aGkK\"}", &y, &err),
                   &err, "field \"seq\" must be >= 0, got -1");
        wire_log_chunk_request_free(&y);
}

static void test_log_chunk_request_seq_as_string_refused(void **state)
{
        err_t err = ERR_INIT;
        wire_log_chunk_request y;
        assert_err(PARSE_VALIDATE(log_chunk_request,
                                  "{\"stream\":\"stdout\",\"seq\":\"1\",\"bytes\":\"aGkK\"}", &y,
                                  &err),
                   &err, "field \"seq\" must be an integer, got string");
}

static void test_log_chunk_request_bad_base64(void **state)
{
        static const char *const bad[] = { "aGk", "aGk=\n", "aG!K", "QR==", "a===",
                                           "aGkK====" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                err_t err = ERR_INIT;
                wire_log_chunk_request y;
                json_t *j = J("{\"stream\":\"stdout\",\"seq\":1}");
                json_object_set_new(j, "bytes", json_string(bad[i]));
                int rc = wire_log_chunk_request_parse(j, &y, &err);
                json_decref(j);
                assert_err(rc, &err, "field \"bytes\": base64");
                assert_null(y.bytes);
        }
}

static void test_log_chunk_request_oversize_chunk(void **state)
{
        err_t err = ERR_INIT;
        wire_log_chunk_request y;
        json_t *j = J("{\"stream\":\"stdout\",\"seq\":1,\"bytes\":\"aGVsbG8gd29ybGQ=\"}");
        int rc = wire_log_chunk_request_parse_capped(j, 10, &y, &err);
        assert_err(rc, &err, "field \"bytes\": base64: decoded size 11 exceeds the limit");
        assert_string_equal(err.code, ERR_TOO_LARGE);
        assert_ok(wire_log_chunk_request_parse_capped(j, 11, &y, &err), &err);
        assert_int_equal(y.bytes_len, 11);
        assert_memory_equal(y.bytes, "hello world", 11);
        wire_log_chunk_request_free(&y);
        json_decref(j);
}

static void test_log_chunk_request_missing_bytes(void **state)
{
        err_t err = ERR_INIT;
        wire_log_chunk_request y;
        assert_err(PARSE_VALIDATE(log_chunk_request, "{\"stream\":\"stdout\",\"seq\":1}", &y,
                                  &err),
                   &err, "missing required field \"bytes\"");
}

static void test_log_chunk_request_unset_stream_not_serialised(void **state)
{
        err_t err = ERR_INIT;
        wire_log_chunk_request x = { .stream = WIRE_STREAM_NONE };
        assert_err(wire_log_chunk_request_validate(&x, &err), &err,
                   "field \"stream\" must be stdout or stderr");
        json_t *j = wire_log_chunk_request_to_json(&x, &err);
        assert_null(j);
        assert_non_null(strstr(err.msg, "stream"));
}

static void test_log_chunk_response_round_trip(void **state)
{
        wire_log_chunk_response x = { .ok = true, .stream = WIRE_STREAM_STDOUT, .seq = 9,
                                      .stored = true, .duplicate = false,
                                      .accepted_bytes = 4096, .truncated = true },
                                y;
        x.directive_id = S("d-1");
        ROUND_TRIP(log_chunk_response, x, y);
        assert_true(y.ok);
        assert_true(str_eq(x.directive_id, y.directive_id));
        assert_int_equal(y.stream, WIRE_STREAM_STDOUT);
        assert_int_equal(y.seq, 9);
        assert_true(y.stored);
        assert_false(y.duplicate);
        assert_int_equal(y.accepted_bytes, 4096);
        assert_true(y.truncated);
        wire_log_chunk_response_free(&x);
        wire_log_chunk_response_free(&y);
}

static void test_log_chunk_response_missing_stored(void **state)
{
        err_t err = ERR_INIT;
        wire_log_chunk_response y;
        assert_err(PARSE_VALIDATE(log_chunk_response,
                                  "{\"ok\":true,\"directive_id\":\"d\",\"stream\":\"stdout\","
                                  "\"seq\":1,\"duplicate\":false,\"accepted_bytes\":1,"
                                  "\"truncated\":false}", &y, &err),
                   &err, "missing required field \"stored\"");
}

static void test_log_chunk_response_negative_accepted(void **state)
{
        err_t err = ERR_INIT;
        wire_log_chunk_response y;
        assert_err(PARSE_VALIDATE(log_chunk_response,
                                  "{\"ok\":true,\"directive_id\":\"d\",\"stream\":\"stdout\","
                                  "\"seq\":1,\"stored\":true,\"duplicate\":false,"
                                  "\"accepted_bytes\":-3,\"truncated\":false}", &y, &err),
                   &err, "field \"accepted_bytes\" must be >= 0, got -3");
        wire_log_chunk_response_free(&y);
}

/* ── finished ──────────────────────────────────────────────────────────────────────────── */

static bool finished_equal(const wire_finished_request *a, const wire_finished_request *b)
{
        return a->has_exit_code == b->has_exit_code &&
               (!a->has_exit_code || a->exit_code == b->exit_code) && a->status == b->status &&
               a->stdout_truncated == b->stdout_truncated &&
               a->stderr_truncated == b->stderr_truncated &&
               a->diff_truncated == b->diff_truncated &&
               str_eq(a->snapshot_before, b->snapshot_before) &&
               str_eq(a->snapshot_after, b->snapshot_after) &&
               json_eq_or_null(a->artifacts_manifest, b->artifacts_manifest) &&
               bytes_eq(a->diff, a->diff_len, b->diff, b->diff_len) &&
               str_eq(a->finished_at, b->finished_at);
}

static void test_finished_request_round_trip(void **state)
{
        static const char diff[] = "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n";
        wire_finished_request x = { .exit_code = 124, .has_exit_code = true,
                                    .status = WIRE_STATUS_TIMED_OUT, .stdout_truncated = true,
                                    .stderr_truncated = true, .diff_truncated = true },
                              y;
        x.snapshot_before = S("3f2c1a0b9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b");
        x.snapshot_after = S("4f2c1a0b9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b");
        x.artifacts_manifest = J("{\"log_overflow\":{\"stdout_path\":\"/workspace/.nexus-logs/d/"
                                 "stdout.log\",\"stdout_bytes\":10}}");
        x.diff_len = sizeof(diff) - 1;
        x.diff = B(diff, x.diff_len);
        x.finished_at = S("2026-02-23T12:05:00.5Z");
        ROUND_TRIP(finished_request, x, y);
        assert_true(finished_equal(&x, &y));
        wire_finished_request_free(&x);
        wire_finished_request_free(&y);
}

/* nexus §4.3: exit_code always present, false flags and empty diff omitted, manifest {}. */
/* spec nexus §12 #37, #48 */
static void test_finished_request_golden_daemon_shape(void **state)
{
        err_t err = ERR_INIT;
        wire_finished_request x = { .exit_code = 0, .has_exit_code = true,
                                    .status = WIRE_STATUS_SUCCEEDED };
        x.finished_at = S("2026-02-23T12:00:00.123456789Z");
        json_t *j = wire_finished_request_to_json(&x, &err);
        assert_dump(j, "{\"exit_code\":0,\"status\":\"succeeded\",\"artifacts_manifest\":{},"
                       "\"finished_at\":\"2026-02-23T12:00:00.123456789Z\"}");
        json_decref(j);
        wire_finished_request_free(&x);
}

/* spec nexus §12 #49 */
static void test_finished_request_unknown_exit_code_is_null(void **state)
{
        err_t err = ERR_INIT;
        wire_finished_request x = { .status = WIRE_STATUS_FAILED }, y;
        json_t *j = wire_finished_request_to_json(&x, &err);
        assert_dump(j, "{\"exit_code\":null,\"status\":\"failed\",\"artifacts_manifest\":{}}");
        json_decref(j);
        assert_ok(PARSE_VALIDATE(finished_request, "{\"status\":\"failed\"}", &y, &err), &err);
        assert_false(y.has_exit_code);
        wire_finished_request_free(&y);
        assert_ok(PARSE_VALIDATE(finished_request, "{\"status\":\"failed\",\"exit_code\":null}", &y,
                                 &err), &err);
        assert_false(y.has_exit_code);
        wire_finished_request_free(&y);
}

static void test_finished_request_bad_status(void **state)
{
        err_t err = ERR_INIT;
        wire_finished_request y;
        assert_err(PARSE_VALIDATE(finished_request, "{\"status\":\"done\",\"exit_code\":0}", &y,
                                  &err),
                   &err, "field \"status\": \"done\" is not one of succeeded, failed, canceled, "
                         "timed_out");
        assert_err(PARSE_VALIDATE(finished_request, "{\"exit_code\":0}", &y, &err), &err,
                   "missing required field \"status\"");
}

static void test_finished_request_exit_code_wrong_type(void **state)
{
        err_t err = ERR_INIT;
        wire_finished_request y;
        assert_err(PARSE_VALIDATE(finished_request, "{\"status\":\"failed\",\"exit_code\":\"abc\"}",
                                  &y, &err),
                   &err, "field \"exit_code\" must be an integer, got string");
        assert_err(PARSE_VALIDATE(finished_request, "{\"status\":\"failed\",\"exit_code\":true}",
                                  &y, &err),
                   &err, "field \"exit_code\" must be an integer, got boolean");
}

static void test_finished_request_exit_code_out_of_int32(void **state)
{
        err_t err = ERR_INIT;
        wire_finished_request y;
        assert_err(PARSE_VALIDATE(finished_request,
                                  "{\"status\":\"failed\",\"exit_code\":4294967296}", &y, &err),
                   &err, "exit_code");
        wire_finished_request_free(&y);
}

static void test_finished_request_bad_diff_base64(void **state)
{
        err_t err = ERR_INIT;
        wire_finished_request y;
        assert_err(PARSE_VALIDATE(finished_request,
                                  "{\"status\":\"succeeded\",\"diff_base64\":\"ZGlmZg\"}", &y, &err),
                   &err, "field \"diff_base64\": base64: length 6 is not a multiple of 4");
        assert_null(y.diff);
}

static void test_finished_request_diff_oversize(void **state)
{
        err_t err = ERR_INIT;
        wire_finished_request y;
        json_t *j = J("{\"status\":\"succeeded\",\"diff_base64\":\"ZGlmZiBkaWZm\"}");
        int rc = wire_finished_request_parse_capped(j, 8, &y, &err);
        assert_err(rc, &err, "field \"diff_base64\": base64: decoded size 9 exceeds");
        assert_string_equal(err.code, ERR_TOO_LARGE);
        assert_ok(wire_finished_request_parse(j, &y, &err), &err);
        assert_int_equal(y.diff_len, 9);
        assert_memory_equal(y.diff, "diff diff", 9);
        wire_finished_request_free(&y);
        json_decref(j);
}

/* mothership §3.2.7: blank diff_base64 means no diff, and is not re-sent. */
static void test_finished_request_empty_diff_omitted(void **state)
{
        err_t err = ERR_INIT;
        wire_finished_request y;
        assert_ok(PARSE_VALIDATE(finished_request,
                                 "{\"status\":\"succeeded\",\"exit_code\":0,\"diff_base64\":\"\"}",
                                 &y, &err), &err);
        assert_int_equal(y.diff_len, 0);
        json_t *j = wire_finished_request_to_json(&y, &err);
        assert_null(json_object_get(j, "diff_base64"));
        json_decref(j);
        wire_finished_request_free(&y);
}

static void test_finished_request_bad_finished_at(void **state)
{
        err_t err = ERR_INIT;
        wire_finished_request y;
        assert_err(PARSE_VALIDATE(finished_request,
                                  "{\"status\":\"failed\",\"finished_at\":\"2026-13-01T00:00:00Z\"}",
                                  &y, &err),
                   &err, "field \"finished_at\": rfc3339: month 13 out of range");
        wire_finished_request_free(&y);
}

static void test_finished_request_manifest_wrong_type(void **state)
{
        err_t err = ERR_INIT;
        wire_finished_request y;
        assert_err(PARSE_VALIDATE(finished_request,
                                  "{\"status\":\"failed\",\"artifacts_manifest\":[]}", &y, &err),
                   &err, "field \"artifacts_manifest\" must be an object, got array");
}

static void test_finished_request_parse_text(void **state)
{
        err_t err = ERR_INIT;
        wire_finished_request y;
        const char *t = "{\"exit_code\":137,\"status\":\"canceled\",\"stderr_truncated\":true,"
                        "\"artifacts_manifest\":{},\"diff_base64\":\"YQ==\","
                        "\"finished_at\":\"2026-02-23T12:00:00Z\"}";
        assert_ok(wire_finished_request_parse_text(t, strlen(t), &y, &err), &err);
        assert_int_equal(y.exit_code, 137);
        assert_int_equal(y.status, WIRE_STATUS_CANCELED);
        assert_true(y.stderr_truncated);
        assert_false(y.stdout_truncated);
        assert_int_equal(y.diff_len, 1);
        assert_int_equal(y.diff[0], 'a');
        wire_finished_request_free(&y);
}

static void test_finished_response_round_trip(void **state)
{
        wire_finished_response x = { .ok = true, .duplicate = true }, y;
        x.directive_id = S("d-1");
        x.final_state = S("timed_out");
        ROUND_TRIP(finished_response, x, y);
        assert_true(y.ok);
        assert_true(y.duplicate);
        assert_true(str_eq(x.directive_id, y.directive_id));
        assert_true(str_eq(x.final_state, y.final_state));
        wire_finished_response_free(&x);
        wire_finished_response_free(&y);
}

static void test_finished_response_missing_final_state(void **state)
{
        err_t err = ERR_INIT;
        wire_finished_response y;
        assert_err(PARSE_VALIDATE(finished_response,
                                  "{\"ok\":true,\"directive_id\":\"d\",\"duplicate\":false}", &y,
                                  &err),
                   &err, "missing required field \"final_state\"");
}

/* ── shared rules ──────────────────────────────────────────────────────────────────────── */

static void test_timestamp_check(void **state)
{
        static const char *const good[] = { "2026-02-27T14:30:22Z", "2026-02-27T14:30:22.123Z",
                                             "2024-02-29T00:00:00.123456789Z",
                                             "2026-02-27T14:30:22+01:00" };
        static const char *const bad[] = { "2026-02-27 14:30:22Z", "2026-02-27T14:30:22",
                                           "2025-02-29T00:00:00Z", "2026-02-27T24:00:00Z",
                                           "2026-02-27T14:30:60Z", "2026-02-27T14:30:22.Z",
                                           "2026-02-27T14:30:22.1234567890Z", "", "1" };
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                err_t err = ERR_INIT;
                assert_ok(wire_timestamp_check(good[i], &err), &err);
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                err_t err = ERR_INIT;
                if (wire_timestamp_check(bad[i], &err) == 0)
                        fail_msg("timestamp \"%s\" was accepted", bad[i]);
        }
}

static void test_id_rule(void **state)
{
        char longid[WIRE_ID_MAX + 2];
        memset(longid, 'a', sizeof(longid) - 1);
        longid[sizeof(longid) - 1] = '\0';
        assert_true(wire_id_is_valid("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"));
        assert_true(wire_id_is_valid("a.b_c-d"));
        assert_false(wire_id_is_valid(".hidden"));
        assert_false(wire_id_is_valid("a/b"));
        assert_false(wire_id_is_valid("a b"));
        assert_false(wire_id_is_valid(""));
        assert_false(wire_id_is_valid(longid));
        longid[WIRE_ID_MAX] = '\0';
        assert_true(wire_id_is_valid(longid));
}

static void test_enum_names_round_trip(void **state)
{
        err_t err = ERR_INIT;
        for (int k = WIRE_KIND_SERVER; k <= WIRE_KIND_BRIDGE; k++) {
                wire_kind out = WIRE_KIND_NONE;
                assert_ok(wire_kind_from_name(wire_kind_name((wire_kind)k), &out, &err), &err);
                assert_int_equal(out, k);
        }
        for (int s = WIRE_STATUS_SUCCEEDED; s <= WIRE_STATUS_TIMED_OUT; s++) {
                wire_status out = WIRE_STATUS_NONE;
                assert_ok(wire_status_from_name(wire_status_name((wire_status)s), &out, &err),
                          &err);
                assert_int_equal(out, s);
        }
        assert_null(wire_status_name(WIRE_STATUS_NONE));
        assert_null(wire_stream_name((wire_stream)7));
        wire_stream st;
        assert_err(wire_stream_from_name("STDOUT", &st, &err), &err, "is not one of");
}

static void test_invalid_utf8_not_serialised(void **state)
{
        err_t err = ERR_INIT;
        wire_started_request x = { 0 };
        x.nexus_version = S("0.1\xff");
        assert_err(wire_started_request_validate(&x, &err), &err,
                   "field \"nexus_version\" is not valid UTF-8");
        json_t *j = wire_started_request_to_json(&x, &err);
        assert_null(j);
        assert_non_null(strstr(err.msg, "nexus_version"));
        wire_started_request_free(&x);
}

static void test_parse_refuses_non_object(void **state)
{
        err_t err = ERR_INIT;
        wire_finished_response y;
        json_t *j = J("[true]");
        assert_err(wire_finished_response_parse(j, &y, &err), &err,
                   "expected a JSON object, got array");
        json_decref(j);
        json_t *s = J_owned(strdup("\"x\""));
        wire_poll_request p;
        assert_err(wire_poll_request_parse(s, &p, &err), &err, "got string");
        json_decref(s);
}

/* ── spec nexus §12 acceptance vectors not covered above ───────────────────────────────── */

/* spec nexus §12 #45 */
static void test_vec_poll_request_two_profiles_claim_five(void **state)
{
        wire_poll_request x = { 0 }, y;
        x.supported_sandbox_profiles = strlist2("host", "untrusted");
        x.max_directives_to_claim = 5;
        ROUND_TRIP(poll_request, x, y);
        assert_int_equal(y.supported_sandbox_profiles.n, 2);
        assert_true(strlist_eq(&x.supported_sandbox_profiles, &y.supported_sandbox_profiles));
        assert_int_equal(y.max_directives_to_claim, 5);
        wire_poll_request_free(&x);
        wire_poll_request_free(&y);
}

/* spec nexus §12 #30, #46 */
static void test_vec_poll_response_lease_and_ttl_300(void **state)
{
        err_t err = ERR_INIT;
        wire_poll_response y;
        json_t *lease = json_object();
        json_t *spec = J(SPEC_OK);
        json_object_set_new(lease, "directive_id", json_string("d-1"));
        json_object_set_new(lease, "directive_token", json_string("jwt-tok"));
        json_object_set_new(lease, "spec", spec);
        json_t *j = json_object();
        json_t *a = json_array();
        json_array_append_new(a, lease);
        json_object_set_new(j, "directives", a);
        json_object_set_new(j, "lease_ttl_seconds", json_integer(300));
        assert_ok(wire_poll_response_parse(j, &y, &err), &err);
        json_decref(j);
        assert_ok(wire_poll_response_validate(&y, &err), &err);
        assert_int_equal(y.n_directives, 1);
        assert_string_equal(y.directives[0].directive_id, "d-1");
        assert_true(y.has_lease_ttl_seconds);
        assert_int_equal(y.lease_ttl_seconds, 300);
        wire_poll_response z;
        ROUND_TRIP(poll_response, y, z);
        assert_int_equal(z.lease_ttl_seconds, 300);
        assert_string_equal(z.directives[0].directive_id, "d-1");
        wire_poll_response_free(&y);
        wire_poll_response_free(&z);
}

/* spec nexus §12 #47 */
static void test_vec_enroll_request_keys_and_no_empty_labels(void **state)
{
        err_t err = ERR_INIT;
        wire_enroll_request x = { 0 };
        x.enroll_token = S("tok");
        x.csr_pem = S("PEM");
        x.labels = json_object();
        json_t *j = wire_enroll_request_to_json(&x, &err);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "enroll_token")), "tok");
        assert_string_equal(json_string_value(json_object_get(j, "csr_pem")), "PEM");
        assert_null(json_object_get(j, "labels"));
        json_decref(j);
        wire_enroll_request_free(&x);
}

/* spec nexus §12 #50 */
static void test_vec_finished_exit_42_failed_stdout_truncated(void **state)
{
        wire_finished_request x = { .exit_code = 42, .has_exit_code = true,
                                    .status = WIRE_STATUS_FAILED, .stdout_truncated = true },
                              y;
        ROUND_TRIP(finished_request, x, y);
        assert_true(y.has_exit_code);
        assert_int_equal(y.exit_code, 42);
        assert_int_equal(y.status, WIRE_STATUS_FAILED);
        assert_true(y.stdout_truncated);
        assert_false(y.stderr_truncated);
        wire_finished_request_free(&x);
        wire_finished_request_free(&y);
}

/* spec nexus §12 #51 (REF differs: REF omits a false cancel_requested; our wire always
 * serialises both booleans (wire.h) and omits an absent directive_token) */
static void test_vec_heartbeat_response_false_and_empty(void **state)
{
        err_t err = ERR_INIT;
        wire_directive_heartbeat_response x = { 0 };
        json_t *j = wire_directive_heartbeat_response_to_json(&x, &err);
        assert_dump(j, "{\"cancel_requested\":false,\"lease_renewed\":false}");
        json_decref(j);
        wire_directive_heartbeat_response_free(&x);
}

/* spec nexus §12 #52 */
static void test_vec_spec_mount_and_net_none_fs_absent(void **state)
{
        wire_directive_spec x = { 0 }, y;
        x.directive_id = S("d1");
        x.facility.id = S("f1");
        x.facility.mount = S("/workspace");
        x.command = S("true");
        x.cap_net = J("{\"mode\":\"none\"}");
        ROUND_TRIP(directive_spec, x, y);
        assert_string_equal(y.facility.mount, "/workspace");
        assert_non_null(y.cap_net);
        assert_string_equal(json_string_value(json_object_get(y.cap_net, "mode")), "none");
        assert_null(y.cap_fs);
        wire_directive_spec_free(&x);
        wire_directive_spec_free(&y);
}

/* spec nexus §12 #36, #53 */
static void test_vec_log_chunk_seq_7_truncated(void **state)
{
        err_t err = ERR_INIT;
        wire_log_chunk_request x = { .stream = WIRE_STREAM_STDOUT, .seq = 7, .truncated = true },
                               y;
        x.bytes_len = 5;
        x.bytes = B("hello", 5);
        json_t *j = wire_log_chunk_request_to_json(&x, &err);
        assert_dump(j, "{\"stream\":\"stdout\",\"seq\":7,\"bytes\":\"aGVsbG8=\",\"truncated\":true}");
        json_decref(j);
        ROUND_TRIP(log_chunk_request, x, y);
        assert_int_equal(y.stream, WIRE_STREAM_STDOUT);
        assert_int_equal(y.seq, 7);
        assert_true(y.truncated);
        assert_true(bytes_eq(x.bytes, x.bytes_len, y.bytes, y.bytes_len));
        wire_log_chunk_request_free(&x);
        wire_log_chunk_request_free(&y);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_limits_round_trip),
                cmocka_unit_test(test_limits_negative_value_refused),
                cmocka_unit_test(test_limits_real_number_refused),
                cmocka_unit_test(test_spec_round_trip),
                cmocka_unit_test(test_spec_minimal_round_trip),
                cmocka_unit_test(test_spec_serialises_empty_sections_as_objects),
                cmocka_unit_test(test_spec_parse_text_accepts_server_shape),
                cmocka_unit_test(test_spec_missing_command),
                cmocka_unit_test(test_spec_limits_wrong_type_names_path),
                cmocka_unit_test(test_spec_facility_missing_id),
                cmocka_unit_test(test_spec_timeout_zero_refused),
                cmocka_unit_test(test_spec_timeout_as_string_refused),
                cmocka_unit_test(test_spec_bad_profile_refused),
                cmocka_unit_test(test_spec_profile_token_accepted),
                cmocka_unit_test(test_spec_command_oversize_refused),
                cmocka_unit_test(test_spec_empty_command_refused),
                cmocka_unit_test(test_spec_invalid_net_capability_refused),
                cmocka_unit_test(test_spec_net_allowlist_with_ip_literal_refused),
                cmocka_unit_test(test_spec_invalid_fs_capability_refused),
                cmocka_unit_test(test_spec_capability_not_object_refused),
                cmocka_unit_test(test_spec_null_net_means_absent),
                cmocka_unit_test(test_spec_artifact_collect_item_not_string),
                cmocka_unit_test(test_spec_directive_id_with_slash_refused),
                cmocka_unit_test(test_spec_nul_in_string_refused),
                cmocka_unit_test(test_spec_unknown_fields_ignored),
                cmocka_unit_test(test_spec_parse_text_refuses_bad_json),
                cmocka_unit_test(test_spec_free_twice_is_safe),
                cmocka_unit_test(test_lease_round_trip),
                cmocka_unit_test(test_lease_missing_token),
                cmocka_unit_test(test_lease_empty_token_refused),
                cmocka_unit_test(test_lease_token_oversize_refused),
                cmocka_unit_test(test_lease_spec_error_has_spec_prefix),
                cmocka_unit_test(test_poll_request_round_trip),
                cmocka_unit_test(test_poll_request_golden_omits_zero_fields),
                cmocka_unit_test(test_poll_request_claim_out_of_range),
                cmocka_unit_test(test_poll_request_wait_out_of_range),
                cmocka_unit_test(test_poll_request_bad_profile_item),
                cmocka_unit_test(test_poll_request_too_many_profiles),
                cmocka_unit_test(test_poll_response_round_trip),
                cmocka_unit_test(test_poll_response_empty),
                cmocka_unit_test(test_poll_response_missing_directives),
                cmocka_unit_test(test_poll_response_bad_lease_names_index),
                cmocka_unit_test(test_poll_response_negative_retry_refused),
                cmocka_unit_test(test_poll_response_too_many_leases),
                cmocka_unit_test(test_pending_command_round_trip),
                cmocka_unit_test(test_pending_command_golden_null_entity),
                cmocka_unit_test(test_pending_command_timeout_out_of_range),
                cmocka_unit_test(test_pending_command_missing_created_at),
                cmocka_unit_test(test_pending_command_capability_with_space_refused),
                cmocka_unit_test(test_enroll_request_round_trip),
                cmocka_unit_test(test_enroll_request_golden_omits_empty),
                cmocka_unit_test(test_enroll_request_bad_kind),
                cmocka_unit_test(test_enroll_request_missing_token),
                cmocka_unit_test(test_enroll_request_csr_oversize),
                cmocka_unit_test(test_enroll_response_round_trip),
                cmocka_unit_test(test_enroll_response_missing_config),
                cmocka_unit_test(test_enroll_response_config_wrong_type),
                cmocka_unit_test(test_enroll_response_zero_interval_refused),
                cmocka_unit_test(test_territory_heartbeat_request_round_trip),
                cmocka_unit_test(test_territory_heartbeat_request_golden_count_always_present),
                cmocka_unit_test(test_territory_heartbeat_request_negative_count),
                cmocka_unit_test(test_territory_heartbeat_request_bridge_entity_without_type),
                cmocka_unit_test(test_territory_heartbeat_request_capability_not_string),
                cmocka_unit_test(test_territory_heartbeat_request_capability_with_space_refused),
                cmocka_unit_test(test_territory_heartbeat_request_capacity_wrong_type),
                cmocka_unit_test(test_territory_heartbeat_response_round_trip),
                cmocka_unit_test(test_territory_heartbeat_response_wrong_type),
                cmocka_unit_test(test_territory_heartbeat_response_unknown_and_empty),
                cmocka_unit_test(test_started_request_round_trip),
                cmocka_unit_test(test_started_request_bad_timestamp),
                cmocka_unit_test(test_started_request_summary_wrong_type),
                cmocka_unit_test(test_started_response_round_trip),
                cmocka_unit_test(test_started_response_missing_duplicate),
                cmocka_unit_test(test_directive_heartbeat_request_round_trip),
                cmocka_unit_test(test_directive_heartbeat_request_negative_seq),
                cmocka_unit_test(test_directive_heartbeat_request_bad_now),
                cmocka_unit_test(test_directive_heartbeat_response_round_trip),
                cmocka_unit_test(test_directive_heartbeat_response_token_wrong_type),
                cmocka_unit_test(test_log_chunk_request_round_trip),
                cmocka_unit_test(test_log_chunk_request_golden),
                cmocka_unit_test(test_log_chunk_request_bad_stream),
                cmocka_unit_test(test_log_chunk_request_negative_seq),
                cmocka_unit_test(test_log_chunk_request_seq_as_string_refused),
                cmocka_unit_test(test_log_chunk_request_bad_base64),
                cmocka_unit_test(test_log_chunk_request_oversize_chunk),
                cmocka_unit_test(test_log_chunk_request_missing_bytes),
                cmocka_unit_test(test_log_chunk_request_unset_stream_not_serialised),
                cmocka_unit_test(test_log_chunk_response_round_trip),
                cmocka_unit_test(test_log_chunk_response_missing_stored),
                cmocka_unit_test(test_log_chunk_response_negative_accepted),
                cmocka_unit_test(test_finished_request_round_trip),
                cmocka_unit_test(test_finished_request_golden_daemon_shape),
                cmocka_unit_test(test_finished_request_unknown_exit_code_is_null),
                cmocka_unit_test(test_finished_request_bad_status),
                cmocka_unit_test(test_finished_request_exit_code_wrong_type),
                cmocka_unit_test(test_finished_request_exit_code_out_of_int32),
                cmocka_unit_test(test_finished_request_bad_diff_base64),
                cmocka_unit_test(test_finished_request_diff_oversize),
                cmocka_unit_test(test_finished_request_empty_diff_omitted),
                cmocka_unit_test(test_finished_request_bad_finished_at),
                cmocka_unit_test(test_finished_request_manifest_wrong_type),
                cmocka_unit_test(test_finished_request_parse_text),
                cmocka_unit_test(test_finished_response_round_trip),
                cmocka_unit_test(test_finished_response_missing_final_state),
                cmocka_unit_test(test_timestamp_check),
                cmocka_unit_test(test_id_rule),
                cmocka_unit_test(test_enum_names_round_trip),
                cmocka_unit_test(test_invalid_utf8_not_serialised),
                cmocka_unit_test(test_parse_refuses_non_object),
                cmocka_unit_test(test_vec_poll_request_two_profiles_claim_five),
                cmocka_unit_test(test_vec_poll_response_lease_and_ttl_300),
                cmocka_unit_test(test_vec_enroll_request_keys_and_no_empty_labels),
                cmocka_unit_test(test_vec_finished_exit_42_failed_stdout_truncated),
                cmocka_unit_test(test_vec_heartbeat_response_false_and_empty),
                cmocka_unit_test(test_vec_spec_mount_and_net_none_fs_absent),
                cmocka_unit_test(test_vec_log_chunk_seq_7_truncated),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
