/* jobs/jobs.c — see jobs.h. */
#include "jobs/jobs.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "domain/api.h"

#define DAY_MS (86400LL * 1000)

typedef struct reap_ctx {
        ms_app *app;
        const ms_directive *d;
        int64_t now;
        bool changed;
} reap_ctx;

static int reap_one_tx(ms_store *s, void *vc, err_t *err)
{
        reap_ctx *c = vc;
        /* §7.7: re-check inside the transaction that it is still leased and expired */
        if (ms_directive_expire_lease(s, c->d->id, c->now, c->now, &c->changed, err) < 0)
                return -1;
        if (!c->changed)
                return 0;
        /* A cancel was requested while it was leased: never hand it out again. */
        if (c->d->cancel_requested_at) {
                bool canceled = false;
                if (ms_directive_transition(s, c->d->id, MS_DIRECTIVE_QUEUED, MS_DIRECTIVE_CANCELED,
                                            c->now, &canceled, err) < 0)
                        return -1;
        }
        /* Recommended over the reference (which records nulls): the pre-expiry values */
        json_t *payload = json_pack("{s:s, s:o}", "territory_id", c->d->territory_id,
                                    "lease_expires_at", api_ts(c->d->lease_expires_at));
        ms_audit_new ev = { .account_id = c->d->account_id, .directive_id = c->d->id,
                            .territory_id = c->d->territory_id,
                            .event_type = "directive.lease_expired", .severity = "warn",
                            .payload = payload };
        api_audit(c->app, &ev, c->now);
        json_decref(payload);
        return 0;
}

int ms_job_reaper(ms_app *app, int64_t now, int64_t *processed, err_t *err)
{
        ms_directive_array l = { 0 };
        *processed = 0;
        if (ms_directive_list_expired_leases(app->store, now, MS_REAPER_BATCH, &l, err) < 0)
                return -1;
        for (size_t i = 0; i < l.n; i++) {
                reap_ctx c = { app, &l.items[i], now, false };
                err_t e = ERR_INIT;
                if (ms_store_tx(app->store, reap_one_tx, &c, &e) < 0) {
                        log_warn("reaper: cannot expire lease", LOG_STR("directive_id", l.items[i].id),
                                 LOG_ERR(&e));
                        continue;
                }
                if (c.changed) {
                        (*processed)++;
                        ms_app_notify_account(app, l.items[i].account_id);
                }
        }
        ms_directive_array_clear(&l);
        return 0;
}

typedef struct fail_ctx {
        ms_app *app;
        const ms_directive *d;
        int64_t now;
} fail_ctx;

static int fail_running_tx(ms_store *s, void *vc, err_t *err)
{
        fail_ctx *c = vc;
        bool changed = false, released = false;
        if (ms_directive_transition(s, c->d->id, MS_DIRECTIVE_RUNNING, MS_DIRECTIVE_FAILED, c->now,
                                    &changed, err) < 0)
                return -1;
        if (!changed)
                return 0;
        if (ms_facility_unlock(s, c->d->facility_id, c->d->id, c->now, &released, err) < 0)
                return -1;
        json_t *payload = json_pack("{s:s, s:s, s:s, s:o}", "action", "failed", "reason",
                                    "territory_offline", "territory_id", c->d->territory_id,
                                    "lease_expires_at", api_ts(c->d->lease_expires_at));
        ms_audit_new ev = { .account_id = c->d->account_id, .directive_id = c->d->id,
                            .territory_id = c->d->territory_id,
                            .event_type = "directive.lease_expired", .severity = "warn",
                            .payload = payload };
        api_audit(c->app, &ev, c->now);
        json_decref(payload);
        return 0;
}

static void fail_expired_running(ms_app *app, const char *territory_id, int64_t now)
{
        ms_directive_filter f = { .territory_id = territory_id, .has_state = true,
                                  .state = MS_DIRECTIVE_RUNNING,
                                  .limit = MS_LIST_MAX };
        ms_directive_array l = { 0 };
        err_t err = ERR_INIT;
        if (ms_directive_list(app->store, &f, &l, &err) < 0) {
                log_warn("offline: cannot list running directives",
                         LOG_STR("territory_id", territory_id), LOG_ERR(&err));
                return;
        }
        for (size_t i = 0; i < l.n; i++) {
                if (l.items[i].lease_expires_at == 0 || l.items[i].lease_expires_at >= now)
                        continue;   /* still heart-beating through its own lease */
                fail_ctx c = { app, &l.items[i], now };
                err_t e = ERR_INIT;
                if (ms_store_tx(app->store, fail_running_tx, &c, &e) < 0)
                        log_warn("offline: cannot fail directive",
                                 LOG_STR("directive_id", l.items[i].id), LOG_ERR(&e));
                else
                        ms_app_notify_account(app, l.items[i].account_id);
        }
        ms_directive_array_clear(&l);
}

int ms_job_offline(ms_app *app, int64_t now, int64_t *processed, err_t *err)
{
        *processed = 0;
        int64_t window = 3 * app->cfg.heartbeat_interval_s * 1000;
        /* Heartbeats could not arrive while this server was down: give every territory three
         * intervals after our own start before judging it. */
        if (app->started_at_ms && now - app->started_at_ms < window)
                return 0;
        int64_t cutoff = now - window;
        ms_territory_array l = { 0 };
        if (ms_territory_list_stale(app->store, cutoff, MS_LIST_MAX, &l, err) < 0)
                return -1;
        for (size_t i = 0; i < l.n; i++) {
                bool changed = false;
                err_t e = ERR_INIT;
                if (ms_territory_mark_offline(app->store, l.items[i].id, cutoff, now, &changed, &e) < 0) {
                        log_warn("offline: cannot mark territory", LOG_STR("territory_id", l.items[i].id),
                                 LOG_ERR(&e));
                        continue;
                }
                if (!changed)
                        continue;
                (*processed)++;
                log_warn("territory offline", LOG_STR("territory_id", l.items[i].id),
                         LOG_STR("name", l.items[i].name));
                fail_expired_running(app, l.items[i].id, now);
        }
        ms_territory_array_clear(&l);
        return 0;
}

static int64_t ttl_or(const ms_job_params *p, int64_t cfg_days)
{
        return p ? p->ttl_days : cfg_days;
}

int ms_job_log_retention(ms_app *app, const ms_job_params *p, int64_t now, int64_t *processed,
                         err_t *err)
{
        *processed = 0;
        int64_t ttl = ttl_or(p, app->cfg.log_chunk_ttl_days);
        if (ttl <= 0)
                return 0;
        int batch = p && p->batch_size > 0 ? p->batch_size : 1000;
        int max = p && p->max_batches > 0 ? p->max_batches : 10;
        return ms_log_chunk_delete_before(app->store, now - ttl * DAY_MS, batch, max, processed,
                                          err);
}

int ms_job_diff_retention(ms_app *app, const ms_job_params *p, int64_t now, int64_t *processed,
                          err_t *err)
{
        *processed = 0;
        int64_t ttl = ttl_or(p, app->cfg.diff_blob_ttl_days);
        if (ttl <= 0)
                return 0;
        int batch = p && p->batch_size > 0 ? p->batch_size : 100;
        return ms_diff_blob_purge_before(app->store, now - ttl * DAY_MS, batch, processed, err);
}

int ms_job_audit_retention(ms_app *app, const ms_job_params *p, int64_t now, int64_t *processed,
                           err_t *err)
{
        *processed = 0;
        int64_t ttl = ttl_or(p, app->cfg.audit_ttl_days);
        if (ttl <= 0)
                return 0;
        int batch = p && p->batch_size > 0 ? p->batch_size : 1000;
        int max = p && p->max_batches > 0 ? p->max_batches : 10;
        return ms_audit_event_delete_before(app->store, now - ttl * DAY_MS, batch, max, processed,
                                            err);
}

int ms_job_run(ms_app *app, const char *name, const ms_job_params *p, int64_t *processed,
               err_t *err)
{
        int64_t now = clock_now_ms();
        if (strcmp(name, "reaper") == 0)
                return ms_job_reaper(app, now, processed, err);
        if (strcmp(name, "offline") == 0)
                return ms_job_offline(app, now, processed, err);
        if (strcmp(name, "log-retention") == 0)
                return ms_job_log_retention(app, p, now, processed, err);
        if (strcmp(name, "diff-retention") == 0)
                return ms_job_diff_retention(app, p, now, processed, err);
        if (strcmp(name, "audit-retention") == 0)
                return ms_job_audit_retention(app, p, now, processed, err);
        return err_set(err, "unknown job \"%s\" (reaper, offline, log-retention, diff-retention, "
                            "audit-retention)", name);
}

/* ---------------------------------------------------------------- scheduler ---------- */

struct ms_scheduler {
        ms_app *app;
        pthread_t thread;
        pthread_mutex_t mu;
        pthread_cond_t cv;
        bool stop;
};

typedef struct schedule {
        const char *job;
        int64_t every_ms;
        int64_t next_ms;
} schedule;

static void *scheduler_main(void *p)
{
        ms_scheduler *s = p;
        int64_t now = clock_mono_ms();
        schedule plan[] = {
                { "reaper", 60 * 1000, now + 60 * 1000 },
                { "offline", s->app->cfg.heartbeat_interval_s * 1000,
                  now + s->app->cfg.heartbeat_interval_s * 1000 },
                { "log-retention", 3600 * 1000, now + 5 * 60 * 1000 },
                { "diff-retention", DAY_MS, now + 10 * 60 * 1000 },
                { "audit-retention", DAY_MS, now + 15 * 60 * 1000 },
        };
        pthread_mutex_lock(&s->mu);
        while (!s->stop) {
                int64_t next = INT64_MAX;
                for (size_t i = 0; i < sizeof(plan) / sizeof(plan[0]); i++)
                        if (plan[i].next_ms < next)
                                next = plan[i].next_ms;
                now = clock_mono_ms();
                if (next > now) {
                        /* CLOCK_MONOTONIC condvar so wall-clock jumps do not matter */
                        struct timespec ts;
                        clock_gettime(CLOCK_MONOTONIC, &ts);
                        int64_t wait = next - now;
                        ts.tv_sec += wait / 1000;
                        ts.tv_nsec += (wait % 1000) * 1000000L;
                        if (ts.tv_nsec >= 1000000000L) {
                                ts.tv_sec++;
                                ts.tv_nsec -= 1000000000L;
                        }
                        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
                        continue;
                }
                pthread_mutex_unlock(&s->mu);
                for (size_t i = 0; i < sizeof(plan) / sizeof(plan[0]); i++) {
                        if (plan[i].next_ms > now)
                                continue;
                        plan[i].next_ms = now + plan[i].every_ms;
                        int64_t n = 0;
                        err_t err = ERR_INIT;
                        if (ms_job_run(s->app, plan[i].job, NULL, &n, &err) < 0)
                                log_error("job failed", LOG_STR("job", plan[i].job), LOG_ERR(&err));
                        else if (n > 0)
                                log_info("job done", LOG_STR("job", plan[i].job),
                                         LOG_INT("processed", n));
                }
                ms_store_thread_release(s->app->store);
                pthread_mutex_lock(&s->mu);
        }
        pthread_mutex_unlock(&s->mu);
        return NULL;
}

int ms_scheduler_start(ms_app *app, ms_scheduler **out, err_t *err)
{
        ms_scheduler *s = calloc(1, sizeof(*s));
        if (!s)
                return err_setc(err, ERR_INTERNAL, "out of memory");
        s->app = app;
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&s->cv, &ca);
        pthread_condattr_destroy(&ca);
        pthread_mutex_init(&s->mu, NULL);
        int r = pthread_create(&s->thread, NULL, scheduler_main, s);
        if (r != 0) {
                pthread_cond_destroy(&s->cv);
                pthread_mutex_destroy(&s->mu);
                free(s);
                return err_errno(err, r, "start scheduler thread");
        }
        *out = s;
        return 0;
}

void ms_scheduler_stop(ms_scheduler *s)
{
        if (!s)
                return;
        pthread_mutex_lock(&s->mu);
        s->stop = true;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        free(s);
}
