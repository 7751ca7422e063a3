/* core/error.h — error objects (DESIGN D5).
 *
 * A fallible function returns int (<0 on failure) and fills an err_t with errno (0 when the
 * failure is not a system error), a short machine code and a human message. Callers add
 * context on the way up with err_wrap(), which prefixes the existing message. Messages are
 * bounded; an over-long message is truncated, never overflowed. Only main() decides to exit. */
#pragma once
#include <stdarg.h>
#include <stddef.h>

#define ERR_MSG_MAX 1024

/* Machine-readable error codes, also used as the "error" field of HTTP error bodies. */
#define ERR_INVALID "invalid_param"   /* bad input from a peer or a user */
#define ERR_NOT_FOUND "not_found"
#define ERR_CONFLICT "conflict"
#define ERR_TOO_LARGE "too_large"
#define ERR_UNAUTHORIZED "unauthorized"
#define ERR_FORBIDDEN "forbidden"
#define ERR_EXPIRED "expired"
#define ERR_SYSTEM "system_error"     /* errno-carrying failure of the host */
#define ERR_INTERNAL "internal_error"

typedef struct err_t {
        int errnum;              /* errno value, 0 if not a system error */
        const char *code;        /* one of the ERR_* codes (static string), NULL when clear */
        char msg[ERR_MSG_MAX];   /* "context: context: cause" */
} err_t;

#define ERR_INIT { 0, NULL, { 0 } }

/* Sets err (code ERR_INVALID) from a format. Returns -1. */
int err_set(err_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Sets err with an explicit code. Returns -1. */
int err_setc(err_t *err, const char *code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
int err_vsetc(err_t *err, const char *code, const char *fmt, va_list ap)
        __attribute__((format(printf, 3, 0)));

/* Sets err from an errno value: message is "<formatted>: <strerror(errnum)>", code ERR_SYSTEM.
 * Returns -1. */
int err_errno(err_t *err, int errnum, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prefixes the existing message with "<formatted>: ". Keeps errnum and code. Returns -1. */
int err_wrap(err_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Clears err. */
void err_clear(err_t *err);

/* True if err holds an error. */
static inline int err_is_set(const err_t *err) { return err->code != NULL; }
