/* policy/device.c — DevicePolicyV1 capability patterns and their merge (spec mothership §6.4).
 *
 * Patterns: "*" (everything), "<prefix>.*" (anything starting with "<prefix>.", not the prefix
 * itself), or an exact capability. Non-string list entries are ignored. */
#include "policy/policy.h"

#include <string.h>

static bool is_wild(const char *p, size_t *prefix_len)
{
        size_t n = strlen(p);
        if (n >= 2 && p[n - 2] == '.' && p[n - 1] == '*') {
                *prefix_len = n - 1;    /* keeps the '.' */
                return true;
        }
        return false;
}

static bool pattern_matches(const char *pat, const char *cap)
{
        size_t pl;
        if (strcmp(pat, "*") == 0)
                return true;
        if (is_wild(pat, &pl))
                return strncmp(cap, pat, pl) == 0;
        return strcmp(pat, cap) == 0;
}

bool mspol_dev_matches(const char *cap, const json_t *patterns)
{
        if (!cap || !json_is_array(patterns))
                return false;
        size_t i;
        json_t *e;
        json_array_foreach(patterns, i, e)
                if (json_is_string(e) && pattern_matches(json_string_value(e), cap))
                        return true;
        return false;
}

bool mspol_dev_covers(const char *wide, const char *narrow)
{
        size_t pl;
        if (!wide || !narrow)
                return false;
        if (strcmp(wide, "*") == 0)
                return true;
        if (!is_wild(wide, &pl))
                return false;
        return strncmp(narrow, wide, pl) == 0;   /* narrow == wide included */
}

static bool contains(const json_t *arr, const char *s)
{
        size_t i;
        json_t *e;
        if (json_is_array(arr))
                json_array_foreach(arr, i, e)
                        if (json_is_string(e) && strcmp(json_string_value(e), s) == 0)
                                return true;
        return false;
}

static bool covered_by_any(const char *s, const json_t *arr)
{
        size_t i;
        json_t *e;
        if (json_is_array(arr))
                json_array_foreach(arr, i, e)
                        if (json_is_string(e) && mspol_dev_covers(json_string_value(e), s))
                                return true;
        return false;
}

static int add_unique(json_t *out, const char *s)
{
        if (contains(out, s))
                return 0;
        return json_array_append_new(out, json_string(s));
}

json_t *mspol_dev_intersect(const json_t *a, const json_t *b)
{
        json_t *out = json_array();
        size_t i;
        json_t *e;
        if (!out)
                return NULL;
        int rc = 0;
        /* 1. patterns in both lists, in A's order */
        if (json_is_array(a))
                json_array_foreach(a, i, e)
                        if (rc == 0 && json_is_string(e) && contains(b, json_string_value(e)))
                                rc = add_unique(out, json_string_value(e));
        /* 2. the rest of A that some pattern of B covers; 3. the rest of B covered by A */
        if (json_is_array(a))
                json_array_foreach(a, i, e)
                        if (rc == 0 && json_is_string(e) && !contains(b, json_string_value(e)) &&
                            covered_by_any(json_string_value(e), b))
                                rc = add_unique(out, json_string_value(e));
        if (json_is_array(b))
                json_array_foreach(b, i, e)
                        if (rc == 0 && json_is_string(e) && !contains(a, json_string_value(e)) &&
                            covered_by_any(json_string_value(e), a))
                                rc = add_unique(out, json_string_value(e));
        if (rc < 0) {
                json_decref(out);
                return NULL;
        }
        return out;
}

static bool non_empty_array(const json_t *v)
{
        return json_is_array(v) && json_array_size(v) > 0;
}

/* Appends the string entries of src to the ordered union dst. */
static int union_into(json_t *dst, const json_t *src)
{
        size_t i;
        json_t *e;
        if (json_is_array(src))
                json_array_foreach(src, i, e)
                        if (json_is_string(e) && add_unique(dst, json_string_value(e)) < 0)
                                return -1;
        return 0;
}

json_t *mspol_dev_merge(const ms_policy *ps, size_t n)
{
        json_t *allowed = NULL;         /* "undefined" until a policy sets a non-empty list */
        json_t *denied = json_array();
        json_t *appr = json_array();
        if (!denied || !appr)
                goto oom;
        for (size_t i = 0; ps && i < n; i++) {
                const json_t *dev = json_is_object(ps[i].device) ? ps[i].device : NULL;
                const json_t *al = json_object_get(dev, "allowed");
                if (non_empty_array(al)) {
                        json_t *next = allowed ? mspol_dev_intersect(allowed, al)
                                               : mspol_dev_intersect(al, al);
                        if (!next)
                                goto oom;
                        json_decref(allowed);
                        allowed = next;
                }
                if (union_into(denied, json_object_get(dev, "denied")) < 0 ||
                    union_into(appr, json_object_get(dev, "approval_required")) < 0)
                        goto oom;
        }
        if (!allowed && !(allowed = json_array()))      /* undefined → [] (deny all) */
                goto oom;
        return json_pack("{s:o, s:o, s:o}", "allowed", allowed, "denied", denied,
                         "approval_required", appr);
oom:
        json_decref(allowed);
        json_decref(denied);
        json_decref(appr);
        return NULL;
}

const char *mspol_dev_evaluate(const char *cap, const json_t *merged, const char **reason)
{
        const char *dummy;
        if (!reason)
                reason = &dummy;
        const json_t *m = json_is_object(merged) ? merged : NULL;
        if (cap && mspol_dev_matches(cap, json_object_get(m, "denied"))) {
                *reason = "explicitly denied";
                return "denied";
        }
        if (!cap || !mspol_dev_matches(cap, json_object_get(m, "allowed"))) {
                *reason = "not in allowed list";
                return "denied";
        }
        if (mspol_dev_matches(cap, json_object_get(m, "approval_required"))) {
                *reason = "approval required";
                return "needs_approval";
        }
        *reason = NULL;
        return "allowed";
}
