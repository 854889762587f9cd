/* Names not served: verbd's own temporary names (the reserved prefix),
 * everywhere and always; and, unless `hidden_files on`, any path segment
 * starting with '.' (.git, .env, .htpasswd), except /.well-known/ (RFC
 * 8615), which exists to be fetched. */
#include <string.h>

#include "mod/static/internal.h"

static bool starts_reserved(const char *seg)
{
    return strncmp(seg, VERBD_RESERVED, sizeof VERBD_RESERVED - 1) == 0;
}

bool static_reserved(const char *rel)
{
    for (const char *p = rel; *p;) {
        if (starts_reserved(p))
            return true;
        const char *s = strchr(p, '/');
        if (!s)
            break;
        p = s + 1;
    }
    return false;
}

bool static_hidden(const struct static_inst *in, const char *rel, bool at_origin_root)
{
    if (strcmp(rel, ".") == 0)
        return false; /* the root itself */
    for (const char *p = rel; *p;) {
        if (starts_reserved(p))
            return true;
        const char *s = strchr(p, '/');
        size_t n = s ? (size_t)(s - p) : strlen(p);
        /* "." and ".." never reach here: the path is normalised. */
        bool well_known =
            at_origin_root && p == rel && n == 11 && memcmp(p, ".well-known", 11) == 0;
        if (p[0] == '.' && !in->hidden_files && !well_known)
            return true;
        if (!s)
            break;
        p = s + 1;
    }
    return false;
}

bool static_entry_hidden(const struct static_inst *in, const char *name)
{
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return true;
    return starts_reserved(name) || (name[0] == '.' && !in->hidden_files);
}

int static_refuse_hidden(const struct static_inst *in, const struct verbd_request *req,
                         const char *rel)
{
    /* /.well-known/ is the origin's: the location must be at "/". */
    const char *path = verbd_request_path(req), *sub = verbd_request_subpath(req);
    return static_hidden(in, rel, strcmp(path, sub) == 0) ? 404 : 0;
}
