/* Vary matching (RFC 9111 §4.1).  A request's values of one field are
 * combined as one list (its lines joined with a comma).  For the fields
 * whose syntax is a list of case-insensitive tokens with parameters
 * (Accept, Accept-Encoding, Accept-Charset, Accept-Language), white
 * space around commas and semicolons is dropped and letters are
 * lowercased, so "gzip, br" and "GZIP,br" select the same variant; in
 * every other field only white space next to a comma outside a quoted
 * string is dropped ("1, 2" is "1,2": a list's separators, RFC 9110
 * §5.6.1), and the rest is compared as sent. */
#include "cache/vary.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

static bool list_field(const char *name, size_t n)
{
    static const char *const lists[] = {"accept", "accept-encoding", "accept-charset",
                                        "accept-language", NULL};
    for (const char *const *l = lists; *l; l++)
        if (strlen(*l) == n && strncasecmp(*l, name, n) == 0)
            return true;
    return false;
}

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Value v[0, n) without the white space around its commas outside quoted
 * strings. */
static void put_spaced(struct buf *out, const char *v, size_t n)
{
    bool quoted = false;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (quoted) {
            if (c == '\\' && i + 1 < n) {
                buf_append(out, v + i++, 2); /* the escaped octet with it */
                continue;
            }
            if (c == '"')
                quoted = false;
        } else if (c == '"') {
            quoted = true;
        } else if (blank(c)) {
            size_t end = i;
            while (end < n && blank(v[end]))
                end++;
            bool by_comma = (end < n && v[end] == ',') || (out->len && out->p[out->len - 1] == ',');
            if (!by_comma)
                buf_append(out, v + i, end - i);
            i = end - 1;
            continue;
        }
        buf_append(out, &c, 1);
    }
}

/* The request's value of field `name`: '-' if absent, else '+' and the
 * combined, normalised value. */
static void put_value(struct buf *out, const char *name, size_t n, const struct http_field *req,
                      size_t nreq)
{
    bool list = list_field(name, n), any = false;
    for (size_t i = 0; i < nreq; i++) {
        if (req[i].name.n != n || strncasecmp(req[i].name.p, name, n) != 0)
            continue;
        if (any)
            buf_append(out, ",", 1);
        else
            buf_append(out, "+", 1);
        any = true;
        if (!list) {
            put_spaced(out, req[i].value.p, req[i].value.n);
            continue;
        }
        const char *p = req[i].value.p, *end = p + req[i].value.n;
        for (; p < end; p++) {
            if (*p == ' ' || *p == '\t')
                continue;
            char c = (char)tolower((unsigned char)*p);
            buf_append(out, &c, 1);
        }
    }
    if (!any)
        buf_append(out, "-", 1);
    buf_append(out, "", 1);
}

int vary_build(struct buf *out, const struct http_field *resp, size_t nresp,
               const struct http_field *req, size_t nreq)
{
    for (size_t i = 0; i < nresp; i++) {
        if (!http_span_is(resp[i].name, "Vary"))
            continue;
        struct span list = resp[i].value, e;
        while (http_list_next(&list, &e)) {
            if (e.n == 1 && e.p[0] == '*')
                return -1;
            char name[256];
            if (e.n >= sizeof name)
                return -1; /* no field is named so: treated as "*" */
            for (size_t k = 0; k < e.n; k++)
                name[k] = (char)tolower((unsigned char)e.p[k]);
            buf_append(out, name, e.n);
            buf_append(out, "", 1);
            put_value(out, name, e.n, req, nreq);
        }
    }
    return 0;
}

bool vary_matches(const char *vary, size_t len, const struct http_field *req, size_t nreq)
{
    struct buf mine = {0};
    bool same = true;
    for (size_t at = 0; at < len && same;) {
        const char *name = vary + at;
        size_t n = strnlen(name, len - at);
        if (at + n + 1 >= len)
            break;
        const char *value = name + n + 1;
        size_t vn = strnlen(value, len - at - n - 1);
        buf_reset(&mine);
        put_value(&mine, name, n, req, nreq);
        same = mine.len == vn + 1 && memcmp(mine.p, value, vn) == 0;
        at += n + 1 + vn + 1;
    }
    buf_free(&mine);
    return same;
}
