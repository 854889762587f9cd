#include "engine/http1.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/stats.h"
#include "engine/http2.h"
#include "engine/outq.h"
#include "engine/site.h"
#include "http/method.h"
#include "http/status.h"
#include "route/route.h"

/* An exchange may queue this much output before verbd_send() says wait,
 * and no further pipelined request is started while as much is queued, so
 * a client that never reads cannot grow our memory. */
#define OUT_HIGH_WATER (64 * 1024)
/* File bodies up to this size are copied into the output so that header
 * and body leave in one writev; larger ones go by sendfile. */
#define INLINE_FILE_MAX (16 * 1024)
/* After answering and closing our side, read and drop what the client
 * still sends, for at most this long and this much, so our last response
 * is not destroyed by a reset. */
#define LINGER_MS 2000
#define LINGER_MAX_BYTES (64 * 1024)
/* A response head without the handler's fields, at most: the longest
 * status line (or "HTTP/1.1 <20 digits> Unknown"), Server, Date,
 * Content-Length or Transfer-Encoding, Connection and the empty line. */
#define HEAD_FIXED_MAX (64 + 15 + CLOCK_DATE_FIELD_LEN + 28 + 20 + 2 + 24 + 2)

enum conn_state {
    CONN_HEAD,     /* waiting for (or parsing) a request head */
    CONN_EXCHANGE, /* an exchange is in flight */
    CONN_DISCARD,  /* dropping the rest of a body nobody reads */
    CONN_LINGER,   /* our side is shut: draining until the client closes */
};

/* How the response of the exchange in flight is framed. */
enum framing { FRAME_LENGTH, FRAME_CHUNKED, FRAME_CLOSE };

struct http1 {
    struct http1_host *host;
    const struct listener *lis;
    char *sni; /* the TLS server name, where several sites share lis */
    struct transport tr;
    struct loop_watch watch;
    struct loop_defer run;
    struct loop_timer timer;
    uint32_t index; /* in host->conns */
    enum conn_state state;
    int8_t counted_as; /* enum stats_conn: its state in the counters */
    bool watched;
    bool watch_wanted; /* watched once its first run leaves it open */
    bool in_run;       /* http1_run is on the stack */
    bool *closed;      /* set when the session is freed during a run */
    bool idle;         /* between requests, nothing received yet */
    bool eof;          /* the client will send nothing more */
    bool drained;      /* the transport had no more input at the last read */
    bool peer_shut;    /* the client closed its side: read to the end */
    bool read_failed;  /* the transport reported an error on reading */
    bool close_after;  /* close once the output is flushed */
    bool linger;       /* ... after draining what the client still sends */
    bool reset;        /* close with a reset (close_stalled) */
    bool tunnel;       /* switched protocols: bytes pass as they are, both ways */
    bool fresh;        /* nothing parsed yet: the input may be the HTTP/2 preface */
    bool to_http2;     /* ... and it was: the connection goes to the HTTP/2 session */

    /* The request body of the exchange in flight (or being discarded). */
    bool has_body;
    bool body_chunked;
    uint64_t body_left;  /* Content-Length bytes still to come */
    uint64_t body_limit; /* what is read of it at most */
    struct chunked chunked;
    struct buf trailers; /* a chunked body's trailer section, as it arrives */

    /* The response of the exchange in flight. */
    struct verbd_exchange *x;
    struct site *site; /* the exchange's origin server, kept over a reload */
    enum framing framing;
    bool send_body; /* not HEAD, not 1xx/204/304 */
    bool keep_alive;
    uint64_t length_left; /* FRAME_LENGTH: body bytes still owed */

    char *in; /* input buffer, or NULL when empty */
    size_t in_start, in_len;
    struct outq q; /* the output; its buffer from the host's pool */
    uint64_t read_deadline, write_deadline;
    /* min_rate: a window opens when a module starts (or resumes) reading
     * a body, and when output backs up; bytes moved in it are counted. */
    uint64_t in_window_at, in_window_bytes; /* 0: no window */
    uint64_t out_window_at, out_window_bytes;
    uint32_t lingered;
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } peer;
};

static void http1_run(struct http1 *c);
static const struct vx_session_ops http1_ops;

/* Keeps the connection counters (core/stats.h) in step with the state:
 * called wherever state or idle change. */
static void count_state(struct http1 *c)
{
    int now = c->state == CONN_HEAD      ? (c->idle ? STATS_CONN_IDLE : STATS_CONN_READING)
              : c->state == CONN_DISCARD ? STATS_CONN_READING
                                         : STATS_CONN_WRITING;
    stats_conn_move(c->counted_as, now);
    c->counted_as = (int8_t)now;
}

/* ---- the host: buffers and the list of sessions ----------------------------- */

static char *take_buf(struct http1_host *h)
{
    if (h->nspare)
        return h->spare[--h->nspare];
    char *p = malloc(h->buf_size);
    if (!p)
        abort();
    return p;
}

#define MAX_SPARE_BUFS 64

static void give_buf(struct http1_host *h, char *buf)
{
    if (h->nspare < MAX_SPARE_BUFS)
        h->spare[h->nspare++] = buf;
    else
        free(buf);
}

int http1_host_init(struct http1_host *h, struct loop *loop, const struct settings *s)
{
    memset(h, 0, sizeof *h);
    h->loop = loop;
    h->limits = settings_limits(s);
    h->buf_size = s->max_header + 4096;
    h->fields = calloc(s->max_fields ? s->max_fields : 1, sizeof *h->fields);
    h->spare = calloc(MAX_SPARE_BUFS, sizeof *h->spare);
    response_init(&h->scratch);
    return h->fields && h->spare ? 0 : -1;
}

void http1_host_free(struct http1_host *h)
{
    while (h->nconns)
        http1_close(h->conns[h->nconns - 1]);
    for (size_t i = 0; i < h->nspare; i++)
        free(h->spare[i]);
    free(h->spare);
    free(h->conns);
    free(h->fields);
    response_free(&h->scratch);
    vx_pool_free();
}

/* The limits in force: the site of the exchange in flight, else the
 * address's default site. */
static const struct settings *settings_of(const struct http1 *c)
{
    return c->site ? &c->site->settings : &c->lis->sites[0]->settings;
}

/* ---- opening and closing ------------------------------------------------------ */

static void on_io(void *arg, uint32_t events);
static void take_input(struct http1 *c, uint32_t events);
static void on_timer(void *arg);
static void run_deferred(void *arg)
{
    http1_run(arg);
}

struct http1 *http1_open(struct http1_host *h, const struct transport *t, bool watch,
                         const struct listener *lis, const char *sni, const struct sockaddr *peer,
                         socklen_t peer_len)
{
    struct http1 *c = calloc(1, sizeof *c);
    if (!c) {
        t->ops->close((struct transport *)t);
        return NULL;
    }
    c->host = h;
    c->lis = lis;
    c->tr = *t;
    c->counted_as = STATS_CONN_NONE;
    c->fresh = true;
    if (sni && lis->nsites > 1 && !(c->sni = strdup(sni))) {
        c->tr.ops->close(&c->tr);
        free(c);
        return NULL;
    }
    loop_defer_init(&c->run);
    loop_timer_init(&c->timer);
    if (peer)
        memcpy(&c->peer, peer, peer_len < sizeof c->peer ? peer_len : sizeof c->peer);
    c->read_deadline = clock_ms() + settings_of(c)->header_timeout_ms;

    if (h->nconns == h->cap_conns) {
        size_t cap = h->cap_conns ? h->cap_conns * 2 : 64;
        struct http1 **p = realloc(h->conns, cap * sizeof *p);
        if (!p) {
            c->tr.ops->close(&c->tr);
            free(c);
            return NULL;
        }
        h->conns = p;
        h->cap_conns = cap;
    }
    c->index = (uint32_t)h->nconns;
    h->conns[h->nconns++] = c;
    count_state(c);

    if (!watch) {
        http1_run(c);
        return c;
    }
    /* A new connection usually holds its request already (TCP_DEFER_ACCEPT).
     * It is read now, with the rest of the accept batch, and answered after
     * the batch, so that their requests share one file-system epoch as a
     * batch of ready connections does; and it is watched only if it is
     * still open then: one answered and closed at once costs no epoll_ctl.
     * (Adding an edge-triggered watch reports what is ready at that moment,
     * so nothing that arrives before it is missed.) */
    c->watch_wanted = true;
    take_input(c, EPOLLIN);
    loop_defer(h->loop, &c->run, run_deferred, c);
    return c;
}

/* Watches a session that outlived its first run; closes it if it cannot. */
static void start_watching(struct http1 *c)
{
    c->watch_wanted = false;
    if (loop_watch_add(c->host->loop, &c->watch, c->tr.fd,
                       EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, on_io, c) < 0) {
        log_msg(LOG_ERROR, "epoll_ctl: %s", strerror(errno));
        http1_close(c);
        return;
    }
    c->watched = true;
}

static bool has_output(const struct http1 *c)
{
    return !outq_empty(&c->q);
}

/* Returns the output buffer to the pool (or frees it if it grew) and the
 * segment list with it. */
static void release_output(struct http1 *c)
{
    if (c->q.out.p && c->q.out.cap == c->host->buf_size)
        give_buf(c->host, c->q.out.p);
    else
        free(c->q.out.p);
    c->q.out = (struct buf){0};
    outq_free_segs(&c->q);
}

/* Closes a session whose client stopped taking its output: the bytes
 * queued in the kernel are dropped too. */
static void close_stalled(struct http1 *c)
{
    c->reset = true;
    http1_close(c);
}

/* After its exchange ended (cleanups run): the site may go now. */
static void release_site(struct http1 *c)
{
    if (c->site) {
        site_release(c->site);
        c->site = NULL;
    }
}

void http1_close(struct http1 *c)
{
    struct http1_host *h = c->host;
    if (c->closed)
        *c->closed = true;
    if (c->x) {
        struct verbd_exchange *x = c->x;
        c->x = NULL;
        vx_client_gone(x);
        release_site(c);
    }
    outq_drop(&c->q);
    release_output(c);
    if (c->in)
        give_buf(h, c->in);
    loop_timer_stop(h->loop, &c->timer);
    loop_defer_cancel(h->loop, &c->run);
    if (c->watched)
        loop_watch_del(h->loop, &c->watch, true);
    if (c->to_http2)
        ; /* the transport is the HTTP/2 session's now */
    else if (c->reset && c->tr.ops->abort)
        c->tr.ops->abort(&c->tr);
    else
        c->tr.ops->close(&c->tr);
    stats_conn_move(c->counted_as, STATS_CONN_NONE);
    struct http1 *last = h->conns[--h->nconns];
    h->conns[c->index] = last;
    last->index = c->index;
    buf_free(&c->trailers);
    free(c->sni);
    free(c);
}

/* ---- queueing output ------------------------------------------------------------ */

/* Output goes to a pooled buffer, sized like the input ones. */
static void take_output_buffer(struct http1 *c)
{
    if (!c->q.out.p)
        c->q.out = (struct buf){take_buf(c->host), 0, c->host->buf_size};
}

/* Appends bytes to the output as a memory segment. */
static void out_bytes(struct http1 *c, const void *p, size_t n)
{
    take_output_buffer(c);
    outq_bytes(&c->q, p, n);
}

static bool status_has_body(int status)
{
    return status >= 200 && status != 204 && status != 304;
}

/* Appends the response head: status line, Server, Date, the fields, the
 * framing and Connection. */
enum announce { ANNOUNCE_NONE, ANNOUNCE_LENGTH, ANNOUNCE_CHUNKED };

static void queue_head(struct http1 *c, const struct verbd_response *res, const struct buf *extra,
                       int minor, enum announce announce, uint64_t length)
{
    struct buf *o = &c->q.out;
    size_t start = o->len;
    size_t extra_len = extra ? extra->len : 0;
    buf_reserve(o, HEAD_FIXED_MAX + res->head.len + extra_len);
    char *p = o->p + o->len;
    size_t line_len;
    const char *line = http_status_line(res->status, &line_len);
    if (line) {
        p = mempcpy(p, line, line_len);
    } else {
        p = mempcpy(p, "HTTP/1.1 ", 9);
        p = put_decimal(p, (uint64_t)res->status);
        p = mempcpy(p, " Unknown\r\n", 10);
    }
    p = mempcpy(p, "Server: verbd\r\n", 15);
    if (!res->has_date)
        p = mempcpy(p, clock_date_field(), CLOCK_DATE_FIELD_LEN);
    if (res->head.len)
        p = mempcpy(p, res->head.p, res->head.len);
    if (extra_len)
        p = mempcpy(p, extra->p, extra_len);
    if (announce == ANNOUNCE_LENGTH) {
        p = mempcpy(p, "Content-Length: ", 16);
        p = put_decimal(p, length);
        p = mempcpy(p, "\r\n", 2);
    } else if (announce == ANNOUNCE_CHUNKED) {
        p = mempcpy(p, "Transfer-Encoding: chunked\r\n", 28);
    }
    if (c->tunnel)
        p = mempcpy(p, "Connection: upgrade\r\n", 21);
    else if (!c->keep_alive)
        p = mempcpy(p, "Connection: close\r\n", 19);
    else if (minor == 0)
        p = mempcpy(p, "Connection: keep-alive\r\n", 24);
    p = mempcpy(p, "\r\n", 2);
    o->len = (size_t)(p - o->p);
    outq_push(&c->q, -1, start, o->len - start);
}

/* Appends body pieces (up to `limit` bytes) to the output, taking over the
 * holds on their files: small files are copied in, so that header and
 * body leave in one writev, larger ones go by sendfile.  Returns the bytes
 * queued. */
static uint64_t queue_pieces(struct http1 *c, struct verbd_response *res, uint64_t limit)
{
    take_output_buffer(c);
    uint64_t want = response_body_length(res);
    want = want < limit ? want : limit;
    uint64_t queued =
        outq_pieces(&c->q, res, limit, c->tr.ops->sendfile ? INLINE_FILE_MAX : UINT64_MAX);
    /* A file changed under us: the framing promised is unkeepable, so the
     * connection ends after what we have. */
    if (queued < want)
        c->close_after = true;
    return queued;
}

/* A response to a request that never became an exchange (a malformed
 * head, a timeout): the whole answer at once, then the connection ends. */
static void answer_error(struct http1 *c, int status, const char *why)
{
    struct verbd_response *res = &c->host->scratch;
    c->fresh = false;
    c->linger = true; /* framing is lost: the client may still be sending */
    response_reset(res);
    verbd_response_error(res, status, why);
    take_output_buffer(c);
    c->framing = FRAME_LENGTH;
    c->length_left = response_body_length(res);
    c->keep_alive = false;
    queue_head(c, res, NULL, 1, ANNOUNCE_LENGTH, c->length_left);
    queue_pieces(c, res, UINT64_MAX);
    c->close_after = true;
    log_access(c->lis->sites[0]->access_log, &c->peer.sa, NULL, status, response_body_length(res));
    stats_response(c->lis->sites[0]->stats, -1, status, STATS_PROTO_HTTP11);
    response_reset(res);
}

/* ---- the session side of an exchange ----------------------------------------------- */

static void wake(struct http1 *c)
{
    if (!c->in_run)
        loop_defer(c->host->loop, &c->run, run_deferred, c);
}

static void send_continue(struct http1 *c)
{
    out_bytes(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
}

/* Chooses the framing and queues the head.  `last`: the whole body is
 * among the pieces, so its length is known. */
static void commit_head(struct http1 *c, struct verbd_exchange *x, bool last, uint64_t body)
{
    struct verbd_response *res = &x->res;
    const struct http_request *h = &x->req.http;
    bool stated = res->length != RESPONSE_NO_LENGTH;
    uint64_t length = stated ? res->length : body;
    c->send_body = status_has_body(res->status) && x->req.method_id != METHOD_HEAD;
    /* Trailer fields travel only in a chunked body, so a whole body that
     * has them is still sent in chunks to a client that can take them. */
    bool trailers = res->trailers.len && h->minor >= 1;
    if (stated || (last && !trailers))
        c->framing = FRAME_LENGTH;
    else if (h->minor >= 1)
        c->framing = FRAME_CHUNKED;
    else
        c->framing = FRAME_CLOSE;
    /* 1xx and 204 announce no framing at all; a 304 only a stated length;
     * HEAD the framing GET would have. */
    enum announce announce = ANNOUNCE_NONE;
    if (c->tunnel) {
        c->framing = FRAME_CLOSE; /* the tunnel's bytes, unframed, until it ends */
        c->send_body = true;
    } else if (res->status == 304)
        announce = stated ? ANNOUNCE_LENGTH : ANNOUNCE_NONE;
    else if (status_has_body(res->status))
        announce = c->framing == FRAME_LENGTH    ? ANNOUNCE_LENGTH
                   : c->framing == FRAME_CHUNKED ? ANNOUNCE_CHUNKED
                                                 : ANNOUNCE_NONE;
    c->length_left = c->send_body ? length : 0;
    c->keep_alive = h->keep_alive && !res->close && !c->host->stopping && !c->close_after &&
                    (c->framing != FRAME_CLOSE || !c->send_body);
    take_output_buffer(c);
    /* A client waiting for 100 Continue whose body nobody asked for: after
     * a success it is invited to send it (and it is dropped), so the
     * connection stays in step; after a refusal it may or may not send it,
     * so the connection ends. */
    /* A body nobody reads is dropped within a bound, or the connection
     * ends. */
    if (c->has_body && !x->reading && !c->body_chunked && c->body_left > c->body_limit)
        c->keep_alive = false;
    if (c->has_body && h->expect_continue && !x->continued && !x->reading) {
        if (res->status < 300) {
            x->continued = true;
            send_continue(c);
        } else {
            c->keep_alive = false;
        }
    }
    queue_head(c, res, x->extra_head, h->minor, announce, length);
    x->head_sent = true;
}

static bool session_send(void *sess, struct verbd_exchange *x, bool last)
{
    struct http1 *c = sess;
    struct verbd_response *res = &x->res;
    uint64_t body = response_body_length(res);
    if (!x->head_sent)
        commit_head(c, x, last, body);
    if (c->send_body && body) {
        if (c->framing == FRAME_LENGTH) {
            uint64_t n = queue_pieces(c, res, c->length_left);
            c->length_left -= n;
            if (n < body) {
                log_msg(LOG_ERROR,
                        "%.*s %s: the handler wrote more than the length it "
                        "stated; closing the connection",
                        (int)x->req.http.method.n, x->req.http.method.p, x->req.path);
                c->close_after = true;
            }
            x->body_bytes += n;
        } else if (c->framing == FRAME_CHUNKED) {
            char size[24];
            int n = snprintf(size, sizeof size, "%" PRIx64 "\r\n", body);
            out_bytes(c, size, (size_t)n);
            x->body_bytes += queue_pieces(c, res, body);
            out_bytes(c, "\r\n", 2);
        } else {
            x->body_bytes += queue_pieces(c, res, body);
        }
    }
    response_clear_body(res);
    if (last) {
        if (c->send_body && c->framing == FRAME_CHUNKED) {
            out_bytes(c, "0\r\n", 3);
            if (res->trailers.len)
                out_bytes(c, res->trailers.p, res->trailers.len);
            out_bytes(c, "\r\n", 2);
        }
        if (c->send_body && c->framing == FRAME_LENGTH && c->length_left) {
            log_msg(LOG_ERROR,
                    "%.*s %s: the handler wrote %" PRIu64 " bytes less than the "
                    "length it stated; closing the connection",
                    (int)x->req.http.method.n, x->req.http.method.p, x->req.path, c->length_left);
            c->close_after = true;
        }
        if (!c->keep_alive || c->framing == FRAME_CLOSE)
            c->close_after = true;
        log_access(c->site->access_log, &c->peer.sa, &x->req, res->status, x->body_bytes);
        stats_response(c->site->stats, x->req.method_id, res->status,
                       x->req.http.minor == 0 ? STATS_PROTO_HTTP10 : STATS_PROTO_HTTP11);
    }
    wake(c);
    return c->q.out.len + c->q.lent < OUT_HIGH_WATER;
}

static void session_abort(void *sess, struct verbd_exchange *x)
{
    struct http1 *c = sess;
    if (!x->head_sent) {
        /* Nothing went out yet: the client gets an honest 500. */
        x->aborted = false;
        verbd_response_error(&x->res, 500, NULL);
        session_send(c, x, true);
        x->aborted = true;
    } else {
        log_msg(LOG_INFO, "%.*s %s: response aborted after its head; closing the connection",
                (int)x->req.http.method.n, x->req.http.method.p, x->req.path);
        c->linger = false;
    }
    c->close_after = true;
    wake(c);
}

static void session_read(void *sess, struct verbd_exchange *x)
{
    struct http1 *c = sess;
    if (c->has_body && x->req.http.expect_continue && !x->continued && !x->head_sent) {
        x->continued = true;
        send_continue(c);
    }
    c->read_deadline = clock_ms() + settings_of(c)->body_timeout_ms;
    c->in_window_at = clock_ms();
    c->in_window_bytes = 0;
    wake(c);
}

static void session_pause(void *sess, struct verbd_exchange *x, bool paused)
{
    struct http1 *c = sess;
    (void)x;
    if (!paused) {
        c->read_deadline = clock_ms() + settings_of(c)->body_timeout_ms;
        c->in_window_at = clock_ms(); /* a paused body owes no rate */
        c->in_window_bytes = 0;
        wake(c);
    }
}

static void session_continue(void *sess, struct verbd_exchange *x)
{
    struct http1 *c = sess;
    if (c->has_body && x->req.http.expect_continue)
        send_continue(c);
    wake(c);
}

/* RFC 9110 §15.2: a 1xx goes to HTTP/1.1 clients only. */
static void session_interim(void *sess, struct verbd_exchange *x, int status, const char *fields,
                            size_t len)
{
    struct http1 *c = sess;
    if (x->req.http.minor == 0)
        return;
    char line[64];
    size_t n;
    const char *known = http_status_line(status, &n);
    if (!known) {
        n = (size_t)snprintf(line, sizeof line, "HTTP/1.1 %d Informational\r\n", status);
        known = line;
    }
    out_bytes(c, known, n);
    out_bytes(c, fields, len);
    out_bytes(c, "\r\n", 2);
    wake(c);
}

/* A 101: the head goes out, and the client's bytes after the request are
 * the tunnel's, read like a body that only the client's close ends. */
static bool session_upgrade(void *sess, struct verbd_exchange *x)
{
    struct http1 *c = sess;
    const struct http_request *h = &x->req.http;
    bool has_body = h->framing == BODY_CHUNKED || (h->framing == BODY_LENGTH && h->content_length);
    if (h->minor == 0 || has_body || !http_field_get(h, "Upgrade").p)
        return false;
    c->tunnel = true;
    commit_head(c, x, false, 0);
    c->has_body = true;
    c->body_chunked = false;
    c->body_left = c->body_limit = UINT64_MAX;
    c->read_deadline = 0; /* the module's idle timeout, not a body's */
    wake(c);
    return true;
}

static const struct vx_session_ops http1_ops = {
    .send = session_send,
    .abort = session_abort,
    .read = session_read,
    .pause = session_pause,
    .send_continue = session_continue,
    .send_interim = session_interim,
    .upgrade = session_upgrade,
};

/* ---- requests ------------------------------------------------------------------------ */

static void next_request(struct http1 *c)
{
    c->state = CONN_HEAD;
    c->has_body = false;
    c->tunnel = false;
    if (!c->in || c->in_start == c->in_len) {
        c->idle = true;
        c->read_deadline = clock_ms() + settings_of(c)->idle_timeout_ms;
    } else {
        c->idle = false;
        c->read_deadline = clock_ms() + settings_of(c)->header_timeout_ms;
    }
    count_state(c);
}

static void decide_and_start(struct http1 *c, struct verbd_exchange *x);

/* A parsed head at the input's start: an exchange, decided and started. */
static void begin_exchange(struct http1 *c, const struct http_request *h)
{
    struct verbd_exchange *x = vx_new(c->host->loop, &http1_ops, c);
    c->x = x;
    c->fresh = false;
    c->state = CONN_EXCHANGE;
    c->idle = false;
    count_state(c);
    vx_take_request(x, h, c->in + c->in_start);
    x->req.peer = c->peer.sa.sa_family ? &c->peer.sa : NULL;
    x->req.tls = c->lis->tls;
    x->req.local = (const struct sockaddr *)&c->lis->addr;
    c->in_start += h->head_len;
    c->has_body = h->framing == BODY_CHUNKED || (h->framing == BODY_LENGTH && h->content_length);
    c->body_chunked = h->framing == BODY_CHUNKED;
    c->body_left = h->framing == BODY_LENGTH ? h->content_length : 0;
    if (c->body_chunked)
        chunked_init(&c->chunked);
    buf_reset(&c->trailers);
    c->read_deadline = 0; /* the module's pace now, until it reads a body */
    c->site = site_select(c->lis, x->req.http.host.p, x->req.http.host.n);
    site_hold(c->site);
    x->log = c->site->error_log;
    struct log_target *before = log_use(x->log);
    decide_and_start(c, x);
    log_use(before);
}

/* The site's answer to x: its method decision and module (or a 421, or a
 * redirect to https). */
static void decide_and_start(struct http1 *c, struct verbd_exchange *x)
{
    if (c->sni && site_misdirected(c->lis, c->sni, c->site)) {
        c->body_limit = x->req.max_body = BODY_DISCARD_MAX;
        verbd_response_error(&x->res, 421,
                             "This connection was set up for another host name (TLS SNI).");
        verbd_finish(x);
        return;
    }
    const struct route_table *routes = &c->site->routes;
    enum verdict v = route_decide(routes, x);
    c->body_limit = x->req.max_body;
    if (v == VERDICT_REFUSE && !x->req.mapping && c->site->redirect_to_https &&
        site_redirect_to_https(c->host->listeners, c->host->nlisteners, x))
        return;
    route_start(routes, v, x);
}

/* The exchange's response is finished (or aborted): it ends, and a body
 * nobody read is dropped (or the connection closes). */
static void end_exchange(struct http1 *c)
{
    struct verbd_exchange *x = c->x;
    c->x = NULL;
    bool body_unread = c->has_body && !x->body_done;
    /* A client told to wait for 100 Continue may or may not send its body
     * after a final status: the framing is unknowable, so close. */
    if (body_unread && x->req.http.expect_continue && !x->continued)
        c->close_after = true;
    if (!method_is_safe(x->req.method_id))
        clock_new_epoch(); /* it may have changed what later answers see */
    vx_end(x);
    release_site(c);
    if (body_unread && !c->close_after) {
        c->state = CONN_DISCARD;
        count_state(c);
        c->read_deadline = clock_ms() + settings_of(c)->body_timeout_ms;
        return;
    }
    c->linger = c->linger || (c->close_after && body_unread);
    next_request(c);
}

/* ---- request bodies --------------------------------------------------------------------- */

/* The body failed or outgrew max_body: whoever reads it hears why (and may
 * still answer); the connection ends either way. */
static void body_failed(struct http1 *c, int status, const char *why)
{
    log_msg(LOG_INFO, "closing connection: %s", why);
    c->close_after = true;
    c->linger = true;
    c->has_body = false; /* nothing more of it is read */
    if (c->x)
        vx_body_done(c->x, status);
}

/* Takes body bytes from the input: to the exchange's reader, or dropped.
 * True once the body is complete. */
static bool take_body(struct http1 *c, bool deliver)
{
    struct verbd_exchange *x = c->x;
    size_t avail = c->in_len - c->in_start;
    if (!c->body_chunked) {
        size_t n = avail < c->body_left ? avail : (size_t)c->body_left;
        const char *p = c->in + c->in_start;
        c->in_start += n;
        c->body_left -= n;
        if (deliver) {
            c->in_window_bytes += n;
            vx_body_data(x, p, n);
        }
        return c->body_left == 0;
    }
    while (avail) {
        size_t used = 0;
        struct span data = {0};
        const char *why = NULL;
        size_t trailer_before = c->chunked.trailer;
        enum chunked_result r =
            chunked_decode(&c->chunked, c->in + c->in_start, avail, &used, &data, &why);
        /* The trailer section's bytes end what this call consumed. */
        size_t tn = c->chunked.trailer - trailer_before;
        if (deliver && tn && r != CHUNKED_ERROR)
            buf_append(&c->trailers, c->in + c->in_start + used - tn, tn);
        c->in_start += used;
        avail -= used;
        if (r == CHUNKED_ERROR) {
            body_failed(c, 400, why);
            return false;
        }
        if (c->chunked.total > c->body_limit) {
            body_failed(c, 413, "request body over max_body");
            return false;
        }
        if (deliver && data.n) {
            c->in_window_bytes += data.n;
            vx_body_data(x, data.p, data.n);
        }
        if (r == CHUNKED_DONE) {
            if (deliver && c->trailers.len > 2)
                vx_take_trailers(x, c->trailers.p, c->trailers.len);
            buf_reset(&c->trailers);
            return true;
        }
        if (used == 0 || (deliver && (x->paused || x->finished)))
            break;
    }
    return false;
}

/* Delivers what the input holds of the body to the exchange that reads it. */
static void feed_body(struct http1 *c)
{
    struct verbd_exchange *x = c->x;
    if (!c->has_body) {
        vx_body_done(x, 0);
        return;
    }
    if (c->in && c->in_start < c->in_len && take_body(c, true)) {
        c->has_body = false;
        vx_body_done(x, 0);
        return;
    }
    /* A tunnel's input ends with the client's side of the connection. */
    if (c->tunnel && c->eof && (!c->in || c->in_start == c->in_len) && !x->paused && !x->finished) {
        c->has_body = false;
        vx_body_done(x, 0);
    }
}

/* Drops what the input holds of a body nobody reads.  True when done. */
static bool discard_body(struct http1 *c)
{
    if (!c->in || c->in_start == c->in_len || !take_body(c, false))
        return false;
    c->has_body = false;
    next_request(c);
    return true;
}

/* ---- the connection's work ----------------------------------------------------------------- */

/* Whether the input begins with the HTTP/2 connection preface (RFC 9113
 * §3.4) on a plain address whose default server has `http2 on`: 1 yes, 0
 * so far, -1 no (then it is an HTTP/1 request, or garbage: 400). */
static int http2_preface(const struct http1 *c)
{
    if (!c->host->h2 || c->lis->tls || !c->lis->sites[0]->settings.http2)
        return -1;
    size_t n = c->in_len - c->in_start;
    if (n > HTTP2_PREFACE_LEN)
        n = HTTP2_PREFACE_LEN;
    if (memcmp(c->in + c->in_start, HTTP2_PREFACE, n) != 0)
        return -1;
    return n == HTTP2_PREFACE_LEN ? 1 : c->eof ? -1 : 0;
}

/* Gives the connection, and what was read of it, to the HTTP/2 session. */
static void hand_to_http2(struct http1 *c)
{
    struct http1_host *h = c->host;
    struct transport t = c->tr;
    bool watch = c->watched || c->watch_wanted;
    const struct listener *lis = c->lis;
    char *sni = c->sni;
    char *in = c->in;
    size_t start = c->in_start, len = c->in_len - c->in_start;
    union {
        struct sockaddr sa;
        struct sockaddr_in6 in6;
    } peer;
    memcpy(&peer, &c->peer, sizeof peer);
    socklen_t peer_len =
        c->peer.sa.sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (c->watched) {
        loop_watch_del(h->loop, &c->watch, false);
        c->watched = false;
    }
    c->sni = NULL;
    c->in = NULL;
    http1_close(c);
    http2_open(h->h2, &t, watch, lis, sni, peer.sa.sa_family ? &peer.sa : NULL, peer_len,
               in + start, len);
    give_buf(h, in);
    free(sni);
}

/* Advances the exchange in flight and starts the requests after it, within
 * the output bound.  True if it queued output. */
static bool process(struct http1 *c)
{
    bool produced = false;
    while (!c->close_after && c->state != CONN_LINGER) {
        if (c->q.out.len + c->q.lent >= OUT_HIGH_WATER ||
            (has_output(c) && c->q.segs[c->q.n - 1].fd >= 0))
            break;
        if (c->state == CONN_EXCHANGE) {
            struct verbd_exchange *x = c->x;
            if (x->reading && !x->paused && !x->finished)
                feed_body(c);
            if (!x->finished)
                break;
            end_exchange(c);
            produced = true;
            continue;
        }
        if (c->state == CONN_DISCARD) {
            if (!discard_body(c))
                break;
            continue;
        }
        if (!c->in || c->in_start == c->in_len)
            break;
        if (c->fresh) {
            int p = http2_preface(c);
            if (p == 0)
                break; /* a beginning of the preface: read on */
            if (p > 0) {
                c->to_http2 = true;
                break;
            }
            c->fresh = false;
            stats_conn_protocol(STATS_PROTO_HTTP11);
        }
        const char *why = NULL;
        struct http_request h;
        int r = http_parse_request(c->in + c->in_start, c->in_len - c->in_start, &c->host->limits,
                                   c->host->fields, &h, &why);
        if (r == 0)
            break;
        produced = true;
        if (r < 0) {
            answer_error(c, -r, why);
            break;
        }
        begin_exchange(c, &h);
    }
    return produced || has_output(c);
}

/* Reads what the transport holds into the input buffer.  Returns bytes
 * read (setting c->eof at the end of input), or -1 on an error. */
static ssize_t read_input(struct http1 *c)
{
    struct http1_host *h = c->host;
    if (!c->in) {
        c->in = take_buf(h);
        c->in_start = c->in_len = 0;
    } else if (c->in_start) {
        memmove(c->in, c->in + c->in_start, c->in_len - c->in_start);
        c->in_len -= c->in_start;
        c->in_start = 0;
    }
    ssize_t total = 0;
    while (c->in_len < h->buf_size) {
        ssize_t n = transport_read_some(&c->tr, c->in + c->in_len, h->buf_size - c->in_len,
                                        c->peer_shut, &c->drained, &c->eof);
        if (n < 0)
            return -1;
        c->in_len += (size_t)n;
        total += n;
        if (n == 0 || c->drained)
            break;
    }
    /* Whatever is answered from now on arrived before any file is looked
     * at again. */
    if (total) {
        clock_new_epoch();
        stats_received((uint64_t)total);
    }
    if (total && c->state == CONN_HEAD && c->idle) {
        c->idle = false;
        count_state(c);
        c->read_deadline = clock_ms() + settings_of(c)->header_timeout_ms;
    } else if (total && c->state != CONN_HEAD) {
        c->read_deadline = clock_ms() + settings_of(c)->body_timeout_ms;
    }
    return total;
}

/* Writes queued output.  1: all written; 0: the transport is full; -1:
 * error. */
static int flush(struct http1 *c)
{
    struct outq *q = &c->q;
    while (has_output(c)) {
        ssize_t n = outq_write(q, &c->tr);
        if (n == 0)
            return -1; /* a file shrank: the promised length is unkeepable */
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                c->write_deadline = clock_ms() + settings_of(c)->send_timeout_ms;
                if (!c->out_window_at) { /* the client is not keeping up */
                    c->out_window_at = clock_ms();
                    c->out_window_bytes = 0;
                }
                return 0;
            }
            return -1;
        }
        c->out_window_bytes += (uint64_t)n;
        stats_sent((uint64_t)n);
        c->write_deadline = clock_ms() + settings_of(c)->send_timeout_ms;
    }
    c->write_deadline = 0;
    c->out_window_at = 0;
    return 1;
}

static void begin_linger(struct http1 *c)
{
    c->tr.ops->shutdown(&c->tr);
    c->state = CONN_LINGER;
    count_state(c);
    c->read_deadline = clock_ms() + LINGER_MS;
}

/* Drops what the client still sends until it closes. */
static void linger(struct http1 *c)
{
    char scratch[4096];
    for (;;) {
        ssize_t n = c->tr.ops->read(&c->tr, scratch, sizeof scratch);
        if (n > 0) {
            c->lingered += (uint32_t)n;
            if (c->lingered > LINGER_MAX_BYTES)
                break;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        break;
    }
    http1_close(c);
}

/* A session waiting for its client holds no buffers: idle ones cost only
 * their struct. */
static void release_buffers_if_idle(struct http1 *c)
{
    if (c->in && c->in_start == c->in_len) {
        give_buf(c->host, c->in);
        c->in = NULL;
        c->in_start = c->in_len = 0;
    }
    if (!has_output(c) && c->q.out.p)
        release_output(c);
}

/* The deadline that applies now: output that does not leave, a head or a
 * body that does not come, an idle keep-alive, a linger.  0: none (a
 * module is thinking). */
static bool reading_body(const struct http1 *c)
{
    const struct verbd_exchange *x = c->x;
    return c->state == CONN_EXCHANGE && x->reading && !x->paused && !x->body_done && !c->tunnel;
}

/* The end of a min_rate window, or 0 if none is open (or none is set). */
static uint64_t window_end(const struct http1 *c, uint64_t at)
{
    /* A tunnel owes no rate: its ends talk when they have something to say. */
    uint64_t window = c->tunnel ? 0 : settings_of(c)->min_rate_window_ms;
    return at && window ? at + window : 0;
}

static uint64_t earlier(uint64_t a, uint64_t b)
{
    return !a ? b : !b ? a : a < b ? a : b;
}

static uint64_t current_deadline(const struct http1 *c)
{
    if (has_output(c))
        return earlier(c->write_deadline, window_end(c, c->out_window_at));
    if (c->state == CONN_EXCHANGE)
        return reading_body(c) ? earlier(c->read_deadline, window_end(c, c->in_window_at)) : 0;
    return c->read_deadline;
}

/* A min_rate window that ended: true if the bytes moved kept the rate (a
 * new window opens), false if they did not. */
static bool kept_rate(const struct http1 *c, uint64_t *at, uint64_t *bytes)
{
    uint64_t end = window_end(c, *at);
    if (!end || clock_ms() < end)
        return true;
    const struct settings *s = settings_of(c);
    bool kept = *bytes * 1000 >= s->min_rate * s->min_rate_window_ms;
    *at = clock_ms();
    *bytes = 0;
    return kept;
}

/* Deadlines move often and mostly later: the timer is moved only when one
 * comes earlier, and re-armed when it fires early. */
static void arm_timer(struct http1 *c)
{
    uint64_t due = current_deadline(c);
    if (due && (!loop_timer_armed(&c->timer) || c->timer.at > due))
        loop_timer_at(c->host->loop, &c->timer, due, on_timer, c);
}

static void on_timer(void *arg)
{
    struct http1 *c = arg;
    uint64_t due = current_deadline(c);
    if (!due)
        return;
    if (has_output(c) && !kept_rate(c, &c->out_window_at, &c->out_window_bytes)) {
        log_msg(LOG_INFO, "closing connection: the client reads slower than min_rate");
        close_stalled(c);
        return;
    }
    if (reading_body(c) && !kept_rate(c, &c->in_window_at, &c->in_window_bytes)) {
        body_failed(c, 408, "request body slower than min_rate");
        http1_run(c);
        return;
    }
    due = current_deadline(c);
    if (due && clock_ms() < due) {
        loop_timer_at(c->host->loop, &c->timer, due, on_timer, c);
        return;
    }
    if (!due)
        return;
    if (has_output(c)) {
        log_msg(LOG_DEBUG, "send timeout");
        close_stalled(c);
        return;
    }
    if (c->state == CONN_HEAD && !c->idle && c->in && c->in_len > c->in_start) {
        answer_error(c, 408, "The request head was not received in time.");
        http1_run(c);
        return;
    }
    if (c->state == CONN_EXCHANGE && c->x->reading) {
        body_failed(c, 408, "request body timeout");
        http1_run(c);
        return;
    }
    http1_close(c);
}

static void run_once(struct http1 *c)
{
    if (c->read_failed) {
        http1_close(c);
        return;
    }
    for (;;) {
        if (c->state == CONN_LINGER) {
            linger(c);
            return;
        }
        if (has_output(c)) {
            int r = flush(c);
            if (r < 0) {
                http1_close(c);
                return;
            }
            if (r == 0) {
                arm_timer(c);
                return; /* EPOLLOUT resumes */
            }
            if (c->idle && !c->close_after)
                c->read_deadline = clock_ms() + settings_of(c)->idle_timeout_ms;
            if (c->x && vx_wants_writable(c->x)) {
                vx_writable(c->x);
                continue;
            }
        }
        if (c->close_after && (!c->x || c->x->finished)) {
            if (c->x)
                end_exchange(c);
            /* A client that sent all it meant to (its request read to the
             * end, nothing after it) can be closed on at once; otherwise
             * drain what it still sends so it sees our answer, not a
             * reset. */
            if (c->linger || c->state != CONN_HEAD || (c->in && c->in_start < c->in_len)) {
                begin_linger(c);
                continue;
            }
            http1_close(c);
            return;
        }
        if (c->peer_shut && c->x && !c->tunnel && vx_ends_with_client(c->x)) {
            log_msg(LOG_INFO, "%.*s %s: the client closed its side; the request is given up",
                    (int)c->x->req.http.method.n, c->x->req.http.method.p, c->x->req.path);
            http1_close(c);
            return;
        }
        if (process(c))
            continue;
        if (c->to_http2) {
            hand_to_http2(c);
            return;
        }
        if (c->eof) {
            if (c->x && (!c->x->reading || c->tunnel)) {
                arm_timer(c);
                return; /* the client half-closed: the answer may still come */
            }
            http1_close(c);
            return;
        }
        bool paused = c->state == CONN_EXCHANGE && c->x->paused;
        ssize_t n = c->drained || paused ? 0 : read_input(c);
        if (n < 0) {
            http1_close(c);
            return;
        }
        if (n == 0 && !c->eof) {
            if (!c->x)
                release_buffers_if_idle(c);
            if (c->host->stopping)
                http1_stop_if_idle(c);
            else
                arm_timer(c);
            return;
        }
    }
}

/* Runs the session's work; not re-entered from a module's call, which
 * only leaves work for the run in progress. */
static void http1_run(struct http1 *c)
{
    if (c->in_run)
        return;
    bool closed = false;
    c->in_run = true;
    c->closed = &closed;
    loop_defer_cancel(c->host->loop, &c->run);
    run_once(c);
    if (!closed) {
        c->in_run = false;
        c->closed = NULL;
        if (c->watch_wanted)
            start_watching(c);
    }
}

static void take_input(struct http1 *c, uint32_t events)
{
    /* The peer's FIN may have come with the data of this very edge: then no
     * later edge will report it, so a short read must not end reading. */
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        c->peer_shut = true;
    /* Without EPOLLIN in the mask there is nothing new to read, unless the
     * transport's last read waited to write (TLS). */
    if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) &&
        !((events & EPOLLOUT) && c->tr.read_wants_write))
        return;
    c->drained = false;
    if (c->state == CONN_LINGER || c->close_after || c->eof || has_output(c) || c->x)
        return; /* http1_run reads once it gets there */
    /* Reading ahead holds a buffer per connection of the batch: only from
     * the pool, so a large batch costs no more memory than before. */
    if (!c->in && c->host->nspare == 0)
        return;
    if (read_input(c) < 0)
        c->read_failed = true;
}

/* The first pass over a batch of events reads what each connection holds,
 * so that the requests of the whole batch are in before any is answered
 * and share one file-system epoch (clock.h); the answers come from the
 * deferred run after the batch. */
static void on_io(void *arg, uint32_t events)
{
    struct http1 *c = arg;
    take_input(c, events);
    loop_defer(c->host->loop, &c->run, run_deferred, c);
}

void http1_ready(struct http1 *c)
{
    c->drained = false;
    http1_run(c);
}

void http1_stop_if_idle(struct http1 *c)
{
    if (c->state == CONN_HEAD && c->idle && !c->x && !has_output(c) &&
        (!c->in || c->in_start == c->in_len))
        http1_close(c);
}
