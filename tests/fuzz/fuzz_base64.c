/* tests/fuzz/fuzz_base64.c — core/base64 strict decoding.
 *
 * Property: decoding is canonical. Whenever the input decodes (standard or URL alphabet),
 * encoding the result gives back exactly the input; and encoding the raw bytes always
 * decodes back to them. A failed decode must explain itself in err. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_decode(const uint8_t *data, size_t size, int url)
{
        const char *in = (const char *)data;
        err_t err = ERR_INIT;
        uint8_t *out = NULL;
        size_t outlen = 0;
        int r = url ? base64url_decode(in, size, size, &out, &outlen, &err)
                    : base64_decode(in, size, size, &out, &outlen, &err);
        if (r < 0) {
                if (!err_is_set(&err) || out)
                        __builtin_trap();
                return;
        }
        if (!out || out[outlen] != '\0')
                __builtin_trap();
        char *re = url ? base64url_encode(out, outlen) : base64_encode(out, outlen);
        free(out);
        out = NULL;
        if (!re)
                return; /* ENOMEM is not a finding */
        if (strlen(re) != size || memcmp(re, data, size) != 0)
                __builtin_trap();
        free(re);
        re = NULL;
}

static void check_encode(const uint8_t *data, size_t size, int url)
{
        char *enc = url ? base64url_encode(data, size) : base64_encode(data, size);
        if (!enc)
                return;
        err_t err = ERR_INIT;
        uint8_t *out = NULL;
        size_t outlen = 0;
        size_t elen = strlen(enc);
        int r = url ? base64url_decode(enc, elen, size, &out, &outlen, &err)
                    : base64_decode(enc, elen, size, &out, &outlen, &err);
        free(enc);
        enc = NULL;
        if (r < 0 || outlen != size || (size && memcmp(out, data, size) != 0))
                __builtin_trap();
        free(out);
        out = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        check_decode(data, size, 0);
        check_decode(data, size, 1);
        check_encode(data, size, 0);
        check_encode(data, size, 1);
        return 0;
}
