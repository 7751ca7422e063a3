/* tests/unit/test_nx_envinject.c — directive environment (spec nexus §5.6), shell quoting,
 * cwd resolution (§6.1 table, §6.2 step 2), repo URL acceptance and redaction (§5.4). */
#include "testutil.h"
#include "agent/envinject.h"
#include "core/cleanup.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

#define assert_contains(hay, needle) do { \
        if (!strstr((hay), (needle))) \
                fail_msg("\"%s\" does not contain \"%s\"", (hay), (needle)); \
} while (0)

static const nx_env_vars sample_vars = {
        .directive_id = "dir-1",
        .facility_id = "fac-1",
        .territory_id = "terr-1",
        .sandbox_profile = "host",
        .workspace = "/workspace",
};

/* A const table of "K=V" strings as the char *const * an envp parameter takes. */
#define ENVP(a) ((char *const *)(void *)(a))

static size_t env_count(char *const *envp)
{
        size_t n = 0;
        while (envp[n])
                n++;
        return n;
}

/* ---- environment ---------------------------------------------------------------------------- */

/* spec nexus §12 #60 */
static void test_standard_vars_match_spec_table(void **state)
{
        (void)state;
        err_t err = ERR_INIT;
        char **e = nx_env_standard(&sample_vars, &err);
        assert_non_null(e);
        assert_int_equal(env_count(e), 13);
        assert_string_equal(e[0], "NO_COLOR=1");
        assert_string_equal(nx_env_get(e, "TERM"), "dumb");
        assert_string_equal(nx_env_get(e, "LANG"), nx_env_lang());
        assert_string_equal(nx_env_get(e, "LC_ALL"), nx_env_lang());
        assert_string_equal(nx_env_get(e, "PAGER"), "cat");
        assert_string_equal(nx_env_get(e, "GIT_PAGER"), "cat");
        assert_string_equal(nx_env_get(e, "CYBROS_NEXUS"), "1");
        assert_string_equal(nx_env_get(e, "CYBROS_DIRECTIVE_ID"), "dir-1");
        assert_string_equal(nx_env_get(e, "CYBROS_FACILITY_ID"), "fac-1");
        assert_string_equal(nx_env_get(e, "CYBROS_TERRITORY_ID"), "terr-1");
        assert_string_equal(nx_env_get(e, "CYBROS_SANDBOX_PROFILE"), "host");
        assert_string_equal(nx_env_get(e, "CYBROS_WORKSPACE"), "/workspace");
        assert_string_equal(e[12], "CI=true");
        nx_env_free(e);
}

static void test_standard_vars_empty_inputs_are_empty_strings(void **state)
{
        (void)state;
        err_t err = ERR_INIT;
        nx_env_vars v = { .directive_id = "d" };
        char **e = nx_env_standard(&v, &err);
        assert_non_null(e);
        assert_string_equal(nx_env_get(e, "CYBROS_TERRITORY_ID"), "");
        assert_string_equal(nx_env_get(e, "CYBROS_SANDBOX_PROFILE"), "");
        assert_string_equal(nx_env_get(e, "CYBROS_WORKSPACE"), "");
        nx_env_free(e);
}

static void test_lang_is_c_utf8_on_linux(void **state)
{
        (void)state;
#ifdef __APPLE__
        assert_string_equal(nx_env_lang(), "en_US.UTF-8");
#else
        assert_string_equal(nx_env_lang(), "C.UTF-8");
#endif
}

/* spec nexus §12 #109 */
static void test_host_env_inherits_only_listed_vars(void **state)
{
        (void)state;
        const char *parent[] = { "PATH=/usr/bin:/bin", "HOME=/home/n", "AWS_SECRET_ACCESS_KEY=hunter2",
                           "USER=n", "LOGNAME=n", "SHELL=/bin/bash", "TMPDIR=/var/tmp",
                           "NEXUS_TOKEN=abc", "LD_PRELOAD=/evil.so", "SSH_AUTH_SOCK=/s",
                           "HTTP_PROXY=http://corp:3128", NULL };
        err_t err = ERR_INIT;
        char **e = nx_env(&sample_vars, ENVP(parent), &err);
        assert_non_null(e);
        assert_string_equal(nx_env_get(e, "PATH"), "/usr/bin:/bin");
        assert_string_equal(nx_env_get(e, "HOME"), "/home/n");
        assert_string_equal(nx_env_get(e, "USER"), "n");
        assert_string_equal(nx_env_get(e, "LOGNAME"), "n");
        assert_string_equal(nx_env_get(e, "SHELL"), "/bin/bash");
        assert_string_equal(nx_env_get(e, "TMPDIR"), "/var/tmp");
        assert_null(nx_env_get(e, "AWS_SECRET_ACCESS_KEY"));
        assert_null(nx_env_get(e, "NEXUS_TOKEN"));
        assert_null(nx_env_get(e, "LD_PRELOAD"));
        assert_null(nx_env_get(e, "SSH_AUTH_SOCK"));
        assert_null(nx_env_get(e, "HTTP_PROXY"));
        assert_int_equal(env_count(e), 6 + 13);
        nx_env_free(e);
}

/* spec nexus §12 #109, #114 (environment built for the command) */
static void test_host_env_from_real_environ_drops_secret(void **state)
{
        (void)state;
        err_t err = ERR_INIT;
        char **e;
        assert_int_equal(setenv("NX_TEST_SECRET_TOKEN", "s3cr3t", 1), 0);
        assert_int_equal(setenv("PATH", "/opt/x:/usr/bin", 1), 0);
        e = nx_env(&sample_vars, environ, &err);
        assert_non_null(e);
        assert_null(nx_env_get(e, "NX_TEST_SECRET_TOKEN"));
        for (char **p = e; *p; p++)
                if (strstr(*p, "s3cr3t"))
                        fail_msg("secret leaked as %s", *p);
        assert_string_equal(nx_env_get(e, "PATH"), "/opt/x:/usr/bin");
        nx_env_free(e);
        unsetenv("NX_TEST_SECRET_TOKEN");
}

static void test_host_env_standard_lang_overrides_inherited(void **state)
{
        (void)state;
        const char *parent[] = { "LANG=de_DE.UTF-8", "LC_ALL=de_DE.UTF-8", "TERM=xterm-256color",
                           "CI=false", NULL };
        err_t err = ERR_INIT;
        char **e = nx_env(&sample_vars, ENVP(parent), &err);
        size_t lang = 0;
        assert_non_null(e);
        assert_string_equal(nx_env_get(e, "LANG"), nx_env_lang());
        assert_string_equal(nx_env_get(e, "LC_ALL"), nx_env_lang());
        assert_string_equal(nx_env_get(e, "TERM"), "dumb");
        assert_string_equal(nx_env_get(e, "CI"), "true");
        for (char **p = e; *p; p++)
                if (strncmp(*p, "LANG=", 5) == 0)
                        lang++;
        assert_int_equal(lang, 1);
        nx_env_free(e);
}

static void test_host_env_first_occurrence_wins(void **state)
{
        (void)state;
        const char *parent[] = { "HOME=/first", "HOME=/second", NULL };
        err_t err = ERR_INIT;
        char **e = nx_env(&sample_vars, ENVP(parent), &err);
        assert_non_null(e);
        assert_string_equal(nx_env_get(e, "HOME"), "/first");
        nx_env_free(e);
}

static void test_host_env_prefix_name_not_confused(void **state)
{
        (void)state;
        const char *parent[] = { "PATHX=/nope", "HOMEDIR=/nope", NULL };
        err_t err = ERR_INIT;
        char **e = nx_env(&sample_vars, ENVP(parent), &err);
        assert_non_null(e);
        assert_null(nx_env_get(e, "PATH"));
        assert_null(nx_env_get(e, "HOME"));
        assert_null(nx_env_get(e, "PATHX"));
        assert_int_equal(env_count(e), 13);
        nx_env_free(e);
}

static void test_darwin_env_also_inherits_ssh_auth_sock(void **state)
{
        (void)state;
        const char *parent[] = { "SSH_AUTH_SOCK=/tmp/agent.sock", NULL };
        nx_env_vars v = sample_vars;
        err_t err = ERR_INIT;
        char **e;
        v.inherit_ssh_auth_sock = true;
        e = nx_env(&v, ENVP(parent), &err);
        assert_non_null(e);
        assert_string_equal(nx_env_get(e, "SSH_AUTH_SOCK"), "/tmp/agent.sock");
        nx_env_free(e);
}

static void test_host_env_null_parent_gives_standard_only(void **state)
{
        (void)state;
        err_t err = ERR_INIT;
        char **e = nx_env(&sample_vars, NULL, &err);
        assert_non_null(e);
        assert_int_equal(env_count(e), 13);
        nx_env_free(e);
}

static void test_oversized_value_rejected(void **state)
{
        (void)state;
        err_t err = ERR_INIT;
        nx_env_vars v = sample_vars;
        char *big = malloc(NX_ENV_VALUE_MAX + 2);
        assert_non_null(big);
        memset(big, 'a', NX_ENV_VALUE_MAX + 1);
        big[NX_ENV_VALUE_MAX + 1] = '\0';
        v.workspace = big;
        assert_null(nx_env_standard(&v, &err));
        assert_contains(err.msg, "CYBROS_WORKSPACE");
        free(big);
}

static void test_env_key_validation(void **state)
{
        (void)state;
        static const char *const good[] = { "A", "_", "PATH", "a_b9", "_X1" };
        static const char *const bad[] = { "", "9A", "A-B", "A B", "A=B", "É", "$X", "a.b" };
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
                if (!nx_env_key_valid(good[i]))
                        fail_msg("\"%s\" refused", good[i]);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                if (nx_env_key_valid(bad[i]))
                        fail_msg("\"%s\" accepted", bad[i]);
        assert_false(nx_env_key_valid(NULL));
}

/* ---- shell quoting --------------------------------------------------------------------------- */

static void test_shell_quote_table(void **state)
{
        (void)state;
        static const struct { const char *in, *out; } t[] = {
                { "", "''" },
                { "abc", "'abc'" },
                { "it's", "'it'\"'\"'s'" },
                { "'", "''\"'\"''" },
                { "$(rm -rf /) `x` \"y\" \\n", "'$(rm -rf /) `x` \"y\" \\n'" },
                { "a\nb", "'a\nb'" },
        };
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                _cleanup_free_ char *q = nx_shell_quote(t[i].in);
                assert_non_null(q);
                assert_string_equal(q, t[i].out);
        }
}

static void test_shell_export_line(void **state)
{
        (void)state;
        err_t err = ERR_INIT;
        _cleanup_free_ char *l = nx_shell_export("CYBROS_FACILITY_ID", "a'b", &err);
        assert_non_null(l);
        assert_string_equal(l, "export CYBROS_FACILITY_ID='a'\"'\"'b'\n");
}

static void test_shell_export_invalid_key_rejected(void **state)
{
        (void)state;
        err_t err = ERR_INIT;
        assert_null(nx_shell_export("X;rm -rf /", "v", &err));
        assert_contains(err.msg, "invalid env key: \"X;rm -rf /\"");
}

/* ---- cwd (spec §6.1 table) --------------------------------------------------------------------- */

static void expect_host_cwd(const char *cwd, const char *want)
{
        char out[256];
        err_t err = ERR_INIT;
        if (nx_resolve_host_cwd("/srv/wd/fac-1", cwd, out, sizeof(out), &err) < 0)
                fail_msg("cwd \"%s\": %s", cwd ? cwd : "(null)", err.msg);
        assert_string_equal(out, want);
}

static void expect_host_cwd_error(const char *cwd, const char *text)
{
        char out[256];
        err_t err = ERR_INIT;
        if (nx_resolve_host_cwd("/srv/wd/fac-1", cwd, out, sizeof(out), &err) == 0)
                fail_msg("cwd \"%s\" accepted as %s", cwd, out);
        assert_string_equal(err.msg, text);
}

/* spec nexus §12 #94 */
static void test_host_cwd_empty_dot_workspace_are_root(void **state)
{
        (void)state;
        expect_host_cwd("", "/srv/wd/fac-1");
        expect_host_cwd(".", "/srv/wd/fac-1");
        expect_host_cwd("/workspace", "/srv/wd/fac-1");
        expect_host_cwd(NULL, "/srv/wd/fac-1");
}

/* spec nexus §12 #95 */
static void test_host_cwd_workspace_sub(void **state)
{
        (void)state;
        expect_host_cwd("/workspace/src/app", "/srv/wd/fac-1/src/app");
        expect_host_cwd("/workspace/", "/srv/wd/fac-1");
        expect_host_cwd("/workspace//x/./y/", "/srv/wd/fac-1/x/y");
}

/* spec nexus §12 #95, #97 */
static void test_host_cwd_relative(void **state)
{
        (void)state;
        expect_host_cwd("a/b", "/srv/wd/fac-1/a/b");
        expect_host_cwd("a/../b", "/srv/wd/fac-1/b");
}

/* spec nexus §12 #96 */
static void test_host_cwd_other_absolute_rejected(void **state)
{
        (void)state;
        expect_host_cwd_error("/etc", "cwd must be under /workspace");
        expect_host_cwd_error("/workspacex", "cwd must be under /workspace");
        expect_host_cwd_error("/", "cwd must be under /workspace");
}

/* spec nexus §12 #96, #97 */
static void test_host_cwd_escapes_rejected(void **state)
{
        (void)state;
        expect_host_cwd_error("../x", "cwd escapes workspace");
        expect_host_cwd_error("/workspace/../x", "cwd escapes workspace");
        expect_host_cwd_error("sub/../../x", "cwd escapes workspace");
        expect_host_cwd_error("..", "cwd escapes workspace");
        expect_host_cwd_error("/workspace/a/../..", "cwd escapes workspace");
}

/* spec nexus §12 #96 (empty facility path) */
static void test_host_cwd_empty_facility_rejected(void **state)
{
        (void)state;
        char out[64];
        err_t err = ERR_INIT;
        assert_int_equal(nx_resolve_host_cwd("", "x", out, sizeof(out), &err), -1);
        assert_string_equal(err.msg, "work dir is required");
}

static void test_host_cwd_output_too_small_rejected(void **state)
{
        (void)state;
        char out[8];
        err_t err = ERR_INIT;
        assert_int_equal(nx_resolve_host_cwd("/srv/wd/fac-1", "a", out, sizeof(out), &err), -1);
}

/* ---- cwd (spec §6.2 step 2) -------------------------------------------------------------------- */

static void test_sandbox_cwd_table(void **state)
{
        (void)state;
        static const struct { const char *in, *out; } t[] = {
                { "", "/workspace" }, { ".", "/workspace" }, { "/workspace", "/workspace" },
                { "a/b", "/workspace/a/b" }, { "/workspace/x/../y", "/workspace/y" },
                { "./a//b/", "/workspace/a/b" }, { "a/..", "/workspace" },
        };
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                char out[128];
                err_t err = ERR_INIT;
                if (nx_resolve_sandbox_cwd(t[i].in, out, sizeof(out), &err) < 0)
                        fail_msg("\"%s\": %s", t[i].in, err.msg);
                assert_string_equal(out, t[i].out);
        }
}

static void test_sandbox_cwd_escapes_rejected(void **state)
{
        (void)state;
        static const char *const t[] = { "..", "../x", "/etc", "/workspacex", "/workspace/..",
                                         "a/../../b", "/" };
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                char out[128], want[128];
                err_t err = ERR_INIT;
                if (nx_resolve_sandbox_cwd(t[i], out, sizeof(out), &err) == 0)
                        fail_msg("\"%s\" accepted as %s", t[i], out);
                assert_int_equal(snprintf(want, sizeof(want), "cwd \"%s\" escapes workspace",
                                          t[i]) > 0, 1);
                assert_string_equal(err.msg, want);
        }
}

static void test_path_clean_table(void **state)
{
        (void)state;
        static const struct { const char *in, *out; } t[] = {
                { "", "." }, { "/", "/" }, { "a/b/", "a/b" }, { "//a//b", "/a/b" },
                { "/../a", "/a" }, { "../../a", "../../a" }, { "a/../..", ".." },
                { "./", "." }, { "a/./b/.", "a/b" }, { "/a/b/../../..", "/" },
        };
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                char out[64];
                assert_int_equal(nx_path_clean(t[i].in, out, sizeof(out)), 0);
                if (strcmp(out, t[i].out) != 0)
                        fail_msg("clean(\"%s\") = \"%s\", want \"%s\"", t[i].in, out, t[i].out);
        }
}

/* ---- repo URLs (spec §5.4) --------------------------------------------------------------------- */

/* spec nexus §12 #100 */
static void test_repo_url_accepted_table(void **state)
{
        (void)state;
        static const char *const t[] = {
                "https://github.com/foo/bar.git",
                "HTTPS://github.com/foo/bar",
                "http://git.example:8080/x.git",
                "ssh://git@github.com/foo/bar.git",
                "git://git.kernel.org/pub/scm/git/git.git",
                "git@github.com:foo/bar.git",
                "deploy@localhost:repo",
                "  https://github.com/foo/bar.git\n",
                "https://user:p%40ss@h.example/x",
                "https://[::1]:8443/x",
        };
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                err_t err = ERR_INIT;
                if (nx_repo_url_check(t[i], &err) < 0)
                        fail_msg("\"%s\" refused: %s", t[i], err.msg);
        }
}

/* spec nexus §12 #101 (REF differs: we also refuse every "<transport>::", control bytes,
 * bare paths, bad %-escapes and ports) */
static void test_repo_url_rejected_table(void **state)
{
        (void)state;
        static const char *const t[] = {
                "",
                "   ",
                "ext::sh -c touch% /tmp/pwned",
                "EXT::ssh",
                "file:///etc",
                "FILE:///tmp/repo",
                "ftp://example.com/x",
                "-uhttps://x.example/y",
                "--upload-pack=touch /tmp/x",
                "https://github.com/foo bar",
                "https://github.com/foo\tbar",
                "git@github.com:foo\r\nbar",
                "/srv/repos/x.git",
                "./local/repo",
                "host.example:path",
                "@github.com:foo/bar",
                "git@github:foo/bar",
                "git@github.com:",
                "git@:foo",
                "git@-oProxyCommand=x.com:foo",
                "git@github.com:-foo",
                "git@a/b.com:foo",
                "git@a\\b.com:foo",
                "a/b@github.com:foo",
                "x::y@github.com:foo",
                "fd::17",
                "git-remote-x+y::a@b.example:c",
                "https:foo://bar",
                "1http://x.example/",
                "https://h.example:port/x",
                "https://h.example/%zz",
                "https://h.example/\x01",
                "github.com/foo/bar",
        };
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                err_t err = ERR_INIT;
                if (nx_repo_url_check(t[i], &err) == 0)
                        fail_msg("\"%s\" accepted", t[i]);
                assert_string_equal(err.msg, "repo_url uses disallowed scheme (only https, http, "
                                             "ssh, git, or scp-like ssh are allowed)");
        }
}

static void test_repo_url_too_long_rejected(void **state)
{
        (void)state;
        err_t err = ERR_INIT;
        size_t n = NX_REPO_URL_MAX + 16;
        _cleanup_free_ char *u = malloc(n + 1);
        assert_non_null(u);
        memcpy(u, "https://h.example/", 18);
        memset(u + 18, 'a', n - 18);
        u[n] = '\0';
        assert_int_equal(nx_repo_url_check(u, &err), -1);
}

static void test_repo_url_normalize_trims(void **state)
{
        (void)state;
        char out[128];
        err_t err = ERR_INIT;
        assert_int_equal(nx_repo_url_normalize(" \tgit@github.com:a/b.git \n", out, sizeof(out),
                                               &err), 0);
        assert_string_equal(out, "git@github.com:a/b.git");
        assert_int_equal(nx_repo_url_normalize("file:///x", out, sizeof(out), &err), -1);
}

/* spec nexus §12 #103 */
static void test_repo_url_redaction_examples(void **state)
{
        (void)state;
        static const struct { const char *in, *out; } t[] = {
                /* the spec's examples */
                { "https://user:pass@h/x", "https://h/x" },
                { "git@github.com:foo/bar.git", "REDACTED@github.com:foo/bar.git" },
                /* the other branches */
                { "https://github.com/foo/bar", "https://github.com/foo/bar" },
                { "ssh://git@github.com/foo", "ssh://github.com/foo" },
                { "https://tok@h.example:8443/x?y=@z", "https://h.example:8443/x?y=@z" },
                { "https://a@b@h/x", "https://h/x" },
                { "@nouser", "@nouser" },
                { "plain/path", "plain/path" },
                { "tok:secret@host:path", "REDACTED@host:path" },
        };
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                char out[128];
                assert_int_equal(nx_repo_url_redact(t[i].in, out, sizeof(out)), 0);
                if (strcmp(out, t[i].out) != 0)
                        fail_msg("redact(\"%s\") = \"%s\", want \"%s\"", t[i].in, out, t[i].out);
        }
}

static void test_repo_url_redaction_even_when_unparsable(void **state)
{
        (void)state;
        char out[128];
        /* the reference would keep this as is (url.Parse fails on the port): it leaks */
        assert_int_equal(nx_repo_url_redact("https://u:pw@h:badport/x", out, sizeof(out)), 0);
        assert_null(strstr(out, "pw"));
}

static void test_repo_url_redaction_truncation_leaks_nothing(void **state)
{
        (void)state;
        char out[12];
        assert_int_equal(nx_repo_url_redact("https://github.com/a/very/long/path", out,
                                            sizeof(out)), -1);
        assert_string_equal(out, "REDACTED");
}

/* ---- spec nexus §12 acceptance vectors, verbatim ------------------------------------ */

/* spec nexus §12 #95 */
static void test_vec_host_cwd_sub_dir_forms(void **state)
{
        (void)state;
        expect_host_cwd("/workspace/sub/dir", "/srv/wd/fac-1/sub/dir");
        expect_host_cwd("sub/dir", "/srv/wd/fac-1/sub/dir");
}

/* spec nexus §12 #96 */
static void test_vec_host_cwd_escapes_rejected(void **state)
{
        (void)state;
        expect_host_cwd_error("/etc", "cwd must be under /workspace");
        expect_host_cwd_error("../escape", "cwd escapes workspace");
        expect_host_cwd_error("/workspace/../escape", "cwd escapes workspace");
}

/* spec nexus §12 #97 (our safe join is nx_resolve_host_cwd on a facility path) */
static void test_vec_safe_join(void **state)
{
        (void)state;
        expect_host_cwd("sub", "/srv/wd/fac-1/sub");
        expect_host_cwd("a/b/c", "/srv/wd/fac-1/a/b/c");
        expect_host_cwd(".", "/srv/wd/fac-1");
        expect_host_cwd_error("..", "cwd escapes workspace");
        expect_host_cwd_error("../../etc", "cwd escapes workspace");
        expect_host_cwd_error("sub/../../etc", "cwd escapes workspace");
}

/* spec nexus §12 #100 */
static void test_vec_repo_url_accepted(void **state)
{
        (void)state;
        static const char *const t[] = {
                "https://github.com/foo/bar.git", "http://github.com/foo/bar",
                "ssh://git@github.com/foo/bar.git", "git://example.com/repo.git",
                "git@github.com:foo/bar.git", "user@host.com:repo.git", "user@localhost:repo.git",
        };
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                err_t err = ERR_INIT;
                if (nx_repo_url_check(t[i], &err) < 0)
                        fail_msg("\"%s\" refused: %s", t[i], err.msg);
        }
}

/* spec nexus §12 #101 */
static void test_vec_repo_url_rejected(void **state)
{
        (void)state;
        static const char *const t[] = {
                "", "ext::sh -c 'evil'", "-malicious", "file:///etc/passwd",
                "ftp://example.com/repo.git", "  \t", "nohost:path", "@host.com:path",
                "user@:path", "user@host:", "user@-host.com:path",
        };
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                err_t err = ERR_INIT;
                if (nx_repo_url_check(t[i], &err) == 0)
                        fail_msg("\"%s\" accepted", t[i]);
                assert_non_null(strstr(err.msg, "repo_url uses disallowed scheme"));
        }
}

/* spec nexus §12 #103 */
static void test_vec_repo_url_redaction(void **state)
{
        (void)state;
        static const struct { const char *in, *out; } t[] = {
                { "https://github.com/foo/bar.git", "https://github.com/foo/bar.git" },
                { "https://user:pass@github.com/foo/bar.git", "https://github.com/foo/bar.git" },
                { "git@github.com:foo/bar.git", "REDACTED@github.com:foo/bar.git" },
                { "plain-text", "plain-text" },
        };
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                char out[128];
                assert_int_equal(nx_repo_url_redact(t[i].in, out, sizeof(out)), 0);
                assert_string_equal(out, t[i].out);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_standard_vars_match_spec_table),
                cmocka_unit_test(test_standard_vars_empty_inputs_are_empty_strings),
                cmocka_unit_test(test_lang_is_c_utf8_on_linux),
                cmocka_unit_test(test_host_env_inherits_only_listed_vars),
                cmocka_unit_test(test_host_env_from_real_environ_drops_secret),
                cmocka_unit_test(test_host_env_standard_lang_overrides_inherited),
                cmocka_unit_test(test_host_env_first_occurrence_wins),
                cmocka_unit_test(test_host_env_prefix_name_not_confused),
                cmocka_unit_test(test_darwin_env_also_inherits_ssh_auth_sock),
                cmocka_unit_test(test_host_env_null_parent_gives_standard_only),
                cmocka_unit_test(test_oversized_value_rejected),
                cmocka_unit_test(test_env_key_validation),
                cmocka_unit_test(test_shell_quote_table),
                cmocka_unit_test(test_shell_export_line),
                cmocka_unit_test(test_shell_export_invalid_key_rejected),
                cmocka_unit_test(test_host_cwd_empty_dot_workspace_are_root),
                cmocka_unit_test(test_host_cwd_workspace_sub),
                cmocka_unit_test(test_host_cwd_relative),
                cmocka_unit_test(test_host_cwd_other_absolute_rejected),
                cmocka_unit_test(test_host_cwd_escapes_rejected),
                cmocka_unit_test(test_host_cwd_empty_facility_rejected),
                cmocka_unit_test(test_host_cwd_output_too_small_rejected),
                cmocka_unit_test(test_sandbox_cwd_table),
                cmocka_unit_test(test_sandbox_cwd_escapes_rejected),
                cmocka_unit_test(test_path_clean_table),
                cmocka_unit_test(test_repo_url_accepted_table),
                cmocka_unit_test(test_repo_url_rejected_table),
                cmocka_unit_test(test_repo_url_too_long_rejected),
                cmocka_unit_test(test_repo_url_normalize_trims),
                cmocka_unit_test(test_repo_url_redaction_examples),
                cmocka_unit_test(test_repo_url_redaction_even_when_unparsable),
                cmocka_unit_test(test_repo_url_redaction_truncation_leaks_nothing),
                cmocka_unit_test(test_vec_host_cwd_sub_dir_forms),
                cmocka_unit_test(test_vec_host_cwd_escapes_rejected),
                cmocka_unit_test(test_vec_safe_join),
                cmocka_unit_test(test_vec_repo_url_accepted),
                cmocka_unit_test(test_vec_repo_url_rejected),
                cmocka_unit_test(test_vec_repo_url_redaction),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
