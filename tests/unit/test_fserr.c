/* The one mapping from file-system errors to statuses that the static and
 * webdav modules share (DECISIONS: path errors). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "mod/static/internal.h"
#include "unit.h"

static char logpath[64];

static char *read_log(void)
{
    static char text[4096];
    int fd = open(logpath, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, text, sizeof text - 1) : -1;
    if (fd >= 0)
        close(fd);
    text[n > 0 ? n : 0] = '\0';
    return text;
}

int main(void)
{
    snprintf(logpath, sizeof logpath, "/tmp/verbd-fserr-%d.log", (int)getpid());
    char err[256];
    CHECK_INT(log_open(logpath, LOG_INFO, err, sizeof err), 0);

    const char *why = "unset";
    /* Missing: nothing to read; writing, the parent is missing. */
    CHECK_INT(fs_status(ENOENT, FS_READ, "t", "a/b", &why), 404);
    CHECK(why == NULL);
    CHECK_INT(fs_status(ENOTDIR, FS_READ, "t", "a/b", &why), 404);
    CHECK_INT(fs_status(ENOENT, FS_WRITE, "t", "a/b", &why), 409);
    CHECK(why && strstr(why, "parent"));
    CHECK_INT(fs_status(ENOTDIR, FS_WRITE, "t", "a/b", &why), 409);

    /* A segment longer than NAME_MAX: 400 naming the limit. */
    char name[NAME_MAX + 2];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    char rel[NAME_MAX + 16];
    snprintf(rel, sizeof rel, "dir/%s", name);
    CHECK(fs_name_too_long(rel));
    CHECK(fs_name_too_long(name));
    CHECK(!fs_name_too_long(name + 1)); /* exactly NAME_MAX bytes */
    CHECK(!fs_name_too_long(""));
    CHECK(!fs_name_too_long("a/b/c"));
    CHECK_INT(fs_status(ENAMETOOLONG, FS_WRITE, "t", rel, &why), 400);
    CHECK(why && strstr(why, "NAME_MAX (255 bytes)"));
    CHECK_INT(fs_status(ENAMETOOLONG, FS_READ, "t", rel, &why), 400);
    CHECK_INT(fs_status(ENAMETOOLONG, FS_WRITE, "t", "short/path", &why), 400);
    CHECK(why && strstr(why, "PATH_MAX"));

    /* Space and quota: 507; permissions and read-only: 403. */
    CHECK_INT(fs_status(ENOSPC, FS_WRITE, "t", "f", &why), 507);
    CHECK_INT(fs_status(EDQUOT, FS_WRITE, "t", "f", &why), 507);
    CHECK_INT(fs_status(EACCES, FS_WRITE, "t", "f", &why), 403);
    CHECK_INT(fs_status(EPERM, FS_WRITE, "t", "f", &why), 403);
    CHECK_INT(fs_status(EROFS, FS_WRITE, "t", "f", &why), 403);
    CHECK(why && strstr(why, "read-only"));
    CHECK_INT(fs_status(EACCES, FS_READ, "t", "f", &why), 403);
    CHECK_INT(fs_status(ELOOP, FS_READ, "t", "f", &why), 403);
    CHECK_INT(fs_status(EXDEV, FS_READ, "t", "f", &why), 403);
    CHECK_INT(fs_status(EMFILE, FS_READ, "t", "f", &why), 503);

    /* None of those is logged: they are answers, not surprises. */
    CHECK_STR(read_log(), "");

    /* Anything else: 500, and the error log says what and where. */
    CHECK_INT(fs_status(EIO, FS_WRITE, "webdav: rename", "dir/file.txt", &why), 500);
    CHECK(why == NULL);
    const char *log = read_log();
    CHECK(strstr(log, "[error]") != NULL);
    CHECK(strstr(log, "webdav: rename /dir/file.txt: ") != NULL);
    CHECK(strstr(log, strerror(EIO)) != NULL);
    CHECK_INT(fs_status(EFBIG, FS_WRITE, "t", "big", NULL), 500);

    log_close();
    unlink(logpath);
    return unit_report();
}
