/* Unit tests for the chunked decoder (lib/http/chunked.c).  Every input is
 * decoded whole, one byte at a time, and split at every point; all three
 * must agree. */
#include <stdbool.h>
#include <stdlib.h>

#include "http/chunked.h"
#include "unit.h"

struct outcome {
    enum chunked_result r;
    size_t consumed;  /* bytes used in all */
    char data[16384]; /* decoded bytes, concatenated */
    size_t ndata;
    uint64_t total; /* the decoder's own count */
    const char *why;
    bool stuck;          /* MORE with nothing consumed from non-empty input */
    bool done_with_data; /* a DONE that also returned data */
};

/* Feeds in[0, n) in pieces: [0, split) and [split, n), each piece in
 * pieces of at most `step` bytes (0: no limit).  Each piece is a heap copy
 * of its exact length, so that ASan sees reads past it. */
static void run(const char *in, size_t n, size_t split, size_t step, struct outcome *o)
{
    struct chunked c;
    chunked_init(&c);
    memset(o, 0, sizeof *o);
    o->r = CHUNKED_MORE;
    size_t pos = 0;
    while (pos < n && o->r == CHUNKED_MORE) {
        size_t end = pos < split && split < n ? split : n;
        if (step && end - pos > step)
            end = pos + step;
        size_t plen = end - pos;
        char *piece = malloc(plen);
        memcpy(piece, in + pos, plen);
        size_t off = 0;
        while (off < plen) {
            size_t used = 0;
            struct span d;
            const char *why = NULL;
            o->r = chunked_decode(&c, piece + off, plen - off, &used, &d, &why);
            if (d.n) {
                if (d.p < piece + off || d.p + d.n > piece + plen ||
                    o->ndata + d.n > sizeof o->data)
                    o->stuck = true;
                else
                    memcpy(o->data + o->ndata, d.p, d.n);
                o->ndata += d.n;
                if (o->r == CHUNKED_DONE)
                    o->done_with_data = true;
            }
            off += used;
            o->consumed += used;
            if (o->r != CHUNKED_MORE) {
                o->why = why;
                break;
            }
            if (used == 0) {
                o->stuck = true;
                break;
            }
        }
        free(piece);
        if (o->stuck)
            break;
        pos = end;
    }
    o->total = c.total;
}

static bool same(const struct outcome *a, const struct outcome *b)
{
    return a->r == b->r && a->consumed == b->consumed && a->ndata == b->ndata &&
           memcmp(a->data, b->data, a->ndata) == 0 && a->total == b->total &&
           (a->r != CHUNKED_ERROR || a->why == b->why) && !a->stuck && !b->stuck &&
           !a->done_with_data && !b->done_with_data;
}

static struct outcome whole, part;

/* Decodes s[0, n) whole, byte by byte and at every split point; checks
 * they agree (one CHECK), and leaves the whole result in `whole`. */
static void decode_n(const char *s, size_t n)
{
    run(s, n, n, 0, &whole);
    bool ok = !whole.stuck && !whole.done_with_data;
    run(s, n, n, 1, &part);
    if (!same(&whole, &part)) {
        printf("  byte by byte differs for \"%.*s\"\n", (int)(n < 60 ? n : 60), s);
        ok = false;
    }
    for (size_t k = 1; k < n && ok; k++) {
        run(s, n, k, 0, &part);
        if (!same(&whole, &part)) {
            printf("  split at %zu differs for \"%.*s\"\n", k, (int)(n < 60 ? n : 60), s);
            ok = false;
        }
    }
    CHECK(ok);
}

static void decode(const char *s)
{
    decode_n(s, strlen(s));
}

#define ACCEPT(s, body)                                                                            \
    do {                                                                                           \
        const char *s_ = (s), *b_ = (body);                                                        \
        decode(s_);                                                                                \
        CHECK_INT(whole.r, CHUNKED_DONE);                                                          \
        CHECK_INT(whole.consumed, strlen(s_));                                                     \
        CHECK(whole.ndata == strlen(b_) && memcmp(whole.data, b_, whole.ndata) == 0);              \
        CHECK_INT(whole.total, strlen(b_));                                                        \
    } while (0)

#define REJECT(s)                                                                                  \
    do {                                                                                           \
        decode(s);                                                                                 \
        CHECK_INT(whole.r, CHUNKED_ERROR);                                                         \
        CHECK(whole.why &&*whole.why);                                                             \
    } while (0)

#define REJECT_WHY(s, reason)                                                                      \
    do {                                                                                           \
        decode(s);                                                                                 \
        CHECK_INT(whole.r, CHUNKED_ERROR);                                                         \
        CHECK_STR(whole.why, reason);                                                              \
    } while (0)

static void test_valid(void)
{
    ACCEPT("0\r\n\r\n", "");
    ACCEPT("5\r\nhello\r\n0\r\n\r\n", "hello");
    ACCEPT("3\r\nabc\r\n4\r\ndefg\r\n1\r\n\n\r\n0\r\n\r\n", "abcdefg\n");
    ACCEPT("a\r\n0123456789\r\nA\r\nabcdefghij\r\n0\r\n\r\n", "0123456789abcdefghij");
    ACCEPT("10\r\n0123456789abcdef\r\n0\r\n\r\n", "0123456789abcdef");
    ACCEPT("0005\r\nhello\r\n000\r\n\r\n", "hello");
    ACCEPT("0000000000000005\r\nhello\r\n0\r\n\r\n", "hello");
    /* data is opaque: CR, LF, NUL, anything */
    static const char opaque[] = "4\r\n\r\n\0\xff\r\n0\r\n\r\n";
    decode_n(opaque, sizeof opaque - 1);
    CHECK_INT(whole.r, CHUNKED_DONE);
    CHECK(whole.ndata == 4 && memcmp(whole.data, "\r\n\0\xff", 4) == 0);

    /* chunk extensions */
    ACCEPT("5;foo=bar\r\nhello\r\n0\r\n\r\n", "hello");
    ACCEPT("5;foo\r\nhello\r\n0;last\r\n\r\n", "hello");
    ACCEPT("5 ; foo = bar ;baz\r\nhello\r\n0\r\n\r\n", "hello");
    ACCEPT("5\t;\tfoo\t=\tbar\r\nhello\r\n0\r\n\r\n", "hello");
    ACCEPT("5;a=\"quoted ; \\\"string\\\" \\\\\";b\r\nhello\r\n0\r\n\r\n", "hello");
    ACCEPT("5;a=\"\xc3\xa9\"\r\nhello\r\n0\r\n\r\n", "hello");
    ACCEPT("5;a=\"\" ;b=c\r\nhello\r\n0\r\n\r\n", "hello");
    ACCEPT("5;!#$%&'*+-.^_`|~=!#$%&'*+-.^_`|~\r\nhello\r\n0\r\n\r\n", "hello");

    /* trailer fields */
    ACCEPT("5\r\nhello\r\n0\r\nExpires: never\r\nX-Empty:\r\nX-Sp:  a b \t\r\n\r\n", "hello");
    ACCEPT("0\r\nX-Obs: caf\xc3\xa9\r\n\r\n", "");

    /* What follows the final CRLF is not consumed. */
    decode("5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n");
    CHECK_INT(whole.r, CHUNKED_DONE);
    CHECK_INT(whole.consumed, strlen("5\r\nhello\r\n0\r\n\r\n"));
    CHECK_INT(whole.ndata, 5);
}

static void test_incomplete(void)
{
    decode("");
    CHECK_INT(whole.r, CHUNKED_MORE);
    CHECK_INT(whole.consumed, 0);
    decode("5\r\nhel");
    CHECK_INT(whole.r, CHUNKED_MORE);
    CHECK_INT(whole.consumed, 6);
    CHECK(whole.ndata == 3 && memcmp(whole.data, "hel", 3) == 0);
    decode("5\r\nhello\r\n0\r\nX: y\r\n");
    CHECK_INT(whole.r, CHUNKED_MORE);
    CHECK_INT(whole.ndata, 5);
    decode("5\r\nhello\r\n0\r\n\r");
    CHECK_INT(whole.r, CHUNKED_MORE);
    decode("ffffffffffffffff\r\nabc");
    CHECK_INT(whole.r, CHUNKED_MORE);
    CHECK_INT(whole.total, 3);
    decode("5;a=\"b");
    CHECK_INT(whole.r, CHUNKED_MORE);
    decode("00000000000000000"); /* 17 digits are wrong however it ends */
    CHECK_INT(whole.r, CHUNKED_ERROR);
}

static void test_api(void)
{
    struct chunked c;
    size_t used;
    struct span d;
    const char *why = NULL;
    const char *in = "5\r\nhello\r\n0\r\n\r\nX";
    size_t n = strlen(in);

    /* Data comes as a slice of the input; DONE never carries data. */
    chunked_init(&c);
    CHECK_INT(chunked_decode(&c, in, n, &used, &d, &why), CHUNKED_MORE);
    CHECK(d.p == in + 3 && d.n == 5);
    CHECK_INT(used, n - 2);
    CHECK_INT(chunked_decode(&c, in + used, n - used, &used, &d, &why), CHUNKED_DONE);
    CHECK_INT(used, 1);
    CHECK_INT(d.n, 0);
    CHECK_INT(c.total, 5);
    /* ... and stays done, consuming nothing. */
    CHECK_INT(chunked_decode(&c, "X", 1, &used, &d, &why), CHUNKED_DONE);
    CHECK_INT(used, 0);

    /* One data slice per call: a second chunk's data waits for the next. */
    const char *two = "2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n";
    chunked_init(&c);
    CHECK_INT(chunked_decode(&c, two, strlen(two), &used, &d, &why), CHUNKED_MORE);
    CHECK(d.n == 2 && memcmp(d.p, "ab", 2) == 0);
    CHECK_INT(used, 10);
    CHECK_INT(chunked_decode(&c, two + 10, strlen(two) - 10, &used, &d, &why), CHUNKED_MORE);
    CHECK(d.n == 2 && memcmp(d.p, "cd", 2) == 0);

    /* After an error, every call is an error. */
    chunked_init(&c);
    CHECK_INT(chunked_decode(&c, "x\r\n", 3, &used, &d, &why), CHUNKED_ERROR);
    CHECK_STR(why, "invalid chunk size");
    CHECK_INT(used, 1);
    why = NULL;
    CHECK_INT(chunked_decode(&c, "5\r\n", 3, &used, &d, &why), CHUNKED_ERROR);
    CHECK(why != NULL);
    CHECK_INT(used, 0);

    /* Empty input: nothing consumed, MORE. */
    chunked_init(&c);
    CHECK_INT(chunked_decode(&c, "", 0, &used, &d, &why), CHUNKED_MORE);
    CHECK_INT(used, 0);
    CHECK_INT(d.n, 0);
}

static void test_errors(void)
{
    /* chunk-size */
    REJECT_WHY("0x5\r\nhello\r\n0\r\n\r\n", "invalid chunk size");
    REJECT("_5\r\nhello\r\n0\r\n\r\n");
    REJECT(" 5\r\nhello\r\n0\r\n\r\n");
    REJECT("+5\r\nhello\r\n0\r\n\r\n");
    REJECT("-5\r\nhello\r\n0\r\n\r\n");
    REJECT("g\r\n");
    REJECT("\r\n");
    REJECT(";a\r\n");
    REJECT("5 \r\nhello\r\n0\r\n\r\n");
    REJECT("5\t\r\nhello\r\n0\r\n\r\n");
    REJECT("5 5\r\nhello\r\n0\r\n\r\n");
    REJECT("5.0\r\nhello\r\n0\r\n\r\n");
    REJECT_WHY("00000000000000005\r\nhello\r\n0\r\n\r\n", "chunk size too large");
    REJECT("10000000000000000\r\n");
    /* line endings */
    REJECT_WHY("5\nhello\r\n0\r\n\r\n", "bare LF in chunked body");
    REJECT_WHY("5\rhello\r\n0\r\n\r\n", "bare CR in chunked body");
    REJECT("5\r\r\nhello\r\n0\r\n\r\n");
    REJECT_WHY("5\r\nhello\n0\r\n\r\n", "missing CRLF after chunk data");
    REJECT("5\r\nhelloX\r\n0\r\n\r\n");
    REJECT("5\r\nhello\rX0\r\n\r\n");
    REJECT("5\r\nhello0\r\n\r\n");
    REJECT("0\r\n\n");
    REJECT("0\r\n\rX");
    REJECT("0\n\r\n");
    /* extensions */
    REJECT("5;\r\nhello\r\n0\r\n\r\n");
    REJECT("5; \r\nhello\r\n0\r\n\r\n");
    REJECT("5;=x\r\nhello\r\n0\r\n\r\n");
    REJECT("5;a=\r\nhello\r\n0\r\n\r\n");
    REJECT("5;a \r\nhello\r\n0\r\n\r\n");
    REJECT("5;a=b \r\nhello\r\n0\r\n\r\n");
    REJECT("5;a b\r\nhello\r\n0\r\n\r\n");
    REJECT("5;a=b c\r\nhello\r\n0\r\n\r\n");
    REJECT("5;a=b=c\r\nhello\r\n0\r\n\r\n");
    REJECT("5;a==b\r\nhello\r\n0\r\n\r\n");
    REJECT("5;a=\"x\"y\r\nhello\r\n0\r\n\r\n");
    REJECT("5;a=\"x\r\nhello\r\n0\r\n\r\n");
    REJECT("5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n");
    REJECT("5;a=\"\\\x01\"\r\nhello\r\n0\r\n\r\n");
    REJECT("5;a\x01\r\nhello\r\n0\r\n\r\n");
    REJECT("5;a=\x7f\r\nhello\r\n0\r\n\r\n");
    REJECT("5;a=b\nhello\r\n0\r\n\r\n");
    REJECT("5;a=(b)\r\nhello\r\n0\r\n\r\n");
    REJECT("5 x\r\nhello\r\n0\r\n\r\n");
    /* trailers */
    REJECT_WHY("0\r\nX : y\r\n\r\n", "whitespace between trailer field name and colon");
    REJECT_WHY("0\r\nX: a\r\n b\r\n\r\n", "obsolete line folding in trailer");
    REJECT_WHY("0\r\nNoColon\r\n\r\n", "trailer field line without colon");
    REJECT_WHY("0\r\n: v\r\n\r\n", "empty trailer field name");
    REJECT_WHY("0\r\nX(: v\r\n\r\n", "invalid character in trailer field name");
    REJECT_WHY("0\r\nX: a\x01\r\n\r\n", "invalid character in trailer field value");
    REJECT("0\r\nX: a\x7f\r\n\r\n");
    REJECT("0\r\nX: a\n\r\n");
    REJECT("0\r\nX: a\rb\r\n\r\n");
    REJECT("0\r\n\tX: a\r\n\r\n");
    static const char nul[] = "0\r\nX: a\0\r\n\r\n";
    decode_n(nul, sizeof nul - 1);
    CHECK_INT(whole.r, CHUNKED_ERROR);
}

static void test_limits(void)
{
    static char b[CHUNKED_MAX_TRAILER + 64];
    /* A size line of exactly CHUNKED_MAX_LINE bytes (CRLF included). */
    memcpy(b, "5;", 2);
    memset(b + 2, 'a', CHUNKED_MAX_LINE - 4);
    memcpy(b + CHUNKED_MAX_LINE - 2, "\r\nhello\r\n0\r\n\r\n", 14);
    run(b, CHUNKED_MAX_LINE + 12, CHUNKED_MAX_LINE + 12, 0, &whole);
    CHECK_INT(whole.r, CHUNKED_DONE);
    CHECK_INT(whole.ndata, 5);
    run(b, CHUNKED_MAX_LINE + 12, CHUNKED_MAX_LINE + 12, 1, &part);
    CHECK(same(&whole, &part));
    /* One byte more. */
    memset(b + 2, 'a', CHUNKED_MAX_LINE - 3);
    memcpy(b + CHUNKED_MAX_LINE - 1, "\r\nhello\r\n0\r\n\r\n", 14);
    run(b, CHUNKED_MAX_LINE + 13, CHUNKED_MAX_LINE + 13, 0, &whole);
    CHECK_INT(whole.r, CHUNKED_ERROR);
    CHECK_STR(whole.why, "chunk-size line too long");
    run(b, CHUNKED_MAX_LINE + 13, CHUNKED_MAX_LINE + 13, 1, &part);
    CHECK(same(&whole, &part));
    /* The limit is per line: many lines of half the limit are fine. */
    size_t n = 0;
    for (int i = 0; i < 4; i++) {
        memcpy(b + n, "1;", 2);
        memset(b + n + 2, 'e', CHUNKED_MAX_LINE / 2);
        n += 2 + CHUNKED_MAX_LINE / 2;
        memcpy(b + n, "\r\nx\r\n", 5);
        n += 5;
    }
    memcpy(b + n, "0\r\n\r\n", 5);
    n += 5;
    run(b, n, n, 0, &whole);
    CHECK_INT(whole.r, CHUNKED_DONE);
    CHECK(whole.ndata == 4 && memcmp(whole.data, "xxxx", 4) == 0);

    /* A trailer section of exactly CHUNKED_MAX_TRAILER bytes (the final
     * CRLF included), then one byte more. */
    memcpy(b, "0\r\nX: ", 6);
    memset(b + 6, 'v', CHUNKED_MAX_TRAILER - 3 - 4);
    memcpy(b + CHUNKED_MAX_TRAILER - 1, "\r\n\r\n", 4);
    run(b, CHUNKED_MAX_TRAILER + 3, CHUNKED_MAX_TRAILER + 3, 0, &whole);
    CHECK_INT(whole.r, CHUNKED_DONE);
    CHECK_INT(whole.consumed, CHUNKED_MAX_TRAILER + 3);
    memset(b + 6, 'v', CHUNKED_MAX_TRAILER - 3 - 3);
    memcpy(b + CHUNKED_MAX_TRAILER, "\r\n\r\n", 4);
    run(b, CHUNKED_MAX_TRAILER + 4, CHUNKED_MAX_TRAILER + 4, 0, &whole);
    CHECK_INT(whole.r, CHUNKED_ERROR);
    CHECK_STR(whole.why, "chunked trailer section too large");
    run(b, CHUNKED_MAX_TRAILER + 4, CHUNKED_MAX_TRAILER + 4, 1, &part);
    CHECK(same(&whole, &part));
}

int main(void)
{
    test_valid();
    test_incomplete();
    test_api();
    test_errors();
    test_limits();
    return unit_report();
}
