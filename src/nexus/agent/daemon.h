/* agent/daemon.h — nexusd at run time: one libuv loop owning the control-plane client, the
 * territory heartbeat, the poll loop, every directive run and the observability listener
 * (DESIGN D11). Blocking work (git, fsync of a big WAL entry) goes to the uv thread pool.
 *
 * Lifecycle: nx_daemon_init → nx_daemon_run (replays the WAL, then heartbeats and polls until
 * SIGTERM/SIGINT) → graceful shutdown: polling stops, running directives get
 * shutdown_timeout to finish, then SIGTERM, a grace period, SIGKILL of the whole tree; they
 * are reported `canceled` (through the WAL if the server is away). A second signal exits at
 * once. */
#pragma once
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>
#include <jansson.h>

#include "agent/breaker.h"
#include "build_info.h"
#include "agent/tape.h"
#include "agent/wal.h"
#include "client/http.h"
#include "config.h"
#include "core/error.h"
#include "core/metrics.h"
#include "sandbox/cgroup.h"

#define NX_VERSION_STR CONDUITS_VERSION
#define NX_CANCEL_GRACE_MS 10000        /* SIGTERM → SIGKILL */
#define NX_PIPE_GRACE_MS 2000           /* after the child exits, pipes held by escapees */
#define NX_REPORT_TIMEOUT_MS 10000      /* started/heartbeat/log/finished deadline (§4.2) */
#define NX_MIN_FREE_DISK (1LL << 30)    /* §5.16 */

typedef struct nx_run nx_run;

typedef struct nx_daemon {
        nx_config *cfg;
        uv_loop_t *loop;
        nx_http *http;
        nx_wal *wal;
        nx_tape *tape;
        nx_breaker breaker;
        nx_rng rng;
        nx_cgroup_sys cgroup_sys;
        char territory_id[128];
        /* enabled profiles that have a driver on this build */
        const char *profiles[8];
        size_t nprofiles;
        /* the untrusted profile's bwrap driver, probed once at start-up (D12) */
        bool untrusted_ok;
        char bwrap_path[4096];
        char helper_path[4096];
        char sandbox_tmp[4200];      /* <work_dir>/.sandbox: the generated /etc lives here */
        json_t *bwrap_health;           /* last probe result ({"healthy", "details"}) */
        int landlock_abi;
        bool sandbox_drop_ids;          /* nexusd is root: bwrap runs as sandbox_uid */
        uid_t sandbox_uid;

        uv_timer_t poll_timer;
        uv_timer_t hb_timer;
        uv_timer_t shutdown_timer;
        uv_signal_t sigterm, sigint;
        bool poll_inflight;
        int64_t hb_interval_ms;
        int64_t last_poll_ok_ms;        /* monotonic; readiness */
        bool stopping;                  /* first signal seen */
        bool force_cancel;              /* shutdown_timeout passed: cancel every run */
        int exit_code;

        nx_run *runs;                   /* running directives (list) */
        unsigned nruns;
        unsigned max_runs;
        unsigned replays_inflight;

        /* metrics (spec §9.2 names + queue and WAL depth) */
        metrics_reg *metrics;
        metric *m_directives, *m_duration, *m_in_flight, *m_poll, *m_poll_errors,
                *m_hb_errors, *m_driver_healthy, *m_log_bytes;
        void *obs;                      /* obs/obs.h server */
        /* readiness as last computed on the loop thread, read by the obs thread */
        atomic_bool ready;
        char ready_why[128];            /* guarded by ready_mu */
        uv_mutex_t ready_mu;
} nx_daemon;

int nx_daemon_init(nx_daemon *d, nx_config *cfg, err_t *err);
/* Runs the loop until shutdown completes; returns the process exit code. */
int nx_daemon_run(nx_daemon *d);
void nx_daemon_free(nx_daemon *d);

/* True when enrolled, the breaker is closed and a poll succeeded recently. Loop thread;
 * it also refreshes the copy the observability thread reads (nx_daemon_ready_cached). */
bool nx_daemon_ready(nx_daemon *d, char *why, size_t whysz);
/* Any thread. */
bool nx_daemon_ready_cached(nx_daemon *d, char *why, size_t whysz);

/* run.c: starts a directive from a lease (takes ownership of lease json). */
void nx_run_start(nx_daemon *d, json_t *lease);
/* run.c: asks every run to stop (shutdown). */
void nx_run_cancel_all(nx_daemon *d, const char *why);
/* daemon.c: a run finished and freed itself. */
void nx_daemon_run_done(nx_daemon *d);

/* A POST retried per spec §4.7 (+ADVISED: per-attempt timeouts are retried). cb gets the
 * final result (status 0 and an error text when the budget ran out). */
typedef void (*nx_retry_cb)(void *ctx, const nx_http_result *res);
void nx_post_with_retry(nx_daemon *d, const char *name, const char *path, json_t *body,
                        const char *(*bearer)(void *ctx), nx_retry_cb cb, void *ctx);
