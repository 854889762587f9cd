/* Byte ranges (RFC 9110 §14): parsing the Range field and building 206
 * answers, single-part or multipart/byteranges. */
#include "mod/static/internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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
 * twice the file (many overlapping ranges would make a small request cost
 * a large answer), and the whole representation is sent with 200 instead.
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

/* A boundary that differs per response and per process: a counter, the
 * clock and the pid mixed (splitmix64).  It need not be secret, only
 * unlikely to occur in the file, which 16 hex digits make it. */
static void make_boundary(char out[32])
{
    static _Atomic uint64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = counter++ * 0x9e3779b97f4a7c15u;
    x ^= (uint64_t)ts.tv_sec << 32 ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid() << 48;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    x ^= x >> 31;
    snprintf(out, 32, "verbd%016" PRIx64, x);
}

void range_respond(struct verbd_response *res, struct file_entry *e, const char *type,
                   const struct byte_range *r, size_t count)
{
    uint64_t size = (uint64_t)e->st.st_size;
    char cr[80];
    verbd_response_status(res, 206);
    if (count == 1) {
        snprintf(cr, sizeof cr, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, r[0].first, r[0].last,
                 size);
        verbd_response_header(res, "Content-Type", type);
        verbd_response_header(res, "Content-Range", cr);
        cache_respond_range(res, e, r[0].first, r[0].last - r[0].first + 1);
        return;
    }
    char boundary[32], ct[80], part[256];
    make_boundary(boundary);
    snprintf(ct, sizeof ct, "multipart/byteranges; boundary=%s", boundary);
    verbd_response_header(res, "Content-Type", ct);
    /* Part headers from memory interleaved with ranges of the file. */
    for (size_t k = 0; k < count; k++) {
        int len = snprintf(part, sizeof part,
                           "%s--%s\r\nContent-Type: %.100s\r\n"
                           "Content-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64 "\r\n\r\n",
                           k ? "\r\n" : "", boundary, type, r[k].first, r[k].last, size);
        verbd_response_body(res, part, (size_t)len < sizeof part ? (size_t)len : sizeof part - 1);
        cache_respond_range(res, e, r[k].first, r[k].last - r[k].first + 1);
    }
    int len = snprintf(part, sizeof part, "\r\n--%s--\r\n", boundary);
    verbd_response_body(res, part, (size_t)len);
}
