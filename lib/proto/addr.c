/* proto/addr.c — denied-destination classifier (see addr.h; spec nexus §7.8). */
#include "proto/addr.h"

#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static const char *const addr_class_names[ADDR__COUNT] = {
        [ADDR_PUBLIC] = "public",
        [ADDR_LOOPBACK] = "loopback",
        [ADDR_PRIVATE] = "private",
        [ADDR_LINK_LOCAL] = "link_local",
        [ADDR_CGNAT] = "cgnat",
        [ADDR_MULTICAST] = "multicast",
        [ADDR_RESERVED] = "reserved",
        [ADDR_UNSPECIFIED] = "unspecified",
        [ADDR_METADATA] = "metadata",
        [ADDR_DOCUMENTATION] = "documentation",
        [ADDR_BENCHMARK] = "benchmark",
        [ADDR_TRANSLATED] = "translated",
        [ADDR_INVALID] = "invalid",
};

const char *addr_class_name(addr_class c)
{
        if ((unsigned)c >= ADDR__COUNT)
                return addr_class_names[ADDR_INVALID];
        return addr_class_names[c];
}

bool addr_is_denied(addr_class c)
{
        return c != ADDR_PUBLIC;
}

/* ---- IPv4 ---- */

#define IP4(a, b, c, d) \
        (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (uint32_t)(d))

struct v4_range {
        uint32_t net;
        unsigned bits;
        addr_class cls;
};

/* First match wins, so single addresses come before the ranges that contain them. */
static const struct v4_range v4_denied[] = {
        { IP4(0, 0, 0, 0), 32, ADDR_UNSPECIFIED },
        /* cloud metadata: AWS/GCP/Azure/OCI IMDS, AWS ECS task metadata, Alibaba, Oracle,
         * Azure WireServer (a public-looking address that only answers inside Azure) */
        { IP4(169, 254, 169, 254), 32, ADDR_METADATA },
        { IP4(169, 254, 170, 2), 32, ADDR_METADATA },
        { IP4(100, 100, 100, 200), 32, ADDR_METADATA },
        { IP4(192, 0, 0, 192), 32, ADDR_METADATA },
        { IP4(168, 63, 129, 16), 32, ADDR_METADATA },
        { IP4(0, 0, 0, 0), 8, ADDR_RESERVED },          /* "this network" */
        { IP4(10, 0, 0, 0), 8, ADDR_PRIVATE },
        { IP4(100, 64, 0, 0), 10, ADDR_CGNAT },
        { IP4(127, 0, 0, 0), 8, ADDR_LOOPBACK },
        { IP4(169, 254, 0, 0), 16, ADDR_LINK_LOCAL },
        { IP4(172, 16, 0, 0), 12, ADDR_PRIVATE },
        { IP4(192, 0, 0, 0), 24, ADDR_RESERVED },       /* IETF protocol assignments */
        { IP4(192, 0, 2, 0), 24, ADDR_DOCUMENTATION },  /* TEST-NET-1 */
        { IP4(192, 88, 99, 0), 24, ADDR_RESERVED },     /* deprecated 6to4 relay anycast */
        { IP4(192, 168, 0, 0), 16, ADDR_PRIVATE },
        { IP4(198, 18, 0, 0), 15, ADDR_BENCHMARK },
        { IP4(198, 51, 100, 0), 24, ADDR_DOCUMENTATION }, /* TEST-NET-2 */
        { IP4(203, 0, 113, 0), 24, ADDR_DOCUMENTATION },  /* TEST-NET-3 */
        { IP4(224, 0, 0, 0), 4, ADDR_MULTICAST },
        { IP4(240, 0, 0, 0), 4, ADDR_RESERVED },        /* incl. 255.255.255.255 broadcast */
};

static addr_class classify_v4(uint32_t a)
{
        for (size_t i = 0; i < sizeof(v4_denied) / sizeof(v4_denied[0]); i++) {
                const struct v4_range *r = &v4_denied[i];
                uint32_t mask = r->bits == 0 ? 0 : 0xffffffffu << (32 - r->bits);
                if ((a & mask) == r->net)
                        return r->cls;
        }
        return ADDR_PUBLIC;
}

addr_class addr_classify_in(const struct in_addr *a)
{
        if (!a)
                return ADDR_INVALID;
        return classify_v4(ntohl(a->s_addr));
}

/* ---- IPv6 ---- */

#define V6(a, b, c, d, e, f, g, h) { \
        (a) >> 8, (a) & 0xff, (b) >> 8, (b) & 0xff, (c) >> 8, (c) & 0xff, (d) >> 8, (d) & 0xff, \
        (e) >> 8, (e) & 0xff, (f) >> 8, (f) & 0xff, (g) >> 8, (g) & 0xff, (h) >> 8, (h) & 0xff }

enum v6_embed {
        EMBED_NONE,
        EMBED_LAST32,   /* IPv4 in bytes 12..15: mapped, compatible, SIIT, NAT64 */
        EMBED_6TO4,     /* IPv4 in bytes 2..5 */
};

struct v6_range {
        uint8_t net[16];
        unsigned bits;
        addr_class cls;
        enum v6_embed embed;
};

/* First match wins. Whatever is not listed is public only inside 2000::/3 (below). */
static const struct v6_range v6_denied[] = {
        { V6(0, 0, 0, 0, 0, 0, 0, 0), 128, ADDR_UNSPECIFIED, EMBED_NONE },
        { V6(0, 0, 0, 0, 0, 0, 0, 1), 128, ADDR_LOOPBACK, EMBED_NONE },
        { V6(0, 0, 0, 0, 0, 0xffff, 0, 0), 96, ADDR_TRANSLATED, EMBED_LAST32 },  /* v4-mapped */
        { V6(0, 0, 0, 0, 0xffff, 0, 0, 0), 96, ADDR_TRANSLATED, EMBED_LAST32 },  /* SIIT */
        { V6(0, 0, 0, 0, 0, 0, 0, 0), 96, ADDR_TRANSLATED, EMBED_LAST32 },       /* v4-compat */
        { V6(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96, ADDR_TRANSLATED, EMBED_LAST32 }, /* NAT64 */
        { V6(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48, ADDR_TRANSLATED, EMBED_NONE },   /* local NAT64 */
        /* the rest of 0000::/8 is unassigned; after NAT64, which lives inside it */
        { V6(0, 0, 0, 0, 0, 0, 0, 0), 8, ADDR_RESERVED, EMBED_NONE },
        { V6(0x100, 0, 0, 0, 0, 0, 0, 0), 64, ADDR_RESERVED, EMBED_NONE },       /* discard */
        { V6(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254), 128, ADDR_METADATA, EMBED_NONE }, /* AWS IMDS */
        { V6(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7, ADDR_PRIVATE, EMBED_NONE },        /* ULA */
        { V6(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, ADDR_LINK_LOCAL, EMBED_NONE },
        { V6(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10, ADDR_PRIVATE, EMBED_NONE },       /* site-local */
        { V6(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, ADDR_MULTICAST, EMBED_NONE },
        { V6(0x2001, 0, 0, 0, 0, 0, 0, 0), 32, ADDR_TRANSLATED, EMBED_NONE },    /* Teredo */
        { V6(0x2001, 2, 0, 0, 0, 0, 0, 0), 48, ADDR_BENCHMARK, EMBED_NONE },
        { V6(0x2001, 0x10, 0, 0, 0, 0, 0, 0), 28, ADDR_RESERVED, EMBED_NONE },   /* ORCHID */
        { V6(0x2001, 0x20, 0, 0, 0, 0, 0, 0), 28, ADDR_RESERVED, EMBED_NONE },   /* ORCHIDv2 */
        { V6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32, ADDR_DOCUMENTATION, EMBED_NONE },
        /* the rest of the IETF protocol-assignment block: anycast services, never a target */
        { V6(0x2001, 0, 0, 0, 0, 0, 0, 0), 23, ADDR_RESERVED, EMBED_NONE },
        { V6(0x2002, 0, 0, 0, 0, 0, 0, 0), 16, ADDR_TRANSLATED, EMBED_6TO4 },    /* 6to4 */
        { V6(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20, ADDR_DOCUMENTATION, EMBED_NONE }, /* RFC 9637 */
};

static bool v6_in(const uint8_t *a, const uint8_t *net, unsigned bits)
{
        unsigned whole = bits / 8, rest = bits % 8;
        if (memcmp(a, net, whole) != 0)
                return false;
        if (rest == 0)
                return true;
        uint8_t mask = (uint8_t)(0xff << (8 - rest));
        return (a[whole] & mask) == (net[whole] & mask);
}

static uint32_t be32_at(const uint8_t *p)
{
        return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

addr_class addr_classify_in6(const struct in6_addr *a)
{
        if (!a)
                return ADDR_INVALID;
        const uint8_t *b = a->s6_addr;
        for (size_t i = 0; i < sizeof(v6_denied) / sizeof(v6_denied[0]); i++) {
                const struct v6_range *r = &v6_denied[i];
                if (!v6_in(b, r->net, r->bits))
                        continue;
                addr_class inner = ADDR_PUBLIC;
                switch (r->embed) {
                case EMBED_LAST32:
                        inner = classify_v4(be32_at(b + 12));
                        break;
                case EMBED_6TO4:
                        inner = classify_v4(be32_at(b + 2));
                        break;
                case EMBED_NONE:
                        break;
                default:
                        break;
                }
                /* report the more telling class; either way the address is denied */
                return addr_is_denied(inner) ? inner : r->cls;
        }
        /* outside global unicast 2000::/3 nothing is allocated for ordinary hosts */
        if ((b[0] & 0xe0) != 0x20)
                return ADDR_RESERVED;
        return ADDR_PUBLIC;
}

addr_class addr_classify_sockaddr(const struct sockaddr *sa, socklen_t len)
{
        sa_family_t family;
        if (!sa || len < (socklen_t)(offsetof(struct sockaddr, sa_family) + sizeof(family)))
                return ADDR_INVALID;
        /* copied out: sa may point into a packed buffer, not aligned for struct sockaddr */
        memcpy(&family, (const char *)sa + offsetof(struct sockaddr, sa_family), sizeof(family));
        switch (family) {
        case AF_INET: {
                if (len < (socklen_t)sizeof(struct sockaddr_in))
                        return ADDR_INVALID;
                struct sockaddr_in sin;
                memcpy(&sin, sa, sizeof(sin));   /* sa may not be aligned for sockaddr_in */
                return addr_classify_in(&sin.sin_addr);
        }
        case AF_INET6: {
                if (len < (socklen_t)sizeof(struct sockaddr_in6))
                        return ADDR_INVALID;
                struct sockaddr_in6 sin6;
                memcpy(&sin6, sa, sizeof(sin6));
                return addr_classify_in6(&sin6.sin6_addr);
        }
        default:
                return ADDR_INVALID;
        }
}

addr_class addr_classify_str(const char *s)
{
        if (!s)
                return ADDR_INVALID;
        /* longest strict form: "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255" (45 bytes) */
        if (strnlen(s, INET6_ADDRSTRLEN) >= INET6_ADDRSTRLEN)
                return ADDR_INVALID;
        struct in_addr a4;
        if (inet_pton(AF_INET, s, &a4) == 1)
                return addr_classify_in(&a4);
        struct in6_addr a6;
        if (inet_pton(AF_INET6, s, &a6) == 1)
                return addr_classify_in6(&a6);
        return ADDR_INVALID;
}

/* ---- "could this host name be read as an address?" ---- */

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

static bool is_xdigit(char c)
{
        return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_space(char c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Every string inet_aton() accepts passes here: 1-4 '.'-separated parts, each decimal digits
 * or 0x/0X followed by hex digits, optionally followed by whitespace and anything (glibc stops
 * at whitespace). Ranges are not checked: a name made only of numeric labels is no DNS name
 * anyway (no TLD is numeric), so calling it a literal only makes the allowlist stricter. */
static bool loose_ipv4(const char *s, size_t len)
{
        size_t i = 0, parts = 0;
        while (1) {
                size_t start = i;
                if (i + 1 < len && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
                        i += 2;
                        while (i < len && is_xdigit(s[i]))
                                i++;
                } else {
                        while (i < len && is_digit(s[i]))
                                i++;
                }
                if (i == start)
                        return false;
                parts++;
                if (parts > 4)
                        return false;
                if (i == len || is_space(s[i]))
                        return true;
                if (s[i] != '.')
                        return false;
                i++;
        }
}

static bool strict_ipv6(const char *s, size_t len)
{
        char buf[INET6_ADDRSTRLEN];
        struct in6_addr a6;
        if (len == 0 || len >= sizeof(buf))
                return false;
        memcpy(buf, s, len);
        buf[len] = '\0';
        return inet_pton(AF_INET6, buf, &a6) == 1;
}

bool host_is_ip_literal(const char *host)
{
        if (!host)
                return false;
        size_t len = strlen(host);
        if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
                host++;
                len -= 2;
        } else if (len > 0 && host[len - 1] == '.') {
                len--;   /* "127.0.0.1." must not pass as a name */
        }
        if (len == 0)
                return false;
        if (loose_ipv4(host, len))
                return true;
        const char *pct = memchr(host, '%', len);
        if (pct)
                len = (size_t)(pct - host);   /* zone id: "fe80::1%eth0" */
        return strict_ipv6(host, len);
}
