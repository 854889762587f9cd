/* The methods that change the tree: PUT, DELETE, MKCOL, COPY, MOVE.  Each
 * switches the visible state with one rename: an upload lands complete or
 * not at all, a deleted or replaced collection vanishes at once and its
 * contents are removed under a reserved name afterwards. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "http/status.h"
#include "mod/webdav/internal.h"

/* Every file-system error goes through the modules' one mapping
 * (fs_status): the statuses are deliberate, and the rest are logged. */
static int write_status(int e, const char *what, const char *rel, const char **why)
{
    return fs_status(e, FS_WRITE, what, rel, why);
}

static void lock_refusal(struct dav_req *r, int status)
{
    dav_error(r->res, status, status == 423 ? "lock-token-submitted" : NULL);
}

static void fsync_dir(const struct dav_inst *in, int dirfd)
{
    if (in->fsync) {
        int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
            fsync(fd);
            close(fd);
        }
    }
}

/* ---- PUT ------------------------------------------------------------------ */

/* RFC 9110 §13.1.1-2 on the current target: false if PUT must fail (412). */
static bool put_preconditions(struct dav_req *r)
{
    char etag[64];
    const char *cur = NULL;
    if (r->st.exists) {
        dav_etag(&r->st.st, etag, sizeof etag);
        cur = etag;
    }
    size_t n;
    const char *v = verbd_request_header(r->req, "If-Match", &n);
    if (v && (!cur || !etag_list_match(v, n, cur, true, NULL)))
        return false; /* "*" too needs a current representation */
    v = verbd_request_header(r->req, "If-None-Match", &n);
    if (v && cur && etag_list_match(v, n, cur, false, NULL))
        return false;
    return true;
}

int dav_put_refusal(struct dav_req *r)
{
    int status = 0;
    const char *why = NULL;
    size_t crn;
    if (r->slash || r->st.is_dir) {
        status = 405; /* a collection is not PUT */
    } else if (verbd_request_header(r->req, "Content-Range", &crn)) {
        status = 400; /* a partial PUT would be taken for the whole (RFC 9110 §14.5) */
        why = "PUT with Content-Range is not supported.";
    } else if (!put_preconditions(r)) {
        status = 412;
    } else {
        status = dav_check_locks(r, r->rel, false, !r->st.exists);
    }
    if (status == 423 || status == 412)
        lock_refusal(r, status);
    else if (status)
        verbd_response_error(r->res, status, why);
    return status;
}

static void body_release(void *arg)
{
    struct dav_body *b = arg;
    dav_body_free(NULL, b, true);
}

/* The body is in and the stale properties of a new name are gone: the
 * upload takes the target's place in one rename. */
static void put_switch(struct dav_req *r, int result)
{
    struct dav_inst *in = r->in;
    struct dav_body *b = r->file;
    if (result != DAV_STORE_OK) {
        dav_unavailable(r);
        return;
    }
    const char *name = strrchr(r->rel, '/');
    name = name ? name + 1 : r->rel;
    int status = 0;
    const char *why = NULL;
    struct stat old;
    if (r->st.exists && fstatat(b->dirfd, name, &old, 0) == 0)
        fchmod(b->fd, old.st_mode & 07777);
    if (in->fsync && fsync(b->fd) != 0)
        status = write_status(errno, "webdav: fsync", r->rel, &why);
    if (!status && renameat(b->dirfd, b->tmp, b->dirfd, name) != 0)
        status = errno == EISDIR ? 405 : write_status(errno, "webdav: rename", r->rel, &why);
    if (status) {
        if (status == 409 && !why)
            verbd_response_error(r->res, 409, "The parent collection does not exist.");
        else
            verbd_response_error(r->res, status, why);
        dav_done(r);
        return;
    }
    b->tmp[0] = '\0'; /* renamed: nothing to remove */
    fsync_dir(in, b->dirfd);
    struct stat st;
    if (fstat(b->fd, &st) == 0) {
        char etag[64];
        dav_etag(&st, etag, sizeof etag);
        verbd_response_header(r->res, "ETag", etag);
    }
    verbd_response_status(r->res, r->st.exists ? 204 : 201);
    dav_done(r);
}

void dav_put(struct dav_req *r)
{
    struct dav_body *b = r->file;
    int status = 0;
    const char *why = NULL;
    if (!b) {
        b = r->file = verbd_alloc(r->x, sizeof *b);
        *b = (struct dav_body){.is_file = true, .dirfd = -1, .fd = -1};
        verbd_cleanup(r->x, body_release, b);
        status = dav_body_open(r->in, r->rel, b);
        why = b->why;
    } else if (!b->is_file) {
        status = 500; /* a PUT body always goes to a file */
    } else {
        status = b->status;
        why = b->why;
    }
    /* Checked again now the body is in: a lock may have come meanwhile. */
    if (!status && dav_put_refusal(r)) {
        dav_done(r);
        return;
    }
    if (status) {
        if (status == 409 && !why)
            verbd_response_error(r->res, 409, "The parent collection does not exist.");
        else
            verbd_response_error(r->res, status, why);
        dav_done(r);
        return;
    }
    /* A new name first loses whatever properties an outside delete left
     * there, then gets its file: a crash between leaves no stale
     * property on it. */
    if (r->st.exists)
        put_switch(r, DAV_STORE_OK);
    else
        dav_drop(r, r->rel, DAV_STORE_PROPS, put_switch);
}

/* ---- DELETE ----------------------------------------------------------------- */

struct failures {
    struct dav_req *r;
    struct buf xml;
    const char *trash_rel; /* failed paths are reported under the original name */
};

static void record_failure(void *ctx, const char *rel, int err)
{
    struct failures *f = ctx;
    const char *rest = rel + strlen(f->trash_rel);
    char *orig = malloc(strlen(f->r->rel) + strlen(rest) + 1);
    if (!orig)
        abort();
    sprintf(orig, "%s%s", f->r->rel, rest);
    int status = write_status(err, "webdav: delete", orig, NULL);
    if (status == 409 || status == 404)
        status = 500; /* a member, not the parent, could not go */
    buf_puts(&f->xml, "<D:response>");
    dav_xml_href(&f->xml, f->r->prefix, orig, false);
    buf_printf(&f->xml, "<D:status>HTTP/1.1 %d %s</D:status></D:response>", status,
               http_status_reason(status));
    free(orig);
}

/* Moves name (rel) in dirfd aside under a reserved name; its new name in
 * trash.  0 or an errno. */
static int set_aside(struct dav_inst *in, int dirfd, const char *name, char *trash, size_t len)
{
    dav_tmp_name(in, "trash", trash, len);
    return renameat(dirfd, name, dirfd, trash) == 0 ? 0 : errno;
}

/* Removes a set-aside tree; on failure puts what is left back where it was
 * and answers 207 with what could not be removed.  True if all went. */
static bool remove_set_aside(struct dav_req *r, int dirfd, const char *trash, const char *name,
                             bool answer)
{
    char *parent = dav_parent(r->rel);
    char *trash_rel = dav_join(parent, trash);
    struct failures f = {.r = r, .trash_rel = trash_rel};
    int n = dav_remove_tree(dirfd, trash, trash_rel, record_failure, &f);
    if (n && answer) {
        renameat(dirfd, trash, dirfd, name); /* what is left is visible again */
        struct buf b = {0};
        buf_puts(&b, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
                     "<D:multistatus xmlns:D=\"DAV:\">");
        buf_append(&b, f.xml.p, f.xml.len);
        buf_puts(&b, "</D:multistatus>\n");
        dav_xml_respond(r->res, 207, &b);
        buf_free(&b);
    }
    buf_free(&f.xml);
    free(trash_rel);
    free(parent);
    return n == 0;
}

/* After a file-system change the store could not follow: the change
 * stands (it is what the client asked for), and what the store still
 * holds for the old names is logged. */
static void store_behind(struct dav_req *r, int result, const char *what)
{
    if (result != DAV_STORE_OK)
        log_msg(LOG_ERROR,
                "webdav: %s %s: done in the file system, but the store could not follow: the "
                "dead properties and locks of the old names stay behind (a lock ends with its "
                "timeout; properties go when the name is created again)",
                what, r->rel);
}

static void deleted(struct dav_req *r, int result)
{
    store_behind(r, result, "DELETE");
    verbd_response_status(r->res, 204);
    dav_done(r);
}

void dav_delete(struct dav_req *r)
{
    struct dav_inst *in = r->in;
    if (!*r->rel) {
        verbd_response_error(r->res, 403, "The root collection cannot be deleted.");
        dav_done(r);
        return;
    }
    int depth = dav_depth(r->req, DAV_DEPTH_INFINITY);
    if (r->st.is_dir && depth != DAV_DEPTH_INFINITY) {
        verbd_response_error(r->res, 400, "DELETE of a collection is Depth: infinity.");
        dav_done(r);
        return;
    }
    int status = dav_check_locks(r, r->rel, true, true);
    if (status) {
        lock_refusal(r, status);
        dav_done(r);
        return;
    }
    const char *name;
    int dirfd = dav_open_parent(in, r->rel, &name);
    if (dirfd < 0) {
        verbd_response_error(r->res, 404, NULL);
        dav_done(r);
        return;
    }
    if (!r->st.is_dir) {
        if (unlinkat(dirfd, name, 0) != 0) {
            const char *why = NULL;
            int status =
                errno == ENOENT ? 404 : write_status(errno, "webdav: unlink", r->rel, &why);
            verbd_response_error(r->res, status, why);
            close(dirfd);
            dav_done(r);
            return;
        }
    } else {
        char trash[DAV_TMP_MAX];
        int e = set_aside(in, dirfd, name, trash, sizeof trash);
        if (e) {
            const char *why = NULL;
            int status = e == ENOENT ? 404 : write_status(e, "webdav: rename", r->rel, &why);
            verbd_response_error(r->res, status, why);
            close(dirfd);
            dav_done(r);
            return;
        }
        if (!remove_set_aside(r, dirfd, trash, name, true)) {
            close(dirfd);
            dav_done(r);
            return;
        }
    }
    fsync_dir(in, dirfd);
    close(dirfd);
    /* Files first, records second: a crash between leaves records of a
     * name that is gone (harmless: a new resource there starts without
     * them), never a resource that lost its locks. */
    dav_drop(r, r->rel, DAV_STORE_PROPS | DAV_STORE_LOCKS, deleted);
}

/* ---- MKCOL ------------------------------------------------------------------ */

static void mkcol_make(struct dav_req *r, int result)
{
    if (result != DAV_STORE_OK) {
        dav_unavailable(r);
        return;
    }
    const char *name;
    int dirfd = dav_open_parent(r->in, r->rel, &name);
    if (dirfd < 0 || mkdirat(dirfd, name, 0777) != 0) {
        int e = errno;
        if (dirfd >= 0)
            close(dirfd);
        if (e == EEXIST) {
            verbd_response_error(r->res, 405, "The resource exists.");
        } else {
            const char *why = NULL;
            int status = write_status(e, "webdav: mkdir", r->rel, &why);
            verbd_response_error(r->res, status, why);
        }
        dav_done(r);
        return;
    }
    fsync_dir(r->in, dirfd);
    close(dirfd);
    verbd_response_status(r->res, 201);
    dav_done(r);
}

void dav_mkcol(struct dav_req *r)
{
    if (r->body_len) {
        verbd_response_error(r->res, 415, "MKCOL takes no body here.");
        dav_done(r);
        return;
    }
    if (r->st.exists) {
        verbd_response_error(r->res, 405, "The resource exists.");
        dav_done(r);
        return;
    }
    int status = dav_check_locks(r, r->rel, false, true);
    if (status) {
        lock_refusal(r, status);
        dav_done(r);
        return;
    }
    /* As PUT: the stale properties of the name go first. */
    dav_drop(r, r->rel, DAV_STORE_PROPS, mkcol_make);
}

/* ---- COPY and MOVE ------------------------------------------------------------ */

static void copied(struct dav_req *r, int result)
{
    store_behind(r, result, "COPY");
    dav_done(r);
}

static void moved(struct dav_req *r, int result)
{
    store_behind(r, result, "MOVE");
    dav_done(r);
}

void dav_copymove(struct dav_req *r, bool move)
{
    struct dav_inst *in = r->in;
    size_t n;
    const char *v = verbd_request_header(r->req, "Destination", &n);
    if (!v) {
        verbd_response_error(r->res, 400, "A Destination header is required.");
        dav_done(r);
        return;
    }
    char *dst = NULL;
    bool dslash;
    int status = dav_uri_to_rel(r, v, n, &dst, &dslash);
    if (status) {
        verbd_response_error(r->res, status,
                             status == 502 ? "The destination is not served by this location."
                                           : "The destination is not a valid URI.");
        dav_done(r);
        return;
    }
    verbd_cleanup(r->x, free, dst);
    int depth = dav_depth(r->req, DAV_DEPTH_INFINITY);
    bool overwrite = true;
    const char *ow = verbd_request_header(r->req, "Overwrite", &n);
    if (ow) {
        if (n == 1 && (*ow == 'T' || *ow == 'F'))
            overwrite = *ow == 'T';
        else
            status = 400;
    }
    if (depth == -2 || depth == 1 || (move && r->st.is_dir && depth != DAV_DEPTH_INFINITY))
        status = 400;
    if (status) {
        verbd_response_error(r->res, 400, "Bad Depth or Overwrite.");
        dav_done(r);
        return;
    }
    if (dav_reserved(dst) || strcmp(dst, r->rel) == 0 || !*r->rel || !*dst ||
        dav_rel_within(dst, r->rel, false) || (move && dav_rel_within(r->rel, dst, false))) {
        verbd_response_error(r->res, 403, "The source and destination overlap.");
        dav_done(r);
        return;
    }
    if (fs_name_too_long(dst)) {
        const char *why = NULL;
        int status = write_status(ENAMETOOLONG, "webdav: COPY/MOVE to", dst, &why);
        verbd_response_error(r->res, status, why);
        dav_done(r);
        return;
    }
    struct dav_stat dst_st;
    char *dparent = dav_parent(dst);
    struct dav_stat pst;
    if (dav_stat(in, dparent, &pst) != 0 || !pst.exists || !pst.is_dir) {
        free(dparent);
        verbd_response_error(r->res, 409, "The destination's parent collection does not exist.");
        dav_done(r);
        return;
    }
    free(dparent);
    if (dav_stat(in, dst, &dst_st) != 0) {
        const char *why = NULL;
        int status = fs_status(errno, FS_READ, "webdav: stat", dst, &why);
        verbd_response_error(r->res, status, why);
        dav_done(r);
        return;
    }
    if (dst_st.exists && !overwrite) {
        verbd_response_error(r->res, 412, "The destination exists and Overwrite is F.");
        dav_done(r);
        return;
    }
    if (move)
        status = dav_check_locks(r, r->rel, true, true);
    if (!status)
        status = dav_check_locks(r, dst, true, true);
    if (status) {
        lock_refusal(r, status);
        dav_done(r);
        return;
    }

    const char *sname, *dname;
    int sdir = dav_open_parent(in, r->rel, &sname);
    int ddir = dav_open_parent(in, dst, &dname);
    char tmp[DAV_TMP_MAX] = "", trash[DAV_TMP_MAX] = "";
    int e = 0;
    if (sdir < 0 || ddir < 0)
        e = errno ? errno : ENOENT;
    bool renamed = false;
    if (!e && move && (!dst_st.exists || (!dst_st.is_dir && !r->st.is_dir))) {
        /* One rename, atomic even over an existing file. */
        if (renameat(sdir, sname, ddir, dname) == 0)
            renamed = true;
        else if (errno != EXDEV)
            e = errno;
    }
    if (!e && !renamed) {
        /* Build the new tree under a reserved name, then switch: a MOVE
         * onto a collection (or of one onto a file), a MOVE across file
         * systems, and every COPY. */
        if (move) {
            if (renameat(sdir, sname, ddir, (dav_tmp_name(in, "move", tmp, sizeof tmp), tmp)) ==
                0) {
                e = 0;
            } else if (errno == EXDEV) {
                e = dav_copy_tree(sdir, sname, ddir, tmp, true, in->fsync) == 0 ? 0 : errno;
                if (!e && dav_remove_tree(sdir, sname, r->rel, NULL, NULL) != 0)
                    e = EIO;
            } else {
                e = errno;
            }
        } else {
            dav_tmp_name(in, "copy", tmp, sizeof tmp);
            if (dav_copy_tree(sdir, sname, ddir, tmp, depth == DAV_DEPTH_INFINITY, in->fsync) !=
                0) {
                e = errno;
                dav_remove_tree(ddir, tmp, tmp, NULL, NULL);
            }
        }
        if (!e && dst_st.exists) {
            if (!dst_st.is_dir && !r->st.is_dir) {
                if (renameat(ddir, tmp, ddir, dname) != 0)
                    e = errno;
            } else if (!(e = set_aside(in, ddir, dname, trash, sizeof trash))) {
                if (renameat(ddir, tmp, ddir, dname) != 0) {
                    e = errno;
                    renameat(ddir, trash, ddir, dname);
                } else {
                    remove_set_aside(r, ddir, trash, dname, false);
                }
            }
        } else if (!e && renameat(ddir, tmp, ddir, dname) != 0) {
            e = errno;
        }
        if (e && tmp[0])
            dav_remove_tree(ddir, tmp, tmp, NULL, NULL);
    }
    if (!e) {
        fsync_dir(in, ddir);
        if (move && sdir >= 0)
            fsync_dir(in, sdir);
    }
    if (sdir >= 0)
        close(sdir);
    if (ddir >= 0)
        close(ddir);
    if (e) {
        const char *why = NULL;
        int status = write_status(e, move ? "webdav: MOVE to" : "webdav: COPY to", dst, &why);
        verbd_response_error(r->res, status, why);
        dav_done(r);
        return;
    }
    /* Files first, records second, as DELETE: a crash between leaves the
     * source's records on a name that is gone, never a lock the tree
     * lost while it still stood. */
    verbd_response_status(r->res, dst_st.exists ? 204 : 201);
    dav_transfer(r, r->rel, dst, move || depth == DAV_DEPTH_INFINITY, move, move ? moved : copied);
}
