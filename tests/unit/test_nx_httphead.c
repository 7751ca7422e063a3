/* tests/unit/test_nx_httphead.c — proxy/httphead: the bounded HTTP request-head parser, the
 * hop-by-hop list and absolute-URI splitting (nexus §7.3, §7.4; vector #202). */
#include "testutil.h"
#include "proxy/httphead.h"

#include <string.h>

#include "proto/allowlist.h"

static int parse(const char *s, nx_httphead *h, int *status)
{
        err_t e = ERR_INIT;
        size_t end = nx_httphead_end(s, strlen(s));
        return nx_httphead_parse(s, end ? end : strlen(s), h, status, &e);
}

static void test_end_finds_crlfcrlf(void **state)
{
        (void)state;
        const char *s = "GET / HTTP/1.1\r\nHost: a\r\n\r\nBODY";
        assert_int_equal(nx_httphead_end(s, strlen(s)), strlen(s) - 4);
}

static void test_end_finds_bare_lf(void **state)
{
        (void)state;
        const char *s = "GET / HTTP/1.1\nHost: a\n\nX";
        assert_int_equal(nx_httphead_end(s, strlen(s)), strlen(s) - 1);
}

static void test_end_incomplete_is_zero(void **state)
{
        (void)state;
        const char *s = "GET / HTTP/1.1\r\nHost: a\r\n";
        assert_int_equal(nx_httphead_end(s, strlen(s)), 0);
        assert_int_equal(nx_httphead_end("", 0), 0);
}

static void test_parse_connect(void **state)
{
        (void)state;
        nx_httphead h;
        int st = 0;
        assert_int_equal(parse("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n"
                               "User-Agent: curl\r\n\r\n", &h, &st), 0);
        assert_true(nx_http_slice_eq(h.method, "CONNECT"));
        assert_true(nx_http_slice_eq(h.target, "example.com:443"));
        assert_int_equal(h.minor, 1);
        assert_int_equal(h.n_headers, 2);
        size_t n = 0;
        const nx_http_header *x = nx_httphead_get(&h, "host", &n);
        assert_non_null(x);
        assert_int_equal(n, 1);
        assert_true(nx_http_slice_eq(x->value, "example.com:443"));
}

static void test_parse_trims_header_values(void **state)
{
        (void)state;
        nx_httphead h;
        int st = 0;
        assert_int_equal(parse("GET http://a.b/ HTTP/1.0\r\nX-A: \t v v \t\r\n\r\n", &h, &st), 0);
        assert_int_equal(h.minor, 0);
        assert_true(nx_http_slice_eq(h.headers[0].value, "v v"));
}

static void test_parse_counts_duplicate_headers(void **state)
{
        (void)state;
        nx_httphead h;
        int st = 0;
        assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", &h, &st), 0);
        size_t n = 0;
        nx_httphead_get(&h, "HOST", &n);
        assert_int_equal(n, 2);
        assert_null(nx_httphead_get(&h, "Missing", &n));
        assert_int_equal(n, 0);
}

static void test_parse_rejects_obs_fold(void **state)
{
        (void)state;
        nx_httphead h;
        int st = 0;
        assert_int_equal(parse("GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n", &h, &st), -1);
        assert_int_equal(st, 400);
}

static void test_parse_rejects_space_before_colon(void **state)
{
        (void)state;
        nx_httphead h;
        int st = 0;
        assert_int_equal(parse("GET / HTTP/1.1\r\nHost : a\r\n\r\n", &h, &st), -1);
        assert_int_equal(st, 400);
}

static void test_parse_rejects_missing_colon(void **state)
{
        (void)state;
        nx_httphead h;
        int st = 0;
        assert_int_equal(parse("GET / HTTP/1.1\r\nHost a\r\n\r\n", &h, &st), -1);
        assert_int_equal(st, 400);
}

static void test_parse_rejects_ctl_in_value(void **state)
{
        (void)state;
        nx_httphead h;
        int st = 0;
        assert_int_equal(parse("GET / HTTP/1.1\r\nX: a\x01" "b\r\n\r\n", &h, &st), -1);
        assert_int_equal(st, 400);
}

static void test_parse_rejects_bare_cr(void **state)
{
        (void)state;
        nx_httphead h;
        int st = 0;
        assert_int_equal(parse("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", &h, &st), -1);
        assert_int_equal(st, 400);
}

static void test_parse_rejects_nul_in_head(void **state)
{
        (void)state;
        nx_httphead h;
        int st = 0;
        err_t e = ERR_INIT;
        const char s[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";
        size_t len = sizeof(s) - 1;
        assert_int_equal(nx_httphead_parse(s, nx_httphead_end(s, len), &h, &st, &e), -1);
        assert_int_equal(st, 400);
}

static void test_parse_rejects_leading_empty_line(void **state)
{
        (void)state;
        nx_httphead h;
        int st = 0;
        assert_int_equal(parse("\r\nGET / HTTP/1.1\r\n\r\n", &h, &st), -1);
        assert_int_equal(st, 400);
}

static void test_parse_rejects_http2_version_505(void **state)
{
        (void)state;
        nx_httphead h;
        int st = 0;
        assert_int_equal(parse("GET / HTTP/2.0\r\n\r\n", &h, &st), -1);
        assert_int_equal(st, 505);
}

static void test_parse_rejects_garbage_version(void **state)
{
        (void)state;
        nx_httphead h;
        int st = 0;
        assert_int_equal(parse("GET / FTP/1.1\r\n\r\n", &h, &st), -1);
        assert_int_equal(st, 400);
}

static void test_parse_rejects_extra_spaces_in_request_line(void **state)
{
        (void)state;
        nx_httphead h;
        int st = 0;
        assert_int_equal(parse("GET  / HTTP/1.1\r\n\r\n", &h, &st), -1);
        assert_int_equal(parse("GET / HTTP/1.1 \r\n\r\n", &h, &st), -1);
        assert_int_equal(parse("GET /\t HTTP/1.1\r\n\r\n", &h, &st), -1);
}

static void test_parse_rejects_long_method(void **state)
{
        (void)state;
        nx_httphead h;
        int st = 0;
        assert_int_equal(parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA / HTTP/1.1\r\n\r\n", &h, &st),
                         -1);
        assert_int_equal(st, 400);
}

static void test_parse_too_many_headers_431(void **state)
{
        (void)state;
        static char s[8192];
        size_t n = 0;
        n += (size_t)snprintf(s + n, sizeof(s) - n, "GET / HTTP/1.1\r\n");
        for (int i = 0; i <= NX_HTTPHEAD_MAX_HEADERS; i++)
                n += (size_t)snprintf(s + n, sizeof(s) - n, "X-%d: v\r\n", i);
        n += (size_t)snprintf(s + n, sizeof(s) - n, "\r\n");
        nx_httphead h;
        int st = 0;
        assert_int_equal(parse(s, &h, &st), -1);
        assert_int_equal(st, 431);
}

static void test_parse_incomplete_is_400(void **state)
{
        (void)state;
        nx_httphead h;
        int st = 0;
        err_t e = ERR_INIT;
        const char *s = "GET / HTTP/1.1\r\n";
        assert_int_equal(nx_httphead_parse(s, strlen(s), &h, &st, &e), -1);
        assert_int_equal(st, 400);
}

/* spec nexus §12 #202 */
static void test_hop_by_hop_list_is_complete(void **state)
{
        (void)state;
        const char *hop[] = { "Connection", "Keep-Alive", "Proxy-Authenticate",
                              "Proxy-Authorization", "TE", "Trailers", "Transfer-Encoding",
                              "Upgrade", "proxy-connection", "keep-alive" };
        for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++) {
                nx_http_slice s = { hop[i], strlen(hop[i]) };
                assert_true(nx_http_is_hop_by_hop(s));
        }
        const char *end2end[] = { "Host", "Content-Length", "Accept", "Cookie", "Trailer" };
        for (size_t i = 0; i < sizeof(end2end) / sizeof(end2end[0]); i++) {
                nx_http_slice s = { end2end[i], strlen(end2end[i]) };
                assert_false(nx_http_is_hop_by_hop(s));
        }
}

static void test_connection_lists_named_headers(void **state)
{
        (void)state;
        nx_httphead h;
        int st = 0;
        assert_int_equal(parse("GET http://a.b/ HTTP/1.1\r\nConnection: keep-alive, X-Secret ,"
                               "x-other\r\nX-Secret: 1\r\n\r\n", &h, &st), 0);
        nx_http_slice a = { "x-secret", 8 }, b = { "X-Other", 7 }, c = { "X-Sec", 5 };
        assert_true(nx_httphead_connection_lists(&h, a));
        assert_true(nx_httphead_connection_lists(&h, b));
        assert_false(nx_httphead_connection_lists(&h, c));
}

static void test_absolute_split_basic(void **state)
{
        (void)state;
        err_t e = ERR_INIT;
        nx_http_slice t = { "HTTP://Example.com:8080/a/b?c=d", 31 }, a, p;
        assert_int_equal(nx_http_absolute_split(t, &a, &p, &e), 0);
        assert_true(nx_http_slice_eq(a, "Example.com:8080"));
        assert_true(nx_http_slice_eq(p, "/a/b?c=d"));
}

static void test_absolute_split_no_path(void **state)
{
        (void)state;
        err_t e = ERR_INIT;
        nx_http_slice t = { "http://example.com", 18 }, a, p;
        assert_int_equal(nx_http_absolute_split(t, &a, &p, &e), 0);
        assert_true(nx_http_slice_eq(a, "example.com"));
        assert_int_equal(p.len, 0);
}

static void test_absolute_split_refuses_userinfo_scheme_fragment(void **state)
{
        (void)state;
        const char *bad[] = { "http://user@evil.com/", "https://example.com/", "ftp://a.b/",
                              "http:///path", "http://a.b/#frag", "/origin-form" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                err_t e = ERR_INIT;
                nx_http_slice t = { bad[i], strlen(bad[i]) }, a, p;
                assert_int_equal(nx_http_absolute_split(t, &a, &p, &e), -1);
                assert_true(err_is_set(&e));
        }
}

/* spec nexus §7.13 row 32: authorities as the CONNECT handler parses them */
static void test_vector32_authorities(void **state)
{
        (void)state;
        struct { const char *in; const char *host; uint16_t port; } v[] = {
                { "example.com:443", "example.com", 443 },
                { "example.com:80", "example.com", 80 },
                { "example.com", "example.com", 443 },
                { "[::1]:443", "::1", 443 },
        };
        for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
                char host[256];
                uint16_t port = 0;
                err_t e = ERR_INIT;
                assert_int_equal(authority_parse(v[i].in, strlen(v[i].in), 443, host,
                                                 sizeof(host), &port, &e), 0);
                assert_string_equal(host, v[i].host);
                assert_int_equal(port, v[i].port);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_end_finds_crlfcrlf),
                cmocka_unit_test(test_end_finds_bare_lf),
                cmocka_unit_test(test_end_incomplete_is_zero),
                cmocka_unit_test(test_parse_connect),
                cmocka_unit_test(test_parse_trims_header_values),
                cmocka_unit_test(test_parse_counts_duplicate_headers),
                cmocka_unit_test(test_parse_rejects_obs_fold),
                cmocka_unit_test(test_parse_rejects_space_before_colon),
                cmocka_unit_test(test_parse_rejects_missing_colon),
                cmocka_unit_test(test_parse_rejects_ctl_in_value),
                cmocka_unit_test(test_parse_rejects_bare_cr),
                cmocka_unit_test(test_parse_rejects_nul_in_head),
                cmocka_unit_test(test_parse_rejects_leading_empty_line),
                cmocka_unit_test(test_parse_rejects_http2_version_505),
                cmocka_unit_test(test_parse_rejects_garbage_version),
                cmocka_unit_test(test_parse_rejects_extra_spaces_in_request_line),
                cmocka_unit_test(test_parse_rejects_long_method),
                cmocka_unit_test(test_parse_too_many_headers_431),
                cmocka_unit_test(test_parse_incomplete_is_400),
                cmocka_unit_test(test_hop_by_hop_list_is_complete),
                cmocka_unit_test(test_connection_lists_named_headers),
                cmocka_unit_test(test_absolute_split_basic),
                cmocka_unit_test(test_absolute_split_no_path),
                cmocka_unit_test(test_absolute_split_refuses_userinfo_scheme_fragment),
                cmocka_unit_test(test_vector32_authorities),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
