/* libFuzzer harness for the chunked decoder.  Besides crashes, it checks
 * that decoding the input whole, one byte at a time, and split where the
 * first input byte says all give the same result, bytes and count, and
 * that data slices lie inside the input.
 *
 *   clang -std=c17 -D_GNU_SOURCE -Iinclude -Ilib -fsanitize=fuzzer,address,undefined \
 *       fuzz/fuzz_chunked.c lib/http/chunked.c lib/http/parse.c -o /tmp/fzc && /tmp/fzc
 * fuzz/corpus/chunked
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/chunked.h"

#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_chunked: %s:%d: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

struct outcome {
    enum chunked_result r;
    size_t consumed;
    uint64_t total;
    uint64_t hash; /* FNV-1a of the decoded bytes */
    size_t ndata;
    const char *why;
};

/* Feeds in[0, n) in pieces of at most `step` bytes (0: all at once), each a
 * heap copy of its exact length. */
static void run(const uint8_t *in, size_t n, size_t step, struct outcome *o)
{
    struct chunked c;
    chunked_init(&c);
    memset(o, 0, sizeof *o);
    o->r = CHUNKED_MORE;
    o->hash = 14695981039346656037u;
    size_t pos = 0;
    while (pos < n && o->r == CHUNKED_MORE) {
        size_t plen = step && n - pos > step ? step : n - pos;
        char *piece = malloc(plen);
        memcpy(piece, in + pos, plen);
        size_t off = 0;
        while (off < plen) {
            size_t used = 99;
            struct span d;
            const char *why = NULL;
            o->r = chunked_decode(&c, piece + off, plen - off, &used, &d, &why);
            REQUIRE(used <= plen - off);
            REQUIRE(d.n == 0 || (d.p >= piece + off && d.p + d.n <= piece + off + used));
            REQUIRE(d.n == 0 || o->r != CHUNKED_DONE);
            for (size_t i = 0; i < d.n; i++)
                o->hash = (o->hash ^ (uint8_t)d.p[i]) * 1099511628211u;
            o->ndata += d.n;
            off += used;
            o->consumed += used;
            if (o->r != CHUNKED_MORE) {
                REQUIRE(o->r == CHUNKED_DONE || (why && *why));
                o->why = why;
                break;
            }
            REQUIRE(used > 0);
        }
        free(piece);
        pos += plen;
    }
    REQUIRE(c.total == o->ndata);
    o->total = c.total;
}

static bool same(const struct outcome *a, const struct outcome *b)
{
    return a->r == b->r && a->consumed == b->consumed && a->total == b->total &&
           a->hash == b->hash && a->ndata == b->ndata && a->why == b->why;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct outcome whole, part;
    run(data, size, 0, &whole);
    REQUIRE(whole.consumed <= size);
    REQUIRE(whole.r != CHUNKED_MORE || whole.consumed == size);
    run(data, size, 1, &part);
    REQUIRE(same(&whole, &part));
    if (size > 0) {
        run(data, size, (size_t)data[0] % 16 + 2, &part);
        REQUIRE(same(&whole, &part));
    }
    return 0;
}
