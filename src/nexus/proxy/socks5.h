/* proxy/socks5.h — SOCKS5 (RFC 1928) greeting and request parsing for the egress proxy (spec
 * nexus §7.5 with DESIGN D14). Pure: no I/O, no allocation; fuzzed by tests/fuzz/fuzz_socks5.c.
 *
 * Greeting "05 NMETHODS METHODS...": only no-auth (00) is accepted; without it the answer is
 * 05 FF and the connection closes (RFC 1928 §3).
 * Request "05 CMD 00 ATYP DST.ADDR DST.PORT":
 *  - version other than 5 or a non-zero RSV → NX_SOCKS5_CLOSE (close silently, §7.5 step 2);
 *  - CMD CONNECT (01) with ATYP 01 (IPv4), 03 (domain) or 04 (IPv6) is accepted (D14; REF only
 *    takes domains). IP literals are returned as text ("1.2.3.4", "2001:db8::1"), flagged
 *    is_ip, and go through the policy like any host (they never match an allowlist);
 *  - CMD BIND (02), UDP ASSOCIATE (03) or anything else → reply 07 (command not supported);
 *  - unknown ATYP → reply 08; a domain that is empty, has leading/trailing whitespace or
 *    contains NUL, CR, LF, TAB, SP, '/', '\\', '@', '#', '?' or '%' → reply 08; port 0 → 08.
 * Replies are always 10 bytes: 05 REP 00 01 00 00 00 00 00 00 (bound 0.0.0.0:0). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/error.h"

#define NX_SOCKS5_VERSION 0x05
#define NX_SOCKS5_REPLY_LEN 10

/* RFC 1928 §6 reply codes. */
enum {
        NX_SOCKS5_REP_OK = 0x00,
        NX_SOCKS5_REP_FAILURE = 0x01,
        NX_SOCKS5_REP_NOT_ALLOWED = 0x02,
        NX_SOCKS5_REP_NET_UNREACHABLE = 0x03,
        NX_SOCKS5_REP_HOST_UNREACHABLE = 0x04,
        NX_SOCKS5_REP_REFUSED = 0x05,
        NX_SOCKS5_REP_TTL_EXPIRED = 0x06,
        NX_SOCKS5_REP_CMD_UNSUPPORTED = 0x07,
        NX_SOCKS5_REP_ATYP_UNSUPPORTED = 0x08,
};

enum { NX_SOCKS5_CMD_CONNECT = 1, NX_SOCKS5_CMD_BIND = 2, NX_SOCKS5_CMD_UDP = 3 };
enum { NX_SOCKS5_ATYP_IPV4 = 1, NX_SOCKS5_ATYP_DOMAIN = 3, NX_SOCKS5_ATYP_IPV6 = 4 };

/* Result of a parse step. */
typedef enum nx_socks5_result {
        NX_SOCKS5_NEED_MORE = 0,        /* incomplete; read more and call again */
        NX_SOCKS5_DONE,                 /* parsed; *consumed bytes used */
        NX_SOCKS5_REPLY_AND_CLOSE,      /* send the given reply (2 bytes greeting / 10 bytes
                                         * request), audit, close */
        NX_SOCKS5_CLOSE,                /* protocol violation: close without a reply */
} nx_socks5_result;

/* Greeting. On DONE the answer is 05 00. On REPLY_AND_CLOSE the answer is 05 FF. */
nx_socks5_result nx_socks5_parse_greeting(const uint8_t *buf, size_t len, size_t *consumed,
                                          err_t *err);

typedef struct nx_socks5_request {
        uint8_t cmd;
        uint8_t atyp;
        char host[256];                 /* domain (as sent) or textual IP literal */
        bool is_ip;                     /* ATYP 01/04 */
        uint16_t port;
} nx_socks5_request;

/* Request. On REPLY_AND_CLOSE, *reply holds the SOCKS reply code and out holds whatever was
 * parsed (cmd, atyp, host may be empty) for the audit record. */
nx_socks5_result nx_socks5_parse_request(const uint8_t *buf, size_t len,
                                         nx_socks5_request *out, size_t *consumed,
                                         uint8_t *reply, err_t *err);

/* Writes the 10-byte reply for rep into out. */
void nx_socks5_reply(uint8_t rep, uint8_t out[NX_SOCKS5_REPLY_LEN]);
