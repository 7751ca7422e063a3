/* proto/reason.c — the one place where reason codes become text (see reason.h). */
#include "proto/reason.h"

#include <stddef.h>
#include <string.h>

/* Indexed by the enum, so a missing entry is a NULL the tests catch, not a shifted table. */
static const char *const net_reason_names[NET_REASON__COUNT] = {
        [NET_REASON_OK] = "OK",
        [NET_REASON_NET_MODE_NONE] = "NET_MODE_NONE",
        [NET_REASON_NOT_IN_ALLOWLIST] = "NOT_IN_ALLOWLIST",
        [NET_REASON_PORT_NOT_ALLOWED] = "PORT_NOT_ALLOWED",
        [NET_REASON_INVALID_DESTINATION] = "INVALID_DESTINATION",
        [NET_REASON_PROXY_REQUIRED] = "PROXY_REQUIRED",
        [NET_REASON_SNI_MISMATCH] = "SNI_MISMATCH",
        [NET_REASON_DNS_DENIED] = "DNS_DENIED",
        [NET_REASON_POLICY_EXPIRED] = "POLICY_EXPIRED",
        [NET_REASON_APPROVAL_REQUIRED] = "APPROVAL_REQUIRED",
        [NET_REASON_INTERNAL_ERROR] = "INTERNAL_ERROR",
        [NET_REASON_OTHER] = "OTHER",
};

static const char *const net_approval_names[NET_APPROVAL_REASON__COUNT] = {
        [NET_UNRESTRICTED_REQUESTED] = "NET_UNRESTRICTED_REQUESTED",
        [NET_NON_DEFAULT_PORT_REQUESTED] = "NET_NON_DEFAULT_PORT_REQUESTED",
        [NET_WILDCARD_DOMAIN_REQUESTED] = "NET_WILDCARD_DOMAIN_REQUESTED",
        [NET_PRIVATE_DESTINATION_REQUESTED] = "NET_PRIVATE_DESTINATION_REQUESTED",
        [NET_CUSTOM_POLICY_REQUESTED] = "NET_CUSTOM_POLICY_REQUESTED",
};

const char *net_reason_name(net_reason r)
{
        /* the cast keeps a negative value (possible for a corrupted enum) out of the table */
        if ((unsigned)r >= NET_REASON__COUNT)
                return net_reason_names[NET_REASON_OTHER];
        return net_reason_names[r];
}

net_reason net_reason_parse(const char *s)
{
        if (!s)
                return NET_REASON_OTHER;
        for (unsigned i = 0; i < NET_REASON__COUNT; i++)
                if (strcmp(s, net_reason_names[i]) == 0)
                        return (net_reason)i;
        return NET_REASON_OTHER;    /* spec nexus §7.12: unknown codes map to OTHER */
}

bool net_reason_allows(net_reason r)
{
        return r == NET_REASON_OK;
}

const char *net_approval_reason_name(net_approval_reason r)
{
        if ((unsigned)r >= NET_APPROVAL_REASON__COUNT)
                return NULL;
        return net_approval_names[r];
}

int net_approval_reason_parse(const char *s, net_approval_reason *out)
{
        if (!s)
                return -1;
        for (unsigned i = 0; i < NET_APPROVAL_REASON__COUNT; i++) {
                if (strcmp(s, net_approval_names[i]) == 0) {
                        *out = (net_approval_reason)i;
                        return 0;
                }
        }
        return -1;
}
