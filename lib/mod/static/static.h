/* The `static` module: files and directories under a root directory, for
 * GET and HEAD, with index files, optional listings, validators,
 * conditional requests and byte ranges. */
#ifndef VERBD_MOD_STATIC_H
#define VERBD_MOD_STATIC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "route/module.h"

extern const struct verbd_module verbd_module_static;

/* ---- The file-serving API other modules build on (WebDAV) ----------------
 * Everything a module that serves a tree of files shares with static:
 * resolution that never leaves the root, validators, media types, the
 * reserved names, and the GET/HEAD answer itself.  Nothing else of the
 * static module is visible outside it. */

struct static_inst;

/* A tree served as a share: collections are listed (no index file stands
 * in for them) and dot-names are ordinary files.  NULL + err if root is
 * not a directory. */
struct static_inst *static_share_new(const char *root, char *err, size_t errlen);
void static_share_free(struct static_inst *in);

/* The root: O_PATH|O_DIRECTORY descriptor, and its realpath. */
int static_root_fd(const struct static_inst *in);
const char *static_root_real(const struct static_inst *in);

/* The answer for a GET or HEAD of the file at the request's subpath,
 * built on res. */
void static_serve(void *inst, const struct verbd_request *req, struct verbd_response *res);

/* Opens rel (relative to the root, no leading '/', "." for the root itself)
 * for reading, following symlinks only while they stay beneath the root.
 * Returns the fd, or -1 with *status (403, 404, 500, 503) and *why, a short
 * static detail for the error body (may be NULL). */
int static_open(const struct static_inst *in, const char *rel, int *status, const char **why);

/* The strong ETag of a file (quotes included) into out (64 bytes do). */
void static_etag(const struct stat *st, char *out, size_t len);

/* True if the field value [p, p+n) ("*" or 1#entity-tag) matches etag (may
 * be NULL: then only "*" matches) by strong or weak comparison (RFC 9110
 * §8.8.3.2).  A value that does not parse matches nothing and sets
 * *malformed (may be NULL). */
bool etag_list_match(const char *p, size_t n, const char *etag, bool strong, bool *malformed);

/* verbd's own names (temporary files of uploads, copies, moves and
 * deletes): hidden from every module and refused whatever hidden_files
 * says. */
#define VERBD_RESERVED ".verbd-"

/* True if some segment of rel starts with the reserved prefix. */
bool static_reserved(const char *rel);

/* The Content-Type a GET of this name answers with (charset included). */
const char *static_content_type(const struct static_inst *in, const char *name);
/* The `charset NAME|off` directive: 0, or -1 + err. */
int static_set_charset(struct static_inst *in, const char *value, char *err, size_t errlen);

/* File-system errors as statuses. */
enum fs_op { FS_READ, FS_WRITE };

/* The status for errno e, met while reading or writing rel (relative to
 * the root) with `what` (a short name of the call, for the log): 404 or,
 * writing, 409 for a missing parent; 400 for a name too long; 403 for
 * permissions, a read-only file system or a path leaving the root; 507
 * for no space or quota; 503 for exhausted descriptors or memory; any
 * other errno is 500 and logged.  *why (may be NULL) gets a short static
 * detail for the error body, or NULL. */
int fs_status(int e, enum fs_op op, const char *what, const char *rel, const char **why);
/* True if a segment of rel is longer than NAME_MAX: no file system here
 * can hold such a name, so the request is refused before touching one. */
bool fs_name_too_long(const char *rel);

#endif
