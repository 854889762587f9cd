/* Preconditions (RFC 9110 §13.2.2) for GET and HEAD. */
#include "mod/static/internal.h"

#include <string.h>

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

bool etag_list_match(const char *p, size_t n, const char *etag, bool strong, bool *malformed)
{
    if (malformed)
        *malformed = false;
    while (n && is_ows(*p))
        p++, n--;
    while (n && is_ows(p[n - 1]))
        n--;
    if (n == 1 && *p == '*')
        return true;
    size_t elen = etag ? strlen(etag) : 0;
    bool match = false, any = false;
    size_t i = 0;
    while (i < n) {
        /* Empty list elements are allowed (RFC 9110 §5.6.1.2). */
        if (is_ows(p[i]) || p[i] == ',') {
            i++;
            continue;
        }
        bool weak = false;
        if (n - i >= 2 && p[i] == 'W' && p[i + 1] == '/') {
            weak = true;
            i += 2;
        }
        if (i >= n || p[i] != '"')
            goto bad;
        size_t start = i++;
        while (i < n && p[i] != '"') {
            unsigned char c = (unsigned char)p[i];
            if (c < 0x21 || c == 0x7f) /* etagc: %x21 / %x23-7E / obs-text */
                goto bad;
            i++;
        }
        if (i >= n)
            goto bad;
        i++;
        any = true;
        /* Our tags are strong: strong comparison fails on a weak one. */
        if (etag && i - start == elen && memcmp(p + start, etag, elen) == 0 && !(strong && weak))
            match = true;
        while (i < n && is_ows(p[i]))
            i++;
        if (i < n && p[i] != ',')
            goto bad;
    }
    if (any)
        return match;
bad:
    if (malformed)
        *malformed = true;
    return false;
}

/* A header's date, or false if absent or not a valid HTTP-date (which the
 * RFC says to ignore). */
static bool header_date(const struct verbd_request *req, const char *name, time_t *t)
{
    size_t n;
    const char *p = verbd_request_header(req, name, &n);
    return p && http_date_parse(p, n, t) == 0;
}

enum cond_result cond_evaluate(const struct verbd_request *req, const struct validators *v)
{
    size_t n;
    time_t t;
    /* 1, 2: a failed If-Match (or, without it, If-Unmodified-Since) is a
     * 412.  A malformed If-Match cannot be confirmed, so it fails too. */
    const char *im = verbd_request_header(req, "If-Match", &n);
    if (im) {
        if (!etag_list_match(im, n, v->etag, true, NULL))
            return COND_FAILED;
    } else if (v->has_mtime && header_date(req, "If-Unmodified-Since", &t) && v->mtime > t) {
        return COND_FAILED;
    }
    /* 3, 4: a matching If-None-Match (or, without it, an If-Modified-Since
     * the representation is not newer than) is a 304.  A malformed
     * If-None-Match matches nothing: the full answer is the safe one.  A
     * date in the future counts like any other (RFC 9110 dropped RFC
     * 2616's "later than the server's time is invalid"). */
    const char *inm = verbd_request_header(req, "If-None-Match", &n);
    if (inm) {
        if (etag_list_match(inm, n, v->etag, false, NULL))
            return COND_NOT_MODIFIED;
    } else if (v->has_mtime && header_date(req, "If-Modified-Since", &t) && v->mtime <= t) {
        return COND_NOT_MODIFIED;
    }
    return COND_PROCEED;
}

bool cond_if_range(const struct verbd_request *req, const struct validators *v)
{
    size_t n;
    const char *p = verbd_request_header(req, "If-Range", &n);
    return !p || range_if_range_matches(p, n, v->etag, v->etag ? strlen(v->etag) : 0, v->has_mtime,
                                        v->mtime);
}
