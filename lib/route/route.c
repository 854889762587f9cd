/* Building the mapping table: prefixes, modules, method sets. */
#include "route/route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct verbd_module *module_find(const char *name)
{
    for (size_t i = 0; verbd_builtin_modules[i]; i++)
        if (strcmp(verbd_builtin_modules[i]->name, name) == 0)
            return verbd_builtin_modules[i];
    return NULL;
}

struct route_mapping *route_add(struct route_table *t, const char *prefix, const char *module,
                                const char *arg, char *err, size_t errlen)
{
    if (prefix[0] != '/') {
        snprintf(err, errlen, "location \"%s\" must start with '/'", prefix);
        return NULL;
    }
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->maps[i]->prefix, prefix) == 0) {
            snprintf(err, errlen, "duplicate location \"%s\"", prefix);
            return NULL;
        }
    }
    const struct verbd_module *mod = module_find(module);
    if (!mod) {
        snprintf(err, errlen, "unknown module \"%s\"", module);
        return NULL;
    }
    void *inst = mod->create(arg, err, errlen);
    if (!inst)
        return NULL;
    struct route_mapping **maps = realloc(t->maps, (t->n + 1) * sizeof *maps);
    struct route_mapping *m = malloc(sizeof *m);
    if (maps)
        t->maps = maps;
    if (!maps || !m) {
        free(m);
        mod->destroy(inst);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->maps[t->n++] = m;
    *m = (struct route_mapping){
        .prefix = strdup(prefix),
        .prefix_len = strlen(prefix),
        .module = mod,
        .inst = inst,
        .narrow = ~(method_set)0,
    };
    return m;
}

static int set_methods(struct route_mapping *m, const char *value, char *err, size_t errlen)
{
    method_set narrow = 0;
    const char *p = value;
    while (*p) {
        size_t n = strcspn(p, " \t");
        if (n) {
            int id = method_lookup(p, n);
            method_set own = m->module->methods | METHOD_BIT(METHOD_OPTIONS);
            if (own & METHOD_BIT(METHOD_GET))
                own |= METHOD_BIT(METHOD_HEAD);
            if (id == METHOD_UNKNOWN || !(own & METHOD_BIT(id))) {
                snprintf(err, errlen, "method %.*s is not implemented by module %s", (int)n, p,
                         m->module->name);
                return -1;
            }
            narrow |= METHOD_BIT(id);
        }
        p += n;
        p += strspn(p, " \t");
    }
    m->narrow = narrow;
    return 0;
}

int route_set(struct route_mapping *m, const char *name, const char *value, char *err,
              size_t errlen)
{
    if (strcmp(name, "methods") == 0)
        return set_methods(m, value, err, errlen);
    if (strcmp(name, "trace") == 0) {
        if (strcmp(value, "on") && strcmp(value, "off")) {
            snprintf(err, errlen, "trace takes on or off, not \"%s\"", value);
            return -1;
        }
        m->trace = strcmp(value, "on") == 0;
        return 0;
    }
    if (!m->module->set) {
        snprintf(err, errlen, "module %s has no directive \"%s\"", m->module->name, name);
        return -1;
    }
    return m->module->set(m->inst, name, value, err, errlen);
}

static int longer_prefix_first(const void *a, const void *b)
{
    const struct route_mapping *x = *(struct route_mapping *const *)a;
    const struct route_mapping *y = *(struct route_mapping *const *)b;
    return (x->prefix_len < y->prefix_len) - (x->prefix_len > y->prefix_len);
}

void route_finish(struct route_table *t)
{
    t->implemented = METHOD_BIT(METHOD_OPTIONS);
    for (size_t i = 0; i < t->n; i++) {
        struct route_mapping *m = t->maps[i];
        method_set allowed = (m->module->methods & m->narrow) | METHOD_BIT(METHOD_OPTIONS);
        if (allowed & METHOD_BIT(METHOD_GET))
            allowed |= METHOD_BIT(METHOD_HEAD);
        if (m->trace)
            allowed |= METHOD_BIT(METHOD_TRACE);
        m->allowed = allowed;
        t->implemented |= m->module->methods;
        if (m->trace)
            t->implemented |= METHOD_BIT(METHOD_TRACE);
    }
    if (t->implemented & METHOD_BIT(METHOD_GET))
        t->implemented |= METHOD_BIT(METHOD_HEAD);
    qsort(t->maps, t->n, sizeof *t->maps, longer_prefix_first);
}

void route_free(struct route_table *t)
{
    for (size_t i = 0; i < t->n; i++) {
        t->maps[i]->module->destroy(t->maps[i]->inst);
        free(t->maps[i]->prefix);
        free(t->maps[i]);
    }
    free(t->maps);
    t->maps = NULL;
    t->n = 0;
}
