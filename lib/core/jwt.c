/* core/jwt.c — see jwt.h. Spec mothership §4. */
#include "core/jwt.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"
#include "core/cleanup.h"
#include "core/crypto.h"
#include "core/json.h"

/* The only header we ever emit; verification does not depend on its exact bytes. */
static const char jwt_header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

/* How many characters of an attacker-chosen string go into a message. */
#define JWT_ECHO_MAX 32

/* Copies at most JWT_ECHO_MAX characters of s into out for an error message, replacing
 * anything but printable ASCII (and quotes/backslashes) with '?', so a hostile header cannot
 * inject control characters or bulk into logs. */
static void jwt_echo(const char *s, char out[JWT_ECHO_MAX + 4])
{
        size_t i = 0;
        for (; s[i] && i < JWT_ECHO_MAX; i++) {
                unsigned char c = (unsigned char)s[i];
                out[i] = (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') ? '?' : (char)c;
        }
        if (s[i]) {
                memcpy(out + i, "...", 3);
                i += 3;
        }
        out[i] = '\0';
}

/* a + b for b >= 0, saturating at INT64_MAX instead of overflowing. */
static int64_t jwt_sat_add(int64_t a, int64_t b)
{
        return a > INT64_MAX - b ? INT64_MAX : a + b;
}

/* Turns an error from base64/json into a verification failure ("jwt: <what>: <cause>"),
 * keeping system errors (ENOMEM) as they are. */
static int jwt_reject_wrapped(err_t *err, const char *what)
{
        err_wrap(err, "jwt: %s", what);
        if (!err->code || strcmp(err->code, ERR_SYSTEM) != 0)
                err->code = ERR_UNAUTHORIZED;
        return -1;
}

static int jwt_set_string(json_t *obj, const char *name, const char *value, size_t cap,
                          err_t *err)
{
        if (strnlen(value, cap) == cap)
                return err_set(err, "jwt: claim \"%s\" is not NUL-terminated", name);
        json_t *s = json_string(value);
        if (!s)
                return err_set(err, "jwt: claim \"%s\" is not valid UTF-8", name);
        if (json_object_set_new(obj, name, s) < 0)
                return err_errno(err, ENOMEM, "jwt: claim \"%s\"", name);
        return 0;
}

static int jwt_set_int(json_t *obj, const char *name, int64_t value, err_t *err)
{
        if (json_object_set_new(obj, name, json_integer((json_int_t)value)) < 0)
                return err_errno(err, ENOMEM, "jwt: claim \"%s\"", name);
        return 0;
}

char *jwt_sign_hs256(const uint8_t *key, size_t keylen, const jwt_claims *c, err_t *err)
{
        if (!key || keylen == 0) {
                err_set(err, "jwt: the signing key is empty");
                return NULL;
        }
        _cleanup_json_ json_t *claims = json_object();
        if (!claims) {
                err_errno(err, ENOMEM, "jwt: claims");
                return NULL;
        }
        /* Claim order follows spec §4's table; nbf only when asked for. */
        if (jwt_set_string(claims, "sub", c->sub, sizeof(c->sub), err) < 0 ||
            jwt_set_string(claims, "tid", c->tid, sizeof(c->tid), err) < 0 ||
            jwt_set_int(claims, "iat", c->iat, err) < 0 ||
            jwt_set_int(claims, "exp", c->exp, err) < 0 ||
            (c->has_nbf && jwt_set_int(claims, "nbf", c->nbf, err) < 0))
                return NULL;
        _cleanup_free_ char *payload = json_dump_compact(claims);
        _cleanup_free_ char *h64 = base64url_encode(jwt_header, strlen(jwt_header));
        _cleanup_free_ char *p64 = payload ? base64url_encode(payload, strlen(payload)) : NULL;
        if (!h64 || !p64) {
                err_errno(err, ENOMEM, "jwt: encode token");
                return NULL;
        }
        size_t hl = strlen(h64), pl = strlen(p64);
        /* header.payload.signature; a 32-byte MAC is 43 base64url characters. The parts are
         * bounded by jwt_claims, so the sum cannot overflow. */
        size_t total = hl + 1 + pl + 1 + 43;
        if (total > JWT_MAX_TOKEN_LEN) {
                err_setc(err, ERR_TOO_LARGE, "jwt: token of %zu bytes exceeds %d", total,
                         JWT_MAX_TOKEN_LEN);
                return NULL;
        }
        _cleanup_free_ char *tok = malloc(total + 1);
        if (!tok) {
                err_errno(err, ENOMEM, "jwt: encode token");
                return NULL;
        }
        memcpy(tok, h64, hl);
        tok[hl] = '.';
        memcpy(tok + hl + 1, p64, pl);
        uint8_t mac[CRYPTO_SHA256_LEN];
        if (crypto_hmac_sha256(key, keylen, tok, hl + 1 + pl, mac) < 0) {
                err_setc(err, ERR_INTERNAL, "jwt: HMAC-SHA256 failed");
                return NULL;
        }
        _cleanup_free_ char *s64 = base64url_encode(mac, sizeof(mac));
        if (!s64) {
                err_errno(err, ENOMEM, "jwt: encode token");
                return NULL;
        }
        tok[hl + 1 + pl] = '.';
        memcpy(tok + hl + 1 + pl + 1, s64, 43);
        tok[total] = '\0';
        return steal_ptr(&tok);
}

/* Decodes one base64url segment and parses it as a JSON object. */
static json_t *jwt_decode_json(const char *seg, size_t len, const char *what, err_t *err)
{
        _cleanup_free_ uint8_t *raw = NULL;
        size_t rawlen = 0;
        if (base64url_decode(seg, len, JWT_MAX_TOKEN_LEN, &raw, &rawlen, err) < 0) {
                jwt_reject_wrapped(err, what);
                return NULL;
        }
        json_t *j = json_parse((const char *)raw, rawlen, true, err);
        if (!j)
                jwt_reject_wrapped(err, what);
        return j;
}

/* RFC 7515 §4.1.1 and spec §4: the algorithm is pinned to HS256, whatever the token says.
 * "crit" names extensions that must be understood; we understand none (§4.1.11). */
static int jwt_check_header(const json_t *hdr, err_t *err)
{
        char echo[JWT_ECHO_MAX + 4];
        json_t *alg = json_object_get(hdr, "alg");
        if (!alg)
                return err_setc(err, ERR_UNAUTHORIZED, "jwt: header has no \"alg\"");
        if (!json_is_string(alg))
                return err_setc(err, ERR_UNAUTHORIZED, "jwt: header \"alg\" must be a string, "
                                "got %s", json_type_name(alg));
        if (strcmp(json_string_value(alg), "HS256") != 0) {
                jwt_echo(json_string_value(alg), echo);
                return err_setc(err, ERR_UNAUTHORIZED, "jwt: algorithm \"%s\" is not accepted",
                                echo);
        }
        if (json_object_get(hdr, "crit"))
                return err_setc(err, ERR_UNAUTHORIZED,
                                "jwt: header parameter \"crit\" is not supported");
        return 0;
}

static int jwt_claim_int(const json_t *p, const char *name, bool required, int64_t *out,
                         bool *present, err_t *err)
{
        json_t *v = json_object_get(p, name);
        *present = false;
        if (!v) {
                if (required)
                        return err_setc(err, ERR_UNAUTHORIZED,
                                        "jwt: missing required claim \"%s\"", name);
                return 0;
        }
        /* Reals (even 1e9), strings and null are refused: one value, one spelling. */
        if (!json_is_integer(v))
                return err_setc(err, ERR_UNAUTHORIZED, "jwt: claim \"%s\" must be an integer, "
                                "got %s", name, json_type_name(v));
        *out = (int64_t)json_integer_value(v);
        *present = true;
        return 0;
}

static int jwt_claim_string(const json_t *p, const char *name, char *out, size_t cap,
                            err_t *err)
{
        json_t *v = json_object_get(p, name);
        out[0] = '\0';
        if (!v)
                return 0;
        if (!json_is_string(v))
                return err_setc(err, ERR_UNAUTHORIZED, "jwt: claim \"%s\" must be a string, "
                                "got %s", name, json_type_name(v));
        /* jansson refuses \u0000 when parsing, so the length is the C string's. */
        size_t n = json_string_length(v);
        if (n >= cap)
                return err_setc(err, ERR_UNAUTHORIZED, "jwt: claim \"%s\" is too long (%zu "
                                "bytes, max %zu)", name, n, cap - 1);
        memcpy(out, json_string_value(v), n + 1);
        return 0;
}

int jwt_verify_hs256(const char *token, const uint8_t *key, size_t keylen, int64_t now_s,
                     int64_t skew_s, jwt_claims *out, err_t *err)
{
        if (!key || keylen == 0)
                return err_set(err, "jwt: the verification key is empty");
        if (skew_s < 0)
                return err_set(err, "jwt: clock skew %" PRId64 " must not be negative", skew_s);
        if (!token)
                return err_setc(err, ERR_UNAUTHORIZED, "jwt: no token");
        size_t len = strnlen(token, JWT_MAX_TOKEN_LEN + 1);
        if (len > JWT_MAX_TOKEN_LEN)
                return err_setc(err, ERR_UNAUTHORIZED, "jwt: token longer than %d bytes",
                                JWT_MAX_TOKEN_LEN);

        /* RFC 7515 §7.1: exactly three segments (JWE's five and anything else refused). */
        const char *dot[2] = { NULL, NULL };
        size_t ndots = 0;
        for (size_t i = 0; i < len; i++) {
                if (token[i] != '.')
                        continue;
                if (ndots < 2)
                        dot[ndots] = token + i;
                ndots++;
        }
        if (ndots != 2)
                return err_setc(err, ERR_UNAUTHORIZED, "jwt: token must have 3 dot-separated "
                                "segments, got %zu", ndots + 1);
        const char *hseg = token, *pseg = dot[0] + 1, *sseg = dot[1] + 1;
        size_t hlen = (size_t)(dot[0] - hseg), plen = (size_t)(dot[1] - pseg);
        size_t slen = len - (size_t)(sseg - token);

        _cleanup_json_ json_t *hdr = jwt_decode_json(hseg, hlen, "header", err);
        if (!hdr)
                return -1;
        if (jwt_check_header(hdr, err) < 0)
                return -1;

        /* The signature is checked before the payload is decoded, so nothing an attacker
         * wrote there is interpreted unless it carries our MAC. */
        _cleanup_free_ uint8_t *sig = NULL;
        size_t siglen = 0;
        if (base64url_decode(sseg, slen, JWT_MAX_TOKEN_LEN, &sig, &siglen, err) < 0)
                return jwt_reject_wrapped(err, "signature");
        uint8_t mac[CRYPTO_SHA256_LEN];
        if (crypto_hmac_sha256(key, keylen, token, (size_t)(dot[1] - token), mac) < 0)
                return err_setc(err, ERR_INTERNAL, "jwt: HMAC-SHA256 failed");
        if (siglen != sizeof(mac) || !crypto_memeq(mac, sig, sizeof(mac)))
                return err_setc(err, ERR_UNAUTHORIZED, "jwt: bad signature");

        _cleanup_json_ json_t *payload = jwt_decode_json(pseg, plen, "payload", err);
        if (!payload)
                return -1;
        jwt_claims c;
        memset(&c, 0, sizeof(c));
        bool has_exp = false;
        if (jwt_claim_int(payload, "exp", true, &c.exp, &has_exp, err) < 0 ||
            jwt_claim_int(payload, "nbf", false, &c.nbf, &c.has_nbf, err) < 0 ||
            jwt_claim_int(payload, "iat", false, &c.iat, &c.has_iat, err) < 0 ||
            jwt_claim_string(payload, "sub", c.sub, sizeof(c.sub), err) < 0 ||
            jwt_claim_string(payload, "tid", c.tid, sizeof(c.tid), err) < 0)
                return -1;

        int64_t later = jwt_sat_add(now_s, skew_s);
        if (c.has_nbf && c.nbf > later)
                return err_setc(err, ERR_UNAUTHORIZED, "jwt: token not valid before %" PRId64
                                " (now %" PRId64 ")", c.nbf, now_s);
        /* Spec §4 leaves iat unchecked; a token from the future can only come from a
         * skewed or compromised signer, so it is refused (beyond the leeway). */
        if (c.has_iat && c.iat > later)
                return err_setc(err, ERR_UNAUTHORIZED, "jwt: token issued in the future (iat %"
                                PRId64 ", now %" PRId64 ")", c.iat, now_s);
        /* Spec §4: valid while now < exp (plus leeway). Checked last, so ERR_EXPIRED means
         * "otherwise valid". */
        if (now_s >= jwt_sat_add(c.exp, skew_s))
                return err_setc(err, ERR_EXPIRED, "jwt: token expired at %" PRId64 " (now %"
                                PRId64 ")", c.exp, now_s);
        if (out)
                *out = c;
        return 0;
}
