/* agent/egress_report.c — egress audit records → "egress" log chunks (see egress_report.h). */
#include "agent/egress_report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/json.h"
#include "core/str.h"

struct nx_egress_chunk_node {
        struct nx_egress_chunk_node *next;
        int64_t seq;
        bool truncated;
        size_t len;
        uint8_t *bytes;
};

struct nx_egress_report {
        size_t chunk_bytes;
        int64_t cap_bytes;
        buf open;                       /* lines of the batch not sealed yet */
        bool open_truncated;
        struct nx_egress_chunk_node *head, *tail;       /* sealed, FIFO */
        struct nx_egress_chunk_node *out;               /* handed out, not done yet */
        int64_t next_seq;
        uint64_t records, dropped, bytes;
        bool truncated, finished;
};

int nx_egress_report_new(const nx_egress_report_cfg *cfg, nx_egress_report **out, err_t *err)
{
        nx_egress_report_cfg c = { 0, 0 };
        if (cfg)
                c = *cfg;
        if (c.chunk_bytes == 0)
                c.chunk_bytes = NX_EGRESS_CHUNK_DEFAULT;
        if (c.chunk_bytes < NX_EGRESS_LINE_MAX || c.chunk_bytes > NX_EGRESS_CHUNK_MAX)
                return err_set(err, "egress report: chunk_bytes %zu out of range %d-%d",
                               c.chunk_bytes, NX_EGRESS_LINE_MAX, NX_EGRESS_CHUNK_MAX);
        if (c.cap_bytes < 0)
                return err_set(err, "egress report: cap_bytes must be >= 0");
        if (c.cap_bytes == 0)
                c.cap_bytes = NX_EGRESS_CAP_DEFAULT;
        nx_egress_report *r = calloc(1, sizeof(*r));
        if (!r)
                return err_errno(err, ENOMEM, "egress report");
        r->chunk_bytes = c.chunk_bytes;
        r->cap_bytes = c.cap_bytes;
        r->open = BUF_INIT(c.chunk_bytes);
        *out = r;
        return 0;
}

static void node_free(struct nx_egress_chunk_node *n)
{
        if (!n)
                return;
        free(n->bytes);
        free(n);
}

void nx_egress_report_free(nx_egress_report *r)
{
        if (!r)
                return;
        struct nx_egress_chunk_node *lists[2] = { r->head, r->out };
        for (size_t i = 0; i < 2; i++) {
                struct nx_egress_chunk_node *n = lists[i];
                while (n) {
                        struct nx_egress_chunk_node *next = n->next;
                        node_free(n);
                        n = next;
                }
        }
        buf_free(&r->open);
        free(r);
}

void nx_egress_report_flush(nx_egress_report *r)
{
        if (!r || r->open.len == 0)
                return;
        struct nx_egress_chunk_node *n = calloc(1, sizeof(*n));
        if (!n)
                return;         /* the batch stays open; a later flush retries */
        size_t len = 0;
        n->bytes = (uint8_t *)buf_steal(&r->open, &len);
        if (!n->bytes) {
                free(n);
                return;
        }
        n->len = len;
        n->seq = r->next_seq++;
        n->truncated = r->open_truncated;
        r->open_truncated = false;
        if (r->tail)
                r->tail->next = n;
        else
                r->head = n;
        r->tail = n;
}

/* Appends one complete line (with '\n') to the open batch, sealing it first if needed. */
static int add_line(nx_egress_report *r, const char *line, size_t len, err_t *err)
{
        if (r->open.len + len > r->chunk_bytes)
                nx_egress_report_flush(r);
        if (r->open.len + len > r->chunk_bytes)
                return err_errno(err, ENOMEM, "egress report: cannot seal batch");
        if (buf_append(&r->open, line, len) < 0)
                return err_errno(err, errno, "egress report: append line");
        return 0;
}

int nx_egress_report_append(nx_egress_report *r, const json_t *record, err_t *err)
{
        if (r->finished) {
                r->dropped++;
                return err_set(err, "egress report: already finished");
        }
        _cleanup_free_ char *s = record ? json_dump_compact(record) : NULL;
        if (!s) {
                r->dropped++;
                return err_set(err, "egress report: cannot serialise record");
        }
        size_t n = strlen(s);
        if (n + 1 > NX_EGRESS_LINE_MAX) {
                r->dropped++;
                return err_set(err, "egress report: record of %zu bytes exceeds %d", n + 1,
                               NX_EGRESS_LINE_MAX);
        }
        if ((int64_t)(r->bytes + n + 1) > r->cap_bytes) {
                r->dropped++;
                r->truncated = true;
                return err_setc(err, ERR_TOO_LARGE, "egress report: cap of %lld bytes reached",
                                (long long)r->cap_bytes);
        }
        s[n] = '\n';    /* json_dump_compact's NUL becomes the line end; length n + 1 */
        if (add_line(r, s, n + 1, err) < 0) {
                r->dropped++;
                return -1;
        }
        r->records++;
        r->bytes += n + 1;
        return 0;
}

void nx_egress_report_audit_cb(void *ud, json_t *record)
{
        err_t e = ERR_INIT;
        (void)nx_egress_report_append(ud, record, &e);
}

void nx_egress_report_finish(nx_egress_report *r)
{
        if (!r || r->finished)
                return;
        r->finished = true;
        if (r->dropped > 0) {
                char line[96];
                int n = str_printf(line, sizeof(line), "{\"truncated\":true,\"dropped\":%llu}\n",
                                   (unsigned long long)r->dropped);
                err_t e = ERR_INIT;
                if (n > 0 && add_line(r, line, (size_t)n, &e) == 0) {
                        r->open_truncated = true;
                        r->bytes += (size_t)n;
                }
                r->truncated = true;
        }
        nx_egress_report_flush(r);
}

bool nx_egress_report_next(nx_egress_report *r, nx_egress_chunk *out)
{
        memset(out, 0, sizeof(*out));
        struct nx_egress_chunk_node *n = r->head;
        if (!n)
                return false;
        r->head = n->next;
        if (!r->head)
                r->tail = NULL;
        n->next = r->out;
        r->out = n;
        out->seq = n->seq;
        out->bytes = n->bytes;
        out->len = n->len;
        out->truncated = n->truncated;
        out->node_ = n;
        return true;
}

/* Unlinks a handed-out node; false if it is not one of ours (then it is left alone). */
static bool out_unlink(nx_egress_report *r, struct nx_egress_chunk_node *n)
{
        for (struct nx_egress_chunk_node **pp = &r->out; *pp; pp = &(*pp)->next) {
                if (*pp == n) {
                        *pp = n->next;
                        n->next = NULL;
                        return true;
                }
        }
        return false;
}

void nx_egress_report_chunk_done(nx_egress_report *r, nx_egress_chunk *c)
{
        if (!c || !c->node_)
                return;
        if (out_unlink(r, c->node_))
                node_free(c->node_);
        memset(c, 0, sizeof(*c));
}

void nx_egress_report_chunk_requeue(nx_egress_report *r, nx_egress_chunk *c)
{
        if (!c || !c->node_)
                return;
        struct nx_egress_chunk_node *n = c->node_;
        if (out_unlink(r, n)) {
                n->next = r->head;
                r->head = n;
                if (!r->tail)
                        r->tail = n;
        }
        memset(c, 0, sizeof(*c));
}

json_t *nx_egress_chunk_to_json(const nx_egress_chunk *c, err_t *err)
{
        if (!c || !c->node_) {
                err_set(err, "egress chunk was not handed out");
                return NULL;
        }
        _cleanup_free_ char *b64 = base64_encode(c->bytes, c->len);
        if (!b64) {
                err_errno(err, ENOMEM, "egress chunk: base64");
                return NULL;
        }
        json_t *j = json_object();
        if (!j || json_object_set_new(j, "stream", json_string(NX_EGRESS_STREAM)) < 0 ||
            json_object_set_new(j, "seq", json_integer(c->seq)) < 0 ||
            json_object_set_new(j, "bytes", json_string(b64)) < 0 ||
            (c->truncated && json_object_set_new(j, "truncated", json_true()) < 0)) {
                json_decref(j);
                err_errno(err, ENOMEM, "egress chunk: json");
                return NULL;
        }
        return j;
}

void nx_egress_report_stats_get(const nx_egress_report *r, nx_egress_report_stats *out)
{
        memset(out, 0, sizeof(*out));
        if (!r)
                return;
        out->records = r->records;
        out->dropped = r->dropped;
        out->bytes = r->bytes;
        out->next_seq = r->next_seq;
        out->truncated = r->truncated;
        out->finished = r->finished;
}
