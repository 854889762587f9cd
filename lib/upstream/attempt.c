#include "upstream/attempt.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "core/exchange.h"
#include "core/log.h"

static void on_io(void *arg, uint32_t events);

static void on_timeout(struct verbd_exchange *x, void *arg)
{
    (void)x;
    struct upstream_attempt *a = arg;
    a->o.timed_out(a->o.owner);
}

static void arm(struct upstream_attempt *a, uint64_t ms)
{
    if (a->timer)
        verbd_timer_reset(a->timer, ms);
    else
        a->timer = verbd_timer(a->x, ms, 0, on_timeout, a);
}

void upstream_attempt_stop_timer(struct upstream_attempt *a)
{
    verbd_timer_cancel(a->timer);
    a->timer = NULL;
}

void upstream_attempt_await(struct upstream_attempt *a)
{
    arm(a, a->t.read_ms);
}

void upstream_attempt_init(struct upstream_attempt *a, struct upstream_group *g, const char *module,
                           struct verbd_exchange *x, const struct upstream_timeouts *t,
                           const struct upstream_owner *o)
{
    memset(a, 0, sizeof *a);
    a->group = g;
    a->module = module;
    a->x = x;
    a->t = *t;
    a->o = *o;
}

static bool open_conn(struct upstream_attempt *a)
{
    a->conn = upstream_conn_open(a->group, a->member, a->x->loop, &a->reused, on_io, a);
    a->connected = a->conn && a->reused;
    a->readable = a->peer_shut = false;
    if (a->conn)
        arm(a, a->connected ? a->t.read_ms : a->t.connect_ms);
    return a->conn != NULL;
}

static bool connect_next(struct upstream_attempt *a, char *why, size_t len)
{
    for (;;) {
        a->member = upstream_pick(a->group, a->member);
        a->tries++;
        if (open_conn(a))
            return true;
        snprintf(why, len, "connect: %s", strerror(errno));
        if (a->tries >= a->group->n)
            return false;
        log_msg(LOG_ERROR, "%s %s (%s): %s; trying another", a->module, a->group->name,
                a->member->name, why);
        upstream_member_done(a->member, false);
    }
}

static void on_io(void *arg, uint32_t events)
{
    struct upstream_attempt *a = arg;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        a->readable = true;
    /* The close may come with the data of this very edge: no later edge
     * reports it, so a short read must not end reading. */
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        a->peer_shut = true;
    if (!a->connected && (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))) {
        int e = 0;
        socklen_t elen = sizeof e;
        getsockopt(a->conn->fd, SOL_SOCKET, SO_ERROR, &e, &elen);
        if (e) {
            char why[160];
            snprintf(why, sizeof why, "connect: %s", strerror(e));
            if (a->tries >= a->group->n) {
                a->o.failed(a->o.owner, why);
                return;
            }
            /* Nothing was sent: another member may take it. */
            log_msg(LOG_ERROR, "%s %s (%s): %s; trying another", a->module, a->group->name,
                    a->member->name, why);
            upstream_member_done(a->member, false);
            upstream_conn_close(a->conn);
            a->conn = NULL;
            if (!connect_next(a, why, sizeof why)) {
                a->o.failed(a->o.owner, why);
                return;
            }
            /* A kept connection to the next member raises no edge of its
             * own: it is driven at once. */
            if (!a->connected)
                return;
        } else {
            a->connected = true;
            arm(a, a->t.read_ms);
        }
    }
    a->o.ready(a->o.owner);
}

bool upstream_attempt_connect(struct upstream_attempt *a)
{
    char why[160];
    if (connect_next(a, why, sizeof why))
        return true;
    a->o.failed(a->o.owner, why);
    return false;
}

int upstream_attempt_send(struct upstream_attempt *a, const struct buf *out, size_t *at)
{
    bool progress = false;
    while (*at < out->len) {
        ssize_t n = send(a->conn->fd, out->p + *at, out->len - *at, MSG_NOSIGNAL);
        if (n > 0) {
            *at += (size_t)n;
            progress = true;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (progress)
                arm(a, a->t.send_ms);
            return 0;
        }
        if (n < 0 && errno == EINTR)
            continue;
        return -1;
    }
    arm(a, a->t.read_ms); /* all sent: the answer is due */
    return 1;
}

ssize_t upstream_attempt_recv(struct upstream_attempt *a, char *p, size_t room)
{
    for (;;) {
        if (!a->readable)
            return 0;
        ssize_t n = recv(a->conn->fd, p, room, 0);
        if (n > 0) {
            if ((size_t)n < room && !a->peer_shut)
                a->readable = false;
            arm(a, a->t.read_ms);
            return n;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            a->readable = false;
            return 0;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            errno = 0;
        return -1;
    }
}

bool upstream_attempt_reconnect(struct upstream_attempt *a)
{
    upstream_conn_close(a->conn);
    a->conn = NULL;
    return open_conn(a);
}

void upstream_attempt_release(struct upstream_attempt *a, bool keep)
{
    if (!a->conn)
        return;
    if (keep)
        upstream_conn_keep(a->conn);
    else
        upstream_conn_close(a->conn);
    a->conn = NULL;
}

void upstream_attempt_done(struct upstream_attempt *a, bool ok)
{
    if (a->member)
        upstream_member_done(a->member, ok);
    a->member = NULL;
}
