/* tests/unit/test_ms_http_client.h — a tiny libcurl client for the ms_http server tests.
 * The request target is sent verbatim (CURLOPT_REQUEST_TARGET), so tests can send malformed
 * percent-encoding that a URL parser would refuse or rewrite. */
#pragma once
#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"

typedef struct http_resp {
        long status;
        buf body;
        buf headers;
} http_resp;

static inline void http_resp_free(http_resp *r)
{
        buf_free(&r->body);
        buf_free(&r->headers);
}

static inline size_t http_collect(char *p, size_t size, size_t n, void *ud)
{
        buf *b = ud;
        if (buf_append(b, p, size * n) < 0)
                return 0;
        return size * n;
}

typedef struct http_chunked_src {
        const char *data;
        size_t len;
        size_t off;
} http_chunked_src;

static inline size_t http_read_chunk(char *out, size_t size, size_t n, void *ud)
{
        http_chunked_src *s = ud;
        size_t room = size * n, left = s->len - s->off;
        size_t k = left < room ? left : room;
        if (k > 100)
                k = 100;        /* many small chunks */
        memcpy(out, s->data + s->off, k);
        s->off += k;
        return k;
}

typedef struct http_opts {
        const char *const *headers;    /* NULL-terminated "Name: value" list */
        const char *body;
        size_t body_len;
        bool chunked;                  /* send body with Transfer-Encoding: chunked */
        CURL *handle;                  /* reuse (keep-alive) when set */
} http_opts;

/* Performs one request against 127.0.0.1:port; returns the CURLcode. */
static inline int http_do(uint16_t port, const char *method, const char *target,
                          const http_opts *o, http_resp *r)
{
        static const http_opts none = { 0 };
        if (!o)
                o = &none;
        r->status = 0;
        r->body = BUF_INIT(8 * 1024 * 1024);
        r->headers = BUF_INIT(64 * 1024);
        CURL *c = o->handle ? o->handle : curl_easy_init();
        if (!c)
                return CURLE_FAILED_INIT;
        char url[64];
        if (snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)port) < 0)
                return CURLE_FAILED_INIT;
        struct curl_slist *hl = NULL;
        for (size_t i = 0; o->headers && o->headers[i]; i++)
                hl = curl_slist_append(hl, o->headers[i]);
        http_chunked_src src = { o->body, o->body_len, 0 };
        if (o->chunked) {
                hl = curl_slist_append(hl, "Transfer-Encoding: chunked");
                curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
                curl_easy_setopt(c, CURLOPT_READFUNCTION, http_read_chunk);
                curl_easy_setopt(c, CURLOPT_READDATA, &src);
        } else if (o->body) {
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, o->body);
                curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
        }
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_REQUEST_TARGET, target);
        if (strcmp(method, "HEAD") == 0)
                curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        else
                curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_collect);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, http_collect);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, &r->headers);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_PROXY, "");
        CURLcode rc = curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
        curl_slist_free_all(hl);
        if (!o->handle)
                curl_easy_cleanup(c);
        else
                curl_easy_reset(c);
        return (int)rc;
}

static inline const char *http_body(const http_resp *r)
{
        return r->body.data ? r->body.data : "";
}

/* Value of response header `name` (case-insensitive) copied into out; false when absent. */
static inline bool http_header(const http_resp *r, const char *name, char *out, size_t outsz)
{
        size_t n = strlen(name);
        const char *p = r->headers.data;
        while (p && *p) {
                const char *eol = strstr(p, "\r\n");
                size_t len = eol ? (size_t)(eol - p) : strlen(p);
                if (len > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
                        const char *v = p + n + 1;
                        while (*v == ' ')
                                v++;
                        size_t vl = len - (size_t)(v - p);
                        if (vl >= outsz)
                                vl = outsz - 1;
                        memcpy(out, v, vl);
                        out[vl] = '\0';
                        return true;
                }
                p = eol ? eol + 2 : NULL;
        }
        return false;
}
