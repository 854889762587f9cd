/* The exchange's lifetime and the calls of verbd.h that a module answers,
 * reads and waits with.  The session behind x->ops does the protocol. */
#include "core/exchange.h"

#include "core/log.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"

/* The first arena block: a common request head and its fields fit. */
#define ARENA_FIRST 4096
#define POOL_MAX 64

/* Something an exchange registered on the loop, cancelled when it ends. */
enum handle_kind { HANDLE_TIMER, HANDLE_WATCH, HANDLE_DEFER };

struct vx_handle {
    struct vx_handle *next;
    struct vx_handle *next_spare; /* a deferred call that ran: in x->spare_defer */
    enum handle_kind kind;
    bool active;
    struct verbd_exchange *x;
    void *arg;
};

struct verbd_timer {
    struct vx_handle h;
    struct loop_timer t;
    uint64_t every;
    void (*cb)(struct verbd_exchange *x, void *arg);
};

struct verbd_watch {
    struct vx_handle h;
    struct loop_watch w;
    void (*cb)(struct verbd_exchange *x, unsigned events, void *arg);
};

struct vx_defer {
    struct vx_handle h;
    struct loop_defer d;
    void (*cb)(struct verbd_exchange *x, void *arg);
};

static struct verbd_exchange *pool;
static size_t pooled;

struct verbd_exchange *vx_new(struct loop *loop, const struct vx_session_ops *ops, void *sess)
{
    struct verbd_exchange *x = pool;
    if (x) {
        pool = x->next_free;
        pooled--;
    } else {
        x = calloc(1, sizeof *x);
        if (!x)
            abort();
        arena_init(&x->arena, ARENA_FIRST);
        response_init(&x->res);
    }
    memset(&x->req, 0, sizeof *x - offsetof(struct verbd_exchange, req));
    x->loop = loop;
    x->ops = ops;
    x->sess = sess;
    return x;
}

static void cancel_handles(struct verbd_exchange *x)
{
    for (struct vx_handle *h = x->handles; h; h = h->next) {
        if (!h->active)
            continue;
        h->active = false;
        switch (h->kind) {
        case HANDLE_TIMER: loop_timer_stop(x->loop, &((struct verbd_timer *)h)->t); break;
        case HANDLE_WATCH: loop_watch_del(x->loop, &((struct verbd_watch *)h)->w, false); break;
        case HANDLE_DEFER: loop_defer_cancel(x->loop, &((struct vx_defer *)h)->d); break;
        }
    }
    x->handles = NULL;
    x->spare_defer = NULL;
}

void vx_end(struct verbd_exchange *x)
{
    if (x->handles)
        cancel_handles(x);
    arena_reset(&x->arena); /* the cleanups, newest first */
    if (x->handles)
        cancel_handles(x); /* ...which may not register more, but be sure */
    response_reset(&x->res);
    if (x->res.head.cap > 16384 || x->res.body.cap > 65536 || pooled >= POOL_MAX) {
        arena_free(&x->arena);
        response_free(&x->res);
        free(x);
        return;
    }
    x->next_free = pool;
    pool = x;
    pooled++;
}

void vx_client_gone(struct verbd_exchange *x)
{
    x->aborted = true;
    x->finished = true;
    vx_end(x);
}

void vx_pool_free(void)
{
    while (pool) {
        struct verbd_exchange *x = pool;
        pool = x->next_free;
        arena_free(&x->arena);
        response_free(&x->res);
        free(x);
    }
    pooled = 0;
}

static struct span rebase(struct span s, const char *from, const char *to)
{
    if (s.p)
        s.p = to + (s.p - from);
    return s;
}

void vx_take_request(struct verbd_exchange *x, const struct http_request *h, const char *head)
{
    char *copy = arena_dup(&x->arena, head, h->head_len);
    struct http_request *r = &x->req.http;
    *r = *h;
    r->method = rebase(h->method, head, copy);
    r->target = rebase(h->target, head, copy);
    r->path = rebase(h->path, head, copy);
    r->query = rebase(h->query, head, copy);
    /* An HTTP/1.0 request without Host has an empty static span. */
    if (h->host.p >= head && h->host.p < head + h->head_len)
        r->host = rebase(h->host, head, copy);
    r->fields = arena_alloc(&x->arena, h->nfields * sizeof *r->fields + 1);
    for (size_t i = 0; i < h->nfields; i++) {
        r->fields[i].name = rebase(h->fields[i].name, head, copy);
        r->fields[i].value = rebase(h->fields[i].value, head, copy);
    }
}

/* ---- answering ------------------------------------------------------------- */

const struct verbd_request *verbd_exchange_request(struct verbd_exchange *x)
{
    return &x->req;
}

struct verbd_response *verbd_exchange_response(struct verbd_exchange *x)
{
    return &x->res;
}

void *verbd_alloc(struct verbd_exchange *x, size_t n)
{
    return arena_alloc(&x->arena, n);
}

void verbd_cleanup(struct verbd_exchange *x, void (*fn)(void *arg), void *arg)
{
    arena_cleanup(&x->arena, fn, arg);
}

int verbd_aborted(const struct verbd_exchange *x)
{
    return x->aborted;
}

/* The head's last changes before the session takes it: error_page may
 * take the exchange over (true: nothing is sent for this call), then
 * `expires`, then the body filter's view of it. */
static bool filter_head(struct verbd_exchange *x, bool last)
{
    if (x->head_sent)
        return false;
    if (x->intercept && x->intercept(x, last))
        return true;
    if (x->head_filter) {
        x->head_filter(x);
        x->head_filter = NULL;
    }
    if (x->filter && !x->filter->head(x, x->filter_arg, last))
        x->filter = NULL;
    return false;
}

/* Runs the body filter over what the module handed over and passes the
 * result on.  A filtered response's head goes out before its body, on
 * its own: the filter changes the body's length, so the session never
 * frames it with the module's (chunked on HTTP/1.1).  Returns what
 * ops->send says, or 0 while the filter holds input. */
static int filter_send(struct verbd_exchange *x, bool last)
{
    bool first = !x->head_sent;
    x->filter_busy = x->filter->body(x, x->filter_arg, last);
    if (x->filter_busy || (first && last))
        x->ops->send(x->sess, x, false);
    if (x->filter_busy) {
        x->closing = last;
        return 0;
    }
    bool ok = x->ops->send(x->sess, x, last);
    if (last) {
        x->closing = false;
        x->finished = true;
        x->on_writable = NULL;
    }
    return ok;
}

int verbd_send(struct verbd_exchange *x)
{
    if (x->finished || x->closing)
        return 0;
    if (filter_head(x, false))
        return 1;
    if (x->filter)
        return filter_send(x, false);
    return x->ops->send(x->sess, x, false);
}

void verbd_finish(struct verbd_exchange *x)
{
    if (x->finished || x->closing)
        return;
    if (filter_head(x, true))
        return;
    if (x->filter) {
        filter_send(x, true);
        return;
    }
    x->ops->send(x->sess, x, true);
    x->finished = true;
    x->on_writable = NULL;
}

void verbd_abort(struct verbd_exchange *x)
{
    if (x->finished)
        return;
    x->aborted = true;
    x->finished = true;
    x->on_writable = NULL;
    x->ops->abort(x->sess, x);
}

void verbd_on_writable(struct verbd_exchange *x, void (*cb)(struct verbd_exchange *x, void *arg),
                       void *arg)
{
    x->on_writable = cb;
    x->writable_arg = arg;
}

void vx_writable(struct verbd_exchange *x)
{
    if (x->filter_busy && !x->finished) {
        struct log_target *before = log_use(x->log);
        filter_send(x, x->closing);
        log_use(before);
        if (x->filter_busy || x->finished)
            return;
    }
    void (*cb)(struct verbd_exchange *, void *) = x->on_writable;
    x->on_writable = NULL;
    if (cb && !x->finished) {
        struct log_target *before = log_use(x->log);
        cb(x, x->writable_arg);
        log_use(before);
    }
}

void verbd_end_on_client_end(struct verbd_exchange *x)
{
    x->end_on_client_end = true;
}

/* ---- reading the body ---------------------------------------------------------- */

void verbd_read(struct verbd_exchange *x,
                void (*data)(struct verbd_exchange *x, const void *p, size_t len, void *arg),
                void (*done)(struct verbd_exchange *x, int status, void *arg), void *arg)
{
    if (x->reading || x->body_done)
        return;
    x->on_data = data;
    x->on_done = done;
    x->read_arg = arg;
    x->reading = true;
    x->ops->read(x->sess, x);
}

void verbd_read_pause(struct verbd_exchange *x)
{
    if (x->reading && !x->paused) {
        x->paused = true;
        x->ops->pause(x->sess, x, true);
    }
}

void verbd_read_resume(struct verbd_exchange *x)
{
    if (x->reading && x->paused) {
        x->paused = false;
        x->ops->pause(x->sess, x, false);
    }
}

void verbd_interim(struct verbd_exchange *x, int status, const char *fields, size_t len)
{
    if (status > 101 && status < 200 && !x->head_sent && x->ops->send_interim)
        x->ops->send_interim(x->sess, x, status, fields, len);
}

int verbd_upgrade(struct verbd_exchange *x,
                  void (*data)(struct verbd_exchange *x, const void *p, size_t len, void *arg),
                  void (*done)(struct verbd_exchange *x, int status, void *arg), void *arg)
{
    if (x->head_sent || x->reading || x->res.status != 101 || !x->ops->upgrade)
        return 0;
    x->filter = NULL; /* a tunnel's bytes pass as they are */
    /* The tunnel's input is read like a body that only the client ends. */
    x->on_data = data;
    x->on_done = done;
    x->read_arg = arg;
    x->reading = true;
    x->body_done = false;
    if (!x->ops->upgrade(x->sess, x)) {
        x->reading = false;
        x->on_data = NULL;
        x->on_done = NULL;
        return 0;
    }
    return 1;
}

void verbd_continue(struct verbd_exchange *x)
{
    if (!x->continued && !x->head_sent) {
        x->continued = true;
        x->ops->send_continue(x->sess, x);
    }
}

void vx_take_trailers(struct verbd_exchange *x, const char *p, size_t n)
{
    char *copy = arena_alloc(&x->arena, n);
    memcpy(copy, p, n);
    x->req.trailers = (struct span){copy, n};
}

void vx_body_data(struct verbd_exchange *x, const void *p, size_t n)
{
    if (x->reading && n && x->on_data) {
        struct log_target *before = log_use(x->log);
        x->on_data(x, p, n, x->read_arg);
        log_use(before);
    }
}

void vx_body_done(struct verbd_exchange *x, int status)
{
    if (x->body_done)
        return;
    x->body_done = true;
    bool was_reading = x->reading;
    x->reading = false;
    if (was_reading && x->on_done) {
        struct log_target *before = log_use(x->log);
        x->on_done(x, status, x->read_arg);
        log_use(before);
    }
}

/* ---- waiting --------------------------------------------------------------------- */

static void *new_handle(struct verbd_exchange *x, size_t size, enum handle_kind kind, void *arg)
{
    struct vx_handle *h = arena_zalloc(&x->arena, size);
    h->kind = kind;
    h->active = true;
    h->x = x;
    h->arg = arg;
    h->next = x->handles;
    x->handles = h;
    return h;
}

static void timer_fired(void *arg)
{
    struct verbd_timer *t = arg;
    if (t->every)
        loop_timer_at(t->h.x->loop, &t->t, t->t.at + t->every, timer_fired, t);
    else
        t->h.active = false;
    struct log_target *before = log_use(t->h.x->log);
    t->cb(t->h.x, t->h.arg);
    log_use(before);
}

struct verbd_timer *verbd_timer(struct verbd_exchange *x, uint64_t ms, uint64_t every_ms,
                                void (*cb)(struct verbd_exchange *x, void *arg), void *arg)
{
    struct verbd_timer *t = new_handle(x, sizeof *t, HANDLE_TIMER, arg);
    t->cb = cb;
    t->every = every_ms;
    loop_timer_init(&t->t);
    loop_timer_at(x->loop, &t->t, clock_ms() + ms, timer_fired, t);
    return t;
}

void verbd_timer_cancel(struct verbd_timer *t)
{
    if (t && t->h.active) {
        t->h.active = false;
        loop_timer_stop(t->h.x->loop, &t->t);
    }
}

void verbd_timer_reset(struct verbd_timer *t, uint64_t ms)
{
    t->h.active = true;
    loop_timer_at(t->h.x->loop, &t->t, clock_ms() + ms, timer_fired, t);
}

static void watch_fired(void *arg, uint32_t events)
{
    struct verbd_watch *w = arg;
    unsigned e = 0;
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))
        e |= VERBD_READABLE;
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        e |= VERBD_WRITABLE;
    struct log_target *before = log_use(w->h.x->log);
    w->cb(w->h.x, e, w->h.arg);
    log_use(before);
}

struct verbd_watch *verbd_watch(struct verbd_exchange *x, int fd, unsigned events,
                                void (*cb)(struct verbd_exchange *x, unsigned events, void *arg),
                                void *arg)
{
    struct verbd_watch *w = new_handle(x, sizeof *w, HANDLE_WATCH, arg);
    w->cb = cb;
    uint32_t ev = (events & VERBD_READABLE ? EPOLLIN | EPOLLRDHUP : 0u) |
                  (events & VERBD_WRITABLE ? EPOLLOUT : 0u);
    if (loop_watch_add(x->loop, &w->w, fd, ev, watch_fired, w) < 0) {
        w->h.active = false;
        return NULL;
    }
    return w;
}

void verbd_watch_cancel(struct verbd_watch *w)
{
    if (w && w->h.active) {
        w->h.active = false;
        loop_watch_del(w->h.x->loop, &w->w, false);
    }
}

/* A deferred call's handle is the exchange's alone (verbd_defer returns
 * none), so once it ran it serves the next one: a module that defers on
 * every piece of a long body does not grow the arena. */
static void defer_fired(void *arg)
{
    struct vx_defer *d = arg;
    d->h.active = false;
    d->h.next_spare = d->h.x->spare_defer;
    d->h.x->spare_defer = &d->h;
    struct log_target *before = log_use(d->h.x->log);
    d->cb(d->h.x, d->h.arg);
    log_use(before);
}

void verbd_defer(struct verbd_exchange *x, void (*cb)(struct verbd_exchange *x, void *arg),
                 void *arg)
{
    struct vx_defer *d;
    if (x->spare_defer) {
        d = (struct vx_defer *)x->spare_defer;
        x->spare_defer = d->h.next_spare;
        d->h.active = true;
        d->h.arg = arg;
    } else {
        d = new_handle(x, sizeof *d, HANDLE_DEFER, arg);
    }
    d->cb = cb;
    loop_defer_init(&d->d);
    loop_defer(x->loop, &d->d, defer_fired, d);
}
