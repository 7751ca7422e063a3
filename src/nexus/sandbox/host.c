/* sandbox/host.c — the `host` driver (spec nexus §6.1, DESIGN D12). See host.h. */
#include "sandbox/host.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "agent/envinject.h"
#include "core/cleanup.h"
#include "core/log.h"

static bool limits_requested(const nx_cgroup_limits *l)
{
        return l->memory_mb > 0 || l->cpu_millicores > 0 || l->pids_max > 0;
}

int nx_host_prepare(const nx_host_run *in, nx_host_prepared *out, err_t *err)
{
        struct stat st;

        memset(out, 0, sizeof(*out));
        /* D12: the unisolated profile only where the operator asked for it (§2.5 ADVISED) */
        if (!in->host_profile_enabled)
                return err_setc(err, ERR_FORBIDDEN, "profile host is not enabled on this "
                                "territory (supported_sandbox_profiles)");
        if (!in->command || !in->command[0])
                return err_set(err, "empty command");
        if (nx_resolve_host_cwd(in->facility_path, in->cwd, out->cwd, sizeof(out->cwd), err) < 0)
                return -1;
        if (out->cwd[0] != '/')
                return err_set(err, "facility path \"%s\" must be absolute", in->facility_path);
        if (stat(out->cwd, &st) < 0)
                return err_errno(err, errno, "cwd %s", out->cwd);
        if (!S_ISDIR(st.st_mode))
                return err_set(err, "cwd %s is not a directory", out->cwd);
        if (nx_cgroup_validate_id(in->directive_id, err) < 0)
                return -1;

        if (nx_cgroup_create(in->cgroup_sys, in->directive_id, &in->limits, &out->cgroup,
                             err) < 0) {
                /* §6.1: limits that cannot be applied fail the run; without limits the cgroup
                 * only improves tree-kill, and the process group remains the fallback */
                if (limits_requested(&in->limits))
                        return err_wrap(err, "cgroup limits required but failed to apply");
                log_warn("cgroup unavailable, tree-kill by process group only",
                         LOG_STR("directive_id", in->directive_id), LOG_ERR(err));
                err_clear(err);
                out->cgroup = NULL;
        }

        /* owned copies: execve wants char *const[] and the inputs are const */
        out->argv[0] = strdup(in->shell && in->shell[0] ? in->shell : NX_HOST_DEFAULT_SHELL);
        out->argv[1] = strdup("-c");
        out->argv[2] = strdup(in->command);
        out->argv[3] = NULL;
        if (!out->argv[0] || !out->argv[1] || !out->argv[2]) {
                err_t ignored = ERR_INIT;
                (void)nx_host_prepared_free(out, &ignored);
                return err_errno(err, ENOMEM, "host argv");
        }
        out->req.argv = out->argv;
        out->req.envp = in->envp;
        out->req.cwd = out->cwd;
        out->req.cgroup_joins = nx_cgroup_joins(out->cgroup, &out->req.n_cgroup_joins);
        out->req.new_session = true;
        return 0;
}

int nx_host_prepared_free(nx_host_prepared *p, err_t *err)
{
        int rc = nx_cgroup_destroy(&p->cgroup, err);

        for (size_t i = 0; i < 3; i++)
                FREE_AND_NULL(p->argv[i]);
        p->req.argv = NULL;
        p->req.cgroup_joins = NULL;
        p->req.n_cgroup_joins = 0;
        return rc;
}

json_t *nx_host_health(void)
{
        return json_pack("{s:b, s:{s:s}}", "healthy", 1, "details", "driver", "host");
}
