/* The HTTP/1.1 request-head parser (RFC 9112).  A pure function over a
 * buffer: no I/O, no allocation.  Every span points into the caller's
 * buffer and stays valid as long as that buffer does. */
#ifndef VERBD_HTTP_PARSE_H
#define VERBD_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct span {
    const char *p;
    size_t n;
};

enum target_form { TARGET_ORIGIN, TARGET_ABSOLUTE, TARGET_AUTHORITY, TARGET_ASTERISK };
enum body_framing { BODY_NONE, BODY_LENGTH, BODY_CHUNKED };

struct http_field {
    struct span name;  /* as sent (case preserved) */
    struct span value; /* leading/trailing whitespace removed */
};

struct http_limits {
    size_t max_target; /* request-target bytes; beyond: 414 */
    size_t max_header; /* request line + field lines + CRLFs; beyond: 431 */
    size_t max_fields; /* field lines; beyond: 431 (<= the fields array) */
    uint64_t max_body; /* declared Content-Length beyond this: 413 */
};

struct http_request {
    struct span method; /* a valid token, case-sensitive */
    struct span target; /* the request-target as sent */
    enum target_form form;
    struct span path;          /* origin/absolute form: the still-encoded
                                  absolute path ("/" if absolute-form has
                                  none); asterisk: "*"; authority: empty */
    struct span query;         /* after '?', without it; p == NULL if none */
    struct span host;          /* absolute/authority form: from the target;
                                  otherwise the Host field value (may be
                                  empty for HTTP/1.0 without Host) */
    int minor;                 /* HTTP/1.<minor>: 0 or 1 (higher minors are
                                  treated as 1) */
    struct http_field *fields; /* the caller's array */
    size_t nfields;
    enum body_framing framing;
    uint64_t content_length; /* BODY_LENGTH only */
    bool keep_alive;         /* from version and Connection */
    bool expect_continue;    /* Expect: 100-continue on HTTP/1.1 */
    size_t head_len;         /* bytes of the head, final CRLF included */
};

/*
 * Parses the request head at the start of buf[0, len).
 *
 * Returns:
 *   > 0  the head is complete and valid; the value is req->head_len.
 *     0  the head is incomplete and within limits: read more.
 *   < 0  the request is rejected; the value is minus the status to answer
 *        (400, 413, 414, 417, 431, 501, 505) and *why a short, static,
 *        client-safe explanation.  After any rejection the connection's
 *        framing is lost: answer and close.
 *
 * Strictness: line endings must be CRLF (a bare LF or bare CR is 400);
 * whitespace before a field's colon, obs-fold, control characters or NUL,
 * an empty field name and a line without a colon are 400.  HTTP/1.1 needs
 * exactly one valid Host.  Content-Length must be digits only; repeated
 * identical values are accepted, differing ones are 400.  Transfer-Encoding
 * must end in "chunked" (otherwise 400, or 501 if a coding other than
 * chunked appears); chunked more than once is 400; Transfer-Encoding on an
 * HTTP/1.0 request or together with Content-Length is 400.  Asterisk-form
 * is valid only for OPTIONS, authority-form only for CONNECT.
 *
 * A request may be re-parsed from the start as more bytes arrive; the
 * result does not depend on how the bytes were split.
 */
int http_parse_request(const char *buf, size_t len, const struct http_limits *limits,
                       struct http_field *fields, struct http_request *req, const char **why);

/* The field section at buf[i, n): field lines up to and including the
 * empty line, validated as http_parse_request describes, into fields[]
 * (at most max_fields; *nfields set on success).  Returns the offset just
 * past the section, 0 if it is incomplete, or a negative HTTP_FIELDS_*
 * with *why.  Requests and responses share it. */
#define HTTP_FIELDS_MALFORMED (-1)
#define HTTP_FIELDS_TOO_MANY (-2)
long http_parse_fields(const char *buf, size_t i, size_t n, struct http_field *fields,
                       size_t max_fields, size_t *nfields, const char **why);

/* Value of the first field named `name` (ASCII case-insensitive) among
 * fields, or a span with p == NULL; http_field_get looks in a request's. */
struct span http_fields_find(const struct http_field *fields, size_t nfields, const char *name);
struct span http_field_get(const struct http_request *req, const char *name);

/* Iterates over the elements of a comma-separated list (RFC 9110 §5.6.1):
 * stores the next non-empty element, OWS trimmed, in *elem and advances
 * *list past it.  Returns false when no element is left. */
bool http_list_next(struct span *list, struct span *elem);

/* True if the comma-separated list in `value` contains `token`
 * (case-insensitive), e.g. Connection: keep-alive, Upgrade. */
bool http_list_has(struct span value, const char *token);

/* True if s is `name`, ASCII case-insensitively. */
bool http_span_is(struct span s, const char *name);

/* Whether a gateway must not pass the field `name` on: the hop-by-hop
 * fields (RFC 9110 §7.6.1), those it frames itself (Content-Length,
 * Transfer-Encoding, Trailer), and every field the message's Connection
 * fields among fields[0, n) name. */
bool http_hop_by_hop(struct span name, const struct http_field *fields, size_t n);

#endif
