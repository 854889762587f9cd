/* bench/event_loop.h: the epoll loop of bench/ceiling.c and
 * bench/fcgi_responder.c, each otherwise a program of one file.
 *
 * The caller creates the epoll instance and registers the listening socket
 * with a NULL data.ptr, and each connection it accepts with data.ptr set
 * to it.  The loop never returns: an event on a connection goes to
 * on_event, and a readable listening socket is accepted from until it has
 * nothing more, each descriptor (non-blocking) to on_accept.
 */
#ifndef BENCH_EVENT_LOOP_H
#define BENCH_EVENT_LOOP_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>

static void event_loop(int ep, int ls, void (*on_event)(void *conn, unsigned events),
                       void (*on_accept)(int ep, int fd))
{
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0 && errno != EINTR) {
            perror("epoll_wait");
            exit(1);
        }
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr) {
                on_event(evs[i].data.ptr, evs[i].events);
                continue;
            }
            for (;;) {
                int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0)
                    break; /* EAGAIN, another process took it, or out of fds */
                on_accept(ep, fd);
            }
        }
    }
}

#endif
