/* tests/fuzz/fuzz_config.c — core/config YAML loading (DESIGN D18).
 *
 * Loads arbitrary bytes with a nexusd-like schema on top of defaults, twice (so replaced
 * values are freed), then frees. Properties: no crash or leak; a failure explains itself in
 * err and leaves the destination exactly as it was; libcyaml never refuses what pass 1
 * accepted (that would be ERR_INTERNAL, a disagreement between the two passes). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum fdriver { FD_NONE, FD_BWRAP, FD_FIRECRACKER };

static const cyaml_strval_t fdriver_strings[] = {
        { "", FD_NONE }, { "bwrap", FD_BWRAP }, { "firecracker", FD_FIRECRACKER },
};

struct fpoll {
        char *long_poll_timeout;
        int32_t max_directives_to_claim;
        uint8_t small;
};

struct fobs {
        bool enabled;
        char *listen_addr;
};

struct fcfg {
        char *server_url;
        char name[16];
        config_kv *labels;
        unsigned labels_count;
        struct fpoll poll;
        char **profiles;
        uint16_t profiles_count;
        struct fobs observability;
        enum fdriver untrusted_driver;
        int64_t max_bytes;
        uint64_t umax;
        double ratio;
        struct fobs *extra;
};

static const cyaml_schema_field_t fpoll_fields[] = {
        CYAML_FIELD_STRING_PTR("long_poll_timeout", CYAML_FLAG_OPTIONAL, struct fpoll,
                               long_poll_timeout, 0, 32),
        CYAML_FIELD_INT("max_directives_to_claim", CYAML_FLAG_OPTIONAL, struct fpoll,
                        max_directives_to_claim),
        CYAML_FIELD_UINT("small", CYAML_FLAG_OPTIONAL, struct fpoll, small),
        CYAML_FIELD_END
};

static const cyaml_schema_field_t fobs_fields[] = {
        CYAML_FIELD_BOOL("enabled", CYAML_FLAG_OPTIONAL, struct fobs, enabled),
        CYAML_FIELD_STRING_PTR("listen_addr", CYAML_FLAG_OPTIONAL, struct fobs, listen_addr, 0,
                               CYAML_UNLIMITED),
        CYAML_FIELD_END
};

static const cyaml_schema_value_t fprofile_entry = {
        CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, 64),
};

static const cyaml_schema_field_t fcfg_fields[] = {
        CYAML_FIELD_STRING_PTR("server_url", CYAML_FLAG_OPTIONAL, struct fcfg, server_url, 0,
                               CYAML_UNLIMITED),
        CYAML_FIELD_STRING("name", CYAML_FLAG_OPTIONAL, struct fcfg, name, 0),
        CONFIG_FIELD_STRING_MAP("labels", CYAML_FLAG_OPTIONAL, struct fcfg, labels, 16),
        CYAML_FIELD_MAPPING("poll", CYAML_FLAG_OPTIONAL, struct fcfg, poll, fpoll_fields),
        CYAML_FIELD_SEQUENCE("supported_sandbox_profiles", CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER,
                             struct fcfg, profiles, &fprofile_entry, 0, 8),
        CYAML_FIELD_MAPPING("observability", CYAML_FLAG_OPTIONAL, struct fcfg, observability,
                            fobs_fields),
        CYAML_FIELD_ENUM("untrusted_driver", CYAML_FLAG_OPTIONAL, struct fcfg, untrusted_driver,
                         fdriver_strings, CYAML_ARRAY_LEN(fdriver_strings)),
        CYAML_FIELD_INT("max_bytes", CYAML_FLAG_OPTIONAL, struct fcfg, max_bytes),
        CYAML_FIELD_UINT("umax", CYAML_FLAG_OPTIONAL, struct fcfg, umax),
        CYAML_FIELD_FLOAT("ratio", CYAML_FLAG_OPTIONAL, struct fcfg, ratio),
        CYAML_FIELD_MAPPING_PTR("extra", CYAML_FLAG_OPTIONAL, struct fcfg, extra, fobs_fields),
        CYAML_FIELD_IGNORE("legacy", CYAML_FLAG_OPTIONAL),
        CYAML_FIELD_END
};

static const cyaml_schema_value_t fcfg_schema = {
        CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct fcfg, fcfg_fields),
};

static const char fdefaults[] =
        "server_url: http://localhost:3000\n"
        "name: nexus\n"
        "labels: {os: linux}\n"
        "poll: {long_poll_timeout: 25s, max_directives_to_claim: 1}\n"
        "supported_sandbox_profiles: [host]\n"
        "observability: {listen_addr: \":9090\"}\n"
        "untrusted_driver: bwrap\n";

static bool same_as_defaults(const struct fcfg *c)
{
        return c->server_url && strcmp(c->server_url, "http://localhost:3000") == 0 &&
               strcmp(c->name, "nexus") == 0 && c->labels_count == 1 &&
               c->poll.max_directives_to_claim == 1 && c->profiles_count == 1 &&
               c->untrusted_driver == FD_BWRAP && !c->extra;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static bool env_ready;
        if (!env_ready) {
                /* Values that would change the document's shape if substituted as text. */
                setenv("FZ_A", "x\nserver_url: evil\n  - y: {z", 1);
                setenv("FZ_N", "5", 1);
                setenv("FZ_E", "", 1);
                env_ready = true;
        }
        struct fcfg c;
        memset(&c, 0, sizeof(c));
        err_t err = ERR_INIT;
        if (config_load_data("defaults", fdefaults, strlen(fdefaults), &fcfg_schema, &c,
                             sizeof(c), &err) < 0)
                __builtin_trap();
        for (int round = 0; round < 2; round++) {
                err_clear(&err);
                int r = config_load_data("fuzz.yaml", (const char *)data, size, &fcfg_schema,
                                         &c, sizeof(c), &err);
                if (r < 0) {
                        if (!err_is_set(&err) || strcmp(err.code, ERR_INTERNAL) == 0)
                                __builtin_trap();
                        if (round == 0 && !same_as_defaults(&c))
                                __builtin_trap();
                        break;
                }
        }
        config_free(&fcfg_schema, &c);
        if (c.server_url || c.labels || c.profiles || c.extra)
                __builtin_trap();
        return 0;
}
