/* The method registry: see method.h.  The tokens come from METHOD_LIST only;
 * http_is_token() lives in parse.c, next to the character table it uses. */
#include "http/method.h"

#include <string.h>

static const char *const tokens[METHOD_REGISTERED_COUNT] = {
#define METHOD_TOKEN(id, token) token,
    METHOD_LIST(METHOD_TOKEN)
#undef METHOD_TOKEN
};

/* Token lengths as constants, so that the grouping below is checked by the
 * compiler. */
enum {
#define METHOD_LEN(id, token) METHOD_LEN_##id = sizeof(token) - 1,
    METHOD_LIST(METHOD_LEN)
#undef METHOD_LEN
};

/* Inside `case N:` of the switch below: compare with one registered method
 * of length N. */
#define TRY(id, n)                                                                                 \
    do {                                                                                           \
        _Static_assert(METHOD_LEN_##id == (n), #id " has another length");                         \
        if (token[0] == tokens[METHOD_##id][0] && memcmp(token, tokens[METHOD_##id], (n)) == 0)    \
            return METHOD_##id;                                                                    \
    } while (0)

int method_lookup(const char *token, size_t len)
{
    /* Switch on the length, then compare with the few methods of that
     * length (at most 8).  The unit test checks every method round-trips. */
    switch (len) {
    case 3:
        TRY(GET, 3);
        TRY(PUT, 3);
        TRY(ACL, 3);
        TRY(PRI, 3);
        break;
    case 4:
        TRY(HEAD, 4);
        TRY(POST, 4);
        TRY(BIND, 4);
        TRY(COPY, 4);
        TRY(LINK, 4);
        TRY(LOCK, 4);
        TRY(MOVE, 4);
        break;
    case 5:
        TRY(TRACE, 5);
        TRY(PATCH, 5);
        TRY(QUERY, 5);
        TRY(LABEL, 5);
        TRY(MERGE, 5);
        TRY(MKCOL, 5);
        break;
    case 6:
        TRY(DELETE, 6);
        TRY(REBIND, 6);
        TRY(REPORT, 6);
        TRY(SEARCH, 6);
        TRY(UNBIND, 6);
        TRY(UNLINK, 6);
        TRY(UNLOCK, 6);
        TRY(UPDATE, 6);
        break;
    case 7:
        TRY(CONNECT, 7);
        TRY(OPTIONS, 7);
        TRY(CHECKIN, 7);
        break;
    case 8:
        TRY(CHECKOUT, 8);
        TRY(PROPFIND, 8);
        break;
    case 9: TRY(PROPPATCH, 9); break;
    case 10:
        TRY(MKACTIVITY, 10);
        TRY(MKCALENDAR, 10);
        TRY(ORDERPATCH, 10);
        TRY(UNCHECKOUT, 10);
        break;
    case 11: TRY(MKWORKSPACE, 11); break;
    case 13: TRY(MKREDIRECTREF, 13); break;
    case 15: TRY(VERSION_CONTROL, 15); break;
    case 16: TRY(BASELINE_CONTROL, 16); break;
    case 17: TRY(UPDATEREDIRECTREF, 17); break;
    }
    return METHOD_UNKNOWN;
}

const char *method_name(int id)
{
    return id >= 0 && id < METHOD_REGISTERED_COUNT ? tokens[id] : NULL;
}

size_t method_set_format(method_set set, const char *const *names, char *out, size_t cap)
{
    size_t len = 0;
    if (cap == 0)
        return 0;
    for (int id = 0; id < METHOD_MAX_ID; id++) {
        if (!(set & METHOD_BIT(id)))
            continue;
        const char *name = id < METHOD_REGISTERED_COUNT ? tokens[id] : names ? names[id] : NULL;
        if (!name)
            continue;
        for (const char *s = len ? ", " : ""; *s && len < cap - 1; s++)
            out[len++] = *s;
        for (const char *s = name; *s && len < cap - 1; s++)
            out[len++] = *s;
    }
    out[len] = '\0';
    return len;
}

bool method_is_safe(int id)
{
    static const method_set safe = METHOD_BIT(METHOD_GET) | METHOD_BIT(METHOD_HEAD) |
                                   METHOD_BIT(METHOD_OPTIONS) | METHOD_BIT(METHOD_TRACE) |
                                   METHOD_BIT(METHOD_PROPFIND) | METHOD_BIT(METHOD_QUERY) |
                                   METHOD_BIT(METHOD_REPORT) | METHOD_BIT(METHOD_SEARCH);
    return id >= 0 && id < METHOD_MAX_ID && (safe & METHOD_BIT(id));
}
