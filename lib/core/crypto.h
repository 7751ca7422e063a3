/* core/crypto.h — hashing, HMAC, randomness and constant-time comparison (OpenSSL libcrypto,
 * DESIGN D3).
 *
 * SHA-256 (FIPS 180-4) one-shot and incremental (for files and blobs), HMAC-SHA-256
 * (RFC 2104, used by the directive JWT), random bytes from the OpenSSL CSPRNG (a failure is
 * an error, never a silent fallback to something weaker), and comparison of secrets in
 * constant time. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/error.h"

#define CRYPTO_SHA256_LEN 32
#define CRYPTO_SHA256_HEX_LEN 64   /* without NUL */

/* SHA-256 of data[0..len). Cannot fail for valid arguments (OpenSSL one-shot). */
void crypto_sha256(const void *data, size_t len, uint8_t out[CRYPTO_SHA256_LEN]);
/* Lower-case hex of SHA-256, NUL-terminated. Returns 0, or -1 if the digest failed. */
int crypto_sha256_hex(const void *data, size_t len, char out[CRYPTO_SHA256_HEX_LEN + 1]);

/* Incremental SHA-256. new() returns NULL on ENOMEM. update/final return 0 or -1; after
 * final() the context refuses further update/final (-1). free(NULL) is a no-op. */
typedef struct crypto_sha256_ctx crypto_sha256_ctx;
crypto_sha256_ctx *crypto_sha256_new(void);
int crypto_sha256_update(crypto_sha256_ctx *ctx, const void *data, size_t len);
int crypto_sha256_final(crypto_sha256_ctx *ctx, uint8_t out[CRYPTO_SHA256_LEN]);
void crypto_sha256_free(crypto_sha256_ctx *ctx);

static inline void crypto_sha256_freep(crypto_sha256_ctx **p)
{
        crypto_sha256_free(*p);
        *p = NULL;
}
#define _cleanup_sha256_ __attribute__((cleanup(crypto_sha256_freep)))

/* HMAC-SHA-256 (RFC 2104). Any key length, including 0. Returns 0, or -1 on failure. */
int crypto_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
                       uint8_t out[CRYPTO_SHA256_LEN]);

/* Fills buf with len bytes from the CSPRNG. Returns 0, or -1 with err (ERR_SYSTEM). */
int crypto_random(void *buf, size_t len, err_t *err);
/* nbytes random bytes as lower-case hex (2*nbytes chars + NUL) into out, for tokens.
 * Fails with ERR_INVALID if outsz < 2*nbytes+1. */
int crypto_random_hex(size_t nbytes, char *out, size_t outsz, err_t *err);

/* True if a and b hold the same len bytes; time depends on len only (CRYPTO_memcmp). */
bool crypto_memeq(const void *a, const void *b, size_t len);

/* Lower-case hex of in[0..len) into out, which must hold 2*len+1 bytes. */
void crypto_hex(const uint8_t *in, size_t len, char *out);
