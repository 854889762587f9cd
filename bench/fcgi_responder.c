/* bench/fcgi_responder.c: the application of bench/run's FastCGI
 * scenarios, a constant-answer FastCGI responder; not an application to
 * use.
 *
 *   fcgi-responder [--procs N] ADDRESS SIZE
 *
 * ADDRESS is unix:PATH (or a PATH with a '/') or HOST:PORT (port 0: the
 * kernel picks); it prints "listening on unix:PATH" or "listening on
 * HOST:PORT" once the socket listens, and N processes (default 8) serve
 * it until SIGTERM or SIGINT.  Every request is answered with the same
 * SIZE-byte text/plain body: byte i is '\n' when i % 64 == 63, else
 * 'a' + i % 26.
 *
 * FastCGI 1.0 (https://fastcgi-archives.github.io/FastCGI_Specification.html):
 * BEGIN_REQUEST with role RESPONDER, PARAMS up to an empty PARAMS record,
 * STDIN up to an empty STDIN record, then the answer as STDOUT records of
 * at most 65,528 bytes of content (padded to 8 bytes), an empty STDOUT and
 * END_REQUEST (REQUEST_COMPLETE); the connection is closed afterwards
 * unless the request had FCGI_KEEP_CONN.  PARAMS and STDIN contents are
 * dropped as they come, never held.  ABORT_REQUEST ends the request with
 * END_REQUEST; GET_VALUES answers FCGI_MAX_CONNS, FCGI_MAX_REQS and
 * FCGI_MPXS_CONNS (0: one request at a time per connection, a second
 * BEGIN_REQUEST gets CANT_MPX_CONN); any other management record gets
 * UNKNOWN_TYPE, and other records, or records of a request that is not
 * active, are ignored.  A record of another version, a BEGIN_REQUEST
 * whose body is not 8 bytes, PARAMS after the empty one, STDIN before it,
 * or a GET_VALUES larger than the input buffer close that connection.
 *
 * Each process runs one epoll loop over non-blocking sockets (servers keep
 * their FastCGI connections open, many at once); the listening socket is
 * shared, with EPOLLEXCLUSIVE so that one process wakes per connection.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "event_loop.h"

enum {
    FCGI_BEGIN_REQUEST = 1,
    FCGI_ABORT_REQUEST = 2,
    FCGI_END_REQUEST = 3,
    FCGI_PARAMS = 4,
    FCGI_STDIN = 5,
    FCGI_STDOUT = 6,
    FCGI_GET_VALUES = 9,
    FCGI_GET_VALUES_RESULT = 10,
    FCGI_UNKNOWN_TYPE = 11,
};
enum { FCGI_RESPONDER = 1, FCGI_KEEP_CONN = 1 };
enum { FCGI_REQUEST_COMPLETE = 0, FCGI_CANT_MPX_CONN = 1, FCGI_UNKNOWN_ROLE = 3 };

enum {
    HEADER = 8,
    INBUF = 8192,           /* records whose body is read: BEGIN_REQUEST, GET_VALUES */
    MAX_CONTENT = 65528,    /* the largest multiple of 8 that fits in a record */
    CONNS_PER_PROC = 10000, /* what GET_VALUES reports, times the processes */
    MAX_SIZE = 1 << 26,     /* the largest answer body */
};

struct conn {
    int fd;
    bool readable;   /* data may be waiting: no short read since the last edge */
    uint16_t id;     /* the request under way; 0: none */
    bool keep_conn;  /* its FCGI_KEEP_CONN */
    bool params_end; /* its empty PARAMS record came */
    bool close_after;
    size_t skip;              /* content and padding of the current record still to drop */
    const unsigned char *out; /* what is being sent: out[outoff, outlen) */
    size_t outoff, outlen;
    unsigned char *owned; /* out's memory when it was built for this connection */
    unsigned char small[160];
    size_t inlen;
    unsigned char in[INBUF];
};

static size_t body_size, answer_len;
static unsigned char *answer1; /* the whole answer to request id 1, what servers use */
static int procs = 8, conns;
static char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)];

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static unsigned char *header(unsigned char *p, int type, unsigned id, size_t clen, size_t plen)
{
    p[0] = 1;
    p[1] = (unsigned char)type;
    p[2] = (unsigned char)(id >> 8);
    p[3] = (unsigned char)id;
    p[4] = (unsigned char)(clen >> 8);
    p[5] = (unsigned char)clen;
    p[6] = (unsigned char)plen;
    p[7] = 0;
    return p + HEADER;
}

static unsigned char *end_request(unsigned char *p, unsigned id, int status)
{
    p = header(p, FCGI_END_REQUEST, id, 8, 0);
    memset(p, 0, 8); /* appStatus 0 */
    p[4] = (unsigned char)status;
    return p + 8;
}

static size_t pad8(size_t n)
{
    return (8 - n % 8) % 8;
}

/* The answer to request `id` into dst (NULL: only its length). */
static size_t build_answer(unsigned char *dst, unsigned id)
{
    char head[128];
    size_t hlen = (size_t)snprintf(head, sizeof head,
                                   "Status: 200 OK\r\nContent-Type: text/plain\r\n"
                                   "Content-Length: %zu\r\n\r\n",
                                   body_size);
    size_t total = hlen + body_size, len = 0;
    for (size_t at = 0; at < total; at += MAX_CONTENT) {
        size_t clen = total - at < MAX_CONTENT ? total - at : MAX_CONTENT, plen = pad8(clen);
        if (dst) {
            unsigned char *p = header(dst + len, FCGI_STDOUT, id, clen, plen);
            for (size_t i = 0; i < clen; i++) {
                size_t k = at + i;
                if (k < hlen)
                    p[i] = (unsigned char)head[k];
                else
                    k -= hlen, p[i] = k % 64 == 63 ? '\n' : (unsigned char)('a' + k % 26);
            }
            memset(p + clen, 0, plen);
        }
        len += HEADER + clen + plen;
    }
    if (dst) {
        header(dst + len, FCGI_STDOUT, id, 0, 0);
        end_request(dst + len + HEADER, id, FCGI_REQUEST_COMPLETE);
    }
    return len + 2 * HEADER + 8;
}

static void send_small(struct conn *c, const unsigned char *end)
{
    c->out = c->small;
    c->outoff = 0;
    c->outlen = (size_t)(end - c->small);
}

/* The request is over: the next one may begin, or the connection ends. */
static void finish(struct conn *c)
{
    c->close_after = !c->keep_conn;
    c->id = 0;
}

static void respond(struct conn *c)
{
    if (c->id == 1) {
        c->out = answer1;
    } else {
        c->owned = malloc(answer_len);
        if (!c->owned)
            die("malloc");
        build_answer(c->owned, c->id);
        c->out = c->owned;
    }
    c->outoff = 0;
    c->outlen = answer_len;
    finish(c);
}

/* A FastCGI name-value length at *p (1 or 4 bytes); -1 past end. */
static long nv_length(const unsigned char **p, const unsigned char *end)
{
    if (*p >= end)
        return -1;
    if (!(**p & 0x80))
        return *(*p)++;
    if (end - *p < 4)
        return -1;
    long n = ((long)((*p)[0] & 0x7f) << 24) | ((long)(*p)[1] << 16) | ((long)(*p)[2] << 8) |
             (long)(*p)[3];
    *p += 4;
    return n;
}

static int get_values(struct conn *c, const unsigned char *body, size_t clen)
{
    static const char *const names[] = {"FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS"};
    char value[3][16];
    snprintf(value[0], sizeof value[0], "%d", procs * CONNS_PER_PROC);
    snprintf(value[1], sizeof value[1], "%d", procs * CONNS_PER_PROC);
    snprintf(value[2], sizeof value[2], "0");
    bool asked[3] = {false, false, false};
    const unsigned char *p = body, *end = body + clen;
    while (p < end) {
        long nlen = nv_length(&p, end), vlen = nv_length(&p, end);
        if (nlen < 0 || vlen < 0 || end - p < nlen || end - p - nlen < vlen)
            return -1;
        for (int i = 0; i < 3; i++)
            if ((size_t)nlen == strlen(names[i]) && memcmp(p, names[i], (size_t)nlen) == 0)
                asked[i] = true;
        p += nlen + vlen;
    }
    /* Each name at most once: the answer fits in c->small. */
    unsigned char *q = c->small + HEADER;
    for (int i = 0; i < 3; i++) {
        if (!asked[i])
            continue;
        size_t nlen = strlen(names[i]), vlen = strlen(value[i]);
        *q++ = (unsigned char)nlen;
        *q++ = (unsigned char)vlen;
        memcpy(q, names[i], nlen);
        memcpy(q + nlen, value[i], vlen);
        q += nlen + vlen;
    }
    size_t rlen = (size_t)(q - c->small - HEADER), plen = pad8(rlen);
    header(c->small, FCGI_GET_VALUES_RESULT, 0, rlen, plen);
    memset(q, 0, plen);
    send_small(c, q + plen);
    return 0;
}

/* One record, its header read (and its body, when it is needed).
 * -1: malformed, the connection closes. */
static int record(struct conn *c, int type, unsigned id, const unsigned char *body, size_t clen)
{
    if (id == 0) {
        if (type == FCGI_GET_VALUES)
            return get_values(c, body, clen);
        unsigned char *p = header(c->small, FCGI_UNKNOWN_TYPE, 0, 8, 0);
        memset(p, 0, 8);
        p[0] = (unsigned char)type;
        send_small(c, p + 8);
        return 0;
    }
    if (type == FCGI_BEGIN_REQUEST) {
        if (clen != 8)
            return -1;
        unsigned role = (unsigned)body[0] << 8 | body[1];
        bool keep = body[2] & FCGI_KEEP_CONN;
        if (c->id) {
            send_small(c, end_request(c->small, id, FCGI_CANT_MPX_CONN));
        } else if (role != FCGI_RESPONDER) {
            send_small(c, end_request(c->small, id, FCGI_UNKNOWN_ROLE));
            c->close_after = !keep;
        } else {
            c->id = (uint16_t)id;
            c->keep_conn = keep;
            c->params_end = false;
        }
        return 0;
    }
    if (id != c->id)
        return 0; /* not the active request: ignored */
    switch (type) {
    case FCGI_ABORT_REQUEST:
        send_small(c, end_request(c->small, id, FCGI_REQUEST_COMPLETE));
        finish(c);
        return 0;
    case FCGI_PARAMS:
        if (c->params_end)
            return -1;
        c->params_end = clen == 0;
        return 0;
    case FCGI_STDIN:
        if (!c->params_end)
            return -1;
        if (clen == 0)
            respond(c);
        return 0;
    default: return 0; /* FCGI_DATA, or a type the application never receives */
    }
}

/* The records in c->in, up to the first one that calls for an answer.
 * -1: a malformed record. */
static int parse(struct conn *c)
{
    size_t pos = 0;
    int r = 0;
    while (!c->outlen) {
        if (c->skip > c->inlen - pos) {
            c->skip -= c->inlen - pos;
            pos = c->inlen;
            break;
        }
        pos += c->skip;
        c->skip = 0;
        if (c->close_after || c->inlen - pos < HEADER)
            break;
        const unsigned char *h = c->in + pos;
        int type = h[1];
        unsigned id = (unsigned)h[2] << 8 | h[3];
        size_t clen = (size_t)h[4] << 8 | h[5], plen = h[6];
        if (h[0] != 1) {
            r = -1;
            break;
        }
        /* Only these bodies are read; the others are dropped as they come. */
        bool whole = id == 0 ? type == FCGI_GET_VALUES : type == FCGI_BEGIN_REQUEST;
        if (whole && HEADER + clen > INBUF) {
            r = -1;
            break;
        }
        if (whole && c->inlen - pos < HEADER + clen)
            break;
        pos += HEADER;
        c->skip = whole ? plen : clen + plen;
        if (whole)
            pos += clen;
        if (record(c, type, id, h + HEADER, clen) < 0) {
            r = -1;
            break;
        }
    }
    c->inlen -= pos;
    memmove(c->in, c->in + pos, c->inlen);
    return r;
}

/* 1: all sent; 0: the socket is full, wait for EPOLLOUT; -1: error. */
static int flush(struct conn *c)
{
    while (c->outoff < c->outlen) {
        ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        c->outoff += (size_t)n;
    }
    free(c->owned);
    c->owned = NULL;
    c->out = NULL;
    c->outoff = c->outlen = 0;
    return 1;
}

static void drop(struct conn *c)
{
    close(c->fd);
    free(c->owned);
    free(c);
    conns--;
}

static void serve(struct conn *c, unsigned events)
{
    /* A FIN that came with this edge's data gets no edge of its own. */
    bool shut = (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
    if (shut || (events & EPOLLIN))
        c->readable = true;
    for (;;) {
        int r = flush(c);
        if (r == 0)
            return;
        if (r < 0 || parse(c) < 0)
            break;
        if (c->outlen)
            continue;
        /* Closed once the last record's padding is in too: unread input
         * would make the close a reset, which may cost the server the
         * answer. */
        if (c->close_after && !c->skip)
            break;
        if (!c->readable)
            return;
        size_t room = INBUF - c->inlen; /* > 0: parse() leaves less than a record */
        ssize_t n = recv(c->fd, c->in + c->inlen, room, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            c->readable = false;
            return;
        }
        if (n <= 0)
            break;
        if ((size_t)n < room && !shut)
            c->readable = false; /* drained until the next edge */
        c->inlen += (size_t)n;
    }
    drop(c);
}

static void on_event(void *c, unsigned events)
{
    serve(c, events);
}

static void on_accept(int ep, int fd)
{
    if (conns >= CONNS_PER_PROC) {
        close(fd);
        return;
    }
    struct conn *c = malloc(sizeof *c);
    if (!c)
        die("malloc");
    memset(c, 0, offsetof(struct conn, in));
    c->fd = fd;
    conns++;
    /* Registered edge-triggered: what is already there (and the room to
     * write) comes as the first edge. */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        drop(c);
}

static void worker(int ls)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = NULL};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev) < 0)
        die("epoll");
    event_loop(ep, ls, on_event, on_accept);
}

/* The listening socket for ADDRESS; prints its "listening on" line. */
static int listen_on(const char *addr)
{
    int ls, one = 1;
    if (strncmp(addr, "unix:", 5) == 0 || strchr(addr, '/')) {
        const char *path = strncmp(addr, "unix:", 5) == 0 ? addr + 5 : addr;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof sa.sun_path) {
            fprintf(stderr, "fcgi-responder: %s: path too long\n", path);
            exit(2);
        }
        strcpy(sa.sun_path, path);
        strcpy(unix_path, path);
        unlink(path);
        ls = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        /* Servers started as root serve as another user: anyone may connect. */
        if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 || chmod(path, 0666) < 0 ||
            listen(ls, 4096) < 0)
            die(path);
        printf("listening on unix:%s\n", path);
    } else {
        const char *colon = strrchr(addr, ':');
        if (!colon) {
            fprintf(stderr, "fcgi-responder: %s: not unix:PATH nor HOST:PORT\n", addr);
            exit(2);
        }
        char host[256];
        snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
        struct addrinfo hints = {.ai_family = AF_UNSPEC,
                                 .ai_socktype = SOCK_STREAM,
                                 .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV},
                        *ai;
        int e = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &ai);
        if (e) {
            fprintf(stderr, "fcgi-responder: %s: %s\n", addr, gai_strerror(e));
            exit(2);
        }
        struct sockaddr_storage sa;
        socklen_t salen = sizeof sa;
        ls = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        /* Accepted sockets inherit TCP_NODELAY from the listener. */
        if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
            setsockopt(ls, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0 ||
            bind(ls, ai->ai_addr, ai->ai_addrlen) < 0 || listen(ls, 4096) < 0 ||
            getsockname(ls, (struct sockaddr *)&sa, &salen) < 0)
            die(addr);
        freeaddrinfo(ai);
        char h[NI_MAXHOST], port[NI_MAXSERV];
        getnameinfo((struct sockaddr *)&sa, salen, h, sizeof h, port, sizeof port,
                    NI_NUMERICHOST | NI_NUMERICSERV);
        printf(sa.ss_family == AF_INET6 ? "listening on [%s]:%s\n" : "listening on %s:%s\n", h,
               port);
    }
    fflush(stdout);
    return ls;
}

static void usage(void)
{
    fprintf(stderr, "usage: fcgi-responder [--procs N] unix:PATH|HOST:PORT SIZE\n"
                    "(bench/run's FastCGI application; not an application to use)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"procs", required_argument, NULL, 'p'}, {0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "p:", longopts, NULL)) != -1) {
        if (opt != 'p')
            usage();
        procs = atoi(optarg);
        if (procs < 1 || procs > 256)
            usage();
    }
    if (argc - optind != 2)
        usage();
    char *end;
    unsigned long long size = strtoull(argv[optind + 1], &end, 10);
    if (*end || end == argv[optind + 1] || size > MAX_SIZE)
        usage();
    body_size = (size_t)size;
    answer_len = build_answer(NULL, 1);
    answer1 = malloc(answer_len);
    if (!answer1)
        die("malloc");
    build_answer(answer1, 1);

    signal(SIGPIPE, SIG_IGN);
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGCHLD);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    int ls = listen_on(argv[optind]);
    pid_t parent = getpid(), kids[256];
    for (int i = 0; i < procs; i++) {
        kids[i] = fork();
        if (kids[i] < 0)
            die("fork");
        if (kids[i] == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (getppid() != parent)
                _exit(0);
            sigprocmask(SIG_UNBLOCK, &stop, NULL);
            worker(ls);
        }
    }
    /* The parent waits: a stop signal ends the workers; so does the end of
     * any of them (the others then go too). */
    int sig = sigwaitinfo(&stop, NULL);
    for (int i = 0; i < procs; i++)
        kill(kids[i], SIGTERM);
    while (wait(NULL) > 0 || errno == EINTR)
        ;
    if (unix_path[0])
        unlink(unix_path);
    return sig == SIGCHLD ? 1 : 0;
}
