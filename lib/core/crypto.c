/* core/crypto.c — see crypto.h. */
#include "core/crypto.h"

#include <limits.h>
#include <stdlib.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

struct crypto_sha256_ctx {
        EVP_MD_CTX *md;
        bool finished;
};

/* OpenSSL wants a non-NULL pointer even for zero bytes. */
static const unsigned char empty_input[1];

void crypto_sha256(const void *data, size_t len, uint8_t out[CRYPTO_SHA256_LEN])
{
        SHA256(len ? data : empty_input, len, out);
}

int crypto_sha256_hex(const void *data, size_t len, char out[CRYPTO_SHA256_HEX_LEN + 1])
{
        uint8_t md[CRYPTO_SHA256_LEN];
        if (!SHA256(len ? data : empty_input, len, md)) {
                out[0] = '\0';
                return -1;
        }
        crypto_hex(md, sizeof(md), out);
        return 0;
}

crypto_sha256_ctx *crypto_sha256_new(void)
{
        crypto_sha256_ctx *c = calloc(1, sizeof(*c));
        if (!c)
                return NULL;
        c->md = EVP_MD_CTX_new();
        if (!c->md || EVP_DigestInit_ex(c->md, EVP_sha256(), NULL) != 1) {
                EVP_MD_CTX_free(c->md);
                free(c);
                return NULL;
        }
        return c;
}

int crypto_sha256_update(crypto_sha256_ctx *ctx, const void *data, size_t len)
{
        if (!ctx || ctx->finished)
                return -1;
        if (len == 0)
                return 0;
        return EVP_DigestUpdate(ctx->md, data, len) == 1 ? 0 : -1;
}

int crypto_sha256_final(crypto_sha256_ctx *ctx, uint8_t out[CRYPTO_SHA256_LEN])
{
        if (!ctx || ctx->finished)
                return -1;
        ctx->finished = true;
        unsigned int n = 0;
        if (EVP_DigestFinal_ex(ctx->md, out, &n) != 1 || n != CRYPTO_SHA256_LEN)
                return -1;
        return 0;
}

void crypto_sha256_free(crypto_sha256_ctx *ctx)
{
        if (!ctx)
                return;
        EVP_MD_CTX_free(ctx->md);
        ctx->md = NULL;
        free(ctx);
}

int crypto_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
                       uint8_t out[CRYPTO_SHA256_LEN])
{
        if (keylen > INT_MAX)
                return -1;
        unsigned int n = 0;
        if (!HMAC(EVP_sha256(), keylen ? key : empty_input, (int)keylen,
                  len ? data : empty_input, len, out, &n) || n != CRYPTO_SHA256_LEN)
                return -1;
        return 0;
}

int crypto_random(void *buf, size_t len, err_t *err)
{
        unsigned char *p = buf;
        /* RAND_bytes takes an int length; feed large requests in chunks. */
        while (len > 0) {
                int n = len > INT_MAX ? INT_MAX : (int)len;
                if (RAND_bytes(p, n) != 1) {
                        unsigned long e = ERR_get_error();
                        char ebuf[256];
                        ERR_error_string_n(e, ebuf, sizeof(ebuf));
                        return err_setc(err, ERR_SYSTEM, "crypto: random generator failed: %s",
                                        ebuf);
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

int crypto_random_hex(size_t nbytes, char *out, size_t outsz, err_t *err)
{
        /* outsz >= 2*nbytes+1 without overflowing the product. */
        if (outsz == 0 || nbytes > (outsz - 1) / 2)
                return err_set(err, "crypto: buffer of %zu bytes is too small for the hex of %zu "
                               "random bytes", outsz, nbytes);
        uint8_t chunk[64];
        size_t done = 0;
        while (done < nbytes) {
                size_t n = nbytes - done < sizeof(chunk) ? nbytes - done : sizeof(chunk);
                if (crypto_random(chunk, n, err) < 0) {
                        OPENSSL_cleanse(chunk, sizeof(chunk));
                        out[0] = '\0';
                        return -1;
                }
                crypto_hex(chunk, n, out + 2 * done);
                done += n;
        }
        OPENSSL_cleanse(chunk, sizeof(chunk));
        out[2 * nbytes] = '\0';
        return 0;
}

bool crypto_memeq(const void *a, const void *b, size_t len)
{
        if (len == 0)
                return true;
        return CRYPTO_memcmp(a, b, len) == 0;
}

void crypto_hex(const uint8_t *in, size_t len, char *out)
{
        static const char digits[] = "0123456789abcdef";
        for (size_t i = 0; i < len; i++) {
                out[2 * i] = digits[in[i] >> 4];
                out[2 * i + 1] = digits[in[i] & 0x0f];
        }
        out[2 * len] = '\0';
}
