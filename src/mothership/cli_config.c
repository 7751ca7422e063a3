/* mothership/cli_config.c — see cli_config.h. */
#include "cli_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/str.h"

const char *ms_env_getenv(const char *name, void *ctx)
{
        (void)ctx;
        return getenv(name);
}

/* ---------------------------------------------------------------- listen ------------- */

static int parse_port(const char *p, const char *what, const char *s, uint16_t *port,
                      err_t *err)
{
        int64_t v;
        if (str_to_int64(p, 0, 65535, &v) < 0) {
                if (errno == ERANGE)
                        return err_set(err, "%s \"%s\": port \"%s\" out of range 0-65535", what,
                                       s, p);
                return err_set(err, "%s \"%s\": port \"%s\" must be a decimal number", what, s,
                               p);
        }
        *port = (uint16_t)v;
        return 0;
}

int ms_listen_parse(const char *s, const char *what, char *host, size_t hostsz, uint16_t *port,
                    err_t *err)
{
        char h[MS_CLI_LISTEN_MAX];
        const char *portstr;
        if (!s || !*s)
                return err_set(err, "%s: empty listen address (expected HOST:PORT)", what);
        if (strlen(s) >= sizeof(h))
                return err_set(err, "%s: listen address longer than %zu bytes", what,
                               sizeof(h) - 1);
        if (s[0] == '[') {
                const char *close = strchr(s, ']');
                if (!close || close[1] != ':')
                        return err_set(err, "%s \"%s\": expected [IPv6]:PORT", what, s);
                if (str_copyn(h, sizeof(h), s + 1, (size_t)(close - s - 1)) < 0)
                        return err_set(err, "%s \"%s\": host too long", what, s);
                struct in6_addr a6;
                if (inet_pton(AF_INET6, h, &a6) != 1)
                        return err_set(err, "%s \"%s\": \"%s\" is not a numeric IPv6 address",
                                       what, s, h);
                portstr = close + 2;
        } else {
                const char *colon = strrchr(s, ':');
                if (!colon)
                        return err_set(err, "%s \"%s\": expected HOST:PORT", what, s);
                if (memchr(s, ':', (size_t)(colon - s)))
                        return err_set(err, "%s \"%s\": an IPv6 host must be in brackets "
                                            "([::1]:PORT)", what, s);
                if (colon == s) {
                        /* ":PORT" — every IPv4 interface; say [::]:PORT for IPv6 */
                        str_copy(h, sizeof(h), "0.0.0.0");
                } else {
                        if (str_copyn(h, sizeof(h), s, (size_t)(colon - s)) < 0)
                                return err_set(err, "%s \"%s\": host too long", what, s);
                        struct in_addr a4;
                        if (strcmp(h, "localhost") != 0 && inet_pton(AF_INET, h, &a4) != 1)
                                return err_set(err, "%s \"%s\": host \"%s\" must be a numeric "
                                                    "IPv4 address, [IPv6] or localhost",
                                               what, s, h);
                }
                portstr = colon + 1;
        }
        uint16_t p = 0;
        if (parse_port(portstr, what, s, &p, err) < 0)
                return -1;
        if (strlen(h) >= hostsz)
                return err_set(err, "%s \"%s\": host too long", what, s);
        str_copy(host, hostsz, h);
        *port = p;
        return 0;
}

int ms_listen_format(const char *host, uint16_t port, char *out, size_t outsz)
{
        int n = strchr(host, ':') ? str_printf(out, outsz, "[%s]:%u", host, (unsigned)port)
                                  : str_printf(out, outsz, "%s:%u", host, (unsigned)port);
        return n < 0 ? -1 : 0;
}

/* ---------------------------------------------------------------- small values ------- */

int ms_territory_auth_parse(const char *s, bool allow_mtls, ms_territory_auth *out)
{
        if (!s)
                return -1;
        if (strcmp(s, "proxy-header") == 0 || (allow_mtls && strcmp(s, "mtls") == 0)) {
                *out = MS_TAUTH_PROXY_HEADER;
                return 0;
        }
        if (strcmp(s, "header") == 0) {
                *out = MS_TAUTH_HEADER;
                return 0;
        }
        if (strcmp(s, "either") == 0) {
                *out = MS_TAUTH_EITHER;
                return 0;
        }
        return -1;
}

const char *ms_territory_auth_name(ms_territory_auth a)
{
        switch (a) {
        case MS_TAUTH_PROXY_HEADER:
                return "proxy-header";
        case MS_TAUTH_HEADER:
                return "header";
        case MS_TAUTH_EITHER:
                return "either";
        default:
                return "unknown";
        }
}

int ms_trusted_proxy_normalize(const char *s, const char *what, char *out, size_t outsz,
                               err_t *err)
{
        char txt[INET6_ADDRSTRLEN];
        struct in_addr a4;
        struct in6_addr a6;
        if (s && inet_pton(AF_INET, s, &a4) == 1) {
                if (!inet_ntop(AF_INET, &a4, txt, sizeof(txt)))
                        return err_errno(err, errno, "%s \"%s\"", what, s);
        } else if (s && inet_pton(AF_INET6, s, &a6) == 1) {
                /* the server shows ::ffff:a.b.c.d peers as a.b.c.d (http/server.h) */
                const void *src = IN6_IS_ADDR_V4MAPPED(&a6) ? (const void *)&a6.s6_addr[12]
                                                            : (const void *)&a6;
                if (!inet_ntop(IN6_IS_ADDR_V4MAPPED(&a6) ? AF_INET : AF_INET6, src, txt,
                               sizeof(txt)))
                        return err_errno(err, errno, "%s \"%s\"", what, s);
        } else {
                return err_set(err, "%s \"%s\" must be a numeric IPv4 or IPv6 address", what,
                               s ? s : "");
        }
        if (str_copy(out, outsz, txt) < 0)
                return err_set(err, "%s \"%s\": address too long", what, s);
        return 0;
}

/* An HTTP header name is an RFC 9110 token. */
static bool is_header_token(const char *s)
{
        if (!s || !*s)
                return false;
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;
                if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
                        continue;
                if (!strchr("!#$%&'*+-.^_`|~", c))
                        return false;
        }
        return true;
}

static int set_string(char *dst, size_t dstsz, const char *v, const char *what, err_t *err)
{
        if (!v || !*v)
                return err_set(err, "%s must not be empty", what);
        if (strlen(v) >= dstsz)
                return err_set(err, "%s is longer than %zu bytes", what, dstsz - 1);
        str_copy(dst, dstsz, v);
        return 0;
}

static int check_range(const char *what, int64_t v, int64_t min, int64_t max, err_t *err)
{
        if (v < min || v > max)
                return err_set(err, "%s %" PRId64 " out of range %" PRId64 "-%" PRId64, what, v,
                               min, max);
        return 0;
}

/* ---------------------------------------------------------------- YAML file ---------- */

typedef struct yaml_retention {
        int64_t log_chunk_ttl_days;
        int64_t diff_blob_ttl_days;
        int64_t audit_event_ttl_days;
} yaml_retention;

typedef struct yaml_cfg {
        char *listen;                   /* NULL = absent */
        char *data_dir;
        int territory_auth;             /* ms_territory_auth */
        char **trusted_proxies;         /* pre-filled with the current list */
        unsigned trusted_proxies_count;
        uint32_t threads;
        int64_t log_chunk_max_bytes;
        char *cable_url;
        yaml_retention retention;
} yaml_cfg;

static const cyaml_strval_t yaml_auth_strings[] = {
        { "proxy-header", MS_TAUTH_PROXY_HEADER },
        { "header", MS_TAUTH_HEADER },
        { "either", MS_TAUTH_EITHER },
};

static const cyaml_schema_field_t yaml_retention_fields[] = {
        CYAML_FIELD_INT("log_chunk_ttl_days", CYAML_FLAG_OPTIONAL, yaml_retention,
                        log_chunk_ttl_days),
        CYAML_FIELD_INT("diff_blob_ttl_days", CYAML_FLAG_OPTIONAL, yaml_retention,
                        diff_blob_ttl_days),
        CYAML_FIELD_INT("audit_event_ttl_days", CYAML_FLAG_OPTIONAL, yaml_retention,
                        audit_event_ttl_days),
        CYAML_FIELD_END
};

static const cyaml_schema_value_t yaml_proxy_entry = {
        CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, CYAML_UNLIMITED),
};

static const cyaml_schema_field_t yaml_cfg_fields[] = {
        CYAML_FIELD_STRING_PTR("listen", CYAML_FLAG_OPTIONAL, yaml_cfg, listen, 0,
                               CYAML_UNLIMITED),
        CYAML_FIELD_STRING_PTR("data_dir", CYAML_FLAG_OPTIONAL, yaml_cfg, data_dir, 0,
                               CYAML_UNLIMITED),
        CYAML_FIELD_ENUM("territory_auth", CYAML_FLAG_OPTIONAL, yaml_cfg, territory_auth,
                         yaml_auth_strings, CYAML_ARRAY_LEN(yaml_auth_strings)),
        CYAML_FIELD_SEQUENCE("trusted_proxies", CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER,
                             yaml_cfg, trusted_proxies, &yaml_proxy_entry, 0,
                             MS_MAX_TRUSTED_PROXIES),
        CYAML_FIELD_UINT("threads", CYAML_FLAG_OPTIONAL, yaml_cfg, threads),
        CYAML_FIELD_INT("log_chunk_max_bytes", CYAML_FLAG_OPTIONAL, yaml_cfg,
                        log_chunk_max_bytes),
        CYAML_FIELD_STRING_PTR("cable_url", CYAML_FLAG_OPTIONAL, yaml_cfg, cable_url, 0,
                               CYAML_UNLIMITED),
        CYAML_FIELD_MAPPING("retention", CYAML_FLAG_OPTIONAL, yaml_cfg, retention,
                            yaml_retention_fields),
        CYAML_FIELD_END
};

static const cyaml_schema_value_t yaml_cfg_schema = {
        CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, yaml_cfg, yaml_cfg_fields),
};

/* "FILE: key \"KEY\"" for messages (a truncated message is still a message). */
static void yaml_what(char *out, size_t sz, const char *path, const char *key)
{
        if (str_printf(out, sz, "%s: key \"%s\"", path, key) < 0)
                out[sz - 1] = '\0';
}

/* Applies the loaded document to a scratch copy of cfg; the caller commits it on success. */
static int yaml_apply(const char *path, const yaml_cfg *y, ms_config *c, err_t *err)
{
        char what[256];
        if (y->listen) {
                yaml_what(what, sizeof(what), path, "listen");
                if (ms_listen_parse(y->listen, what, c->listen_host, sizeof(c->listen_host),
                                    &c->listen_port, err) < 0)
                        return -1;
        }
        if (y->data_dir) {
                yaml_what(what, sizeof(what), path, "data_dir");
                if (set_string(c->data_dir, sizeof(c->data_dir), y->data_dir, what, err) < 0)
                        return -1;
        }
        c->territory_auth = (ms_territory_auth)y->territory_auth;
        c->ntrusted_proxies = 0;
        for (unsigned i = 0; i < y->trusted_proxies_count; i++) {
                yaml_what(what, sizeof(what), path, "trusted_proxies");
                if (ms_trusted_proxy_normalize(y->trusted_proxies[i], what,
                                               c->trusted_proxies[i],
                                               sizeof(c->trusted_proxies[i]), err) < 0)
                        return -1;
                c->ntrusted_proxies = i + 1;
        }
        yaml_what(what, sizeof(what), path, "threads");
        if (check_range(what, y->threads, 1, MS_CLI_MAX_THREADS, err) < 0)
                return -1;
        c->threads = y->threads;
        yaml_what(what, sizeof(what), path, "log_chunk_max_bytes");
        if (check_range(what, y->log_chunk_max_bytes, 1, MS_CLI_MAX_LOG_CHUNK, err) < 0)
                return -1;
        c->log_chunk_max = y->log_chunk_max_bytes;
        if (y->cable_url) {
                yaml_what(what, sizeof(what), path, "cable_url");
                if (set_string(c->cable_url, sizeof(c->cable_url), y->cable_url, what, err) < 0)
                        return -1;
        }
        const struct {
                const char *key;
                int64_t v;
                int64_t *dst;
        } ttls[] = {
                { "retention.log_chunk_ttl_days", y->retention.log_chunk_ttl_days,
                  &c->log_chunk_ttl_days },
                { "retention.diff_blob_ttl_days", y->retention.diff_blob_ttl_days,
                  &c->diff_blob_ttl_days },
                { "retention.audit_event_ttl_days", y->retention.audit_event_ttl_days,
                  &c->audit_ttl_days },
        };
        for (size_t i = 0; i < sizeof(ttls) / sizeof(ttls[0]); i++) {
                yaml_what(what, sizeof(what), path, ttls[i].key);
                if (check_range(what, ttls[i].v, 0, MS_CLI_MAX_TTL_DAYS, err) < 0)
                        return -1;
                *ttls[i].dst = ttls[i].v;
        }
        return 0;
}

int ms_config_load_yaml(const char *path, ms_config *cfg, err_t *err)
{
        /* Overlay: absent keys keep the current values, so pre-fill the scalars and the
         * proxy list from cfg (the list must be malloc'd: a present key frees it). */
        yaml_cfg y = {
                .territory_auth = (int)cfg->territory_auth,
                .threads = cfg->threads,
                .log_chunk_max_bytes = cfg->log_chunk_max,
                .retention = {
                        .log_chunk_ttl_days = cfg->log_chunk_ttl_days,
                        .diff_blob_ttl_days = cfg->diff_blob_ttl_days,
                        .audit_event_ttl_days = cfg->audit_ttl_days,
                },
        };
        int rc = -1;
        if (cfg->ntrusted_proxies > 0) {
                y.trusted_proxies = calloc(cfg->ntrusted_proxies, sizeof(char *));
                if (!y.trusted_proxies) {
                        err_errno(err, ENOMEM, "load %s", path);
                        goto out;
                }
                for (size_t i = 0; i < cfg->ntrusted_proxies; i++) {
                        y.trusted_proxies[i] = strdup(cfg->trusted_proxies[i]);
                        if (!y.trusted_proxies[i]) {
                                err_errno(err, ENOMEM, "load %s", path);
                                goto out;
                        }
                        y.trusted_proxies_count = (unsigned)i + 1;
                }
        }
        if (config_load_file(path, &yaml_cfg_schema, &y, sizeof(y), err) < 0)
                goto out;
        /* a scratch copy: on a semantic error cfg stays as it was */
        ms_config *tmp = malloc(sizeof(*tmp));
        if (!tmp) {
                err_errno(err, ENOMEM, "load %s", path);
                goto out;
        }
        *tmp = *cfg;
        if (yaml_apply(path, &y, tmp, err) == 0) {
                *cfg = *tmp;
                rc = 0;
        }
        free(tmp);
        tmp = NULL;
out:
        config_free(&yaml_cfg_schema, &y);
        return rc;
}

/* ---------------------------------------------------------------- environment -------- */

static const char *env_get(ms_env_fn env, void *ctx, const char *name)
{
        const char *v = env ? env(name, ctx) : NULL;
        return v && *v ? v : NULL;
}

static int env_int(ms_env_fn env, void *ctx, const char *name, int64_t min, int64_t max,
                   int64_t *dst, err_t *err)
{
        const char *v = env_get(env, ctx, name);
        if (!v)
                return 0;
        int64_t n;
        if (str_to_int64(v, min, max, &n) < 0) {
                if (errno == ERANGE)
                        return err_set(err, "%s=\"%s\" out of range %" PRId64 "-%" PRId64, name,
                                       v, min, max);
                return err_set(err, "%s=\"%s\" must be a decimal integer", name, v);
        }
        *dst = n;
        return 0;
}

int ms_config_apply_env(ms_config *cfg, ms_env_fn env, void *env_ctx, err_t *err)
{
        const char *v;
        if ((v = env_get(env, env_ctx, "MOTHERSHIP_LISTEN")) &&
            ms_listen_parse(v, "MOTHERSHIP_LISTEN", cfg->listen_host, sizeof(cfg->listen_host),
                            &cfg->listen_port, err) < 0)
                return -1;
        if ((v = env_get(env, env_ctx, "MOTHERSHIP_DATA_DIR")) &&
            set_string(cfg->data_dir, sizeof(cfg->data_dir), v, "MOTHERSHIP_DATA_DIR", err) < 0)
                return -1;
        if ((v = env_get(env, env_ctx, "CONDUITS_TERRITORY_AUTH_MODE")) &&
            ms_territory_auth_parse(v, true, &cfg->territory_auth) < 0)
                /* fail closed: the reference treats an unknown mode as `either` (§11.2) */
                return err_set(err, "CONDUITS_TERRITORY_AUTH_MODE=\"%s\" must be one of "
                                    "proxy-header, header, either, mtls", v);
        if ((v = env_get(env, env_ctx, "CONDUITS_MTLS_FINGERPRINT_HEADER"))) {
                if (!is_header_token(v))
                        return err_set(err, "CONDUITS_MTLS_FINGERPRINT_HEADER=\"%s\" is not an "
                                            "HTTP header name", v);
                if (set_string(cfg->fingerprint_header, sizeof(cfg->fingerprint_header), v,
                               "CONDUITS_MTLS_FINGERPRINT_HEADER", err) < 0)
                        return -1;
        }
        if (env_int(env, env_ctx, "CONDUITS_LOG_CHUNK_MAX_BYTES", 1, MS_CLI_MAX_LOG_CHUNK,
                    &cfg->log_chunk_max, err) < 0)
                return -1;
        if ((v = env_get(env, env_ctx, "ACTION_CABLE_URL")) &&
            set_string(cfg->cable_url, sizeof(cfg->cable_url), v, "ACTION_CABLE_URL", err) < 0)
                return -1;
        if (env_int(env, env_ctx, "CONDUITS_LOG_CHUNK_TTL_DAYS", 0, MS_CLI_MAX_TTL_DAYS,
                    &cfg->log_chunk_ttl_days, err) < 0 ||
            env_int(env, env_ctx, "CONDUITS_DIFF_BLOB_TTL_DAYS", 0, MS_CLI_MAX_TTL_DAYS,
                    &cfg->diff_blob_ttl_days, err) < 0 ||
            env_int(env, env_ctx, "CONDUITS_AUDIT_EVENT_TTL_DAYS", 0, MS_CLI_MAX_TTL_DAYS,
                    &cfg->audit_ttl_days, err) < 0)
                return -1;
        return 0;
}

/* ---------------------------------------------------------------- flags -------------- */

int ms_cli_flag(int argc, char *const argv[], int *i, const char *name, const char **value,
                err_t *err)
{
        const char *a = argv[*i];
        if (a[0] != '-' || a[1] != '-')
                return 0;
        size_t n = strlen(name);
        if (strncmp(a + 2, name, n) != 0)
                return 0;
        if (a[2 + n] == '=') {
                *value = a + 3 + n;
                (*i)++;
                return 1;
        }
        if (a[2 + n] != '\0')
                return 0;
        if (*i + 1 >= argc) {
                err_set(err, "--%s needs a value", name);
                return MS_CLI_USAGE;
        }
        *value = argv[*i + 1];
        *i += 2;
        return 1;
}

int ms_cli_int(const char *flag, const char *value, int64_t min, int64_t max, int64_t *out,
               err_t *err)
{
        if (str_to_int64(value, min, max, out) < 0) {
                if (errno == ERANGE)
                        err_set(err, "%s \"%s\" out of range %" PRId64 "-%" PRId64, flag, value,
                                min, max);
                else
                        err_set(err, "%s \"%s\" must be a decimal integer", flag, value);
                return MS_CLI_USAGE;
        }
        return 0;
}

typedef struct serve_flags {
        const char *listen, *data_dir, *territory_auth, *threads, *config, *rate_limits;
        const char *proxies[MS_MAX_TRUSTED_PROXIES];
        size_t nproxies;
} serve_flags;

static int serve_parse_flags(int argc, char *const argv[], serve_flags *f, err_t *err)
{
        static const struct {
                const char *name;
                size_t off;
        } single[] = {
                { "listen", offsetof(serve_flags, listen) },
                { "data-dir", offsetof(serve_flags, data_dir) },
                { "territory-auth", offsetof(serve_flags, territory_auth) },
                { "threads", offsetof(serve_flags, threads) },
                { "config", offsetof(serve_flags, config) },
                { "rate-limits", offsetof(serve_flags, rate_limits) },
        };
        int i = 0;
        while (i < argc) {
                const char *a = argv[i];
                if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
                        return MS_CLI_HELP;
                const char *v = NULL;
                int r = ms_cli_flag(argc, argv, &i, "trusted-proxy", &v, err);
                if (r < 0)
                        return r;
                if (r > 0) {
                        if (f->nproxies >= MS_MAX_TRUSTED_PROXIES) {
                                err_set(err, "at most %d --trusted-proxy flags",
                                        MS_MAX_TRUSTED_PROXIES);
                                return MS_CLI_USAGE;
                        }
                        f->proxies[f->nproxies++] = v;
                        continue;
                }
                bool matched = false;
                for (size_t k = 0; k < sizeof(single) / sizeof(single[0]) && !matched; k++) {
                        r = ms_cli_flag(argc, argv, &i, single[k].name, &v, err);
                        if (r < 0)
                                return r;
                        if (r > 0) {
                                /* a repeated flag: the last one wins, as usual */
                                *(const char **)(void *)((char *)f + single[k].off) = v;
                                matched = true;
                        }
                }
                if (matched)
                        continue;
                if (a[0] == '-')
                        err_set(err, "unknown flag \"%s\" for serve", a);
                else
                        err_set(err, "unexpected argument \"%s\" for serve", a);
                return MS_CLI_USAGE;
        }
        return 0;
}

/* Flags are validated before the file and the environment are read, so a usage error is
 * reported as one (exit 2) whatever else is wrong. */
static int serve_apply_flags(const serve_flags *f, ms_config *c, err_t *err)
{
        if (f->listen && ms_listen_parse(f->listen, "--listen", c->listen_host,
                                         sizeof(c->listen_host), &c->listen_port, err) < 0)
                return MS_CLI_USAGE;
        if (f->data_dir && set_string(c->data_dir, sizeof(c->data_dir), f->data_dir,
                                      "--data-dir", err) < 0)
                return MS_CLI_USAGE;
        if (f->territory_auth && ms_territory_auth_parse(f->territory_auth, false,
                                                         &c->territory_auth) < 0) {
                err_set(err, "--territory-auth \"%s\" must be one of proxy-header, header, "
                             "either", f->territory_auth);
                return MS_CLI_USAGE;
        }
        if (f->threads) {
                int64_t n;
                int r = ms_cli_int("--threads", f->threads, 1, MS_CLI_MAX_THREADS, &n, err);
                if (r < 0)
                        return r;
                c->threads = (unsigned)n;
        }
        if (f->rate_limits) {
                if (strcmp(f->rate_limits, "on") != 0 && strcmp(f->rate_limits, "off") != 0) {
                        err_set(err, "--rate-limits \"%s\" must be on or off", f->rate_limits);
                        return MS_CLI_USAGE;
                }
                c->rate_limits_off = strcmp(f->rate_limits, "off") == 0;
        }
        if (f->nproxies > 0) {
                c->ntrusted_proxies = 0;
                for (size_t i = 0; i < f->nproxies; i++) {
                        if (ms_trusted_proxy_normalize(f->proxies[i], "--trusted-proxy",
                                                       c->trusted_proxies[i],
                                                       sizeof(c->trusted_proxies[i]), err) < 0)
                                return MS_CLI_USAGE;
                        c->ntrusted_proxies = i + 1;
                }
        }
        return 0;
}

int ms_serve_config_load(int argc, char *const argv[], ms_env_fn env, void *env_ctx,
                         ms_config *cfg, err_t *err)
{
        serve_flags f = { 0 };
        int r = serve_parse_flags(argc, argv, &f, err);
        if (r != 0)
                return r;
        if (f.config && !*f.config) {
                err_set(err, "--config must not be empty");
                return MS_CLI_USAGE;
        }
        ms_config *scratch = malloc(sizeof(*scratch));
        if (!scratch)
                return err_errno(err, ENOMEM, "serve configuration");
        /* dry run of the flags on a copy: usage errors first */
        *scratch = *cfg;
        r = serve_apply_flags(&f, scratch, err);
        if (r < 0)
                goto out;
        *scratch = *cfg;
        r = -1;
        if (f.config && ms_config_load_yaml(f.config, scratch, err) < 0)
                goto out;
        if (ms_config_apply_env(scratch, env, env_ctx, err) < 0)
                goto out;
        r = serve_apply_flags(&f, scratch, err);
        if (r < 0)
                goto out;
        *cfg = *scratch;
        r = 0;
out:
        free(scratch);
        scratch = NULL;
        return r;
}
