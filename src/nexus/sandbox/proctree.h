/* sandbox/proctree.h — spawning a directive's process tree and killing all of it
 * (spec nexus §5.8, §6.0; DESIGN D13).
 *
 * Not uv_spawn: between fork and exec the child must join the directive's cgroups (so nothing
 * it forks starts outside them), start its own session, drop ids and set rlimits. The child
 * runs only async-signal-safe calls on data prepared before fork; a failure of any step is sent
 * to the parent over a CLOEXEC pipe (step + errno), so nx_spawn() returns
 * "chdir /x: No such file or directory" instead of a child that exits 127, and the failed
 * child is already reaped.
 *
 * The parent gets the pid, a pidfd (for the loop to poll; -1 where pidfd_open is missing)
 * and the read ends of fresh stdout/stderr pipes (O_CLOEXEC, O_NONBLOCK). stdin is /dev/null.
 * Every other descriptor is closed in the child except those named in extra_fds. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "core/error.h"
#include "sandbox/cgroup.h"

/* Hard caps on what one spawn may pass. */
#define NX_SPAWN_MAX_EXTRA_FDS 16
#define NX_SPAWN_MAX_RLIMITS 16
#define NX_SPAWN_MAX_JOINS 8

/* A descriptor handed to the child: parent_fd becomes child_fd (>= 3) in the child. */
typedef struct nx_spawn_fd {
        int parent_fd;
        int child_fd;
} nx_spawn_fd;

typedef struct nx_spawn_rlimit {
        int resource;        /* RLIMIT_* */
        struct rlimit limit;
} nx_spawn_rlimit;

typedef struct nx_spawn_req {
        char *const *argv;   /* argv[0]: a path with '/' or a name looked up in envp's PATH */
        char *const *envp;   /* the complete environment; NULL = empty */
        const char *cwd;     /* absolute */
        const nx_cgroup_join *cgroup_joins;   /* written "0" before exec (nx_cgroup_joins) */
        size_t n_cgroup_joins;
        bool new_session;    /* setsid(); otherwise only a new process group */
        const nx_spawn_fd *extra_fds;
        size_t n_extra_fds;
        bool drop_ids;       /* setgroups({}), setresgid(gid), setresuid(uid) */
        uid_t uid;
        gid_t gid;
        const nx_spawn_rlimit *rlimits;
        size_t n_rlimits;
} nx_spawn_req;

typedef struct nx_child {
        pid_t pid;           /* 0 when nothing runs */
        pid_t pgid;          /* == pid: the child leads its own group (§6.0) */
        int pidfd;           /* -1 when unavailable */
        int stdout_fd;       /* parent read ends, -1 once closed */
        int stderr_fd;
        bool reaped;
        int wait_status;     /* valid when reaped */
} nx_child;

#define NX_CHILD_INIT { 0, 0, -1, -1, -1, false, 0 }

/* Starts the child. On success *out owns the pid and the three fds. On failure nothing is
 * left running and no fd is leaked. */
int nx_spawn(const nx_spawn_req *req, nx_child *out, err_t *err);

/* Reaps the child if it has exited (block=false) or waits for it (block=true).
 * Returns 1 when reaped (child->wait_status set), 0 when still running, -1 with err. */
int nx_child_reap(nx_child *child, bool block, err_t *err);

/* Sends sig to the whole tree: with a cgroup and SIGKILL, nx_cgroup_kill (reaches
 * descendants that left the process group with setsid); with a cgroup and another signal,
 * every listed pid; always also the process group and (until reaped) the child itself,
 * through the pidfd when there is one. Returns -1 only when nothing could be signalled. */
int nx_child_kill_tree(nx_child *child, nx_cgroup *cg, int sig, err_t *err);

/* Closes the fds still open (pidfd, pipes). Does not kill or reap. */
void nx_child_close(nx_child *child);

/* §5.8: normal exit → its code; killed by signal N → 128+N; anything else → 1. */
int nx_wait_status_to_exit_code(int wait_status);

/* §5.8 status after reaping: "timed_out" with exit code 124 when the deadline passed (even
 * if the process exited 0), else "canceled" when cancelled, else "succeeded" for exit code 0
 * and "failed" otherwise. Returns the static status string and sets *exit_code. */
const char *nx_run_outcome(int wait_status, bool deadline_passed, bool canceled, int *exit_code);
