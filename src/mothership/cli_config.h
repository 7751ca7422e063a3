/* mothership/cli_config.h — the `serve` configuration: flags > environment > YAML file >
 * defaults (DESIGN D18; the contract is briefs/mothership_cli.md).
 *
 * Nothing here starts a server or opens a store, so it is testable on its own; the caller
 * fills the defaults (ms_config_defaults) and this module overlays the other sources onto them.
 *
 * Stricter than the reference (spec mothership §11.2), on purpose — a typo must not silently
 * weaken the configuration:
 *   - CONDUITS_TERRITORY_AUTH_MODE accepts proxy-header|header|either and "mtls" (= proxy-header);
 *     any other value is an error (the reference treats unknown values as `either`);
 *   - numeric environment variables that do not parse or are out of range are errors (the
 *     reference falls back to the default);
 *   - unknown flags and unknown YAML keys are errors (the YAML ones name file:line:key).
 * An environment variable set to "" counts as unset. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "app.h"
#include "core/error.h"

/* Return value of the loaders for a usage error (bad or unknown flag): exit status 2. */
#define MS_CLI_USAGE (-2)
/* Return value of ms_serve_config_load when --help was given. */
#define MS_CLI_HELP 1

#define MS_CLI_MAX_THREADS 256
#define MS_CLI_MAX_LOG_CHUNK (64 * 1024 * 1024)   /* largest CONDUITS_LOG_CHUNK_MAX_BYTES */
#define MS_CLI_MAX_TTL_DAYS 36500                 /* retention TTLs: 0 disables a job */
#define MS_CLI_LISTEN_MAX 300                     /* "[v6 address]:65535" and then some */

/* Environment lookup; NULL when unset. Tests pass a table, main passes getenv. */
typedef const char *(*ms_env_fn)(const char *name, void *ctx);
/* ms_env_fn over the process environment (ctx unused). */
const char *ms_env_getenv(const char *name, void *ctx);

/* Parses a listen address: "HOST:PORT", "[IPv6]:PORT" or ":PORT". An empty host means every
 * IPv4 interface ("0.0.0.0"); "[::]" is every IPv6 one. HOST must be a numeric IPv4 address,
 * a bracketed numeric IPv6 address, or "localhost". PORT is decimal 0..65535 (0 = ephemeral).
 * `what` names the source in messages ("--listen", "MOTHERSHIP_LISTEN", "f.yaml: key
 * \"listen\""). Returns 0, or -1 with err set (host and port untouched). */
int ms_listen_parse(const char *s, const char *what, char *host, size_t hostsz, uint16_t *port,
                    err_t *err);
/* "127.0.0.1:3000", "[::1]:3000". Returns 0, or -1 when outsz is too small. */
int ms_listen_format(const char *host, uint16_t port, char *out, size_t outsz);

/* "proxy-header", "header", "either"; with allow_mtls also "mtls" (= proxy-header). Returns 0,
 * or -1 for anything else. */
int ms_territory_auth_parse(const char *s, bool allow_mtls, ms_territory_auth *out);
const char *ms_territory_auth_name(ms_territory_auth a);

/* A trusted proxy address: numeric IPv4 or IPv6, stored in the text form the HTTP server
 * reports peers in (inet_ntop; an IPv4-mapped IPv6 address becomes plain IPv4) so that a
 * string comparison matches. Returns 0, or -1 with err naming `what`. */
int ms_trusted_proxy_normalize(const char *s, const char *what, char *out, size_t outsz,
                               err_t *err);

/* Overlays the YAML file at path onto cfg. Keys: listen, data_dir, territory_auth,
 * trusted_proxies (list; replaces the current list), threads, log_chunk_max_bytes, cable_url,
 * retention {log_chunk_ttl_days, diff_blob_ttl_days, audit_event_ttl_days}. Unknown keys and
 * ill-typed values are errors naming file:line; on any error cfg is unchanged. */
int ms_config_load_yaml(const char *path, ms_config *cfg, err_t *err);

/* Overlays the environment variables of the contract onto cfg: MOTHERSHIP_LISTEN,
 * MOTHERSHIP_DATA_DIR, CONDUITS_TERRITORY_AUTH_MODE, CONDUITS_MTLS_FINGERPRINT_HEADER,
 * CONDUITS_LOG_CHUNK_MAX_BYTES, ACTION_CABLE_URL, CONDUITS_LOG_CHUNK_TTL_DAYS,
 * CONDUITS_DIFF_BLOB_TTL_DAYS, CONDUITS_AUDIT_EVENT_TTL_DAYS. (SECRET_KEY_BASE is read by
 * ms_app_load_jwt_key.) Errors name the variable; on error cfg may be partly updated. */
int ms_config_apply_env(ms_config *cfg, ms_env_fn env, void *env_ctx, err_t *err);

/* `mothership serve [flags]`: argv[0..argc) are the arguments AFTER "serve". cfg must hold the
 * defaults on entry. Flags: --listen, --data-dir, --territory-auth, --trusted-proxy (repeatable;
 * the first one replaces the default list), --threads, --config, --help; each as "--flag VALUE"
 * or "--flag=VALUE". Applies the file (--config), then the environment, then the flags.
 * Returns 0; MS_CLI_HELP for --help; MS_CLI_USAGE for a bad flag; -1 for a bad file or
 * environment value (err says which). */
int ms_serve_config_load(int argc, char *const argv[], ms_env_fn env, void *env_ctx,
                         ms_config *cfg, err_t *err);

/* Flag matching shared by the subcommands. If argv[*i] is "--name" (the value is the next
 * argument) or "--name=VALUE", sets *value, advances *i past what it consumed and returns 1.
 * Returns 0 when argv[*i] is another argument, MS_CLI_USAGE with err set when the value is
 * missing. */
int ms_cli_flag(int argc, char *const argv[], int *i, const char *name, const char **value,
                err_t *err);

/* A strict decimal flag value in [min, max]; the message names the flag. Returns 0 or
 * MS_CLI_USAGE with err set. */
int ms_cli_int(const char *flag, const char *value, int64_t min, int64_t max, int64_t *out,
               err_t *err);
