/* agent/tape.c — see tape.h. */
#include "agent/tape.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/str.h"

struct nx_tape {
        pthread_mutex_t lock;
        int fd;                 /* -1 after a failed reopen; retried on the next event */
        int64_t size;           /* bytes in the current file, as far as we wrote them */
        int64_t max_bytes;
        char path[PATH_MAX];
        char rotated[PATH_MAX]; /* <path>.1 */
};

/* mkdir -p with mode for every component it creates; existing directories are left as
 * they are. */
static int tape_mkdir_p(const char *dir, mode_t mode)
{
        char p[PATH_MAX];
        if (str_copy(p, sizeof(p), dir) < 0)
                return -1;
        size_t n = strlen(p);
        for (size_t i = 1; i <= n; i++) {
                if (p[i] != '/' && p[i] != '\0')
                        continue;
                char saved = p[i];
                p[i] = '\0';
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return -1;
                p[i] = saved;
        }
        struct stat st;
        if (stat(dir, &st) < 0)
                return -1;
        if (!S_ISDIR(st.st_mode)) {
                errno = ENOTDIR;
                return -1;
        }
        return 0;
}

static int tape_open_fd(const char *path, bool truncate)
{
        int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0);
        return open(path, flags, 0644);
}

/* <path> → <path>.1, then a fresh <path>. Errors are swallowed (§5.17): if the fresh file
 * cannot be opened, fd stays -1 and the next event tries again. */
static void tape_rotate(nx_tape *t)
{
        if (t->fd >= 0) {
                close(t->fd);
                t->fd = -1;
        }
        (void)unlink(t->rotated);
        if (rename(t->path, t->rotated) == 0) {
                t->fd = tape_open_fd(t->path, true);
                t->size = 0;
                return;
        }
        /* Not rotated: keep appending rather than truncate lines nobody has saved. */
        t->fd = tape_open_fd(t->path, false);
        struct stat st;
        t->size = t->fd >= 0 && fstat(t->fd, &st) == 0 ? st.st_size : 0;
}

int nx_tape_open(const char *path, int64_t max_bytes, nx_tape **out, err_t *err)
{
        *out = NULL;
        if (!path || !*path)
                return err_set(err, "open debug tape: debug_tape.path is required");
        if (max_bytes < 1)
                return err_set(err, "open debug tape: max_bytes %lld must be >= 1",
                               (long long)max_bytes);
        _cleanup_free_ nx_tape *t = calloc(1, sizeof(*t));
        if (!t)
                return err_errno(err, ENOMEM, "open debug tape");
        t->fd = -1;
        t->max_bytes = max_bytes;
        if (str_copy(t->path, sizeof(t->path), path) < 0 ||
            str_printf(t->rotated, sizeof(t->rotated), "%s.1", path) < 0)
                return err_errno(err, ENAMETOOLONG, "open debug tape: path \"%.64s…\"", path);

        const char *slash = strrchr(path, '/');
        if (slash && slash != path) {
                char dir[PATH_MAX];
                if (str_copyn(dir, sizeof(dir), path, (size_t)(slash - path)) < 0)
                        return err_errno(err, ENAMETOOLONG, "create debug tape dir");
                if (strcmp(dir, ".") != 0 && tape_mkdir_p(dir, 0755) < 0)
                        return err_errno(err, errno, "create debug tape dir: %s", dir);
        }

        t->fd = tape_open_fd(path, false);
        if (t->fd < 0)
                return err_errno(err, errno, "open debug tape: %s", path);
        struct stat st;
        if (fstat(t->fd, &st) < 0) {
                int e = errno;
                close(t->fd);
                return err_errno(err, e, "open debug tape: %s", path);
        }
        if (!S_ISREG(st.st_mode)) {
                close(t->fd);
                return err_setc(err, ERR_INVALID, "open debug tape: %s is not a regular file",
                                path);
        }
        t->size = st.st_size;
        if (t->size > t->max_bytes) {
                tape_rotate(t);
                if (t->fd < 0)
                        return err_errno(err, errno, "open debug tape: %s", path);
        }
        int r = pthread_mutex_init(&t->lock, NULL);
        if (r != 0) {
                close(t->fd);
                return err_errno(err, r, "open debug tape: mutex");
        }
        *out = steal_ptr(&t);
        return 0;
}

static bool tape_present(const char *s)
{
        return s && *s;
}

static int tape_set_str(json_t *obj, const char *key, const char *val)
{
        if (!tape_present(val))
                return 0;
        return json_object_set_new(obj, key, json_string(val));
}

/* Builds the line, newline included; NULL when there is nothing valid to write. */
static char *tape_format(const char *directive_id, const char *facility_id,
                         const char *profile, const char *driver, const char *event,
                         const json_t *detail, size_t *len)
{
        char ts[RFC3339_MS_LEN];
        if (rfc3339_now_ms(ts, sizeof(ts)) < 0)
                return NULL;
        _cleanup_json_ json_t *obj = json_object();
        if (!obj)
                return NULL;
        /* json_string() refuses invalid UTF-8: such a field is dropped rather than the line
         * (the detail object was built by jansson and is valid already). */
        if (json_object_set_new(obj, "ts", json_string(ts)) < 0)
                return NULL;
        (void)tape_set_str(obj, "directive_id", directive_id);
        (void)tape_set_str(obj, "facility_id", facility_id);
        (void)tape_set_str(obj, "profile", profile);
        (void)tape_set_str(obj, "driver", driver);
        if (tape_set_str(obj, "event", event) < 0)
                return NULL;
        if (detail && !json_is_null(detail) &&
            !(json_is_object(detail) && json_object_size(detail) == 0)) {
                /* jansson's setters take a non-const value; set() only takes a reference. */
                union { const json_t *c; json_t *m; } u = { .c = detail };
                if (json_object_set(obj, "detail", u.m) < 0)
                        return NULL;
        }
        _cleanup_free_ char *s = json_dump_compact(obj);
        if (!s)
                return NULL;
        size_t n = strlen(s);
        char *line = malloc(n + 2);
        if (!line)
                return NULL;
        memcpy(line, s, n);
        line[n] = '\n';
        line[n + 1] = '\0';
        *len = n + 1;
        return line;
}

void nx_tape_event(nx_tape *tape, const char *directive_id, const char *facility_id,
                   const char *profile, const char *driver, const char *event,
                   const json_t *detail)
{
        if (!tape || !tape_present(event))
                return;
        size_t len = 0;
        _cleanup_free_ char *line = tape_format(directive_id, facility_id, profile, driver,
                                                event, detail, &len);
        if (!line)
                return;
        pthread_mutex_lock(&tape->lock);
        /* §5.17 rotates when size + line > max; an empty file is not rotated (that would
         * only throw away the previous .1 and leave an empty one in its place). */
        if (tape->size > 0 && (int64_t)len > tape->max_bytes - tape->size)
                tape_rotate(tape);
        if (tape->fd < 0) {
                tape->fd = tape_open_fd(tape->path, false);
                struct stat st;
                if (tape->fd >= 0 && fstat(tape->fd, &st) == 0)
                        tape->size = st.st_size;
        }
        if (tape->fd >= 0) {
                size_t off = 0;
                while (off < len) {
                        ssize_t w = write(tape->fd, line + off, len - off);
                        if (w < 0 && errno == EINTR)
                                continue;
                        if (w <= 0)
                                break;   /* swallowed (§5.17) */
                        off += (size_t)w;
                }
                tape->size += (int64_t)off;
        }
        pthread_mutex_unlock(&tape->lock);
}

void nx_tape_close(nx_tape *tape)
{
        if (!tape)
                return;
        if (tape->fd >= 0)
                close(tape->fd);
        tape->fd = -1;
        pthread_mutex_destroy(&tape->lock);
        free(tape);
}
