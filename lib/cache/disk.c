/* The files of a disk cache zone (disk.h).  A file becomes visible under
 * its name only by a rename once all of it is written, so a crash leaves
 * either the whole entry or a file under tmp/ that the next load removes.
 * Without fsync a power loss may still leave a renamed file that is
 * shorter, or holes of zeros: the load checks the size, the checksum of
 * the header, key, variant and head, and, for a file written unflushed
 * since another boot, the checksum of the body too. */
#include "cache/disk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC "VERBDCE\n"
#define VERSION 2
/* A body of a page or more starts on a page of its own in the file:
 * sendfile then hands TCP whole pages.  A 64 KiB body at an offset that
 * is not (a few hundred bytes in) cost about four times the CPU over
 * loopback: the response no longer fit the segments TCP had room for. */
#define BODY_ALIGN 4096
#define FLAG_SYNCED 1u
#define CHUNK (64 * 1024)

struct header {
    char magic[8];
    uint32_t version;
    uint32_t header_len; /* sizeof(struct header): a record of another layout is foreign */
    uint32_t key_len, vary_len, head_len, flags;
    uint64_t body_len;
    uint64_t serial;
    uint64_t name_hash;
    unsigned char boot[16]; /* the boot it was written in (for unflushed files) */
    struct store_meta meta;
    uint64_t body_sum;
    uint64_t sum; /* of this header (with sum 0), the key, the variant and the head */
};

#define FNV_START DISK_SUM_START

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ c[i]) * 1099511628211ull;
    return h;
}

uint64_t disk_hash(const char *key, size_t key_len, const char *vary, size_t vary_len)
{
    uint64_t h = fnv(FNV_START, key, key_len);
    h = fnv(h, "\n", 1);
    return fnv(h, vary, vary_len);
}

/* This boot's id (zeros if unknown: then no unflushed file is trusted). */
static void boot_id(unsigned char out[16])
{
    memset(out, 0, 16);
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (!f)
        return;
    char text[64];
    if (fgets(text, sizeof text, f)) {
        size_t n = 0;
        for (char *c = text; *c && n < 32; c++) {
            int v = *c >= '0' && *c <= '9' ? *c - '0' : *c >= 'a' && *c <= 'f' ? *c - 'a' + 10 : -1;
            if (v < 0)
                continue;
            out[n / 2] = (unsigned char)(out[n / 2] << 4 | v);
            n++;
        }
    }
    fclose(f);
}

/* Gives a directory made by root to the workers' user; *moved: it had
 * another owner before (so may its files). */
static int give(const char *path, uid_t uid, gid_t gid, bool *moved, char *err, size_t errlen)
{
    struct stat st;
    *moved = uid != (uid_t)-1 && stat(path, &st) == 0 && (st.st_uid != uid || st.st_gid != gid);
    if (uid != (uid_t)-1 && chown(path, uid, gid) < 0) {
        snprintf(err, errlen, "cannot give %s to the user of the workers: %s", path,
                 strerror(errno));
        return -1;
    }
    return 0;
}

int disk_prepare(const char *dir, uid_t uid, gid_t gid, bool moved[DISK_DIRS], char *err,
                 size_t errlen)
{
    char p[DISK_NAME_MAX];
    bool top;
    if (strlen(dir) > DISK_NAME_MAX - 64) {
        snprintf(err, errlen, "the path %s is too long", dir);
        return -1;
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot make %s: %s", dir, strerror(errno));
        return -1;
    }
    struct stat st;
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s is not a directory", dir);
        return -1;
    }
    if (give(dir, uid, gid, &top, err, errlen) < 0)
        return -1;
    for (int i = 0; i <= DISK_DIRS; i++) {
        if (i < DISK_DIRS)
            snprintf(p, sizeof p, "%s/%02x", dir, i);
        else
            snprintf(p, sizeof p, "%s/tmp", dir);
        if (mkdir(p, 0700) < 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot make %s: %s", p, strerror(errno));
            return -1;
        }
        if (give(p, uid, gid, i < DISK_DIRS ? &moved[i] : &top, err, errlen) < 0)
            return -1;
    }
    snprintf(p, sizeof p, "%s/tmp/probe.%ld", dir, (long)getpid());
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot write in %s: %s", dir, strerror(errno));
        return -1;
    }
    close(fd);
    unlink(p);
    return 0;
}

int disk_lock(const char *dir, char *err, size_t errlen)
{
    char p[DISK_NAME_MAX];
    snprintf(p, sizeof p, "%s/lock", dir);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", p, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        snprintf(err, errlen, "%s is in use by another verbd", dir);
        close(fd);
        return -1;
    }
    return fd;
}

void disk_path(char *out, size_t outlen, const char *dir, uint64_t name_hash, uint64_t serial,
               bool doomed)
{
    snprintf(out, outlen, "%s/%02x/%016" PRIx64 "-%016" PRIx64 "%s", dir,
             (unsigned)(name_hash >> 56), name_hash, serial, doomed ? ".gone" : "");
}

static uint64_t front_of(const struct disk_entry *e)
{
    return sizeof(struct header) + (uint64_t)e->key_len + e->vary_len + e->head_len;
}

/* Where the body starts, after the header, key, variant and head
 * (`front` bytes). */
static uint64_t body_at(uint64_t front, uint64_t body_len)
{
    if (body_len < BODY_ALIGN)
        return front;
    return (front + BODY_ALIGN - 1) / BODY_ALIGN * BODY_ALIGN;
}

uint64_t disk_body_at(const struct disk_entry *e, uint64_t body_len)
{
    return body_at(front_of(e), body_len);
}

uint64_t disk_sum(uint64_t sum, const void *p, size_t n)
{
    return fnv(sum, p, n);
}

void disk_tmp_path(char *out, size_t outlen, const char *dir, pid_t pid, unsigned id)
{
    snprintf(out, outlen, "%s/tmp/%ld.%u", dir, (long)pid, id);
}

int disk_begin(const char *dir, const struct disk_entry *e, const char *key, const char *vary,
               const char *head, unsigned *id)
{
    static unsigned counter;
    char tmp[DISK_NAME_MAX];
    *id = counter++;
    disk_tmp_path(tmp, sizeof tmp, dir, getpid(), *id);
    int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    if (!disk_put(fd, sizeof(struct header), key, e->key_len) ||
        !disk_put(fd, sizeof(struct header) + e->key_len, vary, e->vary_len) ||
        !disk_put(fd, sizeof(struct header) + e->key_len + e->vary_len, head, e->head_len)) {
        close(fd);
        unlink(tmp);
        return -1;
    }
    return fd;
}

bool disk_put(int fd, uint64_t at, const void *p, size_t n)
{
    while (n) {
        ssize_t w = pwrite(fd, p, n, (off_t)at);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p = (const char *)p + w;
        n -= (size_t)w;
        at += (uint64_t)w;
    }
    return true;
}

bool disk_end(int fd, const struct disk_entry *e, const char *key, const char *vary,
              const char *head, uint64_t body_sum, bool sync)
{
    struct header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, MAGIC, 8);
    h.version = VERSION;
    h.header_len = sizeof h;
    h.key_len = e->key_len;
    h.vary_len = e->vary_len;
    h.head_len = e->head_len;
    h.flags = sync ? FLAG_SYNCED : 0;
    h.body_len = e->body_len;
    h.serial = e->serial;
    h.name_hash = e->name_hash;
    boot_id(h.boot);
    memcpy(&h.meta, &e->meta, sizeof h.meta);
    h.body_sum = body_sum;
    uint64_t s = fnv(FNV_START, &h, sizeof h);
    s = fnv(s, key, e->key_len);
    s = fnv(s, vary, e->vary_len);
    h.sum = fnv(s, head, e->head_len);
    /* The load takes a file of exactly this size only. */
    struct stat st;
    if (fstat(fd, &st) < 0 || (uint64_t)st.st_size != disk_body_at(e, e->body_len) + e->body_len)
        return false;
    return disk_put(fd, 0, &h, sizeof h) && (!sync || fsync(fd) == 0);
}

uint64_t disk_write(const char *dir, const struct disk_entry *e, const char *key, const char *vary,
                    const char *head, const char *body, bool sync, char *tmp_out, size_t tmplen)
{
    unsigned id;
    int fd = disk_begin(dir, e, key, vary, head, &id);
    if (fd < 0)
        return 0;
    disk_tmp_path(tmp_out, tmplen, dir, getpid(), id);
    uint64_t at = disk_body_at(e, e->body_len);
    bool ok = disk_put(fd, at, body, e->body_len) &&
              disk_end(fd, e, key, vary, head, fnv(FNV_START, body, e->body_len), sync);
    close(fd);
    if (!ok) {
        unlink(tmp_out);
        return 0;
    }
    return at + e->body_len;
}

void disk_sync_dir(const char *path)
{
    char d[DISK_NAME_MAX];
    snprintf(d, sizeof d, "%s", path);
    char *slash = strrchr(d, '/');
    if (!slash)
        return;
    *slash = '\0';
    int fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static bool read_at(int fd, void *p, size_t n, uint64_t at)
{
    while (n) {
        ssize_t r = pread(fd, p, n, (off_t)at);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        p = (char *)p + r;
        n -= (size_t)r;
        at += (uint64_t)r;
    }
    return true;
}

/* Whether the file at fd (named name_hash-serial) is a whole entry; its
 * record in *e and its key, variant and head in `bytes`. */
static bool check_file(int fd, uint64_t name_hash, uint64_t serial, const unsigned char boot[16],
                       struct disk_entry *e, struct buf *bytes)
{
    struct header h;
    struct stat st;
    if (fstat(fd, &st) < 0 || !read_at(fd, &h, sizeof h, 0) || memcmp(h.magic, MAGIC, 8) != 0 ||
        h.version != VERSION || h.header_len != sizeof h || h.key_len > STORE_KEY_MAX ||
        h.vary_len > STORE_VARY_MAX || h.head_len > STORE_HEAD_MAX ||
        h.body_len > (UINT64_C(1) << 40) || h.serial != serial || h.name_hash != name_hash)
        return false;
    uint64_t front = sizeof h + (uint64_t)h.key_len + h.vary_len + h.head_len;
    uint64_t body = body_at(front, h.body_len);
    if ((uint64_t)st.st_size != body + h.body_len)
        return false;
    size_t n = (size_t)h.key_len + h.vary_len + h.head_len;
    buf_reset(bytes);
    buf_reserve(bytes, n + 1);
    if (!read_at(fd, bytes->p, n, sizeof h))
        return false;
    uint64_t sum = h.sum;
    h.sum = 0;
    if (fnv(fnv(FNV_START, &h, sizeof h), bytes->p, n) != sum)
        return false;
    if (disk_hash(bytes->p, h.key_len, bytes->p + h.key_len, h.vary_len) != name_hash)
        return false;
    /* Unflushed, and the machine restarted since: the body may have
     * holes the size does not show. */
    static const unsigned char unknown[16];
    if (!(h.flags & FLAG_SYNCED) &&
        (memcmp(h.boot, boot, 16) != 0 || memcmp(boot, unknown, 16) == 0)) {
        char *chunk = malloc(CHUNK);
        if (!chunk)
            return false;
        uint64_t s = FNV_START;
        bool ok = true;
        for (uint64_t at = 0; ok && at < h.body_len;) {
            size_t take = h.body_len - at < CHUNK ? (size_t)(h.body_len - at) : CHUNK;
            ok = read_at(fd, chunk, take, body + at);
            s = fnv(s, chunk, take);
            at += take;
        }
        free(chunk);
        if (!ok || s != h.body_sum)
            return false;
    }
    bytes->len = n;
    e->key_len = h.key_len;
    e->vary_len = h.vary_len;
    e->head_len = h.head_len;
    e->body_len = h.body_len;
    e->serial = serial;
    e->name_hash = name_hash;
    e->file_size = (uint64_t)st.st_size;
    memcpy(&e->meta, &h.meta, sizeof e->meta);
    return true;
}

/* "HASH-SERIAL": 16 hex digits each, the hash's first two those of its
 * directory. */
static bool parse_name(const char *name, unsigned sub, uint64_t *hash, uint64_t *serial)
{
    if (strlen(name) != 33 || name[16] != '-')
        return false;
    for (int i = 0; i < 33; i++)
        if (i != 16 && !((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
            return false;
    *hash = strtoull(name, NULL, 16);
    *serial = strtoull(name + 17, NULL, 16);
    return (*hash >> 56) == sub;
}

unsigned disk_scan(const char *dir, const bool moved[DISK_DIRS], uid_t uid, gid_t gid,
                   uint64_t *max_serial)
{
    unsigned removed = 0;
    char sub[DISK_NAME_MAX];
    *max_serial = 0;
    for (unsigned i = 0; i <= DISK_DIRS; i++) {
        snprintf(sub, sizeof sub, i < DISK_DIRS ? "%s/%02x" : "%s/tmp", dir, i);
        DIR *d = opendir(sub);
        if (!d)
            continue;
        for (struct dirent *de; (de = readdir(d));) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            uint64_t hash, serial;
            bool good =
                i < DISK_DIRS && parse_name(de->d_name, i, &hash, &serial) &&
                (!moved[i] || fchownat(dirfd(d), de->d_name, uid, gid, AT_SYMLINK_NOFOLLOW) == 0);
            if (good && serial > *max_serial)
                *max_serial = serial;
            if (!good && unlinkat(dirfd(d), de->d_name, 0) == 0)
                removed++;
        }
        closedir(d);
    }
    return removed;
}

bool disk_reader_open(struct disk_reader *r, const char *dir, unsigned sub)
{
    char p[DISK_NAME_MAX];
    snprintf(p, sizeof p, "%s/%02x", dir, sub);
    boot_id(r->boot);
    r->sub = sub;
    r->d = opendir(p);
    return r->d != NULL;
}

bool disk_reader_next(struct disk_reader *r, uint64_t floor, unsigned budget,
                      bool (*adopt)(const struct disk_entry *e, const char *key, const char *vary,
                                    const char *head, void *arg),
                      void *arg, struct disk_read_counts *counts)
{
    struct dirent *de = NULL;
    for (unsigned n = 0; n < budget && (de = readdir(r->d)); n++) {
        uint64_t hash, serial;
        /* Files of this run (above the floor) are in the index already,
         * or were removed from it; anything misnamed went at the scan. */
        if (!parse_name(de->d_name, r->sub, &hash, &serial) || serial > floor)
            continue;
        int fd = openat(dirfd(r->d), de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        struct disk_entry e;
        bool kept = fd >= 0 && check_file(fd, hash, serial, r->boot, &e, &r->bytes);
        if (fd >= 0)
            close(fd);
        if (kept)
            kept = adopt(&e, r->bytes.p, r->bytes.p + e.key_len,
                         r->bytes.p + e.key_len + e.vary_len, arg);
        if (kept)
            counts->kept++;
        else if (unlinkat(dirfd(r->d), de->d_name, 0) == 0)
            counts->removed++;
    }
    if (de)
        return true;
    disk_reader_close(r);
    return false;
}

void disk_reader_close(struct disk_reader *r)
{
    if (r->d)
        closedir(r->d);
    r->d = NULL;
    buf_free(&r->bytes);
}
