/* tests/fuzz/fuzz_wal.c — agent/wal line format and loader (DESIGN D16, D19: WAL records are
 * read back after a crash, so the reader must survive anything on disk).
 *
 * 1. The bytes as one WAL line: nx_wal_parse_line() must never crash or leak, and a failure
 *    always explains itself in err. An accepted line's report, written again by the writer,
 *    must parse back to an equal entry.
 * 2. The bytes as a report (a JSON object): if the writer accepts it, the line must parse back
 *    to an equal report; the writer may refuse it only for nesting depth. Changing any one
 *    byte of that line must make it fail verification, or leave an equal entry.
 * 3. The bytes as a whole WAL image: nx_wal_load_buffer() must never crash or leak, never
 *    return more than NX_WAL_MAX_ENTRIES entries, never two entries for one id, and only
 *    entries that verify on their own.
 *
 * The fuzz build links only core and proto (tests/fuzz/meson.build), so the WAL's single
 * translation unit is compiled into this target directly. */
#include "../../src/nexus/agent/wal.c"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MS INT64_C(1772202622123)
#define FUZZ_ID "0195f0e4-7a1b-7c3d-8e9f-0a1b2c3d4e5f"

static bool entries_equal(const nx_wal_entry *a, const nx_wal_entry *b)
{
        return strcmp(a->directive_id, b->directive_id) == 0 &&
               a->written_at_ms == b->written_at_ms && json_equal(a->report, b->report);
}

/* Writes e's report under e's id again and checks it reads back equal. */
static void rewrite_round_trip(const nx_wal_entry *e)
{
        char *line = NULL;
        size_t len = 0;
        err_t err = ERR_INIT;
        if (nx_wal_format_line(e->directive_id, FUZZ_MS, e->report, &line, &len, &err) < 0) {
                /* canonical numbers can be longer than their input ("1e300") */
                if (strcmp(err.code, ERR_TOO_LARGE) != 0)
                        __builtin_trap();
                return;
        }
        nx_wal_entry back;
        if (nx_wal_parse_line(line, len, &back, &err) < 0)
                __builtin_trap();
        nx_wal_entry want = *e;
        want.written_at_ms = FUZZ_MS;
        if (!entries_equal(&back, &want))
                __builtin_trap();
        nx_wal_entry_clear(&back);
        free(line);
}

static void as_line(const uint8_t *data, size_t size)
{
        nx_wal_entry e;
        memset(&e, 0, sizeof(e));
        err_t err = ERR_INIT;
        if (nx_wal_parse_line((const char *)data, size, &e, &err) < 0) {
                if (!err_is_set(&err) || e.report)
                        __builtin_trap();
                return;
        }
        if (!json_is_object(e.report) || nx_wal_check_id(e.directive_id, &err) < 0)
                __builtin_trap();
        rewrite_round_trip(&e);
        nx_wal_entry_clear(&e);
}

static void as_report(const uint8_t *data, size_t size)
{
        err_t err = ERR_INIT;
        json_t *report = json_parse((const char *)data, size, true, &err);
        if (!report)
                return;
        char *line = NULL;
        size_t len = 0;
        if (nx_wal_format_line(FUZZ_ID, FUZZ_MS, report, &line, &len, &err) < 0) {
                if (!strstr(err.msg, "deeper") && strcmp(err.code, ERR_TOO_LARGE) != 0)
                        __builtin_trap();
                json_decref(report);
                return;
        }
        nx_wal_entry want = { .written_at_ms = FUZZ_MS, .report = report };
        memcpy(want.directive_id, FUZZ_ID, sizeof(FUZZ_ID));
        nx_wal_entry back;
        if (nx_wal_parse_line(line, len, &back, &err) < 0 || !entries_equal(&back, &want))
                __builtin_trap();
        nx_wal_entry_clear(&back);

        /* One changed byte, chosen by the input: detected, or harmless. */
        uint32_t h = 2166136261u;
        for (size_t i = 0; i < size; i++)
                h = (h ^ data[i]) * 16777619u;
        size_t pos = h % (len - 1);   /* not the newline */
        uint8_t x = (uint8_t)(h >> 24) | 1;
        line[pos] = (char)(line[pos] ^ x);
        err_clear(&err);
        if (nx_wal_parse_line(line, len, &back, &err) == 0) {
                if (!entries_equal(&back, &want))
                        __builtin_trap();
                nx_wal_entry_clear(&back);
        } else if (!err_is_set(&err)) {
                __builtin_trap();
        }
        free(line);
        json_decref(report);
}

static void as_image(const uint8_t *data, size_t size)
{
        nx_wal_entry *v = NULL;
        size_t n = 0, skipped = 0;
        err_t err = ERR_INIT;
        if (nx_wal_load_buffer((const char *)data, size, &v, &n, &skipped, &err) < 0)
                __builtin_trap();   /* contents never fail a load; ENOMEM aside */
        if (n > NX_WAL_MAX_ENTRIES || (n == 0) != (v == NULL))
                __builtin_trap();
        /* every line holds at least "{}" plus a newline */
        if (skipped > size)
                __builtin_trap();
        for (size_t i = 0; i < n; i++) {
                if (!json_is_object(v[i].report))
                        __builtin_trap();
                for (size_t k = i + 1; k < n && k < i + 64; k++) {
                        if (strcmp(v[i].directive_id, v[k].directive_id) == 0)
                                __builtin_trap();
                }
        }
        nx_wal_entries_free(v, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        as_line(data, size);
        as_report(data, size);
        as_image(data, size);
        return 0;
}
