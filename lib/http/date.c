/* HTTP-date (RFC 9110 §5.6.7).  Formatting and parsing use fixed English
 * names and plain arithmetic: nothing here depends on the locale or the TZ
 * environment. */
#include "http/date.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

static const char day_short[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const day_long[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                        "Thursday", "Friday", "Saturday"};
static const char month_name[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* IMF-fixdate has a four-digit year: 0001-01-01 .. 9999-12-31 23:59:59. */
#define DATE_MIN ((int64_t)-62135596800)
#define DATE_MAX ((int64_t)253402300799)

/* Days since 1970-01-01 of a proleptic Gregorian civil date (Howard
 * Hinnant's algorithm): timegm without the TZ machinery. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void http_date_format(time_t t, char *out)
{
    int64_t s = (int64_t)t;
    if (s < DATE_MIN)
        s = DATE_MIN;
    if (s > DATE_MAX)
        s = DATE_MAX;
    time_t ct = (time_t)s;
    struct tm tm;
    if (!gmtime_r(&ct, &tm)) {
        memcpy(out, "Thu, 01 Jan 1970 00:00:00 GMT", HTTP_DATE_LEN + 1);
        return;
    }
    /* Written by hand rather than strftime, whose %a and %b follow the
     * locale. */
    int year = tm.tm_year + 1900;
    char *p = out;
    memcpy(p, day_short[tm.tm_wday], 3);
    p += 3;
    *p++ = ',';
    *p++ = ' ';
    *p++ = (char)('0' + tm.tm_mday / 10);
    *p++ = (char)('0' + tm.tm_mday % 10);
    *p++ = ' ';
    memcpy(p, month_name[tm.tm_mon], 3);
    p += 3;
    *p++ = ' ';
    *p++ = (char)('0' + year / 1000);
    *p++ = (char)('0' + year / 100 % 10);
    *p++ = (char)('0' + year / 10 % 10);
    *p++ = (char)('0' + year % 10);
    *p++ = ' ';
    *p++ = (char)('0' + tm.tm_hour / 10);
    *p++ = (char)('0' + tm.tm_hour % 10);
    *p++ = ':';
    *p++ = (char)('0' + tm.tm_min / 10);
    *p++ = (char)('0' + tm.tm_min % 10);
    *p++ = ':';
    *p++ = (char)('0' + tm.tm_sec / 10);
    *p++ = (char)('0' + tm.tm_sec % 10);
    memcpy(p, " GMT", 5);
}

/* Reads exactly `digits` decimal digits at *p. */
static bool get_num(const char **p, const char *end, int digits, int *v)
{
    if (end - *p < digits)
        return false;
    int x = 0;
    for (int i = 0; i < digits; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        x = x * 10 + (c - '0');
    }
    *p += digits;
    *v = x;
    return true;
}

static bool get_lit(const char **p, const char *end, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(end - *p) < n || memcmp(*p, lit, n) != 0)
        return false;
    *p += n;
    return true;
}

/* Names are case-sensitive: HTTP-date is (RFC 9110 §5.6.7). */
static bool get_month(const char **p, const char *end, int *mon)
{
    for (int i = 0; i < 12; i++)
        if (get_lit(p, end, month_name[i])) {
            *mon = i + 1;
            return true;
        }
    return false;
}

static bool get_day_short(const char **p, const char *end)
{
    for (int i = 0; i < 7; i++)
        if (get_lit(p, end, day_short[i]))
            return true;
    return false;
}

static bool get_day_long(const char **p, const char *end)
{
    for (int i = 0; i < 7; i++)
        if (get_lit(p, end, day_long[i]))
            return true;
    return false;
}

/* "HH:MM:SS"; a second of 60 (a leap second) is allowed by the grammar. */
static bool get_time(const char **p, const char *end, int *h, int *m, int *s)
{
    return get_num(p, end, 2, h) && get_lit(p, end, ":") && get_num(p, end, 2, m) &&
           get_lit(p, end, ":") && get_num(p, end, 2, s) && *h <= 23 && *m <= 59 && *s <= 60;
}

static int days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

static int finish(int y, int mon, int d, int h, int mi, int s, time_t *t)
{
    if (y < 1 || d < 1 || d > days_in_month(y, mon))
        return -1;
    *t = (time_t)(days_from_civil(y, mon, d) * 86400 + h * 3600 + mi * 60 + s);
    return 0;
}

/* A two-digit year that would be more than 50 years in the future is the
 * most recent past year with those digits (RFC 9110 §5.6.7). */
static int full_year(int yy)
{
    struct tm now;
    time_t t = time(NULL);
    int cur = gmtime_r(&t, &now) ? now.tm_year + 1900 : 2000;
    int y = cur - cur % 100 + yy;
    if (y > cur + 50)
        y -= 100;
    return y;
}

int http_date_parse(const char *p, size_t n, time_t *t)
{
    const char *end = p + n, *q;
    int y, mon, d, h, mi, s;

    /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
    q = p;
    if (n == 29 && get_day_short(&q, end) && get_lit(&q, end, ", ") && get_num(&q, end, 2, &d) &&
        get_lit(&q, end, " ") && get_month(&q, end, &mon) && get_lit(&q, end, " ") &&
        get_num(&q, end, 4, &y) && get_lit(&q, end, " ") && get_time(&q, end, &h, &mi, &s) &&
        get_lit(&q, end, " GMT") && q == end)
        return finish(y, mon, d, h, mi, s, t);

    /* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT" */
    q = p;
    if (get_day_long(&q, end) && get_lit(&q, end, ", ") && get_num(&q, end, 2, &d) &&
        get_lit(&q, end, "-") && get_month(&q, end, &mon) && get_lit(&q, end, "-") &&
        get_num(&q, end, 2, &y) && get_lit(&q, end, " ") && get_time(&q, end, &h, &mi, &s) &&
        get_lit(&q, end, " GMT") && q == end)
        return finish(full_year(y), mon, d, h, mi, s, t);

    /* asctime: "Sun Nov  6 08:49:37 1994" (day is 2DIGIT or SP 1DIGIT) */
    q = p;
    if (n == 24 && get_day_short(&q, end) && get_lit(&q, end, " ") && get_month(&q, end, &mon) &&
        get_lit(&q, end, " ")) {
        bool ok;
        if (*q == ' ') {
            q++;
            ok = get_num(&q, end, 1, &d);
        } else {
            ok = get_num(&q, end, 2, &d);
        }
        if (ok && get_lit(&q, end, " ") && get_time(&q, end, &h, &mi, &s) &&
            get_lit(&q, end, " ") && get_num(&q, end, 4, &y) && q == end)
            return finish(y, mon, d, h, mi, s, t);
    }
    return -1;
}
