/* agent/tape.h — the local debug tape (spec nexus §5.17): one JSON line per directive event,
 * for an operator reading what the daemon did without the server.
 *
 *   {"ts":"2026-02-27T14:30:22.123Z","directive_id":"d1","facility_id":"f1",
 *    "profile":"untrusted","driver":"bwrap","event":"run_finished",
 *    "detail":{"status":"succeeded","exit_code":0}}
 *
 * Optional keys (directive_id, facility_id, profile, driver, detail) are left out when NULL or
 * empty; an event with an empty name is dropped. Before a line would take the file past
 * max_bytes, the file is rotated to <path>.1 (the previous .1 is deleted); a single line
 * larger than max_bytes is still written. The tape is best effort: after a successful open,
 * write and rotation errors are swallowed, never reported to the directive. A NULL tape is a
 * disabled tape: every call is a no-op. Thread-safe (workers share one tape).
 *
 * The tape does not redact: callers pass repo URLs already redacted (spec §9.3). */
#pragma once
#include <jansson.h>
#include <stdint.h>

#include "core/error.h"

typedef struct nx_tape nx_tape;

/* Opens (creating) the tape at path for appending, mode 0644; the parent directory is created
 * with 0755 (parents included) unless it is ".". A file already larger than max_bytes is
 * rotated first. max_bytes must be >= 1. Errors: "create debug tape dir: …",
 * "open debug tape: …". */
int nx_tape_open(const char *path, int64_t max_bytes, nx_tape **out, err_t *err);

/* Appends one event; detail (borrowed, may be NULL) is omitted when NULL or an empty
 * object. */
void nx_tape_event(nx_tape *tape, const char *directive_id, const char *facility_id,
                   const char *profile, const char *driver, const char *event,
                   const json_t *detail);

/* Closes and frees; NULL is fine. */
void nx_tape_close(nx_tape *tape);
