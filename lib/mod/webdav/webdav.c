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
    (void)loop;
    struct dav_inst *in = vinst;
    in->mapping_methods = allowed; /* the mapping's set: see dav_locking */
    dav_sweep_orphans(in);
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

/* GET and HEAD: the static module's answer (validators, conditionals,
 * ranges, listings). */
static void serve_static(struct dav_inst *in, struct dav_req *r)
{
    static_serve(in->st, r->req, r->res);
}

/* The request as the method handlers see it: its resource, looked at,
 * and its If header evaluated.  0, or a status with its answer on res. */
static int dav_prepare(struct dav_req *r, struct dav_inst *in, const struct verbd_request *req,
                       struct verbd_response *res)
{
    *r = (struct dav_req){.in = in, .req = req, .res = res, .method = request_method(req)};
    r->rel_buf = request_rel(req, &r->slash);
    r->rel = r->rel_buf;
    r->prefix = request_prefix(req);
    int status = 0;
    const char *why = NULL;
    if (dav_reserved(r->rel))
        status = 404; /* temporary files are nobody's business */
    else if (dav_stat(in, r->rel, &r->st) != 0)
        status = fs_status(errno, FS_READ, "webdav: stat", r->rel, &why);
    else if (r->method != METHOD_GET && r->method != METHOD_HEAD)
        status = dav_if_eval(r);
    if (status == 412)
        dav_error(res, 412, NULL);
    else if (status)
        verbd_response_error(res, status, why);
    return status;
}

static void dav_req_free(struct dav_req *r)
{
    dav_if_free(r->ifh);
    dav_locks_free(&r->locks);
    free(r->rel_buf);
    free(r->prefix);
}

/* Answers a request whose body (if any) is in `body`, which it takes. */
static void dav_handle(struct dav_inst *in, const struct verbd_request *req,
                       struct verbd_response *res, struct dav_body *body)
{
    struct dav_req r;
    int status = dav_prepare(&r, in, req, res);
    if (body && !body->is_file) {
        r.body = body->mem.p;
        r.body_len = body->mem.len;
    }
    if (status) {
        /* answered */
    } else if (r.method == METHOD_GET || r.method == METHOD_HEAD) {
        serve_static(in, &r);
    } else {
        bool needs = r.method != METHOD_PUT && r.method != METHOD_MKCOL && r.method != METHOD_LOCK;
        if (needs && !r.st.exists) {
            verbd_response_error(res, 404, NULL);
        } else {
            switch (r.method) {
            case METHOD_PUT:
                dav_put(&r, body);
                body = NULL; /* dav_put owns it */
                break;
            case METHOD_DELETE: dav_delete(&r); break;
            case METHOD_MKCOL: dav_mkcol(&r); break;
            case METHOD_COPY: dav_copymove(&r, false); break;
            case METHOD_MOVE: dav_copymove(&r, true); break;
            case METHOD_PROPFIND: dav_propfind(&r); break;
            case METHOD_PROPPATCH: dav_proppatch(&r); break;
            case METHOD_LOCK: dav_lock(&r); break;
            case METHOD_UNLOCK: dav_unlock(&r); break;
            default: verbd_response_error(res, 405, NULL); break;
            }
        }
    }
    dav_body_free(in, body, true);
    dav_req_free(&r);
}

/* True if the head alone refuses a PUT (its answer built on res): then
 * the body is never asked for, and 100 Continue never sent. */
static bool put_refused_by_head(struct dav_inst *in, const struct verbd_request *req,
                                struct verbd_response *res)
{
    struct dav_req r;
    int status = dav_prepare(&r, in, req, res);
    if (!status)
        status = dav_put_refusal(&r);
    dav_req_free(&r);
    return status != 0;
}

/* A request's body being read, and whose it is. */
struct upload {
    struct dav_inst *in;
    struct dav_body *body; /* NULL once dav_handle took it */
};

static void upload_free(void *arg)
{
    struct upload *u = arg;
    dav_body_free(u->in, u->body, true); /* an upload never completed */
}

static void upload_data(struct verbd_exchange *x, const void *p, size_t n, void *arg)
{
    struct upload *u = arg;
    int status = body_data(u->body, p, n);
    if (status) {
        struct verbd_response *res = verbd_exchange_response(x);
        verbd_response_error(res, status, NULL);
        verbd_response_close(res); /* the rest of the body is not read */
        verbd_finish(x);
    }
}

static void upload_done(struct verbd_exchange *x, int status, void *arg)
{
    struct upload *u = arg;
    struct verbd_response *res = verbd_exchange_response(x);
    if (status) {
        verbd_response_error(res, status, NULL);
    } else {
        struct dav_body *b = u->body;
        u->body = NULL;
        dav_handle(u->in, verbd_exchange_request(x), res, b);
    }
    verbd_finish(x);
}

static void dav_start(void *vinst, struct verbd_exchange *x)
{
    struct dav_inst *in = vinst;
    const struct verbd_request *req = verbd_exchange_request(x);
    struct verbd_response *res = verbd_exchange_response(x);
    if (!verbd_request_has_body(req)) {
        dav_handle(in, req, res, NULL);
        verbd_finish(x);
        return;
    }
    struct upload *u = verbd_alloc(x, sizeof *u);
    *u = (struct upload){in, body_new(in, req)};
    verbd_cleanup(x, upload_free, u);
    /* What the head decides (a missing parent, a reserved name, a lock, a
     * failed precondition) is answered before the client sends the body,
     * and before 100 Continue. */
    if (u->body->status) {
        verbd_response_error(res, u->body->status, u->body->why);
        verbd_finish(x);
        return;
    }
    if (u->body->is_file && put_refused_by_head(in, req, res)) {
        verbd_finish(x);
        return;
    }
    verbd_read(x, upload_data, upload_done, u);
}

/* ---- lifecycle and directives ---------------------------------------------------- */

static void dav_destroy(void *vinst)
{
    struct dav_inst *in = vinst;
    if (!in)
        return;
    if (in->db && in->db_pid == getpid())
        dav_db_close(in);
    static_share_free(in->st);
    free(in->db_path);
    free(in);
}

static int set_db(void *vinst, int argc, const char *const *argv, char *err, size_t errlen)
{
    (void)argc;
    struct dav_inst *in = vinst;
    /* Checked, not created: `verbd -t` must not leave files behind.  Each
     * worker opens (and if need be creates) it on first use. */
    if (dav_db_check(in, argv[0], err, errlen) < 0)
        return -1;
    char *p = strdup(argv[0]);
    if (!p)
        abort();
    free(in->db_path);
    in->db_path = p;
    return 0;
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
    {.name = "dav_depth_infinity", .min_args = 1, .max_args = 1, .set = set_depth_infinity},
    {.name = "dav_fsync", .min_args = 1, .max_args = 1, .set = set_fsync},
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
    /* The database lives beside the directory, never inside it, where a
     * client could read or overwrite it: DIR/../.verbd-dav-NAME.sqlite. */
    const char *root_real = static_root_real(st);
    if (strcmp(root_real, "/") != 0) {
        char *copy1 = strdup(root_real), *copy2 = strdup(root_real);
        if (!copy1 || !copy2)
            abort();
        const char *dir = dirname(copy1), *base = basename(copy2);
        size_t n = strlen(dir) + strlen(base) + 32;
        in->db_path = malloc(n);
        if (!in->db_path)
            abort();
        snprintf(in->db_path, n, "%s/.verbd-dav-%s.sqlite", strcmp(dir, "/") ? dir : "", base);
        free(copy1);
        free(copy2);
    }
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
    .allow = dav_allow,
    .options = dav_options,
};
