/* proto/wire.h — Conduits wire types shared by mothership and nexusd (DESIGN D9).
 *
 * One C struct per message of contract/conduits_api_openapi.yaml, each with:
 *
 *   int     wire_X_parse(const json_t *j, wire_X *out, err_t *err);
 *   json_t *wire_X_to_json(const wire_X *x, err_t *err);
 *   int     wire_X_validate(const wire_X *x, err_t *err);
 *   void    wire_X_free(wire_X *x);           (types that own heap memory)
 *
 * Parsing is strict about JSON types (a string where an integer belongs is an error, a JSON
 * real is never an integer) and bounds every string, array and decoded payload; it also
 * decodes enums and base64. Unknown keys are ignored in requests and responses alike (spec
 * nexus §0: unknown response fields are ignored; spec mothership §0.2: unknown parameters are
 * ignored). A key whose value is null counts as absent (mothership §0.2).
 * Validation checks the contract's ranges and formats: ids and tokens non-empty, profiles
 * matching [a-z0-9-]{1,32}, RFC 3339 timestamps, seq >= 0, timeout_seconds >= 1,
 * max_directives_to_claim 1..5, and the net/fs capability schemas (proto/netcap.h, fscap.h).
 * Call both: parse then validate (the *_parse_text helpers do both).
 *
 * Serialisation follows spec nexus §4.3 where it fixes presence: e.g. finished.exit_code is
 * always present (null when unknown), *_truncated flags and diff_base64 are omitted when
 * false/empty, poll.supported_sandbox_profiles is always present, max_directives_to_claim and
 * wait_seconds are omitted when 0. Optional strings are omitted when NULL. to_json does not
 * validate: it fails only on ENOMEM, invalid UTF-8 or an enum it cannot name.
 *
 * Ownership: every char * and uint8_t * is malloc'd and owned by its struct; every json_t *
 * is a private deep copy owned by its struct (one reference). On parse failure *out is left
 * zeroed. *_free releases everything, leaves the struct zeroed and is safe to call twice.
 *
 * Error messages name the path, e.g.
 *   spec.limits: field "cpu" must be an integer, got string
 *   directives[0]: spec: field "timeout_seconds" must be >= 1, got 0
 * Oversize base64 payloads carry ERR_TOO_LARGE (mothership §3.2.6/§3.2.7 answer it with 422
 * invalid_param); every other input error carries ERR_INVALID. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/error.h"

/* Hard caps on string fields, in bytes (UTF-8), and on array sizes. */
#define WIRE_ID_MAX 128              /* directive, territory, command, facility ids */
#define WIRE_TOKEN_MAX 4096          /* directive_token (JWT), enroll_token */
#define WIRE_COMMAND_MAX 65536       /* spec.command */
#define WIRE_PATH_MAX 4096           /* mount, cwd, shell, artifact globs */
#define WIRE_URL_MAX 2048            /* repo_url, cable_url */
#define WIRE_PEM_MAX 16384           /* csr_pem, mtls_client_cert_pem, ca_bundle_pem */
#define WIRE_NAME_MAX 255            /* name, display_name, entity refs */
#define WIRE_VERSION_MAX 64          /* nexus_version, latest_version, platform */
#define WIRE_SHORT_MAX 128           /* sandbox_version, snapshots, capability names */
#define WIRE_STATE_MAX 32            /* state, final_state */
#define WIRE_RUNTIME_REF_MAX 256
#define WIRE_TIMESTAMP_MAX 64
#define WIRE_PROFILE_MAX 32          /* [a-z0-9-]{1,32} */
#define WIRE_PROFILES_MAX 16         /* items in supported_sandbox_profiles */
#define WIRE_CAPABILITIES_MAX 256    /* items in territory heartbeat capabilities */
#define WIRE_COLLECT_MAX 256         /* items in spec.artifacts.collect */
#define WIRE_LEASES_MAX 32           /* leases in one poll response (contract sends <= 5) */
#define WIRE_BRIDGE_ENTITIES_MAX 4096

/* Defaults for the decoded payload caps of the plain parse functions. */
#define WIRE_LOG_CHUNK_MAX_DEFAULT 262144   /* mothership §3.2.6 MAX_CHUNK default */
#define WIRE_DIFF_MAX_DEFAULT 1048576       /* mothership §1.5 default max_diff_bytes */

#define WIRE_CLAIM_MAX 5             /* contract: max_directives_to_claim 1..5 */
#define WIRE_WAIT_MAX 30             /* our long-poll extension (DESIGN D9): 0..30 s */
#define WIRE_COMMAND_TIMEOUT_MAX 300 /* mothership §1.11, nexus §11.5 */

typedef struct wire_strlist {
        char **items;
        size_t n;
} wire_strlist;

void wire_strlist_free(wire_strlist *l);

typedef enum wire_kind {
        WIRE_KIND_NONE = 0,          /* absent */
        WIRE_KIND_SERVER,
        WIRE_KIND_DESKTOP,
        WIRE_KIND_MOBILE,
        WIRE_KIND_BRIDGE,
} wire_kind;

typedef enum wire_stream {
        WIRE_STREAM_NONE = 0,        /* unset: never valid */
        WIRE_STREAM_STDOUT,
        WIRE_STREAM_STDERR,
} wire_stream;

typedef enum wire_status {
        WIRE_STATUS_NONE = 0,        /* unset: never valid */
        WIRE_STATUS_SUCCEEDED,
        WIRE_STATUS_FAILED,
        WIRE_STATUS_CANCELED,
        WIRE_STATUS_TIMED_OUT,
} wire_status;

/* Enum names as on the wire; NULL for NONE or an out-of-range value. */
const char *wire_kind_name(wire_kind k);
const char *wire_stream_name(wire_stream s);
const char *wire_status_name(wire_status s);
/* Wire name → enum; returns <0 with err naming the accepted values. */
int wire_kind_from_name(const char *s, wire_kind *out, err_t *err);
int wire_stream_from_name(const char *s, wire_stream *out, err_t *err);
int wire_status_from_name(const char *s, wire_status *out, err_t *err);

/* True if s is an identifier safe in URL paths and file names: 1..WIRE_ID_MAX bytes of
 * [A-Za-z0-9_.-], the first one alphanumeric (nexus §5.3's directive-id rule; server ids are
 * UUIDs). Facility ids are NOT held to it here: nexus §5.3/§5.2 rejects a bad one with a
 * finished report, which needs the lease to decode. */
bool wire_id_is_valid(const char *s);
/* True if s is a sandbox profile token: [a-z0-9-]{1,32}. */
bool wire_profile_is_valid(const char *s);
/* RFC 3339 date-time (core/clock.h rfc3339_parse: real field ranges, 1-9 fraction digits, no
 * leap second). Producers here always write UTC with 'Z' (nexus §0); a numeric offset is
 * accepted on input, as the contract only says "format: date-time". */
int wire_timestamp_check(const char *s, err_t *err);

/* ── Limits (contract components.schemas.Limits) ─────────────────────────────────────── */
typedef struct wire_limits {
        int64_t cpu;                 /* millicores */
        int64_t memory_mb;
        int64_t disk_mb;
        int64_t max_output_bytes;
        int64_t max_diff_bytes;
        bool has_cpu, has_memory_mb, has_disk_mb, has_max_output_bytes, has_max_diff_bytes;
} wire_limits;

int wire_limits_parse(const json_t *j, wire_limits *out, err_t *err);
json_t *wire_limits_to_json(const wire_limits *x, err_t *err);
int wire_limits_validate(const wire_limits *x, err_t *err);

/* ── DirectiveSpec (contract; mothership §7.5; nexus §4.3) ──────────────────────────── */
typedef struct wire_facility {
        char *id;                    /* required */
        char *mount;                 /* optional */
        char *repo_url;              /* optional */
} wire_facility;

typedef struct wire_directive_spec {
        char *directive_id;          /* required */
        wire_facility facility;      /* required */
        char *sandbox_profile;       /* optional; never defaulted here (nexus §4.3) */
        char *command;               /* required, non-empty */
        char *shell;                 /* optional */
        char *cwd;                   /* optional */
        int64_t timeout_seconds;     /* >= 1 when has_timeout_seconds */
        bool has_timeout_seconds;
        wire_limits limits;          /* always serialised, {} when empty (mothership §7.5) */
        /* capabilities.net / .fs: NULL when absent or null (= nothing granted). An empty
         * object {} is what mothership §6.6 sends when no net policy applies; it is kept as
         * is and, like NULL, grants nothing, so it is not schema-checked. Other keys of
         * capabilities (secrets, sandbox_profile_rules) are not forwarded by nexus and are
         * dropped. */
        json_t *cap_net;
        json_t *cap_fs;
        wire_strlist artifacts_collect;  /* glob patterns; omitted when empty */
        bool artifacts_always_diff;      /* omitted when false */
} wire_directive_spec;

int wire_directive_spec_parse(const json_t *j, wire_directive_spec *out, err_t *err);
json_t *wire_directive_spec_to_json(const wire_directive_spec *x, err_t *err);
int wire_directive_spec_validate(const wire_directive_spec *x, err_t *err);
void wire_directive_spec_free(wire_directive_spec *x);
/* json_parse + parse + validate. */
int wire_directive_spec_parse_text(const char *data, size_t len, wire_directive_spec *out,
                                   err_t *err);

/* ── DirectiveLease ────────────────────────────────────────────────────────────────────── */
typedef struct wire_directive_lease {
        char *directive_id;          /* the id nexus uses everywhere (nexus §4.3) */
        char *directive_token;
        wire_directive_spec spec;
} wire_directive_lease;

int wire_directive_lease_parse(const json_t *j, wire_directive_lease *out, err_t *err);
json_t *wire_directive_lease_to_json(const wire_directive_lease *x, err_t *err);
int wire_directive_lease_validate(const wire_directive_lease *x, err_t *err);
void wire_directive_lease_free(wire_directive_lease *x);
int wire_directive_lease_parse_text(const char *data, size_t len, wire_directive_lease *out,
                                    err_t *err);

/* ── PendingCommand (command track, mothership §3.2.8) ──────────────────────────────────── */
typedef struct wire_pending_command {
        char *command_id;            /* required */
        char *capability;            /* required, e.g. "camera.snap" */
        json_t *params;              /* object or NULL; serialised as {} when NULL */
        char *bridge_entity_ref;     /* NULL serialises as null (mothership §3.2.8) */
        int64_t timeout_seconds;     /* required, 1..300 */
        char *created_at;            /* required, RFC 3339 UTC */
} wire_pending_command;

int wire_pending_command_parse(const json_t *j, wire_pending_command *out, err_t *err);
json_t *wire_pending_command_to_json(const wire_pending_command *x, err_t *err);
int wire_pending_command_validate(const wire_pending_command *x, err_t *err);
void wire_pending_command_free(wire_pending_command *x);

/* ── Enrollment (mothership §3.2.1; nexus §3) ──────────────────────────────────────────── */
typedef struct wire_enroll_request {
        char *enroll_token;          /* required, non-empty */
        char *name;                  /* omitted when NULL or empty (nexus §3.1) */
        wire_kind kind;              /* omitted when NONE (server defaults to server) */
        char *platform;
        char *display_name;
        json_t *labels;              /* object; omitted when NULL or empty (nexus §3.1) */
        json_t *metadata;            /* object; omitted when NULL */
        char *csr_pem;
} wire_enroll_request;

int wire_enroll_request_parse(const json_t *j, wire_enroll_request *out, err_t *err);
json_t *wire_enroll_request_to_json(const wire_enroll_request *x, err_t *err);
int wire_enroll_request_validate(const wire_enroll_request *x, err_t *err);
void wire_enroll_request_free(wire_enroll_request *x);

typedef struct wire_enroll_config {
        int64_t poll_interval_seconds;
        int64_t heartbeat_interval_seconds;
        int64_t heartbeat_interval_ws_seconds;
        int64_t lease_ttl_seconds;
        bool has_poll_interval_seconds, has_heartbeat_interval_seconds,
             has_heartbeat_interval_ws_seconds, has_lease_ttl_seconds;
        char *cable_url;
} wire_enroll_config;

typedef struct wire_enroll_response {
        char *territory_id;          /* required */
        wire_kind kind;              /* echoed; omitted when NONE */
        char *mtls_client_cert_pem;  /* omitted (not null) without a CSR (mothership §3.2.1) */
        char *ca_bundle_pem;
        wire_enroll_config config;   /* required object */
} wire_enroll_response;

int wire_enroll_response_parse(const json_t *j, wire_enroll_response *out, err_t *err);
json_t *wire_enroll_response_to_json(const wire_enroll_response *x, err_t *err);
int wire_enroll_response_validate(const wire_enroll_response *x, err_t *err);
void wire_enroll_response_free(wire_enroll_response *x);

/* ── Territory heartbeat (mothership §3.2.2; nexus §4.3, §11.3) ──────────────────────── */
typedef struct wire_territory_heartbeat_request {
        char *nexus_version;
        int64_t running_directives_count;   /* always present, >= 0 (nexus §4.3) */
        json_t *labels;              /* object or NULL */
        json_t *capacity;            /* object: max_concurrent, sandbox_health, supported_profiles */
        json_t *runtime_status;      /* object: running_directives (nexus §4.3 ADVISED) */
        wire_strlist capabilities;   /* omitted when empty (nexus §11.7) */
        json_t *bridge_entities;     /* array of {entity_ref, entity_type, ...} or NULL */
        json_t *telemetry;           /* object or NULL */
} wire_territory_heartbeat_request;

int wire_territory_heartbeat_request_parse(const json_t *j, wire_territory_heartbeat_request *out,
                                           err_t *err);
json_t *wire_territory_heartbeat_request_to_json(const wire_territory_heartbeat_request *x,
                                                 err_t *err);
int wire_territory_heartbeat_request_validate(const wire_territory_heartbeat_request *x,
                                              err_t *err);
void wire_territory_heartbeat_request_free(wire_territory_heartbeat_request *x);

typedef struct wire_territory_heartbeat_response {
        bool ok;                     /* always serialised */
        char *territory_id;
        int64_t next_heartbeat_interval_seconds;   /* 0 = absent */
        bool websocket_connected;    /* always serialised */
        bool upgrade_available;      /* omitted when false */
        char *latest_version;
        char *min_compatible_version;
} wire_territory_heartbeat_response;

int wire_territory_heartbeat_response_parse(const json_t *j,
                                            wire_territory_heartbeat_response *out, err_t *err);
json_t *wire_territory_heartbeat_response_to_json(const wire_territory_heartbeat_response *x,
                                                  err_t *err);
int wire_territory_heartbeat_response_validate(const wire_territory_heartbeat_response *x,
                                               err_t *err);
void wire_territory_heartbeat_response_free(wire_territory_heartbeat_response *x);

/* ── Poll (mothership §3.2.3, §7; nexus §4.3, §4.5) ───────────────────────────────────── */
typedef struct wire_poll_request {
        wire_strlist supported_sandbox_profiles;  /* always serialised */
        int64_t max_directives_to_claim;          /* 1..5; 0 = absent (omitted) */
        int64_t wait_seconds;                     /* 0..30; 0 = absent (omitted) */
} wire_poll_request;

int wire_poll_request_parse(const json_t *j, wire_poll_request *out, err_t *err);
json_t *wire_poll_request_to_json(const wire_poll_request *x, err_t *err);
int wire_poll_request_validate(const wire_poll_request *x, err_t *err);
void wire_poll_request_free(wire_poll_request *x);

typedef struct wire_poll_response {
        wire_directive_lease *directives;  /* n_directives leases */
        size_t n_directives;
        int64_t lease_ttl_seconds;         /* >= 0, informational (nexus §4.3) */
        int64_t retry_after_seconds;       /* >= 0: the server sends 0 with leases
                                            * (mothership §3.2.3) although the contract
                                            * says minimum 1 */
        bool has_lease_ttl_seconds, has_retry_after_seconds;
} wire_poll_response;

/* Note: one malformed lease makes the whole response fail, as in the reference daemon
 * (nexus §0). A daemon that wants to reject just that lease (nexus §5.2) can walk the
 * "directives" array itself with wire_directive_lease_parse(). */

int wire_poll_response_parse(const json_t *j, wire_poll_response *out, err_t *err);
json_t *wire_poll_response_to_json(const wire_poll_response *x, err_t *err);
int wire_poll_response_validate(const wire_poll_response *x, err_t *err);
void wire_poll_response_free(wire_poll_response *x);
int wire_poll_response_parse_text(const char *data, size_t len, wire_poll_response *out,
                                  err_t *err);

/* ── started (mothership §3.2.4; nexus §4.3) ───────────────────────────────────────────── */
typedef struct wire_started_request {
        json_t *effective_capabilities_summary;   /* object or NULL */
        char *sandbox_version;
        char *nexus_version;
        char *runtime_ref;           /* never sent by nexus */
        char *started_at;            /* RFC 3339 UTC */
} wire_started_request;

int wire_started_request_parse(const json_t *j, wire_started_request *out, err_t *err);
json_t *wire_started_request_to_json(const wire_started_request *x, err_t *err);
int wire_started_request_validate(const wire_started_request *x, err_t *err);
void wire_started_request_free(wire_started_request *x);

typedef struct wire_started_response {
        bool ok;
        char *directive_id;
        char *state;
        bool duplicate;
} wire_started_response;

int wire_started_response_parse(const json_t *j, wire_started_response *out, err_t *err);
json_t *wire_started_response_to_json(const wire_started_response *x, err_t *err);
int wire_started_response_validate(const wire_started_response *x, err_t *err);
void wire_started_response_free(wire_started_response *x);

/* ── Directive heartbeat (mothership §3.2.5; nexus §4.3, §5.11) ─────────────────────── */
typedef struct wire_directive_heartbeat_request {
        json_t *progress;            /* object or NULL */
        int64_t last_output_seq;     /* >= 0 when has_last_output_seq */
        bool has_last_output_seq;
        char *now;                   /* RFC 3339 UTC */
} wire_directive_heartbeat_request;

int wire_directive_heartbeat_request_parse(const json_t *j, wire_directive_heartbeat_request *out,
                                           err_t *err);
json_t *wire_directive_heartbeat_request_to_json(const wire_directive_heartbeat_request *x,
                                                 err_t *err);
int wire_directive_heartbeat_request_validate(const wire_directive_heartbeat_request *x,
                                              err_t *err);
void wire_directive_heartbeat_request_free(wire_directive_heartbeat_request *x);

typedef struct wire_directive_heartbeat_response {
        bool cancel_requested;       /* always serialised */
        bool lease_renewed;          /* always serialised */
        char *directive_token;       /* replaces the current token when non-empty */
} wire_directive_heartbeat_response;

int wire_directive_heartbeat_response_parse(const json_t *j,
                                            wire_directive_heartbeat_response *out, err_t *err);
json_t *wire_directive_heartbeat_response_to_json(const wire_directive_heartbeat_response *x,
                                                  err_t *err);
int wire_directive_heartbeat_response_validate(const wire_directive_heartbeat_response *x,
                                               err_t *err);
void wire_directive_heartbeat_response_free(wire_directive_heartbeat_response *x);

/* ── Log chunks (mothership §3.2.6; nexus §4.3, §5.9) ─────────────────────────────────── */
typedef struct wire_log_chunk_request {
        wire_stream stream;
        int64_t seq;                 /* >= 0, always serialised */
        uint8_t *bytes;              /* decoded; base64 on the wire */
        size_t bytes_len;
        bool truncated;              /* omitted when false */
} wire_log_chunk_request;

/* wire_log_chunk_request_parse caps the decoded chunk at WIRE_LOG_CHUNK_MAX_DEFAULT. */
int wire_log_chunk_request_parse(const json_t *j, wire_log_chunk_request *out, err_t *err);
int wire_log_chunk_request_parse_capped(const json_t *j, size_t max_bytes,
                                        wire_log_chunk_request *out, err_t *err);
json_t *wire_log_chunk_request_to_json(const wire_log_chunk_request *x, err_t *err);
int wire_log_chunk_request_validate(const wire_log_chunk_request *x, err_t *err);
void wire_log_chunk_request_free(wire_log_chunk_request *x);

typedef struct wire_log_chunk_response {
        bool ok;
        char *directive_id;
        wire_stream stream;
        int64_t seq;
        bool stored;
        bool duplicate;
        int64_t accepted_bytes;
        bool truncated;
} wire_log_chunk_response;

int wire_log_chunk_response_parse(const json_t *j, wire_log_chunk_response *out, err_t *err);
json_t *wire_log_chunk_response_to_json(const wire_log_chunk_response *x, err_t *err);
int wire_log_chunk_response_validate(const wire_log_chunk_response *x, err_t *err);
void wire_log_chunk_response_free(wire_log_chunk_response *x);

/* ── finished (mothership §3.2.7; nexus §4.3, §5.13) ──────────────────────────────────── */
typedef struct wire_finished_request {
        int64_t exit_code;
        bool has_exit_code;          /* false: serialised as "exit_code": null */
        wire_status status;
        bool stdout_truncated, stderr_truncated, diff_truncated;   /* omitted when false */
        char *snapshot_before;
        char *snapshot_after;
        json_t *artifacts_manifest;  /* object; NULL serialises as {} (nexus §4.3) */
        uint8_t *diff;               /* decoded diff_base64; omitted when diff_len == 0 */
        size_t diff_len;
        char *finished_at;           /* RFC 3339 UTC */
} wire_finished_request;

/* wire_finished_request_parse caps the decoded diff at WIRE_DIFF_MAX_DEFAULT; the server
 * passes the directive's max_diff_bytes to the _capped variant (mothership §1.5). */
int wire_finished_request_parse(const json_t *j, wire_finished_request *out, err_t *err);
int wire_finished_request_parse_capped(const json_t *j, size_t max_diff,
                                       wire_finished_request *out, err_t *err);
json_t *wire_finished_request_to_json(const wire_finished_request *x, err_t *err);
int wire_finished_request_validate(const wire_finished_request *x, err_t *err);
void wire_finished_request_free(wire_finished_request *x);
int wire_finished_request_parse_text(const char *data, size_t len, wire_finished_request *out,
                                     err_t *err);

typedef struct wire_finished_response {
        bool ok;
        char *directive_id;
        char *final_state;
        bool duplicate;
} wire_finished_response;

int wire_finished_response_parse(const json_t *j, wire_finished_response *out, err_t *err);
json_t *wire_finished_response_to_json(const wire_finished_response *x, err_t *err);
int wire_finished_response_validate(const wire_finished_response *x, err_t *err);
void wire_finished_response_free(wire_finished_response *x);
