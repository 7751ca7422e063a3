/* tests/unit/test_nx_cgroup.c — sandbox/cgroup: layout detection (fake mountinfo + fake
 * trees), validation (§6.6), fail-closed limits, and on the real machine: limits written,
 * join before exec, tree-kill (cgroup.kill and v1 freezer), OOM detection, pids containment,
 * cleanup. Real-cgroup cases need root and SKIP naming the missing feature otherwise. The test
 * process is a child subreaper; every case kills, reaps and removes what it created. */
#include "testutil.h"
#include "sandbox/cgroup.h"
#include "sandbox/proctree.h"

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

#include "core/str.h"

#define WAIT_STEPS 5000
#define STEP_NS (2 * 1000 * 1000)

static char test_base[64];          /* "nexusd-test-<pid>": never the daemon's own base */
static nx_cgroup_sys real_sys;
static nx_cgroup_caps real_caps;
static bool real_usable;
static char real_why[256];
static unsigned id_seq;

/* ---- helpers ---- */

static void step_sleep(void)
{
        struct timespec ts = { 0, STEP_NS };
        nanosleep(&ts, NULL);
}

static char **vec(const char *first, ...)
{
        va_list ap;
        size_t n = 0;
        char **v = calloc(32, sizeof(*v));

        assert_non_null(v);
        va_start(ap, first);
        for (const char *s = first; s && n < 31; s = va_arg(ap, const char *)) {
                v[n] = strdup(s);
                assert_non_null(v[n]);
                n++;
        }
        va_end(ap);
        return v;
}

static void vec_free(char **v)
{
        for (size_t i = 0; v && v[i]; i++)
                free(v[i]);
        free(v);
}

static void next_id(char *id, size_t sz)
{
        (void)str_printf(id, sz, "t%ld-%u", (long)getpid(), ++id_seq);
}

static bool path_exists(const char *p)
{
        struct stat st;
        return stat(p, &st) == 0;
}

static void read_file(const char *dir, const char *name, char *buf, size_t cap)
{
        char path[NX_CGROUP_PATH_MAX];
        assert_true(str_printf(path, sizeof(path), "%s/%s", dir, name) > 0);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        ssize_t n = read(fd, buf, cap - 1);
        close(fd);
        assert_true(n >= 0);
        buf[n] = '\0';
}

static int64_t keyed(const char *dir, const char *file, const char *key)
{
        char text[4096];
        read_file(dir, file, text, sizeof(text));
        char *save = NULL;
        for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                size_t k = strlen(key);
                if (strncmp(line, key, k) == 0 && line[k] == ' ')
                        return strtoll(line + k + 1, NULL, 10);
        }
        return -1;
}

static void write_text(const char *path, const char *text)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
}

static void mkdir_p(const char *path)
{
        char tmp[NX_CGROUP_PATH_MAX];
        assert_int_equal(str_copy(tmp, sizeof(tmp), path), 0);
        for (char *p = tmp + 1; *p; p++) {
                if (*p == '/') {
                        *p = '\0';
                        (void)mkdir(tmp, 0755);
                        *p = '/';
                }
        }
        (void)mkdir(tmp, 0755);
}

/* A fake system: <dir>/mountinfo with the given lines, mount points created under <dir>. */
typedef struct fake {
        char dir[128];
        char mountinfo[160];
        nx_cgroup_sys sys;
} fake;

static void fake_init(fake *f, const char *mountinfo_text)
{
        (void)str_copy(f->dir, sizeof(f->dir), "/tmp/nx-cgroup-fake-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        (void)str_printf(f->mountinfo, sizeof(f->mountinfo), "%s/mountinfo", f->dir);
        write_text(f->mountinfo, mountinfo_text);
        f->sys = (nx_cgroup_sys){ f->mountinfo, f->dir, NULL };
}

static void fake_mount(fake *f, const char *mnt)
{
        char p[NX_CGROUP_PATH_MAX];
        (void)str_printf(p, sizeof(p), "%s%s", f->dir, mnt);
        mkdir_p(p);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        return remove(path) < 0 ? 0 : 0;
}

static void fake_free(fake *f)
{
        /* only ever our own mkdtemp directory under /tmp */
        if (str_has_prefix(f->dir, "/tmp/nx-cgroup-fake-"))
                (void)nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#define MI_TMPFS "31 23 0:28 / /sys/fs/cgroup rw,relatime shared:9 - tmpfs tmpfs rw,mode=755\n"
#define MI_CPU "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime shared:10 - cgroup cgroup rw,cpu\n"
#define MI_MEM "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
#define MI_FRZ "37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer\n"
#define MI_PIDS "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
#define MI_SYSD "40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n"
#define MI_V2U "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
#define MI_V2 "30 23 0:27 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
#define MI_ROOT "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"

typedef struct spawned {
        nx_child child;
        char **argv;
        char **envp;
} spawned;

static void spawn_in(nx_cgroup *cg, const char *script, spawned *s)
{
        nx_spawn_req req;
        err_t err = ERR_INIT;

        memset(&req, 0, sizeof(req));
        s->argv = vec("/bin/sh", "-c", script, NULL);
        s->envp = vec("PATH=/usr/bin:/bin", NULL);
        req.argv = s->argv;
        req.envp = s->envp;
        req.cwd = "/";
        req.new_session = true;
        req.cgroup_joins = nx_cgroup_joins(cg, &req.n_cgroup_joins);
        if (nx_spawn(&req, &s->child, &err) < 0)
                fail_msg("spawn: %s", err.msg);
}

static void spawned_done(spawned *s, nx_cgroup *cg)
{
        err_t err = ERR_INIT;
        if (s->child.pid > 0 && !s->child.reaped) {
                (void)nx_child_kill_tree(&s->child, cg, SIGKILL, &err);
                (void)nx_child_reap(&s->child, true, &err);
        }
        nx_child_close(&s->child);
        vec_free(s->argv);
        vec_free(s->envp);
        s->argv = s->envp = NULL;
}

/* Reads one line with a pid from the child's stdout. */
static pid_t read_pid(nx_child *c)
{
        char buf[64];
        size_t len = 0;

        for (;;) {
                struct pollfd p = { c->stdout_fd, POLLIN, 0 };
                assert_true(poll(&p, 1, 30000) > 0);
                ssize_t r = read(c->stdout_fd, buf + len, 1);
                if (r < 0 && errno == EAGAIN)
                        continue;
                assert_int_equal(r, 1);
                if (buf[len] == '\n')
                        break;
                assert_true(++len < sizeof(buf) - 1);
        }
        buf[len] = '\0';
        int64_t v;
        assert_int_equal(str_to_int64(buf, 2, INT32_MAX, &v), 0);
        return (pid_t)v;
}

static bool all_descendants_gone(void)
{
        for (int i = 0; i < WAIT_STEPS; i++) {
                int st;
                pid_t r = waitpid(-1, &st, WNOHANG);
                if (r < 0 && errno == ECHILD)
                        return true;
                if (r == 0)
                        step_sleep();
        }
        return false;
}

static bool process_running(pid_t pid)
{
        char path[64], stat[512];
        int fd;
        ssize_t n;

        if (kill(pid, 0) < 0)
                return false;
        (void)str_printf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        n = read(fd, stat, sizeof(stat) - 1);
        close(fd);
        if (n <= 0)
                return false;
        stat[n] = '\0';
        const char *rp = strrchr(stat, ')');
        return rp && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
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

#define REQUIRE_REAL() do { \
        if (!real_usable) \
                SKIP_BECAUSE("%s", real_why); \
} while (0)

/* ---- names and validation ---- */

static void test_layout_and_controller_names(void **state)
{
        assert_string_equal(nx_cgroup_layout_name(NX_CGROUP_LAYOUT_HYBRID), "hybrid");
        assert_string_equal(nx_cgroup_layout_name(NX_CGROUP_LAYOUT_V2), "v2");
        assert_string_equal(nx_cgroup_layout_name(NX_CGROUP_LAYOUT_V1), "v1");
        assert_string_equal(nx_cgroup_layout_name(NX_CGROUP_LAYOUT_NONE), "none");
        assert_string_equal(nx_cgroup_ctrl_name(NX_CGROUP_MEMORY), "memory");
        assert_string_equal(nx_cgroup_ctrl_name(NX_CGROUP_FREEZER), "freezer");
        assert_string_equal(nx_cgroup_ctrl_name(NX_CGROUP_CTRL_COUNT), "unknown");
}

static void test_valid_directive_ids_accepted(void **state)
{
        const char *ok[] = { "0195f3c2-7a1b-7cde-8f00-123456789abc", "a", "A.b_c-d", "9" };
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                err_t err = ERR_INIT;
                assert_int_equal(nx_cgroup_validate_id(ok[i], &err), 0);
        }
}

/* spec nexus §12 #107 */
static void test_invalid_directive_ids_refused_with_message(void **state)
{
        const char *bad[] = { "", "../x", ".hidden", "-a", "_a", "a/b", " a", "a b", "a\n",
                              "é" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                err_t err = ERR_INIT;
                assert_int_equal(nx_cgroup_validate_id(bad[i], &err), -1);
                assert_true(str_has_prefix(err.msg, "invalid directive ID for cgroup: \""));
        }
        err_t err = ERR_INIT;
        nx_cgroup_validate_id("../x", &err);
        assert_string_equal(err.msg, "invalid directive ID for cgroup: \"../x\"");
}

static void test_overlong_directive_id_refused(void **state)
{
        char id[NX_CGROUP_ID_MAX + 2];
        err_t err = ERR_INIT;
        memset(id, 'a', sizeof(id) - 1);
        id[sizeof(id) - 1] = '\0';
        assert_int_equal(nx_cgroup_validate_id(id, &err), -1);
        id[NX_CGROUP_ID_MAX] = '\0';
        assert_int_equal(nx_cgroup_validate_id(id, &err), 0);
}

/* spec nexus §12 #108 */
static void test_cpu_over_maximum_refused(void **state)
{
        nx_cgroup_limits l = { 0, 1024001, 0 };
        err_t err = ERR_INIT;
        assert_int_equal(nx_cgroup_validate_limits(&l, &err), -1);
        assert_string_equal(err.msg, "CPU limit 1024001 exceeds maximum 1024000 millicores");
        l.cpu_millicores = 1024000;
        assert_int_equal(nx_cgroup_validate_limits(&l, &err), 0);
}

/* spec nexus §12 #108 */
static void test_memory_over_maximum_refused(void **state)
{
        nx_cgroup_limits l = { 1048577, 0, 0 };
        err_t err = ERR_INIT;
        assert_int_equal(nx_cgroup_validate_limits(&l, &err), -1);
        assert_string_equal(err.msg, "memory limit 1048577 MB exceeds maximum 1048576 MB");
}

static void test_pids_over_maximum_refused(void **state)
{
        nx_cgroup_limits l = { 0, 0, NX_CGROUP_PIDS_MAX + 1 };
        err_t err = ERR_INIT;
        assert_int_equal(nx_cgroup_validate_limits(&l, &err), -1);
        assert_non_null(strstr(err.msg, "pids limit"));
}

static void test_cpu_quota_follows_spec_vectors(void **state)
{
        /* §6.6: 1000 m → 100000, 500 m → 50000, 5 m → minimum 1000 */
        assert_int_equal(nx_cgroup_cpu_quota(1000), 100000);
        assert_int_equal(nx_cgroup_cpu_quota(500), 50000);
        assert_int_equal(nx_cgroup_cpu_quota(5), 1000);
        assert_int_equal(nx_cgroup_cpu_quota(10), 1000);
        assert_int_equal(nx_cgroup_cpu_quota(2500), 250000);
        assert_int_equal(nx_cgroup_cpu_quota(0), 0);
        assert_int_equal(nx_cgroup_cpu_quota(-5), 0);
}

/* ---- detection ---- */

static void test_detect_hybrid_layout(void **state)
{
        fake f;
        nx_cgroup_mounts m;
        err_t err = ERR_INIT;
        char want[NX_CGROUP_PATH_MAX];

        fake_init(&f, MI_ROOT MI_TMPFS MI_CPU MI_MEM MI_FRZ MI_PIDS MI_SYSD MI_V2U);
        fake_mount(&f, "/sys/fs/cgroup/unified");
        assert_int_equal(nx_cgroup_detect(&f.sys, &m, &err), 0);
        assert_int_equal(m.layout, NX_CGROUP_LAYOUT_HYBRID);
        (void)str_printf(want, sizeof(want), "%s/sys/fs/cgroup/unified", f.dir);
        assert_string_equal(m.v2, want);
        (void)str_printf(want, sizeof(want), "%s/sys/fs/cgroup/memory", f.dir);
        assert_string_equal(m.v1[NX_CGROUP_MEMORY], want);
        (void)str_printf(want, sizeof(want), "%s/sys/fs/cgroup/freezer", f.dir);
        assert_string_equal(m.v1[NX_CGROUP_FREEZER], want);
        for (int c = 0; c < NX_CGROUP_CTRL_COUNT; c++)
                assert_false(m.v2_ctrl[c]);
        fake_free(&f);
}

/* doctor warns when the cgroup2 mount lacks favordynmods (each join then waits an RCU
 * grace period): detection reads it from the super options, not the mount options. */
static void test_detect_reports_favordynmods_of_the_v2_mount(void **state)
{
        fake f;
        nx_cgroup_mounts m;
        err_t err = ERR_INIT;

        fake_init(&f, MI_ROOT MI_V2U);
        fake_mount(&f, "/sys/fs/cgroup/unified");
        assert_int_equal(nx_cgroup_detect(&f.sys, &m, &err), 0);
        assert_false(m.v2_favordynmods);
        fake_free(&f);
        fake_init(&f, MI_ROOT "41 31 0:38 / /sys/fs/cgroup/unified rw,favordynmods - cgroup2 "
                              "cgroup2 rw\n");
        fake_mount(&f, "/sys/fs/cgroup/unified");
        assert_int_equal(nx_cgroup_detect(&f.sys, &m, &err), 0);
        assert_false(m.v2_favordynmods);   /* a mount option of that name is not it */
        fake_free(&f);
        fake_init(&f, MI_ROOT "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 "
                              "cgroup2 rw,nsdelegate,favordynmods\n");
        fake_mount(&f, "/sys/fs/cgroup/unified");
        assert_int_equal(nx_cgroup_detect(&f.sys, &m, &err), 0);
        assert_true(m.v2_favordynmods);
        fake_free(&f);
}

static void test_detect_pure_v2_reads_subtree_control(void **state)
{
        fake f;
        nx_cgroup_mounts m;
        err_t err = ERR_INIT;
        char p[NX_CGROUP_PATH_MAX];

        fake_init(&f, MI_ROOT MI_V2);
        fake_mount(&f, "/sys/fs/cgroup");
        (void)str_printf(p, sizeof(p), "%s/sys/fs/cgroup/cgroup.subtree_control", f.dir);
        write_text(p, "cpuset cpu io memory pids\n");
        assert_int_equal(nx_cgroup_detect(&f.sys, &m, &err), 0);
        assert_int_equal(m.layout, NX_CGROUP_LAYOUT_V2);
        assert_true(m.v2_ctrl[NX_CGROUP_MEMORY]);
        assert_true(m.v2_ctrl[NX_CGROUP_CPU]);
        assert_true(m.v2_ctrl[NX_CGROUP_PIDS]);
        assert_false(m.v2_ctrl[NX_CGROUP_FREEZER]);
        assert_string_equal(m.v1[NX_CGROUP_MEMORY], "");
        fake_free(&f);
}

static void test_detect_v2_without_enabled_controllers(void **state)
{
        fake f;
        nx_cgroup_mounts m;
        err_t err = ERR_INIT;
        char p[NX_CGROUP_PATH_MAX];

        fake_init(&f, MI_V2);
        fake_mount(&f, "/sys/fs/cgroup");
        (void)str_printf(p, sizeof(p), "%s/sys/fs/cgroup/cgroup.subtree_control", f.dir);
        write_text(p, "cpuset io\n");   /* "cpu" must not match "cpuset" */
        assert_int_equal(nx_cgroup_detect(&f.sys, &m, &err), 0);
        assert_int_equal(m.layout, NX_CGROUP_LAYOUT_V2);
        assert_false(m.v2_ctrl[NX_CGROUP_CPU]);
        assert_false(m.v2_ctrl[NX_CGROUP_MEMORY]);
        fake_free(&f);
}

static void test_detect_pure_v1(void **state)
{
        fake f;
        nx_cgroup_mounts m;
        err_t err = ERR_INIT;

        fake_init(&f, MI_TMPFS MI_MEM MI_PIDS MI_SYSD);
        assert_int_equal(nx_cgroup_detect(&f.sys, &m, &err), 0);
        assert_int_equal(m.layout, NX_CGROUP_LAYOUT_V1);
        assert_string_equal(m.v2, "");
        assert_string_equal(m.v1[NX_CGROUP_CPU], "");
        assert_true(str_has_suffix(m.v1[NX_CGROUP_PIDS], "/sys/fs/cgroup/pids"));
        fake_free(&f);
}

static void test_detect_none_when_no_cgroup_filesystem(void **state)
{
        fake f;
        nx_cgroup_mounts m;
        err_t err = ERR_INIT;

        fake_init(&f, MI_ROOT MI_TMPFS MI_SYSD);
        assert_int_equal(nx_cgroup_detect(&f.sys, &m, &err), 0);
        assert_int_equal(m.layout, NX_CGROUP_LAYOUT_NONE);
        fake_free(&f);
}

static void test_detect_comounted_cpu_cpuacct(void **state)
{
        fake f;
        nx_cgroup_mounts m;
        err_t err = ERR_INIT;

        fake_init(&f, "33 31 0:30 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup "
                      "rw,cpu,cpuacct\n");
        assert_int_equal(nx_cgroup_detect(&f.sys, &m, &err), 0);
        assert_true(str_has_suffix(m.v1[NX_CGROUP_CPU], "/sys/fs/cgroup/cpu,cpuacct"));
        assert_int_equal(m.layout, NX_CGROUP_LAYOUT_V1);
        fake_free(&f);
}

static void test_detect_decodes_escaped_mount_point(void **state)
{
        fake f;
        nx_cgroup_mounts m;
        err_t err = ERR_INIT;

        fake_init(&f, "39 31 0:36 / /cg\\040dir/pids rw - cgroup cgroup rw,pids\n");
        assert_int_equal(nx_cgroup_detect(&f.sys, &m, &err), 0);
        assert_true(str_has_suffix(m.v1[NX_CGROUP_PIDS], "/cg dir/pids"));
        fake_free(&f);
}

static void test_detect_unreadable_mountinfo_is_error(void **state)
{
        nx_cgroup_sys sys = { "/nonexistent/mountinfo", NULL, NULL };
        nx_cgroup_mounts m;
        err_t err = ERR_INIT;

        assert_int_equal(nx_cgroup_detect(&sys, &m, &err), -1);
        assert_string_equal(err.msg, "open /nonexistent/mountinfo: No such file or directory");
}

/* ---- fail closed (fake trees) ---- */

static void expect_fail_closed(const char *mi, const nx_cgroup_limits *lim, const char *want)
{
        fake f;
        nx_cgroup *cg = (nx_cgroup *)&f;   /* must be reset to NULL */
        err_t err = ERR_INIT;

        fake_init(&f, mi);
        fake_mount(&f, "/sys/fs/cgroup/unified");
        fake_mount(&f, "/sys/fs/cgroup/pids");
        assert_int_equal(nx_cgroup_create(&f.sys, "d1", lim, &cg, &err), -1);
        assert_null(cg);
        assert_string_equal(err.msg, want);
        fake_free(&f);
}

static void test_memory_limit_without_memory_controller_fails_closed(void **state)
{
        nx_cgroup_limits lim = { 64, 0, 0 };
        expect_fail_closed(MI_TMPFS MI_CPU MI_PIDS MI_V2U, &lim,
                           "memory limit requested but no memory controller is available "
                           "(cgroup layout hybrid)");
}

static void test_cpu_limit_without_cpu_controller_fails_closed(void **state)
{
        nx_cgroup_limits lim = { 0, 500, 0 };
        expect_fail_closed(MI_TMPFS MI_MEM MI_PIDS MI_V2U, &lim,
                           "cpu limit requested but no cpu controller is available "
                           "(cgroup layout hybrid)");
}

static void test_pids_limit_without_pids_controller_fails_closed(void **state)
{
        nx_cgroup_limits lim = { 0, 0, 100 };
        expect_fail_closed(MI_TMPFS MI_MEM MI_V2U, &lim,
                           "pids limit requested but no pids controller is available "
                           "(cgroup layout hybrid)");
}

static void test_limit_on_v2_with_controller_not_enabled_fails_closed(void **state)
{
        nx_cgroup_limits lim = { 64, 0, 0 };
        expect_fail_closed(MI_V2, &lim,
                           "memory limit requested but no memory controller is available "
                           "(cgroup layout v2)");
}

static void test_limit_without_any_cgroup_fails_closed(void **state)
{
        nx_cgroup_limits lim = { 0, 1000, 0 };
        expect_fail_closed(MI_ROOT, &lim,
                           "cpu limit requested but no cpu controller is available "
                           "(cgroup layout none)");
}

static void test_unenforceable_limit_leaves_no_directory(void **state)
{
        /* a plain directory stands in for the pids hierarchy: mkdir works, the control
         * files are missing, so the requested limit cannot be enforced */
        fake f;
        nx_cgroup *cg = NULL;
        nx_cgroup_limits lim = { 0, 0, 100 };
        err_t err = ERR_INIT;
        char p[NX_CGROUP_PATH_MAX];

        fake_init(&f, MI_TMPFS MI_PIDS);
        fake_mount(&f, "/sys/fs/cgroup/pids");
        assert_int_equal(nx_cgroup_create(&f.sys, "d2", &lim, &cg, &err), -1);
        assert_null(cg);
        assert_true(str_has_prefix(err.msg, "pids limit: open "));
        assert_non_null(strstr(err.msg, "/nexusd/d2/cgroup.procs: No such file or directory"));
        (void)str_printf(p, sizeof(p), "%s/sys/fs/cgroup/pids/nexusd/d2", f.dir);
        assert_false(path_exists(p));
        fake_free(&f);
}

/* pure v2: the base's cgroup.subtree_control is where we enable a controller for the
 * directive's cgroup; when that is impossible a requested limit fails closed */
static void test_v2_controller_that_cannot_be_enabled_fails_closed(void **state)
{
        fake f;
        nx_cgroup *cg = NULL;
        nx_cgroup_limits lim = { 64, 0, 0 };
        err_t err = ERR_INIT;
        char p[NX_CGROUP_PATH_MAX];

        fake_init(&f, MI_V2);
        fake_mount(&f, "/sys/fs/cgroup");
        (void)str_printf(p, sizeof(p), "%s/sys/fs/cgroup/cgroup.subtree_control", f.dir);
        write_text(p, "cpu memory pids\n");
        assert_int_equal(nx_cgroup_create(&f.sys, "d6", &lim, &cg, &err), -1);
        assert_null(cg);
        assert_true(str_has_prefix(err.msg, "enable memory controller: open "));
        assert_non_null(strstr(err.msg, "/sys/fs/cgroup/nexusd/cgroup.subtree_control"));
        (void)str_printf(p, sizeof(p), "%s/sys/fs/cgroup/nexusd/d6", f.dir);
        assert_false(path_exists(p));
        fake_free(&f);
}

static void test_capabilities_without_cgroups_say_none(void **state)
{
        fake f;
        nx_cgroup_caps caps;
        err_t err = ERR_INIT;

        fake_init(&f, MI_ROOT);
        assert_int_equal(nx_cgroup_capabilities(&f.sys, &caps, &err), 0);
        assert_int_equal(caps.layout, NX_CGROUP_LAYOUT_NONE);
        assert_false(caps.memory || caps.cpu || caps.pids || caps.tree_kill);
        assert_string_equal(caps.summary,
                            "cgroup none: no limits enforceable, tree-kill by process group");
        fake_free(&f);
}

static void test_capabilities_report_failed_probe(void **state)
{
        fake f;
        nx_cgroup_caps caps;
        err_t err = ERR_INIT;

        fake_init(&f, MI_TMPFS MI_MEM MI_PIDS);
        fake_mount(&f, "/sys/fs/cgroup/memory");
        fake_mount(&f, "/sys/fs/cgroup/pids");
        assert_int_equal(nx_cgroup_capabilities(&f.sys, &caps, &err), 0);
        assert_int_equal(caps.layout, NX_CGROUP_LAYOUT_V1);
        assert_false(caps.memory);
        assert_false(caps.pids);
        assert_true(str_has_prefix(caps.summary, "cgroup v1: memory=no"));
        assert_non_null(strstr(caps.summary, "first-error="));
        fake_free(&f);
}

/* spec nexus §12 #104 (REF differs: with cgroups present we still create a tracking cgroup
 * for tree kill; without them, no cgroup and no error) */
static void test_no_limits_and_no_cgroups_gives_empty_tracking(void **state)
{
        fake f;
        nx_cgroup *cg = NULL;
        err_t err = ERR_INIT;
        size_t n = 99;

        fake_init(&f, MI_ROOT);
        assert_int_equal(nx_cgroup_create(&f.sys, "d3", NULL, &cg, &err), 0);
        assert_non_null(cg);
        assert_null(nx_cgroup_joins(cg, &n));
        assert_int_equal(n, 0);
        assert_false(nx_cgroup_can_kill(cg));
        assert_null(nx_cgroup_dir(cg, NX_CGROUP_CTRL_COUNT));
        bool pop = true;
        assert_int_equal(nx_cgroup_populated(cg, &pop, &err), 0);
        assert_false(pop);
        assert_int_equal(nx_cgroup_destroy(&cg, &err), 0);
        assert_null(cg);
        fake_free(&f);
}

/* spec nexus §12 #104 */
static void test_no_limits_with_broken_v2_is_best_effort(void **state)
{
        fake f;
        nx_cgroup *cg = NULL;
        err_t err = ERR_INIT;
        size_t n = 99;
        char p[NX_CGROUP_PATH_MAX];

        fake_init(&f, MI_TMPFS MI_V2U);
        fake_mount(&f, "/sys/fs/cgroup/unified");
        assert_int_equal(nx_cgroup_create(&f.sys, "d4", NULL, &cg, &err), 0);
        (void)nx_cgroup_joins(cg, &n);
        assert_int_equal(n, 0);
        (void)str_printf(p, sizeof(p), "%s/sys/fs/cgroup/unified/nexusd/d4", f.dir);
        assert_false(path_exists(p));
        assert_int_equal(nx_cgroup_destroy(&cg, &err), 0);
        fake_free(&f);
}

/* spec nexus §12 #107 */
static void test_invalid_id_refused_before_touching_filesystem(void **state)
{
        fake f;
        nx_cgroup *cg = NULL;
        err_t err = ERR_INIT;
        char p[NX_CGROUP_PATH_MAX];

        fake_init(&f, MI_TMPFS MI_V2U);
        fake_mount(&f, "/sys/fs/cgroup/unified");
        assert_int_equal(nx_cgroup_create(&f.sys, "../../etc", NULL, &cg, &err), -1);
        assert_string_equal(err.msg, "invalid directive ID for cgroup: \"../../etc\"");
        (void)str_printf(p, sizeof(p), "%s/sys/fs/cgroup/unified/nexusd", f.dir);
        assert_false(path_exists(p));
        fake_free(&f);
}

static void test_invalid_base_refused(void **state)
{
        nx_cgroup_sys sys = { "/nonexistent", NULL, "../escape" };
        nx_cgroup *cg = NULL;
        err_t err = ERR_INIT;

        assert_int_equal(nx_cgroup_create(&sys, "d5", NULL, &cg, &err), -1);
        assert_string_equal(err.msg, "cgroup base \"../escape\" must be a relative path of "
                                     "plain names");
}

/* spec nexus §12 #106 */
static void test_destroy_null_is_noop(void **state)
{
        nx_cgroup *cg = NULL;
        err_t err = ERR_INIT;
        assert_int_equal(nx_cgroup_destroy(&cg, &err), 0);
        assert_int_equal(nx_cgroup_destroy(NULL, &err), 0);
}

/* ---- the real machine ---- */

static void test_real_create_makes_directory_in_each_hierarchy(void **state)
{
        REQUIRE_REAL();
        nx_cgroup *cg = NULL;
        nx_cgroup_limits lim = { 64, 500, 100 };
        err_t err = ERR_INIT;
        char id[64];
        size_t n = 0;

        next_id(id, sizeof(id));
        if (!real_caps.memory || !real_caps.cpu || !real_caps.pids)
                SKIP_BECAUSE("memory, cpu and pids controllers are needed: %s",
                             real_caps.summary);
        assert_int_equal(nx_cgroup_create(&real_sys, id, &lim, &cg, &err), 0);
        const nx_cgroup_join *j = nx_cgroup_joins(cg, &n);
        assert_true(n >= 1);
        for (size_t i = 0; i < n; i++) {
                assert_true(j[i].procs_fd >= 0);
                assert_true(str_has_suffix(j[i].path, id));
                assert_true(path_exists(j[i].path));
                assert_true(fcntl(j[i].procs_fd, F_GETFD) & FD_CLOEXEC);
        }
        for (int c = 0; c < NX_CGROUP_FREEZER; c++)
                assert_non_null(nx_cgroup_dir(cg, (nx_cgroup_ctrl)c));
        assert_true(nx_cgroup_can_kill(cg));
        assert_int_equal(nx_cgroup_destroy(&cg, &err), 0);
}

static void test_real_memory_limit_written_with_swap_closed(void **state)
{
        REQUIRE_REAL();
        if (!real_caps.memory)
                SKIP_BECAUSE("no memory controller: %s", real_caps.summary);
        nx_cgroup *cg = NULL;
        nx_cgroup_limits lim = { 48, 0, 0 };
        err_t err = ERR_INIT;
        char id[64], text[128];

        next_id(id, sizeof(id));
        assert_int_equal(nx_cgroup_create(&real_sys, id, &lim, &cg, &err), 0);
        const char *d = nx_cgroup_dir(cg, NX_CGROUP_MEMORY);
        assert_non_null(d);
        char p[NX_CGROUP_PATH_MAX];
        (void)str_printf(p, sizeof(p), "%s/memory.max", d);
        if (path_exists(p)) {
                read_file(d, "memory.max", text, sizeof(text));
                assert_string_equal(text, "50331648\n");
        } else {
                read_file(d, "memory.limit_in_bytes", text, sizeof(text));
                assert_string_equal(text, "50331648\n");
                (void)str_printf(p, sizeof(p), "%s/memory.memsw.limit_in_bytes", d);
                if (path_exists(p)) {
                        read_file(d, "memory.memsw.limit_in_bytes", text, sizeof(text));
                        assert_string_equal(text, "50331648\n");
                }
                read_file(d, "memory.swappiness", text, sizeof(text));
                assert_string_equal(text, "0\n");
        }
        assert_int_equal(nx_cgroup_destroy(&cg, &err), 0);
}

static void check_cpu(int64_t millicores, const char *want_quota)
{
        nx_cgroup *cg = NULL;
        nx_cgroup_limits lim = { 0, millicores, 0 };
        err_t err = ERR_INIT;
        char id[64], text[128], p[NX_CGROUP_PATH_MAX], want[64];

        next_id(id, sizeof(id));
        assert_int_equal(nx_cgroup_create(&real_sys, id, &lim, &cg, &err), 0);
        const char *d = nx_cgroup_dir(cg, NX_CGROUP_CPU);
        assert_non_null(d);
        (void)str_printf(p, sizeof(p), "%s/cpu.max", d);
        if (path_exists(p)) {
                read_file(d, "cpu.max", text, sizeof(text));
                (void)str_printf(want, sizeof(want), "%s 100000\n", want_quota);
                assert_string_equal(text, want);
        } else {
                read_file(d, "cpu.cfs_quota_us", text, sizeof(text));
                (void)str_printf(want, sizeof(want), "%s\n", want_quota);
                assert_string_equal(text, want);
                read_file(d, "cpu.cfs_period_us", text, sizeof(text));
                assert_string_equal(text, "100000\n");
        }
        assert_int_equal(nx_cgroup_destroy(&cg, &err), 0);
}

static void test_real_cpu_limit_written_500m(void **state)
{
        REQUIRE_REAL();
        if (!real_caps.cpu)
                SKIP_BECAUSE("no cpu controller: %s", real_caps.summary);
        check_cpu(500, "50000");
}

static void test_real_cpu_limit_minimum_quota_for_5m(void **state)
{
        REQUIRE_REAL();
        if (!real_caps.cpu)
                SKIP_BECAUSE("no cpu controller: %s", real_caps.summary);
        check_cpu(5, "1000");
}

static void test_real_default_pids_limit_applied(void **state)
{
        REQUIRE_REAL();
        if (!real_caps.pids)
                SKIP_BECAUSE("no pids controller: %s", real_caps.summary);
        nx_cgroup *cg = NULL;
        err_t err = ERR_INIT;
        char id[64], text[64];

        next_id(id, sizeof(id));
        assert_int_equal(nx_cgroup_create(&real_sys, id, NULL, &cg, &err), 0);
        read_file(nx_cgroup_dir(cg, NX_CGROUP_PIDS), "pids.max", text, sizeof(text));
        assert_string_equal(text, "1024\n");
        assert_int_equal(nx_cgroup_destroy(&cg, &err), 0);
}

static void test_real_explicit_pids_limit_written(void **state)
{
        REQUIRE_REAL();
        if (!real_caps.pids)
                SKIP_BECAUSE("no pids controller: %s", real_caps.summary);
        nx_cgroup *cg = NULL;
        nx_cgroup_limits lim = { 0, 0, 77 };
        err_t err = ERR_INIT;
        char id[64], text[64];

        next_id(id, sizeof(id));
        assert_int_equal(nx_cgroup_create(&real_sys, id, &lim, &cg, &err), 0);
        read_file(nx_cgroup_dir(cg, NX_CGROUP_PIDS), "pids.max", text, sizeof(text));
        assert_string_equal(text, "77\n");
        assert_int_equal(nx_cgroup_destroy(&cg, &err), 0);
}

static void test_real_destroy_removes_every_directory(void **state)
{
        REQUIRE_REAL();
        nx_cgroup *cg = NULL;
        nx_cgroup_limits lim = { real_caps.memory ? 64 : 0, real_caps.cpu ? 1000 : 0, 0 };
        err_t err = ERR_INIT;
        char id[64];
        char paths[8][NX_CGROUP_PATH_MAX];
        size_t n = 0;

        next_id(id, sizeof(id));
        assert_int_equal(nx_cgroup_create(&real_sys, id, &lim, &cg, &err), 0);
        const nx_cgroup_join *j = nx_cgroup_joins(cg, &n);
        assert_true(n > 0 && n <= 8);
        for (size_t i = 0; i < n; i++)
                (void)str_copy(paths[i], sizeof(paths[i]), j[i].path);
        spawned s = { NX_CHILD_INIT, NULL, NULL };
        spawn_in(cg, "sleep 100", &s);
        /* destroy with a live process inside: it must kill it and still remove everything */
        assert_int_equal(nx_cgroup_destroy(&cg, &err), 0);
        for (size_t i = 0; i < n; i++)
                assert_false(path_exists(paths[i]));
        assert_int_equal(reap_bounded(&s.child), 1);
        assert_int_equal(nx_wait_status_to_exit_code(s.child.wait_status), 137);
        spawned_done(&s, NULL);
}

static void test_real_stale_directory_is_replaced(void **state)
{
        REQUIRE_REAL();
        nx_cgroup *cg = NULL;
        err_t err = ERR_INIT;
        char id[64];

        next_id(id, sizeof(id));
        assert_int_equal(nx_cgroup_create(&real_sys, id, NULL, &cg, &err), 0);
        spawned s = { NX_CHILD_INIT, NULL, NULL };
        spawn_in(cg, "sleep 100", &s);
        /* a second create for the same id (a re-leased directive after a crash) takes over:
         * the old process is killed, the directory recreated empty */
        nx_cgroup *cg2 = NULL;
        assert_int_equal(nx_cgroup_create(&real_sys, id, NULL, &cg2, &err), 0);
        assert_int_equal(reap_bounded(&s.child), 1);
        assert_int_equal(nx_wait_status_to_exit_code(s.child.wait_status), 137);
        bool pop = true;
        assert_int_equal(nx_cgroup_populated(cg2, &pop, &err), 0);
        assert_false(pop);
        spawned_done(&s, NULL);
        assert_int_equal(nx_cgroup_destroy(&cg2, &err), 0);
        /* the first handle's directories are gone already; destroying it is still clean */
        assert_int_equal(nx_cgroup_destroy(&cg, &err), 0);
}

static void test_real_capabilities_are_measured(void **state)
{
        REQUIRE_REAL();
        assert_int_not_equal(real_caps.layout, NX_CGROUP_LAYOUT_NONE);
        assert_true(real_caps.tree_kill);
        assert_true(str_has_prefix(real_caps.summary, "cgroup "));
        assert_non_null(strstr(real_caps.summary, real_caps.memory ? "memory=yes" : "memory=no"));
        assert_non_null(strstr(real_caps.summary, real_caps.pids ? "pids=yes" : "pids=no"));
        print_message("# capabilities: %s\n", real_caps.summary);
}

static void test_real_child_joins_every_cgroup_before_exec(void **state)
{
        REQUIRE_REAL();
        nx_cgroup *cg = NULL;
        nx_cgroup_limits lim = { real_caps.memory ? 64 : 0, 0, 0 };
        err_t err = ERR_INIT;
        char id[64], suffix[128], text[4096];
        size_t n = 0;

        next_id(id, sizeof(id));
        assert_int_equal(nx_cgroup_create(&real_sys, id, &lim, &cg, &err), 0);
        spawned s = { NX_CHILD_INIT, NULL, NULL };
        /* the shell prints the cgroups of a process it forked: proof the tree is inside */
        spawn_in(cg, "cat /proc/self/cgroup", &s);
        size_t len = 0;
        while (s.child.stdout_fd >= 0) {
                struct pollfd p = { s.child.stdout_fd, POLLIN, 0 };
                assert_true(poll(&p, 1, 30000) > 0);
                ssize_t r = read(s.child.stdout_fd, text + len, sizeof(text) - 1 - len);
                if (r < 0 && errno == EAGAIN)
                        continue;
                if (r <= 0)
                        break;
                len += (size_t)r;
        }
        text[len] = '\0';
        assert_int_equal(reap_bounded(&s.child), 1);
        (void)str_printf(suffix, sizeof(suffix), "/%s/%s\n", test_base, id);
        (void)nx_cgroup_joins(cg, &n);
        size_t hits = 0;
        for (const char *p = strstr(text, suffix); p; p = strstr(p + 1, suffix))
                hits++;
        /* one /proc/self/cgroup line per hierarchy joined (co-mounts share a line) */
        assert_int_equal(hits, n);
        spawned_done(&s, cg);
        assert_int_equal(nx_cgroup_destroy(&cg, &err), 0);
}

static void test_real_populated_follows_the_tree(void **state)
{
        REQUIRE_REAL();
        nx_cgroup *cg = NULL;
        err_t err = ERR_INIT;
        char id[64];
        bool pop = false;

        next_id(id, sizeof(id));
        assert_int_equal(nx_cgroup_create(&real_sys, id, NULL, &cg, &err), 0);
        assert_int_equal(nx_cgroup_populated(cg, &pop, &err), 0);
        assert_false(pop);
        spawned s = { NX_CHILD_INIT, NULL, NULL };
        spawn_in(cg, "sleep 100", &s);
        assert_int_equal(nx_cgroup_populated(cg, &pop, &err), 0);
        assert_true(pop);
        assert_int_equal(nx_cgroup_kill(cg, &err), 0);
        assert_int_equal(nx_cgroup_wait_empty(cg, 10000, &err), 0);
        assert_int_equal(nx_cgroup_populated(cg, &pop, &err), 0);
        assert_false(pop);
        spawned_done(&s, cg);
        assert_int_equal(nx_cgroup_destroy(&cg, &err), 0);
}

static void test_real_tree_kill_kills_grandchildren(void **state)
{
        REQUIRE_REAL();
        nx_cgroup *cg = NULL;
        err_t err = ERR_INIT;
        char id[64];

        next_id(id, sizeof(id));
        assert_int_equal(nx_cgroup_create(&real_sys, id, NULL, &cg, &err), 0);
        spawned s = { NX_CHILD_INIT, NULL, NULL };
        spawn_in(cg, "sleep 100 & echo $!; sleep 100 & echo $!; wait", &s);
        pid_t a = read_pid(&s.child), b = read_pid(&s.child);
        assert_true(process_running(a) && process_running(b));
        assert_int_equal(nx_child_kill_tree(&s.child, cg, SIGKILL, &err), 0);
        assert_int_equal(nx_cgroup_wait_empty(cg, 10000, &err), 0);
        assert_int_equal(reap_bounded(&s.child), 1);
        assert_true(all_descendants_gone());
        assert_false(process_running(a));
        assert_false(process_running(b));
        spawned_done(&s, cg);
        assert_int_equal(nx_cgroup_destroy(&cg, &err), 0);
}

/* The reason for cgroups (§6.0 REF weakness): a daemonising descendant leaves the session and
 * the process group, yet stays in the cgroup. */
static void test_real_setsid_daemon_still_killed_via_cgroup(void **state)
{
        REQUIRE_REAL();
        nx_cgroup *cg = NULL;
        err_t err = ERR_INIT;
        char id[64];

        next_id(id, sizeof(id));
        assert_int_equal(nx_cgroup_create(&real_sys, id, NULL, &cg, &err), 0);
        spawned s = { NX_CHILD_INIT, NULL, NULL };
        /* double fork + setsid, stdio detached, parent exits: a classic daemon */
        spawn_in(cg, "setsid sh -c 'sleep 100 & echo $!' </dev/null 2>/dev/null; exit 0", &s);
        pid_t d = read_pid(&s.child);
        assert_int_equal(reap_bounded(&s.child), 1);
        assert_true(process_running(d));
        assert_int_not_equal(getsid(d), s.child.pid);
        assert_int_not_equal(getpgid(d), s.child.pgid);
        assert_int_equal(nx_child_kill_tree(&s.child, cg, SIGKILL, &err), 0);
        assert_int_equal(nx_cgroup_wait_empty(cg, 10000, &err), 0);
        assert_true(all_descendants_gone());
        assert_false(process_running(d));
        spawned_done(&s, cg);
        assert_int_equal(nx_cgroup_destroy(&cg, &err), 0);
}

static void test_real_oom_kill_is_detected(void **state)
{
        REQUIRE_REAL();
        if (!real_caps.memory || !real_caps.oom_detect)
                SKIP_BECAUSE("no enforceable memory limit with OOM counter: %s",
                             real_caps.summary);
        nx_cgroup *cg = NULL;
        nx_cgroup_limits lim = { 32, 0, 0 };
        err_t err = ERR_INIT;
        char id[64];
        bool oom = true;

        next_id(id, sizeof(id));
        assert_int_equal(nx_cgroup_create(&real_sys, id, &lim, &cg, &err), 0);
        assert_int_equal(nx_cgroup_oom_killed(cg, &oom, &err), 0);
        assert_false(oom);
        spawned s = { NX_CHILD_INIT, NULL, NULL };
        /* dd touches a 256 MiB buffer: far beyond 32 MiB, no swap to hide in */
        spawn_in(cg, "exec dd if=/dev/zero of=/dev/null bs=256M count=1 2>/dev/null", &s);
        assert_int_equal(reap_bounded(&s.child), 1);
        assert_int_equal(nx_wait_status_to_exit_code(s.child.wait_status), 137);
        assert_int_equal(nx_cgroup_oom_killed(cg, &oom, &err), 0);
        assert_true(oom);
        spawned_done(&s, cg);
        assert_int_equal(nx_cgroup_destroy(&cg, &err), 0);
}

static void test_real_no_oom_reported_for_small_process(void **state)
{
        REQUIRE_REAL();
        if (!real_caps.memory)
                SKIP_BECAUSE("no memory controller: %s", real_caps.summary);
        nx_cgroup *cg = NULL;
        nx_cgroup_limits lim = { 64, 0, 0 };
        err_t err = ERR_INIT;
        char id[64];
        bool oom = true;

        next_id(id, sizeof(id));
        assert_int_equal(nx_cgroup_create(&real_sys, id, &lim, &cg, &err), 0);
        spawned s = { NX_CHILD_INIT, NULL, NULL };
        spawn_in(cg, "exec dd if=/dev/zero of=/dev/null bs=1M count=4 2>/dev/null", &s);
        assert_int_equal(reap_bounded(&s.child), 1);
        assert_int_equal(nx_wait_status_to_exit_code(s.child.wait_status), 0);
        assert_int_equal(nx_cgroup_oom_killed(cg, &oom, &err), 0);
        assert_false(oom);
        spawned_done(&s, cg);
        assert_int_equal(nx_cgroup_destroy(&cg, &err), 0);
}

static void test_real_fork_bomb_contained_by_pids_limit(void **state)
{
        REQUIRE_REAL();
        if (!real_caps.pids)
                SKIP_BECAUSE("no pids controller: %s", real_caps.summary);
        nx_cgroup *cg = NULL;
        nx_cgroup_limits lim = { 0, 0, 40 };
        err_t err = ERR_INIT;
        char id[64];
        int i;

        next_id(id, sizeof(id));
        assert_int_equal(nx_cgroup_create(&real_sys, id, &lim, &cg, &err), 0);
        const char *pd = nx_cgroup_dir(cg, NX_CGROUP_PIDS);
        spawned s = { NX_CHILD_INIT, NULL, NULL };
        /* bounded bomb: 2000 sleepers requested, the limit allows 40 tasks */
        spawn_in(cg, "for i in $(seq 2000); do sleep 30 & done; wait", &s);
        for (i = 0; i < WAIT_STEPS && keyed(pd, "pids.events", "max") <= 0; i++)
                step_sleep();
        assert_true(i < WAIT_STEPS);   /* the limit was hit */
        char text[64];
        read_file(pd, "pids.current", text, sizeof(text));
        assert_true(strtoll(text, NULL, 10) <= 40);
        assert_int_equal(nx_child_kill_tree(&s.child, cg, SIGKILL, &err), 0);
        assert_int_equal(nx_cgroup_wait_empty(cg, 10000, &err), 0);
        assert_int_equal(reap_bounded(&s.child), 1);
        assert_true(all_descendants_gone());
        spawned_done(&s, cg);
        assert_int_equal(nx_cgroup_destroy(&cg, &err), 0);
}

/* v1 only (no cgroup2 line): tree-kill must go through the freezer. */
static void test_real_freezer_tree_kill_without_cgroup_kill(void **state)
{
        REQUIRE_REAL();
        nx_cgroup_mounts m;
        err_t err = ERR_INIT;
        char mi[4096], path[128], id[64];

        assert_int_equal(nx_cgroup_detect(&real_sys, &m, &err), 0);
        if (!m.v1[NX_CGROUP_FREEZER][0] || !m.v1[NX_CGROUP_PIDS][0])
                SKIP_BECAUSE("no v1 freezer and pids hierarchies on this machine");
        (void)str_printf(mi, sizeof(mi),
                         "1 0 0:1 / %s rw - cgroup cgroup rw,freezer\n"
                         "2 0 0:2 / %s rw - cgroup cgroup rw,pids\n",
                         m.v1[NX_CGROUP_FREEZER], m.v1[NX_CGROUP_PIDS]);
        (void)str_copy(path, sizeof(path), "/tmp/nx-cgroup-mi-XXXXXX");
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        close(fd);
        write_text(path, mi);
        nx_cgroup_sys sys = { path, NULL, test_base };
        nx_cgroup *cg = NULL;
        next_id(id, sizeof(id));
        int rc = nx_cgroup_create(&sys, id, NULL, &cg, &err);
        unlink(path);
        assert_int_equal(rc, 0);
        assert_null(nx_cgroup_dir(cg, NX_CGROUP_CTRL_COUNT));   /* no v2 directory */
        assert_non_null(nx_cgroup_dir(cg, NX_CGROUP_FREEZER));
        spawned s = { NX_CHILD_INIT, NULL, NULL };
        spawn_in(cg, "setsid sleep 100 & echo $!; sleep 100 & wait", &s);
        pid_t esc = read_pid(&s.child);
        for (int i = 0; i < WAIT_STEPS && getsid(esc) == s.child.pid; i++)
                step_sleep();
        assert_int_equal(nx_cgroup_kill(cg, &err), 0);
        bool pop = true;
        assert_int_equal(nx_cgroup_populated(cg, &pop, &err), 0);
        assert_false(pop);
        assert_int_equal(reap_bounded(&s.child), 1);
        assert_int_equal(nx_wait_status_to_exit_code(s.child.wait_status), 137);
        assert_true(all_descendants_gone());
        assert_false(process_running(esc));
        char text[32];
        read_file(nx_cgroup_dir(cg, NX_CGROUP_FREEZER), "freezer.state", text, sizeof(text));
        assert_string_equal(text, "THAWED\n");
        spawned_done(&s, cg);
        assert_int_equal(nx_cgroup_destroy(&cg, &err), 0);
}

static void test_real_signal_reaches_every_listed_process(void **state)
{
        REQUIRE_REAL();
        nx_cgroup *cg = NULL;
        err_t err = ERR_INIT;
        char id[64];

        next_id(id, sizeof(id));
        assert_int_equal(nx_cgroup_create(&real_sys, id, NULL, &cg, &err), 0);
        spawned s = { NX_CHILD_INIT, NULL, NULL };
        spawn_in(cg, "setsid sleep 100 & echo $!; wait", &s);
        pid_t esc = read_pid(&s.child);
        for (int i = 0; i < WAIT_STEPS && getsid(esc) == s.child.pid; i++)
                step_sleep();
        assert_int_equal(nx_cgroup_signal(cg, SIGTERM, &err), 0);
        assert_int_equal(reap_bounded(&s.child), 1);
        assert_int_equal(nx_wait_status_to_exit_code(s.child.wait_status), 143);
        assert_true(all_descendants_gone());
        assert_false(process_running(esc));
        spawned_done(&s, cg);
        assert_int_equal(nx_cgroup_destroy(&cg, &err), 0);
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
        (void)all_descendants_gone();
        return 0;
}

static int teardown_case(void **state)
{
        (void)teardown_reap(state);
        if (real_usable)
                sweep_test_base(&real_sys);
        return 0;
}

static int group_teardown(void **state)
{
        (void)teardown_case(state);
        nx_cgroup_remove_base(&real_sys);
        return 0;
}

static int group_setup(void **state)
{
        err_t err = ERR_INIT;

        (void)str_printf(test_base, sizeof(test_base), "nexusd-test-%ld", (long)getpid());
        real_sys = (nx_cgroup_sys){ NULL, NULL, test_base };
        if (geteuid() != 0) {
                (void)str_copy(real_why, sizeof(real_why), "needs root to create cgroups");
                return 0;
        }
        if (nx_cgroup_capabilities(&real_sys, &real_caps, &err) < 0 ||
            real_caps.layout == NX_CGROUP_LAYOUT_NONE || !real_caps.tree_kill) {
                (void)str_printf(real_why, sizeof(real_why), "no usable cgroup filesystem: %s",
                                 real_caps.summary);
                return 0;
        }
        real_usable = true;
        return 0;
}

#define T(f) cmocka_unit_test_teardown(f, teardown_case)

/* spec nexus §12 #105 (negative limits mean "not requested": no limit is enforced, so no
 * controller is needed and creation succeeds with empty tracking) */
static void test_vec_negative_limits_are_not_requested(void **state)
{
        fake f;
        nx_cgroup *cg = NULL;
        err_t err = ERR_INIT;
        size_t n = 99;
        nx_cgroup_limits lim = { -1, -1, 0 };

        assert_int_equal(nx_cgroup_validate_limits(&lim, &err), 0);
        fake_init(&f, MI_ROOT);
        assert_int_equal(nx_cgroup_create(&f.sys, "d-neg", &lim, &cg, &err), 0);
        assert_non_null(cg);
        assert_null(nx_cgroup_joins(cg, &n));
        assert_int_equal(n, 0);
        assert_int_equal(nx_cgroup_destroy(&cg, &err), 0);
        fake_free(&f);
}

/* spec nexus §12 #107 (verbatim list) */
static void test_vec_directive_ids_refused(void **state)
{
        const char *bad[] = { "../escape", "dir/subdir", "", ".", "..", "has space" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                err_t err = ERR_INIT;
                if (nx_cgroup_validate_id(bad[i], &err) == 0)
                        fail_msg("\"%s\" accepted", bad[i]);
        }
}

int main(void)
{
        (void)prctl(PR_SET_CHILD_SUBREAPER, 1);
        const struct CMUnitTest tests[] = {
                T(test_layout_and_controller_names),
                T(test_valid_directive_ids_accepted),
                T(test_invalid_directive_ids_refused_with_message),
                T(test_overlong_directive_id_refused),
                T(test_cpu_over_maximum_refused),
                T(test_memory_over_maximum_refused),
                T(test_pids_over_maximum_refused),
                T(test_cpu_quota_follows_spec_vectors),
                T(test_detect_hybrid_layout),
                T(test_detect_reports_favordynmods_of_the_v2_mount),
                T(test_detect_pure_v2_reads_subtree_control),
                T(test_detect_v2_without_enabled_controllers),
                T(test_detect_pure_v1),
                T(test_detect_none_when_no_cgroup_filesystem),
                T(test_detect_comounted_cpu_cpuacct),
                T(test_detect_decodes_escaped_mount_point),
                T(test_detect_unreadable_mountinfo_is_error),
                T(test_memory_limit_without_memory_controller_fails_closed),
                T(test_cpu_limit_without_cpu_controller_fails_closed),
                T(test_pids_limit_without_pids_controller_fails_closed),
                T(test_limit_on_v2_with_controller_not_enabled_fails_closed),
                T(test_limit_without_any_cgroup_fails_closed),
                T(test_unenforceable_limit_leaves_no_directory),
                T(test_v2_controller_that_cannot_be_enabled_fails_closed),
                T(test_capabilities_without_cgroups_say_none),
                T(test_capabilities_report_failed_probe),
                T(test_no_limits_and_no_cgroups_gives_empty_tracking),
                T(test_no_limits_with_broken_v2_is_best_effort),
                T(test_invalid_id_refused_before_touching_filesystem),
                T(test_invalid_base_refused),
                T(test_destroy_null_is_noop),
                T(test_vec_negative_limits_are_not_requested),
                T(test_vec_directive_ids_refused),
                T(test_real_create_makes_directory_in_each_hierarchy),
                T(test_real_memory_limit_written_with_swap_closed),
                T(test_real_cpu_limit_written_500m),
                T(test_real_cpu_limit_minimum_quota_for_5m),
                T(test_real_default_pids_limit_applied),
                T(test_real_explicit_pids_limit_written),
                T(test_real_destroy_removes_every_directory),
                T(test_real_stale_directory_is_replaced),
                T(test_real_capabilities_are_measured),
                T(test_real_child_joins_every_cgroup_before_exec),
                T(test_real_populated_follows_the_tree),
                T(test_real_tree_kill_kills_grandchildren),
                T(test_real_setsid_daemon_still_killed_via_cgroup),
                T(test_real_oom_kill_is_detected),
                T(test_real_no_oom_reported_for_small_process),
                T(test_real_fork_bomb_contained_by_pids_limit),
                T(test_real_freezer_tree_kill_without_cgroup_kill),
                T(test_real_signal_reaches_every_listed_process),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
