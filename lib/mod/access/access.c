/* The access guard: `allow` and `deny` by the client's address, first
 * match first, as nginx has them.  A location's rules replace the server's
 * and the top level's (the guard inherits whole). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/exchange.h"
#include "mod/access/access.h"
#include "mod/access/rules.h"

struct access_inst {
    struct access_rule *rules;
    size_t n;
};

static void *access_create(void)
{
    struct access_inst *in = calloc(1, sizeof *in);
    if (!in)
        abort();
    return in;
}

static void access_destroy(void *inst)
{
    struct access_inst *in = inst;
    free(in->rules);
    free(in);
}

static int add_rule(void *inst, bool allow, const char *text, char *err, size_t errlen)
{
    struct access_inst *in = inst;
    struct access_rule r;
    int rc = access_rule_parse(text, allow, &r, err, errlen);
    if (rc < 0)
        return -1;
    struct access_rule *v = realloc(in->rules, (in->n + 1) * sizeof *v);
    if (!v)
        abort();
    in->rules = v;
    in->rules[in->n++] = r;
    return rc;
}

static int set_allow(void *inst, int argc, const char *const *argv, char *err, size_t errlen)
{
    (void)argc;
    return add_rule(inst, true, argv[0], err, errlen);
}

static int set_deny(void *inst, int argc, const char *const *argv, char *err, size_t errlen)
{
    (void)argc;
    return add_rule(inst, false, argv[0], err, errlen);
}

/* No rule matching grants nothing and refuses nothing: `satisfy any` then
 * leaves it to the other guards. */
static enum guard_verdict access_check(void *inst, const struct verbd_request *req)
{
    struct access_inst *in = inst;
    switch (access_rules_match(in->rules, in->n, req->peer)) {
    case 1: return GUARD_GRANT;
    case -1: return GUARD_FORBID;
    default: return GUARD_PASS;
    }
}

static const struct verbd_directive access_directives[] = {
    {.name = "allow", .min_args = 1, .max_args = 1, .set = set_allow, .inherit = true},
    {.name = "deny", .min_args = 1, .max_args = 1, .set = set_deny, .inherit = true},
    {.name = NULL},
};

const struct verbd_guard verbd_guard_access = {
    .name = "access",
    .directives = access_directives,
    .inherit_whole = true,
    .create = access_create,
    .destroy = access_destroy,
    .check = access_check,
};
