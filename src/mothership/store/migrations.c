/* store/migrations.c — numbered schema migrations (DESIGN D7), applied in order at start-up
 * by sqlite.c, each in its own transaction and recorded in schema_migrations. A migration is
 * never edited once released: a schema change is a new entry at the end.
 *
 * Tables follow spec mothership §1.1-§1.9 (names, columns, uniques, indexes), plus
 * api_tokens (DESIGN D10) and diff_blobs (§1.13: metadata of content-addressed files).
 * Conventions of the schema:
 *   - STRICT tables (SQLite >= 3.37), foreign keys enforced (PRAGMA foreign_keys per
 *     connection);
 *   - ids are UUID text; timestamps are RFC 3339 UTC with exactly three fraction digits and a
 *     'Z', checked by pattern, so that comparing the text compares the times;
 *   - json columns are TEXT checked with json_valid() and, where the spec fixes it, the JSON
 *     type; booleans are INTEGER 0/1; enumerations are CHECKed lists.
 * The macros below only shorten those repeated column definitions. */
#include "store/store_internal.h"

#define TS_PATTERN "'[0-9][0-9][0-9][0-9]-[01][0-9]-[0-3][0-9]" \
                   "T[0-2][0-9]:[0-5][0-9]:[0-6][0-9].[0-9][0-9][0-9]Z'"
/* NOT NULL / nullable timestamp column. */
#define TS(c) #c " TEXT NOT NULL CHECK (" #c " GLOB " TS_PATTERN ")"
#define TS_NULL(c) #c " TEXT CHECK (" #c " GLOB " TS_PATTERN ")"
/* JSON column of a fixed type ('object' / 'array'); json_type() is only asked of valid text. */
#define JSON_OF(c, dflt, type) \
        #c " TEXT NOT NULL DEFAULT '" dflt "' CHECK (CASE WHEN json_valid(" #c ") " \
        "THEN json_type(" #c ") = '" type "' ELSE 0 END)"
#define JSON_OBJ(c) JSON_OF(c, "{}", "object")
#define JSON_ARR(c) JSON_OF(c, "[]", "array")
/* Any JSON value, nullable. */
#define JSON_ANY_NULL(c) #c " TEXT CHECK (" #c " IS NULL OR json_valid(" #c "))"
#define BOOL(c) #c " INTEGER NOT NULL DEFAULT 0 CHECK (" #c " IN (0, 1))"
#define ID_PK "id TEXT PRIMARY KEY CHECK (length(id) = 36)"
#define PRESENT(c) "CHECK (trim(" #c ") <> '')"
#define HEX64(c) "CHECK (length(" #c ") = 64 AND " #c " NOT GLOB '*[^0-9a-f]*')"
#define INT32(c) "CHECK (" #c " BETWEEN -2147483648 AND 2147483647)"
#define STAMPS TS(created_at) ",\n  " TS(updated_at)

static const char m0001_init[] =
"CREATE TABLE accounts (\n"
"  " ID_PK ",\n"
"  name TEXT NOT NULL " PRESENT(name) ",\n"
"  " STAMPS "\n"
") STRICT;\n"

/* §1.2: deleting an account detaches its users. */
"CREATE TABLE users (\n"
"  " ID_PK ",\n"
"  account_id TEXT REFERENCES accounts(id) ON DELETE SET NULL,\n"
"  name TEXT,\n"
"  " STAMPS "\n"
") STRICT;\n"
"CREATE INDEX users_account_id ON users(account_id);\n"

/* DESIGN D10: per-user bearer tokens, stored as SHA-256 hex only. */
"CREATE TABLE api_tokens (\n"
"  " ID_PK ",\n"
"  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,\n"
"  token_digest TEXT NOT NULL UNIQUE " HEX64(token_digest) ",\n"
"  name TEXT,\n"
"  " TS_NULL(last_used_at) ",\n"
"  " TS_NULL(revoked_at) ",\n"
"  " STAMPS "\n"
") STRICT;\n"
"CREATE INDEX api_tokens_user_id ON api_tokens(user_id);\n"

/* §1.3 */
"CREATE TABLE conduits_territories (\n"
"  " ID_PK ",\n"
"  account_id TEXT REFERENCES accounts(id),\n"
"  name TEXT NOT NULL " PRESENT(name) ",\n"
"  status TEXT NOT NULL DEFAULT 'pending'\n"
"    CHECK (status IN ('pending', 'online', 'offline', 'decommissioned')),\n"
"  kind TEXT NOT NULL DEFAULT 'server'\n"
"    CHECK (kind IN ('server', 'desktop', 'mobile', 'bridge')),\n"
"  platform TEXT,\n"
"  display_name TEXT,\n"
"  location TEXT,\n"
"  " JSON_ARR(tags) ",\n"
"  " JSON_ARR(capabilities) ",\n"
"  " JSON_OBJ(labels) ",\n"
"  " JSON_OBJ(capacity) ",\n"
"  " JSON_OBJ(runtime_status) ",\n"
"  nexus_version TEXT,\n"
"  " TS_NULL(last_heartbeat_at) ",\n"
"  client_cert_fingerprint TEXT " HEX64(client_cert_fingerprint) ",\n"
"  " TS_NULL(websocket_connected_at) ",\n"
"  push_token TEXT,\n"
"  push_platform TEXT CHECK (push_platform IN ('apns', 'fcm')),\n"
"  " STAMPS "\n"
") STRICT;\n"
"CREATE INDEX conduits_territories_account_id ON conduits_territories(account_id);\n"
"CREATE INDEX conduits_territories_status ON conduits_territories(status, last_heartbeat_at);\n"
"CREATE INDEX conduits_territories_kind ON conduits_territories(kind);\n"
/* §1.3: unique among non-null values. */
"CREATE UNIQUE INDEX conduits_territories_fingerprint\n"
"  ON conduits_territories(client_cert_fingerprint) WHERE client_cert_fingerprint IS NOT NULL;\n"

/* §1.4: locked_by_directive_id deliberately has no foreign key. */
"CREATE TABLE conduits_facilities (\n"
"  " ID_PK ",\n"
"  account_id TEXT REFERENCES accounts(id),\n"
"  owner_id TEXT NOT NULL REFERENCES users(id),\n"
"  territory_id TEXT NOT NULL REFERENCES conduits_territories(id),\n"
"  locked_by_directive_id TEXT,\n"
"  kind TEXT NOT NULL CHECK (kind IN ('repo', 'empty', 'imported_path')),\n"
"  root_handle TEXT,\n"
"  repo_url TEXT,\n"
"  retention_policy TEXT NOT NULL CHECK (json_valid(retention_policy)),\n"
"  size_bytes INTEGER NOT NULL DEFAULT 0,\n"
"  " STAMPS "\n"
") STRICT;\n"
"CREATE INDEX conduits_facilities_account_id ON conduits_facilities(account_id);\n"
"CREATE INDEX conduits_facilities_owner_id ON conduits_facilities(owner_id);\n"
"CREATE INDEX conduits_facilities_territory_id ON conduits_facilities(territory_id);\n"
"CREATE INDEX conduits_facilities_locked_by ON conduits_facilities(locked_by_directive_id);\n"

/* §1.5 */
"CREATE TABLE conduits_directives (\n"
"  " ID_PK ",\n"
"  account_id TEXT NOT NULL REFERENCES accounts(id),\n"
"  facility_id TEXT NOT NULL REFERENCES conduits_facilities(id),\n"
"  territory_id TEXT REFERENCES conduits_territories(id),\n"
"  requested_by_user_id TEXT NOT NULL REFERENCES users(id),\n"
"  approved_by_user_id TEXT REFERENCES users(id),\n"
"  state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'awaiting_approval',\n"
"    'leased', 'running', 'succeeded', 'failed', 'canceled', 'timed_out')),\n"
"  sandbox_profile TEXT NOT NULL DEFAULT 'untrusted'\n"
"    CHECK (sandbox_profile IN ('untrusted', 'trusted', 'host', 'darwin-automation')),\n"
"  command TEXT NOT NULL " PRESENT(command) ",\n"
"  shell TEXT,\n"
"  cwd TEXT,\n"
"  timeout_seconds INTEGER NOT NULL DEFAULT 0 " INT32(timeout_seconds) ",\n"
"  " JSON_OBJ(limits) ",\n"
"  " JSON_OBJ(requested_capabilities) ",\n"
"  " JSON_OBJ(effective_capabilities) ",\n"
"  " JSON_ANY_NULL(policy_snapshot) ",\n"
"  " JSON_ARR(env_allowlist) ",\n"
"  " JSON_ARR(env_refs) ",\n"
"  runtime_ref TEXT,\n"
"  " JSON_ANY_NULL(egress_proxy_policy_snapshot) ",\n"
"  exit_code INTEGER " INT32(exit_code) ",\n"
"  finished_status TEXT\n"
"    CHECK (finished_status IN ('succeeded', 'failed', 'canceled', 'timed_out')),\n"
"  " BOOL(stdout_truncated) ",\n"
"  " BOOL(stderr_truncated) ",\n"
"  " BOOL(diff_truncated) ",\n"
"  stdout_bytes INTEGER NOT NULL DEFAULT 0 CHECK (stdout_bytes >= 0),\n"
"  stderr_bytes INTEGER NOT NULL DEFAULT 0 CHECK (stderr_bytes >= 0),\n"
"  result_hash TEXT,\n"
"  snapshot_before TEXT,\n"
"  snapshot_after TEXT,\n"
"  " JSON_OBJ(artifacts_manifest) ",\n"
"  nexus_version TEXT,\n"
"  sandbox_version TEXT,\n"
"  " TS_NULL(lease_expires_at) ",\n"
"  " TS_NULL(last_heartbeat_at) ",\n"
"  " TS_NULL(cancel_requested_at) ",\n"
"  " TS_NULL(finished_at) ",\n"
"  " STAMPS ",\n"
/* §2.1 lease guard: a leased or running directive always names its territory. */
"  CHECK (state NOT IN ('leased', 'running') OR territory_id IS NOT NULL)\n"
") STRICT;\n"
/* §1.5: (state, account_id, sandbox_profile) for polling, (state, lease_expires_at) for the
 * reaper; the rest serve the user API lists and foreign-key checks. */
"CREATE INDEX conduits_directives_poll\n"
"  ON conduits_directives(state, account_id, sandbox_profile, created_at);\n"
"CREATE INDEX conduits_directives_reaper ON conduits_directives(state, lease_expires_at);\n"
"CREATE INDEX conduits_directives_facility ON conduits_directives(facility_id, id);\n"
"CREATE INDEX conduits_directives_account ON conduits_directives(account_id, id);\n"
"CREATE INDEX conduits_directives_territory ON conduits_directives(territory_id);\n"
"CREATE INDEX conduits_directives_requested_by ON conduits_directives(requested_by_user_id);\n"
"CREATE INDEX conduits_directives_approved_by ON conduits_directives(approved_by_user_id);\n"

/* §1.6: deleting a directive deletes its chunks. */
"CREATE TABLE conduits_log_chunks (\n"
"  " ID_PK ",\n"
"  directive_id TEXT NOT NULL REFERENCES conduits_directives(id) ON DELETE CASCADE,\n"
"  stream TEXT NOT NULL CHECK (stream IN ('stdout', 'stderr')),\n"
"  seq INTEGER NOT NULL CHECK (seq BETWEEN 0 AND 2147483647),\n"
"  bytes BLOB NOT NULL CHECK (length(bytes) > 0),\n"
"  bytesize INTEGER NOT NULL,\n"
"  " BOOL(truncated) ",\n"
"  " STAMPS ",\n"
"  CHECK (bytesize = length(bytes)),\n"
"  UNIQUE (directive_id, stream, seq)\n"
") STRICT;\n"
"CREATE INDEX conduits_log_chunks_retention ON conduits_log_chunks(created_at, id);\n"

/* §1.7 */
"CREATE TABLE conduits_policies (\n"
"  " ID_PK ",\n"
"  account_id TEXT REFERENCES accounts(id),\n"
"  scope_type TEXT CHECK (scope_type IN ('Account', 'User', 'Conduits::Facility')),\n"
"  scope_id TEXT,\n"
"  priority INTEGER NOT NULL DEFAULT 0 " INT32(priority) ",\n"
"  name TEXT NOT NULL " PRESENT(name) ",\n"
"  " JSON_OBJ(fs) ",\n"
"  " JSON_OBJ(net) ",\n"
"  " JSON_OBJ(secrets) ",\n"
"  " JSON_OBJ(sandbox_profile_rules) ",\n"
"  " JSON_OBJ(approval) ",\n"
"  " JSON_OBJ(device) ",\n"
"  active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),\n"
"  " STAMPS "\n"
") STRICT;\n"
"CREATE INDEX conduits_policies_scope ON conduits_policies(scope_type, scope_id);\n"
"CREATE INDEX conduits_policies_account ON conduits_policies(account_id, priority);\n"

/* §1.8: only the digest of the plaintext is stored. */
"CREATE TABLE conduits_enrollment_tokens (\n"
"  " ID_PK ",\n"
"  account_id TEXT NOT NULL REFERENCES accounts(id),\n"
"  created_by_user_id TEXT NOT NULL REFERENCES users(id),\n"
"  token_digest TEXT NOT NULL UNIQUE " HEX64(token_digest) ",\n"
"  " JSON_OBJ(labels) ",\n"
"  " TS(expires_at) ",\n"
"  " TS_NULL(used_at) ",\n"
"  " TS_NULL(revoked_at) ",\n"
"  " STAMPS "\n"
") STRICT;\n"
"CREATE INDEX conduits_enrollment_tokens_account ON conduits_enrollment_tokens(account_id);\n"
"CREATE INDEX conduits_enrollment_tokens_user ON conduits_enrollment_tokens(created_by_user_id);\n"

/* §1.9. command_id gets its foreign key with the commands table (§1.11, a later migration
 * rebuilds this table); territory_id is ours (filtering by territory), without a foreign key
 * so that audit rows never block deleting a territory. Deleting a directive deletes its
 * events (§1.5); deleting a user keeps the events. */
"CREATE TABLE conduits_audit_events (\n"
"  " ID_PK ",\n"
"  account_id TEXT NOT NULL REFERENCES accounts(id),\n"
"  directive_id TEXT REFERENCES conduits_directives(id) ON DELETE CASCADE,\n"
"  command_id TEXT,\n"
"  actor_id TEXT REFERENCES users(id) ON DELETE SET NULL,\n"
"  territory_id TEXT,\n"
"  event_type TEXT NOT NULL " PRESENT(event_type) ",\n"
"  severity TEXT NOT NULL DEFAULT 'info' CHECK (severity IN ('info', 'warn', 'critical')),\n"
"  " JSON_OBJ(payload) ",\n"
"  " JSON_OBJ(context) ",\n"
"  " STAMPS "\n"
") STRICT;\n"
"CREATE INDEX conduits_audit_events_type ON conduits_audit_events(event_type, created_at);\n"
"CREATE INDEX conduits_audit_events_directive ON conduits_audit_events(directive_id, created_at);\n"
"CREATE INDEX conduits_audit_events_created ON conduits_audit_events(created_at, id);\n"
"CREATE INDEX conduits_audit_events_command ON conduits_audit_events(command_id);\n"
"CREATE INDEX conduits_audit_events_actor ON conduits_audit_events(actor_id);\n"
"CREATE INDEX conduits_audit_events_account ON conduits_audit_events(account_id, id);\n"
"CREATE INDEX conduits_audit_events_territory ON conduits_audit_events(territory_id, id);\n"

/* §1.13: a directive owns at most one diff; bytes live in blobs/ by SHA-256. */
"CREATE TABLE diff_blobs (\n"
"  directive_id TEXT PRIMARY KEY REFERENCES conduits_directives(id) ON DELETE CASCADE,\n"
"  sha256 TEXT NOT NULL " HEX64(sha256) ",\n"
"  byte_size INTEGER NOT NULL CHECK (byte_size >= 0),\n"
"  " TS(created_at) "\n"
") STRICT;\n"
"CREATE INDEX diff_blobs_sha256 ON diff_blobs(sha256);\n"
"CREATE INDEX diff_blobs_created ON diff_blobs(created_at, directive_id);\n"
/* Every content address still in use; blob garbage collection reads only this view, so a
 * later table holding blobs (command attachments) extends the view, not the collector. */
"CREATE VIEW blob_refs(sha256) AS SELECT sha256 FROM diff_blobs;\n";

/* Egress audit records (nexus proxy decisions, spec nexus §7.10) travel as log chunks of a
 * third stream, "egress" (an additive wire extension, docs/api.md). SQLite cannot change a
 * CHECK in place: the table is rebuilt with the same columns and indexes. */
static const char m0002_egress_stream[] =
"CREATE TABLE conduits_log_chunks_new (\n"
"  " ID_PK ",\n"
"  directive_id TEXT NOT NULL REFERENCES conduits_directives(id) ON DELETE CASCADE,\n"
"  stream TEXT NOT NULL CHECK (stream IN ('stdout', 'stderr', 'egress')),\n"
"  seq INTEGER NOT NULL CHECK (seq BETWEEN 0 AND 2147483647),\n"
"  bytes BLOB NOT NULL CHECK (length(bytes) > 0),\n"
"  bytesize INTEGER NOT NULL,\n"
"  " BOOL(truncated) ",\n"
"  " STAMPS ",\n"
"  CHECK (bytesize = length(bytes)),\n"
"  UNIQUE (directive_id, stream, seq)\n"
") STRICT;\n"
"INSERT INTO conduits_log_chunks_new SELECT * FROM conduits_log_chunks;\n"
"DROP TABLE conduits_log_chunks;\n"
"ALTER TABLE conduits_log_chunks_new RENAME TO conduits_log_chunks;\n"
"CREATE INDEX conduits_log_chunks_retention ON conduits_log_chunks(created_at, id);\n";

/* Issue 4 (approval flow): who rejected a directive, why it was approved or rejected and
 * when (spec §3.3.5 records only approved_by_user_id), and when it started running (the
 * timing telemetry of the terminal audit event, §10.1). ADD COLUMN keeps every row. */
static const char m0003_directive_decisions[] =
"ALTER TABLE conduits_directives ADD COLUMN rejected_by_user_id TEXT REFERENCES users(id);\n"
"ALTER TABLE conduits_directives ADD COLUMN decision_reason TEXT\n"
"  CHECK (decision_reason IS NULL OR length(CAST(decision_reason AS BLOB)) <= 1000);\n"
"ALTER TABLE conduits_directives ADD COLUMN " TS_NULL(decided_at) ";\n"
"ALTER TABLE conduits_directives ADD COLUMN " TS_NULL(started_at) ";\n";

const ms_migration ms_migrations[] = {
        { 1, "init", m0001_init },
        { 2, "egress_stream", m0002_egress_stream },
        { 3, "directive_decisions", m0003_directive_decisions },
};
const size_t ms_migrations_count = sizeof(ms_migrations) / sizeof(ms_migrations[0]);
