/* libFuzzer harness for the request-head parser.  Besides crashes, it
 * checks the contract: the invariants of an accepted head, the set of
 * statuses, and that every prefix of the input gives 0 or exactly the
 * result of the whole input (the parser is re-run as bytes arrive).
 *
 *   clang -std=c17 -D_GNU_SOURCE -Iinclude -Ilib -fsanitize=fuzzer,address,undefined \
 *       fuzz/fuzz_parse.c lib/http/parse.c -o /tmp/fz && /tmp/fz fuzz/corpus/parse
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/method.h"
#include "http/parse.h"

#define MAX_FIELDS 32

static const struct http_limits limits[] = {
    {.max_target = 512, .max_header = 4096, .max_fields = MAX_FIELDS, .max_body = 1 << 20},
    {.max_target = 12, .max_header = 64, .max_fields = 3, .max_body = 10},
};

struct result {
    int rc;
    const char *why;
    long spans[5][2];
    int form, minor, framing;
    size_t nfields;
    long f[MAX_FIELDS][4];
    uint64_t content_length;
    int keep_alive, expect_continue;
    size_t head_len;
};

#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_parse: %s:%d: %s\n", __FILE__, __LINE__, #cond);                 \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void off(long out[2], const char *base, size_t len, struct span s, bool may_be_null)
{
    if (!s.p) {
        REQUIRE(may_be_null && s.n == 0);
        out[0] = -1;
        out[1] = 0;
        return;
    }
    REQUIRE(s.p >= base && s.n <= len && (size_t)(s.p - base) <= len - s.n);
    out[0] = (long)(s.p - base);
    out[1] = (long)s.n;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Parses base[0, len) and checks what the contract promises. */
static void parse(const char *base, size_t len, const struct http_limits *lim, struct result *r)
{
    struct http_field fields[MAX_FIELDS];
    struct http_request req;
    const char *why = NULL;
    memset(r, 0, sizeof *r);
    r->rc = http_parse_request(base, len, lim, fields, &req, &why);
    if (r->rc < 0) {
        int s = -r->rc;
        REQUIRE(s == 400 || s == 413 || s == 414 || s == 417 || s == 431 || s == 501 || s == 505);
        REQUIRE(why && *why);
        r->why = why;
        return;
    }
    if (r->rc == 0) {
        REQUIRE(len <= lim->max_header);
        return;
    }
    size_t hl = req.head_len;
    REQUIRE((size_t)r->rc == hl && hl <= len && hl <= lim->max_header && hl >= 4);
    REQUIRE(memcmp(base + hl - 4, "\r\n\r\n", 4) == 0);
    off(r->spans[0], base, hl, req.method, false);
    off(r->spans[1], base, hl, req.target, false);
    off(r->spans[2], base, hl, req.path, false);
    off(r->spans[3], base, hl, req.query, true);
    off(r->spans[4], base, hl, req.host, false);
    REQUIRE(http_is_token(req.method.p, req.method.n) && req.method.n <= 64);
    REQUIRE(req.target.n >= 1 && req.target.n <= lim->max_target);
    for (size_t i = 0; i < req.target.n; i++)
        REQUIRE(req.target.p[i] > 0x20 && req.target.p[i] < 0x7f && req.target.p[i] != '#');
    REQUIRE(req.minor == 0 || req.minor == 1);
    REQUIRE(req.fields == fields && req.nfields <= lim->max_fields);
    switch (req.form) {
    case TARGET_ORIGIN:
        REQUIRE(req.path.n >= 1 && req.path.p[0] == '/' && req.path.p == req.target.p);
        break;
    case TARGET_ABSOLUTE: REQUIRE(req.path.n >= 1 && req.path.p[0] == '/' && req.host.n > 0); break;
    case TARGET_AUTHORITY:
        REQUIRE(req.method.n == 7 && memcmp(req.method.p, "CONNECT", 7) == 0 && req.path.n == 0);
        break;
    case TARGET_ASTERISK:
        REQUIRE(req.method.n == 7 && memcmp(req.method.p, "OPTIONS", 7) == 0);
        REQUIRE(req.path.n == 1 && req.path.p[0] == '*');
        break;
    default: REQUIRE(0);
    }
    r->form = (int)req.form;
    r->minor = req.minor;
    r->nfields = req.nfields;
    for (size_t i = 0; i < req.nfields; i++) {
        struct span n = req.fields[i].name, v = req.fields[i].value;
        off(r->f[i], base, hl, n, false);
        off(r->f[i] + 2, base, hl, v, false);
        REQUIRE(http_is_token(n.p, n.n));
        REQUIRE(v.n == 0 || (!is_ows(v.p[0]) && !is_ows(v.p[v.n - 1])));
        for (size_t k = 0; k < v.n; k++) {
            unsigned char c = (unsigned char)v.p[k];
            REQUIRE(c >= 0x20 || c == '\t');
            REQUIRE(c != 0x7f);
        }
    }
    REQUIRE(req.framing == BODY_NONE || req.framing == BODY_LENGTH || req.framing == BODY_CHUNKED);
    REQUIRE(req.framing == BODY_LENGTH || req.content_length == 0);
    REQUIRE(req.content_length <= lim->max_body);
    REQUIRE(req.framing != BODY_CHUNKED || req.minor == 1);
    REQUIRE(!req.expect_continue || req.minor == 1);
    REQUIRE(req.minor == 0 || http_field_get(&req, "host").p != NULL);
    r->framing = (int)req.framing;
    r->content_length = req.content_length;
    r->keep_alive = req.keep_alive;
    r->expect_continue = req.expect_continue;
    r->head_len = hl;
}

/* Parses a heap copy of exactly n bytes, so that ASan sees over-reads. */
static void parse_copy(const uint8_t *data, size_t n, const struct http_limits *lim,
                       struct result *r)
{
    char *copy = malloc(n ? n : 1);
    memcpy(copy, data, n);
    parse(copy, n, lim, r);
    free(copy);
}

static bool same(const struct result *a, const struct result *b)
{
    return memcmp(a, b, sizeof *a) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (size_t l = 0; l < sizeof limits / sizeof *limits; l++) {
        struct result whole, part;
        parse_copy(data, size, &limits[l], &whole);
        /* Every prefix when short; otherwise a sample, plus those around
         * the end of the head. */
        size_t step = size <= 600 ? 1 : size / 300;
        for (size_t k = 0; k < size; k += step) {
            parse_copy(data, k, &limits[l], &part);
            REQUIRE(part.rc == 0 || same(&part, &whole));
        }
        if (whole.rc > 0) {
            for (size_t k = whole.head_len > 8 ? whole.head_len - 8 : 0;
                 k < size && k <= whole.head_len + 8; k++) {
                parse_copy(data, k, &limits[l], &part);
                REQUIRE(part.rc == 0 || same(&part, &whole));
                REQUIRE(k < whole.head_len ? part.rc == 0 : same(&part, &whole));
            }
        }
    }
    return 0;
}
