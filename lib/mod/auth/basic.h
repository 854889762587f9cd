/* The Basic authentication scheme's credentials (RFC 7617): a pure parser
 * over the Authorization field's value, fuzzed by fuzz/fuzz_htpasswd.c. */
#ifndef VERBD_MOD_AUTH_BASIC_H
#define VERBD_MOD_AUTH_BASIC_H

#include <stddef.h>

/* Decoded credentials are at most this long; longer ones are refused. */
#define BASIC_CREDENTIALS_MAX 1024

struct basic_credentials {
    char text[BASIC_CREDENTIALS_MAX + 1]; /* "user\0password\0" */
    size_t user_len, pass_len;
    const char *user, *pass; /* into text */
};

/* Parses "Basic TOKEN68" (the scheme in any case, OWS around): the token
 * is padded base64 of "user-id:password" without control
 * characters (RFC 7617 §2).  0, or -1 if anything is malformed. */
int basic_parse(const char *value, size_t n, struct basic_credentials *out);

#endif
