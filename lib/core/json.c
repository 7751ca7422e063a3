/* core/json.c — see json.h. */
#include "core/json.h"

#include <inttypes.h>
#include <stddef.h>
#include <string.h>

/* Checks that j nests no deeper than JSON_MAX_DEPTH; a top-level object or array is level 1.
 * The recursion stops at JSON_MAX_DEPTH + 1 frames, so deep input cannot exhaust the stack
 * here (jansson's own parser already stops at 2048 levels). */
static bool json_depth_ok(const json_t *j, int level)
{
        if (!json_is_object(j) && !json_is_array(j))
                return true;
        if (level > JSON_MAX_DEPTH)
                return false;
        if (json_is_array(j)) {
                size_t n = json_array_size(j);
                for (size_t i = 0; i < n; i++) {
                        if (!json_depth_ok(json_array_get(j, i), level + 1))
                                return false;
                }
                return true;
        }
        /* jansson iterates objects through a non-const API; iteration does not modify. */
        union { const json_t *c; json_t *m; } u = { .c = j };
        for (void *it = json_object_iter(u.m); it; it = json_object_iter_next(u.m, it)) {
                if (!json_depth_ok(json_object_iter_value(it), level + 1))
                        return false;
        }
        return true;
}

json_t *json_parse(const char *data, size_t len, bool require_object, err_t *err)
{
        json_error_t jerr;
        /* jansson refuses a NULL buffer even for len 0; "" keeps the message about JSON. */
        if (!data) {
                data = "";
                len = 0;
        }
        /* JSON_DECODE_ANY: scalars are documents too (RFC 8259 §2); require_object is
         * checked below with a clearer message than jansson's. */
        json_t *j = json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
        if (!j) {
                err_set(err, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
                        jerr.text);
                return NULL;
        }
        if (!json_depth_ok(j, 1)) {
                json_decref(j);
                err_set(err, "JSON nesting deeper than %d levels", JSON_MAX_DEPTH);
                return NULL;
        }
        if (require_object && !json_is_object(j)) {
                err_set(err, "JSON top level must be an object, got %s", json_type_name(j));
                json_decref(j);
                return NULL;
        }
        return j;
}

char *json_dump_compact(const json_t *j)
{
        /* JSON_ENCODE_ANY: a scalar is a valid document too (RFC 8259 §2). */
        return json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
}

const char *json_type_name(const json_t *j)
{
        if (!j)
                return "null";
        switch (json_typeof(j)) {
        case JSON_OBJECT:
                return "object";
        case JSON_ARRAY:
                return "array";
        case JSON_STRING:
                return "string";
        case JSON_INTEGER:
                return "integer";
        case JSON_REAL:
                return "number";
        case JSON_TRUE:
        case JSON_FALSE:
                return "boolean";
        case JSON_NULL:
                return "null";
        default:
                return "unknown";
        }
}

/* Looks key up. Returns 1 with *v set when present and not null, 0 when missing (having
 * set *present), -1 with err set when missing but required or when obj is no object. */
static int json_lookup(const json_t *obj, const char *key, bool required, json_t **v,
                       bool *present, err_t *err)
{
        if (present)
                *present = false;
        if (!json_is_object(obj))
                return err_set(err, "cannot read field \"%s\": expected an object, got %s", key,
                               json_type_name(obj));
        json_t *x = json_object_get(obj, key);
        if (!x || json_is_null(x)) {
                if (required)
                        return err_set(err, "missing required field \"%s\"", key);
                return 0;
        }
        *v = x;
        return 1;
}

static int json_wrong_type(const char *key, const char *want, const json_t *v, err_t *err)
{
        return err_set(err, "field \"%s\" must be %s, got %s", key, want, json_type_name(v));
}

int json_get_string(const json_t *obj, const char *key, bool required, const char **out,
                    bool *present, err_t *err)
{
        json_t *v = NULL;
        int r = json_lookup(obj, key, required, &v, present, err);
        if (r <= 0)
                return r;
        if (!json_is_string(v))
                return json_wrong_type(key, "a string", v, err);
        *out = json_string_value(v);
        if (present)
                *present = true;
        return 0;
}

int json_get_int(const json_t *obj, const char *key, bool required, int64_t min, int64_t max,
                 int64_t *out, bool *present, err_t *err)
{
        json_t *v = NULL;
        int r = json_lookup(obj, key, required, &v, present, err);
        if (r <= 0)
                return r;
        /* Only JSON integers: 5.0 and true are refused, so a value has one spelling. */
        if (!json_is_integer(v))
                return json_wrong_type(key, "an integer", v, err);
        int64_t x = (int64_t)json_integer_value(v);
        if (x < min || x > max)
                return err_set(err, "field \"%s\" must be between %" PRId64 " and %" PRId64
                               ", got %" PRId64, key, min, max, x);
        *out = x;
        if (present)
                *present = true;
        return 0;
}

int json_get_bool(const json_t *obj, const char *key, bool required, bool *out, bool *present,
                  err_t *err)
{
        json_t *v = NULL;
        int r = json_lookup(obj, key, required, &v, present, err);
        if (r <= 0)
                return r;
        if (!json_is_boolean(v))
                return json_wrong_type(key, "a boolean", v, err);
        *out = json_is_true(v);
        if (present)
                *present = true;
        return 0;
}

int json_get_object(const json_t *obj, const char *key, bool required, json_t **out,
                    bool *present, err_t *err)
{
        json_t *v = NULL;
        int r = json_lookup(obj, key, required, &v, present, err);
        if (r <= 0)
                return r;
        if (!json_is_object(v))
                return json_wrong_type(key, "an object", v, err);
        *out = v;
        if (present)
                *present = true;
        return 0;
}

int json_get_array(const json_t *obj, const char *key, bool required, json_t **out,
                   bool *present, err_t *err)
{
        json_t *v = NULL;
        int r = json_lookup(obj, key, required, &v, present, err);
        if (r <= 0)
                return r;
        if (!json_is_array(v))
                return json_wrong_type(key, "an array", v, err);
        *out = v;
        if (present)
                *present = true;
        return 0;
}

int json_check_keys(const json_t *obj, const char *const *allowed, err_t *err)
{
        if (!json_is_object(obj))
                return err_set(err, "expected an object, got %s", json_type_name(obj));
        union { const json_t *c; json_t *m; } u = { .c = obj };
        for (void *it = json_object_iter(u.m); it; it = json_object_iter_next(u.m, it)) {
                const char *key = json_object_iter_key(it);
                bool ok = false;
                for (size_t i = 0; allowed && allowed[i]; i++) {
                        if (strcmp(key, allowed[i]) == 0) {
                                ok = true;
                                break;
                        }
                }
                if (!ok)
                        return err_set(err, "unknown field \"%s\"", key);
        }
        return 0;
}
