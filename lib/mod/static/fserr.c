/* File-system errors met on a request path, as statuses: the one mapping
 * the static and webdav modules share, so that every errno gets a
 * deliberate answer and the ones with none are logged. */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "core/log.h"
#include "mod/static/internal.h"

#define STR_(x) #x
#define TOSTR(x) STR_(x)

bool fs_name_too_long(const char *rel)
{
    for (const char *p = rel; *p;) {
        const char *s = strchr(p, '/');
        size_t n = s ? (size_t)(s - p) : strlen(p);
        if (n > NAME_MAX)
            return true;
        if (!s)
            break;
        p = s + 1;
    }
    return false;
}

int fs_status(int e, enum fs_op op, const char *what, const char *rel, const char **why)
{
    const char *detail = NULL;
    int status;
    switch (e) {
    case ENOENT:
    case ENOTDIR:
        /* Reading: nothing is there.  Writing: the parent collection is
         * missing (or is a file), RFC 4918 §9.3.1, §9.7.1. */
        status = op == FS_WRITE ? 409 : 404;
        if (op == FS_WRITE)
            detail = "The parent collection does not exist.";
        break;
    case ENAMETOOLONG:
        /* The client chose the name: its error, and it can do better. */
        status = 400;
        detail = fs_name_too_long(rel)
                     ? "A path segment is longer than NAME_MAX (" TOSTR(NAME_MAX) " bytes)."
                     : "The path is longer than PATH_MAX (" TOSTR(PATH_MAX) " bytes).";
        break;
    case EXDEV: /* RESOLVE_BENEATH: a ".." or an absolute symlink escapes */
    case ELOOP: /* a symlink loop, or a magic link */
        status = 403;
        detail = "outside the root";
        break;
    case EACCES:
    case EPERM:
        status = 403;
        detail = "permission denied";
        break;
    case EROFS:
        status = 403;
        detail = "read-only file system";
        break;
    case ENXIO:  /* a socket */
    case ENODEV: /* a device without a driver */
        status = 403;
        detail = "not a regular file or directory";
        break;
    case ENOSPC:
    case EDQUOT:
        status = 507;
        detail = "no space left for this resource";
        break;
    case EMFILE:
    case ENFILE:
    case ENOMEM:
        status = 503;
        detail = "out of resources";
        break;
    default:
        /* No deliberate answer: the operator must hear of it. */
        status = 500;
        log_msg(LOG_ERROR, "%s /%s: %s", what, rel, strerror(e));
        break;
    }
    if (why)
        *why = detail;
    return status;
}
