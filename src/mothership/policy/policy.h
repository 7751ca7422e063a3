/* policy/policy.h — the mothership policy engine (spec mothership §6; issue #4 items 2-6).
 *
 * Pure functions over jansson values and the store's ms_policy rows: section validation
 * (§6.1), filesystem (§6.2), network (§6.3), device capabilities (§6.4), the merge (§6.5), the
 * resolver (§6.6), the approval evaluator (§6.7) and the CommandValidator (§6.8). No I/O.
 *
 * Conventions: every json_t returned is a NEW reference owned by the caller; inputs are
 * borrowed and never modified; no function aborts on input; a json_t argument may be NULL or of
 * any type — a section that is not an object is treated as blank, as the spec does.
 *
 * Deliberate differences from the reference implementation (REF) are marked "Stricter than
 * REF" in the sources and listed in docs/security.md. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include "core/error.h"
#include "store/store.h"

/* §6.1: validates one section of a policy body. key is fs|net|approval|device|secrets|
 * sandbox_profile_rules; v may be NULL/null (= blank, valid). Returns 0, or -1 with a message in
 * why ("fs contains unknown keys: foo", "net.mode must be one of none, allowlist, unrestricted",
 * "fs.read must have at most 100 entries", ...). Stricter than REF: net.allow entries are
 * validated with lib/proto/allowlist and net must satisfy the NetCapabilityV1 rules where they
 * apply (allow required iff mode=allowlist); fs paths must be strings without NUL, <= 4096
 * bytes. */
int mspol_validate_section(const char *key, const json_t *v, char *why, size_t whysz);

/* ---- additions beyond the pinned interface ---- */

/* A section is blank (§6.5 "blank ({})") when it is NULL, JSON null, not an object, or {}. */
bool mspol_blank(const json_t *v);
/* §6.5 net rank: "none" 0, "allowlist" 1, "unrestricted" 2; a missing or unknown mode (or a
 * net that is not an object) ranks 2, as in the reference. */
int mspol_net_rank(const json_t *net);
/* Issue #4 item 3: is the allowlist entry `entry` (any spelling the lib/proto grammar accepts)
 * covered by some entry of the JSON array policy_allow? Covered = same canonical entry, or a
 * policy wildcard "*.d:p" matching the entry's host (a requested "*.sub.d:p" included), or
 * the same wildcard. Invalid entries on either side cover / are covered by nothing. */
bool mspol_net_entry_covered(const char *entry, const json_t *policy_allow);
/* §11.1: the profile's default fs {"read":[..],"write":[..]} (new reference; an unknown or
 * NULL profile gets empty lists). The one place the defaults table lives. */
json_t *mspol_fs_defaults(const char *profile);

/* §6.2 */
int mspol_fs_normalize(const char *in, char *out, size_t outsz);   /* -1 if it does not fit */
bool mspol_fs_covered(const char *target, const json_t *prefixes);
json_t *mspol_fs_intersect(const json_t *a, const json_t *b);      /* {"read":[..],"write":[..]} */
json_t *mspol_fs_evaluate(const json_t *requested, const json_t *policy); /* {allowed,read,write,violations} */

/* §6.3 + issue #4 item 3: the requested net capability narrowed by the policy's net.
 * Stricter than REF (§6.6 step 5 quirk fixed): a requested allowlist never replaces or widens
 * the policy's; see net.c for the exact rules. */
json_t *mspol_net_effective(const json_t *policy_net, const json_t *requested_net);

/* §6.4 */
bool mspol_dev_matches(const char *cap, const json_t *patterns);
bool mspol_dev_covers(const char *wide, const char *narrow);
json_t *mspol_dev_intersect(const json_t *a, const json_t *b);
json_t *mspol_dev_merge(const ms_policy *ps, size_t n);   /* {allowed,denied,approval_required} */
/* returns "allowed" | "needs_approval" | "denied"; *reason = static string or NULL */
const char *mspol_dev_evaluate(const char *cap, const json_t *merged, const char **reason);

/* §6.5: {fs,net,secrets,sandbox_profile_rules,approval,device,policy_ids} (ps sorted already) */
json_t *mspol_merge(const ms_policy *ps, size_t n);

/* §6.7: returns "skip" | "needs_approval" | "forbidden"; appends reason strings to reasons_out */
const char *mspol_approval_evaluate(const json_t *effective, const json_t *rules,
                                    const char *profile, json_t *reasons_out);

/* §6.6 */
typedef struct mspol_resolution {
        json_t *effective;          /* {fs, net, secrets, sandbox_profile_rules} */
        json_t *snapshot;           /* §6.6 step 8 */
        const char *verdict;        /* static: skip | needs_approval | forbidden */
        json_t *reasons;            /* array of strings */
        json_t *policies_applied;   /* array of ids */
} mspol_resolution;
int mspol_resolve(const ms_policy *ps, size_t n, const char *profile,
                  const json_t *requested_capabilities, int64_t now_ms,
                  mspol_resolution *out, err_t *err);
void mspol_resolution_clear(mspol_resolution *r);

/* §6.8 */
typedef enum mspol_cmd_verdict {
        MSPOL_CMD_SAFE = 0, MSPOL_CMD_NEEDS_APPROVAL, MSPOL_CMD_FORBIDDEN
} mspol_cmd_verdict;
/* violations: an array the reasons are appended to (in table order); may be NULL. */
mspol_cmd_verdict mspol_cmd_validate(const char *profile, const char *command, json_t *violations);
const char *mspol_cmd_verdict_name(mspol_cmd_verdict v);   /* safe|needs_approval|forbidden */
