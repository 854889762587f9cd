/* The storing and updating rules of RFC 9111 §3 for a shared cache. */
#include "cache/policy.h"

#include <string.h>
#include <strings.h>

#include "http/date.h"

/* The statuses whose meaning verbd's cache knows (for must-understand,
 * §5.2.2.3): the heuristically cacheable ones (206 included: stored as
 * a part). */
static bool understood(int status)
{
    return fresh_heuristic_index(status) >= 0;
}

const char *policy_unstorable(int status, const struct cache_control *res,
                              const struct cache_control *req, bool explicit_expires)
{
    if (status < 200 || status == 304)
        return "status";
    if (req->flags & CC_NO_STORE)
        return "request-no-store";
    if (res->flags & CC_MUST_UNDERSTAND) {
        if (!understood(status))
            return "must-understand";
    } else if (res->flags & CC_NO_STORE) {
        return "no-store";
    }
    if (res->flags & CC_PRIVATE)
        return "private";
    if (res->flags & CC_PUBLIC || res->s_maxage != CC_UNSET || res->max_age != CC_UNSET ||
        explicit_expires || fresh_heuristic_index(status) >= 0)
        return NULL;
    return "no-freshness";
}

static time_t date_of(const struct http_field *f, size_t n, const char *name, time_t invalid)
{
    struct span v = http_fields_find(f, n, name);
    if (!v.p)
        return -1;
    time_t t;
    return http_date_parse(v.p, v.n, &t) == 0 && t > 0 ? t : invalid;
}

/* The strong validator of fields f: the ETag if strong (*etag), else a
 * Last-Modified at least a second before Date (*lm); false if none. */
static bool strong_validator(const struct http_field *f, size_t n, struct span *etag, time_t *lm)
{
    *etag = http_fields_find(f, n, "ETag");
    *lm = 0;
    if (etag->p)
        return etag->n >= 2 && etag->p[0] == '"';
    time_t modified = date_of(f, n, "Last-Modified", -1), date = date_of(f, n, "Date", -1);
    *lm = modified;
    return modified > 0 && date > 0 && date - modified >= 1;
}

bool policy_partial(const struct http_field *f, size_t n, struct byte_range *part, uint64_t *size)
{
    struct span cr = http_fields_find(f, n, "Content-Range"), etag;
    time_t lm;
    return cr.p && range_content_range_parse(cr.p, cr.n, part, size) &&
           strong_validator(f, n, &etag, &lm);
}

bool policy_same_strong_validator(const struct http_field *a, size_t na, const struct http_field *b,
                                  size_t nb)
{
    struct span ea, eb;
    time_t la, lb;
    if (!strong_validator(a, na, &ea, &la) || !strong_validator(b, nb, &eb, &lb))
        return false;
    if (ea.p || eb.p)
        return ea.p && eb.p && ea.n == eb.n && memcmp(ea.p, eb.p, ea.n) == 0;
    return la == lb;
}

void policy_meta(int status, const struct http_field *f, size_t n, const struct heuristic *h,
                 const char *targeted, time_t request_time, time_t response_time,
                 struct store_meta *meta)
{
    struct cache_control cc;
    bool own = cc_parse_targeted(&cc, f, n, targeted) == CC_FROM_CACHE_CONTROL;
    struct fresh_times t = {
        .date = date_of(f, n, "Date", -1),
        /* invalid: already expired (§5.3) */
        .expires = own ? date_of(f, n, "Expires", 0) : -1,
        .last_modified = date_of(f, n, "Last-Modified", -1),
        .request_time = request_time,
        .response_time = response_time,
    };
    /* Age: the first member, ignored if not a number (§5.1). */
    struct span age = http_fields_find(f, n, "Age"), first;
    if (age.p && http_list_next(&age, &first)) {
        uint64_t v = 0;
        size_t i = 0;
        for (; i < first.n && first.p[i] >= '0' && first.p[i] <= '9'; i++)
            v = v < CC_DELTA_MAX ? v * 10 + (uint64_t)(first.p[i] - '0') : CC_DELTA_MAX;
        t.age = i == first.n ? (v > CC_DELTA_MAX ? CC_DELTA_MAX : v) : 0;
    }
    enum fresh_source source;
    memset(meta, 0, sizeof *meta);
    meta->status = status;
    meta->cc_flags = cc.flags;
    meta->lifetime = fresh_lifetime(status, &cc, &t, h, &source);
    meta->heuristic = source == FRESH_HEURISTIC;
    meta->may_serve_stale = fresh_may_serve_stale(&cc);
    meta->has_s_maxage = cc.s_maxage != CC_UNSET;
    meta->date = t.date;
    meta->expires = t.expires;
    meta->last_modified = t.last_modified;
    meta->age = t.age;
    meta->request_time = request_time;
    meta->response_time = response_time;
    meta->stale_while_revalidate = cc.stale_while_revalidate;
    meta->stale_if_error = cc.stale_if_error;
}

size_t policy_fields(const char *head, size_t len, struct http_field *fields, size_t max)
{
    size_t n = 0;
    for (size_t at = 0; at < len && n < max;) {
        const char *line = head + at;
        const char *eol = memchr(line, '\n', len - at);
        size_t ll = eol ? (size_t)(eol - line) : len - at;
        at += ll + 1;
        if (ll && line[ll - 1] == '\r')
            ll--;
        const char *colon = memchr(line, ':', ll);
        if (!colon)
            continue;
        const char *v = colon + 1, *end = line + ll;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        fields[n].name = (struct span){line, (size_t)(colon - line)};
        fields[n].value = (struct span){v, (size_t)(end - v)};
        n++;
    }
    return n;
}

static void put_line(struct buf *out, struct span name, struct span value)
{
    buf_append(out, name.p, name.n);
    buf_append(out, ": ", 2);
    buf_append(out, value.p, value.n);
    buf_append(out, "\r\n", 2);
}

#define FIELDS_MAX 128

void policy_stored_head(const char *head, size_t len, const struct cache_control *res,
                        struct buf *out)
{
    struct http_field f[FIELDS_MAX];
    size_t n = policy_fields(head, len, f, FIELDS_MAX);
    for (size_t i = 0; i < n; i++) {
        if (http_span_is(f[i].name, "Age") || http_span_is(f[i].name, "Cache-Status") ||
            (res->private_fields.p && cc_names_field(res->private_fields, f[i].name)) ||
            (res->no_cache_fields.p && cc_names_field(res->no_cache_fields, f[i].name)))
            continue;
        put_line(out, f[i].name, f[i].value);
    }
}

/* Fields a 304 never changes in what is stored. */
static bool kept_from_stored(struct span name)
{
    return http_span_is(name, "Content-Length") || http_span_is(name, "Transfer-Encoding") ||
           http_span_is(name, "Content-Range") || http_span_is(name, "Age") ||
           http_span_is(name, "Cache-Status") || http_span_is(name, "Connection") ||
           http_span_is(name, "Keep-Alive") || http_span_is(name, "Trailer");
}

void policy_merge_304(const char *head, size_t len, const struct http_field *f, size_t n,
                      struct buf *out)
{
    struct http_field s[FIELDS_MAX];
    size_t ns = policy_fields(head, len, s, FIELDS_MAX);
    for (size_t i = 0; i < ns; i++) {
        bool replaced = false;
        for (size_t k = 0; k < n && !replaced; k++)
            replaced = !kept_from_stored(f[k].name) && f[k].name.n == s[i].name.n &&
                       strncasecmp(f[k].name.p, s[i].name.p, s[i].name.n) == 0;
        if (!replaced)
            put_line(out, s[i].name, s[i].value);
    }
    for (size_t k = 0; k < n; k++)
        if (!kept_from_stored(f[k].name))
            put_line(out, f[k].name, f[k].value);
}

/* The opaque-tag of entity-tag t (W/ and quotes off); false if t is
 * not one. */
static bool opaque(struct span t, struct span *o)
{
    if (t.n >= 2 && t.p[0] == 'W' && t.p[1] == '/') {
        t.p += 2;
        t.n -= 2;
    }
    if (t.n < 2 || t.p[0] != '"' || t.p[t.n - 1] != '"')
        return false;
    *o = (struct span){t.p + 1, t.n - 2};
    return true;
}

bool policy_etag_match(struct span list, struct span tag)
{
    struct span mine, e, o;
    if (!opaque(tag, &mine))
        return false;
    while (http_list_next(&list, &e))
        if ((e.n == 1 && e.p[0] == '*') ||
            (opaque(e, &o) && o.n == mine.n && memcmp(o.p, mine.p, o.n) == 0))
            return true;
    return false;
}

bool policy_not_modified(const struct http_field *r, size_t nr, const struct http_field *s,
                         size_t ns)
{
    struct span inm = http_fields_find(r, nr, "If-None-Match");
    if (inm.p) {
        struct span etag = http_fields_find(s, ns, "ETag");
        return etag.p && policy_etag_match(inm, etag);
    }
    /* §4.3.2: without Last-Modified, the stored response's Date. */
    struct span ims = http_fields_find(r, nr, "If-Modified-Since");
    struct span lm = http_fields_find(s, ns, "Last-Modified");
    if (!lm.p)
        lm = http_fields_find(s, ns, "Date");
    time_t since, modified;
    return ims.p && lm.p && http_date_parse(ims.p, ims.n, &since) == 0 &&
           http_date_parse(lm.p, lm.n, &modified) == 0 && modified <= since;
}

bool policy_304_field(struct span name)
{
    return http_span_is(name, "Cache-Control") || http_span_is(name, "Content-Location") ||
           http_span_is(name, "Date") || http_span_is(name, "ETag") ||
           http_span_is(name, "Expires") || http_span_is(name, "Vary") ||
           http_span_is(name, "Last-Modified");
}
