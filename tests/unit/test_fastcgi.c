/* Unit tests for the FastCGI records (lib/mod/fastcgi/record.c): what
 * verbd writes, byte for byte, and what it reads back. */
#include <stdint.h>
#include <stdlib.h>

#include "mod/fastcgi/record.h"
#include "unit.h"

static void test_begin_and_abort(void)
{
    struct buf b = {0};
    fcgi_begin_request(&b, 1, true);
    static const uint8_t begin[] = {1, 1, 0, 1, 0, 8, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0};
    CHECK_INT(b.len, sizeof begin);
    CHECK(memcmp(b.p, begin, sizeof begin) == 0);
    buf_reset(&b);
    fcgi_begin_request(&b, 7, false);
    CHECK_INT((uint8_t)b.p[3], 7);
    CHECK_INT((uint8_t)b.p[10], 0); /* no FCGI_KEEP_CONN */
    buf_reset(&b);
    fcgi_abort_request(&b, 1);
    static const uint8_t abort_rec[] = {1, 2, 0, 1, 0, 0, 0, 0};
    CHECK_INT(b.len, sizeof abort_rec);
    CHECK(memcmp(b.p, abort_rec, sizeof abort_rec) == 0);
    buf_free(&b);
}

static void test_stream_splits_and_pads(void)
{
    struct buf b = {0};
    size_t n = 70000;
    char *data = malloc(n);
    memset(data, 'x', n);
    fcgi_stream(&b, FCGI_STDIN, 1, data, n);
    /* 65535 bytes (padding 1), then 4465 (padding 7). */
    CHECK_INT((uint8_t)b.p[1], FCGI_STDIN);
    CHECK_INT(((uint8_t)b.p[4] << 8) | (uint8_t)b.p[5], 65535);
    CHECK_INT((uint8_t)b.p[6], 1);
    size_t second = 8 + 65535 + 1;
    CHECK_INT(((uint8_t)b.p[second + 4] << 8) | (uint8_t)b.p[second + 5], 4465);
    CHECK_INT((uint8_t)b.p[second + 6], 7);
    CHECK_INT(b.len, second + 8 + 4465 + 7);
    buf_reset(&b);
    fcgi_stream(&b, FCGI_PARAMS, 1, NULL, 0); /* the stream's end */
    static const uint8_t end[] = {1, 4, 0, 1, 0, 0, 0, 0};
    CHECK_INT(b.len, sizeof end);
    CHECK(memcmp(b.p, end, sizeof end) == 0);
    free(data);
    buf_free(&b);
}

static void test_param_lengths(void)
{
    struct buf b = {0};
    fcgi_param(&b, "A", 1, "bc", 2);
    static const uint8_t short_pair[] = {1, 2, 'A', 'b', 'c'};
    CHECK_INT(b.len, sizeof short_pair);
    CHECK(memcmp(b.p, short_pair, sizeof short_pair) == 0);
    buf_reset(&b);
    char value[300];
    memset(value, 'v', sizeof value);
    fcgi_param(&b, "N", 1, value, sizeof value);
    /* A length over 127 takes four bytes with the high bit set. */
    static const uint8_t long_head[] = {1, 0x80, 0, 1, 44};
    CHECK(memcmp(b.p, long_head, sizeof long_head) == 0);
    CHECK_INT(b.len, 5 + 1 + 300);
    buf_free(&b);
}

static void test_read_events(void)
{
    /* STDOUT "hi" (padding 6), STDERR "e", empty STDOUT, END status 3. */
    static const uint8_t in[] = {1, 6, 0, 1, 0, 2, 6, 0,   'h', 'i', 0, 0, 0, 0, 0, 0, 1,
                                 7, 0, 1, 0, 1, 0, 0, 'e', 1,   6,   0, 1, 0, 0, 0, 0, 1,
                                 3, 0, 1, 0, 8, 0, 0, 0,   0,   0,   3, 0, 0, 0, 0};
    struct fcgi_reader r = {0};
    struct fcgi_out o;
    size_t used, at = 0;
    CHECK_INT(fcgi_read(&r, 1, (const char *)in, sizeof in, &used, &o), FCGI_OUTPUT);
    CHECK_INT(o.type, FCGI_STDOUT);
    CHECK_INT(o.len, 2);
    CHECK(memcmp(o.p, "hi", 2) == 0);
    at += used;
    CHECK_INT(fcgi_read(&r, 1, (const char *)in + at, sizeof in - at, &used, &o), FCGI_OUTPUT);
    CHECK_INT(o.type, FCGI_STDERR);
    CHECK_INT(o.len, 1);
    at += used;
    CHECK_INT(fcgi_read(&r, 1, (const char *)in + at, sizeof in - at, &used, &o), FCGI_OUTPUT);
    CHECK_INT(o.len, 0); /* STDOUT's end */
    at += used;
    CHECK_INT(fcgi_read(&r, 1, (const char *)in + at, sizeof in - at, &used, &o), FCGI_END);
    CHECK_INT(o.app_status, 3);
    CHECK_INT(at + used, sizeof in);
}

static void test_read_refuses(void)
{
    struct fcgi_reader r = {0};
    struct fcgi_out o;
    size_t used;
    static const uint8_t version2[] = {2, 6, 0, 1, 0, 0, 0, 0};
    CHECK_INT(fcgi_read(&r, 1, (const char *)version2, sizeof version2, &used, &o), FCGI_ERROR);
    struct fcgi_reader r2 = {0};
    static const uint8_t other[] = {1, 6, 0, 2, 0, 0, 0, 0};
    CHECK_INT(fcgi_read(&r2, 1, (const char *)other, sizeof other, &used, &o), FCGI_ERROR);
    struct fcgi_reader r3 = {0};
    static const uint8_t params[] = {1, 4, 0, 1, 0, 0, 0, 0};
    CHECK_INT(fcgi_read(&r3, 1, (const char *)params, sizeof params, &used, &o), FCGI_ERROR);
    struct fcgi_reader r4 = {0};
    static const uint8_t short_end[] = {1, 3, 0, 1, 0, 4, 0, 0, 0, 0, 0, 0};
    CHECK_INT(fcgi_read(&r4, 1, (const char *)short_end, sizeof short_end, &used, &o), FCGI_ERROR);
}

int main(void)
{
    test_begin_and_abort();
    test_stream_splits_and_pads();
    test_param_lengths();
    test_read_events();
    test_read_refuses();
    return unit_report();
}
