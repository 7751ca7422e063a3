/* core/buf.h — bounded growable byte buffer (DESIGN D6, curl's idiom).
 *
 * Every buffer fed by a peer has a hard cap chosen at creation: an append that would pass the
 * cap fails with errno EMSGSIZE and leaves the buffer unchanged. The data is always followed
 * by a NUL byte (not counted in len), so text can be used as a C string. */
#pragma once
#include <stdarg.h>
#include <stddef.h>

typedef struct buf {
        char *data;      /* NULL until the first append */
        size_t len;      /* bytes used, excluding the trailing NUL */
        size_t alloc;    /* bytes allocated */
        size_t max;      /* hard cap on len */
} buf;

#define BUF_INIT(maxbytes) ((buf){ .data = NULL, .len = 0, .alloc = 0, .max = (maxbytes) })

/* Appends n bytes. Returns 0, or -1 with errno EMSGSIZE (cap) or ENOMEM. */
int buf_append(buf *b, const void *p, size_t n);
int buf_append_str(buf *b, const char *s);
int buf_putc(buf *b, char c);
/* printf-style append; same failure rules, nothing appended on failure. */
int buf_appendf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vappendf(buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Drops the first n bytes (n <= len). */
void buf_consume(buf *b, size_t n);
/* Empties without freeing. */
void buf_reset(buf *b);
/* Frees the storage; the cap stays. */
void buf_free(buf *b);
/* Hands the NUL-terminated data to the caller (never NULL unless ENOMEM) and empties b. */
char *buf_steal(buf *b, size_t *len);

static inline void buf_freep(buf *b) { buf_free(b); }
#define _cleanup_buf_ __attribute__((cleanup(buf_freep)))
