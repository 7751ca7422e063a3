/* store/store_internal.h — the SQLite backend's private plumbing, shared by the store_*.c
 * files: the per-thread connection, a statement cache, binding/reading helpers and the
 * mapping of SQLite result codes to err_t codes. Never included outside store/ (tests aside).
 *
 * Every SQL text handed to db_prepare() must be a string literal: statements are cached per
 * connection by the address of their text. */
#pragma once
#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

#define MS_DB_FILE "mothership.sqlite3"
#define MS_BLOB_DIR "blobs"

typedef struct ms_stmt_slot {
        const char *sql;
        sqlite3_stmt *st;
} ms_stmt_slot;

typedef struct ms_conn {
        sqlite3 *db;
        ms_store *store;
        int tx_depth;                   /* 0 outside ms_store_tx, 1 in it, >1 in savepoints */
        ms_stmt_slot *stmts;
        size_t nstmts, capstmts;
        struct ms_conn *prev, *next;    /* the store's list of open connections */
} ms_conn;

struct ms_store {
        char *data_dir;
        char *db_path;
        int data_dirfd;
        int blob_dirfd;
        int busy_timeout_ms;
        int tx_retries;
        pthread_key_t key;              /* this thread's ms_conn */
        pthread_mutex_t mu;             /* guards conns */
        ms_conn *conns;
};

/* This thread's connection, opened on first use. NULL with err set on failure. */
ms_conn *ms_conn_get(ms_store *s, err_t *err);

/* Maps a failed SQLite call on db to err: constraint violations to ERR_CONFLICT (unique),
 * ERR_INVALID (check, not null), ERR_NOT_FOUND (foreign key: a referenced row is missing);
 * busy/locked to MS_ERR_BUSY; the rest to ERR_INTERNAL. Returns -1. */
int db_fail(sqlite3 *db, int rc, err_t *err, const char *what);

/* A cached prepared statement, reset and unbound when released. NULL with err on failure. */
sqlite3_stmt *db_prepare(ms_conn *c, const char *sql, err_t *err);
void db_release(sqlite3_stmt **st);
#define _cleanup_stmt_ __attribute__((cleanup(db_release)))

/* Steps st: returns 1 for a row, 0 when done, -1 with err set. */
int db_step(ms_conn *c, sqlite3_stmt *st, err_t *err, const char *what);
/* Steps st to completion, ignoring rows. Returns sqlite3_changes() or -1. */
int db_exec_stmt(ms_conn *c, sqlite3_stmt *st, err_t *err, const char *what);
/* Runs st (bound with the id at ?1 by the caller's SQL "SELECT 1 FROM t WHERE id = ?1"):
 * returns 1 if a row exists, 0 if not, -1 with err set. */
int db_exists(ms_conn *c, const char *sql, const char *id, err_t *err);
/* Runs SQL text without results (DDL, BEGIN...). */
int db_exec(ms_conn *c, const char *sql, err_t *err);

/* Binding. Each returns 0 or -1 with err set. */
/* NULL binds SQL null; db_bind_id also binds "" as null. */
int db_bind_text(ms_conn *c, sqlite3_stmt *st, int idx, const char *v, err_t *err);
int db_bind_id(ms_conn *c, sqlite3_stmt *st, int idx, const char *v, err_t *err);
int db_bind_int(ms_conn *c, sqlite3_stmt *st, int idx, int64_t v, err_t *err);
int db_bind_null(ms_conn *c, sqlite3_stmt *st, int idx, err_t *err);
int db_bind_time(ms_conn *c, sqlite3_stmt *st, int idx, int64_t ms, err_t *err);     /* 0 = null */
/* Compact JSON text; NULL binds dflt (which may itself be NULL = SQL null). */
int db_bind_json(ms_conn *c, sqlite3_stmt *st, int idx, const json_t *v, const char *dflt,
                 err_t *err);
int db_bind_blob(ms_conn *c, sqlite3_stmt *st, int idx, const void *v, size_t len, err_t *err);

/* Reading columns. The char * results are malloc'd (NULL for SQL null); id/digest columns are
 * copied into fixed buffers ("" for null); json columns are parsed (NULL for SQL null). Each
 * returns 0 or -1 with err set (ENOMEM, malformed stored value). */
int db_col_text(sqlite3_stmt *st, int col, char **out, err_t *err);
int db_col_fixed(sqlite3_stmt *st, int col, char *out, size_t outsz, err_t *err);
int db_col_time(sqlite3_stmt *st, int col, int64_t *out, err_t *err);
int db_col_json(sqlite3_stmt *st, int col, json_t **out, err_t *err);

/* `now` argument: MS_NOW becomes the wall clock. */
int64_t ms_now(int64_t now);
/* A new UUIDv7 for a row created at now. */
int ms_new_id(int64_t now, char out[MS_ID_SIZE], err_t *err);
/* True when id can name a row (valid UUID text); callers treat false as "not found". */
bool ms_id_ok(const char *id);
/* Missing (NULL, "", invalid) id argument: ERR_NOT_FOUND naming what. */
int ms_not_found(err_t *err, const char *what, const char *id);

/* Runs fn inside ms_store_tx; a wrapper for multi-statement operations. */
#define ms_tx ms_store_tx

/* Checks a JSON argument's type for a clearer message than the schema's CHECK. */
int ms_json_expect(const json_t *j, json_type type, const char *field, err_t *err);

/* §10.3 retention: runs sql (a DELETE of at most ?2 rows older than ?1) in up to max_batches
 * transactions, stopping at an empty batch. batch_size/max_batches <= 0: nothing. */
int db_delete_batches(ms_store *s, const char *sql, int64_t cutoff, int batch_size,
                      int max_batches, int64_t *deleted, err_t *err);

/* Migrations (migrations.c). */
typedef struct ms_migration {
        int version;
        const char *name;
        const char *sql;
} ms_migration;
extern const ms_migration ms_migrations[];
extern const size_t ms_migrations_count;

/* Array growth for lists: makes room for one more item of size isz. */
int ms_list_grow(void **items, size_t n, size_t *cap, size_t isz, err_t *err);
