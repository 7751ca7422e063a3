/* tests/fuzz/fuzz_json_spec.c — libFuzzer target for proto/wire (DESIGN D19).
 *
 * Reads arbitrary bytes as each Conduits message. Whenever parse + validate accept the input,
 * the struct is serialised, the text parsed and validated again, and serialised once more:
 * the two serialisations must be byte-identical (a fixed point after one round), or the
 * process traps. Everything is freed, so LeakSanitizer catches leaks on every path. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "proto/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* First serialisation → text; trap if a validated struct cannot be serialised. */
#define DUMP_OR_TRAP(T, x, out)                                                               \
        do {                                                                                  \
                err_t d_err = ERR_INIT;                                                       \
                json_t *d_j = wire_##T##_to_json((x), &d_err);                                \
                if (!d_j)                                                                     \
                        __builtin_trap();                                                     \
                (out) = json_dump_compact(d_j);                                               \
                json_decref(d_j);                                                             \
                if (!(out))                                                                   \
                        __builtin_trap();                                                     \
        } while (0)

/* Re-parses text s1 as T from JSON, validates, re-serialises and compares. */
#define DEFINE_STABLE(T)                                                                      \
        static void stable_##T(const wire_##T *x)                                             \
        {                                                                                     \
                err_t err = ERR_INIT;                                                         \
                char *s1 = NULL, *s2 = NULL;                                                  \
                DUMP_OR_TRAP(T, x, s1);                                                       \
                json_t *j = json_parse(s1, strlen(s1), true, &err);                           \
                if (!j)                                                                       \
                        __builtin_trap();                                                     \
                wire_##T y;                                                                   \
                if (wire_##T##_parse(j, &y, &err) < 0)                                        \
                        __builtin_trap();                                                     \
                json_decref(j);                                                               \
                if (wire_##T##_validate(&y, &err) < 0)                                        \
                        __builtin_trap();                                                     \
                DUMP_OR_TRAP(T, &y, s2);                                                      \
                if (strcmp(s1, s2) != 0)                                                      \
                        __builtin_trap();                                                     \
                free(s1);                                                                     \
                free(s2);                                                                     \
                wire_##T##_free(&y);                                                          \
        }

/* Same, for the types with a raw-bytes entry point: the second parse goes through it too. */
#define DEFINE_STABLE_TEXT(T)                                                                 \
        static void stable_##T(const wire_##T *x)                                             \
        {                                                                                     \
                err_t err = ERR_INIT;                                                         \
                char *s1 = NULL, *s2 = NULL;                                                  \
                DUMP_OR_TRAP(T, x, s1);                                                       \
                wire_##T y;                                                                   \
                if (wire_##T##_parse_text(s1, strlen(s1), &y, &err) < 0)                     \
                        __builtin_trap();                                                     \
                DUMP_OR_TRAP(T, &y, s2);                                                      \
                if (strcmp(s1, s2) != 0)                                                      \
                        __builtin_trap();                                                     \
                free(s1);                                                                     \
                free(s2);                                                                     \
                wire_##T##_free(&y);                                                          \
        }

/* Bytes → struct via the raw-bytes entry point (parse + validate). */
#define FUZZ_TEXT(T, data, size)                                                              \
        do {                                                                                  \
                err_t f_err = ERR_INIT;                                                       \
                wire_##T f_x;                                                                 \
                if (wire_##T##_parse_text((const char *)(data), (size), &f_x, &f_err) == 0) { \
                        stable_##T(&f_x);                                                     \
                        wire_##T##_free(&f_x);                                                \
                }                                                                             \
        } while (0)

DEFINE_STABLE_TEXT(directive_spec)
DEFINE_STABLE_TEXT(directive_lease)
DEFINE_STABLE_TEXT(poll_response)
DEFINE_STABLE_TEXT(finished_request)
DEFINE_STABLE(pending_command)
DEFINE_STABLE(enroll_request)
DEFINE_STABLE(enroll_response)
DEFINE_STABLE(territory_heartbeat_request)
DEFINE_STABLE(territory_heartbeat_response)
DEFINE_STABLE(poll_request)
DEFINE_STABLE(started_request)
DEFINE_STABLE(started_response)
DEFINE_STABLE(directive_heartbeat_request)
DEFINE_STABLE(directive_heartbeat_response)
DEFINE_STABLE(log_chunk_request)
DEFINE_STABLE(log_chunk_response)
DEFINE_STABLE(finished_response)

/* Parsed JSON → struct (parse + validate), for the other messages. */
#define FUZZ_JSON(T, j)                                                                       \
        do {                                                                                  \
                err_t f_err = ERR_INIT;                                                       \
                wire_##T f_x;                                                                 \
                if (wire_##T##_parse((j), &f_x, &f_err) == 0) {                               \
                        if (wire_##T##_validate(&f_x, &f_err) == 0)                           \
                                stable_##T(&f_x);                                             \
                        wire_##T##_free(&f_x);                                                \
                }                                                                             \
        } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        FUZZ_TEXT(directive_spec, data, size);
        FUZZ_TEXT(directive_lease, data, size);
        FUZZ_TEXT(poll_response, data, size);
        FUZZ_TEXT(finished_request, data, size);

        err_t err = ERR_INIT;
        json_t *j = json_parse((const char *)data, size, true, &err);
        if (!j)
                return 0;
        FUZZ_JSON(pending_command, j);
        FUZZ_JSON(enroll_request, j);
        FUZZ_JSON(enroll_response, j);
        FUZZ_JSON(territory_heartbeat_request, j);
        FUZZ_JSON(territory_heartbeat_response, j);
        FUZZ_JSON(poll_request, j);
        FUZZ_JSON(started_request, j);
        FUZZ_JSON(started_response, j);
        FUZZ_JSON(directive_heartbeat_request, j);
        FUZZ_JSON(directive_heartbeat_response, j);
        FUZZ_JSON(log_chunk_request, j);
        FUZZ_JSON(log_chunk_response, j);
        FUZZ_JSON(finished_response, j);
        json_decref(j);
        return 0;
}
