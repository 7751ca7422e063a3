/* core/str.c — see str.h. */
#include "core/str.h"

#include <stdint.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Copies the first len bytes of src (no NUL among them). */
static int str_copy_len(char *dst, size_t dstsz, const char *src, size_t len)
{
        if (dstsz == 0) {
                errno = ENAMETOOLONG;
                return -1;
        }
        if (len >= dstsz) {
                memcpy(dst, src, dstsz - 1);
                dst[dstsz - 1] = '\0';
                errno = ENAMETOOLONG;
                return -1;
        }
        memcpy(dst, src, len);
        dst[len] = '\0';
        return 0;
}

int str_copyn(char *dst, size_t dstsz, const char *src, size_t n)
{
        if (!src) {
                errno = EINVAL;
                return -1;
        }
        return str_copy_len(dst, dstsz, src, strnlen(src, n));
}

int str_copy(char *dst, size_t dstsz, const char *src)
{
        if (!src) {
                errno = EINVAL;
                return -1;
        }
        return str_copy_len(dst, dstsz, src, strlen(src));
}

int str_printf(char *dst, size_t dstsz, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(dst, dstsz, fmt, ap);
        va_end(ap);
        if (n < 0) {
                if (dstsz > 0)
                        dst[0] = '\0';
                errno = EINVAL;
                return -1;
        }
        if ((size_t)n >= dstsz) {
                errno = ENAMETOOLONG;
                return -1;
        }
        return n;
}

char *str_dup_printf(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
                errno = EINVAL;
                return NULL;
        }
        char *p = malloc((size_t)n + 1);
        if (!p) {
                errno = ENOMEM;
                return NULL;
        }
        va_start(ap, fmt);
        int m = vsnprintf(p, (size_t)n + 1, fmt, ap);
        va_end(ap);
        if (m != n) {
                free(p); p = NULL;
                errno = EINVAL;
                return NULL;
        }
        return p;
}

int str_to_int64n(const char *s, size_t len, int64_t min, int64_t max, int64_t *out)
{
        if (!s || len == 0) {
                errno = EINVAL;
                return -1;
        }
        size_t i = 0;
        bool neg = false;
        /* No '+', no whitespace: the header's "allow_plus" never became a parameter, so a
         * sign other than '-' is simply not a number here. */
        if (s[0] == '-') {
                neg = true;
                i = 1;
        }
        if (i == len) {
                errno = EINVAL;
                return -1;
        }
        /* Check the syntax in full first, so "99999999999999999999x" is EINVAL, not ERANGE. */
        for (size_t j = i; j < len; j++) {
                if (s[j] < '0' || s[j] > '9') {
                        errno = EINVAL;
                        return -1;
                }
        }
        /* Accumulate as a negative number: its range includes INT64_MIN, the positive one
         * does not. */
        int64_t v = 0;
        for (; i < len; i++) {
                int d = s[i] - '0';
                if (v < (INT64_MIN + d) / 10) {
                        errno = ERANGE;
                        return -1;
                }
                v = v * 10 - d;
        }
        if (!neg) {
                if (v == INT64_MIN) {
                        errno = ERANGE;
                        return -1;
                }
                v = -v;
        }
        if (v < min || v > max) {
                errno = ERANGE;
                return -1;
        }
        *out = v;
        return 0;
}

int str_to_int64(const char *s, int64_t min, int64_t max, int64_t *out)
{
        if (!s) {
                errno = EINVAL;
                return -1;
        }
        return str_to_int64n(s, strlen(s), min, max, out);
}

bool str_has_prefix(const char *s, const char *prefix)
{
        if (!s || !prefix)
                return false;
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool str_has_suffix(const char *s, const char *suffix)
{
        if (!s || !suffix)
                return false;
        size_t n = strlen(s), m = strlen(suffix);
        return m <= n && memcmp(s + n - m, suffix, m) == 0;
}

static bool str_is_ascii_space(char c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

bool str_is_blank(const char *s)
{
        if (!s)
                return true;
        for (; *s; s++) {
                if (!str_is_ascii_space(*s))
                        return false;
        }
        return true;
}

char *str_ascii_lower(char *s)
{
        if (!s)
                return s;
        for (char *p = s; *p; p++) {
                if (*p >= 'A' && *p <= 'Z')
                        *p = (char)(*p - 'A' + 'a');
        }
        return s;
}

const char *str_trim(const char *s, size_t len, size_t *out_len)
{
        if (!s) {
                *out_len = 0;
                return s;
        }
        size_t a = 0, b = len;
        while (a < b && str_is_ascii_space(s[a]))
                a++;
        while (b > a && str_is_ascii_space(s[b - 1]))
                b--;
        *out_len = b - a;
        return s + a;
}

bool str_utf8_valid(const char *s, size_t len)
{
        const unsigned char *p = (const unsigned char *)s;
        size_t i = 0;
        while (i < len) {
                unsigned c = p[i];
                size_t w;
                uint32_t cp, min;
                if (c < 0x80) {
                        i++;
                        continue;
                } else if ((c & 0xe0) == 0xc0) {
                        w = 2;
                        cp = c & 0x1f;
                        min = 0x80;
                } else if ((c & 0xf0) == 0xe0) {
                        w = 3;
                        cp = c & 0x0f;
                        min = 0x800;
                } else if ((c & 0xf8) == 0xf0) {
                        w = 4;
                        cp = c & 0x07;
                        min = 0x10000;
                } else {
                        return false;
                }
                if (len - i < w)
                        return false;
                for (size_t k = 1; k < w; k++) {
                        if ((p[i + k] & 0xc0) != 0x80)
                                return false;
                        cp = (cp << 6) | (p[i + k] & 0x3f);
                }
                if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
                i += w;
        }
        return true;
}
