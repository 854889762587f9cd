/* The HTTP/1.1 response-head parser (RFC 9112), the client side of
 * parse.h: a pure function over a buffer, no I/O, no allocation.  Every
 * span points into the caller's buffer.  Used by `verbd probe`. */
#ifndef VERBD_HTTP_RESPONSE_H
#define VERBD_HTTP_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/method.h"
#include "http/parse.h"

/* How the body after the head is delimited (RFC 9112 §6.3). */
enum response_framing {
    RESPONSE_NONE,    /* 1xx, 204, 304, a response to HEAD: no body at all */
    RESPONSE_LENGTH,  /* Content-Length */
    RESPONSE_CHUNKED, /* Transfer-Encoding ending in chunked */
    RESPONSE_CLOSE,   /* read until the server closes the connection */
};

/* Tolerated deviations, reported so that a caller can say so. */
enum {
    RESPONSE_NO_REASON_SP = 1,   /* "HTTP/1.1 200" with no SP after the code */
    RESPONSE_TE_AND_CL = 2,      /* Transfer-Encoding and Content-Length: TE
                                    wins, the connection must not be reused */
    RESPONSE_LENGTH_ON_NONE = 4, /* Content-Length on a 1xx or 204 */
    RESPONSE_TE_FAULTY = 8       /* chunked applied twice, or Transfer-Encoding
                                    in HTTP/1.0 (RFC 9112 §6.1): faulty
                                    framing, the connection must not be reused */
};

struct response_limits {
    size_t max_header; /* status line + field lines + CRLFs */
    size_t max_fields; /* field lines (<= the fields array) */
};

struct http_response {
    int minor;                 /* HTTP/1.<minor>: 0 or 1 (higher: 1) */
    int status;                /* 100..599 */
    struct span reason;        /* may be empty */
    struct http_field *fields; /* the caller's array */
    size_t nfields;
    enum response_framing framing;
    uint64_t content_length; /* Content-Length when sent (framing or not) */
    bool keep_alive;         /* from version and Connection */
    unsigned quirks;         /* RESPONSE_* flags above */
    size_t head_len;         /* bytes of the head, final CRLF included */
};

/*
 * Parses the response head at the start of buf[0, len).  head_request: the
 * request was HEAD, so the response has no body whatever it says.
 *
 * Returns:
 *   > 0  the head is complete and valid; the value is resp->head_len.
 *     0  the head is incomplete and within limits: read more.
 *    -1  the head is malformed or over a limit; *why says how (short,
 *        static).  The connection cannot be used any further.
 *
 * The field rules are the request parser's: CRLF line endings only,
 * obs-fold, whitespace before a colon, an empty name, control characters
 * are errors.  Content-Length must be digits (identical repeats accepted);
 * differing values are an error.  Tolerated, and flagged in quirks: a
 * missing SP after the status code, Transfer-Encoding with Content-Length
 * (TE decides, RFC 9112 §6.3).  A Transfer-Encoding not ending in chunked
 * means read-until-close.  The result does not depend on how the bytes
 * were split.
 */
int http_parse_response(const char *buf, size_t len, const struct response_limits *limits,
                        bool head_request, struct http_field *fields, struct http_response *resp,
                        const char **why);

/* Value of the first field named `name` (ASCII case-insensitive), or a span
 * with p == NULL. */
struct span http_response_field(const struct http_response *resp, const char *name);

/* Parses an Allow value (RFC 9110 §10.2.1, #method) into the set of
 * registered methods it lists (exact, case-sensitive).  *others counts the
 * elements that are valid tokens but not registered methods.  Returns
 * false if an element is not a token. */
bool http_allow_parse(struct span value, method_set *set, size_t *others);

/* True if the Allow value lists exactly the method token m[0, n). */
bool http_allow_has(struct span value, const char *m, size_t n);

#endif
