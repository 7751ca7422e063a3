/* store/store.h — mothership persistence: the one storage interface (DESIGN D7).
 *
 * Backend-neutral: nothing here names SQLite (the embedded default, store/sqlite.c) or
 * PostgreSQL (later). Entities are plain C structs mirroring spec mothership §1.1-§1.9 and
 * §1.13; the domain layer owns all policy and state-machine decisions and builds them on the
 * guarded primitives below inside ms_store_tx().
 *
 * Conventions used by every function:
 *   - returns 0 on success, <0 with err set on failure. Codes (core/error.h): ERR_NOT_FOUND
 *     (no such row / id not valid), ERR_CONFLICT (a uniqueness rule or a guard lost),
 *     ERR_INVALID (a value the schema refuses: unknown kind, blank name, bad JSON type...),
 *     ERR_UNAUTHORIZED / ERR_FORBIDDEN / ERR_EXPIRED (tokens), ERR_TOO_LARGE (blobs),
 *     MS_ERR_BUSY (the database stayed locked longer than the busy timeout), ERR_SYSTEM /
 *     ERR_INTERNAL otherwise;
 *   - ids are UUIDv7 text in a char[MS_ID_SIZE]; "" stands for SQL NULL in id fields, and an
 *     id argument that is not a syntactically valid UUID matches nothing (spec §0.2);
 *   - times are int64 Unix milliseconds, stored as RFC 3339 UTC with milliseconds; 0 stands
 *     for NULL in nullable time fields. Every write takes `now`; MS_NOW (0) means the wall
 *     clock (tests pass explicit values so that nothing depends on the clock);
 *   - JSON columns are json_t*: inputs are borrowed (NULL = the column default, or "keep" in
 *     updates, as documented); outputs are owned references released by ms_*_clear();
 *   - strings in output structs are malloc'd and released by ms_*_clear(); a cleared struct is
 *     all zero and may be reused or cleared again;
 *   - every function may be called inside ms_store_tx(); it then joins the caller's
 *     transaction (as a savepoint, so its own failure undoes only its own changes).
 *
 * Threads: one ms_store is shared by all threads. Each thread gets its own database
 * connection, opened lazily on first use and closed when the thread exits or the store is
 * closed. ms_store_close() must not race with other threads still using the store. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define MS_ID_SIZE 37            /* canonical UUID text + NUL */
#define MS_SHA256_HEX_SIZE 65    /* lower-case hex SHA-256 + NUL */
#define MS_NOW 0                 /* `now` argument: take the wall clock */

#define MS_ERR_BUSY "busy"       /* err->code when the database stayed locked */

#define MS_LIST_MAX 1000         /* largest `limit` any list accepts */

/* ---------------------------------------------------------------- store lifecycle ---- */

typedef struct ms_store ms_store;

typedef struct ms_store_options {
        int busy_timeout_ms;     /* how long one statement waits for a lock; 0 = 5000 */
        int tx_retries;          /* extra ms_store_tx attempts on MS_ERR_BUSY; 0 = 4, <0 = none */
} ms_store_options;

/* Opens (creating if needed, mode 0700) the data dir and the database in it, applies pending
 * migrations and prepares the blob directory. opts may be NULL. A database whose schema is
 * newer than this binary knows is refused (ERR_CONFLICT). */
int ms_store_open(const char *data_dir, const ms_store_options *opts, ms_store **out,
                  err_t *err);
/* Closes every connection of every thread and frees the store. NULL is a no-op. */
void ms_store_close(ms_store *s);
static inline void ms_store_closep(ms_store **s)
{
        ms_store_close(*s);
        *s = NULL;
}
#define _cleanup_ms_store_ __attribute__((cleanup(ms_store_closep)))

/* `mothership migrate`: applies pending migrations to the database under data_dir (creating
 * it if needed) and closes it. *applied (may be NULL) gets the number applied now. */
int ms_store_migrate(const char *data_dir, int *applied, err_t *err);
/* Highest migration version recorded in the database / known to this binary. */
int ms_store_schema_version(ms_store *s, int *version, err_t *err);
int ms_store_latest_schema_version(void);
const char *ms_store_data_dir(const ms_store *s);
/* Closes the calling thread's connection now (it reopens lazily if used again). */
void ms_store_thread_release(ms_store *s);

/* Runs fn in one write transaction (taken up front, so it never fails half-way for lock
 * reasons): commits when fn returns >= 0, rolls back when it returns < 0. When the database
 * is busy (MS_ERR_BUSY from BEGIN, from fn or from COMMIT) the whole transaction is retried
 * up to tx_retries times, so fn may run more than once: side effects outside the database
 * must be idempotent. Called inside another ms_store_tx it becomes a nested savepoint.
 * Returns fn's result (>= 0) or < 0 with err set. */
typedef int (*ms_store_tx_fn)(ms_store *s, void *ctx, err_t *err);
int ms_store_tx(ms_store *s, ms_store_tx_fn fn, void *ctx, err_t *err);

/* ---------------------------------------------------------------- enumerations ------- */

/* spec §2.1 */
typedef enum ms_directive_state {
        MS_DIRECTIVE_QUEUED = 0,
        MS_DIRECTIVE_AWAITING_APPROVAL,
        MS_DIRECTIVE_LEASED,
        MS_DIRECTIVE_RUNNING,
        MS_DIRECTIVE_SUCCEEDED,
        MS_DIRECTIVE_FAILED,
        MS_DIRECTIVE_CANCELED,
        MS_DIRECTIVE_TIMED_OUT,
        MS_DIRECTIVE_STATE_COUNT
} ms_directive_state;

/* "queued", "awaiting_approval", ...; NULL when out of range. */
const char *ms_directive_state_name(ms_directive_state st);
/* Returns 0, or -1 for a name that is not a state. */
int ms_directive_state_parse(const char *name, ms_directive_state *out);
bool ms_directive_state_is_terminal(ms_directive_state st);
/* True when §2.1 has an event from `from` to `to`. */
bool ms_directive_transition_allowed(ms_directive_state from, ms_directive_state to);

/* spec §2.2 */
typedef enum ms_territory_status {
        MS_TERRITORY_PENDING = 0,
        MS_TERRITORY_ONLINE,
        MS_TERRITORY_OFFLINE,
        MS_TERRITORY_DECOMMISSIONED,
        MS_TERRITORY_STATUS_COUNT
} ms_territory_status;

const char *ms_territory_status_name(ms_territory_status st);
int ms_territory_status_parse(const char *name, ms_territory_status *out);
bool ms_territory_transition_allowed(ms_territory_status from, ms_territory_status to);

typedef enum ms_log_stream {
        MS_STREAM_STDOUT = 0,
        MS_STREAM_STDERR = 1,
        MS_STREAM_BOTH = 2,      /* only as a list filter: stdout and stderr */
        MS_STREAM_EGRESS = 3,    /* JSONL egress audit records (nexus §7.10), our extension */
} ms_log_stream;

/* Cap on the egress audit bytes stored per directive; not part of max_output_bytes. */
#define MS_EGRESS_MAX_BYTES (4 * 1024 * 1024)

const char *ms_log_stream_name(ms_log_stream st);   /* "stdout"/"stderr"/"egress"/NULL */
int ms_log_stream_parse(const char *name, ms_log_stream *out);

/* ---------------------------------------------------------------- accounts, users ---- */

typedef struct ms_account {
        char id[MS_ID_SIZE];
        char *name;
        int64_t created_at, updated_at;
} ms_account;
void ms_account_clear(ms_account *a);

/* spec §1.1: name must be present (not blank). */
int ms_account_create(ms_store *s, const char *name, int64_t now, char id_out[MS_ID_SIZE],
                      err_t *err);
int ms_account_get(ms_store *s, const char *id, ms_account *out, err_t *err);

typedef struct ms_user {
        char id[MS_ID_SIZE];
        char account_id[MS_ID_SIZE];    /* "" when the user has no account */
        char *name;                     /* may be NULL */
        int64_t created_at, updated_at;
} ms_user;
void ms_user_clear(ms_user *u);

/* account_id and name may be NULL (spec §1.2). Unknown account: ERR_NOT_FOUND. */
int ms_user_create(ms_store *s, const char *account_id, const char *name, int64_t now,
                   char id_out[MS_ID_SIZE], err_t *err);
int ms_user_get(ms_store *s, const char *id, ms_user *out, err_t *err);

/* ---------------------------------------------------------------- user API tokens ---- */

/* Per-user bearer tokens (DESIGN D10). Plaintext: 64 lower-case hex chars (32 random bytes);
 * only its SHA-256 hex digest is stored. */
#define MS_API_TOKEN_SIZE 65

typedef struct ms_api_token {
        char id[MS_ID_SIZE];
        char user_id[MS_ID_SIZE];
        char *name;                     /* may be NULL */
        int64_t created_at, updated_at, last_used_at, revoked_at;
} ms_api_token;
void ms_api_token_clear(ms_api_token *t);

/* Creates a token for user_id (ERR_NOT_FOUND if unknown). plaintext_out receives the token:
 * this is the only time it exists; the caller shows it once and wipes it. */
int ms_api_token_create(ms_store *s, const char *user_id, const char *name, int64_t now,
                        char id_out[MS_ID_SIZE], char plaintext_out[MS_API_TOKEN_SIZE],
                        err_t *err);
/* Looks the token up by digest. Unknown or revoked: ERR_UNAUTHORIZED. On success fills
 * user_out (whose account_id is the caller's tenant) and token_id_out (may be NULL), and
 * records last_used_at (at most once a minute, to keep reads from becoming writes). */
int ms_api_token_authenticate(ms_store *s, const char *plaintext, int64_t now,
                              ms_user *user_out, char token_id_out[MS_ID_SIZE], err_t *err);
int ms_api_token_get(ms_store *s, const char *id, ms_api_token *out, err_t *err);
/* Sets revoked_at (kept if already revoked). Unknown id: ERR_NOT_FOUND. */
int ms_api_token_revoke(ms_store *s, const char *id, int64_t now, err_t *err);

/* ---------------------------------------------------------------- enrollment tokens -- */

/* spec §1.8, §5.1. Plaintext: URL-safe base64 without padding of 32 random bytes. */
#define MS_ENROLL_TOKEN_SIZE 44
#define MS_ENROLL_TOKEN_DEFAULT_TTL_S 3600

typedef struct ms_enroll_token {
        char id[MS_ID_SIZE];
        char account_id[MS_ID_SIZE];
        char created_by_user_id[MS_ID_SIZE];
        char token_digest[MS_SHA256_HEX_SIZE];
        json_t *labels;                 /* object */
        int64_t expires_at, used_at, revoked_at;
        int64_t created_at, updated_at;
} ms_enroll_token;
void ms_enroll_token_clear(ms_enroll_token *t);

/* labels: an object or NULL ({}); ttl_seconds <= 0 means the 1 hour default. */
int ms_enroll_token_create(ms_store *s, const char *account_id, const char *created_by_user_id,
                           const json_t *labels, int64_t ttl_seconds, int64_t now,
                           char id_out[MS_ID_SIZE], char plaintext_out[MS_ENROLL_TOKEN_SIZE],
                           err_t *err);
/* One-time use (§5.1): marks a usable token used (compare-and-set on used_at) and fills out
 * (account_id, labels...). Otherwise, without changing anything: ERR_NOT_FOUND (unknown),
 * ERR_FORBIDDEN (revoked), ERR_CONFLICT (already used, also when a concurrent consumer won),
 * ERR_EXPIRED (now >= expires_at). Checked in that order. */
int ms_enroll_token_consume(ms_store *s, const char *plaintext, int64_t now,
                            ms_enroll_token *out, err_t *err);
int ms_enroll_token_get(ms_store *s, const char *id, ms_enroll_token *out, err_t *err);
/* Sets revoked_at (there is no un-revoke; revoking twice keeps the first time). */
int ms_enroll_token_revoke(ms_store *s, const char *id, int64_t now, err_t *err);

/* ---------------------------------------------------------------- territories -------- */

/* spec §1.3 */
typedef struct ms_territory {
        char id[MS_ID_SIZE];
        char account_id[MS_ID_SIZE];    /* "" = none */
        char *name;
        ms_territory_status status;
        char *kind;                     /* server | desktop | mobile | bridge */
        char *platform, *display_name, *location;       /* may be NULL */
        json_t *tags;                   /* array */
        json_t *capabilities;           /* array */
        json_t *labels, *capacity, *runtime_status;     /* objects */
        char *nexus_version;            /* may be NULL */
        int64_t last_heartbeat_at;
        char client_cert_fingerprint[MS_SHA256_HEX_SIZE];   /* "" = none */
        int64_t websocket_connected_at;
        char *push_token, *push_platform;                   /* may be NULL */
        int64_t created_at, updated_at;
} ms_territory;
void ms_territory_clear(ms_territory *t);

typedef struct ms_territory_array {
        ms_territory *items;
        size_t n;
} ms_territory_array;
void ms_territory_array_clear(ms_territory_array *l);

typedef struct ms_territory_new {
        const char *account_id;         /* may be NULL */
        const char *name;               /* required */
        const char *kind;               /* NULL = "server" */
        const char *platform, *display_name;            /* may be NULL */
        const json_t *labels, *capacity;                /* objects; NULL = {} */
        const char *client_cert_fingerprint;            /* 64 hex; NULL = none */
} ms_territory_new;

/* Creates the territory as `pending` and activates it (pending -> online) in the same
 * transaction (§2.2 activate). Duplicate fingerprint: ERR_CONFLICT. */
int ms_territory_create(ms_store *s, const ms_territory_new *in, int64_t now,
                        char id_out[MS_ID_SIZE], err_t *err);
int ms_territory_get(ms_store *s, const char *id, ms_territory *out, err_t *err);
/* fp: 64 hex chars, either case (lower-cased before lookup). */
int ms_territory_get_by_fingerprint(ms_store *s, const char *fp, ms_territory *out,
                                    err_t *err);
/* Stores the client certificate fingerprint (NULL clears it). ERR_CONFLICT if another
 * territory has it. */
int ms_territory_set_fingerprint(ms_store *s, const char *id, const char *fp, int64_t now,
                                 err_t *err);
/* All territories of an account, by id. */
int ms_territory_list_by_account(ms_store *s, const char *account_id, ms_territory_array *out,
                                 err_t *err);

/* §3.2.2: each non-NULL field replaces the stored one. */
typedef struct ms_territory_heartbeat {
        const char *nexus_version;
        const json_t *labels, *capacity, *capabilities, *runtime_status;
} ms_territory_heartbeat;
/* Sets last_heartbeat_at = now plus the given fields, then offline -> online (pending and
 * decommissioned stay as they are). out (may be NULL) gets the updated row. */
int ms_territory_record_heartbeat(ms_store *s, const char *id, const ms_territory_heartbeat *hb,
                                  int64_t now, ms_territory *out, err_t *err);

/* Administrative fields (§1.14). Only the fields whose MS_TERRITORY_SET_* bit is in `set`
 * are written; a NULL string / json / 0 time writes NULL (json: the column default). */
enum {
        MS_TERRITORY_SET_LOCATION = 1 << 0,
        MS_TERRITORY_SET_TAGS = 1 << 1,
        MS_TERRITORY_SET_CAPABILITIES = 1 << 2,
        MS_TERRITORY_SET_PUSH = 1 << 3,              /* push_token and push_platform */
        MS_TERRITORY_SET_WEBSOCKET = 1 << 4,         /* websocket_connected_at */
};
typedef struct ms_territory_admin {
        unsigned set;
        const char *location;
        const json_t *tags, *capabilities;
        const char *push_token, *push_platform;
        int64_t websocket_connected_at;
} ms_territory_admin;
int ms_territory_update_admin(ms_store *s, const char *id, const ms_territory_admin *in,
                              int64_t now, err_t *err);
/* Status change by a §2.2 event (go_offline, decommission, go_online, activate).
 * A transition §2.2 does not list: ERR_CONFLICT, nothing changed. */
int ms_territory_set_status(ms_store *s, const char *id, ms_territory_status to, int64_t now,
                            err_t *err);
/* Stale-heartbeat job (spec Appendix A recommendation): online territories whose last
 * heartbeat (or, never having sent one, creation) is before cutoff (= now - older_than),
 * oldest first, at most limit (1..MS_LIST_MAX). */
int ms_territory_list_stale(ms_store *s, int64_t cutoff, int limit, ms_territory_array *out,
                            err_t *err);
/* online -> offline, guarded: only while the territory is still online and still stale
 * relative to cutoff (a heartbeat that arrived meanwhile wins). *changed says whether it
 * happened. */
int ms_territory_mark_offline(ms_store *s, const char *id, int64_t cutoff, int64_t now,
                              bool *changed, err_t *err);

/* ---------------------------------------------------------------- facilities --------- */

/* spec §1.4 */
typedef struct ms_facility {
        char id[MS_ID_SIZE];
        char account_id[MS_ID_SIZE];            /* "" = none */
        char owner_id[MS_ID_SIZE];
        char territory_id[MS_ID_SIZE];
        char locked_by_directive_id[MS_ID_SIZE];        /* "" = unlocked */
        char *kind;                             /* repo | empty | imported_path */
        char *root_handle, *repo_url;           /* may be NULL */
        json_t *retention_policy;               /* any JSON value */
        int64_t size_bytes;
        int64_t created_at, updated_at;
} ms_facility;
void ms_facility_clear(ms_facility *f);

typedef struct ms_facility_array {
        ms_facility *items;
        size_t n;
} ms_facility_array;
void ms_facility_array_clear(ms_facility_array *l);

typedef struct ms_facility_new {
        const char *account_id;                 /* may be NULL */
        const char *owner_id, *territory_id, *kind;     /* required */
        const char *repo_url, *root_handle;     /* may be NULL */
        const json_t *retention_policy;         /* required */
} ms_facility_new;

int ms_facility_create(ms_store *s, const ms_facility_new *in, int64_t now,
                       char id_out[MS_ID_SIZE], err_t *err);
/* account_id NULL: any account; otherwise a facility of another account is ERR_NOT_FOUND. */
int ms_facility_get(ms_store *s, const char *account_id, const char *id, ms_facility *out,
                    err_t *err);
int ms_facility_list(ms_store *s, const char *account_id, ms_facility_array *out, err_t *err);
/* §7.11 lock(F, D): succeeds when unlocked (takes it) or already held by D (idempotent);
 * held by another directive: ERR_CONFLICT. Unknown facility: ERR_NOT_FOUND. */
int ms_facility_lock(ms_store *s, const char *facility_id, const char *directive_id,
                     int64_t now, err_t *err);
/* §7.11 unlock(F, D): clears the lock only if D holds it; *released (may be NULL) says so. */
int ms_facility_unlock(ms_store *s, const char *facility_id, const char *directive_id,
                       int64_t now, bool *released, err_t *err);

/* ---------------------------------------------------------------- directives --------- */

/* spec §1.5 (every column). */
typedef struct ms_directive {
        char id[MS_ID_SIZE];
        char account_id[MS_ID_SIZE];
        char facility_id[MS_ID_SIZE];
        char territory_id[MS_ID_SIZE];          /* "" = none */
        char requested_by_user_id[MS_ID_SIZE];
        char approved_by_user_id[MS_ID_SIZE];   /* "" = none */
        ms_directive_state state;
        char *sandbox_profile;                  /* untrusted|trusted|host|darwin-automation */
        char *command;
        char *shell, *cwd;                      /* may be NULL */
        int64_t timeout_seconds;
        json_t *limits;                         /* object */
        json_t *requested_capabilities;         /* object */
        json_t *effective_capabilities;         /* object */
        json_t *policy_snapshot;                /* NULL = null */
        json_t *env_allowlist, *env_refs;       /* arrays */
        char *runtime_ref;                      /* may be NULL */
        json_t *egress_proxy_policy_snapshot;   /* NULL = null */
        bool has_exit_code;
        int64_t exit_code;
        char *finished_status;                  /* may be NULL */
        bool stdout_truncated, stderr_truncated, diff_truncated;
        int64_t stdout_bytes, stderr_bytes;
        char *result_hash;                      /* may be NULL */
        char *snapshot_before, *snapshot_after; /* may be NULL */
        json_t *artifacts_manifest;             /* object */
        char *nexus_version, *sandbox_version;  /* may be NULL */
        int64_t lease_expires_at, last_heartbeat_at, cancel_requested_at, finished_at;
        int64_t created_at, updated_at;
        /* issue 4 (migration 3): the approval decision and the start time */
        char rejected_by_user_id[MS_ID_SIZE];   /* "" = none */
        char *decision_reason;                  /* may be NULL */
        int64_t decided_at;                     /* approve / reject time; 0 = none */
        int64_t started_at;                     /* leased -> running time; 0 = never */
} ms_directive;
void ms_directive_clear(ms_directive *d);

typedef struct ms_directive_array {
        ms_directive *items;
        size_t n;
} ms_directive_array;
void ms_directive_array_clear(ms_directive_array *l);

/* Creation fields of a directive (§3.3.2); everything else starts at its §1.5 default and is
 * changed by the guarded primitives below. */
typedef struct ms_directive_new {
        const char *account_id, *facility_id, *requested_by_user_id;     /* required */
        const char *approved_by_user_id;        /* NULL = none */
        ms_directive_state state;               /* queued or awaiting_approval (§2.1 create) */
        const char *sandbox_profile;            /* NULL = "untrusted" */
        const char *command;                    /* required, not blank */
        const char *shell, *cwd;                /* NULL = null */
        int64_t timeout_seconds;
        const json_t *limits, *requested_capabilities, *effective_capabilities; /* NULL = {} */
        const json_t *policy_snapshot;          /* NULL = null */
        const json_t *env_allowlist, *env_refs; /* NULL = [] */
        const char *runtime_ref;                /* NULL = null */
        const json_t *egress_proxy_policy_snapshot;     /* NULL = null */
        const json_t *artifacts_manifest;       /* NULL = {} */
} ms_directive_new;

int ms_directive_insert(ms_store *s, const ms_directive_new *in, int64_t now,
                        char id_out[MS_ID_SIZE], err_t *err);
int ms_directive_get(ms_store *s, const char *id, ms_directive *out, err_t *err);
/* The directive only if it belongs to that account and facility; else ERR_NOT_FOUND. */
int ms_directive_get_scoped(ms_store *s, const char *account_id, const char *facility_id,
                            const char *id, ms_directive *out, err_t *err);

typedef struct ms_directive_filter {
        const char *account_id;         /* NULL = any */
        const char *facility_id;        /* NULL = any */
        const char *territory_id;       /* NULL = any */
        bool has_state;                 /* filter on state (a zeroed filter matches all) */
        ms_directive_state state;
        const char *cursor;             /* NULL, or an id: only rows strictly after it */
        int limit;                      /* 1..MS_LIST_MAX */
        bool newest_first;              /* order by id descending (default ascending) */
} ms_directive_filter;
/* Ordered by id (UUIDv7, hence creation order). */
int ms_directive_list(ms_store *s, const ms_directive_filter *f, ms_directive_array *out,
                      err_t *err);
/* Poll candidates (§7.4 step 1): queued, of the account, profile in profiles[0..n), oldest
 * created first, at most limit. */
int ms_directive_list_claimable(ms_store *s, const char *account_id,
                                const char *const *profiles, size_t nprofiles, int limit,
                                ms_directive_array *out, err_t *err);
/* Whether at least one directive is claimable (the poll's read-only fast path). */
#define MS_CLAIMABLE_PROFILES_MAX 8
int ms_directive_any_claimable(ms_store *s, const char *account_id,
                               const char *const *profiles, size_t nprofiles, bool *any,
                               err_t *err);
/* Reaper candidates (§7.7): leased with lease_expires_at < now, oldest expiry first. */
int ms_directive_list_expired_leases(ms_store *s, int64_t now, int limit,
                                     ms_directive_array *out, err_t *err);
/* counts[state] = number of directives in that state (metrics). */
int ms_directive_count_by_state(ms_store *s, int64_t counts[MS_DIRECTIVE_STATE_COUNT],
                                err_t *err);

/* Guarded primitives. Each is one conditional update: *changed (may be NULL) says whether the
 * guard held; a guard that does not hold is not an error. Unknown id: ERR_NOT_FOUND. */

/* UPDATE ... SET state = to WHERE id = ? AND state = from. Refuses (ERR_INVALID) pairs §2.1
 * does not allow and the events that carry side effects, which have their own calls below:
 * lease (queued->leased), expire_lease (leased->queued), approve (awaiting_approval->queued). */
int ms_directive_transition(ms_store *s, const char *id, ms_directive_state from,
                            ms_directive_state to, int64_t now, bool *changed, err_t *err);
/* §2.1 lease: queued -> leased with territory_id and lease_expires_at set. */
int ms_directive_lease(ms_store *s, const char *id, const char *territory_id,
                       int64_t lease_expires_at, int64_t now, bool *changed, err_t *err);
/* §2.1 expire_lease: leased -> queued, territory_id / lease_expires_at / last_heartbeat_at
 * cleared, and the facility lock released if this directive holds it. expired_before > 0
 * adds the reaper's re-check (§7.7): only if lease_expires_at < expired_before. */
int ms_directive_expire_lease(ms_store *s, const char *id, int64_t expired_before,
                              int64_t now, bool *changed, err_t *err);
/* §3.2.5: while running, lease_expires_at = lease_expires_at, last_heartbeat_at = now. */
int ms_directive_renew_lease(ms_store *s, const char *id, int64_t lease_expires_at,
                             int64_t now, bool *changed, err_t *err);
/* Operator/test tool (`mothership admin lease expire`): sets lease_expires_at of a leased or
 * running directive (typically into the past, so the reaper or the offline job acts on it).
 * Guarded on the state; other states leave *changed false. */
int ms_directive_force_lease_expiry(ms_store *s, const char *id, int64_t lease_expires_at,
                                    int64_t now, bool *changed, err_t *err);
/* §2.1 approve: awaiting_approval -> queued, approved_by_user_id set. */
int ms_directive_approve(ms_store *s, const char *id, const char *approver_user_id,
                         int64_t now, bool *changed, err_t *err);
/* §3.3.5 with who and why (issue 4): approve (awaiting_approval -> queued, approved_by_user_id)
 * or reject (awaiting_approval -> canceled, rejected_by_user_id); both set decided_at and
 * decision_reason (NULL = none; at most MS_DECISION_REASON_MAX bytes, else ERR_INVALID).
 * Guarded on awaiting_approval. */
#define MS_DECISION_REASON_MAX 1000
int ms_directive_decide(ms_store *s, const char *id, bool approve, const char *user_id,
                        const char *reason, int64_t now, bool *changed, err_t *err);
/* Poll-time re-validation (§7.4 step 3, issue 4 — the reference leases instead): queued ->
 * awaiting_approval, withdrawing any approval (the caller holds an approved directive only
 * when its effective capabilities changed after the approval). */
int ms_directive_hold_for_approval(ms_store *s, const char *id, int64_t now, bool *changed,
                                   err_t *err);
/* §7.8: sets cancel_requested_at once (an existing value is kept; *changed false). */
int ms_directive_request_cancel(ms_store *s, const char *id, int64_t now, bool *changed,
                                err_t *err);
/* §3.2.4: stores each version only where the stored one is NULL (NULL args are skipped). */
int ms_directive_fill_versions(ms_store *s, const char *id, const char *nexus_version,
                               const char *sandbox_version, int64_t now, err_t *err);
/* §7.4 step 3: replaces effective_capabilities (required) and policy_snapshot (NULL = null). */
int ms_directive_set_effective(ms_store *s, const char *id, const json_t *effective,
                               const json_t *policy_snapshot, int64_t now, err_t *err);
/* §3.2.6: <stream>_bytes += nbytes and <stream>_truncated |= truncated, atomically. */
int ms_directive_add_output(ms_store *s, const char *id, ms_log_stream stream, int64_t nbytes,
                            bool truncated, int64_t now, err_t *err);
/* §3.2.7 duplicate path: stores result_hash only where it is NULL. */
int ms_directive_set_result_hash(ms_store *s, const char *id, const char *result_hash,
                                 int64_t now, err_t *err);

/* §3.2.7 steps 5-7 in one guarded update (running -> state). */
typedef struct ms_directive_result {
        ms_directive_state state;       /* succeeded | failed | canceled | timed_out */
        const char *result_hash;        /* NULL keeps the stored one */
        bool stdout_truncated, stderr_truncated, diff_truncated;   /* OR-ed in */
        bool set_exit_code;             /* exit_code key present */
        bool exit_code_null;            /* ... and null */
        int64_t exit_code;
        bool set_snapshot_before, set_snapshot_after;   /* key present; NULL value = null */
        const char *snapshot_before, *snapshot_after;
        const json_t *artifacts_manifest;               /* NULL keeps the stored one */
        int64_t finished_at;                            /* 0 keeps the stored one */
} ms_directive_result;
/* finished_status is set to the name of f->state. */
int ms_directive_finish(ms_store *s, const char *id, const ms_directive_result *f, int64_t now,
                        bool *changed, err_t *err);

/* ---------------------------------------------------------------- log chunks --------- */

/* spec §1.6 */
typedef struct ms_log_chunk {
        char id[MS_ID_SIZE];
        char directive_id[MS_ID_SIZE];
        ms_log_stream stream;
        int64_t seq;
        uint8_t *bytes;
        size_t bytesize;
        bool truncated;
        int64_t created_at;
} ms_log_chunk;

typedef struct ms_log_chunk_array {
        ms_log_chunk *items;
        size_t n;
} ms_log_chunk_array;
void ms_log_chunk_array_clear(ms_log_chunk_array *l);

typedef enum ms_log_insert_result {
        MS_LOG_STORED = 0,
        MS_LOG_DUPLICATE_SAME,          /* (directive, stream, seq) exists with these bytes */
        MS_LOG_DUPLICATE_DIFFERENT,     /* exists with other bytes; the stored ones are kept */
} ms_log_insert_result;

/* Inserts one chunk (len > 0, seq 0..2^31-1). A re-sent (directive, stream, seq) is never
 * overwritten, also when a concurrent insert won (§3.2.6). */
int ms_log_chunk_insert(ms_store *s, const char *directive_id, ms_log_stream stream,
                        int64_t seq, const void *bytes, size_t len, bool truncated,
                        int64_t now, ms_log_insert_result *result, err_t *err);
/* Chunks with seq > after_seq in ascending seq (for MS_STREAM_BOTH: by seq, stdout first),
 * at most limit, and stopping before the total would pass max_bytes (0 = 16 MiB) — but at
 * least one chunk when there is one. */
int ms_log_chunk_list(ms_store *s, const char *directive_id, ms_log_stream stream,
                      int64_t after_seq, int limit, size_t max_bytes, ms_log_chunk_array *out,
                      err_t *err);
/* Sum of the bytes stored for one stream of a directive (0 when none). */
int ms_log_stream_bytes(ms_store *s, const char *directive_id, ms_log_stream stream,
                        int64_t *out, err_t *err);
/* Retention (§10.3): deletes chunks with created_at < cutoff in batches of batch_size ordered
 * by (created_at, id), each batch its own transaction, at most max_batches batches; stops at
 * an empty batch. batch_size or max_batches <= 0: does nothing. */
int ms_log_chunk_delete_before(ms_store *s, int64_t cutoff, int batch_size, int max_batches,
                               int64_t *deleted, err_t *err);

/* ---------------------------------------------------------------- audit events ------- */

/* spec §1.9, plus territory_id (ours) so events can be filtered by territory. */
typedef struct ms_audit_event {
        char id[MS_ID_SIZE];
        char account_id[MS_ID_SIZE];
        char directive_id[MS_ID_SIZE];  /* "" = none */
        char command_id[MS_ID_SIZE];    /* "" = none */
        char actor_id[MS_ID_SIZE];      /* "" = none */
        char territory_id[MS_ID_SIZE];  /* "" = none */
        char *event_type;
        char *severity;                 /* info | warn | critical */
        json_t *payload, *context;      /* objects */
        int64_t created_at, updated_at;
} ms_audit_event;
void ms_audit_event_clear(ms_audit_event *e);

typedef struct ms_audit_event_array {
        ms_audit_event *items;
        size_t n;
} ms_audit_event_array;
void ms_audit_event_array_clear(ms_audit_event_array *l);

typedef struct ms_audit_new {
        const char *account_id;         /* required */
        const char *directive_id, *command_id, *actor_id;       /* may be NULL */
        const char *territory_id;       /* NULL: taken from payload.territory_id if a string */
        const char *event_type;         /* required */
        const char *severity;           /* NULL = "info" */
        const json_t *payload, *context;        /* objects; NULL = {} */
} ms_audit_new;
int ms_audit_event_insert(ms_store *s, const ms_audit_new *in, int64_t now,
                          char id_out[MS_ID_SIZE], err_t *err);

typedef struct ms_audit_filter {
        const char *account_id;         /* NULL = any */
        const char *event_type;         /* NULL = any */
        const char *severity;           /* NULL = any */
        const char *directive_id;       /* NULL = any */
        const char *territory_id;       /* NULL = any */
        int64_t since, until;           /* created_at in [since, until); 0 = open */
        const char *cursor;             /* NULL, or an id: rows strictly after it in order */
        int limit;                      /* 1..MS_LIST_MAX */
        bool newest_first;
} ms_audit_filter;
int ms_audit_event_list(ms_store *s, const ms_audit_filter *f, ms_audit_event_array *out,
                        err_t *err);
/* Retention (§10.3), same batching rules as ms_log_chunk_delete_before. */
int ms_audit_event_delete_before(ms_store *s, int64_t cutoff, int batch_size, int max_batches,
                                 int64_t *deleted, err_t *err);

/* ---------------------------------------------------------------- policies ----------- */

/* spec §1.7 */
typedef struct ms_policy {
        char id[MS_ID_SIZE];
        char account_id[MS_ID_SIZE];    /* "" = global */
        char *scope_type;               /* NULL | Account | User | Conduits::Facility */
        char scope_id[MS_ID_SIZE];      /* "" = none */
        int64_t priority;
        char *name;
        json_t *fs, *net, *secrets, *sandbox_profile_rules, *approval, *device;
        bool active;
        int64_t created_at, updated_at;
} ms_policy;
void ms_policy_clear(ms_policy *p);

typedef struct ms_policy_array {
        ms_policy *items;
        size_t n;
} ms_policy_array;
void ms_policy_array_clear(ms_policy_array *l);

/* The writable fields of a policy. */
typedef struct ms_policy_fields {
        const char *account_id;         /* create only: NULL = global */
        const char *scope_type;         /* NULL | Account | User | Conduits::Facility */
        const char *scope_id;           /* NULL = none */
        int64_t priority;
        const char *name;               /* required */
        const json_t *fs, *net, *secrets, *sandbox_profile_rules, *approval, *device;
                                        /* objects; NULL = {} */
        bool inactive;                  /* stored as active = !inactive: zero is the §1.7
                                         * default (active) */
} ms_policy_fields;

int ms_policy_create(ms_store *s, const ms_policy_fields *in, int64_t now,
                     char id_out[MS_ID_SIZE], err_t *err);
/* account_id NULL: any; otherwise only a policy of that account (globals excluded). */
int ms_policy_get(ms_store *s, const char *account_id, const char *id, ms_policy *out,
                  err_t *err);
/* Replaces every writable field of policy id (in->account_id is ignored: a policy never
 * changes owner). A partial update reads the policy and passes the unchanged fields back. */
int ms_policy_update(ms_store *s, const char *id, const ms_policy_fields *in, int64_t now,
                     err_t *err);
int ms_policy_set_active(ms_store *s, const char *id, bool active, int64_t now, err_t *err);

typedef struct ms_policy_filter {
        const char *account_id;         /* NULL = the global policies (account_id null) */
        const char *scope_type;         /* NULL = any */
        const char *scope_id;           /* NULL = any */
        bool include_inactive;
} ms_policy_filter;
/* §3.3.1: ordered by priority, then creation. */
int ms_policy_list(ms_store *s, const ms_policy_filter *f, ms_policy_array *out, err_t *err);
/* §6.5 applicable policies: active, account null or account_id, scope global / Account =
 * account_id / User = user_id / Conduits::Facility = facility_id; by priority, creation. */
int ms_policy_list_applicable(ms_store *s, const char *account_id, const char *user_id,
                              const char *facility_id, ms_policy_array *out, err_t *err);

/* ---------------------------------------------------------------- blobs -------------- */

/* Content-addressed files <data_dir>/blobs/<sha[0..2]>/<sha[2..64]> (DESIGN D7), mode 0600,
 * written atomically (temporary file, fsync, rename, directory fsync). */
int ms_blob_put(ms_store *s, const void *data, size_t len, char sha256_hex[MS_SHA256_HEX_SIZE],
                err_t *err);
/* Reads a blob and verifies its hash: a mismatch is ERR_INTERNAL ("corrupt"). Larger than
 * max_len: ERR_TOO_LARGE. Missing: ERR_NOT_FOUND. *data is malloc'd. */
int ms_blob_get(ms_store *s, const char *sha256_hex, size_t max_len, uint8_t **data,
                size_t *len, err_t *err);
/* Removes the file. Missing: ERR_NOT_FOUND. Does not look at references. */
int ms_blob_delete(ms_store *s, const char *sha256_hex, err_t *err);
/* Removes blob files that no row references, and stale temporary files, whose mtime is before
 * older_than (the grace keeps a put that is about to be referenced). */
int ms_blob_gc_unreferenced(ms_store *s, int64_t older_than, int64_t *removed, err_t *err);

/* A directive's diff (§1.13 slot diff_blob; metadata row + blob file). */
typedef struct ms_diff_blob {
        char directive_id[MS_ID_SIZE];
        char sha256[MS_SHA256_HEX_SIZE];
        int64_t byte_size;
        int64_t created_at;
} ms_diff_blob;

/* Stores the diff of a directive: the same content again is accepted (*existed = true), a
 * different one is ERR_CONFLICT (§3.2.7 step 5 "diff_blob mismatch"). out/existed may be
 * NULL. */
int ms_diff_blob_store(ms_store *s, const char *directive_id, const void *data, size_t len,
                       int64_t now, ms_diff_blob *out, bool *existed, err_t *err);
int ms_diff_blob_get(ms_store *s, const char *directive_id, ms_diff_blob *out, err_t *err);
/* The diff bytes, hash-verified (see ms_blob_get). */
int ms_diff_blob_read(ms_store *s, const char *directive_id, size_t max_len, uint8_t **data,
                      size_t *len, err_t *err);
/* Retention (§10.3): purges up to batch_size diff blobs created before cutoff, oldest first,
 * each in its own transaction (row, then the file when nothing else references it). A
 * failure on one does not stop the rest; *purged counts successes and the first failure is
 * returned at the end. batch_size <= 0: does nothing. */
int ms_diff_blob_purge_before(ms_store *s, int64_t cutoff, int batch_size, int64_t *purged,
                              err_t *err);
