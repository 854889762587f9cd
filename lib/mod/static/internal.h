/* Private to the static module: the instance and the pieces static.c uses
 * (conditional.c, range.c, mime.c, listing.c).  Tests include it too. */
#ifndef VERBD_MOD_STATIC_INTERNAL_H
#define VERBD_MOD_STATIC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "http/date.h"
#include "http/range.h"
#include "mod/static/static.h"
#include "verbd.h"

struct file_cache;

struct mime_types;

/* A location's tables, looked up in this order before the built-in one. */
struct mime_choice {
    struct mime_types *types; /* `types { }`, or NULL */
    struct mime_types *file;  /* `mime_types FILE`, or NULL: the system's */
    bool no_file;             /* `mime_types off`: not even the system's */
};

struct static_inst {
    int root_fd;              /* O_PATH|O_DIRECTORY */
    struct file_cache *cache; /* this process's open files (cache.c) */
    char *root_real;          /* realpath of the root, for the no-openat2 fallback */
    bool listing;
    bool hidden_files;       /* serve dot-names (hidden_files on); webdav: always */
    bool precompressed;      /* serve NAME.br / NAME.gz for NAME when newer */
    char *charset;           /* added to text types' Content-Type; NULL: off */
    struct mime_choice mime; /* `types`, `mime_types` */
    char **index;            /* index file names, tried in order */
    size_t nindex;
};

/* ---- static.c: resolution under the root ---- */

/* The same without openat2 (kernels before 5.6): realpath, a check against
 * the root's realpath, then a component walk with O_NOFOLLOW so that a
 * symlink swapped in meanwhile fails instead of escaping. */
int static_open_fallback(const struct static_inst *in, const char *rel, int *status,
                         const char **why);

/* fstat of rel as static_open would reach it (without opening a FIFO or
 * device for reading): 0, or -1 if it cannot be served from this root. */
int static_stat(const struct static_inst *in, const char *rel, struct stat *st);
/* rel joined with a file name: "name" for ".", else "rel/name" (malloc'd). */
char *static_join(const char *rel, const char *name);

/* ---- hidden.c: names never served ---- */

/* True if rel is not served here: a reserved segment, or (hidden_files
 * off) a segment starting with '.', except a first segment ".well-known"
 * when rel starts at the origin's root. */
bool static_hidden(const struct static_inst *in, const char *rel, bool at_origin_root);
/* The same for one directory entry's name (listings). */
bool static_entry_hidden(const struct static_inst *in, const char *name);
/* 404 if the request's rel is hidden (static_hidden), else 0. */
int static_refuse_hidden(const struct static_inst *in, const struct verbd_request *req,
                         const char *rel);

/* ---- fserr.c: file-system errors as statuses (static and webdav) ---- */

/* fs_status and fs_name_too_long are in static.h. */

/* ---- cache.c: open files with their validators ---- */

struct file_entry {
    struct file_entry *next;
    char *rel;
    int fd; /* responses share it: see cache_hold */
    struct stat st;
    char etag[64];
    char last_modified[HTTP_DATE_LEN + 1];
    const char *type;
    char *content; /* the whole file, if small; else NULL */
    char *fields;  /* ETag, Last-Modified, Accept-Ranges and
                      Content-Type lines of a 200 */
    size_t fields_len;
    uint64_t last_used;
    uint64_t checked_epoch; /* the epoch the path was last stat'ed in */
    unsigned holds;         /* responses still sending from fd */
    bool dropped;           /* out of the cache: freed with the last hold */
};

struct file_cache *cache_new(void);
void cache_free(struct file_cache *c);
/* The entry for rel if the path still stats as the same file; else NULL
 * (and a stale entry is dropped). */
struct file_entry *cache_get(const struct static_inst *in, const char *rel);
/* Caches the regular file fd (taken over) at rel; never fails. */
struct file_entry *cache_put(const struct static_inst *in, const char *rel, int fd,
                             const struct stat *st);
/* True if rel was found missing (404) in the current epoch (clock.h):
 * requests of one batch share one look at a missing path too. */
bool cache_known_missing(const struct static_inst *in, const char *rel);
void cache_note_missing(const struct static_inst *in, const char *rel);
/* Appends a range of e's file to the response, sharing the cache's fd (no
 * dup): the entry outlives the cache's own use of it until the response
 * lets go.  Several ranges may be appended to one response. */
void cache_respond_range(struct verbd_response *res, struct file_entry *e, uint64_t offset,
                         uint64_t len);

/* ---- conditional.c: RFC 9110 §13.2.2 ---- */

enum cond_result { COND_PROCEED, COND_NOT_MODIFIED /* 304 */, COND_FAILED /* 412 */ };

/* The validators of the selected representation; etag NULL or has_mtime
 * false when it has none (a listing). */
struct validators {
    const char *etag; /* "\"...\"", strong */
    bool has_mtime;
    time_t mtime;
};

/* Steps 1-4 of §13.2.2 for GET/HEAD: If-Match, If-Unmodified-Since,
 * If-None-Match, If-Modified-Since. */
enum cond_result cond_evaluate(const struct verbd_request *req, const struct validators *v);
/* Step 5: true if a Range may be honoured (no If-Range, or one that matches
 * strongly: the same strong ETag, or exactly the Last-Modified date). */
bool cond_if_range(const struct verbd_request *req, const struct validators *v);

/* ---- range.c: RFC 9110 §14 (parsing: http/range.h) ---- */

/* Fills a 206 for the ranges of the cached file e, whose media type is
 * `type` (a precompressed file's is its original's). */
void range_respond(struct verbd_response *res, struct file_entry *e, const char *type,
                   const struct byte_range *r, size_t count);

/* ---- mime.c ---- */

/* Loads /etc/mime.types for the first user; release frees it with the last.
 * _from takes another file (tests) or NULL for the built-in table only. */
void mime_acquire(void);
void mime_acquire_from(const char *file);
void mime_release(void);
/* A table of types by extension: a `types { }` block or a mime.types file. */
struct mime_types;
/* Records "TYPE EXT...", one per line or ";" apart, "#" to the end of a
 * line a comment; on a duplicate extension the first record wins.  strict
 * (a types block): a record that is not a type and extensions is an error
 * (NULL + err); otherwise (a file) it is skipped. */
struct mime_types *mime_types_parse(const char *text, size_t len, bool strict, char *err,
                                    size_t errlen);
/* A mime.types file; NULL + err if it cannot be read. */
struct mime_types *mime_types_load(const char *file, char *err, size_t errlen);
void mime_types_free(struct mime_types *t);

/* The Content-Type for a file name (only its last segment's extension
 * counts, case-insensitively): c's tables (NULL: the system's only), then
 * the built-in table. */
const char *mime_type_in(const struct mime_choice *c, const char *name);
const char *mime_type(const char *name);
/* The Content-Type field value for a file name: mime_type_in, with
 * "; charset=CHARSET" for text and JavaScript types when charset is not
 * NULL.  The string stays valid while the tables are held. */
const char *mime_content_type(const struct mime_choice *c, const char *name, const char *charset);
/* The `charset NAME|off` directive into *slot (malloc'd, NULL for off):
 * 0, or -1 + err. */
int mime_set_charset(char **slot, const char *value, char *err, size_t errlen);

/* ---- listing.c ---- */

/* A 200 text/html listing of the directory fd (taken over: closed here),
 * which is rel under the root, for the request path (ends in '/'); at_root:
 * no "../" entry.  Entries are checked as static_stat would serve them, so
 * a symlink leading out of the root is not listed. */
void listing_respond(struct verbd_response *res, const struct static_inst *in, const char *rel,
                     const char *path, int fd, bool at_root);

/* ---- shared helpers (static.c) ---- */

/* Appends s[0, n) percent-encoded: bytes outside unreserved and `keep`
 * become %XX. */
struct buf;
void static_url_encode(struct buf *b, const char *s, size_t n, const char *keep);

#endif
