/* The static module: instance lifecycle, directives, resolution of the
 * request path under the root, and the answer for a file or directory. */
#include "mod/static/static.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/buf.h"
#include "http/coding.h"
#include "http/method.h"
#include "mod/static/internal.h"

/* ---- helpers ---------------------------------------------------------- */

void static_url_encode(struct buf *b, const char *s, size_t n, const char *keep)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '.' || c == '_' || c == '~' || (c && strchr(keep, c));
        if (plain) {
            buf_append(b, &s[i], 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            buf_append(b, e, 3);
        }
    }
}

/* ---- resolution --------------------------------------------------------- */

#define OPEN_FLAGS (O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)

/* Cleared once openat2 turns out to be missing (kernel < 5.6, or a seccomp
 * filter that refuses it); then every open takes the fallback. */
static _Atomic bool have_openat2 = true;

static int errno_status(int e, const char *rel, const char **why)
{
    return fs_status(e, FS_READ, "static: open", rel, why);
}

static int openat2_beneath(int dirfd, const char *rel, int flags)
{
    /* Symlinks are followed, but resolution may never leave dirfd: no ".."
     * above it, no absolute symlink, no /proc magic link.  O_NONBLOCK keeps
     * a FIFO from blocking the open; fstat then refuses it. */
    struct open_how how = {
        .flags = (uint64_t)flags,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    return (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof how);
}

char *static_join(const char *rel, const char *name)
{
    size_t rl = strcmp(rel, ".") == 0 ? 0 : strlen(rel);
    char *p = malloc(rl + strlen(name) + 2);
    if (!p)
        abort();
    if (rl)
        sprintf(p, "%s%s%s", rel, rel[rl - 1] == '/' ? "" : "/", name);
    else
        strcpy(p, name);
    return p;
}

int static_stat(const struct static_inst *in, const char *rel, struct stat *st)
{
    int fd = -1;
    if (have_openat2) {
        fd = openat2_beneath(in->root_fd, rel, O_PATH | O_CLOEXEC);
        if (fd < 0 && errno != ENOSYS)
            return -1;
    }
    if (fd < 0) {
        int status;
        const char *why;
        fd = static_open_fallback(in, rel, &status, &why);
        if (fd < 0)
            return -1;
    }
    int r = fstat(fd, st);
    close(fd);
    return r;
}

int static_open(const struct static_inst *in, const char *rel, int *status, const char **why)
{
    if (have_openat2) {
        int fd = openat2_beneath(in->root_fd, rel, OPEN_FLAGS);
        if (fd >= 0)
            return fd;
        if (errno != ENOSYS) {
            *status = errno_status(errno, rel, why);
            return -1;
        }
        have_openat2 = false;
    }
    return static_open_fallback(in, rel, status, why);
}

int static_open_fallback(const struct static_inst *in, const char *rel, int *status,
                         const char **why)
{
    size_t rl = strlen(in->root_real);
    char *full = malloc(rl + strlen(rel) + 2);
    if (!full)
        abort();
    sprintf(full, "%s/%s", in->root_real, rel);
    char *real = realpath(full, NULL);
    int e = errno;
    free(full);
    if (!real) {
        *status = errno_status(e, rel, why);
        return -1;
    }
    char *sub;
    if (strcmp(real, in->root_real) == 0) {
        free(real);
        int fd = openat(in->root_fd, ".", OPEN_FLAGS);
        if (fd < 0)
            *status = errno_status(errno, rel, why);
        return fd;
    }
    if (rl == 1) /* the root is "/" */
        sub = real + 1;
    else if (strncmp(real, in->root_real, rl) == 0 && real[rl] == '/')
        sub = real + rl + 1;
    else {
        free(real);
        *status = 403;
        *why = "outside the root";
        return -1;
    }
    /* real has no symlinks left, so each component is opened with
     * O_NOFOLLOW: a symlink swapped in since realpath fails (ELOOP, 403)
     * rather than leading out of the root. */
    int cur = in->root_fd, fd = -1;
    char *save = NULL;
    char *comp = strtok_r(sub, "/", &save);
    while (comp) {
        char *next = strtok_r(NULL, "/", &save);
        if (next)
            fd = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        else
            fd = openat(cur, comp, OPEN_FLAGS | O_NOFOLLOW);
        e = errno;
        if (cur != in->root_fd)
            close(cur);
        if (fd < 0)
            break;
        cur = fd;
        comp = next;
    }
    free(real);
    if (fd < 0)
        *status = errno_status(e, rel, why);
    return fd;
}

/* ---- answers ------------------------------------------------------------ */

void static_etag(const struct stat *st, char *out, size_t len)
{
    /* Strong: it changes with the file (a WebDAV PUT renames a new one
     * into place), its mtime or its size.  The mtime alone is not enough:
     * file systems keep it to a clock tick, and two writes of one size
     * within a tick would share it.  At most 61 bytes with the NUL. */
    snprintf(out, len, "\"%" PRIx64 "-%" PRIx64 "-%lx-%" PRIx64 "\"", (uint64_t)st->st_ino,
             (uint64_t)st->st_mtim.tv_sec, (unsigned long)st->st_mtim.tv_nsec,
             (uint64_t)st->st_size);
}

static void fail(struct verbd_response *res, int fd, int status, const char *why)
{
    if (fd >= 0)
        close(fd);
    verbd_response_error(res, status, why);
}

/* The regular file at rel for `precompressed`, from the cache or opened
 * (and cached); NULL if there is none. */
static struct file_entry *sibling_entry(const struct static_inst *in, const char *rel)
{
    struct file_entry *e = cache_get(in, rel);
    if (e || cache_known_missing(in, rel))
        return e;
    int status;
    const char *why;
    int fd = static_open(in, rel, &status, &why);
    if (fd < 0) {
        if (status == 404)
            cache_note_missing(in, rel);
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return NULL;
    }
    return cache_put(in, rel, fd, &st);
}

/* Whole seconds: gzip -k and brotli copy the original's time, some of
 * them to the second only. */
static bool not_older(const struct stat *a, const struct stat *b)
{
    return a->st_mtim.tv_sec >= b->st_mtim.tv_sec;
}

/* `precompressed on`: rel.br or rel.gz, whichever the client prefers of
 * those present, regular and not older than e; NULL to send e itself.
 * Caching a sibling may evict an entry, but the least used one: never e,
 * which was just used. */
static struct file_entry *precompressed_of(const struct static_inst *in,
                                           const struct verbd_request *req, const char *rel,
                                           const struct file_entry *e, enum http_coding *coding)
{
    struct accept_encoding ae;
    accept_encoding_init(&ae);
    size_t count = verbd_request_header_count(req);
    for (size_t i = 0; i < count; i++) {
        const char *name, *value;
        size_t nlen, vlen;
        if (verbd_request_header_at(req, i, &name, &nlen, &value, &vlen) == 0 && nlen == 15 &&
            strncasecmp(name, "Accept-Encoding", 15) == 0)
            accept_encoding_add(&ae, value, vlen);
    }
    unsigned offered = 1u << CODING_BR | 1u << CODING_GZIP;
    for (;;) {
        enum http_coding c = accept_encoding_choose(&ae, offered);
        if (c == CODING_IDENTITY)
            return NULL;
        offered &= ~(1u << c);
        char *name;
        if (asprintf(&name, "%s.%s", rel, c == CODING_BR ? "br" : "gz") < 0)
            return NULL;
        struct file_entry *s = sibling_entry(in, name);
        free(name);
        if (s && not_older(&s->st, &e->st)) {
            *coding = c;
            return s;
        }
    }
}

/* A file: validators, preconditions, then 304, 412, 206, 416 or 200.
 * With `precompressed`, the file may be its compressed sibling, sent
 * with the original's type and its own validators and length; every
 * answer then varies with Accept-Encoding. */
static void serve_file(const struct static_inst *in, const struct verbd_request *req,
                       struct verbd_response *res, struct file_entry *e, const char *rel)
{
    const char *type = e->type;
    enum http_coding coding = CODING_IDENTITY;
    if (in->precompressed) {
        struct file_entry *s = precompressed_of(in, req, rel, e, &coding);
        if (s)
            e = s;
    }
    struct validators v = {e->etag, true, e->st.st_mtim.tv_sec};
    uint64_t size = (uint64_t)e->st.st_size;

    switch (cond_evaluate(req, &v)) {
    case COND_FAILED: verbd_response_error(res, 412, NULL); return;
    case COND_NOT_MODIFIED:
        verbd_response_status(res, 304);
        verbd_response_header(res, "ETag", e->etag);
        verbd_response_header(res, "Last-Modified", e->last_modified);
        if (in->precompressed)
            verbd_response_header(res, "Vary", "Accept-Encoding");
        return;
    case COND_PROCEED: break;
    }

    struct byte_range r[RANGE_MAX];
    size_t count = 0;
    enum range_result rr = RANGE_IGNORE;
    size_t rn;
    const char *range = verbd_request_header(req, "Range", &rn);
    if (range && cond_if_range(req, &v))
        rr = range_parse(range, rn, size, r, &count);
    if (rr == RANGE_UNSATISFIABLE) {
        /* Only Content-Range and no body: nothing of the representation
         * can be sent, and a zero-length one has no range at all. */
        char cr[48];
        snprintf(cr, sizeof cr, "bytes */%" PRIu64, size);
        verbd_response_status(res, 416);
        verbd_response_header(res, "Content-Range", cr);
        return;
    }

    if (rr == RANGE_SATISFIABLE) {
        verbd_response_header(res, "ETag", e->etag);
        verbd_response_header(res, "Last-Modified", e->last_modified);
        verbd_response_header(res, "Accept-Ranges", "bytes");
        if (coding != CODING_IDENTITY)
            verbd_response_header(res, "Content-Encoding", http_coding_name(coding));
        if (in->precompressed)
            verbd_response_header(res, "Vary", "Accept-Encoding");
        range_respond(res, e, type, r, count);
        return;
    }
    verbd_response_status(res, 200);
    if (in->precompressed) {
        verbd_response_header(res, "ETag", e->etag);
        verbd_response_header(res, "Last-Modified", e->last_modified);
        verbd_response_header(res, "Accept-Ranges", "bytes");
        verbd_response_header(res, "Content-Type", type);
        if (coding != CODING_IDENTITY)
            verbd_response_header(res, "Content-Encoding", http_coding_name(coding));
        verbd_response_header(res, "Vary", "Accept-Encoding");
    } else {
        verbd_response_header_lines(res, e->fields, e->fields_len);
    }
    cache_respond_range(res, e, 0, size);
}

/* A regular file at rel, open as fd (taken over) with its stat. */
static void serve_opened(const struct static_inst *in, const struct verbd_request *req,
                         struct verbd_response *res, const char *rel, int fd, const struct stat *st)
{
    serve_file(in, req, res, cache_put(in, rel, fd, st), rel);
}

/* A directory requested without its trailing slash: 301 to the path with
 * one, re-encoded, the query kept. */
static void redirect_slash(const struct verbd_request *req, struct verbd_response *res,
                           const char *path)
{
    /* The path is normalised, so it cannot start with "//" (which a client
     * would read as another host); make sure anyway. */
    while (path[0] == '/' && path[1] == '/')
        path++;
    struct buf loc = {0};
    static_url_encode(&loc, path, strlen(path), "!$&'()*+,;=:@/");
    buf_puts(&loc, "/");
    size_t qn;
    const char *q = verbd_request_query(req, &qn);
    if (q) {
        buf_puts(&loc, "?");
        buf_append(&loc, q, qn);
    }
    buf_append(&loc, "", 1);
    verbd_response_error(res, 301, loc.p);
    verbd_response_header(res, "Location", loc.p);
    buf_free(&loc);
}

static void serve_dir(const struct static_inst *in, const struct verbd_request *req,
                      struct verbd_response *res, int fd, const char *rel)
{
    const char *path = verbd_request_path(req);
    size_t plen = strlen(path);
    if (plen == 0 || path[plen - 1] != '/') {
        close(fd);
        redirect_slash(req, res, path);
        return;
    }
    /* Index names resolve from the root again, so that a symlinked index
     * is held to the same rule as any other path. */
    for (size_t i = 0; i < in->nindex; i++) {
        const char *name = in->index[i];
        char *p = static_join(rel, name);
        int status;
        const char *why;
        int ifd = static_open(in, p, &status, &why);
        free(p);
        if (ifd < 0) {
            if (status == 404)
                continue;
            fail(res, fd, status, why);
            return;
        }
        struct stat st;
        if (fstat(ifd, &st) == 0 && S_ISREG(st.st_mode)) {
            close(fd);
            char *index_rel = static_join(rel, name);
            serve_opened(in, req, res, index_rel, ifd, &st);
            free(index_rel);
            return;
        }
        close(ifd); /* a directory or a FIFO named like an index: next */
    }
    if (!in->listing) {
        fail(res, fd, 403, "directory listing is off");
        return;
    }
    /* A listing has no validators, but "*" conditions still apply. */
    struct validators none = {NULL, false, 0};
    switch (cond_evaluate(req, &none)) {
    case COND_FAILED: fail(res, fd, 412, NULL); return;
    case COND_NOT_MODIFIED:
        close(fd);
        verbd_response_status(res, 304);
        return;
    case COND_PROCEED: break;
    }
    const char *sub = verbd_request_subpath(req);
    listing_respond(res, in, rel, path, fd, strcmp(sub, "/") == 0);
}

void static_serve(void *vinst, const struct verbd_request *req, struct verbd_response *res)
{
    const struct static_inst *in = vinst;
    const char *sub = verbd_request_subpath(req);
    const char *rel = sub[0] == '/' ? sub + 1 : sub;
    if (!*rel)
        rel = ".";
    int hidden = static_refuse_hidden(in, req, rel);
    if (hidden) {
        verbd_response_error(res, hidden, NULL);
        return;
    }
    struct file_entry *cached = cache_get(in, rel);
    if (cached) {
        serve_file(in, req, res, cached, rel);
        return;
    }
    if (cache_known_missing(in, rel)) {
        verbd_response_error(res, 404, NULL);
        return;
    }
    int status;
    const char *why;
    int fd = static_open(in, rel, &status, &why);
    if (fd < 0) {
        if (status == 404)
            cache_note_missing(in, rel);
        verbd_response_error(res, status, why);
        return;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        fail(res, fd, 500, NULL);
        return;
    }
    if (S_ISDIR(st.st_mode))
        serve_dir(in, req, res, fd, rel);
    else if (S_ISREG(st.st_mode))
        serve_opened(in, req, res, rel, fd, &st);
    else
        fail(res, fd, 403, "not a regular file or directory");
}

/* Static files are answered at once: the whole response, then finish. */
static void static_start(void *vinst, struct verbd_exchange *x)
{
    static_serve(vinst, verbd_exchange_request(x), verbd_exchange_response(x));
    verbd_finish(x);
}

/* ---- lifecycle ---------------------------------------------------------- */

static void free_index(struct static_inst *in)
{
    for (size_t i = 0; i < in->nindex; i++)
        free(in->index[i]);
    free(in->index);
    in->index = NULL;
    in->nindex = 0;
}

static void static_destroy(void *vinst)
{
    struct static_inst *in = vinst;
    if (!in)
        return;
    cache_free(in->cache);
    close(in->root_fd);
    free(in->root_real);
    free(in->charset);
    mime_types_free(in->mime.types);
    mime_types_free(in->mime.file);
    free_index(in);
    free(in);
    mime_release();
}

/* index NAME...: the files tried, in order, for a directory. */
static int set_index(void *vinst, int argc, const char *const *argv, char *err, size_t errlen)
{
    struct static_inst *in = vinst;
    if (argc < 1) {
        snprintf(err, errlen, "index: expected one or more file names");
        return -1;
    }
    for (int i = 0; i < argc; i++) {
        if (!*argv[i] || strchr(argv[i], '/') || strcmp(argv[i], ".") == 0 ||
            strcmp(argv[i], "..") == 0) {
            snprintf(err, errlen, "index: \"%s\" is not a file name", argv[i]);
            return -1;
        }
    }
    char **names = calloc((size_t)argc, sizeof *names);
    if (!names)
        abort();
    for (int i = 0; i < argc; i++)
        if (!(names[i] = strdup(argv[i])))
            abort();
    free_index(in);
    in->index = names;
    in->nindex = (size_t)argc;
    return 0;
}

static int set_listing(void *vinst, int argc, const char *const *argv, char *err, size_t errlen)
{
    (void)argc;
    struct static_inst *in = vinst;
    return directive_on_off("listing", argv[0], &in->listing, err, errlen);
}

static int set_hidden_files(void *vinst, int argc, const char *const *argv, char *err,
                            size_t errlen)
{
    (void)argc;
    struct static_inst *in = vinst;
    return directive_on_off("hidden_files", argv[0], &in->hidden_files, err, errlen);
}

static int set_precompressed(void *vinst, int argc, const char *const *argv, char *err,
                             size_t errlen)
{
    (void)argc;
    struct static_inst *in = vinst;
    return directive_on_off("precompressed", argv[0], &in->precompressed, err, errlen);
}

static int set_charset(void *vinst, int argc, const char *const *argv, char *err, size_t errlen)
{
    (void)argc;
    struct static_inst *in = vinst;
    return mime_set_charset(&in->charset, argv[0], err, errlen);
}

/* types "TYPE EXT...; ...": what a `types { }` block says, before any
 * file's table. */
static int set_types(void *vinst, int argc, const char *const *argv, char *err, size_t errlen)
{
    (void)argc;
    struct static_inst *in = vinst;
    struct mime_types *t = mime_types_parse(argv[0], strlen(argv[0]), true, err, errlen);
    if (!t)
        return -1;
    mime_types_free(in->mime.types);
    in->mime.types = t;
    return 0;
}

/* mime_types FILE|off: the mime.types file read instead of the system's. */
static int set_mime_types(void *vinst, int argc, const char *const *argv, char *err, size_t errlen)
{
    (void)argc;
    struct static_inst *in = vinst;
    struct mime_types *t = NULL;
    if (strcmp(argv[0], "off") != 0 && !(t = mime_types_load(argv[0], err, errlen)))
        return -1;
    mime_types_free(in->mime.file);
    in->mime.file = t;
    in->mime.no_file = t == NULL;
    return 0;
}

static const struct verbd_directive static_directives[] = {
    {.name = "index", .min_args = 1, .max_args = -1, .set = set_index},
    {.name = "listing", .min_args = 1, .max_args = 1, .set = set_listing},
    {.name = "charset", .min_args = 1, .max_args = 1, .set = set_charset, .inherit = true},
    {.name = "precompressed",
     .min_args = 1,
     .max_args = 1,
     .set = set_precompressed,
     .inherit = true},
    {.name = "types", .min_args = 1, .max_args = 1, .set = set_types, .inherit = true},
    {.name = "mime_types",
     .min_args = 1,
     .max_args = 1,
     .set = set_mime_types,
     .path_args = true,
     .inherit = true},
    {.name = "hidden_files",
     .min_args = 1,
     .max_args = 1,
     .set = set_hidden_files,
     .inherit = true},
    {.name = NULL},
};

static void *static_create(const struct module_env *env, const char *arg, char *err, size_t errlen)
{
    (void)env;
    if (!arg || !*arg) {
        snprintf(err, errlen, "static: a root directory is required");
        return NULL;
    }
    int fd = open(arg, O_PATH | O_DIRECTORY | O_CLOEXEC);
    char *real = fd >= 0 ? realpath(arg, NULL) : NULL;
    if (!real) {
        snprintf(err, errlen, "root %s: %s", arg, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    struct static_inst *in = calloc(1, sizeof *in);
    char **index = malloc(sizeof *index);
    if (!in || !index || !(index[0] = strdup("index.html")) || !(in->charset = strdup("utf-8")))
        abort();
    in->root_fd = fd;
    in->root_real = real;
    in->cache = cache_new();
    in->index = index;
    in->nindex = 1;
    /* Some seccomp filters answer an unknown syscall with EPERM, not
     * ENOSYS: probe once on the root, which must open. */
    if (have_openat2) {
        int probe = openat2_beneath(fd, ".", O_PATH | O_CLOEXEC);
        if (probe >= 0)
            close(probe);
        else if (errno == ENOSYS || errno == EPERM)
            have_openat2 = false;
    }
    mime_acquire();
    return in;
}

/* ---- the share API of static.h ------------------------------------------ */

struct static_inst *static_share_new(const char *root, char *err, size_t errlen)
{
    struct static_inst *in = static_create(NULL, root, err, errlen);
    if (!in)
        return NULL;
    in->listing = true;
    in->hidden_files = true;
    free_index(in);
    return in;
}

void static_share_free(struct static_inst *in)
{
    static_destroy(in);
}

int static_root_fd(const struct static_inst *in)
{
    return in->root_fd;
}

const char *static_root_real(const struct static_inst *in)
{
    return in->root_real;
}

const char *static_content_type(const struct static_inst *in, const char *name)
{
    return mime_content_type(&in->mime, name, in->charset);
}

int static_set_charset(struct static_inst *in, const char *value, char *err, size_t errlen)
{
    return mime_set_charset(&in->charset, value, err, errlen);
}

const struct verbd_module verbd_module_static = {
    .name = "static",
    .root_arg = true,
    .methods = METHOD_BIT(METHOD_GET) | METHOD_BIT(METHOD_HEAD),
    .directives = static_directives,
    .create = static_create,
    .destroy = static_destroy,
    .start = static_start,
};
