/* http/health.c — /up, /healthz, /readyz, /metrics (see health.h). */
#include "http/health.h"

#include <jansson.h>

#include "core/buf.h"
#include "core/log.h"
#include "http/server.h"

static int up_handler(ms_http_req *req, void *ctx)
{
        (void)ctx;
        return ms_http_respond_text(req, 200, "text/html; charset=utf-8", MS_HTTP_UP_BODY);
}

static int healthz_handler(ms_http_req *req, void *ctx)
{
        (void)ctx;
        return ms_http_respond_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

static int readyz_handler(ms_http_req *req, void *ctx)
{
        const ms_http_health *h = ctx;
        char detail[256] = "";
        if (!h->ready || h->ready(h->ready_ctx, detail, sizeof(detail)))
                return ms_http_respond_json(req, 200, json_pack("{s:s}", "status", "ready"));
        detail[sizeof(detail) - 1] = '\0';
        /* A detail that is not UTF-8 makes json_pack fail: fall back to a fixed text. */
        json_t *j = json_pack("{s:s, s:s}", "status", "not_ready", "detail",
                              detail[0] ? detail : "not ready");
        if (!j)
                j = json_pack("{s:s, s:s}", "status", "not_ready", "detail", "not ready");
        return ms_http_respond_json(req, 503, j);
}

static int metrics_handler(ms_http_req *req, void *ctx)
{
        const ms_http_health *h = ctx;
        buf out = BUF_INIT(MS_HTTP_METRICS_MAX);
        err_t err = ERR_INIT;
        if (h->metrics && metrics_render(h->metrics, &out, &err) < 0) {
                buf_free(&out);
                log_error("metrics render failed", LOG_ERR(&err));
                return ms_http_respond_error(req, 500, ERR_INTERNAL, "metrics unavailable");
        }
        if (out.len == 0) {
                buf_free(&out);
                return ms_http_respond_text(req, 200, MS_HTTP_METRICS_TYPE, "");
        }
        size_t len = 0;
        char *data = buf_steal(&out, &len);
        buf_free(&out);
        if (!data)
                return ms_http_respond_error(req, 500, ERR_INTERNAL, "metrics unavailable");
        return ms_http_respond_take(req, 200, MS_HTTP_METRICS_TYPE, data, len);
}

int ms_http_health_add_routes(ms_http_router *r, ms_http_health *h, err_t *err)
{
        const ms_http_route routes[] = {
                { .method = "GET", .pattern = "/up", .handler = up_handler, .ctx = h },
                { .method = "GET", .pattern = "/healthz", .handler = healthz_handler,
                  .ctx = h },
                { .method = "GET", .pattern = "/readyz", .handler = readyz_handler,
                  .ctx = h },
                { .method = "GET", .pattern = "/metrics", .handler = metrics_handler,
                  .ctx = h },
        };
        for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
                if (ms_http_router_add(r, &routes[i], err) < 0)
                        return -1;
        return 0;
}
