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
 * GET /stats answers the handler's counters as "name value" lines: streams
 * started, finished (the whole body handed to verbd), active (exchanges not
 * yet ended), waiting (held back by the bound right now), peak_waiting, and
 * waits (how often verbd_send() said wait), so that bench/run can tell that
 * the bound, not the kernel's socket buffers, held the readers back.
 *
 * Byte i of the body is (i * 7 + 3) % 251 (a period that does not divide
 * the piece size, so a piece sent twice or out of order shows): bench/run
 * checks every byte.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "verbd.h"

enum { TOTAL = 1 << 20, PIECE = 16 << 10, PERIOD = 251 };

/* The pattern from any phase: a piece starting at offset o is
 * pattern + o % PERIOD. */
static unsigned char pattern[PIECE + PERIOD];

struct stream {
    size_t sent;  /* body bytes handed to the response so far */
    bool waiting; /* verbd_send() said wait; produce() not called again yet */
};

/* One worker, one thread: plain counters. */
static uint64_t n_started, n_finished, n_active, n_waiting, n_peak_waiting, n_waits;

static void stop_waiting(struct stream *s)
{
    if (s->waiting) {
        s->waiting = false;
        n_waiting--;
    }
}

static void ended(void *arg)
{
    stop_waiting(arg);
    n_active--;
}

/* Adds pieces until the body is complete (then finishes) or the output is
 * over its bound (then waits to be called again when it is writable). */
static void produce(struct verbd_exchange *x, void *arg)
{
    struct stream *s = arg;
    struct verbd_response *res = verbd_exchange_response(x);
    stop_waiting(s);
    for (;;) {
        verbd_response_body(res, pattern + s->sent % PERIOD, PIECE);
        s->sent += PIECE;
        if (s->sent >= TOTAL) {
            n_finished++;
            verbd_finish(x);
            return;
        }
        if (!verbd_send(x)) {
            s->waiting = true;
            n_waits++;
            if (++n_waiting > n_peak_waiting)
                n_peak_waiting = n_waiting;
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
    s->waiting = false;
    n_started++;
    n_active++;
    verbd_cleanup(x, ended, s);
    struct verbd_response *res = verbd_exchange_response(x);
    verbd_response_status(res, 200);
    verbd_response_header(res, "Content-Type", "application/octet-stream");
    produce(x, s);
}

static void stats(void *data, const struct verbd_request *req, struct verbd_response *res)
{
    (void)data, (void)req;
    char text[256];
    int n = snprintf(text, sizeof text,
                     "started %" PRIu64 "\nfinished %" PRIu64 "\nactive %" PRIu64
                     "\nwaiting %" PRIu64 "\npeak_waiting %" PRIu64 "\nwaits %" PRIu64 "\n",
                     n_started, n_finished, n_active, n_waiting, n_peak_waiting, n_waits);
    verbd_response_header(res, "Content-Type", "text/plain");
    verbd_response_body(res, text, (size_t)n);
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
        !verbd_server_map_handler(srv, "= /stats", "GET", stats, NULL, err, sizeof err) ||
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
