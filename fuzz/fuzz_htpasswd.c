/* libFuzzer harness for the auth guard's parsers: each input is read as
 * an htpasswd file and as an Authorization field value.  A parsed file
 * must hold unique, sorted, non-empty user names with a known scheme, each
 * found again by name; parsed credentials must be a user-id without a
 * colon and a password, with no control character, within the bound.
 * $apr1$ entries (verbd's own MD5-crypt) are checked against the
 * credentials' password; the libcrypt schemes are not hashed here (a
 * bcrypt cost of 12 would make each run take a quarter second).
 *
 *   scripts/fuzz.sh 60 htpasswd
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mod/auth/apr1.h"
#include "mod/auth/basic.h"
#include "mod/auth/htpasswd.h"

static void check_credentials(const struct basic_credentials *c)
{
    if (c->user != c->text || c->pass != c->text + c->user_len + 1)
        abort();
    if (c->user_len + 1 + c->pass_len > BASIC_CREDENTIALS_MAX)
        abort();
    if (strlen(c->user) != c->user_len || strlen(c->pass) != c->pass_len)
        abort(); /* no NUL inside either */
    if (memchr(c->user, ':', c->user_len))
        abort();
    for (size_t i = 0; i < c->user_len + 1 + c->pass_len; i++) {
        unsigned char ch = (unsigned char)c->text[i];
        if (i != c->user_len && (ch < 0x20 || ch == 0x7f))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    struct basic_credentials cred;
    bool have_cred = basic_parse(text, size, &cred) == 0;
    if (have_cred)
        check_credentials(&cred);

    struct htpasswd h;
    char err[512];
    if (htpasswd_parse("fuzz", text, size, &h, err, sizeof err) != 0) {
        if (!memchr(err, '\0', sizeof err) || !err[0])
            abort(); /* a failure always says why */
        return 0;
    }
    for (size_t i = 0; i < h.n; i++) {
        const struct htpasswd_entry *e = &h.v[i];
        if (!e->user[0] || strchr(e->user, ':') || strlen(e->user) > HTPASSWD_USER_MAX)
            abort();
        if (i && strcmp(h.v[i - 1].user, e->user) >= 0)
            abort();
        if (htpasswd_find(&h, e->user, strlen(e->user)) != e)
            abort();
        if (e->scheme == HT_APR1) {
            char out[APR1_HASH_MAX];
            const char *pw = have_cred ? cred.pass : "";
            size_t n = have_cred ? cred.pass_len : 0;
            if (apr1_crypt(pw, n, e->hash, out) != 0 || strncmp(out, "$apr1$", 6) != 0)
                abort();
            /* The hash's salt and shape, whatever the password. */
            size_t salt = strcspn(e->hash + 6, "$");
            if (strlen(out) != 6 + salt + 1 + 22 || memcmp(out, e->hash, 6 + salt + 1) != 0)
                abort();
            if (htpasswd_verify(&h, e, pw, n) != (strcmp(out, e->hash) == 0))
                abort();
        }
    }
    htpasswd_free(&h);
    return 0;
}
