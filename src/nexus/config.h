/* nexus/config.h — the nexusd configuration file (spec nexus §2, DESIGN D18).
 *
 * nx_config_load() starts from the built-in defaults (a YAML document, so every string is
 * malloc()ed as core/config wants), overlays the user's file with core/config (unknown keys,
 * ill-typed values, unset ${VAR}s are errors naming file:line:col), then derives and checks:
 * durations (Go syntax, §2.1), then the spec §2.4 rules in their order, then ours. The first
 * violated rule is reported as ONE line naming the file, the line of the key when the file
 * sets it, and the key:  "nexus.yaml:7: poll.max_directives_to_claim must be >= 1".
 *
 * Deliberate differences from the reference (spec §2.2, §2.4, §2.5 ADVISED):
 *   - unknown keys are errors; ${VAR} substitution touches scalar values only (core/config);
 *   - supported_sandbox_profiles is HONOURED (a profile runs only if listed), defaults to
 *     ["untrusted"], must be non-empty, each entry one of host, untrusted, trusted,
 *     darwin-automation, no duplicates (DESIGN D12: host is refused unless listed);
 *   - observability.listen_addr defaults to loopback "127.0.0.1:9090" and must parse as
 *     HOST:PORT / [V6]:PORT / :PORT with PORT 1..65535;
 *   - server_url must start with http:// or https://;
 *   - poll.max_directives_to_claim is 1..5 (the server never claims more than 5);
 *   - poll.long_poll_timeout and poll.retry_backoff must not be negative;
 *   - new key poll.wait_seconds (long-poll wait sent with polls, 0..30, default 20) must be
 *     shorter than poll.long_poll_timeout when that is > 0, or every long poll would time out;
 *   - work_dir is created if missing (mode 0700, parents too) and made absolute and
 *     symlink-free with realpath(); this happens last, after every check passed;
 *   - new key credentials_file: where `enroll` stores the territory id when the config has
 *     none; "" (default) means "<work_dir>/.nexus/credentials.json" (absolute work_dir);
 *   - rootfs.auto also requires the current arch's sha256 to be 64 hex digits. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/error.h"

#define NX_CONFIG_MAX_LABELS 64
#define NX_CONFIG_MAX_PROFILES 8
#define NX_CLAIM_MAX 5              /* server caps claims at 5 (spec §2.3) */
#define NX_WAIT_SECONDS_MAX 30
#define NX_LISTEN_HOST_MAX 256

typedef enum nx_untrusted_driver {
        NX_UNTRUSTED_BWRAP = 0,      /* "" or "bwrap" */
        NX_UNTRUSTED_FIRECRACKER,
} nx_untrusted_driver;

typedef struct nx_config_tls {
        char *ca_file;
        char *client_cert_file;
        char *client_key_file;
        bool insecure_skip_verify;
} nx_config_tls;

typedef struct nx_config_poll {
        char *long_poll_timeout;          /* as written; parsed into *_ms */
        char *retry_backoff;
        int32_t max_directives_to_claim;  /* 1..NX_CLAIM_MAX */
        int32_t wait_seconds;             /* 0..NX_WAIT_SECONDS_MAX */
        /* derived */
        int64_t long_poll_timeout_ms;     /* 0 = no client timeout */
        int64_t retry_backoff_ms;
} nx_config_poll;

typedef struct nx_config_log {
        int64_t max_output_bytes;
        int32_t chunk_bytes;
} nx_config_log;

typedef struct nx_config_log_overflow {
        bool enabled;
        char *dir;                        /* facility-relative */
        int64_t max_bytes_per_stream;
} nx_config_log_overflow;

typedef struct nx_config_debug_tape {
        bool enabled;
        char *path;
        int64_t max_bytes;
} nx_config_debug_tape;

typedef struct nx_config_interval {
        char *interval;
        int64_t interval_ms;              /* derived; a value <= 0 is replaced by the default */
} nx_config_interval;

typedef struct nx_config_observability {
        bool enabled;
        char *listen_addr;
        /* derived from listen_addr: host "" means every interface */
        char listen_host[NX_LISTEN_HOST_MAX];
        uint16_t listen_port;
} nx_config_observability;

typedef struct nx_rootfs_source {
        char *url;
        char *sha256;
} nx_rootfs_source;

typedef struct nx_config_rootfs {
        bool autodl;                      /* YAML key "auto" */
        char *cache_dir;
        nx_rootfs_source amd64;
        nx_rootfs_source arm64;
} nx_config_rootfs;

typedef struct nx_config_bwrap {
        char *bwrap_path;
        char *socat_path;
        char *rootfs_path;
        char *proxy_socket_dir;
        /* issue #6 additions (docs/architecture.md "Untrusted profile run sequence") */
        char *sandbox_helper_path;        /* nexus-sandbox; "" = next to nexusd, libexecdir */
        int64_t sandbox_uid;              /* host uid (and gid) of the sandbox when nexusd is
                                           * root; 1..2147483647, default 65100 */
        int64_t pids_limit;               /* default pids.max per directive, 1..4194304 (512) */
        int64_t memory_mb;                /* memory limit of an untrusted directive that sets
                                           * none, 1..1048576 MiB (4096); its tmpfs pages are
                                           * charged to it too */
} nx_config_bwrap;

typedef struct nx_config_container {
        char *runtime;
        char *image;
        char *proxy_mode;
} nx_config_container;

typedef struct nx_config_firecracker {
        char *firecracker_path;
        char *kernel_path;
        char *rootfs_image_path;
        int32_t vcpus;
        int32_t mem_size_mib;
        int32_t workspace_size_mib;
        char *proxy_socket_dir;
} nx_config_firecracker;

/* Every char * is non-NULL after a successful load ("" when unset). */
typedef struct nx_config {
        char *server_url;                 /* one trailing '/' stripped */
        char *territory_id;
        char *name;
        config_kv *labels;
        unsigned labels_count;
        char *work_dir;                   /* absolute, symlink-free after load */
        char *credentials_file;           /* absolute default filled in after load */
        nx_config_tls tls;
        nx_config_poll poll;
        nx_config_log log;
        nx_config_log_overflow log_overflow;
        nx_config_debug_tape debug_tape;
        nx_config_interval heartbeat;             /* default 10s */
        nx_config_interval territory_heartbeat;   /* default 30s */
        nx_config_observability observability;
        char *shutdown_timeout;
        nx_config_rootfs rootfs;
        nx_config_bwrap bwrap;
        nx_config_container container;
        nx_config_firecracker firecracker;
        char *untrusted_driver;
        char **supported_sandbox_profiles;
        unsigned supported_sandbox_profiles_count;
        /* derived */
        int64_t shutdown_timeout_ms;      /* <= 0: wait for the workers forever (spec §1.5) */
        nx_untrusted_driver untrusted_driver_kind;
} nx_config;

/* Loads the defaults, overlays the file at path (NULL: defaults only, named "<defaults>"),
 * derives and validates everything (see the top of this file), creates and canonicalises
 * work_dir. out need not be initialised. Returns 0; or -1 with err holding one line, and out
 * zeroed (nothing to free). */
int nx_config_load(const char *path, nx_config *out, err_t *err);

/* Frees everything nx_config_load allocated and zeroes c. Safe on a zeroed struct. */
void nx_config_free(nx_config *c);

/* Parses a Go duration ("25s", "1m30s", "1.5h", "500ms", "-2s", "0"; units ns us µs μs ms s
 * m h) into whole milliseconds (truncated toward zero). A bare number other than "0" is an
 * error (missing unit), as are "", "s", ".s", unknown units and overflow. */
int nx_duration_parse(const char *s, int64_t *ms, err_t *err);

/* Parses "HOST:PORT", "[IPv6]:PORT" or ":PORT" (host "" = every interface). HOST is a
 * hostname ([A-Za-z0-9.-], at most 253 bytes) or a numeric IPv4/IPv6 address; PORT 1..65535.
 * Returns 0, or -1 with err describing the problem (the caller names the key). */
int nx_listen_addr_parse(const char *s, char *host, size_t hostsz, uint16_t *port, err_t *err);

/* True if profile is listed in supported_sandbox_profiles (DESIGN D12). */
bool nx_config_profile_enabled(const nx_config *c, const char *profile);

/* The rootfs source for the CPU this binary was built for, or NULL on another arch. */
const nx_rootfs_source *nx_config_rootfs_source(const nx_config *c);
