/* verbd probe: which method may be sent where.
 *
 * The probe must not change anything on the server it examines unless
 * asked to, and then only what it wrote itself.  A precondition that
 * cannot hold is no protection: many servers ignore If-Match.  So:
 *
 *  - GET, HEAD, OPTIONS and TRACE go to the URL: safe (RFC 9110 §9.2.1)
 *    and known to every server.
 *  - PROPFIND, QUERY, REPORT and SEARCH are safe as well, but only on a
 *    server that implements them; to any other they are unknown methods,
 *    which an application behind it may treat like POST.  They go to the
 *    URL only when its OPTIONS lists them (or, for PROPFIND, says DAV:);
 *    otherwise to a random path that does not exist, where 501 still says
 *    whether the server implements them.
 *  - A token no registry holds (the made-up VERBDPROBE, or one given with
 *    --method) goes only to that random missing path, with no content and
 *    a precondition that cannot hold: 501 is server-wide, so that is
 *    enough to see whether the server refuses it.
 *  - Every other registered method is unsafe.  It is sent only with
 *    --unsafe, and only to the scratch resource: one the probe first
 *    creates beside the URL with PUT (a new random name, If-None-Match: *,
 *    201 Created required), or the --scratch URL once the probe's PUT has
 *    replaced what was there.  COPY, MOVE and MKCOL make new random names
 *    next to it; the probe deletes what it created. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "http/method.h"
#include "http/response.h"
#include "probe.h"

/* A token no registry holds: servers should answer it 501. */
#define UNKNOWN_METHOD "VERBDPROBE"
/* What the probe's PUT writes to its scratch resource. */
#define SCRATCH_CONTENT "verbd probe scratch resource: safe to delete\n"

/* snprintf for paths: they fit (a URL target is at most 4096 bytes,
 * PROBE_TARGET leaves room for the suffixes), and would be cut if not. */
static void fmt(char *out, size_t cap, const char *f, ...) __attribute__((format(printf, 3, 4)));

static void fmt(char *out, size_t cap, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    vsnprintf(out, cap, f, ap);
    va_end(ap);
}

static int id_of(const char *method)
{
    return method_lookup(method, strlen(method));
}

bool probe_method_unsafe(const char *method)
{
    int id = id_of(method);
    return id != METHOD_UNKNOWN && !method_is_safe(id);
}

/* Safe by their definition, known to every server. */
static bool basic_safe(int id)
{
    return id == METHOD_GET || id == METHOD_HEAD || id == METHOD_OPTIONS || id == METHOD_TRACE;
}

/* The order unsafe methods are sent in: the PUT that makes the scratch
 * resource first, what removes or moves it last. */
static int unsafe_rank(const char *method)
{
    static const int order[] = {METHOD_PUT,       METHOD_POST, METHOD_PATCH,
                                METHOD_PROPPATCH, METHOD_LOCK, METHOD_UNLOCK};
    static const int late[] = {METHOD_COPY, METHOD_MOVE, METHOD_DELETE, METHOD_MKCOL};
    int id = id_of(method);
    for (int i = 0; i < (int)(sizeof order / sizeof order[0]); i++)
        if (id == order[i])
            return i;
    for (int i = 0; i < (int)(sizeof late / sizeof late[0]); i++)
        if (id == late[i])
            return 100 + i;
    return 50;
}

static void add_probe(struct probe_run *run, const char *method, bool asterisk,
                      enum probe_where where)
{
    if (run->nprobes == PROBE_MAX_PROBES)
        return;
    struct probe *p = &run->probes[run->nprobes++];
    memset(p, 0, sizeof *p);
    fmt(p->method, sizeof p->method, "%s", method);
    p->asterisk = asterisk;
    p->where = where;
    p->unknown = strcmp(method, UNKNOWN_METHOD) == 0;
    /* Only a method of unknown meaning carries the guard; the others go
     * where they can do no harm, and GET and HEAD must show what the
     * resource really answers. */
    p->guarded = id_of(method) == METHOD_UNKNOWN;
}

/* dir: the path of `target` up to its last '/' (the query dropped). */
static void dir_of(const char *target, char *dir, size_t cap)
{
    size_t n = strcspn(target, "?");
    while (n > 0 && target[n - 1] != '/')
        n--;
    fmt(dir, cap, "%.*s", (int)n, n ? target : "/");
}

static void init_scratch(const struct probe_config *cfg, struct probe_scratch *s)
{
    const char *t = cfg->has_scratch ? cfg->scratch.target : cfg->url.target;
    size_t n = strcspn(t, "?");
    if (cfg->has_scratch && n > 0 && t[n - 1] != '/') {
        /* A resource the user gives up: the probe may replace and delete it. */
        s->given = true;
        fmt(s->path, sizeof s->path, "%.*s", (int)n, t);
        dir_of(t, s->dir, sizeof s->dir);
    } else {
        /* A new random name in the URL's collection (or the --scratch one). */
        dir_of(t, s->dir, sizeof s->dir);
        fmt(s->path, sizeof s->path, "%sverbd-probe-%s", s->dir, cfg->nonce);
    }
    fmt(s->current, sizeof s->current, "%s", s->path);
}

void probe_plan(const struct probe_config *cfg, struct probe_run *run, const char *const *methods,
                size_t nmethods)
{
    init_scratch(cfg, &run->scratch);
    if (nmethods == 0) {
        static const int unsafe[] = {METHOD_PUT,    METHOD_POST,   METHOD_PATCH, METHOD_PROPPATCH,
                                     METHOD_LOCK,   METHOD_UNLOCK, METHOD_COPY,  METHOD_MOVE,
                                     METHOD_DELETE, METHOD_MKCOL};
        add_probe(run, "OPTIONS", false, AT_RESOURCE);
        add_probe(run, "OPTIONS", true, AT_RESOURCE);
        add_probe(run, "GET", false, AT_RESOURCE);
        add_probe(run, "HEAD", false, AT_RESOURCE);
        add_probe(run, "TRACE", false, AT_RESOURCE);
        add_probe(run, UNKNOWN_METHOD, false, AT_MISSING);
        add_probe(run, "PROPFIND", false, AT_RESOURCE);
        add_probe(run, "QUERY", false, AT_RESOURCE);
        for (size_t i = 0; i < sizeof unsafe / sizeof unsafe[0]; i++) {
            add_probe(run, method_name(unsafe[i]), false, AT_SCRATCH);
            /* The scratch resource's own Allow: what its 405s are held to. */
            if (i == 0 && cfg->unsafe)
                add_probe(run, "OPTIONS", false, AT_SCRATCH);
        }
        return;
    }
    /* --method: safe and made-up ones in the order given, then the unsafe
     * ones in the order that keeps the scratch resource usable. */
    bool unsafe_asked = false, put_asked = false;
    for (size_t i = 0; i < nmethods; i++) {
        if (probe_method_unsafe(methods[i])) {
            unsafe_asked = true;
            put_asked |= strcmp(methods[i], "PUT") == 0;
        } else {
            add_probe(run, methods[i], false,
                      id_of(methods[i]) == METHOD_UNKNOWN ? AT_MISSING : AT_RESOURCE);
        }
    }
    if (!unsafe_asked)
        return;
    if (cfg->unsafe && !put_asked)
        add_probe(run, "PUT", false, AT_SCRATCH); /* makes the scratch resource */
    for (int rank = 0; rank <= 200; rank++)
        for (size_t i = 0; i < nmethods; i++)
            if (probe_method_unsafe(methods[i]) && unsafe_rank(methods[i]) == rank)
                add_probe(run, methods[i], false, AT_SCRATCH);
}

/* The URL's OPTIONS, if it answered 2xx. */
static const struct probe *resource_options(const struct probe_run *run)
{
    for (size_t i = 0; i < run->nprobes; i++) {
        const struct probe *p = &run->probes[i];
        if (p->tried && p->where == AT_RESOURCE && !p->asterisk && p->answered &&
            strcmp(p->method, "OPTIONS") == 0 && p->status >= 200 && p->status < 300)
            return p;
    }
    return NULL;
}

/* Did the server say, for the URL, that it implements this method? */
static bool advertised(const struct probe_run *run, const char *method)
{
    const struct probe *o = resource_options(run);
    if (!o)
        return false;
    if (o->allow.present) {
        struct span a = {o->allow.v, strlen(o->allow.v)};
        if (http_allow_has(a, method, strlen(method)))
            return true;
    }
    return id_of(method) == METHOD_PROPFIND && o->dav.present;
}

static void not_tried(struct probe *p, const char *why)
{
    p->tried = false;
    p->cls = CLASS_NOT_TRIED;
    fmt(p->not_tried, sizeof p->not_tried, "%s", why);
}

/* A new name next to the scratch resource, the probe's own. */
static void derived(const struct probe_config *cfg, const struct probe_scratch *s,
                    const char *suffix, char *out, size_t cap)
{
    if (s->given)
        fmt(out, cap, "%s-verbd-probe-%.16s-%s", s->path, cfg->nonce, suffix);
    else
        fmt(out, cap, "%s-%s", s->path, suffix);
}

static bool created(const struct probe_scratch *s, const char *path)
{
    for (size_t i = 0; i < s->ncreated; i++)
        if (strcmp(s->created[i], path) == 0)
            return true;
    return false;
}

static void set_target(struct probe *p, const char *target)
{
    p->tried = true;
    fmt(p->target, sizeof p->target, "%s", target);
}

void probe_place(const struct probe_config *cfg, struct probe_run *run, size_t i)
{
    struct probe *p = &run->probes[i];
    struct probe_scratch *s = &run->scratch;
    int id = id_of(p->method);
    char path[PROBE_TARGET];

    if (p->asterisk) {
        set_target(p, "*");
        return;
    }
    if (id == METHOD_UNKNOWN ||
        (!probe_method_unsafe(p->method) && !basic_safe(id) && !advertised(run, p->method))) {
        char dir[PROBE_TARGET];
        dir_of(cfg->url.target, dir, sizeof dir);
        fmt(path, sizeof path, "%sverbd-probe-missing-%s", dir, cfg->nonce);
        set_target(p, path);
        p->where = AT_MISSING;
        return;
    }
    if (!probe_method_unsafe(p->method) && p->where != AT_SCRATCH) {
        set_target(p, cfg->url.target);
        return;
    }

    /* Unsafe (or OPTIONS on the scratch resource). */
    if (!cfg->unsafe) {
        not_tried(p, "unsafe: sent only with --unsafe, and then only to a resource the probe "
                     "creates itself (or --scratch URL)");
        return;
    }
    if (id == METHOD_PUT && !s->attempted) {
        s->attempted = true;
        set_target(p, s->path);
        p->creates = true;
        p->content = true;
        p->if_none_match = !s->given; /* create, never replace */
        return;
    }
    if (!s->ready) {
        not_tried(p, s->why);
        return;
    }
    if (!s->exists && id != METHOD_MKCOL) {
        not_tried(p, "the scratch resource is gone (an earlier request removed it)");
        return;
    }
    switch (id) {
    case METHOD_PUT:
        set_target(p, s->current);
        p->content = true;
        break;
    case METHOD_COPY:
        set_target(p, s->current);
        derived(cfg, s, "copy", p->destination, sizeof p->destination);
        break;
    case METHOD_MOVE:
        /* Move the copy if there is one, so that the scratch resource
         * stays where it is for what follows. */
        derived(cfg, s, "copy", path, sizeof path);
        set_target(p, created(s, path) ? path : s->current);
        derived(cfg, s, "moved", p->destination, sizeof p->destination);
        break;
    case METHOD_MKCOL:
        /* MKCOL needs a name that is not mapped (RFC 4918 §9.3.1). */
        derived(cfg, s, "collection/", path, sizeof path);
        set_target(p, path);
        break;
    default: set_target(p, s->current); break;
    }
}

static void forget(struct probe_scratch *s, const char *path)
{
    for (size_t i = 0; i < s->ncreated; i++)
        if (strcmp(s->created[i], path) == 0) {
            memmove(s->created[i], s->created[i + 1], (s->ncreated - i - 1) * sizeof s->created[0]);
            s->ncreated--;
            return;
        }
}

static void remember(struct probe_scratch *s, const char *path)
{
    if (!created(s, path) && s->ncreated < PROBE_MAX_CREATED)
        fmt(s->created[s->ncreated++], sizeof s->created[0], "%s", path);
}

void probe_after(const struct probe_config *cfg, struct probe_run *run, size_t i)
{
    (void)cfg;
    struct probe *p = &run->probes[i];
    struct probe_scratch *s = &run->scratch;
    if (!p->tried || p->where != AT_SCRATCH)
        return;
    int id = id_of(p->method), st = p->answered ? p->status : 0;
    bool ok = st >= 200 && st < 300;

    if (p->creates) {
        /* Only a 201 proves the probe created it (RFC 9110 §9.3.4); for
         * --scratch URL, any 2xx means its content is now the probe's. */
        s->ready = s->given ? ok : st == 201;
        s->exists = s->ready;
        if (s->ready)
            return;
        if (!p->answered)
            fmt(s->why, sizeof s->why,
                "no resource of the probe's own to send it to: its PUT to %.150s got no "
                "answer",
                s->path);
        else
            fmt(s->why, sizeof s->why,
                "no resource of the probe's own to send it to: its PUT to %.150s answered "
                "%d%s",
                s->path, st, s->given || !ok ? "" : ", not 201 Created (the name may not be new)");
        return;
    }
    if (!ok)
        return;
    switch (id) {
    case METHOD_COPY: remember(s, p->destination); break;
    case METHOD_MOVE:
        if (strcmp(p->target, s->current) == 0) {
            /* The scratch resource itself moved: follow it. */
            fmt(s->current, sizeof s->current, "%s", p->destination);
        } else {
            forget(s, p->target);
            remember(s, p->destination);
        }
        break;
    case METHOD_DELETE:
        if (strcmp(p->target, s->current) == 0)
            s->exists = false;
        forget(s, p->target);
        break;
    case METHOD_MKCOL: remember(s, p->target); break;
    default: break;
    }
}

static void delete_one(struct probe_config *cfg, struct probe_run *run, const char *path)
{
    static struct probe p;
    memset(&p, 0, sizeof p);
    strcpy(p.method, "DELETE");
    p.tried = true;
    p.where = AT_SCRATCH;
    fmt(p.target, sizeof p.target, "%s", path);
    probe_exchange(cfg, &p);
    if (p.answered && ((p.status >= 200 && p.status < 300) || p.status == 404 || p.status == 410))
        return;
    struct probe_scratch *s = &run->scratch;
    if (s->nleft == sizeof s->left / sizeof s->left[0])
        return;
    if (p.answered)
        fmt(s->left[s->nleft++], sizeof s->left[0], "%s (DELETE answered %d)", path, p.status);
    else
        fmt(s->left[s->nleft++], sizeof s->left[0], "%s (DELETE got no answer)", path);
}

void probe_cleanup(struct probe_config *cfg, struct probe_run *run)
{
    struct probe_scratch *s = &run->scratch;
    for (size_t i = s->ncreated; i-- > 0;)
        delete_one(cfg, run, s->created[i]);
    s->ncreated = 0;
    /* The scratch resource itself, unless it is the --scratch URL: that
     * one the user gave up, and it keeps the probe's content. */
    if (s->ready && s->exists && !(s->given && strcmp(s->current, s->path) == 0))
        delete_one(cfg, run, s->current);
    s->exists = false;
}

const char *probe_scratch_content(void)
{
    return SCRATCH_CONTENT;
}
