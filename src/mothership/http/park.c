/* http/park.c — long-poll parking (DESIGN D8: a handler never blocks waiting for work).
 *
 * A parked request is an entry in a registry under park_lock: a min-heap on the deadline (for the
 * timer thread; every parked request has a server-side timeout) and per-topic hash chains (for
 * ms_http_notify). States of req->park:
 *   PENDING    ms_http_park() registered it; the handler has not returned yet
 *   SUSPENDED  the connection is suspended (done under park_lock, so whoever later removes the
 *              entry under the same lock knows the connection is suspended and may resume it)
 *   WOKEN      removed from the registry with a reason; if it was SUSPENDED, the remover calls
 *              MHD_resume_connection() after dropping the lock (never under it)
 * Removing an entry and resuming are done by exactly one party, so a connection is resumed once
 * per suspension. A notify that reaches a PENDING entry is not lost: the handler is re-entered as
 * soon as it returns. Shutdown refuses new parks and wakes everything before the daemon stops:
 * libmicrohttpd must never be stopped with suspended connections. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cleanup.h"
#include "core/clock.h"
#include "core/log.h"
#include "http/server_impl.h"

static uint64_t topic_hash(const char *s)
{
        uint64_t h = 0xcbf29ce484222325ull;
        for (; *s; s++) {
                h ^= (unsigned char)*s;
                h *= 0x100000001b3ull;
        }
        return h;
}

static void mono_deadline(struct timespec *ts, int64_t ms_from_now)
{
        clock_gettime(CLOCK_MONOTONIC, ts);
        ts->tv_sec += (time_t)(ms_from_now / 1000);
        ts->tv_nsec += (long)(ms_from_now % 1000) * 1000000L;
        if (ts->tv_nsec >= 1000000000L) {
                ts->tv_sec++;
                ts->tv_nsec -= 1000000000L;
        }
}

/* -------------------------------------------------------------- park heap */

static void heap_swap(ms_http_server *s, size_t a, size_t b)
{
        ms_http_req *t = s->heap[a];
        s->heap[a] = s->heap[b];
        s->heap[b] = t;
        s->heap[a]->park.heap_idx = a;
        s->heap[b]->park.heap_idx = b;
}

static void heap_up(ms_http_server *s, size_t i)
{
        while (i > 0) {
                size_t p = (i - 1) / 2;
                if (s->heap[p]->park.deadline_mono <= s->heap[i]->park.deadline_mono)
                        break;
                heap_swap(s, p, i);
                i = p;
        }
}

static void heap_down(ms_http_server *s, size_t i)
{
        for (;;) {
                size_t l = 2 * i + 1, r = l + 1, m = i;
                if (l < s->heap_len &&
                    s->heap[l]->park.deadline_mono < s->heap[m]->park.deadline_mono)
                        m = l;
                if (r < s->heap_len &&
                    s->heap[r]->park.deadline_mono < s->heap[m]->park.deadline_mono)
                        m = r;
                if (m == i)
                        return;
                heap_swap(s, i, m);
                i = m;
        }
}

static int heap_push(ms_http_server *s, ms_http_req *req)
{
        if (s->heap_len == s->heap_cap) {
                size_t cap = s->heap_cap ? s->heap_cap * 2 : 64;
                ms_http_req **h = realloc(s->heap, cap * sizeof(*h));
                if (!h)
                        return -1;
                s->heap = h;
                s->heap_cap = cap;
        }
        s->heap[s->heap_len] = req;
        req->park.heap_idx = s->heap_len++;
        heap_up(s, req->park.heap_idx);
        return 0;
}

static void heap_remove(ms_http_server *s, ms_http_req *req)
{
        size_t i = req->park.heap_idx;
        s->heap_len--;
        if (i != s->heap_len) {
                s->heap[i] = s->heap[s->heap_len];
                s->heap[i]->park.heap_idx = i;
                heap_down(s, i);
                heap_up(s, i);
        }
}

/* ---------------------------------------------------------- park registry */

/* park_lock held. */
static void reg_remove(ms_http_server *s, ms_http_req *req)
{
        park_entry *p = &req->park;
        heap_remove(s, req);
        if (p->topic) {
                if (p->tprev)
                        p->tprev->park.tnext = p->tnext;
                else
                        s->topics[p->bucket] = p->tnext;
                if (p->tnext)
                        p->tnext->park.tprev = p->tprev;
                p->tprev = p->tnext = NULL;
        }
}

/* park_lock held. Takes the entry out of the registry with a reason; a suspended one is pushed
 * on *resume_list for the caller to resume after unlocking. */
static void wake_locked(ms_http_server *s, ms_http_req *req, ms_http_wake why,
                        ms_http_req **resume_list)
{
        reg_remove(s, req);
        bool suspended = req->park.state == PARK_SUSPENDED;
        req->park.state = PARK_WOKEN;
        req->park.reason = why;
        if (suspended) {
                req->park.resume_next = *resume_list;
                *resume_list = req;
        }
}

/* Called without park_lock, with resumes_in_flight already counted for this list. */
static void resume_list_run(ms_http_server *s, ms_http_req *list)
{
        while (list) {
                /* Read everything first: once resumed, the request may finish and be freed. */
                ms_http_req *next = list->park.resume_next;
                struct MHD_Connection *c = list->conn;
                MHD_resume_connection(c);
                list = next;
        }
        pthread_mutex_lock(&s->park_lock);
        s->resumes_in_flight--;
        if (s->resumes_in_flight == 0)
                pthread_cond_broadcast(&s->idle_cond);
        pthread_mutex_unlock(&s->park_lock);
}

static void *timer_main(void *arg)
{
        ms_http_server *s = arg;
        pthread_mutex_lock(&s->park_lock);
        while (!s->timer_stop) {
                if (s->heap_len == 0) {
                        pthread_cond_wait(&s->timer_cond, &s->park_lock);
                        continue;
                }
                int64_t now = clock_mono_ms();
                ms_http_req *list = NULL;
                while (s->heap_len > 0 && s->heap[0]->park.deadline_mono <= now)
                        wake_locked(s, s->heap[0], MS_HTTP_WAKE_TIMEOUT, &list);
                if (list) {
                        s->resumes_in_flight++;
                        pthread_mutex_unlock(&s->park_lock);
                        resume_list_run(s, list);
                        pthread_mutex_lock(&s->park_lock);
                        continue;
                }
                if (s->heap_len == 0)
                        continue;
                struct timespec ts;
                mono_deadline(&ts, s->heap[0]->park.deadline_mono - now);
                pthread_cond_timedwait(&s->timer_cond, &s->park_lock, &ts);
        }
        pthread_mutex_unlock(&s->park_lock);
        return NULL;
}

int ms_http_park(ms_http_req *req, const char *topic, int64_t timeout_ms, ms_http_resume_fn resume,
                 void *ctx, err_t *err)
{
        if (!req || !req->in_callback)
                return err_set(err, "park: only from inside the request's handler");
        if (req->status)
                return err_set(err, "park: request already answered");
        if (req->park.state != PARK_NONE)
                return err_set(err, "park: request already parked");
        if (timeout_ms <= 0)
                return err_set(err, "park: timeout %lld ms must be positive",
                               (long long)timeout_ms);
        if (topic && (!*topic || strnlen(topic, MS_HTTP_TOPIC_MAX + 1) > MS_HTTP_TOPIC_MAX))
                return err_set(err, "park: topic must be 1-%d bytes", MS_HTTP_TOPIC_MAX);
        ms_http_server *s = req->srv;
        if (timeout_ms > s->park_max_ms)
                timeout_ms = s->park_max_ms;     /* every parked request has a server bound */
        char *t = NULL;
        if (topic && !(t = strdup(topic)))
                return err_errno(err, ENOMEM, "park");

        pthread_mutex_lock(&s->park_lock);
        if (atomic_load(&s->stopping)) {
                pthread_mutex_unlock(&s->park_lock);
                free(t);
                return err_setc(err, ERR_INTERNAL, "park: server is stopping");
        }
        if (s->heap_len >= s->max_parked) {
                pthread_mutex_unlock(&s->park_lock);
                free(t);
                return err_setc(err, ERR_INTERNAL, "park: %zu requests already parked",
                                s->max_parked);
        }
        park_entry *p = &req->park;
        FREE_AND_NULL(p->topic);
        p->topic = t;
        p->deadline_mono = clock_mono_ms() + timeout_ms;
        p->resume = resume;
        p->ctx = ctx;
        p->reason = MS_HTTP_WAKE_NONE;
        p->resume_next = NULL;
        if (heap_push(s, req) < 0) {
                pthread_mutex_unlock(&s->park_lock);
                FREE_AND_NULL(p->topic);
                return err_errno(err, ENOMEM, "park");
        }
        if (t) {
                p->bucket = (size_t)(topic_hash(t) % MS_HTTP_PARK_BUCKETS);
                p->tprev = NULL;
                p->tnext = s->topics[p->bucket];
                if (p->tnext)
                        p->tnext->park.tprev = req;
                s->topics[p->bucket] = req;
        }
        p->state = PARK_PENDING;
        p->registered = true;
        if (p->heap_idx == 0)
                pthread_cond_signal(&s->timer_cond);   /* new earliest deadline */
        pthread_mutex_unlock(&s->park_lock);
        return 0;
}

int ms_http_notify(ms_http_server *s, const char *topic)
{
        if (!s || !topic)
                return 0;
        size_t b = (size_t)(topic_hash(topic) % MS_HTTP_PARK_BUCKETS);
        ms_http_req *list = NULL;
        int n = 0;
        pthread_mutex_lock(&s->park_lock);
        ms_http_req *r = s->topics[b];
        while (r) {
                ms_http_req *next = r->park.tnext;
                if (strcmp(r->park.topic, topic) == 0) {
                        wake_locked(s, r, MS_HTTP_WAKE_NOTIFY, &list);
                        n++;
                }
                r = next;
        }
        if (list)
                s->resumes_in_flight++;
        pthread_mutex_unlock(&s->park_lock);
        if (list)
                resume_list_run(s, list);
        return n;
}

size_t ms_http_server_parked(ms_http_server *s)
{
        pthread_mutex_lock(&s->park_lock);
        size_t n = s->heap_len;
        pthread_mutex_unlock(&s->park_lock);
        return n;
}

ms_http_wake ms_http_req_wake(const ms_http_req *req)
{
        return req->wake;
}

ms_http_park_outcome ms_http_park_settle(ms_http_req *req, int rc)
{
        ms_http_server *s = req->srv;
        park_entry *p = &req->park;
        ms_http_park_outcome out = MS_HTTP_PARK_NOTHING;
        if (!p->registered)
                return out;
        p->registered = false;
        pthread_mutex_lock(&s->park_lock);
        if (p->state == PARK_PENDING) {
                if (req->status || rc != MS_HTTP_PARKED) {
                        reg_remove(s, req);     /* answered after all: cancel the park */
                        p->state = PARK_NONE;
                } else {
                        /* Under the lock: see the file comment. */
                        MHD_suspend_connection(req->conn);
                        p->state = PARK_SUSPENDED;
                        out = MS_HTTP_PARK_SUSPENDED;
                }
        } else if (p->state == PARK_WOKEN) {
                /* Woken between ms_http_park() and now: go again without suspending. */
                p->state = PARK_NONE;
                if (!req->status && rc == MS_HTTP_PARKED) {
                        req->wake = p->reason;
                        out = MS_HTTP_PARK_AGAIN;
                }
        }
        pthread_mutex_unlock(&s->park_lock);
        return out;
}

void ms_http_park_resumed(ms_http_req *req)
{
        ms_http_server *s = req->srv;
        pthread_mutex_lock(&s->park_lock);
        if (req->park.state == PARK_WOKEN) {
                req->wake = req->park.reason;
                req->park.state = PARK_NONE;
        }
        pthread_mutex_unlock(&s->park_lock);
}

void ms_http_park_forget(ms_http_req *req)
{
        ms_http_server *s = req->srv;
        pthread_mutex_lock(&s->park_lock);
        /* Not expected (parked connections are resumed before they can end), but never leave a
         * dangling pointer in the registry. */
        if (req->park.state == PARK_PENDING || req->park.state == PARK_SUSPENDED)
                reg_remove(s, req);
        req->park.state = PARK_NONE;
        pthread_mutex_unlock(&s->park_lock);
}

int ms_http_park_init(ms_http_server *s, err_t *err)
{
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_mutex_init(&s->park_lock, NULL);
        pthread_cond_init(&s->timer_cond, &ca);
        pthread_cond_init(&s->idle_cond, &ca);
        pthread_condattr_destroy(&ca);
        int rc = pthread_create(&s->timer, NULL, timer_main, s);
        if (rc != 0) {
                pthread_cond_destroy(&s->timer_cond);
                pthread_cond_destroy(&s->idle_cond);
                pthread_mutex_destroy(&s->park_lock);
                return err_errno(err, rc, "http server: start park timer");
        }
        s->timer_started = true;
        return 0;
}

void ms_http_park_shutdown(ms_http_server *s)
{
        ms_http_req *list = NULL;
        pthread_mutex_lock(&s->park_lock);
        atomic_store(&s->stopping, true);
        while (s->heap_len > 0)
                wake_locked(s, s->heap[0], MS_HTTP_WAKE_SHUTDOWN, &list);
        if (list)
                s->resumes_in_flight++;
        pthread_mutex_unlock(&s->park_lock);
        if (list)
                resume_list_run(s, list);
        pthread_mutex_lock(&s->park_lock);
        /* Whatever the grace period: no connection may stay suspended when the daemon stops. */
        while (s->resumes_in_flight > 0)
                pthread_cond_wait(&s->idle_cond, &s->park_lock);
        pthread_mutex_unlock(&s->park_lock);
}

void ms_http_park_fini(ms_http_server *s)
{
        if (!s->timer_started)
                return;
        pthread_mutex_lock(&s->park_lock);
        s->timer_stop = true;
        pthread_cond_signal(&s->timer_cond);
        pthread_mutex_unlock(&s->park_lock);
        pthread_join(s->timer, NULL);
        s->timer_started = false;
        FREE_AND_NULL(s->heap);
        pthread_cond_destroy(&s->timer_cond);
        pthread_cond_destroy(&s->idle_cond);
        pthread_mutex_destroy(&s->park_lock);
}
