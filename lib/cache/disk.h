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

/* The files' checksums: disk_sum(DISK_SUM_START, body, n), or the same
 * piece by piece. */
#define DISK_SUM_START 14695981039346656037ull
uint64_t disk_sum(uint64_t sum, const void *p, size_t n);
/* Where the body of an entry (e's lengths) starts in its file: after the
 * header, key, variant and head, on a 4 KiB boundary if body_len is 4 KiB
 * or more (STORE_UNSTATED: not known yet, so on a boundary). */
uint64_t disk_body_at(const struct disk_entry *e, uint64_t body_len);
/* A file written piece by piece (as an answer streams in): disk_begin
 * makes it under DIR/tmp/ (DIR/tmp/PID.ID, see disk_tmp_path) with the
 * key, variant and head in place and returns its descriptor (read and
 * write), or -1; disk_put writes bytes at an offset; disk_end writes the
 * header last (e: the final lengths, body_sum: the body's checksum),
 * flushed if `sync`, false if the file is not the size e says. */
int disk_begin(const char *dir, const struct disk_entry *e, const char *key, const char *vary,
               const char *head, unsigned *id);
bool disk_put(int fd, uint64_t at, const void *p, size_t n);
bool disk_end(int fd, const struct disk_entry *e, const char *key, const char *vary,
              const char *head, uint64_t body_sum, bool sync);
void disk_tmp_path(char *out, size_t outlen, const char *dir, pid_t pid, unsigned id);
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
