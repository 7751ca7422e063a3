/* Unit tests for src/mothership/http/metrics.c: registration rules, the text exposition format
 * (parsed back line by line), histogram cumulativity, escaping and concurrency. */
#include "testutil.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/metrics.h"

static char *render(metrics_reg *m)
{
        buf out = BUF_INIT(1 << 20);
        err_t err = ERR_INIT;
        assert_int_equal(metrics_render(m, &out, &err), 0);
        size_t len;
        char *s = buf_steal(&out, &len);
        assert_non_null(s);
        return s;
}

/* The value of the sample line that starts with exactly `series` + ' '; fails when absent. */
static double sample(const char *text, const char *series)
{
        size_t n = strlen(series);
        const char *p = text;
        while (p && *p) {
                if (strncmp(p, series, n) == 0 && p[n] == ' ')
                        return strtod(p + n + 1, NULL);
                p = strchr(p, '\n');
                if (p)
                        p++;
        }
        fail_msg("series %s not found in:\n%s", series, text);
        return -1;
}

static bool has_line(const char *text, const char *line)
{
        size_t n = strlen(line);
        for (const char *p = text; p && *p;) {
                if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0'))
                        return true;
                p = strchr(p, '\n');
                if (p)
                        p++;
        }
        return false;
}

static void test_counter_renders_help_type_and_value(void **state)
{
        (void)state;
        metrics_reg *m = metrics_new();
        err_t err = ERR_INIT;
        const char *labels[] = { "route", "method", "status" };
        metric *c = metrics_counter(m, "http_requests_total", "Requests.", 3, labels, &err);
        assert_non_null(c);
        const char *v[] = { "/up", "GET", "200" };
        assert_int_equal(metric_inc(c, v, 1), 0);
        assert_int_equal(metric_inc(c, v, 2), 0);
        char *t = render(m);
        assert_true(has_line(t, "# HELP http_requests_total Requests."));
        assert_true(has_line(t, "# TYPE http_requests_total counter"));
        assert_true(has_line(t, "http_requests_total{route=\"/up\",method=\"GET\",status=\"200\"} 3"));
        free(t);
        metrics_free(m);
}

static void test_counter_series_are_separate_per_label_values(void **state)
{
        (void)state;
        metrics_reg *m = metrics_new();
        err_t err = ERR_INIT;
        const char *labels[] = { "status" };
        metric *c = metrics_counter(m, "x_total", "x", 1, labels, &err);
        const char *ok[] = { "200" }, *nf[] = { "404" };
        assert_int_equal(metric_inc(c, ok, 5), 0);
        assert_int_equal(metric_inc(c, nf, 1), 0);
        char *t = render(m);
        assert_true(sample(t, "x_total{status=\"200\"}") == 5);
        assert_true(sample(t, "x_total{status=\"404\"}") == 1);
        free(t);
        metrics_free(m);
}

static void test_counter_without_labels_has_no_braces(void **state)
{
        (void)state;
        metrics_reg *m = metrics_new();
        err_t err = ERR_INIT;
        metric *c = metrics_counter(m, "plain_total", "p", 0, NULL, &err);
        assert_int_equal(metric_inc(c, NULL, 7), 0);
        char *t = render(m);
        assert_true(has_line(t, "plain_total 7"));
        free(t);
        metrics_free(m);
}

static void test_histogram_buckets_are_cumulative(void **state)
{
        (void)state;
        metrics_reg *m = metrics_new();
        err_t err = ERR_INIT;
        const char *labels[] = { "route" };
        metric *h = metrics_histogram(m, "http_request_duration_seconds", "Latency.", 1,
                                            labels, metrics_latency_buckets,
                                            metrics_latency_nbuckets, &err);
        assert_non_null(h);
        const char *v[] = { "/up" };
        const double obs[] = { 0.0001, 0.0005, 0.003, 0.2, 0.2, 7.0 };
        for (size_t i = 0; i < 6; i++)
                assert_int_equal(metric_observe(h, v, obs[i]), 0);
        char *t = render(m);
        assert_true(has_line(t, "# TYPE http_request_duration_seconds histogram"));
        /* le is inclusive: 0.0005 lands in the 0.0005 bucket */
        assert_true(sample(t, "http_request_duration_seconds_bucket{route=\"/up\",le=\"0.0005\"}") == 2);
        assert_true(sample(t, "http_request_duration_seconds_bucket{route=\"/up\",le=\"0.001\"}") == 2);
        assert_true(sample(t, "http_request_duration_seconds_bucket{route=\"/up\",le=\"0.005\"}") == 3);
        assert_true(sample(t, "http_request_duration_seconds_bucket{route=\"/up\",le=\"0.25\"}") == 5);
        assert_true(sample(t, "http_request_duration_seconds_bucket{route=\"/up\",le=\"2.5\"}") == 5);
        assert_true(sample(t, "http_request_duration_seconds_bucket{route=\"/up\",le=\"+Inf\"}") == 6);
        assert_true(sample(t, "http_request_duration_seconds_count{route=\"/up\"}") == 6);
        double sum = sample(t, "http_request_duration_seconds_sum{route=\"/up\"}");
        assert_true(sum > 7.4035 && sum < 7.4037);
        /* every bucket line is >= the previous one */
        double prev = 0;
        size_t nb = 0;
        for (const char *p = strstr(t, "_bucket{"); p; p = strstr(p + 1, "_bucket{")) {
                const char *sp = strchr(p, ' ');
                double val = strtod(sp + 1, NULL);
                assert_true(val >= prev);
                prev = val;
                nb++;
        }
        assert_int_equal(nb, metrics_latency_nbuckets + 1);
        free(t);
        metrics_free(m);
}

static void test_bucket_bounds_render_shortest(void **state)
{
        (void)state;
        metrics_reg *m = metrics_new();
        err_t err = ERR_INIT;
        metric *h = metrics_histogram(m, "b", "b", 0, NULL, metrics_latency_buckets,
                                            metrics_latency_nbuckets, &err);
        assert_int_equal(metric_observe(h, NULL, 0.1), 0);
        char *t = render(m);
        assert_non_null(strstr(t, "b_bucket{le=\"0.1\"} 1"));
        assert_non_null(strstr(t, "b_bucket{le=\"0.0025\"} 0"));
        assert_non_null(strstr(t, "b_bucket{le=\"1\"} 1"));
        assert_true(has_line(t, "b_sum 0.1"));
        free(t);
        metrics_free(m);
}

static void test_label_values_escaped(void **state)
{
        (void)state;
        metrics_reg *m = metrics_new();
        err_t err = ERR_INIT;
        const char *labels[] = { "v" };
        metric *c = metrics_counter(m, "esc_total", "line1\nback\\slash \"q\"", 1, labels,
                                          &err);
        const char *v[] = { "a\"b\\c\nd" };
        assert_int_equal(metric_inc(c, v, 1), 0);
        char *t = render(m);
        assert_true(has_line(t, "esc_total{v=\"a\\\"b\\\\c\\nd\"} 1"));
        /* help: backslash and newline escaped, quotes kept */
        assert_true(has_line(t, "# HELP esc_total line1\\nback\\\\slash \"q\""));
        free(t);
        metrics_free(m);
}

static void test_gauge_set_and_add(void **state)
{
        (void)state;
        metrics_reg *m = metrics_new();
        err_t err = ERR_INIT;
        metric *g = metrics_gauge(m, "temp", "t", 0, NULL, &err);
        assert_int_equal(metric_set(g, NULL, 2.5), 0);
        assert_int_equal(metric_add(g, NULL, -1), 0);
        char *t = render(m);
        assert_true(has_line(t, "# TYPE temp gauge"));
        assert_true(has_line(t, "temp 1.5"));
        free(t);
        metrics_free(m);
}

typedef struct dir_counts {
        double queued, running;
        int calls;
} dir_counts;

static int collect_directives(void *ctx, metrics_sink *sink)
{
        dir_counts *d = ctx;
        d->calls++;
        const char *q[] = { "queued" }, *r[] = { "running" };
        if (metrics_sink_emit(sink, q, d->queued) < 0 ||
            metrics_sink_emit(sink, r, d->running) < 0)
                return -1;
        return 0;
}

static void test_gauge_func_called_at_scrape_time(void **state)
{
        (void)state;
        metrics_reg *m = metrics_new();
        err_t err = ERR_INIT;
        dir_counts d = { .queued = 3, .running = 1 };
        const char *labels[] = { "state" };
        assert_int_equal(metrics_gauge_func(m, "conduits_directives", "Directives by state.",
                                               1, labels, collect_directives, &d, &err), 0);
        char *t = render(m);
        assert_true(sample(t, "conduits_directives{state=\"queued\"}") == 3);
        free(t);
        d.queued = 9;
        t = render(m);
        assert_true(sample(t, "conduits_directives{state=\"queued\"}") == 9);
        assert_true(sample(t, "conduits_directives{state=\"running\"}") == 1);
        assert_int_equal(d.calls, 2);
        free(t);
        metrics_free(m);
}

static int collect_fails(void *ctx, metrics_sink *sink)
{
        (void)ctx;
        const char *v[] = { "x" };
        (void)metrics_sink_emit(sink, v, 1);
        return -1;
}

static void test_failing_gauge_func_leaves_family_empty(void **state)
{
        (void)state;
        metrics_reg *m = metrics_new();
        err_t err = ERR_INIT;
        const char *labels[] = { "state" };
        assert_int_equal(metrics_gauge_func(m, "flaky", "f", 1, labels, collect_fails, NULL,
                                               &err), 0);
        metric *c = metrics_counter(m, "after_total", "a", 0, NULL, &err);
        assert_int_equal(metric_inc(c, NULL, 1), 0);
        char *t = render(m);
        assert_null(strstr(t, "flaky{"));
        assert_true(has_line(t, "after_total 1"));
        free(t);
        metrics_free(m);
}

static void test_invalid_names_refused(void **state)
{
        (void)state;
        metrics_reg *m = metrics_new();
        err_t err = ERR_INIT;
        const char *bad_label[] = { "__reserved" }, *le[] = { "le" }, *dash[] = { "a-b" };
        assert_null(metrics_counter(m, "1abc", "x", 0, NULL, &err));
        assert_null(metrics_counter(m, "a b", "x", 0, NULL, &err));
        assert_null(metrics_counter(m, "ok_total", "x", 1, bad_label, &err));
        assert_null(metrics_counter(m, "ok_total", "x", 1, dash, &err));
        assert_null(metrics_histogram(m, "h", "x", 1, le, metrics_latency_buckets,
                                         metrics_latency_nbuckets, &err));
        const double unsorted[] = { 1, 0.5 };
        assert_null(metrics_histogram(m, "h", "x", 0, NULL, unsorted, 2, &err));
        metrics_free(m);
}

static void test_same_registration_shared_conflicting_refused(void **state)
{
        (void)state;
        metrics_reg *m = metrics_new();
        err_t err = ERR_INIT;
        const char *l1[] = { "a" }, *l2[] = { "b" };
        metric *a = metrics_counter(m, "c_total", "x", 1, l1, &err);
        metric *b = metrics_counter(m, "c_total", "x", 1, l1, &err);
        assert_non_null(a);
        assert_ptr_equal(a, b);
        assert_null(metrics_counter(m, "c_total", "x", 1, l2, &err));
        assert_null(metrics_gauge(m, "c_total", "x", 1, l1, &err));
        assert_non_null(strstr(err.msg, "already registered"));
        metrics_free(m);
}

static void test_update_with_wrong_kind_or_values_refused(void **state)
{
        (void)state;
        metrics_reg *m = metrics_new();
        err_t err = ERR_INIT;
        const char *labels[] = { "a" };
        metric *c = metrics_counter(m, "w_total", "x", 1, labels, &err);
        const char *nullv[] = { NULL };
        assert_int_equal(metric_observe(c, labels, 1.0), -1);
        assert_int_equal(metric_set(c, labels, 1.0), -1);
        assert_int_equal(metric_inc(c, NULL, 1), -1);
        assert_int_equal(metric_inc(c, nullv, 1), -1);
        metrics_free(m);
}

static void test_series_limit_drops_new_label_values(void **state)
{
        (void)state;
        metrics_reg *m = metrics_new();
        err_t err = ERR_INIT;
        const char *labels[] = { "k" };
        metric *c = metrics_counter(m, "many_total", "x", 1, labels, &err);
        char v[32];
        const char *vals[] = { v };
        for (int i = 0; i < METRICS_MAX_SERIES; i++) {
                assert_true(snprintf(v, sizeof(v), "%d", i) > 0);
                assert_int_equal(metric_inc(c, vals, 1), 0);
        }
        assert_true(snprintf(v, sizeof(v), "one-too-many") > 0);
        assert_int_equal(metric_inc(c, vals, 1), -1);
        assert_int_equal(metrics_dropped(m), 1);
        assert_true(snprintf(v, sizeof(v), "17") > 0);
        assert_int_equal(metric_inc(c, vals, 1), 0);   /* existing series still count */
        metrics_free(m);
}

static void test_render_respects_output_cap(void **state)
{
        (void)state;
        metrics_reg *m = metrics_new();
        err_t err = ERR_INIT;
        metric *c = metrics_counter(m, "cap_total", "some help text", 0, NULL, &err);
        assert_int_equal(metric_inc(c, NULL, 1), 0);
        buf out = BUF_INIT(16);
        assert_int_equal(metrics_render(m, &out, &err), -1);
        assert_true(err_is_set(&err));
        buf_free(&out);
        metrics_free(m);
}

typedef struct inc_arg {
        metric *c;
        metric *h;
        int id;
} inc_arg;

static void *incrementer(void *p)
{
        inc_arg *a = p;
        const char *routes[] = { "/a", "/b", "/c", "/d" };
        for (int i = 0; i < 5000; i++) {
                const char *v[] = { routes[(i + a->id) % 4] };
                (void)metric_inc(a->c, v, 1);
                (void)metric_observe(a->h, v, 0.001);
        }
        return NULL;
}

static void test_concurrent_updates_all_counted(void **state)
{
        (void)state;
        metrics_reg *m = metrics_new();
        err_t err = ERR_INIT;
        const char *labels[] = { "route" };
        metric *c = metrics_counter(m, "conc_total", "x", 1, labels, &err);
        metric *h = metrics_histogram(m, "conc_seconds", "x", 1, labels,
                                            metrics_latency_buckets,
                                            metrics_latency_nbuckets, &err);
        pthread_t t[8];
        inc_arg args[8];
        for (int i = 0; i < 8; i++) {
                args[i] = (inc_arg){ .c = c, .h = h, .id = i };
                assert_int_equal(pthread_create(&t[i], NULL, incrementer, &args[i]), 0);
        }
        for (int i = 0; i < 8; i++)
                pthread_join(t[i], NULL);
        char *txt = render(m);
        double total = sample(txt, "conc_total{route=\"/a\"}") +
                       sample(txt, "conc_total{route=\"/b\"}") +
                       sample(txt, "conc_total{route=\"/c\"}") +
                       sample(txt, "conc_total{route=\"/d\"}");
        assert_true(total == 40000);
        assert_true(sample(txt, "conc_seconds_count{route=\"/a\"}") == 10000);
        free(txt);
        metrics_free(m);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_counter_renders_help_type_and_value),
                cmocka_unit_test(test_counter_series_are_separate_per_label_values),
                cmocka_unit_test(test_counter_without_labels_has_no_braces),
                cmocka_unit_test(test_histogram_buckets_are_cumulative),
                cmocka_unit_test(test_bucket_bounds_render_shortest),
                cmocka_unit_test(test_label_values_escaped),
                cmocka_unit_test(test_gauge_set_and_add),
                cmocka_unit_test(test_gauge_func_called_at_scrape_time),
                cmocka_unit_test(test_failing_gauge_func_leaves_family_empty),
                cmocka_unit_test(test_invalid_names_refused),
                cmocka_unit_test(test_same_registration_shared_conflicting_refused),
                cmocka_unit_test(test_update_with_wrong_kind_or_values_refused),
                cmocka_unit_test(test_series_limit_drops_new_label_values),
                cmocka_unit_test(test_render_respects_output_cap),
                cmocka_unit_test(test_concurrent_updates_all_counted),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
