/* store/store_logs.c — directive output chunks (spec §1.6, §3.2.6, §3.3.4) and their
 * retention (§10.3). A chunk is identified by (directive, stream, seq); a re-sent one is a
 * duplicate and never replaces what is stored. */
#include "store/store_internal.h"

#include <string.h>

#include "core/cleanup.h"

#define LOG_LIST_DEFAULT_MAX_BYTES (16u * 1024 * 1024)

void ms_log_chunk_array_clear(ms_log_chunk_array *l)
{
        for (size_t i = 0; i < l->n; i++)
                FREE_AND_NULL(l->items[i].bytes);
        FREE_AND_NULL(l->items);
        l->n = 0;
}

static const char sql_log_insert[] =
        "INSERT INTO conduits_log_chunks (id, directive_id, stream, seq, bytes, bytesize, "
        "truncated, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) "
        "ON CONFLICT (directive_id, stream, seq) DO NOTHING";
static const char sql_log_existing[] =
        "SELECT bytes FROM conduits_log_chunks "
        "WHERE directive_id = ?1 AND stream = ?2 AND seq = ?3";

typedef struct insert_ctx {
        const char *directive_id;
        ms_log_stream stream;
        int64_t seq;
        const void *bytes;
        size_t len;
        bool truncated;
        int64_t now;
        ms_log_insert_result result;
} insert_ctx;

static int log_insert_tx(ms_store *s, void *p, err_t *err)
{
        insert_ctx *ctx = p;
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        char id[MS_ID_SIZE];
        if (ms_new_id(ctx->now, id, err) < 0)
                return -1;
        const char *stream = ms_log_stream_name(ctx->stream);
        {
                _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_log_insert, err);
                if (!st || db_bind_text(c, st, 1, id, err) < 0 ||
                    db_bind_text(c, st, 2, ctx->directive_id, err) < 0 ||
                    db_bind_text(c, st, 3, stream, err) < 0 ||
                    db_bind_int(c, st, 4, ctx->seq, err) < 0 ||
                    db_bind_blob(c, st, 5, ctx->bytes, ctx->len, err) < 0 ||
                    db_bind_int(c, st, 6, (int64_t)ctx->len, err) < 0 ||
                    db_bind_int(c, st, 7, ctx->truncated, err) < 0 ||
                    db_bind_time(c, st, 8, ctx->now, err) < 0)
                        return -1;
                int n = db_exec_stmt(c, st, err, "insert log chunk");
                if (n < 0)
                        return -1;
                if (n == 1) {
                        ctx->result = MS_LOG_STORED;
                        return 0;
                }
        }
        /* §3.2.6: a duplicate; the stored chunk is kept, we only tell whether it matches */
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_log_existing, err);
        if (!st || db_bind_text(c, st, 1, ctx->directive_id, err) < 0 ||
            db_bind_text(c, st, 2, stream, err) < 0 || db_bind_int(c, st, 3, ctx->seq, err) < 0)
                return -1;
        int r = db_step(c, st, err, "read log chunk");
        if (r <= 0)
                return r < 0 ? -1 : err_setc(err, ERR_INTERNAL, "log chunk vanished");
        const void *old = sqlite3_column_blob(st, 0);
        size_t oldlen = (size_t)sqlite3_column_bytes(st, 0);
        ctx->result = oldlen == ctx->len && old && memcmp(old, ctx->bytes, oldlen) == 0
                      ? MS_LOG_DUPLICATE_SAME : MS_LOG_DUPLICATE_DIFFERENT;
        return 0;
}

int ms_log_chunk_insert(ms_store *s, const char *directive_id, ms_log_stream stream,
                        int64_t seq, const void *bytes, size_t len, bool truncated,
                        int64_t now, ms_log_insert_result *result, err_t *err)
{
        if (!ms_id_ok(directive_id))
                return ms_not_found(err, "directive", directive_id);
        if (!ms_log_stream_name(stream))
                return err_set(err, "stream must be stdout or stderr");
        if (seq < 0 || seq > INT32_MAX)
                return err_set(err, "seq %lld out of range 0-%d", (long long)seq, INT32_MAX);
        if (!bytes || len == 0)
                return err_set(err, "a log chunk must not be empty");
        insert_ctx ctx = { directive_id, stream, seq, bytes, len, truncated, ms_now(now),
                           MS_LOG_STORED };
        if (ms_tx(s, log_insert_tx, &ctx, err) < 0)
                return err_wrap(err, "directive %s %s chunk %lld", directive_id,
                                ms_log_stream_name(stream), (long long)seq);
        if (result)
                *result = ctx.result;
        return 0;
}

/* ?2 NULL = stdout and stderr (never egress); "stream DESC" puts stdout before stderr. */
static const char sql_log_list[] =
        "SELECT id, stream, seq, bytes, truncated, created_at FROM conduits_log_chunks "
        "WHERE directive_id = ?1 AND (?2 IS NULL AND stream IN ('stdout', 'stderr') "
        "OR stream = ?2) AND seq > ?3 "
        "ORDER BY seq, stream DESC LIMIT ?4";

int ms_log_chunk_list(ms_store *s, const char *directive_id, ms_log_stream stream,
                      int64_t after_seq, int limit, size_t max_bytes, ms_log_chunk_array *out,
                      err_t *err)
{
        memset(out, 0, sizeof(*out));
        if (limit < 1 || limit > MS_LIST_MAX)
                return err_set(err, "limit %d out of range 1-%d", limit, MS_LIST_MAX);
        if (stream != MS_STREAM_BOTH && !ms_log_stream_name(stream))
                return err_set(err, "stream must be stdout, stderr or both");
        if (!ms_id_ok(directive_id))
                return 0;
        if (max_bytes == 0)
                max_bytes = LOG_LIST_DEFAULT_MAX_BYTES;
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_log_list, err);
        if (!st || db_bind_text(c, st, 1, directive_id, err) < 0 ||
            db_bind_text(c, st, 2, ms_log_stream_name(stream), err) < 0 ||
            db_bind_int(c, st, 3, after_seq, err) < 0 || db_bind_int(c, st, 4, limit, err) < 0)
                return -1;
        size_t cap = 0, total = 0;
        int r;
        while ((r = db_step(c, st, err, "list log chunks")) > 0) {
                size_t len = (size_t)sqlite3_column_bytes(st, 3);
                /* the byte cap bounds memory; the first chunk always goes, or a reader could
                 * never get past a chunk larger than its cap */
                if (out->n > 0 && len > max_bytes - total)
                        break;
                if (ms_list_grow((void **)&out->items, out->n, &cap, sizeof(*out->items),
                                 err) < 0)
                        goto fail;
                ms_log_chunk *ch = &out->items[out->n];
                const char *sname = (const char *)sqlite3_column_text(st, 1);
                if (db_col_fixed(st, 0, ch->id, sizeof(ch->id), err) < 0 ||
                    db_col_time(st, 5, &ch->created_at, err) < 0)
                        goto fail;
                if (ms_log_stream_parse(sname, &ch->stream) < 0) {
                        err_setc(err, ERR_INTERNAL, "log chunk %s has an unknown stream", ch->id);
                        goto fail;
                }
                memcpy(ch->directive_id, directive_id, MS_ID_SIZE);
                ch->seq = sqlite3_column_int64(st, 2);
                ch->truncated = sqlite3_column_int(st, 4) != 0;
                ch->bytes = malloc(len ? len : 1);
                if (!ch->bytes) {
                        err_errno(err, ENOMEM, "read log chunk");
                        goto fail;
                }
                if (len)
                        memcpy(ch->bytes, sqlite3_column_blob(st, 3), len);
                ch->bytesize = len;
                out->n++;
                total += len > max_bytes - total ? max_bytes - total : len;
        }
        if (r < 0)
                goto fail;
        return 0;
fail:
        ms_log_chunk_array_clear(out);
        return -1;
}

static const char sql_log_delete_batch[] =
        "DELETE FROM conduits_log_chunks WHERE id IN (SELECT id FROM conduits_log_chunks "
        "WHERE created_at < ?1 ORDER BY created_at, id LIMIT ?2)";

int ms_log_chunk_delete_before(ms_store *s, int64_t cutoff, int batch_size, int max_batches,
                               int64_t *deleted, err_t *err)
{
        if (db_delete_batches(s, sql_log_delete_batch, cutoff, batch_size, max_batches,
                              deleted, err) < 0)
                return err_wrap(err, "log chunk retention");
        return 0;
}

static const char sql_log_stream_bytes[] =
        "SELECT coalesce(sum(bytesize), 0) FROM conduits_log_chunks "
        "WHERE directive_id = ?1 AND stream = ?2";

int ms_log_stream_bytes(ms_store *s, const char *directive_id, ms_log_stream stream,
                        int64_t *out, err_t *err)
{
        *out = 0;
        if (!ms_log_stream_name(stream))
                return err_set(err, "stream must be stdout, stderr or egress");
        if (!ms_id_ok(directive_id))
                return 0;
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_log_stream_bytes, err);
        if (!st || db_bind_text(c, st, 1, directive_id, err) < 0 ||
            db_bind_text(c, st, 2, ms_log_stream_name(stream), err) < 0)
                return -1;
        int r = db_step(c, st, err, "sum log chunk bytes");
        if (r < 0)
                return -1;
        if (r > 0)
                *out = sqlite3_column_int64(st, 0);
        return 0;
}
