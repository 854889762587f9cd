/* The TLS handshake, before any session exists: one acceptor per listener
 * and worker drives each accepted descriptor's handshake from the loop
 * until it completes, fails or times out.  A connection that has sent
 * nothing yet holds no OpenSSL state: the first byte is peeked to tell a
 * TLS client from a plain-HTTP one, and only then is an SSL made. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/err.h>

#include "core/clock.h"
#include "core/log.h"
#include "engine/tls_ssl.h"

/* The first byte of a TLS connection: a handshake record. */
#define TLS_RECORD_HANDSHAKE 0x16

struct handshake {
    struct tls_acceptor *a;
    struct handshake *prev, *next;
    int fd;
    SSL *ssl; /* NULL until the first byte shows a TLS client */
    struct loop_watch watch;
    struct loop_timer timer;
    socklen_t peer_len;
    struct sockaddr_storage peer;
};

struct tls_acceptor {
    struct loop *loop;
    struct tls_config *default_config;
    tls_select_fn *select;
    void *select_arg;
    const struct tls_acceptor_ops *ops;
    void *arg;
    uint32_t timeout_ms;
    struct handshake *pending;
    size_t npending;
};

struct tls_acceptor *tls_acceptor_new(struct loop *loop, struct tls_config *default_config,
                                      tls_select_fn *select, void *select_arg,
                                      const struct tls_acceptor_ops *ops, void *arg,
                                      uint32_t timeout_ms)
{
    struct tls_acceptor *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->loop = loop;
    a->ops = ops;
    a->arg = arg;
    a->timeout_ms = timeout_ms;
    tls_acceptor_configure(a, default_config, select, select_arg);
    return a;
}

void tls_acceptor_configure(struct tls_acceptor *a, struct tls_config *default_config,
                            tls_select_fn *select, void *select_arg)
{
    a->default_config = default_config;
    a->select = select;
    a->select_arg = select_arg;
}

size_t tls_acceptor_pending(const struct tls_acceptor *a)
{
    return a->npending;
}

/* Forgets h (its descriptor stays open unless `close_fd`). */
static void drop(struct handshake *h, bool close_fd)
{
    struct tls_acceptor *a = h->a;
    loop_watch_del(a->loop, &h->watch, close_fd);
    loop_timer_stop(a->loop, &h->timer);
    if (h->prev)
        h->prev->next = h->next;
    else
        a->pending = h->next;
    if (h->next)
        h->next->prev = h->prev;
    a->npending--;
    if (close_fd) {
        SSL_free(h->ssl);
        close(h->fd);
    }
    free(h);
}

/* Ends a handshake that failed; `why` goes to the debug log. */
static void fail(struct handshake *h, const char *why)
{
    log_msg(LOG_DEBUG, "TLS handshake abandoned: %s", why);
    drop(h, true);
}

static void complete(struct handshake *h)
{
    struct tls_acceptor *a = h->a;
    struct transport t;
    if (tls_transport_init(&t, h->fd, h->ssl) < 0) {
        fail(h, "out of memory");
        return;
    }
    const struct tls_config *chosen = tls_config_of(SSL_get_SSL_CTX(h->ssl));
    const unsigned char *proto = NULL;
    unsigned int len = 0;
    SSL_get0_alpn_selected(h->ssl, &proto, &len);
    const char *alpn = NULL;
    for (size_t i = 0; proto && tls_alpn_protocols[i]; i++)
        if (strlen(tls_alpn_protocols[i]) == len && memcmp(proto, tls_alpn_protocols[i], len) == 0)
            alpn = tls_alpn_protocols[i];
    struct sockaddr_storage peer = h->peer;
    socklen_t peer_len = h->peer_len;
    drop(h, false);
    a->ops->done(a->arg, &t, chosen, alpn, (struct sockaddr *)&peer, peer_len);
}

static void plain_http(struct handshake *h)
{
    struct tls_acceptor *a = h->a;
    int fd = h->fd;
    struct sockaddr_storage peer = h->peer;
    socklen_t peer_len = h->peer_len;
    drop(h, false);
    log_msg(LOG_DEBUG, "plain HTTP on a TLS port");
    if (a->ops->plain_http)
        a->ops->plain_http(a->arg, fd, (struct sockaddr *)&peer, peer_len);
    else
        tls_refuse_plain_http(fd);
}

/* A request line begins with a method, a token (RFC 9110 §5.6.2); a TLS
 * record type is a control byte. */
static bool is_tchar(unsigned char c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Moves the handshake on as far as the socket lets it. */
static void step(struct handshake *h)
{
    if (!h->ssl) {
        unsigned char first;
        ssize_t n = recv(h->fd, &first, 1, MSG_PEEK);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        if (n <= 0) {
            fail(h, n == 0 ? "closed before sending anything" : strerror(errno));
            return;
        }
        if (first != TLS_RECORD_HANDSHAKE) {
            if (is_tchar(first))
                plain_http(h);
            else
                fail(h, "not a TLS client");
            return;
        }
        h->ssl = SSL_new(h->a->default_config->ctx);
        if (!h->ssl || SSL_set_fd(h->ssl, h->fd) != 1) {
            fail(h, "out of memory");
            return;
        }
        SSL_set_app_data(h->ssl, h);
        SSL_set_accept_state(h->ssl);
    }
    ERR_clear_error();
    int r = SSL_do_handshake(h->ssl);
    if (r == 1) {
        complete(h);
        return;
    }
    int e = SSL_get_error(h->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return; /* the socket is drained (or full): the next edge resumes */
    const char *why = e == SSL_ERROR_SYSCALL ? "the connection failed"
                                             : ERR_reason_error_string(ERR_peek_last_error());
    fail(h, why ? why : "protocol error");
    ERR_clear_error();
}

static void on_io(void *arg, uint32_t events)
{
    (void)events;
    step(arg);
}

static void on_timeout(void *arg)
{
    fail(arg, "timed out");
}

void tls_accept(struct tls_acceptor *a, int fd, const struct sockaddr *peer, socklen_t peer_len)
{
    struct handshake *h = calloc(1, sizeof *h);
    if (!h) {
        close(fd);
        return;
    }
    h->a = a;
    h->fd = fd;
    if (peer && peer_len <= sizeof h->peer) {
        memcpy(&h->peer, peer, peer_len);
        h->peer_len = peer_len;
    }
    loop_timer_init(&h->timer);
    if (loop_watch_add(a->loop, &h->watch, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, on_io,
                       h) < 0) {
        close(fd);
        free(h);
        return;
    }
    h->next = a->pending;
    if (h->next)
        h->next->prev = h;
    a->pending = h;
    a->npending++;
    loop_timer_at(a->loop, &h->timer, clock_ms() + a->timeout_ms, on_timeout, h);
}

void tls_acceptor_free(struct tls_acceptor *a)
{
    if (!a)
        return;
    while (a->pending)
        drop(a->pending, true);
    free(a);
}

/* ---- SNI ------------------------------------------------------------------- */

/* The host_name of a server_name extension (RFC 6066 §3), lower-cased
 * into name; false if there is none. */
static bool sni_host_name(SSL *ssl, char *name, size_t size)
{
    const unsigned char *p;
    size_t len;
    if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &len) || len < 2)
        return false;
    size_t list = (size_t)p[0] << 8 | p[1];
    if (list != len - 2)
        return false;
    for (size_t at = 2; at + 3 <= len;) {
        unsigned type = p[at];
        size_t n = (size_t)p[at + 1] << 8 | p[at + 2];
        at += 3;
        if (at + n > len)
            return false;
        if (type == TLSEXT_NAMETYPE_host_name) {
            if (n == 0 || n >= size || memchr(p + at, 0, n))
                return false;
            for (size_t i = 0; i < n; i++)
                name[i] = (char)tolower(p[at + i]);
            name[n] = 0;
            return true;
        }
        at += n;
    }
    return false;
}

/* Runs before OpenSSL picks a version or cipher, so the selected
 * configuration's protocols and ciphers apply, not only its certificate. */
int tls_client_hello(SSL *ssl, int *alert, void *arg)
{
    (void)alert, (void)arg;
    struct handshake *h = SSL_get_app_data(ssl);
    if (!h || !h->a->select)
        return SSL_CLIENT_HELLO_SUCCESS;
    char name[256];
    bool named = sni_host_name(ssl, name, sizeof name);
    struct tls_config *c = h->a->select(h->a->select_arg, named ? name : NULL);
    if (!c || c->ctx == SSL_get_SSL_CTX(ssl))
        return SSL_CLIENT_HELLO_SUCCESS;
    if (!SSL_set_SSL_CTX(ssl, c->ctx) || !SSL_set_min_proto_version(ssl, c->min_version) ||
        !SSL_set_max_proto_version(ssl, c->max_version) ||
        SSL_set_cipher_list(ssl, c->ciphers) != 1) {
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}

/* ---- plain HTTP on a TLS port ------------------------------------------------ */

#define PLAIN_BODY "400 Bad Request\nThis is an HTTPS port: the request was sent as plain HTTP.\n"
#define PLAIN_LENGTH "75"
_Static_assert(sizeof PLAIN_BODY - 1 == 75, "PLAIN_LENGTH");

void tls_refuse_plain_http(int fd)
{
    static const char head[] = "HTTP/1.1 400 Bad Request\r\nServer: verbd\r\n";
    static const char rest[] = "Content-Type: text/plain\r\nContent-Length: " PLAIN_LENGTH
                               "\r\nConnection: close\r\n\r\n" PLAIN_BODY;
    const char *date = clock_date_field();
    /* Read what the request brought first: closing with unread input would
     * send a reset, which can destroy the answer before it is read. */
    char scratch[4096];
    for (int i = 0; i < 4 && recv(fd, scratch, sizeof scratch, MSG_DONTWAIT) > 0; i++)
        ;
    struct iovec iov[] = {{(void *)head, sizeof head - 1},
                          {(void *)date, CLOCK_DATE_FIELD_LEN},
                          {(void *)rest, sizeof rest - 1}};
    ssize_t n = writev(fd, iov, 3);
    (void)n;
    shutdown(fd, SHUT_WR);
    for (int i = 0; i < 4 && recv(fd, scratch, sizeof scratch, MSG_DONTWAIT) > 0; i++)
        ;
    close(fd);
}
