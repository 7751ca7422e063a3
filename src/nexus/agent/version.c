/* agent/version.c — see version.h. */
#include "agent/version.h"

#include <stdint.h>
#include <string.h>

#include "core/str.h"

static void version_parts(const char *v, int64_t out[3])
{
        out[0] = out[1] = out[2] = 0;
        if (!v)
                return;
        size_t len = strcspn(v, "-");
        const char *p = v;
        for (int i = 0; i < 3 && p <= v + len; i++) {
                const char *end = v + len;
                if (i < 2) {
                        const char *dot = memchr(p, '.', (size_t)(end - p));
                        if (dot)
                                end = dot;
                }
                int64_t n;
                if (str_to_int64n(p, (size_t)(end - p), 0, INT64_MAX, &n) == 0)
                        out[i] = n;
                if (end >= v + len)
                        break;
                p = end + 1;
        }
}

int nx_version_compare(const char *a, const char *b)
{
        int64_t x[3], y[3];
        version_parts(a, x);
        version_parts(b, y);
        for (int i = 0; i < 3; i++)
                if (x[i] != y[i])
                        return x[i] < y[i] ? -1 : 1;
        return 0;
}
