/* proto/netcap.c — NetCapabilityV1 validation and the daemon policy (see netcap.h). */
#include "proto/netcap.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "core/json.h"

#define P "capabilities.net"
#define QUOTE_MAX 128

/* jansson's iterator API takes a non-const object although it does not modify it */
static json_t *unconst(const json_t *j)
{
        return (json_t *)(uintptr_t)j;
}

static bool str_is(const json_t *v, const char *lit)
{
        size_t n = strlen(lit);
        return json_string_length(v) == n && memcmp(json_string_value(v), lit, n) == 0;
}

static size_t utf8_chars(const char *s, size_t len)
{
        size_t n = 0;
        for (size_t i = 0; i < len; i++)
                if (((unsigned char)s[i] & 0xc0) != 0x80)
                        n++;
        return n;
}

static bool is_alnum(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* L = [A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])? */
static bool schema_label_ok(const char *s, size_t n)
{
        if (n == 0 || n > 63 || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
                return false;
        for (size_t i = 1; i + 1 < n; i++)
                if (!is_alnum(s[i]) && s[i] != '-')
                        return false;
        return true;
}

bool netcap_entry_pattern_ok(const char *s, size_t len)
{
        if (!s)
                return false;
        const char *colon = memrchr(s, ':', len);
        if (!colon)
                return false;
        size_t hlen = (size_t)(colon - s), plen = len - hlen - 1;
        if (plen < 1 || plen > 5)
                return false;
        for (size_t i = 0; i < plen; i++)
                if (colon[1 + i] < '0' || colon[1 + i] > '9')
                        return false;
        if (hlen == 9 && memcmp(s, "localhost", 9) == 0)
                return true;
        const char *h = s;
        if (hlen >= 2 && h[0] == '*' && h[1] == '.') {
                h += 2;
                hlen -= 2;
        }
        size_t labels = 0, start = 0;
        for (size_t i = 0; i <= hlen; i++) {
                if (i == hlen || h[i] == '.') {
                        if (!schema_label_ok(h + start, i - start))
                                return false;
                        labels++;
                        start = i + 1;
                }
        }
        return labels >= 2;
}

static int check_enum(const json_t *v, const char *field, const char *const *allowed,
                      const char *allowed_text, err_t *err)
{
        char q[QUOTE_MAX];
        if (!json_is_string(v))
                return err_set(err, P ".%s: must be a string, got %s", field, json_type_name(v));
        for (size_t i = 0; allowed[i]; i++)
                if (str_is(v, allowed[i]))
                        return 0;
        return err_set(err, P ".%s: must be one of %s, got \"%s\"", field, allowed_text,
                       allow_quote(json_string_value(v), json_string_length(v), q, sizeof(q)));
}

static int check_allow(const json_t *allow, err_t *err)
{
        char q[QUOTE_MAX];
        if (!json_is_array(allow))
                return err_set(err, P ".allow: must be an array, got %s", json_type_name(allow));
        size_t n = json_array_size(allow);
        if (n > ALLOWLIST_MAX_ENTRIES)
                return err_set(err, P ".allow: too many entries (%zu > %d)", n,
                               ALLOWLIST_MAX_ENTRIES);
        /* uniqueItems in linear time: a JSON object keyed by the exact bytes, valued by index */
        _cleanup_json_ json_t *seen = json_object();
        if (!seen)
                return err_errno(err, ENOMEM, P ".allow");
        for (size_t i = 0; i < n; i++) {
                const json_t *v = json_array_get(allow, i);
                if (!json_is_string(v))
                        return err_set(err, P ".allow[%zu]: must be a string, got %s", i,
                                       json_type_name(v));
                const char *s = json_string_value(v);
                size_t len = json_string_length(v);
                if (memchr(s, '\0', len))
                        return err_set(err, P ".allow[%zu]: must not contain NUL", i);
                size_t chars = utf8_chars(s, len);
                if (chars < 4 || chars > ALLOW_ENTRY_MAX_LEN)
                        return err_set(err, P ".allow[%zu]: length %zu out of range 4-%d", i,
                                       chars, ALLOW_ENTRY_MAX_LEN);
                if (!netcap_entry_pattern_ok(s, len))
                        return err_set(err, P ".allow[%zu]: \"%s\" does not match the entry "
                                       "pattern ([*.]dns.name:port or localhost:port)", i,
                                       allow_quote(s, len, q, sizeof(q)));
                allow_entry e;
                if (allow_entry_parse(s, &e, err) < 0)
                        return err_wrap(err, P ".allow[%zu]", i);
                const json_t *prev = json_object_getn(seen, s, len);
                if (prev)
                        return err_set(err, P ".allow[%zu]: duplicate of allow[%lld] (\"%s\")",
                                       i, (long long)json_integer_value(prev),
                                       allow_quote(s, len, q, sizeof(q)));
                if (json_object_setn_new_nocheck(seen, s, len, json_integer((json_int_t)i)) < 0)
                        return err_errno(err, ENOMEM, P ".allow");
        }
        return 0;
}

static bool x_ext_key_ok(const char *k, size_t len)
{
        if (len < 3 || k[0] != 'x' || k[1] != '_')
                return false;
        for (size_t i = 2; i < len; i++)
                if (!is_alnum(k[i]) && k[i] != '_')
                        return false;
        return true;
}

int netcap_validate(const json_t *cap, err_t *err)
{
        static const char *const modes[] = { "none", "allowlist", "unrestricted", NULL };
        static const char *const presets[] = { "off", "loose", "strict", "no_external",
                                               "custom", NULL };
        static const char *const known[] = { "mode", "preset", "allow", "ttl_seconds", "x_ext",
                                             NULL };
        char q[QUOTE_MAX];
        const char *key;
        size_t klen;
        json_t *v;

        if (!json_is_object(cap))
                return err_set(err, P ": must be an object, got %s", json_type_name(cap));
        json_object_keylen_foreach(unconst(cap), key, klen, v) {
                bool ok = false;
                for (size_t i = 0; known[i]; i++)
                        if (strlen(known[i]) == klen && memcmp(key, known[i], klen) == 0)
                                ok = true;
                if (!ok)
                        return err_set(err, P ": unknown field \"%s\"",
                                       allow_quote(key, klen, q, sizeof(q)));
        }

        const json_t *mode = json_object_get(cap, "mode");
        if (!mode)
                return err_set(err, P ": missing required field \"mode\"");
        if (check_enum(mode, "mode", modes, "\"none\", \"allowlist\", \"unrestricted\"",
                       err) < 0)
                return -1;

        const json_t *preset = json_object_get(cap, "preset");
        if (preset && check_enum(preset, "preset", presets,
                                 "\"off\", \"loose\", \"strict\", \"no_external\", \"custom\"",
                                 err) < 0)
                return -1;

        /* allOf if/then/else: a present key counts even when its value is null */
        const json_t *allow = json_object_get(cap, "allow");
        bool is_allowlist = str_is(mode, "allowlist");
        if (is_allowlist && !allow)
                return err_set(err, P ".allow: required when mode is \"allowlist\"");
        if (!is_allowlist && allow)
                return err_set(err, P ".allow: must be absent when mode is \"%s\"",
                               json_string_value(mode));
        if (allow && check_allow(allow, err) < 0)
                return -1;

        const json_t *ttl = json_object_get(cap, "ttl_seconds");
        if (ttl) {
                /* a JSON real (5.0, 1e3) is not an integer here, whatever its value */
                if (!json_is_integer(ttl))
                        return err_set(err, P ".ttl_seconds: must be an integer, got %s",
                                       json_type_name(ttl));
                json_int_t t = json_integer_value(ttl);
                if (t < 1 || t > NETCAP_TTL_MAX)
                        return err_set(err, P ".ttl_seconds: must be 1-%d, got %lld",
                                       NETCAP_TTL_MAX, (long long)t);
        }

        const json_t *ext = json_object_get(cap, "x_ext");
        if (ext) {
                if (!json_is_object(ext))
                        return err_set(err, P ".x_ext: must be an object, got %s",
                                       json_type_name(ext));
                json_object_keylen_foreach(unconst(ext), key, klen, v) {
                        if (!x_ext_key_ok(key, klen))
                                return err_set(err, P ".x_ext: key \"%s\" must match "
                                               "^x_[A-Za-z0-9_]+$",
                                               allow_quote(key, klen, q, sizeof(q)));
                }
        }
        return 0;
}

const char *net_mode_name(net_mode m)
{
        switch (m) {
        case NET_MODE_NONE:
                return "none";
        case NET_MODE_ALLOWLIST:
                return "allowlist";
        case NET_MODE_UNRESTRICTED:
                return "unrestricted";
        case NET_MODE_UNKNOWN:
                return "unknown";
        default:
                return "unknown";
        }
}

int net_policy_from_json(const json_t *cap, net_policy *out, err_t *err)
{
        out->mode = NET_MODE_NONE;
        out->allow.entries = NULL;
        out->allow.n = 0;
        if (!cap || json_is_null(cap))
                return 0;   /* §7.6: capability absent/null → NET_MODE_NONE */
        if (!json_is_object(cap))
                return err_set(err, P ": must be an object, got %s", json_type_name(cap));
        /* {} is what the control plane sends when neither policy nor request set a network
         * (mothership §6.6: "net = {}"): blank means absent, so NET_MODE_NONE — not the
         * INTERNAL_ERROR of an object whose mode is missing or unknown. */
        if (json_object_size(cap) == 0)
                return 0;
        const json_t *mode = json_object_get(cap, "mode");
        net_mode m = NET_MODE_UNKNOWN;
        if (mode && !json_is_null(mode)) {
                if (!json_is_string(mode))
                        return err_set(err, P ".mode: must be a string, got %s",
                                       json_type_name(mode));
                if (str_is(mode, "none"))
                        m = NET_MODE_NONE;
                else if (str_is(mode, "allowlist"))
                        m = NET_MODE_ALLOWLIST;
                else if (str_is(mode, "unrestricted"))
                        m = NET_MODE_UNRESTRICTED;
        }
        if (m == NET_MODE_ALLOWLIST) {
                const json_t *allow = json_object_get(cap, "allow");
                if (allow && !json_is_null(allow) &&
                    allowlist_parse_json(allow, &out->allow, err) < 0)
                        return err_wrap(err, P);
        }
        out->mode = m;
        return 0;
}

net_reason net_policy_check(const net_policy *p, const char *host, uint16_t port)
{
        if (!p)
                return NET_REASON_INTERNAL_ERROR;
        switch (p->mode) {
        case NET_MODE_NONE:
                return NET_REASON_NET_MODE_NONE;
        case NET_MODE_ALLOWLIST:
        case NET_MODE_UNRESTRICTED:
                break;
        case NET_MODE_UNKNOWN:
                return NET_REASON_INTERNAL_ERROR;
        default:
                return NET_REASON_INTERNAL_ERROR;
        }
        if (!host || host[0] == '\0' || port == 0)
                return NET_REASON_INVALID_DESTINATION;
        if (p->mode == NET_MODE_UNRESTRICTED)
                return NET_REASON_OK;
        return allowlist_match(&p->allow, host, port) ? NET_REASON_OK
                                                       : NET_REASON_NOT_IN_ALLOWLIST;
}

void net_policy_free(net_policy *p)
{
        if (!p)
                return;
        allowlist_free(&p->allow);
        p->mode = NET_MODE_NONE;
}
