/* store/store_facilities.c — persistent workspaces (spec §1.4) and their lock (§7.11): at most
 * one leased/running directive per facility, enforced by compare-and-set updates. */
#include "store/store_internal.h"

#include <string.h>

#include "core/cleanup.h"
#include "core/str.h"

void ms_facility_clear(ms_facility *f)
{
        FREE_AND_NULL(f->kind);
        FREE_AND_NULL(f->root_handle);
        FREE_AND_NULL(f->repo_url);
        json_decref(f->retention_policy);
        memset(f, 0, sizeof(*f));
}

void ms_facility_array_clear(ms_facility_array *l)
{
        for (size_t i = 0; i < l->n; i++)
                ms_facility_clear(&l->items[i]);
        FREE_AND_NULL(l->items);
        l->n = 0;
}

#define FACILITY_COLS "id, account_id, owner_id, territory_id, locked_by_directive_id, kind, " \
        "root_handle, repo_url, retention_policy, size_bytes, created_at, updated_at"

static int facility_read(sqlite3_stmt *st, ms_facility *f, err_t *err)
{
        memset(f, 0, sizeof(*f));
        if (db_col_fixed(st, 0, f->id, sizeof(f->id), err) < 0 ||
            db_col_fixed(st, 1, f->account_id, sizeof(f->account_id), err) < 0 ||
            db_col_fixed(st, 2, f->owner_id, sizeof(f->owner_id), err) < 0 ||
            db_col_fixed(st, 3, f->territory_id, sizeof(f->territory_id), err) < 0 ||
            db_col_fixed(st, 4, f->locked_by_directive_id, sizeof(f->locked_by_directive_id),
                         err) < 0 ||
            db_col_text(st, 5, &f->kind, err) < 0 ||
            db_col_text(st, 6, &f->root_handle, err) < 0 ||
            db_col_text(st, 7, &f->repo_url, err) < 0 ||
            db_col_json(st, 8, &f->retention_policy, err) < 0 ||
            db_col_time(st, 10, &f->created_at, err) < 0 ||
            db_col_time(st, 11, &f->updated_at, err) < 0) {
                ms_facility_clear(f);
                return -1;
        }
        f->size_bytes = sqlite3_column_int64(st, 9);
        return 0;
}

static const char sql_facility_insert[] =
        "INSERT INTO conduits_facilities (id, account_id, owner_id, territory_id, kind, "
        "root_handle, repo_url, retention_policy, created_at, updated_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)";

int ms_facility_create(ms_store *s, const ms_facility_new *in, int64_t now,
                       char id_out[MS_ID_SIZE], err_t *err)
{
        if (in->account_id && *in->account_id && !ms_id_ok(in->account_id))
                return ms_not_found(err, "account", in->account_id);
        if (!ms_id_ok(in->owner_id))
                return ms_not_found(err, "owner user", in->owner_id);
        if (!ms_id_ok(in->territory_id))
                return ms_not_found(err, "territory", in->territory_id);
        if (str_is_blank(in->kind))
                return err_set(err, "facility kind must not be blank");
        if (!in->retention_policy)
                return err_set(err, "facility retention_policy is required");
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        now = ms_now(now);
        char id[MS_ID_SIZE];
        if (ms_new_id(now, id, err) < 0)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_facility_insert, err);
        if (!st || db_bind_text(c, st, 1, id, err) < 0 ||
            db_bind_id(c, st, 2, in->account_id, err) < 0 ||
            db_bind_text(c, st, 3, in->owner_id, err) < 0 ||
            db_bind_text(c, st, 4, in->territory_id, err) < 0 ||
            db_bind_text(c, st, 5, in->kind, err) < 0 ||
            db_bind_text(c, st, 6, in->root_handle, err) < 0 ||
            db_bind_text(c, st, 7, in->repo_url, err) < 0 ||
            db_bind_json(c, st, 8, in->retention_policy, NULL, err) < 0 ||
            db_bind_time(c, st, 9, now, err) < 0 ||
            db_exec_stmt(c, st, err, "insert facility") < 0)
                return err_wrap(err, "create facility");
        if (id_out)
                memcpy(id_out, id, MS_ID_SIZE);
        return 0;
}

static const char sql_facility_get[] =
        "SELECT " FACILITY_COLS " FROM conduits_facilities "
        "WHERE id = ?1 AND (?2 IS NULL OR account_id = ?2)";

int ms_facility_get(ms_store *s, const char *account_id, const char *id, ms_facility *out,
                    err_t *err)
{
        memset(out, 0, sizeof(*out));
        if (!ms_id_ok(id) || (account_id && !ms_id_ok(account_id)))
                return ms_not_found(err, "facility", id);
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_facility_get, err);
        if (!st || db_bind_text(c, st, 1, id, err) < 0 ||
            db_bind_text(c, st, 2, account_id, err) < 0)
                return -1;
        int r = db_step(c, st, err, "read facility");
        if (r <= 0)
                return r < 0 ? -1 : ms_not_found(err, "facility", id);
        return facility_read(st, out, err);
}

static const char sql_facility_list[] =
        "SELECT " FACILITY_COLS " FROM conduits_facilities WHERE account_id = ?1 ORDER BY id";

int ms_facility_list(ms_store *s, const char *account_id, ms_facility_array *out, err_t *err)
{
        memset(out, 0, sizeof(*out));
        if (!ms_id_ok(account_id))
                return 0;
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_facility_list, err);
        if (!st || db_bind_text(c, st, 1, account_id, err) < 0)
                return -1;
        size_t cap = 0;
        int r;
        while ((r = db_step(c, st, err, "list facilities")) > 0) {
                if (ms_list_grow((void **)&out->items, out->n, &cap, sizeof(*out->items),
                                 err) < 0 ||
                    facility_read(st, &out->items[out->n], err) < 0) {
                        ms_facility_array_clear(out);
                        return -1;
                }
                out->n++;
        }
        if (r < 0)
                ms_facility_array_clear(out);
        return r;
}

/* §7.11 lock(F, D): one statement, so no transaction is needed. The no-op assignment for an
 * idempotent re-lock lets "changes() = 1" mean success in both cases. */
static const char sql_facility_lock[] =
        "UPDATE conduits_facilities SET locked_by_directive_id = ?2, updated_at = ?3 "
        "WHERE id = ?1 AND (locked_by_directive_id IS NULL OR locked_by_directive_id = ?2)";
static const char sql_facility_exists[] = "SELECT 1 FROM conduits_facilities WHERE id = ?1";

int ms_facility_lock(ms_store *s, const char *facility_id, const char *directive_id,
                     int64_t now, err_t *err)
{
        if (!ms_id_ok(facility_id))
                return ms_not_found(err, "facility", facility_id);
        if (!ms_id_ok(directive_id))
                return err_set(err, "facility lock needs a directive id");
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_facility_lock, err);
        if (!st || db_bind_text(c, st, 1, facility_id, err) < 0 ||
            db_bind_text(c, st, 2, directive_id, err) < 0 ||
            db_bind_time(c, st, 3, ms_now(now), err) < 0)
                return -1;
        int n = db_exec_stmt(c, st, err, "lock facility");
        if (n < 0)
                return -1;
        if (n == 1)
                return 0;
        int r = db_exists(c, sql_facility_exists, facility_id, err);
        if (r < 0)
                return -1;
        if (r == 0)
                return ms_not_found(err, "facility", facility_id);
        return err_setc(err, ERR_CONFLICT, "facility %s is locked by another directive",
                        facility_id);
}

/* §7.11 unlock(F, D): never clears another directive's lock. */
static const char sql_facility_unlock[] =
        "UPDATE conduits_facilities SET locked_by_directive_id = NULL, updated_at = ?3 "
        "WHERE id = ?1 AND locked_by_directive_id = ?2";

int ms_facility_unlock(ms_store *s, const char *facility_id, const char *directive_id,
                       int64_t now, bool *released, err_t *err)
{
        if (released)
                *released = false;
        if (!ms_id_ok(facility_id))
                return ms_not_found(err, "facility", facility_id);
        if (!ms_id_ok(directive_id))
                return 0;
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_facility_unlock, err);
        if (!st || db_bind_text(c, st, 1, facility_id, err) < 0 ||
            db_bind_text(c, st, 2, directive_id, err) < 0 ||
            db_bind_time(c, st, 3, ms_now(now), err) < 0)
                return -1;
        int n = db_exec_stmt(c, st, err, "unlock facility");
        if (n < 0)
                return -1;
        if (n == 0) {
                int r = db_exists(c, sql_facility_exists, facility_id, err);
                if (r <= 0)
                        return r < 0 ? -1 : ms_not_found(err, "facility", facility_id);
                return 0;
        }
        if (released)
                *released = true;
        return 0;
}
