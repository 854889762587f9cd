/* The plain-TCP transport. */
#include <errno.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine/transport.h"

static ssize_t tcp_read(struct transport *t, void *buf, size_t n)
{
    return recv(t->fd, buf, n, 0);
}

static ssize_t tcp_writev(struct transport *t, const struct iovec *iov, int iovcnt, bool more)
{
    struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
    return sendmsg(t->fd, &msg, more ? MSG_MORE : 0);
}

static ssize_t tcp_sendfile(struct transport *t, int fd, off_t *off, size_t n)
{
    return sendfile(t->fd, fd, off, n);
}

static void tcp_shutdown(struct transport *t)
{
    shutdown(t->fd, SHUT_WR);
}

static void tcp_close(struct transport *t)
{
    close(t->fd);
    t->fd = -1;
}

static void tcp_abort(struct transport *t)
{
    struct linger now = {.l_onoff = 1, .l_linger = 0};
    setsockopt(t->fd, SOL_SOCKET, SO_LINGER, &now, sizeof now);
    tcp_close(t);
}

static const struct transport_ops tcp_ops = {
    .read = tcp_read,
    .writev = tcp_writev,
    .sendfile = tcp_sendfile,
    .shutdown = tcp_shutdown,
    .close = tcp_close,
    .abort = tcp_abort,
};

void tcp_transport_init(struct transport *t, int fd)
{
    *t = (struct transport){.ops = &tcp_ops, .fd = fd};
}
