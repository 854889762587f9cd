#include "core/conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/worker.h"
#include "http/method.h"
#include "http/status.h"
#include "route/module.h"
#include "route/route.h"

/* Stop answering pipelined requests while this much output waits, so a
 * client that never reads cannot grow our memory. */
#define OUT_HIGH_WATER (64 * 1024)
/* File bodies up to this size are copied into the output so that header
 * and body leave in one writev; larger ones go by sendfile. */
#define INLINE_FILE_MAX (16 * 1024)
/* After answering and closing our side, read and drop what the client
 * still sends, for at most this long and this much, so our last response
 * is not destroyed by a reset. */
#define LINGER_MS 2000
#define LINGER_MAX_BYTES (64 * 1024)
#define IOV_BATCH 64
/* A response head without the handler's fields, at most: the longest
 * status line (or "HTTP/1.1 <20 digits> Unknown"), Server, Date,
 * Content-Length, Connection and the empty line. */
#define HEAD_FIXED_MAX (64 + 15 + CLOCK_DATE_FIELD_LEN + 16 + 20 + 2 + 24 + 2)

static const struct settings *settings_of(struct worker *w) { return &w->srv->settings; }

void conn_open(struct worker *w, int fd, const struct sockaddr *peer, socklen_t peer_len)
{
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    c->src = (struct source){SOURCE_CONN, fd};
    memcpy(&c->peer, peer, peer_len < sizeof c->peer ? peer_len : sizeof c->peer);
    c->read_deadline = clock_ms() + settings_of(w)->header_timeout_ms;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    if (w->nconns == w->cap_conns) {
        size_t cap = w->cap_conns ? w->cap_conns * 2 : 64;
        struct conn **p = realloc(w->conns, cap * sizeof *p);
        if (!p) {
            close(fd);
            free(c);
            return;
        }
        w->conns = p;
        w->cap_conns = cap;
    }
    c->index = (uint32_t)w->nconns;
    w->conns[w->nconns++] = c;

    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        conn_close(w, c);
        return;
    }
    conn_run(w, c);
}

static void drop_output(struct conn *c)
{
    for (size_t i = c->seg_head; i < c->nsegs; i++)
        file_hold_drop(&c->segs[i].hold);
    c->seg_head = c->nsegs = 0;
    buf_reset(&c->out);
}

static void drop_pending(struct conn *c)
{
    if (!c->pending)
        return;
    const struct route_mapping *m = c->pending->mapping;
    if (m && c->pending->state && m->module->body_abort)
        m->module->body_abort(m->inst, c->pending->state);
    buf_free(&c->pending->head);
    buf_free(&c->pending->body);
    free(c->pending);
    c->pending = NULL;
}

/* Returns the output buffer to the worker's pool (or frees it if it grew)
 * and the segment list with it. */
static void release_output(struct worker *w, struct conn *c)
{
    if (c->out.p && c->out.cap == w->in_cap)
        worker_give_buf(w, c->out.p);
    else
        free(c->out.p);
    c->out = (struct buf){0};
    free(c->segs);
    c->segs = NULL;
    c->seg_head = c->nsegs = c->cap_segs = 0;
}

void conn_close(struct worker *w, struct conn *c)
{
    drop_pending(c);
    drop_output(c);
    release_output(w, c);
    if (c->in)
        worker_give_buf(w, c->in);
    close(c->src.fd);
    worker_forget_conn(w, c);
    free(c);
}

static bool has_output(const struct conn *c) { return c->seg_head < c->nsegs; }

static void push_seg(struct conn *c, int fd, uint64_t off, uint64_t len)
{
    if (fd < 0 && c->nsegs > c->seg_head) {
        struct out_seg *last = &c->segs[c->nsegs - 1];
        if (last->fd < 0 && last->off + last->len == off) {
            last->len += len;
            return;
        }
    }
    if (c->nsegs == c->cap_segs) {
        size_t cap = c->cap_segs ? c->cap_segs * 2 : 4;
        struct out_seg *p = realloc(c->segs, cap * sizeof *p);
        if (!p)
            abort();
        c->segs = p;
        c->cap_segs = cap;
    }
    c->segs[c->nsegs++] = (struct out_seg){fd, {-1, NULL, NULL}, off, len};
}

/* Appends bytes to the output as a memory segment. */
static void out_bytes(struct conn *c, const void *p, size_t n)
{
    size_t at = c->out.len;
    buf_append(&c->out, p, n);
    push_seg(c, -1, at, n);
}

static bool status_has_body(int status)
{
    return status >= 200 && status != 204 && status != 304;
}

/* Serialises a finished response into the output queue. */
static void queue_response(struct conn *c, const struct verbd_request *req,
                           struct verbd_response *res, bool keep_alive)
{
    uint64_t body_len = response_body_length(res);
    bool with_body = status_has_body(res->status);
    bool send_body = with_body && !(req && req->method_id == METHOD_HEAD);

    /* The same few pieces on every response: one reservation, then copies. */
    struct buf *o = &c->out;
    size_t start = o->len;
    buf_reserve(o, HEAD_FIXED_MAX + res->head.len);
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
    p = mempcpy(p, clock_date_field(), CLOCK_DATE_FIELD_LEN);
    if (res->head.len)
        p = mempcpy(p, res->head.p, res->head.len);
    if (with_body) {
        p = mempcpy(p, "Content-Length: ", 16);
        p = put_decimal(p, body_len);
        p = mempcpy(p, "\r\n", 2);
    }
    if (!keep_alive)
        p = mempcpy(p, "Connection: close\r\n", 19);
    else if (req && req->http.minor == 0)
        p = mempcpy(p, "Connection: keep-alive\r\n", 24);
    p = mempcpy(p, "\r\n", 2);
    o->len = (size_t)(p - o->p);
    push_seg(c, -1, start, o->len - start);

    if (send_body) {
        for (size_t i = 0; i < res->npieces; i++) {
            const struct body_piece *p = &res->pieces[i];
            if (!p->is_file) {
                out_bytes(c, res->body.p + p->offset, (size_t)p->len);
            } else if (p->len <= INLINE_FILE_MAX) {
                buf_reserve(o, (size_t)p->len);
                ssize_t got = pread(res->file.fd, o->p + o->len, (size_t)p->len, (off_t)p->offset);
                if (got != (ssize_t)p->len) {
                    /* The file changed under us; the framing promised is
                     * unkeepable, so end the connection after what we have. */
                    c->close_after = true;
                    break;
                }
                push_seg(c, -1, o->len, (size_t)got);
                o->len += (size_t)got;
            } else {
                push_seg(c, res->file.fd, p->offset, p->len);
            }
        }
        /* The last file segment takes the file over. */
        for (size_t i = c->nsegs; i-- > c->seg_head;) {
            if (c->segs[i].fd == res->file.fd && res->file.fd >= 0) {
                c->segs[i].hold = res->file;
                res->file = (struct file_hold){-1, NULL, NULL};
                break;
            }
        }
    }
    if (!keep_alive)
        c->close_after = true;
    log_access(&c->peer.sa, req, res->status, send_body ? body_len : 0);
}

static void answer_error(struct worker *w, struct conn *c, int status, const char *why)
{
    struct verbd_response *res = &w->res;
    c->linger = true;  /* framing is lost: the client may still be sending */
    response_reset(res);
    verbd_response_error(res, status, why);
    queue_response(c, NULL, res, false);
    response_reset(res);
}

static void next_request(struct worker *w, struct conn *c)
{
    c->state = CONN_HEAD;
    if (c->in_start == c->in_len) {
        c->idle = true;
        c->read_deadline = clock_ms() + settings_of(w)->idle_timeout_ms;
    } else {
        c->idle = false;
        c->read_deadline = clock_ms() + settings_of(w)->header_timeout_ms;
    }
}

/* Answers the request in w->req (its body, if any, not yet read unless the
 * module asked for it) and queues the response. */
static void answer(struct worker *w, struct conn *c, enum verdict v, bool body_unread)
{
    struct verbd_request *req = &w->req;
    struct verbd_response *res = &w->res;
    const struct http_request *h = &req->http;
    response_reset(res);
    route_respond(&w->srv->routes, v, req, res);
    /* A client told to wait for 100 Continue may or may not send its body
     * after a final status: the framing is unknowable, so close. */
    if (h->expect_continue && body_unread && v != VERDICT_SERVE)
        res->close = true;
    bool keep_alive = h->keep_alive && !res->close && !w->stopping && !c->close_after;
    queue_response(c, req, res, keep_alive);
    response_reset(res);
}

static void start_body(struct worker *w, struct conn *c, const struct http_request *h)
{
    c->state = CONN_BODY;
    c->body_chunked = h->framing == BODY_CHUNKED;
    c->body_left = h->content_length;
    if (c->body_chunked)
        chunked_init(&c->chunked);
    c->read_deadline = clock_ms() + settings_of(w)->body_timeout_ms;
}

/* Sets up reading the body for a module that wants it before answering.
 * False if the module refused the request at once (answered, closing). */
static bool hold_for_body(struct worker *w, struct conn *c, size_t head_len)
{
    struct verbd_request *req = &w->req;
    const struct verbd_module *mod = req->mapping->module;
    void *state = NULL;
    int status = mod->body_start ? mod->body_start(req->mapping->inst, req, &state) : 0;
    if (status) {
        struct verbd_response *res = &w->res;
        response_reset(res);
        verbd_response_error(res, status, NULL);
        queue_response(c, req, res, false);
        response_reset(res);
        return false;
    }
    /* The input buffer moves on while the body arrives: keep the head to
     * parse again once the body is in. */
    struct pending *p = calloc(1, sizeof *p);
    if (!p)
        abort();
    buf_append(&p->head, c->in + c->in_start, head_len);
    if (mod->body_data)
        p->mapping = req->mapping;
    p->state = state;
    c->pending = p;
    return true;
}

static void serve(struct worker *w, struct conn *c, size_t head_len)
{
    struct verbd_request *req = &w->req;
    const struct http_request *h = &req->http;
    req->body = NULL;
    req->body_len = 0;
    req->body_state = NULL;

    bool has_body = h->framing == BODY_CHUNKED || (h->framing == BODY_LENGTH && h->content_length);
    enum verdict v = route_decide(&w->srv->routes, req, w->path_buf);
    bool held = v == VERDICT_SERVE && has_body && route_wants_body(req);
    if (held && !hold_for_body(w, c, head_len)) {
        c->in_start += head_len;
        c->linger = true;  /* refused before the body: it is never read */
        return;
    }
    if (h->expect_continue && has_body && v == VERDICT_SERVE)
        out_bytes(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    if (!held)
        answer(w, c, v, has_body);
    if (!method_is_safe(req->method_id))
        clock_new_epoch();
    c->in_start += head_len;
    if (c->close_after || !has_body) {
        c->linger = c->close_after && has_body;  /* a body we will not read */
        next_request(w, c);
        return;
    }
    start_body(w, c, h);
}

/* The body a module waited for is in: answer the kept request. */
static void answer_pending(struct worker *w, struct conn *c)
{
    struct pending *p = c->pending;
    struct verbd_request *req = &w->req;
    const char *why;
    int r = http_parse_request(p->head.p, p->head.len, &w->limits, w->fields, &req->http, &why);
    enum verdict v = r > 0 ? route_decide(&w->srv->routes, req, w->path_buf) : VERDICT_REFUSE;
    if (r <= 0 || (p->mapping && req->mapping != p->mapping)) {
        answer_error(w, c, 500, NULL);  /* decided so before: cannot happen */
    } else if (v != VERDICT_SERVE) {
        answer(w, c, v, false);  /* a reload changed the mapping meanwhile */
    } else {
        req->body = p->body.p;
        req->body_len = p->body.len;
        req->body_state = p->state;
        p->state = NULL;  /* handle() owns it now */
        answer(w, c, v, false);
    }
    clock_new_epoch();  /* a module that reads bodies may have changed things */
    drop_pending(c);
}

/* The request body failed or outgrew max_body.  If nothing was answered
 * yet, say why; the connection ends either way. */
static void body_failed(struct worker *w, struct conn *c, int status, const char *why)
{
    log_msg(LOG_INFO, "closing connection: %s", why);
    if (c->pending) {
        drop_pending(c);
        answer_error(w, c, status, why);
    }
    c->close_after = true;
    c->linger = true;
}

static void body_done(struct worker *w, struct conn *c)
{
    if (c->pending)
        answer_pending(w, c);
    next_request(w, c);
}

/* Hands body bytes to the module that waits for them.  0, or the error
 * status the module answers with. */
static int keep_body(struct conn *c, const char *data, size_t n)
{
    struct pending *p = c->pending;
    if (!p || n == 0)
        return 0;
    if (p->mapping)
        return p->mapping->module->body_data(p->mapping->inst, p->state, data, n);
    buf_append(&p->body, data, n);
    return 0;
}

/* Reads the body of the current request: kept for a module that asked for
 * it, otherwise discarded.  True when it is complete. */
static bool read_body(struct worker *w, struct conn *c)
{
    size_t avail = c->in_len - c->in_start;
    if (!c->body_chunked) {
        size_t n = avail < c->body_left ? avail : (size_t)c->body_left;
        int status = keep_body(c, c->in + c->in_start, n);
        c->in_start += n;
        c->body_left -= n;
        if (status) {
            body_failed(w, c, status, "the module refused the body");
            return false;
        }
        if (c->body_left)
            return false;
        body_done(w, c);
        return true;
    }
    while (avail) {
        size_t used = 0;
        struct span data = {0};
        const char *why = NULL;
        enum chunked_result r =
            chunked_decode(&c->chunked, c->in + c->in_start, avail, &used, &data, &why);
        c->in_start += used;
        avail -= used;
        if (r == CHUNKED_ERROR) {
            body_failed(w, c, 400, why);
            return false;
        }
        if (c->chunked.total > settings_of(w)->max_body) {
            body_failed(w, c, 413, "request body too large");
            return false;
        }
        int status = keep_body(c, data.p, data.n);
        if (status) {
            body_failed(w, c, status, "the module refused the body");
            return false;
        }
        if (r == CHUNKED_DONE) {
            body_done(w, c);
            return true;
        }
        if (used == 0)
            break;
    }
    return false;
}

/* A connection waiting for its client holds no buffers: idle ones cost
 * only their struct. */
static void release_buffers_if_idle(struct worker *w, struct conn *c)
{
    if (c->in && c->in_start == c->in_len) {
        worker_give_buf(w, c->in);
        c->in = NULL;
        c->in_start = c->in_len = 0;
    }
    if (!has_output(c) && c->out.p)
        release_output(w, c);
}

/* Output goes to a pooled buffer, sized like the input ones. */
static void take_output_buffer(struct worker *w, struct conn *c)
{
    if (!c->out.p)
        c->out = (struct buf){worker_take_buf(w), 0, w->in_cap};
}

/* Answers every complete request in the input, within the output bound.
 * True if it queued output. */
static bool process(struct worker *w, struct conn *c)
{
    bool produced = false;
    while (!c->close_after && c->state != CONN_LINGER) {
        if (c->out.len >= OUT_HIGH_WATER ||
            (has_output(c) && c->segs[c->nsegs - 1].fd >= 0))
            break;
        if (c->state == CONN_BODY) {
            if (!read_body(w, c))
                break;
            continue;
        }
        if (c->in_start == c->in_len)
            break;
        const char *why = NULL;
        int r = http_parse_request(c->in + c->in_start, c->in_len - c->in_start, &w->limits,
                                   w->fields, &w->req.http, &why);
        if (r == 0)
            break;
        take_output_buffer(w, c);
        produced = true;
        if (r < 0) {
            answer_error(w, c, -r, why);
            break;
        }
        serve(w, c, (size_t)r);
    }
    return produced || has_output(c);
}

/* Reads what the socket holds into the input buffer.  Returns bytes read
 * (setting c->eof at the end of input), or -1 on a socket error. */
static ssize_t read_input(struct worker *w, struct conn *c)
{
    if (!c->in) {
        c->in = worker_take_buf(w);
        c->in_start = c->in_len = 0;
    } else if (c->in_start) {
        memmove(c->in, c->in + c->in_start, c->in_len - c->in_start);
        c->in_len -= c->in_start;
        c->in_start = 0;
    }
    ssize_t total = 0;
    while (c->in_len < w->in_cap) {
        size_t room = w->in_cap - c->in_len;
        ssize_t n = recv(c->src.fd, c->in + c->in_len, room, 0);
        if (n > 0) {
            c->in_len += (size_t)n;
            total += n;
            /* A short read emptied the socket: anything newer raises a new
             * edge, so there is no need to ask again for EAGAIN. */
            if ((size_t)n < room && !c->peer_shut) {
                c->drained = true;
                break;
            }
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->drained = true;
            break;
        }
        if (n < 0)
            return -1;
        c->eof = true;
        break;
    }
    /* Whatever is answered from now on arrived before any file is looked
     * at again. */
    if (total)
        clock_new_epoch();
    if (total && c->state == CONN_HEAD && c->idle) {
        c->idle = false;
        c->read_deadline = clock_ms() + settings_of(w)->header_timeout_ms;
    } else if (total && c->state == CONN_BODY) {
        c->read_deadline = clock_ms() + settings_of(w)->body_timeout_ms;
    }
    return total;
}

/* Writes queued output.  1: all written; 0: the socket is full; -1: error. */
static int flush(struct worker *w, struct conn *c)
{
    while (has_output(c)) {
        struct out_seg *s = &c->segs[c->seg_head];
        ssize_t n;
        if (s->fd < 0) {
            struct iovec iov[IOV_BATCH];
            int cnt = 0;
            size_t i = c->seg_head;
            for (; i < c->nsegs && cnt < IOV_BATCH && c->segs[i].fd < 0; i++)
                iov[cnt++] = (struct iovec){c->out.p + c->segs[i].off, (size_t)c->segs[i].len};
            /* A head followed by a file body: hold it back so that both
             * leave in the same segments. */
            struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
            n = sendmsg(c->src.fd, &msg, i < c->nsegs ? MSG_MORE : 0);
            if (n > 0) {
                size_t left = (size_t)n;
                while (left && c->seg_head < c->nsegs) {
                    struct out_seg *m = &c->segs[c->seg_head];
                    size_t take = left < m->len ? left : (size_t)m->len;
                    m->off += take;
                    m->len -= take;
                    left -= take;
                    if (m->len == 0)
                        c->seg_head++;
                }
            }
        } else {
            off_t off = (off_t)s->off;
            size_t want = s->len < (1u << 30) ? (size_t)s->len : (1u << 30);
            n = sendfile(c->src.fd, s->fd, &off, want);
            if (n == 0)
                return -1;  /* the file shrank: the promised length is unkeepable */
            if (n > 0) {
                s->off += (uint64_t)n;
                s->len -= (uint64_t)n;
                if (s->len == 0) {
                    file_hold_drop(&s->hold);
                    c->seg_head++;
                }
            }
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                c->write_deadline = clock_ms() + settings_of(w)->send_timeout_ms;
                return 0;
            }
            return -1;
        }
        c->write_deadline = clock_ms() + settings_of(w)->send_timeout_ms;
    }
    c->seg_head = c->nsegs = 0;
    buf_reset(&c->out);
    c->write_deadline = 0;
    return 1;
}

static void begin_linger(struct worker *w, struct conn *c)
{
    (void)w;
    shutdown(c->src.fd, SHUT_WR);
    c->state = CONN_LINGER;
    c->read_deadline = clock_ms() + LINGER_MS;
}

/* Drops what the client still sends until it closes. */
static void linger(struct worker *w, struct conn *c)
{
    char scratch[4096];
    for (;;) {
        ssize_t n = recv(c->src.fd, scratch, sizeof scratch, 0);
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
    conn_close(w, c);
}

void conn_take_input(struct worker *w, struct conn *c, uint32_t events)
{
    /* The peer's FIN may have come with the data of this very edge: then no
     * later edge will report it, so a short read must not end reading. */
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        c->peer_shut = true;
    /* Without EPOLLIN in the mask there is nothing new to read. */
    if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        return;
    c->drained = false;
    if (c->state == CONN_LINGER || c->close_after || c->eof || has_output(c))
        return;  /* conn_run reads once it gets there */
    /* Reading ahead holds a buffer per connection of the batch: only from
     * the pool, so a large batch costs no more memory than before. */
    if (!c->in && w->nspare == 0)
        return;
    if (read_input(w, c) < 0)
        c->read_failed = true;
}

void conn_run(struct worker *w, struct conn *c)
{
    if (c->read_failed) {
        conn_close(w, c);
        return;
    }
    for (;;) {
        if (c->state == CONN_LINGER) {
            linger(w, c);
            return;
        }
        if (has_output(c)) {
            int r = flush(w, c);
            if (r < 0) {
                conn_close(w, c);
                return;
            }
            if (r == 0)
                return;  /* EPOLLOUT resumes */
            if (c->idle && !c->close_after)
                c->read_deadline = clock_ms() + settings_of(w)->idle_timeout_ms;
        }
        if (c->close_after) {
            /* A client that sent all it meant to (its request read to the
             * end, nothing after it) can be closed on at once; otherwise
             * drain what it still sends so it sees our answer, not a
             * reset. */
            if (c->linger || c->state != CONN_HEAD || (c->in && c->in_start < c->in_len)) {
                begin_linger(w, c);
                continue;
            }
            conn_close(w, c);
            return;
        }
        if (c->in && process(w, c))
            continue;
        if (c->eof) {
            conn_close(w, c);
            return;
        }
        ssize_t n = c->drained ? 0 : read_input(w, c);
        if (n < 0) {
            conn_close(w, c);
            return;
        }
        if (n == 0 && !c->eof) {
            release_buffers_if_idle(w, c);
            if (w->stopping)
                conn_stop_if_idle(w, c);
            return;
        }
    }
}

bool conn_streams_into_module(const struct conn *c)
{
    return c->pending && c->pending->mapping;
}

void conn_stop_if_idle(struct worker *w, struct conn *c)
{
    if (c->state == CONN_HEAD && c->idle && !has_output(c) && (!c->in || c->in_start == c->in_len))
        conn_close(w, c);
}

void conn_check_timers(struct worker *w, struct conn *c)
{
    uint64_t now = clock_ms();
    if (has_output(c)) {
        if (c->write_deadline && now >= c->write_deadline) {
            log_msg(LOG_DEBUG, "send timeout");
            conn_close(w, c);
        }
        return;
    }
    if (now < c->read_deadline)
        return;
    if (c->state == CONN_HEAD && !c->idle && c->in && c->in_len > c->in_start) {
        answer_error(w, c, 408, "The request head was not received in time.");
        conn_run(w, c);
        return;
    }
    conn_close(w, c);
}
