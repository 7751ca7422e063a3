/* agent/wal.h — the finished-report write-ahead log (DESIGN D16; spec nexus §5.14 with its
 * ADVISED fixes, made stricter).
 *
 * A finished report is appended here, fsync'd, BEFORE it is sent, and removed once the server
 * acknowledged it (2xx) or answered definitively (a 4xx other than 408/429, see
 * nx_retry_answer_is_definitive()); whatever is left is replayed at start-up. So a report is
 * never lost to a crash, and the server turns repeats into duplicates.
 *
 * File <dir>/finished.wal (dir 0700, created with its parents if missing; file 0600, opened
 * O_APPEND|O_CLOEXEC|O_NOFOLLOW — a symlink there is refused). One JSON line per entry:
 *
 *   {"v":1,"directive_id":"0195…","written_at":"2026-02-27T14:30:22.123Z",
 *    "report":{…finished request…},"sha256":"<64 hex>"}
 *
 * The report is stored in canonical form (compact, keys sorted). sha256 covers the whole
 * entry, not just the report: it is the SHA-256 of
 *   {"directive_id":<id>,"report":<canonical report>,"v":1,"written_at":<ts>}
 * (the same canonical form: the entry without "sha256", keys sorted), so a torn, truncated or
 * bit-flipped line — including a flip inside directive_id — is detected and skipped (and
 * counted) instead of being sent, possibly for another directive. No directive token is
 * stored: replay fetches a fresh one (unlike REF, which kept tokens in clear).
 *
 * Append = one write() of the full line, then fdatasync. Remove = rewrite: the remaining
 * entries go to a temp file in the same directory, which is fsync'd and renamed over the WAL,
 * then the directory is fsync'd; so the file is always either the old or the new content.
 * An id appended again replaces its older entry (last wins, also on load). Loading skips, and
 * counts, every line that does not verify — garbage, a line torn by a crash mid-write, a line
 * longer than NX_WAL_MAX_LINE — and never aborts because of file contents.
 *
 * Bounds: lines of at most NX_WAL_MAX_LINE bytes (an append that would exceed it fails), at
 * most NX_WAL_MAX_ENTRIES pending reports (then append fails with ERR_TOO_LARGE).
 *
 * One process per directory: the directory is flock'ed while open, so a second nexusd on the
 * same work_dir (or a second nx_wal_open) fails instead of replaying the same reports. All
 * functions on one nx_wal are serialised by an internal mutex (loop thread and thread-pool
 * jobs may share it); they block on disk I/O, so the loop thread should call them through
 * the thread pool. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define NX_WAL_FILE "finished.wal"
#define NX_WAL_MAX_LINE (4u * 1024 * 1024)   /* bytes of one entry, newline excluded */
#define NX_WAL_MAX_ENTRIES 10000
#define NX_WAL_ID_MAX 128                    /* directive_id: [A-Za-z0-9._-]{1,128} */
#define NX_WAL_VERSION 1

typedef struct nx_wal nx_wal;

typedef struct nx_wal_entry {
        char directive_id[NX_WAL_ID_MAX + 1];
        int64_t written_at_ms;          /* Unix ms of the append */
        json_t *report;                 /* owned; the finished request object */
} nx_wal_entry;

/* Opens (creating) <dir>/finished.wal and loads its index. Fails when dir cannot be created
 * or opened, when finished.wal is a symlink or not a regular file, or when another handle
 * holds the directory. Corrupt lines do not fail the open; nx_wal_pending() counts them. */
int nx_wal_open(const char *dir, nx_wal **out, err_t *err);

/* Makes the report durable under directive_id (replacing an older entry for that id).
 * report must be a JSON object; it is borrowed. Fails (nothing stored) on an invalid id, a
 * line over NX_WAL_MAX_LINE, NX_WAL_MAX_ENTRIES reached, or a write/fdatasync error. */
int nx_wal_append(nx_wal *w, const char *directive_id, const json_t *report, err_t *err);

/* Drops the entry of directive_id (no-op returning 0 when there is none). Durable when it
 * returns 0. On failure the entry is still pending (except when only the final directory
 * fsync failed: then the rename has happened and the error says so). */
int nx_wal_remove(nx_wal *w, const char *directive_id, err_t *err);

/* Every pending entry, in the order the ids were first appended; *entries is a new array
 * (NULL when *n is 0) to free with nx_wal_entries_free(). *skipped_corrupt (may be NULL):
 * lines that failed verification when the WAL was opened, plus any that fail now. */
int nx_wal_pending(nx_wal *w, nx_wal_entry **entries, size_t *n, size_t *skipped_corrupt,
                   err_t *err);
void nx_wal_entries_free(nx_wal_entry *entries, size_t n);

/* Number of pending entries. */
size_t nx_wal_depth(nx_wal *w);

/* Closes and frees (releases the directory lock); NULL is fine. */
void nx_wal_close(nx_wal *w);

/* ── the line format, for the fuzz target and tests ────────────────────────────────────── */

/* Checks a directive id against [A-Za-z0-9._-]{1,NX_WAL_ID_MAX} (ids end up in URL paths;
 * "." and ".." are refused). err may be NULL when only the verdict matters. */
int nx_wal_check_id(const char *directive_id, err_t *err);

/* Builds the line for an entry, trailing newline included (*len counts it). Fails on an
 * invalid id, a report that is not an object, nests deeper than the reader accepts or holds
 * a string with a NUL byte, or a line over NX_WAL_MAX_LINE. Caller frees *line. */
int nx_wal_format_line(const char *directive_id, int64_t written_at_ms, const json_t *report,
                       char **line, size_t *len, err_t *err);

/* Parses and verifies one line (arbitrary bytes; a trailing newline is allowed). On success
 * *out owns a new report reference (release with nx_wal_entry_clear()); on failure *out is
 * untouched and err says what was wrong. */
int nx_wal_parse_line(const char *line, size_t len, nx_wal_entry *out, err_t *err);
void nx_wal_entry_clear(nx_wal_entry *e);

/* Loads a whole WAL image from memory exactly as nx_wal_open() loads the file (same line
 * splitting, bounds, last-wins and skip rules). For the fuzz target and tests. */
int nx_wal_load_buffer(const char *data, size_t len, nx_wal_entry **entries, size_t *n,
                       size_t *skipped_corrupt, err_t *err);
