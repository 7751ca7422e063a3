/* agent/envinject.h — what a directive's process gets from the daemon besides its command:
 * environment (spec nexus §5.6), working directory (§6.1 table, §6.2 step 2), and the
 * repository URL checks used before an automatic clone (§5.4).
 *
 * Environment: the standard variables of §5.6 for every directive; the host driver's envp is
 * the parent's PATH HOME USER LOGNAME SHELL TMPDIR LANG LC_ALL (only those present; plus
 * SSH_AUTH_SOCK for darwin-automation) overridden by the standard variables. Nothing else
 * from the daemon's environment (tokens, credentials) ever reaches a directive.
 * Env keys written into shell scripts must match ^[A-Za-z_][A-Za-z0-9_]*$; values are
 * single-quoted (' becomes '"'"').
 *
 * Paths are handled lexically (like Go's path.Clean): symlinks are not looked at here; the
 * drivers that need more open paths beneath a directory fd. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"

#define NX_ENV_VALUE_MAX (64 * 1024)   /* one standard variable's value */
#define NX_ENV_MAX 64                  /* entries of an envp we build */
#define NX_WORKSPACE "/workspace"
#define NX_REPO_URL_MAX 4096
#define NX_SHELL_QUOTE_MAX (1024 * 1024)   /* longest string nx_shell_quote accepts */

/* Per-directive inputs of the standard variables; NULL reads as "". */
typedef struct nx_env_vars {
        const char *directive_id;      /* CYBROS_DIRECTIVE_ID */
        const char *facility_id;       /* CYBROS_FACILITY_ID */
        const char *territory_id;      /* CYBROS_TERRITORY_ID (config; may be "") */
        const char *sandbox_profile;   /* CYBROS_SANDBOX_PROFILE: the spec's raw value */
        const char *workspace;         /* CYBROS_WORKSPACE: the spec's raw facility.mount */
        bool inherit_ssh_auth_sock;    /* darwin-automation also inherits SSH_AUTH_SOCK */
} nx_env_vars;

/* LANG/LC_ALL value of the standard set: C.UTF-8 (en_US.UTF-8 on macOS). */
const char *nx_env_lang(void);

/* True if key matches ^[A-Za-z_][A-Za-z0-9_]*$. */
bool nx_env_key_valid(const char *key);

/* The standard variables of §5.6 as a NULL-terminated "KEY=VALUE" array, in the spec's table
 * order (NO_COLOR TERM LANG LC_ALL PAGER GIT_PAGER CYBROS_NEXUS CYBROS_DIRECTIVE_ID
 * CYBROS_FACILITY_ID CYBROS_TERRITORY_ID CYBROS_SANDBOX_PROFILE CYBROS_WORKSPACE CI).
 * Returns NULL with err set on ENOMEM or a value over NX_ENV_VALUE_MAX. Free with nx_env_free. */
char **nx_env_standard(const nx_env_vars *v, err_t *err);

/* The host driver's environment: from parent (a NULL-terminated envp, e.g. environ; NULL =
 * empty) only the inherited names above, first occurrence, in that order, except those the
 * standard set defines; then the standard set. No key appears twice. Free with nx_env_free. */
char **nx_env(const nx_env_vars *v, char *const *parent, err_t *err);

/* Frees an array from nx_env/nx_env_standard (NULL is fine). */
void nx_env_free(char **envp);

/* Value of key in envp, or NULL. */
const char *nx_env_get(char *const *envp, const char *key);

/* Single-quotes s for /bin/sh: 'it'"'"'s'. Returns a malloc()ed string, NULL on ENOMEM or when
 * s is longer than NX_SHELL_QUOTE_MAX bytes (errno EMSGSIZE). */
char *nx_shell_quote(const char *s);

/* "export KEY='value'\n" for a wrapper script. Fails with `invalid env key: "<k>"` when the
 * key is not valid. Returns a malloc()ed string or NULL with err set. */
char *nx_shell_export(const char *key, const char *value, err_t *err);

/* Lexical clean of a '/'-separated path (Go's path.Clean): "" -> ".", duplicate slashes,
 * "." and inner ".." removed, ".." above the root of an absolute path dropped. Returns 0, or -1
 * with errno ENAMETOOLONG when the result does not fit outsz. */
int nx_path_clean(const char *in, char *out, size_t outsz);

/* Host-side cwd (spec §6.1 table): "", ".", "/workspace" -> facility root; "/workspace/<sub>"
 * and relative paths -> under the facility; other absolute -> "cwd must be under /workspace";
 * escaping -> "cwd escapes workspace"; empty facility_path -> "work dir is required".
 * The result is the cleaned facility path, or it joined with the cleaned relative part. */
int nx_resolve_host_cwd(const char *facility_path, const char *cwd, char *out, size_t outsz,
                        err_t *err);

/* In-sandbox cwd (spec §6.2 step 2): ""/"." -> "/workspace"; relative -> "/workspace/<rel>";
 * cleaned; must be "/workspace" or below, else `cwd "<x>" escapes workspace`. */
int nx_resolve_sandbox_cwd(const char *cwd, char *out, size_t outsz, err_t *err);

/* Repository URL acceptance (spec §5.4): after trimming ASCII whitespace, one of
 * https/http/ssh/git "scheme://..." or scp-like "user@host:path". Rejected (with the spec's
 * message `repo_url uses disallowed scheme (only https, http, ssh, git, or scp-like ssh are
 * allowed)`): empty, inner whitespace, leading '-', "ext::", file://, other schemes, bare paths,
 * host:path without user, and the rest of the §5.4 list. Stricter than the reference, because
 * git would otherwise read these as a local path or a remote helper: "<transport>::" for any
 * transport, control bytes, a '/' or '\' in the scp user part, a URL whose "://" is not right after the scheme,
 * malformed %-escapes or a non-numeric port, longer than NX_REPO_URL_MAX. */
int nx_repo_url_check(const char *url, err_t *err);

/* nx_repo_url_check, then copies the trimmed URL (what must be handed to git) to out. */
int nx_repo_url_normalize(const char *url, char *out, size_t outsz, err_t *err);

/* URL for logs (spec §5.4): "scheme://user:pass@host/x" -> "scheme://host/x"; other "://"
 * URLs unchanged; "user@rest" (no "://", '@' not first) -> "REDACTED@rest"; else unchanged.
 * Unlike the reference, user info is dropped from every "://" URL, even one that would not
 * parse. Returns 0, or -1 when the result does not fit (out then holds "REDACTED" if it fits,
 * else ""). */
int nx_repo_url_redact(const char *url, char *out, size_t outsz);
