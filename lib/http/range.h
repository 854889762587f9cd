/* Byte ranges (RFC 9110 §14): the Range field parsed against a
 * representation's length, the If-Range precondition (§13.1.5), and the
 * framing of a multipart/byteranges body (§14.6).  Pure: whoever sends
 * the bytes (the static module, the proxy's cache) uses these. */
#ifndef VERBD_HTTP_RANGE_H
#define VERBD_HTTP_RANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct byte_range {
    uint64_t first, last; /* inclusive */
};

#define RANGE_MAX 16 /* more range-specs than this: the Range is ignored */

enum range_result {
    RANGE_IGNORE,        /* not a valid bytes range set, or refused: send 200 */
    RANGE_SATISFIABLE,   /* out[0..*count) to send */
    RANGE_UNSATISFIABLE, /* 416 */
};

/* The Range field p[0..n) for a representation of `size` bytes: the
 * satisfiable ranges (at most RANGE_MAX) in out, in the order asked. */
enum range_result range_parse(const char *p, size_t n, uint64_t size, struct byte_range *out,
                              size_t *count);

/* A single part's Content-Range "bytes A-B/LEN" (§14.4) whose complete
 * length is known: true with the part and LEN; false for anything else
 * (an unknown length "*", an unsatisfied-range, A > B, B >= LEN). */
bool range_content_range_parse(const char *p, size_t n, struct byte_range *part, uint64_t *size);

/* Whether an If-Range field p[0..n) lets a Range be honoured: an
 * entity-tag matching `etag` strongly (a weak tag on either side never
 * does), or an HTTP-date equal to the Last-Modified date (when
 * has_mtime).  etag is the representation's own, quotes included, or
 * NULL. */
bool range_if_range_matches(const char *p, size_t n, const char *etag, size_t etag_len,
                            bool has_mtime, time_t mtime);

/* multipart/byteranges: a boundary that differs per response and per
 * process (NUL-terminated, under RANGE_BOUNDARY_MAX bytes), ... */
#define RANGE_BOUNDARY_MAX 32
void range_boundary(char out[RANGE_BOUNDARY_MAX]);
/* ... the head of part k (its delimiter, Content-Type unless type is
 * NULL, and Content-Range) into out, returning its length, ... */
size_t range_part_head(char *out, size_t cap, const char *boundary, size_t k, const char *type,
                       size_t type_len, const struct byte_range *r, uint64_t size);
/* ... and the closing delimiter. */
size_t range_parts_end(char *out, size_t cap, const char *boundary);

#endif
