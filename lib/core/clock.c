/* core/clock.c — see clock.h. */
#include "core/clock.h"

#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#define MS_PER_DAY 86400000LL

/* Range we format and parse: four-digit years (RFC 3339 §5.6 date-fullyear = 4DIGIT). */
#define YEAR_MIN 0
#define YEAR_MAX 9999

static int64_t clock_read_ms(clockid_t id)
{
        struct timespec ts;
        /* Both clocks exist on every Linux we target; a failure would be a kernel bug. */
        if (clock_gettime(id, &ts) < 0)
                return 0;
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_now_ms(void)
{
        return clock_read_ms(CLOCK_REALTIME);
}

int64_t clock_mono_ms(void)
{
        return clock_read_ms(CLOCK_MONOTONIC);
}

/* Floor division and modulo: dates before 1970 have negative day numbers. */
static int64_t floor_div(int64_t a, int64_t b)
{
        int64_t q = a / b;
        if ((a % b != 0) && ((a < 0) != (b < 0)))
                q--;
        return q;
}

static int64_t floor_mod(int64_t a, int64_t b)
{
        int64_t r = a % b;   /* not a - floor_div(a, b) * b: that overflows near INT64_MIN */
        if (r != 0 && ((r < 0) != (b < 0)))
                r += b;
        return r;
}

/* The calendar repeats every 400 years (146097 days). Counting years from March moves the leap
 * day to the end of the year, so the day of the year follows from the month with one linear
 * formula: months March..February have 31,30,31,30,31,31,30,31,30,31,31,28/29 days, and
 * (153 * m + 2) / 5 gives the day on which the m-th of them starts. */
int64_t clock_days_from_civil(int64_t year, int month, int day)
{
        int64_t y = month <= 2 ? year - 1 : year;
        int64_t era = floor_div(y, 400);
        int64_t yoe = y - era * 400;                          /* 0..399 */
        int64_t mp = month > 2 ? month - 3 : month + 9;       /* March = 0 */
        int64_t doy = (153 * mp + 2) / 5 + day - 1;           /* 0..365 */
        int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;  /* 0..146096 */
        /* 719468 days lie between 0000-03-01 and 1970-01-01. */
        return era * 146097 + doe - 719468;
}

/* Inverse of clock_days_from_civil. */
static void civil_from_days(int64_t days, int64_t *year, int *month, int *day)
{
        int64_t z = days + 719468;
        int64_t era = floor_div(z, 146097);
        int64_t doe = z - era * 146097;                                     /* 0..146096 */
        int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* 0..399 */
        int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);              /* 0..365 */
        int64_t mp = (5 * doy + 2) / 153;                                   /* 0..11 */
        *day = (int)(doy - (153 * mp + 2) / 5 + 1);
        *month = (int)(mp < 10 ? mp + 3 : mp - 9);
        *year = yoe + era * 400 + (*month <= 2 ? 1 : 0);
}

/* Shared by both formatters; frac_ms < 0 means "no fraction". */
static int rfc3339_format(int64_t unix_s, int frac_ms, char *out, size_t outsz)
{
        if (!out || outsz == 0)
                return -1;
        out[0] = '\0';
        /* Outside 0000..9999 the day count cannot come from a valid timestamp; refuse before
         * multiplying so huge inputs cannot overflow. */
        const int64_t lo = clock_days_from_civil(YEAR_MIN, 1, 1);
        const int64_t hi = clock_days_from_civil(YEAR_MAX, 12, 31);
        int64_t days = floor_div(unix_s, 86400);
        if (days < lo || days > hi)
                return -1;
        int64_t sod = floor_mod(unix_s, 86400);
        int64_t year;
        int month, day;
        civil_from_days(days, &year, &month, &day);
        int hh = (int)(sod / 3600), mm = (int)(sod / 60 % 60), ss = (int)(sod % 60);
        int n;
        if (frac_ms >= 0)
                n = snprintf(out, outsz, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (int)year, month,
                             day, hh, mm, ss, frac_ms);
        else
                n = snprintf(out, outsz, "%04d-%02d-%02dT%02d:%02d:%02dZ", (int)year, month, day,
                             hh, mm, ss);
        if (n < 0 || (size_t)n >= outsz) {
                out[0] = '\0';
                return -1;
        }
        return 0;
}

int rfc3339_format_ms(int64_t unix_ms, char *out, size_t outsz)
{
        return rfc3339_format(floor_div(unix_ms, 1000), (int)floor_mod(unix_ms, 1000), out, outsz);
}

int rfc3339_format_s(int64_t unix_s, char *out, size_t outsz)
{
        return rfc3339_format(unix_s, -1, out, outsz);
}

int rfc3339_now_ms(char *out, size_t outsz)
{
        return rfc3339_format_ms(clock_now_ms(), out, outsz);
}

static bool is_leap_year(int64_t y)
{
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
        static const int dim[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        if (m == 2 && is_leap_year(y))
                return 29;
        return dim[m - 1];
}

/* Reads exactly n digits at *p. Returns false when fewer are there. */
static bool read_digits(const char **p, int n, int *out)
{
        int v = 0;
        for (int i = 0; i < n; i++) {
                char c = (*p)[i];
                if (c < '0' || c > '9')
                        return false;
                v = v * 10 + (c - '0');
        }
        *p += n;
        *out = v;
        return true;
}

/* Messages quote at most this much of the input, so a hostile string cannot fill a log. */
#define QUOTE_MAX 64

static int rfc3339_expected(err_t *err, const char *s, const char *what)
{
        return err_set(err, "rfc3339: expected %s in \"%.*s\"", what, QUOTE_MAX, s);
}

static int rfc3339_range(err_t *err, const char *s, const char *field, int v)
{
        return err_set(err, "rfc3339: %s %d out of range in \"%.*s\"", field, v, QUOTE_MAX, s);
}

/* RFC 3339 §5.6:
 *   date-time = full-date "T" full-time        ("T"/"Z" may be lower case, §5.6 NOTE)
 *   full-date = YYYY "-" MM "-" DD
 *   full-time = HH ":" MM ":" SS [ "." 1*DIGIT ] ( "Z" / ("+" / "-") HH ":" MM )
 * The space separator that §5.6 allows "for readability" is refused: every producer we talk to
 * emits 'T', and one spelling per instant keeps comparisons of stored strings honest. */
int rfc3339_parse(const char *s, int64_t *unix_ms, err_t *err)
{
        if (!s)
                return err_set(err, "rfc3339: missing timestamp");
        const char *p = s;
        int year, month, day, hour, minute, second;
        if (!read_digits(&p, 4, &year))
                return rfc3339_expected(err, s, "4-digit year");
        if (*p++ != '-')
                return rfc3339_expected(err, s, "'-' after year");
        if (!read_digits(&p, 2, &month))
                return rfc3339_expected(err, s, "2-digit month");
        if (*p++ != '-')
                return rfc3339_expected(err, s, "'-' after month");
        if (!read_digits(&p, 2, &day))
                return rfc3339_expected(err, s, "2-digit day");
        if (*p != 'T' && *p != 't')
                return rfc3339_expected(err, s, "'T' after date");
        p++;
        if (!read_digits(&p, 2, &hour))
                return rfc3339_expected(err, s, "2-digit hour");
        if (*p++ != ':')
                return rfc3339_expected(err, s, "':' after hour");
        if (!read_digits(&p, 2, &minute))
                return rfc3339_expected(err, s, "2-digit minute");
        if (*p++ != ':')
                return rfc3339_expected(err, s, "':' after minute");
        if (!read_digits(&p, 2, &second))
                return rfc3339_expected(err, s, "2-digit second");
        int ms = 0;
        if (*p == '.') {
                p++;
                int ndig = 0;
                while (p[ndig] >= '0' && p[ndig] <= '9')
                        ndig++;
                if (ndig == 0)
                        return rfc3339_expected(err, s, "fraction digits after '.'");
                /* Nanoseconds are the finest anything we read produces; more digits are noise
                 * or an attempt to make us loop. */
                if (ndig > 9)
                        return err_set(err, "rfc3339: more than 9 fraction digits in \"%.*s\"",
                                       QUOTE_MAX, s);
                for (int i = 0; i < 3; i++)
                        ms = ms * 10 + (i < ndig ? p[i] - '0' : 0);
                p += ndig;
        }
        int offset_min = 0;
        if (*p == 'Z' || *p == 'z') {
                p++;
        } else if (*p == '+' || *p == '-') {
                int sign = *p == '-' ? -1 : 1;
                int oh, om;
                p++;
                if (!read_digits(&p, 2, &oh))
                        return rfc3339_expected(err, s, "2-digit offset hour");
                if (*p++ != ':')
                        return rfc3339_expected(err, s, "':' in offset");
                if (!read_digits(&p, 2, &om))
                        return rfc3339_expected(err, s, "2-digit offset minute");
                if (oh > 23)
                        return rfc3339_range(err, s, "offset hour", oh);
                if (om > 59)
                        return rfc3339_range(err, s, "offset minute", om);
                offset_min = sign * (oh * 60 + om);
        } else {
                return rfc3339_expected(err, s, "'Z' or a numeric offset");
        }
        if (*p != '\0')
                return err_set(err, "rfc3339: trailing characters after timestamp in \"%.*s\"",
                               QUOTE_MAX, s);
        /* Four digits cannot leave 0000-9999, so the year needs no range check of its own. */
        if (month < 1 || month > 12)
                return rfc3339_range(err, s, "month", month);
        if (day < 1 || day > days_in_month(year, month))
                return rfc3339_range(err, s, "day", day);
        if (hour > 23)
                return rfc3339_range(err, s, "hour", hour);
        if (minute > 59)
                return rfc3339_range(err, s, "minute", minute);
        /* RFC 3339 allows second 60 for a leap second. We refuse it: Unix time has no such
         * instant (it would silently alias the next second, so two different strings would
         * compare equal after parsing), and none of our peers ever emits one. */
        if (second > 59)
                return rfc3339_range(err, s, "second", second);
        int64_t days = clock_days_from_civil(year, month, day);
        int64_t t = days * MS_PER_DAY + ((int64_t)hour * 3600 + minute * 60 + second) * 1000 + ms;
        *unix_ms = t - (int64_t)offset_min * 60000;
        return 0;
}
