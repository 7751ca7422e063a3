/* Unit tests for src/mothership/http/router.c: pattern validation, matching, params, decoding. */
#include "testutil.h"

#include <string.h>

#include "http/router.h"

static int dummy_handler(ms_http_req *req, void *ctx)
{
        (void)req;
        (void)ctx;
        return 200;
}

static ms_http_router *router_with(const char *const *pairs, size_t n)
{
        ms_http_router *r = ms_http_router_new();
        assert_non_null(r);
        for (size_t i = 0; i < n; i++) {
                err_t err = ERR_INIT;
                ms_http_route rt = { .method = pairs[2 * i], .pattern = pairs[2 * i + 1],
                                     .handler = dummy_handler };
                assert_int_equal(ms_http_router_add(r, &rt, &err), 0);
        }
        return r;
}

static const char *const spec_routes[] = {
        "POST", "/conduits/v1/territories/enroll",
        "POST", "/conduits/v1/polls",
        "POST", "/conduits/v1/directives/{id}/started",
        "POST", "/conduits/v1/directives/{id}/finished",
        "GET", "/mothership/api/v1/facilities/{facility_id}/directives/{id}",
        "GET", "/up",
        "GET", "/",
};
#define NSPEC (sizeof(spec_routes) / sizeof(spec_routes[0]) / 2)

static void test_literal_route_matches(void **state)
{
        (void)state;
        ms_http_router *r = router_with(spec_routes, NSPEC);
        ms_http_match m;
        err_t err = ERR_INIT;
        assert_int_equal(ms_http_router_match(r, "POST", "/conduits/v1/polls", &m, &err), 1);
        assert_string_equal(m.route->pattern, "/conduits/v1/polls");
        assert_int_equal(m.nparams, 0);
        ms_http_router_free(r);
}

static void test_param_route_extracts_id(void **state)
{
        (void)state;
        ms_http_router *r = router_with(spec_routes, NSPEC);
        ms_http_match m;
        err_t err = ERR_INIT;
        assert_int_equal(ms_http_router_match(r, "POST",
                                              "/conduits/v1/directives/0195abc/finished", &m,
                                              &err), 1);
        assert_string_equal(m.route->pattern, "/conduits/v1/directives/{id}/finished");
        assert_string_equal(ms_http_match_param(&m, "id"), "0195abc");
        assert_null(ms_http_match_param(&m, "nope"));
        ms_http_router_free(r);
}

static void test_two_params_extracted_by_name(void **state)
{
        (void)state;
        ms_http_router *r = router_with(spec_routes, NSPEC);
        ms_http_match m;
        err_t err = ERR_INIT;
        assert_int_equal(ms_http_router_match(r, "GET",
                                              "/mothership/api/v1/facilities/F1/directives/D2",
                                              &m, &err), 1);
        assert_string_equal(ms_http_match_param(&m, "facility_id"), "F1");
        assert_string_equal(ms_http_match_param(&m, "id"), "D2");
        ms_http_router_free(r);
}

static void test_unknown_path_is_no_route(void **state)
{
        (void)state;
        ms_http_router *r = router_with(spec_routes, NSPEC);
        ms_http_match m;
        err_t err = ERR_INIT;
        assert_int_equal(ms_http_router_match(r, "POST", "/conduits/v1/nothing", &m, &err), 0);
        assert_null(m.route);
        ms_http_router_free(r);
}

static void test_wrong_method_is_no_route(void **state)
{
        (void)state;
        ms_http_router *r = router_with(spec_routes, NSPEC);
        ms_http_match m;
        err_t err = ERR_INIT;
        /* spec §3.0: any other path/method combination → 404 */
        assert_int_equal(ms_http_router_match(r, "GET", "/conduits/v1/polls", &m, &err), 0);
        assert_int_equal(ms_http_router_match(r, "DELETE", "/up", &m, &err), 0);
        ms_http_router_free(r);
}

static void test_head_falls_back_to_get(void **state)
{
        (void)state;
        ms_http_router *r = router_with(spec_routes, NSPEC);
        ms_http_match m;
        err_t err = ERR_INIT;
        assert_int_equal(ms_http_router_match(r, "HEAD", "/up", &m, &err), 1);
        assert_string_equal(m.route->method, "GET");
        /* but never to POST */
        assert_int_equal(ms_http_router_match(r, "HEAD", "/conduits/v1/polls", &m, &err), 0);
        ms_http_router_free(r);
}

static void test_segments_match_exactly(void **state)
{
        (void)state;
        ms_http_router *r = router_with(spec_routes, NSPEC);
        ms_http_match m;
        err_t err = ERR_INIT;
        assert_int_equal(ms_http_router_match(r, "GET", "/up/", &m, &err), 0);
        assert_int_equal(ms_http_router_match(r, "GET", "/upx", &m, &err), 0);
        assert_int_equal(ms_http_router_match(r, "GET", "//up", &m, &err), 0);
        assert_int_equal(ms_http_router_match(r, "GET", "/UP", &m, &err), 0);
        assert_int_equal(ms_http_router_match(r, "POST", "/conduits/v1/directives//finished", &m,
                                              &err), 0);
        assert_int_equal(ms_http_router_match(r, "POST",
                                              "/conduits/v1/directives/a/b/finished", &m, &err),
                         0);
        assert_int_equal(ms_http_router_match(r, "GET", "/", &m, &err), 1);
        ms_http_router_free(r);
}

static void test_param_is_percent_decoded(void **state)
{
        (void)state;
        ms_http_router *r = router_with(spec_routes, NSPEC);
        ms_http_match m;
        err_t err = ERR_INIT;
        assert_int_equal(ms_http_router_match(r, "POST",
                                              "/conduits/v1/directives/a%20b%7e/started", &m,
                                              &err), 1);
        assert_string_equal(ms_http_match_param(&m, "id"), "a b~");
        ms_http_router_free(r);
}

static void test_literal_segment_is_compared_decoded(void **state)
{
        (void)state;
        ms_http_router *r = router_with(spec_routes, NSPEC);
        ms_http_match m;
        err_t err = ERR_INIT;
        assert_int_equal(ms_http_router_match(r, "POST", "/conduits/v1/%70olls", &m, &err), 1);
        assert_string_equal(m.route->pattern, "/conduits/v1/polls");
        ms_http_router_free(r);
}

static void test_malformed_percent_encoding_is_bad_request(void **state)
{
        (void)state;
        ms_http_router *r = router_with(spec_routes, NSPEC);
        ms_http_match m;
        static const char *const bad[] = {
                "/conduits/v1/directives/%zz/started",
                "/conduits/v1/directives/abc%/started",
                "/conduits/v1/directives/abc%4/started",
                "/up%",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                err_t err = ERR_INIT;
                assert_int_equal(ms_http_router_match(r, "POST", bad[i], &m, &err), -1);
                assert_non_null(strstr(err.msg, "percent-encoding"));
                assert_null(m.route);
        }
        ms_http_router_free(r);
}

static void test_param_with_encoded_slash_refused(void **state)
{
        (void)state;
        ms_http_router *r = router_with(spec_routes, NSPEC);
        ms_http_match m;
        err_t err = ERR_INIT;
        assert_int_equal(ms_http_router_match(r, "POST",
                                              "/conduits/v1/directives/..%2F..%2Fx/started", &m,
                                              &err), -1);
        assert_non_null(strstr(err.msg, "'/'"));
        ms_http_router_free(r);
}

static void test_param_with_encoded_nul_refused(void **state)
{
        (void)state;
        ms_http_router *r = router_with(spec_routes, NSPEC);
        ms_http_match m;
        err_t err = ERR_INIT;
        assert_int_equal(ms_http_router_match(r, "POST",
                                              "/conduits/v1/directives/ab%00cd/started", &m,
                                              &err), -1);
        assert_non_null(strstr(err.msg, "NUL"));
        ms_http_router_free(r);
}

static void test_param_over_256_bytes_refused(void **state)
{
        (void)state;
        ms_http_router *r = router_with(spec_routes, NSPEC);
        ms_http_match m;
        char path[600];
        char id[300];
        memset(id, 'a', 257);
        id[257] = '\0';
        assert_true(snprintf(path, sizeof(path), "/conduits/v1/directives/%s/started", id) > 0);
        err_t err = ERR_INIT;
        assert_int_equal(ms_http_router_match(r, "POST", path, &m, &err), -1);
        assert_non_null(strstr(err.msg, "longer than 256"));
        /* exactly 256 is fine */
        id[256] = '\0';
        assert_true(snprintf(path, sizeof(path), "/conduits/v1/directives/%s/started", id) > 0);
        assert_int_equal(ms_http_router_match(r, "POST", path, &m, &err), 1);
        assert_int_equal(strlen(ms_http_match_param(&m, "id")), 256);
        ms_http_router_free(r);
}

static void test_first_registered_route_wins(void **state)
{
        (void)state;
        static const char *const routes[] = {
                "GET", "/commands/pending",
                "GET", "/commands/{id}",
        };
        ms_http_router *r = router_with(routes, 2);
        ms_http_match m;
        err_t err = ERR_INIT;
        assert_int_equal(ms_http_router_match(r, "GET", "/commands/pending", &m, &err), 1);
        assert_string_equal(m.route->pattern, "/commands/pending");
        assert_int_equal(ms_http_router_match(r, "GET", "/commands/42", &m, &err), 1);
        assert_string_equal(m.route->pattern, "/commands/{id}");
        ms_http_router_free(r);
}

static void test_invalid_patterns_refused(void **state)
{
        (void)state;
        static const char *const bad[] = {
                "no-slash", "/a//b", "/a/{}", "/a/{Id}", "/a/{id", "/a/{id}/{id}", "/a/b%20c",
                "/a/b c", "/a/",
        };
        ms_http_router *r = ms_http_router_new();
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                err_t err = ERR_INIT;
                ms_http_route rt = { .method = "GET", .pattern = bad[i],
                                     .handler = dummy_handler };
                assert_int_equal(ms_http_router_add(r, &rt, &err), -1);
                assert_true(err_is_set(&err));
        }
        assert_int_equal(ms_http_router_count(r), 0);
        ms_http_router_free(r);
}

static void test_bad_method_and_missing_handler_refused(void **state)
{
        (void)state;
        ms_http_router *r = ms_http_router_new();
        err_t err = ERR_INIT;
        ms_http_route rt = { .method = "get", .pattern = "/x", .handler = dummy_handler };
        assert_int_equal(ms_http_router_add(r, &rt, &err), -1);
        rt.method = "GET";
        rt.handler = NULL;
        assert_int_equal(ms_http_router_add(r, &rt, &err), -1);
        ms_http_router_free(r);
}

static void test_duplicate_route_refused(void **state)
{
        (void)state;
        ms_http_router *r = ms_http_router_new();
        err_t err = ERR_INIT;
        ms_http_route rt = { .method = "GET", .pattern = "/x/{id}", .handler = dummy_handler };
        assert_int_equal(ms_http_router_add(r, &rt, &err), 0);
        assert_int_equal(ms_http_router_add(r, &rt, &err), -1);
        assert_non_null(strstr(err.msg, "already registered"));
        rt.method = "POST";
        assert_int_equal(ms_http_router_add(r, &rt, &err), 0);
        ms_http_router_free(r);
}

static void test_route_strings_are_copied(void **state)
{
        (void)state;
        ms_http_router *r = ms_http_router_new();
        err_t err = ERR_INIT;
        char pattern[32] = "/tmp/{id}";
        ms_http_route rt = { .method = "GET", .pattern = pattern, .handler = dummy_handler };
        assert_int_equal(ms_http_router_add(r, &rt, &err), 0);
        memset(pattern, 'x', sizeof(pattern) - 1);
        ms_http_match m;
        assert_int_equal(ms_http_router_match(r, "GET", "/tmp/7", &m, &err), 1);
        assert_string_equal(m.route->pattern, "/tmp/{id}");
        assert_string_equal(m.route->name, "/tmp/{id}");   /* name defaults to the pattern */
        ms_http_router_free(r);
}

static void test_prefix_rate_rule_lookup(void **state)
{
        (void)state;
        ms_http_router *r = ms_http_router_new();
        err_t err = ERR_INIT;
        assert_int_equal(ms_http_router_add_prefix_rate_rule(r, "POST", "/conduits/v1/directives/",
                                                             &ms_ratelimit_rule_directive_reports,
                                                             &err), 0);
        assert_ptr_equal(ms_http_router_prefix_rule(r, "POST", "/conduits/v1/directives/x/bogus"),
                         &ms_ratelimit_rule_directive_reports);
        assert_null(ms_http_router_prefix_rule(r, "GET", "/conduits/v1/directives/x/bogus"));
        assert_null(ms_http_router_prefix_rule(r, "POST", "/conduits/v1/polls"));
        ms_http_router_free(r);
}

static void test_percent_decode_plus_and_hex(void **state)
{
        (void)state;
        char out[32];
        size_t n;
        err_t err = ERR_INIT;
        assert_int_equal(ms_http_percent_decode("a+b%2Bc%41", 10, true, out, sizeof(out), &n,
                                                &err), 0);
        assert_string_equal(out, "a b+cA");
        assert_int_equal(n, 6);
        assert_int_equal(ms_http_percent_decode("a+b", 3, false, out, sizeof(out), &n, &err), 0);
        assert_string_equal(out, "a+b");
        assert_int_equal(ms_http_percent_decode("abcdef", 6, false, out, 4, &n, &err), -1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_literal_route_matches),
                cmocka_unit_test(test_param_route_extracts_id),
                cmocka_unit_test(test_two_params_extracted_by_name),
                cmocka_unit_test(test_unknown_path_is_no_route),
                cmocka_unit_test(test_wrong_method_is_no_route),
                cmocka_unit_test(test_head_falls_back_to_get),
                cmocka_unit_test(test_segments_match_exactly),
                cmocka_unit_test(test_param_is_percent_decoded),
                cmocka_unit_test(test_literal_segment_is_compared_decoded),
                cmocka_unit_test(test_malformed_percent_encoding_is_bad_request),
                cmocka_unit_test(test_param_with_encoded_slash_refused),
                cmocka_unit_test(test_param_with_encoded_nul_refused),
                cmocka_unit_test(test_param_over_256_bytes_refused),
                cmocka_unit_test(test_first_registered_route_wins),
                cmocka_unit_test(test_invalid_patterns_refused),
                cmocka_unit_test(test_bad_method_and_missing_handler_refused),
                cmocka_unit_test(test_duplicate_route_refused),
                cmocka_unit_test(test_route_strings_are_copied),
                cmocka_unit_test(test_prefix_rate_rule_lookup),
                cmocka_unit_test(test_percent_decode_plus_and_hex),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
