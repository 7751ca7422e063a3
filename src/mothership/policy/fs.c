/* policy/fs.c — FsPolicyV1 path semantics (spec mothership §6.2) and the §11.1 defaults.
 *
 * Paths are compared only after normalize(); ".." can never climb above "/", so a request for
 * "/workspace/../etc/passwd" is judged as "/etc/passwd" (vectors 358-363). Entries that are not
 * strings, contain NUL or are longer than MSPOL_FS_INPUT_MAX bytes cover nothing and are never
 * emitted: the engine fails closed on data the validator would refuse. */
#include "policy/policy.h"

#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/str.h"

/* Longest path the engine looks at: FsCapabilityV1 selectors are at most 1024 characters
 * (4 bytes each in UTF-8) and policy paths at most 4096 bytes (§6.1, stricter than REF). */
#define MSPOL_FS_INPUT_MAX 8192

bool mspol_blank(const json_t *v)
{
        return !json_is_object(v) || json_object_size(v) == 0;
}

int mspol_fs_normalize(const char *in, char *out, size_t outsz)
{
        if (!in || !out || outsz == 0)
                return -1;
        size_t n = strlen(in);
        /* step 1: "workspace:**" → "workspace" */
        if (n >= 3 && memcmp(in + n - 3, ":**", 3) == 0)
                n -= 3;
        /* steps 2-5: rebuild from the segments; out holds "" for the root while building */
        size_t len = 0;
        size_t i = 0;
        while (i < n) {
                while (i < n && in[i] == '/')
                        i++;
                size_t start = i;
                while (i < n && in[i] != '/')
                        i++;
                size_t seg = i - start;
                if (seg == 0 || (seg == 1 && in[start] == '.'))
                        continue;
                if (seg == 2 && in[start] == '.' && in[start + 1] == '.') {
                        /* ".." removes the previous segment, never above the root */
                        while (len > 0 && out[len - 1] != '/')
                                len--;
                        if (len > 0)
                                len--;
                        continue;
                }
                if (len + 1 + seg + 1 > outsz) {
                        out[0] = '\0';
                        return -1;
                }
                out[len++] = '/';
                memcpy(out + len, in + start, seg);
                len += seg;
        }
        if (len == 0) {
                if (outsz < 2) {
                        out[0] = '\0';
                        return -1;
                }
                out[len++] = '/';
        }
        out[len] = '\0';
        return (int)len;
}

/* The normalised form of a JSON string entry (malloc'd), or NULL for anything that is not a
 * usable path (not a string, NUL inside, too long) or on ENOMEM. */
static char *norm_dup(const json_t *e)
{
        if (!json_is_string(e))
                return NULL;
        const char *s = json_string_value(e);
        size_t n = json_string_length(e);
        if (strlen(s) != n || n > MSPOL_FS_INPUT_MAX)
                return NULL;
        char *out = malloc(n + 2);
        if (!out)
                return NULL;
        if (mspol_fs_normalize(s, out, n + 2) < 0) {
                free(out);
                return NULL;
        }
        return out;
}

/* Is normalised path t equal to, or strictly below, normalised prefix p? */
static bool under_or_equal(const char *t, const char *p)
{
        size_t pl = strlen(p);
        return strncmp(t, p, pl) == 0 && (t[pl] == '\0' || t[pl] == '/');
}

bool mspol_fs_covered(const char *target, const json_t *prefixes)
{
        if (!target || !json_is_array(prefixes) || json_array_size(prefixes) == 0)
                return false;
        size_t tn = strlen(target);
        if (tn > MSPOL_FS_INPUT_MAX)
                return false;
        _cleanup_free_ char *t = malloc(tn + 2);
        if (!t || mspol_fs_normalize(target, t, tn + 2) < 0)
                return false;
        size_t i;
        json_t *e;
        json_array_foreach(prefixes, i, e) {
                _cleanup_free_ char *p = norm_dup(e);
                if (!p)
                        continue;
                /* §6.2: a prefix "/" covers everything (unlike in intersect) */
                if (strcmp(p, "/") == 0 || under_or_equal(t, p))
                        return true;
        }
        return false;
}

typedef struct norm_list {
        const json_t **orig;    /* borrowed string entries */
        char **norm;            /* their normalised forms (NULL = unusable entry) */
        bool *emitted;
        size_t n;
} norm_list;

static void norm_list_free(norm_list *l)
{
        for (size_t i = 0; i < l->n; i++)
                free(l->norm[i]);
        FREE_AND_NULL(l->orig);
        FREE_AND_NULL(l->norm);
        FREE_AND_NULL(l->emitted);
        l->n = 0;
}

static int norm_list_init(norm_list *l, const json_t *arr)
{
        memset(l, 0, sizeof(*l));
        size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
        if (n == 0)
                return 0;
        l->orig = calloc(n, sizeof(*l->orig));
        l->norm = calloc(n, sizeof(*l->norm));
        l->emitted = calloc(n, sizeof(*l->emitted));
        if (!l->orig || !l->norm || !l->emitted) {
                norm_list_free(l);
                return -1;
        }
        l->n = n;
        for (size_t i = 0; i < n; i++) {
                l->orig[i] = json_array_get(arr, i);
                l->norm[i] = norm_dup(l->orig[i]);
        }
        return 0;
}

/* Appends list entry i of l unless an equal string is already in out (§6.2 "remove duplicates
 * keeping first occurrences"). The emitted flag keeps the work linear in repeats. */
static int emit(json_t *out, norm_list *l, size_t i)
{
        if (l->emitted[i])
                return 0;
        l->emitted[i] = true;
        const char *s = json_string_value(l->orig[i]);
        size_t k;
        json_t *e;
        json_array_foreach(out, k, e)
                if (strcmp(json_string_value(e), s) == 0)
                        return 0;
        return json_array_append_new(out, json_string(s));
}

/* §6.2 paths(X, Y). Pairs are visited x-major, y-minor; original spellings are emitted. */
static json_t *paths(const json_t *x, const json_t *y)
{
        json_t *out = json_array();
        norm_list lx, ly;
        if (!out)
                return NULL;
        if (norm_list_init(&lx, x) < 0) {
                json_decref(out);
                return NULL;
        }
        if (norm_list_init(&ly, y) < 0) {
                norm_list_free(&lx);
                json_decref(out);
                return NULL;
        }
        int rc = 0;
        for (size_t i = 0; rc == 0 && i < lx.n; i++) {
                if (!lx.norm[i])
                        continue;
                for (size_t j = 0; rc == 0 && j < ly.n; j++) {
                        const char *nx = lx.norm[i], *ny = ly.norm[j];
                        if (!ny)
                                continue;
                        /* equal, or a strict descendant: "/" + "/" never prefixes a
                         * normalised path, so a bare "/" covers nothing but itself here
                         * (§6.2 quirk, kept: narrower) */
                        if (under_or_equal(nx, ny))
                                rc = emit(out, &lx, i);
                        else if (under_or_equal(ny, nx))
                                rc = emit(out, &ly, j);
                }
        }
        norm_list_free(&lx);
        norm_list_free(&ly);
        if (rc < 0) {
                json_decref(out);
                return NULL;
        }
        return out;
}

json_t *mspol_fs_intersect(const json_t *a, const json_t *b)
{
        static const char *const keys[] = { "read", "write" };
        json_t *out = json_object();
        for (size_t k = 0; out && k < 2; k++) {
                /* json_object_get is NULL for a non-object */
                json_t *p = paths(json_object_get(a, keys[k]), json_object_get(b, keys[k]));
                if (!p || json_object_set_new(out, keys[k], p) < 0) {
                        json_decref(out);
                        return NULL;
                }
        }
        return out;
}

/* Copies the string entries of arr (a list that is not an array counts as empty). */
static json_t *string_copies(const json_t *arr)
{
        json_t *out = json_array();
        size_t i;
        json_t *e;
        if (out && json_is_array(arr))
                json_array_foreach(arr, i, e)
                        if (json_is_string(e))
                                json_array_append(out, e);
        return out;
}

json_t *mspol_fs_evaluate(const json_t *requested, const json_t *policy)
{
        static const char *const keys[] = { "read", "write" };
        json_t *violations = json_array();
        json_t *out = json_object();
        if (!violations || !out)
                goto oom;
        for (size_t k = 0; k < 2; k++) {
                const json_t *want = json_object_get(requested, keys[k]);
                const json_t *have = json_object_get(policy, keys[k]);
                size_t i;
                json_t *e;
                if (json_is_array(want)) {
                        json_array_foreach(want, i, e) {
                                const char *p = json_is_string(e) ? json_string_value(e) : NULL;
                                /* fail closed: an entry that is no usable path is a violation */
                                bool ok = p && strlen(p) == json_string_length(e) &&
                                          mspol_fs_covered(p, have);
                                if (ok)
                                        continue;
                                char *msg = str_dup_printf("%s path %s not covered by policy",
                                                           keys[k], p ? p : "(not a string)");
                                if (!msg || json_array_append_new(violations,
                                                                  json_string(msg)) < 0) {
                                        free(msg);
                                        goto oom;
                                }
                                free(msg);
                        }
                }
                if (json_object_set_new(out, keys[k], string_copies(want)) < 0)
                        goto oom;
        }
        if (json_object_set_new(out, "allowed",
                                json_boolean(json_array_size(violations) == 0)) < 0)
                goto oom;
        if (json_object_set_new(out, "violations", violations) < 0) {
                violations = NULL;
                goto oom;
        }
        return out;
oom:
        json_decref(violations);
        json_decref(out);
        return NULL;
}

json_t *mspol_fs_defaults(const char *profile)
{
        /* spec mothership §11.1, the default capabilities file. Profiles absent from it get
         * empty lists; "host" is listed with empty lists. */
        static const char *const workspace_profiles[] = { "untrusted", "trusted",
                                                          "darwin-automation" };
        bool ws = false;
        for (size_t i = 0; profile && i < sizeof(workspace_profiles) / sizeof(*workspace_profiles);
             i++)
                if (strcmp(profile, workspace_profiles[i]) == 0)
                        ws = true;
        if (ws)
                return json_pack("{s:[s], s:[s]}", "read", "workspace:**", "write",
                                 "workspace:**");
        return json_pack("{s:[], s:[]}", "read", "write");
}
