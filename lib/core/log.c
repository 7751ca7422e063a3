/* core/log.c — see log.h.
 *
 * A record is built twice at most, both times into a fixed stack buffer: first measured, then
 * written. When the full record would pass LOG_RECORD_MAX, every string value gets the same
 * budget C (the largest C for which the shortened strings fit), so short values stay whole and
 * only the long ones are cut; this is "water-filling", and it keeps the fields a reader needs
 * (ids, codes) intact while a huge peer-supplied string gives way. */
#include "core/log.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/clock.h"

/* Escaped bytes kept of a key; keys are constants, this only bounds a mistake. */
#define LOG_KEY_MAX 128
/* Fields past this many are dropped (and the record marked truncated). */
#define LOG_FIELDS_MAX 256

static atomic_int log_min_level = LOG_LEVEL_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *log_file;   /* NULL means stderr; guarded by log_lock */

static const char TRUNCATED_FIELD[] = ",\"truncated\":true";

void log_set_level(log_level level)
{
        atomic_store(&log_min_level, (int)level);
}

log_level log_get_level(void)
{
        return (log_level)atomic_load(&log_min_level);
}

bool log_enabled(log_level level)
{
        return (int)level >= atomic_load(&log_min_level);
}

void log_set_output(FILE *f)
{
        pthread_mutex_lock(&log_lock);
        log_file = f;
        pthread_mutex_unlock(&log_lock);
}

const char *log_level_name(log_level level)
{
        switch (level) {
        case LOG_LEVEL_DEBUG:
                return "debug";
        case LOG_LEVEL_INFO:
                return "info";
        case LOG_LEVEL_WARN:
                return "warn";
        case LOG_LEVEL_ERROR:
                return "error";
        default:
                return "unknown";
        }
}

int log_level_parse(const char *s)
{
        if (!s)
                return -1;
        for (int l = LOG_LEVEL_DEBUG; l <= LOG_LEVEL_ERROR; l++) {
                if (strcasecmp(s, log_level_name((log_level)l)) == 0)
                        return l;
        }
        return -1;
}

/* Output cursor. len counts every byte asked for, bytes land only while they fit in cap;
 * with p == NULL it only measures. */
typedef struct log_out {
        char *p;
        size_t len;
        size_t cap;
} log_out;

static void out_put(log_out *o, const char *s, size_t n)
{
        if (o->p && o->len <= o->cap && n <= o->cap - o->len)
                memcpy(o->p + o->len, s, n);
        o->len += n;
}

static void out_str(log_out *o, const char *s)
{
        out_put(o, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s (2-4), or 0 when it is not one: no overlong forms,
 * no surrogates, nothing above U+10FFFF (RFC 3629 §4). Stops at a NUL, which is never a
 * continuation byte. */
static size_t utf8_seq_len(const unsigned char *s)
{
        unsigned char c = s[0];
        unsigned char lo = 0x80, hi = 0xbf;
        size_t n;
        if (c >= 0xc2 && c <= 0xdf) {
                n = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
                n = 3;
                if (c == 0xe0)
                        lo = 0xa0;   /* overlong */
                if (c == 0xed)
                        hi = 0x9f;   /* surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
                n = 4;
                if (c == 0xf0)
                        lo = 0x90;   /* overlong */
                if (c == 0xf4)
                        hi = 0x8f;   /* above U+10FFFF */
        } else {
                return 0;
        }
        if (s[1] < lo || s[1] > hi)
                return 0;
        for (size_t i = 2; i < n; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
        }
        return n;
}

/* Writes s as JSON string content (no quotes), at most cap bytes, never splitting an escape or
 * a UTF-8 sequence. Returns the bytes produced; *complete tells whether all of s went out. */
static size_t json_escape(log_out *o, const char *s, size_t cap, bool *complete)
{
        static const char hex[] = "0123456789abcdef";
        const unsigned char *p = (const unsigned char *)s;
        size_t produced = 0;
        while (*p) {
                char unit[8];
                size_t un, adv = 1;
                const char *src = unit;
                unsigned char c = *p;
                if (c == '"' || c == '\\') {
                        unit[0] = '\\';
                        unit[1] = (char)c;
                        un = 2;
                } else if (c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f') {
                        unit[0] = '\\';
                        unit[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't'
                                : c == '\b' ? 'b' : 'f';
                        un = 2;
                } else if (c < 0x20 || c == 0x7f) {
                        /* DEL is legal JSON, but escaping it keeps terminals reading logs sane. */
                        memcpy(unit, "\\u00", 4);
                        unit[4] = hex[c >> 4];
                        unit[5] = hex[c & 0xf];
                        un = 6;
                } else if (c < 0x80) {
                        src = (const char *)p;
                        un = 1;
                } else if ((adv = utf8_seq_len(p)) != 0) {
                        src = (const char *)p;
                        un = adv;
                } else {
                        /* One U+REPLACEMENT CHARACTER per bad byte: the line stays valid JSON
                         * and shows where the garbage was. */
                        memcpy(unit, "\xef\xbf\xbd", 3);
                        un = 3;
                        adv = 1;
                }
                if (un > cap - produced) {
                        *complete = false;
                        return produced;
                }
                out_put(o, src, un);
                produced += un;
                p += adv;
        }
        *complete = true;
        return produced;
}

static void out_quoted(log_out *o, const char *s, size_t cap, bool *complete)
{
        out_put(o, "\"", 1);
        json_escape(o, s, cap, complete);
        out_put(o, "\"", 1);
}

/* The string value a field carries, or NULL when it has none (numbers, null). */
static const char *kv_string(const log_kv *kv)
{
        if (kv->type == LOG_KV_STR)
                return kv->v.s;
        if (kv->type == LOG_KV_ERR && kv->v.err && err_is_set(kv->v.err))
                return kv->v.err->msg;
        return NULL;
}

static void out_double(log_out *o, double d)
{
        char tmp[40];
        if (!isfinite(d)) {
                out_str(o, "null");
                return;
        }
        /* Shortest of the two precisions that reads back exactly; %.17g always does. */
        int n = snprintf(tmp, sizeof(tmp), "%.15g", d);
        if (n > 0 && (size_t)n < sizeof(tmp) && strtod(tmp, NULL) != d)
                n = snprintf(tmp, sizeof(tmp), "%.17g", d);
        if (n <= 0 || (size_t)n >= sizeof(tmp)) {
                out_str(o, "null");
                return;
        }
        /* A locale with a decimal comma (setlocale by someone else) must not break JSON. */
        for (int i = 0; i < n; i++) {
                if (tmp[i] == ',')
                        tmp[i] = '.';
        }
        out_put(o, tmp, (size_t)n);
}

typedef struct log_rec {
        const char *ts;
        const char *level;
        const char *msg;
        const log_kv *kvs;
        size_t nkv;
} log_rec;

/* Renders the record (without the newline) with every string value cut to cap escaped bytes. */
static void log_render(log_out *o, const log_rec *r, size_t cap, bool mark_truncated)
{
        bool complete;
        out_str(o, "{\"ts\":\"");
        out_str(o, r->ts);
        out_str(o, "\",\"level\":\"");
        out_str(o, r->level);
        out_str(o, "\",\"msg\":");
        out_quoted(o, r->msg, cap, &complete);
        for (size_t i = 0; i < r->nkv; i++) {
                const log_kv *kv = &r->kvs[i];
                out_put(o, ",", 1);
                out_quoted(o, kv->key ? kv->key : "", LOG_KEY_MAX, &complete);
                out_put(o, ":", 1);
                const char *s = kv_string(kv);
                char num[24];
                int n;
                switch (kv->type) {
                case LOG_KV_STR:
                case LOG_KV_ERR:
                        if (s) {
                                out_quoted(o, s, cap, &complete);
                        } else {
                                out_str(o, "null");
                        }
                        break;
                case LOG_KV_INT:
                        n = snprintf(num, sizeof(num), "%" PRId64, kv->v.i);
                        if (n > 0 && (size_t)n < sizeof(num))
                                out_put(o, num, (size_t)n);
                        else
                                out_str(o, "null");
                        break;
                case LOG_KV_BOOL:
                        out_str(o, kv->v.b ? "true" : "false");
                        break;
                case LOG_KV_DBL:
                        out_double(o, kv->v.d);
                        break;
                case LOG_KV_END:
                default:
                        out_str(o, "null");
                        break;
                }
        }
        if (mark_truncated)
                out_str(o, TRUNCATED_FIELD);
        out_put(o, "}", 1);
}

/* Escaped length of s, counted no further than limit + 1. */
static size_t escaped_len(const char *s, size_t limit)
{
        log_out m = { NULL, 0, 0 };
        bool complete;
        size_t n = json_escape(&m, s, limit + 1, &complete);
        return complete ? n : limit + 1;
}

/* Largest C with sum(min(len[i], C)) <= avail. */
static size_t water_fill(const size_t *len, size_t n, size_t avail)
{
        size_t lo = 0, hi = avail;
        while (lo < hi) {
                size_t mid = lo + (hi - lo + 1) / 2;
                size_t sum = 0;
                for (size_t i = 0; i < n && sum <= avail; i++)
                        sum += len[i] < mid ? len[i] : mid;
                if (sum <= avail)
                        lo = mid;
                else
                        hi = mid - 1;
        }
        return lo;
}

/* Escaped lengths of the record's string values (the message first), each counted no further
 * than limit + 1. Returns how many. */
static size_t log_string_lens(const log_rec *r, size_t *lens, size_t limit)
{
        size_t n = 0;
        lens[n++] = escaped_len(r->msg, limit);
        for (size_t i = 0; i < r->nkv; i++) {
                const char *s = kv_string(&r->kvs[i]);
                if (s)
                        lens[n++] = escaped_len(s, limit);
        }
        return n;
}

void log_write(log_level level, const char *msg, const log_kv *kvs)
{
        if (!log_enabled(level))
                return;
        char ts[RFC3339_MS_LEN];
        if (rfc3339_now_ms(ts, sizeof(ts)) < 0) {
                int n = snprintf(ts, sizeof(ts), "%s", "1970-01-01T00:00:00.000Z");
                (void)n;
        }
        log_rec r = { ts, log_level_name(level), msg ? msg : "", kvs, 0 };
        bool dropped = false;
        while (kvs && kvs[r.nkv].type != LOG_KV_END) {
                if (r.nkv == LOG_FIELDS_MAX) {
                        dropped = true;
                        break;
                }
                r.nkv++;
        }

        /* JSON budget: the newline takes the last byte. */
        const size_t budget = LOG_RECORD_MAX - 1;
        bool mark = dropped;
        for (size_t i = 0; i < r.nkv; i++) {
                if (kvs[i].key && escaped_len(kvs[i].key, LOG_KEY_MAX) > LOG_KEY_MAX)
                        mark = true;
        }
        size_t lens[LOG_FIELDS_MAX + 1];
        size_t nlen = log_string_lens(&r, lens, budget);
        size_t sum = 0;
        for (size_t i = 0; i < nlen; i++)
                sum += lens[i];
        /* The frame: the record with every string value rendered empty. */
        log_out m = { NULL, 0, 0 };
        log_render(&m, &r, 0, mark);
        size_t cap = SIZE_MAX;
        if (mark || m.len > budget || sum > budget - m.len) {
                mark = true;
                /* Too many or too long keys: drop fields from the end until the frame fits. */
                for (;;) {
                        m = (log_out){ NULL, 0, 0 };
                        log_render(&m, &r, 0, true);
                        if (m.len <= budget || r.nkv == 0)
                                break;
                        r.nkv--;
                }
                nlen = log_string_lens(&r, lens, budget);
                cap = m.len <= budget ? water_fill(lens, nlen, budget - m.len) : 0;
        }

        char line[LOG_RECORD_MAX + 1];
        log_out o = { line, 0, LOG_RECORD_MAX };
        log_render(&o, &r, cap, mark);
        if (o.len > budget) {
                /* Cannot happen with the arithmetic above; if it ever does, a short valid
                 * record beats a broken one. */
                o = (log_out){ line, 0, LOG_RECORD_MAX };
                log_rec bare = { ts, r.level, "", NULL, 0 };
                log_render(&o, &bare, 0, true);
        }
        out_put(&o, "\n", 1);

        pthread_mutex_lock(&log_lock);
        FILE *f = log_file ? log_file : stderr;
        /* One fwrite per line: stdio locks the stream for the call, and an unbuffered stderr
         * turns it into one write(2), so lines from threads and processes do not interleave. */
        size_t w = fwrite(line, 1, o.len, f);
        (void)w;
        fflush(f);
        pthread_mutex_unlock(&log_lock);
}
