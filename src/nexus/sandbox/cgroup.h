/* sandbox/cgroup.h — one fresh cgroup per directive: limits, tree-kill, OOM detection
 * (spec nexus §6.6, DESIGN D13).
 *
 * The layout is detected at run time from /proc/self/mountinfo, never hard-coded:
 *   v2      cgroup2 only, controllers enabled in the root's cgroup.subtree_control;
 *   hybrid  cgroup2 (usually /sys/fs/cgroup/unified, no controllers) + v1 controller mounts;
 *   v1      v1 controller mounts only;
 *   none    no cgroup filesystem at all.
 * For each directive "<base>/<directive_id>" (base "nexusd") is created in the v2 hierarchy
 * (for cgroup.kill and "populated") and in every v1 hierarchy a requested limit needs, plus the
 * v1 freezer when v2 cgroup.kill is absent (tree-kill). A requested limit that cannot be
 * enforced is an error (fail closed, §6.6); tracking-only hierarchies are best effort.
 *
 * The child joins every directory BEFORE exec: nx_cgroup_joins() gives open cgroup.procs fds
 * which sandbox/proctree.c writes "0" into between fork and exec, so nothing the command forks
 * can start outside the cgroup (§6.6 ADVISED).
 *
 * Not thread-safe per object; no global state. create, populated, oom_killed and a v2
 * cgroup.kill are a few small sysfs reads/writes (fine on the loop); the freezer kill path,
 * wait_empty, destroy and capabilities poll with short sleeps (bounded, a few seconds at worst)
 * and belong on the thread pool. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/error.h"

/* Longest path of a cgroup directory or control file we build. */
#define NX_CGROUP_PATH_MAX 1024
/* §6.6 bounds. */
#define NX_CGROUP_CPU_MAX_MILLICORES 1024000
#define NX_CGROUP_MEMORY_MAX_MB 1048576
/* pids.max bounds: the default applied whenever a pids controller exists, and the largest
 * value accepted (PID_MAX_LIMIT on 64-bit). */
#define NX_CGROUP_DEFAULT_PIDS 1024
#define NX_CGROUP_PIDS_MAX 4194304
/* Longest directive id accepted as a directory name. */
#define NX_CGROUP_ID_MAX 200

typedef enum nx_cgroup_layout {
        NX_CGROUP_LAYOUT_NONE = 0,
        NX_CGROUP_LAYOUT_V1,
        NX_CGROUP_LAYOUT_HYBRID,
        NX_CGROUP_LAYOUT_V2,
} nx_cgroup_layout;

/* The controllers this module uses. The freezer is a v1 controller; v2 has cgroup.freeze
 * in every non-root cgroup instead. */
typedef enum nx_cgroup_ctrl {
        NX_CGROUP_MEMORY = 0,
        NX_CGROUP_PIDS,
        NX_CGROUP_CPU,
        NX_CGROUP_FREEZER,
        NX_CGROUP_CTRL_COUNT,
} nx_cgroup_ctrl;

/* Where to look. All NULL = the real system. Tests point mountinfo at a fake file and
 * root_prefix at a temporary tree (every mount point is prefixed with it). */
typedef struct nx_cgroup_sys {
        const char *mountinfo;   /* NULL: /proc/self/mountinfo */
        const char *root_prefix; /* NULL or "": none */
        const char *base;        /* NULL: "nexusd"; relative, one or more plain components */
} nx_cgroup_sys;

/* What mountinfo says (paths include root_prefix; "" = absent). */
typedef struct nx_cgroup_mounts {
        nx_cgroup_layout layout;
        char v2[NX_CGROUP_PATH_MAX];
        bool v2_ctrl[NX_CGROUP_CTRL_COUNT];  /* enabled in the v2 root's cgroup.subtree_control */
        /* the cgroup2 mount has the favordynmods option (kernel >= 6.0): migrating a process
         * into a cgroup (our join before exec) no longer waits for an RCU grace period in
         * cgroup_threadgroup_rwsem, ~5-10 ms per directive start without it (doctor ⚠) */
        bool v2_favordynmods;
        char v1[NX_CGROUP_CTRL_COUNT][NX_CGROUP_PATH_MAX];
} nx_cgroup_mounts;

/* Limits of one directive. 0 (or negative, §6.6) = not requested. pids_max 0 means "apply
 * NX_CGROUP_DEFAULT_PIDS if a pids controller exists" (best effort); > 0 is a requirement. */
typedef struct nx_cgroup_limits {
        int64_t memory_mb;
        int64_t cpu_millicores;
        int64_t pids_max;
} nx_cgroup_limits;

/* What `doctor` prints: measured by creating and removing a probe cgroup. */
typedef struct nx_cgroup_caps {
        nx_cgroup_layout layout;
        bool memory;        /* memory limit enforceable */
        bool memory_swap;   /* swap cannot evade it (memsw / memory.swap.max set) */
        bool cpu;
        bool pids;
        bool kill;          /* v2 cgroup.kill */
        bool freezer;       /* v1 freezer or v2 cgroup.freeze */
        bool tree_kill;     /* kill || freezer || any hierarchy to enumerate pids from */
        bool oom_detect;    /* oom_kill counter readable */
        char summary[512];  /* one line, e.g. "cgroup hybrid: memory=v1(+swap) cpu=v1 ..." */
} nx_cgroup_caps;

/* One directory the child must join: write "0" to procs_fd (O_WRONLY|O_CLOEXEC). */
typedef struct nx_cgroup_join {
        int procs_fd;
        const char *path;   /* the cgroup directory, for error messages */
} nx_cgroup_join;

typedef struct nx_cgroup nx_cgroup;

/* "none", "v1", "hybrid", "v2". */
const char *nx_cgroup_layout_name(nx_cgroup_layout layout);
/* "memory", "pids", "cpu", "freezer". */
const char *nx_cgroup_ctrl_name(nx_cgroup_ctrl ctrl);

/* Parses mountinfo and reads the v2 root's cgroup.subtree_control. A missing cgroup
 * filesystem is not an error (layout none); an unreadable mountinfo is. */
int nx_cgroup_detect(const nx_cgroup_sys *sys, nx_cgroup_mounts *out, err_t *err);

/* Checks a directive id against ^[A-Za-z0-9][A-Za-z0-9_.-]*$ (§6.6). */
int nx_cgroup_validate_id(const char *directive_id, err_t *err);
/* Checks the §6.6 bounds ("CPU limit 2000000 exceeds maximum 1024000 millicores"). */
int nx_cgroup_validate_limits(const nx_cgroup_limits *lim, err_t *err);
/* cpu.max quota for millicores: cpu*100, minimum 1000 (§6.6). 0 for cpu <= 0. */
int64_t nx_cgroup_cpu_quota(int64_t cpu_millicores);

/* Creates "<base>/<directive_id>" in every hierarchy needed and applies the limits. A stale
 * directory of the same name is killed and removed first. On failure nothing is left behind.
 * Errors name what is missing ("memory limit requested but no memory controller is
 * available") or the file that could not be written. */
int nx_cgroup_create(const nx_cgroup_sys *sys, const char *directive_id,
                     const nx_cgroup_limits *lim, nx_cgroup **out, err_t *err);

/* The directories the child must join before exec (possibly none). Valid until destroy. */
const nx_cgroup_join *nx_cgroup_joins(const nx_cgroup *cg, size_t *n);
/* Directory holding the controller's files (the v2 directory in pure v2), NULL if the
 * cgroup has none. NX_CGROUP_CTRL_COUNT asks for the v2 directory itself. */
const char *nx_cgroup_dir(const nx_cgroup *cg, nx_cgroup_ctrl ctrl);
/* True when tree-kill goes through the cgroup (cgroup.kill, a freezer, or a pid list). */
bool nx_cgroup_can_kill(const nx_cgroup *cg);

/* SIGKILLs every process in the cgroup: v2 cgroup.kill when present, else freeze (v1
 * freezer.state or v2 cgroup.freeze), SIGKILL every pid in cgroup.procs, thaw, repeat until
 * empty (bounded). Returns 0 when the kill was delivered. */
int nx_cgroup_kill(nx_cgroup *cg, err_t *err);
/* Sends sig to every pid currently listed (no freeze); for signals other than SIGKILL. */
int nx_cgroup_signal(nx_cgroup *cg, int sig, err_t *err);
/* Waits (polling, at most max_ms) until no live process is left. 0 when empty, -1 with
 * err when still populated. */
int nx_cgroup_wait_empty(nx_cgroup *cg, unsigned max_ms, err_t *err);
/* v2 cgroup.events "populated", else whether any cgroup.procs lists a pid. */
int nx_cgroup_populated(const nx_cgroup *cg, bool *populated, err_t *err);
/* Whether the kernel OOM-killed a process of this cgroup: v2 memory.events oom_kill, v1
 * memory.oom_control oom_kill (or under_oom on kernels without that counter). False when
 * there is no memory controller. */
int nx_cgroup_oom_killed(const nx_cgroup *cg, bool *killed, err_t *err);

/* Kills what is left, removes every directory (retrying briefly while the kernel still
 * holds exiting tasks), closes fds and frees. *cg becomes NULL. Returns -1 with err if a
 * directory could not be removed (it is still freed). NULL is a no-op. */
int nx_cgroup_destroy(nx_cgroup **cg, err_t *err);

/* Removes the base directories if they are empty (daemon shutdown, tests). Not an error
 * when they do not exist or are still in use. */
void nx_cgroup_remove_base(const nx_cgroup_sys *sys);

/* Measures what this machine can enforce by creating a probe cgroup
 * "<base>/probe-<pid>" with every limit and removing it. Fills caps->summary even on
 * failure; returns -1 only when detection itself fails. */
int nx_cgroup_capabilities(const nx_cgroup_sys *sys, nx_cgroup_caps *caps, err_t *err);
