/* agent/daemon.c — see daemon.h. The territory heartbeat (spec nexus §4.4), the poll loop
 * (§4.5, with the ADVISED rule: poll only with a free slot and claim at most the free slots),
 * WAL replay (§5.14 with D16), retries (§4.7) and graceful shutdown (§1.5 + ADVISED). */
#include "agent/daemon.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "build_info.h"
#include "core/cleanup.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "agent/version.h"
#include "obs/obs.h"
#include "sandbox/bwrap.h"
#include "sandbox/host.h"
#include "sandbox/landlock.h"
#include "sandbox/rootfs.h"

/* ---------------------------------------------------------------- retries (§4.7) ----- */

typedef struct retry_op {
        nx_daemon *d;
        char name[32];
        char path[256];
        json_t *body;
        const char *(*bearer)(void *ctx);
        nx_retry_cb cb;
        void *ctx;
        int attempt;
        uv_timer_t timer;
} retry_op;

static void retry_send(retry_op *op);

static void retry_closed(uv_handle_t *h)
{
        retry_op *op = h->data;
        json_decref(op->body);
        free(op);
}

static void retry_finish(retry_op *op, const nx_http_result *res)
{
        op->cb(op->ctx, res);
        uv_close((uv_handle_t *)&op->timer, retry_closed);
}

static void retry_timer_fired(uv_timer_t *t)
{
        retry_send(t->data);
}

static void retry_done(void *vop, const nx_http_result *res)
{
        retry_op *op = vop;
        if (res->status >= 200 && res->status < 300) {
                retry_finish(op, res);
                return;
        }
        op->attempt++;
        if (nx_retry_classify((int)res->status, res->timed_out) != NX_RETRY ||
            op->attempt >= NX_RETRY_MAX_ATTEMPTS) {
                retry_finish(op, res);
                return;
        }
        int64_t delay = nx_retry_delay_ms(op->attempt, res->retry_after_s, &op->d->rng);
        log_warn("request failed, retrying", LOG_STR("request", op->name),
                 LOG_INT("attempt", op->attempt), LOG_INT("max_attempts", NX_RETRY_MAX_ATTEMPTS),
                 LOG_STR("error", res->error), LOG_INT("delay_ms", delay));
        uv_timer_start(&op->timer, retry_timer_fired, (uint64_t)delay, 0);
}

static void retry_send(retry_op *op)
{
        err_t err = ERR_INIT;
        const char *bearer = op->bearer ? op->bearer(op->ctx) : NULL;
        if (!nx_http_post(op->d->http, op->path, op->body, bearer, NX_REPORT_TIMEOUT_MS,
                          retry_done, op, &err)) {
                nx_http_result res = { .status = 0, .retry_after_s = -1 };
                str_copy(res.error, sizeof(res.error), err.msg);
                retry_done(op, &res);
        }
}

void nx_post_with_retry(nx_daemon *d, const char *name, const char *path, json_t *body,
                        const char *(*bearer)(void *ctx), nx_retry_cb cb, void *ctx)
{
        retry_op *op = calloc(1, sizeof(*op));
        if (!op) {
                nx_http_result res = { .status = 0, .retry_after_s = -1 };
                str_copy(res.error, sizeof(res.error), "out of memory");
                json_decref(body);
                cb(ctx, &res);
                return;
        }
        op->d = d;
        str_copy(op->name, sizeof(op->name), name);
        str_copy(op->path, sizeof(op->path), path);
        op->body = body;
        op->bearer = bearer;
        op->cb = cb;
        op->ctx = ctx;
        uv_timer_init(d->loop, &op->timer);
        op->timer.data = op;
        retry_send(op);
}

/* ---------------------------------------------------------------- territory heartbeat  */

static void hb_schedule(nx_daemon *d);

static json_t *heartbeat_body(nx_daemon *d)
{
        json_t *labels = json_object();
        for (unsigned i = 0; i < d->cfg->labels_count; i++)
                json_object_set_new(labels, d->cfg->labels[i].key,
                                    json_string(d->cfg->labels[i].value));
        json_t *health = json_object();
        json_t *host = nx_host_health();
        if (host) {
                const char *drv[] = { "host" };
                metric_set(d->m_driver_healthy, drv,
                           json_is_true(json_object_get(host, "healthy")) ? 1 : 0);
                json_object_set_new(health, "host", host);
        }
        if (d->bwrap_health) {
                const char *drv[] = { "bwrap" };
                metric_set(d->m_driver_healthy, drv, d->untrusted_ok ? 1 : 0);
                json_object_set(health, "bwrap", d->bwrap_health);
        }
        json_t *profiles = json_array();
        for (size_t i = 0; i < d->nprofiles; i++)
                json_array_append_new(profiles, json_string(d->profiles[i]));
        /* ADVISED (spec §4.3 interop): the server computes slots from these */
        return json_pack("{s:s, s:i, s:o, s:{s:i, s:o, s:o, s:s}, s:{s:i}}", "nexus_version",
                         NX_VERSION_STR, "running_directives_count", (int)d->nruns, "labels",
                         labels, "capacity", "max_concurrent", (int)d->max_runs,
                         "sandbox_health", health, "supported_profiles", profiles,
                         "untrusted_driver", "bwrap", "runtime_status", "running_directives",
                         (int)d->nruns);
}

static void hb_done(void *vd, const nx_http_result *res)
{
        nx_daemon *d = vd;
        nx_daemon_ready(d, NULL, 0);
        if (res->status < 200 || res->status >= 300) {
                log_warn("territory heartbeat failed", LOG_STR("error", res->error));
        } else if (res->body) {
                /* adopt the server's interval hint, within sane bounds */
                json_t *v = json_object_get(res->body, "next_heartbeat_interval_seconds");
                if (json_is_integer(v) && json_integer_value(v) >= 5 &&
                    json_integer_value(v) <= 3600)
                        d->hb_interval_ms = json_integer_value(v) * 1000;
                /* §4.9: informational only, nothing is enforced */
                if (json_is_true(json_object_get(res->body, "upgrade_available")))
                        log_info("upgrade available",
                                 LOG_STR("latest_version",
                                         json_string_value(json_object_get(res->body,
                                                                           "latest_version"))));
                const char *minv = json_string_value(json_object_get(res->body,
                                                                     "min_compatible_version"));
                if (minv && *minv && nx_version_compare(NX_VERSION_STR, minv) < 0)
                        log_warn("nexusd version may be incompatible with server",
                                 LOG_STR("current", NX_VERSION_STR),
                                 LOG_STR("min_compatible", minv));
        }
        hb_schedule(d);
}

static void hb_fire(uv_timer_t *t)
{
        nx_daemon *d = t->data;
        if (d->stopping)
                return;
        err_t err = ERR_INIT;
        _cleanup_json_ json_t *body = heartbeat_body(d);
        if (!body || !nx_http_post(d->http, "/conduits/v1/territories/heartbeat", body, NULL,
                                   NX_REPORT_TIMEOUT_MS, hb_done, d, &err)) {
                log_warn("territory heartbeat failed", LOG_ERR(&err));
                hb_schedule(d);
        }
}

static void hb_schedule(nx_daemon *d)
{
        if (!d->stopping)
                uv_timer_start(&d->hb_timer, hb_fire, (uint64_t)d->hb_interval_ms, 0);
}

/* ---------------------------------------------------------------- poll loop (§4.5) --- */

static void poll_schedule(nx_daemon *d, int64_t delay_ms);

static void poll_done(void *vd, const nx_http_result *res)
{
        nx_daemon *d = vd;
        d->poll_inflight = false;
        if (d->stopping && res->status == 0)
                return;   /* our own shutdown cut the long-poll short: not an error */
        int64_t now = clock_mono_ms();
        if (res->status < 200 || res->status >= 300 || !res->body) {
                nx_breaker_failure(&d->breaker, now);
                const char *lbl[] = { "error" };
                metric_inc(d->m_poll, lbl, 1);
                metric_inc(d->m_poll_errors, NULL, 1);
                log_error("poll failed", LOG_STR("error", res->error));
                nx_daemon_ready(d, NULL, 0);
                int64_t delay = d->cfg->poll.retry_backoff_ms;
                if (res->retry_after_s > 0)
                        delay = nx_retry_after_cap_s(res->retry_after_s) * 1000;
                poll_schedule(d, delay);
                return;
        }
        nx_breaker_success(&d->breaker, now);
        d->last_poll_ok_ms = now;
        nx_daemon_ready(d, NULL, 0);
        json_t *leases = json_object_get(res->body, "directives");
        size_t n = json_is_array(leases) ? json_array_size(leases) : 0;
        const char *lbl[] = { n ? "ok" : "empty" };
        metric_inc(d->m_poll, lbl, 1);
        for (size_t i = 0; i < n; i++)
                nx_run_start(d, json_incref(json_array_get(leases, i)));
        if (n) {
                poll_schedule(d, 0);
                return;
        }
        json_t *ra = json_object_get(res->body, "retry_after_seconds");
        int64_t delay = json_is_integer(ra) && json_integer_value(ra) > 0
                                ? json_integer_value(ra) * 1000
                                : (d->cfg->poll.wait_seconds > 0 ? 0
                                                                 : d->cfg->poll.retry_backoff_ms);
        if (delay > 300000)
                delay = 300000;
        poll_schedule(d, delay);
}

static void poll_fire(uv_timer_t *t)
{
        nx_daemon *d = t->data;
        if (d->stopping || d->poll_inflight || d->replays_inflight)
                return;
        if (d->nruns >= d->max_runs)
                return;   /* nx_daemon_run_done polls again when a slot frees */
        int64_t next = 0;
        if (!nx_breaker_allow(&d->breaker, clock_mono_ms(), &next)) {
                int64_t wait = next - clock_mono_ms();
                log_warn("circuit breaker open, skipping poll", LOG_INT("cooldown_ms", wait));
                poll_schedule(d, wait > 0 ? wait : 1000);
                return;
        }
        json_t *profiles = json_array();
        for (size_t i = 0; i < d->nprofiles; i++)
                json_array_append_new(profiles, json_string(d->profiles[i]));
        unsigned free_slots = d->max_runs - d->nruns;
        _cleanup_json_ json_t *body = json_pack("{s:o, s:i}", "supported_sandbox_profiles",
                                                profiles, "max_directives_to_claim",
                                                (int)free_slots);
        if (body)
                /* our additive field: the server sizes the claim with this instead of the
                 * last territory heartbeat, which may be 30 s old */
                json_object_set_new(body, "runtime_status",
                                    json_pack("{s:i}", "running_directives", (int)d->nruns));
        /* the first poll does not wait: readiness needs one poll answered */
        if (body && d->cfg->poll.wait_seconds > 0 && d->last_poll_ok_ms)
                json_object_set_new(body, "wait_seconds", json_integer(d->cfg->poll.wait_seconds));
        err_t err = ERR_INIT;
        int64_t timeout = d->cfg->poll.long_poll_timeout_ms;
        int64_t need = (int64_t)d->cfg->poll.wait_seconds * 1000 + 10000;
        if (timeout > 0 && timeout < need)
                timeout = need;   /* a long-poll must outlive the server's wait */
        d->poll_inflight = true;
        if (!body || !nx_http_post(d->http, "/conduits/v1/polls", body, NULL, timeout, poll_done,
                                   d, &err)) {
                d->poll_inflight = false;
                nx_http_result res = { .status = 0, .retry_after_s = -1 };
                str_copy(res.error, sizeof(res.error), err.msg);
                poll_done(d, &res);
        }
}

static void poll_schedule(nx_daemon *d, int64_t delay_ms)
{
        if (!d->stopping)
                uv_timer_start(&d->poll_timer, poll_fire, (uint64_t)(delay_ms > 0 ? delay_ms : 0), 0);
}

/* ---------------------------------------------------------------- WAL replay (D16) --- */

typedef struct replay {
        nx_daemon *d;
        char directive_id[NX_WAL_ID_MAX + 1];
        json_t *report;
        char token[4200];
} replay;

static void replay_end(replay *rp)
{
        nx_daemon *d = rp->d;
        json_decref(rp->report);
        free(rp);
        if (--d->replays_inflight == 0) {
                log_info("WAL replay complete", LOG_INT("wal_depth", (int64_t)nx_wal_depth(d->wal)));
                poll_schedule(d, 0);
        }
}

static const char *replay_bearer(void *ctx)
{
        return ((replay *)ctx)->token;
}

static void replay_finished_done(void *ctx, const nx_http_result *res)
{
        replay *rp = ctx;
        err_t err = ERR_INIT;
        if ((res->status >= 200 && res->status < 300) || nx_retry_answer_is_definitive((int)res->status)) {
                if (res->status >= 300)
                        log_warn("WAL entry refused by the server, dropped",
                                 LOG_STR("directive_id", rp->directive_id),
                                 LOG_STR("error", res->error));
                else
                        log_info("WAL entry delivered", LOG_STR("directive_id", rp->directive_id));
                if (nx_wal_remove(rp->d->wal, rp->directive_id, &err) < 0)
                        log_error("WAL remove failed", LOG_ERR(&err));
        } else {
                log_error("WAL replay failed for directive", LOG_STR("directive_id", rp->directive_id),
                          LOG_STR("error", res->error));
        }
        replay_end(rp);
}

static void replay_token_done(void *ctx, const nx_http_result *res)
{
        replay *rp = ctx;
        json_t *tok = res->body ? json_object_get(res->body, "directive_token") : NULL;
        if (res->status != 200 || !json_is_string(tok)) {
                if (nx_retry_answer_is_definitive((int)res->status)) {
                        /* the directive is not ours any more (re-queued, or unknown): drop */
                        err_t err = ERR_INIT;
                        log_warn("WAL entry cannot be delivered, dropped",
                                 LOG_STR("directive_id", rp->directive_id),
                                 LOG_STR("error", res->error));
                        if (nx_wal_remove(rp->d->wal, rp->directive_id, &err) < 0)
                                log_error("WAL remove failed", LOG_ERR(&err));
                } else {
                        log_error("WAL replay failed for directive",
                                  LOG_STR("directive_id", rp->directive_id),
                                  LOG_STR("error", res->error));
                }
                replay_end(rp);
                return;
        }
        str_copy(rp->token, sizeof(rp->token), json_string_value(tok));
        char path[256];
        str_printf(path, sizeof(path), "/conduits/v1/directives/%s/finished", rp->directive_id);
        nx_post_with_retry(rp->d, "wal-replay", path, json_incref(rp->report), replay_bearer,
                           replay_finished_done, rp);
}

static void wal_replay(nx_daemon *d)
{
        nx_wal_entry *e = NULL;
        size_t n = 0, corrupt = 0;
        err_t err = ERR_INIT;
        if (nx_wal_pending(d->wal, &e, &n, &corrupt, &err) < 0) {
                log_error("WAL replay read failed", LOG_ERR(&err));
                return;
        }
        if (corrupt)
                log_warn("WAL: skipped corrupt entries", LOG_INT("count", (int64_t)corrupt));
        if (n)
                log_info("replaying WAL entries", LOG_INT("count", (int64_t)n));
        for (size_t i = 0; i < n; i++) {
                replay *rp = calloc(1, sizeof(*rp));
                if (!rp)
                        break;
                rp->d = d;
                str_copy(rp->directive_id, sizeof(rp->directive_id), e[i].directive_id);
                rp->report = json_incref(e[i].report);
                d->replays_inflight++;
                char path[256];
                /* the WAL holds no token: fetch a fresh one with our territory identity */
                str_printf(path, sizeof(path), "/conduits/v1/directives/%s/token", rp->directive_id);
                nx_post_with_retry(d, "wal-token", path, json_object(), NULL, replay_token_done, rp);
        }
        nx_wal_entries_free(e, n);
}

/* ---------------------------------------------------------------- shutdown (§1.5) ---- */

static void maybe_stop_loop(nx_daemon *d)
{
        if (!d->stopping || d->nruns || d->replays_inflight)
                return;
        uv_timer_stop(&d->shutdown_timer);
        uv_stop(d->loop);
}

static void shutdown_timeout(uv_timer_t *t)
{
        nx_daemon *d = t->data;
        if (d->nruns == 0)
                return;
        log_warn("shutdown timeout exceeded, canceling running directives",
                 LOG_INT("remaining", d->nruns));
        d->force_cancel = true;
        nx_run_cancel_all(d, "daemon shutdown");
}

static void on_signal(uv_signal_t *s, int signum)
{
        nx_daemon *d = s->data;
        if (d->stopping) {
                log_warn("second signal, exiting now", LOG_INT("signal", signum));
                _exit(1);
        }
        d->stopping = true;
        uv_timer_stop(&d->poll_timer);
        uv_timer_stop(&d->hb_timer);
        log_info("shutting down", LOG_INT("in_flight", d->nruns),
                 LOG_INT("timeout_ms", d->cfg->shutdown_timeout_ms));
        if (d->nruns && d->cfg->shutdown_timeout_ms > 0)
                uv_timer_start(&d->shutdown_timer, shutdown_timeout,
                               (uint64_t)d->cfg->shutdown_timeout_ms, 0);
        maybe_stop_loop(d);
}

void nx_daemon_run_done(nx_daemon *d)
{
        if (d->nruns)
                d->nruns--;
        metric_set(d->m_in_flight, NULL, d->nruns);
        if (d->stopping)
                maybe_stop_loop(d);
        else if (!d->poll_inflight)
                poll_schedule(d, 0);   /* a slot is free again */
}

/* ---------------------------------------------------------------- init / run --------- */

static int load_territory_id(nx_daemon *d, err_t *err)
{
        if (d->cfg->territory_id && *d->cfg->territory_id)
                return str_copy(d->territory_id, sizeof(d->territory_id), d->cfg->territory_id);
        _cleanup_fclose_ FILE *f = fopen(d->cfg->credentials_file, "re");
        if (!f)
                return err_errno(err, errno,
                                 "no territory_id in the config and no credentials at %s "
                                 "(run `nexusd enroll` first)", d->cfg->credentials_file);
        char text[4096];
        size_t n = fread(text, 1, sizeof(text) - 1, f);
        text[n] = '\0';
        err_t e2 = ERR_INIT;
        _cleanup_json_ json_t *j = json_parse(text, n, true, &e2);
        const char *tid = j ? json_string_value(json_object_get(j, "territory_id")) : NULL;
        if (!tid || !*tid)
                return err_set(err, "%s: no territory_id", d->cfg->credentials_file);
        return str_copy(d->territory_id, sizeof(d->territory_id), tid);
}

/* <work_dir>/.sandbox (0711, ours, not a link): the parent of the generated /etc, which the
 * sandbox uid must reach. A daemon killed with SIGKILL leaves its nexus-etc-* behind: they
 * are removed here, at the next start. */
static int sandbox_tmp_dir(nx_daemon *d, err_t *err)
{
        if (str_printf(d->sandbox_tmp, sizeof(d->sandbox_tmp), "%s/.sandbox", d->cfg->work_dir) < 0)
                return err_set(err, "work_dir path too long");
        if (mkdir(d->sandbox_tmp, 0711) < 0 && errno != EEXIST)
                return err_errno(err, errno, "create %s", d->sandbox_tmp);
        int fd = open(d->sandbox_tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0 || st.st_uid != geteuid() || fchmod(fd, 0711) < 0) {
                int e = errno;
                if (fd >= 0)
                        close(fd);
                return err_errno(err, e ? e : EPERM, "%s: not a directory owned by nexusd",
                                 d->sandbox_tmp);
        }
        DIR *dir = fdopendir(fd);
        if (!dir) {
                close(fd);
                return err_errno(err, errno, "read %s", d->sandbox_tmp);
        }
        struct dirent *de;
        while ((de = readdir(dir))) {
                if (strncmp(de->d_name, "nexus-etc-", 10) != 0)
                        continue;
                char p[4300];
                err_t rerr = ERR_INIT;
                if (str_printf(p, sizeof(p), "%s/%s", d->sandbox_tmp, de->d_name) >= 0 &&
                    nx_rootfs_remove_tree(p, &rerr) < 0)
                        log_warn("cannot remove a stale generated /etc", LOG_STR("path", p),
                                 LOG_ERR(&rerr));
        }
        closedir(dir);
        return 0;
}

/* The untrusted profile's stack (bwrap + seccomp + nexus-sandbox + netns listener), probed
 * once with a real sandbox (nx_bwrap_health). As root the sandbox runs as bwrap.sandbox_uid,
 * which must reach the facilities: work_dir becomes 0711 (traverse, not list; .nexus inside
 * stays 0700). */
static void probe_untrusted(nx_daemon *d)
{
        const nx_config *cfg = d->cfg;
        err_t err = ERR_INIT;
        d->sandbox_drop_ids = geteuid() == 0;
        d->sandbox_uid = (uid_t)cfg->bwrap.sandbox_uid;
        d->landlock_abi = nx_landlock_abi();
        bool found = nx_bwrap_find(cfg->bwrap.bwrap_path, d->bwrap_path, sizeof(d->bwrap_path),
                                   &err) == 0 &&
                     nx_bwrap_find_helper(cfg->bwrap.sandbox_helper_path, d->helper_path,
                                          sizeof(d->helper_path), &err) == 0;
        if (found && d->sandbox_drop_ids) {
                char probe[4200];
                str_printf(probe, sizeof(probe), "%s/x", cfg->work_dir);
                struct stat st;
                if (stat(cfg->work_dir, &st) == 0 && (st.st_mode & 0711) != 0711 &&
                    chmod(cfg->work_dir, (st.st_mode & 07777) | 0711) < 0)
                        log_warn("cannot make work_dir traversable for the sandbox uid",
                                 LOG_STR("work_dir", cfg->work_dir),
                                 LOG_STR("error", strerror(errno)));
                if (nx_bwrap_check_reachable(probe, d->sandbox_uid, d->sandbox_uid, &err) < 0)
                        found = false;
        }
        if (found && sandbox_tmp_dir(d, &err) < 0)
                found = false;
        if (!found) {
                d->bwrap_health = json_pack("{s:b, s:{s:s, s:s}}", "healthy", 0, "details",
                                            "driver", "bwrap", "error", err.msg);
        } else {
                d->bwrap_health = nx_bwrap_health(d->bwrap_path, d->helper_path,
                                                  cfg->bwrap.rootfs_path, d->sandbox_drop_ids,
                                                  d->sandbox_uid, d->sandbox_uid);
        }
        d->untrusted_ok = d->bwrap_health &&
                          json_is_true(json_object_get(d->bwrap_health, "healthy"));
        if (d->untrusted_ok)
                log_info("untrusted profile available", LOG_STR("bwrap", d->bwrap_path),
                         LOG_STR("nexus_sandbox", d->helper_path),
                         LOG_INT("landlock_abi", d->landlock_abi),
                         LOG_INT("sandbox_uid", d->sandbox_drop_ids ? (int64_t)d->sandbox_uid
                                                                    : (int64_t)geteuid()));
        else
                log_warn("untrusted profile unavailable: its directives are refused",
                         LOG_STR("error", json_string_value(json_object_get(
                                                  json_object_get(d->bwrap_health, "details"),
                                                  "error"))));
}

int nx_daemon_init(nx_daemon *d, nx_config *cfg, err_t *err)
{
        memset(d, 0, sizeof(*d));
        uv_mutex_init(&d->ready_mu);
        str_copy(d->ready_why, sizeof(d->ready_why), "starting");
        d->cfg = cfg;
        d->exit_code = 0;
        d->loop = uv_default_loop();
        d->max_runs = (unsigned)cfg->poll.max_directives_to_claim;
        d->hb_interval_ms = cfg->territory_heartbeat.interval_ms > 0
                                    ? cfg->territory_heartbeat.interval_ms : 30000;
        nx_rng_init_random(&d->rng);
        nx_breaker_init(&d->breaker, NULL);
        if (load_territory_id(d, err) < 0)
                return -1;
        if (nx_config_profile_enabled(cfg, "untrusted"))
                probe_untrusted(d);
        /* D12: a profile runs only if configured AND its driver is available here (§12
         * #85-93 as they apply: untrusted needs a healthy bwrap stack, never a fallback) */
        for (unsigned i = 0; i < cfg->supported_sandbox_profiles_count; i++) {
                const char *p = cfg->supported_sandbox_profiles[i];
                bool ok = strcmp(p, "host") == 0 || (strcmp(p, "untrusted") == 0 && d->untrusted_ok);
                if (ok && d->nprofiles < sizeof(d->profiles) / sizeof(d->profiles[0]))
                        d->profiles[d->nprofiles++] = p;
                else if (!ok)
                        log_warn("profile configured but its driver is not available here; not "
                                 "advertised", LOG_STR("profile", p));
        }
        if (d->nprofiles == 0)
                return err_set(err, "no configured sandbox profile can run here "
                                    "(supported_sandbox_profiles ∩ available drivers is empty)");
        char waldir[4200];
        str_printf(waldir, sizeof(waldir), "%s/.nexus", cfg->work_dir);
        if (nx_wal_open(waldir, &d->wal, err) < 0)
                return -1;
        if (cfg->debug_tape.enabled &&
            nx_tape_open(cfg->debug_tape.path, cfg->debug_tape.max_bytes, &d->tape, err) < 0)
                return -1;
        nx_http_cfg hc = { .base_url = cfg->server_url, .territory_id = d->territory_id,
                           .ca_file = cfg->tls.ca_file, .client_cert = cfg->tls.client_cert_file,
                           .client_key = cfg->tls.client_key_file,
                           .insecure_skip_verify = cfg->tls.insecure_skip_verify,
                           .default_timeout_ms = cfg->poll.long_poll_timeout_ms,
                           .max_response_bytes = 4 << 20, .user_agent = "nexusd/" NX_VERSION_STR };
        if (nx_http_new(d->loop, &hc, &d->http, err) < 0)
                return -1;
        d->metrics = metrics_new();
        if (!d->metrics)
                return err_setc(err, ERR_INTERNAL, "out of memory");
        const char *status_l[] = { "status" }, *dur_l[] = { "driver", "profile" },
                   *res_l[] = { "result" }, *drv_l[] = { "driver" }, *stream_l[] = { "stream" };
        static const double dur_b[] = { .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10 };
        d->m_directives = metrics_counter(d->metrics, "nexusd_directives_total",
                                          "Directives finished, by status.", 1, status_l, err);
        d->m_duration = metrics_histogram(d->metrics, "nexusd_directive_duration_seconds",
                                          "Claim to finished accepted.", 2, dur_l, dur_b,
                                          sizeof(dur_b) / sizeof(dur_b[0]), err);
        d->m_in_flight = metrics_gauge(d->metrics, "nexusd_directives_in_flight",
                                       "Directives running now.", 0, NULL, err);
        d->m_poll = metrics_counter(d->metrics, "nexusd_poll_total", "Polls by result.", 1,
                                    res_l, err);
        d->m_poll_errors = metrics_counter(d->metrics, "nexusd_poll_errors_total",
                                           "Failed polls.", 0, NULL, err);
        d->m_hb_errors = metrics_counter(d->metrics, "nexusd_heartbeat_errors_total",
                                         "Failed directive heartbeats.", 0, NULL, err);
        d->m_driver_healthy = metrics_gauge(d->metrics, "nexusd_driver_healthy",
                                            "Driver health (1/0).", 1, drv_l, err);
        d->m_log_bytes = metrics_counter(d->metrics, "nexusd_log_bytes_total",
                                         "Log bytes uploaded, by stream.", 1, stream_l, err);
        if (!d->m_directives || !d->m_duration || !d->m_in_flight || !d->m_poll ||
            !d->m_poll_errors || !d->m_hb_errors || !d->m_driver_healthy || !d->m_log_bytes)
                return -1;
        uv_timer_init(d->loop, &d->poll_timer);
        uv_timer_init(d->loop, &d->hb_timer);
        uv_timer_init(d->loop, &d->shutdown_timer);
        d->poll_timer.data = d->hb_timer.data = d->shutdown_timer.data = d;
        uv_signal_init(d->loop, &d->sigterm);
        uv_signal_init(d->loop, &d->sigint);
        d->sigterm.data = d->sigint.data = d;
        return 0;
}

static int collect_queue(void *ctx, metrics_sink *sink)
{
        nx_daemon *d = ctx;
        const char *wal[] = { "wal" }, *runs[] = { "runs" };
        metrics_sink_emit(sink, wal, (double)nx_wal_depth(d->wal));
        metrics_sink_emit(sink, runs, (double)d->nruns);
        return 0;
}

int nx_daemon_run(nx_daemon *d)
{
        err_t err = ERR_INIT;
        const char *what[] = { "queue" };
        metrics_gauge_func(d->metrics, "nexusd_queue_depth",
                           "Pending work: WAL entries not yet acknowledged, runs in progress.", 1,
                           what, collect_queue, d, &err);
        uv_signal_start(&d->sigterm, on_signal, SIGTERM);
        uv_signal_start(&d->sigint, on_signal, SIGINT);
        log_info("nexusd starting", LOG_STR("version", NX_VERSION_STR),
                 LOG_STR("commit", CONDUITS_COMMIT), LOG_STR("territory_id", d->territory_id),
                 LOG_STR("server", d->cfg->server_url), LOG_INT("workers", d->max_runs));
        if (d->cfg->observability.enabled &&
            nx_obs_start(d, d->cfg->observability.listen_host, d->cfg->observability.listen_port,
                         &d->obs, &err) < 0)
                log_error("observability server failed", LOG_ERR(&err));
        /* D16: undelivered results first; polling starts when the replay is over */
        wal_replay(d);
        hb_fire(&d->hb_timer);
        if (d->replays_inflight == 0)
                poll_schedule(d, 0);
        uv_run(d->loop, UV_RUN_DEFAULT);
        log_info("nexusd stopped", LOG_INT("wal_depth", (int64_t)nx_wal_depth(d->wal)));
        return d->exit_code;
}

static void close_walk(uv_handle_t *h, void *arg)
{
        if (!uv_is_closing(h))
                uv_close(h, NULL);
}

void nx_daemon_free(nx_daemon *d)
{
        if (d->obs) {
                nx_obs_stop(d->obs);
                d->obs = NULL;
        }
        if (d->http)
                nx_http_close(d->http, NULL, NULL);
        d->http = NULL;
        if (d->loop) {
                uv_walk(d->loop, close_walk, NULL);
                uv_run(d->loop, UV_RUN_DEFAULT);
                uv_loop_close(d->loop);
                d->loop = NULL;
        }
        nx_tape_close(d->tape);
        d->tape = NULL;
        nx_wal_close(d->wal);
        d->wal = NULL;
        metrics_free(d->metrics);
        d->metrics = NULL;
        json_decref(d->bwrap_health);
        d->bwrap_health = NULL;
        uv_mutex_destroy(&d->ready_mu);
}

static bool compute_ready(nx_daemon *d, char *why, size_t whysz)
{
        if (!d->territory_id[0]) {
                str_copy(why, whysz, "not enrolled");
                return false;
        }
        if (nx_breaker_get_state(&d->breaker) != NX_BREAKER_CLOSED) {
                str_printf(why, whysz, "circuit breaker %s",
                           nx_breaker_state_name(nx_breaker_get_state(&d->breaker)));
                return false;
        }
        int64_t window = ((int64_t)d->cfg->poll.wait_seconds * 1000 + 10000) * 3 +
                         d->cfg->poll.retry_backoff_ms * 3;
        if (!d->last_poll_ok_ms || clock_mono_ms() - d->last_poll_ok_ms > window) {
                str_copy(why, whysz, "no successful poll recently");
                return false;
        }
        str_copy(why, whysz, "ready");
        return true;
}

bool nx_daemon_ready(nx_daemon *d, char *why, size_t whysz)
{
        char w[128];
        bool ok = compute_ready(d, w, sizeof(w));
        uv_mutex_lock(&d->ready_mu);
        str_copy(d->ready_why, sizeof(d->ready_why), w);
        atomic_store(&d->ready, ok);
        uv_mutex_unlock(&d->ready_mu);
        if (why)
                str_copy(why, whysz, w);
        return ok;
}

bool nx_daemon_ready_cached(nx_daemon *d, char *why, size_t whysz)
{
        uv_mutex_lock(&d->ready_mu);
        bool ok = atomic_load(&d->ready);
        str_copy(why, whysz, d->ready_why);
        uv_mutex_unlock(&d->ready_mu);
        return ok;
}
