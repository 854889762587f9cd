/* verbd's temporary names: .verbd-KIND-HOST-PID-COUNTER-RAND, in the
 * target's own directory (so that the final rename never crosses file
 * systems), hidden from every module by the reserved prefix.  A process
 * removes the orphans a crash left: its own node's names whose process is
 * gone, and anyone's older than a day. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "mod/webdav/internal.h"

#define ORPHAN_AGE (24 * 3600)
#define SWEEP_DEPTH_MAX 64

static const char *const kinds[] = {"put", "copy", "move", "trash"};

/* This node's name as it goes into temporary names: no '/', bounded. */
static void node_name(char *out, size_t len)
{
    if (gethostname(out, len) != 0 || !out[0])
        snprintf(out, len, "localhost");
    out[len - 1] = '\0';
    for (char *p = out; *p; p++)
        if (*p == '/' || (unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
            *p = '_';
}

void dav_tmp_name(struct dav_inst *in, const char *kind, char *out, size_t len)
{
    char host[DAV_HOST_MAX + 1];
    node_name(host, sizeof host);
    uint32_t rnd = 0;
    if (getrandom(&rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t)sizeof rnd)
        rnd = (uint32_t)time(NULL) ^ (uint32_t)clock();
    snprintf(out, len, "%s%s-%s-%ld-%u-%08" PRIx32, DAV_RESERVED, kind, host, (long)getpid(),
             ++in->tmp_counter, rnd);
}

/* The digits [p, end) as a number; false if empty or not all digits. */
static bool digits(const char *p, const char *end, unsigned long long *out)
{
    if (p >= end || end - p > 19)
        return false;
    unsigned long long v = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (unsigned)(*p - '0');
    }
    *out = v;
    return true;
}

bool dav_tmp_parse(const char *name, char *host, size_t hostlen, pid_t *pid)
{
    size_t k = strlen(DAV_RESERVED);
    if (strncmp(name, DAV_RESERVED, k) != 0)
        return false;
    const char *p = name + k;
    bool kind = false;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0] && !kind; i++) {
        size_t n = strlen(kinds[i]);
        if (strncmp(p, kinds[i], n) == 0 && p[n] == '-') {
            p += n + 1;
            kind = true;
        }
    }
    if (!kind)
        return false;
    /* HOST-PID-COUNTER-RAND, read from the right: a host may have '-'. */
    const char *end = p + strlen(p);
    const char *d3 = memrchr(p, '-', (size_t)(end - p));
    if (!d3 || end - d3 != 9)
        return false;
    for (const char *q = d3 + 1; q < end; q++)
        if (!strchr("0123456789abcdef", *q))
            return false;
    const char *d2 = memrchr(p, '-', (size_t)(d3 - p));
    unsigned long long counter, pidv;
    if (!d2 || !digits(d2 + 1, d3, &counter))
        return false;
    const char *d1 = memrchr(p, '-', (size_t)(d2 - p));
    if (!d1 || d1 == p || !digits(d1 + 1, d2, &pidv) || pidv == 0 || pidv > INT32_MAX)
        return false;
    size_t hn = (size_t)(d1 - p);
    if (hn >= hostlen)
        return false;
    memcpy(host, p, hn);
    host[hn] = '\0';
    *pid = (pid_t)pidv;
    return true;
}

bool dav_tmp_orphan(const char *name, time_t changed, time_t now)
{
    char host[DAV_HOST_MAX + 1], self[DAV_HOST_MAX + 1];
    pid_t pid;
    if (!dav_tmp_parse(name, host, sizeof host, &pid))
        return false; /* not a temporary name (the database beside a share, say) */
    if (now - changed > ORPHAN_AGE)
        return true;
    node_name(self, sizeof self);
    /* Another node's process cannot be asked about: only its age counts. */
    return strcmp(host, self) == 0 && kill(pid, 0) != 0 && errno == ESRCH;
}

static void sweep_dir(int dirfd, const char *rel, time_t now, int depth, unsigned *removed)
{
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *name = de->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        /* ctime, not mtime: a rename (a tree set aside) updates it. */
        if (strncmp(name, DAV_RESERVED, strlen(DAV_RESERVED)) == 0) {
            if (dav_tmp_orphan(name, st.st_ctime, now)) {
                char *r = dav_join(rel, name);
                if (dav_remove_tree(dirfd, name, r, NULL, NULL) == 0)
                    ++*removed;
                else
                    log_msg(LOG_WARN, "webdav: cannot remove the leftover /%s", r);
                free(r);
            }
            continue; /* a live one is its owner's business */
        }
        if (!S_ISDIR(st.st_mode) || depth >= SWEEP_DEPTH_MAX)
            continue;
        int sub = openat(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0)
            continue;
        char *r = dav_join(rel, name);
        sweep_dir(sub, r, now, depth + 1, removed);
        free(r);
        close(sub);
    }
    closedir(d);
}

void dav_sweep_orphans(struct dav_inst *in)
{
    if (in->swept_pid == getpid())
        return;
    in->swept_pid = getpid();
    unsigned removed = 0;
    sweep_dir(in->root_fd, "", time(NULL), 0, &removed);
    if (removed)
        log_msg(LOG_INFO, "webdav: removed %u temporary file(s) left by a stopped process",
                removed);
}
