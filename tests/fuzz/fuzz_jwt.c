/* tests/fuzz/fuzz_jwt.c — core/jwt HS256 verification.
 *
 * 1. The bytes as a token: verification must never crash, leak or succeed without err
 *    discipline (a failure always sets err).
 * 2. Claims derived from the bytes are signed and verified at a derived time and leeway:
 *    the verdict must match the rules of jwt.h exactly (ERR_EXPIRED only for expiry), the
 *    claims must round-trip, a different key must fail, and changing any one character of
 *    the token must make it fail (canonical base64url + MAC). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t fuzz_key[] = "fuzz-key-0123456789abcdef";
#define FUZZ_KEYLEN (sizeof(fuzz_key) - 1)
#define FUZZ_NOW 1700000000LL

struct reader {
        const uint8_t *p;
        size_t left;
};

static uint8_t rd8(struct reader *r)
{
        if (!r->left)
                return 0;
        r->left--;
        return *r->p++;
}

static int64_t rd64(struct reader *r)
{
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
                v = v << 8 | rd8(r);
        int64_t s;
        memcpy(&s, &v, sizeof(s));
        return s;
}

/* ASCII 1..127 up to a 0 byte, the end of input or the buffer's capacity. */
static void rdstr(struct reader *r, char *out, size_t cap)
{
        size_t n = 0;
        while (n + 1 < cap && r->left) {
                uint8_t b = rd8(r) & 0x7f;
                if (!b)
                        break;
                out[n++] = (char)b;
        }
        out[n] = '\0';
}

static int64_t sat_add(int64_t a, int64_t b)
{
        return a > INT64_MAX - b ? INT64_MAX : a + b;
}

/* base + off without overflow (now may be INT64_MAX when drawn from the bytes). */
static int64_t near(int64_t base, uint8_t b)
{
        int64_t off = (int8_t)b;
        if (off > 0 && base > INT64_MAX - off)
                return INT64_MAX;
        if (off < 0 && base < INT64_MIN - off)
                return INT64_MIN;
        return base + off;
}

static void verify_raw(const uint8_t *data, size_t size)
{
        char *tok = malloc(size + 1);
        if (!tok)
                return;
        memcpy(tok, data, size);
        tok[size] = '\0';
        err_t err = ERR_INIT;
        jwt_claims out;
        int r = jwt_verify_hs256(tok, fuzz_key, FUZZ_KEYLEN, FUZZ_NOW, 30, &out, &err);
        if (r < 0 && !err_is_set(&err))
                __builtin_trap();
        if (r == 0 && (strnlen(out.sub, sizeof(out.sub)) == sizeof(out.sub) ||
                       strnlen(out.tid, sizeof(out.tid)) == sizeof(out.tid) ||
                       FUZZ_NOW >= sat_add(out.exp, 30)))
                __builtin_trap();
        free(tok);
        tok = NULL;
}

static void sign_and_verify(const uint8_t *data, size_t size)
{
        struct reader rd = { data, size };
        jwt_claims c;
        memset(&c, 0, sizeof(c));
        uint8_t flags = rd8(&rd);
        /* Small offsets around FUZZ_NOW exercise the boundaries; raw values the extremes. */
        int64_t now = (flags & 2) ? rd64(&rd) : FUZZ_NOW;
        c.iat = (flags & 4) ? rd64(&rd) : near(now, rd8(&rd));
        c.exp = (flags & 8) ? rd64(&rd) : near(now, rd8(&rd));
        c.has_nbf = flags & 1;
        if (c.has_nbf)
                c.nbf = (flags & 16) ? rd64(&rd) : near(now, rd8(&rd));
        int64_t skew = rd8(&rd) & 0x3f;
        size_t flip = rd8(&rd);
        uint8_t flipc = rd8(&rd);
        rdstr(&rd, c.sub, sizeof(c.sub));
        rdstr(&rd, c.tid, sizeof(c.tid));

        err_t err = ERR_INIT;
        char *tok = jwt_sign_hs256(fuzz_key, FUZZ_KEYLEN, &c, &err);
        if (!tok)
                __builtin_trap(); /* ASCII claims always sign */

        jwt_claims out;
        memset(&out, 0, sizeof(out));
        int r = jwt_verify_hs256(tok, fuzz_key, FUZZ_KEYLEN, now, skew, &out, &err);
        int64_t later = sat_add(now, skew);
        bool early = (c.has_nbf && c.nbf > later) || c.iat > later;
        bool expired = now >= sat_add(c.exp, skew);
        if (r == 0) {
                if (early || expired)
                        __builtin_trap();
                if (strcmp(out.sub, c.sub) || strcmp(out.tid, c.tid) || out.iat != c.iat ||
                    out.exp != c.exp || !out.has_iat || out.has_nbf != c.has_nbf ||
                    (c.has_nbf && out.nbf != c.nbf))
                        __builtin_trap();
        } else {
                if (!early && !expired)
                        __builtin_trap();
                bool is_expired_code = strcmp(err.code, ERR_EXPIRED) == 0;
                if (is_expired_code != (!early && expired))
                        __builtin_trap();
        }

        /* A different key never verifies. */
        static const uint8_t other[] = "fuzz-key-0123456789abcdeF";
        err_clear(&err);
        if (jwt_verify_hs256(tok, other, sizeof(other) - 1, now, skew, NULL, &err) == 0)
                __builtin_trap();

        /* Any one changed character makes the token invalid; checked at a time when the
         * original is valid, so the failure cannot come from the clock. */
        size_t len = strlen(tok);
        size_t pos = flip % len;
        char nc = (char)(flipc & 0x7f);
        if (nc && nc != tok[pos]) {
                tok[pos] = nc;
                err_clear(&err);
                int64_t ok_now = c.iat > now ? c.iat : now;
                if (!(c.has_nbf && c.nbf > ok_now) && ok_now < c.exp &&
                    jwt_verify_hs256(tok, fuzz_key, FUZZ_KEYLEN, ok_now, 0, NULL, &err) == 0)
                        __builtin_trap();
        }
        free(tok);
        tok = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        verify_raw(data, size);
        sign_and_verify(data, size);
        return 0;
}
