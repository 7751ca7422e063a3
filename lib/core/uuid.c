/* core/uuid.c — see uuid.h. */
#include "core/uuid.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>
#include <sys/random.h>

#include "core/clock.h"

#define UUID_STR_CHARS 36
#define UUID7_TS_MAX ((INT64_C(1) << 48) - 1)
#define UUID7_COUNTER_MAX 0xfff

/* Last timestamp and counter handed out, shared by all threads. */
static pthread_mutex_t uuid7_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t uuid7_last_ms = -1;
static uint16_t uuid7_counter;

static int uuid_random(void *p, size_t n, err_t *err)
{
        uint8_t *b = p;
        while (n > 0) {
                ssize_t r = getrandom(b, n, 0);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return err_errno(err, errno, "uuid: getrandom");
                }
                b += r;
                n -= (size_t)r;
        }
        return 0;
}

static void uuid_format(const uint8_t u[16], char out[UUID_STR_LEN])
{
        static const char hex[] = "0123456789abcdef";
        size_t o = 0;
        for (int i = 0; i < 16; i++) {
                if (i == 4 || i == 6 || i == 8 || i == 10)
                        out[o++] = '-';
                out[o++] = hex[u[i] >> 4];
                out[o++] = hex[u[i] & 0xf];
        }
        out[o] = '\0';
}

int uuid7_generate_at(int64_t unix_ms, char out[UUID_STR_LEN], err_t *err)
{
        /* Bytes 0-1 seed the counter of a new millisecond; bytes 2-9 are rand_b. Read before
         * taking the lock so a slow getrandom never stalls other threads. */
        uint8_t rnd[10];
        if (uuid_random(rnd, sizeof(rnd), err) < 0)
                return -1;
        if (unix_ms < 0)
                unix_ms = 0;
        if (unix_ms > UUID7_TS_MAX)
                unix_ms = UUID7_TS_MAX;

        pthread_mutex_lock(&uuid7_lock);
        int64_t ts;
        uint16_t ctr;
        if (unix_ms > uuid7_last_ms) {
                ts = unix_ms;
                /* Top bit cleared (RFC 9562 §6.2): at least 2048 more ids fit in this ms. */
                ctr = (uint16_t)(((rnd[0] << 8) | rnd[1]) & 0x7ff);
        } else if (uuid7_counter < UUID7_COUNTER_MAX) {
                /* Same millisecond, or the clock stepped back: stay on the last timestamp. */
                ts = uuid7_last_ms;
                ctr = (uint16_t)(uuid7_counter + 1);
        } else {
                /* Counter exhausted: borrow the next millisecond (§6.2 method 1, "the timestamp
                 * can be incremented") rather than break the ordering. At the 48-bit end of
                 * time there is no next one; wrapping would break ordering, so stay there. */
                ts = uuid7_last_ms < UUID7_TS_MAX ? uuid7_last_ms + 1 : uuid7_last_ms;
                ctr = (uint16_t)(((rnd[0] << 8) | rnd[1]) & 0x7ff);
        }
        uuid7_last_ms = ts;
        uuid7_counter = ctr;
        pthread_mutex_unlock(&uuid7_lock);

        uint8_t u[16];
        for (int i = 0; i < 6; i++)
                u[i] = (uint8_t)((uint64_t)ts >> (40 - 8 * i));
        u[6] = (uint8_t)(0x70 | (ctr >> 8));
        u[7] = (uint8_t)(ctr & 0xff);
        memcpy(u + 8, rnd + 2, 8);
        u[8] = (uint8_t)(0x80 | (u[8] & 0x3f));
        uuid_format(u, out);
        return 0;
}

int uuid7_generate(char out[UUID_STR_LEN], err_t *err)
{
        return uuid7_generate_at(clock_now_ms(), out, err);
}

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

static bool is_hyphen_pos(size_t i)
{
        return i == 8 || i == 13 || i == 18 || i == 23;
}

bool uuid_is_valid(const char *s)
{
        if (!s)
                return false;
        for (size_t i = 0; i < UUID_STR_CHARS; i++) {
                if (s[i] == '\0')
                        return false;
                if (is_hyphen_pos(i) ? s[i] != '-' : hexval(s[i]) < 0)
                        return false;
        }
        return s[UUID_STR_CHARS] == '\0';
}

int uuid_normalize(char *s)
{
        if (!uuid_is_valid(s))
                return -1;
        for (char *p = s; *p; p++) {
                if (*p >= 'A' && *p <= 'F')
                        *p = (char)(*p - 'A' + 'a');
        }
        return 0;
}

int uuid_parse(const char *s, uint8_t out[16])
{
        if (!uuid_is_valid(s))
                return -1;
        size_t o = 0;
        for (size_t i = 0; i < UUID_STR_CHARS; i += 2) {
                if (is_hyphen_pos(i))
                        i++;
                out[o++] = (uint8_t)(hexval(s[i]) << 4 | hexval(s[i + 1]));
        }
        return 0;
}

int64_t uuid7_timestamp_ms(const char *s)
{
        uint8_t u[16];
        if (uuid_parse(s, u) < 0)
                return -1;
        if ((u[6] >> 4) != 7 || (u[8] & 0xc0) != 0x80)
                return -1;
        int64_t ts = 0;
        for (int i = 0; i < 6; i++)
                ts = ts << 8 | u[i];
        return ts;
}
