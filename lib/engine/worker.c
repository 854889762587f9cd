#include "engine/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "engine/http2.h"
#include "engine/notify.h"
#include "engine/tls.h"
#include "engine/transport.h"

#define ACCEPT_BATCH 64
/* The longest the loop sleeps: the graceful stop's deadline is checked at
 * least this often. */
#define MAX_WAIT_MS 1000

struct listen_watch {
    struct loop_watch watch;
    struct worker *w;
    const struct listener *l;
    struct tls_acceptor *tls; /* handshakes, on a TLS address */
};

#define BUSY_BODY "503 Service Unavailable\nToo many open connections.\n"
#define BUSY_BODY_LEN 51
_Static_assert(sizeof BUSY_BODY - 1 == BUSY_BODY_LEN, "BUSY_BODY_LEN");
#define STRINGIFY(x) #x
#define DIGITS(x) STRINGIFY(x)

/* The whole answer to a connection over the cap, written without a session. */
static void refuse_busy(int fd)
{
    static const char head[] = "HTTP/1.1 503 Service Unavailable\r\nServer: verbd\r\n";
    static const char rest[] = "Content-Type: text/plain\r\nContent-Length: " DIGITS(
        BUSY_BODY_LEN) "\r\nRetry-After: 1\r\nConnection: close\r\n\r\n" BUSY_BODY;
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

/* The handshake is done: an HTTP session over TLS, the one ALPN chose. */
static void tls_done(void *arg, struct transport *t, const struct tls_config *chosen,
                     const char *alpn, const struct sockaddr *peer, socklen_t peer_len)
{
    (void)chosen;
    struct listen_watch *lw = arg;
    if (alpn && strcmp(alpn, "h2") == 0)
        http2_open(&lw->w->h2, t, true, lw->l, tls_transport_server_name(t), peer, peer_len, NULL,
                   0);
    else
        http1_open(&lw->w->host, t, true, lw->l, tls_transport_server_name(t), peer, peer_len);
}

static const struct tls_acceptor_ops tls_ops = {.done = tls_done};

/* SNI: the certificate of the site the name reaches. */
static struct tls_config *select_by_name(void *arg, const char *name)
{
    const struct listener *l = arg;
    return name ? site_select(l, name, strlen(name))->tls : NULL;
}

/* The acceptor of a TLS address follows its sites (at start, on reload);
 * the handshake may take as long as a request head. */
static int configure_tls(struct worker *w, struct listen_watch *lw)
{
    const struct listener *l = lw->l;
    if (!l->tls)
        return 0;
    struct tls_config *dflt = l->sites[0]->tls;
    if (lw->tls) {
        tls_acceptor_configure(lw->tls, dflt, select_by_name, (void *)l);
        return 0;
    }
    lw->tls = tls_acceptor_new(w->loop, dflt, select_by_name, (void *)l, &tls_ops, lw,
                               (uint32_t)l->sites[0]->settings.header_timeout_ms);
    return lw->tls ? 0 : -1;
}

static void accept_some(struct worker *w, struct listen_watch *lw)
{
    const struct listener *l = lw->l;
    int lfd = l->fd;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof peer;
        int fd = accept4(lfd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                log_msg(LOG_ERROR, "accept: %s", strerror(errno));
            return;
        }
        size_t handshakes = lw->tls ? tls_acceptor_pending(lw->tls) : 0;
        if (w->host.nconns + w->h2.nconns + handshakes >= w->srv->settings.max_connections) {
            if (l->tls)
                close(fd); /* no 503 a client could read */
            else
                refuse_busy(fd);
            continue;
        }
        if (lw->tls) {
            tls_accept(lw->tls, fd, (struct sockaddr *)&peer, len);
            continue;
        }
        struct transport t;
        tcp_transport_init(&t, fd);
        http1_open(&w->host, &t, true, l, NULL, (struct sockaddr *)&peer, len);
    }
}

static void on_listener(void *arg, uint32_t events)
{
    (void)events;
    struct listen_watch *lw = arg;
    if (!lw->w->host.stopping)
        accept_some(lw->w, lw);
}

static void begin_stop(struct worker *w)
{
    if (w->host.stopping)
        return;
    notify("STOPPING=1"); /* only where this worker is the whole server */
    w->host.stopping = true;
    w->stop_deadline = clock_ms() + w->srv->settings.shutdown_timeout_ms;
    for (size_t i = 0; i < w->srv->nlisteners; i++) {
        loop_watch_del(w->loop, &w->listen_watches[i].watch, false);
        tls_acceptor_free(w->listen_watches[i].tls); /* unfinished handshakes end */
        w->listen_watches[i].tls = NULL;
    }
}

static void reload(struct worker *w)
{
    if (getpid() == w->srv->main_pid)
        route_report(); /* no supervisor: this worker is the server */
    struct verbd_server *next = server_reload_prepare(w->srv);
    if (!next)
        return;
    /* Exchanges in flight finish on the sites they started on. */
    server_reload_apply(w->srv, next, true);
    for (size_t i = 0; i < w->srv->nsites; i++)
        route_worker_init(&w->srv->sites[i]->routes, w->loop);
    for (size_t i = 0; i < w->srv->nlisteners; i++)
        if (configure_tls(w, &w->listen_watches[i]) < 0)
            log_msg(LOG_ERROR, "reload: TLS on %s: out of memory", w->srv->listeners[i].name);
    w->host.limits = settings_limits(&w->srv->settings);
}

/* Reads the signals that arrived; what they ask for is done after the
 * current batch of events, which may still point at any session. */
static void on_signal(void *arg, uint32_t events)
{
    (void)events;
    struct worker *w = arg;
    struct signalfd_siginfo si;
    while (read(w->signal_fd, &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGHUP)
            w->hangup = true;
        else if (si.ssi_signo == SIGUSR1)
            w->reopen = true;
        else
            begin_stop(w);
    }
}

static void after_turn(struct worker *w)
{
    if (w->hangup) {
        w->hangup = false;
        notify_reloading(); /* notify: only where this worker is the whole server */
        if (w->srv->reload)
            reload(w);
        else
            log_reopen();
        notify("READY=1");
    }
    if (w->reopen) {
        w->reopen = false;
        log_reopen();
    }
    if (w->host.stopping) {
        for (size_t i = w->host.nconns; i-- > 0;)
            http1_stop_if_idle(w->host.conns[i]);
        for (size_t i = w->h2.nconns; i-- > 0;)
            http2_stop(w->h2.conns[i]);
    }
}

static int worker_init(struct worker *w, struct verbd_server *srv)
{
    memset(w, 0, sizeof *w);
    w->srv = srv;
    w->signal_fd = -1;
    w->loop = loop_new();
    if (!w->loop || http1_host_init(&w->host, w->loop, &srv->settings) < 0)
        return -1;
    http2_host_init(&w->h2, &w->host);
    w->host.h2 = &w->h2;
    w->host.listeners = srv->listeners;
    w->host.nlisteners = srv->nlisteners;
    w->listen_watches = calloc(srv->nlisteners ? srv->nlisteners : 1, sizeof *w->listen_watches);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    w->signal_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (!w->listen_watches || w->signal_fd < 0)
        return -1;
    if (loop_watch_add(w->loop, &w->signal_watch, w->signal_fd, EPOLLIN, on_signal, w) < 0)
        return -1;
    for (size_t i = 0; i < srv->nlisteners; i++) {
        struct listen_watch *lw = &w->listen_watches[i];
        lw->w = w;
        lw->l = &srv->listeners[i];
        /* Workers share each listening socket; EPOLLEXCLUSIVE wakes one. */
        if (loop_watch_add(w->loop, &lw->watch, srv->listeners[i].fd, EPOLLIN | EPOLLEXCLUSIVE,
                           on_listener, lw) < 0 ||
            configure_tls(w, lw) < 0)
            return -1;
    }
    return 0;
}

static void worker_free(struct worker *w)
{
    for (size_t i = 0; w->listen_watches && i < w->srv->nlisteners; i++)
        tls_acceptor_free(w->listen_watches[i].tls);
    http2_host_free(&w->h2);
    if (w->loop && w->host.loop)
        http1_host_free(&w->host);
    free(w->listen_watches);
    if (w->signal_fd >= 0)
        close(w->signal_fd);
    loop_free(w->loop);
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
    for (size_t i = 0; i < srv->nsites; i++)
        route_worker_init(&srv->sites[i]->routes, w.loop);
    while (!w.host.stopping || ((w.host.nconns || w.h2.nconns) && clock_ms() < w.stop_deadline)) {
        if (loop_run_once(w.loop, MAX_WAIT_MS) < 0) {
            log_msg(LOG_ERROR, "epoll_wait: %s", strerror(errno));
            break;
        }
        after_turn(&w);
        log_flush();
    }
    /* The sessions end (and with them their exchanges) before the module
     * instances' per-worker state. */
    http2_host_free(&w.h2);
    http1_host_free(&w.host);
    w.host = (struct http1_host){0};
    for (size_t i = 0; i < srv->nsites; i++)
        route_worker_exit(&srv->sites[i]->routes);
    worker_free(&w);
    log_flush();
    return 0;
}
