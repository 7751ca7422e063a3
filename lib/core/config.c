/* core/config.c — see config.h.
 *
 * Pass 1 (walk_*) pulls libyaml events one at a time and follows the cyaml schema, so the walk
 * never goes deeper than the schema (plus CONFIG_MAX_DEPTH for skipped CYAML_IGNORE subtrees)
 * and stops at the first problem. It re-emits what it accepted into a capped buffer with every
 * scalar double-quoted and normalised, which pass 2 (cyaml_load_data) turns into a fresh
 * struct. The presence tree recorded by pass 1 then says which fields to move into dst. */
#include "core/config.h"
#include "core/str.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "core/buf.h"
#include "core/cleanup.h"

/* The re-emitted document: substitution can grow each scalar up to CONFIG_MAX_VALUE_BYTES and
 * double-quoting escapes control bytes, so the input cap alone does not bound it. */
#define CONFIG_MAX_EMIT_BYTES (16u * 1024 * 1024)
#define CONFIG_PATH_MAX 256      /* key path shown in messages ("poll.long_poll_timeout") */
#define CONFIG_MSG_VALUE_MAX 80  /* a value quoted in a message is cut after this */
#define CONFIG_VAR_NAME_MAX 255

static const cyaml_schema_field_t config_kv_fields[] = {
        CYAML_FIELD_STRING_PTR("key", CYAML_FLAG_POINTER, config_kv, key, 0, CYAML_UNLIMITED),
        CYAML_FIELD_STRING_PTR("value", CYAML_FLAG_POINTER, config_kv, value, 0, CYAML_UNLIMITED),
        CYAML_FIELD_END
};

const cyaml_schema_value_t config_string_map_entry = {
        CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, config_kv, config_kv_fields),
};

/* Schema of one string-map value, for the scalar checks. */
static const cyaml_schema_value_t config_map_value_schema = {
        CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, CYAML_UNLIMITED),
};

/* Which keys of a mapping the document set; children exist for mapping-typed fields. */
struct presence {
        bool present;
        struct presence *children;
        size_t nchildren;
};

struct walk {
        const char *name;
        const char *data;
        size_t len;
        yaml_parser_t parser;
        yaml_emitter_t emitter;
        buf out;
        bool out_overflow;
        unsigned depth;
        char path[CONFIG_PATH_MAX];
        size_t path_len;
        err_t *err;
};

/* ---- small helpers ---------------------------------------------------------------------- */

static void presence_free(struct presence *nodes, size_t n)
{
        if (!nodes)
                return;
        for (size_t i = 0; i < n; i++) {
                presence_free(nodes[i].children, nodes[i].nchildren);
                FREE_AND_NULL(nodes[i].children);
        }
}

static size_t fields_count(const cyaml_schema_field_t *fields)
{
        size_t n = 0;
        while (fields && fields[n].key)
                n++;
        return n;
}

static void event_freep(yaml_event_t *ev)
{
        yaml_event_delete(ev);   /* zeroes the event: a second delete is harmless */
}
#define _cleanup_event_ __attribute__((cleanup(event_freep)))

/* Copies s into out for a message: control bytes escaped or replaced, cut with "...". */
static const char *msg_value(char *out, size_t outsz, const char *s, size_t len)
{
        size_t o = 0;
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)s[i];
                if (o + 6 >= outsz) {
                        memcpy(out + o, "...", 3);
                        o += 3;
                        break;
                }
                if (c == '\n' || c == '\t' || c == '"' || c == '\\') {
                        out[o++] = '\\';
                        out[o++] = c == '\n' ? 'n' : c == '\t' ? 't' : (char)c;
                } else if (c < 0x20 || c == 0x7f) {
                        out[o++] = '?';
                } else {
                        out[o++] = (char)c;
                }
        }
        out[o] = '\0';
        return out;
}

static void *ptr_get(const char *slot)
{
        void *p;
        memcpy(&p, slot, sizeof(p));
        return p;
}

static void ptr_set(char *slot, void *p)
{
        memcpy(slot, &p, sizeof(p));
}

static uint64_t count_get(const char *slot, uint8_t size)
{
        uint8_t u8; uint16_t u16; uint32_t u32; uint64_t u64;
        switch (size) {
        case 1: memcpy(&u8, slot, 1); return u8;
        case 2: memcpy(&u16, slot, 2); return u16;
        case 4: memcpy(&u32, slot, 4); return u32;
        case 8: memcpy(&u64, slot, 8); return u64;
        default: return 0;
        }
}

static void count_set(char *slot, uint8_t size, uint64_t v)
{
        uint8_t u8 = (uint8_t)v; uint16_t u16 = (uint16_t)v; uint32_t u32 = (uint32_t)v;
        switch (size) {
        case 1: memcpy(slot, &u8, 1); break;
        case 2: memcpy(slot, &u16, 2); break;
        case 4: memcpy(slot, &u32, 4); break;
        case 8: memcpy(slot, &v, 8); break;
        default: break;
        }
}

/* ---- freeing ---------------------------------------------------------------------------- */

static void free_mapping_contents(const cyaml_schema_field_t *fields, char *data);

static void free_value_contents(const cyaml_schema_value_t *schema, char *data)
{
        if (schema->type == CYAML_MAPPING && schema->mapping.fields)
                free_mapping_contents(schema->mapping.fields, data);
}

/* slot holds the value itself, or a pointer to it when the schema says CYAML_FLAG_POINTER. */
static void free_value(const cyaml_schema_value_t *schema, char *slot)
{
        if (schema->flags & CYAML_FLAG_POINTER) {
                char *p = ptr_get(slot);
                if (p) {
                        free_value_contents(schema, p);
                        free(p);
                }
                ptr_set(slot, NULL);
        } else {
                free_value_contents(schema, slot);
        }
}

static void free_field(const cyaml_schema_field_t *f, char *base)
{
        char *slot = base + f->data_offset;
        if (f->value.type == CYAML_SEQUENCE) {
                const cyaml_schema_value_t *entry = f->value.sequence.entry;
                char *arr = ptr_get(slot);
                uint64_t n = count_get(base + f->count_offset, f->count_size);
                if (arr && entry) {
                        size_t stride = (entry->flags & CYAML_FLAG_POINTER) ?
                                        sizeof(void *) : entry->data_size;
                        for (uint64_t i = 0; i < n; i++)
                                free_value(entry, arr + i * stride);
                }
                free(arr);
                ptr_set(slot, NULL);
                count_set(base + f->count_offset, f->count_size, 0);
                return;
        }
        free_value(&f->value, slot);
}

static void free_mapping_contents(const cyaml_schema_field_t *fields, char *data)
{
        for (size_t i = 0; fields[i].key; i++)
                free_field(&fields[i], data);
}

void config_free(const cyaml_schema_value_t *top_schema, void *dst)
{
        if (!top_schema || !dst || top_schema->type != CYAML_MAPPING || !top_schema->mapping.fields)
                return;
        free_mapping_contents(top_schema->mapping.fields, dst);
}

const char *config_kv_get(const config_kv *kv, unsigned count, const char *key)
{
        if (!kv || !key)
                return NULL;
        for (unsigned i = 0; i < count; i++)
                if (kv[i].key && strcmp(kv[i].key, key) == 0)
                        return kv[i].value;
        return NULL;
}

/* ---- schema check: refuse what the loader cannot overlay or free, before touching data -- */

static int schema_check_value(const cyaml_schema_value_t *v, const char *key, unsigned depth,
                              err_t *err);

static int schema_check_fields(const cyaml_schema_field_t *fields, unsigned depth, err_t *err)
{
        if (!fields)
                return err_setc(err, ERR_INTERNAL, "config schema: mapping without fields");
        for (size_t i = 0; fields[i].key; i++) {
                const cyaml_schema_field_t *f = &fields[i];
                if (f->value.type == CYAML_SEQUENCE) {
                        if (!(f->value.flags & CYAML_FLAG_POINTER))
                                return err_setc(err, ERR_INTERNAL,
                                                "config schema: sequence \"%s\" needs CYAML_FLAG_POINTER",
                                                f->key);
                        if (f->count_size != 1 && f->count_size != 2 && f->count_size != 4 &&
                            f->count_size != 8)
                                return err_setc(err, ERR_INTERNAL,
                                                "config schema: sequence \"%s\" has a %u-byte count",
                                                f->key, (unsigned)f->count_size);
                }
                if (schema_check_value(&f->value, f->key, depth, err) < 0)
                        return -1;
        }
        return 0;
}

static int schema_check_value(const cyaml_schema_value_t *v, const char *key, unsigned depth,
                              err_t *err)
{
        if (depth > CONFIG_MAX_DEPTH)
                return err_setc(err, ERR_INTERNAL, "config schema: \"%s\" nests deeper than %d",
                                key, CONFIG_MAX_DEPTH);
        switch (v->type) {
        case CYAML_INT:
        case CYAML_UINT:
                if (v->data_size != 1 && v->data_size != 2 && v->data_size != 4 &&
                    v->data_size != 8)
                        return err_setc(err, ERR_INTERNAL,
                                        "config schema: \"%s\" is a %u-byte integer", key,
                                        (unsigned)v->data_size);
                return 0;
        case CYAML_FLOAT:
                if (v->data_size != sizeof(float) && v->data_size != sizeof(double))
                        return err_setc(err, ERR_INTERNAL,
                                        "config schema: \"%s\" is a %u-byte float", key,
                                        (unsigned)v->data_size);
                return 0;
        case CYAML_ENUM:
                if (!v->enumeration.strings || v->enumeration.count == 0)
                        return err_setc(err, ERR_INTERNAL, "config schema: enum \"%s\" is empty",
                                        key);
                return 0;
        case CYAML_BOOL:
        case CYAML_STRING:
        case CYAML_IGNORE:
                return 0;
        case CYAML_MAPPING:
                return schema_check_fields(v->mapping.fields, depth + 1, err);
        case CYAML_SEQUENCE:
                if (!v->sequence.entry)
                        return err_setc(err, ERR_INTERNAL,
                                        "config schema: sequence \"%s\" has no entry schema", key);
                if (v->sequence.entry->type == CYAML_SEQUENCE ||
                    v->sequence.entry->type == CYAML_IGNORE)
                        return err_setc(err, ERR_INTERNAL,
                                        "config schema: sequence \"%s\" has unsupported entries",
                                        key);
                return schema_check_value(v->sequence.entry, key, depth + 1, err);
        case CYAML_FLAGS:
        case CYAML_BITFIELD:
        case CYAML_SEQUENCE_FIXED:
        default:
                return err_setc(err, ERR_INTERNAL,
                                "config schema: \"%s\" has a type the loader does not support (%d)",
                                key, (int)v->type);
        }
}

/* ---- pass 1: errors --------------------------------------------------------------------- */

static int walk_fail(struct walk *w, const yaml_mark_t *m, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static int walk_fail(struct walk *w, const yaml_mark_t *m, const char *fmt, ...)
{
        char msg[ERR_MSG_MAX];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(msg, sizeof(msg), fmt, ap);   /* truncation is the intended bound */
        va_end(ap);
        (void)n;
        return err_set(w->err, "%s:%zu:%zu: %s", w->name, m->line + 1, m->column + 1, msg);
}

/* Same, prefixed with the key path of the value being read. */
static int walk_fail_key(struct walk *w, const yaml_mark_t *m, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static int walk_fail_key(struct walk *w, const yaml_mark_t *m, const char *fmt, ...)
{
        char msg[ERR_MSG_MAX];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        (void)n;
        return walk_fail(w, m, "key \"%s\": %s", w->path, msg);
}

static int walk_parser_error(struct walk *w)
{
        const yaml_parser_t *p = &w->parser;
        const char *problem = p->problem ? p->problem : "unknown YAML error";
        if (p->error == YAML_MEMORY_ERROR)
                return err_errno(w->err, ENOMEM, "%s: parse", w->name);
        if (p->error == YAML_READER_ERROR) {
                /* Reader errors (bad encoding) carry a byte offset, not a mark. */
                size_t off = p->problem_offset < w->len ? p->problem_offset : w->len;
                size_t line = 1, col = 1;
                for (size_t i = 0; i < off; i++) {
                        if (w->data[i] == '\n') {
                                line++;
                                col = 1;
                        } else {
                                col++;
                        }
                }
                return err_set(w->err, "%s:%zu:%zu: %s", w->name, line, col, problem);
        }
        if (p->context)
                return err_set(w->err, "%s:%zu:%zu: %s (%s at line %zu)", w->name,
                               p->problem_mark.line + 1, p->problem_mark.column + 1, problem,
                               p->context, p->context_mark.line + 1);
        return err_set(w->err, "%s:%zu:%zu: %s", w->name, p->problem_mark.line + 1,
                       p->problem_mark.column + 1, problem);
}

/* Pulls the next event; refuses aliases, anchors and explicit tags. */
static int walk_next(struct walk *w, yaml_event_t *ev)
{
        char q[CONFIG_MSG_VALUE_MAX];
        const yaml_char_t *anchor = NULL, *tag = NULL;
        if (!yaml_parser_parse(&w->parser, ev))
                return walk_parser_error(w);
        switch (ev->type) {
        case YAML_ALIAS_EVENT:
                anchor = ev->data.alias.anchor;
                walk_fail(w, &ev->start_mark, "alias \"*%s\": aliases are not supported",
                          anchor ? msg_value(q, sizeof(q), (const char *)anchor,
                                             strlen((const char *)anchor)) : "");
                yaml_event_delete(ev);
                return -1;
        case YAML_SCALAR_EVENT:
                anchor = ev->data.scalar.anchor;
                tag = ev->data.scalar.tag;
                break;
        case YAML_SEQUENCE_START_EVENT:
                anchor = ev->data.sequence_start.anchor;
                tag = ev->data.sequence_start.tag;
                break;
        case YAML_MAPPING_START_EVENT:
                anchor = ev->data.mapping_start.anchor;
                tag = ev->data.mapping_start.tag;
                break;
        default:
                break;
        }
        if (anchor) {
                /* Anchors are only useful with aliases, which are refused (billion laughs). */
                walk_fail(w, &ev->start_mark,
                          "anchor \"&%s\": anchors and aliases are not supported",
                          msg_value(q, sizeof(q), (const char *)anchor,
                                    strlen((const char *)anchor)));
                yaml_event_delete(ev);
                return -1;
        }
        if (tag) {
                walk_fail(w, &ev->start_mark, "tag \"%s\" is not supported",
                          msg_value(q, sizeof(q), (const char *)tag, strlen((const char *)tag)));
                yaml_event_delete(ev);
                return -1;
        }
        return 0;
}

/* ---- pass 1: emitting ------------------------------------------------------------------- */

static int walk_write(void *data, unsigned char *bytes, size_t size)
{
        struct walk *w = data;
        if (buf_append(&w->out, bytes, size) < 0) {
                w->out_overflow = errno == EMSGSIZE;
                return 0;
        }
        return 1;
}

/* Emits ev (always consumed, even on failure, as libyaml documents). */
static int walk_emit_error(struct walk *w)
{
        if (w->out_overflow)
                return err_setc(w->err, ERR_TOO_LARGE,
                                "%s: document is larger than %u bytes after substitution",
                                w->name, CONFIG_MAX_EMIT_BYTES);
        if (w->emitter.error == YAML_MEMORY_ERROR || w->emitter.error == YAML_WRITER_ERROR)
                return err_errno(w->err, ENOMEM, "%s: re-emit document", w->name);
        return err_setc(w->err, ERR_INTERNAL, "%s: re-emit document: %s", w->name,
                        w->emitter.problem ? w->emitter.problem : "emitter error");
}

static int walk_emit(struct walk *w, yaml_event_t *ev)
{
        if (yaml_emitter_emit(&w->emitter, ev))
                return 0;
        return walk_emit_error(w);
}

static int walk_emit_failed_init(struct walk *w)
{
        return err_errno(w->err, ENOMEM, "%s: re-emit document", w->name);
}

static int walk_emit_scalar(struct walk *w, const char *s, size_t len)
{
        yaml_event_t ev;
        /* Double-quoted style can spell any string, so a value stays one scalar whatever it
         * holds (newlines, quotes, ": ", "- ", "#"): this is what keeps substitution from
         * changing the document's structure. */
        if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (const yaml_char_t *)s, (int)len, 1,
                                          1, YAML_DOUBLE_QUOTED_SCALAR_STYLE))
                return walk_emit_failed_init(w);
        return walk_emit(w, &ev);
}

static int walk_emit_mapping_start(struct walk *w)
{
        yaml_event_t ev;
        if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_ANY_MAPPING_STYLE))
                return walk_emit_failed_init(w);
        return walk_emit(w, &ev);
}

static int walk_emit_mapping_end(struct walk *w)
{
        yaml_event_t ev;
        if (!yaml_mapping_end_event_initialize(&ev))
                return walk_emit_failed_init(w);
        return walk_emit(w, &ev);
}

static int walk_emit_sequence_start(struct walk *w)
{
        yaml_event_t ev;
        if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_ANY_SEQUENCE_STYLE))
                return walk_emit_failed_init(w);
        return walk_emit(w, &ev);
}

static int walk_emit_sequence_end(struct walk *w)
{
        yaml_event_t ev;
        if (!yaml_sequence_end_event_initialize(&ev))
                return walk_emit_failed_init(w);
        return walk_emit(w, &ev);
}

/* ---- pass 1: key path ------------------------------------------------------------------- */

static size_t path_push_key(struct walk *w, const char *key, size_t len)
{
        size_t saved = w->path_len;
        char q[CONFIG_MSG_VALUE_MAX];
        msg_value(q, sizeof(q), key, len);
        int n = snprintf(w->path + saved, sizeof(w->path) - saved, "%s%s", saved ? "." : "", q);
        if (n > 0)
                w->path_len = strnlen(w->path, sizeof(w->path) - 1);
        return saved;
}

static size_t path_push_index(struct walk *w, unsigned idx)
{
        size_t saved = w->path_len;
        int n = snprintf(w->path + saved, sizeof(w->path) - saved, "[%u]", idx);
        if (n > 0)
                w->path_len = strnlen(w->path, sizeof(w->path) - 1);
        return saved;
}

static void path_pop(struct walk *w, size_t saved)
{
        w->path_len = saved;
        w->path[saved] = '\0';
}

/* ---- pass 1: scalars -------------------------------------------------------------------- */

static bool scalar_is_null(const yaml_event_t *ev)
{
        const char *v = (const char *)ev->data.scalar.value;
        size_t n = ev->data.scalar.length;
        if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
                return false;
        return n == 0 || (n == 1 && v[0] == '~') ||
               (n == 4 && (memcmp(v, "null", 4) == 0 || memcmp(v, "Null", 4) == 0 ||
                           memcmp(v, "NULL", 4) == 0));
}

static const char *describe_event(const yaml_event_t *ev, char *q, size_t qsz)
{
        switch (ev->type) {
        case YAML_MAPPING_START_EVENT:
                return "a mapping";
        case YAML_SEQUENCE_START_EVENT:
                return "a sequence";
        case YAML_SCALAR_EVENT: {
                char inner[CONFIG_MSG_VALUE_MAX];
                msg_value(inner, sizeof(inner), (const char *)ev->data.scalar.value,
                          ev->data.scalar.length);
                int n = snprintf(q, qsz, "\"%s\"", inner);
                (void)n;
                return q;
        }
        default:
                return "something else";
        }
}

static bool var_name_valid(const char *s, size_t n)
{
        if (n == 0 || n > CONFIG_VAR_NAME_MAX)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
                if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
                        return false;
        }
        return true;
}

static int subst_append(struct walk *w, const yaml_mark_t *m, buf *out, const char *s, size_t n)
{
        if (buf_append(out, s, n) == 0)
                return 0;
        if (errno == EMSGSIZE)
                return walk_fail_key(w, m, "value is longer than %d bytes after substitution",
                                     CONFIG_MAX_VALUE_BYTES);
        return err_errno(w->err, ENOMEM, "%s: substitute", w->name);
}

/* ${NAME}, ${NAME:-default}, $$ (see config.h). Applied to the parsed scalar, never to the
 * raw text, so whatever a variable holds it is only ever part of this one value. */
static int subst(struct walk *w, const yaml_event_t *ev, buf *out)
{
        const char *s = (const char *)ev->data.scalar.value;
        size_t n = ev->data.scalar.length;
        const yaml_mark_t *m = &ev->start_mark;
        char q[CONFIG_MSG_VALUE_MAX];
        size_t i = 0;
        while (i < n) {
                const char *dollar = memchr(s + i, '$', n - i);
                size_t lit = dollar ? (size_t)(dollar - (s + i)) : n - i;
                if (subst_append(w, m, out, s + i, lit) < 0)
                        return -1;
                i += lit;
                if (!dollar)
                        break;
                if (i + 1 < n && s[i + 1] == '$') {
                        if (subst_append(w, m, out, "$", 1) < 0)
                                return -1;
                        i += 2;
                        continue;
                }
                if (i + 1 >= n || s[i + 1] != '{') {
                        /* A '$' not starting "${" or "$$" is just a dollar sign. */
                        if (subst_append(w, m, out, "$", 1) < 0)
                                return -1;
                        i++;
                        continue;
                }
                const char *inner = s + i + 2;
                const char *close = memchr(inner, '}', n - i - 2);
                if (!close)
                        return walk_fail_key(w, m,
                                             "unterminated \"${\" (write \"$$\" for a literal '$')");
                size_t ilen = (size_t)(close - inner), nlen = ilen;
                const char *def = NULL;
                size_t dlen = 0;
                const char *sep = memmem(inner, ilen, ":-", 2);
                if (sep) {
                        nlen = (size_t)(sep - inner);
                        def = sep + 2;
                        dlen = ilen - nlen - 2;
                }
                if (!var_name_valid(inner, nlen))
                        return walk_fail_key(w, m,
                                             "invalid variable reference \"${%s}\" (a name matches "
                                             "[A-Za-z_][A-Za-z0-9_]*, a default is ${NAME:-text})",
                                             msg_value(q, sizeof(q), inner, ilen));
                char name[CONFIG_VAR_NAME_MAX + 1];
                memcpy(name, inner, nlen);
                name[nlen] = '\0';
                const char *val = getenv(name);
                if (def && (!val || !*val)) {
                        if (subst_append(w, m, out, def, dlen) < 0)
                                return -1;
                } else if (!val) {
                        /* Safer than the reference (spec nexus §2.2), which substitutes "":
                         * a misspelt or forgotten variable must not silently empty a setting. */
                        return walk_fail_key(w, m,
                                             "environment variable \"%s\" is not set "
                                             "(use ${%s:-default} to allow that)", name, name);
                } else if (subst_append(w, m, out, val, strlen(val)) < 0) {
                        return -1;
                }
                i = (size_t)(close - s) + 1;
        }
        return 0;
}

/* Strict decimal: optional sign, digits only. Returns 0, -EINVAL or -ERANGE. */
static int parse_decimal(const char *s, size_t n, bool *neg, uint64_t *mag)
{
        size_t i = 0;
        uint64_t v = 0;
        *neg = false;
        if (i < n && (s[i] == '-' || s[i] == '+')) {
                *neg = s[i] == '-';
                i++;
        }
        if (i == n)
                return -EINVAL;
        for (; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                unsigned d = (unsigned)(s[i] - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }
        *mag = v;
        return 0;
}

static int walk_int(struct walk *w, const cyaml_schema_value_t *schema, const yaml_mark_t *m,
                    const char *s, size_t n, char *norm, size_t normsz)
{
        char q[CONFIG_MSG_VALUE_MAX];
        bool neg;
        uint64_t mag = 0;
        unsigned bits = schema->data_size * 8;
        int r = parse_decimal(s, n, &neg, &mag);
        if (r == -EINVAL)
                return walk_fail_key(w, m, "expected an integer, got \"%s\"",
                                     msg_value(q, sizeof(q), s, n));
        if (neg && mag == 0)
                neg = false;
        if (schema->type == CYAML_INT) {
                uint64_t max = (UINT64_C(1) << (bits - 1)) - 1;
                int64_t min = bits == 64 ? INT64_MIN : -(INT64_C(1) << (bits - 1));
                if (r < 0 || (neg ? mag > max + 1 : mag > max))
                        return walk_fail_key(w, m, "integer %s out of range %" PRId64 "..%" PRIu64,
                                             msg_value(q, sizeof(q), s, n), min, max);
        } else {
                uint64_t max = bits == 64 ? UINT64_MAX : (UINT64_C(1) << bits) - 1;
                if (r < 0 || neg || mag > max)
                        return walk_fail_key(w, m, "integer %s out of range 0..%" PRIu64,
                                             msg_value(q, sizeof(q), s, n), max);
        }
        int k = snprintf(norm, normsz, "%s%" PRIu64, neg ? "-" : "", mag);
        return k > 0 && (size_t)k < normsz ? 0 : err_setc(w->err, ERR_INTERNAL, "format integer");
}

static int walk_bool(struct walk *w, const yaml_mark_t *m, const char *s, size_t n,
                     const char **norm)
{
        static const char *const yes[] = { "true", "yes", "on" };
        static const char *const no[] = { "false", "no", "off" };
        char q[CONFIG_MSG_VALUE_MAX];
        for (size_t i = 0; i < 3; i++) {
                if (strlen(yes[i]) == n && strncasecmp(s, yes[i], n) == 0) {
                        *norm = "true";
                        return 0;
                }
                if (strlen(no[i]) == n && strncasecmp(s, no[i], n) == 0) {
                        *norm = "false";
                        return 0;
                }
        }
        return walk_fail_key(w, m, "expected a boolean (true/false/yes/no/on/off), got \"%s\"",
                             msg_value(q, sizeof(q), s, n));
}

static int walk_enum(struct walk *w, const cyaml_schema_value_t *schema, const yaml_mark_t *m,
                     const char *s, size_t n, const char **norm)
{
        char q[CONFIG_MSG_VALUE_MAX];
        bool icase = schema->flags & CYAML_FLAG_CASE_INSENSITIVE;
        for (uint32_t i = 0; i < schema->enumeration.count; i++) {
                const char *e = schema->enumeration.strings[i].str;
                if (!e || strlen(e) != n)
                        continue;
                if (icase ? strncasecmp(e, s, n) == 0 : memcmp(e, s, n) == 0) {
                        *norm = e;
                        return 0;
                }
        }
        _cleanup_buf_ buf list = BUF_INIT(512);
        for (uint32_t i = 0; i < schema->enumeration.count; i++) {
                const char *e = schema->enumeration.strings[i].str;
                if (e && buf_appendf(&list, "%s\"%s\"", i ? ", " : "", e) < 0)
                        break;   /* a long list is cut: the message stays bounded */
        }
        return walk_fail_key(w, m, "expected one of %s, got \"%s\"",
                             list.data ? list.data : "", msg_value(q, sizeof(q), s, n));
}

static int walk_float(struct walk *w, const cyaml_schema_value_t *schema, const yaml_mark_t *m,
                      const char *s, size_t n, char *norm, size_t normsz)
{
        char q[CONFIG_MSG_VALUE_MAX];
        char *end = NULL;
        /* s is NUL-terminated (it lives in a buf) and holds no NUL byte. */
        bool space = n > 0 && (s[0] == ' ' || s[0] == '\t' || s[0] == '\n' || s[0] == '\r' ||
                               s[0] == '\f' || s[0] == '\v');
        errno = 0;
        double d = n > 0 && !space ? strtod(s, &end) : 0.0;
        if (n == 0 || space || end != s + n || errno == ERANGE || !isfinite(d))
                return walk_fail_key(w, m, "expected a number, got \"%s\"",
                                     msg_value(q, sizeof(q), s, n));
        if (schema->data_size == sizeof(float) && (d > FLT_MAX || d < -FLT_MAX))
                return walk_fail_key(w, m, "number %s out of range for this key",
                                     msg_value(q, sizeof(q), s, n));
        int k = snprintf(norm, normsz, "%.17g", d);
        return k > 0 && (size_t)k < normsz ? 0 : err_setc(w->err, ERR_INTERNAL, "format number");
}

/* Reads one scalar value ev for schema: substitutes, converts, checks, emits it normalised. */
static int walk_scalar(struct walk *w, const cyaml_schema_value_t *schema, const yaml_event_t *ev)
{
        _cleanup_buf_ buf val = BUF_INIT(CONFIG_MAX_VALUE_BYTES);
        const yaml_mark_t *m = &ev->start_mark;
        char q[CONFIG_MSG_VALUE_MAX];
        /* An empty or null plain value ("key:" / "key: ~") reads as "". */
        if (!scalar_is_null(ev) && subst(w, ev, &val) < 0)
                return -1;
        if (subst_append(w, m, &val, "", 0) < 0)   /* makes val.data a C string */
                return -1;
        const char *s = val.data;
        size_t n = val.len;
        if (memchr(s, '\0', n))
                return walk_fail_key(w, m, "value contains a NUL byte");
        if (!str_utf8_valid(s, n))
                return walk_fail_key(w, m, "value is not valid UTF-8");

        char norm[64];
        const char *out = s;
        switch (schema->type) {
        case CYAML_INT:
        case CYAML_UINT:
                if (walk_int(w, schema, m, s, n, norm, sizeof(norm)) < 0)
                        return -1;
                out = norm;
                break;
        case CYAML_BOOL:
                if (walk_bool(w, m, s, n, &out) < 0)
                        return -1;
                break;
        case CYAML_ENUM:
                if (walk_enum(w, schema, m, s, n, &out) < 0)
                        return -1;
                break;
        case CYAML_FLOAT:
                if (walk_float(w, schema, m, s, n, norm, sizeof(norm)) < 0)
                        return -1;
                out = norm;
                break;
        case CYAML_STRING: {
                uint32_t max = schema->string.max;
                if (!(schema->flags & CYAML_FLAG_POINTER) && schema->data_size > 0 &&
                    max > schema->data_size - 1)
                        max = schema->data_size - 1;
                if (n > max)
                        return walk_fail_key(w, m, "\"%s\" is %zu bytes, longer than the "
                                             "limit of %" PRIu32,
                                             msg_value(q, sizeof(q), s, n), n, max);
                if (n < schema->string.min)
                        return walk_fail_key(w, m, "\"%s\" is %zu bytes, shorter than the "
                                             "minimum of %" PRIu32,
                                             msg_value(q, sizeof(q), s, n), n,
                                             schema->string.min);
                break;
        }
        default:
                return err_setc(w->err, ERR_INTERNAL, "%s: key \"%s\": unsupported schema type %d",
                                w->name, w->path, (int)schema->type);
        }
        return walk_emit_scalar(w, out, strlen(out));   /* s holds no NUL: strlen is n */
}

/* ---- pass 1: structure ------------------------------------------------------------------ */

static int walk_value(struct walk *w, const cyaml_schema_value_t *schema, struct presence *node,
                      const yaml_event_t *ev);

static int walk_depth_enter(struct walk *w, const yaml_mark_t *m)
{
        if (w->depth >= CONFIG_MAX_DEPTH)
                return walk_fail(w, m, "nesting deeper than %d levels", CONFIG_MAX_DEPTH);
        w->depth++;
        return 0;
}

/* Consumes the rest of the node that starts with ev (a CYAML_IGNORE field's value). */
static int walk_skip(struct walk *w, const yaml_event_t *ev)
{
        if (ev->type == YAML_SCALAR_EVENT)
                return 0;
        unsigned saved = w->depth;
        if (walk_depth_enter(w, &ev->start_mark) < 0)
                return -1;
        while (w->depth > saved) {
                _cleanup_event_ yaml_event_t e = { .type = YAML_NO_EVENT };
                if (walk_next(w, &e) < 0)
                        return -1;
                if (e.type == YAML_MAPPING_START_EVENT || e.type == YAML_SEQUENCE_START_EVENT) {
                        if (walk_depth_enter(w, &e.start_mark) < 0)
                                return -1;
                } else if (e.type == YAML_MAPPING_END_EVENT ||
                           e.type == YAML_SEQUENCE_END_EVENT) {
                        w->depth--;
                }
        }
        return 0;
}

static const char *expected_name(const cyaml_schema_value_t *schema)
{
        switch (schema->type) {
        case CYAML_INT:
        case CYAML_UINT:
                return "an integer";
        case CYAML_BOOL:
                return "a boolean";
        case CYAML_ENUM:
        case CYAML_STRING:
                return "a string";
        case CYAML_FLOAT:
                return "a number";
        case CYAML_MAPPING:
                return "a mapping";
        case CYAML_SEQUENCE:
                return schema->sequence.entry == &config_string_map_entry ?
                       "a mapping of strings" : "a sequence";
        default:
                return "a value";
        }
}

static int walk_wrong_kind(struct walk *w, const cyaml_schema_value_t *schema,
                           const yaml_event_t *ev)
{
        char q[CONFIG_MSG_VALUE_MAX + 2];
        return walk_fail_key(w, &ev->start_mark, "expected %s, got %s", expected_name(schema),
                             describe_event(ev, q, sizeof(q)));
}

/* ev is the MAPPING_START; the mapping's fields are recorded in node (may be NULL). */
static int walk_mapping(struct walk *w, const cyaml_schema_value_t *schema,
                        struct presence *node, const yaml_event_t *start)
{
        const cyaml_schema_field_t *fields = schema->mapping.fields;
        size_t nf = fields_count(fields);
        bool icase = schema->flags & CYAML_FLAG_CASE_INSENSITIVE;
        char q[CONFIG_MSG_VALUE_MAX];
        char where[CONFIG_PATH_MAX + 8] = "";
        struct presence *seen = calloc(nf ? nf : 1, sizeof(*seen));
        if (!seen)
                return err_errno(w->err, ENOMEM, "%s: parse", w->name);
        if (node) {
                node->children = seen;   /* the tree owns it from here */
                node->nchildren = nf;
        }
        int r = -1;
        if (w->path_len) {
                int k = snprintf(where, sizeof(where), " in \"%s\"", w->path);
                (void)k;
        }
        if (walk_depth_enter(w, &start->start_mark) < 0)
                goto out;
        if (walk_emit_mapping_start(w) < 0)
                goto out;
        for (;;) {
                _cleanup_event_ yaml_event_t k = { .type = YAML_NO_EVENT };
                _cleanup_event_ yaml_event_t v = { .type = YAML_NO_EVENT };
                if (walk_next(w, &k) < 0)
                        goto out;
                if (k.type == YAML_MAPPING_END_EVENT)
                        break;
                if (k.type != YAML_SCALAR_EVENT) {
                        walk_fail(w, &k.start_mark, "mapping keys must be plain strings%s",
                                  where);
                        goto out;
                }
                const char *key = (const char *)k.data.scalar.value;
                size_t klen = k.data.scalar.length;
                size_t i;
                for (i = 0; i < nf; i++) {
                        if (strlen(fields[i].key) != klen)
                                continue;
                        if (icase ? strncasecmp(fields[i].key, key, klen) == 0 :
                                    memcmp(fields[i].key, key, klen) == 0)
                                break;
                }
                if (i == nf) {
                        walk_fail(w, &k.start_mark, "unknown key \"%s\"%s",
                                  msg_value(q, sizeof(q), key, klen), where);
                        goto out;
                }
                if (seen[i].present) {
                        walk_fail(w, &k.start_mark, "duplicate key \"%s\"%s", fields[i].key,
                                  where);
                        goto out;
                }
                seen[i].present = true;
                if (walk_next(w, &v) < 0)
                        goto out;
                if (fields[i].value.type == CYAML_IGNORE) {
                        if (walk_skip(w, &v) < 0)
                                goto out;
                        continue;
                }
                if (walk_emit_scalar(w, fields[i].key, strlen(fields[i].key)) < 0)
                        goto out;
                size_t saved = path_push_key(w, fields[i].key, strlen(fields[i].key));
                int vr = walk_value(w, &fields[i].value, &seen[i], &v);
                path_pop(w, saved);
                if (vr < 0)
                        goto out;
        }
        for (size_t i = 0; i < nf; i++) {
                /* libcyaml would refuse the document without them; say which and where. */
                if (!seen[i].present && !(fields[i].value.flags & CYAML_FLAG_OPTIONAL) &&
                    fields[i].value.type != CYAML_IGNORE) {
                        walk_fail(w, &start->start_mark, "missing required key \"%s\"%s",
                                  fields[i].key, where);
                        goto out;
                }
        }
        if (walk_emit_mapping_end(w) < 0)
                goto out;
        w->depth--;
        r = 0;
out:
        if (!node) {
                presence_free(seen, nf);
                free(seen);
        }
        return r;
}

static int walk_string_map(struct walk *w, const cyaml_schema_value_t *schema,
                           const yaml_event_t *start)
{
        uint32_t max = schema->sequence.max;
        char q[CONFIG_MSG_VALUE_MAX];
        if (max > CONFIG_MAX_ENTRIES)
                max = CONFIG_MAX_ENTRIES;
        if (start->type == YAML_SCALAR_EVENT && scalar_is_null(start)) {
                if (schema->sequence.min > 0)
                        return walk_fail_key(w, &start->start_mark,
                                             "at least %" PRIu32 " entries required, got 0",
                                             schema->sequence.min);
                if (walk_emit_sequence_start(w) < 0)
                        return -1;
                return walk_emit_sequence_end(w);
        }
        if (start->type != YAML_MAPPING_START_EVENT)
                return walk_wrong_kind(w, schema, start);
        if (walk_depth_enter(w, &start->start_mark) < 0 || walk_emit_sequence_start(w) < 0)
                return -1;
        /* Keys seen so far, for the duplicate check: at most CONFIG_MAX_ENTRIES of them. */
        _cleanup_buf_ buf keys = BUF_INIT(CONFIG_MAX_FILE_BYTES + CONFIG_MAX_ENTRIES);
        uint32_t count = 0;
        for (;;) {
                _cleanup_event_ yaml_event_t k = { .type = YAML_NO_EVENT };
                _cleanup_event_ yaml_event_t v = { .type = YAML_NO_EVENT };
                if (walk_next(w, &k) < 0)
                        return -1;
                if (k.type == YAML_MAPPING_END_EVENT)
                        break;
                if (k.type != YAML_SCALAR_EVENT)
                        return walk_fail(w, &k.start_mark, "mapping keys must be plain strings "
                                         "in \"%s\"", w->path);
                const char *key = (const char *)k.data.scalar.value;
                size_t klen = k.data.scalar.length;
                if (count >= max)
                        return walk_fail_key(w, &k.start_mark, "more than %" PRIu32 " entries",
                                             max);
                if (memchr(key, '\0', klen))
                        return walk_fail(w, &k.start_mark, "key contains a NUL byte in \"%s\"",
                                         w->path);
                /* keys holds "key\0key\0...": a linear scan over at most CONFIG_MAX_ENTRIES. */
                for (size_t off = 0; keys.data && off < keys.len;) {
                        size_t l = strlen(keys.data + off);
                        if (l == klen && memcmp(keys.data + off, key, klen) == 0)
                                return walk_fail(w, &k.start_mark,
                                                 "duplicate key \"%s\" in \"%s\"",
                                                 msg_value(q, sizeof(q), key, klen), w->path);
                        off += l + 1;
                }
                if (buf_append(&keys, key, klen) < 0 || buf_putc(&keys, '\0') < 0)
                        return err_errno(w->err, errno, "%s: parse", w->name);
                if (walk_next(w, &v) < 0)
                        return -1;
                size_t saved = path_push_key(w, key, klen);
                int r;
                if (v.type != YAML_SCALAR_EVENT)
                        r = walk_wrong_kind(w, &config_map_value_schema, &v);
                else if (walk_emit_mapping_start(w) < 0 || walk_emit_scalar(w, "key", 3) < 0 ||
                         walk_emit_scalar(w, key, klen) < 0 ||
                         walk_emit_scalar(w, "value", 5) < 0)
                        r = -1;
                else
                        r = walk_scalar(w, &config_map_value_schema, &v);
                path_pop(w, saved);
                if (r < 0 || walk_emit_mapping_end(w) < 0)
                        return -1;
                count++;
        }
        if (count < schema->sequence.min)
                return walk_fail_key(w, &start->start_mark,
                                     "at least %" PRIu32 " entries required, got %" PRIu32,
                                     schema->sequence.min, count);
        w->depth--;
        return walk_emit_sequence_end(w);
}

static int walk_sequence(struct walk *w, const cyaml_schema_value_t *schema,
                         const yaml_event_t *start)
{
        const cyaml_schema_value_t *entry = schema->sequence.entry;
        uint32_t max = schema->sequence.max;
        if (max > CONFIG_MAX_ENTRIES)
                max = CONFIG_MAX_ENTRIES;
        if (entry == &config_string_map_entry)
                return walk_string_map(w, schema, start);
        if (start->type == YAML_SCALAR_EVENT && scalar_is_null(start)) {
                if (schema->sequence.min > 0)
                        return walk_fail_key(w, &start->start_mark,
                                             "at least %" PRIu32 " entries required, got 0",
                                             schema->sequence.min);
                if (walk_emit_sequence_start(w) < 0)
                        return -1;
                return walk_emit_sequence_end(w);
        }
        if (start->type != YAML_SEQUENCE_START_EVENT)
                return walk_wrong_kind(w, schema, start);
        if (walk_depth_enter(w, &start->start_mark) < 0 || walk_emit_sequence_start(w) < 0)
                return -1;
        uint32_t count = 0;
        for (;;) {
                _cleanup_event_ yaml_event_t e = { .type = YAML_NO_EVENT };
                if (walk_next(w, &e) < 0)
                        return -1;
                if (e.type == YAML_SEQUENCE_END_EVENT)
                        break;
                if (count >= max)
                        return walk_fail_key(w, &e.start_mark, "more than %" PRIu32 " entries",
                                             max);
                size_t saved = path_push_index(w, count);
                int r = walk_value(w, entry, NULL, &e);
                path_pop(w, saved);
                if (r < 0)
                        return -1;
                count++;
        }
        if (count < schema->sequence.min)
                return walk_fail_key(w, &start->start_mark,
                                     "at least %" PRIu32 " entries required, got %" PRIu32,
                                     schema->sequence.min, count);
        w->depth--;
        return walk_emit_sequence_end(w);
}

/* ev is the first event of the value; node records presence below a mapping (may be NULL). */
static int walk_value(struct walk *w, const cyaml_schema_value_t *schema, struct presence *node,
                      const yaml_event_t *ev)
{
        switch (schema->type) {
        case CYAML_MAPPING:
                if (ev->type == YAML_MAPPING_START_EVENT)
                        return walk_mapping(w, schema, node, ev);
                if (ev->type == YAML_SCALAR_EVENT && scalar_is_null(ev)) {
                        /* "poll:" with nothing under it: present, but sets no field. */
                        if (node) {
                                size_t nf = fields_count(schema->mapping.fields);
                                node->children = calloc(nf ? nf : 1, sizeof(*node->children));
                                if (!node->children)
                                        return err_errno(w->err, ENOMEM, "%s: parse", w->name);
                                node->nchildren = nf;
                        }
                        if (walk_emit_mapping_start(w) < 0)
                                return -1;
                        return walk_emit_mapping_end(w);
                }
                return walk_wrong_kind(w, schema, ev);
        case CYAML_SEQUENCE:
                return walk_sequence(w, schema, ev);
        case CYAML_INT:
        case CYAML_UINT:
        case CYAML_BOOL:
        case CYAML_ENUM:
        case CYAML_FLOAT:
        case CYAML_STRING:
                if (ev->type != YAML_SCALAR_EVENT)
                        return walk_wrong_kind(w, schema, ev);
                return walk_scalar(w, schema, ev);
        default:
                return err_setc(w->err, ERR_INTERNAL, "%s: key \"%s\": unsupported schema type %d",
                                w->name, w->path, (int)schema->type);
        }
}

/* Walks the whole stream. *empty is set when there is no document or its top is null. */
static int walk_stream(struct walk *w, const cyaml_schema_value_t *top, struct presence *root,
                       bool *empty)
{
        yaml_event_t out;
        char q[CONFIG_MSG_VALUE_MAX + 2];
        *empty = false;
        {
                _cleanup_event_ yaml_event_t ev = { .type = YAML_NO_EVENT };
                if (walk_next(w, &ev) < 0)
                        return -1;
                if (ev.type != YAML_STREAM_START_EVENT)
                        return walk_fail(w, &ev.start_mark, "expected the start of the stream");
                if (!yaml_stream_start_event_initialize(&out, YAML_UTF8_ENCODING))
                        return walk_emit_failed_init(w);
                if (walk_emit(w, &out) < 0)
                        return -1;
        }
        {
                _cleanup_event_ yaml_event_t ev = { .type = YAML_NO_EVENT };
                if (walk_next(w, &ev) < 0)
                        return -1;
                if (ev.type == YAML_STREAM_END_EVENT) {
                        *empty = true;
                        return 0;
                }
                if (ev.type != YAML_DOCUMENT_START_EVENT)
                        return walk_fail(w, &ev.start_mark, "expected a document");
                if (!yaml_document_start_event_initialize(&out, NULL, NULL, NULL, 1))
                        return walk_emit_failed_init(w);
                if (walk_emit(w, &out) < 0)
                        return -1;
        }
        {
                _cleanup_event_ yaml_event_t ev = { .type = YAML_NO_EVENT };
                if (walk_next(w, &ev) < 0)
                        return -1;
                if (ev.type == YAML_SCALAR_EVENT && scalar_is_null(&ev))
                        *empty = true;
                else if (ev.type != YAML_MAPPING_START_EVENT)
                        return walk_fail(w, &ev.start_mark,
                                         "the top level must be a mapping, got %s",
                                         describe_event(&ev, q, sizeof(q)));
                else if (walk_mapping(w, top, root, &ev) < 0)
                        return -1;
        }
        {
                _cleanup_event_ yaml_event_t ev = { .type = YAML_NO_EVENT };
                if (walk_next(w, &ev) < 0)
                        return -1;
                if (ev.type != YAML_DOCUMENT_END_EVENT)
                        return walk_fail(w, &ev.start_mark, "expected the end of the document");
                if (!*empty) {
                        if (!yaml_document_end_event_initialize(&out, 1))
                                return walk_emit_failed_init(w);
                        if (walk_emit(w, &out) < 0)
                                return -1;
                }
        }
        {
                _cleanup_event_ yaml_event_t ev = { .type = YAML_NO_EVENT };
                if (walk_next(w, &ev) < 0)
                        return -1;
                if (ev.type == YAML_DOCUMENT_START_EVENT)
                        return walk_fail(w, &ev.start_mark,
                                         "multiple documents are not supported (one config "
                                         "document per file)");
                if (ev.type != YAML_STREAM_END_EVENT)
                        return walk_fail(w, &ev.start_mark, "expected the end of the stream");
                if (*empty)
                        return 0;
                if (!yaml_stream_end_event_initialize(&out))
                        return walk_emit_failed_init(w);
                if (walk_emit(w, &out) < 0)
                        return -1;
        }
        if (!yaml_emitter_flush(&w->emitter))
                return walk_emit_error(w);
        return 0;
}

/* ---- pass 2 and overlay ----------------------------------------------------------------- */

struct cyaml_logcap {
        char msg[512];
        size_t len;
};

static void config_cyaml_log(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
        __attribute__((format(printf, 3, 0)));
static void config_cyaml_log(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
{
        struct cyaml_logcap *c = ctx;
        if (c->len + 1 >= sizeof(c->msg))
                return;
        int n = vsnprintf(c->msg + c->len, sizeof(c->msg) - c->len, fmt, args);
        if (n < 0)
                return;
        c->len = strnlen(c->msg, sizeof(c->msg) - 1);
}

/* libcyaml's allocator, pinned to realloc/free so config_free() can use free(). */
static void *config_cyaml_mem(void *ctx, void *ptr, size_t size)
{
        if (size == 0) {
                free(ptr);
                return NULL;
        }
        return realloc(ptr, size);
}

static void overlay_mapping(const cyaml_schema_field_t *fields, const struct presence *nodes,
                            char *dst, char *src)
{
        for (size_t i = 0; fields[i].key; i++) {
                const cyaml_schema_field_t *f = &fields[i];
                if (!nodes[i].present)
                        continue;
                char *d = dst + f->data_offset, *s = src + f->data_offset;
                switch (f->value.type) {
                case CYAML_IGNORE:
                        break;
                case CYAML_MAPPING:
                        if (f->value.flags & CYAML_FLAG_POINTER) {
                                char *dp = ptr_get(d), *sp = ptr_get(s);
                                if (!dp) {
                                        ptr_set(d, sp);
                                        ptr_set(s, NULL);
                                } else if (sp && nodes[i].children) {
                                        overlay_mapping(f->value.mapping.fields,
                                                        nodes[i].children, dp, sp);
                                }
                        } else if (nodes[i].children) {
                                overlay_mapping(f->value.mapping.fields, nodes[i].children, d, s);
                        }
                        break;
                case CYAML_SEQUENCE:
                        /* A present sequence or string map replaces the old one whole. */
                        free_field(f, dst);
                        ptr_set(d, ptr_get(s));
                        ptr_set(s, NULL);
                        count_set(dst + f->count_offset, f->count_size,
                                  count_get(src + f->count_offset, f->count_size));
                        count_set(src + f->count_offset, f->count_size, 0);
                        break;
                default:
                        if (f->value.flags & CYAML_FLAG_POINTER) {
                                free(ptr_get(d));
                                ptr_set(d, ptr_get(s));
                                ptr_set(s, NULL);
                        } else {
                                memcpy(d, s, f->value.data_size);
                        }
                        break;
                }
        }
}

int config_load_data(const char *name, const char *data, size_t len,
                     const cyaml_schema_value_t *top_schema, void *dst, size_t dst_size,
                     err_t *err)
{
        if (!name)
                name = "<config>";
        if (!top_schema || top_schema->type != CYAML_MAPPING || !dst ||
            dst_size != top_schema->data_size || (!data && len > 0))
                return err_setc(err, ERR_INTERNAL,
                                "%s: config loader called with a bad schema or destination",
                                name);
        if (schema_check_value(top_schema, "(top)", 0, err) < 0)
                return -1;
        if (len > CONFIG_MAX_FILE_BYTES)
                return err_setc(err, ERR_TOO_LARGE, "%s: %zu bytes, larger than the %d-byte "
                                "limit for a config file", name, len, CONFIG_MAX_FILE_BYTES);

        struct walk w = {
                .name = name, .data = data ? data : "", .len = len,
                .out = BUF_INIT(CONFIG_MAX_EMIT_BYTES), .err = err,
        };
        struct presence root = { .present = true };
        bool empty = false;
        int r = -1;
        bool parser_ok = false, emitter_ok = false;
        if (!yaml_parser_initialize(&w.parser)) {
                err_errno(err, ENOMEM, "%s: init YAML parser", name);
                goto out;
        }
        parser_ok = true;
        if (!yaml_emitter_initialize(&w.emitter)) {
                err_errno(err, ENOMEM, "%s: init YAML emitter", name);
                goto out;
        }
        emitter_ok = true;
        yaml_parser_set_input_string(&w.parser, (const unsigned char *)w.data, len);
        yaml_emitter_set_output(&w.emitter, walk_write, &w);
        yaml_emitter_set_unicode(&w.emitter, 1);
        yaml_emitter_set_width(&w.emitter, -1);
        if (walk_stream(&w, top_schema, &root, &empty) < 0)
                goto out;
        if (empty) {
                r = 0;   /* nothing in the document: dst keeps every value */
                goto out;
        }

        struct cyaml_logcap logcap = { .len = 0 };
        const cyaml_config_t cfg = {
                .log_fn = config_cyaml_log,
                .log_ctx = &logcap,
                .mem_fn = config_cyaml_mem,
                .mem_ctx = NULL,
                .log_level = CYAML_LOG_ERROR,
                .flags = CYAML_CFG_NO_ALIAS,
        };
        /* libcyaml insists on a pointer at the top; the caller need not care. */
        cyaml_schema_value_t top = *top_schema;
        top.flags = (enum cyaml_flag)(top.flags | CYAML_FLAG_POINTER);
        void *tmp = NULL;
        cyaml_err_t ce = cyaml_load_data((const uint8_t *)w.out.data, w.out.len, &cfg, &top,
                                         &tmp, NULL);
        if (ce != CYAML_OK) {
                /* Pass 1 checked everything libcyaml checks, so this is a loader bug. */
                for (size_t i = 0; i < logcap.len; i++)
                        if (logcap.msg[i] == '\n')
                                logcap.msg[i] = ' ';
                if (ce == CYAML_ERR_OOM)
                        err_errno(err, ENOMEM, "%s: load", name);
                else
                        err_setc(err, ERR_INTERNAL, "%s: libcyaml refused the checked document: "
                                 "%s: %s", name, cyaml_strerror(ce), logcap.msg);
                goto out;
        }
        if (!tmp) {
                /* libcyaml returns NULL for a mapping that set nothing; a zeroed struct
                 * is the same thing for the overlay. */
                tmp = calloc(1, top_schema->data_size ? top_schema->data_size : 1);
                if (!tmp) {
                        err_errno(err, ENOMEM, "%s: load", name);
                        goto out;
                }
        }
        overlay_mapping(top_schema->mapping.fields, root.children, dst, tmp);
        free_mapping_contents(top_schema->mapping.fields, tmp);
        free(tmp);
        r = 0;
out:
        presence_free(root.children, root.nchildren);
        FREE_AND_NULL(root.children);
        if (emitter_ok)
                yaml_emitter_delete(&w.emitter);
        if (parser_ok)
                yaml_parser_delete(&w.parser);
        buf_free(&w.out);
        return r;
}

int config_load_file(const char *path, const cyaml_schema_value_t *top_schema, void *dst,
                     size_t dst_size, err_t *err)
{
        if (!path)
                return err_setc(err, ERR_INTERNAL, "config loader called without a path");
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return err_errno(err, errno, "open %s", path);
        struct stat st;
        if (fstat(fd, &st) < 0)
                return err_errno(err, errno, "stat %s", path);
        if (S_ISDIR(st.st_mode))
                return err_errno(err, EISDIR, "read %s", path);
        if (S_ISREG(st.st_mode) && st.st_size > CONFIG_MAX_FILE_BYTES)
                return err_setc(err, ERR_TOO_LARGE, "%s: %lld bytes, larger than the %d-byte "
                                "limit for a config file", path, (long long)st.st_size,
                                CONFIG_MAX_FILE_BYTES);
        /* Read at most one byte past the cap: the size can change under us, and a pipe or
         * character device has no size at all. */
        _cleanup_free_ char *data = malloc(CONFIG_MAX_FILE_BYTES + 1);
        if (!data)
                return err_errno(err, ENOMEM, "read %s", path);
        size_t n = 0;
        while (n < CONFIG_MAX_FILE_BYTES + 1) {
                ssize_t got = read(fd, data + n, CONFIG_MAX_FILE_BYTES + 1 - n);
                if (got < 0) {
                        if (errno == EINTR)
                                continue;
                        return err_errno(err, errno, "read %s", path);
                }
                if (got == 0)
                        break;
                n += (size_t)got;
        }
        if (n > CONFIG_MAX_FILE_BYTES)
                return err_setc(err, ERR_TOO_LARGE, "%s: larger than the %d-byte limit for a "
                                "config file", path, CONFIG_MAX_FILE_BYTES);
        return config_load_data(path, data, n, top_schema, dst, dst_size, err);
}
