/* agent/logstream.h — one directive's stdout/stderr: chunking, sequence numbers, the upload
 * cap, truncation flags and overflow to disk (spec nexus §5.9, §5.10, §4.3 log chunk).
 *
 * Loop-agnostic: no threads, no network, no timers. The daemon's loop reads the child's pipes
 * and feeds the bytes in with nx_logstream_write(); the module decides what is uploaded and
 * what overflows, and queues chunks in a BOUNDED outbox that the loop drains with
 * nx_logstream_next() / nx_logstream_chunk_done().
 *
 * What it accepts and how:
 *  - Per-stream seq from 0, incremented once per chunk queued (§5.9). Chunks that are never
 *    queued (budget exhausted, outbox full) use no seq number, so seqs have no gaps.
 *  - A write is cut into pieces of at most chunk_bytes; each piece is one chunk.
 *  - One byte budget (cap_bytes) shared by both streams: each piece takes min(len, remaining).
 *    A piece that is cut gives a chunk with truncated=true, marks its stream truncated and
 *    sends the rest to overflow. With no budget left the stream is marked truncated and every
 *    byte goes to overflow (or is discarded) — writes keep succeeding, so the caller keeps
 *    reading and the child never blocks on a full pipe.
 *  - Memory: queued + handed-out chunks (payload plus per-chunk bookkeeping) never exceed
 *    outbox_max_bytes. nx_logstream_backpressure() turns true while one more full chunk might
 *    not fit: the caller should stop reading the pipes until chunks are uploaded (a slow server
 *    then back-pressures the child, as in the reference's synchronous upload). A caller that
 *    writes anyway is not punished with memory growth: a piece that does not fit is DROPPED
 *    from the upload (counted in dropped_bytes, does not consume the budget, uses no seq),
 *    its stream is marked truncated, and the bytes go to overflow like any other bytes not
 *    uploaded. A caller that writes at most chunk_bytes per call and checks backpressure
 *    before every read never drops anything.
 *  - Overflow (§5.10, with the ADVISED hardening): <facility>/<overflow_rel_dir>/<directive_id>/
 *    {stdout,stderr}.log, created lazily on the first overflow byte of that stream. Every
 *    component is created with mkdirat() and opened relative to the previous directory fd with
 *    openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS) and O_NOFOLLOW|O_CLOEXEC
 *    (per-component openat(O_NOFOLLOW) when openat2 is ENOSYS). The sandbox controls the
 *    facility, so a symlink anywhere on the path, a FIFO (opened O_NONBLOCK, never blocks the
 *    loop), a directory, or a file with more than one hard link in place of the log file
 *    DISABLES overflow for that stream; nothing is followed. Files are appended (0644, dirs
 *    0755, both under the umask). Writes are synchronous small writes on the caller's thread
 *    (at most chunk_bytes at a time, to a local file); errors disable overflow for that stream
 *    (best effort, §5.10), never the directive.
 *  - Per-stream overflow cap overflow_max_per_stream: bytes past it are discarded and the line
 *    "\n[nexus] overflow file reached max_bytes_per_stream=<N>\n" is appended once — only when
 *    a byte was actually refused (a stream that ends exactly at the cap gets no notice).
 *
 * Invariant per stream (see nx_logstream_stats): fed = uploaded + overflow + discarded.
 * Not thread-safe: one owner (the loop thread) calls everything. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/error.h"

typedef enum nx_stream { NX_STDOUT = 0, NX_STDERR = 1 } nx_stream;
#define NX_STREAM_COUNT 2

/* The server refuses chunks larger than its MAX_CHUNK (mothership §3.2.6, default 256 KiB). */
#define NX_LOGSTREAM_CHUNK_MAX 262144
#define NX_LOGSTREAM_OUTBOX_DEFAULT (1024 * 1024)

typedef struct nx_logstream nx_logstream;
struct nx_log_chunk_node;

typedef struct nx_logstream_cfg {
        int64_t cap_bytes;              /* shared stdout+stderr upload budget, >= 0 */
        size_t chunk_bytes;             /* 1..NX_LOGSTREAM_CHUNK_MAX */
        size_t outbox_max_bytes;        /* memory bound of queued + handed-out chunks;
                                         * 0 = NX_LOGSTREAM_OUTBOX_DEFAULT; must hold one
                                         * full chunk (nx_logstream_chunk_charge) */
        bool overflow_enabled;          /* log_overflow.enabled */
        int facility_dirfd;             /* -1 = no facility: no overflow; dup'ed by _new */
        const char *overflow_rel_dir;   /* NULL = ".nexus/overflow"; relative, no ".." */
        const char *directive_id;       /* required when overflow is on (wire_id_is_valid) */
        int64_t overflow_max_per_stream;/* <= 0 disables overflow (§5.10) */
        const char *mount;              /* workspace path for the manifest; NULL/"" = /workspace */
        bool no_openat2;                /* walk with openat(O_NOFOLLOW) even if openat2 exists
                                         * (seccomp-filtered hosts; tests of the fallback) */
} nx_logstream_cfg;

/* A chunk handed out for upload. bytes stay valid until nx_logstream_chunk_done() or
 * nx_logstream_chunk_requeue() (or nx_logstream_free(), which releases outstanding chunks). */
typedef struct nx_log_chunk {
        nx_stream stream;
        int64_t seq;
        const uint8_t *bytes;
        size_t len;
        bool truncated;                 /* this chunk was cut by the cap */
        struct nx_log_chunk_node *node_;/* private */
} nx_log_chunk;

typedef enum nx_overflow_state {
        NX_OVERFLOW_OFF = 0,            /* not configured (or no facility) */
        NX_OVERFLOW_UNOPENED,           /* configured, no overflow byte yet */
        NX_OVERFLOW_OPEN,
        NX_OVERFLOW_FULL,               /* per-stream cap reached, notice written */
        NX_OVERFLOW_DISABLED,           /* refused (symlink, not a regular file...) or failed */
} nx_overflow_state;

typedef struct nx_logstream_stats {
        uint64_t fed_bytes;             /* everything written for this stream */
        uint64_t uploaded_bytes;        /* queued for upload (charged to the budget) */
        int64_t next_seq;               /* = chunks queued so far */
        uint64_t overflow_bytes;        /* written to the overflow file, notice excluded */
        uint64_t dropped_bytes;         /* refused because the outbox was full (these are in
                                         * overflow_bytes or discarded_bytes too) */
        uint64_t discarded_bytes;       /* neither uploaded nor written to overflow */
        nx_overflow_state overflow;
        bool truncated;
} nx_logstream_stats;

/* Validates cfg and creates the stream pair. Nothing is opened on disk yet. */
int nx_logstream_new(const nx_logstream_cfg *cfg, nx_logstream **out, err_t *err);
/* Releases everything, including chunks still handed out; closes overflow files. NULL ok. */
void nx_logstream_free(nx_logstream *ls);

/* Feeds bytes read from a stream. Never blocks and never grows memory past the outbox bound;
 * fails only on a stream that is neither stdout nor stderr (§5.9: other streams are dropped). */
int nx_logstream_write(nx_logstream *ls, nx_stream stream, const void *data, size_t len,
                       err_t *err);
/* Daemon messages ("[prepare] ...", proxy audit lines) take the same path as output, so they
 * share seqs and budget (§5.4, §5.9). */
int nx_logstream_message(nx_logstream *ls, nx_stream stream, const char *text, err_t *err);

/* True while the next full chunk might not fit: stop reading pipes, upload chunks. */
bool nx_logstream_backpressure(const nx_logstream *ls);
/* Memory charged by queued + handed-out chunks (always <= the outbox bound). */
size_t nx_logstream_queued_bytes(const nx_logstream *ls);
/* What one chunk of len payload bytes costs against the outbox bound. */
size_t nx_logstream_chunk_charge(size_t len);

/* Pops the oldest queued chunk (FIFO across both streams). False when none is queued. */
bool nx_logstream_next(nx_logstream *ls, nx_log_chunk *out);
/* The upload is over (sent, or failed and given up — §5.9 best effort): frees the chunk and
 * zeroes *c. A zeroed chunk is ignored. */
void nx_logstream_chunk_done(nx_logstream *ls, nx_log_chunk *c);
/* The upload failed and should be retried: puts the chunk back at the head of the outbox
 * (same seq; the server dedups on stream+seq) and zeroes *c. */
void nx_logstream_chunk_requeue(nx_logstream *ls, nx_log_chunk *c);

/* The log_chunks request body (§4.3): {stream, seq, bytes (base64), truncated?}. */
json_t *nx_log_chunk_to_json(const nx_log_chunk *c, err_t *err);

/* Feeds finished.stdout_truncated / stderr_truncated (§5.9). */
bool nx_logstream_truncated(const nx_logstream *ls, nx_stream stream);
void nx_logstream_stats_get(const nx_logstream *ls, nx_stream stream, nx_logstream_stats *out);
/* Why overflow is disabled for a stream ("" when it is not). */
const char *nx_logstream_overflow_error(const nx_logstream *ls, nx_stream stream);

/* finished.artifacts_manifest (§5.10): {} unless overflow is configured and a stream was
 * truncated; then {"log_overflow": {stdout_path, stderr_path, stdout_bytes, stderr_bytes,
 * max_bytes_per_stream}} with workspace-visible cleaned paths and byte counts without the
 * notice. Additive: "<stream>_disabled": true for a stream whose overflow was refused, so
 * nobody trusts a file the sandbox planted there. NULL on ENOMEM. */
json_t *nx_logstream_manifest(const nx_logstream *ls);
