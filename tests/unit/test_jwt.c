/* tests/unit/test_jwt.c — core/jwt: HS256 directive tokens (spec mothership §4). Most cases
 * build hostile tokens by hand, with a valid MAC where that matters, and assert the denial. */
#include "testutil.h"
#include "core/base64.h"
#include "core/cleanup.h"
#include "core/crypto.h"
#include "core/jwt.h"

#include <stdlib.h>
#include <string.h>

static const uint8_t key[] = "0123456789abcdef0123456789abcdef";
#define KEYLEN (sizeof(key) - 1)
#define NOW 1700000000LL

static const char hs256_header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
static const char good_payload[] =
        "{\"sub\":\"dir-1\",\"tid\":\"terr-1\",\"iat\":1700000000,\"exp\":1700000300}";

/* header.payload.signature with a valid HS256 MAC under k over whatever JSON is given. */
static char *make_token_key(const char *header, const char *payload, const uint8_t *k,
                            size_t klen)
{
        _cleanup_free_ char *h = base64url_encode(header, strlen(header));
        _cleanup_free_ char *p = base64url_encode(payload, strlen(payload));
        assert_non_null(h);
        assert_non_null(p);
        size_t n = strlen(h) + 1 + strlen(p) + 1 + 43 + 1;
        char *tok = malloc(n);
        assert_non_null(tok);
        int w = snprintf(tok, n, "%s.%s", h, p);
        assert_true(w > 0 && (size_t)w < n);
        uint8_t mac[32];
        assert_int_equal(crypto_hmac_sha256(k, klen, tok, strlen(tok), mac), 0);
        _cleanup_free_ char *s = base64url_encode(mac, sizeof(mac));
        assert_non_null(s);
        size_t used = strlen(tok);
        w = snprintf(tok + used, n - used, ".%s", s);
        assert_true(w > 0 && (size_t)w < n - used);
        return tok;
}

static char *make_token(const char *header, const char *payload)
{
        return make_token_key(header, payload, key, KEYLEN);
}

static jwt_claims sample_claims(void)
{
        jwt_claims c;
        memset(&c, 0, sizeof(c));
        memcpy(c.sub, "dir-1", 6);
        memcpy(c.tid, "terr-1", 7);
        c.iat = NOW;
        c.exp = NOW + 300;
        return c;
}

/* Verifies tok at now with skew, expecting failure with code and (if given) message. */
static void expect_reject(const char *tok, int64_t now, int64_t skew, const char *code,
                          const char *msg)
{
        err_t err = ERR_INIT;
        jwt_claims out;
        memset(&out, 0x5a, sizeof(out));
        assert_int_equal(jwt_verify_hs256(tok, key, KEYLEN, now, skew, &out, &err), -1);
        assert_non_null(err.code);
        assert_string_equal(err.code, code);
        if (msg)
                assert_string_equal(err.msg, msg);
        /* nothing of a refused token reaches the caller */
        assert_int_equal((unsigned char)out.sub[0], 0x5a);
}

static void expect_accept(const char *tok, int64_t now, int64_t skew, jwt_claims *out)
{
        err_t err = ERR_INIT;
        if (jwt_verify_hs256(tok, key, KEYLEN, now, skew, out, &err) < 0)
                fail_msg("verify: %s", err.msg);
}

static void test_sign_verify_round_trip(void **state)
{
        err_t err = ERR_INIT;
        jwt_claims c = sample_claims();
        _cleanup_free_ char *tok = jwt_sign_hs256(key, KEYLEN, &c, &err);
        assert_non_null(tok);
        jwt_claims out;
        expect_accept(tok, NOW, 0, &out);
        assert_string_equal(out.sub, "dir-1");
        assert_string_equal(out.tid, "terr-1");
        assert_true(out.iat == NOW);
        assert_true(out.exp == NOW + 300);
        assert_true(out.has_iat);
        assert_false(out.has_nbf);
}

static void test_sign_header_is_exact(void **state)
{
        err_t err = ERR_INIT;
        jwt_claims c = sample_claims();
        _cleanup_free_ char *tok = jwt_sign_hs256(key, KEYLEN, &c, &err);
        assert_non_null(tok);
        const char *dot = strchr(tok, '.');
        assert_non_null(dot);
        _cleanup_free_ uint8_t *h = NULL;
        size_t hl = 0;
        assert_int_equal(base64url_decode(tok, (size_t)(dot - tok), 256, &h, &hl, &err), 0);
        assert_string_equal((char *)h, hs256_header);
}

static void test_sign_payload_has_spec_claims_in_order(void **state)
{
        err_t err = ERR_INIT;
        jwt_claims c = sample_claims();
        _cleanup_free_ char *tok = jwt_sign_hs256(key, KEYLEN, &c, &err);
        assert_non_null(tok);
        const char *p = strchr(tok, '.') + 1;
        const char *end = strchr(p, '.');
        _cleanup_free_ uint8_t *pl = NULL;
        size_t n = 0;
        assert_int_equal(base64url_decode(p, (size_t)(end - p), 1024, &pl, &n, &err), 0);
        assert_string_equal((char *)pl, good_payload);
}

static void test_sign_matches_hand_built_token(void **state)
{
        err_t err = ERR_INIT;
        jwt_claims c = sample_claims();
        _cleanup_free_ char *tok = jwt_sign_hs256(key, KEYLEN, &c, &err);
        _cleanup_free_ char *want = make_token(hs256_header, good_payload);
        assert_string_equal(tok, want);
}

static void test_sign_with_nbf_round_trip(void **state)
{
        err_t err = ERR_INIT;
        jwt_claims c = sample_claims();
        c.has_nbf = true;
        c.nbf = NOW - 5;
        _cleanup_free_ char *tok = jwt_sign_hs256(key, KEYLEN, &c, &err);
        assert_non_null(tok);
        jwt_claims out;
        expect_accept(tok, NOW, 0, &out);
        assert_true(out.has_nbf);
        assert_true(out.nbf == NOW - 5);
}

static void test_sign_refuses_empty_key(void **state)
{
        err_t err = ERR_INIT;
        jwt_claims c = sample_claims();
        assert_null(jwt_sign_hs256(key, 0, &c, &err));
        assert_string_equal(err.msg, "jwt: the signing key is empty");
}

static void test_sign_refuses_unterminated_sub(void **state)
{
        err_t err = ERR_INIT;
        jwt_claims c = sample_claims();
        memset(c.sub, 'a', sizeof(c.sub));
        assert_null(jwt_sign_hs256(key, KEYLEN, &c, &err));
        assert_string_equal(err.msg, "jwt: claim \"sub\" is not NUL-terminated");
}

static void test_sign_refuses_invalid_utf8(void **state)
{
        err_t err = ERR_INIT;
        jwt_claims c = sample_claims();
        memcpy(c.tid, "\xff\xfe", 3);
        assert_null(jwt_sign_hs256(key, KEYLEN, &c, &err));
        assert_string_equal(err.msg, "jwt: claim \"tid\" is not valid UTF-8");
}

static void test_sign_max_length_claims_round_trip(void **state)
{
        err_t err = ERR_INIT;
        jwt_claims c = sample_claims();
        /* control characters expand sixfold in JSON: the worst case must still verify */
        memset(c.sub, 0x01, sizeof(c.sub) - 1);
        c.sub[sizeof(c.sub) - 1] = '\0';
        memset(c.tid, 0x1f, sizeof(c.tid) - 1);
        c.tid[sizeof(c.tid) - 1] = '\0';
        _cleanup_free_ char *tok = jwt_sign_hs256(key, KEYLEN, &c, &err);
        assert_non_null(tok);
        jwt_claims out;
        expect_accept(tok, NOW, 0, &out);
        assert_memory_equal(out.sub, c.sub, sizeof(c.sub));
        assert_memory_equal(out.tid, c.tid, sizeof(c.tid));
}

static void test_verify_refuses_empty_key(void **state)
{
        err_t err = ERR_INIT;
        _cleanup_free_ char *tok = make_token(hs256_header, good_payload);
        assert_int_equal(jwt_verify_hs256(tok, key, 0, NOW, 0, NULL, &err), -1);
        assert_string_equal(err.code, ERR_INVALID);
}

static void test_verify_refuses_negative_skew(void **state)
{
        err_t err = ERR_INIT;
        _cleanup_free_ char *tok = make_token(hs256_header, good_payload);
        assert_int_equal(jwt_verify_hs256(tok, key, KEYLEN, NOW, -1, NULL, &err), -1);
        assert_string_equal(err.code, ERR_INVALID);
}

static void test_verify_out_may_be_null(void **state)
{
        err_t err = ERR_INIT;
        _cleanup_free_ char *tok = make_token(hs256_header, good_payload);
        assert_int_equal(jwt_verify_hs256(tok, key, KEYLEN, NOW, 0, NULL, &err), 0);
}

static void test_wrong_key_is_bad_signature(void **state)
{
        static const uint8_t other[] = "another key";
        _cleanup_free_ char *tok = make_token_key(hs256_header, good_payload, other,
                                                  sizeof(other) - 1);
        expect_reject(tok, NOW, 0, ERR_UNAUTHORIZED, "jwt: bad signature");
}

static void test_tampered_payload_is_bad_signature(void **state)
{
        _cleanup_free_ char *tok = make_token(hs256_header, good_payload);
        _cleanup_free_ char *evil = make_token(hs256_header,
                "{\"sub\":\"dir-2\",\"tid\":\"terr-1\",\"iat\":1700000000,\"exp\":1700000300}");
        /* splice the other token's payload under this token's signature */
        const char *p1 = strchr(tok, '.'), *s1 = strrchr(tok, '.');
        const char *p2 = strchr(evil, '.'), *s2 = strrchr(evil, '.');
        assert_int_equal(s1 - p1, s2 - p2);
        memcpy(tok + (p1 - tok), p2, (size_t)(s2 - p2));
        expect_reject(tok, NOW, 0, ERR_UNAUTHORIZED, "jwt: bad signature");
}

static void test_tampered_header_is_bad_signature(void **state)
{
        _cleanup_free_ char *tok = make_token(hs256_header, good_payload);
        _cleanup_free_ char *h2 = base64url_encode("{\"alg\":\"HS256\",\"typ\":\"JWS\"}", 27);
        const char *dot = strchr(tok, '.');
        assert_int_equal(strlen(h2), (size_t)(dot - tok));
        memcpy(tok, h2, strlen(h2));
        expect_reject(tok, NOW, 0, ERR_UNAUTHORIZED, "jwt: bad signature");
}

static void test_tampered_signature_is_bad_signature(void **state)
{
        _cleanup_free_ char *tok = make_token(hs256_header, good_payload);
        char *sig = strrchr(tok, '.') + 1;
        sig[0] = sig[0] == 'A' ? 'B' : 'A';
        expect_reject(tok, NOW, 0, ERR_UNAUTHORIZED, "jwt: bad signature");
}

static void test_truncated_signature_refused(void **state)
{
        _cleanup_free_ char *tok = make_token(hs256_header, good_payload);
        /* 42 characters decode (if canonical) to 31 bytes: never a match */
        size_t n = strlen(tok);
        tok[n - 4] = '\0';
        expect_reject(tok, NOW, 0, ERR_UNAUTHORIZED, NULL);
}

static void test_alg_none_with_empty_signature_refused(void **state)
{
        _cleanup_free_ char *h = base64url_encode("{\"alg\":\"none\"}", 14);
        _cleanup_free_ char *p = base64url_encode(good_payload, strlen(good_payload));
        char tok[512];
        int w = snprintf(tok, sizeof(tok), "%s.%s.", h, p);
        assert_true(w > 0 && (size_t)w < sizeof(tok));
        expect_reject(tok, NOW, 0, ERR_UNAUTHORIZED, "jwt: algorithm \"none\" is not accepted");
}

static void test_alg_none_even_with_valid_mac_refused(void **state)
{
        _cleanup_free_ char *tok = make_token("{\"alg\":\"none\",\"typ\":\"JWT\"}", good_payload);
        expect_reject(tok, NOW, 0, ERR_UNAUTHORIZED, "jwt: algorithm \"none\" is not accepted");
}

static void test_alg_hs512_refused(void **state)
{
        _cleanup_free_ char *tok = make_token("{\"alg\":\"HS512\"}", good_payload);
        expect_reject(tok, NOW, 0, ERR_UNAUTHORIZED, "jwt: algorithm \"HS512\" is not accepted");
}

static void test_alg_confusion_rs256_refused(void **state)
{
        /* the classic confusion: an RS256 header MAC'd with the key as an HMAC secret */
        _cleanup_free_ char *tok = make_token("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", good_payload);
        expect_reject(tok, NOW, 0, ERR_UNAUTHORIZED, "jwt: algorithm \"RS256\" is not accepted");
}

static void test_alg_other_case_refused(void **state)
{
        _cleanup_free_ char *tok = make_token("{\"alg\":\"hs256\"}", good_payload);
        expect_reject(tok, NOW, 0, ERR_UNAUTHORIZED, "jwt: algorithm \"hs256\" is not accepted");
}

static void test_alg_missing_refused(void **state)
{
        _cleanup_free_ char *tok = make_token("{\"typ\":\"JWT\"}", good_payload);
        expect_reject(tok, NOW, 0, ERR_UNAUTHORIZED, "jwt: header has no \"alg\"");
}

static void test_alg_not_a_string_refused(void **state)
{
        _cleanup_free_ char *tok = make_token("{\"alg\":[\"HS256\"]}", good_payload);
        expect_reject(tok, NOW, 0, ERR_UNAUTHORIZED,
                      "jwt: header \"alg\" must be a string, got array");
}

static void test_alg_hostile_string_is_sanitised_in_message(void **state)
{
        _cleanup_free_ char *tok = make_token(
                "{\"alg\":\"\\n\\u001bEVIL0123456789012345678901234567890123456789\"}",
                good_payload);
        expect_reject(tok, NOW, 0, ERR_UNAUTHORIZED,
                      "jwt: algorithm \"??EVIL01234567890123456789012345...\" is not accepted");
}

static void test_header_duplicate_alg_refused(void **state)
{
        _cleanup_free_ char *tok = make_token("{\"alg\":\"none\",\"alg\":\"HS256\"}",
                                              good_payload);
        err_t err = ERR_INIT;
        assert_int_equal(jwt_verify_hs256(tok, key, KEYLEN, NOW, 0, NULL, &err), -1);
        assert_string_equal(err.code, ERR_UNAUTHORIZED);
        assert_non_null(strstr(err.msg, "jwt: header: invalid JSON"));
        assert_non_null(strstr(err.msg, "duplicate"));
}

static void test_header_crit_refused(void **state)
{
        _cleanup_free_ char *tok = make_token("{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}",
                                              good_payload);
        expect_reject(tok, NOW, 0, ERR_UNAUTHORIZED,
                      "jwt: header parameter \"crit\" is not supported");
}

static void test_header_not_an_object_refused(void **state)
{
        _cleanup_free_ char *tok = make_token("[\"HS256\"]", good_payload);
        expect_reject(tok, NOW, 0, ERR_UNAUTHORIZED,
                      "jwt: header: JSON top level must be an object, got array");
}

static void test_header_not_json_refused(void **state)
{
        _cleanup_free_ char *tok = make_token("alg=HS256", good_payload);
        err_t err = ERR_INIT;
        assert_int_equal(jwt_verify_hs256(tok, key, KEYLEN, NOW, 0, NULL, &err), -1);
        assert_string_equal(err.code, ERR_UNAUTHORIZED);
        assert_true(strncmp(err.msg, "jwt: header: invalid JSON at line 1", 35) == 0);
}

static void test_payload_not_an_object_refused(void **state)
{
        _cleanup_free_ char *tok = make_token(hs256_header, "[1700000300]");
        expect_reject(tok, NOW, 0, ERR_UNAUTHORIZED,
                      "jwt: payload: JSON top level must be an object, got array");
}

static void test_payload_duplicate_exp_refused(void **state)
{
        _cleanup_free_ char *tok = make_token(hs256_header,
                                              "{\"exp\":1,\"exp\":1800000000}");
        err_t err = ERR_INIT;
        assert_int_equal(jwt_verify_hs256(tok, key, KEYLEN, NOW, 0, NULL, &err), -1);
        assert_string_equal(err.code, ERR_UNAUTHORIZED);
        assert_non_null(strstr(err.msg, "duplicate"));
}

static void test_expired_at_exp_boundary_skew_0(void **state)
{
        _cleanup_free_ char *tok = make_token(hs256_header, good_payload);
        jwt_claims out;
        expect_accept(tok, NOW + 299, 0, &out);
        expect_reject(tok, NOW + 300, 0, ERR_EXPIRED,
                      "jwt: token expired at 1700000300 (now 1700000300)");
}

static void test_expired_boundary_with_skew_30(void **state)
{
        _cleanup_free_ char *tok = make_token(hs256_header, good_payload);
        jwt_claims out;
        expect_accept(tok, NOW + 329, 30, &out);
        expect_reject(tok, NOW + 330, 30, ERR_EXPIRED,
                      "jwt: token expired at 1700000300 (now 1700000330)");
}

static void test_expired_long_ago_reports_expired(void **state)
{
        /* spec §13 vector 180: TTL 1 s decoded 3 s later → expired */
        _cleanup_free_ char *tok = make_token(hs256_header,
                "{\"sub\":\"d\",\"tid\":\"t\",\"iat\":100,\"exp\":101}");
        expect_reject(tok, 103, 0, ERR_EXPIRED, NULL);
}

static void test_exp_int64_max_does_not_overflow(void **state)
{
        _cleanup_free_ char *tok = make_token(hs256_header,
                                              "{\"exp\":9223372036854775807}");
        jwt_claims out;
        expect_accept(tok, NOW, 30, &out);
        assert_true(out.exp == INT64_MAX);
        assert_string_equal(out.sub, "");
}

static void test_nbf_in_future_refused(void **state)
{
        _cleanup_free_ char *tok = make_token(hs256_header,
                "{\"sub\":\"d\",\"tid\":\"t\",\"nbf\":1700000001,\"exp\":1700000300}");
        expect_reject(tok, NOW, 0, ERR_UNAUTHORIZED,
                      "jwt: token not valid before 1700000001 (now 1700000000)");
        jwt_claims out;
        expect_accept(tok, NOW + 1, 0, &out);
}

static void test_nbf_within_skew_accepted(void **state)
{
        _cleanup_free_ char *tok = make_token(hs256_header,
                "{\"nbf\":1700000030,\"exp\":1700000300}");
        jwt_claims out;
        expect_accept(tok, NOW, 30, &out);
        expect_reject(tok, NOW - 1, 30, ERR_UNAUTHORIZED, NULL);
}

static void test_nbf_not_integer_refused(void **state)
{
        _cleanup_free_ char *tok = make_token(hs256_header,
                "{\"nbf\":\"1700000000\",\"exp\":1700000300}");
        expect_reject(tok, NOW, 0, ERR_UNAUTHORIZED,
                      "jwt: claim \"nbf\" must be an integer, got string");
}

static void test_iat_in_future_refused(void **state)
{
        _cleanup_free_ char *tok = make_token(hs256_header,
                "{\"iat\":1700000031,\"exp\":1700000300}");
        expect_reject(tok, NOW, 30, ERR_UNAUTHORIZED,
                      "jwt: token issued in the future (iat 1700000031, now 1700000000)");
        jwt_claims out;
        expect_accept(tok, NOW + 1, 30, &out);
}

static void test_iat_not_integer_refused(void **state)
{
        _cleanup_free_ char *tok = make_token(hs256_header,
                "{\"iat\":null,\"exp\":1700000300}");
        expect_reject(tok, NOW, 0, ERR_UNAUTHORIZED,
                      "jwt: claim \"iat\" must be an integer, got null");
}

static void test_exp_missing_refused(void **state)
{
        _cleanup_free_ char *tok = make_token(hs256_header, "{\"sub\":\"d\",\"tid\":\"t\"}");
        expect_reject(tok, NOW, 0, ERR_UNAUTHORIZED, "jwt: missing required claim \"exp\"");
}

static void test_exp_real_refused(void **state)
{
        _cleanup_free_ char *tok = make_token(hs256_header, "{\"exp\":1700000300.0}");
        expect_reject(tok, NOW, 0, ERR_UNAUTHORIZED,
                      "jwt: claim \"exp\" must be an integer, got number");
}

static void test_exp_exponent_form_refused(void **state)
{
        _cleanup_free_ char *tok = make_token(hs256_header, "{\"exp\":2e9}");
        expect_reject(tok, NOW, 0, ERR_UNAUTHORIZED,
                      "jwt: claim \"exp\" must be an integer, got number");
}

static void test_exp_string_refused(void **state)
{
        _cleanup_free_ char *tok = make_token(hs256_header, "{\"exp\":\"1700000300\"}");
        expect_reject(tok, NOW, 0, ERR_UNAUTHORIZED,
                      "jwt: claim \"exp\" must be an integer, got string");
}

static void test_exp_bool_refused(void **state)
{
        _cleanup_free_ char *tok = make_token(hs256_header, "{\"exp\":true}");
        expect_reject(tok, NOW, 0, ERR_UNAUTHORIZED,
                      "jwt: claim \"exp\" must be an integer, got boolean");
}

static void test_sub_not_string_refused(void **state)
{
        _cleanup_free_ char *tok = make_token(hs256_header, "{\"sub\":42,\"exp\":1700000300}");
        expect_reject(tok, NOW, 0, ERR_UNAUTHORIZED,
                      "jwt: claim \"sub\" must be a string, got integer");
}

static void test_tid_too_long_refused_not_truncated(void **state)
{
        char payload[400];
        char tid[129];
        memset(tid, 't', 128);
        tid[128] = '\0';
        int w = snprintf(payload, sizeof(payload), "{\"tid\":\"%s\",\"exp\":1700000300}", tid);
        assert_true(w > 0 && (size_t)w < sizeof(payload));
        _cleanup_free_ char *tok = make_token(hs256_header, payload);
        expect_reject(tok, NOW, 0, ERR_UNAUTHORIZED,
                      "jwt: claim \"tid\" is too long (128 bytes, max 127)");
}

static void test_tid_127_bytes_fits(void **state)
{
        char payload[400];
        char tid[128];
        memset(tid, 't', 127);
        tid[127] = '\0';
        int w = snprintf(payload, sizeof(payload), "{\"tid\":\"%s\",\"exp\":1700000300}", tid);
        assert_true(w > 0 && (size_t)w < sizeof(payload));
        _cleanup_free_ char *tok = make_token(hs256_header, payload);
        jwt_claims out;
        expect_accept(tok, NOW, 0, &out);
        assert_string_equal(out.tid, tid);
}

static void test_unknown_claims_ignored(void **state)
{
        _cleanup_free_ char *tok = make_token(hs256_header,
                "{\"aud\":[\"x\"],\"jti\":\"j\",\"exp\":1700000300,\"sub\":\"d\"}");
        jwt_claims out;
        expect_accept(tok, NOW, 0, &out);
        assert_string_equal(out.sub, "d");
        assert_false(out.has_iat);
}

static void test_one_segment_refused(void **state)
{
        /* spec §13 vector 181 */
        expect_reject("not-a-valid-jwt", NOW, 0, ERR_UNAUTHORIZED,
                      "jwt: token must have 3 dot-separated segments, got 1");
}

static void test_two_segments_refused(void **state)
{
        _cleanup_free_ char *tok = make_token(hs256_header, good_payload);
        *strrchr(tok, '.') = '\0';
        expect_reject(tok, NOW, 0, ERR_UNAUTHORIZED,
                      "jwt: token must have 3 dot-separated segments, got 2");
}

static void test_four_segments_refused(void **state)
{
        _cleanup_free_ char *tok = make_token(hs256_header, good_payload);
        char buf[1024];
        int w = snprintf(buf, sizeof(buf), "%s.AAAA", tok);
        assert_true(w > 0 && (size_t)w < sizeof(buf));
        expect_reject(buf, NOW, 0, ERR_UNAUTHORIZED,
                      "jwt: token must have 3 dot-separated segments, got 4");
}

static void test_empty_segments_refused(void **state)
{
        expect_reject("..", NOW, 0, ERR_UNAUTHORIZED, NULL);
        expect_reject("", NOW, 0, ERR_UNAUTHORIZED, NULL);
}

static void test_appended_character_refused(void **state)
{
        /* spec §13 vector 182: a valid token with "x" appended */
        _cleanup_free_ char *tok = make_token(hs256_header, good_payload);
        char buf[1024];
        int w = snprintf(buf, sizeof(buf), "%sx", tok);
        assert_true(w > 0 && (size_t)w < sizeof(buf));
        expect_reject(buf, NOW, 0, ERR_UNAUTHORIZED, NULL);
}

static void test_padding_in_signature_refused(void **state)
{
        _cleanup_free_ char *tok = make_token(hs256_header, good_payload);
        char buf[1024];
        int w = snprintf(buf, sizeof(buf), "%s=", tok);
        assert_true(w > 0 && (size_t)w < sizeof(buf));
        expect_reject(buf, NOW, 0, ERR_UNAUTHORIZED,
                      "jwt: signature: base64url: invalid character at offset 43");
}

static void test_padding_in_header_refused(void **state)
{
        /* {"alg": "HS256"} is 16 bytes: standard base64 pads it with "==" */
        _cleanup_free_ char *h = base64_encode("{\"alg\": \"HS256\"}", 16);
        assert_non_null(strchr(h, '='));
        _cleanup_free_ char *p = base64url_encode(good_payload, strlen(good_payload));
        char buf[1024];
        int w = snprintf(buf, sizeof(buf), "%s.%s.AAAA", h, p);
        assert_true(w > 0 && (size_t)w < sizeof(buf));
        expect_reject(buf, NOW, 0, ERR_UNAUTHORIZED,
                      "jwt: header: base64url: invalid character at offset 22");
}

static void test_oversized_token_refused(void **state)
{
        size_t n = JWT_MAX_TOKEN_LEN + 1;
        _cleanup_free_ char *tok = malloc(n + 1);
        assert_non_null(tok);
        memset(tok, 'A', n);
        tok[10] = '.';
        tok[20] = '.';
        tok[n] = '\0';
        expect_reject(tok, NOW, 0, ERR_UNAUTHORIZED, "jwt: token longer than 4096 bytes");
}

static void test_null_token_refused(void **state)
{
        expect_reject(NULL, NOW, 0, ERR_UNAUTHORIZED, "jwt: no token");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sign_verify_round_trip),
                cmocka_unit_test(test_sign_header_is_exact),
                cmocka_unit_test(test_sign_payload_has_spec_claims_in_order),
                cmocka_unit_test(test_sign_matches_hand_built_token),
                cmocka_unit_test(test_sign_with_nbf_round_trip),
                cmocka_unit_test(test_sign_refuses_empty_key),
                cmocka_unit_test(test_sign_refuses_unterminated_sub),
                cmocka_unit_test(test_sign_refuses_invalid_utf8),
                cmocka_unit_test(test_sign_max_length_claims_round_trip),
                cmocka_unit_test(test_verify_refuses_empty_key),
                cmocka_unit_test(test_verify_refuses_negative_skew),
                cmocka_unit_test(test_verify_out_may_be_null),
                cmocka_unit_test(test_wrong_key_is_bad_signature),
                cmocka_unit_test(test_tampered_payload_is_bad_signature),
                cmocka_unit_test(test_tampered_header_is_bad_signature),
                cmocka_unit_test(test_tampered_signature_is_bad_signature),
                cmocka_unit_test(test_truncated_signature_refused),
                cmocka_unit_test(test_alg_none_with_empty_signature_refused),
                cmocka_unit_test(test_alg_none_even_with_valid_mac_refused),
                cmocka_unit_test(test_alg_hs512_refused),
                cmocka_unit_test(test_alg_confusion_rs256_refused),
                cmocka_unit_test(test_alg_other_case_refused),
                cmocka_unit_test(test_alg_missing_refused),
                cmocka_unit_test(test_alg_not_a_string_refused),
                cmocka_unit_test(test_alg_hostile_string_is_sanitised_in_message),
                cmocka_unit_test(test_header_duplicate_alg_refused),
                cmocka_unit_test(test_header_crit_refused),
                cmocka_unit_test(test_header_not_an_object_refused),
                cmocka_unit_test(test_header_not_json_refused),
                cmocka_unit_test(test_payload_not_an_object_refused),
                cmocka_unit_test(test_payload_duplicate_exp_refused),
                cmocka_unit_test(test_expired_at_exp_boundary_skew_0),
                cmocka_unit_test(test_expired_boundary_with_skew_30),
                cmocka_unit_test(test_expired_long_ago_reports_expired),
                cmocka_unit_test(test_exp_int64_max_does_not_overflow),
                cmocka_unit_test(test_nbf_in_future_refused),
                cmocka_unit_test(test_nbf_within_skew_accepted),
                cmocka_unit_test(test_nbf_not_integer_refused),
                cmocka_unit_test(test_iat_in_future_refused),
                cmocka_unit_test(test_iat_not_integer_refused),
                cmocka_unit_test(test_exp_missing_refused),
                cmocka_unit_test(test_exp_real_refused),
                cmocka_unit_test(test_exp_exponent_form_refused),
                cmocka_unit_test(test_exp_string_refused),
                cmocka_unit_test(test_exp_bool_refused),
                cmocka_unit_test(test_sub_not_string_refused),
                cmocka_unit_test(test_tid_too_long_refused_not_truncated),
                cmocka_unit_test(test_tid_127_bytes_fits),
                cmocka_unit_test(test_unknown_claims_ignored),
                cmocka_unit_test(test_one_segment_refused),
                cmocka_unit_test(test_two_segments_refused),
                cmocka_unit_test(test_four_segments_refused),
                cmocka_unit_test(test_empty_segments_refused),
                cmocka_unit_test(test_appended_character_refused),
                cmocka_unit_test(test_padding_in_signature_refused),
                cmocka_unit_test(test_padding_in_header_refused),
                cmocka_unit_test(test_oversized_token_refused),
                cmocka_unit_test(test_null_token_refused),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
