/* store/store_audit.c — the append-only audit trail (spec §1.9, §10): insert, filtered and
 * cursor-paginated reads (§10.2), and retention (§10.3). */
#include "store/store_internal.h"

#include <string.h>

#include "core/cleanup.h"
#include "core/str.h"

void ms_audit_event_clear(ms_audit_event *e)
{
        FREE_AND_NULL(e->event_type);
        FREE_AND_NULL(e->severity);
        json_decref(e->payload);
        json_decref(e->context);
        memset(e, 0, sizeof(*e));
}

void ms_audit_event_array_clear(ms_audit_event_array *l)
{
        for (size_t i = 0; i < l->n; i++)
                ms_audit_event_clear(&l->items[i]);
        FREE_AND_NULL(l->items);
        l->n = 0;
}

#define AUDIT_COLS "id, account_id, directive_id, command_id, actor_id, territory_id, " \
        "event_type, severity, payload, context, created_at, updated_at"

static int audit_read(sqlite3_stmt *st, ms_audit_event *e, err_t *err)
{
        memset(e, 0, sizeof(*e));
        if (db_col_fixed(st, 0, e->id, sizeof(e->id), err) < 0 ||
            db_col_fixed(st, 1, e->account_id, sizeof(e->account_id), err) < 0 ||
            db_col_fixed(st, 2, e->directive_id, sizeof(e->directive_id), err) < 0 ||
            db_col_fixed(st, 3, e->command_id, sizeof(e->command_id), err) < 0 ||
            db_col_fixed(st, 4, e->actor_id, sizeof(e->actor_id), err) < 0 ||
            db_col_fixed(st, 5, e->territory_id, sizeof(e->territory_id), err) < 0 ||
            db_col_text(st, 6, &e->event_type, err) < 0 ||
            db_col_text(st, 7, &e->severity, err) < 0 ||
            db_col_json(st, 8, &e->payload, err) < 0 ||
            db_col_json(st, 9, &e->context, err) < 0 ||
            db_col_time(st, 10, &e->created_at, err) < 0 ||
            db_col_time(st, 11, &e->updated_at, err) < 0) {
                ms_audit_event_clear(e);
                return -1;
        }
        return 0;
}

static const char sql_audit_insert[] =
        "INSERT INTO conduits_audit_events (id, account_id, directive_id, command_id, actor_id, "
        "territory_id, event_type, severity, payload, context, created_at, updated_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)";

/* An optional id argument: NULL/"" is none, anything else must be a UUID. */
static bool opt_id_ok(const char *id)
{
        return !id || !*id || ms_id_ok(id);
}

int ms_audit_event_insert(ms_store *s, const ms_audit_new *in, int64_t now,
                          char id_out[MS_ID_SIZE], err_t *err)
{
        if (!ms_id_ok(in->account_id))
                return ms_not_found(err, "account", in->account_id);
        if (str_is_blank(in->event_type))
                return err_set(err, "audit event type must not be blank");
        if (!opt_id_ok(in->directive_id) || !opt_id_ok(in->command_id) ||
            !opt_id_ok(in->actor_id) || !opt_id_ok(in->territory_id))
                return err_set(err, "audit event links must be UUIDs");
        if (ms_json_expect(in->payload, JSON_OBJECT, "audit payload", err) < 0 ||
            ms_json_expect(in->context, JSON_OBJECT, "audit context", err) < 0)
                return -1;
        /* territory: the explicit link, else payload.territory_id when it is an id */
        const char *territory = in->territory_id;
        if (!territory && in->payload) {
                const char *p = json_string_value(json_object_get(in->payload, "territory_id"));
                if (ms_id_ok(p))
                        territory = p;
        }
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        now = ms_now(now);
        char id[MS_ID_SIZE];
        if (ms_new_id(now, id, err) < 0)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_audit_insert, err);
        if (!st || db_bind_text(c, st, 1, id, err) < 0 ||
            db_bind_text(c, st, 2, in->account_id, err) < 0 ||
            db_bind_id(c, st, 3, in->directive_id, err) < 0 ||
            db_bind_id(c, st, 4, in->command_id, err) < 0 ||
            db_bind_id(c, st, 5, in->actor_id, err) < 0 ||
            db_bind_id(c, st, 6, territory, err) < 0 ||
            db_bind_text(c, st, 7, in->event_type, err) < 0 ||
            db_bind_text(c, st, 8, in->severity ? in->severity : "info", err) < 0 ||
            db_bind_json(c, st, 9, in->payload, "{}", err) < 0 ||
            db_bind_json(c, st, 10, in->context, "{}", err) < 0 ||
            db_bind_time(c, st, 11, now, err) < 0 ||
            db_exec_stmt(c, st, err, "insert audit event") < 0)
                return err_wrap(err, "audit event %.64s", in->event_type);
        if (id_out)
                memcpy(id_out, id, MS_ID_SIZE);
        return 0;
}

#define AUDIT_LIST_SQL(cmp, order) \
        "SELECT " AUDIT_COLS " FROM conduits_audit_events WHERE " \
        "(?1 IS NULL OR account_id = ?1) AND (?2 IS NULL OR event_type = ?2) " \
        "AND (?3 IS NULL OR severity = ?3) AND (?4 IS NULL OR directive_id = ?4) " \
        "AND (?5 IS NULL OR territory_id = ?5) AND (?6 IS NULL OR created_at >= ?6) " \
        "AND (?7 IS NULL OR created_at < ?7) AND (?8 IS NULL OR id " cmp " ?8) " \
        "ORDER BY id " order " LIMIT ?9"

static const char sql_audit_list_asc[] = AUDIT_LIST_SQL(">", "ASC");
static const char sql_audit_list_desc[] = AUDIT_LIST_SQL("<", "DESC");

int ms_audit_event_list(ms_store *s, const ms_audit_filter *f, ms_audit_event_array *out,
                        err_t *err)
{
        memset(out, 0, sizeof(*out));
        if (f->limit < 1 || f->limit > MS_LIST_MAX)
                return err_set(err, "limit %d out of range 1-%d", f->limit, MS_LIST_MAX);
        if (f->cursor && !ms_id_ok(f->cursor))
                return err_set(err, "cursor \"%.64s\" is not an audit event id", f->cursor);
        if ((f->account_id && !ms_id_ok(f->account_id)) ||
            (f->directive_id && !ms_id_ok(f->directive_id)) ||
            (f->territory_id && !ms_id_ok(f->territory_id)))
                return 0;
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st =
                db_prepare(c, f->newest_first ? sql_audit_list_desc : sql_audit_list_asc, err);
        if (!st || db_bind_text(c, st, 1, f->account_id, err) < 0 ||
            db_bind_text(c, st, 2, f->event_type, err) < 0 ||
            db_bind_text(c, st, 3, f->severity, err) < 0 ||
            db_bind_text(c, st, 4, f->directive_id, err) < 0 ||
            db_bind_text(c, st, 5, f->territory_id, err) < 0 ||
            db_bind_time(c, st, 6, f->since, err) < 0 ||
            db_bind_time(c, st, 7, f->until, err) < 0 ||
            db_bind_text(c, st, 8, f->cursor, err) < 0 ||
            db_bind_int(c, st, 9, f->limit, err) < 0)
                return -1;
        size_t cap = 0;
        int r;
        while ((r = db_step(c, st, err, "list audit events")) > 0) {
                if (ms_list_grow((void **)&out->items, out->n, &cap, sizeof(*out->items),
                                 err) < 0 ||
                    audit_read(st, &out->items[out->n], err) < 0) {
                        ms_audit_event_array_clear(out);
                        return -1;
                }
                out->n++;
        }
        if (r < 0)
                ms_audit_event_array_clear(out);
        return r;
}

static const char sql_audit_delete_batch[] =
        "DELETE FROM conduits_audit_events WHERE id IN (SELECT id FROM conduits_audit_events "
        "WHERE created_at < ?1 ORDER BY created_at, id LIMIT ?2)";

int ms_audit_event_delete_before(ms_store *s, int64_t cutoff, int batch_size, int max_batches,
                                 int64_t *deleted, err_t *err)
{
        if (db_delete_batches(s, sql_audit_delete_batch, cutoff, batch_size, max_batches,
                              deleted, err) < 0)
                return err_wrap(err, "audit event retention");
        return 0;
}
