/* Tests for src/mothership/http/server.c against a real server on 127.0.0.1:0 with libcurl as
 * the client: routing and params over the wire, error bodies, body caps, rate limiting with an
 * injected clock, TCP_NODELAY, request life-cycle hooks, long-poll parking (notify, timeout,
 * shutdown) and a concurrency smoke test. Waits are for observable states (a request parked, a
 * hook ran), bounded generously; nothing asserts on speed. */
#include "testutil.h"

#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "core/json.h"
#include "core/str.h"
#include "http/server.h"
#include "test_ms_http_client.h"

/* ------------------------------------------------------------------ fixture */

static ms_http_server *srv;
static ms_http_router *router;
static ms_ratelimit *rl;
static metrics_reg *metrics;
static uint16_t port;
static _Atomic int64_t fake_now_ms;
static _Atomic int done_hooks;
static _Atomic int auth_frees;

static int64_t fake_clock(void *ctx)
{
        (void)ctx;
        return atomic_load(&fake_now_ms);
}

static void sleep_ms(long ms)
{
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
}

/* Waits (bounded) until cond() holds; returns whether it did. */
static bool wait_until(bool (*cond)(void))
{
        for (int i = 0; i < 2000; i++) {
                if (cond())
                        return true;
                sleep_ms(5);
        }
        return cond();
}

static int h_echo(ms_http_req *req, void *ctx)
{
        (void)ctx;
        const char *x = ms_http_req_query(req, "x");
        const char *flag = ms_http_req_query(req, "flag");
        const char *hdr = ms_http_req_header(req, "x-test-header");
        json_t *j = json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:s, s:I}",
                              "id", ms_http_req_param(req, "id"),
                              "method", ms_http_req_method(req),
                              "x", x, "flag", flag, "hdr", hdr,
                              "peer", ms_http_req_peer(req),
                              "nquery", (json_int_t)ms_http_req_query_count(req));
        return ms_http_respond_json(req, 200, j);
}

static int h_body(ms_http_req *req, void *ctx)
{
        (void)ctx;
        size_t len;
        const char *b = ms_http_req_body(req, &len);
        return ms_http_respond_json(req, 200, json_pack("{s:I, s:s%}", "len", (json_int_t)len,
                                                        "body", b, len));
}

static int h_noanswer(ms_http_req *req, void *ctx)
{
        (void)req;
        (void)ctx;
        return 200;     /* claims an answer it never sent */
}

static int h_fail(ms_http_req *req, void *ctx)
{
        (void)req;
        (void)ctx;
        return -1;
}

static int h_retry(ms_http_req *req, void *ctx)
{
        (void)ctx;
        int inj = ms_http_add_header(req, "X-Evil", "a\r\nSet-Cookie: x=1");
        int bad = ms_http_add_header(req, "Bad Name", "v");
        if (ms_http_add_header(req, "Retry-After", "7") < 0)
                return -1;
        return ms_http_respond_json(req, 503, json_pack("{s:i, s:i}", "inj", inj, "bad", bad));
}

static int h_text(ms_http_req *req, void *ctx)
{
        (void)ctx;
        return ms_http_respond_text(req, 200, "text/plain; charset=utf-8", "hello");
}

static int h_caller_limited(ms_http_req *req, void *ctx)
{
        (void)ctx;
        /* stands for "after authentication": the identity comes from the handler */
        const char *who = ms_http_req_query(req, "who");
        int rc = ms_http_rate_limit(req, who ? who : ms_http_req_peer(req));
        if (rc)
                return rc;
        return ms_http_respond_json(req, 200, json_pack("{s:s}", "ok", who ? who : "-"));
}

static int h_nodelay(ms_http_req *req, void *ctx)
{
        (void)ctx;
        int v = -1;
        socklen_t l = sizeof(v);
        if (getsockopt(ms_http_req_fd(req), IPPROTO_TCP, TCP_NODELAY, &v, &l) < 0)
                v = -1;
        return ms_http_respond_json(req, 200, json_pack("{s:i}", "nodelay", v));
}

static void count_auth_free(void *p)
{
        free(p);
        atomic_fetch_add(&auth_frees, 1);
}

static void count_done(void *p)
{
        (void)p;
        atomic_fetch_add(&done_hooks, 1);
}

static int h_auth(ms_http_req *req, void *ctx)
{
        (void)ctx;
        ms_http_req_set_auth(req, strdup("territory-1"), count_auth_free);
        if (ms_http_req_on_done(req, count_done, NULL) < 0)
                return -1;
        return ms_http_respond_json(req, 200, json_pack("{s:s}", "auth",
                                                        (const char *)ms_http_req_auth(req)));
}

static _Atomic int second_respond_rc = 1;

static int h_twice(ms_http_req *req, void *ctx)
{
        (void)ctx;
        int rc = ms_http_respond_text(req, 200, "text/plain", "first");
        atomic_store(&second_respond_rc, ms_http_respond_text(req, 201, "text/plain", "second"));
        return rc;
}

static int h_query_list(ms_http_req *req, void *ctx)
{
        (void)ctx;
        json_t *arr = json_array();
        const char *n, *v;
        for (size_t i = 0; ms_http_req_query_at(req, i, &n, &v) == 0; i++)
                json_array_append_new(arr, json_pack("[s,s]", n, v));
        return ms_http_respond_json(req, 200, arr);
}

static const char *wake_name(ms_http_wake w)
{
        switch (w) {
        case MS_HTTP_WAKE_NOTIFY:
                return "notify";
        case MS_HTTP_WAKE_TIMEOUT:
                return "timeout";
        case MS_HTTP_WAKE_SHUTDOWN:
                return "shutdown";
        case MS_HTTP_WAKE_NONE:
        default:
                return "none";
        }
}

/* Long-poll: park on the topic in ?topic= (default "t1") for ?ms= (default 10 s). */
static int h_park(ms_http_req *req, void *ctx)
{
        (void)ctx;
        ms_http_wake w = ms_http_req_wake(req);
        if (w != MS_HTTP_WAKE_NONE)
                return ms_http_respond_json(req, 200, json_pack("{s:s}", "wake", wake_name(w)));
        const char *topic = ms_http_req_query(req, "topic");
        const char *ms = ms_http_req_query(req, "ms");
        int64_t timeout = 10000;
        if (ms && str_to_int64(ms, 1, 3600000, &timeout) < 0)
                return ms_http_respond_error(req, 400, "bad_request", "ms");
        err_t err = ERR_INIT;
        if (ms_http_park(req, topic ? topic : "t1", timeout, NULL, NULL, &err) < 0)
                return ms_http_respond_error(req, 503, "unavailable", "%s", err.msg);
        if (ms_http_req_query(req, "found"))    /* work turned up after parking */
                return ms_http_respond_json(req, 200, json_pack("{s:s}", "wake", "found"));
        if (ms_http_req_query(req, "selfnotify"))
                (void)ms_http_notify(ms_http_req_server(req), topic ? topic : "t1");
        return MS_HTTP_PARKED;
}

static int resume_with_ctx(ms_http_req *req, ms_http_wake why, void *ctx)
{
        char *c = ctx;
        int rc = ms_http_respond_json(req, 200, json_pack("{s:s, s:s, s:s}", "via", "resume",
                                                          "ctx", c, "wake", wake_name(why)));
        free(c);
        return rc;
}

static int h_park_resume(ms_http_req *req, void *ctx)
{
        (void)ctx;
        err_t err = ERR_INIT;
        char *c = strdup("carried");
        if (!c || ms_http_park(req, "t3", 10000, resume_with_ctx, c, &err) < 0) {
                free(c);
                return ms_http_respond_error(req, 503, "unavailable", "%s", err.msg);
        }
        return MS_HTTP_PARKED;
}

static const ms_ratelimit_rule peer3 = { "peer3", 3, 60 };
static const ms_ratelimit_rule caller3 = { "caller3", 3, 60 };

static const ms_http_route test_routes[] = {
        { .method = "GET", .pattern = "/echo/{id}", .handler = h_echo },
        { .method = "POST", .pattern = "/echo/{id}/body", .handler = h_body,
          .max_body_bytes = 1024 },
        { .method = "POST", .pattern = "/small", .handler = h_body, .max_body_bytes = 16 },
        { .method = "GET", .pattern = "/noanswer", .handler = h_noanswer },
        { .method = "GET", .pattern = "/fail", .handler = h_fail },
        { .method = "GET", .pattern = "/retry", .handler = h_retry },
        { .method = "GET", .pattern = "/text", .handler = h_text },
        { .method = "POST", .pattern = "/limited/peer", .handler = h_body, .rate_rule = &peer3,
          .rate_key = MS_HTTP_RATE_KEY_PEER },
        { .method = "POST", .pattern = "/limited/caller", .handler = h_caller_limited,
          .rate_rule = &caller3, .rate_key = MS_HTTP_RATE_KEY_CALLER },
        { .method = "GET", .pattern = "/nodelay", .handler = h_nodelay },
        { .method = "GET", .pattern = "/auth", .handler = h_auth },
        { .method = "GET", .pattern = "/park", .handler = h_park },
        { .method = "GET", .pattern = "/park/resume", .handler = h_park_resume },
        { .method = "GET", .pattern = "/twice", .handler = h_twice },
        { .method = "GET", .pattern = "/query", .handler = h_query_list },
};

static ms_http_router *make_router(void)
{
        ms_http_router *r = ms_http_router_new();
        assert_non_null(r);
        err_t err = ERR_INIT;
        for (size_t i = 0; i < sizeof(test_routes) / sizeof(test_routes[0]); i++)
                assert_int_equal(ms_http_router_add(r, &test_routes[i], &err), 0);
        assert_int_equal(ms_http_router_add_prefix_rate_rule(r, "POST", "/limited/", &peer3,
                                                             &err), 0);
        return r;
}

static int start_with(int64_t park_max_ms, size_t max_parked)
{
        router = make_router();
        rl = ms_ratelimit_new(0);
        metrics = metrics_new();
        atomic_store(&fake_now_ms, 1700000000000LL - (1700000000000LL % 60000));
        ms_ratelimit_set_clock(rl, fake_clock, NULL);
        ms_http_server_config cfg = {
                .host = "127.0.0.1", .port = 0, .thread_pool_size = 4,
                .router = router, .metrics = metrics, .ratelimit = rl,
                .park_max_ms = park_max_ms, .max_parked = max_parked,
        };
        err_t err = ERR_INIT;
        if (ms_http_server_start(&cfg, &srv, &err) < 0) {
                fprintf(stderr, "start: %s\n", err.msg);
                return -1;
        }
        port = ms_http_server_port(srv);
        atomic_store(&done_hooks, 0);
        atomic_store(&auth_frees, 0);
        return 0;
}

static int setup(void **state)
{
        (void)state;
        return start_with(0, 0);
}

static int teardown(void **state)
{
        (void)state;
        ms_http_server_stop(srv);
        srv = NULL;
        ms_http_router_free(router);
        router = NULL;
        ms_ratelimit_free(rl);
        rl = NULL;
        metrics_free(metrics);
        metrics = NULL;
        return 0;
}

static json_t *body_json(const http_resp *r)
{
        err_t err = ERR_INIT;
        json_t *j = json_parse(http_body(r), r->body.len, true, &err);
        if (!j)
                fail_msg("not JSON (%s): %s", err.msg, http_body(r));
        return j;
}

static const char *jstr(json_t *j, const char *key)
{
        return json_string_value(json_object_get(j, key));
}

static void assert_error_body(const http_resp *r, long status, const char *code)
{
        assert_int_equal(r->status, status);
        char ct[128];
        assert_true(http_header(r, "Content-Type", ct, sizeof(ct)));
        assert_string_equal(ct, "application/json; charset=utf-8");
        json_t *j = body_json(r);
        assert_string_equal(jstr(j, "error"), code);
        assert_non_null(jstr(j, "detail"));
        json_decref(j);
}

/* -------------------------------------------------------------- start/stop */

static void test_start_reports_ephemeral_port(void **state)
{
        (void)state;
        assert_true(port > 0);
}

static void test_bad_host_refused_with_message(void **state)
{
        (void)state;
        ms_http_server_config cfg = { .host = "999.1.1.1", .router = router, .ratelimit = rl };
        ms_http_server *s2 = NULL;
        err_t err = ERR_INIT;
        assert_int_equal(ms_http_server_start(&cfg, &s2, &err), -1);
        assert_null(s2);
        assert_non_null(strstr(err.msg, "host \"999.1.1.1\""));
}

static void test_port_in_use_refused(void **state)
{
        (void)state;
        ms_http_server_config cfg = { .host = "127.0.0.1", .port = port, .router = router,
                                      .ratelimit = rl };
        ms_http_server *s2 = NULL;
        err_t err = ERR_INIT;
        assert_int_equal(ms_http_server_start(&cfg, &s2, &err), -1);
        assert_non_null(strstr(err.msg, "listen on 127.0.0.1:"));
}

static void test_rate_rule_without_limiter_refused(void **state)
{
        (void)state;
        ms_http_server_config cfg = { .host = "127.0.0.1", .router = router };
        ms_http_server *s2 = NULL;
        err_t err = ERR_INIT;
        assert_int_equal(ms_http_server_start(&cfg, &s2, &err), -1);
        assert_non_null(strstr(err.msg, "no rate limiter"));
}

static void test_listens_on_ipv6_loopback(void **state)
{
        (void)state;
        ms_http_server_config cfg = { .host = "::1", .router = router, .ratelimit = rl };
        ms_http_server *s6 = NULL;
        err_t err = ERR_INIT;
        if (ms_http_server_start(&cfg, &s6, &err) < 0)
                SKIP_BECAUSE("IPv6 loopback unavailable: %s", err.msg);
        char url[96];
        assert_true(snprintf(url, sizeof(url), "http://[::1]:%u/echo/v6",
                             (unsigned)ms_http_server_port(s6)) > 0);
        CURL *c = curl_easy_init();
        buf body = BUF_INIT(65536);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_collect);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
        curl_easy_setopt(c, CURLOPT_PROXY, "");
        assert_int_equal(curl_easy_perform(c), CURLE_OK);
        curl_easy_cleanup(c);
        assert_non_null(body.data);
        assert_non_null(strstr(body.data, "\"peer\":\"::1\""));
        buf_free(&body);
        ms_http_server_stop(s6);
}

/* ----------------------------------------------------------------- routing */

static void test_params_and_query_decoded(void **state)
{
        (void)state;
        http_resp r;
        assert_int_equal(http_do(port, "GET", "/echo/ab%20c?x=a%20b+c&flag", NULL, &r), 0);
        assert_int_equal(r.status, 200);
        json_t *j = body_json(&r);
        assert_string_equal(jstr(j, "id"), "ab c");
        assert_string_equal(jstr(j, "x"), "a b c");
        assert_string_equal(jstr(j, "flag"), "");
        assert_string_equal(jstr(j, "peer"), "127.0.0.1");
        assert_int_equal(json_integer_value(json_object_get(j, "nquery")), 2);
        json_decref(j);
        http_resp_free(&r);
}

static void test_header_lookup_case_insensitive(void **state)
{
        (void)state;
        http_resp r;
        const char *h[] = { "X-TEST-Header: hi", NULL };
        http_opts o = { .headers = h };
        assert_int_equal(http_do(port, "GET", "/echo/1", &o, &r), 0);
        json_t *j = body_json(&r);
        assert_string_equal(jstr(j, "hdr"), "hi");
        json_decref(j);
        http_resp_free(&r);
}

static void test_unknown_path_is_404_json(void **state)
{
        (void)state;
        http_resp r;
        assert_int_equal(http_do(port, "POST", "/x", NULL, &r), 0);
        assert_error_body(&r, 404, "not_found");
        json_t *j = body_json(&r);
        assert_string_equal(jstr(j, "detail"), "no route for POST /x");
        json_decref(j);
        http_resp_free(&r);
}

static void test_wrong_method_is_404(void **state)
{
        (void)state;
        http_resp r;
        assert_int_equal(http_do(port, "DELETE", "/echo/1", NULL, &r), 0);
        assert_error_body(&r, 404, "not_found");
        http_resp_free(&r);
}

static void test_malformed_path_encoding_is_400(void **state)
{
        (void)state;
        http_resp r;
        assert_int_equal(http_do(port, "GET", "/echo/a%zz", NULL, &r), 0);
        assert_error_body(&r, 400, "bad_request");
        http_resp_free(&r);
}

static void test_malformed_query_encoding_is_400(void **state)
{
        (void)state;
        http_resp r;
        assert_int_equal(http_do(port, "GET", "/echo/1?x=%4", NULL, &r), 0);
        assert_error_body(&r, 400, "bad_request");
        http_resp_free(&r);
        assert_int_equal(http_do(port, "GET", "/echo/1?x=a%00b", NULL, &r), 0);
        assert_error_body(&r, 400, "bad_request");
        http_resp_free(&r);
}

static void test_encoded_slash_in_param_is_400(void **state)
{
        (void)state;
        http_resp r;
        assert_int_equal(http_do(port, "GET", "/echo/..%2Fetc", NULL, &r), 0);
        assert_error_body(&r, 400, "bad_request");
        http_resp_free(&r);
}

static void test_query_params_listed_in_order(void **state)
{
        (void)state;
        http_resp r;
        assert_int_equal(http_do(port, "GET", "/query?b=2&a=1&%63=%33", NULL, &r), 0);
        assert_string_equal(http_body(&r), "[[\"b\",\"2\"],[\"a\",\"1\"],[\"c\",\"3\"]]");
        http_resp_free(&r);
}

static void test_unrouted_post_with_body_is_404_and_server_keeps_serving(void **state)
{
        (void)state;
        http_resp r;
        http_opts o = { .body = "{\"x\":1}", .body_len = 7 };
        assert_int_equal(http_do(port, "POST", "/nowhere", &o, &r), 0);
        assert_error_body(&r, 404, "not_found");
        http_resp_free(&r);
        assert_int_equal(http_do(port, "GET", "/echo/next", NULL, &r), 0);
        assert_int_equal(r.status, 200);
        http_resp_free(&r);
}

static void test_head_gets_headers_without_body(void **state)
{
        (void)state;
        http_resp r;
        assert_int_equal(http_do(port, "HEAD", "/text", NULL, &r), 0);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body.len, 0);
        http_resp_free(&r);
}

/* -------------------------------------------------------------------- body */

static void test_body_is_delivered(void **state)
{
        (void)state;
        http_resp r;
        http_opts o = { .body = "{\"a\":1}", .body_len = 7 };
        assert_int_equal(http_do(port, "POST", "/echo/1/body", &o, &r), 0);
        assert_int_equal(r.status, 200);
        json_t *j = body_json(&r);
        assert_int_equal(json_integer_value(json_object_get(j, "len")), 7);
        assert_string_equal(jstr(j, "body"), "{\"a\":1}");
        json_decref(j);
        http_resp_free(&r);
}

static void test_body_at_cap_accepted(void **state)
{
        (void)state;
        http_resp r;
        http_opts o = { .body = "0123456789abcdef", .body_len = 16 };
        assert_int_equal(http_do(port, "POST", "/small", &o, &r), 0);
        assert_int_equal(r.status, 200);
        http_resp_free(&r);
}

static void test_body_over_cap_is_413_and_server_keeps_serving(void **state)
{
        (void)state;
        http_resp r;
        http_opts o = { .body = "0123456789abcdefX", .body_len = 17 };
        assert_int_equal(http_do(port, "POST", "/small", &o, &r), 0);
        assert_error_body(&r, 413, "too_large");
        json_t *j = body_json(&r);
        assert_string_equal(jstr(j, "detail"), "request body exceeds 16 bytes");
        json_decref(j);
        http_resp_free(&r);
        assert_int_equal(http_do(port, "GET", "/echo/still-here", NULL, &r), 0);
        assert_int_equal(r.status, 200);
        http_resp_free(&r);
}

static void test_large_body_over_cap_refused_and_server_keeps_serving(void **state)
{
        (void)state;
        size_t n = 4 * 1024 * 1024;
        char *big = malloc(n);
        assert_non_null(big);
        memset(big, 'a', n);
        http_resp r;
        http_opts o = { .body = big, .body_len = n };
        /* 413 is sent before the body is read; the client may see a reset while still sending,
         * so only the answer, when there is one, is checked. */
        int rc = http_do(port, "POST", "/echo/1/body", &o, &r);
        if (rc == 0)
                assert_error_body(&r, 413, "too_large");
        http_resp_free(&r);
        free(big);
        assert_int_equal(http_do(port, "GET", "/echo/after", NULL, &r), 0);
        assert_int_equal(r.status, 200);
        http_resp_free(&r);
}

static void test_chunked_body_over_cap_is_413(void **state)
{
        (void)state;
        char body[2000];
        memset(body, 'z', sizeof(body));
        http_resp r;
        http_opts o = { .body = body, .body_len = sizeof(body), .chunked = true };
        assert_int_equal(http_do(port, "POST", "/echo/1/body", &o, &r), 0);
        assert_error_body(&r, 413, "too_large");
        http_resp_free(&r);
        /* a chunked body under the cap is delivered whole */
        http_opts o2 = { .body = body, .body_len = 1000, .chunked = true };
        assert_int_equal(http_do(port, "POST", "/echo/1/body", &o2, &r), 0);
        assert_int_equal(r.status, 200);
        json_t *j = body_json(&r);
        assert_int_equal(json_integer_value(json_object_get(j, "len")), 1000);
        json_decref(j);
        http_resp_free(&r);
}

/* --------------------------------------------------------------- responses */

static void test_handler_without_response_gets_500(void **state)
{
        (void)state;
        http_resp r;
        assert_int_equal(http_do(port, "GET", "/noanswer", NULL, &r), 0);
        assert_error_body(&r, 500, "internal_error");
        http_resp_free(&r);
}

static void test_handler_failure_gets_500(void **state)
{
        (void)state;
        http_resp r;
        assert_int_equal(http_do(port, "GET", "/fail", NULL, &r), 0);
        assert_error_body(&r, 500, "internal_error");
        http_resp_free(&r);
}

static void test_extra_header_sent_and_injection_refused(void **state)
{
        (void)state;
        http_resp r;
        assert_int_equal(http_do(port, "GET", "/retry", NULL, &r), 0);
        assert_int_equal(r.status, 503);
        char v[64];
        assert_true(http_header(&r, "Retry-After", v, sizeof(v)));
        assert_string_equal(v, "7");
        assert_false(http_header(&r, "Set-Cookie", v, sizeof(v)));
        assert_false(http_header(&r, "X-Evil", v, sizeof(v)));
        json_t *j = body_json(&r);
        assert_int_equal(json_integer_value(json_object_get(j, "inj")), -1);
        assert_int_equal(json_integer_value(json_object_get(j, "bad")), -1);
        json_decref(j);
        http_resp_free(&r);
}

static void test_second_response_refused(void **state)
{
        (void)state;
        http_resp r;
        assert_int_equal(http_do(port, "GET", "/twice", NULL, &r), 0);
        assert_int_equal(r.status, 200);
        assert_string_equal(http_body(&r), "first");
        assert_int_equal(atomic_load(&second_respond_rc), -1);
        http_resp_free(&r);
}

static void test_text_response_content_type(void **state)
{
        (void)state;
        http_resp r;
        assert_int_equal(http_do(port, "GET", "/text", NULL, &r), 0);
        char ct[64];
        assert_true(http_header(&r, "Content-Type", ct, sizeof(ct)));
        assert_string_equal(ct, "text/plain; charset=utf-8");
        assert_string_equal(http_body(&r), "hello");
        http_resp_free(&r);
}

/* -------------------------------------------------------------- rate limit */

static void post_n(const char *target, const char *const *headers, int n, long want)
{
        for (int i = 0; i < n; i++) {
                http_resp r;
                http_opts o = { .headers = headers, .body = "{}", .body_len = 2 };
                assert_int_equal(http_do(port, "POST", target, &o, &r), 0);
                assert_int_equal(r.status, want);
                http_resp_free(&r);
        }
}

static void test_peer_limit_429_with_retry_after_full_period(void **state)
{
        (void)state;
        post_n("/limited/peer", NULL, 3, 200);
        http_resp r;
        http_opts o = { .body = "{}", .body_len = 2 };
        assert_int_equal(http_do(port, "POST", "/limited/peer", &o, &r), 0);
        assert_error_body(&r, 429, "rate_limited");
        char v[32];
        assert_true(http_header(&r, "Retry-After", v, sizeof(v)));
        assert_string_equal(v, "60");
        json_t *j = body_json(&r);
        assert_string_equal(jstr(j, "detail"), "too many requests");
        json_decref(j);
        http_resp_free(&r);
}

static void test_peer_limit_ignores_client_chosen_header(void **state)
{
        (void)state;
        const char *h1[] = { "X-Nexus-Territory-Id: one", NULL };
        const char *h2[] = { "X-Nexus-Territory-Id: two", NULL };
        const char *h3[] = { "X-Forwarded-For: 10.9.9.9", NULL };
        post_n("/limited/peer", h1, 3, 200);
        /* a fresh header value must not buy a fresh bucket */
        post_n("/limited/peer", h2, 1, 429);
        post_n("/limited/peer", h3, 1, 429);
}

static void test_caller_key_isolation(void **state)
{
        (void)state;
        post_n("/limited/caller?who=alice", NULL, 3, 200);
        post_n("/limited/caller?who=alice", NULL, 1, 429);
        post_n("/limited/caller?who=bob", NULL, 3, 200);
}

static void test_window_reset_with_injected_clock(void **state)
{
        (void)state;
        post_n("/limited/peer", NULL, 3, 200);
        post_n("/limited/peer", NULL, 1, 429);
        atomic_fetch_add(&fake_now_ms, 59999);   /* still the same window */
        post_n("/limited/peer", NULL, 1, 429);
        atomic_fetch_add(&fake_now_ms, 1);       /* next window */
        post_n("/limited/peer", NULL, 3, 200);
        post_n("/limited/peer", NULL, 1, 429);
}

static void test_prefix_rule_limits_unmatched_paths(void **state)
{
        (void)state;
        /* spec §3.1.4: counted before routing, so unknown paths under the prefix count too */
        post_n("/limited/nope", NULL, 3, 404);
        post_n("/limited/other", NULL, 1, 429);
}

/* ------------------------------------------------------------- connection */

static void test_tcp_nodelay_set_on_accepted_socket(void **state)
{
        (void)state;
        http_resp r;
        assert_int_equal(http_do(port, "GET", "/nodelay", NULL, &r), 0);
        json_t *j = body_json(&r);
        assert_int_equal(json_integer_value(json_object_get(j, "nodelay")), 1);
        json_decref(j);
        http_resp_free(&r);
}

static bool hooks_ran(void)
{
        return atomic_load(&done_hooks) == 1 && atomic_load(&auth_frees) == 1;
}

static void test_auth_slot_and_done_hook_run_once(void **state)
{
        (void)state;
        http_resp r;
        assert_int_equal(http_do(port, "GET", "/auth", NULL, &r), 0);
        json_t *j = body_json(&r);
        assert_string_equal(jstr(j, "auth"), "territory-1");
        json_decref(j);
        http_resp_free(&r);
        assert_true(wait_until(hooks_ran));
}

/* ---------------------------------------------------------------- parking */

typedef struct bg_req {
        pthread_t t;
        const char *target;
        http_resp r;
        int rc;
} bg_req;

static void *bg_main(void *p)
{
        bg_req *b = p;
        b->rc = http_do(port, "GET", b->target, NULL, &b->r);
        return NULL;
}

static void bg_start(bg_req *b, const char *target)
{
        memset(b, 0, sizeof(*b));
        b->target = target;
        assert_int_equal(pthread_create(&b->t, NULL, bg_main, b), 0);
}

static const char *bg_finish(bg_req *b, json_t **out)
{
        pthread_join(b->t, NULL);
        assert_int_equal(b->rc, 0);
        assert_int_equal(b->r.status, 200);
        *out = body_json(&b->r);
        http_resp_free(&b->r);
        return jstr(*out, "wake");
}

static size_t want_parked;
static bool parked_reached(void)
{
        return ms_http_server_parked(srv) == want_parked;
}

static void test_parked_request_answered_by_notify_from_other_thread(void **state)
{
        (void)state;
        bg_req b;
        bg_start(&b, "/park?topic=dir-queued");
        want_parked = 1;
        assert_true(wait_until(parked_reached));
        assert_int_equal(ms_http_notify(srv, "dir-queued"), 1);
        json_t *j;
        assert_string_equal(bg_finish(&b, &j), "notify");
        json_decref(j);
        assert_int_equal(ms_http_server_parked(srv), 0);
}

static void test_parked_request_answered_by_timeout(void **state)
{
        (void)state;
        bg_req b;
        bg_start(&b, "/park?topic=quiet&ms=50");
        json_t *j;
        assert_string_equal(bg_finish(&b, &j), "timeout");
        json_decref(j);
        assert_int_equal(ms_http_server_parked(srv), 0);
}

static void test_notify_other_topic_does_not_wake(void **state)
{
        (void)state;
        bg_req b;
        bg_start(&b, "/park?topic=mine");
        want_parked = 1;
        assert_true(wait_until(parked_reached));
        assert_int_equal(ms_http_notify(srv, "not-mine"), 0);
        assert_int_equal(ms_http_notify(srv, "min"), 0);
        assert_int_equal(ms_http_server_parked(srv), 1);
        assert_int_equal(ms_http_notify(srv, "mine"), 1);
        json_t *j;
        assert_string_equal(bg_finish(&b, &j), "notify");
        json_decref(j);
}

static void test_notify_wakes_every_request_on_topic(void **state)
{
        (void)state;
        bg_req b[3];
        for (int i = 0; i < 3; i++)
                bg_start(&b[i], "/park?topic=fanout");
        want_parked = 3;
        assert_true(wait_until(parked_reached));
        assert_int_equal(ms_http_notify(srv, "fanout"), 3);
        for (int i = 0; i < 3; i++) {
                json_t *j;
                assert_string_equal(bg_finish(&b[i], &j), "notify");
                json_decref(j);
        }
}

static void test_park_cancelled_when_handler_answers(void **state)
{
        (void)state;
        http_resp r;
        assert_int_equal(http_do(port, "GET", "/park?topic=x&found=1", NULL, &r), 0);
        json_t *j = body_json(&r);
        assert_string_equal(jstr(j, "wake"), "found");
        json_decref(j);
        http_resp_free(&r);
        assert_int_equal(ms_http_server_parked(srv), 0);
        assert_int_equal(ms_http_notify(srv, "x"), 0);
}

static void test_notify_between_park_and_return_not_lost(void **state)
{
        (void)state;
        /* The handler notifies its own topic after ms_http_park() and before returning: the
         * request must be re-entered at once, not sleep until its 10 s timeout. */
        http_resp r;
        assert_int_equal(http_do(port, "GET", "/park?topic=race&selfnotify=1", NULL, &r), 0);
        json_t *j = body_json(&r);
        assert_string_equal(jstr(j, "wake"), "notify");
        json_decref(j);
        http_resp_free(&r);
}

static void test_resume_callback_gets_ctx(void **state)
{
        (void)state;
        bg_req b;
        bg_start(&b, "/park/resume");
        want_parked = 1;
        assert_true(wait_until(parked_reached));
        assert_int_equal(ms_http_notify(srv, "t3"), 1);
        json_t *j;
        assert_string_equal(bg_finish(&b, &j), "notify");
        assert_string_equal(jstr(j, "via"), "resume");
        assert_string_equal(jstr(j, "ctx"), "carried");
        json_decref(j);
}

static void test_park_timeout_capped_by_server(void **state)
{
        (void)state;
        teardown(state);
        assert_int_equal(start_with(100, 0), 0);
        bg_req b;
        bg_start(&b, "/park?topic=long&ms=3600000");   /* asks for an hour */
        json_t *j;
        assert_string_equal(bg_finish(&b, &j), "timeout");
        json_decref(j);
}

static void test_park_refused_when_too_many_parked(void **state)
{
        (void)state;
        teardown(state);
        assert_int_equal(start_with(0, 1), 0);
        bg_req b;
        bg_start(&b, "/park?topic=one");
        want_parked = 1;
        assert_true(wait_until(parked_reached));
        http_resp r;
        assert_int_equal(http_do(port, "GET", "/park?topic=two", NULL, &r), 0);
        assert_error_body(&r, 503, "unavailable");
        http_resp_free(&r);
        assert_int_equal(ms_http_notify(srv, "one"), 1);
        json_t *j;
        assert_string_equal(bg_finish(&b, &j), "notify");
        json_decref(j);
}

static void test_stop_wakes_parked_requests_with_shutdown(void **state)
{
        (void)state;
        bg_req b;
        bg_start(&b, "/park?topic=forever");
        want_parked = 1;
        assert_true(wait_until(parked_reached));
        ms_http_server_stop(srv);
        srv = NULL;
        json_t *j;
        assert_string_equal(bg_finish(&b, &j), "shutdown");
        json_decref(j);
}

/* ------------------------------------------------------------- concurrency */

typedef struct worker {
        pthread_t t;
        int id;
        int ok;
} worker;

static void *worker_main(void *p)
{
        worker *w = p;
        CURL *c = curl_easy_init();
        for (int i = 0; i < 200 && c; i++) {
                char target[64], want[32];
                if (snprintf(target, sizeof(target), "/echo/w%d-%d", w->id, i) < 0 ||
                    snprintf(want, sizeof(want), "\"id\":\"w%d-%d\"", w->id, i) < 0)
                        break;
                http_resp r;
                http_opts o = { .handle = c };
                if (http_do(port, "GET", target, &o, &r) == 0 && r.status == 200 &&
                    strstr(http_body(&r), want))
                        w->ok++;
                http_resp_free(&r);
        }
        if (c)
                curl_easy_cleanup(c);
        return NULL;
}

static void test_concurrency_8_threads_200_requests_all_answered(void **state)
{
        (void)state;
        worker w[8];
        for (int i = 0; i < 8; i++) {
                w[i] = (worker){ .id = i, .ok = 0 };
                assert_int_equal(pthread_create(&w[i].t, NULL, worker_main, &w[i]), 0);
        }
        int total = 0;
        for (int i = 0; i < 8; i++) {
                pthread_join(w[i].t, NULL);
                total += w[i].ok;
        }
        assert_int_equal(total, 1600);
}

static void test_parked_requests_do_not_block_others(void **state)
{
        (void)state;
        /* More parked requests than pool threads: handlers never block a thread. */
        bg_req b[6];
        for (int i = 0; i < 6; i++)
                bg_start(&b[i], "/park?topic=many");
        want_parked = 6;
        assert_true(wait_until(parked_reached));
        http_resp r;
        assert_int_equal(http_do(port, "GET", "/echo/free", NULL, &r), 0);
        assert_int_equal(r.status, 200);
        http_resp_free(&r);
        assert_int_equal(ms_http_notify(srv, "many"), 6);
        for (int i = 0; i < 6; i++) {
                json_t *j;
                assert_string_equal(bg_finish(&b[i], &j), "notify");
                json_decref(j);
        }
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
        curl_global_init(CURL_GLOBAL_DEFAULT);
        const struct CMUnitTest tests[] = {
                T(test_start_reports_ephemeral_port),
                T(test_bad_host_refused_with_message),
                T(test_port_in_use_refused),
                T(test_rate_rule_without_limiter_refused),
                T(test_listens_on_ipv6_loopback),
                T(test_params_and_query_decoded),
                T(test_header_lookup_case_insensitive),
                T(test_unknown_path_is_404_json),
                T(test_wrong_method_is_404),
                T(test_malformed_path_encoding_is_400),
                T(test_malformed_query_encoding_is_400),
                T(test_encoded_slash_in_param_is_400),
                T(test_query_params_listed_in_order),
                T(test_unrouted_post_with_body_is_404_and_server_keeps_serving),
                T(test_head_gets_headers_without_body),
                T(test_body_is_delivered),
                T(test_body_at_cap_accepted),
                T(test_body_over_cap_is_413_and_server_keeps_serving),
                T(test_large_body_over_cap_refused_and_server_keeps_serving),
                T(test_chunked_body_over_cap_is_413),
                T(test_handler_without_response_gets_500),
                T(test_handler_failure_gets_500),
                T(test_extra_header_sent_and_injection_refused),
                T(test_second_response_refused),
                T(test_text_response_content_type),
                T(test_peer_limit_429_with_retry_after_full_period),
                T(test_peer_limit_ignores_client_chosen_header),
                T(test_caller_key_isolation),
                T(test_window_reset_with_injected_clock),
                T(test_prefix_rule_limits_unmatched_paths),
                T(test_tcp_nodelay_set_on_accepted_socket),
                T(test_auth_slot_and_done_hook_run_once),
                T(test_parked_request_answered_by_notify_from_other_thread),
                T(test_parked_request_answered_by_timeout),
                T(test_notify_other_topic_does_not_wake),
                T(test_notify_wakes_every_request_on_topic),
                T(test_park_cancelled_when_handler_answers),
                T(test_notify_between_park_and_return_not_lost),
                T(test_resume_callback_gets_ctx),
                T(test_park_timeout_capped_by_server),
                T(test_park_refused_when_too_many_parked),
                T(test_stop_wakes_parked_requests_with_shutdown),
                T(test_concurrency_8_threads_200_requests_all_answered),
                T(test_parked_requests_do_not_block_others),
        };
        int rc = cmocka_run_group_tests(tests, NULL, NULL);
        curl_global_cleanup();
        return rc;
}
