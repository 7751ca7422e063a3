/* store/sqlite.c — the SQLite backend's core (DESIGN D7): opening the data dir, one
 * connection per thread, transactions with busy retries, migrations, and the binding and
 * error helpers the entity files share (store_internal.h).
 *
 * Every connection runs in WAL mode (readers never block the writer), with foreign keys on,
 * synchronous=NORMAL (in WAL mode a process crash loses no committed transaction; only a
 * power loss may drop the last few), a busy timeout, and defensive mode so that SQL cannot
 * corrupt the file. Write transactions start with BEGIN IMMEDIATE: the write lock is taken
 * up front, so a transaction never fails half-way on a lock upgrade. */
#include "store/store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/clock.h"
#include "core/str.h"
#include "core/uuid.h"

#define DEFAULT_BUSY_TIMEOUT_MS 5000
#define DEFAULT_TX_RETRIES 4

/* ---------------------------------------------------------------- small helpers ------ */

int64_t ms_now(int64_t now)
{
        return now == MS_NOW ? clock_now_ms() : now;
}

int ms_new_id(int64_t now, char out[MS_ID_SIZE], err_t *err)
{
        if (uuid7_generate_at(now, out, err) < 0)
                return err_wrap(err, "generate id");
        return 0;
}

bool ms_id_ok(const char *id)
{
        return id && uuid_is_valid(id);
}

int ms_not_found(err_t *err, const char *what, const char *id)
{
        return err_setc(err, ERR_NOT_FOUND, "%s \"%.64s\" not found", what, id ? id : "");
}

int ms_json_expect(const json_t *j, json_type type, const char *field, err_t *err)
{
        if (!j || json_typeof(j) == type)
                return 0;
        return err_set(err, "%s must be a JSON %s", field,
                       type == JSON_OBJECT ? "object" : type == JSON_ARRAY ? "array" : "value");
}

int ms_list_grow(void **items, size_t n, size_t *cap, size_t isz, err_t *err)
{
        if (n < *cap)
                return 0;
        size_t ncap = *cap ? *cap * 2 : 16;
        void *p = reallocarray(*items, ncap, isz);
        if (!p)
                return err_errno(err, ENOMEM, "grow list");
        memset((char *)p + n * isz, 0, (ncap - n) * isz);
        *items = p;
        *cap = ncap;
        return 0;
}

static bool err_is_busy(const err_t *err)
{
        return err->code && strcmp(err->code, MS_ERR_BUSY) == 0;
}

/* ---------------------------------------------------------------- errors ------------- */

int db_fail(sqlite3 *db, int rc, err_t *err, const char *what)
{
        const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
        const char *code;
        switch (rc) {
        case SQLITE_CONSTRAINT_UNIQUE:
        case SQLITE_CONSTRAINT_PRIMARYKEY:
                code = ERR_CONFLICT;
                break;
        case SQLITE_CONSTRAINT_CHECK:
        case SQLITE_CONSTRAINT_NOTNULL:
        case SQLITE_CONSTRAINT_DATATYPE:
                code = ERR_INVALID;
                break;
        case SQLITE_CONSTRAINT_FOREIGNKEY:
                /* on insert/update: the row refers to one that does not exist */
                code = ERR_NOT_FOUND;
                break;
        default:
                switch (rc & 0xff) {
                case SQLITE_BUSY:
                case SQLITE_LOCKED:
                        code = MS_ERR_BUSY;
                        break;
                case SQLITE_CONSTRAINT:
                        code = ERR_INVALID;
                        break;
                case SQLITE_NOMEM:
                        return err_errno(err, ENOMEM, "%s", what);
                default:
                        code = ERR_INTERNAL;
                        break;
                }
                break;
        }
        return err_setc(err, code, "%s: %s", what, msg);
}

/* ---------------------------------------------------------------- statements --------- */

sqlite3_stmt *db_prepare(ms_conn *c, const char *sql, err_t *err)
{
        for (size_t i = 0; i < c->nstmts; i++)
                if (c->stmts[i].sql == sql)
                        return c->stmts[i].st;
        if (ms_list_grow((void **)&c->stmts, c->nstmts, &c->capstmts, sizeof(*c->stmts),
                         err) < 0)
                return NULL;
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
        if (rc != SQLITE_OK) {
                db_fail(c->db, rc, err, "prepare statement");
                sqlite3_finalize(st);
                return NULL;
        }
        c->stmts[c->nstmts].sql = sql;
        c->stmts[c->nstmts].st = st;
        c->nstmts++;
        return st;
}

void db_release(sqlite3_stmt **st)
{
        if (*st) {
                sqlite3_reset(*st);
                sqlite3_clear_bindings(*st);
        }
        *st = NULL;
}

int db_step(ms_conn *c, sqlite3_stmt *st, err_t *err, const char *what)
{
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                return 1;
        if (rc == SQLITE_DONE)
                return 0;
        return db_fail(c->db, rc, err, what);
}

int db_exec_stmt(ms_conn *c, sqlite3_stmt *st, err_t *err, const char *what)
{
        int r;
        while ((r = db_step(c, st, err, what)) > 0)
                ;
        if (r < 0)
                return -1;
        return sqlite3_changes(c->db);
}

int db_exists(ms_conn *c, const char *sql, const char *id, err_t *err)
{
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql, err);
        if (!st || db_bind_text(c, st, 1, id, err) < 0)
                return -1;
        return db_step(c, st, err, "look up row");
}

int db_exec(ms_conn *c, const char *sql, err_t *err)
{
        char *msg = NULL;
        int rc = sqlite3_exec(c->db, sql, NULL, NULL, &msg);
        if (rc == SQLITE_OK)
                return 0;
        sqlite3_free(msg);
        return db_fail(c->db, rc, err, "execute SQL");
}

static int bind_rc(ms_conn *c, int rc, err_t *err)
{
        if (rc == SQLITE_OK)
                return 0;
        return db_fail(c->db, rc, err, "bind parameter");
}

int db_bind_text(ms_conn *c, sqlite3_stmt *st, int idx, const char *v, err_t *err)
{
        if (!v)
                return bind_rc(c, sqlite3_bind_null(st, idx), err);
        return bind_rc(c, sqlite3_bind_text(st, idx, v, -1, SQLITE_TRANSIENT), err);
}

int db_bind_id(ms_conn *c, sqlite3_stmt *st, int idx, const char *v, err_t *err)
{
        return db_bind_text(c, st, idx, v && *v ? v : NULL, err);
}

int db_bind_int(ms_conn *c, sqlite3_stmt *st, int idx, int64_t v, err_t *err)
{
        return bind_rc(c, sqlite3_bind_int64(st, idx, v), err);
}

int db_bind_null(ms_conn *c, sqlite3_stmt *st, int idx, err_t *err)
{
        return bind_rc(c, sqlite3_bind_null(st, idx), err);
}

int db_bind_time(ms_conn *c, sqlite3_stmt *st, int idx, int64_t ms, err_t *err)
{
        char buf[RFC3339_MS_LEN];
        if (ms == 0)
                return db_bind_null(c, st, idx, err);
        if (rfc3339_format_ms(ms, buf, sizeof(buf)) < 0)
                return err_set(err, "time %lld ms is outside years 0000-9999", (long long)ms);
        return bind_rc(c, sqlite3_bind_text(st, idx, buf, -1, SQLITE_TRANSIENT), err);
}

int db_bind_json(ms_conn *c, sqlite3_stmt *st, int idx, const json_t *v, const char *dflt,
                 err_t *err)
{
        if (!v)
                return db_bind_text(c, st, idx, dflt, err);
        char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!text)
                return err_errno(err, ENOMEM, "encode JSON column");
        /* SQLite owns text from here, also when binding fails */
        return bind_rc(c, sqlite3_bind_text(st, idx, text, -1, free), err);
}

int db_bind_blob(ms_conn *c, sqlite3_stmt *st, int idx, const void *v, size_t len, err_t *err)
{
        return bind_rc(c, sqlite3_bind_blob64(st, idx, v, len, SQLITE_TRANSIENT), err);
}

int db_col_text(sqlite3_stmt *st, int col, char **out, err_t *err)
{
        *out = NULL;
        const unsigned char *t = sqlite3_column_text(st, col);
        if (!t)
                return sqlite3_column_type(st, col) == SQLITE_NULL ? 0
                       : err_errno(err, ENOMEM, "read text column");
        *out = strdup((const char *)t);
        if (!*out)
                return err_errno(err, ENOMEM, "read text column");
        return 0;
}

int db_col_fixed(sqlite3_stmt *st, int col, char *out, size_t outsz, err_t *err)
{
        const unsigned char *t = sqlite3_column_text(st, col);
        if (!t) {
                out[0] = '\0';
                return 0;
        }
        if (str_copy(out, outsz, (const char *)t) < 0)
                return err_setc(err, ERR_INTERNAL, "stored value \"%.40s...\" is too long for "
                                "its %zu-byte field", (const char *)t, outsz - 1);
        return 0;
}

int db_col_time(sqlite3_stmt *st, int col, int64_t *out, err_t *err)
{
        const unsigned char *t = sqlite3_column_text(st, col);
        *out = 0;
        if (!t)
                return 0;
        if (rfc3339_parse((const char *)t, out, err) < 0)
                return err_wrap(err, "stored timestamp");
        return 0;
}

int db_col_json(sqlite3_stmt *st, int col, json_t **out, err_t *err)
{
        *out = NULL;
        const char *t = (const char *)sqlite3_column_text(st, col);
        if (!t)
                return 0;
        json_error_t jerr;
        *out = json_loadb(t, (size_t)sqlite3_column_bytes(st, col),
                          JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        if (!*out)
                return err_setc(err, ERR_INTERNAL, "stored JSON is malformed: %s", jerr.text);
        return 0;
}

/* ---------------------------------------------------------------- connections -------- */

static void conn_destroy(ms_conn *c)
{
        for (size_t i = 0; i < c->nstmts; i++)
                sqlite3_finalize(c->stmts[i].st);
        FREE_AND_NULL(c->stmts);
        sqlite3_close(c->db);
        c->db = NULL;
        free(c);
}

static void conn_unlink(ms_store *s, ms_conn *c)
{
        pthread_mutex_lock(&s->mu);
        if (c->prev)
                c->prev->next = c->next;
        else
                s->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        c->prev = c->next = NULL;
        pthread_mutex_unlock(&s->mu);
}

/* pthread key destructor: the thread is exiting. */
static void conn_thread_exit(void *p)
{
        ms_conn *c = p;
        conn_unlink(c->store, c);
        conn_destroy(c);
}

static int wal_check(void *ctx, int ncols, char **vals, char **names)
{
        bool *wal = ctx;
        *wal = ncols == 1 && vals[0] && strcmp(vals[0], "wal") == 0;
        return 0;
}

static int conn_configure(ms_store *s, sqlite3 *db, err_t *err)
{
        sqlite3_extended_result_codes(db, 1);
        sqlite3_busy_timeout(db, s->busy_timeout_ms);
        /* Defensive mode: no SQL can corrupt the file (writable_schema etc. refused). The
         * schema stays trusted: its CHECKs call json_valid(), which SQLite 3.40 does not mark
         * innocuous, and only mothership writes into its 0700 data dir. */
        sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
        bool wal = false;
        char *msg = NULL;
        int rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL", wal_check, &wal, &msg);
        sqlite3_free(msg);
        if (rc != SQLITE_OK)
                return db_fail(db, rc, err, "enable WAL mode");
        if (!wal)
                return err_setc(err, ERR_INTERNAL, "database %s refused WAL journal mode",
                                s->db_path);
        rc = sqlite3_exec(db, "PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL;", NULL,
                          NULL, &msg);
        sqlite3_free(msg);
        if (rc != SQLITE_OK)
                return db_fail(db, rc, err, "configure connection");
        return 0;
}

ms_conn *ms_conn_get(ms_store *s, err_t *err)
{
        ms_conn *c = pthread_getspecific(s->key);
        if (c)
                return c;
        c = calloc(1, sizeof(*c));
        if (!c) {
                err_errno(err, ENOMEM, "allocate database connection");
                return NULL;
        }
        c->store = s;
        /* NOMUTEX: a connection is only ever used by the thread that opened it */
        int rc = sqlite3_open_v2(s->db_path, &c->db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW |
                                         SQLITE_OPEN_NOMUTEX, NULL);
        if (rc != SQLITE_OK || conn_configure(s, c->db, err) < 0) {
                if (rc != SQLITE_OK)
                        db_fail(c->db, rc, err, "open database");
                err_wrap(err, "%s", s->db_path);
                conn_destroy(c);
                return NULL;
        }
        if (pthread_setspecific(s->key, c) != 0) {
                err_errno(err, ENOMEM, "remember database connection");
                conn_destroy(c);
                return NULL;
        }
        pthread_mutex_lock(&s->mu);
        c->next = s->conns;
        if (s->conns)
                s->conns->prev = c;
        s->conns = c;
        pthread_mutex_unlock(&s->mu);
        return c;
}

void ms_store_thread_release(ms_store *s)
{
        if (!s)
                return;
        ms_conn *c = pthread_getspecific(s->key);
        if (!c)
                return;
        pthread_setspecific(s->key, NULL);
        conn_unlink(s, c);
        conn_destroy(c);
}

/* ---------------------------------------------------------------- transactions ------- */

static void tx_rollback(ms_conn *c)
{
        /* an error such as SQLITE_FULL may already have rolled the transaction back */
        if (!sqlite3_get_autocommit(c->db)) {
                char *msg = NULL;
                sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, &msg);
                sqlite3_free(msg);
        }
}

static int tx_nested(ms_store *s, ms_conn *c, ms_store_tx_fn fn, void *ctx, err_t *err)
{
        if (db_exec(c, "SAVEPOINT ms_nested", err) < 0)
                return -1;
        c->tx_depth++;
        int r = fn(s, ctx, err);
        c->tx_depth--;
        if (r < 0) {
                char *msg = NULL;
                sqlite3_exec(c->db, "ROLLBACK TO ms_nested; RELEASE ms_nested", NULL, NULL,
                             &msg);
                sqlite3_free(msg);
                if (!err_is_set(err))
                        err_setc(err, ERR_INTERNAL, "transaction step failed without a reason");
                return r;
        }
        if (db_exec(c, "RELEASE ms_nested", err) < 0)
                return -1;
        return r;
}

static int tx_once(ms_store *s, ms_conn *c, ms_store_tx_fn fn, void *ctx, err_t *err)
{
        if (db_exec(c, "BEGIN IMMEDIATE", err) < 0)
                return err_wrap(err, "begin transaction");
        c->tx_depth = 1;
        int r = fn(s, ctx, err);
        c->tx_depth = 0;
        if (r < 0) {
                tx_rollback(c);
                if (!err_is_set(err))
                        err_setc(err, ERR_INTERNAL, "transaction failed without a reason");
                return r;
        }
        if (db_exec(c, "COMMIT", err) < 0) {
                tx_rollback(c);
                return err_wrap(err, "commit transaction");
        }
        return r;
}

int ms_store_tx(ms_store *s, ms_store_tx_fn fn, void *ctx, err_t *err)
{
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        if (c->tx_depth > 0)
                return tx_nested(s, c, fn, ctx, err);
        for (int attempt = 0;; attempt++) {
                int r = tx_once(s, c, fn, ctx, err);
                if (r >= 0 || !err_is_busy(err) || attempt >= s->tx_retries)
                        return r;
                /* the busy timeout already waited; back off a little more before retrying */
                struct timespec ts = { 0, (long)(1 + attempt * 4) * 1000000L };
                nanosleep(&ts, NULL);
                err_clear(err);
        }
}

/* ---------------------------------------------------------------- retention batches -- */

typedef struct delete_ctx {
        const char *sql;
        int64_t cutoff;
        int batch;
        int deleted;
} delete_ctx;

static int delete_batch_tx(ms_store *s, void *p, err_t *err)
{
        delete_ctx *ctx = p;
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, ctx->sql, err);
        if (!st || db_bind_time(c, st, 1, ctx->cutoff, err) < 0 ||
            db_bind_int(c, st, 2, ctx->batch, err) < 0)
                return -1;
        ctx->deleted = db_exec_stmt(c, st, err, "delete expired rows");
        return ctx->deleted < 0 ? -1 : 0;
}

int db_delete_batches(ms_store *s, const char *sql, int64_t cutoff, int batch_size,
                      int max_batches, int64_t *deleted, err_t *err)
{
        if (deleted)
                *deleted = 0;
        if (batch_size <= 0 || max_batches <= 0)
                return 0;
        for (int i = 0; i < max_batches; i++) {
                delete_ctx ctx = { sql, cutoff, batch_size, 0 };
                if (ms_tx(s, delete_batch_tx, &ctx, err) < 0)
                        return -1;
                if (deleted)
                        *deleted += ctx.deleted;
                if (ctx.deleted == 0)
                        break;
        }
        return 0;
}

/* ---------------------------------------------------------------- migrations --------- */

static const char schema_migrations_sql[] =
        "CREATE TABLE IF NOT EXISTS schema_migrations (\n"
        "  version INTEGER PRIMARY KEY,\n"
        "  name TEXT NOT NULL,\n"
        "  applied_at TEXT NOT NULL\n"
        ") STRICT";

static const char sql_max_version[] =
        "SELECT coalesce(max(version), 0) FROM schema_migrations";

static int read_version(ms_conn *c, int *version, err_t *err)
{
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_max_version, err);
        if (!st || db_step(c, st, err, "read schema version") <= 0)
                return err_is_set(err) ? -1 : err_setc(err, ERR_INTERNAL, "no schema version");
        *version = sqlite3_column_int(st, 0);
        return 0;
}

typedef struct migrate_ctx {
        const ms_migration *m;
        bool applied;
} migrate_ctx;

static const char sql_migration_done[] = "SELECT 1 FROM schema_migrations WHERE version = ?";
static const char sql_migration_record[] =
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)";

static int migrate_one(ms_store *s, void *p, err_t *err)
{
        migrate_ctx *ctx = p;
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        {
                _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_migration_done, err);
                if (!st || db_bind_int(c, st, 1, ctx->m->version, err) < 0)
                        return -1;
                int r = db_step(c, st, err, "read schema_migrations");
                if (r != 0)
                        return r < 0 ? -1 : 0;      /* applied by someone else meanwhile */
        }
        /* DDL cannot be cached: it runs once, through sqlite3_exec */
        if (db_exec(c, ctx->m->sql, err) < 0)
                return err_wrap(err, "migration %04d_%s", ctx->m->version, ctx->m->name);
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_migration_record, err);
        if (!st || db_bind_int(c, st, 1, ctx->m->version, err) < 0 ||
            db_bind_text(c, st, 2, ctx->m->name, err) < 0 ||
            db_bind_time(c, st, 3, clock_now_ms(), err) < 0 ||
            db_exec_stmt(c, st, err, "record migration") < 0)
                return -1;
        ctx->applied = true;
        return 0;
}

int ms_store_latest_schema_version(void)
{
        return ms_migrations[ms_migrations_count - 1].version;
}

static int store_migrate(ms_store *s, int *applied, err_t *err)
{
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        if (db_exec(c, schema_migrations_sql, err) < 0)
                return err_wrap(err, "create schema_migrations");
        int version = 0;
        if (read_version(c, &version, err) < 0)
                return -1;
        int latest = ms_store_latest_schema_version();
        if (version > latest)
                return err_setc(err, ERR_CONFLICT, "database %s has schema version %d, newer "
                                "than this mothership knows (%d); refusing to use it",
                                s->db_path, version, latest);
        int n = 0;
        for (size_t i = 0; i < ms_migrations_count; i++) {
                if (ms_migrations[i].version <= version)
                        continue;
                migrate_ctx ctx = { &ms_migrations[i], false };
                if (ms_store_tx(s, migrate_one, &ctx, err) < 0)
                        return -1;
                n += ctx.applied;
        }
        if (applied)
                *applied = n;
        return 0;
}

int ms_store_schema_version(ms_store *s, int *version, err_t *err)
{
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        return read_version(c, version, err);
}

/* ---------------------------------------------------------------- open / close ------- */

const char *ms_store_data_dir(const ms_store *s)
{
        return s->data_dir;
}

static int open_dir(int parentfd, const char *path, bool nofollow, err_t *err)
{
        if (mkdirat(parentfd, path, 0700) < 0 && errno != EEXIST)
                return err_errno(err, errno, "create directory %s", path);
        int fd = openat(parentfd, path,
                        O_RDONLY | O_DIRECTORY | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0));
        if (fd < 0)
                return err_errno(err, errno, "open directory %s", path);
        return fd;
}

static int store_open(const char *data_dir, const ms_store_options *opts, ms_store **out,
                      int *applied, err_t *err)
{
        *out = NULL;
        if (str_is_blank(data_dir))
                return err_set(err, "data dir must not be empty");
        ms_store *s = calloc(1, sizeof(*s));
        if (!s)
                return err_errno(err, ENOMEM, "allocate store");
        s->data_dirfd = s->blob_dirfd = -1;
        s->busy_timeout_ms = opts && opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms
                                                                : DEFAULT_BUSY_TIMEOUT_MS;
        s->tx_retries = !opts || opts->tx_retries == 0 ? DEFAULT_TX_RETRIES
                        : opts->tx_retries < 0 ? 0 : opts->tx_retries;
        if (pthread_mutex_init(&s->mu, NULL) != 0) {
                free(s);
                return err_errno(err, ENOMEM, "create store mutex");
        }
        if (pthread_key_create(&s->key, conn_thread_exit) != 0) {
                pthread_mutex_destroy(&s->mu);
                free(s);
                return err_errno(err, EAGAIN, "create thread key");
        }
        /* from here ms_store_close() cleans up */
        s->data_dir = strdup(data_dir);
        s->db_path = str_dup_printf("%s/%s", data_dir, MS_DB_FILE);
        if (!s->data_dir || !s->db_path) {
                ms_store_close(s);
                return err_errno(err, ENOMEM, "allocate store paths");
        }
        s->data_dirfd = open_dir(AT_FDCWD, data_dir, false, err);
        if (s->data_dirfd < 0) {
                ms_store_close(s);
                return err_wrap(err, "data dir");
        }
        s->blob_dirfd = open_dir(s->data_dirfd, MS_BLOB_DIR, true, err);
        if (s->blob_dirfd < 0) {
                ms_store_close(s);
                return err_wrap(err, "data dir %s", data_dir);
        }
        /* Create the database file ourselves so that it is 0600 from its first byte; SQLite
         * gives its -wal and -shm files the same mode. */
        int fd = openat(s->data_dirfd, MS_DB_FILE,
                        O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) {
                int e = errno;
                ms_store_close(s);
                return err_errno(err, e, "open %s/%s", data_dir, MS_DB_FILE);
        }
        close(fd);
        if (store_migrate(s, applied, err) < 0) {
                ms_store_close(s);
                return -1;
        }
        *out = s;
        return 0;
}

int ms_store_open(const char *data_dir, const ms_store_options *opts, ms_store **out,
                  err_t *err)
{
        /* SQLite's allocation statistics take a global mutex on every malloc: every worker
         * thread would queue on it. Only effective before SQLite initialises; harmless after. */
        (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
        return store_open(data_dir, opts, out, NULL, err);
}

int ms_store_migrate(const char *data_dir, int *applied, err_t *err)
{
        ms_store *s = NULL;
        if (store_open(data_dir, NULL, &s, applied, err) < 0)
                return -1;
        ms_store_close(s);
        return 0;
}

void ms_store_close(ms_store *s)
{
        if (!s)
                return;
        pthread_mutex_lock(&s->mu);
        ms_conn *c = s->conns;
        s->conns = NULL;
        pthread_mutex_unlock(&s->mu);
        while (c) {
                ms_conn *next = c->next;
                conn_destroy(c);
                c = next;
        }
        /* the calling thread's slot still points at a destroyed connection: clear it before
         * the key goes (other threads never read a deleted key) */
        pthread_setspecific(s->key, NULL);
        pthread_key_delete(s->key);
        pthread_mutex_destroy(&s->mu);
        if (s->blob_dirfd >= 0)
                close(s->blob_dirfd);
        if (s->data_dirfd >= 0)
                close(s->data_dirfd);
        FREE_AND_NULL(s->db_path);
        FREE_AND_NULL(s->data_dir);
        free(s);
}
