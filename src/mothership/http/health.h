/* http/health.h — built-in liveness, readiness and metrics routes (spec mothership §3.5,
 * DESIGN D17).
 *
 *   GET /up       200 text/html, a page with a green background (spec §3.5; no database check)
 *   GET /healthz  200 {"status":"ok"} — the process serves requests
 *   GET /readyz   200 {"status":"ready"}, or 503 {"status":"not_ready","detail":...} when the
 *                 readiness callback says so (e.g. migrations not applied, store unreachable)
 *   GET /metrics  200 Prometheus text format 0.0.4 of the registry
 * HEAD works on each through the router's GET fallback. None of them is rate-limited. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"
#include "core/metrics.h"
#include "http/router.h"

#define MS_HTTP_UP_BODY "<!DOCTYPE html><html><body style=\"background-color: green\"></body></html>"
#define MS_HTTP_METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define MS_HTTP_METRICS_MAX (16 * 1024 * 1024)     /* cap on one /metrics page */

/* Returns true when ready; otherwise writes a short reason into detail (detailsz bytes). Called on
 * a server thread for every /readyz request: keep it quick and thread-safe. */
typedef bool (*ms_http_ready_fn)(void *ctx, char *detail, size_t detailsz);

typedef struct ms_http_health {
        metrics_reg *metrics;       /* NULL: /metrics answers an empty page */
        ms_http_ready_fn ready;    /* NULL: always ready */
        void *ready_ctx;
} ms_http_health;

/* Adds the four routes; h must outlive the router. */
int ms_http_health_add_routes(ms_http_router *r, ms_http_health *h, err_t *err);
