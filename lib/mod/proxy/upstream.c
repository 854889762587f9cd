/* The upstream of a proxy mapping: its address, and connections to it,
 * kept alive between requests in each worker. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "mod/proxy/internal.h"

static char *dup_n(const char *s, size_t n)
{
    char *d = strndup(s, n);
    if (!d)
        abort();
    return d;
}

/* "unix:/PATH:" then an optional "/PREFIX". */
static int parse_unix(struct proxy_inst *in, const char *rest, char *err, size_t errlen)
{
    const char *end = strchr(rest, ':');
    size_t n = end ? (size_t)(end - rest) : strlen(rest);
    struct sockaddr_un *sun = (struct sockaddr_un *)&in->up.addr;
    if (n == 0 || rest[0] != '/' || n >= sizeof sun->sun_path) {
        snprintf(err, errlen,
                 "proxy: \"unix:%s\" wants an absolute socket path (http://unix:/run/app.sock:/)",
                 rest);
        return -1;
    }
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, rest, n);
    in->up.addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    size_t name_len = n + 5;
    in->up.name = malloc(name_len + 1);
    if (!in->up.name)
        abort();
    snprintf(in->up.name, name_len + 1, "unix:%.*s", (int)n, rest);
    in->authority = dup_n("localhost", 9);
    in->prefix = dup_n(end && end[1] ? end + 1 : "/", strlen(end && end[1] ? end + 1 : "/"));
    return 0;
}

int upstream_parse(struct proxy_inst *in, const char *url, char *err, size_t errlen)
{
    if (strncasecmp(url, "http://", 7) != 0) {
        snprintf(err, errlen, "proxy: \"%s\" is not an http:// URL%s", url,
                 strncasecmp(url, "https://", 8) == 0 ? " (https upstreams are not supported)"
                                                      : "");
        return -1;
    }
    const char *auth = url + 7;
    if (strncmp(auth, "unix:", 5) == 0)
        return parse_unix(in, auth + 5, err, errlen);
    const char *slash = strchr(auth, '/');
    size_t alen = slash ? (size_t)(slash - auth) : strlen(auth);
    const char *prefix = slash ? slash : "/";
    if (alen == 0 || memchr(auth, '@', alen) || strpbrk(prefix, "?#")) {
        snprintf(err, errlen,
                 "proxy: \"%s\" wants http://HOST[:PORT][/PATH] (no user, query or "
                 "fragment)",
                 url);
        return -1;
    }
    char host[256], port[8] = "80";
    const char *colon = auth[0] == '[' ? memchr(auth, ']', alen) : memchr(auth, ':', alen);
    if (auth[0] == '[') {
        if (!colon || (size_t)(colon - auth - 1) >= sizeof host) {
            snprintf(err, errlen, "proxy: \"%s\": bad IPv6 address", url);
            return -1;
        }
        snprintf(host, sizeof host, "%.*s", (int)(colon - auth - 1), auth + 1);
        colon = colon + 1 < auth + alen && colon[1] == ':' ? colon + 1 : NULL;
    } else {
        size_t hlen = colon ? (size_t)(colon - auth) : alen;
        if (hlen >= sizeof host) {
            snprintf(err, errlen, "proxy: host name too long in \"%s\"", url);
            return -1;
        }
        snprintf(host, sizeof host, "%.*s", (int)hlen, auth);
    }
    if (colon) {
        size_t plen = (size_t)(auth + alen - colon - 1);
        if (plen == 0 || plen >= sizeof port || strspn(colon + 1, "0123456789") < plen) {
            snprintf(err, errlen, "proxy: bad port in \"%s\"", url);
            return -1;
        }
        snprintf(port, sizeof port, "%.*s", (int)plen, colon + 1);
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "proxy: %s: %s", host, gai_strerror(rc));
        return -1;
    }
    memcpy(&in->up.addr, ai->ai_addr, ai->ai_addrlen);
    in->up.addr_len = ai->ai_addrlen;
    freeaddrinfo(ai);
    in->up.name = dup_n(auth, alen);
    in->authority = dup_n(auth, alen);
    in->prefix = dup_n(prefix, strlen(prefix));
    return 0;
}

/* A kept connection is still usable if the upstream neither closed it nor
 * sent anything unasked. */
static bool still_idle(int fd)
{
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

int upstream_connect(struct upstream *u, bool *reused)
{
    while (u->nidle) {
        int fd = u->idle[--u->nidle];
        if (still_idle(fd)) {
            *reused = true;
            return fd;
        }
        close(fd);
    }
    *reused = false;
    int fd = socket(u->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (u->addr.ss_family != AF_UNIX) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    if (connect(fd, (struct sockaddr *)&u->addr, u->addr_len) < 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

void upstream_keep(struct upstream *u, int fd)
{
    if (u->nidle >= u->max_idle) {
        close(fd);
        return;
    }
    if (!u->idle) {
        u->idle = calloc(u->max_idle, sizeof *u->idle);
        if (!u->idle) {
            close(fd);
            return;
        }
    }
    u->idle[u->nidle++] = fd;
}

void upstream_drop_idle(struct upstream *u)
{
    while (u->nidle)
        close(u->idle[--u->nidle]);
    free(u->idle);
    u->idle = NULL;
}
