/* sandbox/cgroup.c — per-directive cgroups (spec nexus §6.6, DESIGN D13). See cgroup.h. */
#include "sandbox/cgroup.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/str.h"

#define DEFAULT_MOUNTINFO "/proc/self/mountinfo"
#define DEFAULT_BASE "nexusd"
/* A mountinfo line longer than this is skipped (mount points we care about are short). */
#define MOUNTINFO_LINE_MAX 8192
/* Contents of the small control files we read (events, oom_control, subtree_control). */
#define CTRL_FILE_MAX 4096
/* v2 directory + one v1 directory per controller. */
#define MAX_DIRS (1 + NX_CGROUP_CTRL_COUNT)
/* Bounds of the polling loops: tree-kill rounds, freezer settle, rmdir retries. Each step
 * sleeps at most POLL_STEP_NS, so the worst case stays around a few seconds. The sleeps back
 * off exponentially from POLL_FIRST_NS: an exiting `true` leaves its cgroup within tens of
 * microseconds, and a fixed 2 ms step was most of a sandbox's teardown (docs/benchmarks.md
 * "Sandbox start (issue 6)"). */
#define KILL_ROUNDS 500
#define FREEZE_POLLS 200
#define RMDIR_TRIES 300
#define POLL_STEP_NS (2 * 1000 * 1000)
#define POLL_FIRST_NS (50 * 1000)

static const char *const ctrl_names[NX_CGROUP_CTRL_COUNT] = {
        [NX_CGROUP_MEMORY] = "memory",
        [NX_CGROUP_PIDS] = "pids",
        [NX_CGROUP_CPU] = "cpu",
        [NX_CGROUP_FREEZER] = "freezer",
};

typedef struct cg_dir {
        char *path;
        char *mount;   /* hierarchy mount point, to share one directory between co-mounts */
        int procs_fd;
        bool v2;
} cg_dir;

typedef enum cg_freeze {
        FREEZE_NONE = 0,
        FREEZE_V1,   /* freezer.state FROZEN/THAWED */
        FREEZE_V2,   /* cgroup.freeze 1/0 */
} cg_freeze;

struct nx_cgroup {
        char id[NX_CGROUP_ID_MAX + 1];
        cg_dir dirs[MAX_DIRS];
        size_t n_dirs;
        nx_cgroup_join joins[MAX_DIRS];
        int v2_idx;                          /* -1 when no v2 directory */
        int ctrl_idx[NX_CGROUP_CTRL_COUNT];  /* directory holding the controller, -1 */
        bool has_kill;                       /* v2 cgroup.kill */
        cg_freeze freeze;
        int freeze_idx;
};

const char *nx_cgroup_layout_name(nx_cgroup_layout layout)
{
        switch (layout) {
        case NX_CGROUP_LAYOUT_V1:
                return "v1";
        case NX_CGROUP_LAYOUT_HYBRID:
                return "hybrid";
        case NX_CGROUP_LAYOUT_V2:
                return "v2";
        case NX_CGROUP_LAYOUT_NONE:
                return "none";
        default:
                return "unknown";
        }
}

const char *nx_cgroup_ctrl_name(nx_cgroup_ctrl ctrl)
{
        if ((int)ctrl < 0 || ctrl >= NX_CGROUP_CTRL_COUNT)
                return "unknown";
        return ctrl_names[ctrl];
}

static void sleep_ns(long ns)
{
        struct timespec ts = { 0, ns };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* Exponential backoff: *step starts at 0 (= POLL_FIRST_NS), doubles, capped at POLL_STEP_NS.
 * Returns the step to wait now. */
static long backoff_next(long *step)
{
        *step = *step <= 0 ? POLL_FIRST_NS : *step * 2 > POLL_STEP_NS ? POLL_STEP_NS : *step * 2;
        return *step;
}

static void sleep_backoff(long *step)
{
        sleep_ns(backoff_next(step));
}

static int64_t mono_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- small file helpers (no O_CREAT: a missing control file is an error, which is what
 * makes a fake tree or a missing controller fail closed) ---- */

static int read_small(const char *path, char *buf, size_t cap, err_t *err)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        size_t len = 0;

        if (fd < 0)
                return err_errno(err, errno, "open %s", path);
        while (len + 1 < cap) {
                ssize_t n = read(fd, buf + len, cap - 1 - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return err_errno(err, errno, "read %s", path);
                }
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        buf[len] = '\0';
        return (int)len;
}

static int write_str(const char *path, const char *value, err_t *err)
{
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        size_t len = strlen(value);
        ssize_t n;

        if (fd < 0)
                return err_errno(err, errno, "open %s", path);
        do {
                n = write(fd, value, len);
        } while (n < 0 && errno == EINTR);
        if (n < 0)
                return err_errno(err, errno, "write \"%s\" to %s", value, path);
        if ((size_t)n != len)
                return err_setc(err, ERR_SYSTEM, "short write of \"%s\" to %s", value, path);
        return 0;
}

static int join_path(char *dst, const char *dir, const char *file, err_t *err)
{
        if (str_printf(dst, NX_CGROUP_PATH_MAX, "%s/%s", dir, file) < 0)
                return err_setc(err, ERR_INVALID, "cgroup path %s/%s is too long", dir, file);
        return 0;
}

static int write_ctrl(const char *dir, const char *file, const char *value, err_t *err)
{
        char path[NX_CGROUP_PATH_MAX];

        if (join_path(path, dir, file, err) < 0)
                return -1;
        return write_str(path, value, err);
}

static int read_ctrl(const char *dir, const char *file, char *buf, size_t cap, err_t *err)
{
        char path[NX_CGROUP_PATH_MAX];

        if (join_path(path, dir, file, err) < 0)
                return -1;
        return read_small(path, buf, cap, err);
}

static bool ctrl_exists(const char *dir, const char *file)
{
        char path[NX_CGROUP_PATH_MAX];

        if (str_printf(path, sizeof(path), "%s/%s", dir, file) < 0)
                return false;
        return access(path, F_OK) == 0;
}

/* Value of "<key> <n>" in a flat-keyed file such as cgroup.events or memory.oom_control;
 * -1 when the key is absent. */
static int64_t keyed_value(const char *text, const char *key)
{
        size_t klen = strlen(key);
        const char *p = text;

        while (*p) {
                const char *eol = strchr(p, '\n');
                size_t len = eol ? (size_t)(eol - p) : strlen(p);
                if (len > klen && strncmp(p, key, klen) == 0 && p[klen] == ' ') {
                        int64_t v;
                        if (str_to_int64n(p + klen + 1, len - klen - 1, 0, INT64_MAX, &v) == 0)
                                return v;
                        return -1;
                }
                p += len;
                if (*p == '\n')
                        p++;
        }
        return -1;
}

/* Calls fn for every pid in <dir>/cgroup.procs, streaming (the list is unbounded in size).
 * Returns the number of pids seen, or -1 with err. */
typedef void (*pid_fn)(pid_t pid, void *ctx);

static int for_each_pid(const char *dir, pid_fn fn, void *ctx, err_t *err)
{
        char path[NX_CGROUP_PATH_MAX];
        char buf[4096];
        int64_t cur = -1;
        int count = 0;

        if (join_path(path, dir, "cgroup.procs", err) < 0)
                return -1;
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return err_errno(err, errno, "open %s", path);
        for (;;) {
                ssize_t n = read(fd, buf, sizeof(buf));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return err_errno(err, errno, "read %s", path);
                }
                if (n == 0)
                        break;
                for (ssize_t i = 0; i < n; i++) {
                        if (buf[i] >= '0' && buf[i] <= '9') {
                                if (cur < 0)
                                        cur = 0;
                                if (cur < INT32_MAX / 10)
                                        cur = cur * 10 + (buf[i] - '0');
                        } else if (cur >= 0) {
                                if (fn)
                                        fn((pid_t)cur, ctx);
                                count++;
                                cur = -1;
                        }
                }
        }
        if (cur >= 0) {
                if (fn)
                        fn((pid_t)cur, ctx);
                count++;
        }
        return count;
}

typedef struct signal_ctx {
        int sig;
} signal_ctx;

static void signal_pid(pid_t pid, void *ctx)
{
        const signal_ctx *s = ctx;

        /* never the init process or ourselves, whatever a file says */
        if (pid > 1 && pid != getpid())
                (void)kill(pid, s->sig);
}

/* ---- mountinfo ---- */

/* Decodes the \ooo escapes mountinfo uses for space, tab, newline and backslash. */
static void unescape_octal(char *s)
{
        char *w = s;

        for (char *r = s; *r;) {
                if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
                    r[3] >= '0' && r[3] <= '7') {
                        *w++ = (char)(((r[1] - '0') << 6) | ((r[2] - '0') << 3) | (r[3] - '0'));
                        r += 4;
                } else {
                        *w++ = *r++;
                }
        }
        *w = '\0';
}

static bool has_token(const char *list, char sep, const char *tok)
{
        size_t tlen = strlen(tok);
        const char *p = list;

        while (*p) {
                while (*p == sep || *p == ' ' || *p == '\n')
                        p++;
                const char *e = p;
                while (*e && *e != sep && *e != ' ' && *e != '\n')
                        e++;
                if ((size_t)(e - p) == tlen && strncmp(p, tok, tlen) == 0)
                        return true;
                p = e;
        }
        return false;
}

static int mount_path(char *dst, const char *prefix, const char *mnt, err_t *err)
{
        if (str_printf(dst, NX_CGROUP_PATH_MAX, "%s%s", prefix, mnt) < 0)
                return err_setc(err, ERR_INVALID, "cgroup mount point %s%s is too long",
                                prefix, mnt);
        return 0;
}

/* One mountinfo line: "id parent maj:min root mountpoint opts [optional...] - fstype src sopts" */
static int parse_mount_line(char *line, const char *prefix, nx_cgroup_mounts *m, err_t *err)
{
        char *fields[8] = { 0 };
        char *save = NULL;
        char *mnt = NULL, *fstype = NULL, *sopts = NULL;
        int i = 0;
        bool after_dash = false;
        int after = 0;

        for (char *t = strtok_r(line, " \n", &save); t; t = strtok_r(NULL, " \n", &save)) {
                if (!after_dash) {
                        if (i < 8)
                                fields[i] = t;
                        if (i >= 6 && strcmp(t, "-") == 0)
                                after_dash = true;
                        i++;
                        continue;
                }
                if (after == 0)
                        fstype = t;
                else if (after == 2)
                        sopts = t;
                after++;
        }
        if (!after_dash || !fstype || !fields[4])
                return 0;
        mnt = fields[4];
        unescape_octal(mnt);
        if (strcmp(fstype, "cgroup2") == 0) {
                if (m->v2[0])
                        return 0;
                if (mount_path(m->v2, prefix, mnt, err) < 0)
                        return -1;
                m->v2_favordynmods = sopts && has_token(sopts, ',', "favordynmods");
                return 0;
        }
        if (strcmp(fstype, "cgroup") != 0 || !sopts)
                return 0;
        for (int c = 0; c < NX_CGROUP_CTRL_COUNT; c++) {
                if (!m->v1[c][0] && has_token(sopts, ',', ctrl_names[c]) &&
                    mount_path(m->v1[c], prefix, mnt, err) < 0)
                        return -1;
        }
        return 0;
}

int nx_cgroup_detect(const nx_cgroup_sys *sys, nx_cgroup_mounts *out, err_t *err)
{
        const char *path = sys && sys->mountinfo ? sys->mountinfo : DEFAULT_MOUNTINFO;
        const char *prefix = sys && sys->root_prefix ? sys->root_prefix : "";
        char line[MOUNTINFO_LINE_MAX];
        bool any_v1 = false;

        memset(out, 0, sizeof(*out));
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f)
                return err_errno(err, errno, "open %s", path);
        while (fgets(line, sizeof(line), f)) {
                if (!strchr(line, '\n') && !feof(f)) {
                        /* overlong line: skip the rest of it */
                        int ch;
                        while ((ch = fgetc(f)) != EOF && ch != '\n')
                                ;
                        continue;
                }
                if (parse_mount_line(line, prefix, out, err) < 0)
                        return err_wrap(err, "parse %s", path);
        }
        if (ferror(f))
                return err_errno(err, EIO, "read %s", path);
        if (out->v2[0]) {
                char text[CTRL_FILE_MAX];
                err_t ignored = ERR_INIT;
                /* what children of the v2 root may use; unreadable = nothing */
                if (read_ctrl(out->v2, "cgroup.subtree_control", text, sizeof(text),
                              &ignored) >= 0) {
                        for (int c = 0; c < NX_CGROUP_CTRL_COUNT; c++)
                                out->v2_ctrl[c] = c != NX_CGROUP_FREEZER &&
                                                  has_token(text, ' ', ctrl_names[c]);
                }
        }
        for (int c = 0; c < NX_CGROUP_CTRL_COUNT; c++)
                any_v1 = any_v1 || out->v1[c][0];
        if (out->v2[0])
                out->layout = any_v1 ? NX_CGROUP_LAYOUT_HYBRID : NX_CGROUP_LAYOUT_V2;
        else
                out->layout = any_v1 ? NX_CGROUP_LAYOUT_V1 : NX_CGROUP_LAYOUT_NONE;
        return 0;
}

/* ---- validation ---- */

static bool id_char(char c, bool first)
{
        if (isalnum((unsigned char)c))
                return true;
        return !first && (c == '_' || c == '.' || c == '-');
}

int nx_cgroup_validate_id(const char *id, err_t *err)
{
        size_t len = id ? strlen(id) : 0;

        if (len == 0 || len > NX_CGROUP_ID_MAX)
                goto bad;
        for (size_t i = 0; i < len; i++) {
                if (!id_char(id[i], i == 0))
                        goto bad;
        }
        return 0;
bad:
        /* the id is peer input: show at most a bounded prefix */
        return err_set(err, "invalid directive ID for cgroup: \"%.64s\"", id ? id : "");
}

static int validate_base(const char *base, err_t *err)
{
        const char *p = base;

        if (!*base || *base == '/')
                goto bad;
        while (*p) {
                const char *e = strchr(p, '/');
                size_t len = e ? (size_t)(e - p) : strlen(p);
                if (len == 0 || (len == 1 && p[0] == '.') ||
                    (len == 2 && p[0] == '.' && p[1] == '.'))
                        goto bad;
                for (size_t i = 0; i < len; i++) {
                        if (!id_char(p[i], false))
                                goto bad;
                }
                p += len;
                if (*p == '/')
                        p++;
                if (e && !*p)
                        goto bad;
        }
        return 0;
bad:
        return err_set(err, "cgroup base \"%s\" must be a relative path of plain names", base);
}

int nx_cgroup_validate_limits(const nx_cgroup_limits *lim, err_t *err)
{
        if (lim->cpu_millicores > NX_CGROUP_CPU_MAX_MILLICORES)
                return err_set(err, "CPU limit %lld exceeds maximum %d millicores",
                               (long long)lim->cpu_millicores, NX_CGROUP_CPU_MAX_MILLICORES);
        if (lim->memory_mb > NX_CGROUP_MEMORY_MAX_MB)
                return err_set(err, "memory limit %lld MB exceeds maximum %d MB",
                               (long long)lim->memory_mb, NX_CGROUP_MEMORY_MAX_MB);
        if (lim->pids_max > NX_CGROUP_PIDS_MAX)
                return err_set(err, "pids limit %lld exceeds maximum %d",
                               (long long)lim->pids_max, NX_CGROUP_PIDS_MAX);
        return 0;
}

int64_t nx_cgroup_cpu_quota(int64_t cpu)
{
        if (cpu <= 0)
                return 0;
        int64_t q = cpu * 100000 / 1000;
        return q < 1000 ? 1000 : q;
}

/* ---- directory handling ---- */

static const char *sys_base(const nx_cgroup_sys *sys)
{
        return sys && sys->base ? sys->base : DEFAULT_BASE;
}

/* Best-effort SIGKILL of everything in a directory, then rmdir with bounded retries while
 * the kernel still counts exiting tasks. ENOENT counts as removed. */
static int rmdir_retry(const char *dir, err_t *err)
{
        signal_ctx s = { SIGKILL };
        long step = 0;

        for (int i = 0; i < RMDIR_TRIES; i++) {
                if (rmdir(dir) == 0 || errno == ENOENT)
                        return 0;
                if (errno != EBUSY)
                        return err_errno(err, errno, "rmdir %s", dir);
                if (ctrl_exists(dir, "cgroup.kill")) {
                        err_t ignored = ERR_INIT;
                        (void)write_ctrl(dir, "cgroup.kill", "1", &ignored);
                } else {
                        err_t ignored = ERR_INIT;
                        (void)for_each_pid(dir, signal_pid, &s, &ignored);
                }
                sleep_backoff(&step);
        }
        return err_errno(err, EBUSY, "rmdir %s", dir);
}

/* mkdir -p of base under a mount point; in v2, enables the v2_need controllers in the
 * subtree_control of every base component so the directive's cgroup gets them (the root's
 * subtree_control is the administrator's, §6.6). A controller that cannot be enabled is an
 * error when required, else it is dropped from v2_need. */
static int ensure_base(const char *mount, const char *base, bool v2, bool *v2_need,
                       const bool *required, char *out, err_t *err)
{
        char path[NX_CGROUP_PATH_MAX];
        size_t mlen = strlen(mount);

        if (str_printf(path, sizeof(path), "%s/%s", mount, base) < 0)
                return err_setc(err, ERR_INVALID, "cgroup path %s/%s is too long", mount, base);
        /* walk each component after the mount point */
        for (char *p = path + mlen + 1;; p++) {
                if (*p != '/' && *p != '\0')
                        continue;
                char saved = *p;
                *p = '\0';
                if (mkdir(path, 0700) < 0 && errno != EEXIST)
                        return err_errno(err, errno, "mkdir %s", path);
                if (v2) {
                        char cur[CTRL_FILE_MAX];
                        err_t e2 = ERR_INIT;
                        int have = read_ctrl(path, "cgroup.subtree_control", cur, sizeof(cur), &e2);
                        for (int c = 0; c < NX_CGROUP_CTRL_COUNT; c++) {
                                char v[32];
                                if (!v2_need[c])
                                        continue;
                                if (have >= 0 && has_token(cur, ' ', ctrl_names[c]))
                                        continue;
                                err_t ee = ERR_INIT;
                                if (str_printf(v, sizeof(v), "+%s", ctrl_names[c]) >= 0 &&
                                    write_ctrl(path, "cgroup.subtree_control", v, &ee) == 0)
                                        continue;
                                if (required[c]) {
                                        *err = ee;
                                        return err_wrap(err, "enable %s controller",
                                                        ctrl_names[c]);
                                }
                                log_warn("cgroup controller not enabled",
                                         LOG_STR("controller", ctrl_names[c]), LOG_ERR(&ee));
                                v2_need[c] = false;
                        }
                }
                *p = saved;
                if (!saved)
                        break;
        }
        return str_copy(out, NX_CGROUP_PATH_MAX, path) < 0
                       ? err_setc(err, ERR_INVALID, "cgroup path too long") : 0;
}

/* Creates <mount>/<base>/<id> (removing a stale one, whose processes are killed: a crashed
 * daemon's re-leased directive must not share a cgroup with its old run) and opens
 * cgroup.procs. Returns the index in cg->dirs. */
static int add_dir(nx_cgroup *cg, const char *mount, const char *base, bool v2,
                   bool *v2_need, const bool *required, err_t *err)
{
        char basepath[NX_CGROUP_PATH_MAX];
        char dir[NX_CGROUP_PATH_MAX];
        char procs[NX_CGROUP_PATH_MAX];

        for (size_t i = 0; i < cg->n_dirs; i++) {
                /* co-mounted v1 controllers (cpu,cpuacct) share one directory */
                if (strcmp(cg->dirs[i].mount, mount) == 0)
                        return (int)i;
        }
        if (cg->n_dirs >= MAX_DIRS)
                return err_setc(err, ERR_INTERNAL, "too many cgroup hierarchies");
        if (ensure_base(mount, base, v2, v2_need, required, basepath, err) < 0)
                return -1;
        if (str_printf(dir, sizeof(dir), "%s/%s", basepath, cg->id) < 0)
                return err_setc(err, ERR_INVALID, "cgroup path %s/%s is too long", basepath,
                                cg->id);
        if (mkdir(dir, 0700) < 0) {
                if (errno != EEXIST)
                        return err_errno(err, errno, "mkdir %s", dir);
                log_warn("removing stale cgroup", LOG_STR("cgroup_path", dir));
                if (rmdir_retry(dir, err) < 0)
                        return err_wrap(err, "stale cgroup");
                if (mkdir(dir, 0700) < 0)
                        return err_errno(err, errno, "mkdir %s", dir);
        }
        _cleanup_free_ char *copy = strdup(dir);
        _cleanup_free_ char *mcopy = strdup(mount);
        if (!copy || !mcopy) {
                (void)rmdir(dir);
                return err_errno(err, ENOMEM, "cgroup path");
        }
        if (join_path(procs, dir, "cgroup.procs", err) < 0) {
                (void)rmdir(dir);
                return -1;
        }
        int fd = open(procs, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
                int e = errno;
                (void)rmdir(dir);
                return err_errno(err, e, "open %s", procs);
        }
        size_t idx = cg->n_dirs++;
        cg->dirs[idx] = (cg_dir){ .path = steal_ptr(&copy), .mount = steal_ptr(&mcopy),
                                  .procs_fd = fd, .v2 = v2 };
        return (int)idx;
}

/* Closes and (when remove) removes every directory, innermost hierarchy last-created first.
 * Returns -1 with the first rmdir error. */
static int free_dirs(nx_cgroup *cg, bool remove, err_t *err)
{
        int rc = 0;

        for (size_t i = cg->n_dirs; i-- > 0;) {
                cg_dir *d = &cg->dirs[i];
                if (d->procs_fd >= 0)
                        close(d->procs_fd);
                d->procs_fd = -1;
                if (remove) {
                        err_t e = ERR_INIT;
                        if (rmdir_retry(d->path, &e) < 0) {
                                log_warn("cgroup cleanup failed", LOG_ERR(&e));
                                if (rc == 0 && err)
                                        *err = e;
                                rc = -1;
                        }
                }
                FREE_AND_NULL(d->path);
                FREE_AND_NULL(d->mount);
        }
        cg->n_dirs = 0;
        return rc;
}

/* ---- limits ---- */

static int apply_memory(nx_cgroup *cg, int64_t mb, bool *swap_limited, err_t *err)
{
        const cg_dir *d = &cg->dirs[cg->ctrl_idx[NX_CGROUP_MEMORY]];
        char v[32];

        *swap_limited = false;
        if (str_printf(v, sizeof(v), "%lld", (long long)(mb * 1048576)) < 0)
                return err_setc(err, ERR_INTERNAL, "memory value");
        if (d->v2) {
                if (write_ctrl(d->path, "memory.max", v, err) < 0)
                        return -1;
                /* without this a memory-hungry command just swaps (spec: no evasion) */
                if (ctrl_exists(d->path, "memory.swap.max")) {
                        if (write_ctrl(d->path, "memory.swap.max", "0", err) < 0)
                                return -1;
                        *swap_limited = true;
                }
                return 0;
        }
        if (write_ctrl(d->path, "memory.limit_in_bytes", v, err) < 0)
                return -1;
        /* memsw must be >= limit_in_bytes, hence written second */
        if (ctrl_exists(d->path, "memory.memsw.limit_in_bytes")) {
                if (write_ctrl(d->path, "memory.memsw.limit_in_bytes", v, err) < 0)
                        return -1;
                *swap_limited = true;
        }
        err_t ignored = ERR_INIT;
        if (write_ctrl(d->path, "memory.swappiness", "0", &ignored) == 0)
                *swap_limited = true;
        return 0;
}

static int apply_cpu(nx_cgroup *cg, int64_t cpu, err_t *err)
{
        const cg_dir *d = &cg->dirs[cg->ctrl_idx[NX_CGROUP_CPU]];
        char v[64];
        int64_t quota = nx_cgroup_cpu_quota(cpu);

        if (d->v2) {
                if (str_printf(v, sizeof(v), "%lld 100000", (long long)quota) < 0)
                        return err_setc(err, ERR_INTERNAL, "cpu value");
                return write_ctrl(d->path, "cpu.max", v, err);
        }
        if (write_ctrl(d->path, "cpu.cfs_period_us", "100000", err) < 0)
                return -1;
        if (str_printf(v, sizeof(v), "%lld", (long long)quota) < 0)
                return err_setc(err, ERR_INTERNAL, "cpu value");
        return write_ctrl(d->path, "cpu.cfs_quota_us", v, err);
}

static int apply_pids(nx_cgroup *cg, int64_t pids, err_t *err)
{
        const cg_dir *d = &cg->dirs[cg->ctrl_idx[NX_CGROUP_PIDS]];
        char v[32];

        if (str_printf(v, sizeof(v), "%lld", (long long)pids) < 0)
                return err_setc(err, ERR_INTERNAL, "pids value");
        return write_ctrl(d->path, "pids.max", v, err);
}

/* ---- creation ---- */

/* What one build found possible (used by the capability probe). */
typedef struct build_report {
        bool memory, memory_swap, cpu, pids;
        char first_error[256];
} build_report;

static void note_error(build_report *rep, const err_t *e)
{
        if (rep && !rep->first_error[0])
                (void)str_copy(rep->first_error, sizeof(rep->first_error), e->msg);
}

static const char *limit_label(int c)
{
        return c == NX_CGROUP_MEMORY ? "memory" : c == NX_CGROUP_CPU ? "cpu" : "pids";
}

/* strict: a requested limit that cannot be applied fails the build (directives);
 * otherwise failures are noted in rep (capability probe). */
static int cg_build(const nx_cgroup_sys *sys, const char *id, const nx_cgroup_limits *lim_in,
                    bool strict, build_report *rep, nx_cgroup **out, err_t *err)
{
        nx_cgroup_limits lim = *lim_in;
        nx_cgroup_mounts m;
        const char *base = sys_base(sys);
        bool required[NX_CGROUP_CTRL_COUNT] = { 0 };
        bool wanted[NX_CGROUP_CTRL_COUNT] = { 0 };
        bool in_v2[NX_CGROUP_CTRL_COUNT] = { 0 };    /* the controller lives in v2 */
        bool v2_need[NX_CGROUP_CTRL_COUNT] = { 0 };  /* ... and is enabled for us */
        nx_cgroup *cg = NULL;

        *out = NULL;
        /* §6.6: negative means not requested */
        if (lim.memory_mb < 0)
                lim.memory_mb = 0;
        if (lim.cpu_millicores < 0)
                lim.cpu_millicores = 0;
        if (lim.pids_max < 0)
                lim.pids_max = 0;
        if (nx_cgroup_validate_id(id, err) < 0 || nx_cgroup_validate_limits(&lim, err) < 0 ||
            validate_base(base, err) < 0)
                return -1;
        if (nx_cgroup_detect(sys, &m, err) < 0)
                return err_wrap(err, "detect cgroups");

        required[NX_CGROUP_MEMORY] = lim.memory_mb > 0;
        required[NX_CGROUP_CPU] = lim.cpu_millicores > 0;
        required[NX_CGROUP_PIDS] = lim.pids_max > 0;
        for (int c = 0; c < NX_CGROUP_FREEZER; c++) {
                wanted[c] = required[c] || c == NX_CGROUP_PIDS;
                bool avail = m.v2_ctrl[c] || m.v1[c][0];
                if (required[c] && !avail) {
                        if (strict)
                                return err_setc(err, ERR_FORBIDDEN,
                                                "%s limit requested but no %s controller is "
                                                "available (cgroup layout %s)",
                                                limit_label(c), ctrl_names[c],
                                                nx_cgroup_layout_name(m.layout));
                        wanted[c] = false;
                }
                if (!avail)
                        wanted[c] = false;
                in_v2[c] = wanted[c] && m.v2_ctrl[c];
                v2_need[c] = in_v2[c];
        }

        cg = calloc(1, sizeof(*cg));
        if (!cg)
                return err_errno(err, ENOMEM, "cgroup");
        (void)str_copy(cg->id, sizeof(cg->id), id);
        cg->v2_idx = -1;
        cg->freeze_idx = -1;
        for (int c = 0; c < NX_CGROUP_CTRL_COUNT; c++)
                cg->ctrl_idx[c] = -1;

        if (m.v2[0]) {
                err_t e = ERR_INIT;
                int idx = add_dir(cg, m.v2, base, true, v2_need, required, &e);
                if (idx < 0) {
                        bool needed = false;
                        for (int c = 0; c < NX_CGROUP_CTRL_COUNT; c++)
                                needed = needed || (required[c] && in_v2[c]);
                        if (needed && strict) {
                                *err = e;
                                goto fail;
                        }
                        note_error(rep, &e);
                        /* tracking only: the directive still runs, tree-kill falls back */
                        log_warn("cgroup v2 directory unavailable", LOG_ERR(&e));
                        for (int c = 0; c < NX_CGROUP_CTRL_COUNT; c++)
                                if (in_v2[c])
                                        wanted[c] = false;
                } else {
                        cg->v2_idx = idx;
                        cg->has_kill = ctrl_exists(cg->dirs[idx].path, "cgroup.kill");
                        for (int c = 0; c < NX_CGROUP_CTRL_COUNT; c++) {
                                if (v2_need[c])
                                        cg->ctrl_idx[c] = idx;
                                else if (in_v2[c])
                                        wanted[c] = false;   /* optional, not enabled */
                        }
                }
        }
        for (int c = 0; c < NX_CGROUP_FREEZER; c++) {
                if (!wanted[c] || in_v2[c])
                        continue;
                err_t e = ERR_INIT;
                int idx = add_dir(cg, m.v1[c], base, false, v2_need, required, &e);
                if (idx < 0) {
                        if (required[c] && strict) {
                                *err = e;
                                err_wrap(err, "%s limit", limit_label(c));
                                goto fail;
                        }
                        note_error(rep, &e);
                        log_warn("cgroup v1 directory unavailable",
                                 LOG_STR("controller", ctrl_names[c]), LOG_ERR(&e));
                        wanted[c] = false;
                        continue;
                }
                cg->ctrl_idx[c] = idx;
        }
        /* tree-kill without cgroup.kill: a freezer stops forks while we kill (§6.0 ADVISED) */
        if (!cg->has_kill) {
                if (m.v1[NX_CGROUP_FREEZER][0]) {
                        err_t e = ERR_INIT;
                        int idx = add_dir(cg, m.v1[NX_CGROUP_FREEZER], base, false, v2_need,
                                          required, &e);
                        if (idx >= 0) {
                                cg->ctrl_idx[NX_CGROUP_FREEZER] = idx;
                                cg->freeze = FREEZE_V1;
                                cg->freeze_idx = idx;
                        } else {
                                note_error(rep, &e);
                                log_warn("cgroup freezer unavailable", LOG_ERR(&e));
                        }
                }
                if (cg->freeze == FREEZE_NONE && cg->v2_idx >= 0 &&
                    ctrl_exists(cg->dirs[cg->v2_idx].path, "cgroup.freeze")) {
                        cg->freeze = FREEZE_V2;
                        cg->freeze_idx = cg->v2_idx;
                }
        }

        if (wanted[NX_CGROUP_MEMORY]) {
                bool swap = false;
                err_t e = ERR_INIT;
                if (apply_memory(cg, lim.memory_mb > 0 ? lim.memory_mb : 64, &swap, &e) < 0) {
                        if (strict) {
                                *err = e;
                                err_wrap(err, "memory limit");
                                goto fail;
                        }
                        note_error(rep, &e);
                } else if (rep) {
                        rep->memory = true;
                        rep->memory_swap = swap;
                }
        }
        if (wanted[NX_CGROUP_CPU]) {
                err_t e = ERR_INIT;
                if (apply_cpu(cg, lim.cpu_millicores > 0 ? lim.cpu_millicores : 1000, &e) < 0) {
                        if (strict) {
                                *err = e;
                                err_wrap(err, "cpu limit");
                                goto fail;
                        }
                        note_error(rep, &e);
                } else if (rep) {
                        rep->cpu = true;
                }
        }
        if (wanted[NX_CGROUP_PIDS]) {
                err_t e = ERR_INIT;
                int64_t pids = lim.pids_max > 0 ? lim.pids_max : NX_CGROUP_DEFAULT_PIDS;
                if (apply_pids(cg, pids, &e) < 0) {
                        if (required[NX_CGROUP_PIDS] && strict) {
                                *err = e;
                                err_wrap(err, "pids limit");
                                goto fail;
                        }
                        note_error(rep, &e);
                        log_warn("default pids limit not applied", LOG_ERR(&e));
                } else if (rep) {
                        rep->pids = true;
                }
        }
        for (size_t i = 0; i < cg->n_dirs; i++)
                cg->joins[i] = (nx_cgroup_join){ cg->dirs[i].procs_fd, cg->dirs[i].path };
        if (strict && (lim.memory_mb > 0 || lim.cpu_millicores > 0 || lim.pids_max > 0))
                log_info("cgroup limits applied", LOG_STR("directive_id", id),
                         LOG_STR("cgroup_path", cg->n_dirs ? cg->dirs[0].path : ""),
                         LOG_INT("memory_mb", lim.memory_mb),
                         LOG_INT("cpu_millicores", lim.cpu_millicores),
                         LOG_INT("pids_max", lim.pids_max));
        *out = cg;
        return 0;
fail:
        (void)free_dirs(cg, true, NULL);
        free(cg);
        return -1;
}

int nx_cgroup_create(const nx_cgroup_sys *sys, const char *directive_id,
                     const nx_cgroup_limits *lim, nx_cgroup **out, err_t *err)
{
        static const nx_cgroup_limits none = { 0, 0, 0 };

        return cg_build(sys, directive_id, lim ? lim : &none, true, NULL, out, err);
}

const nx_cgroup_join *nx_cgroup_joins(const nx_cgroup *cg, size_t *n)
{
        *n = cg ? cg->n_dirs : 0;
        return cg && cg->n_dirs ? cg->joins : NULL;
}

const char *nx_cgroup_dir(const nx_cgroup *cg, nx_cgroup_ctrl ctrl)
{
        int idx;

        if (!cg)
                return NULL;
        if (ctrl == NX_CGROUP_CTRL_COUNT)
                idx = cg->v2_idx;
        else if ((int)ctrl >= 0 && ctrl < NX_CGROUP_CTRL_COUNT)
                idx = cg->ctrl_idx[ctrl];
        else
                idx = -1;
        return idx >= 0 ? cg->dirs[idx].path : NULL;
}

bool nx_cgroup_can_kill(const nx_cgroup *cg)
{
        return cg && cg->n_dirs > 0;
}

/* ---- kill, populated, OOM ---- */

/* The directory whose cgroup.procs lists the tree: the freezer's, else v2, else any. */
static const char *procs_dir(const nx_cgroup *cg)
{
        if (cg->freeze_idx >= 0)
                return cg->dirs[cg->freeze_idx].path;
        if (cg->v2_idx >= 0)
                return cg->dirs[cg->v2_idx].path;
        return cg->n_dirs ? cg->dirs[0].path : NULL;
}

static int set_frozen(nx_cgroup *cg, bool frozen, err_t *err)
{
        const char *dir = cg->dirs[cg->freeze_idx].path;
        char text[CTRL_FILE_MAX];

        if (cg->freeze == FREEZE_V1) {
                if (write_ctrl(dir, "freezer.state", frozen ? "FROZEN" : "THAWED", err) < 0)
                        return -1;
                if (!frozen)
                        return 0;
                /* FREEZING → FROZEN is asynchronous; killing before it settles only costs
                 * another round, so a bounded wait is enough */
                long step = 0;
                for (int i = 0; i < FREEZE_POLLS; i++) {
                        err_t e = ERR_INIT;
                        if (read_ctrl(dir, "freezer.state", text, sizeof(text), &e) < 0 ||
                            str_has_prefix(text, "FROZEN"))
                                break;
                        sleep_backoff(&step);
                }
                return 0;
        }
        if (write_ctrl(dir, "cgroup.freeze", frozen ? "1" : "0", err) < 0)
                return -1;
        if (!frozen)
                return 0;
        long step = 0;
        for (int i = 0; i < FREEZE_POLLS; i++) {
                err_t e = ERR_INIT;
                if (read_ctrl(dir, "cgroup.events", text, sizeof(text), &e) < 0 ||
                    keyed_value(text, "frozen") == 1)
                        break;
                sleep_backoff(&step);
        }
        return 0;
}

int nx_cgroup_kill(nx_cgroup *cg, err_t *err)
{
        signal_ctx s = { SIGKILL };
        const char *dir;

        if (!cg || cg->n_dirs == 0)
                return 0;
        if (cg->has_kill)
                return write_ctrl(cg->dirs[cg->v2_idx].path, "cgroup.kill", "1", err);
        dir = procs_dir(cg);
        long step = 0;
        for (int round = 0; round < KILL_ROUNDS; round++) {
                err_t e = ERR_INIT;
                if (cg->freeze != FREEZE_NONE && set_frozen(cg, true, &e) < 0)
                        log_warn("cgroup freeze failed", LOG_ERR(&e));
                int n = for_each_pid(dir, signal_pid, &s, err);
                if (cg->freeze != FREEZE_NONE) {
                        err_t e2 = ERR_INIT;
                        if (set_frozen(cg, false, &e2) < 0)
                                log_warn("cgroup thaw failed", LOG_ERR(&e2));
                }
                if (n < 0)
                        return -1;
                if (n == 0)
                        return 0;
                sleep_backoff(&step);
        }
        return err_setc(err, ERR_SYSTEM, "processes in %s survived %d kill rounds", dir,
                        KILL_ROUNDS);
}

int nx_cgroup_signal(nx_cgroup *cg, int sig, err_t *err)
{
        signal_ctx s = { sig };

        if (!cg || cg->n_dirs == 0)
                return 0;
        return for_each_pid(procs_dir(cg), signal_pid, &s, err) < 0 ? -1 : 0;
}

int nx_cgroup_populated(const nx_cgroup *cg, bool *populated, err_t *err)
{
        char text[CTRL_FILE_MAX];

        *populated = false;
        if (!cg || cg->n_dirs == 0)
                return 0;
        if (cg->v2_idx >= 0) {
                if (read_ctrl(cg->dirs[cg->v2_idx].path, "cgroup.events", text, sizeof(text),
                              err) < 0)
                        return -1;
                int64_t v = keyed_value(text, "populated");
                if (v < 0)
                        return err_setc(err, ERR_SYSTEM, "no \"populated\" in %s/cgroup.events",
                                        cg->dirs[cg->v2_idx].path);
                *populated = v > 0;
                return 0;
        }
        int n = for_each_pid(procs_dir(cg), NULL, NULL, err);
        if (n < 0)
                return -1;
        *populated = n > 0;
        return 0;
}

/* v2: the kernel signals every change of cgroup.events with POLLPRI (kernfs_notify), so the
 * wait is woken the moment "populated" drops to 0; the poll timeout backs off from 50 us to
 * 2 ms all the same (a file that does not notify — a test's fake tree — still converges).
 * Without v2, the same backoff over cgroup.procs. Bounded by max_ms either way. */
int nx_cgroup_wait_empty(nx_cgroup *cg, unsigned max_ms, err_t *err)
{
        int64_t deadline = mono_ns() + (int64_t)max_ms * 1000000;
        long step = 0;
        _cleanup_close_ int ev = -1;
        char path[NX_CGROUP_PATH_MAX];

        if (cg && cg->n_dirs > 0 && cg->v2_idx >= 0 &&
            join_path(path, cg->dirs[cg->v2_idx].path, "cgroup.events", err) == 0)
                ev = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        for (;;) {
                bool pop;
                if (ev >= 0) {
                        char text[CTRL_FILE_MAX];
                        ssize_t n = pread(ev, text, sizeof(text) - 1, 0);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0)
                                return err_errno(err, errno, "read %s", path);
                        text[n] = '\0';
                        int64_t v = keyed_value(text, "populated");
                        if (v < 0)
                                return err_setc(err, ERR_SYSTEM, "no \"populated\" in %s",
                                                path);
                        pop = v > 0;
                } else if (nx_cgroup_populated(cg, &pop, err) < 0) {
                        return -1;
                }
                if (!pop)
                        return 0;
                int64_t left = deadline - mono_ns();
                if (left <= 0)
                        break;
                long wait = backoff_next(&step);
                if (wait > left)
                        wait = (long)left;
                if (ev >= 0) {
                        struct pollfd pfd = { ev, POLLPRI, 0 };
                        struct timespec ts = { 0, wait };
                        (void)ppoll(&pfd, 1, &ts, NULL);   /* EINTR: just read again */
                } else {
                        sleep_ns(wait);
                }
        }
        return err_setc(err, ERR_SYSTEM, "cgroup %s still has processes after %u ms",
                        cg->id, max_ms);
}

int nx_cgroup_oom_killed(const nx_cgroup *cg, bool *killed, err_t *err)
{
        char text[CTRL_FILE_MAX];
        int idx = cg ? cg->ctrl_idx[NX_CGROUP_MEMORY] : -1;

        *killed = false;
        if (idx < 0)
                return 0;
        const cg_dir *d = &cg->dirs[idx];
        if (d->v2) {
                if (read_ctrl(d->path, "memory.events", text, sizeof(text), err) < 0)
                        return -1;
                *killed = keyed_value(text, "oom_kill") > 0;
                return 0;
        }
        if (read_ctrl(d->path, "memory.oom_control", text, sizeof(text), err) < 0)
                return -1;
        int64_t n = keyed_value(text, "oom_kill");
        /* kernels before 4.13 have no counter; under_oom is the best left */
        *killed = n >= 0 ? n > 0 : keyed_value(text, "under_oom") > 0;
        return 0;
}

int nx_cgroup_destroy(nx_cgroup **cgp, err_t *err)
{
        nx_cgroup *cg = cgp ? *cgp : NULL;
        bool pop = false;
        err_t e = ERR_INIT;

        if (!cg)
                return 0;
        *cgp = NULL;
        /* ENOENT: someone (a re-created cgroup of the same id) removed it already */
        if (nx_cgroup_populated(cg, &pop, &e) < 0 ? e.errnum != ENOENT : pop) {
                err_clear(&e);
                if (nx_cgroup_kill(cg, &e) < 0 || nx_cgroup_wait_empty(cg, 2000, &e) < 0)
                        log_warn("cgroup kill before removal failed", LOG_ERR(&e));
        }
        int rc = free_dirs(cg, true, err);
        free(cg);
        return rc;
}

void nx_cgroup_remove_base(const nx_cgroup_sys *sys)
{
        nx_cgroup_mounts m;
        err_t e = ERR_INIT;
        const char *base = sys_base(sys);
        char path[NX_CGROUP_PATH_MAX];

        if (validate_base(base, &e) < 0 || nx_cgroup_detect(sys, &m, &e) < 0)
                return;
        for (int h = -1; h < NX_CGROUP_CTRL_COUNT; h++) {
                const char *mnt = h < 0 ? m.v2 : m.v1[h];
                if (!mnt[0] || str_printf(path, sizeof(path), "%s/%s", mnt, base) < 0)
                        continue;
                /* innermost component first; stop at the first one still in use */
                for (;;) {
                        if (rmdir(path) < 0 && errno != ENOENT)
                                break;
                        char *slash = strrchr(path, '/');
                        if (!slash || (size_t)(slash - path) <= strlen(mnt))
                                break;
                        *slash = '\0';
                }
        }
}

int nx_cgroup_capabilities(const nx_cgroup_sys *sys, nx_cgroup_caps *caps, err_t *err)
{
        nx_cgroup_mounts m;
        build_report rep;
        char id[64];
        nx_cgroup *cg = NULL;
        const nx_cgroup_limits probe = { 64, 1000, NX_CGROUP_DEFAULT_PIDS };

        memset(caps, 0, sizeof(*caps));
        memset(&rep, 0, sizeof(rep));
        if (nx_cgroup_detect(sys, &m, err) < 0) {
                (void)str_printf(caps->summary, sizeof(caps->summary),
                                 "cgroup detection failed: %s", err->msg);
                return -1;
        }
        caps->layout = m.layout;
        if (m.layout == NX_CGROUP_LAYOUT_NONE) {
                (void)str_copy(caps->summary, sizeof(caps->summary),
                               "cgroup none: no limits enforceable, tree-kill by process group");
                return 0;
        }
        (void)str_printf(id, sizeof(id), "probe-%ld", (long)getpid());
        err_t e = ERR_INIT;
        if (cg_build(sys, id, &probe, false, &rep, &cg, &e) < 0) {
                (void)str_printf(caps->summary, sizeof(caps->summary),
                                 "cgroup %s: probe failed: %s", nx_cgroup_layout_name(m.layout),
                                 e.msg);
                return 0;
        }
        caps->memory = rep.memory;
        caps->memory_swap = rep.memory && rep.memory_swap;
        caps->cpu = rep.cpu;
        caps->pids = rep.pids;
        caps->kill = cg->has_kill;
        caps->freezer = cg->freeze != FREEZE_NONE;
        caps->tree_kill = cg->n_dirs > 0;
        if (cg->ctrl_idx[NX_CGROUP_MEMORY] >= 0) {
                const cg_dir *d = &cg->dirs[cg->ctrl_idx[NX_CGROUP_MEMORY]];
                caps->oom_detect = ctrl_exists(d->path, d->v2 ? "memory.events"
                                                              : "memory.oom_control");
        }
#define WHERE(c) (cg->ctrl_idx[c] < 0 ? "" : cg->dirs[cg->ctrl_idx[c]].v2 ? "(v2)" : "(v1)")
        (void)str_printf(caps->summary, sizeof(caps->summary),
                         "cgroup %s: memory=%s%s%s cpu=%s%s pids=%s%s tree-kill=%s "
                         "oom-detect=%s%s%s",
                         nx_cgroup_layout_name(m.layout),
                         caps->memory ? "yes" : "no", WHERE(NX_CGROUP_MEMORY),
                         caps->memory ? (caps->memory_swap ? "+swap" : "-swap") : "",
                         caps->cpu ? "yes" : "no", WHERE(NX_CGROUP_CPU),
                         caps->pids ? "yes" : "no", WHERE(NX_CGROUP_PIDS),
                         caps->kill ? "cgroup.kill"
                         : cg->freeze == FREEZE_V1 ? "v1-freezer"
                         : cg->freeze == FREEZE_V2 ? "cgroup.freeze"
                         : caps->tree_kill ? "pid-list" : "process-group",
                         caps->oom_detect ? "yes" : "no",
                         rep.first_error[0] ? " first-error=" : "", rep.first_error);
#undef WHERE
        err_t de = ERR_INIT;
        if (nx_cgroup_destroy(&cg, &de) < 0)
                log_warn("cgroup probe cleanup failed", LOG_ERR(&de));
        return 0;
}
