/* verbd probe: the TLS layer of an https connection, with OpenSSL.
 *
 * Certificates are verified by default: against the system trust store
 * (or only the --cacert file), and for the URL's host name, or its IP
 * address for a literal.  SNI names the host (never an IP literal, RFC
 * 6066 §3); ALPN offers http/1.1 alone, or with --http2 h2 then http/1.1
 * (a server that picks http/1.1 or nothing is told apart from one that
 * refuses the handshake).
 *
 * The socket is made non-blocking and each OpenSSL call is repeated after
 * poll() says the socket is ready for what it wants, until the exchange's
 * deadline.  The plain path's per-call socket timeouts would not do here:
 * one SSL_read or SSL_connect may make several recv calls, and a server
 * trickling bytes could stretch each of them to a full timeout. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "probe.h"

struct probe_tls_conn {
    SSL *ssl;
    int fd;
};

/* ALPN protocol list: length-prefixed names (RFC 7301 §3.1). */
static const unsigned char alpn_offer[] = "\x08http/1.1";
static const unsigned char alpn_offer_h2[] = "\x02h2\x08http/1.1";

/* OpenSSL's reason for the last error it queued, or `fallback`. */
static const char *ssl_reason(const char *fallback)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    return r ? r : fallback;
}

int probe_tls_init(struct probe_config *cfg, char *err, size_t cap)
{
    /* OpenSSL writes to the socket with write(2): a server that closed
     * must give an error, not kill the probe. */
    signal(SIGPIPE, SIG_IGN);
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        snprintf(err, cap, "cannot set up TLS: %s", ssl_reason("unknown error"));
        return -1;
    }
    /* Many servers close without close_notify after Connection: close; the
     * response's own framing says whether its body is complete. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (SSL_CTX_set_alpn_protos(ctx, alpn_offer, sizeof alpn_offer - 1) != 0) {
        snprintf(err, cap, "cannot set up TLS: ALPN: %s", ssl_reason("unknown error"));
        SSL_CTX_free(ctx);
        return -1;
    }
    if (cfg->cacert) {
        /* Read it even with --insecure: a bad file is a mistake to report. */
        FILE *f = fopen(cfg->cacert, "r");
        if (!f) {
            snprintf(err, cap, "--cacert %.200s: %s", cfg->cacert, strerror(errno));
            SSL_CTX_free(ctx);
            return -1;
        }
        fclose(f);
        if (SSL_CTX_load_verify_locations(ctx, cfg->cacert, NULL) != 1) {
            snprintf(err, cap, "--cacert %.200s: no usable PEM certificate in it (%s)", cfg->cacert,
                     ssl_reason("unknown error"));
            SSL_CTX_free(ctx);
            return -1;
        }
    } else if (!cfg->insecure && SSL_CTX_set_default_verify_paths(ctx) != 1) {
        snprintf(err, cap, "cannot load the system's trusted certificates: %s",
                 ssl_reason("unknown error"));
        SSL_CTX_free(ctx);
        return -1;
    }
    SSL_CTX_set_verify(ctx, cfg->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    cfg->tls_ctx = ctx;
    return 0;
}

void probe_tls_free(struct probe_config *cfg)
{
    SSL_CTX_free(cfg->tls_ctx);
    cfg->tls_ctx = NULL;
}

/* Waits until fd is ready for `events` or the deadline passes (-1,
 * ETIMEDOUT). */
static int wait_for(int fd, short events, double deadline)
{
    for (;;) {
        double left = deadline - probe_now();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        struct pollfd pfd = {.fd = fd, .events = events};
        int n = poll(&pfd, 1, (int)(left * 1000) + 1);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

/* What an OpenSSL call that returned `rc` wants before it can go on:
 * POLLIN or POLLOUT, or 0 if it failed for good. */
static short wants(const struct probe_tls_conn *c, int rc)
{
    switch (SSL_get_error(c->ssl, rc)) {
    case SSL_ERROR_WANT_READ: return POLLIN;
    case SSL_ERROR_WANT_WRITE: return POLLOUT;
    default: return 0;
    }
}

/* The address an IP literal host names, without an IPv6 zone; false for
 * a host name. */
static bool ip_literal(const char *host, char *out, size_t cap)
{
    unsigned char addr[16];
    snprintf(out, cap, "%s", host);
    out[strcspn(out, "%")] = '\0';
    return inet_pton(AF_INET, out, addr) == 1 || inet_pton(AF_INET6, out, addr) == 1;
}

static void note_session(struct probe_config *cfg, SSL *ssl)
{
    if (cfg->tls.done)
        return;
    const unsigned char *proto;
    unsigned int n;
    snprintf(cfg->tls.version, sizeof cfg->tls.version, "%s", SSL_get_version(ssl));
    snprintf(cfg->tls.cipher, sizeof cfg->tls.cipher, "%s", SSL_get_cipher_name(ssl));
    SSL_get0_alpn_selected(ssl, &proto, &n);
    if (n)
        probe_copy_clean(cfg->tls.alpn, sizeof cfg->tls.alpn, (const char *)proto, n);
    else
        snprintf(cfg->tls.alpn, sizeof cfg->tls.alpn, "none");
    cfg->tls.done = true;
}

/* Why the handshake that returned rc failed, in err. */
static void handshake_error(const struct probe_config *cfg, const struct probe_tls_conn *c, int rc,
                            char *err, size_t cap)
{
    const char *who = cfg->url.authority;
    long v = SSL_get_verify_result(c->ssl);
    if (v != X509_V_OK) {
        snprintf(err, cap, "certificate verify failed: %s (use --insecure to skip verification)",
                 X509_verify_cert_error_string(v));
        return;
    }
    int e = SSL_get_error(c->ssl, rc);
    if (e == SSL_ERROR_SYSCALL || (e == SSL_ERROR_SSL && ERR_peek_last_error() == 0)) {
        snprintf(err, cap, "TLS handshake with %.120s failed: %s", who,
                 errno ? strerror(errno) : "connection closed by the server");
        return;
    }
    int reason = ERR_GET_REASON(ERR_peek_last_error());
    snprintf(err, cap, "TLS handshake with %.120s failed: %s%s", who, ssl_reason("TLS error"),
             reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_PACKET_LENGTH_TOO_LONG
                 ? " (is it a plain http:// port?)"
                 : "");
}

struct probe_tls_conn *probe_tls_connect(struct probe_config *cfg, int fd, double deadline,
                                         char *err, size_t cap)
{
    struct probe_tls_conn *c = calloc(1, sizeof *c);
    int flags = fcntl(fd, F_GETFL);
    if (!c || flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        snprintf(err, cap, "cannot set up TLS: %s", strerror(errno));
        free(c);
        return NULL;
    }
    c->fd = fd;
    ERR_clear_error();
    if (!(c->ssl = SSL_new(cfg->tls_ctx)) || SSL_set_fd(c->ssl, fd) != 1) {
        snprintf(err, cap, "cannot set up TLS: %s", ssl_reason("out of memory"));
        probe_tls_close(c);
        return NULL;
    }
    char ip[sizeof cfg->url.host];
    bool literal = ip_literal(cfg->url.host, ip, sizeof ip);
    int ok = 1;
    if (!literal)
        ok &= SSL_set_tlsext_host_name(c->ssl, cfg->url.host) == 1;
    if (!cfg->insecure) {
        if (literal) {
            ok &= X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), ip) == 1;
        } else {
            SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            ok &= SSL_set1_host(c->ssl, cfg->url.host) == 1;
        }
    }
    if (cfg->http2)
        ok &= SSL_set_alpn_protos(c->ssl, alpn_offer_h2, sizeof alpn_offer_h2 - 1) == 0;
    if (!ok) {
        snprintf(err, cap, "cannot verify the host %.200s: %s", cfg->url.host,
                 ssl_reason("not a valid host name"));
        probe_tls_close(c);
        return NULL;
    }
    for (;;) {
        ERR_clear_error();
        errno = 0;
        int rc = SSL_connect(c->ssl);
        if (rc == 1)
            break;
        short ev = wants(c, rc);
        if (ev && wait_for(fd, ev, deadline) == 0)
            continue;
        if (ev && errno == ETIMEDOUT)
            snprintf(err, cap, "TLS handshake with %.120s not complete within %gs",
                     cfg->url.authority, cfg->timeout);
        else if (ev)
            snprintf(err, cap, "TLS handshake with %.120s failed: %s", cfg->url.authority,
                     strerror(errno));
        else
            handshake_error(cfg, c, rc, err, cap);
        probe_tls_close(c);
        return NULL;
    }
    note_session(cfg, c->ssl);
    const unsigned char *proto;
    unsigned int n;
    SSL_get0_alpn_selected(c->ssl, &proto, &n);
    if (cfg->http2 && !(n == 2 && memcmp(proto, "h2", 2) == 0)) {
        char chose[32];
        probe_copy_clean(chose, sizeof chose, (const char *)proto, n);
        snprintf(err, cap,
                 "%.120s does not offer HTTP/2 over TLS: asked for ALPN h2, it chose %s%s%s",
                 cfg->url.authority, n ? "\"" : "no protocol", n ? chose : "", n ? "\"" : "");
        probe_tls_close(c);
        return NULL;
    }
    return c;
}

long probe_tls_send(struct probe_tls_conn *c, const char *buf, size_t n, double deadline)
{
    for (;;) {
        if (probe_now() >= deadline) {
            errno = ETIMEDOUT;
            return -1;
        }
        size_t done;
        ERR_clear_error();
        errno = 0;
        int rc = SSL_write_ex(c->ssl, buf, n, &done);
        if (rc == 1)
            return (long)done;
        short ev = wants(c, rc);
        if (ev) {
            if (wait_for(c->fd, ev, deadline) < 0)
                return -1;
            continue;
        }
        if (SSL_get_error(c->ssl, rc) != SSL_ERROR_SYSCALL || errno == 0)
            errno = EPROTO;
        return -1;
    }
}

long probe_tls_recv(struct probe_tls_conn *c, char *buf, size_t cap, double deadline)
{
    for (;;) {
        if (probe_now() >= deadline) {
            errno = ETIMEDOUT;
            return -1;
        }
        size_t got;
        ERR_clear_error();
        errno = 0;
        int rc = SSL_read_ex(c->ssl, buf, cap, &got);
        if (rc == 1)
            return (long)got;
        short ev = wants(c, rc);
        if (ev) {
            if (wait_for(c->fd, ev, deadline) < 0)
                return -1;
            continue;
        }
        int e = SSL_get_error(c->ssl, rc);
        if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0))
            return 0; /* close_notify, or the server closed the socket */
        if (e != SSL_ERROR_SYSCALL)
            errno = EPROTO;
        return -1;
    }
}

void probe_tls_close(struct probe_tls_conn *c)
{
    if (!c)
        return;
    if (c->ssl) {
        /* One try: the request said Connection: close, nothing waits. */
        ERR_clear_error();
        if (SSL_is_init_finished(c->ssl))
            SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
    }
    free(c);
}
