/* proto/netcap.h — NetCapabilityV1 (spec.capabilities.net): schema validation for producers and
 * receivers, and the daemon's policy built from it (nexus §7.6, §8.1; mothership §6.3;
 * contract directivespec_capabilities_net.schema.v1.json).
 *
 * netcap_validate() implements every rule of the frozen schema by hand (no regex engine):
 * object; no other keys; "mode" required, one of none/allowlist/unrestricted; "preset" one of
 * off/loose/strict/no_external/custom; "allow" required iff mode is "allowlist" and absent
 * otherwise, an array of unique strings (exact comparison, as JSON Schema does), each 4-255
 * characters matching the entry pattern AND the stricter §7.7 grammar (port 1-65535, no IP
 * literal); "ttl_seconds" an integer 1-86400 (a JSON real such as 5.0 is refused); "x_ext" an
 * object whose keys match ^x_[A-Za-z0-9_]+$. Strings containing NUL are refused. Messages name
 * the JSON path: "capabilities.net.allow[2]: port out of range: 70000".
 *
 * net_policy_from_json() is the daemon's lenient REF decoding (§8.3): it does not re-validate,
 * ignores unknown keys and "allow" outside allowlist mode, and keeps an unknown mode so that
 * every check denies with INTERNAL_ERROR (§7.6). Run netcap_validate() first to refuse such a
 * directive outright (ADVISED §8.3). */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/error.h"
#include "proto/allowlist.h"
#include "proto/reason.h"

#define NETCAP_TTL_MAX 86400

/* Validates a capability object. NULL (absent) and JSON null are refused ("must be an
 * object"): a caller that treats absence as "no network" checks for it first. */
int netcap_validate(const json_t *cap, err_t *err);

/* The schema's NetAllowlistEntryV1 pattern alone, on len bytes:
 * ^(localhost|(\*\.)?L(\.L)+):([0-9]{1,5})$ with L = [A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?
 * (case-sensitive; "$" is end of input — no trailing newline). */
bool netcap_entry_pattern_ok(const char *s, size_t len);

typedef enum net_mode {
        NET_MODE_NONE = 0,
        NET_MODE_ALLOWLIST,
        NET_MODE_UNRESTRICTED,
        NET_MODE_UNKNOWN,       /* any other mode, incl. "" and a missing mode: deny all */
} net_mode;

/* "none", "allowlist", "unrestricted"; "unknown" otherwise. */
const char *net_mode_name(net_mode m);

typedef struct net_policy {
        net_mode mode;
        allowlist allow;        /* entries only in NET_MODE_ALLOWLIST */
} net_policy;

#define NET_POLICY_INIT { NET_MODE_NONE, { NULL, 0 } }

/* Builds the policy (§7.6). cap NULL, JSON null or {} → NET_MODE_NONE. Fails (the proxy, and so the
 * directive, must not start — vector 16) when cap is not an object, "mode" is not a string, or
 * in allowlist mode "allow" is not an array or holds an invalid entry; a missing or null "allow"
 * is an empty list. On failure *out is NET_MODE_NONE and empty. */
int net_policy_from_json(const json_t *cap, net_policy *out, err_t *err);

/* Decision for one destination (host as received, port): none → NET_MODE_NONE; unknown mode or
 * NULL policy → INTERNAL_ERROR; empty/NULL host or port 0 → INVALID_DESTINATION; unrestricted →
 * OK; allowlist → OK on a match, else NOT_IN_ALLOWLIST (a port mismatch too: PORT_NOT_ALLOWED is
 * never produced). OK is still subject to the resolver's denied-address check (addr.h). */
net_reason net_policy_check(const net_policy *p, const char *host, uint16_t port);

/* Frees the allowlist; leaves NET_MODE_NONE. Safe to call twice. */
void net_policy_free(net_policy *p);
