/* agent/run.c — one directive from lease to acknowledged result (spec nexus §5), on the
 * loop thread. Phases:
 *
 *   START     parse the lease, disk/facility/profile checks (reject path §5.2), facility
 *             lock for the whole run; untrusted: proxy + nx_bwrap_prepare (a failure is a
 *             rejection); POST started (retried §4.7)
 *   PREPARE   host: clone into an empty facility, jailed (gitsafe, on the thread pool);
 *             untrusted: the clone runs inside the sandbox, through the proxy (D15)
 *   RUN       spawn (host driver: own session, fresh cgroup; bwrap driver: sandbox pid from
 *             --info-fd, proxy listener in its netns, then --block-fd), pipes → logstream →
 *             uploads, proxy audit → egress_report → uploads (stream "egress"), pidfd for
 *             exit, deadline and cancel timers
 *   DRAIN     child reaped, pipes closed (escapees killed through the cgroup), proxy closed,
 *             uploads done
 *   DIFF      jailed git diff (thread pool), bounded, truncation flagged
 *   REPORT    finished → fsync'd WAL → POST (retried) → WAL entry removed on an answer
 *
 * A run owns its libuv handles; it frees itself once every handle has closed. */
#include "agent/daemon.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/egress_report.h"
#include "agent/envinject.h"
#include "agent/facility.h"
#include "agent/gitsafe.h"
#include "agent/logstream.h"
#include "core/base64.h"
#include "core/cleanup.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "proto/wire.h"
#include "proxy/proxy.h"
#include "sandbox/bwrap.h"
#include "sandbox/host.h"
#include "sandbox/proctree.h"

extern char **environ;

typedef enum run_phase {
        PH_START = 0,
        PH_PREPARE,
        PH_RUN,
        PH_DRAIN,
        PH_DIFF,
        PH_REPORT,
        PH_CLOSING,
} run_phase;

struct nx_run {
        nx_daemon *d;
        nx_run *next;
        run_phase phase;
        char id[NX_WAL_ID_MAX + 1];
        char token[4200];
        wire_directive_lease lease;
        const char *profile;
        int64_t t0;                      /* monotonic claim time */
        nx_facility fac;
        nx_logstream *ls;
        const char *driver;              /* "host", "bwrap"; "" until prepared */
        nx_host_prepared hp;
        bool hp_ready;
        /* untrusted profile (bwrap driver, docs/architecture.md "Untrusted profile run
         * sequence"): prepared before `started`, proxy listener inside the sandbox netns */
        nx_bwrap_prepared bp;
        bool bp_ready;
        char **senv;                     /* the directive variables given to the sandbox */
        char repo_url[NX_REPO_URL_MAX + 1];   /* clone inside the sandbox when non-empty */
        nx_proxy *proxy;
        bool proxy_closing;
        nx_egress_report *egress;
        uv_timer_t t_egress;
        json_t *caps;                    /* effective_capabilities_summary */
        nx_child child;
        char **envp;

        uv_pipe_t pipes[2];
        bool pipe_open[2];
        bool reading;
        char *rbuf[2];
        uv_poll_t pidfd_poll;
        bool pidfd_active;
        uv_timer_t t_deadline, t_hb, t_kill, t_grace, t_reap, t_upload;
        int open_handles;

        bool started_ok;
        bool deadline_passed, canceled, server_cancel, child_exited, killed_term;
        bool upload_inflight, hb_inflight;
        char reject[256];                /* non-empty: §5.2 rejection reason */
        char prepare_error[512];         /* non-empty: §5.4 prepare failure */
        int exit_code;
        const char *status;

        uv_work_t work;
        nx_git_result git;
        int git_rc;
        char git_err[512];
        json_t *report;                  /* the finished request */
        bool token_refreshed;
};

static void run_step(nx_run *r);
static void upload_pump(nx_run *r);
static void run_cancel(nx_run *r, const char *why);
static void bwrap_run_fill(nx_run *r, nx_bwrap_run *out);

/* ---------------------------------------------------------------- helpers ------------- */

static const char *run_bearer(void *ctx)
{
        return ((nx_run *)ctx)->token;
}

static void run_path(const nx_run *r, const char *what, char *out, size_t outsz)
{
        str_printf(out, outsz, "/conduits/v1/directives/%s/%s", r->id, what);
}

static void tape(nx_run *r, const char *event, json_t *detail)
{
        nx_tape_event(r->d->tape, r->id, r->lease.spec.facility.id, r->profile,
                      r->driver ? r->driver : "", event, detail);
        json_decref(detail);
}

static void message(nx_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void message(nx_run *r, const char *fmt, ...)
{
        if (!r->ls)
                return;
        char text[1024];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(text, sizeof(text), fmt, ap);
        (void)n;
        va_end(ap);
        err_t err = ERR_INIT;
        nx_logstream_message(r->ls, NX_STDERR, text, &err);
        upload_pump(r);
}

/* ---------------------------------------------------------------- handle bookkeeping - */

/* One of the run's handles (libuv handles, the proxy) is gone; the last one frees it. */
static void handle_released(nx_run *r)
{
        if (--r->open_handles > 0)
                return;
        nx_daemon *d = r->d;
        /* unlink from the daemon's list */
        for (nx_run **pp = &d->runs; *pp; pp = &(*pp)->next) {
                if (*pp == r) {
                        *pp = r->next;
                        break;
                }
        }
        nx_child_close(&r->child);   /* the pidfd outlives its poll handle */
        wire_directive_lease_free(&r->lease);
        nx_logstream_free(r->ls);
        nx_env_free(r->envp);
        free(r->rbuf[0]);
        free(r->rbuf[1]);
        json_decref(r->report);
        json_decref(r->caps);
        nx_env_free(r->senv);
        nx_egress_report_free(r->egress);
        nx_git_result_free(&r->git);
        free(r);
        nx_daemon_run_done(d);
}

static void handle_closed(uv_handle_t *h)
{
        handle_released(h->data);
}

/* The directive's cgroup (host or bwrap driver), NULL when none. */
static nx_cgroup *run_cgroup(nx_run *r)
{
        return r->hp_ready ? r->hp.cgroup : r->bp_ready ? r->bp.cgroup : NULL;
}

static void driver_free(nx_run *r)
{
        err_t err = ERR_INIT;
        if (r->hp_ready) {
                if (nx_host_prepared_free(&r->hp, &err) < 0)
                        log_warn("cgroup cleanup failed (processes may still be running)",
                                 LOG_STR("directive_id", r->id), LOG_ERR(&err));
                r->hp_ready = false;
        }
        if (r->bp_ready) {
                if (nx_bwrap_prepared_free(&r->bp, &err) < 0)
                        log_warn("cgroup cleanup failed (processes may still be running)",
                                 LOG_STR("directive_id", r->id), LOG_ERR(&err));
                r->bp_ready = false;
        }
}

static void proxy_closed(void *ud)
{
        nx_run *r = ud;
        r->proxy = NULL;
        handle_released(r);
}

static void run_step(nx_run *r);

/* The proxy of a finished run is closed: audit complete, on with the report. */
static void proxy_drained(void *ud)
{
        nx_run *r = ud;
        r->proxy = NULL;
        uv_timer_stop(&r->t_egress);
        if (r->egress)
                nx_egress_report_finish(r->egress);
        if (r->phase != PH_CLOSING)
                run_step(r);
        handle_released(r);   /* the timers are still open: r is not freed here */
}

/* Async; the run stays alive until the proxy has closed every connection (its last audit
 * record, the summary, arrives before that). */
static void proxy_close(nx_run *r, void (*then)(void *ud))
{
        if (!r->proxy || r->proxy_closing)
                return;
        r->proxy_closing = true;
        nx_proxy_close(r->proxy, then ? then : proxy_closed, r);
}

static void close_handle(nx_run *r, uv_handle_t *h)
{
        if (!uv_is_closing(h))
                uv_close(h, handle_closed);
}

static void run_free(nx_run *r)
{
        r->phase = PH_CLOSING;
        for (int i = 0; i < 2; i++)
                if (r->pipe_open[i]) {
                        r->pipe_open[i] = false;
                        close_handle(r, (uv_handle_t *)&r->pipes[i]);
                }
        if (r->pidfd_active) {
                r->pidfd_active = false;
                close_handle(r, (uv_handle_t *)&r->pidfd_poll);
        }
        driver_free(r);
        proxy_close(r, NULL);
        nx_facility_close(&r->fac);
        close_handle(r, (uv_handle_t *)&r->t_egress);
        close_handle(r, (uv_handle_t *)&r->t_deadline);
        close_handle(r, (uv_handle_t *)&r->t_hb);
        close_handle(r, (uv_handle_t *)&r->t_kill);
        close_handle(r, (uv_handle_t *)&r->t_grace);
        close_handle(r, (uv_handle_t *)&r->t_reap);
        close_handle(r, (uv_handle_t *)&r->t_upload);
}

/* ---------------------------------------------------------------- report (§5.13) ----- */

static void count_directive(nx_run *r, const char *status)
{
        const char *sl[] = { status };
        metric_inc(r->d->m_directives, sl, 1);
        const char *dl[] = { r->started_ok && r->driver ? r->driver : "",
                             r->profile ? r->profile : "" };
        metric_observe(r->d->m_duration, dl, (double)(clock_mono_ms() - r->t0) / 1000.0);
}

static void finished_done(void *ctx, const nx_http_result *res);

static void token_refresh_done(void *ctx, const nx_http_result *res)
{
        nx_run *r = ctx;
        json_t *tok = res->body ? json_object_get(res->body, "directive_token") : NULL;
        if (res->status == 200 && json_is_string(tok)) {
                str_copy(r->token, sizeof(r->token), json_string_value(tok));
                char path[256];
                run_path(r, "finished", path, sizeof(path));
                nx_post_with_retry(r->d, "finished", path, json_incref(r->report), run_bearer,
                                   finished_done, r);
                return;
        }
        finished_done(r, res);
}

static void finished_done(void *ctx, const nx_http_result *res)
{
        nx_run *r = ctx;
        err_t err = ERR_INIT;
        if (res->status == 401 && !r->token_refreshed) {
                /* the token expired (a long run or a long outage): get a fresh one with our
                 * territory identity and try once more */
                r->token_refreshed = true;
                char path[256];
                run_path(r, "token", path, sizeof(path));
                nx_post_with_retry(r->d, "token", path, json_object(), NULL, token_refresh_done, r);
                return;
        }
        if (res->status >= 200 && res->status < 300) {
                tape(r, "finished_posted", json_pack("{s:s}", "status", r->status));
                count_directive(r, r->status);
                if (nx_wal_remove(r->d->wal, r->id, &err) < 0)
                        log_error("WAL remove failed", LOG_STR("directive_id", r->id), LOG_ERR(&err));
        } else if (nx_retry_answer_is_definitive((int)res->status)) {
                log_error("finished refused by the server, dropping it",
                          LOG_STR("directive_id", r->id), LOG_STR("error", res->error));
                if (nx_wal_remove(r->d->wal, r->id, &err) < 0)
                        log_error("WAL remove failed", LOG_STR("directive_id", r->id), LOG_ERR(&err));
        } else {
                /* it stays in the WAL and is replayed at the next start (D16) */
                tape(r, "finished_post_failed", json_pack("{s:s}", "error", res->error));
                log_error("finished not delivered, kept in the WAL", LOG_STR("directive_id", r->id),
                          LOG_STR("error", res->error));
        }
        run_free(r);
}

static void report_send(nx_run *r)
{
        r->phase = PH_REPORT;
        uv_timer_stop(&r->t_hb);
        /* release the facility and the cgroup before reporting: the server hands the
         * facility to the next directive as soon as it records the result */
        err_t err = ERR_INIT;
        driver_free(r);
        nx_facility_close(&r->fac);
        /* D16: on disk before it is sent */
        if (nx_wal_append(r->d->wal, r->id, r->report, &err) < 0)
                log_error("WAL append failed", LOG_STR("directive_id", r->id), LOG_ERR(&err));
        char path[256];
        run_path(r, "finished", path, sizeof(path));
        nx_post_with_retry(r->d, "finished", path, json_incref(r->report), run_bearer,
                           finished_done, r);
}

static void report_build(nx_run *r, const uint8_t *diff, size_t difflen, bool diff_truncated)
{
        char ts[RFC3339_MS_LEN];
        rfc3339_format_ms(clock_now_ms(), ts, sizeof(ts));
        json_t *manifest = r->ls ? nx_logstream_manifest(r->ls) : json_object();
        r->report = json_pack("{s:i, s:s, s:o, s:s}", "exit_code", r->exit_code, "status",
                              r->status, "artifacts_manifest", manifest ? manifest : json_object(),
                              "finished_at", ts);
        if (r->ls && nx_logstream_truncated(r->ls, NX_STDOUT))
                json_object_set_new(r->report, "stdout_truncated", json_true());
        if (r->ls && nx_logstream_truncated(r->ls, NX_STDERR))
                json_object_set_new(r->report, "stderr_truncated", json_true());
        if (difflen) {
                _cleanup_free_ char *b64 = base64_encode(diff, difflen);
                if (b64)
                        json_object_set_new(r->report, "diff_base64", json_string(b64));
        }
        if (diff_truncated)
                /* ADVISED: a truncated diff is sent and flagged, never silently dropped */
                json_object_set_new(r->report, "diff_truncated", json_true());
}

/* ---------------------------------------------------------------- diff (§5.12, D15) --- */

static void diff_work(uv_work_t *w)
{
        nx_run *r = w->data;
        err_t err = ERR_INIT;
        int64_t max = r->lease.spec.limits.has_max_diff_bytes && r->lease.spec.limits.max_diff_bytes > 0
                              ? r->lease.spec.limits.max_diff_bytes : 1048576;
        if (strcmp(r->profile, "untrusted") == 0) {
                /* D15 (review M3): in the directive's own sandbox stack, never on the host */
                nx_bwrap_run in;
                bwrap_run_fill(r, &in);
                r->git_rc = nx_git_diff_sandboxed(&in, (size_t)max, 30000, &r->git, &err);
        } else {
                r->git_rc = nx_git_diff(r->d->cfg->bwrap.bwrap_path, r->fac.path, (size_t)max,
                                        30000, &r->git, &err);
        }
        if (r->git_rc < 0)
                str_copy(r->git_err, sizeof(r->git_err), err.msg);
}

static void diff_after(uv_work_t *w, int status)
{
        nx_run *r = w->data;
        if (r->git_rc < 0 || r->git.exit_code != 0) {
                log_warn("git diff failed", LOG_STR("directive_id", r->id),
                         LOG_STR("error", r->git_rc < 0 ? r->git_err : r->git.log));
                report_build(r, NULL, 0, false);
        } else {
                if (r->git.out_truncated)
                        log_warn("diff larger than max_diff_bytes, sent truncated",
                                 LOG_STR("directive_id", r->id), LOG_INT("bytes", (int64_t)r->git.out_len));
                report_build(r, r->git.out, r->git.out_len, r->git.out_truncated);
        }
        report_send(r);
}

static void collect_and_report(nx_run *r)
{
        r->phase = PH_DIFF;
        const char *repo = r->lease.spec.facility.repo_url;
        if (!repo || !*repo || r->fac.dirfd < 0) {
                report_build(r, NULL, 0, false);
                report_send(r);
                return;
        }
        r->work.data = r;
        if (uv_queue_work(r->d->loop, &r->work, diff_work, diff_after) != 0) {
                report_build(r, NULL, 0, false);
                report_send(r);
        }
}

/* ---------------------------------------------------------------- uploads (§5.9) ----- */

static void start_reading(nx_run *r);

typedef struct chunk_ctx {
        nx_run *r;
        bool egress;                     /* an egress audit chunk (ec), else output (c) */
        nx_log_chunk c;
        nx_egress_chunk ec;
} chunk_ctx;

static void chunk_requeue(nx_run *r, chunk_ctx *cc)
{
        if (cc->egress)
                nx_egress_report_chunk_requeue(r->egress, &cc->ec);
        else
                nx_logstream_chunk_requeue(r->ls, &cc->c);
}

static void chunk_done(nx_run *r, chunk_ctx *cc)
{
        if (cc->egress)
                nx_egress_report_chunk_done(r->egress, &cc->ec);
        else
                nx_logstream_chunk_done(r->ls, &cc->c);
}

static void upload_resume(uv_timer_t *t)
{
        nx_run *r = t->data;
        r->upload_inflight = false;
        upload_pump(r);
}

static void chunk_posted(void *ctx, const nx_http_result *res)
{
        chunk_ctx *cc = ctx;
        nx_run *r = cc->r;
        if (res->status == 429 && r->phase < PH_CLOSING) {
                /* the server's report limit: keep the chunk (same seq) and pause uploads —
                 * output is not dropped because the server asked us to slow down; the
                 * outbox bound turns the pause into back-pressure on the command */
                int64_t wait = res->retry_after_s > 0 ? res->retry_after_s * 1000 : 2000;
                if (wait > 10000)
                        wait = 10000;
                log_warn("log chunk rate-limited, retrying", LOG_STR("directive_id", r->id),
                         LOG_INT("seq", cc->egress ? cc->ec.seq : cc->c.seq),
                         LOG_INT("wait_ms", wait));
                chunk_requeue(r, cc);
                free(cc);
                uv_timer_start(&r->t_upload, upload_resume, (uint64_t)wait, 0);
                return;   /* upload_inflight stays set until the timer fires */
        }
        if (res->status >= 200 && res->status < 300) {
                const char *sl[] = { cc->egress ? NX_EGRESS_STREAM
                                     : cc->c.stream == NX_STDOUT ? "stdout" : "stderr" };
                metric_inc(r->d->m_log_bytes, sl, cc->egress ? cc->ec.len : cc->c.len);
        } else {
                log_warn("log chunk upload failed", LOG_STR("directive_id", r->id),
                         LOG_STR("stream", cc->egress ? NX_EGRESS_STREAM : "output"),
                         LOG_INT("seq", cc->egress ? cc->ec.seq : cc->c.seq),
                         LOG_STR("error", res->error));
        }
        /* done either way (best effort, §5.9); a resend is deduplicated by the server */
        chunk_done(r, cc);
        free(cc);
        r->upload_inflight = false;
        upload_pump(r);
}

static void run_step(nx_run *r);

static void upload_pump(nx_run *r)
{
        if (!r->ls || r->upload_inflight || !r->started_ok)
                return;
        chunk_ctx *cc = calloc(1, sizeof(*cc));
        if (!cc)
                return;
        cc->r = r;
        if (!nx_logstream_next(r->ls, &cc->c)) {
                /* output first; the egress audit (stream "egress", own seqs) after it */
                if (r->egress && nx_egress_report_next(r->egress, &cc->ec)) {
                        cc->egress = true;
                } else {
                        free(cc);
                        if (r->phase == PH_DRAIN)
                                run_step(r);
                        else if (!r->reading)
                                start_reading(r);
                        return;
                }
        }
        err_t err = ERR_INIT;
        _cleanup_json_ json_t *body = cc->egress ? nx_egress_chunk_to_json(&cc->ec, &err)
                                                 : nx_log_chunk_to_json(&cc->c, &err);
        char path[256];
        run_path(r, "log_chunks", path, sizeof(path));
        r->upload_inflight = true;
        if (!body || !nx_http_post(r->d->http, path, body, r->token, NX_REPORT_TIMEOUT_MS,
                                   chunk_posted, cc, &err)) {
                nx_http_result res = { .status = 0, .retry_after_s = -1 };
                str_copy(res.error, sizeof(res.error), err.msg);
                chunk_posted(cc, &res);
                return;
        }
        if (!nx_logstream_backpressure(r->ls) && !r->reading && r->phase == PH_RUN)
                start_reading(r);
}

/* ---------------------------------------------------------------- child I/O ---------- */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
        nx_run *r = h->data;
        int i = h == (uv_handle_t *)&r->pipes[0] ? 0 : 1;
        b->base = r->rbuf[i];
        b->len = r->d->cfg->log.chunk_bytes;
}

static void pipe_closed_step(nx_run *r, int i)
{
        if (r->pipe_open[i]) {
                r->pipe_open[i] = false;
                uv_read_stop((uv_stream_t *)&r->pipes[i]);
                close_handle(r, (uv_handle_t *)&r->pipes[i]);
        }
        run_step(r);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
        nx_run *r = s->data;
        int i = s == (uv_stream_t *)&r->pipes[0] ? 0 : 1;
        if (n > 0) {
                err_t err = ERR_INIT;
                nx_logstream_write(r->ls, i == 0 ? NX_STDOUT : NX_STDERR, b->base, (size_t)n, &err);
                if (nx_logstream_backpressure(r->ls) && r->reading) {
                        /* bounded memory: stop reading until uploads catch up; the child
                         * blocks on a full pipe, which is the back-pressure we want */
                        r->reading = false;
                        for (int k = 0; k < 2; k++)
                                if (r->pipe_open[k])
                                        uv_read_stop((uv_stream_t *)&r->pipes[k]);
                }
                upload_pump(r);
        } else if (n < 0) {
                pipe_closed_step(r, i);
        }
}

static void start_reading(nx_run *r)
{
        if (r->phase != PH_RUN && r->phase != PH_DRAIN)
                return;
        r->reading = true;
        for (int k = 0; k < 2; k++)
                if (r->pipe_open[k])
                        uv_read_start((uv_stream_t *)&r->pipes[k], alloc_cb, read_cb);
}

static void on_child_exit(nx_run *r)
{
        if (r->child_exited)
                return;
        r->child_exited = true;
        uv_timer_stop(&r->t_deadline);
        uv_timer_stop(&r->t_kill);
        uv_timer_stop(&r->t_reap);
        if (r->pidfd_active) {
                r->pidfd_active = false;
                uv_poll_stop(&r->pidfd_poll);
                close_handle(r, (uv_handle_t *)&r->pidfd_poll);
        }
        /* the run is over: nothing it started may outlive it (§6.0 ADVISED) */
        err_t err = ERR_INIT;
        if (run_cgroup(r))
                nx_cgroup_kill(run_cgroup(r), &err);
        r->exit_code = 0;
        r->status = nx_run_outcome(r->child.wait_status, r->deadline_passed, r->canceled,
                                   &r->exit_code);
        if (run_cgroup(r)) {
                bool oom = false;
                if (nx_cgroup_oom_killed(run_cgroup(r), &oom, &err) == 0 && oom) {
                        r->status = "failed";
                        message(r, "[nexus] killed: out of memory (limits.memory_mb)\n");
                }
        }
        tape(r, "run_finished", json_pack("{s:s, s:i}", "status", r->status, "exit_code",
                                          r->exit_code));
        run_step(r);
}

static void try_reap(nx_run *r)
{
        err_t err = ERR_INIT;
        int rc = nx_child_reap(&r->child, false, &err);
        if (rc == 1)
                on_child_exit(r);
        else if (rc < 0)
                log_warn("reap failed", LOG_STR("directive_id", r->id), LOG_ERR(&err));
}

static void pidfd_cb(uv_poll_t *p, int status, int events)
{
        try_reap(p->data);
}

static void reap_timer_cb(uv_timer_t *t)
{
        try_reap(t->data);
}

static void grace_cb(uv_timer_t *t)
{
        nx_run *r = t->data;
        /* pipes still open after the child exited and its cgroup was killed: give up on
         * them rather than wait for a descendant that escaped (§6.0 ADVISED) */
        for (int i = 0; i < 2; i++)
                if (r->pipe_open[i])
                        pipe_closed_step(r, i);
}

static void deadline_cb(uv_timer_t *t)
{
        nx_run *r = t->data;
        r->deadline_passed = true;
        err_t err = ERR_INIT;
        log_info("directive timed out", LOG_STR("directive_id", r->id));
        if (r->phase == PH_RUN && !r->child_exited)
                nx_child_kill_tree(&r->child, run_cgroup(r), SIGKILL, &err);
}

static void kill_cb(uv_timer_t *t)
{
        nx_run *r = t->data;
        err_t err = ERR_INIT;
        if (r->phase == PH_RUN && !r->child_exited)
                nx_child_kill_tree(&r->child, run_cgroup(r), SIGKILL, &err);
}

static void run_cancel(nx_run *r, const char *why)
{
        if (r->canceled)
                return;
        r->canceled = true;
        log_info("cancel requested", LOG_STR("directive_id", r->id), LOG_STR("by", why));
        tape(r, "cancel_requested", json_pack("{s:s}", "by", why));
        if (r->phase == PH_RUN && !r->child_exited) {
                /* SIGTERM to the whole tree, then SIGKILL after a grace period */
                err_t err = ERR_INIT;
                nx_child_kill_tree(&r->child, run_cgroup(r), SIGTERM, &err);
                uv_timer_start(&r->t_kill, kill_cb, NX_CANCEL_GRACE_MS, 0);
        }
}

void nx_run_cancel_all(nx_daemon *d, const char *why)
{
        for (nx_run *r = d->runs; r; r = r->next)
                run_cancel(r, why);
}

/* ---------------------------------------------------------------- directive heartbeat  */

static void dhb_fire(uv_timer_t *t);

static void dhb_done(void *ctx, const nx_http_result *res)
{
        nx_run *r = ctx;
        r->hb_inflight = false;
        if (r->phase >= PH_REPORT)
                return;
        if (res->status < 200 || res->status >= 300 || !res->body) {
                metric_inc(r->d->m_hb_errors, NULL, 1);
                log_warn("heartbeat failed", LOG_STR("directive_id", r->id),
                         LOG_STR("error", res->error));
                tape(r, "heartbeat_error", json_pack("{s:s}", "error", res->error));
                /* ADVISED: the lease is gone (re-queued, or another territory has it) */
                if (res->status == 404 || res->status == 409 || res->status == 403)
                        run_cancel(r, "lease lost");
        } else {
                json_t *tok = json_object_get(res->body, "directive_token");
                if (json_is_string(tok) && json_string_length(tok) &&
                    json_string_length(tok) < sizeof(r->token))
                        str_copy(r->token, sizeof(r->token), json_string_value(tok));
                if (json_is_true(json_object_get(res->body, "cancel_requested"))) {
                        r->server_cancel = true;
                        run_cancel(r, "server");
                }
        }
}

static void dhb_fire(uv_timer_t *t)
{
        nx_run *r = t->data;
        if (r->hb_inflight || r->phase >= PH_REPORT)
                return;
        char ts[RFC3339_MS_LEN], path[256];
        rfc3339_format_ms(clock_now_ms(), ts, sizeof(ts));
        _cleanup_json_ json_t *body = json_pack("{s:{s:s}, s:s}", "progress", "state", "running",
                                                "now", ts);
        run_path(r, "heartbeat", path, sizeof(path));
        err_t err = ERR_INIT;
        r->hb_inflight = true;
        if (!body || !nx_http_post(r->d->http, path, body, r->token, NX_REPORT_TIMEOUT_MS,
                                   dhb_done, r, &err))
                r->hb_inflight = false;
}

/* ---------------------------------------------------------------- spawn (host) ------- */

static int watch_child(nx_run *r, err_t *err);

static int spawn_host(nx_run *r, err_t *err)
{
        nx_env_vars vars = { .directive_id = r->id,
                             .facility_id = r->lease.spec.facility.id,
                             .territory_id = r->d->territory_id,
                             .sandbox_profile = r->lease.spec.sandbox_profile,
                             .workspace = r->lease.spec.facility.mount
                                                  ? r->lease.spec.facility.mount : "" };
        r->envp = nx_env(&vars, environ, err);
        if (!r->envp)
                return -1;
        const wire_limits *l = &r->lease.spec.limits;
        nx_host_run in = { .directive_id = r->id,
                           .command = r->lease.spec.command,
                           .shell = r->lease.spec.shell,
                           .facility_path = r->fac.path,
                           .cwd = r->lease.spec.cwd,
                           .envp = r->envp,
                           .limits = { .memory_mb = l->has_memory_mb ? l->memory_mb : 0,
                                       .cpu_millicores = l->has_cpu ? l->cpu : 0 },
                           .host_profile_enabled = nx_config_profile_enabled(r->d->cfg, "host"),
                           .cgroup_sys = NULL };
        if (nx_host_prepare(&in, &r->hp, err) < 0)
                return -1;
        r->hp_ready = true;
        r->driver = "host";
        if (nx_spawn(&r->hp.req, &r->child, err) < 0)
                return -1;
        return watch_child(r, err);
}

/* ---------------------------------------------------------------- untrusted (bwrap) -- */

static void egress_tick(uv_timer_t *t)
{
        nx_run *r = t->data;
        /* seal what the proxy recorded so far, so audit records are not held back */
        nx_egress_report_flush(r->egress);
        upload_pump(r);
}

static void egress_audit(void *ud, json_t *record)
{
        nx_run *r = ud;
        if (r->egress)
                nx_egress_report_audit_cb(r->egress, record);
}

/* The directive's sandbox description (bwrap_setup; the untrusted diff runs in the same
 * stack, D15). Strings are borrowed from r and d. */
static void bwrap_run_fill(nx_run *r, nx_bwrap_run *out)
{
        nx_daemon *d = r->d;
        const wire_directive_spec *sp = &r->lease.spec;
        const wire_limits *l = &sp->limits;
        *out = (nx_bwrap_run){ .directive_id = r->id,
                               .command = sp->command,
                               .shell = sp->shell,
                               .facility_path = r->fac.path,
                               .cwd = sp->cwd,
                               .envp = r->senv,
                               /* a directive without limits.memory_mb gets the configured
                                * default: one untrusted run must not exhaust the node */
                               .limits = { .memory_mb = l->has_memory_mb && l->memory_mb > 0
                                                                ? l->memory_mb
                                                                : d->cfg->bwrap.memory_mb,
                                           .cpu_millicores = l->has_cpu ? l->cpu : 0 },
                               .default_pids = d->cfg->bwrap.pids_limit,
                               .tmp_dir = d->sandbox_tmp,
                               .rootfs_path = d->cfg->bwrap.rootfs_path,
                               .net = sp->cap_net,
                               .fs = sp->cap_fs,
                               .bwrap_path = d->bwrap_path,
                               .helper_path = d->helper_path,
                               .landlock_min_abi = 1,
                               .repo_url = r->repo_url[0] ? r->repo_url : NULL,
                               .drop_ids = d->sandbox_drop_ids,
                               .uid = d->sandbox_uid,
                               .gid = (gid_t)d->sandbox_uid };
}

/* Before `started` (so a failure takes the §5.2 rejection path): the proxy with the
 * directive's net capability (invalid → rejected), the egress report, the in-sandbox clone
 * decision, and nx_bwrap_prepare (cgroup with limits + pids, seccomp memfd, generated /etc,
 * argv). Returns -1 with err when the directive must be rejected. A repo_url that fails the
 * §5.4 checks is a prepare failure instead (r->prepare_error; the command never runs). */
static int bwrap_setup(nx_run *r, err_t *err)
{
        nx_daemon *d = r->d;
        const wire_directive_spec *sp = &r->lease.spec;
        const char *repo = sp->facility.repo_url;
        if (repo && *repo) {
                char red[512];
                nx_repo_url_redact(repo, red, sizeof(red));
                bool empty = false;
                if (nx_repo_url_normalize(repo, r->repo_url, sizeof(r->repo_url), err) < 0) {
                        str_copy(r->prepare_error, sizeof(r->prepare_error), err->msg);
                        tape(r, "prepare_clone_rejected", json_pack("{s:s, s:s}", "error",
                                                                    err->msg, "repo_url", red));
                        r->repo_url[0] = '\0';
                        err_clear(err);
                } else if (nx_facility_is_empty(&r->fac, &empty, err) < 0) {
                        return err_wrap(err, "facility");
                } else if (!empty) {
                        r->repo_url[0] = '\0';
                        tape(r, "prepare_clone_skipped", json_pack("{s:s, s:s}", "reason",
                                                                   "workspace_not_empty",
                                                                   "repo_url", red));
                } else {
                        /* D15: the clone runs in this directive's sandbox, through its proxy */
                        tape(r, "prepare_clone_in_sandbox", json_pack("{s:s}", "repo_url", red));
                }
        }
        nx_env_vars vars = { .directive_id = r->id,
                             .facility_id = sp->facility.id,
                             .territory_id = d->territory_id,
                             .sandbox_profile = sp->sandbox_profile,
                             .workspace = sp->facility.mount ? sp->facility.mount : "" };
        r->senv = nx_env_standard(&vars, err);
        if (!r->senv)
                return -1;
        r->proxy = nx_proxy_new(d->loop, r->id, sp->cap_net, NULL, egress_audit, r, err);
        if (!r->proxy)
                return err_wrap(err, "net capability");
        r->open_handles++;   /* released by proxy_closed */
        nx_egress_report_cfg ec = { .chunk_bytes = (size_t)d->cfg->log.chunk_bytes };
        if (ec.chunk_bytes < NX_EGRESS_LINE_MAX)
                ec.chunk_bytes = NX_EGRESS_LINE_MAX;
        if (nx_egress_report_new(&ec, &r->egress, err) < 0)
                return err_wrap(err, "egress report");
        nx_bwrap_run in;
        bwrap_run_fill(r, &in);
        if (r->prepare_error[0])
                return 0;   /* nothing will run; no sandbox needed */
        if (nx_bwrap_prepare(&in, &r->bp, err) < 0)
                return err_wrap(err, "sandbox setup failed");
        r->bp_ready = true;
        r->driver = "bwrap";
        r->caps = nx_bwrap_summary(&in, d->landlock_abi);
        return 0;
}

static int adopt_listener(void *proxy, int fd, err_t *err)
{
        return nx_proxy_adopt_listener(proxy, fd, err);
}

/* The sandbox with its proxy listener inside its netns (contract step 4); nx_bwrap_start
 * kills what started on failure. */
static int spawn_bwrap(nx_run *r, err_t *err)
{
        if (!r->bp_ready)
                return err_set(err, "sandbox was not prepared");
        if (nx_bwrap_start(&r->bp, &r->child, adopt_listener, r->proxy, err) < 0)
                return -1;
        uv_timer_start(&r->t_egress, egress_tick, 1000, 1000);
        return watch_child(r, err);
}

/* The child's pipes and pidfd into the loop. */
static int watch_child(nx_run *r, err_t *err)
{
        for (int i = 0; i < 2; i++) {
                r->rbuf[i] = malloc((size_t)r->d->cfg->log.chunk_bytes);
                if (!r->rbuf[i])
                        return err_setc(err, ERR_INTERNAL, "out of memory");
                uv_pipe_init(r->d->loop, &r->pipes[i], 0);
                r->pipes[i].data = r;
                r->open_handles++;
                if (uv_pipe_open(&r->pipes[i], i == 0 ? r->child.stdout_fd : r->child.stderr_fd) != 0) {
                        close_handle(r, (uv_handle_t *)&r->pipes[i]);
                        return err_set(err, "cannot watch the child's output");
                }
                r->pipe_open[i] = true;
        }
        /* the pipes now belong to libuv */
        r->child.stdout_fd = r->child.stderr_fd = -1;
        if (r->child.pidfd >= 0 && uv_poll_init(r->d->loop, &r->pidfd_poll, r->child.pidfd) == 0) {
                r->pidfd_poll.data = r;
                r->open_handles++;
                r->pidfd_active = true;
                uv_poll_start(&r->pidfd_poll, UV_READABLE, pidfd_cb);
        } else {
                uv_timer_start(&r->t_reap, reap_timer_cb, 50, 50);   /* no pidfd: poll */
        }
        return 0;
}

/* ---------------------------------------------------------------- prepare (§5.4) ----- */

static void clone_work(uv_work_t *w)
{
        nx_run *r = w->data;
        err_t err = ERR_INIT;
        char url[NX_REPO_URL_MAX + 1];
        if (nx_repo_url_normalize(r->lease.spec.facility.repo_url, url, sizeof(url), &err) < 0) {
                r->git_rc = -1;
                str_copy(r->git_err, sizeof(r->git_err), err.msg);
                return;
        }
        int64_t timeout = 600000;
        if (r->lease.spec.has_timeout_seconds && r->lease.spec.timeout_seconds > 0) {
                int64_t left = r->lease.spec.timeout_seconds * 1000 - (clock_mono_ms() - r->t0);
                timeout = left < 1000 ? 1000 : left < timeout ? left : timeout;
        }
        r->git_rc = nx_git_clone(r->d->cfg->bwrap.bwrap_path, r->fac.path, url, timeout,
                                 &r->git, &err);
        if (r->git_rc < 0)
                str_copy(r->git_err, sizeof(r->git_err), err.msg);
        else if (r->git.exit_code != 0)
                str_printf(r->git_err, sizeof(r->git_err), "git clone exited with %d",
                           r->git.exit_code);
}

static void clone_after(uv_work_t *w, int status)
{
        nx_run *r = w->data;
        if (r->git.log[0]) {
                err_t err = ERR_INIT;
                nx_logstream_message(r->ls, NX_STDERR, r->git.log, &err);
        }
        if (r->git_rc < 0 || r->git.exit_code != 0) {
                str_copy(r->prepare_error, sizeof(r->prepare_error), r->git_err);
                tape(r, "prepare_clone_failed", json_pack("{s:s}", "error", r->git_err));
        } else {
                tape(r, "prepare_clone_succeeded", NULL);
        }
        nx_git_result_free(&r->git);
        run_step(r);
}

/* Returns true when a clone was queued (run_step resumes from clone_after). */
static bool prepare(nx_run *r)
{
        const char *repo = r->lease.spec.facility.repo_url;
        if (!repo || !*repo)
                return false;
        if (r->bp_ready || r->prepare_error[0])
                return false;   /* untrusted: the clone runs inside the sandbox (D15) */
        err_t err = ERR_INIT;
        char red[512];
        nx_repo_url_redact(repo, red, sizeof(red));
        if (nx_repo_url_check(repo, &err) < 0) {
                str_copy(r->prepare_error, sizeof(r->prepare_error), err.msg);
                tape(r, "prepare_clone_rejected", json_pack("{s:s, s:s}", "error", err.msg,
                                                            "repo_url", red));
                return false;
        }
        bool empty = false;
        if (nx_facility_is_empty(&r->fac, &empty, &err) < 0) {
                str_copy(r->prepare_error, sizeof(r->prepare_error), err.msg);
                return false;
        }
        if (!empty) {
                tape(r, "prepare_clone_skipped", json_pack("{s:s, s:s}", "reason",
                                                           "workspace_not_empty", "repo_url", red));
                return false;
        }
        message(r, "[prepare] facility empty; cloning %s\n", red);
        tape(r, "prepare_clone_started", json_pack("{s:s}", "repo_url", red));
        r->work.data = r;
        if (uv_queue_work(r->d->loop, &r->work, clone_work, clone_after) != 0) {
                str_copy(r->prepare_error, sizeof(r->prepare_error), "cannot queue the clone");
                return false;
        }
        return true;
}

/* ---------------------------------------------------------------- the state machine -- */

static void fail_before_run(nx_run *r, const char *why)
{
        /* §5.4 prepare failure path: deadline → timed_out/124, cancel → canceled/137,
         * otherwise failed/1; the user command never ran */
        message(r, "[prepare] failed: %s\n", why);
        r->status = r->deadline_passed ? "timed_out" : r->canceled ? "canceled" : "failed";
        r->exit_code = r->deadline_passed ? 124 : r->canceled ? 137 : 1;
        tape(r, "prepare_failed", json_pack("{s:s}", "error", why));
        r->phase = PH_DRAIN;
        run_step(r);
}

static void run_step(nx_run *r)
{
        err_t err = ERR_INIT;
        switch (r->phase) {
        case PH_PREPARE:
                if (r->prepare_error[0]) {
                        fail_before_run(r, r->prepare_error);
                        return;
                }
                if (r->canceled || r->deadline_passed) {
                        fail_before_run(r, r->canceled ? "canceled" : "deadline passed");
                        return;
                }
                r->phase = PH_RUN;
                tape(r, "run_started", json_pack("{s:s}", "cwd", r->lease.spec.cwd ? r->lease.spec.cwd : ""));
                if ((r->bp_ready ? spawn_bwrap(r, &err) : spawn_host(r, &err)) < 0) {
                        log_error("driver run failed", LOG_STR("directive_id", r->id),
                                  LOG_STR("driver", r->driver ? r->driver : ""), LOG_ERR(&err));
                        tape(r, "driver_error", json_pack("{s:s}", "error", err.msg));
                        message(r, "[nexus] %s\n", err.msg);
                        r->status = "failed";
                        r->exit_code = 1;   /* ADVISED: not 0 when nothing ran */
                        r->phase = PH_DRAIN;
                        run_step(r);
                        return;
                }
                start_reading(r);
                return;
        case PH_RUN:
                if (!r->child_exited)
                        return;
                if (r->pipe_open[0] || r->pipe_open[1]) {
                        if (!uv_is_active((uv_handle_t *)&r->t_grace))
                                uv_timer_start(&r->t_grace, grace_cb, NX_PIPE_GRACE_MS, 0);
                        if (!r->reading)
                                start_reading(r);
                        return;
                }
                uv_timer_stop(&r->t_grace);
                r->phase = PH_DRAIN;
                /* fallthrough */
                __attribute__((fallthrough));
        case PH_DRAIN:
                /* the proxy closes first: its last records (and the summary) are audited */
                if (r->proxy) {
                        proxy_close(r, proxy_drained);
                        return;
                }
                /* every chunk uploaded (or given up) before the result is reported */
                if (r->upload_inflight)
                        return;
                if (r->ls) {
                        nx_log_chunk c;
                        if (nx_logstream_next(r->ls, &c)) {
                                nx_logstream_chunk_requeue(r->ls, &c);
                                upload_pump(r);
                                return;
                        }
                }
                if (r->egress) {
                        nx_egress_report_finish(r->egress);
                        nx_egress_chunk ec;
                        if (nx_egress_report_next(r->egress, &ec)) {
                                nx_egress_report_chunk_requeue(r->egress, &ec);
                                upload_pump(r);
                                return;
                        }
                }
                if (r->child_exited)   /* §9.4: only for a directive that ran */
                        printf("{\"directive_id\":\"%s\",\"event\":\"directive_finished\","
                               "\"exit_code\":%d,\"status\":\"%s\",\"stderr_truncated\":%s,"
                               "\"stdout_truncated\":%s}\n",
                               r->id, r->exit_code, r->status,
                               r->ls && nx_logstream_truncated(r->ls, NX_STDERR) ? "true" : "false",
                               r->ls && nx_logstream_truncated(r->ls, NX_STDOUT) ? "true" : "false");
                fflush(stdout);
                if (r->reject[0] || r->prepare_error[0] || !(r->hp_ready || r->bp_ready)) {
                        report_build(r, NULL, 0, false);
                        report_send(r);
                } else {
                        collect_and_report(r);
                }
                return;
        case PH_START:
        case PH_DIFF:
        case PH_REPORT:
        case PH_CLOSING:
        default:
                return;
        }
}

static void started_done(void *ctx, const nx_http_result *res)
{
        nx_run *r = ctx;
        if (res->status < 200 || res->status >= 300) {
                /* §5.1 step 9: nothing more is sent; the lease lapses and is re-queued */
                tape(r, "started_post_failed", json_pack("{s:s}", "error", res->error));
                log_error("directive failed", LOG_STR("directive_id", r->id),
                          LOG_STR("error", "started was not accepted"), LOG_STR("detail", res->error));
                run_free(r);
                return;
        }
        r->started_ok = true;
        tape(r, "started_posted", NULL);
        int64_t hb = r->d->cfg->heartbeat.interval_ms > 0 ? r->d->cfg->heartbeat.interval_ms : 10000;
        uv_timer_start(&r->t_hb, dhb_fire, (uint64_t)hb, (uint64_t)hb);
        if (r->reject[0]) {
                /* ADVISED: say why in the log the user reads, then report failed/1 */
                message(r, "[nexus] directive rejected: %s\n", r->reject);
                r->status = "failed";
                r->exit_code = 1;
                r->phase = PH_DRAIN;
                run_step(r);
                return;
        }
        r->phase = PH_PREPARE;
        if (!prepare(r))
                run_step(r);
}

static void post_started(nx_run *r)
{
        char ts[RFC3339_MS_LEN], path[256];
        rfc3339_format_ms(clock_now_ms(), ts, sizeof(ts));
        json_t *body;
        if (r->reject[0]) {
                body = json_pack("{s:s, s:s, s:s}", "sandbox_version", "nexusd", "nexus_version",
                                 NX_VERSION_STR, "started_at", ts);
        } else if (r->caps) {
                json_t *caps = json_deep_copy(r->caps);
                if (caps) {
                        json_object_set_new(caps, "profile", json_string(r->profile));
                        json_object_set_new(caps, "fs", r->lease.spec.cap_fs
                                                                ? json_incref(r->lease.spec.cap_fs)
                                                                : json_null());
                }
                body = json_pack("{s:o, s:s, s:s, s:s}", "effective_capabilities_summary",
                                 caps ? caps : json_object(), "sandbox_version",
                                 "nexusd-bwrap/" NX_VERSION_STR, "nexus_version", NX_VERSION_STR,
                                 "started_at", ts);
        } else {
                json_t *net = r->lease.spec.cap_net ? json_incref(r->lease.spec.cap_net) : json_null();
                json_t *fs = r->lease.spec.cap_fs ? json_incref(r->lease.spec.cap_fs) : json_null();
                body = json_pack("{s:{s:s, s:s, s:o, s:o}, s:s, s:s, s:s}",
                                 "effective_capabilities_summary", "driver", "host", "profile",
                                 r->profile, "net", net, "fs", fs, "sandbox_version",
                                 "nexusd-host/" NX_VERSION_STR, "nexus_version", NX_VERSION_STR,
                                 "started_at", ts);
        }
        run_path(r, "started", path, sizeof(path));
        nx_post_with_retry(r->d, "started", path, body, run_bearer, started_done, r);
}

static bool profile_available(nx_daemon *d, const char *p)
{
        for (size_t i = 0; i < d->nprofiles; i++)
                if (strcmp(d->profiles[i], p) == 0)
                        return true;
        return false;
}

static void init_timer(nx_run *r, uv_timer_t *t)
{
        uv_timer_init(r->d->loop, t);
        t->data = r;
        r->open_handles++;
}

void nx_run_start(nx_daemon *d, json_t *lease)
{
        err_t err = ERR_INIT;
        nx_run *r = calloc(1, sizeof(*r));
        if (!r) {
                json_decref(lease);
                return;
        }
        r->d = d;
        r->t0 = clock_mono_ms();
        r->fac = (nx_facility)NX_FACILITY_INIT;
        r->child = (nx_child)NX_CHILD_INIT;
        r->status = "failed";
        r->exit_code = 1;
        init_timer(r, &r->t_deadline);
        init_timer(r, &r->t_hb);
        init_timer(r, &r->t_kill);
        init_timer(r, &r->t_grace);
        init_timer(r, &r->t_reap);
        init_timer(r, &r->t_upload);
        init_timer(r, &r->t_egress);
        r->next = d->runs;
        d->runs = r;
        d->nruns++;
        metric_set(d->m_in_flight, NULL, d->nruns);

        int prc = wire_directive_lease_parse(lease, &r->lease, &err);
        if (prc == 0)
                prc = wire_directive_lease_validate(&r->lease, &err);
        json_t *idv = json_object_get(lease, "directive_id");
        json_t *tokv = json_object_get(lease, "directive_token");
        if (prc < 0 && (!json_is_string(idv) || !json_is_string(tokv) ||
                        nx_wal_check_id(json_string_value(idv), NULL) < 0)) {
                /* not even an id and a token we could answer with: the lease lapses */
                log_error("unusable lease dropped", LOG_ERR(&err));
                json_decref(lease);
                run_free(r);
                return;
        }
        str_copy(r->id, sizeof(r->id), prc == 0 ? r->lease.directive_id : json_string_value(idv));
        str_copy(r->token, sizeof(r->token),
                 prc == 0 ? r->lease.directive_token : json_string_value(tokv));
        json_decref(lease);
        if (prc < 0) {
                /* ADVISED (nexus §8.3): an invalid spec is rejected with its reason */
                str_printf(r->reject, sizeof(r->reject), "invalid directive spec: %s", err.msg);
                nx_logstream_cfg lc0 = { .cap_bytes = d->cfg->log.max_output_bytes,
                                         .chunk_bytes = (size_t)d->cfg->log.chunk_bytes,
                                         .facility_dirfd = -1 };
                if (nx_logstream_new(&lc0, &r->ls, &err) < 0)
                        r->ls = NULL;
                post_started(r);
                return;
        }
        r->profile = r->lease.spec.sandbox_profile ? r->lease.spec.sandbox_profile : "";
        tape(r, "directive_claimed", json_pack("{s:I}", "timeout_seconds",
                                               (json_int_t)r->lease.spec.timeout_seconds));
        if (r->lease.spec.has_timeout_seconds && r->lease.spec.timeout_seconds > 0)
                uv_timer_start(&r->t_deadline, deadline_cb,
                               (uint64_t)r->lease.spec.timeout_seconds * 1000, 0);

        nx_logstream_cfg lc = { .cap_bytes = r->lease.spec.limits.has_max_output_bytes &&
                                                             r->lease.spec.limits.max_output_bytes > 0
                                                     ? r->lease.spec.limits.max_output_bytes
                                                     : d->cfg->log.max_output_bytes,
                                .chunk_bytes = (size_t)d->cfg->log.chunk_bytes,
                                .facility_dirfd = -1,
                                .directive_id = r->id };
        struct statvfs vfs;
        if (statvfs(d->cfg->work_dir, &vfs) == 0 &&
            (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize < NX_MIN_FREE_DISK) {
                log_error("insufficient disk space, rejecting directive", LOG_STR("directive_id", r->id),
                          LOG_INT("available_bytes", (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize));
                str_copy(r->reject, sizeof(r->reject), "insufficient disk space on the territory");
        } else if (!*r->profile) {
                /* ADVISED: no silent fall-back to host */
                str_copy(r->reject, sizeof(r->reject), "sandbox_profile is missing");
        } else if (!profile_available(d, r->profile)) {
                str_printf(r->reject, sizeof(r->reject),
                           "sandbox profile \"%s\" is not enabled on this territory", r->profile);
        } else if (!nx_facility_id_valid(r->lease.spec.facility.id)) {
                log_error("invalid facility ID, rejecting directive", LOG_STR("directive_id", r->id));
                str_copy(r->reject, sizeof(r->reject), "invalid facility id");
        } else if (nx_facility_open(d->cfg->work_dir, r->lease.spec.facility.id, &r->fac, &err) < 0) {
                str_copy(r->reject, sizeof(r->reject), err.msg);
        } else {
                lc.overflow_enabled = d->cfg->log_overflow.enabled;
                lc.facility_dirfd = r->fac.dirfd;
                lc.overflow_rel_dir = d->cfg->log_overflow.dir;
                lc.overflow_max_per_stream = d->cfg->log_overflow.max_bytes_per_stream;
                lc.mount = r->lease.spec.facility.mount;
        }
        if (nx_logstream_new(&lc, &r->ls, &err) < 0) {
                log_error("log stream setup failed", LOG_STR("directive_id", r->id), LOG_ERR(&err));
                lc.facility_dirfd = -1;
                lc.overflow_enabled = false;
                if (nx_logstream_new(&lc, &r->ls, &err) < 0)
                        r->ls = NULL;
        }
        /* D13: the untrusted stack is set up before `started`; whatever fails is a
         * rejection with its reason, never a weaker run */
        if (!r->reject[0] && strcmp(r->profile, "untrusted") == 0 && bwrap_setup(r, &err) < 0) {
                str_copy(r->reject, sizeof(r->reject), err.msg);
                driver_free(r);
        }
        if (r->reject[0])
                log_error("rejecting directive", LOG_STR("directive_id", r->id),
                          LOG_STR("reason", r->reject));
        post_started(r);
}
