/* core/str.h — bounded string helpers: the replacements for sprintf/strcpy/strcat/atoi/strtok
 * (CONVENTIONS.md "Ownership and bounds"). Nothing here writes past a given size. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Copies src into dst (size dstsz, always NUL-terminated when dstsz > 0).
 * Returns 0, or -1 with errno ENAMETOOLONG when src did not fit (dst holds the prefix). */
int str_copy(char *dst, size_t dstsz, const char *src);
/* Copies at most n bytes of src. Same rules. */
int str_copyn(char *dst, size_t dstsz, const char *src, size_t n);

/* snprintf that reports truncation: returns the length written, or -1 with errno
 * ENAMETOOLONG when the output did not fit (dst holds the truncated text). */
int str_printf(char *dst, size_t dstsz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Heap-allocating printf; NULL on ENOMEM. */
char *str_dup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Strict decimal integer: optional '-', digits only (no '+'), no
 * whitespace, no trailing bytes, value within [min, max]. Returns 0, or -1 with errno EINVAL
 * (not a number) or ERANGE (out of range). */
int str_to_int64(const char *s, int64_t min, int64_t max, int64_t *out);
/* Same for a byte range that is not NUL-terminated. */
int str_to_int64n(const char *s, size_t len, int64_t min, int64_t max, int64_t *out);

bool str_has_prefix(const char *s, const char *prefix);
bool str_has_suffix(const char *s, const char *suffix);
/* True for NULL, "" and strings of only ASCII whitespace. */
bool str_is_blank(const char *s);
/* ASCII lower-casing in place; returns s. */
char *str_ascii_lower(char *s);
/* Trims ASCII whitespace: returns a pointer to the first non-space byte of s and sets *len
 * to the trimmed length (s is not modified). */
const char *str_trim(const char *s, size_t len, size_t *out_len);
/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF (what jansson's
 * json_string() accepts). */
bool str_utf8_valid(const char *s, size_t len);
/* Constant-length-independent equality is in core/crypto.h (crypto_memeq). */
