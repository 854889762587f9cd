/* Upstream groups: members, their choice, passive health and idle
 * connections. */
#include "upstream/upstream.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/settings.h"

#define DEFAULT_KEEPALIVE 16
#define DEFAULT_MAX_FAILS 1
#define DEFAULT_FAIL_TIMEOUT_MS 10000

struct upstream_group *upstream_group_new(const char *name)
{
    struct upstream_group *g = calloc(1, sizeof *g);
    if (!g || !(g->name = strdup(name)))
        abort();
    g->max_idle = DEFAULT_KEEPALIVE;
    g->refs = 1;
    return g;
}

void upstream_group_hold(struct upstream_group *g)
{
    g->refs++;
}

void upstream_group_drop_idle(struct upstream_group *g)
{
    for (size_t i = 0; i < g->n; i++)
        while (g->members[i].idle)
            upstream_conn_close(g->members[i].idle);
}

void upstream_group_release(struct upstream_group *g)
{
    if (!g || --g->refs)
        return;
    upstream_group_drop_idle(g);
    for (size_t i = 0; i < g->n; i++)
        free(g->members[i].name);
    free(g->members);
    free(g->name);
    free(g);
}

/* "unix:/PATH", "HOST:PORT" or "[V6]:PORT" into m's address. */
static int resolve(struct upstream_member *m, const char *addr, char *err, size_t errlen)
{
    if (strncmp(addr, "unix:", 5) == 0) {
        const char *path = addr + 5;
        struct sockaddr_un *sun = (struct sockaddr_un *)&m->addr;
        size_t n = strlen(path);
        if (path[0] != '/' || n >= sizeof sun->sun_path) {
            snprintf(err, errlen, "upstream \"%s\": want unix:/ABSOLUTE/PATH", addr);
            return -1;
        }
        sun->sun_family = AF_UNIX;
        memcpy(sun->sun_path, path, n + 1);
        m->addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
        return 0;
    }
    char host[256];
    const char *port;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close || close[1] != ':' || (size_t)(close - addr - 1) >= sizeof host) {
            snprintf(err, errlen, "upstream \"%s\": want [V6]:PORT", addr);
            return -1;
        }
        snprintf(host, sizeof host, "%.*s", (int)(close - addr - 1), addr + 1);
        port = close + 2;
    } else {
        const char *colon = strrchr(addr, ':');
        size_t hl = colon ? (size_t)(colon - addr) : strlen(addr);
        if (hl == 0 || hl >= sizeof host) {
            snprintf(err, errlen, "upstream \"%s\": want HOST:PORT", addr);
            return -1;
        }
        snprintf(host, sizeof host, "%.*s", (int)hl, addr);
        port = colon ? colon + 1 : "80";
    }
    if (!*port || strspn(port, "0123456789") != strlen(port) || atol(port) > 65535) {
        snprintf(err, errlen, "upstream \"%s\": bad port", addr);
        return -1;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "upstream %s: %s", host, gai_strerror(rc));
        return -1;
    }
    memcpy(&m->addr, ai->ai_addr, ai->ai_addrlen);
    m->addr_len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

static int option_number(const char *v, unsigned long max, unsigned long *out)
{
    char *end;
    unsigned long n = strtoul(v, &end, 10);
    if (!*v || *end || n > max)
        return -1;
    *out = n;
    return 0;
}

int upstream_group_add(struct upstream_group *g, const char *addr, const char *options, char *err,
                       size_t errlen)
{
    struct upstream_member m = {
        .weight = 1, .max_fails = DEFAULT_MAX_FAILS, .fail_timeout_ms = DEFAULT_FAIL_TIMEOUT_MS};
    char opts[256];
    snprintf(opts, sizeof opts, "%s", options ? options : "");
    for (char *save = NULL, *o = strtok_r(opts, " ", &save); o; o = strtok_r(NULL, " ", &save)) {
        unsigned long n;
        uint64_t ms;
        if (strncmp(o, "weight=", 7) == 0 && option_number(o + 7, 1000, &n) == 0 && n > 0) {
            m.weight = (int)n;
        } else if (strncmp(o, "max_fails=", 10) == 0 && option_number(o + 10, 1000, &n) == 0) {
            m.max_fails = (unsigned)n;
        } else if (strncmp(o, "fail_timeout=", 13) == 0 && parse_duration_ms(o + 13, &ms) == 0) {
            m.fail_timeout_ms = ms;
        } else {
            snprintf(err, errlen,
                     "server %s: \"%s\" is not weight=N (1-1000), max_fails=N or "
                     "fail_timeout=DURATION",
                     addr, o);
            return -1;
        }
    }
    if (resolve(&m, addr, err, errlen) < 0)
        return -1;
    struct upstream_member *v = realloc(g->members, (g->n + 1) * sizeof *v);
    if (!v || !(m.name = strdup(addr)))
        abort();
    g->members = v;
    g->members[g->n++] = m;
    return 0;
}

int upstream_group_set(struct upstream_group *g, const char *name, const char *value, char *err,
                       size_t errlen)
{
    unsigned long n;
    if (strcmp(name, "balance") == 0 &&
        (strcmp(value, "least_conn") == 0 || strcmp(value, "round_robin") == 0)) {
        g->least_conn = value[0] == 'l';
    } else if (strcmp(name, "keepalive") == 0 && option_number(value, 1024, &n) == 0) {
        g->max_idle = n;
    } else {
        snprintf(err, errlen, "upstream %s: %s \"%s\" is not valid", g->name, name, value);
        return -1;
    }
    return 0;
}

int upstream_set_add(struct upstream_set *s, struct upstream_group *g, char *err, size_t errlen)
{
    if (upstream_set_find(s, g->name)) {
        snprintf(err, errlen, "duplicate upstream %s", g->name);
        return -1;
    }
    struct upstream_group **v = realloc(s->v, (s->n + 1) * sizeof *v);
    if (!v)
        abort();
    s->v = v;
    s->v[s->n++] = g;
    return 0;
}

struct upstream_group *upstream_set_find(const struct upstream_set *s, const char *name)
{
    for (size_t i = 0; s && i < s->n; i++)
        if (strcmp(s->v[i]->name, name) == 0)
            return s->v[i];
    return NULL;
}

void upstream_set_free(struct upstream_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        upstream_group_release(s->v[i]);
    free(s->v);
    *s = (struct upstream_set){0};
}

struct upstream_member *upstream_pick(struct upstream_group *g, const struct upstream_member * not )
{
    uint64_t now = clock_ms();
    struct upstream_member *best = NULL, *soonest = NULL;
    int total = 0;
    for (size_t i = 0; i < g->n; i++) {
        struct upstream_member *m = &g->members[i];
        if (m == not &&g->n > 1)
            continue;
        if (m->down_until > now) {
            if (!soonest || m->down_until < soonest->down_until)
                soonest = m;
            continue;
        }
        if (g->least_conn) {
            /* Fewest under way per unit of weight; ties by weight. */
            if (!best || (uint64_t)m->active * (uint64_t)best->weight <
                             (uint64_t)best->active * (uint64_t)m->weight)
                best = m;
        } else {
            /* Smooth weighted round robin: each turn every member gains
             * its weight, the highest goes and gives back the total. */
            m->current += m->weight;
            total += m->weight;
            if (!best || m->current > best->current)
                best = m;
        }
    }
    if (best && !g->least_conn)
        best->current -= total;
    if (!best)
        best = soonest ? soonest : (g->n ? &g->members[0] : NULL);
    if (best)
        best->active++;
    return best;
}

void upstream_member_done(struct upstream_member *m, bool ok)
{
    if (m->active)
        m->active--;
    if (ok) {
        m->fails = 0;
        m->down_until = 0;
    } else if (m->max_fails && ++m->fails >= m->max_fails) {
        m->down_until = clock_ms() + m->fail_timeout_ms;
        m->fails = 0;
    }
}

static void unlink_idle(struct upstream_conn *c)
{
    struct upstream_member *m = c->member;
    for (struct upstream_conn **p = &m->idle; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            m->nidle--;
            return;
        }
    }
}

void upstream_conn_close(struct upstream_conn *c)
{
    if (!c->owner)
        unlink_idle(c);
    loop_watch_del(c->loop, &c->watch, true);
    close(c->fd);
    free(c);
}

static void conn_io(void *arg, uint32_t events)
{
    struct upstream_conn *c = arg;
    if (c->owner) {
        c->on_io(c->owner, events);
        return;
    }
    /* Kept: the member closed it, failed, or sent what nobody asked for. */
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        upstream_conn_close(c);
}

struct upstream_conn *upstream_conn_open(struct upstream_group *g, struct upstream_member *m,
                                         struct loop *loop, bool *reused,
                                         void (*on_io)(void *owner, uint32_t events), void *owner)
{
    struct upstream_conn *c = m->idle;
    if (c) {
        unlink_idle(c);
        c->on_io = on_io;
        c->owner = owner;
        *reused = true;
        return c;
    }
    *reused = false;
    int fd = socket(m->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    if (m->addr.ss_family != AF_UNIX) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    if (connect(fd, (struct sockaddr *)&m->addr, m->addr_len) < 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        errno = e;
        return NULL;
    }
    c = calloc(1, sizeof *c);
    if (!c || loop_watch_add(loop, &c->watch, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                             conn_io, c) < 0) {
        int e = c ? errno : ENOMEM;
        free(c);
        close(fd);
        errno = e;
        return NULL;
    }
    *c = (struct upstream_conn){.fd = fd,
                                .group = g,
                                .member = m,
                                .loop = loop,
                                .watch = c->watch,
                                .on_io = on_io,
                                .owner = owner};
    return c;
}

void upstream_conn_keep(struct upstream_conn *c)
{
    struct upstream_member *m = c->member;
    if (m->nidle >= c->group->max_idle) {
        loop_watch_del(c->loop, &c->watch, true); /* owned: in no list */
        close(c->fd);
        free(c);
        return;
    }
    c->owner = NULL;
    c->on_io = NULL;
    c->next = m->idle;
    m->idle = c;
    m->nidle++;
}
