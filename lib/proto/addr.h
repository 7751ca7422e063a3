/* proto/addr.h — the denied-destination classifier of the egress path (nexus §7.8, DESIGN D14).
 *
 * Every address the proxy is about to dial is classified here first; only ADDR_PUBLIC may be
 * dialled. The set is REF's private/non-routable list plus every ADVISED addition of §7.8:
 * documentation, benchmarking and IETF-reserved ranges, cloud metadata addresses, and IPv6
 * forms that embed or translate an IPv4 address (v4-mapped, v4-compatible, SIIT, NAT64, 6to4,
 * Teredo), which are denied outright so that no embedding can smuggle a private IPv4 through.
 * IPv6 outside 2000::/3 (global unicast) is never public. NULL, short or unknown input is
 * ADDR_INVALID, which is denied too (fail closed).
 *
 * Text parsing here is strict inet_pton only: "0x7f.1", "2130706433", "0177.0.0.1",
 * "fe80::1%eth0" and "[::1]" are ADDR_INVALID. host_is_ip_literal() is the opposite, loose
 * question the allowlist asks: could a resolver treat this host name as an address? */
#pragma once
#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>

typedef enum addr_class {
        ADDR_PUBLIC = 0,
        ADDR_LOOPBACK,          /* 127/8, ::1 */
        ADDR_PRIVATE,           /* 10/8, 172.16/12, 192.168/16, fc00::/7, fec0::/10 */
        ADDR_LINK_LOCAL,        /* 169.254/16, fe80::/10 */
        ADDR_CGNAT,             /* 100.64/10 */
        ADDR_MULTICAST,         /* 224/4, ff00::/8 */
        ADDR_RESERVED,          /* 0/8 (but 0.0.0.0), 240/4, broadcast, 192.0.0/24, ORCHID, ... */
        ADDR_UNSPECIFIED,       /* 0.0.0.0, :: */
        ADDR_METADATA,          /* cloud instance metadata endpoints, e.g. 169.254.169.254 */
        ADDR_DOCUMENTATION,     /* 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32 */
        ADDR_BENCHMARK,         /* 198.18/15, 2001:2::/48 */
        ADDR_TRANSLATED,        /* mapped, compat, SIIT, NAT64, 6to4, Teredo (public embedded) */
        ADDR_INVALID,           /* NULL, unparsable, wrong family or length */
        ADDR__COUNT
} addr_class;

/* AF_INET needs len >= sizeof(struct sockaddr_in), AF_INET6 sizeof(struct sockaddr_in6);
 * anything else is ADDR_INVALID. */
addr_class addr_classify_sockaddr(const struct sockaddr *sa, socklen_t len);
addr_class addr_classify_in(const struct in_addr *a);
/* An IPv6 address that embeds an IPv4 one is classified as the embedded address when that is
 * denied (so "::ffff:127.0.0.1" is ADDR_LOOPBACK), otherwise as ADDR_TRANSLATED. */
addr_class addr_classify_in6(const struct in6_addr *a);
/* Strict textual address (inet_pton AF_INET or AF_INET6, no brackets, no zone). */
addr_class addr_classify_str(const char *s);

/* Everything except ADDR_PUBLIC is denied, including values outside the enum. */
bool addr_is_denied(addr_class c);
/* "public", "loopback", "private", "link_local", "cgnat", "multicast", "reserved",
 * "unspecified", "metadata", "documentation", "benchmark", "translated", "invalid". */
const char *addr_class_name(addr_class c);

/* True if a resolver might read host (NUL-terminated) as an address rather than a name: any
 * IPv4 form inet_aton() accepts (dotted, 1-4 parts, decimal/octal/hex, e.g. "2130706433",
 * "0177.0.0.1", "0x7f.1") — deliberately a superset, value ranges are not checked — or any
 * inet_pton AF_INET6 form, with or without [brackets] and %zone, and with one trailing dot
 * ignored. Used by the allowlist grammar (nexus §7.7 step 3). */
bool host_is_ip_literal(const char *host);
