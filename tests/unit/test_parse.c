/* Unit tests for the request-head parser (lib/http/parse.c). */
#include <stdint.h>
#include <stdlib.h>

#include "http/parse.h"
#include "unit.h"

static const struct http_limits default_limits = {
    .max_target = 256, .max_header = 2048, .max_fields = 16, .max_body = 1000000};
static struct http_limits lim;
static struct http_field fields[64];
static struct http_request req;
static const char *why;
static char *buf; /* the last parsed copy: spans point into it */
static size_t buf_len;

/* Parses s[0, n) from a heap copy of exactly n bytes, so that ASan sees any
 * read past the end. */
static int parse_n(const char *s, size_t n)
{
    free(buf);
    buf = malloc(n ? n : 1);
    memcpy(buf, s, n);
    buf_len = n;
    why = NULL;
    memset(&req, 0, sizeof req);
    req.fields = fields;
    memset(fields, 0, sizeof fields);
    return http_parse_request(buf, n, &lim, fields, &req, &why);
}

static int parse(const char *s)
{
    return parse_n(s, strlen(s));
}

/* A span as a string, for CHECK_STR; "(null)" for p == NULL. */
static const char *str(struct span s)
{
    static char ring[8][512];
    static int next;
    if (!s.p)
        return "(null)";
    char *out = ring[next++ % 8];
    size_t n = s.n < 511 ? s.n : 511;
    memcpy(out, s.p, n);
    out[n] = '\0';
    return out;
}

static bool in_buf(struct span s)
{
    return s.p >= buf && s.p + s.n <= buf + buf_len;
}

/* Everything a complete parse produces, with spans as offsets, so that
 * results over different copies compare. */
struct result {
    int rc;
    const char *why;
    long method[2], target[2], path[2], query[2], host[2];
    int form, minor, framing;
    size_t nfields;
    long f[64][4];
    uint64_t content_length;
    bool keep_alive, expect_continue;
    size_t head_len;
};

static void off(long out[2], struct span s)
{
    out[0] = s.p ? (long)(s.p - buf) : -1;
    out[1] = (long)s.n;
}

static void snapshot(struct result *r, int rc)
{
    memset(r, 0, sizeof *r);
    r->rc = rc;
    if (rc < 0)
        r->why = why;
    if (rc <= 0)
        return;
    off(r->method, req.method);
    off(r->target, req.target);
    off(r->path, req.path);
    off(r->query, req.query);
    off(r->host, req.host);
    r->form = (int)req.form;
    r->minor = req.minor;
    r->framing = (int)req.framing;
    r->nfields = req.nfields;
    for (size_t i = 0; i < req.nfields && i < 64; i++) {
        off(r->f[i], req.fields[i].name);
        off(r->f[i] + 2, req.fields[i].value);
    }
    r->content_length = req.content_length;
    r->keep_alive = req.keep_alive;
    r->expect_continue = req.expect_continue;
    r->head_len = req.head_len;
}

static bool same(const struct result *a, const struct result *b)
{
    return memcmp(a, b, sizeof *a) == 0;
}

/* Every prefix of s gives 0 or exactly the result of the whole, and (for a
 * valid head) every prefix shorter than the head gives 0.  One CHECK. */
static void check_prefixes(const char *s, size_t n)
{
    struct result whole, part;
    snapshot(&whole, parse_n(s, n));
    bool ok = true;
    for (size_t k = 0; k < n; k++) {
        int rc = parse_n(s, k);
        snapshot(&part, rc);
        if (rc != 0 && !same(&part, &whole)) {
            ok = false;
            printf("  prefix %zu of \"%.*s\": %d (%s), whole %d (%s)\n", k, (int)n, s, rc,
                   why ? why : "", whole.rc, whole.why ? whole.why : "");
            break;
        }
    }
    CHECK(ok);
}

#define PREFIXES(s) check_prefixes((s), strlen(s))

/* Rejected with `status`, a reason, and consistently over every prefix. */
#define REJECT(s, status)                                                                          \
    do {                                                                                           \
        const char *s_ = (s);                                                                      \
        CHECK_INT(parse(s_), -(status));                                                           \
        CHECK(why &&*why);                                                                         \
        check_prefixes(s_, strlen(s_));                                                            \
    } while (0)

#define REJECT_WHY(s, status, reason)                                                              \
    do {                                                                                           \
        CHECK_INT(parse(s), -(status));                                                            \
        CHECK_STR(why, reason);                                                                    \
    } while (0)

/* Accepted as a head of exactly strlen(s) bytes. */
#define ACCEPT(s)                                                                                  \
    do {                                                                                           \
        const char *s_ = (s);                                                                      \
        int rc_ = parse(s_);                                                                       \
        CHECK_INT(rc_, (int)strlen(s_));                                                           \
        if (rc_ < 0)                                                                               \
            printf("  why: %s\n", why ? why : "(null)");                                           \
    } while (0)

#define H11 " HTTP/1.1\r\nHost: h\r\n"

static void test_simple(void)
{
    const char *s = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
    CHECK_INT(parse(s), (int)strlen(s));
    CHECK(why == NULL);
    CHECK_STR(str(req.method), "GET");
    CHECK_STR(str(req.target), "/");
    CHECK_INT(req.form, TARGET_ORIGIN);
    CHECK_STR(str(req.path), "/");
    CHECK(req.query.p == NULL && req.query.n == 0);
    CHECK_STR(str(req.host), "example.com");
    CHECK_INT(req.minor, 1);
    CHECK(req.fields == fields);
    CHECK_INT(req.nfields, 1);
    CHECK_STR(str(req.fields[0].name), "Host");
    CHECK_STR(str(req.fields[0].value), "example.com");
    CHECK_INT(req.framing, BODY_NONE);
    CHECK_INT(req.content_length, 0);
    CHECK(req.keep_alive);
    CHECK(!req.expect_continue);
    CHECK_INT(req.head_len, strlen(s));
    CHECK(in_buf(req.method) && in_buf(req.target) && in_buf(req.path) && in_buf(req.host));
    PREFIXES(s);

    /* Bytes after the head (a body, a pipelined request) are not read. */
    const char *b =
        "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n";
    size_t head = strlen("POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n");
    CHECK_INT(parse(b), (int)head);
    CHECK_INT(req.head_len, head);
    CHECK_INT(req.framing, BODY_LENGTH);
    CHECK_INT(req.content_length, 5);
    CHECK_STR(str(req.method), "POST");
    CHECK_STR(str(req.path), "/up");
    CHECK_INT(req.nfields, 2);
    CHECK_STR(str(req.fields[1].name), "Content-Length");
    CHECK_STR(str(req.fields[1].value), "5");
    PREFIXES(b);
    /* Bytes after the head do not matter even when they are garbage. */
    CHECK_INT(parse("GET / HTTP/1.1\r\nHost: h\r\n\r\n\n\r\x01"),
              (int)strlen("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
}

static void test_target_forms(void)
{
    const char *s = "GET /a/b%20c?x=1&y=/?z HTTP/1.1\r\nHost: h\r\n\r\n";
    ACCEPT(s);
    CHECK_INT(req.form, TARGET_ORIGIN);
    CHECK_STR(str(req.target), "/a/b%20c?x=1&y=/?z");
    CHECK_STR(str(req.path), "/a/b%20c");
    CHECK_STR(str(req.query), "x=1&y=/?z");
    PREFIXES(s);

    ACCEPT("GET /? HTTP/1.1\r\nHost: h\r\n\r\n");
    CHECK_STR(str(req.path), "/");
    CHECK(req.query.p != NULL && req.query.n == 0);

    ACCEPT("GET //x/../y HTTP/1.1\r\nHost: h\r\n\r\n");
    CHECK_STR(str(req.path), "//x/../y");

    /* absolute-form */
    s = "GET http://example.com:8080/p/q?r=s HTTP/1.1\r\nHost: other\r\n\r\n";
    ACCEPT(s);
    CHECK_INT(req.form, TARGET_ABSOLUTE);
    CHECK_STR(str(req.host), "example.com:8080");
    CHECK_STR(str(req.path), "/p/q");
    CHECK_STR(str(req.query), "r=s");
    CHECK_STR(str(req.target), "http://example.com:8080/p/q?r=s");
    PREFIXES(s);

    ACCEPT("GET HTTPS://Example.COM HTTP/1.1\r\nHost: Example.COM\r\n\r\n");
    CHECK_INT(req.form, TARGET_ABSOLUTE);
    CHECK_STR(str(req.host), "Example.COM");
    CHECK_STR(str(req.path), "/");
    CHECK(in_buf(req.path));
    CHECK(req.query.p == NULL);

    ACCEPT("GET http://h?x=1 HTTP/1.1\r\nHost: h\r\n\r\n");
    CHECK_STR(str(req.host), "h");
    CHECK_STR(str(req.path), "/");
    CHECK_STR(str(req.query), "x=1");

    ACCEPT("GET http://h:/a@b HTTP/1.1\r\nHost: h\r\n\r\n");
    CHECK_STR(str(req.host), "h:");
    CHECK_STR(str(req.path), "/a@b");

    ACCEPT("GET http://[::1]:80/ HTTP/1.1\r\nHost: [::1]:80\r\n\r\n");
    CHECK_STR(str(req.host), "[::1]:80");

    /* HTTP/1.0 absolute-form needs no Host */
    ACCEPT("GET http://h/x HTTP/1.0\r\n\r\n");
    CHECK_STR(str(req.host), "h");
    CHECK_INT(req.minor, 0);

    /* authority-form, CONNECT only */
    s = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n";
    ACCEPT(s);
    CHECK_INT(req.form, TARGET_AUTHORITY);
    CHECK_STR(str(req.host), "example.com:443");
    CHECK_INT(req.path.n, 0);
    CHECK(req.query.p == NULL);
    PREFIXES(s);
    ACCEPT("CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_STR(str(req.host), "[2001:db8::1]:443");
    REJECT("CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REJECT("CONNECT * HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REJECT("CONNECT http://h:1/ HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REJECT("CONNECT example.com HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REJECT("CONNECT example.com: HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REJECT("CONNECT :443 HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REJECT("CONNECT h:44x HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REJECT_WHY("CONNECT u@h:443 HTTP/1.1\r\nHost: h\r\n\r\n", 400, "userinfo in request-target");
    REJECT("GET example.com:443 HTTP/1.1\r\nHost: h\r\n\r\n", 400);

    /* asterisk-form, OPTIONS only */
    s = "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n";
    ACCEPT(s);
    CHECK_INT(req.form, TARGET_ASTERISK);
    CHECK_STR(str(req.path), "*");
    CHECK_STR(str(req.host), "h");
    CHECK(req.query.p == NULL);
    REJECT_WHY("GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400,
               "request-target \"*\" is only for OPTIONS");
    REJECT("PRI * HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REJECT("OPTIONS *x HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REJECT("OPTIONS ** HTTP/1.1\r\nHost: h\r\n\r\n", 400);

    /* bad absolute forms */
    REJECT("GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REJECT("GET http:/h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REJECT("GET http:// HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REJECT("GET http:///p HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REJECT_WHY("GET http://u:p@h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400, "userinfo in request-target");
    REJECT("GET http://h:8x/ HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REJECT("GET http://[::1/ HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REJECT("GET a/b HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    /* The Host field rules still apply with absolute-form. */
    REJECT_WHY("GET http://h/ HTTP/1.1\r\n\r\n", 400, "missing Host");
    REJECT("GET http://h/ HTTP/1.1\r\nHost: a b\r\n\r\n", 400);

    /* target characters */
    REJECT_WHY("GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n", 400, "fragment in request-target");
    REJECT("GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REJECT("GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REJECT("GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REJECT("GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    static const char nul[] = "GET /\0 HTTP/1.1\r\nHost: h\r\n\r\n";
    CHECK_INT(parse_n(nul, sizeof nul - 1), -400);
    CHECK_STR(why, "invalid character in request-target");
}

static void test_request_line(void)
{
    /* method: any token, case-sensitive, at most 64 bytes */
    ACCEPT("get / HTTP/1.1\r\nHost: h\r\n\r\n");
    CHECK_STR(str(req.method), "get");
    ACCEPT("X-CUSTOM.METHOD!#$%&'*+^_`|~9 / HTTP/1.1\r\nHost: h\r\n\r\n");
    CHECK_STR(str(req.method), "X-CUSTOM.METHOD!#$%&'*+^_`|~9");
    char line[512];
    snprintf(line, sizeof line, "%.64s / HTTP/1.1\r\nHost: h\r\n\r\n",
             "MMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMM");
    ACCEPT(line);
    CHECK_INT(req.method.n, 64);
    snprintf(line, sizeof line, "%.65s / HTTP/1.1\r\nHost: h\r\n\r\n",
             "MMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMM");
    REJECT_WHY(line, 400, "method too long");
    /* ... detected before the line is complete */
    CHECK_INT(parse_n(line, 64), 0);
    CHECK_INT(parse_n(line, 65), -400);

    REJECT_WHY("G@T / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "invalid character in method");
    REJECT("G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REJECT("G\xc3\x89T / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REJECT(" GET / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REJECT("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REJECT("GET /  HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REJECT("GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REJECT("GET /\tHTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400);
    REJECT("GET / http/1.1\r\nHost: h\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1x\r\nHost: h\r\n\r\n", 400);
    REJECT("GET / HTTP/11\r\nHost: h\r\n\r\n", 400);
    REJECT("GET / HTTP/1.\r\nHost: h\r\n\r\n", 400);
    REJECT("GET / HTTP/1.10\r\nHost: h\r\n\r\n", 400);
    REJECT("GET / HTTP/1\r\nHost: h\r\n\r\n", 400);
    REJECT("GET / HTTP/a.1\r\nHost: h\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1.1\r\nHost: h\r\n\r\n", 400);
    REJECT("GET / \r\nHost: h\r\n\r\n", 400);
    REJECT_WHY("GET /\r\n\r\n", 400, "malformed request line"); /* HTTP/0.9 */
    REJECT("GET\r\n\r\n", 400);
    REJECT("\r\n\r\n\r\n\r\n\r\n\r\n", 400);

    /* version */
    REJECT_WHY("GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505, "HTTP version not supported");
    REJECT("GET / HTTP/0.9\r\nHost: h\r\n\r\n", 505);
    REJECT("GET / HTTP/3.0\r\n\r\n", 505);
    REJECT("GET / HTTP/9.1\r\n\r\n", 505);
    REJECT("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505);
    ACCEPT("GET / HTTP/1.2\r\nHost: h\r\n\r\n");
    CHECK_INT(req.minor, 1);
    ACCEPT("GET / HTTP/1.9\r\nHost: h\r\n\r\n");
    CHECK_INT(req.minor, 1);
    CHECK(req.keep_alive);

    /* leading empty lines: up to 4, counted in head_len */
    const char *s = "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
    ACCEPT(s);
    CHECK_INT(req.head_len, strlen(s));
    CHECK_STR(str(req.method), "GET");
    PREFIXES(s);
    ACCEPT("\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
    REJECT_WHY("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400,
               "too many empty lines before the request line");
    REJECT("\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REJECT("\r\rGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
}

static void test_line_endings(void)
{
    REJECT_WHY("GET / HTTP/1.1\nHost: h\r\n\r\n", 400, "bare LF in request line");
    REJECT_WHY("GET / HTTP/1.1\r\nHost: h\n\r\n", 400, "bare LF in header");
    REJECT("GET / HTTP/1.1\r\nHost: h\r\n\n", 400);
    REJECT("GET / HTTP/1.1\nHost: h\n\n", 400);
    REJECT("GET / HTTP/1.1\r\nHost: h\r\nX: a\nb\r\n\r\n", 400);
    REJECT_WHY("GET / HTTP/1.1\rHost: h\r\n\r\n", 400, "bare CR in request line");
    REJECT_WHY("GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", 400, "bare CR in header");
    REJECT("GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1\r\nHost: h\r\n\r\r\n", 400);
    REJECT("GET / HTTP/1.1\r\nHost: h\r\nX\r: y\r\n\r\n", 400);
    /* A bare LF is seen before the head could ever complete. */
    CHECK_INT(parse("GET / HTTP/1.1\nHost: h\n"), -400);
    CHECK_INT(parse("GET / HTTP/1.1\r\nHost: h\nX"), -400);
    CHECK_INT(parse("GET / HTTP/1.1\r\nHost: h\rX"), -400);
    /* ... but a CR at the end may still be followed by its LF. */
    CHECK_INT(parse("GET / HTTP/1.1\r"), 0);
    CHECK_INT(parse("GET / HTTP/1.1\r\nHost: h\r"), 0);
    CHECK_INT(parse("GET / HTTP/1.1\r\nHost: h\r\n\r"), 0);
    CHECK_INT(parse("\r"), 0);
    CHECK_INT(parse(""), 0);
}

static void test_fields(void)
{
    const char *s =
        "GET / HTTP/1.1\r\nHost:   h  \t\r\nX-Empty:\r\nX-Blank:  \t \r\n"
        "X-Inner: a  b\tc\r\nX-Obs: caf\xc3\xa9\x80\xff\r\nX-Vis: !\"#(),/:;<=>?@[\\]{}~\r\n"
        "x-lower:1\r\n\r\n";
    ACCEPT(s);
    CHECK_INT(req.nfields, 7);
    CHECK_STR(str(req.fields[0].value), "h");
    CHECK_STR(str(req.host), "h");
    CHECK_STR(str(req.fields[1].name), "X-Empty");
    CHECK(req.fields[1].value.n == 0 && in_buf(req.fields[1].value));
    CHECK_INT(req.fields[2].value.n, 0);
    CHECK_STR(str(req.fields[3].value), "a  b\tc");
    CHECK_STR(str(req.fields[4].value), "caf\xc3\xa9\x80\xff");
    CHECK_STR(str(req.fields[5].value), "!\"#(),/:;<=>?@[\\]{}~");
    CHECK_STR(str(req.fields[6].name), "x-lower");
    CHECK_STR(str(req.fields[6].value), "1");
    PREFIXES(s);

    /* http_field_get: case-insensitive, the first of repeated fields */
    ACCEPT("GET / HTTP/1.1\r\nHost: h\r\nAccept: a\r\nACCEPT: b\r\n\r\n");
    CHECK_STR(str(http_field_get(&req, "accept")), "a");
    CHECK_STR(str(http_field_get(&req, "HOST")), "h");
    CHECK(http_field_get(&req, "Accep").p == NULL);
    CHECK(http_field_get(&req, "Accept-Encoding").p == NULL);
    CHECK(http_field_get(&req, "").p == NULL);

    REJECT_WHY("GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400,
               "whitespace between header field name and colon");
    REJECT("GET / HTTP/1.1\r\nHost: h\r\nX\t: y\r\n\r\n", 400);
    REJECT_WHY("GET / HTTP/1.1\r\nHost: h\r\n: y\r\n\r\n", 400, "empty header field name");
    REJECT_WHY("GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", 400,
               "header field line without colon");
    REJECT("GET / HTTP/1.1\r\nHost: h\r\nNo Colon\r\n\r\n", 400);
    REJECT_WHY("GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400,
               "whitespace before the first header field");
    REJECT_WHY("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 400,
               "obsolete line folding in header");
    REJECT("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n", 400);
    REJECT_WHY("GET / HTTP/1.1\r\nHost: h\r\nX(y): z\r\n\r\n", 400,
               "invalid character in header field name");
    REJECT("GET / HTTP/1.1\r\nHost: h\r\nX\x80: z\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1\r\nHost: h\r\nX\x01: z\r\n\r\n", 400);
    REJECT_WHY("GET / HTTP/1.1\r\nHost: h\r\nX: a\x01\r\n\r\n", 400,
               "invalid character in header field value");
    REJECT("GET / HTTP/1.1\r\nHost: h\r\nX: a\x7f\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1\r\nHost: h\r\nX: \x1f\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1\r\nHost: h\r\nX: a\x0b b\r\n\r\n", 400);
    /* NUL inside a value (strlen would stop at it: use explicit lengths) */
    static const char nul[] = "GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n";
    CHECK_INT(parse_n(nul, sizeof nul - 1), -400);
    check_prefixes(nul, sizeof nul - 1);
    static const char nul_name[] = "GET / HTTP/1.1\r\nHost: h\r\nX\0: b\r\n\r\n";
    CHECK_INT(parse_n(nul_name, sizeof nul_name - 1), -400);
}

static void test_host(void)
{
    ACCEPT("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n");
    CHECK_STR(str(req.host), "[::1]:8080");
    ACCEPT("GET / HTTP/1.1\r\nHost: [v1.fe80::a+en1]\r\n\r\n");
    ACCEPT("GET / HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n");
    ACCEPT("GET / HTTP/1.1\r\nHost: a.b-c_d~e!$&'()*+,;=\r\n\r\n");
    ACCEPT("GET / HTTP/1.1\r\nHost: %41b%2e\r\n\r\n");
    ACCEPT("GET / HTTP/1.1\r\nHost: example.com:\r\n\r\n");
    CHECK_STR(str(req.host), "example.com:");
    /* An empty Host names no authority: 400 where the target takes its
     * authority from Host (RFC 9112 §3.2); whitespace is no value either. */
    REJECT_WHY("GET / HTTP/1.1\r\nHost:\r\n\r\n", 400, "empty Host");
    REJECT("GET / HTTP/1.1\r\nHost:\r\n\r\n", 400);
    REJECT_WHY("GET / HTTP/1.1\r\nHost:   \t \r\n\r\n", 400, "empty Host");
    REJECT_WHY("OPTIONS * HTTP/1.1\r\nHost:\r\n\r\n", 400, "empty Host");
    REJECT_WHY("POST /up HTTP/1.1\r\nHost:\r\nContent-Length: 3\r\n\r\nabc", 400, "empty Host");
    /* The absolute form carries its own authority; Host is then ignored. */
    ACCEPT("GET http://h/x HTTP/1.1\r\nHost:\r\n\r\n");
    ACCEPT("CONNECT h:443 HTTP/1.1\r\nHost:\r\n\r\n");
    /* HTTP/1.0 needs no Host, so an empty one is no error either. */
    ACCEPT("GET / HTTP/1.0\r\nHost:\r\n\r\n");
    CHECK(req.host.n == 0);

    /* HTTP/1.0: Host optional; empty host then */
    ACCEPT("GET / HTTP/1.0\r\n\r\n");
    CHECK_INT(req.host.n, 0);
    CHECK_INT(req.nfields, 0);
    ACCEPT("GET / HTTP/1.0\r\nHost: h10\r\n\r\n");
    CHECK_STR(str(req.host), "h10");

    REJECT_WHY("GET / HTTP/1.1\r\n\r\n", 400, "missing Host");
    REJECT("GET / HTTP/1.1\r\nX-Host: h\r\n\r\n", 400);
    REJECT_WHY("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400, "more than one Host field");
    REJECT("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400);
    REJECT("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400);
    REJECT_WHY("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "invalid Host");
    REJECT("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1\r\nHost: u@h\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1\r\nHost: h:8x\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1\r\nHost: h:1:2\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1\r\nHost: :80\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1\r\nHost: []\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1\r\nHost: %4\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1\r\nHost: %zz\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1\r\nHost: h\xc3\xa9\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1\r\nHost: h\"\r\n\r\n", 400);
    REJECT("GET / HTTP/1.0\r\nHost: a b\r\n\r\n", 400);
}

static void test_content_length(void)
{
    const char *s = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 42\r\n\r\n";
    ACCEPT(s);
    CHECK_INT(req.framing, BODY_LENGTH);
    CHECK_INT(req.content_length, 42);
    ACCEPT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
    CHECK_INT(req.framing, BODY_LENGTH);
    CHECK_INT(req.content_length, 0);
    ACCEPT("POST / HTTP/1.1\r\nHost: h\r\ncontent-length: 007\r\n\r\n");
    CHECK_INT(req.content_length, 7);
    ACCEPT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5,5\r\n\r\n");
    CHECK_INT(req.content_length, 5);
    ACCEPT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n");
    CHECK_INT(req.content_length, 5);
    CHECK_INT(req.framing, BODY_LENGTH);
    ACCEPT("POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\n");
    CHECK_INT(req.content_length, 3);
    CHECK(!req.keep_alive);

    /* max_body */
    ACCEPT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000\r\n\r\n");
    REJECT_WHY("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1000001\r\n\r\n", 413,
               "request body too large");
    lim.max_body = UINT64_MAX;
    ACCEPT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9999999999999999999\r\n\r\n");
    CHECK(req.content_length == UINT64_C(9999999999999999999));
    /* Past 64 bits saturates to too large, whatever max_body says. */
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551616\r\n\r\n", 413);
    ACCEPT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 00000000000000000001\r\n\r\n");
    CHECK_INT(req.content_length, 1);
    lim = default_limits;

    REJECT_WHY("POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", 400,
               "invalid Content-Length");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400);
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\n", 400);
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n", 400);
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1a\r\n\r\n", 400);
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1 2\r\n\r\n", 400);
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1.0\r\n\r\n", 400);
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5,\r\n\r\n", 400);
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: ,5\r\n\r\n", 400);
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5,,5\r\n\r\n", 400);
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5;\r\n\r\n", 400);
    REJECT_WHY("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\n", 400,
               "conflicting Content-Length values");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400);
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 05, 6\r\n\r\n", 400);
    /* Past 64 bits is still valid syntax: too large, not malformed. */
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n", 413);
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551616\r\n\r\n", 413);
    ACCEPT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 000000000000000000000007\r\n\r\n");
    CHECK_INT(req.content_length, 7);
    /* A 400 outranks the 413 of an earlier field. */
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2000000\r\nContent-Length: x\r\n\r\n",
           400);
}

static void test_transfer_encoding(void)
{
    const char *s = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
    ACCEPT(s);
    CHECK_INT(req.framing, BODY_CHUNKED);
    CHECK_INT(req.content_length, 0);
    PREFIXES(s);
    ACCEPT("POST / HTTP/1.1\r\nHost: h\r\ntransfer-encoding: ChunKed\r\n\r\n");
    CHECK_INT(req.framing, BODY_CHUNKED);
    ACCEPT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:  chunked \t\r\n\r\n");
    CHECK_INT(req.framing, BODY_CHUNKED);

    REJECT_WHY("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n", 400,
               "empty Transfer-Encoding element");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ,chunked\r\n\r\n", 400);
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked,\r\n\r\n", 400);
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip,,chunked\r\n\r\n", 400);
    REJECT_WHY("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400,
               "chunked applied more than once");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
           "chunked\r\n\r\n",
           400);
    REJECT_WHY("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400,
               "chunked is not the last transfer coding");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
           "gzip\r\n\r\n",
           400);
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked x\r\n\r\n", 400);
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;\r\n\r\n", 400);
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;a\r\n\r\n", 400);
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;a=\r\n\r\n", 400);
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;a=\"b\r\n\r\n", 400);
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", 400);
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked/1\r\n\r\n", 400);

    REJECT_WHY("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501,
               "transfer coding not implemented");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 501);
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n", 501);
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n", 501);
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked2\r\n\r\n", 501);
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", 501);
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked ; a = \"b ,c\"\r\n\r\n", 501);
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip;level=9, chunked\r\n\r\n", 501);
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: "
           "chunked\r\n\r\n",
           501);

    REJECT_WHY("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
               "Transfer-Encoding in an HTTP/1.0 request");
    REJECT_WHY(
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        400, "both Transfer-Encoding and Content-Length");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
           400);
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: gzip\r\n\r\n",
           400);
    /* 400 before 501 */
    REJECT("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400);
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nContent-Length: x\r\n\r\n",
           400);
}

static void test_connection_expect(void)
{
    ACCEPT("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    CHECK(!req.keep_alive);
    ACCEPT("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, CLOSE\r\n\r\n");
    CHECK(!req.keep_alive);
    ACCEPT("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n");
    CHECK(!req.keep_alive);
    ACCEPT("GET / HTTP/1.1\r\nHost: h\r\nConnection: closed, xclose\r\n\r\n");
    CHECK(req.keep_alive);
    ACCEPT("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n");
    CHECK(req.keep_alive);
    ACCEPT("GET / HTTP/1.0\r\n\r\n");
    CHECK(!req.keep_alive);
    ACCEPT("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    CHECK(req.keep_alive);
    ACCEPT("GET / HTTP/1.0\r\nConnection: foo,  keep-alive ,bar\r\n\r\n");
    CHECK(req.keep_alive);
    ACCEPT("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n");
    CHECK(!req.keep_alive);
    ACCEPT("GET / HTTP/1.0\r\nConnection: keep-alive2\r\n\r\n");
    CHECK(!req.keep_alive);

    ACCEPT("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n");
    CHECK(req.expect_continue);
    ACCEPT("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\n\r\n");
    CHECK(req.expect_continue);
    ACCEPT("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    CHECK(!req.expect_continue);
    ACCEPT("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n");
    CHECK(!req.expect_continue);
    ACCEPT("POST / HTTP/1.0\r\nExpect: something-else\r\n\r\n");
    CHECK(!req.expect_continue);
    REJECT_WHY("POST / HTTP/1.1\r\nHost: h\r\nExpect: foo\r\n\r\n", 417,
               "only Expect: 100-continue is supported");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue, foo\r\n\r\n", 417);
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nExpect: 200-ok\r\n\r\n", 417);
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nExpect:\r\n\r\n", 417);
    /* 501 and 413 outrank 417 */
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nExpect: foo\r\nTransfer-Encoding: gzip\r\n\r\n", 501);
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nExpect: foo\r\nContent-Length: 9999999\r\n\r\n", 413);

    /* http_list_has */
    struct span v = {"a, Keep-Alive ,\tb", 17};
    CHECK(http_list_has(v, "keep-alive"));
    CHECK(http_list_has(v, "A"));
    CHECK(http_list_has(v, "b"));
    CHECK(!http_list_has(v, "keep"));
    CHECK(!http_list_has(v, "alive"));
    CHECK(!http_list_has(v, ""));
    struct span e = {"", 0};
    CHECK(!http_list_has(e, "close"));
    struct span z = {NULL, 0};
    CHECK(!http_list_has(z, "close"));
    struct span c = {",,close,,", 9};
    CHECK(http_list_has(c, "close"));
}

static void test_limits(void)
{
    char b[4096];
    /* target: max_target accepted, one more 414 */
    lim.max_target = 10;
    ACCEPT("GET /123456789 HTTP/1.1\r\nHost: h\r\n\r\n");
    REJECT_WHY("GET /1234567890 HTTP/1.1\r\nHost: h\r\n\r\n", 414, "request-target too long");
    /* ... also when the request line is not complete yet */
    CHECK_INT(parse("GET /1234567890"), -414);
    CHECK_INT(parse("GET /123456789"), 0);
    lim = default_limits;
    memset(b, 'a', sizeof b);
    memcpy(b, "GET /", 5);
    CHECK_INT(parse_n(b, 5 + 255), 0);
    CHECK_INT(parse_n(b, 5 + 256), -414);
    CHECK_INT(parse_n(b, 1000), -414);
    /* A long request line is found without a complete head. */
    memset(b, 'M', 100);
    CHECK_INT(parse_n(b, 100), -400);

    /* fields: max_fields accepted, one more 431 */
    lim.max_fields = 3;
    ACCEPT("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n");
    CHECK_INT(req.nfields, 3);
    REJECT_WHY("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 431,
               "too many header fields");
    lim.max_fields = 0;
    ACCEPT("GET / HTTP/1.0\r\n\r\n");
    REJECT("GET / HTTP/1.0\r\nA: 1\r\n\r\n", 431);
    lim = default_limits;

    /* head: max_header bytes accepted, one more 431 */
    lim.max_header = 100;
    const char *pre = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
    size_t pl = strlen(pre);
    memcpy(b, pre, pl);
    memset(b + pl, 'v', 100 - pl - 4);
    memcpy(b + 96, "\r\n\r\n", 4);
    CHECK_INT(parse_n(b, 100), 100);
    CHECK_INT(req.head_len, 100);
    check_prefixes(b, 100);
    memset(b + pl, 'v', 100 - pl - 3);
    memcpy(b + 97, "\r\n\r\n", 4);
    CHECK_INT(parse_n(b, 101), -431);
    check_prefixes(b, 101);
    /* ... also when the head is incomplete, as soon as it is too long */
    CHECK_INT(parse_n(b, 100), 0);
    CHECK_INT(parse_n(b, 101), -431);
    CHECK_STR(why, "request header section too large");
    /* An error before the limit wins over the limit. */
    b[30] = '\x01';
    CHECK_INT(parse_n(b, 101), -400);
    lim = default_limits;

    /* Leading empty lines count in max_header. */
    lim.max_header = 29;
    ACCEPT("GET / HTTP/1.1\r\nHost: h\r\n\r\n"); /* 27 bytes */
    ACCEPT("\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
    REJECT("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 431);
    lim = default_limits;

    /* An incomplete head within the limits, with only lazily found errors,
     * waits; the error is reported once the head is complete. */
    CHECK_INT(parse("GET / HTTP/1.1\r\nHost: h\r\nX: \x01"), 0);
    CHECK_INT(parse("GET / HTTP/1.1\r\nHost: h\r\nX: \x01\r\n\r\n"), -400);
    CHECK_INT(parse("GET / HTTP/1.1\r\nHost: h\r\nX: y\r\n"), 0);
}

/* Every split point of a few complete requests: 0 for each prefix of the
 * head, then the same result. */
static void test_splits(void)
{
    static const char *const valid[] = {
        "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "\r\nPOST /form?x=1 HTTP/1.1\r\nHost: h:80\r\nContent-Length: 3, 3\r\nConnection: "
        "close\r\n\r\nabc",
        "PUT http://h/p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nExpect: "
        "100-continue\r\n\r\n",
        "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n",
        "OPTIONS * HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX:\r\nY:  a b  \r\n\r\nGET / HTTP/1.1\r\n",
        "GET http://h/ HTTP/1.1\r\nHost:\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof valid / sizeof *valid; i++) {
        CHECK(parse(valid[i]) > 0);
        PREFIXES(valid[i]);
    }
    static const char *const invalid[] = {
        "GET / HTTP/1.1\r\nHost: h\r\nX: a\nY: b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX : a\r\n\r\n",
        "GET /\x01 HTTP/1.1\nHost: h\r\n\r\n",
        "GE\x01T / HTTP/1.1\r\nHost: h\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nA: \x01\r\nB: b\n",
    };
    for (size_t i = 0; i < sizeof invalid / sizeof *invalid; i++) {
        CHECK(parse(invalid[i]) < 0);
        PREFIXES(invalid[i]);
    }
}

int main(void)
{
    lim = default_limits;
    test_simple();
    test_target_forms();
    test_request_line();
    test_line_endings();
    test_fields();
    test_host();
    test_content_length();
    test_transfer_encoding();
    test_connection_expect();
    test_limits();
    test_splits();
    free(buf);
    return unit_report();
}
