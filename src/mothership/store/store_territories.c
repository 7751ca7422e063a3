/* store/store_territories.c — enrolled machines (spec §1.3) and their status machine (§2.2):
 * creation with activation, heartbeats, administrative fields and the stale-heartbeat job
 * (Appendix A recommendation). */
#include "store/store_internal.h"

#include <ctype.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/str.h"

void ms_territory_clear(ms_territory *t)
{
        FREE_AND_NULL(t->name);
        FREE_AND_NULL(t->kind);
        FREE_AND_NULL(t->platform);
        FREE_AND_NULL(t->display_name);
        FREE_AND_NULL(t->location);
        json_decref(t->tags);
        json_decref(t->capabilities);
        json_decref(t->labels);
        json_decref(t->capacity);
        json_decref(t->runtime_status);
        FREE_AND_NULL(t->nexus_version);
        FREE_AND_NULL(t->push_token);
        FREE_AND_NULL(t->push_platform);
        memset(t, 0, sizeof(*t));
}

void ms_territory_array_clear(ms_territory_array *l)
{
        for (size_t i = 0; i < l->n; i++)
                ms_territory_clear(&l->items[i]);
        FREE_AND_NULL(l->items);
        l->n = 0;
}

#define TERRITORY_COLS "id, account_id, name, status, kind, platform, display_name, location, " \
        "tags, capabilities, labels, capacity, runtime_status, nexus_version, " \
        "last_heartbeat_at, client_cert_fingerprint, websocket_connected_at, push_token, " \
        "push_platform, created_at, updated_at"

static int territory_read(sqlite3_stmt *st, ms_territory *t, err_t *err)
{
        memset(t, 0, sizeof(*t));
        const char *status = (const char *)sqlite3_column_text(st, 3);
        if (db_col_fixed(st, 0, t->id, sizeof(t->id), err) < 0 ||
            db_col_fixed(st, 1, t->account_id, sizeof(t->account_id), err) < 0 ||
            db_col_text(st, 2, &t->name, err) < 0)
                goto fail;
        if (ms_territory_status_parse(status, &t->status) < 0) {
                err_setc(err, ERR_INTERNAL, "territory %s has unknown status", t->id);
                goto fail;
        }
        if (db_col_text(st, 4, &t->kind, err) < 0 ||
            db_col_text(st, 5, &t->platform, err) < 0 ||
            db_col_text(st, 6, &t->display_name, err) < 0 ||
            db_col_text(st, 7, &t->location, err) < 0 ||
            db_col_json(st, 8, &t->tags, err) < 0 ||
            db_col_json(st, 9, &t->capabilities, err) < 0 ||
            db_col_json(st, 10, &t->labels, err) < 0 ||
            db_col_json(st, 11, &t->capacity, err) < 0 ||
            db_col_json(st, 12, &t->runtime_status, err) < 0 ||
            db_col_text(st, 13, &t->nexus_version, err) < 0 ||
            db_col_time(st, 14, &t->last_heartbeat_at, err) < 0 ||
            db_col_fixed(st, 15, t->client_cert_fingerprint, sizeof(t->client_cert_fingerprint),
                         err) < 0 ||
            db_col_time(st, 16, &t->websocket_connected_at, err) < 0 ||
            db_col_text(st, 17, &t->push_token, err) < 0 ||
            db_col_text(st, 18, &t->push_platform, err) < 0 ||
            db_col_time(st, 19, &t->created_at, err) < 0 ||
            db_col_time(st, 20, &t->updated_at, err) < 0)
                goto fail;
        return 0;
fail:
        ms_territory_clear(t);
        return -1;
}

/* Runs st (bound) and collects every row into out. */
static int territory_collect(ms_conn *c, sqlite3_stmt *st, ms_territory_array *out, err_t *err)
{
        size_t cap = 0;
        int r;
        while ((r = db_step(c, st, err, "list territories")) > 0) {
                if (ms_list_grow((void **)&out->items, out->n, &cap, sizeof(*out->items),
                                 err) < 0 ||
                    territory_read(st, &out->items[out->n], err) < 0) {
                        ms_territory_array_clear(out);
                        return -1;
                }
                out->n++;
        }
        if (r < 0)
                ms_territory_array_clear(out);
        return r;
}

/* Copies a 64-hex fingerprint in lower case; refuses anything else. */
static int fingerprint_norm(const char *fp, char out[MS_SHA256_HEX_SIZE])
{
        if (!fp || strlen(fp) != 64)
                return -1;
        for (size_t i = 0; i < 64; i++) {
                if (!isxdigit((unsigned char)fp[i]))
                        return -1;
                out[i] = (char)tolower((unsigned char)fp[i]);
        }
        out[64] = '\0';
        return 0;
}

static const char sql_territory_exists[] = "SELECT 1 FROM conduits_territories WHERE id = ?1";

/* 0 = guard did not hold on an existing row; ERR_NOT_FOUND if there is no row. */
static int territory_missing(ms_conn *c, const char *id, err_t *err)
{
        int r = db_exists(c, sql_territory_exists, id, err);
        if (r < 0)
                return -1;
        return r ? 0 : ms_not_found(err, "territory", id);
}

/* ---------------------------------------------------------------- create ------------- */

static const char sql_territory_insert[] =
        "INSERT INTO conduits_territories (id, account_id, name, status, kind, platform, "
        "display_name, labels, capacity, client_cert_fingerprint, created_at, updated_at) "
        "VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)";
static const char sql_territory_activate[] =
        "UPDATE conduits_territories SET status = 'online', updated_at = ?2 "
        "WHERE id = ?1 AND status = 'pending'";

typedef struct create_ctx {
        const ms_territory_new *in;
        const char *fp;
        int64_t now;
        char id[MS_ID_SIZE];
} create_ctx;

static int territory_create_tx(ms_store *s, void *p, err_t *err)
{
        create_ctx *ctx = p;
        const ms_territory_new *in = ctx->in;
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        {
                _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_territory_insert, err);
                if (!st || db_bind_text(c, st, 1, ctx->id, err) < 0 ||
                    db_bind_id(c, st, 2, in->account_id, err) < 0 ||
                    db_bind_text(c, st, 3, in->name, err) < 0 ||
                    db_bind_text(c, st, 4, in->kind ? in->kind : "server", err) < 0 ||
                    db_bind_text(c, st, 5, in->platform, err) < 0 ||
                    db_bind_text(c, st, 6, in->display_name, err) < 0 ||
                    db_bind_json(c, st, 7, in->labels, "{}", err) < 0 ||
                    db_bind_json(c, st, 8, in->capacity, "{}", err) < 0 ||
                    db_bind_text(c, st, 9, ctx->fp, err) < 0 ||
                    db_bind_time(c, st, 10, ctx->now, err) < 0 ||
                    db_exec_stmt(c, st, err, "insert territory") < 0)
                        return -1;
        }
        /* §2.2 activate: pending -> online in the same transaction */
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_territory_activate, err);
        if (!st || db_bind_text(c, st, 1, ctx->id, err) < 0 ||
            db_bind_time(c, st, 2, ctx->now, err) < 0)
                return -1;
        int n = db_exec_stmt(c, st, err, "activate territory");
        if (n < 0)
                return -1;
        if (n != 1)
                return err_setc(err, ERR_INTERNAL, "territory %s vanished before activation",
                                ctx->id);
        return 0;
}

int ms_territory_create(ms_store *s, const ms_territory_new *in, int64_t now,
                        char id_out[MS_ID_SIZE], err_t *err)
{
        if (str_is_blank(in->name))
                return err_set(err, "territory name must not be blank");
        if (in->account_id && *in->account_id && !ms_id_ok(in->account_id))
                return ms_not_found(err, "account", in->account_id);
        if (ms_json_expect(in->labels, JSON_OBJECT, "territory labels", err) < 0 ||
            ms_json_expect(in->capacity, JSON_OBJECT, "territory capacity", err) < 0)
                return -1;
        char fp[MS_SHA256_HEX_SIZE];
        if (in->client_cert_fingerprint && fingerprint_norm(in->client_cert_fingerprint, fp) < 0)
                return err_set(err, "client certificate fingerprint must be 64 hex digits");
        create_ctx ctx = { in, in->client_cert_fingerprint ? fp : NULL, ms_now(now), { 0 } };
        if (ms_new_id(ctx.now, ctx.id, err) < 0)
                return -1;
        if (ms_tx(s, territory_create_tx, &ctx, err) < 0)
                return err_wrap(err, "create territory \"%.64s\"", in->name);
        if (id_out)
                memcpy(id_out, ctx.id, MS_ID_SIZE);
        return 0;
}

/* ---------------------------------------------------------------- reads -------------- */

static const char sql_territory_get[] =
        "SELECT " TERRITORY_COLS " FROM conduits_territories WHERE id = ?1";
static const char sql_territory_by_fp[] =
        "SELECT " TERRITORY_COLS " FROM conduits_territories WHERE client_cert_fingerprint = ?1";

static int territory_get_one(ms_store *s, const char *sql, const char *key, const char *what,
                             ms_territory *out, err_t *err)
{
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql, err);
        if (!st || db_bind_text(c, st, 1, key, err) < 0)
                return -1;
        int r = db_step(c, st, err, "read territory");
        if (r <= 0)
                return r < 0 ? -1 : ms_not_found(err, what, key);
        return territory_read(st, out, err);
}

int ms_territory_get(ms_store *s, const char *id, ms_territory *out, err_t *err)
{
        memset(out, 0, sizeof(*out));
        if (!ms_id_ok(id))
                return ms_not_found(err, "territory", id);
        return territory_get_one(s, sql_territory_get, id, "territory", out, err);
}

int ms_territory_get_by_fingerprint(ms_store *s, const char *fp, ms_territory *out,
                                    err_t *err)
{
        memset(out, 0, sizeof(*out));
        char norm[MS_SHA256_HEX_SIZE];
        if (fingerprint_norm(fp, norm) < 0)
                return err_setc(err, ERR_NOT_FOUND, "no territory has that certificate");
        return territory_get_one(s, sql_territory_by_fp, norm, "territory with fingerprint",
                                 out, err);
}

static const char sql_territory_by_account[] =
        "SELECT " TERRITORY_COLS " FROM conduits_territories WHERE account_id = ?1 ORDER BY id";

int ms_territory_list_by_account(ms_store *s, const char *account_id, ms_territory_array *out,
                                 err_t *err)
{
        memset(out, 0, sizeof(*out));
        if (!ms_id_ok(account_id))
                return 0;
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_territory_by_account, err);
        if (!st || db_bind_text(c, st, 1, account_id, err) < 0)
                return -1;
        return territory_collect(c, st, out, err);
}

/* ---------------------------------------------------------------- updates ------------ */

static const char sql_territory_set_fp[] =
        "UPDATE conduits_territories SET client_cert_fingerprint = ?2, updated_at = ?3 "
        "WHERE id = ?1";

int ms_territory_set_fingerprint(ms_store *s, const char *id, const char *fp, int64_t now,
                                 err_t *err)
{
        if (!ms_id_ok(id))
                return ms_not_found(err, "territory", id);
        char norm[MS_SHA256_HEX_SIZE];
        if (fp && fingerprint_norm(fp, norm) < 0)
                return err_set(err, "client certificate fingerprint must be 64 hex digits");
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_territory_set_fp, err);
        if (!st || db_bind_text(c, st, 1, id, err) < 0 ||
            db_bind_text(c, st, 2, fp ? norm : NULL, err) < 0 ||
            db_bind_time(c, st, 3, ms_now(now), err) < 0)
                return -1;
        int n = db_exec_stmt(c, st, err, "store certificate fingerprint");
        if (n < 0)
                return err_wrap(err, "territory %s", id);
        return n == 0 ? ms_not_found(err, "territory", id) : 0;
}

/* §3.2.2: present fields replace; then go_online only from offline (§2.2). */
static const char sql_territory_heartbeat[] =
        "UPDATE conduits_territories SET last_heartbeat_at = ?2, updated_at = ?2, "
        "nexus_version = coalesce(?3, nexus_version), labels = coalesce(?4, labels), "
        "capacity = coalesce(?5, capacity), capabilities = coalesce(?6, capabilities), "
        "runtime_status = coalesce(?7, runtime_status), "
        "status = CASE WHEN status = 'offline' THEN 'online' ELSE status END "
        "WHERE id = ?1";

int ms_territory_record_heartbeat(ms_store *s, const char *id, const ms_territory_heartbeat *hb,
                                  int64_t now, ms_territory *out, err_t *err)
{
        if (out)
                memset(out, 0, sizeof(*out));
        if (!ms_id_ok(id))
                return ms_not_found(err, "territory", id);
        if (ms_json_expect(hb->labels, JSON_OBJECT, "labels", err) < 0 ||
            ms_json_expect(hb->capacity, JSON_OBJECT, "capacity", err) < 0 ||
            ms_json_expect(hb->capabilities, JSON_ARRAY, "capabilities", err) < 0 ||
            ms_json_expect(hb->runtime_status, JSON_OBJECT, "runtime_status", err) < 0)
                return -1;
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_territory_heartbeat, err);
        if (!st || db_bind_text(c, st, 1, id, err) < 0 ||
            db_bind_time(c, st, 2, ms_now(now), err) < 0 ||
            db_bind_text(c, st, 3, hb->nexus_version, err) < 0 ||
            db_bind_json(c, st, 4, hb->labels, NULL, err) < 0 ||
            db_bind_json(c, st, 5, hb->capacity, NULL, err) < 0 ||
            db_bind_json(c, st, 6, hb->capabilities, NULL, err) < 0 ||
            db_bind_json(c, st, 7, hb->runtime_status, NULL, err) < 0)
                return -1;
        int n = db_exec_stmt(c, st, err, "record heartbeat");
        if (n < 0)
                return err_wrap(err, "territory %s", id);
        if (n == 0)
                return ms_not_found(err, "territory", id);
        return out ? ms_territory_get(s, id, out, err) : 0;
}

static const char sql_territory_admin[] =
        "UPDATE conduits_territories SET "
        "location = CASE WHEN ?2 THEN ?3 ELSE location END, "
        "tags = CASE WHEN ?4 THEN coalesce(?5, '[]') ELSE tags END, "
        "capabilities = CASE WHEN ?6 THEN coalesce(?7, '[]') ELSE capabilities END, "
        "push_token = CASE WHEN ?8 THEN ?9 ELSE push_token END, "
        "push_platform = CASE WHEN ?8 THEN ?10 ELSE push_platform END, "
        "websocket_connected_at = CASE WHEN ?11 THEN ?12 ELSE websocket_connected_at END, "
        "updated_at = ?13 WHERE id = ?1";

int ms_territory_update_admin(ms_store *s, const char *id, const ms_territory_admin *in,
                              int64_t now, err_t *err)
{
        if (!ms_id_ok(id))
                return ms_not_found(err, "territory", id);
        if (ms_json_expect(in->tags, JSON_ARRAY, "tags", err) < 0 ||
            ms_json_expect(in->capabilities, JSON_ARRAY, "capabilities", err) < 0)
                return -1;
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        unsigned set = in->set;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_territory_admin, err);
        if (!st || db_bind_text(c, st, 1, id, err) < 0 ||
            db_bind_int(c, st, 2, !!(set & MS_TERRITORY_SET_LOCATION), err) < 0 ||
            db_bind_text(c, st, 3, in->location, err) < 0 ||
            db_bind_int(c, st, 4, !!(set & MS_TERRITORY_SET_TAGS), err) < 0 ||
            db_bind_json(c, st, 5, in->tags, NULL, err) < 0 ||
            db_bind_int(c, st, 6, !!(set & MS_TERRITORY_SET_CAPABILITIES), err) < 0 ||
            db_bind_json(c, st, 7, in->capabilities, NULL, err) < 0 ||
            db_bind_int(c, st, 8, !!(set & MS_TERRITORY_SET_PUSH), err) < 0 ||
            db_bind_text(c, st, 9, in->push_token, err) < 0 ||
            db_bind_text(c, st, 10, in->push_platform, err) < 0 ||
            db_bind_int(c, st, 11, !!(set & MS_TERRITORY_SET_WEBSOCKET), err) < 0 ||
            db_bind_time(c, st, 12, in->websocket_connected_at, err) < 0 ||
            db_bind_time(c, st, 13, ms_now(now), err) < 0)
                return -1;
        int n = db_exec_stmt(c, st, err, "update territory");
        if (n < 0)
                return err_wrap(err, "territory %s", id);
        return n == 0 ? ms_not_found(err, "territory", id) : 0;
}

static const char sql_territory_status[] =
        "SELECT status FROM conduits_territories WHERE id = ?1";
static const char sql_territory_set_status[] =
        "UPDATE conduits_territories SET status = ?3, updated_at = ?4 "
        "WHERE id = ?1 AND status = ?2";

typedef struct status_ctx {
        const char *id;
        ms_territory_status to;
        int64_t now;
} status_ctx;

static int territory_status_tx(ms_store *s, void *p, err_t *err)
{
        status_ctx *ctx = p;
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        ms_territory_status from;
        {
                _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_territory_status, err);
                if (!st || db_bind_text(c, st, 1, ctx->id, err) < 0)
                        return -1;
                int r = db_step(c, st, err, "read territory status");
                if (r <= 0)
                        return r < 0 ? -1 : ms_not_found(err, "territory", ctx->id);
                if (ms_territory_status_parse((const char *)sqlite3_column_text(st, 0), &from) < 0)
                        return err_setc(err, ERR_INTERNAL, "territory %s has unknown status",
                                        ctx->id);
        }
        if (!ms_territory_transition_allowed(from, ctx->to))
                return err_setc(err, ERR_CONFLICT, "territory %s is %s; it cannot become %s",
                                ctx->id, ms_territory_status_name(from),
                                ms_territory_status_name(ctx->to));
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_territory_set_status, err);
        if (!st || db_bind_text(c, st, 1, ctx->id, err) < 0 ||
            db_bind_text(c, st, 2, ms_territory_status_name(from), err) < 0 ||
            db_bind_text(c, st, 3, ms_territory_status_name(ctx->to), err) < 0 ||
            db_bind_time(c, st, 4, ctx->now, err) < 0)
                return -1;
        int n = db_exec_stmt(c, st, err, "set territory status");
        if (n < 0)
                return -1;
        return n == 1 ? 0 : err_setc(err, ERR_CONFLICT, "territory %s changed meanwhile", ctx->id);
}

int ms_territory_set_status(ms_store *s, const char *id, ms_territory_status to, int64_t now,
                            err_t *err)
{
        if (!ms_id_ok(id))
                return ms_not_found(err, "territory", id);
        if (!ms_territory_status_name(to))
                return err_set(err, "territory status %d is not a status", (int)to);
        status_ctx ctx = { id, to, ms_now(now) };
        return ms_tx(s, territory_status_tx, &ctx, err);
}

static const char sql_territory_stale[] =
        "SELECT " TERRITORY_COLS " FROM conduits_territories "
        "WHERE status = 'online' AND coalesce(last_heartbeat_at, created_at) < ?1 "
        "ORDER BY coalesce(last_heartbeat_at, created_at), id LIMIT ?2";

int ms_territory_list_stale(ms_store *s, int64_t cutoff, int limit, ms_territory_array *out,
                            err_t *err)
{
        memset(out, 0, sizeof(*out));
        if (limit < 1 || limit > MS_LIST_MAX)
                return err_set(err, "limit %d out of range 1-%d", limit, MS_LIST_MAX);
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_territory_stale, err);
        if (!st || db_bind_time(c, st, 1, cutoff, err) < 0 ||
            db_bind_int(c, st, 2, limit, err) < 0)
                return -1;
        return territory_collect(c, st, out, err);
}

static const char sql_territory_mark_offline[] =
        "UPDATE conduits_territories SET status = 'offline', updated_at = ?3 "
        "WHERE id = ?1 AND status = 'online' AND coalesce(last_heartbeat_at, created_at) < ?2";

int ms_territory_mark_offline(ms_store *s, const char *id, int64_t cutoff, int64_t now,
                              bool *changed, err_t *err)
{
        if (changed)
                *changed = false;
        if (!ms_id_ok(id))
                return ms_not_found(err, "territory", id);
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_territory_mark_offline, err);
        if (!st || db_bind_text(c, st, 1, id, err) < 0 || db_bind_time(c, st, 2, cutoff, err) < 0 ||
            db_bind_time(c, st, 3, ms_now(now), err) < 0)
                return -1;
        int n = db_exec_stmt(c, st, err, "mark territory offline");
        if (n < 0)
                return -1;
        if (n == 0)
                return territory_missing(c, id, err);
        if (changed)
                *changed = true;
        return 0;
}
