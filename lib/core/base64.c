/* core/base64.c — see base64.h.
 *
 * Decoding is strict on purpose: a token or a blob digest has exactly one accepted spelling,
 * so two different strings never decode to the same bytes (RFC 4648 §3.5 canonical
 * encoding). That closes parser-differential tricks such as "QR==" vs "QQ==". */
#include "core/base64.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

static const char std_alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Value 0..63 of c in the chosen alphabet, or -1. Range tests instead of a table keep every
 * other byte (whitespace, NUL, '=', the other alphabet's 62/63) out by construction. */
static int b64_value(unsigned char c, bool url)
{
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == (url ? '-' : '+'))
                return 62;
        if (c == (url ? '_' : '/'))
                return 63;
        return -1;
}

size_t base64_encoded_len(size_t n)
{
        size_t groups = n / 3 + (n % 3 != 0);
        /* Not representable: callers treat SIZE_MAX as "too large" (encode returns NULL). */
        if (groups > SIZE_MAX / 4)
                return SIZE_MAX;
        return groups * 4;
}

/* Unpadded length for base64url: 4 chars per full group, 2 or 3 for a 1- or 2-byte tail. */
static size_t base64url_encoded_len(size_t n)
{
        size_t full = n / 3, rem = n % 3;
        if (full > (SIZE_MAX - 3) / 4)
                return SIZE_MAX;
        return full * 4 + (rem ? rem + 1 : 0);
}

static char *encode(const void *data, size_t len, bool url)
{
        const char *alpha = url ? url_alphabet : std_alphabet;
        size_t outlen = url ? base64url_encoded_len(len) : base64_encoded_len(len);
        if (outlen == SIZE_MAX)
                return NULL;
        char *out = malloc(outlen + 1);
        if (!out)
                return NULL;
        const uint8_t *in = data;
        size_t i = 0, o = 0;
        for (; len - i >= 3; i += 3) {
                uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
                out[o++] = alpha[v >> 18 & 63];
                out[o++] = alpha[v >> 12 & 63];
                out[o++] = alpha[v >> 6 & 63];
                out[o++] = alpha[v & 63];
        }
        if (len - i == 1) {
                uint32_t v = (uint32_t)in[i] << 16;
                out[o++] = alpha[v >> 18 & 63];
                out[o++] = alpha[v >> 12 & 63];
                if (!url) {
                        out[o++] = '=';
                        out[o++] = '=';
                }
        } else if (len - i == 2) {
                uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
                out[o++] = alpha[v >> 18 & 63];
                out[o++] = alpha[v >> 12 & 63];
                out[o++] = alpha[v >> 6 & 63];
                if (!url)
                        out[o++] = '=';
        }
        out[o] = '\0';
        return out;
}

char *base64_encode(const void *data, size_t len)
{
        return encode(data, len, false);
}

char *base64url_encode(const void *data, size_t len)
{
        return encode(data, len, true);
}

/* Decodes ndata alphabet characters (no padding) whose validity has been checked by the
 * caller's scan. The last group may hold 2 or 3 characters. */
static void decode_checked(const char *in, size_t ndata, bool url, uint8_t *out)
{
        size_t i = 0, o = 0;
        for (; ndata - i >= 4; i += 4) {
                uint32_t v = (uint32_t)b64_value((unsigned char)in[i], url) << 18 |
                             (uint32_t)b64_value((unsigned char)in[i + 1], url) << 12 |
                             (uint32_t)b64_value((unsigned char)in[i + 2], url) << 6 |
                             (uint32_t)b64_value((unsigned char)in[i + 3], url);
                out[o++] = (uint8_t)(v >> 16);
                out[o++] = (uint8_t)(v >> 8);
                out[o++] = (uint8_t)v;
        }
        size_t rem = ndata - i;
        if (rem >= 2) {
                uint32_t v = (uint32_t)b64_value((unsigned char)in[i], url) << 18 |
                             (uint32_t)b64_value((unsigned char)in[i + 1], url) << 12;
                if (rem == 3)
                        v |= (uint32_t)b64_value((unsigned char)in[i + 2], url) << 6;
                out[o++] = (uint8_t)(v >> 16);
                if (rem == 3)
                        out[o++] = (uint8_t)(v >> 8);
        }
}

/* Shared tail of both decoders: ndata valid characters, rem = ndata % 4 (0, 2 or 3). */
static int decode_finish(const char *in, size_t ndata, bool url, size_t max_out,
                         uint8_t **out, size_t *outlen, err_t *err)
{
        const char *name = url ? "base64url" : "base64";
        size_t rem = ndata % 4;
        /* RFC 4648 §3.5: the bits after the last full byte must be zero, otherwise two
         * spellings decode to the same bytes. */
        if (rem == 2 && (b64_value((unsigned char)in[ndata - 1], url) & 0x0f))
                return err_set(err, "%s: non-canonical trailing bits at offset %zu", name,
                               ndata - 1);
        if (rem == 3 && (b64_value((unsigned char)in[ndata - 1], url) & 0x03))
                return err_set(err, "%s: non-canonical trailing bits at offset %zu", name,
                               ndata - 1);
        /* No overflow: ndata/4*3 < ndata. */
        size_t n = ndata / 4 * 3 + (rem ? rem - 1 : 0);
        if (n > max_out)
                return err_setc(err, ERR_TOO_LARGE,
                                "%s: decoded size %zu exceeds the limit of %zu bytes", name, n,
                                max_out);
        uint8_t *buf = malloc(n + 1);
        if (!buf)
                return err_errno(err, ENOMEM, "%s: decode %zu bytes", name, n);
        decode_checked(in, ndata, url, buf);
        buf[n] = '\0';
        *out = buf;
        *outlen = n;
        return 0;
}

int base64_decode(const char *in, size_t inlen, size_t max_out, uint8_t **out, size_t *outlen,
                  err_t *err)
{
        *out = NULL;
        *outlen = 0;
        if (inlen % 4 != 0)
                return err_set(err, "base64: length %zu is not a multiple of 4", inlen);
        /* '=' may only be the last one or two characters (RFC 4648 §4). */
        size_t pad = 0;
        if (inlen >= 1 && in[inlen - 1] == '=') {
                pad = 1;
                if (in[inlen - 2] == '=')
                        pad = 2;
        }
        size_t ndata = inlen - pad;
        for (size_t i = 0; i < ndata; i++) {
                if (b64_value((unsigned char)in[i], false) < 0)
                        return err_set(err, "base64: invalid character at offset %zu", i);
        }
        return decode_finish(in, ndata, false, max_out, out, outlen, err);
}

int base64url_decode(const char *in, size_t inlen, size_t max_out, uint8_t **out,
                     size_t *outlen, err_t *err)
{
        *out = NULL;
        *outlen = 0;
        for (size_t i = 0; i < inlen; i++) {
                if (b64_value((unsigned char)in[i], true) < 0)
                        return err_set(err, "base64url: invalid character at offset %zu", i);
        }
        /* One leftover character carries only 6 bits: no byte can end there. */
        if (inlen % 4 == 1)
                return err_set(err, "base64url: impossible length %zu (length %% 4 == 1)",
                               inlen);
        return decode_finish(in, inlen, true, max_out, out, outlen, err);
}
