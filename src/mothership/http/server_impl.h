/* http/server_impl.h — private to src/mothership/http: the request and server objects shared
 * by server.c (daemon, request life cycle), request.c (accessors, responses) and park.c
 * (long-poll parking). Nothing outside this directory includes it. */
#pragma once
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "http/server.h"

#define MS_HTTP_PARK_BUCKETS 256
#define MS_HTTP_MAX_DONE_HOOKS 8

typedef enum park_state {
        PARK_NONE = 0,
        PARK_PENDING,
        PARK_SUSPENDED,
        PARK_WOKEN,
} park_state;

typedef struct park_entry {
        park_state state;
        bool registered;                /* ms_http_park() ran during the current handler call */
        char *topic;                    /* NULL: timeout only */
        size_t bucket;
        ms_http_req *tprev, *tnext;     /* topic chain */
        size_t heap_idx;
        int64_t deadline_mono;
        ms_http_wake reason;            /* set when WOKEN */
        ms_http_resume_fn resume;
        void *ctx;
        ms_http_req *resume_next;       /* list of woken requests awaiting MHD_resume_connection */
} park_entry;

typedef struct extra_header {
        char *name;
        char *value;
} extra_header;

typedef struct done_hook {
        void (*fn)(void *);
        void *arg;
} done_hook;

struct ms_http_req {
        ms_http_server *srv;
        struct MHD_Connection *conn;
        const char *method;             /* owned by libmicrohttpd, valid for the request */
        const char *path;
        ms_http_match match;
        const char *route_label;
        char peer[INET6_ADDRSTRLEN];
        int fd;
        int64_t start_unix_ms;
        int64_t start_mono_ms;
        bool in_callback;
        int status;                     /* queued status, 0 = none yet */

        /* first-call outcome */
        bool early_pending;             /* an early answer waits for the final call */
        unsigned early_status;
        char early_code[32];
        char early_detail[512];
        const ms_ratelimit_rule *early_rule;  /* for Retry-After on a deferred 429 */

        /* query */
        size_t nquery;
        char *qname[MS_HTTP_MAX_QUERY_ARGS];
        char *qvalue[MS_HTTP_MAX_QUERY_ARGS];
        bool query_bad;
        err_t query_err;

        /* body */
        buf body;
        bool too_large;
        size_t discarded;

        extra_header headers[MS_HTTP_MAX_EXTRA_HEADERS];
        size_t nheaders;

        void *auth;
        void (*auth_free)(void *);
        done_hook hooks[MS_HTTP_MAX_DONE_HOOKS];
        size_t nhooks;

        ms_http_wake wake;
        park_entry park;
        bool rate_checked;              /* ms_http_rate_limit() was called */
};

struct ms_http_server {
        struct MHD_Daemon *daemon;
        const ms_http_router *router;
        ms_ratelimit *ratelimit;
        metrics_reg *metrics;
        metric *m_requests;
        metric *m_duration;
        uint16_t port;
        int64_t park_max_ms;
        size_t max_parked;
        int64_t grace_ms;

        pthread_mutex_t park_lock;
        pthread_cond_t timer_cond;      /* the timer thread waits here */
        pthread_cond_t idle_cond;       /* stop waits here for resumes / requests to drain */
        ms_http_req *topics[MS_HTTP_PARK_BUCKETS];
        ms_http_req **heap;
        size_t heap_len, heap_cap;
        int resumes_in_flight;
        bool timer_stop;
        bool timer_started;
        pthread_t timer;
        _Atomic bool stopping;
        _Atomic long active;            /* requests between first callback and completion */
        _Atomic uint64_t nodelay_failures;
        _Atomic bool warned_unchecked_rate;
};

/* ---- park.c ---- */

typedef enum ms_http_park_outcome {
        MS_HTTP_PARK_NOTHING = 0,   /* no park involved: the caller checks the answer */
        MS_HTTP_PARK_SUSPENDED,     /* the connection is suspended until a wake-up */
        MS_HTTP_PARK_AGAIN,         /* woken before it could suspend: call the handler again */
} ms_http_park_outcome;

/* Sets up the registry and starts the timer thread. */
int ms_http_park_init(ms_http_server *s, err_t *err);
/* After a handler call with return value rc (inside the access callback): suspends, cancels or
 * asks for re-entry. */
ms_http_park_outcome ms_http_park_settle(ms_http_req *req, int rc);
/* On the access callback that follows a resume: records why the request woke. */
void ms_http_park_resumed(ms_http_req *req);
/* When a request ends: makes sure the registry holds no pointer to it. */
void ms_http_park_forget(ms_http_req *req);
/* Stop step 1: refuses new parks, wakes every parked request (MS_HTTP_WAKE_SHUTDOWN) and waits
 * until every resume has been issued. */
void ms_http_park_shutdown(ms_http_server *s);
/* Stop step 2 (after the daemon no longer runs handlers that could park): stops the timer
 * thread and frees the registry. */
void ms_http_park_fini(ms_http_server *s);

/* ---- request.c ---- */

/* Runs the done hooks and the auth destructor, frees everything. */
void ms_http_req_free(ms_http_req *req);
/* Counts one hit of rule for key; true when the request must be refused (limited, table full,
 * or an unusable key). */
bool ms_http_rate_refused(ms_http_req *req, const ms_ratelimit_rule *rule, const char *key);
/* 429 rate_limited with Retry-After = the rule's full period (spec §3.1.4). */
int ms_http_respond_rate_limited(ms_http_req *req, const ms_ratelimit_rule *rule);
