/* tests/unit/test_error.c — core/error. */
#include "testutil.h"
#include "core/error.h"
#include "core/cleanup.h"

#include <errno.h>
#include <string.h>

static void test_set_formats_and_returns_negative(void **state)
{
        err_t err = ERR_INIT;
        assert_int_equal(err_set(&err, "facility id \"%s\" is invalid", "../x"), -1);
        assert_true(err_is_set(&err));
        assert_string_equal(err.code, ERR_INVALID);
        assert_string_equal(err.msg, "facility id \"../x\" is invalid");
        assert_int_equal(err.errnum, 0);
}

static void test_errno_appends_strerror(void **state)
{
        err_t err = ERR_INIT;
        err_errno(&err, ENOENT, "open %s", "/nope");
        assert_string_equal(err.code, ERR_SYSTEM);
        assert_int_equal(err.errnum, ENOENT);
        assert_string_equal(err.msg, "open /nope: No such file or directory");
}

static void test_wrap_prefixes_context_keeps_code(void **state)
{
        err_t err = ERR_INIT;
        err_setc(&err, ERR_NOT_FOUND, "no such directive");
        err_wrap(&err, "lease %d", 7);
        err_wrap(&err, "poll");
        assert_string_equal(err.msg, "poll: lease 7: no such directive");
        assert_string_equal(err.code, ERR_NOT_FOUND);
}

static void test_long_message_truncates_safely(void **state)
{
        err_t err = ERR_INIT;
        char big[4000];
        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        err_set(&err, "%s", big);
        assert_int_equal(strlen(err.msg), ERR_MSG_MAX - 1);
        err_wrap(&err, "ctx");
        assert_int_equal(strlen(err.msg), ERR_MSG_MAX - 1);
        assert_memory_equal(err.msg, "ctx: aaa", 8);
}

static void test_clear(void **state)
{
        err_t err = ERR_INIT;
        err_set(&err, "x");
        err_clear(&err);
        assert_false(err_is_set(&err));
        assert_string_equal(err.msg, "");
}

static void test_wrap_of_clear_error_becomes_internal(void **state)
{
        err_t err = ERR_INIT;
        err_wrap(&err, "context only");
        assert_string_equal(err.code, ERR_INTERNAL);
        assert_string_equal(err.msg, "context only");
}

static char *make_owned(void)
{
        _cleanup_free_ char *p = strdup("owned");
        return steal_ptr(&p);   /* p is NULL now; the cleanup frees nothing */
}

static void test_steal_ptr_moves_ownership(void **state)
{
        char *p = make_owned();
        assert_string_equal(p, "owned");
        FREE_AND_NULL(p);
        assert_null(p);
        int fd = 5;
        int g = steal_fd(&fd);
        assert_int_equal(g, 5);
        assert_int_equal(fd, -1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_set_formats_and_returns_negative),
                cmocka_unit_test(test_errno_appends_strerror),
                cmocka_unit_test(test_wrap_prefixes_context_keeps_code),
                cmocka_unit_test(test_long_message_truncates_safely),
                cmocka_unit_test(test_clear),
                cmocka_unit_test(test_wrap_of_clear_error_becomes_internal),
                cmocka_unit_test(test_steal_ptr_moves_ownership),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
