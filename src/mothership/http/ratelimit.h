/* http/ratelimit.h — fixed-window request counters (spec mothership §3.1.4, §5.5).
 *
 * A window is [k*period, (k+1)*period) seconds since the Unix epoch. Each hit increments the
 * counter of (rule, key) for the current window; the hit is refused when the incremented value
 * exceeds the rule's limit (refused hits still count, as in the spec). The caller answers a
 * refusal with 429, Retry-After = the full period.
 *
 * The key is chosen by the caller and must never be a value the client picks freely (a header
 * before authentication): use the authenticated identity, or the peer address.
 *
 * Memory is bounded: at most max_keys live counters. Expired windows are swept; when the table is
 * still full a NEW key is refused (fail closed, MS_RATELIMIT_FULL) and a warning is logged —
 * existing keys keep being counted normally. Thread-safe (one mutex). The clock can be replaced
 * for tests. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define MS_RATELIMIT_DEFAULT_MAX_KEYS 100000
#define MS_RATELIMIT_KEY_MAX 256      /* longest key, bytes */

typedef struct ms_ratelimit_rule {
        const char *name;      /* part of the counter key and of log lines, e.g. "enroll" */
        uint32_t limit;        /* hits allowed per window */
        uint32_t period_s;     /* window length, seconds (> 0) */
} ms_ratelimit_rule;

/* spec §3.1.4 rules. */
extern const ms_ratelimit_rule ms_ratelimit_rule_enroll;              /* 10 / 3600 s */
extern const ms_ratelimit_rule ms_ratelimit_rule_polls;               /* 60 / 60 s */
extern const ms_ratelimit_rule ms_ratelimit_rule_territory_heartbeat; /* 10 / 60 s */
extern const ms_ratelimit_rule ms_ratelimit_rule_directive_reports;   /* 120 / 60 s */

typedef enum ms_ratelimit_verdict {
        MS_RATELIMIT_ALLOW = 0,
        MS_RATELIMIT_LIMITED = 1,   /* over the limit in this window */
        MS_RATELIMIT_FULL = 2,      /* new key refused: table full (fail closed) */
        MS_RATELIMIT_BAD_KEY = 3,   /* NULL/empty key, key over MS_RATELIMIT_KEY_MAX, bad rule */
} ms_ratelimit_verdict;

/* Unix time in milliseconds. */
typedef int64_t (*ms_ratelimit_clock_fn)(void *ctx);

typedef struct ms_ratelimit ms_ratelimit;

/* max_keys 0 = MS_RATELIMIT_DEFAULT_MAX_KEYS. NULL on ENOMEM. */
ms_ratelimit *ms_ratelimit_new(size_t max_keys);
void ms_ratelimit_free(ms_ratelimit *rl);
/* NULL fn restores the real clock (clock_now_ms). */
void ms_ratelimit_set_clock(ms_ratelimit *rl, ms_ratelimit_clock_fn fn, void *ctx);

/* Counts one hit. *count_out (may be NULL) gets the counter value after the hit (0 when the hit
 * was not counted: FULL or BAD_KEY). Every verdict other than ALLOW means "answer 429". */
ms_ratelimit_verdict ms_ratelimit_hit(ms_ratelimit *rl, const ms_ratelimit_rule *rule,
                                      const char *key, uint64_t *count_out);

/* Live counters (including not yet swept expired ones). */
size_t ms_ratelimit_size(ms_ratelimit *rl);
/* Drops every counter whose window has ended; returns how many were dropped. */
size_t ms_ratelimit_sweep(ms_ratelimit *rl);
/* Hits refused with MS_RATELIMIT_FULL since creation. */
uint64_t ms_ratelimit_full_refusals(ms_ratelimit *rl);
