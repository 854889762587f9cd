/* Private to the webdav module: the instance, the request context every
 * method handler gets, and the pieces the files share (fs.c, xml.c,
 * store.c, props.c, ops.c, locks.c).  Tests include it too. */
#ifndef VERBD_MOD_WEBDAV_INTERNAL_H
#define VERBD_MOD_WEBDAV_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "core/buf.h"
#include "mod/static/static.h"
#include "mod/webdav/store.h"
#include "verbd.h"

struct static_inst;

#define DAV_XML_MAX (1024 * 1024)   /* an XML request body larger than this: 413 */
#define DAV_RESERVED VERBD_RESERVED /* names verbd keeps for itself (temp files) */
#define DAV_LOCK_TIMEOUT_DEFAULT 3600
#define DAV_LOCK_TIMEOUT_MAX (7 * 24 * 3600)
#define DAV_DEPTH_INFINITY (-1)

/* Retry-After of a 503 for an unavailable store, in seconds. */
#define DAV_RETRY_AFTER "5"

struct dav_inst {
    struct static_inst *st;  /* the served tree (static.h): GET, HEAD, names */
    int root_fd;             /* O_PATH|O_DIRECTORY of the served directory */
    struct dav_store *store; /* dead properties and locks (store.h) */
    bool depth_infinity;     /* dav_depth_infinity: PROPFIND Depth: infinity */
    bool fsync;              /* dav_fsync: fsync uploads before renaming */
    uint64_t lock_sweep_ms;  /* dav_lock_sweep: expired locks deleted this often; 0 off */
    unsigned tmp_counter;
    pid_t swept_pid; /* the process that swept orphans (tmp.c) */
    /* The mapping's method set as the router passes it to allow() before
     * any request is served; until then the module's own.  What the
     * module claims (DAV class 2, supportedlock) follows it. */
    uint64_t mapping_methods;
};

/* True if the mapping allows LOCK, so locks may be advertised. */
bool dav_locking(const struct dav_inst *in);

/* ---- fs.c: everything under the root ---------------------------------- */

/* The facts about one resource.  rel is "" for the root, else "a/b" (no
 * leading or trailing slash). */
struct dav_stat {
    bool exists, is_dir;
    struct stat st;
    time_t btime; /* creation time where the file system knows it, else mtime */
};

/* True if some segment of rel is a name the module reserves. */
bool dav_reserved(const char *rel);
/* Stats rel following symlinks only beneath the root: 0 (st->exists may
 * be false), or -1 with errno for an error other than "missing"
 * (ENAMETOOLONG for a segment longer than NAME_MAX: see fs_status). */
int dav_stat(const struct dav_inst *in, const char *rel, struct dav_stat *st);
/* Opens rel (a directory, "" the root) beneath the root: fd or -1. */
int dav_open_dir(const struct dav_inst *in, const char *rel);
/* Opens the parent directory of rel and points *name at its last segment:
 * fd, or -1 (errno ENOENT/ENOTDIR when the parent is missing). */
int dav_open_parent(const struct dav_inst *in, const char *rel, const char **name);
/* The parent of rel, malloc'd ("" for a top-level name). */
char *dav_parent(const char *rel);
/* rel joined with name, malloc'd. */
char *dav_join(const char *rel, const char *name);
/* ---- tmp.c: temporary names ------------------------------------------ */

#define DAV_HOST_MAX 64 /* bytes of the host name in a temporary name */
#define DAV_TMP_MAX 160 /* a temporary name fits in this */

/* A fresh temporary name, .verbd-KIND-HOST-PID-COUNTER-RAND, with `kind`
 * ("put", "copy", "move", "trash"), in out (DAV_TMP_MAX bytes). */
void dav_tmp_name(struct dav_inst *in, const char *kind, char *out, size_t len);
/* Parses a temporary name: its host and pid.  False if name is not one. */
bool dav_tmp_parse(const char *name, char *host, size_t hostlen, pid_t *pid);
/* True if the temporary name, last changed at `changed`, may be removed:
 * older than 24 hours, or this node's and its process is gone. */
bool dav_tmp_orphan(const char *name, time_t changed, time_t now);
/* Once per process: removes the orphans under the root (tmp.c). */
void dav_sweep_orphans(struct dav_inst *in);
/* Removes name in dirfd, recursively, never following a symlink.  rel is
 * what it is called to clients: `failed` (may be NULL) hears of each
 * entry that could not go.  Returns how many could not (0: all gone). */
int dav_remove_tree(int dirfd, const char *name, const char *rel,
                    void (*failed)(void *ctx, const char *rel, int err), void *ctx);
/* Copies name in sdir to dname in ddir: a file, or a directory with its
 * members when `recursive`.  0, or -1 with errno. */
int dav_copy_tree(int sdir, const char *sname, int ddir, const char *dname, bool recursive,
                  bool do_fsync);
/* The strong ETag for a stat (the static module's format), in out[64]. */
void dav_etag(const struct stat *st, char *out, size_t len);
/* ISO 8601 (creationdate), out[32]. */
void dav_iso_date(time_t t, char *out, size_t len);

/* ---- xml.c ------------------------------------------------------------ */

struct _xmlDoc;
struct _xmlNode;

/* Parses an XML request body safely (no DTD, no entities, no network).
 * Returns the document, or NULL if it is malformed (answer 400). */
struct _xmlDoc *dav_xml_parse(const char *p, size_t n);
void dav_xml_free(struct _xmlDoc *doc);
/* True if node is an element DAV:name. */
bool dav_xml_is(const struct _xmlNode *node, const char *name);
/* The first element child of node, and the next element sibling. */
struct _xmlNode *dav_xml_first(const struct _xmlNode *node);
struct _xmlNode *dav_xml_next(const struct _xmlNode *node);
/* The element serialised with every namespace it uses declared on it,
 * malloc'd; children_only: just its content. */
char *dav_xml_dump(const struct _xmlNode *node, bool children_only);
/* Appends s[0, n) escaped for XML text and attribute values. */
void dav_xml_escape(struct buf *b, const char *s, size_t n);
/* Appends the href of rel (percent-encoded, XML-safe); dir adds '/'. */
void dav_xml_href(struct buf *b, const char *prefix, const char *rel, bool dir);
/* Answers status with the XML body b. */
void dav_xml_respond(struct verbd_response *res, int status, const struct buf *b);
/* Answers status with a DAV:error body holding <D:cond/> (cond NULL: the
 * plain error body).  Call it before adding anything else to res. */
void dav_error(struct verbd_response *res, int status, const char *cond);

/* ---- store.c: the calls the handlers make (see store.h) ---------------- */

/* Loads r->locks and r->props as q says. */
void dav_load(struct dav_req *r, const struct dav_scope *q, dav_store_done *done);
/* PROPPATCH of r->rel. */
void dav_patch(struct dav_req *r, const struct dav_patch *ops, size_t n, dav_store_done *done);
void dav_take_lock(struct dav_req *r, const struct dav_lock *l, dav_store_done *done);
void dav_refresh_lock(struct dav_req *r, const char *token, long timeout, dav_store_done *done);
void dav_drop_lock(struct dav_req *r, const char *token, dav_store_done *done);
void dav_drop(struct dav_req *r, const char *rel, unsigned what, dav_store_done *done);
void dav_transfer(struct dav_req *r, const char *src, const char *dst, bool recursive, bool move,
                  dav_store_done *done);

/* ---- locks.c: coverage, the If header, lock checks -------------------- */

/* True if lock l applies to rel (its root, or below a depth-infinity
 * root). */
bool dav_lock_covers(const struct dav_lock *l, const char *rel);
/* True if rel is strictly below (or, with self, at) base. */
bool dav_rel_within(const char *rel, const char *base, bool self);
/* True if `held` keeps `wanted` from being granted (see the store's lock
 * operation): for stores that check in C. */
bool dav_lock_conflicts(const struct dav_lock *held, const struct dav_lock *wanted);

/* One request's view: what the handlers share.  It lives in the
 * exchange's arena, as does everything a handler keeps across a store
 * call (r->state); what it holds besides is freed by a cleanup. */
struct dav_req {
    struct verbd_exchange *x;
    struct dav_inst *in;
    const struct verbd_request *req;
    struct verbd_response *res;
    int method;
    const char *rel; /* "" for the root */
    char *rel_buf;
    bool slash;   /* the request path ended with '/' */
    char *prefix; /* the mapping prefix without trailing '/': "/dav" */
    struct dav_stat st;
    char *dst;              /* COPY, MOVE: the Destination's rel, if it parsed */
    struct dav_locks locks; /* the locks that matter here, as loaded */
    struct dav_props props; /* PROPFIND: the dead properties, as loaded */
    const char *body;       /* XML body, if any */
    size_t body_len;
    struct dav_body *file;           /* PUT: the streamed body (the upload's), or NULL */
    struct dav_if *ifh;              /* the parsed If header, or NULL */
    struct dav_upload *upload;       /* the body being read (webdav.c), or NULL */
    void (*next)(struct dav_req *r); /* what runs once the store is loaded */
    void *state;                     /* the method handler's own */
};

/* Ends the exchange: the answer built on r->res goes out. */
void dav_done(struct dav_req *r);
/* Answers 503 with Retry-After (the store could not answer) and ends. */
void dav_unavailable(struct dav_req *r);

/* Parses the If header into r->ifh: 0 (absent or parsed) or 400. */
struct dav_if;
int dav_if_parse(struct dav_req *r);
/* The rels of the If header's resource tags that name resources of this
 * mapping, malloc'd (free each and the array); their count in *n. */
char **dav_if_tags(const struct dav_req *r, size_t *n);
/* Evaluates r->ifh against r->locks (RFC 4918 §10.4): 0 if absent or
 * true, 412 if false. */
int dav_if_eval(struct dav_req *r);
void dav_if_free(struct dav_if *h);
/* True if the If header names token outside a Not (it is "submitted"). */
bool dav_if_has_token(const struct dav_if *h, const char *token);

/* Ensures the request may modify rel: locks covering it (and, with
 * tree, locks below it; with parent, a direct lock on its parent, for
 * creating or removing it) must have their token in the If header.
 * Returns 0 or 423 (having answered nothing).  r->locks must hold the
 * locks that matter to rel (the dispatch loads them). */
int dav_check_locks(struct dav_req *r, const char *rel, bool tree, bool parent);
/* Parses a request URI or Destination/If resource tag: an absolute URI
 * of this host or an absolute path, inside this mapping.  Returns 0 and a
 * malloc'd rel (*slash if it ended in '/'), 502 for another host or a path
 * outside the mapping, 400 if malformed. */
int dav_uri_to_rel(const struct dav_req *r, const char *p, size_t n, char **rel, bool *slash);

/* ---- the method handlers ------------------------------------------------ *
 *
 * Each runs once the dispatch has looked at the resource, loaded the
 * locks (and for PROPFIND the properties) and evaluated If, and ends the
 * exchange with dav_done(), at once or from a store callback. */

void dav_propfind(struct dav_req *r);
void dav_proppatch(struct dav_req *r);
void dav_lock(struct dav_req *r);
void dav_unlock(struct dav_req *r);
void dav_delete(struct dav_req *r);
void dav_mkcol(struct dav_req *r);
void dav_copymove(struct dav_req *r, bool move);
/* PUT: r->file is the streamed body (NULL for an empty one). */
void dav_put(struct dav_req *r);
/* What the head of a PUT decides before its body: a collection (405),
 * Content-Range (400), a failed precondition (412), a lock (423).  0, or
 * the status, with the answer built on r->res. */
int dav_put_refusal(struct dav_req *r);

/* lockdiscovery content for rel (activelock elements). */
void dav_lockdiscovery(struct dav_req *r, struct buf *b, const char *rel);
void dav_activelock(struct dav_req *r, struct buf *b, const struct dav_lock *l);

/* ---- webdav.c: the streamed body ---------------------------------------- */

struct dav_body {
    bool is_file;
    int dirfd; /* the parent directory of the PUT target, or -1 */
    int fd;    /* the temporary file, or -1 */
    char tmp[DAV_TMP_MAX];
    int status;      /* an error to answer when the body is in, or 0 */
    const char *why; /* its detail for the error body, or NULL */
    uint64_t len;
    struct buf mem; /* an XML body */
    bool heap;      /* malloc'd (dav_body_free frees it) */
};
/* Creates the temporary file for a PUT of rel: 0, or the status to answer
 * (b->status is set too). */
int dav_body_open(struct dav_inst *in, const char *rel, struct dav_body *b);
/* Closes what b holds (removing the temporary file if unlink_tmp and it
 * is still there) and frees b unless it is not malloc'd (`owned` false). */
void dav_body_free(struct dav_inst *in, struct dav_body *b, bool unlink_tmp);

/* The Depth header: 0, 1, DAV_DEPTH_INFINITY, `dflt` if absent, or -2
 * if malformed. */
int dav_depth(const struct verbd_request *req, int dflt);

#endif
