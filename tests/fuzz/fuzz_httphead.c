/* tests/fuzz/fuzz_httphead.c — libFuzzer target for the egress proxy's HTTP request-head parser
 * (src/nexus/proxy/httphead.h) and the absolute-URI/authority path the proxy runs on its output.
 *
 * Properties checked (trap on violation): the head end lies within the input; every slice of an
 * accepted head lies within the head; no header name is empty; an accepted value holds no CTL
 * but HTAB; the status of a refusal is one of 400/431/505; an accepted authority's port is
 * 1-65535 and its host is non-empty. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/allowlist.h"
#include "proxy/httphead.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
        if (!cond)
                __builtin_trap();
}

static void check_slice(nx_http_slice s, const char *base, size_t len)
{
        check(s.p >= base && s.p + s.len <= base + len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size > 20000)
                return 0;
        const char *buf = (const char *)data;
        size_t end = nx_httphead_end(buf, size);
        check(end <= size);
        static nx_httphead h;
        int status = 0;
        err_t e = ERR_INIT;
        if (nx_httphead_parse(buf, end ? end : size, &h, &status, &e) < 0) {
                check(status == 400 || status == 431 || status == 505);
                return 0;
        }
        check(end > 0 && h.head_len == end);
        check(h.n_headers <= NX_HTTPHEAD_MAX_HEADERS);
        check(h.minor == 0 || h.minor == 1);
        check_slice(h.method, buf, end);
        check_slice(h.target, buf, end);
        check(h.method.len > 0 && h.method.len <= NX_HTTPHEAD_METHOD_MAX);
        for (size_t i = 0; i < h.n_headers; i++) {
                check_slice(h.headers[i].name, buf, end);
                check_slice(h.headers[i].value, buf, end);
                check(h.headers[i].name.len > 0);
                for (size_t k = 0; k < h.headers[i].value.len; k++) {
                        unsigned char c = (unsigned char)h.headers[i].value.p[k];
                        check(c >= 0x20 || c == '\t');
                        check(c != 0x7f);
                }
                (void)nx_httphead_connection_lists(&h, h.headers[i].name);
                (void)nx_http_is_hop_by_hop(h.headers[i].name);
        }
        (void)nx_httphead_get(&h, "Host", NULL);
        char host[256];
        uint16_t port = 0;
        err_t e2 = ERR_INIT;
        if (authority_parse(h.target.p, h.target.len, 443, host, sizeof(host), &port, &e2) == 0)
                check(port >= 1 && host[0] != '\0');
        nx_http_slice a, p;
        err_t e3 = ERR_INIT;
        if (nx_http_absolute_split(h.target, &a, &p, &e3) == 0) {
                check_slice(a, buf, end);
                check_slice(p, buf, end);
                check(a.len > 0 && !memchr(a.p, '@', a.len));
                err_t e4 = ERR_INIT;
                if (authority_parse(a.p, a.len, 80, host, sizeof(host), &port, &e4) == 0)
                        check(port >= 1 && host[0] != '\0');
        }
        return 0;
}
