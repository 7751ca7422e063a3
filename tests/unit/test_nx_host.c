/* tests/unit/test_nx_host.c — sandbox/host: profile gate (D12), request checks, §6.1 cwd
 * resolution, fail-closed limits, health, and real runs through nx_spawn with the cgroup the
 * driver prepared. The process is a child subreaper; every case kills, reaps and removes what
 * it created. */
#include "testutil.h"
#include "sandbox/host.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/json.h"
#include "core/str.h"

static char facility[128];        /* temp dir with sub/ and a regular file "file" */
static char test_base[64];
static nx_cgroup_sys real_sys;
static char *std_env[] = { NULL, NULL, NULL };
static unsigned id_seq;

static void next_id(char *id, size_t sz)
{
        (void)str_printf(id, sz, "h%ld-%u", (long)getpid(), ++id_seq);
}

static void write_text(const char *path, const char *text)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
}

static bool path_exists(const char *p)
{
        struct stat st;
        return stat(p, &st) == 0;
}

static nx_host_run base_run(const char *id, const char *command)
{
        nx_host_run r;
        memset(&r, 0, sizeof(r));
        r.directive_id = id;
        r.command = command;
        r.facility_path = facility;
        r.cwd = "";
        r.envp = std_env;
        r.host_profile_enabled = true;
        r.cgroup_sys = &real_sys;
        return r;
}

typedef struct result {
        char out[8192];
        char err[8192];
        int exit_code;
} result;

/* nx_spawn + drain both pipes + reap. */
static void run_prepared(nx_host_prepared *prep, result *res)
{
        nx_child c;
        err_t err = ERR_INIT;
        size_t lens[2] = { 0, 0 };

        memset(res, 0, sizeof(*res));
        if (nx_spawn(&prep->req, &c, &err) < 0)
                fail_msg("spawn: %s", err.msg);
        while (c.stdout_fd >= 0 || c.stderr_fd >= 0) {
                struct pollfd p[2] = { { c.stdout_fd, POLLIN, 0 }, { c.stderr_fd, POLLIN, 0 } };
                assert_true(poll(p, 2, 30000) > 0);
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
        assert_int_equal(nx_child_reap(&c, true, &err), 1);
        res->exit_code = nx_wait_status_to_exit_code(c.wait_status);
        nx_child_close(&c);
}

static void expect_prepare_error(const nx_host_run *run, const char *want)
{
        nx_host_prepared prep;
        err_t err = ERR_INIT;

        assert_int_equal(nx_host_prepare(run, &prep, &err), -1);
        assert_string_equal(err.msg, want);
        assert_null(prep.cgroup);
        assert_null(prep.argv[0]);
}

/* A fake system for fail-closed cases: mountinfo only (no cgroup controllers at all, or a
 * v2 mount without controllers). */
typedef struct fake {
        char dir[128];
        char mountinfo[160];
        nx_cgroup_sys sys;
} fake;

static void fake_init(fake *f, const char *mountinfo_text)
{
        (void)str_copy(f->dir, sizeof(f->dir), "/tmp/nx-host-fake-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        (void)str_printf(f->mountinfo, sizeof(f->mountinfo), "%s/mountinfo", f->dir);
        write_text(f->mountinfo, mountinfo_text);
        f->sys = (nx_cgroup_sys){ f->mountinfo, f->dir, NULL };
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)remove(path);
        return 0;
}

static void rm_tree(const char *dir, const char *must_prefix)
{
        if (str_has_prefix(dir, must_prefix))
                (void)nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static bool real_cgroups(void)
{
        nx_cgroup_mounts m;
        err_t err = ERR_INIT;
        return geteuid() == 0 && nx_cgroup_detect(&real_sys, &m, &err) == 0 &&
               m.layout != NX_CGROUP_LAYOUT_NONE;
}

/* Reaps the child, waiting at most ~10 s: a kill that did not work fails the case instead of
 * waiting for a `sleep 100` to end. Returns 1 when reaped. */
static int reap_bounded(nx_child *c)
{
        err_t err = ERR_INIT;
        for (int i = 0; i < 5000; i++) {
                int r = nx_child_reap(c, false, &err);
                if (r != 0)
                        return r;
                struct timespec ts = { 0, 2000000 };
                nanosleep(&ts, NULL);
        }
        return 0;
}

/* ---- the profile gate and request checks ---- */

/* spec nexus §12 #88 (REF differs: supported_sandbox_profiles is honoured; host runs only
 * when enabled) */
static void test_refused_unless_host_profile_enabled(void **state)
{
        nx_host_run r = base_run("d1", "true");
        r.host_profile_enabled = false;
        expect_prepare_error(&r, "profile host is not enabled on this territory "
                                 "(supported_sandbox_profiles)");
}

static void test_refusal_code_is_forbidden(void **state)
{
        nx_host_run r = base_run("d1", "true");
        nx_host_prepared prep;
        err_t err = ERR_INIT;

        r.host_profile_enabled = false;
        assert_int_equal(nx_host_prepare(&r, &prep, &err), -1);
        assert_string_equal(err.code, ERR_FORBIDDEN);
}

/* spec nexus §12 #112 */
static void test_empty_command_refused(void **state)
{
        nx_host_run r = base_run("d1", "");
        expect_prepare_error(&r, "empty command");
        r.command = NULL;
        expect_prepare_error(&r, "empty command");
}

static void test_absolute_cwd_outside_workspace_refused(void **state)
{
        nx_host_run r = base_run("d1", "true");
        r.cwd = "/etc";
        expect_prepare_error(&r, "cwd must be under /workspace");
}

/* spec nexus §12 #96 */
static void test_escaping_cwds_refused(void **state)
{
        const char *esc[] = { "../x", "/workspace/../x", "sub/../../x", ".." };
        for (size_t i = 0; i < sizeof(esc) / sizeof(esc[0]); i++) {
                nx_host_run r = base_run("d1", "true");
                r.cwd = esc[i];
                expect_prepare_error(&r, "cwd escapes workspace");
        }
}

static void test_empty_facility_refused(void **state)
{
        nx_host_run r = base_run("d1", "true");
        r.facility_path = "";
        expect_prepare_error(&r, "work dir is required");
}

static void test_relative_facility_refused(void **state)
{
        nx_host_run r = base_run("d1", "true");
        r.facility_path = "facilities/f1";
        expect_prepare_error(&r, "facility path \"facilities/f1\" must be absolute");
}

static void test_missing_cwd_directory_refused(void **state)
{
        nx_host_run r = base_run("d1", "true");
        char want[256];
        r.cwd = "/workspace/nope";
        (void)str_printf(want, sizeof(want), "cwd %s/nope: No such file or directory", facility);
        expect_prepare_error(&r, want);
}

static void test_cwd_that_is_a_file_refused(void **state)
{
        nx_host_run r = base_run("d1", "true");
        char want[256];
        r.cwd = "file";
        (void)str_printf(want, sizeof(want), "cwd %s/file is not a directory", facility);
        expect_prepare_error(&r, want);
}

static void test_invalid_directive_id_refused(void **state)
{
        nx_host_run r = base_run("../x", "true");
        expect_prepare_error(&r, "invalid directive ID for cgroup: \"../x\"");
}

/* ---- what prepare builds ---- */

static void test_default_shell_is_bin_sh_dash_c(void **state)
{
        char id[64];
        next_id(id, sizeof(id));
        nx_host_run r = base_run(id, "echo hi");
        nx_host_prepared prep;
        err_t err = ERR_INIT;

        assert_int_equal(nx_host_prepare(&r, &prep, &err), 0);
        assert_string_equal(prep.argv[0], "/bin/sh");
        assert_string_equal(prep.argv[1], "-c");
        assert_string_equal(prep.argv[2], "echo hi");
        assert_null(prep.argv[3]);
        assert_ptr_equal(prep.req.argv, prep.argv);
        assert_ptr_equal(prep.req.envp, std_env);
        assert_true(prep.req.new_session);
        assert_string_equal(prep.req.cwd, facility);
        assert_int_equal(nx_host_prepared_free(&prep, &err), 0);
}

static void test_configured_shell_is_used(void **state)
{
        char id[64];
        next_id(id, sizeof(id));
        nx_host_run r = base_run(id, "echo $0");
        nx_host_prepared prep;
        result res;
        err_t err = ERR_INIT;

        r.shell = "/bin/bash";
        assert_int_equal(nx_host_prepare(&r, &prep, &err), 0);
        assert_string_equal(prep.argv[0], "/bin/bash");
        run_prepared(&prep, &res);
        assert_string_equal(res.out, "/bin/bash\n");
        assert_int_equal(nx_host_prepared_free(&prep, &err), 0);
}

static void test_workspace_cwds_resolve_under_facility(void **state)
{
        const char *in[] = { "", ".", "/workspace", "/workspace/", "/workspace/sub", "sub",
                             "sub/./", "/workspace//sub" };
        const char *suffix[] = { "", "", "", "", "/sub", "/sub", "/sub", "/sub" };
        for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
                char id[64], want[256];
                next_id(id, sizeof(id));
                nx_host_run r = base_run(id, "true");
                nx_host_prepared prep;
                err_t err = ERR_INIT;
                r.cwd = in[i];
                assert_int_equal(nx_host_prepare(&r, &prep, &err), 0);
                (void)str_printf(want, sizeof(want), "%s%s", facility, suffix[i]);
                assert_string_equal(prep.cwd, want);
                assert_int_equal(nx_host_prepared_free(&prep, &err), 0);
        }
}

static void test_health_is_always_healthy_host(void **state)
{
        json_t *h = nx_host_health();
        assert_non_null(h);
        char *s = json_dump_compact(h);
        assert_string_equal(s, "{\"healthy\":true,\"details\":{\"driver\":\"host\"}}");
        free(s);
        json_decref(h);
}

static void test_prepared_free_is_idempotent(void **state)
{
        char id[64];
        next_id(id, sizeof(id));
        nx_host_run r = base_run(id, "true");
        nx_host_prepared prep;
        err_t err = ERR_INIT;

        assert_int_equal(nx_host_prepare(&r, &prep, &err), 0);
        assert_int_equal(nx_host_prepared_free(&prep, &err), 0);
        assert_null(prep.cgroup);
        assert_null(prep.argv[0]);
        assert_int_equal(nx_host_prepared_free(&prep, &err), 0);
}

/* ---- fail closed (§6.1) ---- */

static void test_memory_limit_without_controller_fails_closed(void **state)
{
        fake f;
        fake_init(&f, "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n");
        nx_host_run r = base_run("d2", "true");
        r.cgroup_sys = &f.sys;
        r.limits.memory_mb = 64;
        expect_prepare_error(&r, "cgroup limits required but failed to apply: memory limit "
                                 "requested but no memory controller is available (cgroup "
                                 "layout v2)");
        rm_tree(f.dir, "/tmp/nx-host-fake-");
}

static void test_cpu_limit_without_cgroups_fails_closed(void **state)
{
        fake f;
        fake_init(&f, "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n");
        nx_host_run r = base_run("d3", "true");
        r.cgroup_sys = &f.sys;
        r.limits.cpu_millicores = 500;
        expect_prepare_error(&r, "cgroup limits required but failed to apply: cpu limit "
                                 "requested but no cpu controller is available (cgroup "
                                 "layout none)");
        rm_tree(f.dir, "/tmp/nx-host-fake-");
}

static void test_limit_over_maximum_fails_closed(void **state)
{
        nx_host_run r = base_run("d4", "true");
        r.limits.cpu_millicores = 2000000;
        expect_prepare_error(&r, "cgroup limits required but failed to apply: CPU limit "
                                 "2000000 exceeds maximum 1024000 millicores");
}

static void test_unwritable_limit_fails_closed_without_leftovers(void **state)
{
        fake f;
        char p[512];
        fake_init(&f, "39 31 0:36 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n");
        (void)str_printf(p, sizeof(p), "%s/sys", f.dir);
        (void)mkdir(p, 0755);
        (void)str_printf(p, sizeof(p), "%s/sys/fs", f.dir);
        (void)mkdir(p, 0755);
        (void)str_printf(p, sizeof(p), "%s/sys/fs/cgroup", f.dir);
        (void)mkdir(p, 0755);
        (void)str_printf(p, sizeof(p), "%s/sys/fs/cgroup/pids", f.dir);
        (void)mkdir(p, 0755);
        nx_host_run r = base_run("d5", "true");
        nx_host_prepared prep;
        err_t err = ERR_INIT;
        r.cgroup_sys = &f.sys;
        r.limits.pids_max = 50;
        assert_int_equal(nx_host_prepare(&r, &prep, &err), -1);
        assert_true(str_has_prefix(err.msg, "cgroup limits required but failed to apply: "
                                             "pids limit: open "));
        (void)str_printf(p, sizeof(p), "%s/sys/fs/cgroup/pids/nexusd/d5", f.dir);
        assert_false(path_exists(p));
        rm_tree(f.dir, "/tmp/nx-host-fake-");
}

static void test_no_limits_without_cgroups_runs_untracked(void **state)
{
        fake f;
        fake_init(&f, "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n");
        nx_host_run r = base_run("d6", "echo untracked");
        nx_host_prepared prep;
        result res;
        err_t err = ERR_INIT;

        r.cgroup_sys = &f.sys;
        assert_int_equal(nx_host_prepare(&r, &prep, &err), 0);
        assert_int_equal(prep.req.n_cgroup_joins, 0);
        run_prepared(&prep, &res);
        assert_string_equal(res.out, "untracked\n");
        assert_int_equal(nx_host_prepared_free(&prep, &err), 0);
        rm_tree(f.dir, "/tmp/nx-host-fake-");
}

static void test_unreadable_mountinfo_without_limits_still_runs(void **state)
{
        nx_cgroup_sys sys = { "/nonexistent/mountinfo", NULL, NULL };
        nx_host_run r = base_run("d7", "exit 0");
        nx_host_prepared prep;
        result res;
        err_t err = ERR_INIT;

        r.cgroup_sys = &sys;
        assert_int_equal(nx_host_prepare(&r, &prep, &err), 0);
        assert_null(prep.cgroup);
        run_prepared(&prep, &res);
        assert_int_equal(res.exit_code, 0);
        assert_int_equal(nx_host_prepared_free(&prep, &err), 0);
}

/* ---- real runs ---- */

/* spec nexus §12 #111, #114, #117 (exit 3 → 3; directive env visible; nothing else of the
 * parent leaks) */
static void test_run_uses_given_environment_and_exit_code(void **state)
{
        char id[64];
        next_id(id, sizeof(id));
        nx_host_run r = base_run(id, "echo \"$NX_TEST_VAR\"; env | wc -l; echo err >&2; exit 3");
        nx_host_prepared prep;
        result res;
        err_t err = ERR_INIT;

        assert_int_equal(nx_host_prepare(&r, &prep, &err), 0);
        run_prepared(&prep, &res);
        /* sh adds PWD itself; nothing of the test process's environment leaks in */
        assert_string_equal(res.out, "value with spaces\n3\n");
        assert_string_equal(res.err, "err\n");
        assert_int_equal(res.exit_code, 3);
        assert_int_equal(nx_host_prepared_free(&prep, &err), 0);
}

static void test_run_happens_in_resolved_cwd(void **state)
{
        char id[64], want[256];
        next_id(id, sizeof(id));
        nx_host_run r = base_run(id, "pwd");
        nx_host_prepared prep;
        result res;
        err_t err = ERR_INIT;

        r.cwd = "/workspace/sub";
        assert_int_equal(nx_host_prepare(&r, &prep, &err), 0);
        run_prepared(&prep, &res);
        (void)str_printf(want, sizeof(want), "%s/sub\n", facility);
        assert_string_equal(res.out, want);
        assert_int_equal(nx_host_prepared_free(&prep, &err), 0);
}

static void test_real_limits_applied_and_command_inside_cgroup(void **state)
{
        if (!real_cgroups())
                SKIP_BECAUSE("needs root and a cgroup filesystem");
        nx_cgroup_caps caps;
        err_t err = ERR_INIT;
        assert_int_equal(nx_cgroup_capabilities(&real_sys, &caps, &err), 0);
        if (!caps.memory)
                SKIP_BECAUSE("no enforceable memory limit: %s", caps.summary);
        char id[64], want[128];
        next_id(id, sizeof(id));
        nx_host_run r = base_run(id, "cat /proc/self/cgroup");
        nx_host_prepared prep;
        result res;

        r.limits.memory_mb = 64;
        assert_int_equal(nx_host_prepare(&r, &prep, &err), 0);
        assert_non_null(prep.cgroup);
        assert_true(prep.req.n_cgroup_joins > 0);
        char memdir[NX_CGROUP_PATH_MAX];
        (void)str_copy(memdir, sizeof(memdir), nx_cgroup_dir(prep.cgroup, NX_CGROUP_MEMORY));
        run_prepared(&prep, &res);
        (void)str_printf(want, sizeof(want), "/%s/%s\n", test_base, id);
        assert_non_null(strstr(res.out, want));
        assert_true(path_exists(memdir));
        assert_int_equal(nx_host_prepared_free(&prep, &err), 0);
        assert_false(path_exists(memdir));
}

static void test_real_kill_tree_reaches_daemonised_descendant(void **state)
{
        if (!real_cgroups())
                SKIP_BECAUSE("needs root and a cgroup filesystem");
        char id[64];
        next_id(id, sizeof(id));
        nx_host_run r = base_run(id, "setsid sh -c 'sleep 100 & echo $!' </dev/null "
                                     "2>/dev/null; sleep 100");
        nx_host_prepared prep;
        nx_child c;
        err_t err = ERR_INIT;
        char buf[32];
        size_t len = 0;

        assert_int_equal(nx_host_prepare(&r, &prep, &err), 0);
        assert_int_equal(nx_spawn(&prep.req, &c, &err), 0);
        while (len == 0 || buf[len - 1] != '\n') {
                struct pollfd p = { c.stdout_fd, POLLIN, 0 };
                assert_true(poll(&p, 1, 30000) > 0);
                ssize_t n = read(c.stdout_fd, buf + len, sizeof(buf) - 1 - len);
                if (n < 0 && errno == EAGAIN)
                        continue;
                assert_true(n > 0);
                len += (size_t)n;
        }
        buf[len - 1] = '\0';
        pid_t d = (pid_t)strtol(buf, NULL, 10);
        assert_true(d > 1);
        assert_int_equal(kill(d, 0), 0);
        assert_int_equal(nx_child_kill_tree(&c, prep.cgroup, SIGKILL, &err), 0);
        assert_int_equal(reap_bounded(&c), 1);
        assert_int_equal(nx_wait_status_to_exit_code(c.wait_status), 137);
        assert_int_equal(nx_cgroup_wait_empty(prep.cgroup, 10000, &err), 0);
        /* the daemon was re-parented to us (subreaper): reap it to prove it died */
        int st = 0;
        pid_t got = 0;
        for (int i = 0; i < 5000 && (got = waitpid(d, &st, WNOHANG)) == 0; i++) {
                struct timespec ts = { 0, 2000000 };
                nanosleep(&ts, NULL);
        }
        assert_int_equal(got, d);
        assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
        nx_child_close(&c);
        assert_int_equal(nx_host_prepared_free(&prep, &err), 0);
}

/* ---- setup ---- */

/* Removes every directive directory a failed case left under the test base (killing what is
 * inside first), then the base itself. Runs after every case. */
static void sweep_test_base(const nx_cgroup_sys *sys)
{
        nx_cgroup_mounts m;
        err_t err = ERR_INIT;

        if (nx_cgroup_detect(sys, &m, &err) < 0)
                return;
        for (int h = -1; h < NX_CGROUP_CTRL_COUNT; h++) {
                const char *mnt = h < 0 ? m.v2 : m.v1[h];
                char base[NX_CGROUP_PATH_MAX], dir[NX_CGROUP_PATH_MAX], file[NX_CGROUP_PATH_MAX];
                if (!mnt[0] || str_printf(base, sizeof(base), "%s/%s", mnt, sys->base) < 0)
                        continue;
                DIR *d = opendir(base);
                if (!d)
                        continue;
                for (struct dirent *e = readdir(d); e; e = readdir(d)) {
                        if (e->d_type != DT_DIR || e->d_name[0] == '.' ||
                            str_printf(dir, sizeof(dir), "%s/%s", base, e->d_name) < 0)
                                continue;
                        for (int i = 0; i < 500 && rmdir(dir) < 0 && errno == EBUSY; i++) {
                                (void)str_printf(file, sizeof(file), "%s/cgroup.procs", dir);
                                FILE *f = fopen(file, "re");
                                long pid;
                                while (f && fscanf(f, "%ld", &pid) == 1)
                                        if (pid > 1 && pid != (long)getpid())
                                                (void)kill((pid_t)pid, SIGKILL);
                                if (f)
                                        fclose(f);
                                struct timespec ts = { 0, 2000000 };
                                nanosleep(&ts, NULL);
                        }
                }
                closedir(d);
                (void)rmdir(base);
        }
}

/* Reaps every child (orphans come to us) until none is left, bounded. */
static bool all_descendants_gone(void)
{
        for (int i = 0; i < 5000; i++) {
                int st;
                pid_t r = waitpid(-1, &st, WNOHANG);
                if (r < 0 && errno == ECHILD)
                        return true;
                if (r == 0) {
                        struct timespec ts = { 0, 2000000 };
                        nanosleep(&ts, NULL);
                }
        }
        return false;
}

static int teardown_reap(void **state)
{
        char path[64], buf[4096];

        for (int round = 0; round < 100; round++) {
                (void)str_printf(path, sizeof(path), "/proc/self/task/%ld/children",
                                 (long)getpid());
                int fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        break;
                ssize_t n = read(fd, buf, sizeof(buf) - 1);
                close(fd);
                if (n <= 0)
                        break;
                buf[n] = '\0';
                for (char *p = buf; *p;) {
                        char *end;
                        long v = strtol(p, &end, 10);
                        if (end == p)
                                break;
                        if (v > 1)
                                (void)kill((pid_t)v, SIGKILL);
                        p = end;
                        while (*p == ' ' || *p == '\n')
                                p++;
                }
                (void)all_descendants_gone();
        }
        return 0;
}

static int teardown_case(void **state)
{
        (void)teardown_reap(state);
        if (geteuid() == 0)
                sweep_test_base(&real_sys);
        return 0;
}

static int group_setup(void **state)
{
        char p[256];

        (void)str_copy(facility, sizeof(facility), "/tmp/nx-host-facility-XXXXXX");
        if (!mkdtemp(facility))
                return -1;
        (void)str_printf(p, sizeof(p), "%s/sub", facility);
        if (mkdir(p, 0755) < 0)
                return -1;
        (void)str_printf(p, sizeof(p), "%s/file", facility);
        write_text(p, "x");
        (void)str_printf(test_base, sizeof(test_base), "nexusd-test-host-%ld", (long)getpid());
        real_sys = (nx_cgroup_sys){ NULL, NULL, test_base };
        std_env[0] = strdup("PATH=/usr/bin:/bin");
        std_env[1] = strdup("NX_TEST_VAR=value with spaces");
        return std_env[0] && std_env[1] ? 0 : -1;
}

static int group_teardown(void **state)
{
        (void)teardown_case(state);
        nx_cgroup_remove_base(&real_sys);
        rm_tree(facility, "/tmp/nx-host-facility-");
        FREE_AND_NULL(std_env[0]);
        FREE_AND_NULL(std_env[1]);
        return 0;
}

#define T(f) cmocka_unit_test_teardown(f, teardown_case)

int main(void)
{
        (void)prctl(PR_SET_CHILD_SUBREAPER, 1);
        const struct CMUnitTest tests[] = {
                T(test_refused_unless_host_profile_enabled),
                T(test_refusal_code_is_forbidden),
                T(test_empty_command_refused),
                T(test_absolute_cwd_outside_workspace_refused),
                T(test_escaping_cwds_refused),
                T(test_empty_facility_refused),
                T(test_relative_facility_refused),
                T(test_missing_cwd_directory_refused),
                T(test_cwd_that_is_a_file_refused),
                T(test_invalid_directive_id_refused),
                T(test_default_shell_is_bin_sh_dash_c),
                T(test_configured_shell_is_used),
                T(test_workspace_cwds_resolve_under_facility),
                T(test_health_is_always_healthy_host),
                T(test_prepared_free_is_idempotent),
                T(test_memory_limit_without_controller_fails_closed),
                T(test_cpu_limit_without_cgroups_fails_closed),
                T(test_limit_over_maximum_fails_closed),
                T(test_unwritable_limit_fails_closed_without_leftovers),
                T(test_no_limits_without_cgroups_runs_untracked),
                T(test_unreadable_mountinfo_without_limits_still_runs),
                T(test_run_uses_given_environment_and_exit_code),
                T(test_run_happens_in_resolved_cwd),
                T(test_real_limits_applied_and_command_inside_cgroup),
                T(test_real_kill_tree_reaches_daemonised_descendant),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
