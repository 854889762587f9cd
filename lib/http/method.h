/* The method registry: every IANA-registered HTTP method as a small integer
 * id, and sets of methods as bitsets.  Any other token is still a valid
 * method; it has id METHOD_UNKNOWN unless a caller registers it as an
 * extension (see route/). */
#ifndef VERBD_HTTP_METHOD_H
#define VERBD_HTTP_METHOD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One source for the list.  Order is the order Allow headers list them:
 * the common methods first, then the rest alphabetically. */
/* clang-format off */
#define METHOD_LIST(X)                                                        \
    X(GET, "GET") X(HEAD, "HEAD") X(POST, "POST") X(PUT, "PUT")               \
    X(DELETE, "DELETE") X(CONNECT, "CONNECT") X(OPTIONS, "OPTIONS")           \
    X(TRACE, "TRACE") X(PATCH, "PATCH") X(QUERY, "QUERY") X(ACL, "ACL")       \
    X(BASELINE_CONTROL, "BASELINE-CONTROL") X(BIND, "BIND")                   \
    X(CHECKIN, "CHECKIN") X(CHECKOUT, "CHECKOUT") X(COPY, "COPY")             \
    X(LABEL, "LABEL") X(LINK, "LINK") X(LOCK, "LOCK") X(MERGE, "MERGE")       \
    X(MKACTIVITY, "MKACTIVITY") X(MKCALENDAR, "MKCALENDAR")                   \
    X(MKCOL, "MKCOL") X(MKREDIRECTREF, "MKREDIRECTREF")                       \
    X(MKWORKSPACE, "MKWORKSPACE") X(MOVE, "MOVE")                             \
    X(ORDERPATCH, "ORDERPATCH") X(PRI, "PRI") X(PROPFIND, "PROPFIND")         \
    X(PROPPATCH, "PROPPATCH") X(REBIND, "REBIND") X(REPORT, "REPORT")         \
    X(SEARCH, "SEARCH") X(UNBIND, "UNBIND") X(UNCHECKOUT, "UNCHECKOUT")       \
    X(UNLINK, "UNLINK") X(UNLOCK, "UNLOCK") X(UPDATE, "UPDATE")               \
    X(UPDATEREDIRECTREF, "UPDATEREDIRECTREF")                                 \
    X(VERSION_CONTROL, "VERSION-CONTROL")
/* clang-format on */

enum method_id {
#define METHOD_ENUM(id, token) METHOD_##id,
    METHOD_LIST(METHOD_ENUM)
#undef METHOD_ENUM
        METHOD_REGISTERED_COUNT,
    /* Ids from METHOD_REGISTERED_COUNT up to METHOD_MAX_ID - 1 are free for
     * extension methods a server registers. */
    METHOD_MAX_ID = 63,
    METHOD_UNKNOWN = 63,
};

typedef uint64_t method_set;
#define METHOD_BIT(id) ((method_set)1 << (id))

/* Id of a registered method (exact, case-sensitive), or METHOD_UNKNOWN. */
int method_lookup(const char *token, size_t len);

/* True for the safe methods of RFC 9110 §9.2.1 (GET, HEAD, OPTIONS,
 * TRACE, PROPFIND, QUERY, REPORT, SEARCH): they change nothing. */
bool method_is_safe(int id);

/* Token of a registered method id; NULL for any other id. */
const char *method_name(int id);

/* The longest method name a server takes, and room for any set as an
 * Allow value: every id, each with ", ", and the NUL. */
#define METHOD_NAME_MAX 64
#define METHOD_SET_TEXT_MAX (METHOD_MAX_ID * (METHOD_NAME_MAX + 2) + 1)

/* Writes the set as an Allow value ("GET, HEAD, OPTIONS") in list order,
 * NUL-terminated.  `names` resolves ids beyond the registered ones (may be
 * NULL).  Returns the length, truncating at cap - 1. */
size_t method_set_format(method_set set, const char *const *names, char *out, size_t cap);

/* True if [p, p+n) is a non-empty RFC 9110 token. */
bool http_is_token(const char *p, size_t n);

#endif
