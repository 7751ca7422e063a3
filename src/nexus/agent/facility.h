/* agent/facility.h — a facility on disk (spec nexus §5.3, §5.4): the id rule, the directory
 * under work_dir, and the lock held for the WHOLE run (the reference locks only the clone).
 *
 * The lock is an flock on <work_dir>/<id>.lock, taken without blocking: the control plane
 * already serialises directives per facility, so a held lock means another process on this
 * host (a second daemon sharing work_dir) is using it, and the directive is refused rather
 * than parked on the loop thread. The lock file is kept (unlinking it would race with a
 * concurrent opener). */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"

#define NX_FACILITY_ID_MAX 128

typedef struct nx_facility {
        int dirfd;                       /* the facility directory, O_PATH-free, O_DIRECTORY */
        int lockfd;
        char path[4096];                 /* absolute path of the facility directory */
} nx_facility;

/* ^[A-Za-z0-9_-]+$ and at most NX_FACILITY_ID_MAX bytes (§5.3). */
bool nx_facility_id_valid(const char *id);
/* Creates <work_dir>/<id> (0755) if needed — refusing a symlink in its place — opens it and
 * takes the lock. Errors name the facility. */
int nx_facility_open(const char *work_dir, const char *id, nx_facility *out, err_t *err);
/* Releases the lock and closes. Safe on a zeroed/closed struct (fds < 0 or 0 ignored when
 * the struct was never opened: callers initialise with NX_FACILITY_INIT). */
void nx_facility_close(nx_facility *f);
/* True when the directory has no entry besides "." and "..". */
int nx_facility_is_empty(const nx_facility *f, bool *empty, err_t *err);

#define NX_FACILITY_INIT { .dirfd = -1, .lockfd = -1, .path = { 0 } }
