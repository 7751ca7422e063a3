/* tests/unit/test_nx_tape.c — agent/tape: the debug tape of spec nexus §5.17 (JSONL format,
 * omitted optional keys, dropped empty events, rotation to <path>.1, swallowed errors). */
#include "testutil.h"
#include "agent/tape.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/json.h"
#include "core/str.h"

typedef struct fixture {
        char dir[64];
        char path[128];
        char rotated[140];
} fixture;

static int setup(void **state)
{
        fixture *f = calloc(1, sizeof(*f));
        if (!f)
                return -1;
        if (str_copy(f->dir, sizeof(f->dir), "/tmp/nx_tape_XXXXXX") < 0 || !mkdtemp(f->dir))
                return -1;
        if (str_printf(f->path, sizeof(f->path), "%s/tape.jsonl", f->dir) < 0 ||
            str_printf(f->rotated, sizeof(f->rotated), "%s.1", f->path) < 0)
                return -1;
        *state = f;
        return 0;
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        return remove(p);
}

static int teardown(void **state)
{
        fixture *f = *state;
        (void)chmod(f->dir, 0700);
        nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(f);
        return 0;
}

/* Whole file into a NUL-terminated heap string ("" if missing). */
static char *slurp(const char *path)
{
        FILE *fp = fopen(path, "rb");
        if (!fp)
                return strdup("");
        char *data = NULL;
        size_t cap = 0, len = 0;
        for (;;) {
                if (len + 4096 + 1 > cap) {
                        cap = cap ? cap * 2 : 8192;
                        char *n = realloc(data, cap);
                        assert_non_null(n);
                        data = n;
                }
                size_t r = fread(data + len, 1, cap - len - 1, fp);
                len += r;
                if (r == 0)
                        break;
        }
        fclose(fp);
        data[len] = '\0';
        return data;
}

static size_t count_lines(const char *s)
{
        size_t n = 0;
        for (; *s; s++)
                n += *s == '\n';
        return n;
}

/* The index-th line (0-based) parsed as a JSON object. */
static json_t *line_json(const char *text, size_t index)
{
        const char *p = text;
        for (size_t i = 0; i < index; i++) {
                p = strchr(p, '\n');
                assert_non_null(p);
                p++;
        }
        const char *e = strchr(p, '\n');
        assert_non_null(e);
        err_t err = ERR_INIT;
        json_t *j = json_parse(p, (size_t)(e - p), true, &err);
        if (!j)
                fail_msg("line %zu is not a JSON object: %s", index, err.msg);
        return j;
}

static nx_tape *open_ok(const char *path, int64_t max)
{
        err_t err = ERR_INIT;
        nx_tape *t = NULL;
        if (nx_tape_open(path, max, &t, &err) < 0)
                fail_msg("nx_tape_open: %s", err.msg);
        assert_non_null(t);
        return t;
}

static int64_t file_size(const char *path)
{
        struct stat st;
        if (stat(path, &st) < 0)
                return -1;
        return st.st_size;
}

static void write_file(const char *path, const char *data)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        size_t n = strlen(data);
        assert_int_equal(write(fd, data, n), (ssize_t)n);
        close(fd);
}

/* ── format ─────────────────────────────────────────────────────────────────────────── */

static void test_tape_null_tape_is_a_noop(void **state)
{
        nx_tape_event(NULL, "d1", "f1", "host", "host", "run_started", NULL);
        nx_tape_close(NULL);
}

static void test_tape_line_has_all_keys_in_spec_order(void **state)
{
        fixture *f = *state;
        nx_tape *t = open_ok(f->path, 1 << 20);
        json_t *detail = json_pack("{s:s,s:i}", "status", "succeeded", "exit_code", 0);
        nx_tape_event(t, "d1", "f1", "untrusted", "bwrap", "run_finished", detail);
        nx_tape_close(t);
        char *text = slurp(f->path);
        assert_int_equal(count_lines(text), 1);
        json_t *j = line_json(text, 0);
        const char *want[] = { "ts", "directive_id", "facility_id", "profile", "driver",
                               "event", "detail" };
        size_t i = 0;
        for (void *it = json_object_iter(j); it; it = json_object_iter_next(j, it), i++) {
                assert_true(i < 7);
                assert_string_equal(json_object_iter_key(it), want[i]);
        }
        assert_int_equal(i, 7);
        assert_string_equal(json_string_value(json_object_get(j, "directive_id")), "d1");
        assert_string_equal(json_string_value(json_object_get(j, "facility_id")), "f1");
        assert_string_equal(json_string_value(json_object_get(j, "profile")), "untrusted");
        assert_string_equal(json_string_value(json_object_get(j, "driver")), "bwrap");
        assert_string_equal(json_string_value(json_object_get(j, "event")), "run_finished");
        assert_true(json_equal(json_object_get(j, "detail"), detail));
        json_decref(j);
        json_decref(detail);
        free(text);
}

static void test_tape_ts_is_rfc3339_utc_with_ms(void **state)
{
        fixture *f = *state;
        nx_tape *t = open_ok(f->path, 1 << 20);
        int64_t before = clock_now_ms();
        nx_tape_event(t, NULL, NULL, NULL, NULL, "cancel_requested", NULL);
        int64_t after = clock_now_ms();
        nx_tape_close(t);
        char *text = slurp(f->path);
        json_t *j = line_json(text, 0);
        const char *ts = json_string_value(json_object_get(j, "ts"));
        assert_non_null(ts);
        assert_int_equal(strlen(ts), RFC3339_MS_LEN - 1);
        assert_int_equal(ts[RFC3339_MS_LEN - 2], 'Z');
        err_t err = ERR_INIT;
        int64_t ms = 0;
        assert_int_equal(rfc3339_parse(ts, &ms, &err), 0);
        assert_in_range(ms, before, after);
        json_decref(j);
        free(text);
}

static void test_tape_omits_null_and_empty_optional_keys(void **state)
{
        fixture *f = *state;
        nx_tape *t = open_ok(f->path, 1 << 20);
        nx_tape_event(t, "", NULL, "", NULL, "driver_selected", NULL);
        nx_tape_close(t);
        char *text = slurp(f->path);
        json_t *j = line_json(text, 0);
        assert_int_equal(json_object_size(j), 2);
        assert_non_null(json_object_get(j, "ts"));
        assert_string_equal(json_string_value(json_object_get(j, "event")), "driver_selected");
        json_decref(j);
        free(text);
}

static void test_tape_omits_empty_or_null_detail(void **state)
{
        fixture *f = *state;
        nx_tape *t = open_ok(f->path, 1 << 20);
        json_t *empty = json_object();
        json_t *null = json_null();
        nx_tape_event(t, "d1", NULL, NULL, NULL, "a", empty);
        nx_tape_event(t, "d1", NULL, NULL, NULL, "b", null);
        nx_tape_close(t);
        char *text = slurp(f->path);
        assert_int_equal(count_lines(text), 2);
        for (size_t i = 0; i < 2; i++) {
                json_t *j = line_json(text, i);
                assert_null(json_object_get(j, "detail"));
                json_decref(j);
        }
        json_decref(empty);
        free(text);
}

static void test_tape_drops_event_with_empty_name(void **state)
{
        fixture *f = *state;
        nx_tape *t = open_ok(f->path, 1 << 20);
        nx_tape_event(t, "d1", "f1", "host", "host", "", NULL);
        nx_tape_event(t, "d1", "f1", "host", "host", NULL, NULL);
        nx_tape_event(t, "d1", "f1", "host", "host", "kept", NULL);
        nx_tape_close(t);
        char *text = slurp(f->path);
        assert_int_equal(count_lines(text), 1);
        json_t *j = line_json(text, 0);
        assert_string_equal(json_string_value(json_object_get(j, "event")), "kept");
        json_decref(j);
        free(text);
}

static void test_tape_detail_stays_owned_by_caller(void **state)
{
        fixture *f = *state;
        nx_tape *t = open_ok(f->path, 1 << 20);
        json_t *detail = json_pack("{s:s}", "error", "boom");
        size_t before = detail->refcount;
        nx_tape_event(t, "d1", NULL, NULL, NULL, "driver_error", detail);
        assert_int_equal(detail->refcount, before);
        assert_int_equal(json_object_size(detail), 1);
        json_decref(detail);
        nx_tape_close(t);
}

static void test_tape_escapes_hostile_strings(void **state)
{
        fixture *f = *state;
        nx_tape *t = open_ok(f->path, 1 << 20);
        json_t *detail = json_pack("{s:s}", "error", "line1\nline2\"}{");
        nx_tape_event(t, "d\n1", NULL, NULL, NULL, "driver_error", detail);
        nx_tape_close(t);
        char *text = slurp(f->path);
        assert_int_equal(count_lines(text), 1);
        json_t *j = line_json(text, 0);
        assert_string_equal(json_string_value(json_object_get(j, "directive_id")), "d\n1");
        assert_true(json_equal(json_object_get(j, "detail"), detail));
        json_decref(j);
        json_decref(detail);
        free(text);
}

static void test_tape_drops_invalid_utf8_field_keeps_line(void **state)
{
        fixture *f = *state;
        nx_tape *t = open_ok(f->path, 1 << 20);
        nx_tape_event(t, "d1", "f\xff\xfe", NULL, NULL, "run_started", NULL);
        nx_tape_close(t);
        char *text = slurp(f->path);
        assert_int_equal(count_lines(text), 1);
        json_t *j = line_json(text, 0);
        assert_null(json_object_get(j, "facility_id"));
        assert_string_equal(json_string_value(json_object_get(j, "directive_id")), "d1");
        json_decref(j);
        free(text);
}

/* ── file handling ──────────────────────────────────────────────────────────────────── */

static void test_tape_appends_to_existing_file(void **state)
{
        fixture *f = *state;
        write_file(f->path, "{\"old\":true}\n");
        nx_tape *t = open_ok(f->path, 1 << 20);
        nx_tape_event(t, "d1", NULL, NULL, NULL, "new", NULL);
        nx_tape_close(t);
        char *text = slurp(f->path);
        assert_int_equal(count_lines(text), 2);
        assert_true(str_has_prefix(text, "{\"old\":true}\n"));
        free(text);
}

/* spec nexus §12 #75 */
static void test_tape_rotates_with_max_bytes_one(void **state)
{
        /* §12 vector 75 */
        fixture *f = *state;
        nx_tape *t = open_ok(f->path, 1);
        nx_tape_event(t, "d1", NULL, NULL, NULL, "first", NULL);
        nx_tape_event(t, "d1", NULL, NULL, NULL, "second", NULL);
        nx_tape_close(t);
        assert_true(file_size(f->rotated) > 0);
        char *text = slurp(f->path);
        assert_int_equal(count_lines(text), 1);
        json_t *j = line_json(text, 0);
        assert_string_equal(json_string_value(json_object_get(j, "event")), "second");
        assert_string_equal(json_string_value(json_object_get(j, "directive_id")), "d1");
        json_decref(j);
        free(text);
        char *old = slurp(f->rotated);
        j = line_json(old, 0);
        assert_string_equal(json_string_value(json_object_get(j, "event")), "first");
        json_decref(j);
        free(old);
}

static void test_tape_rotation_replaces_previous_rotated_file(void **state)
{
        fixture *f = *state;
        write_file(f->rotated, "stale\n");
        nx_tape *t = open_ok(f->path, 1);
        nx_tape_event(t, NULL, NULL, NULL, NULL, "one", NULL);
        nx_tape_event(t, NULL, NULL, NULL, NULL, "two", NULL);
        nx_tape_event(t, NULL, NULL, NULL, NULL, "three", NULL);
        nx_tape_close(t);
        char *old = slurp(f->rotated);
        assert_null(strstr(old, "stale"));
        assert_non_null(strstr(old, "\"two\""));
        assert_int_equal(count_lines(old), 1);
        free(old);
}

static void test_tape_rotates_only_when_line_would_pass_max(void **state)
{
        fixture *f = *state;
        nx_tape *t = open_ok(f->path, 1 << 20);
        nx_tape_event(t, "d1", NULL, NULL, NULL, "x", NULL);
        nx_tape_close(t);
        int64_t one = file_size(f->path);
        assert_true(one > 0);
        unlink(f->path);
        /* room for exactly two lines of the same size: no rotation on the second */
        t = open_ok(f->path, 2 * one);
        nx_tape_event(t, "d1", NULL, NULL, NULL, "x", NULL);
        nx_tape_event(t, "d1", NULL, NULL, NULL, "x", NULL);
        assert_int_equal(file_size(f->rotated), -1);
        assert_int_equal(file_size(f->path), 2 * one);
        nx_tape_event(t, "d1", NULL, NULL, NULL, "x", NULL);
        nx_tape_close(t);
        assert_int_equal(file_size(f->rotated), 2 * one);
        assert_int_equal(file_size(f->path), one);
}

static void test_tape_writes_line_larger_than_max(void **state)
{
        fixture *f = *state;
        nx_tape *t = open_ok(f->path, 10);
        char big[400];
        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        json_t *detail = json_pack("{s:s}", "error", big);
        nx_tape_event(t, NULL, NULL, NULL, NULL, "big", detail);
        nx_tape_close(t);
        assert_true(file_size(f->path) > 400);
        assert_int_equal(file_size(f->rotated), -1);   /* an empty file is not rotated */
        json_decref(detail);
}

static void test_tape_rotates_at_open_when_file_already_too_large(void **state)
{
        fixture *f = *state;
        write_file(f->path, "0123456789abcdef\n");
        nx_tape *t = open_ok(f->path, 8);
        assert_int_equal(file_size(f->path), 0);
        char *old = slurp(f->rotated);
        assert_string_equal(old, "0123456789abcdef\n");
        free(old);
        nx_tape_close(t);
}

static void test_tape_keeps_file_at_open_when_exactly_max(void **state)
{
        fixture *f = *state;
        write_file(f->path, "0123456\n");
        nx_tape *t = open_ok(f->path, 8);
        nx_tape_close(t);
        assert_int_equal(file_size(f->path), 8);
        assert_int_equal(file_size(f->rotated), -1);
}

static void test_tape_lines_stay_whole_across_many_rotations(void **state)
{
        fixture *f = *state;
        nx_tape *t = open_ok(f->path, 300);
        for (int i = 0; i < 50; i++) {
                json_t *d = json_pack("{s:i}", "i", i);
                nx_tape_event(t, "d1", "f1", NULL, NULL, "tick", d);
                json_decref(d);
        }
        nx_tape_close(t);
        const char *files[] = { f->path, f->rotated };
        for (size_t k = 0; k < 2; k++) {
                char *text = slurp(files[k]);
                assert_true(strlen(text) <= 300);
                size_t n = count_lines(text);
                assert_true(n >= 1);
                for (size_t i = 0; i < n; i++)
                        json_decref(line_json(text, i));
                free(text);
        }
        char *text = slurp(f->path);
        json_t *last = line_json(text, count_lines(text) - 1);
        assert_int_equal(json_integer_value(json_object_get(json_object_get(last, "detail"),
                                                            "i")), 49);
        json_decref(last);
        free(text);
}

static void test_tape_creates_parent_directories_0755(void **state)
{
        fixture *f = *state;
        char path[256], d1[200], d2[200];
        assert_true(str_printf(d1, sizeof(d1), "%s/a", f->dir) > 0);
        assert_true(str_printf(d2, sizeof(d2), "%s/a/b", f->dir) > 0);
        assert_true(str_printf(path, sizeof(path), "%s/tape.jsonl", d2) > 0);
        mode_t old = umask(022);
        nx_tape *t = open_ok(path, 100);
        umask(old);
        nx_tape_event(t, NULL, NULL, NULL, NULL, "e", NULL);
        nx_tape_close(t);
        struct stat st;
        assert_int_equal(stat(d1, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0755);
        assert_int_equal(stat(d2, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0755);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0644);
}

static void test_tape_relative_path_in_cwd(void **state)
{
        fixture *f = *state;
        char cwd[4096];
        assert_non_null(getcwd(cwd, sizeof(cwd)));
        assert_int_equal(chdir(f->dir), 0);
        err_t err = ERR_INIT;
        nx_tape *t = NULL;
        int r = nx_tape_open("rel-tape.jsonl", 100, &t, &err);
        nx_tape_event(t, NULL, NULL, NULL, NULL, "e", NULL);
        nx_tape_close(t);
        assert_int_equal(chdir(cwd), 0);
        assert_int_equal(r, 0);
        char p[200];
        assert_true(str_printf(p, sizeof(p), "%s/rel-tape.jsonl", f->dir) > 0);
        assert_true(file_size(p) > 0);
}

static void test_tape_refuses_max_bytes_below_one(void **state)
{
        fixture *f = *state;
        err_t err = ERR_INIT;
        nx_tape *t = (nx_tape *)&err;   /* must be reset to NULL */
        assert_int_equal(nx_tape_open(f->path, 0, &t, &err), -1);
        assert_null(t);
        assert_non_null(strstr(err.msg, "max_bytes"));
        assert_int_equal(file_size(f->path), -1);
}

static void test_tape_refuses_empty_path(void **state)
{
        err_t err = ERR_INIT;
        nx_tape *t = NULL;
        assert_int_equal(nx_tape_open("", 100, &t, &err), -1);
        assert_non_null(strstr(err.msg, "open debug tape"));
        assert_null(t);
}

static void test_tape_parent_is_a_file_fails_with_dir_message(void **state)
{
        fixture *f = *state;
        char blocker[200], path[256];
        assert_true(str_printf(blocker, sizeof(blocker), "%s/file", f->dir) > 0);
        write_file(blocker, "x");
        assert_true(str_printf(path, sizeof(path), "%s/sub/tape.jsonl", blocker) > 0);
        err_t err = ERR_INIT;
        nx_tape *t = NULL;
        assert_int_equal(nx_tape_open(path, 100, &t, &err), -1);
        assert_true(str_has_prefix(err.msg, "create debug tape dir: "));
        assert_int_equal(err.errnum, ENOTDIR);
}

static void test_tape_path_is_a_directory_fails_with_open_message(void **state)
{
        fixture *f = *state;
        err_t err = ERR_INIT;
        nx_tape *t = NULL;
        assert_int_equal(nx_tape_open(f->dir, 100, &t, &err), -1);
        assert_true(str_has_prefix(err.msg, "open debug tape: "));
        assert_null(t);
}

static void test_tape_swallows_errors_and_recovers(void **state)
{
        fixture *f = *state;
        char sub[200], path[256];
        assert_true(str_printf(sub, sizeof(sub), "%s/gone", f->dir) > 0);
        assert_true(str_printf(path, sizeof(path), "%s/tape.jsonl", sub) > 0);
        nx_tape *t = open_ok(path, 1);
        nx_tape_event(t, NULL, NULL, NULL, NULL, "first", NULL);
        /* the directory disappears: rotation and reopen fail, the event is dropped */
        char rot[300];
        assert_true(str_printf(rot, sizeof(rot), "%s.1", path) > 0);
        unlink(path);
        rmdir(sub);
        nx_tape_event(t, NULL, NULL, NULL, NULL, "lost", NULL);
        assert_int_equal(mkdir(sub, 0755), 0);
        nx_tape_event(t, NULL, NULL, NULL, NULL, "back", NULL);
        nx_tape_close(t);
        char *text = slurp(path);
        assert_int_equal(count_lines(text), 1);
        assert_non_null(strstr(text, "\"back\""));
        free(text);
}

static void test_tape_failed_rotation_keeps_existing_lines(void **state)
{
        fixture *f = *state;
        /* <path>.1 is a non-empty directory: neither unlink nor rename can replace it */
        char inner[200];
        assert_int_equal(mkdir(f->rotated, 0755), 0);
        assert_true(str_printf(inner, sizeof(inner), "%s/keep", f->rotated) > 0);
        write_file(inner, "x");
        nx_tape *t = open_ok(f->path, 1);
        nx_tape_event(t, NULL, NULL, NULL, NULL, "first", NULL);
        nx_tape_event(t, NULL, NULL, NULL, NULL, "second", NULL);
        nx_tape_close(t);
        char *text = slurp(f->path);
        assert_int_equal(count_lines(text), 2);
        assert_non_null(strstr(text, "\"first\""));
        assert_non_null(strstr(text, "\"second\""));
        free(text);
}

struct writer_arg {
        nx_tape *t;
        int id;
};

static void *writer(void *p)
{
        struct writer_arg *a = p;
        char did[16];
        if (str_printf(did, sizeof(did), "d%d", a->id) < 0)
                return NULL;
        for (int i = 0; i < 100; i++) {
                json_t *d = json_pack("{s:i}", "i", i);
                nx_tape_event(a->t, did, NULL, NULL, NULL, "tick", d);
                json_decref(d);
        }
        return NULL;
}

static void test_tape_concurrent_events_stay_whole_lines(void **state)
{
        fixture *f = *state;
        nx_tape *t = open_ok(f->path, 1 << 24);
        pthread_t th[8];
        struct writer_arg args[8];
        for (int i = 0; i < 8; i++) {
                args[i] = (struct writer_arg){ t, i };
                assert_int_equal(pthread_create(&th[i], NULL, writer, &args[i]), 0);
        }
        for (int i = 0; i < 8; i++)
                pthread_join(th[i], NULL);
        nx_tape_close(t);
        char *text = slurp(f->path);
        assert_int_equal(count_lines(text), 800);
        for (size_t i = 0; i < 800; i++)
                json_decref(line_json(text, i));
        free(text);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_tape_null_tape_is_a_noop),
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
                T(test_tape_line_has_all_keys_in_spec_order),
                T(test_tape_ts_is_rfc3339_utc_with_ms),
                T(test_tape_omits_null_and_empty_optional_keys),
                T(test_tape_omits_empty_or_null_detail),
                T(test_tape_drops_event_with_empty_name),
                T(test_tape_detail_stays_owned_by_caller),
                T(test_tape_escapes_hostile_strings),
                T(test_tape_drops_invalid_utf8_field_keeps_line),
                T(test_tape_appends_to_existing_file),
                T(test_tape_rotates_with_max_bytes_one),
                T(test_tape_rotation_replaces_previous_rotated_file),
                T(test_tape_rotates_only_when_line_would_pass_max),
                T(test_tape_writes_line_larger_than_max),
                T(test_tape_rotates_at_open_when_file_already_too_large),
                T(test_tape_keeps_file_at_open_when_exactly_max),
                T(test_tape_lines_stay_whole_across_many_rotations),
                T(test_tape_creates_parent_directories_0755),
                T(test_tape_relative_path_in_cwd),
                T(test_tape_refuses_max_bytes_below_one),
                cmocka_unit_test(test_tape_refuses_empty_path),
                T(test_tape_parent_is_a_file_fails_with_dir_message),
                T(test_tape_path_is_a_directory_fails_with_open_message),
                T(test_tape_swallows_errors_and_recovers),
                T(test_tape_failed_rotation_keeps_existing_lines),
                T(test_tape_concurrent_events_stay_whole_lines),
#undef T
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
