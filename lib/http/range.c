/* Byte ranges (RFC 9110 §14): parsing the Range field, If-Range, and the
 * framing of multipart/byteranges. */
#include "http/range.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "http/date.h"

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* 1*DIGIT, saturating at UINT64_MAX: a huge position is merely past the
 * end, not an error. */
static bool get_pos(const char *p, size_t n, size_t *i, uint64_t *v)
{
    if (*i >= n || !is_digit(p[*i]))
        return false;
    uint64_t x = 0;
    for (; *i < n && is_digit(p[*i]); (*i)++) {
        unsigned d = (unsigned)(p[*i] - '0');
        x = x > (UINT64_MAX - d) / 10 ? UINT64_MAX : x * 10 + d;
    }
    *v = x;
    return true;
}

/*
 * The DoS guard (the RFC lets a server ignore such a Range, §14.2): more
 * than RANGE_MAX range-specs, or satisfiable ranges adding up to more than
 * twice the representation (many overlapping ranges would make a small
 * request cost a large answer), and the whole representation is sent with
 * 200 instead.
 */
enum range_result range_parse(const char *p, size_t n, uint64_t size, struct byte_range *out,
                              size_t *count)
{
    static const char unit[] = "bytes=";
    *count = 0;
    if (n < 6)
        return RANGE_IGNORE;
    for (size_t k = 0; k < 6; k++) { /* the unit is case-insensitive */
        char c = p[k] >= 'A' && p[k] <= 'Z' ? (char)(p[k] + 32) : p[k];
        if (c != unit[k])
            return RANGE_IGNORE;
    }
    size_t i = 6, specs = 0, nsat = 0;
    uint64_t total = 0;
    while (i < n) {
        if (is_ows(p[i]) || p[i] == ',') { /* empty list elements are allowed */
            i++;
            continue;
        }
        if (++specs > RANGE_MAX)
            return RANGE_IGNORE;
        uint64_t first, last;
        bool sat;
        if (p[i] == '-') { /* suffix-range: the last N bytes */
            i++;
            uint64_t len;
            if (!get_pos(p, n, &i, &len))
                return RANGE_IGNORE;
            sat = len > 0 && size > 0;
            first = len >= size ? 0 : size - len;
            last = size - 1;
        } else {
            if (!get_pos(p, n, &i, &first) || i >= n || p[i] != '-')
                return RANGE_IGNORE;
            i++;
            last = UINT64_MAX;
            if (i < n && is_digit(p[i])) {
                get_pos(p, n, &i, &last);
                if (last < first) /* an invalid int-range invalidates all */
                    return RANGE_IGNORE;
            }
            sat = first < size;
            if (sat && last >= size)
                last = size - 1;
        }
        while (i < n && is_ows(p[i]))
            i++;
        if (i < n && p[i] != ',')
            return RANGE_IGNORE;
        if (sat) {
            out[nsat++] = (struct byte_range){first, last};
            uint64_t len = last - first + 1;
            total = total > UINT64_MAX - len ? UINT64_MAX : total + len;
        }
    }
    if (specs == 0)
        return RANGE_IGNORE;
    if (nsat == 0)
        return RANGE_UNSATISFIABLE;
    if (size <= UINT64_MAX / 2 && total > size * 2)
        return RANGE_IGNORE;
    *count = nsat;
    return RANGE_SATISFIABLE;
}

/* 1*DIGIT that fits (at most 18 digits: no overflow); false otherwise. */
static bool get_exact(const char *p, size_t n, size_t *i, uint64_t *v)
{
    size_t start = *i;
    uint64_t x = 0;
    for (; *i < n && is_digit(p[*i]) && *i - start < 18; (*i)++)
        x = x * 10 + (unsigned)(p[*i] - '0');
    *v = x;
    return *i > start && !(*i < n && is_digit(p[*i]));
}

bool range_content_range_parse(const char *p, size_t n, struct byte_range *part, uint64_t *size)
{
    size_t i = 6;
    if (n < 6 || strncasecmp(p, "bytes ", 6) != 0)
        return false;
    if (!get_exact(p, n, &i, &part->first) || i >= n || p[i++] != '-' ||
        !get_exact(p, n, &i, &part->last) || i >= n || p[i++] != '/' ||
        !get_exact(p, n, &i, size) || i != n)
        return false;
    return part->first <= part->last && part->last < *size;
}

bool range_if_range_matches(const char *p, size_t n, const char *etag, size_t etag_len,
                            bool has_mtime, time_t mtime)
{
    /* An entity-tag starts with '"' or "W/"; a bare 'W' begins an
     * HTTP-date ("Wed, ..."), so the slash decides. */
    if ((n && p[0] == '"') || (n >= 2 && p[0] == 'W' && p[1] == '/')) {
        /* Only a strong match counts: a weak tag (here or there) never
         * does. */
        return etag && p[0] == '"' && n == etag_len && memcmp(p, etag, n) == 0;
    }
    time_t t;
    if (http_date_parse(p, n, &t) != 0)
        return false;
    return has_mtime && t == mtime;
}

/* A counter, the clock and the pid mixed (splitmix64).  It need not be
 * secret, only unlikely to occur in the body, which 16 hex digits make
 * it. */
void range_boundary(char out[RANGE_BOUNDARY_MAX])
{
    static _Atomic uint64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = counter++ * 0x9e3779b97f4a7c15u;
    x ^= (uint64_t)ts.tv_sec << 32 ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid() << 48;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    x ^= x >> 31;
    snprintf(out, RANGE_BOUNDARY_MAX, "verbd%016" PRIx64, x);
}

static size_t clamp(int len, size_t cap)
{
    return len < 0 ? 0 : (size_t)len < cap ? (size_t)len : cap - 1;
}

size_t range_part_head(char *out, size_t cap, const char *boundary, size_t k, const char *type,
                       size_t type_len, const struct byte_range *r, uint64_t size)
{
    if (type_len > 100)
        type_len = 100;
    int len =
        snprintf(out, cap,
                 "%s--%s\r\n%s%.*s%s"
                 "Content-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64 "\r\n\r\n",
                 k ? "\r\n" : "", boundary, type ? "Content-Type: " : "", type ? (int)type_len : 0,
                 type ? type : "", type ? "\r\n" : "", r->first, r->last, size);
    return clamp(len, cap);
}

size_t range_parts_end(char *out, size_t cap, const char *boundary)
{
    return clamp(snprintf(out, cap, "\r\n--%s--\r\n", boundary), cap);
}
