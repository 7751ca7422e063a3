/* jobs/jobs.h — periodic work (spec mothership §10.3, §7.7) and its scheduler thread.
 *
 * Each job is also callable on demand (`mothership admin job run NAME`). A job never aborts
 * the process: errors on one row are logged and the job continues. */
#pragma once
#include <stdint.h>

#include "app.h"
#include "core/error.h"
#include "store/store.h"

typedef struct ms_job_params {
        int64_t ttl_days;        /* retention jobs; <= 0 means "do nothing" (spec §10.3) */
        int batch_size;          /* <= 0: the job's default */
        int max_batches;         /* <= 0: the job's default */
} ms_job_params;

/* §7.7: re-queues up to 200 leased directives whose lease expired (audit directive.lease_expired
 * with the pre-expiry territory and expiry), then wakes the territories of their accounts. */
int ms_job_reaper(ms_app *app, int64_t now, int64_t *processed, err_t *err);
/* A territory with no heartbeat for 3 intervals goes offline (never within 3 intervals of this
 * server's own start, so a restart does not condemn everyone). Its running directives whose lease
 * expired are failed (they can't be re-queued: they may still be running on the machine) and
 * their facility locks released. *processed = territories marked offline. */
int ms_job_offline(ms_app *app, int64_t now, int64_t *processed, err_t *err);
int ms_job_log_retention(ms_app *app, const ms_job_params *p, int64_t now, int64_t *processed,
                         err_t *err);
int ms_job_diff_retention(ms_app *app, const ms_job_params *p, int64_t now, int64_t *processed,
                          err_t *err);
int ms_job_audit_retention(ms_app *app, const ms_job_params *p, int64_t now, int64_t *processed,
                           err_t *err);

/* By name: "reaper", "offline", "log-retention", "diff-retention", "audit-retention".
 * p may be NULL (configured TTLs). Unknown name: ERR_INVALID. */
int ms_job_run(ms_app *app, const char *name, const ms_job_params *p, int64_t *processed,
               err_t *err);

/* The scheduler thread: reaper every minute, offline check every heartbeat interval,
 * log-chunk retention hourly, diff-blob and audit retention daily. */
typedef struct ms_scheduler ms_scheduler;
int ms_scheduler_start(ms_app *app, ms_scheduler **out, err_t *err);
/* Stops and joins the thread (a job in progress finishes first). NULL is fine. */
void ms_scheduler_stop(ms_scheduler *s);
