/* test_ms_store_blobs.c — the mothership store's content-addressed blob files and directive
 * diffs: atomic private writes, hash verification on read, refusal of planted symlinks and
 * path tricks, diff conflicts, and retention / garbage collection that never removes a file
 * still referenced. */
#include "testutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/crypto.h"
#include "core/str.h"
#include "store/store.h"

#define T0 1772202622000LL      /* 2026-02-27T14:30:22.000Z */
#define FAR_FUTURE (T0 + 100LL * 365 * 86400 * 1000)

typedef struct fx {
        char dir[64];
        ms_store *s;
        char account[MS_ID_SIZE];
        char user[MS_ID_SIZE];
        char territory[MS_ID_SIZE];
        char facility[MS_ID_SIZE];
} fx;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
        (void)sb; (void)flag; (void)ftw;
        return remove(path);
}

static int setup(void **state)
{
        fx *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        assert_int_equal(str_copy(f->dir, sizeof(f->dir), "/tmp/ms-store-XXXXXX"), 0);
        assert_non_null(mkdtemp(f->dir));
        err_t err = ERR_INIT;
        assert_int_equal(ms_store_open(f->dir, NULL, &f->s, &err), 0);
        assert_int_equal(ms_account_create(f->s, "acme", T0, f->account, &err), 0);
        assert_int_equal(ms_user_create(f->s, f->account, "alice", T0, f->user, &err), 0);
        ms_territory_new tn = { .account_id = f->account, .name = "n1" };
        assert_int_equal(ms_territory_create(f->s, &tn, T0, f->territory, &err), 0);
        json_t *rp = json_object();
        ms_facility_new fn = { .account_id = f->account, .owner_id = f->user,
                               .territory_id = f->territory, .kind = "empty",
                               .retention_policy = rp };
        assert_int_equal(ms_facility_create(f->s, &fn, T0, f->facility, &err), 0);
        json_decref(rp);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        fx *f = *state;
        ms_store_close(f->s);
        nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(f);
        return 0;
}

static bool code_is(const err_t *err, const char *code)
{
        return err->code && strcmp(err->code, code) == 0;
}

static void blob_path(fx *f, const char *sha, char *out, size_t outsz)
{
        assert_true(str_printf(out, outsz, "%s/blobs/%.2s/%s", f->dir, sha, sha + 2) > 0);
}

static void new_directive(fx *f, char id[MS_ID_SIZE])
{
        err_t err = ERR_INIT;
        ms_directive_new d = { .account_id = f->account, .facility_id = f->facility,
                               .requested_by_user_id = f->user, .state = MS_DIRECTIVE_QUEUED,
                               .command = "git diff" };
        assert_int_equal(ms_directive_insert(f->s, &d, T0, id, &err), 0);
}

static bool file_exists(const char *path)
{
        struct stat sb;
        return lstat(path, &sb) == 0;
}

static const char DIFF[] = "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-old\n+new\n";

/* ---------------------------------------------------------------- raw blobs ---------- */

static void test_blob_put_get_roundtrip_layout_and_mode(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char sha[MS_SHA256_HEX_SIZE];
        assert_int_equal(ms_blob_put(f->s, DIFF, strlen(DIFF), sha, &err), 0);
        char want[MS_SHA256_HEX_SIZE];
        assert_int_equal(crypto_sha256_hex(DIFF, strlen(DIFF), want), 0);
        assert_string_equal(sha, want);
        char path[256];
        blob_path(f, sha, path, sizeof(path));
        struct stat sb;
        assert_int_equal(lstat(path, &sb), 0);
        assert_true(S_ISREG(sb.st_mode));
        assert_int_equal(sb.st_mode & 0777, 0600);
        assert_int_equal(sb.st_size, (off_t)strlen(DIFF));
        uint8_t *data = NULL;
        size_t len = 0;
        assert_int_equal(ms_blob_get(f->s, sha, 1 << 20, &data, &len, &err), 0);
        assert_int_equal(len, strlen(DIFF));
        assert_memory_equal(data, DIFF, len);
        free(data);
}

static void test_blob_put_is_idempotent(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char a[MS_SHA256_HEX_SIZE], b[MS_SHA256_HEX_SIZE];
        assert_int_equal(ms_blob_put(f->s, "same", 4, a, &err), 0);
        assert_int_equal(ms_blob_put(f->s, "same", 4, b, &err), 0);
        assert_string_equal(a, b);
        char dir[256];
        assert_true(str_printf(dir, sizeof(dir), "%s/blobs/%.2s", f->dir, a) > 0);
        /* no temporary files left behind */
        int n = 0;
        DIR *d = opendir(dir);
        assert_non_null(d);
        struct dirent *de;
        while ((de = readdir(d)) != NULL)
                if (de->d_name[0] != '.')
                        n++;
                else
                        assert_true(strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0);
        closedir(d);
        assert_int_equal(n, 1);
}

static void test_blob_empty_content(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char sha[MS_SHA256_HEX_SIZE];
        assert_int_equal(ms_blob_put(f->s, "", 0, sha, &err), 0);
        assert_string_equal(sha,
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        uint8_t *data = NULL;
        size_t len = 1;
        assert_int_equal(ms_blob_get(f->s, sha, 10, &data, &len, &err), 0);
        assert_int_equal(len, 0);
        free(data);
}

static void test_blob_corrupt_file_fails_verification(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char sha[MS_SHA256_HEX_SIZE];
        assert_int_equal(ms_blob_put(f->s, DIFF, strlen(DIFF), sha, &err), 0);
        char path[256];
        blob_path(f, sha, path, sizeof(path));
        int fd = open(path, O_WRONLY);
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, "X", 1, 5), 1);     /* same size, one byte flipped */
        close(fd);
        uint8_t *data = (uint8_t *)1;
        size_t len = 1;
        assert_int_equal(ms_blob_get(f->s, sha, 1 << 20, &data, &len, &err), -1);
        assert_null(data);
        assert_int_equal(len, 0);
        assert_non_null(strstr(err.msg, "corrupt"));
}

static void test_blob_truncated_file_fails_verification(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char sha[MS_SHA256_HEX_SIZE];
        assert_int_equal(ms_blob_put(f->s, DIFF, strlen(DIFF), sha, &err), 0);
        char path[256];
        blob_path(f, sha, path, sizeof(path));
        assert_int_equal(truncate(path, 3), 0);
        uint8_t *data = NULL;
        size_t len = 0;
        assert_int_equal(ms_blob_get(f->s, sha, 1 << 20, &data, &len, &err), -1);
        assert_non_null(strstr(err.msg, "corrupt"));
        /* putting the same content again repairs it */
        err_clear(&err);
        assert_int_equal(ms_blob_put(f->s, DIFF, strlen(DIFF), NULL, &err), 0);
        assert_int_equal(ms_blob_get(f->s, sha, 1 << 20, &data, &len, &err), 0);
        free(data);
}

static void test_blob_larger_than_cap_refused(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char sha[MS_SHA256_HEX_SIZE];
        assert_int_equal(ms_blob_put(f->s, DIFF, strlen(DIFF), sha, &err), 0);
        uint8_t *data = NULL;
        size_t len = 0;
        assert_int_equal(ms_blob_get(f->s, sha, 10, &data, &len, &err), -1);
        assert_true(code_is(&err, ERR_TOO_LARGE));
        assert_null(data);
}

static void test_blob_missing_not_found(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        uint8_t *data = NULL;
        size_t len = 0;
        const char *sha = "0000000000000000000000000000000000000000000000000000000000000000";
        assert_int_equal(ms_blob_get(f->s, sha, 10, &data, &len, &err), -1);
        assert_true(code_is(&err, ERR_NOT_FOUND));
        err_clear(&err);
        assert_int_equal(ms_blob_delete(f->s, sha, &err), -1);
        assert_true(code_is(&err, ERR_NOT_FOUND));
}

static void test_blob_name_must_be_lowercase_hex_sha(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        uint8_t *data = NULL;
        size_t len = 0;
        static const char *const bad[] = {
                "../../../../../../../../../../../../../../../../../../../etc/passwd",
                "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
                "",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                err_clear(&err);
                assert_int_equal(ms_blob_get(f->s, bad[i], 10, &data, &len, &err), -1);
                assert_true(code_is(&err, ERR_INVALID));
                err_clear(&err);
                assert_int_equal(ms_blob_delete(f->s, bad[i], &err), -1);
                assert_true(code_is(&err, ERR_INVALID));
        }
}

static void test_blob_planted_symlink_not_followed(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char sha[MS_SHA256_HEX_SIZE];
        assert_int_equal(crypto_sha256_hex("secret", 6, sha), 0);
        char target[128], dir[256], path[256];
        assert_true(str_printf(target, sizeof(target), "%s/outside", f->dir) > 0);
        FILE *fp = fopen(target, "w");
        assert_non_null(fp);
        fputs("secret", fp);
        fclose(fp);
        assert_true(str_printf(dir, sizeof(dir), "%s/blobs/%.2s", f->dir, sha) > 0);
        assert_int_equal(mkdir(dir, 0700), 0);
        blob_path(f, sha, path, sizeof(path));
        assert_int_equal(symlink(target, path), 0);
        uint8_t *data = NULL;
        size_t len = 0;
        assert_int_equal(ms_blob_get(f->s, sha, 100, &data, &len, &err), -1);
        assert_null(data);
        /* a put of that content refuses to write through or over the link */
        err_clear(&err);
        assert_int_equal(ms_blob_put(f->s, "secret", 6, NULL, &err), -1);
        struct stat sb;
        assert_int_equal(lstat(path, &sb), 0);
        assert_true(S_ISLNK(sb.st_mode));
}

static void test_blob_delete_removes_file(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char sha[MS_SHA256_HEX_SIZE];
        assert_int_equal(ms_blob_put(f->s, "bye", 3, sha, &err), 0);
        assert_int_equal(ms_blob_delete(f->s, sha, &err), 0);
        char path[256];
        blob_path(f, sha, path, sizeof(path));
        assert_false(file_exists(path));
}

/* ---------------------------------------------------------------- diffs -------------- */

static void test_diff_store_and_read(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char d[MS_ID_SIZE];
        new_directive(f, d);
        ms_diff_blob meta;
        bool existed = true;
        assert_int_equal(ms_diff_blob_store(f->s, d, DIFF, strlen(DIFF), T0 + 5, &meta, &existed,
                                            &err), 0);
        assert_false(existed);
        assert_int_equal(meta.byte_size, (int64_t)strlen(DIFF));
        assert_int_equal(meta.created_at, T0 + 5);
        ms_diff_blob got;
        assert_int_equal(ms_diff_blob_get(f->s, d, &got, &err), 0);
        assert_string_equal(got.sha256, meta.sha256);
        assert_string_equal(got.directive_id, d);
        uint8_t *data = NULL;
        size_t len = 0;
        assert_int_equal(ms_diff_blob_read(f->s, d, 1 << 20, &data, &len, &err), 0);
        assert_memory_equal(data, DIFF, len);
        free(data);
}

static void test_diff_same_content_again_accepted(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char d[MS_ID_SIZE];
        new_directive(f, d);
        assert_int_equal(ms_diff_blob_store(f->s, d, DIFF, strlen(DIFF), T0, NULL, NULL, &err), 0);
        bool existed = false;
        ms_diff_blob meta;
        assert_int_equal(ms_diff_blob_store(f->s, d, DIFF, strlen(DIFF), T0 + 9, &meta, &existed,
                                            &err), 0);
        assert_true(existed);
        assert_int_equal(meta.created_at, T0);
}

static void test_diff_different_content_conflicts(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char d[MS_ID_SIZE];
        new_directive(f, d);
        assert_int_equal(ms_diff_blob_store(f->s, d, DIFF, strlen(DIFF), T0, NULL, NULL, &err), 0);
        assert_int_equal(ms_diff_blob_store(f->s, d, "other", 5, T0, NULL, NULL, &err), -1);
        assert_true(code_is(&err, ERR_CONFLICT));
        uint8_t *data = NULL;
        size_t len = 0;
        err_clear(&err);
        assert_int_equal(ms_diff_blob_read(f->s, d, 1 << 20, &data, &len, &err), 0);
        assert_memory_equal(data, DIFF, len);
        free(data);
}

static void test_diff_unknown_directive_not_found(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        assert_int_equal(ms_diff_blob_store(f->s, "01890000-0000-7000-8000-000000000000", DIFF,
                                            strlen(DIFF), T0, NULL, NULL, &err), -1);
        assert_true(code_is(&err, ERR_NOT_FOUND));
        err_clear(&err);
        ms_diff_blob meta;
        char d[MS_ID_SIZE];
        new_directive(f, d);
        assert_int_equal(ms_diff_blob_get(f->s, d, &meta, &err), -1);
        assert_true(code_is(&err, ERR_NOT_FOUND));
}

static void test_diff_purge_removes_row_and_file(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char old[MS_ID_SIZE], young[MS_ID_SIZE];
        new_directive(f, old);
        new_directive(f, young);
        ms_diff_blob mo, my;
        assert_int_equal(ms_diff_blob_store(f->s, old, "old diff", 8, T0, &mo, NULL, &err), 0);
        assert_int_equal(ms_diff_blob_store(f->s, young, "young diff", 10, T0 + 10000, &my, NULL,
                                            &err), 0);
        int64_t purged = -1;
        assert_int_equal(ms_diff_blob_purge_before(f->s, T0 + 5000, 100, &purged, &err), 0);
        assert_int_equal(purged, 1);
        ms_diff_blob meta;
        assert_int_equal(ms_diff_blob_get(f->s, old, &meta, &err), -1);
        err_clear(&err);
        assert_int_equal(ms_diff_blob_get(f->s, young, &meta, &err), 0);
        char path[256];
        blob_path(f, mo.sha256, path, sizeof(path));
        assert_false(file_exists(path));
        blob_path(f, my.sha256, path, sizeof(path));
        assert_true(file_exists(path));
}

static void test_diff_purge_keeps_file_shared_with_live_row(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char a[MS_ID_SIZE], b[MS_ID_SIZE];
        new_directive(f, a);
        new_directive(f, b);
        ms_diff_blob ma;
        assert_int_equal(ms_diff_blob_store(f->s, a, DIFF, strlen(DIFF), T0, &ma, NULL, &err), 0);
        assert_int_equal(ms_diff_blob_store(f->s, b, DIFF, strlen(DIFF), T0 + 10000, NULL, NULL,
                                            &err), 0);
        int64_t purged = 0;
        assert_int_equal(ms_diff_blob_purge_before(f->s, T0 + 5000, 100, &purged, &err), 0);
        assert_int_equal(purged, 1);
        uint8_t *data = NULL;
        size_t len = 0;
        assert_int_equal(ms_diff_blob_read(f->s, b, 1 << 20, &data, &len, &err), 0);
        free(data);
}

static void test_diff_purge_batch_limit(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        for (int i = 0; i < 3; i++) {
                char d[MS_ID_SIZE];
                new_directive(f, d);
                char body[8];
                assert_true(str_printf(body, sizeof(body), "diff%d", i) > 0);
                assert_int_equal(ms_diff_blob_store(f->s, d, body, strlen(body), T0 + i, NULL,
                                                    NULL, &err), 0);
        }
        int64_t purged = 0;
        assert_int_equal(ms_diff_blob_purge_before(f->s, T0 + 1000, 2, &purged, &err), 0);
        assert_int_equal(purged, 2);
        assert_int_equal(ms_diff_blob_purge_before(f->s, T0 + 1000, 0, &purged, &err), 0);
        assert_int_equal(purged, 0);
        assert_int_equal(ms_diff_blob_purge_before(f->s, T0 + 1000, 2, &purged, &err), 0);
        assert_int_equal(purged, 1);
}

static void test_gc_removes_only_unreferenced_blobs(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char d[MS_ID_SIZE], orphan[MS_SHA256_HEX_SIZE];
        new_directive(f, d);
        ms_diff_blob kept;
        assert_int_equal(ms_diff_blob_store(f->s, d, DIFF, strlen(DIFF), T0, &kept, NULL, &err), 0);
        assert_int_equal(ms_blob_put(f->s, "orphan", 6, orphan, &err), 0);
        int64_t removed = -1;
        assert_int_equal(ms_blob_gc_unreferenced(f->s, FAR_FUTURE, &removed, &err), 0);
        assert_int_equal(removed, 1);
        char path[256];
        blob_path(f, orphan, path, sizeof(path));
        assert_false(file_exists(path));
        blob_path(f, kept.sha256, path, sizeof(path));
        assert_true(file_exists(path));
}

static void test_gc_spares_young_files(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char orphan[MS_SHA256_HEX_SIZE];
        assert_int_equal(ms_blob_put(f->s, "fresh", 5, orphan, &err), 0);
        char path[256];
        blob_path(f, orphan, path, sizeof(path));
        /* pin the file's mtime so the outcome does not depend on the clock */
        struct timespec ts[2] = { { T0 / 1000, 0 }, { T0 / 1000, 0 } };
        assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
        int64_t removed = -1;
        assert_int_equal(ms_blob_gc_unreferenced(f->s, T0, &removed, &err), 0);
        assert_int_equal(removed, 0);
        assert_true(file_exists(path));
        assert_int_equal(ms_blob_gc_unreferenced(f->s, T0 + 1, &removed, &err), 0);
        assert_int_equal(removed, 1);
        assert_false(file_exists(path));
}

static void test_gc_removes_stale_temporary_files(void **state)
{
        fx *f = *state;
        err_t err = ERR_INIT;
        char dir[128], tmp[192];
        assert_true(str_printf(dir, sizeof(dir), "%s/blobs/ab", f->dir) > 0);
        assert_int_equal(mkdir(dir, 0700), 0);
        assert_true(str_printf(tmp, sizeof(tmp), "%s/.tmp-0123456789abcdef", dir) > 0);
        FILE *fp = fopen(tmp, "w");
        assert_non_null(fp);
        fputs("half", fp);
        fclose(fp);
        int64_t removed = 0;
        assert_int_equal(ms_blob_gc_unreferenced(f->s, FAR_FUTURE, &removed, &err), 0);
        assert_int_equal(removed, 1);
        assert_false(file_exists(tmp));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
                T(test_blob_put_get_roundtrip_layout_and_mode),
                T(test_blob_put_is_idempotent),
                T(test_blob_empty_content),
                T(test_blob_corrupt_file_fails_verification),
                T(test_blob_truncated_file_fails_verification),
                T(test_blob_larger_than_cap_refused),
                T(test_blob_missing_not_found),
                T(test_blob_name_must_be_lowercase_hex_sha),
                T(test_blob_planted_symlink_not_followed),
                T(test_blob_delete_removes_file),
                T(test_diff_store_and_read),
                T(test_diff_same_content_again_accepted),
                T(test_diff_different_content_conflicts),
                T(test_diff_unknown_directive_not_found),
                T(test_diff_purge_removes_row_and_file),
                T(test_diff_purge_keeps_file_shared_with_live_row),
                T(test_diff_purge_batch_limit),
                T(test_gc_removes_only_unreferenced_blobs),
                T(test_gc_spares_young_files),
                T(test_gc_removes_stale_temporary_files),
#undef T
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
