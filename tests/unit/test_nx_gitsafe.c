/* tests/unit/test_nx_gitsafe.c — agent/gitsafe: git run for the daemon executes nothing the
 * repository configured (D15), and diff output is bounded. The attack: a facility whose
 * .git/config sets core.fsmonitor, diff.external, a clean filter (selected by .gitattributes),
 * a textconv driver, and hooks — each would create a marker file on the host if executed. */
#include "testutil.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/gitsafe.h"
#include "core/str.h"

static char root[256];
static char fac[300];
static char marker[300];

static int sh(const char *script)
{
        pid_t p = fork();
        if (p == 0) {
                execl("/bin/sh", "sh", "-c", script, (char *)NULL);
                _exit(127);
        }
        int st = 0;
        waitpid(p, &st, 0);
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static bool have_bwrap(void)
{
        return access("/usr/bin/bwrap", X_OK) == 0 && access("/usr/bin/git", X_OK) == 0;
}

static int setup(void **state)
{
        str_copy(root, sizeof(root), "/tmp/nx-git-XXXXXX");
        if (!mkdtemp(root))
                return -1;
        str_printf(fac, sizeof(fac), "%s/fac", root);
        str_printf(marker, sizeof(marker), "%s/PWNED", root);
        char script[4096];
        /* A repository with one commit, then a hostile config and a modified file. */
        str_printf(script, sizeof(script),
                   "set -e; mkdir -p '%s' && cd '%s' && git init -q . && "
                   "git -c user.email=t@t -c user.name=t commit -q --allow-empty -m init && "
                   "printf 'hello\\n' > a.txt && printf '* filter=evil diff=evil\\n' > .gitattributes && "
                   "git add a.txt .gitattributes && "
                   "git -c user.email=t@t -c user.name=t commit -q -m files && "
                   "printf 'changed\\n' >> a.txt && "
                   "git config core.fsmonitor 'touch %s.fsmonitor; false' && "
                   "git config diff.external 'sh -c \"touch %s.external\"' && "
                   "git config filter.evil.clean 'sh -c \"touch %s.clean; cat\"' && "
                   "git config filter.evil.process 'sh -c \"touch %s.process\"' && "
                   "git config diff.evil.textconv 'sh -c \"touch %s.textconv; cat\"' && "
                   "git config core.pager 'sh -c \"touch %s.pager\"' && "
                   "printf '#!/bin/sh\\ntouch %s.hook\\n' > .git/hooks/post-index-change && "
                   "chmod +x .git/hooks/post-index-change",
                   fac, fac, marker, marker, marker, marker, marker, marker, marker);
        return sh(script) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
        char script[512];
        str_printf(script, sizeof(script), "rm -rf '%s'", root);
        return sh(script) == 0 ? 0 : -1;
}

static bool any_marker(void)
{
        char script[512];
        str_printf(script, sizeof(script), "ls '%s' | grep -q PWNED", root);
        return sh(script) == 0;
}

static void test_diff_of_hostile_repo_runs_nothing_on_host(void **state)
{
        if (!have_bwrap())
                SKIP_BECAUSE("bubblewrap or git is not installed");
        nx_git_result r;
        err_t err = ERR_INIT;
        assert_int_equal(nx_git_diff(NULL, fac, 1 << 20, 30000, &r, &err), 0);
        assert_int_equal(r.exit_code, 0);
        assert_false(any_marker());
        /* the diff is real: the modified line is there, produced by git itself */
        assert_non_null(r.out);
        assert_true(r.out_len > 0);
        assert_non_null(memmem(r.out, r.out_len, "+changed", 8));
        nx_git_result_free(&r);
}

/* spec nexus §12 #242 (partial: over the ceiling the diff is cut and flagged; run.c then
 * sends no diff_base64) */
static void test_diff_is_capped_and_flagged(void **state)
{
        if (!have_bwrap())
                SKIP_BECAUSE("bubblewrap or git is not installed");
        nx_git_result r;
        err_t err = ERR_INIT;
        assert_int_equal(nx_git_diff(NULL, fac, 16, 30000, &r, &err), 0);
        assert_int_equal(r.out_len, 16);
        assert_true(r.out_truncated);
        nx_git_result_free(&r);
}

static void test_no_git_dir_means_no_diff(void **state)
{
        nx_git_result r;
        err_t err = ERR_INIT;
        assert_int_equal(nx_git_diff(NULL, root, 1 << 20, 30000, &r, &err), 0);
        assert_int_equal(r.out_len, 0);
        assert_null(r.out);
}

static void test_symlinked_git_dir_is_not_followed(void **state)
{
        char p[512], script[1024];
        str_printf(p, sizeof(p), "%s/linked", root);
        str_printf(script, sizeof(script), "mkdir -p '%s' && ln -s '%s/.git' '%s/.git'", p, fac, p);
        assert_int_equal(sh(script), 0);
        nx_git_result r;
        err_t err = ERR_INIT;
        assert_int_equal(nx_git_diff(NULL, p, 1 << 20, 30000, &r, &err), 0);
        assert_int_equal(r.out_len, 0);
}

static void test_missing_bwrap_fails_closed(void **state)
{
        nx_git_result r;
        err_t err = ERR_INIT;
        assert_int_equal(nx_git_diff("/nonexistent/bwrap", fac, 1 << 20, 30000, &r, &err), -1);
        assert_non_null(strstr(err.msg, "never run unjailed"));
        assert_int_equal(nx_git_clone("/nonexistent/bwrap", fac, "https://example.com/x.git",
                                      1000, &r, &err), -1);
}

/* spec nexus §12 #241 (clone path; end-to-end in test_nexus_e2e.py) */
static void test_clone_from_unreachable_host_fails_cleanly(void **state)
{
        if (!have_bwrap())
                SKIP_BECAUSE("bubblewrap or git is not installed");
        char p[512], script[600];
        str_printf(p, sizeof(p), "%s/empty", root);
        str_printf(script, sizeof(script), "mkdir -p '%s'", p);
        assert_int_equal(sh(script), 0);
        nx_git_result r;
        err_t err = ERR_INIT;
        /* port 9 on loopback: nothing listens, the clone fails fast */
        assert_int_equal(nx_git_clone(NULL, p, "http://127.0.0.1:9/repo.git", 20000, &r, &err), 0);
        assert_int_not_equal(r.exit_code, 0);
        assert_true(strlen(r.log) > 0);
        assert_false(any_marker());
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_diff_of_hostile_repo_runs_nothing_on_host),
                cmocka_unit_test(test_diff_is_capped_and_flagged),
                cmocka_unit_test(test_no_git_dir_means_no_diff),
                cmocka_unit_test(test_symlinked_git_dir_is_not_followed),
                cmocka_unit_test(test_missing_bwrap_fails_closed),
                cmocka_unit_test(test_clone_from_unreachable_host_fails_cleanly),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
