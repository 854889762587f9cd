/* The expires directive: lifetimes set by the operator, per location. */
#include "route/expires.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/settings.h"
#include "http/date.h"
#include "route/route.h"

/* `max`: ten years, and the Expires date that HTTP/1.0 caches of 32-bit
 * times still read. */
#define EXPIRES_MAX_AGE 315360000LL
#define EXPIRES_MAX_DATE "Thu, 31 Dec 2037 23:55:55 GMT"
#define EXPIRES_EPOCH_DATE "Thu, 01 Jan 1970 00:00:01 GMT"

int expires_parse(const char *value, struct expires *out, char *err, size_t errlen)
{
    if (strcmp(value, "off") == 0) {
        *out = (struct expires){EXPIRES_OFF, 0};
        return 0;
    }
    if (strcmp(value, "max") == 0) {
        *out = (struct expires){EXPIRES_MAX, EXPIRES_MAX_AGE};
        return 0;
    }
    if (strcmp(value, "epoch") == 0) {
        *out = (struct expires){EXPIRES_EPOCH, 0};
        return 0;
    }
    bool negative = value[0] == '-';
    uint64_t ms;
    if (parse_duration_ms(value + negative, &ms) < 0 || ms / 1000 > EXPIRES_MAX_AGE || ms % 1000) {
        snprintf(err, errlen,
                 "expires: \"%s\" is not a time in seconds (1h, 30m, 90, -1) or max, epoch, off",
                 value);
        return -1;
    }
    long long s = (long long)(ms / 1000);
    *out = (struct expires){EXPIRES_TIME, negative ? -s : s};
    return 0;
}

/* Drops every "Name: value\r\n" line called `name` from the handler's
 * fields. */
static void drop_field(struct buf *head, const char *name)
{
    size_t n = strlen(name), at = 0;
    while (at < head->len) {
        char *line = head->p + at;
        char *eol = memchr(line, '\n', head->len - at);
        size_t len = eol ? (size_t)(eol - line) + 1 : head->len - at;
        if (len > n && line[n] == ':' && strncasecmp(line, name, n) == 0) {
            memmove(line, line + len, head->len - at - len);
            head->len -= len;
        } else {
            at += len;
        }
    }
}

void expires_apply(struct verbd_exchange *x)
{
    const struct route_mapping *m = x->req.mapping;
    struct verbd_response *res = &x->res;
    if (!m || res->status < 200 || res->status >= 400)
        return;
    const struct expires *e = &m->expires;
    if (e->kind == EXPIRES_UNSET || e->kind == EXPIRES_OFF)
        return;
    drop_field(&res->head, "Cache-Control");
    drop_field(&res->head, "Expires");
    char date[HTTP_DATE_LEN + 1], cc[32];
    const char *when = date;
    if (e->kind == EXPIRES_MAX)
        when = EXPIRES_MAX_DATE;
    else if (e->kind == EXPIRES_EPOCH)
        when = EXPIRES_EPOCH_DATE;
    else
        http_date_format(time(NULL) + (time_t)e->seconds, date);
    if (e->kind == EXPIRES_EPOCH || (e->kind == EXPIRES_TIME && e->seconds < 0))
        snprintf(cc, sizeof cc, "no-cache");
    else
        snprintf(cc, sizeof cc, "max-age=%lld", e->seconds);
    verbd_response_header(res, "Expires", when);
    verbd_response_header(res, "Cache-Control", cc);
}
