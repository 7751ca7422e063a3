/* nexus/config.c — defaults, schema, derivation and validation of the nexusd config file
 * (spec nexus §2). See config.h for what is accepted and how we differ from the reference. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <yaml.h>

#include "core/cleanup.h"
#include "core/str.h"

/* ---- schema (spec §2.3 plus our keys) --------------------------------------------------- */

#define STR_FIELD(key, type, member) \
        CYAML_FIELD_STRING_PTR(key, CYAML_FLAG_OPTIONAL, type, member, 0, CYAML_UNLIMITED)

static const cyaml_schema_field_t tls_fields[] = {
        STR_FIELD("ca_file", nx_config_tls, ca_file),
        STR_FIELD("client_cert_file", nx_config_tls, client_cert_file),
        STR_FIELD("client_key_file", nx_config_tls, client_key_file),
        CYAML_FIELD_BOOL("insecure_skip_verify", CYAML_FLAG_OPTIONAL, nx_config_tls,
                         insecure_skip_verify),
        CYAML_FIELD_END
};

static const cyaml_schema_field_t poll_fields[] = {
        STR_FIELD("long_poll_timeout", nx_config_poll, long_poll_timeout),
        STR_FIELD("retry_backoff", nx_config_poll, retry_backoff),
        CYAML_FIELD_INT("max_directives_to_claim", CYAML_FLAG_OPTIONAL, nx_config_poll,
                        max_directives_to_claim),
        CYAML_FIELD_INT("wait_seconds", CYAML_FLAG_OPTIONAL, nx_config_poll, wait_seconds),
        CYAML_FIELD_END
};

static const cyaml_schema_field_t log_fields[] = {
        CYAML_FIELD_INT("max_output_bytes", CYAML_FLAG_OPTIONAL, nx_config_log, max_output_bytes),
        CYAML_FIELD_INT("chunk_bytes", CYAML_FLAG_OPTIONAL, nx_config_log, chunk_bytes),
        CYAML_FIELD_END
};

static const cyaml_schema_field_t log_overflow_fields[] = {
        CYAML_FIELD_BOOL("enabled", CYAML_FLAG_OPTIONAL, nx_config_log_overflow, enabled),
        STR_FIELD("dir", nx_config_log_overflow, dir),
        CYAML_FIELD_INT("max_bytes_per_stream", CYAML_FLAG_OPTIONAL, nx_config_log_overflow,
                        max_bytes_per_stream),
        CYAML_FIELD_END
};

static const cyaml_schema_field_t debug_tape_fields[] = {
        CYAML_FIELD_BOOL("enabled", CYAML_FLAG_OPTIONAL, nx_config_debug_tape, enabled),
        STR_FIELD("path", nx_config_debug_tape, path),
        CYAML_FIELD_INT("max_bytes", CYAML_FLAG_OPTIONAL, nx_config_debug_tape, max_bytes),
        CYAML_FIELD_END
};

static const cyaml_schema_field_t interval_fields[] = {
        STR_FIELD("interval", nx_config_interval, interval),
        CYAML_FIELD_END
};

static const cyaml_schema_field_t observability_fields[] = {
        CYAML_FIELD_BOOL("enabled", CYAML_FLAG_OPTIONAL, nx_config_observability, enabled),
        STR_FIELD("listen_addr", nx_config_observability, listen_addr),
        CYAML_FIELD_END
};

static const cyaml_schema_field_t rootfs_source_fields[] = {
        STR_FIELD("url", nx_rootfs_source, url),
        STR_FIELD("sha256", nx_rootfs_source, sha256),
        CYAML_FIELD_END
};

static const cyaml_schema_field_t rootfs_fields[] = {
        CYAML_FIELD_BOOL("auto", CYAML_FLAG_OPTIONAL, nx_config_rootfs, autodl),
        STR_FIELD("cache_dir", nx_config_rootfs, cache_dir),
        CYAML_FIELD_MAPPING("amd64", CYAML_FLAG_OPTIONAL, nx_config_rootfs, amd64,
                            rootfs_source_fields),
        CYAML_FIELD_MAPPING("arm64", CYAML_FLAG_OPTIONAL, nx_config_rootfs, arm64,
                            rootfs_source_fields),
        CYAML_FIELD_END
};

static const cyaml_schema_field_t bwrap_fields[] = {
        STR_FIELD("bwrap_path", nx_config_bwrap, bwrap_path),
        STR_FIELD("socat_path", nx_config_bwrap, socat_path),
        STR_FIELD("rootfs_path", nx_config_bwrap, rootfs_path),
        STR_FIELD("proxy_socket_dir", nx_config_bwrap, proxy_socket_dir),
        STR_FIELD("sandbox_helper_path", nx_config_bwrap, sandbox_helper_path),
        CYAML_FIELD_INT("sandbox_uid", CYAML_FLAG_OPTIONAL, nx_config_bwrap, sandbox_uid),
        CYAML_FIELD_INT("pids_limit", CYAML_FLAG_OPTIONAL, nx_config_bwrap, pids_limit),
        CYAML_FIELD_INT("memory_mb", CYAML_FLAG_OPTIONAL, nx_config_bwrap, memory_mb),
        CYAML_FIELD_END
};

static const cyaml_schema_field_t container_fields[] = {
        STR_FIELD("runtime", nx_config_container, runtime),
        STR_FIELD("image", nx_config_container, image),
        STR_FIELD("proxy_mode", nx_config_container, proxy_mode),
        CYAML_FIELD_END
};

static const cyaml_schema_field_t firecracker_fields[] = {
        STR_FIELD("firecracker_path", nx_config_firecracker, firecracker_path),
        STR_FIELD("kernel_path", nx_config_firecracker, kernel_path),
        STR_FIELD("rootfs_image_path", nx_config_firecracker, rootfs_image_path),
        CYAML_FIELD_INT("vcpus", CYAML_FLAG_OPTIONAL, nx_config_firecracker, vcpus),
        CYAML_FIELD_INT("mem_size_mib", CYAML_FLAG_OPTIONAL, nx_config_firecracker, mem_size_mib),
        CYAML_FIELD_INT("workspace_size_mib", CYAML_FLAG_OPTIONAL, nx_config_firecracker,
                        workspace_size_mib),
        STR_FIELD("proxy_socket_dir", nx_config_firecracker, proxy_socket_dir),
        CYAML_FIELD_END
};

static const cyaml_schema_value_t profile_entry = {
        CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, 64),
};

static const cyaml_schema_field_t config_fields[] = {
        STR_FIELD("server_url", nx_config, server_url),
        STR_FIELD("territory_id", nx_config, territory_id),
        STR_FIELD("name", nx_config, name),
        CONFIG_FIELD_STRING_MAP("labels", CYAML_FLAG_OPTIONAL, nx_config, labels,
                                NX_CONFIG_MAX_LABELS),
        STR_FIELD("work_dir", nx_config, work_dir),
        STR_FIELD("credentials_file", nx_config, credentials_file),
        CYAML_FIELD_MAPPING("tls", CYAML_FLAG_OPTIONAL, nx_config, tls, tls_fields),
        CYAML_FIELD_MAPPING("poll", CYAML_FLAG_OPTIONAL, nx_config, poll, poll_fields),
        CYAML_FIELD_MAPPING("log", CYAML_FLAG_OPTIONAL, nx_config, log, log_fields),
        CYAML_FIELD_MAPPING("log_overflow", CYAML_FLAG_OPTIONAL, nx_config, log_overflow,
                            log_overflow_fields),
        CYAML_FIELD_MAPPING("debug_tape", CYAML_FLAG_OPTIONAL, nx_config, debug_tape,
                            debug_tape_fields),
        CYAML_FIELD_MAPPING("heartbeat", CYAML_FLAG_OPTIONAL, nx_config, heartbeat,
                            interval_fields),
        CYAML_FIELD_MAPPING("territory_heartbeat", CYAML_FLAG_OPTIONAL, nx_config,
                            territory_heartbeat, interval_fields),
        CYAML_FIELD_MAPPING("observability", CYAML_FLAG_OPTIONAL, nx_config, observability,
                            observability_fields),
        STR_FIELD("shutdown_timeout", nx_config, shutdown_timeout),
        CYAML_FIELD_MAPPING("rootfs", CYAML_FLAG_OPTIONAL, nx_config, rootfs, rootfs_fields),
        CYAML_FIELD_MAPPING("bwrap", CYAML_FLAG_OPTIONAL, nx_config, bwrap, bwrap_fields),
        CYAML_FIELD_MAPPING("container", CYAML_FLAG_OPTIONAL, nx_config, container,
                            container_fields),
        CYAML_FIELD_MAPPING("firecracker", CYAML_FLAG_OPTIONAL, nx_config, firecracker,
                            firecracker_fields),
        STR_FIELD("untrusted_driver", nx_config, untrusted_driver),
        CYAML_FIELD_SEQUENCE("supported_sandbox_profiles",
                             CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER, nx_config,
                             supported_sandbox_profiles, &profile_entry, 0,
                             NX_CONFIG_MAX_PROFILES),
        CYAML_FIELD_END
};

static const cyaml_schema_value_t config_schema = {
        CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, nx_config, config_fields),
};

/* The built-in defaults (spec §2.3 table, with our deliberate changes). Every key is set so
 * that every string pointer is malloc()ed and non-NULL after loading. */
static const char defaults_yaml[] =
        "server_url: \"http://localhost:3000\"\n"
        "territory_id: \"\"\n"
        "name: \"nexus\"\n"
        "labels: {}\n"
        "work_dir: \"./facilities\"\n"
        "credentials_file: \"\"\n"
        "tls:\n"
        "  ca_file: \"\"\n"
        "  client_cert_file: \"\"\n"
        "  client_key_file: \"\"\n"
        "  insecure_skip_verify: false\n"
        "poll:\n"
        "  long_poll_timeout: \"25s\"\n"
        "  retry_backoff: \"2s\"\n"
        "  max_directives_to_claim: 1\n"
        "  wait_seconds: 20\n"
        "log:\n"
        "  max_output_bytes: 2000000\n"
        "  chunk_bytes: 16384\n"
        "log_overflow:\n"
        "  enabled: true\n"
        "  dir: \".nexus/overflow\"\n"
        "  max_bytes_per_stream: 52428800\n"
        "debug_tape:\n"
        "  enabled: false\n"
        "  path: \"./nexus-debug-tape.jsonl\"\n"
        "  max_bytes: 10485760\n"
        "heartbeat:\n"
        "  interval: \"10s\"\n"
        "territory_heartbeat:\n"
        "  interval: \"30s\"\n"
        "observability:\n"
        "  enabled: false\n"
        "  listen_addr: \"127.0.0.1:9090\"\n"
        "shutdown_timeout: \"60s\"\n"
        "rootfs:\n"
        "  auto: false\n"
        "  cache_dir: \"./rootfs-cache\"\n"
        "  amd64:\n"
        "    url: \"https://cloud-images.ubuntu.com/minimal/releases/noble/release/"
        "ubuntu-24.04-minimal-cloudimg-amd64-root.tar.xz\"\n"
        "    sha256: \"4119418996553edb37307a5ee3a3bd6d754ab28a37f5df057aa2b6551e87d417\"\n"
        "  arm64:\n"
        "    url: \"https://cloud-images.ubuntu.com/minimal/releases/noble/release/"
        "ubuntu-24.04-minimal-cloudimg-arm64-root.tar.xz\"\n"
        "    sha256: \"eb50d09466a96381bd1bd68d2a78f2c55be2b6d0256c5df323a35992c180e8ff\"\n"
        "bwrap:\n"
        "  bwrap_path: \"bwrap\"\n"
        "  socat_path: \"socat\"\n"
        "  rootfs_path: \"\"\n"
        "  proxy_socket_dir: \"\"\n"
        "  sandbox_helper_path: \"\"\n"
        "  sandbox_uid: 65100\n"
        "  pids_limit: 512\n"
        "  memory_mb: 4096\n"
        "container:\n"
        "  runtime: \"podman\"\n"
        "  image: \"ubuntu:24.04\"\n"
        "  proxy_mode: \"env\"\n"
        "firecracker:\n"
        "  firecracker_path: \"firecracker\"\n"
        "  kernel_path: \"\"\n"
        "  rootfs_image_path: \"\"\n"
        "  vcpus: 2\n"
        "  mem_size_mib: 512\n"
        "  workspace_size_mib: 2048\n"
        "  proxy_socket_dir: \"\"\n"
        "untrusted_driver: \"bwrap\"\n"
        "supported_sandbox_profiles: [\"untrusted\"]\n";

#define DEFAULTS_NAME "<defaults>"
#define DEFAULT_HEARTBEAT_MS 10000            /* spec §2.3: <= 0 -> 10 s */
#define DEFAULT_TERRITORY_HEARTBEAT_MS 30000  /* spec §2.3: <= 0 -> 30 s */
#define FC_WORKSPACE_MAX_MIB 32768
#define KEY_LINE_MAX_DEPTH 32

static const char *const known_profiles[] = { "host", "untrusted", "trusted",
                                              "darwin-automation" };

/* ---- durations (spec §2.1: Go duration syntax) ------------------------------------------- */

struct duration_unit {
        const char *name;
        uint64_t ns;
};

static const struct duration_unit duration_units[] = {
        { "ns", 1ULL },
        { "us", 1000ULL },
        { "\xc2\xb5s", 1000ULL },      /* U+00B5 micro sign */
        { "\xce\xbcs", 1000ULL },      /* U+03BC Greek mu */
        { "ms", 1000000ULL },
        { "s", 1000000000ULL },
        { "m", 60ULL * 1000000000ULL },
        { "h", 3600ULL * 1000000000ULL },
};

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

int nx_duration_parse(const char *s, int64_t *ms, err_t *err)
{
        const uint64_t limit = (uint64_t)INT64_MAX;
        const char *orig = s;
        const char *p;
        bool neg = false, only_number = true;
        uint64_t total = 0;

        if (!s || !*s)
                return err_set(err, "invalid duration \"\": empty (write e.g. \"25s\")");
        if (*s == '-' || *s == '+') {
                neg = *s == '-';
                s++;
        }
        if (strcmp(s, "0") == 0) {
                *ms = 0;
                return 0;
        }
        if (!*s)
                return err_set(err, "invalid duration \"%s\"", orig);
        for (p = s; *p; p++)
                if (!is_digit(*p) && *p != '.')
                        only_number = false;
        if (only_number)
                return err_set(err, "invalid duration \"%s\": a bare number needs a unit "
                               "(e.g. \"%ss\"; units ns, us, ms, s, m, h)", orig, s);

        while (*s) {
                uint64_t v = 0, f = 0, scale = 1;
                bool pre, post = false, f_full = false;
                const char *start = s, *u;
                const struct duration_unit *unit = NULL;

                if (!is_digit(*s) && *s != '.')
                        return err_set(err, "invalid duration \"%s\"", orig);
                while (is_digit(*s)) {
                        if (v > (limit - (uint64_t)(*s - '0')) / 10)
                                return err_set(err, "invalid duration \"%s\": out of range",
                                               orig);
                        v = v * 10 + (uint64_t)(*s - '0');
                        s++;
                }
                pre = s != start;
                if (*s == '.') {
                        s++;
                        start = s;
                        while (is_digit(*s)) {
                                /* digits past 18 places cannot change a nanosecond count */
                                if (!f_full && scale <= 100000000000000000ULL) {
                                        f = f * 10 + (uint64_t)(*s - '0');
                                        scale *= 10;
                                } else {
                                        f_full = true;
                                }
                                s++;
                        }
                        post = s != start;
                }
                if (!pre && !post)
                        return err_set(err, "invalid duration \"%s\"", orig);
                u = s;
                while (*s && *s != '.' && !is_digit(*s))
                        s++;
                if (u == s)
                        return err_set(err, "invalid duration \"%s\": missing unit "
                                       "(ns, us, ms, s, m, h)", orig);
                for (size_t i = 0; i < sizeof(duration_units) / sizeof(duration_units[0]); i++)
                        if (strlen(duration_units[i].name) == (size_t)(s - u) &&
                            memcmp(duration_units[i].name, u, (size_t)(s - u)) == 0)
                                unit = &duration_units[i];
                if (!unit)
                        return err_set(err, "invalid duration \"%s\": unknown unit \"%.*s\" "
                                       "(ns, us, ms, s, m, h)", orig, (int)(s - u), u);
                if (v > limit / unit->ns)
                        return err_set(err, "invalid duration \"%s\": out of range", orig);
                v *= unit->ns;
                if (f > 0) {
                        /* as Go does: the fraction in float, then truncated */
                        double extra = (double)f * ((double)unit->ns / (double)scale);
                        if (extra >= (double)limit)
                                return err_set(err, "invalid duration \"%s\": out of range",
                                               orig);
                        v += (uint64_t)extra;
                        if (v > limit)
                                return err_set(err, "invalid duration \"%s\": out of range",
                                               orig);
                }
                if (v > limit - total)
                        return err_set(err, "invalid duration \"%s\": out of range", orig);
                total += v;
        }
        *ms = (neg ? -(int64_t)total : (int64_t)total) / 1000000;
        return 0;
}

/* ---- listen address ----------------------------------------------------------------------- */

static bool hostname_valid(const char *h, size_t n)
{
        if (n == 0 || n > 253 || h[0] == '-' || h[0] == '.')
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = h[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) ||
                      c == '-' || c == '.'))
                        return false;
        }
        return true;
}

int nx_listen_addr_parse(const char *s, char *host, size_t hostsz, uint16_t *port, err_t *err)
{
        char hbuf[NX_LISTEN_HOST_MAX];
        const char *h, *colon;
        size_t hlen;
        int64_t p;

        if (!s || !*s)
                return err_set(err, "is empty (expected HOST:PORT)");
        if (s[0] == '[') {
                const char *close = strchr(s, ']');
                unsigned char a6[16];
                if (!close)
                        return err_set(err, "\"%s\": missing ']' after the IPv6 address", s);
                h = s + 1;
                hlen = (size_t)(close - h);
                if (close[1] != ':')
                        return err_set(err, "\"%s\": missing \":PORT\"", s);
                colon = close + 1;
                if (hlen == 0 || hlen >= sizeof(hbuf))
                        return err_set(err, "\"%s\": bad IPv6 address", s);
                memcpy(hbuf, h, hlen);
                hbuf[hlen] = '\0';
                if (inet_pton(AF_INET6, hbuf, a6) != 1)
                        return err_set(err, "\"%s\": \"%s\" is not an IPv6 address", s, hbuf);
        } else {
                colon = strrchr(s, ':');
                if (!colon)
                        return err_set(err, "\"%s\": missing \":PORT\"", s);
                h = s;
                hlen = (size_t)(colon - s);
                if (memchr(h, ':', hlen))
                        return err_set(err, "\"%s\": an IPv6 address must be in brackets", s);
                if (hlen >= sizeof(hbuf))
                        return err_set(err, "\"%s\": host too long", s);
                memcpy(hbuf, h, hlen);
                hbuf[hlen] = '\0';
                if (hlen > 0) {
                        bool numeric = true;
                        unsigned char a4[4];
                        for (size_t i = 0; i < hlen; i++)
                                if (!is_digit(hbuf[i]) && hbuf[i] != '.')
                                        numeric = false;
                        if (numeric ? inet_pton(AF_INET, hbuf, a4) != 1
                                    : !hostname_valid(hbuf, hlen))
                                return err_set(err, "\"%s\": bad host \"%s\"", s, hbuf);
                }
        }
        if (str_to_int64(colon + 1, 1, 65535, &p) < 0)
                return err_set(err, "\"%s\": port \"%s\" must be a number in 1-65535", s,
                               colon + 1);
        if (str_copy(host, hostsz, hbuf) < 0)
                return err_set(err, "\"%s\": host too long", s);
        *port = (uint16_t)p;
        return 0;
}

/* ---- locating a key's line for messages ---------------------------------------------------- */

/* Returns the 1-based line where the dotted key (e.g. "poll.wait_seconds") is written in the
 * file at path, or 0 if the file does not set it (or cannot be read again). Only used to make
 * an error message point at the right line. */
static size_t key_line(const char *path, const char *dotted)
{
        struct frame {
                bool is_map;
                bool want_key;
                size_t path_len;    /* length of keypath before this frame's key */
        } st[KEY_LINE_MAX_DEPTH];
        char keypath[512];
        _cleanup_free_ char *data = NULL;
        _cleanup_close_ int fd = -1;
        yaml_parser_t parser;
        size_t len = 0, line = 0;
        int depth = 0;
        bool done = false;

        if (!path)
                return 0;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        data = malloc(CONFIG_MAX_FILE_BYTES + 1);
        if (!data)
                return 0;
        while (len < CONFIG_MAX_FILE_BYTES) {
                ssize_t n = read(fd, data + len, CONFIG_MAX_FILE_BYTES - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                len += (size_t)n;
        }
        if (!yaml_parser_initialize(&parser))
                return 0;
        yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
        keypath[0] = '\0';
        while (!done) {
                yaml_event_t ev;
                struct frame *top = depth > 0 ? &st[depth - 1] : NULL;
                if (!yaml_parser_parse(&parser, &ev))
                        break;
                switch (ev.type) {
                case YAML_MAPPING_START_EVENT:
                case YAML_SEQUENCE_START_EVENT:
                        if (depth == KEY_LINE_MAX_DEPTH) {
                                done = true;
                                break;
                        }
                        st[depth].is_map = ev.type == YAML_MAPPING_START_EVENT;
                        st[depth].want_key = true;
                        st[depth].path_len = strlen(keypath);
                        depth++;
                        break;
                case YAML_MAPPING_END_EVENT:
                case YAML_SEQUENCE_END_EVENT:
                        depth--;
                        if (depth > 0 && st[depth - 1].is_map) {
                                st[depth - 1].want_key = true;
                                keypath[st[depth - 1].path_len] = '\0';
                        }
                        break;
                case YAML_SCALAR_EVENT:
                        if (top && top->is_map && top->want_key) {
                                const char *k = (const char *)ev.data.scalar.value;
                                int r = str_printf(keypath + top->path_len,
                                                   sizeof(keypath) - top->path_len, "%s%s",
                                                   top->path_len ? "." : "", k);
                                if (r < 0) {
                                        done = true;
                                        break;
                                }
                                if (strcmp(keypath, dotted) == 0) {
                                        line = ev.start_mark.line + 1;
                                        done = true;
                                        break;
                                }
                                top->want_key = false;
                        } else if (top && top->is_map) {
                                top->want_key = true;
                                keypath[top->path_len] = '\0';
                        }
                        break;
                case YAML_STREAM_END_EVENT:
                case YAML_ALIAS_EVENT:
                        done = true;
                        break;
                default:
                        break;
                }
                yaml_event_delete(&ev);
        }
        yaml_parser_delete(&parser);
        return line;
}

/* ---- validation ---------------------------------------------------------------------------- */

struct vctx {
        const char *path;   /* NULL for the defaults */
        const char *name;   /* for messages */
        err_t *err;
};

/* "name:LINE: " or "name: ". */
static void where(const struct vctx *v, const char *key, char *out, size_t outsz)
{
        size_t line = key ? key_line(v->path, key) : 0;
        int r;
        if (line > 0)
                r = str_printf(out, outsz, "%s:%zu: ", v->name, line);
        else
                r = str_printf(out, outsz, "%s: ", v->name);
        (void)r;   /* a truncated location still reads fine */
}

__attribute__((format(printf, 3, 4)))
static int fail(const struct vctx *v, const char *key, const char *fmt, ...)
{
        char loc[PATH_MAX + 32];
        char msg[ERR_MSG_MAX];
        va_list ap;
        int r;

        where(v, key, loc, sizeof(loc));
        va_start(ap, fmt);
        r = vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (r < 0)
                msg[0] = '\0';
        return err_set(v->err, "%s%s", loc, msg);
}

/* Wraps an err already set by a helper: "name:LINE: key: <helper message>". */
static int fail_wrap(const struct vctx *v, const char *key)
{
        char loc[PATH_MAX + 32];
        char msg[ERR_MSG_MAX];
        (void)str_copy(msg, sizeof(msg), v->err->msg);   /* same size: never truncates */
        where(v, key, loc, sizeof(loc));
        return err_set(v->err, "%s%s: %s", loc, key, msg);
}

static int parse_duration_key(const struct vctx *v, const char *key, const char *s,
                              int64_t *ms)
{
        if (nx_duration_parse(s, ms, v->err) < 0)
                return fail_wrap(v, key);
        return 0;
}

/* True if the relative path, cleaned lexically, is ".", ".." or starts with "../" (spec §2.4
 * rule 6): walk the components keeping a depth; "." does nothing, ".." goes up. */
static bool rel_path_not_within(const char *p)
{
        long depth = 0;
        while (*p) {
                const char *e = strchr(p, '/');
                size_t n = e ? (size_t)(e - p) : strlen(p);
                if (n == 2 && p[0] == '.' && p[1] == '.') {
                        if (--depth < 0)
                                return true;
                } else if (n > 0 && !(n == 1 && p[0] == '.')) {
                        depth++;
                }
                p += n;
                if (*p == '/')
                        p++;
        }
        return depth == 0;
}

static bool is_hex64(const char *s)
{
        size_t n = 0;
        for (; s[n]; n++)
                if (!is_digit(s[n]) && !(s[n] >= 'a' && s[n] <= 'f') &&
                    !(s[n] >= 'A' && s[n] <= 'F'))
                        return false;
        return n == 64;
}

/* The Go-style GOARCH name of the CPU we were built for, or NULL. */
static const char *build_arch(void)
{
#if defined(__x86_64__)
        return "amd64";
#elif defined(__aarch64__)
        return "arm64";
#else
        return NULL;
#endif
}

const nx_rootfs_source *nx_config_rootfs_source(const nx_config *c)
{
        const char *a = build_arch();
        if (!a)
                return NULL;
        return strcmp(a, "amd64") == 0 ? &c->rootfs.amd64 : &c->rootfs.arm64;
}

static int derive_durations(nx_config *c, const struct vctx *v)
{
        int64_t ms;
        if (parse_duration_key(v, "poll.long_poll_timeout", c->poll.long_poll_timeout,
                               &c->poll.long_poll_timeout_ms) < 0 ||
            parse_duration_key(v, "poll.retry_backoff", c->poll.retry_backoff,
                               &c->poll.retry_backoff_ms) < 0)
                return -1;
        if (parse_duration_key(v, "heartbeat.interval", c->heartbeat.interval, &ms) < 0)
                return -1;
        c->heartbeat.interval_ms = ms > 0 ? ms : DEFAULT_HEARTBEAT_MS;
        if (parse_duration_key(v, "territory_heartbeat.interval", c->territory_heartbeat.interval,
                               &ms) < 0)
                return -1;
        c->territory_heartbeat.interval_ms = ms > 0 ? ms : DEFAULT_TERRITORY_HEARTBEAT_MS;
        if (parse_duration_key(v, "shutdown_timeout", c->shutdown_timeout,
                               &c->shutdown_timeout_ms) < 0)
                return -1;
        return 0;
}

/* Spec §2.4, rules 1-10 in the spec's order; the messages are the spec's, located. */
static int validate_spec_rules(nx_config *c, const struct vctx *v)
{
        if (str_is_blank(c->server_url))
                return fail(v, "server_url", "server_url is required");
        if (c->poll.max_directives_to_claim <= 0)
                return fail(v, "poll.max_directives_to_claim",
                            "poll.max_directives_to_claim must be >= 1");
        if (c->log.chunk_bytes <= 0)
                return fail(v, "log.chunk_bytes", "log.chunk_bytes must be >= 1");
        if (c->log.max_output_bytes <= 0)
                return fail(v, "log.max_output_bytes", "log.max_output_bytes must be >= 1");
        if (c->log_overflow.enabled) {
                const char *d = c->log_overflow.dir;
                if (!*d)
                        return fail(v, "log_overflow.dir",
                                    "log_overflow.dir is required when enabled");
                if (d[0] == '/')
                        return fail(v, "log_overflow.dir", "log_overflow.dir must be "
                                    "workspace-relative (not an absolute path)");
                if (rel_path_not_within(d))
                        return fail(v, "log_overflow.dir",
                                    "log_overflow.dir must be within the workspace");
                if (c->log_overflow.max_bytes_per_stream <= 0)
                        return fail(v, "log_overflow.max_bytes_per_stream",
                                    "log_overflow.max_bytes_per_stream must be >= 1 when "
                                    "enabled");
        }
        if (c->debug_tape.enabled) {
                if (!*c->debug_tape.path)
                        return fail(v, "debug_tape.path",
                                    "debug_tape.path is required when enabled");
                if (c->debug_tape.max_bytes <= 0)
                        return fail(v, "debug_tape.max_bytes",
                                    "debug_tape.max_bytes must be >= 1 when enabled");
        }
        if (!*c->untrusted_driver || strcmp(c->untrusted_driver, "bwrap") == 0)
                c->untrusted_driver_kind = NX_UNTRUSTED_BWRAP;
        else if (strcmp(c->untrusted_driver, "firecracker") == 0)
                c->untrusted_driver_kind = NX_UNTRUSTED_FIRECRACKER;
        else
                return fail(v, "untrusted_driver",
                            "untrusted_driver must be \"bwrap\" or \"firecracker\", got \"%s\"",
                            c->untrusted_driver);
        if (c->untrusted_driver_kind == NX_UNTRUSTED_FIRECRACKER) {
                const nx_config_firecracker *f = &c->firecracker;
                if (!*f->kernel_path)
                        return fail(v, "firecracker.kernel_path", "firecracker.kernel_path is "
                                    "required when untrusted_driver is firecracker");
                if (!*f->rootfs_image_path)
                        return fail(v, "firecracker.rootfs_image_path",
                                    "firecracker.rootfs_image_path is required when "
                                    "untrusted_driver is firecracker");
                if (f->vcpus < 1)
                        return fail(v, "firecracker.vcpus", "firecracker.vcpus must be >= 1");
                if (f->mem_size_mib < 1)
                        return fail(v, "firecracker.mem_size_mib",
                                    "firecracker.mem_size_mib must be >= 1");
                if (f->workspace_size_mib < 1)
                        return fail(v, "firecracker.workspace_size_mib",
                                    "firecracker.workspace_size_mib must be >= 1");
                if (f->workspace_size_mib > FC_WORKSPACE_MAX_MIB)
                        return fail(v, "firecracker.workspace_size_mib",
                                    "firecracker.workspace_size_mib must be <= 32768 (32 GiB)");
        }
        if (c->rootfs.autodl) {
                const nx_rootfs_source *src = nx_config_rootfs_source(c);
                const char *arch = build_arch();
                char key[64];
                if (!*c->rootfs.cache_dir)
                        return fail(v, "rootfs.cache_dir",
                                    "rootfs.cache_dir is required when rootfs.auto is enabled");
                if (!src || !arch) {
                        struct utsname u;
                        if (uname(&u) < 0 || str_is_blank(u.machine))
                                (void)str_copy(u.machine, sizeof(u.machine), "unknown");
                        return fail(v, "rootfs.auto", "rootfs.auto is not supported on this "
                                    "CPU architecture (%s; only amd64 and arm64)", u.machine);
                }
                if (!*src->url || !*src->sha256) {
                        int r = str_printf(key, sizeof(key), "rootfs.%s.%s", arch,
                                           *src->url ? "sha256" : "url");
                        return fail(v, r < 0 ? NULL : key, "%s is required when rootfs.auto "
                                    "is enabled (rootfs arch source must specify url and "
                                    "sha256)", key);
                }
                if (!is_hex64(src->sha256)) {
                        int r = str_printf(key, sizeof(key), "rootfs.%s.sha256", arch);
                        return fail(v, r < 0 ? NULL : key, "%s must be 64 hex digits", key);
                }
        }
        return 0;
}

/* Our rules on top of the spec's (config.h lists them). */
static int validate_our_rules(nx_config *c, const struct vctx *v)
{
        const char *u = c->server_url;
        const char *rest;
        size_t n;
        err_t sub = ERR_INIT;

        if (strncasecmp(u, "https://", 8) == 0)
                rest = u + 8;
        else if (strncasecmp(u, "http://", 7) == 0)
                rest = u + 7;
        else
                return fail(v, "server_url", "server_url \"%s\" must start with http:// or "
                            "https://", u);
        if (!*rest || *rest == '/')
                return fail(v, "server_url", "server_url \"%s\" has no host", u);
        for (const char *p = u; *p; p++)
                if ((unsigned char)*p <= 0x20 || *p == 0x7f)
                        return fail(v, "server_url", "server_url must not contain spaces or "
                                    "control characters");

        if (c->poll.max_directives_to_claim > NX_CLAIM_MAX)
                return fail(v, "poll.max_directives_to_claim",
                            "poll.max_directives_to_claim must be <= %d (the server claims at "
                            "most %d per poll)", NX_CLAIM_MAX, NX_CLAIM_MAX);
        if (c->poll.wait_seconds < 0 || c->poll.wait_seconds > NX_WAIT_SECONDS_MAX)
                return fail(v, "poll.wait_seconds", "poll.wait_seconds must be between 0 and %d",
                            NX_WAIT_SECONDS_MAX);
        if (c->poll.long_poll_timeout_ms < 0)
                return fail(v, "poll.long_poll_timeout",
                            "poll.long_poll_timeout must not be negative");
        if (c->poll.retry_backoff_ms < 0)
                return fail(v, "poll.retry_backoff", "poll.retry_backoff must not be negative");
        if (c->poll.long_poll_timeout_ms > 0 &&
            (int64_t)c->poll.wait_seconds * 1000 >= c->poll.long_poll_timeout_ms)
                return fail(v, "poll.wait_seconds", "poll.wait_seconds (%d) must be shorter "
                            "than poll.long_poll_timeout (%s), or every long poll times out",
                            (int)c->poll.wait_seconds, c->poll.long_poll_timeout);

        n = c->supported_sandbox_profiles_count;
        if (n == 0)
                return fail(v, "supported_sandbox_profiles", "supported_sandbox_profiles must "
                            "list at least one of host, untrusted, trusted, darwin-automation");
        for (size_t i = 0; i < n; i++) {
                const char *p = c->supported_sandbox_profiles[i];
                bool known = false;
                for (size_t k = 0; k < sizeof(known_profiles) / sizeof(known_profiles[0]); k++)
                        if (strcmp(p, known_profiles[k]) == 0)
                                known = true;
                if (!known)
                        return fail(v, "supported_sandbox_profiles",
                                    "supported_sandbox_profiles: unknown profile \"%s\" "
                                    "(expected host, untrusted, trusted or darwin-automation)",
                                    p);
                for (size_t j = 0; j < i; j++)
                        if (strcmp(p, c->supported_sandbox_profiles[j]) == 0)
                                return fail(v, "supported_sandbox_profiles",
                                            "supported_sandbox_profiles lists \"%s\" twice", p);
        }

        if (nx_listen_addr_parse(c->observability.listen_addr, c->observability.listen_host,
                                 sizeof(c->observability.listen_host),
                                 &c->observability.listen_port, &sub) < 0)
                return fail(v, "observability.listen_addr", "observability.listen_addr %s",
                            sub.msg);
        if (!*c->work_dir)
                return fail(v, "work_dir", "work_dir is required");
        /* the untrusted sandbox never runs as host root (issue #6, bwrap.h "Identity") */
        if (c->bwrap.sandbox_uid < 1 || c->bwrap.sandbox_uid > 2147483647)
                return fail(v, "bwrap.sandbox_uid", "bwrap.sandbox_uid must be between 1 and "
                            "2147483647 (never 0)");
        if (c->bwrap.pids_limit < 1 || c->bwrap.pids_limit > 4194304)
                return fail(v, "bwrap.pids_limit", "bwrap.pids_limit must be between 1 and "
                            "4194304");
        if (c->bwrap.memory_mb < 1 || c->bwrap.memory_mb > 1048576)
                return fail(v, "bwrap.memory_mb", "bwrap.memory_mb must be between 1 and "
                            "1048576");
        /* TLS material is checked now, not at the first request (spec nexus §12 #29) */
        const struct { const char *key, *path; } tls[] = {
                { "tls.ca_file", c->tls.ca_file },
                { "tls.client_cert_file", c->tls.client_cert_file },
                { "tls.client_key_file", c->tls.client_key_file },
        };
        for (size_t i = 0; i < sizeof(tls) / sizeof(tls[0]); i++)
                if (*tls[i].path && access(tls[i].path, R_OK) != 0)
                        return fail(v, tls[i].key, "%s: cannot read %s: %s", tls[i].key,
                                    tls[i].path, strerror(errno));
        if (!*c->tls.client_cert_file != !*c->tls.client_key_file)
                return fail(v, *c->tls.client_cert_file ? "tls.client_key_file"
                                                        : "tls.client_cert_file",
                            "tls.client_cert_file and tls.client_key_file go together");
        return 0;
}

/* mkdir -p with mode 0700 for every directory created (spec §2.5: work_dir holds the WAL and
 * per-directive sockets; nobody else needs to list it). */
static int mkdir_parents(const char *path, int *failed_errno, char *failed, size_t failedsz)
{
        char tmp[PATH_MAX];
        size_t len;
        if (str_copy(tmp, sizeof(tmp), path) < 0) {
                *failed_errno = ENAMETOOLONG;
                (void)str_copy(failed, failedsz, path);
                return -1;
        }
        len = strlen(tmp);
        for (size_t i = 1; i <= len; i++) {
                if (tmp[i] != '/' && tmp[i] != '\0')
                        continue;
                if (tmp[i - 1] == '/')
                        continue;
                char saved = tmp[i];
                tmp[i] = '\0';
                if (mkdir(tmp, 0700) < 0 && errno != EEXIST) {
                        *failed_errno = errno;
                        (void)str_copy(failed, failedsz, tmp);
                        return -1;
                }
                tmp[i] = saved;
        }
        return 0;
}

static int canonicalise_work_dir(nx_config *c, const struct vctx *v)
{
        char failed[PATH_MAX];
        char loc[PATH_MAX + 32];
        struct stat st;
        char *abs;
        int e = 0;

        if (mkdir_parents(c->work_dir, &e, failed, sizeof(failed)) < 0) {
                where(v, "work_dir", loc, sizeof(loc));
                return err_errno(v->err, e, "%swork_dir \"%s\": create %s", loc, c->work_dir,
                                 failed);
        }
        abs = realpath(c->work_dir, NULL);
        if (!abs) {
                e = errno;
                where(v, "work_dir", loc, sizeof(loc));
                return err_errno(v->err, e, "%swork_dir \"%s\": resolve", loc, c->work_dir);
        }
        if (stat(abs, &st) < 0 || !S_ISDIR(st.st_mode)) {
                free(abs);
                return fail(v, "work_dir", "work_dir \"%s\" is not a directory", c->work_dir);
        }
        free(c->work_dir);
        c->work_dir = abs;
        if (!*c->credentials_file) {
                char *p = str_dup_printf("%s/.nexus/credentials.json", c->work_dir);
                if (!p)
                        return err_errno(v->err, ENOMEM, "credentials_file");
                free(c->credentials_file);
                c->credentials_file = p;
        }
        return 0;
}

/* spec §2.3: one trailing '/' is stripped (but "https://" stays, to be refused as hostless) */
static void strip_one_trailing_slash(char *s)
{
        size_t n = strlen(s);
        if (n > 0 && s[n - 1] == '/' && !str_has_suffix(s, "://"))
                s[n - 1] = '\0';
}

int nx_config_load(const char *path, nx_config *out, err_t *err)
{
        struct vctx v = { .path = path, .name = path ? path : DEFAULTS_NAME, .err = err };

        memset(out, 0, sizeof(*out));
        if (config_load_data(DEFAULTS_NAME, defaults_yaml, sizeof(defaults_yaml) - 1,
                             &config_schema, out, sizeof(*out), err) < 0) {
                err_wrap(err, "nexus built-in defaults");
                goto fail;
        }
        if (path && config_load_file(path, &config_schema, out, sizeof(*out), err) < 0)
                goto fail;
        strip_one_trailing_slash(out->server_url);
        if (derive_durations(out, &v) < 0 || validate_spec_rules(out, &v) < 0 ||
            validate_our_rules(out, &v) < 0 || canonicalise_work_dir(out, &v) < 0)
                goto fail;
        return 0;
fail:
        nx_config_free(out);
        return -1;
}

void nx_config_free(nx_config *c)
{
        if (!c)
                return;
        config_free(&config_schema, c);
        memset(c, 0, sizeof(*c));
}

bool nx_config_profile_enabled(const nx_config *c, const char *profile)
{
        if (!profile)
                return false;
        for (unsigned i = 0; i < c->supported_sandbox_profiles_count; i++)
                if (strcmp(c->supported_sandbox_profiles[i], profile) == 0)
                        return true;
        return false;
}
