/* MD5-crypt (the FreeBSD scheme Apache adopted as "$apr1$"): a digest of
 * password, magic and salt, stirred through 1000 rounds of MD5.  OpenSSL's
 * MD5 does the digests. */
#include "mod/auth/apr1.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char magic[] = "$apr1$";
#define MAGIC_LEN 6
#define SALT_MAX 8

static void md5(EVP_MD_CTX *c, const void *a, size_t an, const void *b, size_t bn, const void *d,
                size_t dn, const void *e, size_t en, unsigned char out[16])
{
    EVP_DigestInit_ex(c, EVP_md5(), NULL);
    EVP_DigestUpdate(c, a, an);
    EVP_DigestUpdate(c, b, bn);
    EVP_DigestUpdate(c, d, dn);
    EVP_DigestUpdate(c, e, en);
    EVP_DigestFinal_ex(c, out, NULL);
}

/* The crypt alphabet, 6 bits per character, least significant first. */
static char *to64(char *p, uint32_t v, int n)
{
    static const char itoa64[] = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    while (n-- > 0) {
        *p++ = itoa64[v & 0x3f];
        v >>= 6;
    }
    return p;
}

int apr1_crypt(const char *pw, size_t n, const char *setting, char out[APR1_HASH_MAX])
{
    if (strncmp(setting, magic, MAGIC_LEN) != 0)
        return -1;
    const char *salt = setting + MAGIC_LEN;
    size_t sn = strcspn(salt, "$");
    if (sn > SALT_MAX)
        sn = SALT_MAX;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c)
        abort();
    unsigned char alt[16], fin[16];
    /* The alternate sum: password, salt, password. */
    md5(c, pw, n, salt, sn, pw, n, "", 0, alt);
    EVP_DigestInit_ex(c, EVP_md5(), NULL);
    EVP_DigestUpdate(c, pw, n);
    EVP_DigestUpdate(c, magic, MAGIC_LEN);
    EVP_DigestUpdate(c, salt, sn);
    for (size_t left = n; left > 0; left -= left > 16 ? 16 : left)
        EVP_DigestUpdate(c, alt, left > 16 ? 16 : left);
    /* One byte per bit of the length: a zero byte for each 1, the first
     * password byte for each 0 (as the original code does). */
    for (size_t bits = n; bits; bits >>= 1)
        EVP_DigestUpdate(c, bits & 1 ? "" : pw, 1);
    EVP_DigestFinal_ex(c, fin, NULL);
    for (int i = 0; i < 1000; i++) {
        const void *first = i & 1 ? (const void *)pw : fin;
        size_t first_n = i & 1 ? n : 16;
        const void *last = i & 1 ? (const void *)fin : pw;
        size_t last_n = i & 1 ? 16 : n;
        unsigned char next[16];
        md5(c, first, first_n, salt, i % 3 ? sn : 0, pw, i % 7 ? n : 0, last, last_n, next);
        memcpy(fin, next, 16);
    }
    EVP_MD_CTX_free(c);
    char *p = out;
    memcpy(p, magic, MAGIC_LEN);
    p += MAGIC_LEN;
    memcpy(p, salt, sn);
    p += sn;
    *p++ = '$';
    static const int order[5][3] = {{0, 6, 12}, {1, 7, 13}, {2, 8, 14}, {3, 9, 15}, {4, 10, 5}};
    for (int k = 0; k < 5; k++)
        p = to64(p,
                 (uint32_t)fin[order[k][0]] << 16 | (uint32_t)fin[order[k][1]] << 8 |
                     fin[order[k][2]],
                 4);
    p = to64(p, fin[11], 2);
    *p = '\0';
    OPENSSL_cleanse(alt, sizeof alt);
    OPENSSL_cleanse(fin, sizeof fin);
    return 0;
}
