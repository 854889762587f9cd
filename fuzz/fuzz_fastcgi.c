/* libFuzzer harness for the FastCGI record reader (what an application
 * sends).  Besides crashes, it checks that reading the input whole, one
 * byte at a time, and split where the first input byte says all give the
 * same events (STDOUT and STDERR bytes, the end, the error), that every
 * piece handed out lies inside the bytes given, and that the reader always
 * moves on.
 *
 *   clang -std=c17 -D_GNU_SOURCE -Iinclude -Ilib -fsanitize=fuzzer,address,undefined \
 *       fuzz/fuzz_fastcgi.c lib/mod/fastcgi/record.c lib/core/buf.c -o /tmp/fzf && /tmp/fzf
 * fuzz/corpus/fastcgi
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mod/fastcgi/record.h"

#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_fastcgi: %s:%d: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

struct outcome {
    uint64_t out_hash, err_hash; /* FNV-1a of STDOUT, STDERR bytes */
    uint64_t out_len, err_len;
    unsigned stdout_ends;
    bool ended, failed;
    uint32_t app_status;
};

static uint64_t fnv(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 1099511628211u;
    return h;
}

static void run(const uint8_t *in, size_t n, size_t step, struct outcome *o)
{
    struct fcgi_reader r = {0};
    memset(o, 0, sizeof *o);
    o->out_hash = o->err_hash = 14695981039346656037u;
    size_t pos = 0;
    while (pos < n && !o->ended && !o->failed) {
        size_t plen = step && n - pos > step ? step : n - pos;
        char *piece = malloc(plen);
        memcpy(piece, in + pos, plen);
        size_t off = 0;
        while (off < plen && !o->ended && !o->failed) {
            size_t used = 0;
            struct fcgi_out out;
            enum fcgi_event ev = fcgi_read(&r, 1, piece + off, plen - off, &used, &out);
            REQUIRE(used <= plen - off);
            if (ev == FCGI_OUTPUT && out.len) {
                REQUIRE(out.p >= piece + off && out.p + out.len <= piece + off + used);
                if (out.type == FCGI_STDOUT) {
                    o->out_hash = fnv(o->out_hash, out.p, out.len);
                    o->out_len += out.len;
                } else {
                    REQUIRE(out.type == FCGI_STDERR);
                    o->err_hash = fnv(o->err_hash, out.p, out.len);
                    o->err_len += out.len;
                }
            } else if (ev == FCGI_OUTPUT) {
                o->stdout_ends++;
            } else if (ev == FCGI_END) {
                o->ended = true;
                o->app_status = out.app_status;
            } else if (ev == FCGI_ERROR) {
                REQUIRE(out.why != NULL);
                o->failed = true;
            } else {
                REQUIRE(used == plen - off); /* MORE: everything was taken */
            }
            /* Progress: an event without bytes used is only a record's
             * header completed earlier or an empty STDOUT. */
            off += used;
        }
        free(piece);
        pos += plen;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct outcome whole, bytes, split;
    run(data, size, 0, &whole);
    run(data, size, 1, &bytes);
    run(data, size, size ? (size_t)data[0] % 17 + 1 : 1, &split);
    REQUIRE(memcmp(&whole, &bytes, sizeof whole) == 0);
    REQUIRE(memcmp(&whole, &split, sizeof whole) == 0);
    return 0;
}
