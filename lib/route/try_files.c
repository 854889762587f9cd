/* try_files FILE... URI|=CODE: the first FILE that exists under the
 * location's root serves the request there; otherwise an internal
 * redirect to URI (decided again) or the status CODE. */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "route/redirect.h"
#include "route/vars.h"

int try_files_parse(struct try_files **out, int captures, int argc, const char *const *argv,
                    char *err, size_t errlen)
{
    for (int i = 0; i < argc; i++)
        if (vars_check(argv[i], captures, err, errlen) < 0)
            return -1;
    const char *last = argv[argc - 1];
    int code = 0;
    if (last[0] == '=') {
        char *end;
        long c = strtol(last + 1, &end, 10);
        if (*end || end == last + 1 || c < 200 || c > 599) {
            snprintf(err, errlen, "try_files: \"%s\" is not =CODE (a status, 200-599)", last);
            return -1;
        }
        code = (int)c;
    } else if (last[0] != '/' && last[0] != '$') {
        snprintf(err, errlen, "try_files: the last argument \"%s\" is a URI (/...) or =CODE", last);
        return -1;
    }
    struct try_files *tf = calloc(1, sizeof *tf);
    if (!tf || !(tf->files = calloc((size_t)argc, sizeof *tf->files)))
        abort();
    for (int i = 0; i < argc - 1; i++)
        if (!(tf->files[tf->n++] = strdup(argv[i])))
            abort();
    tf->code = code;
    if (!code && !(tf->uri = strdup(last)))
        abort();
    *out = tf;
    return 0;
}

void try_files_free(struct try_files *tf)
{
    if (!tf)
        return;
    for (size_t i = 0; i < tf->n; i++)
        free(tf->files[i]);
    free(tf->files);
    free(tf->uri);
    free(tf);
}

bool route_file_beneath(int root_fd, const char *rel, bool dir)
{
    struct open_how how = {.flags = O_PATH | O_CLOEXEC,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
    int fd = (int)syscall(SYS_openat2, root_fd, rel, &how, sizeof how);
    struct stat st;
    int r;
    if (fd < 0 && (errno == ENOSYS || errno == EPERM)) {
        /* No openat2: the path is normalised (no ".."), so only a symlink
         * could lead out, and then the module's own open refuses it. */
        r = fstatat(root_fd, rel, &st, 0);
    } else if (fd < 0) {
        return false;
    } else {
        r = fstat(fd, &st);
        close(fd);
    }
    if (r < 0)
        return false;
    return dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode);
}

/* No ".", ".." or empty segment (but a trailing slash): nothing but a
 * plain path is looked up. */
static bool plain_path(const char *p)
{
    while (*p == '/') {
        const char *seg = p + 1;
        size_t n = strcspn(seg, "/");
        if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
            return false;
        if (!n && seg[0] == '/')
            return false;
        p = seg + n;
    }
    return *p == '\0';
}

int try_files_find(const struct try_files *tf, int root_fd, const char *prefix, size_t prefix_len,
                   const struct vars *v, struct buf *found)
{
    for (size_t i = 0; i < tf->n; i++) {
        buf_reset(found);
        vars_expand(tf->files[i], v, VARS_TEXT, found);
        buf_append(found, "", 1);
        const char *path = found->p;
        size_t len = found->len - 1;
        if (len == 0 || path[0] != '/')
            continue;
        /* The file as the location would look it up: below its prefix.
         * A path outside the location does not exist for it. */
        if (prefix_len > 1) {
            size_t n = prefix[prefix_len - 1] == '/' ? prefix_len - 1 : prefix_len;
            if (len < n || memcmp(path, prefix, n) != 0 || (path[n] && path[n] != '/'))
                continue;
            path += n;
        }
        if (*path && !plain_path(path))
            continue;
        bool dir = path[strlen(path) - 1] == '/' || !path[0];
        const char *rel = path[0] == '/' ? path + 1 : path;
        if (!*rel)
            rel = ".";
        if (route_file_beneath(root_fd, rel, dir))
            return (int)i;
    }
    return -1;
}
