/* store/store_accounts.c — accounts and users (spec §1.1, §1.2) and the per-user API tokens
 * that authenticate them (DESIGN D10: stored as SHA-256 hex digests, plaintext shown once). */
#include "store/store_internal.h"

#include <string.h>

#include "core/cleanup.h"
#include "core/crypto.h"
#include "core/str.h"

/* How stale last_used_at may get before a request rewrites it: bookkeeping must not turn
 * every authenticated read into a write. */
#define TOKEN_LAST_USED_GRANULARITY_MS 60000
/* Longer bearer strings are not ours; refuse them before hashing. */
#define TOKEN_INPUT_MAX 512

/* ---------------------------------------------------------------- accounts ----------- */

void ms_account_clear(ms_account *a)
{
        FREE_AND_NULL(a->name);
        memset(a, 0, sizeof(*a));
}

static const char sql_account_insert[] =
        "INSERT INTO accounts (id, name, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)";

int ms_account_create(ms_store *s, const char *name, int64_t now, char id_out[MS_ID_SIZE],
                      err_t *err)
{
        if (str_is_blank(name))
                return err_set(err, "account name must not be blank");
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        now = ms_now(now);
        char id[MS_ID_SIZE];
        if (ms_new_id(now, id, err) < 0)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_account_insert, err);
        if (!st || db_bind_text(c, st, 1, id, err) < 0 || db_bind_text(c, st, 2, name, err) < 0 ||
            db_bind_time(c, st, 3, now, err) < 0 ||
            db_exec_stmt(c, st, err, "insert account") < 0)
                return err_wrap(err, "create account");
        if (id_out)
                memcpy(id_out, id, MS_ID_SIZE);
        return 0;
}

static const char sql_account_get[] =
        "SELECT id, name, created_at, updated_at FROM accounts WHERE id = ?";

int ms_account_get(ms_store *s, const char *id, ms_account *out, err_t *err)
{
        memset(out, 0, sizeof(*out));
        if (!ms_id_ok(id))
                return ms_not_found(err, "account", id);
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_account_get, err);
        if (!st || db_bind_text(c, st, 1, id, err) < 0)
                return -1;
        int r = db_step(c, st, err, "read account");
        if (r <= 0)
                return r < 0 ? -1 : ms_not_found(err, "account", id);
        if (db_col_fixed(st, 0, out->id, sizeof(out->id), err) < 0 ||
            db_col_text(st, 1, &out->name, err) < 0 ||
            db_col_time(st, 2, &out->created_at, err) < 0 ||
            db_col_time(st, 3, &out->updated_at, err) < 0) {
                ms_account_clear(out);
                return -1;
        }
        return 0;
}

/* ---------------------------------------------------------------- users -------------- */

void ms_user_clear(ms_user *u)
{
        FREE_AND_NULL(u->name);
        memset(u, 0, sizeof(*u));
}

static int user_read(sqlite3_stmt *st, int col, ms_user *u, err_t *err)
{
        if (db_col_fixed(st, col, u->id, sizeof(u->id), err) < 0 ||
            db_col_fixed(st, col + 1, u->account_id, sizeof(u->account_id), err) < 0 ||
            db_col_text(st, col + 2, &u->name, err) < 0 ||
            db_col_time(st, col + 3, &u->created_at, err) < 0 ||
            db_col_time(st, col + 4, &u->updated_at, err) < 0) {
                ms_user_clear(u);
                return -1;
        }
        return 0;
}

static const char sql_user_insert[] =
        "INSERT INTO users (id, account_id, name, created_at, updated_at) "
        "VALUES (?1, ?2, ?3, ?4, ?4)";

int ms_user_create(ms_store *s, const char *account_id, const char *name, int64_t now,
                   char id_out[MS_ID_SIZE], err_t *err)
{
        if (account_id && *account_id && !ms_id_ok(account_id))
                return ms_not_found(err, "account", account_id);
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        now = ms_now(now);
        char id[MS_ID_SIZE];
        if (ms_new_id(now, id, err) < 0)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_user_insert, err);
        if (!st || db_bind_text(c, st, 1, id, err) < 0 ||
            db_bind_id(c, st, 2, account_id, err) < 0 || db_bind_text(c, st, 3, name, err) < 0 ||
            db_bind_time(c, st, 4, now, err) < 0 || db_exec_stmt(c, st, err, "insert user") < 0)
                return err_wrap(err, "create user");
        if (id_out)
                memcpy(id_out, id, MS_ID_SIZE);
        return 0;
}

static const char sql_user_get[] =
        "SELECT id, account_id, name, created_at, updated_at FROM users WHERE id = ?";

int ms_user_get(ms_store *s, const char *id, ms_user *out, err_t *err)
{
        memset(out, 0, sizeof(*out));
        if (!ms_id_ok(id))
                return ms_not_found(err, "user", id);
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_user_get, err);
        if (!st || db_bind_text(c, st, 1, id, err) < 0)
                return -1;
        int r = db_step(c, st, err, "read user");
        if (r <= 0)
                return r < 0 ? -1 : ms_not_found(err, "user", id);
        return user_read(st, 0, out, err);
}

/* ---------------------------------------------------------------- API tokens --------- */

void ms_api_token_clear(ms_api_token *t)
{
        FREE_AND_NULL(t->name);
        memset(t, 0, sizeof(*t));
}

static const char sql_token_insert[] =
        "INSERT INTO api_tokens (id, user_id, token_digest, name, created_at, updated_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?5)";

int ms_api_token_create(ms_store *s, const char *user_id, const char *name, int64_t now,
                        char id_out[MS_ID_SIZE], char plaintext_out[MS_API_TOKEN_SIZE],
                        err_t *err)
{
        if (!ms_id_ok(user_id))
                return ms_not_found(err, "user", user_id);
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        now = ms_now(now);
        char id[MS_ID_SIZE];
        char plain[MS_API_TOKEN_SIZE];
        char digest[MS_SHA256_HEX_SIZE];
        if (ms_new_id(now, id, err) < 0 ||
            crypto_random_hex(32, plain, sizeof(plain), err) < 0)
                return err_wrap(err, "create API token");
        if (crypto_sha256_hex(plain, strlen(plain), digest) < 0) {
                explicit_bzero(plain, sizeof(plain));
                return err_setc(err, ERR_INTERNAL, "create API token: SHA-256 failed");
        }
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_token_insert, err);
        if (!st || db_bind_text(c, st, 1, id, err) < 0 ||
            db_bind_text(c, st, 2, user_id, err) < 0 ||
            db_bind_text(c, st, 3, digest, err) < 0 || db_bind_text(c, st, 4, name, err) < 0 ||
            db_bind_time(c, st, 5, now, err) < 0 ||
            db_exec_stmt(c, st, err, "insert API token") < 0) {
                explicit_bzero(plain, sizeof(plain));
                return err_wrap(err, "create API token");
        }
        memcpy(plaintext_out, plain, MS_API_TOKEN_SIZE);
        explicit_bzero(plain, sizeof(plain));
        if (id_out)
                memcpy(id_out, id, MS_ID_SIZE);
        return 0;
}

static const char sql_token_auth[] =
        "SELECT t.id, t.revoked_at, u.id, u.account_id, u.name, u.created_at, u.updated_at "
        "FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_digest = ?";
static const char sql_token_touch[] =
        "UPDATE api_tokens SET last_used_at = ?2, updated_at = ?2 "
        "WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?3)";

int ms_api_token_authenticate(ms_store *s, const char *plaintext, int64_t now,
                              ms_user *user_out, char token_id_out[MS_ID_SIZE], err_t *err)
{
        memset(user_out, 0, sizeof(*user_out));
        if (!plaintext || !*plaintext || strnlen(plaintext, TOKEN_INPUT_MAX + 1) > TOKEN_INPUT_MAX)
                return err_setc(err, ERR_UNAUTHORIZED, "unknown API token");
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        now = ms_now(now);
        char digest[MS_SHA256_HEX_SIZE];
        if (crypto_sha256_hex(plaintext, strlen(plaintext), digest) < 0)
                return err_setc(err, ERR_INTERNAL, "authenticate: SHA-256 failed");
        char token_id[MS_ID_SIZE];
        {
                _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_token_auth, err);
                if (!st || db_bind_text(c, st, 1, digest, err) < 0)
                        return -1;
                int r = db_step(c, st, err, "look up API token");
                if (r < 0)
                        return -1;
                if (r == 0)
                        return err_setc(err, ERR_UNAUTHORIZED, "unknown API token");
                if (sqlite3_column_type(st, 1) != SQLITE_NULL)
                        return err_setc(err, ERR_UNAUTHORIZED, "API token has been revoked");
                if (db_col_fixed(st, 0, token_id, sizeof(token_id), err) < 0 ||
                    user_read(st, 2, user_out, err) < 0)
                        return -1;
        }
        /* Bookkeeping only: a busy database must not turn a valid token into a failure. */
        err_t ignored = ERR_INIT;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_token_touch, &ignored);
        if (st && db_bind_text(c, st, 1, token_id, &ignored) == 0 &&
            db_bind_time(c, st, 2, now, &ignored) == 0 &&
            db_bind_time(c, st, 3, now - TOKEN_LAST_USED_GRANULARITY_MS, &ignored) == 0)
                (void)db_exec_stmt(c, st, &ignored, "record token use");
        if (token_id_out)
                memcpy(token_id_out, token_id, MS_ID_SIZE);
        return 0;
}

static const char sql_token_get[] =
        "SELECT id, user_id, name, created_at, updated_at, last_used_at, revoked_at "
        "FROM api_tokens WHERE id = ?";

int ms_api_token_get(ms_store *s, const char *id, ms_api_token *out, err_t *err)
{
        memset(out, 0, sizeof(*out));
        if (!ms_id_ok(id))
                return ms_not_found(err, "API token", id);
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_token_get, err);
        if (!st || db_bind_text(c, st, 1, id, err) < 0)
                return -1;
        int r = db_step(c, st, err, "read API token");
        if (r <= 0)
                return r < 0 ? -1 : ms_not_found(err, "API token", id);
        if (db_col_fixed(st, 0, out->id, sizeof(out->id), err) < 0 ||
            db_col_fixed(st, 1, out->user_id, sizeof(out->user_id), err) < 0 ||
            db_col_text(st, 2, &out->name, err) < 0 ||
            db_col_time(st, 3, &out->created_at, err) < 0 ||
            db_col_time(st, 4, &out->updated_at, err) < 0 ||
            db_col_time(st, 5, &out->last_used_at, err) < 0 ||
            db_col_time(st, 6, &out->revoked_at, err) < 0) {
                ms_api_token_clear(out);
                return -1;
        }
        return 0;
}

static const char sql_token_revoke[] =
        "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, ?2), updated_at = ?2 "
        "WHERE id = ?1";

int ms_api_token_revoke(ms_store *s, const char *id, int64_t now, err_t *err)
{
        if (!ms_id_ok(id))
                return ms_not_found(err, "API token", id);
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_token_revoke, err);
        if (!st || db_bind_text(c, st, 1, id, err) < 0 ||
            db_bind_time(c, st, 2, ms_now(now), err) < 0)
                return -1;
        int n = db_exec_stmt(c, st, err, "revoke API token");
        if (n < 0)
                return -1;
        return n == 0 ? ms_not_found(err, "API token", id) : 0;
}
