/* htpasswd files: "user:hash" lines, read once per load, and checking a
 * password against an entry. */
#ifndef VERBD_MOD_AUTH_HTPASSWD_H
#define VERBD_MOD_AUTH_HTPASSWD_H

#include <stdbool.h>
#include <stddef.h>

/* The most a login may cost: bcrypt's cost (each step doubles the time),
 * and SHA-crypt's rounds (about the same time at the bound).  A hash runs
 * on a worker's event loop, so this bounds how long one login holds it. */
#define HTPASSWD_BCRYPT_COST_MAX 12
#define HTPASSWD_SHA_ROUNDS_MAX 500000

#define HTPASSWD_FILE_MAX (16 << 20) /* bytes */
#define HTPASSWD_USER_MAX 255

enum htpasswd_scheme { HT_BCRYPT, HT_SHA256, HT_SHA512, HT_APR1 };

struct htpasswd_entry {
    char *user; /* both in the table's text */
    char *hash;
    enum htpasswd_scheme scheme;
};

struct htpasswd {
    char *text; /* the file, split into names and hashes */
    size_t text_len;
    struct htpasswd_entry *v;
    size_t n;
    size_t weak;      /* $apr1$ entries */
    void *crypt_data; /* libcrypt's work area, made on first use */
};

/* Parses a file's contents; `name` is how messages call it.  Blank lines
 * and lines starting with "#" are skipped; "user:hash[:comment]" otherwise.
 * Refused, with the line in err: plain text and DES crypt (which libcrypt
 * would take as plain-text passwords or an 8-character limit), unsalted
 * SHA-1, unknown schemes, a cost over the bound, a user twice.  0, or -1
 * + err; out is empty on failure. */
int htpasswd_parse(const char *name, const char *text, size_t len, struct htpasswd *out, char *err,
                   size_t errlen);

/* Reads and parses the file at path. */
int htpasswd_load(const char *path, struct htpasswd *out, char *err, size_t errlen);

void htpasswd_free(struct htpasswd *h);

/* The entry of user[0, n), or NULL. */
const struct htpasswd_entry *htpasswd_find(const struct htpasswd *h, const char *user, size_t n);

/* Whether pw (NUL-terminated, n bytes) hashes to the entry's hash; the
 * hashes are compared in constant time. */
bool htpasswd_verify(struct htpasswd *h, const struct htpasswd_entry *e, const char *pw, size_t n);

#endif
