/* tests/fuzz/fuzz_allowlist.c — libFuzzer target for the allowlist grammar, the proxy's
 * authority parser and the address helpers (proto/allowlist.h, addr.h, netcap.h).
 *
 * Beyond "no crash", it checks properties and traps when one breaks:
 *  - an accepted entry's canonical form re-parses to the same entry, satisfies the schema
 *    pattern, is at most 255 bytes, never names an IP literal, and matches its own host:port
 *    (a wildcard: a sub-domain, never its apex; another port never);
 *  - an accepted authority, re-rendered ("host:port" or "[v6]:port"), parses back the same;
 *  - every strict address is also a literal for the allowlist (strict ⊂ loose);
 *  - a capability that validates builds a policy that allows its own entry. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/addr.h"
#include "proto/allowlist.h"
#include "proto/netcap.h"

#define FUZZ_MAX 1024

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
        if (!cond)
                __builtin_trap();
}

static void entry_properties(const char *s)
{
        allow_entry e, again;
        err_t err = ERR_INIT;
        if (allow_entry_parse(s, &e, &err) < 0) {
                check(err_is_set(&err) && err.msg[0] != '\0');
                return;
        }
        char canon[ALLOW_ENTRY_MAX_LEN + 16];
        int n = allow_entry_format(&e, canon, sizeof(canon));
        check(n > 0 && n <= ALLOW_ENTRY_MAX_LEN);
        check(netcap_entry_pattern_ok(canon, (size_t)n));
        check(allow_entry_parse(canon, &again, &err) == 0);
        check(strcmp(again.host, e.host) == 0 && again.port == e.port &&
              again.wildcard == e.wildcard);
        check(!host_is_ip_literal(e.host));
        check(e.port >= 1);
        if (e.port < 65535)
                check(!allow_entry_match(&e, e.host, (uint16_t)(e.port + 1)));
        if (!e.wildcard) {
                check(allow_entry_match(&e, e.host, e.port));
        } else {
                char sub[ALLOW_HOST_MAX_LEN + 8];
                check(!allow_entry_match(&e, e.host, e.port));
                int w = snprintf(sub, sizeof(sub), "a.%s", e.host);
                if (w > 0 && (size_t)w <= ALLOW_HOST_MAX_LEN)
                        check(allow_entry_match(&e, sub, e.port));
        }
}

static void authority_properties(const char *s, size_t len)
{
        char host[ALLOW_HOST_MAX_LEN + 1], host2[ALLOW_HOST_MAX_LEN + 1];
        uint16_t port = 0, port2 = 0;
        err_t err = ERR_INIT;
        if (authority_parse(s, len, 443, host, sizeof(host), &port, &err) < 0) {
                check(err_is_set(&err));
                return;
        }
        check(port >= 1 && host[0] != '\0');
        char again[ALLOW_HOST_MAX_LEN + 16];
        int w = strchr(host, ':') ? snprintf(again, sizeof(again), "[%s]:%u", host, (unsigned)port)
                                  : snprintf(again, sizeof(again), "%s:%u", host, (unsigned)port);
        check(w > 0 && (size_t)w < sizeof(again));
        check(authority_parse(again, (size_t)w, 443, host2, sizeof(host2), &port2, &err) == 0);
        check(strcmp(host, host2) == 0 && port == port2);
}

static void capability_properties(const uint8_t *data, size_t size)
{
        json_t *str = json_stringn((const char *)data, size);   /* NULL unless valid UTF-8 */
        if (!str)
                return;
        json_t *cap = json_pack("{s:s,s:[o]}", "mode", "allowlist", "allow", str);
        if (!cap)
                return;
        err_t err = ERR_INIT;
        if (netcap_validate(cap, &err) == 0) {
                net_policy p = NET_POLICY_INIT;
                allow_entry e;
                check(net_policy_from_json(cap, &p, &err) == 0);
                check(allow_entry_parse(json_string_value(json_array_get(
                        json_object_get(cap, "allow"), 0)), &e, &err) == 0);
                if (!e.wildcard)
                        check(net_policy_check(&p, e.host, e.port) == NET_REASON_OK);
                check(net_policy_check(&p, "", e.port) == NET_REASON_INVALID_DESTINATION);
                net_policy_free(&p);
        }
        json_decref(cap);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size > FUZZ_MAX)
                size = FUZZ_MAX;
        char *s = malloc(size + 1);
        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = '\0';

        entry_properties(s);
        authority_properties(s, size);
        if (addr_classify_str(s) != ADDR_INVALID)
                check(host_is_ip_literal(s));
        capability_properties(data, size);

        free(s);
        return 0;
}
