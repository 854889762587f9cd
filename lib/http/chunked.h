/* Decoder for the chunked transfer coding (RFC 9112 §7.1), resumable over
 * arbitrary splits of the input.  No I/O, no allocation. */
#ifndef VERBD_HTTP_CHUNKED_H
#define VERBD_HTTP_CHUNKED_H

#include <stddef.h>
#include <stdint.h>

#include "http/parse.h"

enum chunked_result { CHUNKED_MORE, CHUNKED_DONE, CHUNKED_ERROR };

struct chunked {
    int state;
    uint64_t remaining; /* data bytes left in the current chunk */
    uint64_t total;     /* data bytes decoded so far */
    size_t line;        /* bytes seen in the current size/extension/trailer line */
    size_t trailer;     /* bytes seen in the trailer section */
    int digits;         /* hex digits in the current chunk-size */
};

/* Limits on what a client controls inside the coding. */
#define CHUNKED_MAX_LINE 4096    /* a chunk-size line with its extensions */
#define CHUNKED_MAX_TRAILER 8192 /* the whole trailer section */

void chunked_init(struct chunked *c);

/*
 * Consumes a prefix of in[0, len).  *consumed is how many bytes were used;
 * *data is a slice of `in` holding decoded body bytes found in this step
 * (data->n may be 0).  Call again with the rest of the input while the
 * result is CHUNKED_MORE and *consumed > 0.
 *
 * CHUNKED_DONE: the last chunk and the trailer section (fields validated,
 * otherwise ignored) were read; *consumed ends after the final CRLF.
 * CHUNKED_ERROR: malformed (bad hex, "0x", "_", spaces, sign, more than 16
 * hex digits, bare LF, missing CRLF after data, line or trailer over the
 * limits, invalid trailer field): answer 400 and close.  *why says what.
 */
enum chunked_result chunked_decode(struct chunked *c, const char *in, size_t len, size_t *consumed,
                                   struct span *data, const char **why);

#endif
