#include "upstream/attempt.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "core/log.h"

void upstream_attempt_init(struct upstream_attempt *a, struct upstream_group *g, const char *module,
                           struct loop *loop, void (*on_io)(void *owner, uint32_t events),
                           void *owner)
{
    memset(a, 0, sizeof *a);
    a->group = g;
    a->module = module;
    a->loop = loop;
    a->on_io = on_io;
    a->owner = owner;
}

static bool open_conn(struct upstream_attempt *a)
{
    a->conn = upstream_conn_open(a->group, a->member, a->loop, &a->reused, a->on_io, a->owner);
    a->connected = a->conn && a->reused;
    a->readable = a->peer_shut = false;
    return a->conn != NULL;
}

bool upstream_attempt_connect(struct upstream_attempt *a, char *why, size_t len)
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

int upstream_attempt_event(struct upstream_attempt *a, uint32_t events, char *why, size_t len)
{
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        a->readable = true;
    /* The close may come with the data of this very edge: no later edge
     * reports it, so a short read must not end reading. */
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        a->peer_shut = true;
    if (a->connected || !(events & (EPOLLOUT | EPOLLHUP | EPOLLERR)))
        return 1;
    int e = 0;
    socklen_t elen = sizeof e;
    getsockopt(a->conn->fd, SOL_SOCKET, SO_ERROR, &e, &elen);
    if (!e) {
        a->connected = true;
        return 1;
    }
    snprintf(why, len, "connect: %s", strerror(e));
    if (a->tries >= a->group->n)
        return -1;
    /* Nothing was sent: another member may take it. */
    log_msg(LOG_ERROR, "%s %s (%s): %s; trying another", a->module, a->group->name, a->member->name,
            why);
    upstream_member_done(a->member, false);
    upstream_conn_close(a->conn);
    a->conn = NULL;
    return upstream_attempt_connect(a, why, len) ? 0 : -1;
}

int upstream_attempt_send(struct upstream_attempt *a, const struct buf *out, size_t *at,
                          bool *progress)
{
    while (*at < out->len) {
        ssize_t n = send(a->conn->fd, out->p + *at, out->len - *at, MSG_NOSIGNAL);
        if (n > 0) {
            *at += (size_t)n;
            *progress = true;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n < 0 && errno == EINTR)
            continue;
        return -1;
    }
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
