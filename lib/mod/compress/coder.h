/* One compressed stream, gzip (zlib) or brotli, behind one call. */
#ifndef VERBD_MOD_COMPRESS_CODER_H
#define VERBD_MOD_COMPRESS_CODER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/coding.h"

enum coder_op {
    CODER_PROCESS, /* compress what is given; output may lag behind */
    CODER_FLUSH,   /* ... and put out everything given so far */
    CODER_FINISH,  /* ... and end the stream */
};

struct coder;

/* A stream for CODING_GZIP or CODING_BR at `level`; size_hint is the
 * input's length, or 0 if unknown.  NULL if memory is short. */
struct coder *coder_new(enum http_coding coding, int level, uint64_t size_hint);
/* Gives the stream back (gzip streams are kept for the next response). */
void coder_free(struct coder *c);
/* Runs op over in[0, *in_len) into out[0, *out_len); on return *in_len
 * and *out_len are the bytes consumed and produced.  True once the
 * op is complete (all input taken; for FLUSH and FINISH, all output
 * given); false if out filled up first.  An internal error ends the
 * stream (logged) and counts as complete. */
bool coder_run(struct coder *c, enum coder_op op, const uint8_t *in, size_t *in_len, uint8_t *out,
               size_t *out_len);

#endif
