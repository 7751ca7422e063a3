/* proto/allowlist.h — the egress allowlist: entry grammar, matcher, and the proxy's
 * destination-authority parser (nexus §7.3, §7.7 = mothership §6.3). ONE implementation shared
 * by the control plane and the node daemon, so both always agree on what an entry means.
 *
 * Accepted entry: "[*.]host:port" after trimming outer whitespace, where port is [0-9]{1,5}
 * in 1-65535 and host (trimmed, one trailing '.' dropped, lower-cased) is "localhost" or two or
 * more labels of [a-z0-9-]{1,63} not starting or ending with '-'. Whole entry at most 255 bytes.
 * Refused, with the ADVISED stricter choices of §7.7: '+', '-', spaces or more than 5 digits in
 * the port; any IP literal ([bracketed], containing ':', or anything inet_aton/inet_pton would
 * read as an address: "1.2.3.4", "2130706433", "0177.0.0.1", "0x7f.1", "::1"); "*.localhost".
 *
 * Matching: the destination host is normalised the same way; ports must be equal; an exact
 * entry matches only its host; "*.d" matches any h != d ending in ".d" (any depth). A
 * destination that is not a plausible DNS name (longer than 253, empty or over-long labels,
 * bytes outside [A-Za-z0-9_-.]) never matches. No IDN, CIDR or port ranges (DESIGN V2). */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/error.h"

#define ALLOW_ENTRY_MAX_LEN 255      /* schema maxLength */
#define ALLOW_HOST_MAX_LEN 253       /* DNS name in text form */
#define ALLOWLIST_MAX_ENTRIES 4096   /* hard cap on one capability's list */

typedef struct allow_entry {
        char host[ALLOW_HOST_MAX_LEN + 1];   /* normalised, without the "*." */
        uint16_t port;                       /* 1-65535 */
        bool wildcard;                       /* entry was "*.host:port" */
} allow_entry;

typedef struct allowlist {
        allow_entry *entries;
        size_t n;
} allowlist;

/* Parses one entry. Messages (spec §7.7): "invalid allowlist entry format, expected host:port",
 * "invalid port \"x\"", "port out of range: 70000", "IP literal is not allowed in V1:
 * \"1.2.3.4\"", "invalid host: \"-a.com\"". Returns 0 or -1 with err set (*out undefined). */
int allow_entry_parse(const char *s, allow_entry *out, err_t *err);

/* Canonical "[*.]host:port" into out. Returns its length, or -1 if it does not fit
 * (out then holds a truncated, NUL-terminated prefix when outsz > 0). */
int allow_entry_format(const allow_entry *e, char *out, size_t outsz);

/* Does destination host:port match the entry? NULL arguments never match. */
bool allow_entry_match(const allow_entry *e, const char *host, uint16_t port);

/* Parses a JSON array of entry strings (duplicates allowed here; uniqueness is a schema rule,
 * see netcap_validate). Errors name the index: "allow[2]: invalid port \"x\"". On success *out
 * owns a fresh list (free with allowlist_free); on failure *out is empty. */
int allowlist_parse_json(const json_t *arr, allowlist *out, err_t *err);

/* True if any entry matches. NULL or empty list never matches. */
bool allowlist_match(const allowlist *l, const char *host, uint16_t port);

/* Frees the entries and leaves an empty list. Safe on an empty or already-freed list. */
void allowlist_free(allowlist *l);

/* Parses a proxy destination authority of len bytes (not NUL-terminated; nexus §7.3, vectors
 * 32-33): "host:port", "host" (→ default_port; default_port 0 means a port is required),
 * "[v6]:port" or "[v6]" (brackets removed). Refused: empty input or host, non-digit, signed,
 * spaced, 0 or > 65535 ports, an unbracketed host with ':' (IPv6 must be bracketed), a zone id,
 * unbalanced brackets, bracket content that is not IPv6, and host bytes outside
 * [A-Za-z0-9._-] (no whitespace, '/', '@', '%', NUL ...). The host is copied as given (not
 * normalised). Returns 0, or -1 with err set. */
int authority_parse(const char *s, size_t len, uint16_t default_port, char *host, size_t hostsz,
                    uint16_t *port, err_t *err);

/* Quotes len bytes of untrusted text for an error message: printable ASCII kept, '"' and '\\'
 * escaped, other bytes as \xNN, cut with "..." to fit outsz. Always NUL-terminates (outsz > 0).
 * Returns out. Shared by the proto validators (netcap, fscap). */
const char *allow_quote(const char *s, size_t len, char *out, size_t outsz);
