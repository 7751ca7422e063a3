/* core/config.h — YAML configuration files loaded into C structs (DESIGN D18, spec nexus §2).
 *
 * The caller describes its struct with a libcyaml schema (CYAML_FIELD_* macros) and pre-fills
 * the defaults; loading OVERLAYS the document onto them: a key absent from the document keeps
 * its value, an empty document (or only comments) changes nothing.
 *
 * Accepted: one YAML document whose top is a mapping. Schema types: nested mappings
 * (embedded or CYAML_FLAG_POINTER), strings (char arrays or CYAML_FLAG_POINTER), signed and
 * unsigned integers of 1/2/4/8 bytes, bools, enums (always matched as strings, never as
 * numbers), floats, sequences (CYAML_SEQUENCE with CYAML_FLAG_POINTER and a count field),
 * free-form string maps (CONFIG_FIELD_STRING_MAP below) and CYAML_IGNORE fields (skipped).
 *
 * Refused, always with "name:line:col: ..." (1-based) and the key path:
 *   - unknown keys:     nexus.yaml:12:3: unknown key "pol" in "poll"
 *   - wrong values:     nexus.yaml:4:14: key "poll.max_directives_to_claim": expected an
 *                       integer, got "ten"   (integers are decimal only, no 0x/0o/1e3;
 *                       bools are true/false/yes/no/on/off in any case; integers must fit
 *                       the field's size; enums must be one of the schema's strings;
 *                       sequences must respect the schema's min/max counts)
 *   - duplicate keys, keys that are not scalars, missing non-optional keys;
 *   (An empty or null plain value — "key:" or "key: ~" — reads as "" for a scalar field, as
 *   "present but setting nothing" for a mapping, and as empty for a sequence or string map.)
 *   - anchors and aliases (not needed; they allow billion-laughs expansion), explicit tags,
 *     more than one document, nesting deeper than CONFIG_MAX_DEPTH;
 *   - malformed YAML (libyaml's problem text), files over CONFIG_MAX_FILE_BYTES.
 *
 * Environment substitution (spec nexus §2.2 ADVISED, safer than the reference): applied to
 * scalar VALUES only, after parsing, so a variable can never change the document's shape — a
 * value holding newlines, quotes, ": ", "- ", "{" or "#" stays one scalar of the same key.
 * Keys are never substituted (a key "${X}" is just an unknown key); comments are not touched.
 *   ${NAME}            value of NAME; NAME matches [A-Za-z_][A-Za-z0-9_]*.
 *                      An UNSET variable is an error naming file:line and NAME (the reference
 *                      silently substitutes ""; a typo must not silently empty a setting).
 *                      A variable set to "" substitutes "".
 *   ${NAME:-default}   default (taken verbatim up to the first '}') when NAME is unset or "".
 *   $$                 a literal '$'.
 *   $ + anything else  stays literal ("cost $5", "a$b", a trailing '$').
 * Substitution happens before type conversion, so "port: ${PORT}" works for integer fields.
 *
 * How overlaying works (libcyaml always allocates a fresh struct): pass 1 walks libyaml's
 * event stream against the schema, substitutes, validates every key and value with its line,
 * records which keys were present, and re-emits the events (values normalised, every scalar
 * double-quoted) into a memory buffer. Pass 2 hands that buffer to cyaml_load_data(), which
 * fills a fresh struct. Then only the fields that were present are moved into dst: scalars are
 * copied, strings and sequences replace (and free) dst's old ones, nested mappings recurse.
 * On any error dst is left exactly as it was.
 *
 * Ownership: every pointer reachable from dst through the schema (strings, sequences, string
 * maps, pointer mappings) must be NULL or malloc()ed before loading, because a present key
 * frees the old value and config_free() frees them all. The simplest way to pre-fill defaults
 * is to load a defaults document (a string constant) with config_load_data() into a zeroed
 * struct, then load the user's file on top. */
#pragma once
#include <stddef.h>
#include <cyaml/cyaml.h>

#include "core/error.h"

#define CONFIG_MAX_FILE_BYTES (1024 * 1024)   /* a config file larger than this is refused */
#define CONFIG_MAX_DEPTH 16                   /* mappings/sequences nested deeper are refused */
#define CONFIG_MAX_VALUE_BYTES (64 * 1024)    /* one scalar value after substitution */
#define CONFIG_MAX_ENTRIES 1024               /* entries of one sequence or string map */

/* One entry of a free-form string map (libcyaml has no map type). */
typedef struct config_kv {
        char *key;
        char *value;
} config_kv;

/* Entry schema that marks a sequence field as a string map. Use it through the macro. */
extern const cyaml_schema_value_t config_string_map_entry;

/* A YAML mapping of string -> string (e.g. labels: {os: linux, arch: amd64}) loaded into
 *         config_kv *_member;  unsigned _member##_count;
 * in document order. Keys are literal, values get ${VAR} substitution; non-scalar values,
 * duplicate keys and more than _max entries are refused. "labels:" with no value (or {})
 * gives an empty map. A present map replaces the default map as a whole. */
#define CONFIG_FIELD_STRING_MAP(_key, _flags, _structure, _member, _max) \
        CYAML_FIELD_SEQUENCE(_key, (_flags) | CYAML_FLAG_POINTER, _structure, _member, \
                             &config_string_map_entry, 0, _max)

/* Reads the file at path (at most CONFIG_MAX_FILE_BYTES) and overlays it onto dst, whose
 * layout top_schema (a CYAML_MAPPING; CYAML_FLAG_POINTER is optional) describes and whose
 * size is dst_size (must equal top_schema->data_size). Messages name the path.
 * Returns 0, or -1 with err set (ERR_SYSTEM with errno for an unreadable file, ERR_TOO_LARGE,
 * ERR_INVALID for document errors, ERR_INTERNAL for a schema the loader cannot handle). */
int config_load_file(const char *path, const cyaml_schema_value_t *top_schema, void *dst,
                     size_t dst_size, err_t *err);

/* Same for len bytes at data (need not be NUL-terminated); name is used in messages. */
int config_load_data(const char *name, const char *data, size_t len,
                     const cyaml_schema_value_t *top_schema, void *dst, size_t dst_size,
                     err_t *err);

/* Frees every string, sequence, string map and pointer mapping reachable from dst through
 * top_schema, NULLs the pointers and zeroes the counts. dst itself is not freed. */
void config_free(const cyaml_schema_value_t *top_schema, void *dst);

/* Value of key in a loaded string map, or NULL. */
const char *config_kv_get(const config_kv *kv, unsigned count, const char *key);
