/* bench/ceiling.c: the "ceiling" reference of bench/run, not a server to use.
 *
 *   ceiling ROOT      listens on 127.0.0.1, a port the kernel picks, and
 *                     prints "listening on http://127.0.0.1:PORT/"
 *
 * It answers the benchmark's requests with responses built once at start
 * from ROOT/index.html and ROOT/big.bin, and does no real HTTP work: no
 * validation, no header parsing beyond finding the method, the path,
 * Content-Length and "Connection: close".  One epoll loop, one recv and one
 * send per batch of requests: what it reaches is about the most any server
 * can reach on the machine, which is all bench/run wants to know from it.
 *
 * It is also the upstream of bench/run's proxy scenarios: besides GET
 * /index.html (1 KiB), POST or PUT /upload reads and drops the request's
 * Content-Length body and answers "200 OK" with a short body once the last
 * byte is in, as an application that takes an upload does.
 *
 * For the cache scenarios: a query is ignored (/index.html?n=7 is
 * /index.html: distinct keys for a cache, one answer here), ROOT/huge.bin
 * is served as /huge.bin when it exists, and GET /ceiling-requests answers
 * with the number of requests answered so far (itself not counted), so
 * that bench/run can tell whether a cache in front asked anything.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "event_loop.h"

enum { INBUF = 16384 };

struct answer;

struct conn {
    int fd;
    int filefd;         /* the file being sent after out[]: big.bin or huge.bin */
    int readable;       /* data may be waiting: no short read since the last EPOLLIN */
    int closing;        /* close once the output is out */
    size_t inlen, skip; /* bytes in in[]; request body bytes still to drop */
    char *out;          /* answers not yet sent: out[outoff..outlen) */
    size_t outoff, outlen, outcap;
    off_t fileoff, fileleft; /* then big.bin from fileoff, fileleft bytes */
    struct answer *after;    /* the answer due once the body is dropped, */
    int after_close;         /* and whether to close after it */
    char in[INBUF];
};

struct answer {
    char *head;
    size_t headlen;
    const char *body;
    size_t bodylen;
    int fd; /* a file answer (body NULL): sent with sendfile */
};

static struct answer a_index, a_big, a_huge, a_upload, a_404, a_405, a_501;
static unsigned long long answered; /* requests answered, for /ceiling-requests */

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die(path);
    char *buf = malloc(1 << 20);
    if (!buf)
        die("malloc");
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

/* The head without its final CRLF, so that "Connection: close" can follow. */
static void build(struct answer *a, const char *status, const char *extra, const char *type,
                  const char *date, const char *body, size_t bodylen)
{
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %s\r\nServer: ceiling\r\nDate: %s\r\n%s"
                     "Content-Type: %s\r\nContent-Length: %zu\r\n",
                     status, date, extra, type, bodylen);
    a->head = strdup(head);
    if (!a->head)
        die("strdup");
    a->headlen = (size_t)n;
    a->body = body;
    a->bodylen = bodylen;
}

static void put(struct conn *c, const void *p, size_t n)
{
    if (c->outlen + n > c->outcap) {
        c->outcap = (c->outlen + n) * 2;
        c->out = realloc(c->out, c->outcap);
        if (!c->out)
            die("realloc");
    }
    memcpy(c->out + c->outlen, p, n);
    c->outlen += n;
}

static const char *find_ci(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (strncasecmp(s + i, needle, k) == 0)
            return s + i;
    return NULL;
}

static void respond(struct conn *c, struct answer *a, int head_only)
{
    put(c, a->head, a->headlen);
    if (c->closing)
        put(c, "Connection: close\r\n", 19);
    put(c, "\r\n", 2);
    if (!head_only && !a->body)
        c->filefd = a->fd, c->fileleft = (off_t)a->bodylen, c->fileoff = 0;
    else if (!head_only)
        put(c, a->body, a->bodylen);
}

/* Answer the complete requests in c->in; stop after one that must be
 * followed by big.bin or by closing the connection. */
static void answer_all(struct conn *c)
{
    size_t pos = 0;
    while (!c->closing && c->fileleft == 0) {
        if (c->skip) {
            size_t n = c->inlen - pos < c->skip ? c->inlen - pos : c->skip;
            pos += n;
            c->skip -= n;
            if (c->skip)
                break;
        }
        if (c->after) {
            c->closing = c->after_close;
            respond(c, c->after, 0);
            c->after = NULL;
            continue;
        }
        char *req = c->in + pos, *end = memmem(req, c->inlen - pos, "\r\n\r\n", 4);
        if (!end)
            break;
        size_t headlen = (size_t)(end - req) + 4;
        pos += headlen;
        const char *sp = memchr(req, ' ', headlen), *path = sp ? sp + 1 : req;
        size_t mlen = sp ? (size_t)(sp - req) : 0;
        const char *pe = memchr(path, ' ', headlen - (size_t)(path - req));
        size_t plen = pe ? (size_t)(pe - path) : 0;
        const char *query = memchr(path, '?', plen);
        if (query)
            plen = (size_t)(query - path);
        int head_only = mlen == 4 && memcmp(req, "HEAD", 4) == 0;
        struct answer *a = &a_501;
        if (head_only || (mlen == 3 && memcmp(req, "GET", 3) == 0)) {
            if (plen == 11 && memcmp(path, "/index.html", 11) == 0)
                a = &a_index;
            else if (plen == 8 && memcmp(path, "/big.bin", 8) == 0)
                a = &a_big;
            else if (plen == 9 && memcmp(path, "/huge.bin", 9) == 0 && a_huge.head)
                a = &a_huge;
            else if (plen == 17 && memcmp(path, "/ceiling-requests", 17) == 0)
                a = NULL;
            else
                a = &a_404;
        } else if (((mlen == 3 && memcmp(req, "PUT", 3) == 0) ||
                    (mlen == 4 && memcmp(req, "POST", 4) == 0)) &&
                   plen == 7 && memcmp(path, "/upload", 7) == 0) {
            a = &a_upload;
        } else if ((mlen == 3 && memcmp(req, "PUT", 3) == 0) ||
                   (mlen == 4 && memcmp(req, "POST", 4) == 0) ||
                   (mlen == 5 && memcmp(req, "PATCH", 5) == 0) ||
                   (mlen == 6 && memcmp(req, "DELETE", 6) == 0)) {
            a = &a_405;
        }
        /* Only header lines starting with C can matter: Content-Length
         * and Connection. */
        for (const char *l = memchr(req, '\n', headlen); l && l + 1 < end;
             l = memchr(l + 1, '\n', (size_t)(end - l))) {
            const char *h = l + 1, *eol = memchr(h, '\r', (size_t)(end + 1 - h));
            if ((*h | 0x20) != 'c')
                continue;
            if (strncasecmp(h, "content-length:", 15) == 0)
                c->skip = strtoull(h + 15, NULL, 10);
            else if (strncasecmp(h, "connection:", 11) == 0)
                c->closing = find_ci(h + 11, (size_t)(eol - h - 11), "close") != NULL;
        }
        if (!a) {
            char count[160];
            int n = snprintf(count, sizeof count,
                             "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                             "Content-Length: %d\r\n\r\n%llu\n",
                             snprintf(NULL, 0, "%llu\n", answered), answered);
            put(c, count, (size_t)n);
            continue;
        }
        answered++;
        if (a == &a_upload && c->skip) {
            /* answered once the body is in */
            c->after = a;
            c->after_close = c->closing;
            c->closing = 0;
        } else
            respond(c, a, head_only);
    }
    c->inlen -= pos;
    memmove(c->in, c->in + pos, c->inlen);
}

/* 1: all sent; 0: the socket is full, wait for EPOLLOUT; -1: error. */
static int flush(struct conn *c)
{
    while (c->outoff < c->outlen) {
        ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff,
                         MSG_NOSIGNAL | (c->fileleft ? MSG_MORE : 0));
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        c->outoff += (size_t)n;
    }
    c->outoff = c->outlen = 0;
    while (c->fileleft > 0) {
        ssize_t n = sendfile(c->fd, c->filefd, &c->fileoff, (size_t)c->fileleft);
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        if (n == 0)
            return -1;
        c->fileleft -= n;
    }
    return 1;
}

static void drop(struct conn *c)
{
    close(c->fd);
    free(c->out);
    free(c);
}

/* Returns 0 when it has closed the connection. */
static int serve(struct conn *c, unsigned events)
{
    /* A FIN that came with this edge's data gets no edge of its own. */
    int shut = (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
    if (shut || (events & EPOLLIN))
        c->readable = 1;
    for (;;) {
        int r = flush(c);
        if (r == 0)
            return 1;
        if (r < 0 || c->closing)
            break;
        answer_all(c); /* what is left after big.bin, or just read */
        if (c->outlen || c->fileleft || c->closing)
            continue;
        if (!c->readable)
            return 1;
        size_t room = INBUF - c->inlen;
        if (room == 0)
            break; /* a head longer than the buffer */
        ssize_t n = recv(c->fd, c->in + c->inlen, room, 0);
        if (n < 0 && errno == EAGAIN) {
            c->readable = 0;
            return 1;
        }
        if (n <= 0)
            break;
        if ((size_t)n < room && !shut)
            c->readable = 0; /* drained until the next edge */
        c->inlen += (size_t)n;
    }
    drop(c);
    return 0;
}

static void on_event(void *c, unsigned events)
{
    serve(c, events);
}

static void on_accept(int ep, int fd)
{
    struct conn *c = malloc(sizeof *c);
    if (!c)
        die("malloc");
    memset(c, 0, offsetof(struct conn, in));
    c->fd = fd;
    /* Answer what is already there before registering: what comes later,
     * or room to write, the registration reports. */
    if (!serve(c, EPOLLIN))
        return;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        drop(c);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s ROOT\n(bench/run's ceiling reference; not a server to use)\n",
                argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    char path[4096], date[64];
    time_t now = time(NULL);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", gmtime(&now));

    size_t ilen;
    snprintf(path, sizeof path, "%s/index.html", argv[1]);
    char *index = slurp(path, &ilen);
    snprintf(path, sizeof path, "%s/big.bin", argv[1]);
    struct stat st;
    int bigfd = open(path, O_RDONLY | O_CLOEXEC);
    if (bigfd < 0 || fstat(bigfd, &st) < 0)
        die(path);
    off_t bigsize = st.st_size;
    snprintf(path, sizeof path, "%s/huge.bin", argv[1]);
    int hugefd = open(path, O_RDONLY | O_CLOEXEC);
    if (hugefd >= 0 && fstat(hugefd, &st) < 0)
        die(path);

    static const char bupload[] = "<p>upload received</p>\n";
    static const char b404[] = "<p>404 Not Found</p>\n", b405[] = "<p>405 Method Not Allowed</p>\n",
                      b501[] = "<p>501 Not Implemented</p>\n";
    build(&a_index, "200 OK", "", "text/html", date, index, ilen);
    build(&a_big, "200 OK", "", "application/octet-stream", date, NULL, (size_t)bigsize);
    a_big.fd = bigfd;
    if (hugefd >= 0) {
        build(&a_huge, "200 OK", "", "application/octet-stream", date, NULL, (size_t)st.st_size);
        a_huge.fd = hugefd;
    }
    build(&a_upload, "200 OK", "", "text/html", date, bupload, sizeof bupload - 1);
    build(&a_404, "404 Not Found", "", "text/html", date, b404, sizeof b404 - 1);
    build(&a_405, "405 Method Not Allowed", "Allow: GET, HEAD, OPTIONS\r\n", "text/html", date,
          b405, sizeof b405 - 1);
    build(&a_501, "501 Not Implemented", "", "text/html", date, b501, sizeof b501 - 1);

    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t salen = sizeof sa;
    /* Accepted sockets inherit TCP_NODELAY from the listener; with
     * TCP_DEFER_ACCEPT a connection is accepted once its request is in. */
    if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        setsockopt(ls, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0 ||
        setsockopt(ls, IPPROTO_TCP, TCP_DEFER_ACCEPT, &one, sizeof one) < 0 ||
        bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(ls, 4096) < 0 ||
        getsockname(ls, (struct sockaddr *)&sa, &salen) < 0)
        die("listen");
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.ptr = NULL};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev) < 0)
        die("epoll");
    printf("listening on http://127.0.0.1:%u/\n", ntohs(sa.sin_port));
    fflush(stdout);

    event_loop(ep, ls, on_event, on_accept);
}
