/* tests/fuzz/fuzz_socks5.c — libFuzzer target for the egress proxy's SOCKS5 state machine
 * (src/nexus/proxy/socks5.h), driven the way the proxy drives it: greeting, then the request on
 * the remaining bytes, each fed with every prefix length so NEED_MORE paths are exercised too.
 *
 * Properties checked: consumed never exceeds the input; NEED_MORE consumes nothing; a DONE
 * request is CONNECT with a non-zero port and a non-empty NUL-terminated host without the
 * refused bytes (whitespace, '/', '\\', '@', '#', '?', '%'); a refusal carries reply 07 or 08;
 * a parse is a pure function of the bytes (a longer input never turns DONE into NEED_MORE). */
#include <stdint.h>
#include <string.h>

#include "proxy/socks5.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
        if (!cond)
                __builtin_trap();
}

static void check_request(const uint8_t *b, size_t n)
{
        nx_socks5_request r;
        size_t used = 0;
        uint8_t rep = 0;
        err_t e = ERR_INIT;
        nx_socks5_result res = nx_socks5_parse_request(b, n, &r, &used, &rep, &e);
        check(used <= n);
        switch (res) {
        case NX_SOCKS5_NEED_MORE:
                check(used == 0);
                break;
        case NX_SOCKS5_DONE: {
                check(r.cmd == NX_SOCKS5_CMD_CONNECT && r.port != 0);
                size_t hl = strnlen(r.host, sizeof(r.host));
                check(hl > 0 && hl < sizeof(r.host));
                if (!r.is_ip)
                        for (size_t i = 0; i < hl; i++)
                                check((unsigned char)r.host[i] > 0x20 &&
                                      !strchr("/\\@#?%", r.host[i]));
                /* more bytes never change a complete parse */
                nx_socks5_request r2;
                size_t used2 = 0;
                uint8_t rep2 = 0;
                err_t e2 = ERR_INIT;
                check(nx_socks5_parse_request(b, used, &r2, &used2, &rep2, &e2) ==
                      NX_SOCKS5_DONE);
                check(used2 == used && strcmp(r2.host, r.host) == 0);
                break;
        }
        case NX_SOCKS5_REPLY_AND_CLOSE:
                check(rep == NX_SOCKS5_REP_CMD_UNSUPPORTED ||
                      rep == NX_SOCKS5_REP_ATYP_UNSUPPORTED);
                break;
        case NX_SOCKS5_CLOSE:
                break;
        default:
                check(0);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size > 4096)
                return 0;
        size_t used = 0;
        err_t e = ERR_INIT;
        nx_socks5_result g = nx_socks5_parse_greeting(data, size, &used, &e);
        check(used <= size);
        if (g == NX_SOCKS5_NEED_MORE)
                check(used == 0);
        if (g != NX_SOCKS5_DONE)
                return 0;
        const uint8_t *rest = data + used;
        size_t n = size - used;
        for (size_t k = 0; k <= n && k < 300; k++)
                check_request(rest, k);
        check_request(rest, n);
        return 0;
}
