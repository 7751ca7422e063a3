/* test_ms_store_directives.c — the mothership store's directive track: directives and their
 * guarded state primitives, log chunks, audit events, retention, and the concurrency of
 * guarded updates across threads (each thread on its own connection). */
#include "testutil.h"

#include <ftw.h>
#include <pthread.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>

#include "core/str.h"
#include "store/store.h"
#include "store/store_internal.h"

#define T0 1772202622000LL      /* 2026-02-27T14:30:22.000Z */
#define NTHREADS 8

typedef struct fx {
        char dir[64];
        ms_store *s;
        char account[MS_ID_SIZE];
        char user[MS_ID_SIZE];
        char territory[MS_ID_SIZE];
        char facility[MS_ID_SIZE];
} fx;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
        (void)sb; (void)flag; (void)ftw;
        return remove(path);
}

static int setup(void **state)
{
        fx *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        assert_int_equal(str_copy(f->dir, sizeof(f->dir), "/tmp/ms-store-XXXXXX"), 0);
        assert_non_null(mkdtemp(f->dir));
        err_t err = ERR_INIT;
        assert_int_equal(ms_store_open(f->dir, NULL, &f->s, &err), 0);
        assert_int_equal(ms_account_create(f->s, "acme", T0, f->account, &err), 0);
        assert_int_equal(ms_user_create(f->s, f->account, "alice", T0, f->user, &err), 0);
        ms_territory_new tn = { .account_id = f->account, .name = "n1" };
        assert_int_equal(ms_territory_create(f->s, &tn, T0, f->territory, &err), 0);
        json_t *rp = json_object();
        ms_facility_new fn = { .account_id = f->account, .owner_id = f->user,
                               .territory_id = f->territory, .kind = "empty",
                               .retention_policy = rp };
        assert_int_equal(ms_facility_create(f->s, &fn, T0, f->facility, &err), 0);
        json_decref(rp);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        fx *f = *state;
        ms_store_close(f->s);
        nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(f);
        return 0;
}

static bool code_is(const err_t *err, const char *code)
{
        return err->code && strcmp(err->code, code) == 0;
}

static sqlite3 *raw_db(fx *f)
{
        char path[128];
        assert_true(str_printf(path, sizeof(path), "%s/%s", f->dir, MS_DB_FILE) > 0);
        sqlite3 *db = NULL;
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        return db;
}

static void new_directive_in(fx *f, const char *facility, ms_directive_state st,
                             const char *profile, int64_t now, char id[MS_ID_SIZE])
{
        err_t err = ERR_INIT;
        ms_directive_new d = { .account_id = f->account, .facility_id = facility,
                               .requested_by_user_id = f->user, .state = st,
                               .sandbox_profile = profile, .command = "echo hi",
                               .timeout_seconds = 300 };
        assert_int_equal(ms_directive_insert(f->s, &d, now, id, &err), 0);
}

static void new_directive(fx *f, ms_directive_state st, int64_t now, char id[MS_ID_SIZE])
{
        new_directive_in(f, f->facility, st, NULL, now, id);
}

static ms_directive_state state_of(fx *f, const char *id)
{
        err_t err = ERR_INIT;
        ms_directive d;
        assert_int_equal(ms_directive_get(f->s, id, &d, &err), 0);
        ms_directive_state st = d.state;
        ms_directive_clear(&d);
        return st;
}

/* Brings a new directive to running on f->territory. */
static void running_directive(fx *f, int64_t now, char id[MS_ID_SIZE])
{
        err_t err = ERR_INIT;
        bool changed = false;
        new_directive(f, MS_DIRECTIVE_QUEUED, now, id);
        assert_int_equal(ms_directive_lease(f->s, id, f->territory, now + 300000, now, &changed,
                                            &err), 0);
        assert_true(changed);
        assert_int_equal(ms_directive_transition(f->s, id, MS_DIRECTIVE_LEASED,
                                                 MS_DIRECTIVE_RUNNING, now, &changed, &err), 0);
        assert_true(changed);
}

/* ---------------------------------------------------------------- insert / read ------ */

static void test_directive_insert_roundtrip(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        json_t *limits = json_pack("{s:i}", "max_output_bytes", 1000);
        json_t *eff = json_pack("{s:{s:[s]}}", "fs", "read", "workspace:**");
        json_t *env = json_pack("[s]", "PATH");
        ms_directive_new in = { .account_id = f->account, .facility_id = f->facility,
                                .requested_by_user_id = f->user,
                                .state = MS_DIRECTIVE_AWAITING_APPROVAL,
                                .sandbox_profile = "trusted", .command = "make test",
                                .shell = "/bin/bash", .timeout_seconds = 60, .limits = limits,
                                .effective_capabilities = eff, .env_allowlist = env };
        char id[MS_ID_SIZE];
        assert_int_equal(ms_directive_insert(f->s, &in, T0, id, &err), 0);
        ms_directive d;
        assert_int_equal(ms_directive_get(f->s, id, &d, &err), 0);
        assert_string_equal(d.id, id);
        assert_int_equal(d.state, MS_DIRECTIVE_AWAITING_APPROVAL);
        assert_string_equal(d.sandbox_profile, "trusted");
        assert_string_equal(d.command, "make test");
        assert_string_equal(d.shell, "/bin/bash");
        assert_null(d.cwd);
        assert_int_equal(d.timeout_seconds, 60);
        assert_true(json_equal(d.limits, limits));
        assert_true(json_equal(d.effective_capabilities, eff));
        assert_true(json_equal(d.env_allowlist, env));
        assert_true(json_is_array(d.env_refs));
        assert_true(json_is_object(d.requested_capabilities));
        assert_null(d.policy_snapshot);
        assert_false(d.has_exit_code);
        assert_string_equal(d.territory_id, "");
        assert_int_equal(d.stdout_bytes, 0);
        assert_int_equal(d.created_at, T0);
        ms_directive_clear(&d);
        json_decref(limits);
        json_decref(eff);
        json_decref(env);
}

static void test_directive_insert_refuses_non_initial_state(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        ms_directive_new in = { .account_id = f->account, .facility_id = f->facility,
                                .requested_by_user_id = f->user, .state = MS_DIRECTIVE_RUNNING,
                                .command = "x" };
        char id[MS_ID_SIZE];
        assert_int_equal(ms_directive_insert(f->s, &in, T0, id, &err), -1);
        assert_true(code_is(&err, ERR_INVALID));
        err_clear(&err);
        in.state = MS_DIRECTIVE_QUEUED;
        in.sandbox_profile = "chroot";
        assert_int_equal(ms_directive_insert(f->s, &in, T0, id, &err), -1);
        assert_true(code_is(&err, ERR_INVALID));
}

static void test_directive_get_scoped_to_account_and_facility(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        new_directive(f, MS_DIRECTIVE_QUEUED, T0, id);
        ms_directive d;
        assert_int_equal(ms_directive_get_scoped(f->s, f->account, f->facility, id, &d, &err), 0);
        ms_directive_clear(&d);
        assert_int_equal(ms_directive_get_scoped(f->s, f->account,
                                                 "01890000-0000-7000-8000-000000000000", id, &d,
                                                 &err), -1);
        assert_true(code_is(&err, ERR_NOT_FOUND));
}

static void test_directive_list_pages_by_id(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char ids[5][MS_ID_SIZE];
        for (int i = 0; i < 5; i++)
                new_directive(f, MS_DIRECTIVE_QUEUED, T0 + i, ids[i]);
        ms_directive_filter flt = { .account_id = f->account, .facility_id = f->facility,
                                    .limit = 2 };
        ms_directive_array l;
        assert_int_equal(ms_directive_list(f->s, &flt, &l, &err), 0);
        assert_int_equal(l.n, 2);
        assert_string_equal(l.items[0].id, ids[0]);
        assert_string_equal(l.items[1].id, ids[1]);
        char cursor[MS_ID_SIZE];
        memcpy(cursor, l.items[1].id, MS_ID_SIZE);
        ms_directive_array_clear(&l);
        flt.cursor = cursor;
        flt.limit = 10;
        assert_int_equal(ms_directive_list(f->s, &flt, &l, &err), 0);
        assert_int_equal(l.n, 3);
        assert_string_equal(l.items[0].id, ids[2]);
        assert_string_equal(l.items[2].id, ids[4]);
        ms_directive_array_clear(&l);
}

static void test_directive_list_newest_first(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char ids[3][MS_ID_SIZE];
        for (int i = 0; i < 3; i++)
                new_directive(f, MS_DIRECTIVE_QUEUED, T0 + i, ids[i]);
        ms_directive_filter flt = { .facility_id = f->facility, .limit = 2,
                                    .newest_first = true };
        ms_directive_array l;
        assert_int_equal(ms_directive_list(f->s, &flt, &l, &err), 0);
        assert_int_equal(l.n, 2);
        assert_string_equal(l.items[0].id, ids[2]);
        assert_string_equal(l.items[1].id, ids[1]);
        ms_directive_array_clear(&l);
        flt.cursor = ids[1];
        assert_int_equal(ms_directive_list(f->s, &flt, &l, &err), 0);
        assert_int_equal(l.n, 1);
        assert_string_equal(l.items[0].id, ids[0]);
        ms_directive_array_clear(&l);
}

static void test_directive_list_filters_state_and_territory(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char q[MS_ID_SIZE], r[MS_ID_SIZE], a[MS_ID_SIZE];
        new_directive(f, MS_DIRECTIVE_QUEUED, T0, q);
        running_directive(f, T0 + 1, r);
        new_directive(f, MS_DIRECTIVE_AWAITING_APPROVAL, T0 + 2, a);
        ms_directive_filter flt = { .account_id = f->account, .has_state = true,
                                    .state = MS_DIRECTIVE_RUNNING, .limit = 10 };
        ms_directive_array l;
        assert_int_equal(ms_directive_list(f->s, &flt, &l, &err), 0);
        assert_int_equal(l.n, 1);
        assert_string_equal(l.items[0].id, r);
        ms_directive_array_clear(&l);
        flt.has_state = false;
        flt.territory_id = f->territory;
        assert_int_equal(ms_directive_list(f->s, &flt, &l, &err), 0);
        assert_int_equal(l.n, 1);
        assert_string_equal(l.items[0].id, r);
        ms_directive_array_clear(&l);
        flt.limit = 0;
        assert_int_equal(ms_directive_list(f->s, &flt, &l, &err), -1);
        assert_true(code_is(&err, ERR_INVALID));
}

static void test_directive_count_by_state(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        new_directive(f, MS_DIRECTIVE_QUEUED, T0, id);
        new_directive(f, MS_DIRECTIVE_QUEUED, T0, id);
        new_directive(f, MS_DIRECTIVE_AWAITING_APPROVAL, T0, id);
        running_directive(f, T0, id);
        int64_t counts[MS_DIRECTIVE_STATE_COUNT];
        assert_int_equal(ms_directive_count_by_state(f->s, counts, &err), 0);
        assert_int_equal(counts[MS_DIRECTIVE_QUEUED], 2);
        assert_int_equal(counts[MS_DIRECTIVE_AWAITING_APPROVAL], 1);
        assert_int_equal(counts[MS_DIRECTIVE_RUNNING], 1);
        assert_int_equal(counts[MS_DIRECTIVE_SUCCEEDED], 0);
}

/* ---------------------------------------------------------------- transitions -------- */

static void test_transition_guard_holds_once(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        new_directive(f, MS_DIRECTIVE_QUEUED, T0, id);
        bool changed = false;
        assert_int_equal(ms_directive_transition(f->s, id, MS_DIRECTIVE_QUEUED,
                                                 MS_DIRECTIVE_CANCELED, T0 + 1, &changed, &err), 0);
        assert_true(changed);
        assert_int_equal(ms_directive_transition(f->s, id, MS_DIRECTIVE_QUEUED,
                                                 MS_DIRECTIVE_CANCELED, T0 + 2, &changed, &err), 0);
        assert_false(changed);
        ms_directive d;
        assert_int_equal(ms_directive_get(f->s, id, &d, &err), 0);
        assert_int_equal(d.state, MS_DIRECTIVE_CANCELED);
        assert_int_equal(d.updated_at, T0 + 1);
        ms_directive_clear(&d);
}

static void test_transition_refuses_pairs_outside_state_machine(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        running_directive(f, T0, id);
        assert_int_equal(ms_directive_transition(f->s, id, MS_DIRECTIVE_RUNNING,
                                                 MS_DIRECTIVE_QUEUED, T0, NULL, &err), -1);
        assert_true(code_is(&err, ERR_INVALID));
        err_clear(&err);
        assert_int_equal(ms_directive_transition(f->s, id, MS_DIRECTIVE_SUCCEEDED,
                                                 MS_DIRECTIVE_RUNNING, T0, NULL, &err), -1);
        assert_true(code_is(&err, ERR_INVALID));
        assert_int_equal(state_of(f, id), MS_DIRECTIVE_RUNNING);
        assert_false(ms_directive_transition_allowed(MS_DIRECTIVE_CANCELED, MS_DIRECTIVE_QUEUED));
        assert_true(ms_directive_transition_allowed(MS_DIRECTIVE_LEASED, MS_DIRECTIVE_CANCELED));
}

static void test_transition_refuses_events_with_side_effects(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        new_directive(f, MS_DIRECTIVE_QUEUED, T0, id);
        assert_int_equal(ms_directive_transition(f->s, id, MS_DIRECTIVE_QUEUED,
                                                 MS_DIRECTIVE_LEASED, T0, NULL, &err), -1);
        assert_non_null(strstr(err.msg, "ms_directive_lease"));
        err_clear(&err);
        assert_int_equal(ms_directive_transition(f->s, id, MS_DIRECTIVE_AWAITING_APPROVAL,
                                                 MS_DIRECTIVE_QUEUED, T0, NULL, &err), -1);
        assert_non_null(strstr(err.msg, "ms_directive_approve"));
}

static void test_transition_unknown_directive_not_found(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        bool changed = true;
        assert_int_equal(ms_directive_transition(f->s, "01890000-0000-7000-8000-000000000000",
                                                 MS_DIRECTIVE_QUEUED, MS_DIRECTIVE_CANCELED, T0,
                                                 &changed, &err), -1);
        assert_true(code_is(&err, ERR_NOT_FOUND));
        assert_false(changed);
}

static void test_invalid_state_rejected_by_check(void **state)
{
        fx *f = *state;
        char id[MS_ID_SIZE];
        new_directive(f, MS_DIRECTIVE_QUEUED, T0, id);
        sqlite3 *db = raw_db(f);
        char sql[160];
        assert_true(str_printf(sql, sizeof(sql), "UPDATE conduits_directives SET state = 'bogus' "
                               "WHERE id = '%s'", id) > 0);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_CONSTRAINT);
        assert_int_equal(sqlite3_extended_errcode(db), SQLITE_CONSTRAINT_CHECK);
        /* a leased directive must name its territory */
        assert_true(str_printf(sql, sizeof(sql), "UPDATE conduits_directives SET state = 'leased' "
                               "WHERE id = '%s'", id) > 0);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_CONSTRAINT);
        sqlite3_close(db);
        assert_int_equal(state_of(f, id), MS_DIRECTIVE_QUEUED);
}

/* ---------------------------------------------------------------- leases ------------- */

static void test_lease_sets_territory_and_expiry(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        new_directive(f, MS_DIRECTIVE_QUEUED, T0, id);
        bool changed = false;
        assert_int_equal(ms_directive_lease(f->s, id, f->territory, T0 + 300000, T0, &changed,
                                            &err), 0);
        assert_true(changed);
        ms_directive d;
        assert_int_equal(ms_directive_get(f->s, id, &d, &err), 0);
        assert_int_equal(d.state, MS_DIRECTIVE_LEASED);
        assert_string_equal(d.territory_id, f->territory);
        assert_int_equal(d.lease_expires_at, T0 + 300000);
        ms_directive_clear(&d);
        assert_int_equal(ms_directive_lease(f->s, id, f->territory, T0 + 300000, T0, &changed,
                                            &err), 0);
        assert_false(changed);
}

static void test_lease_unknown_territory_not_found(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        new_directive(f, MS_DIRECTIVE_QUEUED, T0, id);
        assert_int_equal(ms_directive_lease(f->s, id, "01890000-0000-7000-8000-000000000000",
                                            T0 + 1, T0, NULL, &err), -1);
        assert_true(code_is(&err, ERR_NOT_FOUND));
        err_clear(&err);
        assert_int_equal(ms_directive_lease(f->s, id, "", T0 + 1, T0, NULL, &err), -1);
        assert_true(code_is(&err, ERR_INVALID));
        assert_int_equal(state_of(f, id), MS_DIRECTIVE_QUEUED);
}

static void test_expire_lease_requeues_and_releases_lock(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        new_directive(f, MS_DIRECTIVE_QUEUED, T0, id);
        assert_int_equal(ms_directive_lease(f->s, id, f->territory, T0 + 300000, T0, NULL, &err),
                         0);
        assert_int_equal(ms_facility_lock(f->s, f->facility, id, T0, &err), 0);
        bool changed = false;
        assert_int_equal(ms_directive_expire_lease(f->s, id, 0, T0 + 1, &changed, &err), 0);
        assert_true(changed);
        ms_directive d;
        assert_int_equal(ms_directive_get(f->s, id, &d, &err), 0);
        assert_int_equal(d.state, MS_DIRECTIVE_QUEUED);
        assert_string_equal(d.territory_id, "");
        assert_int_equal(d.lease_expires_at, 0);
        assert_int_equal(d.last_heartbeat_at, 0);
        ms_directive_clear(&d);
        ms_facility fa;
        assert_int_equal(ms_facility_get(f->s, NULL, f->facility, &fa, &err), 0);
        assert_string_equal(fa.locked_by_directive_id, "");
        ms_facility_clear(&fa);
}

static void test_expire_lease_keeps_other_directives_lock(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        const char *other = "01890000-0000-7000-8000-0000000000aa";
        new_directive(f, MS_DIRECTIVE_QUEUED, T0, id);
        assert_int_equal(ms_directive_lease(f->s, id, f->territory, T0 + 1, T0, NULL, &err), 0);
        assert_int_equal(ms_facility_lock(f->s, f->facility, other, T0, &err), 0);
        assert_int_equal(ms_directive_expire_lease(f->s, id, 0, T0 + 2, NULL, &err), 0);
        ms_facility fa;
        assert_int_equal(ms_facility_get(f->s, NULL, f->facility, &fa, &err), 0);
        assert_string_equal(fa.locked_by_directive_id, other);
        ms_facility_clear(&fa);
}

static void test_expire_lease_rechecks_expiry(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        new_directive(f, MS_DIRECTIVE_QUEUED, T0, id);
        assert_int_equal(ms_directive_lease(f->s, id, f->territory, T0 + 5000, T0, NULL, &err), 0);
        bool changed = true;
        /* not yet expired at T0+5000 (strict <) */
        assert_int_equal(ms_directive_expire_lease(f->s, id, T0 + 5000, T0 + 5000, &changed, &err),
                         0);
        assert_false(changed);
        assert_int_equal(ms_directive_expire_lease(f->s, id, T0 + 5001, T0 + 5001, &changed, &err),
                         0);
        assert_true(changed);
}

static void test_list_expired_leases_oldest_first(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char a[MS_ID_SIZE], b[MS_ID_SIZE], c[MS_ID_SIZE];
        new_directive(f, MS_DIRECTIVE_QUEUED, T0, a);
        new_directive(f, MS_DIRECTIVE_QUEUED, T0, b);
        new_directive(f, MS_DIRECTIVE_QUEUED, T0, c);
        assert_int_equal(ms_directive_lease(f->s, a, f->territory, T0 + 2000, T0, NULL, &err), 0);
        assert_int_equal(ms_directive_lease(f->s, b, f->territory, T0 + 1000, T0, NULL, &err), 0);
        assert_int_equal(ms_directive_lease(f->s, c, f->territory, T0 + 9000, T0, NULL, &err), 0);
        ms_directive_array l;
        assert_int_equal(ms_directive_list_expired_leases(f->s, T0 + 5000, 10, &l, &err), 0);
        assert_int_equal(l.n, 2);
        assert_string_equal(l.items[0].id, b);
        assert_string_equal(l.items[1].id, a);
        ms_directive_array_clear(&l);
}

static void test_list_claimable_filters_profile_and_account(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char u1[MS_ID_SIZE], t1[MS_ID_SIZE], u2[MS_ID_SIZE], h1[MS_ID_SIZE], w[MS_ID_SIZE];
        new_directive_in(f, f->facility, MS_DIRECTIVE_QUEUED, "untrusted", T0 + 3, u1);
        new_directive_in(f, f->facility, MS_DIRECTIVE_QUEUED, "trusted", T0 + 2, t1);
        new_directive_in(f, f->facility, MS_DIRECTIVE_QUEUED, "untrusted", T0 + 1, u2);
        new_directive_in(f, f->facility, MS_DIRECTIVE_QUEUED, "host", T0, h1);
        new_directive_in(f, f->facility, MS_DIRECTIVE_AWAITING_APPROVAL, "untrusted", T0, w);
        const char *profiles[] = { "untrusted", "trusted" };
        ms_directive_array l;
        assert_int_equal(ms_directive_list_claimable(f->s, f->account, profiles, 2, 5, &l, &err),
                         0);
        assert_int_equal(l.n, 3);
        /* oldest created first */
        assert_string_equal(l.items[0].id, u2);
        assert_string_equal(l.items[1].id, t1);
        assert_string_equal(l.items[2].id, u1);
        ms_directive_array_clear(&l);
        char other[MS_ID_SIZE];
        assert_int_equal(ms_account_create(f->s, "other", T0, other, &err), 0);
        assert_int_equal(ms_directive_list_claimable(f->s, other, profiles, 2, 5, &l, &err), 0);
        assert_int_equal(l.n, 0);
        ms_directive_array_clear(&l);
}

static void test_renew_lease_only_while_running(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char q[MS_ID_SIZE], r[MS_ID_SIZE];
        new_directive(f, MS_DIRECTIVE_QUEUED, T0, q);
        running_directive(f, T0, r);
        bool changed = true;
        assert_int_equal(ms_directive_renew_lease(f->s, q, T0 + 600000, T0 + 10, &changed, &err),
                         0);
        assert_false(changed);
        assert_int_equal(ms_directive_renew_lease(f->s, r, T0 + 600000, T0 + 10, &changed, &err),
                         0);
        assert_true(changed);
        ms_directive d;
        assert_int_equal(ms_directive_get(f->s, r, &d, &err), 0);
        assert_int_equal(d.lease_expires_at, T0 + 600000);
        assert_int_equal(d.last_heartbeat_at, T0 + 10);
        ms_directive_clear(&d);
}

static void test_force_lease_expiry_moves_expiry_of_leased(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        new_directive(f, MS_DIRECTIVE_QUEUED, T0, id);
        assert_int_equal(ms_directive_lease(f->s, id, f->territory, T0 + 300000, T0, NULL, &err),
                         0);
        bool changed = false;
        assert_int_equal(ms_directive_force_lease_expiry(f->s, id, T0 - 60000, T0 + 5, &changed,
                                                         &err), 0);
        assert_true(changed);
        ms_directive d;
        assert_int_equal(ms_directive_get(f->s, id, &d, &err), 0);
        assert_int_equal(d.state, MS_DIRECTIVE_LEASED);
        assert_int_equal(d.lease_expires_at, T0 - 60000);
        assert_int_equal(d.updated_at, T0 + 5);
        ms_directive_clear(&d);
        /* the reaper's candidate list now sees it */
        ms_directive_array l = { 0 };
        assert_int_equal(ms_directive_list_expired_leases(f->s, T0 + 5, 10, &l, &err), 0);
        assert_int_equal(l.n, 1);
        assert_string_equal(l.items[0].id, id);
        ms_directive_array_clear(&l);
}

static void test_force_lease_expiry_moves_expiry_of_running(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        running_directive(f, T0, id);
        bool changed = false;
        assert_int_equal(ms_directive_force_lease_expiry(f->s, id, T0 - 1, T0 + 5, &changed,
                                                         &err), 0);
        assert_true(changed);
        ms_directive d;
        assert_int_equal(ms_directive_get(f->s, id, &d, &err), 0);
        assert_int_equal(d.state, MS_DIRECTIVE_RUNNING);
        assert_int_equal(d.lease_expires_at, T0 - 1);
        ms_directive_clear(&d);
}

static void test_force_lease_expiry_guarded_on_state(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        new_directive(f, MS_DIRECTIVE_QUEUED, T0, id);
        bool changed = true;
        assert_int_equal(ms_directive_force_lease_expiry(f->s, id, T0 - 1, T0 + 5, &changed,
                                                         &err), 0);
        assert_false(changed);
        ms_directive d;
        assert_int_equal(ms_directive_get(f->s, id, &d, &err), 0);
        assert_int_equal(d.lease_expires_at, 0);
        assert_int_equal(d.updated_at, T0);
        ms_directive_clear(&d);
}

static void test_force_lease_expiry_unknown_directive_not_found(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        bool changed = true;
        assert_int_equal(ms_directive_force_lease_expiry(f->s,
                                                         "01890000-0000-7000-8000-000000000000",
                                                         T0, T0, &changed, &err), -1);
        assert_true(code_is(&err, ERR_NOT_FOUND));
        assert_false(changed);
        err_clear(&err);
        assert_int_equal(ms_directive_force_lease_expiry(f->s, "../x", T0, T0, NULL, &err), -1);
        assert_true(code_is(&err, ERR_NOT_FOUND));
}

static void test_approve_sets_approver(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        new_directive(f, MS_DIRECTIVE_AWAITING_APPROVAL, T0, id);
        bool changed = false;
        assert_int_equal(ms_directive_approve(f->s, id, f->user, T0 + 1, &changed, &err), 0);
        assert_true(changed);
        ms_directive d;
        assert_int_equal(ms_directive_get(f->s, id, &d, &err), 0);
        assert_int_equal(d.state, MS_DIRECTIVE_QUEUED);
        assert_string_equal(d.approved_by_user_id, f->user);
        ms_directive_clear(&d);
        assert_int_equal(ms_directive_approve(f->s, id, f->user, T0 + 2, &changed, &err), 0);
        assert_false(changed);
}

/* issue 4: an approval records who, why and when */
static void test_decide_approve_records_reason_and_time(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        new_directive(f, MS_DIRECTIVE_AWAITING_APPROVAL, T0, id);
        bool changed = false;
        assert_int_equal(ms_directive_decide(f->s, id, true, f->user, "looks fine", T0 + 5,
                                             &changed, &err), 0);
        assert_true(changed);
        ms_directive d;
        assert_int_equal(ms_directive_get(f->s, id, &d, &err), 0);
        assert_int_equal(d.state, MS_DIRECTIVE_QUEUED);
        assert_string_equal(d.approved_by_user_id, f->user);
        assert_string_equal(d.rejected_by_user_id, "");
        assert_string_equal(d.decision_reason, "looks fine");
        assert_int_equal(d.decided_at, T0 + 5);
        ms_directive_clear(&d);
}

static void test_decide_reject_is_terminal_and_records_rejecter(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        new_directive(f, MS_DIRECTIVE_AWAITING_APPROVAL, T0, id);
        bool changed = false;
        assert_int_equal(ms_directive_decide(f->s, id, false, f->user, NULL, T0 + 7, &changed,
                                             &err), 0);
        assert_true(changed);
        ms_directive d;
        assert_int_equal(ms_directive_get(f->s, id, &d, &err), 0);
        assert_int_equal(d.state, MS_DIRECTIVE_CANCELED);
        assert_string_equal(d.rejected_by_user_id, f->user);
        assert_string_equal(d.approved_by_user_id, "");
        assert_null(d.decision_reason);
        assert_int_equal(d.decided_at, T0 + 7);
        ms_directive_clear(&d);
        /* the guard: a second decision changes nothing */
        assert_int_equal(ms_directive_decide(f->s, id, true, f->user, NULL, T0 + 8, &changed,
                                             &err), 0);
        assert_false(changed);
        assert_int_equal(state_of(f, id), MS_DIRECTIVE_CANCELED);
}

static void test_decide_refuses_overlong_reason(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        new_directive(f, MS_DIRECTIVE_AWAITING_APPROVAL, T0, id);
        char reason[MS_DECISION_REASON_MAX + 2];
        memset(reason, 'r', sizeof(reason) - 1);
        reason[sizeof(reason) - 1] = '\0';
        bool changed = true;
        assert_int_equal(ms_directive_decide(f->s, id, true, f->user, reason, T0 + 1, &changed,
                                             &err), -1);
        assert_false(changed);
        assert_int_equal(state_of(f, id), MS_DIRECTIVE_AWAITING_APPROVAL);
        err_clear(&err);
        reason[MS_DECISION_REASON_MAX] = '\0';   /* exactly the maximum is accepted */
        assert_int_equal(ms_directive_decide(f->s, id, true, f->user, reason, T0 + 1, &changed,
                                             &err), 0);
        assert_true(changed);
}

/* poll-time re-validation: queued -> awaiting_approval; an approved one loses its approval
 * (the caller holds it only when its capabilities changed since the approval) */
static void test_hold_for_approval_only_queued_and_withdraws_approval(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char fresh[MS_ID_SIZE], approved[MS_ID_SIZE], leased[MS_ID_SIZE];
        new_directive(f, MS_DIRECTIVE_QUEUED, T0, fresh);
        new_directive(f, MS_DIRECTIVE_AWAITING_APPROVAL, T0, approved);
        bool changed = false;
        assert_int_equal(ms_directive_approve(f->s, approved, f->user, T0 + 1, &changed, &err), 0);
        assert_true(changed);
        new_directive(f, MS_DIRECTIVE_QUEUED, T0, leased);
        assert_int_equal(ms_directive_lease(f->s, leased, f->territory, T0 + 300000, T0, &changed,
                                            &err), 0);
        assert_int_equal(ms_directive_hold_for_approval(f->s, fresh, T0 + 2, &changed, &err), 0);
        assert_true(changed);
        assert_int_equal(state_of(f, fresh), MS_DIRECTIVE_AWAITING_APPROVAL);
        assert_int_equal(ms_directive_hold_for_approval(f->s, approved, T0 + 2, &changed, &err),
                         0);
        assert_true(changed);
        assert_int_equal(state_of(f, approved), MS_DIRECTIVE_AWAITING_APPROVAL);
        ms_directive d = { 0 };
        assert_int_equal(ms_directive_get(f->s, approved, &d, &err), 0);
        assert_string_equal(d.approved_by_user_id, "");
        ms_directive_clear(&d);
        assert_int_equal(ms_directive_hold_for_approval(f->s, leased, T0 + 2, &changed, &err), 0);
        assert_false(changed);
        assert_int_equal(state_of(f, leased), MS_DIRECTIVE_LEASED);
        assert_int_equal(ms_directive_hold_for_approval(f->s, "nope", T0, &changed, &err), -1);
        assert_true(code_is(&err, ERR_NOT_FOUND));
}

/* started_at: the first leased -> running, never moved afterwards (timing telemetry) */
static void test_started_at_set_by_start_only(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        running_directive(f, T0, id);
        bool changed = false;
        ms_directive d;
        assert_int_equal(ms_directive_get(f->s, id, &d, &err), 0);
        assert_int_equal(d.started_at, T0);
        ms_directive_clear(&d);
        assert_int_equal(ms_directive_transition(f->s, id, MS_DIRECTIVE_RUNNING,
                                                 MS_DIRECTIVE_CANCELED, T0 + 9, &changed, &err),
                         0);
        assert_true(changed);
        assert_int_equal(ms_directive_get(f->s, id, &d, &err), 0);
        assert_int_equal(d.started_at, T0);
        ms_directive_clear(&d);
        char q[MS_ID_SIZE];
        new_directive(f, MS_DIRECTIVE_QUEUED, T0, q);
        assert_int_equal(ms_directive_get(f->s, q, &d, &err), 0);
        assert_int_equal(d.started_at, 0);
        ms_directive_clear(&d);
}

static void test_request_cancel_sets_flag_once(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        running_directive(f, T0, id);
        bool changed = false;
        assert_int_equal(ms_directive_request_cancel(f->s, id, T0 + 1, &changed, &err), 0);
        assert_true(changed);
        assert_int_equal(ms_directive_request_cancel(f->s, id, T0 + 2, &changed, &err), 0);
        assert_false(changed);
        ms_directive d;
        assert_int_equal(ms_directive_get(f->s, id, &d, &err), 0);
        assert_int_equal(d.cancel_requested_at, T0 + 1);
        ms_directive_clear(&d);
}

static void test_fill_versions_only_where_null(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        running_directive(f, T0, id);
        assert_int_equal(ms_directive_fill_versions(f->s, id, "1.0", NULL, T0, &err), 0);
        assert_int_equal(ms_directive_fill_versions(f->s, id, "2.0", "bwrap-0.8", T0, &err), 0);
        ms_directive d;
        assert_int_equal(ms_directive_get(f->s, id, &d, &err), 0);
        assert_string_equal(d.nexus_version, "1.0");
        assert_string_equal(d.sandbox_version, "bwrap-0.8");
        ms_directive_clear(&d);
}

static void test_add_output_counts_bytes_and_monotonic_flags(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        running_directive(f, T0, id);
        assert_int_equal(ms_directive_add_output(f->s, id, MS_STREAM_STDOUT, 10, false, T0, &err),
                         0);
        assert_int_equal(ms_directive_add_output(f->s, id, MS_STREAM_STDOUT, 5, true, T0, &err),
                         0);
        assert_int_equal(ms_directive_add_output(f->s, id, MS_STREAM_STDOUT, 1, false, T0, &err),
                         0);
        assert_int_equal(ms_directive_add_output(f->s, id, MS_STREAM_STDERR, 7, false, T0, &err),
                         0);
        ms_directive d;
        assert_int_equal(ms_directive_get(f->s, id, &d, &err), 0);
        assert_int_equal(d.stdout_bytes, 16);
        assert_int_equal(d.stderr_bytes, 7);
        assert_true(d.stdout_truncated);
        assert_false(d.stderr_truncated);
        ms_directive_clear(&d);
        assert_int_equal(ms_directive_add_output(f->s, id, MS_STREAM_BOTH, 1, false, T0, &err), -1);
        assert_true(code_is(&err, ERR_INVALID));
}

static void test_finish_applies_report_once(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        running_directive(f, T0, id);
        json_t *manifest = json_pack("{s:s}", "a", "b");
        ms_directive_result r = { .state = MS_DIRECTIVE_FAILED, .result_hash = "h1",
                                  .stderr_truncated = true, .set_exit_code = true,
                                  .exit_code = 2, .set_snapshot_after = true,
                                  .snapshot_after = "abc", .artifacts_manifest = manifest,
                                  .finished_at = T0 + 50 };
        bool changed = false;
        assert_int_equal(ms_directive_finish(f->s, id, &r, T0 + 60, &changed, &err), 0);
        assert_true(changed);
        ms_directive d;
        assert_int_equal(ms_directive_get(f->s, id, &d, &err), 0);
        assert_int_equal(d.state, MS_DIRECTIVE_FAILED);
        assert_string_equal(d.finished_status, "failed");
        assert_string_equal(d.result_hash, "h1");
        assert_true(d.has_exit_code);
        assert_int_equal(d.exit_code, 2);
        assert_true(d.stderr_truncated);
        assert_false(d.stdout_truncated);
        assert_null(d.snapshot_before);
        assert_string_equal(d.snapshot_after, "abc");
        assert_true(json_equal(d.artifacts_manifest, manifest));
        assert_int_equal(d.finished_at, T0 + 50);
        ms_directive_clear(&d);
        /* terminal now: the guard refuses a second report */
        r.state = MS_DIRECTIVE_SUCCEEDED;
        assert_int_equal(ms_directive_finish(f->s, id, &r, T0 + 70, &changed, &err), 0);
        assert_false(changed);
        assert_int_equal(state_of(f, id), MS_DIRECTIVE_FAILED);
        json_decref(manifest);
}

static void test_finish_exit_code_absent_keeps_null_sets_null(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char a[MS_ID_SIZE], b[MS_ID_SIZE];
        running_directive(f, T0, a);
        running_directive(f, T0, b);
        ms_directive_result r = { .state = MS_DIRECTIVE_SUCCEEDED };
        assert_int_equal(ms_directive_finish(f->s, a, &r, T0, NULL, &err), 0);
        r.set_exit_code = true;
        r.exit_code_null = true;
        r.exit_code = 5;        /* ignored: null wins */
        assert_int_equal(ms_directive_finish(f->s, b, &r, T0, NULL, &err), 0);
        ms_directive d;
        assert_int_equal(ms_directive_get(f->s, a, &d, &err), 0);
        assert_false(d.has_exit_code);
        assert_null(d.result_hash);
        assert_true(json_is_object(d.artifacts_manifest));
        ms_directive_clear(&d);
        assert_int_equal(ms_directive_get(f->s, b, &d, &err), 0);
        assert_false(d.has_exit_code);
        ms_directive_clear(&d);
        r.state = MS_DIRECTIVE_RUNNING;
        assert_int_equal(ms_directive_finish(f->s, a, &r, T0, NULL, &err), -1);
        assert_true(code_is(&err, ERR_INVALID));
}

static void test_set_result_hash_only_when_null(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        new_directive(f, MS_DIRECTIVE_QUEUED, T0, id);
        assert_int_equal(ms_directive_set_result_hash(f->s, id, "first", T0, &err), 0);
        assert_int_equal(ms_directive_set_result_hash(f->s, id, "second", T0, &err), 0);
        ms_directive d;
        assert_int_equal(ms_directive_get(f->s, id, &d, &err), 0);
        assert_string_equal(d.result_hash, "first");
        ms_directive_clear(&d);
}

static void test_set_effective_replaces_capabilities(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        new_directive(f, MS_DIRECTIVE_QUEUED, T0, id);
        json_t *eff = json_pack("{s:{}}", "net");
        json_t *snap = json_pack("{s:[]}", "policies_applied");
        assert_int_equal(ms_directive_set_effective(f->s, id, eff, snap, T0, &err), 0);
        ms_directive d;
        assert_int_equal(ms_directive_get(f->s, id, &d, &err), 0);
        assert_true(json_equal(d.effective_capabilities, eff));
        assert_true(json_equal(d.policy_snapshot, snap));
        ms_directive_clear(&d);
        json_decref(eff);
        json_decref(snap);
}

/* ---------------------------------------------------------------- log chunks --------- */

static void test_log_chunk_stored_then_duplicate_same(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        running_directive(f, T0, id);
        ms_log_insert_result res = MS_LOG_DUPLICATE_DIFFERENT;
        assert_int_equal(ms_log_chunk_insert(f->s, id, MS_STREAM_STDOUT, 0, "hello\n", 6, false,
                                             T0, &res, &err), 0);
        assert_int_equal(res, MS_LOG_STORED);
        assert_int_equal(ms_log_chunk_insert(f->s, id, MS_STREAM_STDOUT, 0, "hello\n", 6, false,
                                             T0, &res, &err), 0);
        assert_int_equal(res, MS_LOG_DUPLICATE_SAME);
        /* the same seq on the other stream is a different chunk */
        assert_int_equal(ms_log_chunk_insert(f->s, id, MS_STREAM_STDERR, 0, "e", 1, false,
                                             T0, &res, &err), 0);
        assert_int_equal(res, MS_LOG_STORED);
}

static void test_log_chunk_duplicate_different_keeps_original(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        running_directive(f, T0, id);
        ms_log_insert_result res;
        assert_int_equal(ms_log_chunk_insert(f->s, id, MS_STREAM_STDOUT, 3, "one", 3, false, T0,
                                             &res, &err), 0);
        assert_int_equal(ms_log_chunk_insert(f->s, id, MS_STREAM_STDOUT, 3, "other", 5, true, T0,
                                             &res, &err), 0);
        assert_int_equal(res, MS_LOG_DUPLICATE_DIFFERENT);
        ms_log_chunk_array l;
        assert_int_equal(ms_log_chunk_list(f->s, id, MS_STREAM_STDOUT, -1, 10, 0, &l, &err), 0);
        assert_int_equal(l.n, 1);
        assert_int_equal(l.items[0].bytesize, 3);
        assert_memory_equal(l.items[0].bytes, "one", 3);
        assert_false(l.items[0].truncated);
        ms_log_chunk_array_clear(&l);
}

static void test_log_chunk_list_after_seq_and_limit(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        running_directive(f, T0, id);
        int seqs[] = { 4, 0, 2, 1, 3 };        /* any arrival order (§3.2.6) */
        for (int i = 0; i < 5; i++) {
                char b[2] = { (char)('a' + seqs[i]), 0 };
                assert_int_equal(ms_log_chunk_insert(f->s, id, MS_STREAM_STDOUT, seqs[i], b, 1,
                                                     seqs[i] == 4, T0 + i, NULL, &err), 0);
        }
        ms_log_chunk_array l;
        assert_int_equal(ms_log_chunk_list(f->s, id, MS_STREAM_STDOUT, 0, 3, 0, &l, &err), 0);
        assert_int_equal(l.n, 3);
        for (int i = 0; i < 3; i++) {
                assert_int_equal(l.items[i].seq, i + 1);
                assert_int_equal(l.items[i].bytes[0], 'a' + i + 1);
                assert_int_equal(l.items[i].stream, MS_STREAM_STDOUT);
        }
        ms_log_chunk_array_clear(&l);
        assert_int_equal(ms_log_chunk_list(f->s, id, MS_STREAM_STDOUT, 3, 10, 0, &l, &err), 0);
        assert_int_equal(l.n, 1);
        assert_true(l.items[0].truncated);
        ms_log_chunk_array_clear(&l);
        assert_int_equal(ms_log_chunk_list(f->s, id, MS_STREAM_STDERR, -1, 10, 0, &l, &err), 0);
        assert_int_equal(l.n, 0);
        ms_log_chunk_array_clear(&l);
}

static void test_log_chunk_list_both_streams_by_seq(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        running_directive(f, T0, id);
        assert_int_equal(ms_log_chunk_insert(f->s, id, MS_STREAM_STDERR, 0, "E0", 2, false, T0,
                                             NULL, &err), 0);
        assert_int_equal(ms_log_chunk_insert(f->s, id, MS_STREAM_STDOUT, 1, "O1", 2, false, T0,
                                             NULL, &err), 0);
        assert_int_equal(ms_log_chunk_insert(f->s, id, MS_STREAM_STDOUT, 0, "O0", 2, false, T0,
                                             NULL, &err), 0);
        ms_log_chunk_array l;
        assert_int_equal(ms_log_chunk_list(f->s, id, MS_STREAM_BOTH, -1, 10, 0, &l, &err), 0);
        assert_int_equal(l.n, 3);
        assert_memory_equal(l.items[0].bytes, "O0", 2);
        assert_memory_equal(l.items[1].bytes, "E0", 2);
        assert_memory_equal(l.items[2].bytes, "O1", 2);
        ms_log_chunk_array_clear(&l);
}

static void test_log_chunk_list_respects_byte_cap(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        running_directive(f, T0, id);
        char big[100];
        memset(big, 'x', sizeof(big));
        for (int i = 0; i < 4; i++)
                assert_int_equal(ms_log_chunk_insert(f->s, id, MS_STREAM_STDOUT, i, big, 100,
                                                     false, T0, NULL, &err), 0);
        ms_log_chunk_array l;
        assert_int_equal(ms_log_chunk_list(f->s, id, MS_STREAM_STDOUT, -1, 10, 250, &l, &err), 0);
        assert_int_equal(l.n, 2);
        ms_log_chunk_array_clear(&l);
        /* a cap below one chunk still returns that chunk, so a reader can make progress */
        assert_int_equal(ms_log_chunk_list(f->s, id, MS_STREAM_STDOUT, -1, 10, 10, &l, &err), 0);
        assert_int_equal(l.n, 1);
        ms_log_chunk_array_clear(&l);
}

static void test_log_chunk_refuses_empty_and_bad_seq(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        running_directive(f, T0, id);
        assert_int_equal(ms_log_chunk_insert(f->s, id, MS_STREAM_STDOUT, 0, "", 0, false, T0,
                                             NULL, &err), -1);
        assert_true(code_is(&err, ERR_INVALID));
        err_clear(&err);
        assert_int_equal(ms_log_chunk_insert(f->s, id, MS_STREAM_STDOUT, -1, "x", 1, false, T0,
                                             NULL, &err), -1);
        assert_true(code_is(&err, ERR_INVALID));
        err_clear(&err);
        assert_int_equal(ms_log_chunk_insert(f->s, "01890000-0000-7000-8000-000000000000",
                                             MS_STREAM_STDOUT, 0, "x", 1, false, T0, NULL, &err),
                         -1);
        assert_true(code_is(&err, ERR_NOT_FOUND));
}

static void test_log_chunk_unique_enforced_by_schema(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        running_directive(f, T0, id);
        assert_int_equal(ms_log_chunk_insert(f->s, id, MS_STREAM_STDOUT, 0, "x", 1, false, T0,
                                             NULL, &err), 0);
        sqlite3 *db = raw_db(f);
        char sql[400];
        assert_true(str_printf(sql, sizeof(sql), "INSERT INTO conduits_log_chunks (id, "
                               "directive_id, stream, seq, bytes, bytesize, truncated, created_at, "
                               "updated_at) VALUES ('01890000-0000-7000-8000-000000000009', '%s', "
                               "'stdout', 0, x'79', 1, 0, '2026-02-27T14:30:22.000Z', "
                               "'2026-02-27T14:30:22.000Z')", id) > 0);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_CONSTRAINT);
        assert_int_equal(sqlite3_extended_errcode(db), SQLITE_CONSTRAINT_UNIQUE);
        sqlite3_close(db);
}

/* ---------------------------------------------------------------- audit -------------- */

static void audit(fx *f, const char *type, const char *directive, json_t *payload, int64_t now,
                  char id[MS_ID_SIZE])
{
        err_t err = ERR_INIT;
        ms_audit_new in = { .account_id = f->account, .directive_id = directive,
                            .event_type = type, .payload = payload };
        assert_int_equal(ms_audit_event_insert(f->s, &in, now, id, &err), 0);
}

static void test_audit_insert_and_filter(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char d[MS_ID_SIZE], e1[MS_ID_SIZE], e2[MS_ID_SIZE], e3[MS_ID_SIZE];
        new_directive(f, MS_DIRECTIVE_QUEUED, T0, d);
        json_t *p = json_pack("{s:s}", "territory_id", f->territory);
        audit(f, "directive.created", d, NULL, T0, e1);
        audit(f, "directive.started", d, p, T0 + 1, e2);
        audit(f, "territory.websocket_connected", NULL, p, T0 + 2, e3);
        json_decref(p);
        ms_audit_filter flt = { .account_id = f->account, .directive_id = d, .limit = 10 };
        ms_audit_event_array l;
        assert_int_equal(ms_audit_event_list(f->s, &flt, &l, &err), 0);
        assert_int_equal(l.n, 2);
        assert_string_equal(l.items[0].id, e1);
        assert_string_equal(l.items[0].severity, "info");
        assert_true(json_is_object(l.items[0].payload));
        ms_audit_event_array_clear(&l);
        ms_audit_filter by_terr = { .territory_id = f->territory, .limit = 10 };
        assert_int_equal(ms_audit_event_list(f->s, &by_terr, &l, &err), 0);
        assert_int_equal(l.n, 2);
        assert_string_equal(l.items[0].id, e2);
        assert_string_equal(l.items[0].territory_id, f->territory);
        assert_string_equal(l.items[1].id, e3);
        ms_audit_event_array_clear(&l);
        ms_audit_filter by_type = { .event_type = "directive.created", .limit = 10 };
        assert_int_equal(ms_audit_event_list(f->s, &by_type, &l, &err), 0);
        assert_int_equal(l.n, 1);
        assert_string_equal(l.items[0].directive_id, d);
        ms_audit_event_array_clear(&l);
}

static void test_audit_time_range_and_cursor(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char ids[5][MS_ID_SIZE];
        for (int i = 0; i < 5; i++)
                audit(f, "x.y", NULL, NULL, T0 + i * 1000, ids[i]);
        ms_audit_filter flt = { .since = T0 + 1000, .until = T0 + 4000, .limit = 2 };
        ms_audit_event_array l;
        assert_int_equal(ms_audit_event_list(f->s, &flt, &l, &err), 0);
        assert_int_equal(l.n, 2);
        assert_string_equal(l.items[0].id, ids[1]);
        assert_string_equal(l.items[1].id, ids[2]);
        ms_audit_event_array_clear(&l);
        flt.cursor = ids[2];
        assert_int_equal(ms_audit_event_list(f->s, &flt, &l, &err), 0);
        assert_int_equal(l.n, 1);
        assert_string_equal(l.items[0].id, ids[3]);
        ms_audit_event_array_clear(&l);
        ms_audit_filter recent = { .limit = 2, .newest_first = true };
        assert_int_equal(ms_audit_event_list(f->s, &recent, &l, &err), 0);
        assert_string_equal(l.items[0].id, ids[4]);
        assert_string_equal(l.items[1].id, ids[3]);
        ms_audit_event_array_clear(&l);
}

static void test_audit_invalid_severity_rejected(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        ms_audit_new in = { .account_id = f->account, .event_type = "x", .severity = "panic" };
        char id[MS_ID_SIZE];
        assert_int_equal(ms_audit_event_insert(f->s, &in, T0, id, &err), -1);
        assert_true(code_is(&err, ERR_INVALID));
        err_clear(&err);
        in.severity = "critical";
        assert_int_equal(ms_audit_event_insert(f->s, &in, T0, id, &err), 0);
}

/* ---------------------------------------------------------------- retention ---------- */

static void test_log_retention_deletes_old_chunks_in_batches(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        running_directive(f, T0, id);
        for (int i = 0; i < 7; i++)
                assert_int_equal(ms_log_chunk_insert(f->s, id, MS_STREAM_STDOUT, i, "x", 1, false,
                                                     T0 + i * 1000, NULL, &err), 0);
        int64_t deleted = -1;
        /* 5 chunks are older than the cutoff; batches of 2, at most 2 batches */
        assert_int_equal(ms_log_chunk_delete_before(f->s, T0 + 5000, 2, 2, &deleted, &err), 0);
        assert_int_equal(deleted, 4);
        assert_int_equal(ms_log_chunk_delete_before(f->s, T0 + 5000, 2, 10, &deleted, &err), 0);
        assert_int_equal(deleted, 1);
        ms_log_chunk_array l;
        assert_int_equal(ms_log_chunk_list(f->s, id, MS_STREAM_STDOUT, -1, 10, 0, &l, &err), 0);
        assert_int_equal(l.n, 2);
        assert_int_equal(l.items[0].seq, 5);
        ms_log_chunk_array_clear(&l);
        assert_int_equal(ms_log_chunk_delete_before(f->s, T0 + 99000, 0, 10, &deleted, &err), 0);
        assert_int_equal(deleted, 0);
}

static void test_audit_retention_deletes_old_events(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char ids[3][MS_ID_SIZE];
        for (int i = 0; i < 3; i++)
                audit(f, "x.y", NULL, NULL, T0 + i * 1000, ids[i]);
        int64_t deleted = 0;
        assert_int_equal(ms_audit_event_delete_before(f->s, T0 + 2000, 1000, 10, &deleted, &err),
                         0);
        assert_int_equal(deleted, 2);
        ms_audit_filter flt = { .limit = 10 };
        ms_audit_event_array l;
        assert_int_equal(ms_audit_event_list(f->s, &flt, &l, &err), 0);
        assert_int_equal(l.n, 1);
        assert_string_equal(l.items[0].id, ids[2]);
        ms_audit_event_array_clear(&l);
}

/* ---------------------------------------------------------------- concurrency -------- */

typedef struct race {
        fx *f;
        pthread_barrier_t go;
        const char *directive;          /* lease race */
        const char *directives[NTHREADS];       /* lock race: one directive per thread */
        const char *enroll_plain;       /* enrollment race */
        const char *policy;             /* counter race */
        int wins, conflicts, failures;
        pthread_mutex_t mu;
} race;

typedef struct racer {
        race *r;
        int idx;
} racer;

static void tally(race *r, int win, int conflict)
{
        pthread_mutex_lock(&r->mu);
        if (win)
                r->wins++;
        else if (conflict)
                r->conflicts++;
        else
                r->failures++;
        pthread_mutex_unlock(&r->mu);
}

static void *lease_racer(void *p)
{
        racer *me = p;
        race *r = me->r;
        err_t err = ERR_INIT;
        bool changed = false;
        pthread_barrier_wait(&r->go);
        int rc = ms_directive_lease(r->f->s, r->directive, r->f->territory, T0 + 300000, T0,
                                    &changed, &err);
        tally(r, rc == 0 && changed, rc == 0 && !changed);
        return NULL;
}

static void *lock_racer(void *p)
{
        racer *me = p;
        race *r = me->r;
        err_t err = ERR_INIT;
        pthread_barrier_wait(&r->go);
        int rc = ms_facility_lock(r->f->s, r->f->facility, r->directives[me->idx], T0, &err);
        tally(r, rc == 0, rc < 0 && code_is(&err, ERR_CONFLICT));
        return NULL;
}

static void *enroll_racer(void *p)
{
        racer *me = p;
        race *r = me->r;
        err_t err = ERR_INIT;
        ms_enroll_token t;
        pthread_barrier_wait(&r->go);
        int rc = ms_enroll_token_consume(r->f->s, r->enroll_plain, T0 + 1, &t, &err);
        tally(r, rc == 0, rc < 0 && code_is(&err, ERR_CONFLICT));
        if (rc == 0)
                ms_enroll_token_clear(&t);
        return NULL;
}

#define INCREMENTS 20

static int increment_tx(ms_store *s, void *p, err_t *err)
{
        race *r = p;
        ms_policy pol;
        if (ms_policy_get(s, NULL, r->policy, &pol, err) < 0)
                return -1;
        ms_policy_fields upd = { .name = pol.name, .priority = pol.priority + 1 };
        int rc = ms_policy_update(s, r->policy, &upd, T0, err);
        ms_policy_clear(&pol);
        return rc;
}

static void *counter_racer(void *p)
{
        racer *me = p;
        race *r = me->r;
        pthread_barrier_wait(&r->go);
        for (int i = 0; i < INCREMENTS; i++) {
                err_t err = ERR_INIT;
                int rc = ms_store_tx(r->f->s, increment_tx, r, &err);
                tally(r, rc == 0, 0);
        }
        return NULL;
}

static void run_race(race *r, void *(*fn)(void *))
{
        pthread_t th[NTHREADS];
        racer rs[NTHREADS];
        assert_int_equal(pthread_barrier_init(&r->go, NULL, NTHREADS), 0);
        for (int i = 0; i < NTHREADS; i++) {
                rs[i].r = r;
                rs[i].idx = i;
                assert_int_equal(pthread_create(&th[i], NULL, fn, &rs[i]), 0);
        }
        for (int i = 0; i < NTHREADS; i++)
                pthread_join(th[i], NULL);
        pthread_barrier_destroy(&r->go);
}

static void race_init(race *r, fx *f)
{
        memset(r, 0, sizeof(*r));
        r->f = f;
        pthread_mutex_init(&r->mu, NULL);
}

static void test_eight_threads_lease_same_directive_one_wins(void **state)
{
        fx *f = *state;
        char id[MS_ID_SIZE];
        new_directive(f, MS_DIRECTIVE_QUEUED, T0, id);
        race r;
        race_init(&r, f);
        r.directive = id;
        run_race(&r, lease_racer);
        assert_int_equal(r.wins, 1);
        assert_int_equal(r.conflicts, NTHREADS - 1);
        assert_int_equal(r.failures, 0);
        assert_int_equal(state_of(f, id), MS_DIRECTIVE_LEASED);
        pthread_mutex_destroy(&r.mu);
}

static void test_eight_threads_lock_same_facility_one_wins(void **state)
{
        fx *f = *state;
        char ids[NTHREADS][MS_ID_SIZE];
        race r;
        race_init(&r, f);
        for (int i = 0; i < NTHREADS; i++) {
                new_directive(f, MS_DIRECTIVE_QUEUED, T0, ids[i]);
                r.directives[i] = ids[i];
        }
        run_race(&r, lock_racer);
        assert_int_equal(r.wins, 1);
        assert_int_equal(r.conflicts, NTHREADS - 1);
        err_t err = ERR_INIT;
        ms_facility fa;
        assert_int_equal(ms_facility_get(f->s, NULL, f->facility, &fa, &err), 0);
        assert_string_not_equal(fa.locked_by_directive_id, "");
        ms_facility_clear(&fa);
        pthread_mutex_destroy(&r.mu);
}

static void test_eight_threads_consume_same_enrollment_token_one_wins(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE], plain[MS_ENROLL_TOKEN_SIZE];
        assert_int_equal(ms_enroll_token_create(f->s, f->account, f->user, NULL, 600, T0, id,
                                                plain, &err), 0);
        race r;
        race_init(&r, f);
        r.enroll_plain = plain;
        run_race(&r, enroll_racer);
        assert_int_equal(r.wins, 1);
        assert_int_equal(r.conflicts, NTHREADS - 1);
        pthread_mutex_destroy(&r.mu);
}

static void test_eight_threads_read_modify_write_transactions_serialize(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char pid[MS_ID_SIZE];
        ms_policy_fields pf = { .name = "counter" };
        assert_int_equal(ms_policy_create(f->s, &pf, T0, pid, &err), 0);
        race r;
        race_init(&r, f);
        r.policy = pid;
        run_race(&r, counter_racer);
        assert_int_equal(r.failures, 0);
        assert_int_equal(r.wins, NTHREADS * INCREMENTS);
        ms_policy p;
        assert_int_equal(ms_policy_get(f->s, NULL, pid, &p, &err), 0);
        assert_int_equal(p.priority, NTHREADS * INCREMENTS);
        ms_policy_clear(&p);
        /* every worker's connection was closed when its thread exited */
        pthread_mutex_lock(&f->s->mu);
        int open = 0;
        for (ms_conn *c = f->s->conns; c; c = c->next)
                open++;
        pthread_mutex_unlock(&f->s->mu);
        assert_int_equal(open, 1);
        pthread_mutex_destroy(&r.mu);
}

static void test_thread_release_reopens_lazily(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        ms_store_thread_release(f->s);
        assert_null(f->s->conns);
        ms_account a;
        assert_int_equal(ms_account_get(f->s, f->account, &a, &err), 0);
        ms_account_clear(&a);
        assert_non_null(f->s->conns);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
                T(test_directive_insert_roundtrip),
                T(test_directive_insert_refuses_non_initial_state),
                T(test_directive_get_scoped_to_account_and_facility),
                T(test_directive_list_pages_by_id),
                T(test_directive_list_newest_first),
                T(test_directive_list_filters_state_and_territory),
                T(test_directive_count_by_state),
                T(test_transition_guard_holds_once),
                T(test_transition_refuses_pairs_outside_state_machine),
                T(test_transition_refuses_events_with_side_effects),
                T(test_transition_unknown_directive_not_found),
                T(test_invalid_state_rejected_by_check),
                T(test_lease_sets_territory_and_expiry),
                T(test_lease_unknown_territory_not_found),
                T(test_expire_lease_requeues_and_releases_lock),
                T(test_expire_lease_keeps_other_directives_lock),
                T(test_expire_lease_rechecks_expiry),
                T(test_list_expired_leases_oldest_first),
                T(test_list_claimable_filters_profile_and_account),
                T(test_renew_lease_only_while_running),
                T(test_force_lease_expiry_moves_expiry_of_leased),
                T(test_force_lease_expiry_moves_expiry_of_running),
                T(test_force_lease_expiry_guarded_on_state),
                T(test_force_lease_expiry_unknown_directive_not_found),
                T(test_approve_sets_approver),
                T(test_decide_approve_records_reason_and_time),
                T(test_decide_reject_is_terminal_and_records_rejecter),
                T(test_decide_refuses_overlong_reason),
                T(test_hold_for_approval_only_queued_and_withdraws_approval),
                T(test_started_at_set_by_start_only),
                T(test_request_cancel_sets_flag_once),
                T(test_fill_versions_only_where_null),
                T(test_add_output_counts_bytes_and_monotonic_flags),
                T(test_finish_applies_report_once),
                T(test_finish_exit_code_absent_keeps_null_sets_null),
                T(test_set_result_hash_only_when_null),
                T(test_set_effective_replaces_capabilities),
                T(test_log_chunk_stored_then_duplicate_same),
                T(test_log_chunk_duplicate_different_keeps_original),
                T(test_log_chunk_list_after_seq_and_limit),
                T(test_log_chunk_list_both_streams_by_seq),
                T(test_log_chunk_list_respects_byte_cap),
                T(test_log_chunk_refuses_empty_and_bad_seq),
                T(test_log_chunk_unique_enforced_by_schema),
                T(test_audit_insert_and_filter),
                T(test_audit_time_range_and_cursor),
                T(test_audit_invalid_severity_rejected),
                T(test_log_retention_deletes_old_chunks_in_batches),
                T(test_audit_retention_deletes_old_events),
                T(test_eight_threads_lease_same_directive_one_wins),
                T(test_eight_threads_lock_same_facility_one_wins),
                T(test_eight_threads_consume_same_enrollment_token_one_wins),
                T(test_eight_threads_read_modify_write_transactions_serialize),
                T(test_thread_release_reopens_lazily),
#undef T
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
