/* Unit tests for src/mothership/http/ratelimit.c (spec mothership §3.1.4), with an injected
 * clock so that window boundaries are exact and nothing depends on wall time. */
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "http/ratelimit.h"

static int64_t fake_now_ms;

static int64_t fake_clock(void *ctx)
{
        (void)ctx;
        return fake_now_ms;
}

static ms_ratelimit *new_rl(size_t max_keys, int64_t now_ms)
{
        ms_ratelimit *rl = ms_ratelimit_new(max_keys);
        assert_non_null(rl);
        fake_now_ms = now_ms;
        ms_ratelimit_set_clock(rl, fake_clock, NULL);
        return rl;
}

static const ms_ratelimit_rule three_per_min = { "t", 3, 60 };

static void test_allows_up_to_limit_then_limits(void **state)
{
        (void)state;
        ms_ratelimit *rl = new_rl(0, 1200000);   /* 1200 s: start of a 60 s window */
        uint64_t c;
        for (int i = 1; i <= 3; i++) {
                assert_int_equal(ms_ratelimit_hit(rl, &three_per_min, "1.2.3.4", &c),
                                 MS_RATELIMIT_ALLOW);
                assert_int_equal(c, (uint64_t)i);
        }
        assert_int_equal(ms_ratelimit_hit(rl, &three_per_min, "1.2.3.4", &c),
                         MS_RATELIMIT_LIMITED);
        assert_int_equal(c, 4);   /* refused hits still count */
        ms_ratelimit_free(rl);
}

static void test_window_resets_at_period_boundary(void **state)
{
        (void)state;
        ms_ratelimit *rl = new_rl(0, 1200000 + 59999);   /* last ms of window [1200,1260) */
        for (int i = 0; i < 3; i++)
                assert_int_equal(ms_ratelimit_hit(rl, &three_per_min, "k", NULL),
                                 MS_RATELIMIT_ALLOW);
        assert_int_equal(ms_ratelimit_hit(rl, &three_per_min, "k", NULL), MS_RATELIMIT_LIMITED);
        fake_now_ms = 1260000;   /* next aligned window: fresh count */
        uint64_t c;
        assert_int_equal(ms_ratelimit_hit(rl, &three_per_min, "k", &c), MS_RATELIMIT_ALLOW);
        assert_int_equal(c, 1);
        ms_ratelimit_free(rl);
}

static void test_windows_aligned_to_epoch_not_first_hit(void **state)
{
        (void)state;
        /* First hit 10 s before a boundary: the window still ends at the boundary, not 60 s
         * after the first hit (fixed windows aligned to multiples of the period). */
        ms_ratelimit *rl = new_rl(0, 1250000);
        for (int i = 0; i < 4; i++)
                (void)ms_ratelimit_hit(rl, &three_per_min, "k", NULL);
        fake_now_ms = 1259999;
        assert_int_equal(ms_ratelimit_hit(rl, &three_per_min, "k", NULL), MS_RATELIMIT_LIMITED);
        fake_now_ms = 1260000;
        assert_int_equal(ms_ratelimit_hit(rl, &three_per_min, "k", NULL), MS_RATELIMIT_ALLOW);
        ms_ratelimit_free(rl);
}

static void test_keys_are_isolated(void **state)
{
        (void)state;
        ms_ratelimit *rl = new_rl(0, 1200000);
        for (int i = 0; i < 3; i++)
                assert_int_equal(ms_ratelimit_hit(rl, &three_per_min, "alice", NULL),
                                 MS_RATELIMIT_ALLOW);
        assert_int_equal(ms_ratelimit_hit(rl, &three_per_min, "alice", NULL),
                         MS_RATELIMIT_LIMITED);
        assert_int_equal(ms_ratelimit_hit(rl, &three_per_min, "bob", NULL), MS_RATELIMIT_ALLOW);
        ms_ratelimit_free(rl);
}

static void test_rules_are_isolated_for_same_key(void **state)
{
        (void)state;
        ms_ratelimit *rl = new_rl(0, 1200000);
        const ms_ratelimit_rule other = { "u", 1, 60 };
        for (int i = 0; i < 3; i++)
                (void)ms_ratelimit_hit(rl, &three_per_min, "k", NULL);
        assert_int_equal(ms_ratelimit_hit(rl, &three_per_min, "k", NULL), MS_RATELIMIT_LIMITED);
        assert_int_equal(ms_ratelimit_hit(rl, &other, "k", NULL), MS_RATELIMIT_ALLOW);
        assert_int_equal(ms_ratelimit_hit(rl, &other, "k", NULL), MS_RATELIMIT_LIMITED);
        ms_ratelimit_free(rl);
}

static void test_spec_enroll_rule_is_10_per_hour(void **state)
{
        (void)state;
        ms_ratelimit *rl = new_rl(0, 3600000);
        for (int i = 0; i < 10; i++)
                assert_int_equal(ms_ratelimit_hit(rl, &ms_ratelimit_rule_enroll, "10.0.0.1", NULL),
                                 MS_RATELIMIT_ALLOW);
        fake_now_ms = 3600000 + 3599999;
        assert_int_equal(ms_ratelimit_hit(rl, &ms_ratelimit_rule_enroll, "10.0.0.1", NULL),
                         MS_RATELIMIT_LIMITED);
        fake_now_ms = 7200000;
        assert_int_equal(ms_ratelimit_hit(rl, &ms_ratelimit_rule_enroll, "10.0.0.1", NULL),
                         MS_RATELIMIT_ALLOW);
        assert_int_equal(ms_ratelimit_rule_polls.limit, 60);
        assert_int_equal(ms_ratelimit_rule_territory_heartbeat.limit, 10);
        assert_int_equal(ms_ratelimit_rule_directive_reports.limit, 120);
        assert_int_equal(ms_ratelimit_rule_directive_reports.period_s, 60);
        ms_ratelimit_free(rl);
}

static void test_full_table_fails_closed_for_new_keys(void **state)
{
        (void)state;
        ms_ratelimit *rl = new_rl(4, 1200000);
        char key[16];
        for (int i = 0; i < 4; i++) {
                assert_true(snprintf(key, sizeof(key), "k%d", i) > 0);
                assert_int_equal(ms_ratelimit_hit(rl, &three_per_min, key, NULL),
                                 MS_RATELIMIT_ALLOW);
        }
        assert_int_equal(ms_ratelimit_hit(rl, &three_per_min, "newcomer", NULL),
                         MS_RATELIMIT_FULL);
        assert_int_equal(ms_ratelimit_full_refusals(rl), 1);
        /* known keys keep being served */
        assert_int_equal(ms_ratelimit_hit(rl, &three_per_min, "k0", NULL), MS_RATELIMIT_ALLOW);
        assert_int_equal(ms_ratelimit_size(rl), 4);
        ms_ratelimit_free(rl);
}

static void test_expired_windows_are_evicted_to_make_room(void **state)
{
        (void)state;
        ms_ratelimit *rl = new_rl(4, 1200000);
        char key[16];
        for (int i = 0; i < 4; i++) {
                assert_true(snprintf(key, sizeof(key), "k%d", i) > 0);
                (void)ms_ratelimit_hit(rl, &three_per_min, key, NULL);
        }
        fake_now_ms = 1260000;   /* all four windows are over */
        assert_int_equal(ms_ratelimit_hit(rl, &three_per_min, "newcomer", NULL),
                         MS_RATELIMIT_ALLOW);
        assert_int_equal(ms_ratelimit_size(rl), 1);
        ms_ratelimit_free(rl);
}

static void test_sweep_drops_only_expired(void **state)
{
        (void)state;
        ms_ratelimit *rl = new_rl(0, 1200000);
        const ms_ratelimit_rule hourly = { "h", 5, 3600 };
        (void)ms_ratelimit_hit(rl, &three_per_min, "a", NULL);
        (void)ms_ratelimit_hit(rl, &hourly, "a", NULL);
        fake_now_ms = 1260000;
        assert_int_equal(ms_ratelimit_sweep(rl), 1);
        assert_int_equal(ms_ratelimit_size(rl), 1);
        ms_ratelimit_free(rl);
}

static void test_bad_keys_refused(void **state)
{
        (void)state;
        ms_ratelimit *rl = new_rl(0, 1200000);
        char long_key[MS_RATELIMIT_KEY_MAX + 2];
        memset(long_key, 'x', sizeof(long_key) - 1);
        long_key[sizeof(long_key) - 1] = '\0';
        assert_int_equal(ms_ratelimit_hit(rl, &three_per_min, "", NULL), MS_RATELIMIT_BAD_KEY);
        assert_int_equal(ms_ratelimit_hit(rl, &three_per_min, NULL, NULL), MS_RATELIMIT_BAD_KEY);
        assert_int_equal(ms_ratelimit_hit(rl, &three_per_min, long_key, NULL),
                         MS_RATELIMIT_BAD_KEY);
        const ms_ratelimit_rule zero = { "z", 1, 0 };
        assert_int_equal(ms_ratelimit_hit(rl, &zero, "k", NULL), MS_RATELIMIT_BAD_KEY);
        assert_int_equal(ms_ratelimit_size(rl), 0);
        ms_ratelimit_free(rl);
}

static void test_many_keys_grow_table_and_stay_countable(void **state)
{
        (void)state;
        ms_ratelimit *rl = new_rl(0, 1200000);
        const ms_ratelimit_rule one = { "one", 1, 60 };
        char key[32];
        for (int i = 0; i < 5000; i++) {
                assert_true(snprintf(key, sizeof(key), "10.%d.%d.1", i / 256, i % 256) > 0);
                assert_int_equal(ms_ratelimit_hit(rl, &one, key, NULL), MS_RATELIMIT_ALLOW);
        }
        assert_int_equal(ms_ratelimit_size(rl), 5000);
        for (int i = 0; i < 5000; i += 499) {
                assert_true(snprintf(key, sizeof(key), "10.%d.%d.1", i / 256, i % 256) > 0);
                assert_int_equal(ms_ratelimit_hit(rl, &one, key, NULL), MS_RATELIMIT_LIMITED);
        }
        ms_ratelimit_free(rl);
}

typedef struct hammer_arg {
        ms_ratelimit *rl;
        int allowed;
} hammer_arg;

static const ms_ratelimit_rule hundred = { "hundred", 100, 60 };

static void *hammer(void *p)
{
        hammer_arg *a = p;
        for (int i = 0; i < 1000; i++)
                if (ms_ratelimit_hit(a->rl, &hundred, "shared", NULL) == MS_RATELIMIT_ALLOW)
                        a->allowed++;
        return NULL;
}

static void test_concurrent_hits_allow_exactly_the_limit(void **state)
{
        (void)state;
        ms_ratelimit *rl = new_rl(0, 1200000);
        pthread_t t[8];
        hammer_arg args[8];
        for (int i = 0; i < 8; i++) {
                args[i] = (hammer_arg){ .rl = rl, .allowed = 0 };
                assert_int_equal(pthread_create(&t[i], NULL, hammer, &args[i]), 0);
        }
        int total = 0;
        for (int i = 0; i < 8; i++) {
                pthread_join(t[i], NULL);
                total += args[i].allowed;
        }
        assert_int_equal(total, 100);
        uint64_t c;
        assert_int_equal(ms_ratelimit_hit(rl, &hundred, "shared", &c), MS_RATELIMIT_LIMITED);
        assert_int_equal(c, 8001);
        ms_ratelimit_free(rl);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_allows_up_to_limit_then_limits),
                cmocka_unit_test(test_window_resets_at_period_boundary),
                cmocka_unit_test(test_windows_aligned_to_epoch_not_first_hit),
                cmocka_unit_test(test_keys_are_isolated),
                cmocka_unit_test(test_rules_are_isolated_for_same_key),
                cmocka_unit_test(test_spec_enroll_rule_is_10_per_hour),
                cmocka_unit_test(test_full_table_fails_closed_for_new_keys),
                cmocka_unit_test(test_expired_windows_are_evicted_to_make_room),
                cmocka_unit_test(test_sweep_drops_only_expired),
                cmocka_unit_test(test_bad_keys_refused),
                cmocka_unit_test(test_many_keys_grow_table_and_stay_countable),
                cmocka_unit_test(test_concurrent_hits_allow_exactly_the_limit),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
