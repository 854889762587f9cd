#include "core/loop.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/clock.h"

#define MAX_EVENTS 256

struct loop {
    int epfd;
    struct loop_timer **heap;
    size_t nheap, cap_heap;
    struct loop_defer deferred;    /* list head */
    struct loop_defer mark;        /* where the calls of this pass end */
    struct loop_defer timers_mark; /* where the calls the timers queue begin */
    struct epoll_event events[MAX_EVENTS];
    int nevents, next_event; /* the batch being delivered */
};

struct loop *loop_new(void)
{
    struct loop *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        free(l);
        return NULL;
    }
    l->deferred.prev = l->deferred.next = &l->deferred;
    return l;
}

void loop_free(struct loop *l)
{
    if (!l)
        return;
    close(l->epfd);
    free(l->heap);
    free(l);
}

/* ---- watches ------------------------------------------------------------ */

int loop_watch_add(struct loop *l, struct loop_watch *w, int fd, uint32_t events, loop_io_fn *cb,
                   void *arg)
{
    w->fd = fd;
    w->cb = cb;
    w->arg = arg;
    struct epoll_event ev = {.events = events, .data.ptr = w};
    return epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev);
}

int loop_watch_mod(struct loop *l, struct loop_watch *w, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = w};
    return epoll_ctl(l->epfd, EPOLL_CTL_MOD, w->fd, &ev);
}

void loop_watch_del(struct loop *l, struct loop_watch *w, bool fd_closing)
{
    /* An event for w later in this batch must not reach a freed watch. */
    for (int i = l->next_event; i < l->nevents; i++)
        if (l->events[i].data.ptr == w)
            l->events[i].data.ptr = NULL;
    if (!fd_closing)
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
    w->fd = -1;
}

/* ---- timers: a binary min-heap on the deadline ---------------------------- */

static void heap_set(struct loop *l, size_t i, struct loop_timer *t)
{
    l->heap[i] = t;
    t->slot = i;
}

static void sift_up(struct loop *l, size_t i)
{
    struct loop_timer *t = l->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (l->heap[parent]->at <= t->at)
            break;
        heap_set(l, i, l->heap[parent]);
        i = parent;
    }
    heap_set(l, i, t);
}

static void sift_down(struct loop *l, size_t i)
{
    struct loop_timer *t = l->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= l->nheap)
            break;
        if (c + 1 < l->nheap && l->heap[c + 1]->at < l->heap[c]->at)
            c++;
        if (l->heap[c]->at >= t->at)
            break;
        heap_set(l, i, l->heap[c]);
        i = c;
    }
    heap_set(l, i, t);
}

void loop_timer_stop(struct loop *l, struct loop_timer *t)
{
    if (t->slot == LOOP_TIMER_IDLE)
        return;
    size_t i = t->slot;
    t->slot = LOOP_TIMER_IDLE;
    struct loop_timer *last = l->heap[--l->nheap];
    if (i == l->nheap)
        return;
    heap_set(l, i, last);
    if (i > 0 && l->heap[(i - 1) / 2]->at > last->at)
        sift_up(l, i);
    else
        sift_down(l, i);
}

void loop_timer_at(struct loop *l, struct loop_timer *t, uint64_t at, loop_fn *cb, void *arg)
{
    loop_timer_stop(l, t);
    t->at = at;
    t->cb = cb;
    t->arg = arg;
    if (l->nheap == l->cap_heap) {
        size_t cap = l->cap_heap ? l->cap_heap * 2 : 64;
        struct loop_timer **h = realloc(l->heap, cap * sizeof *h);
        if (!h)
            abort();
        l->heap = h;
        l->cap_heap = cap;
    }
    l->heap[l->nheap++] = t;
    sift_up(l, l->nheap - 1);
}

static void run_timers(struct loop *l)
{
    uint64_t now = clock_ms();
    while (l->nheap && l->heap[0]->at <= now) {
        struct loop_timer *t = l->heap[0];
        loop_timer_stop(l, t);
        t->cb(t->arg);
    }
}

/* ---- deferred calls ------------------------------------------------------- */

void loop_defer(struct loop *l, struct loop_defer *d, loop_fn *cb, void *arg)
{
    if (d->queued)
        return;
    d->cb = cb;
    d->arg = arg;
    d->queued = true;
    d->prev = l->deferred.prev;
    d->next = &l->deferred;
    l->deferred.prev->next = d;
    l->deferred.prev = d;
}

void loop_defer_cancel(struct loop *l, struct loop_defer *d)
{
    (void)l;
    if (!d->queued)
        return;
    d->prev->next = d->next;
    d->next->prev = d->prev;
    d->queued = false;
}

static bool have_deferred(const struct loop *l)
{
    return l->deferred.next != &l->deferred;
}

/* Runs the calls queued after `from` so far; ones they queue wait for the
 * next turn, so a call that keeps re-queueing itself cannot starve the
 * loop. */
static void run_deferred(struct loop *l, struct loop_defer *from)
{
    loop_defer(l, &l->mark, NULL, NULL);
    while (from->next != &l->mark) {
        struct loop_defer *d = from->next;
        loop_defer_cancel(l, d);
        d->cb(d->arg);
    }
    loop_defer_cancel(l, &l->mark);
}

/* ---- one turn --------------------------------------------------------------- */

int loop_run_once(struct loop *l, int max_wait_ms)
{
    int wait = max_wait_ms;
    if (have_deferred(l)) {
        wait = 0;
    } else if (l->nheap) {
        uint64_t now = clock_ms(), at = l->heap[0]->at;
        uint64_t until = at > now ? at - now : 0;
        if (wait < 0 || until < (uint64_t)wait)
            wait = (int)until;
    }
    int n = epoll_wait(l->epfd, l->events, MAX_EVENTS, wait);
    clock_update();
    if (n < 0) {
        if (errno != EINTR)
            return -1;
        n = 0;
    }
    l->nevents = n;
    for (l->next_event = 0; l->next_event < l->nevents;) {
        struct epoll_event *ev = &l->events[l->next_event++];
        struct loop_watch *w = ev->data.ptr;
        if (w)
            w->cb(w->arg, ev->events);
    }
    l->nevents = l->next_event = 0;
    run_deferred(l, &l->deferred);
    /* The calls the timers queue run in this turn too; those the first
     * pass queued wait before the mark for the next one. */
    loop_defer(l, &l->timers_mark, NULL, NULL);
    run_timers(l);
    run_deferred(l, &l->timers_mark);
    loop_defer_cancel(l, &l->timers_mark);
    return n;
}
