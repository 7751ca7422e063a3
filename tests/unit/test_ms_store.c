/* test_ms_store.c — the mothership store: lifecycle, migrations, transactions, accounts,
 * users, API tokens, enrollment tokens, territories, facilities and policies (SQLite
 * backend, a fresh temporary data dir per test). */
#include "testutil.h"

#include <fcntl.h>
#include <ftw.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/str.h"
#include "store/store.h"
#include "store/store_internal.h"

#define T0 1772202622000LL      /* 2026-02-27T14:30:22.000Z */

typedef struct fx {
        char dir[64];
        ms_store *s;
        char account[MS_ID_SIZE];
        char user[MS_ID_SIZE];
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
        sqlite3_exec(db, "PRAGMA foreign_keys=ON", NULL, NULL, NULL);
        return db;
}

/* True if any file in the data dir contains needle. */
static bool data_dir_contains(fx *f, const char *needle)
{
        static const char *const files[] = { MS_DB_FILE, MS_DB_FILE "-wal", MS_DB_FILE "-shm" };
        for (size_t i = 0; i < 3; i++) {
                char path[128];
                assert_true(str_printf(path, sizeof(path), "%s/%s", f->dir, files[i]) > 0);
                FILE *fp = fopen(path, "rb");
                if (!fp)
                        continue;
                size_t cap = 1 << 20, n = 0;
                char *buf = malloc(cap);
                assert_non_null(buf);
                size_t r;
                while ((r = fread(buf + n, 1, cap - n, fp)) > 0) {
                        n += r;
                        if (n == cap) {
                                cap *= 2;
                                buf = realloc(buf, cap);
                                assert_non_null(buf);
                        }
                }
                fclose(fp);
                bool found = memmem(buf, n, needle, strlen(needle)) != NULL;
                free(buf);
                if (found)
                        return true;
        }
        return false;
}

static void make_territory(fx *f, const char *name, const char *fp, char id[MS_ID_SIZE])
{
        err_t err = ERR_INIT;
        ms_territory_new in = { .account_id = f->account, .name = name,
                                .client_cert_fingerprint = fp };
        assert_int_equal(ms_territory_create(f->s, &in, T0, id, &err), 0);
}

/* ---------------------------------------------------------------- lifecycle ---------- */

static void test_open_creates_private_db_file(void **state)
{
        fx *f = *state;
        char path[128];
        assert_true(str_printf(path, sizeof(path), "%s/%s", f->dir, MS_DB_FILE) > 0);
        struct stat sb;
        assert_int_equal(stat(path, &sb), 0);
        assert_int_equal(sb.st_mode & 0777, 0600);
        assert_true(str_printf(path, sizeof(path), "%s/blobs", f->dir) > 0);
        assert_int_equal(stat(path, &sb), 0);
        assert_true(S_ISDIR(sb.st_mode));
        assert_int_equal(sb.st_mode & 0777, 0700);
}

static void test_open_creates_missing_data_dir(void **state)
{
        fx *f = *state;
        char sub[128];
        assert_true(str_printf(sub, sizeof(sub), "%s/new", f->dir) > 0);
        err_t err = ERR_INIT;
        ms_store *s2 = NULL;
        assert_int_equal(ms_store_open(sub, NULL, &s2, &err), 0);
        struct stat sb;
        assert_int_equal(stat(sub, &sb), 0);
        assert_int_equal(sb.st_mode & 0777, 0700);
        ms_store_close(s2);
}

static void test_open_empty_data_dir_refused(void **state)
{
        (void)state;
        err_t err = ERR_INIT;
        ms_store *s2 = NULL;
        assert_int_equal(ms_store_open("", NULL, &s2, &err), -1);
        assert_null(s2);
        assert_true(code_is(&err, ERR_INVALID));
}

static void test_migrations_idempotent_on_reopen(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        int v = 0;
        assert_int_equal(ms_store_schema_version(f->s, &v, &err), 0);
        assert_int_equal(v, ms_store_latest_schema_version());
        ms_store_close(f->s);
        f->s = NULL;
        assert_int_equal(ms_store_open(f->dir, NULL, &f->s, &err), 0);
        /* data survived and migrations were not re-run (they would fail on CREATE TABLE) */
        ms_account a;
        assert_int_equal(ms_account_get(f->s, f->account, &a, &err), 0);
        assert_string_equal(a.name, "acme");
        ms_account_clear(&a);
        sqlite3 *db = raw_db(f);
        sqlite3_stmt *st;
        assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM schema_migrations", -1,
                                            &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(st, 0), ms_store_latest_schema_version());
        sqlite3_finalize(st);
        sqlite3_close(db);
}

static void test_migrate_alone_reports_applied_count(void **state)
{
        fx *f = *state;
        char sub[128];
        assert_true(str_printf(sub, sizeof(sub), "%s/fresh", f->dir) > 0);
        err_t err = ERR_INIT;
        int applied = -1;
        assert_int_equal(ms_store_migrate(sub, &applied, &err), 0);
        assert_int_equal(applied, ms_store_latest_schema_version());
        assert_int_equal(ms_store_migrate(sub, &applied, &err), 0);
        assert_int_equal(applied, 0);
}

static void test_open_refuses_newer_schema(void **state)
{
        fx *f = *state;
        sqlite3 *db = raw_db(f);
        assert_int_equal(sqlite3_exec(db, "INSERT INTO schema_migrations VALUES "
                                      "(9999, 'future', '2030-01-01T00:00:00.000Z')",
                                      NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
        ms_store_close(f->s);
        f->s = NULL;
        err_t err = ERR_INIT;
        assert_int_equal(ms_store_open(f->dir, NULL, &f->s, &err), -1);
        assert_null(f->s);
        assert_true(code_is(&err, ERR_CONFLICT));
        assert_non_null(strstr(err.msg, "9999"));
}

static void test_database_uses_wal_and_foreign_keys(void **state)
{
        fx *f = *state;
        sqlite3 *db = raw_db(f);
        sqlite3_stmt *st;
        assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
        sqlite3_finalize(st);
        sqlite3_close(db);
        /* the store's own connection refuses a dangling reference */
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        assert_int_equal(ms_user_create(f->s, "01890000-0000-7000-8000-000000000000", "bob", T0,
                                        id, &err), -1);
        assert_true(code_is(&err, ERR_NOT_FOUND));
}

/* ---------------------------------------------------------------- transactions ------- */

typedef struct tx_ctx {
        const char *name;
        int result;
        char id[MS_ID_SIZE];
} tx_ctx;

static int tx_create_account(ms_store *s, void *p, err_t *err)
{
        tx_ctx *ctx = p;
        if (ms_account_create(s, ctx->name, T0, ctx->id, err) < 0)
                return -1;
        if (ctx->result < 0)
                return err_set(err, "caller chose to fail");
        return ctx->result;
}

static void test_tx_commits_on_success(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        tx_ctx ctx = { "kept", 7, { 0 } };
        assert_int_equal(ms_store_tx(f->s, tx_create_account, &ctx, &err), 7);
        ms_account a;
        assert_int_equal(ms_account_get(f->s, ctx.id, &a, &err), 0);
        ms_account_clear(&a);
}

static void test_tx_rolls_back_on_failure(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        tx_ctx ctx = { "dropped", -1, { 0 } };
        assert_int_equal(ms_store_tx(f->s, tx_create_account, &ctx, &err), -1);
        assert_string_equal(err.msg, "caller chose to fail");
        err_clear(&err);
        ms_account a;
        assert_int_equal(ms_account_get(f->s, ctx.id, &a, &err), -1);
        assert_true(code_is(&err, ERR_NOT_FOUND));
}

typedef struct nested_ctx {
        tx_ctx inner;
        char outer_id[MS_ID_SIZE];
        int inner_rc;
} nested_ctx;

static int tx_outer(ms_store *s, void *p, err_t *err)
{
        nested_ctx *ctx = p;
        if (ms_account_create(s, "outer", T0, ctx->outer_id, err) < 0)
                return -1;
        err_t inner_err = ERR_INIT;
        ctx->inner_rc = ms_store_tx(s, tx_create_account, &ctx->inner, &inner_err);
        return 0;       /* the outer transaction carries on after the inner failure */
}

static void test_tx_nested_failure_undoes_only_inner(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        nested_ctx ctx = { { "inner", -1, { 0 } }, { 0 }, 0 };
        assert_int_equal(ms_store_tx(f->s, tx_outer, &ctx, &err), 0);
        assert_int_equal(ctx.inner_rc, -1);
        ms_account a;
        assert_int_equal(ms_account_get(f->s, ctx.outer_id, &a, &err), 0);
        ms_account_clear(&a);
        assert_int_equal(ms_account_get(f->s, ctx.inner.id, &a, &err), -1);
}

/* ---------------------------------------------------------------- accounts, users ---- */

static void test_account_create_and_get(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        ms_account a;
        assert_int_equal(ms_account_get(f->s, f->account, &a, &err), 0);
        assert_string_equal(a.id, f->account);
        assert_string_equal(a.name, "acme");
        assert_int_equal(a.created_at, T0);
        assert_int_equal(a.updated_at, T0);
        ms_account_clear(&a);
        assert_null(a.name);
}

static void test_account_blank_name_rejected(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        assert_int_equal(ms_account_create(f->s, "   ", T0, NULL, &err), -1);
        assert_true(code_is(&err, ERR_INVALID));
}

static void test_account_unknown_or_malformed_id_not_found(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        ms_account a;
        assert_int_equal(ms_account_get(f->s, "01890000-0000-7000-8000-000000000000", &a, &err),
                         -1);
        assert_true(code_is(&err, ERR_NOT_FOUND));
        err_clear(&err);
        assert_int_equal(ms_account_get(f->s, "../../etc/passwd", &a, &err), -1);
        assert_true(code_is(&err, ERR_NOT_FOUND));
}

static void test_user_without_account(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        assert_int_equal(ms_user_create(f->s, NULL, NULL, T0, id, &err), 0);
        ms_user u;
        assert_int_equal(ms_user_get(f->s, id, &u, &err), 0);
        assert_string_equal(u.account_id, "");
        assert_null(u.name);
        ms_user_clear(&u);
        assert_int_equal(ms_user_get(f->s, f->user, &u, &err), 0);
        assert_string_equal(u.account_id, f->account);
        assert_string_equal(u.name, "alice");
        ms_user_clear(&u);
}

/* ---------------------------------------------------------------- API tokens --------- */

static void test_api_token_authenticates_user_and_account(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE], plain[MS_API_TOKEN_SIZE];
        assert_int_equal(ms_api_token_create(f->s, f->user, "ci", T0, id, plain, &err), 0);
        assert_int_equal(strlen(plain), 64);
        ms_user u;
        char tid[MS_ID_SIZE];
        assert_int_equal(ms_api_token_authenticate(f->s, plain, T0 + 1, &u, tid, &err), 0);
        assert_string_equal(u.id, f->user);
        assert_string_equal(u.account_id, f->account);
        assert_string_equal(tid, id);
        ms_user_clear(&u);
}

static void test_api_token_unknown_unauthorized(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        ms_user u;
        assert_int_equal(ms_api_token_authenticate(f->s, "deadbeef", T0, &u, NULL, &err), -1);
        assert_true(code_is(&err, ERR_UNAUTHORIZED));
        err_clear(&err);
        assert_int_equal(ms_api_token_authenticate(f->s, "", T0, &u, NULL, &err), -1);
        assert_true(code_is(&err, ERR_UNAUTHORIZED));
}

static void test_api_token_revoked_unauthorized(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE], plain[MS_API_TOKEN_SIZE];
        assert_int_equal(ms_api_token_create(f->s, f->user, NULL, T0, id, plain, &err), 0);
        assert_int_equal(ms_api_token_revoke(f->s, id, T0 + 5, &err), 0);
        ms_user u;
        assert_int_equal(ms_api_token_authenticate(f->s, plain, T0 + 6, &u, NULL, &err), -1);
        assert_true(code_is(&err, ERR_UNAUTHORIZED));
        assert_non_null(strstr(err.msg, "revoked"));
        ms_api_token t;
        assert_int_equal(ms_api_token_get(f->s, id, &t, &err), 0);
        assert_int_equal(t.revoked_at, T0 + 5);
        ms_api_token_clear(&t);
        err_clear(&err);
        assert_int_equal(ms_api_token_revoke(f->s, "01890000-0000-7000-8000-000000000000", T0,
                                             &err), -1);
        assert_true(code_is(&err, ERR_NOT_FOUND));
}

static void test_api_token_plaintext_never_stored(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE], plain[MS_API_TOKEN_SIZE];
        assert_int_equal(ms_api_token_create(f->s, f->user, "scan", T0, id, plain, &err), 0);
        ms_api_token t;
        assert_int_equal(ms_api_token_get(f->s, id, &t, &err), 0);
        ms_api_token_clear(&t);
        ms_store_close(f->s);      /* flush everything to the files */
        f->s = NULL;
        assert_false(data_dir_contains(f, plain));
        /* the scan does see stored text: the token's id is there */
        assert_true(data_dir_contains(f, id));
        assert_int_equal(ms_store_open(f->dir, NULL, &f->s, &err), 0);
}

static void test_api_token_last_used_throttled(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE], plain[MS_API_TOKEN_SIZE];
        assert_int_equal(ms_api_token_create(f->s, f->user, NULL, T0, id, plain, &err), 0);
        ms_user u;
        assert_int_equal(ms_api_token_authenticate(f->s, plain, T0 + 1000, &u, NULL, &err), 0);
        ms_user_clear(&u);
        assert_int_equal(ms_api_token_authenticate(f->s, plain, T0 + 2000, &u, NULL, &err), 0);
        ms_user_clear(&u);
        ms_api_token t;
        assert_int_equal(ms_api_token_get(f->s, id, &t, &err), 0);
        assert_int_equal(t.last_used_at, T0 + 1000);
        ms_api_token_clear(&t);
        assert_int_equal(ms_api_token_authenticate(f->s, plain, T0 + 120000, &u, NULL, &err), 0);
        ms_user_clear(&u);
        assert_int_equal(ms_api_token_get(f->s, id, &t, &err), 0);
        assert_int_equal(t.last_used_at, T0 + 120000);
        ms_api_token_clear(&t);
}

/* ---------------------------------------------------------------- enrollment tokens -- */

static void make_enroll(fx *f, int64_t ttl, char id[MS_ID_SIZE],
                        char plain[MS_ENROLL_TOKEN_SIZE])
{
        err_t err = ERR_INIT;
        json_t *labels = json_pack("{s:s}", "site", "lab");
        assert_int_equal(ms_enroll_token_create(f->s, f->account, f->user, labels, ttl, T0, id,
                                                plain, &err), 0);
        json_decref(labels);
}

static void test_enroll_consume_returns_account_and_labels(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE], plain[MS_ENROLL_TOKEN_SIZE];
        make_enroll(f, 600, id, plain);
        assert_int_equal(strlen(plain), 43);
        ms_enroll_token t;
        assert_int_equal(ms_enroll_token_consume(f->s, plain, T0 + 1, &t, &err), 0);
        assert_string_equal(t.id, id);
        assert_string_equal(t.account_id, f->account);
        assert_string_equal(json_string_value(json_object_get(t.labels, "site")), "lab");
        assert_int_equal(t.used_at, T0 + 1);
        ms_enroll_token_clear(&t);
}

static void test_enroll_second_consume_conflicts(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE], plain[MS_ENROLL_TOKEN_SIZE];
        make_enroll(f, 600, id, plain);
        ms_enroll_token t;
        assert_int_equal(ms_enroll_token_consume(f->s, plain, T0 + 1, &t, &err), 0);
        ms_enroll_token_clear(&t);
        assert_int_equal(ms_enroll_token_consume(f->s, plain, T0 + 2, &t, &err), -1);
        assert_true(code_is(&err, ERR_CONFLICT));
        assert_int_equal(ms_enroll_token_get(f->s, id, &t, &err), 0);
        assert_int_equal(t.used_at, T0 + 1);
        ms_enroll_token_clear(&t);
}

static void test_enroll_revoked_token_forbidden(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE], plain[MS_ENROLL_TOKEN_SIZE];
        make_enroll(f, 600, id, plain);
        assert_int_equal(ms_enroll_token_revoke(f->s, id, T0 + 1, &err), 0);
        ms_enroll_token t;
        assert_int_equal(ms_enroll_token_consume(f->s, plain, T0 + 2, &t, &err), -1);
        assert_true(code_is(&err, ERR_FORBIDDEN));
        assert_int_equal(ms_enroll_token_get(f->s, id, &t, &err), 0);
        assert_int_equal(t.used_at, 0);
        ms_enroll_token_clear(&t);
}

static void test_enroll_expiry_is_strict(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE], plain[MS_ENROLL_TOKEN_SIZE];
        make_enroll(f, 60, id, plain);
        ms_enroll_token t;
        /* usable iff now < expires_at (spec §0.4) */
        assert_int_equal(ms_enroll_token_consume(f->s, plain, T0 + 60000, &t, &err), -1);
        assert_true(code_is(&err, ERR_EXPIRED));
        err_clear(&err);
        assert_int_equal(ms_enroll_token_consume(f->s, plain, T0 + 59999, &t, &err), 0);
        ms_enroll_token_clear(&t);
}

static void test_enroll_unknown_token_not_found(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        ms_enroll_token t;
        assert_int_equal(ms_enroll_token_consume(f->s, "nope", T0, &t, &err), -1);
        assert_true(code_is(&err, ERR_NOT_FOUND));
}

static void test_enroll_default_ttl_is_one_hour(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE], plain[MS_ENROLL_TOKEN_SIZE];
        make_enroll(f, 0, id, plain);
        ms_enroll_token t;
        assert_int_equal(ms_enroll_token_get(f->s, id, &t, &err), 0);
        assert_int_equal(t.expires_at, T0 + 3600 * 1000);
        ms_enroll_token_clear(&t);
}

static void test_enroll_plaintext_never_stored(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE], plain[MS_ENROLL_TOKEN_SIZE];
        make_enroll(f, 600, id, plain);
        ms_store_close(f->s);
        f->s = NULL;
        assert_false(data_dir_contains(f, plain));
        assert_true(data_dir_contains(f, id));
        assert_int_equal(ms_store_open(f->dir, NULL, &f->s, &err), 0);
}

typedef struct enroll_tx_ctx {
        const char *plain;
        char territory[MS_ID_SIZE];
} enroll_tx_ctx;

static int tx_enroll_then_fail(ms_store *s, void *p, err_t *err)
{
        enroll_tx_ctx *ctx = p;
        ms_enroll_token t;
        if (ms_enroll_token_consume(s, ctx->plain, T0 + 1, &t, err) < 0)
                return -1;
        ms_territory_new in = { .account_id = t.account_id, .name = "n1" };
        int r = ms_territory_create(s, &in, T0 + 1, ctx->territory, err);
        ms_enroll_token_clear(&t);
        if (r < 0)
                return -1;
        return err_set(err, "certificate issuance failed");
}

static void test_enroll_rolled_back_leaves_token_usable(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE], plain[MS_ENROLL_TOKEN_SIZE];
        make_enroll(f, 600, id, plain);
        enroll_tx_ctx ctx = { plain, { 0 } };
        assert_int_equal(ms_store_tx(f->s, tx_enroll_then_fail, &ctx, &err), -1);
        err_clear(&err);
        ms_territory t;
        assert_int_equal(ms_territory_get(f->s, ctx.territory, &t, &err), -1);
        assert_true(code_is(&err, ERR_NOT_FOUND));
        ms_enroll_token et;
        assert_int_equal(ms_enroll_token_consume(f->s, plain, T0 + 2, &et, &err), 0);
        ms_enroll_token_clear(&et);
}

/* ---------------------------------------------------------------- territories -------- */

static void test_territory_created_online_with_defaults(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        make_territory(f, "n1", NULL, id);
        ms_territory t;
        assert_int_equal(ms_territory_get(f->s, id, &t, &err), 0);
        assert_int_equal(t.status, MS_TERRITORY_ONLINE);
        assert_string_equal(t.kind, "server");
        assert_string_equal(t.account_id, f->account);
        assert_true(json_is_array(t.tags) && json_array_size(t.tags) == 0);
        assert_true(json_is_array(t.capabilities));
        assert_true(json_is_object(t.labels) && json_object_size(t.labels) == 0);
        assert_true(json_is_object(t.capacity));
        assert_string_equal(t.client_cert_fingerprint, "");
        assert_int_equal(t.last_heartbeat_at, 0);
        assert_null(t.platform);
        ms_territory_clear(&t);
}

static void test_territory_invalid_kind_rejected_by_check(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        ms_territory_new in = { .account_id = f->account, .name = "x", .kind = "toaster" };
        char id[MS_ID_SIZE];
        assert_int_equal(ms_territory_create(f->s, &in, T0, id, &err), -1);
        assert_true(code_is(&err, ERR_INVALID));
        assert_non_null(strstr(err.msg, "CHECK"));
}

static void test_territory_duplicate_fingerprint_conflicts(void **state)
{
        fx *f = *state;
        const char *fp = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        char id[MS_ID_SIZE], id2[MS_ID_SIZE];
        make_territory(f, "n1", fp, id);
        err_t err = ERR_INIT;
        ms_territory_new in = { .account_id = f->account, .name = "n2",
                                .client_cert_fingerprint = fp };
        assert_int_equal(ms_territory_create(f->s, &in, T0, id2, &err), -1);
        assert_true(code_is(&err, ERR_CONFLICT));
        /* two territories without a fingerprint are fine (unique among non-null only) */
        make_territory(f, "n3", NULL, id2);
        make_territory(f, "n4", NULL, id2);
        err_clear(&err);
        assert_int_equal(ms_territory_set_fingerprint(f->s, id2, fp, T0, &err), -1);
        assert_true(code_is(&err, ERR_CONFLICT));
}

static void test_territory_found_by_fingerprint_any_case(void **state)
{
        fx *f = *state;
        char id[MS_ID_SIZE];
        make_territory(f, "n1", NULL, id);
        err_t err = ERR_INIT;
        assert_int_equal(ms_territory_set_fingerprint(f->s, id,
                "ABCDEF0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789", T0, &err), 0);
        ms_territory t;
        assert_int_equal(ms_territory_get_by_fingerprint(f->s,
                "abcdef0123456789ABCDEF0123456789abcdef0123456789ABCDEF0123456789", &t, &err), 0);
        assert_string_equal(t.id, id);
        assert_string_equal(t.client_cert_fingerprint,
                "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
        ms_territory_clear(&t);
        assert_int_equal(ms_territory_get_by_fingerprint(f->s, "abc", &t, &err), -1);
        assert_true(code_is(&err, ERR_NOT_FOUND));
}

static void test_territory_heartbeat_replaces_given_fields_only(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        json_t *labels = json_pack("{s:s}", "a", "b");
        ms_territory_new in = { .account_id = f->account, .name = "n1", .labels = labels };
        assert_int_equal(ms_territory_create(f->s, &in, T0, id, &err), 0);
        json_t *cap = json_pack("{s:i}", "max_concurrent", 3);
        ms_territory_heartbeat hb = { .nexus_version = "1.2.3", .capacity = cap };
        ms_territory t;
        assert_int_equal(ms_territory_record_heartbeat(f->s, id, &hb, T0 + 500, &t, &err), 0);
        assert_string_equal(t.nexus_version, "1.2.3");
        assert_int_equal(json_integer_value(json_object_get(t.capacity, "max_concurrent")), 3);
        assert_string_equal(json_string_value(json_object_get(t.labels, "a")), "b");
        assert_int_equal(t.last_heartbeat_at, T0 + 500);
        assert_int_equal(t.updated_at, T0 + 500);
        ms_territory_clear(&t);
        json_decref(cap);
        json_decref(labels);
        json_t *bad = json_pack("[]");
        ms_territory_heartbeat hb2 = { .labels = bad };
        assert_int_equal(ms_territory_record_heartbeat(f->s, id, &hb2, T0, NULL, &err), -1);
        assert_true(code_is(&err, ERR_INVALID));
        json_decref(bad);
}

static void test_territory_heartbeat_brings_offline_online(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        make_territory(f, "n1", NULL, id);
        assert_int_equal(ms_territory_set_status(f->s, id, MS_TERRITORY_OFFLINE, T0, &err), 0);
        ms_territory_heartbeat hb = { 0 };
        ms_territory t;
        assert_int_equal(ms_territory_record_heartbeat(f->s, id, &hb, T0 + 1, &t, &err), 0);
        assert_int_equal(t.status, MS_TERRITORY_ONLINE);
        ms_territory_clear(&t);
}

static void test_territory_heartbeat_keeps_decommissioned(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        make_territory(f, "n1", NULL, id);
        assert_int_equal(ms_territory_set_status(f->s, id, MS_TERRITORY_DECOMMISSIONED, T0, &err),
                         0);
        ms_territory_heartbeat hb = { 0 };
        ms_territory t;
        assert_int_equal(ms_territory_record_heartbeat(f->s, id, &hb, T0 + 1, &t, &err), 0);
        assert_int_equal(t.status, MS_TERRITORY_DECOMMISSIONED);
        assert_int_equal(t.last_heartbeat_at, T0 + 1);
        ms_territory_clear(&t);
}

static void test_territory_invalid_transition_conflicts(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        make_territory(f, "n1", NULL, id);
        assert_int_equal(ms_territory_set_status(f->s, id, MS_TERRITORY_PENDING, T0, &err), -1);
        assert_true(code_is(&err, ERR_CONFLICT));
        err_clear(&err);
        assert_int_equal(ms_territory_set_status(f->s, id, MS_TERRITORY_DECOMMISSIONED, T0, &err),
                         0);
        assert_int_equal(ms_territory_set_status(f->s, id, MS_TERRITORY_ONLINE, T0, &err), -1);
        assert_true(code_is(&err, ERR_CONFLICT));
        ms_territory t;
        assert_int_equal(ms_territory_get(f->s, id, &t, &err), 0);
        assert_int_equal(t.status, MS_TERRITORY_DECOMMISSIONED);
        ms_territory_clear(&t);
}

static void test_territory_admin_fields_update_selected_only(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        make_territory(f, "n1", NULL, id);
        json_t *caps = json_pack("[s]", "camera.snap");
        ms_territory_admin a = { .set = MS_TERRITORY_SET_LOCATION | MS_TERRITORY_SET_CAPABILITIES |
                                        MS_TERRITORY_SET_WEBSOCKET,
                                 .location = "home/living-room", .capabilities = caps,
                                 .websocket_connected_at = T0 + 9,
                                 .push_platform = "apns" /* not selected: ignored */ };
        assert_int_equal(ms_territory_update_admin(f->s, id, &a, T0 + 10, &err), 0);
        ms_territory t;
        assert_int_equal(ms_territory_get(f->s, id, &t, &err), 0);
        assert_string_equal(t.location, "home/living-room");
        assert_string_equal(json_string_value(json_array_get(t.capabilities, 0)), "camera.snap");
        assert_int_equal(t.websocket_connected_at, T0 + 9);
        assert_null(t.push_platform);
        ms_territory_clear(&t);
        json_decref(caps);
        ms_territory_admin bad = { .set = MS_TERRITORY_SET_PUSH, .push_platform = "pager" };
        assert_int_equal(ms_territory_update_admin(f->s, id, &bad, T0, &err), -1);
        assert_true(code_is(&err, ERR_INVALID));
}

static void test_territory_stale_listed_and_marked_offline_guarded(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char a[MS_ID_SIZE], b[MS_ID_SIZE];
        make_territory(f, "a", NULL, a);
        make_territory(f, "b", NULL, b);
        ms_territory_heartbeat hb = { 0 };
        assert_int_equal(ms_territory_record_heartbeat(f->s, a, &hb, T0 + 1000, NULL, &err), 0);
        assert_int_equal(ms_territory_record_heartbeat(f->s, b, &hb, T0 + 90000, NULL, &err), 0);
        ms_territory_array l;
        assert_int_equal(ms_territory_list_stale(f->s, T0 + 60000, 10, &l, &err), 0);
        assert_int_equal(l.n, 1);
        assert_string_equal(l.items[0].id, a);
        ms_territory_array_clear(&l);
        /* a heartbeat arrives between the listing and the update: the guard keeps it online */
        assert_int_equal(ms_territory_record_heartbeat(f->s, a, &hb, T0 + 95000, NULL, &err), 0);
        bool changed = true;
        assert_int_equal(ms_territory_mark_offline(f->s, a, T0 + 60000, T0 + 96000, &changed,
                                                   &err), 0);
        assert_false(changed);
        assert_int_equal(ms_territory_mark_offline(f->s, a, T0 + 100000, T0 + 101000, &changed,
                                                   &err), 0);
        assert_true(changed);
        ms_territory t;
        assert_int_equal(ms_territory_get(f->s, a, &t, &err), 0);
        assert_int_equal(t.status, MS_TERRITORY_OFFLINE);
        ms_territory_clear(&t);
}

static void test_territory_list_by_account(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char a[MS_ID_SIZE], b[MS_ID_SIZE], other_acc[MS_ID_SIZE], c[MS_ID_SIZE];
        make_territory(f, "a", NULL, a);
        make_territory(f, "b", NULL, b);
        assert_int_equal(ms_account_create(f->s, "other", T0, other_acc, &err), 0);
        ms_territory_new in = { .account_id = other_acc, .name = "c" };
        assert_int_equal(ms_territory_create(f->s, &in, T0, c, &err), 0);
        ms_territory_array l;
        assert_int_equal(ms_territory_list_by_account(f->s, f->account, &l, &err), 0);
        assert_int_equal(l.n, 2);
        assert_string_equal(l.items[0].id, a);
        assert_string_equal(l.items[1].id, b);
        ms_territory_array_clear(&l);
}

/* ---------------------------------------------------------------- facilities --------- */

static void make_facility(fx *f, const char *territory, char id[MS_ID_SIZE])
{
        err_t err = ERR_INIT;
        json_t *rp = json_string("keep_last_5");
        ms_facility_new in = { .account_id = f->account, .owner_id = f->user,
                               .territory_id = territory, .kind = "repo",
                               .repo_url = "https://example.invalid/r.git",
                               .retention_policy = rp };
        assert_int_equal(ms_facility_create(f->s, &in, T0, id, &err), 0);
        json_decref(rp);
}

static void test_facility_get_is_account_scoped(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char t[MS_ID_SIZE], id[MS_ID_SIZE], other[MS_ID_SIZE];
        make_territory(f, "n1", NULL, t);
        make_facility(f, t, id);
        ms_facility fa;
        assert_int_equal(ms_facility_get(f->s, f->account, id, &fa, &err), 0);
        assert_string_equal(fa.kind, "repo");
        assert_string_equal(fa.territory_id, t);
        assert_string_equal(fa.owner_id, f->user);
        assert_string_equal(json_string_value(fa.retention_policy), "keep_last_5");
        assert_string_equal(fa.locked_by_directive_id, "");
        assert_int_equal(fa.size_bytes, 0);
        ms_facility_clear(&fa);
        assert_int_equal(ms_account_create(f->s, "other", T0, other, &err), 0);
        assert_int_equal(ms_facility_get(f->s, other, id, &fa, &err), -1);
        assert_true(code_is(&err, ERR_NOT_FOUND));
        err_clear(&err);
        assert_int_equal(ms_facility_get(f->s, NULL, id, &fa, &err), 0);
        ms_facility_clear(&fa);
}

static void test_facility_kind_checked_and_owner_required(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char t[MS_ID_SIZE], id[MS_ID_SIZE];
        make_territory(f, "n1", NULL, t);
        json_t *rp = json_object();
        ms_facility_new in = { .account_id = f->account, .owner_id = f->user, .territory_id = t,
                               .kind = "cloud", .retention_policy = rp };
        assert_int_equal(ms_facility_create(f->s, &in, T0, id, &err), -1);
        assert_true(code_is(&err, ERR_INVALID));
        err_clear(&err);
        in.kind = "empty";
        in.owner_id = "01890000-0000-7000-8000-000000000000";
        assert_int_equal(ms_facility_create(f->s, &in, T0, id, &err), -1);
        assert_true(code_is(&err, ERR_NOT_FOUND));
        json_decref(rp);
}

static void test_facility_list_by_account(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char t[MS_ID_SIZE], a[MS_ID_SIZE], b[MS_ID_SIZE];
        make_territory(f, "n1", NULL, t);
        make_facility(f, t, a);
        make_facility(f, t, b);
        ms_facility_array l;
        assert_int_equal(ms_facility_list(f->s, f->account, &l, &err), 0);
        assert_int_equal(l.n, 2);
        assert_string_equal(l.items[0].id, a);
        assert_string_equal(l.items[1].id, b);
        ms_facility_array_clear(&l);
}

static void test_facility_lock_idempotent_and_exclusive(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char t[MS_ID_SIZE], id[MS_ID_SIZE];
        make_territory(f, "n1", NULL, t);
        make_facility(f, t, id);
        const char *d1 = "01890000-0000-7000-8000-000000000001";
        const char *d2 = "01890000-0000-7000-8000-000000000002";
        assert_int_equal(ms_facility_lock(f->s, id, d1, T0, &err), 0);
        assert_int_equal(ms_facility_lock(f->s, id, d1, T0, &err), 0);
        assert_int_equal(ms_facility_lock(f->s, id, d2, T0, &err), -1);
        assert_true(code_is(&err, ERR_CONFLICT));
        ms_facility fa;
        assert_int_equal(ms_facility_get(f->s, NULL, id, &fa, &err), 0);
        assert_string_equal(fa.locked_by_directive_id, d1);
        ms_facility_clear(&fa);
}

static void test_facility_unlock_only_by_holder(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char t[MS_ID_SIZE], id[MS_ID_SIZE];
        make_territory(f, "n1", NULL, t);
        make_facility(f, t, id);
        const char *d1 = "01890000-0000-7000-8000-000000000001";
        const char *d2 = "01890000-0000-7000-8000-000000000002";
        assert_int_equal(ms_facility_lock(f->s, id, d1, T0, &err), 0);
        bool released = true;
        assert_int_equal(ms_facility_unlock(f->s, id, d2, T0, &released, &err), 0);
        assert_false(released);
        assert_int_equal(ms_facility_unlock(f->s, id, d1, T0, &released, &err), 0);
        assert_true(released);
        assert_int_equal(ms_facility_lock(f->s, id, d2, T0, &err), 0);
}

static void test_facility_lock_unknown_facility_not_found(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        assert_int_equal(ms_facility_lock(f->s, "01890000-0000-7000-8000-0000000000ff",
                                          "01890000-0000-7000-8000-000000000001", T0, &err), -1);
        assert_true(code_is(&err, ERR_NOT_FOUND));
}

/* ---------------------------------------------------------------- policies ----------- */

static void make_policy(fx *f, const char *account, const char *scope_type, const char *scope_id,
                        int64_t priority, const char *name, int64_t now, char id[MS_ID_SIZE])
{
        err_t err = ERR_INIT;
        ms_policy_fields p = { .account_id = account, .scope_type = scope_type,
                               .scope_id = scope_id, .priority = priority, .name = name };
        assert_int_equal(ms_policy_create(f->s, &p, now, id, &err), 0);
}

static void test_policy_create_get_update_deactivate(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        make_policy(f, f->account, "Account", f->account, 10, "base", T0, id);
        ms_policy p;
        assert_int_equal(ms_policy_get(f->s, f->account, id, &p, &err), 0);
        assert_string_equal(p.name, "base");
        assert_string_equal(p.scope_type, "Account");
        assert_int_equal(p.priority, 10);
        assert_true(p.active);
        assert_true(json_is_object(p.fs) && json_object_size(p.fs) == 0);
        /* a partial update: the unchanged fields are passed back as read */
        json_t *net = json_pack("{s:s}", "mode", "none");
        ms_policy_fields upd = { .scope_type = p.scope_type, .scope_id = p.scope_id,
                                 .priority = 20, .name = p.name, .fs = p.fs, .net = net,
                                 .secrets = p.secrets,
                                 .sandbox_profile_rules = p.sandbox_profile_rules,
                                 .approval = p.approval, .device = p.device,
                                 .inactive = !p.active };
        assert_int_equal(ms_policy_update(f->s, id, &upd, T0 + 1, &err), 0);
        json_decref(net);
        ms_policy_clear(&p);
        assert_int_equal(ms_policy_set_active(f->s, id, false, T0 + 2, &err), 0);
        assert_int_equal(ms_policy_get(f->s, NULL, id, &p, &err), 0);
        assert_int_equal(p.priority, 20);
        assert_string_equal(json_string_value(json_object_get(p.net, "mode")), "none");
        assert_false(p.active);
        assert_int_equal(p.updated_at, T0 + 2);
        ms_policy_clear(&p);
}

static void test_policy_invalid_scope_type_rejected(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        ms_policy_fields p = { .name = "x", .scope_type = "Conduits::Territory" };
        char id[MS_ID_SIZE];
        assert_int_equal(ms_policy_create(f->s, &p, T0, id, &err), -1);
        assert_true(code_is(&err, ERR_INVALID));
}

static void test_policy_list_filters_and_orders_by_priority(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char hi[MS_ID_SIZE], lo[MS_ID_SIZE], off[MS_ID_SIZE], glob[MS_ID_SIZE];
        make_policy(f, f->account, NULL, NULL, 50, "hi", T0, hi);
        make_policy(f, f->account, "User", f->user, 5, "lo", T0 + 1, lo);
        make_policy(f, f->account, NULL, NULL, 1, "off", T0 + 2, off);
        make_policy(f, NULL, NULL, NULL, 0, "global", T0 + 3, glob);
        assert_int_equal(ms_policy_set_active(f->s, off, false, T0, &err), 0);
        ms_policy_filter pf = { .account_id = f->account };
        ms_policy_array l;
        assert_int_equal(ms_policy_list(f->s, &pf, &l, &err), 0);
        assert_int_equal(l.n, 2);       /* neither the inactive nor the global one */
        assert_string_equal(l.items[0].id, lo);
        assert_string_equal(l.items[1].id, hi);
        ms_policy_array_clear(&l);
        pf.include_inactive = true;
        pf.scope_type = "User";
        assert_int_equal(ms_policy_list(f->s, &pf, &l, &err), 0);
        assert_int_equal(l.n, 1);
        assert_string_equal(l.items[0].id, lo);
        ms_policy_array_clear(&l);
}

static void test_policy_applicable_follows_scopes(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char other_acc[MS_ID_SIZE], other_user[MS_ID_SIZE];
        assert_int_equal(ms_account_create(f->s, "other", T0, other_acc, &err), 0);
        assert_int_equal(ms_user_create(f->s, f->account, "bob", T0, other_user, &err), 0);
        const char *fac = "01890000-0000-7000-8000-0000000000fa";
        char g[MS_ID_SIZE], acc[MS_ID_SIZE], usr[MS_ID_SIZE], fa[MS_ID_SIZE], x1[MS_ID_SIZE],
             x2[MS_ID_SIZE], x3[MS_ID_SIZE];
        make_policy(f, NULL, NULL, NULL, 0, "global", T0, g);
        make_policy(f, f->account, "Account", f->account, 10, "account", T0, acc);
        make_policy(f, f->account, "User", f->user, 20, "user", T0, usr);
        make_policy(f, f->account, "Conduits::Facility", fac, 30, "facility", T0, fa);
        make_policy(f, other_acc, NULL, NULL, 1, "other account", T0, x1);
        make_policy(f, f->account, "User", other_user, 15, "other user", T0, x2);
        make_policy(f, f->account, "Account", f->account, 5, "inactive", T0, x3);
        assert_int_equal(ms_policy_set_active(f->s, x3, false, T0, &err), 0);
        ms_policy_array l;
        assert_int_equal(ms_policy_list_applicable(f->s, f->account, f->user, fac, &l, &err), 0);
        assert_int_equal(l.n, 4);
        assert_string_equal(l.items[0].id, g);
        assert_string_equal(l.items[1].id, acc);
        assert_string_equal(l.items[2].id, usr);
        assert_string_equal(l.items[3].id, fa);
        ms_policy_array_clear(&l);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
                T(test_open_creates_private_db_file),
                T(test_open_creates_missing_data_dir),
                T(test_open_empty_data_dir_refused),
                T(test_migrations_idempotent_on_reopen),
                T(test_migrate_alone_reports_applied_count),
                T(test_open_refuses_newer_schema),
                T(test_database_uses_wal_and_foreign_keys),
                T(test_tx_commits_on_success),
                T(test_tx_rolls_back_on_failure),
                T(test_tx_nested_failure_undoes_only_inner),
                T(test_account_create_and_get),
                T(test_account_blank_name_rejected),
                T(test_account_unknown_or_malformed_id_not_found),
                T(test_user_without_account),
                T(test_api_token_authenticates_user_and_account),
                T(test_api_token_unknown_unauthorized),
                T(test_api_token_revoked_unauthorized),
                T(test_api_token_plaintext_never_stored),
                T(test_api_token_last_used_throttled),
                T(test_enroll_consume_returns_account_and_labels),
                T(test_enroll_second_consume_conflicts),
                T(test_enroll_revoked_token_forbidden),
                T(test_enroll_expiry_is_strict),
                T(test_enroll_unknown_token_not_found),
                T(test_enroll_default_ttl_is_one_hour),
                T(test_enroll_plaintext_never_stored),
                T(test_enroll_rolled_back_leaves_token_usable),
                T(test_territory_created_online_with_defaults),
                T(test_territory_invalid_kind_rejected_by_check),
                T(test_territory_duplicate_fingerprint_conflicts),
                T(test_territory_found_by_fingerprint_any_case),
                T(test_territory_heartbeat_replaces_given_fields_only),
                T(test_territory_heartbeat_brings_offline_online),
                T(test_territory_heartbeat_keeps_decommissioned),
                T(test_territory_invalid_transition_conflicts),
                T(test_territory_admin_fields_update_selected_only),
                T(test_territory_stale_listed_and_marked_offline_guarded),
                T(test_territory_list_by_account),
                T(test_facility_get_is_account_scoped),
                T(test_facility_kind_checked_and_owner_required),
                T(test_facility_list_by_account),
                T(test_facility_lock_idempotent_and_exclusive),
                T(test_facility_unlock_only_by_holder),
                T(test_facility_lock_unknown_facility_not_found),
                T(test_policy_create_get_update_deactivate),
                T(test_policy_invalid_scope_type_rejected),
                T(test_policy_list_filters_and_orders_by_priority),
                T(test_policy_applicable_follows_scopes),
#undef T
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
