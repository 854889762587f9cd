/* Authorization: Basic, strictly: one scheme, one token68, base64 that
 * decodes, a colon, no control characters.  Anything else is no
 * credentials at all (the guard answers 401). */
#include "mod/auth/basic.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decodes padded base64 (RFC 4648 §4, as RFC 7617 has it) into out (room
 * for cap bytes); the decoded length, or -1. */
static long b64_decode(const char *p, size_t n, char *out, size_t cap)
{
    size_t pad = 0;
    while (n && p[n - 1] == '=' && pad < 2) {
        n--;
        pad++;
    }
    if ((n + pad) % 4 != 0)
        return -1;
    size_t len = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (len > cap)
        return -1;
    unsigned acc = 0;
    int have = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value((unsigned char)p[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        have += 6;
        if (have >= 8) {
            have -= 8;
            out[k++] = (char)((acc >> have) & 0xff);
        }
    }
    /* The bits left over must be zero: one encoding per string. */
    if (have && (acc & ((1u << have) - 1)))
        return -1;
    return (long)k;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

int basic_parse(const char *value, size_t n, struct basic_credentials *out)
{
    while (n && is_ows(value[0])) {
        value++;
        n--;
    }
    while (n && is_ows(value[n - 1]))
        n--;
    if (n < 6 || strncasecmp(value, "Basic", 5) != 0 || value[5] != ' ')
        return -1;
    size_t i = 5;
    while (i < n && value[i] == ' ')
        i++;
    const char *token = value + i;
    size_t tn = n - i;
    if (!tn)
        return -1;
    long len = b64_decode(token, tn, out->text, BASIC_CREDENTIALS_MAX);
    if (len < 0)
        return -1;
    const char *colon = memchr(out->text, ':', (size_t)len);
    if (!colon)
        return -1;
    for (long k = 0; k < len; k++) {
        unsigned char c = (unsigned char)out->text[k];
        if (c < 0x20 || c == 0x7f)
            return -1; /* RFC 7617 §2; a NUL would also cut the password short */
    }
    out->user_len = (size_t)(colon - out->text);
    out->pass_len = (size_t)len - out->user_len - 1;
    out->text[out->user_len] = '\0';
    out->text[len] = '\0';
    out->user = out->text;
    out->pass = out->text + out->user_len + 1;
    return 0;
}
