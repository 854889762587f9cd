/* bench/fcgi_ceiling.c: the "fcgi-ceiling" reference of bench/run's
 * FastCGI scenarios, not a gateway to use.
 *
 *   fcgi-ceiling unix:PATH|PORT   listens on 127.0.0.1, a port the kernel
 *                                 picks, and prints
 *                                 "listening on http://127.0.0.1:PORT/"
 *
 * Each client connection gets a FastCGI connection of its own to the
 * application (a Unix socket or 127.0.0.1:PORT), kept with FCGI_KEEP_CONN.
 * A request head (GET, no body: the scenarios send nothing else) becomes
 * one write of records prepared once — BEGIN_REQUEST, a constant PARAMS
 * stream, an empty STDIN — and the application's STDOUT content goes back
 * behind a status line, record framing dropped, in one write per read: no
 * HTTP parsing beyond finding the head's end, no CGI variables from the
 * request, no header processing.  So what it reaches per CPU-second is
 * about the most any FastCGI gateway can reach on the machine: bench/run
 * puts every server's result beside it.
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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#define BUF (64 * 1024)

struct conn {
    int client, app; /* -1 once closed */
    struct conn *next_dead;
    /* From the client: bytes of a request head not yet complete. */
    size_t head_have;
    char tail[3]; /* the last bytes read, to find "\r\n\r\n" across reads */
    /* From the application: the record being read. */
    uint8_t rec[8];
    size_t rec_have, content_left, padding_left;
    bool status_sent; /* the response's status line went out */
    bool close_after; /* the client asked to close (bench/run's check does) */
    bool ended;       /* an END_REQUEST came in this read */
};

static int ep;
static struct conn *dead;
static char scratch[BUF];
static char request[1024];
static size_t request_len;
static struct sockaddr_storage app_addr;
static socklen_t app_len;

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static void put_record(char **p, int type, size_t len)
{
    uint8_t h[8] = {1, (uint8_t)type, 0, 1, (uint8_t)(len >> 8), (uint8_t)len, 0, 0};
    memcpy(*p, h, 8);
    *p += 8;
}

static void put_param(char **p, const char *name, const char *value)
{
    size_t n = strlen(name), v = strlen(value);
    *(*p)++ = (char)n;
    *(*p)++ = (char)v;
    memcpy(*p, name, n);
    *p += n;
    memcpy(*p, value, v);
    *p += v;
}

/* The records of every request, once. */
static void prepare_request(void)
{
    char params[512], *q = params;
    put_param(&q, "REQUEST_METHOD", "GET");
    put_param(&q, "SCRIPT_FILENAME", "/srv/index.php");
    put_param(&q, "SCRIPT_NAME", "/index.php");
    put_param(&q, "REQUEST_URI", "/");
    put_param(&q, "QUERY_STRING", "");
    put_param(&q, "SERVER_PROTOCOL", "HTTP/1.1");
    size_t plen = (size_t)(q - params);
    char *p = request;
    put_record(&p, 1, 8);
    static const char begin[8] = {0, 1, 1, 0, 0, 0, 0, 0}; /* RESPONDER, KEEP_CONN */
    memcpy(p, begin, 8);
    p += 8;
    put_record(&p, 4, plen);
    memcpy(p, params, plen);
    p += plen;
    put_record(&p, 4, 0);
    put_record(&p, 5, 0);
    request_len = (size_t)(p - request);
}

static void watch(int fd, void *ptr, int op)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = ptr};
    if (epoll_ctl(ep, op, fd, &ev) < 0)
        die("epoll_ctl");
}

static void close_conn(struct conn *c)
{
    if (c->client < 0)
        return;
    close(c->client);
    close(c->app);
    c->client = c->app = -1;
    c->next_dead = dead;
    dead = c;
}

/* Blocking writes: the benchmark's answers are small next to the socket
 * buffers, and a ceiling need not handle a slow reader. */
static bool write_all(int fd, const struct iovec *iov, int n)
{
    struct iovec v[64];
    memcpy(v, iov, (size_t)n * sizeof *v);
    int i = 0;
    while (i < n) {
        ssize_t w = writev(fd, v + i, n - i);
        if (w < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (w < 0)
            return false;
        while (i < n && (size_t)w >= v[i].iov_len)
            w -= (ssize_t)v[i++].iov_len;
        if (i < n) {
            v[i].iov_base = (char *)v[i].iov_base + w;
            v[i].iov_len -= (size_t)w;
        }
    }
    return true;
}

/* Client bytes: each "\r\n\r\n" is a request; its records go out. */
static void from_client(struct conn *c)
{
    for (;;) {
        ssize_t n = recv(c->client, scratch, BUF, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            close_conn(c);
            return;
        }
        int requests = 0;
        if (memmem(scratch, (size_t)n, "Connection: close", 17))
            c->close_after = true;
        for (ssize_t i = 0; i < n; i++) {
            char ch = scratch[i];
            bool end = ch == '\n' && c->tail[0] == '\r' && c->tail[1] == '\n' && c->tail[2] == '\r';
            c->tail[0] = c->tail[1];
            c->tail[1] = c->tail[2];
            c->tail[2] = ch;
            requests += end;
        }
        struct iovec iov[64];
        int k = 0;
        while (requests-- > 0 && k < 64)
            iov[k++] = (struct iovec){request, request_len};
        if (k && !write_all(c->app, iov, k)) {
            close_conn(c);
            return;
        }
        if (n < BUF)
            return;
    }
}

/* Application bytes: STDOUT content to the client, behind a status line
 * at each response's start; the rest of the framing dropped. */
static void from_app(struct conn *c)
{
    static const char status[] = "HTTP/1.1 200 OK\r\n";
    for (;;) {
        ssize_t n = recv(c->app, scratch, BUF, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            close_conn(c);
            return;
        }
        struct iovec iov[64];
        int k = 0;
        size_t at = 0;
        while (at < (size_t)n) {
            if (c->content_left == 0 && c->padding_left) {
                size_t skip = (size_t)n - at < c->padding_left ? (size_t)n - at : c->padding_left;
                c->padding_left -= skip;
                at += skip;
                continue;
            }
            if (c->content_left == 0) {
                size_t take = 8 - c->rec_have;
                if (take > (size_t)n - at)
                    take = (size_t)n - at;
                memcpy(c->rec + c->rec_have, scratch + at, take);
                c->rec_have += take;
                at += take;
                if (c->rec_have < 8)
                    break;
                c->rec_have = 0;
                c->content_left = (size_t)c->rec[4] << 8 | c->rec[5];
                c->padding_left = c->rec[6];
                if (c->rec[1] == 3) { /* END_REQUEST: the next response starts over */
                    c->status_sent = false;
                    c->ended = true;
                }
                continue;
            }
            size_t take = (size_t)n - at < c->content_left ? (size_t)n - at : c->content_left;
            if (c->rec[1] == 6 && k < 62) {
                if (!c->status_sent) {
                    iov[k++] = (struct iovec){(void *)status, sizeof status - 1};
                    c->status_sent = true;
                }
                iov[k++] = (struct iovec){scratch + at, take};
            }
            c->content_left -= take;
            at += take;
        }
        if (k && !write_all(c->client, iov, k)) {
            close_conn(c);
            return;
        }
        if (c->ended && c->close_after) {
            close_conn(c);
            return;
        }
        c->ended = false;
        if (n < BUF)
            return;
    }
}

static int connect_app(void)
{
    int fd = socket(app_addr.ss_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&app_addr, app_len) < 0 ||
        fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fcgi-ceiling unix:PATH|PORT\n");
        return 2;
    }
    if (strncmp(argv[1], "unix:", 5) == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *)&app_addr;
        un->sun_family = AF_UNIX;
        snprintf(un->sun_path, sizeof un->sun_path, "%s", argv[1] + 5);
        app_len = sizeof *un;
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)&app_addr;
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)atoi(argv[1]));
        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        app_len = sizeof *in;
    }
    prepare_request();
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
    watch(lfd, NULL, EPOLL_CTL_ADD);
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
            void *ptr = evs[i].data.ptr;
            if (!ptr) {
                int cfd;
                while ((cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    int afd = connect_app();
                    if (afd < 0) {
                        close(cfd);
                        continue;
                    }
                    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct conn *c = calloc(1, sizeof *c);
                    if (!c)
                        die("calloc");
                    c->client = cfd;
                    c->app = afd;
                    /* The low bit of the pointer says which side woke. */
                    watch(cfd, c, EPOLL_CTL_ADD);
                    watch(afd, (char *)c + 1, EPOLL_CTL_ADD);
                }
                continue;
            }
            bool app_side = ((uintptr_t)ptr & 1) != 0;
            struct conn *c = (struct conn *)((uintptr_t)ptr & ~(uintptr_t)1);
            if (c->client < 0)
                continue; /* closed earlier in this batch */
            if (app_side)
                from_app(c);
            else
                from_client(c);
        }
        while (dead) {
            struct conn *d = dead;
            dead = d->next_dead;
            free(d);
        }
    }
}
