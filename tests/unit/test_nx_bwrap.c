/* tests/unit/test_nx_bwrap.c — sandbox/bwrap: the argv builder against spec nexus §12 vectors
 * #118–#125 (and where we differ, D13), the generated /etc, the sandbox environment, and real
 * runs of the whole stack (cgroup + bwrap + seccomp + nexus-sandbox/Landlock + a listener in
 * the sandbox netns) for vectors #139–#142. The nexus-sandbox binary is the one built next to
 * this test (nx_bwrap_find_helper's /proc/self/exe rule). */
#include "testutil.h"
#include "sandbox/bwrap.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/envinject.h"
#include "agent/gitsafe.h"
#include "core/cleanup.h"
#include "core/json.h"
#include "core/str.h"
#include "sandbox/netns.h"

static char facility[128];
static char test_base[64];
static nx_cgroup_sys real_sys;
static char bwrap_path[PATH_MAX], helper_path[PATH_MAX];
static bool have_stack;
static unsigned id_seq;
static char *dir_env[] = { (char *)(uintptr_t)"CYBROS_NEXUS=1",
                           (char *)(uintptr_t)"HTTP_PROXY=http://evil:1", NULL };

static const char *const fake_binds[] = { "/etc/ssl/certs", NULL };

static nx_bwrap_layout base_layout(void)
{
        return (nx_bwrap_layout){ .etc_dir = "/tmp/gen/etc", .lib64_symlink = true,
                                  .etc_binds = fake_binds, .seccomp_fd = 3, .info_fd = 4,
                                  .block_fd = 5 };
}

static nx_bwrap_run base_run(const char *command)
{
        nx_bwrap_run r;
        memset(&r, 0, sizeof(r));
        r.directive_id = "d1";
        r.command = command;
        r.facility_path = "/srv/fac";
        r.cwd = "";
        r.envp = dir_env;
        r.bwrap_path = "/usr/bin/bwrap";
        r.helper_path = "/opt/nexus-sandbox";
        return r;
}

static size_t argc_of(char **v)
{
        size_t n = 0;
        while (v[n])
                n++;
        return n;
}

/* Index of the first occurrence of the word sequence (a, b?, c?) or -1. */
static long find_seq(char **v, const char *a, const char *b, const char *c)
{
        for (size_t i = 0; v[i]; i++) {
                if (strcmp(v[i], a) != 0)
                        continue;
                if (b && (!v[i + 1] || strcmp(v[i + 1], b) != 0))
                        continue;
                if (b && c && (!v[i + 2] || strcmp(v[i + 2], c) != 0))
                        continue;
                return (long)i;
        }
        return -1;
}

/* Index of the "--" that ends bwrap's options. */
static long bwrap_end(char **v)
{
        return find_seq(v, "--", NX_BWRAP_HELPER_DEST, NULL);
}

static char **build_ok(const nx_bwrap_run *r, const nx_bwrap_layout *l)
{
        err_t err = ERR_INIT;
        char **v = nx_bwrap_build_argv(r, l, &err);
        if (!v)
                fail_msg("build: %s", err.msg);
        return v;
}

static void build_fails(const nx_bwrap_run *r, const nx_bwrap_layout *l, const char *want)
{
        err_t err = ERR_INIT;
        char **v = nx_bwrap_build_argv(r, l, &err);
        assert_null(v);
        assert_non_null(strstr(err.msg, want));
}

/* ---------------------------------------------------------------- builder ----------- */

/* spec nexus §12 #118: host-directory mode, order-independent content. We differ: no
 * `--ro-bind /etc /etc` (generated /etc), no proxy socket or wrapper script binds (D13). */
static void test_host_dir_mode_contains_reference_elements(void **state)
{
        nx_bwrap_run r = base_run("echo hi");
        nx_bwrap_layout l = base_layout();
        char **v = build_ok(&r, &l);
        long end = bwrap_end(v);
        assert_true(end > 0);
        assert_string_equal(v[0], "/usr/bin/bwrap");
        assert_true(find_seq(v, "--tmpfs", "/", NULL) >= 0);
        assert_true(find_seq(v, "--ro-bind", "/usr", "/usr") >= 0);
        assert_true(find_seq(v, "--symlink", "usr/bin", "/bin") >= 0);
        assert_true(find_seq(v, "--symlink", "usr/sbin", "/sbin") >= 0);
        assert_true(find_seq(v, "--symlink", "usr/lib", "/lib") >= 0);
        assert_true(find_seq(v, "--proc", "/proc", NULL) >= 0);
        assert_true(find_seq(v, "--dev", "/dev", NULL) >= 0);
        assert_true(find_seq(v, "--tmpfs", "/tmp", NULL) >= 0);
        assert_true(find_seq(v, "--tmpfs", "/run", NULL) >= 0);
        assert_true(find_seq(v, "--bind", "/srv/fac", "/workspace") >= 0);
        assert_true(find_seq(v, "--new-session", NULL, NULL) >= 0);
        assert_true(find_seq(v, "--die-with-parent", NULL, NULL) >= 0);
        assert_true(find_seq(v, "--cap-drop", "ALL", NULL) >= 0);
        assert_true(find_seq(v, "--remount-ro", "/", NULL) >= 0);
        assert_true(find_seq(v, "--ro-bind", "/", "/") < 0);
        nx_bwrap_argv_free(v);
}

/* D13 over #118: the unshare set is --unshare-all (pid, net, ipc, uts, cgroup, user) plus
 * --disable-userns; never the host /etc. */
static void test_namespaces_userns_disabled_and_no_host_etc(void **state)
{
        nx_bwrap_run r = base_run("true");
        nx_bwrap_layout l = base_layout();
        char **v = build_ok(&r, &l);
        long end = bwrap_end(v);
        assert_true(find_seq(v, "--unshare-all", NULL, NULL) >= 0);
        assert_true(find_seq(v, "--unshare-user", NULL, NULL) >= 0);
        long du = find_seq(v, "--disable-userns", NULL, NULL);
        assert_true(du >= 0 && du < end);
        assert_true(find_seq(v, "--ro-bind", "/etc", "/etc") < 0);
        assert_true(find_seq(v, "--bind", "/etc", "/etc") < 0);
        assert_true(find_seq(v, "--ro-bind", "/tmp/gen/etc", "/etc") >= 0);
        assert_true(find_seq(v, "--ro-bind", "/etc/ssl/certs", "/etc/ssl/certs") >= 0);
        assert_true(find_seq(v, "--uid", "1000", NULL) >= 0);
        assert_true(find_seq(v, "--gid", "1000", NULL) >= 0);
        nx_bwrap_argv_free(v);
}

static void test_seccomp_info_and_block_fds_passed(void **state)
{
        nx_bwrap_run r = base_run("true");
        nx_bwrap_layout l = base_layout();
        l.seccomp_fd = 7;
        l.info_fd = 8;
        l.block_fd = 9;
        char **v = build_ok(&r, &l);
        long end = bwrap_end(v);
        long s = find_seq(v, "--seccomp", "7", NULL);
        assert_true(s > 0 && s < end);
        assert_true(find_seq(v, "--info-fd", "8", NULL) > 0);
        assert_true(find_seq(v, "--block-fd", "9", NULL) > 0);
        nx_bwrap_argv_free(v);
}

/* spec nexus §12 #119: rootfs mode binds the rootfs at / and adds no symlink (nor /etc). */
static void test_rootfs_mode_has_no_symlinks(void **state)
{
        nx_bwrap_run r = base_run("true");
        r.rootfs_path = "/var/lib/nexusd/rootfs";
        nx_bwrap_layout l = base_layout();
        l.etc_dir = NULL;
        char **v = build_ok(&r, &l);
        assert_true(find_seq(v, "--ro-bind", "/var/lib/nexusd/rootfs", "/") >= 0);
        assert_true(find_seq(v, "--symlink", NULL, NULL) < 0);
        assert_true(find_seq(v, "--tmpfs", "/", NULL) < 0);
        assert_true(find_seq(v, "--ro-bind", "/usr", "/usr") < 0);
        for (size_t i = 0; v[i]; i++)
                assert_false(strcmp(v[i], "/etc") == 0);
        nx_bwrap_argv_free(v);
}

/* spec nexus §12 #120: /lib64 symlink only when the host's /lib64 is a symlink. */
static void test_lib64_symlink_follows_host(void **state)
{
        nx_bwrap_run r = base_run("true");
        nx_bwrap_layout l = base_layout();
        char **v = build_ok(&r, &l);
        assert_true(find_seq(v, "--symlink", "usr/lib64", "/lib64") >= 0);
        nx_bwrap_argv_free(v);
        l.lib64_symlink = false;
        v = build_ok(&r, &l);
        assert_true(find_seq(v, "--symlink", "usr/lib64", "/lib64") < 0);
        for (size_t i = 0; v[i]; i++)
                assert_false(strcmp(v[i], "/lib64") == 0);
        nx_bwrap_argv_free(v);
}

/* spec nexus §12 #121: REF always has --chdir /workspace and cds in its wrapper; we have no
 * wrapper, so --chdir is the resolved cwd itself. */
static void test_chdir_is_the_resolved_cwd(void **state)
{
        nx_bwrap_layout l = base_layout();
        const char *cases[][2] = { { "subdir", "/workspace/subdir" },
                                   { "/workspace/deep/path", "/workspace/deep/path" },
                                   { "", "/workspace" },
                                   { ".", "/workspace" },
                                   { "a/./b/../c", "/workspace/a/c" } };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                nx_bwrap_run r = base_run("true");
                r.cwd = cases[i][0];
                char **v = build_ok(&r, &l);
                long c = find_seq(v, "--chdir", NULL, NULL);
                assert_true(c > 0);
                assert_string_equal(v[c + 1], cases[i][1]);
                nx_bwrap_argv_free(v);
        }
}

/* spec nexus §12 #122: missing bwrap path or facility → error (REF's proxy-socket and
 * wrapper-path errors have no counterpart; the helper and the command do). */
static void test_missing_inputs_refused(void **state)
{
        nx_bwrap_layout l = base_layout();
        nx_bwrap_run r = base_run("true");
        r.bwrap_path = "";
        build_fails(&r, &l, "bwrap path is required");
        r = base_run("true");
        r.facility_path = NULL;
        build_fails(&r, &l, "facility path is required");
        r = base_run("true");
        r.facility_path = "relative/fac";
        build_fails(&r, &l, "must be absolute");
        r = base_run("true");
        r.helper_path = NULL;
        build_fails(&r, &l, "nexus-sandbox path is required");
        r = base_run("");
        build_fails(&r, &l, "empty command");
        r = base_run("true");
        l.etc_dir = NULL;
        build_fails(&r, &l, "generated /etc directory is required");
}

/* spec nexus §12 #123: --remount-ro / after the workspace bind (and after every bind). */
static void test_remount_ro_after_every_bind(void **state)
{
        nx_bwrap_run r = base_run("true");
        nx_bwrap_layout l = base_layout();
        char **v = build_ok(&r, &l);
        long rr = find_seq(v, "--remount-ro", "/", NULL);
        long ws = find_seq(v, "--bind", "/srv/fac", "/workspace");
        assert_true(ws >= 0 && rr > ws);
        for (long i = rr; v[i] && i < bwrap_end(v); i++) {
                assert_false(strcmp(v[i], "--bind") == 0);
                assert_false(strcmp(v[i], "--ro-bind") == 0);
                assert_false(strcmp(v[i], "--tmpfs") == 0);
        }
        nx_bwrap_argv_free(v);
}

/* spec nexus §12 #124: escaping or foreign cwds rejected, workspace ones accepted. */
static void test_cwd_escape_rules(void **state)
{
        const char *bad[] = { "../../etc", "../../../", "subdir/../../..", "/etc/passwd", "/tmp" };
        const char *good[] = { "subdir", "deep/nested/path", "/workspace/subdir", "/workspace", "" };
        char out[PATH_MAX];
        for (size_t i = 0; i < 5; i++) {
                err_t err = ERR_INIT;
                assert_int_equal(nx_bwrap_resolve_cwd(bad[i], out, sizeof(out), &err), -1);
                assert_non_null(strstr(err.msg, "escapes workspace"));
                nx_bwrap_run r = base_run("true");
                r.cwd = bad[i];
                nx_bwrap_layout l = base_layout();
                build_fails(&r, &l, "escapes workspace");
        }
        for (size_t i = 0; i < 5; i++) {
                err_t err = ERR_INIT;
                assert_int_equal(nx_bwrap_resolve_cwd(good[i], out, sizeof(out), &err), 0);
                assert_true(str_has_prefix(out, "/workspace"));
        }
}

/* spec nexus §12 #125: the constants. */
static void test_constants(void **state)
{
        assert_string_equal(NX_BWRAP_WORKSPACE, "/workspace");
        assert_int_equal(NX_EGRESS_PORT, 9080);
        assert_string_equal(NX_EGRESS_HOST, "127.0.0.1");
        assert_int_equal(NX_SANDBOX_DEFAULT_PIDS, 512);
        assert_true(NX_SANDBOX_DEFAULT_UID != 0);
}

static void test_command_runs_through_nexus_sandbox(void **state)
{
        nx_bwrap_run r = base_run("echo 'a b'");
        r.landlock_min_abi = 3;
        nx_bwrap_layout l = base_layout();
        char **v = build_ok(&r, &l);
        size_t n = argc_of(v);
        long end = bwrap_end(v);
        assert_true(find_seq(v, "--ro-bind", "/opt/nexus-sandbox", NX_BWRAP_HELPER_DEST) > 0);
        assert_string_equal(v[end + 1], NX_BWRAP_HELPER_DEST);
        assert_true(find_seq(v, "--connect-port", "9080", NULL) > end);
        assert_true(find_seq(v, "--min-abi", "3", NULL) > end);
        assert_true(find_seq(v, "--rw", "/workspace", NULL) > end);
        assert_true(find_seq(v, "--ro", "/", NULL) > end);
        assert_string_equal(v[n - 4], "--");
        assert_string_equal(v[n - 3], "/bin/sh");
        assert_string_equal(v[n - 2], "-c");
        assert_string_equal(v[n - 1], "echo 'a b'");
        nx_bwrap_argv_free(v);
}

/* §6.5 / mothership issue #4 item 2: writable roots replace the writable workspace */
static void test_writable_roots_become_landlock_rules(void **state)
{
        nx_bwrap_run r = base_run("true");
        json_t *fs = json_pack("{s:[s,s], s:[s]}", "writable_roots", "/workspace/src",
                               "/workspace/out", "read_only_subpaths", "/workspace/docs");
        r.fs = fs;
        nx_bwrap_layout l = base_layout();
        char **v = build_ok(&r, &l);
        long end = bwrap_end(v);
        assert_true(find_seq(v, "--rw", "/workspace/src", NULL) > end);
        assert_true(find_seq(v, "--rw", "/workspace/out", NULL) > end);
        assert_int_equal(find_seq(v, "--rw", "/workspace", NULL), -1);
        nx_bwrap_argv_free(v);
        json_decref(fs);
}

static void test_roots_outside_workspace_or_unenforceable_refused(void **state)
{
        static const char *const bad[][2] = {
                { "{\"writable_roots\":[\"/etc\"]}", "not a path under /workspace" },
                { "{\"writable_roots\":[\"/workspace2\"]}", "not a path under /workspace" },
                { "{\"writable_roots\":[\"/workspace/../etc\"]}", "not a path under" },
                { "{\"writable_roots\":[\"/workspace//x\"]}", "not a path under" },
                { "{\"read_only_subpaths\":[\"/root/.ssh\"]}", "not a path under" },
                { "{\"writable_roots\":[7]}", "(not a string)" },
                { "{\"writable_roots\":[\"/workspace/src\"],\"read_only_subpaths\":"
                  "[\"/workspace/src/gen\"]}", "cannot be enforced" },
                { "{\"writable_roots\":\"/workspace\"}", "must be an array" },
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                nx_bwrap_run r = base_run("true");
                json_t *fs = json_loads(bad[i][0], 0, NULL);
                assert_non_null(fs);
                r.fs = fs;
                nx_bwrap_layout l = base_layout();
                build_fails(&r, &l, bad[i][1]);
                json_decref(fs);
        }
}

/* security review L7: the operator's /usr/local stays out of the sandbox */
static void test_usr_local_hidden(void **state)
{
        nx_bwrap_run r = base_run("true");
        nx_bwrap_layout l = base_layout();
        char **v = build_ok(&r, &l);
        long usr = find_seq(v, "--ro-bind", "/usr", "/usr");
        long tmpfs = find_seq(v, "--tmpfs", "/usr/local", NULL);
        assert_true(usr > 0 && tmpfs > usr);
        assert_true(find_seq(v, "--remount-ro", "/usr/local", NULL) > tmpfs);
        nx_bwrap_argv_free(v);
}

static void test_configured_shell_and_argv_mode(void **state)
{
        nx_bwrap_layout l = base_layout();
        nx_bwrap_run r = base_run("x");
        r.shell = "/bin/bash";
        char **v = build_ok(&r, &l);
        size_t n = argc_of(v);
        assert_string_equal(v[n - 3], "/bin/bash");
        nx_bwrap_argv_free(v);
        char *argv[] = { (char *)(uintptr_t)"/usr/bin/env", (char *)(uintptr_t)"-0", NULL };
        r = base_run(NULL);
        r.argv = argv;
        v = build_ok(&r, &l);
        n = argc_of(v);
        assert_string_equal(v[n - 3], "--");
        assert_string_equal(v[n - 2], "/usr/bin/env");
        assert_string_equal(v[n - 1], "-0");
        assert_true(find_seq(v, "/bin/sh", NULL, NULL) < 0);
        nx_bwrap_argv_free(v);
}

static void test_env_is_cleared_then_set(void **state)
{
        nx_bwrap_run r = base_run("true");
        nx_bwrap_layout l = base_layout();
        char **v = build_ok(&r, &l);
        long ce = find_seq(v, "--clearenv", NULL, NULL);
        assert_true(ce > 0);
        long https = find_seq(v, "--setenv", "HTTPS_PROXY", "http://127.0.0.1:9080");
        assert_true(https > ce);
        /* the directive cannot point the proxy variables elsewhere */
        assert_true(find_seq(v, "--setenv", "HTTP_PROXY", "http://127.0.0.1:9080") > ce);
        assert_true(find_seq(v, "--setenv", "HTTP_PROXY", "http://evil:1") < 0);
        assert_true(find_seq(v, "--setenv", "ALL_PROXY", "socks5h://127.0.0.1:9080") > ce);
        assert_true(find_seq(v, "--setenv", "CYBROS_NEXUS", "1") > ce);
        assert_true(find_seq(v, "--setenv", "HOME", "/workspace") > ce);
        nx_bwrap_argv_free(v);
}

static void test_sandbox_env_values_and_override(void **state)
{
        err_t err = ERR_INIT;
        char *in[] = { (char *)(uintptr_t)"PATH=/evil", (char *)(uintptr_t)"A=1",
                       (char *)(uintptr_t)"no_proxy=*", NULL };
        char **e = nx_bwrap_sandbox_env(in, 9181, &err);
        assert_non_null(e);
        assert_string_equal(nx_env_get(e, "PATH"), "/evil");   /* the directive's own */
        assert_string_equal(nx_env_get(e, "A"), "1");
        assert_string_equal(nx_env_get(e, "https_proxy"), "http://127.0.0.1:9181");
        assert_string_equal(nx_env_get(e, "all_proxy"), "socks5h://127.0.0.1:9181");
        assert_string_equal(nx_env_get(e, "no_proxy"), "");
        assert_string_equal(nx_env_get(e, "NX_EGRESS_PORT"), "9181");
        size_t count = 0;
        for (size_t i = 0; e[i]; i++)
                if (str_has_prefix(e[i], "no_proxy="))
                        count++;
        assert_int_equal(count, 1);
        nx_env_free(e);
}

static void test_invalid_env_key_refused(void **state)
{
        err_t err = ERR_INIT;
        char *in[] = { (char *)(uintptr_t)"BAD KEY=1", NULL };
        assert_null(nx_bwrap_sandbox_env(in, 0, &err));
        assert_string_equal(err.msg, "invalid env key: \"BAD KEY\"");
        char *in2[] = { (char *)(uintptr_t)"NOEQUALS", NULL };
        assert_null(nx_bwrap_sandbox_env(in2, 0, &err));
        nx_bwrap_run r = base_run("true");
        r.envp = in;
        nx_bwrap_layout l = base_layout();
        build_fails(&r, &l, "invalid env key");
}

/* D15: the clone runs in the sandbox from /workspace; the URL and the command are data
 * (env(1) arguments), never part of the script text. */
static void test_clone_mode_passes_url_as_data(void **state)
{
        nx_bwrap_run r = base_run("make test; echo $(id)");
        r.repo_url = "https://example.com/r.git';touch /x;'";
        r.cwd = "sub";
        nx_bwrap_layout l = base_layout();
        char **v = build_ok(&r, &l);
        long c = find_seq(v, "--chdir", NULL, NULL);
        assert_string_equal(v[c + 1], "/workspace");
        long e = find_seq(v, "env", NULL, NULL);
        assert_true(e > bwrap_end(v));
        assert_string_equal(v[e + 1], "NX_REPO_URL=https://example.com/r.git';touch /x;'");
        assert_string_equal(v[e + 2], "NX_CWD=/workspace/sub");
        assert_string_equal(v[e + 3], "NX_SHELL=/bin/sh");
        assert_string_equal(v[e + 4], "NX_COMMAND=make test; echo $(id)");
        long sh = find_seq(v, "/bin/sh", "-c", NULL);
        assert_true(sh > e);
        assert_null(strstr(v[sh + 2], "example.com"));
        assert_non_null(strstr(v[sh + 2], "GIT_CONFIG_NOSYSTEM=1"));
        assert_true(find_seq(v, "-c", "core.fsmonitor=false", NULL) > sh);
        assert_true(find_seq(v, "-c", "core.hooksPath=/dev/null", NULL) > sh);
        nx_bwrap_argv_free(v);
}

static void test_clone_needs_shell_command(void **state)
{
        char *argv[] = { (char *)(uintptr_t)"true", NULL };
        nx_bwrap_run r = base_run(NULL);
        r.argv = argv;
        r.repo_url = "https://example.com/r.git";
        nx_bwrap_layout l = base_layout();
        build_fails(&r, &l, "a clone needs a shell command");
}

/* ---------------------------------------------------------------- /etc, paths ------- */

static void read_file(const char *path, char *buf, size_t sz)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        ssize_t n = read(fd, buf, sz - 1);
        assert_true(n >= 0);
        buf[n] = '\0';
        close(fd);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)remove(path);
        return 0;
}

static void test_generated_etc_is_minimal(void **state)
{
        char dir[] = "/tmp/nx-bwrap-etc-XXXXXX", p[PATH_MAX], buf[4096];
        err_t err = ERR_INIT;
        assert_non_null(mkdtemp(dir));
        assert_int_equal(nx_bwrap_write_etc(dir, &err), 0);
        str_printf(p, sizeof(p), "%s/passwd", dir);
        read_file(p, buf, sizeof(buf));
        assert_non_null(strstr(buf, "sandbox:x:1000:1000:"));
        str_printf(p, sizeof(p), "%s/resolv.conf", dir);
        read_file(p, buf, sizeof(buf));
        assert_null(strstr(buf, "nameserver"));
        str_printf(p, sizeof(p), "%s/hosts", dir);
        read_file(p, buf, sizeof(buf));
        assert_non_null(strstr(buf, "127.0.0.1"));
        str_printf(p, sizeof(p), "%s/shadow", dir);
        assert_int_equal(access(p, F_OK), -1);
        str_printf(p, sizeof(p), "%s/nexusd", dir);
        assert_int_equal(access(p, F_OK), -1);
        struct stat st;
        if (stat("/etc/ssl/certs", &st) == 0) {
                str_printf(p, sizeof(p), "%s/ssl/certs", dir);
                assert_int_equal(stat(p, &st), 0);   /* mount point for the bind */
                assert_true(S_ISDIR(st.st_mode));
        }
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The generated /etc is made once per process and reused (its content is static); a second
 * request gets the same directory, which verifies as exactly what was written. */
static void test_shared_etc_made_once_and_reused(void **state)
{
        char parent[] = "/tmp/nx-bwrap-shared-XXXXXX", a[PATH_MAX], b[PATH_MAX];
        err_t err = ERR_INIT;
        assert_non_null(mkdtemp(parent));
        assert_int_equal(nx_bwrap_etc_shared(parent, a, sizeof(a), &err), 0);
        assert_true(str_has_prefix(a, parent));
        assert_int_equal(nx_bwrap_verify_etc(a, &err), 0);
        assert_int_equal(nx_bwrap_etc_shared(parent, b, sizeof(b), &err), 0);
        assert_string_equal(a, b);
        struct stat st;
        assert_int_equal(lstat(a, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0755);
        assert_int_equal(st.st_uid, geteuid());
        nx_bwrap_etc_shared_release();
        assert_int_equal(access(a, F_OK), -1);   /* removed */
        nftw(parent, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Tampering between two runs (a changed file, a symlink in place of a file) is noticed before
 * reuse: the old directory is removed and a fresh one made. */
static void test_shared_etc_tampered_is_made_again(void **state)
{
        char parent[] = "/tmp/nx-bwrap-shared-XXXXXX", a[PATH_MAX], b[PATH_MAX], p[PATH_MAX];
        err_t err = ERR_INIT;
        assert_non_null(mkdtemp(parent));
        assert_int_equal(nx_bwrap_etc_shared(parent, a, sizeof(a), &err), 0);
        str_printf(p, sizeof(p), "%s/passwd", a);
        int fd = open(p, O_WRONLY | O_APPEND | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "evil::0:0::/:/bin/sh\n", 21), 21);
        close(fd);
        assert_int_equal(nx_bwrap_verify_etc(a, &err), -1);
        assert_non_null(strstr(err.msg, "passwd differs"));
        assert_int_equal(nx_bwrap_etc_shared(parent, b, sizeof(b), &err), 0);
        assert_string_not_equal(a, b);
        assert_int_equal(access(a, F_OK), -1);
        assert_int_equal(nx_bwrap_verify_etc(b, &err), 0);
        /* a symlink instead of a file */
        str_printf(p, sizeof(p), "%s/hosts", b);
        assert_int_equal(unlink(p), 0);
        assert_int_equal(symlink("/etc/hosts", p), 0);
        assert_int_equal(nx_bwrap_verify_etc(b, &err), -1);
        assert_non_null(strstr(err.msg, "hosts differs"));
        assert_int_equal(nx_bwrap_etc_shared(parent, a, sizeof(a), &err), 0);
        assert_string_not_equal(a, b);
        assert_int_equal(nx_bwrap_verify_etc(a, &err), 0);
        nx_bwrap_etc_shared_release();
        nftw(parent, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A mode that would let another user write the shared /etc fails verification. */
static void test_shared_etc_writable_mode_refused(void **state)
{
        char parent[] = "/tmp/nx-bwrap-shared-XXXXXX", a[PATH_MAX], p[PATH_MAX];
        err_t err = ERR_INIT;
        assert_non_null(mkdtemp(parent));
        assert_int_equal(nx_bwrap_etc_shared(parent, a, sizeof(a), &err), 0);
        str_printf(p, sizeof(p), "%s/group", a);
        assert_int_equal(chmod(p, 0666), 0);
        assert_int_equal(nx_bwrap_verify_etc(a, &err), -1);
        assert_int_equal(chmod(p, 0644), 0);
        assert_int_equal(nx_bwrap_verify_etc(a, &err), 0);
        assert_int_equal(chmod(a, 0777), 0);
        assert_int_equal(nx_bwrap_verify_etc(a, &err), -1);
        nx_bwrap_etc_shared_release();
        nftw(parent, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void test_etc_binds_are_public_files_only(void **state)
{
        const char *const *b = nx_bwrap_etc_binds();
        size_t n = 0;
        for (; b[n]; n++) {
                assert_true(str_has_prefix(b[n], "/etc/"));
                assert_null(strstr(b[n], "shadow"));
                assert_null(strstr(b[n], "private"));
                assert_null(strstr(b[n], "nexusd"));
                assert_false(strcmp(b[n], "/etc/ssl") == 0);   /* holds ssl/private */
        }
        assert_true(n > 0);
}

static void test_unreachable_path_reported(void **state)
{
        char dir[] = "/tmp/nx-bwrap-reach-XXXXXX", sub[PATH_MAX];
        err_t err = ERR_INIT;
        assert_non_null(mkdtemp(dir));   /* 0700 root */
        str_printf(sub, sizeof(sub), "%s/fac", dir);
        assert_int_equal(mkdir(sub, 0755), 0);
        assert_int_equal(nx_bwrap_check_reachable(sub, 65100, 65100, &err), -1);
        assert_non_null(strstr(err.msg, "is not searchable"));
        assert_non_null(strstr(err.msg, dir));
        assert_int_equal(chmod(dir, 0711), 0);
        assert_int_equal(nx_bwrap_check_reachable(sub, 65100, 65100, &err), 0);
        /* owned by the uid itself: its owner bit counts */
        assert_int_equal(chmod(dir, 0700), 0);
        assert_int_equal(chown(dir, 65100, 65100), 0);
        assert_int_equal(nx_bwrap_check_reachable(sub, 65100, 65100, &err), 0);
        rmdir(sub);
        rmdir(dir);
}

static void test_helper_lookup(void **state)
{
        char out[PATH_MAX];
        err_t err = ERR_INIT;
        assert_int_equal(nx_bwrap_find_helper("/nonexistent/nexus-sandbox", out, sizeof(out),
                                              &err), -1);
        assert_non_null(strstr(err.msg, "bwrap.sandbox_helper_path"));
        assert_int_equal(nx_bwrap_find("/nonexistent/bwrap", out, sizeof(out), &err), -1);
        assert_non_null(strstr(err.msg, "bwrap not found at /nonexistent/bwrap"));
        if (!have_stack)
                SKIP_BECAUSE("bwrap or nexus-sandbox missing");
        /* next to this test binary in the build tree */
        assert_true(str_has_suffix(helper_path, "/nexus-sandbox"));
}

/* ---------------------------------------------------------------- real runs --------- */

typedef struct result {
        char out[16384];
        char err[16384];
        int exit_code;
        bool oom;
        char pids_max[32];
} result;

typedef struct runopt {
        const char *cwd;
        nx_cgroup_limits limits;
        const char *bwrap;           /* override */
        int listen_fd;               /* out: listener in the sandbox netns (or -1) */
        bool keep_listener;
        const json_t *fs;            /* FsCapabilityV1 or NULL */
} runopt;

static void next_id(char *id, size_t sz)
{
        str_printf(id, sz, "b%ld-%u", (long)getpid(), ++id_seq);
}

/* The whole sequence of one untrusted run, blocking. Returns the prepare/start error (0 ok). */
static int run_stack(const char *command, runopt *o, result *res, err_t *err)
{
        char id[64];
        next_id(id, sizeof(id));
        memset(res, 0, sizeof(*res));
        nx_bwrap_run in = { .directive_id = id, .command = command, .facility_path = facility,
                            .cwd = o->cwd ? o->cwd : "", .envp = dir_env, .limits = o->limits,
                            .bwrap_path = o->bwrap ? o->bwrap : bwrap_path,
                            .helper_path = helper_path, .landlock_min_abi = 1,
                            .drop_ids = geteuid() == 0, .uid = NX_SANDBOX_DEFAULT_UID,
                            .gid = NX_SANDBOX_DEFAULT_UID, .cgroup_sys = &real_sys,
                            .fs = o->fs };
        nx_bwrap_prepared prep;
        nx_child c = NX_CHILD_INIT;
        o->listen_fd = -1;
        if (nx_bwrap_prepare(&in, &prep, err) < 0)
                return -1;
        const char *pdir = nx_cgroup_dir(prep.cgroup, NX_CGROUP_PIDS);
        if (pdir) {
                char p[PATH_MAX];
                str_printf(p, sizeof(p), "%s/pids.max", pdir);
                read_file(p, res->pids_max, sizeof(res->pids_max));
        }
        int rc = -1;
        pid_t sp = 0;
        if (nx_spawn(&prep.req, &c, err) < 0)
                goto out;
        nx_bwrap_after_spawn(&prep);
        if (nx_bwrap_child_pid(&prep, NX_BWRAP_INFO_TIMEOUT_MS, &sp, err) < 0 ||
            nx_netns_listen_child(sp, c.pid, NX_EGRESS_HOST, NX_EGRESS_PORT, &o->listen_fd, err) < 0 ||
            nx_bwrap_release(&prep, err) < 0) {
                nx_child_kill_tree(&c, prep.cgroup, SIGKILL, &(err_t)ERR_INIT);
                (void)nx_child_reap(&c, true, &(err_t)ERR_INIT);
                goto out;
        }
        size_t lens[2] = { 0, 0 };
        while (c.stdout_fd >= 0 || c.stderr_fd >= 0) {
                struct pollfd p[3] = { { c.stdout_fd, POLLIN, 0 }, { c.stderr_fd, POLLIN, 0 },
                                       { o->keep_listener ? -1 : o->listen_fd, POLLIN, 0 } };
                assert_true(poll(p, 3, 60000) > 0);
                if (p[2].revents) {
                        /* a connection to the proxy port: answer like a denying proxy */
                        int a = accept4(o->listen_fd, NULL, NULL, SOCK_CLOEXEC);
                        if (a >= 0) {
                                const char resp[] = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n"
                                                    "Connection: close\r\n\r\n";
                                char junk[1024];
                                struct pollfd ap = { a, POLLIN, 0 };
                                if (poll(&ap, 1, 5000) == 1)
                                        (void)read(a, junk, sizeof(junk));
                                (void)write(a, resp, sizeof(resp) - 1);
                                close(a);
                        }
                }
                for (int i = 0; i < 2; i++) {
                        int *fd = i == 0 ? &c.stdout_fd : &c.stderr_fd;
                        char *buf = i == 0 ? res->out : res->err;
                        if (*fd < 0 || !p[i].revents)
                                continue;
                        ssize_t n = read(*fd, buf + lens[i], sizeof(res->out) - 1 - lens[i]);
                        if (n > 0) {
                                lens[i] += (size_t)n;
                        } else if (n == 0 || errno != EAGAIN) {
                                close(*fd);
                                *fd = -1;
                        }
                }
        }
        assert_int_equal(nx_child_reap(&c, true, err), 1);
        res->exit_code = nx_wait_status_to_exit_code(c.wait_status);
        (void)nx_cgroup_oom_killed(prep.cgroup, &res->oom, err);
        rc = 0;
out:
        nx_child_close(&c);
        if (!o->keep_listener && o->listen_fd >= 0) {
                close(o->listen_fd);
                o->listen_fd = -1;
        }
        err_t ferr = ERR_INIT;
        char tmp[PATH_MAX];
        str_copy(tmp, sizeof(tmp), prep.tmp_dir);
        assert_int_equal(nx_bwrap_prepared_free(&prep, &ferr), 0);
        if (tmp[0])
                assert_int_equal(access(tmp, F_OK), -1);   /* generated /etc removed */
        return rc;
}

#define NEED_STACK() do { if (!have_stack) SKIP_BECAUSE("bwrap or nexus-sandbox missing"); } while (0)

static result R;

/* spec nexus §12 #139 */
static void test_real_echo_succeeds(void **state)
{
        NEED_STACK();
        runopt o = { 0 };
        err_t err = ERR_INIT;
        if (run_stack("echo hello-from-bwrap", &o, &R, &err) < 0)
                fail_msg("%s", err.msg);
        assert_int_equal(R.exit_code, 0);
        assert_string_equal(R.out, "hello-from-bwrap\n");
}

/* spec nexus §12 #140 (no ping on this host: a direct TCP connect instead) */
static void test_real_no_network_no_hang(void **state)
{
        NEED_STACK();
        runopt o = { 0 };
        err_t err = ERR_INIT;
        if (run_stack("python3 -c 'import socket; socket.create_connection((\"1.1.1.1\", 80), 2)'"
                      " 2>/dev/null; echo rc=$?; getent hosts example.com; echo done", &o, &R, &err) < 0)
                fail_msg("%s", err.msg);
        assert_non_null(strstr(R.out, "rc=1"));
        assert_non_null(strstr(R.out, "done"));
        assert_null(strstr(R.out, "example.com"));
}

/* spec nexus §12 #141, plus the owner on the host: the sandbox uid, never root. */
static void test_real_workspace_write_visible_on_host(void **state)
{
        NEED_STACK();
        runopt o = { 0 };
        err_t err = ERR_INIT;
        char p[PATH_MAX], buf[256];
        if (run_stack("printf 'content 42' > /workspace/test.txt", &o, &R, &err) < 0)
                fail_msg("%s", err.msg);
        assert_int_equal(R.exit_code, 0);
        str_printf(p, sizeof(p), "%s/test.txt", facility);
        read_file(p, buf, sizeof(buf));
        assert_string_equal(buf, "content 42");
        struct stat st;
        assert_int_equal(stat(p, &st), 0);
        if (geteuid() == 0)
                assert_int_equal(st.st_uid, NX_SANDBOX_DEFAULT_UID);
        assert_int_not_equal(st.st_uid, 0);
        unlink(p);
}

/* spec nexus §12 #142 (a name unique to this run instead of /testfile, so that another
 * process on the host cannot make the check pass or fail) */
static void test_real_root_is_read_only(void **state)
{
        NEED_STACK();
        runopt o = { 0 };
        err_t err = ERR_INIT;
        char name[64], cmd[128];
        str_printf(name, sizeof(name), "/nx-bwrap-testfile-%ld", (long)getpid());
        str_printf(cmd, sizeof(cmd), "touch %s", name);
        if (run_stack(cmd, &o, &R, &err) < 0)
                fail_msg("%s", err.msg);
        assert_int_not_equal(R.exit_code, 0);
        assert_non_null(strstr(R.err, "Read-only file system"));
        assert_int_equal(access(name, F_OK), -1);
}

/* writable_roots: only /workspace/src is writable; the rest of /workspace reads fine */
static void test_real_writable_root_limits_writes(void **state)
{
        NEED_STACK();
        char p[PATH_MAX];
        str_printf(p, sizeof(p), "%s/src", facility);
        assert_true(mkdir(p, 0755) == 0 || errno == EEXIST);
        assert_int_equal(chown(p, geteuid() == 0 ? NX_SANDBOX_DEFAULT_UID : geteuid(),
                               geteuid() == 0 ? NX_SANDBOX_DEFAULT_UID : getegid()), 0);
        json_t *fs = json_pack("{s:[s]}", "writable_roots", "/workspace/src");
        runopt o = { .fs = fs };
        err_t err = ERR_INIT;
        if (run_stack("echo a > /workspace/src/ok && echo ok=$?; "
                      "(echo b > /workspace/top) 2>/dev/null && echo top=written || echo top=denied; "
                      "ls /workspace >/dev/null "
                      "&& echo read=0", &o, &R, &err) < 0)
                fail_msg("%s", err.msg);
        json_decref(fs);
        if (!strstr(R.out, "ok=0") || !strstr(R.out, "top=denied"))
                fail_msg("out: %s err: %s", R.out, R.err);
        assert_non_null(strstr(R.out, "read=0"));
        str_printf(p, sizeof(p), "%s/top", facility);
        assert_int_equal(access(p, F_OK), -1);
        str_printf(p, sizeof(p), "%s/src/ok", facility);
        unlink(p);
}

static void test_real_identity_caps_seccomp_and_env(void **state)
{
        NEED_STACK();
        runopt o = { 0 };
        err_t err = ERR_INIT;
        if (run_stack("id -u; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; "
                      "echo \"$HTTPS_PROXY $HOME\"; pwd", &o, &R, &err) < 0)
                fail_msg("%s", err.msg);
        assert_int_equal(R.exit_code, 0);
        assert_true(str_has_prefix(R.out, "1000\n"));
        assert_non_null(strstr(R.out, "CapEff:\t0000000000000000"));
        assert_non_null(strstr(R.out, "NoNewPrivs:\t1"));
        assert_non_null(strstr(R.out, "Seccomp:\t2"));
        assert_non_null(strstr(R.out, "http://127.0.0.1:9080 /workspace"));
}

static void test_real_host_etc_not_visible(void **state)
{
        NEED_STACK();
        runopt o = { 0 };
        err_t err = ERR_INIT;
        if (run_stack("cat /etc/shadow; ls /etc/nexusd; cat /etc/hostname; "
                      "test -d /etc/ssl/certs && echo certs", &o, &R, &err) < 0)
                fail_msg("%s", err.msg);
        assert_null(strstr(R.out, "root:"));
        assert_non_null(strstr(R.err, "/etc/shadow"));
        if (access("/etc/ssl/certs", F_OK) == 0)
                assert_non_null(strstr(R.out, "certs"));
}

static void test_real_nested_userns_refused(void **state)
{
        NEED_STACK();
        runopt o = { 0 };
        err_t err = ERR_INIT;
        if (run_stack("unshare -U true && echo escaped || echo refused", &o, &R, &err) < 0)
                fail_msg("%s", err.msg);
        assert_non_null(strstr(R.out, "refused"));
}

static void test_real_proxy_port_reachable_inside(void **state)
{
        NEED_STACK();
        runopt o = { 0 };
        err_t err = ERR_INIT;
        if (run_stack("curl -s -o /dev/null -w '%{http_code}' http://example.com/", &o, &R,
                      &err) < 0)
                fail_msg("%s", err.msg);
        /* curl honours http_proxy; our fake proxy in run_stack answered 403 */
        assert_string_equal(R.out, "403");
}

static void test_real_cwd_inside_workspace(void **state)
{
        NEED_STACK();
        char p[PATH_MAX];
        str_printf(p, sizeof(p), "%s/sub", facility);
        (void)mkdir(p, 0755);
        runopt o = { .cwd = "sub" };
        err_t err = ERR_INIT;
        if (run_stack("pwd", &o, &R, &err) < 0)
                fail_msg("%s", err.msg);
        assert_string_equal(R.out, "/workspace/sub\n");
        rmdir(p);
}

static void test_real_default_pids_limit_applied(void **state)
{
        NEED_STACK();
        runopt o = { 0 };
        err_t err = ERR_INIT;
        if (run_stack("true", &o, &R, &err) < 0)
                fail_msg("%s", err.msg);
        if (!R.pids_max[0])
                SKIP_BECAUSE("no pids cgroup controller");
        assert_string_equal(R.pids_max, "512\n");
}

static void test_real_fork_bomb_stopped_by_pids(void **state)
{
        NEED_STACK();
        runopt o = { .limits = { .pids_max = 32 } };
        err_t err = ERR_INIT;
        if (run_stack("i=0; while [ $i -lt 100 ]; do sleep 30 & i=$((i+1)); done; "
                      "echo all-started", &o, &R, &err) < 0)
                fail_msg("%s", err.msg);
        if (!R.pids_max[0])
                SKIP_BECAUSE("no pids cgroup controller");
        assert_string_equal(R.pids_max, "32\n");
        /* the shell could not fork past the limit and gave up; the run still ended (the
         * sleeps died with the sandbox's pid namespace) */
        assert_null(strstr(R.out, "all-started"));
        assert_non_null(strstr(R.err, "fork"));
}

static void test_real_memory_hog_oom_killed(void **state)
{
        NEED_STACK();
        runopt o = { .limits = { .memory_mb = 32 } };
        err_t err = ERR_INIT;
        if (run_stack("tail /dev/zero", &o, &R, &err) < 0) {
                if (strstr(err.msg, "memory"))
                        SKIP_BECAUSE("no memory cgroup controller: %s", err.msg);
                fail_msg("%s", err.msg);
        }
        assert_int_not_equal(R.exit_code, 0);
        assert_true(R.oom);
}

static void test_real_bwrap_failing_early_is_an_error(void **state)
{
        NEED_STACK();
        runopt o = { .bwrap = "/bin/false" };
        err_t err = ERR_INIT;
        assert_int_equal(run_stack("true", &o, &R, &err), -1);
        assert_non_null(strstr(err.msg, "bwrap exited before the sandbox started"));
}

static void test_real_health_is_healthy(void **state)
{
        NEED_STACK();
        json_t *h = nx_bwrap_health(bwrap_path, helper_path, NULL, geteuid() == 0,
                                    NX_SANDBOX_DEFAULT_UID, NX_SANDBOX_DEFAULT_UID);
        assert_non_null(h);
        if (!json_is_true(json_object_get(h, "healthy")))
                fail_msg("unhealthy: %s", json_string_value(json_object_get(
                                                  json_object_get(h, "details"), "error")));
        assert_string_equal(json_string_value(json_object_get(json_object_get(h, "details"),
                                                              "driver")), "bwrap");
        json_decref(h);
}

static void test_health_unhealthy_without_helper(void **state)
{
        json_t *h = nx_bwrap_health("/usr/bin/bwrap", "/nonexistent/nexus-sandbox", NULL, false,
                                    0, 0);
        assert_non_null(h);
        assert_false(json_is_true(json_object_get(h, "healthy")));
        assert_non_null(strstr(json_string_value(json_object_get(json_object_get(h, "details"),
                                                                 "error")), "nexus-sandbox"));
        json_decref(h);
}

static void test_summary_fields(void **state)
{
        nx_bwrap_run r = base_run("true");
        _cleanup_json_ json_t *net = json_pack("{s:s}", "mode", "none");
        r.net = net;
        r.limits.memory_mb = 64;
        _cleanup_json_ json_t *s = nx_bwrap_summary(&r, 4);
        assert_non_null(s);
        assert_string_equal(json_string_value(json_object_get(s, "driver")), "bwrap");
        assert_true(json_is_true(json_object_get(s, "seccomp")));
        assert_int_equal(json_integer_value(json_object_get(s, "landlock_abi")), 4);
        assert_int_equal(json_integer_value(json_object_get(s, "pids_max")), 512);
        assert_int_equal(json_integer_value(json_object_get(s, "memory_mb")), 64);
        assert_string_equal(json_string_value(json_object_get(json_object_get(s, "net"), "mode")),
                            "none");
}

static void test_prepare_refuses_root_sandbox_uid(void **state)
{
        nx_bwrap_run r = base_run("true");
        r.facility_path = facility;
        r.drop_ids = true;
        r.uid = 0;
        r.gid = 0;
        nx_bwrap_prepared p;
        err_t err = ERR_INIT;
        assert_int_equal(nx_bwrap_prepare(&r, &p, &err), -1);
        assert_string_equal(err.msg, "sandbox uid/gid must not be 0");
}

/* ---------------------------------------------------------------- sandboxed diff (D15) -- */

static int sh_run(const char *script)
{
        pid_t p = fork();
        if (p == 0) {
                execl("/bin/sh", "sh", "-c", script, (char *)NULL);
                _exit(127);
        }
        int st = 0;
        while (waitpid(p, &st, 0) < 0 && errno == EINTR)
                ;
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A repository in a fresh facility (/tmp/nx-d15-XXXXXX): a.txt committed, then `extra`
 * (shell, run in the repository) and a.txt changed. */
static void make_repo(char *dir, size_t sz, const char *extra)
{
        str_copy(dir, sz, "/tmp/nx-d15-XXXXXX");
        assert_non_null(mkdtemp(dir));
        assert_int_equal(chmod(dir, 0755), 0);
        char script[4096];
        assert_true(str_printf(script, sizeof(script),
                               "set -e; cd '%s'; git init -q .; printf 'hello\\n' > a.txt; "
                               "git add a.txt; git -c user.email=t@t -c user.name=t commit -q "
                               "-m init; %s; printf 'changed\\n' >> a.txt",
                               dir, extra) > 0);
        assert_int_equal(sh_run(script), 0);
}

static void remove_repo(const char *dir)
{
        if (str_has_prefix(dir, "/tmp/nx-d15-"))
                nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static nx_bwrap_run diff_base(const char *fac, char *id, size_t idsz)
{
        next_id(id, idsz);
        return (nx_bwrap_run){ .directive_id = id, .command = "unused", .facility_path = fac,
                               .cwd = "", .envp = dir_env, .bwrap_path = bwrap_path,
                               .helper_path = helper_path, .landlock_min_abi = 1,
                               .drop_ids = geteuid() == 0, .uid = NX_SANDBOX_DEFAULT_UID,
                               .gid = NX_SANDBOX_DEFAULT_UID, .cgroup_sys = &real_sys };
}

static bool git_available(void)
{
        return access("/usr/bin/git", X_OK) == 0;
}

#define NEED_GIT() do { NEED_STACK(); if (!git_available()) SKIP_BECAUSE("git missing"); } while (0)

static void test_diff_sandboxed_returns_the_change(void **state)
{
        NEED_GIT();
        char dir[64], id[64];
        make_repo(dir, sizeof(dir), "true");
        nx_bwrap_run in = diff_base(dir, id, sizeof(id));
        nx_git_result g;
        err_t err = ERR_INIT;
        int rc = nx_git_diff_sandboxed(&in, 1 << 20, 30000, &g, &err);
        if (rc < 0)
                fail_msg("%s (log: %s)", err.msg, g.log);
        assert_int_equal(g.exit_code, 0);
        assert_false(g.out_truncated);
        assert_false(g.timed_out);
        assert_non_null(g.out);
        char *text = strndup((const char *)g.out, g.out_len);
        assert_non_null(strstr(text, "diff --git a/a.txt b/a.txt"));
        assert_non_null(strstr(text, "+changed"));
        free(text);
        nx_git_result_free(&g);
        remove_repo(dir);
}

static void test_diff_sandboxed_without_git_dir_is_empty(void **state)
{
        NEED_GIT();
        char dir[] = "/tmp/nx-d15-XXXXXX", id[64];
        assert_non_null(mkdtemp(dir));
        nx_bwrap_run in = diff_base(dir, id, sizeof(id));
        nx_git_result g;
        err_t err = ERR_INIT;
        assert_int_equal(nx_git_diff_sandboxed(&in, 1 << 20, 30000, &g, &err), 0);
        assert_int_equal(g.exit_code, 0);
        assert_int_equal(g.out_len, 0);
        nx_git_result_free(&g);
        remove_repo(dir);
}

/* The attack of review finding M3: the repository's config runs a program writing a marker
 * to a host path. Inside the sandbox it runs (ran-inside appears in the facility) but the
 * marker lands in the sandbox's private /tmp, never on the host; the control shows the same
 * repository DOES write the marker under plain host git. */
static void test_diff_sandboxed_hostile_config_cannot_reach_host(void **state)
{
        NEED_GIT();
        char marker[64], extra[1024], dir[64], id[64];
        str_printf(marker, sizeof(marker), "/tmp/nx-d15-marker-%ld", (long)getpid());
        unlink(marker);
        assert_true(str_printf(extra, sizeof(extra),
                               "printf '* filter=evil\\n' > .gitattributes; "
                               "git config core.fsmonitor 'touch %s; false'; "
                               "git config diff.external 'sh -c \"touch %s\"'; "
                               "git config filter.evil.clean 'sh -c \"touch %s; touch ran-inside; "
                               "cat\"'",
                               marker, marker, marker) > 0);
        make_repo(dir, sizeof(dir), extra);
        nx_bwrap_run in = diff_base(dir, id, sizeof(id));
        nx_git_result g;
        err_t err = ERR_INIT;
        int rc = nx_git_diff_sandboxed(&in, 1 << 20, 30000, &g, &err);
        if (rc < 0)
                fail_msg("%s (log: %s)", err.msg, g.log);
        assert_int_equal(g.exit_code, 0);
        nx_git_result_free(&g);
        assert_int_equal(access(marker, F_OK), -1);   /* not on the host */
        char ran[128];
        str_printf(ran, sizeof(ran), "%s/ran-inside", dir);
        assert_int_equal(access(ran, F_OK), 0);       /* the config did run, in the sandbox */
        /* control: plain host git runs the same config and writes the marker */
        char cmd[256];
        str_printf(cmd, sizeof(cmd), "git -c safe.directory='*' -C '%s' diff HEAD >/dev/null 2>&1",
                   dir);
        (void)sh_run(cmd);
        assert_int_equal(access(marker, F_OK), 0);
        unlink(marker);
        remove_repo(dir);
}

static void test_diff_sandboxed_output_capped_and_flagged(void **state)
{
        NEED_GIT();
        char dir[64], id[64];
        make_repo(dir, sizeof(dir), "true");
        char cmd[256];
        str_printf(cmd, sizeof(cmd), "seq 1 20000 >> '%s/a.txt'", dir);
        assert_int_equal(sh_run(cmd), 0);
        nx_bwrap_run in = diff_base(dir, id, sizeof(id));
        nx_git_result g;
        err_t err = ERR_INIT;
        int rc = nx_git_diff_sandboxed(&in, 1000, 30000, &g, &err);
        if (rc < 0)
                fail_msg("%s (log: %s)", err.msg, g.log);
        assert_int_equal(g.exit_code, 0);
        assert_true(g.out_truncated);
        assert_int_equal(g.out_len, 1000);
        assert_memory_equal(g.out, "diff --git a/a.txt", 18);
        nx_git_result_free(&g);
        remove_repo(dir);
}

/* True when some process runs `sleep 987654` (the looping repository config below). */
static bool sleeper_alive(void)
{
        DIR *d = opendir("/proc");
        assert_non_null(d);
        bool found = false;
        struct dirent *e;
        while (!found && (e = readdir(d))) {
                if (e->d_name[0] < '0' || e->d_name[0] > '9')
                        continue;
                char p[64], buf[256];
                str_printf(p, sizeof(p), "/proc/%s/cmdline", e->d_name);
                int fd = open(p, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        continue;
                ssize_t n = read(fd, buf, sizeof(buf) - 1);
                close(fd);
                if (n > 0 && (size_t)n == sizeof("sleep\0987654") &&
                    memcmp(buf, "sleep\0987654", (size_t)n) == 0)
                        found = true;
        }
        closedir(d);
        return found;
}

/* A config that never ends (a clean filter that sleeps; fsmonitor too, though the diff's
 * command line switches fsmonitor off): killed at the timeout with its whole cgroup. */
static void test_diff_sandboxed_endless_config_killed_at_timeout(void **state)
{
        NEED_GIT();
        char dir[64], id[64];
        make_repo(dir, sizeof(dir),
                  "printf '* filter=slow\\n' > .gitattributes; "
                  "git config core.fsmonitor 'sleep 987654'; "
                  "git config filter.slow.clean 'sleep 987654'");
        nx_bwrap_run in = diff_base(dir, id, sizeof(id));
        nx_git_result g;
        err_t err = ERR_INIT;
        assert_int_equal(nx_git_diff_sandboxed(&in, 1 << 20, 1500, &g, &err), -1);
        assert_true(g.timed_out);
        assert_non_null(strstr(err.msg, "timed out"));
        assert_false(sleeper_alive());
        nx_git_result_free(&g);
        remove_repo(dir);
}

#define DIFF_TESTS \
                cmocka_unit_test(test_diff_sandboxed_returns_the_change), \
                cmocka_unit_test(test_diff_sandboxed_without_git_dir_is_empty), \
                cmocka_unit_test(test_diff_sandboxed_hostile_config_cannot_reach_host), \
                cmocka_unit_test(test_diff_sandboxed_output_capped_and_flagged), \
                cmocka_unit_test(test_diff_sandboxed_endless_config_killed_at_timeout),

static int group_setup(void **state)
{
        err_t err = ERR_INIT;
        str_copy(facility, sizeof(facility), "/tmp/nx-bwrap-facility-XXXXXX");
        if (!mkdtemp(facility))
                return -1;
        str_printf(test_base, sizeof(test_base), "nexusd-test-bwrap-%ld", (long)getpid());
        real_sys = (nx_cgroup_sys){ NULL, NULL, test_base };
        have_stack = nx_bwrap_find(NULL, bwrap_path, sizeof(bwrap_path), &err) == 0 &&
                     nx_bwrap_find_helper(NULL, helper_path, sizeof(helper_path), &err) == 0;
        return 0;
}

static int group_teardown(void **state)
{
        nx_cgroup_remove_base(&real_sys);
        if (str_has_prefix(facility, "/tmp/nx-bwrap-facility-"))
                nftw(facility, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        return 0;
}

int main(void)
{
        (void)prctl(PR_SET_CHILD_SUBREAPER, 1);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_host_dir_mode_contains_reference_elements),
                cmocka_unit_test(test_namespaces_userns_disabled_and_no_host_etc),
                cmocka_unit_test(test_seccomp_info_and_block_fds_passed),
                cmocka_unit_test(test_rootfs_mode_has_no_symlinks),
                cmocka_unit_test(test_lib64_symlink_follows_host),
                cmocka_unit_test(test_chdir_is_the_resolved_cwd),
                cmocka_unit_test(test_missing_inputs_refused),
                cmocka_unit_test(test_remount_ro_after_every_bind),
                cmocka_unit_test(test_cwd_escape_rules),
                cmocka_unit_test(test_constants),
                cmocka_unit_test(test_command_runs_through_nexus_sandbox),
                cmocka_unit_test(test_writable_roots_become_landlock_rules),
                cmocka_unit_test(test_usr_local_hidden),
                cmocka_unit_test(test_roots_outside_workspace_or_unenforceable_refused),
                cmocka_unit_test(test_configured_shell_and_argv_mode),
                cmocka_unit_test(test_env_is_cleared_then_set),
                cmocka_unit_test(test_sandbox_env_values_and_override),
                cmocka_unit_test(test_invalid_env_key_refused),
                cmocka_unit_test(test_clone_mode_passes_url_as_data),
                cmocka_unit_test(test_clone_needs_shell_command),
                cmocka_unit_test(test_generated_etc_is_minimal),
                cmocka_unit_test(test_shared_etc_made_once_and_reused),
                cmocka_unit_test(test_shared_etc_tampered_is_made_again),
                cmocka_unit_test(test_shared_etc_writable_mode_refused),
                cmocka_unit_test(test_etc_binds_are_public_files_only),
                cmocka_unit_test(test_unreachable_path_reported),
                cmocka_unit_test(test_helper_lookup),
                cmocka_unit_test(test_summary_fields),
                cmocka_unit_test(test_prepare_refuses_root_sandbox_uid),
                cmocka_unit_test(test_health_unhealthy_without_helper),
                cmocka_unit_test(test_real_echo_succeeds),
                cmocka_unit_test(test_real_no_network_no_hang),
                cmocka_unit_test(test_real_workspace_write_visible_on_host),
                cmocka_unit_test(test_real_root_is_read_only),
                cmocka_unit_test(test_real_writable_root_limits_writes),
                cmocka_unit_test(test_real_identity_caps_seccomp_and_env),
                cmocka_unit_test(test_real_host_etc_not_visible),
                cmocka_unit_test(test_real_nested_userns_refused),
                cmocka_unit_test(test_real_proxy_port_reachable_inside),
                cmocka_unit_test(test_real_cwd_inside_workspace),
                cmocka_unit_test(test_real_default_pids_limit_applied),
                cmocka_unit_test(test_real_fork_bomb_stopped_by_pids),
                cmocka_unit_test(test_real_memory_hog_oom_killed),
                cmocka_unit_test(test_real_bwrap_failing_early_is_an_error),
                cmocka_unit_test(test_real_health_is_healthy),
                DIFF_TESTS
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
