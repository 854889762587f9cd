/* The TLS transport (lib/engine/tls_*.c) over loopback TCP, with an
 * OpenSSL client in the same process stepped beside the server's loop.
 * Certificates (ECDSA P-256) are made here, in a temporary directory.
 *
 * Covered: handshake, reads that fill the buffer across records, writes
 * gathered into records, a 1 MiB write through partial writes (retried from
 * a moved buffer), a 1 MiB file through sendfile, ALPN, refused protocol
 * versions and ciphers, SNI (certificate, configuration and its protocols),
 * the handshake timeout, clients that vanish, configuration errors, the
 * `verbd -t` warnings, plain HTTP on the TLS port, and resumption by
 * ticket across configurations sharing the ticket secret (two workers). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/loop.h"
#include "engine/tls.h"
#include "unit.h"

static char dir[] = "/tmp/verbd-tls-XXXXXX";
static char made[32][300];
static int nmade;
static struct loop *L;
static int listen_fd;

/* ---- certificates ------------------------------------------------------------ */

static const char *path(const char *name)
{
    snprintf(made[nmade], sizeof made[nmade], "%s/%s", dir, name);
    return made[nmade++];
}

static EVP_PKEY *new_key(void)
{
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

/* A certificate for key named cn, valid from an hour ago for `days`,
 * signed by issuer (NULL: self-signed). */
static X509 *new_cert(EVP_PKEY *key, const char *cn, long days, X509 *issuer, EVP_PKEY *ikey,
                      bool ca)
{
    static long serial = 1;
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), days * 86400);
    X509_set_pubkey(x, key);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
    if (ca) {
        X509V3_CTX v3;
        X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "CA:TRUE");
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    X509_sign(x, ikey ? ikey : key, EVP_sha256());
    return x;
}

static void write_pem(const char *file, X509 *a, X509 *b, EVP_PKEY *key)
{
    FILE *f = fopen(file, "w");
    if (a)
        PEM_write_X509(f, a);
    if (b)
        PEM_write_X509(f, b);
    if (key)
        PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    fclose(f);
}

struct pair {
    const char *cert, *key;
};

/* A self-signed pair for cn, valid for `days`. */
static struct pair make_pair(const char *name, const char *cn, long days)
{
    char c[64], k[64];
    snprintf(c, sizeof c, "%s.crt", name);
    snprintf(k, sizeof k, "%s.key", name);
    struct pair p = {path(c), path(k)};
    EVP_PKEY *key = new_key();
    X509 *x = new_cert(key, cn, days, NULL, NULL, false);
    write_pem(p.cert, x, NULL, NULL);
    write_pem(p.key, NULL, NULL, key);
    X509_free(x);
    EVP_PKEY_free(key);
    return p;
}

static struct tls_config *config(struct pair p, const char *protocols)
{
    char err[256] = "";
    struct tls_config *c = tls_config_new(p.cert, p.key, protocols, NULL, err, sizeof err);
    if (!c)
        printf("tls_config_new: %s\n", err);
    CHECK(c != NULL);
    return c;
}

/* ---- the server side ------------------------------------------------------------ */

struct server {
    int ndone, nplain;
    struct transport t;
    const struct tls_config *chosen;
    const char *alpn;
    int plain_fd;
};
static struct server S;

static void on_done(void *arg, struct transport *t, const struct tls_config *chosen,
                    const char *alpn, const struct sockaddr *peer, socklen_t peer_len)
{
    (void)arg, (void)peer, (void)peer_len;
    S.ndone++;
    S.t = *t;
    S.chosen = chosen;
    S.alpn = alpn;
}

static void on_plain(void *arg, int fd, const struct sockaddr *peer, socklen_t peer_len)
{
    (void)arg, (void)peer, (void)peer_len;
    S.nplain++;
    S.plain_fd = fd;
}

static const struct tls_acceptor_ops ops = {.done = on_done};
static const struct tls_acceptor_ops ops_plain = {.done = on_done, .plain_http = on_plain};

static struct tls_config *cfg_a, *cfg_b;
static int nselect;
static char selected_name[256];
static bool selected_null;

static struct tls_config *select_name(void *arg, const char *name)
{
    (void)arg;
    nselect++;
    selected_null = !name;
    snprintf(selected_name, sizeof selected_name, "%s", name ? name : "");
    if (name && strcmp(name, "a.test") == 0)
        return cfg_a;
    if (name && strcmp(name, "b.test") == 0)
        return cfg_b;
    return NULL;
}

static void server_reset(void)
{
    memset(&S, 0, sizeof S);
    S.plain_fd = -1;
    nselect = 0;
    selected_name[0] = 0;
    selected_null = false;
}

static void close_server(void)
{
    if (S.ndone && S.t.ops) {
        S.t.ops->close(&S.t);
        S.t.ops = NULL;
    }
}

/* A connected loopback pair: the client's end is returned, the server's is
 * handed to the acceptor.  Small buffers so that large writes block. */
static int connect_to(struct tls_acceptor *a)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    getsockname(listen_fd, (struct sockaddr *)&sa, &len);
    int cfd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 16384;
    setsockopt(cfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    if (connect(cfd, (struct sockaddr *)&sa, sizeof sa) < 0)
        return -1;
    int sfd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    setsockopt(sfd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    int one = 1;
    setsockopt(sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(cfd, F_SETFL, O_NONBLOCK);
    tls_accept(a, sfd, (struct sockaddr *)&sa, len);
    return cfd;
}

static void turn(int ms)
{
    loop_run_once(L, ms);
}

/* ---- the client side ------------------------------------------------------------- */

static SSL_CTX *client_ctx(int min, int max, const char *ciphers)
{
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_security_level(c, 0);
    SSL_CTX_set_min_proto_version(c, min);
    SSL_CTX_set_max_proto_version(c, max);
    if (ciphers)
        SSL_CTX_set_cipher_list(c, ciphers);
    return c;
}

static SSL *client_new(SSL_CTX *cctx, int fd, const char *sni, const char *alpn)
{
    SSL *s = SSL_new(cctx);
    SSL_set_fd(s, fd);
    SSL_set_connect_state(s);
    if (sni)
        SSL_set_tlsext_host_name(s, sni);
    if (alpn) {
        unsigned char wire[64];
        size_t n = strlen(alpn);
        wire[0] = (unsigned char)n;
        memcpy(wire + 1, alpn, n);
        SSL_set_alpn_protos(s, wire, (unsigned)n + 1);
    }
    return s;
}

static unsigned long client_error; /* the reason of the last failed handshake */

/* Steps the client's handshake and the server's loop: 1 when both sides
 * are done, -1 when the client's fails. */
static int handshake(SSL *cl, struct tls_acceptor *a)
{
    int done0 = S.ndone;
    client_error = 0;
    for (int i = 0; i < 3000; i++) {
        ERR_clear_error();
        int r = SSL_do_handshake(cl);
        if (r == 1) {
            for (int j = 0; j < 200 && S.ndone == done0 && tls_acceptor_pending(a); j++)
                turn(1);
            return S.ndone > done0 ? 1 : -1;
        }
        int e = SSL_get_error(cl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            client_error = ERR_peek_last_error();
            return -1;
        }
        turn(1);
    }
    return 0;
}

/* Reads into buf up to n bytes over the client, as far as they come. */
static size_t client_read(SSL *cl, void *buf, size_t n)
{
    size_t got = 0, r;
    while (got < n && SSL_read_ex(cl, (char *)buf + got, n - got, &r) == 1)
        got += r;
    return got;
}

static void wait_readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    poll(&p, 1, 1000);
}

static SSL_CTX *cctx; /* TLS 1.2 and 1.3, default ciphers */

/* A client connected with sni and alpn: 1 if the handshake succeeded. */
static int connect_tls(struct tls_acceptor *a, SSL_CTX *ctx, const char *sni, const char *alpn,
                       SSL **out, int *fd_out)
{
    int fd = connect_to(a);
    SSL *cl = client_new(ctx, fd, sni, alpn);
    int r = handshake(cl, a);
    if (out) {
        *out = cl;
        *fd_out = fd;
    } else {
        SSL_free(cl);
        close(fd);
    }
    return r;
}

/* A client that ends properly (else OpenSSL marks its session unfit to
 * resume). */
static void client_free(SSL *cl, int fd)
{
    SSL_shutdown(cl);
    SSL_free(cl);
    close(fd);
}

static char *cn_of_peer(SSL *cl, char *buf, size_t n)
{
    X509 *x = SSL_get1_peer_certificate(cl);
    buf[0] = 0;
    if (x) {
        X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, (int)n);
        X509_free(x);
    }
    return buf;
}

/* ---- tests ------------------------------------------------------------------------ */

static void test_handshake_and_echo(struct tls_acceptor *a)
{
    server_reset();
    SSL *cl;
    int fd;
    CHECK_INT(connect_tls(a, cctx, "a.test", "http/1.1", &cl, &fd), 1);
    CHECK_INT(tls_acceptor_pending(a), 0);
    CHECK_STR(S.alpn, "http/1.1");
    CHECK(S.chosen == cfg_a);
    CHECK(tls_transport_config(&S.t) == cfg_a);
    CHECK(tls_config_owner(S.chosen) == (void *)&cfg_a);

    /* Nothing sent yet: EAGAIN, like recv. */
    char buf[4096];
    errno = 0;
    CHECK_INT(S.t.ops->read(&S.t, buf, sizeof buf), -1);
    CHECK_INT(errno, EAGAIN);

    /* Three records arrive; one read takes them all, so a short read
     * means the socket is drained. */
    for (int i = 0; i < 3; i++) {
        char rec[100];
        memset(rec, 'a' + i, sizeof rec);
        SSL_write(cl, rec, sizeof rec);
    }
    wait_readable(S.t.fd);
    usleep(20000);
    CHECK_INT(S.t.ops->read(&S.t, buf, sizeof buf), 300);
    CHECK(buf[0] == 'a' && buf[100] == 'b' && buf[299] == 'c');
    /* A buffer smaller than a record: filled, the rest kept. */
    SSL_write(cl, "0123456789", 10);
    wait_readable(S.t.fd);
    CHECK_INT(S.t.ops->read(&S.t, buf, 4), 4);
    CHECK_INT(S.t.ops->read(&S.t, buf + 4, 100), 6);
    CHECK(memcmp(buf, "0123456789", 10) == 0);

    /* Small pieces leave as one record (the client reads one record per
     * SSL_read). */
    struct iovec iov[50];
    char pieces[50 * 20], want[500];
    memset(pieces, 'X', sizeof pieces); /* gaps between the pieces */
    for (int i = 0; i < 50; i++) {
        memset(pieces + i * 20, '0' + i % 10, 10);
        memset(want + i * 10, '0' + i % 10, 10);
        iov[i] = (struct iovec){pieces + i * 20, 10};
    }
    CHECK_INT(S.t.ops->writev(&S.t, iov, 50, false), 500);
    wait_readable(fd);
    size_t r = 0;
    CHECK_INT(SSL_read_ex(cl, buf, sizeof buf, &r), 1);
    CHECK_INT(r, 500);
    CHECK(memcmp(buf, want, 500) == 0);

    /* close_notify, then the client sees the end. */
    S.t.ops->shutdown(&S.t);
    wait_readable(fd);
    CHECK_INT(SSL_read_ex(cl, buf, sizeof buf, &r), 0);
    CHECK_INT(SSL_get_error(cl, 0), SSL_ERROR_ZERO_RETURN);
    /* After our close_notify, what the client still sends (its own
     * close_notify here) is only drained; its TCP close ends the input. */
    SSL_shutdown(cl);
    wait_readable(S.t.fd);
    CHECK(S.t.ops->read(&S.t, buf, sizeof buf) > 0);
    shutdown(fd, SHUT_WR);
    wait_readable(S.t.fd);
    CHECK_INT(S.t.ops->read(&S.t, buf, sizeof buf), 0);
    close_server();
    client_free(cl, fd);
}

/* 1 MiB through writev while the client reads slowly: partial writes, each
 * retry presented from another copy of the remaining bytes. */
static void test_large_write(struct tls_acceptor *a)
{
    server_reset();
    SSL *cl;
    int fd;
    CHECK_INT(connect_tls(a, cctx, "a.test", NULL, &cl, &fd), 1);
    CHECK(S.alpn == NULL);
    size_t size = 1 << 20;
    unsigned char *src = malloc(size), *got = malloc(size), *moved = malloc(size);
    for (size_t i = 0; i < size; i++)
        src[i] = (unsigned char)(i * 7 + i / 251);
    size_t sent = 0, recvd = 0;
    int blocked = 0, rounds = 0;
    const unsigned char *from = src;
    while ((sent < size || recvd < size) && rounds++ < 100000) {
        if (sent < size) {
            /* Three pieces of uneven sizes, as queued output is. */
            size_t left = size - sent, a1 = left < 777 ? left : 777;
            size_t a2 = left - a1 < 5000 ? left - a1 : 5000;
            struct iovec iov[3] = {{(void *)(from + sent), a1},
                                   {(void *)(from + sent + a1), a2},
                                   {(void *)(from + sent + a1 + a2), left - a1 - a2}};
            ssize_t n = S.t.ops->writev(&S.t, iov, 3, false);
            if (n > 0) {
                sent += (size_t)n;
            } else {
                CHECK(n == -1 && errno == EAGAIN);
                blocked++;
                /* The output moves before the retry (a buffer that grew). */
                memcpy(moved + sent, src + sent, size - sent);
                from = from == src ? moved : src;
            }
        }
        size_t r;
        if (SSL_read_ex(cl, got + recvd, 3000 < size - recvd ? 3000 : size - recvd, &r) == 1)
            recvd += r;
        else
            usleep(100);
    }
    CHECK_INT(sent, size);
    CHECK_INT(recvd, size);
    CHECK(memcmp(src, got, size) == 0);
    CHECK(blocked > 0);
    free(src);
    free(got);
    free(moved);
    close_server();
    client_free(cl, fd);
}

/* A 1 MiB file through the transport's sendfile. */
static void test_sendfile(struct tls_acceptor *a)
{
    server_reset();
    SSL *cl;
    int fd;
    CHECK_INT(connect_tls(a, cctx, "a.test", "http/1.1", &cl, &fd), 1);
    CHECK(tls_transport_ktls(&S.t) == false || tls_ktls_available());
    printf("kernel TLS: %s on this machine; this connection sends files %s\n",
           tls_ktls_available() ? "offered" : "not offered",
           tls_transport_ktls(&S.t) ? "by SSL_sendfile" : "through a bounded buffer");
    size_t size = 1 << 20;
    unsigned char *src = malloc(size), *got = malloc(size);
    for (size_t i = 0; i < size; i++)
        src[i] = (unsigned char)(i * 13 + i / 509);
    const char *file = path("body.bin");
    FILE *f = fopen(file, "w");
    fwrite(src, 1, size, f);
    fclose(f);
    int ffd = open(file, O_RDONLY);
    off_t off = 0;
    size_t recvd = 0;
    int blocked = 0, rounds = 0;
    while ((off < (off_t)size || recvd < size) && rounds++ < 100000) {
        if (off < (off_t)size) {
            off_t before = off;
            ssize_t n = S.t.ops->sendfile(&S.t, ffd, &off, size - (size_t)off);
            if (n > 0)
                CHECK_INT(off - before, n);
            else if (n == -1 && errno == EAGAIN)
                blocked++;
            else
                break;
        }
        size_t r;
        if (SSL_read_ex(cl, got + recvd, 10000 < size - recvd ? 10000 : size - recvd, &r) == 1)
            recvd += r;
        else
            usleep(100);
    }
    CHECK_INT(off, size);
    CHECK_INT(recvd, size);
    CHECK(memcmp(src, got, size) == 0);
    CHECK(blocked > 0);
    /* At the end of the file: 0, as sendfile says the file shrank. */
    CHECK_INT(S.t.ops->sendfile(&S.t, ffd, &off, 100), 0);
    close(ffd);
    free(src);
    free(got);
    close_server();
    client_free(cl, fd);
}

static void test_alpn(struct tls_acceptor *a)
{
    server_reset();
    CHECK_INT(connect_tls(a, cctx, "a.test", "spdy/1", NULL, NULL), -1);
    CHECK_INT(ERR_GET_REASON(client_error), SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL);
    CHECK_INT(S.ndone, 0);
    for (int i = 0; i < 50 && tls_acceptor_pending(a); i++)
        turn(1);
    CHECK_INT(tls_acceptor_pending(a), 0);
    /* h2 first, whatever the client's order; http/1.1 among others. */
    server_reset();
    int fd = connect_to(a);
    SSL *cl = client_new(cctx, fd, "a.test", NULL);
    SSL_set_alpn_protos(cl, (const unsigned char *)"\x08http/1.1\x02h2\x06spdy/1", 19);
    CHECK_INT(handshake(cl, a), 1);
    CHECK_STR(S.alpn, "h2");
    close_server();
    client_free(cl, fd);
    server_reset();
    fd = connect_to(a);
    cl = client_new(cctx, fd, "a.test", NULL);
    SSL_set_alpn_protos(cl, (const unsigned char *)"\x08http/1.1\x06spdy/1", 16);
    CHECK_INT(handshake(cl, a), 1);
    CHECK_STR(S.alpn, "http/1.1");
    close_server();
    client_free(cl, fd);
}

static void test_versions_and_ciphers(struct tls_acceptor *a)
{
    server_reset();
    SSL_CTX *old = client_ctx(TLS1_1_VERSION, TLS1_1_VERSION, "DEFAULT:@SECLEVEL=0");
    CHECK_INT(connect_tls(a, old, "a.test", NULL, NULL, NULL), -1);
    CHECK_INT(ERR_GET_REASON(client_error), SSL_R_TLSV1_ALERT_PROTOCOL_VERSION);
    SSL_CTX_free(old);

    SSL_CTX *cbc =
        client_ctx(TLS1_2_VERSION, TLS1_2_VERSION,
                   "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA256");
    CHECK_INT(connect_tls(a, cbc, "a.test", NULL, NULL, NULL), -1);
    CHECK_INT(ERR_GET_REASON(client_error), SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE);
    SSL_CTX_free(cbc);
    CHECK_INT(S.ndone, 0);

    /* TLS 1.2 with the default ciphers: ECDHE and AEAD. */
    SSL_CTX *tls12 = client_ctx(TLS1_2_VERSION, TLS1_2_VERSION, NULL);
    SSL *cl;
    int fd;
    CHECK_INT(connect_tls(a, tls12, "a.test", NULL, &cl, &fd), 1);
    const SSL_CIPHER *ci = SSL_get_current_cipher(cl);
    CHECK(SSL_CIPHER_is_aead(ci));
    CHECK_INT(SSL_CIPHER_get_kx_nid(ci), NID_kx_ecdhe);
    CHECK_INT(SSL_version(cl), TLS1_2_VERSION);
    close_server();
    client_free(cl, fd);
    SSL_CTX_free(tls12);
    for (int i = 0; i < 50 && tls_acceptor_pending(a); i++)
        turn(1);
}

static void test_sni(struct tls_acceptor *a)
{
    char cn[64];
    SSL *cl;
    int fd;
    server_reset();
    CHECK_INT(connect_tls(a, cctx, "b.test", NULL, &cl, &fd), 1);
    CHECK(S.chosen == cfg_b);
    CHECK_STR(selected_name, "b.test");
    CHECK_STR(cn_of_peer(cl, cn, sizeof cn), "b.test");
    close_server();
    client_free(cl, fd);

    server_reset();
    CHECK_INT(connect_tls(a, cctx, "B.Test", NULL, &cl, &fd), 1);
    CHECK(S.chosen == cfg_b); /* names are matched lower-cased */
    close_server();
    client_free(cl, fd);

    server_reset();
    CHECK_INT(connect_tls(a, cctx, NULL, NULL, &cl, &fd), 1);
    CHECK(S.chosen == cfg_a);
    CHECK_INT(nselect, 1);
    CHECK(selected_null);
    CHECK_STR(cn_of_peer(cl, cn, sizeof cn), "a.test");
    close_server();
    client_free(cl, fd);

    server_reset();
    CHECK_INT(connect_tls(a, cctx, "unknown.test", NULL, &cl, &fd), 1);
    CHECK(S.chosen == cfg_a);
    close_server();
    client_free(cl, fd);

    /* b.test speaks TLS 1.3 only: its protocols apply once SNI picks it. */
    SSL_CTX *tls12 = client_ctx(TLS1_2_VERSION, TLS1_2_VERSION, NULL);
    server_reset();
    CHECK_INT(connect_tls(a, tls12, "b.test", NULL, NULL, NULL), -1);
    CHECK_INT(ERR_GET_REASON(client_error), SSL_R_TLSV1_ALERT_PROTOCOL_VERSION);
    CHECK_INT(connect_tls(a, tls12, "a.test", NULL, NULL, NULL), 1);
    close_server();
    SSL_CTX_free(tls12);
    for (int i = 0; i < 50 && tls_acceptor_pending(a); i++)
        turn(1);
}

/* A handshake that never finishes is closed at its deadline: one that sent
 * nothing, one that sent half a record. */
static void test_timeout(void)
{
    struct tls_acceptor *a = tls_acceptor_new(L, cfg_a, NULL, NULL, &ops, NULL, 100);
    server_reset();
    int silent = connect_to(a);
    int half = connect_to(a);
    CHECK(write(half, "\x16\x03\x01\x02\x00\x01", 6) == 6);
    turn(5);
    CHECK_INT(tls_acceptor_pending(a), 2);
    uint64_t until = clock_ms() + 1000;
    while (tls_acceptor_pending(a) && clock_ms() < until)
        turn(20);
    CHECK_INT(tls_acceptor_pending(a), 0);
    CHECK_INT(S.ndone, 0);
    char c;
    wait_readable(silent);
    CHECK_INT(recv(silent, &c, 1, 0), 0);
    wait_readable(half);
    CHECK(recv(half, &c, 1, 0) <= 0);
    close(silent);
    close(half);
    tls_acceptor_free(a);
}

/* Clients that go away mid-handshake, and handshakes still pending when
 * the acceptor goes: nothing leaks (ASan's leak check in make test-asan). */
static void test_vanishing(void)
{
    struct tls_acceptor *a = tls_acceptor_new(L, cfg_a, select_name, NULL, &ops, NULL, 5000);
    server_reset();
    for (int i = 0; i < 3; i++) {
        int fd = connect_to(a);
        SSL *cl = client_new(cctx, fd, "a.test", NULL);
        /* The ClientHello goes; the server answers; the client vanishes. */
        SSL_do_handshake(cl);
        turn(5);
        turn(5);
        if (i == 1) {
            struct linger now = {1, 0};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &now, sizeof now); /* a reset */
        }
        SSL_free(cl);
        close(fd);
    }
    for (int i = 0; i < 100 && tls_acceptor_pending(a); i++)
        turn(2);
    CHECK_INT(tls_acceptor_pending(a), 0);
    CHECK_INT(S.ndone, 0);

    /* Pending at the end: one silent, one with an SSL mid-handshake. */
    int silent = connect_to(a);
    int fd = connect_to(a);
    SSL *cl = client_new(cctx, fd, "a.test", NULL);
    SSL_do_handshake(cl);
    turn(5);
    turn(5);
    CHECK_INT(tls_acceptor_pending(a), 2);
    tls_acceptor_free(a);
    SSL_free(cl);
    close(fd);
    close(silent);
}

static void test_plain_http(struct tls_acceptor *a)
{
    const char req[] = "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n";
    server_reset();
    int fd = connect_to(a);
    CHECK(write(fd, req, sizeof req - 1) == (ssize_t)sizeof req - 1);
    for (int i = 0; i < 50 && tls_acceptor_pending(a); i++)
        turn(2);
    CHECK_INT(tls_acceptor_pending(a), 0);
    char buf[1024];
    wait_readable(fd);
    usleep(10000);
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    CHECK(n > 0);
    buf[n > 0 ? n : 0] = 0;
    CHECK(strncmp(buf, "HTTP/1.1 400 ", 13) == 0);
    CHECK(strstr(buf, "HTTPS port") != NULL);
    CHECK(strstr(buf, "Content-Length: 75\r\n") != NULL);
    close(fd);

    /* With a plain_http callback the descriptor is the caller's. */
    struct tls_acceptor *b = tls_acceptor_new(L, cfg_a, NULL, NULL, &ops_plain, NULL, 5000);
    server_reset();
    fd = connect_to(b);
    CHECK(write(fd, "OPTIONS * HTTP/1.1\r\n", 20) == 20);
    for (int i = 0; i < 50 && !S.nplain; i++)
        turn(2);
    CHECK_INT(S.nplain, 1);
    CHECK_INT(S.ndone, 0);
    CHECK_INT(recv(S.plain_fd, buf, 8, MSG_PEEK), 8); /* nothing of it was consumed */
    CHECK(memcmp(buf, "OPTIONS ", 8) == 0);
    close(S.plain_fd);
    close(fd);
    /* Neither TLS nor HTTP: closed. */
    server_reset();
    fd = connect_to(b);
    CHECK(write(fd, "\x01\x02", 2) == 2);
    for (int i = 0; i < 50 && tls_acceptor_pending(b); i++)
        turn(2);
    CHECK_INT(tls_acceptor_pending(b), 0);
    CHECK_INT(S.nplain + S.ndone, 0);
    close(fd);
    tls_acceptor_free(b);
}

/* A client that resumes with its session of an earlier connection: 1 if
 * resumed.  new_secret: the ticket secret changes in between (a ticket
 * from another server). */
static int resumes(struct tls_acceptor *first, struct tls_acceptor *second, int version,
                   bool new_secret)
{
    SSL_CTX *c = client_ctx(version, version, NULL);
    SSL *cl;
    int fd;
    server_reset();
    CHECK_INT(connect_tls(first, c, "a.test", NULL, &cl, &fd), 1);
    /* TLS 1.3 tickets come after the handshake: read a byte past them. */
    struct iovec iov = {"x", 1};
    S.t.ops->writev(&S.t, &iov, 1, false);
    char b;
    wait_readable(fd);
    CHECK_INT(client_read(cl, &b, 1), 1);
    SSL_SESSION *sess = SSL_get1_session(cl);
    CHECK(SSL_SESSION_is_resumable(sess));
    close_server();
    client_free(cl, fd);
    if (new_secret)
        CHECK_INT(tls_tickets_init(), 0);

    server_reset();
    fd = connect_to(second);
    cl = client_new(c, fd, "a.test", NULL);
    SSL_set_session(cl, sess);
    CHECK_INT(handshake(cl, second), 1);
    int reused = SSL_session_reused(cl);
    close_server();
    client_free(cl, fd);
    SSL_SESSION_free(sess);
    SSL_CTX_free(c);
    return reused;
}

static struct tls_acceptor *acceptor_for(struct tls_config *c)
{
    return tls_acceptor_new(L, c, NULL, NULL, &ops, NULL, 5000);
}

/* Two workers: two configurations from the same files, made apart (their
 * own SSL_CTX and session cache), sharing the ticket secret. */
static void test_resumption(struct pair pa)
{
    for (int v = 0; v < 2; v++) {
        int version = v ? TLS1_3_VERSION : TLS1_2_VERSION;
        struct tls_config *w1 = config(pa, NULL), *w2 = config(pa, NULL);
        struct tls_acceptor *a1 = acceptor_for(w1), *a2 = acceptor_for(w2);
        CHECK_INT(resumes(a1, a2, version, false), 1);
        CHECK_INT(resumes(a2, a1, version, false), 1);
        /* A ticket sealed with another secret: a full handshake. */
        CHECK_INT(resumes(a1, a2, version, true), 0);
        CHECK_INT(resumes(a1, a1, version, true), 0);
        tls_acceptor_free(a1);
        tls_acceptor_free(a2);
        tls_config_free(w1);
        tls_config_free(w2);
    }
}

static void test_config_errors(struct pair pa, struct pair pb)
{
    char err[256];
    err[0] = 0;
    CHECK(tls_config_new(pa.cert, pb.key, NULL, NULL, err, sizeof err) == NULL);
    CHECK(strstr(err, pb.key) != NULL);
    CHECK(strstr(err, "does not match") != NULL);
    CHECK(strstr(err, "PRIVATE") == NULL);

    const char *missing = path("missing.crt");
    CHECK(tls_config_new(missing, pa.key, NULL, NULL, err, sizeof err) == NULL);
    CHECK(strstr(err, missing) != NULL && strstr(err, "No such file") != NULL);

    const char *junk = path("junk.pem");
    FILE *f = fopen(junk, "w");
    fputs("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n", f);
    fclose(f);
    CHECK(tls_config_new(junk, pa.key, NULL, NULL, err, sizeof err) == NULL);
    CHECK(strstr(err, junk) != NULL);
    CHECK(tls_config_new(pa.cert, junk, NULL, NULL, err, sizeof err) == NULL);
    CHECK(strstr(err, junk) != NULL && strstr(err, "private key") != NULL);
    /* The certificate given as the key: no key, no content echoed. */
    CHECK(tls_config_new(pa.cert, pa.cert, NULL, NULL, err, sizeof err) == NULL);
    CHECK(strstr(err, "BEGIN") == NULL);

    CHECK(tls_config_new(pa.cert, pa.key, "TLSv1.1 TLSv1.2", NULL, err, sizeof err) == NULL);
    CHECK(strstr(err, "TLSv1.1") != NULL && strstr(err, "insecure") != NULL);
    CHECK(tls_config_new(pa.cert, pa.key, "TLSv1.4", NULL, err, sizeof err) == NULL);
    CHECK(strstr(err, "unknown") != NULL);
    CHECK(tls_config_new(pa.cert, pa.key, " ", NULL, err, sizeof err) == NULL);
    CHECK(tls_config_new(pa.cert, pa.key, NULL, "NO-SUCH-CIPHER", err, sizeof err) == NULL);
    CHECK(strstr(err, "ciphers") != NULL);

    struct tls_config *c = tls_config_new(pa.cert, pa.key, "TLSv1.2", NULL, err, sizeof err);
    CHECK(c != NULL);
    tls_config_free(c);
    c = tls_config_new(pa.cert, pa.key, "TLSv1.3,", "ECDHE-ECDSA-AES256-GCM-SHA384", err,
                       sizeof err);
    CHECK(c != NULL);
    tls_config_free(c);
}

static char warnings[2048];

static void collect(void *ctx, const char *msg)
{
    (void)ctx;
    strncat(warnings, msg, sizeof warnings - strlen(warnings) - 2);
    strcat(warnings, "\n");
}

static void check_config(const char *cert, const char *key)
{
    char err[256];
    warnings[0] = 0;
    struct tls_config *c = tls_config_new(cert, key, NULL, NULL, err, sizeof err);
    CHECK(c != NULL);
    if (c)
        tls_config_check(c, collect, NULL);
    tls_config_free(c);
}

static void test_check(struct pair pa)
{
    check_config(pa.cert, pa.key); /* a year, self-signed */
    CHECK(strstr(warnings, "expire") == NULL);
    CHECK(strstr(warnings, "self-signed") != NULL);
    CHECK(strstr(warnings, "incomplete") == NULL);

    struct pair soon = make_pair("soon", "soon.test", 10);
    check_config(soon.cert, soon.key);
    CHECK(strstr(warnings, "expires in") != NULL);
    CHECK(strstr(warnings, soon.cert) != NULL);

    struct pair gone = make_pair("gone", "gone.test", -2);
    check_config(gone.cert, gone.key);
    CHECK(strstr(warnings, "expired") != NULL);

    /* A leaf signed by a CA: alone its chain is incomplete; with the CA
     * after it, not. */
    EVP_PKEY *cakey = new_key(), *leafkey = new_key();
    X509 *ca = new_cert(cakey, "verbd test CA", 3650, NULL, NULL, true);
    X509 *leaf = new_cert(leafkey, "leaf.test", 365, ca, cakey, false);
    const char *alone = path("alone.crt"), *chain = path("chain.crt"), *key = path("leaf.key");
    write_pem(alone, leaf, NULL, NULL);
    write_pem(chain, leaf, ca, NULL);
    write_pem(key, NULL, NULL, leafkey);
    check_config(alone, key);
    CHECK(strstr(warnings, "incomplete") != NULL);
    CHECK(strstr(warnings, "self-signed") == NULL);
    check_config(chain, key);
    CHECK(strstr(warnings, "incomplete") == NULL);
    X509_free(ca);
    X509_free(leaf);
    EVP_PKEY_free(cakey);
    EVP_PKEY_free(leafkey);
}

/* What an idle TLS connection holds on the server after one exchange
 * (its SSL with buffers released, our state).  Reported, not judged:
 * under ASan the allocator's numbers mean nothing. */
static void measure_idle(struct tls_acceptor *a)
{
    enum { N = 100 };
    static struct transport held[N];
    static int fds[N];
    connect_tls(a, cctx, "a.test", NULL, NULL, NULL); /* warm up */
    close_server();
    struct mallinfo2 before = mallinfo2();
    SSL_CTX *c = client_ctx(TLS1_3_VERSION, TLS1_3_VERSION, NULL);
    size_t client_bytes = 0;
    for (int i = 0; i < N; i++) {
        SSL *cl;
        server_reset();
        connect_tls(a, c, "a.test", NULL, &cl, &fds[i]);
        struct iovec iov = {"HTTP/1.1 200 OK\r\n\r\n", 19};
        S.t.ops->writev(&S.t, &iov, 1, false);
        char buf[64];
        wait_readable(fds[i]);
        client_read(cl, buf, 19);
        SSL_write(cl, "GET / HTTP/1.1\r\n\r\n", 18);
        wait_readable(S.t.fd);
        S.t.ops->read(&S.t, buf, sizeof buf);
        held[i] = S.t;
        size_t mid = mallinfo2().uordblks;
        SSL_free(cl); /* the client's share is not the server's */
        client_bytes += mid - mallinfo2().uordblks;
    }
    struct mallinfo2 after = mallinfo2();
    long per = ((long)after.uordblks - (long)before.uordblks) / N;
    printf("memory per idle TLS connection (server side, TLS 1.3): %ld bytes\n", per);
    for (int i = 0; i < N; i++) {
        held[i].ops->close(&held[i]);
        close(fds[i]);
    }
    S.t.ops = NULL;
    SSL_CTX_free(c);
    (void)client_bytes;
}

int main(void)
{
    log_open("off", LOG_ERROR, NULL, 0);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    clock_update();
    L = loop_new();
    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(listen_fd, (struct sockaddr *)&sa, sizeof sa);
    listen(listen_fd, 64);
    CHECK_INT(tls_tickets_init(), 0);

    struct pair pa = make_pair("a", "a.test", 365), pb = make_pair("b", "b.test", 365);
    cfg_a = config(pa, NULL);
    cfg_b = config(pb, "TLSv1.3");
    if (!cfg_a || !cfg_b)
        return unit_report();
    tls_config_set_owner(cfg_a, &cfg_a);
    cctx = client_ctx(TLS1_2_VERSION, TLS1_3_VERSION, NULL);
    struct tls_acceptor *a = tls_acceptor_new(L, cfg_a, select_name, NULL, &ops, NULL, 5000);

    test_handshake_and_echo(a);
    test_large_write(a);
    test_sendfile(a);
    test_alpn(a);
    test_versions_and_ciphers(a);
    test_sni(a);
    test_timeout();
    test_vanishing();
    test_plain_http(a);
    test_resumption(pa);
    test_config_errors(pa, pb);
    test_check(pa);
    measure_idle(a);

    tls_acceptor_free(a);
    tls_config_free(cfg_a);
    tls_config_free(cfg_b);
    SSL_CTX_free(cctx);
    loop_free(L);
    close(listen_fd);
    for (int i = 0; i < nmade; i++)
        unlink(made[i]);
    rmdir(dir);
    return unit_report();
}
