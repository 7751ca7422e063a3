/* nexus/cli.c — nexusd argument parsing (spec nexus §1.2). See cli.h for the grammar. */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum flag_id {
        F_CONFIG,
        F_VERSION,
        F_DOCTOR,
        F_TOKEN,
        F_NAME,
        F_OUT_DIR,
        F_WITH_CSR,
        F_HELP,
        F_KIND,
        F_DIR,
        F_SUITE,
        F_MIRROR,
};

struct flag_def {
        const char *name;
        enum flag_id id;
        bool is_bool;
};

static const struct flag_def flags[] = {
        { "c", F_CONFIG, false },
        { "config", F_CONFIG, false },
        { "version", F_VERSION, true },
        { "doctor", F_DOCTOR, true },
        { "token", F_TOKEN, false },
        { "enroll-token", F_TOKEN, false },
        { "name", F_NAME, false },
        { "enroll-name", F_NAME, false },
        { "out-dir", F_OUT_DIR, false },
        { "enroll-out-dir", F_OUT_DIR, false },
        { "enroll-with-csr", F_WITH_CSR, true },
        { "h", F_HELP, true },
        { "help", F_HELP, true },
        { "kind", F_KIND, false },
        { "dir", F_DIR, false },
        { "suite", F_SUITE, false },
        { "mirror", F_MIRROR, false },
};

static const char usage_text[] =
        "usage: nexusd run [-c FILE]\n"
        "       nexusd enroll [-c FILE] --token TOKEN [--name NAME]\n"
        "       nexusd doctor [-c FILE]\n"
        "       nexusd version\n"
        "       nexusd rootfs prepare [-c FILE] [--kind debian|busybox] [--dir DIR]\n"
        "                             [--suite SUITE] [--mirror URL]\n"
        "       nexusd rootfs verify [-c FILE] [--dir DIR]\n"
        "       nexusd sandbox exec [-c FILE] [--workspace DIR] [--net JSON] [--limits JSON]\n"
        "                           [--cwd P] [--rootfs DIR] [--audit FILE] [--timeout S]\n"
        "                           -- COMMAND...   (one command under the untrusted stack)\n"
        "\n"
        "Reference-compatible flags (one or two dashes; -flag VALUE or -flag=VALUE):\n"
        "  -config FILE          configuration file (default " NX_CLI_DEFAULT_CONFIG "); alias -c\n"
        "  -version              print the version and exit\n"
        "  -doctor               run self-checks, print a report and exit\n"
        "  -enroll-token TOKEN   enroll with TOKEN and exit; alias --token\n"
        "  -enroll-name NAME     territory name to enroll with (default: config name); alias --name\n"
        "  -enroll-out-dir DIR   accepted for compatibility; alias --out-dir\n"
        "  -enroll-with-csr=BOOL accepted for compatibility; false is ignored with a warning\n"
        "  -h, -help             show this help\n";

static const char csr_warning[] =
        "-enroll-with-csr=false is ignored: it is accepted only for compatibility with the "
        "reference daemon's flags";

const char *nx_cli_usage(void)
{
        return usage_text;
}

const char *nx_cli_mode_name(nx_cli_mode m)
{
        switch (m) {
        case NX_MODE_RUN:
                return "run";
        case NX_MODE_ENROLL:
                return "enroll";
        case NX_MODE_DOCTOR:
                return "doctor";
        case NX_MODE_VERSION:
                return "version";
        case NX_MODE_ROOTFS_PREPARE:
                return "rootfs prepare";
        case NX_MODE_ROOTFS_VERIFY:
                return "rootfs verify";
        default:
                return "?";
        }
}

__attribute__((format(printf, 3, 4)))
static int usage_error(char *msg, size_t msgsz, const char *fmt, ...)
{
        va_list ap;
        if (msg && msgsz > 0) {
                va_start(ap, fmt);
                int r = vsnprintf(msg, msgsz, fmt, ap);
                va_end(ap);
                if (r < 0)
                        msg[0] = '\0';
        }
        return NX_CLI_USAGE;
}

/* Go's strconv.ParseBool, which the reference's flag package uses. */
static int parse_bool(const char *s, bool *out)
{
        static const char *const yes[] = { "1", "t", "T", "true", "TRUE", "True" };
        static const char *const no[] = { "0", "f", "F", "false", "FALSE", "False" };
        for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
                if (strcmp(s, yes[i]) == 0) {
                        *out = true;
                        return 0;
                }
                if (strcmp(s, no[i]) == 0) {
                        *out = false;
                        return 0;
                }
        }
        return -1;
}

static const struct flag_def *find_flag(const char *name, size_t len)
{
        for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
                if (strlen(flags[i].name) == len && memcmp(flags[i].name, name, len) == 0)
                        return &flags[i];
        return NULL;
}

static int command_of(const char *const *pos, int npos, nx_cli_mode *mode, char *msg,
                      size_t msgsz)
{
        const char *c = pos[0];
        int want = 1;
        if (strcmp(c, "run") == 0) {
                *mode = NX_MODE_RUN;
        } else if (strcmp(c, "enroll") == 0) {
                *mode = NX_MODE_ENROLL;
        } else if (strcmp(c, "doctor") == 0) {
                *mode = NX_MODE_DOCTOR;
        } else if (strcmp(c, "version") == 0) {
                *mode = NX_MODE_VERSION;
        } else if (strcmp(c, "rootfs") == 0) {
                if (npos < 2)
                        return usage_error(msg, msgsz, "rootfs needs a subcommand: "
                                           "rootfs prepare or rootfs verify");
                if (strcmp(pos[1], "prepare") == 0)
                        *mode = NX_MODE_ROOTFS_PREPARE;
                else if (strcmp(pos[1], "verify") == 0)
                        *mode = NX_MODE_ROOTFS_VERIFY;
                else
                        return usage_error(msg, msgsz, "unknown rootfs subcommand \"%.64s\" "
                                           "(expected: prepare or verify)", pos[1]);
                want = 2;
        } else {
                return usage_error(msg, msgsz, "unknown command \"%.64s\" (expected run, "
                                   "enroll, doctor, version or rootfs prepare)", c);
        }
        if (npos > want)
                return usage_error(msg, msgsz, "unexpected argument \"%.64s\" after %s",
                                   pos[want], nx_cli_mode_name(*mode));
        return NX_CLI_OK;
}

/* --kind/--suite/--mirror belong to `rootfs prepare`, --dir to both rootfs commands. */
static int rootfs_flags_check(const nx_cli *out, nx_cli_mode mode, char *msg, size_t msgsz)
{
        bool prepare = mode == NX_MODE_ROOTFS_PREPARE;
        bool rootfs = prepare || mode == NX_MODE_ROOTFS_VERIFY;
        if (*out->rootfs_dir && !rootfs)
                return usage_error(msg, msgsz, "--dir is only valid with rootfs prepare/verify");
        if ((*out->rootfs_kind || *out->rootfs_suite || *out->rootfs_mirror) && !prepare)
                return usage_error(msg, msgsz, "--kind, --suite and --mirror are only valid "
                                   "with rootfs prepare");
        if (*out->rootfs_kind && strcmp(out->rootfs_kind, "debian") != 0 &&
            strcmp(out->rootfs_kind, "busybox") != 0)
                return usage_error(msg, msgsz, "--kind \"%.32s\": expected debian or busybox",
                                   out->rootfs_kind);
        return NX_CLI_OK;
}

int nx_cli_parse(int argc, char **argv, nx_cli *out, char *msg, size_t msgsz)
{
        const char *pos[3] = { NULL, NULL, NULL };
        int npos = 0;
        bool version = false, doctor = false, dashdash = false;
        nx_cli_mode mode = NX_MODE_RUN;

        if (msg && msgsz > 0)
                msg[0] = '\0';
        memset(out, 0, sizeof(*out));
        out->config_path = NX_CLI_DEFAULT_CONFIG;
        out->token = "";
        out->name = "";
        out->out_dir = "";
        out->with_csr = true;
        out->rootfs_kind = "";
        out->rootfs_dir = "";
        out->rootfs_suite = "";
        out->rootfs_mirror = "";

        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];
                const char *body, *eq, *value;
                const struct flag_def *f;
                size_t nlen;

                if (!a)
                        continue;
                if (dashdash || a[0] != '-' || a[1] == '\0') {
                        if (npos == 3)
                                return usage_error(msg, msgsz, "unexpected argument "
                                                   "\"%.64s\"", a);
                        pos[npos++] = a;
                        continue;
                }
                if (strcmp(a, "--") == 0) {
                        dashdash = true;
                        continue;
                }
                body = a[1] == '-' ? a + 2 : a + 1;
                if (*body == '-' || *body == '=')
                        return usage_error(msg, msgsz, "bad flag syntax: %.64s", a);
                eq = strchr(body, '=');
                nlen = eq ? (size_t)(eq - body) : strlen(body);
                f = find_flag(body, nlen);
                if (!f)
                        return usage_error(msg, msgsz, "unknown flag: -%.*s",
                                           (int)(nlen > 64 ? 64 : nlen), body);
                if (f->id == F_HELP)
                        return NX_CLI_HELP;
                if (f->is_bool) {
                        bool b = true;
                        if (eq && parse_bool(eq + 1, &b) < 0)
                                return usage_error(msg, msgsz, "invalid boolean value "
                                                   "\"%.32s\" for -%s (use -%s=true or "
                                                   "-%s=false)", eq + 1, f->name, f->name,
                                                   f->name);
                        if (f->id == F_VERSION) {
                                version = b;
                        } else if (f->id == F_DOCTOR) {
                                doctor = b;
                        } else {
                                out->with_csr = b;
                                out->warning = b ? NULL : csr_warning;
                        }
                        continue;
                }
                if (eq) {
                        value = eq + 1;
                } else if (i + 1 < argc && argv[i + 1]) {
                        value = argv[++i];
                } else {
                        return usage_error(msg, msgsz, "flag needs an argument: -%s", f->name);
                }
                switch (f->id) {
                case F_CONFIG:
                        if (!*value)
                                return usage_error(msg, msgsz, "-%s: empty path", f->name);
                        out->config_path = value;
                        out->config_given = true;
                        break;
                case F_TOKEN:
                        out->token = value;
                        break;
                case F_NAME:
                        out->name = value;
                        break;
                case F_OUT_DIR:
                        out->out_dir = value;
                        break;
                case F_KIND:
                        out->rootfs_kind = value;
                        break;
                case F_DIR:
                        out->rootfs_dir = value;
                        break;
                case F_SUITE:
                        out->rootfs_suite = value;
                        break;
                case F_MIRROR:
                        out->rootfs_mirror = value;
                        break;
                case F_VERSION:
                case F_DOCTOR:
                case F_WITH_CSR:
                case F_HELP:
                default:
                        break;
                }
        }

        if (npos == 0) {
                /* spec §1.2 precedence: -version > -doctor > -enroll-token > run */
                if (version)
                        out->mode = NX_MODE_VERSION;
                else if (doctor)
                        out->mode = NX_MODE_DOCTOR;
                else if (*out->token)
                        out->mode = NX_MODE_ENROLL;
                else
                        out->mode = NX_MODE_RUN;
                return rootfs_flags_check(out, out->mode, msg, msgsz);
        }

        int r = command_of(pos, npos, &mode, msg, msgsz);
        if (r != NX_CLI_OK)
                return r;
        if (version && mode != NX_MODE_VERSION)
                return usage_error(msg, msgsz, "-version cannot be combined with the %s command",
                                   nx_cli_mode_name(mode));
        if (doctor && mode != NX_MODE_DOCTOR)
                return usage_error(msg, msgsz, "-doctor cannot be combined with the %s command",
                                   nx_cli_mode_name(mode));
        if (*out->token && mode != NX_MODE_ENROLL)
                return usage_error(msg, msgsz, "--token is only valid with the enroll command");
        if (mode == NX_MODE_ENROLL && !*out->token)
                return usage_error(msg, msgsz, "enroll requires --token TOKEN");
        if (r = rootfs_flags_check(out, mode, msg, msgsz), r != NX_CLI_OK)
                return r;
        out->mode = mode;
        return NX_CLI_OK;
}
