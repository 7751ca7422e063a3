/* agent/facility.c — see facility.h. */
#include "agent/facility.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/str.h"

bool nx_facility_id_valid(const char *id)
{
        size_t n = 0;
        for (; id[n]; n++) {
                char c = id[n];
                bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                          (c >= '0' && c <= '9') || c == '-' || c == '_';
                if (!ok)
                        return false;
        }
        return n > 0 && n <= NX_FACILITY_ID_MAX;
}

int nx_facility_open(const char *work_dir, const char *id, nx_facility *out, err_t *err)
{
        *out = (nx_facility)NX_FACILITY_INIT;
        if (!nx_facility_id_valid(id))
                return err_set(err, "facility id \"%.64s\" must match [A-Za-z0-9_-]{1,128}", id);
        _cleanup_close_ int root = open(work_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (root < 0)
                return err_errno(err, errno, "open work_dir %s", work_dir);
        if (mkdirat(root, id, 0755) < 0 && errno != EEXIST)
                return err_errno(err, errno, "create facility %s", id);
        /* O_NOFOLLOW: the facility must be a real directory, never a planted symlink */
        _cleanup_close_ int dfd = openat(root, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
                return err_errno(err, errno, "open facility %s", id);
        char lockname[NX_FACILITY_ID_MAX + 8];
        str_printf(lockname, sizeof(lockname), "%s.lock", id);
        _cleanup_close_ int lfd = openat(root, lockname,
                                         O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (lfd < 0)
                return err_errno(err, errno, "open facility lock %s", lockname);
        if (flock(lfd, LOCK_EX | LOCK_NB) < 0) {
                if (errno == EWOULDBLOCK)
                        return err_setc(err, ERR_CONFLICT,
                                        "facility %s is locked by another process on this host",
                                        id);
                return err_errno(err, errno, "lock facility %s", id);
        }
        if (str_printf(out->path, sizeof(out->path), "%s/%s", work_dir, id) < 0)
                return err_set(err, "facility path too long");
        out->dirfd = steal_fd(&dfd);
        out->lockfd = steal_fd(&lfd);
        return 0;
}

void nx_facility_close(nx_facility *f)
{
        if (f->lockfd >= 0) {
                flock(f->lockfd, LOCK_UN);
                close(f->lockfd);
        }
        if (f->dirfd >= 0)
                close(f->dirfd);
        f->lockfd = f->dirfd = -1;
}

int nx_facility_is_empty(const nx_facility *f, bool *empty, err_t *err)
{
        int fd = openat(f->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return err_errno(err, errno, "open facility %s", f->path);
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return err_errno(err, errno, "read facility %s", f->path);
        }
        *empty = true;
        struct dirent *e;
        while ((e = readdir(d))) {
                if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                        *empty = false;
                        break;
                }
        }
        closedir(d);
        return 0;
}
