/* tests/unit/test_addr.c — proto/addr: the denied-destination classifier beyond the vectors
 * (sockaddr forms, embeddings, fail-closed edges). */
#include "testutil.h"
#include "proto/addr.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/un.h>

static addr_class classify6(const char *s)
{
        struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
        assert_int_equal(inet_pton(AF_INET6, s, &sin6.sin6_addr), 1);
        return addr_classify_sockaddr((const struct sockaddr *)&sin6, sizeof(sin6));
}

static void test_connect_to_v4_mapped_loopback_sockaddr_denied(void **state)
{
        assert_int_equal(classify6("::ffff:127.0.0.1"), ADDR_LOOPBACK);
        assert_true(addr_is_denied(classify6("::ffff:127.0.0.1")));
}

static void test_v4_mapped_public_is_still_denied(void **state)
{
        /* a public IPv4 in mapped form is not dialled through the v6 path either */
        assert_int_equal(classify6("::ffff:8.8.8.8"), ADDR_TRANSLATED);
        assert_true(addr_is_denied(ADDR_TRANSLATED));
}

static void test_connect_to_metadata_ip_denied(void **state)
{
        struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(80) };
        assert_int_equal(inet_pton(AF_INET, "169.254.169.254", &sin.sin_addr), 1);
        addr_class c = addr_classify_sockaddr((const struct sockaddr *)&sin, sizeof(sin));
        assert_int_equal(c, ADDR_METADATA);
        assert_true(addr_is_denied(c));
        assert_int_equal(classify6("::ffff:169.254.169.254"), ADDR_METADATA);
        assert_int_equal(classify6("fd00:ec2::254"), ADDR_METADATA);
}

static void test_public_sockaddr_allowed(void **state)
{
        struct sockaddr_in sin = { .sin_family = AF_INET };
        assert_int_equal(inet_pton(AF_INET, "93.184.216.34", &sin.sin_addr), 1);
        assert_int_equal(addr_classify_sockaddr((const struct sockaddr *)&sin, sizeof(sin)),
                         ADDR_PUBLIC);
        assert_int_equal(classify6("2606:4700::1"), ADDR_PUBLIC);
}

static void test_sockaddr_short_length_is_invalid(void **state)
{
        struct sockaddr_in sin = { .sin_family = AF_INET };
        struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
        assert_int_equal(inet_pton(AF_INET, "8.8.8.8", &sin.sin_addr), 1);
        assert_int_equal(addr_classify_sockaddr((const struct sockaddr *)&sin, sizeof(sin) - 1),
                         ADDR_INVALID);
        assert_int_equal(addr_classify_sockaddr((const struct sockaddr *)&sin6, sizeof(sin)),
                         ADDR_INVALID);
        assert_int_equal(addr_classify_sockaddr((const struct sockaddr *)&sin, 0), ADDR_INVALID);
}

static void test_sockaddr_other_family_and_null_invalid(void **state)
{
        struct sockaddr_un sun = { .sun_family = AF_UNIX };
        assert_int_equal(addr_classify_sockaddr((const struct sockaddr *)&sun, sizeof(sun)),
                         ADDR_INVALID);
        assert_int_equal(addr_classify_sockaddr(NULL, sizeof(struct sockaddr_in)), ADDR_INVALID);
        assert_int_equal(addr_classify_in(NULL), ADDR_INVALID);
        assert_int_equal(addr_classify_in6(NULL), ADDR_INVALID);
        assert_true(addr_is_denied(ADDR_INVALID));
}

static void test_unaligned_sockaddr_is_read_safely(void **state)
{
        /* a sockaddr inside a packed buffer (e.g. from a control message) */
        unsigned char buf[sizeof(struct sockaddr_in6) + 1];
        struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
        assert_int_equal(inet_pton(AF_INET6, "::1", &sin6.sin6_addr), 1);
        memcpy(buf + 1, &sin6, sizeof(sin6));
        assert_int_equal(addr_classify_sockaddr((const struct sockaddr *)(void *)(buf + 1),
                                                sizeof(sin6)), ADDR_LOOPBACK);
}

static void test_every_class_but_public_is_denied(void **state)
{
        assert_false(addr_is_denied(ADDR_PUBLIC));
        for (int c = 1; c < ADDR__COUNT; c++)
                assert_true(addr_is_denied((addr_class)c));
        assert_true(addr_is_denied(ADDR__COUNT));
        assert_true(addr_is_denied((addr_class)-1));
}

static void test_class_names_distinct_and_fail_closed(void **state)
{
        for (int a = 0; a < ADDR__COUNT; a++) {
                assert_non_null(addr_class_name((addr_class)a));
                for (int b = a + 1; b < ADDR__COUNT; b++)
                        assert_string_not_equal(addr_class_name((addr_class)a),
                                                addr_class_name((addr_class)b));
        }
        assert_string_equal(addr_class_name(ADDR__COUNT), "invalid");
        assert_string_equal(addr_class_name((addr_class)-1), "invalid");
}

/* Property over 65536 IPv4 addresses a.b.7.9: no IPv6 embedding of an address is ever public,
 * and when the IPv4 address is denied the embedding reports the same class. */
static void test_no_ipv4_embedding_is_ever_public(void **state)
{
        for (unsigned a = 0; a < 256; a++) {
                for (unsigned b = 0; b < 256; b++) {
                        uint8_t v4[4] = { (uint8_t)a, (uint8_t)b, 7, 9 };
                        struct in_addr in;
                        memcpy(&in.s_addr, v4, 4);
                        addr_class c4 = addr_classify_in(&in);
                        static const uint8_t prefixes[][12] = {
                                { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff },   /* mapped */
                                { 0 },                                          /* compat */
                                { 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0 },   /* SIIT */
                                { 0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0 }, /* NAT64 */
                        };
                        for (size_t p = 0; p < sizeof(prefixes) / sizeof(prefixes[0]); p++) {
                                struct in6_addr in6;
                                memcpy(in6.s6_addr, prefixes[p], 12);
                                memcpy(in6.s6_addr + 12, v4, 4);
                                addr_class c6 = addr_classify_in6(&in6);
                                assert_true(addr_is_denied(c6));
                                if (addr_is_denied(c4))
                                        assert_int_equal(c6, c4);
                        }
                        struct in6_addr six = { .s6_addr = { 0x20, 0x02 } };   /* 6to4 */
                        memcpy(six.s6_addr + 2, v4, 4);
                        six.s6_addr[15] = 1;
                        assert_true(addr_is_denied(addr_classify_in6(&six)));
                }
        }
}

static void test_ipv6_outside_global_unicast_is_reserved(void **state)
{
        /* one address in every /8 outside 2000::/3 that has no more specific class */
        static const char *const outside[] = { "1::1", "400::1", "1000::1", "4000::1",
                                               "8000::1", "c000::1", "e000::1", "fa00::1" };
        for (size_t i = 0; i < sizeof(outside) / sizeof(outside[0]); i++)
                assert_int_equal(addr_classify_str(outside[i]), ADDR_RESERVED);
        assert_int_equal(addr_classify_str("2000::1"), ADDR_PUBLIC);
        assert_int_equal(addr_classify_str("3ffe::1"), ADDR_PUBLIC);
}

static void test_strict_text_refuses_loose_ipv4_forms(void **state)
{
        static const char *const loose[] = { "0x7f.1", "2130706433", "0177.0.0.1", "127.1",
                                             "127.0.0.1.", " 127.0.0.1", "127.0.0.1\n",
                                             "fe80::1%eth0", "[::1]", "01.2.3.4" };
        for (size_t i = 0; i < sizeof(loose) / sizeof(loose[0]); i++) {
                assert_int_equal(addr_classify_str(loose[i]), ADDR_INVALID);
                assert_true(addr_is_denied(addr_classify_str(loose[i])));
        }
}

static void test_overlong_text_is_invalid_not_truncated(void **state)
{
        char buf[200];
        memset(buf, '0', sizeof(buf) - 1);
        buf[sizeof(buf) - 1] = '\0';
        memcpy(buf + sizeof(buf) - 10, ":0:0:0:1", 9);
        assert_int_equal(addr_classify_str(buf), ADDR_INVALID);
        assert_true(host_is_ip_literal("0000000000000000000000000127.0.0.1"));  /* octal form */
}

static void test_host_is_ip_literal_edges(void **state)
{
        assert_false(host_is_ip_literal(NULL));
        assert_false(host_is_ip_literal(""));
        assert_false(host_is_ip_literal("."));
        assert_false(host_is_ip_literal("[]"));
        assert_true(host_is_ip_literal("1.2.3.4"));
        assert_true(host_is_ip_literal("[::ffff:10.0.0.1]"));
        assert_true(host_is_ip_literal("fe80::1%25eth0"));
        assert_false(host_is_ip_literal("github.com"));
        assert_false(host_is_ip_literal("1.2.3.com"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_connect_to_v4_mapped_loopback_sockaddr_denied),
                cmocka_unit_test(test_v4_mapped_public_is_still_denied),
                cmocka_unit_test(test_connect_to_metadata_ip_denied),
                cmocka_unit_test(test_public_sockaddr_allowed),
                cmocka_unit_test(test_sockaddr_short_length_is_invalid),
                cmocka_unit_test(test_sockaddr_other_family_and_null_invalid),
                cmocka_unit_test(test_unaligned_sockaddr_is_read_safely),
                cmocka_unit_test(test_every_class_but_public_is_denied),
                cmocka_unit_test(test_class_names_distinct_and_fail_closed),
                cmocka_unit_test(test_no_ipv4_embedding_is_ever_public),
                cmocka_unit_test(test_ipv6_outside_global_unicast_is_reserved),
                cmocka_unit_test(test_strict_text_refuses_loose_ipv4_forms),
                cmocka_unit_test(test_overlong_text_is_invalid_not_truncated),
                cmocka_unit_test(test_host_is_ip_literal_edges),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
