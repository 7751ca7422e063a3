/* mothership/app.h — the running control plane: configuration and the shared objects every
 * handler and job reaches through one pointer. */
#pragma once
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/metrics.h"
#include "http/ratelimit.h"
#include "http/router.h"
#include "http/server.h"
#include "store/store.h"

/* spec mothership §11.3 fixed constants */
#define MS_LEASE_TTL_S 300
#define MS_TOKEN_TTL_S 300
#define MS_POLL_RETRY_EMPTY_S 2
#define MS_POLL_INTERVAL_HINT_S 2
#define MS_HEARTBEAT_HINT_S 30
#define MS_HEARTBEAT_WS_HINT_S 300
#define MS_MAX_CLAIMS 5
#define MS_DEFAULT_TIMEOUT_S 300
#define MS_DEFAULT_MAX_OUTPUT 2000000
#define MS_DEFAULT_MAX_DIFF 1048576
#define MS_MAX_DIFF_LIMIT (32 * 1024 * 1024)  /* fits the finished body cap as base64 */
#define MS_DEFAULT_LOG_CHUNK_MAX 262144
#define MS_LOG_PAGE_DEFAULT 200
#define MS_LOG_PAGE_MAX 500
#define MS_LIST_DEFAULT 50
#define MS_REAPER_BATCH 200
#define MS_LONG_POLL_MAX_S 30       /* our additive poll extension: wait_seconds */

/* How a territory proves who it is (DESIGN D10, spec §3.1.1). */
typedef enum ms_territory_auth {
        /* trusted fingerprint header from a TLS-terminating proxy (peer must be a trusted
         * proxy address) — the production mode until built-in TLS lands */
        MS_TAUTH_PROXY_HEADER = 0,
        /* X-Nexus-Territory-Id: development only, must be chosen explicitly */
        MS_TAUTH_HEADER,
        /* fingerprint first, then the id header (the reference test configuration) */
        MS_TAUTH_EITHER,
} ms_territory_auth;

#define MS_MAX_TRUSTED_PROXIES 16

typedef struct ms_config {
        char listen_host[256];
        uint16_t listen_port;
        char data_dir[4096];
        ms_territory_auth territory_auth;
        char fingerprint_header[128];
        char trusted_proxies[MS_MAX_TRUSTED_PROXIES][64];   /* peer addresses */
        size_t ntrusted_proxies;
        unsigned threads;
        int64_t log_chunk_max;                  /* CONDUITS_LOG_CHUNK_MAX_BYTES */
        char cable_url[512];
        /* retention (spec §10.3) */
        int64_t log_chunk_ttl_days, diff_blob_ttl_days, audit_ttl_days;
        int64_t heartbeat_interval_s;           /* territory heartbeat hint, offline = 3x */
        bool rate_limits_off;                   /* --rate-limits off: benchmarks, or a
                                                 * front proxy that limits already */
} ms_config;

typedef struct ms_app {
        ms_config cfg;
        ms_store *store;
        ms_http_router *router;
        ms_http_server *http;
        metrics_reg *metrics;
        ms_ratelimit *ratelimit;
        uint8_t jwt_key[64];
        size_t jwt_key_len;
        int64_t started_at_ms;                  /* wall clock at start (offline grace) */
        metric *audit_failures;              /* counter */
        metric *leases_granted;              /* counter */
        atomic_bool ready;
} ms_app;

void ms_config_defaults(ms_config *cfg);

/* Reads or creates the directive-token HMAC key: SECRET_KEY_BASE when set, else
 * <data_dir>/secret.key (32 random bytes, mode 0600, created once). */
int ms_app_load_jwt_key(ms_app *app, err_t *err);

/* Builds the route table (all endpoints) into app->router. */
int ms_app_routes(ms_app *app, err_t *err);

/* Registers the domain gauges (directives by state, active leases) and counters. */
int ms_app_metrics(ms_app *app, err_t *err);

/* Wake-up topic for long-polls of an account's territories. */
void ms_app_notify_account(ms_app *app, const char *account_id);
