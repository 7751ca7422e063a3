/* proto/fscap.h — FsCapabilityV1 (spec.capabilities.fs) validation (nexus §8.2, mothership
 * §6.3; contract directivespec_capabilities_fs.schema.v1.json).
 *
 * Every schema rule, by hand: object; only "read", "write", "writable_roots",
 * "read_only_subpaths"; each an array of unique strings (exact comparison). read/write items
 * are selectors of 3-1024 characters matching ^(workspace:(\*\*|/[^\s]*)|host:/[^\s]*)$;
 * writable_roots/read_only_subpaths items are 1-4096 characters matching ^/[^\s]*$ and, as the
 * producer rule of §8.2 demands, contain no "." or ".." path component. \s is ECMA-262
 * whitespace: TAB LF VT FF CR SPACE, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F,
 * U+205F, U+3000, U+FEFF. Lengths count Unicode characters, as JSON Schema does. Strings with
 * NUL are refused (no path can hold one). Messages name the JSON path:
 * "capabilities.fs.writable_roots[1]: path component \"..\" is not allowed". */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include "core/error.h"

#define FSCAP_SELECTOR_MAX 1024
#define FSCAP_PATH_MAX 4096
#define FSCAP_MAX_ITEMS 4096    /* hard cap per array (the schema sets none) */

/* NULL (absent) and JSON null are refused ("must be an object"). */
int fscap_validate(const json_t *cap, err_t *err);

/* The selector rule alone (pattern and length) on len bytes of UTF-8. */
bool fscap_selector_ok(const char *s, size_t len);
/* The host-absolute path rule alone (pattern, length, no "."/".." component). */
bool fscap_host_path_ok(const char *s, size_t len);
