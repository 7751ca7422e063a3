/* tests/unit/test_nx_config.c — nexusd configuration: defaults, overlay, durations, every
 * spec nexus §2.4 rule and ours, work_dir canonicalisation (spec nexus §2). */
#include "testutil.h"
#include "config.h"
#include "core/cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__x86_64__)
#define ARCH "amd64"
#elif defined(__aarch64__)
#define ARCH "arm64"
#else
#define ARCH NULL
#endif

static char tmpdir[PATH_MAX];
static char oldcwd[PATH_MAX];

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
        (void)sb;
        (void)flag;
        (void)ftw;
        return remove(p);
}

/* Each test runs in a fresh temporary directory, so the default "./facilities" lands there. */
static int setup(void **state)
{
        (void)state;
        if (!getcwd(oldcwd, sizeof(oldcwd)))
                return -1;
        if (snprintf(tmpdir, sizeof(tmpdir), "/tmp/nx-config-test-XXXXXX") < 0 ||
            !mkdtemp(tmpdir))
                return -1;
        if (chdir(tmpdir) < 0)
                return -1;
        setenv("NX_TEST_WORK_DIR", tmpdir, 1);
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        if (chdir(oldcwd) < 0)
                return -1;
        return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void write_file(const char *name, const char *text)
{
        FILE *f = fopen(name, "w");
        assert_non_null(f);
        assert_int_equal(fputs(text, f) >= 0, 1);
        assert_int_equal(fclose(f), 0);
}

/* Writes yaml to ./nexus.yaml and loads it. */
static int load_yaml(const char *yaml, nx_config *c, err_t *err)
{
        write_file("nexus.yaml", yaml);
        return nx_config_load("nexus.yaml", c, err);
}

static char *testdata(const char *file)
{
        const char *dir = getenv("TESTDATA_DIR");
        char *p = NULL;
        if (!dir || asprintf(&p, "%s/nexus/%s", dir, file) < 0)
                return NULL;
        return p;
}

#define assert_contains(hay, needle) do { \
        if (!strstr((hay), (needle))) \
                fail_msg("\"%s\" does not contain \"%s\"", (hay), (needle)); \
} while (0)

/* The load must fail with one line naming the file, the key and the spec's text. */
static void expect_bad(const char *yaml, const char *key, const char *text)
{
        nx_config c;
        err_t err = ERR_INIT;
        assert_int_equal(load_yaml(yaml, &c, &err), -1);
        if (getenv("NX_TEST_VERBOSE"))
                printf("# %s\n", err.msg);
        assert_contains(err.msg, "nexus.yaml");
        assert_contains(err.msg, key);
        assert_contains(err.msg, text);
        assert_null(strchr(err.msg, '\n'));
        /* on failure nothing is left to free */
        assert_null(c.server_url);
        assert_null(c.work_dir);
}

static void expect_ok(const char *yaml, nx_config *c)
{
        err_t err = ERR_INIT;
        if (load_yaml(yaml, c, &err) < 0)
                fail_msg("load failed: %s", err.msg);
}

/* ---- defaults and overlay --------------------------------------------------------------- */

/* spec nexus §12 #1, #2 (nx_config_load(NULL) validates the built-in defaults) */
static void test_defaults_match_spec_table(void **state)
{
        (void)state;
        nx_config c;
        err_t err = ERR_INIT;
        assert_int_equal(nx_config_load(NULL, &c, &err), 0);
        assert_string_equal(c.server_url, "http://localhost:3000");
        assert_string_equal(c.territory_id, "");
        assert_string_equal(c.name, "nexus");
        assert_int_equal(c.labels_count, 0);
        assert_string_equal(c.tls.ca_file, "");
        assert_false(c.tls.insecure_skip_verify);
        assert_int_equal(c.poll.long_poll_timeout_ms, 25000);
        assert_int_equal(c.poll.retry_backoff_ms, 2000);
        assert_int_equal(c.poll.max_directives_to_claim, 1);
        assert_int_equal(c.poll.wait_seconds, 20);
        assert_int_equal(c.log.max_output_bytes, 2000000);
        assert_int_equal(c.log.chunk_bytes, 16384);
        assert_true(c.log_overflow.enabled);
        assert_string_equal(c.log_overflow.dir, ".nexus/overflow");
        assert_int_equal(c.log_overflow.max_bytes_per_stream, 52428800);
        assert_false(c.debug_tape.enabled);
        assert_string_equal(c.debug_tape.path, "./nexus-debug-tape.jsonl");
        assert_int_equal(c.debug_tape.max_bytes, 10485760);
        assert_int_equal(c.heartbeat.interval_ms, 10000);
        assert_int_equal(c.territory_heartbeat.interval_ms, 30000);
        assert_false(c.observability.enabled);
        assert_int_equal(c.shutdown_timeout_ms, 60000);
        assert_false(c.rootfs.autodl);
        assert_string_equal(c.rootfs.cache_dir, "./rootfs-cache");
        assert_string_equal(c.rootfs.amd64.sha256,
                            "4119418996553edb37307a5ee3a3bd6d754ab28a37f5df057aa2b6551e87d417");
        assert_string_equal(c.rootfs.arm64.sha256,
                            "eb50d09466a96381bd1bd68d2a78f2c55be2b6d0256c5df323a35992c180e8ff");
        assert_string_equal(c.bwrap.bwrap_path, "bwrap");
        assert_string_equal(c.bwrap.socat_path, "socat");
        assert_string_equal(c.bwrap.rootfs_path, "");
        assert_string_equal(c.container.runtime, "podman");
        assert_string_equal(c.container.image, "ubuntu:24.04");
        assert_string_equal(c.container.proxy_mode, "env");
        assert_string_equal(c.firecracker.firecracker_path, "firecracker");
        assert_int_equal(c.firecracker.vcpus, 2);
        assert_int_equal(c.firecracker.mem_size_mib, 512);
        assert_int_equal(c.firecracker.workspace_size_mib, 2048);
        assert_int_equal(c.untrusted_driver_kind, NX_UNTRUSTED_BWRAP);
        nx_config_free(&c);
}

static void test_default_profiles_are_untrusted_only(void **state)
{
        (void)state;
        nx_config c;
        err_t err = ERR_INIT;
        assert_int_equal(nx_config_load(NULL, &c, &err), 0);
        assert_int_equal(c.supported_sandbox_profiles_count, 1);
        assert_string_equal(c.supported_sandbox_profiles[0], "untrusted");
        assert_true(nx_config_profile_enabled(&c, "untrusted"));
        assert_false(nx_config_profile_enabled(&c, "host"));
        assert_false(nx_config_profile_enabled(&c, "trusted"));
        nx_config_free(&c);
}

/* untrusted directives without limits get bounded resources (security review M2) */
static void test_sandbox_default_limits_and_ranges(void **state)
{
        (void)state;
        nx_config c;
        err_t err = ERR_INIT;
        assert_int_equal(nx_config_load(NULL, &c, &err), 0);
        assert_int_equal(c.bwrap.pids_limit, 512);
        assert_int_equal(c.bwrap.memory_mb, 4096);
        nx_config_free(&c);
        expect_bad("bwrap:\n  memory_mb: 0\n", "bwrap.memory_mb", "between 1 and 1048576");
        expect_bad("bwrap:\n  memory_mb: 1048577\n", "bwrap.memory_mb", "between 1 and");
        expect_bad("bwrap:\n  pids_limit: 0\n", "bwrap.pids_limit", "between 1 and");
        expect_ok("bwrap:\n  memory_mb: 256\n", &c);
        assert_int_equal(c.bwrap.memory_mb, 256);
        nx_config_free(&c);
}

static void test_default_listen_addr_is_loopback(void **state)
{
        (void)state;
        nx_config c;
        err_t err = ERR_INIT;
        assert_int_equal(nx_config_load(NULL, &c, &err), 0);
        assert_string_equal(c.observability.listen_addr, "127.0.0.1:9090");
        assert_string_equal(c.observability.listen_host, "127.0.0.1");
        assert_int_equal(c.observability.listen_port, 9090);
        nx_config_free(&c);
}

static void test_default_work_dir_is_absolute_and_created_0700(void **state)
{
        (void)state;
        nx_config c;
        err_t err = ERR_INIT;
        struct stat st;
        char expect[PATH_MAX + 32];
        _cleanup_free_ char *real = realpath(tmpdir, NULL);
        assert_non_null(real);
        assert_int_equal(nx_config_load(NULL, &c, &err), 0);
        assert_int_equal(snprintf(expect, sizeof(expect), "%s/facilities", real) > 0, 1);
        assert_string_equal(c.work_dir, expect);
        assert_int_equal(stat(c.work_dir, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 0777, 0700);
        assert_int_equal(snprintf(expect, sizeof(expect), "%s/facilities/.nexus/credentials.json",
                                  real) > 0, 1);
        assert_string_equal(c.credentials_file, expect);
        nx_config_free(&c);
}

static void test_empty_file_yields_defaults(void **state)
{
        (void)state;
        nx_config c;
        expect_ok("# nothing but a comment\n", &c);
        assert_string_equal(c.server_url, "http://localhost:3000");
        assert_int_equal(c.poll.max_directives_to_claim, 1);
        assert_int_equal(c.supported_sandbox_profiles_count, 1);
        nx_config_free(&c);
}

static void test_every_string_is_non_null_after_load(void **state)
{
        (void)state;
        nx_config c;
        expect_ok("territory_id:\nname: ~\n", &c);
        assert_non_null(c.territory_id);
        assert_string_equal(c.territory_id, "");
        assert_non_null(c.name);
        assert_non_null(c.tls.client_key_file);
        assert_non_null(c.bwrap.proxy_socket_dir);
        assert_non_null(c.firecracker.kernel_path);
        assert_non_null(c.untrusted_driver);
        nx_config_free(&c);
}

static void test_sample_file_sets_every_key(void **state)
{
        (void)state;
        nx_config c;
        err_t err = ERR_INIT;
        _cleanup_free_ char *path = testdata("valid.yaml");
        if (!path)
                SKIP_BECAUSE("TESTDATA_DIR is not set");
        if (nx_config_load(path, &c, &err) < 0)
                fail_msg("%s", err.msg);
        assert_string_equal(c.server_url, "https://mothership.example:8443");
        assert_string_equal(c.territory_id, "terr-0001");
        assert_string_equal(c.name, "node-7");
        assert_int_equal(c.labels_count, 3);
        assert_string_equal(config_kv_get(c.labels, c.labels_count, "rack"), "r12");
        assert_string_equal(c.credentials_file, "/var/lib/nexusd/creds.json");
        assert_string_equal(c.tls.ca_file, "/etc/hostname");
        assert_true(c.tls.insecure_skip_verify);
        assert_int_equal(c.poll.long_poll_timeout_ms, 90000);
        assert_int_equal(c.poll.retry_backoff_ms, 500);
        assert_int_equal(c.poll.max_directives_to_claim, 4);
        assert_int_equal(c.poll.wait_seconds, 25);
        assert_int_equal(c.log.max_output_bytes, 5000000);
        assert_int_equal(c.log.chunk_bytes, 32768);
        assert_false(c.log_overflow.enabled);
        assert_true(c.debug_tape.enabled);
        assert_int_equal(c.debug_tape.max_bytes, 2097152);
        assert_int_equal(c.heartbeat.interval_ms, 5000);
        assert_int_equal(c.territory_heartbeat.interval_ms, 60000);
        assert_true(c.observability.enabled);
        assert_string_equal(c.observability.listen_host, "::1");
        assert_int_equal(c.observability.listen_port, 9100);
        assert_int_equal(c.shutdown_timeout_ms, 120000);
        assert_string_equal(c.rootfs.arm64.url, "https://mirror.example/arm64.tar.xz");
        assert_string_equal(c.bwrap.proxy_socket_dir, "/tmp/nexus-proxy");
        assert_string_equal(c.container.runtime, "docker");
        assert_int_equal(c.firecracker.vcpus, 4);
        assert_int_equal(c.firecracker.workspace_size_mib, 4096);
        assert_int_equal(c.untrusted_driver_kind, NX_UNTRUSTED_FIRECRACKER);
        assert_int_equal(c.supported_sandbox_profiles_count, 2);
        assert_true(nx_config_profile_enabled(&c, "trusted"));
        assert_false(nx_config_profile_enabled(&c, "host"));
        assert_contains(c.work_dir, "/facilities");
        assert_int_equal(c.work_dir[0], '/');
        nx_config_free(&c);
}

static void test_reference_example_file_loads_and_enables_host(void **state)
{
        (void)state;
        nx_config c;
        err_t err = ERR_INIT;
        _cleanup_free_ char *path = testdata("reference_linux.yaml");
        if (!path)
                SKIP_BECAUSE("TESTDATA_DIR is not set");
        if (nx_config_load(path, &c, &err) < 0)
                fail_msg("%s", err.msg);
        assert_true(nx_config_profile_enabled(&c, "host"));
        assert_string_equal(config_kv_get(c.labels, c.labels_count, "profile"), "dev");
        assert_true(c.tls.insecure_skip_verify);
        nx_config_free(&c);
}

static void test_sample_bad_nested_key_file_names_file_line_and_key(void **state)
{
        (void)state;
        nx_config c;
        err_t err = ERR_INIT;
        _cleanup_free_ char *path = testdata("bad_nested_key.yaml");
        if (!path)
                SKIP_BECAUSE("TESTDATA_DIR is not set");
        assert_int_equal(nx_config_load(path, &c, &err), -1);
        assert_contains(err.msg, "bad_nested_key.yaml:4:");
        assert_contains(err.msg, "max_directive_to_claim");
}

static void test_sample_bad_claim_file_points_at_line(void **state)
{
        (void)state;
        nx_config c;
        err_t err = ERR_INIT;
        _cleanup_free_ char *path = testdata("bad_claim.yaml");
        if (!path)
                SKIP_BECAUSE("TESTDATA_DIR is not set");
        assert_int_equal(nx_config_load(path, &c, &err), -1);
        assert_contains(err.msg, "bad_claim.yaml:4: poll.max_directives_to_claim must be >= 1");
}

/* spec nexus §12 #4 */
static void test_missing_file_is_an_error_naming_it(void **state)
{
        (void)state;
        nx_config c;
        err_t err = ERR_INIT;
        assert_int_equal(nx_config_load("does-not-exist.yaml", &c, &err), -1);
        assert_contains(err.msg, "does-not-exist.yaml");
        assert_null(c.server_url);
}

/* spec nexus §12 #28 (config layer; the HTTP client drops the rest) */
static void test_server_url_one_trailing_slash_stripped(void **state)
{
        (void)state;
        nx_config c;
        expect_ok("server_url: \"http://ms.example//\"\n", &c);
        assert_string_equal(c.server_url, "http://ms.example/");
        nx_config_free(&c);
}

static void test_env_substitution_into_int(void **state)
{
        (void)state;
        nx_config c;
        setenv("NX_TEST_CLAIM", "3", 1);
        expect_ok("poll:\n  max_directives_to_claim: ${NX_TEST_CLAIM}\n", &c);
        assert_int_equal(c.poll.max_directives_to_claim, 3);
        nx_config_free(&c);
        unsetenv("NX_TEST_CLAIM");
}

/* spec nexus §12 #27 (REF differs: REF expands an unset variable to "" and loads; we fail
 * closed naming the variable) */
static void test_env_substitution_unset_variable_is_an_error(void **state)
{
        (void)state;
        unsetenv("NX_TEST_SURELY_UNSET");
        expect_bad("name: \"${NX_TEST_SURELY_UNSET}\"\n", "NX_TEST_SURELY_UNSET", "nexus.yaml:1");
}

static void test_unknown_top_level_key_rejected(void **state)
{
        (void)state;
        expect_bad("server_url: \"http://a.example\"\nsevrer_name: x\n", "sevrer_name",
                   "nexus.yaml:2:");
}

static void test_unknown_nested_key_rejected(void **state)
{
        (void)state;
        expect_bad("tls:\n  insecure: true\n", "insecure", "unknown key");
}

static void test_int_key_with_text_rejected(void **state)
{
        (void)state;
        expect_bad("log:\n  chunk_bytes: lots\n", "log.chunk_bytes", "nexus.yaml:2:");
}

static void test_later_overlay_keeps_sibling_defaults(void **state)
{
        (void)state;
        nx_config c;
        expect_ok("poll:\n  retry_backoff: \"3s\"\n", &c);
        assert_int_equal(c.poll.retry_backoff_ms, 3000);
        assert_int_equal(c.poll.long_poll_timeout_ms, 25000);
        assert_int_equal(c.poll.wait_seconds, 20);
        nx_config_free(&c);
}

/* ---- durations ------------------------------------------------------------------------------ */

static void test_duration_valid_forms(void **state)
{
        (void)state;
        static const struct { const char *s; int64_t ms; } t[] = {
                { "0", 0 }, { "-0", 0 }, { "25s", 25000 }, { "1m30s", 90000 },
                { "500ms", 500 }, { "1.5h", 5400000 }, { "2h45m", 9900000 },
                { "-2s", -2000 }, { "+3s", 3000 }, { "1500us", 1 }, { "1500\xc2\xb5s", 1 },
                { "1500\xce\xbcs", 1 }, { "999999ns", 0 }, { ".5s", 500 }, { "1.s", 1000 },
                { "1h1m1s1ms", 3661001 }, { "0s", 0 }, { "0.001s", 1 },
        };
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                err_t err = ERR_INIT;
                int64_t ms = -12345;
                if (nx_duration_parse(t[i].s, &ms, &err) < 0)
                        fail_msg("\"%s\": %s", t[i].s, err.msg);
                if (ms != t[i].ms)
                        fail_msg("\"%s\": got %lld want %lld", t[i].s, (long long)ms,
                                 (long long)t[i].ms);
        }
}

static void test_duration_invalid_forms(void **state)
{
        (void)state;
        static const char *const t[] = {
                "", "25", "1.5", "s", ".s", "-", "+", "1x", "1 s", " 1s", "1s ", "1sm",
                "3d", "1S", "--1s", "1e3s", "99999999999999999999s", "10000000h", "1..5s",
        };
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                err_t err = ERR_INIT;
                int64_t ms = 77;
                if (nx_duration_parse(t[i], &ms, &err) == 0)
                        fail_msg("\"%s\" accepted as %lld", t[i], (long long)ms);
                assert_true(err_is_set(&err));
                assert_int_equal(ms, 77);
        }
}

static void test_duration_bare_number_message_suggests_unit(void **state)
{
        (void)state;
        err_t err = ERR_INIT;
        int64_t ms;
        assert_int_equal(nx_duration_parse("25", &ms, &err), -1);
        assert_contains(err.msg, "\"25s\"");
}

static void test_duration_bare_integer_in_config_names_key(void **state)
{
        (void)state;
        expect_bad("poll:\n  long_poll_timeout: 25\n", "nexus.yaml:2: poll.long_poll_timeout",
                   "unit");
}

static void test_duration_bad_unit_in_config_names_key(void **state)
{
        (void)state;
        expect_bad("shutdown_timeout: \"5 minutes\"\n", "shutdown_timeout", "invalid duration");
}

static void test_heartbeat_interval_zero_falls_back_to_default(void **state)
{
        (void)state;
        nx_config c;
        expect_ok("heartbeat:\n  interval: \"0\"\nterritory_heartbeat:\n  interval: \"-1s\"\n",
                  &c);
        assert_int_equal(c.heartbeat.interval_ms, 10000);
        assert_int_equal(c.territory_heartbeat.interval_ms, 30000);
        nx_config_free(&c);
}

static void test_shutdown_timeout_zero_kept_as_wait_forever(void **state)
{
        (void)state;
        nx_config c;
        expect_ok("shutdown_timeout: \"0\"\n", &c);
        assert_int_equal(c.shutdown_timeout_ms, 0);
        nx_config_free(&c);
}

/* ---- spec §2.4 rules, one bad config each -------------------------------------------------- */

#define BAD(fn, yaml, key, text) \
        static void fn(void **state) \
        { \
                (void)state; \
                expect_bad(yaml, key, text); \
        }

/* spec nexus §12 #6 */
BAD(test_rule1_server_url_empty, "server_url: \"\"\n", "server_url", "server_url is required")
/* spec nexus §12 #7 */
BAD(test_rule3_claim_zero, "poll:\n  max_directives_to_claim: 0\n",
    "nexus.yaml:2: poll.max_directives_to_claim", "must be >= 1")
BAD(test_rule3_claim_negative, "poll:\n  max_directives_to_claim: -2\n",
    "poll.max_directives_to_claim", "must be >= 1")
/* spec nexus §12 #8 */
BAD(test_rule4_chunk_bytes_zero, "log:\n  chunk_bytes: 0\n", "log.chunk_bytes",
    "log.chunk_bytes must be >= 1")
BAD(test_rule5_max_output_bytes_zero, "log:\n  max_output_bytes: 0\n", "log.max_output_bytes",
    "log.max_output_bytes must be >= 1")
/* spec nexus §12 #10 */
BAD(test_rule6_overflow_dir_empty, "log_overflow:\n  dir: \"\"\n", "log_overflow.dir",
    "log_overflow.dir is required when enabled")
/* spec nexus §12 #11 */
BAD(test_rule6_overflow_dir_absolute, "log_overflow:\n  dir: /var/tmp/x\n", "log_overflow.dir",
    "must be workspace-relative (not an absolute path)")
BAD(test_rule6_overflow_dir_dot, "log_overflow:\n  dir: \"./\"\n", "log_overflow.dir",
    "must be within the workspace")
/* spec nexus §12 #12 */
BAD(test_rule6_overflow_dir_dotdot, "log_overflow:\n  dir: \"..\"\n", "log_overflow.dir",
    "must be within the workspace")
BAD(test_rule6_overflow_dir_escapes_after_cleaning, "log_overflow:\n  dir: \"a/../../b\"\n",
    "log_overflow.dir", "must be within the workspace")
BAD(test_rule6_overflow_dir_cleans_to_dot, "log_overflow:\n  dir: \"a/b/../..\"\n",
    "log_overflow.dir", "must be within the workspace")
/* spec nexus §12 #13 */
BAD(test_rule6_overflow_max_bytes_zero, "log_overflow:\n  max_bytes_per_stream: 0\n",
    "log_overflow.max_bytes_per_stream", "must be >= 1 when enabled")
/* spec nexus §12 #15 */
BAD(test_rule7_debug_tape_path_empty, "debug_tape:\n  enabled: true\n  path: \"\"\n",
    "debug_tape.path", "debug_tape.path is required when enabled")
/* spec nexus §12 #16 */
BAD(test_rule7_debug_tape_max_bytes_zero, "debug_tape:\n  enabled: true\n  max_bytes: 0\n",
    "nexus.yaml:3: debug_tape.max_bytes", "must be >= 1 when enabled")
/* spec nexus §12 #24 (also see test_rule8_untrusted_driver_docker) */
BAD(test_rule8_untrusted_driver_unknown, "untrusted_driver: gvisor\n", "untrusted_driver",
    "untrusted_driver must be \"bwrap\" or \"firecracker\", got \"gvisor\"")
/* spec nexus §12 #20 */
BAD(test_rule9_firecracker_kernel_required, "untrusted_driver: firecracker\n",
    "firecracker.kernel_path", "required when untrusted_driver is firecracker")
/* spec nexus §12 #21 */
BAD(test_rule9_firecracker_rootfs_image_required,
    "untrusted_driver: firecracker\nfirecracker:\n  kernel_path: /k\n",
    "firecracker.rootfs_image_path", "required when untrusted_driver is firecracker")
BAD(test_rule9_firecracker_vcpus, "untrusted_driver: firecracker\nfirecracker:\n"
    "  kernel_path: /k\n  rootfs_image_path: /r\n  vcpus: 0\n", "firecracker.vcpus",
    "must be >= 1")
BAD(test_rule9_firecracker_mem, "untrusted_driver: firecracker\nfirecracker:\n"
    "  kernel_path: /k\n  rootfs_image_path: /r\n  mem_size_mib: 0\n",
    "firecracker.mem_size_mib", "must be >= 1")
BAD(test_rule9_firecracker_workspace_zero, "untrusted_driver: firecracker\nfirecracker:\n"
    "  kernel_path: /k\n  rootfs_image_path: /r\n  workspace_size_mib: 0\n",
    "firecracker.workspace_size_mib", "must be >= 1")
/* spec nexus §12 #22 */
BAD(test_rule9_firecracker_workspace_too_big, "untrusted_driver: firecracker\nfirecracker:\n"
    "  kernel_path: /k\n  rootfs_image_path: /r\n  workspace_size_mib: 32769\n",
    "firecracker.workspace_size_mib", "must be <= 32768 (32 GiB)")
/* spec nexus §12 #18 */
BAD(test_rule10_rootfs_cache_dir_required, "rootfs:\n  auto: true\n  cache_dir: \"\"\n",
    "rootfs.cache_dir", "rootfs.cache_dir is required when rootfs.auto is enabled")

/* spec nexus §12 #19 (REF differs: REF fails only when both arch sources are empty; we
 * require the source of the running arch) */
static void test_rule10_rootfs_arch_url_required(void **state)
{
        (void)state;
        if (!ARCH)
                SKIP_BECAUSE("rootfs.auto needs an amd64 or arm64 build");
        expect_bad("rootfs:\n  auto: true\n  " ARCH ":\n    url: \"\"\n", "rootfs." ARCH ".url",
                   "rootfs arch source must specify url and sha256");
}

static void test_rule10_rootfs_arch_sha256_must_be_hex64(void **state)
{
        (void)state;
        if (!ARCH)
                SKIP_BECAUSE("rootfs.auto needs an amd64 or arm64 build");
        expect_bad("rootfs:\n  auto: true\n  " ARCH ":\n    sha256: \"abc\"\n",
                   "rootfs." ARCH ".sha256", "64 hex digits");
}

static void test_rule6_overflow_disabled_skips_its_checks(void **state)
{
        (void)state;
        nx_config c;
        expect_ok("log_overflow:\n  enabled: false\n  dir: /abs\n  max_bytes_per_stream: 0\n",
                  &c);
        assert_false(c.log_overflow.enabled);
        nx_config_free(&c);
}

/* spec nexus §12 #17 */
static void test_rule7_debug_tape_disabled_skips_its_checks(void **state)
{
        (void)state;
        nx_config c;
        expect_ok("debug_tape:\n  path: \"\"\n  max_bytes: 0\n", &c);
        nx_config_free(&c);
}

static void test_first_violated_rule_is_reported(void **state)
{
        (void)state;
        /* rules 1 and 3 both fail: the spec's order says server_url comes first */
        expect_bad("poll:\n  max_directives_to_claim: 0\nserver_url: \"\"\n", "server_url",
                   "is required");
}

/* ---- our rules ------------------------------------------------------------------------------ */

BAD(test_server_url_needs_http_scheme, "server_url: \"ftp://ms.example\"\n", "server_url",
    "must start with http:// or https://")
BAD(test_server_url_without_scheme_rejected, "server_url: \"ms.example:3000\"\n",
    "nexus.yaml:1: server_url", "must start with http:// or https://")
BAD(test_server_url_without_host_rejected, "server_url: \"https://\"\n", "server_url",
    "has no host")
BAD(test_claim_above_server_cap_rejected, "poll:\n  max_directives_to_claim: 6\n",
    "poll.max_directives_to_claim", "must be <= 5")
BAD(test_wait_seconds_above_30_rejected, "poll:\n  wait_seconds: 31\n  long_poll_timeout: 1m\n",
    "poll.wait_seconds", "between 0 and 30")
BAD(test_wait_seconds_negative_rejected, "poll:\n  wait_seconds: -1\n", "poll.wait_seconds",
    "between 0 and 30")
BAD(test_wait_seconds_not_below_client_timeout_rejected,
    "poll:\n  wait_seconds: 25\n  long_poll_timeout: 25s\n", "poll.wait_seconds",
    "shorter than poll.long_poll_timeout")
BAD(test_negative_long_poll_timeout_rejected, "poll:\n  long_poll_timeout: -5s\n",
    "poll.long_poll_timeout", "must not be negative")
BAD(test_negative_retry_backoff_rejected, "poll:\n  retry_backoff: -1s\n", "poll.retry_backoff",
    "must not be negative")
BAD(test_profiles_empty_rejected, "supported_sandbox_profiles: []\n",
    "supported_sandbox_profiles", "at least one")
BAD(test_profile_unknown_rejected, "supported_sandbox_profiles: [untrusted, gvisor]\n",
    "nexus.yaml:1: supported_sandbox_profiles", "unknown profile \"gvisor\"")
BAD(test_profile_duplicate_rejected, "supported_sandbox_profiles: [host, host]\n",
    "supported_sandbox_profiles", "lists \"host\" twice")
BAD(test_listen_addr_without_port_rejected, "observability:\n  listen_addr: \"localhost\"\n",
    "observability.listen_addr", "PORT")
BAD(test_listen_addr_port_out_of_range_rejected,
    "observability:\n  listen_addr: \"127.0.0.1:70000\"\n", "nexus.yaml:2: "
    "observability.listen_addr", "1-65535")
BAD(test_listen_addr_unbracketed_ipv6_rejected, "observability:\n  listen_addr: \"::1:9090\"\n",
    "observability.listen_addr", "brackets")
BAD(test_listen_addr_bad_ipv4_rejected, "observability:\n  listen_addr: \"10.0.0.256:80\"\n",
    "observability.listen_addr", "bad host")
BAD(test_work_dir_empty_rejected, "work_dir: \"\"\n", "work_dir", "work_dir is required")

static void test_listen_addr_forms_accepted(void **state)
{
        (void)state;
        static const struct { const char *in, *host; uint16_t port; } t[] = {
                { ":9090", "", 9090 }, { "0.0.0.0:1", "0.0.0.0", 1 },
                { "[::]:65535", "::", 65535 }, { "metrics.local:8080", "metrics.local", 8080 },
                { "localhost:9090", "localhost", 9090 },
        };
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                char host[NX_LISTEN_HOST_MAX];
                uint16_t port = 0;
                err_t err = ERR_INIT;
                if (nx_listen_addr_parse(t[i].in, host, sizeof(host), &port, &err) < 0)
                        fail_msg("\"%s\": %s", t[i].in, err.msg);
                assert_string_equal(host, t[i].host);
                assert_int_equal(port, t[i].port);
        }
}

static void test_listen_addr_bad_forms_rejected(void **state)
{
        (void)state;
        static const char *const t[] = { "", ":", ":0", "host:", "[::1]", "[::1]9090",
                                         "[zz]:80", "a b:80", "-x:80", "h:80x", "h:+80" };
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                char host[NX_LISTEN_HOST_MAX];
                uint16_t port = 0;
                err_t err = ERR_INIT;
                if (nx_listen_addr_parse(t[i], host, sizeof(host), &port, &err) == 0)
                        fail_msg("\"%s\" accepted", t[i]);
        }
}

static void test_work_dir_symlink_resolved_and_parents_created(void **state)
{
        (void)state;
        nx_config c;
        char expect[PATH_MAX + 64];
        _cleanup_free_ char *real = realpath(tmpdir, NULL);
        assert_non_null(real);
        assert_int_equal(mkdir("target", 0755), 0);
        assert_int_equal(symlink("target", "link"), 0);
        expect_ok("work_dir: \"link/a/b\"\n", &c);
        assert_int_equal(snprintf(expect, sizeof(expect), "%s/target/a/b", real) > 0, 1);
        assert_string_equal(c.work_dir, expect);
        nx_config_free(&c);
}

static void test_work_dir_that_is_a_file_rejected(void **state)
{
        (void)state;
        write_file("plainfile", "x");
        expect_bad("work_dir: \"plainfile\"\n", "work_dir", "not a directory");
}

static void test_work_dir_under_a_file_rejected(void **state)
{
        (void)state;
        write_file("plainfile", "x");
        expect_bad("work_dir: \"plainfile/sub\"\n", "nexus.yaml:1: work_dir", "create");
}

static void test_invalid_config_creates_no_work_dir(void **state)
{
        (void)state;
        struct stat st;
        expect_bad("work_dir: \"made\"\nlog:\n  chunk_bytes: 0\n", "log.chunk_bytes", ">= 1");
        assert_int_equal(stat("made", &st), -1);
}

static void test_explicit_credentials_file_kept(void **state)
{
        (void)state;
        nx_config c;
        expect_ok("credentials_file: \"/srv/creds.json\"\n", &c);
        assert_string_equal(c.credentials_file, "/srv/creds.json");
        nx_config_free(&c);
}

static void test_labels_loaded_in_order(void **state)
{
        (void)state;
        nx_config c;
        expect_ok("labels:\n  zone: eu-1\n  gpu: \"true\"\n", &c);
        assert_int_equal(c.labels_count, 2);
        assert_string_equal(c.labels[0].key, "zone");
        assert_string_equal(c.labels[1].value, "true");
        nx_config_free(&c);
}

static void test_untrusted_driver_empty_means_bwrap(void **state)
{
        (void)state;
        nx_config c;
        expect_ok("untrusted_driver: \"\"\n", &c);
        assert_int_equal(c.untrusted_driver_kind, NX_UNTRUSTED_BWRAP);
        nx_config_free(&c);
}

/* ---- spec nexus §12 acceptance vectors not covered above ------------------------------ */

/* spec nexus §12 #3 */
static void test_vec_three_keys_override_rest_stays_default(void **state)
{
        (void)state;
        nx_config c;
        expect_ok("server_url: \"https://ms.example.com\"\nterritory_id: \"t-42\"\n"
                  "work_dir: \"wd\"\n", &c);
        assert_string_equal(c.server_url, "https://ms.example.com");
        assert_string_equal(c.territory_id, "t-42");
        size_t n = strlen(c.work_dir);
        assert_true(n > 3);
        assert_string_equal(c.work_dir + n - 3, "/wd");
        assert_int_equal(c.poll.max_directives_to_claim, 1);
        assert_int_equal(c.log.chunk_bytes, 16384);
        assert_int_equal(c.untrusted_driver_kind, NX_UNTRUSTED_BWRAP);
        nx_config_free(&c);
}

/* spec nexus §12 #5 */
static void test_vec_invalid_yaml_fails(void **state)
{
        (void)state;
        nx_config c;
        err_t err = ERR_INIT;
        assert_int_equal(load_yaml("{{invalid yaml", &c, &err), -1);
        assert_contains(err.msg, "nexus.yaml");
        assert_null(c.server_url);
}

/* spec nexus §12 #9 */
BAD(test_vec_max_output_bytes_negative, "log:\n  max_output_bytes: -1\n", "log.max_output_bytes",
    "must be >= 1")
/* spec nexus §12 #12 */
BAD(test_vec_overflow_dir_dotdot_escape, "log_overflow:\n  dir: \"../escape\"\n",
    "log_overflow.dir", "within the workspace")
/* spec nexus §12 #24 */
BAD(test_rule8_untrusted_driver_docker, "untrusted_driver: docker\n", "untrusted_driver",
    "got \"docker\"")

/* spec nexus §12 #14 */
static void test_vec_overflow_disabled_with_empty_dir_passes(void **state)
{
        (void)state;
        nx_config c;
        expect_ok("log_overflow:\n  enabled: false\n  dir: \"\"\n", &c);
        assert_false(c.log_overflow.enabled);
        assert_string_equal(c.log_overflow.dir, "");
        nx_config_free(&c);
}

/* spec nexus §12 #23 */
static void test_vec_firecracker_complete_config_passes(void **state)
{
        (void)state;
        nx_config c;
        expect_ok("untrusted_driver: firecracker\nfirecracker:\n  kernel_path: /k\n"
                  "  rootfs_image_path: /r\n  vcpus: 2\n  mem_size_mib: 512\n"
                  "  workspace_size_mib: 2048\n", &c);
        assert_int_equal(c.untrusted_driver_kind, NX_UNTRUSTED_FIRECRACKER);
        assert_string_equal(c.firecracker.kernel_path, "/k");
        assert_string_equal(c.firecracker.rootfs_image_path, "/r");
        assert_int_equal(c.firecracker.workspace_size_mib, 2048);
        nx_config_free(&c);
}

/* spec nexus §12 #25 */
static void test_vec_bwrap_with_empty_firecracker_paths_passes(void **state)
{
        (void)state;
        nx_config c;
        expect_ok("untrusted_driver: bwrap\nfirecracker:\n  kernel_path: \"\"\n"
                  "  rootfs_image_path: \"\"\n", &c);
        assert_int_equal(c.untrusted_driver_kind, NX_UNTRUSTED_BWRAP);
        nx_config_free(&c);
}

/* spec nexus §12 #26 */
static void test_vec_env_substitution_into_strings(void **state)
{
        (void)state;
        nx_config c;
        setenv("NEXUS_TEST_SERVER", "https://env.example.com", 1);
        setenv("NEXUS_TEST_TERRITORY", "t-env", 1);
        expect_ok("server_url: \"${NEXUS_TEST_SERVER}\"\n"
                  "territory_id: \"${NEXUS_TEST_TERRITORY}\"\n", &c);
        assert_string_equal(c.server_url, "https://env.example.com");
        assert_string_equal(c.territory_id, "t-env");
        nx_config_free(&c);
        unsetenv("NEXUS_TEST_SERVER");
        unsetenv("NEXUS_TEST_TERRITORY");
}

static void test_free_twice_is_safe(void **state)
{
        (void)state;
        nx_config c;
        err_t err = ERR_INIT;
        assert_int_equal(nx_config_load(NULL, &c, &err), 0);
        nx_config_free(&c);
        assert_null(c.server_url);
        nx_config_free(&c);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

/* spec nexus §12 #29: unreadable TLS material fails at load, naming the key */
static void test_vec_unreadable_tls_file_fails_at_load(void **state)
{
        err_t err = ERR_INIT;
        nx_config c = { 0 };
        const char *yaml = "server_url: https://ms.example:443\nwork_dir: /tmp/nx-cfg-tls\n"
                           "tls:\n  ca_file: /nonexistent/ca.pem\n";
        char path[] = "/tmp/nx-tls-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
        close(fd);
        assert_int_equal(nx_config_load(path, &c, &err), -1);
        assert_non_null(strstr(err.msg, "tls.ca_file"));
        assert_non_null(strstr(err.msg, "/nonexistent/ca.pem"));
        unlink(path);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_vec_unreadable_tls_file_fails_at_load),
                T(test_defaults_match_spec_table),
                T(test_default_profiles_are_untrusted_only),
                T(test_sandbox_default_limits_and_ranges),
                T(test_default_listen_addr_is_loopback),
                T(test_default_work_dir_is_absolute_and_created_0700),
                T(test_empty_file_yields_defaults),
                T(test_every_string_is_non_null_after_load),
                T(test_sample_file_sets_every_key),
                T(test_reference_example_file_loads_and_enables_host),
                T(test_sample_bad_nested_key_file_names_file_line_and_key),
                T(test_sample_bad_claim_file_points_at_line),
                T(test_missing_file_is_an_error_naming_it),
                T(test_server_url_one_trailing_slash_stripped),
                T(test_env_substitution_into_int),
                T(test_env_substitution_unset_variable_is_an_error),
                T(test_unknown_top_level_key_rejected),
                T(test_unknown_nested_key_rejected),
                T(test_int_key_with_text_rejected),
                T(test_later_overlay_keeps_sibling_defaults),
                T(test_duration_valid_forms),
                T(test_duration_invalid_forms),
                T(test_duration_bare_number_message_suggests_unit),
                T(test_duration_bare_integer_in_config_names_key),
                T(test_duration_bad_unit_in_config_names_key),
                T(test_heartbeat_interval_zero_falls_back_to_default),
                T(test_shutdown_timeout_zero_kept_as_wait_forever),
                T(test_rule1_server_url_empty),
                T(test_rule3_claim_zero),
                T(test_rule3_claim_negative),
                T(test_rule4_chunk_bytes_zero),
                T(test_rule5_max_output_bytes_zero),
                T(test_rule6_overflow_dir_empty),
                T(test_rule6_overflow_dir_absolute),
                T(test_rule6_overflow_dir_dot),
                T(test_rule6_overflow_dir_dotdot),
                T(test_rule6_overflow_dir_escapes_after_cleaning),
                T(test_rule6_overflow_dir_cleans_to_dot),
                T(test_rule6_overflow_max_bytes_zero),
                T(test_rule6_overflow_disabled_skips_its_checks),
                T(test_rule7_debug_tape_path_empty),
                T(test_rule7_debug_tape_max_bytes_zero),
                T(test_rule7_debug_tape_disabled_skips_its_checks),
                T(test_rule8_untrusted_driver_unknown),
                T(test_rule9_firecracker_kernel_required),
                T(test_rule9_firecracker_rootfs_image_required),
                T(test_rule9_firecracker_vcpus),
                T(test_rule9_firecracker_mem),
                T(test_rule9_firecracker_workspace_zero),
                T(test_rule9_firecracker_workspace_too_big),
                T(test_rule10_rootfs_cache_dir_required),
                T(test_rule10_rootfs_arch_url_required),
                T(test_rule10_rootfs_arch_sha256_must_be_hex64),
                T(test_first_violated_rule_is_reported),
                T(test_server_url_needs_http_scheme),
                T(test_server_url_without_scheme_rejected),
                T(test_server_url_without_host_rejected),
                T(test_claim_above_server_cap_rejected),
                T(test_wait_seconds_above_30_rejected),
                T(test_wait_seconds_negative_rejected),
                T(test_wait_seconds_not_below_client_timeout_rejected),
                T(test_negative_long_poll_timeout_rejected),
                T(test_negative_retry_backoff_rejected),
                T(test_profiles_empty_rejected),
                T(test_profile_unknown_rejected),
                T(test_profile_duplicate_rejected),
                T(test_listen_addr_without_port_rejected),
                T(test_listen_addr_port_out_of_range_rejected),
                T(test_listen_addr_unbracketed_ipv6_rejected),
                T(test_listen_addr_bad_ipv4_rejected),
                T(test_listen_addr_forms_accepted),
                T(test_listen_addr_bad_forms_rejected),
                T(test_work_dir_empty_rejected),
                T(test_work_dir_symlink_resolved_and_parents_created),
                T(test_work_dir_that_is_a_file_rejected),
                T(test_work_dir_under_a_file_rejected),
                T(test_invalid_config_creates_no_work_dir),
                T(test_explicit_credentials_file_kept),
                T(test_labels_loaded_in_order),
                T(test_untrusted_driver_empty_means_bwrap),
                T(test_vec_three_keys_override_rest_stays_default),
                T(test_vec_invalid_yaml_fails),
                T(test_vec_max_output_bytes_negative),
                T(test_vec_overflow_dir_dotdot_escape),
                T(test_rule8_untrusted_driver_docker),
                T(test_vec_overflow_disabled_with_empty_dir_passes),
                T(test_vec_firecracker_complete_config_passes),
                T(test_vec_bwrap_with_empty_firecracker_paths_passes),
                T(test_vec_env_substitution_into_strings),
                T(test_free_twice_is_safe),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
