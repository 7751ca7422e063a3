/* tests/unit/test_crypto.c — core/crypto: FIPS 180-2 SHA-256 and RFC 4231 HMAC vectors,
 * randomness, constant-time comparison. */
#include "testutil.h"
#include "core/crypto.h"
#include "core/cleanup.h"

#include <stdlib.h>
#include <string.h>

static const char abc_hex[] =
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
static const char empty_hex[] =
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
static const char msg448[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
static const char msg448_hex[] =
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
static const char million_a_hex[] =
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";

static void assert_digest_hex(const uint8_t md[32], const char *want)
{
        char hex[65];
        crypto_hex(md, 32, hex);
        assert_string_equal(hex, want);
}

static void test_sha256_abc(void **state)
{
        uint8_t md[32];
        crypto_sha256("abc", 3, md);
        assert_digest_hex(md, abc_hex);
}

static void test_sha256_empty(void **state)
{
        uint8_t md[32];
        crypto_sha256(NULL, 0, md);
        assert_digest_hex(md, empty_hex);
}

static void test_sha256_448_bit_message(void **state)
{
        uint8_t md[32];
        crypto_sha256(msg448, strlen(msg448), md);
        assert_digest_hex(md, msg448_hex);
}

static void test_sha256_hex_is_lower_case(void **state)
{
        char hex[65];
        memset(hex, 'X', sizeof(hex));
        assert_int_equal(crypto_sha256_hex("abc", 3, hex), 0);
        assert_string_equal(hex, abc_hex);
}

static void test_sha256_incremental_every_split(void **state)
{
        size_t n = strlen(msg448);
        for (size_t cut = 0; cut <= n; cut++) {
                _cleanup_sha256_ crypto_sha256_ctx *c = crypto_sha256_new();
                assert_non_null(c);
                assert_int_equal(crypto_sha256_update(c, msg448, cut), 0);
                assert_int_equal(crypto_sha256_update(c, msg448 + cut, n - cut), 0);
                uint8_t md[32];
                assert_int_equal(crypto_sha256_final(c, md), 0);
                assert_digest_hex(md, msg448_hex);
        }
}

static void test_sha256_incremental_byte_by_byte(void **state)
{
        _cleanup_sha256_ crypto_sha256_ctx *c = crypto_sha256_new();
        assert_non_null(c);
        for (const char *p = "abc"; *p; p++)
                assert_int_equal(crypto_sha256_update(c, p, 1), 0);
        uint8_t md[32];
        assert_int_equal(crypto_sha256_final(c, md), 0);
        assert_digest_hex(md, abc_hex);
}

static void test_sha256_incremental_million_a(void **state)
{
        /* FIPS 180-2 appendix B.3: one million 'a', fed in uneven chunks. */
        char chunk[997];
        memset(chunk, 'a', sizeof(chunk));
        _cleanup_sha256_ crypto_sha256_ctx *c = crypto_sha256_new();
        assert_non_null(c);
        size_t left = 1000000;
        while (left > 0) {
                size_t n = left < sizeof(chunk) ? left : sizeof(chunk);
                assert_int_equal(crypto_sha256_update(c, chunk, n), 0);
                left -= n;
        }
        uint8_t md[32];
        assert_int_equal(crypto_sha256_final(c, md), 0);
        assert_digest_hex(md, million_a_hex);
}

static void test_sha256_incremental_empty(void **state)
{
        _cleanup_sha256_ crypto_sha256_ctx *c = crypto_sha256_new();
        assert_non_null(c);
        assert_int_equal(crypto_sha256_update(c, NULL, 0), 0);
        uint8_t md[32];
        assert_int_equal(crypto_sha256_final(c, md), 0);
        assert_digest_hex(md, empty_hex);
}

static void test_sha256_refuses_use_after_final(void **state)
{
        _cleanup_sha256_ crypto_sha256_ctx *c = crypto_sha256_new();
        assert_non_null(c);
        uint8_t md[32];
        assert_int_equal(crypto_sha256_final(c, md), 0);
        assert_int_equal(crypto_sha256_update(c, "x", 1), -1);
        assert_int_equal(crypto_sha256_final(c, md), -1);
        crypto_sha256_free(NULL);
}

/* RFC 4231 §4 test cases. Keys and data are given as (byte, count) fills or as text. */
struct hmac_case {
        const char *name;
        uint8_t key[131];
        size_t keylen;
        const char *data;
        uint8_t fill;
        size_t filllen;
        const char *want;
};

static void run_hmac(const struct hmac_case *t)
{
        uint8_t buf[64];
        const void *data = t->data;
        size_t len = t->data ? strlen(t->data) : t->filllen;
        if (!t->data) {
                memset(buf, t->fill, t->filllen);
                data = buf;
        }
        uint8_t mac[32];
        assert_int_equal(crypto_hmac_sha256(t->key, t->keylen, data, len, mac), 0);
        assert_digest_hex(mac, t->want);
}

static void fill_key(struct hmac_case *t, uint8_t b, size_t n)
{
        memset(t->key, b, n);
        t->keylen = n;
}

static void test_hmac_rfc4231_case1(void **state)
{
        struct hmac_case t = { .data = "Hi There", .want =
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7" };
        fill_key(&t, 0x0b, 20);
        run_hmac(&t);
}

static void test_hmac_rfc4231_case2(void **state)
{
        struct hmac_case t = { .key = "Jefe", .keylen = 4,
                .data = "what do ya want for nothing?", .want =
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" };
        run_hmac(&t);
}

static void test_hmac_rfc4231_case3(void **state)
{
        struct hmac_case t = { .fill = 0xdd, .filllen = 50, .want =
                "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe" };
        fill_key(&t, 0xaa, 20);
        run_hmac(&t);
}

static void test_hmac_rfc4231_case4(void **state)
{
        struct hmac_case t = { .fill = 0xcd, .filllen = 50, .want =
                "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b" };
        for (size_t i = 0; i < 25; i++)
                t.key[i] = (uint8_t)(i + 1);
        t.keylen = 25;
        run_hmac(&t);
}

static void test_hmac_rfc4231_case6_long_key(void **state)
{
        struct hmac_case t = {
                .data = "Test Using Larger Than Block-Size Key - Hash Key First", .want =
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54" };
        fill_key(&t, 0xaa, 131);
        run_hmac(&t);
}

static void test_hmac_rfc4231_case7_long_key_and_data(void **state)
{
        struct hmac_case t = {
                .data = "This is a test using a larger than block-size key and a larger "
                        "than block-size data. The key needs to be hashed before being used "
                        "by the HMAC algorithm.", .want =
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2" };
        fill_key(&t, 0xaa, 131);
        run_hmac(&t);
}

static void test_hmac_different_keys_differ(void **state)
{
        uint8_t a[32], b[32];
        assert_int_equal(crypto_hmac_sha256("k1", 2, "msg", 3, a), 0);
        assert_int_equal(crypto_hmac_sha256("k2", 2, "msg", 3, b), 0);
        assert_false(crypto_memeq(a, b, 32));
}

static void test_hmac_empty_key_and_data(void **state)
{
        /* HMAC-SHA256("", "") is a fixed, well-known value */
        uint8_t mac[32];
        assert_int_equal(crypto_hmac_sha256(NULL, 0, NULL, 0, mac), 0);
        assert_digest_hex(mac,
                "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

static void test_random_is_not_constant(void **state)
{
        err_t err = ERR_INIT;
        uint8_t a[32], b[32], zero[32];
        memset(zero, 0, sizeof(zero));
        assert_int_equal(crypto_random(a, sizeof(a), &err), 0);
        assert_int_equal(crypto_random(b, sizeof(b), &err), 0);
        /* 2^-256 odds of a false failure */
        assert_memory_not_equal(a, b, sizeof(a));
        assert_memory_not_equal(a, zero, sizeof(a));
}

static void test_random_zero_length_ok(void **state)
{
        err_t err = ERR_INIT;
        uint8_t a[1] = { 0x5a };
        assert_int_equal(crypto_random(a, 0, &err), 0);
        assert_int_equal(a[0], 0x5a);
}

static void test_random_hex_length_and_alphabet(void **state)
{
        err_t err = ERR_INIT;
        char out[201];
        memset(out, 'X', sizeof(out));
        assert_int_equal(crypto_random_hex(100, out, sizeof(out), &err), 0);
        assert_int_equal(strlen(out), 200);
        assert_int_equal(strspn(out, "0123456789abcdef"), 200);
}

static void test_random_hex_two_tokens_differ(void **state)
{
        err_t err = ERR_INIT;
        char a[65], b[65];
        assert_int_equal(crypto_random_hex(32, a, sizeof(a), &err), 0);
        assert_int_equal(crypto_random_hex(32, b, sizeof(b), &err), 0);
        assert_string_not_equal(a, b);
}

static void test_random_hex_refuses_small_buffer(void **state)
{
        err_t err = ERR_INIT;
        char out[64];
        assert_int_equal(crypto_random_hex(32, out, sizeof(out), &err), -1);
        assert_string_equal(err.code, ERR_INVALID);
        err_clear(&err);
        assert_int_equal(crypto_random_hex(SIZE_MAX / 2 + 1, out, sizeof(out), &err), -1);
        err_clear(&err);
        assert_int_equal(crypto_random_hex(0, out, 0, &err), -1);
}

static void test_random_hex_zero_bytes_is_empty_string(void **state)
{
        err_t err = ERR_INIT;
        char out[1] = { 'X' };
        assert_int_equal(crypto_random_hex(0, out, sizeof(out), &err), 0);
        assert_string_equal(out, "");
}

static void test_memeq(void **state)
{
        uint8_t a[40], b[40];
        memset(a, 0x11, sizeof(a));
        memcpy(b, a, sizeof(b));
        assert_true(crypto_memeq(a, b, sizeof(a)));
        b[39] ^= 0x80;
        assert_false(crypto_memeq(a, b, sizeof(a)));
        assert_true(crypto_memeq(a, b, 39));
        b[0] ^= 1;
        assert_false(crypto_memeq(a, b, 39));
}

static void test_memeq_zero_length_is_equal(void **state)
{
        assert_true(crypto_memeq("a", "b", 0));
}

static void test_hex_known_bytes(void **state)
{
        const uint8_t in[] = { 0x00, 0x01, 0x7f, 0x80, 0xab, 0xff };
        char out[13];
        crypto_hex(in, sizeof(in), out);
        assert_string_equal(out, "00017f80abff");
        crypto_hex(in, 0, out);
        assert_string_equal(out, "");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sha256_abc),
                cmocka_unit_test(test_sha256_empty),
                cmocka_unit_test(test_sha256_448_bit_message),
                cmocka_unit_test(test_sha256_hex_is_lower_case),
                cmocka_unit_test(test_sha256_incremental_every_split),
                cmocka_unit_test(test_sha256_incremental_byte_by_byte),
                cmocka_unit_test(test_sha256_incremental_million_a),
                cmocka_unit_test(test_sha256_incremental_empty),
                cmocka_unit_test(test_sha256_refuses_use_after_final),
                cmocka_unit_test(test_hmac_rfc4231_case1),
                cmocka_unit_test(test_hmac_rfc4231_case2),
                cmocka_unit_test(test_hmac_rfc4231_case3),
                cmocka_unit_test(test_hmac_rfc4231_case4),
                cmocka_unit_test(test_hmac_rfc4231_case6_long_key),
                cmocka_unit_test(test_hmac_rfc4231_case7_long_key_and_data),
                cmocka_unit_test(test_hmac_different_keys_differ),
                cmocka_unit_test(test_hmac_empty_key_and_data),
                cmocka_unit_test(test_random_is_not_constant),
                cmocka_unit_test(test_random_zero_length_ok),
                cmocka_unit_test(test_random_hex_length_and_alphabet),
                cmocka_unit_test(test_random_hex_two_tokens_differ),
                cmocka_unit_test(test_random_hex_refuses_small_buffer),
                cmocka_unit_test(test_random_hex_zero_bytes_is_empty_string),
                cmocka_unit_test(test_memeq),
                cmocka_unit_test(test_memeq_zero_length_is_equal),
                cmocka_unit_test(test_hex_known_bytes),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
