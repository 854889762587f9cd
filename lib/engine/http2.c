/* The HTTP/2 session.  One connection, many streams, each stream one
 * exchange.  libnghttp2 parses and validates frames (RFC 9113's messaging
 * rules included: pseudo-header fields, lower-case names, no
 * connection-specific fields, TE only "trailers", Content-Length against
 * the DATA received), keeps the stream states and flow control and
 * produces the frames; this file drives it from the loop:
 *
 *   - what the transport reads goes to nghttp2_session_mem_recv; its
 *     callbacks only record (header fields, body bytes, closed streams);
 *   - after each read the recorded work is done outside nghttp2: streams
 *     whose head is complete become exchanges and start, body bytes go to
 *     the readers, closed streams end their exchanges;
 *   - what nghttp2_session_mem_send produces is gathered into one buffer
 *     and written with one writev per turn.
 *
 * A module's calls (send, read, pause, ...) only record and wake the run,
 * as in the HTTP/1 session.
 *
 * Flow control follows the reader: the window of a stream (and of the
 * connection) is given back only as its body is delivered, so a module
 * that pauses stops the client's DATA on that stream alone.  Output is
 * bounded per stream by OUT_HIGH_WATER, like HTTP/1's. */
#include "engine/http2.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/stats.h"
#include "engine/outq.h"
#include "engine/site.h"
#include "http/method.h"
#include "http/status.h"
#include "route/route.h"

/* Per stream: the response body queued before verbd_send() says wait. */
#define OUT_HIGH_WATER (64 * 1024)
/* Output gathered from nghttp2 before it is written.  (Over loopback,
 * 32-64 KiB writes cost less CPU per byte than 128 KiB ones.) */
#define GATHER_MAX (64 * 1024)
/* A DATA frame's file payload from this size on leaves by the transport's
 * sendfile (h2c; TLS: kernel TLS, else a record at a time); a smaller one
 * is read into the output.  With the 16 KiB frames clients
 * allow by default, a sendfile and a write for each frame's header cost
 * more than one pread per frame and one writev for many: 0.63-0.68x
 * h2o's requests per CPU-second against 0.86x (64 KiB files, h2load -c16
 * -m4, loopback; docs/http2.md). */
#define SENDFILE_MIN (64 * 1024)
/* The largest DATA frame, when the client's SETTINGS_MAX_FRAME_SIZE and
 * windows allow it (the library's frame buffer grows to it for that
 * connection) and the transport has sendfile; 16 KiB otherwise. */
#define FRAME_MAX (256 * 1024)
/* Input read (and given to nghttp2) per turn, so that streams get their
 * turn between reads of a fast client. */
#define READ_TURN (256 * 1024)
#define READ_CHUNK (16 * 1024)
#define MAX_STREAMS 100
/* Ended streams a worker keeps for new ones, with buffers up to
 * SPARE_BUF_MAX: a stream then costs no allocation of verbd's own. */
#define MAX_SPARE_STREAMS 64
#define SPARE_BUF_MAX (4 * 1024)
/* A stream's receive window: what it may send before its reader takes
 * it.  The connection's window covers every stream's, so a stream whose
 * reader pauses never holds the others up. */
#define STREAM_WINDOW 65535
#define CONN_WINDOW (STREAM_WINDOW * (MAX_STREAMS + 1))
/* After the last GOAWAY: what the client still sends is read and dropped
 * this long, up to this much, so that the close is not a reset that
 * loses the GOAWAY on its way. */
#define LINGER_MS 2000
#define LINGER_MAX_BYTES (256 * 1024)
/* A stream answered before its request body ended: what still comes of
 * the body is read and dropped this long, up to this much, so that the
 * client sees its stream end as its request did (curl, among others,
 * takes RST_STREAM NO_ERROR in the middle of an upload for a failure);
 * past either bound the stream is reset with NO_ERROR (RFC 9113 §8.1). */
#define DRAIN_MS 2000
#define DRAIN_MAX_BYTES (64 * 1024)

/* Budgets against floods: frames that cost the server work and ask it
 * for nothing it can answer.  Each is counted per connection within a
 * window of FLOOD_WINDOW_MS; one over its budget ends the connection
 * with GOAWAY ENHANCE_YOUR_CALM. */
#define FLOOD_WINDOW_MS 10000
#define MAX_RESETS 200          /* RST_STREAM from the client, or sent for its error */
#define MAX_PINGS 100           /* PING without ACK */
#define MAX_SETTINGS_FRAMES 100 /* SETTINGS without ACK */
#define MAX_EMPTY 100           /* DATA, HEADERS or CONTINUATION with no payload that end nothing */
#define MAX_DRIBBLE 1000        /* WINDOW_UPDATE of less than DRIBBLE_BYTES */
#define DRIBBLE_BYTES 1024
/* The library's own bounds, behind verbd's. */
#define MAX_CONTINUATIONS 8     /* CONTINUATION frames after one HEADERS */
#define MAX_OUTBOUND_ACK 1000   /* PING and SETTINGS ACKs the client does not read */
#define MAX_SETTINGS_ENTRIES 32 /* entries in one SETTINGS frame */
#define RESET_BURST (2 * MAX_RESETS)
#define RESET_RATE 33 /* tokens a second */

enum flood { FLOOD_RESET, FLOOD_PING, FLOOD_SETTINGS, FLOOD_EMPTY, FLOOD_DRIBBLE, FLOOD_KINDS };

static const struct {
    const char *name;
    uint32_t budget;
} floods[FLOOD_KINDS] = {
    [FLOOD_RESET] = {"stream reset", MAX_RESETS},
    [FLOOD_PING] = {"PING", MAX_PINGS},
    [FLOOD_SETTINGS] = {"SETTINGS", MAX_SETTINGS_FRAMES},
    [FLOOD_EMPTY] = {"empty frame", MAX_EMPTY},
    [FLOOD_DRIBBLE] = {"small WINDOW_UPDATE", MAX_DRIBBLE},
};

struct pair_len {
    uint32_t name, value;
};

struct h2_stream {
    struct http2 *c;
    struct h2_stream *prev, *next;
    int32_t id;
    struct verbd_exchange *x;
    struct site *site;

    /* The request head as it arrives: pairs of the two lengths (struct
     * pair_len) then name and value. */
    struct buf head;
    size_t nfields;
    uint64_t head_bytes; /* RFC 9113 §6.5.2's count: name + value + 32 each */
    int refuse;          /* 414, 431: answered without the router */
    bool trailer_part;   /* a HEADERS after the head: trailer fields */
    struct buf trailers; /* "Name: value\r\n" lines */
    bool ready;          /* the head is complete: start it */
    bool started;

    /* The request body. */
    struct buf in; /* received, not yet delivered */
    size_t in_off;
    uint64_t in_total;
    bool end_in;       /* END_STREAM received */
    bool body_over;    /* past max_body: the rest is dropped */
    size_t to_consume; /* delivered or dropped bytes to give back as window */
    uint64_t read_deadline;
    /* min_rate, as HTTP/1's: a window opens when the module starts (or
     * resumes) reading; the body bytes received in it are counted. */
    uint64_t rate_at, rate_bytes; /* rate_at 0: no window */

    /* The response. */
    bool submitted; /* HEADERS of the final response went to nghttp2 */
    bool send_body;
    bool out_last;        /* the exchange finished: no more pieces */
    bool deferred;        /* nghttp2 waits for resume_data */
    bool stated;          /* a Content-Length went out */
    uint64_t length_left; /* its bytes still owed */
    /* The body not yet given to nghttp2; file ranges are read with pread
     * when it asks for DATA (the no-copy path, DATA from a file by
     * sendfile, is a later step). */
    struct outq q;
    nghttp2_nv *trailer_nv; /* in the exchange's arena */
    size_t ntrailers;

    bool closed;   /* nghttp2 closed the stream */
    bool draining; /* answered; the rest of the body is dropped */
    uint64_t drain_deadline;
    uint64_t drained;
    bool rst_pending;
    uint32_t rst_code;
};

struct http2 {
    struct http2_host *host;
    const struct listener *lis;
    char *sni;
    struct transport tr;
    struct loop_watch watch;
    struct loop_defer run;
    struct loop_timer timer;
    uint32_t index;
    int8_t counted_as;
    bool watched;
    bool in_run;
    bool *closed;
    bool drained;
    bool peer_shut;
    bool eof;
    bool failed;    /* the transport failed, or nghttp2 did: close */
    bool goaway;    /* GOAWAY went to nghttp2 (graceful stop) */
    bool blocked;   /* the transport took less than we had */
    bool kick;      /* work was left for the run in progress */
    bool lingering; /* our side is shut: draining until the client closes */
    nghttp2_session *ng;
    struct h2_stream *streams;
    size_t nstreams;
    struct outq out;    /* gathered output: frames, and file ranges of DATA */
    uint64_t gathered;  /* its bytes */
    struct buf scratch; /* a request head being assembled */
    uint64_t idle_deadline, write_deadline;
    uint64_t flood_start; /* the current window of the flood budgets */
    uint32_t flood_count[FLOOD_KINDS];
    uint64_t linger_deadline;
    size_t lingered;
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } peer;
};

static void h2_run(struct http2 *c);
static const struct vx_session_ops h2_ops;

static const struct settings *settings_of(const struct http2 *c)
{
    return &c->lis->sites[0]->settings;
}

static const struct settings *stream_settings(const struct h2_stream *s)
{
    return s->site ? &s->site->settings : settings_of(s->c);
}

static void count_state(struct http2 *c)
{
    int now = c->nstreams ? STATS_CONN_WRITING : STATS_CONN_IDLE;
    stats_conn_move(c->counted_as, now);
    c->counted_as = (int8_t)now;
}

static void run_deferred(void *arg)
{
    h2_run(arg);
}

static void wake(struct http2 *c)
{
    if (c->in_run)
        c->kick = true;
    else
        loop_defer(c->host->h1->loop, &c->run, run_deferred, c);
}

/* ---- streams ------------------------------------------------------------------- */

static struct h2_stream *new_stream(struct http2 *c, int32_t id)
{
    struct http2_host *h = c->host;
    struct h2_stream *s = h->spare;
    if (s) {
        h->spare = s->next;
        h->nspare--;
        struct buf head = s->head, in = s->in, trailers = s->trailers;
        struct outq q = s->q;
        memset(s, 0, sizeof *s);
        s->head = head, s->in = in, s->trailers = trailers, s->q = q;
    } else if (!(s = calloc(1, sizeof *s))) {
        return NULL;
    }
    s->c = c;
    s->id = id;
    s->next = c->streams;
    if (s->next)
        s->next->prev = s;
    c->streams = s;
    c->nstreams++;
    count_state(c);
    return s;
}

static void buf_keep(struct buf *b)
{
    if (b->cap > SPARE_BUF_MAX)
        buf_free(b);
    buf_reset(b);
}

/* A stream's memory: kept for a new stream, or freed. */
static void spare_stream(struct http2_host *h, struct h2_stream *s)
{
    if (h->nspare >= MAX_SPARE_STREAMS) {
        outq_free_segs(&s->q);
        buf_free(&s->q.out);
        buf_free(&s->in);
        buf_free(&s->head);
        buf_free(&s->trailers);
        free(s);
        return;
    }
    buf_keep(&s->q.out);
    buf_keep(&s->in);
    buf_keep(&s->head);
    buf_keep(&s->trailers);
    s->next = h->spare;
    h->spare = s;
    h->nspare++;
}

/* Ends the stream's exchange (or drops it, if unfinished: the client went)
 * and frees the stream.  Never called from inside a module's call. */
static void free_stream(struct h2_stream *s)
{
    struct http2 *c = s->c;
    if (s->x) {
        struct verbd_exchange *x = s->x;
        s->x = NULL;
        if (x->finished)
            vx_end(x);
        else
            vx_client_gone(x);
    }
    if (s->site)
        site_release(s->site);
    /* Ranges of a file of this stream's may still wait in the connection's
     * output (a reset stream): its hold stays until they are written. */
    for (size_t i = s->q.head; i < s->q.n; i++)
        outq_keep_hold(&c->out, &s->q.segs[i].hold);
    outq_drop(&s->q);
    if (s->prev)
        s->prev->next = s->next;
    else
        c->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    c->nstreams--;
    count_state(c);
    if (!c->nstreams)
        c->idle_deadline = clock_ms() + settings_of(c)->idle_timeout_ms;
    spare_stream(c->host, s);
}

/* ---- the response -------------------------------------------------------------- */

static bool status_has_body(int status)
{
    return status >= 200 && status != 204 && status != 304;
}

/* Connection-specific fields (RFC 9113 §8.2.2) a module or an upstream
 * may have set: HTTP/2 carries none of them; Content-Length is the
 * session's. */
static bool hop_field(struct span name)
{
    static const struct {
        const char *p;
        size_t n;
    } names[] = {
#define HOP(lit) {lit, sizeof lit - 1}
        HOP("connection"), HOP("keep-alive"),     HOP("proxy-connection"),
        HOP("upgrade"),    HOP("content-length"), HOP("transfer-encoding"),
#undef HOP
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].n == name.n && strncasecmp(names[i].p, name.p, name.n) == 0)
            return true;
    return false;
}

struct nv_list {
    nghttp2_nv *v;
    size_t n, cap;
};

/* Room for one more field; the list lives in x's arena. */
static nghttp2_nv *nv_next(struct verbd_exchange *x, struct nv_list *l)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        nghttp2_nv *p = arena_alloc(&x->arena, cap * sizeof *p);
        if (l->n)
            memcpy(p, l->v, l->n * sizeof *p);
        l->v = p;
        l->cap = cap;
    }
    return &l->v[l->n++];
}

/* Adds a field whose name and value stay where they are until the
 * stream's exchange ends, which is after its HEADERS went out or were
 * dropped: nghttp2 takes them without a copy. */
static void nv_put(struct verbd_exchange *x, struct nv_list *l, const char *name, size_t nlen,
                   const char *value, size_t vlen)
{
    *nv_next(x, l) = (nghttp2_nv){(uint8_t *)name, (uint8_t *)value, nlen, vlen,
                                  NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE};
}

/* Adds a field with its name lower-cased: in place when the name is
 * writable (a response's own fields, which nothing reads after its
 * head), else copied into x's arena. */
static void nv_add(struct verbd_exchange *x, struct nv_list *l, char *name, size_t nlen,
                   const char *value, size_t vlen, bool in_place)
{
    char *lname = name;
    for (size_t i = 0; i < nlen && !in_place && lname == name; i++)
        if (name[i] >= 'A' && name[i] <= 'Z')
            lname = arena_alloc(&x->arena, nlen + 1);
    if (in_place || lname != name)
        for (size_t i = 0; i < nlen; i++)
            lname[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
    nv_put(x, l, lname, nlen, value, vlen);
}

/* n in decimal at the end of buf[24]; returns where it starts. */
static char *decimal(char *buf, uint64_t n, size_t *len)
{
    char *p = buf + 24;
    do
        *--p = (char)('0' + n % 10);
    while (n /= 10);
    *len = (size_t)(buf + 24 - p);
    return p;
}

/* "Name: value\r\n" lines into fields (a location's `header`, trailers). */
static void nv_add_lines(struct verbd_exchange *x, struct nv_list *l, const char *p, size_t n,
                         bool skip_hop)
{
    const char *end = p + n;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol ? eol : end;
        const char *colon = memchr(p, ':', (size_t)(line_end - p));
        if (colon && colon > p) {
            const char *v = colon + 1;
            const char *ve = line_end;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            struct span name = {p, (size_t)(colon - p)};
            if (!skip_hop || !hop_field(name))
                nv_add(x, l, (char *)p, name.n, v, (size_t)(ve - v), false);
        }
        p = eol ? eol + 1 : end;
    }
}

static ssize_t read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *user);

/* The final response's HEADERS: status, server, date, the module's
 * fields, the location's, and Content-Length where the body's length is
 * known (a HEAD gets GET's). */
static void commit_head(struct h2_stream *s, struct verbd_exchange *x, bool last, uint64_t body)
{
    struct verbd_response *res = &x->res;
    struct nv_list l = {0};
    char *num = arena_alloc(&x->arena, 48);
    size_t slen;
    const char *status = decimal(num, (uint64_t)res->status, &slen);
    nv_put(x, &l, ":status", 7, status, slen);
    nv_put(x, &l, "server", 6, "verbd", 5);
    if (!res->has_date) {
        const char *d = clock_date_field(); /* "Date: ...\r\n" */
        char *v = arena_alloc(&x->arena, CLOCK_DATE_FIELD_LEN);
        memcpy(v, d + 6, CLOCK_DATE_FIELD_LEN - 8);
        nv_put(x, &l, "date", 4, v, CLOCK_DATE_FIELD_LEN - 8);
    }
    size_t pos = 0;
    struct span name, value;
    while (response_field_at(res, &pos, &name, &value) == 0)
        if (!hop_field(name))
            nv_add(x, &l, (char *)name.p, name.n, value.p, value.n, true);
    if (x->extra_head && x->extra_head->len)
        nv_add_lines(x, &l, x->extra_head->p, x->extra_head->len, true);
    bool stated = res->length != RESPONSE_NO_LENGTH;
    uint64_t length = stated ? res->length : body;
    bool announce = res->status == 304 ? stated : status_has_body(res->status) && (stated || last);
    if (announce) {
        size_t n;
        const char *v = decimal(num + 24, length, &n);
        nv_put(x, &l, "content-length", 14, v, n);
    }
    s->send_body = status_has_body(res->status) && x->req.method_id != METHOD_HEAD;
    s->stated = s->send_body && announce;
    s->length_left = s->stated ? length : UINT64_MAX;
    bool no_data = last && (!s->send_body || body == 0) && !res->trailers.len;
    nghttp2_data_provider prov = {.source.ptr = s, .read_callback = read_body};
    int r = nghttp2_submit_response(s->c->ng, s->id, l.v, l.n, no_data ? NULL : &prov);
    if (r != 0)
        log_msg(LOG_DEBUG, "HTTP/2 stream %d: response not submitted: %s", s->id,
                nghttp2_strerror(r));
    s->submitted = true;
    x->head_sent = true;
}

/* Queues body pieces (up to `limit` bytes), taking over file holds. */

static void reset_stream(struct h2_stream *s, uint32_t code)
{
    if (!s->closed && !s->rst_pending) {
        s->rst_pending = true;
        s->rst_code = code;
        wake(s->c);
    }
}

static bool session_send(void *sess, struct verbd_exchange *x, bool last)
{
    struct h2_stream *s = sess;
    struct verbd_response *res = &x->res;
    uint64_t body = response_body_length(res);
    if (!x->head_sent)
        commit_head(s, x, last, body);
    if (s->send_body && body) {
        uint64_t n = outq_pieces(&s->q, res, s->length_left, 0);
        if (s->stated)
            s->length_left -= n;
        if (n < body)
            log_msg(LOG_ERROR, "%.*s %s: the handler wrote more than the length it stated",
                    (int)x->req.http.method.n, x->req.http.method.p, x->req.path);
        x->body_bytes += n;
    }
    response_clear_body(res);
    if (last) {
        s->out_last = true;
        if (s->send_body && s->stated && s->length_left) {
            log_msg(LOG_ERROR,
                    "%.*s %s: the handler wrote %" PRIu64 " bytes less than the length it "
                    "stated; resetting the stream",
                    (int)x->req.http.method.n, x->req.http.method.p, x->req.path, s->length_left);
            reset_stream(s, NGHTTP2_INTERNAL_ERROR);
        }
        if (res->trailers.len && s->send_body) {
            struct nv_list l = {0};
            nv_add_lines(x, &l, res->trailers.p, res->trailers.len, true);
            s->trailer_nv = l.v;
            s->ntrailers = l.n;
        }
        log_access(s->site->access_log, &s->c->peer.sa, &x->req, res->status, x->body_bytes);
        stats_response(s->site->stats, x->req.method_id, res->status, STATS_PROTO_H2);
    }
    if (s->deferred && !s->closed && (!outq_empty(&s->q) || s->out_last)) {
        s->deferred = false;
        nghttp2_session_resume_data(s->c->ng, s->id);
    }
    wake(s->c);
    return s->q.mem + s->q.lent < OUT_HIGH_WATER;
}

static void session_abort(void *sess, struct verbd_exchange *x)
{
    struct h2_stream *s = sess;
    if (!x->head_sent) {
        x->aborted = false;
        verbd_response_error(&x->res, 500, NULL);
        session_send(s, x, true);
        x->aborted = true;
    } else {
        log_msg(LOG_INFO, "%.*s %s: response aborted after its head; resetting the stream",
                (int)x->req.http.method.n, x->req.http.method.p, x->req.path);
        outq_drop(&s->q);
        reset_stream(s, NGHTTP2_INTERNAL_ERROR);
    }
    wake(s->c);
}

static void send_continue(struct h2_stream *s)
{
    static const nghttp2_nv nv[] = {{(uint8_t *)":status", (uint8_t *)"100", 7, 3, 0}};
    if (!s->closed)
        nghttp2_submit_headers(s->c->ng, NGHTTP2_FLAG_NONE, s->id, NULL, nv, 1, NULL);
}

static void session_read(void *sess, struct verbd_exchange *x)
{
    struct h2_stream *s = sess;
    if (x->req.http.expect_continue && !x->continued && !x->head_sent && !s->end_in) {
        x->continued = true;
        send_continue(s);
    }
    s->read_deadline = clock_ms() + stream_settings(s)->body_timeout_ms;
    s->rate_at = clock_ms();
    s->rate_bytes = 0;
    wake(s->c);
}

static void session_pause(void *sess, struct verbd_exchange *x, bool paused)
{
    struct h2_stream *s = sess;
    (void)x;
    if (!paused) {
        s->read_deadline = clock_ms() + stream_settings(s)->body_timeout_ms;
        s->rate_at = clock_ms(); /* a paused body owes no rate */
        s->rate_bytes = 0;
        wake(s->c);
    }
}

static void session_continue(void *sess, struct verbd_exchange *x)
{
    struct h2_stream *s = sess;
    if (x->req.http.expect_continue && !s->end_in)
        send_continue(s);
    wake(s->c);
}

static void session_interim(void *sess, struct verbd_exchange *x, int status, const char *fields,
                            size_t len)
{
    struct h2_stream *s = sess;
    if (s->closed)
        return;
    struct nv_list l = {0};
    size_t n;
    const char *v = decimal(arena_alloc(&x->arena, 24), (uint64_t)status, &n);
    nv_put(x, &l, ":status", 7, v, n);
    nv_add_lines(x, &l, fields, len, true);
    for (size_t i = 1; i < l.n; i++) /* the fields are the caller's, for this call only */
        l.v[i].flags = NGHTTP2_NV_FLAG_NONE;
    nghttp2_submit_headers(s->c->ng, NGHTTP2_FLAG_NONE, s->id, NULL, l.v, l.n, NULL);
    wake(s->c);
}

/* HTTP/2 has no 101 (RFC 9113 §8.6): verbd_upgrade() answers 0. */
static bool session_upgrade(void *sess, struct verbd_exchange *x)
{
    (void)sess, (void)x;
    return false;
}

static const struct vx_session_ops h2_ops = {
    .send = session_send,
    .abort = session_abort,
    .read = session_read,
    .pause = session_pause,
    .send_continue = session_continue,
    .send_interim = session_interim,
    .upgrade = session_upgrade,
};

/* nghttp2 asks for a stream's DATA: how much of what is queued, up to
 * length, goes in the next frame.  The bytes are not copied here:
 * send_data moves them to the connection's output. */
static ssize_t read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *user)
{
    (void)ng, (void)id, (void)buf, (void)user;
    struct h2_stream *s = src->ptr;
    uint64_t queued = outq_length(&s->q);
    size_t n = queued < length ? (size_t)queued : length;
    if (n == 0 && !s->out_last) {
        s->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (s->out_last && n == queued) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (s->ntrailers) {
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            nghttp2_submit_trailer(ng, s->id, s->trailer_nv, s->ntrailers);
        }
    }
    return (ssize_t)n;
}

/* How long a DATA frame may be: the library keeps it within the
 * client's windows and SETTINGS_MAX_FRAME_SIZE. */
static ssize_t data_length(nghttp2_session *ng, uint8_t type, int32_t id, int32_t conn_window,
                           int32_t stream_window, uint32_t max_frame, void *user)
{
    (void)ng, (void)type, (void)id, (void)conn_window, (void)stream_window, (void)max_frame;
    struct http2 *c = user;
    return c->tr.ops->sendfile ? FRAME_MAX : 16384;
}

/* A DATA frame goes out: its header, then its payload moved from the
 * stream's queue to the connection's output, memory copied once and file
 * ranges left to the transport's sendfile when the frame is large
 * enough, else read into the output. */
static int send_data(nghttp2_session *ng, nghttp2_frame *frame, const uint8_t *framehd,
                     size_t length, nghttp2_data_source *src, void *user)
{
    (void)ng, (void)frame;
    struct http2 *c = user;
    struct h2_stream *s = src->ptr;
    /* nghttp2_session_mem_send() goes from one no-copy DATA frame to the
     * next without returning: the gathered output is bounded here, and
     * the library offers this frame again at the next call. */
    if (c->gathered >= GATHER_MAX)
        return NGHTTP2_ERR_WOULDBLOCK;
    outq_bytes(&c->out, framehd, 9);
    bool ranges = c->tr.ops->sendfile && length >= SENDFILE_MIN;
    size_t moved = outq_move(&s->q, &c->out, length, ranges);
    c->gathered += 9 + length;
    if (moved < length) {
        /* The file shrank: the frame's length is kept with zeros, and the
         * stream, whose promised body is unkeepable, is reset. */
        log_msg(LOG_ERROR, "HTTP/2 stream %d: a file changed while sent", s->id);
        static const char zeros[256];
        for (size_t left = length - moved; left;) {
            size_t k = left < sizeof zeros ? left : sizeof zeros;
            outq_bytes(&c->out, zeros, k);
            left -= k;
        }
        outq_drop(&s->q);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return 0;
}

/* ---- requests ------------------------------------------------------------------ */

static struct h2_stream *stream_of(struct http2 *c, int32_t id)
{
    return nghttp2_session_get_stream_user_data(c->ng, id);
}

static bool span_eq(const char *p, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(p, lit, n) == 0;
}

/* The head's fields, collected: nghttp2 has checked them (RFC 9113
 * §8.2-8.3); what is left is verbd's own limits. */
static int on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    (void)ng, (void)flags;
    struct http2 *c = user;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    struct h2_stream *s = stream_of(c, frame->hd.stream_id);
    if (!s)
        return 0;
    const struct settings *set = settings_of(c);
    s->head_bytes += namelen + valuelen + 32;
    if (s->trailer_part) {
        if (s->head_bytes > set->max_header)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        buf_append(&s->trailers, name, namelen);
        buf_append(&s->trailers, ": ", 2);
        buf_append(&s->trailers, value, valuelen);
        buf_append(&s->trailers, "\r\n", 2);
        return 0;
    }
    if (s->refuse)
        return 0;
    if (s->head_bytes > set->max_header || (name[0] != ':' && ++s->nfields > set->max_fields)) {
        s->refuse = 431;
        return 0;
    }
    if (span_eq((const char *)name, namelen, ":path") && valuelen > set->max_target) {
        s->refuse = 414;
        return 0;
    }
    struct pair_len len = {(uint32_t)namelen, (uint32_t)valuelen};
    buf_reserve(&s->head, sizeof len + namelen + valuelen);
    char *p = s->head.p + s->head.len;
    memcpy(p, &len, sizeof len);
    memcpy(p + sizeof len, name, namelen);
    memcpy(p + sizeof len + namelen, value, valuelen);
    s->head.len += sizeof len + namelen + valuelen;
    return 0;
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
    struct http2 *c = user;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    struct h2_stream *s = stream_of(c, frame->hd.stream_id);
    if (s) { /* trailer fields */
        s->trailer_part = true;
        s->head_bytes = 0;
        return 0;
    }
    if (frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    s = new_stream(c, frame->hd.stream_id);
    if (!s)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    nghttp2_session_set_stream_user_data(ng, frame->hd.stream_id, s);
    return 0;
}

/* The next pair of a collected head. */
static bool next_pair(const struct buf *b, size_t *at, struct span *name, struct span *value)
{
    if (*at >= b->len)
        return false;
    struct pair_len len;
    memcpy(&len, b->p + *at, sizeof len);
    name->p = b->p + *at + sizeof len;
    name->n = len.name;
    value->p = name->p + len.name;
    value->n = len.value;
    *at += sizeof len + len.name + len.value;
    return true;
}

/* The collected head as the struct http_request the router expects,
 * copied into x's arena: method, target, the authority as the host, the
 * regular fields (cookie crumbs joined, RFC 9113 §8.2.3).  False if the
 * request is malformed (then the stream is reset). */
static bool build_request(struct http2 *c, struct h2_stream *s, struct verbd_exchange *x)
{
    struct buf *hb = &c->scratch;
    buf_reset(hb);
    struct span method = {0}, path = {0}, authority = {0}, host = {0}, cookie = {0};
    size_t at = 0, ncookies = 0;
    struct span name, value;
    const struct buf *b = &s->head;
    /* Pseudo-header fields first, then the rest (and the cookies joined),
     * all into one block the spans point into. */
    size_t total = b->len + 16;
    buf_reserve(hb, total * 2);
    while (next_pair(b, &at, &name, &value)) {
        if (span_eq(name.p, name.n, "cookie")) {
            ncookies++;
            cookie.n += value.n + (ncookies > 1 ? 2 : 0);
        }
    }
    char *base = hb->p;
#define PUT(sp, src)                                                                               \
    do {                                                                                           \
        (sp).p = base + hb->len;                                                                   \
        (sp).n = (src).n;                                                                          \
        memcpy(base + hb->len, (src).p, (src).n);                                                  \
        hb->len += (src).n;                                                                        \
    } while (0)
    at = 0;
    struct http_field *fields = c->host->h1->fields;
    size_t max_fields = settings_of(c)->max_fields;
    size_t nfields = 0;
    bool cookie_done = false;
    while (next_pair(b, &at, &name, &value)) {
        if (name.p[0] == ':') {
            if (span_eq(name.p, name.n, ":method"))
                PUT(method, value);
            else if (span_eq(name.p, name.n, ":path"))
                PUT(path, value);
            else if (span_eq(name.p, name.n, ":authority"))
                PUT(authority, value);
            continue;
        }
        if (nfields == max_fields)
            break; /* counted in on_header: not reached */
        struct http_field *f = &fields[nfields];
        if (span_eq(name.p, name.n, "cookie")) {
            if (cookie_done)
                continue;
            cookie_done = true;
            PUT(f->name, name);
            f->value.p = base + hb->len;
            f->value.n = 0;
            size_t at2 = 0;
            struct span n2, v2;
            bool first = true;
            while (next_pair(b, &at2, &n2, &v2)) {
                if (!span_eq(n2.p, n2.n, "cookie"))
                    continue;
                if (!first) {
                    memcpy(base + hb->len, "; ", 2);
                    hb->len += 2;
                    f->value.n += 2;
                }
                first = false;
                memcpy(base + hb->len, v2.p, v2.n);
                hb->len += v2.n;
                f->value.n += v2.n;
            }
        } else {
            PUT(f->name, name);
            PUT(f->value, value);
            if (span_eq(name.p, name.n, "host"))
                host = f->value;
        }
        nfields++;
    }
#undef PUT
    /* RFC 9113 §8.3.1: a Host that names another entity than :authority. */
    if (authority.p && host.p &&
        (authority.n != host.n || strncasecmp(authority.p, host.p, host.n) != 0))
        return false;
    struct http_request h = {0};
    h.method = method;
    h.minor = 1;
    h.fields = fields;
    h.nfields = nfields;
    h.keep_alive = true;
    h.host = authority.p ? authority : host;
    if (!path.p) { /* CONNECT: only the authority (RFC 9113 §8.5) */
        h.form = TARGET_AUTHORITY;
        h.target = authority;
        h.path = (struct span){base + hb->len, 0};
    } else if (path.n == 1 && path.p[0] == '*') {
        h.form = TARGET_ASTERISK;
        h.target = h.path = path;
    } else {
        h.form = TARGET_ORIGIN;
        h.target = path;
        const char *q = memchr(path.p, '?', path.n);
        h.path = (struct span){path.p, q ? (size_t)(q - path.p) : path.n};
        if (q)
            h.query = (struct span){q + 1, path.n - h.path.n - 1};
    }
    struct span cl = http_fields_find(fields, nfields, "content-length");
    struct span expect = http_fields_find(fields, nfields, "expect");
    h.expect_continue =
        expect.p && expect.n == 12 && strncasecmp(expect.p, "100-continue", 12) == 0;
    if (cl.p) {
        h.framing = BODY_LENGTH;
        for (size_t i = 0; i < cl.n; i++)
            h.content_length = h.content_length * 10 + (uint64_t)(cl.p[i] - '0');
    } else if (!s->end_in) {
        h.framing = BODY_CHUNKED; /* a body of no stated length */
    }
    h.head_len = hb->len;
    vx_take_request(x, &h, base);
    x->req.protocol = "HTTP/2.0";
    return true;
}

/* A complete head: its exchange, decided and started (outside nghttp2's
 * callbacks: after the read that completed it). */
static void start_stream(struct http2 *c, struct h2_stream *s)
{
    s->started = true;
    struct verbd_exchange *x = vx_new(c->host->h1->loop, &h2_ops, s);
    s->x = x;
    x->req.peer = c->peer.sa.sa_family ? &c->peer.sa : NULL;
    x->req.tls = c->lis->tls;
    x->req.local = (const struct sockaddr *)&c->lis->addr;
    if (!build_request(c, s, x)) {
        log_msg(LOG_INFO, "HTTP/2 stream %d: malformed request (Host and :authority differ)",
                s->id);
        s->site = c->lis->sites[0];
        site_hold(s->site);
        x->finished = x->aborted = true; /* nothing to answer */
        reset_stream(s, NGHTTP2_PROTOCOL_ERROR);
        return;
    }
    buf_reset(&s->head);
    s->site = site_select(c->lis, x->req.http.host.p, x->req.http.host.n);
    site_hold(s->site);
    x->log = s->site->error_log;
    struct log_target *before = log_use(x->log);
    if (s->refuse) {
        x->req.max_body = 0;
        verbd_response_error(&x->res, s->refuse,
                             s->refuse == 414 ? "The request target is too long."
                                              : "The request header fields are too large.");
        verbd_finish(x);
    } else if (c->sni && site_misdirected(c->lis, c->sni, s->site)) {
        x->req.max_body = 0;
        verbd_response_error(&x->res, 421,
                             "This connection was set up for another host name (TLS SNI).");
        verbd_finish(x);
    } else {
        const struct route_table *routes = &s->site->routes;
        enum verdict v = route_decide(routes, x);
        if (!(v == VERDICT_REFUSE && !x->req.mapping && s->site->redirect_to_https &&
              site_redirect_to_https(c->host->h1->listeners, c->host->h1->nlisteners, x)))
            route_start(routes, v, x);
    }
    log_use(before);
}

/* Ends the connection with GOAWAY ENHANCE_YOUR_CALM: what the client
 * sent is read no further (the library wants no more input once the
 * GOAWAY is queued), and the connection closes once it is written. */
static void calm(struct http2 *c, const char *what)
{
    if (c->goaway && nghttp2_session_want_read(c->ng) == 0)
        return;
    log_msg(LOG_INFO, "HTTP/2 connection: %s flood, GOAWAY ENHANCE_YOUR_CALM", what);
    c->goaway = true;
    nghttp2_session_terminate_session(c->ng, NGHTTP2_ENHANCE_YOUR_CALM);
}

/* Counts a frame against its budget; false once it is over. */
static bool flood_count(struct http2 *c, enum flood kind)
{
    uint64_t now = clock_ms();
    if (now - c->flood_start >= FLOOD_WINDOW_MS) {
        c->flood_start = now;
        memset(c->flood_count, 0, sizeof c->flood_count);
    }
    if (++c->flood_count[kind] <= floods[kind].budget)
        return true;
    calm(c, floods[kind].name);
    return false;
}

/* Every frame's header, before its payload: the floods that a header
 * shows. */
static int on_begin_frame(nghttp2_session *ng, const nghttp2_frame_hd *hd, void *user)
{
    (void)ng;
    struct http2 *c = user;
    switch (hd->type) {
    case NGHTTP2_RST_STREAM: flood_count(c, FLOOD_RESET); break;
    case NGHTTP2_PING:
        if (!(hd->flags & NGHTTP2_FLAG_ACK))
            flood_count(c, FLOOD_PING);
        break;
    case NGHTTP2_SETTINGS:
        if (!(hd->flags & NGHTTP2_FLAG_ACK))
            flood_count(c, FLOOD_SETTINGS);
        break;
    case NGHTTP2_DATA:
        if (!hd->length && !(hd->flags & NGHTTP2_FLAG_END_STREAM))
            flood_count(c, FLOOD_EMPTY);
        break;
    case NGHTTP2_HEADERS:
    case NGHTTP2_CONTINUATION:
        if (!hd->length && !(hd->flags & NGHTTP2_FLAG_END_HEADERS))
            flood_count(c, FLOOD_EMPTY);
        break;
    default: break;
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user)
{
    (void)ng, (void)flags;
    struct http2 *c = user;
    struct h2_stream *s = stream_of(c, id);
    if (!s)
        return 0;
    s->in_total += len;
    s->rate_bytes += len;
    s->read_deadline = clock_ms() + stream_settings(s)->body_timeout_ms;
    struct verbd_exchange *x = s->x;
    bool dropped = s->body_over || (x && (x->finished || x->body_done));
    if (!dropped && x && s->in_total > x->req.max_body) {
        s->body_over = true;
        dropped = true;
    }
    if (dropped) {
        s->to_consume += len;
        if (s->draining && (s->drained += len) > DRAIN_MAX_BYTES)
            reset_stream(s, NGHTTP2_NO_ERROR);
        return 0;
    }
    buf_append(&s->in, data, len);
    return 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
    (void)ng;
    struct http2 *c = user;
    /* A window opened a few bytes at a time makes the response go out in
     * as many tiny DATA frames (data dribble). */
    if (frame->hd.type == NGHTTP2_WINDOW_UPDATE &&
        frame->window_update.window_size_increment < DRIBBLE_BYTES)
        flood_count(c, FLOOD_DRIBBLE);
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    struct h2_stream *s = stream_of(c, frame->hd.stream_id);
    if (!s)
        return 0;
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
        s->end_in = true;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
        s->ready = true;
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t code, void *user)
{
    (void)ng;
    struct http2 *c = user;
    struct h2_stream *s = stream_of(c, id);
    if (!s)
        return 0;
    s->closed = true;
    if (code != NGHTTP2_NO_ERROR && code != NGHTTP2_CANCEL)
        log_msg(LOG_INFO, "HTTP/2 stream %d closed: %s", id, nghttp2_http2_strerror(code));
    return 0;
}

static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
    struct http2 *c = user;
    /* A stream the client made us reset (a malformed request, a flow
     * control error) costs what one it reset itself does. */
    if (frame->hd.type == NGHTTP2_RST_STREAM) {
        uint32_t code = frame->rst_stream.error_code;
        if (code != NGHTTP2_NO_ERROR && code != NGHTTP2_CANCEL && code != NGHTTP2_REFUSED_STREAM &&
            code != NGHTTP2_INTERNAL_ERROR)
            flood_count(c, FLOOD_RESET);
    }
    /* Our side ended while the client's is open (its body unread, or
     * still coming): drop the rest of it, within DRAIN_MS and
     * DRAIN_MAX_BYTES, then tell it to stop (RFC 9113 §8.1). */
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
        !nghttp2_session_get_stream_remote_close(ng, frame->hd.stream_id)) {
        struct h2_stream *s = stream_of(c, frame->hd.stream_id);
        if (s && !s->draining) {
            s->draining = true;
            s->drain_deadline = clock_ms() + DRAIN_MS;
        }
    }
    return 0;
}

static int on_invalid_frame(nghttp2_session *ng, const nghttp2_frame *frame, int error, void *user)
{
    (void)ng, (void)user;
    log_msg(LOG_INFO, "HTTP/2 stream %d: invalid frame: %s", frame->hd.stream_id,
            nghttp2_strerror(error));
    return 0;
}

/* ---- the streams' work ----------------------------------------------------------- */

/* Delivers a stream's received body to its reader, and its end. */
static void feed_body(struct h2_stream *s)
{
    struct verbd_exchange *x = s->x;
    if (!x->reading || x->paused || x->finished)
        return;
    if (!s->body_over && s->in_total > x->req.max_body)
        s->body_over = true;
    if (s->body_over) {
        s->to_consume += s->in.len - s->in_off;
        buf_reset(&s->in);
        s->in_off = 0;
        log_msg(LOG_INFO, "HTTP/2 stream %d: request body over max_body", s->id);
        vx_body_done(x, 413);
        return;
    }
    if (s->in_off < s->in.len) {
        size_t n = s->in.len - s->in_off;
        const char *p = s->in.p + s->in_off;
        s->in_off = s->in.len;
        s->to_consume += n;
        vx_body_data(x, p, n);
    }
    if (s->in_off == s->in.len) {
        buf_reset(&s->in);
        s->in_off = 0;
        if (s->end_in && x->reading && !x->paused && !x->body_done) {
            if (s->trailers.len) {
                buf_append(&s->trailers, "\r\n", 2);
                vx_take_trailers(x, s->trailers.p, s->trailers.len);
            }
            vx_body_done(x, 0);
        }
    }
}

/* Body bytes nobody will read (the exchange finished without them). */
static void drop_body(struct h2_stream *s)
{
    s->to_consume += s->in.len - s->in_off;
    buf_free(&s->in);
    s->in_off = 0;
}

/* One pass over the streams: start, feed, reset, end.  True if anything
 * was done that may have produced output. */
static bool streams_work(struct http2 *c, bool *closed)
{
    bool did = false;
    struct h2_stream *next;
    for (struct h2_stream *s = c->streams; s; s = next) {
        next = s->next;
        if (s->ready && !s->started) {
            start_stream(c, s);
            did = true;
            if (*closed)
                return did;
        }
        struct verbd_exchange *x = s->x;
        if (x && !s->closed) {
            if (!x->finished && !x->body_done)
                feed_body(s);
            if (*closed)
                return did;
            if (x->finished && (x->body_done || !x->reading) && s->in.len)
                drop_body(s);
        }
        if (s->to_consume) {
            if (!s->closed)
                nghttp2_session_consume(c->ng, s->id, s->to_consume);
            else
                nghttp2_session_consume_connection(c->ng, s->to_consume);
            s->to_consume = 0;
            did = true;
        }
        if (s->rst_pending && !s->closed) {
            s->rst_pending = false;
            nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, s->id, s->rst_code);
            did = true;
        }
        if (s->closed) {
            if (s->in.len > s->in_off)
                nghttp2_session_consume_connection(c->ng, s->in.len - s->in_off);
            free_stream(s);
            did = true;
        }
    }
    return did;
}

/* Streams whose module waits for room, now under the bound. */
static bool writable_work(struct http2 *c, bool *closed)
{
    bool did = false;
    struct h2_stream *next;
    for (struct h2_stream *s = c->streams; s && !*closed; s = next) {
        next = s->next;
        if (s->x && vx_wants_writable(s->x) && !s->closed &&
            s->q.mem + s->q.lent < OUT_HIGH_WATER) {
            vx_writable(s->x);
            did = true;
        }
    }
    return did;
}

/* ---- the connection -------------------------------------------------------------- */

/* Gives input to nghttp2.  0: taken; 1: a flood the library bounds,
 * answered with GOAWAY ENHANCE_YOUR_CALM as verbd's own are (no more
 * input is wanted); -1: the connection failed. */
static int feed(struct http2 *c, const void *data, size_t n)
{
    ssize_t r = nghttp2_session_mem_recv(c->ng, data, n);
    if (r == NGHTTP2_ERR_FLOODED || r == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS) {
        calm(c, r == NGHTTP2_ERR_FLOODED ? "unread ACK" : "CONTINUATION");
        return 1;
    }
    if (r < 0) {
        log_msg(LOG_INFO, "HTTP/2 connection failed: %s", nghttp2_strerror((int)r));
        return -1;
    }
    return 0;
}

static ssize_t read_input(struct http2 *c)
{
    char buf[READ_CHUNK];
    ssize_t total = 0;
    while (total < READ_TURN) {
        ssize_t n =
            transport_read_some(&c->tr, buf, sizeof buf, c->peer_shut, &c->drained, &c->eof);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        total += n;
        int r = feed(c, buf, (size_t)n);
        if (r < 0)
            return -1;
        if (r > 0) {
            c->drained = true;
            break;
        }
        if (c->drained)
            break;
    }
    if (total) {
        clock_new_epoch();
        stats_received((uint64_t)total);
    }
    return total;
}

/* Gathers what nghttp2 has to send and writes it.  1: all written;
 * 0: the transport is full; -1: error. */
static int flush(struct http2 *c)
{
    for (;;) {
        /* Bounded by what is unwritten and by the buffer's length: the
         * buffer starts over only once all of it is written, so adding to
         * one that is partly written would make it grow (and move). */
        while (c->gathered < GATHER_MAX && c->out.out.len < GATHER_MAX) {
            const uint8_t *p;
            ssize_t n = nghttp2_session_mem_send(c->ng, &p);
            if (n < 0) {
                log_msg(LOG_INFO, "HTTP/2 connection failed: %s", nghttp2_strerror((int)n));
                return -1;
            }
            if (n == 0)
                break;
            outq_bytes(&c->out, p, (size_t)n);
            c->gathered += (uint64_t)n;
        }
        if (outq_empty(&c->out))
            break;
        ssize_t n = outq_write(&c->out, &c->tr);
        if (n == 0) {
            log_msg(LOG_ERROR, "HTTP/2: a file changed while sent");
            return -1; /* DATA of a length its file no longer has */
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (!c->blocked)
                    c->write_deadline = clock_ms() + settings_of(c)->send_timeout_ms;
                c->blocked = true;
                return 0;
            }
            return -1;
        }
        stats_sent((uint64_t)n);
        c->blocked = false;
        c->write_deadline = 0;
        c->gathered -= (uint64_t)n;
    }
    if (c->out.out.cap > 4 * GATHER_MAX)
        buf_free(&c->out.out);
    return 1;
}

static uint64_t earlier(uint64_t a, uint64_t b)
{
    return !a ? b : !b ? a : a < b ? a : b;
}

/* A stream whose module waits for more of its body. */
static bool awaits_body(const struct h2_stream *s)
{
    const struct verbd_exchange *x = s->x;
    return x && x->reading && !x->paused && !x->body_done && !s->end_in && !s->closed;
}

/* The end of the stream's min_rate window, or 0 if none is open. */
static uint64_t rate_end(const struct h2_stream *s)
{
    uint64_t window = stream_settings(s)->min_rate_window_ms;
    return s->rate_at && window ? s->rate_at + window : 0;
}

/* A min_rate window that ended: true if the body kept the rate (a new
 * window opens), false if it did not. */
static bool kept_rate(struct h2_stream *s, uint64_t now)
{
    uint64_t end = rate_end(s);
    if (!end || now < end)
        return true;
    const struct settings *set = stream_settings(s);
    bool kept = s->rate_bytes * 1000 >= set->min_rate * set->min_rate_window_ms;
    s->rate_at = now;
    s->rate_bytes = 0;
    return kept;
}

/* The earliest deadline: output that does not leave, a body that does not
 * come, an idle connection. */
static uint64_t current_deadline(const struct http2 *c)
{
    if (c->lingering)
        return c->linger_deadline;
    uint64_t due = c->blocked ? c->write_deadline : 0;
    if (!c->nstreams)
        due = earlier(due, c->idle_deadline);
    for (const struct h2_stream *s = c->streams; s; s = s->next) {
        if (awaits_body(s))
            due = earlier(earlier(due, s->read_deadline), rate_end(s));
        if (s->draining && !s->closed && !s->rst_pending)
            due = earlier(due, s->drain_deadline);
    }
    return due;
}

static void on_timer(void *arg);

static void arm_timer(struct http2 *c)
{
    uint64_t due = current_deadline(c);
    if (due && (!loop_timer_armed(&c->timer) || c->timer.at > due))
        loop_timer_at(c->host->h1->loop, &c->timer, due, on_timer, c);
}

static void on_timer(void *arg)
{
    struct http2 *c = arg;
    uint64_t now = clock_ms();
    if (c->lingering) {
        if (now >= c->linger_deadline)
            c->failed = true;
        h2_run(c);
        return;
    }
    if (c->blocked && c->write_deadline && now >= c->write_deadline) {
        log_msg(LOG_DEBUG, "HTTP/2 send timeout");
        c->failed = true;
        h2_run(c);
        return;
    }
    if (!c->nstreams && c->idle_deadline && now >= c->idle_deadline && !c->goaway) {
        c->goaway = true;
        nghttp2_session_terminate_session(c->ng, NGHTTP2_NO_ERROR);
    }
    for (struct h2_stream *s = c->streams; s; s = s->next) {
        const char *why = !awaits_body(s)           ? NULL
                          : now >= s->read_deadline ? "request body timeout"
                          : !kept_rate(s, now)      ? "request body slower than min_rate"
                                                    : NULL;
        if (why) {
            log_msg(LOG_INFO, "HTTP/2 stream %d: %s", s->id, why);
            s->body_over = true; /* whatever still comes is dropped */
            vx_body_done(s->x, 408);
            reset_stream(s, NGHTTP2_CANCEL);
        }
        if (s->draining && !s->closed && now >= s->drain_deadline)
            reset_stream(s, NGHTTP2_NO_ERROR);
    }
    h2_run(c);
}

static void begin_linger(struct http2 *c)
{
    c->tr.ops->shutdown(&c->tr);
    c->lingering = true;
    c->linger_deadline = clock_ms() + LINGER_MS;
}

/* Drops what the client still sends; true once it has closed (or sent
 * too much). */
static bool linger(struct http2 *c)
{
    char scratch[4096];
    for (;;) {
        ssize_t n = c->tr.ops->read(&c->tr, scratch, sizeof scratch);
        if (n > 0) {
            c->lingered += (size_t)n;
            if (c->lingered > LINGER_MAX_BYTES)
                return true;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return false;
        return true;
    }
}

static void run_once(struct http2 *c)
{
    if (c->lingering) {
        if (c->failed || c->eof || linger(c))
            http2_close(c);
        else
            arm_timer(c);
        return;
    }
    for (int turn = 0; !c->failed; turn++) {
        bool progress = c->kick;
        c->kick = false;
        if (!c->drained && !c->eof && !c->blocked && nghttp2_session_want_read(c->ng)) {
            ssize_t n = read_input(c);
            if (n < 0) {
                c->failed = true;
                break;
            }
            progress = n > 0;
        }
        progress |= streams_work(c, c->closed);
        if (*c->closed)
            return;
        int f = flush(c);
        if (f < 0) {
            c->failed = true;
            break;
        }
        progress |= writable_work(c, c->closed);
        if (*c->closed)
            return;
        if (c->eof && !c->failed) {
            /* The client closed its side: nothing more can be asked, and
             * an HTTP/2 client reads its answers before closing. */
            c->failed = true;
            break;
        }
        if (!nghttp2_session_want_read(c->ng) && !nghttp2_session_want_write(c->ng) &&
            outq_empty(&c->out)) {
            begin_linger(c); /* finished: GOAWAY sent, or the session ended */
            break;
        }
        if (c->host->h1->stopping && !c->goaway) {
            c->goaway = true;
            nghttp2_submit_goaway(c->ng, NGHTTP2_FLAG_NONE,
                                  nghttp2_session_get_last_proc_stream_id(c->ng), NGHTTP2_NO_ERROR,
                                  NULL, 0);
            progress = true;
        }
        if (c->goaway && !c->nstreams && outq_empty(&c->out) &&
            !nghttp2_session_want_write(c->ng)) {
            begin_linger(c);
            break;
        }
        if (!progress || f == 0)
            break;
    }
    if (c->failed) {
        http2_close(c);
        return;
    }
    if (c->lingering) {
        run_once(c); /* drain at once: the client may have closed already */
        return;
    }
    arm_timer(c);
}

/* Runs the session's work; not re-entered from a module's call, which
 * only leaves work for the run in progress. */
static void h2_run(struct http2 *c)
{
    if (c->in_run)
        return;
    bool closed = false;
    c->in_run = true;
    c->closed = &closed;
    loop_defer_cancel(c->host->h1->loop, &c->run);
    run_once(c);
    if (!closed) {
        c->in_run = false;
        c->closed = NULL;
    }
}

static void on_io(void *arg, uint32_t events)
{
    struct http2 *c = arg;
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        c->peer_shut = true;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR) ||
        ((events & EPOLLOUT) && c->tr.read_wants_write))
        c->drained = false;
    if (events & EPOLLOUT)
        c->blocked = false;
    loop_defer(c->host->h1->loop, &c->run, run_deferred, c);
}

void http2_ready(struct http2 *c)
{
    c->drained = false;
    c->blocked = false;
    h2_run(c);
}

/* ---- opening and closing ---------------------------------------------------------- */

static void host_add(struct http2_host *h, struct http2 *c)
{
    if (h->nconns == h->cap_conns) {
        size_t cap = h->cap_conns ? h->cap_conns * 2 : 16;
        struct http2 **p = realloc(h->conns, cap * sizeof *p);
        if (!p)
            abort();
        h->conns = p;
        h->cap_conns = cap;
    }
    c->index = (uint32_t)h->nconns;
    h->conns[h->nconns++] = c;
}

static nghttp2_session_callbacks *callbacks;
static nghttp2_option *options;

/* libnghttp2 allocates and frees several small blocks per stream (the
 * stream, its frames, their queue items): they are kept per thread by
 * size class for the next ones, up to POOL_KEEP bytes a class, instead
 * of going through malloc each time. */
#define POOL_CLASSES 6 /* 64, 128, ... 2048 bytes */
#define POOL_MIN 64
#define POOL_KEEP (128 * 1024)

struct pool_head {
    size_t size; /* what the block holds: its class's, or what was asked */
    union {
        struct pool_head *next; /* while kept */
        max_align_t align;
    } u;
};

static _Thread_local struct {
    struct pool_head *free[POOL_CLASSES];
    size_t kept[POOL_CLASSES];
} pool;

static int pool_class(size_t size)
{
    int k = 0;
    for (size_t cap = POOL_MIN; cap < size; cap <<= 1)
        if (++k == POOL_CLASSES)
            return -1;
    return k;
}

static void *pool_malloc(size_t size, void *ud)
{
    (void)ud;
    int k = pool_class(size);
    struct pool_head *h;
    if (k >= 0 && (h = pool.free[k])) {
        pool.free[k] = h->u.next;
        pool.kept[k] -= h->size;
        return &h->u;
    }
    size_t cap = k >= 0 ? (size_t)POOL_MIN << k : size;
    h = malloc(offsetof(struct pool_head, u) + (cap ? cap : 1));
    if (!h)
        return NULL;
    h->size = cap;
    return &h->u;
}

static void pool_free(void *p, void *ud)
{
    (void)ud;
    if (!p)
        return;
    struct pool_head *h = (struct pool_head *)((char *)p - offsetof(struct pool_head, u));
    int k = pool_class(h->size);
    if (k < 0 || h->size != (size_t)POOL_MIN << k || pool.kept[k] + h->size > POOL_KEEP) {
        free(h);
        return;
    }
    h->u.next = pool.free[k];
    pool.free[k] = h;
    pool.kept[k] += h->size;
}

static void *pool_calloc(size_t n, size_t size, void *ud)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = pool_malloc(n * size, ud);
    if (p)
        memset(p, 0, n * size);
    return p;
}

static void *pool_realloc(void *p, size_t size, void *ud)
{
    if (!p)
        return pool_malloc(size, ud);
    struct pool_head *h = (struct pool_head *)((char *)p - offsetof(struct pool_head, u));
    if (size <= h->size)
        return p;
    void *q = pool_malloc(size, ud);
    if (!q)
        return NULL;
    memcpy(q, p, h->size);
    pool_free(p, ud);
    return q;
}

static nghttp2_mem pool_mem = {NULL, pool_malloc, pool_free, pool_calloc, pool_realloc};

static bool setup_library(void)
{
    if (callbacks)
        return true;
    if (nghttp2_session_callbacks_new(&callbacks) != 0)
        return false;
    nghttp2_session_callbacks_set_on_begin_frame_callback(callbacks, on_begin_frame);
    nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(callbacks, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, on_frame_send);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(callbacks, on_invalid_frame);
    nghttp2_session_callbacks_set_send_data_callback(callbacks, send_data);
    nghttp2_session_callbacks_set_data_source_read_length_callback(callbacks, data_length);
    if (nghttp2_option_new(&options) != 0)
        return false;
    /* The window is given back as the reader takes the body. */
    nghttp2_option_set_no_auto_window_update(options, 1);
    nghttp2_option_set_max_continuations(options, MAX_CONTINUATIONS);
    nghttp2_option_set_max_outbound_ack(options, MAX_OUTBOUND_ACK);
    nghttp2_option_set_max_settings(options, MAX_SETTINGS_ENTRIES);
    nghttp2_option_set_stream_reset_rate_limit(options, RESET_BURST, RESET_RATE);
    return true;
}

void http2_host_init(struct http2_host *h, struct http1_host *h1)
{
    memset(h, 0, sizeof *h);
    h->h1 = h1;
}

void http2_host_free(struct http2_host *h)
{
    while (h->nconns)
        http2_close(h->conns[h->nconns - 1]);
    while (h->spare) {
        struct h2_stream *s = h->spare;
        h->spare = s->next;
        h->nspare = MAX_SPARE_STREAMS; /* freed, not kept */
        spare_stream(h, s);
    }
    h->nspare = 0;
    free(h->conns);
    h->conns = NULL;
    h->cap_conns = 0;
}

struct http2 *http2_open(struct http2_host *h, const struct transport *t, bool watch,
                         const struct listener *lis, const char *sni, const struct sockaddr *peer,
                         socklen_t peer_len, const void *pre, size_t pre_len)
{
    struct http2 *c = calloc(1, sizeof *c);
    if (!c || !setup_library()) {
        free(c);
        t->ops->close((struct transport *)t);
        return NULL;
    }
    c->host = h;
    c->lis = lis;
    c->tr = *t;
    c->counted_as = STATS_CONN_NONE;
    loop_defer_init(&c->run);
    loop_timer_init(&c->timer);
    if (peer)
        memcpy(&c->peer, peer, peer_len < sizeof c->peer ? peer_len : sizeof c->peer);
    if ((sni && lis->nsites > 1 && !(c->sni = strdup(sni))) ||
        nghttp2_session_server_new3(&c->ng, callbacks, c, options, &pool_mem) != 0) {
        free(c->sni);
        c->tr.ops->close(&c->tr);
        free(c);
        return NULL;
    }
    host_add(h, c);
    /* An h2c connection was accepted, and its first bytes read, by the
     * HTTP/1 session, which counted both. */
    if (pre) {
        c->counted_as = STATS_CONN_IDLE;
        stats_conn_adopt(STATS_CONN_IDLE);
    }
    count_state(c);
    stats_conn_protocol(STATS_PROTO_H2);
    const struct settings *set = settings_of(c);
    c->idle_deadline = clock_ms() + set->idle_timeout_ms;
    c->flood_start = clock_ms();
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, MAX_STREAMS},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)set->max_header},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        /* No RFC 7540 priority tree (deprecated by RFC 9113): the library
         * then keeps no closed streams for it and schedules by RFC 9218's
         * urgency, which costs less per stream. */
        {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
    };
    if (nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]) != 0 ||
        nghttp2_session_set_local_window_size(c->ng, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW) != 0) {
        http2_close(c);
        return NULL;
    }
    if (watch) {
        if (loop_watch_add(h->h1->loop, &c->watch, c->tr.fd,
                           EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, on_io, c) < 0) {
            http2_close(c);
            return NULL;
        }
        c->watched = true;
    }
    if (pre_len) {
        if (feed(c, pre, pre_len) < 0) {
            http2_close(c);
            return NULL;
        }
    }
    h2_run(c);
    return c;
}

void http2_stop(struct http2 *c)
{
    if (!c->in_run)
        wake(c);
}

void http2_close(struct http2 *c)
{
    struct http2_host *h = c->host;
    if (c->closed)
        *c->closed = true;
    while (c->streams) {
        c->streams->closed = true;
        free_stream(c->streams);
    }
    nghttp2_session_del(c->ng);
    outq_drop(&c->out);
    outq_free_segs(&c->out);
    buf_free(&c->out.out);
    buf_free(&c->scratch);
    loop_timer_stop(h->h1->loop, &c->timer);
    loop_defer_cancel(h->h1->loop, &c->run);
    if (c->watched)
        loop_watch_del(h->h1->loop, &c->watch, true);
    if (c->blocked && c->tr.ops->abort)
        c->tr.ops->abort(&c->tr);
    else
        c->tr.ops->close(&c->tr);
    stats_conn_move(c->counted_as, STATS_CONN_NONE);
    struct http2 *last = h->conns[--h->nconns];
    h->conns[c->index] = last;
    last->index = c->index;
    free(c->sni);
    free(c);
}
