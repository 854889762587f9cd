/* verbd dav-store init|migrate -c FILE.  The config is checked in full
 * first (as verbd -t does); then its tree is walked for the store
 * directives, whose paths are resolved as the module gets them, and each
 * store named is set up once, blocking (no worker runs here). */
#include "dav_store.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/read.h"
#include "mod/webdav/store.h"
#include "verbd.h"

static const char usage[] =
    "usage: verbd dav-store init -c FILE     create the tables of every WebDAV store\n"
    "                                        (dav_store, dav_db) FILE names\n"
    "       verbd dav-store migrate -c FILE  bring existing ones up to date\n"
    "Exit status: 0 all ready, 1 a store failed, 2 usage or config error.\n";

struct found {
    char **v;
    size_t n;
};

static void report(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "%s\n", msg);
}

/* The value the module gets: a path after "sqlite:" (or dav_db's bare
 * path) relative to the file the directive is written in. */
static char *store_value(const struct conf_dir *d)
{
    const char *arg = d->argv[1], *dir = d->pos[1].file->dir;
    const char *scheme = strcmp(d->argv[0], "dav_db") == 0 ? "" : "sqlite:";
    if (strstr(arg, "://"))
        return strdup(arg);
    if (*scheme && strncmp(arg, scheme, strlen(scheme)) == 0)
        arg += strlen(scheme);
    else if (*scheme)
        return strdup(arg); /* not a store verbd has: the check refused it */
    char *path = conf_resolve(dir, arg);
    size_t n = strlen(path) + 8;
    char *v = malloc(n);
    if (!v)
        abort();
    snprintf(v, n, "sqlite:%s", path);
    free(path);
    return v;
}

static void collect(const struct conf_list *l, struct found *out)
{
    for (size_t i = 0; i < l->n; i++) {
        const struct conf_dir *d = &l->v[i];
        if (d->block && !conf_data_block(d->argv[0]))
            collect(&d->children, out);
        if (d->block || d->argc != 2 ||
            (strcmp(d->argv[0], "dav_store") != 0 && strcmp(d->argv[0], "dav_db") != 0))
            continue;
        char *v = store_value(d);
        bool seen = false;
        for (size_t k = 0; k < out->n && !seen; k++)
            seen = strcmp(out->v[k], v) == 0;
        if (seen) {
            free(v);
            continue;
        }
        char **grown = realloc(out->v, (out->n + 1) * sizeof *grown);
        if (!grown)
            abort();
        out->v = grown;
        out->v[out->n++] = v;
    }
}

int dav_store_main(int argc, char **argv)
{
    bool create = argc == 4 && strcmp(argv[1], "init") == 0;
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage, stdout);
        return 0;
    }
    if (argc != 4 || (!create && strcmp(argv[1], "migrate") != 0) ||
        (strcmp(argv[2], "-c") != 0 && strcmp(argv[2], "--config") != 0)) {
        fputs(usage, stderr);
        return 2;
    }
    const char *path = argv[3];
    struct verbd_server *srv = verbd_server_new();
    if (!srv)
        return 2;
    int n = verbd_server_check_config(srv, path, stderr);
    verbd_server_free(srv);
    if (n) {
        fprintf(stderr, "verbd: %s: %d error%s; no store touched\n", path, n, n == 1 ? "" : "s");
        return 2;
    }
    struct conf_errors errs = {.report = report};
    struct conf_reader r = {.errs = &errs};
    struct conf_list top = {0};
    struct found stores = {0};
    if (conf_read_file(&r, path, path, NULL, &top) == 0)
        collect(&top, &stores);
    conf_errors_flush(&errs);
    conf_list_free(&top);
    conf_reader_free(&r);
    if (errs.count) {
        free(stores.v);
        return 2;
    }
    if (stores.n == 0)
        printf("verbd: %s names no dav_store or dav_db: nothing to do (the default store "
               "beside each share is created on first use)\n",
               path);
    int failed = 0;
    for (size_t i = 0; i < stores.n; i++) {
        char msg[512];
        /* A URI is shown without its query: its options are no one's business. */
        const char *v = stores.v[i];
        int shown = (int)strcspn(v, "?");
        if (dav_store_setup(v, create, msg, sizeof msg) == 0) {
            printf("verbd: %.*s: %s\n", shown, v, msg);
        } else {
            fprintf(stderr, "verbd: %.*s: %s\n", shown, v, msg);
            failed++;
        }
        free(stores.v[i]);
    }
    free(stores.v);
    return failed ? 1 : 0;
}
