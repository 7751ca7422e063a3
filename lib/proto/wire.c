/* proto/wire.c — see wire.h. */
#include "proto/wire.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"
#include "core/cleanup.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/str.h"
#include "proto/fscap.h"
#include "proto/netcap.h"

/* ── small helpers ─────────────────────────────────────────────────────────────────────── */

static int oom(err_t *err)
{
        return err_errno(err, ENOMEM, "out of memory");
}

static int require_object(const json_t *j, err_t *err)
{
        if (!j || !json_is_object(j))
                return err_set(err, "expected a JSON object, got %s",
                               j ? json_type_name(j) : "nothing");
        return 0;
}

/* ── parse helpers: each names the field on failure ───────────────────────────────────── */

static int get_str(const json_t *obj, const char *key, bool required, size_t max, char **out,
                   err_t *err)
{
        const char *s = NULL;
        bool present = false;

        *out = NULL;
        if (json_get_string(obj, key, required, &s, &present, err) < 0)
                return -1;
        if (!present)
                return 0;
        size_t len = json_string_length(json_object_get(obj, key));
        if (len > max)
                return err_set(err, "field \"%s\" is too long (%zu bytes, max %zu)", key, len,
                               max);
        /* A C string cannot carry U+0000; refusing it keeps parse(to_json(x)) == x. */
        if (memchr(s, '\0', len))
                return err_set(err, "field \"%s\" must not contain NUL characters", key);
        *out = strndup(s, len);
        if (!*out)
                return oom(err);
        return 0;
}

static int get_int(const json_t *obj, const char *key, bool required, int64_t *out,
                   bool *present, err_t *err)
{
        bool p = false;
        int64_t v = 0;

        if (json_get_int(obj, key, required, INT64_MIN, INT64_MAX, &v, &p, err) < 0)
                return -1;
        *out = p ? v : 0;
        if (present)
                *present = p;
        return 0;
}

static int get_bool(const json_t *obj, const char *key, bool required, bool *out, err_t *err)
{
        bool p = false;
        bool v = false;

        if (json_get_bool(obj, key, required, &v, &p, err) < 0)
                return -1;
        *out = p ? v : false;
        return 0;
}

/* Deep copy, so the struct never shares (and never sees mutations of) the caller's tree. */
static int get_obj_copy(const json_t *obj, const char *key, json_t **out, err_t *err)
{
        json_t *o = NULL;
        bool present = false;

        *out = NULL;
        if (json_get_object(obj, key, false, &o, &present, err) < 0)
                return -1;
        if (!present)
                return 0;
        *out = json_deep_copy(o);
        if (!*out)
                return oom(err);
        return 0;
}

static int get_array_copy(const json_t *obj, const char *key, size_t max_items, json_t **out,
                          err_t *err)
{
        json_t *a = NULL;
        bool present = false;

        *out = NULL;
        if (json_get_array(obj, key, false, &a, &present, err) < 0)
                return -1;
        if (!present)
                return 0;
        if (json_array_size(a) > max_items)
                return err_set(err, "field \"%s\" has too many items (%zu, max %zu)", key,
                               json_array_size(a), max_items);
        *out = json_deep_copy(a);
        if (!*out)
                return oom(err);
        return 0;
}

void wire_strlist_free(wire_strlist *l)
{
        if (!l)
                return;
        for (size_t i = 0; i < l->n; i++)
                FREE_AND_NULL(l->items[i]);
        FREE_AND_NULL(l->items);
        l->n = 0;
}

static int get_strlist(const json_t *obj, const char *key, size_t max_items, size_t max_len,
                       wire_strlist *out, err_t *err)
{
        json_t *a = NULL;
        bool present = false;

        memset(out, 0, sizeof(*out));
        if (json_get_array(obj, key, false, &a, &present, err) < 0)
                return -1;
        if (!present)
                return 0;
        size_t n = json_array_size(a);
        if (n > max_items)
                return err_set(err, "field \"%s\" has too many items (%zu, max %zu)", key, n,
                               max_items);
        if (n == 0)
                return 0;
        out->items = calloc(n, sizeof(*out->items));
        if (!out->items)
                return oom(err);
        for (size_t i = 0; i < n; i++) {
                const json_t *v = json_array_get(a, i);
                if (!json_is_string(v)) {
                        err_set(err, "field \"%s\" item %zu must be a string, got %s", key, i,
                                json_type_name(v));
                        goto fail;
                }
                size_t len = json_string_length(v);
                const char *s = json_string_value(v);
                if (len > max_len) {
                        err_set(err, "field \"%s\" item %zu is too long (%zu bytes, max %zu)",
                                key, i, len, max_len);
                        goto fail;
                }
                if (memchr(s, '\0', len)) {
                        err_set(err, "field \"%s\" item %zu must not contain NUL characters",
                                key, i);
                        goto fail;
                }
                out->items[i] = strndup(s, len);
                if (!out->items[i]) {
                        oom(err);
                        goto fail;
                }
                out->n = i + 1;
        }
        return 0;
fail:
        wire_strlist_free(out);
        return -1;
}

/* Decodes a standard-base64 field (nexus §0, mothership §0.2: strict). Absent or "" gives
 * no bytes (mothership §3.2.7: blank diff_base64 means no diff). */
static int get_b64(const json_t *obj, const char *key, bool required, size_t max, uint8_t **out,
                   size_t *outlen, err_t *err)
{
        const char *s = NULL;
        bool present = false;

        *out = NULL;
        *outlen = 0;
        if (json_get_string(obj, key, required, &s, &present, err) < 0)
                return -1;
        if (!present)
                return 0;
        size_t len = json_string_length(json_object_get(obj, key));
        if (len == 0)
                return 0;
        if (base64_decode(s, len, max, out, outlen, err) < 0) {
                *out = NULL;
                *outlen = 0;
                return err_wrap(err, "field \"%s\"", key);
        }
        return 0;
}

/* ── serialisation helpers ─────────────────────────────────────────────────────────────── */

static json_t *new_object(err_t *err)
{
        json_t *o = json_object();
        if (!o)
                oom(err);
        return o;
}

/* Steals v. */
static int put(json_t *obj, const char *key, json_t *v, err_t *err)
{
        if (!v)
                return oom(err);
        if (json_object_set_new(obj, key, v) < 0)
                return oom(err);
        return 0;
}

/* Omits the key when s is NULL. */
static int put_str(json_t *obj, const char *key, const char *s, err_t *err)
{
        if (!s)
                return 0;
        json_t *v = json_string(s);
        if (!v) {
                if (!str_utf8_valid(s, strlen(s)))
                        return err_set(err, "field \"%s\" is not valid UTF-8", key);
                return oom(err);
        }
        return put(obj, key, v, err);
}

static int put_int(json_t *obj, const char *key, int64_t v, err_t *err)
{
        return put(obj, key, json_integer((json_int_t)v), err);
}

static int put_bool(json_t *obj, const char *key, bool v, err_t *err)
{
        return put(obj, key, json_boolean(v), err);
}

/* Omits the key when v is NULL; otherwise a deep copy (the struct keeps its own). */
static int put_copy(json_t *obj, const char *key, const json_t *v, err_t *err)
{
        if (!v)
                return 0;
        return put(obj, key, json_deep_copy(v), err);
}

static int put_strlist(json_t *obj, const char *key, const wire_strlist *l, err_t *err)
{
        _cleanup_json_ json_t *a = json_array();
        if (!a)
                return oom(err);
        for (size_t i = 0; i < l->n; i++) {
                const char *s = l->items[i] ? l->items[i] : "";
                json_t *v = json_string(s);
                if (!v) {
                        if (!str_utf8_valid(s, strlen(s)))
                                return err_set(err, "field \"%s\" item %zu is not valid UTF-8",
                                               key, i);
                        return oom(err);
                }
                if (json_array_append_new(a, v) < 0)
                        return oom(err);
        }
        return put(obj, key, steal_ptr(&a), err);
}

static int put_b64(json_t *obj, const char *key, const uint8_t *data, size_t len, err_t *err)
{
        if (len == 0)
                return put(obj, key, json_string(""), err);
        _cleanup_free_ char *enc = base64_encode(data, len);
        if (!enc)
                return oom(err);
        return put(obj, key, json_string(enc), err);
}

/* ── validation helpers ────────────────────────────────────────────────────────────────── */

#define CHK_REQUIRED 1u   /* NULL is an error */
#define CHK_NONEMPTY 2u   /* "" is an error */

static int check_str(const char *key, const char *s, unsigned flags, size_t max, err_t *err)
{
        if (!s) {
                if (flags & CHK_REQUIRED)
                        return err_set(err, "missing required field \"%s\"", key);
                return 0;
        }
        size_t len = strlen(s);
        if (len == 0 && (flags & CHK_NONEMPTY))
                return err_set(err, "field \"%s\" must not be empty", key);
        if (len > max)
                return err_set(err, "field \"%s\" is too long (%zu bytes, max %zu)", key, len,
                               max);
        if (!str_utf8_valid(s, len))
                return err_set(err, "field \"%s\" is not valid UTF-8", key);
        return 0;
}

static int check_id(const char *key, const char *s, bool required, err_t *err)
{
        if (!s) {
                if (required)
                        return err_set(err, "missing required field \"%s\"", key);
                return 0;
        }
        if (!wire_id_is_valid(s))
                return err_set(err,
                               "field \"%s\" (\"%.64s\") must match [A-Za-z0-9][A-Za-z0-9_.-]* "
                               "and be at most %d bytes", key, s, WIRE_ID_MAX);
        return 0;
}

/* Printable ASCII without spaces: capability names such as "camera.snap". */
static int check_token(const char *key, const char *s, bool required, size_t max, err_t *err)
{
        if (check_str(key, s, (required ? CHK_REQUIRED : 0u) | CHK_NONEMPTY, max, err) < 0)
                return -1;
        if (!s)
                return 0;
        for (const char *p = s; *p; p++) {
                if (*p <= 0x20 || *p >= 0x7f)
                        return err_set(err,
                                       "field \"%s\" (\"%.64s\") must be printable ASCII "
                                       "without spaces", key, s);
        }
        return 0;
}

static int check_ts(const char *key, const char *s, bool required, err_t *err)
{
        if (check_str(key, s, required ? CHK_REQUIRED : 0u, WIRE_TIMESTAMP_MAX, err) < 0)
                return -1;
        if (!s)
                return 0;
        if (wire_timestamp_check(s, err) < 0)
                return err_wrap(err, "field \"%s\"", key);
        return 0;
}

static int check_obj(const char *key, const json_t *j, err_t *err)
{
        if (j && !json_is_object(j))
                return err_set(err, "field \"%s\" must be an object, got %s", key,
                               json_type_name(j));
        return 0;
}

static int check_min(const char *key, int64_t v, int64_t min, err_t *err)
{
        if (v < min)
                return err_set(err, "field \"%s\" must be >= %" PRId64 ", got %" PRId64, key,
                               min, v);
        return 0;
}

static int check_range(const char *key, int64_t v, int64_t min, int64_t max, err_t *err)
{
        if (v < min || v > max)
                return err_set(err, "field \"%s\" must be in %" PRId64 "..%" PRId64
                               ", got %" PRId64, key, min, max, v);
        return 0;
}

static int check_strlist(const char *key, const wire_strlist *l, size_t max_items,
                         size_t max_len, err_t *err)
{
        if (l->n > max_items)
                return err_set(err, "field \"%s\" has too many items (%zu, max %zu)", key, l->n,
                               max_items);
        for (size_t i = 0; i < l->n; i++) {
                const char *s = l->items[i];
                if (!s)
                        return err_set(err, "field \"%s\" item %zu is missing", key, i);
                size_t len = strlen(s);
                if (len > max_len)
                        return err_set(err, "field \"%s\" item %zu is too long (%zu bytes, "
                                       "max %zu)", key, i, len, max_len);
                if (!str_utf8_valid(s, len))
                        return err_set(err, "field \"%s\" item %zu is not valid UTF-8", key, i);
        }
        return 0;
}

/* ── enums, ids, profiles, timestamps ──────────────────────────────────────────────────── */

static const char *const kind_names[] = { NULL, "server", "desktop", "mobile", "bridge" };
static const char *const stream_names[] = { NULL, "stdout", "stderr" };
static const char *const status_names[] = { NULL, "succeeded", "failed", "canceled",
                                            "timed_out" };

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

const char *wire_kind_name(wire_kind k)
{
        return (size_t)k < NELEM(kind_names) ? kind_names[k] : NULL;
}

const char *wire_stream_name(wire_stream s)
{
        return (size_t)s < NELEM(stream_names) ? stream_names[s] : NULL;
}

const char *wire_status_name(wire_status s)
{
        return (size_t)s < NELEM(status_names) ? status_names[s] : NULL;
}

static int enum_from_name(const char *s, const char *const *names, size_t n, int *out)
{
        for (size_t i = 1; i < n; i++) {
                if (strcmp(s, names[i]) == 0) {
                        *out = (int)i;
                        return 0;
                }
        }
        return -1;
}

int wire_kind_from_name(const char *s, wire_kind *out, err_t *err)
{
        int v = 0;
        if (enum_from_name(s, kind_names, NELEM(kind_names), &v) < 0)
                return err_set(err, "\"%.64s\" is not one of server, desktop, mobile, bridge",
                               s);
        *out = (wire_kind)v;
        return 0;
}

int wire_stream_from_name(const char *s, wire_stream *out, err_t *err)
{
        int v = 0;
        if (enum_from_name(s, stream_names, NELEM(stream_names), &v) < 0)
                return err_set(err, "\"%.64s\" is not one of stdout, stderr", s);
        *out = (wire_stream)v;
        return 0;
}

int wire_status_from_name(const char *s, wire_status *out, err_t *err)
{
        int v = 0;
        if (enum_from_name(s, status_names, NELEM(status_names), &v) < 0)
                return err_set(err, "\"%.64s\" is not one of succeeded, failed, canceled, "
                               "timed_out", s);
        *out = (wire_status)v;
        return 0;
}

static bool is_alnum(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool wire_id_is_valid(const char *s)
{
        if (!s || !is_alnum(s[0]))
                return false;
        size_t i = 0;
        for (; s[i]; i++) {
                if (i >= WIRE_ID_MAX)
                        return false;
                char c = s[i];
                if (!is_alnum(c) && c != '_' && c != '.' && c != '-')
                        return false;
        }
        return true;
}

bool wire_profile_is_valid(const char *s)
{
        if (!s || !s[0])
                return false;
        size_t i = 0;
        for (; s[i]; i++) {
                if (i >= WIRE_PROFILE_MAX)
                        return false;
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
                        return false;
        }
        return true;
}

/* RFC 3339 date-time with real field ranges (core/clock.h: 1-9 fraction digits, 'Z' or a
 * numeric offset, no leap second). Offsets are accepted because the contract says only
 * "format: date-time" and a finished report must not bounce over its spelling; nexus itself
 * always emits UTC with 'Z' (nexus §0). */
int wire_timestamp_check(const char *s, err_t *err)
{
        int64_t ms = 0;

        if (!s)
                return err_set(err, "missing timestamp");
        if (strlen(s) > WIRE_TIMESTAMP_MAX)
                return err_set(err, "timestamp is too long (max %d bytes)", WIRE_TIMESTAMP_MAX);
        return rfc3339_parse(s, &ms, err);
}

static int get_enum_str(const json_t *obj, const char *key, bool required,
                        int (*from)(const char *, int *, err_t *), int *out, err_t *err)
{
        const char *s = NULL;
        bool present = false;

        *out = 0;
        if (json_get_string(obj, key, required, &s, &present, err) < 0)
                return -1;
        if (!present)
                return 0;
        if (from(s, out, err) < 0)
                return err_wrap(err, "field \"%s\"", key);
        return 0;
}

static int kind_from(const char *s, int *out, err_t *err)
{
        wire_kind k = WIRE_KIND_NONE;
        if (wire_kind_from_name(s, &k, err) < 0)
                return -1;
        *out = (int)k;
        return 0;
}

static int stream_from(const char *s, int *out, err_t *err)
{
        wire_stream v = WIRE_STREAM_NONE;
        if (wire_stream_from_name(s, &v, err) < 0)
                return -1;
        *out = (int)v;
        return 0;
}

static int status_from(const char *s, int *out, err_t *err)
{
        wire_status v = WIRE_STATUS_NONE;
        if (wire_status_from_name(s, &v, err) < 0)
                return -1;
        *out = (int)v;
        return 0;
}

static int get_kind(const json_t *obj, const char *key, wire_kind *out, err_t *err)
{
        int v = 0;
        if (get_enum_str(obj, key, false, kind_from, &v, err) < 0)
                return -1;
        *out = (wire_kind)v;
        return 0;
}

static int get_stream(const json_t *obj, const char *key, wire_stream *out, err_t *err)
{
        int v = 0;
        if (get_enum_str(obj, key, true, stream_from, &v, err) < 0)
                return -1;
        *out = (wire_stream)v;
        return 0;
}

static int get_status(const json_t *obj, const char *key, wire_status *out, err_t *err)
{
        int v = 0;
        if (get_enum_str(obj, key, true, status_from, &v, err) < 0)
                return -1;
        *out = (wire_status)v;
        return 0;
}

static int put_enum(json_t *obj, const char *key, const char *name, bool required, err_t *err)
{
        if (!name) {
                if (required)
                        return err_set(err, "field \"%s\" has no valid value to serialise",
                                       key);
                return 0;
        }
        return put_str(obj, key, name, err);
}

static int check_kind(const char *key, wire_kind k, bool required, err_t *err)
{
        if (k == WIRE_KIND_NONE && !required)
                return 0;
        if (!wire_kind_name(k))
                return err_set(err, "field \"%s\" must be one of server, desktop, mobile, "
                               "bridge", key);
        return 0;
}

static int check_stream(const char *key, wire_stream s, err_t *err)
{
        if (!wire_stream_name(s))
                return err_set(err, "field \"%s\" must be stdout or stderr", key);
        return 0;
}

/* ── limits ────────────────────────────────────────────────────────────────────────────── */

int wire_limits_parse(const json_t *j, wire_limits *out, err_t *err)
{
        memset(out, 0, sizeof(*out));
        if (require_object(j, err) < 0 ||
            get_int(j, "cpu", false, &out->cpu, &out->has_cpu, err) < 0 ||
            get_int(j, "memory_mb", false, &out->memory_mb, &out->has_memory_mb, err) < 0 ||
            get_int(j, "disk_mb", false, &out->disk_mb, &out->has_disk_mb, err) < 0 ||
            get_int(j, "max_output_bytes", false, &out->max_output_bytes,
                    &out->has_max_output_bytes, err) < 0 ||
            get_int(j, "max_diff_bytes", false, &out->max_diff_bytes, &out->has_max_diff_bytes,
                    err) < 0) {
                memset(out, 0, sizeof(*out));
                return -1;
        }
        return 0;
}

json_t *wire_limits_to_json(const wire_limits *x, err_t *err)
{
        _cleanup_json_ json_t *o = new_object(err);
        if (!o)
                return NULL;
        if ((x->has_cpu && put_int(o, "cpu", x->cpu, err) < 0) ||
            (x->has_memory_mb && put_int(o, "memory_mb", x->memory_mb, err) < 0) ||
            (x->has_disk_mb && put_int(o, "disk_mb", x->disk_mb, err) < 0) ||
            (x->has_max_output_bytes &&
             put_int(o, "max_output_bytes", x->max_output_bytes, err) < 0) ||
            (x->has_max_diff_bytes && put_int(o, "max_diff_bytes", x->max_diff_bytes, err) < 0))
                return NULL;
        return steal_ptr(&o);
}

/* Contract Limits: every field is an integer >= 0 (0 = server default). */
int wire_limits_validate(const wire_limits *x, err_t *err)
{
        if ((x->has_cpu && check_min("cpu", x->cpu, 0, err) < 0) ||
            (x->has_memory_mb && check_min("memory_mb", x->memory_mb, 0, err) < 0) ||
            (x->has_disk_mb && check_min("disk_mb", x->disk_mb, 0, err) < 0) ||
            (x->has_max_output_bytes &&
             check_min("max_output_bytes", x->max_output_bytes, 0, err) < 0) ||
            (x->has_max_diff_bytes && check_min("max_diff_bytes", x->max_diff_bytes, 0, err) < 0))
                return -1;
        return 0;
}

/* ── directive spec ────────────────────────────────────────────────────────────────────── */

void wire_directive_spec_free(wire_directive_spec *x)
{
        if (!x)
                return;
        FREE_AND_NULL(x->directive_id);
        FREE_AND_NULL(x->facility.id);
        FREE_AND_NULL(x->facility.mount);
        FREE_AND_NULL(x->facility.repo_url);
        FREE_AND_NULL(x->sandbox_profile);
        FREE_AND_NULL(x->command);
        FREE_AND_NULL(x->shell);
        FREE_AND_NULL(x->cwd);
        json_decrefp(&x->cap_net);
        json_decrefp(&x->cap_fs);
        wire_strlist_free(&x->artifacts_collect);
        memset(x, 0, sizeof(*x));
}

static int facility_parse(const json_t *j, wire_facility *f, err_t *err)
{
        if (get_str(j, "id", true, WIRE_ID_MAX, &f->id, err) < 0 ||
            get_str(j, "mount", false, WIRE_PATH_MAX, &f->mount, err) < 0 ||
            get_str(j, "repo_url", false, WIRE_URL_MAX, &f->repo_url, err) < 0)
                return err_wrap(err, "spec.facility");
        return 0;
}

static int spec_parse_own(const json_t *j, wire_directive_spec *out, err_t *err)
{
        if (get_str(j, "directive_id", true, WIRE_ID_MAX, &out->directive_id, err) < 0 ||
            get_str(j, "sandbox_profile", false, WIRE_PROFILE_MAX, &out->sandbox_profile,
                    err) < 0 ||
            get_str(j, "command", true, WIRE_COMMAND_MAX, &out->command, err) < 0 ||
            get_str(j, "shell", false, WIRE_PATH_MAX, &out->shell, err) < 0 ||
            get_str(j, "cwd", false, WIRE_PATH_MAX, &out->cwd, err) < 0 ||
            get_int(j, "timeout_seconds", false, &out->timeout_seconds,
                    &out->has_timeout_seconds, err) < 0)
                return err_wrap(err, "spec");
        return 0;
}

int wire_directive_spec_parse(const json_t *j, wire_directive_spec *out, err_t *err)
{
        json_t *sub = NULL;
        bool present = false;

        memset(out, 0, sizeof(*out));
        if (require_object(j, err) < 0) {
                err_wrap(err, "spec");
                goto fail;
        }
        if (spec_parse_own(j, out, err) < 0)
                goto fail;

        if (json_get_object(j, "facility", true, &sub, &present, err) < 0) {
                err_wrap(err, "spec");
                goto fail;
        }
        if (facility_parse(sub, &out->facility, err) < 0)
                goto fail;

        if (json_get_object(j, "limits", false, &sub, &present, err) < 0) {
                err_wrap(err, "spec");
                goto fail;
        }
        if (present && wire_limits_parse(sub, &out->limits, err) < 0) {
                err_wrap(err, "spec.limits");
                goto fail;
        }

        if (json_get_object(j, "capabilities", false, &sub, &present, err) < 0) {
                err_wrap(err, "spec");
                goto fail;
        }
        if (present && (get_obj_copy(sub, "net", &out->cap_net, err) < 0 ||
                        get_obj_copy(sub, "fs", &out->cap_fs, err) < 0)) {
                err_wrap(err, "spec.capabilities");
                goto fail;
        }

        if (json_get_object(j, "artifacts", false, &sub, &present, err) < 0) {
                err_wrap(err, "spec");
                goto fail;
        }
        if (present && (get_strlist(sub, "collect", WIRE_COLLECT_MAX, WIRE_PATH_MAX,
                                    &out->artifacts_collect, err) < 0 ||
                        get_bool(sub, "always_diff", false, &out->artifacts_always_diff,
                                 err) < 0)) {
                err_wrap(err, "spec.artifacts");
                goto fail;
        }
        return 0;
fail:
        wire_directive_spec_free(out);
        return -1;
}

json_t *wire_directive_spec_to_json(const wire_directive_spec *x, err_t *err)
{
        _cleanup_json_ json_t *o = new_object(err);
        _cleanup_json_ json_t *fac = NULL;
        _cleanup_json_ json_t *caps = NULL;
        _cleanup_json_ json_t *art = NULL;

        if (!o)
                return NULL;
        fac = new_object(err);
        caps = new_object(err);
        art = new_object(err);
        if (!fac || !caps || !art)
                return NULL;
        if (put_str(fac, "id", x->facility.id, err) < 0 ||
            put_str(fac, "mount", x->facility.mount, err) < 0 ||
            put_str(fac, "repo_url", x->facility.repo_url, err) < 0) {
                err_wrap(err, "spec.facility");
                return NULL;
        }
        if (put_copy(caps, "net", x->cap_net, err) < 0 ||
            put_copy(caps, "fs", x->cap_fs, err) < 0) {
                err_wrap(err, "spec.capabilities");
                return NULL;
        }
        if ((x->artifacts_collect.n > 0 &&
             put_strlist(art, "collect", &x->artifacts_collect, err) < 0) ||
            (x->artifacts_always_diff && put_bool(art, "always_diff", true, err) < 0)) {
                err_wrap(err, "spec.artifacts");
                return NULL;
        }
        /* Key order and presence as mothership §7.5 sends it. */
        if (put_str(o, "directive_id", x->directive_id, err) < 0 ||
            put(o, "facility", steal_ptr(&fac), err) < 0 ||
            put_str(o, "sandbox_profile", x->sandbox_profile, err) < 0 ||
            put_str(o, "command", x->command, err) < 0 ||
            put_str(o, "shell", x->shell, err) < 0 ||
            put_str(o, "cwd", x->cwd, err) < 0 ||
            (x->has_timeout_seconds && put_int(o, "timeout_seconds", x->timeout_seconds,
                                               err) < 0) ||
            put(o, "limits", wire_limits_to_json(&x->limits, err), err) < 0 ||
            put(o, "capabilities", steal_ptr(&caps), err) < 0 ||
            put(o, "artifacts", steal_ptr(&art), err) < 0) {
                err_wrap(err, "spec");
                return NULL;
        }
        return steal_ptr(&o);
}

/* An empty object grants nothing, like null: mothership §6.6 sends net = {} when no policy
 * applies, and nexus treats a missing net capability as deny-all (nexus §4.3). */
static bool cap_is_empty(const json_t *c)
{
        return !c || (json_is_object(c) && json_object_size(c) == 0);
}

int wire_directive_spec_validate(const wire_directive_spec *x, err_t *err)
{
        if (check_id("directive_id", x->directive_id, true, err) < 0 ||
            check_str("command", x->command, CHK_REQUIRED | CHK_NONEMPTY, WIRE_COMMAND_MAX,
                      err) < 0 ||
            check_str("shell", x->shell, CHK_NONEMPTY, WIRE_PATH_MAX, err) < 0 ||
            check_str("cwd", x->cwd, 0, WIRE_PATH_MAX, err) < 0 ||
            (x->has_timeout_seconds &&
             check_min("timeout_seconds", x->timeout_seconds, 1, err) < 0))
                return err_wrap(err, "spec");
        /* An empty profile means "host" to the reference daemon (nexus §4.3, fail-open), so
         * a present profile must be a real token; absent is left to the caller's default. */
        if (x->sandbox_profile && !wire_profile_is_valid(x->sandbox_profile))
                return err_set(err, "spec: field \"sandbox_profile\" (\"%.40s\") must match "
                               "[a-z0-9-]{1,32}", x->sandbox_profile);
        if (check_str("id", x->facility.id, CHK_REQUIRED | CHK_NONEMPTY, WIRE_ID_MAX, err) < 0 ||
            check_str("mount", x->facility.mount, 0, WIRE_PATH_MAX, err) < 0 ||
            check_str("repo_url", x->facility.repo_url, 0, WIRE_URL_MAX, err) < 0)
                return err_wrap(err, "spec.facility");
        if (wire_limits_validate(&x->limits, err) < 0)
                return err_wrap(err, "spec.limits");
        if (check_obj("net", x->cap_net, err) < 0 || check_obj("fs", x->cap_fs, err) < 0)
                return err_wrap(err, "spec.capabilities");
        if (!cap_is_empty(x->cap_net) && netcap_validate(x->cap_net, err) < 0)
                return err_wrap(err, "spec.capabilities.net");
        if (!cap_is_empty(x->cap_fs) && fscap_validate(x->cap_fs, err) < 0)
                return err_wrap(err, "spec.capabilities.fs");
        if (check_strlist("collect", &x->artifacts_collect, WIRE_COLLECT_MAX, WIRE_PATH_MAX,
                          err) < 0)
                return err_wrap(err, "spec.artifacts");
        return 0;
}

int wire_directive_spec_parse_text(const char *data, size_t len, wire_directive_spec *out,
                                   err_t *err)
{
        memset(out, 0, sizeof(*out));
        _cleanup_json_ json_t *j = json_parse(data, len, true, err);
        if (!j)
                return -1;
        if (wire_directive_spec_parse(j, out, err) < 0)
                return -1;
        if (wire_directive_spec_validate(out, err) < 0) {
                wire_directive_spec_free(out);
                return -1;
        }
        return 0;
}

/* ── directive lease ───────────────────────────────────────────────────────────────────── */

void wire_directive_lease_free(wire_directive_lease *x)
{
        if (!x)
                return;
        FREE_AND_NULL(x->directive_id);
        FREE_AND_NULL(x->directive_token);
        wire_directive_spec_free(&x->spec);
        memset(x, 0, sizeof(*x));
}

int wire_directive_lease_parse(const json_t *j, wire_directive_lease *out, err_t *err)
{
        json_t *spec = NULL;
        bool present = false;

        memset(out, 0, sizeof(*out));
        if (require_object(j, err) < 0 ||
            get_str(j, "directive_id", true, WIRE_ID_MAX, &out->directive_id, err) < 0 ||
            get_str(j, "directive_token", true, WIRE_TOKEN_MAX, &out->directive_token,
                    err) < 0 ||
            json_get_object(j, "spec", true, &spec, &present, err) < 0 ||
            wire_directive_spec_parse(spec, &out->spec, err) < 0) {
                wire_directive_lease_free(out);
                return -1;
        }
        return 0;
}

json_t *wire_directive_lease_to_json(const wire_directive_lease *x, err_t *err)
{
        _cleanup_json_ json_t *o = new_object(err);
        if (!o)
                return NULL;
        if (put_str(o, "directive_id", x->directive_id, err) < 0 ||
            put_str(o, "directive_token", x->directive_token, err) < 0)
                return NULL;
        json_t *spec = wire_directive_spec_to_json(&x->spec, err);
        if (!spec)
                return NULL;
        if (put(o, "spec", spec, err) < 0)
                return NULL;
        return steal_ptr(&o);
}

int wire_directive_lease_validate(const wire_directive_lease *x, err_t *err)
{
        if (check_id("directive_id", x->directive_id, true, err) < 0 ||
            check_str("directive_token", x->directive_token, CHK_REQUIRED | CHK_NONEMPTY,
                      WIRE_TOKEN_MAX, err) < 0)
                return -1;
        return wire_directive_spec_validate(&x->spec, err);
}

int wire_directive_lease_parse_text(const char *data, size_t len, wire_directive_lease *out,
                                    err_t *err)
{
        memset(out, 0, sizeof(*out));
        _cleanup_json_ json_t *j = json_parse(data, len, true, err);
        if (!j)
                return -1;
        if (wire_directive_lease_parse(j, out, err) < 0)
                return -1;
        if (wire_directive_lease_validate(out, err) < 0) {
                wire_directive_lease_free(out);
                return -1;
        }
        return 0;
}

/* ── pending command ───────────────────────────────────────────────────────────────────── */

void wire_pending_command_free(wire_pending_command *x)
{
        if (!x)
                return;
        FREE_AND_NULL(x->command_id);
        FREE_AND_NULL(x->capability);
        json_decrefp(&x->params);
        FREE_AND_NULL(x->bridge_entity_ref);
        FREE_AND_NULL(x->created_at);
        memset(x, 0, sizeof(*x));
}

int wire_pending_command_parse(const json_t *j, wire_pending_command *out, err_t *err)
{
        memset(out, 0, sizeof(*out));
        if (require_object(j, err) < 0 ||
            get_str(j, "command_id", true, WIRE_ID_MAX, &out->command_id, err) < 0 ||
            get_str(j, "capability", true, WIRE_SHORT_MAX, &out->capability, err) < 0 ||
            get_obj_copy(j, "params", &out->params, err) < 0 ||
            get_str(j, "bridge_entity_ref", false, WIRE_NAME_MAX, &out->bridge_entity_ref,
                    err) < 0 ||
            get_int(j, "timeout_seconds", true, &out->timeout_seconds, NULL, err) < 0 ||
            get_str(j, "created_at", true, WIRE_TIMESTAMP_MAX, &out->created_at, err) < 0) {
                wire_pending_command_free(out);
                return -1;
        }
        return 0;
}

json_t *wire_pending_command_to_json(const wire_pending_command *x, err_t *err)
{
        _cleanup_json_ json_t *o = new_object(err);
        if (!o)
                return NULL;
        /* Shape of mothership §3.2.8: params always an object, bridge_entity_ref null. */
        if (put_str(o, "command_id", x->command_id, err) < 0 ||
            put_str(o, "capability", x->capability, err) < 0 ||
            put(o, "params", x->params ? json_deep_copy(x->params) : json_object(), err) < 0 ||
            (x->bridge_entity_ref ? put_str(o, "bridge_entity_ref", x->bridge_entity_ref, err)
                                  : put(o, "bridge_entity_ref", json_null(), err)) < 0 ||
            put_int(o, "timeout_seconds", x->timeout_seconds, err) < 0 ||
            put_str(o, "created_at", x->created_at, err) < 0)
                return NULL;
        return steal_ptr(&o);
}

int wire_pending_command_validate(const wire_pending_command *x, err_t *err)
{
        if (check_id("command_id", x->command_id, true, err) < 0 ||
            check_token("capability", x->capability, true, WIRE_SHORT_MAX, err) < 0 ||
            check_obj("params", x->params, err) < 0 ||
            check_str("bridge_entity_ref", x->bridge_entity_ref, CHK_NONEMPTY, WIRE_NAME_MAX,
                      err) < 0 ||
            check_range("timeout_seconds", x->timeout_seconds, 1, WIRE_COMMAND_TIMEOUT_MAX,
                        err) < 0 ||
            check_ts("created_at", x->created_at, true, err) < 0)
                return -1;
        return 0;
}

/* ── enrollment ────────────────────────────────────────────────────────────────────────── */

void wire_enroll_request_free(wire_enroll_request *x)
{
        if (!x)
                return;
        FREE_AND_NULL(x->enroll_token);
        FREE_AND_NULL(x->name);
        FREE_AND_NULL(x->platform);
        FREE_AND_NULL(x->display_name);
        json_decrefp(&x->labels);
        json_decrefp(&x->metadata);
        FREE_AND_NULL(x->csr_pem);
        memset(x, 0, sizeof(*x));
}

int wire_enroll_request_parse(const json_t *j, wire_enroll_request *out, err_t *err)
{
        memset(out, 0, sizeof(*out));
        if (require_object(j, err) < 0 ||
            get_str(j, "enroll_token", true, WIRE_TOKEN_MAX, &out->enroll_token, err) < 0 ||
            get_str(j, "name", false, WIRE_NAME_MAX, &out->name, err) < 0 ||
            get_kind(j, "kind", &out->kind, err) < 0 ||
            get_str(j, "platform", false, WIRE_VERSION_MAX, &out->platform, err) < 0 ||
            get_str(j, "display_name", false, WIRE_NAME_MAX, &out->display_name, err) < 0 ||
            get_obj_copy(j, "labels", &out->labels, err) < 0 ||
            get_obj_copy(j, "metadata", &out->metadata, err) < 0 ||
            get_str(j, "csr_pem", false, WIRE_PEM_MAX, &out->csr_pem, err) < 0) {
                wire_enroll_request_free(out);
                return -1;
        }
        return 0;
}

json_t *wire_enroll_request_to_json(const wire_enroll_request *x, err_t *err)
{
        _cleanup_json_ json_t *o = new_object(err);
        if (!o)
                return NULL;
        /* nexus §3.1: name and labels are omitted when empty. */
        bool has_name = x->name && x->name[0];
        bool has_labels = x->labels && !(json_is_object(x->labels) &&
                                         json_object_size(x->labels) == 0);
        if (put_str(o, "enroll_token", x->enroll_token, err) < 0 ||
            (has_name && put_str(o, "name", x->name, err) < 0) ||
            put_enum(o, "kind", wire_kind_name(x->kind), false, err) < 0 ||
            put_str(o, "platform", x->platform, err) < 0 ||
            put_str(o, "display_name", x->display_name, err) < 0 ||
            (has_labels && put_copy(o, "labels", x->labels, err) < 0) ||
            put_copy(o, "metadata", x->metadata, err) < 0 ||
            put_str(o, "csr_pem", x->csr_pem, err) < 0)
                return NULL;
        return steal_ptr(&o);
}

int wire_enroll_request_validate(const wire_enroll_request *x, err_t *err)
{
        if (check_str("enroll_token", x->enroll_token, CHK_REQUIRED | CHK_NONEMPTY,
                      WIRE_TOKEN_MAX, err) < 0 ||
            check_str("name", x->name, 0, WIRE_NAME_MAX, err) < 0 ||
            check_kind("kind", x->kind, false, err) < 0 ||
            check_str("platform", x->platform, 0, WIRE_VERSION_MAX, err) < 0 ||
            check_str("display_name", x->display_name, 0, WIRE_NAME_MAX, err) < 0 ||
            check_obj("labels", x->labels, err) < 0 ||
            check_obj("metadata", x->metadata, err) < 0 ||
            check_str("csr_pem", x->csr_pem, CHK_NONEMPTY, WIRE_PEM_MAX, err) < 0)
                return -1;
        return 0;
}

void wire_enroll_response_free(wire_enroll_response *x)
{
        if (!x)
                return;
        FREE_AND_NULL(x->territory_id);
        FREE_AND_NULL(x->mtls_client_cert_pem);
        FREE_AND_NULL(x->ca_bundle_pem);
        FREE_AND_NULL(x->config.cable_url);
        memset(x, 0, sizeof(*x));
}

static int enroll_config_parse(const json_t *c, wire_enroll_config *out, err_t *err)
{
        if (get_int(c, "poll_interval_seconds", false, &out->poll_interval_seconds,
                    &out->has_poll_interval_seconds, err) < 0 ||
            get_int(c, "heartbeat_interval_seconds", false, &out->heartbeat_interval_seconds,
                    &out->has_heartbeat_interval_seconds, err) < 0 ||
            get_int(c, "heartbeat_interval_ws_seconds", false,
                    &out->heartbeat_interval_ws_seconds,
                    &out->has_heartbeat_interval_ws_seconds, err) < 0 ||
            get_int(c, "lease_ttl_seconds", false, &out->lease_ttl_seconds,
                    &out->has_lease_ttl_seconds, err) < 0 ||
            get_str(c, "cable_url", false, WIRE_URL_MAX, &out->cable_url, err) < 0)
                return err_wrap(err, "config");
        return 0;
}

int wire_enroll_response_parse(const json_t *j, wire_enroll_response *out, err_t *err)
{
        json_t *c = NULL;
        bool present = false;

        memset(out, 0, sizeof(*out));
        if (require_object(j, err) < 0 ||
            get_str(j, "territory_id", true, WIRE_ID_MAX, &out->territory_id, err) < 0 ||
            get_kind(j, "kind", &out->kind, err) < 0 ||
            get_str(j, "mtls_client_cert_pem", false, WIRE_PEM_MAX, &out->mtls_client_cert_pem,
                    err) < 0 ||
            get_str(j, "ca_bundle_pem", false, WIRE_PEM_MAX, &out->ca_bundle_pem, err) < 0 ||
            json_get_object(j, "config", true, &c, &present, err) < 0 ||
            enroll_config_parse(c, &out->config, err) < 0) {
                wire_enroll_response_free(out);
                return -1;
        }
        return 0;
}

json_t *wire_enroll_response_to_json(const wire_enroll_response *x, err_t *err)
{
        _cleanup_json_ json_t *o = new_object(err);
        _cleanup_json_ json_t *c = NULL;
        const wire_enroll_config *k = &x->config;

        if (!o)
                return NULL;
        c = new_object(err);
        if (!c)
                return NULL;
        if ((k->has_poll_interval_seconds &&
             put_int(c, "poll_interval_seconds", k->poll_interval_seconds, err) < 0) ||
            (k->has_heartbeat_interval_seconds &&
             put_int(c, "heartbeat_interval_seconds", k->heartbeat_interval_seconds, err) < 0) ||
            (k->has_heartbeat_interval_ws_seconds &&
             put_int(c, "heartbeat_interval_ws_seconds", k->heartbeat_interval_ws_seconds,
                     err) < 0) ||
            (k->has_lease_ttl_seconds &&
             put_int(c, "lease_ttl_seconds", k->lease_ttl_seconds, err) < 0) ||
            put_str(c, "cable_url", k->cable_url, err) < 0) {
                err_wrap(err, "config");
                return NULL;
        }
        /* mothership §3.2.1: the PEM fields are omitted (not null) without a CSR. */
        if (put_str(o, "territory_id", x->territory_id, err) < 0 ||
            put_enum(o, "kind", wire_kind_name(x->kind), false, err) < 0 ||
            put_str(o, "mtls_client_cert_pem", x->mtls_client_cert_pem, err) < 0 ||
            put_str(o, "ca_bundle_pem", x->ca_bundle_pem, err) < 0 ||
            put(o, "config", steal_ptr(&c), err) < 0)
                return NULL;
        return steal_ptr(&o);
}

int wire_enroll_response_validate(const wire_enroll_response *x, err_t *err)
{
        const wire_enroll_config *k = &x->config;

        if (check_id("territory_id", x->territory_id, true, err) < 0 ||
            check_kind("kind", x->kind, false, err) < 0 ||
            check_str("mtls_client_cert_pem", x->mtls_client_cert_pem, CHK_NONEMPTY,
                      WIRE_PEM_MAX, err) < 0 ||
            check_str("ca_bundle_pem", x->ca_bundle_pem, CHK_NONEMPTY, WIRE_PEM_MAX, err) < 0)
                return -1;
        /* Intervals of 0 would make a client spin. */
        if ((k->has_poll_interval_seconds &&
             check_min("poll_interval_seconds", k->poll_interval_seconds, 1, err) < 0) ||
            (k->has_heartbeat_interval_seconds &&
             check_min("heartbeat_interval_seconds", k->heartbeat_interval_seconds, 1, err) < 0) ||
            (k->has_heartbeat_interval_ws_seconds &&
             check_min("heartbeat_interval_ws_seconds", k->heartbeat_interval_ws_seconds, 1,
                       err) < 0) ||
            (k->has_lease_ttl_seconds &&
             check_min("lease_ttl_seconds", k->lease_ttl_seconds, 1, err) < 0) ||
            check_str("cable_url", k->cable_url, CHK_NONEMPTY, WIRE_URL_MAX, err) < 0)
                return err_wrap(err, "config");
        return 0;
}

/* ── territory heartbeat ───────────────────────────────────────────────────────────────── */

void wire_territory_heartbeat_request_free(wire_territory_heartbeat_request *x)
{
        if (!x)
                return;
        FREE_AND_NULL(x->nexus_version);
        json_decrefp(&x->labels);
        json_decrefp(&x->capacity);
        json_decrefp(&x->runtime_status);
        wire_strlist_free(&x->capabilities);
        json_decrefp(&x->bridge_entities);
        json_decrefp(&x->telemetry);
        memset(x, 0, sizeof(*x));
}

int wire_territory_heartbeat_request_parse(const json_t *j, wire_territory_heartbeat_request *out,
                                           err_t *err)
{
        memset(out, 0, sizeof(*out));
        if (require_object(j, err) < 0 ||
            get_str(j, "nexus_version", false, WIRE_VERSION_MAX, &out->nexus_version, err) < 0 ||
            get_int(j, "running_directives_count", false, &out->running_directives_count, NULL,
                    err) < 0 ||
            get_obj_copy(j, "labels", &out->labels, err) < 0 ||
            get_obj_copy(j, "capacity", &out->capacity, err) < 0 ||
            get_obj_copy(j, "runtime_status", &out->runtime_status, err) < 0 ||
            get_strlist(j, "capabilities", WIRE_CAPABILITIES_MAX, WIRE_SHORT_MAX,
                        &out->capabilities, err) < 0 ||
            get_array_copy(j, "bridge_entities", WIRE_BRIDGE_ENTITIES_MAX,
                           &out->bridge_entities, err) < 0 ||
            get_obj_copy(j, "telemetry", &out->telemetry, err) < 0) {
                wire_territory_heartbeat_request_free(out);
                return -1;
        }
        return 0;
}

json_t *wire_territory_heartbeat_request_to_json(const wire_territory_heartbeat_request *x,
                                                 err_t *err)
{
        _cleanup_json_ json_t *o = new_object(err);
        if (!o)
                return NULL;
        /* nexus §4.3: running_directives_count always present; §11.7: no capabilities
         * advertised unless handled, so an empty list is omitted. */
        if (put_str(o, "nexus_version", x->nexus_version, err) < 0 ||
            put_int(o, "running_directives_count", x->running_directives_count, err) < 0 ||
            put_copy(o, "labels", x->labels, err) < 0 ||
            put_copy(o, "capacity", x->capacity, err) < 0 ||
            put_copy(o, "runtime_status", x->runtime_status, err) < 0 ||
            (x->capabilities.n > 0 && put_strlist(o, "capabilities", &x->capabilities, err) < 0) ||
            put_copy(o, "bridge_entities", x->bridge_entities, err) < 0 ||
            put_copy(o, "telemetry", x->telemetry, err) < 0)
                return NULL;
        return steal_ptr(&o);
}

/* Contract: each bridge entity is an object with string entity_ref and entity_type. */
static int check_bridge_entities(const json_t *a, err_t *err)
{
        if (!a)
                return 0;
        if (!json_is_array(a))
                return err_set(err, "field \"bridge_entities\" must be an array, got %s",
                               json_type_name(a));
        if (json_array_size(a) > WIRE_BRIDGE_ENTITIES_MAX)
                return err_set(err, "field \"bridge_entities\" has too many items (%zu, max %d)",
                               json_array_size(a), WIRE_BRIDGE_ENTITIES_MAX);
        size_t i;
        json_t *e;
        json_array_foreach(a, i, e) {
                const char *s = NULL;
                if (!json_is_object(e)) {
                        err_set(err, "must be an object, got %s", json_type_name(e));
                        return err_wrap(err, "bridge_entities[%zu]", i);
                }
                if (json_get_string(e, "entity_ref", true, &s, NULL, err) < 0 ||
                    check_str("entity_ref", s, CHK_REQUIRED | CHK_NONEMPTY, WIRE_NAME_MAX,
                              err) < 0 ||
                    json_get_string(e, "entity_type", true, &s, NULL, err) < 0 ||
                    check_str("entity_type", s, CHK_REQUIRED | CHK_NONEMPTY, WIRE_NAME_MAX,
                              err) < 0)
                        return err_wrap(err, "bridge_entities[%zu]", i);
        }
        return 0;
}

int wire_territory_heartbeat_request_validate(const wire_territory_heartbeat_request *x,
                                              err_t *err)
{
        if (check_str("nexus_version", x->nexus_version, 0, WIRE_VERSION_MAX, err) < 0 ||
            check_min("running_directives_count", x->running_directives_count, 0, err) < 0 ||
            check_obj("labels", x->labels, err) < 0 ||
            check_obj("capacity", x->capacity, err) < 0 ||
            check_obj("runtime_status", x->runtime_status, err) < 0 ||
            check_obj("telemetry", x->telemetry, err) < 0 ||
            check_strlist("capabilities", &x->capabilities, WIRE_CAPABILITIES_MAX,
                          WIRE_SHORT_MAX, err) < 0 ||
            check_bridge_entities(x->bridge_entities, err) < 0)
                return -1;
        /* Two-level names such as "camera.snap" (nexus §11.3): printable, no spaces. */
        for (size_t i = 0; i < x->capabilities.n; i++) {
                const char *c = x->capabilities.items[i];
                for (const char *p = c; *p; p++) {
                        if (*p <= 0x20 || *p >= 0x7f)
                                return err_set(err, "field \"capabilities\" item %zu (\"%.64s\") "
                                               "must be printable ASCII without spaces", i, c);
                }
                if (!c[0])
                        return err_set(err, "field \"capabilities\" item %zu must not be empty",
                                       i);
        }
        return 0;
}

void wire_territory_heartbeat_response_free(wire_territory_heartbeat_response *x)
{
        if (!x)
                return;
        FREE_AND_NULL(x->territory_id);
        FREE_AND_NULL(x->latest_version);
        FREE_AND_NULL(x->min_compatible_version);
        memset(x, 0, sizeof(*x));
}

int wire_territory_heartbeat_response_parse(const json_t *j,
                                            wire_territory_heartbeat_response *out, err_t *err)
{
        memset(out, 0, sizeof(*out));
        /* Every field is optional (nexus §4.3). */
        if (require_object(j, err) < 0 ||
            get_bool(j, "ok", false, &out->ok, err) < 0 ||
            get_str(j, "territory_id", false, WIRE_ID_MAX, &out->territory_id, err) < 0 ||
            get_int(j, "next_heartbeat_interval_seconds", false,
                    &out->next_heartbeat_interval_seconds, NULL, err) < 0 ||
            get_bool(j, "websocket_connected", false, &out->websocket_connected, err) < 0 ||
            get_bool(j, "upgrade_available", false, &out->upgrade_available, err) < 0 ||
            get_str(j, "latest_version", false, WIRE_VERSION_MAX, &out->latest_version, err) < 0 ||
            get_str(j, "min_compatible_version", false, WIRE_VERSION_MAX,
                    &out->min_compatible_version, err) < 0) {
                wire_territory_heartbeat_response_free(out);
                return -1;
        }
        return 0;
}

json_t *wire_territory_heartbeat_response_to_json(const wire_territory_heartbeat_response *x,
                                                  err_t *err)
{
        _cleanup_json_ json_t *o = new_object(err);
        if (!o)
                return NULL;
        /* mothership §3.2.2 sends ok, territory_id, interval and websocket_connected. */
        if (put_bool(o, "ok", x->ok, err) < 0 ||
            put_str(o, "territory_id", x->territory_id, err) < 0 ||
            (x->next_heartbeat_interval_seconds != 0 &&
             put_int(o, "next_heartbeat_interval_seconds", x->next_heartbeat_interval_seconds,
                     err) < 0) ||
            put_bool(o, "websocket_connected", x->websocket_connected, err) < 0 ||
            (x->upgrade_available && put_bool(o, "upgrade_available", true, err) < 0) ||
            put_str(o, "latest_version", x->latest_version, err) < 0 ||
            put_str(o, "min_compatible_version", x->min_compatible_version, err) < 0)
                return NULL;
        return steal_ptr(&o);
}

int wire_territory_heartbeat_response_validate(const wire_territory_heartbeat_response *x,
                                               err_t *err)
{
        if (check_id("territory_id", x->territory_id, false, err) < 0 ||
            check_min("next_heartbeat_interval_seconds", x->next_heartbeat_interval_seconds, 0,
                      err) < 0 ||
            check_str("latest_version", x->latest_version, 0, WIRE_VERSION_MAX, err) < 0 ||
            check_str("min_compatible_version", x->min_compatible_version, 0, WIRE_VERSION_MAX,
                      err) < 0)
                return -1;
        return 0;
}

/* ── poll ──────────────────────────────────────────────────────────────────────────────── */

void wire_poll_request_free(wire_poll_request *x)
{
        if (!x)
                return;
        wire_strlist_free(&x->supported_sandbox_profiles);
        memset(x, 0, sizeof(*x));
}

int wire_poll_request_parse(const json_t *j, wire_poll_request *out, err_t *err)
{
        memset(out, 0, sizeof(*out));
        if (require_object(j, err) < 0 ||
            get_strlist(j, "supported_sandbox_profiles", WIRE_PROFILES_MAX, WIRE_PROFILE_MAX,
                        &out->supported_sandbox_profiles, err) < 0 ||
            get_int(j, "max_directives_to_claim", false, &out->max_directives_to_claim, NULL,
                    err) < 0 ||
            get_int(j, "wait_seconds", false, &out->wait_seconds, NULL, err) < 0) {
                wire_poll_request_free(out);
                return -1;
        }
        return 0;
}

json_t *wire_poll_request_to_json(const wire_poll_request *x, err_t *err)
{
        _cleanup_json_ json_t *o = new_object(err);
        if (!o)
                return NULL;
        /* nexus §4.3: profiles always present; max_directives_to_claim omitted when 0. The
         * wait_seconds extension (DESIGN D9) likewise, so a stock server sees a stock poll. */
        if (put_strlist(o, "supported_sandbox_profiles", &x->supported_sandbox_profiles,
                        err) < 0 ||
            (x->max_directives_to_claim != 0 &&
             put_int(o, "max_directives_to_claim", x->max_directives_to_claim, err) < 0) ||
            (x->wait_seconds != 0 && put_int(o, "wait_seconds", x->wait_seconds, err) < 0))
                return NULL;
        return steal_ptr(&o);
}

int wire_poll_request_validate(const wire_poll_request *x, err_t *err)
{
        const wire_strlist *p = &x->supported_sandbox_profiles;

        if (p->n > WIRE_PROFILES_MAX)
                return err_set(err, "field \"supported_sandbox_profiles\" has too many items "
                               "(%zu, max %d)", p->n, WIRE_PROFILES_MAX);
        for (size_t i = 0; i < p->n; i++) {
                if (!wire_profile_is_valid(p->items[i]))
                        return err_set(err, "field \"supported_sandbox_profiles\" item %zu "
                                       "(\"%.40s\") must match [a-z0-9-]{1,32}", i,
                                       p->items[i] ? p->items[i] : "");
        }
        /* 0 stands for "absent"; the server treats an explicit value < 1 as 1 (§3.2.3). */
        if (x->max_directives_to_claim != 0 &&
            check_range("max_directives_to_claim", x->max_directives_to_claim, 1,
                        WIRE_CLAIM_MAX, err) < 0)
                return -1;
        if (check_range("wait_seconds", x->wait_seconds, 0, WIRE_WAIT_MAX, err) < 0)
                return -1;
        return 0;
}

void wire_poll_response_free(wire_poll_response *x)
{
        if (!x)
                return;
        for (size_t i = 0; i < x->n_directives; i++)
                wire_directive_lease_free(&x->directives[i]);
        FREE_AND_NULL(x->directives);
        memset(x, 0, sizeof(*x));
}

int wire_poll_response_parse(const json_t *j, wire_poll_response *out, err_t *err)
{
        json_t *a = NULL;
        bool present = false;

        memset(out, 0, sizeof(*out));
        if (require_object(j, err) < 0 ||
            json_get_array(j, "directives", true, &a, &present, err) < 0 ||
            get_int(j, "lease_ttl_seconds", false, &out->lease_ttl_seconds,
                    &out->has_lease_ttl_seconds, err) < 0 ||
            get_int(j, "retry_after_seconds", false, &out->retry_after_seconds,
                    &out->has_retry_after_seconds, err) < 0)
                goto fail;
        size_t n = json_array_size(a);
        if (n > WIRE_LEASES_MAX) {
                err_set(err, "field \"directives\" has too many items (%zu, max %d)", n,
                        WIRE_LEASES_MAX);
                goto fail;
        }
        if (n > 0) {
                out->directives = calloc(n, sizeof(*out->directives));
                if (!out->directives) {
                        oom(err);
                        goto fail;
                }
        }
        for (size_t i = 0; i < n; i++) {
                if (wire_directive_lease_parse(json_array_get(a, i), &out->directives[i],
                                               err) < 0) {
                        err_wrap(err, "directives[%zu]", i);
                        goto fail;
                }
                out->n_directives = i + 1;
        }
        return 0;
fail:
        wire_poll_response_free(out);
        return -1;
}

json_t *wire_poll_response_to_json(const wire_poll_response *x, err_t *err)
{
        _cleanup_json_ json_t *o = new_object(err);
        _cleanup_json_ json_t *a = json_array();

        if (!o)
                return NULL;
        if (!a) {
                oom(err);
                return NULL;
        }
        for (size_t i = 0; i < x->n_directives; i++) {
                json_t *l = wire_directive_lease_to_json(&x->directives[i], err);
                if (!l) {
                        err_wrap(err, "directives[%zu]", i);
                        return NULL;
                }
                if (json_array_append_new(a, l) < 0) {
                        oom(err);
                        return NULL;
                }
        }
        if (put(o, "directives", steal_ptr(&a), err) < 0 ||
            (x->has_lease_ttl_seconds &&
             put_int(o, "lease_ttl_seconds", x->lease_ttl_seconds, err) < 0) ||
            (x->has_retry_after_seconds &&
             put_int(o, "retry_after_seconds", x->retry_after_seconds, err) < 0))
                return NULL;
        return steal_ptr(&o);
}

int wire_poll_response_validate(const wire_poll_response *x, err_t *err)
{
        if (x->n_directives > WIRE_LEASES_MAX)
                return err_set(err, "field \"directives\" has too many items (%zu, max %d)",
                               x->n_directives, WIRE_LEASES_MAX);
        if ((x->has_lease_ttl_seconds &&
             check_min("lease_ttl_seconds", x->lease_ttl_seconds, 0, err) < 0) ||
            (x->has_retry_after_seconds &&
             check_min("retry_after_seconds", x->retry_after_seconds, 0, err) < 0))
                return -1;
        for (size_t i = 0; i < x->n_directives; i++) {
                if (wire_directive_lease_validate(&x->directives[i], err) < 0)
                        return err_wrap(err, "directives[%zu]", i);
        }
        return 0;
}

int wire_poll_response_parse_text(const char *data, size_t len, wire_poll_response *out,
                                  err_t *err)
{
        memset(out, 0, sizeof(*out));
        _cleanup_json_ json_t *j = json_parse(data, len, true, err);
        if (!j)
                return -1;
        if (wire_poll_response_parse(j, out, err) < 0)
                return -1;
        if (wire_poll_response_validate(out, err) < 0) {
                wire_poll_response_free(out);
                return -1;
        }
        return 0;
}

/* ── started ───────────────────────────────────────────────────────────────────────────── */

void wire_started_request_free(wire_started_request *x)
{
        if (!x)
                return;
        json_decrefp(&x->effective_capabilities_summary);
        FREE_AND_NULL(x->sandbox_version);
        FREE_AND_NULL(x->nexus_version);
        FREE_AND_NULL(x->runtime_ref);
        FREE_AND_NULL(x->started_at);
        memset(x, 0, sizeof(*x));
}

int wire_started_request_parse(const json_t *j, wire_started_request *out, err_t *err)
{
        memset(out, 0, sizeof(*out));
        if (require_object(j, err) < 0 ||
            get_obj_copy(j, "effective_capabilities_summary",
                         &out->effective_capabilities_summary, err) < 0 ||
            get_str(j, "sandbox_version", false, WIRE_SHORT_MAX, &out->sandbox_version, err) < 0 ||
            get_str(j, "nexus_version", false, WIRE_VERSION_MAX, &out->nexus_version, err) < 0 ||
            get_str(j, "runtime_ref", false, WIRE_RUNTIME_REF_MAX, &out->runtime_ref, err) < 0 ||
            get_str(j, "started_at", false, WIRE_TIMESTAMP_MAX, &out->started_at, err) < 0) {
                wire_started_request_free(out);
                return -1;
        }
        return 0;
}

json_t *wire_started_request_to_json(const wire_started_request *x, err_t *err)
{
        _cleanup_json_ json_t *o = new_object(err);
        if (!o)
                return NULL;
        if (put_copy(o, "effective_capabilities_summary", x->effective_capabilities_summary,
                     err) < 0 ||
            put_str(o, "sandbox_version", x->sandbox_version, err) < 0 ||
            put_str(o, "nexus_version", x->nexus_version, err) < 0 ||
            put_str(o, "runtime_ref", x->runtime_ref, err) < 0 ||
            put_str(o, "started_at", x->started_at, err) < 0)
                return NULL;
        return steal_ptr(&o);
}

int wire_started_request_validate(const wire_started_request *x, err_t *err)
{
        if (check_obj("effective_capabilities_summary", x->effective_capabilities_summary,
                      err) < 0 ||
            check_str("sandbox_version", x->sandbox_version, 0, WIRE_SHORT_MAX, err) < 0 ||
            check_str("nexus_version", x->nexus_version, 0, WIRE_VERSION_MAX, err) < 0 ||
            check_str("runtime_ref", x->runtime_ref, 0, WIRE_RUNTIME_REF_MAX, err) < 0 ||
            check_ts("started_at", x->started_at, false, err) < 0)
                return -1;
        return 0;
}

void wire_started_response_free(wire_started_response *x)
{
        if (!x)
                return;
        FREE_AND_NULL(x->directive_id);
        FREE_AND_NULL(x->state);
        memset(x, 0, sizeof(*x));
}

int wire_started_response_parse(const json_t *j, wire_started_response *out, err_t *err)
{
        memset(out, 0, sizeof(*out));
        if (require_object(j, err) < 0 ||
            get_bool(j, "ok", true, &out->ok, err) < 0 ||
            get_str(j, "directive_id", true, WIRE_ID_MAX, &out->directive_id, err) < 0 ||
            get_str(j, "state", true, WIRE_STATE_MAX, &out->state, err) < 0 ||
            get_bool(j, "duplicate", true, &out->duplicate, err) < 0) {
                wire_started_response_free(out);
                return -1;
        }
        return 0;
}

json_t *wire_started_response_to_json(const wire_started_response *x, err_t *err)
{
        _cleanup_json_ json_t *o = new_object(err);
        if (!o)
                return NULL;
        if (put_bool(o, "ok", x->ok, err) < 0 ||
            put_str(o, "directive_id", x->directive_id, err) < 0 ||
            put_str(o, "state", x->state, err) < 0 ||
            put_bool(o, "duplicate", x->duplicate, err) < 0)
                return NULL;
        return steal_ptr(&o);
}

int wire_started_response_validate(const wire_started_response *x, err_t *err)
{
        if (check_id("directive_id", x->directive_id, true, err) < 0 ||
            check_token("state", x->state, true, WIRE_STATE_MAX, err) < 0)
                return -1;
        return 0;
}

/* ── directive heartbeat ───────────────────────────────────────────────────────────────── */

void wire_directive_heartbeat_request_free(wire_directive_heartbeat_request *x)
{
        if (!x)
                return;
        json_decrefp(&x->progress);
        FREE_AND_NULL(x->now);
        memset(x, 0, sizeof(*x));
}

int wire_directive_heartbeat_request_parse(const json_t *j, wire_directive_heartbeat_request *out,
                                           err_t *err)
{
        memset(out, 0, sizeof(*out));
        if (require_object(j, err) < 0 ||
            get_obj_copy(j, "progress", &out->progress, err) < 0 ||
            get_int(j, "last_output_seq", false, &out->last_output_seq,
                    &out->has_last_output_seq, err) < 0 ||
            get_str(j, "now", false, WIRE_TIMESTAMP_MAX, &out->now, err) < 0) {
                wire_directive_heartbeat_request_free(out);
                return -1;
        }
        return 0;
}

json_t *wire_directive_heartbeat_request_to_json(const wire_directive_heartbeat_request *x,
                                                 err_t *err)
{
        _cleanup_json_ json_t *o = new_object(err);
        if (!o)
                return NULL;
        if (put_copy(o, "progress", x->progress, err) < 0 ||
            (x->has_last_output_seq &&
             put_int(o, "last_output_seq", x->last_output_seq, err) < 0) ||
            put_str(o, "now", x->now, err) < 0)
                return NULL;
        return steal_ptr(&o);
}

int wire_directive_heartbeat_request_validate(const wire_directive_heartbeat_request *x,
                                              err_t *err)
{
        if (check_obj("progress", x->progress, err) < 0 ||
            (x->has_last_output_seq &&
             check_min("last_output_seq", x->last_output_seq, 0, err) < 0) ||
            check_ts("now", x->now, false, err) < 0)
                return -1;
        return 0;
}

void wire_directive_heartbeat_response_free(wire_directive_heartbeat_response *x)
{
        if (!x)
                return;
        FREE_AND_NULL(x->directive_token);
        memset(x, 0, sizeof(*x));
}

int wire_directive_heartbeat_response_parse(const json_t *j,
                                            wire_directive_heartbeat_response *out, err_t *err)
{
        memset(out, 0, sizeof(*out));
        if (require_object(j, err) < 0 ||
            get_bool(j, "cancel_requested", false, &out->cancel_requested, err) < 0 ||
            get_bool(j, "lease_renewed", false, &out->lease_renewed, err) < 0 ||
            get_str(j, "directive_token", false, WIRE_TOKEN_MAX, &out->directive_token,
                    err) < 0) {
                wire_directive_heartbeat_response_free(out);
                return -1;
        }
        return 0;
}

json_t *wire_directive_heartbeat_response_to_json(const wire_directive_heartbeat_response *x,
                                                  err_t *err)
{
        _cleanup_json_ json_t *o = new_object(err);
        if (!o)
                return NULL;
        if (put_bool(o, "cancel_requested", x->cancel_requested, err) < 0 ||
            put_bool(o, "lease_renewed", x->lease_renewed, err) < 0 ||
            put_str(o, "directive_token", x->directive_token, err) < 0)
                return NULL;
        return steal_ptr(&o);
}

int wire_directive_heartbeat_response_validate(const wire_directive_heartbeat_response *x,
                                               err_t *err)
{
        /* An empty token is allowed: nexus §5.11 simply keeps the current one. */
        return check_str("directive_token", x->directive_token, 0, WIRE_TOKEN_MAX, err);
}

/* ── log chunks ────────────────────────────────────────────────────────────────────────── */

void wire_log_chunk_request_free(wire_log_chunk_request *x)
{
        if (!x)
                return;
        FREE_AND_NULL(x->bytes);
        memset(x, 0, sizeof(*x));
}

int wire_log_chunk_request_parse_capped(const json_t *j, size_t max_bytes,
                                        wire_log_chunk_request *out, err_t *err)
{
        memset(out, 0, sizeof(*out));
        if (require_object(j, err) < 0 ||
            get_stream(j, "stream", &out->stream, err) < 0 ||
            get_int(j, "seq", true, &out->seq, NULL, err) < 0 ||
            get_b64(j, "bytes", true, max_bytes, &out->bytes, &out->bytes_len, err) < 0 ||
            get_bool(j, "truncated", false, &out->truncated, err) < 0) {
                wire_log_chunk_request_free(out);
                return -1;
        }
        return 0;
}

int wire_log_chunk_request_parse(const json_t *j, wire_log_chunk_request *out, err_t *err)
{
        return wire_log_chunk_request_parse_capped(j, WIRE_LOG_CHUNK_MAX_DEFAULT, out, err);
}

json_t *wire_log_chunk_request_to_json(const wire_log_chunk_request *x, err_t *err)
{
        _cleanup_json_ json_t *o = new_object(err);
        if (!o)
                return NULL;
        /* nexus §4.3: seq always present, truncated omitted when false. */
        if (put_enum(o, "stream", wire_stream_name(x->stream), true, err) < 0 ||
            put_int(o, "seq", x->seq, err) < 0 ||
            put_b64(o, "bytes", x->bytes, x->bytes_len, err) < 0 ||
            (x->truncated && put_bool(o, "truncated", true, err) < 0))
                return NULL;
        return steal_ptr(&o);
}

int wire_log_chunk_request_validate(const wire_log_chunk_request *x, err_t *err)
{
        if (check_stream("stream", x->stream, err) < 0 ||
            check_min("seq", x->seq, 0, err) < 0)
                return -1;
        if (x->bytes_len > 0 && !x->bytes)
                return err_set(err, "field \"bytes\" is missing its data");
        return 0;
}

void wire_log_chunk_response_free(wire_log_chunk_response *x)
{
        if (!x)
                return;
        FREE_AND_NULL(x->directive_id);
        memset(x, 0, sizeof(*x));
}

int wire_log_chunk_response_parse(const json_t *j, wire_log_chunk_response *out, err_t *err)
{
        memset(out, 0, sizeof(*out));
        if (require_object(j, err) < 0 ||
            get_bool(j, "ok", true, &out->ok, err) < 0 ||
            get_str(j, "directive_id", true, WIRE_ID_MAX, &out->directive_id, err) < 0 ||
            get_stream(j, "stream", &out->stream, err) < 0 ||
            get_int(j, "seq", true, &out->seq, NULL, err) < 0 ||
            get_bool(j, "stored", true, &out->stored, err) < 0 ||
            get_bool(j, "duplicate", true, &out->duplicate, err) < 0 ||
            get_int(j, "accepted_bytes", true, &out->accepted_bytes, NULL, err) < 0 ||
            get_bool(j, "truncated", true, &out->truncated, err) < 0) {
                wire_log_chunk_response_free(out);
                return -1;
        }
        return 0;
}

json_t *wire_log_chunk_response_to_json(const wire_log_chunk_response *x, err_t *err)
{
        _cleanup_json_ json_t *o = new_object(err);
        if (!o)
                return NULL;
        if (put_bool(o, "ok", x->ok, err) < 0 ||
            put_str(o, "directive_id", x->directive_id, err) < 0 ||
            put_enum(o, "stream", wire_stream_name(x->stream), true, err) < 0 ||
            put_int(o, "seq", x->seq, err) < 0 ||
            put_bool(o, "stored", x->stored, err) < 0 ||
            put_bool(o, "duplicate", x->duplicate, err) < 0 ||
            put_int(o, "accepted_bytes", x->accepted_bytes, err) < 0 ||
            put_bool(o, "truncated", x->truncated, err) < 0)
                return NULL;
        return steal_ptr(&o);
}

int wire_log_chunk_response_validate(const wire_log_chunk_response *x, err_t *err)
{
        if (check_id("directive_id", x->directive_id, true, err) < 0 ||
            check_stream("stream", x->stream, err) < 0 ||
            check_min("seq", x->seq, 0, err) < 0 ||
            check_min("accepted_bytes", x->accepted_bytes, 0, err) < 0)
                return -1;
        return 0;
}

/* ── finished ──────────────────────────────────────────────────────────────────────────── */

void wire_finished_request_free(wire_finished_request *x)
{
        if (!x)
                return;
        FREE_AND_NULL(x->snapshot_before);
        FREE_AND_NULL(x->snapshot_after);
        json_decrefp(&x->artifacts_manifest);
        FREE_AND_NULL(x->diff);
        FREE_AND_NULL(x->finished_at);
        memset(x, 0, sizeof(*x));
}

int wire_finished_request_parse_capped(const json_t *j, size_t max_diff,
                                       wire_finished_request *out, err_t *err)
{
        memset(out, 0, sizeof(*out));
        /* exit_code: absent and null both mean "unknown" (mothership §3.2.7). */
        if (require_object(j, err) < 0 ||
            get_int(j, "exit_code", false, &out->exit_code, &out->has_exit_code, err) < 0 ||
            get_status(j, "status", &out->status, err) < 0 ||
            get_bool(j, "stdout_truncated", false, &out->stdout_truncated, err) < 0 ||
            get_bool(j, "stderr_truncated", false, &out->stderr_truncated, err) < 0 ||
            get_bool(j, "diff_truncated", false, &out->diff_truncated, err) < 0 ||
            get_str(j, "snapshot_before", false, WIRE_SHORT_MAX, &out->snapshot_before, err) < 0 ||
            get_str(j, "snapshot_after", false, WIRE_SHORT_MAX, &out->snapshot_after, err) < 0 ||
            get_obj_copy(j, "artifacts_manifest", &out->artifacts_manifest, err) < 0 ||
            get_b64(j, "diff_base64", false, max_diff, &out->diff, &out->diff_len, err) < 0 ||
            get_str(j, "finished_at", false, WIRE_TIMESTAMP_MAX, &out->finished_at, err) < 0) {
                wire_finished_request_free(out);
                return -1;
        }
        return 0;
}

int wire_finished_request_parse(const json_t *j, wire_finished_request *out, err_t *err)
{
        return wire_finished_request_parse_capped(j, WIRE_DIFF_MAX_DEFAULT, out, err);
}

json_t *wire_finished_request_to_json(const wire_finished_request *x, err_t *err)
{
        _cleanup_json_ json_t *o = new_object(err);
        if (!o)
                return NULL;
        /* nexus §4.3: exit_code key always present; flags omitted when false; diff_base64
         * omitted when empty; artifacts_manifest always an object. */
        if (put(o, "exit_code", x->has_exit_code ? json_integer((json_int_t)x->exit_code)
                                                 : json_null(), err) < 0 ||
            put_enum(o, "status", wire_status_name(x->status), true, err) < 0 ||
            (x->stdout_truncated && put_bool(o, "stdout_truncated", true, err) < 0) ||
            (x->stderr_truncated && put_bool(o, "stderr_truncated", true, err) < 0) ||
            (x->diff_truncated && put_bool(o, "diff_truncated", true, err) < 0) ||
            put_str(o, "snapshot_before", x->snapshot_before, err) < 0 ||
            put_str(o, "snapshot_after", x->snapshot_after, err) < 0 ||
            put(o, "artifacts_manifest", x->artifacts_manifest
                                         ? json_deep_copy(x->artifacts_manifest)
                                         : json_object(), err) < 0 ||
            (x->diff_len > 0 && put_b64(o, "diff_base64", x->diff, x->diff_len, err) < 0) ||
            put_str(o, "finished_at", x->finished_at, err) < 0)
                return NULL;
        return steal_ptr(&o);
}

int wire_finished_request_validate(const wire_finished_request *x, err_t *err)
{
        if (!wire_status_name(x->status))
                return err_set(err, "field \"status\" must be succeeded/failed/canceled/"
                               "timed_out");
        /* The server stores exit_code in an int column (mothership §1.5). */
        if ((x->has_exit_code && check_range("exit_code", x->exit_code, INT32_MIN, INT32_MAX,
                                             err) < 0) ||
            check_str("snapshot_before", x->snapshot_before, 0, WIRE_SHORT_MAX, err) < 0 ||
            check_str("snapshot_after", x->snapshot_after, 0, WIRE_SHORT_MAX, err) < 0 ||
            check_obj("artifacts_manifest", x->artifacts_manifest, err) < 0 ||
            check_ts("finished_at", x->finished_at, false, err) < 0)
                return -1;
        if (x->diff_len > 0 && !x->diff)
                return err_set(err, "field \"diff_base64\" is missing its data");
        return 0;
}

int wire_finished_request_parse_text(const char *data, size_t len, wire_finished_request *out,
                                     err_t *err)
{
        memset(out, 0, sizeof(*out));
        _cleanup_json_ json_t *j = json_parse(data, len, true, err);
        if (!j)
                return -1;
        if (wire_finished_request_parse(j, out, err) < 0)
                return -1;
        if (wire_finished_request_validate(out, err) < 0) {
                wire_finished_request_free(out);
                return -1;
        }
        return 0;
}

void wire_finished_response_free(wire_finished_response *x)
{
        if (!x)
                return;
        FREE_AND_NULL(x->directive_id);
        FREE_AND_NULL(x->final_state);
        memset(x, 0, sizeof(*x));
}

int wire_finished_response_parse(const json_t *j, wire_finished_response *out, err_t *err)
{
        memset(out, 0, sizeof(*out));
        if (require_object(j, err) < 0 ||
            get_bool(j, "ok", true, &out->ok, err) < 0 ||
            get_str(j, "directive_id", true, WIRE_ID_MAX, &out->directive_id, err) < 0 ||
            get_str(j, "final_state", true, WIRE_STATE_MAX, &out->final_state, err) < 0 ||
            get_bool(j, "duplicate", true, &out->duplicate, err) < 0) {
                wire_finished_response_free(out);
                return -1;
        }
        return 0;
}

json_t *wire_finished_response_to_json(const wire_finished_response *x, err_t *err)
{
        _cleanup_json_ json_t *o = new_object(err);
        if (!o)
                return NULL;
        if (put_bool(o, "ok", x->ok, err) < 0 ||
            put_str(o, "directive_id", x->directive_id, err) < 0 ||
            put_str(o, "final_state", x->final_state, err) < 0 ||
            put_bool(o, "duplicate", x->duplicate, err) < 0)
                return NULL;
        return steal_ptr(&o);
}

int wire_finished_response_validate(const wire_finished_response *x, err_t *err)
{
        if (check_id("directive_id", x->directive_id, true, err) < 0 ||
            check_token("final_state", x->final_state, true, WIRE_STATE_MAX, err) < 0)
                return -1;
        return 0;
}
