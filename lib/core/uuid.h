/* core/uuid.h — UUIDv7 identifiers (RFC 9562 §5.7; DESIGN D7: IDs are UUIDv7 text).
 *
 * Layout of a v7 id: 48-bit big-endian Unix milliseconds, version 7, a 12-bit counter (rand_a,
 * RFC 9562 §6.2 method 1), variant 0b10, 62 random bits from getrandom(). Ids made by one
 * process sort strictly ascending as text and as bytes, even within one millisecond and when
 * the wall clock steps back. The canonical text is 8-4-4-4-12 lower-case hex (36 chars). */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"

/* Text form plus the NUL. */
#define UUID_STR_LEN 37

/* Writes a new v7 id in canonical lower-case form. Thread-safe. Returns 0, or -1 with err set
 * when the kernel gives no random bytes. */
int uuid7_generate(char out[UUID_STR_LEN], err_t *err);
/* Same, with the caller's clock reading (tests, replays). The monotonic rule still applies: a
 * timestamp at or before the last one reuses it and advances the counter. */
int uuid7_generate_at(int64_t unix_ms, char out[UUID_STR_LEN], err_t *err);

/* True for the 8-4-4-4-12 hex form of any version, either case. No braces, no "urn:uuid:". */
bool uuid_is_valid(const char *s);
/* Lower-cases a valid id in place. Returns 0, or -1 (s untouched) when s is not valid. */
int uuid_normalize(char *s);
/* Parses the text form into 16 bytes. Returns 0, or -1 when s is not valid. */
int uuid_parse(const char *s, uint8_t out[16]);
/* The Unix millisecond timestamp of a v7 id, or -1 when s is not a valid v7 id. */
int64_t uuid7_timestamp_ms(const char *s);
