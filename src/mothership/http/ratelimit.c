/* http/ratelimit.c — fixed-window counters in a bounded hash table (see ratelimit.h). */
#include "http/ratelimit.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/clock.h"
#include "core/crypto.h"
#include "core/log.h"

/* spec §3.1.4 */
const ms_ratelimit_rule ms_ratelimit_rule_enroll = { "enroll", 10, 3600 };
const ms_ratelimit_rule ms_ratelimit_rule_polls = { "polls", 60, 60 };
const ms_ratelimit_rule ms_ratelimit_rule_territory_heartbeat = { "territory_heartbeat", 10, 60 };
const ms_ratelimit_rule ms_ratelimit_rule_directive_reports = { "directive_reports", 120, 60 };

#define INITIAL_BUCKETS 256
#define SWEEP_INTERVAL_S 60

typedef struct rl_entry {
        struct rl_entry *next;
        uint64_t hash;
        int64_t window_start_s;
        uint32_t period_s;
        uint64_t count;
        size_t keylen;          /* rule name \0 key */
        char key[];
} rl_entry;

struct ms_ratelimit {
        pthread_mutex_t lock;
        rl_entry **buckets;
        size_t nbuckets;        /* power of two */
        size_t size;
        size_t max_keys;
        uint64_t seed;
        int64_t last_sweep_s;
        int64_t last_full_log_s;
        uint64_t full_refusals;
        ms_ratelimit_clock_fn clock;
        void *clock_ctx;
};

static int64_t real_clock(void *ctx)
{
        (void)ctx;
        return clock_now_ms();
}

ms_ratelimit *ms_ratelimit_new(size_t max_keys)
{
        _cleanup_free_ ms_ratelimit *rl = calloc(1, sizeof(*rl));
        if (!rl)
                return NULL;
        rl->buckets = calloc(INITIAL_BUCKETS, sizeof(*rl->buckets));
        if (!rl->buckets)
                return NULL;
        if (pthread_mutex_init(&rl->lock, NULL) != 0) {
                FREE_AND_NULL(rl->buckets);
                return NULL;
        }
        rl->nbuckets = INITIAL_BUCKETS;
        rl->max_keys = max_keys ? max_keys : MS_RATELIMIT_DEFAULT_MAX_KEYS;
        /* A per-process seed keeps peers from aiming many keys at one bucket. */
        err_t err = ERR_INIT;
        if (crypto_random(&rl->seed, sizeof(rl->seed), &err) < 0)
                rl->seed = (uint64_t)clock_mono_ms() * 0x9e3779b97f4a7c15ull;
        rl->clock = real_clock;
        rl->last_full_log_s = INT64_MIN;
        return steal_ptr(&rl);
}

void ms_ratelimit_free(ms_ratelimit *rl)
{
        if (!rl)
                return;
        for (size_t i = 0; i < rl->nbuckets; i++) {
                rl_entry *e = rl->buckets[i];
                while (e) {
                        rl_entry *next = e->next;
                        free(e);
                        e = next;
                }
        }
        FREE_AND_NULL(rl->buckets);
        pthread_mutex_destroy(&rl->lock);
        free(rl);
}

void ms_ratelimit_set_clock(ms_ratelimit *rl, ms_ratelimit_clock_fn fn, void *ctx)
{
        pthread_mutex_lock(&rl->lock);
        rl->clock = fn ? fn : real_clock;
        rl->clock_ctx = fn ? ctx : NULL;
        pthread_mutex_unlock(&rl->lock);
}

/* FNV-1a over the seed and the bytes, then a final avalanche. */
static uint64_t hash_bytes(uint64_t seed, const char *p, size_t n)
{
        uint64_t h = 0xcbf29ce484222325ull ^ seed;
        for (size_t i = 0; i < n; i++) {
                h ^= (unsigned char)p[i];
                h *= 0x100000001b3ull;
        }
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 33;
        return h;
}

static bool expired(const rl_entry *e, int64_t now_s)
{
        return now_s >= e->window_start_s + (int64_t)e->period_s;
}

static size_t sweep_locked(ms_ratelimit *rl, int64_t now_s)
{
        size_t dropped = 0;
        for (size_t i = 0; i < rl->nbuckets; i++) {
                rl_entry **pp = &rl->buckets[i];
                while (*pp) {
                        rl_entry *e = *pp;
                        if (expired(e, now_s)) {
                                *pp = e->next;
                                free(e);
                                rl->size--;
                                dropped++;
                        } else {
                                pp = &e->next;
                        }
                }
        }
        rl->last_sweep_s = now_s;
        return dropped;
}

static void grow_locked(ms_ratelimit *rl)
{
        size_t n = rl->nbuckets * 2;
        rl_entry **nb = calloc(n, sizeof(*nb));
        if (!nb)
                return;         /* longer chains, still correct */
        for (size_t i = 0; i < rl->nbuckets; i++) {
                rl_entry *e = rl->buckets[i];
                while (e) {
                        rl_entry *next = e->next;
                        size_t b = (size_t)(e->hash & (n - 1));
                        e->next = nb[b];
                        nb[b] = e;
                        e = next;
                }
        }
        free(rl->buckets);
        rl->buckets = nb;
        rl->nbuckets = n;
}

static int64_t floor_div(int64_t a, int64_t b)
{
        int64_t q = a / b;
        if ((a % b != 0) && ((a < 0) != (b < 0)))
                q--;
        return q;
}

ms_ratelimit_verdict ms_ratelimit_hit(ms_ratelimit *rl, const ms_ratelimit_rule *rule,
                                      const char *key, uint64_t *count_out)
{
        if (count_out)
                *count_out = 0;
        if (!rule || !rule->name || rule->period_s == 0 || !key || !*key)
                return MS_RATELIMIT_BAD_KEY;
        size_t rlen = strlen(rule->name), klen = strnlen(key, MS_RATELIMIT_KEY_MAX + 1);
        if (klen > MS_RATELIMIT_KEY_MAX || rlen > 64)
                return MS_RATELIMIT_BAD_KEY;
        char full[64 + 1 + MS_RATELIMIT_KEY_MAX];
        memcpy(full, rule->name, rlen);
        full[rlen] = '\0';      /* a NUL cannot occur in either part: no ambiguity */
        memcpy(full + rlen + 1, key, klen);
        size_t flen = rlen + 1 + klen;
        uint64_t h;

        pthread_mutex_lock(&rl->lock);
        h = hash_bytes(rl->seed, full, flen);
        int64_t now_ms = rl->clock(rl->clock_ctx);
        int64_t now_s = floor_div(now_ms, 1000);
        /* spec §3.1.4: windows aligned to multiples of the period since the epoch. */
        int64_t window = floor_div(now_s, rule->period_s) * (int64_t)rule->period_s;

        if (now_s - rl->last_sweep_s >= SWEEP_INTERVAL_S || now_s < rl->last_sweep_s)
                sweep_locked(rl, now_s);

        size_t b = (size_t)(h & (rl->nbuckets - 1));
        rl_entry *e = rl->buckets[b];
        while (e && !(e->hash == h && e->keylen == flen && memcmp(e->key, full, flen) == 0))
                e = e->next;

        ms_ratelimit_verdict v;
        if (!e) {
                if (rl->size >= rl->max_keys && rl->last_sweep_s != now_s)
                        sweep_locked(rl, now_s);
                if (rl->size >= rl->max_keys) {
                        rl->full_refusals++;
                        bool log_now = rl->last_full_log_s != now_s;
                        rl->last_full_log_s = now_s;
                        pthread_mutex_unlock(&rl->lock);
                        /* Fail closed: an unknown key cannot be counted, so it is not let in. */
                        if (log_now)
                                log_warn("rate limiter table full, refusing a new key",
                                         LOG_STR("rule", rule->name), LOG_STR("key", key),
                                         LOG_INT("max_keys", (int64_t)rl->max_keys));
                        return MS_RATELIMIT_FULL;
                }
                e = malloc(sizeof(*e) + flen);
                if (!e) {
                        rl->full_refusals++;
                        pthread_mutex_unlock(&rl->lock);
                        return MS_RATELIMIT_FULL;
                }
                e->hash = h;
                e->keylen = flen;
                memcpy(e->key, full, flen);
                e->window_start_s = window;
                e->period_s = rule->period_s;
                e->count = 0;
                e->next = rl->buckets[b];
                rl->buckets[b] = e;
                rl->size++;
                if (rl->size > rl->nbuckets)
                        grow_locked(rl);
        }
        if (e->window_start_s != window) {
                e->window_start_s = window;
                e->count = 0;
        }
        if (e->count < UINT64_MAX)
                e->count++;
        v = e->count > rule->limit ? MS_RATELIMIT_LIMITED : MS_RATELIMIT_ALLOW;
        if (count_out)
                *count_out = e->count;
        pthread_mutex_unlock(&rl->lock);
        return v;
}

size_t ms_ratelimit_size(ms_ratelimit *rl)
{
        pthread_mutex_lock(&rl->lock);
        size_t n = rl->size;
        pthread_mutex_unlock(&rl->lock);
        return n;
}

size_t ms_ratelimit_sweep(ms_ratelimit *rl)
{
        pthread_mutex_lock(&rl->lock);
        size_t n = sweep_locked(rl, floor_div(rl->clock(rl->clock_ctx), 1000));
        pthread_mutex_unlock(&rl->lock);
        return n;
}

uint64_t ms_ratelimit_full_refusals(ms_ratelimit *rl)
{
        pthread_mutex_lock(&rl->lock);
        uint64_t n = rl->full_refusals;
        pthread_mutex_unlock(&rl->lock);
        return n;
}
