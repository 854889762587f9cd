/* A cache zone's memory store: entries (a key, a variant's request
 * fields, a response head and body, and a fixed record of what the
 * freshness rules need) in one shared mapping made before the workers
 * fork, so every worker finds what any of them stored.  Memory is cut in
 * blocks; an entry is a chain of them; the least recently used entries
 * no exchange is reading give way when room is needed.  An entry being
 * read holds a reference: removing it (eviction, invalidation, a newer
 * copy) only unlinks it, and its blocks are freed with the last
 * reference. */
#ifndef VERBD_CACHE_STORE_H
#define VERBD_CACHE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"

#define STORE_BLOCK 4096
/* A key, a variant's fields and a response head, each at most. */
#define STORE_KEY_MAX 2048
#define STORE_VARY_MAX 4096
#define STORE_HEAD_MAX (16 * 1024)

/* What the freshness rules and the reuse rules need of an entry, kept
 * beside its bytes (the proxy module's, opaque to the store). */
struct store_meta {
    int status;
    unsigned cc_flags; /* cache/cc.h flags of the response */
    int64_t date, expires, last_modified;
    uint64_t age;
    int64_t request_time, response_time;
    uint64_t lifetime; /* seconds, when response_time was */
    bool heuristic;
    bool may_serve_stale;
    bool has_s_maxage;
    bool authorized; /* stored from a request with Authorization (§3.5) */
    uint64_t stale_while_revalidate, stale_if_error; /* CC_UNSET if absent */
    bool has_length;                                 /* the body's length was stated */
};

struct zone;

/* The zone called `name`, of `bytes` memory, made now (in the process
 * that forks the workers) or the one made before under that name and
 * size (a reload keeps it); NULL + err. */
struct zone *zone_get(const char *name, uint64_t bytes, char *err, size_t errlen);
/* A disk zone (docs/cache.md): entries kept as files under `path`, at
 * most `bytes` of them, flushed to the disk before they count if
 * `sync`; the memory holds the index (each entry's key, variant and
 * head).  The directories and files are given to uid:gid (the workers'
 * user) unless it is -1. */
struct zone_disk {
    const char *path;
    uint64_t bytes;
    bool sync;
    uid_t uid;
    gid_t gid;
};
/* How a configuration is read: to start, to check it (verbd -t, beside a
 * running verbd maybe), or for a reload of a running one. */
enum zone_when { ZONE_START, ZONE_CHECK, ZONE_RELOAD };
/* As zone_get, for a disk zone when `disk` is not NULL: the directory is
 * made ready and its files loaded into the index, unless another verbd
 * has it (then an error, but only checked for ZONE_CHECK).  A reload
 * keeps a disk zone as it is, and adds none (each worker would have
 * one). */
struct zone *zone_get_disk(const char *name, uint64_t bytes, const struct zone_disk *disk,
                           enum zone_when when, char *err, size_t errlen);
/* The zone called `name` if one is declared (NULL otherwise). */
struct zone *zone_find(const char *name);
const char *zone_name(const struct zone *z);
uint64_t zone_bytes(const struct zone *z);
/* The largest entry (head and body) the zone can take. */
uint64_t zone_max_entry(const struct zone *z);
/* A disk zone's directory and size (NULL and 0 for a memory zone). */
const char *zone_path(const struct zone *z);
uint64_t zone_disk_bytes(const struct zone *z);

/* An entry found and held for reading (released by store_release). */
struct store_hit {
    uint32_t index;
    struct store_meta meta;
    char *key, *vary, *head; /* copies (in the caller's buffer), NUL-terminated */
    size_t key_len, vary_len, head_len;
    uint64_t body_len;
    bool body_in_file; /* a disk zone's body, read from its file (store_body_file) */
    /* The body's length once complete: body_len, but for a growing entry
     * the length its answer stated (STORE_UNSTATED if none). */
    uint64_t stated;
};
#define STORE_UNSTATED UINT64_MAX

/* Finds an entry of `key` whose variant `match(vary, len, arg)` accepts,
 * takes a reference, and copies its key, variant and head into `copy`
 * (the hit's pointers point there).  0 if found, -1 if no entry of that
 * key, -2 if entries of that key exist but no variant matched. */
int store_lookup(struct zone *z, const char *key, size_t key_len,
                 bool (*match)(const char *vary, size_t len, void *arg), void *arg,
                 struct buf *copy, struct store_hit *hit);
/* A walk over a held entry's body, block by block: zeroed to start. */
struct store_walk {
    uint64_t at;    /* body bytes given so far */
    uint32_t block; /* the block of the last one */
};
/* The next piece of a held entry's body (a memory zone's); false past
 * hit->body_len (a walk over a growing entry goes on from there once
 * store_growth says there is more).  The bytes stay valid while the
 * entry is held. */
bool store_body_next(struct zone *z, const struct store_hit *hit, struct store_walk *w,
                     const char **p, size_t *len);
/* A disk zone's files are loaded into its index by the workers, from
 * their loops, once they serve: each claims a directory of the 256 in
 * turn and reads it `budget` files per call (a file of this run is
 * skipped; one whose variant was stored anew meanwhile is removed).
 * STORE_LOAD_NONE: nothing left for this process to claim or read;
 * FINISHED: this call ended the zone's last directory. */
enum store_load { STORE_LOAD_NONE, STORE_LOAD_MORE, STORE_LOAD_FINISHED };
enum store_load store_load_step(struct zone *z, unsigned budget);
/* Reads the rest of the directory this process claimed (at its exit). */
void store_load_finish(struct zone *z);
bool store_loading(struct zone *z);
/* What the load kept and removed so far, and for how long it has run. */
void store_load_counts(struct zone *z, uint64_t *kept, uint64_t *removed, uint64_t *ms);

/* Whether the zone keeps its entries in files.  A hit's body_in_file
 * says where its body is: then store_body_next has none, and
 * store_body_file opens a held entry's file (the descriptor is
 * the caller's; the body is at *offset, hit->body_len bytes, and stays
 * readable through it whatever happens to the entry later).  -1 if it
 * cannot be opened. */
bool store_on_disk(const struct zone *z);
int store_body_file(struct zone *z, const struct store_hit *hit, uint64_t *offset);
/* A copy of a held entry's body (either store); false if unreadable. */
bool store_body_copy(struct zone *z, const struct store_hit *hit, struct buf *out);
/* Takes another reference on a held entry (one per piece lent out). */
void store_hold(struct zone *z, uint32_t index);
void store_release(struct zone *z, uint32_t index);

/* Stores an entry (a copy of everything), replacing any of the same key
 * and variant; evicts the least recently used entries not being read to
 * make room.  False if it does not fit. */
bool store_insert(struct zone *z, const char *key, size_t key_len, const char *vary,
                  size_t vary_len, const char *head, size_t head_len, const char *body,
                  uint64_t body_len, const struct store_meta *meta);
/* Collapsed forwarding, streamed: the exchange that fetches a key stores
 * its answer as it comes in, as a growing entry that lookups do not find
 * but the key's waiters can follow (store_lookup_growing).  Opens one
 * (held by the caller; `stated`: the body's length, or STORE_UNSTATED)
 * for the key, which the caller must have claimed (store_flight_claim);
 * false if it has not, or if there is no room.  In a disk zone the body
 * is written to the entry's file under DIR/tmp/ as it is appended (the
 * file is renamed into place by store_close, removed if abandoned), and
 * an entry may be opened without a claim: it is then written as it
 * comes but nobody follows it. */
bool store_open(struct zone *z, const char *key, size_t key_len, const char *vary, size_t vary_len,
                const char *head, size_t head_len, uint64_t stated, const struct store_meta *meta,
                uint32_t *index);
/* Appends body bytes to the caller's growing entry; false if they do not
 * fit (the zone's room, its disk= room, or its entry limit) or cannot be
 * written: it is abandoned then. */
bool store_append(struct zone *z, uint32_t index, const char *p, size_t n);
/* Completes it: stored as store_insert would (replacing the same key and
 * variant), unless its body is not the length stated (abandoned); the
 * caller's reference is given back.  False if not stored. */
bool store_close(struct zone *z, uint32_t index);
/* Abandons it: its readers see it failed; freed with the last
 * reference (the caller's is given back). */
void store_abandon(struct zone *z, uint32_t index);
/* The growing entry of `key` whose variant `match` accepts, held and
 * copied as store_lookup does (hit->body_len: the bytes appended so far);
 * false if there is none. */
bool store_lookup_growing(struct zone *z, const char *key, size_t key_len,
                          bool (*match)(const char *vary, size_t len, void *arg), void *arg,
                          struct buf *copy, struct store_hit *hit);
/* How far a held entry that was growing is: hit->body_len is updated to
 * the bytes there are now.  An entry whose writer died is abandoned
 * here. */
enum store_growth { STORE_GROWING, STORE_COMPLETE, STORE_FAILED };
enum store_growth store_growth(struct zone *z, struct store_hit *hit);

/* Removes every entry (every variant) of `key`; returns how many. */
unsigned store_remove(struct zone *z, const char *key, size_t key_len);

/* Counts one more request for `key` and returns the count so far (for
 * cache_min_uses; counts are approximate: a small table). */
unsigned store_count_use(struct zone *z, const char *key, size_t key_len);

/* Collapsed forwarding: true if the caller may fetch `key` now (it is
 * marked in flight until `until`, or until store_flight_done), false if
 * another fetch of it is in flight (any worker's; a fetch with a growing
 * entry is, until that entry is completed or abandoned, whatever
 * `until` says).  Times in ms. */
bool store_flight_claim(struct zone *z, const char *key, size_t key_len, uint64_t now,
                        uint64_t until);
void store_flight_done(struct zone *z, const char *key, size_t key_len);

/* The zone's counters. */
struct zone_stats {
    uint64_t hits, misses, stores, evictions, invalidations;
    uint64_t entries, bytes_used, bytes;
    uint64_t repairs;               /* times the lock was found held by a dead process */
    uint64_t disk_used, disk_bytes; /* a disk zone's files, and its disk= */
    uint64_t loading;               /* 1 while a disk zone's files are being loaded */
};
void store_stats(struct zone *z, struct zone_stats *out);
void store_count(struct zone *z, bool hit);
/* Every zone declared, for metrics and verbd -M (i from 0; NULL past
 * the end). */
struct zone *zone_at(size_t i);

#endif
