/* The store interface: choosing an implementation from the directive,
 * the calls the method handlers make, and what implementations share. */
#include "mod/webdav/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mod/webdav/internal.h"

struct dav_store *dav_store_new(const struct dav_inst *in, const char *directive, const char *value,
                                char *err, size_t errlen)
{
    const char *path = value;
    if (strcmp(directive, "dav_db") != 0) {
        if (dav_store_pg_names(value))
            return dav_store_pg_check(directive, value, err, errlen) == 0 ? dav_store_pg(value)
                                                                          : NULL;
        if (strncmp(value, "sqlite:", 7) != 0) {
            snprintf(err, errlen,
                     "%s: \"%s\" names no store verbd has; write sqlite:PATH or "
                     "postgresql://USER@HOST/DB",
                     directive, value);
            return NULL;
        }
        path = value + 7;
    }
    if (dav_store_sqlite_check(in, directive, path, err, errlen) != 0)
        return NULL;
    return dav_store_sqlite(path);
}

int dav_store_setup(const char *value, bool create, char *msg, size_t len)
{
    if (dav_store_pg_names(value))
        return dav_store_pg_setup(value, create, msg, len);
    return dav_store_sqlite_setup(strncmp(value, "sqlite:", 7) == 0 ? value + 7 : value, create,
                                  msg, len);
}

void dav_store_free(struct dav_store *s)
{
    if (s)
        s->ops->destroy(s);
}

struct completion {
    struct dav_req *r;
    dav_store_done *done;
    int result;
};

static void completed(struct verbd_exchange *x, void *arg)
{
    (void)x;
    struct completion *c = arg;
    c->done(c->r, c->result);
}

void dav_store_complete(struct dav_req *r, dav_store_done *done, int result)
{
    struct completion *c = verbd_alloc(r->x, sizeof *c);
    *c = (struct completion){r, done, result};
    verbd_defer(r->x, completed, c);
}

void dav_locks_free(struct dav_locks *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].root);
        free(l->v[i].owner);
    }
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

void dav_props_free(struct dav_props *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->v[i].path);
        free(p->v[i].ns);
        free(p->v[i].name);
        free(p->v[i].xml);
    }
    free(p->v);
    p->v = NULL;
    p->n = 0;
}

bool dav_scope_wants_lock(const struct dav_scope *q, const char *root)
{
    for (size_t i = 0; i < q->npaths; i++)
        if (dav_rel_within(q->paths[i], root, true) || dav_rel_within(root, q->paths[i], false))
            return true;
    return false;
}

bool dav_within_depth(const char *path, const char *rel, int depth)
{
    if (strcmp(path, rel) == 0)
        return true;
    if (depth == 0 || !dav_rel_within(path, rel, false))
        return false;
    const char *rest = path + strlen(rel) + (*rel ? 1 : 0);
    return depth == DAV_DEPTH_INFINITY || !strchr(rest, '/');
}

/* ---- the calls the handlers make ------------------------------------------ */

#define STORE(r) ((r)->in->store)

void dav_load(struct dav_req *r, const struct dav_scope *q, dav_store_done *done)
{
    dav_locks_free(&r->locks);
    dav_props_free(&r->props);
    STORE(r)->ops->load(STORE(r), r, q, done);
}

void dav_patch(struct dav_req *r, const struct dav_patch *ops, size_t n, dav_store_done *done)
{
    STORE(r)->ops->patch(STORE(r), r, r->rel, ops, n, done);
}

void dav_take_lock(struct dav_req *r, const struct dav_lock *l, dav_store_done *done)
{
    STORE(r)->ops->lock(STORE(r), r, l, done);
}

void dav_refresh_lock(struct dav_req *r, const char *token, long timeout, dav_store_done *done)
{
    STORE(r)->ops->refresh(STORE(r), r, token, timeout, done);
}

void dav_drop_lock(struct dav_req *r, const char *token, dav_store_done *done)
{
    STORE(r)->ops->unlock(STORE(r), r, token, done);
}

void dav_drop(struct dav_req *r, const char *rel, unsigned what, dav_store_done *done)
{
    STORE(r)->ops->drop(STORE(r), r, rel, what, done);
}

void dav_transfer(struct dav_req *r, const char *src, const char *dst, bool recursive, bool move,
                  dav_store_done *done)
{
    STORE(r)->ops->transfer(STORE(r), r, src, dst, recursive, move, done);
}
