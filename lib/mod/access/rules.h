/* Address rules for `allow` and `deny`: parsed once, matched per request. */
#ifndef VERBD_MOD_ACCESS_RULES_H
#define VERBD_MOD_ACCESS_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sockaddr;

struct access_rule {
    bool allow;
    int family;       /* AF_INET, AF_INET6, or 0 for `all` */
    uint8_t addr[16]; /* the network, host bits cleared (4 bytes for IPv4) */
    unsigned bits;    /* prefix length */
};

/* "all", "ADDR" or "ADDR/BITS", IPv4 or IPv6.  An IPv4-mapped IPv6 network
 * (::ffff:10.0.0.0/104) becomes the IPv4 one it names.  0; 1 with a warning
 * in err (host bits set: they are cleared); -1 + err if malformed. */
int access_rule_parse(const char *text, bool allow, struct access_rule *out, char *err,
                      size_t errlen);

/* The first rule matching the client's address: 1 (allow), -1 (deny), 0
 * (none matches).  An IPv4-mapped IPv6 address is the IPv4 client it is,
 * matched by IPv4 rules; no address (a local socket) matches only `all`. */
int access_rules_match(const struct access_rule *rules, size_t n, const struct sockaddr *peer);

#endif
