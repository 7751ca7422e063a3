/* proxy/httphead.c — bounded HTTP request-head parser (see httphead.h). */
#include "proxy/httphead.h"

#include <string.h>
#include <strings.h>

size_t nx_httphead_end(const char *buf, size_t len)
{
        /* The head ends at the first empty line: "\n" followed by "\n" or "\r\n". */
        for (size_t i = 0; i < len; i++) {
                if (buf[i] != '\n')
                        continue;
                if (i + 1 < len && buf[i + 1] == '\n')
                        return i + 2;
                if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
                        return i + 3;
        }
        return 0;
}

/* RFC 9110 §5.6.2 tchar. */
static bool is_tchar(unsigned char c)
{
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
                return true;
        return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Next line of buf from *pos to end: sets *line and *llen without the terminator. -1 if a line has a CR
 * that is not followed by LF (bare CR is refused, RFC 9112 §2.2). */
static int next_line(const char *buf, size_t end, size_t *pos, const char **line, size_t *llen)
{
        size_t i = *pos;
        while (i < end && buf[i] != '\n')
                i++;
        if (i >= end)
                return -1;
        size_t n = i - *pos;
        if (n > 0 && buf[i - 1] == '\r')
                n--;
        *line = buf + *pos;
        *llen = n;
        *pos = i + 1;
        for (size_t k = 0; k < n; k++)
                if ((*line)[k] == '\r')
                        return -1;
        return 0;
}

static int fail(int *status, int code, err_t *err, const char *msg)
{
        *status = code;
        return err_set(err, "%s", msg);
}

static int parse_request_line(const char *l, size_t n, nx_httphead *out, int *status,
                              err_t *err)
{
        size_t i = 0;
        while (i < n && is_tchar((unsigned char)l[i]))
                i++;
        if (i == 0 || i >= n || l[i] != ' ')
                return fail(status, 400, err, "malformed request line (method)");
        if (i > NX_HTTPHEAD_METHOD_MAX)
                return fail(status, 400, err, "method too long");
        out->method = (nx_http_slice){ l, i };
        size_t t0 = ++i;
        while (i < n && l[i] != ' ') {
                unsigned char c = (unsigned char)l[i];
                if (c <= 0x20 || c == 0x7f)
                        return fail(status, 400, err, "control byte in request target");
                i++;
        }
        if (i == t0 || i >= n)
                return fail(status, 400, err, "malformed request line (target)");
        out->target = (nx_http_slice){ l + t0, i - t0 };
        i++;
        const char *v = l + i;
        size_t vn = n - i;
        if (vn != 8 || memcmp(v, "HTTP/1.", 7) != 0) {
                if (vn >= 5 && memcmp(v, "HTTP/", 5) == 0)
                        return fail(status, 505, err, "HTTP version not supported");
                return fail(status, 400, err, "malformed request line (version)");
        }
        if (v[7] == '0')
                out->minor = 0;
        else if (v[7] == '1')
                out->minor = 1;
        else
                return fail(status, 505, err, "HTTP version not supported");
        return 0;
}

int nx_httphead_parse(const char *buf, size_t len, nx_httphead *out, int *status, err_t *err)
{
        memset(out, 0, sizeof(*out));
        *status = 0;
        size_t end = nx_httphead_end(buf, len);
        if (end == 0)
                return fail(status, 400, err, "incomplete request head");
        size_t pos = 0;
        const char *l;
        size_t n;
        if (next_line(buf, end, &pos, &l, &n) < 0)
                return fail(status, 400, err, "bare CR in request head");
        if (n == 0)
                return fail(status, 400, err, "empty request line");
        if (parse_request_line(l, n, out, status, err) < 0)
                return -1;
        for (;;) {
                if (next_line(buf, end, &pos, &l, &n) < 0)
                        return fail(status, 400, err, "bare CR in request head");
                if (n == 0)
                        break;
                if (l[0] == ' ' || l[0] == '\t')
                        return fail(status, 400, err, "obsolete line folding in header");
                size_t i = 0;
                while (i < n && is_tchar((unsigned char)l[i]))
                        i++;
                if (i == 0 || i >= n || l[i] != ':')
                        return fail(status, 400, err, "malformed header line");
                nx_http_slice name = { l, i };
                i++;
                while (i < n && (l[i] == ' ' || l[i] == '\t'))
                        i++;
                size_t ve = n;
                while (ve > i && (l[ve - 1] == ' ' || l[ve - 1] == '\t'))
                        ve--;
                for (size_t k = i; k < ve; k++) {
                        unsigned char c = (unsigned char)l[k];
                        if ((c < 0x20 && c != '\t') || c == 0x7f)
                                return fail(status, 400, err, "control byte in header value");
                }
                if (out->n_headers >= NX_HTTPHEAD_MAX_HEADERS)
                        return fail(status, 431, err, "too many header fields");
                out->headers[out->n_headers].name = name;
                out->headers[out->n_headers].value = (nx_http_slice){ l + i, ve - i };
                out->n_headers++;
        }
        out->head_len = end;
        return 0;
}

bool nx_http_slice_eq(nx_http_slice s, const char *lit)
{
        size_t n = strlen(lit);
        return s.len == n && memcmp(s.p, lit, n) == 0;
}

bool nx_http_slice_ieq(nx_http_slice s, const char *lit)
{
        size_t n = strlen(lit);
        return s.len == n && (n == 0 || strncasecmp(s.p, lit, n) == 0);
}

const nx_http_header *nx_httphead_get(const nx_httphead *h, const char *name, size_t *count)
{
        const nx_http_header *first = NULL;
        size_t c = 0;
        for (size_t i = 0; i < h->n_headers; i++) {
                if (!nx_http_slice_ieq(h->headers[i].name, name))
                        continue;
                if (!first)
                        first = &h->headers[i];
                c++;
        }
        if (count)
                *count = c;
        return first;
}

static const char *const hop_by_hop[] = {
        "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "TE",
        "Trailers", "Transfer-Encoding", "Upgrade", "Proxy-Connection",
};

bool nx_http_is_hop_by_hop(nx_http_slice name)
{
        for (size_t i = 0; i < sizeof(hop_by_hop) / sizeof(hop_by_hop[0]); i++)
                if (nx_http_slice_ieq(name, hop_by_hop[i]))
                        return true;
        return false;
}

bool nx_httphead_connection_lists(const nx_httphead *h, nx_http_slice name)
{
        for (size_t i = 0; i < h->n_headers; i++) {
                if (!nx_http_slice_ieq(h->headers[i].name, "Connection"))
                        continue;
                nx_http_slice v = h->headers[i].value;
                size_t k = 0;
                while (k < v.len) {
                        while (k < v.len && (v.p[k] == ',' || v.p[k] == ' ' || v.p[k] == '\t'))
                                k++;
                        size_t t0 = k;
                        while (k < v.len && v.p[k] != ',')
                                k++;
                        size_t t1 = k;
                        while (t1 > t0 && (v.p[t1 - 1] == ' ' || v.p[t1 - 1] == '\t'))
                                t1--;
                        if (t1 > t0 && t1 - t0 == name.len &&
                            strncasecmp(v.p + t0, name.p, name.len) == 0)
                                return true;
                }
        }
        return false;
}

int nx_http_absolute_split(nx_http_slice target, nx_http_slice *authority, nx_http_slice *path,
                           err_t *err)
{
        static const char scheme[] = "http://";
        const size_t sl = sizeof(scheme) - 1;
        if (target.len < sl || strncasecmp(target.p, scheme, sl) != 0)
                return err_set(err, "not an absolute http:// URI");
        size_t i = sl;
        size_t a0 = i;
        while (i < target.len && target.p[i] != '/' && target.p[i] != '?' && target.p[i] != '#')
                i++;
        if (i == a0)
                return err_set(err, "empty authority in URI");
        if (memchr(target.p + a0, '@', i - a0))
                return err_set(err, "userinfo in URI is not allowed");
        if (memchr(target.p + i, '#', target.len - i))
                return err_set(err, "fragment in request target");
        *authority = (nx_http_slice){ target.p + a0, i - a0 };
        *path = (nx_http_slice){ target.p + i, target.len - i };
        return 0;
}
