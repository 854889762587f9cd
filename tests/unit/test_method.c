/* Unit tests for the method registry (lib/http/method.c), http_is_token
 * and the status reason table (lib/http/status.c). */
#include "http/method.h"
#include "http/status.h"
#include "unit.h"

static const struct {
    int id;
    const char *token;
} registered[] = {
#define ENTRY(id, token) {METHOD_##id, token},
    METHOD_LIST(ENTRY)
#undef ENTRY
};

static void test_lookup(void)
{
    size_t count = sizeof registered / sizeof *registered;
    CHECK_INT(count, METHOD_REGISTERED_COUNT);
    CHECK(METHOD_REGISTERED_COUNT < METHOD_MAX_ID);

    /* Every registered method round-trips, ids are dense and in order. */
    bool all = true;
    for (size_t i = 0; i < count; i++) {
        const char *t = registered[i].token;
        if (registered[i].id != (int)i || method_lookup(t, strlen(t)) != (int)i ||
            !method_name((int)i) || strcmp(method_name((int)i), t) != 0) {
            printf("  %s does not round-trip\n", t);
            all = false;
        }
    }
    CHECK(all);

    /* Spot checks with explicit ids. */
    CHECK_INT(method_lookup("GET", 3), METHOD_GET);
    CHECK_INT(method_lookup("HEAD", 4), METHOD_HEAD);
    CHECK_INT(method_lookup("OPTIONS", 7), METHOD_OPTIONS);
    CHECK_INT(method_lookup("PROPFIND", 8), METHOD_PROPFIND);
    CHECK_INT(method_lookup("BASELINE-CONTROL", 16), METHOD_BASELINE_CONTROL);
    CHECK_INT(method_lookup("VERSION-CONTROL", 15), METHOD_VERSION_CONTROL);
    CHECK_INT(method_lookup("UPDATEREDIRECTREF", 17), METHOD_UPDATEREDIRECTREF);
    CHECK_STR(method_name(METHOD_DELETE), "DELETE");
    CHECK_STR(method_name(METHOD_GET), "GET");

    /* Exact and case-sensitive; the length is what counts, not a NUL. */
    CHECK_INT(method_lookup("get", 3), METHOD_UNKNOWN);
    CHECK_INT(method_lookup("Get", 3), METHOD_UNKNOWN);
    CHECK_INT(method_lookup("GETX", 4), METHOD_UNKNOWN);
    CHECK_INT(method_lookup("GETX", 3), METHOD_GET);
    CHECK_INT(method_lookup("GE", 2), METHOD_UNKNOWN);
    CHECK_INT(method_lookup("", 0), METHOD_UNKNOWN);
    CHECK_INT(method_lookup("G", 1), METHOD_UNKNOWN);
    CHECK_INT(method_lookup("GET ", 4), METHOD_UNKNOWN);
    CHECK_INT(method_lookup("BASELINE_CONTROL", 16), METHOD_UNKNOWN);
    CHECK_INT(method_lookup("POSTS", 5), METHOD_UNKNOWN);
    CHECK_INT(method_lookup("PATCH\0", 6), METHOD_UNKNOWN);
    CHECK_INT(method_lookup("MKCALENDAX", 10), METHOD_UNKNOWN);
    CHECK_INT(method_lookup("UPDATEREDIRECTREFS", 18), METHOD_UNKNOWN);
    CHECK_INT(method_lookup("FOO", 3), METHOD_UNKNOWN);

    CHECK(method_name(METHOD_UNKNOWN) == NULL);
    CHECK(method_name(METHOD_REGISTERED_COUNT) == NULL);
    CHECK(method_name(-1) == NULL);
    CHECK(method_name(1000) == NULL);
}

static void test_format(void)
{
    char out[512];
    CHECK_INT(method_set_format(0, NULL, out, sizeof out), 0);
    CHECK_STR(out, "");

    method_set s = METHOD_BIT(METHOD_OPTIONS) | METHOD_BIT(METHOD_HEAD) | METHOD_BIT(METHOD_GET);
    CHECK_INT(method_set_format(s, NULL, out, sizeof out), strlen("GET, HEAD, OPTIONS"));
    CHECK_STR(out, "GET, HEAD, OPTIONS");

    s = METHOD_BIT(METHOD_UNLOCK) | METHOD_BIT(METHOD_PROPFIND) | METHOD_BIT(METHOD_PUT) |
        METHOD_BIT(METHOD_LOCK) | METHOD_BIT(METHOD_OPTIONS) | METHOD_BIT(METHOD_MKCOL);
    method_set_format(s, NULL, out, sizeof out);
    CHECK_STR(out, "PUT, OPTIONS, LOCK, MKCOL, PROPFIND, UNLOCK");

    /* All registered methods, in list order. */
    method_set all = 0;
    for (int id = 0; id < METHOD_REGISTERED_COUNT; id++)
        all |= METHOD_BIT(id);
    size_t n = method_set_format(all, NULL, out, sizeof out);
    CHECK_INT(n, strlen(out));
    CHECK(strncmp(out, "GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH, QUERY, ACL, ",
                  74) == 0);
    CHECK(strcmp(out + n - strlen(", VERSION-CONTROL"), ", VERSION-CONTROL") == 0);

    /* Extension ids after the registered ones, in id order; unnamed ids
     * and the unknown id are skipped. */
    const char *names[64] = {0};
    names[METHOD_REGISTERED_COUNT] = "FROB";
    names[METHOD_REGISTERED_COUNT + 2] = "X-TWIDDLE";
    names[METHOD_UNKNOWN] = "NEVER";
    s = METHOD_BIT(METHOD_REGISTERED_COUNT + 2) | METHOD_BIT(METHOD_REGISTERED_COUNT) |
        METHOD_BIT(METHOD_REGISTERED_COUNT + 1) | METHOD_BIT(METHOD_GET) |
        METHOD_BIT(METHOD_UNKNOWN);
    method_set_format(s, names, out, sizeof out);
    CHECK_STR(out, "GET, FROB, X-TWIDDLE");
    method_set_format(s, NULL, out, sizeof out);
    CHECK_STR(out, "GET");
    method_set_format(METHOD_BIT(METHOD_REGISTERED_COUNT), NULL, out, sizeof out);
    CHECK_STR(out, "");
    method_set_format(METHOD_BIT(METHOD_REGISTERED_COUNT) | METHOD_BIT(METHOD_HEAD), names, out,
                      sizeof out);
    CHECK_STR(out, "HEAD, FROB");

    /* Truncation at cap - 1, always NUL-terminated. */
    s = METHOD_BIT(METHOD_GET) | METHOD_BIT(METHOD_HEAD) | METHOD_BIT(METHOD_OPTIONS);
    char small[8];
    memset(small, 'z', sizeof small);
    CHECK_INT(method_set_format(s, NULL, small, sizeof small), 7);
    CHECK_STR(small, "GET, HE");
    CHECK_INT(method_set_format(s, NULL, small, 4), 3);
    CHECK_STR(small, "GET");
    CHECK_INT(method_set_format(s, NULL, small, 5), 4);
    CHECK_STR(small, "GET,");
    CHECK_INT(method_set_format(s, NULL, small, 1), 0);
    CHECK_STR(small, "");
    small[0] = 'z';
    CHECK_INT(method_set_format(s, NULL, small, 0), 0);
    CHECK(small[0] == 'z');
    /* Exactly enough room. */
    char exact[19];
    CHECK_INT(method_set_format(s, NULL, exact, sizeof exact), 18);
    CHECK_STR(exact, "GET, HEAD, OPTIONS");
}

static void test_token(void)
{
    CHECK(http_is_token("GET", 3));
    CHECK(http_is_token("!#$%&'*+-.^_`|~09azAZ", 21));
    CHECK(!http_is_token("", 0));
    CHECK(!http_is_token("A B", 3));
    CHECK(!http_is_token("A\tB", 3));
    CHECK(!http_is_token("A:B", 3));
    CHECK(!http_is_token("\"A\"", 3));
    CHECK(!http_is_token("A(B)", 4));
    CHECK(!http_is_token("A,B", 3));
    CHECK(!http_is_token("A/B", 3));
    CHECK(!http_is_token("A;B", 3));
    CHECK(!http_is_token("A=B", 3));
    CHECK(!http_is_token("A@B", 3));
    CHECK(!http_is_token("A[B]", 4));
    CHECK(!http_is_token("A{B}", 4));
    CHECK(!http_is_token("A?B", 3));
    CHECK(!http_is_token("A\\B", 3));
    CHECK(!http_is_token("A<>", 3));
    CHECK(!http_is_token("A\0B", 3));
    CHECK(!http_is_token("A\x7f", 2));
    CHECK(!http_is_token("\xc3\xa9", 2));
    CHECK(http_is_token("A\0B", 1));
    /* Exactly the 77 tchar bytes of RFC 9110 §5.6.2. */
    int count = 0;
    for (int c = 0; c < 256; c++) {
        char b = (char)c;
        count += http_is_token(&b, 1);
    }
    CHECK_INT(count, 77);
}

static void test_status(void)
{
    CHECK_STR(http_status_reason(200), "OK");
    CHECK_STR(http_status_reason(100), "Continue");
    CHECK_STR(http_status_reason(102), "Processing");
    CHECK_STR(http_status_reason(204), "No Content");
    CHECK_STR(http_status_reason(207), "Multi-Status");
    CHECK_STR(http_status_reason(208), "Already Reported");
    CHECK_STR(http_status_reason(226), "IM Used");
    CHECK_STR(http_status_reason(304), "Not Modified");
    CHECK_STR(http_status_reason(308), "Permanent Redirect");
    CHECK_STR(http_status_reason(400), "Bad Request");
    CHECK_STR(http_status_reason(404), "Not Found");
    CHECK_STR(http_status_reason(405), "Method Not Allowed");
    CHECK_STR(http_status_reason(413), "Content Too Large");
    CHECK_STR(http_status_reason(414), "URI Too Long");
    CHECK_STR(http_status_reason(416), "Range Not Satisfiable");
    CHECK_STR(http_status_reason(417), "Expectation Failed");
    CHECK_STR(http_status_reason(421), "Misdirected Request");
    CHECK_STR(http_status_reason(422), "Unprocessable Content");
    CHECK_STR(http_status_reason(423), "Locked");
    CHECK_STR(http_status_reason(424), "Failed Dependency");
    CHECK_STR(http_status_reason(426), "Upgrade Required");
    CHECK_STR(http_status_reason(428), "Precondition Required");
    CHECK_STR(http_status_reason(429), "Too Many Requests");
    CHECK_STR(http_status_reason(431), "Request Header Fields Too Large");
    CHECK_STR(http_status_reason(451), "Unavailable For Legal Reasons");
    CHECK_STR(http_status_reason(501), "Not Implemented");
    CHECK_STR(http_status_reason(505), "HTTP Version Not Supported");
    CHECK_STR(http_status_reason(507), "Insufficient Storage");
    CHECK_STR(http_status_reason(508), "Loop Detected");
    CHECK_STR(http_status_reason(511), "Network Authentication Required");
    CHECK_STR(http_status_reason(306), "Unknown");
    CHECK_STR(http_status_reason(418), "Unknown");
    CHECK_STR(http_status_reason(0), "Unknown");
    CHECK_STR(http_status_reason(-404), "Unknown");
    CHECK_STR(http_status_reason(999), "Unknown");
    /* Every code in 100..599 has a reason or "Unknown"; count the known. */
    int known = 0;
    for (int s = 100; s < 600; s++)
        known += strcmp(http_status_reason(s), "Unknown") != 0;
    CHECK_INT(known, 57);
}

int main(void)
{
    test_lookup();
    test_format();
    test_token();
    test_status();
    return unit_report();
}
