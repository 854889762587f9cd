/* bench/proxy_ceiling.c: the "proxy-ceiling" reference of bench/run's proxy
 * scenarios, not a proxy to use.
 *
 *   proxy-ceiling UPSTREAM_PORT   listens on 127.0.0.1, a port the kernel
 *                                 picks, and prints
 *                                 "listening on http://127.0.0.1:PORT/"
 *
 * Each client connection gets a connection of its own to 127.0.0.1:
 * UPSTREAM_PORT, opened when the client's is accepted, and the bytes are
 * pumped between the two as they come: no HTTP at all, no parsing, no
 * header rewriting, no pool.  With keep-alive on both sides a request
 * costs it one recv and one send on each side, as few system calls as a
 * proxy can make, so what it reaches per CPU-second is about the most any
 * proxy can reach on the machine: bench/run puts every proxy's result
 * beside it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF (64 * 1024)

/* One connection of a pair.  What is read goes out from one scratch buffer
 * at once; only what the peer does not take is kept, in `held`. */
struct side {
    int fd; /* -1 once the pair is closed */
    struct side *peer;
    struct side *next_dead; /* closed in this batch of events: freed after it */
    char *held;             /* read from this side, not yet written to the peer */
    size_t off, len;
};

static int ep;
static struct side *dead;
static char scratch[BUF];

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static void watch(struct side *s, int op, unsigned events)
{
    struct epoll_event ev = {.events = events, .data.ptr = s};
    if (epoll_ctl(ep, op, s->fd, &ev) < 0)
        die("epoll_ctl");
}

/* Closes both connections; the pair's memory goes after the batch of
 * events, which may still name it. */
static void close_pair(struct side *s)
{
    struct side *first = s < s->peer ? s : s->peer;
    for (int i = 0; i < 2; i++) {
        close(first[i].fd);
        first[i].fd = -1;
        free(first[i].held);
        first[i].held = NULL;
    }
    first->next_dead = dead;
    dead = first;
}

/* Writes p[0, len) to s's peer; what it does not take is kept in s->held
 * (copied, unless p is in s->held already).  -1: the pair is gone; 0: the
 * peer is full (it is watched for writing until it drains); 1: all
 * written. */
static int forward(struct side *s, const char *p, size_t len, bool from_held)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(s->peer->fd, p + off, len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            if (!from_held) {
                s->held = malloc(BUF);
                if (!s->held)
                    die("malloc");
                memcpy(s->held, p + off, len - off);
                s->off = 0;
                s->len = len - off;
            } else {
                s->off += off;
            }
            watch(s->peer, EPOLL_CTL_MOD, EPOLLIN | EPOLLOUT);
            return 0;
        }
        close_pair(s);
        return -1;
    }
    free(s->held);
    s->held = NULL;
    s->off = s->len = 0;
    return 1;
}

/* What s holds, to its peer. */
static int drain(struct side *s)
{
    return forward(s, s->held + s->off, s->len - s->off, true);
}

/* Reads from s and writes to its peer until s has nothing more. */
static void pump(struct side *s)
{
    for (;;) {
        if (s->held && drain(s) <= 0)
            return;
        ssize_t n = recv(s->fd, scratch, BUF, 0);
        if (n > 0) {
            if (forward(s, scratch, (size_t)n, false) <= 0 || (size_t)n < BUF)
                return;
            continue;
        }
        if (n < 0 && (errno == EINTR))
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        close_pair(s);
        return;
    }
}

static int connect_upstream(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static void make_pair(int client, int upstream)
{
    struct side *pair = calloc(2, sizeof *pair);
    if (!pair)
        die("calloc");
    int one = 1;
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(upstream, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    pair[0].fd = client;
    pair[0].peer = &pair[1];
    pair[1].fd = upstream;
    pair[1].peer = &pair[0];
    watch(&pair[0], EPOLL_CTL_ADD, EPOLLIN);
    watch(&pair[1], EPOLL_CTL_ADD, EPOLLIN);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: proxy-ceiling UPSTREAM_PORT\n");
        return 2;
    }
    int upstream_port = atoi(argv[1]);
    signal(SIGPIPE, SIG_IGN);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 4096) < 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &len) < 0)
        die("listen");
    ep = epoll_create1(0);
    if (ep < 0)
        die("epoll_create1");
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0)
        die("epoll_ctl");
    printf("listening on http://127.0.0.1:%d/\n", ntohs(sa.sin_port));
    fflush(stdout);
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("epoll_wait");
        for (int i = 0; i < n; i++) {
            struct side *s = evs[i].data.ptr;
            if (s && s->fd < 0)
                continue; /* closed earlier in this batch */
            if (!s) {
                int c;
                while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    int up = connect_upstream(upstream_port);
                    if (up < 0) {
                        close(c);
                        continue;
                    }
                    make_pair(c, up);
                }
                continue;
            }
            /* The peer drained: what s's peer held can go now. */
            if (evs[i].events & EPOLLOUT) {
                watch(s, EPOLL_CTL_MOD, EPOLLIN);
                if (s->peer->held && drain(s->peer) < 0)
                    continue;
            }
            if (s->fd >= 0 && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                pump(s);
        }
        while (dead) {
            struct side *d = dead;
            dead = d->next_dead;
            free(d);
        }
    }
}
