/* store/store_blobs.c — content-addressed blob files under <data_dir>/blobs (DESIGN D7) and
 * the directive diff metadata that references them (spec §1.13, retention §10.3).
 *
 * A blob lives at blobs/<first 2 hex>/<remaining 62 hex> of its SHA-256, mode 0600, written
 * through a temporary file that is fsync'd and renamed into place (then the directory is
 * fsync'd), so a reader never sees a partial blob. Every path is opened relative to the blob
 * directory fd with O_NOFOLLOW: a symlink planted in the data dir is refused, never followed.
 * Reads re-hash the content, so a corrupted file is reported instead of served.
 *
 * Files are shared by content: one file may back several rows. A file is removed only inside
 * a write transaction that first checks the blob_refs view, and new references write their
 * file inside their own write transaction, so a removal never races a new reference. */
#include "store/store_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/crypto.h"
#include "core/str.h"

#define TMP_PREFIX ".tmp-"

static bool sha_ok(const char *sha)
{
        if (!sha || strlen(sha) != 64)
                return false;
        for (size_t i = 0; i < 64; i++)
                if (!((sha[i] >= '0' && sha[i] <= '9') || (sha[i] >= 'a' && sha[i] <= 'f')))
                        return false;
        return true;
}

static int sha_check(const char *sha, err_t *err)
{
        if (sha_ok(sha))
                return 0;
        return err_set(err, "blob name \"%.70s\" is not a lower-case hex SHA-256",
                       sha ? sha : "");
}

/* Opens blobs/<sha[0..2]>, creating it when create is set. */
static int blob_subdir(ms_store *s, const char *sha, bool create, err_t *err)
{
        char dir[3] = { sha[0], sha[1], '\0' };
        if (create) {
                if (mkdirat(s->blob_dirfd, dir, 0700) == 0) {
                        /* make the new directory entry itself durable */
                        if (fsync(s->blob_dirfd) < 0)
                                return err_errno(err, errno, "sync blob directory");
                } else if (errno != EEXIST) {
                        return err_errno(err, errno, "create blob directory %s", dir);
                }
        }
        int fd = openat(s->blob_dirfd, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                if (errno == ENOENT)
                        return err_setc(err, ERR_NOT_FOUND, "blob %s not found", sha);
                return err_errno(err, errno, "open blob directory %s", dir);
        }
        return fd;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -1;
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

/* Writes the blob named sha (already the hash of data) unless a regular file of that size is
 * already there. */
static int blob_write(ms_store *s, const char *sha, const void *data, size_t len, err_t *err)
{
        _cleanup_close_ int dfd = blob_subdir(s, sha, true, err);
        if (dfd < 0)
                return -1;
        const char *name = sha + 2;
        struct stat stb;
        if (fstatat(dfd, name, &stb, AT_SYMLINK_NOFOLLOW) == 0) {
                if (!S_ISREG(stb.st_mode))
                        return err_setc(err, ERR_INTERNAL, "blob %s exists but is not a regular "
                                        "file; refusing to touch it", sha);
                if ((size_t)stb.st_size == len)
                        return 0;       /* same content address, same size: already stored */
        } else if (errno != ENOENT) {
                return err_errno(err, errno, "inspect blob %s", sha);
        }
        char rnd[17];
        if (crypto_random_hex(8, rnd, sizeof(rnd), err) < 0)
                return -1;
        char tmp[sizeof(TMP_PREFIX) + sizeof(rnd)];
        if (str_printf(tmp, sizeof(tmp), "%s%s", TMP_PREFIX, rnd) < 0)
                return err_setc(err, ERR_INTERNAL, "temporary blob name too long");
        _cleanup_close_ int fd = openat(dfd, tmp,
                                        O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                                        0600);
        if (fd < 0)
                return err_errno(err, errno, "create temporary blob file");
        if (write_all(fd, data, len) < 0 || fsync(fd) < 0) {
                int e = errno;
                unlinkat(dfd, tmp, 0);
                return err_errno(err, e, "write blob %s", sha);
        }
        if (close(steal_fd(&fd)) < 0) {
                int e = errno;
                unlinkat(dfd, tmp, 0);
                return err_errno(err, e, "close blob %s", sha);
        }
        if (renameat(dfd, tmp, dfd, name) < 0) {
                int e = errno;
                unlinkat(dfd, tmp, 0);
                return err_errno(err, e, "store blob %s", sha);
        }
        if (fsync(dfd) < 0)
                return err_errno(err, errno, "sync blob directory of %s", sha);
        return 0;
}

int ms_blob_put(ms_store *s, const void *data, size_t len, char sha256_hex[MS_SHA256_HEX_SIZE],
                err_t *err)
{
        if (!data && len > 0)
                return err_set(err, "blob data missing");
        char sha[MS_SHA256_HEX_SIZE];
        if (crypto_sha256_hex(data ? data : "", len, sha) < 0)
                return err_setc(err, ERR_INTERNAL, "hash blob: SHA-256 failed");
        if (blob_write(s, sha, data ? data : "", len, err) < 0)
                return -1;
        if (sha256_hex)
                memcpy(sha256_hex, sha, MS_SHA256_HEX_SIZE);
        return 0;
}

int ms_blob_get(ms_store *s, const char *sha256_hex, size_t max_len, uint8_t **data,
                size_t *len, err_t *err)
{
        *data = NULL;
        *len = 0;
        if (sha_check(sha256_hex, err) < 0)
                return -1;
        _cleanup_close_ int dfd = blob_subdir(s, sha256_hex, false, err);
        if (dfd < 0)
                return -1;
        _cleanup_close_ int fd = openat(dfd, sha256_hex + 2, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                if (errno == ENOENT)
                        return err_setc(err, ERR_NOT_FOUND, "blob %s not found", sha256_hex);
                return err_errno(err, errno, "open blob %s", sha256_hex);
        }
        struct stat stb;
        if (fstat(fd, &stb) < 0)
                return err_errno(err, errno, "inspect blob %s", sha256_hex);
        if (!S_ISREG(stb.st_mode))
                return err_setc(err, ERR_INTERNAL, "blob %s is not a regular file", sha256_hex);
        size_t size = (size_t)stb.st_size;
        if (size > max_len)
                return err_setc(err, ERR_TOO_LARGE, "blob %s has %zu bytes, more than %zu",
                                sha256_hex, size, max_len);
        _cleanup_free_ uint8_t *buf = malloc(size ? size : 1);
        if (!buf)
                return err_errno(err, ENOMEM, "read blob %s", sha256_hex);
        size_t got = 0;
        while (got < size) {
                ssize_t n = read(fd, buf + got, size - got);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return err_errno(err, errno, "read blob %s", sha256_hex);
                }
                if (n == 0)
                        break;
                got += (size_t)n;
        }
        char sha[MS_SHA256_HEX_SIZE];
        if (crypto_sha256_hex(buf, got, sha) < 0)
                return err_setc(err, ERR_INTERNAL, "hash blob: SHA-256 failed");
        if (got != size || strcmp(sha, sha256_hex) != 0)
                return err_setc(err, ERR_INTERNAL, "blob %s is corrupt: its content hashes to %s",
                                sha256_hex, sha);
        *data = steal_ptr(&buf);
        *len = got;
        return 0;
}

int ms_blob_delete(ms_store *s, const char *sha256_hex, err_t *err)
{
        if (sha_check(sha256_hex, err) < 0)
                return -1;
        _cleanup_close_ int dfd = blob_subdir(s, sha256_hex, false, err);
        if (dfd < 0)
                return -1;
        if (unlinkat(dfd, sha256_hex + 2, 0) < 0) {
                if (errno == ENOENT)
                        return err_setc(err, ERR_NOT_FOUND, "blob %s not found", sha256_hex);
                return err_errno(err, errno, "remove blob %s", sha256_hex);
        }
        return 0;
}

/* ---------------------------------------------------------------- references -------- */

static const char sql_blob_referenced[] = "SELECT 1 FROM blob_refs WHERE sha256 = ?1 LIMIT 1";

/* Inside a write transaction: removes the file of sha unless a row still references it. */
static int blob_drop_if_unreferenced(ms_store *s, ms_conn *c, const char *sha, bool *removed,
                                     err_t *err)
{
        *removed = false;
        int r = db_exists(c, sql_blob_referenced, sha, err);
        if (r != 0)
                return r < 0 ? -1 : 0;
        if (ms_blob_delete(s, sha, err) < 0) {
                if (strcmp(err->code, ERR_NOT_FOUND) != 0)
                        return -1;
                err_clear(err);
                return 0;
        }
        *removed = true;
        return 0;
}

typedef struct gc_ctx {
        const char *sha;
        bool removed;
} gc_ctx;

static int gc_one_tx(ms_store *s, void *p, err_t *err)
{
        gc_ctx *ctx = p;
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        return blob_drop_if_unreferenced(s, c, ctx->sha, &ctx->removed, err);
}

static bool hex_name(const char *name, size_t len)
{
        if (strlen(name) != len)
                return false;
        for (size_t i = 0; i < len; i++)
                if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
                        return false;
        return true;
}

static int64_t mtime_ms(const struct stat *stb)
{
        return (int64_t)stb->st_mtim.tv_sec * 1000 + stb->st_mtim.tv_nsec / 1000000;
}

/* Collects garbage in one blobs/<xx> directory. */
static int gc_subdir(ms_store *s, const char *dname, int64_t older_than, int64_t *removed,
                     err_t *err)
{
        int dfd = openat(s->blob_dirfd, dname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
                return errno == ENOENT || errno == ELOOP || errno == ENOTDIR ? 0
                       : err_errno(err, errno, "open blob directory %s", dname);
        DIR *d = fdopendir(dfd);
        if (!d) {
                int e = errno;
                close(dfd);
                return err_errno(err, e, "read blob directory %s", dname);
        }
        int rc = 0;
        struct dirent *de;
        while (rc == 0 && (de = readdir(d)) != NULL) {
                struct stat stb;
                if (fstatat(dfd, de->d_name, &stb, AT_SYMLINK_NOFOLLOW) < 0 ||
                    !S_ISREG(stb.st_mode) || mtime_ms(&stb) >= older_than)
                        continue;
                if (str_has_prefix(de->d_name, TMP_PREFIX)) {
                        /* a put that died before its rename */
                        if (unlinkat(dfd, de->d_name, 0) == 0)
                                (*removed)++;
                        continue;
                }
                if (!hex_name(de->d_name, 62))
                        continue;
                char sha[MS_SHA256_HEX_SIZE];
                if (str_printf(sha, sizeof(sha), "%s%s", dname, de->d_name) < 0)
                        continue;
                gc_ctx ctx = { sha, false };
                rc = ms_tx(s, gc_one_tx, &ctx, err);
                if (rc == 0 && ctx.removed)
                        (*removed)++;
        }
        closedir(d);
        return rc;
}

int ms_blob_gc_unreferenced(ms_store *s, int64_t older_than, int64_t *removed, err_t *err)
{
        int64_t n = 0;
        if (removed)
                *removed = 0;
        /* a fresh open description: a dup would share (and move) blob_dirfd's offset */
        int fd = openat(s->blob_dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return err_errno(err, errno, "read blob directory");
        DIR *d = fdopendir(fd);
        if (!d) {
                int e = errno;
                close(fd);
                return err_errno(err, e, "read blob directory");
        }
        int rc = 0;
        struct dirent *de;
        while (rc == 0 && (de = readdir(d)) != NULL) {
                if (hex_name(de->d_name, 2))
                        rc = gc_subdir(s, de->d_name, older_than, &n, err);
        }
        closedir(d);
        if (removed)
                *removed = n;
        return rc < 0 ? err_wrap(err, "blob garbage collection") : 0;
}

/* ---------------------------------------------------------------- diff blobs --------- */

static const char sql_diff_get[] =
        "SELECT directive_id, sha256, byte_size, created_at FROM diff_blobs "
        "WHERE directive_id = ?1";
static const char sql_diff_insert[] =
        "INSERT INTO diff_blobs (directive_id, sha256, byte_size, created_at) "
        "VALUES (?1, ?2, ?3, ?4)";

static int diff_read(sqlite3_stmt *st, ms_diff_blob *out, err_t *err)
{
        memset(out, 0, sizeof(*out));
        if (db_col_fixed(st, 0, out->directive_id, sizeof(out->directive_id), err) < 0 ||
            db_col_fixed(st, 1, out->sha256, sizeof(out->sha256), err) < 0 ||
            db_col_time(st, 3, &out->created_at, err) < 0)
                return -1;
        out->byte_size = sqlite3_column_int64(st, 2);
        return 0;
}

/* 1 and *out filled when the directive has a diff, 0 when not, -1 on error. */
static int diff_lookup(ms_conn *c, const char *directive_id, ms_diff_blob *out, err_t *err)
{
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_diff_get, err);
        if (!st || db_bind_text(c, st, 1, directive_id, err) < 0)
                return -1;
        int r = db_step(c, st, err, "read diff blob");
        if (r <= 0)
                return r;
        return diff_read(st, out, err) < 0 ? -1 : 1;
}

typedef struct diff_store_ctx {
        const char *directive_id;
        const void *data;
        size_t len;
        const char *sha;
        int64_t now;
        ms_diff_blob row;
        bool existed;
} diff_store_ctx;

static int diff_store_tx(ms_store *s, void *p, err_t *err)
{
        diff_store_ctx *ctx = p;
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        int r = diff_lookup(c, ctx->directive_id, &ctx->row, err);
        if (r < 0)
                return -1;
        if (r == 1) {
                /* §3.2.7 step 5: the same diff again is fine, a different one is not */
                if (strcmp(ctx->row.sha256, ctx->sha) != 0 ||
                    ctx->row.byte_size != (int64_t)ctx->len)
                        return err_setc(err, ERR_CONFLICT, "directive %s already has a different "
                                        "diff", ctx->directive_id);
                ctx->existed = true;
                /* rewrite the file if it went missing (idempotent when present) */
                return blob_write(s, ctx->sha, ctx->data, ctx->len, err);
        }
        if (blob_write(s, ctx->sha, ctx->data, ctx->len, err) < 0)
                return -1;
        _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_diff_insert, err);
        if (!st || db_bind_text(c, st, 1, ctx->directive_id, err) < 0 ||
            db_bind_text(c, st, 2, ctx->sha, err) < 0 ||
            db_bind_int(c, st, 3, (int64_t)ctx->len, err) < 0 ||
            db_bind_time(c, st, 4, ctx->now, err) < 0 ||
            db_exec_stmt(c, st, err, "insert diff blob") < 0)
                return -1;
        memset(&ctx->row, 0, sizeof(ctx->row));
        memcpy(ctx->row.directive_id, ctx->directive_id, MS_ID_SIZE);
        memcpy(ctx->row.sha256, ctx->sha, MS_SHA256_HEX_SIZE);
        ctx->row.byte_size = (int64_t)ctx->len;
        ctx->row.created_at = ctx->now;
        ctx->existed = false;
        return 0;
}

int ms_diff_blob_store(ms_store *s, const char *directive_id, const void *data, size_t len,
                       int64_t now, ms_diff_blob *out, bool *existed, err_t *err)
{
        if (!ms_id_ok(directive_id))
                return ms_not_found(err, "directive", directive_id);
        if (!data && len > 0)
                return err_set(err, "diff data missing");
        char sha[MS_SHA256_HEX_SIZE];
        if (crypto_sha256_hex(data ? data : "", len, sha) < 0)
                return err_setc(err, ERR_INTERNAL, "hash diff: SHA-256 failed");
        diff_store_ctx ctx = { directive_id, data ? data : "", len, sha, ms_now(now),
                               { { 0 }, { 0 }, 0, 0 }, false };
        if (ms_tx(s, diff_store_tx, &ctx, err) < 0)
                return err_wrap(err, "store diff of directive %s", directive_id);
        if (out)
                *out = ctx.row;
        if (existed)
                *existed = ctx.existed;
        return 0;
}

int ms_diff_blob_get(ms_store *s, const char *directive_id, ms_diff_blob *out, err_t *err)
{
        memset(out, 0, sizeof(*out));
        if (!ms_id_ok(directive_id))
                return ms_not_found(err, "diff of directive", directive_id);
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        int r = diff_lookup(c, directive_id, out, err);
        if (r < 0)
                return -1;
        return r == 1 ? 0 : ms_not_found(err, "diff of directive", directive_id);
}

int ms_diff_blob_read(ms_store *s, const char *directive_id, size_t max_len, uint8_t **data,
                      size_t *len, err_t *err)
{
        *data = NULL;
        *len = 0;
        ms_diff_blob row;
        if (ms_diff_blob_get(s, directive_id, &row, err) < 0)
                return -1;
        if (ms_blob_get(s, row.sha256, max_len, data, len, err) < 0)
                return err_wrap(err, "diff of directive %s", directive_id);
        return 0;
}

static const char sql_diff_expired[] =
        "SELECT directive_id FROM diff_blobs WHERE created_at < ?1 "
        "ORDER BY created_at, directive_id LIMIT ?2";
static const char sql_diff_delete[] =
        "DELETE FROM diff_blobs WHERE directive_id = ?1 AND created_at < ?2 RETURNING sha256";

typedef struct purge_ctx {
        const char *directive_id;
        int64_t cutoff;
        bool purged;
} purge_ctx;

static int purge_one_tx(ms_store *s, void *p, err_t *err)
{
        purge_ctx *ctx = p;
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        char sha[MS_SHA256_HEX_SIZE];
        {
                _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_diff_delete, err);
                if (!st || db_bind_text(c, st, 1, ctx->directive_id, err) < 0 ||
                    db_bind_time(c, st, 2, ctx->cutoff, err) < 0)
                        return -1;
                int r = db_step(c, st, err, "delete diff blob");
                if (r <= 0)
                        return r;       /* purged meanwhile: nothing to do */
                if (db_col_fixed(st, 0, sha, sizeof(sha), err) < 0)
                        return -1;
                while ((r = db_step(c, st, err, "delete diff blob")) > 0)
                        ;
                if (r < 0)
                        return -1;
        }
        ctx->purged = true;
        /* the file goes while the write lock is held, so no new reference can appear between
         * the check and the unlink */
        bool removed;
        return blob_drop_if_unreferenced(s, c, sha, &removed, err);
}

int ms_diff_blob_purge_before(ms_store *s, int64_t cutoff, int batch_size, int64_t *purged,
                              err_t *err)
{
        if (purged)
                *purged = 0;
        if (batch_size <= 0)
                return 0;
        if (batch_size > MS_LIST_MAX)
                batch_size = MS_LIST_MAX;
        ms_conn *c = ms_conn_get(s, err);
        if (!c)
                return -1;
        char (*ids)[MS_ID_SIZE] = calloc((size_t)batch_size, MS_ID_SIZE);
        if (!ids)
                return err_errno(err, ENOMEM, "diff blob retention");
        size_t n = 0;
        {
                _cleanup_stmt_ sqlite3_stmt *st = db_prepare(c, sql_diff_expired, err);
                int r = !st || db_bind_time(c, st, 1, cutoff, err) < 0 ||
                        db_bind_int(c, st, 2, batch_size, err) < 0 ? -1 : 0;
                while (r == 0 && (r = db_step(c, st, err, "list expired diffs")) > 0) {
                        r = db_col_fixed(st, 0, ids[n], MS_ID_SIZE, err);
                        if (r == 0)
                                n++;
                }
                if (r < 0) {
                        free(ids);
                        return err_wrap(err, "diff blob retention");
                }
        }
        /* §10.3: one failure is reported but does not stop the others */
        err_t first = ERR_INIT;
        int64_t done = 0;
        for (size_t i = 0; i < n; i++) {
                err_t one = ERR_INIT;
                purge_ctx ctx = { ids[i], cutoff, false };
                if (ms_tx(s, purge_one_tx, &ctx, &one) < 0) {
                        if (!err_is_set(&first))
                                first = one;
                        continue;
                }
                done += ctx.purged;
        }
        free(ids);
        if (purged)
                *purged = done;
        if (err_is_set(&first)) {
                *err = first;
                return err_wrap(err, "diff blob retention");
        }
        return 0;
}
