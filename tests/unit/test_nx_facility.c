/* tests/unit/test_nx_facility.c — agent/facility: the id rule, layout, the run-long lock. */
#include "testutil.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/facility.h"
#include "core/str.h"

static char root[256];

static int setup(void **state)
{
        str_copy(root, sizeof(root), "/tmp/nx-fac-XXXXXX");
        return mkdtemp(root) ? 0 : -1;
}

static void rm_root(void)
{
        pid_t p = fork();
        if (p == 0) {
                execl("/bin/rm", "rm", "-rf", root, (char *)NULL);
                _exit(127);
        }
        int st;
        waitpid(p, &st, 0);
}

/* spec nexus §12 #54, #55 */
static void test_id_rule(void **state)
{
        assert_true(nx_facility_id_valid("abc-DEF_123"));
        assert_true(nx_facility_id_valid("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"));
        const char *bad[] = { "", ".", "..", "a/b", "a b", "a.b", "../x", "é", "a\\b", "a:b" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_false(nx_facility_id_valid(bad[i]));
        char longid[200];
        memset(longid, 'a', sizeof(longid) - 1);
        longid[sizeof(longid) - 1] = '\0';
        assert_false(nx_facility_id_valid(longid));
}

static void test_open_creates_and_locks(void **state)
{
        nx_facility f = NX_FACILITY_INIT, g = NX_FACILITY_INIT;
        err_t err = ERR_INIT;
        assert_int_equal(nx_facility_open(root, "fac1", &f, &err), 0);
        struct stat st;
        char p[512];
        str_printf(p, sizeof(p), "%s/fac1", root);
        assert_int_equal(lstat(p, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        bool empty = false;
        assert_int_equal(nx_facility_is_empty(&f, &empty, &err), 0);
        assert_true(empty);
        /* a second opener on this host is refused while the run holds the lock */
        assert_int_equal(nx_facility_open(root, "fac1", &g, &err), -1);
        assert_string_equal(err.code, ERR_CONFLICT);
        nx_facility_close(&f);
        err_clear(&err);
        assert_int_equal(nx_facility_open(root, "fac1", &g, &err), 0);
        nx_facility_close(&g);
        nx_facility_close(&g);   /* twice is harmless */
}

static void test_symlinked_facility_refused(void **state)
{
        char p[512];
        str_printf(p, sizeof(p), "%s/evil", root);
        assert_int_equal(symlink("/etc", p), 0);
        nx_facility f = NX_FACILITY_INIT;
        err_t err = ERR_INIT;
        assert_int_equal(nx_facility_open(root, "evil", &f, &err), -1);
        assert_non_null(strstr(err.msg, "open facility evil"));
}

static void test_invalid_id_refused_before_touching_disk(void **state)
{
        nx_facility f = NX_FACILITY_INIT;
        err_t err = ERR_INIT;
        assert_int_equal(nx_facility_open(root, "../escape", &f, &err), -1);
        assert_non_null(strstr(err.msg, "must match"));
        char p[512];
        str_printf(p, sizeof(p), "%s/../escape", root);
        assert_int_not_equal(access(p, F_OK), 0);
}

static void test_not_empty_detected(void **state)
{
        nx_facility f = NX_FACILITY_INIT;
        err_t err = ERR_INIT;
        assert_int_equal(nx_facility_open(root, "fac2", &f, &err), 0);
        int fd = openat(f.dirfd, "file", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        close(fd);
        bool empty = true;
        assert_int_equal(nx_facility_is_empty(&f, &empty, &err), 0);
        assert_false(empty);
        nx_facility_close(&f);
        rm_root();
}

/* spec nexus §12 #54, #55 (verbatim lists) */
static void test_vec_facility_id_lists(void **state)
{
        (void)state;
        static const char *const good[] = { "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
                                            "facility123", "my_facility", "my-facility" };
        static const char *const bad[] = { "", ".", "..", "../etc/passwd", "abc/def", "abc def",
                                           "abc:def" };
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                if (!nx_facility_id_valid(good[i]))
                        fail_msg("\"%s\" refused", good[i]);
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                if (nx_facility_id_valid(bad[i]))
                        fail_msg("\"%s\" accepted", bad[i]);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_id_rule),
                cmocka_unit_test(test_open_creates_and_locks),
                cmocka_unit_test(test_symlinked_facility_refused),
                cmocka_unit_test(test_invalid_id_refused_before_touching_disk),
                cmocka_unit_test(test_not_empty_detected),
                cmocka_unit_test(test_vec_facility_id_lists),
        };
        return cmocka_run_group_tests(tests, setup, NULL);
}
