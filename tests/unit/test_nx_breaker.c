/* tests/unit/test_nx_breaker.c — agent/breaker: circuit breaker (spec nexus §4.6, vectors
 * §12 61-68), jitter, and the retry policy of §4.7 with the ADVISED fixes. Time is passed in
 * by hand and randomness is scripted, so nothing here depends on the clock. */
#include "testutil.h"
#include "agent/breaker.h"

#include <limits.h>
#include <stdbool.h>
#include <string.h>

#define SEC 1000
#define MIN (60 * SEC)

/* A generator that always returns one value: 0 means "no jitter", UINT64_MAX "most jitter". */
static uint64_t fixed_fn(void *ctx)
{
        return *(const uint64_t *)ctx;
}

static uint64_t zero_val = 0;
static uint64_t max_val = UINT64_MAX;

static nx_rng rng_zero(void)
{
        return (nx_rng){ .fn = fixed_fn, .ctx = &zero_val };
}

static nx_rng rng_max(void)
{
        return (nx_rng){ .fn = fixed_fn, .ctx = &max_val };
}

/* REF vectors use threshold 3, 30 s, 5 min; no jitter so times are exact. */
static void init_ref(nx_breaker *b, nx_rng *rng, int threshold, int64_t cool, int64_t max)
{
        nx_breaker_cfg cfg = NX_BREAKER_CFG_DEFAULT;
        cfg.threshold = threshold;
        cfg.cooldown_ms = cool;
        cfg.max_cooldown_ms = max;
        cfg.rng = rng;
        nx_breaker_init(b, &cfg);
}

static void fail_n(nx_breaker *b, int n, int64_t now)
{
        for (int i = 0; i < n; i++)
                nx_breaker_failure(b, now);
}

/* ── rng ─────────────────────────────────────────────────────────────────────────────── */

static void test_rng_same_seed_same_sequence(void **state)
{
        nx_rng a, b, c;
        nx_rng_seed(&a, 42);
        nx_rng_seed(&b, 42);
        nx_rng_seed(&c, 43);
        bool differs = false;
        for (int i = 0; i < 16; i++) {
                uint64_t x = nx_rng_next(&a);
                assert_true(x == nx_rng_next(&b));
                if (x != nx_rng_next(&c))
                        differs = true;
        }
        assert_true(differs);
}

static void test_rng_upto_stays_in_range_and_reaches_both_ends(void **state)
{
        nx_rng r;
        nx_rng_seed(&r, 7);
        bool saw0 = false, saw3 = false;
        for (int i = 0; i < 1000; i++) {
                int64_t v = nx_rng_upto(&r, 3);
                assert_in_range(v, 0, 3);
                saw0 |= v == 0;
                saw3 |= v == 3;
        }
        assert_true(saw0 && saw3);
}

static void test_rng_upto_extremes_of_the_draw(void **state)
{
        nx_rng z = rng_zero(), m = rng_max();
        assert_int_equal(nx_rng_upto(&z, 1000), 0);
        assert_int_equal(nx_rng_upto(&m, 1000), 1000);
        assert_int_equal(nx_rng_upto(&m, 0), 0);
        assert_int_equal(nx_rng_upto(&m, -5), 0);
        assert_int_equal(nx_rng_upto(NULL, 1000), 0);
}

static void test_rng_init_random_differs_between_generators(void **state)
{
        nx_rng a, b;
        nx_rng_init_random(&a);
        nx_rng_init_random(&b);
        /* 2^-64 chance of a false failure */
        assert_true(nx_rng_next(&a) != nx_rng_next(&b));
}

/* ── breaker: REF vectors ────────────────────────────────────────────────────────────── */

/* spec nexus §12 #61 */
static void test_breaker_starts_closed_and_allows(void **state)
{
        nx_rng r = rng_zero();
        nx_breaker b;
        init_ref(&b, &r, 3, 30 * SEC, 5 * MIN);
        assert_int_equal(nx_breaker_get_state(&b), NX_BREAKER_CLOSED);
        int64_t next = -1;
        assert_true(nx_breaker_allow(&b, 1000, &next));
        assert_int_equal(next, 1000);
}

/* spec nexus §12 #62 */
static void test_breaker_opens_on_third_failure_and_refuses(void **state)
{
        nx_rng r = rng_zero();
        nx_breaker b;
        init_ref(&b, &r, 3, 30 * SEC, 5 * MIN);
        fail_n(&b, 2, 0);
        assert_int_equal(nx_breaker_get_state(&b), NX_BREAKER_CLOSED);
        assert_true(nx_breaker_allow(&b, 0, NULL));
        nx_breaker_failure(&b, 0);
        assert_int_equal(nx_breaker_get_state(&b), NX_BREAKER_OPEN);
        assert_false(nx_breaker_allow(&b, 0, NULL));
        assert_false(nx_breaker_allow(&b, 1, NULL));
}

/* spec nexus §12 #63 */
static void test_breaker_open_allows_one_probe_after_cooldown(void **state)
{
        nx_rng r = rng_zero();
        nx_breaker b;
        init_ref(&b, &r, 3, 30 * SEC, 5 * MIN);
        fail_n(&b, 3, 100 * SEC);
        assert_false(nx_breaker_allow(&b, 115 * SEC, NULL));
        assert_int_equal(nx_breaker_get_state(&b), NX_BREAKER_OPEN);
        assert_true(nx_breaker_allow(&b, 135 * SEC, NULL));
        assert_int_equal(nx_breaker_get_state(&b), NX_BREAKER_HALF_OPEN);
        assert_false(nx_breaker_allow(&b, 135 * SEC, NULL));
}

static void test_breaker_probe_allowed_exactly_at_cooldown(void **state)
{
        nx_rng r = rng_zero();
        nx_breaker b;
        init_ref(&b, &r, 1, 30 * SEC, 5 * MIN);
        nx_breaker_failure(&b, 0);
        assert_false(nx_breaker_allow(&b, 30 * SEC - 1, NULL));
        assert_true(nx_breaker_allow(&b, 30 * SEC, NULL));
}

/* spec nexus §12 #64 */
static void test_breaker_successful_probe_closes(void **state)
{
        nx_rng r = rng_zero();
        nx_breaker b;
        init_ref(&b, &r, 3, 30 * SEC, 5 * MIN);
        fail_n(&b, 3, 0);
        assert_true(nx_breaker_allow(&b, 35 * SEC, NULL));
        nx_breaker_success(&b, 36 * SEC);
        assert_int_equal(nx_breaker_get_state(&b), NX_BREAKER_CLOSED);
        assert_true(nx_breaker_allow(&b, 36 * SEC, NULL));
        assert_true(nx_breaker_allow(&b, 36 * SEC, NULL));
}

/* spec nexus §12 #65 */
static void test_breaker_failed_probe_reopens_with_doubled_cooldown(void **state)
{
        nx_rng r = rng_zero();
        nx_breaker b;
        init_ref(&b, &r, 3, 30 * SEC, 5 * MIN);
        fail_n(&b, 3, 0);
        assert_true(nx_breaker_allow(&b, 35 * SEC, NULL));
        nx_breaker_failure(&b, 40 * SEC);
        assert_int_equal(nx_breaker_get_state(&b), NX_BREAKER_OPEN);
        assert_int_equal(b.cooldown_ms, 60 * SEC);
        int64_t next = 0;
        assert_false(nx_breaker_allow(&b, 99 * SEC, &next));
        assert_int_equal(next, 100 * SEC);
        assert_true(nx_breaker_allow(&b, 100 * SEC, NULL));
}

/* spec nexus §12 #66 */
static void test_breaker_cooldown_caps_at_max_not_double(void **state)
{
        nx_rng r = rng_zero();
        nx_breaker b;
        init_ref(&b, &r, 1, 2 * MIN, 5 * MIN);
        nx_breaker_failure(&b, 0);
        assert_int_equal(b.cooldown_ms, 2 * MIN);
        assert_true(nx_breaker_allow(&b, 2 * MIN, NULL));
        nx_breaker_failure(&b, 2 * MIN);
        assert_int_equal(b.cooldown_ms, 4 * MIN);
        assert_true(nx_breaker_allow(&b, 6 * MIN, NULL));
        nx_breaker_failure(&b, 6 * MIN);
        assert_int_equal(b.cooldown_ms, 5 * MIN);
        assert_false(nx_breaker_allow(&b, 11 * MIN - 1, NULL));
        assert_true(nx_breaker_allow(&b, 11 * MIN, NULL));
}

/* spec nexus §12 #67 */
static void test_breaker_success_between_failures_keeps_it_closed(void **state)
{
        nx_rng r = rng_zero();
        nx_breaker b;
        init_ref(&b, &r, 3, 30 * SEC, 5 * MIN);
        fail_n(&b, 2, 0);
        nx_breaker_success(&b, 0);
        fail_n(&b, 2, 0);
        assert_int_equal(nx_breaker_get_state(&b), NX_BREAKER_CLOSED);
        assert_true(nx_breaker_allow(&b, 0, NULL));
}

/* spec nexus §12 #68 */
static void test_breaker_state_names(void **state)
{
        assert_string_equal(nx_breaker_state_name(NX_BREAKER_CLOSED), "closed");
        assert_string_equal(nx_breaker_state_name(NX_BREAKER_OPEN), "open");
        assert_string_equal(nx_breaker_state_name(NX_BREAKER_HALF_OPEN), "half-open");
        assert_string_equal(nx_breaker_state_name((nx_breaker_state)7), "unknown");
        assert_string_equal(nx_breaker_state_name((nx_breaker_state)-1), "unknown");
}

/* ── breaker: timeline, clamps, edge cases ─────────────────────────────────────────────── */

static void test_breaker_default_timeline_against_dead_server(void **state)
{
        /* §4.6: 5 failures, then waits of 30, 60, 120, 240, 300, 300 s between probes. */
        nx_rng r = rng_zero();
        nx_breaker_cfg cfg = NX_BREAKER_CFG_DEFAULT;
        cfg.rng = &r;
        nx_breaker b;
        nx_breaker_init(&b, &cfg);
        int64_t now = 0;
        for (int i = 0; i < 4; i++) {
                assert_true(nx_breaker_allow(&b, now, NULL));
                nx_breaker_failure(&b, now);
                now += 2 * SEC;
        }
        assert_true(nx_breaker_allow(&b, now, NULL));
        nx_breaker_failure(&b, now);
        const int64_t waits[] = { 30, 60, 120, 240, 300, 300 };
        for (size_t i = 0; i < sizeof(waits) / sizeof(waits[0]); i++) {
                int64_t next = 0;
                assert_false(nx_breaker_allow(&b, now, &next));
                assert_int_equal(next - now, waits[i] * SEC);
                now = next;
                assert_true(nx_breaker_allow(&b, now, NULL));
                nx_breaker_failure(&b, now);
        }
}

static void test_breaker_clamps_nonsense_config(void **state)
{
        nx_rng r = rng_zero();
        nx_breaker_cfg cfg = { .threshold = 0, .cooldown_ms = -5, .max_cooldown_ms = 10,
                               .jitter_pct = 250, .probe_timeout_ms = 0, .rng = &r };
        nx_breaker b;
        nx_breaker_init(&b, &cfg);
        assert_int_equal(b.cfg.threshold, 1);
        assert_int_equal(b.cfg.cooldown_ms, 1 * SEC);
        assert_int_equal(b.cfg.max_cooldown_ms, 1 * SEC);
        assert_int_equal(b.cfg.jitter_pct, 100);
        cfg.jitter_pct = -3;
        nx_breaker_init(&b, &cfg);
        assert_int_equal(b.cfg.jitter_pct, 0);
        /* threshold 1: a single failure opens */
        nx_breaker_failure(&b, 0);
        assert_int_equal(nx_breaker_get_state(&b), NX_BREAKER_OPEN);
}

static void test_breaker_null_cfg_uses_ref_defaults(void **state)
{
        nx_breaker b;
        nx_breaker_init(&b, NULL);
        assert_int_equal(b.cfg.threshold, 5);
        assert_int_equal(b.cfg.cooldown_ms, 30 * SEC);
        assert_int_equal(b.cfg.max_cooldown_ms, 5 * MIN);
        fail_n(&b, 4, 0);
        assert_int_equal(nx_breaker_get_state(&b), NX_BREAKER_CLOSED);
        nx_breaker_failure(&b, 0);
        assert_int_equal(nx_breaker_get_state(&b), NX_BREAKER_OPEN);
        /* own generator: wait within the default 20 % band */
        assert_in_range(b.wait_ms, 24 * SEC, 30 * SEC);
}

static void test_breaker_success_resets_cooldown_to_initial(void **state)
{
        nx_rng r = rng_zero();
        nx_breaker b;
        init_ref(&b, &r, 1, 30 * SEC, 5 * MIN);
        nx_breaker_failure(&b, 0);
        assert_true(nx_breaker_allow(&b, 30 * SEC, NULL));
        nx_breaker_failure(&b, 30 * SEC);
        assert_int_equal(b.cooldown_ms, 60 * SEC);
        assert_true(nx_breaker_allow(&b, 90 * SEC, NULL));
        nx_breaker_success(&b, 90 * SEC);
        nx_breaker_failure(&b, 100 * SEC);
        int64_t next = 0;
        assert_false(nx_breaker_allow(&b, 100 * SEC, &next));
        assert_int_equal(next, 130 * SEC);
}

static void test_breaker_failure_while_open_does_not_extend(void **state)
{
        nx_rng r = rng_zero();
        nx_breaker b;
        init_ref(&b, &r, 1, 30 * SEC, 5 * MIN);
        nx_breaker_failure(&b, 0);
        nx_breaker_failure(&b, 20 * SEC);   /* a late answer from before the opening */
        assert_int_equal(b.cooldown_ms, 30 * SEC);
        assert_true(nx_breaker_allow(&b, 30 * SEC, NULL));
}

static void test_breaker_success_while_open_closes(void **state)
{
        nx_rng r = rng_zero();
        nx_breaker b;
        init_ref(&b, &r, 1, 30 * SEC, 5 * MIN);
        nx_breaker_failure(&b, 0);
        nx_breaker_success(&b, 5 * SEC);
        assert_int_equal(nx_breaker_get_state(&b), NX_BREAKER_CLOSED);
        assert_true(nx_breaker_allow(&b, 5 * SEC, NULL));
}

static void test_breaker_lost_probe_is_given_up_after_probe_timeout(void **state)
{
        nx_rng r = rng_zero();
        nx_breaker_cfg cfg = NX_BREAKER_CFG_DEFAULT;
        cfg.threshold = 1;
        cfg.probe_timeout_ms = 60 * SEC;
        cfg.rng = &r;
        nx_breaker b;
        nx_breaker_init(&b, &cfg);
        nx_breaker_failure(&b, 0);
        assert_true(nx_breaker_allow(&b, 30 * SEC, NULL));
        int64_t next = 0;
        assert_false(nx_breaker_allow(&b, 89 * SEC, &next));
        assert_int_equal(next, 90 * SEC);
        assert_true(nx_breaker_allow(&b, 90 * SEC, NULL));
        assert_int_equal(nx_breaker_get_state(&b), NX_BREAKER_HALF_OPEN);
        assert_false(nx_breaker_allow(&b, 90 * SEC, NULL));
}

static void test_breaker_probe_timeout_zero_waits_for_outcome(void **state)
{
        nx_rng r = rng_zero();
        nx_breaker_cfg cfg = NX_BREAKER_CFG_DEFAULT;
        cfg.threshold = 1;
        cfg.probe_timeout_ms = 0;
        cfg.rng = &r;
        nx_breaker b;
        nx_breaker_init(&b, &cfg);
        nx_breaker_failure(&b, 0);
        assert_true(nx_breaker_allow(&b, 30 * SEC, NULL));
        int64_t next = 0;
        assert_false(nx_breaker_allow(&b, 1000 * MIN, &next));
        assert_true(next == INT64_MAX);
}

static void test_breaker_refusal_reports_next_attempt_without_overflow(void **state)
{
        nx_rng r = rng_zero();
        nx_breaker b;
        init_ref(&b, &r, 1, 30 * SEC, 5 * MIN);
        nx_breaker_failure(&b, INT64_MAX - 10);
        int64_t next = 0;
        assert_false(nx_breaker_allow(&b, INT64_MAX - 5, &next));
        assert_true(next == INT64_MAX);
}

/* ── breaker: jitter ───────────────────────────────────────────────────────────────────── */

static void test_breaker_jitter_largest_draw_shortens_wait_by_pct(void **state)
{
        nx_rng r = rng_max();
        nx_breaker_cfg cfg = NX_BREAKER_CFG_DEFAULT;
        cfg.threshold = 1;
        cfg.rng = &r;
        nx_breaker b;
        nx_breaker_init(&b, &cfg);
        nx_breaker_failure(&b, 0);
        int64_t next = 0;
        assert_false(nx_breaker_allow(&b, 0, &next));
        assert_int_equal(next, 24 * SEC);     /* 30 s − 20 % */
        assert_true(nx_breaker_allow(&b, 24 * SEC, NULL));
}

static void test_breaker_jitter_stays_within_band_for_many_seeds(void **state)
{
        for (uint64_t seed = 1; seed <= 200; seed++) {
                nx_rng r;
                nx_rng_seed(&r, seed);
                nx_breaker_cfg cfg = NX_BREAKER_CFG_DEFAULT;
                cfg.threshold = 1;
                cfg.rng = &r;
                nx_breaker b;
                nx_breaker_init(&b, &cfg);
                int64_t now = 0;
                nx_breaker_failure(&b, now);
                for (int probe = 0; probe < 8; probe++) {
                        int64_t next = 0;
                        assert_false(nx_breaker_allow(&b, now, &next));
                        int64_t wait = next - now;
                        assert_in_range(wait, b.cooldown_ms - b.cooldown_ms / 5, b.cooldown_ms);
                        assert_true(wait <= 5 * MIN);
                        assert_false(nx_breaker_allow(&b, next - 1, NULL));
                        now = next;
                        assert_true(nx_breaker_allow(&b, now, NULL));
                        nx_breaker_failure(&b, now);
                }
        }
}

static void test_breaker_jitter_spreads_waits(void **state)
{
        /* Daemons with different seeds must not all probe at the same instant. */
        int64_t first = -1;
        bool spread = false;
        for (uint64_t seed = 1; seed <= 20; seed++) {
                nx_rng r;
                nx_rng_seed(&r, seed);
                nx_breaker_cfg cfg = NX_BREAKER_CFG_DEFAULT;
                cfg.threshold = 1;
                cfg.rng = &r;
                nx_breaker b;
                nx_breaker_init(&b, &cfg);
                nx_breaker_failure(&b, 0);
                if (first < 0)
                        first = b.wait_ms;
                else if (b.wait_ms != first)
                        spread = true;
        }
        assert_true(spread);
}

static void test_breaker_full_jitter_can_reach_zero_wait(void **state)
{
        nx_rng r = rng_max();
        nx_breaker_cfg cfg = NX_BREAKER_CFG_DEFAULT;
        cfg.threshold = 1;
        cfg.jitter_pct = 100;
        cfg.rng = &r;
        nx_breaker b;
        nx_breaker_init(&b, &cfg);
        nx_breaker_failure(&b, 500);
        assert_true(nx_breaker_allow(&b, 500, NULL));
}

static void test_breaker_zero_jitter_is_exact_even_with_random_draws(void **state)
{
        nx_rng r = rng_max();
        nx_breaker_cfg cfg = NX_BREAKER_CFG_DEFAULT;
        cfg.threshold = 1;
        cfg.jitter_pct = 0;
        cfg.rng = &r;
        nx_breaker b;
        nx_breaker_init(&b, &cfg);
        nx_breaker_failure(&b, 0);
        assert_int_equal(b.wait_ms, 30 * SEC);
}

/* ── retry classification ──────────────────────────────────────────────────────────────── */

/* spec nexus §12 #236 (503 and connection refusal (status 0) retried, 409 not) */
static void test_retry_classify_table(void **state)
{
        static const struct { int status; nx_retry_class want; } rows[] = {
                { 0, NX_RETRY },   { -1, NX_RETRY },  { 408, NX_RETRY }, { 429, NX_RETRY },
                { 500, NX_RETRY }, { 502, NX_RETRY }, { 503, NX_RETRY }, { 504, NX_RETRY },
                { 599, NX_RETRY }, { 400, NX_FATAL }, { 401, NX_FATAL }, { 403, NX_FATAL },
                { 404, NX_FATAL }, { 409, NX_FATAL }, { 422, NX_FATAL }, { 413, NX_FATAL },
                { 301, NX_FATAL }, { 200, NX_FATAL }, { 600, NX_FATAL }, { 499, NX_FATAL },
        };
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                if (nx_retry_classify(rows[i].status, false) != rows[i].want)
                        fail_msg("status %d: wrong class", rows[i].status);
        }
}

static void test_retry_per_attempt_timeout_is_retried(void **state)
{
        /* ADVISED §4.7: REF gave up on an attempt that hit its own deadline. */
        assert_int_equal(nx_retry_classify(0, true), NX_RETRY);
        assert_int_equal(nx_retry_classify(422, true), NX_RETRY);
}

static void test_retry_answer_is_definitive_table(void **state)
{
        static const struct { int status; bool want; } rows[] = {
                { 200, true },  { 201, true },  { 204, true },  { 299, true },
                { 400, true },  { 401, true },  { 404, true },  { 409, true },
                { 422, true },  { 499, true },  { 408, false }, { 429, false },
                { 500, false }, { 503, false }, { 0, false },   { -1, false },
                { 302, false }, { 100, false }, { 600, false },
        };
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                if (nx_retry_answer_is_definitive(rows[i].status) != rows[i].want)
                        fail_msg("status %d: wrong verdict", rows[i].status);
        }
}

/* spec nexus §12 #58 */
static void test_retry_after_cap_vectors(void **state)
{
        assert_int_equal(nx_retry_after_cap_s(10), 10);
        assert_int_equal(nx_retry_after_cap_s(0), 0);
        assert_int_equal(nx_retry_after_cap_s(600), 300);
        assert_int_equal(nx_retry_after_cap_s(300), 300);
        assert_int_equal(nx_retry_after_cap_s(-4), 0);
        assert_int_equal(nx_retry_after_cap_s(INT64_MAX), 300);
}

/* ── retry delays ──────────────────────────────────────────────────────────────────────── */

/* spec nexus §12 #236 (delays 2, 4, 8, 16 s) */
static void test_retry_delay_exponential_nominal_values(void **state)
{
        const int64_t want[] = { 2, 4, 8, 16, 32, 60, 60, 60 };
        for (int a = 1; a <= 8; a++)
                assert_int_equal(nx_retry_delay_ms(a, 0, NULL), want[a - 1] * SEC);
}

static void test_retry_delay_equal_jitter_bounds(void **state)
{
        nx_rng z = rng_zero(), m = rng_max();
        assert_int_equal(nx_retry_delay_ms(1, 0, &z), 1 * SEC);
        assert_int_equal(nx_retry_delay_ms(1, 0, &m), 2 * SEC);
        assert_int_equal(nx_retry_delay_ms(4, 0, &z), 8 * SEC);
        assert_int_equal(nx_retry_delay_ms(9, 0, &z), 30 * SEC);
        nx_rng r;
        nx_rng_seed(&r, 99);
        for (int i = 0; i < 500; i++) {
                int attempt = 1 + i % 7;
                int64_t nominal = nx_retry_delay_ms(attempt, 0, NULL);
                int64_t d = nx_retry_delay_ms(attempt, 0, &r);
                assert_in_range(d, nominal / 2, nominal);
        }
}

static void test_retry_delay_attempt_out_of_range(void **state)
{
        assert_int_equal(nx_retry_delay_ms(0, 0, NULL), 2 * SEC);
        assert_int_equal(nx_retry_delay_ms(-7, 0, NULL), 2 * SEC);
        assert_int_equal(nx_retry_delay_ms(INT_MAX, 0, NULL), 60 * SEC);
}

/* spec nexus §12 #236 (Retry-After honoured) */
static void test_retry_delay_honours_retry_after(void **state)
{
        nx_rng z = rng_zero();
        assert_int_equal(nx_retry_delay_ms(1, 7, &z), 7 * SEC);
        assert_int_equal(nx_retry_delay_ms(4, 120, NULL), 120 * SEC);
        /* Retry-After wins over the exponential value even when shorter */
        assert_int_equal(nx_retry_delay_ms(5, 1, &z), 1 * SEC);
}

static void test_retry_delay_caps_retry_after_at_five_minutes(void **state)
{
        nx_rng m = rng_max();
        assert_int_equal(nx_retry_delay_ms(1, 600, NULL), 300 * SEC);
        assert_int_equal(nx_retry_delay_ms(1, 600, &m), 300 * SEC);
        assert_int_equal(nx_retry_delay_ms(1, INT64_MAX, &m), 300 * SEC);
        assert_int_equal(nx_retry_delay_ms(1, 290, &m), 300 * SEC);
}

static void test_retry_delay_retry_after_jitter_never_earlier(void **state)
{
        nx_rng m = rng_max();
        assert_int_equal(nx_retry_delay_ms(1, 10, &m), 11 * SEC);
        nx_rng r;
        nx_rng_seed(&r, 5);
        for (int i = 0; i < 300; i++) {
                int64_t ra = 1 + i % 299;
                int64_t d = nx_retry_delay_ms(2, ra, &r);
                assert_in_range(d, ra * SEC, ra * SEC + ra * SEC / 10);
        }
}

static void test_retry_delay_negative_retry_after_is_ignored(void **state)
{
        assert_int_equal(nx_retry_delay_ms(2, -30, NULL), 4 * SEC);
}

/* spec nexus §12 #236 (at most 5 attempts) */
static void test_retry_delays_of_a_full_run_fit_the_ref_budget(void **state)
{
        /* 5 attempts → 4 waits: at most 2+4+8+16 s, at least half of that. */
        nx_rng r;
        nx_rng_seed(&r, 1234);
        int64_t total = 0;
        for (int a = 1; a < NX_RETRY_MAX_ATTEMPTS; a++)
                total += nx_retry_delay_ms(a, 0, &r);
        assert_in_range(total, 15 * SEC, 30 * SEC);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rng_same_seed_same_sequence),
                cmocka_unit_test(test_rng_upto_stays_in_range_and_reaches_both_ends),
                cmocka_unit_test(test_rng_upto_extremes_of_the_draw),
                cmocka_unit_test(test_rng_init_random_differs_between_generators),
                cmocka_unit_test(test_breaker_starts_closed_and_allows),
                cmocka_unit_test(test_breaker_opens_on_third_failure_and_refuses),
                cmocka_unit_test(test_breaker_open_allows_one_probe_after_cooldown),
                cmocka_unit_test(test_breaker_probe_allowed_exactly_at_cooldown),
                cmocka_unit_test(test_breaker_successful_probe_closes),
                cmocka_unit_test(test_breaker_failed_probe_reopens_with_doubled_cooldown),
                cmocka_unit_test(test_breaker_cooldown_caps_at_max_not_double),
                cmocka_unit_test(test_breaker_success_between_failures_keeps_it_closed),
                cmocka_unit_test(test_breaker_state_names),
                cmocka_unit_test(test_breaker_default_timeline_against_dead_server),
                cmocka_unit_test(test_breaker_clamps_nonsense_config),
                cmocka_unit_test(test_breaker_null_cfg_uses_ref_defaults),
                cmocka_unit_test(test_breaker_success_resets_cooldown_to_initial),
                cmocka_unit_test(test_breaker_failure_while_open_does_not_extend),
                cmocka_unit_test(test_breaker_success_while_open_closes),
                cmocka_unit_test(test_breaker_lost_probe_is_given_up_after_probe_timeout),
                cmocka_unit_test(test_breaker_probe_timeout_zero_waits_for_outcome),
                cmocka_unit_test(test_breaker_refusal_reports_next_attempt_without_overflow),
                cmocka_unit_test(test_breaker_jitter_largest_draw_shortens_wait_by_pct),
                cmocka_unit_test(test_breaker_jitter_stays_within_band_for_many_seeds),
                cmocka_unit_test(test_breaker_jitter_spreads_waits),
                cmocka_unit_test(test_breaker_full_jitter_can_reach_zero_wait),
                cmocka_unit_test(test_breaker_zero_jitter_is_exact_even_with_random_draws),
                cmocka_unit_test(test_retry_classify_table),
                cmocka_unit_test(test_retry_per_attempt_timeout_is_retried),
                cmocka_unit_test(test_retry_answer_is_definitive_table),
                cmocka_unit_test(test_retry_after_cap_vectors),
                cmocka_unit_test(test_retry_delay_exponential_nominal_values),
                cmocka_unit_test(test_retry_delay_equal_jitter_bounds),
                cmocka_unit_test(test_retry_delay_attempt_out_of_range),
                cmocka_unit_test(test_retry_delay_honours_retry_after),
                cmocka_unit_test(test_retry_delay_caps_retry_after_at_five_minutes),
                cmocka_unit_test(test_retry_delay_retry_after_jitter_never_earlier),
                cmocka_unit_test(test_retry_delay_negative_retry_after_is_ignored),
                cmocka_unit_test(test_retry_delays_of_a_full_run_fit_the_ref_budget),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
