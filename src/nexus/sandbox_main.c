/* nexus-sandbox — the last step inside the bwrap sandbox of the `untrusted` profile
 * (DESIGN D13, issue #6, spec nexus §6.5 ADVISED).
 *
 *   nexus-sandbox [--ro PATH]... [--rw PATH]... [--dev PATH]... [--connect-port N]...
 *                 [--min-abi N] [--rlimit NAME=SOFT[:HARD]]... -- PROG ARGS...
 *
 * Order: parse the arguments → set rlimits → Landlock (+ no_new_privs) → close every fd
 * above 2 → execvp(PROG).
 * Exit codes (only when PROG was not exec'd): 125 usage error; 126 the sandbox could not be
 * set up (Landlock ABI below --min-abi, a missing --rw path, an rlimit refused) or PROG is not
 * executable; 127 PROG not found. Every message starts with "nexus-sandbox: ".
 *
 * It runs inside a bwrap whose root may be a busybox or Debian rootfs, so it is linked
 * statically, without sanitizers, against libc only (plus sandbox/landlock.c and
 * core/error.c, which use nothing else). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/error.h"
#include "sandbox/landlock.h"

#define EXIT_USAGE 125
#define EXIT_SETUP 126
#define EXIT_NOTFOUND 127

#define MAX_RLIMITS 16

typedef struct rlimit_name {
        const char *name;
        int resource;
} rlimit_name;

static const rlimit_name rlimit_names[] = {
        { "as", RLIMIT_AS }, { "core", RLIMIT_CORE }, { "cpu", RLIMIT_CPU },
        { "data", RLIMIT_DATA }, { "fsize", RLIMIT_FSIZE }, { "locks", RLIMIT_LOCKS },
        { "memlock", RLIMIT_MEMLOCK }, { "msgqueue", RLIMIT_MSGQUEUE }, { "nice", RLIMIT_NICE },
        { "nofile", RLIMIT_NOFILE }, { "nproc", RLIMIT_NPROC }, { "rss", RLIMIT_RSS },
        { "rtprio", RLIMIT_RTPRIO }, { "rttime", RLIMIT_RTTIME },
        { "sigpending", RLIMIT_SIGPENDING }, { "stack", RLIMIT_STACK },
};

typedef struct rlimit_req {
        int resource;
        const char *name;
        struct rlimit lim;
} rlimit_req;

typedef struct sandbox_args {
        nx_landlock_rule rules[NX_LANDLOCK_MAX_RULES];
        size_t n_rules;
        uint16_t ports[NX_LANDLOCK_MAX_PORTS];
        size_t n_ports;
        int min_abi;
        rlimit_req rlimits[MAX_RLIMITS];
        size_t n_rlimits;
        char **argv;                 /* PROG ARGS..., NULL-terminated (points into main's) */
} sandbox_args;

static const char usage_text[] =
        "usage: nexus-sandbox [--ro PATH]... [--rw PATH]... [--dev PATH]...\n"
        "                     [--connect-port N]... [--min-abi N]\n"
        "                     [--rlimit NAME=SOFT[:HARD]]... -- PROG ARGS...\n"
        "Applies rlimits and Landlock (best ABI available) to itself, then execs PROG.\n"
        "  --ro PATH          read and execute beneath PATH (skipped if absent)\n"
        "  --rw PATH          full access beneath PATH (must exist)\n"
        "  --dev PATH         read/write existing files beneath PATH, no creation\n"
        "  --connect-port N   allow TCP connect to port N (ABI>=4); all else refused\n"
        "  --min-abi N        exit 126 if the Landlock ABI is below N\n"
        "  --rlimit NAME=SOFT[:HARD]  NAME: as core cpu data fsize locks memlock msgqueue\n"
        "                     nice nofile nproc rss rtprio rttime sigpending stack;\n"
        "                     values: a number or \"unlimited\"; HARD defaults to SOFT\n"
        "Without --ro/--rw/--dev: --ro / --rw /workspace --rw /tmp --rw /dev/shm --dev /dev\n"
        "(the rw ones skipped when absent). RLIMIT_CORE is 0 unless --rlimit core is given.\n"
        "Exit: 125 usage, 126 setup failure or PROG not executable, 127 PROG not found.\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        fputs("nexus-sandbox: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputs("\n(see nexus-sandbox --help)\n", stderr);
        va_end(ap);
        return -1;
}

/* Parses a decimal in [min, max]; no sign, no spaces, no trailing garbage. */
static int parse_ulong(const char *s, unsigned long long min, unsigned long long max,
                       unsigned long long *out)
{
        if (!s || s[0] < '0' || s[0] > '9')
                return -1;
        errno = 0;
        char *end = NULL;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno != 0 || !end || *end != '\0' || v < min || v > max)
                return -1;
        *out = v;
        return 0;
}

static int parse_rlim_value(const char *s, rlim_t *out)
{
        if (strcmp(s, "unlimited") == 0 || strcmp(s, "infinity") == 0) {
                *out = RLIM_INFINITY;
                return 0;
        }
        unsigned long long v;
        if (parse_ulong(s, 0, (unsigned long long)RLIM_INFINITY - 1, &v) < 0)
                return -1;
        *out = (rlim_t)v;
        return 0;
}

static int parse_rlimit(const char *spec, rlimit_req *out)
{
        const char *eq = strchr(spec, '=');
        if (!eq)
                return usage_error("--rlimit \"%s\": expected NAME=SOFT[:HARD]", spec);
        size_t name_len = (size_t)(eq - spec);
        const rlimit_name *found = NULL;
        for (size_t i = 0; i < sizeof(rlimit_names) / sizeof(rlimit_names[0]); i++) {
                if (strlen(rlimit_names[i].name) == name_len &&
                    memcmp(rlimit_names[i].name, spec, name_len) == 0)
                        found = &rlimit_names[i];
        }
        if (!found)
                return usage_error("--rlimit \"%s\": unknown limit name", spec);
        char value[64];
        int n = snprintf(value, sizeof(value), "%s", eq + 1);
        if (n < 0 || (size_t)n >= sizeof(value))
                return usage_error("--rlimit \"%s\": value too long", spec);
        char *colon = strchr(value, ':');
        if (colon)
                *colon = '\0';
        rlim_t soft, hard;
        if (parse_rlim_value(value, &soft) < 0 ||
            parse_rlim_value(colon ? colon + 1 : value, &hard) < 0)
                return usage_error("--rlimit \"%s\": values must be numbers or \"unlimited\"",
                                   spec);
        /* RLIM_INFINITY is the largest rlim_t, so this also orders "unlimited" correctly. */
        if (soft > hard)
                return usage_error("--rlimit \"%s\": soft limit above hard limit", spec);
        out->resource = found->resource;
        out->name = found->name;
        out->lim.rlim_cur = soft;
        out->lim.rlim_max = hard;
        return 0;
}

static int add_rule(sandbox_args *a, const char *opt, const char *path,
                    nx_landlock_access access, bool required)
{
        if (!path)
                return usage_error("%s needs a PATH", opt);
        if (!path[0])
                return usage_error("%s: empty PATH", opt);
        if (a->n_rules >= NX_LANDLOCK_MAX_RULES)
                return usage_error("too many paths (limit %d)", NX_LANDLOCK_MAX_RULES);
        a->rules[a->n_rules++] = (nx_landlock_rule){ .path = path, .access = access,
                                                    .required = required };
        return 0;
}

/* Returns 0 and fills a, 1 for --help, -1 on a usage error (message printed). */
static int parse_args(int argc, char **argv, sandbox_args *a)
{
        int i = 1;
        while (i < argc) {
                const char *opt = argv[i];
                const char *val = i + 1 < argc ? argv[i + 1] : NULL;
                if (strcmp(opt, "--") == 0)
                        break;
                if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0)
                        return 1;
                if (strcmp(opt, "--ro") == 0) {
                        if (add_rule(a, opt, val, NX_LANDLOCK_RO, false) < 0)
                                return -1;
                } else if (strcmp(opt, "--rw") == 0) {
                        if (add_rule(a, opt, val, NX_LANDLOCK_RW, true) < 0)
                                return -1;
                } else if (strcmp(opt, "--dev") == 0) {
                        if (add_rule(a, opt, val, NX_LANDLOCK_DEV, false) < 0)
                                return -1;
                } else if (strcmp(opt, "--connect-port") == 0) {
                        unsigned long long p;
                        if (!val)
                                return usage_error("--connect-port needs a port");
                        if (parse_ulong(val, 1, 65535, &p) < 0)
                                return usage_error("port \"%s\" out of range 1-65535", val);
                        if (a->n_ports >= NX_LANDLOCK_MAX_PORTS)
                                return usage_error("too many --connect-port (limit %d)", NX_LANDLOCK_MAX_PORTS);
                        a->ports[a->n_ports++] = (uint16_t)p;
                } else if (strcmp(opt, "--min-abi") == 0) {
                        unsigned long long v;
                        if (!val)
                                return usage_error("--min-abi needs a number");
                        if (parse_ulong(val, 0, 1000, &v) < 0)
                                return usage_error("--min-abi \"%s\": expected 0-1000", val);
                        a->min_abi = (int)v;
                } else if (strcmp(opt, "--rlimit") == 0) {
                        if (!val)
                                return usage_error("--rlimit needs NAME=SOFT[:HARD]");
                        if (a->n_rlimits >= MAX_RLIMITS)
                                return usage_error("too many --rlimit (limit %d)", MAX_RLIMITS);
                        if (parse_rlimit(val, &a->rlimits[a->n_rlimits]) < 0)
                                return -1;
                        a->n_rlimits++;
                } else {
                        return usage_error("unknown option \"%s\"", opt);
                }
                i += 2;   /* every option takes one value */
        }
        if (i >= argc)
                return usage_error("missing \"--\" before the program");
        if (i + 1 >= argc)
                return usage_error("missing program after \"--\"");
        if (!argv[i + 1][0])
                return usage_error("empty program name");
        a->argv = &argv[i + 1];
        return 0;
}

/* The documented defaults (docs/security.md): read-only system tree, writable workspace and
 * scratch dirs, usable device nodes. */
static void add_default_rules(sandbox_args *a)
{
        static const nx_landlock_rule defaults[] = {
                { "/", NX_LANDLOCK_RO, false },
                { "/workspace", NX_LANDLOCK_RW, false },
                { "/tmp", NX_LANDLOCK_RW, false },
                { "/dev/shm", NX_LANDLOCK_RW, false },
                { "/dev", NX_LANDLOCK_DEV, false },
        };
        for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
                a->rules[a->n_rules++] = defaults[i];
}

static int apply_rlimits(const sandbox_args *a)
{
        bool core_given = false;
        for (size_t i = 0; i < a->n_rlimits; i++) {
                if (a->rlimits[i].resource == RLIMIT_CORE)
                        core_given = true;
                if (setrlimit(a->rlimits[i].resource, &a->rlimits[i].lim) < 0) {
                        fprintf(stderr, "nexus-sandbox: setrlimit %s: %s\n", a->rlimits[i].name,
                                strerror(errno));
                        return -1;
                }
        }
        /* No core dumps by default: core_pattern may pipe them to a handler that runs as root
         * on the host, and a dump of the sandboxed program is not ours to keep. */
        if (!core_given) {
                struct rlimit zero = { 0, 0 };
                if (setrlimit(RLIMIT_CORE, &zero) < 0) {
                        fprintf(stderr, "nexus-sandbox: setrlimit core: %s\n", strerror(errno));
                        return -1;
                }
        }
        return 0;
}

int main(int argc, char **argv)
{
        static sandbox_args args;   /* static: large, and zero-initialised */
        int r = parse_args(argc, argv, &args);
        if (r == 1) {
                fputs(usage_text, stdout);
                return 0;
        }
        if (r < 0)
                return EXIT_USAGE;
        if (args.n_rules == 0)
                add_default_rules(&args);

        if (apply_rlimits(&args) < 0)
                return EXIT_SETUP;

        nx_landlock_spec spec = {
                .flags = NX_LANDLOCK_FS | NX_LANDLOCK_NET | NX_LANDLOCK_SCOPE,
                .rules = args.rules,
                .n_rules = args.n_rules,
                .connect_ports = args.ports,
                .n_connect_ports = args.n_ports,
                .min_abi = args.min_abi,
        };
        err_t err = ERR_INIT;
        if (nx_landlock_apply(&spec, NULL, &err) < 0) {
                fprintf(stderr, "nexus-sandbox: %s\n", err.msg);
                return EXIT_SETUP;
        }

        /* Nothing but stdio reaches the untrusted program: an fd leaked by the caller (a
         * listener, the seccomp memfd, a pipe of nexusd) would be a way out of the sandbox. */
        if (syscall(SYS_close_range, 3u, ~0u, 0u) < 0) {
                for (int fd = 3; fd < 4096; fd++)
                        close(fd);
        }
        execvp(args.argv[0], args.argv);
        int e = errno;
        fprintf(stderr, "nexus-sandbox: exec \"%s\": %s\n", args.argv[0], strerror(e));
        return e == ENOENT ? EXIT_NOTFOUND : EXIT_SETUP;
}
