/* The fastcgi module's table: its directives and instances.  The exchange
 * with the application is request.c; the CGI variables params.c. */
#include "mod/fastcgi/fastcgi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/settings.h"
#include "http/parse.h"
#include "mod/fastcgi/internal.h"
#include "route/vars.h"
#include "upstream/learn.h"

#define DEFAULT_CONNECT_TIMEOUT_MS 5000
#define DEFAULT_TIMEOUT_MS 60000
#define DEFAULT_LEARN_MS (10 * 60 * 1000)
#define DEFAULT_CHUNKED_MAX (1024 * 1024)

static void fastcgi_destroy(void *inst);

/* "unix:/PATH", "HOST:PORT" or the name of an `upstream` group. */
static void *fastcgi_create(const struct module_env *env, const char *arg, char *err, size_t errlen)
{
    struct fcgi_inst *in = calloc(1, sizeof *in);
    if (!in)
        abort();
    in->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    in->send_timeout_ms = in->read_timeout_ms = DEFAULT_TIMEOUT_MS;
    in->check_script = true;
    in->learn_ms = DEFAULT_LEARN_MS;
    in->chunked_max = DEFAULT_CHUNKED_MAX;
    if (!(in->index = strdup("index.php")))
        abort();
    struct upstream_group *named = upstream_set_find(env ? env->upstreams : NULL, arg);
    if (named) {
        upstream_group_hold(named);
        in->group = named;
        return in;
    }
    in->group = upstream_group_new(arg);
    if (upstream_group_add(in->group, arg, NULL, err, errlen) < 0) {
        char why[256];
        snprintf(why, sizeof why, "%s", err);
        snprintf(err, errlen,
                 "fastcgi: %s (an address is unix:/PATH or HOST:PORT, or name an "
                 "upstream group)",
                 why);
        fastcgi_destroy(in);
        return NULL;
    }
    return in;
}

static void fastcgi_destroy(void *inst)
{
    struct fcgi_inst *in = inst;
    upstream_group_release(in->group);
    free(in->index);
    regex_free(&in->split);
    buf_free(&in->params);
    free(in);
}

static void fastcgi_worker_exit(void *inst)
{
    upstream_group_drop_idle(((struct fcgi_inst *)inst)->group);
}

static void fastcgi_start(void *inst, struct verbd_exchange *x)
{
    fcgi_start(inst, x);
}

static bool fastcgi_refuses(void *inst, const char *m, size_t n)
{
    struct fcgi_inst *in = inst;
    return in->learn_ms && learnt_refusal(in->group->name, m, n) > 0;
}

static method_set fastcgi_allow(void *inst, const struct verbd_request *req, method_set allowed)
{
    (void)req;
    method_set out = allowed;
    for (int id = 0; id < METHOD_REGISTERED_COUNT; id++) {
        const char *name = method_name(id);
        if (id != METHOD_OPTIONS && (allowed & METHOD_BIT(id)) &&
            fastcgi_refuses(inst, name, strlen(name)))
            out &= ~METHOD_BIT(id);
    }
    return out;
}

static int set_connect_timeout(void *inst, int argc, const char *const *argv, char *err,
                               size_t errlen)
{
    (void)argc;
    return directive_duration("fastcgi_connect_timeout", argv[0],
                              &((struct fcgi_inst *)inst)->connect_timeout_ms, err, errlen);
}

static int set_send_timeout(void *inst, int argc, const char *const *argv, char *err, size_t errlen)
{
    (void)argc;
    return directive_duration("fastcgi_send_timeout", argv[0],
                              &((struct fcgi_inst *)inst)->send_timeout_ms, err, errlen);
}

static int set_read_timeout(void *inst, int argc, const char *const *argv, char *err, size_t errlen)
{
    (void)argc;
    return directive_duration("fastcgi_read_timeout", argv[0],
                              &((struct fcgi_inst *)inst)->read_timeout_ms, err, errlen);
}

static int set_learn(void *inst, int argc, const char *const *argv, char *err, size_t errlen)
{
    (void)argc;
    struct fcgi_inst *in = inst;
    if (strcmp(argv[0], "off") == 0) {
        in->learn_ms = 0;
        return 0;
    }
    return directive_duration("fastcgi_learn", argv[0], &in->learn_ms, err, errlen);
}

static int set_check_script(void *inst, int argc, const char *const *argv, char *err, size_t errlen)
{
    (void)argc;
    return directive_on_off("fastcgi_check_script", argv[0],
                            &((struct fcgi_inst *)inst)->check_script, err, errlen);
}

static int set_index(void *inst, int argc, const char *const *argv, char *err, size_t errlen)
{
    (void)argc;
    struct fcgi_inst *in = inst;
    if (!argv[0][0] || strchr(argv[0], '/')) {
        snprintf(err, errlen, "index: \"%s\" is not a file name", argv[0]);
        return -1;
    }
    free(in->index);
    if (!(in->index = strdup(argv[0])))
        abort();
    return 0;
}

static int set_chunked_body(void *inst, int argc, const char *const *argv, char *err, size_t errlen)
{
    (void)argc;
    uint64_t n;
    if (parse_size(argv[0], &n) < 0 || n > (UINT64_C(64) << 20)) {
        snprintf(err, errlen, "fastcgi_chunked_body: \"%s\" is not a size up to 64m", argv[0]);
        return -1;
    }
    ((struct fcgi_inst *)inst)->chunked_max = (size_t)n;
    return 0;
}

static int set_split_path_info(void *inst, int argc, const char *const *argv, char *err,
                               size_t errlen)
{
    (void)argc;
    struct fcgi_inst *in = inst;
    struct regex re;
    char why[256];
    if (regex_compile(&re, argv[0], false, why, sizeof why) < 0) {
        snprintf(err, errlen, "fastcgi_split_path_info: %s", why);
        return -1;
    }
    if (re.captures != 2) {
        snprintf(err, errlen,
                 "fastcgi_split_path_info: \"%s\" has %u captures; it needs two (the script, "
                 "then the path info)",
                 argv[0], re.captures);
        regex_free(&re);
        return -1;
    }
    regex_free(&in->split);
    in->split = re;
    return 0;
}

static int set_param(void *inst, int argc, const char *const *argv, char *err, size_t errlen)
{
    struct fcgi_inst *in = inst;
    if (!argv[0][0] || strpbrk(argv[0], " \t\r\n=")) {
        snprintf(err, errlen, "fastcgi_param: \"%s\" is not a parameter name", argv[0]);
        return -1;
    }
    if (argc == 3 && strcmp(argv[2], "if_not_empty") != 0) {
        snprintf(err, errlen, "fastcgi_param: \"%s\" is not if_not_empty", argv[2]);
        return -1;
    }
    if (strcmp(argv[0], "HTTP_PROXY") == 0) {
        snprintf(err, errlen, "fastcgi_param: HTTP_PROXY is never passed (httpoxy)");
        return -1;
    }
    if (vars_check_extra(argv[1], -1, fcgi_var_names, fcgi_var_count, err, errlen) < 0)
        return -1;
    buf_append(&in->params, argv[0], strlen(argv[0]) + 1);
    buf_append(&in->params, argv[1], strlen(argv[1]) + 1);
    buf_append(&in->params, argc == 3 ? "1" : "0", 1);
    return 0;
}

static const struct verbd_directive fastcgi_directives[] = {
    {"fastcgi_connect_timeout", 1, 1, set_connect_timeout, false, false},
    {"fastcgi_send_timeout", 1, 1, set_send_timeout, false, false},
    {"fastcgi_read_timeout", 1, 1, set_read_timeout, false, false},
    {"fastcgi_check_script", 1, 1, set_check_script, false, false},
    {"fastcgi_split_path_info", 1, 1, set_split_path_info, false, false},
    {"fastcgi_param", 2, 3, set_param, false, false},
    {"fastcgi_learn", 1, 1, set_learn, false, false},
    {"fastcgi_chunked_body", 1, 1, set_chunked_body, false, false},
    {"index", 1, 1, set_index, false, false},
    {NULL, 0, 0, NULL, false, false},
};

const struct verbd_module verbd_module_fastcgi = {
    .name = "fastcgi",
    /* A gateway whose mappings implement GET, HEAD and POST unless
     * `methods` says otherwise (any method but CONNECT and TRACE). */
    .gateway = true,
    .methods = METHOD_BIT(METHOD_GET) | METHOD_BIT(METHOD_HEAD) | METHOD_BIT(METHOD_POST),
    .directives = fastcgi_directives,
    .streams_bodies = true,
    .create = fastcgi_create,
    .destroy = fastcgi_destroy,
    .worker_exit = fastcgi_worker_exit,
    .process_init = learn_init,
    .metrics = learn_metrics,
    .refuses = fastcgi_refuses,
    .allow = fastcgi_allow,
    .start = fastcgi_start,
};
