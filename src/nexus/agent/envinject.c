/* agent/envinject.c — directive environment, cwd resolution and repo URL rules
 * (spec nexus §5.4, §5.6, §6.1, §6.2). See envinject.h. */
#include "agent/envinject.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/cleanup.h"
#include "core/str.h"

#define REPO_URL_REJECTED "repo_url uses disallowed scheme (only https, http, ssh, git, or " \
                          "scp-like ssh are allowed)"

/* Names the host driver passes through from the daemon's environment (spec §5.6), in order.
 * SSH_AUTH_SOCK only for darwin-automation. Everything else (credentials, tokens, proxy
 * settings of the daemon) stays out of the directive. */
static const char *const inherited_names[] = { "PATH", "HOME", "USER", "LOGNAME", "SHELL",
                                               "TMPDIR", "SSH_AUTH_SOCK", "LANG", "LC_ALL" };

#define N_STANDARD 13

const char *nx_env_lang(void)
{
#ifdef __APPLE__
        return "en_US.UTF-8";
#else
        return "C.UTF-8";
#endif
}

bool nx_env_key_valid(const char *key)
{
        if (!key || !((key[0] >= 'A' && key[0] <= 'Z') || (key[0] >= 'a' && key[0] <= 'z') ||
                      key[0] == '_'))
                return false;
        for (const char *p = key + 1; *p; p++)
                if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                      (*p >= '0' && *p <= '9') || *p == '_'))
                        return false;
        return true;
}

void nx_env_free(char **envp)
{
        if (!envp)
                return;
        for (char **p = envp; *p; p++)
                FREE_AND_NULL(*p);
        free(envp);
}

const char *nx_env_get(char *const *envp, const char *key)
{
        size_t n = strlen(key);
        if (!envp)
                return NULL;
        for (char *const *p = envp; *p; p++)
                if (strncmp(*p, key, n) == 0 && (*p)[n] == '=')
                        return *p + n + 1;
        return NULL;
}

static void env_freep(char ***p)
{
        nx_env_free(*p);
        *p = NULL;
}
#define _cleanup_env_ __attribute__((cleanup(env_freep)))

static int standard_fill(const nx_env_vars *v, char **out, err_t *err)
{
        const char *lang = nx_env_lang();
        const char *const kv[N_STANDARD][2] = {
                { "NO_COLOR", "1" },
                { "TERM", "dumb" },
                { "LANG", lang },
                { "LC_ALL", lang },
                { "PAGER", "cat" },
                { "GIT_PAGER", "cat" },
                { "CYBROS_NEXUS", "1" },
                { "CYBROS_DIRECTIVE_ID", v->directive_id },
                { "CYBROS_FACILITY_ID", v->facility_id },
                { "CYBROS_TERRITORY_ID", v->territory_id },
                { "CYBROS_SANDBOX_PROFILE", v->sandbox_profile },
                { "CYBROS_WORKSPACE", v->workspace },
                { "CI", "true" },
        };
        for (size_t i = 0; i < N_STANDARD; i++) {
                const char *val = kv[i][1] ? kv[i][1] : "";
                if (strlen(val) > NX_ENV_VALUE_MAX)
                        return err_setc(err, ERR_TOO_LARGE, "env %s: value longer than %d bytes",
                                        kv[i][0], NX_ENV_VALUE_MAX);
                out[i] = str_dup_printf("%s=%s", kv[i][0], val);
                if (!out[i])
                        return err_errno(err, ENOMEM, "env %s", kv[i][0]);
        }
        return 0;
}

char **nx_env_standard(const nx_env_vars *v, err_t *err)
{
        _cleanup_env_ char **envp = calloc(N_STANDARD + 1, sizeof(char *));
        if (!envp) {
                err_errno(err, ENOMEM, "env");
                return NULL;
        }
        if (standard_fill(v, envp, err) < 0)
                return NULL;
        return steal_ptr(&envp);
}

/* Is name one of the standard variables (which override inherited ones)? */
static bool is_standard_name(char *const *std, const char *name)
{
        return nx_env_get(std, name) != NULL;
}

char **nx_env(const nx_env_vars *v, char *const *parent, err_t *err)
{
        const size_t n_inh = sizeof(inherited_names) / sizeof(inherited_names[0]);
        _cleanup_env_ char **std = nx_env_standard(v, err);
        _cleanup_env_ char **envp = NULL;
        size_t n = 0;

        if (!std)
                return NULL;
        envp = calloc(n_inh + N_STANDARD + 1, sizeof(char *));
        if (!envp) {
                err_errno(err, ENOMEM, "env");
                return NULL;
        }
        for (size_t i = 0; i < n_inh; i++) {
                const char *name = inherited_names[i];
                const char *val;
                if (strcmp(name, "SSH_AUTH_SOCK") == 0 && !v->inherit_ssh_auth_sock)
                        continue;
                if (is_standard_name(std, name))
                        continue;
                val = nx_env_get(parent, name);
                if (!val)
                        continue;
                envp[n] = str_dup_printf("%s=%s", name, val);
                if (!envp[n]) {
                        err_errno(err, ENOMEM, "env %s", name);
                        return NULL;
                }
                n++;
        }
        /* the standard entries move over; std keeps only the NULL slots */
        for (size_t i = 0; std[i]; i++)
                envp[n++] = steal_ptr(&std[i]);
        return steal_ptr(&envp);
}

char *nx_shell_quote(const char *s)
{
        size_t n = strlen(s), quotes = 0, w = 0;
        char *out;

        if (n > NX_SHELL_QUOTE_MAX) {
                errno = EMSGSIZE;
                return NULL;
        }
        for (size_t i = 0; i < n; i++)
                if (s[i] == '\'')
                        quotes++;
        /* each ' becomes the 5 bytes '"'"' (close, double-quoted ', reopen) */
        out = malloc(n + quotes * 4 + 3);
        if (!out)
                return NULL;
        out[w++] = '\'';
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '\'') {
                        memcpy(out + w, "'\"'\"'", 5);
                        w += 5;
                } else {
                        out[w++] = s[i];
                }
        }
        out[w++] = '\'';
        out[w] = '\0';
        return out;
}

char *nx_shell_export(const char *key, const char *value, err_t *err)
{
        _cleanup_free_ char *q = NULL;
        char *line;

        if (!nx_env_key_valid(key)) {
                err_set(err, "invalid env key: \"%.128s\"", key ? key : "");
                return NULL;
        }
        q = nx_shell_quote(value ? value : "");
        if (!q) {
                err_errno(err, errno, "export %s", key);
                return NULL;
        }
        line = str_dup_printf("export %s=%s\n", key, q);
        if (!line)
                err_errno(err, ENOMEM, "export %s", key);
        return line;
}

/* ---- paths ---------------------------------------------------------------------------------- */

int nx_path_clean(const char *in, char *out, size_t outsz)
{
        size_t n = strlen(in), r = 0, w = 0, dotdot = 0;
        bool rooted = n > 0 && in[0] == '/';

#define PUT(c) do { \
        if (w + 1 >= outsz) { \
                if (outsz > 0) \
                        out[0] = '\0'; \
                errno = ENAMETOOLONG; \
                return -1; \
        } \
        out[w++] = (c); \
} while (0)

        if (rooted) {
                PUT('/');
                r = 1;
                dotdot = 1;
        }
        while (r < n) {
                if (in[r] == '/') {
                        r++;
                } else if (in[r] == '.' && (r + 1 == n || in[r + 1] == '/')) {
                        r++;
                } else if (in[r] == '.' && in[r + 1] == '.' && (r + 2 == n || in[r + 2] == '/')) {
                        r += 2;
                        if (w > dotdot) {
                                /* drop the last element */
                                w--;
                                while (w > dotdot && out[w] != '/')
                                        w--;
                        } else if (!rooted) {
                                if (w > 0)
                                        PUT('/');
                                PUT('.');
                                PUT('.');
                                dotdot = w;
                        }
                } else {
                        if ((rooted && w != 1) || (!rooted && w != 0))
                                PUT('/');
                        for (; r < n && in[r] != '/'; r++)
                                PUT(in[r]);
                }
        }
        if (w == 0)
                PUT('.');
        out[w] = '\0';
#undef PUT
        return 0;
}

static bool rel_escapes(const char *cleaned)
{
        return strcmp(cleaned, "..") == 0 || str_has_prefix(cleaned, "../");
}

int nx_resolve_host_cwd(const char *facility_path, const char *cwd, char *out, size_t outsz,
                        err_t *err)
{
        _cleanup_free_ char *rel = NULL;
        _cleanup_free_ char *joined = NULL;
        const char *r;

        if (!facility_path || !*facility_path)
                return err_set(err, "work dir is required");
        if (!cwd)
                cwd = "";
        if (!*cwd || strcmp(cwd, ".") == 0 || strcmp(cwd, NX_WORKSPACE) == 0)
                r = "";
        else if (str_has_prefix(cwd, NX_WORKSPACE "/"))
                r = cwd + strlen(NX_WORKSPACE "/");
        else if (cwd[0] == '/')
                return err_set(err, "cwd must be under /workspace");
        else
                r = cwd;
        while (*r == '/')
                r++;   /* "/workspace//x" is "x", never an absolute path */

        rel = malloc(strlen(r) + 2);
        if (!rel)
                return err_errno(err, ENOMEM, "cwd");
        if (nx_path_clean(r, rel, strlen(r) + 2) < 0)
                return err_errno(err, errno, "cwd");
        if (rel_escapes(rel))
                return err_set(err, "cwd escapes workspace");
        joined = str_dup_printf("%s/%s", facility_path, rel);
        if (!joined)
                return err_errno(err, ENOMEM, "cwd");
        if (nx_path_clean(joined, out, outsz) < 0)
                return err_errno(err, ENAMETOOLONG, "cwd \"%.128s\"", cwd);
        return 0;
}

int nx_resolve_sandbox_cwd(const char *cwd, char *out, size_t outsz, err_t *err)
{
        _cleanup_free_ char *joined = NULL;

        if (!cwd || !*cwd || strcmp(cwd, ".") == 0)
                cwd = NX_WORKSPACE;
        if (cwd[0] == '/')
                joined = strdup(cwd);
        else
                joined = str_dup_printf("%s/%s", NX_WORKSPACE, cwd);
        if (!joined)
                return err_errno(err, ENOMEM, "cwd");
        if (nx_path_clean(joined, out, outsz) < 0)
                return err_errno(err, ENAMETOOLONG, "cwd \"%.128s\"", cwd);
        if (strcmp(out, NX_WORKSPACE) != 0 && !str_has_prefix(out, NX_WORKSPACE "/")) {
                out[0] = '\0';
                return err_set(err, "cwd \"%.256s\" escapes workspace", cwd);
        }
        return 0;
}

/* ---- repository URLs (spec §5.4) ------------------------------------------------------------ */

static bool is_space(char c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static bool is_hex(char c)
{
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_alpha(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* "scheme://rest": the scheme must be RFC 3986's grammar and one of the four; the "://"
 * must follow the scheme directly. Rest: valid %-escapes, numeric port if any. */
static bool url_form_ok(const char *t, size_t len, const char *sep)
{
        static const char *const schemes[] = { "https", "http", "ssh", "git" };
        size_t slen = (size_t)(sep - t);
        const char *rest = sep + 3, *end = t + len, *auth_end, *host, *p;
        bool ok = false;

        if (slen == 0 || !is_alpha(t[0]))
                return false;
        for (size_t i = 1; i < slen; i++)
                if (!is_alpha(t[i]) && !(t[i] >= '0' && t[i] <= '9') && t[i] != '+' &&
                    t[i] != '-' && t[i] != '.')
                        return false;
        for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
                if (strlen(schemes[i]) == slen && strncasecmp(t, schemes[i], slen) == 0)
                        ok = true;
        if (!ok)
                return false;
        for (p = rest; p < end; p++)
                if (*p == '%' && (end - p < 3 || !is_hex(p[1]) || !is_hex(p[2])))
                        return false;
        for (auth_end = rest; auth_end < end && *auth_end != '/' && *auth_end != '?' &&
                              *auth_end != '#'; auth_end++)
                ;
        host = rest;
        for (p = rest; p < auth_end; p++)
                if (*p == '@')
                        host = p + 1;
        if (host < auth_end && *host == '[') {
                const char *close = memchr(host, ']', (size_t)(auth_end - host));
                if (!close)
                        return false;
                p = close + 1;
                if (p < auth_end && *p != ':')
                        return false;
        } else {
                const char *colon = NULL;
                for (p = host; p < auth_end; p++)
                        if (*p == ':')
                                colon = p;
                p = colon ? colon : auth_end;
        }
        if (p < auth_end)
                for (p++; p < auth_end; p++)
                        if (*p < '0' || *p > '9')
                                return false;
        return true;
}

/* "user@host:path" (spec §5.4), plus: no '/' or '\' in user (git would treat a '/' before the
 * first ':' as a local path). */
static bool scp_form_ok(const char *t, size_t len)
{
        const char *end = t + len;
        const char *at = memchr(t, '@', len);
        const char *host, *colon, *path;
        size_t hlen;

        if (!at || at == t)
                return false;
        for (const char *p = t; p < at; p++)
                if (*p == '/' || *p == '\\')
                        return false;
        host = at + 1;
        colon = memchr(host, ':', (size_t)(end - host));
        if (!colon || colon == host)
                return false;
        hlen = (size_t)(colon - host);
        path = colon + 1;
        if (path == end || *path == '-' || *host == '-' || t[0] == '-')
                return false;
        if (memchr(host, '/', hlen) || memchr(host, '\\', hlen))
                return false;
        return memchr(host, '.', hlen) || (hlen == 9 && memcmp(host, "localhost", 9) == 0);
}

/* Trims and checks; on success start and len describe the trimmed URL inside url. */
static int repo_url_check_span(const char *url, const char **start, size_t *len, err_t *err)
{
        const char *t, *sep;
        size_t n;

        if (!url)
                return err_set(err, REPO_URL_REJECTED);
        if (strlen(url) > NX_REPO_URL_MAX)
                return err_set(err, "repo_url longer than %d bytes", NX_REPO_URL_MAX);
        t = str_trim(url, strlen(url), &n);
        if (n == 0)
                return err_set(err, REPO_URL_REJECTED);
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)t[i];
                if (is_space((char)c) || c < 0x20 || c == 0x7f)
                        return err_set(err, REPO_URL_REJECTED);
        }
        if (t[0] == '-' || (n >= 5 && strncasecmp(t, "ext::", 5) == 0))
                return err_set(err, REPO_URL_REJECTED);
        /* "<transport>::<address>" (a leading run of scheme characters, then "::") makes git
         * run the remote helper git-remote-<transport>: refused for every transport, not only
         * ext (ours; the reference checks ext:: only) */
        {
                size_t i = 0;
                while (i < n && (is_alpha(t[i]) || (i > 0 && ((t[i] >= '0' && t[i] <= '9') ||
                                                              t[i] == '+' || t[i] == '-' ||
                                                              t[i] == '.'))))
                        i++;
                if (i + 1 < n && t[i] == ':' && t[i + 1] == ':')
                        return err_set(err, REPO_URL_REJECTED);
        }
        sep = NULL;
        for (size_t i = 0; i + 2 < n; i++)
                if (t[i] == ':' && t[i + 1] == '/' && t[i + 2] == '/') {
                        sep = t + i;
                        break;
                }
        if (sep ? !url_form_ok(t, n, sep) : !scp_form_ok(t, n))
                return err_set(err, REPO_URL_REJECTED);
        *start = t;
        *len = n;
        return 0;
}

int nx_repo_url_check(const char *url, err_t *err)
{
        const char *t;
        size_t n;
        return repo_url_check_span(url, &t, &n, err);
}

int nx_repo_url_normalize(const char *url, char *out, size_t outsz, err_t *err)
{
        const char *t;
        size_t n;
        if (repo_url_check_span(url, &t, &n, err) < 0)
                return -1;
        if (str_copyn(out, outsz, t, n) < 0)
                return err_setc(err, ERR_TOO_LARGE, "repo_url does not fit %zu bytes", outsz);
        return 0;
}

int nx_repo_url_redact(const char *url, char *out, size_t outsz)
{
        const char *sep, *at;
        int r;

        if (!url)
                url = "";
        sep = strstr(url, "://");
        if (sep) {
                const char *auth = sep + 3, *auth_end = auth, *last_at = NULL;
                for (; *auth_end && *auth_end != '/' && *auth_end != '?' && *auth_end != '#';
                     auth_end++)
                        if (*auth_end == '@')
                                last_at = auth_end;
                if (last_at)
                        r = str_printf(out, outsz, "%.*s%s", (int)(auth - url), url,
                                       last_at + 1);
                else
                        r = str_copy(out, outsz, url);
        } else {
                at = strchr(url, '@');
                if (at && at > url)
                        r = str_printf(out, outsz, "REDACTED%s", at);
                else
                        r = str_copy(out, outsz, url);
        }
        if (r < 0) {
                /* never leave a truncated (possibly secret-bearing) prefix behind */
                if (str_copy(out, outsz, "REDACTED") < 0 && outsz > 0)
                        out[0] = '\0';
                return -1;
        }
        return 0;
}
