/* stream: handlers that answer at their own pace, without blocking the
 * worker that runs them.
 *   GET /tick?n=N&ms=MS   N lines "tick I", one every MS milliseconds, as a
 *                         chunked response of unknown length (default 5, 100)
 *   PUT /upload?ms=MS     reads the body one piece at a time, pausing MS
 *                         milliseconds after each (default 0), and answers
 *                         with its length and FNV-1a hash
 *   POST /early           answers "started" before reading the body, then
 *                         reports its length: a response while the body
 *                         still arrives
 *   GET /bytes?n=N        N bytes of 'x' in 16 KiB pieces, produced only
 *                         as fast as the client takes them
 * Usage: stream [ADDR:PORT]   (default 127.0.0.1:8080; port 0 picks one) */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "verbd.h"

/* The value of NAME=VALUE in the query as a number, or `dflt`. */
static long query_number(const struct verbd_request *req, const char *name, long dflt)
{
    size_t len, n = strlen(name);
    const char *q = verbd_request_query(req, &len);
    if (!q)
        return dflt;
    for (const char *p = q, *end = q + len; p < end;) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if ((size_t)(stop - p) > n && memcmp(p, name, n) == 0 && p[n] == '=')
            return strtol(p + n + 1, NULL, 10);
        p = stop + 1;
    }
    return dflt;
}

/* ---- /tick: a timer drives the response ----------------------------------- */

struct ticker {
    long left, count;
    struct verbd_timer *timer;
};

static void tick(struct verbd_exchange *x, void *arg)
{
    struct ticker *t = arg;
    struct verbd_response *res = verbd_exchange_response(x);
    char line[32];
    int n = snprintf(line, sizeof line, "tick %ld\n", ++t->count);
    verbd_response_body(res, line, (size_t)n);
    verbd_send(x);
    if (--t->left == 0) {
        verbd_timer_cancel(t->timer);
        verbd_finish(x);
    }
}

static void start_tick(void *data, struct verbd_exchange *x)
{
    (void)data;
    const struct verbd_request *req = verbd_exchange_request(x);
    struct verbd_response *res = verbd_exchange_response(x);
    long n = query_number(req, "n", 5), ms = query_number(req, "ms", 100);
    if (n < 1 || n > 100000 || ms < 0 || ms > 60000) {
        verbd_response_error(res, 400, "n is 1 to 100000, ms 0 to 60000.");
        verbd_finish(x);
        return;
    }
    verbd_response_header(res, "Content-Type", "text/plain; charset=utf-8");
    /* The head goes now, framed as chunked: the length is not known. */
    verbd_send(x);
    if (verbd_request_is_head(req)) {
        verbd_finish(x);
        return;
    }
    struct ticker *t = verbd_alloc(x, sizeof *t);
    *t = (struct ticker){n, 0, NULL};
    t->timer = verbd_timer(x, (uint64_t)ms, (uint64_t)(ms ? ms : 1), tick, t);
}

/* ---- /bytes: as fast as the client reads, and no faster ---------------------- */

struct bytes {
    uint64_t left;
};

static void more_bytes(struct verbd_exchange *x, void *arg)
{
    static char piece[16384];
    if (!piece[0])
        memset(piece, 'x', sizeof piece);
    struct bytes *b = arg;
    struct verbd_response *res = verbd_exchange_response(x);
    while (b->left) {
        size_t n = b->left < sizeof piece ? (size_t)b->left : sizeof piece;
        verbd_response_body(res, piece, n);
        b->left -= n;
        if (!verbd_send(x)) {
            /* Over the exchange's bound: wait until the client took it. */
            verbd_on_writable(x, more_bytes, b);
            return;
        }
    }
    verbd_finish(x);
}

static void start_bytes(void *data, struct verbd_exchange *x)
{
    (void)data;
    long n = query_number(verbd_exchange_request(x), "n", 1 << 20);
    struct verbd_response *res = verbd_exchange_response(x);
    if (n < 0) {
        verbd_response_error(res, 400, "n is a byte count.");
        verbd_finish(x);
        return;
    }
    verbd_response_header(res, "Content-Type", "application/octet-stream");
    verbd_response_length(res, (uint64_t)n);
    struct bytes *b = verbd_alloc(x, sizeof *b);
    b->left = verbd_request_is_head(verbd_exchange_request(x)) ? 0 : (uint64_t)n;
    more_bytes(x, b);
}

/* ---- /upload: the body at the handler's pace ---------------------------------- */

struct upload {
    uint64_t length;
    uint64_t hash;
    long pause_ms;
};

static void resume(struct verbd_exchange *x, void *arg)
{
    (void)arg;
    verbd_read_resume(x);
}

static void upload_data(struct verbd_exchange *x, const void *p, size_t n, void *arg)
{
    struct upload *u = arg;
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        u->hash = (u->hash ^ b[i]) * 0x100000001b3ull;
    u->length += n;
    if (u->pause_ms) {
        verbd_read_pause(x);
        verbd_timer(x, (uint64_t)u->pause_ms, 0, resume, NULL);
    }
}

static void upload_done(struct verbd_exchange *x, int status, void *arg)
{
    struct upload *u = arg;
    struct verbd_response *res = verbd_exchange_response(x);
    if (status) {
        verbd_response_error(res, status, "The body did not arrive whole.");
    } else {
        char text[64];
        int n = snprintf(text, sizeof text, "%" PRIu64 " bytes, fnv1a %016" PRIx64 "\n", u->length,
                         u->hash);
        verbd_response_header(res, "Content-Type", "text/plain; charset=utf-8");
        verbd_response_body(res, text, (size_t)n);
    }
    verbd_finish(x);
}

static void start_upload(void *data, struct verbd_exchange *x)
{
    (void)data;
    struct upload *u = verbd_alloc(x, sizeof *u);
    *u =
        (struct upload){0, 0xcbf29ce484222325ull, query_number(verbd_exchange_request(x), "ms", 0)};
    verbd_read(x, upload_data, upload_done, u);
}

/* ---- /early: the answer starts before the body is in ------------------------------ */

static void early_data(struct verbd_exchange *x, const void *p, size_t n, void *arg)
{
    (void)x, (void)p;
    *(uint64_t *)arg += n;
}

static void early_done(struct verbd_exchange *x, int status, void *arg)
{
    char text[64];
    int n = status ? snprintf(text, sizeof text, "failed: %d\n", status)
                   : snprintf(text, sizeof text, "received %" PRIu64 " bytes\n", *(uint64_t *)arg);
    verbd_response_body(verbd_exchange_response(x), text, (size_t)n);
    verbd_finish(x);
}

static void start_early(void *data, struct verbd_exchange *x)
{
    (void)data;
    struct verbd_response *res = verbd_exchange_response(x);
    verbd_response_header(res, "Content-Type", "text/plain; charset=utf-8");
    verbd_response_body(res, "started\n", 8);
    verbd_send(x);
    uint64_t *count = verbd_alloc(x, sizeof *count);
    *count = 0;
    verbd_read(x, early_data, early_done, count);
}

int main(int argc, char **argv)
{
    const char *addr = argc > 1 ? argv[1] : "127.0.0.1:8080";
    char err[256];
    struct verbd_server *srv = verbd_server_new();
    if (!srv || verbd_server_listen(srv, addr, err, sizeof err) < 0 ||
        verbd_server_set(srv, "workers", "1", err, sizeof err) < 0 ||
        verbd_server_set(srv, "max_body", "1g", err, sizeof err) < 0 ||
        !verbd_server_map_async(srv, "= /tick", "GET", start_tick, NULL, err, sizeof err) ||
        !verbd_server_map_async(srv, "= /upload", "PUT", start_upload, NULL, err, sizeof err) ||
        !verbd_server_map_async(srv, "= /early", "POST", start_early, NULL, err, sizeof err) ||
        !verbd_server_map_async(srv, "= /bytes", "GET", start_bytes, NULL, err, sizeof err)) {
        fprintf(stderr, "stream: %s\n", srv ? err : "out of memory");
        verbd_server_free(srv);
        return 1;
    }
    printf("stream: listening on http://%s/\n", verbd_server_listener_name(srv, 0));
    fflush(stdout);
    int rc = verbd_server_run(srv);
    verbd_server_free(srv);
    return rc == 0 ? 0 : 1;
}
