/* tests/unit/test_ms_cli_config.c — mothership serve configuration: --listen parsing and the
 * precedence flags > environment > YAML file > defaults (DESIGN D18, briefs/mothership_cli.md). */
#include "testutil.h"
#include "cli_config.h"
#include "core/str.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- helpers ---------------------------------------------------------------------- */

/* The same shape as ms_config_defaults (app.c is not linked: cli_config is tested alone). */
static void defaults(ms_config *c)
{
        memset(c, 0, sizeof(*c));
        str_copy(c->listen_host, sizeof(c->listen_host), "127.0.0.1");
        c->listen_port = 3000;
        str_copy(c->data_dir, sizeof(c->data_dir), "./mothership-data");
        c->territory_auth = MS_TAUTH_PROXY_HEADER;
        str_copy(c->fingerprint_header, sizeof(c->fingerprint_header),
                 "X-Nexus-Client-Cert-Fingerprint");
        str_copy(c->trusted_proxies[0], sizeof(c->trusted_proxies[0]), "127.0.0.1");
        str_copy(c->trusted_proxies[1], sizeof(c->trusted_proxies[1]), "::1");
        c->ntrusted_proxies = 2;
        c->threads = 4;
        c->log_chunk_max = 262144;
        str_copy(c->cable_url, sizeof(c->cable_url), "/cable");
        c->log_chunk_ttl_days = 30;
        c->diff_blob_ttl_days = 30;
        c->audit_ttl_days = 90;
        c->heartbeat_interval_s = 30;
}

/* A fake environment: NULL-terminated name/value pairs. */
static const char *table_env(const char *name, void *ctx)
{
        const char *const *kv = ctx;
        for (size_t i = 0; kv && kv[i]; i += 2)
                if (strcmp(kv[i], name) == 0)
                        return kv[i + 1];
        return NULL;
}

static void assert_err_contains(const err_t *err, const char *needle)
{
        if (!strstr(err->msg, needle)) {
                print_error("error \"%s\" does not contain \"%s\"\n", err->msg, needle);
                fail();
        }
}

/* Writes text to a fresh temporary .yaml file; path receives its name. */
static void write_yaml(char path[64], const char *text)
{
        str_copy(path, 64, "/tmp/test_ms_cli_config_XXXXXX.yaml");
        int fd = mkstemps(path, 5);
        assert_true(fd >= 0);
        size_t len = strlen(text);
        assert_int_equal(write(fd, text, len), (ssize_t)len);
        close(fd);
}

static int serve_load(const char *const *args, const char *const *env, ms_config *cfg,
                      err_t *err)
{
        int argc = 0;
        while (args && args[argc])
                argc++;
        return ms_serve_config_load(argc, (char *const *)(uintptr_t)args, table_env,
                                    (void *)(uintptr_t)env, cfg, err);
}

/* ---- --listen ----------------------------------------------------------------------- */

static void test_listen_ipv4_host_and_port(void **state)
{
        (void)state;
        char host[64];
        uint16_t port = 0;
        err_t err = ERR_INIT;
        assert_int_equal(ms_listen_parse("10.1.2.3:8080", "--listen", host, sizeof(host), &port,
                                         &err), 0);
        assert_string_equal(host, "10.1.2.3");
        assert_int_equal(port, 8080);
}

static void test_listen_bracketed_ipv6(void **state)
{
        (void)state;
        char host[64];
        uint16_t port = 0;
        err_t err = ERR_INIT;
        assert_int_equal(ms_listen_parse("[::1]:443", "--listen", host, sizeof(host), &port,
                                         &err), 0);
        assert_string_equal(host, "::1");
        assert_int_equal(port, 443);
}

static void test_listen_empty_host_means_all_ipv4(void **state)
{
        (void)state;
        char host[64];
        uint16_t port = 0;
        err_t err = ERR_INIT;
        assert_int_equal(ms_listen_parse(":9000", "--listen", host, sizeof(host), &port, &err),
                         0);
        assert_string_equal(host, "0.0.0.0");
        assert_int_equal(port, 9000);
}

static void test_listen_localhost_and_port_zero(void **state)
{
        (void)state;
        char host[64];
        uint16_t port = 1;
        err_t err = ERR_INIT;
        assert_int_equal(ms_listen_parse("localhost:0", "--listen", host, sizeof(host), &port,
                                         &err), 0);
        assert_string_equal(host, "localhost");
        assert_int_equal(port, 0);
}

static void test_listen_port_65535_accepted(void **state)
{
        (void)state;
        char host[64];
        uint16_t port = 0;
        err_t err = ERR_INIT;
        assert_int_equal(ms_listen_parse("127.0.0.1:65535", "--listen", host, sizeof(host),
                                         &port, &err), 0);
        assert_int_equal(port, 65535);
}

static void test_listen_port_out_of_range_names_flag(void **state)
{
        (void)state;
        char host[64] = "unchanged";
        uint16_t port = 7;
        err_t err = ERR_INIT;
        assert_int_equal(ms_listen_parse("127.0.0.1:65536", "--listen", host, sizeof(host),
                                         &port, &err), -1);
        assert_err_contains(&err, "--listen");
        assert_err_contains(&err, "port \"65536\" out of range 0-65535");
        assert_string_equal(host, "unchanged");
        assert_int_equal(port, 7);
}

static void test_listen_refuses_bad_ports(void **state)
{
        (void)state;
        const char *bad[] = { "127.0.0.1:-1", "127.0.0.1:80x", "127.0.0.1:", "127.0.0.1: 80",
                              "127.0.0.1:+80", "127.0.0.1:0x50", "[::1]:", "[::1]:99999" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char host[64];
                uint16_t port;
                err_t err = ERR_INIT;
                if (ms_listen_parse(bad[i], "--listen", host, sizeof(host), &port, &err) != -1) {
                        print_error("accepted \"%s\"\n", bad[i]);
                        fail();
                }
                assert_err_contains(&err, "port");
        }
}

static void test_listen_refuses_missing_port(void **state)
{
        (void)state;
        char host[64];
        uint16_t port;
        err_t err = ERR_INIT;
        assert_int_equal(ms_listen_parse("127.0.0.1", "MOTHERSHIP_LISTEN", host, sizeof(host),
                                         &port, &err), -1);
        assert_err_contains(&err, "MOTHERSHIP_LISTEN");
        assert_err_contains(&err, "expected HOST:PORT");
}

static void test_listen_refuses_unbracketed_ipv6(void **state)
{
        (void)state;
        char host[64];
        uint16_t port;
        err_t err = ERR_INIT;
        assert_int_equal(ms_listen_parse("::1:3000", "--listen", host, sizeof(host), &port,
                                         &err), -1);
        assert_err_contains(&err, "brackets");
}

static void test_listen_refuses_host_names(void **state)
{
        (void)state;
        char host[64];
        uint16_t port;
        err_t err = ERR_INIT;
        assert_int_equal(ms_listen_parse("example.com:80", "--listen", host, sizeof(host), &port,
                                         &err), -1);
        assert_err_contains(&err, "host \"example.com\"");
}

static void test_listen_refuses_bad_brackets(void **state)
{
        (void)state;
        const char *bad[] = { "[::1]8080", "[::1", "[127.0.0.1]:80", "[]:80", "[zz]:80", "" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char host[64];
                uint16_t port;
                err_t err = ERR_INIT;
                if (ms_listen_parse(bad[i], "--listen", host, sizeof(host), &port, &err) != -1) {
                        print_error("accepted \"%s\"\n", bad[i]);
                        fail();
                }
                assert_err_contains(&err, "--listen");
        }
}

static void test_listen_host_longer_than_buffer_refused(void **state)
{
        (void)state;
        char host[8] = "same";
        uint16_t port = 1;
        err_t err = ERR_INIT;
        assert_int_equal(ms_listen_parse("[1:2:3:4:5:6:7:8]:80", "--listen", host, sizeof(host),
                                         &port, &err), -1);
        assert_string_equal(host, "same");
}

static void test_listen_format_brackets_ipv6_only(void **state)
{
        (void)state;
        char out[64];
        assert_int_equal(ms_listen_format("::1", 43121, out, sizeof(out)), 0);
        assert_string_equal(out, "[::1]:43121");
        assert_int_equal(ms_listen_format("127.0.0.1", 80, out, sizeof(out)), 0);
        assert_string_equal(out, "127.0.0.1:80");
        char small[6];
        assert_int_equal(ms_listen_format("127.0.0.1", 80, small, sizeof(small)), -1);
}

/* ---- small values ------------------------------------------------------------------- */

static void test_territory_auth_flag_values(void **state)
{
        (void)state;
        ms_territory_auth a = MS_TAUTH_EITHER;
        assert_int_equal(ms_territory_auth_parse("proxy-header", false, &a), 0);
        assert_int_equal(a, MS_TAUTH_PROXY_HEADER);
        assert_int_equal(ms_territory_auth_parse("header", false, &a), 0);
        assert_int_equal(a, MS_TAUTH_HEADER);
        assert_int_equal(ms_territory_auth_parse("either", false, &a), 0);
        assert_int_equal(a, MS_TAUTH_EITHER);
}

static void test_territory_auth_mtls_only_where_allowed(void **state)
{
        (void)state;
        ms_territory_auth a = MS_TAUTH_EITHER;
        assert_int_equal(ms_territory_auth_parse("mtls", false, &a), -1);
        assert_int_equal(a, MS_TAUTH_EITHER);
        assert_int_equal(ms_territory_auth_parse("mtls", true, &a), 0);
        assert_int_equal(a, MS_TAUTH_PROXY_HEADER);
}

static void test_territory_auth_unknown_refused(void **state)
{
        (void)state;
        ms_territory_auth a;
        assert_int_equal(ms_territory_auth_parse("Either", true, &a), -1);
        assert_int_equal(ms_territory_auth_parse("", true, &a), -1);
        assert_int_equal(ms_territory_auth_parse(NULL, true, &a), -1);
        assert_string_equal(ms_territory_auth_name(MS_TAUTH_HEADER), "header");
}

static void test_trusted_proxy_normalized_like_peers(void **state)
{
        (void)state;
        char out[64];
        err_t err = ERR_INIT;
        assert_int_equal(ms_trusted_proxy_normalize("::ffff:10.0.0.1", "--trusted-proxy", out,
                                                    sizeof(out), &err), 0);
        assert_string_equal(out, "10.0.0.1");
        assert_int_equal(ms_trusted_proxy_normalize("0:0:0:0:0:0:0:1", "--trusted-proxy", out,
                                                    sizeof(out), &err), 0);
        assert_string_equal(out, "::1");
}

static void test_trusted_proxy_name_refused(void **state)
{
        (void)state;
        char out[64];
        err_t err = ERR_INIT;
        assert_int_equal(ms_trusted_proxy_normalize("localhost", "--trusted-proxy", out,
                                                    sizeof(out), &err), -1);
        assert_err_contains(&err, "--trusted-proxy \"localhost\"");
}

static void test_cli_flag_forms(void **state)
{
        (void)state;
        char a0[] = "--data-dir", a1[] = "/d", a2[] = "--data-dir=/e", a3[] = "--data-dirx",
             a4[] = "--data-dir";
        char *argv[] = { a0, a1, a2, a3, a4 };
        const char *v = NULL;
        int i = 0;
        err_t err = ERR_INIT;
        assert_int_equal(ms_cli_flag(5, argv, &i, "data-dir", &v, &err), 1);
        assert_string_equal(v, "/d");
        assert_int_equal(i, 2);
        assert_int_equal(ms_cli_flag(5, argv, &i, "data-dir", &v, &err), 1);
        assert_string_equal(v, "/e");
        assert_int_equal(i, 3);
        assert_int_equal(ms_cli_flag(5, argv, &i, "data-dir", &v, &err), 0);
        assert_int_equal(i, 3);
        i = 4;
        assert_int_equal(ms_cli_flag(5, argv, &i, "data-dir", &v, &err), MS_CLI_USAGE);
        assert_err_contains(&err, "--data-dir needs a value");
}

/* ---- environment -------------------------------------------------------------------- */

static void test_env_overrides_defaults(void **state)
{
        (void)state;
        const char *env[] = {
                "MOTHERSHIP_LISTEN", "[::1]:4000",
                "MOTHERSHIP_DATA_DIR", "/var/lib/ms",
                "CONDUITS_TERRITORY_AUTH_MODE", "either",
                "CONDUITS_MTLS_FINGERPRINT_HEADER", "X-Client-FP",
                "CONDUITS_LOG_CHUNK_MAX_BYTES", "1024",
                "ACTION_CABLE_URL", "wss://example/cable",
                "CONDUITS_LOG_CHUNK_TTL_DAYS", "7",
                "CONDUITS_DIFF_BLOB_TTL_DAYS", "0",
                "CONDUITS_AUDIT_EVENT_TTL_DAYS", "365",
                NULL
        };
        ms_config c;
        defaults(&c);
        err_t err = ERR_INIT;
        assert_int_equal(ms_config_apply_env(&c, table_env, (void *)env, &err), 0);
        assert_string_equal(c.listen_host, "::1");
        assert_int_equal(c.listen_port, 4000);
        assert_string_equal(c.data_dir, "/var/lib/ms");
        assert_int_equal(c.territory_auth, MS_TAUTH_EITHER);
        assert_string_equal(c.fingerprint_header, "X-Client-FP");
        assert_int_equal(c.log_chunk_max, 1024);
        assert_string_equal(c.cable_url, "wss://example/cable");
        assert_int_equal(c.log_chunk_ttl_days, 7);
        assert_int_equal(c.diff_blob_ttl_days, 0);
        assert_int_equal(c.audit_ttl_days, 365);
}

static void test_env_empty_value_counts_as_unset(void **state)
{
        (void)state;
        const char *env[] = { "MOTHERSHIP_LISTEN", "", "CONDUITS_LOG_CHUNK_MAX_BYTES", "", NULL };
        ms_config c;
        defaults(&c);
        err_t err = ERR_INIT;
        assert_int_equal(ms_config_apply_env(&c, table_env, (void *)env, &err), 0);
        assert_int_equal(c.listen_port, 3000);
        assert_int_equal(c.log_chunk_max, 262144);
}

static void test_env_mtls_means_proxy_header(void **state)
{
        (void)state;
        const char *env[] = { "CONDUITS_TERRITORY_AUTH_MODE", "mtls", NULL };
        ms_config c;
        defaults(&c);
        c.territory_auth = MS_TAUTH_EITHER;
        err_t err = ERR_INIT;
        assert_int_equal(ms_config_apply_env(&c, table_env, (void *)env, &err), 0);
        assert_int_equal(c.territory_auth, MS_TAUTH_PROXY_HEADER);
}

static void test_env_unknown_auth_mode_fails_closed(void **state)
{
        (void)state;
        /* the reference would run this as `either`, which accepts the dev id header */
        const char *env[] = { "CONDUITS_TERRITORY_AUTH_MODE", "mTLS ", NULL };
        ms_config c;
        defaults(&c);
        err_t err = ERR_INIT;
        assert_int_equal(ms_config_apply_env(&c, table_env, (void *)env, &err), -1);
        assert_err_contains(&err, "CONDUITS_TERRITORY_AUTH_MODE=\"mTLS \"");
        assert_int_equal(c.territory_auth, MS_TAUTH_PROXY_HEADER);
}

static void test_env_bad_number_names_variable(void **state)
{
        (void)state;
        const char *env[] = { "CONDUITS_AUDIT_EVENT_TTL_DAYS", "ninety", NULL };
        ms_config c;
        defaults(&c);
        err_t err = ERR_INIT;
        assert_int_equal(ms_config_apply_env(&c, table_env, (void *)env, &err), -1);
        assert_err_contains(&err, "CONDUITS_AUDIT_EVENT_TTL_DAYS=\"ninety\"");
        assert_int_equal(c.audit_ttl_days, 90);
}

static void test_env_log_chunk_max_zero_refused(void **state)
{
        (void)state;
        const char *env[] = { "CONDUITS_LOG_CHUNK_MAX_BYTES", "0", NULL };
        ms_config c;
        defaults(&c);
        err_t err = ERR_INIT;
        assert_int_equal(ms_config_apply_env(&c, table_env, (void *)env, &err), -1);
        assert_err_contains(&err, "out of range");
}

static void test_env_negative_ttl_refused(void **state)
{
        (void)state;
        const char *env[] = { "CONDUITS_LOG_CHUNK_TTL_DAYS", "-1", NULL };
        ms_config c;
        defaults(&c);
        err_t err = ERR_INIT;
        assert_int_equal(ms_config_apply_env(&c, table_env, (void *)env, &err), -1);
        assert_err_contains(&err, "CONDUITS_LOG_CHUNK_TTL_DAYS");
}

static void test_env_fingerprint_header_must_be_token(void **state)
{
        (void)state;
        const char *env[] = { "CONDUITS_MTLS_FINGERPRINT_HEADER", "X-FP: evil", NULL };
        ms_config c;
        defaults(&c);
        err_t err = ERR_INIT;
        assert_int_equal(ms_config_apply_env(&c, table_env, (void *)env, &err), -1);
        assert_err_contains(&err, "not an HTTP header name");
        assert_string_equal(c.fingerprint_header, "X-Nexus-Client-Cert-Fingerprint");
}

static void test_env_bad_listen_names_variable(void **state)
{
        (void)state;
        const char *env[] = { "MOTHERSHIP_LISTEN", "0.0.0.0:70000", NULL };
        ms_config c;
        defaults(&c);
        err_t err = ERR_INIT;
        assert_int_equal(ms_config_apply_env(&c, table_env, (void *)env, &err), -1);
        assert_err_contains(&err, "MOTHERSHIP_LISTEN \"0.0.0.0:70000\"");
}

/* ---- YAML file ---------------------------------------------------------------------- */

static void test_yaml_overlays_present_keys_only(void **state)
{
        (void)state;
        char path[64];
        write_yaml(path, "listen: 0.0.0.0:8443\n"
                         "threads: 8\n"
                         "retention:\n"
                         "  audit_event_ttl_days: 10\n");
        ms_config c;
        defaults(&c);
        err_t err = ERR_INIT;
        int r = ms_config_load_yaml(path, &c, &err);
        unlink(path);
        assert_int_equal(r, 0);
        assert_string_equal(c.listen_host, "0.0.0.0");
        assert_int_equal(c.listen_port, 8443);
        assert_int_equal(c.threads, 8);
        assert_int_equal(c.audit_ttl_days, 10);
        /* absent keys keep their values */
        assert_int_equal(c.log_chunk_ttl_days, 30);
        assert_string_equal(c.data_dir, "./mothership-data");
        assert_int_equal(c.ntrusted_proxies, 2);
        assert_int_equal(c.territory_auth, MS_TAUTH_PROXY_HEADER);
}

static void test_yaml_every_key(void **state)
{
        (void)state;
        char path[64];
        write_yaml(path, "listen: \"[::]:9\"\n"
                         "data_dir: /srv/ms\n"
                         "territory_auth: header\n"
                         "trusted_proxies: [10.0.0.5]\n"
                         "threads: 2\n"
                         "log_chunk_max_bytes: 4096\n"
                         "cable_url: /ws\n"
                         "retention: {log_chunk_ttl_days: 1, diff_blob_ttl_days: 2,"
                         " audit_event_ttl_days: 3}\n");
        ms_config c;
        defaults(&c);
        err_t err = ERR_INIT;
        int r = ms_config_load_yaml(path, &c, &err);
        unlink(path);
        assert_int_equal(r, 0);
        assert_string_equal(c.listen_host, "::");
        assert_int_equal(c.listen_port, 9);
        assert_string_equal(c.data_dir, "/srv/ms");
        assert_int_equal(c.territory_auth, MS_TAUTH_HEADER);
        assert_int_equal(c.ntrusted_proxies, 1);
        assert_string_equal(c.trusted_proxies[0], "10.0.0.5");
        assert_int_equal(c.threads, 2);
        assert_int_equal(c.log_chunk_max, 4096);
        assert_string_equal(c.cable_url, "/ws");
        assert_int_equal(c.log_chunk_ttl_days, 1);
        assert_int_equal(c.diff_blob_ttl_days, 2);
        assert_int_equal(c.audit_ttl_days, 3);
}

static void test_yaml_empty_proxy_list_trusts_nobody(void **state)
{
        (void)state;
        char path[64];
        write_yaml(path, "trusted_proxies: []\n");
        ms_config c;
        defaults(&c);
        err_t err = ERR_INIT;
        int r = ms_config_load_yaml(path, &c, &err);
        unlink(path);
        assert_int_equal(r, 0);
        assert_int_equal(c.ntrusted_proxies, 0);
}

static void test_yaml_unknown_key_names_file_line_key(void **state)
{
        (void)state;
        char path[64];
        write_yaml(path, "threads: 2\nlisten_addr: 1.2.3.4:5\n");
        ms_config c;
        defaults(&c);
        err_t err = ERR_INIT;
        int r = ms_config_load_yaml(path, &c, &err);
        unlink(path);
        assert_int_equal(r, -1);
        assert_err_contains(&err, path);
        assert_err_contains(&err, ":2:");
        assert_err_contains(&err, "unknown key \"listen_addr\"");
        assert_int_equal(c.threads, 4);
}

static void test_yaml_bad_auth_value_refused(void **state)
{
        (void)state;
        char path[64];
        write_yaml(path, "territory_auth: whatever\n");
        ms_config c;
        defaults(&c);
        err_t err = ERR_INIT;
        int r = ms_config_load_yaml(path, &c, &err);
        unlink(path);
        assert_int_equal(r, -1);
        assert_err_contains(&err, ":1:");
        assert_int_equal(c.territory_auth, MS_TAUTH_PROXY_HEADER);
}

static void test_yaml_semantic_error_leaves_config_unchanged(void **state)
{
        (void)state;
        char path[64];
        write_yaml(path, "data_dir: /new\nthreads: 0\n");
        ms_config c;
        defaults(&c);
        err_t err = ERR_INIT;
        int r = ms_config_load_yaml(path, &c, &err);
        unlink(path);
        assert_int_equal(r, -1);
        assert_err_contains(&err, "key \"threads\"");
        assert_string_equal(c.data_dir, "./mothership-data");
}

static void test_yaml_bad_listen_names_key(void **state)
{
        (void)state;
        char path[64];
        write_yaml(path, "listen: nowhere\n");
        ms_config c;
        defaults(&c);
        err_t err = ERR_INIT;
        int r = ms_config_load_yaml(path, &c, &err);
        unlink(path);
        assert_int_equal(r, -1);
        assert_err_contains(&err, "key \"listen\"");
        assert_int_equal(c.listen_port, 3000);
}

static void test_yaml_bad_proxy_refused(void **state)
{
        (void)state;
        char path[64];
        write_yaml(path, "trusted_proxies: [10.0.0.1, proxy.local]\n");
        ms_config c;
        defaults(&c);
        err_t err = ERR_INIT;
        int r = ms_config_load_yaml(path, &c, &err);
        unlink(path);
        assert_int_equal(r, -1);
        assert_err_contains(&err, "proxy.local");
        assert_int_equal(c.ntrusted_proxies, 2);
        assert_string_equal(c.trusted_proxies[0], "127.0.0.1");
}

static void test_yaml_missing_file_names_path(void **state)
{
        (void)state;
        ms_config c;
        defaults(&c);
        err_t err = ERR_INIT;
        assert_int_equal(ms_config_load_yaml("/nonexistent/ms.yaml", &c, &err), -1);
        assert_err_contains(&err, "/nonexistent/ms.yaml");
}

/* ---- precedence through ms_serve_config_load ---------------------------------------- */

static void test_precedence_flag_beats_env_and_file(void **state)
{
        (void)state;
        char path[64];
        write_yaml(path, "listen: 127.0.0.1:1111\n");
        const char *args[] = { "--config", path, "--listen", "127.0.0.1:3333", NULL };
        const char *env[] = { "MOTHERSHIP_LISTEN", "127.0.0.1:2222", NULL };
        ms_config c;
        defaults(&c);
        err_t err = ERR_INIT;
        int r = serve_load(args, env, &c, &err);
        unlink(path);
        assert_int_equal(r, 0);
        assert_int_equal(c.listen_port, 3333);
}

static void test_precedence_env_beats_file(void **state)
{
        (void)state;
        char path[64];
        write_yaml(path, "listen: 127.0.0.1:1111\ndata_dir: /from-file\n");
        const char *args[] = { "--config", path, NULL };
        const char *env[] = { "MOTHERSHIP_LISTEN", "127.0.0.1:2222", NULL };
        ms_config c;
        defaults(&c);
        err_t err = ERR_INIT;
        int r = serve_load(args, env, &c, &err);
        unlink(path);
        assert_int_equal(r, 0);
        assert_int_equal(c.listen_port, 2222);
        assert_string_equal(c.data_dir, "/from-file");
}

static void test_precedence_file_beats_defaults(void **state)
{
        (void)state;
        char path[64];
        write_yaml(path, "territory_auth: either\nthreads: 3\n");
        const char *args[] = { "--config=", NULL };
        ms_config c;
        defaults(&c);
        err_t err = ERR_INIT;
        /* "--config=" (empty) is a usage error, not "no file" */
        assert_int_equal(serve_load(args, NULL, &c, &err), MS_CLI_USAGE);
        const char *args2[] = { "--config", path, NULL };
        int r = serve_load(args2, NULL, &c, &err);
        unlink(path);
        assert_int_equal(r, 0);
        assert_int_equal(c.territory_auth, MS_TAUTH_EITHER);
        assert_int_equal(c.threads, 3);
        assert_int_equal(c.listen_port, 3000);
}

static void test_precedence_flag_auth_beats_env_auth(void **state)
{
        (void)state;
        const char *args[] = { "--territory-auth=header", NULL };
        const char *env[] = { "CONDUITS_TERRITORY_AUTH_MODE", "either", NULL };
        ms_config c;
        defaults(&c);
        err_t err = ERR_INIT;
        assert_int_equal(serve_load(args, env, &c, &err), 0);
        assert_int_equal(c.territory_auth, MS_TAUTH_HEADER);
}

static void test_no_sources_keeps_defaults(void **state)
{
        (void)state;
        ms_config c, want;
        defaults(&c);
        defaults(&want);
        err_t err = ERR_INIT;
        assert_int_equal(serve_load(NULL, NULL, &c, &err), 0);
        assert_memory_equal(&c, &want, sizeof(c));
}

static void test_trusted_proxy_flags_replace_default_list(void **state)
{
        (void)state;
        const char *args[] = { "--trusted-proxy", "10.0.0.1", "--trusted-proxy=::ffff:10.0.0.2",
                               NULL };
        ms_config c;
        defaults(&c);
        err_t err = ERR_INIT;
        assert_int_equal(serve_load(args, NULL, &c, &err), 0);
        assert_int_equal(c.ntrusted_proxies, 2);
        assert_string_equal(c.trusted_proxies[0], "10.0.0.1");
        assert_string_equal(c.trusted_proxies[1], "10.0.0.2");
}

static void test_trusted_proxy_flags_beat_file_list(void **state)
{
        (void)state;
        char path[64];
        write_yaml(path, "trusted_proxies: [10.9.9.9, 10.8.8.8]\n");
        const char *args[] = { "--config", path, "--trusted-proxy", "::1", NULL };
        ms_config c;
        defaults(&c);
        err_t err = ERR_INIT;
        int r = serve_load(args, NULL, &c, &err);
        unlink(path);
        assert_int_equal(r, 0);
        assert_int_equal(c.ntrusted_proxies, 1);
        assert_string_equal(c.trusted_proxies[0], "::1");
}

static void test_unknown_flag_is_usage_error(void **state)
{
        (void)state;
        const char *args[] = { "--listne", "127.0.0.1:1", NULL };
        ms_config c;
        defaults(&c);
        err_t err = ERR_INIT;
        assert_int_equal(serve_load(args, NULL, &c, &err), MS_CLI_USAGE);
        assert_err_contains(&err, "unknown flag \"--listne\"");
}

static void test_stray_argument_is_usage_error(void **state)
{
        (void)state;
        const char *args[] = { "127.0.0.1:1", NULL };
        ms_config c;
        defaults(&c);
        err_t err = ERR_INIT;
        assert_int_equal(serve_load(args, NULL, &c, &err), MS_CLI_USAGE);
        assert_err_contains(&err, "unexpected argument");
}

static void test_missing_flag_value_is_usage_error(void **state)
{
        (void)state;
        const char *args[] = { "--threads", NULL };
        ms_config c;
        defaults(&c);
        err_t err = ERR_INIT;
        assert_int_equal(serve_load(args, NULL, &c, &err), MS_CLI_USAGE);
        assert_err_contains(&err, "--threads needs a value");
}

static void test_bad_flag_value_is_usage_error_and_changes_nothing(void **state)
{
        (void)state;
        const char *args[] = { "--data-dir", "/x", "--threads", "0", NULL };
        ms_config c, want;
        defaults(&c);
        defaults(&want);
        err_t err = ERR_INIT;
        assert_int_equal(serve_load(args, NULL, &c, &err), MS_CLI_USAGE);
        assert_err_contains(&err, "--threads \"0\" out of range 1-256");
        assert_memory_equal(&c, &want, sizeof(c));
}

static void test_flag_auth_refuses_mtls(void **state)
{
        (void)state;
        const char *args[] = { "--territory-auth", "mtls", NULL };
        ms_config c;
        defaults(&c);
        err_t err = ERR_INIT;
        assert_int_equal(serve_load(args, NULL, &c, &err), MS_CLI_USAGE);
        assert_err_contains(&err, "--territory-auth \"mtls\"");
}

static void test_flag_usage_error_reported_before_env_error(void **state)
{
        (void)state;
        const char *args[] = { "--listen", "nowhere", NULL };
        const char *env[] = { "CONDUITS_TERRITORY_AUTH_MODE", "bogus", NULL };
        ms_config c;
        defaults(&c);
        err_t err = ERR_INIT;
        assert_int_equal(serve_load(args, env, &c, &err), MS_CLI_USAGE);
        assert_err_contains(&err, "--listen");
}

static void test_env_error_is_runtime_error(void **state)
{
        (void)state;
        const char *env[] = { "CONDUITS_TERRITORY_AUTH_MODE", "bogus", NULL };
        ms_config c;
        defaults(&c);
        err_t err = ERR_INIT;
        assert_int_equal(serve_load(NULL, env, &c, &err), -1);
        assert_int_equal(c.territory_auth, MS_TAUTH_PROXY_HEADER);
}

static void test_help_flag(void **state)
{
        (void)state;
        const char *args[] = { "--listen", "127.0.0.1:1", "--help", NULL };
        ms_config c;
        defaults(&c);
        err_t err = ERR_INIT;
        assert_int_equal(serve_load(args, NULL, &c, &err), MS_CLI_HELP);
        assert_int_equal(c.listen_port, 3000);
}

static void test_too_many_trusted_proxies_refused(void **state)
{
        (void)state;
        const char *args[2 * MS_MAX_TRUSTED_PROXIES + 3];
        size_t n = 0;
        for (int i = 0; i <= MS_MAX_TRUSTED_PROXIES; i++) {
                args[n++] = "--trusted-proxy";
                args[n++] = "10.0.0.1";
        }
        args[n] = NULL;
        ms_config c;
        defaults(&c);
        err_t err = ERR_INIT;
        assert_int_equal(serve_load(args, NULL, &c, &err), MS_CLI_USAGE);
        assert_err_contains(&err, "at most 16");
}

static void test_repeated_flag_last_wins(void **state)
{
        (void)state;
        const char *args[] = { "--threads", "2", "--threads", "5", NULL };
        ms_config c;
        defaults(&c);
        err_t err = ERR_INIT;
        assert_int_equal(serve_load(args, NULL, &c, &err), 0);
        assert_int_equal(c.threads, 5);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_listen_ipv4_host_and_port),
                cmocka_unit_test(test_listen_bracketed_ipv6),
                cmocka_unit_test(test_listen_empty_host_means_all_ipv4),
                cmocka_unit_test(test_listen_localhost_and_port_zero),
                cmocka_unit_test(test_listen_port_65535_accepted),
                cmocka_unit_test(test_listen_port_out_of_range_names_flag),
                cmocka_unit_test(test_listen_refuses_bad_ports),
                cmocka_unit_test(test_listen_refuses_missing_port),
                cmocka_unit_test(test_listen_refuses_unbracketed_ipv6),
                cmocka_unit_test(test_listen_refuses_host_names),
                cmocka_unit_test(test_listen_refuses_bad_brackets),
                cmocka_unit_test(test_listen_host_longer_than_buffer_refused),
                cmocka_unit_test(test_listen_format_brackets_ipv6_only),
                cmocka_unit_test(test_territory_auth_flag_values),
                cmocka_unit_test(test_territory_auth_mtls_only_where_allowed),
                cmocka_unit_test(test_territory_auth_unknown_refused),
                cmocka_unit_test(test_trusted_proxy_normalized_like_peers),
                cmocka_unit_test(test_trusted_proxy_name_refused),
                cmocka_unit_test(test_cli_flag_forms),
                cmocka_unit_test(test_env_overrides_defaults),
                cmocka_unit_test(test_env_empty_value_counts_as_unset),
                cmocka_unit_test(test_env_mtls_means_proxy_header),
                cmocka_unit_test(test_env_unknown_auth_mode_fails_closed),
                cmocka_unit_test(test_env_bad_number_names_variable),
                cmocka_unit_test(test_env_log_chunk_max_zero_refused),
                cmocka_unit_test(test_env_negative_ttl_refused),
                cmocka_unit_test(test_env_fingerprint_header_must_be_token),
                cmocka_unit_test(test_env_bad_listen_names_variable),
                cmocka_unit_test(test_yaml_overlays_present_keys_only),
                cmocka_unit_test(test_yaml_every_key),
                cmocka_unit_test(test_yaml_empty_proxy_list_trusts_nobody),
                cmocka_unit_test(test_yaml_unknown_key_names_file_line_key),
                cmocka_unit_test(test_yaml_bad_auth_value_refused),
                cmocka_unit_test(test_yaml_semantic_error_leaves_config_unchanged),
                cmocka_unit_test(test_yaml_bad_listen_names_key),
                cmocka_unit_test(test_yaml_bad_proxy_refused),
                cmocka_unit_test(test_yaml_missing_file_names_path),
                cmocka_unit_test(test_precedence_flag_beats_env_and_file),
                cmocka_unit_test(test_precedence_env_beats_file),
                cmocka_unit_test(test_precedence_file_beats_defaults),
                cmocka_unit_test(test_precedence_flag_auth_beats_env_auth),
                cmocka_unit_test(test_no_sources_keeps_defaults),
                cmocka_unit_test(test_trusted_proxy_flags_replace_default_list),
                cmocka_unit_test(test_trusted_proxy_flags_beat_file_list),
                cmocka_unit_test(test_unknown_flag_is_usage_error),
                cmocka_unit_test(test_stray_argument_is_usage_error),
                cmocka_unit_test(test_missing_flag_value_is_usage_error),
                cmocka_unit_test(test_bad_flag_value_is_usage_error_and_changes_nothing),
                cmocka_unit_test(test_flag_auth_refuses_mtls),
                cmocka_unit_test(test_flag_usage_error_reported_before_env_error),
                cmocka_unit_test(test_env_error_is_runtime_error),
                cmocka_unit_test(test_help_flag),
                cmocka_unit_test(test_too_many_trusted_proxies_refused),
                cmocka_unit_test(test_repeated_flag_last_wins),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
