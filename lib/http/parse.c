/* The HTTP/1.1 request-head parser (RFC 9112, RFC 9110): see parse.h for
 * the contract.
 *
 * How it stays cheap although it is re-run from the start each time bytes
 * arrive: while the head is incomplete, a few memchr passes decide
 * whether a full parse could say anything new (see worth_parsing()).  The
 * full parse is one sequential pass; every rejection is decided by the bytes
 * up to some position only, and the first one in byte order wins.  So a
 * prefix of a request either gives 0 or exactly the result of the whole.
 *
 * Line endings: we require CRLF everywhere in the head and reject a bare LF
 * (and a bare CR) with 400.  RFC 9112 §2.2 allows a recipient to accept a
 * bare LF; we do not, so that we never frame a message differently from a
 * strict intermediary in front of us. */
#include "http/parse.h"

#include <limits.h>
#include <string.h>

#include "http/method.h"

/* Leading empty lines skipped before the request line (RFC 9112 §2.2 asks
 * for at least one). */
#define MAX_EMPTY_LINES 4
/* Longest method token we accept; the registered ones are at most 17. */
#define MAX_METHOD 64
/* A request line but its target: the method, SP, SP, "HTTP/1.1", CRLF. */
#define LINE_OVERHEAD (MAX_METHOD + 12)

/* Character classes, computed at compile time from the grammar. */
#define C_ALPHA(c) (((c) >= 'A' && (c) <= 'Z') || ((c) >= 'a' && (c) <= 'z'))
#define C_DIGIT(c) ((c) >= '0' && (c) <= '9')
#define C_HEX(c) (C_DIGIT(c) || ((c) >= 'A' && (c) <= 'F') || ((c) >= 'a' && (c) <= 'f'))
#define C_VCHAR(c) ((c) >= 0x21 && (c) <= 0x7e)
/* RFC 9110 §5.6.2 tchar */
#define C_TCHAR(c)                                                                                 \
    (C_ALPHA(c) || C_DIGIT(c) || (c) == '!' || (c) == '#' || (c) == '$' || (c) == '%' ||           \
     (c) == '&' || (c) == '\'' || (c) == '*' || (c) == '+' || (c) == '-' || (c) == '.' ||          \
     (c) == '^' || (c) == '_' || (c) == '`' || (c) == '|' || (c) == '~')
/* RFC 3986 unreserved and sub-delims: what a reg-name is made of. */
#define C_UNRESERVED(c)                                                                            \
    (C_ALPHA(c) || C_DIGIT(c) || (c) == '-' || (c) == '.' || (c) == '_' || (c) == '~')
#define C_SUBDELIM(c)                                                                              \
    ((c) == '!' || (c) == '$' || (c) == '&' || (c) == '\'' || (c) == '(' || (c) == ')' ||          \
     (c) == '*' || (c) == '+' || (c) == ',' || (c) == ';' || (c) == '=')

enum {
    CT_TCHAR = 1,  /* token */
    CT_TARGET = 2, /* request-target: VCHAR except '#' */
    CT_VALUE = 4,  /* field-value: VCHAR, obs-text, SP, HTAB */
    CT_HOST = 8,   /* reg-name: unreserved, sub-delims (pct-encoded apart) */
    CT_DIGIT = 16,
    CT_HEX = 32,
};

#define CT(c)                                                                                      \
    ((C_TCHAR(c) ? CT_TCHAR : 0) | (C_VCHAR(c) && (c) != '#' ? CT_TARGET : 0) |                    \
     (C_VCHAR(c) || (c) >= 0x80 || (c) == ' ' || (c) == '\t' ? CT_VALUE : 0) |                     \
     (C_UNRESERVED(c) || C_SUBDELIM(c) ? CT_HOST : 0) | (C_DIGIT(c) ? CT_DIGIT : 0) |              \
     (C_HEX(c) ? CT_HEX : 0))
#define CT4(b) CT(b), CT((b) + 1), CT((b) + 2), CT((b) + 3)
#define CT16(b) CT4(b), CT4((b) + 4), CT4((b) + 8), CT4((b) + 12)
#define CT64(b) CT16(b), CT16((b) + 16), CT16((b) + 32), CT16((b) + 48)

static const unsigned char ctype[256] = {CT64(0), CT64(64), CT64(128), CT64(192)};

static inline bool is(char c, int cls)
{
    return ctype[(unsigned char)c] & cls;
}
static inline bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Word-at-a-time scanning for the two long runs, target and field values
 * (the classic "has a byte less than / more than / equal to" bit tricks:
 * exact as to whether any byte matches).  Bytes are read with memcpy, so
 * alignment does not matter. */
#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)
#define HAS_LESS(w, b) (((w)-ONES * (b)) & ~(w)&HIGHS)
#define HAS_MORE(w, b) ((((w) + ONES * (127 - (b))) | (w)) & HIGHS)
#define HAS_BYTE(w, b) HAS_LESS((w) ^ (ONES * (b)), 1)

static inline uint64_t load8(const char *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

/* Index of the first byte at or after i that is not in class `cls`, or n. */
static size_t skip_class(const char *buf, size_t i, size_t n, int cls)
{
    for (;;) {
        if (cls == CT_VALUE) {
            /* VCHAR, obs-text, SP: not below 0x20 and not DEL (HTAB goes
             * the slow way). */
            while (n - i >= 8 && !HAS_LESS(load8(buf + i), 0x20) && !HAS_BYTE(load8(buf + i), 0x7f))
                i += 8;
        } else if (cls == CT_TARGET) {
            /* 0x21-0x7E but '#'. */
            while (n - i >= 8) {
                uint64_t w = load8(buf + i);
                if (HAS_LESS(w, 0x21) || HAS_MORE(w, 0x7e) || HAS_BYTE(w, '#'))
                    break;
                i += 8;
            }
        }
        size_t stop = n - i > 8 ? i + 8 : n;
        while (i < stop && is(buf[i], cls))
            i++;
        if (i < stop || i == n)
            return i;
    }
}

static int fail(const char **why, int status, const char *msg)
{
    *why = msg;
    return -status;
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

/* ASCII case-insensitive comparison, independent of the locale. */
static bool eq_nocase(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower(a[i]) != lower(b[i]))
            return false;
    return true;
}

static bool span_is(struct span s, const char *lit, size_t n)
{
    return s.n == n && memcmp(s.p, lit, n) == 0;
}

bool http_is_token(const char *p, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is(p[i], CT_TCHAR))
            return false;
    return true;
}

/* uri-host [ ":" port ] (RFC 3986 §3.2.2, §3.2.3): a reg-name or IPv4
 * address, or an IP-literal in brackets (checked loosely: hex digits, ':',
 * '.', IPvFuture's characters).  need_port: the port must be there and
 * non-empty (authority-form). */
static bool valid_authority(const char *p, size_t n, bool need_port)
{
    const char *end = p + n;
    if (n == 0)
        return false;
    if (*p == '[') {
        const char *q = ++p;
        while (p < end && *p != ']') {
            if (!is(*p, CT_HOST) && *p != ':' && *p != '%')
                return false;
            p++;
        }
        if (p == end || p == q)
            return false;
        p++;
    } else {
        const char *q = p;
        while (p < end && *p != ':') {
            if (*p == '%') {
                if (end - p < 3 || !is(p[1], CT_HEX) || !is(p[2], CT_HEX))
                    return false;
                p += 3;
                continue;
            }
            if (!is(*p, CT_HOST))
                return false;
            p++;
        }
        if (p == q)
            return false;
    }
    if (p == end)
        return !need_port;
    if (*p++ != ':')
        return false;
    if (p == end)
        return !need_port;
    for (; p < end; p++)
        if (!is(*p, CT_DIGIT))
            return false;
    return true;
}

static void split_query(struct http_request *req, const char *p, size_t n)
{
    const char *q = memchr(p, '?', n);
    if (q) {
        req->path = (struct span){p, (size_t)(q - p)};
        req->query = (struct span){q + 1, n - (size_t)(q - p) - 1};
    } else {
        req->path = (struct span){p, n};
        req->query = (struct span){NULL, 0};
    }
}

/* Length of "http://" or "https://" at the start of t (any case), or 0. */
static size_t scheme_len(struct span t)
{
    if (t.n >= 7 && eq_nocase(t.p, "http://", 7))
        return 7;
    if (t.n >= 8 && eq_nocase(t.p, "https://", 8))
        return 8;
    return 0;
}

/* Sets form, path, query and (absolute/authority form) host from the
 * target.  `slash` is the '/' of "HTTP/" in the request line: the path of
 * an absolute-form target without one, so that every span stays inside the
 * caller's buffer. */
static int classify_target(struct http_request *req, const char *slash, const char **why)
{
    struct span t = req->target;
    bool connect = span_is(req->method, "CONNECT", 7);

    if (t.p[0] == '/') {
        if (connect)
            return fail(why, 400, "CONNECT needs a host:port target");
        req->form = TARGET_ORIGIN;
        split_query(req, t.p, t.n);
        return 0;
    }
    if (t.n == 1 && t.p[0] == '*') {
        if (!span_is(req->method, "OPTIONS", 7))
            return fail(why, 400, "request-target \"*\" is only for OPTIONS");
        req->form = TARGET_ASTERISK;
        req->path = t;
        return 0;
    }
    if (connect) {
        if (memchr(t.p, '@', t.n))
            return fail(why, 400, "userinfo in request-target");
        if (!valid_authority(t.p, t.n, true))
            return fail(why, 400, "CONNECT needs a host:port target");
        req->form = TARGET_AUTHORITY;
        req->host = t;
        req->path = (struct span){t.p + t.n, 0};
        return 0;
    }
    size_t s = scheme_len(t);
    if (!s)
        return fail(why, 400, "invalid request-target");
    const char *a = t.p + s, *end = t.p + t.n, *e = a;
    while (e < end && *e != '/' && *e != '?')
        e++;
    if (memchr(a, '@', (size_t)(e - a)))
        return fail(why, 400, "userinfo in request-target");
    if (!valid_authority(a, (size_t)(e - a), false))
        return fail(why, 400, "invalid host in request-target");
    req->form = TARGET_ABSOLUTE;
    req->host = (struct span){a, (size_t)(e - a)};
    if (e < end && *e == '/') {
        split_query(req, e, (size_t)(end - e));
    } else {
        req->path = (struct span){slash, 1};
        req->query = e < end ? (struct span){e + 1, (size_t)(end - e) - 1} : (struct span){NULL, 0};
    }
    return 0;
}

/* Content-Length = 1*DIGIT, or a list of identical values ("5, 5", RFC 9110
 * §8.6), also across repeated fields.  A value past 64 bits saturates: it
 * is valid syntax and simply too large (413). */
static int parse_length(struct span v, bool *seen, uint64_t *out, const char **why)
{
    const char *p = v.p, *end = v.p + v.n;
    for (;;) {
        while (p < end && is_ows(*p))
            p++;
        const char *d = p;
        uint64_t x = 0;
        for (; p < end && is(*p, CT_DIGIT); p++) {
            uint64_t digit = (uint64_t)(*p - '0');
            x = x > (UINT64_MAX - digit) / 10 ? UINT64_MAX : x * 10 + digit;
        }
        if (p == d)
            return fail(why, 400, "invalid Content-Length");
        if (*seen && x != *out)
            return fail(why, 400, "conflicting Content-Length values");
        *seen = true;
        *out = x;
        while (p < end && is_ows(*p))
            p++;
        if (p == end)
            return 0;
        if (*p++ != ',')
            return fail(why, 400, "invalid Content-Length");
    }
}

struct te_state {
    bool present; /* a Transfer-Encoding field was seen */
    bool chunked; /* "chunked" was seen */
    bool unknown; /* a coding we do not implement was seen */
};

/* Skips a token; false if there is none. */
static bool skip_token(const char **pp, const char *end)
{
    const char *p = *pp;
    while (p < end && is(*p, CT_TCHAR))
        p++;
    if (p == *pp)
        return false;
    *pp = p;
    return true;
}

/* Skips a quoted-string.  The field value holds only VCHAR, obs-text, SP
 * and HTAB, so any byte but '"' and '\' is qdtext and any byte may follow
 * '\'. */
static bool skip_quoted(const char **pp, const char *end)
{
    const char *p = *pp;
    if (p == end || *p != '"')
        return false;
    for (p++; p < end; p++) {
        if (*p == '"') {
            *pp = p + 1;
            return true;
        }
        if (*p == '\\' && ++p == end)
            return false;
    }
    return false;
}

/* One Transfer-Encoding field: transfer-coding = token *( OWS ";" OWS
 * token BWS "=" BWS ( token / quoted-string ) ), as a list (RFC 9112 §6.1,
 * §7).  Empty list elements are rejected here, stricter than RFC 9110
 * §5.6.1 asks, because this field decides the framing. */
static int parse_te(struct span v, struct te_state *te, const char **why)
{
    const char *p = v.p, *end = v.p + v.n;
    te->present = true;
    for (;;) {
        while (p < end && is_ows(*p))
            p++;
        const char *c = p;
        if (!skip_token(&p, end))
            return fail(why, 400,
                        p == end || *p == ',' ? "empty Transfer-Encoding element"
                                              : "malformed Transfer-Encoding");
        bool is_chunked = p - c == 7 && eq_nocase(c, "chunked", 7);
        bool params = false;
        for (;;) {
            const char *q = p;
            while (q < end && is_ows(*q))
                q++;
            if (q == end || *q != ';')
                break;
            params = true;
            p = q + 1;
            while (p < end && is_ows(*p))
                p++;
            if (!skip_token(&p, end))
                return fail(why, 400, "malformed Transfer-Encoding");
            while (p < end && is_ows(*p))
                p++;
            if (p == end || *p++ != '=')
                return fail(why, 400, "malformed Transfer-Encoding");
            while (p < end && is_ows(*p))
                p++;
            if (!skip_token(&p, end) && !skip_quoted(&p, end))
                return fail(why, 400, "malformed Transfer-Encoding");
        }
        if (te->chunked)
            return fail(why, 400,
                        is_chunked ? "chunked applied more than once"
                                   : "chunked is not the last transfer coding");
        if (is_chunked)
            te->chunked = true;
        if (!is_chunked || params)
            te->unknown = true;
        while (p < end && is_ows(*p))
            p++;
        if (p == end)
            return 0;
        if (*p++ != ',')
            return fail(why, 400, "malformed Transfer-Encoding");
    }
}

/* The checks that need the whole head: Host, framing, Connection, Expect.
 * Field order decides between two 400s; then 400 before 501, 413, 417. */
static int check_fields(struct http_request *req, const struct http_limits *lim, const char **why)
{
    struct te_state te = {false, false, false};
    bool have_length = false, close = false, keep_alive = false;
    bool have_expect = false, expect_other = false;
    size_t hosts = 0;
    struct span host = {req->target.p, 0};
    uint64_t length = 0;
    int rc;

    for (size_t i = 0; i < req->nfields; i++) {
        struct span name = req->fields[i].name, v = req->fields[i].value;
        switch (name.n) {
        case 4:
            if (eq_nocase(name.p, "host", 4)) {
                if (++hosts > 1)
                    return fail(why, 400, "more than one Host field");
                if (v.n && !valid_authority(v.p, v.n, false))
                    return fail(why, 400, "invalid Host");
                host = v;
            }
            break;
        case 6:
            if (eq_nocase(name.p, "expect", 6)) {
                have_expect = true;
                if (!(v.n == 12 && eq_nocase(v.p, "100-continue", 12)))
                    expect_other = true;
            }
            break;
        case 10:
            if (eq_nocase(name.p, "connection", 10)) {
                close |= http_list_has(v, "close");
                keep_alive |= http_list_has(v, "keep-alive");
            }
            break;
        case 14:
            if (eq_nocase(name.p, "content-length", 14) &&
                (rc = parse_length(v, &have_length, &length, why)) < 0)
                return rc;
            break;
        case 17:
            if (eq_nocase(name.p, "transfer-encoding", 17) && (rc = parse_te(v, &te, why)) < 0)
                return rc;
            break;
        }
    }

    if (req->minor == 1 && hosts == 0)
        return fail(why, 400, "missing Host");
    /* Origin-form and "*" take the target's authority from Host, and an
     * http URI has one (RFC 9112 §3.2, RFC 9110 §4.2.1): an empty Host
     * is an invalid one.  Absolute- and authority-form carry their own
     * (Host is then ignored), and HTTP/1.0 needs no Host at all. */
    if (req->minor == 1 && host.n == 0 &&
        (req->form == TARGET_ORIGIN || req->form == TARGET_ASTERISK))
        return fail(why, 400, "empty Host");
    if (req->form == TARGET_ORIGIN || req->form == TARGET_ASTERISK)
        req->host = host;
    if (te.present) {
        if (req->minor == 0)
            return fail(why, 400, "Transfer-Encoding in an HTTP/1.0 request");
        if (have_length)
            return fail(why, 400, "both Transfer-Encoding and Content-Length");
        if (te.unknown)
            return fail(why, 501, "transfer coding not implemented");
        req->framing = BODY_CHUNKED;
    } else if (have_length) {
        if (length > lim->max_body || length == UINT64_MAX)
            return fail(why, 413, "request body too large");
        req->framing = BODY_LENGTH;
        req->content_length = length;
    }
    req->keep_alive = req->minor == 1 ? !close : keep_alive && !close;
    if (have_expect && req->minor == 1) {
        if (expect_other)
            return fail(why, 417, "only Expect: 100-continue is supported");
        req->expect_continue = true;
    }
    return 0;
}

static long field_error(const char **why, const char *what)
{
    *why = what;
    return HTTP_FIELDS_MALFORMED;
}

long http_parse_fields(const char *buf, size_t i, size_t n, struct http_field *fields,
                       size_t max_fields, size_t *nfields, const char **why)
{
    size_t nf = 0;
    for (;;) {
        if (i >= n)
            return 0;
        char c = buf[i];
        if (c == '\r') {
            if (i + 1 >= n)
                return 0;
            if (buf[i + 1] != '\n')
                return field_error(why, "bare CR in header");
            i += 2;
            break;
        }
        if (c == '\n')
            return field_error(why, "bare LF in header");
        if (is_ows(c))
            return field_error(why, nf ? "obsolete line folding in header"
                                       : "whitespace before the first header field");
        if (nf == max_fields) {
            *why = "too many header fields";
            return HTTP_FIELDS_TOO_MANY;
        }

        size_t name = i;
        while (i < n && is(buf[i], CT_TCHAR))
            i++;
        if (i >= n)
            return 0;
        c = buf[i];
        if (c != ':')
            return field_error(why, is_ows(c) ? "whitespace between header field name and colon"
                                    : c == '\r' || c == '\n'
                                        ? "header field line without colon"
                                        : "invalid character in header field name");
        if (i == name)
            return field_error(why, "empty header field name");
        size_t name_end = i++;

        while (i < n && is_ows(buf[i]))
            i++;
        size_t val = i;
        i = skip_class(buf, i, n, CT_VALUE);
        if (i >= n)
            return 0;
        if (buf[i] != '\r')
            return field_error(why, buf[i] == '\n' ? "bare LF in header"
                                                   : "invalid character in header field value");
        if (i + 1 >= n)
            return 0;
        if (buf[i + 1] != '\n')
            return field_error(why, "bare CR in header");
        size_t val_end = i;
        while (val_end > val && is_ows(buf[val_end - 1]))
            val_end--;
        fields[nf].name = (struct span){buf + name, name_end - name};
        fields[nf].value = (struct span){buf + val, val_end - val};
        nf++;
        i += 2;
    }
    *nfields = nf;
    return (long)i;
}

/* The sequential parse of buf[0, n): > 0 complete, 0 need more, < 0 error. */
static int parse_head(const char *buf, size_t n, const struct http_limits *lim,
                      struct http_field *fields, struct http_request *req, const char **why)
{
    size_t i = 0;
    memset(req, 0, sizeof *req);
    req->fields = fields;

    for (int k = 0;; k++) {
        if (i >= n)
            return 0;
        if (buf[i] == '\n')
            return fail(why, 400, "bare LF in request");
        if (buf[i] != '\r')
            break;
        if (i + 1 >= n)
            return 0;
        if (buf[i + 1] != '\n')
            return fail(why, 400, "bare CR in request");
        if (k == MAX_EMPTY_LINES)
            return fail(why, 400, "too many empty lines before the request line");
        i += 2;
    }

    /* method SP */
    size_t m = i;
    while (i < n && is(buf[i], CT_TCHAR)) {
        if (i - m == MAX_METHOD)
            return fail(why, 400, "method too long");
        i++;
    }
    if (i >= n)
        return 0;
    if (buf[i] != ' ' || i == m)
        return fail(why, 400, i == m ? "malformed request line" : "invalid character in method");
    req->method = (struct span){buf + m, i - m};

    /* request-target SP */
    size_t t = ++i;
    i = skip_class(buf, i, n, CT_TARGET);
    if (i - t > lim->max_target)
        return fail(why, 414, "request-target too long");
    if (i >= n)
        return 0;
    if (buf[i] == '#')
        return fail(why, 400, "fragment in request-target");
    if (buf[i] != ' ' || i == t)
        return fail(why, 400,
                    i == t || buf[i] == '\r' || buf[i] == '\n'
                        ? "malformed request line"
                        : "invalid character in request-target");
    req->target = (struct span){buf + t, i - t};

    /* "HTTP/" DIGIT "." DIGIT CRLF */
    size_t v = ++i;
    for (; i - v < 10; i++) {
        if (i >= n)
            return 0;
        char c = buf[i];
        size_t k = i - v;
        bool ok = k < 5    ? c == "HTTP/"[k]
                  : k == 6 ? c == '.'
                  : k == 8 ? c == '\r'
                  : k == 9 ? c == '\n'
                           : is(c, CT_DIGIT);
        if (!ok)
            return fail(why, 400,
                        k == 9                ? "bare CR in request line"
                        : k == 8 && c == '\n' ? "bare LF in request line"
                                              : "malformed HTTP version");
    }
    if (buf[v + 5] != '1')
        return fail(why, 505, "HTTP version not supported");
    req->minor = buf[v + 7] == '0' ? 0 : 1;
    int rc = classify_target(req, buf + v + 4, why);
    if (rc < 0)
        return rc;

    /* *( field-line CRLF ) CRLF */
    size_t nf = 0;
    long end = http_parse_fields(buf, i, n, fields, lim->max_fields, &nf, why);
    if (end <= 0)
        return end == 0 ? 0 : fail(why, end == HTTP_FIELDS_TOO_MANY ? 431 : 400, *why);
    i = (size_t)end;
    req->nfields = nf;
    req->head_len = i;

    rc = check_fields(req, lim, why);
    return rc < 0 ? rc : (int)i;
}

static size_t add_sat(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

/* Whether a full parse of the incomplete head buf[0, n) may give anything
 * but 0.  Each test is monotonic: once true for some bytes it stays true
 * for any continuation, which keeps results split-independent. */
static bool worth_parsing(const char *buf, size_t n, const struct http_limits *lim)
{
    size_t s = 0;
    for (int k = 0; k < MAX_EMPTY_LINES && s + 1 < n && buf[s] == '\r' && buf[s + 1] == '\n'; k++)
        s += 2;
    /* Each LF: the end of the head if CRLF follows; a bare LF if no CR
     * precedes (after which no head may ever end, so do not wait for the
     * limit). */
    const char *end = buf + n;
    for (const char *p = buf + s; (p = memchr(p, '\n', (size_t)(end - p))); p++) {
        if (p == buf || p[-1] != '\r')
            return true;
        if (end - p >= 3 && p[1] == '\r' && p[2] == '\n')
            return true;
    }
    /* A bare CR. */
    for (const char *p = buf; (p = memchr(p, '\r', (size_t)(end - p))); p++)
        if (p + 1 < end && p[1] != '\n')
            return true;
    /* A method or a target already too long, or a request line longer
     * than any acceptable one. */
    const char *sp = memchr(buf + s, ' ', n - s < MAX_METHOD + 1 ? n - s : MAX_METHOD + 1);
    if (!sp)
        return n - s > MAX_METHOD;
    size_t t = (size_t)(sp + 1 - buf);
    if (n - t > lim->max_target && !memchr(buf + t, ' ', lim->max_target + 1))
        return true;
    size_t bound = add_sat(lim->max_target, LINE_OVERHEAD);
    return n - s > bound && !memchr(buf + s, '\n', bound + 1);
}

int http_parse_request(const char *buf, size_t len, const struct http_limits *limits,
                       struct http_field *fields, struct http_request *req, const char **why)
{
    const char *ignored;
    if (!why)
        why = &ignored;
    *why = NULL;
    /* The head is parsed within its limit only: a head still incomplete
     * after max_header bytes is 431, unless an earlier byte is wrong. */
    size_t max_header = limits->max_header < INT_MAX ? limits->max_header : INT_MAX;
    size_t n = len < max_header ? len : max_header;
    if (len <= max_header && !worth_parsing(buf, n, limits))
        return 0;
    int rc = parse_head(buf, n, limits, fields, req, why);
    if (rc == 0 && len > max_header)
        return fail(why, 431, "request header section too large");
    return rc;
}

struct span http_fields_find(const struct http_field *fields, size_t nfields, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < nfields; i++)
        if (fields[i].name.n == n && eq_nocase(fields[i].name.p, name, n))
            return fields[i].value;
    return (struct span){NULL, 0};
}

struct span http_field_get(const struct http_request *req, const char *name)
{
    return http_fields_find(req->fields, req->nfields, name);
}

bool http_list_next(struct span *list, struct span *elem)
{
    if (!list->p)
        return false;
    const char *p = list->p, *end = list->p + list->n;
    for (;;) {
        while (p < end && (is_ows(*p) || *p == ','))
            p++;
        if (p == end) {
            *list = (struct span){end, 0};
            return false;
        }
        /* A quoted-string may hold commas (Transfer-Encoding parameters);
         * skip it whole. */
        const char *e = p;
        bool quoted = false;
        for (; e < end && (quoted || *e != ','); e++) {
            if (*e == '"')
                quoted = !quoted;
            else if (*e == '\\' && quoted && e + 1 < end)
                e++;
        }
        const char *t = e;
        while (t > p && is_ows(t[-1]))
            t--;
        *list = (struct span){e, (size_t)(end - e)};
        if (t > p) {
            *elem = (struct span){p, (size_t)(t - p)};
            return true;
        }
        p = e;
    }
}

bool http_list_has(struct span value, const char *token)
{
    size_t n = strlen(token);
    struct span elem;
    while (http_list_next(&value, &elem))
        if (elem.n == n && eq_nocase(elem.p, token, n))
            return true;
    return false;
}

bool http_span_is(struct span s, const char *name)
{
    return s.n == strlen(name) && eq_nocase(s.p, name, s.n);
}

bool http_hop_by_hop(struct span name, const struct http_field *fields, size_t n)
{
    static const char *const fixed[] = {"Connection",
                                        "Keep-Alive",
                                        "Proxy-Connection",
                                        "TE",
                                        "Transfer-Encoding",
                                        "Upgrade",
                                        "Trailer",
                                        "Content-Length",
                                        "Proxy-Authenticate",
                                        "Proxy-Authorization"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (http_span_is(name, fixed[i]))
            return true;
    for (size_t i = 0; i < n; i++) {
        if (!http_span_is(fields[i].name, "Connection"))
            continue;
        struct span list = fields[i].value, tok;
        while (http_list_next(&list, &tok))
            if (tok.n == name.n && eq_nocase(tok.p, name.p, name.n))
                return true;
    }
    return false;
}
