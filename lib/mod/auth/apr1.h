/* Apache's "$apr1$" password hash: MD5-crypt with its own magic string.
 * libcrypt knows "$1$" but not this spelling, so verbd computes it. */
#ifndef VERBD_MOD_AUTH_APR1_H
#define VERBD_MOD_AUTH_APR1_H

#include <stddef.h>

/* "$apr1$" + up to 8 salt characters + "$" + 22 hash characters + NUL */
#define APR1_HASH_MAX 38

/* The hash of password pw[0, n) with the salt of `setting` ("$apr1$SALT"
 * or a whole "$apr1$SALT$HASH") into out.  0, or -1 if the setting is not
 * an apr1 one. */
int apr1_crypt(const char *pw, size_t n, const char *setting, char out[APR1_HASH_MAX]);

#endif
