/* domain/directive_view.c — see directive_view.h. */
#include "domain/directive_view.h"

#include "domain/api.h"

static int64_t limit_or(const ms_directive *d, const char *key, int64_t def)
{
        json_t *v = json_is_object(d->limits) ? json_object_get(d->limits, key) : NULL;
        int64_t n = api_lenient_int(v, 0, NULL);
        return n > 0 ? n : def;
}

int64_t ms_directive_max_output(const ms_directive *d)
{
        return limit_or(d, "max_output_bytes", MS_DEFAULT_MAX_OUTPUT);
}

int64_t ms_directive_max_diff(const ms_directive *d)
{
        return limit_or(d, "max_diff_bytes", MS_DEFAULT_MAX_DIFF);
}

static json_t *str_or_null(const char *s)
{
        return s ? json_string(s) : json_null();
}

json_t *ms_directive_lease_spec(const ms_directive *d, const ms_facility *f)
{
        json_t *fac = json_pack("{s:s, s:s}", "id", f->id, "mount", "/workspace");
        if (fac && f->repo_url)
                json_object_set_new(fac, "repo_url", json_string(f->repo_url));
        json_t *caps = json_is_object(d->effective_capabilities)
                               ? json_deep_copy(d->effective_capabilities)
                               : json_object();
        json_t *limits = json_is_object(d->limits) ? json_deep_copy(d->limits) : json_object();
        json_t *arts = json_is_object(d->artifacts_manifest) ? json_deep_copy(d->artifacts_manifest)
                                                             : json_object();
        return json_pack("{s:s, s:o, s:s, s:s, s:s, s:s, s:I, s:o, s:o, s:o}",
                         "directive_id", d->id, "facility", fac, "sandbox_profile",
                         d->sandbox_profile, "command", d->command, "shell",
                         d->shell ? d->shell : "/bin/sh", "cwd", d->cwd ? d->cwd : "/workspace",
                         "timeout_seconds", (json_int_t)d->timeout_seconds, "limits", limits,
                         "capabilities", caps, "artifacts", arts);
}

json_t *ms_directive_to_json(const ms_directive *d)
{
        json_t *o = json_pack(
                "{s:s, s:s, s:s, s:o, s:s, s:o, s:o, s:o, s:o, s:o}", "id", d->id, "state",
                ms_directive_state_name(d->state), "command", d->command, "shell",
                str_or_null(d->shell), "sandbox_profile", d->sandbox_profile, "exit_code",
                d->has_exit_code ? json_integer(d->exit_code) : json_null(), "finished_status",
                str_or_null(d->finished_status), "territory_id",
                d->territory_id[0] ? json_string(d->territory_id) : json_null(), "created_at",
                api_ts(d->created_at), "updated_at", api_ts(d->updated_at));
        if (!o)
                return NULL;
        /* additive fields (not in the reference representation) */
        json_object_set_new(o, "facility_id", json_string(d->facility_id));
        json_object_set_new(o, "cwd", str_or_null(d->cwd));
        json_object_set_new(o, "timeout_seconds", json_integer(d->timeout_seconds));
        json_object_set_new(o, "limits", json_is_object(d->limits) ? json_incref(d->limits)
                                                                    : json_object());
        json_object_set_new(o, "requested_capabilities",
                            d->requested_capabilities ? json_incref(d->requested_capabilities)
                                                      : json_object());
        json_object_set_new(o, "effective_capabilities",
                            d->effective_capabilities ? json_incref(d->effective_capabilities)
                                                      : json_object());
        json_object_set_new(o, "policy_snapshot",
                            d->policy_snapshot ? json_incref(d->policy_snapshot) : json_null());
        json_object_set_new(o, "requested_by_user_id", json_string(d->requested_by_user_id));
        json_object_set_new(o, "approved_by_user_id", d->approved_by_user_id[0]
                                                              ? json_string(d->approved_by_user_id)
                                                              : json_null());
        /* issue 4: who decided an approval and why (§3.3.5 plus the rejecter and reason) */
        json_object_set_new(o, "rejected_by_user_id", d->rejected_by_user_id[0]
                                                              ? json_string(d->rejected_by_user_id)
                                                              : json_null());
        json_object_set_new(o, "decision_reason", str_or_null(d->decision_reason));
        json_object_set_new(o, "decided_at", api_ts(d->decided_at));
        json_object_set_new(o, "started_at", api_ts(d->started_at));
        json_object_set_new(o, "stdout_truncated", json_boolean(d->stdout_truncated));
        json_object_set_new(o, "stderr_truncated", json_boolean(d->stderr_truncated));
        json_object_set_new(o, "diff_truncated", json_boolean(d->diff_truncated));
        json_object_set_new(o, "stdout_bytes", json_integer(d->stdout_bytes));
        json_object_set_new(o, "stderr_bytes", json_integer(d->stderr_bytes));
        json_object_set_new(o, "cancel_requested", json_boolean(d->cancel_requested_at != 0));
        json_object_set_new(o, "cancel_requested_at", api_ts(d->cancel_requested_at));
        json_object_set_new(o, "lease_expires_at", api_ts(d->lease_expires_at));
        json_object_set_new(o, "last_heartbeat_at", api_ts(d->last_heartbeat_at));
        json_object_set_new(o, "finished_at", api_ts(d->finished_at));
        json_object_set_new(o, "nexus_version", str_or_null(d->nexus_version));
        json_object_set_new(o, "sandbox_version", str_or_null(d->sandbox_version));
        json_object_set_new(o, "snapshot_before", str_or_null(d->snapshot_before));
        json_object_set_new(o, "snapshot_after", str_or_null(d->snapshot_after));
        json_object_set_new(o, "artifacts_manifest",
                            d->artifacts_manifest ? json_incref(d->artifacts_manifest)
                                                  : json_object());
        return o;
}
