/* HTTP-date: IMF-fixdate out; IMF-fixdate, RFC 850 and asctime in. */
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/date.h"
#include "unit.h"

static time_t parse(const char *s)
{
    time_t t = 12345;
    return http_date_parse(s, strlen(s), &t) == 0 ? t : (time_t)-1;
}

static const char *fmt(time_t t)
{
    static char out[HTTP_DATE_LEN + 1 + 8];
    memset(out, 'x', sizeof out);
    http_date_format(t, out);
    return out;
}

int main(void)
{
    /* Neither the TZ nor the locale may change anything. */
    setenv("TZ", "America/New_York", 1);
    tzset();
    setlocale(LC_ALL, "");

    /* format */
    CHECK_STR(fmt(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
    CHECK_STR(fmt(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    CHECK_STR(fmt(951782400), "Tue, 29 Feb 2000 00:00:00 GMT");
    CHECK_STR(fmt(1700000000), "Tue, 14 Nov 2023 22:13:20 GMT");
    CHECK_STR(fmt(-1), "Wed, 31 Dec 1969 23:59:59 GMT");
    CHECK_INT(strlen(fmt(784111777)), HTTP_DATE_LEN);
    /* years outside 0001-9999 are clamped to keep four digits */
    CHECK_STR(fmt((time_t)253402300800), "Fri, 31 Dec 9999 23:59:59 GMT");
    CHECK_STR(fmt((time_t)-70000000000), "Mon, 01 Jan 0001 00:00:00 GMT");

    /* the three formats of RFC 9110 §5.6.7 */
    CHECK_INT(parse("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
    CHECK_INT(parse("Sunday, 06-Nov-94 08:49:37 GMT"), 784111777);
    CHECK_INT(parse("Sun Nov  6 08:49:37 1994"), 784111777);
    CHECK_INT(parse("Sun Nov 06 08:49:37 1994"), 784111777);
    CHECK_INT(parse("Thu, 01 Jan 1970 00:00:00 GMT"), 0);
    CHECK_INT(parse("Tue, 29 Feb 2000 00:00:00 GMT"), 951782400);
    CHECK_INT(parse("Wed, 31 Dec 1969 23:59:59 GMT"), -1); /* before the epoch */
    CHECK_INT(parse("Tue, 14 Nov 2023 22:13:20 GMT"), 1700000000);
    CHECK_INT(parse("Tuesday, 14-Nov-23 22:13:20 GMT"), 1700000000);
    CHECK_INT(parse("Tue Nov 14 22:13:20 2023"), 1700000000);
    /* a leap second is valid syntax */
    CHECK_INT(parse("Sat, 31 Dec 2016 23:59:60 GMT"), 1483228800);

    /* round trip over 1900-2100, with gmtime_r as the reference */
    {
        int mismatches = 0, rounds = 0;
        for (time_t t = -2208988800; t < (time_t)4102444800; t += 86399 * 3 + 13, rounds++) {
            char out[HTTP_DATE_LEN + 1], ref[64];
            struct tm tm;
            http_date_format(t, out);
            gmtime_r(&t, &tm);
            strftime(ref, sizeof ref, "%d %m %Y %H:%M:%S", &tm);
            time_t back;
            if (http_date_parse(out, HTTP_DATE_LEN, &back) != 0 || back != t ||
                memcmp(out + 5, ref, 2) != 0 || memcmp(out + 12, ref + 6, 4) != 0 ||
                memcmp(out + 17, ref + 11, 8) != 0) {
                if (mismatches++ < 3)
                    printf("round trip %lld: %s\n", (long long)t, out);
            }
        }
        CHECK_INT(mismatches, 0);
        CHECK(rounds > 20000);
    }

    /* RFC 850 two-digit years: more than 50 years ahead means last century */
    {
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        int cur = tm.tm_year + 1900;
        char s[64];
        time_t t;
        /* this year */
        snprintf(s, sizeof s, "Monday, 01-Jan-%02d 00:00:00 GMT", cur % 100);
        CHECK_INT(http_date_parse(s, strlen(s), &t), 0);
        gmtime_r(&t, &tm);
        CHECK_INT(tm.tm_year + 1900, cur);
        /* 60 years ahead -> 40 years ago */
        snprintf(s, sizeof s, "Monday, 01-Jan-%02d 00:00:00 GMT", (cur + 60) % 100);
        CHECK_INT(http_date_parse(s, strlen(s), &t), 0);
        gmtime_r(&t, &tm);
        CHECK_INT(tm.tm_year + 1900, cur - 40);
    }

    /* strictness: invalid dates are -1 and leave *t alone */
    {
        static const char *const bad[] = {
            "",
            "Sun, 06 Nov 1994 08:49:37 GMT ",
            " Sun, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Nov 1994 08:49:37 gmt",
            "sun, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 nov 1994 08:49:37 GMT",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 94 08:49:37 GMT",
            "Sun, 06 Nov 1994 8:49:37 GMT",
            "Sun,06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37",
            "Xyz, 06 Nov 1994 08:49:37 GMT",
            "Sun, 31 Nov 1994 08:49:37 GMT",
            "Sun, 00 Nov 1994 08:49:37 GMT",
            "Sun, 29 Feb 1900 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:60:00 GMT",
            "Sun, 06 Nov 1994 08:49:61 GMT",
            "Sun, 06 Nov 0000 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:3a GMT",
            "Sun, 06 Nov +994 08:49:37 GMT",
            "Sunday, 06-Nov-1994 08:49:37 GMT",
            "Sun, 06-Nov-94 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT ",
            "Sunday, 6-Nov-94 08:49:37 GMT",
            "Sun Nov 6 08:49:37 1994",
            "Sun Nov  6 08:49:37 94",
            "Sun Nov  6 08:49:37 1994 ",
            "Sun Nov   6 08:49:37 1994",
            "Sun Nov  6 08:49:37 1994 GMT",
            "1994-11-06T08:49:37Z",
            "784111777",
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            time_t t = 42;
            int r = http_date_parse(bad[i], strlen(bad[i]), &t);
            if (r != -1 || t != 42)
                printf("accepted: \"%s\"\n", bad[i]);
            CHECK_INT(r, -1);
            CHECK_INT(t, 42);
        }
    }

    /* the length is respected: no reading past n, no NUL needed */
    {
        char buf[40];
        memcpy(buf, "Sun, 06 Nov 1994 08:49:37 GMTxxxxxx", 35);
        time_t t;
        CHECK_INT(http_date_parse(buf, 29, &t), 0);
        CHECK_INT(t, 784111777);
        CHECK_INT(http_date_parse(buf, 28, &t), -1);
    }

    return unit_report();
}
