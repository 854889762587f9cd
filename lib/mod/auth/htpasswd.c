/* htpasswd files: parsing with every refusal at its line, lookup by user
 * name (sorted, binary search) and verification with libcrypt (bcrypt,
 * SHA-crypt) or apr1.c. */
#include "mod/auth/htpasswd.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mod/auth/apr1.h"

static bool is_crypt64(char c)
{
    return c == '.' || c == '/' || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
           (c >= 'a' && c <= 'z');
}

static bool all_crypt64(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_crypt64(p[i]))
            return false;
    return true;
}

/* "$2y$NN$" + 22 salt + 31 hash characters; the cost bounded.  NULL, or
 * why it is refused (in msg). */
static const char *check_bcrypt(const char *h, char *msg, size_t n)
{
    if (strlen(h) != 60 || h[6] != '$' || h[4] < '0' || h[4] > '9' || h[5] < '0' || h[5] > '9' ||
        !all_crypt64(h + 7, 53))
        return "a malformed bcrypt hash";
    int cost = (h[4] - '0') * 10 + (h[5] - '0');
    if (cost < 4 || cost > 31)
        return "a malformed bcrypt hash (cost outside 4 to 31)";
    if (cost > HTPASSWD_BCRYPT_COST_MAX) {
        snprintf(msg, n,
                 "bcrypt cost %d is over %d (each step doubles the time a login holds a "
                 "worker)",
                 cost, HTPASSWD_BCRYPT_COST_MAX);
        return msg;
    }
    return NULL;
}

/* "$5$" or "$6$", optionally "rounds=N$", a salt of up to 16 characters,
 * "$" and 43 or 86 hash characters. */
static const char *check_sha(const char *h, size_t hash_len, char *msg, size_t n)
{
    const char *p = h + 3;
    unsigned long rounds = 5000;
    if (strncmp(p, "rounds=", 7) == 0) {
        char *end;
        errno = 0;
        if (p[7] < '0' || p[7] > '9')
            return "a malformed SHA-crypt hash (rounds)";
        rounds = strtoul(p + 7, &end, 10);
        if (errno || *end != '$')
            return "a malformed SHA-crypt hash (rounds)";
        p = end + 1;
    }
    const char *dollar = strchr(p, '$');
    if (!dollar || dollar - p > 16)
        return "a malformed SHA-crypt hash (salt)";
    if (strlen(dollar + 1) != hash_len || !all_crypt64(dollar + 1, hash_len))
        return "a malformed SHA-crypt hash";
    if (rounds > HTPASSWD_SHA_ROUNDS_MAX) {
        snprintf(msg, n, "SHA-crypt rounds %lu are over %d (a login would hold a worker too long)",
                 rounds, HTPASSWD_SHA_ROUNDS_MAX);
        return msg;
    }
    return NULL;
}

static const char *check_apr1(const char *h)
{
    const char *salt = h + 6;
    const char *dollar = strchr(salt, '$');
    if (!dollar || dollar - salt > 8 || strlen(dollar + 1) != 22 || !all_crypt64(dollar + 1, 22))
        return "a malformed $apr1$ hash";
    return NULL;
}

/* The scheme of a hash (*s), or why it is refused. */
static const char *classify(const char *h, enum htpasswd_scheme *s, char *msg, size_t n)
{
    if (strncmp(h, "$2y$", 4) == 0 || strncmp(h, "$2b$", 4) == 0 || strncmp(h, "$2a$", 4) == 0) {
        *s = HT_BCRYPT;
        return check_bcrypt(h, msg, n);
    }
    if (strncmp(h, "$5$", 3) == 0 || strncmp(h, "$6$", 3) == 0) {
        *s = h[1] == '5' ? HT_SHA256 : HT_SHA512;
        return check_sha(h, *s == HT_SHA256 ? 43 : 86, msg, n);
    }
    if (strncmp(h, "$apr1$", 6) == 0) {
        *s = HT_APR1;
        return check_apr1(h);
    }
    if (strncmp(h, "{SHA}", 5) == 0)
        return "unsalted SHA-1 ({SHA}) is refused; make the entry with htpasswd -B";
    if (h[0] == '$')
        return "an unsupported scheme (verbd reads bcrypt $2y$ and $2b$, SHA-crypt $6$ and $5$, "
               "and $apr1$)";
    if (strlen(h) == 13 && all_crypt64(h, 13))
        return "DES crypt is refused (only 8 characters of a password count); make the entry "
               "with htpasswd -B";
    return "a plain-text password is refused; make the entry with htpasswd -B";
}

static int by_user(const void *a, const void *b)
{
    return strcmp(((const struct htpasswd_entry *)a)->user,
                  ((const struct htpasswd_entry *)b)->user);
}

void htpasswd_free(struct htpasswd *h)
{
    if (h->text)
        OPENSSL_cleanse(h->text, h->text_len);
    free(h->text);
    free(h->v);
    if (h->crypt_data)
        OPENSSL_cleanse(h->crypt_data, sizeof(struct crypt_data));
    free(h->crypt_data);
    *h = (struct htpasswd){0};
}

int htpasswd_parse(const char *name, const char *text, size_t len, struct htpasswd *out, char *err,
                   size_t errlen)
{
    *out = (struct htpasswd){0};
    if (memchr(text, '\0', len)) {
        snprintf(err, errlen, "%s: a NUL byte: not a text file", name);
        return -1;
    }
    out->text = malloc(len + 1);
    if (!out->text)
        abort();
    memcpy(out->text, text, len);
    out->text[len] = '\0';
    out->text_len = len;
    size_t cap = 0;
    char *line = out->text;
    for (int lineno = 1; line; lineno++) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
            line[--n] = '\0';
        const char *first = line + strspn(line, " \t");
        if (!*first || *first == '#') {
            line = next;
            continue;
        }
        char *colon = strchr(line, ':');
        const char *why = NULL;
        char msg[160];
        enum htpasswd_scheme scheme = HT_BCRYPT;
        if (!colon) {
            why = "no \":\" between user and password hash";
        } else if (colon == line) {
            why = "an empty user name";
        } else if (colon - line > HTPASSWD_USER_MAX) {
            why = "a user name longer than 255 bytes";
        } else {
            for (const unsigned char *p = (const unsigned char *)line; p < (unsigned char *)colon;
                 p++)
                if (*p < 0x20 || *p == 0x7f)
                    why = "a control character in the user name";
        }
        if (why) {
            snprintf(err, errlen, "%s:%d: %s", name, lineno, why);
            htpasswd_free(out);
            return -1;
        }
        *colon = '\0';
        char *hash = colon + 1;
        char *comment = strchr(hash, ':');
        if (comment)
            *comment = '\0';
        if ((why = classify(hash, &scheme, msg, sizeof msg))) {
            snprintf(err, errlen, "%s:%d: user \"%s\": %s", name, lineno, line, why);
            htpasswd_free(out);
            return -1;
        }
        if (out->n == cap) {
            cap = cap ? cap * 2 : 16;
            struct htpasswd_entry *v = realloc(out->v, cap * sizeof *v);
            if (!v)
                abort();
            out->v = v;
        }
        out->v[out->n++] = (struct htpasswd_entry){line, hash, scheme};
        out->weak += scheme == HT_APR1;
        line = next;
    }
    if (out->n)
        qsort(out->v, out->n, sizeof *out->v, by_user);
    for (size_t i = 1; i < out->n; i++) {
        if (strcmp(out->v[i - 1].user, out->v[i].user) == 0) {
            snprintf(err, errlen, "%s: user \"%s\" is listed twice", name, out->v[i].user);
            htpasswd_free(out);
            return -1;
        }
    }
    return 0;
}

int htpasswd_load(const char *path, struct htpasswd *out, char *err, size_t errlen)
{
    *out = (struct htpasswd){0};
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > HTPASSWD_FILE_MAX) {
        snprintf(err, errlen, "%s: %s", path,
                 S_ISREG(st.st_mode) ? "larger than 16 MiB" : "not a regular file");
        close(fd);
        return -1;
    }
    size_t cap = (size_t)st.st_size + 1, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        abort();
    for (;;) {
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            free(buf);
            close(fd);
            return -1;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len == cap) {
            snprintf(err, errlen, "%s: changed while it was read", path);
            free(buf);
            close(fd);
            return -1;
        }
    }
    close(fd);
    int rc = htpasswd_parse(path, buf, len, out, err, errlen);
    OPENSSL_cleanse(buf, len);
    free(buf);
    return rc;
}

const struct htpasswd_entry *htpasswd_find(const struct htpasswd *h, const char *user, size_t n)
{
    size_t lo = 0, hi = h->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *u = h->v[mid].user;
        int c = strncmp(u, user, n);
        if (c == 0)
            c = u[n] ? 1 : 0;
        if (c == 0)
            return &h->v[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

bool htpasswd_verify(struct htpasswd *h, const struct htpasswd_entry *e, const char *pw, size_t n)
{
    const char *got;
    char apr1[APR1_HASH_MAX];
    if (e->scheme == HT_APR1) {
        got = apr1_crypt(pw, n, e->hash, apr1) == 0 ? apr1 : NULL;
    } else {
        if (!h->crypt_data) {
            h->crypt_data = calloc(1, sizeof(struct crypt_data));
            if (!h->crypt_data)
                abort();
        }
        got = crypt_rn(pw, e->hash, h->crypt_data, (int)sizeof(struct crypt_data));
    }
    size_t len = strlen(e->hash);
    bool same = got && strlen(got) == len && CRYPTO_memcmp(got, e->hash, len) == 0;
    OPENSSL_cleanse(apr1, sizeof apr1);
    return same;
}
