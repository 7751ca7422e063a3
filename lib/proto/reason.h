/* proto/reason.h — egress decision and approval reason codes (nexus §7.12, mothership §6.3).
 *
 * The mechanism layer (policy, proxy, resolver) works with the typed enums; the wire/audit text
 * lives in one table per enum in reason.c (bubblewrap's idiom). The V1 vocabularies are frozen
 * by directivespec_capabilities_net.schema.v1.json. A receiver maps any code it does not know to
 * OTHER (§7.12), so parsing never fails. */
#pragma once
#include <stdbool.h>

/* NetDecisionReasonCodeV1, in schema order. */
typedef enum net_reason {
        NET_REASON_OK = 0,
        NET_REASON_NET_MODE_NONE,
        NET_REASON_NOT_IN_ALLOWLIST,
        NET_REASON_PORT_NOT_ALLOWED,       /* never produced: a port mismatch is NOT_IN_ALLOWLIST */
        NET_REASON_INVALID_DESTINATION,
        NET_REASON_PROXY_REQUIRED,
        NET_REASON_SNI_MISMATCH,
        NET_REASON_DNS_DENIED,
        NET_REASON_POLICY_EXPIRED,         /* reserved */
        NET_REASON_APPROVAL_REQUIRED,      /* reserved */
        NET_REASON_INTERNAL_ERROR,
        NET_REASON_OTHER,
        NET_REASON__COUNT
} net_reason;

/* Wire name ("NOT_IN_ALLOWLIST"). A value outside the enum yields "OTHER" (never NULL). */
const char *net_reason_name(net_reason r);
/* Exact, case-sensitive name → code. NULL or unknown text → NET_REASON_OTHER (§7.12). */
net_reason net_reason_parse(const char *s);
/* Only NET_REASON_OK allows a connection; every other code (and any out-of-range value) denies. */
bool net_reason_allows(net_reason r);

/* NetApprovalReasonCodeV1 (control plane only), in schema order. */
typedef enum net_approval_reason {
        NET_UNRESTRICTED_REQUESTED = 0,
        NET_NON_DEFAULT_PORT_REQUESTED,
        NET_WILDCARD_DOMAIN_REQUESTED,
        NET_PRIVATE_DESTINATION_REQUESTED,
        NET_CUSTOM_POLICY_REQUESTED,
        NET_APPROVAL_REASON__COUNT
} net_approval_reason;

/* Wire name; NULL for a value outside the enum (there is no catch-all approval code). */
const char *net_approval_reason_name(net_approval_reason r);
/* Exact name → code. Returns 0, or -1 for NULL/unknown text (*out untouched). */
int net_approval_reason_parse(const char *s, net_approval_reason *out);
