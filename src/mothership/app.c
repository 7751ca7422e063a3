/* mothership/app.c — configuration defaults, the directive-token key, the route table, domain
 * metrics and long-poll wake-ups. */
#include "app.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/crypto.h"
#include "core/str.h"
#include "domain/handlers.h"
#include "http/health.h"

void ms_config_defaults(ms_config *cfg)
{
        memset(cfg, 0, sizeof(*cfg));
        str_copy(cfg->listen_host, sizeof(cfg->listen_host), "127.0.0.1");
        cfg->listen_port = 3000;
        str_copy(cfg->data_dir, sizeof(cfg->data_dir), "./mothership-data");
        cfg->territory_auth = MS_TAUTH_PROXY_HEADER;
        str_copy(cfg->fingerprint_header, sizeof(cfg->fingerprint_header),
                 "X-Nexus-Client-Cert-Fingerprint");
        str_copy(cfg->trusted_proxies[0], sizeof(cfg->trusted_proxies[0]), "127.0.0.1");
        str_copy(cfg->trusted_proxies[1], sizeof(cfg->trusted_proxies[1]), "::1");
        cfg->ntrusted_proxies = 2;
        cfg->threads = 4;
        cfg->log_chunk_max = MS_DEFAULT_LOG_CHUNK_MAX;
        str_copy(cfg->cable_url, sizeof(cfg->cable_url), "/cable");
        cfg->log_chunk_ttl_days = 30;
        cfg->diff_blob_ttl_days = 30;
        cfg->audit_ttl_days = 90;
        cfg->heartbeat_interval_s = MS_HEARTBEAT_HINT_S;
}

int ms_app_load_jwt_key(ms_app *app, err_t *err)
{
        const char *env = getenv("SECRET_KEY_BASE");
        if (env && *env) {
                /* any length: HMAC keys longer than a block are hashed, shorter are padded */
                crypto_sha256(env, strlen(env), app->jwt_key);
                app->jwt_key_len = 32;
                return 0;
        }
        char path[4200];
        if (str_printf(path, sizeof(path), "%s/secret.key", app->cfg.data_dir) < 0)
                return err_set(err, "data dir path too long");
        _cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0) {
                ssize_t n = read(fd, app->jwt_key, 32);
                if (n != 32)
                        return err_setc(err, ERR_SYSTEM, "%s: expected 32 bytes", path);
                app->jwt_key_len = 32;
                return 0;
        }
        if (errno != ENOENT)
                return err_errno(err, errno, "open %s", path);
        if (crypto_random(app->jwt_key, 32, err) < 0)
                return -1;
        /* O_EXCL: two processes starting at once must not overwrite each other's key */
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) {
                if (errno == EEXIST)
                        return ms_app_load_jwt_key(app, err);
                return err_errno(err, errno, "create %s", path);
        }
        if (write(fd, app->jwt_key, 32) != 32 || fsync(fd) < 0)
                return err_errno(err, errno, "write %s", path);
        app->jwt_key_len = 32;
        return 0;
}

void ms_app_notify_account(ms_app *app, const char *account_id)
{
        if (!app->http || !account_id || !*account_id)
                return;
        char topic[64];
        if (str_printf(topic, sizeof(topic), "acct:%s", account_id) > 0)
                ms_http_notify(app->http, topic);
}

/* Body caps: a log chunk carries up to log_chunk_max bytes as base64 (4/3) plus the
 * envelope; a finished report carries a diff up to the largest max_diff_bytes we accept. */
#define SMALL_BODY (64 * 1024)
#define FINISHED_BODY (48 * 1024 * 1024)

int ms_app_routes(ms_app *app, err_t *err)
{
        size_t chunk_body = (size_t)app->cfg.log_chunk_max / 3 * 4 + 64 * 1024;
        const ms_http_route routes[] = {
                { "POST", "/conduits/v1/territories/enroll", ms_h_enroll, app, SMALL_BODY,
                  &ms_ratelimit_rule_enroll, MS_HTTP_RATE_KEY_PEER, NULL },
                { "POST", "/conduits/v1/territories/heartbeat", ms_h_territory_heartbeat, app,
                  SMALL_BODY * 4, &ms_ratelimit_rule_territory_heartbeat, MS_HTTP_RATE_KEY_CALLER,
                  NULL },
                { "POST", "/conduits/v1/polls", ms_h_polls, app, SMALL_BODY,
                  &ms_ratelimit_rule_polls, MS_HTTP_RATE_KEY_CALLER, NULL },
                { "POST", "/conduits/v1/directives/{id}/started", ms_h_started, app, SMALL_BODY,
                  &ms_ratelimit_rule_directive_reports, MS_HTTP_RATE_KEY_CALLER, NULL },
                { "POST", "/conduits/v1/directives/{id}/heartbeat", ms_h_directive_heartbeat, app,
                  SMALL_BODY, &ms_ratelimit_rule_directive_reports, MS_HTTP_RATE_KEY_CALLER,
                  NULL },
                { "POST", "/conduits/v1/directives/{id}/log_chunks", ms_h_log_chunks, app,
                  chunk_body, &ms_ratelimit_rule_directive_reports, MS_HTTP_RATE_KEY_CALLER,
                  NULL },
                { "POST", "/conduits/v1/directives/{id}/finished", ms_h_finished, app,
                  FINISHED_BODY, &ms_ratelimit_rule_directive_reports, MS_HTTP_RATE_KEY_CALLER,
                  NULL },
                { "POST", "/conduits/v1/directives/{id}/token", ms_h_directive_token, app,
                  SMALL_BODY, &ms_ratelimit_rule_directive_reports, MS_HTTP_RATE_KEY_CALLER,
                  NULL },
                { "POST", "/mothership/api/v1/facilities", ms_h_facility_create, app, SMALL_BODY,
                  NULL, 0, NULL },
                { "GET", "/mothership/api/v1/facilities", ms_h_facility_list, app, 0, NULL, 0,
                  NULL },
                { "POST", "/mothership/api/v1/enrollment_tokens", ms_h_enrollment_token_create,
                  app, SMALL_BODY, NULL, 0, NULL },
                { "POST", "/mothership/api/v1/facilities/{fid}/directives", ms_h_directive_create,
                  app, 256 * 1024, NULL, 0, NULL },
                { "GET", "/mothership/api/v1/facilities/{fid}/directives", ms_h_directive_list,
                  app, 0, NULL, 0, NULL },
                { "GET", "/mothership/api/v1/facilities/{fid}/directives/{id}",
                  ms_h_directive_show, app, 0, NULL, 0, NULL },
                { "GET", "/mothership/api/v1/facilities/{fid}/directives/{id}/log_chunks",
                  ms_h_directive_log_chunks, app, 0, NULL, 0, NULL },
                { "GET", "/mothership/api/v1/facilities/{fid}/directives/{id}/log",
                  ms_h_directive_log_text, app, 0, NULL, 0, NULL },
                { "GET", "/mothership/api/v1/facilities/{fid}/directives/{id}/egress_events",
                  ms_h_directive_egress_events, app, 0, NULL, 0, NULL },
                { "GET", "/mothership/api/v1/facilities/{fid}/directives/{id}/diff",
                  ms_h_directive_diff, app, 0, NULL, 0, NULL },
                { "POST", "/mothership/api/v1/facilities/{fid}/directives/{id}/approve",
                  ms_h_directive_approve, app, SMALL_BODY, NULL, 0, NULL },
                { "POST", "/mothership/api/v1/facilities/{fid}/directives/{id}/reject",
                  ms_h_directive_reject, app, SMALL_BODY, NULL, 0, NULL },
                { "POST", "/mothership/api/v1/facilities/{fid}/directives/{id}/cancel",
                  ms_h_directive_cancel, app, SMALL_BODY, NULL, 0, NULL },
                /* policies (spec §3.3.1) and the audit query (issue 4) */
                { "GET", "/mothership/api/v1/policies", ms_h_policy_list, app, 0, NULL, 0, NULL },
                { "POST", "/mothership/api/v1/policies", ms_h_policy_create, app, SMALL_BODY * 4,
                  NULL, 0, NULL },
                { "GET", "/mothership/api/v1/policies/{id}", ms_h_policy_show, app, 0, NULL, 0,
                  NULL },
                { "PATCH", "/mothership/api/v1/policies/{id}", ms_h_policy_update, app,
                  SMALL_BODY * 4, NULL, 0, NULL },
                { "PUT", "/mothership/api/v1/policies/{id}", ms_h_policy_update, app,
                  SMALL_BODY * 4, NULL, 0, NULL },
                { "DELETE", "/mothership/api/v1/policies/{id}", ms_h_policy_delete, app,
                  SMALL_BODY, NULL, 0, NULL },
                { "GET", "/mothership/api/v1/audit_events", ms_h_audit_list, app, 0, NULL, 0,
                  NULL },
        };
        app->router = ms_http_router_new();
        if (!app->router)
                return err_setc(err, ERR_INTERNAL, "out of memory");
        for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
                ms_http_route r = routes[i];
                if (app->cfg.rate_limits_off)
                        r.rate_rule = NULL;
                if (ms_http_router_add(app->router, &r, err) < 0)
                        return -1;
        }
        if (app->cfg.rate_limits_off)
                return 0;
        /* spec §3.1.4: the directive-reports rule counts every POST under the prefix, also
         * those that match no route */
        return ms_http_router_add_prefix_rate_rule(app->router, "POST", "/conduits/v1/directives/",
                                                   &ms_ratelimit_rule_directive_reports, err);
}

static int collect_directives(void *ctx, metrics_sink *sink)
{
        ms_app *app = ctx;
        int64_t counts[MS_DIRECTIVE_STATE_COUNT] = { 0 };
        err_t err = ERR_INIT;
        if (ms_directive_count_by_state(app->store, counts, &err) < 0)
                return -1;
        for (int st = 0; st < MS_DIRECTIVE_STATE_COUNT; st++) {
                const char *v[] = { ms_directive_state_name((ms_directive_state)st) };
                metrics_sink_emit(sink, v, (double)counts[st]);
        }
        return 0;
}

static int collect_leases(void *ctx, metrics_sink *sink)
{
        ms_app *app = ctx;
        int64_t counts[MS_DIRECTIVE_STATE_COUNT] = { 0 };
        err_t err = ERR_INIT;
        if (ms_directive_count_by_state(app->store, counts, &err) < 0)
                return -1;
        return metrics_sink_emit(sink, NULL,
                                    (double)(counts[MS_DIRECTIVE_LEASED] +
                                             counts[MS_DIRECTIVE_RUNNING]));
}

int ms_app_metrics(ms_app *app, err_t *err)
{
        const char *state_label[] = { "state" };
        if (metrics_gauge_func(app->metrics, "conduits_directives",
                                  "Directives by state.", 1, state_label, collect_directives, app,
                                  err) < 0 ||
            metrics_gauge_func(app->metrics, "conduits_leases_active",
                                  "Directives leased or running (holding a lease).", 0, NULL,
                                  collect_leases, app, err) < 0)
                return -1;
        app->audit_failures = metrics_counter(app->metrics,
                                                 "conduits_audit_write_failures_total",
                                                 "Audit events that could not be written.", 0,
                                                 NULL, err);
        app->leases_granted = metrics_counter(app->metrics, "conduits_leases_granted_total",
                                                 "Leases handed to territories.", 0, NULL, err);
        return app->audit_failures && app->leases_granted ? 0 : -1;
}
