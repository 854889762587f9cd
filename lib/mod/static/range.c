/* Byte ranges (RFC 9110 §14): 206 answers from a cached file,
 * single-part or multipart/byteranges (the parsing is http/range.c's). */
#include "mod/static/internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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
    char boundary[RANGE_BOUNDARY_MAX], ct[80], part[256];
    range_boundary(boundary);
    snprintf(ct, sizeof ct, "multipart/byteranges; boundary=%s", boundary);
    verbd_response_header(res, "Content-Type", ct);
    /* Part headers from memory interleaved with ranges of the file. */
    for (size_t k = 0; k < count; k++) {
        size_t len =
            range_part_head(part, sizeof part, boundary, k, type, strlen(type), &r[k], size);
        verbd_response_body(res, part, len);
        cache_respond_range(res, e, r[k].first, r[k].last - r[k].first + 1);
    }
    verbd_response_body(res, part, range_parts_end(part, sizeof part, boundary));
}
