/* The webdav module: lifecycle and directives, the per-resource Allow,
 * OPTIONS headers, request bodies streamed (PUT to a temporary file, XML
 * into a bounded buffer), and the dispatch to the method handlers. */
#include "mod/webdav/webdav.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <libxml/parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http/method.h"
#include "mod/static/static.h"
#include "mod/webdav/internal.h"

#define M(x) METHOD_BIT(METHOD_##x)

/* ---- helpers ------------------------------------------------------------------ */

int dav_depth(const struct verbd_request *req, int dflt)
{
    size_t n;
    const char *v = verbd_request_header(req, "Depth", &n);
    if (!v)
        return dflt;
    if (n == 1 && v[0] == '0')
        return 0;
    if (n == 1 && v[0] == '1')
        return 1;
    if (n == 8 && strncasecmp(v, "infinity", 8) == 0)
        return DAV_DEPTH_INFINITY;
    return -2;
}

static int request_method(const struct verbd_request *req)
{
    size_t n;
    const char *m = verbd_request_method(req, &n);
    return method_lookup(m, n);
}

/* The subpath as rel ("" for the root, no trailing slash), malloc'd. */
static char *request_rel(const struct verbd_request *req, bool *slash)
{
    const char *sub = verbd_request_subpath(req);
    while (*sub == '/')
        sub++;
    size_t n = strlen(sub);
    *slash = n && sub[n - 1] == '/';
    while (n && sub[n - 1] == '/')
        n--;
    char *rel = strndup(sub, n);
    if (!rel)
        abort();
    return rel;
}

/* The mapping prefix without a trailing slash: the path minus the subpath. */
static char *request_prefix(const struct verbd_request *req)
{
    const char *path = verbd_request_path(req), *sub = verbd_request_subpath(req);
    size_t pl = strlen(path), sl = strlen(sub);
    size_t n = pl;
    if (sl <= pl && strcmp(path + pl - sl, sub) == 0)
        n = pl - sl;
    while (n && path[n - 1] == '/')
        n--;
    char *p = strndup(path, n);
    if (!p)
        abort();
    return p;
}

/* ---- request bodies ------------------------------------------------------------ */

int dav_body_open(struct dav_inst *in, const char *rel, struct dav_body *b)
{
    const char *name;
    b->why = NULL;
    if (fs_name_too_long(rel)) { /* no temporary file for a name that cannot be */
        b->status = fs_status(ENAMETOOLONG, FS_WRITE, "webdav: PUT", rel, &b->why);
        return b->status;
    }
    b->dirfd = *rel ? dav_open_parent(in, rel, &name) : -1;
    if (b->dirfd < 0) {
        b->status = !*rel ? 405 : fs_status(errno, FS_WRITE, "webdav: open parent", rel, &b->why);
        return b->status;
    }
    for (int tries = 0; tries < 8; tries++) {
        dav_tmp_name(in, "put", b->tmp, sizeof b->tmp);
        b->fd = openat(b->dirfd, b->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (b->fd >= 0 || errno != EEXIST)
            break;
    }
    if (b->fd < 0) {
        b->tmp[0] = '\0';
        b->status = fs_status(errno, FS_WRITE, "webdav: create temporary file for", rel, &b->why);
        return b->status;
    }
    return 0;
}

void dav_body_free(struct dav_inst *in, struct dav_body *b, bool unlink_tmp)
{
    (void)in;
    if (!b)
        return;
    if (b->fd >= 0)
        close(b->fd);
    if (unlink_tmp && b->tmp[0] && b->dirfd >= 0)
        unlinkat(b->dirfd, b->tmp, 0);
    if (b->dirfd >= 0)
        close(b->dirfd);
    buf_free(&b->mem);
    if (b->heap)
        free(b);
}

/* The body of a request, as it is read: a PUT's into a temporary file
 * beside its target, an XML body into memory (bounded). */
static struct dav_body *body_new(struct dav_inst *in, const struct verbd_request *req)
{
    struct dav_body *b = calloc(1, sizeof *b);
    if (!b)
        abort();
    b->heap = true;
    b->dirfd = b->fd = -1;
    if (request_method(req) == METHOD_PUT) {
        b->is_file = true;
        bool slash;
        char *rel = request_rel(req, &slash);
        if (dav_reserved(rel))
            b->status = 404;
        else
            dav_body_open(in, rel, b);
        free(rel);
    }
    return b;
}

/* 0, or the status that ends the upload. */
static int body_data(struct dav_body *b, const void *data, size_t len)
{
    if (!b->is_file) {
        if (b->mem.len + len > DAV_XML_MAX)
            return 413;
        buf_append(&b->mem, data, len);
        return 0;
    }
    const char *p = data;
    while (len) {
        ssize_t w = write(b->fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return fs_status(errno, FS_WRITE, "webdav: write", b->tmp, NULL);
        }
        p += w;
        len -= (size_t)w;
        b->len += (uint64_t)w;
    }
    return 0;
}

/* ---- per worker ------------------------------------------------------------------ */

/* Before this process serves, it clears what a crashed one left; not in
 * create(), which `verbd -t` runs too, before workers exist. */
static void dav_worker_init(void *vinst, struct loop *loop, method_set allowed)
{
    struct dav_inst *in = vinst;
    in->mapping_methods = allowed; /* the mapping's set: see dav_locking */
    dav_sweep_orphans(in);
    if (in->lock_sweep_ms && in->store->ops->sweep_every)
        in->store->ops->sweep_every(in->store, loop, in->lock_sweep_ms);
}

static void dav_worker_exit(void *vinst)
{
    struct dav_inst *in = vinst;
    if (in->store->ops->sweep_stop)
        in->store->ops->sweep_stop(in->store);
}

/* ---- Allow and OPTIONS ------------------------------------------------------- */

static method_set dav_allow(void *vinst, const struct verbd_request *req, method_set allowed)
{
    struct dav_inst *in = vinst;
    bool slash;
    char *rel = request_rel(req, &slash);
    struct dav_stat st;
    if (dav_reserved(rel) || dav_stat(in, rel, &st) != 0)
        st.exists = false;
    free(rel);
    if (!st.exists) {
        /* What can make it exist, plus the method asked, which the module
         * answers honestly (404, or 409 for a missing parent). */
        int id = request_method(req);
        method_set out = allowed & (M(PUT) | M(MKCOL) | M(LOCK) | M(OPTIONS));
        if (id != METHOD_UNKNOWN)
            out |= allowed & METHOD_BIT(id);
        return out;
    }
    if (st.is_dir)
        return allowed & ~(M(PUT) | M(MKCOL));
    return allowed & ~M(MKCOL);
}

static void dav_options(void *vinst, const struct verbd_request *req, method_set allowed,
                        struct verbd_response *res)
{
    (void)vinst, (void)req;
    /* Class 2 is locking: not claimed where LOCK is not allowed (a
     * read-only share), so that clients mount it read-only. */
    verbd_response_header(res, "DAV", allowed & M(LOCK) ? "1, 2" : "1");
    verbd_response_header(res, "MS-Author-Via", "DAV");
}

/* ---- dispatch ------------------------------------------------------------------ */

/* A request's body being read, and whose it is. */
struct dav_upload {
    struct dav_inst *in;
    struct dav_body *body;
};

static void upload_data(struct verbd_exchange *x, const void *p, size_t n, void *arg);
static void upload_done(struct verbd_exchange *x, int status, void *arg);

void dav_done(struct dav_req *r)
{
    verbd_finish(r->x);
}

void dav_unavailable(struct dav_req *r)
{
    verbd_response_error(r->res, 503,
                         "The store of WebDAV properties and locks is unavailable; try again.");
    verbd_response_header(r->res, "Retry-After", DAV_RETRY_AFTER);
    dav_done(r);
}

static void dav_req_free(void *arg)
{
    struct dav_req *r = arg;
    dav_if_free(r->ifh);
    dav_locks_free(&r->locks);
    dav_props_free(&r->props);
    free(r->rel_buf);
    free(r->prefix);
    free(r->dst);
}

/* The request as the method handlers see it, in the exchange's arena: its
 * resource looked at and its If header parsed.  Returns r with
 * *status 0, or the status with its answer on the response. */
static struct dav_req *dav_prepare(struct verbd_exchange *x, struct dav_inst *in, int *status)
{
    struct dav_req *r = verbd_alloc(x, sizeof *r);
    const struct verbd_request *req = verbd_exchange_request(x);
    *r = (struct dav_req){.x = x,
                          .in = in,
                          .req = req,
                          .res = verbd_exchange_response(x),
                          .method = request_method(req)};
    verbd_cleanup(x, dav_req_free, r);
    r->rel_buf = request_rel(req, &r->slash);
    r->rel = r->rel_buf;
    r->prefix = request_prefix(req);
    const char *why = NULL;
    *status = 0;
    if (dav_reserved(r->rel))
        *status = 404; /* temporary files are nobody's business */
    else if (dav_stat(in, r->rel, &r->st) != 0)
        *status = fs_status(errno, FS_READ, "webdav: stat", r->rel, &why);
    else if (r->method != METHOD_GET && r->method != METHOD_HEAD)
        *status = dav_if_parse(r);
    if (*status)
        verbd_response_error(r->res, *status, why);
    return r;
}

/* What a method needs loaded: the locks that matter to its resource, its
 * Destination and the resources its If header names, and for PROPFIND
 * the dead properties it may list.  One store round trip. */
static void dav_load_for(struct dav_req *r, dav_store_done *done)
{
    size_t ntags;
    char **tags = dav_if_tags(r, &ntags);
    const char **paths = calloc(ntags + 2, sizeof *paths);
    if (!paths)
        abort();
    size_t n = 0;
    paths[n++] = r->rel;
    if (r->method == METHOD_COPY || r->method == METHOD_MOVE) {
        size_t len;
        bool slash;
        const char *v = verbd_request_header(r->req, "Destination", &len);
        if (v && dav_uri_to_rel(r, v, len, &r->dst, &slash) == 0)
            paths[n++] = r->dst;
    }
    for (size_t i = 0; i < ntags; i++)
        paths[n++] = tags[i];
    struct dav_scope q = {.paths = paths, .npaths = n};
    if (r->method == METHOD_PROPFIND) {
        int depth = dav_depth(r->req, DAV_DEPTH_INFINITY);
        q.props_rel = r->rel;
        /* a refused depth is answered before the properties are used */
        q.props_depth =
            depth == 1 || (depth == DAV_DEPTH_INFINITY && r->in->depth_infinity) ? depth : 0;
    }
    dav_load(r, &q, done);
    for (size_t i = 0; i < ntags; i++)
        free(tags[i]);
    free(tags);
    free(paths);
}

/* The method, once the resource is looked at and the store loaded. */
static void dav_method(struct dav_req *r)
{
    switch (r->method) {
    case METHOD_PUT: dav_put(r); break;
    case METHOD_DELETE: dav_delete(r); break;
    case METHOD_MKCOL: dav_mkcol(r); break;
    case METHOD_COPY: dav_copymove(r, false); break;
    case METHOD_MOVE: dav_copymove(r, true); break;
    case METHOD_PROPFIND: dav_propfind(r); break;
    case METHOD_PROPPATCH: dav_proppatch(r); break;
    case METHOD_LOCK: dav_lock(r); break;
    case METHOD_UNLOCK: dav_unlock(r); break;
    default:
        verbd_response_error(r->res, 405, NULL);
        dav_done(r);
        break;
    }
}

/* Methods other than PUT, MKCOL and LOCK need the resource to exist. */
static bool needs_resource(const struct dav_req *r)
{
    return r->method != METHOD_PUT && r->method != METHOD_MKCOL && r->method != METHOD_LOCK;
}

static void loaded(struct dav_req *r, int result)
{
    if (result != DAV_STORE_OK) {
        dav_unavailable(r);
        return;
    }
    int status = dav_if_eval(r);
    if (status) {
        dav_error(r->res, status, NULL);
        dav_done(r);
    } else if (needs_resource(r) && !r->st.exists) {
        verbd_response_error(r->res, 404, NULL);
        dav_done(r);
    } else {
        r->next(r);
    }
}

/* Runs a request: prepare (parse, stat), load from the store what the
 * method needs, evaluate If, then `next` (the method, or the check of a
 * PUT's head).  GET and HEAD never touch the store. */
static void dav_dispatch(struct verbd_exchange *x, struct dav_inst *in, struct dav_upload *u,
                         void (*next)(struct dav_req *r))
{
    int status;
    struct dav_req *r = dav_prepare(x, in, &status);
    r->upload = u;
    if (u && !u->body->is_file) {
        r->body = u->body->mem.p;
        r->body_len = u->body->mem.len;
    } else if (u) {
        r->file = u->body;
    }
    if (status) {
        dav_done(r);
    } else if (r->method == METHOD_GET || r->method == METHOD_HEAD) {
        static_serve(in->st, r->req, r->res);
        dav_done(r);
    } else if (!r->ifh && needs_resource(r) && !r->st.exists) {
        verbd_response_error(r->res, 404, NULL); /* nothing to load for */
        dav_done(r);
    } else {
        r->next = next;
        dav_load_for(r, loaded);
    }
}

static void upload_data(struct verbd_exchange *x, const void *p, size_t n, void *arg)
{
    struct dav_upload *u = arg;
    int status = body_data(u->body, p, n);
    if (status) {
        struct verbd_response *res = verbd_exchange_response(x);
        verbd_response_error(res, status, NULL);
        verbd_response_close(res); /* the rest of the body is not read */
        verbd_finish(x);
    }
}

/* The body is in: the request runs from the start, its resource looked
 * at again (a PUT's locks and preconditions may have changed meanwhile). */
static void upload_done(struct verbd_exchange *x, int status, void *arg)
{
    struct dav_upload *u = arg;
    if (status) {
        verbd_response_error(verbd_exchange_response(x), status, NULL);
        verbd_finish(x);
        return;
    }
    dav_dispatch(x, u->in, u, dav_method);
}

/* A PUT's head, looked at with its locks: refused before the client sends
 * the body, and before 100 Continue, or the body is read. */
static void put_head(struct dav_req *r)
{
    if (dav_put_refusal(r)) {
        dav_done(r);
        return;
    }
    verbd_read(r->x, upload_data, upload_done, r->upload);
}

static void upload_free(void *arg)
{
    struct dav_upload *u = arg;
    dav_body_free(u->in, u->body, true); /* removes a temporary file not renamed */
}

static void dav_start(void *vinst, struct verbd_exchange *x)
{
    struct dav_inst *in = vinst;
    const struct verbd_request *req = verbd_exchange_request(x);
    struct verbd_response *res = verbd_exchange_response(x);
    if (!verbd_request_has_body(req)) {
        dav_dispatch(x, in, NULL, dav_method);
        return;
    }
    struct dav_upload *u = verbd_alloc(x, sizeof *u);
    *u = (struct dav_upload){in, body_new(in, req)};
    verbd_cleanup(x, upload_free, u);
    /* What the head decides (a missing parent, a reserved name, a lock, a
     * failed precondition) is answered before the client sends the body,
     * and before 100 Continue. */
    if (u->body->status) {
        verbd_response_error(res, u->body->status, u->body->why);
        verbd_finish(x);
        return;
    }
    if (u->body->is_file)
        dav_dispatch(x, in, u, put_head);
    else
        verbd_read(x, upload_data, upload_done, u);
}

/* ---- lifecycle and directives ---------------------------------------------------- */

static void dav_destroy(void *vinst)
{
    struct dav_inst *in = vinst;
    if (!in)
        return;
    dav_store_free(in->store);
    static_share_free(in->st);
    free(in);
}

/* dav_store sqlite:PATH, and its short form dav_db PATH.  Checked, not
 * created: `verbd -t` must not leave files behind (nor connect to
 * anything).  Each worker opens it on first use. */
static int set_store(const char *directive, void *vinst, const char *value, char *err,
                     size_t errlen)
{
    struct dav_inst *in = vinst;
    struct dav_store *s = dav_store_new(in, directive, value, err, errlen);
    if (!s)
        return -1;
    dav_store_free(in->store);
    in->store = s;
    return 0;
}

static int set_db(void *vinst, int argc, const char *const *argv, char *err, size_t errlen)
{
    (void)argc;
    return set_store("dav_db", vinst, argv[0], err, errlen);
}

static int set_dav_store(void *vinst, int argc, const char *const *argv, char *err, size_t errlen)
{
    (void)argc;
    return set_store("dav_store", vinst, argv[0], err, errlen);
}

static int set_depth_infinity(void *vinst, int argc, const char *const *argv, char *err,
                              size_t errlen)
{
    (void)argc;
    struct dav_inst *in = vinst;
    return directive_on_off("dav_depth_infinity", argv[0], &in->depth_infinity, err, errlen);
}

static int set_fsync(void *vinst, int argc, const char *const *argv, char *err, size_t errlen)
{
    (void)argc;
    struct dav_inst *in = vinst;
    return directive_on_off("dav_fsync", argv[0], &in->fsync, err, errlen);
}

/* dav_lock_sweep DURATION|off: how often each worker deletes expired locks. */
static int set_lock_sweep(void *vinst, int argc, const char *const *argv, char *err, size_t errlen)
{
    (void)argc;
    struct dav_inst *in = vinst;
    if (strcmp(argv[0], "off") == 0) {
        in->lock_sweep_ms = 0;
        return 0;
    }
    return directive_duration("dav_lock_sweep", argv[0], &in->lock_sweep_ms, err, errlen);
}

/* charset: the static module's, for GET and getcontenttype alike. */
static int set_charset(void *vinst, int argc, const char *const *argv, char *err, size_t errlen)
{
    (void)argc;
    struct dav_inst *in = vinst;
    return static_set_charset(in->st, argv[0], err, errlen);
}

static const struct verbd_directive dav_directives[] = {
    {.name = "charset", .min_args = 1, .max_args = 1, .set = set_charset, .inherit = true},
    {.name = "dav_db", .min_args = 1, .max_args = 1, .set = set_db, .path_args = true},
    {.name = "dav_store", .min_args = 1, .max_args = 1, .set = set_dav_store, .path_args = true},
    {.name = "dav_depth_infinity", .min_args = 1, .max_args = 1, .set = set_depth_infinity},
    {.name = "dav_fsync", .min_args = 1, .max_args = 1, .set = set_fsync},
    {.name = "dav_lock_sweep", .min_args = 1, .max_args = 1, .set = set_lock_sweep},
    {.name = NULL},
};

static void *dav_create(const struct module_env *env, const char *arg, char *err, size_t errlen)
{
    (void)env;
    if (!arg || !*arg) {
        snprintf(err, errlen, "webdav: a directory is required");
        return NULL;
    }
    /* GET of a collection lists it; no index file stands in for it.
     * Dotfiles are ordinary files here (a synced tree has them); only
     * verbd's reserved names stay hidden. */
    struct static_inst *st = static_share_new(arg, err, errlen);
    if (!st)
        return NULL;
    struct dav_inst *in = calloc(1, sizeof *in);
    if (!in)
        abort();
    in->st = st;
    in->mapping_methods = verbd_module_webdav.methods;
    in->root_fd = static_root_fd(st);
    in->lock_sweep_ms = 60000;
    /* The database lives beside the directory, never inside it, where a
     * client could read or overwrite it: DIR/../.verbd-dav-NAME.sqlite. */
    const char *root_real = static_root_real(st);
    char *db_path = NULL;
    if (strcmp(root_real, "/") != 0) {
        char *copy1 = strdup(root_real), *copy2 = strdup(root_real);
        if (!copy1 || !copy2)
            abort();
        const char *dir = dirname(copy1), *base = basename(copy2);
        size_t n = strlen(dir) + strlen(base) + 32;
        db_path = malloc(n);
        if (!db_path)
            abort();
        snprintf(db_path, n, "%s/.verbd-dav-%s.sqlite", strcmp(dir, "/") ? dir : "", base);
        free(copy1);
        free(copy2);
    }
    in->store = dav_store_sqlite(db_path);
    free(db_path);
    xmlInitParser();
    return in;
}

const struct verbd_module verbd_module_webdav = {
    .name = "webdav",
    .methods = M(GET) | M(HEAD) | M(PUT) | M(DELETE) | M(MKCOL) | M(COPY) | M(MOVE) | M(PROPFIND) |
               M(PROPPATCH) | M(LOCK) | M(UNLOCK),
    .directives = dav_directives,
    .streams_bodies = true,
    .create = dav_create,
    .destroy = dav_destroy,
    .start = dav_start,
    .worker_init = dav_worker_init,
    .worker_exit = dav_worker_exit,
    .allow = dav_allow,
    .options = dav_options,
};
