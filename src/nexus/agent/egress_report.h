/* agent/egress_report.h — a directive's egress audit records (proxy/proxy.h) as uploadable log
 * chunks on the stream "egress" (issue #6 item 2; spec nexus §7.10, mothership §3.2.6).
 *
 * Loop-agnostic, no threads, no network (like agent/logstream.h): the proxy's audit callback
 * feeds records in with nx_egress_report_append() (nx_egress_report_audit_cb has the
 * nx_proxy_audit_fn shape); the loop drains chunks with nx_egress_report_next() and
 * nx_egress_report_chunk_done() / _requeue(), and uploads each as
 * POST /conduits/v1/directives/{id}/log_chunks {"stream":"egress","seq":N,"bytes":<base64>,
 * "truncated"?:true} (nx_egress_chunk_to_json).
 *
 *  - One record = one compact JSON line ending in '\n', at most NX_EGRESS_LINE_MAX bytes
 *    (a bigger record is dropped and counted).
 *  - Lines are batched: a chunk holds whole lines only, at most chunk_bytes. A line that does
 *    not fit in the open batch seals it. nx_egress_report_flush() seals the open batch early
 *    (call it on a timer and when the directive ends) so records are not held back.
 *  - Own seq from 0, +1 per sealed chunk, no gaps.
 *  - Own cap (cap_bytes, default 1 MiB of lines per directive): a line that would pass it is
 *    dropped and counted; nx_egress_report_finish() then appends ONE final line
 *    {"truncated":true,"dropped":N} (allowed past the cap), marks that chunk truncated and seals.
 *    Memory is therefore bounded by cap + one line. After finish, appends are refused.
 * Not thread-safe: one owner (the loop thread). */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/error.h"

#define NX_EGRESS_STREAM "egress"
#define NX_EGRESS_LINE_MAX 4096
#define NX_EGRESS_CHUNK_DEFAULT 16384
#define NX_EGRESS_CHUNK_MAX 262144          /* server MAX_CHUNK (mothership §3.2.6) */
#define NX_EGRESS_CAP_DEFAULT (1024 * 1024)

typedef struct nx_egress_report nx_egress_report;
struct nx_egress_chunk_node;

typedef struct nx_egress_report_cfg {
        size_t chunk_bytes;             /* 0 = NX_EGRESS_CHUNK_DEFAULT; else
                                         * NX_EGRESS_LINE_MAX..NX_EGRESS_CHUNK_MAX */
        int64_t cap_bytes;              /* 0 = NX_EGRESS_CAP_DEFAULT; < 0 invalid */
} nx_egress_report_cfg;

/* A sealed chunk handed out for upload; bytes stay valid until _chunk_done/_requeue/_free. */
typedef struct nx_egress_chunk {
        int64_t seq;
        const uint8_t *bytes;
        size_t len;
        bool truncated;                 /* carries the final {"truncated":true,...} line */
        struct nx_egress_chunk_node *node_;     /* private */
} nx_egress_chunk;

typedef struct nx_egress_report_stats {
        uint64_t records;               /* lines accepted */
        uint64_t dropped;               /* records refused (cap, too big, after finish) */
        uint64_t bytes;                 /* line bytes accepted */
        int64_t next_seq;               /* chunks sealed so far */
        bool truncated;
        bool finished;
} nx_egress_report_stats;

/* cfg NULL = defaults. */
int nx_egress_report_new(const nx_egress_report_cfg *cfg, nx_egress_report **out, err_t *err);
/* Frees everything, including chunks handed out. NULL ok. */
void nx_egress_report_free(nx_egress_report *r);

/* Serialises record as one line. Returns 0, or -1 with err when the line was dropped (cap
 * reached, larger than NX_EGRESS_LINE_MAX, finished, ENOMEM) — the drop is counted either way. */
int nx_egress_report_append(nx_egress_report *r, const json_t *record, err_t *err);
/* nx_proxy_audit_fn adapter: ud is the nx_egress_report; errors are counted, not reported. */
void nx_egress_report_audit_cb(void *ud, json_t *record);

/* Seals the open batch (if any) into a chunk. */
void nx_egress_report_flush(nx_egress_report *r);
/* No more records: appends the truncation line if anything was dropped, then flushes.
 * Idempotent. */
void nx_egress_report_finish(nx_egress_report *r);

/* Pops the oldest sealed chunk. False when none is sealed (the open batch is not returned). */
bool nx_egress_report_next(nx_egress_report *r, nx_egress_chunk *out);
/* Upload over (sent or given up): frees the chunk and zeroes *c. A zeroed chunk is ignored. */
void nx_egress_report_chunk_done(nx_egress_report *r, nx_egress_chunk *c);
/* Upload failed, retry later: back to the head of the queue (same seq), zeroes *c. */
void nx_egress_report_chunk_requeue(nx_egress_report *r, nx_egress_chunk *c);

/* {"stream":"egress","seq":N,"bytes":"<base64>","truncated":true?}; NULL + err on ENOMEM. */
json_t *nx_egress_chunk_to_json(const nx_egress_chunk *c, err_t *err);

void nx_egress_report_stats_get(const nx_egress_report *r, nx_egress_report_stats *out);
