/* libFuzzer harness for Vary matching (lib/cache/vary.c).  The input is
 * field values separated by NUL bytes: the first is a response's Vary,
 * the others the values of request fields, named in turn X-A, Accept,
 * X-A again, User-Agent.  Building never reads outside a value, a
 * request always matches the variant built from it (and building twice
 * gives the same bytes), and a space added after every comma outside a
 * quoted string selects the same variant.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude -Ilib \
 *         fuzz/fuzz_vary.c build/libverbd.a -o fuzz_vary
 *   ./fuzz_vary fuzz/corpus/vary
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache/vary.h"
#include "fields.h"

#define MAX_FIELDS 16

static const char *const names[] = {"X-A", "Accept", "x-a", "User-Agent"};

struct input {
    struct http_field resp[1];
    struct http_field req[MAX_FIELDS];
    size_t nreq, nvalues;
    char *values[MAX_FIELDS + 1];
};

static void take(const char *p, size_t n, void *arg)
{
    struct input *in = arg;
    if (in->nvalues > MAX_FIELDS)
        return;
    char *copy = malloc(n ? n : 1);
    if (!copy)
        abort();
    memcpy(copy, p, n);
    in->values[in->nvalues] = copy;
    struct span v = {copy, n};
    if (in->nvalues == 0) {
        in->resp[0] = (struct http_field){{"Vary", 4}, v};
    } else {
        const char *name = names[(in->nvalues - 1) % 4];
        in->req[in->nreq++] = (struct http_field){{name, strlen(name)}, v};
    }
    in->nvalues++;
}

/* Value v with a space after each comma outside a quoted string. */
static char *spaced(struct span v, size_t *len)
{
    char *out = malloc(v.n * 2 + 1);
    if (!out)
        abort();
    size_t n = 0;
    bool quoted = false;
    for (size_t i = 0; i < v.n; i++) {
        char c = v.p[i];
        out[n++] = c;
        if (quoted && c == '\\' && i + 1 < v.n)
            out[n++] = v.p[++i];
        else if (c == '"')
            quoted = !quoted;
        else if (!quoted && c == ',')
            out[n++] = ' ';
    }
    *len = n;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct input in = {0};
    fuzz_each_field(data, size, take, &in);
    if (in.nvalues == 0)
        return 0;
    struct buf a = {0}, b = {0};
    int rc = vary_build(&a, in.resp, 1, in.req, in.nreq);
    if (vary_build(&b, in.resp, 1, in.req, in.nreq) != rc || a.len != b.len ||
        (a.len && memcmp(a.p, b.p, a.len) != 0))
        abort();
    if (rc == 0) {
        if (!vary_matches(a.p, a.len, in.req, in.nreq))
            abort();
        struct http_field other[MAX_FIELDS];
        char *made[MAX_FIELDS];
        for (size_t i = 0; i < in.nreq; i++) {
            size_t n;
            made[i] = spaced(in.req[i].value, &n);
            other[i] = (struct http_field){in.req[i].name, {made[i], n}};
        }
        if (!vary_matches(a.p, a.len, other, in.nreq))
            abort();
        for (size_t i = 0; i < in.nreq; i++)
            free(made[i]);
    }
    buf_free(&a);
    buf_free(&b);
    for (size_t i = 0; i < in.nvalues; i++)
        free(in.values[i]);
    return 0;
}
