/* A TLS configuration: one origin server's certificate chain and key in an
 * SSL_CTX with the protocols, ciphers and options verbd serves with. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "engine/tls_ssl.h"

/* TLS 1.2: ECDHE key exchange with AEAD ciphers only (TLS 1.3's suites
 * are all of that kind and keep OpenSSL's default order). */
#define DEFAULT_CIPHERS                                                                            \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

#define EXPIRY_WARN_DAYS 30

const char *const tls_alpn_protocols[] = {"h2", "http/1.1", NULL};

static int config_index = -1;

struct tls_config *tls_config_of(SSL_CTX *ctx)
{
    return config_index < 0 ? NULL : SSL_CTX_get_ex_data(ctx, config_index);
}

static void fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    ERR_clear_error();
}

/* OpenSSL's reason for the last failure: a phrase, never data. */
static const char *ssl_reason(void)
{
    const char *r = ERR_reason_error_string(ERR_peek_last_error());
    return r ? r : "unknown error";
}

static bool readable(const char *file, char *err, size_t errlen)
{
    FILE *f = fopen(file, "r");
    if (!f) {
        fail(err, errlen, "%s: %s", file, strerror(errno));
        return false;
    }
    fclose(f);
    return true;
}

/* Encrypted keys are not supported: without this OpenSSL would prompt on
 * the terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

/* "TLSv1.2 TLSv1.3" (spaces or commas) into a version range. */
static bool parse_protocols(const char *list, int *min, int *max, char *err, size_t errlen)
{
    *min = *max = 0;
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, " \t,");
        if (n == 0) {
            p++;
            continue;
        }
        int v = 0;
        if (n == 7 && memcmp(p, "TLSv1.2", 7) == 0)
            v = TLS1_2_VERSION;
        else if (n == 7 && memcmp(p, "TLSv1.3", 7) == 0)
            v = TLS1_3_VERSION;
        else if ((n == 5 && memcmp(p, "TLSv1", 5) == 0) ||
                 (n == 7 && memcmp(p, "TLSv1.1", 7) == 0) ||
                 (n == 7 && memcmp(p, "TLSv1.0", 7) == 0) ||
                 (n == 5 && memcmp(p, "SSLv3", 5) == 0) || (n == 5 && memcmp(p, "SSLv2", 5) == 0)) {
            fail(err, errlen, "tls protocols: %.*s is insecure and not supported", (int)n, p);
            return false;
        } else {
            fail(err, errlen, "tls protocols: unknown protocol \"%.*s\" (TLSv1.2, TLSv1.3)", (int)n,
                 p);
            return false;
        }
        if (!*min || v < *min)
            *min = v;
        if (v > *max)
            *max = v;
        p += n;
    }
    if (!*min) {
        fail(err, errlen, "tls protocols: the list is empty");
        return false;
    }
    return true;
}

/* ALPN: the first of our protocols the client offers. */
static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)arg;
    /* The configuration SNI chose (the client hello callback runs first). */
    const struct tls_config *c = tls_config_of(SSL_get_SSL_CTX(ssl));
    for (size_t i = 0; tls_alpn_protocols[i]; i++) {
        if (c && c->no_http2 && strcmp(tls_alpn_protocols[i], "h2") == 0)
            continue;
        size_t want = strlen(tls_alpn_protocols[i]);
        for (unsigned int at = 0; at < inlen;) {
            unsigned int len = in[at];
            if (len == 0 || at + 1 + len > inlen)
                return SSL_TLSEXT_ERR_ALERT_FATAL; /* malformed list */
            if (len == want && memcmp(in + at + 1, tls_alpn_protocols[i], want) == 0) {
                *out = in + at + 1;
                *outlen = (unsigned char)len;
                return SSL_TLSEXT_ERR_OK;
            }
            at += 1 + len;
        }
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL; /* no_application_protocol */
}

/* Resumption only where the session began: a server's own certificate
 * identifies it. */
static bool set_session_context(SSL_CTX *ctx)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!X509_digest(SSL_CTX_get0_certificate(ctx), EVP_sha256(), md, &len))
        return false;
    if (len > SSL_MAX_SID_CTX_LENGTH)
        len = SSL_MAX_SID_CTX_LENGTH;
    return SSL_CTX_set_session_id_context(ctx, md, len) == 1;
}

static bool load_pair(SSL_CTX *ctx, const char *cert_file, const char *key_file, char *err,
                      size_t errlen)
{
    if (!readable(cert_file, err, errlen) || !readable(key_file, err, errlen))
        return false;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        fail(err, errlen, "%s: not a PEM certificate chain (%s)", cert_file, ssl_reason());
        return false;
    }
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        int reason = ERR_GET_REASON(ERR_peek_last_error());
        if (reason == X509_R_KEY_VALUES_MISMATCH || reason == X509_R_KEY_TYPE_MISMATCH)
            fail(err, errlen, "%s: the private key does not match the certificate in %s", key_file,
                 cert_file);
        else
            fail(err, errlen, "%s: not a usable PEM private key (%s)", key_file, ssl_reason());
        return false;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        fail(err, errlen, "%s: the private key does not match the certificate in %s", key_file,
             cert_file);
        return false;
    }
    return true;
}

struct tls_config *tls_config_new(const char *cert_file, const char *key_file,
                                  const char *protocols, const char *ciphers, char *err,
                                  size_t errlen)
{
    if (config_index < 0) {
        config_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
        if (config_index < 0) {
            fail(err, errlen, "tls: out of memory");
            return NULL;
        }
    }
    struct tls_config *c = calloc(1, sizeof *c);
    if (!c) {
        fail(err, errlen, "tls: out of memory");
        return NULL;
    }
    if (!parse_protocols(protocols ? protocols : "TLSv1.2 TLSv1.3", &c->min_version,
                         &c->max_version, err, errlen))
        goto fail;
    c->cert_file = strdup(cert_file);
    c->ciphers = strdup(ciphers ? ciphers : DEFAULT_CIPHERS);
    c->ctx = SSL_CTX_new(TLS_server_method());
    if (!c->cert_file || !c->ciphers || !c->ctx) {
        fail(err, errlen, "tls: out of memory");
        goto fail;
    }
    SSL_CTX *ctx = c->ctx;
    SSL_CTX_set_ex_data(ctx, config_index, c);
    if (!SSL_CTX_set_min_proto_version(ctx, c->min_version) ||
        !SSL_CTX_set_max_proto_version(ctx, c->max_version)) {
        fail(err, errlen, "tls protocols: not supported by this OpenSSL");
        goto fail;
    }
    /* An empty TLS 1.2 list is refused here ("no cipher match"). */
    if (SSL_CTX_set_cipher_list(ctx, c->ciphers) != 1) {
        fail(err, errlen, "tls ciphers \"%s\": %s", c->ciphers, ssl_reason());
        goto fail;
    }
    SSL_CTX_clear_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_ENABLE_KTLS);
    /* Idle connections give their buffers back; the transport writes a
     * record at a time and may present a retry from another address. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* A record's header and body (and any records after it) in one read
     * from the socket, not one read for each. */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(ctx, 20000);
    SSL_CTX_set_timeout(ctx, TLS_TICKET_WINDOW_S);
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
    SSL_CTX_set_client_hello_cb(ctx, tls_client_hello, NULL);
    tls_tickets_attach(ctx);
    if (!load_pair(ctx, cert_file, key_file, err, errlen))
        goto fail;
    if (!set_session_context(ctx)) {
        fail(err, errlen, "%s: cannot digest the certificate", cert_file);
        goto fail;
    }
    ERR_clear_error();
    return c;
fail:
    tls_config_free(c);
    return NULL;
}

void tls_config_free(struct tls_config *c)
{
    if (!c)
        return;
    if (c->ctx) {
        /* Connections still hold the SSL_CTX; they no longer find c. */
        SSL_CTX_set_ex_data(c->ctx, config_index, NULL);
        SSL_CTX_free(c->ctx);
    }
    free(c->cert_file);
    free(c->ciphers);
    free(c);
}

void tls_config_set_owner(struct tls_config *c, void *owner)
{
    c->owner = owner;
}

void tls_config_set_http2(struct tls_config *c, bool on)
{
    c->no_http2 = !on;
}

void *tls_config_owner(const struct tls_config *c)
{
    return c->owner;
}

/* ---- verbd -t ------------------------------------------------------------ */

static void say(void (*warn)(void *, const char *), void *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(void (*warn)(void *, const char *), void *ctx, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    warn(ctx, msg);
}

static void check_dates(const struct tls_config *c, X509 *leaf, void (*warn)(void *, const char *),
                        void *ctx)
{
    int days = 0, secs = 0;
    if (X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0)
        say(warn, ctx, "%s: the certificate is not valid yet", c->cert_file);
    if (!ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(leaf)))
        return;
    if (days < 0 || (days == 0 && secs <= 0))
        say(warn, ctx, "%s: the certificate expired %d days ago", c->cert_file, -days);
    else if (days < EXPIRY_WARN_DAYS)
        say(warn, ctx, "%s: the certificate expires in %d days", c->cert_file, days);
}

/* Verifies the leaf against the intermediates in the file and the
 * system's trusted certificates; only a missing issuer is reported (the
 * dates are checked apart, the trust a client has is its own). */
static void check_chain(const struct tls_config *c, X509 *leaf, void (*warn)(void *, const char *),
                        void *ctx)
{
    if (X509_self_signed(leaf, 0) == 1) {
        say(warn, ctx, "%s: the certificate is self-signed: clients trust it only if told to",
            c->cert_file);
        return;
    }
    STACK_OF(X509) *chain = NULL;
    SSL_CTX_get0_chain_certs(c->ctx, &chain);
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *vctx = X509_STORE_CTX_new();
    if (!store || !vctx || X509_STORE_set_default_paths(store) != 1 ||
        X509_STORE_CTX_init(vctx, store, leaf, chain) != 1)
        goto done;
    X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(vctx), X509_V_FLAG_NO_CHECK_TIME);
    if (X509_verify_cert(vctx) != 1) {
        int e = X509_STORE_CTX_get_error(vctx);
        if (e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT ||
            e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
            e == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE) {
            char name[256] = "";
            X509 *at = X509_STORE_CTX_get_current_cert(vctx);
            if (at)
                X509_NAME_oneline(X509_get_issuer_name(at), name, sizeof name);
            say(warn, ctx,
                "%s: the certificate chain is incomplete: the issuer %s is neither in the file "
                "nor trusted by this system (append the intermediate certificates after the "
                "leaf)",
                c->cert_file, name);
        } else {
            say(warn, ctx, "%s: the certificate chain does not verify: %s", c->cert_file,
                X509_verify_cert_error_string(e));
        }
    }
done:
    X509_STORE_CTX_free(vctx);
    X509_STORE_free(store);
    ERR_clear_error();
}

void tls_config_check(const struct tls_config *c, void (*warn)(void *ctx, const char *msg),
                      void *ctx)
{
    X509 *leaf = SSL_CTX_get0_certificate(c->ctx);
    if (!leaf)
        return;
    check_dates(c, leaf, warn, ctx);
    check_chain(c, leaf, warn, ctx);
}
