/* The event loop: one per worker.  Descriptor watches (epoll), timers (a
 * binary heap of millisecond deadlines) and deferred calls, which run after
 * the current batch of events.  Every handle is a struct its owner embeds
 * or allocates: the loop itself allocates nothing per watch or timer. */
#ifndef VERBD_CORE_LOOP_H
#define VERBD_CORE_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

struct loop;

/* Called with the epoll event mask (EPOLLIN, EPOLLOUT, EPOLLHUP, ...). */
typedef void loop_io_fn(void *arg, uint32_t events);
typedef void loop_fn(void *arg);

struct loop_watch {
    int fd;
    loop_io_fn *cb;
    void *arg;
};

struct loop_timer {
    uint64_t at; /* clock_ms() deadline */
    size_t slot; /* in the heap, or LOOP_TIMER_IDLE */
    loop_fn *cb;
    void *arg;
};
#define LOOP_TIMER_IDLE ((size_t)-1)

struct loop_defer {
    struct loop_defer *prev, *next;
    loop_fn *cb;
    void *arg;
    bool queued;
};

struct loop *loop_new(void);
void loop_free(struct loop *l);

/* Watches fd for `events` (an epoll mask: EPOLLIN, EPOLLOUT, EPOLLET, ...).
 * 0, or -1 with errno. */
int loop_watch_add(struct loop *l, struct loop_watch *w, int fd, uint32_t events, loop_io_fn *cb,
                   void *arg);
int loop_watch_mod(struct loop *l, struct loop_watch *w, uint32_t events);
/* Stops watching; no event for w is delivered afterwards, even one already
 * collected in the current batch.  fd_closing: the caller closes the
 * descriptor next, which removes it from epoll without a call of its own. */
void loop_watch_del(struct loop *l, struct loop_watch *w, bool fd_closing);

static inline void loop_timer_init(struct loop_timer *t)
{
    t->slot = LOOP_TIMER_IDLE;
}
static inline bool loop_timer_armed(const struct loop_timer *t)
{
    return t->slot != LOOP_TIMER_IDLE;
}
/* Arms (or moves) t to fire once at clock_ms() deadline `at`. */
void loop_timer_at(struct loop *l, struct loop_timer *t, uint64_t at, loop_fn *cb, void *arg);
void loop_timer_stop(struct loop *l, struct loop_timer *t);

static inline void loop_defer_init(struct loop_defer *d)
{
    d->queued = false;
}
/* cb(arg) runs once after the current batch of events (a no-op if d is
 * queued already). */
void loop_defer(struct loop *l, struct loop_defer *d, loop_fn *cb, void *arg);
void loop_defer_cancel(struct loop *l, struct loop_defer *d);

/* One turn: waits up to max_wait_ms (less if a timer is due or a call is
 * deferred), delivers the events, runs the deferred calls and the due
 * timers.  Returns the number of events, or -1 with errno (EINTR is not
 * an error: 0). */
int loop_run_once(struct loop *l, int max_wait_ms);

#endif
