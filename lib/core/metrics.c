/* core/metrics.c — see metrics.h. */
#include "core/metrics.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/str.h"

const double metrics_latency_buckets[] = {
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
};
const size_t metrics_latency_nbuckets =
        sizeof(metrics_latency_buckets) / sizeof(metrics_latency_buckets[0]);

#define INITIAL_SERIES_BUCKETS 64

typedef enum metric_kind {
        KIND_COUNTER,
        KIND_GAUGE,
        KIND_HISTOGRAM,
        KIND_GAUGE_FUNC,
} metric_kind;

typedef struct series {
        struct series *chain;           /* hash bucket */
        struct series *next;            /* insertion order, for rendering */
        uint64_t hash;
        char *strings;                  /* the label values, back to back */
        const char *values[METRICS_MAX_LABELS];
        _Atomic uint64_t value;         /* counter: count; gauge: double bits */
        _Atomic uint64_t sum_bits;      /* histogram: double bits of the sum */
        _Atomic uint64_t buckets[];     /* histogram: per-bucket (not cumulative) counts, +Inf last */
} series;

struct metric {
        struct metric *next;
        metrics_reg *owner;
        metric_kind kind;
        char *name;
        char *help;
        size_t nlabels;
        char *labels[METRICS_MAX_LABELS];
        double bounds[METRICS_MAX_BUCKETS];
        size_t nbounds;
        metrics_collect_fn fn;
        void *fn_ctx;
        pthread_rwlock_t lock;          /* guards the series table and list, not the values */
        series **table;
        size_t nbuckets;
        series *head, *tail;
        size_t nseries;
};

struct metrics_reg {
        pthread_mutex_t lock;           /* family list; held across a render */
        metric *head, *tail;
        _Atomic uint64_t dropped;
        _Atomic int dropped_logged;
};

struct metrics_sink {
        metric *fam;
        buf *out;
        int failed;
};

static uint64_t dbl_bits(double d)
{
        uint64_t u;
        memcpy(&u, &d, sizeof(u));
        return u;
}

static double bits_dbl(uint64_t u)
{
        double d;
        memcpy(&d, &u, sizeof(d));
        return d;
}

metrics_reg *metrics_new(void)
{
        metrics_reg *m = calloc(1, sizeof(*m));
        if (!m)
                return NULL;
        if (pthread_mutex_init(&m->lock, NULL) != 0) {
                free(m);
                return NULL;
        }
        return m;
}

static void family_free(metric *f)
{
        series *s = f->head;
        while (s) {
                series *next = s->next;
                FREE_AND_NULL(s->strings);
                free(s);
                s = next;
        }
        FREE_AND_NULL(f->table);
        for (size_t i = 0; i < f->nlabels; i++)
                FREE_AND_NULL(f->labels[i]);
        FREE_AND_NULL(f->name);
        FREE_AND_NULL(f->help);
        pthread_rwlock_destroy(&f->lock);
        free(f);
}

void metrics_free(metrics_reg *m)
{
        if (!m)
                return;
        metric *f = m->head;
        while (f) {
                metric *next = f->next;
                family_free(f);
                f = next;
        }
        pthread_mutex_destroy(&m->lock);
        free(m);
}

uint64_t metrics_dropped(metrics_reg *m)
{
        return atomic_load(&m->dropped);
}

static bool name_ok(const char *s, bool colon_ok)
{
        if (!s || !*s || strlen(s) > 200)
                return false;
        for (const char *p = s; *p; p++) {
                char c = *p;
                bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                             (colon_ok && c == ':');
                if (!alpha && !(p != s && c >= '0' && c <= '9'))
                        return false;
        }
        return true;
}

static const char *kind_name(metric_kind k)
{
        switch (k) {
        case KIND_COUNTER:
                return "counter";
        case KIND_HISTOGRAM:
                return "histogram";
        case KIND_GAUGE:
        case KIND_GAUGE_FUNC:
                return "gauge";
        default:
                return "untyped";
        }
}

static bool same_shape(const metric *f, metric_kind kind, size_t nlabels,
                       const char *const *labels, const double *bounds, size_t nbounds)
{
        if (f->kind != kind || f->nlabels != nlabels)
                return false;
        for (size_t i = 0; i < nlabels; i++)
                if (strcmp(f->labels[i], labels[i]) != 0)
                        return false;
        if (kind == KIND_HISTOGRAM) {
                if (f->nbounds != nbounds)
                        return false;
                for (size_t i = 0; i < nbounds; i++)
                        if (f->bounds[i] != bounds[i])
                                return false;
        }
        return true;
}

static metric *family_register(metrics_reg *m, metric_kind kind, const char *name,
                                  const char *help, size_t nlabels, const char *const *labels,
                                  const double *bounds, size_t nbounds, err_t *err)
{
        if (!name_ok(name, true)) {
                err_set(err, "metric name \"%s\" must match [a-zA-Z_:][a-zA-Z0-9_:]*",
                        name ? name : "(null)");
                return NULL;
        }
        if (nlabels > METRICS_MAX_LABELS || (nlabels && !labels)) {
                err_set(err, "metric %s: at most %d labels", name, METRICS_MAX_LABELS);
                return NULL;
        }
        for (size_t i = 0; i < nlabels; i++) {
                if (!name_ok(labels[i], false) || str_has_prefix(labels[i], "__")) {
                        err_set(err, "metric %s: label name \"%s\" must match "
                                "[a-zA-Z_][a-zA-Z0-9_]* without a \"__\" prefix", name,
                                labels[i] ? labels[i] : "(null)");
                        return NULL;
                }
                if (kind == KIND_HISTOGRAM && strcmp(labels[i], "le") == 0) {
                        err_set(err, "metric %s: label \"le\" is reserved for buckets", name);
                        return NULL;
                }
                for (size_t j = 0; j < i; j++)
                        if (strcmp(labels[i], labels[j]) == 0) {
                                err_set(err, "metric %s: label \"%s\" repeated", name,
                                        labels[i]);
                                return NULL;
                        }
        }
        if (kind == KIND_HISTOGRAM) {
                if (nbounds == 0 || nbounds > METRICS_MAX_BUCKETS || !bounds) {
                        err_set(err, "metric %s: 1 to %d bucket bounds", name,
                                METRICS_MAX_BUCKETS);
                        return NULL;
                }
                for (size_t i = 0; i < nbounds; i++)
                        if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) {
                                err_set(err, "metric %s: bucket bounds must be finite and "
                                        "strictly increasing", name);
                                return NULL;
                        }
        }

        pthread_mutex_lock(&m->lock);
        for (metric *f = m->head; f; f = f->next) {
                if (strcmp(f->name, name) != 0)
                        continue;
                /* A gauge func is bound to its callback: never shared. */
                if (kind != KIND_GAUGE_FUNC &&
                    same_shape(f, kind, nlabels, labels, bounds, nbounds)) {
                        pthread_mutex_unlock(&m->lock);
                        return f;
                }
                pthread_mutex_unlock(&m->lock);
                err_set(err, "metric %s is already registered as a %s with other labels", name,
                        kind_name(f->kind));
                return NULL;
        }

        metric *f = calloc(1, sizeof(*f));
        if (!f)
                goto enomem;
        if (pthread_rwlock_init(&f->lock, NULL) != 0) {
                free(f);
                goto enomem;
        }
        f->owner = m;
        f->kind = kind;
        f->name = strdup(name);
        f->help = strdup(help ? help : "");
        f->table = calloc(INITIAL_SERIES_BUCKETS, sizeof(*f->table));
        f->nbuckets = INITIAL_SERIES_BUCKETS;
        f->nlabels = nlabels;
        bool ok = f->name && f->help && f->table;
        for (size_t i = 0; i < nlabels; i++) {
                f->labels[i] = strdup(labels[i]);
                ok = ok && f->labels[i];
        }
        if (!ok) {
                family_free(f);
                goto enomem;
        }
        if (kind == KIND_HISTOGRAM) {
                memcpy(f->bounds, bounds, nbounds * sizeof(*bounds));
                f->nbounds = nbounds;
        }
        if (m->tail)
                m->tail->next = f;
        else
                m->head = f;
        m->tail = f;
        pthread_mutex_unlock(&m->lock);
        return f;
enomem:
        pthread_mutex_unlock(&m->lock);
        err_errno(err, ENOMEM, "metric %s", name);
        return NULL;
}

metric *metrics_counter(metrics_reg *m, const char *name, const char *help, size_t nlabels,
                              const char *const *labels, err_t *err)
{
        return family_register(m, KIND_COUNTER, name, help, nlabels, labels, NULL, 0, err);
}

metric *metrics_gauge(metrics_reg *m, const char *name, const char *help, size_t nlabels,
                            const char *const *labels, err_t *err)
{
        return family_register(m, KIND_GAUGE, name, help, nlabels, labels, NULL, 0, err);
}

metric *metrics_histogram(metrics_reg *m, const char *name, const char *help, size_t nlabels,
                                const char *const *labels, const double *bounds, size_t nbounds,
                                err_t *err)
{
        return family_register(m, KIND_HISTOGRAM, name, help, nlabels, labels, bounds, nbounds,
                               err);
}

int metrics_gauge_func(metrics_reg *m, const char *name, const char *help, size_t nlabels,
                          const char *const *labels, metrics_collect_fn fn, void *ctx,
                          err_t *err)
{
        if (!fn)
                return err_set(err, "metric %s: gauge func needs a callback",
                               name ? name : "(null)");
        metric *f = family_register(m, KIND_GAUGE_FUNC, name, help, nlabels, labels, NULL, 0,
                                       err);
        if (!f)
                return -1;
        /* Published under the registry lock that render also takes. */
        pthread_mutex_lock(&m->lock);
        f->fn = fn;
        f->fn_ctx = ctx;
        pthread_mutex_unlock(&m->lock);
        return 0;
}

static bool values_ok(const metric *f, const char *const *values)
{
        if (f->nlabels && !values)
                return false;
        for (size_t i = 0; i < f->nlabels; i++)
                if (!values[i] || strnlen(values[i], METRICS_LABEL_VALUE_MAX + 1) >
                                  METRICS_LABEL_VALUE_MAX)
                        return false;
        return true;
}

static uint64_t values_hash(const metric *f, const char *const *values)
{
        uint64_t h = 0xcbf29ce484222325ull;
        for (size_t i = 0; i < f->nlabels; i++) {
                for (const char *p = values[i]; *p; p++) {
                        h ^= (unsigned char)*p;
                        h *= 0x100000001b3ull;
                }
                h ^= 0xff;      /* separator: ("ab","") differs from ("a","b") */
                h *= 0x100000001b3ull;
        }
        return h;
}

static series *lookup_locked(const metric *f, uint64_t h, const char *const *values)
{
        for (series *s = f->table[h & (f->nbuckets - 1)]; s; s = s->chain) {
                if (s->hash != h)
                        continue;
                size_t i = 0;
                while (i < f->nlabels && strcmp(s->values[i], values[i]) == 0)
                        i++;
                if (i == f->nlabels)
                        return s;
        }
        return NULL;
}

static void grow_table_locked(metric *f)
{
        size_t n = f->nbuckets * 2;
        series **t = calloc(n, sizeof(*t));
        if (!t)
                return;
        for (series *s = f->head; s; s = s->next) {
                s->chain = t[s->hash & (n - 1)];
                t[s->hash & (n - 1)] = s;
        }
        free(f->table);
        f->table = t;
        f->nbuckets = n;
}

static void note_drop(metric *f)
{
        atomic_fetch_add(&f->owner->dropped, 1);
        if (atomic_exchange(&f->owner->dropped_logged, 1) == 0)
                log_warn("metric series limit reached, dropping updates",
                         LOG_STR("metric", f->name), LOG_INT("limit", METRICS_MAX_SERIES));
}

/* Finds or creates the series; NULL when it cannot exist (limit, ENOMEM). */
static series *series_get(metric *f, const char *const *values)
{
        uint64_t h = values_hash(f, values);
        pthread_rwlock_rdlock(&f->lock);
        series *s = lookup_locked(f, h, values);
        pthread_rwlock_unlock(&f->lock);
        if (s)
                return s;

        pthread_rwlock_wrlock(&f->lock);
        s = lookup_locked(f, h, values);        /* another thread may have added it */
        if (s)
                goto out;
        if (f->nseries >= METRICS_MAX_SERIES) {
                pthread_rwlock_unlock(&f->lock);
                note_drop(f);
                return NULL;
        }
        size_t nb = f->kind == KIND_HISTOGRAM ? f->nbounds + 1 : 0;
        size_t total = 0;
        for (size_t i = 0; i < f->nlabels; i++)
                total += strlen(values[i]) + 1;
        s = calloc(1, sizeof(*s) + nb * sizeof(s->buckets[0]));
        char *strings = malloc(total ? total : 1);
        if (!s || !strings) {
                free(s);
                free(strings);
                s = NULL;
                goto out;
        }
        s->strings = strings;
        char *p = strings;
        for (size_t i = 0; i < f->nlabels; i++) {
                size_t l = strlen(values[i]) + 1;
                memcpy(p, values[i], l);
                s->values[i] = p;
                p += l;
        }
        s->hash = h;
        if (f->kind == KIND_GAUGE)
                atomic_store(&s->value, dbl_bits(0.0));
        atomic_store(&s->sum_bits, dbl_bits(0.0));
        s->chain = f->table[h & (f->nbuckets - 1)];
        f->table[h & (f->nbuckets - 1)] = s;
        if (f->tail)
                f->tail->next = s;
        else
                f->head = s;
        f->tail = s;
        f->nseries++;
        if (f->nseries > f->nbuckets * 2)
                grow_table_locked(f);
out:
        pthread_rwlock_unlock(&f->lock);
        return s;
}

static void atomic_add_double(_Atomic uint64_t *slot, double delta)
{
        uint64_t old = atomic_load(slot);
        for (;;) {
                uint64_t want = dbl_bits(bits_dbl(old) + delta);
                if (atomic_compare_exchange_weak(slot, &old, want))
                        return;
        }
}

int metric_inc(metric *c, const char *const *values, uint64_t n)
{
        if (!c || c->kind != KIND_COUNTER || !values_ok(c, values))
                return -1;
        series *s = series_get(c, values);
        if (!s)
                return -1;
        atomic_fetch_add(&s->value, n);
        return 0;
}

int metric_set(metric *g, const char *const *values, double v)
{
        if (!g || g->kind != KIND_GAUGE || !values_ok(g, values))
                return -1;
        series *s = series_get(g, values);
        if (!s)
                return -1;
        atomic_store(&s->value, dbl_bits(v));
        return 0;
}

int metric_add(metric *g, const char *const *values, double delta)
{
        if (!g || g->kind != KIND_GAUGE || !values_ok(g, values))
                return -1;
        series *s = series_get(g, values);
        if (!s)
                return -1;
        atomic_add_double(&s->value, delta);
        return 0;
}

int metric_observe(metric *h, const char *const *values, double v)
{
        if (!h || h->kind != KIND_HISTOGRAM || !values_ok(h, values) || isnan(v))
                return -1;
        series *s = series_get(h, values);
        if (!s)
                return -1;
        size_t i = 0;
        while (i < h->nbounds && v > h->bounds[i])
                i++;
        atomic_fetch_add(&s->buckets[i], 1);    /* i == nbounds: the +Inf bucket */
        atomic_add_double(&s->sum_bits, v);
        return 0;
}

/* ---- rendering ---- */

static void fmt_double(double v, char *out, size_t outsz)
{
        if (isnan(v)) {
                (void)str_copy(out, outsz, "NaN");
                return;
        }
        if (isinf(v)) {
                (void)str_copy(out, outsz, v > 0 ? "+Inf" : "-Inf");
                return;
        }
        /* Shortest of %.15g / %.17g that reads back exactly: 0.1 stays "0.1". */
        int n = snprintf(out, outsz, "%.15g", v);
        if (n < 0 || (size_t)n >= outsz || strtod(out, NULL) != v) {
                n = snprintf(out, outsz, "%.17g", v);
                if (n < 0 || (size_t)n >= outsz)
                        out[0] = '\0';
        }
}

static int put_escaped(buf *out, const char *s, bool quote)
{
        for (const char *p = s; *p; p++) {
                int rc;
                if (*p == '\\')
                        rc = buf_append(out, "\\\\", 2);
                else if (*p == '\n')
                        rc = buf_append(out, "\\n", 2);
                else if (*p == '"' && quote)
                        rc = buf_append(out, "\\\"", 2);
                else
                        rc = buf_putc(out, *p);
                if (rc < 0)
                        return -1;
        }
        return 0;
}

/* {a="x",b="y"[,le="..."]}, nothing when there are no labels at all. */
static int put_labels(buf *out, const metric *f, const char *const *values, const char *le)
{
        if (f->nlabels == 0 && !le)
                return 0;
        if (buf_putc(out, '{') < 0)
                return -1;
        for (size_t i = 0; i < f->nlabels; i++) {
                if (buf_appendf(out, "%s%s=\"", i ? "," : "", f->labels[i]) < 0 ||
                    put_escaped(out, values[i], true) < 0 || buf_putc(out, '"') < 0)
                        return -1;
        }
        if (le && buf_appendf(out, "%sle=\"%s\"", f->nlabels ? "," : "", le) < 0)
                return -1;
        return buf_putc(out, '}');
}

static int put_sample(buf *out, const metric *f, const char *suffix, const char *const *values,
                      const char *le, const char *value)
{
        if (buf_append_str(out, f->name) < 0 || buf_append_str(out, suffix) < 0 ||
            put_labels(out, f, values, le) < 0)
                return -1;
        return buf_appendf(out, " %s\n", value);
}

static int render_series(buf *out, const metric *f, series *s)
{
        char num[48];
        switch (f->kind) {
        case KIND_COUNTER:
                (void)snprintf(num, sizeof(num), "%llu",
                               (unsigned long long)atomic_load(&s->value));
                return put_sample(out, f, "", s->values, NULL, num);
        case KIND_GAUGE:
                fmt_double(bits_dbl(atomic_load(&s->value)), num, sizeof(num));
                return put_sample(out, f, "", s->values, NULL, num);
        case KIND_HISTOGRAM: {
                uint64_t cum = 0;
                char le[48];
                for (size_t i = 0; i <= f->nbounds; i++) {
                        cum += atomic_load(&s->buckets[i]);
                        if (i < f->nbounds)
                                fmt_double(f->bounds[i], le, sizeof(le));
                        else
                                (void)str_copy(le, sizeof(le), "+Inf");
                        (void)snprintf(num, sizeof(num), "%llu", (unsigned long long)cum);
                        if (put_sample(out, f, "_bucket", s->values, le, num) < 0)
                                return -1;
                }
                /* _count is the +Inf bucket read above, so the two always agree. */
                fmt_double(bits_dbl(atomic_load(&s->sum_bits)), num, sizeof(num));
                if (put_sample(out, f, "_sum", s->values, NULL, num) < 0)
                        return -1;
                (void)snprintf(num, sizeof(num), "%llu", (unsigned long long)cum);
                return put_sample(out, f, "_count", s->values, NULL, num);
        }
        case KIND_GAUGE_FUNC:
        default:
                return 0;
        }
}

int metrics_sink_emit(metrics_sink *sink, const char *const *values, double value)
{
        if (!sink || sink->failed)
                return -1;
        if (!values_ok(sink->fam, values))
                return -1;
        char num[48];
        fmt_double(value, num, sizeof(num));
        if (put_sample(sink->out, sink->fam, "", values, NULL, num) < 0) {
                sink->failed = 1;
                return -1;
        }
        return 0;
}

static int render_family(buf *out, metric *f)
{
        if (buf_appendf(out, "# HELP %s ", f->name) < 0 || put_escaped(out, f->help, false) < 0 ||
            buf_appendf(out, "\n# TYPE %s %s\n", f->name, kind_name(f->kind)) < 0)
                return -1;
        if (f->kind == KIND_GAUGE_FUNC) {
                size_t mark = out->len;
                metrics_sink sink = { .fam = f, .out = out, .failed = 0 };
                int rc = f->fn ? f->fn(f->fn_ctx, &sink) : 0;
                if (sink.failed)
                        return -1;
                if (rc < 0) {
                        /* The collector could not produce values: leave the family empty
                         * rather than half-filled. */
                        out->len = mark;
                        if (out->data)
                                out->data[mark] = '\0';
                }
                return 0;
        }
        int rc = 0;
        pthread_rwlock_rdlock(&f->lock);
        for (series *s = f->head; s && rc == 0; s = s->next)
                rc = render_series(out, f, s);
        pthread_rwlock_unlock(&f->lock);
        return rc;
}

int metrics_render(metrics_reg *m, buf *out, err_t *err)
{
        int rc = 0;
        pthread_mutex_lock(&m->lock);
        for (metric *f = m->head; f && rc == 0; f = f->next)
                rc = render_family(out, f);
        pthread_mutex_unlock(&m->lock);
        if (rc < 0)
                return err_errno(err, errno, "metrics: render (cap %zu bytes)", out->max);
        return 0;
}
