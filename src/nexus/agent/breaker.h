/* agent/breaker.h — circuit breaker for the poll loop (spec nexus §4.6) and the retry policy
 * for `started` / `finished` / WAL replay (spec nexus §4.7, with the ADVISED fixes).
 *
 * Nothing here reads a clock or sleeps: the caller passes now_ms (any monotonic millisecond
 * clock) and gets back when to try again, so the loop thread can arm a timer and tests can
 * drive time by hand. Randomness comes from an nx_rng the caller may inject.
 *
 * Breaker (REF §4.6): closed → after `threshold` consecutive failures open; open refuses until
 * the cooldown has passed, then lets exactly one probe through (half-open); a successful probe
 * closes it and resets the cooldown, a failed one reopens it with the cooldown doubled up to
 * the maximum. Deviation: the wait before a probe is jittered DOWNWARDS by up to jitter_pct
 * percent of the cooldown, so that a fleet of daemons cut off by the same outage does not
 * probe the recovering server in lock-step. Downwards keeps every REF bound (a probe never
 * waits longer than the nominal cooldown, never longer than max_cooldown) and the REF vectors
 * (§12 61-68) hold for any random draw with the default 20 %; 100 % is "full jitter". */
#pragma once
#include <stdbool.h>
#include <stdint.h>

/* ── random numbers for jitter ─────────────────────────────────────────────────────────── */

/* Either a caller-supplied generator (fn != NULL, e.g. a scripted sequence in tests) or the
 * built-in splitmix64 on `state`. Jitter needs no cryptographic quality; it only has to
 * differ between daemons, which nx_rng_init_random() ensures. Not thread-safe: one per
 * user (the breaker is owned by the loop thread). */
typedef struct nx_rng {
        uint64_t (*fn)(void *ctx);
        void *ctx;
        uint64_t state;
} nx_rng;

/* Deterministic splitmix64 sequence from seed (tests, reproducible runs). */
void nx_rng_seed(nx_rng *r, uint64_t seed);
/* Seeds from getrandom(); falls back to the clocks and the address of r if the kernel has no
 * entropy to give (jitter must never make start-up fail). */
void nx_rng_init_random(nx_rng *r);
uint64_t nx_rng_next(nx_rng *r);
/* Uniform integer in [0, n] (n < INT64_MAX); 0 when r is NULL or n <= 0. */
int64_t nx_rng_upto(nx_rng *r, int64_t n);

/* ── circuit breaker (§4.6) ────────────────────────────────────────────────────────────── */

#define NX_BREAKER_THRESHOLD_DEFAULT 5
#define NX_BREAKER_COOLDOWN_MS_DEFAULT 30000      /* 30 s */
#define NX_BREAKER_MAX_COOLDOWN_MS_DEFAULT 300000 /* 5 min */
#define NX_BREAKER_JITTER_PCT_DEFAULT 20
#define NX_BREAKER_PROBE_TIMEOUT_MS_DEFAULT 60000

typedef enum nx_breaker_state {
        NX_BREAKER_CLOSED = 0,
        NX_BREAKER_OPEN = 1,
        NX_BREAKER_HALF_OPEN = 2,
} nx_breaker_state;

typedef struct nx_breaker_cfg {
        int threshold;              /* consecutive failures that open it; <= 0 → 1 */
        int64_t cooldown_ms;        /* first cooldown; <= 0 → 1 s */
        int64_t max_cooldown_ms;    /* cap of the doubling; < cooldown → cooldown */
        int jitter_pct;             /* 0-100 (clamped): the probe wait lies in
                                     * [cooldown * (100 - jitter_pct) / 100, cooldown] */
        int64_t probe_timeout_ms;   /* a half-open probe whose outcome was never reported is
                                     * given up after this long and another probe allowed
                                     * (a lost callback must not stop polling forever);
                                     * <= 0 → never */
        nx_rng *rng;                /* borrowed, must outlive the breaker; NULL → an own
                                     * generator seeded by nx_rng_init_random() */
} nx_breaker_cfg;

/* REF parameters plus the jitter and probe timeout described above. */
#define NX_BREAKER_CFG_DEFAULT ((nx_breaker_cfg){ \
        .threshold = NX_BREAKER_THRESHOLD_DEFAULT, \
        .cooldown_ms = NX_BREAKER_COOLDOWN_MS_DEFAULT, \
        .max_cooldown_ms = NX_BREAKER_MAX_COOLDOWN_MS_DEFAULT, \
        .jitter_pct = NX_BREAKER_JITTER_PCT_DEFAULT, \
        .probe_timeout_ms = NX_BREAKER_PROBE_TIMEOUT_MS_DEFAULT, \
        .rng = NULL })

typedef struct nx_breaker {
        nx_breaker_cfg cfg;         /* after clamping */
        nx_breaker_state state;
        int failures;               /* consecutive, while closed */
        int64_t cooldown_ms;        /* nominal cooldown of the current/next open period */
        int64_t wait_ms;            /* jittered wait of the current open period */
        int64_t opened_at_ms;
        int64_t probe_at_ms;        /* when the half-open probe was let through */
        nx_rng own_rng;
} nx_breaker;

/* Starts closed with cfg clamped as documented. */
void nx_breaker_init(nx_breaker *b, const nx_breaker_cfg *cfg);

/* May a call go out at now_ms? closed: yes. open: no until the (jittered) cooldown has
 * passed, then yes once — the state becomes half-open. half-open: no while the probe is out.
 * When refused, *next_attempt_ms (may be NULL) is the earliest time asking again can succeed;
 * when allowed it is now_ms. */
bool nx_breaker_allow(nx_breaker *b, int64_t now_ms, int64_t *next_attempt_ms);
/* Any success closes the breaker: failures = 0, cooldown back to the initial one. */
void nx_breaker_success(nx_breaker *b, int64_t now_ms);
/* closed: count, open at the threshold. half-open: reopen with the cooldown doubled (capped).
 * open: ignored (a call that was already in flight when the breaker opened). */
void nx_breaker_failure(nx_breaker *b, int64_t now_ms);

nx_breaker_state nx_breaker_get_state(const nx_breaker *b);
/* "closed", "open", "half-open"; "unknown" for anything else (spec §4.6 log names). */
const char *nx_breaker_state_name(nx_breaker_state s);

/* ── retry policy (§4.7) ───────────────────────────────────────────────────────────────── */

#define NX_RETRY_MAX_ATTEMPTS 5
#define NX_RETRY_BASE_MS 2000            /* 2 s, 4 s, 8 s, 16 s … */
#define NX_RETRY_CAP_MS 60000            /* DESIGN: exponential up to 60 s */
#define NX_RETRY_AFTER_CAP_S 300         /* Retry-After honoured up to 5 min */
#define NX_RETRY_JITTER_PCT 50           /* exponential delays lie in [d/2, d] */
#define NX_RETRY_AFTER_JITTER_PCT 10     /* Retry-After delays lie in [ra, ra * 1.1], ≤ cap */

typedef enum nx_retry_class {
        NX_RETRY = 0,   /* try again after nx_retry_delay_ms() */
        NX_FATAL = 1,   /* do not repeat this request */
} nx_retry_class;

/* Classifies a failed attempt. http_status <= 0 means no HTTP answer (connection refused,
 * DNS, TLS, reset): retried. timed_out: the attempt hit its own per-request deadline —
 * retried (ADVISED; REF gives up). 408, 429 and 500-599: retried. Any other status, 2xx
 * included (nothing to retry), is fatal. Cancellation of the whole daemon is not a class:
 * the caller stops before asking. */
nx_retry_class nx_retry_classify(int http_status, bool timed_out);

/* True when the server's answer settles a finished report for good, so its WAL entry can be
 * dropped (DESIGN D16): 2xx, or a 4xx other than 408 and 429. Transport errors, 3xx, 408,
 * 429 and 5xx leave it pending. */
bool nx_retry_answer_is_definitive(int http_status);

/* Retry-After in seconds → the wait in seconds, capped at 5 min (§12 vector 58:
 * 10 → 10, 0 → 0, 600 → 300); negative → 0. */
int64_t nx_retry_after_cap_s(int64_t retry_after_s);

/* Wait before the next attempt, after attempt number `attempt` (1-based; < 1 counts as 1)
 * failed. retry_after_s > 0 (the server's Retry-After): that many seconds, capped at 5 min,
 * plus up to 10 % upward jitter, never above the cap and never earlier than asked.
 * Otherwise exponential 2 s · 2^(attempt-1) capped at 60 s, with "equal jitter" in [d/2, d]
 * (full jitter could fire the next attempt at once and burn the five attempts on one blip).
 * rng NULL → no jitter (the upper/nominal value). */
int64_t nx_retry_delay_ms(int attempt, int64_t retry_after_s, nx_rng *rng);
