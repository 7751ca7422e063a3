/* proto/fscap.c — FsCapabilityV1 validation (see fscap.h). */
#include "proto/fscap.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "core/json.h"
#include "proto/allowlist.h"

#define P "capabilities.fs"
#define QUOTE_MAX 128

static json_t *unconst(const json_t *j)
{
        return (json_t *)(uintptr_t)j;
}

/* Decodes one UTF-8 sequence at s[i] (jansson strings are valid UTF-8; anything odd is
 * consumed byte by byte as U+FFFD). Returns the code point and advances *i. */
static uint32_t utf8_next(const char *s, size_t len, size_t *i)
{
        const unsigned char *u = (const unsigned char *)s;
        uint32_t c = u[*i];
        size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
                 : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (n == 0 || *i + n > len) {
                (*i)++;
                return 0xfffd;
        }
        if (n > 1)
                c &= (uint32_t)(0x7f >> n);
        for (size_t k = 1; k < n; k++) {
                if ((u[*i + k] & 0xc0) != 0x80) {
                        (*i)++;
                        return 0xfffd;
                }
                c = (c << 6) | (u[*i + k] & 0x3f);
        }
        *i += n;
        return c;
}

/* ECMA-262 \s: WhiteSpace + LineTerminator */
static bool ecma_space(uint32_t c)
{
        switch (c) {
        case 0x09: case 0x0a: case 0x0b: case 0x0c: case 0x0d: case 0x20:
        case 0xa0: case 0x1680: case 0x2028: case 0x2029: case 0x202f: case 0x205f:
        case 0x3000: case 0xfeff:
                return true;
        default:
                return c >= 0x2000 && c <= 0x200a;
        }
}

/* [^\s]* over s[0..len), counting characters into *chars (may be NULL). */
static bool no_space(const char *s, size_t len, size_t *chars)
{
        size_t i = 0, n = 0;
        while (i < len) {
                if (ecma_space(utf8_next(s, len, &i)))
                        return false;
                n++;
        }
        if (chars)
                *chars = n;
        return true;
}

static size_t utf8_chars(const char *s, size_t len)
{
        size_t i = 0, n = 0;
        while (i < len) {
                utf8_next(s, len, &i);
                n++;
        }
        return n;
}

static bool has_prefix(const char *s, size_t len, const char *lit)
{
        size_t n = strlen(lit);
        return len >= n && memcmp(s, lit, n) == 0;
}

bool fscap_selector_ok(const char *s, size_t len)
{
        if (!s || memchr(s, '\0', len))
                return false;
        size_t chars = utf8_chars(s, len);
        if (chars < 3 || chars > FSCAP_SELECTOR_MAX)
                return false;
        if (len == 12 && memcmp(s, "workspace:**", 12) == 0)
                return true;
        size_t skip;
        if (has_prefix(s, len, "workspace:/"))
                skip = 11;
        else if (has_prefix(s, len, "host:/"))
                skip = 6;
        else
                return false;
        return no_space(s + skip, len - skip, NULL);
}

/* The component check of §8.2: "." or ".." between slashes (or at the end) is refused, so a
 * Landlock root can never name a place other than the one it spells. */
static bool has_dot_component(const char *s, size_t len)
{
        size_t start = 0;
        for (size_t i = 0; i <= len; i++) {
                if (i == len || s[i] == '/') {
                        size_t n = i - start;
                        if ((n == 1 && s[start] == '.') ||
                            (n == 2 && s[start] == '.' && s[start + 1] == '.'))
                                return true;
                        start = i + 1;
                }
        }
        return false;
}

bool fscap_host_path_ok(const char *s, size_t len)
{
        if (!s || len == 0 || s[0] != '/' || memchr(s, '\0', len))
                return false;
        size_t chars = 0;
        if (!no_space(s, len, &chars) || chars > FSCAP_PATH_MAX)
                return false;
        return !has_dot_component(s, len);
}

enum item_kind { ITEM_SELECTOR, ITEM_HOST_PATH };

static int item_check(const char *field, size_t idx, const char *s, size_t len,
                      enum item_kind kind, err_t *err)
{
        char q[QUOTE_MAX];
        if (memchr(s, '\0', len))
                return err_set(err, P ".%s[%zu]: must not contain NUL", field, idx);
        size_t chars = utf8_chars(s, len);
        if (kind == ITEM_SELECTOR) {
                if (chars < 3 || chars > FSCAP_SELECTOR_MAX)
                        return err_set(err, P ".%s[%zu]: length %zu out of range 3-%d", field,
                                       idx, chars, FSCAP_SELECTOR_MAX);
                if (!fscap_selector_ok(s, len))
                        return err_set(err, P ".%s[%zu]: \"%s\" must be workspace:**, "
                                       "workspace:/<path> or host:/<path> without whitespace",
                                       field, idx, allow_quote(s, len, q, sizeof(q)));
                return 0;
        }
        if (chars < 1 || chars > FSCAP_PATH_MAX)
                return err_set(err, P ".%s[%zu]: length %zu out of range 1-%d", field, idx,
                               chars, FSCAP_PATH_MAX);
        if (s[0] != '/' || !no_space(s, len, NULL))
                return err_set(err, P ".%s[%zu]: \"%s\" must be an absolute path without "
                               "whitespace", field, idx, allow_quote(s, len, q, sizeof(q)));
        if (has_dot_component(s, len))
                return err_set(err, P ".%s[%zu]: path component \".\" or \"..\" is not "
                               "allowed in \"%s\"", field, idx,
                               allow_quote(s, len, q, sizeof(q)));
        return 0;
}

static int check_array(const json_t *arr, const char *field, enum item_kind kind, err_t *err)
{
        char q[QUOTE_MAX];
        if (!json_is_array(arr))
                return err_set(err, P ".%s: must be an array, got %s", field,
                               json_type_name(arr));
        size_t n = json_array_size(arr);
        if (n > FSCAP_MAX_ITEMS)
                return err_set(err, P ".%s: too many items (%zu > %d)", field, n,
                               FSCAP_MAX_ITEMS);
        /* uniqueItems in linear time: exact bytes → first index */
        _cleanup_json_ json_t *seen = json_object();
        if (!seen)
                return err_errno(err, ENOMEM, P ".%s", field);
        for (size_t i = 0; i < n; i++) {
                const json_t *v = json_array_get(arr, i);
                if (!json_is_string(v))
                        return err_set(err, P ".%s[%zu]: must be a string, got %s", field, i,
                                       json_type_name(v));
                const char *s = json_string_value(v);
                size_t len = json_string_length(v);
                if (item_check(field, i, s, len, kind, err) < 0)
                        return -1;
                const json_t *prev = json_object_getn(seen, s, len);
                if (prev)
                        return err_set(err, P ".%s[%zu]: duplicate of %s[%lld] (\"%s\")", field,
                                       i, field, (long long)json_integer_value(prev),
                                       allow_quote(s, len, q, sizeof(q)));
                if (json_object_setn_new_nocheck(seen, s, len, json_integer((json_int_t)i)) < 0)
                        return err_errno(err, ENOMEM, P ".%s", field);
        }
        return 0;
}

int fscap_validate(const json_t *cap, err_t *err)
{
        static const struct {
                const char *name;
                enum item_kind kind;
        } fields[] = {
                { "read", ITEM_SELECTOR },
                { "write", ITEM_SELECTOR },
                { "writable_roots", ITEM_HOST_PATH },
                { "read_only_subpaths", ITEM_HOST_PATH },
        };
        const size_t nfields = sizeof(fields) / sizeof(fields[0]);
        char q[QUOTE_MAX];
        const char *key;
        size_t klen;
        json_t *v;

        if (!json_is_object(cap))
                return err_set(err, P ": must be an object, got %s", json_type_name(cap));
        json_object_keylen_foreach(unconst(cap), key, klen, v) {
                bool ok = false;
                for (size_t i = 0; i < nfields; i++)
                        if (strlen(fields[i].name) == klen &&
                            memcmp(key, fields[i].name, klen) == 0)
                                ok = true;
                if (!ok)
                        return err_set(err, P ": unknown field \"%s\"",
                                       allow_quote(key, klen, q, sizeof(q)));
        }
        for (size_t i = 0; i < nfields; i++) {
                const json_t *arr = json_object_get(cap, fields[i].name);
                if (arr && check_array(arr, fields[i].name, fields[i].kind, err) < 0)
                        return -1;
        }
        return 0;
}
