/* The HTTP/1.1 response-head parser (RFC 9112 §4, §5, §6.3): see
 * response.h for the contract.
 *
 * One sequential pass from the start of the buffer, re-run by the caller
 * as bytes arrive (a client reads one head per exchange, so the rescans do
 * not matter).  Every rejection is decided by the bytes up to some position
 * and the checks that need the whole head run after its final CRLF, so a
 * prefix of a head gives 0 or exactly the result of the whole. */
#include "http/response.h"

#include <limits.h>
#include <string.h>

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}
static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}
static bool is_tchar(char c)
{
    return http_is_token(&c, 1);
}

/* field-value and reason-phrase octets: VCHAR, obs-text, SP, HTAB */
static bool is_text(char c)
{
    unsigned char u = (unsigned char)c;
    return (u >= 0x21 && u != 0x7f) || u == ' ' || u == '\t';
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

static bool eq_nocase(const char *a, size_t n, const char *lit)
{
    if (strlen(lit) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower(a[i]) != lit[i])
            return false;
    return true;
}

static int fail(const char **why, const char *msg)
{
    *why = msg;
    return -1;
}

bool http_allow_parse(struct span value, method_set *set, size_t *others)
{
    struct span e;
    bool ok = true;
    *set = 0;
    *others = 0;
    while (http_list_next(&value, &e)) {
        if (!http_is_token(e.p, e.n)) {
            ok = false;
            continue;
        }
        int id = method_lookup(e.p, e.n);
        if (id == METHOD_UNKNOWN)
            ++*others;
        else
            *set |= METHOD_BIT(id);
    }
    return ok;
}

bool http_allow_has(struct span value, const char *m, size_t n)
{
    struct span e;
    while (http_list_next(&value, &e))
        if (e.n == n && memcmp(e.p, m, n) == 0)
            return true;
    return false;
}

/* Content-Length = 1*DIGIT, or identical values as a list or repeated
 * fields (RFC 9110 §8.6).  At most 19 digits, so no overflow. */
static int parse_length(struct span v, bool *seen, uint64_t *out, const char **why)
{
    const char *p = v.p, *end = v.p + v.n;
    for (;;) {
        while (p < end && is_ows(*p))
            p++;
        const char *d = p;
        uint64_t x = 0;
        for (; p < end && is_digit(*p); p++) {
            if (p - d == 19)
                return fail(why, "Content-Length too large");
            x = x * 10 + (uint64_t)(*p - '0');
        }
        if (p == d)
            return fail(why, "invalid Content-Length");
        if (*seen && x != *out)
            return fail(why, "conflicting Content-Length values");
        *seen = true;
        *out = x;
        while (p < end && is_ows(*p))
            p++;
        if (p == end)
            return 0;
        if (*p++ != ',')
            return fail(why, "invalid Content-Length");
    }
}

/* Framing and persistence from the whole head (RFC 9112 §6.3, §9.3). */
static int check_fields(struct http_response *r, bool head_request, const char **why)
{
    bool have_length = false, have_te = false, chunked_last = false;
    int chunked_count = 0;
    bool close = false, keep_alive = false;
    uint64_t length = 0;

    for (size_t i = 0; i < r->nfields; i++) {
        struct span name = r->fields[i].name, v = r->fields[i].value, e;
        if (eq_nocase(name.p, name.n, "content-length")) {
            if (parse_length(v, &have_length, &length, why) < 0)
                return -1;
        } else if (eq_nocase(name.p, name.n, "transfer-encoding")) {
            have_te = true;
            while (http_list_next(&v, &e)) {
                size_t n = 0;
                while (n < e.n && is_tchar(e.p[n]))
                    n++;
                if (n == 0)
                    return fail(why, "malformed Transfer-Encoding");
                chunked_last = eq_nocase(e.p, n, "chunked") && n == e.n;
                chunked_count += chunked_last;
            }
        } else if (eq_nocase(name.p, name.n, "connection")) {
            close |= http_list_has(v, "close");
            keep_alive |= http_list_has(v, "keep-alive");
        }
    }

    bool no_body_status = r->status < 200 || r->status == 204 || r->status == 304;
    if (have_length && (r->status < 200 || r->status == 204))
        r->quirks |= RESPONSE_LENGTH_ON_NONE;
    if (have_te && have_length)
        r->quirks |= RESPONSE_TE_AND_CL;
    if (chunked_count > 1 || (have_te && r->minor == 0))
        r->quirks |= RESPONSE_TE_FAULTY;
    if (head_request || no_body_status) {
        r->framing = RESPONSE_NONE;
    } else if (have_te) {
        r->framing = chunked_last ? RESPONSE_CHUNKED : RESPONSE_CLOSE;
    } else if (have_length) {
        r->framing = RESPONSE_LENGTH;
        r->content_length = length;
    } else {
        r->framing = RESPONSE_CLOSE;
    }
    if (have_length)
        r->content_length = length; /* a HEAD's announces its GET's */
    r->keep_alive = (r->minor == 1 ? !close : keep_alive && !close) &&
                    r->framing != RESPONSE_CLOSE &&
                    !(r->quirks & (RESPONSE_TE_AND_CL | RESPONSE_TE_FAULTY));
    return 0;
}

static int parse_head(const char *buf, size_t n, const struct response_limits *lim,
                      bool head_request, struct http_field *fields, struct http_response *r,
                      const char **why)
{
    size_t i = 0;
    memset(r, 0, sizeof *r);
    r->fields = fields;

    /* "HTTP/" DIGIT "." DIGIT SP 3DIGIT */
    static const char shape[] = "HTTP/d.d DDD";
    for (; i < sizeof shape - 1; i++) {
        if (i >= n)
            return 0;
        char c = buf[i], want = shape[i];
        bool ok = want == 'd' || want == 'D' ? is_digit(c) : c == want;
        if (!ok)
            return fail(why,
                        i < 9 ? "malformed HTTP version in status line" : "malformed status code");
    }
    if (buf[5] != '1')
        return fail(why, "HTTP major version is not 1");
    r->minor = buf[7] == '0' ? 0 : 1;
    r->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    if (r->status < 100 || r->status > 599)
        return fail(why, "status code out of range");

    /* [ SP reason-phrase ] CRLF */
    if (i >= n)
        return 0;
    if (buf[i] == ' ') {
        i++;
    } else if (buf[i] == '\r') {
        r->quirks |= RESPONSE_NO_REASON_SP;
    } else {
        return fail(why, "malformed status code");
    }
    size_t reason = i;
    while (i < n && is_text(buf[i]))
        i++;
    if (i >= n)
        return 0;
    if (buf[i] != '\r')
        return fail(why, buf[i] == '\n' ? "bare LF in status line"
                                        : "invalid character in reason phrase");
    if (i + 1 >= n)
        return 0;
    if (buf[i + 1] != '\n')
        return fail(why, "bare CR in status line");
    r->reason = (struct span){buf + reason, i - reason};
    i += 2;

    /* *( field-line CRLF ) CRLF */
    size_t nf = 0;
    long end = http_parse_fields(buf, i, n, fields, lim->max_fields, &nf, why);
    if (end <= 0)
        return end == 0 ? 0 : -1;
    i = (size_t)end;
    r->nfields = nf;
    r->head_len = i;
    if (check_fields(r, head_request, why) < 0)
        return -1;
    return (int)i;
}

int http_parse_response(const char *buf, size_t len, const struct response_limits *limits,
                        bool head_request, struct http_field *fields, struct http_response *resp,
                        const char **why)
{
    const char *ignored;
    if (!why)
        why = &ignored;
    *why = NULL;
    /* Parse within the limit only: a head still incomplete after
     * max_header bytes is too large, unless an earlier byte is wrong. */
    size_t max = limits->max_header < INT_MAX ? limits->max_header : INT_MAX;
    int rc = parse_head(buf, len < max ? len : max, limits, head_request, fields, resp, why);
    if (rc == 0 && len > max)
        return fail(why, "response header section too large");
    return rc;
}

struct span http_response_field(const struct http_response *resp, const char *name)
{
    return http_fields_find(resp->fields, resp->nfields, name);
}
