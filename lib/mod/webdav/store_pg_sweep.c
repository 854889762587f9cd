/* The background sweep of expired locks in PostgreSQL: every interval,
 * one DELETE of the rows whose expiry (the database's now()) has passed,
 * on a connection of its own that the worker's loop watches.  Expired
 * locks are ignored by every operation already; the sweep keeps the
 * table from growing with locks that clients never released.  A sweep
 * not over when the next is due is abandoned (its connection closed);
 * failures are logged at info level: the requests that need the
 * database say so as errors. */
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/loop.h"
#include "mod/webdav/store_pg_sweep.h"

static const char sweep_sql[] = "DELETE FROM dav_locks WHERE expires <= now()";

struct pg_sweeper {
    struct loop *loop;
    char *conninfo;
    uint64_t every_ms;
    PGconn *c;
    bool busy;     /* connecting, or the DELETE in flight */
    bool watching; /* w is in the loop */
    struct loop_watch w;
    struct loop_timer t;
};

static void unwatch(struct pg_sweeper *sw)
{
    if (sw->watching)
        loop_watch_del(sw->loop, &sw->w, false);
    sw->watching = false;
}

static void drop(struct pg_sweeper *sw, const char *why)
{
    if (why) {
        const char *msg = sw->c ? PQerrorMessage(sw->c) : "";
        log_msg(LOG_INFO, "webdav: PostgreSQL store: lock sweep: %s%s%.*s", why, *msg ? ": " : "",
                (int)strcspn(msg, "\n"), msg);
    }
    unwatch(sw);
    PQfinish(sw->c);
    sw->c = NULL;
    sw->busy = false;
}

static void on_io(void *arg, uint32_t events);

static void watch(struct pg_sweeper *sw, uint32_t events)
{
    int fd = PQsocket(sw->c);
    if (sw->watching && sw->w.fd == fd) {
        if (loop_watch_mod(sw->loop, &sw->w, events) == 0)
            return;
    }
    unwatch(sw);
    if (fd < 0 || loop_watch_add(sw->loop, &sw->w, fd, events, on_io, sw) != 0) {
        drop(sw, "watching the connection");
        return;
    }
    sw->watching = true;
}

static void send_sweep(struct pg_sweeper *sw)
{
    if (!PQsendQuery(sw->c, sweep_sql)) {
        drop(sw, "sending");
        return;
    }
    int f = PQflush(sw->c);
    if (f < 0)
        drop(sw, "sending");
    else
        watch(sw, f > 0 ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

static void read_results(struct pg_sweeper *sw)
{
    if (!PQconsumeInput(sw->c)) {
        drop(sw, "reading");
        return;
    }
    if (PQflush(sw->c) < 0) {
        drop(sw, "sending");
        return;
    }
    while (!PQisBusy(sw->c)) {
        PGresult *res = PQgetResult(sw->c);
        if (!res) { /* done: the connection stays for the next sweep */
            sw->busy = false;
            unwatch(sw);
            return;
        }
        if (PQresultStatus(res) == PGRES_COMMAND_OK) {
            const char *n = PQcmdTuples(res);
            if (atol(n) > 0)
                log_msg(LOG_DEBUG, "webdav: PostgreSQL store: swept %s expired lock%s", n,
                        strcmp(n, "1") ? "s" : "");
        } else {
            const char *msg = PQresultErrorMessage(res);
            log_msg(LOG_INFO, "webdav: PostgreSQL store: lock sweep: %.*s", (int)strcspn(msg, "\n"),
                    msg);
        }
        PQclear(res);
    }
}

static void on_io(void *arg, uint32_t events)
{
    (void)events;
    struct pg_sweeper *sw = arg;
    if (!sw->busy) { /* an idle connection spoke: the server ended it */
        drop(sw, NULL);
        return;
    }
    if (PQstatus(sw->c) != CONNECTION_OK) {
        switch (PQconnectPoll(sw->c)) {
        case PGRES_POLLING_READING: watch(sw, EPOLLIN); return;
        case PGRES_POLLING_WRITING: watch(sw, EPOLLOUT); return;
        case PGRES_POLLING_OK:
            if (PQsetnonblocking(sw->c, 1) != 0) {
                drop(sw, "connecting");
                return;
            }
            send_sweep(sw);
            return;
        default: drop(sw, "connecting"); return;
        }
    }
    read_results(sw);
}

static void on_timer(void *arg)
{
    struct pg_sweeper *sw = arg;
    loop_timer_at(sw->loop, &sw->t, clock_ms() + sw->every_ms, on_timer, sw);
    if (sw->busy)
        drop(sw, "the last sweep is not over; starting again");
    sw->busy = true;
    if (sw->c && PQstatus(sw->c) == CONNECTION_OK) {
        send_sweep(sw);
        return;
    }
    drop(sw, NULL);
    sw->busy = true;
    static const char *const keys[] = {"dbname", "client_encoding", "application_name", NULL};
    const char *const values[] = {sw->conninfo, "UTF8", "verbd", NULL};
    sw->c = PQconnectStartParams(keys, values, 1);
    if (!sw->c || PQstatus(sw->c) == CONNECTION_BAD) {
        drop(sw, "connecting");
        return;
    }
    watch(sw, EPOLLOUT);
}

struct pg_sweeper *pg_sweeper_start(struct loop *loop, const char *conninfo, uint64_t every_ms)
{
    struct pg_sweeper *sw = calloc(1, sizeof *sw);
    if (!sw || !(sw->conninfo = strdup(conninfo)))
        abort();
    sw->loop = loop;
    sw->every_ms = every_ms;
    loop_timer_init(&sw->t);
    loop_timer_at(loop, &sw->t, clock_ms() + every_ms, on_timer, sw);
    return sw;
}

void pg_sweeper_stop(struct pg_sweeper *sw)
{
    if (!sw)
        return;
    loop_timer_stop(sw->loop, &sw->t);
    drop(sw, NULL);
    free(sw->conninfo);
    free(sw);
}
