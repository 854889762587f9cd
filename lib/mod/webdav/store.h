/* The store of WebDAV dead properties and locks: one table of
 * asynchronous operations, one implementation per engine (store_sqlite.c).
 *
 * Every operation takes the request it works for and a completion
 * callback, and never calls it from inside the call: the callback runs
 * later, from the worker's loop, exactly once (unless the exchange ends
 * first; then it never runs).  Arguments need only be valid during the
 * call: a store copies what it keeps.  Each operation is one round trip
 * to the engine and atomic in it.  Expired locks are ignored by the
 * store's own clock in every operation, never by the node's. */
#ifndef VERBD_MOD_WEBDAV_STORE_H
#define VERBD_MOD_WEBDAV_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dav_req;
struct dav_inst;
struct loop;

struct dav_lock {
    char token[64]; /* "opaquelocktoken:<uuid>" */
    char *root;     /* rel of the lock root */
    int depth;      /* 0 or DAV_DEPTH_INFINITY */
    bool exclusive;
    char *owner;  /* serialised DAV:owner content, or NULL */
    long timeout; /* seconds, as granted */
    long left;    /* seconds left when the store answered, by its clock */
};

struct dav_locks {
    struct dav_lock *v;
    size_t n;
};

/* One dead property: the element as the client sent it. */
struct dav_prop {
    char *path, *ns, *name, *xml;
};

struct dav_props {
    struct dav_prop *v; /* sorted by path */
    size_t n;
};

/* What a load reads, in one round trip. */
struct dav_scope {
    /* The locks that matter to these resources: rooted at one of them, at
     * an ancestor, or below one. */
    const char *const *paths;
    size_t npaths;
    /* Dead properties of props_rel and, with depth 1, its members or,
     * with DAV_DEPTH_INFINITY, everything below it; NULL: none. */
    const char *props_rel;
    int props_depth;
};

/* A PROPPATCH instruction. */
struct dav_patch {
    bool set;
    const char *ns, *name;
    const char *xml; /* the element, for a set */
};

/* What an operation comes back with. */
enum {
    DAV_STORE_OK = 0,
    DAV_STORE_CONFLICT = 1, /* lock: a conflicting lock exists */
    DAV_STORE_GONE = 2,     /* refresh, unlock: no such unexpired lock */
    DAV_STORE_DOWN = -1,    /* the store could not answer (logged): 503 */
};

/* drop: which of a subtree's records go. */
#define DAV_STORE_PROPS 1u
#define DAV_STORE_LOCKS 2u

typedef void dav_store_done(struct dav_req *r, int result);

struct dav_store;

struct dav_store_ops {
    /* r->locks and r->props get what the scope asks for. */
    void (*load)(struct dav_store *s, struct dav_req *r, const struct dav_scope *q,
                 dav_store_done *done);
    /* The sets and removes on rel, in order, all or none. */
    void (*patch)(struct dav_store *s, struct dav_req *r, const char *rel,
                  const struct dav_patch *ops, size_t n, dav_store_done *done);
    /* Takes lock l unless an unexpired lock conflicts with it: one on
     * l->root or on an ancestor with depth infinity, or, for a depth
     * infinity l, one below l->root; exclusive conflicts with anything,
     * shared with exclusive.  Check and insert are one transaction,
     * serialised against every other locker of every node. */
    void (*lock)(struct dav_store *s, struct dav_req *r, const struct dav_lock *l,
                 dav_store_done *done);
    /* Restarts the lock's timeout at `timeout` seconds from now. */
    void (*refresh)(struct dav_store *s, struct dav_req *r, const char *token, long timeout,
                    dav_store_done *done);
    void (*unlock)(struct dav_store *s, struct dav_req *r, const char *token, dav_store_done *done);
    /* Drops `what` (DAV_STORE_PROPS, DAV_STORE_LOCKS) of rel and below. */
    void (*drop)(struct dav_store *s, struct dav_req *r, const char *rel, unsigned what,
                 dav_store_done *done);
    /* After a COPY or MOVE of src to dst: the properties of dst and below
     * are dropped, src's (and with `recursive`, those below it) copied to
     * the same places under dst; with `move`, src's properties and locks
     * and those below it are dropped. */
    void (*transfer)(struct dav_store *s, struct dav_req *r, const char *src, const char *dst,
                     bool recursive, bool move, dav_store_done *done);
    /* Optional: from now on, every `ms`, deletes the expired locks from
     * the worker's loop, without blocking it (they are ignored already:
     * this only keeps the table small).  Called once per worker. */
    void (*sweep_every)(struct dav_store *s, struct loop *loop, uint64_t ms);
    /* Stops it (the worker's loop is still there). */
    void (*sweep_stop)(struct dav_store *s);
    void (*destroy)(struct dav_store *s);
};

struct dav_store {
    const struct dav_store_ops *ops;
};

/* Creates the store a `dav_store` value names ("sqlite:PATH"; a bare
 * PATH for `dav_db`), checking what it can without creating anything
 * (verbd -t runs it).  `directive` names the setting in errors.  The
 * store, or NULL + err. */
struct dav_store *dav_store_new(const struct dav_inst *in, const char *directive, const char *value,
                                char *err, size_t errlen);
void dav_store_free(struct dav_store *s);

/* The SQLite store of file `path` (NULL: none was set, every operation
 * fails), and its configuration check. */
struct dav_store *dav_store_sqlite(const char *path);
int dav_store_sqlite_check(const struct dav_inst *in, const char *directive, const char *path,
                           char *err, size_t errlen);

/* The PostgreSQL store of a connection URI (postgresql://...), whether a
 * value names one, and its configuration check (no connection). */
struct dav_store *dav_store_pg(const char *uri);
bool dav_store_pg_names(const char *value);
int dav_store_pg_check(const char *directive, const char *uri, char *err, size_t errlen);

/* For `verbd dav-store init|migrate`, blocking: creates (with `create`)
 * or brings up to date the tables of the store a dav_store value names
 * ("sqlite:PATH", a bare PATH, or postgresql://...).  0 with what was
 * done in msg, or -1 with why not (nothing created without `create`). */
int dav_store_setup(const char *value, bool create, char *msg, size_t len);
int dav_store_sqlite_setup(const char *path, bool create, char *msg, size_t len);
int dav_store_pg_setup(const char *uri, bool create, char *msg, size_t len);

/* For implementations: calls done(r, result) from the loop, after the
 * current call returns. */
void dav_store_complete(struct dav_req *r, dav_store_done *done, int result);

/* Frees what a load put in r. */
void dav_locks_free(struct dav_locks *l);
void dav_props_free(struct dav_props *p);
/* True if a lock rooted at root matters to the scope (see dav_scope). */
bool dav_scope_wants_lock(const struct dav_scope *q, const char *root);
/* True if path is rel or below it, no deeper than depth (0, 1 or
 * DAV_DEPTH_INFINITY): a load's cut of the properties. */
bool dav_within_depth(const char *path, const char *rel, int depth);

#endif
