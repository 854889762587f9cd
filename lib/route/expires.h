/* `expires TIME|max|epoch|off;` in a location: Cache-Control max-age (or
 * no-cache) and Expires on its 2xx and 3xx responses, replacing any the
 * module set, as nginx's expires does. */
#ifndef VERBD_ROUTE_EXPIRES_H
#define VERBD_ROUTE_EXPIRES_H

#include <stddef.h>

struct verbd_exchange;

enum expires_kind {
    EXPIRES_UNSET, /* no directive: the module's fields stay */
    EXPIRES_OFF,   /* `off`: the same, said explicitly */
    EXPIRES_TIME,  /* a lifetime in seconds; negative: already stale */
    EXPIRES_EPOCH, /* `epoch`: stale since 1970, no-cache */
    EXPIRES_MAX,   /* `max`: as far as HTTP caches go */
};

struct expires {
    enum expires_kind kind;
    long long seconds; /* EXPIRES_TIME */
};

/* "1h", "30m", "90" (seconds), "-1" (negative: stale), "max", "epoch",
 * "off".  -1 + err if invalid. */
int expires_parse(const char *value, struct expires *out, char *err, size_t errlen);

/* The session's last chance before the head goes out: sets the fields for
 * the exchange's mapping if its status is 2xx or 3xx. */
void expires_apply(struct verbd_exchange *x);

#endif
