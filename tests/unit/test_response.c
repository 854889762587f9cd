/* Unit tests for the response-head parser (lib/http/response.c) and the
 * Allow/list helpers next to it. */
#include <stdlib.h>

#include "http/response.h"
#include "unit.h"

#define MAX_FIELDS 32

static struct http_field fields[MAX_FIELDS];
static const struct response_limits limits = {.max_header = 1024, .max_fields = MAX_FIELDS};

static int parse(const char *s, bool head, struct http_response *r, const char **why)
{
    return http_parse_response(s, strlen(s), &limits, head, fields, r, why);
}

static bool span_eq(struct span s, const char *lit)
{
    return s.p && s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

/* Every prefix gives 0 or the whole result, never anything else. */
static void check_prefixes(const char *s, bool head)
{
    struct http_response r;
    const char *why;
    size_t len = strlen(s);
    int full = http_parse_response(s, len, &limits, head, fields, &r, &why);
    for (size_t k = 0; k < len; k++) {
        /* A copy of exactly k bytes, so ASan sees any read past the end. */
        char *p = malloc(k ? k : 1);
        memcpy(p, s, k);
        int rc = http_parse_response(p, k, &limits, head, fields, &r, &why);
        if (rc != 0 && rc != full) {
            printf("FAIL prefix %zu of %.40s... gives %d, whole gives %d\n", k, s, rc, full);
            unit_failed++;
        } else {
            unit_passed++;
        }
        free(p);
    }
}

static void test_basic(void)
{
    struct http_response r;
    const char *why;
    const char *s = "HTTP/1.1 405 Method Not Allowed\r\n"
                    "Allow: GET, HEAD,  OPTIONS \r\n"
                    "Content-Length: 12\r\n"
                    "\r\n"
                    "not allowed\n";
    int rc = parse(s, false, &r, &why);
    CHECK_INT(rc, (int)(strlen(s) - 12));
    CHECK_INT(r.status, 405);
    CHECK_INT(r.minor, 1);
    CHECK(span_eq(r.reason, "Method Not Allowed"));
    CHECK_INT(r.nfields, 2);
    CHECK_INT(r.framing, RESPONSE_LENGTH);
    CHECK_INT(r.content_length, 12);
    CHECK(r.keep_alive);
    CHECK_INT(r.quirks, 0);
    CHECK(span_eq(http_response_field(&r, "allow"), "GET, HEAD,  OPTIONS"));
    CHECK(span_eq(http_response_field(&r, "CONTENT-LENGTH"), "12"));
    CHECK(http_response_field(&r, "ETag").p == NULL);
    check_prefixes(s, false);
}

static void test_framing(void)
{
    struct http_response r;
    const char *why;

    CHECK(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, &r, &why) > 0);
    CHECK_INT(r.framing, RESPONSE_CHUNKED);
    CHECK(r.keep_alive);

    CHECK(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", false, &r, &why) >
          0);
    CHECK_INT(r.framing, RESPONSE_CHUNKED);

    /* chunked not last: read until close (RFC 9112 §6.3 rule 4) */
    CHECK(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", false, &r, &why) >
          0);
    CHECK_INT(r.framing, RESPONSE_CLOSE);
    CHECK(!r.keep_alive);

    /* TE wins over CL, flagged, and the connection is not reusable */
    CHECK(parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", false,
                &r, &why) > 0);
    CHECK_INT(r.framing, RESPONSE_CHUNKED);
    CHECK(r.quirks & RESPONSE_TE_AND_CL);
    CHECK(!r.keep_alive);

    /* no framing: until close */
    CHECK(parse("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n", false, &r, &why) > 0);
    CHECK_INT(r.framing, RESPONSE_CLOSE);
    CHECK(!r.keep_alive);

    /* no body: HEAD, 1xx, 204, 304, whatever the fields say */
    CHECK(parse("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", true, &r, &why) > 0);
    CHECK_INT(r.framing, RESPONSE_NONE);
    CHECK(r.keep_alive);
    CHECK(parse("HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n", false, &r, &why) > 0);
    CHECK_INT(r.framing, RESPONSE_NONE);
    CHECK_INT(r.quirks, 0);
    CHECK(parse("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", false, &r, &why) > 0);
    CHECK_INT(r.framing, RESPONSE_NONE);
    CHECK(r.quirks & RESPONSE_LENGTH_ON_NONE);
    CHECK(parse("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n", false, &r,
                &why) > 0);
    CHECK_INT(r.framing, RESPONSE_NONE);
    CHECK_INT(r.status, 103);

    /* identical repeats are one length; differing ones are an error */
    CHECK(parse("HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\n", false, &r,
                &why) > 0);
    CHECK_INT(r.content_length, 3);
    CHECK_INT(
        parse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", false, &r, &why),
        -1);
    CHECK_STR(why, "conflicting Content-Length values");
    CHECK_INT(parse("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false, &r, &why), -1);
    CHECK_STR(why, "invalid Content-Length");
    CHECK_INT(
        parse("HTTP/1.1 200 OK\r\nContent-Length: 12345678901234567890\r\n\r\n", false, &r, &why),
        -1);
    CHECK_STR(why, "Content-Length too large");
}

static void test_persistence(void)
{
    struct http_response r;
    const char *why;
    CHECK(parse("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false, &r,
                &why) > 0);
    CHECK(!r.keep_alive);
    CHECK(parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false, &r, &why) > 0);
    CHECK_INT(r.minor, 0);
    CHECK(!r.keep_alive);
    CHECK(parse("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", false, &r,
                &why) > 0);
    CHECK(r.keep_alive);
    CHECK(parse("HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n", false, &r, &why) > 0);
    CHECK_INT(r.minor, 1);
}

static void test_status_line(void)
{
    struct http_response r;
    const char *why;

    CHECK(parse("HTTP/1.1 200 \r\n\r\n", false, &r, &why) > 0);
    CHECK_INT(r.reason.n, 0);
    CHECK_INT(r.quirks, 0);
    CHECK(parse("HTTP/1.1 200\r\n\r\n", false, &r, &why) > 0);
    CHECK(r.quirks & RESPONSE_NO_REASON_SP);
    CHECK(parse("HTTP/1.1 599 Whatever \xe9t\xe9\r\n\r\n", false, &r, &why) > 0);
    CHECK_INT(r.status, 599);

    static const struct {
        const char *in, *why;
    } bad[] = {
        {"HTTP/2.0 200 OK\r\n\r\n", "HTTP major version is not 1"},
        {"HTTP/1.1 099 Low\r\n\r\n", "status code out of range"},
        {"HTTP/1.1 600 High\r\n\r\n", "status code out of range"},
        {"HTTP/1.1 20 OK\r\n\r\n", "malformed status code"},
        {"HTTP/1.1 2000 OK\r\n\r\n", "malformed status code"},
        {"HTTP/1.1  200 OK\r\n\r\n", "malformed status code"},
        {"http/1.1 200 OK\r\n\r\n", "malformed HTTP version in status line"},
        {"HTTP/11 200 OK\r\n\r\n", "malformed HTTP version in status line"},
        {"ICY 200 OK\r\n\r\n", "malformed HTTP version in status line"},
        {"<html>hello</html>", "malformed HTTP version in status line"},
        {"HTTP/1.1 200 OK\n\r\n", "bare LF in status line"},
        {"HTTP/1.1 200 OK\rX\r\n", "bare CR in status line"},
        {"HTTP/1.1 200 O\x01K\r\n\r\n", "invalid character in reason phrase"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_INT(parse(bad[i].in, false, &r, &why), -1);
        CHECK_STR(why, bad[i].why);
        check_prefixes(bad[i].in, false);
    }
}

static void test_fields(void)
{
    struct http_response r;
    const char *why;
    static const struct {
        const char *in, *why;
    } bad[] = {
        {"HTTP/1.1 200 OK\r\nA: 1\r\n  folded\r\n\r\n", "obsolete line folding in header"},
        {"HTTP/1.1 200 OK\r\n A: 1\r\n\r\n", "whitespace before the first header field"},
        {"HTTP/1.1 200 OK\r\nA : 1\r\n\r\n", "whitespace between header field name and colon"},
        {"HTTP/1.1 200 OK\r\nA\r\n\r\n", "header field line without colon"},
        {"HTTP/1.1 200 OK\r\n: 1\r\n\r\n", "empty header field name"},
        {"HTTP/1.1 200 OK\r\nA(b): 1\r\n\r\n", "invalid character in header field name"},
        {"HTTP/1.1 200 OK\r\nA: 1\n\r\n", "bare LF in header"},
        {"HTTP/1.1 200 OK\r\nA: 1\rB: 2\r\n\r\n", "bare CR in header"},
        {"HTTP/1.1 200 OK\r\nA: 1\r\n\n", "bare LF in header"},
        {"HTTP/1.1 200 OK\r\nA: 1\r\n\rx", "bare CR in header"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_INT(parse(bad[i].in, false, &r, &why), -1);
        CHECK_STR(why, bad[i].why);
        check_prefixes(bad[i].in, false);
    }

    /* a NUL in a value */
    static const char nul[] = "HTTP/1.1 200 OK\r\nA: 1\0 2\r\n\r\n";
    CHECK_INT(http_parse_response(nul, sizeof nul - 1, &limits, false, fields, &r, &why), -1);
    CHECK_STR(why, "invalid character in header field value");

    /* an empty Transfer-Encoding list names no coding: until close */
    CHECK(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: ,\r\n\r\n", false, &r, &why) > 0);
    CHECK_INT(r.framing, RESPONSE_CLOSE);

    /* the field count limit */
    char buf[1024];
    size_t n = (size_t)snprintf(buf, sizeof buf, "HTTP/1.1 200 OK\r\n");
    for (int k = 0; k <= MAX_FIELDS; k++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "F%d: x\r\n", k);
    n += (size_t)snprintf(buf + n, sizeof buf - n, "\r\n");
    CHECK_INT(http_parse_response(buf, n, &limits, false, fields, &r, &why), -1);
    CHECK_STR(why, "too many header fields");
}

static void test_size_limit(void)
{
    struct http_response r;
    const char *why;
    static char big[4096];
    memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
    memset(big + 20, 'a', sizeof big - 20);
    /* within the limit and incomplete: read more */
    CHECK_INT(http_parse_response(big, 1024, &limits, false, fields, &r, &why), 0);
    /* past it: too large, and never reads beyond max_header */
    CHECK_INT(http_parse_response(big, sizeof big, &limits, false, fields, &r, &why), -1);
    CHECK_STR(why, "response header section too large");
    /* an error early in the head wins over the size */
    memcpy(big, "HTTP/3.0", 8);
    CHECK_INT(http_parse_response(big, sizeof big, &limits, false, fields, &r, &why), -1);
    CHECK_STR(why, "HTTP major version is not 1");
}

static void test_lists(void)
{
    const char *text = ",a , ,b\t,  \"x,y\" , ";
    struct span l = {text, strlen(text)}, e;
    const char *want[] = {"a", "b", "\"x,y\""};
    size_t k = 0;
    while (http_list_next(&l, &e)) {
        CHECK(k < 3 && span_eq(e, want[k]));
        k++;
    }
    CHECK_INT(k, 3);
    struct span none = {NULL, 0};
    CHECK(!http_list_next(&none, &e));

    method_set set;
    size_t others;
    const char *allow = "GET, HEAD,OPTIONS , PROPFIND, BREW, get";
    CHECK(http_allow_parse((struct span){allow, strlen(allow)}, &set, &others));
    CHECK(set == (METHOD_BIT(METHOD_GET) | METHOD_BIT(METHOD_HEAD) | METHOD_BIT(METHOD_OPTIONS) |
                  METHOD_BIT(METHOD_PROPFIND)));
    CHECK_INT(others, 2);
    char out[128];
    method_set_format(set, NULL, out, sizeof out);
    CHECK_STR(out, "GET, HEAD, OPTIONS, PROPFIND");
    CHECK(http_allow_has((struct span){allow, strlen(allow)}, "BREW", 4));
    CHECK(http_allow_has((struct span){allow, strlen(allow)}, "get", 3));
    CHECK(!http_allow_has((struct span){allow, strlen(allow)}, "POST", 4));
    CHECK(!http_allow_has((struct span){allow, strlen(allow)}, "GE", 2));

    CHECK(http_allow_parse((struct span){"", 0}, &set, &others));
    CHECK(set == 0 && others == 0);
    CHECK(!http_allow_parse((struct span){"GET, HE AD", 10}, &set, &others));
    CHECK(set == METHOD_BIT(METHOD_GET));
}

int main(void)
{
    test_basic();
    test_framing();
    test_persistence();
    test_status_line();
    test_fields();
    test_size_limit();
    test_lists();
    return unit_report();
}
