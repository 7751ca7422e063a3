/* policy/validate.c — validation of one policy section on create/update (spec mothership
 * §6.1). Messages name the section and the field: "fs contains unknown keys: foo",
 * "device.allowed must be an array of strings".
 *
 * Stricter than REF, on purpose (listed in docs/security.md):
 *   - a present section that is not an object is refused, even when REF would call it blank
 *     ("" / [] / false);
 *   - net: the whole NetCapabilityV1 schema applies (proto/netcap: mode required and one of
 *     none/allowlist/unrestricted, allow required iff mode is allowlist, every entry valid for
 *     the shared lib/proto/allowlist grammar and unique, preset/ttl_seconds/x_ext checked, no
 *     other keys). REF stores allowlist entries unvalidated and ranks a net without a mode as
 *     unrestricted;
 *   - fs paths must be strings without NUL, at most 4096 bytes;
 *   - device patterns must be strings without NUL, at most 255 bytes, at most 1000 per list
 *     (REF sets no bound). */
#include "policy/policy.h"

#include <stdint.h>
#include <string.h>

#include "core/str.h"
#include "proto/netcap.h"

#define FS_MAX_ENTRIES 100      /* §6.1 */
#define FS_PATH_MAX 4096
#define DEV_MAX_ENTRIES 1000
#define DEV_PATTERN_MAX 255

static json_t *unconst(const json_t *j)
{
        return (json_t *)(uintptr_t)j;
}

static int fail(char *why, size_t whysz, const char *msg)
{
        if (why && whysz)
                str_copy(why, whysz, msg);
        return -1;
}

/* "contains unknown keys: a, b" over the keys of v not in allowed (NULL-terminated). */
static int check_keys(const char *sec, const json_t *v, const char *const *allowed, char *why,
                      size_t whysz)
{
        char list[512] = "";
        size_t used = 0;
        bool any = false;
        const char *k;
        json_t *x;
        json_object_foreach(unconst(v), k, x) {
                bool ok = false;
                for (size_t i = 0; allowed[i]; i++)
                        if (strcmp(k, allowed[i]) == 0)
                                ok = true;
                if (ok)
                        continue;
                any = true;
                if (used < sizeof(list)) {
                        int w = snprintf(list + used, sizeof(list) - used, "%s%.64s",
                                         used ? ", " : "", k);
                        used = w < 0 ? sizeof(list) : used + (size_t)w;
                }
        }
        if (!any)
                return 0;
        if (why && whysz) {
                int w = snprintf(why, whysz, "%s contains unknown keys: %s", sec, list);
                (void)w;
        }
        return -1;
}

/* Each present key an array of strings without NUL, of at most max_n entries of at most
 * max_len bytes. */
static int check_string_array(const char *sec, const char *key, const json_t *arr, size_t max_n,
                              size_t max_len, char *why, size_t whysz)
{
        if (!json_is_array(arr)) {
                str_printf(why, whysz, "%s.%s must be an array of strings", sec, key);
                return -1;
        }
        if (json_array_size(arr) > max_n) {
                str_printf(why, whysz, "%s.%s must have at most %zu entries", sec, key, max_n);
                return -1;
        }
        size_t i;
        json_t *e;
        json_array_foreach(arr, i, e) {
                if (!json_is_string(e)) {
                        str_printf(why, whysz, "%s.%s must be an array of strings", sec, key);
                        return -1;
                }
                if (strlen(json_string_value(e)) != json_string_length(e)) {
                        str_printf(why, whysz, "%s.%s[%zu] must not contain NUL", sec, key, i);
                        return -1;
                }
                if (json_string_length(e) > max_len) {
                        str_printf(why, whysz, "%s.%s[%zu] must be at most %zu bytes", sec, key,
                                   i, max_len);
                        return -1;
                }
        }
        return 0;
}

static int check_lists(const char *sec, const json_t *v, const char *const *keys, size_t max_n,
                       size_t max_len, char *why, size_t whysz)
{
        if (check_keys(sec, v, keys, why, whysz) < 0)
                return -1;
        for (size_t i = 0; keys[i]; i++) {
                const json_t *arr = json_object_get(v, keys[i]);
                if (arr && check_string_array(sec, keys[i], arr, max_n, max_len, why, whysz) < 0)
                        return -1;
        }
        return 0;
}

static int check_net(const json_t *v, char *why, size_t whysz)
{
        const json_t *mode = json_object_get(v, "mode");
        const char *m = json_string_value(mode);
        /* the §6.1 message first, for the rule REF has too */
        if (mode && (!m || (strcmp(m, "none") != 0 && strcmp(m, "allowlist") != 0 &&
                            strcmp(m, "unrestricted") != 0)))
                return fail(why, whysz, "net.mode must be one of none, allowlist, unrestricted");
        err_t err = ERR_INIT;
        if (netcap_validate(v, &err) == 0)
                return 0;
        /* "capabilities.net.allow[1]: ..." → "net.allow[1]: ..." */
        const char *msg = err.msg;
        if (str_has_prefix(msg, "capabilities."))
                msg += strlen("capabilities.");
        return fail(why, whysz, msg);
}

static int check_approval(const json_t *v, char *why, size_t whysz)
{
        const char *k;
        json_t *x;
        json_object_foreach(unconst(v), k, x) {
                const char *s = json_string_value(x);
                if (!s || (strcmp(s, "skip") != 0 && strcmp(s, "needs_approval") != 0 &&
                           strcmp(s, "forbidden") != 0)) {
                        str_printf(why, whysz, "approval.%.64s must be one of skip, "
                                   "needs_approval, forbidden", k);
                        return -1;
                }
        }
        return 0;
}

int mspol_validate_section(const char *key, const json_t *v, char *why, size_t whysz)
{
        static const char *const fs_keys[] = { "read", "write", NULL };
        static const char *const dev_keys[] = { "allowed", "denied", "approval_required", NULL };
        static const char *const sections[] = { "fs", "net", "approval", "device", "secrets",
                                                "sandbox_profile_rules", NULL };
        char scratch[8];
        if (!why || whysz == 0) {
                why = scratch;
                whysz = sizeof(scratch);
        }
        why[0] = '\0';
        bool known = false;
        for (size_t i = 0; key && sections[i]; i++)
                if (strcmp(key, sections[i]) == 0)
                        known = true;
        if (!known) {
                str_printf(why, whysz, "unknown policy section \"%.64s\"", key ? key : "");
                return -1;
        }
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_object(v)) {
                str_printf(why, whysz, "%s must be an object", key);
                return -1;
        }
        if (json_object_size(v) == 0)
                return 0;
        if (strcmp(key, "fs") == 0)
                return check_lists("fs", v, fs_keys, FS_MAX_ENTRIES, FS_PATH_MAX, why, whysz);
        if (strcmp(key, "device") == 0)
                return check_lists("device", v, dev_keys, DEV_MAX_ENTRIES, DEV_PATTERN_MAX, why,
                                   whysz);
        if (strcmp(key, "net") == 0)
                return check_net(v, why, whysz);
        if (strcmp(key, "approval") == 0)
                return check_approval(v, why, whysz);
        return 0;       /* secrets, sandbox_profile_rules: any object (§6.1) */
}
