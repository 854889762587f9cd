/* A small table of recent verdicts keyed by a keyed SHA-256 of the
 * credentials; every slot is compared (in constant time), so a lookup
 * takes the same time whether it hits or not. */
#include "mod/auth/cache.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

void auth_cache_init(struct auth_cache *c)
{
    memset(c, 0, sizeof *c);
    if (RAND_bytes(c->secret, sizeof c->secret) != 1)
        abort();
}

void auth_cache_key(const struct auth_cache *c, const char *user, size_t un, const char *pw,
                    size_t pn, uint8_t key[32])
{
    EVP_MD_CTX *x = EVP_MD_CTX_new();
    if (!x)
        abort();
    EVP_DigestInit_ex(x, EVP_sha256(), NULL);
    EVP_DigestUpdate(x, c->secret, sizeof c->secret);
    EVP_DigestUpdate(x, user, un);
    EVP_DigestUpdate(x, ":", 1); /* a user-id has no colon: the split is unique */
    EVP_DigestUpdate(x, pw, pn);
    EVP_DigestFinal_ex(x, key, NULL);
    EVP_MD_CTX_free(x);
}

int auth_cache_get(const struct auth_cache *c, const uint8_t key[32], uint64_t now)
{
    int found = -1;
    for (size_t i = 0; i < AUTH_CACHE_SLOTS; i++) {
        const struct auth_cache_slot *s = &c->slot[i];
        bool match = CRYPTO_memcmp(s->key, key, 32) == 0;
        if (match && s->expires > now)
            found = s->ok;
    }
    return found;
}

void auth_cache_put(struct auth_cache *c, const uint8_t key[32], bool ok, uint64_t now)
{
    size_t at = AUTH_CACHE_SLOTS;
    for (size_t i = 0; i < AUTH_CACHE_SLOTS && at == AUTH_CACHE_SLOTS; i++)
        if (c->slot[i].expires <= now)
            at = i;
    if (at == AUTH_CACHE_SLOTS) {
        at = c->next;
        c->next = (c->next + 1) % AUTH_CACHE_SLOTS;
    }
    memcpy(c->slot[at].key, key, 32);
    c->slot[at].expires = now + AUTH_CACHE_TTL_MS;
    c->slot[at].ok = ok;
}

void auth_cache_clear(struct auth_cache *c)
{
    OPENSSL_cleanse(c, sizeof *c);
}
