/* The verified cache: each distinct credential is hashed at most once a
 * minute per worker.  A login hashes on the event loop (the loop has no
 * threads to hand it to); the cache keeps a client that sends the same
 * credentials with every request from costing a hash each time, and the
 * cost bound (htpasswd.h) keeps each hash short. */
#ifndef VERBD_MOD_AUTH_CACHE_H
#define VERBD_MOD_AUTH_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_CACHE_SLOTS 64
#define AUTH_CACHE_TTL_MS 60000

struct auth_cache_slot {
    uint8_t key[32]; /* SHA-256 of the cache's secret, user and password */
    uint64_t expires;
    bool ok; /* the verdict: accepted or not */
};

/* One per user file, per worker: a reload reads the file again into a new
 * instance with an empty cache, so no verdict outlives the file it was
 * made against. */
struct auth_cache {
    uint8_t secret[32]; /* random: keys tell nothing about passwords */
    struct auth_cache_slot slot[AUTH_CACHE_SLOTS];
    size_t next; /* the slot to reuse when none has expired */
};

void auth_cache_init(struct auth_cache *c);
/* The key of user[0, un) with password pw[0, pn). */
void auth_cache_key(const struct auth_cache *c, const char *user, size_t un, const char *pw,
                    size_t pn, uint8_t key[32]);
/* 1 (accepted), 0 (refused) if a fresh verdict is kept for key, else -1. */
int auth_cache_get(const struct auth_cache *c, const uint8_t key[32], uint64_t now);
void auth_cache_put(struct auth_cache *c, const uint8_t key[32], bool ok, uint64_t now);
void auth_cache_clear(struct auth_cache *c);

#endif
