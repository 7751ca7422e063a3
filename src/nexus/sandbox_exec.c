/* sandbox_exec.c — `nexusd sandbox exec` (contract: sandbox_contract.md). See sandbox_exec.h.
 *
 * The same sequence as an untrusted directive (docs/architecture.md "Untrusted profile run
 * sequence"): prepare (cgroup, seccomp memfd, generated /etc) → spawn bwrap → sandbox pid from
 * --info-fd → listener in its netns → proxy adopts it → --block-fd released → stream output,
 * wait, kill what is left through the cgroup → proxy closed (summary record) → exit code. */
#include "sandbox_exec.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "core/cleanup.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "proto/netcap.h"
#include "proxy/proxy.h"
#include "sandbox/bwrap.h"
#include "sandbox/landlock.h"
#include "sandbox/rootfs.h"

#define EXIT_SETUP 125
#define PIPE_GRACE_MS 2000
#define READ_BUF 65536

static const char usage_text[] =
        "usage: nexusd sandbox exec [-c FILE] [--workspace DIR] [--net JSON] [--limits JSON]\n"
        "                           [--cwd P] [--rootfs DIR] [--audit FILE] [--timeout S]\n"
        "                           [--repeat N [--gap-ms MS]] -- COMMAND...\n"
        "Runs COMMAND under the untrusted stack (cgroup, bwrap, seccomp, Landlock, egress\n"
        "proxy). Exit: the command's code (128+N on signal N, 124 after --timeout), 125 when\n"
        "the sandbox could not be set up. --repeat N runs it N times in this process, each\n"
        "with a fresh sandbox, cgroup and proxy (as the daemon runs directives), MS apart,\n"
        "printing {\"run\":i,\"exit_code\":c,\"ms\":t} per run on stderr (t: start→exit,\n"
        "teardown included); exit: the first non-zero code, else 0.\n";

typedef struct sx_opts {
        const char *config;
        const char *workspace;
        const char *net;
        const char *limits;
        const char *cwd;
        const char *rootfs;
        const char *audit;
        int64_t timeout_s;
        int64_t repeat;              /* 0 = once, no timing line */
        int64_t gap_ms;
        char **argv;
} sx_opts;

typedef struct sx {
        uv_loop_t *loop;
        nx_bwrap_prepared prep;
        bool prep_ready;
        nx_child child;
        nx_proxy *proxy;
        FILE *audit;                 /* NULL: stderr with "[egress] " */
        uv_pipe_t pipes[2];
        bool pipe_open[2];
        char *buf;
        uv_poll_t pidfd_poll;
        bool poll_active;
        uv_timer_t t_reap, t_grace, t_timeout;
        uv_signal_t sigint, sigterm;
        bool exited, timed_out, finishing, interrupted;
        int exit_code;
} sx;

static int setup_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int setup_fail(const char *fmt, ...)
{
        char msg[1200];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(msg, sizeof(msg), fmt, ap);
        (void)n;
        va_end(ap);
        fprintf(stderr, "nexusd sandbox exec: %s\n", msg);
        return EXIT_SETUP;
}

/* ---------------------------------------------------------------- arguments --------- */

static int parse_args(int argc, char **argv, sx_opts *o)
{
        memset(o, 0, sizeof(*o));
        int i = 2;   /* argv[0] "sandbox", argv[1] "exec" */
        for (; i < argc; i++) {
                const char *a = argv[i];
                if (strcmp(a, "--") == 0) {
                        i++;
                        break;
                }
                if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
                        fputs(usage_text, stdout);
                        return 1;
                }
                const char **dst = NULL;
                if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0 || strcmp(a, "-config") == 0)
                        dst = &o->config;
                else if (strcmp(a, "--workspace") == 0)
                        dst = &o->workspace;
                else if (strcmp(a, "--net") == 0)
                        dst = &o->net;
                else if (strcmp(a, "--limits") == 0)
                        dst = &o->limits;
                else if (strcmp(a, "--cwd") == 0)
                        dst = &o->cwd;
                else if (strcmp(a, "--rootfs") == 0)
                        dst = &o->rootfs;
                else if (strcmp(a, "--audit") == 0)
                        dst = &o->audit;
                const char *timeout = NULL, *repeat = NULL, *gap = NULL;
                if (strcmp(a, "--timeout") == 0)
                        dst = &timeout;
                else if (strcmp(a, "--repeat") == 0)
                        dst = &repeat;
                else if (strcmp(a, "--gap-ms") == 0)
                        dst = &gap;
                if (!dst) {
                        if (a[0] == '-')
                                return setup_fail("unknown option \"%s\"\n%s", a, usage_text);
                        break;   /* the command starts here (no "--") */
                }
                if (i + 1 >= argc)
                        return setup_fail("%s needs a value", a);
                *dst = argv[++i];
                if (timeout && (str_to_int64(timeout, 1, 86400, &o->timeout_s) < 0))
                        return setup_fail("--timeout \"%s\": expected seconds 1-86400", timeout);
                if (repeat && (str_to_int64(repeat, 1, 100000, &o->repeat) < 0))
                        return setup_fail("--repeat \"%s\": expected 1-100000", repeat);
                if (gap && (str_to_int64(gap, 0, 60000, &o->gap_ms) < 0))
                        return setup_fail("--gap-ms \"%s\": expected 0-60000", gap);
        }
        if (i >= argc)
                return setup_fail("no command given\n%s", usage_text);
        o->argv = argv + i;
        return 0;
}

static int parse_limits(const char *text, nx_cgroup_limits *lim, err_t *err)
{
        memset(lim, 0, sizeof(*lim));
        if (!text)
                return 0;
        json_error_t je;
        _cleanup_json_ json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &je);
        if (!json_is_object(j))
                return err_set(err, "--limits: expected a JSON object (%s)", j ? "" : je.text);
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) {
                int64_t *dst = strcmp(k, "cpu") == 0         ? &lim->cpu_millicores
                               : strcmp(k, "memory_mb") == 0 ? &lim->memory_mb
                               : strcmp(k, "pids") == 0      ? &lim->pids_max
                                                             : NULL;
                if (!dst)
                        return err_set(err, "--limits: unknown key \"%s\" (cpu, memory_mb, pids)",
                                       k);
                if (!json_is_integer(v) || json_integer_value(v) < 0)
                        return err_set(err, "--limits: \"%s\" must be a non-negative integer", k);
                *dst = json_integer_value(v);
        }
        return nx_cgroup_validate_limits(lim, err);
}

/* ---------------------------------------------------------------- loop -------------- */

static void audit_cb(void *ud, json_t *record)
{
        sx *s = ud;
        _cleanup_free_ char *line = json_dumps(record, JSON_COMPACT);
        if (!line)
                return;
        if (s->audit) {
                fprintf(s->audit, "%s\n", line);
                fflush(s->audit);
        } else {
                fprintf(stderr, "[egress] %s\n", line);
        }
}

static void write_all(int fd, const char *p, size_t n)
{
        while (n > 0) {
                ssize_t w = write(fd, p, n);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        return;   /* our reader went away: keep draining the child */
                p += w;
                n -= (size_t)w;
        }
}

static void handle_closed(uv_handle_t *h)
{
        (void)h;
}

static void close_h(uv_handle_t *h)
{
        if (!uv_is_closing(h))
                uv_close(h, handle_closed);
}

static void proxy_closed(void *ud)
{
        sx *s = ud;
        s->proxy = NULL;
        close_h((uv_handle_t *)&s->t_reap);
        close_h((uv_handle_t *)&s->t_grace);
        close_h((uv_handle_t *)&s->t_timeout);
        close_h((uv_handle_t *)&s->sigint);
        close_h((uv_handle_t *)&s->sigterm);
}

static void maybe_finish(sx *s)
{
        if (!s->exited || s->pipe_open[0] || s->pipe_open[1] || s->finishing)
                return;
        s->finishing = true;
        uv_timer_stop(&s->t_grace);
        if (s->proxy)
                nx_proxy_close(s->proxy, proxy_closed, s);
        else
                proxy_closed(s);
}

static void pipe_done(sx *s, int i)
{
        if (!s->pipe_open[i])
                return;
        s->pipe_open[i] = false;
        uv_read_stop((uv_stream_t *)&s->pipes[i]);
        close_h((uv_handle_t *)&s->pipes[i]);
        maybe_finish(s);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
        sx *s = h->data;
        b->base = s->buf;
        b->len = READ_BUF;
}

static void read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
        sx *s = st->data;
        int i = st == (uv_stream_t *)&s->pipes[0] ? 0 : 1;
        if (n > 0)
                write_all(i == 0 ? STDOUT_FILENO : STDERR_FILENO, b->base, (size_t)n);
        else if (n < 0)
                pipe_done(s, i);
}

static void grace_cb(uv_timer_t *t)
{
        sx *s = t->data;
        /* a descendant that escaped still holds a pipe after the cgroup was killed */
        pipe_done(s, 0);
        pipe_done(s, 1);
}

static void on_exit_(sx *s)
{
        if (s->exited)
                return;
        s->exited = true;
        uv_timer_stop(&s->t_reap);
        uv_timer_stop(&s->t_timeout);
        if (s->poll_active) {
                s->poll_active = false;
                uv_poll_stop(&s->pidfd_poll);
                close_h((uv_handle_t *)&s->pidfd_poll);
        }
        err_t err = ERR_INIT;
        /* nothing the command started outlives it (§6.0 ADVISED) */
        if (s->prep.cgroup)
                (void)nx_cgroup_kill(s->prep.cgroup, &err);
        s->exit_code = nx_wait_status_to_exit_code(s->child.wait_status);
        bool oom = false;
        if (s->prep.cgroup && nx_cgroup_oom_killed(s->prep.cgroup, &oom, &err) == 0 && oom)
                fprintf(stderr, "nexusd sandbox exec: killed: out of memory (memory_mb)\n");
        if (s->timed_out) {
                fprintf(stderr, "nexusd sandbox exec: timed out\n");
                s->exit_code = 124;
        }
        uv_timer_start(&s->t_grace, grace_cb, PIPE_GRACE_MS, 0);
        maybe_finish(s);
}

static void try_reap(sx *s)
{
        err_t err = ERR_INIT;
        if (nx_child_reap(&s->child, false, &err) == 1)
                on_exit_(s);
}

static void pidfd_cb(uv_poll_t *p, int status, int events)
{
        try_reap(p->data);
}

static void reap_cb(uv_timer_t *t)
{
        try_reap(t->data);
}

static void kill_all(sx *s)
{
        err_t err = ERR_INIT;
        if (!s->exited)
                (void)nx_child_kill_tree(&s->child, s->prep.cgroup, SIGKILL, &err);
}

static void timeout_cb(uv_timer_t *t)
{
        sx *s = t->data;
        s->timed_out = true;
        kill_all(s);
}

static void signal_cb(uv_signal_t *h, int signum)
{
        sx *s = h->data;
        s->interrupted = true;   /* --repeat: no further run */
        kill_all(s);
}

/* ---------------------------------------------------------------- main -------------- */

typedef struct sx_env {
        char bwrap[PATH_MAX];
        char helper[PATH_MAX];
        const char *rootfs;
        bool drop_ids;
        uid_t uid;
        int64_t pids;
} sx_env;

static int resolve_env(const sx_opts *o, nx_config *cfg, bool have_cfg, sx_env *e, err_t *err)
{
        memset(e, 0, sizeof(*e));
        if (nx_bwrap_find(have_cfg ? cfg->bwrap.bwrap_path : NULL, e->bwrap, sizeof(e->bwrap),
                          err) < 0)
                return -1;
        if (nx_bwrap_find_helper(have_cfg ? cfg->bwrap.sandbox_helper_path : NULL, e->helper,
                                 sizeof(e->helper), err) < 0)
                return -1;
        e->rootfs = o->rootfs ? o->rootfs : have_cfg && *cfg->bwrap.rootfs_path
                                                    ? cfg->bwrap.rootfs_path : NULL;
        e->drop_ids = geteuid() == 0;
        e->uid = (uid_t)(have_cfg ? cfg->bwrap.sandbox_uid : NX_SANDBOX_DEFAULT_UID);
        e->pids = have_cfg ? cfg->bwrap.pids_limit : NX_SANDBOX_DEFAULT_PIDS;
        return 0;
}

static int adopt_listener(void *proxy, int fd, err_t *err)
{
        return nx_proxy_adopt_listener(proxy, fd, err);
}

static int start(sx *s, const sx_opts *o, const sx_env *e, const char *workspace, int run,
                 err_t *err)
{
        _cleanup_json_ json_t *net = NULL;
        if (o->net) {
                json_error_t je;
                net = json_loads(o->net, JSON_REJECT_DUPLICATES, &je);
                if (!net)
                        return err_set(err, "--net: invalid JSON: %s", je.text);
                /* strict here (a person typed it): NetCapabilityV1, spec nexus §8.1 */
                if (netcap_validate(net, err) < 0)
                        return err_wrap(err, "--net");
        } else {
                net = json_pack("{s:s}", "mode", "none");
        }
        nx_cgroup_limits lim;
        if (parse_limits(o->limits, &lim, err) < 0)
                return -1;
        char id[64];
        if (o->repeat > 0)
                str_printf(id, sizeof(id), "exec-%d-%d", (int)getpid(), run);
        else
                str_printf(id, sizeof(id), "exec-%d", (int)getpid());
        s->proxy = nx_proxy_new(s->loop, id, net, NULL, audit_cb, s, err);
        if (!s->proxy)
                return err_wrap(err, "--net");
        nx_bwrap_run in = { .directive_id = id, .argv = o->argv, .facility_path = workspace,
                            .cwd = o->cwd ? o->cwd : "", .envp = NULL, .limits = lim,
                            .default_pids = e->pids, .rootfs_path = e->rootfs, .net = net,
                            .bwrap_path = e->bwrap, .helper_path = e->helper,
                            .landlock_min_abi = 1, .drop_ids = e->drop_ids, .uid = e->uid,
                            .gid = (gid_t)e->uid };
        if (nx_bwrap_prepare(&in, &s->prep, err) < 0)
                return -1;
        s->prep_ready = true;
        /* the command starts only once the proxy listens (contract step 4) */
        if (nx_bwrap_start(&s->prep, &s->child, adopt_listener, s->proxy, err) < 0)
                return -1;
        for (int i = 0; i < 2; i++) {
                uv_pipe_init(s->loop, &s->pipes[i], 0);
                s->pipes[i].data = s;
                if (uv_pipe_open(&s->pipes[i], i == 0 ? s->child.stdout_fd : s->child.stderr_fd) != 0) {
                        close_h((uv_handle_t *)&s->pipes[i]);
                        return err_set(err, "cannot watch the command's output");
                }
                s->pipe_open[i] = true;
                uv_read_start((uv_stream_t *)&s->pipes[i], alloc_cb, read_cb);
        }
        s->child.stdout_fd = s->child.stderr_fd = -1;   /* libuv owns them now */
        if (s->child.pidfd >= 0 && uv_poll_init(s->loop, &s->pidfd_poll, s->child.pidfd) == 0) {
                s->pidfd_poll.data = s;
                s->poll_active = true;
                uv_poll_start(&s->pidfd_poll, UV_READABLE, pidfd_cb);
        } else {
                uv_timer_start(&s->t_reap, reap_cb, 20, 20);
        }
        if (o->timeout_s > 0)
                uv_timer_start(&s->t_timeout, timeout_cb, (uint64_t)o->timeout_s * 1000, 0);
        return 0;
}

static void drain_loop(sx *s)
{
        /* close whatever is still open and let libuv finish the close callbacks */
        for (int i = 0; i < 2; i++)
                if (s->pipe_open[i]) {
                        s->pipe_open[i] = false;
                        close_h((uv_handle_t *)&s->pipes[i]);
                }
        if (s->poll_active) {
                s->poll_active = false;
                close_h((uv_handle_t *)&s->pidfd_poll);
        }
        if (s->proxy && !s->finishing) {
                s->finishing = true;
                nx_proxy_close(s->proxy, proxy_closed, s);
        } else if (!s->proxy) {
                proxy_closed(s);
        }
        uv_run(s->loop, UV_RUN_DEFAULT);
}

static double mono_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* One run: a fresh proxy, cgroup, seccomp memfd and sandbox — what the daemon does for one
 * untrusted directive — then its teardown. Returns the exit code; *interrupted when SIGINT or
 * SIGTERM arrived. */
static int run_once(const sx_opts *o, const sx_env *e, const char *workspace, int run,
                    FILE *audit, char *buf, bool *interrupted)
{
        err_t err = ERR_INIT;
        sx s;
        memset(&s, 0, sizeof(s));
        s.child = (nx_child)NX_CHILD_INIT;
        s.loop = uv_default_loop();
        s.buf = buf;
        s.audit = audit;
        uv_timer_init(s.loop, &s.t_reap);
        uv_timer_init(s.loop, &s.t_grace);
        uv_timer_init(s.loop, &s.t_timeout);
        s.t_reap.data = s.t_grace.data = s.t_timeout.data = &s;
        uv_signal_init(s.loop, &s.sigint);
        uv_signal_init(s.loop, &s.sigterm);
        s.sigint.data = s.sigterm.data = &s;
        uv_signal_start(&s.sigint, signal_cb, SIGINT);
        uv_signal_start(&s.sigterm, signal_cb, SIGTERM);

        int rc = start(&s, o, e, workspace, run, &err);
        if (rc < 0) {
                rc = setup_fail("%s", err.msg);
                if (s.child.pid > 0) {
                        kill_all(&s);
                        (void)nx_child_reap(&s.child, true, &err);
                }
                s.exited = true;
                drain_loop(&s);
        } else {
                uv_run(s.loop, UV_RUN_DEFAULT);
                rc = s.exit_code;
                drain_loop(&s);
        }
        if (s.prep_ready) {
                err_t ferr = ERR_INIT;
                if (nx_bwrap_prepared_free(&s.prep, &ferr) < 0)
                        fprintf(stderr, "nexusd sandbox exec: cleanup: %s\n", ferr.msg);
        }
        nx_child_close(&s.child);
        *interrupted = s.interrupted;
        return rc;
}

int nx_sandbox_exec_main(int argc, char **argv)
{
        if (argc < 2 || strcmp(argv[1], "exec") != 0) {
                fputs(usage_text, stderr);
                return 2;
        }
        sx_opts o;
        int rc = parse_args(argc, argv, &o);
        if (rc != 0)
                return rc == 1 ? 0 : rc;
        signal(SIGPIPE, SIG_IGN);
        /* stderr belongs to the command: only our warnings and errors join it */
        log_set_level(LOG_LEVEL_WARN);
        err_t err = ERR_INIT;
        nx_config cfg = { 0 };
        bool have_cfg = false;
        if (o.config) {
                if (nx_config_load(o.config, &cfg, &err) < 0)
                        return setup_fail("%s", err.msg);
                have_cfg = true;
        }
        sx_env e;
        if (resolve_env(&o, &cfg, have_cfg, &e, &err) < 0) {
                nx_config_free(&cfg);
                return setup_fail("%s", err.msg);
        }
        char workspace[PATH_MAX];
        bool tmp_ws = !o.workspace;
        if (tmp_ws) {
                str_copy(workspace, sizeof(workspace), "/tmp/nexus-exec-XXXXXX");
                if (!mkdtemp(workspace)) {
                        nx_config_free(&cfg);
                        return setup_fail("create a workspace: %s", strerror(errno));
                }
        } else if (!realpath(o.workspace, workspace)) {
                nx_config_free(&cfg);
                return setup_fail("--workspace %s: %s", o.workspace, strerror(errno));
        }

        FILE *audit = NULL;
        char *buf = malloc(READ_BUF);
        if (!buf) {
                rc = setup_fail("out of memory");
                goto out;
        }
        if (o.audit) {
                audit = fopen(o.audit, "ae");
                if (!audit) {
                        rc = setup_fail("--audit %s: %s", o.audit, strerror(errno));
                        goto out;
                }
        }
        int64_t runs = o.repeat > 0 ? o.repeat : 1;
        rc = 0;
        for (int64_t i = 0; i < runs; i++) {
                if (i > 0 && o.gap_ms > 0) {
                        struct timespec ts = { (time_t)(o.gap_ms / 1000),
                                               (long)(o.gap_ms % 1000) * 1000000 };
                        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                                ;
                }
                bool interrupted = false;
                double t0 = mono_ms();
                int code = run_once(&o, &e, workspace, (int)i, audit, buf, &interrupted);
                double ms = mono_ms() - t0;
                if (o.repeat > 0) {
                        fprintf(stderr, "{\"run\":%lld,\"exit_code\":%d,\"ms\":%.3f}\n",
                                (long long)i, code, ms);
                        fflush(stderr);
                }
                if (o.repeat == 0 || (rc == 0 && code != 0))
                        rc = code;
                if (interrupted)
                        break;
        }
out:
        if (audit)
                fclose(audit);
        free(buf);
        (void)uv_loop_close(uv_default_loop());
        err_t rerr = ERR_INIT;
        if (tmp_ws && nx_rootfs_remove_tree(workspace, &rerr) < 0)
                fprintf(stderr, "nexusd sandbox exec: %s\n", rerr.msg);
        nx_bwrap_etc_shared_release();
        nx_config_free(&cfg);
        return rc;
}
