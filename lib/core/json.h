/* core/json.h — jansson helpers.
 *
 * Parsing is bounded (size and depth) and refuses duplicate keys. The typed getters turn a
 * wrong or missing field into an ERR_INVALID error whose message names the field and the
 * expected type, e.g.  field "timeout_seconds" must be an integer, got string  — callers add
 * the object's path with err_wrap(). */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include "core/error.h"

#define JSON_MAX_DEPTH 32

/* jansson (>= 2.9) provides json_decrefp(): decref and NULL. */
#define _cleanup_json_ __attribute__((cleanup(json_decrefp)))

/* Parses len bytes (need not be NUL-terminated). Refuses duplicate keys, nesting deeper than
 * JSON_MAX_DEPTH, and a top level that is not an object when require_object. The message
 * names the line/column. Returns a new reference or NULL with err set. */
json_t *json_parse(const char *data, size_t len, bool require_object, err_t *err);

/* Compact serialisation with keys in insertion order; NULL on ENOMEM. Caller frees. */
char *json_dump_compact(const json_t *j);

/* Name of a JSON type for messages: "object", "array", "string", "integer", "number",
 * "boolean", "null". */
const char *json_type_name(const json_t *j);

/* Getters. A field that is absent or null is "missing": with required=false the getter
 * returns 0 and sets *present=false (present may be NULL); with required=true it fails with
 * "missing required field \"key\"". */
int json_get_string(const json_t *obj, const char *key, bool required, const char **out,
                    bool *present, err_t *err);
/* Integer in [min, max]; JSON reals are refused ("must be an integer, got number"). */
int json_get_int(const json_t *obj, const char *key, bool required, int64_t min, int64_t max,
                 int64_t *out, bool *present, err_t *err);
int json_get_bool(const json_t *obj, const char *key, bool required, bool *out, bool *present,
                  err_t *err);
int json_get_object(const json_t *obj, const char *key, bool required, json_t **out,
                    bool *present, err_t *err);
int json_get_array(const json_t *obj, const char *key, bool required, json_t **out,
                   bool *present, err_t *err);

/* Refuses any key of obj not in the NULL-terminated list allowed
 * ("unknown field \"x\"", as for JSON schema additionalProperties: false). */
int json_check_keys(const json_t *obj, const char *const *allowed, err_t *err);
