/* Percent-decoding and normalisation of a request path, done once per
 * request before routing.  No I/O. */
#ifndef VERBD_HTTP_PATH_H
#define VERBD_HTTP_PATH_H

#include <stddef.h>

/*
 * Decodes and normalises the encoded absolute path in[0, n) (no query) into
 * out, which must have room for n + 1 bytes; out is NUL-terminated.
 *
 * The result starts with '/', has no empty, "." or ".." segments (a run of
 * slashes counts as one), and keeps a trailing slash if the input had one
 * (or its last segment was "." or "..").
 *
 * Returns the length of out, or minus a status:
 *   -400  malformed: not starting with '/', a bad %-escape, a decoded NUL or
 *         other control character, or ".." climbing above the root;
 *   -404  an encoded slash (%2F): no file name contains one.
 */
long path_normalise(const char *in, size_t n, char *out);

#endif
