/* policy/net.c — NetPolicyV1 ranks and the effective net capability of a directive (spec
 * mothership §6.3, §6.5, §6.6 step 5; issue #4 item 3).
 *
 * Stricter than REF (spec §6.6 step 5 Quirk, Appendix A "a requested allowlist replaces,
 * rather than intersects, a policy allowlist"): a requested allowlist is narrowed by the
 * policy's, entry by entry, with the one lib/proto/allowlist grammar both the control plane
 * and the node daemon use. A request can therefore never name a destination the policy does
 * not allow, and the result never widens the policy. */
#include "policy/policy.h"

#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "proto/allowlist.h"

int mspol_net_rank(const json_t *net)
{
        const char *mode = json_is_object(net) ? json_string_value(json_object_get(net, "mode"))
                                               : NULL;
        if (mode && strcmp(mode, "none") == 0)
                return 0;
        if (mode && strcmp(mode, "allowlist") == 0)
                return 1;
        return 2;       /* "unrestricted", and (as REF) a missing or unknown mode */
}

/* Parses one JSON entry; false for anything the grammar refuses. */
static bool entry_from_json(const json_t *e, allow_entry *out)
{
        err_t err = ERR_INIT;
        if (!json_is_string(e) || strlen(json_string_value(e)) != json_string_length(e))
                return false;
        return allow_entry_parse(json_string_value(e), out, &err) == 0;
}

/* Does policy entry p cover requested entry r? Same canonical entry; or p = "*.d:port" and r's
 * host (exact, or the base of a requested wildcard) is strictly below d — every destination r
 * matches then matches p too. A requested "*.d" is not covered by an exact "d" (nor "d" by
 * "*.d": a wildcard never matches its own base, lib/proto/allowlist.h). */
static bool entry_covers(const allow_entry *p, const allow_entry *r)
{
        if (p->port != r->port)
                return false;
        if (p->wildcard == r->wildcard && strcmp(p->host, r->host) == 0)
                return true;
        if (!p->wildcard)
                return false;
        size_t ph = strlen(p->host), rh = strlen(r->host);
        return rh > ph + 1 && r->host[rh - ph - 1] == '.' &&
               strcmp(r->host + rh - ph, p->host) == 0;
}

/* The valid entries of a JSON array (invalid ones dropped: they cover nothing). */
static int parse_lenient(const json_t *arr, allow_entry **out, size_t *n)
{
        *out = NULL;
        *n = 0;
        size_t cnt = json_is_array(arr) ? json_array_size(arr) : 0;
        if (cnt > ALLOWLIST_MAX_ENTRIES)
                cnt = ALLOWLIST_MAX_ENTRIES;
        if (cnt == 0)
                return 0;
        allow_entry *v = calloc(cnt, sizeof(*v));
        if (!v)
                return -1;
        size_t k = 0;
        for (size_t i = 0; i < cnt; i++)
                if (entry_from_json(json_array_get(arr, i), &v[k]))
                        k++;
        *out = v;
        *n = k;
        return 0;
}

bool mspol_net_entry_covered(const char *entry, const json_t *policy_allow)
{
        allow_entry r;
        err_t err = ERR_INIT;
        if (!entry || allow_entry_parse(entry, &r, &err) < 0)
                return false;
        _cleanup_free_ allow_entry *pe = NULL;
        size_t pn = 0;
        if (parse_lenient(policy_allow, &pe, &pn) < 0)
                return false;
        for (size_t i = 0; i < pn; i++)
                if (entry_covers(&pe[i], &r))
                        return true;
        return false;
}

/* NetCapabilityV1 forbids an allowlist without entries; an empty allowlist allows nothing,
 * which is what mode "none" says. Applied to every result so the daemon never gets one. */
static json_t *no_empty_allowlist(json_t *net)
{
        if (!json_is_object(net) || mspol_net_rank(net) != 1)
                return net;
        json_t *allow = json_object_get(net, "allow");
        if (json_is_array(allow) && json_array_size(allow) > 0)
                return net;
        json_object_del(net, "allow");
        if (json_object_set_new(net, "mode", json_string("none")) < 0) {
                json_decref(net);
                return NULL;
        }
        return net;
}

/* Both allowlists: the requested entries a policy entry covers, canonical and unique. */
static json_t *narrow_allowlists(const json_t *policy_net, const json_t *requested_net)
{
        _cleanup_free_ allow_entry *pe = NULL;
        size_t pn = 0;
        if (parse_lenient(json_object_get(policy_net, "allow"), &pe, &pn) < 0)
                return NULL;
        json_t *out = json_object();
        json_t *kept = json_array();
        if (!out || !kept)
                goto oom;
        const json_t *req_allow = json_object_get(requested_net, "allow");
        size_t i;
        json_t *e;
        if (json_is_array(req_allow)) {
                json_array_foreach(req_allow, i, e) {
                        allow_entry r;
                        if (i >= ALLOWLIST_MAX_ENTRIES || !entry_from_json(e, &r))
                                continue;
                        bool ok = false;
                        for (size_t k = 0; !ok && k < pn; k++)
                                ok = entry_covers(&pe[k], &r);
                        char canon[ALLOW_ENTRY_MAX_LEN + 8];
                        if (!ok || allow_entry_format(&r, canon, sizeof(canon)) < 0)
                                continue;
                        bool dup = false;
                        size_t j;
                        json_t *x;
                        json_array_foreach(kept, j, x)
                                if (strcmp(json_string_value(x), canon) == 0)
                                        dup = true;
                        if (!dup && json_array_append_new(kept, json_string(canon)) < 0)
                                goto oom;
                }
        }
        if (json_object_set_new(out, "mode", json_string("allowlist")) < 0)
                goto oom;
        if (json_object_set_new(out, "allow", kept) < 0) {
                kept = NULL;
                goto oom;
        }
        kept = NULL;
        /* audit label, hint and extensions come from the request (they grant nothing) */
        static const char *const copied[] = { "preset", "ttl_seconds", "x_ext" };
        for (size_t c = 0; c < sizeof(copied) / sizeof(*copied); c++) {
                json_t *v = json_object_get(requested_net, copied[c]);
                if (v && json_object_set_new(out, copied[c], json_deep_copy(v)) < 0)
                        goto oom;
        }
        return no_empty_allowlist(out);
oom:
        json_decref(kept);
        json_decref(out);
        return NULL;
}

json_t *mspol_net_effective(const json_t *policy_net, const json_t *requested_net)
{
        bool pblank = mspol_blank(policy_net), rblank = mspol_blank(requested_net);
        if (pblank)
                return rblank ? json_object() : no_empty_allowlist(json_deep_copy(requested_net));
        if (rblank)
                return no_empty_allowlist(json_deep_copy(policy_net));
        int rp = mspol_net_rank(policy_net), rr = mspol_net_rank(requested_net);
        if (rr > rp)
                return no_empty_allowlist(json_deep_copy(policy_net));
        if (rr == 1 && rp == 1)
                return narrow_allowlists(policy_net, requested_net);
        /* rr < rp: the request is narrower (none under allowlist, anything under
         * unrestricted); rr == rp otherwise: none/none or rank 2/rank 2, as REF */
        return no_empty_allowlist(json_deep_copy(requested_net));
}
