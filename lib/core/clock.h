/* core/clock.h — wall and monotonic clocks, and RFC 3339 UTC timestamps (DESIGN D7: every
 * stored timestamp is RFC 3339 UTC with milliseconds).
 *
 * Formatting always yields UTC with 'Z'. Parsing accepts the RFC 3339 date-time production
 * (either case of 'T' and 'Z', numeric offsets, 1-9 fraction digits) and refuses anything out of
 * range instead of normalising it. The calendar math is done here, so neither result ever
 * depends on the TZ environment variable. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* Buffer sizes, NUL included: "2026-02-27T14:30:22.123Z" and "2026-02-27T14:30:22Z". */
#define RFC3339_MS_LEN 25
#define RFC3339_S_LEN 21

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t clock_now_ms(void);
/* Milliseconds on CLOCK_MONOTONIC: for timeouts and durations, never for timestamps. */
int64_t clock_mono_ms(void);

/* "2026-02-27T14:30:22.123Z", exactly three fraction digits. Returns 0, or -1 when outsz is too
 * small or the year falls outside 0000-9999 (out then holds ""). */
int rfc3339_format_ms(int64_t unix_ms, char *out, size_t outsz);
/* "2026-02-27T14:30:22Z". Same rules. */
int rfc3339_format_s(int64_t unix_s, char *out, size_t outsz);
/* Current time, formatted as by rfc3339_format_ms. */
int rfc3339_now_ms(char *out, size_t outsz);

/* Parses an RFC 3339 date-time into milliseconds since the epoch (fraction digits past the
 * millisecond are truncated). Returns 0, or -1 with err naming the bad field. */
int rfc3339_parse(const char *s, int64_t *unix_ms, err_t *err);

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1-12, day 1-31; not validated). */
int64_t clock_days_from_civil(int64_t year, int month, int day);
