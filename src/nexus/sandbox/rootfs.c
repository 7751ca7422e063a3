/* sandbox/rootfs.c — prepare, manifest and verify the bwrap rootfs. See rootfs.h. */
#include "sandbox/rootfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "core/crypto.h"
#include "core/str.h"

#define MANIFEST_MAGIC "# nexus-rootfs-manifest v1"
#define TOOL_LINE_MAX 2048
#define CAPTURE_MAX (1u << 20)

/* ------------------------------------------------------------ entries ------------- */

typedef struct rentry {
        char *path;          /* "/" or "/a/b", raw bytes */
        char type;           /* 'f', 'd', 'l' */
        unsigned mode;       /* st_mode & 07777 */
        uint32_t uid;
        uint32_t gid;
        uint64_t size;       /* 0 for directories (fs-dependent) */
        int64_t mtime_s;
        long mtime_ns;
        char sha[CRYPTO_SHA256_HEX_LEN + 1];   /* "" when not computed */
        char *target;        /* symlink target, NULL otherwise */
} rentry;

typedef struct rlist {
        rentry *v;
        size_t n;
        size_t cap;
        uint64_t bytes;      /* sum of regular file sizes */
} rlist;

static void rlist_free(rlist *l)
{
        for (size_t i = 0; i < l->n; i++) {
                FREE_AND_NULL(l->v[i].path);
                FREE_AND_NULL(l->v[i].target);
        }
        FREE_AND_NULL(l->v);
        l->n = l->cap = 0;
}
#define _cleanup_rlist_ __attribute__((cleanup(rlist_free)))

static rentry *rlist_push(rlist *l, err_t *err)
{
        if (l->n >= NX_ROOTFS_MAX_ENTRIES) {
                err_set(err, "more than %d entries", NX_ROOTFS_MAX_ENTRIES);
                return NULL;
        }
        if (l->n == l->cap) {
                size_t nc = l->cap ? l->cap * 2 : 1024;
                rentry *nv = realloc(l->v, nc * sizeof(*nv));
                if (!nv) {
                        err_setc(err, ERR_INTERNAL, "out of memory");
                        return NULL;
                }
                l->v = nv;
                l->cap = nc;
        }
        rentry *e = &l->v[l->n++];
        memset(e, 0, sizeof(*e));
        return e;
}

static int rentry_cmp(const void *a, const void *b)
{
        return strcmp(((const rentry *)a)->path, ((const rentry *)b)->path);
}

/* ------------------------------------------------------------ escaping ------------ */

static bool esc_needed(unsigned char c)
{
        return c <= 0x20 || c >= 0x7f || c == '%';
}

static int esc_append(buf *b, const char *s)
{
        if (strcmp(s, "-") == 0)
                return buf_append_str(b, "%2D");
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                int r = esc_needed(*p) ? buf_appendf(b, "%%%02X", *p) : buf_putc(b, (char)*p);
                if (r < 0)
                        return -1;
        }
        return 0;
}

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

/* Unescapes s[0..len) into a new string; NULL on a bad escape, an embedded NUL or ENOMEM. */
static char *unesc_dup(const char *s, size_t len)
{
        char *out = malloc(len + 1);
        size_t o = 0;
        if (!out)
                return NULL;
        for (size_t i = 0; i < len; i++) {
                if (s[i] != '%') {
                        out[o++] = s[i];
                        continue;
                }
                int hi = i + 2 < len ? hexval(s[i + 1]) : -1;
                int lo = i + 2 < len ? hexval(s[i + 2]) : -1;
                if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                        free(out);
                        return NULL;
                }
                out[o++] = (char)(hi * 16 + lo);
                i += 2;
        }
        out[o] = '\0';
        return out;
}

/* ------------------------------------------------------------ walking ------------- */

typedef enum walk_op {
        WALK_COLLECT = 0,    /* record entries, enforce the rules */
        WALK_HARDEN,         /* fix what the rules forbid, record nothing */
} walk_op;

typedef struct walk {
        walk_op op;
        bool hash;           /* WALK_COLLECT: sha256 of every regular file */
        rlist *out;
        dev_t dev;
        uid_t euid;
        size_t changed;      /* WALK_HARDEN */
        size_t seen;
} walk;

static bool owner_ok(uid_t uid, uid_t euid)
{
        return uid == 0 || uid == euid;
}

/* The rules of rootfs.h for one non-symlink entry; err names path. */
static int check_rules(const walk *w, const char *path, const struct stat *st, err_t *err)
{
        unsigned mode = (unsigned)st->st_mode & 07777;
        if (mode & (S_ISUID | S_ISGID))
                return err_set(err, "%s: setuid/setgid bit set (mode %04o)", path, mode);
        if ((mode & 0022) || ((mode & 0200) && !owner_ok(st->st_uid, w->euid)))
                return err_set(err, "%s: writable by a user other than root (mode %04o, "
                               "uid %u, gid %u)", path, mode, (unsigned)st->st_uid,
                               (unsigned)st->st_gid);
        return 0;
}

static unsigned hardened_mode(const walk *w, const struct stat *st)
{
        unsigned mode = (unsigned)st->st_mode & 07777;
        mode &= ~(unsigned)(S_ISUID | S_ISGID | 0022);
        if (!owner_ok(st->st_uid, w->euid))
                mode &= ~0200u;
        return mode;
}

static int hash_fd(int fd, char out[CRYPTO_SHA256_HEX_LEN + 1], err_t *err)
{
        _cleanup_sha256_ crypto_sha256_ctx *ctx = crypto_sha256_new();
        uint8_t digest[CRYPTO_SHA256_LEN];
        _cleanup_free_ char *chunk = malloc(1 << 16);
        if (!ctx || !chunk)
                return err_setc(err, ERR_INTERNAL, "out of memory");
        for (;;) {
                ssize_t n = read(fd, chunk, 1 << 16);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return err_errno(err, errno, "read");
                if (n == 0)
                        break;
                if (crypto_sha256_update(ctx, chunk, (size_t)n) < 0)
                        return err_setc(err, ERR_INTERNAL, "sha256 failed");
        }
        if (crypto_sha256_final(ctx, digest) < 0)
                return err_setc(err, ERR_INTERNAL, "sha256 failed");
        crypto_hex(digest, sizeof(digest), out);
        return 0;
}

/* Opens name below dfd without following a symlink and checks that it is still the inode
 * fstatat() saw (a swap between the two calls is refused). */
static int open_same(int dfd, const char *name, int flags, const struct stat *st,
                     const char *path, err_t *err)
{
        int fd = openat(dfd, name, flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
        struct stat st2;
        if (fd < 0)
                return err_errno(err, errno, "%s: open", path);
        if (fstat(fd, &st2) < 0 || st2.st_dev != st->st_dev || st2.st_ino != st->st_ino) {
                close(fd);
                return err_set(err, "%s: changed while being read", path);
        }
        return fd;
}

static int walk_dir(walk *w, int dfd, char *path, size_t plen, int depth, err_t *err);

/* One entry name in directory dfd; path[0..plen) is the directory's path ("" for the root). */
static int walk_entry(walk *w, int dfd, const char *name, char *path, size_t plen, int depth,
                      err_t *err)
{
        struct stat st;
        size_t nlen = strlen(name);
        if (plen + 1 + nlen >= NX_ROOTFS_PATH_MAX)
                return err_set(err, "%.200s/%.60s...: path too long", path, name);
        path[plen] = '/';
        memcpy(path + plen + 1, name, nlen + 1);
        size_t clen = plen + 1 + nlen;
        if (++w->seen > NX_ROOTFS_MAX_ENTRIES)
                return err_set(err, "more than %d entries", NX_ROOTFS_MAX_ENTRIES);
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return err_errno(err, errno, "%s: stat", path);
        if (st.st_dev != w->dev)
                return err_set(err, "%s: a mount point inside the tree", path);

        if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode)) {
                if (w->op == WALK_HARDEN) {
                        /* bwrap mounts its own /dev: device nodes, fifos and sockets in
                         * the tree serve nothing and could be opened through a bug. */
                        if (unlinkat(dfd, name, 0) < 0)
                                return err_errno(err, errno, "%s: unlink", path);
                        w->changed++;
                        return 0;
                }
                return err_set(err, "%s: device node, fifo or socket not allowed", path);
        }

        if (w->op == WALK_HARDEN) {
                if (S_ISLNK(st.st_mode))
                        return 0;
                unsigned want = hardened_mode(w, &st);
                int flags = S_ISDIR(st.st_mode) ? O_RDONLY | O_DIRECTORY : O_PATH;
                _cleanup_close_ int fd = open_same(dfd, name, flags, &st, path, err);
                if (fd < 0)
                        return -1;
                if (want != ((unsigned)st.st_mode & 07777)) {
                        /* fchmod on an O_PATH fd is refused; go through /proc/self/fd. */
                        char proc[64];
                        int r = S_ISDIR(st.st_mode) ? fchmod(fd, want)
                                : (str_printf(proc, sizeof(proc), "/proc/self/fd/%d", fd) < 0
                                           ? -1 : chmod(proc, want));
                        if (r < 0)
                                return err_errno(err, errno, "%s: chmod %04o", path, want);
                        w->changed++;
                }
                if (S_ISDIR(st.st_mode)) {
                        if (depth + 1 > NX_ROOTFS_MAX_DEPTH)
                                return err_set(err, "%s: deeper than %d levels", path,
                                               NX_ROOTFS_MAX_DEPTH);
                        return walk_dir(w, fd, path, clen, depth + 1, err);
                }
                return 0;
        }

        if (!S_ISLNK(st.st_mode) && check_rules(w, path, &st, err) < 0)
                return -1;
        rentry *e = rlist_push(w->out, err);
        if (!e)
                return -1;
        e->path = strdup(path);
        if (!e->path)
                return err_setc(err, ERR_INTERNAL, "out of memory");
        e->mode = (unsigned)st.st_mode & 07777;
        e->uid = st.st_uid;
        e->gid = st.st_gid;
        e->mtime_s = (int64_t)st.st_mtim.tv_sec;
        e->mtime_ns = st.st_mtim.tv_nsec;
        if (S_ISLNK(st.st_mode)) {
                char target[NX_ROOTFS_PATH_MAX];
                ssize_t n = readlinkat(dfd, name, target, sizeof(target));
                if (n < 0)
                        return err_errno(err, errno, "%s: readlink", path);
                if ((size_t)n >= sizeof(target) || n == 0)
                        return err_set(err, "%s: symlink target empty or too long", path);
                e->type = 'l';
                e->size = (uint64_t)n;
                e->target = strndup(target, (size_t)n);
                if (!e->target)
                        return err_setc(err, ERR_INTERNAL, "out of memory");
                return 0;
        }
        if (S_ISREG(st.st_mode)) {
                e->type = 'f';
                e->size = (uint64_t)st.st_size;
                w->out->bytes += (uint64_t)st.st_size;
                if (w->hash) {
                        _cleanup_close_ int fd = open_same(dfd, name, O_RDONLY | O_NONBLOCK,
                                                           &st, path, err);
                        if (fd < 0)
                                return -1;
                        if (hash_fd(fd, e->sha, err) < 0)
                                return err_wrap(err, "%s", path);
                }
                return 0;
        }
        e->type = 'd';
        if (depth + 1 > NX_ROOTFS_MAX_DEPTH)
                return err_set(err, "%s: deeper than %d levels", path, NX_ROOTFS_MAX_DEPTH);
        _cleanup_close_ int sub = open_same(dfd, name, O_RDONLY | O_DIRECTORY, &st, path, err);
        if (sub < 0)
                return -1;
        return walk_dir(w, sub, path, clen, depth + 1, err);
}

/* Walks the entries of the open directory dfd (not closed). */
static int walk_dir(walk *w, int dfd, char *path, size_t plen, int depth, err_t *err)
{
        int dup_fd = fcntl(dfd, F_DUPFD_CLOEXEC, 3);
        if (dup_fd < 0)
                return err_errno(err, errno, "%s/: dup", path);
        DIR *d = fdopendir(dup_fd);
        if (!d) {
                close(dup_fd);
                return err_errno(err, errno, "%s/: opendir", path);
        }
        int rc = 0;
        for (;;) {
                errno = 0;
                struct dirent *de = readdir(d);
                if (!de) {
                        if (errno)
                                rc = err_errno(err, errno, "%s/: readdir", path);
                        break;
                }
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (walk_entry(w, dfd, de->d_name, path, plen, depth, err) < 0) {
                        rc = -1;
                        break;
                }
        }
        path[plen] = '\0';
        closedir(d);
        return rc;
}

static int open_root(const char *dir, struct stat *st, err_t *err)
{
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return err_errno(err, errno, "open %s", dir);
        if (fstat(fd, st) < 0) {
                int e = errno;
                close(fd);
                return err_errno(err, e, "stat %s", dir);
        }
        return fd;
}

/* Collects every entry of dir (root "/" included), sorted by path. */
static int collect(const char *dir, bool hash, rlist *out, err_t *err)
{
        struct stat st;
        _cleanup_close_ int fd = open_root(dir, &st, err);
        if (fd < 0)
                return -1;
        walk w = { .op = WALK_COLLECT, .hash = hash, .out = out, .dev = st.st_dev,
                   .euid = geteuid() };
        if (check_rules(&w, "/", &st, err) < 0)
                return -1;
        rentry *e = rlist_push(out, err);
        if (!e)
                return -1;
        e->path = strdup("/");
        if (!e->path)
                return err_setc(err, ERR_INTERNAL, "out of memory");
        e->type = 'd';
        e->mode = (unsigned)st.st_mode & 07777;
        e->uid = st.st_uid;
        e->gid = st.st_gid;
        e->mtime_s = (int64_t)st.st_mtim.tv_sec;
        e->mtime_ns = st.st_mtim.tv_nsec;
        _cleanup_free_ char *path = calloc(1, NX_ROOTFS_PATH_MAX);
        if (!path)
                return err_setc(err, ERR_INTERNAL, "out of memory");
        if (walk_dir(&w, fd, path, 0, 0, err) < 0)
                return -1;
        qsort(out->v, out->n, sizeof(out->v[0]), rentry_cmp);
        return 0;
}

int nx_rootfs_harden(const char *dir, size_t *changed_out, err_t *err)
{
        struct stat st;
        _cleanup_close_ int fd = open_root(dir, &st, err);
        if (fd < 0)
                return -1;
        walk w = { .op = WALK_HARDEN, .dev = st.st_dev, .euid = geteuid() };
        unsigned want = hardened_mode(&w, &st);
        if (want != ((unsigned)st.st_mode & 07777)) {
                if (fchmod(fd, want) < 0)
                        return err_errno(err, errno, "chmod %s", dir);
                w.changed++;
        }
        _cleanup_free_ char *path = calloc(1, NX_ROOTFS_PATH_MAX);
        if (!path)
                return err_setc(err, ERR_INTERNAL, "out of memory");
        if (walk_dir(&w, fd, path, 0, 0, err) < 0)
                return err_wrap(err, "harden %s", dir);
        if (changed_out)
                *changed_out = w.changed;
        return 0;
}

/* ------------------------------------------------------------ manifest ------------ */

int nx_rootfs_manifest_path(const char *dir, char *out, size_t outsz, err_t *err)
{
        size_t n = strlen(dir);
        if (n > 1 && dir[n - 1] == '/')
                n--;
        if (n == 0 || str_printf(out, outsz, "%.*s.manifest", (int)n, dir) < 0)
                return err_set(err, "rootfs directory \"%.200s\" is empty or too long", dir);
        return 0;
}

static int sha_path_of(const char *manifest, char *out, size_t outsz, err_t *err)
{
        if (str_printf(out, outsz, "%s.sha256", manifest) < 0)
                return err_set(err, "manifest path \"%.200s\" too long", manifest);
        return 0;
}

static const char *base_name(const char *p)
{
        const char *s = strrchr(p, '/');
        return s ? s + 1 : p;
}

/* Writes data to path atomically: "<path>.tmp" (0644), fsync, rename. */
static int write_atomic(const char *path, const char *data, size_t len, err_t *err)
{
        char tmp[NX_ROOTFS_PATH_MAX + 16];
        if (str_printf(tmp, sizeof(tmp), "%s.tmp", path) < 0)
                return err_set(err, "path \"%.200s\" too long", path);
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
                                      0644);
        if (fd < 0)
                return err_errno(err, errno, "create %s", tmp);
        if (fchmod(fd, 0644) < 0)
                return err_errno(err, errno, "chmod %s", tmp);
        size_t off = 0;
        while (off < len) {
                ssize_t n = write(fd, data + off, len - off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        int e = errno;
                        unlink(tmp);
                        return err_errno(err, e, "write %s", tmp);
                }
                off += (size_t)n;
        }
        if (fsync(fd) < 0 || rename(tmp, path) < 0) {
                int e = errno;
                unlink(tmp);
                return err_errno(err, e, "write %s", path);
        }
        return 0;
}

static int format_manifest(const rlist *l, const char *kind, const char *suite, buf *b,
                           err_t *err)
{
        if (buf_append_str(b, MANIFEST_MAGIC " kind=") < 0 || esc_append(b, kind) < 0 ||
            buf_append_str(b, " suite=") < 0 || (*suite ? esc_append(b, suite)
                                                         : buf_putc(b, '-')) < 0 ||
            buf_appendf(b, " entries=%zu\n", l->n) < 0)
                goto toobig;
        for (size_t i = 0; i < l->n; i++) {
                const rentry *e = &l->v[i];
                if (esc_append(b, e->path) < 0 ||
                    buf_appendf(b, " %c %04o %u %u %llu %lld.%09ld %s ", e->type, e->mode,
                                e->uid, e->gid, (unsigned long long)e->size,
                                (long long)e->mtime_s, e->mtime_ns,
                                e->type == 'f' ? e->sha : "-") < 0 ||
                    (e->target ? esc_append(b, e->target) : buf_putc(b, '-')) < 0 ||
                    buf_putc(b, '\n') < 0)
                        goto toobig;
        }
        return 0;
toobig:
        return err_set(err, "manifest larger than %u bytes", NX_ROOTFS_MANIFEST_MAX);
}

static int check_owner_file(const char *path, bool want_dir, err_t *err)
{
        struct stat st;
        if (lstat(path, &st) < 0)
                return err_errno(err, errno, "%s", path);
        if (want_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
                return err_set(err, "%s: not a %s", path, want_dir ? "directory" : "regular file");
        if (!owner_ok(st.st_uid, geteuid()) || (st.st_mode & 0022))
                return err_set(err, "%s: must be owned by root and not group/other-writable "
                               "(uid %u, mode %04o)", path, (unsigned)st.st_uid,
                               (unsigned)st.st_mode & 07777);
        return 0;
}

static int manifest_write_list(const char *dir, const char *manifest, const rlist *l,
                               const char *kind, const char *suite, err_t *err)
{
        char mpath[NX_ROOTFS_PATH_MAX], spath[NX_ROOTFS_PATH_MAX + 16];
        if (!manifest) {
                if (nx_rootfs_manifest_path(dir, mpath, sizeof(mpath), err) < 0)
                        return -1;
        } else if (str_copy(mpath, sizeof(mpath), manifest) < 0) {
                return err_set(err, "manifest path \"%.200s\" too long", manifest);
        }
        if (sha_path_of(mpath, spath, sizeof(spath), err) < 0)
                return -1;
        _cleanup_buf_ buf b = BUF_INIT(NX_ROOTFS_MANIFEST_MAX);
        if (format_manifest(l, kind, suite ? suite : "", &b, err) < 0)
                return -1;
        char hex[CRYPTO_SHA256_HEX_LEN + 1], line[NX_ROOTFS_PATH_MAX + 100];
        if (crypto_sha256_hex(b.data, b.len, hex) < 0)
                return err_setc(err, ERR_INTERNAL, "sha256 failed");
        int n = str_printf(line, sizeof(line), "%s  %s\n", hex, base_name(mpath));
        if (n < 0)
                return err_set(err, "manifest name too long");
        /* The digest first: a crash between the two renames leaves a pair that does not
         * match, which verify refuses (fail closed). */
        if (write_atomic(spath, line, (size_t)n, err) < 0 ||
            write_atomic(mpath, b.data, b.len, err) < 0)
                return -1;
        return 0;
}

int nx_rootfs_manifest_write(const char *dir, const char *manifest, const char *kind_name,
                             const char *suite, size_t *entries_out, err_t *err)
{
        _cleanup_rlist_ rlist l = { 0 };
        if (collect(dir, true, &l, err) < 0)
                return err_wrap(err, "rootfs %s", dir);
        if (manifest_write_list(dir, manifest, &l, kind_name ? kind_name : "-", suite, err) < 0)
                return -1;
        if (entries_out)
                *entries_out = l.n;
        return 0;
}

/* Reads a whole file of at most max bytes. */
static int read_file_capped(const char *path, size_t max, buf *out, err_t *err)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return err_errno(err, errno, "open %s", path);
        char chunk[1 << 14];
        for (;;) {
                ssize_t n = read(fd, chunk, sizeof(chunk));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return err_errno(err, errno, "read %s", path);
                if (n == 0)
                        return 0;
                if (out->len + (size_t)n > max || buf_append(out, chunk, (size_t)n) < 0)
                        return err_set(err, "%s: larger than %zu bytes", path, max);
        }
}

typedef struct manifest {
        rlist l;
        char kind[32];
        char suite[80];
} manifest;

static int parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out)
{
        int64_t v;
        if (len == 0 || s[0] == '-' || str_to_int64n(s, len, 0, (int64_t)max, &v) < 0)
                return -1;
        *out = (uint64_t)v;
        return 0;
}

/* One manifest line (without '\n') into e. */
static int parse_line(const char *s, size_t len, rentry *e)
{
        const char *f[9];
        size_t fl[9];
        size_t nf = 0, start = 0;
        for (size_t i = 0; i <= len; i++) {
                if (i == len || s[i] == ' ') {
                        if (nf == 9)
                                return -1;
                        f[nf] = s + start;
                        fl[nf++] = i - start;
                        start = i + 1;
                }
        }
        if (nf != 9 || fl[1] != 1)
                return -1;
        for (size_t i = 0; i < 9; i++)
                if (fl[i] == 0)
                        return -1;
        e->type = f[1][0];
        if (e->type != 'f' && e->type != 'd' && e->type != 'l')
                return -1;
        uint64_t v;
        if (fl[2] != 4)
                return -1;
        unsigned mode = 0;
        for (size_t i = 0; i < 4; i++) {
                if (f[2][i] < '0' || f[2][i] > '7')
                        return -1;
                mode = mode * 8 + (unsigned)(f[2][i] - '0');
        }
        e->mode = mode;
        if (parse_u64(f[3], fl[3], UINT32_MAX, &v) < 0)
                return -1;
        e->uid = (uint32_t)v;
        if (parse_u64(f[4], fl[4], UINT32_MAX, &v) < 0)
                return -1;
        e->gid = (uint32_t)v;
        if (parse_u64(f[5], fl[5], INT64_MAX, &e->size) < 0)
                return -1;
        const char *dot = memchr(f[6], '.', fl[6]);
        if (!dot || f[6] + fl[6] - dot != 10)
                return -1;
        int64_t sec;
        if (str_to_int64n(f[6], (size_t)(dot - f[6]), INT64_MIN, INT64_MAX, &sec) < 0 ||
            parse_u64(dot + 1, 9, 999999999, &v) < 0)
                return -1;
        e->mtime_s = sec;
        e->mtime_ns = (long)v;
        if (e->type == 'f') {
                if (fl[7] != CRYPTO_SHA256_HEX_LEN)
                        return -1;
                for (size_t i = 0; i < CRYPTO_SHA256_HEX_LEN; i++)
                        if (hexval(f[7][i]) < 0 || (f[7][i] >= 'A' && f[7][i] <= 'F'))
                                return -1;
                memcpy(e->sha, f[7], CRYPTO_SHA256_HEX_LEN);
                e->sha[CRYPTO_SHA256_HEX_LEN] = '\0';
        } else if (fl[7] != 1 || f[7][0] != '-') {
                return -1;
        }
        if (e->type == 'l') {
                e->target = unesc_dup(f[8], fl[8]);
                if (!e->target || !*e->target)
                        return -1;
        } else if (fl[8] != 1 || f[8][0] != '-') {
                return -1;
        }
        if (e->type == 'd')
                e->size = 0;
        e->path = unesc_dup(f[0], fl[0]);
        if (!e->path || e->path[0] != '/')
                return -1;
        return 0;
}

/* Header "# nexus-rootfs-manifest v1 kind=K suite=S entries=N". */
static int parse_header(const char *s, size_t len, manifest *m, uint64_t *entries)
{
        size_t ml = strlen(MANIFEST_MAGIC);
        if (len < ml + 1 || memcmp(s, MANIFEST_MAGIC, ml) != 0 || s[ml] != ' ')
                return -1;
        const char *p = s + ml + 1, *end = s + len;
        bool got_kind = false, got_entries = false;
        while (p < end) {
                const char *sp = memchr(p, ' ', (size_t)(end - p));
                const char *tok_end = sp ? sp : end;
                const char *eq = memchr(p, '=', (size_t)(tok_end - p));
                if (!eq)
                        return -1;
                size_t kl = (size_t)(eq - p), vl = (size_t)(tok_end - eq - 1);
                _cleanup_free_ char *val = unesc_dup(eq + 1, vl);
                if (!val)
                        return -1;
                if (kl == 4 && memcmp(p, "kind", 4) == 0) {
                        if (str_copy(m->kind, sizeof(m->kind), val) < 0)
                                return -1;
                        got_kind = true;
                } else if (kl == 5 && memcmp(p, "suite", 5) == 0) {
                        if (str_copy(m->suite, sizeof(m->suite), val) < 0)
                                return -1;
                } else if (kl == 7 && memcmp(p, "entries", 7) == 0) {
                        if (parse_u64(eq + 1, vl, NX_ROOTFS_MAX_ENTRIES, entries) < 0)
                                return -1;
                        got_entries = true;
                }
                /* unknown keys are ignored: later versions may add some */
                p = sp ? sp + 1 : end;
        }
        return got_kind && got_entries ? 0 : -1;
}

/* Reads the manifest, checks its .sha256 and parses it. */
static int manifest_load(const char *mpath, manifest *m, err_t *err)
{
        char spath[NX_ROOTFS_PATH_MAX + 16];
        if (sha_path_of(mpath, spath, sizeof(spath), err) < 0)
                return -1;
        if (check_owner_file(mpath, false, err) < 0 || check_owner_file(spath, false, err) < 0)
                return -1;
        _cleanup_buf_ buf b = BUF_INIT(NX_ROOTFS_MANIFEST_MAX);
        _cleanup_buf_ buf sb = BUF_INIT(1024);
        if (read_file_capped(mpath, NX_ROOTFS_MANIFEST_MAX, &b, err) < 0 ||
            read_file_capped(spath, 1024, &sb, err) < 0)
                return -1;
        char hex[CRYPTO_SHA256_HEX_LEN + 1];
        if (crypto_sha256_hex(b.data ? b.data : "", b.len, hex) < 0)
                return err_setc(err, ERR_INTERNAL, "sha256 failed");
        if (sb.len < CRYPTO_SHA256_HEX_LEN || memcmp(sb.data, hex, CRYPTO_SHA256_HEX_LEN) != 0)
                return err_set(err, "%s: sha256 %s does not match %s", mpath, hex, spath);
        const char *p = b.data, *end = b.data + b.len;
        uint64_t want = 0;
        size_t lineno = 0;
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                if (!nl)
                        return err_set(err, "%s: last line not terminated", mpath);
                lineno++;
                if (lineno == 1) {
                        if (parse_header(p, (size_t)(nl - p), m, &want) < 0)
                                return err_set(err, "%s:1: not a nexus rootfs manifest header",
                                               mpath);
                } else {
                        rentry *e = rlist_push(&m->l, err);
                        if (!e)
                                return err_wrap(err, "%s", mpath);
                        if (parse_line(p, (size_t)(nl - p), e) < 0)
                                return err_set(err, "%s:%zu: malformed entry", mpath, lineno);
                        if (m->l.n == 1 ? strcmp(e->path, "/") != 0 || e->type != 'd'
                                        : strcmp(m->l.v[m->l.n - 2].path, e->path) >= 0)
                                return err_set(err, "%s:%zu: entries not sorted or root "
                                               "missing", mpath, lineno);
                }
                p = nl + 1;
        }
        if (lineno == 0)
                return err_set(err, "%s: empty", mpath);
        if (m->l.n != want)
                return err_set(err, "%s: %zu entries, header says %llu", mpath, m->l.n,
                               (unsigned long long)want);
        return 0;
}

/* ------------------------------------------------------------ verify -------------- */

static int compare_entry(const rentry *a, const rentry *m, bool full, err_t *err)
{
        const char *p = a->path;
        if (a->type != m->type)
                return err_set(err, "%s: type %c != manifest %c", p, a->type, m->type);
        if (a->mode != m->mode)
                return err_set(err, "%s: mode %04o != manifest %04o", p, a->mode, m->mode);
        if (a->uid != m->uid || a->gid != m->gid)
                return err_set(err, "%s: owner %u:%u != manifest %u:%u", p, a->uid, a->gid,
                               m->uid, m->gid);
        if (a->type != 'd' && a->size != m->size)
                return err_set(err, "%s: size %llu != manifest %llu", p,
                               (unsigned long long)a->size, (unsigned long long)m->size);
        if (a->type == 'l' && strcmp(a->target, m->target) != 0)
                return err_set(err, "%s: symlink target \"%.200s\" != manifest \"%.200s\"", p,
                               a->target, m->target);
        if (a->mtime_s != m->mtime_s || a->mtime_ns != m->mtime_ns)
                return err_set(err, "%s: mtime %lld.%09ld != manifest %lld.%09ld", p,
                               (long long)a->mtime_s, a->mtime_ns, (long long)m->mtime_s,
                               m->mtime_ns);
        if (full && a->type == 'f' && strcmp(a->sha, m->sha) != 0)
                return err_set(err, "%s: content sha256 %s != manifest %s", p, a->sha, m->sha);
        return 0;
}

static int verify_into(const char *dir, const char *manifest_arg, nx_rootfs_mode mode,
                       manifest *m, err_t *err)
{
        char mpath[NX_ROOTFS_PATH_MAX];
        if (!manifest_arg) {
                if (nx_rootfs_manifest_path(dir, mpath, sizeof(mpath), err) < 0)
                        return -1;
        } else if (str_copy(mpath, sizeof(mpath), manifest_arg) < 0) {
                return err_set(err, "manifest path \"%.200s\" too long", manifest_arg);
        }
        if (check_owner_file(dir, true, err) < 0 || manifest_load(mpath, m, err) < 0)
                return -1;
        _cleanup_rlist_ rlist l = { 0 };
        if (collect(dir, mode == NX_ROOTFS_FULL, &l, err) < 0)
                return -1;
        size_t i = 0, j = 0;
        while (i < l.n || j < m->l.n) {
                int c = i == l.n ? 1 : j == m->l.n ? -1 : strcmp(l.v[i].path, m->l.v[j].path);
                if (c < 0)
                        return err_set(err, "%s: not in manifest", l.v[i].path);
                if (c > 0)
                        return err_set(err, "%s: missing", m->l.v[j].path);
                if (compare_entry(&l.v[i], &m->l.v[j], mode == NX_ROOTFS_FULL, err) < 0)
                        return -1;
                i++;
                j++;
        }
        return 0;
}

int nx_rootfs_verify(const char *dir, const char *manifest_arg, nx_rootfs_mode mode,
                     err_t *err)
{
        manifest m = { 0 };
        int rc = verify_into(dir, manifest_arg, mode, &m, err);
        rlist_free(&m.l);
        if (rc < 0)
                return err_wrap(err, "rootfs %s", dir);
        return 0;
}

/* ------------------------------------------------------------ removal ------------- */

static int rm_at(int dfd, const char *name, dev_t dev, int depth, err_t *err)
{
        struct stat st;
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : err_errno(err, errno, "stat %s", name);
        if (!S_ISDIR(st.st_mode)) {
                if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
                        return err_errno(err, errno, "unlink %s", name);
                return 0;
        }
        if (st.st_dev != dev)
                return err_set(err, "%s: a mount point; not removing across it", name);
        if (depth > NX_ROOTFS_MAX_DEPTH * 2)
                return err_set(err, "%s: too deep", name);
        int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return err_errno(err, errno, "open %s", name);
        /* An unprivileged owner needs write permission to empty it. */
        if ((st.st_mode & 0700) != 0700)
                (void)fchmod(fd, (st.st_mode & 07777) | 0700);
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return err_errno(err, errno, "opendir %s", name);
        }
        int rc = 0;
        for (bool removed = true; removed && rc == 0;) {
                /* Re-scan until a pass removes nothing: readdir need not return every
                 * entry when the directory changes under it. */
                removed = false;
                rewinddir(d);
                struct dirent *de;
                while (rc == 0 && (de = readdir(d))) {
                        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                                continue;
                        rc = rm_at(dirfd(d), de->d_name, dev, depth + 1, err);
                        removed = true;
                }
        }
        closedir(d);
        if (rc < 0)
                return err_wrap(err, "%s", name);
        if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
                return err_errno(err, errno, "rmdir %s", name);
        return 0;
}

/* Splits path into a parent directory (copied into parent) and its last component. */
static int split_path(const char *path, char *parent, size_t psz, const char **base,
                      err_t *err)
{
        size_t n = strlen(path);
        while (n > 1 && path[n - 1] == '/')
                n--;
        if (n == 0 || n >= psz)
                return err_set(err, "path \"%.200s\" empty or too long", path);
        memcpy(parent, path, n);
        parent[n] = '\0';
        char *slash = strrchr(parent, '/');
        if (!slash) {
                memmove(parent + 2, parent, n + 1);
                parent[0] = '.';
                parent[1] = '\0';
                *base = parent + 2;
        } else if (slash == parent) {
                memmove(parent + 2, parent + 1, n);
                parent[0] = '/';
                parent[1] = '\0';
                *base = parent + 2;
        } else {
                *slash = '\0';
                *base = slash + 1;
        }
        if (!**base || strcmp(*base, ".") == 0 || strcmp(*base, "..") == 0)
                return err_set(err, "path \"%.200s\" has no usable last component", path);
        return 0;
}

int nx_rootfs_remove_tree(const char *path, err_t *err)
{
        char parent[NX_ROOTFS_PATH_MAX + 4];
        const char *base;
        struct stat st;
        if (split_path(path, parent, sizeof(parent), &base, err) < 0)
                return -1;
        _cleanup_close_ int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (pfd < 0)
                return errno == ENOENT ? 0 : err_errno(err, errno, "open %s", parent);
        if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : err_errno(err, errno, "stat %s", path);
        if (rm_at(pfd, base, st.st_dev, 0, err) < 0)
                return err_wrap(err, "remove %s", path);
        return 0;
}

/* ------------------------------------------------------------ progress ------------ */

typedef struct prog {
        const nx_rootfs_opts *o;
        struct timespec t0;
} prog;

static void emit(const prog *p, const char *line)
{
        if (p->o->progress)
                p->o->progress(p->o->progress_ud, line);
        else
                fprintf(stderr, "%s\n", line);
}

static void phase(const prog *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void phase(const prog *p, const char *fmt, ...)
{
        struct timespec now;
        char msg[1024], line[1200];
        va_list ap;
        clock_gettime(CLOCK_MONOTONIC, &now);
        double el = (double)(now.tv_sec - p->t0.tv_sec) +
                    (double)(now.tv_nsec - p->t0.tv_nsec) / 1e9;
        va_start(ap, fmt);
        int r = vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (r < 0)
                msg[0] = '\0';
        r = snprintf(line, sizeof(line), "rootfs [+%.1fs] %s", el, msg);
        if (r < 0)
                return;
        emit(p, line);
}

/* ------------------------------------------------------------ tools --------------- */

/* Finds an executable name in $PATH (or takes a path with '/'); 0 when found. */
static int find_exe(const char *name, char *out, size_t outsz)
{
        if (strchr(name, '/'))
                return access(name, X_OK) == 0 && str_copy(out, outsz, name) == 0 ? 0 : -1;
        const char *path = getenv("PATH");
        if (!path || !*path)
                path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        while (*path) {
                const char *colon = strchr(path, ':');
                size_t len = colon ? (size_t)(colon - path) : strlen(path);
                if (len > 0 && str_printf(out, outsz, "%.*s/%s", (int)len, path, name) >= 0 &&
                    access(out, X_OK) == 0)
                        return 0;
                path += len;
                if (*path == ':')
                        path++;
        }
        return -1;
}

/* Runs argv[0] (a path) with stdout+stderr on one pipe. Each output line goes to the
 * progress sink prefixed "rootfs [<label>] ", or into capture when capture != NULL. The
 * child gets SIGTERM if we die (PR_SET_PDEATHSIG), so a killed prepare does not leave the
 * tool writing into a temp tree nobody owns. */
static int run_tool(const prog *p, const char *label, char *const argv[], buf *capture,
                    err_t *err)
{
        int pfd[2];
        if (pipe2(pfd, O_CLOEXEC) < 0)
                return err_errno(err, errno, "pipe");
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid < 0) {
                int e = errno;
                close(pfd[0]);
                close(pfd[1]);
                return err_errno(err, e, "fork %s", argv[0]);
        }
        if (pid == 0) {
                int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent ||
                    devnull < 0 || dup2(devnull, 0) < 0 || dup2(pfd[1], 1) < 0 ||
                    dup2(pfd[1], 2) < 0)
                        _exit(127);
                execv(argv[0], argv);
                static const char m[] = "exec failed\n";
                ssize_t wr = write(2, m, sizeof(m) - 1);
                (void)wr;
                _exit(127);
        }
        close(pfd[1]);
        char line[TOOL_LINE_MAX], out[TOOL_LINE_MAX + 64];
        size_t ll = 0;
        int rc = 0;
        for (;;) {
                char chunk[4096];
                ssize_t n = read(pfd[0], chunk, sizeof(chunk));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                if (capture) {
                        if (rc == 0 && buf_append(capture, chunk, (size_t)n) < 0)
                                rc = err_set(err, "%s: output larger than %zu bytes", label,
                                             capture->max);
                        continue;
                }
                for (ssize_t i = 0; i < n; i++) {
                        bool flush = chunk[i] == '\n' || ll == sizeof(line) - 1;
                        if (chunk[i] != '\n')
                                line[ll++] = chunk[i];
                        if (flush) {
                                line[ll] = '\0';
                                if (snprintf(out, sizeof(out), "rootfs [%s] %s", label, line) >= 0)
                                        emit(p, out);
                                ll = 0;
                        }
                }
        }
        if (ll > 0) {
                line[ll] = '\0';
                if (snprintf(out, sizeof(out), "rootfs [%s] %s", label, line) >= 0)
                        emit(p, out);
        }
        close(pfd[0]);
        int status;
        while (waitpid(pid, &status, 0) < 0) {
                if (errno != EINTR)
                        return err_errno(err, errno, "wait for %s", label);
        }
        if (rc < 0)
                return -1;
        if (WIFSIGNALED(status))
                return err_set(err, "%s killed by signal %d", label, WTERMSIG(status));
        if (WEXITSTATUS(status) != 0)
                return err_set(err, "%s exited with status %d", label, WEXITSTATUS(status));
        return 0;
}

/* ------------------------------------------------------------ building ------------ */

static int mkdir_at(int dfd, const char *rel, mode_t mode, err_t *err)
{
        if (mkdirat(dfd, rel, mode) < 0 && errno != EEXIST)
                return err_errno(err, errno, "mkdir %s", rel);
        return 0;
}

/* Creates every directory component of rel (a relative path to a file) below dfd. */
static int mkparents_at(int dfd, const char *rel, err_t *err)
{
        char tmp[NX_ROOTFS_PATH_MAX];
        if (str_copy(tmp, sizeof(tmp), rel) < 0)
                return err_set(err, "path \"%.200s\" too long", rel);
        for (char *s = strchr(tmp, '/'); s; s = strchr(s + 1, '/')) {
                *s = '\0';
                int r = mkdir_at(dfd, tmp, 0755, err);
                *s = '/';
                if (r < 0)
                        return -1;
        }
        return 0;
}

/* Writes a small file below dfd, replacing a file or symlink of that name. */
static int put_file(int dfd, const char *rel, const char *text, mode_t mode, err_t *err)
{
        (void)unlinkat(dfd, rel, 0);
        _cleanup_close_ int fd = openat(dfd, rel, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
                                        O_CLOEXEC, mode);
        if (fd < 0)
                return err_errno(err, errno, "create %s", rel);
        size_t len = strlen(text);
        if (write(fd, text, len) != (ssize_t)len || fchmod(fd, mode) < 0)
                return err_errno(err, errno, "write %s", rel);
        return 0;
}

static int copy_file_at(const char *src, int dfd, const char *rel, mode_t mode, err_t *err)
{
        _cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC);
        if (in < 0)
                return err_errno(err, errno, "open %s", src);
        _cleanup_close_ int out = openat(dfd, rel, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
                                         O_CLOEXEC, mode);
        if (out < 0)
                return err_errno(err, errno, "create %s", rel);
        char chunk[1 << 15];
        for (;;) {
                ssize_t n = read(in, chunk, sizeof(chunk));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return err_errno(err, errno, "read %s", src);
                if (n == 0)
                        break;
                if (write(out, chunk, (size_t)n) != n)
                        return err_errno(err, errno, "write %s", rel);
        }
        if (fchmod(out, mode) < 0)
                return err_errno(err, errno, "chmod %s", rel);
        return 0;
}

/* A busybox applet path from `busybox --list-full`: relative, plain components. */
static bool applet_path_ok(const char *s)
{
        if (!*s || *s == '/' || strlen(s) > 128)
                return false;
        for (const char *c = s; *c; c++)
                if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
                        return false;
        const char *comp = s;
        for (;;) {
                const char *slash = strchr(comp, '/');
                size_t len = slash ? (size_t)(slash - comp) : strlen(comp);
                if (len == 0 || (len == 1 && comp[0] == '.') ||
                    (len == 2 && comp[0] == '.' && comp[1] == '.'))
                        return false;
                if (!slash)
                        return true;
                comp = slash + 1;
        }
}

static const char etc_passwd[] =
        "root:x:0:0:root:/root:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
static const char etc_group[] = "root:x:0:\nnogroup:x:65534:\n";
static const char etc_hosts[] = "127.0.0.1 localhost\n::1 localhost\n";
/* Nothing resolves inside the sandbox: names go through the egress proxy (DESIGN D13). */
static const char etc_resolv[] = "# nexus sandbox: no resolver; use the egress proxy\n";

static int build_busybox(const prog *p, const nx_rootfs_opts *o, const char *tmp, err_t *err)
{
        const char *bb = o->busybox && *o->busybox ? o->busybox : NX_ROOTFS_DEFAULT_BUSYBOX;
        char bbpath[NX_ROOTFS_PATH_MAX];
        if (find_exe(bb, bbpath, sizeof(bbpath)) < 0)
                return err_set(err, "busybox \"%.200s\" not found (apt install busybox-static)",
                               bb);
        _cleanup_close_ int dfd = open(tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
                return err_errno(err, errno, "open %s", tmp);
        static const char *const dirs[] = { "bin", "sbin", "usr", "usr/bin", "usr/sbin",
                                            "etc", "root", "var", "var/tmp" };
        for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
                if (mkdir_at(dfd, dirs[i], 0755, err) < 0)
                        return -1;
        if (copy_file_at(bbpath, dfd, "bin/busybox", 0755, err) < 0)
                return -1;
        _cleanup_buf_ buf list = BUF_INIT(CAPTURE_MAX);
        char list_flag[] = "--list-full";
        char *argv[] = { bbpath, list_flag, NULL };
        phase(p, "busybox: %s applets", bbpath);
        if (run_tool(p, "busybox", argv, &list, err) < 0)
                return err_wrap(err, "%s --list-full (is it busybox-static?)", bbpath);
        size_t links = 0;
        bool have_sh = false;
        for (char *line = list.data, *nl; line && *line; line = nl + 1) {
                nl = strchr(line, '\n');
                if (!nl)
                        break;
                *nl = '\0';
                if (!applet_path_ok(line))
                        return err_set(err, "busybox lists an odd applet path \"%.100s\"", line);
                if (strcmp(line, "bin/busybox") == 0)
                        continue;
                if (mkparents_at(dfd, line, err) < 0)
                        return -1;
                if (symlinkat("/bin/busybox", dfd, line) < 0 && errno != EEXIST)
                        return err_errno(err, errno, "symlink %s", line);
                have_sh |= strcmp(line, "bin/sh") == 0;
                links++;
        }
        if (!have_sh)
                return err_set(err, "%s has no sh applet", bbpath);
        if (put_file(dfd, "etc/passwd", etc_passwd, 0644, err) < 0 ||
            put_file(dfd, "etc/group", etc_group, 0644, err) < 0 ||
            put_file(dfd, "etc/hosts", etc_hosts, 0644, err) < 0 ||
            put_file(dfd, "etc/resolv.conf", etc_resolv, 0644, err) < 0)
                return -1;
        phase(p, "busybox: %zu applet links", links);
        return 0;
}

static int build_debian(const prog *p, const nx_rootfs_opts *o, const char *tmp,
                        const char *suite, const char *mirror, const char *packages,
                        err_t *err)
{
        char exe[NX_ROOTFS_PATH_MAX];
        const char *tool = o->tool && *o->tool ? o->tool : NULL;
        if (tool) {
                if (find_exe(tool, exe, sizeof(exe)) < 0)
                        return err_set(err, "rootfs tool \"%.200s\" not found", tool);
        } else if (find_exe("mmdebstrap", exe, sizeof(exe)) == 0) {
                tool = "mmdebstrap";
        } else if (find_exe("debootstrap", exe, sizeof(exe)) == 0) {
                tool = "debootstrap";
        } else {
                return err_set(err, "neither mmdebstrap nor debootstrap found in PATH "
                               "(apt install mmdebstrap)");
        }
        const char *label = base_name(tool);
        char include[600];
        if (str_printf(include, sizeof(include), "--include=%s", packages) < 0)
                return err_set(err, "package list too long");
        /* execv wants char *const[]: private copies, no casts of const strings */
        char variant[] = "--variant=minbase", a_suite[80], a_tmp[NX_ROOTFS_PATH_MAX],
             a_mirror[600];
        if (str_copy(a_suite, sizeof(a_suite), suite) < 0 ||
            str_copy(a_tmp, sizeof(a_tmp), tmp) < 0 ||
            str_copy(a_mirror, sizeof(a_mirror), mirror) < 0)
                return err_set(err, "suite, directory or mirror too long");
        char *argv[] = { exe, variant, include, a_suite, a_tmp, a_mirror, NULL };
        phase(p, "running %s --variant=minbase %s %s %s %s", exe, include, suite, tmp, mirror);
        if (run_tool(p, label, argv, NULL, err) < 0)
                return -1;
        _cleanup_close_ int dfd = open(tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
                return err_errno(err, errno, "open %s", tmp);
        struct stat st;
        if (fstatat(dfd, "bin/sh", &st, 0) < 0)
                return err_set(err, "%s finished but %s/bin/sh is missing", label, tmp);
        /* mmdebstrap copies the host's resolv.conf and hostname in: not the host's business
         * inside a sandbox with no network (DESIGN D13: never the host's /etc). */
        if (put_file(dfd, "etc/resolv.conf", etc_resolv, 0644, err) < 0 ||
            put_file(dfd, "etc/hostname", "sandbox\n", 0644, err) < 0 ||
            put_file(dfd, "etc/hosts", etc_hosts, 0644, err) < 0)
                return -1;
        return 0;
}

/* The mount points bwrap needs on a read-only root (it cannot create them there). */
static int add_mount_points(const char *tmp, err_t *err)
{
        static const char *const dirs[] = { "dev", "proc", "sys", "tmp", "run", "workspace" };
        _cleanup_close_ int dfd = open(tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
                return err_errno(err, errno, "open %s", tmp);
        for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
                struct stat st;
                if (fstatat(dfd, dirs[i], &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode))
                        return err_set(err, "%s/%s exists and is not a directory", tmp, dirs[i]);
                if (mkdir_at(dfd, dirs[i], 0755, err) < 0)
                        return -1;
        }
        return 0;
}

/* ------------------------------------------------------------ prepare ------------- */

static bool token_ok(const char *s, size_t max, const char *extra)
{
        size_t n = strlen(s);
        if (n == 0 || n > max)
                return false;
        for (const char *c = s; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || strchr(extra, *c)))
                        return false;
        return true;
}

static bool mirror_ok(const char *s)
{
        if (strlen(s) > 512 || !(str_has_prefix(s, "http://") || str_has_prefix(s, "https://") ||
                                 str_has_prefix(s, "file:/")))
                return false;
        for (const char *c = s; *c; c++)
                if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
                        return false;
        return true;
}

static int mkdir_p(const char *path, err_t *err)
{
        char tmp[NX_ROOTFS_PATH_MAX];
        if (str_copy(tmp, sizeof(tmp), path) < 0)
                return err_set(err, "path \"%.200s\" too long", path);
        for (char *s = tmp + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = '\0';
                if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
                        return err_errno(err, errno, "mkdir %s", tmp);
                *s = '/';
        }
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
                return err_errno(err, errno, "mkdir %s", tmp);
        return 0;
}

/* Removes "<base>.tmp-*" siblings left by a killed prepare (we hold the lock). */
static void remove_stale(const prog *p, const char *parent, const char *base)
{
        char prefix[NX_ROOTFS_PATH_MAX], path[NX_ROOTFS_PATH_MAX * 2];
        if (str_printf(prefix, sizeof(prefix), "%s.tmp-", base) < 0)
                return;
        DIR *d = opendir(parent);
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (!str_has_prefix(de->d_name, prefix) || str_has_suffix(de->d_name, ".manifest"))
                        continue;
                if (str_printf(path, sizeof(path), "%s/%s", parent, de->d_name) < 0)
                        continue;
                err_t e = ERR_INIT;
                phase(p, "removing %s left by an interrupted prepare", path);
                if (nx_rootfs_remove_tree(path, &e) < 0)
                        phase(p, "warning: %s", e.msg);
        }
        closedir(d);
}

typedef struct prepare_ctx {
        prog p;
        char dir[NX_ROOTFS_PATH_MAX];
        char parent[NX_ROOTFS_PATH_MAX + 4];
        const char *base;
        char mpath[NX_ROOTFS_PATH_MAX];
        char tmp[NX_ROOTFS_PATH_MAX];
        bool have_tmp;
        bool replace;
        const char *suite;
        const char *packages;
        char mirror[600];
} prepare_ctx;

/* Checks an existing DIR: NX_ROOTFS_CACHED when it verifies, 0 when it must be rebuilt
 * (ctx->replace set), -1 when it must not be touched. */
static int check_existing(prepare_ctx *c, const nx_rootfs_opts *o, err_t *err)
{
        struct stat st;
        if (lstat(c->dir, &st) < 0) {
                if (errno == ENOENT)
                        return 0;
                return err_errno(err, errno, "stat %s", c->dir);
        }
        if (!S_ISDIR(st.st_mode))
                return err_set(err, "%s exists and is not a directory", c->dir);
        if (access(c->mpath, F_OK) < 0)
                return err_set(err, "%s exists but has no manifest %s: not a rootfs prepared "
                               "by nexusd; remove it or choose another --dir", c->dir, c->mpath);
        manifest m = { 0 };
        err_t verr = ERR_INIT;
        phase(&c->p, "verifying existing %s (full)", c->dir);
        int r = verify_into(c->dir, c->mpath, NX_ROOTFS_FULL, &m, &verr);
        rlist_free(&m.l);
        if (r == 0) {
                if (strcmp(m.kind, nx_rootfs_kind_name(o->kind)) != 0)
                        return err_set(err, "%s is a %s rootfs, not %s; remove it or choose "
                                       "another --dir", c->dir, m.kind,
                                       nx_rootfs_kind_name(o->kind));
                phase(&c->p, "rootfs ready: %s (verified)", c->dir);
                return NX_ROOTFS_CACHED;
        }
        phase(&c->p, "existing rootfs does not verify (%s): rebuilding", verr.msg);
        c->replace = true;
        return 0;
}

static int build_and_install(prepare_ctx *c, const nx_rootfs_opts *o, err_t *err)
{
        if (str_printf(c->tmp, sizeof(c->tmp), "%s.tmp-XXXXXX", c->dir) < 0)
                return err_set(err, "rootfs directory \"%.200s\" too long", c->dir);
        if (!mkdtemp(c->tmp))
                return err_errno(err, errno, "create %s", c->tmp);
        c->have_tmp = true;
        if (o->kind == NX_ROOTFS_BUSYBOX) {
                phase(&c->p, "building busybox rootfs in %s", c->tmp);
                if (build_busybox(&c->p, o, c->tmp, err) < 0)
                        return -1;
        } else {
                phase(&c->p, "building debian %s rootfs in %s (packages %s, mirror %s)",
                      c->suite, c->tmp, c->packages, c->mirror);
                if (build_debian(&c->p, o, c->tmp, c->suite, c->mirror, c->packages, err) < 0)
                        return -1;
        }
        size_t changed = 0;
        if (add_mount_points(c->tmp, err) < 0 || nx_rootfs_harden(c->tmp, &changed, err) < 0)
                return -1;
        if (chmod(c->tmp, 0755) < 0)
                return err_errno(err, errno, "chmod %s", c->tmp);
        phase(&c->p, "hardened: %zu entries changed (setuid/setgid and group/other write "
              "bits stripped; device nodes, fifos and sockets removed)", changed);
        phase(&c->p, "hashing every file for the manifest");
        _cleanup_rlist_ rlist l = { 0 };
        if (collect(c->tmp, true, &l, err) < 0)
                return err_wrap(err, "rootfs %s", c->tmp);
        if (manifest_write_list(c->dir, c->mpath, &l, nx_rootfs_kind_name(o->kind),
                                o->kind == NX_ROOTFS_DEBIAN ? c->suite : "", err) < 0)
                return -1;
        phase(&c->p, "manifest %s: %zu entries, %.1f MiB", c->mpath, l.n,
              (double)l.bytes / (1024.0 * 1024.0));
        /* Round trip: the tree as it will be used must match what was just written. */
        if (nx_rootfs_verify(c->tmp, c->mpath, NX_ROOTFS_QUICK, err) < 0)
                return -1;
        if (renameat2(AT_FDCWD, c->tmp, AT_FDCWD, c->dir,
                      c->replace ? RENAME_EXCHANGE : RENAME_NOREPLACE) < 0)
                return err_errno(err, errno, "rename %s to %s", c->tmp, c->dir);
        _cleanup_close_ int pfd = open(c->parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (pfd >= 0)
                (void)fsync(pfd);
        if (c->replace) {
                /* tmp now names the old tree */
                err_t e = ERR_INIT;
                if (nx_rootfs_remove_tree(c->tmp, &e) < 0)
                        phase(&c->p, "warning: old tree: %s", e.msg);
        }
        c->have_tmp = false;
        phase(&c->p, "rootfs ready: %s (%zu entries, %.1f MiB)", c->dir, l.n,
              (double)l.bytes / (1024.0 * 1024.0));
        return NX_ROOTFS_BUILT;
}

int nx_rootfs_prepare(const nx_rootfs_opts *o, err_t *err)
{
        _cleanup_free_ prepare_ctx *c = calloc(1, sizeof(*c));
        if (!c)
                return err_setc(err, ERR_INTERNAL, "out of memory");
        c->p.o = o;
        clock_gettime(CLOCK_MONOTONIC, &c->p.t0);
        if (o->kind != NX_ROOTFS_DEBIAN && o->kind != NX_ROOTFS_BUSYBOX)
                return err_set(err, "rootfs kind %d unknown", (int)o->kind);
        if (!o->dir || !*o->dir)
                return err_set(err, "rootfs directory is required (--dir)");
        if (split_path(o->dir, c->parent, sizeof(c->parent), &c->base, err) < 0)
                return -1;
        if (str_printf(c->dir, sizeof(c->dir), "%s%s%s", strcmp(c->parent, "/") == 0 ? ""
                       : c->parent, "/", c->base) < 0)
                return err_set(err, "rootfs directory \"%.200s\" too long", o->dir);
        c->suite = o->suite && *o->suite ? o->suite : NX_ROOTFS_DEFAULT_SUITE;
        c->packages = o->packages && *o->packages ? o->packages : NX_ROOTFS_DEFAULT_PACKAGES;
        if (o->mirror && *o->mirror)
                str_copy(c->mirror, sizeof(c->mirror), o->mirror);
        else
                nx_rootfs_default_mirror(NULL, c->suite, c->mirror, sizeof(c->mirror));
        if (!token_ok(c->suite, 64, "._-"))
                return err_set(err, "suite \"%.64s\" must match [a-z0-9._-]{1,64}", c->suite);
        if (!token_ok(c->packages, 512, ".+-,"))
                return err_set(err, "package list \"%.64s\" must be comma-separated Debian "
                               "package names", c->packages);
        if (!mirror_ok(c->mirror))
                return err_set(err, "mirror \"%.200s\" must be an http://, https:// or file:/ "
                               "URL without spaces", c->mirror);
        if (nx_rootfs_manifest_path(c->dir, c->mpath, sizeof(c->mpath), err) < 0)
                return -1;
        if (mkdir_p(c->parent, err) < 0)
                return -1;

        char lpath[NX_ROOTFS_PATH_MAX + 8];
        if (str_printf(lpath, sizeof(lpath), "%s.lock", c->dir) < 0)
                return err_set(err, "rootfs directory \"%.200s\" too long", c->dir);
        _cleanup_close_ int lfd = open(lpath, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (lfd < 0)
                return err_errno(err, errno, "open %s", lpath);
        if (flock(lfd, LOCK_EX | LOCK_NB) < 0) {
                phase(&c->p, "waiting for %s (another prepare is running)", lpath);
                if (flock(lfd, LOCK_EX) < 0)
                        return err_errno(err, errno, "lock %s", lpath);
        }
        remove_stale(&c->p, c->parent, c->base);

        int r = check_existing(c, o, err);
        if (r != 0)
                return r;
        r = build_and_install(c, o, err);
        if (r < 0 && c->have_tmp) {
                err_t e = ERR_INIT;
                if (nx_rootfs_remove_tree(c->tmp, &e) < 0)
                        phase(&c->p, "warning: %s", e.msg);
        }
        if (r < 0)
                return err_wrap(err, "rootfs prepare %s", c->dir);
        return r;
}

/* ------------------------------------------------------------ mirror -------------- */

static bool word_in(const char *list, const char *word)
{
        size_t wl = strlen(word);
        for (const char *p = list; *p;) {
                while (*p == ' ' || *p == '\t')
                        p++;
                size_t n = strcspn(p, " \t");
                if (n == wl && memcmp(p, word, wl) == 0)
                        return true;
                p += n;
        }
        return false;
}

/* deb822 ".sources": first stanza with Types deb, Suites containing suite, not disabled. */
static bool mirror_from_deb822(const char *text, const char *suite, char *out, size_t outsz)
{
        char types[256] = "", uris[600] = "", suites[256] = "", enabled[16] = "";
        const char *p = text;
        for (;;) {
                const char *nl = strchr(p, '\n');
                size_t len = nl ? (size_t)(nl - p) : strlen(p);
                size_t tl;
                const char *t = str_trim(p, len, &tl);
                if (tl == 0) {
                        if (word_in(types, "deb") && word_in(suites, suite) &&
                            strcmp(enabled, "no") != 0 && *uris) {
                                char first[600];
                                size_t n = strcspn(uris, " \t");
                                if (str_copyn(first, sizeof(first), uris, n) == 0 &&
                                    mirror_ok(first) && str_copy(out, outsz, first) == 0)
                                        return true;
                        }
                        types[0] = uris[0] = suites[0] = enabled[0] = '\0';
                } else if (*t != '#') {
                        const char *colon = memchr(t, ':', tl);
                        if (colon) {
                                size_t kl = (size_t)(colon - t), vl;
                                const char *v = str_trim(colon + 1, tl - kl - 1, &vl);
                                char *dst = NULL;
                                size_t dsz = 0;
                                if (kl == 5 && strncasecmp(t, "Types", 5) == 0) {
                                        dst = types;
                                        dsz = sizeof(types);
                                } else if (kl == 4 && strncasecmp(t, "URIs", 4) == 0) {
                                        dst = uris;
                                        dsz = sizeof(uris);
                                } else if (kl == 6 && strncasecmp(t, "Suites", 6) == 0) {
                                        dst = suites;
                                        dsz = sizeof(suites);
                                } else if (kl == 7 && strncasecmp(t, "Enabled", 7) == 0) {
                                        dst = enabled;
                                        dsz = sizeof(enabled);
                                }
                                if (dst)
                                        (void)str_copyn(dst, dsz, v, vl);
                        }
                }
                if (!nl)
                        break;
                p = nl + 1;
        }
        return false;
}

/* One-line format: "deb [opts] URL SUITE COMPONENTS...". */
static bool mirror_from_list(const char *text, const char *suite, char *out, size_t outsz)
{
        const char *p = text;
        for (;;) {
                const char *nl = strchr(p, '\n');
                size_t len = nl ? (size_t)(nl - p) : strlen(p);
                char line[1024];
                if (str_copyn(line, sizeof(line), p, len) == 0) {
                        char *hash = strchr(line, '#');
                        if (hash)
                                *hash = '\0';
                        char *w[4] = { NULL, NULL, NULL, NULL };
                        int nw = 0;
                        char *s = line;
                        bool in_opts = false;
                        while (nw < 4 && *s) {
                                s += strspn(s, " \t");
                                if (!*s)
                                        break;
                                size_t n = strcspn(s, " \t");
                                char *word = s;
                                s += n;
                                if (*s)
                                        *s++ = '\0';
                                if (nw == 1 && (word[0] == '[' || in_opts)) {
                                        in_opts = !strchr(word, ']');
                                        continue;
                                }
                                w[nw++] = word;
                        }
                        if (nw >= 3 && strcmp(w[0], "deb") == 0 && strcmp(w[2], suite) == 0 &&
                            mirror_ok(w[1]) && str_copy(out, outsz, w[1]) == 0)
                                return true;
                }
                if (!nl)
                        break;
                p = nl + 1;
        }
        return false;
}

static bool mirror_from_file(const char *path, bool deb822, const char *suite, char *out,
                             size_t outsz)
{
        _cleanup_buf_ buf b = BUF_INIT(1 << 20);
        err_t e = ERR_INIT;
        if (read_file_capped(path, 1 << 20, &b, &e) < 0 || !b.data)
                return false;
        /* a final blank line closes the last deb822 stanza */
        if (buf_append_str(&b, "\n\n") < 0)
                return false;
        return deb822 ? mirror_from_deb822(b.data, suite, out, outsz)
                      : mirror_from_list(b.data, suite, out, outsz);
}

void nx_rootfs_default_mirror(const char *apt_dir, const char *suite, char *out, size_t outsz)
{
        char path[NX_ROOTFS_PATH_MAX];
        const char *dir = apt_dir && *apt_dir ? apt_dir : "/etc/apt";
        if (!suite || !*suite)
                suite = NX_ROOTFS_DEFAULT_SUITE;
        if (str_printf(path, sizeof(path), "%s/sources.list", dir) >= 0 &&
            mirror_from_file(path, false, suite, out, outsz))
                return;
        char ddir[NX_ROOTFS_PATH_MAX];
        struct dirent **names = NULL;
        int n = -1;
        if (str_printf(ddir, sizeof(ddir), "%s/sources.list.d", dir) >= 0)
                n = scandir(ddir, &names, NULL, alphasort);
        bool found = false;
        for (int i = 0; i < n; i++) {
                const char *nm = names[i]->d_name;
                bool is822 = str_has_suffix(nm, ".sources");
                if (!found && (is822 || str_has_suffix(nm, ".list")) &&
                    str_printf(path, sizeof(path), "%s/%s", ddir, nm) >= 0)
                        found = mirror_from_file(path, is822, suite, out, outsz);
                free(names[i]);
        }
        free(names);
        if (!found)
                (void)str_copy(out, outsz, NX_ROOTFS_DEFAULT_MIRROR);
}

/* ------------------------------------------------------------ misc ---------------- */

int nx_rootfs_kind_parse(const char *s, nx_rootfs_kind *out, err_t *err)
{
        if (s && strcmp(s, "debian") == 0) {
                *out = NX_ROOTFS_DEBIAN;
                return 0;
        }
        if (s && strcmp(s, "busybox") == 0) {
                *out = NX_ROOTFS_BUSYBOX;
                return 0;
        }
        return err_set(err, "rootfs kind \"%.64s\" unknown (expected debian or busybox)",
                       s ? s : "");
}

const char *nx_rootfs_kind_name(nx_rootfs_kind kind)
{
        switch (kind) {
        case NX_ROOTFS_DEBIAN:
                return "debian";
        case NX_ROOTFS_BUSYBOX:
                return "busybox";
        default:
                return "?";
        }
}

int nx_rootfs_from_config(const nx_config *cfg, char *out, size_t outsz, err_t *err)
{
        if (outsz > 0)
                out[0] = '\0';
        if (cfg->bwrap.rootfs_path && *cfg->bwrap.rootfs_path) {
                char mpath[NX_ROOTFS_PATH_MAX];
                if (nx_rootfs_manifest_path(cfg->bwrap.rootfs_path, mpath, sizeof(mpath),
                                            err) < 0)
                        return err_wrap(err, "bwrap.rootfs_path");
                if (access(mpath, F_OK) < 0)
                        return err_set(err, "bwrap.rootfs_path %s has no manifest %s: prepare "
                                       "it with `nexusd rootfs prepare --dir %s`",
                                       cfg->bwrap.rootfs_path, mpath, cfg->bwrap.rootfs_path);
                if (str_copy(out, outsz, cfg->bwrap.rootfs_path) < 0)
                        return err_set(err, "bwrap.rootfs_path too long");
                return 0;
        }
        if (cfg->rootfs.autodl)
                return err_set(err, "rootfs.auto is not supported: nexusd does not download "
                               "rootfs tarballs; run `nexusd rootfs prepare --dir DIR` and set "
                               "bwrap.rootfs_path: DIR");
        return 0;
}
