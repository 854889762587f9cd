/* gzip with zlib's deflate, brotli with libbrotlienc's streaming encoder.
 * A deflate state costs about 256 KiB to set up, so each worker keeps a
 * few of them and resets one for the next response instead. */
#include "mod/compress/coder.h"

#include <brotli/encode.h>
#include <stdlib.h>
#include <zlib.h>

#include "core/log.h"

/* Brotli's window: 2^19 bytes (512 KiB), what a web server's brotli
 * usually gets, instead of the library's 4 MiB. */
#define BROTLI_WINDOW_BITS 19
#define GZIP_POOL 4

struct coder {
    enum http_coding coding;
    int level;
    z_stream z;
    BrotliEncoderState *br;
    bool done; /* finished, or failed */
};

static struct coder *gzip_pool[GZIP_POOL];
static size_t gzip_pooled;

struct coder *coder_new(enum http_coding coding, int level, uint64_t size_hint)
{
    if (coding == CODING_GZIP) {
        for (size_t i = 0; i < gzip_pooled; i++) {
            if (gzip_pool[i]->level == level) {
                struct coder *c = gzip_pool[i];
                gzip_pool[i] = gzip_pool[--gzip_pooled];
                return c;
            }
        }
    }
    struct coder *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->coding = coding;
    c->level = level;
    if (coding == CODING_GZIP) {
        /* 15 + 16: a gzip wrapper around a 32 KiB window. */
        if (deflateInit2(&c->z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
            free(c);
            return NULL;
        }
        return c;
    }
    c->br = BrotliEncoderCreateInstance(NULL, NULL, NULL);
    if (!c->br) {
        free(c);
        return NULL;
    }
    BrotliEncoderSetParameter(c->br, BROTLI_PARAM_QUALITY, (uint32_t)level);
    BrotliEncoderSetParameter(c->br, BROTLI_PARAM_LGWIN, BROTLI_WINDOW_BITS);
    if (size_hint && size_hint < (1u << 30))
        BrotliEncoderSetParameter(c->br, BROTLI_PARAM_SIZE_HINT, (uint32_t)size_hint);
    return c;
}

void coder_free(struct coder *c)
{
    if (!c)
        return;
    if (c->coding == CODING_GZIP) {
        if (gzip_pooled < GZIP_POOL && deflateReset(&c->z) == Z_OK) {
            c->done = false;
            gzip_pool[gzip_pooled++] = c;
            return;
        }
        deflateEnd(&c->z);
    } else {
        BrotliEncoderDestroyInstance(c->br);
    }
    free(c);
}

static bool run_gzip(struct coder *c, enum coder_op op, const uint8_t *in, size_t *in_len,
                     uint8_t *out, size_t *out_len)
{
    c->z.next_in = (Bytef *)in;
    c->z.avail_in = (uInt)*in_len;
    c->z.next_out = out;
    c->z.avail_out = (uInt)*out_len;
    int flush = op == CODER_FINISH ? Z_FINISH : op == CODER_FLUSH ? Z_SYNC_FLUSH : Z_NO_FLUSH;
    int rc = deflate(&c->z, flush);
    *in_len -= c->z.avail_in;
    *out_len -= c->z.avail_out;
    if (rc == Z_STREAM_END) {
        c->done = true;
        return true;
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
        log_msg(LOG_ERROR, "gzip: deflate failed (%d); the response ends short", rc);
        c->done = true;
        return true;
    }
    /* Room left over means deflate has put out all it had to. */
    if (op == CODER_PROCESS)
        return c->z.avail_in == 0;
    return c->z.avail_in == 0 && c->z.avail_out > 0 && op == CODER_FLUSH;
}

static bool run_brotli(struct coder *c, enum coder_op op, const uint8_t *in, size_t *in_len,
                       uint8_t *out, size_t *out_len)
{
    size_t avail_in = *in_len, avail_out = *out_len;
    const uint8_t *next_in = in;
    uint8_t *next_out = out;
    BrotliEncoderOperation bop = op == CODER_FINISH  ? BROTLI_OPERATION_FINISH
                                 : op == CODER_FLUSH ? BROTLI_OPERATION_FLUSH
                                                     : BROTLI_OPERATION_PROCESS;
    BROTLI_BOOL ok =
        BrotliEncoderCompressStream(c->br, bop, &avail_in, &next_in, &avail_out, &next_out, NULL);
    *in_len -= avail_in;
    *out_len -= avail_out;
    if (!ok) {
        log_msg(LOG_ERROR, "brotli: the encoder failed; the response ends short");
        c->done = true;
        return true;
    }
    if (op == CODER_FINISH) {
        c->done = BrotliEncoderIsFinished(c->br);
        return c->done;
    }
    return avail_in == 0 && (op == CODER_PROCESS || !BrotliEncoderHasMoreOutput(c->br));
}

bool coder_run(struct coder *c, enum coder_op op, const uint8_t *in, size_t *in_len, uint8_t *out,
               size_t *out_len)
{
    if (c->done) {
        *in_len = *out_len = 0;
        return true;
    }
    if (c->coding == CODING_GZIP)
        return run_gzip(c, op, in, in_len, out, out_len);
    return run_brotli(c, op, in, in_len, out, out_len);
}
