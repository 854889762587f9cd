/* Session tickets that every worker can decrypt.  Keys are derived from
 * one secret drawn in the supervisor before the workers fork and from the
 * current time window, so workers agree on them without talking, and
 * they rotate on their own: a ticket is sealed with the current window's
 * key, and one sealed in the window before still opens (and is renewed). */
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "engine/tls_ssl.h"

#define SECRET_LEN 32

struct ticket_key {
    uint64_t window;
    unsigned char name[16]; /* tells the window a ticket was sealed in */
    unsigned char aes[32];
    unsigned char mac[32];
};

static unsigned char secret[SECRET_LEN];
static bool have_secret;
/* The keys of the last two windows derived (per process). */
static struct ticket_key cache[2];
static uint64_t generation; /* bumped by tls_tickets_init: the cache is stale */
static uint64_t cache_generation;

int tls_tickets_init(void)
{
    if (RAND_bytes(secret, sizeof secret) != 1)
        return -1;
    have_secret = true;
    generation++;
    return 0;
}

/* HMAC-SHA256(secret, label || window). */
static bool derive(const char *label, uint64_t window, unsigned char out[32])
{
    unsigned char msg[16 + 8];
    size_t n = strlen(label);
    memcpy(msg, label, n);
    for (int i = 0; i < 8; i++)
        msg[n + (size_t)i] = (unsigned char)(window >> (56 - 8 * i));
    size_t outlen = 0;
    return EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, secret, sizeof secret, msg, n + 8, out, 32,
                     &outlen) != NULL &&
           outlen == 32;
}

static const struct ticket_key *key_for(uint64_t window)
{
    if (cache_generation != generation) {
        memset(cache, 0, sizeof cache);
        cache_generation = generation;
    }
    struct ticket_key *k = &cache[window & 1];
    if (k->window == window && window)
        return k;
    unsigned char name[32];
    if (!derive("verbd name", window, name) || !derive("verbd aes", window, k->aes) ||
        !derive("verbd mac", window, k->mac)) {
        k->window = 0;
        return NULL;
    }
    memcpy(k->name, name, sizeof k->name);
    k->window = window;
    return k;
}

static uint64_t current_window(void)
{
    return (uint64_t)time(NULL) / TLS_TICKET_WINDOW_S + 1; /* never 0 */
}

static bool set_keys(const struct ticket_key *k, unsigned char iv[16], EVP_CIPHER_CTX *cctx,
                     EVP_MAC_CTX *hctx, int enc)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    return EVP_CipherInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv, enc) == 1 &&
           EVP_MAC_init(hctx, k->mac, sizeof k->mac, params) == 1;
}

/* OpenSSL's ticket callback.  Sealing: 1.  Opening: 0 for an unknown key
 * (a full handshake), 1 to resume, 2 to resume and issue a fresh ticket. */
static int ticket_cb(SSL *ssl, unsigned char key_name[16], unsigned char iv[16],
                     EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    (void)ssl;
    if (!have_secret)
        return 0; /* no ticket: the session cache alone */
    uint64_t now = current_window();
    if (enc) {
        const struct ticket_key *k = key_for(now);
        if (!k || RAND_bytes(iv, 16) != 1)
            return -1;
        memcpy(key_name, k->name, 16);
        return set_keys(k, iv, cctx, hctx, 1) ? 1 : -1;
    }
    for (uint64_t w = now; w + 1 >= now && w; w--) {
        const struct ticket_key *k = key_for(w);
        if (k && memcmp(key_name, k->name, 16) == 0) {
            if (!set_keys(k, iv, cctx, hctx, 0))
                return -1;
            return w == now ? 1 : 2;
        }
    }
    return 0;
}

void tls_tickets_attach(SSL_CTX *ctx)
{
    if (!have_secret)
        tls_tickets_init(); /* this process's own: nobody called it before forking */
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
}
