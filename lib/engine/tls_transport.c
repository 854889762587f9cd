/* The TLS transport: the ops of transport.h over an established SSL,
 * behaving like their system calls.
 *
 * Reading fills the buffer or empties the socket, so that a short read
 * means "drained", as the session's edge-triggered reading assumes.
 * Writing goes a record (at most 16 KiB) at a time; after a write that
 * would block, OpenSSL wants the same bytes again, so the size of that
 * record is kept and the next call presents exactly as many (the session
 * retries with the same queued output; the address may move). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>

#include "engine/tls_ssl.h"

#define RECORD_MAX SSL3_RT_MAX_PLAIN_LENGTH

struct tls_conn {
    SSL *ssl;
    size_t pending; /* the size of a record whose write must be retried */
    bool ktls_send; /* file ranges go by SSL_sendfile */
    bool shut;      /* our close_notify is sent: input is only drained */
    bool drained;   /* the socket's last read was short: it held no more */
};

static const struct transport_ops tls_ops;

/* OpenSSL's error queue must be empty before an I/O call for
 * SSL_get_error() to be right.  Every failure here empties it after use,
 * so it almost always is: peeking is cheaper than clearing each time. */
static inline void clear_errors(void)
{
    if (ERR_peek_error())
        ERR_clear_error();
}

/* errno for a failure that is not "try again". */
static void set_failure_errno(int ssl_error)
{
    if (ssl_error != SSL_ERROR_SYSCALL || errno == 0 || errno == EAGAIN)
        errno = ECONNRESET;
    ERR_clear_error();
}

static ssize_t tls_read(struct transport *t, void *buf, size_t n)
{
    struct tls_conn *c = t->impl;
    size_t got = 0;
    t->read_wants_write = false;
    /* After our close_notify the session only drains what the client
     * still sends before it closes (as on TCP): the bytes, not records. */
    if (c->shut)
        return recv(t->fd, buf, n, 0);
    while (got < n) {
        size_t r = 0;
        clear_errors();
        c->drained = false;
        if (SSL_read_ex(c->ssl, (char *)buf + got, n - got, &r) == 1) {
            got += r;
            /* The socket ran dry and OpenSSL holds nothing more: a short
             * return says so, as on TCP, without one more read to learn
             * it would block. */
            if (c->drained && !SSL_has_pending(c->ssl))
                return (ssize_t)got;
            continue;
        }
        int e = SSL_get_error(c->ssl, 0);
        if (e == SSL_ERROR_WANT_WRITE)
            t->read_wants_write = true;
        if (got)
            return (ssize_t)got; /* the state stays with OpenSSL for the next call */
        switch (e) {
        case SSL_ERROR_WANT_WRITE:
        case SSL_ERROR_WANT_READ: errno = EAGAIN; return -1;
        case SSL_ERROR_ZERO_RETURN:
            /* close_notify, or (SSL_OP_IGNORE_UNEXPECTED_EOF) a plain TCP
             * close: the session's framing tells a truncated body. */
            return 0;
        default: set_failure_errno(e); return -1;
        }
    }
    return (ssize_t)got;
}

/* One record's write of len bytes at p: the bytes written, or -1 (errno
 * EAGAIN if the socket is full: the same len is due next time). */
static ssize_t write_record(struct tls_conn *c, const void *p, size_t len)
{
    size_t w = 0;
    clear_errors();
    if (SSL_write_ex(c->ssl, p, len, &w) == 1) {
        c->pending = 0;
        return (ssize_t)w;
    }
    int e = SSL_get_error(c->ssl, 0);
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
        c->pending = len;
        errno = EAGAIN;
        return -1;
    }
    set_failure_errno(e);
    return -1;
}

static ssize_t tls_writev(struct transport *t, const struct iovec *iov, int iovcnt, bool more)
{
    (void)more;
    struct tls_conn *c = t->impl;
    char gather[RECORD_MAX];
    size_t total = 0, skip = 0; /* skip: bytes of iov[0] already written */
    while (iovcnt > 0 && iov[0].iov_len == skip) {
        iov++, iovcnt--, skip = 0;
    }
    while (iovcnt > 0) {
        size_t avail = iov[0].iov_len - skip;
        for (int i = 1; i < iovcnt && avail < RECORD_MAX; i++)
            avail += iov[i].iov_len;
        size_t len = c->pending ? c->pending : avail < RECORD_MAX ? avail : RECORD_MAX;
        if (len > avail) {
            errno = EIO; /* the output retried is shorter than the write pending */
            return total ? (ssize_t)total : -1;
        }
        const char *p = (const char *)iov[0].iov_base + skip;
        if (iov[0].iov_len - skip < len) { /* small pieces: one record, not one each */
            size_t at = 0, s = skip;
            for (int i = 0; at < len; i++, s = 0) {
                size_t k = iov[i].iov_len - s < len - at ? iov[i].iov_len - s : len - at;
                memcpy(gather + at, (const char *)iov[i].iov_base + s, k);
                at += k;
            }
            p = gather;
        }
        ssize_t w = write_record(c, p, len);
        if (w < 0)
            return total ? (ssize_t)total : -1;
        total += (size_t)w;
        skip += (size_t)w;
        while (iovcnt > 0 && skip >= iov[0].iov_len) {
            skip -= iov[0].iov_len;
            iov++, iovcnt--;
        }
    }
    return (ssize_t)total;
}

static ssize_t tls_sendfile(struct transport *t, int fd, off_t *off, size_t n)
{
    struct tls_conn *c = t->impl;
    if (c->ktls_send) {
        clear_errors();
        ossl_ssize_t r = SSL_sendfile(c->ssl, fd, *off, n, 0);
        if (r >= 0) {
            *off += r;
            return r;
        }
        int e = SSL_get_error(c->ssl, (int)r);
        if (e == SSL_ERROR_WANT_WRITE) {
            errno = EAGAIN;
            return -1;
        }
        set_failure_errno(e);
        return -1;
    }
    /* Without kernel TLS: through a bounded buffer, a record at a time. */
    char buf[RECORD_MAX];
    size_t total = 0;
    while (total < n) {
        size_t len = c->pending ? c->pending : n - total < RECORD_MAX ? n - total : RECORD_MAX;
        ssize_t got = pread(fd, buf, len, *off);
        if (got < 0)
            return total ? (ssize_t)total : -1;
        if ((size_t)got < len && (c->pending || got == 0))
            return (ssize_t)total; /* the file shrank: 0 tells the session */
        ssize_t w = write_record(c, buf, (size_t)got);
        if (w < 0)
            return total ? (ssize_t)total : -1;
        total += (size_t)w;
        *off += w;
    }
    return (ssize_t)total;
}

static void tls_shutdown(struct transport *t)
{
    struct tls_conn *c = t->impl;
    /* close_notify, once, if no record is half sent; no wait for the
     * client's: the session drains what it still sends. */
    if (!c->pending) {
        ERR_clear_error();
        SSL_shutdown(c->ssl);
        ERR_clear_error();
    }
    c->shut = true;
    shutdown(t->fd, SHUT_WR);
}

static void release(struct transport *t)
{
    struct tls_conn *c = t->impl;
    SSL_free(c->ssl);
    free(c);
    close(t->fd);
    t->fd = -1;
    t->impl = NULL;
}

/* A close is a TLS closure: close_notify first, so that a client reading a
 * body delimited by the close can tell it is whole.  What the client sent
 * meanwhile (its own close_notify, say) is read and dropped, as far as it
 * has arrived: unread input would make the close a reset, which can
 * destroy our last bytes before the client reads them. */
static void tls_close(struct transport *t)
{
    struct tls_conn *c = t->impl;
    if (!c->shut)
        tls_shutdown(t);
    char scratch[4096];
    for (int i = 0; i < 16 && recv(t->fd, scratch, sizeof scratch, MSG_DONTWAIT) > 0; i++)
        ;
    release(t);
}

static void tls_abort(struct transport *t)
{
    struct linger now = {.l_onoff = 1, .l_linger = 0};
    setsockopt(t->fd, SOL_SOCKET, SO_LINGER, &now, sizeof now);
    release(t);
}

static const struct transport_ops tls_ops = {
    .read = tls_read,
    .writev = tls_writev,
    .sendfile = tls_sendfile,
    .shutdown = tls_shutdown,
    .close = tls_close,
    .abort = tls_abort,
};

/* Notes whether a read of the socket returned less than asked. */
static long note_read(BIO *b, int oper, const char *argp, size_t len, int argi, long argl, int ret,
                      size_t *processed)
{
    (void)argp, (void)argi, (void)argl;
    if (oper == (BIO_CB_READ | BIO_CB_RETURN)) {
        struct tls_conn *c = (struct tls_conn *)BIO_get_callback_arg(b);
        c->drained = ret <= 0 || (processed && *processed < len);
    }
    return ret;
}

int tls_transport_init(struct transport *t, int fd, SSL *ssl)
{
    struct tls_conn *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    c->ssl = ssl;
    BIO *rbio = SSL_get_rbio(ssl);
    BIO_set_callback_arg(rbio, (char *)c);
    BIO_set_callback_ex(rbio, note_read);
    c->ktls_send = BIO_get_ktls_send(SSL_get_wbio(ssl)) > 0;
    *t = (struct transport){.ops = &tls_ops, .fd = fd, .impl = c};
    return 0;
}

const struct tls_config *tls_transport_config(const struct transport *t)
{
    if (t->ops != &tls_ops)
        return NULL;
    const struct tls_conn *c = t->impl;
    return tls_config_of(SSL_get_SSL_CTX(c->ssl));
}

const char *tls_transport_server_name(const struct transport *t)
{
    if (t->ops != &tls_ops)
        return NULL;
    return SSL_get_servername(((const struct tls_conn *)t->impl)->ssl, TLSEXT_NAMETYPE_host_name);
}

bool tls_transport_ktls(const struct transport *t)
{
    return t->ops == &tls_ops && ((const struct tls_conn *)t->impl)->ktls_send;
}

bool tls_ktls_available(void)
{
    char ulp[256] = "";
    FILE *f = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "r");
    if (!f)
        return false;
    bool found = false;
    while (fscanf(f, "%255s", ulp) == 1)
        if (strcmp(ulp, "tls") == 0)
            found = true;
    fclose(f);
    return found;
}
