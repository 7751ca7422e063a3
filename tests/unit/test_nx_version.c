/* tests/unit/test_nx_version.c — agent/version: spec nexus §4.9 and §12 #225. */
#include "testutil.h"

#include "agent/version.h"

/* spec nexus §12 #225 */
static void test_vec_compare_table(void **state)
{
        static const struct { const char *a, *b; int want; } v[] = {
                { "0.1.0", "0.1.0", 0 },        { "0.2.0", "0.1.0", 1 },
                { "0.1.0", "0.2.0", -1 },       { "1.0.0", "0.99.99", 1 },
                { "0.10.0", "0.2.0", 1 },       { "0.1.0-dev", "0.1.0", 0 },
                { "1.2.3-rc1", "1.2.3", 0 },    { "0.1.0", "0.1.0-dev", 0 },
        };
        for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
                assert_int_equal(nx_version_compare(v[i].a, v[i].b), v[i].want);
}

/* spec nexus §4.9 consequences */
static void test_odd_forms(void **state)
{
        assert_int_equal(nx_version_compare("v1.2.3", "0.2.3"), 0);   /* "v1" is not a number */
        assert_int_equal(nx_version_compare("1.2.3.4", "1.2.0"), 0);  /* third part "3.4" */
        assert_int_equal(nx_version_compare("", "0.0.0"), 0);
        assert_int_equal(nx_version_compare(NULL, "0"), 0);
        assert_int_equal(nx_version_compare("2", "1.9.9"), 1);
        assert_int_equal(nx_version_compare("1.2", "1.2.1"), -1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_vec_compare_table),
                cmocka_unit_test(test_odd_forms),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
