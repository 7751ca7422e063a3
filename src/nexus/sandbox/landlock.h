/* sandbox/landlock.h — Landlock restriction of the calling process (spec nexus §6.5 ADVISED,
 * DESIGN D13, issue #6).
 *
 * Raw syscalls only (no library), so that the static `nexus-sandbox` program can use it; it
 * depends on nothing but libc and core/error.c. The ABI is queried with
 * LANDLOCK_CREATE_RULESET_VERSION and every right is masked to what the running kernel knows:
 *   fs   (ABI>=1): handled = every fs right of the ABI (13 rights of v1, +REFER v2,
 *                  +TRUNCATE v3, +IOCTL_DEV v5); a path is reachable only through a rule;
 *   net  (ABI>=4): handled = BIND_TCP|CONNECT_TCP; connect allowed only to the listed ports,
 *                  bind never;
 *   scope(ABI>=6): abstract unix sockets and signals cannot reach outside the domain.
 * Access kinds of a path rule:
 *   RO  = execute|read_file|read_dir;
 *   RW  = every handled fs right (REFER and TRUNCATE included where the ABI has them);
 *   DEV = read_file|write_file (+IOCTL_DEV, +TRUNCATE where known): for /dev/null, /dev/tty…
 * The restriction is irreversible and inherited across fork/exec: apply it in the process that
 * is about to exec the untrusted program (nexus-sandbox), or in a test child. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define NX_LANDLOCK_MAX_RULES 64
#define NX_LANDLOCK_MAX_PORTS 16

typedef enum nx_landlock_access {
        NX_LANDLOCK_RO = 1,
        NX_LANDLOCK_RW,
        NX_LANDLOCK_DEV,
} nx_landlock_access;

typedef struct nx_landlock_rule {
        const char *path;            /* absolute or relative to the cwd; opened O_PATH */
        nx_landlock_access access;
        bool required;               /* absent path: error if true, rule skipped if false */
} nx_landlock_rule;

/* What to restrict. A spec with flags == 0 is a no-op that succeeds (spec §12 #184). */
#define NX_LANDLOCK_FS (1u << 0)     /* handle all fs rights; only rules[] are reachable */
#define NX_LANDLOCK_NET (1u << 1)    /* ABI>=4: TCP connect only to connect_ports, no bind */
#define NX_LANDLOCK_SCOPE (1u << 2)  /* ABI>=6: scope abstract unix sockets and signals */

typedef struct nx_landlock_spec {
        unsigned flags;              /* NX_LANDLOCK_* */
        const nx_landlock_rule *rules;
        size_t n_rules;              /* <= NX_LANDLOCK_MAX_RULES */
        const uint16_t *connect_ports;
        size_t n_connect_ports;      /* <= NX_LANDLOCK_MAX_PORTS; ports 1-65535 */
        int min_abi;                 /* fail when the ABI is lower (0: best effort) */
} nx_landlock_spec;

/* What nx_landlock_apply() did. */
typedef struct nx_landlock_result {
        int abi;                     /* running ABI, 0 when Landlock is unavailable */
        bool applied;                /* restrict_self() succeeded */
        uint64_t handled_fs;         /* masks actually handled (0 when not applied) */
        uint64_t handled_net;
        uint64_t scoped;
        size_t rules_added;          /* path rules added (absent optional paths are skipped) */
} nx_landlock_result;

/* Landlock ABI of the running kernel, 0 if unavailable (not built in, disabled at boot, or
 * the syscall is filtered). */
int nx_landlock_abi(void);

/* Restricts the calling process as spec says, after setting no_new_privs (needed by
 * landlock_restrict_self without CAP_SYS_ADMIN). Errors (-1 with err, nothing applied):
 * "Landlock ABI X < required N" when abi < spec->min_abi; a required path that is missing;
 * a port out of 1-65535; too many rules/ports; any syscall failure. With min_abi == 0 and
 * Landlock unavailable, returns 0 with result->applied = false. out may be NULL. */
int nx_landlock_apply(const nx_landlock_spec *spec, nx_landlock_result *out, err_t *err);

/* Rights mask for an access kind at the given ABI (for tests and doctor output). */
uint64_t nx_landlock_fs_rights(nx_landlock_access access, int abi);
