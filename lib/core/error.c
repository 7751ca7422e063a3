/* core/error.c — see error.h. */
#include "core/error.h"

#include <stdio.h>
#include <string.h>

int err_vsetc(err_t *err, const char *code, const char *fmt, va_list ap)
{
        err->errnum = 0;
        err->code = code ? code : ERR_INTERNAL;
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        return -1;
}

int err_setc(err_t *err, const char *code, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        err_vsetc(err, code, fmt, ap);
        va_end(ap);
        return -1;
}

int err_set(err_t *err, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        err_vsetc(err, ERR_INVALID, fmt, ap);
        va_end(ap);
        return -1;
}

int err_errno(err_t *err, int errnum, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        err_vsetc(err, ERR_SYSTEM, fmt, ap);
        va_end(ap);
        size_t n = strlen(err->msg);
        char ebuf[128];
        const char *es = strerror_r(errnum, ebuf, sizeof(ebuf));
        int w = snprintf(err->msg + n, sizeof(err->msg) - n, ": %s", es);
        (void)w;
        err->errnum = errnum;
        return -1;
}

/* Appends n bytes of src at *pos, never past cap-1, keeping dst NUL-terminated. */
static void msg_append(char *dst, size_t cap, size_t *pos, const char *src, size_t n)
{
        size_t room = cap - 1 - *pos;
        if (n > room)
                n = room;
        memcpy(dst + *pos, src, n);
        *pos += n;
        dst[*pos] = '\0';
}

int err_wrap(err_t *err, const char *fmt, ...)
{
        char prefix[ERR_MSG_MAX];
        char old[ERR_MSG_MAX];
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(prefix, sizeof(prefix), fmt, ap);
        va_end(ap);
        if (w < 0)
                prefix[0] = '\0';
        size_t pos = 0;
        if (!err->code) {
                /* Wrapping an empty error is a programming slip; keep what we know. */
                err->code = ERR_INTERNAL;
                msg_append(err->msg, sizeof(err->msg), &pos, prefix, strlen(prefix));
                return -1;
        }
        memcpy(old, err->msg, sizeof(old));
        old[sizeof(old) - 1] = '\0';
        /* the message is bounded: the cause's tail is what gets cut */
        msg_append(err->msg, sizeof(err->msg), &pos, prefix, strlen(prefix));
        msg_append(err->msg, sizeof(err->msg), &pos, ": ", 2);
        msg_append(err->msg, sizeof(err->msg), &pos, old, strlen(old));
        return -1;
}

void err_clear(err_t *err)
{
        err->errnum = 0;
        err->code = NULL;
        err->msg[0] = '\0';
}
