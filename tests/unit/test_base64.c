/* tests/unit/test_base64.c — core/base64: RFC 4648 §10 vectors and strict decoding. */
#include "testutil.h"
#include "core/base64.h"
#include "core/cleanup.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

struct vec {
        const char *plain;
        const char *std;
        const char *url;
};

/* RFC 4648 §10 test vectors; base64url is the same without padding. */
static const struct vec rfc4648[] = {
        { "", "", "" },
        { "f", "Zg==", "Zg" },
        { "fo", "Zm8=", "Zm8" },
        { "foo", "Zm9v", "Zm9v" },
        { "foob", "Zm9vYg==", "Zm9vYg" },
        { "fooba", "Zm9vYmE=", "Zm9vYmE" },
        { "foobar", "Zm9vYmFy", "Zm9vYmFy" },
};
#define NVEC (sizeof(rfc4648) / sizeof(rfc4648[0]))

/* Decodes s (strlen) with the standard alphabet, expecting failure; returns the message. */
static void expect_std_fail(const char *s, size_t len, const char *msg, const char *code)
{
        err_t err = ERR_INIT;
        uint8_t *out = (uint8_t *)0x1;
        size_t outlen = 99;
        assert_int_equal(base64_decode(s, len, 1024, &out, &outlen, &err), -1);
        assert_null(out);
        assert_int_equal(outlen, 0);
        assert_string_equal(err.code, code);
        if (msg)
                assert_string_equal(err.msg, msg);
}

static void expect_url_fail(const char *s, const char *msg, const char *code)
{
        err_t err = ERR_INIT;
        uint8_t *out = (uint8_t *)0x1;
        size_t outlen = 99;
        assert_int_equal(base64url_decode(s, strlen(s), 1024, &out, &outlen, &err), -1);
        assert_null(out);
        assert_string_equal(err.code, code);
        if (msg)
                assert_string_equal(err.msg, msg);
}

static void expect_std_ok(const char *s, const void *want, size_t wantlen)
{
        err_t err = ERR_INIT;
        _cleanup_free_ uint8_t *out = NULL;
        size_t outlen = 0;
        int r = base64_decode(s, strlen(s), 1024, &out, &outlen, &err);
        if (r < 0)
                fail_msg("decode \"%s\": %s", s, err.msg);
        assert_int_equal(outlen, wantlen);
        assert_memory_equal(out, want, wantlen);
}

static void expect_url_ok(const char *s, const void *want, size_t wantlen)
{
        err_t err = ERR_INIT;
        _cleanup_free_ uint8_t *out = NULL;
        size_t outlen = 0;
        int r = base64url_decode(s, strlen(s), 1024, &out, &outlen, &err);
        if (r < 0)
                fail_msg("decode \"%s\": %s", s, err.msg);
        assert_int_equal(outlen, wantlen);
        if (wantlen)
                assert_memory_equal(out, want, wantlen);
}

static void test_encode_rfc4648_vectors(void **state)
{
        for (size_t i = 0; i < NVEC; i++) {
                _cleanup_free_ char *e = base64_encode(rfc4648[i].plain,
                                                       strlen(rfc4648[i].plain));
                assert_non_null(e);
                assert_string_equal(e, rfc4648[i].std);
        }
}

static void test_decode_rfc4648_vectors(void **state)
{
        for (size_t i = 0; i < NVEC; i++)
                expect_std_ok(rfc4648[i].std, rfc4648[i].plain, strlen(rfc4648[i].plain));
}

static void test_url_encode_rfc4648_vectors_unpadded(void **state)
{
        for (size_t i = 0; i < NVEC; i++) {
                _cleanup_free_ char *e = base64url_encode(rfc4648[i].plain,
                                                          strlen(rfc4648[i].plain));
                assert_non_null(e);
                assert_string_equal(e, rfc4648[i].url);
        }
}

static void test_url_decode_rfc4648_vectors(void **state)
{
        for (size_t i = 0; i < NVEC; i++)
                expect_url_ok(rfc4648[i].url, rfc4648[i].plain, strlen(rfc4648[i].plain));
}

static void test_encoded_len_matches_padding_rule(void **state)
{
        assert_int_equal(base64_encoded_len(0), 0);
        assert_int_equal(base64_encoded_len(1), 4);
        assert_int_equal(base64_encoded_len(3), 4);
        assert_int_equal(base64_encoded_len(4), 8);
        assert_int_equal(base64_encoded_len(6), 8);
}

static void test_encoded_len_overflow_is_size_max(void **state)
{
        assert_int_equal(base64_encoded_len(SIZE_MAX), SIZE_MAX);
        assert_int_equal(base64_encoded_len(SIZE_MAX / 4 * 3 + 3), SIZE_MAX);
}

static void test_encode_alphabets_differ_in_62_63(void **state)
{
        const uint8_t in[] = { 0xfb, 0xff };
        _cleanup_free_ char *s = base64_encode(in, sizeof(in));
        _cleanup_free_ char *u = base64url_encode(in, sizeof(in));
        assert_string_equal(s, "+/8=");
        assert_string_equal(u, "-_8");
        expect_std_ok("+/8=", in, sizeof(in));
        expect_url_ok("-_8", in, sizeof(in));
}

static void test_decode_empty_is_empty_and_terminated(void **state)
{
        err_t err = ERR_INIT;
        _cleanup_free_ uint8_t *out = NULL;
        size_t outlen = 7;
        assert_int_equal(base64_decode("", 0, 0, &out, &outlen, &err), 0);
        assert_non_null(out);
        assert_int_equal(outlen, 0);
        assert_int_equal(out[0], 0);
}

static void test_decode_output_is_nul_terminated(void **state)
{
        err_t err = ERR_INIT;
        _cleanup_free_ uint8_t *out = NULL;
        size_t outlen = 0;
        assert_int_equal(base64_decode("Zm9vYmE=", 8, 64, &out, &outlen, &err), 0);
        assert_int_equal(outlen, 5);
        assert_string_equal((char *)out, "fooba");
}

static void test_decode_rejects_length_not_multiple_of_4(void **state)
{
        expect_std_fail("Zg=", 3, "base64: length 3 is not a multiple of 4", ERR_INVALID);
        expect_std_fail("Zm9vY", 5, "base64: length 5 is not a multiple of 4", ERR_INVALID);
}

static void test_decode_rejects_missing_padding(void **state)
{
        expect_std_fail("Zg", 2, "base64: length 2 is not a multiple of 4", ERR_INVALID);
        expect_std_fail("Zm9vYmE", 7, NULL, ERR_INVALID);
}

static void test_decode_rejects_newline_names_offset(void **state)
{
        expect_std_fail("Zm9vYm\nF", 8, "base64: invalid character at offset 6", ERR_INVALID);
}

static void test_decode_rejects_space_and_tab(void **state)
{
        expect_std_fail("Zm 9", 4, "base64: invalid character at offset 2", ERR_INVALID);
        expect_std_fail("\tZm9vYmE", 8, "base64: invalid character at offset 0", ERR_INVALID);
}

static void test_decode_rejects_url_alphabet(void **state)
{
        expect_std_fail("-_8=", 4, "base64: invalid character at offset 0", ERR_INVALID);
        expect_std_fail("ab_8", 4, "base64: invalid character at offset 2", ERR_INVALID);
}

static void test_decode_rejects_padding_in_the_middle(void **state)
{
        expect_std_fail("Zg==Zm8=", 8, "base64: invalid character at offset 2", ERR_INVALID);
        expect_std_fail("Zm=v", 4, "base64: invalid character at offset 2", ERR_INVALID);
}

static void test_decode_rejects_three_padding_chars(void **state)
{
        expect_std_fail("Z===", 4, "base64: invalid character at offset 1", ERR_INVALID);
        expect_std_fail("====", 4, "base64: invalid character at offset 0", ERR_INVALID);
}

static void test_decode_rejects_embedded_nul(void **state)
{
        expect_std_fail("Zm\0v", 4, "base64: invalid character at offset 2", ERR_INVALID);
}

static void test_decode_rejects_high_bytes(void **state)
{
        expect_std_fail("Zm9\xff", 4, "base64: invalid character at offset 3", ERR_INVALID);
}

static void test_decode_rejects_noncanonical_bits_two_pad(void **state)
{
        expect_std_fail("QR==", 4, "base64: non-canonical trailing bits at offset 1",
                        ERR_INVALID);
        expect_std_ok("QQ==", "A", 1);
}

static void test_decode_rejects_noncanonical_bits_one_pad(void **state)
{
        expect_std_fail("QUF=", 4, "base64: non-canonical trailing bits at offset 2",
                        ERR_INVALID);
        expect_std_ok("QUE=", "AA", 2);
}

static void test_decode_too_large_refused_before_alloc(void **state)
{
        err_t err = ERR_INIT;
        uint8_t *out = NULL;
        size_t outlen = 0;
        assert_int_equal(base64_decode("Zm9vYmFy", 8, 5, &out, &outlen, &err), -1);
        assert_null(out);
        assert_string_equal(err.code, ERR_TOO_LARGE);
        assert_string_equal(err.msg, "base64: decoded size 6 exceeds the limit of 5 bytes");
}

static void test_decode_exactly_at_limit_passes(void **state)
{
        err_t err = ERR_INIT;
        _cleanup_free_ uint8_t *out = NULL;
        size_t outlen = 0;
        assert_int_equal(base64_decode("Zm9vYmFy", 8, 6, &out, &outlen, &err), 0);
        assert_int_equal(outlen, 6);
}

static void test_url_decode_rejects_padding(void **state)
{
        expect_url_fail("Zg==", "base64url: invalid character at offset 2", ERR_INVALID);
        expect_url_fail("Zm8=", "base64url: invalid character at offset 3", ERR_INVALID);
}

static void test_url_decode_rejects_std_alphabet(void **state)
{
        expect_url_fail("+/8", "base64url: invalid character at offset 0", ERR_INVALID);
        expect_url_fail("ab/8", "base64url: invalid character at offset 2", ERR_INVALID);
}

static void test_url_decode_rejects_whitespace(void **state)
{
        expect_url_fail("Zm9v\nYg", "base64url: invalid character at offset 4", ERR_INVALID);
        expect_url_fail("Zm9v ", "base64url: invalid character at offset 4", ERR_INVALID);
}

static void test_url_decode_rejects_impossible_length(void **state)
{
        expect_url_fail("Zm9vY", "base64url: impossible length 5 (length % 4 == 1)",
                        ERR_INVALID);
        expect_url_fail("Z", NULL, ERR_INVALID);
}

static void test_url_decode_rejects_noncanonical_bits(void **state)
{
        expect_url_fail("Zh", "base64url: non-canonical trailing bits at offset 1",
                        ERR_INVALID);
        expect_url_fail("Zm9", "base64url: non-canonical trailing bits at offset 2",
                        ERR_INVALID);
        expect_url_ok("Zm8", "fo", 2);
}

static void test_url_decode_too_large(void **state)
{
        err_t err = ERR_INIT;
        uint8_t *out = NULL;
        size_t outlen = 0;
        assert_int_equal(base64url_decode("Zm9vYmE", 7, 4, &out, &outlen, &err), -1);
        assert_null(out);
        assert_string_equal(err.code, ERR_TOO_LARGE);
}

static void test_url_decode_empty_is_empty(void **state)
{
        err_t err = ERR_INIT;
        _cleanup_free_ uint8_t *out = NULL;
        size_t outlen = 3;
        assert_int_equal(base64url_decode("", 0, 0, &out, &outlen, &err), 0);
        assert_non_null(out);
        assert_int_equal(outlen, 0);
}

static void test_all_byte_values_round_trip(void **state)
{
        uint8_t in[256];
        for (size_t i = 0; i < sizeof(in); i++)
                in[i] = (uint8_t)i;
        _cleanup_free_ char *s = base64_encode(in, sizeof(in));
        _cleanup_free_ char *u = base64url_encode(in, sizeof(in));
        expect_std_ok(s, in, sizeof(in));
        expect_url_ok(u, in, sizeof(in));
}

/* xorshift64: deterministic pseudo-random bytes for the round-trip tests. */
static uint64_t next_rand(uint64_t *s)
{
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        return *s;
}

static void round_trip_lengths(bool url)
{
        uint64_t seed = 0x9e3779b97f4a7c15ULL;
        uint8_t in[300] = { 0 };
        for (size_t len = 0; len <= sizeof(in); len++) {
                for (size_t i = 0; i < len; i++)
                        in[i] = (uint8_t)next_rand(&seed);
                _cleanup_free_ char *e = url ? base64url_encode(in, len) : base64_encode(in, len);
                assert_non_null(e);
                if (!url)
                        assert_int_equal(strlen(e), base64_encoded_len(len));
                err_t err = ERR_INIT;
                _cleanup_free_ uint8_t *out = NULL;
                size_t outlen = 0;
                int r = url ? base64url_decode(e, strlen(e), len, &out, &outlen, &err)
                            : base64_decode(e, strlen(e), len, &out, &outlen, &err);
                if (r < 0)
                        fail_msg("length %zu: %s", len, err.msg);
                assert_int_equal(outlen, len);
                if (len)
                        assert_memory_equal(out, in, len);
        }
}

static void test_round_trip_random_lengths_std(void **state)
{
        round_trip_lengths(false);
}

static void test_round_trip_random_lengths_url(void **state)
{
        round_trip_lengths(true);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_encode_rfc4648_vectors),
                cmocka_unit_test(test_decode_rfc4648_vectors),
                cmocka_unit_test(test_url_encode_rfc4648_vectors_unpadded),
                cmocka_unit_test(test_url_decode_rfc4648_vectors),
                cmocka_unit_test(test_encoded_len_matches_padding_rule),
                cmocka_unit_test(test_encoded_len_overflow_is_size_max),
                cmocka_unit_test(test_encode_alphabets_differ_in_62_63),
                cmocka_unit_test(test_decode_empty_is_empty_and_terminated),
                cmocka_unit_test(test_decode_output_is_nul_terminated),
                cmocka_unit_test(test_decode_rejects_length_not_multiple_of_4),
                cmocka_unit_test(test_decode_rejects_missing_padding),
                cmocka_unit_test(test_decode_rejects_newline_names_offset),
                cmocka_unit_test(test_decode_rejects_space_and_tab),
                cmocka_unit_test(test_decode_rejects_url_alphabet),
                cmocka_unit_test(test_decode_rejects_padding_in_the_middle),
                cmocka_unit_test(test_decode_rejects_three_padding_chars),
                cmocka_unit_test(test_decode_rejects_embedded_nul),
                cmocka_unit_test(test_decode_rejects_high_bytes),
                cmocka_unit_test(test_decode_rejects_noncanonical_bits_two_pad),
                cmocka_unit_test(test_decode_rejects_noncanonical_bits_one_pad),
                cmocka_unit_test(test_decode_too_large_refused_before_alloc),
                cmocka_unit_test(test_decode_exactly_at_limit_passes),
                cmocka_unit_test(test_url_decode_rejects_padding),
                cmocka_unit_test(test_url_decode_rejects_std_alphabet),
                cmocka_unit_test(test_url_decode_rejects_whitespace),
                cmocka_unit_test(test_url_decode_rejects_impossible_length),
                cmocka_unit_test(test_url_decode_rejects_noncanonical_bits),
                cmocka_unit_test(test_url_decode_too_large),
                cmocka_unit_test(test_url_decode_empty_is_empty),
                cmocka_unit_test(test_all_byte_values_round_trip),
                cmocka_unit_test(test_round_trip_random_lengths_std),
                cmocka_unit_test(test_round_trip_random_lengths_url),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
