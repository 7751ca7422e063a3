/* policy/merge.c — the hierarchical merge (spec mothership §6.5), the ApprovalEvaluator (§6.7)
 * and the PolicyResolver (§6.6).
 *
 * Policies arrive sorted by priority ascending; ties keep creation order (the store sorts that
 * way; the reference leaves ties unspecified). "Global → account → user → facility" is only a
 * matter of priorities. */
#include "policy/policy.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/clock.h"
#include "core/str.h"

/* §6.7 tiers; unknown values rank as "skip" (they cannot pass §6.1 validation anyway). */
static int tier_rank(const json_t *v)
{
        const char *s = json_string_value(v);
        if (s && strcmp(s, "needs_approval") == 0)
                return 1;
        if (s && strcmp(s, "forbidden") == 0)
                return 2;
        return 0;
}

/* jansson's iterator API takes a non-const object although it does not modify it */
static json_t *unconst(const json_t *j)
{
        return (json_t *)(uintptr_t)j;
}

static const char *const tier_names[] = { "skip", "needs_approval", "forbidden" };

/* §6.5 net: lower rank replaces; equal rank and the current an allowlist → the exact-string
 * intersection of the two lists, in the current order. */
static int merge_net(json_t **cur, const json_t *in)
{
        int rc = mspol_net_rank(*cur), ri = mspol_net_rank(in);
        if (ri < rc) {
                json_t *n = json_deep_copy(in);
                if (!n)
                        return -1;
                json_decref(*cur);
                *cur = n;
                return 0;
        }
        if (ri != rc || rc != 1)
                return 0;
        const json_t *a = json_object_get(*cur, "allow"), *b = json_object_get(in, "allow");
        json_t *out = json_array();
        size_t i, j;
        json_t *x, *y;
        if (!out)
                return -1;
        if (json_is_array(a) && json_is_array(b)) {
                json_array_foreach(a, i, x) {
                        if (!json_is_string(x))
                                continue;
                        bool in_b = false, dup = false;
                        json_array_foreach(b, j, y)
                                if (json_equal(x, y))
                                        in_b = true;
                        json_array_foreach(out, j, y)
                                if (json_equal(x, y))
                                        dup = true;
                        if (in_b && !dup && json_array_append(out, x) < 0) {
                                json_decref(out);
                                return -1;
                        }
                }
        }
        return json_object_set_new(*cur, "allow", out);
}

/* §6.5 approval: per key the most restrictive value; a new key is taken as is. */
static int merge_approval(json_t *cur, const json_t *in)
{
        const char *k;
        json_t *v;
        json_object_foreach(unconst(in), k, v) {
                json_t *have = json_object_get(cur, k);
                if (!have || tier_rank(v) > tier_rank(have))
                        if (json_object_set_new(cur, k, json_deep_copy(v)) < 0)
                                return -1;
        }
        return 0;
}

static bool non_empty_array(const json_t *v)
{
        return json_is_array(v) && json_array_size(v) > 0;
}

static int union_into(json_t *obj, const char *key, const json_t *src)
{
        json_t *dst = json_object_get(obj, key);
        if (!json_is_array(dst)) {
                dst = json_array();
                if (!dst || json_object_set_new(obj, key, dst) < 0)
                        return -1;
        }
        size_t i, j;
        json_t *e, *x;
        json_array_foreach(src, i, e) {
                bool dup = false;
                json_array_foreach(dst, j, x)
                        if (json_equal(x, e))
                                dup = true;
                if (!dup && json_array_append(dst, e) < 0)
                        return -1;
        }
        return 0;
}

/* §6.5 device: allowed intersected (§6.4) when the incoming one is non-empty, taken when no
 * earlier policy set one; denied and approval_required unioned when non-empty.
 * Stricter than REF: "the current has none" means no earlier policy set a non-empty allowed
 * list (*allowed_set), as in §6.4 merge. An intersection that came out empty stays empty:
 * REF would let the next policy's list replace it, widening past a higher-priority one. */
static int merge_device(json_t *cur, const json_t *in, bool *allowed_set)
{
        const json_t *al = json_object_get(in, "allowed");
        if (non_empty_array(al)) {
                json_t *have = json_object_get(cur, "allowed");
                json_t *n = *allowed_set ? mspol_dev_intersect(have, al) : json_deep_copy(al);
                if (!n || json_object_set_new(cur, "allowed", n) < 0)
                        return -1;
                *allowed_set = true;
        }
        static const char *const keys[] = { "denied", "approval_required" };
        for (size_t k = 0; k < 2; k++) {
                const json_t *v = json_object_get(in, keys[k]);
                if (non_empty_array(v) && union_into(cur, keys[k], v) < 0)
                        return -1;
        }
        return 0;
}

json_t *mspol_merge(const ms_policy *ps, size_t n)
{
        json_t *fs = NULL, *net = NULL, *secrets = NULL, *spr = NULL, *device = NULL;
        json_t *approval = json_object(), *ids = json_array();
        bool dev_allowed_set = false;
        if (!approval || !ids)
                goto oom;
        for (size_t i = 0; ps && i < n; i++) {
                const ms_policy *p = &ps[i];
                if (json_array_append_new(ids, json_string(p->id)) < 0)
                        goto oom;
                if (!mspol_blank(p->fs)) {
                        json_t *x = fs ? mspol_fs_intersect(fs, p->fs) : json_deep_copy(p->fs);
                        if (!x)
                                goto oom;
                        json_decref(fs);
                        fs = x;
                }
                if (!mspol_blank(p->net)) {
                        if (!net) {
                                if (!(net = json_deep_copy(p->net)))
                                        goto oom;
                        } else if (merge_net(&net, p->net) < 0) {
                                goto oom;
                        }
                }
                if (!mspol_blank(p->secrets)) {
                        json_decref(secrets);
                        if (!(secrets = json_deep_copy(p->secrets)))
                                goto oom;
                }
                if (!mspol_blank(p->sandbox_profile_rules)) {
                        json_decref(spr);
                        if (!(spr = json_deep_copy(p->sandbox_profile_rules)))
                                goto oom;
                }
                if (!mspol_blank(p->approval) && merge_approval(approval, p->approval) < 0)
                        goto oom;
                if (!mspol_blank(p->device)) {
                        if (!device) {
                                if (!(device = json_deep_copy(p->device)))
                                        goto oom;
                                dev_allowed_set = non_empty_array(json_object_get(device,
                                                                                  "allowed"));
                        } else if (merge_device(device, p->device, &dev_allowed_set) < 0) {
                                goto oom;
                        }
                }
        }
        json_t *out = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
                                "fs", fs ? fs : json_object(), "net", net ? net : json_object(),
                                "secrets", secrets ? secrets : json_object(),
                                "sandbox_profile_rules", spr ? spr : json_object(),
                                "approval", approval, "device", device ? device : json_object(),
                                "policy_ids", ids);
        return out;
oom:
        json_decref(fs);
        json_decref(net);
        json_decref(secrets);
        json_decref(spr);
        json_decref(device);
        json_decref(approval);
        json_decref(ids);
        return NULL;
}

/* §6.7 fs_outside_workspace: some write entry normalises outside /workspace. An entry that is
 * not a usable path string counts as outside (fail closed; the reference never sees one). */
static bool writes_outside_workspace(const json_t *fs)
{
        const json_t *w = json_is_object(fs) ? json_object_get(fs, "write") : NULL;
        size_t i;
        json_t *e;
        if (!json_is_array(w))
                return false;
        json_array_foreach(w, i, e) {
                const char *s = json_string_value(e);
                if (!s || strlen(s) != json_string_length(e))
                        return true;
                size_t sz = strlen(s) + 2;
                _cleanup_free_ char *norm = malloc(sz);
                if (!norm || mspol_fs_normalize(s, norm, sz) < 0)
                        return true;
                if (strcmp(norm, "/workspace") != 0 && !str_has_prefix(norm, "/workspace/"))
                        return true;
        }
        return false;
}

const char *mspol_approval_evaluate(const json_t *effective, const json_t *rules,
                                    const char *profile, json_t *reasons_out)
{
        if (!json_is_object(rules))
                return "skip";
        const json_t *eff = json_is_object(effective) ? effective : NULL;
        const json_t *net = json_object_get(eff, "net");
        const char *mode = json_is_object(net) ? json_string_value(json_object_get(net, "mode"))
                                               : NULL;
        struct {
                const char *key, *reason;
                bool fires;
        } checks[] = {
                { "host_profile", "host profile requires", profile && strcmp(profile, "host") == 0 },
                { "net_unrestricted", "unrestricted network requires",
                  mode && strcmp(mode, "unrestricted") == 0 },
                { "fs_outside_workspace", "filesystem access outside workspace requires",
                  writes_outside_workspace(json_object_get(eff, "fs")) },
        };
        int verdict = 0;
        for (size_t i = 0; i < sizeof(checks) / sizeof(*checks); i++) {
                const json_t *v = json_object_get(rules, checks[i].key);
                if (!v || !checks[i].fires)
                        continue;
                int r = tier_rank(v);
                if (r > verdict)
                        verdict = r;
                if (r == 0 || !json_is_array(reasons_out))
                        continue;
                char *msg = str_dup_printf("%s: %s", checks[i].reason, tier_names[r]);
                if (msg)
                        json_array_append_new(reasons_out, json_string(msg));
                free(msg);
        }
        return tier_names[verdict];
}

void mspol_resolution_clear(mspol_resolution *r)
{
        if (!r)
                return;
        json_decref(r->effective);
        json_decref(r->snapshot);
        json_decref(r->reasons);
        json_decref(r->policies_applied);
        memset(r, 0, sizeof(*r));
}

/* Issue #4 item 2: the requested FsCapabilityV1 writable_roots / read_only_subpaths (absolute
 * paths; fscap_validate already refused "..", "." and empty components) survive only where the
 * effective fs allows them: a writable root must be covered by the effective write list, a
 * read-only subpath by the read or the write list. Anything else is dropped — narrowing,
 * never widening; the daemon then enforces what is left (bind mounts for bwrap, Landlock rules
 * where a driver has no mount namespace). Empty lists are not emitted. */
static int narrow_roots(json_t *fs, const json_t *req_fs)
{
        static const struct { const char *key, *lists[2]; } dims[] = {
                { "writable_roots", { "write", NULL } },
                { "read_only_subpaths", { "read", "write" } },
        };
        for (size_t d = 0; d < sizeof(dims) / sizeof(dims[0]); d++) {
                const json_t *want = json_object_get(req_fs, dims[d].key);
                if (!json_is_array(want) || json_array_size(want) == 0)
                        continue;
                json_t *kept = json_array();
                if (!kept)
                        return -1;
                size_t i;
                const json_t *v;
                json_array_foreach(want, i, v) {
                        const char *path = json_string_value(v);
                        char norm[4096];
                        if (!path || path[0] != '/' ||
                            mspol_fs_normalize(path, norm, sizeof(norm)) < 0)
                                continue;
                        bool ok = false;
                        for (size_t l = 0; l < 2 && dims[d].lists[l] && !ok; l++)
                                ok = mspol_fs_covered(norm, json_object_get(fs, dims[d].lists[l]));
                        if (ok && json_array_append_new(kept, json_string(norm)) < 0) {
                                json_decref(kept);
                                return -1;
                        }
                }
                if (json_array_size(kept) == 0)
                        json_decref(kept);
                else if (json_object_set_new(fs, dims[d].key, kept) < 0)
                        return -1;
        }
        return 0;
}

int mspol_resolve(const ms_policy *ps, size_t n, const char *profile,
                  const json_t *requested_capabilities, int64_t now_ms,
                  mspol_resolution *out, err_t *err)
{
        memset(out, 0, sizeof(*out));
        const json_t *req = json_is_object(requested_capabilities) ? requested_capabilities
                                                                   : NULL;
        /* only fs and net of the request are interpreted (§6.6) */
        const json_t *req_fs = json_object_get(req, "fs");
        const json_t *req_net = json_object_get(req, "net");
        json_t *R = mspol_merge(ps, n);                              /* step 1 */
        json_t *base = NULL, *fs = NULL, *net = NULL;
        if (!R)
                goto oom;
        const json_t *rfs = json_object_get(R, "fs");
        base = mspol_blank(rfs) ? mspol_fs_defaults(profile)         /* steps 2-3 */
                                : json_deep_copy(rfs);
        if (!base)
                goto oom;
        fs = mspol_blank(req_fs) ? json_incref(base)                 /* step 4 */
                                 : mspol_fs_intersect(base, req_fs);
        net = mspol_net_effective(json_object_get(R, "net"), req_net); /* step 5, narrowed */
        if (!fs || !net)
                goto oom;
        if (json_is_object(req_fs)) {
                json_t *copy = json_deep_copy(fs);     /* fs may be base itself */
                json_decref(fs);
                fs = copy;
                if (!fs || narrow_roots(fs, req_fs) < 0)
                        goto oom;
        }
        /* step 6; deep copies throughout, so no two results share a mutable sub-object */
        out->effective = json_pack("{s:o, s:o, s:o, s:o}", "fs", json_deep_copy(fs),
                                   "net", json_deep_copy(net),
                                   "secrets", json_deep_copy(json_object_get(R, "secrets")),
                                   "sandbox_profile_rules",
                                   json_deep_copy(json_object_get(R, "sandbox_profile_rules")));
        out->reasons = json_array();
        if (!out->effective || !out->reasons)
                goto oom;
        out->verdict = mspol_approval_evaluate(out->effective,                 /* step 7 */
                                               json_object_get(R, "approval"), profile,
                                               out->reasons);
        char ts[RFC3339_S_LEN];
        if (rfc3339_format_s(now_ms / 1000, ts, sizeof(ts)) < 0) {
                err_setc(err, ERR_INVALID, "resolve: time %lld ms out of range",
                         (long long)now_ms);
                goto fail;
        }
        out->snapshot = json_pack("{s:o, s:s, s:o, s:o, s:o, s:o, s:o}",     /* step 8 */
                                  "policies_applied",
                                  json_deep_copy(json_object_get(R, "policy_ids")),
                                  "resolved_at", ts, "fs", json_deep_copy(json_object_get(R, "fs")),
                                  "net", json_deep_copy(json_object_get(R, "net")),
                                  "secrets", json_deep_copy(json_object_get(R, "secrets")),
                                  "sandbox_profile_rules",
                                  json_deep_copy(json_object_get(R, "sandbox_profile_rules")),
                                  "approval", json_deep_copy(json_object_get(R, "approval")));
        out->policies_applied = json_deep_copy(json_object_get(R, "policy_ids"));
        if (!out->snapshot || !out->policies_applied)
                goto oom;
        json_decref(R);
        json_decref(base);
        json_decref(fs);
        json_decref(net);
        return 0;
oom:
        err_setc(err, ERR_INTERNAL, "resolve: out of memory");
fail:
        json_decref(R);
        json_decref(base);
        json_decref(fs);
        json_decref(net);
        mspol_resolution_clear(out);
        return -1;
}
