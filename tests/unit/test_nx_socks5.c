/* tests/unit/test_nx_socks5.c — proxy/socks5: greeting and request parsing, reply codes
 * (RFC 1928; nexus §7.5 with DESIGN D14: IPv4/IPv6 CONNECT accepted). */
#include "testutil.h"
#include "proxy/socks5.h"

#include <string.h>

static void test_greeting_noauth_accepted(void **state)
{
        (void)state;
        const uint8_t g[] = { 5, 2, 2, 0 };
        size_t used = 0;
        err_t e = ERR_INIT;
        assert_int_equal(nx_socks5_parse_greeting(g, sizeof(g), &used, &e), NX_SOCKS5_DONE);
        assert_int_equal(used, 4);
}

static void test_greeting_auth_only_refused(void **state)
{
        (void)state;
        const uint8_t g[] = { 5, 2, 1, 2 };     /* GSSAPI, user/pass */
        size_t used = 0;
        err_t e = ERR_INIT;
        assert_int_equal(nx_socks5_parse_greeting(g, sizeof(g), &used, &e),
                         NX_SOCKS5_REPLY_AND_CLOSE);
}

static void test_greeting_zero_methods_refused(void **state)
{
        (void)state;
        const uint8_t g[] = { 5, 0 };
        size_t used = 0;
        err_t e = ERR_INIT;
        assert_int_equal(nx_socks5_parse_greeting(g, sizeof(g), &used, &e),
                         NX_SOCKS5_REPLY_AND_CLOSE);
}

static void test_greeting_needs_more(void **state)
{
        (void)state;
        const uint8_t g[] = { 5, 3, 0 };
        size_t used = 0;
        err_t e = ERR_INIT;
        assert_int_equal(nx_socks5_parse_greeting(g, 1, &used, &e), NX_SOCKS5_NEED_MORE);
        assert_int_equal(nx_socks5_parse_greeting(g, sizeof(g), &used, &e),
                         NX_SOCKS5_NEED_MORE);
}

static void test_greeting_bad_version_closes(void **state)
{
        (void)state;
        const uint8_t g[] = { 4, 1, 0 };
        size_t used = 0;
        err_t e = ERR_INIT;
        assert_int_equal(nx_socks5_parse_greeting(g, sizeof(g), &used, &e), NX_SOCKS5_CLOSE);
}

static nx_socks5_result req(const uint8_t *b, size_t n, nx_socks5_request *r, uint8_t *rep)
{
        size_t used = 0;
        err_t e = ERR_INIT;
        return nx_socks5_parse_request(b, n, r, &used, rep, &e);
}

static void test_request_domain_connect(void **state)
{
        (void)state;
        const uint8_t b[] = { 5, 1, 0, 3, 11, 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o',
                              'm', 0x01, 0xbb, 'X' };
        nx_socks5_request r;
        uint8_t rep = 0;
        size_t used = 0;
        err_t e = ERR_INIT;
        assert_int_equal(nx_socks5_parse_request(b, sizeof(b), &r, &used, &rep, &e),
                         NX_SOCKS5_DONE);
        assert_int_equal(used, sizeof(b) - 1);  /* the trailing 'X' is tunnel data */
        assert_string_equal(r.host, "example.com");
        assert_int_equal(r.port, 443);
        assert_false(r.is_ip);
}

static void test_request_ipv4_connect(void **state)
{
        (void)state;
        const uint8_t b[] = { 5, 1, 0, 1, 1, 2, 3, 4, 0, 80 };
        nx_socks5_request r;
        uint8_t rep = 0;
        assert_int_equal(req(b, sizeof(b), &r, &rep), NX_SOCKS5_DONE);
        assert_string_equal(r.host, "1.2.3.4");
        assert_int_equal(r.port, 80);
        assert_true(r.is_ip);
}

static void test_request_ipv6_connect(void **state)
{
        (void)state;
        uint8_t b[22] = { 5, 1, 0, 4 };
        b[4 + 15] = 1;          /* ::1 */
        b[20] = 0x01;
        b[21] = 0xbb;
        nx_socks5_request r;
        uint8_t rep = 0;
        assert_int_equal(req(b, sizeof(b), &r, &rep), NX_SOCKS5_DONE);
        assert_string_equal(r.host, "::1");
        assert_true(r.is_ip);
}

/* spec nexus §7.13 row 31 */
static void test_request_bind_is_07(void **state)
{
        (void)state;
        const uint8_t b[] = { 5, 2, 0, 3, 3, 'f', 'o', 'o', 0x01, 0xbb };
        nx_socks5_request r;
        uint8_t rep = 0;
        assert_int_equal(req(b, sizeof(b), &r, &rep), NX_SOCKS5_REPLY_AND_CLOSE);
        assert_int_equal(rep, NX_SOCKS5_REP_CMD_UNSUPPORTED);
        assert_string_equal(r.host, "foo");     /* parsed for the audit record */
}

static void test_request_udp_associate_is_07(void **state)
{
        (void)state;
        const uint8_t b[] = { 5, 3, 0, 1, 0, 0, 0, 0, 0, 0 };
        nx_socks5_request r;
        uint8_t rep = 0;
        assert_int_equal(req(b, sizeof(b), &r, &rep), NX_SOCKS5_REPLY_AND_CLOSE);
        assert_int_equal(rep, NX_SOCKS5_REP_CMD_UNSUPPORTED);
}

static void test_request_unknown_atyp_is_08(void **state)
{
        (void)state;
        const uint8_t b[] = { 5, 1, 0, 9 };
        nx_socks5_request r;
        uint8_t rep = 0;
        assert_int_equal(req(b, sizeof(b), &r, &rep), NX_SOCKS5_REPLY_AND_CLOSE);
        assert_int_equal(rep, NX_SOCKS5_REP_ATYP_UNSUPPORTED);
}

static void test_request_bad_domains_are_08(void **state)
{
        (void)state;
        const char *bad[] = { " a.com", "a.com ", "a/b", "a\\b", "u@h", "a#b", "a?b",
                              "fe80::1%eth0", "a\tb", "a\nb" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                uint8_t b[300] = { 5, 1, 0, 3 };
                size_t n = strlen(bad[i]);
                b[4] = (uint8_t)n;
                memcpy(b + 5, bad[i], n);
                b[5 + n] = 0;
                b[6 + n] = 80;
                nx_socks5_request r;
                uint8_t rep = 0;
                assert_int_equal(req(b, 7 + n, &r, &rep), NX_SOCKS5_REPLY_AND_CLOSE);
                assert_int_equal(rep, NX_SOCKS5_REP_ATYP_UNSUPPORTED);
        }
}

static void test_request_nul_and_empty_domain_are_08(void **state)
{
        (void)state;
        const uint8_t nul[] = { 5, 1, 0, 3, 3, 'a', 0, 'b', 0, 80 };
        const uint8_t empty[] = { 5, 1, 0, 3, 0, 0, 80 };
        nx_socks5_request r;
        uint8_t rep = 0;
        assert_int_equal(req(nul, sizeof(nul), &r, &rep), NX_SOCKS5_REPLY_AND_CLOSE);
        assert_int_equal(rep, NX_SOCKS5_REP_ATYP_UNSUPPORTED);
        assert_int_equal(req(empty, sizeof(empty), &r, &rep), NX_SOCKS5_REPLY_AND_CLOSE);
        assert_int_equal(rep, NX_SOCKS5_REP_ATYP_UNSUPPORTED);
}

static void test_request_port_zero_is_08(void **state)
{
        (void)state;
        const uint8_t b[] = { 5, 1, 0, 3, 3, 'a', '.', 'b', 0, 0 };
        nx_socks5_request r;
        uint8_t rep = 0;
        assert_int_equal(req(b, sizeof(b), &r, &rep), NX_SOCKS5_REPLY_AND_CLOSE);
        assert_int_equal(rep, NX_SOCKS5_REP_ATYP_UNSUPPORTED);
}

static void test_request_bad_version_or_rsv_closes(void **state)
{
        (void)state;
        const uint8_t v4[] = { 4, 1, 0, 1, 1, 2, 3, 4, 0, 80 };
        const uint8_t rsv[] = { 5, 1, 1, 1, 1, 2, 3, 4, 0, 80 };
        nx_socks5_request r;
        uint8_t rep = 0;
        assert_int_equal(req(v4, sizeof(v4), &r, &rep), NX_SOCKS5_CLOSE);
        assert_int_equal(req(rsv, sizeof(rsv), &r, &rep), NX_SOCKS5_CLOSE);
}

static void test_request_needs_more_at_every_prefix(void **state)
{
        (void)state;
        const uint8_t b[] = { 5, 1, 0, 3, 3, 'a', '.', 'b', 0, 80 };
        for (size_t n = 0; n < sizeof(b); n++) {
                nx_socks5_request r;
                uint8_t rep = 0;
                assert_int_equal(req(b, n, &r, &rep), NX_SOCKS5_NEED_MORE);
        }
}

static void test_reply_format(void **state)
{
        (void)state;
        uint8_t out[NX_SOCKS5_REPLY_LEN];
        nx_socks5_reply(0x02, out);
        const uint8_t want[] = { 5, 2, 0, 1, 0, 0, 0, 0, 0, 0 };
        assert_memory_equal(out, want, sizeof(want));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_greeting_noauth_accepted),
                cmocka_unit_test(test_greeting_auth_only_refused),
                cmocka_unit_test(test_greeting_zero_methods_refused),
                cmocka_unit_test(test_greeting_needs_more),
                cmocka_unit_test(test_greeting_bad_version_closes),
                cmocka_unit_test(test_request_domain_connect),
                cmocka_unit_test(test_request_ipv4_connect),
                cmocka_unit_test(test_request_ipv6_connect),
                cmocka_unit_test(test_request_bind_is_07),
                cmocka_unit_test(test_request_udp_associate_is_07),
                cmocka_unit_test(test_request_unknown_atyp_is_08),
                cmocka_unit_test(test_request_bad_domains_are_08),
                cmocka_unit_test(test_request_nul_and_empty_domain_are_08),
                cmocka_unit_test(test_request_port_zero_is_08),
                cmocka_unit_test(test_request_bad_version_or_rsv_closes),
                cmocka_unit_test(test_request_needs_more_at_every_prefix),
                cmocka_unit_test(test_reply_format),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
