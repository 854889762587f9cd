/* libFuzzer harness for Accept-Encoding (lib/http/coding.c).  The input is
 * one or more field values separated by NUL bytes.  Every weight is within
 * 0..1000, the choice is among what is offered (or identity), a chosen
 * coding has a weight above zero and at least that of every other offered
 * one, and br wins a tie with gzip.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
 *         -Iinclude -Ilib fuzz/fuzz_accept_encoding.c lib/http/coding.c -o fuzz_ae
 *   ./fuzz_ae fuzz/corpus/accept_encoding
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fields.h"
#include "http/coding.h"

static void add_field(const char *p, size_t n, void *arg)
{
    accept_encoding_add(arg, p, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct accept_encoding ae;
    accept_encoding_init(&ae);
    fuzz_each_field(data, size, add_field, &ae);
    static const enum http_coding all[] = {CODING_IDENTITY, CODING_GZIP, CODING_BR};
    for (size_t i = 0; i < 3; i++) {
        int w = accept_encoding_weight(&ae, all[i]);
        if (w < 0 || w > 1000)
            abort();
    }
    for (unsigned offered = 0; offered < 8; offered++) {
        enum http_coding c = accept_encoding_choose(&ae, offered);
        if (c != accept_encoding_choose(&ae, offered))
            abort();
        if (c == CODING_IDENTITY)
            continue;
        if (!(offered & (1u << c)) || c == CODING_IDENTITY)
            abort();
        int w = accept_encoding_weight(&ae, c);
        if (w <= 0)
            abort();
        for (size_t i = 1; i < 3; i++) {
            if (!(offered & (1u << all[i])) || all[i] == c)
                continue;
            int other = accept_encoding_weight(&ae, all[i]);
            if (other > w || (other == w && all[i] == CODING_BR))
                abort();
        }
        if (!strcmp(http_coding_name(c), "identity"))
            abort();
    }
    return 0;
}
