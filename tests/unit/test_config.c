/* tests/unit/test_config.c — core/config: YAML loading with schema checks, line numbers,
 * scalar-only ${VAR} substitution and overlay onto defaults (DESIGN D18, spec nexus §2). */
#include "testutil.h"
#include "core/config.h"
#include "core/cleanup.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- a schema modelled on spec nexus §2.3 (a subset) plus fields for every type --------- */

enum tdriver { TD_NONE, TD_BWRAP, TD_FIRECRACKER };

static const cyaml_strval_t tdriver_strings[] = {
        { "", TD_NONE },
        { "bwrap", TD_BWRAP },
        { "firecracker", TD_FIRECRACKER },
};

struct tpoll {
        char *long_poll_timeout;
        int32_t max_directives_to_claim;
};

struct tobs {
        bool enabled;
        char *listen_addr;
};

struct tlimits {
        int8_t i8;
        uint8_t u8;
        int16_t i16;
        uint16_t u16;
        int64_t i64;
        uint64_t u64;
        double ratio;
};

struct tarch {
        char *url;
        char *sha256;
};

struct trootfs {
        bool autodl;
        struct tarch amd64;
};

struct tcfg {
        char *server_url;
        char name[8];
        config_kv *labels;
        unsigned labels_count;
        struct tpoll poll;
        char **supported_sandbox_profiles;
        unsigned supported_sandbox_profiles_count;
        struct tobs observability;
        enum tdriver untrusted_driver;
        struct tlimits limits;
        struct trootfs rootfs;
};

static const cyaml_schema_field_t tpoll_fields[] = {
        CYAML_FIELD_STRING_PTR("long_poll_timeout", CYAML_FLAG_OPTIONAL, struct tpoll,
                               long_poll_timeout, 0, 32),
        CYAML_FIELD_INT("max_directives_to_claim", CYAML_FLAG_OPTIONAL, struct tpoll,
                        max_directives_to_claim),
        CYAML_FIELD_END
};

static const cyaml_schema_field_t tobs_fields[] = {
        CYAML_FIELD_BOOL("enabled", CYAML_FLAG_OPTIONAL, struct tobs, enabled),
        CYAML_FIELD_STRING_PTR("listen_addr", CYAML_FLAG_OPTIONAL, struct tobs, listen_addr, 0,
                               CYAML_UNLIMITED),
        CYAML_FIELD_END
};

static const cyaml_schema_field_t tlimits_fields[] = {
        CYAML_FIELD_INT("i8", CYAML_FLAG_OPTIONAL, struct tlimits, i8),
        CYAML_FIELD_UINT("u8", CYAML_FLAG_OPTIONAL, struct tlimits, u8),
        CYAML_FIELD_INT("i16", CYAML_FLAG_OPTIONAL, struct tlimits, i16),
        CYAML_FIELD_UINT("u16", CYAML_FLAG_OPTIONAL, struct tlimits, u16),
        CYAML_FIELD_INT("i64", CYAML_FLAG_OPTIONAL, struct tlimits, i64),
        CYAML_FIELD_UINT("u64", CYAML_FLAG_OPTIONAL, struct tlimits, u64),
        CYAML_FIELD_FLOAT("ratio", CYAML_FLAG_OPTIONAL, struct tlimits, ratio),
        CYAML_FIELD_END
};

static const cyaml_schema_field_t tarch_fields[] = {
        CYAML_FIELD_STRING_PTR("url", CYAML_FLAG_OPTIONAL, struct tarch, url, 0,
                               CYAML_UNLIMITED),
        CYAML_FIELD_STRING_PTR("sha256", CYAML_FLAG_OPTIONAL, struct tarch, sha256, 64, 64),
        CYAML_FIELD_END
};

static const cyaml_schema_field_t trootfs_fields[] = {
        CYAML_FIELD_BOOL("auto", CYAML_FLAG_OPTIONAL, struct trootfs, autodl),
        CYAML_FIELD_MAPPING("amd64", CYAML_FLAG_OPTIONAL, struct trootfs, amd64, tarch_fields),
        CYAML_FIELD_END
};

static const cyaml_schema_value_t tprofile_entry = {
        CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 1, 32),
};

static const cyaml_schema_field_t tcfg_fields[] = {
        CYAML_FIELD_STRING_PTR("server_url", CYAML_FLAG_OPTIONAL, struct tcfg, server_url, 0,
                               CYAML_UNLIMITED),
        CYAML_FIELD_STRING("name", CYAML_FLAG_OPTIONAL, struct tcfg, name, 0),
        CONFIG_FIELD_STRING_MAP("labels", CYAML_FLAG_OPTIONAL, struct tcfg, labels, 8),
        CYAML_FIELD_MAPPING("poll", CYAML_FLAG_OPTIONAL, struct tcfg, poll, tpoll_fields),
        CYAML_FIELD_SEQUENCE("supported_sandbox_profiles", CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER,
                             struct tcfg, supported_sandbox_profiles, &tprofile_entry, 1, 4),
        CYAML_FIELD_MAPPING("observability", CYAML_FLAG_OPTIONAL, struct tcfg, observability,
                            tobs_fields),
        CYAML_FIELD_ENUM("untrusted_driver", CYAML_FLAG_OPTIONAL, struct tcfg, untrusted_driver,
                         tdriver_strings, CYAML_ARRAY_LEN(tdriver_strings)),
        CYAML_FIELD_MAPPING("limits", CYAML_FLAG_OPTIONAL, struct tcfg, limits, tlimits_fields),
        CYAML_FIELD_MAPPING("rootfs", CYAML_FLAG_OPTIONAL, struct tcfg, rootfs, trootfs_fields),
        CYAML_FIELD_IGNORE("legacy", CYAML_FLAG_OPTIONAL),
        CYAML_FIELD_END
};

static const cyaml_schema_value_t tcfg_schema = {
        CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct tcfg, tcfg_fields),
};

/* Defaults as a caller pre-fills them: every pointer malloc()ed (see config.h). */
static int setup_defaults(void **state)
{
        struct tcfg *c = calloc(1, sizeof(*c));
        if (!c)
                return -1;
        c->server_url = strdup("http://localhost:3000");
        memcpy(c->name, "nexus", 6);
        c->labels = calloc(1, sizeof(*c->labels));
        c->labels[0].key = strdup("os");
        c->labels[0].value = strdup("default-os");
        c->labels_count = 1;
        c->poll.long_poll_timeout = strdup("25s");
        c->poll.max_directives_to_claim = 1;
        c->supported_sandbox_profiles = calloc(1, sizeof(char *));
        c->supported_sandbox_profiles[0] = strdup("host");
        c->supported_sandbox_profiles_count = 1;
        c->observability.listen_addr = strdup(":9090");
        c->untrusted_driver = TD_BWRAP;
        c->limits.i16 = 7;
        c->rootfs.amd64.url = strdup("https://default.example/amd64.tar.xz");
        *state = c;
        return 0;
}

static int teardown_defaults(void **state)
{
        struct tcfg *c = *state;
        config_free(&tcfg_schema, c);
        /* config_free must leave no dangling pointer behind. */
        if (c->server_url || c->labels || c->labels_count || c->supported_sandbox_profiles ||
            c->supported_sandbox_profiles_count || c->poll.long_poll_timeout)
                return -1;
        free(c);
        return 0;
}

static int load(struct tcfg *c, const char *yaml, err_t *err)
{
        return config_load_data("t.yaml", yaml, strlen(yaml), &tcfg_schema, c, sizeof(*c), err);
}

#define assert_err_contains(err, sub) do { \
        if (!strstr((err)->msg, (sub))) \
                fail_msg("error \"%s\" does not contain \"%s\"", (err)->msg, (sub)); \
} while (0)

static char *testdata_path(const char *file)
{
        const char *dir = getenv("TESTDATA_DIR");
        char *p = NULL;
        if (!dir || asprintf(&p, "%s/config/%s", dir, file) < 0)
                return NULL;
        return p;
}

/* ---- valid documents and overlay -------------------------------------------------------- */

static void test_valid_file_loads_every_field(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        _cleanup_free_ char *path = testdata_path("valid.yaml");
        if (!path)
                SKIP_BECAUSE("TESTDATA_DIR is not set");
        assert_int_equal(config_load_file(path, &tcfg_schema, c, sizeof(*c), &err), 0);
        assert_string_equal(c->server_url, "https://ms.example:8443");
        assert_string_equal(c->name, "node-1");
        assert_int_equal(c->labels_count, 2);
        assert_string_equal(config_kv_get(c->labels, c->labels_count, "os"), "linux");
        assert_string_equal(config_kv_get(c->labels, c->labels_count, "arch"), "amd64");
        assert_string_equal(c->poll.long_poll_timeout, "30s");
        assert_int_equal(c->poll.max_directives_to_claim, 3);
        assert_int_equal(c->supported_sandbox_profiles_count, 2);
        assert_string_equal(c->supported_sandbox_profiles[0], "untrusted");
        assert_string_equal(c->supported_sandbox_profiles[1], "trusted");
        assert_true(c->observability.enabled);
        assert_string_equal(c->observability.listen_addr, "127.0.0.1:9090");
        assert_int_equal(c->untrusted_driver, TD_FIRECRACKER);
}

static void test_absent_keys_keep_defaults(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        assert_int_equal(load(c, "name: n2\n", &err), 0);
        assert_string_equal(c->name, "n2");
        assert_string_equal(c->server_url, "http://localhost:3000");
        assert_string_equal(c->poll.long_poll_timeout, "25s");
        assert_int_equal(c->poll.max_directives_to_claim, 1);
        assert_int_equal(c->labels_count, 1);
        assert_string_equal(c->labels[0].value, "default-os");
        assert_int_equal(c->supported_sandbox_profiles_count, 1);
        assert_int_equal(c->untrusted_driver, TD_BWRAP);
        assert_int_equal(c->limits.i16, 7);
}

static void test_nested_overlay_keeps_sibling_defaults(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        assert_int_equal(load(c, "poll:\n  max_directives_to_claim: 4\n"
                                 "rootfs:\n  amd64:\n    sha256: \"" "0123456789abcdef0123456789abcdef"
                                 "0123456789abcdef0123456789abcdef\"\n", &err), 0);
        assert_int_equal(c->poll.max_directives_to_claim, 4);
        assert_string_equal(c->poll.long_poll_timeout, "25s");
        assert_string_equal(c->rootfs.amd64.url, "https://default.example/amd64.tar.xz");
        assert_int_equal(strlen(c->rootfs.amd64.sha256), 64);
}

static void test_empty_document_keeps_defaults(void **state)
{
        static const char *const docs[] = { "", "# just a comment\n", "---\n", "---\n...\n",
                                            "~\n" };
        struct tcfg *c = *state;
        for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
                err_t err = ERR_INIT;
                assert_int_equal(load(c, docs[i], &err), 0);
                assert_string_equal(c->server_url, "http://localhost:3000");
                assert_string_equal(c->name, "nexus");
                assert_int_equal(c->labels_count, 1);
        }
}

static void test_empty_file_keeps_defaults(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        _cleanup_free_ char *path = testdata_path("empty.yaml");
        if (!path)
                SKIP_BECAUSE("TESTDATA_DIR is not set");
        assert_int_equal(config_load_file(path, &tcfg_schema, c, sizeof(*c), &err), 0);
        assert_string_equal(c->poll.long_poll_timeout, "25s");
}

static void test_loading_twice_replaces_and_frees_values(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        assert_int_equal(load(c, "server_url: http://one\nlabels: {a: b}\n"
                                 "supported_sandbox_profiles: [x, y]\n", &err), 0);
        assert_int_equal(load(c, "server_url: http://two\nlabels: {c: d, e: f}\n"
                                 "supported_sandbox_profiles: [z]\n", &err), 0);
        assert_string_equal(c->server_url, "http://two");
        assert_int_equal(c->labels_count, 2);
        assert_null(config_kv_get(c->labels, c->labels_count, "a"));
        assert_string_equal(config_kv_get(c->labels, c->labels_count, "e"), "f");
        assert_int_equal(c->supported_sandbox_profiles_count, 1);
        assert_string_equal(c->supported_sandbox_profiles[0], "z");
}

static void test_failed_load_leaves_destination_unchanged(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        assert_int_equal(load(c, "server_url: http://changed\nname: n3\n"
                                 "poll:\n  max_directives_to_claim: ten\n", &err), -1);
        assert_string_equal(c->server_url, "http://localhost:3000");
        assert_string_equal(c->name, "nexus");
}

static void test_labels_null_gives_empty_map(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        assert_int_equal(load(c, "labels:\n", &err), 0);
        assert_int_equal(c->labels_count, 0);
        assert_null(config_kv_get(c->labels, c->labels_count, "os"));
}

static void test_labels_values_are_strings_in_order(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        assert_int_equal(load(c, "labels:\n  gpu: 2\n  fast: true\n  zone: \"eu: west\"\n", &err),
                         0);
        assert_int_equal(c->labels_count, 3);
        assert_string_equal(c->labels[0].key, "gpu");
        assert_string_equal(c->labels[0].value, "2");
        assert_string_equal(c->labels[1].value, "true");
        assert_string_equal(c->labels[2].key, "zone");
        assert_string_equal(c->labels[2].value, "eu: west");
}

static void test_labels_nested_value_refused(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        assert_int_equal(load(c, "labels:\n  os:\n    name: linux\n", &err), -1);
        assert_string_equal(err.msg, "t.yaml:3:5: key \"labels.os\": expected a string, got a "
                                     "mapping");
}

static void test_labels_too_many_refused(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        assert_int_equal(load(c, "labels: {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, "
                                 "i: 9}\n", &err), -1);
        assert_err_contains(&err, "t.yaml:1:58: key \"labels\": more than 8 entries");
}

static void test_bool_spellings(void **state)
{
        static const struct { const char *text; bool want; } cases[] = {
                { "true", true }, { "false", false }, { "yes", true }, { "no", false },
                { "on", true }, { "off", false }, { "True", true }, { "OFF", false },
                { "\"yes\"", true },
        };
        struct tcfg *c = *state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                err_t err = ERR_INIT;
                char doc[128];
                int n = snprintf(doc, sizeof(doc), "observability:\n  enabled: %s\n",
                                 cases[i].text);
                assert_true(n > 0 && (size_t)n < sizeof(doc));
                c->observability.enabled = !cases[i].want;
                assert_int_equal(load(c, doc, &err), 0);
                if (c->observability.enabled != cases[i].want)
                        fail_msg("\"%s\" read as %d", cases[i].text, c->observability.enabled);
        }
}

static void test_enum_values_including_empty(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        assert_int_equal(load(c, "untrusted_driver: firecracker\n", &err), 0);
        assert_int_equal(c->untrusted_driver, TD_FIRECRACKER);
        assert_int_equal(load(c, "untrusted_driver: \"\"\n", &err), 0);
        assert_int_equal(c->untrusted_driver, TD_NONE);
}

static void test_integer_bounds_per_size(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        assert_int_equal(load(c, "limits:\n  i8: -128\n  u8: 255\n  i16: 32767\n  u16: 65535\n"
                                 "  i64: -9223372036854775808\n  u64: 18446744073709551615\n"
                                 "  ratio: 0.25\n", &err), 0);
        assert_int_equal(c->limits.i8, -128);
        assert_int_equal(c->limits.u8, 255);
        assert_int_equal(c->limits.i16, 32767);
        assert_int_equal(c->limits.u16, 65535);
        assert_true(c->limits.i64 == INT64_MIN);
        assert_true(c->limits.u64 == UINT64_MAX);
        assert_true(c->limits.ratio == 0.25);
        assert_int_equal(load(c, "limits: {i8: +12, i16: -0}\n", &err), 0);
        assert_int_equal(c->limits.i8, 12);
        assert_int_equal(c->limits.i16, 0);
}

/* ---- errors: keys ----------------------------------------------------------------------- */

static void test_unknown_top_key_names_line_and_key(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        assert_int_equal(load(c, "server_url: http://x\n\nserverurl: http://y\n", &err), -1);
        assert_string_equal(err.code, ERR_INVALID);
        assert_string_equal(err.msg, "t.yaml:3:1: unknown key \"serverurl\"");
}

static void test_unknown_nested_key_in_file_names_line_and_parent(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        _cleanup_free_ char *path = testdata_path("unknown_nested.yaml");
        if (!path)
                SKIP_BECAUSE("TESTDATA_DIR is not set");
        assert_int_equal(config_load_file(path, &tcfg_schema, c, sizeof(*c), &err), -1);
        assert_err_contains(&err, "unknown_nested.yaml:12:3: unknown key \"pol\" in \"poll\"");
        assert_true(strncmp(err.msg, path, strlen(path)) == 0);
}

static void test_unknown_key_two_levels_deep(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        assert_int_equal(load(c, "rootfs:\n  amd64:\n    urls: x\n", &err), -1);
        assert_string_equal(err.msg, "t.yaml:3:5: unknown key \"urls\" in \"rootfs.amd64\"");
}

static void test_duplicate_key_refused(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        assert_int_equal(load(c, "name: a\nname: b\n", &err), -1);
        assert_string_equal(err.msg, "t.yaml:2:1: duplicate key \"name\"");
        assert_int_equal(load(c, "labels: {os: a, os: b}\n", &err), -1);
        assert_err_contains(&err, "duplicate key \"os\" in \"labels\"");
}

static void test_variable_in_key_is_not_substituted(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        setenv("CFGT_KEY", "server_url", 1);
        assert_int_equal(load(c, "${CFGT_KEY}: http://evil\n", &err), -1);
        unsetenv("CFGT_KEY");
        assert_string_equal(err.msg, "t.yaml:1:1: unknown key \"${CFGT_KEY}\"");
        assert_string_equal(c->server_url, "http://localhost:3000");
}

static void test_non_scalar_key_refused(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        assert_int_equal(load(c, "? [a, b]\n: 1\n", &err), -1);
        assert_err_contains(&err, "t.yaml:1:3: mapping keys must be plain strings");
}

static void test_ignored_key_is_skipped(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        assert_int_equal(load(c, "legacy:\n  a: [1, 2, {b: c}]\n  d: ${UNSET_IS_FINE_HERE}\nname: x\n",
                              &err), 0);
        assert_string_equal(c->name, "x");
}

/* ---- errors: values --------------------------------------------------------------------- */

static void test_word_for_integer_names_key_and_value(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        assert_int_equal(load(c, "poll:\n  max_directives_to_claim: ten\n", &err), -1);
        assert_string_equal(err.msg, "t.yaml:2:28: key \"poll.max_directives_to_claim\": "
                                     "expected an integer, got \"ten\"");
}

static void test_integer_spellings_refused(void **state)
{
        static const char *const bad[] = { "0x10", "1.5", "1e3", "", "\"\"", "\"- 1\"", "12abc",
                                           "\" 5\"" };
        struct tcfg *c = *state;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                err_t err = ERR_INIT;
                char doc[128];
                int n = snprintf(doc, sizeof(doc), "limits:\n  i16: %s\n", bad[i]);
                assert_true(n > 0 && (size_t)n < sizeof(doc));
                if (load(c, doc, &err) != -1)
                        fail_msg("\"%s\" was accepted as an integer", bad[i]);
                assert_err_contains(&err, "key \"limits.i16\": expected ");
        }
        assert_int_equal(c->limits.i16, 7);
}

static void test_integer_out_of_range_for_field_size(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        assert_int_equal(load(c, "limits: {i8: 128}\n", &err), -1);
        assert_err_contains(&err, "key \"limits.i8\": integer 128 out of range -128..127");
        assert_int_equal(load(c, "limits: {u16: 65536}\n", &err), -1);
        assert_err_contains(&err, "integer 65536 out of range 0..65535");
        assert_int_equal(load(c, "limits: {u8: -1}\n", &err), -1);
        assert_err_contains(&err, "integer -1 out of range 0..255");
        assert_int_equal(load(c, "limits: {u64: 18446744073709551616}\n", &err), -1);
        assert_err_contains(&err, "out of range 0..18446744073709551615");
        assert_int_equal(load(c, "limits: {i64: 9223372036854775808}\n", &err), -1);
        assert_err_contains(&err, "out of range -9223372036854775808..9223372036854775807");
}

static void test_bool_outside_list_refused(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        assert_int_equal(load(c, "observability:\n  enabled: maybe\n", &err), -1);
        assert_string_equal(err.msg, "t.yaml:2:12: key \"observability.enabled\": expected a "
                                     "boolean (true/false/yes/no/on/off), got \"maybe\"");
        assert_int_equal(load(c, "observability:\n  enabled: 1\n", &err), -1);
}

static void test_enum_outside_list_names_choices(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        assert_int_equal(load(c, "untrusted_driver: qemu\n", &err), -1);
        assert_string_equal(err.msg, "t.yaml:1:19: key \"untrusted_driver\": expected one of "
                                     "\"\", \"bwrap\", \"firecracker\", got \"qemu\"");
        /* libcyaml would take a number as an enum value; we never do. */
        assert_int_equal(load(c, "untrusted_driver: 2\n", &err), -1);
        assert_int_equal(c->untrusted_driver, TD_BWRAP);
}

static void test_mapping_where_scalar_expected(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        assert_int_equal(load(c, "server_url:\n  host: x\n", &err), -1);
        assert_string_equal(err.msg, "t.yaml:2:3: key \"server_url\": expected a string, got a "
                                     "mapping");
        assert_int_equal(load(c, "name: [a]\n", &err), -1);
        assert_err_contains(&err, "key \"name\": expected a string, got a sequence");
}

static void test_scalar_where_mapping_or_sequence_expected(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        assert_int_equal(load(c, "poll: 5\n", &err), -1);
        assert_string_equal(err.msg, "t.yaml:1:7: key \"poll\": expected a mapping, got \"5\"");
        assert_int_equal(load(c, "supported_sandbox_profiles: host\n", &err), -1);
        assert_err_contains(&err, "key \"supported_sandbox_profiles\": expected a sequence, got "
                                  "\"host\"");
        assert_int_equal(load(c, "labels: [a, b]\n", &err), -1);
        assert_err_contains(&err, "key \"labels\": expected a mapping of strings, got a sequence");
}

static void test_sequence_too_long_and_too_short(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        assert_int_equal(load(c, "supported_sandbox_profiles: [a, b, c, d, e]\n", &err), -1);
        assert_string_equal(err.msg, "t.yaml:1:42: key \"supported_sandbox_profiles\": more than "
                                     "4 entries");
        assert_int_equal(load(c, "supported_sandbox_profiles: []\n", &err), -1);
        assert_err_contains(&err, "key \"supported_sandbox_profiles\": at least 1 entries "
                                  "required, got 0");
        assert_int_equal(c->supported_sandbox_profiles_count, 1);
}

static void test_sequence_entry_error_names_index(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        assert_int_equal(load(c, "supported_sandbox_profiles:\n  - host\n  - {a: 1}\n", &err),
                         -1);
        assert_string_equal(err.msg, "t.yaml:3:5: key \"supported_sandbox_profiles[1]\": "
                                     "expected a string, got a mapping");
        assert_int_equal(load(c, "supported_sandbox_profiles: [\"\"]\n", &err), -1);
        assert_err_contains(&err, "shorter than the minimum of 1");
}

static void test_string_longer_than_field_refused(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        assert_int_equal(load(c, "name: abcdefgh\n", &err), -1);
        assert_string_equal(err.msg, "t.yaml:1:7: key \"name\": \"abcdefgh\" is 8 bytes, longer "
                                     "than the limit of 7");
        assert_int_equal(load(c, "name: abcdefg\n", &err), 0);
        assert_string_equal(c->name, "abcdefg");
}

static void test_top_level_not_a_mapping_refused(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        assert_int_equal(load(c, "- a\n- b\n", &err), -1);
        assert_string_equal(err.msg, "t.yaml:1:1: the top level must be a mapping, got a "
                                     "sequence");
        assert_int_equal(load(c, "just words\n", &err), -1);
        assert_err_contains(&err, "the top level must be a mapping, got \"just words\"");
}

static void test_nul_byte_in_value_refused(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        assert_int_equal(load(c, "server_url: \"http://a\\0b\"\n", &err), -1);
        assert_err_contains(&err, "key \"server_url\": value contains a NUL byte");
}

/* ---- ${VAR} substitution ---------------------------------------------------------------- */

static void test_variable_into_string_and_int(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        setenv("CFGT_URL", "https://ms.internal", 1);
        setenv("CFGT_N", "5", 1);
        int r = load(c, "server_url: ${CFGT_URL}/api\npoll:\n  max_directives_to_claim: ${CFGT_N}\n",
                     &err);
        unsetenv("CFGT_URL");
        unsetenv("CFGT_N");
        assert_int_equal(r, 0);
        assert_string_equal(c->server_url, "https://ms.internal/api");
        assert_int_equal(c->poll.max_directives_to_claim, 5);
}

static void test_variable_into_bool_enum_and_sequence(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        setenv("CFGT_ON", "yes", 1);
        setenv("CFGT_DRV", "firecracker", 1);
        setenv("CFGT_PROF", "trusted", 1);
        int r = load(c, "observability: {enabled: \"${CFGT_ON}\"}\nuntrusted_driver: ${CFGT_DRV}\n"
                        "supported_sandbox_profiles: [host, '${CFGT_PROF}']\n", &err);
        unsetenv("CFGT_ON");
        unsetenv("CFGT_DRV");
        unsetenv("CFGT_PROF");
        assert_int_equal(r, 0);
        assert_true(c->observability.enabled);
        assert_int_equal(c->untrusted_driver, TD_FIRECRACKER);
        assert_string_equal(c->supported_sandbox_profiles[1], "trusted");
}

static void test_variable_with_newline_key_cannot_add_a_key(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        setenv("CFGT_INJ", "x\nserver_url: http://evil", 1);
        int r = load(c, "name: ok\nobservability:\n  listen_addr: ${CFGT_INJ}\n", &err);
        unsetenv("CFGT_INJ");
        assert_int_equal(r, 0);
        assert_string_equal(c->observability.listen_addr, "x\nserver_url: http://evil");
        assert_string_equal(c->server_url, "http://localhost:3000");
}

static void test_variable_with_indented_key_cannot_nest(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        setenv("CFGT_INJ", "x\n  injected: 1", 1);
        int r = load(c, "poll:\n  long_poll_timeout: ${CFGT_INJ}\n", &err);
        unsetenv("CFGT_INJ");
        assert_int_equal(r, 0);
        assert_string_equal(c->poll.long_poll_timeout, "x\n  injected: 1");
        assert_int_equal(c->poll.max_directives_to_claim, 1);
}

static void test_variable_with_flow_sequence_stays_a_string(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        setenv("CFGT_INJ", "[1,2]", 1);
        int r = load(c, "server_url: ${CFGT_INJ}\nsupported_sandbox_profiles:\n  - ${CFGT_INJ}\n",
                     &err);
        unsetenv("CFGT_INJ");
        assert_int_equal(r, 0);
        assert_string_equal(c->server_url, "[1,2]");
        assert_int_equal(c->supported_sandbox_profiles_count, 1);
        assert_string_equal(c->supported_sandbox_profiles[0], "[1,2]");
}

static void test_variable_with_yaml_syntax_stays_literal(void **state)
{
        static const char *const values[] = {
                "\"quoted\" and 'single'", "a: b", "- item", "{x: 1}", "# not a comment",
                "&anchor *alias", "--- \n...", "tab\there", "\\n backslash",
                "trailing space ", "${NOT_EXPANDED_AGAIN}", "ünïcödé",
        };
        struct tcfg *c = *state;
        for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
                err_t err = ERR_INIT;
                setenv("CFGT_V", values[i], 1);
                int r = load(c, "labels:\n  v: ${CFGT_V}\n", &err);
                unsetenv("CFGT_V");
                if (r != 0)
                        fail_msg("value \"%s\": %s", values[i], err.msg);
                assert_int_equal(c->labels_count, 1);
                assert_string_equal(c->labels[0].value, values[i]);
        }
}

static void test_variable_cannot_break_out_of_quotes(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        setenv("CFGT_Q", "a\"\nuntrusted_driver: \"", 1);
        int r = load(c, "server_url: \"${CFGT_Q}\"\n", &err);
        unsetenv("CFGT_Q");
        assert_int_equal(r, 0);
        assert_string_equal(c->server_url, "a\"\nuntrusted_driver: \"");
        assert_int_equal(c->untrusted_driver, TD_BWRAP);
}

static void test_dollar_escape_and_literal_dollars(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        assert_int_equal(load(c, "server_url: \"$${HOME} costs $5, a$b and $\"\n", &err), 0);
        assert_string_equal(c->server_url, "${HOME} costs $5, a$b and $");
        assert_int_equal(load(c, "server_url: $$$$\n", &err), 0);
        assert_string_equal(c->server_url, "$$");
}

static void test_default_used_when_unset_or_empty(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        unsetenv("CFGT_UNSET");
        setenv("CFGT_EMPTY", "", 1);
        setenv("CFGT_SET", "7", 1);
        int r = load(c, "server_url: ${CFGT_UNSET:-http://fallback:1/x}\n"
                        "observability: {listen_addr: \"${CFGT_EMPTY:-:9191}\"}\n"
                        "poll: {max_directives_to_claim: \"${CFGT_SET:-2}\"}\n", &err);
        unsetenv("CFGT_EMPTY");
        unsetenv("CFGT_SET");
        assert_int_equal(r, 0);
        assert_string_equal(c->server_url, "http://fallback:1/x");
        assert_string_equal(c->observability.listen_addr, ":9191");
        assert_int_equal(c->poll.max_directives_to_claim, 7);
}

static void test_empty_variable_without_default_substitutes_empty(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        setenv("CFGT_EMPTY", "", 1);
        int r = load(c, "server_url: \"<${CFGT_EMPTY}>\"\n", &err);
        unsetenv("CFGT_EMPTY");
        assert_int_equal(r, 0);
        assert_string_equal(c->server_url, "<>");
}

static void test_unset_variable_names_line_and_variable(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        unsetenv("CFGT_MISSING");
        assert_int_equal(load(c, "name: a\npoll:\n  long_poll_timeout: ${CFGT_MISSING}\n", &err),
                         -1);
        assert_string_equal(err.msg, "t.yaml:3:22: key \"poll.long_poll_timeout\": environment "
                                     "variable \"CFGT_MISSING\" is not set (use "
                                     "${CFGT_MISSING:-default} to allow that)");
        assert_string_equal(c->name, "nexus");
}

static void test_bad_variable_references_refused(void **state)
{
        static const char *const bad[] = { "${1X}", "${}", "${A-B}", "${A:=b}", "${ A}",
                                           "x ${OPEN" };
        struct tcfg *c = *state;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                err_t err = ERR_INIT;
                char doc[128];
                int n = snprintf(doc, sizeof(doc), "server_url: \"%s\"\n", bad[i]);
                assert_true(n > 0 && (size_t)n < sizeof(doc));
                if (load(c, doc, &err) != -1)
                        fail_msg("\"%s\" was accepted", bad[i]);
                assert_err_contains(&err, "t.yaml:1:13: key \"server_url\": ");
        }
}

static void test_substituted_integer_is_still_checked(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        setenv("CFGT_N", "5\nx: 1", 1);
        int r = load(c, "poll:\n  max_directives_to_claim: ${CFGT_N}\n", &err);
        unsetenv("CFGT_N");
        assert_int_equal(r, -1);
        assert_err_contains(&err, "expected an integer, got \"5\\nx: 1\"");
}

static void test_oversized_substitution_refused(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        char *big = malloc(CONFIG_MAX_VALUE_BYTES + 2);
        assert_non_null(big);
        memset(big, 'a', CONFIG_MAX_VALUE_BYTES + 1);
        big[CONFIG_MAX_VALUE_BYTES + 1] = '\0';
        setenv("CFGT_BIG", big, 1);
        FREE_AND_NULL(big);
        int r = load(c, "server_url: ${CFGT_BIG}\n", &err);
        unsetenv("CFGT_BIG");
        assert_int_equal(r, -1);
        assert_err_contains(&err, "value is longer than 65536 bytes after substitution");
}

static void test_invalid_utf8_from_variable_refused(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        setenv("CFGT_BIN", "a\xff\xfe", 1);
        int r = load(c, "server_url: ${CFGT_BIN}\n", &err);
        unsetenv("CFGT_BIN");
        assert_int_equal(r, -1);
        assert_err_contains(&err, "key \"server_url\": value is not valid UTF-8");
}

/* ---- errors: document shape and size ---------------------------------------------------- */

static void test_aliases_refused(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        assert_int_equal(load(c, "name: &n abc\nserver_url: *n\n", &err), -1);
        assert_string_equal(err.msg, "t.yaml:1:7: anchor \"&n\": anchors and aliases are not "
                                     "supported");
        assert_int_equal(load(c, "server_url: *n\n", &err), -1);
        assert_err_contains(&err, "aliases are not supported");
}

static void test_billion_laughs_refused_at_first_anchor(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        assert_int_equal(load(c, "legacy:\n  a: &a [\"lol\", \"lol\"]\n  b: &b [*a, *a]\n"
                                 "  c: &c [*b, *b]\n", &err), -1);
        assert_err_contains(&err, "t.yaml:2:6: anchor \"&a\"");
}

static void test_tags_refused(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        assert_int_equal(load(c, "name: !!str abc\n", &err), -1);
        assert_string_equal(err.msg, "t.yaml:1:7: tag \"tag:yaml.org,2002:str\" is not supported");
}

static void test_multiple_documents_refused(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        assert_int_equal(load(c, "name: a\n---\nname: b\n", &err), -1);
        assert_err_contains(&err, "t.yaml:2:1: multiple documents are not supported");
        assert_string_equal(c->name, "nexus");
}

static void test_malformed_yaml_names_line_and_problem(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        assert_int_equal(load(c, "name: a\nsupported_sandbox_profiles: [x\npoll: {}\n", &err), -1);
        assert_true(strncmp(err.msg, "t.yaml:3:", 9) == 0);
        assert_err_contains(&err, "did not find expected ',' or ']'");
        assert_int_equal(load(c, "name: a\n  bad: indent\n", &err), -1);
        assert_err_contains(&err, "t.yaml:2:6: mapping values are not allowed in this context");
}

static void test_invalid_utf8_in_file_refused(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        assert_int_equal(load(c, "name: a\nserver_url: \xc3\x28\n", &err), -1);
        assert_err_contains(&err, "t.yaml:2:");
        assert_err_contains(&err, "UTF-8");
}

static void test_deep_nesting_refused(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        char doc[256];
        size_t n = 0;
        n += (size_t)snprintf(doc, sizeof(doc), "legacy: ");
        for (int i = 0; i < 40; i++)
                doc[n++] = '[';
        for (int i = 0; i < 40; i++)
                doc[n++] = ']';
        doc[n++] = '\n';
        doc[n] = '\0';
        assert_int_equal(load(c, doc, &err), -1);
        assert_err_contains(&err, "nesting deeper than 16 levels");
}

static void test_oversized_data_refused(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        size_t len = CONFIG_MAX_FILE_BYTES + 1;
        char *big = malloc(len);
        assert_non_null(big);
        memset(big, '#', len);
        int r = config_load_data("big.yaml", big, len, &tcfg_schema, c, sizeof(*c), &err);
        FREE_AND_NULL(big);
        assert_int_equal(r, -1);
        assert_string_equal(err.code, ERR_TOO_LARGE);
        assert_err_contains(&err, "big.yaml: 1048577 bytes, larger than the 1048576-byte limit");
}

static void test_oversized_file_refused(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        char path[] = "/tmp/test_config_big_XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, CONFIG_MAX_FILE_BYTES + 10), 0);
        close(fd);
        int r = config_load_file(path, &tcfg_schema, c, sizeof(*c), &err);
        unlink(path);
        assert_int_equal(r, -1);
        assert_string_equal(err.code, ERR_TOO_LARGE);
        assert_err_contains(&err, path);
}

static void test_missing_file_names_path_and_errno(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        assert_int_equal(config_load_file("/nonexistent/nexus.yaml", &tcfg_schema, c, sizeof(*c),
                                          &err), -1);
        assert_string_equal(err.code, ERR_SYSTEM);
        assert_int_equal(err.errnum, ENOENT);
        assert_string_equal(err.msg, "open /nonexistent/nexus.yaml: No such file or directory");
}

static void test_directory_instead_of_file_refused(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        assert_int_equal(config_load_file("/tmp", &tcfg_schema, c, sizeof(*c), &err), -1);
        assert_int_equal(err.errnum, EISDIR);
        assert_err_contains(&err, "/tmp: Is a directory");
}

/* ---- schema and API misuse -------------------------------------------------------------- */

struct treq {
        char *must;
        int32_t opt;
};

static const cyaml_schema_field_t treq_fields[] = {
        CYAML_FIELD_STRING_PTR("must", CYAML_FLAG_DEFAULT, struct treq, must, 0, CYAML_UNLIMITED),
        CYAML_FIELD_INT("opt", CYAML_FLAG_OPTIONAL, struct treq, opt),
        CYAML_FIELD_END
};

/* No CYAML_FLAG_POINTER at the top: the loader adds what libcyaml needs. */
static const cyaml_schema_value_t treq_schema = {
        CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct treq, treq_fields),
};

static void test_missing_required_key_named(void **state)
{
        err_t err = ERR_INIT;
        struct treq r = { .must = NULL, .opt = 3 };
        const char *doc = "opt: 4\n";
        assert_int_equal(config_load_data("r.yaml", doc, strlen(doc), &treq_schema, &r, sizeof(r),
                                          &err), -1);
        assert_string_equal(err.msg, "r.yaml:1:1: missing required key \"must\"");
        doc = "must: here\nopt: 4\n";
        assert_int_equal(config_load_data("r.yaml", doc, strlen(doc), &treq_schema, &r, sizeof(r),
                                          &err), 0);
        assert_string_equal(r.must, "here");
        assert_int_equal(r.opt, 4);
        config_free(&treq_schema, &r);
        assert_null(r.must);
}

static void test_wrong_destination_size_is_internal_error(void **state)
{
        struct tcfg *c = *state;
        err_t err = ERR_INIT;
        assert_int_equal(config_load_data("t.yaml", "name: a\n", 8, &tcfg_schema, c,
                                          sizeof(*c) - 1, &err), -1);
        assert_string_equal(err.code, ERR_INTERNAL);
}

struct tunsup {
        int32_t flags;
};

static const cyaml_strval_t tunsup_strings[] = { { "a", 1 } };

static const cyaml_schema_field_t tunsup_fields[] = {
        CYAML_FIELD_FLAGS("flags", CYAML_FLAG_OPTIONAL, struct tunsup, flags, tunsup_strings, 1),
        CYAML_FIELD_END
};

static const cyaml_schema_value_t tunsup_schema = {
        CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct tunsup, tunsup_fields),
};

static void test_unsupported_schema_type_is_internal_error(void **state)
{
        err_t err = ERR_INIT;
        struct tunsup u = { 0 };
        assert_int_equal(config_load_data("u.yaml", "", 0, &tunsup_schema, &u, sizeof(u), &err),
                         -1);
        assert_string_equal(err.code, ERR_INTERNAL);
        assert_err_contains(&err, "\"flags\"");
}

static void test_defaults_document_then_file_overlay(void **state)
{
        /* The pattern config.h recommends: defaults from a YAML constant, then the file. */
        static const char defaults[] = "server_url: http://localhost:3000\n"
                                       "poll: {long_poll_timeout: 25s, max_directives_to_claim: 1}\n"
                                       "supported_sandbox_profiles: [host]\n";
        struct tcfg c;
        memset(&c, 0, sizeof(c));
        err_t err = ERR_INIT;
        assert_int_equal(config_load_data("defaults", defaults, strlen(defaults), &tcfg_schema,
                                          &c, sizeof(c), &err), 0);
        assert_int_equal(load(&c, "poll: {long_poll_timeout: 5s}\n", &err), 0);
        assert_string_equal(c.server_url, "http://localhost:3000");
        assert_string_equal(c.poll.long_poll_timeout, "5s");
        assert_int_equal(c.poll.max_directives_to_claim, 1);
        assert_string_equal(c.supported_sandbox_profiles[0], "host");
        config_free(&tcfg_schema, &c);
        assert_null(c.server_url);
        assert_null(c.supported_sandbox_profiles);
}

struct tptr {
        struct tobs *extra;
        int32_t *n;
};

static const cyaml_schema_field_t tptr_fields[] = {
        CYAML_FIELD_MAPPING_PTR("extra", CYAML_FLAG_OPTIONAL, struct tptr, extra, tobs_fields),
        CYAML_FIELD_INT_PTR("n", CYAML_FLAG_OPTIONAL, struct tptr, n),
        CYAML_FIELD_END
};

static const cyaml_schema_value_t tptr_schema = {
        CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct tptr, tptr_fields),
};

static void test_pointer_mapping_created_then_overlaid(void **state)
{
        struct tptr p = { NULL, NULL };
        err_t err = ERR_INIT;
        const char *doc = "extra: {listen_addr: \":1\"}\nn: 5\n";
        assert_int_equal(config_load_data("p.yaml", doc, strlen(doc), &tptr_schema, &p,
                                          sizeof(p), &err), 0);
        assert_non_null(p.extra);
        assert_string_equal(p.extra->listen_addr, ":1");
        assert_false(p.extra->enabled);
        assert_int_equal(*p.n, 5);
        doc = "extra: {enabled: true}\nn: 6\n";
        assert_int_equal(config_load_data("p.yaml", doc, strlen(doc), &tptr_schema, &p,
                                          sizeof(p), &err), 0);
        assert_true(p.extra->enabled);
        assert_string_equal(p.extra->listen_addr, ":1");
        assert_int_equal(*p.n, 6);
        config_free(&tptr_schema, &p);
        assert_null(p.extra);
        assert_null(p.n);
}

static void test_kv_get_misses(void **state)
{
        config_kv kv[] = { { .key = (char *)(uintptr_t)"a", .value = (char *)(uintptr_t)"1" } };
        assert_null(config_kv_get(kv, 1, "b"));
        assert_null(config_kv_get(NULL, 0, "a"));
        assert_string_equal(config_kv_get(kv, 1, "a"), "1");
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup_defaults, teardown_defaults)

int main(void)
{
        const struct CMUnitTest tests[] = {
                T(test_valid_file_loads_every_field),
                T(test_absent_keys_keep_defaults),
                T(test_nested_overlay_keeps_sibling_defaults),
                T(test_empty_document_keeps_defaults),
                T(test_empty_file_keeps_defaults),
                T(test_loading_twice_replaces_and_frees_values),
                T(test_failed_load_leaves_destination_unchanged),
                T(test_labels_null_gives_empty_map),
                T(test_labels_values_are_strings_in_order),
                T(test_labels_nested_value_refused),
                T(test_labels_too_many_refused),
                T(test_bool_spellings),
                T(test_enum_values_including_empty),
                T(test_integer_bounds_per_size),
                T(test_unknown_top_key_names_line_and_key),
                T(test_unknown_nested_key_in_file_names_line_and_parent),
                T(test_unknown_key_two_levels_deep),
                T(test_duplicate_key_refused),
                T(test_variable_in_key_is_not_substituted),
                T(test_non_scalar_key_refused),
                T(test_ignored_key_is_skipped),
                T(test_word_for_integer_names_key_and_value),
                T(test_integer_spellings_refused),
                T(test_integer_out_of_range_for_field_size),
                T(test_bool_outside_list_refused),
                T(test_enum_outside_list_names_choices),
                T(test_mapping_where_scalar_expected),
                T(test_scalar_where_mapping_or_sequence_expected),
                T(test_sequence_too_long_and_too_short),
                T(test_sequence_entry_error_names_index),
                T(test_string_longer_than_field_refused),
                T(test_top_level_not_a_mapping_refused),
                T(test_nul_byte_in_value_refused),
                T(test_variable_into_string_and_int),
                T(test_variable_into_bool_enum_and_sequence),
                T(test_variable_with_newline_key_cannot_add_a_key),
                T(test_variable_with_indented_key_cannot_nest),
                T(test_variable_with_flow_sequence_stays_a_string),
                T(test_variable_with_yaml_syntax_stays_literal),
                T(test_variable_cannot_break_out_of_quotes),
                T(test_dollar_escape_and_literal_dollars),
                T(test_default_used_when_unset_or_empty),
                T(test_empty_variable_without_default_substitutes_empty),
                T(test_unset_variable_names_line_and_variable),
                T(test_bad_variable_references_refused),
                T(test_substituted_integer_is_still_checked),
                T(test_oversized_substitution_refused),
                T(test_invalid_utf8_from_variable_refused),
                T(test_aliases_refused),
                T(test_billion_laughs_refused_at_first_anchor),
                T(test_tags_refused),
                T(test_multiple_documents_refused),
                T(test_malformed_yaml_names_line_and_problem),
                T(test_invalid_utf8_in_file_refused),
                T(test_deep_nesting_refused),
                T(test_oversized_data_refused),
                T(test_oversized_file_refused),
                T(test_missing_file_names_path_and_errno),
                T(test_directory_instead_of_file_refused),
                cmocka_unit_test(test_missing_required_key_named),
                T(test_wrong_destination_size_is_internal_error),
                cmocka_unit_test(test_unsupported_schema_type_is_internal_error),
                cmocka_unit_test(test_defaults_document_then_file_overlay),
                cmocka_unit_test(test_pointer_mapping_created_then_overlaid),
                cmocka_unit_test(test_kv_get_misses),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
