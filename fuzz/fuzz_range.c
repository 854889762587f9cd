/* libFuzzer harness for byte ranges (lib/http/range.c).  The input is a
 * representation's length (its first 4 bytes, little-endian; 0 to 4 GiB)
 * and then a Range field value, also read as a Content-Range and an
 * If-Range.  Satisfiable ranges lie inside the representation, there are
 * at most RANGE_MAX of them and they add up to at most twice its length;
 * other results give none; a parsed Content-Range is a part of its
 * complete length; everything is the same when asked twice.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
 *         -Iinclude -Ilib fuzz/fuzz_range.c lib/http/range.c lib/http/date.c -o fuzz_range
 *   ./fuzz_range fuzz/corpus/range
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/range.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    uint64_t len = (uint64_t)data[0] | (uint64_t)data[1] << 8 | (uint64_t)data[2] << 16 |
                   (uint64_t)data[3] << 24;
    const char *p = (const char *)data + 4;
    size_t n = size - 4;
    /* A copy of exactly n bytes: reading past it is ASan's to catch. */
    char *field = malloc(n ? n : 1);
    if (!field)
        abort();
    memcpy(field, p, n);

    struct byte_range r[RANGE_MAX], again[RANGE_MAX];
    size_t count = 99, count2 = 99;
    enum range_result rr = range_parse(field, n, len, r, &count);
    if (range_parse(field, n, len, again, &count2) != rr || count2 != count)
        abort();
    if (rr == RANGE_SATISFIABLE) {
        if (count == 0 || count > RANGE_MAX)
            abort();
        uint64_t total = 0;
        for (size_t k = 0; k < count; k++) {
            if (r[k].first > r[k].last || r[k].last >= len)
                abort();
            if (r[k].first != again[k].first || r[k].last != again[k].last)
                abort();
            total += r[k].last - r[k].first + 1;
        }
        if (total > 2 * len)
            abort();
    } else if (count != 0) {
        abort();
    }

    struct byte_range part;
    uint64_t complete;
    if (range_content_range_parse(field, n, &part, &complete) &&
        (part.first > part.last || part.last >= complete))
        abort();

    bool m = range_if_range_matches(field, n, "\"v1\"", 4, true, 1700000000);
    if (m != range_if_range_matches(field, n, "\"v1\"", 4, true, 1700000000))
        abort();
    /* A weak tag never matches, whatever it is compared with. */
    if (n >= 2 && field[0] == 'W' && field[1] == '/' &&
        range_if_range_matches(field, n, field, n, false, 0))
        abort();

    char boundary[RANGE_BOUNDARY_MAX], head[256];
    range_boundary(boundary);
    if (count) {
        size_t h = range_part_head(head, sizeof head, boundary, 1, field, n, &r[0], len);
        if (h >= sizeof head || h != strlen(head))
            abort();
    }
    free(field);
    return 0;
}
