/* core/buf.c — see buf.h.
 *
 * Invariants: len <= max; when data != NULL, alloc >= len + 1 and data[len] == '\0'; alloc never
 * exceeds max + 1 (the cap plus the NUL). Every failure leaves len and the bytes unchanged. */
#include "core/buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* First allocation; small enough for headers and short lines, doubling from there. */
#define BUF_MIN_ALLOC 64

/* Picks the allocation size for a buffer that must hold need bytes (NUL included): doubling
 * from the current size, clamped to max + 1. need has already been checked against the cap. */
static size_t buf_grow_size(const buf *b, size_t need)
{
        size_t limit = b->max == SIZE_MAX ? SIZE_MAX : b->max + 1;
        size_t n = b->alloc ? b->alloc : BUF_MIN_ALLOC;
        while (n < need) {
                if (n > SIZE_MAX / 2) {
                        n = need;
                        break;
                }
                n *= 2;
        }
        if (n > limit)
                n = limit;
        if (n < need)
                n = need;
        return n;
}

/* Makes room for n more bytes plus the NUL. Returns 0, or -1 with errno set; b unchanged. */
static int buf_reserve(buf *b, size_t n)
{
        if (b->len > b->max || n > b->max - b->len) {
                errno = EMSGSIZE;
                return -1;
        }
        /* len + n <= max here; the NUL needs one more byte, which SIZE_MAX cannot give. */
        if (b->len + n == SIZE_MAX) {
                errno = ENOMEM;
                return -1;
        }
        size_t need = b->len + n + 1;
        if (b->data && need <= b->alloc)
                return 0;
        size_t want = buf_grow_size(b, need);
        char *p = realloc(b->data, want);
        if (!p) {
                errno = ENOMEM;
                return -1;
        }
        if (!b->data)
                p[0] = '\0';
        b->data = p;
        b->alloc = want;
        return 0;
}

int buf_append(buf *b, const void *p, size_t n)
{
        if (!p && n > 0) {
                errno = EINVAL;
                return -1;
        }
        /* Appending a slice of the buffer itself must survive the realloc that may move it. */
        uintptr_t up = (uintptr_t)p, ud = (uintptr_t)b->data;
        int self = b->data && n > 0 && up >= ud && up < ud + b->alloc;
        size_t off = self ? (size_t)(up - ud) : 0;
        if (buf_reserve(b, n) < 0)
                return -1;
        if (n > 0) {
                const char *src = self ? b->data + off : p;
                memmove(b->data + b->len, src, n);
        }
        b->len += n;
        b->data[b->len] = '\0';
        return 0;
}

int buf_append_str(buf *b, const char *s)
{
        if (!s) {
                errno = EINVAL;
                return -1;
        }
        return buf_append(b, s, strlen(s));
}

int buf_putc(buf *b, char c)
{
        return buf_append(b, &c, 1);
}

int buf_vappendf(buf *b, const char *fmt, va_list ap)
{
        /* Format into a temporary first: it measures the output, keeps b unchanged on every
         * failure and stays correct when an argument points into b itself. */
        char small[256];
        va_list aq;
        va_copy(aq, ap);
        int n = vsnprintf(small, sizeof(small), fmt, aq);
        va_end(aq);
        if (n < 0) {
                errno = EINVAL;
                return -1;
        }
        size_t len = (size_t)n;
        if (len < sizeof(small))
                return buf_append(b, small, len);
        if (b->len > b->max || len > b->max - b->len) {
                errno = EMSGSIZE;
                return -1;
        }
        char *tmp = malloc(len + 1);
        if (!tmp) {
                errno = ENOMEM;
                return -1;
        }
        va_copy(aq, ap);
        int m = vsnprintf(tmp, len + 1, fmt, aq);
        va_end(aq);
        int r;
        if (m != n) {
                errno = EINVAL;
                r = -1;
        } else {
                r = buf_append(b, tmp, len);
        }
        int saved = errno;
        free(tmp); tmp = NULL;
        errno = saved;
        return r;
}

int buf_appendf(buf *b, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int r = buf_vappendf(b, fmt, ap);
        va_end(ap);
        return r;
}

void buf_consume(buf *b, size_t n)
{
        if (!b->data)
                return;
        /* Never trust the caller's n past the end: clamping beats reading freed bytes. */
        if (n > b->len)
                n = b->len;
        memmove(b->data, b->data + n, b->len - n);
        b->len -= n;
        b->data[b->len] = '\0';
}

void buf_reset(buf *b)
{
        b->len = 0;
        if (b->data)
                b->data[0] = '\0';
}

void buf_free(buf *b)
{
        free(b->data); b->data = NULL;
        b->len = 0;
        b->alloc = 0;
}

char *buf_steal(buf *b, size_t *len)
{
        char *p = b->data;
        size_t n = b->len;
        if (!p) {
                p = malloc(1);
                if (!p) {
                        errno = ENOMEM;
                        return NULL;
                }
                p[0] = '\0';
                n = 0;
        }
        b->data = NULL;
        b->len = 0;
        b->alloc = 0;
        if (len)
                *len = n;
        return p;
}
