/* bench/tls_handshake.c: the load generator of bench/run's tls-handshake
 * scenario, built as build/bench-tls-handshake.
 *
 *   bench-tls-handshake PORT SECONDS CONNECTIONS PATH
 *
 * Keeps CONNECTIONS connections to 127.0.0.1:PORT going for SECONDS: each
 * one connects, makes a full TLS 1.3 handshake (a fresh SSL object that is
 * never given a session, so the server cannot resume one), sends
 * `GET PATH` with `Connection: close`, reads the whole response and the
 * server's close, and is replaced by a new connection.  The certificate is
 * not verified (the benchmark's is self-signed), but its CertificateVerify
 * signature is checked as in any handshake.
 *
 * At the end it prints one line in the format of bench/scenario.lua's,
 * which bench/run parses, with the TLS details after it:
 *
 *   BENCH requests=N duration_us=N p50_us=N p99_us=N max_us=N connect=N
 *         read=N write=N timeout=N status_errors=N statuses=200:N
 *         resumed=N tls13=N
 *
 * requests counts complete responses (one per handshake); latency is from
 * connect() to the end of the response; connect counts failed connections
 * and handshakes.  resumed must be 0. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

enum { RESPONSE_MAX = 65536, TIMEOUT_US = 10 * 1000 * 1000 };

enum phase { CONNECTING, HANDSHAKE, WRITING, READING };

struct conn {
    int fd;
    SSL *ssl;
    enum phase phase;
    uint64_t start_us;
    size_t sent, got;
    char in[RESPONSE_MAX];
};

static SSL_CTX *ctx;
static int ep;
static struct sockaddr_in addr;
static char request[512];
static size_t request_len;

static uint64_t *lat;
static size_t nlat, caplat;
static unsigned long n_connect, n_read, n_write, n_timeout, n_resumed, n_tls13;
static unsigned long statuses[600];

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void record_latency(uint64_t us)
{
    if (nlat == caplat) {
        caplat = caplat ? caplat * 2 : 65536;
        lat = realloc(lat, caplat * sizeof *lat);
        if (!lat) {
            perror("realloc");
            exit(1);
        }
    }
    lat[nlat++] = us;
}

static void finish(struct conn *c)
{
    if (c->ssl)
        SSL_free(c->ssl);
    c->ssl = NULL;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static void start(struct conn *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        perror("socket");
        exit(1);
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->ssl = NULL;
    c->sent = c->got = 0;
    c->start_us = now_us();
    c->phase = CONNECTING;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        perror("epoll_ctl");
        exit(1);
    }
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) {
        n_connect++;
        finish(c);
    }
}

/* The response is complete: its head is in, and Content-Length bytes of
 * body after it (or the server closed). */
static int response_complete(struct conn *c, int eof)
{
    char *end = memmem(c->in, c->got, "\r\n\r\n", 4);
    if (!end)
        return 0;
    size_t head = (size_t)(end - c->in) + 4;
    const char *cl = memmem(c->in, head, "\r\nContent-Length:", 17);
    if (!cl)
        cl = memmem(c->in, head, "\r\ncontent-length:", 17);
    if (!cl)
        return eof;
    return c->got - head >= strtoul(cl + 17, NULL, 10);
}

static void done(struct conn *c)
{
    int status = 0;
    if (c->got > 12 && memcmp(c->in, "HTTP/1.", 7) == 0)
        status = atoi(c->in + 9);
    if (status > 0 && status < 600)
        statuses[status]++;
    if (SSL_session_reused(c->ssl))
        n_resumed++;
    if (SSL_version(c->ssl) == TLS1_3_VERSION)
        n_tls13++;
    record_latency(now_us() - c->start_us);
}

/* Drives c as far as it goes; 1 when it has ended (a new one is due). */
static int step(struct conn *c)
{
    if (c->phase == CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            n_connect++;
            return 1;
        }
        c->ssl = SSL_new(ctx);
        if (!c->ssl || !SSL_set_fd(c->ssl, c->fd)) {
            fprintf(stderr, "bench-tls-handshake: SSL_new failed\n");
            exit(1);
        }
        SSL_set_tlsext_host_name(c->ssl, "localhost");
        SSL_set_connect_state(c->ssl);
        c->phase = HANDSHAKE;
    }
    if (c->phase == HANDSHAKE) {
        ERR_clear_error();
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                return 0;
            n_connect++;
            return 1;
        }
        c->phase = WRITING;
    }
    if (c->phase == WRITING) {
        size_t w = 0;
        ERR_clear_error();
        if (SSL_write_ex(c->ssl, request + c->sent, request_len - c->sent, &w) != 1) {
            int e = SSL_get_error(c->ssl, 0);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                return 0;
            n_write++;
            return 1;
        }
        c->sent += w;
        if (c->sent < request_len)
            return 0;
        c->phase = READING;
    }
    for (;;) {
        size_t r = 0;
        if (c->got == sizeof c->in) {
            n_read++; /* a response larger than this client reads */
            return 1;
        }
        ERR_clear_error();
        if (SSL_read_ex(c->ssl, c->in + c->got, sizeof c->in - c->got, &r) == 1) {
            c->got += r;
            continue;
        }
        int e = SSL_get_error(c->ssl, 0);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            return 0;
        /* The server closed (close_notify or TCP): a complete response
         * counts, anything short of one is a read error. */
        if (response_complete(c, 1))
            done(c);
        else
            n_read++;
        return 1;
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t percentile(double p)
{
    if (!nlat)
        return 0;
    size_t i = (size_t)(p / 100.0 * (double)(nlat - 1) + 0.5);
    return lat[i];
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: bench-tls-handshake PORT SECONDS CONNECTIONS PATH\n");
        return 2;
    }
    int port = atoi(argv[1]), seconds = atoi(argv[2]), nconn = atoi(argv[3]);
    if (port <= 0 || port > 65535 || seconds <= 0 || nconn <= 0) {
        fprintf(stderr, "bench-tls-handshake: bad arguments\n");
        return 2;
    }
    request_len = (size_t)snprintf(request, sizeof request,
                                   "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                                   "Connection: close\r\n\r\n",
                                   argv[4], port);
    if (request_len >= sizeof request) {
        fprintf(stderr, "bench-tls-handshake: path too long\n");
        return 2;
    }
    addr = (struct sockaddr_in){.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION)) {
        fprintf(stderr, "bench-tls-handshake: SSL_CTX_new failed\n");
        return 1;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    /* No client session cache: no session is ever offered. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1);

    ep = epoll_create1(EPOLL_CLOEXEC);
    struct conn *conns = calloc((size_t)nconn, sizeof *conns);
    if (ep < 0 || !conns) {
        perror("bench-tls-handshake");
        return 1;
    }
    uint64_t t0 = now_us(), end = t0 + (uint64_t)seconds * 1000000, last_check = t0;
    for (int i = 0; i < nconn; i++)
        start(&conns[i]);
    struct epoll_event evs[256];
    uint64_t t;
    while ((t = now_us()) < end) {
        /* connections whose connect failed at once are restarted here */
        for (int i = 0; i < nconn; i++)
            if (conns[i].fd < 0)
                start(&conns[i]);
        int n = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c->fd >= 0 && step(c)) {
                finish(c);
                start(c);
            }
        }
        if (t - last_check > 1000000) {
            last_check = t;
            for (int i = 0; i < nconn; i++)
                if (conns[i].fd >= 0 && conns[i].start_us + TIMEOUT_US < t) {
                    n_timeout++;
                    finish(&conns[i]);
                    start(&conns[i]);
                }
        }
    }
    uint64_t duration = now_us() - t0;
    for (int i = 0; i < nconn; i++) { /* unfinished: dropped, with a reset */
        if (conns[i].fd >= 0) {
            struct linger now = {.l_onoff = 1, .l_linger = 0};
            setsockopt(conns[i].fd, SOL_SOCKET, SO_LINGER, &now, sizeof now);
        }
        finish(&conns[i]);
    }
    qsort(lat, nlat, sizeof *lat, cmp_u64);
    unsigned long status_errors = 0;
    char codes[4096] = "";
    size_t at = 0;
    for (int s = 0; s < 600; s++) {
        if (!statuses[s])
            continue;
        if (s > 399)
            status_errors += statuses[s];
        at += (size_t)snprintf(codes + at, sizeof codes - at, "%s%d:%lu", at ? "," : "", s,
                               statuses[s]);
        if (at >= sizeof codes)
            break;
    }
    printf("BENCH requests=%zu duration_us=%llu p50_us=%llu p99_us=%llu max_us=%llu "
           "connect=%lu read=%lu write=%lu timeout=%lu status_errors=%lu statuses=%s "
           "resumed=%lu tls13=%lu\n",
           nlat, (unsigned long long)duration, (unsigned long long)percentile(50),
           (unsigned long long)percentile(99), (unsigned long long)(nlat ? lat[nlat - 1] : 0),
           n_connect, n_read, n_write, n_timeout, status_errors, codes, n_resumed, n_tls13);
    return 0;
}
