/* bench/stream_server.c: the server of bench/run's `stream` scenario, a
 * program embedding libverbd (include/verbd.h only).
 *
 *   bench-stream [ADDR [ERROR_LOG]]   default 127.0.0.1:0 (a free port) and
 *                                     stderr; prints
 *                                     "listening on http://ADDR/"
 *
 * GET /stream answers 1 MiB of application/octet-stream, produced by an
 * asynchronous C handler in 16 KiB pieces with no stated length, so the
 * body is sent chunked.  The handler keeps to the exchange's output bound:
 * it adds a piece and calls verbd_send() while that returns 1, and when it
 * returns 0 waits for verbd_on_writable() before producing more.  A slow
 * reader therefore costs the server at most about one bound of queued
 * output, however much of the body is left.
 *
 * Byte i of the body is (i * 7 + 3) % 251 (a period that does not divide
 * the piece size, so a piece sent twice or out of order shows): bench/run
 * checks every byte.
 */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "verbd.h"

enum { TOTAL = 1 << 20, PIECE = 16 << 10, PERIOD = 251 };

/* The pattern from any phase: a piece starting at offset o is
 * pattern + o % PERIOD. */
static unsigned char pattern[PIECE + PERIOD];

struct stream {
    size_t sent;  /* body bytes handed to the response so far */
};

/* Adds pieces until the body is complete (then finishes) or the output is
 * over its bound (then waits to be called again when it is writable). */
static void produce(struct verbd_exchange *x, void *arg)
{
    struct stream *s = arg;
    struct verbd_response *res = verbd_exchange_response(x);
    for (;;) {
        verbd_response_body(res, pattern + s->sent % PERIOD, PIECE);
        s->sent += PIECE;
        if (s->sent >= TOTAL) {
            verbd_finish(x);
            return;
        }
        if (!verbd_send(x)) {
            verbd_on_writable(x, produce, s);
            return;
        }
    }
}

static void start(void *data, struct verbd_exchange *x)
{
    (void)data;
    struct stream *s = verbd_alloc(x, sizeof *s);
    s->sent = 0;
    struct verbd_response *res = verbd_exchange_response(x);
    verbd_response_status(res, 200);
    verbd_response_header(res, "Content-Type", "application/octet-stream");
    produce(x, s);
}

int main(int argc, char **argv)
{
    const char *addr = argc > 1 ? argv[1] : "127.0.0.1:0";
    const char *error_log = argc > 2 ? argv[2] : "stderr";
    for (size_t i = 0; i < sizeof pattern; i++)
        pattern[i] = (unsigned char)((i * 7 + 3) % PERIOD);

    char err[256];
    struct verbd_server *srv = verbd_server_new();
    if (!srv)
        return 1;
    /* As bench/run starts verbd: one worker, no access log, room for many
     * connections, and nginx's 60 s for a new connection's head. */
    if (verbd_server_set(srv, "workers", "1", err, sizeof err) < 0 ||
        verbd_server_set(srv, "access_log", "off", err, sizeof err) < 0 ||
        verbd_server_set(srv, "error_log", error_log, err, sizeof err) < 0 ||
        verbd_server_set(srv, "max_connections", "20000", err, sizeof err) < 0 ||
        verbd_server_set(srv, "header_timeout", "60s", err, sizeof err) < 0 ||
        !verbd_server_map_async(srv, "= /stream", "GET", start, NULL, err, sizeof err) ||
        verbd_server_listen(srv, addr, err, sizeof err) < 0) {
        fprintf(stderr, "bench-stream: %s\n", err);
        verbd_server_free(srv);
        return 1;
    }
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    printf("bench-stream: listening on http://%s/\n", verbd_server_listener_name(srv, 0));
    fflush(stdout);
    int rc = verbd_server_run(srv);
    verbd_server_free(srv);
    return rc == 0 ? 0 : 1;
}
