/* mothership/main.c — the `mothership` program: serve, migrate, version, admin
 * (contract: briefs/mothership_cli.md).
 *
 * Exit status: 0 success, 1 runtime error (one line "mothership: <message>" on stderr),
 * 2 usage error (the message, then the usage, on stderr). */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "app.h"
#include "build_info.h"
#include "cli_config.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/str.h"
#include "http/health.h"
#include "jobs/jobs.h"

static const char usage_text[] =
        "usage: mothership <command> [options]\n"
        "\n"
        "commands:\n"
        "  serve    [--listen HOST:PORT] [--data-dir DIR]\n"
        "           [--territory-auth proxy-header|header|either] [--trusted-proxy ADDR]...\n"
        "           [--threads N] [--config FILE.yaml] [--rate-limits on|off]\n"
        "           HOST:PORT may be [IPv6]:PORT or :PORT (every IPv4 interface); port 0 picks\n"
        "           a free one. Env: MOTHERSHIP_LISTEN, MOTHERSHIP_DATA_DIR,\n"
        "           CONDUITS_TERRITORY_AUTH_MODE, CONDUITS_MTLS_FINGERPRINT_HEADER,\n"
        "           CONDUITS_LOG_CHUNK_MAX_BYTES, SECRET_KEY_BASE, ACTION_CABLE_URL,\n"
        "           CONDUITS_{LOG_CHUNK,DIFF_BLOB,AUDIT_EVENT}_TTL_DAYS.\n"
        "           Precedence: flags > env > YAML file > defaults.\n"
        "  migrate  [--data-dir DIR]\n"
        "  version\n"
        "  admin    --data-dir DIR <command...>   (see: mothership admin --help)\n";

static int usage_error(const err_t *err)
{
        fprintf(stderr, "mothership: %s\n%s", err->msg, usage_text);
        return 2;
}

static int runtime_error(const err_t *err)
{
        fprintf(stderr, "mothership: %s\n", err->msg);
        return 1;
}

/* ---------------------------------------------------------------- serve -------------- */

/* /readyz (spec §3.5, DESIGN D17): the store answers and start-up has finished. */
static bool serve_ready(void *ctx, char *detail, size_t detailsz)
{
        ms_app *app = ctx;
        if (!atomic_load(&app->ready)) {
                str_copy(detail, detailsz, "starting or stopping");
                return false;
        }
        int version = 0;
        err_t err = ERR_INIT;
        if (ms_store_schema_version(app->store, &version, &err) < 0) {
                if (str_printf(detail, detailsz, "store: %s", err.msg) < 0)
                        detail[detailsz - 1] = '\0';
                return false;
        }
        if (version != ms_store_latest_schema_version()) {
                if (str_printf(detail, detailsz, "schema version %d, expected %d", version,
                               ms_store_latest_schema_version()) < 0)
                        detail[detailsz - 1] = '\0';
                return false;
        }
        return true;
}

static void app_teardown(ms_app *app)
{
        atomic_store(&app->ready, false);
        ms_http_server_stop(app->http);
        app->http = NULL;
        ms_http_router_free(app->router);
        app->router = NULL;
        ms_ratelimit_free(app->ratelimit);
        app->ratelimit = NULL;
        metrics_free(app->metrics);
        app->metrics = NULL;
        ms_store_close(app->store);
        app->store = NULL;
}

static int serve_start(ms_app *app, ms_http_health *health, ms_scheduler **sched, err_t *err)
{
        if (ms_store_open(app->cfg.data_dir, NULL, &app->store, err) < 0)
                return err_wrap(err, "open store in %s", app->cfg.data_dir);
        if (ms_app_load_jwt_key(app, err) < 0)
                return err_wrap(err, "directive-token key");
        app->metrics = metrics_new();
        if (!app->metrics)
                return err_setc(err, ERR_INTERNAL, "out of memory (metrics)");
        if (ms_app_metrics(app, err) < 0)
                return err_wrap(err, "metrics");
        app->ratelimit = ms_ratelimit_new(0);
        if (!app->ratelimit)
                return err_setc(err, ERR_INTERNAL, "out of memory (rate limits)");
        if (ms_app_routes(app, err) < 0)
                return err_wrap(err, "routes");
        health->metrics = app->metrics;
        health->ready = serve_ready;
        health->ready_ctx = app;
        if (ms_http_health_add_routes(app->router, health, err) < 0)
                return err_wrap(err, "health routes");
        const ms_http_server_config sc = {
                .host = app->cfg.listen_host,
                .port = app->cfg.listen_port,
                .thread_pool_size = app->cfg.threads,
                .router = app->router,
                .metrics = app->metrics,
                .ratelimit = app->ratelimit,
        };
        if (ms_http_server_start(&sc, &app->http, err) < 0)
                return -1;
        app->started_at_ms = clock_now_ms();
        if (ms_scheduler_start(app, sched, err) < 0)
                return err_wrap(err, "job scheduler");
        atomic_store(&app->ready, true);
        return 0;
}

static int cmd_serve(int argc, char *const argv[])
{
        /* static: the app is large and its address is handed to every handler thread */
        static ms_app app;
        static ms_http_health health;
        err_t err = ERR_INIT;
        ms_config_defaults(&app.cfg);
        int r = ms_serve_config_load(argc, argv, ms_env_getenv, NULL, &app.cfg, &err);
        if (r == MS_CLI_HELP) {
                fputs(usage_text, stdout);
                return 0;
        }
        if (r == MS_CLI_USAGE)
                return usage_error(&err);
        if (r < 0)
                return runtime_error(&err);
        /* Every request allocates and frees a little (SQLite's temporary b-trees, JSON):
         * without this, glibc hands memory back to the kernel after each one and takes the
         * page faults again on the next (measured by bench/polls: a quarter of poll CPU). */
        mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
        mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);

        /* Block the stop signals BEFORE any thread exists: every thread inherits the mask,
         * so only sigwait() below ever receives them. */
        sigset_t stop;
        sigemptyset(&stop);
        sigaddset(&stop, SIGTERM);
        sigaddset(&stop, SIGINT);
        if ((r = pthread_sigmask(SIG_BLOCK, &stop, NULL)) != 0) {
                err_errno(&err, r, "block signals");
                return runtime_error(&err);
        }
        /* a peer that goes away mid-response must not kill the process */
        signal(SIGPIPE, SIG_IGN);

        ms_scheduler *sched = NULL;
        if (serve_start(&app, &health, &sched, &err) < 0) {
                log_error("mothership failed to start", LOG_ERR(&err));
                ms_scheduler_stop(sched);
                app_teardown(&app);
                return runtime_error(&err);
        }
        char addr[MS_CLI_LISTEN_MAX];
        if (ms_listen_format(app.cfg.listen_host, ms_http_server_port(app.http), addr,
                             sizeof(addr)) < 0)
                str_copy(addr, sizeof(addr), "?");
        /* the one stdout line of the contract: tests and scripts read the bound port here */
        json_t *line = json_pack("{s:s}", "listening", addr);
        char *text = line ? json_dumps(line, JSON_COMPACT) : NULL;
        json_decref(line);
        line = NULL;
        if (text) {
                fputs(text, stdout);
                fputc('\n', stdout);
        }
        free(text);
        text = NULL;
        fflush(stdout);
        log_info("mothership listening", LOG_STR("listen", addr),
                 LOG_STR("version", CONDUITS_VERSION), LOG_STR("commit", CONDUITS_COMMIT),
                 LOG_STR("data_dir", app.cfg.data_dir),
                 LOG_STR("territory_auth", ms_territory_auth_name(app.cfg.territory_auth)),
                 LOG_INT("threads", app.cfg.threads));

        int sig = 0;
        for (;;) {
                r = sigwait(&stop, &sig);
                if (r == 0)
                        break;
                if (r != EINTR) {
                        err_errno(&err, r, "sigwait");
                        log_error("mothership: waiting for signals failed", LOG_ERR(&err));
                        break;
                }
        }
        log_info("mothership stopping", LOG_STR("signal", sig == SIGINT ? "SIGINT" : "SIGTERM"));
        atomic_store(&app.ready, false);
        /* jobs first (they use the store), then requests, then the store */
        ms_scheduler_stop(sched);
        sched = NULL;
        app_teardown(&app);
        log_info("mothership stopped");
        return 0;
}

/* ---------------------------------------------------------------- migrate ------------ */

static int cmd_migrate(int argc, char *const argv[])
{
        ms_config cfg;
        err_t err = ERR_INIT;
        ms_config_defaults(&cfg);
        const char *env_dir = getenv("MOTHERSHIP_DATA_DIR");
        const char *dir = env_dir && *env_dir ? env_dir : cfg.data_dir;
        for (int i = 0; i < argc;) {
                const char *v = NULL;
                int r = ms_cli_flag(argc, argv, &i, "data-dir", &v, &err);
                if (r < 0)
                        return usage_error(&err);
                if (r > 0) {
                        dir = v;
                        continue;
                }
                if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
                        fputs(usage_text, stdout);
                        return 0;
                }
                err_set(&err, "unknown argument \"%s\" for migrate", argv[i]);
                return usage_error(&err);
        }
        if (!*dir) {
                err_set(&err, "--data-dir must not be empty");
                return usage_error(&err);
        }
        int applied = 0;
        if (ms_store_migrate(dir, &applied, &err) < 0) {
                err_wrap(&err, "migrate %s", dir);
                return runtime_error(&err);
        }
        printf("{\"applied\":%d,\"schema_version\":%d}\n", applied,
               ms_store_latest_schema_version());
        fflush(stdout);
        return 0;
}

/* ---------------------------------------------------------------- main --------------- */

int main(int argc, char *argv[])
{
        err_t err = ERR_INIT;
        if (argc < 2) {
                err_set(&err, "missing command");
                return usage_error(&err);
        }
        const char *cmd = argv[1];
        if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
                if (argc > 2) {
                        err_set(&err, "version takes no arguments");
                        return usage_error(&err);
                }
                printf("mothership %s (commit %s)\n", CONDUITS_VERSION, CONDUITS_COMMIT);
                return 0;
        }
        if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
                fputs(usage_text, stdout);
                return 0;
        }
        if (strcmp(cmd, "serve") == 0)
                return cmd_serve(argc - 2, argv + 2);
        if (strcmp(cmd, "migrate") == 0)
                return cmd_migrate(argc - 2, argv + 2);
        if (strcmp(cmd, "admin") == 0)
                return ms_admin_main(argc - 2, argv + 2);
        err_set(&err, "unknown command \"%s\"", cmd);
        return usage_error(&err);
}
