/* libFuzzer harness for the HTTP/1 session (lib/engine/http1.c) over an
 * in-memory transport.  The input is what a client sends, cut into reads
 * at each 0xFF byte; its first byte sets how much the "socket" takes per
 * write (so output backs up) and whether the client vanishes at the end.
 * The server behind it has a static tree and asynchronous C handlers that
 * answer later (deferred), stream chunked pieces under backpressure, state
 * a length, and read bodies with pause and resume, so every path of the
 * session meets every kind of input.  Besides crashes, leaks and hangs it
 * checks that every session ends once its client has gone (closed, not
 * left waiting) and that the output starts like a response.
 *
 *   scripts/fuzz.sh 60 http1
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/loop.h"
#include "engine/http1.h"
#include "engine/site.h"
#include "route/route.h"

#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_http1: %s:%d: %s\n", __FILE__, __LINE__, #cond);                 \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* ---- the client side ---------------------------------------------------- */

static const uint8_t *in_p;
static size_t in_len, in_at, in_avail; /* bytes released to the reader */
static bool in_eof, in_reset;
static size_t out_room_per_turn, out_room, out_total;
static bool closed;
static char out_head[8];
static size_t out_head_len;

static ssize_t mem_read(struct transport *t, void *buf, size_t n)
{
    (void)t;
    if (in_reset) {
        errno = ECONNRESET;
        return -1;
    }
    size_t left = in_avail - in_at;
    if (!left) {
        if (in_eof && in_avail == in_len)
            return 0;
        errno = EAGAIN;
        return -1;
    }
    size_t k = left < n ? left : n;
    memcpy(buf, in_p + in_at, k);
    in_at += k;
    return (ssize_t)k;
}

static ssize_t mem_writev(struct transport *t, const struct iovec *iov, int cnt, bool more)
{
    (void)t, (void)more;
    size_t total = 0;
    for (int i = 0; i < cnt && out_room; i++) {
        size_t k = iov[i].iov_len < out_room ? iov[i].iov_len : out_room;
        for (size_t j = 0; j < k && out_head_len < sizeof out_head; j++)
            out_head[out_head_len++] = ((const char *)iov[i].iov_base)[j];
        out_room -= k;
        total += k;
    }
    if (!total && cnt) {
        errno = EAGAIN;
        return -1;
    }
    out_total += total;
    return (ssize_t)total;
}

static void mem_shutdown(struct transport *t)
{
    (void)t;
}
static void mem_close(struct transport *t)
{
    (void)t, closed = true;
}

static const struct transport_ops mem_ops = {
    .read = mem_read,
    .writev = mem_writev,
    .shutdown = mem_shutdown,
    .close = mem_close,
};

/* ---- the server side ------------------------------------------------------ */

static struct loop *loop;
static struct settings settings;
static struct site *site;
static struct listener lis;
static struct http1_host host;

/* /later: answers from a deferred call. */
static void later(struct verbd_exchange *x, void *arg)
{
    (void)arg;
    verbd_response_body(verbd_exchange_response(x), "later\n", 6);
    verbd_finish(x);
}

static void start_later(void *data, struct verbd_exchange *x)
{
    (void)data;
    verbd_defer(x, later, NULL);
}

/* /stream: 40 KiB in 4 KiB pieces, chunked, under backpressure. */
static void stream_more(struct verbd_exchange *x, void *arg)
{
    static const char piece[4096];
    unsigned *left = arg;
    while (*left) {
        (*left)--;
        verbd_response_body(verbd_exchange_response(x), piece, sizeof piece);
        if (!verbd_send(x)) {
            verbd_on_writable(x, stream_more, left);
            return;
        }
    }
    verbd_finish(x);
}

static void start_stream(void *data, struct verbd_exchange *x)
{
    (void)data;
    unsigned *left = verbd_alloc(x, sizeof *left);
    *left = 10;
    stream_more(x, left);
}

/* /short: states 100 bytes and writes 10. */
static void start_short(void *data, struct verbd_exchange *x)
{
    (void)data;
    struct verbd_response *res = verbd_exchange_response(x);
    verbd_response_length(res, 100);
    verbd_response_body(res, "0123456789", 10);
    verbd_finish(x);
}

/* /read: reads the body, pausing after each piece and resuming from a
 * deferred call; answers early on every third request. */
static unsigned reads;

static void resume(struct verbd_exchange *x, void *arg)
{
    (void)arg;
    verbd_read_resume(x);
}

static void read_data(struct verbd_exchange *x, const void *p, size_t n, void *arg)
{
    (void)p, (void)n, (void)arg;
    verbd_read_pause(x);
    verbd_defer(x, resume, NULL);
}

static void read_done(struct verbd_exchange *x, int status, void *arg)
{
    (void)arg;
    struct verbd_response *res = verbd_exchange_response(x);
    if (status)
        verbd_response_error(res, status, NULL);
    else
        verbd_response_body(res, "done\n", 5);
    verbd_finish(x);
}

static void start_read(void *data, struct verbd_exchange *x)
{
    (void)data;
    if (++reads % 3 == 0) {
        verbd_response_body(verbd_exchange_response(x), "early\n", 6);
        verbd_send(x);
    }
    verbd_read(x, read_data, read_done, NULL);
}

static void sync_handler(void *data, const struct verbd_request *req, struct verbd_response *res)
{
    (void)data;
    size_t n;
    verbd_request_body(req, &n);
    verbd_response_body(res, "sync\n", 5);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    log_open("off", LOG_ERROR, NULL, 0);
    clock_update();
    char dir[] = "/tmp/verbd-fuzz-http1-XXXXXX";
    REQUIRE(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/a.txt", dir);
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    for (int i = 0; i < 3000; i++)
        fputs("file body line\n", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/sub", dir);
    mkdir(path, 0755);

    loop = loop_new();
    REQUIRE(loop);
    settings_defaults(&settings);
    settings.max_body = 64 * 1024;
    site = site_new(NULL);
    char err[256];
    REQUIRE(route_add(&site->routes, "/", "static", dir, err, sizeof err));
    struct route_mapping *m = route_add(&site->routes, "/list/", "static", dir, err, sizeof err);
    REQUIRE(m && route_set(m, "listing", 1, (const char *[]){"on"}, err, sizeof err) == 0);
    REQUIRE(route_set(m, "trace", 1, (const char *[]){"on"}, err, sizeof err) == 0);
    REQUIRE(route_add_handler(&site->routes, "= /later", "GET", NULL, start_later, NULL, err,
                              sizeof err));
    REQUIRE(route_add_handler(&site->routes, "= /stream", "GET", NULL, start_stream, NULL, err,
                              sizeof err));
    REQUIRE(route_add_handler(&site->routes, "= /short", "GET", NULL, start_short, NULL, err,
                              sizeof err));
    REQUIRE(route_add_handler(&site->routes, "/read", "PUT POST", NULL, start_read, NULL, err,
                              sizeof err));
    REQUIRE(route_add_handler(&site->routes, "/sync", "POST BREW", sync_handler, NULL, NULL, err,
                              sizeof err));
    free(settings.access_log);
    settings.access_log = strdup("off");
    REQUIRE(site_settle(site, &settings, err, sizeof err) == 0);
    lis = (struct listener){.fd = -1, .sites = &site, .nsites = 1};
    REQUIRE(http1_host_init(&host, loop, &settings) == 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    in_p = data + 1;
    in_len = size - 1;
    in_at = in_avail = 0;
    in_eof = in_reset = false;
    closed = false;
    out_total = out_head_len = 0;
    out_room_per_turn = (mode & 3) == 0 ? 7 : (mode & 3) == 1 ? 1000 : SIZE_MAX;
    out_room = out_room_per_turn;

    struct transport t = {&mem_ops, -1};
    struct http1 *c = http1_open(&host, &t, false, &lis, NULL, NULL, 0);
    REQUIRE(c);
    /* Release the input piece by piece (at each 0xFF), letting the loop
     * turn in between; the socket takes little at first, then all. */
    int turns = 0;
    while (!closed && turns < 100000) {
        if (in_avail < in_len) {
            const uint8_t *cut = memchr(in_p + in_avail, 0xFF, in_len - in_avail);
            in_avail = cut ? (size_t)(cut - in_p) + 1 : in_len;
        } else if (!in_eof && !in_reset) {
            in_eof = !(mode & 4);
            in_reset = mode & 4;
        }
        out_room = turns < 100 ? out_room_per_turn : SIZE_MAX;
        http1_ready(c);
        if (closed)
            break;
        loop_run_once(loop, 0);
        turns++;
    }
    if (out_head_len >= 5)
        REQUIRE(memcmp(out_head, "HTTP/", 5) == 0);
    /* A client that went away, once everything is answered, leaves no
     * session behind. */
    REQUIRE(closed);
    while (loop_run_once(loop, 0) > 0)
        ;
    return 0;
}
