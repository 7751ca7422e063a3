/* core/base64.h — RFC 4648 base64.
 *
 * Standard alphabet (§4) with '=' padding, decoded strictly: no whitespace or line breaks,
 * no missing or extra padding, no stray characters, and non-canonical trailing bits (e.g.
 * "QR==") are refused. The URL-safe alphabet (§5) without padding is what JWT uses. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "core/error.h"

/* Length of the padded standard encoding of n bytes (without NUL). */
size_t base64_encoded_len(size_t n);
/* Returns a malloc'd NUL-terminated encoding, or NULL on ENOMEM. */
char *base64_encode(const void *data, size_t len);
/* Decodes in[0..inlen). On success *out is malloc'd (NUL-terminated for convenience, not
 * counted in *outlen). Fails with err (ERR_INVALID, naming the offending offset) on bad
 * input, or ERR_TOO_LARGE when the decoded size would exceed max_out. */
int base64_decode(const char *in, size_t inlen, size_t max_out, uint8_t **out, size_t *outlen,
                  err_t *err);

/* URL-safe alphabet, no padding (RFC 7515 §2 base64url). */
char *base64url_encode(const void *data, size_t len);
/* Strict: refuses '=', '+', '/', whitespace, impossible lengths and non-canonical bits. */
int base64url_decode(const char *in, size_t inlen, size_t max_out, uint8_t **out,
                     size_t *outlen, err_t *err);
