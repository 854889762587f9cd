/* libFuzzer harness for the config reader (lib/conf).  The input is
 * written to a file in a private temporary directory and loaded with
 * conf_load(reload = true), so `listen` is checked but nothing binds.
 * Besides crashes and leaks, it checks the contract: the return value is
 * the number of errors, each reported message is "FILE:LINE:COL: message"
 * with positive LINE and COL, at most CONF_MAX_REPORTED of them plus one
 * "... and N more errors" line, and none when the load succeeds; a file that
 * loads without errors loads again without errors into a fresh server
 * (the result does not depend on state left behind).
 *
 * The file system seen by includes is kept small and fixed: glob patterns
 * outside the temporary directory match nothing, and listen addresses are
 * resolved numerically only (no DNS from a fuzzer).  Beside the fuzzed
 * file the directory holds:
 *
 *   inc.conf        max_body 2m; location /inc/ { static www; }
 *   sub/a.conf      include ../inc.conf;   (for patterns and cycles)
 *   bad.conf        a syntax error
 *   www/            a directory to serve
 *
 *   scripts/fuzz.sh 60 config
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "conf/errors.h"
#include "verbd.h"

#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_config: %s:%d: %s\n", __FILE__, __LINE__, #cond);                \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static char dir[64];
static char conf_path[128];
static size_t dir_len;
static FILE *devnull;

/* -- a hermetic world for includes and listen ---------------------------- */

int glob(const char *pattern, int flags, int (*errfunc)(const char *, int), glob_t *pglob)
{
    static int (*real)(const char *, int, int (*)(const char *, int), glob_t *);
    if (!real)
        real = (int (*)(const char *, int, int (*)(const char *, int), glob_t *))dlsym(RTLD_NEXT,
                                                                                       "glob");
    REQUIRE(real);
    if (strncmp(pattern, dir, dir_len) != 0 || pattern[dir_len] != '/' || strstr(pattern, "/..")) {
        /* GLOB_NOMATCH leaves pglob untouched, as glob() does. */
        return GLOB_NOMATCH;
    }
    return real(pattern, flags, errfunc, pglob);
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    static int (*real)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
    if (!real)
        real = (int (*)(const char *, const char *, const struct addrinfo *,
                        struct addrinfo **))dlsym(RTLD_NEXT, "getaddrinfo");
    REQUIRE(real);
    struct addrinfo h = {0};
    if (hints)
        h = *hints;
    h.ai_flags |= AI_NUMERICHOST | AI_NUMERICSERV;
    return real(node, service, &h, res);
}

static void write_file(const char *rel, const char *text)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    FILE *f = fopen(p, "w");
    REQUIRE(f);
    fputs(text, f);
    REQUIRE(fclose(f) == 0);
}

static void cleanup(void)
{
    static const char *const files[] = {"verbd.conf", "inc.conf", "sub/a.conf", "bad.conf", NULL};
    char p[256];
    for (size_t i = 0; files[i]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    snprintf(p, sizeof p, "%s/sub", dir);
    rmdir(p);
    snprintf(p, sizeof p, "%s/www", dir);
    rmdir(p);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    strcpy(dir, "/tmp/verbd-fuzz-config-XXXXXX");
    REQUIRE(mkdtemp(dir));
    dir_len = strlen(dir);
    snprintf(conf_path, sizeof conf_path, "%s/verbd.conf", dir);
    char p[256];
    snprintf(p, sizeof p, "%s/sub", dir);
    REQUIRE(mkdir(p, 0700) == 0);
    snprintf(p, sizeof p, "%s/www", dir);
    REQUIRE(mkdir(p, 0700) == 0);
    write_file("inc.conf", "max_body 2m;\nlocation /inc/ { static www; methods GET; }\n");
    write_file("sub/a.conf", "include ../inc.conf;\n");
    write_file("bad.conf", "location /bad { static \"unterminated\n");
    devnull = fopen("/dev/null", "w");
    REQUIRE(devnull);
    atexit(cleanup);
    return 0;
}

/* -- the contract ---------------------------------------------------------- */

struct reports {
    int n;
    bool too_many;
};

static bool digits_then_colon(const char **s)
{
    const char *p = *s;
    if (*p < '1' || *p > '9')
        return false;
    while (*p >= '0' && *p <= '9')
        p++;
    if (*p != ':')
        return false;
    *s = p + 1;
    return true;
}

static void report(void *ctx, const char *msg)
{
    struct reports *r = ctx;
    REQUIRE(msg && *msg);
    REQUIRE(!r->too_many); /* the "... and N more" line is the last */
    r->n++;
    REQUIRE(strlen(msg) < 64 * 1024);
    if (strncmp(msg, "... and ", 8) == 0 && strstr(msg, " more errors")) {
        r->too_many = true;
        return;
    }
    /* FILE:LINE:COL: message.  FILE may itself contain ':' (a fuzzed
     * include name), so find a ":LINE:COL: " that parses. */
    bool ok = false;
    for (const char *c = strchr(msg, ':'); c && !ok; c = strchr(c + 1, ':')) {
        const char *p = c + 1;
        ok = c != msg && digits_then_colon(&p) && digits_then_colon(&p) && *p == ' ' && p[1];
    }
    if (!ok) {
        fprintf(stderr, "fuzz_config: malformed report: %s\n", msg);
        abort();
    }
}

static int load(const uint8_t *data, size_t size, struct reports *r)
{
    int fd = open(conf_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    REQUIRE(fd >= 0);
    REQUIRE(size == 0 || write(fd, data, size) == (ssize_t)size);
    REQUIRE(close(fd) == 0);

    struct verbd_server *srv = verbd_server_new();
    REQUIRE(srv);
    memset(r, 0, sizeof *r);
    int errors = conf_load(srv, conf_path, true, report, r);
    REQUIRE(errors >= 0);
    REQUIRE(errors == 0 ? r->n == 0 : r->n >= 1);
    REQUIRE(r->n <= CONF_MAX_REPORTED + 1);
    REQUIRE(r->too_many ? errors > CONF_MAX_REPORTED : r->n == errors);
    if (errors == 0)
        verbd_server_describe(srv, devnull); /* route_finish over the mappings read */
    verbd_server_free(srv);
    return errors;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1 << 20) + 16)
        return 0; /* past CONF_MAX_FILE: one error, nothing more to learn */
    struct reports a, b;
    int e1 = load(data, size, &a);
    if (e1 == 0) {
        int e2 = load(data, size, &b);
        REQUIRE(e2 == 0);
    }
    return 0;
}
