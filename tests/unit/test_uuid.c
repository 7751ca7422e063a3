/* tests/unit/test_uuid.c — core/uuid: UUIDv7 generation, ordering and validation.
 *
 * The generator keeps process-wide state (last timestamp and counter). Cases that use the real
 * clock come first; the uuid7_generate_at() cases then use fixed instants far in the future,
 * each later than the one before, so they never depend on the time of the run. */
#include "testutil.h"
#include "core/uuid.h"
#include "core/clock.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* 2100-01-01T00:00:00Z */
#define T_FUTURE INT64_C(4102444800000)

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

static void gen(char out[UUID_STR_LEN])
{
        err_t err = ERR_INIT;
        if (uuid7_generate(out, &err) != 0)
                fail_msg("uuid7_generate: %s", err.msg);
}

static void gen_at(int64_t ms, char out[UUID_STR_LEN])
{
        err_t err = ERR_INIT;
        if (uuid7_generate_at(ms, out, &err) != 0)
                fail_msg("uuid7_generate_at: %s", err.msg);
}

/* rand_a: the 12 bits after the version nibble */
static int counter_of(const char *s)
{
        return hexval(s[15]) << 8 | hexval(s[16]) << 4 | hexval(s[17]);
}

static void test_generate_is_canonical_lower_case(void **state)
{
        char id[UUID_STR_LEN];
        gen(id);
        assert_int_equal(strlen(id), 36);
        for (int i = 0; i < 36; i++) {
                if (i == 8 || i == 13 || i == 18 || i == 23)
                        assert_int_equal(id[i], '-');
                else if (hexval(id[i]) < 0)
                        fail_msg("char %d of %s is not lower-case hex", i, id);
        }
        assert_true(uuid_is_valid(id));
}

static void test_generate_sets_version_7_and_variant_10(void **state)
{
        for (int i = 0; i < 64; i++) {
                char id[UUID_STR_LEN];
                gen(id);
                assert_int_equal(id[14], '7');
                assert_int_equal(hexval(id[19]) & 0xc, 0x8);
        }
}

static void test_timestamp_is_current_unix_ms(void **state)
{
        int64_t before = clock_now_ms();
        char id[UUID_STR_LEN];
        gen(id);
        int64_t after = clock_now_ms();
        int64_t ts = uuid7_timestamp_ms(id);
        assert_true(ts >= before);
        assert_true(ts <= after);
}

static void test_ten_thousand_ids_strictly_increase(void **state)
{
        char prev[UUID_STR_LEN], cur[UUID_STR_LEN];
        gen(prev);
        for (int i = 0; i < 10000; i++) {
                gen(cur);
                if (strcmp(prev, cur) >= 0)
                        fail_msg("id %d not above the previous: %s <= %s", i, cur, prev);
                memcpy(prev, cur, sizeof(prev));
        }
}

enum { THREADS = 4, PER_THREAD = 2000 };

static void *gen_many(void *arg)
{
        char (*ids)[UUID_STR_LEN] = arg;
        for (int i = 0; i < PER_THREAD; i++) {
                err_t err = ERR_INIT;
                if (uuid7_generate(ids[i], &err) != 0)
                        ids[i][0] = '\0';
        }
        return NULL;
}

static int cmp_id(const void *a, const void *b)
{
        return strcmp(a, b);
}

static void test_threads_never_get_the_same_id(void **state)
{
        char (*ids)[UUID_STR_LEN] = calloc(THREADS * PER_THREAD, UUID_STR_LEN);
        assert_non_null(ids);
        pthread_t th[THREADS];
        for (int t = 0; t < THREADS; t++)
                assert_int_equal(pthread_create(&th[t], NULL, gen_many, ids[t * PER_THREAD]), 0);
        for (int t = 0; t < THREADS; t++)
                assert_int_equal(pthread_join(th[t], NULL), 0);
        /* each thread's own sequence is ascending */
        for (int t = 0; t < THREADS; t++) {
                for (int i = 1; i < PER_THREAD; i++)
                        assert_true(strcmp(ids[t * PER_THREAD + i - 1], ids[t * PER_THREAD + i]) < 0);
        }
        qsort(ids, THREADS * PER_THREAD, UUID_STR_LEN, cmp_id);
        for (int i = 0; i < THREADS * PER_THREAD; i++) {
                assert_true(uuid_is_valid(ids[i]));
                if (i > 0)
                        assert_true(strcmp(ids[i - 1], ids[i]) != 0);
        }
        free(ids); ids = NULL;
}

static void test_same_ms_increments_counter_by_one(void **state)
{
        char a[UUID_STR_LEN], b[UUID_STR_LEN];
        gen_at(T_FUTURE, a);
        gen_at(T_FUTURE, b);
        assert_true(uuid7_timestamp_ms(a) == T_FUTURE);
        assert_true(uuid7_timestamp_ms(b) == T_FUTURE);
        assert_int_equal(counter_of(b), counter_of(a) + 1);
        assert_true(strcmp(a, b) < 0);
}

static void test_new_ms_seeds_counter_with_top_bit_clear(void **state)
{
        for (int i = 1; i <= 50; i++) {
                char id[UUID_STR_LEN];
                gen_at(T_FUTURE + 10 * i, id);
                assert_true(uuid7_timestamp_ms(id) == T_FUTURE + 10 * i);
                assert_true(counter_of(id) <= 0x7ff);
        }
}

static void test_clock_stepping_back_keeps_order(void **state)
{
        char a[UUID_STR_LEN], b[UUID_STR_LEN];
        gen_at(T_FUTURE + 1000, a);
        gen_at(T_FUTURE + 1000 - 60000, b);   /* the wall clock jumped back a minute */
        assert_true(strcmp(a, b) < 0);
        assert_true(uuid7_timestamp_ms(b) == T_FUTURE + 1000);
}

static void test_counter_exhaustion_borrows_next_ms(void **state)
{
        const int64_t t = T_FUTURE + 2000;
        char prev[UUID_STR_LEN], cur[UUID_STR_LEN];
        gen_at(t, prev);
        /* more than 4096 ids in one millisecond must still ascend */
        for (int i = 0; i < 5000; i++) {
                gen_at(t, cur);
                if (strcmp(prev, cur) >= 0)
                        fail_msg("id %d not above the previous: %s <= %s", i, cur, prev);
                memcpy(prev, cur, sizeof(prev));
        }
        int64_t ts = uuid7_timestamp_ms(prev);
        assert_true(ts > t);
        assert_true(ts <= t + 3);
}

static void test_is_valid_accepts_both_cases(void **state)
{
        assert_true(uuid_is_valid("0195f3a2-7b1c-7def-8a01-23456789abcd"));
        assert_true(uuid_is_valid("0195F3A2-7B1C-7DEF-8A01-23456789ABCD"));
        assert_true(uuid_is_valid("00000000-0000-0000-0000-000000000000"));
        /* any version */
        assert_true(uuid_is_valid("f47ac10b-58cc-4372-a567-0e02b2c3d479"));
}

static void test_is_valid_rejects_malformed(void **state)
{
        static const char *const bad[] = {
                "",
                "0195f3a2-7b1c-7def-8a01-23456789abc",      /* 35 chars */
                "0195f3a2-7b1c-7def-8a01-23456789abcde",    /* 37 chars */
                "0195f3a27b1c-7def-8a01-23456789abcd0",     /* hyphen missing */
                "0195f3a2-7b1c7-def-8a01-23456789abcd",     /* hyphen moved */
                "0195f3a2-7b1c-7def-8a01-23456789abcg",     /* non-hex */
                "0195f3a2-7b1c-7def-8a01-23456789ab d",     /* space */
                "{0195f3a2-7b1c-7def-8a01-23456789abcd}",   /* braces */
                "urn:uuid:0195f3a2-7b1c-7def-8a01-23456789abcd",
                "0195f3a27b1c7def8a0123456789abcd",         /* no hyphens */
                "0195f3a2_7b1c_7def_8a01_23456789abcd",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                if (uuid_is_valid(bad[i]))
                        fail_msg("accepted \"%s\"", bad[i]);
        }
        assert_false(uuid_is_valid(NULL));
}

static void test_normalize_lower_cases_and_refuses_invalid(void **state)
{
        char s[] = "0195F3A2-7B1C-7DEF-8A01-23456789ABCD";
        assert_int_equal(uuid_normalize(s), 0);
        assert_string_equal(s, "0195f3a2-7b1c-7def-8a01-23456789abcd");
        char bad[] = "0195F3A2-7B1C-7DEF-8A01-23456789ABCG";
        assert_int_equal(uuid_normalize(bad), -1);
        assert_string_equal(bad, "0195F3A2-7B1C-7DEF-8A01-23456789ABCG");
}

static void test_parse_gives_bytes_in_order(void **state)
{
        uint8_t u[16];
        static const uint8_t want[16] = { 0x01, 0x95, 0xf3, 0xa2, 0x7b, 0x1c, 0x7d, 0xef,
                                          0x8a, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd };
        assert_int_equal(uuid_parse("0195f3a2-7b1c-7DEF-8a01-23456789ABCD", u), 0);
        assert_memory_equal(u, want, 16);
        assert_int_equal(uuid_parse("0195f3a2-7b1c-7def-8a01-23456789abc", u), -1);
}

static void test_timestamp_ms_reads_v7_and_refuses_others(void **state)
{
        /* 0x0195f3a27b1c ms */
        assert_true(uuid7_timestamp_ms("0195f3a2-7b1c-7def-8a01-23456789abcd") ==
                    INT64_C(0x0195f3a27b1c));
        /* version 4 */
        assert_true(uuid7_timestamp_ms("f47ac10b-58cc-4372-a567-0e02b2c3d479") == -1);
        /* version 7 but variant 0b11 */
        assert_true(uuid7_timestamp_ms("0195f3a2-7b1c-7def-ca01-23456789abcd") == -1);
        assert_true(uuid7_timestamp_ms("not-a-uuid") == -1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                /* real clock first: see the comment at the top */
                cmocka_unit_test(test_generate_is_canonical_lower_case),
                cmocka_unit_test(test_generate_sets_version_7_and_variant_10),
                cmocka_unit_test(test_timestamp_is_current_unix_ms),
                cmocka_unit_test(test_ten_thousand_ids_strictly_increase),
                cmocka_unit_test(test_threads_never_get_the_same_id),
                cmocka_unit_test(test_same_ms_increments_counter_by_one),
                cmocka_unit_test(test_new_ms_seeds_counter_with_top_bit_clear),
                cmocka_unit_test(test_clock_stepping_back_keeps_order),
                cmocka_unit_test(test_counter_exhaustion_borrows_next_ms),
                cmocka_unit_test(test_is_valid_accepts_both_cases),
                cmocka_unit_test(test_is_valid_rejects_malformed),
                cmocka_unit_test(test_normalize_lower_cases_and_refuses_invalid),
                cmocka_unit_test(test_parse_gives_bytes_in_order),
                cmocka_unit_test(test_timestamp_ms_reads_v7_and_refuses_others),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
