/* store/store_directives.c — directives (spec §1.5) and the guarded primitives the domain
 * layer builds the directive state machine (§2.1), leases (§7) and reports (§3.2.4-§3.2.7)
 * on. Every state change is one "UPDATE ... WHERE id = ? AND state = ?": under concurrency
 * exactly one caller sees its guard hold; the others see changed = false. */
#include "store/store_internal.h"

#include <string.h>

#include "core/cleanup.h"
#include "core/str.h"

void ms_directive_clear(ms_directive *d)
{
        FREE_AND_NULL(d->sandbox_profile);
        FREE_AND_NULL(d->command);
        FREE_AND_NULL(d->shell);
        FREE_AND_NULL(d->cwd);
        json_decref(d->limits);
        json_decref(d->requested_capabilities);
        json_decref(d->effective_capabilities);
        json_decref(d->policy_snapshot);
        json_decref(d->env_allowlist);
        json_decref(d->env_refs);
        FREE_AND_NULL(d->runtime_ref);
        json_decref(d->egress_proxy_policy_snapshot);
        FREE_AND_NULL(d->finished_status);
        FREE_AND_NULL(d->result_hash);
        FREE_AND_NULL(d->snapshot_before);
        FREE_AND_NULL(d->snapshot_after);
        json_decref(d->artifacts_manifest);
        FREE_AND_NULL(d->nexus_version);
        FREE_AND_NULL(d->sandbox_version);
        FREE_AND_NULL(d->decision_reason);
        memset(d, 0, sizeof(*d));
}

void ms_directive_array_clear(ms_directive_array *l)
{
        for (size_t i = 0; i < l->n; i++)
                ms_directive_clear(&l->items[i]);
        FREE_AND_NULL(l->items);
        l->n = 0;
}

/* Column order of every SELECT (directive_read). */
#define DIRECTIVE_COLS "id, account_id, facility_id, territory_id, requested_by_user_id, " \
        "approved_by_user_id, state, sandbox_profile, command, shell, cwd, timeout_seconds, " \
        "limits, requested_capabilities, effective_capabilities, policy_snapshot, " \
        "env_allowlist, env_refs, runtime_ref, egress_proxy_policy_snapshot, exit_code, " \
        "finished_status, stdout_truncated, stderr_truncated, diff_truncated, stdout_bytes, " \
        "stderr_bytes, result_hash, snapshot_before, snapshot_after, artifacts_manifest, " \
        "nexus_version, sandbox_version, lease_expires_at, last_heartbeat_at, " \
        "cancel_requested_at, finished_at, created_at, updated_at, rejected_by_user_id, " \
        "decision_reason, decided_at, started_at"

static int directive_read(sqlite3_stmt *st, ms_directive *d, err_t *err)
{
        memset(d, 0, sizeof(*d));
        if (db_col_fixed(st, 0, d->id, sizeof(d->id), err) < 0 ||
            db_col_fixed(st, 1, d->account_id, sizeof(d->account_id), err) < 0 ||
            db_col_fixed(st, 2, d->facility_id, sizeof(d->facility_id), err) < 0 ||
            db_col_fixed(st, 3, d->territory_id, sizeof(d->territory_id), err) < 0 ||
            db_col_fixed(st, 4, d->requested_by_user_id, sizeof(d->requested_by_user_id),
                         err) < 0 ||
            db_col_fixed(st, 5, d->approved_by_user_id, sizeof(d->approved_by_user_id), err) < 0)
                goto fail;
        if (ms_directive_state_parse((const char *)sqlite3_column_text(st, 6), &d->state) < 0) {
                err_setc(err, ERR_INTERNAL, "directive %s has an unknown state", d->id);
                goto fail;
        }
        if (db_col_text(st, 7, &d->sandbox_profile, err) < 0 ||
            db_col_text(st, 8, &d->command, err) < 0 ||
            db_col_text(st, 9, &d->shell, err) < 0 ||
            db_col_text(st, 10, &d->cwd, err) < 0 ||
            db_col_json(st, 12, &d->limits, err) < 0 ||
            db_col_json(st, 13, &d->requested_capabilities, err) < 0 ||
            db_col_json(st, 14, &d->effective_capabilities, err) < 0 ||
            db_col_json(st, 15, &d->policy_snapshot, err) < 0 ||
            db_col_json(st, 16, &d->env_allowlist, err) < 0 ||
            db_col_json(st, 17, &d->env_refs, err) < 0 ||
            db_col_text(st, 18, &d->runtime_ref, err) < 0 ||
            db_col_json(st, 19, &d->egress_proxy_policy_snapshot, err) < 0 ||
            db_col_text(st, 21, &d->finished_status, err) < 0 ||
            db_col_text(st, 27, &d->result_hash, err) < 0 ||
            db_col_text(st, 28, &d->snapshot_before, err) < 0 ||
            db_col_text(st, 29, &d->snapshot_after, err) < 0 ||
            db_col_json(st, 30, &d->artifacts_manifest, err) < 0 ||
            db_col_text(st, 31, &d->nexus_version, err) < 0 ||
            db_col_text(st, 32, &d->sandbox_version, err) < 0 ||
            db_col_time(st, 33, &d->lease_expires_at, err) < 0 ||
            db_col_time(st, 34, &d->last_heartbeat_at, err) < 0 ||
            db_col_time(st, 35, &d->cancel_requested_at, err) < 0 ||
            db_col_time(st, 36, &d->finished_at, err) < 0 ||
            db_col_time(st, 37, &d->created_at, err) < 0 ||
            db_col_time(st, 38, &d->updated_at, err) < 0 ||
            db_col_fixed(st, 39, d->rejected_by_user_id, sizeof(d->rejected_by_user_id),
                         err) < 0 ||
            db_col_text(st, 40, &d->decision_reason, err) < 0 ||
            db_col_time(st, 41, &d->decided_at, err) < 0 ||
            db_col_time(st, 42, &d->started_at, err) < 0)
                goto fail;
        d->timeout_seconds = sqlite3_column_int64(st, 11);
        d->has_exit_code = sqlite3_column_type(st, 20) != SQLITE_NULL;
        d->exit_code = sqlite3_column_int64(st, 20);
        d->stdout_truncated = sqlite3_column_int(st, 22) != 0;
        d->stderr_truncated = sqlite3_column_int(st, 23) != 0;
        d->diff_truncated = sqlite3_column_int(st, 24) != 0;
        d->stdout_bytes = sqlite3_column_int64(st, 25);
        d->stderr_bytes = sqlite3_column_int64(st, 26);
        return 0;
fail:
        ms_directive_clear(d);
        return -1;
}

static int directive_collect(ms_conn *c, sqlite3_stmt *st, ms_directive_array *out, err_t *err)
{
        size_t cap = 0;
        int r;
        while ((r = db_step(c, st, err, "list directives")) > 0) {
                if (ms_list_grow((void **)&out->items, out->n, &cap, sizeof(*out->items),
                                 err) < 0 ||
                    directive_read(st, &out->items[out->n], err) < 0) {
                        ms_directive_array_clear(out);
                        return -1;
                }
                out->n++;
        }
        if (r < 0)
                ms_directive_array_clear(out);
        return r;
}

static const char sql_directive_exists[] = "SELECT 1 FROM conduits_directives WHERE id = ?1";

/* After a guarded update changed nothing: 0 if the row exists, else ERR_NOT_FOUND. */
static int directive_missing(ms_conn *c, const char *id, err_t *err)
{
        int r = db_exists(c, sql_directive_exists, id, err);
        if (r < 0)
                return -1;
        return r ? 0 : ms_not_found(err, "directive", id);
}

/* Finishes a guarded single-statement update: sets *changed, maps "no row" to not found. */
static int guarded_update(ms_conn *c, sqlite3_stmt *st, const char *id, bool *changed,
                          err_t *err, const char *what)
{
        int n = db_exec_stmt(c, st, err, what);
        if (n < 0)
                return err_wrap(err, "directive %s", id);
        if (n == 0)
                return directive_missing(c, id, err);
        if (changed)
                *changed = true;
        return 0;
}

/* ---------------------------------------------------------------- insert / read ------ */

/* Only the creation columns; the rest take their schema defaults (§1.5). */
static const char sql_directive_insert[] =
        "INSERT INTO conduits_directives (id, account_id, facility_id, requested_by_user_id, "
        "approved_by_user_id, state, sandbox_profile, command, shell, cwd, timeout_seconds, "
        "limits, requested_capabilities, effective_capabilities, policy_snapshot, env_allowlist, "
        "env_refs, runtime_ref, egress_proxy_policy_snapshot, artifacts_manifest, created_at, "
        "updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, "
        "?16, ?17, ?18, ?19, ?20, ?21, ?21)";

int ms_directive_insert(ms_store *s, const ms_directive_new *d, int64_t now,
                        char id_out[MS_ID_SIZE], err_t *err)
{
        if (d->state != MS_DIRECTIVE_QUEUED && d->state != MS_DIRECTIVE_AWAITING_APPROVAL)
                return err_set(err, "a new directive must be queued or awaiting_approval, not %s",
                               ms_directive_state_name(d->state) ? ms_directive_state_name(d->state)
                                                                 : "an unknown state");
        if (str_is_blank(d->command))
                return err_set(err, "directive command must not be blank");
        if (!ms_id_ok(d->account_id))
                return ms_not_found(err, "account", d->account_id);
        if (!ms_id_ok(d->facility_id))
                return ms_not_found(err, "facility", d->facility_id);
        if (!ms_id_ok(d->requested_by_user_id))
                return ms_not_found(err, "user", d->requested_by_user_id);
        if (d->approved_by_user_id && *d->approved_by_user_id &&
            !ms_id_ok(d->approved_by_user_id))
                return ms_not_found(err, "user", d->approved_by_user_id);
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        now = ms_now(now);
        char id[MS_ID_SIZE];
        if (ms_new_id(now, id, err) < 0)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_directive_insert, err);
        if (!st || db_bind_text(c, st, 1, id, err) < 0 ||
            db_bind_text(c, st, 2, d->account_id, err) < 0 ||
            db_bind_text(c, st, 3, d->facility_id, err) < 0 ||
            db_bind_text(c, st, 4, d->requested_by_user_id, err) < 0 ||
            db_bind_id(c, st, 5, d->approved_by_user_id, err) < 0 ||
            db_bind_text(c, st, 6, ms_directive_state_name(d->state), err) < 0 ||
            db_bind_text(c, st, 7, d->sandbox_profile ? d->sandbox_profile : "untrusted",
                         err) < 0 ||
            db_bind_text(c, st, 8, d->command, err) < 0 ||
            db_bind_text(c, st, 9, d->shell, err) < 0 ||
            db_bind_text(c, st, 10, d->cwd, err) < 0 ||
            db_bind_int(c, st, 11, d->timeout_seconds, err) < 0 ||
            db_bind_json(c, st, 12, d->limits, "{}", err) < 0 ||
            db_bind_json(c, st, 13, d->requested_capabilities, "{}", err) < 0 ||
            db_bind_json(c, st, 14, d->effective_capabilities, "{}", err) < 0 ||
            db_bind_json(c, st, 15, d->policy_snapshot, NULL, err) < 0 ||
            db_bind_json(c, st, 16, d->env_allowlist, "[]", err) < 0 ||
            db_bind_json(c, st, 17, d->env_refs, "[]", err) < 0 ||
            db_bind_text(c, st, 18, d->runtime_ref, err) < 0 ||
            db_bind_json(c, st, 19, d->egress_proxy_policy_snapshot, NULL, err) < 0 ||
            db_bind_json(c, st, 20, d->artifacts_manifest, "{}", err) < 0 ||
            db_bind_time(c, st, 21, now, err) < 0 ||
            db_exec_stmt(c, st, err, "insert directive") < 0)
                return err_wrap(err, "create directive");
        if (id_out)
                memcpy(id_out, id, MS_ID_SIZE);
        return 0;
}

static const char sql_directive_get[] =
        "SELECT " DIRECTIVE_COLS " FROM conduits_directives WHERE id = ?1";
static const char sql_directive_get_scoped[] =
        "SELECT " DIRECTIVE_COLS " FROM conduits_directives "
        "WHERE id = ?1 AND account_id = ?2 AND facility_id = ?3";

int ms_directive_get(ms_store *s, const char *id, ms_directive *out, err_t *err)
{
        return ms_directive_get_scoped(s, NULL, NULL, id, out, err);
}

int ms_directive_get_scoped(ms_store *s, const char *account_id, const char *facility_id,
                            const char *id, ms_directive *out, err_t *err)
{
        memset(out, 0, sizeof(*out));
        bool scoped = account_id || facility_id;
        if (!ms_id_ok(id) || (scoped && (!ms_id_ok(account_id) || !ms_id_ok(facility_id))))
                return ms_not_found(err, "directive", id);
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st =
                db_prepare(c, scoped ? sql_directive_get_scoped : sql_directive_get, err);
        if (!st || db_bind_text(c, st, 1, id, err) < 0)
                return -1;
        if (scoped && (db_bind_text(c, st, 2, account_id, err) < 0 ||
                       db_bind_text(c, st, 3, facility_id, err) < 0))
                return -1;
        int r = db_step(c, st, err, "read directive");
        if (r <= 0)
                return r < 0 ? -1 : ms_not_found(err, "directive", id);
        return directive_read(st, out, err);
}

/* The leading term picks the index (facility, account, or the primary key order). */
#define DIRECTIVE_LIST_SQL(lead, cmp, order) \
        "SELECT " DIRECTIVE_COLS " FROM conduits_directives WHERE " lead \
        " AND (?1 IS NULL OR account_id = ?1) AND (?2 IS NULL OR facility_id = ?2)" \
        " AND (?3 IS NULL OR territory_id = ?3) AND (?4 IS NULL OR state = ?4)" \
        " AND (?5 IS NULL OR id " cmp " ?5) ORDER BY id " order " LIMIT ?6"

static const char *const sql_directive_list[3][2] = {
        { DIRECTIVE_LIST_SQL("facility_id = ?2", ">", "ASC"),
          DIRECTIVE_LIST_SQL("facility_id = ?2", "<", "DESC") },
        { DIRECTIVE_LIST_SQL("account_id = ?1", ">", "ASC"),
          DIRECTIVE_LIST_SQL("account_id = ?1", "<", "DESC") },
        { DIRECTIVE_LIST_SQL("1", ">", "ASC"),
          DIRECTIVE_LIST_SQL("1", "<", "DESC") },
};

int ms_directive_list(ms_store *s, const ms_directive_filter *f, ms_directive_array *out,
                      err_t *err)
{
        memset(out, 0, sizeof(*out));
        if (f->limit < 1 || f->limit > MS_LIST_MAX)
                return err_set(err, "limit %d out of range 1-%d", f->limit, MS_LIST_MAX);
        if (f->has_state && !ms_directive_state_name(f->state))
                return err_set(err, "directive state filter %d is not a state", (int)f->state);
        if (f->cursor && !ms_id_ok(f->cursor))
                return err_set(err, "cursor \"%.64s\" is not a directive id", f->cursor);
        /* an id filter that cannot match anything yields an empty page, as for unknown ids */
        if ((f->account_id && !ms_id_ok(f->account_id)) ||
            (f->facility_id && !ms_id_ok(f->facility_id)) ||
            (f->territory_id && !ms_id_ok(f->territory_id)))
                return 0;
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        int lead = f->facility_id ? 0 : f->account_id ? 1 : 2;
        _cleanup_stmt_ sqlite3_stmt *st =
                db_prepare(c, sql_directive_list[lead][f->newest_first ? 1 : 0], err);
        if (!st || db_bind_text(c, st, 1, f->account_id, err) < 0 ||
            db_bind_text(c, st, 2, f->facility_id, err) < 0 ||
            db_bind_text(c, st, 3, f->territory_id, err) < 0 ||
            db_bind_text(c, st, 4, f->has_state ? ms_directive_state_name(f->state) : NULL,
                         err) < 0 ||
            db_bind_text(c, st, 5, f->cursor, err) < 0 ||
            db_bind_int(c, st, 6, f->limit, err) < 0)
                return -1;
        return directive_collect(c, st, out, err);
}

/* §7.4 step 1. SQLite has no SKIP LOCKED: the caller's write transaction (BEGIN IMMEDIATE)
 * already excludes every other claimer until it commits. */
static const char sql_directive_claimable[] =
        "SELECT " DIRECTIVE_COLS " FROM conduits_directives "
        "WHERE state = 'queued' AND account_id = ?1 "
        "AND sandbox_profile IN (SELECT value FROM json_each(?2)) "
        "ORDER BY created_at, id LIMIT ?3";

int ms_directive_list_claimable(ms_store *s, const char *account_id,
                                const char *const *profiles, size_t nprofiles, int limit,
                                ms_directive_array *out, err_t *err)
{
        memset(out, 0, sizeof(*out));
        if (limit < 1 || limit > MS_LIST_MAX)
                return err_set(err, "limit %d out of range 1-%d", limit, MS_LIST_MAX);
        if (!ms_id_ok(account_id) || nprofiles == 0)
                return 0;
        json_t *arr = json_array();
        if (!arr)
                return err_errno(err, ENOMEM, "list claimable directives");
        for (size_t i = 0; i < nprofiles; i++) {
                if (profiles[i] && json_array_append_new(arr, json_string(profiles[i])) < 0) {
                        json_decref(arr);
                        return err_set(err, "sandbox profile %zu is not valid UTF-8", i);
                }
        }
        ms_conn *c = ms_conn_get(s, err);
        if (!c) {
                json_decref(arr);
                return -1;
        }
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_directive_claimable, err);
        int r = !st || db_bind_text(c, st, 1, account_id, err) < 0 ||
                db_bind_json(c, st, 2, arr, NULL, err) < 0 ||
                db_bind_int(c, st, 3, limit, err) < 0 ? -1 : 0;
        json_decref(arr);
        if (r < 0)
                return -1;
        return directive_collect(c, st, out, err);
}

/* The poll fast path: the (state, account_id, sandbox_profile) index answers it without
 * building rows or temporary b-trees. Up to MS_CLAIMABLE_PROFILES_MAX profiles are bound. */
static const char sql_directive_any_claimable[] =
        "SELECT EXISTS (SELECT 1 FROM conduits_directives "
        "WHERE state = 'queued' AND account_id = ?1 "
        "AND sandbox_profile IN (?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9))";

int ms_directive_any_claimable(ms_store *s, const char *account_id,
                               const char *const *profiles, size_t nprofiles, bool *any,
                               err_t *err)
{
        *any = false;
        if (!ms_id_ok(account_id) || nprofiles == 0)
                return 0;
        if (nprofiles > MS_CLAIMABLE_PROFILES_MAX) {
                /* more profiles than the fast path binds: use the full query */
                ms_directive_array a = { 0 };
                if (ms_directive_list_claimable(s, account_id, profiles, nprofiles, 1, &a, err) < 0)
                        return -1;
                *any = a.n > 0;
                ms_directive_array_clear(&a);
                return 0;
        }
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_directive_any_claimable, err);
        if (!st || db_bind_text(c, st, 1, account_id, err) < 0)
                return -1;
        for (size_t i = 0; i < MS_CLAIMABLE_PROFILES_MAX; i++) {
                int r = i < nprofiles && profiles[i] ? db_bind_text(c, st, (int)i + 2, profiles[i], err)
                                                     : db_bind_null(c, st, (int)i + 2, err);
                if (r < 0)
                        return -1;
        }
        int r = db_step(c, st, err, "check claimable directives");
        if (r < 0)
                return -1;
        *any = r == 1 && sqlite3_column_int(st, 0) == 1;
        return 0;
}

static const char sql_directive_expired[] =
        "SELECT " DIRECTIVE_COLS " FROM conduits_directives "
        "WHERE state = 'leased' AND lease_expires_at < ?1 "
        "ORDER BY lease_expires_at, id LIMIT ?2";

int ms_directive_list_expired_leases(ms_store *s, int64_t now, int limit,
                                     ms_directive_array *out, err_t *err)
{
        memset(out, 0, sizeof(*out));
        if (limit < 1 || limit > MS_LIST_MAX)
                return err_set(err, "limit %d out of range 1-%d", limit, MS_LIST_MAX);
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_directive_expired, err);
        if (!st || db_bind_time(c, st, 1, ms_now(now), err) < 0 ||
            db_bind_int(c, st, 2, limit, err) < 0)
                return -1;
        return directive_collect(c, st, out, err);
}

static const char sql_directive_count[] =
        "SELECT state, count(*) FROM conduits_directives GROUP BY state";

int ms_directive_count_by_state(ms_store *s, int64_t counts[MS_DIRECTIVE_STATE_COUNT],
                                err_t *err)
{
        for (int i = 0; i < MS_DIRECTIVE_STATE_COUNT; i++)
                counts[i] = 0;
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_directive_count, err);
        if (!st)
                return -1;
        int r;
        while ((r = db_step(c, st, err, "count directives")) > 0) {
                ms_directive_state state;
                if (ms_directive_state_parse((const char *)sqlite3_column_text(st, 0), &state) == 0)
                        counts[state] = sqlite3_column_int64(st, 1);
        }
        return r < 0 ? -1 : 0;
}

/* ---------------------------------------------------------------- guarded updates ---- */

/* started_at records the first leased -> running (the start event, explicit or implicit). */
static const char sql_directive_transition[] =
        "UPDATE conduits_directives SET state = ?3, updated_at = ?4, "
        "started_at = CASE WHEN ?3 = 'running' THEN coalesce(started_at, ?4) "
        "ELSE started_at END WHERE id = ?1 AND state = ?2";

int ms_directive_transition(ms_store *s, const char *id, ms_directive_state from,
                            ms_directive_state to, int64_t now, bool *changed, err_t *err)
{
        if (changed)
                *changed = false;
        const char *fname = ms_directive_state_name(from), *tname = ms_directive_state_name(to);
        if (!fname || !tname || !ms_directive_transition_allowed(from, to))
                return err_set(err, "no directive event leads from %s to %s",
                               fname ? fname : "?", tname ? tname : "?");
        /* these events carry side effects that a bare state change would skip */
        if (from == MS_DIRECTIVE_QUEUED && to == MS_DIRECTIVE_LEASED)
                return err_set(err, "lease a directive with ms_directive_lease");
        if (from == MS_DIRECTIVE_LEASED && to == MS_DIRECTIVE_QUEUED)
                return err_set(err, "expire a lease with ms_directive_expire_lease");
        if (from == MS_DIRECTIVE_AWAITING_APPROVAL && to == MS_DIRECTIVE_QUEUED)
                return err_set(err, "approve a directive with ms_directive_approve");
        if (!ms_id_ok(id))
                return ms_not_found(err, "directive", id);
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_directive_transition, err);
        if (!st || db_bind_text(c, st, 1, id, err) < 0 || db_bind_text(c, st, 2, fname, err) < 0 ||
            db_bind_text(c, st, 3, tname, err) < 0 ||
            db_bind_time(c, st, 4, ms_now(now), err) < 0)
                return -1;
        return guarded_update(c, st, id, changed, err, "change directive state");
}

static const char sql_directive_lease[] =
        "UPDATE conduits_directives SET state = 'leased', territory_id = ?2, "
        "lease_expires_at = ?3, updated_at = ?4 WHERE id = ?1 AND state = 'queued'";

int ms_directive_lease(ms_store *s, const char *id, const char *territory_id,
                       int64_t lease_expires_at, int64_t now, bool *changed, err_t *err)
{
        if (changed)
                *changed = false;
        if (!ms_id_ok(id))
                return ms_not_found(err, "directive", id);
        /* §2.1 lease guard: territory_id must be set */
        if (!ms_id_ok(territory_id))
                return err_set(err, "leasing directive %s needs a territory", id);
        if (lease_expires_at == 0)
                return err_set(err, "leasing directive %s needs an expiry", id);
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_directive_lease, err);
        if (!st || db_bind_text(c, st, 1, id, err) < 0 ||
            db_bind_text(c, st, 2, territory_id, err) < 0 ||
            db_bind_time(c, st, 3, lease_expires_at, err) < 0 ||
            db_bind_time(c, st, 4, ms_now(now), err) < 0)
                return -1;
        return guarded_update(c, st, id, changed, err, "lease directive");
}

static const char sql_directive_expire[] =
        "UPDATE conduits_directives SET state = 'queued', territory_id = NULL, "
        "lease_expires_at = NULL, last_heartbeat_at = NULL, updated_at = ?3 "
        "WHERE id = ?1 AND state = 'leased' AND (?2 IS NULL OR lease_expires_at < ?2) "
        "RETURNING facility_id";

typedef struct expire_ctx {
        const char *id;
        int64_t expired_before, now;
        bool changed;
} expire_ctx;

static int expire_tx(ms_store *s, void *p, err_t *err)
{
        expire_ctx *ctx = p;
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        char facility_id[MS_ID_SIZE] = "";
        {
                _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_directive_expire, err);
                if (!st || db_bind_text(c, st, 1, ctx->id, err) < 0 ||
                    db_bind_time(c, st, 2, ctx->expired_before, err) < 0 ||
                    db_bind_time(c, st, 3, ctx->now, err) < 0)
                        return -1;
                int r = db_step(c, st, err, "expire lease");
                if (r < 0)
                        return -1;
                if (r == 0)
                        return directive_missing(c, ctx->id, err);
                if (db_col_fixed(st, 0, facility_id, sizeof(facility_id), err) < 0)
                        return -1;
                while ((r = db_step(c, st, err, "expire lease")) > 0)
                        ;
                if (r < 0)
                        return -1;
        }
        ctx->changed = true;
        /* §2.1 expire_lease: release the facility lock if this directive holds it */
        return ms_facility_unlock(s, facility_id, ctx->id, ctx->now, NULL, err);
}

int ms_directive_expire_lease(ms_store *s, const char *id, int64_t expired_before,
                              int64_t now, bool *changed, err_t *err)
{
        if (changed)
                *changed = false;
        if (!ms_id_ok(id))
                return ms_not_found(err, "directive", id);
        expire_ctx ctx = { id, expired_before, ms_now(now), false };
        if (ms_tx(s, expire_tx, &ctx, err) < 0)
                return -1;
        if (changed)
                *changed = ctx.changed;
        return 0;
}

static const char sql_directive_renew[] =
        "UPDATE conduits_directives SET lease_expires_at = ?2, last_heartbeat_at = ?3, "
        "updated_at = ?3 WHERE id = ?1 AND state = 'running'";

/* One guarded UPDATE binding (id, lease_expires_at, now): renew and force-expire. */
static int set_lease_expiry(ms_store *s, const char *sql, const char *id,
                            int64_t lease_expires_at, int64_t now, bool *changed,
                            const char *what, err_t *err)
{
        if (changed)
                *changed = false;
        if (!ms_id_ok(id))
                return ms_not_found(err, "directive", id);
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql, err);
        if (!st || db_bind_text(c, st, 1, id, err) < 0 ||
            db_bind_time(c, st, 2, lease_expires_at, err) < 0 ||
            db_bind_time(c, st, 3, ms_now(now), err) < 0)
                return -1;
        return guarded_update(c, st, id, changed, err, what);
}

int ms_directive_renew_lease(ms_store *s, const char *id, int64_t lease_expires_at,
                             int64_t now, bool *changed, err_t *err)
{
        return set_lease_expiry(s, sql_directive_renew, id, lease_expires_at, now, changed,
                                "renew lease", err);
}

static const char sql_directive_force_expiry[] =
        "UPDATE conduits_directives SET lease_expires_at = ?2, updated_at = ?3 "
        "WHERE id = ?1 AND state IN ('leased', 'running')";

int ms_directive_force_lease_expiry(ms_store *s, const char *id, int64_t lease_expires_at,
                                    int64_t now, bool *changed, err_t *err)
{
        return set_lease_expiry(s, sql_directive_force_expiry, id, lease_expires_at, now,
                                changed, "force lease expiry", err);
}

static const char sql_directive_approve[] =
        "UPDATE conduits_directives SET state = 'queued', approved_by_user_id = ?2, "
        "decision_reason = ?3, decided_at = ?4, updated_at = ?4 "
        "WHERE id = ?1 AND state = 'awaiting_approval'";
static const char sql_directive_reject[] =
        "UPDATE conduits_directives SET state = 'canceled', rejected_by_user_id = ?2, "
        "decision_reason = ?3, decided_at = ?4, updated_at = ?4 "
        "WHERE id = ?1 AND state = 'awaiting_approval'";

int ms_directive_decide(ms_store *s, const char *id, bool approve, const char *user_id,
                        const char *reason, int64_t now, bool *changed, err_t *err)
{
        if (changed)
                *changed = false;
        if (!ms_id_ok(id))
                return ms_not_found(err, "directive", id);
        if (!ms_id_ok(user_id))
                return ms_not_found(err, approve ? "approving user" : "rejecting user", user_id);
        if (reason && strlen(reason) > MS_DECISION_REASON_MAX)
                return err_set(err, "decision reason is longer than %d bytes",
                               MS_DECISION_REASON_MAX);
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st =
                db_prepare(c, approve ? sql_directive_approve : sql_directive_reject, err);
        if (!st || db_bind_text(c, st, 1, id, err) < 0 ||
            db_bind_text(c, st, 2, user_id, err) < 0 ||
            db_bind_text(c, st, 3, reason, err) < 0 ||
            db_bind_time(c, st, 4, ms_now(now), err) < 0)
                return -1;
        return guarded_update(c, st, id, changed, err,
                              approve ? "approve directive" : "reject directive");
}

int ms_directive_approve(ms_store *s, const char *id, const char *approver_user_id,
                         int64_t now, bool *changed, err_t *err)
{
        return ms_directive_decide(s, id, true, approver_user_id, NULL, now, changed, err);
}

static const char sql_directive_hold[] =
        "UPDATE conduits_directives SET state = 'awaiting_approval', "
        "approved_by_user_id = NULL, decision_reason = NULL, decided_at = NULL, updated_at = ?2 "
        "WHERE id = ?1 AND state = 'queued'";

int ms_directive_hold_for_approval(ms_store *s, const char *id, int64_t now, bool *changed,
                                   err_t *err)
{
        if (changed)
                *changed = false;
        if (!ms_id_ok(id))
                return ms_not_found(err, "directive", id);
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_directive_hold, err);
        if (!st || db_bind_text(c, st, 1, id, err) < 0 ||
            db_bind_time(c, st, 2, ms_now(now), err) < 0)
                return -1;
        return guarded_update(c, st, id, changed, err, "hold directive for approval");
}

static const char sql_directive_cancel[] =
        "UPDATE conduits_directives SET cancel_requested_at = ?2, updated_at = ?2 "
        "WHERE id = ?1 AND cancel_requested_at IS NULL";

int ms_directive_request_cancel(ms_store *s, const char *id, int64_t now, bool *changed,
                                err_t *err)
{
        if (changed)
                *changed = false;
        if (!ms_id_ok(id))
                return ms_not_found(err, "directive", id);
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_directive_cancel, err);
        if (!st || db_bind_text(c, st, 1, id, err) < 0 ||
            db_bind_time(c, st, 2, ms_now(now), err) < 0)
                return -1;
        return guarded_update(c, st, id, changed, err, "request cancellation");
}

static const char sql_directive_versions[] =
        "UPDATE conduits_directives SET nexus_version = coalesce(nexus_version, ?2), "
        "sandbox_version = coalesce(sandbox_version, ?3), updated_at = ?4 WHERE id = ?1";

int ms_directive_fill_versions(ms_store *s, const char *id, const char *nexus_version,
                               const char *sandbox_version, int64_t now, err_t *err)
{
        if (!ms_id_ok(id))
                return ms_not_found(err, "directive", id);
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_directive_versions, err);
        if (!st || db_bind_text(c, st, 1, id, err) < 0 ||
            db_bind_text(c, st, 2, nexus_version, err) < 0 ||
            db_bind_text(c, st, 3, sandbox_version, err) < 0 ||
            db_bind_time(c, st, 4, ms_now(now), err) < 0)
                return -1;
        return guarded_update(c, st, id, NULL, err, "store versions");
}

static const char sql_directive_effective[] =
        "UPDATE conduits_directives SET effective_capabilities = ?2, policy_snapshot = ?3, "
        "updated_at = ?4 WHERE id = ?1";

int ms_directive_set_effective(ms_store *s, const char *id, const json_t *effective,
                               const json_t *policy_snapshot, int64_t now, err_t *err)
{
        if (!ms_id_ok(id))
                return ms_not_found(err, "directive", id);
        if (!effective)
                return err_set(err, "effective capabilities are required");
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_directive_effective, err);
        if (!st || db_bind_text(c, st, 1, id, err) < 0 ||
            db_bind_json(c, st, 2, effective, NULL, err) < 0 ||
            db_bind_json(c, st, 3, policy_snapshot, NULL, err) < 0 ||
            db_bind_time(c, st, 4, ms_now(now), err) < 0)
                return -1;
        return guarded_update(c, st, id, NULL, err, "store effective capabilities");
}

/* §7.10: byte counters use atomic increments, flags are monotonic. ?2 is 0 for stdout. */
static const char sql_directive_output[] =
        "UPDATE conduits_directives SET "
        "stdout_bytes = stdout_bytes + CASE WHEN ?2 = 0 THEN ?3 ELSE 0 END, "
        "stderr_bytes = stderr_bytes + CASE WHEN ?2 = 1 THEN ?3 ELSE 0 END, "
        "stdout_truncated = CASE WHEN ?2 = 0 AND ?4 THEN 1 ELSE stdout_truncated END, "
        "stderr_truncated = CASE WHEN ?2 = 1 AND ?4 THEN 1 ELSE stderr_truncated END, "
        "updated_at = ?5 WHERE id = ?1";

int ms_directive_add_output(ms_store *s, const char *id, ms_log_stream stream, int64_t nbytes,
                            bool truncated, int64_t now, err_t *err)
{
        if (!ms_id_ok(id))
                return ms_not_found(err, "directive", id);
        if (stream != MS_STREAM_STDOUT && stream != MS_STREAM_STDERR)
                return err_set(err, "output stream must be stdout or stderr");
        if (nbytes < 0)
                return err_set(err, "output byte count %lld is negative", (long long)nbytes);
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_directive_output, err);
        if (!st || db_bind_text(c, st, 1, id, err) < 0 ||
            db_bind_int(c, st, 2, stream == MS_STREAM_STDOUT ? 0 : 1, err) < 0 ||
            db_bind_int(c, st, 3, nbytes, err) < 0 || db_bind_int(c, st, 4, truncated, err) < 0 ||
            db_bind_time(c, st, 5, ms_now(now), err) < 0)
                return -1;
        return guarded_update(c, st, id, NULL, err, "count output");
}

static const char sql_directive_result_hash[] =
        "UPDATE conduits_directives SET result_hash = ?2, updated_at = ?3 "
        "WHERE id = ?1 AND result_hash IS NULL";

int ms_directive_set_result_hash(ms_store *s, const char *id, const char *result_hash,
                                 int64_t now, err_t *err)
{
        if (!ms_id_ok(id))
                return ms_not_found(err, "directive", id);
        if (str_is_blank(result_hash))
                return err_set(err, "result hash must not be blank");
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_directive_result_hash, err);
        if (!st || db_bind_text(c, st, 1, id, err) < 0 ||
            db_bind_text(c, st, 2, result_hash, err) < 0 ||
            db_bind_time(c, st, 3, ms_now(now), err) < 0)
                return -1;
        return guarded_update(c, st, id, NULL, err, "store result hash");
}

static const char sql_directive_finish[] =
        "UPDATE conduits_directives SET state = ?2, finished_status = ?2, "
        "result_hash = coalesce(?3, result_hash), "
        "stdout_truncated = (stdout_truncated OR ?4), "
        "stderr_truncated = (stderr_truncated OR ?5), "
        "diff_truncated = (diff_truncated OR ?6), "
        "exit_code = CASE WHEN ?7 THEN ?8 ELSE exit_code END, "
        "snapshot_before = CASE WHEN ?9 THEN ?10 ELSE snapshot_before END, "
        "snapshot_after = CASE WHEN ?11 THEN ?12 ELSE snapshot_after END, "
        "artifacts_manifest = coalesce(?13, artifacts_manifest), "
        "finished_at = coalesce(?14, finished_at), updated_at = ?15 "
        "WHERE id = ?1 AND state = 'running'";

int ms_directive_finish(ms_store *s, const char *id, const ms_directive_result *f, int64_t now,
                        bool *changed, err_t *err)
{
        if (changed)
                *changed = false;
        if (!ms_id_ok(id))
                return ms_not_found(err, "directive", id);
        if (!ms_directive_state_is_terminal(f->state))
                return err_set(err, "finish needs a terminal state");
        if (ms_json_expect(f->artifacts_manifest, JSON_OBJECT, "artifacts_manifest", err) < 0)
                return -1;
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_directive_finish, err);
        if (!st || db_bind_text(c, st, 1, id, err) < 0 ||
            db_bind_text(c, st, 2, ms_directive_state_name(f->state), err) < 0 ||
            db_bind_text(c, st, 3, f->result_hash, err) < 0 ||
            db_bind_int(c, st, 4, f->stdout_truncated, err) < 0 ||
            db_bind_int(c, st, 5, f->stderr_truncated, err) < 0 ||
            db_bind_int(c, st, 6, f->diff_truncated, err) < 0 ||
            db_bind_int(c, st, 7, f->set_exit_code, err) < 0 ||
            (f->exit_code_null ? db_bind_null(c, st, 8, err)
                               : db_bind_int(c, st, 8, f->exit_code, err)) < 0 ||
            db_bind_int(c, st, 9, f->set_snapshot_before, err) < 0 ||
            db_bind_text(c, st, 10, f->snapshot_before, err) < 0 ||
            db_bind_int(c, st, 11, f->set_snapshot_after, err) < 0 ||
            db_bind_text(c, st, 12, f->snapshot_after, err) < 0 ||
            db_bind_json(c, st, 13, f->artifacts_manifest, NULL, err) < 0 ||
            db_bind_time(c, st, 14, f->finished_at, err) < 0 ||
            db_bind_time(c, st, 15, ms_now(now), err) < 0)
                return -1;
        return guarded_update(c, st, id, changed, err, "finish directive");
}
