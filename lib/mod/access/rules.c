/* allow/deny rules: parsing CIDR networks and matching the client's
 * address against them, first match first. */
#include "mod/access/rules.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Whether the first `bits` bits of a and b are equal. */
static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, whole) != 0)
        return false;
    if (!rest)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

/* Clears the bits past the prefix; true if any was set. */
static bool clear_host_bits(uint8_t *addr, size_t len, unsigned bits)
{
    bool had = false;
    for (size_t i = 0; i < len; i++) {
        unsigned keep = bits >= 8 * (i + 1) ? 8 : bits > 8 * i ? bits - 8 * (unsigned)i : 0;
        uint8_t mask = keep ? (uint8_t)(0xff << (8 - keep)) : 0;
        had = had || (addr[i] & ~mask);
        addr[i] &= mask;
    }
    return had;
}

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int access_rule_parse(const char *text, bool allow, struct access_rule *out, char *err,
                      size_t errlen)
{
    const char *name = allow ? "allow" : "deny";
    *out = (struct access_rule){.allow = allow};
    if (strcmp(text, "all") == 0)
        return 0;
    char host[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(text, '/');
    size_t hn = slash ? (size_t)(slash - text) : strlen(text);
    if (hn == 0 || hn >= sizeof host)
        goto bad;
    memcpy(host, text, hn);
    host[hn] = '\0';
    unsigned max;
    if (inet_pton(AF_INET, host, out->addr) == 1) {
        out->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, host, out->addr) == 1) {
        out->family = AF_INET6;
        max = 128;
    } else {
        goto bad;
    }
    out->bits = max;
    if (slash) {
        const char *p = slash + 1;
        unsigned bits = 0;
        if (!*p || strlen(p) > 3)
            goto bad;
        for (; *p; p++) {
            if (*p < '0' || *p > '9')
                goto bad;
            bits = bits * 10 + (unsigned)(*p - '0');
        }
        if (bits > max)
            goto bad;
        out->bits = bits;
    }
    if (out->family == AF_INET6 && out->bits >= 96 && memcmp(out->addr, v4_mapped, 12) == 0) {
        memmove(out->addr, out->addr + 12, 4);
        memset(out->addr + 4, 0, 12);
        out->family = AF_INET;
        out->bits -= 96;
    }
    if (clear_host_bits(out->addr, out->family == AF_INET ? 4 : 16, out->bits)) {
        char net[INET6_ADDRSTRLEN];
        inet_ntop(out->family, out->addr, net, sizeof net);
        snprintf(err, errlen, "%s: \"%s\" has host bits set; it means %s/%u", name, text, net,
                 out->bits);
        return 1;
    }
    return 0;
bad:
    snprintf(err, errlen,
             "%s: \"%s\" is not an address, a network (10.0.0.0/8, 2001:db8::/32) or all", name,
             text);
    return -1;
}

int access_rules_match(const struct access_rule *rules, size_t n, const struct sockaddr *peer)
{
    int family = 0;
    const uint8_t *addr = NULL;
    if (peer && peer->sa_family == AF_INET) {
        family = AF_INET;
        addr = (const uint8_t *)&((const struct sockaddr_in *)(const void *)peer)->sin_addr;
    } else if (peer && peer->sa_family == AF_INET6) {
        addr = (const uint8_t *)&((const struct sockaddr_in6 *)(const void *)peer)->sin6_addr;
        family = AF_INET6;
        if (memcmp(addr, v4_mapped, 12) == 0) {
            family = AF_INET;
            addr += 12;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const struct access_rule *r = &rules[i];
        if (r->family == 0 || (r->family == family && prefix_equal(r->addr, addr, r->bits)))
            return r->allow ? 1 : -1;
    }
    return 0;
}
