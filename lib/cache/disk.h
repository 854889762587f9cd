/* The files of a disk cache zone (docs/cache.md, "The disk store"): one
 * file per entry under DIR/XX/ (XX: the first two hex digits of its
 * name), named "HASH-SERIAL" (the hash of its key and variant, and a
 * number no other entry of the zone had), written under DIR/tmp/ and
 * renamed into place once complete.  A file is a header (a magic, a
 * version, the lengths, the entry's record and checksums) followed by the
 * key, the variant's fields, the head and the body (a body of 4 KiB or
 * more on a 4 KiB boundary of the file, zeros before it). */
#ifndef VERBD_CACHE_DISK_H
#define VERBD_CACHE_DISK_H

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cache/store.h"
#include "core/buf.h"

#define DISK_NAME_MAX 4096

/* What a file holds besides its bytes. */
struct disk_entry {
    uint32_t key_len, vary_len, head_len;
    uint64_t body_len;
    uint64_t serial;
    uint64_t name_hash; /* of the key and the variant */
    uint64_t file_size;
    struct store_meta meta;
};

uint64_t disk_hash(const char *key, size_t key_len, const char *vary, size_t vary_len);

#define DISK_DIRS 256

/* Makes DIR, DIR/00..ff and DIR/tmp if missing (owned by uid:gid unless
 * uid is -1) and checks that files can be made there; moved[i]: DIR/<i>
 * had another owner (its files are given to uid:gid by disk_scan).  -1 +
 * err. */
int disk_prepare(const char *dir, uid_t uid, gid_t gid, bool moved[DISK_DIRS], char *err,
                 size_t errlen);
/* Takes DIR/lock for this process and those it forks (flock): one verbd
 * per directory.  The descriptor, or -1 + err. */
int disk_lock(const char *dir, char *err, size_t errlen);

/* The path of an entry's file; `doomed`: the name it gets once removed
 * while still being read (never loaded again). */
void disk_path(char *out, size_t outlen, const char *dir, uint64_t name_hash, uint64_t serial,
               bool doomed);

/* Writes an entry to a new file under DIR/tmp/ (its path in tmp_out),
 * flushed to the disk first if `sync`.  The file's size, or 0 after
 * removing what was written. */
uint64_t disk_write(const char *dir, const struct disk_entry *e, const char *key, const char *vary,
                    const char *head, const char *body, bool sync, char *tmp_out, size_t tmplen);
/* Flushes the directory of a path (after a rename into it). */
void disk_sync_dir(const char *path);

/* Before the workers start: removes what DIR/tmp/ holds and every file
 * not named as an entry's, gives the files of the moved directories to
 * uid:gid, and finds the highest serial of a file there (*max_serial),
 * reading names only.  Returns how many files were removed. */
unsigned disk_scan(const char *dir, const bool moved[DISK_DIRS], uid_t uid, gid_t gid,
                   uint64_t *max_serial);

/* The load, some files at a time, by the workers: a reader of one
 * directory DIR/XX. */
struct disk_reader {
    DIR *d;
    unsigned sub;
    unsigned char boot[16];
    struct buf bytes;
};
struct disk_read_counts {
    uint64_t kept, removed;
};
/* Opens DIR/<sub>; false if it cannot be read. */
bool disk_reader_open(struct disk_reader *r, const char *dir, unsigned sub);
/* Reads up to `budget` more names: each file of a serial at most `floor`
 * is checked (a torn or foreign one is removed) and a good one given to
 * adopt(e, key, vary, head, arg), which returns false if the entry is
 * not kept (its file is removed).  False once the directory is done
 * (the reader is closed). */
bool disk_reader_next(struct disk_reader *r, uint64_t floor, unsigned budget,
                      bool (*adopt)(const struct disk_entry *e, const char *key, const char *vary,
                                    const char *head, void *arg),
                      void *arg, struct disk_read_counts *counts);
void disk_reader_close(struct disk_reader *r);

#endif
