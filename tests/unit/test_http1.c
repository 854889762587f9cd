/* Unit tests for the HTTP/1 session (lib/engine/http1.c) driven over an
 * in-memory transport: no socket.  Handlers written here answer at once,
 * from timers, while the body arrives, or too short; the tests read the
 * bytes the session wrote. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/loop.h"
#include "engine/http1.h"
#include "engine/site.h"
#include "route/route.h"
#include "unit.h"

/* ---- an in-memory transport ------------------------------------------------- */

struct mem_transport {
    struct transport t; /* first: the session's pointer is ours */
    struct buf in;      /* what the client sent, not yet read */
    size_t in_at;
    bool in_eof;     /* the client closed its side */
    bool in_reset;   /* reading fails (the client vanished) */
    struct buf out;  /* what the session wrote */
    size_t out_room; /* bytes the "socket" takes before EAGAIN */
    bool shut, closed;
};

static struct mem_transport mt;

static ssize_t mem_read(struct transport *t, void *buf, size_t n)
{
    (void)t;
    if (mt.in_reset) {
        errno = ECONNRESET;
        return -1;
    }
    size_t left = mt.in.len - mt.in_at;
    if (!left) {
        if (mt.in_eof)
            return 0;
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
    (void)t, mt.shut = true;
}
static void mem_close(struct transport *t)
{
    (void)t, mt.closed = true;
}

/* No sendfile: file pieces are copied, as a TLS transport will. */
static const struct transport_ops mem_ops = {
    .read = mem_read,
    .writev = mem_writev,
    .shutdown = mem_shutdown,
    .close = mem_close,
};

/* ---- the server side ---------------------------------------------------------- */

static struct loop *loop;
static struct settings settings;
static struct site *site;
static struct listener lis;
static struct http1_host host;
static struct http1 *conn;

static int cleanups_run;
static int late_callbacks;

static void note_cleanup(void *arg)
{
    (void)arg;
    cleanups_run++;
}

/* GET /now: "now\n" at once. */
static void start_now(void *data, struct verbd_exchange *x)
{
    (void)data;
    verbd_response_body(verbd_exchange_response(x), "now\n", 4);
    verbd_finish(x);
}

/* GET /chunks: three pieces of unknown total length. */
static void start_chunks(void *data, struct verbd_exchange *x)
{
    (void)data;
    struct verbd_response *res = verbd_exchange_response(x);
    verbd_response_body(res, "one ", 4);
    verbd_send(x);
    verbd_response_body(res, "two ", 4);
    verbd_send(x);
    verbd_response_body(res, "three", 5);
    verbd_response_trailer(res, "X-Checksum", "42");
    verbd_finish(x);
}

/* GET /short: states 10 bytes, writes 4.  GET /long: states 3, writes 8. */
static void start_short(void *data, struct verbd_exchange *x)
{
    (void)data;
    struct verbd_response *res = verbd_exchange_response(x);
    verbd_response_length(res, 10);
    verbd_response_body(res, "abcd", 4);
    verbd_send(x);
    verbd_finish(x);
}

static void start_long(void *data, struct verbd_exchange *x)
{
    (void)data;
    struct verbd_response *res = verbd_exchange_response(x);
    verbd_response_length(res, 3);
    verbd_response_body(res, "abcdefgh", 8);
    verbd_finish(x);
}

/* GET /later: "later\n" from a 30 ms timer; a cleanup counts its end. */
static void later_fired(struct verbd_exchange *x, void *arg)
{
    (void)arg;
    if (verbd_aborted(x))
        late_callbacks++;
    verbd_response_body(verbd_exchange_response(x), "later\n", 6);
    verbd_finish(x);
}

static void start_later(void *data, struct verbd_exchange *x)
{
    (void)data;
    verbd_cleanup(x, note_cleanup, NULL);
    verbd_timer(x, 30, 0, later_fired, NULL);
}

/* POST /early: "started\n" before reading, then the count; /paused reads
 * one piece, pauses, and is resumed by the test. */
static uint64_t received;
static int data_calls;
static struct verbd_exchange *paused_x;

static void count_data(struct verbd_exchange *x, const void *p, size_t n, void *arg)
{
    (void)p;
    received += n;
    data_calls++;
    if (arg) {
        verbd_read_pause(x);
        paused_x = x;
    }
}

static void count_done(struct verbd_exchange *x, int status, void *arg)
{
    (void)arg;
    char text[64];
    int n =
        snprintf(text, sizeof text, "got %llu status %d\n", (unsigned long long)received, status);
    verbd_response_body(verbd_exchange_response(x), text, (size_t)n);
    verbd_finish(x);
}

static void start_early(void *data, struct verbd_exchange *x)
{
    (void)data;
    verbd_response_body(verbd_exchange_response(x), "started\n", 8);
    verbd_send(x);
    verbd_read(x, count_data, count_done, NULL);
}

static void start_paused(void *data, struct verbd_exchange *x)
{
    (void)data;
    verbd_read(x, count_data, count_done, x);
}

/* GET /flood: 1 MiB in 16 KiB pieces, only while verbd_send says so. */
static uint64_t produced;
static uint64_t max_ahead;

static void flood_more(struct verbd_exchange *x, void *arg)
{
    (void)arg;
    static char piece[16384];
    struct verbd_response *res = verbd_exchange_response(x);
    for (;;) {
        if (produced == 1 << 20) {
            verbd_finish(x);
            return;
        }
        verbd_response_body(res, piece, sizeof piece);
        produced += sizeof piece;
        uint64_t ahead = produced - (mt.out.len > produced ? produced : mt.out.len);
        if (ahead > max_ahead)
            max_ahead = ahead;
        if (!verbd_send(x)) {
            verbd_on_writable(x, flood_more, NULL);
            return;
        }
    }
}

static void start_flood(void *data, struct verbd_exchange *x)
{
    (void)data;
    flood_more(x, NULL);
}

/* GET /lend: 1 MiB lent in 16 KiB pieces of one buffer (byte i of the
 * body is i % 251), each given back through give_back, produced only
 * while verbd_send says so. */
static char lend_buf[1 << 20];
static uint64_t lent_pieces, returned_pieces;

static void give_back(void *ctx)
{
    (void)ctx;
    returned_pieces++;
}

static void lend_more(struct verbd_exchange *x, void *arg)
{
    (void)arg;
    struct verbd_response *res = verbd_exchange_response(x);
    for (;;) {
        if (lent_pieces * 16384 == sizeof lend_buf) {
            verbd_finish(x);
            return;
        }
        verbd_response_body_shared(res, lend_buf + lent_pieces * 16384, 16384, give_back, NULL);
        lent_pieces++;
        if (!verbd_send(x)) {
            verbd_on_writable(x, lend_more, NULL);
            return;
        }
    }
}

static void start_lend(void *data, struct verbd_exchange *x)
{
    (void)data;
    for (size_t i = 0; i < sizeof lend_buf; i++)
        lend_buf[i] = (char)(i % 251);
    lend_more(x, NULL);
}

/* GET /tunnel: switches to a protocol that echoes what the client sends
 * and says "bye" when the client closes; without an Upgrade field it is a
 * 400. */
static int tunnel_refused;

static void tunnel_data(struct verbd_exchange *x, const void *p, size_t n, void *arg)
{
    (void)arg;
    verbd_response_body(verbd_exchange_response(x), p, n);
    verbd_send(x);
}

static void tunnel_done(struct verbd_exchange *x, int status, void *arg)
{
    (void)arg, (void)status;
    verbd_response_body(verbd_exchange_response(x), "bye", 3);
    verbd_finish(x);
}

static void start_tunnel(void *data, struct verbd_exchange *x)
{
    (void)data;
    struct verbd_response *res = verbd_exchange_response(x);
    verbd_response_status(res, 101);
    verbd_response_header(res, "Upgrade", "echo");
    if (!verbd_upgrade(x, tunnel_data, tunnel_done, NULL)) {
        tunnel_refused++;
        verbd_response_error(res, 400, NULL);
        verbd_finish(x);
    }
}

/* GET /files: three files appended, each with its own descriptor (the
 * last one larger than what is copied with the head). */
static char file_dir[64];

static int open_file(const char *name)
{
    char p[128];
    snprintf(p, sizeof p, "%s/%s", file_dir, name);
    return open(p, O_RDONLY | O_CLOEXEC);
}

static void start_files(void *data, struct verbd_exchange *x)
{
    (void)data;
    struct verbd_response *res = verbd_exchange_response(x);
    verbd_response_file(res, open_file("a"), 0, 5);
    verbd_response_body(res, "|", 1);
    verbd_response_file(res, open_file("b"), 1, 3);
    int c = open_file("c");
    verbd_response_file(res, c, 0, 4);
    verbd_response_file(res, c, 20000, 10); /* a second range of the same fd */
    verbd_finish(x);
}

static void write_file(const char *name, char fill, size_t n)
{
    char p[128];
    snprintf(p, sizeof p, "%s/%s", file_dir, name);
    FILE *f = fopen(p, "w");
    for (size_t i = 0; i < n; i++)
        fputc(i % 1000 == 999 ? '#' : fill, f);
    fclose(f);
}

static void setup(void)
{
    clock_update();
    loop = loop_new();
    settings_defaults(&settings);
    site = site_new(NULL);
    char err[256];
    struct {
        const char *loc, *methods;
        verbd_start_fn *fn;
    } maps[] = {
        {"= /now", "GET", start_now},        {"= /chunks", "GET", start_chunks},
        {"= /short", "GET", start_short},    {"= /long", "GET", start_long},
        {"= /later", "GET", start_later},    {"= /early", "POST", start_early},
        {"= /paused", "POST", start_paused}, {"= /flood", "GET", start_flood},
        {"= /files", "GET", start_files},    {"= /tunnel", "GET", start_tunnel},
        {"= /lend", "GET", start_lend},
    };
    for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++)
        if (!route_add_handler(&site->routes, maps[i].loc, maps[i].methods, NULL, maps[i].fn, NULL,
                               err, sizeof err))
            printf("setup: %s\n", err);
    free(settings.access_log);
    settings.access_log = strdup("off");
    if (site_settle(site, &settings, err, sizeof err) < 0)
        abort();
    lis = (struct listener){.fd = -1, .sites = &site, .nsites = 1};
    if (http1_host_init(&host, loop, &settings) < 0)
        abort();
}

/* A fresh connection whose client sends `input` (more may follow). */
static void open_conn(const char *input, size_t room)
{
    buf_free(&mt.in);
    buf_free(&mt.out);
    memset(&mt, 0, sizeof mt);
    mt.t.ops = &mem_ops;
    mt.t.fd = -1;
    mt.out_room = room;
    buf_append(&mt.in, input, strlen(input));
    conn = http1_open(&host, &mt.t, false, &lis, NULL, NULL, 0);
}

static void client_sends(const char *more, size_t n)
{
    buf_append(&mt.in, more, n);
    http1_ready(conn);
}

/* Runs the loop for about `ms` milliseconds (timers, deferred calls). */
static void spin(int ms)
{
    clock_update();
    uint64_t until = clock_ms() + (uint64_t)ms;
    do
        loop_run_once(loop, 5);
    while (clock_ms() < until);
}

static const char *output(void)
{
    buf_append(&mt.out, "", 1);
    mt.out.len--;
    return mt.out.p ? mt.out.p : "";
}

static bool has(const char *needle)
{
    return memmem(output(), mt.out.len, needle, strlen(needle)) != NULL;
}

static void close_conn(void)
{
    if (!mt.closed)
        http1_close(conn);
}

/* ---- tests ------------------------------------------------------------------------- */

static void test_length_when_known(void)
{
    open_conn("GET /now HTTP/1.1\r\nHost: a\r\n\r\n", SIZE_MAX);
    CHECK(has("HTTP/1.1 200 OK\r\n"));
    CHECK(has("Content-Length: 4\r\n"));
    CHECK(!has("Transfer-Encoding"));
    CHECK(has("\r\n\r\nnow\n"));
    CHECK(!mt.closed);
    close_conn();
}

static void test_chunked_when_unknown(void)
{
    open_conn("GET /chunks HTTP/1.1\r\nHost: a\r\n\r\n", SIZE_MAX);
    CHECK(has("Transfer-Encoding: chunked\r\n"));
    CHECK(!has("Content-Length"));
    CHECK(has("\r\n\r\n4\r\none \r\n4\r\ntwo \r\n5\r\nthree\r\n0\r\nX-Checksum: 42\r\n\r\n"));
    CHECK(!mt.closed);
    close_conn();

    /* HEAD: the same framing announced, no body, no last chunk. */
    open_conn("HEAD /chunks HTTP/1.1\r\nHost: a\r\n\r\n", SIZE_MAX);
    CHECK(has("Transfer-Encoding: chunked\r\n"));
    const char *end = strstr(output(), "\r\n\r\n");
    CHECK(end && end[4] == '\0');
    close_conn();

    /* HTTP/1.0: the body ends with the connection. */
    open_conn("GET /chunks HTTP/1.0\r\n\r\n", SIZE_MAX);
    CHECK(!has("Transfer-Encoding"));
    CHECK(has("Connection: close\r\n"));
    CHECK(has("\r\n\r\none two three"));
    CHECK(mt.closed);
    close_conn();
}

static void test_stated_length_kept(void)
{
    open_conn("GET /short HTTP/1.1\r\nHost: a\r\n\r\nGET /now HTTP/1.1\r\nHost: a\r\n\r\n",
              SIZE_MAX);
    CHECK(has("Content-Length: 10\r\n"));
    CHECK(has("\r\n\r\nabcd"));
    CHECK(!has("now\n")); /* the connection ended: nothing after it */
    CHECK(mt.closed || mt.shut);
    close_conn();

    open_conn("GET /long HTTP/1.1\r\nHost: a\r\n\r\n", SIZE_MAX);
    CHECK(has("Content-Length: 3\r\n"));
    const char *body = strstr(output(), "\r\n\r\n");
    CHECK_STR(body ? body + 4 : NULL, "abc");
    CHECK(mt.closed || mt.shut);
    close_conn();

    /* HEAD keeps a stated length and sends no body. */
    open_conn("HEAD /short HTTP/1.1\r\nHost: a\r\n\r\n", SIZE_MAX);
    CHECK(has("Content-Length: 10\r\n"));
    body = strstr(output(), "\r\n\r\n");
    CHECK(body && body[4] == '\0');
    CHECK(!mt.closed);
    close_conn();
}

static void test_answer_from_timer_in_order(void)
{
    cleanups_run = 0;
    open_conn("GET /later HTTP/1.1\r\nHost: a\r\n\r\nGET /now HTTP/1.1\r\nHost: a\r\n\r\n",
              SIZE_MAX);
    CHECK_INT(mt.out.len, 0); /* nothing yet: the first answer waits */
    spin(60);
    const char *later = strstr(output(), "later\n"), *now = strstr(output(), "now\n");
    CHECK(later && now && later < now); /* pipelined answers in order */
    CHECK_INT(cleanups_run, 1);
    CHECK(!mt.closed);
    close_conn();
}

static void test_client_vanishes(void)
{
    cleanups_run = 0;
    late_callbacks = 0;
    open_conn("GET /later HTTP/1.1\r\nHost: a\r\n\r\n", SIZE_MAX);
    mt.in_reset = true;
    http1_ready(conn);
    CHECK(mt.closed);
    CHECK_INT(cleanups_run, 1);
    spin(60); /* the timer was cancelled with its exchange */
    CHECK_INT(late_callbacks, 0);
    CHECK_INT(mt.out.len, 0);
}

static void test_answer_before_body(void)
{
    received = 0;
    data_calls = 0;
    open_conn("POST /early HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n12345", SIZE_MAX);
    CHECK(has("Transfer-Encoding: chunked\r\n"));
    CHECK(has("8\r\nstarted\n\r\n"));
    CHECK(!has("got"));
    client_sends("67890", 5);
    spin(5);
    CHECK(has("got 10 status 0\n"));
    CHECK(has("0\r\n\r\n"));
    close_conn();

    /* 100 Continue goes out before the head of a response that will read
     * the body. */
    received = 0;
    open_conn("POST /early HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
              "Expect: 100-continue\r\n\r\n",
              SIZE_MAX);
    CHECK(strncmp(output(), "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n", 42) == 0);
    client_sends("abc", 3);
    spin(5);
    CHECK(has("got 3 status 0\n"));
    close_conn();

    /* A handler that reads at once: 100 Continue before anything else. */
    received = 0;
    open_conn("POST /paused HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
              "Expect: 100-continue\r\n\r\n",
              SIZE_MAX);
    CHECK(strncmp(output(), "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0);
    close_conn();
}

static void test_read_without_body(void)
{
    /* verbd_read on a request with no body: done(0), from the loop. */
    received = 0;
    open_conn("POST /paused HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", SIZE_MAX);
    spin(5);
    CHECK(has("got 0 status 0\n"));
    close_conn();
}

static void test_three_files(void)
{
    snprintf(file_dir, sizeof file_dir, "/tmp/verbd-http1-XXXXXX");
    if (!mkdtemp(file_dir))
        abort();
    write_file("a", 'A', 5);
    write_file("b", 'B', 5);
    write_file("c", 'C', 30000);
    open_conn("GET /files HTTP/1.1\r\nHost: a\r\n\r\n", SIZE_MAX);
    CHECK(has("Content-Length: 23\r\n"));
    const char *body = strstr(output(), "\r\n\r\n");
    CHECK_STR(body ? body + 4 : NULL, "AAAAA|BBBCCCCCCCCCCCCCC");
    close_conn();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", file_dir);
    CHECK_INT(system(cmd), 0);
}

static void test_pause_and_resume(void)
{
    received = 0;
    data_calls = 0;
    paused_x = NULL;
    open_conn("POST /paused HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
              "3\r\nabc\r\n",
              SIZE_MAX);
    spin(5);
    CHECK_INT(data_calls, 1);
    client_sends("4\r\ndefg\r\n0\r\n\r\n", 15);
    spin(5);
    CHECK_INT(data_calls, 1); /* paused: nothing more delivered */
    CHECK(!has("got"));
    if (paused_x)
        verbd_read_resume(paused_x);
    spin(5);
    CHECK_INT(data_calls, 2);
    CHECK(paused_x != NULL);
    if (paused_x)
        verbd_read_resume(paused_x); /* paused again after the second piece */
    spin(5);
    CHECK(has("got 7 status 0\n"));
    close_conn();
}

static void test_backpressure(void)
{
    produced = 0;
    max_ahead = 0;
    open_conn("GET /flood HTTP/1.1\r\nHost: a\r\n\r\n", 4096);
    spin(5);
    /* The client took 4 KiB: the handler stopped at the bound. */
    CHECK(produced < 128 * 1024);
    for (int i = 0; i < 2000 && !has("\r\n0\r\n\r\n"); i++) {
        mt.out_room = 8192;
        http1_ready(conn);
        spin(1);
    }
    CHECK_INT(produced, 1 << 20);
    CHECK(has("\r\n0\r\n\r\n"));
    CHECK(max_ahead <= 96 * 1024);
    close_conn();
}

/* Lent bytes leave from where they are: each piece is given back once
 * written (not when queued), they count against the exchange's bound,
 * and what a vanished client never took is given back too. */
static void test_lent_bytes(void)
{
    lent_pieces = returned_pieces = 0;
    open_conn("GET /lend HTTP/1.1\r\nHost: a\r\n\r\n", 4096);
    spin(5);
    CHECK(lent_pieces * 16384 < 128 * 1024);
    CHECK(returned_pieces * 16384 <= mt.out.len);
    for (int i = 0; i < 4000 && !has("\r\n0\r\n\r\n"); i++) {
        mt.out_room = 8192;
        http1_ready(conn);
        spin(1);
        CHECK(returned_pieces * 16384 <= mt.out.len);
    }
    CHECK_INT(returned_pieces, 64);
    /* The body, chunk by chunk, is the lent bytes. */
    const char *p = strstr(output(), "\r\n\r\n") + 4;
    size_t at = 0;
    bool same = true;
    while (same && at < sizeof lend_buf) {
        char *end;
        unsigned long n = strtoul(p, &end, 16);
        if (n == 0 || end[0] != '\r')
            break;
        p = end + 2;
        for (unsigned long k = 0; k < n && same; k++)
            same = p[k] == (char)((at + k) % 251);
        at += n;
        p += n + 2;
    }
    CHECK(same);
    CHECK_INT(at, sizeof lend_buf);
    close_conn();

    lent_pieces = returned_pieces = 0;
    open_conn("GET /lend HTTP/1.1\r\nHost: a\r\n\r\n", 4096);
    spin(5);
    CHECK(lent_pieces > returned_pieces);
    close_conn(); /* the client is gone: nothing more is written */
    spin(5);
    CHECK_INT(returned_pieces, lent_pieces);
}

static void test_upgrade(void)
{
    open_conn("GET /tunnel HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n"
              "early",
              SIZE_MAX);
    spin(1);
    CHECK(has("HTTP/1.1 101 Switching Protocols\r\n"));
    CHECK(has("Upgrade: echo\r\nConnection: upgrade\r\n\r\nearly"));
    CHECK(!has("Content-Length") && !has("Transfer-Encoding"));
    /* What looks like a request is the tunnel's, passed as it is. */
    client_sends("GET / HTTP/1.1\r\n\r\n", 18);
    spin(1);
    CHECK(has("earlyGET / HTTP/1.1\r\n\r\n"));
    CHECK(!mt.shut && !mt.closed);
    /* The client's close ends the input; the module ends the tunnel. */
    mt.in_eof = true;
    http1_ready(conn);
    spin(1);
    CHECK(has("\r\n\r\nbye"));
    CHECK(mt.shut || mt.closed);
    close_conn();

    /* Nothing to upgrade: no Upgrade field, or HTTP/1.0. */
    tunnel_refused = 0;
    open_conn("GET /tunnel HTTP/1.1\r\nHost: a\r\n\r\n", SIZE_MAX);
    CHECK(has("HTTP/1.1 400 "));
    close_conn();
    open_conn("GET /tunnel HTTP/1.0\r\nUpgrade: echo\r\n\r\n", SIZE_MAX);
    CHECK(has("HTTP/1.1 400 "));
    close_conn();
    CHECK_INT(tunnel_refused, 2);
}

int main(void)
{
    log_open("off", LOG_ERROR, NULL, 0);
    setup();
    test_length_when_known();
    test_chunked_when_unknown();
    test_stated_length_kept();
    test_answer_from_timer_in_order();
    test_client_vanishes();
    test_answer_before_body();
    test_read_without_body();
    test_three_files();
    test_pause_and_resume();
    test_backpressure();
    test_lent_bytes();
    test_upgrade();
    http1_host_free(&host);
    site_free(site);
    settings_free(&settings);
    loop_free(loop);
    buf_free(&mt.in);
    buf_free(&mt.out);
    return unit_report();
}
