/* core/jwt.h — directive tokens: compact JWS with HS256 (RFC 7515/7519, spec mothership §4).
 *
 * Only HS256 is ever accepted: the algorithm is pinned, so "none", other HMACs, RSA/EC
 * (algorithm confusion) and any header with "crit" are refused. Segments are strict base64url
 * without padding, JSON duplicate keys are refused, and the signature is checked in constant
 * time before the payload is even decoded. Expiry fails with code ERR_EXPIRED, every other
 * verification failure with ERR_UNAUTHORIZED (spec §3.1.2 reports them differently). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/error.h"

/* Hard cap on a token's length; longer input is refused before any decoding. */
#define JWT_MAX_TOKEN_LEN 4096

typedef struct jwt_claims {
        char sub[128];           /* directive id */
        char tid[128];           /* territory id */
        int64_t iat, exp, nbf;   /* Unix seconds */
        bool has_nbf;
        bool has_iat;            /* set by verify; sign always writes iat */
} jwt_claims;

/* Signs claims sub, tid, iat, exp (and nbf when has_nbf) under header
 * {"alg":"HS256","typ":"JWT"}. sub and tid must be NUL-terminated UTF-8. Returns a malloc'd
 * token, or NULL with err set. The key must not be empty. */
char *jwt_sign_hs256(const uint8_t *key, size_t keylen, const jwt_claims *c, err_t *err);

/* Verifies token at time now_s with leeway skew_s (>= 0): valid iff the signature matches,
 * now_s < exp + skew_s, nbf (if present) <= now_s + skew_s and iat (if present)
 * <= now_s + skew_s. exp is required; sub/tid, when present, must be strings that fit
 * jwt_claims (absent ones are left empty). On success fills *out (may be NULL) and returns 0;
 * otherwise returns -1 with err set (ERR_EXPIRED, ERR_UNAUTHORIZED, or ERR_INVALID for an
 * empty key or negative skew). */
int jwt_verify_hs256(const char *token, const uint8_t *key, size_t keylen, int64_t now_s,
                     int64_t skew_s, jwt_claims *out, err_t *err);
