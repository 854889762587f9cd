/* Byte ranges (http/range.h): Content-Range of a stored part, If-Range,
 * and the framing of multipart/byteranges.  range_parse is exercised by
 * test_static.c through the static module, and directly there. */
#include <string.h>

#include "http/range.h"
#include "unit.h"

static bool content_range(const char *s, uint64_t *first, uint64_t *last, uint64_t *size)
{
    struct byte_range r = {0, 0};
    bool ok = range_content_range_parse(s, strlen(s), &r, size);
    *first = r.first;
    *last = r.last;
    return ok;
}

static bool if_range(const char *v, const char *etag, bool has_mtime, time_t mtime)
{
    return range_if_range_matches(v, strlen(v), etag, etag ? strlen(etag) : 0, has_mtime, mtime);
}

int main(void)
{
    uint64_t a, b, len;
    CHECK(content_range("bytes 0-9/10", &a, &b, &len));
    CHECK(a == 0 && b == 9 && len == 10);
    CHECK(content_range("BYTES 5-5/6", &a, &b, &len));
    CHECK(a == 5 && b == 5 && len == 6);
    CHECK(content_range("bytes 0-0/999999999999999999", &a, &b, &len));
    static const char *bad[] = {
        "bytes 0-9/*",
        "bytes */10",
        "bytes 9-0/10",
        "bytes 0-10/10",
        "bytes 0-9/10 ",
        "bytes 0-9",
        "bytes=0-9/10",
        "bytes -9/10",
        "bytes 0-9/1000000000000000000000",
        "bytes 0-9/10, 20-29/30",
        "",
        "bytes 0x1-9/10",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bool ok = content_range(bad[i], &a, &b, &len);
        CHECK(!ok);
        if (ok)
            fprintf(stderr, "  accepted %s\n", bad[i]);
    }

    /* If-Range: a strong ETag exactly, or the Last-Modified date exactly. */
    time_t lm = 1700000000; /* Tue, 14 Nov 2023 22:13:20 GMT */
    CHECK(if_range("\"v1\"", "\"v1\"", true, lm));
    CHECK(!if_range("\"v2\"", "\"v1\"", true, lm));
    CHECK(!if_range("W/\"v1\"", "\"v1\"", true, lm));
    CHECK(!if_range("W/\"v1\"", "W/\"v1\"", true, lm));
    CHECK(!if_range("\"v1\"", NULL, true, lm));
    CHECK(if_range("Tue, 14 Nov 2023 22:13:20 GMT", "\"v1\"", true, lm));
    CHECK(!if_range("Tue, 14 Nov 2023 22:13:21 GMT", "\"v1\"", true, lm));
    CHECK(!if_range("Tue, 14 Nov 2023 22:13:20 GMT", "\"v1\"", false, 0));
    CHECK(!if_range("nonsense", "\"v1\"", true, lm));

    /* multipart/byteranges framing */
    char boundary[RANGE_BOUNDARY_MAX], other[RANGE_BOUNDARY_MAX], out[256];
    range_boundary(boundary);
    range_boundary(other);
    CHECK(strncmp(boundary, "verbd", 5) == 0 && strlen(boundary) == 21);
    CHECK(strcmp(boundary, other) != 0);
    struct byte_range r = {10, 19};
    size_t n = range_part_head(out, sizeof out, "B", 0, "text/plain", 10, &r, 100);
    CHECK_INT(n, strlen(out));
    CHECK_STR(out, "--B\r\nContent-Type: text/plain\r\nContent-Range: bytes 10-19/100\r\n\r\n");
    range_part_head(out, sizeof out, "B", 1, NULL, 0, &r, 100);
    CHECK_STR(out, "\r\n--B\r\nContent-Range: bytes 10-19/100\r\n\r\n");
    n = range_parts_end(out, sizeof out, "B");
    CHECK_INT(n, 9);
    CHECK_STR(out, "\r\n--B--\r\n");
    /* a head that does not fit is cut, never overrun */
    n = range_part_head(out, 16, "B", 0, "text/plain", 10, &r, 100);
    CHECK_INT(n, 15);
    return unit_report();
}
