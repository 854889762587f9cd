/* The method decision of DESIGN.md, in its order: implemented at all (501),
 * mapped (path normalised once), allowed here (405), OPTIONS and TRACE,
 * then the module. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/settings.h"
#include "core/exchange.h"
#include "http/path.h"
#include "route/route.h"
#include "route/vars.h"

uint64_t route_body_limit(const struct route_table *t, const struct route_mapping *m)
{
    if (m->max_body != BODY_LIMIT_UNSET)
        return m->max_body;
    if (t->has_max_body)
        return t->max_body;
    return m->module->streams_bodies ? BODY_UNLIMITED : UINT64_C(1) << 20;
}

static bool refused(const struct route_mapping *m, struct span method)
{
    return m->module->refuses && m->module->refuses(m->inst, method.p, method.n);
}

/* Whether a mapping other than `except` implements the method now. */
static bool implemented_elsewhere(const struct route_table *t, const struct route_mapping *except,
                                  int id, struct span method)
{
    for (size_t i = 0; i < t->n; i++) {
        const struct route_mapping *m = t->maps[i];
        if (m == except)
            continue;
        bool has = id != METHOD_UNKNOWN ? (m->allowed & METHOD_BIT(id)) != 0 : m->open;
        if (has && !refused(m, method))
            return true;
    }
    return false;
}

/* The server's set for OPTIONS *: what some mapping implements and does
 * not refuse now. */
static method_set implemented_now(const struct route_table *t)
{
    method_set set = t->implemented;
    if (!t->learns)
        return set;
    for (int id = 0; id < METHOD_MAX_ID; id++) {
        if (!(set & METHOD_BIT(id)) || id == METHOD_OPTIONS)
            continue;
        const char *name = id < METHOD_REGISTERED_COUNT ? method_name(id) : t->ext_names[id];
        struct span m = {name, strlen(name)};
        bool gateway_only = true, live = false;
        for (size_t i = 0; i < t->n && !live; i++) {
            const struct route_mapping *map = t->maps[i];
            if (!(map->allowed & METHOD_BIT(id)))
                continue;
            gateway_only = gateway_only && map->module->refuses;
            live = !refused(map, m);
        }
        if (gateway_only && !live)
            set &= ~METHOD_BIT(id);
    }
    return set;
}

/* The location's guards, combined as `satisfy` says: 0 (let in), 401 or
 * 403.  With `satisfy all` (the default) the first guard that refuses
 * answers; with `satisfy any` one that grants is enough, and otherwise a
 * challenge (the client may yet log in) wins over a refusal.  A guard
 * with nothing to say (no rule matched) neither grants nor refuses. */
static int guard_status(const struct route_mapping *m, struct verbd_exchange *x)
{
    struct verbd_request *req = &x->req;
    bool challenged = false, forbidden = false;
    for (size_t i = 0; verbd_builtin_guards[i]; i++) {
        const struct verbd_guard *g = verbd_builtin_guards[i];
        if (!m->guards[i])
            continue;
        switch (g->check(m->guards[i], req)) {
        case GUARD_PASS: break;
        case GUARD_GRANT:
            if (g->user) {
                char name[256];
                size_t n = g->user(m->guards[i], req, name, sizeof name);
                if (n)
                    req->user = arena_strndup(&x->arena, name, n);
            }
            if (m->satisfy_any)
                return 0;
            break;
        case GUARD_FORBID:
            if (!m->satisfy_any)
                return 403;
            forbidden = true;
            break;
        case GUARD_CHALLENGE:
            if (!m->satisfy_any)
                return 401;
            challenged = true;
            break;
        }
    }
    return challenged ? 401 : forbidden ? 403 : 0;
}

static bool max_forwards_zero(const struct http_request *h)
{
    struct span v = http_field_get(h, "Max-Forwards");
    return v.p && v.n == 1 && v.p[0] == '0';
}

struct route_state *route_state(struct verbd_exchange *x)
{
    if (!x->req.route)
        x->req.route = arena_zalloc(&x->arena, sizeof *x->req.route);
    return x->req.route;
}

/* The variables of the exchange's current target, with the captures of
 * its location's expression. */
static void vars_of(const struct verbd_request *req, struct vars *v)
{
    *v = (struct vars){
        .req = req, .uri = req->path, .args = req->http.query.p, .args_len = req->http.query.n};
    if (req->route)
        v->cap = req->route->location;
}

/* Makes a rule's new URI the exchange's target (in its arena). */
static void take_target(struct verbd_exchange *x, const struct rw_result *r)
{
    struct verbd_request *req = &x->req;
    req->path = arena_strndup(&x->arena, r->path.p, strlen(r->path.p));
    if (r->has_args) {
        req->http.query.p = r->args.len ? arena_strndup(&x->arena, r->args.p, r->args.len) : NULL;
        req->http.query.n = r->args.len;
    }
}

/* A pending answer (return, a rewrite's redirect), given once the method
 * decision lets the request in. */
static void take_answer(struct verbd_exchange *x, const struct rw_result *r)
{
    struct route_state *st = route_state(x);
    st->answer = r->status;
    st->answer_location = r->location;
    st->answer_text = r->text.len ? arena_strndup(&x->arena, r->text.p, r->text.len) : NULL;
    st->answer_len = r->text.len;
}

/* One more internal redirect: false (500, logged) past the bound. */
static bool count_redirect(struct verbd_exchange *x)
{
    struct route_state *st = route_state(x);
    if (++st->redirects <= ROUTE_REDIRECTS_MAX)
        return true;
    log_msg(LOG_ERROR,
            "%.*s %.*s: rewrite or internal redirection cycle (more than %d), last %s; 500",
            (int)x->req.http.method.n, x->req.http.method.p, (int)x->req.http.target.n,
            x->req.http.target.p, ROUTE_REDIRECTS_MAX, x->req.path);
    x->req.refusal = 500;
    return false;
}

/* The subpath of path below mapping m (after a `break` or try_files kept
 * the location): the part under its prefix, or the whole path. */
static const char *subpath_in(const struct route_mapping *m, const char *path)
{
    if (m->exact)
        return strrchr(path, '/');
    size_t n = m->prefix[m->prefix_len - 1] == '/' ? m->prefix_len - 1 : m->prefix_len;
    if (strncmp(path, m->prefix, n) == 0 && (path[n] == '/' || path[n] == '\0'))
        return path[n] ? path + n : "/";
    return path;
}

enum decided { DECIDED_GO = -1, DECIDED_AGAIN = -2 };

/* Runs one rule list: DECIDED_GO to carry on (the target may have
 * changed: *changed; *stop: a `break`), DECIDED_AGAIN for a `last`, or a
 * verdict. */
static int run_rules(struct verbd_exchange *x, const struct rw_list *l, bool *changed, bool *stop)
{
    struct vars v;
    vars_of(&x->req, &v);
    struct rw_result r = {0};
    rw_run(l, &v, &r);
    int out = DECIDED_GO;
    *changed = r.changed;
    *stop = false;
    if (r.changed)
        take_target(x, &r);
    switch (r.outcome) {
    case RW_CONTINUE: break;
    case RW_STOP_LAST: out = DECIDED_AGAIN; break;
    case RW_STOP_BREAK: *stop = true; break;
    case RW_ANSWER: take_answer(x, &r); break;
    case RW_FAILED:
        x->req.refusal = r.status;
        out = VERDICT_REFUSE;
        break;
    }
    rw_result_free(&r);
    return out;
}

/* try_files in the chosen location: DECIDED_GO (a file there serves:
 * path and subpath set), DECIDED_AGAIN (an internal redirect to the last
 * URI: the target changed), or VERDICT_REFUSE (=CODE). */
static int try_files(struct verbd_exchange *x, const struct route_mapping *m)
{
    struct verbd_request *req = &x->req;
    struct vars v;
    vars_of(req, &v);
    struct buf found = {0};
    int i = try_files_find(m->try_files, m->root_fd, m->prefix, m->exact ? 1 : m->prefix_len, &v,
                           &found);
    int out = DECIDED_GO;
    if (i >= 0) {
        /* The file found, as a path of this location. */
        struct buf path = {0};
        vars_expand(m->try_files->files[i], &v, VARS_TEXT, &path);
        req->path = arena_strndup(&x->arena, path.p ? path.p : "/", path.len ? path.len : 1);
        req->subpath = subpath_in(m, req->path);
        buf_free(&path);
    } else if (m->try_files->code) {
        req->refusal = m->try_files->code;
        out = VERDICT_REFUSE;
    } else {
        buf_reset(&found);
        vars_expand(m->try_files->uri, &v, VARS_URL, &found);
        out = route_redirect_target(x, found.p ? found.p : "", found.len) ? DECIDED_AGAIN
                                                                          : VERDICT_REFUSE;
    }
    buf_free(&found);
    return out;
}

/* Steps 3 and 4 for the current target (req->path): the rules, the
 * mapping, the 405, the guards, try_files, the body limit. */
static int decide_target(const struct route_table *t, struct verbd_exchange *x, bool server_rules)
{
    struct verbd_request *req = &x->req;
    const struct http_request *h = &req->http;
    int id = req->method_id;
    req->mapping = NULL;
    req->subpath = NULL;
    req->access = 0;
    bool changed, stop;
    if (server_rules && t->rewrites.n) {
        int r = run_rules(x, &t->rewrites, &changed, &stop);
        if (r == VERDICT_REFUSE)
            return r;
        if (req->route && req->route->answer) {
            /* The server answers before any location; OPTIONS learns the
             * server's set. */
            uint64_t limit = t->has_max_body ? t->max_body : UINT64_C(1) << 20;
            req->max_body = limit;
            if (h->framing == BODY_LENGTH && h->content_length > limit) {
                req->refusal = 413;
                return VERDICT_REFUSE;
            }
            return VERDICT_ANSWER;
        }
    }
    struct captures cap;
    req->mapping = route_search(t, req->path, &req->subpath, &cap);
    /* A regex location's captures are its directives' $1..$9. */
    if (cap.n)
        route_state(x)->location = cap;
    else if (req->route)
        req->route->location.n = 0;
    if (!req->mapping) {
        req->refusal = 404;
        return VERDICT_REFUSE;
    }
    const struct route_mapping *m = req->mapping;
    if (m->rewrites.n) {
        int r = run_rules(x, &m->rewrites, &changed, &stop);
        if (r == VERDICT_REFUSE)
            return r;
        if (r == DECIDED_AGAIN || (changed && !stop && !(req->route && req->route->answer)))
            return count_redirect(x) ? DECIDED_AGAIN : VERDICT_REFUSE;
        if (changed)
            req->subpath = subpath_in(m, req->path);
    }
    bool pending = req->route && req->route->answer;
    bool configured = id != METHOD_UNKNOWN ? (m->allowed & METHOD_BIT(id)) != 0 : m->open;
    if (configured && id != METHOD_OPTIONS && refused(m, h->method)) {
        /* A gateway learnt that its upstream implements it nowhere: 405
         * if another mapping has it, else as if nothing implemented it. */
        req->refusal = implemented_elsewhere(t, m, id, h->method) || t->unknown_405 ? 405 : 501;
        return VERDICT_REFUSE;
    }
    /* The location's configured set: a 405 from it reveals configuration
     * only, so it comes before access control. */
    if (!configured) {
        req->refusal = 405;
        return VERDICT_REFUSE;
    }
    if (m->guarded) {
        req->access = guard_status(m, x);
        /* Answered here (a gateway does not forward it) with the
         * configured set: nothing about the resource. */
        if (req->access && id == METHOD_OPTIONS)
            return VERDICT_ANSWER;
        if (req->access) {
            req->refusal = req->access;
            return VERDICT_REFUSE;
        }
        req->access = 200;
    }
    /* try_files looks at the resource: after access control, and only
     * for what a module would serve. */
    if (m->try_files && !pending && id != METHOD_OPTIONS && id != METHOD_TRACE) {
        int r = try_files(x, m);
        if (r != DECIDED_GO)
            return r;
    }
    /* The module's view of this resource (a gateway's refusals were just
     * asked: its configured set decides, and its allow hook is for the
     * Allow fields, which costs a lookup per method). */
    if (!pending && !m->module->refuses && id != METHOD_UNKNOWN &&
        !(route_allowed(req) & METHOD_BIT(id))) {
        req->refusal = 405;
        return VERDICT_REFUSE;
    }
    /* The body limit is the location's: checked only for a method the
     * location allows, so a refused method never hears of it. */
    uint64_t limit = route_body_limit(t, req->mapping);
    if (h->framing == BODY_LENGTH && h->content_length > limit) {
        req->refusal = 413;
        req->max_body = limit;
        return VERDICT_REFUSE;
    }
    req->max_body = limit;
    if (pending && id != METHOD_OPTIONS && id != METHOD_TRACE)
        return VERDICT_ANSWER;
    /* A gateway forwards OPTIONS with a target (one with a set of its own,
     * FastCGI, only where `methods` names OPTIONS), unless Max-Forwards
     * makes verbd the final recipient (RFC 9110 §7.6.2). */
    const struct route_mapping *mm = req->mapping;
    if (id == METHOD_OPTIONS && mm->module->gateway &&
        (!mm->module->methods || (mm->narrow & METHOD_BIT(METHOD_OPTIONS))) &&
        !max_forwards_zero(h))
        return VERDICT_SERVE;
    return id == METHOD_OPTIONS || id == METHOD_TRACE ? VERDICT_ANSWER : VERDICT_SERVE;
}

/* Decides the current target, again after each `last` or internal
 * redirect, within the bound. */
static enum verdict decide_loop(const struct route_table *t, struct verbd_exchange *x,
                                bool server_rules)
{
    for (;;) {
        int r = decide_target(t, x, server_rules);
        if (r != DECIDED_AGAIN)
            return (enum verdict)r;
        /* An internal redirect (try_files) runs the server's rules
         * again; a `last` maps again only. */
        struct route_state *st = x->req.route;
        server_rules = st->internal;
        st->internal = false;
    }
}

bool route_redirect_target(struct verbd_exchange *x, const char *uri, size_t len)
{
    if (!count_redirect(x))
        return false;
    struct verbd_request *req = &x->req;
    const char *q = memchr(uri, '?', len);
    size_t plen = q ? (size_t)(q - uri) : len;
    char *path = arena_alloc(&x->arena, plen + 1);
    long n = plen && uri[0] == '/' ? path_normalise(uri, plen, path) : -400;
    if (n < 0) {
        log_msg(LOG_WARN, "internal redirect to \"%.*s\": not a valid path", (int)len, uri);
        req->refusal = (int)-n;
        return false;
    }
    req->path = path;
    if (q) {
        req->http.query.p = arena_strndup(&x->arena, q + 1, len - plen - 1);
        req->http.query.n = len - plen - 1;
    }
    x->req.route->internal = true;
    return true;
}

enum verdict route_redirect(const struct route_table *t, struct verbd_exchange *x, const char *uri,
                            size_t len)
{
    x->req.refusal = 0;
    if (!route_redirect_target(x, uri, len))
        return VERDICT_REFUSE;
    x->req.route->internal = false;
    x->req.route->answer = 0;
    return decide_loop(t, x, true);
}

enum verdict route_decide(const struct route_table *t, struct verbd_exchange *x)
{
    struct verbd_request *req = &x->req;
    const struct http_request *h = &req->http;
    req->mapping = NULL;
    req->path = req->subpath = NULL;
    req->refusal = req->access = 0;
    req->max_body = BODY_DISCARD_MAX; /* a refused request's, dropped */
    req->method_id = route_method_id(t, h->method.p, h->method.n);
    int id = req->method_id;
    /* A name nobody registered is implemented only by a gateway. */
    bool implemented = id != METHOD_UNKNOWN ? (t->implemented & METHOD_BIT(id)) != 0 : t->open;
    /* 501 whatever the target; the mapping is still looked up (when the
     * path is valid) for the location's own header fields. */
    int refusal = implemented || t->unknown_405 ? 0 : 501;
    if (h->form == TARGET_ASTERISK) {
        if (implemented)
            return VERDICT_ANSWER; /* OPTIONS *: the parser allows nothing else */
        req->refusal = 501;        /* no resource to refuse it on */
        return VERDICT_REFUSE;
    }
    if (h->form == TARGET_AUTHORITY) {
        req->refusal = refusal ? refusal : 400; /* CONNECT, were it implemented */
        return VERDICT_REFUSE;
    }
    char *path_buf = arena_alloc(&x->arena, h->path.n + 1);
    long n = path_normalise(h->path.p, h->path.n, path_buf);
    if (n < 0) {
        req->refusal = refusal ? refusal : (int)-n;
        return VERDICT_REFUSE;
    }
    req->path = path_buf;
    if (refusal || !implemented) {
        /* Neither rules nor redirects for a method nothing implements. */
        req->mapping = route_search(t, path_buf, &req->subpath, NULL);
        req->refusal = refusal ? refusal : req->mapping ? 405 : 404;
        return VERDICT_REFUSE;
    }
    return decide_loop(t, x, true);
}

method_set route_allowed(const struct verbd_request *req)
{
    const struct route_mapping *m = req->mapping;
    method_set allowed = m->allowed;
    if (m->module->allow)
        allowed = (m->module->allow(m->inst, req, allowed) & allowed) | METHOD_BIT(METHOD_OPTIONS);
    return allowed;
}

/* The Allow value for a set: formatted once for the server-wide set and
 * each mapping's own, otherwise into scratch. */
static const char *allow_text(const struct route_table *t, const struct verbd_request *req,
                              method_set set, char *scratch, size_t n)
{
    if (set == t->implemented)
        return t->implemented_text;
    if (req->mapping && set == req->mapping->allowed)
        return req->mapping->allowed_text;
    method_set_format(set, t->ext_names, scratch, n);
    return scratch;
}

static bool is_credential(struct span name)
{
    static const char *const hidden[] = {"Cookie", "Authorization", "Proxy-Authorization"};
    for (size_t i = 0; i < sizeof hidden / sizeof hidden[0]; i++)
        if (name.n == strlen(hidden[i]) && strncasecmp(name.p, hidden[i], name.n) == 0)
            return true;
    return false;
}

/* TRACE: the request head as received, minus credentials. */
static void answer_trace(const struct verbd_request *req, struct verbd_response *res)
{
    const struct http_request *h = &req->http;
    verbd_response_header(res, "Content-Type", "message/http");
    verbd_response_body(res, h->method.p, h->method.n);
    verbd_response_body(res, " ", 1);
    verbd_response_body(res, h->target.p, h->target.n);
    verbd_response_body(res, h->minor ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n", 11);
    for (size_t i = 0; i < h->nfields; i++) {
        if (is_credential(h->fields[i].name))
            continue;
        verbd_response_body(res, h->fields[i].name.p, h->fields[i].name.n);
        verbd_response_body(res, ": ", 2);
        verbd_response_body(res, h->fields[i].value.p, h->fields[i].value.n);
        verbd_response_body(res, "\r\n", 2);
    }
    verbd_response_body(res, "\r\n", 2);
}

/* The header fields of the guards that challenge (WWW-Authenticate). */
static void add_challenges(const struct route_mapping *m, struct verbd_response *res)
{
    for (size_t i = 0; verbd_builtin_guards[i]; i++)
        if (m->guards[i] && verbd_builtin_guards[i]->challenge)
            verbd_builtin_guards[i]->challenge(m->guards[i], res);
}

/* Whether the client may see the module's view of the resource: a
 * location without guards, or one whose guards let it in.  Otherwise it
 * learns the location's configured set, as a 405 before access control
 * tells it anyway. */
static bool sees_resource(const struct verbd_request *req)
{
    return !req->mapping->guarded || req->access == 200;
}

static void answer_options(const struct route_table *t, const struct verbd_request *req,
                           struct verbd_response *res)
{
    char allow[METHOD_SET_TEXT_MAX];
    bool whole_server = req->http.form == TARGET_ASTERISK;
    const struct route_mapping *m = req->mapping;
    whole_server = whole_server || !m; /* the server's own return answers */
    method_set set = whole_server         ? implemented_now(t)
                     : sees_resource(req) ? route_allowed(req)
                                          : m->allowed;
    verbd_response_status(res, 204);
    verbd_response_header(res, "Allow", allow_text(t, req, set, allow, sizeof allow));
    if (!whole_server && m->module->options)
        m->module->options(m->inst, req, set, res);
    /* RFC 9110 §11.6.1: credentials would change the answer. */
    if (!whole_server && req->access == 401)
        add_challenges(m, res);
}

/* The built-in module that would implement a method no mapping enables. */
static const struct verbd_module *dormant_module(int id)
{
    if (id == METHOD_UNKNOWN)
        return NULL;
    for (size_t i = 0; verbd_builtin_modules[i]; i++)
        if (verbd_builtin_modules[i]->methods & METHOD_BIT(id))
            return verbd_builtin_modules[i];
    return NULL;
}

/* Appends the pieces of a refusal's explanation to the body: this is the
 * hot path of every 501 and 405, so no printf. */
static void say(struct verbd_response *res, const char *s)
{
    verbd_response_body(res, s, strlen(s));
}

static void refuse(const struct route_table *t, const struct verbd_request *req,
                   struct verbd_response *res)
{
    char allow[METHOD_SET_TEXT_MAX];
    const char *allow_list;
    const struct span *method = &req->http.method;
    const struct verbd_module *dormant;
    switch (req->refusal) {
    case 501:
        verbd_response_error(res, 501, NULL);
        say(res, "The method ");
        verbd_response_body(res, method->p, method->n);
        if ((dormant = dormant_module(req->method_id))) {
            say(res, " is implemented by module ");
            say(res, dormant->name);
            say(res, ", which no location on this server enables.\n");
            log_msg(LOG_INFO, "501 for %.*s: implemented by module %s, which no location enables",
                    (int)method->n, method->p, dormant->name);
        } else {
            say(res, " is not implemented by this server.\n");
        }
        say(res, "Methods implemented here: ");
        say(res, allow_text(t, req, implemented_now(t), allow, sizeof allow));
        say(res, ".\n");
        break;
    case 405:
        allow_list =
            allow_text(t, req, sees_resource(req) ? route_allowed(req) : req->mapping->allowed,
                       allow, sizeof allow);
        verbd_response_error(res, 405, NULL);
        say(res, "The method ");
        verbd_response_body(res, method->p, method->n);
        say(res, " is not allowed at location ");
        say(res, req->mapping->location);
        say(res, ".\nAllowed here: ");
        say(res, allow_list);
        say(res, ".\n");
        verbd_response_header(res, "Allow", allow_list);
        break;
    case 401:
        verbd_response_error(res, 401, "Authentication is required for this location.");
        add_challenges(req->mapping, res);
        break;
    case 403: verbd_response_error(res, 403, "Access to this location is forbidden."); break;
    case 404: verbd_response_error(res, 404, "Nothing is served at this path."); break;
    case 413:
        verbd_response_error(res, 413, "The request body is larger than this location accepts.");
        verbd_response_close(res); /* the body is not read */
        log_msg(LOG_INFO, "413 for %.*s %s: Content-Length %llu over max_body %llu at location %s",
                (int)method->n, method->p, req->path, (unsigned long long)req->http.content_length,
                (unsigned long long)req->max_body, req->mapping->location);
        break;
    case 500:
        verbd_response_error(res, 500, "The request could not be mapped to a resource here.");
        break;
    case 400:
        verbd_response_error(res, req->refusal, "The request target is not a valid path.");
        break;
    default: verbd_response_error(res, req->refusal, NULL); break;
    }
    if ((req->refusal == 405 || req->refusal == 501) && t->refusal_max_age >= 0) {
        char cc[32];
        snprintf(cc, sizeof cc, "max-age=%ld", t->refusal_max_age);
        verbd_response_header(res, "Cache-Control", cc);
    }
}

/* A return (or a rewrite's redirect): a Location with a short body, a
 * text body, or the built-in body of the status. */
static void answer_return(const struct route_state *st, struct verbd_response *res)
{
    if (st->answer_location) {
        verbd_response_error(res, st->answer, NULL);
        verbd_response_header_n(res, "Location", st->answer_text ? st->answer_text : "",
                                st->answer_len);
    } else if (st->answer_text) {
        verbd_response_status(res, st->answer);
        verbd_response_header(res, "Content-Type", "text/plain; charset=utf-8");
        verbd_response_body(res, st->answer_text, st->answer_len);
    } else {
        verbd_response_error(res, st->answer, NULL);
    }
}

void route_start(const struct route_table *t, enum verdict v, struct verbd_exchange *x)
{
    struct verbd_request *req = &x->req;
    struct verbd_response *res = &x->res;
    if (req->mapping && req->mapping->headers.len)
        x->extra_head = &req->mapping->headers;
    switch (v) {
    case VERDICT_SERVE:
        if (req->mapping->expires.kind > EXPIRES_OFF)
            x->head_filter = expires_apply;
        if (req->mapping->errors.n)
            x->intercept = error_page_intercept;
        if (req->mapping->filtered)
            for (size_t i = 0; verbd_builtin_filters[i]; i++)
                if (req->mapping->filters[i])
                    verbd_builtin_filters[i]->attach(req->mapping->filters[i], x);
        req->mapping->module->start(req->mapping->inst, x);
        return;
    case VERDICT_ANSWER:
        if (req->method_id == METHOD_TRACE)
            answer_trace(req, res);
        else if (req->method_id == METHOD_OPTIONS || !req->route || !req->route->answer)
            answer_options(t, req, res);
        else
            answer_return(req->route, res);
        break;
    case VERDICT_REFUSE: refuse(t, req, res); break;
    }
    /* An error the router answers may have a page of its own. */
    const struct error_page *page;
    if (res->status >= 300 && (!req->route || !req->route->in_page) &&
        (page = error_page_find(t, req->mapping, res->status)) && error_page_serve(t, x, page))
        return;
    verbd_finish(x);
}
