/* core/metrics.h — a small Prometheus registry rendered in the text exposition format 0.0.4
 * (DESIGN D17: /metrics in both programs).
 *
 * A family has a name, a help text, a type and a fixed list of label names; each distinct list of
 * label values is one series, created on first use. Kinds:
 *   counter    monotonically increasing integer           metric_inc()
 *   gauge      double that can go up and down              metric_set() / metric_add()
 *   histogram  cumulative buckets + _sum + _count           metric_observe()
 *   gauge func series produced by a callback at scrape time (e.g. directives per state)
 * Updates are lock-free on the value (atomics) and take the family's read lock to find the series;
 * only the first use of a label combination takes the write lock. Each family holds at most
 * METRICS_MAX_SERIES series: beyond that, updates for new label values are dropped (and
 * counted in metrics_dropped()) so that peer-chosen label values cannot grow memory without
 * bound. Label values are escaped on output (\\, \", \n), help text too (\\, \n). */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"

#define METRICS_MAX_LABELS 8
#define METRICS_MAX_SERIES 10000
#define METRICS_MAX_BUCKETS 32
#define METRICS_LABEL_VALUE_MAX 256   /* longer values are refused */

typedef struct metrics_reg metrics_reg;
typedef struct metric metric;          /* one family */
typedef struct metrics_sink metrics_sink;

/* Latency buckets for http_request_duration_seconds (seconds; +Inf is implicit). */
extern const double metrics_latency_buckets[];
extern const size_t metrics_latency_nbuckets;

metrics_reg *metrics_new(void);
/* Frees the registry and every family; pointers from it become invalid. NULL is fine. */
void metrics_free(metrics_reg *m);

/* Registration returns the family, or NULL with err set (bad name or label name, too many labels,
 * or a family of that name already registered with a different type or labels). Registering the
 * same name, type and labels again returns the existing family, so two users may share it.
 * Names: [a-zA-Z_:][a-zA-Z0-9_:]*; label names: [a-zA-Z_][a-zA-Z0-9_]*, not "__"-prefixed, and
 * "le" is reserved for histograms. */
metric *metrics_counter(metrics_reg *m, const char *name, const char *help, size_t nlabels,
                              const char *const *labels, err_t *err);
metric *metrics_gauge(metrics_reg *m, const char *name, const char *help, size_t nlabels,
                            const char *const *labels, err_t *err);
/* bounds: strictly increasing finite upper bounds (at most METRICS_MAX_BUCKETS). */
metric *metrics_histogram(metrics_reg *m, const char *name, const char *help, size_t nlabels,
                                const char *const *labels, const double *bounds, size_t nbounds,
                                err_t *err);

/* A gauge whose series come from fn at every render. fn calls metrics_sink_emit() once per
 * series and returns 0 (or < 0 to drop the family from this scrape). fn runs on the scraping
 * thread while the registry lock is held: it must not register metrics. */
typedef int (*metrics_collect_fn)(void *ctx, metrics_sink *sink);
int metrics_gauge_func(metrics_reg *m, const char *name, const char *help, size_t nlabels,
                          const char *const *labels, metrics_collect_fn fn, void *ctx,
                          err_t *err);
/* values: nlabels label values of the family. Returns 0, or -1 (wrong value, ENOMEM). */
int metrics_sink_emit(metrics_sink *sink, const char *const *values, double value);

/* Updates. values holds the family's nlabels label values (may be NULL when nlabels is 0).
 * Return 0, or -1 when the call does not fit the family (wrong kind, NULL or over-long value) or
 * the series could not be created (limit reached, ENOMEM). */
int metric_inc(metric *c, const char *const *values, uint64_t n);      /* counter */
int metric_set(metric *g, const char *const *values, double v);        /* gauge */
int metric_add(metric *g, const char *const *values, double delta);    /* gauge */
int metric_observe(metric *h, const char *const *values, double v);    /* histogram */

/* Appends the whole registry, families in registration order, each with # HELP and # TYPE.
 * Returns 0, or -1 with err when out does not have room (its cap) or memory runs out. */
int metrics_render(metrics_reg *m, buf *out, err_t *err);

/* Updates dropped because a family was at METRICS_MAX_SERIES. */
uint64_t metrics_dropped(metrics_reg *m);
