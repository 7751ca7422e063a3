/* store/store_enroll.c — enrollment tokens (spec §1.8, §5.1): one-time, expiring, revocable
 * secrets that let a new territory join an account. Only the SHA-256 hex digest of the
 * plaintext is stored; consumption is a compare-and-set on used_at. */
#include "store/store_internal.h"

#include <string.h>

#include "core/base64.h"
#include "core/cleanup.h"
#include "core/crypto.h"

#define TOKEN_INPUT_MAX 512

void ms_enroll_token_clear(ms_enroll_token *t)
{
        json_decref(t->labels);
        memset(t, 0, sizeof(*t));
}

#define TOKEN_COLS "id, account_id, created_by_user_id, token_digest, labels, expires_at, " \
                   "used_at, revoked_at, created_at, updated_at"

static int token_read(sqlite3_stmt *st, ms_enroll_token *t, err_t *err)
{
        if (db_col_fixed(st, 0, t->id, sizeof(t->id), err) < 0 ||
            db_col_fixed(st, 1, t->account_id, sizeof(t->account_id), err) < 0 ||
            db_col_fixed(st, 2, t->created_by_user_id, sizeof(t->created_by_user_id), err) < 0 ||
            db_col_fixed(st, 3, t->token_digest, sizeof(t->token_digest), err) < 0 ||
            db_col_json(st, 4, &t->labels, err) < 0 ||
            db_col_time(st, 5, &t->expires_at, err) < 0 ||
            db_col_time(st, 6, &t->used_at, err) < 0 ||
            db_col_time(st, 7, &t->revoked_at, err) < 0 ||
            db_col_time(st, 8, &t->created_at, err) < 0 ||
            db_col_time(st, 9, &t->updated_at, err) < 0) {
                ms_enroll_token_clear(t);
                return -1;
        }
        return 0;
}

static const char sql_enroll_insert[] =
        "INSERT INTO conduits_enrollment_tokens (id, account_id, created_by_user_id, "
        "token_digest, labels, expires_at, created_at, updated_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)";

int ms_enroll_token_create(ms_store *s, const char *account_id, const char *created_by_user_id,
                           const json_t *labels, int64_t ttl_seconds, int64_t now,
                           char id_out[MS_ID_SIZE], char plaintext_out[MS_ENROLL_TOKEN_SIZE],
                           err_t *err)
{
        if (!ms_id_ok(account_id))
                return ms_not_found(err, "account", account_id);
        if (!ms_id_ok(created_by_user_id))
                return ms_not_found(err, "user", created_by_user_id);
        if (ms_json_expect(labels, JSON_OBJECT, "enrollment token labels", err) < 0)
                return -1;
        /* a TTL beyond ~100 years is a typo, and would overflow the millisecond arithmetic */
        if (ttl_seconds > 100LL * 366 * 86400)
                return err_set(err, "enrollment token TTL %lld s is too long",
                               (long long)ttl_seconds);
        if (ttl_seconds <= 0)
                ttl_seconds = MS_ENROLL_TOKEN_DEFAULT_TTL_S;
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        now = ms_now(now);
        char id[MS_ID_SIZE];
        uint8_t raw[32];
        if (ms_new_id(now, id, err) < 0 || crypto_random(raw, sizeof(raw), err) < 0)
                return err_wrap(err, "create enrollment token");
        /* §5.1: URL-safe base64 without padding of 32 random bytes (43 characters) */
        _cleanup_free_ char *plain = base64url_encode(raw, sizeof(raw));
        explicit_bzero(raw, sizeof(raw));
        if (!plain)
                return err_errno(err, ENOMEM, "create enrollment token");
        char digest[MS_SHA256_HEX_SIZE];
        int rc = crypto_sha256_hex(plain, strlen(plain), digest);
        if (rc == 0 && strlen(plain) + 1 != MS_ENROLL_TOKEN_SIZE)
                rc = -1;
        if (rc < 0) {
                explicit_bzero(plain, strlen(plain));
                return err_setc(err, ERR_INTERNAL, "create enrollment token: encoding failed");
        }
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_enroll_insert, err);
        if (!st || db_bind_text(c, st, 1, id, err) < 0 ||
            db_bind_text(c, st, 2, account_id, err) < 0 ||
            db_bind_text(c, st, 3, created_by_user_id, err) < 0 ||
            db_bind_text(c, st, 4, digest, err) < 0 ||
            db_bind_json(c, st, 5, labels, "{}", err) < 0 ||
            db_bind_time(c, st, 6, now + ttl_seconds * 1000, err) < 0 ||
            db_bind_time(c, st, 7, now, err) < 0 ||
            db_exec_stmt(c, st, err, "insert enrollment token") < 0) {
                explicit_bzero(plain, strlen(plain));
                return err_wrap(err, "create enrollment token");
        }
        memcpy(plaintext_out, plain, MS_ENROLL_TOKEN_SIZE);
        explicit_bzero(plain, strlen(plain));
        if (id_out)
                memcpy(id_out, id, MS_ID_SIZE);
        return 0;
}

static const char sql_enroll_by_digest[] =
        "SELECT " TOKEN_COLS " FROM conduits_enrollment_tokens WHERE token_digest = ?";
/* §5.1 compare-and-set; the usability conditions are repeated so that the update alone is
 * correct even without the check before it. */
static const char sql_enroll_consume[] =
        "UPDATE conduits_enrollment_tokens SET used_at = ?2, updated_at = ?2 "
        "WHERE id = ?1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > ?2";

typedef struct consume_ctx {
        const char *digest;
        int64_t now;
        ms_enroll_token *out;
} consume_ctx;

static int consume_tx(ms_store *s, void *p, err_t *err)
{
        consume_ctx *ctx = p;
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        ms_enroll_token_clear(ctx->out);
        {
                _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_enroll_by_digest, err);
                if (!st || db_bind_text(c, st, 1, ctx->digest, err) < 0)
                        return -1;
                int r = db_step(c, st, err, "look up enrollment token");
                if (r < 0)
                        return -1;
                if (r == 0)
                        return err_setc(err, ERR_NOT_FOUND, "enrollment token is unknown");
                if (token_read(st, ctx->out, err) < 0)
                        return -1;
        }
        ms_enroll_token *t = ctx->out;
        if (t->revoked_at)
                return err_setc(err, ERR_FORBIDDEN, "enrollment token has been revoked");
        if (t->used_at)
                return err_setc(err, ERR_CONFLICT, "enrollment token has already been used");
        if (!(ctx->now < t->expires_at))
                return err_setc(err, ERR_EXPIRED, "enrollment token has expired");
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_enroll_consume, err);
        if (!st || db_bind_text(c, st, 1, t->id, err) < 0 ||
            db_bind_time(c, st, 2, ctx->now, err) < 0)
                return -1;
        int n = db_exec_stmt(c, st, err, "consume enrollment token");
        if (n < 0)
                return -1;
        if (n == 0)
                return err_setc(err, ERR_CONFLICT, "enrollment token has already been used");
        t->used_at = t->updated_at = ctx->now;
        return 0;
}

int ms_enroll_token_consume(ms_store *s, const char *plaintext, int64_t now,
                            ms_enroll_token *out, err_t *err)
{
        memset(out, 0, sizeof(*out));
        if (!plaintext || !*plaintext || strnlen(plaintext, TOKEN_INPUT_MAX + 1) > TOKEN_INPUT_MAX)
                return err_setc(err, ERR_NOT_FOUND, "enrollment token is unknown");
        char digest[MS_SHA256_HEX_SIZE];
        if (crypto_sha256_hex(plaintext, strlen(plaintext), digest) < 0)
                return err_setc(err, ERR_INTERNAL, "consume enrollment token: SHA-256 failed");
        consume_ctx ctx = { digest, ms_now(now), out };
        if (ms_tx(s, consume_tx, &ctx, err) < 0) {
                ms_enroll_token_clear(out);
                return -1;
        }
        return 0;
}

static const char sql_enroll_get[] =
        "SELECT " TOKEN_COLS " FROM conduits_enrollment_tokens WHERE id = ?";

int ms_enroll_token_get(ms_store *s, const char *id, ms_enroll_token *out, err_t *err)
{
        memset(out, 0, sizeof(*out));
        if (!ms_id_ok(id))
                return ms_not_found(err, "enrollment token", id);
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_enroll_get, err);
        if (!st || db_bind_text(c, st, 1, id, err) < 0)
                return -1;
        int r = db_step(c, st, err, "read enrollment token");
        if (r <= 0)
                return r < 0 ? -1 : ms_not_found(err, "enrollment token", id);
        return token_read(st, out, err);
}

static const char sql_enroll_revoke[] =
        "UPDATE conduits_enrollment_tokens SET revoked_at = coalesce(revoked_at, ?2), "
        "updated_at = ?2 WHERE id = ?1";

int ms_enroll_token_revoke(ms_store *s, const char *id, int64_t now, err_t *err)
{
        if (!ms_id_ok(id))
                return ms_not_found(err, "enrollment token", id);
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_enroll_revoke, err);
        if (!st || db_bind_text(c, st, 1, id, err) < 0 ||
            db_bind_time(c, st, 2, ms_now(now), err) < 0)
                return -1;
        int n = db_exec_stmt(c, st, err, "revoke enrollment token");
        if (n < 0)
                return -1;
        return n == 0 ? ms_not_found(err, "enrollment token", id) : 0;
}
