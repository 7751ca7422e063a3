/* proxy/socks5.c — SOCKS5 greeting/request parsing (see socks5.h; RFC 1928, nexus §7.5, D14). */
#include "proxy/socks5.h"

#include <arpa/inet.h>
#include <string.h>

nx_socks5_result nx_socks5_parse_greeting(const uint8_t *buf, size_t len, size_t *consumed,
                                          err_t *err)
{
        *consumed = 0;
        if (len < 2)
                return NX_SOCKS5_NEED_MORE;
        if (buf[0] != NX_SOCKS5_VERSION) {
                err_set(err, "socks5: bad version 0x%02x in greeting", buf[0]);
                return NX_SOCKS5_CLOSE;
        }
        size_t n = buf[1];
        if (len < 2 + n)
                return NX_SOCKS5_NEED_MORE;
        *consumed = 2 + n;
        for (size_t i = 0; i < n; i++)
                if (buf[2 + i] == 0x00)
                        return NX_SOCKS5_DONE;
        err_set(err, "socks5: client offers no acceptable auth method (only no-auth)");
        return NX_SOCKS5_REPLY_AND_CLOSE;
}

/* §7.5 step 3: bytes that never belong in a host name we would resolve. '%' too: a zone id. */
static bool domain_ok(const uint8_t *d, size_t n)
{
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++) {
                uint8_t c = d[i];
                if (c <= 0x20 || c == 0x7f || c == '/' || c == '\\' || c == '@' || c == '#' ||
                    c == '?' || c == '%')
                        return false;
        }
        return true;
}

nx_socks5_result nx_socks5_parse_request(const uint8_t *buf, size_t len,
                                         nx_socks5_request *out, size_t *consumed,
                                         uint8_t *reply, err_t *err)
{
        memset(out, 0, sizeof(*out));
        *consumed = 0;
        *reply = NX_SOCKS5_REP_FAILURE;
        if (len < 4)
                return NX_SOCKS5_NEED_MORE;
        if (buf[0] != NX_SOCKS5_VERSION || buf[2] != 0x00) {
                err_set(err, "socks5: bad version or reserved byte in request");
                return NX_SOCKS5_CLOSE;
        }
        out->cmd = buf[1];
        out->atyp = buf[3];
        size_t need, alen;
        const uint8_t *a;
        switch (buf[3]) {
        case NX_SOCKS5_ATYP_IPV4:
                alen = 4;
                need = 4 + alen + 2;
                a = buf + 4;
                break;
        case NX_SOCKS5_ATYP_IPV6:
                alen = 16;
                need = 4 + alen + 2;
                a = buf + 4;
                break;
        case NX_SOCKS5_ATYP_DOMAIN:
                if (len < 5)
                        return NX_SOCKS5_NEED_MORE;
                alen = buf[4];
                need = 5 + alen + 2;
                a = buf + 5;
                break;
        default:
                /* the address length is unknown, so nothing more can be read */
                *reply = NX_SOCKS5_REP_ATYP_UNSUPPORTED;
                err_set(err, "socks5: unsupported address type 0x%02x", buf[3]);
                return NX_SOCKS5_REPLY_AND_CLOSE;
        }
        if (len < need)
                return NX_SOCKS5_NEED_MORE;
        *consumed = need;
        out->port = (uint16_t)((buf[need - 2] << 8) | buf[need - 1]);
        bool addr_ok = true;
        if (buf[3] == NX_SOCKS5_ATYP_DOMAIN) {
                addr_ok = domain_ok(a, alen);
                if (addr_ok) {
                        memcpy(out->host, a, alen);
                        out->host[alen] = '\0';
                }
        } else {
                out->is_ip = true;
                if (!inet_ntop(buf[3] == NX_SOCKS5_ATYP_IPV4 ? AF_INET : AF_INET6, a, out->host,
                               sizeof(out->host)))
                        addr_ok = false;
        }
        if (out->cmd != NX_SOCKS5_CMD_CONNECT) {
                *reply = NX_SOCKS5_REP_CMD_UNSUPPORTED;
                err_set(err, "socks5: command 0x%02x not supported (CONNECT only)", out->cmd);
                return NX_SOCKS5_REPLY_AND_CLOSE;
        }
        if (!addr_ok) {
                out->host[0] = '\0';
                *reply = NX_SOCKS5_REP_ATYP_UNSUPPORTED;
                err_set(err, "socks5: malformed destination name");
                return NX_SOCKS5_REPLY_AND_CLOSE;
        }
        if (out->port == 0) {
                *reply = NX_SOCKS5_REP_ATYP_UNSUPPORTED;
                err_set(err, "socks5: destination port 0");
                return NX_SOCKS5_REPLY_AND_CLOSE;
        }
        return NX_SOCKS5_DONE;
}

void nx_socks5_reply(uint8_t rep, uint8_t out[NX_SOCKS5_REPLY_LEN])
{
        memset(out, 0, NX_SOCKS5_REPLY_LEN);
        out[0] = NX_SOCKS5_VERSION;
        out[1] = rep;
        out[3] = NX_SOCKS5_ATYP_IPV4;
}
