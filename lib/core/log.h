/* core/log.h — JSON-lines logger (DESIGN D17).
 *
 * One record is one line of JSON on the output (stderr unless log_set_output() says otherwise):
 *   {"ts":"2026-02-27T14:30:22.123Z","level":"info","msg":"directive started",
 *    "directive_id":"0195…","pid":4242}
 * Fields are typed at the call site:
 *   log_info("directive started", LOG_STR("directive_id", id), LOG_INT("pid", pid));
 *   log_error("poll failed", LOG_ERR(&err), LOG_BOOL("retry", true));
 * Every string (message, keys, values) is JSON-escaped: control characters become escapes and
 * invalid UTF-8 becomes U+FFFD, so a line is valid JSON whatever a peer sent. A record never
 * exceeds LOG_RECORD_MAX bytes: string values are shortened fairly (the longest first) and the
 * record gets "truncated":true. Nothing is allocated per record. Thread-safe: a record is
 * written with a single fwrite under a mutex.
 *
 * Keys are meant to be constants; "ts", "level", "msg" and "truncated" are the logger's own. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/error.h"

/* Longest record, newline included. */
#define LOG_RECORD_MAX 16384

typedef enum log_level {
        LOG_LEVEL_DEBUG = 0,
        LOG_LEVEL_INFO = 1,
        LOG_LEVEL_WARN = 2,
        LOG_LEVEL_ERROR = 3,
} log_level;

typedef enum log_kv_type {
        LOG_KV_END = 0,   /* terminates the field list */
        LOG_KV_STR,       /* NULL is written as null */
        LOG_KV_INT,
        LOG_KV_BOOL,
        LOG_KV_DBL,       /* NaN and infinities are written as null (JSON has no such numbers) */
        LOG_KV_ERR,       /* err->msg, or null when err is NULL or clear */
} log_kv_type;

typedef struct log_kv {
        const char *key;
        log_kv_type type;
        union {
                const char *s;
                int64_t i;
                bool b;
                double d;
                const err_t *err;
        } v;
} log_kv;

#define LOG_STR(k, val) ((log_kv){ .key = (k), .type = LOG_KV_STR, .v.s = (val) })
#define LOG_INT(k, val) ((log_kv){ .key = (k), .type = LOG_KV_INT, .v.i = (int64_t)(val) })
#define LOG_BOOL(k, val) ((log_kv){ .key = (k), .type = LOG_KV_BOOL, .v.b = (val) ? true : false })
#define LOG_DBL(k, val) ((log_kv){ .key = (k), .type = LOG_KV_DBL, .v.d = (double)(val) })
/* Adds "error": err->msg. (Named as the design asks; it clashes with <syslog.h>'s LOG_ERR, which
 * nothing here includes.) */
#define LOG_ERR(e) ((log_kv){ .key = "error", .type = LOG_KV_ERR, .v.err = (e) })
#define LOG_END ((log_kv){ .key = NULL, .type = LOG_KV_END })

/* Writes one record; kvs ends at the first LOG_KV_END entry. Records below the current level
 * are dropped. Prefer the log_<level>() macros. */
void log_write(log_level level, const char *msg, const log_kv *kvs);

/* The message is the first argument; the list always gets a LOG_END, so a call with no fields
 * is still standard C (the variadic part is never empty). */
#define LOG_EMIT_(level, msg, ...) log_write((level), (msg), (const log_kv[]){ __VA_ARGS__ })
#define log_debug(...) LOG_EMIT_(LOG_LEVEL_DEBUG, __VA_ARGS__, LOG_END)
#define log_info(...) LOG_EMIT_(LOG_LEVEL_INFO, __VA_ARGS__, LOG_END)
#define log_warn(...) LOG_EMIT_(LOG_LEVEL_WARN, __VA_ARGS__, LOG_END)
#define log_error(...) LOG_EMIT_(LOG_LEVEL_ERROR, __VA_ARGS__, LOG_END)

/* Records below level are dropped; the default is LOG_LEVEL_INFO. */
void log_set_level(log_level level);
log_level log_get_level(void);
/* True if a record at level would be written (to skip building costly fields). */
bool log_enabled(log_level level);
/* Where records go; NULL restores stderr. The caller keeps ownership of f. */
void log_set_output(FILE *f);

/* "debug", "info", "warn", "error" (ASCII case-insensitive) to a level; -1 for anything else. */
int log_level_parse(const char *s);
/* The lower-case name of a level ("info"), "unknown" when out of range. */
const char *log_level_name(log_level level);
