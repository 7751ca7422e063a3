/* sandbox/host.h — the `host` sandbox driver minus the event loop (spec nexus §6.1, §6.0,
 * DESIGN D12).
 *
 * The command runs as `<shell or /bin/sh> -c <command>` directly on the host as the daemon
 * user: no isolation, no network policy, no egress proxy. Because of that the profile is
 * refused unless the operator enabled it (supported_sandbox_profiles, D12). What it still gets:
 * its own session/process group, a fresh per-directive cgroup joined before exec (limits fail
 * closed, tree-kill reaches daemonised descendants), the caller-built environment (§5.6) and
 * the §6.1 working directory.
 *
 * Usage: nx_host_prepare() → nx_spawn(&prep.req, ...) → loop reads pipes, polls the pidfd →
 * nx_child_kill_tree(&child, prep.cgroup, SIGKILL) on deadline/cancel → nx_child_reap() →
 * nx_run_outcome() → nx_host_prepared_free() (kills what is left and removes the cgroup). */
#pragma once
#include <jansson.h>
#include <limits.h>
#include <stdbool.h>

#include "core/error.h"
#include "sandbox/cgroup.h"
#include "sandbox/proctree.h"

#define NX_HOST_DEFAULT_SHELL "/bin/sh"

typedef struct nx_host_run {
        const char *directive_id;
        const char *command;         /* non-empty */
        const char *shell;           /* NULL or "" → /bin/sh */
        const char *facility_path;   /* absolute host path of the facility */
        const char *cwd;             /* as requested by the directive (§6.1 table) */
        char *const *envp;           /* complete environment, built by agent/envinject */
        nx_cgroup_limits limits;
        bool host_profile_enabled;   /* config supported_sandbox_profiles contains "host" */
        const nx_cgroup_sys *cgroup_sys;   /* NULL: the real system */
} nx_host_run;

/* Everything one run needs; req points into this struct (do not copy it). */
typedef struct nx_host_prepared {
        nx_spawn_req req;
        nx_cgroup *cgroup;           /* owned; NULL when cgroups are absent */
        char cwd[PATH_MAX];
        char *argv[4];               /* shell, "-c", command, NULL (owned copies) */
} nx_host_prepared;

/* Checks the request, resolves the cwd (it must exist and be a directory), creates the
 * cgroup with the limits and fills out. Errors: "profile host is not enabled on this
 * territory (supported_sandbox_profiles)", "empty command", §6.1 cwd errors, and
 * "cgroup limits required but failed to apply: …" (fail closed, §6.1). On failure nothing is
 * left behind. in->envp and in->cgroup_sys must outlive out. */
int nx_host_prepare(const nx_host_run *in, nx_host_prepared *out, err_t *err);

/* Kills whatever is still in the cgroup, removes it and frees the argv. Idempotent. Returns -1 with err when a
 * cgroup directory could not be removed. */
int nx_host_prepared_free(nx_host_prepared *p, err_t *err);

/* Driver health (§6.0): {"healthy": true, "details": {"driver": "host"}}. New reference, NULL
 * on ENOMEM. */
json_t *nx_host_health(void);
