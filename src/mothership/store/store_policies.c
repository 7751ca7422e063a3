/* store/store_policies.c — policy records (spec §1.7): CRUD for the user API (§3.3.1) and the
 * applicable-policy query of the hierarchical merge (§6.5). Validation of the JSON sections
 * (§6.1) is the domain's; the schema only insists that each is a JSON object. */
#include "store/store_internal.h"

#include <string.h>

#include "core/cleanup.h"
#include "core/str.h"

void ms_policy_clear(ms_policy *p)
{
        FREE_AND_NULL(p->scope_type);
        FREE_AND_NULL(p->name);
        json_decref(p->fs);
        json_decref(p->net);
        json_decref(p->secrets);
        json_decref(p->sandbox_profile_rules);
        json_decref(p->approval);
        json_decref(p->device);
        memset(p, 0, sizeof(*p));
}

void ms_policy_array_clear(ms_policy_array *l)
{
        for (size_t i = 0; i < l->n; i++)
                ms_policy_clear(&l->items[i]);
        FREE_AND_NULL(l->items);
        l->n = 0;
}

#define POLICY_COLS "id, account_id, scope_type, scope_id, priority, name, fs, net, secrets, " \
        "sandbox_profile_rules, approval, device, active, created_at, updated_at"

static int policy_read(sqlite3_stmt *st, ms_policy *p, err_t *err)
{
        memset(p, 0, sizeof(*p));
        if (db_col_fixed(st, 0, p->id, sizeof(p->id), err) < 0 ||
            db_col_fixed(st, 1, p->account_id, sizeof(p->account_id), err) < 0 ||
            db_col_text(st, 2, &p->scope_type, err) < 0 ||
            db_col_fixed(st, 3, p->scope_id, sizeof(p->scope_id), err) < 0 ||
            db_col_text(st, 5, &p->name, err) < 0 ||
            db_col_json(st, 6, &p->fs, err) < 0 ||
            db_col_json(st, 7, &p->net, err) < 0 ||
            db_col_json(st, 8, &p->secrets, err) < 0 ||
            db_col_json(st, 9, &p->sandbox_profile_rules, err) < 0 ||
            db_col_json(st, 10, &p->approval, err) < 0 ||
            db_col_json(st, 11, &p->device, err) < 0 ||
            db_col_time(st, 13, &p->created_at, err) < 0 ||
            db_col_time(st, 14, &p->updated_at, err) < 0) {
                ms_policy_clear(p);
                return -1;
        }
        p->priority = sqlite3_column_int64(st, 4);
        p->active = sqlite3_column_int(st, 12) != 0;
        return 0;
}

static int policy_collect(ms_conn *c, sqlite3_stmt *st, ms_policy_array *out, err_t *err)
{
        size_t cap = 0;
        int r;
        while ((r = db_step(c, st, err, "list policies")) > 0) {
                if (ms_list_grow((void **)&out->items, out->n, &cap, sizeof(*out->items),
                                 err) < 0 ||
                    policy_read(st, &out->items[out->n], err) < 0) {
                        ms_policy_array_clear(out);
                        return -1;
                }
                out->n++;
        }
        if (r < 0)
                ms_policy_array_clear(out);
        return r;
}

static int policy_check(const ms_policy_fields *p, err_t *err)
{
        if (str_is_blank(p->name))
                return err_set(err, "policy name must not be blank");
        if (p->scope_id && *p->scope_id && !ms_id_ok(p->scope_id))
                return err_set(err, "policy scope_id must be a UUID");
        if (ms_json_expect(p->fs, JSON_OBJECT, "fs", err) < 0 ||
            ms_json_expect(p->net, JSON_OBJECT, "net", err) < 0 ||
            ms_json_expect(p->secrets, JSON_OBJECT, "secrets", err) < 0 ||
            ms_json_expect(p->sandbox_profile_rules, JSON_OBJECT, "sandbox_profile_rules",
                           err) < 0 ||
            ms_json_expect(p->approval, JSON_OBJECT, "approval", err) < 0 ||
            ms_json_expect(p->device, JSON_OBJECT, "device", err) < 0)
                return -1;
        return 0;
}

/* Binds the 11 mutable fields at ?b..?b+10 (shared by insert and update). */
static int policy_bind(ms_conn *c, sqlite3_stmt *st, int b, const ms_policy_fields *p,
                       err_t *err)
{
        if (db_bind_text(c, st, b, p->scope_type, err) < 0 ||
            db_bind_id(c, st, b + 1, p->scope_id, err) < 0 ||
            db_bind_int(c, st, b + 2, p->priority, err) < 0 ||
            db_bind_text(c, st, b + 3, p->name, err) < 0 ||
            db_bind_json(c, st, b + 4, p->fs, "{}", err) < 0 ||
            db_bind_json(c, st, b + 5, p->net, "{}", err) < 0 ||
            db_bind_json(c, st, b + 6, p->secrets, "{}", err) < 0 ||
            db_bind_json(c, st, b + 7, p->sandbox_profile_rules, "{}", err) < 0 ||
            db_bind_json(c, st, b + 8, p->approval, "{}", err) < 0 ||
            db_bind_json(c, st, b + 9, p->device, "{}", err) < 0 ||
            db_bind_int(c, st, b + 10, !p->inactive, err) < 0)
                return -1;
        return 0;
}

static const char sql_policy_insert[] =
        "INSERT INTO conduits_policies (id, account_id, scope_type, scope_id, priority, name, "
        "fs, net, secrets, sandbox_profile_rules, approval, device, active, created_at, "
        "updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14)";

int ms_policy_create(ms_store *s, const ms_policy_fields *p, int64_t now,
                     char id_out[MS_ID_SIZE], err_t *err)
{
        if (p->account_id && *p->account_id && !ms_id_ok(p->account_id))
                return ms_not_found(err, "account", p->account_id);
        if (policy_check(p, err) < 0)
                return -1;
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        now = ms_now(now);
        char id[MS_ID_SIZE];
        if (ms_new_id(now, id, err) < 0)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_policy_insert, err);
        if (!st || db_bind_text(c, st, 1, id, err) < 0 ||
            db_bind_id(c, st, 2, p->account_id, err) < 0 || policy_bind(c, st, 3, p, err) < 0 ||
            db_bind_time(c, st, 14, now, err) < 0 ||
            db_exec_stmt(c, st, err, "insert policy") < 0)
                return err_wrap(err, "create policy \"%.64s\"", p->name);
        if (id_out)
                memcpy(id_out, id, MS_ID_SIZE);
        return 0;
}

static const char sql_policy_get[] =
        "SELECT " POLICY_COLS " FROM conduits_policies "
        "WHERE id = ?1 AND (?2 IS NULL OR account_id = ?2)";

int ms_policy_get(ms_store *s, const char *account_id, const char *id, ms_policy *out,
                  err_t *err)
{
        memset(out, 0, sizeof(*out));
        if (!ms_id_ok(id) || (account_id && !ms_id_ok(account_id)))
                return ms_not_found(err, "policy", id);
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_policy_get, err);
        if (!st || db_bind_text(c, st, 1, id, err) < 0 ||
            db_bind_text(c, st, 2, account_id, err) < 0)
                return -1;
        int r = db_step(c, st, err, "read policy");
        if (r <= 0)
                return r < 0 ? -1 : ms_not_found(err, "policy", id);
        return policy_read(st, out, err);
}

static const char sql_policy_update[] =
        "UPDATE conduits_policies SET scope_type = ?2, scope_id = ?3, priority = ?4, name = ?5, "
        "fs = ?6, net = ?7, secrets = ?8, sandbox_profile_rules = ?9, approval = ?10, "
        "device = ?11, active = ?12, updated_at = ?13 WHERE id = ?1";

int ms_policy_update(ms_store *s, const char *id, const ms_policy_fields *p, int64_t now,
                     err_t *err)
{
        if (!ms_id_ok(id))
                return ms_not_found(err, "policy", id);
        if (policy_check(p, err) < 0)
                return -1;
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_policy_update, err);
        if (!st || db_bind_text(c, st, 1, id, err) < 0 || policy_bind(c, st, 2, p, err) < 0 ||
            db_bind_time(c, st, 13, ms_now(now), err) < 0)
                return -1;
        int n = db_exec_stmt(c, st, err, "update policy");
        if (n < 0)
                return err_wrap(err, "policy %s", id);
        return n == 0 ? ms_not_found(err, "policy", id) : 0;
}

static const char sql_policy_active[] =
        "UPDATE conduits_policies SET active = ?2, updated_at = ?3 WHERE id = ?1";

int ms_policy_set_active(ms_store *s, const char *id, bool active, int64_t now, err_t *err)
{
        if (!ms_id_ok(id))
                return ms_not_found(err, "policy", id);
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_policy_active, err);
        if (!st || db_bind_text(c, st, 1, id, err) < 0 || db_bind_int(c, st, 2, active, err) < 0 ||
            db_bind_time(c, st, 3, ms_now(now), err) < 0)
                return -1;
        int n = db_exec_stmt(c, st, err, "set policy active flag");
        if (n < 0)
                return -1;
        return n == 0 ? ms_not_found(err, "policy", id) : 0;
}

/* "account_id IS ?1" also matches the global policies when ?1 is NULL. */
static const char sql_policy_list[] =
        "SELECT " POLICY_COLS " FROM conduits_policies WHERE account_id IS ?1 "
        "AND (?2 IS NULL OR scope_type = ?2) AND (?3 IS NULL OR scope_id = ?3) "
        "AND (?4 OR active) ORDER BY priority, created_at, id";

int ms_policy_list(ms_store *s, const ms_policy_filter *f, ms_policy_array *out, err_t *err)
{
        memset(out, 0, sizeof(*out));
        if (f->account_id && !ms_id_ok(f->account_id))
                return 0;
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_policy_list, err);
        if (!st || db_bind_text(c, st, 1, f->account_id, err) < 0 ||
            db_bind_text(c, st, 2, f->scope_type, err) < 0 ||
            db_bind_text(c, st, 3, f->scope_id, err) < 0 ||
            db_bind_int(c, st, 4, f->include_inactive, err) < 0)
                return -1;
        return policy_collect(c, st, out, err);
}

/* §6.5: active, of no account or the directive's, scoped globally or to the directive's
 * account, requester or facility; priority ascending, ties in creation order. */
static const char sql_policy_applicable[] =
        "SELECT " POLICY_COLS " FROM conduits_policies "
        "WHERE active AND (account_id IS NULL OR account_id = ?1) AND ("
        "scope_type IS NULL "
        "OR (scope_type = 'Account' AND scope_id = ?1) "
        "OR (scope_type = 'User' AND scope_id = ?2) "
        "OR (scope_type = 'Conduits::Facility' AND scope_id = ?3)) "
        "ORDER BY priority, created_at, id";

int ms_policy_list_applicable(ms_store *s, const char *account_id, const char *user_id,
                              const char *facility_id, ms_policy_array *out, err_t *err)
{
        memset(out, 0, sizeof(*out));
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_policy_applicable, err);
        if (!st || db_bind_id(c, st, 1, ms_id_ok(account_id) ? account_id : NULL, err) < 0 ||
            db_bind_id(c, st, 2, ms_id_ok(user_id) ? user_id : NULL, err) < 0 ||
            db_bind_id(c, st, 3, ms_id_ok(facility_id) ? facility_id : NULL, err) < 0)
                return -1;
        return policy_collect(c, st, out, err);
}
