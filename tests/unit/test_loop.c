/* The event loop (lib/core/loop.c): the timer heap (order, stop and re-arm,
 * deadlines moved earlier and later, changes made from a timer's own
 * callback), deferred calls (after the batch, re-queued ones on the next
 * turn, cancelled ones never), and watches (one deleted during a batch gets
 * no event of that batch, nor later).
 *
 * test_defer_requeue_next_turn is the regression of a call that re-queued
 * itself running twice per turn. */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/loop.h"
#include "unit.h"

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- timers ---------------------------------------------------------------- */

#define NT 1000

struct tm_ {
    struct loop_timer t;
    int id;
    bool want; /* armed and due: must fire */
    uint64_t want_at;
    int fired;
};

static struct tm_ timers[NT];
static int order[NT * 4];
static uint64_t order_at[NT * 4];
static int nfired;
static struct loop *L;

static void record(void *arg)
{
    struct tm_ *m = arg;
    m->fired++;
    if (nfired < (int)(sizeof order / sizeof order[0])) {
        order[nfired] = m->id;
        order_at[nfired] = m->t.at;
    }
    nfired++;
    /* A timer is disarmed before its callback runs. */
    CHECK(!loop_timer_armed(&m->t));
}

static void reset_timers(void)
{
    memset(timers, 0, sizeof timers);
    for (int i = 0; i < NT; i++) {
        timers[i].id = i;
        loop_timer_init(&timers[i].t);
    }
    nfired = 0;
}

/* Fires what is due; checks that exactly the timers marked `want` fired,
 * once each, in the order of their deadlines. */
static void run_and_check(const char *what)
{
    int want = 0;
    for (int i = 0; i < NT; i++)
        want += timers[i].want;
    CHECK(loop_run_once(L, 0) >= 0);
    if (nfired != want)
        printf("%s: ", what);
    CHECK_INT(nfired, want);
    int bad_order = 0, bad_fire = 0, bad_at = 0;
    for (int i = 1; i < nfired && i < NT * 4; i++)
        bad_order += order_at[i] < order_at[i - 1];
    for (int i = 0; i < NT; i++) {
        bad_fire += timers[i].fired != (int)timers[i].want;
        if (timers[i].want && timers[i].t.at != timers[i].want_at)
            bad_at++;
        /* What did not fire is still armed exactly when it was left armed. */
        if (!timers[i].want && timers[i].fired == 0 && loop_timer_armed(&timers[i].t))
            CHECK(timers[i].t.at > clock_ms());
    }
    if (bad_order || bad_fire || bad_at)
        printf("%s: ", what);
    CHECK_INT(bad_order, 0);
    CHECK_INT(bad_fire, 0);
    CHECK_INT(bad_at, 0);
}

static void arm(int i, uint64_t at, uint64_t now)
{
    loop_timer_at(L, &timers[i].t, at, record, &timers[i]);
    timers[i].want = at <= now;
    timers[i].want_at = at;
}

static void stop(int i)
{
    loop_timer_stop(L, &timers[i].t);
    timers[i].want = false;
}

/* A deadline past `now` is put a minute further still: the test's own turn
 * takes time (much more under a sanitizer on a loaded machine), and a
 * deadline a few milliseconds ahead would come due before the loop runs. */
static uint64_t beyond(uint64_t at, uint64_t now)
{
    return at > now ? at + 60000 : at;
}

/* Many timers at random deadlines, some stopped and some moved (earlier,
 * later, into the future, out of it) before the turn: they fire in order. */
static void test_timer_heap_random(void)
{
    for (int round = 0; round < 20; round++) {
        reset_timers();
        clock_update();
        uint64_t now = clock_ms();
        /* Due deadlines in [now - 10^6, now]; future ones an hour ahead. */
        uint64_t lo = now > 1000000 ? now - 1000000 : 0;
        for (int i = 0; i < NT; i++) {
            uint64_t at = rnd() % 4 ? lo + rnd() % (now - lo + 1) : now + 3600000 + rnd() % 1000;
            if (round % 2 && i % 3 == 0)
                at = lo + (uint64_t)(i % 17); /* many equal deadlines */
            arm(i, at, now);
        }
        CHECK(loop_timer_armed(&timers[0].t));
        /* 5000 random operations on the heap. */
        for (int k = 0; k < 5000; k++) {
            int i = (int)(rnd() % NT);
            switch (rnd() % 6) {
            case 0:
                stop(i);
                CHECK(!loop_timer_armed(&timers[i].t));
                break;
            case 1: /* earlier */
                if (loop_timer_armed(&timers[i].t) && timers[i].t.at > lo)
                    arm(i, lo + rnd() % (timers[i].t.at - lo), now);
                break;
            case 2: /* later, maybe past now */
                if (loop_timer_armed(&timers[i].t))
                    arm(i, beyond(timers[i].t.at + rnd() % 100000, now), now);
                break;
            case 3: /* into the future */ arm(i, beyond(now + 1 + rnd() % 100000, now), now); break;
            case 4: /* out of the future */ arm(i, lo + rnd() % (now - lo + 1), now); break;
            default: /* stopped twice: a no-op */
                stop(i);
                stop(i);
                break;
            }
        }
        run_and_check("random heap");
        /* What is left is the future: nothing more fires now. */
        int before = nfired;
        CHECK(loop_run_once(L, 0) >= 0);
        CHECK_INT(nfired, before);
        for (int i = 0; i < NT; i++)
            loop_timer_stop(L, &timers[i].t);
    }
}

/* ---- changes made from inside a timer callback ---------------------------------- */

static struct tm_ *victim, *pushed, *to_future, *added;
static uint64_t cb_now;

static void meddling(void *arg)
{
    record(arg);
    /* Stops a due timer later in this pass: it must not fire. */
    loop_timer_stop(L, &victim->t);
    /* Moves another due one later, still due: it fires in order. */
    loop_timer_at(L, &pushed->t, cb_now - 1, record, pushed);
    /* Moves a due one into the future: it does not fire now. */
    loop_timer_at(L, &to_future->t, cb_now + 3600000, record, to_future);
    /* Arms a new one, due: it fires in this pass, in order. */
    loop_timer_at(L, &added->t, cb_now - 2, record, added);
    /* Re-arms itself later and due: fires again in this pass, last. */
    loop_timer_at(L, &((struct tm_ *)arg)->t, cb_now, record, arg);
}

static void test_timer_changes_in_callback(void)
{
    reset_timers();
    clock_update();
    cb_now = clock_ms();
    uint64_t base = cb_now - 1000;
    for (int i = 0; i < 10; i++)
        arm(i, base + (uint64_t)i * 10, cb_now);
    victim = &timers[7];
    pushed = &timers[6];
    to_future = &timers[8];
    added = &timers[20];
    loop_timer_at(L, &timers[3].t, base + 30, meddling, &timers[3]);
    CHECK(loop_run_once(L, 0) >= 0);
    /* 0 1 2 3(meddles) 4 5 9 20(added) 6(pushed) 3(again) */
    static const int want[] = {0, 1, 2, 3, 4, 5, 9, 20, 6, 3};
    CHECK_INT(nfired, 10);
    for (int i = 0; i < 10 && i < nfired; i++)
        CHECK_INT(order[i], want[i]);
    CHECK_INT(victim->fired, 0);
    CHECK_INT(to_future->fired, 0);
    CHECK(loop_timer_armed(&to_future->t));
    CHECK(!loop_timer_armed(&victim->t));
    loop_timer_stop(L, &to_future->t);
    CHECK(!loop_timer_armed(&to_future->t));
}

/* A timer ahead of now bounds the wait: the turn ends when it is due, not
 * at max_wait. */
static void test_timer_wakes_the_loop(void)
{
    reset_timers();
    clock_update();
    uint64_t t0 = mono_ms();
    loop_timer_at(L, &timers[0].t, clock_ms() + 50, record, &timers[0]);
    loop_timer_at(L, &timers[1].t, clock_ms() + 60000, record, &timers[1]);
    int turns = 0;
    while (!timers[0].fired && turns < 10) {
        CHECK(loop_run_once(L, 30000) >= 0);
        turns++;
    }
    uint64_t took = mono_ms() - t0;
    CHECK_INT(timers[0].fired, 1);
    CHECK_INT(timers[1].fired, 0);
    CHECK(turns <= 3);
    CHECK(took >= 49);
    CHECK(took < 10000);
    CHECK(clock_ms() >= timers[0].t.at); /* the loop updated the clock */
    loop_timer_stop(L, &timers[1].t);

    /* With nothing armed, max_wait bounds the wait. */
    t0 = mono_ms();
    CHECK_INT(loop_run_once(L, 20), 0);
    took = mono_ms() - t0;
    CHECK(took >= 19 && took < 10000);
}

/* ---- deferred calls ------------------------------------------------------------- */

static char trail[256];

static void note(const char *s)
{
    size_t n = strlen(trail);
    snprintf(trail + n, sizeof trail - n, "%s%s", n ? " " : "", s);
}

struct dcall {
    struct loop_defer d;
    const char *name;
    int runs;
    int requeue;          /* re-queue itself this many times */
    struct dcall *cancel; /* cancels this one when it runs */
    struct dcall *queue;  /* queues this one when it runs */
};

static void dcall_run(void *arg)
{
    struct dcall *c = arg;
    c->runs++;
    note(c->name);
    if (c->cancel)
        loop_defer_cancel(L, &c->cancel->d);
    if (c->queue)
        loop_defer(L, &c->queue->d, dcall_run, c->queue);
    if (c->requeue > 0) {
        c->requeue--;
        loop_defer(L, &c->d, dcall_run, c);
    }
}

static struct dcall *dcall_new(struct dcall *c, const char *name)
{
    memset(c, 0, sizeof *c);
    c->name = name;
    loop_defer_init(&c->d);
    return c;
}

/* Watches that note their name and may defer a call. */
struct w_ {
    struct loop_watch w;
    int fd;
    const char *name;
    int events;
    struct dcall *defer;
    struct w_ *del; /* deletes this watch when it fires */
    bool del_closing;
};

static void w_fired(void *arg, uint32_t events)
{
    struct w_ *w = arg;
    (void)events;
    w->events++;
    note(w->name);
    if (w->defer)
        loop_defer(L, &w->defer->d, dcall_run, w->defer);
    if (w->del) {
        loop_watch_del(L, &w->del->w, w->del_closing);
        if (w->del_closing) {
            close(w->del->fd);
            w->del->fd = -1;
        }
    }
}

/* A timer that notes its name and defers a call. */
struct t_defer {
    struct loop_timer t;
    const char *name;
    struct dcall *defer;
};

static void t_defer_fired(void *arg)
{
    struct t_defer *td = arg;
    note(td->name);
    loop_defer(L, &td->defer->d, dcall_run, td->defer);
}

static int efd(bool readable)
{
    int fd = eventfd(readable ? 1 : 0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) {
        perror("eventfd");
        exit(2);
    }
    return fd;
}

static void watch(struct w_ *w, const char *name, int fd)
{
    memset(w, 0, sizeof *w);
    w->name = name;
    w->fd = fd;
    CHECK_INT(loop_watch_add(L, &w->w, fd, EPOLLIN, w_fired, w), 0);
}

static void test_defer_after_batch(void)
{
    /* Two ready watches; the first to fire defers a call, which runs after
     * both, in the same turn. */
    struct w_ a, b;
    struct dcall d;
    watch(&a, "w", efd(true));
    watch(&b, "w", efd(true));
    dcall_new(&d, "d");
    a.defer = b.defer = &d; /* the second loop_defer is a no-op */
    trail[0] = '\0';
    CHECK_INT(loop_run_once(L, 1000), 2);
    CHECK_STR(trail, "w w d");
    CHECK_INT(d.runs, 1);
    loop_watch_del(L, &a.w, true);
    close(a.fd);
    loop_watch_del(L, &b.w, true);
    close(b.fd);

    /* A queued call makes the turn not wait. */
    dcall_new(&d, "d");
    loop_defer(L, &d.d, dcall_run, &d);
    uint64_t t0 = mono_ms();
    CHECK_INT(loop_run_once(L, 30000), 0);
    CHECK(mono_ms() - t0 < 10000);
    CHECK_INT(d.runs, 1);

    /* Calls run in the order queued; a cancelled one never runs, even when
     * another call of the same pass cancels it. */
    struct dcall c1, c2, c3, c4;
    dcall_new(&c1, "1");
    dcall_new(&c2, "2");
    dcall_new(&c3, "3");
    dcall_new(&c4, "4");
    c1.cancel = &c3;
    loop_defer(L, &c1.d, dcall_run, &c1);
    loop_defer(L, &c2.d, dcall_run, &c2);
    loop_defer(L, &c3.d, dcall_run, &c3);
    loop_defer(L, &c4.d, dcall_run, &c4);
    loop_defer_cancel(L, &c4.d);
    loop_defer_cancel(L, &c4.d); /* twice: a no-op */
    trail[0] = '\0';
    CHECK(loop_run_once(L, 0) >= 0);
    CHECK_STR(trail, "1 2");
    CHECK_INT(c3.runs, 0);
    CHECK_INT(c4.runs, 0);
    CHECK(!c3.d.queued && !c4.d.queued);
    trail[0] = '\0';
    CHECK(loop_run_once(L, 0) >= 0);
    CHECK_STR(trail, "");

    /* The order of a turn: events, the calls they deferred, the due
     * timers, then the calls the timers deferred, all in the same turn. */
    struct dcall by_event, by_timer;
    dcall_new(&by_event, "d1");
    dcall_new(&by_timer, "d2");
    struct w_ w;
    watch(&w, "w", efd(true));
    w.defer = &by_event;
    clock_update();
    struct t_defer td = {.name = "t", .defer = &by_timer};
    loop_timer_init(&td.t);
    loop_timer_at(L, &td.t, clock_ms(), t_defer_fired, &td);
    trail[0] = '\0';
    CHECK_INT(loop_run_once(L, 0), 1);
    CHECK_STR(trail, "w d1 t d2");
    loop_watch_del(L, &w.w, true);
    close(w.fd);
    /* Nothing on the stack stays queued, whatever failed above. */
    loop_timer_stop(L, &td.t);
    struct dcall *all[] = {&d, &c1, &c2, &c3, &c4, &by_event, &by_timer};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        loop_defer_cancel(L, &all[i]->d);
}

/* A call that queues another (or itself) from its callback: the new one
 * waits for the next turn, so a call that keeps re-queueing itself runs
 * once per turn and cannot starve the events. */
static void test_defer_requeue_next_turn(bool strict)
{
    struct dcall self, other, late;
    dcall_new(&self, "s");
    dcall_new(&other, "o");
    dcall_new(&late, "l");
    self.requeue = 100;
    other.queue = &late;
    loop_defer(L, &self.d, dcall_run, &self);
    loop_defer(L, &other.d, dcall_run, &other);
    struct w_ w;
    watch(&w, "w", efd(true)); /* an event every turn (level-triggered) */
    for (int turn = 1; turn <= 5; turn++) {
        trail[0] = '\0';
        CHECK(loop_run_once(L, 0) >= 0);
        if (strict) {
            /* The event first, then this turn's calls: one run of s. */
            CHECK_INT(self.runs, turn);
            CHECK_STR(trail, turn == 1 ? "w s o" : turn == 2 ? "w s l" : "w s");
        } else {
            CHECK(self.runs <= 2 * turn); /* bounded, whatever the pass */
            CHECK(strncmp(trail, "w ", 2) == 0);
        }
        CHECK_INT(w.events, turn); /* the events are never starved */
    }
    loop_watch_del(L, &w.w, true);
    close(w.fd);
    loop_defer_cancel(L, &self.d);
    loop_defer_cancel(L, &other.d);
    loop_defer_cancel(L, &late.d);
}

/* ---- watches ---------------------------------------------------------------------- */

static void test_watch_deleted_in_batch(void)
{
    /* Two ready watches, each deleting the other: whichever fires first,
     * the other gets no event of this batch, nor of later ones (the fd
     * stays readable, level-triggered). */
    for (int closing = 0; closing < 2; closing++) {
        struct w_ a, b;
        watch(&a, "a", efd(true));
        watch(&b, "b", efd(true));
        a.del = &b;
        b.del = &a;
        a.del_closing = b.del_closing = closing;
        CHECK_INT(loop_run_once(L, 1000), 2); /* both in one batch */
        CHECK_INT(a.events + b.events, 1);
        struct w_ *live = a.events ? &a : &b, *dead = a.events ? &b : &a;
        CHECK_INT(dead->w.fd, -1);
        live->del = NULL;
        for (int i = 0; i < 3; i++)
            CHECK(loop_run_once(L, 0) >= 0);
        CHECK_INT(live->events, 4);
        CHECK_INT(dead->events, 0);
        loop_watch_del(L, &live->w, true);
        close(live->fd);
        if (dead->fd >= 0)
            close(dead->fd);
    }
}

/* The first watch to fire deletes every other watch of a set. */
static struct loop_watch *set_w[64];
static int set_n, set_events;

static void delete_others(void *arg, uint32_t events)
{
    (void)events;
    struct loop_watch *me = arg;
    set_events++;
    for (int i = 0; i < set_n; i++) {
        if (set_w[i] && set_w[i] != me) {
            loop_watch_del(L, set_w[i], false);
            set_w[i] = NULL;
        }
    }
}

static void test_watch_deleted_many(void)
{
    struct loop_watch ws[40];
    int fds[40];
    set_n = 40;
    set_events = 0;
    for (int i = 0; i < set_n; i++) {
        fds[i] = efd(true);
        set_w[i] = &ws[i];
        CHECK_INT(loop_watch_add(L, &ws[i], fds[i], EPOLLIN, delete_others, &ws[i]), 0);
    }
    CHECK_INT(loop_run_once(L, 1000), set_n); /* all ready in one batch */
    CHECK_INT(set_events, 1);
    CHECK(loop_run_once(L, 0) >= 0);
    CHECK_INT(set_events, 2); /* the survivor, still readable */
    for (int i = 0; i < set_n; i++) {
        if (set_w[i])
            loop_watch_del(L, set_w[i], true);
        close(fds[i]);
    }
}

/* Events and modes: EPOLLOUT, loop_watch_mod, a watch re-added after its
 * deletion in the same batch gets only new events. */
static void test_watch_mod(void)
{
    struct w_ w;
    watch(&w, "w", efd(false));
    CHECK_INT(loop_run_once(L, 0), 0);
    CHECK_INT(w.events, 0);
    CHECK_INT(loop_watch_mod(L, &w.w, EPOLLOUT), 0); /* an eventfd is writable */
    CHECK_INT(loop_run_once(L, 1000), 1);
    CHECK_INT(w.events, 1);
    CHECK_INT(loop_watch_mod(L, &w.w, EPOLLIN), 0);
    CHECK_INT(loop_run_once(L, 0), 0);
    uint64_t one = 1;
    CHECK_INT(write(w.fd, &one, sizeof one), 8);
    CHECK_INT(loop_run_once(L, 1000), 1);
    CHECK_INT(w.events, 2);
    loop_watch_del(L, &w.w, false);
    CHECK_INT(w.w.fd, -1);
    CHECK_INT(loop_run_once(L, 0), 0);
    CHECK_INT(w.events, 2);
    close(w.fd);
}

int main(void)
{
    L = loop_new();
    CHECK(L != NULL);
    test_timer_heap_random();
    test_timer_changes_in_callback();
    test_timer_wakes_the_loop();
    test_defer_after_batch();
    test_defer_requeue_next_turn(true);
    test_watch_deleted_in_batch();
    test_watch_deleted_many();
    test_watch_mod();
    loop_free(L);
    return unit_report();
}
