/* What the config file's directives mean: the tree read by read.c applied
 * to a server through the same setters the API offers, every error with
 * its position. */
#include "conf/conf.h"

#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cache/store.h"
#include "conf/hint.h"
#include "conf/read.h"
#include "core/log.h"
#include "engine/server.h"
#include "engine/tls.h"

#include "core/settings.h"
#include "http/path.h"
#include "route/module.h"
#include "route/route.h"
#include "verbd.h"

/* Top-level directives with their own syntax; every other top-level
 * directive is a server setting with one value. */
const char *const conf_top_directives[] = {
    "listen",
    "location",
    "include",
    "workers",
    "access_log",
    "error_log",
    "server",
    "server_name",
    "tls_certificate",
    "tls_certificate_key",
    "tls_protocols",
    "tls_ciphers",
    "redirect_to_https",
    "upstream",
    "cache_zone",
    NULL,
};

/* The directives of one origin server's TLS, applied together at the end
 * of its block (or of the file): the certificate with its options. */
static const char *const tls_directives[] = {"tls_certificate", "tls_certificate_key",
                                             "tls_protocols", "tls_ciphers", NULL};

/* Modules verbd has or will have, which a build may lack: naming one is
 * "not built in", not "unknown directive". */
static const char *const known_modules[] = {"static", "webdav", "proxy", "status", NULL};

static bool in_list(const char *const *list, const char *name)
{
    for (; *list; list++)
        if (strcmp(*list, name) == 0)
            return true;
    return false;
}

static bool is_module(const char *name)
{
    return module_find(name) || in_list(known_modules, name);
}

/* Any directive name, in any block. */
static bool conf_known(const char *name)
{
    return in_list(conf_top_directives, name) || settings_known(name) ||
           route_directive_known(name) || is_module(name);
}

/* "static" or "static, webdav". */
static void builtin_names(char *out, size_t len)
{
    size_t k = 0;
    out[0] = '\0';
    for (size_t i = 0; verbd_builtin_modules[i] && k < len; i++) {
        int n = snprintf(out + k, len - k, "%s%s", i ? ", " : "", verbd_builtin_modules[i]->name);
        if (n < 0)
            break;
        k += (size_t)n;
    }
}

struct seen_location {
    const char *kind; /* "" a prefix (plain or ^~), "=", "~" or "~*" */
    char *path;       /* decoded; an expression as written */
    struct conf_pos pos;
};

struct seen_listen {
    struct sockaddr_storage addr;
    const char *text;
    struct conf_pos pos;
    const struct site *site; /* the server block it is in, or NULL */
};

struct apply {
    struct verbd_server *srv;
    struct conf_errors *errs;
    bool bind; /* bind listen addresses, or only check them */
    /* The owner of a disk cache zone's files: `user`'s, when root starts
     * workers that run as it (-1: the files stay this process's). */
    uid_t cache_uid;
    gid_t cache_gid;
    struct site *site;                 /* the server block being applied, or NULL */
    const struct conf_dir *tls[4];     /* its tls_* directives, as tls_directives */
    const struct conf_dir *tls_listen; /* its first listen ... tls */
    struct seen_location *locs;        /* of the server (block) being applied */
    size_t nlocs;
    struct seen_listen *listens;
    size_t nlistens;
    /* Module directives at top level and in the server block: the
     * defaults of every location whose module has them (collected before
     * any location is applied; the server's after the top level's, so
     * they win). */
    const struct conf_dir **inherited;
    size_t ninherited;
    size_t nouter;                  /* in a server block: how many of them are the top level's */
    const struct conf_dir **warned; /* inherited ones that warned already */
    size_t nwarned;
};

/* A path argument as written in the file at `at`: relative to its
 * directory. */
static char *file_relative(const struct conf_pos *at, const char *arg)
{
    if (!*arg || strstr(arg, "://")) {
        char *s = strdup(arg);
        if (!s)
            abort();
        return s;
    }
    return conf_resolve(at->file->dir, arg);
}

static bool is_wildcard(const struct sockaddr_storage *s)
{
    if (s->ss_family == AF_INET)
        return ((const struct sockaddr_in *)s)->sin_addr.s_addr == htonl(INADDR_ANY);
    return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)s)->sin6_addr);
}

/* The same IP address (the ports are compared apart). */
static bool same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                  &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
}

/* Whether binding b after a fails: the same port (not 0, which picks a free
 * one each time) on the same address, or on any address of a family whose
 * wildcard is bound too.  IPv6 sockets are IPv6-only. */
static bool listens_clash(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family || (a->ss_family != AF_INET && a->ss_family != AF_INET6))
        return false;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        if (x->sin_port != y->sin_port || x->sin_port == 0)
            return false;
        return x->sin_addr.s_addr == y->sin_addr.s_addr || is_wildcard(a) || is_wildcard(b);
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    if (x->sin6_port != y->sin6_port || x->sin6_port == 0)
        return false;
    return memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0 || is_wildcard(a) ||
           is_wildcard(b);
}

/* An address that an earlier listen already takes: checked, like the rest
 * of listen, whether or not this load binds, so `verbd -t` finds what a
 * start would fail on. */
static bool listen_taken(struct apply *a, const struct conf_dir *d, const struct addrinfo *ai)
{
    struct sockaddr_storage addr = {0};
    memcpy(&addr, ai->ai_addr, ai->ai_addrlen < sizeof addr ? ai->ai_addrlen : sizeof addr);
    for (size_t i = 0; i < a->nlistens; i++) {
        const struct seen_listen *s = &a->listens[i];
        if (!listens_clash(&s->addr, &addr))
            continue;
        if (a->site && s->site != a->site && same_host(&s->addr, &addr))
            continue; /* virtual hosts share an address */
        if (is_wildcard(&s->addr) == is_wildcard(&addr))
            conf_error(a->errs, &d->pos[1], "duplicate listen %s (first at %s:%d)", d->argv[1],
                       s->pos.file->name, s->pos.line);
        else
            conf_error(a->errs, &d->pos[1],
                       "listen %s overlaps listen %s (at %s:%d): an address and its family's "
                       "wildcard cannot both be bound",
                       d->argv[1], s->text, s->pos.file->name, s->pos.line);
        return true;
    }
    struct seen_listen *v = realloc(a->listens, (a->nlistens + 1) * sizeof *v);
    if (!v)
        abort();
    a->listens = v;
    a->listens[a->nlistens++] = (struct seen_listen){addr, d->argv[1], d->pos[1], a->site};
    return false;
}

static void apply_listen(struct apply *a, const struct conf_dir *d)
{
    char flags[64] = "";
    bool tls = false, dflt = false;
    for (int i = 2; i < d->argc; i++) {
        const char *f = d->argv[i];
        if (strcmp(f, "ssl") == 0) {
            conf_error(a->errs, &d->pos[i], "listen: unknown flag \"ssl\" (did you mean tls?)");
            return;
        }
        if (strcmp(f, "default_server") == 0 && !a->site) {
            conf_error(a->errs, &d->pos[i], "listen: default_server belongs in a server block");
            return;
        }
        bool *seen = strcmp(f, "tls") == 0 ? &tls : strcmp(f, "default_server") == 0 ? &dflt : NULL;
        if (!seen || *seen) {
            conf_error(a->errs, &d->pos[i], "listen: unexpected \"%s\" (want tls%s)", f,
                       a->site ? " or default_server" : "");
            return;
        }
        *seen = true;
        size_t k = strlen(flags);
        snprintf(flags + k, sizeof flags - k, "%s%s", k ? " " : "", f);
    }
    if (d->argc < 2) {
        conf_error(a->errs, &d->pos[0], "listen takes one address (ADDR:PORT)%s",
                   a->site ? " and optionally tls and default_server" : " and optionally tls");
        return;
    }
    if (tls && !a->tls_listen)
        a->tls_listen = d;
    char err[256];
    struct addrinfo *ai = listen_resolve(d->argv[1], err, sizeof err);
    if (!ai) {
        conf_error(a->errs, &d->pos[1], "%s", err);
        return;
    }
    bool taken = listen_taken(a, d, ai);
    freeaddrinfo(ai);
    if (taken)
        return;
    /* Without server blocks the addresses are the implicit server's. */
    struct site *s = a->site ? a->site : a->srv->sites[0];
    if (server_site_listen(s, d->argv[1], flags, a->bind, err, sizeof err) < 0)
        conf_error(a->errs, &d->pos[1], "%s", err);
}

/* A setting of the server block being applied, or of the whole server. */
static int set_setting(struct apply *a, const char *name, const char *value, char *err,
                       size_t errlen)
{
    if (a->site)
        return verbd_site_set((struct verbd_site *)a->site, name, value, err, errlen);
    return verbd_server_set(a->srv, name, value, err, errlen);
}

/* A setting whose value is argument i (a path, resolved, if is_path). */
static void set_value(struct apply *a, const struct conf_dir *d, const char *name, int i,
                      bool is_path)
{
    const char *value = d->argv[i];
    char *resolved = NULL;
    if (is_path && strcmp(value, "stdout") != 0 && strcmp(value, "stderr") != 0 &&
        strcmp(value, "off") != 0)
        value = resolved = file_relative(&d->pos[i], value);
    char err[256];
    if (set_setting(a, name, value, err, sizeof err) < 0)
        conf_error(a->errs, &d->pos[i], "%s", err);
    free(resolved);
}

/* min_rate SIZE TIME | off: the setting's value is the two joined. */
static void apply_min_rate(struct apply *a, const struct conf_dir *d)
{
    bool off = d->argc == 2 && strcmp(d->argv[1], "off") == 0;
    if (!off && d->argc != 3) {
        conf_error(a->errs, &d->pos[0],
                   "min_rate takes SIZE TIME (bytes per second, averaged "
                   "over TIME: min_rate 1k 30s;) or off");
        return;
    }
    char value[128], err[256];
    snprintf(value, sizeof value, "%s%s%s", d->argv[1], off ? "" : " ", off ? "" : d->argv[2]);
    if (set_setting(a, "min_rate", value, err, sizeof err) < 0)
        conf_error(a->errs, &d->pos[1], "%s", err);
}

/* A location directive on its mapping; a module directive that takes
 * paths gets them relative to the file it is written in. */
static void set_directive(struct apply *a, struct verbd_mapping *map,
                          const struct verbd_module *module, const struct conf_dir *c, bool warn);

/* Collects the top-level defaults for locations; a malformed one is
 * reported once, by apply_top's checks, and not applied. */
static void collect_inherited(struct apply *a, const struct conf_list *top)
{
    for (size_t i = 0; i < top->n; i++) {
        const struct conf_dir *d = &top->v[i];
        if (d->bad || (d->block && !conf_data_block(d->argv[0])) ||
            !route_directive_inherited(d->argv[0]))
            continue;
        const struct conf_dir **v = realloc(a->inherited, (a->ninherited + 1) * sizeof *v);
        if (!v)
            abort();
        a->inherited = v;
        a->inherited[a->ninherited++] = d;
    }
}

/* Whether two directives are inherited together: the same name, or
 * both of a guard whose directives go as a whole (allow and deny). */
static bool same_key(const char *x, const char *y)
{
    const void *k = route_directive_key(x);
    return k ? k == route_directive_key(y) : strcmp(x, y) == 0;
}

/* Whether a list of directives gives one inherited with `name`. */
static bool gives(const struct conf_dir *const *v, size_t from, size_t to, const char *name)
{
    for (size_t j = from; j < to; j++)
        if (v[j] && same_key(v[j]->argv[0], name))
            return true;
    return false;
}

/* The top-level (and server) defaults the location has and does not set
 * itself.  A value its module refuses is reported once, at the top-level
 * line.  allow and deny go as a whole: a level with either replaces the
 * outer level's list. */
static void apply_inherited(struct apply *a, struct verbd_mapping *map,
                            const struct verbd_module *module, const struct conf_dir *loc)
{
    for (size_t i = 0; i < a->ninherited; i++) {
        const struct conf_dir *d = a->inherited[i];
        if (!d || !route_directive_find(module, d->argv[0]))
            continue;
        bool own = false;
        for (size_t j = 0; j < loc->children.n && !own; j++)
            own = same_key(loc->children.v[j].argv[0], d->argv[0]);
        if (own)
            continue;
        /* The top level's, where the server block gives its own. */
        if (route_directive_key(d->argv[0]) && i < a->nouter &&
            gives(a->inherited, a->nouter, a->ninherited, d->argv[0]))
            continue;
        int before = a->errs->count, warnings = a->errs->warnings;
        bool warned = false;
        for (size_t j = 0; j < a->nwarned && !warned; j++)
            warned = a->warned[j] == d;
        set_directive(a, map, module, d, !warned);
        if (a->errs->count != before)
            a->inherited[i] = NULL;
        /* A warning once, at its line, not once per location. */
        if (a->errs->warnings != warnings) {
            const struct conf_dir **v = realloc(a->warned, (a->nwarned + 1) * sizeof *v);
            if (!v)
                abort();
            a->warned = v;
            a->warned[a->nwarned++] = d;
        }
    }
}

static void apply_location(struct apply *a, const struct conf_dir *d);
static const struct zone *cache_dir_inside(const char *dir);
static const char *location_root(struct apply *a, const struct conf_dir *loc);
static int blamed_arg(const struct conf_dir *d, char *const *argv, const char *err);
static const struct conf_pos *root_pos(struct apply *a, const struct conf_dir *loc);
static void apply_mapping_directives(struct apply *a, struct verbd_mapping *map,
                                     const struct verbd_module *module, const struct conf_dir *d,
                                     const char *shown);

/* upstream NAME { server ADDR [OPTIONS]; least_conn; keepalive N; }: a
 * group for gateway locations, applied before any location names it. */
static void apply_upstream(struct apply *a, const struct conf_dir *d)
{
    if (!d->block || d->argc != 2) {
        conf_error(a->errs, &d->pos[0],
                   "upstream takes a name and a block: upstream NAME { server ADDR; }");
        return;
    }
    char err[256];
    struct verbd_upstream *up = verbd_server_upstream(a->srv, d->argv[1], err, sizeof err);
    if (!up) {
        conf_error(a->errs, &d->pos[1], "%s", err);
        return;
    }
    int servers = 0;
    for (size_t i = 0; i < d->children.n; i++) {
        const struct conf_dir *c = &d->children.v[i];
        const char *name = c->argv[0];
        if (c->bad)
            continue;
        if (strcmp(name, "server") == 0 && c->argc >= 2 && !c->block) {
            char opts[512] = "";
            for (int k = 2; k < c->argc; k++) {
                size_t n = strlen(opts);
                snprintf(opts + n, sizeof opts - n, "%s%s", n ? " " : "", c->argv[k]);
            }
            if (verbd_upstream_server(up, c->argv[1], opts, err, sizeof err) < 0)
                conf_error(a->errs, &c->pos[1], "%s", err);
            servers++;
        } else if (strcmp(name, "least_conn") == 0 && c->argc == 1) {
            verbd_upstream_set(up, "balance", "least_conn", err, sizeof err);
        } else if (strcmp(name, "keepalive") == 0 && c->argc == 2) {
            if (verbd_upstream_set(up, "keepalive", c->argv[1], err, sizeof err) < 0)
                conf_error(a->errs, &c->pos[1], "%s", err);
        } else {
            conf_error(a->errs, &c->pos[0],
                       "in upstream: want server ADDR [weight=N] [max_fails=N] "
                       "[fail_timeout=T]; least_conn; or keepalive N; (not \"%s\")",
                       name);
        }
    }
    if (!servers)
        conf_error(a->errs, &d->pos[0], "upstream %s has no server", d->argv[1]);
}

/* Set while a running server reads its file again (SIGHUP). */
static bool reloading;

/* Who will own a disk zone's files: the workers' `user` (and group), if
 * root starts them; the setting itself is checked where it is applied. */
static void cache_owner(struct apply *a, const struct conf_list *top)
{
    a->cache_uid = (uid_t)-1;
    a->cache_gid = (gid_t)-1;
    if (geteuid() != 0)
        return;
    for (size_t i = 0; i < top->n; i++) {
        const struct conf_dir *d = &top->v[i];
        if (strcmp(d->argv[0], "user") != 0 || d->argc < 2 || d->argc > 3)
            continue;
        const struct passwd *pw = getpwnam(d->argv[1]);
        const struct group *gr = d->argc == 3 ? getgrnam(d->argv[2]) : NULL;
        if (pw && pw->pw_uid != 0 && (d->argc == 2 || gr)) {
            a->cache_uid = pw->pw_uid;
            a->cache_gid = gr ? gr->gr_gid : pw->pw_gid;
        }
    }
}

/* cache_zone NAME memory=SIZE [path=DIR disk=SIZE [fsync=on|off]]: a
 * cache's memory, shared by the workers (made here, before they fork; a
 * reload keeps a zone of the same name and size), and for a disk zone
 * its directory, loaded here; applied before any location names it. */
static void apply_cache_zone(struct apply *a, const struct conf_dir *d)
{
    uint64_t bytes = 0, disk_bytes = 0;
    bool sized = false, disk_sized = false, sync = false;
    const char *path = NULL;
    int fsync_at = 0;
    if (d->block || d->argc < 2) {
        conf_error(a->errs, &d->pos[0], "cache_zone takes a name and memory=SIZE");
        return;
    }
    for (int i = 2; i < d->argc; i++) {
        const char *v = d->argv[i];
        if (strncmp(v, "memory=", 7) == 0 && parse_size(v + 7, &bytes) == 0) {
            sized = true;
        } else if (strncmp(v, "disk=", 5) == 0 && parse_size(v + 5, &disk_bytes) == 0) {
            disk_sized = true;
        } else if (strncmp(v, "path=", 5) == 0 && v[5] == '/') {
            path = v + 5;
        } else if (strcmp(v, "fsync=on") == 0 || strcmp(v, "fsync=off") == 0) {
            sync = strcmp(v, "fsync=on") == 0;
            fsync_at = i;
        } else {
            conf_error(a->errs, &d->pos[i],
                       "cache_zone: want memory=SIZE, path=/DIR, disk=SIZE or fsync=on|off, "
                       "not \"%s\"",
                       v);
            return;
        }
    }
    if (!sized) {
        conf_error(a->errs, &d->pos[0], "cache_zone %s: memory=SIZE is required", d->argv[1]);
        return;
    }
    if (!path != !disk_sized || (fsync_at && !path)) {
        conf_error(a->errs, &d->pos[fsync_at ? fsync_at : 0],
                   "cache_zone %s: path=/DIR and disk=SIZE go together (fsync= with them)",
                   d->argv[1]);
        return;
    }
    char err[512];
    struct zone_disk disk = {path, disk_bytes, sync, a->cache_uid, a->cache_gid};
    enum zone_when when = a->bind ? ZONE_START : reloading ? ZONE_RELOAD : ZONE_CHECK;
    if (!zone_get_disk(d->argv[1], bytes, path ? &disk : NULL, when, err, sizeof err))
        conf_error(a->errs, &d->pos[1], "%s", err);
}

/* server_name NAME...: the names of the server block being applied. */
static void apply_server_name(struct apply *a, const struct conf_dir *d)
{
    if (d->argc < 2)
        conf_error(a->errs, &d->pos[0], "server_name takes one or more names");
    char err[256];
    for (int i = 1; i < d->argc; i++)
        if (verbd_site_name((struct verbd_site *)a->site, d->argv[i], err, sizeof err) < 0)
            conf_error(a->errs, &d->pos[i], "%s", err);
}

/* A tls_* directive: kept until the end of its server, where the
 * certificate is read with its options (apply_tls). */
static void note_tls(struct apply *a, const struct conf_dir *d)
{
    size_t i = 0;
    while (strcmp(tls_directives[i], d->argv[0]) != 0)
        i++;
    int want = i == 0 || i == 1 ? 2 : -1; /* a file; protocols and ciphers: a list */
    if ((want > 0 && d->argc != want) || d->argc < 2) {
        conf_error(a->errs, &d->pos[0], "%s takes %s", d->argv[0],
                   want > 0 ? "one file" : "one or more values");
        return;
    }
    if (a->tls[i]) {
        conf_error(a->errs, &d->pos[0], "duplicate %s (first at line %d)", d->argv[0],
                   a->tls[i]->pos[0].line);
        return;
    }
    a->tls[i] = d;
}

static void warn_at_certificate(void *ctx, const char *msg)
{
    const struct apply *a = ctx;
    conf_warning(a->errs, &a->tls[0]->pos[1], "%s", msg);
}

/* The server's certificate, key and TLS options, once its block (or the
 * file, without server blocks) is read. */
static void apply_tls(struct apply *a, struct site *s)
{
    const struct conf_dir *cert = a->tls[0], *key = a->tls[1];
    if (!cert && !key && a->tls_listen) {
        conf_error(a->errs, &a->tls_listen->pos[0],
                   "listen %s tls needs tls_certificate and tls_certificate_key in this server",
                   a->tls_listen->argv[1]);
    } else if (cert && !key) {
        conf_error(a->errs, &cert->pos[0], "tls_certificate needs tls_certificate_key");
    } else if (key && !cert) {
        conf_error(a->errs, &key->pos[0], "tls_certificate_key needs tls_certificate");
    } else if (cert) {
        char values[2][512] = {"", ""};
        for (int k = 0; k < 2; k++) {
            const struct conf_dir *d = a->tls[2 + k];
            for (int i = 1; d && i < d->argc; i++) {
                size_t n = strlen(values[k]);
                snprintf(values[k] + n, sizeof values[k] - n, "%s%s", n ? " " : "", d->argv[i]);
            }
        }
        char *cert_path = file_relative(&cert->pos[1], cert->argv[1]);
        char *key_path = file_relative(&key->pos[1], key->argv[1]);
        char err[512];
        if (verbd_site_tls((struct verbd_site *)s, cert_path, key_path,
                           a->tls[2] ? values[0] : NULL, a->tls[3] ? values[1] : NULL, err,
                           sizeof err) < 0)
            conf_error(a->errs, &cert->pos[1], "%s", err);
        else
            tls_config_check(s->tls, warn_at_certificate, a);
        free(cert_path);
        free(key_path);
    }
    memset(a->tls, 0, sizeof a->tls);
    a->tls_listen = NULL;
}

/* A directive at top level (a->site NULL) or in a server block. */
/* rewrite, return and error_page in a server (or at the top level of a
 * file without server blocks): the server's own, run before a location
 * is chosen; error_page is also the default of its locations. */
static void apply_server_rule(struct apply *a, const struct conf_dir *d, bool has_servers)
{
    const char *name = d->argv[0];
    if (has_servers && !a->site) {
        if (strcmp(name, "error_page") != 0)
            conf_error(a->errs, &d->pos[0], "%s belongs in a server { } or a location", name);
        return;
    }
    if (d->bad)
        return;
    if (d->block) {
        conf_error(a->errs, &d->open, "%s does not take a block", name);
        return;
    }
    struct site *site = a->site ? a->site : a->srv->sites[0];
    char err[512];
    if (route_table_set(&site->routes, name, d->argc - 1, (const char *const *)d->argv + 1, err,
                        sizeof err) < 0)
        conf_error(a->errs, &d->pos[blamed_arg(d, d->argv + 1, err)], "%s", err);
}

static void apply_top(struct apply *a, const struct conf_dir *d, bool has_servers)
{
    const char *name = d->argv[0];
    if (strcmp(name, "server") == 0 || strcmp(name, "upstream") == 0 ||
        strcmp(name, "cache_zone") == 0) {
        if (a->site)
            conf_error(a->errs, &d->pos[0], "%s is not allowed inside server", name);
        return; /* upstream: before everything else; server: after the top level */
    }
    bool per_server = strcmp(name, "location") == 0 || strcmp(name, "listen") == 0 ||
                      in_list(tls_directives, name) || strcmp(name, "redirect_to_https") == 0;
    if (has_servers && !a->site && per_server) {
        conf_error(a->errs, &d->pos[0],
                   "%s is not allowed at the top level of a file with server blocks: put it "
                   "in a server { }",
                   name);
        return;
    }
    if (strcmp(name, "location") == 0) {
        apply_location(a, d);
        return;
    }
    if (!conf_known(name)) {
        char hint[256];
        conf_hint(name, false, hint, sizeof hint);
        conf_error(a->errs, &d->pos[0], "unknown directive \"%s\"%s", name, hint);
        return;
    }
    if (route_server_directive(name)) {
        apply_server_rule(a, d, has_servers);
        return;
    }
    if (route_directive_inherited(name))
        return; /* a default for the locations (apply_location) */
    if (!in_list(conf_top_directives, name) && !settings_known(name)) {
        conf_error(a->errs, &d->pos[0], "%s is only allowed inside location", name);
        return;
    }
    if (!a->site && strcmp(name, "server_name") == 0) {
        conf_error(a->errs, &d->pos[0], "server_name belongs in a server { } block");
        return;
    }
    if (a->site && !per_server && strcmp(name, "server_name") != 0 && !site_setting_allowed(name)) {
        conf_error(a->errs, &d->pos[0],
                   "%s is server-wide: set it at the top level, not in a server", name);
        return;
    }
    if (d->block) {
        conf_error(a->errs, &d->open, "%s does not take a block", name);
        return;
    }
    if (d->bad)
        return;
    if (strcmp(name, "server_name") == 0) {
        apply_server_name(a, d);
    } else if (in_list(tls_directives, name)) {
        note_tls(a, d);
    } else if (strcmp(name, "redirect_to_https") == 0) {
        if (d->argc != 1)
            conf_error(a->errs, &d->pos[1], "redirect_to_https takes no arguments");
        else
            (a->site ? a->site : a->srv->sites[0])->redirect_to_https = true;
    } else if (strcmp(name, "listen") == 0) {
        apply_listen(a, d);
    } else if (strcmp(name, "error_log") == 0) {
        if (d->argc < 2 || d->argc > 3) {
            conf_error(a->errs, &d->pos[0],
                       "error_log takes a destination (PATH, stderr or off) and an optional "
                       "level");
            return;
        }
        set_value(a, d, "error_log", 1, true);
        if (d->argc == 3)
            set_value(a, d, "log_level", 2, false);
    } else if (strcmp(name, "min_rate") == 0) {
        apply_min_rate(a, d);
    } else if (strcmp(name, "user") == 0 && (d->argc == 2 || d->argc == 3)) {
        /* user NAME [GROUP]: the setting's value is the two joined. */
        char value[512], err[256];
        snprintf(value, sizeof value, "%s%s%s", d->argv[1], d->argc == 3 ? " " : "",
                 d->argc == 3 ? d->argv[2] : "");
        if (set_setting(a, "user", value, err, sizeof err) < 0)
            conf_error(a->errs, &d->pos[strstr(err, "group") ? d->argc - 1 : 1], "%s", err);
    } else if (d->argc != 2) {
        conf_error(a->errs, &d->pos[0], "%s takes one value", name);
    } else {
        set_value(a, d, name, 1, strcmp(name, "access_log") == 0);
    }
}

/* Checks a location block's directive names and finds its module
 * directive; NULL if it has none (reported) or the one it names is not
 * built in.  An unknown name may be the module misspelt: then that is the
 * error, not a missing module. */
static const struct conf_dir *location_module(struct apply *a, const struct conf_dir *loc,
                                              const char *shown)
{
    const struct conf_dir *mod = NULL;
    bool missing = true, unknown = false;
    char builtin[256];
    builtin_names(builtin, sizeof builtin);
    for (size_t i = 0; i < loc->children.n; i++) {
        const struct conf_dir *c = &loc->children.v[i];
        const char *name = c->argv[0];
        bool known = true;
        if (module_find(name)) {
            missing = false;
            if (mod)
                conf_error(a->errs, &c->pos[0],
                           "location %s already has a module (%s, line %d); one module per "
                           "location",
                           shown, mod->argv[0], mod->pos[0].line);
            else
                mod = c;
        } else if (is_module(name)) {
            missing = false;
            conf_error(a->errs, &c->pos[0], "module %s is not built into this verbd (built in: %s)",
                       name, builtin);
        } else if (strcmp(name, "location") == 0) {
            conf_error(a->errs, &c->pos[0], "location is not allowed inside location");
            known = false;
        } else if (route_directive_known(name)) {
            /* applied once the mapping exists */
        } else if (conf_known(name)) {
            conf_error(a->errs, &c->pos[0], "%s is not allowed inside location", name);
            known = false;
        } else {
            char hint[256];
            conf_hint(name, true, hint, sizeof hint);
            conf_error(a->errs, &c->pos[0], "unknown directive \"%s\"%s", name, hint);
            known = false;
            unknown = true;
        }
        if (known && c->block && !conf_data_block(name))
            conf_error(a->errs, &c->open, "%s does not take a block", name);
    }
    bool returns = false;
    for (size_t i = 0; i < loc->children.n; i++)
        returns = returns || strcmp(loc->children.v[i].argv[0], "return") == 0;
    if (missing && !unknown && !returns)
        conf_error(a->errs, &loc->pos[0],
                   "location %s has no module directive (built in: %s; for example: static "
                   "PATH;)",
                   shown, builtin);
    return mod;
}

static bool is_word_char(char c)
{
    return c && !strchr(" \t\"'(),;:", c);
}

/* Which token a setter's message is about: the first argument it quotes,
 * or else names as a whole word ("methods: PUT is not implemented"), or
 * the directive (wrong argument count).  argv[i] is argument i + 1 as the
 * setter got it (a path resolved), or NULL. */
static int blamed_arg(const struct conf_dir *d, char *const *argv, const char *err)
{
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 1; i < d->argc; i++) {
            const char *arg = pass ? argv[i - 1] : d->argv[i];
            size_t n = strlen(arg);
            for (const char *p = strchr(err, '"'); p; p = strchr(p + 1, '"'))
                if (strncmp(p + 1, arg, n) == 0 && p[1 + n] == '"')
                    return i;
        }
        for (int i = 1; i < d->argc; i++) {
            const char *arg = pass ? argv[i - 1] : d->argv[i];
            size_t n = strlen(arg);
            if (!n)
                continue;
            for (const char *p = strstr(err, arg); p; p = strstr(p + 1, arg))
                if ((p == err || !is_word_char(p[-1])) && !is_word_char(p[n]))
                    return i;
        }
    }
    return 0;
}

/* A data block's lines as one argument, "WORD WORD...;" each, checked
 * where they are written: a media type first, then extensions.  NULL if
 * reported. */
static char *data_block_text(struct apply *a, const struct conf_dir *c)
{
    if (!c->block || c->argc != 1) {
        conf_error(a->errs, &c->pos[c->argc > 1 ? 1 : 0],
                   "%s takes a block and no arguments: %s { TYPE EXT...; }", c->argv[0],
                   c->argv[0]);
        return NULL;
    }
    struct buf text = {0};
    int before = a->errs->count;
    for (size_t i = 0; i < c->children.n; i++) {
        const struct conf_dir *r = &c->children.v[i];
        const char *type = r->argv[0], *slash = strchr(type, '/');
        if (r->bad)
            continue;
        if (r->block) {
            conf_error(a->errs, &r->open, "in %s: a line takes no block", c->argv[0]);
            continue;
        }
        if (!slash || slash == type || !slash[1] || strchr(slash + 1, '/')) {
            conf_error(a->errs, &r->pos[0], "in %s: \"%s\" is not a media type (TYPE/SUBTYPE)",
                       c->argv[0], type);
            continue;
        }
        for (int k = 1; k < r->argc; k++) {
            if (strchr(r->argv[k], '/') || strpbrk(r->argv[k], " \t;#") || !*r->argv[k])
                conf_error(a->errs, &r->pos[k], "in %s: \"%s\" is not an extension%s", c->argv[0],
                           r->argv[k],
                           strchr(r->argv[k], '/') ? " (missing \";\" before it?)" : "");
        }
        for (int k = 0; k < r->argc; k++)
            buf_printf(&text, "%s%s", k ? " " : "", r->argv[k]);
        buf_append(&text, ";\n", 2);
    }
    buf_append(&text, "", 1);
    if (a->errs->count != before) {
        buf_free(&text);
        return NULL;
    }
    return text.p;
}

/* The length of "SCHEME:" at the start of a module's path argument that
 * names a path after a scheme ("sqlite:props.db"), or 0: a URI
 * ("postgresql://…") and a plain path have none. */
static size_t scheme_length(const char *arg)
{
    size_t n = 0;
    while ((arg[n] >= 'a' && arg[n] <= 'z') || (n && arg[n] >= '0' && arg[n] <= '9'))
        n++;
    if (n < 2 || arg[n] != ':' || strncmp(arg + n, "://", 3) == 0)
        return 0;
    return n + 1;
}

/* A location directive on its mapping; a module directive that takes
 * paths gets them relative to the file it is written in (after a scheme:
 * see scheme_length). */
static void set_directive(struct apply *a, struct verbd_mapping *map,
                          const struct verbd_module *module, const struct conf_dir *c, bool warn)
{
    if (conf_data_block(c->argv[0])) {
        char *text = data_block_text(a, c);
        char err[256];
        const char *argv[] = {text};
        if (text && verbd_mapping_set(map, c->argv[0], 1, argv, err, sizeof err) < 0)
            conf_error(a->errs, &c->pos[0], "%s", err);
        free(text);
        return;
    }
    const struct verbd_directive *declared = route_directive_find(module, c->argv[0]);
    bool paths = declared && declared->path_args;
    int argc = c->argc - 1;
    char **argv = calloc((size_t)argc + 1, sizeof *argv);
    if (!argv)
        abort();
    for (int i = 0; i < argc; i++) {
        const char *arg = c->argv[i + 1];
        size_t sn = paths ? scheme_length(arg) : 0;
        if (sn) { /* "sqlite:PATH": the path after the scheme */
            char *path = file_relative(&c->pos[i + 1], arg + sn);
            size_t n = sn + strlen(path) + 1;
            if (!(argv[i] = malloc(n)))
                abort();
            snprintf(argv[i], n, "%.*s%s", (int)sn, arg, path);
            free(path);
            continue;
        }
        /* "off" is a keyword, not a file. */
        argv[i] =
            paths && strcmp(arg, "off") != 0 ? file_relative(&c->pos[i + 1], arg) : strdup(arg);
        if (!argv[i])
            abort();
    }
    char err[512];
    int rc = verbd_mapping_set(map, c->argv[0], argc, (const char *const *)argv, err, sizeof err);
    if (rc < 0)
        conf_error(a->errs, &c->pos[blamed_arg(c, argv, err)], "%s", err);
    else if (rc > 0 && warn)
        conf_warning(a->errs, &c->pos[blamed_arg(c, argv, err)], "%s", err);
    for (int i = 0; i < argc; i++)
        free(argv[i]);
    free(argv);
}

static int hex_value(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* A location path as request paths are matched: percent-decoded and
 * normalised, as every request path is before routing (so "/a%20b/"
 * serves "/a%20b/x" and "/a b/x").  A path no request could match, even
 * once decoded ("/a//b/", "/a/../b", an encoded slash), is an error rather
 * than a location that silently never serves.  NULL if reported. */
static char *location_path(struct apply *a, const char *path, const struct conf_pos *at)
{
    size_t n = strlen(path);
    char *norm = malloc(n + 1), *plain = malloc(n + 1);
    if (!norm || !plain)
        abort();
    long r = path_normalise(path, n, norm);
    if (r == -404) {
        conf_error(a->errs, at,
                   "location path \"%s\" has an encoded slash (%%2F): no request path matches it",
                   path);
    } else if (r < 0) {
        conf_error(a->errs, at,
                   "location path \"%s\" is not a valid path (a bad %%-escape, a control "
                   "character or \"..\" above the root)",
                   path);
    } else {
        size_t k = 0;
        for (const char *p = path; *p; p++) {
            if (*p == '%' && hex_value(p[1]) >= 0 && hex_value(p[2]) >= 0) {
                plain[k++] = (char)(hex_value(p[1]) * 16 + hex_value(p[2]));
                p += 2;
            } else {
                plain[k++] = *p;
            }
        }
        plain[k] = '\0';
        if (strcmp(plain, norm) == 0) {
            free(plain);
            return norm;
        }
        conf_error(a->errs, at,
                   "location path \"%s\" never matches: request paths are normalised first "
                   "(write \"%s\")",
                   path, norm);
    }
    free(norm);
    free(plain);
    return NULL;
}

/* Whether the router's message is about the location itself (its regular
 * expression does not compile) rather than the module's argument. */
static bool location_blamed(const char *err)
{
    return strncmp(err, "location \"", 10) == 0;
}

/* Whether the location's block opens right after its last word, as in
 * `location ~ ^/a{2}$ {`: "{" ended a bare word, as it does in nginx. */
static bool brace_ends_word(const struct conf_dir *d)
{
    const struct conf_pos *last = &d->pos[d->argc - 1];
    return d->block && d->open.line == last->line &&
           d->open.col == last->col + (int)strlen(d->argv[d->argc - 1]);
}

/* The location modifier word starts with (the longest first), or NULL. */
static const char *location_modifier(const char *word)
{
    static const char *const modifiers[] = {"=", "^~", "~*", "~"};
    for (size_t i = 0; i < sizeof modifiers / sizeof modifiers[0]; i++)
        if (strncmp(word, modifiers[i], strlen(modifiers[i])) == 0)
            return modifiers[i];
    return NULL;
}

static void apply_location(struct apply *a, const struct conf_dir *d)
{
    bool ok = !d->bad;
    const char *modifier = NULL, *path = NULL;
    const struct conf_pos *path_pos = NULL;
    if (d->argc == 3) {
        modifier = location_modifier(d->argv[1]);
        path = d->argv[2];
        path_pos = &d->pos[2];
        if (!modifier || strlen(modifier) != strlen(d->argv[1])) {
            conf_error(a->errs, &d->pos[1],
                       "location modifier \"%s\" is not supported (= for one exact path, ^~ for a "
                       "prefix that stops the regex search, ~ and ~* for a regular expression)",
                       d->argv[1]);
            ok = false;
            modifier = NULL;
        }
    } else if (d->argc == 2) {
        /* "=/path", "~\.php$": the modifier and what follows it in one
         * word, as nginx allows. */
        modifier = location_modifier(d->argv[1]);
        path = d->argv[1] + (modifier ? strlen(modifier) : 0);
        path_pos = &d->pos[1];
        if (modifier && !*path) {
            conf_error(a->errs, &d->pos[0], "location %s needs a %s", modifier,
                       modifier[0] == '~' ? "regular expression" : "path");
            ok = false;
            path = NULL;
        }
    } else {
        conf_error(a->errs, &d->pos[0], "location takes a path: location [=|^~|~|~*] PATH { ... }");
        ok = false;
    }
    bool regex = modifier && modifier[0] == '~';
    if (path && ok && regex && brace_ends_word(d)) {
        conf_error(a->errs, &d->open,
                   "\"{\" ends the expression \"%s\" here: an expression with \"{\" must be "
                   "quoted (location %s \"%s{...}...\" { ... })",
                   path, modifier, path);
        ok = false;
    }
    char *decoded = NULL;
    if (path && ok && regex) {
        /* Matched as written against the decoded path: a bad expression is
         * reported when the mapping compiles it. */
        decoded = strdup(path);
        if (!decoded)
            abort();
    } else if (path && ok && path[0] != '/') {
        conf_error(a->errs, path_pos, "location path \"%s\" must start with \"/\"", path);
        ok = false;
    } else if (path && ok) {
        decoded = location_path(a, path, path_pos);
        ok = decoded != NULL;
    }
    if (decoded)
        path = decoded;
    if (!d->block) {
        conf_error(a->errs, &d->pos[0], "location needs a block: location %s%s%s { ... }",
                   modifier ? modifier : "", modifier ? " " : "", path ? path : "PATH");
        free(decoded);
        return;
    }
    char shown[4200];
    snprintf(shown, sizeof shown, "%s%s%s", modifier ? modifier : "", modifier ? " " : "",
             path ? path : "?");
    /* A prefix is the same location with ^~ or without. */
    const char *kind = regex || (modifier && modifier[0] == '=') ? modifier : "";
    if (ok) {
        for (size_t i = 0; i < a->nlocs; i++) {
            const struct seen_location *s = &a->locs[i];
            if (strcmp(s->kind, kind) == 0 && strcmp(s->path, path) == 0) {
                conf_error(a->errs, &d->pos[0], "duplicate location %s (first at %s:%d)", shown,
                           s->pos.file->name, s->pos.line);
                ok = false;
                break;
            }
        }
    }
    if (ok) {
        struct seen_location *locs = realloc(a->locs, (a->nlocs + 1) * sizeof *locs);
        if (!locs)
            abort();
        a->locs = locs;
        a->locs[a->nlocs++] = (struct seen_location){kind, decoded, d->pos[0]};
        decoded = NULL; /* a->locs owns it */
    }
    free(decoded);
    const struct conf_dir *mod = location_module(a, d, shown);
    struct verbd_mapping *map = NULL;
    char err[256];
    if (!mod && ok && a->errs->count == 0) {
        /* return (and rewrites) only: the router answers there. */
        for (size_t i = 0; i < d->children.n && !map; i++)
            if (strcmp(d->children.v[i].argv[0], "return") == 0) {
                struct site *site = a->site ? a->site : a->srv->sites[0];
                map =
                    (struct verbd_mapping *)route_add_return(&site->routes, shown, err, sizeof err);
                if (!map) {
                    conf_error(a->errs, location_blamed(err) ? path_pos : &d->pos[0], "%s", err);
                    return;
                }
            }
        if (map) {
            apply_mapping_directives(a, map, NULL, d, shown);
            return;
        }
    }
    if (!mod || mod->bad || !ok)
        return;
    const struct verbd_module *module = module_find(mod->argv[0]);
    const char *root = location_root(a, d);
    if (module->no_argument && mod->argc != 1) {
        conf_error(a->errs, &mod->pos[1], "%s takes no arguments", mod->argv[0]);
        return;
    }
    if (!module->no_argument && mod->argc == 1 && root && module->root_arg) {
        /* static; with root DIR: the root is the module's argument */
    } else if (!module->no_argument && mod->argc != 2) {
        conf_error(a->errs, &mod->pos[0], "%s takes one argument%s", mod->argv[0],
                   strcmp(mod->argv[0], "static") == 0 ? " (the root directory)" : "");
        return;
    }
    /* A gateway's argument is an address, anything else's a directory. */
    char *arg = module->no_argument                 ? NULL
                : mod->argc == 2 && module->gateway ? strdup(mod->argv[1])
                : mod->argc == 2                    ? file_relative(&mod->pos[1], mod->argv[1])
                                                    : file_relative(root_pos(a, d), root);
    if (!module->no_argument && !arg)
        abort();
    const struct zone *inside = module->gateway ? NULL : cache_dir_inside(arg);
    if (inside) {
        conf_error(a->errs, &mod->pos[0],
                   "cache_zone %s's path %s is inside %s, which this location serves: its files "
                   "would be served",
                   zone_name(inside), zone_path(inside), arg);
        free(arg);
        return;
    }
    map = a->site ? verbd_site_map((struct verbd_site *)a->site, shown, mod->argv[0], arg, err,
                                   sizeof err)
                  : verbd_server_map(a->srv, shown, mod->argv[0], arg, err, sizeof err);
    free(arg);
    if (!map) {
        conf_error(a->errs, location_blamed(err) ? path_pos : &mod->pos[mod->argc == 2 ? 1 : 0],
                   "%s", err);
        return;
    }
    apply_mapping_directives(a, map, module, d, shown);
}

/* The disk cache zone whose directory is `dir` or inside it, if any. */
static const struct zone *cache_dir_inside(const char *dir)
{
    char *served = dir ? realpath(dir, NULL) : NULL;
    const struct zone *found = NULL;
    for (size_t i = 0; served && !found; i++) {
        const struct zone *z = zone_at(i);
        if (!z)
            break;
        char *cache = zone_path(z) ? realpath(zone_path(z), NULL) : NULL;
        size_t n = strlen(served);
        if (cache && strncmp(cache, served, n) == 0 &&
            (cache[n] == '/' || cache[n] == '\0' || (n == 1 && served[0] == '/')))
            found = z;
        free(cache);
    }
    free(served);
    return found;
}

/* A location's own `root` (or else the one it inherits), or NULL. */
static const struct conf_dir *root_dir(struct apply *a, const struct conf_dir *loc)
{
    for (size_t i = 0; i < loc->children.n; i++)
        if (strcmp(loc->children.v[i].argv[0], "root") == 0 && loc->children.v[i].argc == 2)
            return &loc->children.v[i];
    const struct conf_dir *found = NULL;
    for (size_t i = 0; i < a->ninherited; i++)
        if (a->inherited[i] && strcmp(a->inherited[i]->argv[0], "root") == 0 &&
            a->inherited[i]->argc == 2)
            found = a->inherited[i]; /* the server's comes after the top level's */
    return found;
}

static const char *location_root(struct apply *a, const struct conf_dir *loc)
{
    const struct conf_dir *r = root_dir(a, loc);
    return r ? r->argv[1] : NULL;
}

static const struct conf_pos *root_pos(struct apply *a, const struct conf_dir *loc)
{
    return &root_dir(a, loc)->pos[1];
}

/* The location's directives (and the defaults it inherits) on its new
 * mapping. */
static void apply_mapping_directives(struct apply *a, struct verbd_mapping *map,
                                     const struct verbd_module *module, const struct conf_dir *d,
                                     const char *shown)
{
    char err[256];
    int before = a->errs->count;
    apply_inherited(a, map, module, d);
    for (size_t i = 0; i < d->children.n; i++) {
        const struct conf_dir *c = &d->children.v[i];
        if (c->bad || (c->block && !conf_data_block(c->argv[0])) ||
            !route_directive_known(c->argv[0]) || module_find(c->argv[0]))
            continue;
        set_directive(a, map, module, c, true);
    }
    /* How the directives fit together, once each was taken. */
    if (a->errs->count == before &&
        route_mapping_check((struct route_mapping *)map, err, sizeof err) < 0)
        conf_error(a->errs, &d->pos[0], "location %s: %s", shown, err);
}

static void forget_locations(struct apply *a)
{
    for (size_t i = 0; i < a->nlocs; i++)
        free(a->locs[i].path);
    free(a->locs);
    a->locs = NULL;
    a->nlocs = 0;
}

static void warn_no_location(struct apply *a, const struct conf_pos *at)
{
    conf_warning(a->errs, at,
                 "no location: every request but OPTIONS will get 501 (add one, for example: "
                 "location / { static DIR; })");
}

/* A server { } block: an origin server of its own, with the top level's
 * settings and location defaults unless it sets its own. */
static void apply_server(struct apply *a, const struct conf_dir *d)
{
    if (!d->block) {
        conf_error(a->errs, &d->pos[0], "server needs a block: server { listen ADDR:PORT; ... }");
        return;
    }
    if (d->argc > 1) {
        conf_error(a->errs, &d->pos[1], "server takes no arguments");
        return;
    }
    char err[256];
    struct verbd_site *site = verbd_server_add_site(a->srv, err, sizeof err);
    if (!site) {
        conf_error(a->errs, &d->pos[0], "%s", err);
        return;
    }
    a->site = (struct site *)site;
    size_t top_inherited = a->ninherited;
    a->nouter = top_inherited;
    collect_inherited(a, &d->children);
    forget_locations(a);
    for (size_t i = 0; i < d->children.n; i++)
        apply_top(a, &d->children.v[i], true);
    apply_tls(a, a->site);
    if (!a->site->nlistens && !a->errs->count)
        conf_error(a->errs, &d->pos[0], "server has no listen address (add: listen ADDR:PORT;)");
    else if (!a->errs->count && a->nlocs == 0 && !a->site->redirect_to_https &&
             !a->site->routes.rewrites.n)
        warn_no_location(a, &d->pos[0]);
    a->ninherited = top_inherited;
    a->nouter = 0;
    a->site = NULL;
}

static const struct conf_file *top_file(const struct conf_reader *r)
{
    const struct conf_file *f = r->files;
    while (f && f->next)
        f = f->next; /* the first file read is last in the list */
    return f;
}

/* The absolute path of the top file: its directory (made absolute when it
 * was read) and its name. */
static char *absolute_path(const struct conf_reader *r, const char *path)
{
    const struct conf_file *f = top_file(r);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    return conf_resolve(f->dir, base);
}

static void report_to_log(void *ctx, const char *msg)
{
    (void)ctx;
    log_msg(LOG_ERROR, "%s", msg);
}

static void warn_to_log(void *ctx, const char *msg)
{
    (void)ctx;
    log_msg(LOG_WARN, "%s", msg);
}

/* The reload source of a server read from a file: the file again,
 * checked and applied to a new server, not bound. */
static struct verbd_server *reload_file(void *ctx)
{
    const char *path = ctx;
    struct verbd_server *next = verbd_server_new();
    if (!next)
        return NULL;
    reloading = true;
    int errors = conf_load_warn(next, path, true, report_to_log, warn_to_log, NULL);
    reloading = false;
    if (errors) {
        log_msg(LOG_ERROR, "reload of %s failed with %d error%s; the running configuration stays",
                path, errors, errors == 1 ? "" : "s");
        verbd_server_free(next);
        return NULL;
    }
    return next;
}

int conf_load_warn(struct verbd_server *srv, const char *path, bool reload,
                   void (*report)(void *ctx, const char *msg),
                   void (*warn)(void *ctx, const char *msg), void *ctx)
{
    struct conf_errors errs = {.report = report, .warn = warn, .ctx = ctx};
    struct conf_reader r = {.errs = &errs, .known = conf_known};
    struct conf_list top = {0};
    if (conf_read_file(&r, path, path, NULL, &top) == 0) {
        struct apply a = {.srv = srv, .errs = &errs, .bind = !reload};
        bool has_servers = false;
        for (size_t i = 0; i < top.n; i++)
            has_servers = has_servers || strcmp(top.v[i].argv[0], "server") == 0;
        cache_owner(&a, &top);
        collect_inherited(&a, &top);
        for (size_t i = 0; i < top.n; i++)
            if (strcmp(top.v[i].argv[0], "upstream") == 0 && !top.v[i].bad)
                apply_upstream(&a, &top.v[i]);
            else if (strcmp(top.v[i].argv[0], "cache_zone") == 0 && !top.v[i].bad)
                apply_cache_zone(&a, &top.v[i]);
        /* The top level first: a server inherits it wherever it is written. */
        for (size_t i = 0; i < top.n; i++)
            apply_top(&a, &top.v[i], has_servers);
        if (!has_servers)
            apply_tls(&a, srv->sites[0]);
        if (!has_servers && !errs.count && a.nlocs == 0)
            warn_no_location(&a, &(struct conf_pos){top_file(&r), 1, 1});
        for (size_t i = 0; i < top.n; i++)
            if (strcmp(top.v[i].argv[0], "server") == 0 && !top.v[i].bad)
                apply_server(&a, &top.v[i]);
        forget_locations(&a);
        free(a.listens);
        free(a.inherited);
        free(a.warned);
        /* SIGHUP reads the same file again; settings made from here on
         * (the command line's) are kept over it. */
        verbd_server_on_reload(srv, reload_file, absolute_path(&r, path), free);
    }
    conf_errors_flush(&errs);
    conf_list_free(&top);
    conf_reader_free(&r);
    return errs.count;
}

int conf_load(struct verbd_server *srv, const char *path, bool reload,
              void (*report)(void *ctx, const char *msg), void *ctx)
{
    return conf_load_warn(srv, path, reload, report, NULL, ctx);
}

static void print_line(void *ctx, const char *msg)
{
    if (ctx) {
        fputs(msg, ctx);
        fputc('\n', ctx);
    }
}

int verbd_server_load_config(struct verbd_server *srv, const char *path, FILE *errors)
{
    return conf_load_warn(srv, path, false, print_line, print_line, errors);
}

int verbd_server_check_config(struct verbd_server *srv, const char *path, FILE *errors)
{
    return conf_load_warn(srv, path, true, print_line, print_line, errors);
}
