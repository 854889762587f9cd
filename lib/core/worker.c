#include "core/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"

#define MAX_EVENTS 256
#define TICK_MS 250      /* how often deadlines are checked */
#define MAX_SPARE_BUFS 64
#define ACCEPT_BATCH 64

char *worker_take_buf(struct worker *w)
{
    if (w->nspare)
        return w->spare_bufs[--w->nspare];
    char *p = malloc(w->in_cap);
    if (!p)
        abort();
    return p;
}

void worker_give_buf(struct worker *w, char *buf)
{
    if (w->nspare < MAX_SPARE_BUFS)
        w->spare_bufs[w->nspare++] = buf;
    else
        free(buf);
}

void worker_forget_conn(struct worker *w, struct conn *c)
{
    struct conn *last = w->conns[--w->nconns];
    w->conns[c->index] = last;
    last->index = c->index;
}

#define BUSY_BODY "503 Service Unavailable\nToo many open connections.\n"
#define BUSY_BODY_LEN 51
_Static_assert(sizeof BUSY_BODY - 1 == BUSY_BODY_LEN, "BUSY_BODY_LEN");
#define STRINGIFY(x) #x
#define DIGITS(x) STRINGIFY(x)

/* The whole answer to a connection over the cap, written without a conn. */
static void refuse_busy(int fd)
{
    static const char head[] = "HTTP/1.1 503 Service Unavailable\r\nServer: verbd\r\n";
    static const char rest[] = "Content-Type: text/plain\r\nContent-Length: " DIGITS(BUSY_BODY_LEN)
                               "\r\nRetry-After: 1\r\nConnection: close\r\n\r\n" BUSY_BODY;
    const char *date = clock_date_field();
    struct iovec iov[] = {{(void *)head, sizeof head - 1},
                          {(void *)date, CLOCK_DATE_FIELD_LEN},
                          {(void *)rest, sizeof rest - 1}};
    ssize_t n = writev(fd, iov, 3);
    (void)n;
    /* Read what the client already sent (its request, with deferred
     * accept): closing with unread input would send a reset, which can
     * destroy the 503 before the client reads it. */
    char scratch[4096];
    shutdown(fd, SHUT_WR);
    for (int i = 0; i < 4 && recv(fd, scratch, sizeof scratch, MSG_DONTWAIT) > 0; i++)
        ;
    close(fd);
}

static void accept_some(struct worker *w, int lfd)
{
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof peer;
        int fd = accept4(lfd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                log_msg(LOG_ERROR, "accept: %s", strerror(errno));
            return;
        }
        if (w->nconns >= w->srv->settings.max_connections) {
            refuse_busy(fd);
            continue;
        }
        conn_open(w, fd, (struct sockaddr *)&peer, len);
    }
}

static void begin_stop(struct worker *w)
{
    if (w->stopping)
        return;
    w->stopping = true;
    w->stop_deadline = clock_ms() + w->srv->settings.shutdown_timeout_ms;
    for (size_t i = 0; i < w->srv->nlisteners; i++)
        epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->listen_srcs[i].fd, NULL);
}

static void reload(struct worker *w)
{
    struct verbd_server *next = server_reload_prepare(w->srv);
    if (!next)
        return;
    /* An upload streaming into a module instance cannot outlive the
     * instance. */
    for (size_t i = w->nconns; i-- > 0;)
        if (conn_streams_into_module(w->conns[i]))
            conn_close(w, w->conns[i]);
    server_reload_apply(w->srv, next);
    w->limits = settings_limits(&w->srv->settings);
}

/* Reads the signals that arrived; what they ask for is done after the
 * current batch of events, which may still point at any connection. */
static void on_signal(struct worker *w)
{
    struct signalfd_siginfo si;
    while (read(w->signal_src.fd, &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGHUP)
            w->hangup = true;
        else
            begin_stop(w);
    }
}

static void after_events(struct worker *w)
{
    if (w->hangup) {
        w->hangup = false;
        if (w->srv->config_path)
            reload(w);
        else
            log_reopen();
    }
    if (w->stopping)
        for (size_t i = w->nconns; i-- > 0;)
            conn_stop_if_idle(w, w->conns[i]);
}

static int worker_init(struct worker *w, struct verbd_server *srv)
{
    memset(w, 0, sizeof *w);
    w->srv = srv;
    w->limits = settings_limits(&srv->settings);
    w->in_cap = srv->settings.max_header + 4096;
    w->fields = calloc(srv->settings.max_fields, sizeof *w->fields);
    w->path_buf = malloc(srv->settings.max_target + 1);
    w->spare_bufs = calloc(MAX_SPARE_BUFS, sizeof *w->spare_bufs);
    w->listen_srcs = calloc(srv->nlisteners ? srv->nlisteners : 1, sizeof *w->listen_srcs);
    response_init(&w->res);
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    w->signal_src = (struct source){SOURCE_SIGNAL, signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)};
    if (!w->fields || !w->path_buf || !w->spare_bufs || !w->listen_srcs || w->epfd < 0 ||
        w->signal_src.fd < 0)
        return -1;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &w->signal_src};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->signal_src.fd, &ev) < 0)
        return -1;
    for (size_t i = 0; i < srv->nlisteners; i++) {
        w->listen_srcs[i] = (struct source){SOURCE_LISTENER, srv->listeners[i].fd};
        /* Workers share each listening socket; EPOLLEXCLUSIVE wakes one. */
        ev = (struct epoll_event){.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &w->listen_srcs[i]};
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, srv->listeners[i].fd, &ev) < 0)
            return -1;
    }
    return 0;
}

static void worker_free(struct worker *w)
{
    while (w->nconns)
        conn_close(w, w->conns[w->nconns - 1]);
    for (size_t i = 0; i < w->nspare; i++)
        free(w->spare_bufs[i]);
    free(w->spare_bufs);
    free(w->conns);
    free(w->fields);
    free(w->path_buf);
    free(w->listen_srcs);
    response_free(&w->res);
    if (w->signal_src.fd >= 0)
        close(w->signal_src.fd);
    if (w->epfd >= 0)
        close(w->epfd);
}

int worker_run(struct verbd_server *srv)
{
    struct worker w;
    clock_update();
    if (worker_init(&w, srv) < 0) {
        log_msg(LOG_ERROR, "worker setup failed: %s", strerror(errno));
        worker_free(&w);
        return -1;
    }
    uint64_t next_tick = clock_ms() + TICK_MS;
    struct epoll_event events[MAX_EVENTS];
    while (!w.stopping || (w.nconns && clock_ms() < w.stop_deadline)) {
        int n = epoll_wait(w.epfd, events, MAX_EVENTS, TICK_MS);
        clock_update();
        if (n < 0 && errno != EINTR) {
            log_msg(LOG_ERROR, "epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            struct source *src = events[i].data.ptr;
            if (src->kind == SOURCE_CONN)
                conn_take_input(&w, (struct conn *)src, events[i].events);
        }
        for (int i = 0; i < n; i++) {
            struct source *src = events[i].data.ptr;
            if (src->kind == SOURCE_CONN)
                conn_run(&w, (struct conn *)src);
            else if (src->kind == SOURCE_LISTENER && !w.stopping)
                accept_some(&w, src->fd);
            else if (src->kind == SOURCE_SIGNAL)
                on_signal(&w);
        }
        after_events(&w);
        if (clock_ms() >= next_tick) {
            for (size_t i = w.nconns; i-- > 0;)
                conn_check_timers(&w, w.conns[i]);
            next_tick = clock_ms() + TICK_MS;
        }
        log_flush();
    }
    worker_free(&w);
    log_flush();
    return 0;
}
