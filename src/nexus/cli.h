/* nexus/cli.h — nexusd command line (spec nexus §1.2, §1.3).
 *
 * Two styles are accepted, mixed freely:
 *   subcommands:  nexusd run -c FILE
 *                 nexusd enroll -c FILE --token TOKEN [--name NAME]
 *                 nexusd doctor -c FILE
 *                 nexusd version
 *                 nexusd rootfs prepare [-c FILE] [--kind debian|busybox] [--dir DIR]
 *                                       [--suite SUITE] [--mirror URL]
 *                 nexusd rootfs verify [-c FILE] [--dir DIR]
 *   reference flags (spec §1.2; a flag takes one or two dashes, "-f x" == "--f x" == "-f=x"):
 *                 -config FILE, -version, -doctor, -enroll-token T, -enroll-name N,
 *                 -enroll-out-dir DIR, -enroll-with-csr[=BOOL], -h/-help
 *   Without a subcommand the mode follows the reference precedence: -version > -doctor >
 *   -enroll-token (non-empty) > run.
 * Flag aliases: -c/-config, -token/-enroll-token, -name/-enroll-name, -out-dir/-enroll-out-dir.
 * Boolean flags take a value only in the "=" form (true/false/1/0/t/f, as Go's flag package).
 * "--" ends the flags. The last occurrence of a repeated flag wins.
 *
 * Refused with a usage error (exit 2): unknown flags, a missing or malformed value, an empty
 * -config, an unknown subcommand or extra positional argument (the reference ignores
 * positional arguments; we have subcommands, so a stray word is more likely a typo),
 * `enroll` without a token, and a subcommand combined with a mode flag that contradicts it
 * (`run -version`, `doctor --token T`).
 * -enroll-with-csr is accepted; =false sets a warning (nexusd's enrollment does not change
 * with it) that the caller logs. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#define NX_CLI_DEFAULT_CONFIG "/etc/nexusd/config.yaml"

/* nx_cli_parse results, which are also the exit codes main() uses when it stops early. */
#define NX_CLI_OK 0
#define NX_CLI_HELP 1       /* print nx_cli_usage() to stdout, exit 0 */
#define NX_CLI_USAGE 2      /* print msg and nx_cli_usage() to stderr, exit 2 */

typedef enum nx_cli_mode {
        NX_MODE_RUN = 0,
        NX_MODE_ENROLL,
        NX_MODE_DOCTOR,
        NX_MODE_VERSION,
        NX_MODE_ROOTFS_PREPARE,
        NX_MODE_ROOTFS_VERIFY,
} nx_cli_mode;

/* Strings point into argv (or are static); nothing to free. */
typedef struct nx_cli {
        nx_cli_mode mode;
        const char *config_path;     /* NX_CLI_DEFAULT_CONFIG unless given */
        bool config_given;           /* -config/-c appeared */
        const char *token;           /* enroll token, "" unless given */
        const char *name;            /* territory name for enroll, "" = config's name */
        const char *out_dir;         /* -enroll-out-dir, "" unless given (accepted, unused) */
        bool with_csr;               /* -enroll-with-csr value (default true) */
        const char *warning;         /* static text to log, or NULL */
        /* rootfs prepare/verify (issue #6): "" unless given; refused with other commands */
        const char *rootfs_kind;     /* --kind debian|busybox */
        const char *rootfs_dir;      /* --dir DIR */
        const char *rootfs_suite;    /* --suite SUITE */
        const char *rootfs_mirror;   /* --mirror URL */
} nx_cli;

/* Parses argv[1..argc). Pure: prints nothing, reads no environment. Returns NX_CLI_OK with
 * out filled; NX_CLI_HELP; or NX_CLI_USAGE with a one-line reason in msg (msgsz > 0). */
int nx_cli_parse(int argc, char **argv, nx_cli *out, char *msg, size_t msgsz);

/* The usage text (several lines, ends with a newline). */
const char *nx_cli_usage(void);

/* "run", "enroll", "doctor", "version", "rootfs prepare", "rootfs verify". */
const char *nx_cli_mode_name(nx_cli_mode m);
