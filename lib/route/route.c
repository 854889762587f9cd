/* Building the mapping table: locations, modules, method sets, and the
 * directives every mapping has. */
#include "route/route.h"

#include "core/log.h"
#include "core/settings.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const struct verbd_module *module_find(const char *name)
{
    for (size_t i = 0; verbd_builtin_modules[i]; i++)
        if (strcmp(verbd_builtin_modules[i]->name, name) == 0)
            return verbd_builtin_modules[i];
    return NULL;
}

int route_method_id(const struct route_table *t, const char *token, size_t len)
{
    int id = method_lookup(token, len);
    if (id != METHOD_UNKNOWN)
        return id;
    for (int i = METHOD_REGISTERED_COUNT; i < t->next_ext; i++)
        if (strlen(t->ext_names[i]) == len && memcmp(t->ext_names[i], token, len) == 0)
            return i;
    return METHOD_UNKNOWN;
}

void route_relay_allow(const struct route_mapping *m, struct span value, struct verbd_response *res)
{
    struct buf out = {0};
    struct span tok;
    while (http_list_next(&value, &tok)) {
        int id = route_method_id(m->table, tok.p, tok.n);
        bool here = id != METHOD_UNKNOWN ? (m->allowed & METHOD_BIT(id)) != 0 : m->open;
        if (!here || (id != METHOD_OPTIONS && m->module->refuses &&
                      m->module->refuses(m->inst, tok.p, tok.n)))
            continue;
        if (out.len)
            buf_append(&out, ", ", 2);
        buf_append(&out, tok.p, tok.n);
    }
    verbd_response_header_n(res, "Allow", out.len ? out.p : "", out.len);
    buf_free(&out);
}

/* Id of a method named in a method list.  With `add`, a token not yet
 * known becomes an extension method of the table.  -1 + err if the token is
 * invalid, unknown (without `add`) or the table is full. */
static int method_id_for_list(struct route_table *t, const char *token, size_t len, bool add,
                              char *err, size_t errlen)
{
    if (!http_is_token(token, len) || len > METHOD_NAME_MAX) {
        snprintf(err, errlen, "\"%.*s\" is not a method name", (int)len, token);
        return -1;
    }
    int id = route_method_id(t, token, len);
    if (id != METHOD_UNKNOWN)
        return id;
    if (!add) {
        snprintf(err, errlen, "method %.*s is implemented by nothing here", (int)len, token);
        return -1;
    }
    if (t->next_ext < METHOD_REGISTERED_COUNT)
        t->next_ext = METHOD_REGISTERED_COUNT;
    if (t->next_ext >= METHOD_MAX_ID) {
        snprintf(err, errlen, "too many extension methods");
        return -1;
    }
    t->ext_names[t->next_ext] = strndup(token, len);
    return t->next_ext++;
}

/* A location's form: "= PATH", "^~ PATH", "~ REGEX", "~* REGEX" or a
 * prefix; the modifier may be followed by spaces. */
struct location_form {
    bool exact, stops_regex, regex, caseless;
    const char *text; /* the path or the expression */
};

static struct location_form location_form(const char *location)
{
    struct location_form f = {.text = location};
    size_t skip = 0;
    if (location[0] == '=')
        f.exact = true, skip = 1;
    else if (strncmp(location, "^~", 2) == 0)
        f.stops_regex = true, skip = 2;
    else if (strncmp(location, "~*", 2) == 0)
        f.regex = f.caseless = true, skip = 2;
    else if (location[0] == '~')
        f.regex = true, skip = 1;
    if (skip)
        f.text = location + skip + strspn(location + skip, " \t");
    return f;
}

/* Whether mapping m was added for the same location as form f: the same
 * path with the same exactness (`^~` is a prefix), or the same expression
 * with the same case rule. */
static bool same_location(const struct route_mapping *m, const struct location_form *f)
{
    if (f->regex)
        return m->regex && m->caseless == f->caseless && strcmp(m->pattern, f->text) == 0;
    return !m->regex && m->exact == f->exact && strcmp(m->prefix, f->text) == 0;
}

static struct route_mapping *add_mapping(struct route_table *t, const char *location, char *err,
                                         size_t errlen)
{
    struct location_form f = location_form(location);
    if (f.regex && !f.text[0]) {
        snprintf(err, errlen, "location \"%s\" needs a regular expression", location);
        return NULL;
    }
    if (!f.regex && f.text[0] != '/') {
        snprintf(err, errlen, "location \"%s\" must start with '/'", location);
        return NULL;
    }
    for (size_t i = 0; i < t->n; i++) {
        if (same_location(t->maps[i], &f)) {
            snprintf(err, errlen, "duplicate location \"%s\"", location);
            return NULL;
        }
    }
    struct regex re = {0};
    if (f.regex) {
        char why[200];
        if (regex_compile(&re, f.text, f.caseless, why, sizeof why) < 0) {
            snprintf(err, errlen, "location \"%s\": %s", location, why);
            return NULL;
        }
    }
    struct route_mapping **maps = realloc(t->maps, (t->n + 1) * sizeof *maps);
    struct route_mapping *m = calloc(1, sizeof *m);
    if (maps)
        t->maps = maps;
    if (!maps || !m)
        abort();
    m->order = t->n;
    t->maps[t->n++] = m;
    m->table = t;
    m->location = strdup(location);
    /* A regex location maps the whole path, as location / does. */
    m->prefix = strdup(f.regex ? "/" : f.text);
    m->prefix_len = strlen(m->prefix);
    m->exact = f.exact;
    m->stops_regex = f.stops_regex;
    if (f.regex) {
        m->regex = malloc(sizeof *m->regex);
        if (!m->regex)
            abort();
        *m->regex = re;
        m->caseless = f.caseless;
        m->pattern = m->location + (f.text - location);
    }
    m->narrow = ~(method_set)0;
    m->max_body = BODY_LIMIT_UNSET;
    m->root_fd = -1;
    return m;
}

static void free_location(struct route_mapping *m)
{
    if (m->regex)
        regex_free(m->regex);
    free(m->regex);
    free(m->location);
    free(m->prefix);
}

static void drop_last_mapping(struct route_table *t)
{
    struct route_mapping *m = t->maps[--t->n];
    free_location(m);
    free(m);
}

struct route_mapping *route_add(struct route_table *t, const char *location, const char *module,
                                const char *arg, char *err, size_t errlen)
{
    const struct verbd_module *mod = module_find(module);
    if (!mod) {
        snprintf(err, errlen, "unknown module \"%s\"", module);
        return NULL;
    }
    struct route_mapping *m = add_mapping(t, location, err, errlen);
    if (!m)
        return NULL;
    struct module_env env = {t->upstreams};
    m->inst = mod->create(&env, arg, err, errlen);
    if (!m->inst) {
        drop_last_mapping(t);
        return NULL;
    }
    m->module = mod;
    m->implements = mod->instance_methods ? mod->instance_methods(m->inst) : mod->methods;
    if (mod->root_arg && arg && *arg) {
        m->root = strdup(arg);
        m->root_by_module = true;
    }
    return m;
}

struct route_mapping *route_add_return(struct route_table *t, const char *location, char *err,
                                       size_t errlen)
{
    struct route_mapping *m = add_mapping(t, location, err, errlen);
    if (!m)
        return NULL;
    m->module = &route_return_module;
    m->implements = METHOD_BIT(METHOD_GET) | METHOD_BIT(METHOD_HEAD);
    return m;
}

/* Parses method names (each argument may hold several, space-separated)
 * into a set. */
static int parse_method_list(struct route_table *t, int argc, const char *const *argv, bool add,
                             method_set *set, char *err, size_t errlen)
{
    *set = 0;
    for (int i = 0; i < argc; i++) {
        const char *p = argv[i];
        while (*p) {
            size_t n = strcspn(p, " \t");
            if (n) {
                int id = method_id_for_list(t, p, n, add, err, errlen);
                if (id < 0)
                    return -1;
                *set |= METHOD_BIT(id);
            }
            p += n;
            p += strspn(p, " \t");
        }
    }
    if (!*set) {
        snprintf(err, errlen, "no methods given");
        return -1;
    }
    return 0;
}

struct route_mapping *route_add_handler(struct route_table *t, const char *location,
                                        const char *methods, verbd_handler_fn *fn,
                                        verbd_start_fn *start, void *data, char *err, size_t errlen)
{
    method_set set;
    if (parse_method_list(t, 1, &methods, true, &set, err, errlen) < 0)
        return NULL;
    struct route_mapping *m = add_mapping(t, location, err, errlen);
    if (!m)
        return NULL;
    m->module = &route_handler_module;
    m->inst = route_handler_new(fn, start, data);
    m->implements = set & ~METHOD_BIT(METHOD_OPTIONS);
    return m;
}

/* What a mapping's `methods` may name: what it implements, OPTIONS, and
 * HEAD where GET is. */
/* What a gateway implements of the ids a table knows: all but CONNECT
 * (it is not a forward proxy), TRACE (answered, never forwarded) and PRI
 * (the HTTP/2 preface, not a method). */
#define GATEWAY_METHODS                                                                            \
    (~(METHOD_BIT(METHOD_CONNECT) | METHOD_BIT(METHOD_TRACE) | METHOD_BIT(METHOD_PRI)))

static method_set nameable(const struct route_mapping *m)
{
    if (m->module->gateway)
        return GATEWAY_METHODS;
    /* A return answers what the server implements: `methods` narrows. */
    if (m->module == &route_return_module)
        return ~METHOD_BIT(METHOD_PRI);
    method_set own = m->implements | METHOD_BIT(METHOD_OPTIONS);
    if (own & METHOD_BIT(METHOD_GET))
        own |= METHOD_BIT(METHOD_HEAD);
    return own;
}

static int set_methods(struct route_table *t, struct route_mapping *m, int argc,
                       const char *const *argv, char *err, size_t errlen)
{
    method_set set;
    /* A gateway forwards any name: one the table does not know yet becomes
     * an extension method of the table. */
    if (parse_method_list(t, argc, argv, m->module->gateway, &set, err, errlen) < 0)
        return -1;
    method_set extra = set & ~nameable(m);
    if (extra) {
        int id = __builtin_ctzll(extra);
        snprintf(err, errlen, "methods: %s is not implemented by module %s",
                 id < METHOD_REGISTERED_COUNT ? method_name(id) : t->ext_names[id],
                 m->module->name);
        return -1;
    }
    /* HEAD is GET without the body: allowing it where GET is refused would
     * answer HEAD with header fields that GET never sends.  GET alone keeps
     * bringing HEAD (route_finish). */
    if ((set & METHOD_BIT(METHOD_HEAD)) && !(set & METHOD_BIT(METHOD_GET)) &&
        (m->implements & METHOD_BIT(METHOD_GET))) {
        snprintf(err, errlen,
                 "methods: HEAD without GET (HEAD answers as GET does; allow "
                 "GET, which brings HEAD, or neither)");
        return -1;
    }
    m->narrow = set;
    return 0;
}

static int set_header(struct route_mapping *m, const char *const *argv, char *err, size_t errlen)
{
    if (!http_is_token(argv[0], strlen(argv[0]))) {
        snprintf(err, errlen, "header: \"%s\" is not a field name", argv[0]);
        return -1;
    }
    for (const unsigned char *p = (const unsigned char *)argv[1]; *p; p++) {
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f) {
            snprintf(err, errlen, "header: the value of %s has a control character", argv[0]);
            return -1;
        }
    }
    buf_printf(&m->headers, "%s: %s\r\n", argv[0], argv[1]);
    return 0;
}

int directive_duration(const char *name, const char *value, uint64_t *ms, char *err, size_t errlen)
{
    if (parse_duration_ms(value, ms) < 0 || *ms == 0) {
        snprintf(err, errlen, "%s: \"%s\" is not a duration (5s, 500ms, 1m)", name, value);
        return -1;
    }
    return 0;
}

int directive_on_off(const char *name, const char *value, bool *out, char *err, size_t errlen)
{
    if (strcmp(value, "on") == 0 || strcmp(value, "off") == 0) {
        *out = value[1] == 'n';
        return 0;
    }
    snprintf(err, errlen, "%s: expected on or off, not \"%s\"", name, value);
    return -1;
}

int directive_check_arity(const struct verbd_directive *d, int argc, char *err, size_t errlen)
{
    if (argc >= d->min_args && (d->max_args < 0 || argc <= d->max_args))
        return 0;
    if (d->min_args == d->max_args)
        snprintf(err, errlen, "%s takes %d argument%s", d->name, d->min_args,
                 d->min_args == 1 ? "" : "s");
    else
        snprintf(err, errlen, "%s takes at least %d argument%s", d->name, d->min_args,
                 d->min_args == 1 ? "" : "s");
    return -1;
}

/* The router's own directives: every mapping has them. */
enum {
    DIR_METHODS,
    DIR_TRACE,
    DIR_HEADER,
    DIR_MAX_BODY,
    DIR_SATISFY,
    DIR_EXPIRES,
    DIR_REWRITE,
    DIR_RETURN,
    DIR_TRY_FILES,
    DIR_ERROR_PAGE,
    DIR_ROOT,
};
static const struct verbd_directive router_directives[] = {
    [DIR_METHODS] = {.name = "methods", .min_args = 1, .max_args = -1},
    [DIR_TRACE] = {.name = "trace", .min_args = 1, .max_args = 1},
    [DIR_HEADER] = {.name = "header", .min_args = 2, .max_args = 2},
    [DIR_MAX_BODY] = {.name = "max_body", .min_args = 1, .max_args = 1},
    /* How the guards' verdicts combine (route_decide). */
    [DIR_SATISFY] = {.name = "satisfy", .min_args = 1, .max_args = 1, .inherit = true},
    [DIR_EXPIRES] = {.name = "expires", .min_args = 1, .max_args = 1},
    [DIR_REWRITE] = {.name = "rewrite", .min_args = 2, .max_args = 3},
    [DIR_RETURN] = {.name = "return", .min_args = 1, .max_args = 2},
    [DIR_TRY_FILES] = {.name = "try_files", .min_args = 2, .max_args = -1},
    /* Also in `server` (route_table_set) and inherited by locations. */
    [DIR_ERROR_PAGE] = {.name = "error_page", .min_args = 2, .max_args = -1, .inherit = true},
    /* The directory a location maps paths to (try_files reads it). */
    [DIR_ROOT] = {.name = "root", .min_args = 1, .max_args = 1, .path_args = true, .inherit = true},
    {.name = NULL},
};

static const struct verbd_directive *find_directive(const struct verbd_directive *list,
                                                    const char *name)
{
    for (; list && list->name; list++)
        if (strcmp(list->name, name) == 0)
            return list;
    return NULL;
}

const struct verbd_directive *module_directive(const struct verbd_module *m, const char *name)
{
    return find_directive(m->directives, name);
}

const char *route_directive_name(size_t i)
{
    return i < sizeof router_directives / sizeof router_directives[0] ? router_directives[i].name
                                                                      : NULL;
}

/* The guard declaring directive `name` (its index in *at), or NULL. */
static const struct verbd_directive *guard_directive(const char *name, size_t *at)
{
    for (size_t i = 0; verbd_builtin_guards[i]; i++) {
        const struct verbd_directive *d = find_directive(verbd_builtin_guards[i]->directives, name);
        if (d) {
            if (at)
                *at = i;
            return d;
        }
    }
    return NULL;
}

/* The filter declaring directive `name` (its index in *at), or NULL. */
static const struct verbd_directive *filter_directive(const char *name, size_t *at)
{
    for (size_t i = 0; verbd_builtin_filters[i]; i++) {
        const struct verbd_directive *d =
            find_directive(verbd_builtin_filters[i]->directives, name);
        if (d) {
            if (at)
                *at = i;
            return d;
        }
    }
    return NULL;
}

const struct verbd_directive *route_directive_find(const struct verbd_module *module,
                                                   const char *name)
{
    const struct verbd_directive *d = find_directive(router_directives, name);
    if (!d)
        d = guard_directive(name, NULL);
    if (!d)
        d = filter_directive(name, NULL);
    if (!d && module)
        d = find_directive(module->directives, name);
    return d;
}

const void *route_directive_key(const char *name)
{
    size_t i;
    if (guard_directive(name, &i) && verbd_builtin_guards[i]->inherit_whole)
        return verbd_builtin_guards[i];
    return NULL;
}

bool route_directive_inherited(const char *name)
{
    const struct verbd_directive *d = find_directive(router_directives, name);
    if (!d)
        d = guard_directive(name, NULL);
    if (!d)
        d = filter_directive(name, NULL);
    if (d)
        return d->inherit;
    for (size_t i = 0; verbd_builtin_modules[i]; i++) {
        const struct verbd_directive *d =
            find_directive(verbd_builtin_modules[i]->directives, name);
        if (d && d->inherit)
            return true;
    }
    return false;
}

bool route_directive_known(const char *name)
{
    if (find_directive(router_directives, name) || guard_directive(name, NULL) ||
        filter_directive(name, NULL))
        return true;
    for (size_t i = 0; verbd_builtin_modules[i]; i++)
        if (find_directive(verbd_builtin_modules[i]->directives, name))
            return true;
    return false;
}

/* How many groups a regex location's expression has ($1..$N in its
 * return and try_files), or -1 for any other location. */
static int location_captures(const struct route_mapping *m)
{
    return m->regex ? (int)m->regex->captures : -1;
}

int route_set(struct route_mapping *m, const char *name, int argc, const char *const *argv,
              char *err, size_t errlen)
{
    const struct verbd_directive *d = find_directive(router_directives, name);
    if (d) {
        if (directive_check_arity(d, argc, err, errlen) < 0)
            return -1;
        switch (d - router_directives) {
        case DIR_METHODS: return set_methods(m->table, m, argc, argv, err, errlen);
        case DIR_TRACE: return directive_on_off(name, argv[0], &m->trace, err, errlen);
        case DIR_MAX_BODY:
            if (parse_body_limit(argv[0], &m->max_body) == 0)
                return 0;
            snprintf(err, errlen, "max_body: \"%s\" is not a size (8k, 1m, 1g) or off", argv[0]);
            return -1;
        case DIR_SATISFY:
            if (strcmp(argv[0], "any") == 0 || strcmp(argv[0], "all") == 0) {
                m->satisfy_any = argv[0][1] == 'n';
                return 0;
            }
            snprintf(err, errlen, "satisfy: expected any or all, not \"%s\"", argv[0]);
            return -1;
        case DIR_EXPIRES: return expires_parse(argv[0], &m->expires, err, errlen);
        case DIR_REWRITE: return rw_add(&m->rewrites, false, -1, argc, argv, err, errlen);
        case DIR_RETURN:
            return rw_add(&m->rewrites, true, location_captures(m), argc, argv, err, errlen);
        case DIR_TRY_FILES:
            if (m->try_files) {
                snprintf(err, errlen, "try_files is given twice");
                return -1;
            }
            return try_files_parse(&m->try_files, location_captures(m), argc, argv, err, errlen);
        case DIR_ERROR_PAGE: return error_page_parse(&m->errors, argc, argv, err, errlen);
        case DIR_ROOT:
            if (m->root_by_module)
                return 0; /* `static DIR` says it (an inherited root gives way) */
            free(m->root);
            m->root = strdup(argv[0]);
            return 0;
        default: return set_header(m, argv, err, errlen);
        }
    }
    size_t g;
    if ((d = guard_directive(name, &g))) {
        if (directive_check_arity(d, argc, err, errlen) < 0)
            return -1;
        if (!m->guards[g]) {
            m->guards[g] = verbd_builtin_guards[g]->create();
            m->guarded = true;
        }
        return d->set(m->guards[g], argc, argv, err, errlen);
    }
    if ((d = filter_directive(name, &g))) {
        if (directive_check_arity(d, argc, err, errlen) < 0)
            return -1;
        if (!m->filters[g]) {
            m->filters[g] = verbd_builtin_filters[g]->create();
            m->filtered = true;
        }
        return d->set(m->filters[g], argc, argv, err, errlen);
    }
    d = find_directive(m->module->directives, name);
    if (!d) {
        snprintf(err, errlen, "unknown directive \"%s\" for module %s", name, m->module->name);
        return -1;
    }
    if (directive_check_arity(d, argc, err, errlen) < 0)
        return -1;
    return d->set(m->inst, argc, argv, err, errlen);
}

bool route_server_directive(const char *name)
{
    return strcmp(name, "rewrite") == 0 || strcmp(name, "return") == 0 ||
           strcmp(name, "error_page") == 0;
}

int route_table_set(struct route_table *t, const char *name, int argc, const char *const *argv,
                    char *err, size_t errlen)
{
    const struct verbd_directive *d = find_directive(router_directives, name);
    if (!d || !route_server_directive(name)) {
        snprintf(err, errlen, "%s is not allowed in server", name);
        return -1;
    }
    if (directive_check_arity(d, argc, err, errlen) < 0)
        return -1;
    if (strcmp(name, "error_page") == 0)
        return error_page_parse(&t->errors, argc, argv, err, errlen);
    return rw_add(&t->rewrites, strcmp(name, "return") == 0, -1, argc, argv, err, errlen);
}

int route_mapping_check(struct route_mapping *m, char *err, size_t errlen)
{
    if (m->try_files && !m->root) {
        snprintf(err, errlen, "try_files needs a root to look in (root DIR; or static DIR;)");
        return -1;
    }
    /* Opened for whatever looks files up under it (try_files, scripts). */
    if (m->root && m->root_fd < 0)
        m->root_fd = open(m->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (m->try_files && m->root_fd < 0) {
        snprintf(err, errlen, "root %s: %m", m->root);
        return -1;
    }
    for (size_t i = 0; verbd_builtin_guards[i]; i++) {
        const struct verbd_guard *g = verbd_builtin_guards[i];
        if (m->guards[i] && g->check_config && g->check_config(m->guards[i], err, errlen) < 0)
            return -1;
    }
    for (size_t i = 0; verbd_builtin_filters[i]; i++) {
        const struct verbd_filter *f = verbd_builtin_filters[i];
        if (m->filters[i] && f->check_config && f->check_config(m->filters[i], err, errlen) < 0)
            return -1;
    }
    return 0;
}

/* Exact locations first, then longer prefixes before shorter ones, then
 * regex locations in the order they were added (the order they are
 * tried in). */
static int match_order(const void *a, const void *b)
{
    const struct route_mapping *x = *(struct route_mapping *const *)a;
    const struct route_mapping *y = *(struct route_mapping *const *)b;
    int rx = x->exact ? 0 : x->regex ? 2 : 1, ry = y->exact ? 0 : y->regex ? 2 : 1;
    if (rx != ry)
        return rx - ry;
    if (x->regex)
        return (x->order > y->order) - (x->order < y->order);
    return (x->prefix_len < y->prefix_len) - (x->prefix_len > y->prefix_len);
}

/* Every id the table can name: the registered methods and its extensions. */
static method_set known_ids(const struct route_table *t)
{
    int n = t->next_ext > METHOD_REGISTERED_COUNT ? t->next_ext : METHOD_REGISTERED_COUNT;
    return n >= 64 ? ~(method_set)0 : (METHOD_BIT(n) - 1);
}

void route_finish(struct route_table *t)
{
    t->implemented = METHOD_BIT(METHOD_OPTIONS);
    t->open = t->learns = false;
    for (size_t i = 0; i < t->n; i++) {
        struct route_mapping *m = t->maps[i];
        /* An instance's own set may depend on its directives. */
        if (m->module->instance_methods)
            m->implements = m->module->instance_methods(m->inst);
        if (m->module->gateway)
            m->implements = GATEWAY_METHODS & known_ids(t);
        /* A gateway with a set of its own (FastCGI: GET, HEAD, POST) is
         * narrowed to it unless `methods` says otherwise. */
        if (m->module->gateway && m->module->methods && m->narrow == ~(method_set)0)
            m->narrow = m->module->methods;
        m->open = m->module->gateway && m->narrow == ~(method_set)0;
        method_set allowed = (m->implements & m->narrow) | METHOD_BIT(METHOD_OPTIONS);
        if (allowed & METHOD_BIT(METHOD_GET))
            allowed |= METHOD_BIT(METHOD_HEAD);
        if (m->trace)
            allowed |= METHOD_BIT(METHOD_TRACE);
        m->allowed = allowed;
        /* A gateway's `methods` narrows the server's set too: a method it
         * refuses is implemented nowhere unless another mapping has it. */
        t->implemented |= m->module->gateway ? m->implements & m->narrow : m->implements;
        t->open = t->open || m->open;
        t->learns = t->learns || m->module->refuses;
        if (m->trace)
            t->implemented |= METHOD_BIT(METHOD_TRACE);
    }
    /* The server's own return and redirects answer GET. */
    if (t->rewrites.n)
        t->implemented |= METHOD_BIT(METHOD_GET);
    if (t->implemented & METHOD_BIT(METHOD_GET))
        t->implemented |= METHOD_BIT(METHOD_HEAD);
    /* A return location answers every method the server implements (but
     * TRACE, unless enabled there), as `methods` narrows it. */
    for (size_t i = 0; i < t->n; i++) {
        struct route_mapping *m = t->maps[i];
        if (m->module != &route_return_module)
            continue;
        method_set allowed =
            (t->implemented & m->narrow & ~METHOD_BIT(METHOD_TRACE)) | METHOD_BIT(METHOD_OPTIONS);
        if (allowed & METHOD_BIT(METHOD_GET))
            allowed |= METHOD_BIT(METHOD_HEAD);
        if (m->trace)
            allowed |= METHOD_BIT(METHOD_TRACE);
        m->allowed = allowed;
    }
    method_set_format(t->implemented, t->ext_names, t->implemented_text,
                      sizeof t->implemented_text);
    for (size_t i = 0; i < t->n; i++)
        method_set_format(t->maps[i]->allowed, t->ext_names, t->maps[i]->allowed_text,
                          sizeof t->maps[i]->allowed_text);
    if (t->n)
        qsort(t->maps, t->n, sizeof *t->maps, match_order);
    t->nprefix = 0;
    while (t->nprefix < t->n && !t->maps[t->nprefix]->regex)
        t->nprefix++;
}

int route_process_init(void)
{
    int rc = 0;
    for (size_t i = 0; verbd_builtin_modules[i]; i++) {
        const struct verbd_module *mod = verbd_builtin_modules[i];
        if (mod->process_init && mod->process_init() < 0) {
            log_msg(LOG_ERROR, "module %s: its shared state could not be set up", mod->name);
            rc = -1;
        }
    }
    return rc;
}

void route_report(void)
{
    for (size_t i = 0; verbd_builtin_modules[i]; i++)
        if (verbd_builtin_modules[i]->report)
            verbd_builtin_modules[i]->report();
}

void route_worker_init(struct route_table *t, struct loop *loop)
{
    for (size_t i = 0; i < t->n; i++) {
        struct route_mapping *m = t->maps[i];
        if (m->module->worker_init)
            m->module->worker_init(m->inst, loop, m->allowed);
    }
}

void route_worker_exit(struct route_table *t)
{
    for (size_t i = 0; i < t->n; i++) {
        struct route_mapping *m = t->maps[i];
        if (m->module->worker_exit)
            m->module->worker_exit(m->inst);
    }
}

void route_free(struct route_table *t)
{
    for (size_t i = 0; i < t->n; i++) {
        struct route_mapping *m = t->maps[i];
        m->module->destroy(m->inst);
        for (size_t g = 0; verbd_builtin_guards[g]; g++)
            if (m->guards[g])
                verbd_builtin_guards[g]->destroy(m->guards[g]);
        for (size_t f = 0; verbd_builtin_filters[f]; f++)
            if (m->filters[f])
                verbd_builtin_filters[f]->destroy(m->filters[f]);
        buf_free(&m->headers);
        rw_free(&m->rewrites);
        try_files_free(m->try_files);
        error_pages_free(&m->errors);
        free(m->root);
        if (m->root_fd >= 0)
            close(m->root_fd);
        free_location(m);
        free(m);
    }
    free(t->maps);
    rw_free(&t->rewrites);
    error_pages_free(&t->errors);
    for (int i = METHOD_REGISTERED_COUNT; i < t->next_ext; i++)
        free((char *)t->ext_names[i]);
    *t = (struct route_table){0};
}

/* The guards a location asks, after its methods: who may use them. */
static void describe_guards(const struct route_mapping *m, FILE *out)
{
    if (!m->guarded)
        return;
    fprintf(out, "    guards:");
    for (size_t i = 0; verbd_builtin_guards[i]; i++)
        if (m->guards[i])
            fprintf(out, " %s", verbd_builtin_guards[i]->name);
    fprintf(out, " (satisfy %s)\n", m->satisfy_any ? "any" : "all");
}

void route_describe(const struct route_table *t, FILE *out)
{
    char methods[METHOD_SET_TEXT_MAX];
    for (size_t i = 0; verbd_builtin_modules[i]; i++) {
        const struct verbd_module *mod = verbd_builtin_modules[i];
        method_set own = mod->methods | METHOD_BIT(METHOD_OPTIONS);
        method_set_format(own, NULL, methods, sizeof methods);
        if (mod->gateway && mod->methods)
            fprintf(out,
                    "module %s: %s by default; any method but CONNECT and TRACE that "
                    "`methods` names\n",
                    mod->name, methods);
        else if (mod->gateway)
            fprintf(out, "module %s: every method but CONNECT and TRACE, unknown names too\n",
                    mod->name);
        else
            fprintf(out, "module %s: %s\n", mod->name, methods);
        bool any = false;
        for (size_t j = 0; j < t->n; j++) {
            const struct route_mapping *m = t->maps[j];
            if (m->module != mod)
                continue;
            method_set_format(m->allowed, t->ext_names, methods, sizeof methods);
            if (m->open)
                fprintf(out, "  location %s: every method but CONNECT and TRACE%s\n", m->location,
                        m->trace ? " (TRACE answered here)" : "");
            else
                fprintf(out, "  location %s: %s\n", m->location, methods);
            describe_guards(m, out);
            if (mod->describe)
                mod->describe(m->inst, out);
            any = true;
        }
        if (t->n && !any)
            fprintf(out, "  enabled by no location: its methods answer 501\n");
    }
    for (size_t j = 0; j < t->n; j++) {
        const struct route_mapping *m = t->maps[j];
        if (m->module != &route_handler_module && m->module != &route_return_module)
            continue;
        method_set_format(m->allowed, t->ext_names, methods, sizeof methods);
        fprintf(out, "%s location %s: %s\n", m->module->name, m->location, methods);
        describe_guards(m, out);
    }
    if (t->n > t->nprefix) {
        fprintf(out, "regular expressions, tried in this order when no exact location and no "
                     "^~ prefix is the match:\n");
        for (size_t j = t->nprefix; j < t->n; j++)
            fprintf(out, "  %zu. location %s (%s)\n", j - t->nprefix + 1, t->maps[j]->location,
                    t->maps[j]->module->name);
    }
}
