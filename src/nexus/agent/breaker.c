/* agent/breaker.c — see breaker.h. */
#include "agent/breaker.h"

#include <stddef.h>
#include <sys/random.h>
#include <time.h>

/* ── rng ───────────────────────────────────────────────────────────────────────────────── */

void nx_rng_seed(nx_rng *r, uint64_t seed)
{
        r->fn = NULL;
        r->ctx = NULL;
        r->state = seed;
}

void nx_rng_init_random(nx_rng *r)
{
        uint64_t seed = 0;
        if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed)) {
                /* Only de-synchronisation matters here, not secrecy. */
                struct timespec a, b;
                clock_gettime(CLOCK_REALTIME, &a);
                clock_gettime(CLOCK_MONOTONIC, &b);
                seed = (uint64_t)a.tv_nsec ^ ((uint64_t)a.tv_sec << 20) ^
                       ((uint64_t)b.tv_nsec << 32) ^ (uint64_t)(uintptr_t)r;
        }
        nx_rng_seed(r, seed);
}

uint64_t nx_rng_next(nx_rng *r)
{
        if (r->fn)
                return r->fn(r->ctx);
        /* splitmix64 (Steele, Lea, Flood 2014) */
        uint64_t z = (r->state += UINT64_C(0x9e3779b97f4a7c15));
        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

int64_t nx_rng_upto(nx_rng *r, int64_t n)
{
        if (!r || n <= 0)
                return 0;
        /* Multiply-shift maps 64 random bits onto [0, n] without the bias of a modulo
         * worth mentioning (n is at most minutes in milliseconds). */
        unsigned __int128 m = (unsigned __int128)nx_rng_next(r) * ((uint64_t)n + 1);
        return (int64_t)(uint64_t)(m >> 64);
}

/* ── breaker ───────────────────────────────────────────────────────────────────────────── */

static int64_t sat_add(int64_t a, int64_t b)
{
        if (b > 0 && a > INT64_MAX - b)
                return INT64_MAX;
        if (b < 0 && a < INT64_MIN - b)
                return INT64_MIN;
        return a + b;
}

static nx_rng *breaker_rng(nx_breaker *b)
{
        return b->cfg.rng ? b->cfg.rng : &b->own_rng;
}

/* The wait of a new open period: the nominal cooldown minus up to jitter_pct of it. */
static int64_t breaker_jittered_wait(nx_breaker *b)
{
        int64_t span = b->cooldown_ms / 100 * b->cfg.jitter_pct +
                       b->cooldown_ms % 100 * b->cfg.jitter_pct / 100;
        return b->cooldown_ms - nx_rng_upto(breaker_rng(b), span);
}

static void breaker_open(nx_breaker *b, int64_t now_ms)
{
        b->state = NX_BREAKER_OPEN;
        b->opened_at_ms = now_ms;
        b->wait_ms = breaker_jittered_wait(b);
}

void nx_breaker_init(nx_breaker *b, const nx_breaker_cfg *cfg)
{
        nx_breaker_cfg c = cfg ? *cfg : NX_BREAKER_CFG_DEFAULT;
        /* §4.6 constructor clamps */
        if (c.threshold <= 0)
                c.threshold = 1;
        if (c.cooldown_ms <= 0)
                c.cooldown_ms = 1000;
        if (c.max_cooldown_ms < c.cooldown_ms)
                c.max_cooldown_ms = c.cooldown_ms;
        if (c.jitter_pct < 0)
                c.jitter_pct = 0;
        if (c.jitter_pct > 100)
                c.jitter_pct = 100;
        *b = (nx_breaker){
                .cfg = c,
                .state = NX_BREAKER_CLOSED,
                .failures = 0,
                .cooldown_ms = c.cooldown_ms,
                .wait_ms = c.cooldown_ms,
        };
        if (!c.rng)
                nx_rng_init_random(&b->own_rng);
}

bool nx_breaker_allow(nx_breaker *b, int64_t now_ms, int64_t *next_attempt_ms)
{
        int64_t next = now_ms;
        bool ok;
        switch (b->state) {
        case NX_BREAKER_CLOSED:
                ok = true;
                break;
        case NX_BREAKER_OPEN:
                next = sat_add(b->opened_at_ms, b->wait_ms);
                ok = now_ms >= next;
                if (ok) {
                        b->state = NX_BREAKER_HALF_OPEN;
                        b->probe_at_ms = now_ms;
                        next = now_ms;
                }
                break;
        case NX_BREAKER_HALF_OPEN:
                /* Only the single probe; but a probe whose outcome never came back must not
                 * keep the daemon from polling for ever. */
                if (b->cfg.probe_timeout_ms <= 0) {
                        next = INT64_MAX;
                        ok = false;
                        break;
                }
                next = sat_add(b->probe_at_ms, b->cfg.probe_timeout_ms);
                ok = now_ms >= next;
                if (ok) {
                        b->probe_at_ms = now_ms;
                        next = now_ms;
                }
                break;
        default:
                ok = false;
                next = INT64_MAX;
                break;
        }
        if (next_attempt_ms)
                *next_attempt_ms = next;
        return ok;
}

void nx_breaker_success(nx_breaker *b, int64_t now_ms)
{
        (void)now_ms;
        b->state = NX_BREAKER_CLOSED;
        b->failures = 0;
        b->cooldown_ms = b->cfg.cooldown_ms;
}

void nx_breaker_failure(nx_breaker *b, int64_t now_ms)
{
        switch (b->state) {
        case NX_BREAKER_CLOSED:
                if (b->failures < b->cfg.threshold)
                        b->failures++;
                if (b->failures >= b->cfg.threshold)
                        breaker_open(b, now_ms);
                break;
        case NX_BREAKER_HALF_OPEN:
                b->cooldown_ms = b->cooldown_ms > b->cfg.max_cooldown_ms / 2
                                         ? b->cfg.max_cooldown_ms
                                         : 2 * b->cooldown_ms;
                breaker_open(b, now_ms);
                break;
        case NX_BREAKER_OPEN:
                /* a call that left before the breaker opened; the open period stands */
                break;
        default:
                break;
        }
}

nx_breaker_state nx_breaker_get_state(const nx_breaker *b)
{
        return b->state;
}

const char *nx_breaker_state_name(nx_breaker_state s)
{
        switch (s) {
        case NX_BREAKER_CLOSED:
                return "closed";
        case NX_BREAKER_OPEN:
                return "open";
        case NX_BREAKER_HALF_OPEN:
                return "half-open";
        default:
                return "unknown";
        }
}

/* ── retry policy ──────────────────────────────────────────────────────────────────────── */

nx_retry_class nx_retry_classify(int http_status, bool timed_out)
{
        /* ADVISED §4.7: an attempt that ran into its own 10 s deadline is retried. */
        if (timed_out)
                return NX_RETRY;
        if (http_status <= 0)
                return NX_RETRY;      /* no HTTP answer at all: network, DNS, TLS */
        if (http_status == 408 || http_status == 429)
                return NX_RETRY;
        if (http_status >= 500 && http_status <= 599)
                return NX_RETRY;
        return NX_FATAL;              /* 401/403/404/409/422 …: repeating cannot help */
}

bool nx_retry_answer_is_definitive(int http_status)
{
        if (http_status >= 200 && http_status <= 299)
                return true;
        return http_status >= 400 && http_status <= 499 && http_status != 408 &&
               http_status != 429;
}

int64_t nx_retry_after_cap_s(int64_t retry_after_s)
{
        if (retry_after_s <= 0)
                return 0;
        return retry_after_s > NX_RETRY_AFTER_CAP_S ? NX_RETRY_AFTER_CAP_S : retry_after_s;
}

int64_t nx_retry_delay_ms(int attempt, int64_t retry_after_s, nx_rng *rng)
{
        if (retry_after_s > 0) {
                const int64_t cap = (int64_t)NX_RETRY_AFTER_CAP_S * 1000;
                int64_t ra = nx_retry_after_cap_s(retry_after_s) * 1000;
                int64_t d = ra + nx_rng_upto(rng, ra / 100 * NX_RETRY_AFTER_JITTER_PCT);
                return d > cap ? cap : d;
        }
        if (attempt < 1)
                attempt = 1;
        int64_t d = NX_RETRY_BASE_MS;
        for (int i = 1; i < attempt && d < NX_RETRY_CAP_MS; i++)
                d *= 2;
        if (d > NX_RETRY_CAP_MS)
                d = NX_RETRY_CAP_MS;
        if (!rng)
                return d;
        int64_t span = d / 100 * NX_RETRY_JITTER_PCT;
        return d - span + nx_rng_upto(rng, span);
}
