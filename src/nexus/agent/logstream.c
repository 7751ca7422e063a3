/* agent/logstream.c — see logstream.h (spec nexus §5.9, §5.10). */
#include "agent/logstream.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "core/json.h"
#include "core/str.h"
#include "proto/wire.h"

#define OVERFLOW_DIR_DEFAULT ".nexus/overflow"
#define MOUNT_DEFAULT "/workspace"
#define REL_DIR_MAX 1024
#define MOUNT_MAX 4096
#define REL_DIR_COMPONENTS_MAX 32

struct nx_log_chunk_node {
        struct nx_log_chunk_node *prev, *next;
        nx_stream stream;
        int64_t seq;
        bool truncated;
        bool handed_out;
        size_t len;
        uint8_t bytes[];
};

/* A doubly linked list with head and tail: the outbox (FIFO) and the handed-out set. */
typedef struct chunk_list {
        struct nx_log_chunk_node *head, *tail;
} chunk_list;

typedef struct overflow_file {
        nx_overflow_state state;
        int fd;
        int64_t bytes;                  /* written, notice excluded */
        err_t why;                      /* set when DISABLED */
} overflow_file;

typedef struct stream_state {
        uint64_t fed, uploaded, dropped, discarded;
        int64_t next_seq;
        bool truncated;
        overflow_file ovf;
} stream_state;

struct nx_logstream {
        int64_t remaining;              /* shared budget left (§5.9) */
        size_t chunk_bytes;
        size_t outbox_max;
        size_t charged;                 /* queued + handed-out, see nx_logstream_chunk_charge */
        chunk_list outbox;
        chunk_list handed_out;
        bool overflow_on;
        bool no_openat2;
        int facility_fd;
        int64_t overflow_max;
        char *rel_dir;                  /* normalised: components joined by '/', may be "" */
        char *directive_id;
        char *mount;
        stream_state s[NX_STREAM_COUNT];
};

static const char *const stream_file[NX_STREAM_COUNT] = { "stdout.log", "stderr.log" };
static const char *const stream_key[NX_STREAM_COUNT] = { "stdout", "stderr" };

size_t nx_logstream_chunk_charge(size_t len)
{
        /* the bookkeeping is charged too: otherwise 1-byte writes would hold ~50x the bound */
        return sizeof(struct nx_log_chunk_node) + len;
}

/* ── lists ─────────────────────────────────────────────────────────────────────────── */

static void list_push_tail(chunk_list *l, struct nx_log_chunk_node *n)
{
        n->next = NULL;
        n->prev = l->tail;
        if (l->tail)
                l->tail->next = n;
        else
                l->head = n;
        l->tail = n;
}

static void list_push_head(chunk_list *l, struct nx_log_chunk_node *n)
{
        n->prev = NULL;
        n->next = l->head;
        if (l->head)
                l->head->prev = n;
        else
                l->tail = n;
        l->head = n;
}

static void list_unlink(chunk_list *l, struct nx_log_chunk_node *n)
{
        if (n->prev)
                n->prev->next = n->next;
        else
                l->head = n->next;
        if (n->next)
                n->next->prev = n->prev;
        else
                l->tail = n->prev;
        n->prev = n->next = NULL;
}

static void list_free_all(chunk_list *l)
{
        struct nx_log_chunk_node *n = l->head;
        while (n) {
                struct nx_log_chunk_node *next = n->next;
                free(n);
                n = next;
        }
        l->head = l->tail = NULL;
}

/* ── configuration ─────────────────────────────────────────────────────────────────── */

/* Normalises a facility-relative directory: drops empty and "." components, refuses "..",
 * absolute paths and absurd depth. RESOLVE_BENEATH would also stop "..", but a config that
 * asks for it is a mistake worth naming. */
static int rel_dir_normalise(const char *in, char **out, err_t *err)
{
        if (strlen(in) > REL_DIR_MAX)
                return err_set(err, "log_overflow.dir is longer than %d bytes", REL_DIR_MAX);
        if (in[0] == '/')
                return err_set(err, "log_overflow.dir \"%s\" must be relative to the facility",
                               in);
        _cleanup_buf_ buf b = BUF_INIT(REL_DIR_MAX + 1);
        int ncomp = 0;
        const char *p = in;
        while (*p) {
                const char *slash = strchr(p, '/');
                size_t n = slash ? (size_t)(slash - p) : strlen(p);
                if (n == 2 && p[0] == '.' && p[1] == '.')
                        return err_set(err, "log_overflow.dir \"%s\" must not contain \"..\"",
                                       in);
                if (n > NAME_MAX)
                        return err_set(err, "log_overflow.dir \"%s\": component longer than %d "
                                       "bytes", in, NAME_MAX);
                if (n > 0 && !(n == 1 && p[0] == '.')) {
                        if (++ncomp > REL_DIR_COMPONENTS_MAX)
                                return err_set(err, "log_overflow.dir \"%s\" is deeper than %d "
                                               "components", in, REL_DIR_COMPONENTS_MAX);
                        if ((b.len > 0 && buf_putc(&b, '/') < 0) || buf_append(&b, p, n) < 0)
                                return err_errno(err, errno, "log_overflow.dir");
                }
                p += n;
                if (*p == '/')
                        p++;
        }
        if (buf_append(&b, "", 0) < 0)
                return err_errno(err, errno, "log_overflow.dir");
        *out = buf_steal(&b, NULL);
        if (!*out)
                return err_errno(err, ENOMEM, "log_overflow.dir");
        return 0;
}

int nx_logstream_new(const nx_logstream_cfg *cfg, nx_logstream **out, err_t *err)
{
        *out = NULL;
        if (cfg->cap_bytes < 0)
                return err_set(err, "log cap %lld must be >= 0", (long long)cfg->cap_bytes);
        if (cfg->chunk_bytes < 1 || cfg->chunk_bytes > NX_LOGSTREAM_CHUNK_MAX)
                return err_set(err, "log.chunk_bytes %zu out of range 1-%d", cfg->chunk_bytes,
                               NX_LOGSTREAM_CHUNK_MAX);
        size_t outbox = cfg->outbox_max_bytes ? cfg->outbox_max_bytes
                                              : NX_LOGSTREAM_OUTBOX_DEFAULT;
        if (outbox < nx_logstream_chunk_charge(cfg->chunk_bytes))
                return err_set(err, "log outbox bound %zu cannot hold one chunk of %zu bytes "
                               "(needs %zu)", outbox, cfg->chunk_bytes,
                               nx_logstream_chunk_charge(cfg->chunk_bytes));

        _cleanup_free_ nx_logstream *ls = calloc(1, sizeof(*ls));
        if (!ls)
                return err_errno(err, ENOMEM, "logstream");
        ls->remaining = cfg->cap_bytes;
        ls->chunk_bytes = cfg->chunk_bytes;
        ls->outbox_max = outbox;
        ls->facility_fd = -1;
        ls->no_openat2 = cfg->no_openat2;
        for (int i = 0; i < NX_STREAM_COUNT; i++)
                ls->s[i].ovf.fd = -1;

        /* §5.10: enabled when configured and max_bytes_per_stream > 0; without a facility
         * there is nowhere to write. */
        if (cfg->overflow_enabled && cfg->overflow_max_per_stream > 0 && cfg->facility_dirfd >= 0) {
                const char *id = cfg->directive_id ? cfg->directive_id : "";
                const char *mount = (cfg->mount && cfg->mount[0]) ? cfg->mount : MOUNT_DEFAULT;
                int rc = -1;
                if (!wire_id_is_valid(id)) {
                        err_set(err, "directive id \"%.*s\" is not a safe overflow directory "
                                "name", 200, id);
                } else if (strlen(mount) > MOUNT_MAX) {
                        err_set(err, "facility mount is longer than %d bytes", MOUNT_MAX);
                } else if (rel_dir_normalise(cfg->overflow_rel_dir ? cfg->overflow_rel_dir
                                                                  : OVERFLOW_DIR_DEFAULT,
                                             &ls->rel_dir, err) == 0) {
                        ls->directive_id = strdup(id);
                        ls->mount = strdup(mount);
                        /* our own fd: the caller may close theirs before the first overflow */
                        ls->facility_fd = fcntl(cfg->facility_dirfd, F_DUPFD_CLOEXEC, 3);
                        if (!ls->directive_id || !ls->mount)
                                err_errno(err, ENOMEM, "logstream");
                        else if (ls->facility_fd < 0)
                                err_errno(err, errno, "logstream: dup facility fd");
                        else
                                rc = 0;
                }
                if (rc < 0) {
                        nx_logstream *tmp = steal_ptr(&ls);
                        nx_logstream_free(tmp);
                        return -1;
                }
                ls->overflow_on = true;
                ls->overflow_max = cfg->overflow_max_per_stream;
                for (int i = 0; i < NX_STREAM_COUNT; i++)
                        ls->s[i].ovf.state = NX_OVERFLOW_UNOPENED;
        }
        *out = steal_ptr(&ls);
        return 0;
}

void nx_logstream_free(nx_logstream *ls)
{
        if (!ls)
                return;
        list_free_all(&ls->outbox);
        list_free_all(&ls->handed_out);
        for (int i = 0; i < NX_STREAM_COUNT; i++)
                cleanup_closep(&ls->s[i].ovf.fd);
        cleanup_closep(&ls->facility_fd);
        FREE_AND_NULL(ls->rel_dir);
        FREE_AND_NULL(ls->directive_id);
        FREE_AND_NULL(ls->mount);
        free(ls);
}

/* ── overflow (§5.10) ──────────────────────────────────────────────────────────────── */

/* Opens one name (never a path) relative to dirfd without following a symlink. openat2
 * additionally refuses magic links and escapes; the openat fallback is equivalent here
 * because name is a single component that is not "..". */
static int open_component(const nx_logstream *ls, int dirfd, const char *name, int flags,
                          mode_t mode)
{
        flags |= O_NOFOLLOW | O_CLOEXEC;
        if (!ls->no_openat2) {
                struct open_how how = {
                        .flags = (uint64_t)flags,
                        .mode = (flags & O_CREAT) ? mode : 0,
                        .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
                                   RESOLVE_NO_MAGICLINKS,
                };
                long fd = syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
                if (fd >= 0 || errno != ENOSYS)
                        return (int)fd;
        }
        return openat(dirfd, name, flags, mode);
}

static int why_refused(err_t *err, int e, int dirfd, const char *what, const char *name)
{
        struct stat st;
        /* O_DIRECTORY|O_NOFOLLOW on a symlink says ENOTDIR: name the real reason */
        bool link = e == ELOOP ||
                    (e == ENOTDIR && fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                     S_ISLNK(st.st_mode));
        if (link || e == EXDEV)
                return err_setc(err, ERR_FORBIDDEN, "overflow %s \"%s\" is a symlink or leaves "
                                "the facility; overflow disabled", what, name);
        return err_errno(err, e, "overflow %s \"%s\"", what, name);
}

/* Creates (mkdirat) and opens one directory level below dirfd. */
static int open_dir_level(const nx_logstream *ls, int dirfd, const char *name, err_t *err)
{
        if (mkdirat(dirfd, name, 0755) < 0 && errno != EEXIST)
                return err_errno(err, errno, "overflow: create directory \"%s\"", name);
        /* EEXIST may be a symlink the sandbox planted: the no-follow open refuses it */
        _cleanup_close_ int fd = open_component(ls, dirfd, name, O_RDONLY | O_DIRECTORY, 0);
        if (fd < 0)
                return why_refused(err, errno, dirfd, "directory", name);
        struct stat st;
        if (fstat(fd, &st) < 0)
                return err_errno(err, errno, "overflow: stat \"%s\"", name);
        if (!S_ISDIR(st.st_mode))
                return err_setc(err, ERR_FORBIDDEN, "overflow directory \"%s\" is not a "
                                "directory", name);
        return steal_fd(&fd);
}

static int overflow_open(nx_logstream *ls, nx_stream s, err_t *err)
{
        _cleanup_close_ int dir = fcntl(ls->facility_fd, F_DUPFD_CLOEXEC, 3);
        if (dir < 0)
                return err_errno(err, errno, "overflow: dup facility fd");
        /* rel_dir components, then the directive id: one level at a time */
        _cleanup_free_ char *path = str_dup_printf("%s%s%s", ls->rel_dir,
                                                   ls->rel_dir[0] ? "/" : "", ls->directive_id);
        if (!path)
                return err_errno(err, ENOMEM, "overflow");
        char *save = path;
        for (;;) {
                char *slash = strchr(save, '/');
                if (slash)
                        *slash = '\0';
                int next = open_dir_level(ls, dir, save, err);
                if (next < 0)
                        return -1;
                cleanup_closep(&dir);
                dir = next;
                if (!slash)
                        break;
                save = slash + 1;
        }
        /* O_NONBLOCK: a FIFO planted as the log would otherwise block the loop in open();
         * O_NOCTTY: never acquire a terminal. Neither matters for a regular file. */
        _cleanup_close_ int fd = open_component(ls, dir, stream_file[s],
                                                O_WRONLY | O_CREAT | O_APPEND | O_NONBLOCK |
                                                O_NOCTTY, 0644);
        if (fd < 0)
                return why_refused(err, errno, dir, "file", stream_file[s]);
        struct stat st;
        if (fstat(fd, &st) < 0)
                return err_errno(err, errno, "overflow: stat \"%s\"", stream_file[s]);
        if (!S_ISREG(st.st_mode))
                return err_setc(err, ERR_FORBIDDEN, "overflow file \"%s\" is not a regular "
                                "file; overflow disabled", stream_file[s]);
        /* a hard link would make us append to a file elsewhere (on the same filesystem) */
        if (st.st_nlink != 1)
                return err_setc(err, ERR_FORBIDDEN, "overflow file \"%s\" has %ju links; "
                                "overflow disabled", stream_file[s], (uintmax_t)st.st_nlink);
        return steal_fd(&fd);
}

/* Returns bytes written (may be short on error, then errno is set). */
static size_t write_some(int fd, const uint8_t *p, size_t n, int *errnum)
{
        size_t done = 0;
        *errnum = 0;
        while (done < n) {
                ssize_t w = write(fd, p + done, n - done);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        *errnum = errno;
                        break;
                }
                if (w == 0) {
                        *errnum = EIO;
                        break;
                }
                done += (size_t)w;
        }
        return done;
}

static void overflow_disable(overflow_file *o)
{
        o->state = NX_OVERFLOW_DISABLED;
        cleanup_closep(&o->fd);
}

/* Bytes not uploaded go here (or are discarded). Best effort: never fails the caller. */
static void overflow_write(nx_logstream *ls, nx_stream s, const uint8_t *p, size_t n)
{
        stream_state *st = &ls->s[s];
        overflow_file *o = &st->ovf;
        if (n == 0)
                return;
        if (o->state == NX_OVERFLOW_UNOPENED) {
                err_clear(&o->why);
                o->fd = overflow_open(ls, s, &o->why);
                o->state = o->fd >= 0 ? NX_OVERFLOW_OPEN : NX_OVERFLOW_DISABLED;
        }
        if (o->state != NX_OVERFLOW_OPEN) {
                st->discarded += n;
                return;
        }
        uint64_t room = (uint64_t)(ls->overflow_max - o->bytes);
        size_t want = n < room ? n : (size_t)room;
        int e = 0;
        size_t w = write_some(o->fd, p, want, &e);
        o->bytes += (int64_t)w;
        st->discarded += n - w;
        if (e) {
                err_errno(&o->why, e, "overflow: write \"%s\"", stream_file[s]);
                overflow_disable(o);
                return;
        }
        if (want < n) {
                char notice[96];
                int len = snprintf(notice, sizeof(notice),
                                   "\n[nexus] overflow file reached max_bytes_per_stream=%lld\n",
                                   (long long)ls->overflow_max);
                if (len > 0 && (size_t)len < sizeof(notice))
                        (void)write_some(o->fd, (const uint8_t *)notice, (size_t)len, &e);
                o->state = NX_OVERFLOW_FULL;
                cleanup_closep(&o->fd);
        }
}

/* ── feeding ───────────────────────────────────────────────────────────────────────── */

static bool outbox_fits(const nx_logstream *ls, size_t len)
{
        size_t c = nx_logstream_chunk_charge(len);
        return c <= ls->outbox_max && ls->charged <= ls->outbox_max - c;
}

static bool queue_chunk(nx_logstream *ls, nx_stream s, const uint8_t *p, size_t len,
                        bool truncated)
{
        if (!outbox_fits(ls, len))
                return false;
        struct nx_log_chunk_node *n = malloc(nx_logstream_chunk_charge(len));
        if (!n)
                return false;   /* treated like a full outbox: never fail the directive */
        n->stream = s;
        n->seq = ls->s[s].next_seq++;
        n->truncated = truncated;
        n->handed_out = false;
        n->len = len;
        memcpy(n->bytes, p, len);
        list_push_tail(&ls->outbox, n);
        ls->charged += nx_logstream_chunk_charge(len);
        return true;
}

static int check_stream(nx_stream s, err_t *err)
{
        if ((int)s != NX_STDOUT && (int)s != NX_STDERR)
                return err_set(err, "log stream %d is neither stdout nor stderr", (int)s);
        return 0;
}

int nx_logstream_write(nx_logstream *ls, nx_stream s, const void *data, size_t len, err_t *err)
{
        if (check_stream(s, err) < 0)
                return -1;
        stream_state *st = &ls->s[s];
        const uint8_t *p = data;
        st->fed += len;
        while (len > 0) {
                size_t piece = len < ls->chunk_bytes ? len : ls->chunk_bytes;
                size_t take = (uint64_t)ls->remaining < piece ? (size_t)ls->remaining : piece;
                size_t upto = 0;        /* bytes of this piece that were queued */
                if (take > 0) {
                        /* §5.9: the budget is taken atomically per piece; a cut piece's
                         * chunk is flagged */
                        if (queue_chunk(ls, s, p, take, take < piece)) {
                                ls->remaining -= (int64_t)take;
                                st->uploaded += take;
                                upto = take;
                        } else {
                                /* outbox full (the caller ignored backpressure): drop from
                                 * the upload instead of growing; see header */
                                st->dropped += take;
                        }
                }
                if (upto < piece) {
                        st->truncated = true;
                        overflow_write(ls, s, p + upto, piece - upto);
                }
                p += piece;
                len -= piece;
        }
        return 0;
}

int nx_logstream_message(nx_logstream *ls, nx_stream s, const char *text, err_t *err)
{
        return nx_logstream_write(ls, s, text, strlen(text), err);
}

bool nx_logstream_backpressure(const nx_logstream *ls)
{
        return !outbox_fits(ls, ls->chunk_bytes);
}

size_t nx_logstream_queued_bytes(const nx_logstream *ls)
{
        return ls->charged;
}

/* ── draining ──────────────────────────────────────────────────────────────────────── */

static void chunk_fill(nx_log_chunk *c, struct nx_log_chunk_node *n)
{
        c->stream = n->stream;
        c->seq = n->seq;
        c->bytes = n->bytes;
        c->len = n->len;
        c->truncated = n->truncated;
        c->node_ = n;
}

bool nx_logstream_next(nx_logstream *ls, nx_log_chunk *out)
{
        memset(out, 0, sizeof(*out));
        struct nx_log_chunk_node *n = ls->outbox.head;
        if (!n)
                return false;
        list_unlink(&ls->outbox, n);
        n->handed_out = true;
        list_push_tail(&ls->handed_out, n);
        chunk_fill(out, n);
        return true;
}

void nx_logstream_chunk_done(nx_logstream *ls, nx_log_chunk *c)
{
        struct nx_log_chunk_node *n = c->node_;
        memset(c, 0, sizeof(*c));
        if (!n || !n->handed_out)
                return;
        list_unlink(&ls->handed_out, n);
        ls->charged -= nx_logstream_chunk_charge(n->len);
        free(n);
}

void nx_logstream_chunk_requeue(nx_logstream *ls, nx_log_chunk *c)
{
        struct nx_log_chunk_node *n = c->node_;
        memset(c, 0, sizeof(*c));
        if (!n || !n->handed_out)
                return;
        list_unlink(&ls->handed_out, n);
        n->handed_out = false;
        list_push_head(&ls->outbox, n);
}

json_t *nx_log_chunk_to_json(const nx_log_chunk *c, err_t *err)
{
        if (!c->node_) {
                err_set(err, "log chunk was not handed out");
                return NULL;
        }
        /* the wire struct borrows the node's bytes; it is not freed here */
        wire_log_chunk_request req = {
                .stream = c->stream == NX_STDERR ? WIRE_STREAM_STDERR : WIRE_STREAM_STDOUT,
                .seq = c->seq,
                .bytes = c->node_->bytes,
                .bytes_len = c->len,
                .truncated = c->truncated,
        };
        return wire_log_chunk_request_to_json(&req, err);
}

/* ── results ───────────────────────────────────────────────────────────────────────── */

bool nx_logstream_truncated(const nx_logstream *ls, nx_stream s)
{
        if ((int)s != NX_STDOUT && (int)s != NX_STDERR)
                return false;
        return ls->s[s].truncated;
}

void nx_logstream_stats_get(const nx_logstream *ls, nx_stream s, nx_logstream_stats *out)
{
        memset(out, 0, sizeof(*out));
        if ((int)s != NX_STDOUT && (int)s != NX_STDERR)
                return;
        const stream_state *st = &ls->s[s];
        out->fed_bytes = st->fed;
        out->uploaded_bytes = st->uploaded;
        out->next_seq = st->next_seq;
        out->overflow_bytes = (uint64_t)st->ovf.bytes;
        out->dropped_bytes = st->dropped;
        out->discarded_bytes = st->discarded;
        out->overflow = st->ovf.state;
        out->truncated = st->truncated;
}

const char *nx_logstream_overflow_error(const nx_logstream *ls, nx_stream s)
{
        if ((int)s != NX_STDOUT && (int)s != NX_STDERR)
                return "";
        const overflow_file *o = &ls->s[s].ovf;
        return o->state == NX_OVERFLOW_DISABLED ? o->why.msg : "";
}

/* Lexical clean of a '/'-separated path, like Go's path.Clean (REF builds the manifest path
 * with it): "." and empty components vanish, ".." pops one (never above a root). */
static char *path_clean(const char *in)
{
        size_t n = strlen(in);
        bool rooted = n > 0 && in[0] == '/';
        _cleanup_free_ char *outp = malloc(n + 2);
        if (!outp)
                return NULL;
        size_t len = 0;         /* bytes of outp used, without NUL */
        if (rooted)
                outp[len++] = '/';
        size_t base = len;
        size_t dotdot = base;    /* ".." never pops below this (root, or leading ".."s) */
        const char *p = in;
        while (*p) {
                while (*p == '/')
                        p++;
                if (!*p)
                        break;
                const char *e = strchr(p, '/');
                size_t c = e ? (size_t)(e - p) : strlen(p);
                if (c == 1 && p[0] == '.') {
                        /* skip */
                } else if (c == 2 && p[0] == '.' && p[1] == '.') {
                        if (len > dotdot) {
                                len--;
                                while (len > dotdot && outp[len] != '/')
                                        len--;
                        } else if (!rooted) {
                                if (len > base)
                                        outp[len++] = '/';
                                outp[len++] = '.';
                                outp[len++] = '.';
                                dotdot = len;
                        }
                } else {
                        if (len > base)
                                outp[len++] = '/';
                        memcpy(outp + len, p, c);
                        len += c;
                }
                p += c;
        }
        if (len == 0)
                outp[len++] = '.';
        outp[len] = '\0';
        return steal_ptr(&outp);
}

json_t *nx_logstream_manifest(const nx_logstream *ls)
{
        _cleanup_json_ json_t *root = json_object();
        if (!root)
                return NULL;
        /* §5.10: only when overflow is enabled and at least one stream was truncated */
        if (!ls->overflow_on || (!ls->s[NX_STDOUT].truncated && !ls->s[NX_STDERR].truncated))
                return steal_ptr(&root);
        json_t *lo = json_object();
        if (!lo || json_object_set_new(root, "log_overflow", lo) < 0)
                return NULL;
        for (int i = 0; i < NX_STREAM_COUNT; i++) {
                _cleanup_free_ char *raw = str_dup_printf("%s/%s/%s/%s", ls->mount, ls->rel_dir,
                                                          ls->directive_id, stream_file[i]);
                _cleanup_free_ char *clean = raw ? path_clean(raw) : NULL;
                char key[32];
                if (!clean)
                        return NULL;
                if (str_printf(key, sizeof(key), "%s_path", stream_key[i]) < 0 ||
                    json_object_set_new(lo, key, json_string(clean)) < 0)
                        return NULL;
        }
        for (int i = 0; i < NX_STREAM_COUNT; i++) {
                char key[32];
                if (str_printf(key, sizeof(key), "%s_bytes", stream_key[i]) < 0 ||
                    json_object_set_new(lo, key, json_integer(ls->s[i].ovf.bytes)) < 0)
                        return NULL;
        }
        if (json_object_set_new(lo, "max_bytes_per_stream", json_integer(ls->overflow_max)) < 0)
                return NULL;
        for (int i = 0; i < NX_STREAM_COUNT; i++) {
                char key[32];
                if (ls->s[i].ovf.state != NX_OVERFLOW_DISABLED)
                        continue;
                if (str_printf(key, sizeof(key), "%s_disabled", stream_key[i]) < 0 ||
                    json_object_set_new(lo, key, json_true()) < 0)
                        return NULL;
        }
        return steal_ptr(&root);
}
