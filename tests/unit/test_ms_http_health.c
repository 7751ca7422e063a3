/* Tests for src/mothership/http/health.c over a real server: /up (spec §3.5), /healthz, /readyz
 * flipping with its callback, and /metrics in Prometheus text format, parsed back to check that
 * the server records every request (counters increase, histogram buckets are cumulative, 404s are
 * labelled "unmatched", scrape-time gauges appear). */
#include "testutil.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "http/health.h"
#include "http/server.h"
#include "test_ms_http_client.h"

static ms_http_server *srv;
static ms_http_router *router;
static metrics_reg *metrics;
static ms_http_health health;
static uint16_t port;
static _Atomic bool ready_flag;
static _Atomic int leases_active;

static bool ready_cb(void *ctx, char *detail, size_t detailsz)
{
        (void)ctx;
        if (atomic_load(&ready_flag))
                return true;
        (void)snprintf(detail, detailsz, "migrations pending");
        return false;
}

static int collect_leases(void *ctx, metrics_sink *sink)
{
        (void)ctx;
        return metrics_sink_emit(sink, NULL, atomic_load(&leases_active));
}

static int h_ok(ms_http_req *req, void *ctx)
{
        (void)ctx;
        return ms_http_respond_json(req, 200, json_pack("{s:s}", "id",
                                                        ms_http_req_param(req, "id")));
}

static int setup(void **state)
{
        (void)state;
        router = ms_http_router_new();
        metrics = metrics_new();
        err_t err = ERR_INIT;
        health = (ms_http_health){ .metrics = metrics, .ready = ready_cb };
        atomic_store(&ready_flag, true);
        if (ms_http_health_add_routes(router, &health, &err) < 0)
                return -1;
        ms_http_route r = { .method = "GET", .pattern = "/things/{id}", .handler = h_ok };
        if (ms_http_router_add(router, &r, &err) < 0)
                return -1;
        if (metrics_gauge_func(metrics, "conduits_leases_active", "Leases held.", 0, NULL,
                                  collect_leases, NULL, &err) < 0)
                return -1;
        ms_http_server_config cfg = { .host = "127.0.0.1", .router = router,
                                      .metrics = metrics, .thread_pool_size = 2 };
        if (ms_http_server_start(&cfg, &srv, &err) < 0) {
                fprintf(stderr, "start: %s\n", err.msg);
                return -1;
        }
        port = ms_http_server_port(srv);
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        ms_http_server_stop(srv);
        srv = NULL;
        ms_http_router_free(router);
        router = NULL;
        metrics_free(metrics);
        metrics = NULL;
        return 0;
}

static void get(const char *target, http_resp *r)
{
        assert_int_equal(http_do(port, "GET", target, NULL, r), 0);
}

static void test_up_is_green_html(void **state)
{
        (void)state;
        http_resp r;
        get("/up", &r);
        assert_int_equal(r.status, 200);
        char ct[64];
        assert_true(http_header(&r, "Content-Type", ct, sizeof(ct)));
        assert_string_equal(ct, "text/html; charset=utf-8");
        assert_string_equal(http_body(&r), MS_HTTP_UP_BODY);
        assert_non_null(strstr(http_body(&r), "background-color: green"));
        http_resp_free(&r);
}

static void test_head_up_has_no_body(void **state)
{
        (void)state;
        http_resp r;
        assert_int_equal(http_do(port, "HEAD", "/up", NULL, &r), 0);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body.len, 0);
        http_resp_free(&r);
}

static void test_post_up_is_404(void **state)
{
        (void)state;
        http_resp r;
        assert_int_equal(http_do(port, "POST", "/up", NULL, &r), 0);
        assert_int_equal(r.status, 404);
        http_resp_free(&r);
}

static void test_healthz_ok(void **state)
{
        (void)state;
        http_resp r;
        get("/healthz", &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(http_body(&r), "{\"status\":\"ok\"}");
        http_resp_free(&r);
}

static void test_readyz_flips_with_callback(void **state)
{
        (void)state;
        http_resp r;
        get("/readyz", &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(http_body(&r), "{\"status\":\"ready\"}");
        http_resp_free(&r);

        atomic_store(&ready_flag, false);
        get("/readyz", &r);
        assert_int_equal(r.status, 503);
        assert_string_equal(http_body(&r),
                            "{\"status\":\"not_ready\",\"detail\":\"migrations pending\"}");
        http_resp_free(&r);

        atomic_store(&ready_flag, true);
        get("/readyz", &r);
        assert_int_equal(r.status, 200);
        http_resp_free(&r);
}

/* Value of the exact series line in a /metrics page; -1 when absent. */
static double sample(const char *text, const char *series)
{
        size_t n = strlen(series);
        for (const char *p = text; p && *p;) {
                if (strncmp(p, series, n) == 0 && p[n] == ' ')
                        return strtod(p + n + 1, NULL);
                p = strchr(p, '\n');
                if (p)
                        p++;
        }
        return -1;
}

static char *scrape(void)
{
        http_resp r;
        get("/metrics", &r);
        assert_int_equal(r.status, 200);
        char ct[64];
        assert_true(http_header(&r, "Content-Type", ct, sizeof(ct)));
        assert_string_equal(ct, "text/plain; version=0.0.4; charset=utf-8");
        size_t len;
        char *s = buf_steal(&r.body, &len);
        http_resp_free(&r);
        return s;
}

static void test_metrics_count_requests_per_route(void **state)
{
        (void)state;
        http_resp r;
        for (int i = 0; i < 3; i++) {
                get("/things/a", &r);
                http_resp_free(&r);
        }
        char *t = scrape();
        assert_non_null(strstr(t, "# TYPE http_requests_total counter\n"));
        assert_true(sample(t, "http_requests_total{route=\"/things/{id}\",method=\"GET\","
                              "status=\"200\"}") == 3);
        free(t);
        get("/things/b", &r);
        http_resp_free(&r);
        t = scrape();
        assert_true(sample(t, "http_requests_total{route=\"/things/{id}\",method=\"GET\","
                              "status=\"200\"}") == 4);
        free(t);
}

static void test_metrics_label_404_as_unmatched(void **state)
{
        (void)state;
        http_resp r;
        get("/no/such/thing", &r);
        assert_int_equal(r.status, 404);
        http_resp_free(&r);
        assert_int_equal(http_do(port, "BREW", "/pot", NULL, &r), 0);   /* odd method */
        http_resp_free(&r);
        char *t = scrape();
        assert_true(sample(t, "http_requests_total{route=\"unmatched\",method=\"GET\","
                              "status=\"404\"}") == 1);
        /* a client-chosen method does not become a label value */
        assert_true(sample(t, "http_requests_total{route=\"unmatched\",method=\"other\","
                              "status=\"404\"}") == 1);
        assert_null(strstr(t, "BREW"));
        free(t);
}

static void test_metrics_latency_histogram_cumulative(void **state)
{
        (void)state;
        http_resp r;
        for (int i = 0; i < 5; i++) {
                get("/things/x", &r);
                http_resp_free(&r);
        }
        char *t = scrape();
        assert_non_null(strstr(t, "# TYPE http_request_duration_seconds histogram\n"));
        static const char *const les[] = {
                "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
                "0.5", "1", "2.5", "+Inf",
        };
        double prev = 0;
        for (size_t i = 0; i < sizeof(les) / sizeof(les[0]); i++) {
                char series[160];
                assert_true(snprintf(series, sizeof(series),
                                     "http_request_duration_seconds_bucket{route=\"/things/{id}\","
                                     "le=\"%s\"}", les[i]) > 0);
                double v = sample(t, series);
                assert_true(v >= prev);
                prev = v;
        }
        assert_true(prev == 5);
        assert_true(sample(t, "http_request_duration_seconds_count{route=\"/things/{id}\"}") == 5);
        assert_true(sample(t, "http_request_duration_seconds_sum{route=\"/things/{id}\"}") >= 0);
        free(t);
}

static void test_metrics_include_scrape_time_gauge(void **state)
{
        (void)state;
        atomic_store(&leases_active, 4);
        char *t = scrape();
        assert_non_null(strstr(t, "# TYPE conduits_leases_active gauge\n"));
        assert_true(sample(t, "conduits_leases_active") == 4);
        free(t);
        atomic_store(&leases_active, 2);
        t = scrape();
        assert_true(sample(t, "conduits_leases_active") == 2);
        free(t);
}

static void test_every_metrics_line_is_well_formed(void **state)
{
        (void)state;
        http_resp r;
        get("/things/%22q%22", &r);
        http_resp_free(&r);
        char *t = scrape();
        /* Each line: a comment, or `name{...} value` / `name value` with a numeric value. */
        size_t nlines = 0;
        for (char *line = t; line && *line;) {
                char *nl = strchr(line, '\n');
                assert_non_null(nl);    /* every line ends with a newline */
                *nl = '\0';
                nlines++;
                if (line[0] == '#') {
                        assert_true(strncmp(line, "# HELP ", 7) == 0 ||
                                    strncmp(line, "# TYPE ", 7) == 0);
                } else {
                        char *sp = strrchr(line, ' ');
                        assert_non_null(sp);
                        char *end;
                        (void)strtod(sp + 1, &end);
                        assert_true(*end == '\0');
                        assert_true((line[0] >= 'a' && line[0] <= 'z') || line[0] == '_');
                }
                line = nl + 1;
        }
        assert_true(nlines > 10);
        free(t);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
        curl_global_init(CURL_GLOBAL_DEFAULT);
        const struct CMUnitTest tests[] = {
                T(test_up_is_green_html),
                T(test_head_up_has_no_body),
                T(test_post_up_is_404),
                T(test_healthz_ok),
                T(test_readyz_flips_with_callback),
                T(test_metrics_count_requests_per_route),
                T(test_metrics_label_404_as_unmatched),
                T(test_metrics_latency_histogram_cumulative),
                T(test_metrics_include_scrape_time_gauge),
                T(test_every_metrics_line_is_well_formed),
        };
        int rc = cmocka_run_group_tests(tests, NULL, NULL);
        curl_global_cleanup();
        return rc;
}
