/* Unit tests for Accept-Encoding (lib/http/coding.c) and for the compress
 * filter on a C handler that streams under backpressure, driven over an
 * in-memory transport as in test_http1.c: the body is decoded with zlib
 * and compared, and the handler never runs far ahead of the client. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/loop.h"
#include "engine/http1.h"
#include "engine/site.h"
#include "http/coding.h"
#include "route/route.h"
#include "unit.h"

/* ---- Accept-Encoding ----------------------------------------------------------------------- */

#define BOTH (1u << CODING_GZIP | 1u << CODING_BR)
#define GZIP_ONLY (1u << CODING_GZIP)

static enum http_coding choose(const char *value, unsigned offered)
{
    struct accept_encoding ae;
    accept_encoding_init(&ae);
    if (value)
        accept_encoding_add(&ae, value, strlen(value));
    return accept_encoding_choose(&ae, offered);
}

static int weight(const char *value, enum http_coding c)
{
    struct accept_encoding ae;
    accept_encoding_init(&ae);
    accept_encoding_add(&ae, value, strlen(value));
    return accept_encoding_weight(&ae, c);
}

static void test_accept_encoding(void)
{
    CHECK_INT(choose(NULL, BOTH), CODING_IDENTITY);
    CHECK_INT(choose("", BOTH), CODING_IDENTITY);
    CHECK_INT(choose("gzip", BOTH), CODING_GZIP);
    CHECK_INT(choose("gzip, br", BOTH), CODING_BR);
    CHECK_INT(choose("br, gzip", GZIP_ONLY), CODING_GZIP);
    CHECK_INT(choose("br", GZIP_ONLY), CODING_IDENTITY);
    CHECK_INT(choose("gzip;q=1, br;q=0.9", BOTH), CODING_GZIP);
    CHECK_INT(choose("gzip;q=0", BOTH), CODING_IDENTITY);
    CHECK_INT(choose("gzip;q=0.000, br", BOTH), CODING_BR);
    CHECK_INT(choose("*", BOTH), CODING_BR);
    CHECK_INT(choose("*;q=0", BOTH), CODING_IDENTITY);
    CHECK_INT(choose("*;q=0, gzip", BOTH), CODING_GZIP);
    CHECK_INT(choose("identity;q=0", BOTH), CODING_IDENTITY);
    CHECK_INT(choose("identity;q=0, gzip;q=0.1", BOTH), CODING_GZIP);
    CHECK_INT(choose("gzip;q=0.5, identity", BOTH), CODING_IDENTITY);
    CHECK_INT(choose("gzip;q=0.5", BOTH), CODING_GZIP);
    CHECK_INT(choose("gzip;q=0.5, *;q=0.6", GZIP_ONLY), CODING_IDENTITY);
    CHECK_INT(choose("X-GZIP", BOTH), CODING_GZIP);
    CHECK_INT(choose(" , ,gzip ,", BOTH), CODING_GZIP);
    CHECK_INT(choose("gzip ; q=0.5 ; level=3", BOTH), CODING_GZIP);
    CHECK_INT(choose("gzip;q=1.5", BOTH), CODING_IDENTITY);    /* not a qvalue */
    CHECK_INT(choose("gzip;q=0.1234", BOTH), CODING_IDENTITY); /* four digits */
    CHECK_INT(choose("gzip;q=", BOTH), CODING_IDENTITY);
    CHECK_INT(choose("gzip;q", BOTH), CODING_IDENTITY);
    CHECK_INT(choose("gzip garbage, br", BOTH), CODING_BR);
    CHECK_INT(choose("gzip;q=0, gzip", BOTH), CODING_IDENTITY); /* the first counts */
    CHECK_INT(choose("brotli, gzipx", BOTH), CODING_IDENTITY);
    CHECK_INT(choose("gzip", 0), CODING_IDENTITY);

    CHECK_INT(weight("gzip;q=0.5", CODING_GZIP), 500);
    CHECK_INT(weight("gzip;Q=1.000", CODING_GZIP), 1000);
    CHECK_INT(weight("gzip;q=0.05", CODING_GZIP), 50);
    CHECK_INT(weight("gzip;q=0.005", CODING_GZIP), 5);
    CHECK_INT(weight("gzip", CODING_BR), 0);
    CHECK_INT(weight("gzip", CODING_IDENTITY), 1000);
    CHECK_INT(weight("*;q=0.3", CODING_BR), 300);
    CHECK_INT(weight("*;q=0.3", CODING_IDENTITY), 300);
    CHECK_INT(weight("identity;q=0, *", CODING_IDENTITY), 0);

    /* Several fields add up. */
    struct accept_encoding ae;
    accept_encoding_init(&ae);
    accept_encoding_add(&ae, "gzip;q=0", 8);
    accept_encoding_add(&ae, "br", 2);
    CHECK_INT(accept_encoding_choose(&ae, BOTH), CODING_BR);
    CHECK_STR(http_coding_name(CODING_BR), "br");
    CHECK_STR(http_coding_name(CODING_GZIP), "gzip");
}

/* ---- the filter on a C handler over an in-memory transport ---------------------------------- */

struct mem_transport {
    struct transport t;
    struct buf in;
    size_t in_at;
    struct buf out;
    size_t out_room;
    bool closed;
};

static struct mem_transport mt;

static ssize_t mem_read(struct transport *t, void *buf, size_t n)
{
    (void)t;
    size_t left = mt.in.len - mt.in_at;
    if (!left) {
        errno = EAGAIN;
        return -1;
    }
    size_t k = left < n ? left : n;
    memcpy(buf, mt.in.p + mt.in_at, k);
    mt.in_at += k;
    return (ssize_t)k;
}

static ssize_t mem_writev(struct transport *t, const struct iovec *iov, int cnt, bool more)
{
    (void)t, (void)more;
    size_t total = 0;
    for (int i = 0; i < cnt && mt.out_room; i++) {
        size_t k = iov[i].iov_len < mt.out_room ? iov[i].iov_len : mt.out_room;
        buf_append(&mt.out, iov[i].iov_base, k);
        mt.out_room -= k;
        total += k;
    }
    if (!total && cnt) {
        errno = EAGAIN;
        return -1;
    }
    return (ssize_t)total;
}

static void mem_shutdown(struct transport *t)
{
    (void)t;
}

static void mem_close(struct transport *t)
{
    (void)t, mt.closed = true;
}

static const struct transport_ops mem_ops = {
    .read = mem_read,
    .writev = mem_writev,
    .shutdown = mem_shutdown,
    .close = mem_close,
};

static struct loop *loop;
static struct settings settings;
static struct site *site;
static struct listener lis;
static struct http1_host host;
static struct http1 *conn;

/* GET /text: 4 MiB of random letters in 16 KiB pieces, only while verbd_send says
 * so; it notes how far it ran ahead of what the client took. */
#define TEXT_TOTAL (4u << 20)
#define SAMPLES 4096
static uint64_t produced;
/* (text produced, bytes the client took) each time the handler waits. */
static uint64_t sample_text[SAMPLES], sample_out[SAMPLES];
static size_t nsamples;

static void text_piece(char *p, size_t n, uint64_t at)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t k = at + i;
        uint64_t h = (k + 1) * 0x9e3779b97f4a7c15u;
        h ^= h >> 29;
        p[i] = (char)(k % 61 == 60 ? '\n' : 'a' + (char)(h % 26));
    }
}

static void text_more(struct verbd_exchange *x, void *arg)
{
    (void)arg;
    static char piece[16384];
    struct verbd_response *res = verbd_exchange_response(x);
    for (;;) {
        if (produced == TEXT_TOTAL) {
            verbd_finish(x);
            return;
        }
        text_piece(piece, sizeof piece, produced);
        verbd_response_body(res, piece, sizeof piece);
        produced += sizeof piece;
        if (!verbd_send(x)) {
            if (nsamples < SAMPLES) {
                sample_text[nsamples] = produced;
                sample_out[nsamples++] = mt.out.len;
            }
            verbd_on_writable(x, text_more, NULL);
            return;
        }
    }
}

static void start_text(void *data, struct verbd_exchange *x)
{
    (void)data;
    verbd_response_header(verbd_exchange_response(x), "Content-Type", "text/plain");
    text_more(x, NULL);
}

/* GET /lent: 8 pieces of 1 MiB lent to the response, each sent while
 * verbd_send says so: the filter must hold one back until its output
 * drains, not take them all. */
#define LENT_PIECES 8
static char *lent_text;
static int lent_sent, lent_out, lent_max_out;

static void lent_released(void *ctx)
{
    (void)ctx;
    lent_out--;
}

static void lent_more(struct verbd_exchange *x, void *arg)
{
    (void)arg;
    struct verbd_response *res = verbd_exchange_response(x);
    for (;;) {
        if (lent_sent == LENT_PIECES) {
            verbd_finish(x);
            return;
        }
        verbd_response_body_shared(res, lent_text + (size_t)lent_sent * (1u << 20), 1u << 20,
                                   lent_released, NULL);
        lent_sent++;
        if (++lent_out > lent_max_out)
            lent_max_out = lent_out;
        if (!verbd_send(x)) {
            verbd_on_writable(x, lent_more, NULL);
            return;
        }
    }
}

static void start_lent(void *data, struct verbd_exchange *x)
{
    (void)data;
    verbd_response_header(verbd_exchange_response(x), "Content-Type", "text/plain");
    lent_more(x, NULL);
}

static void setup(void)
{
    clock_update();
    loop = loop_new();
    settings_defaults(&settings);
    site = site_new(NULL);
    char err[256];
    struct route_mapping *m =
        route_add_handler(&site->routes, "= /text", "GET", NULL, start_text, NULL, err, sizeof err);
    struct route_mapping *l =
        route_add_handler(&site->routes, "= /lent", "GET", NULL, start_lent, NULL, err, sizeof err);
    const char *on[] = {"on"}, *types[] = {"text/plain"}, *level[] = {"6"};
    struct route_mapping *maps[] = {m, l};
    for (size_t i = 0; i < 2; i++)
        if (!maps[i] || route_set(maps[i], "gzip", 1, on, err, sizeof err) < 0 ||
            route_set(maps[i], "gzip_types", 1, types, err, sizeof err) < 0 ||
            route_set(maps[i], "gzip_comp_level", 1, level, err, sizeof err) < 0)
            printf("setup: %s\n", err);
    free(settings.access_log);
    settings.access_log = strdup("off");
    if (site_settle(site, &settings, err, sizeof err) < 0)
        abort();
    lis = (struct listener){.fd = -1, .sites = &site, .nsites = 1};
    if (http1_host_init(&host, loop, &settings) < 0)
        abort();
}

static void spin(int ms)
{
    clock_update();
    uint64_t until = clock_ms() + (uint64_t)ms;
    do
        loop_run_once(loop, 5);
    while (clock_ms() < until);
}

/* The body of a chunked response at mt.out, de-chunked; NULL if it does
 * not parse. */
static char *dechunk(size_t *len)
{
    const char *p = memmem(mt.out.p, mt.out.len, "\r\n\r\n", 4);
    if (!p)
        return NULL;
    p += 4;
    const char *end = mt.out.p + mt.out.len;
    struct buf body = {0};
    for (;;) {
        char *eol;
        unsigned long n = strtoul(p, &eol, 16);
        if (eol + 2 > end || eol[0] != '\r')
            break;
        p = eol + 2;
        if (n == 0) {
            *len = body.len;
            return body.p;
        }
        if (p + n + 2 > end)
            break;
        buf_append(&body, p, n);
        p += n + 2;
    }
    buf_free(&body);
    return NULL;
}

static void test_streamed_handler(void)
{
    memset(&mt, 0, sizeof mt);
    mt.t.ops = &mem_ops;
    mt.t.fd = -1;
    mt.out_room = 4096;
    const char *req = "GET /text HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n";
    buf_append(&mt.in, req, strlen(req));
    conn = http1_open(&host, &mt.t, false, &lis, NULL, NULL, 0);
    spin(5);
    /* The client took 4 KiB: the handler and the filter stopped at the bound. */
    CHECK(produced < 512 * 1024);
    for (int i = 0; i < 20000 && !memmem(mt.out.p, mt.out.len, "\r\n0\r\n\r\n", 7); i++) {
        mt.out_room = 8192;
        http1_ready(conn);
        spin(0);
    }
    CHECK_INT(produced, TEXT_TOTAL);
    CHECK(memmem(mt.out.p, mt.out.len, "Content-Encoding: gzip\r\n", 24) != NULL);
    CHECK(memmem(mt.out.p, mt.out.len, "Vary: Accept-Encoding\r\n", 23) != NULL);
    /* Whenever the handler was told to wait, it was ahead of what the
     * client had taken (in text, at the stream's ratio) by about the
     * session's bound and the piece the filter holds, never by more. */
    double ratio = (double)mt.out.len / TEXT_TOTAL, ahead = 0;
    for (size_t i = 0; i < nsamples; i++)
        if (sample_text[i] - sample_out[i] / ratio > ahead)
            ahead = sample_text[i] - sample_out[i] / ratio;
    CHECK(nsamples > 10);
    CHECK(ratio > 0.5 && ratio < 0.8);
    CHECK(ahead < 256 * 1024);
    size_t n = 0;
    char *z = dechunk(&n);
    CHECK(z != NULL);
    if (z) {
        char *text = malloc(TEXT_TOTAL), *want = malloc(TEXT_TOTAL);
        uLongf got = TEXT_TOTAL;
        z_stream s = {0};
        inflateInit2(&s, 15 + 16);
        s.next_in = (Bytef *)z;
        s.avail_in = (uInt)n;
        s.next_out = (Bytef *)text;
        s.avail_out = (uInt)got;
        CHECK_INT(inflate(&s, Z_FINISH), Z_STREAM_END);
        CHECK_INT(s.total_out, TEXT_TOTAL);
        inflateEnd(&s);
        text_piece(want, TEXT_TOTAL, 0);
        CHECK(memcmp(text, want, TEXT_TOTAL) == 0);
        free(text);
        free(want);
        free(z);
    }
    if (!mt.closed)
        http1_close(conn);
}

static void test_lent_pieces_held_back(void)
{
    lent_text = malloc((size_t)LENT_PIECES << 20);
    text_piece(lent_text, (size_t)LENT_PIECES << 20, 0);
    buf_free(&mt.in);
    buf_free(&mt.out);
    memset(&mt, 0, sizeof mt);
    mt.t.ops = &mem_ops;
    mt.t.fd = -1;
    mt.out_room = 4096;
    const char *req = "GET /lent HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n";
    buf_append(&mt.in, req, strlen(req));
    conn = http1_open(&host, &mt.t, false, &lis, NULL, NULL, 0);
    spin(5);
    CHECK_INT(lent_sent, 1); /* the first piece is more than one window */
    for (int i = 0; i < 50000 && !memmem(mt.out.p, mt.out.len, "\r\n0\r\n\r\n", 7); i++) {
        mt.out_room = 65536;
        http1_ready(conn);
        spin(0);
    }
    CHECK_INT(lent_sent, LENT_PIECES);
    CHECK_INT(lent_out, 0);   /* every piece given back */
    CHECK(lent_max_out <= 2); /* never more than the one being compressed (and the next) */
    size_t n = 0;
    char *z = dechunk(&n);
    CHECK(z != NULL);
    if (z) {
        size_t total = (size_t)LENT_PIECES << 20;
        char *text = malloc(total);
        z_stream zs = {0};
        inflateInit2(&zs, 15 + 16);
        zs.next_in = (Bytef *)z;
        zs.avail_in = (uInt)n;
        zs.next_out = (Bytef *)text;
        zs.avail_out = (uInt)total;
        CHECK_INT(inflate(&zs, Z_FINISH), Z_STREAM_END);
        CHECK_INT(zs.total_out, total);
        CHECK(memcmp(text, lent_text, total) == 0);
        inflateEnd(&zs);
        free(text);
        free(z);
    }
    if (!mt.closed)
        http1_close(conn);
    free(lent_text);
}

int main(void)
{
    log_open("off", LOG_ERROR, NULL, 0);
    test_accept_encoding();
    setup();
    test_streamed_handler();
    test_lent_pieces_held_back();
    http1_host_free(&host);
    site_free(site);
    settings_free(&settings);
    loop_free(loop);
    buf_free(&mt.in);
    buf_free(&mt.out);
    return unit_report();
}
