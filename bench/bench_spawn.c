/* bench/bench_spawn.c — times start→exit of one command, N times (bench/sandbox).
 *
 *   bench-spawn [-n RUNS] [-w WARMUP] [-k] [--gap-ms MS] [--cgroup] [--seccomp-fd N]
 *               [--fd N=PATH]... -- ARGV...
 *
 * Every run is: t0 (CLOCK_MONOTONIC); [--cgroup: nx_cgroup_create() of a fresh cgroup with
 * the untrusted profile's default pids limit]; [--seccomp-fd: nx_seccomp_memfd(), handed to
 * the child as fd N]; [--fd: PATH opened afresh, handed to the child as fd N]; nx_spawn() (the
 * daemon's own fork+exec: new session, cgroup joined before exec, every other fd closed,
 * stdin /dev/null, stdout/stderr pipes); both pipes drained to EOF; the child reaped;
 * [nx_cgroup_destroy()]; t1. So every row of bench/sandbox pays the same spawn path, and the
 * cgroup row pays what nexusd pays for a directive's cgroup (create, join, remove).
 *
 * --gap-ms sleeps between runs, outside the timed part. It matters for the cgroup: joining one
 * (a write to cgroup.procs) takes the kernel's cgroup_threadgroup_rwsem for writing, which
 * waits for an RCU grace period unless another writer ran within the last grace period or
 * so — so back-to-back runs are cheaper than a daemon that starts a sandbox now and then.
 *
 * A run that does not exit 0 stops the benchmark: its stderr (last 2 KiB) is printed and the
 * exit status is 1 — unless -k (keep going): then failed runs are left out of the times and
 * counted (warm-up runs are not), and the first failure's message is reported. Output: one JSON line
 * {"ns":[t1-t0, ...],"failed":N,"first_error":"..."} (warm-up runs left out). The environment is passed through unchanged; info-level logs are off. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/error.h"
#include "core/log.h"
#include "sandbox/cgroup.h"
#include "sandbox/proctree.h"
#include "sandbox/seccomp.h"

extern char **environ;

#define MAX_RUNS 100000
#define MAX_FDS 8
#define TAIL_MAX 2048
/* The untrusted profile's default pids limit (sandbox_contract.md, step 1). */
#define BENCH_PIDS 512

static void close_fd(int *fd)
{
        if (*fd >= 0)
                close(*fd);
        *fd = -1;
}

typedef struct fd_file {
        int child_fd;
        const char *path;
} fd_file;

typedef struct opts {
        long runs;
        long warmup;
        long gap_ms;
        bool keep_going;
        bool cgroup;
        int seccomp_fd;          /* -1: none */
        fd_file files[MAX_FDS];
        size_t n_files;
        char *const *argv;
} opts;

static int64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
        char *end = NULL;
        long v;

        errno = 0;
        v = strtol(s, &end, 10);
        if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
                fprintf(stderr, "bench-spawn: \"%s\" is not an integer in %ld-%ld\n", s, lo, hi);
                return -1;
        }
        *out = v;
        return 0;
}

static void usage(void)
{
        fprintf(stderr, "usage: bench-spawn [-n RUNS] [-w WARMUP] [-k] [--gap-ms MS] "
                "[--cgroup] [--seccomp-fd N] [--fd N=PATH]... -- ARGV...\n");
}

static int parse_args(int argc, char **argv, opts *o)
{
        int i;
        long v;

        for (i = 1; i < argc; i++) {
                const char *a = argv[i];

                if (strcmp(a, "--") == 0) {
                        i++;
                        break;
                }
                if (strcmp(a, "-n") == 0 && i + 1 < argc) {
                        if (parse_long(argv[++i], 1, MAX_RUNS, &o->runs) < 0)
                                return -1;
                } else if (strcmp(a, "-w") == 0 && i + 1 < argc) {
                        if (parse_long(argv[++i], 0, MAX_RUNS, &o->warmup) < 0)
                                return -1;
                } else if (strcmp(a, "--gap-ms") == 0 && i + 1 < argc) {
                        if (parse_long(argv[++i], 0, 60000, &o->gap_ms) < 0)
                                return -1;
                } else if (strcmp(a, "-k") == 0) {
                        o->keep_going = true;
                } else if (strcmp(a, "--cgroup") == 0) {
                        o->cgroup = true;
                } else if (strcmp(a, "--seccomp-fd") == 0 && i + 1 < argc) {
                        if (parse_long(argv[++i], 3, 255, &v) < 0)
                                return -1;
                        o->seccomp_fd = (int)v;
                } else if (strcmp(a, "--fd") == 0 && i + 1 < argc) {
                        char *spec = argv[++i];
                        char *eq = strchr(spec, '=');

                        if (eq == NULL || o->n_files >= MAX_FDS) {
                                fprintf(stderr, "bench-spawn: --fd wants N=PATH (at most %d)\n",
                                        MAX_FDS);
                                return -1;
                        }
                        *eq = '\0';
                        if (parse_long(spec, 3, 255, &v) < 0)
                                return -1;
                        o->files[o->n_files].child_fd = (int)v;
                        o->files[o->n_files].path = eq + 1;
                        o->n_files++;
                } else {
                        usage();
                        return -1;
                }
        }
        if (i >= argc) {
                usage();
                return -1;
        }
        o->argv = argv + i;
        return 0;
}

/* Appends what the child wrote to stderr to a bounded tail (older bytes are dropped). */
static void tail_add(char *tail, size_t *len, const char *buf, size_t n)
{
        if (n >= TAIL_MAX) {
                memcpy(tail, buf + n - TAIL_MAX, TAIL_MAX);
                *len = TAIL_MAX;
                return;
        }
        if (*len + n > TAIL_MAX) {
                size_t drop = *len + n - TAIL_MAX;

                memmove(tail, tail + drop, *len - drop);
                *len -= drop;
        }
        memcpy(tail + *len, buf, n);
        *len += n;
}

/* Reads both pipes until EOF; stdout is discarded, stderr kept in the tail. */
static int drain(nx_child *c, char *tail, size_t *tail_len, err_t *err)
{
        char buf[16384];

        while (c->stdout_fd >= 0 || c->stderr_fd >= 0) {
                struct pollfd p[2] = {
                        { .fd = c->stdout_fd, .events = POLLIN },
                        { .fd = c->stderr_fd, .events = POLLIN },
                };

                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return err_errno(err, errno, "poll");
                }
                for (int k = 0; k < 2; k++) {
                        int *fd = k == 0 ? &c->stdout_fd : &c->stderr_fd;
                        ssize_t r;

                        if (*fd < 0 || p[k].revents == 0)
                                continue;
                        r = read(*fd, buf, sizeof(buf));
                        if (r < 0 && (errno == EINTR || errno == EAGAIN))
                                continue;
                        if (r <= 0) {
                                close(*fd);
                                *fd = -1;
                                continue;
                        }
                        if (k == 1)
                                tail_add(tail, tail_len, buf, (size_t)r);
                }
        }
        return 0;
}

static int one_run(const opts *o, long idx, int64_t *ns, err_t *err)
{
        nx_spawn_fd fds[MAX_FDS + 1];
        size_t n_fds = 0;
        nx_cgroup *cg = NULL;
        const nx_cgroup_join *joins = NULL;
        size_t n_joins = 0;
        nx_child child = NX_CHILD_INIT;
        char tail[TAIL_MAX + 1];
        size_t tail_len = 0;
        char cwd[PATH_MAX];
        int rc = -1, code;
        int64_t t0;

        if (getcwd(cwd, sizeof(cwd)) == NULL)
                return err_errno(err, errno, "getcwd");
        for (size_t k = 0; k < MAX_FDS + 1; k++)
                fds[k].parent_fd = -1;

        t0 = now_ns();
        if (o->cgroup) {
                nx_cgroup_limits lim = { .memory_mb = 0, .cpu_millicores = 0,
                                         .pids_max = BENCH_PIDS };
                char id[64];
                int w = snprintf(id, sizeof(id), "bench-spawn-%ld-%ld", (long)getpid(), idx);

                if (w < 0 || (size_t)w >= sizeof(id))
                        return err_set(err, "cgroup id too long");
                if (nx_cgroup_create(NULL, id, &lim, &cg, err) < 0)
                        return err_wrap(err, "cgroup");
                joins = nx_cgroup_joins(cg, &n_joins);
        }
        if (o->seccomp_fd >= 0) {
                int sfd = -1;

                if (nx_seccomp_memfd(&sfd, err) < 0) {
                        err_wrap(err, "seccomp");
                        goto out;
                }
                fds[n_fds].parent_fd = sfd;
                fds[n_fds].child_fd = o->seccomp_fd;
                n_fds++;
        }
        for (size_t k = 0; k < o->n_files; k++) {
                int f = open(o->files[k].path, O_RDONLY | O_CLOEXEC);

                if (f < 0) {
                        err_errno(err, errno, "open %s", o->files[k].path);
                        goto out;
                }
                fds[n_fds].parent_fd = f;
                fds[n_fds].child_fd = o->files[k].child_fd;
                n_fds++;
        }

        nx_spawn_req req = {
                .argv = o->argv,
                .envp = environ,
                .cwd = cwd,
                .cgroup_joins = joins,
                .n_cgroup_joins = n_joins,
                .new_session = true,
                .extra_fds = fds,
                .n_extra_fds = n_fds,
        };
        if (nx_spawn(&req, &child, err) < 0)
                goto out;
        for (size_t k = 0; k < n_fds; k++)
                close_fd(&fds[k].parent_fd);
        if (drain(&child, tail, &tail_len, err) < 0)
                goto out;
        if (nx_child_reap(&child, true, err) < 0)
                goto out;
        code = nx_wait_status_to_exit_code(child.wait_status);
        if (o->cgroup && nx_cgroup_destroy(&cg, err) < 0) {
                err_wrap(err, "cgroup");
                goto out;
        }
        *ns = now_ns() - t0;
        if (code != 0) {
                tail[tail_len] = '\0';
                err_set(err, "%s exited %d; its stderr: %s", o->argv[0], code, tail);
                goto out;
        }
        rc = 0;
out:
        for (size_t k = 0; k < n_fds; k++)
                close_fd(&fds[k].parent_fd);
        if (child.pid > 0 && !child.reaped) {
                err_t e2 = ERR_INIT;

                nx_child_kill_tree(&child, cg, SIGKILL, &e2);
                nx_child_reap(&child, true, &e2);
        }
        nx_child_close(&child);
        if (cg != NULL) {
                err_t e2 = ERR_INIT;

                nx_cgroup_destroy(&cg, &e2);
        }
        return rc;
}

/* Writes s as a JSON string (control characters escaped). */
static void json_str(const char *s)
{
        putchar('"');
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;

                if (c == '"' || c == '\\')
                        printf("\\%c", c);
                else if (c < 0x20)
                        printf("\\u%04x", c);
                else
                        putchar(c);
        }
        putchar('"');
}

int main(int argc, char **argv)
{
        opts o = { .runs = 100, .warmup = 3, .seccomp_fd = -1 };
        err_t err = ERR_INIT;
        _cleanup_free_ int64_t *ns = NULL;
        char first_error[ERR_MSG_MAX + 32] = "";
        long n_ok = 0, failed = 0;

        /* nx_cgroup_create logs every cgroup at info level; the timings need no such lines. */
        log_set_level(LOG_LEVEL_WARN);
        if (parse_args(argc, argv, &o) < 0)
                return 2;
        ns = calloc((size_t)o.runs, sizeof(*ns));
        if (ns == NULL) {
                fprintf(stderr, "bench-spawn: out of memory\n");
                return 1;
        }
        for (long i = 0; i < o.warmup + o.runs; i++) {
                int64_t t = 0;

                if (i > 0 && o.gap_ms > 0) {
                        struct timespec gap = { o.gap_ms / 1000, (o.gap_ms % 1000) * 1000000 };

                        while (nanosleep(&gap, &gap) < 0 && errno == EINTR)
                                ;
                }
                if (one_run(&o, i, &t, &err) < 0) {
                        if (!o.keep_going) {
                                fprintf(stderr, "bench-spawn: run %ld: %s\n", i, err.msg);
                                return 1;
                        }
                        if (i >= o.warmup)
                                failed++;
                        if (first_error[0] == '\0') {
                                int w = snprintf(first_error, sizeof(first_error), "run %ld: %s",
                                                 i, err.msg);

                                if (w < 0)
                                        first_error[0] = '\0';
                        }
                        err_clear(&err);
                        continue;
                }
                if (i >= o.warmup)
                        ns[n_ok++] = t;
        }
        fputs("{\"ns\":[", stdout);
        for (long i = 0; i < n_ok; i++)
                printf("%s%" PRId64, i ? "," : "", ns[i]);
        printf("],\"failed\":%ld,\"first_error\":", failed);
        json_str(first_error);
        fputs("}\n", stdout);
        return fflush(stdout) == 0 ? 0 : 1;
}
