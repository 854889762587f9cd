/* The file system under the root: resolution that never leaves it
 * (openat2 RESOLVE_BENEATH, as the static module does), recursive copy and
 * removal that never follow a symlink, and reserved temporary names. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "mod/webdav/internal.h"

bool dav_reserved(const char *rel)
{
    return static_reserved(rel);
}

/* rel beneath the root with `flags`; rel "" is the root itself. */
static int beneath(const struct dav_inst *in, const char *rel, int flags)
{
    static bool no_openat2;
    if (!*rel)
        rel = ".";
    if (!no_openat2) {
        struct open_how how = {
            .flags = (uint64_t)flags,
            .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
        };
        int fd = (int)syscall(SYS_openat2, in->root_fd, rel, &how, sizeof how);
        if (fd >= 0 || errno != ENOSYS)
            return fd;
        no_openat2 = true;
    }
    /* Kernels before 5.6: the static module's checked walk. */
    int status;
    const char *why;
    int fd = static_open(in->st, rel, &status, &why);
    if (fd < 0)
        errno = status == 404 ? ENOENT : EACCES;
    return fd;
}

int dav_stat(const struct dav_inst *in, const char *rel, struct dav_stat *st)
{
    memset(st, 0, sizeof *st);
    /* A name no file system here can hold is the client's error (400),
     * whether or not its parent exists. */
    if (fs_name_too_long(rel)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = beneath(in, rel, O_PATH | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP || errno == EXDEV)
            return 0; /* missing, or outside the root: nothing here */
        return -1;
    }
    struct statx sx;
    int r = statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS | STATX_BTIME, &sx);
    if (r == 0)
        r = fstat(fd, &st->st);
    close(fd);
    if (r != 0)
        return -1;
    if (!S_ISREG(st->st.st_mode) && !S_ISDIR(st->st.st_mode))
        return 0; /* FIFOs, sockets, devices: not resources */
    st->exists = true;
    st->is_dir = S_ISDIR(st->st.st_mode);
    st->btime = (sx.stx_mask & STATX_BTIME) ? (time_t)sx.stx_btime.tv_sec : st->st.st_mtime;
    return 0;
}

int dav_open_dir(const struct dav_inst *in, const char *rel)
{
    return beneath(in, rel, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

char *dav_parent(const char *rel)
{
    const char *s = strrchr(rel, '/');
    size_t n = s ? (size_t)(s - rel) : 0;
    char *p = strndup(rel, n);
    if (!p)
        abort();
    return p;
}

char *dav_join(const char *rel, const char *name)
{
    size_t rl = strlen(rel), nl = strlen(name);
    char *p = malloc(rl + nl + 2);
    if (!p)
        abort();
    if (rl)
        sprintf(p, "%s/%s", rel, name);
    else
        memcpy(p, name, nl + 1);
    return p;
}

int dav_open_parent(const struct dav_inst *in, const char *rel, const char **name)
{
    const char *s = strrchr(rel, '/');
    *name = s ? s + 1 : rel;
    char *parent = dav_parent(rel);
    int fd = dav_open_dir(in, parent);
    free(parent);
    return fd;
}

int dav_remove_tree(int dirfd, const char *name, const char *rel,
                    void (*failed)(void *ctx, const char *rel, int err), void *ctx)
{
    struct stat st;
    int n = 0;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT)
            return 0;
        goto fail;
    }
    if (!S_ISDIR(st.st_mode)) {
        if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
            return 0;
        goto fail;
    }
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        goto fail;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char *child = dav_join(rel, de->d_name);
        n += dav_remove_tree(fd, de->d_name, child, failed, ctx);
        free(child);
    }
    closedir(d);
    if (unlinkat(dirfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
        return n;
    if (n)
        return n; /* not empty because of the failures already told */
fail:
    if (failed)
        failed(ctx, rel, errno);
    return n + 1;
}

static int copy_file(int sdir, const char *sname, int ddir, const char *dname,
                     const struct stat *st, bool do_fsync)
{
    int in = openat(sdir, sname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (in < 0)
        return -1;
    int out = openat(ddir, dname, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st->st_mode & 07777);
    if (out < 0) {
        int e = errno;
        close(in);
        errno = e;
        return -1;
    }
    int r = 0;
    for (;;) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
        if (n > 0)
            continue;
        if (n == 0)
            break;
        if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP) {
            r = -1;
            break;
        }
        /* No copy_file_range between these files: read and write. */
        char buf[65536];
        ssize_t got;
        while ((got = read(in, buf, sizeof buf)) > 0) {
            for (ssize_t off = 0; off < got;) {
                ssize_t w = write(out, buf + off, (size_t)(got - off));
                if (w < 0) {
                    r = -1;
                    goto done;
                }
                off += w;
            }
        }
        if (got < 0)
            r = -1;
        break;
    }
done:
    if (r == 0 && do_fsync && fsync(out) != 0)
        r = -1;
    int e = errno;
    close(in);
    if (close(out) != 0)
        r = -1;
    if (r != 0) {
        unlinkat(ddir, dname, 0);
        errno = e;
    }
    return r;
}

int dav_copy_tree(int sdir, const char *sname, int ddir, const char *dname, bool recursive,
                  bool do_fsync)
{
    struct stat st;
    if (fstatat(sdir, sname, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return -1;
    if (S_ISLNK(st.st_mode)) {
        /* Copied as a link: every later access resolves it beneath the
         * root again, so a link that now points outside is refused. */
        char target[4096];
        ssize_t n = readlinkat(sdir, sname, target, sizeof target - 1);
        if (n < 0)
            return -1;
        target[n] = '\0';
        return symlinkat(target, ddir, dname);
    }
    if (S_ISREG(st.st_mode))
        return copy_file(sdir, sname, ddir, dname, &st, do_fsync);
    if (!S_ISDIR(st.st_mode))
        return 0; /* FIFOs and the like are not resources: not copied */
    if (mkdirat(ddir, dname, (st.st_mode & 07777) | 0700) != 0)
        return -1;
    if (!recursive)
        return 0;
    int s = openat(sdir, sname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (s < 0)
        return -1;
    int d = openat(ddir, dname, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (d < 0) {
        close(s);
        return -1;
    }
    DIR *dir = fdopendir(s);
    if (!dir) {
        close(s);
        close(d);
        return -1;
    }
    int r = 0;
    struct dirent *de;
    while ((de = readdir(dir))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            strncmp(de->d_name, DAV_RESERVED, strlen(DAV_RESERVED)) == 0)
            continue;
        if (dav_copy_tree(s, de->d_name, d, de->d_name, true, do_fsync) != 0) {
            r = -1;
            break;
        }
    }
    int e = errno;
    closedir(dir);
    close(d);
    errno = e;
    return r;
}

void dav_etag(const struct stat *st, char *out, size_t len)
{
    static_etag(st, out, len);
}

void dav_iso_date(time_t t, char *out, size_t len)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
