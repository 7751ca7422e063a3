/* agent/wal.c — see wal.h.
 *
 * In memory the WAL is only an index: for each pending directive id, where its latest line
 * sits in the file (offset, length). Reports are read back from the file when they are
 * needed (pending, rewrite), so memory stays small however large the reports are, and every
 * read re-verifies the line's checksum. Ids are found through a small open-addressing hash,
 * so loading a full WAL stays linear. */
/* Included as "wal.h" (same directory) so the fuzz target can compile this file on its own. */
#include "wal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "core/clock.h"
#include "core/crypto.h"
#include "core/json.h"
#include "core/str.h"

#define WAL_TMP_FILE NX_WAL_FILE ".tmp"
#define WAL_READ_CHUNK (64 * 1024)
/* Superseded and corrupt lines are dropped by the next rewrite; an append rewrites first
 * when the file holds this many lines, so repeated appends of one id stay bounded too. */
#define WAL_COMPACT_LINES (2 * NX_WAL_MAX_ENTRIES)

typedef struct wal_slot {
        char id[NX_WAL_ID_MAX + 1];
        uint64_t off;           /* where the line starts */
        size_t len;             /* newline excluded */
} wal_slot;

typedef struct wal_index {
        wal_slot *v;
        size_t n, cap;
        uint32_t *hash;         /* slot index + 1, 0 = free; hcap is a power of two > 2n */
        size_t hcap;
        size_t corrupt;         /* lines skipped: unverifiable, over-long, torn, over capacity */
        size_t lines;           /* non-empty lines in the file, valid or not */
        uint64_t size;          /* bytes in the file */
        bool tail_dirty;        /* the file does not end with '\n' */
} wal_index;

/* Where lines are read from: the WAL file, or a memory image (nx_wal_load_buffer). */
typedef struct wal_src {
        int fd;                 /* -1 for memory */
        const char *mem;
        size_t memlen;
} wal_src;

struct nx_wal {
        pthread_mutex_t lock;
        int dirfd;              /* holds the flock */
        int fd;                 /* finished.wal, O_RDWR|O_APPEND */
        wal_index idx;
        char dir[PATH_MAX];
        char path[PATH_MAX];    /* <dir>/finished.wal, for messages */
};

/* ── ids, canonical form, checksum ─────────────────────────────────────────────────────── */

int nx_wal_check_id(const char *directive_id, err_t *err)
{
        /* Callers that only want the verdict pass err = NULL. */
        err_t scratch = ERR_INIT;
        if (!err)
                err = &scratch;
        if (!directive_id || !*directive_id)
                return err_set(err, "directive id is empty");
        size_t n = strnlen(directive_id, NX_WAL_ID_MAX + 1);
        if (n > NX_WAL_ID_MAX)
                return err_set(err, "directive id is longer than %d bytes", NX_WAL_ID_MAX);
        for (size_t i = 0; i < n; i++) {
                char c = directive_id[i];
                bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
                if (!ok)
                        return err_set(err, "directive id \"%.*s\" has a character outside "
                                       "[A-Za-z0-9._-] at offset %zu", (int)n, directive_id, i);
        }
        if (strcmp(directive_id, ".") == 0 || strcmp(directive_id, "..") == 0)
                return err_set(err, "directive id \"%s\" is not allowed", directive_id);
        return 0;
}

/* The report is written where the reader's json_parse() sees it at depth 2, and that reader
 * refuses NUL bytes in strings; refuse here what could not be read back. */
static int wal_report_storable(const json_t *j, int level, err_t *err)
{
        if (json_is_string(j)) {
                if (strlen(json_string_value(j)) != json_string_length(j))
                        return err_set(err, "report holds a string with a NUL byte");
                return 0;
        }
        if (!json_is_object(j) && !json_is_array(j))
                return 0;
        if (level > JSON_MAX_DEPTH)
                return err_set(err, "report nests deeper than %d levels", JSON_MAX_DEPTH - 1);
        if (json_is_array(j)) {
                size_t n = json_array_size(j);
                for (size_t i = 0; i < n; i++) {
                        if (wal_report_storable(json_array_get(j, i), level + 1, err) < 0)
                                return -1;
                }
                return 0;
        }
        /* jansson iterates objects through a non-const API; iteration does not modify. */
        union { const json_t *c; json_t *m; } u = { .c = j };
        for (void *it = json_object_iter(u.m); it; it = json_object_iter_next(u.m, it)) {
                if (strlen(json_object_iter_key(it)) != json_object_iter_key_len(it))
                        return err_set(err, "report holds a key with a NUL byte");
                if (wal_report_storable(json_object_iter_value(it), level + 1, err) < 0)
                        return -1;
        }
        return 0;
}

/* Canonical text of a report: compact, keys sorted, so that it does not depend on the order
 * the caller built the object in, and re-serialising a parsed report gives the same bytes. */
static char *wal_canonical_report(const json_t *report)
{
        return json_dumps(report, JSON_COMPACT | JSON_SORT_KEYS);
}

/* SHA-256 hex of {"directive_id":<id>,"report":<R>,"v":1,"written_at":<ts>} — the entry
 * without its checksum, keys sorted. id and ts were validated, so they need no escaping. */
static int wal_checksum(const char *id, const char *ts, const char *canon, size_t canon_len,
                        char out[CRYPTO_SHA256_HEX_LEN + 1])
{
        _cleanup_sha256_ crypto_sha256_ctx *c = crypto_sha256_new();
        if (!c)
                return -1;
        static const char p1[] = "{\"directive_id\":\"";
        static const char p2[] = "\",\"report\":";
        static const char p3[] = ",\"v\":1,\"written_at\":\"";
        static const char p4[] = "\"}";
        uint8_t md[CRYPTO_SHA256_LEN];
        if (crypto_sha256_update(c, p1, sizeof(p1) - 1) < 0 ||
            crypto_sha256_update(c, id, strlen(id)) < 0 ||
            crypto_sha256_update(c, p2, sizeof(p2) - 1) < 0 ||
            crypto_sha256_update(c, canon, canon_len) < 0 ||
            crypto_sha256_update(c, p3, sizeof(p3) - 1) < 0 ||
            crypto_sha256_update(c, ts, strlen(ts)) < 0 ||
            crypto_sha256_update(c, p4, sizeof(p4) - 1) < 0 ||
            crypto_sha256_final(c, md) < 0)
                return -1;
        crypto_hex(md, sizeof(md), out);
        return 0;
}

/* ── the line format ───────────────────────────────────────────────────────────────────── */

int nx_wal_format_line(const char *directive_id, int64_t written_at_ms, const json_t *report,
                       char **line, size_t *len, err_t *err)
{
        *line = NULL;
        *len = 0;
        if (nx_wal_check_id(directive_id, err) < 0)
                return err_wrap(err, "wal");
        if (!json_is_object(report))
                return err_set(err, "wal: report for %s must be a JSON object, got %s",
                               directive_id, json_type_name(report));
        if (wal_report_storable(report, 2, err) < 0)
                return err_wrap(err, "wal: report for %s", directive_id);
        char ts[RFC3339_MS_LEN];
        if (rfc3339_format_ms(written_at_ms, ts, sizeof(ts)) < 0)
                return err_set(err, "wal: time %lld ms is outside years 0000-9999",
                               (long long)written_at_ms);
        _cleanup_free_ char *canon = wal_canonical_report(report);
        if (!canon)
                /* jansson's encoder fails on strings that are not UTF-8 and on ENOMEM */
                return err_set(err, "wal: cannot encode report for %s (a string that is not "
                               "UTF-8, or out of memory)", directive_id);
        size_t clen = strlen(canon);
        char sum[CRYPTO_SHA256_HEX_LEN + 1];
        if (wal_checksum(directive_id, ts, canon, clen, sum) < 0)
                return err_setc(err, ERR_INTERNAL, "wal: sha256 of report for %s failed",
                                directive_id);
        /* The cap leaves room for the newline: NX_WAL_MAX_LINE counts the entry only. */
        _cleanup_buf_ buf b = BUF_INIT((size_t)NX_WAL_MAX_LINE + 1);
        if (buf_appendf(&b, "{\"v\":%d,\"directive_id\":\"%s\",\"written_at\":\"%s\",\"report\":",
                        NX_WAL_VERSION, directive_id, ts) < 0 ||
            buf_append(&b, canon, clen) < 0 ||
            buf_appendf(&b, ",\"sha256\":\"%s\"}\n", sum) < 0) {
                if (errno == EMSGSIZE)
                        return err_setc(err, ERR_TOO_LARGE, "wal: report for %s does not fit "
                                        "the %u-byte line limit (canonical report is %zu bytes)",
                                        directive_id, NX_WAL_MAX_LINE, clen);
                return err_errno(err, errno, "wal: encode report for %s", directive_id);
        }
        *line = buf_steal(&b, len);
        if (!*line)
                return err_errno(err, ENOMEM, "wal: encode report for %s", directive_id);
        return 0;
}

static bool wal_is_lower_hex(const char *s, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
                        return false;
        }
        return true;
}

int nx_wal_parse_line(const char *line, size_t len, nx_wal_entry *out, err_t *err)
{
        if (len > (size_t)NX_WAL_MAX_LINE + 1)
                return err_setc(err, ERR_TOO_LARGE, "entry of %zu bytes exceeds the %u-byte "
                                "line limit", len, NX_WAL_MAX_LINE);
        _cleanup_json_ json_t *j = json_parse(line, len, true, err);
        if (!j)
                return -1;
        static const char *const keys[] = { "v", "directive_id", "written_at", "report",
                                            "sha256", NULL };
        if (json_check_keys(j, keys, err) < 0)
                return -1;
        int64_t v = 0;
        if (json_get_int(j, "v", true, INT64_MIN, INT64_MAX, &v, NULL, err) < 0)
                return -1;
        if (v != NX_WAL_VERSION)
                return err_set(err, "unsupported entry version %lld (this reader knows %d)",
                               (long long)v, NX_WAL_VERSION);
        const char *id = NULL, *ts = NULL, *sum = NULL;
        json_t *report = NULL;
        if (json_get_string(j, "directive_id", true, &id, NULL, err) < 0 ||
            json_get_string(j, "written_at", true, &ts, NULL, err) < 0 ||
            json_get_object(j, "report", true, &report, NULL, err) < 0 ||
            json_get_string(j, "sha256", true, &sum, NULL, err) < 0)
                return -1;
        /* The fields feed the checksum text unescaped: validate them first. A string with
         * an embedded NUL cannot get here (the parser refuses \u0000). */
        if (nx_wal_check_id(id, err) < 0)
                return -1;
        int64_t ms = 0;
        if (strlen(ts) > 64)
                return err_set(err, "field \"written_at\" is too long");
        if (rfc3339_parse(ts, &ms, err) < 0)
                return err_wrap(err, "field \"written_at\"");
        if (strlen(sum) != CRYPTO_SHA256_HEX_LEN || !wal_is_lower_hex(sum, CRYPTO_SHA256_HEX_LEN))
                return err_set(err, "field \"sha256\" must be %d lower-case hex digits",
                               CRYPTO_SHA256_HEX_LEN);
        _cleanup_free_ char *canon = wal_canonical_report(report);
        if (!canon)
                return err_errno(err, ENOMEM, "encode report");
        char want[CRYPTO_SHA256_HEX_LEN + 1];
        if (wal_checksum(id, ts, canon, strlen(canon), want) < 0)
                return err_setc(err, ERR_INTERNAL, "sha256 failed");
        if (!crypto_memeq(want, sum, CRYPTO_SHA256_HEX_LEN))
                return err_set(err, "checksum mismatch for directive %s (torn or corrupted "
                               "entry)", id);
        nx_wal_entry e = { .written_at_ms = ms, .report = json_incref(report) };
        if (str_copy(e.directive_id, sizeof(e.directive_id), id) < 0) {
                json_decref(e.report);
                return err_set(err, "directive id too long");   /* checked above */
        }
        *out = e;
        return 0;
}

void nx_wal_entry_clear(nx_wal_entry *e)
{
        if (!e)
                return;
        json_decref(e->report);
        e->report = NULL;
        e->directive_id[0] = '\0';
}

void nx_wal_entries_free(nx_wal_entry *entries, size_t n)
{
        if (!entries)
                return;
        for (size_t i = 0; i < n; i++)
                nx_wal_entry_clear(&entries[i]);
        free(entries);
}

/* ── reading ───────────────────────────────────────────────────────────────────────────── */

static ssize_t wal_src_read_at(const wal_src *s, uint64_t off, char *p, size_t n)
{
        if (s->fd < 0) {
                if (off >= s->memlen)
                        return 0;
                size_t k = s->memlen - (size_t)off;
                if (k > n)
                        k = n;
                memcpy(p, s->mem + off, k);
                return (ssize_t)k;
        }
        for (;;) {
                ssize_t r = pread(s->fd, p, n, (off_t)off);
                if (r < 0 && errno == EINTR)
                        continue;
                return r;
        }
}

/* Reads exactly n bytes at off. Returns 0; -1 on a read error (errno); -2 at end of file
 * first (the file shrank under us; errno ENODATA). */
static int wal_src_read_full(const wal_src *s, uint64_t off, char *p, size_t n)
{
        size_t got = 0;
        while (got < n) {
                ssize_t r = wal_src_read_at(s, off + got, p + got, n - got);
                if (r < 0)
                        return -1;
                if (r == 0) {
                        errno = ENODATA;
                        return -2;
                }
                got += (size_t)r;
        }
        return 0;
}

static void wal_index_free(wal_index *ix)
{
        free(ix->v);
        ix->v = NULL;
        free(ix->hash);
        ix->hash = NULL;
        ix->n = ix->cap = ix->hcap = 0;
}

static size_t wal_hash_id(const char *id)
{
        uint64_t h = UINT64_C(0xcbf29ce484222325);   /* FNV-1a */
        for (; *id; id++)
                h = (h ^ (uint8_t)*id) * UINT64_C(0x100000001b3);
        return (size_t)h;
}

/* The hash position holding id, or the free position where it would go. */
static size_t wal_hash_pos(const wal_index *ix, const char *id)
{
        size_t mask = ix->hcap - 1;
        size_t i = wal_hash_id(id) & mask;
        while (ix->hash[i] && strcmp(ix->v[ix->hash[i] - 1].id, id) != 0)
                i = (i + 1) & mask;
        return i;
}

static int wal_hash_grow(wal_index *ix)
{
        size_t hcap = ix->hcap ? ix->hcap * 2 : 64;
        uint32_t *h = calloc(hcap, sizeof(*h));
        if (!h)
                return -1;
        free(ix->hash);
        ix->hash = h;
        ix->hcap = hcap;
        for (size_t k = 0; k < ix->n; k++)
                ix->hash[wal_hash_pos(ix, ix->v[k].id)] = (uint32_t)(k + 1);
        return 0;
}

static wal_slot *wal_index_find(wal_index *ix, const char *id)
{
        if (ix->hcap == 0)
                return NULL;
        uint32_t k = ix->hash[wal_hash_pos(ix, id)];
        return k ? &ix->v[k - 1] : NULL;
}

/* Adds (or, last wins, moves) id → line. Returns 0, 1 when NX_WAL_MAX_ENTRIES refuses a new
 * id, -1 on ENOMEM. */
static int wal_index_put(wal_index *ix, const char *id, uint64_t off, size_t len)
{
        wal_slot *s = wal_index_find(ix, id);
        if (s) {
                s->off = off;
                s->len = len;
                return 0;
        }
        if (ix->n >= NX_WAL_MAX_ENTRIES)
                return 1;
        if (strlen(id) > NX_WAL_ID_MAX)
                return 1;   /* cannot happen: ids are checked before */
        if (ix->n == ix->cap) {
                size_t cap = ix->cap ? ix->cap * 2 : 16;
                wal_slot *v = realloc(ix->v, cap * sizeof(*v));
                if (!v)
                        return -1;
                ix->v = v;
                ix->cap = cap;
        }
        if (2 * (ix->n + 1) > ix->hcap && wal_hash_grow(ix) < 0)
                return -1;
        s = &ix->v[ix->n];
        (void)str_copy(s->id, sizeof(s->id), id);
        s->off = off;
        s->len = len;
        ix->hash[wal_hash_pos(ix, id)] = (uint32_t)(ix->n + 1);
        ix->n++;
        return 0;
}

/* One complete line at off (newline excluded) → index, or counted as corrupt. */
static int wal_scan_line(wal_index *ix, const char *line, size_t len, uint64_t off)
{
        if (len == 0)
                return 0;   /* blank separator, e.g. the one that closes a torn tail */
        ix->lines++;
        err_t err = ERR_INIT;
        nx_wal_entry e;
        if (nx_wal_parse_line(line, len, &e, &err) < 0) {
                ix->corrupt++;
                return 0;
        }
        int r = wal_index_put(ix, e.directive_id, off, len);
        nx_wal_entry_clear(&e);
        if (r < 0)
                return -1;
        if (r > 0)
                ix->corrupt++;   /* over capacity: a file no nx_wal could have written */
        return 0;
}

/* Splits the source into lines with bounded memory: a line longer than NX_WAL_MAX_LINE is
 * skipped up to its newline; a last line without newline is a torn write. Only I/O errors and
 * ENOMEM fail; nothing in the contents does. */
static int wal_scan(const wal_src *src, wal_index *ix, err_t *err)
{
        _cleanup_free_ char *chunk = malloc(WAL_READ_CHUNK);
        if (!chunk)
                return err_errno(err, ENOMEM, "read");
        _cleanup_buf_ buf line = BUF_INIT(NX_WAL_MAX_LINE);
        bool overlong = false;
        uint64_t pos = 0, start = 0;
        for (;;) {
                ssize_t r = wal_src_read_at(src, pos, chunk, WAL_READ_CHUNK);
                if (r < 0)
                        return err_errno(err, errno, "read at offset %llu",
                                         (unsigned long long)pos);
                if (r == 0)
                        break;
                const char *p = chunk, *end = chunk + r;
                while (p < end) {
                        const char *nl = memchr(p, '\n', (size_t)(end - p));
                        const char *stop = nl ? nl : end;
                        if (!overlong && buf_append(&line, p, (size_t)(stop - p)) < 0) {
                                if (errno != EMSGSIZE)
                                        return err_errno(err, errno, "read");
                                overlong = true;
                                buf_free(&line);
                        }
                        pos += (uint64_t)(stop - p);
                        p = stop;
                        if (!nl)
                                break;
                        if (overlong) {
                                ix->lines++;
                                ix->corrupt++;
                        } else if (wal_scan_line(ix, line.data ? line.data : "", line.len,
                                                 start) < 0) {
                                return err_errno(err, ENOMEM, "index");
                        }
                        overlong = false;
                        buf_reset(&line);
                        p++;
                        pos++;
                        start = pos;
                }
        }
        if (overlong || line.len > 0) {
                ix->lines++;
                ix->corrupt++;
                ix->tail_dirty = true;
        }
        ix->size = pos;
        return 0;
}

/* Reads the line of slot s and re-verifies it. Returns 0; -1 on an I/O error (the line may
 * be fine, nothing may be concluded); -2 when the bytes no longer verify (corrupted or changed
 * on disk: such a line could never be sent). *raw (may be NULL) receives the line's bytes
 * with a '\n' in the extra last byte. */
static int wal_read_line(const wal_src *src, const wal_slot *s, char **raw, nx_wal_entry *out,
                         err_t *err)
{
        _cleanup_free_ char *p = malloc(s->len + 1);
        if (!p)
                return err_errno(err, ENOMEM, "read entry for %s", s->id);
        int rr = wal_src_read_full(src, s->off, p, s->len);
        if (rr < 0) {
                err_errno(err, errno, "read entry for %s at offset %llu", s->id,
                          (unsigned long long)s->off);
                return rr;   /* -2: its bytes are gone, it can never verify again */
        }
        p[s->len] = '\n';
        if (nx_wal_parse_line(p, s->len, out, err) < 0) {
                err_wrap(err, "entry for %s no longer verifies", s->id);
                return -2;
        }
        if (strcmp(out->directive_id, s->id) != 0) {
                err_set(err, "entry for %s changed on disk: it now names %s", s->id,
                        out->directive_id);
                nx_wal_entry_clear(out);
                return -2;
        }
        if (raw)
                *raw = steal_ptr(&p);
        return 0;
}

/* Every entry of the index, re-verified; unverifiable ones are skipped and counted. */
static int wal_materialise(const wal_src *src, const wal_index *ix, nx_wal_entry **entries,
                           size_t *n, size_t *skipped)
{
        *entries = NULL;
        *n = 0;
        if (ix->n == 0)
                return 0;
        nx_wal_entry *v = calloc(ix->n, sizeof(*v));
        if (!v)
                return -1;
        size_t k = 0;
        for (size_t i = 0; i < ix->n; i++) {
                err_t e = ERR_INIT;
                if (wal_read_line(src, &ix->v[i], NULL, &v[k], &e) < 0) {
                        (*skipped)++;
                        continue;
                }
                k++;
        }
        if (k == 0) {
                free(v);
                return 0;
        }
        *entries = v;
        *n = k;
        return 0;
}

int nx_wal_load_buffer(const char *data, size_t len, nx_wal_entry **entries, size_t *n,
                       size_t *skipped_corrupt, err_t *err)
{
        wal_src src = { .fd = -1, .mem = data ? data : "", .memlen = data ? len : 0 };
        wal_index ix = { 0 };
        *entries = NULL;
        *n = 0;
        if (wal_scan(&src, &ix, err) < 0) {
                wal_index_free(&ix);
                return err_wrap(err, "wal: load");
        }
        size_t skipped = ix.corrupt;
        int r = wal_materialise(&src, &ix, entries, n, &skipped);
        wal_index_free(&ix);
        if (r < 0)
                return err_errno(err, ENOMEM, "wal: load");
        if (skipped_corrupt)
                *skipped_corrupt = skipped;
        return 0;
}

/* ── the file ──────────────────────────────────────────────────────────────────────────── */

/* fsync of the directory holding path p (the parent of a directory we just created). */
static void wal_fsync_parent(const char *p)
{
        char parent[PATH_MAX];
        const char *slash = strrchr(p, '/');
        if (!slash)
                return;
        if (str_copyn(parent, sizeof(parent), p, slash == p ? 1 : (size_t)(slash - p)) < 0)
                return;
        int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
                (void)fsync(fd);
                close(fd);
        }
}

/* mkdir -p, 0700 for what it creates (spec §2.5: the WAL creates work_dir and .nexus). */
static int wal_mkdir_p(const char *dir, err_t *err)
{
        char p[PATH_MAX];
        if (str_copy(p, sizeof(p), dir) < 0)
                return err_errno(err, ENAMETOOLONG, "wal: directory \"%.64s…\"", dir);
        size_t n = strlen(p);
        while (n > 1 && p[n - 1] == '/')
                p[--n] = '\0';
        for (size_t i = 1; i <= n; i++) {
                if (p[i] != '/' && p[i] != '\0')
                        continue;
                char saved = p[i];
                p[i] = '\0';
                if (mkdir(p, 0700) == 0) {
                        /* exactly 0700 whatever the umask */
                        if (chmod(p, 0700) < 0)
                                return err_errno(err, errno, "wal: chmod %s", p);
                        wal_fsync_parent(p);
                } else if (errno != EEXIST) {
                        return err_errno(err, errno, "wal: create WAL directory %s", p);
                }
                p[i] = saved;
        }
        return 0;
}

static int wal_open_file(nx_wal *w, err_t *err)
{
        w->fd = openat(w->dirfd, NX_WAL_FILE,
                       O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (w->fd < 0) {
                if (errno == ELOOP)
                        return err_setc(err, ERR_FORBIDDEN, "wal: %s is a symbolic link; "
                                        "refusing to follow it", w->path);
                return err_errno(err, errno, "wal: open %s", w->path);
        }
        struct stat st;
        if (fstat(w->fd, &st) < 0)
                return err_errno(err, errno, "wal: stat %s", w->path);
        if (!S_ISREG(st.st_mode))
                return err_setc(err, ERR_FORBIDDEN, "wal: %s is not a regular file", w->path);
        if ((st.st_mode & 07777) != 0600 && fchmod(w->fd, 0600) < 0)
                return err_errno(err, errno, "wal: chmod 0600 %s", w->path);
        return 0;
}

int nx_wal_open(const char *dir, nx_wal **out, err_t *err)
{
        *out = NULL;
        if (!dir || !*dir)
                return err_set(err, "wal: directory is empty");
        nx_wal *w = calloc(1, sizeof(*w));
        if (!w)
                return err_errno(err, ENOMEM, "wal: open");
        w->dirfd = -1;
        w->fd = -1;
        int r = pthread_mutex_init(&w->lock, NULL);
        if (r != 0) {
                free(w);
                return err_errno(err, r, "wal: mutex");
        }
        if (str_copy(w->dir, sizeof(w->dir), dir) < 0 ||
            str_printf(w->path, sizeof(w->path), "%s/%s", dir, NX_WAL_FILE) < 0) {
                err_errno(err, ENAMETOOLONG, "wal: directory \"%.64s…\"", dir);
                goto fail;
        }
        if (wal_mkdir_p(dir, err) < 0)
                goto fail;
        w->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (w->dirfd < 0) {
                err_errno(err, errno, "wal: open directory %s", dir);
                goto fail;
        }
        /* One owner per WAL: two daemons replaying one file would both send every report. */
        if (flock(w->dirfd, LOCK_EX | LOCK_NB) < 0) {
                if (errno == EWOULDBLOCK)
                        err_setc(err, ERR_CONFLICT, "wal: %s is in use by another nexusd "
                                 "(or another open WAL handle)", dir);
                else
                        err_errno(err, errno, "wal: lock %s", dir);
                goto fail;
        }
        if (wal_open_file(w, err) < 0)
                goto fail;
        /* The file may be new: make its directory entry durable before trusting appends. */
        if (fsync(w->dirfd) < 0) {
                err_errno(err, errno, "wal: fsync directory %s", dir);
                goto fail;
        }
        (void)unlinkat(w->dirfd, WAL_TMP_FILE, 0);   /* left by a crash mid-rewrite */
        wal_src src = { .fd = w->fd };
        if (wal_scan(&src, &w->idx, err) < 0) {
                err_wrap(err, "wal: load %s", w->path);
                goto fail;
        }
        *out = w;
        return 0;
fail:
        nx_wal_close(w);
        return -1;
}

static int wal_write_all(int fd, const char *p, size_t n)
{
        while (n > 0) {
                ssize_t r = write(fd, p, n);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -1;
                if (r == 0) {
                        errno = EIO;
                        return -1;
                }
                p += r;
                n -= (size_t)r;
        }
        return 0;
}

/* Writes the index minus skip_id (NULL: all) to a temp file, fsyncs it, renames it over the
 * WAL and fsyncs the directory. On failure before the rename nothing changed. */
static int wal_rewrite(nx_wal *w, const char *skip_id, err_t *err)
{
        wal_src src = { .fd = w->fd };
        wal_index nix = { 0 };
        size_t dropped = 0;
        (void)unlinkat(w->dirfd, WAL_TMP_FILE, 0);
        int tfd = openat(w->dirfd, WAL_TMP_FILE,
                         O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (tfd < 0)
                return err_errno(err, errno, "wal: create temp file in %s", w->dir);
        if (fchmod(tfd, 0600) < 0) {
                err_errno(err, errno, "wal: chmod temp file in %s", w->dir);
                goto fail;
        }
        for (size_t i = 0; i < w->idx.n; i++) {
                const wal_slot *s = &w->idx.v[i];
                if (skip_id && strcmp(s->id, skip_id) == 0)
                        continue;
                nx_wal_entry e;
                _cleanup_free_ char *p = NULL;
                int r = wal_read_line(&src, s, &p, &e, err);
                if (r == -2) {
                        /* Unverifiable now: pending() already skips it and it could never
                         * be sent; drop it with the other corrupt lines, counted. */
                        dropped++;
                        continue;
                }
                if (r < 0) {
                        /* An I/O error proves nothing about the entry: keep the old file. */
                        err_wrap(err, "wal: rewrite %s", w->path);
                        goto fail;
                }
                nx_wal_entry_clear(&e);
                if (wal_write_all(tfd, p, s->len + 1) < 0) {
                        err_errno(err, errno, "wal: write temp file in %s", w->dir);
                        goto fail;
                }
                if (wal_index_put(&nix, s->id, nix.size, s->len) != 0) {
                        err_errno(err, ENOMEM, "wal: rewrite %s", w->path);
                        goto fail;
                }
                nix.size += s->len + 1;
                nix.lines++;
        }
        if (fsync(tfd) < 0) {
                err_errno(err, errno, "wal: fsync temp file in %s", w->dir);
                goto fail;
        }
        if (renameat(w->dirfd, WAL_TMP_FILE, w->dirfd, NX_WAL_FILE) < 0) {
                err_errno(err, errno, "wal: rename temp file over %s", w->path);
                goto fail;
        }
        /* From here the new file is the WAL, whatever happens next. */
        close(w->fd);
        w->fd = tfd;
        nix.corrupt = w->idx.corrupt + dropped;   /* what was skipped stays reported */
        wal_index_free(&w->idx);
        w->idx = nix;
        if (fsync(w->dirfd) < 0)
                return err_errno(err, errno, "wal: fsync directory %s after replacing %s "
                                 "(the change may not survive a crash)", w->dir, w->path);
        return 0;
fail:
        close(tfd);
        (void)unlinkat(w->dirfd, WAL_TMP_FILE, 0);
        wal_index_free(&nix);
        return -1;
}

/* The offsets in the index come from the size we track; if the file is not the size we
 * think (something else wrote to it), learn its real size and whether it ends a line. */
static int wal_sync_size(nx_wal *w, err_t *err)
{
        struct stat st;
        if (fstat(w->fd, &st) < 0)
                return err_errno(err, errno, "wal: stat %s", w->path);
        if ((uint64_t)st.st_size == w->idx.size)
                return 0;
        w->idx.size = (uint64_t)st.st_size;
        w->idx.tail_dirty = false;
        if (st.st_size > 0) {
                char last = '\n';
                wal_src src = { .fd = w->fd };
                if (wal_src_read_full(&src, w->idx.size - 1, &last, 1) < 0)
                        return err_errno(err, errno, "wal: read %s", w->path);
                w->idx.tail_dirty = last != '\n';
        }
        return 0;
}

/* The line as written must read back as the same entry: refuse to depend on one that will
 * not (e.g. a string built with jansson's *_nocheck setters that is not UTF-8). */
static int wal_verify_line(const char *line, size_t len, const char *id, const json_t *report,
                           err_t *err)
{
        nx_wal_entry e;
        if (nx_wal_parse_line(line, len, &e, err) < 0)
                return err_wrap(err, "wal: report for %s does not read back", id);
        bool same = strcmp(e.directive_id, id) == 0 && json_equal(e.report, report);
        nx_wal_entry_clear(&e);
        if (!same)
                return err_setc(err, ERR_INTERNAL, "wal: report for %s reads back different",
                                id);
        return 0;
}

int nx_wal_append(nx_wal *w, const char *directive_id, const json_t *report, err_t *err)
{
        _cleanup_free_ char *line = NULL;
        size_t len = 0;
        if (nx_wal_format_line(directive_id, clock_now_ms(), report, &line, &len, err) < 0)
                return -1;
        if (wal_verify_line(line, len, directive_id, report, err) < 0)
                return -1;

        pthread_mutex_lock(&w->lock);
        int ret = -1;
        if (w->fd < 0) {
                err_setc(err, ERR_INTERNAL, "wal: %s is not open", w->path);
                goto out;
        }
        if (!wal_index_find(&w->idx, directive_id) && w->idx.n >= NX_WAL_MAX_ENTRIES) {
                err_setc(err, ERR_TOO_LARGE, "wal: %d reports are already pending (the "
                         "limit); cannot add %s", NX_WAL_MAX_ENTRIES, directive_id);
                goto out;
        }
        if (w->idx.lines >= WAL_COMPACT_LINES && wal_rewrite(w, NULL, err) < 0) {
                err_wrap(err, "wal: compact before appending %s", directive_id);
                goto out;
        }
        if (wal_sync_size(w, err) < 0)
                goto out;
        uint64_t start = w->idx.size;
        if (w->idx.tail_dirty) {
                /* A torn line from a crash (or a failed append) is at the end: close it so
                 * this entry starts on a line of its own. */
                if (wal_write_all(w->fd, "\n", 1) < 0) {
                        err_errno(err, errno, "wal: append to %s", w->path);
                        goto out;
                }
                w->idx.size++;
                w->idx.tail_dirty = false;
                start = w->idx.size;
        }
        /* One write() of the whole line (O_APPEND): readers never see two entries mixed. */
        ssize_t r;
        do {
                r = write(w->fd, line, len);
        } while (r < 0 && errno == EINTR);
        if (r != (ssize_t)len) {
                int e = r < 0 ? errno : ENOSPC;
                /* Take a partial line back; if that fails, the next append closes it. */
                if (r > 0 && ftruncate(w->fd, (off_t)start) < 0) {
                        w->idx.size = start + (uint64_t)r;
                        w->idx.tail_dirty = true;
                }
                err_errno(err, e, "wal: append %s to %s", directive_id, w->path);
                goto out;
        }
        if (fdatasync(w->fd) < 0) {
                int e = errno;
                /* Not durable: take the line back so the index and the file agree. */
                if (ftruncate(w->fd, (off_t)start) < 0) {
                        w->idx.size = start + len;
                        w->idx.lines++;
                }
                err_errno(err, e, "wal: fdatasync %s after appending %s", w->path,
                          directive_id);
                goto out;
        }
        if (wal_index_put(&w->idx, directive_id, start, len - 1) < 0) {
                /* durable but not indexed: the next load finds it */
                w->idx.size = start + len;
                w->idx.lines++;
                err_errno(err, ENOMEM, "wal: index %s", directive_id);
                goto out;
        }
        w->idx.size = start + len;
        w->idx.lines++;
        ret = 0;
out:
        pthread_mutex_unlock(&w->lock);
        return ret;
}

int nx_wal_remove(nx_wal *w, const char *directive_id, err_t *err)
{
        if (nx_wal_check_id(directive_id, err) < 0)
                return err_wrap(err, "wal: remove");
        pthread_mutex_lock(&w->lock);
        int ret = 0;
        if (wal_index_find(&w->idx, directive_id))
                ret = wal_rewrite(w, directive_id, err);
        pthread_mutex_unlock(&w->lock);
        return ret;
}

int nx_wal_pending(nx_wal *w, nx_wal_entry **entries, size_t *n, size_t *skipped_corrupt,
                   err_t *err)
{
        *entries = NULL;
        *n = 0;
        pthread_mutex_lock(&w->lock);
        wal_src src = { .fd = w->fd };
        size_t skipped = w->idx.corrupt;
        int r = wal_materialise(&src, &w->idx, entries, n, &skipped);
        pthread_mutex_unlock(&w->lock);
        if (r < 0)
                return err_errno(err, ENOMEM, "wal: read pending entries of %s", w->path);
        if (skipped_corrupt)
                *skipped_corrupt = skipped;
        return 0;
}

size_t nx_wal_depth(nx_wal *w)
{
        pthread_mutex_lock(&w->lock);
        size_t n = w->idx.n;
        pthread_mutex_unlock(&w->lock);
        return n;
}

void nx_wal_close(nx_wal *w)
{
        if (!w)
                return;
        if (w->fd >= 0)
                close(w->fd);
        w->fd = -1;
        if (w->dirfd >= 0)
                close(w->dirfd);   /* releases the flock */
        w->dirfd = -1;
        wal_index_free(&w->idx);
        pthread_mutex_destroy(&w->lock);
        free(w);
}
