/* The static module, driven through its callbacks with hand-built requests
 * over a temporary directory tree. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/exchange.h"
#include "http/date.h"
#include "http/method.h"
#include "mod/static/internal.h"
#include "mod/static/static.h"
#include "core/clock.h"
#include "unit.h"

static char tmp[256]; /* holds root/ and outside.txt */
static char root[300];

/* ---- fixture ---------------------------------------------------------- */

static void put(const char *rel, const void *data, size_t n)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, data, n) != (ssize_t)n) {
        perror(p);
        exit(2);
    }
    close(fd);
}

static void putstr(const char *rel, const char *s)
{
    put(rel, s, strlen(s));
}

static void dir(const char *rel)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    if (mkdir(p, 0755) != 0) {
        perror(p);
        exit(2);
    }
}

static void symlink_at(const char *target, const char *rel)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    if (symlink(target, p) != 0) {
        perror(p);
        exit(2);
    }
}

static unsigned char data[1000];

static void build_tree(void)
{
    snprintf(tmp, sizeof tmp, "/tmp/verbd-static-XXXXXX");
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        exit(2);
    }
    snprintf(root, sizeof root, "%s/root", tmp);
    mkdir(root, 0755);
    char p[512];
    snprintf(p, sizeof p, "%s/outside.txt", tmp);
    int fd = open(p, O_WRONLY | O_CREAT, 0644);
    if (fd < 0 || write(fd, "secret\n", 7) != 7)
        exit(2);
    close(fd);

    putstr("hello.txt", "Hello, world!\n");
    putstr("empty.txt", "");
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i * 7 % 251);
    put("data.bin", data, sizeof data);
    putstr("style.CSS", "p{}");
    putstr("noext", "x");
    dir("sub");
    putstr("sub/index.html", "<p>sub</p>");
    putstr("sub/inner.md", "# hi");
    dir("list");
    putstr("list/b.txt", "b");
    putstr("list/a&b<c>.txt", "a");
    putstr("list/x y.txt", "xy");
    putstr("list/.hidden", "h");
    dir("list/dir2");
    dir("emptydir");
    dir("d \xc3\xa9%");
    dir("idx");
    putstr("idx/default.htm", "default");
    dir("idx/nope.html"); /* a directory named like an index is skipped */
    symlink_at("hello.txt", "link_in");
    symlink_at("sub", "link_dir");
    symlink_at("/etc/passwd", "link_abs");
    symlink_at("../outside.txt", "link_up");
    symlink_at("sub/../../outside.txt", "link_up2");
    symlink_at("missing", "link_dangling");
    symlink_at("/proc/self/root/etc/passwd", "link_proc");
    snprintf(p, sizeof p, "%s/fifo", root);
    mkfifo(p, 0644);

    /* a fixed mtime so that validators are known */
    snprintf(p, sizeof p, "%s/hello.txt", root);
    struct timespec ts[2] = {{1700000000, 123456789}, {1700000000, 123456789}};
    utimensat(AT_FDCWD, p, ts, 0);
}

static void rm_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *de;
        while (d && (de = readdir(d))) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            char p[1024];
            snprintf(p, sizeof p, "%s/%s", path, de->d_name);
            rm_tree(p);
        }
        if (d)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static int count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* ---- requests ----------------------------------------------------------- */

static struct verbd_response res;
static struct http_field fields[16];
static struct verbd_request req;

/* Runs one request.  hdrs: name, value pairs, NULL-terminated. */
static void run_q(void *inst, int method, const char *path, const char *sub, const char *query, ...)
{
    response_free(&res);
    response_init(&res);
    memset(&req, 0, sizeof req);
    req.method_id = method;
    const char *m = method == METHOD_HEAD ? "HEAD" : "GET";
    req.http.method = (struct span){m, strlen(m)};
    req.http.path = (struct span){path, strlen(path)};
    req.http.query = (struct span){query, query ? strlen(query) : 0};
    req.http.fields = fields;
    req.path = path;
    req.subpath = sub;
    va_list ap;
    va_start(ap, query);
    size_t n = 0;
    for (const char *name; (name = va_arg(ap, const char *));) {
        const char *value = va_arg(ap, const char *);
        fields[n].name = (struct span){name, strlen(name)};
        fields[n].value = (struct span){value, strlen(value)};
        n++;
    }
    va_end(ap);
    req.http.nfields = n;
    static_serve(inst, &req, &res);
}

#define GET(inst, path, ...) run_q(inst, METHOD_GET, path, path, NULL, ##__VA_ARGS__, NULL)
#define HEAD(inst, path, ...) run_q(inst, METHOD_HEAD, path, path, NULL, ##__VA_ARGS__, NULL)

/* A response header's value (first of that name), or NULL. */
static const char *hdr(const char *name)
{
    static char val[512];
    size_t nl = strlen(name);
    const char *p = res.head.p, *end = res.head.p + res.head.len;
    while (p && p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol)
            break;
        if ((size_t)(eol - p) > nl + 1 && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 2;
            snprintf(val, sizeof val, "%.*s", (int)(eol - v), v);
            return val;
        }
        p = eol + 2;
    }
    return NULL;
}

static int hdr_count(const char *name)
{
    int c = 0;
    char pat[128];
    snprintf(pat, sizeof pat, "%s: ", name);
    for (const char *p = res.head.p;
         p && (p = memmem(p, res.head.len - (size_t)(p - res.head.p), pat, strlen(pat))); p++)
        c++;
    return c;
}

/* True if a body piece holds an open file. */
static bool holds_file(void)
{
    for (size_t i = 0; i < res.npieces; i++)
        if (res.pieces[i].hold.fd >= 0)
            return true;
    return false;
}

/* The whole body as the core would send it (memory and file pieces). */
static char *body(size_t *len)
{
    uint64_t total = response_body_length(&res);
    char *b = malloc(total + 1), *w = b;
    for (size_t i = 0; i < res.npieces; i++) {
        const struct body_piece *pc = &res.pieces[i];
        if (pc->fd >= 0) {
            if (pread(pc->fd, w, pc->len, (off_t)pc->offset) != (ssize_t)pc->len)
                printf("short pread\n");
        } else {
            memcpy(w, pc->ptr ? pc->ptr : res.body.p + pc->offset, pc->len);
        }
        w += pc->len;
    }
    *w = '\0';
    if (len)
        *len = (size_t)total;
    return b;
}

static bool body_is(const char *want)
{
    size_t n;
    char *b = body(&n);
    bool ok = n == strlen(want) && memcmp(b, want, n) == 0;
    if (!ok)
        printf("body: \"%s\"\n", b);
    free(b);
    return ok;
}

static bool body_has(const char *want)
{
    char *b = body(NULL);
    bool ok = strstr(b, want) != NULL;
    free(b);
    return ok;
}

/* ---- tests -------------------------------------------------------------- */

/* Sets one of the module's declared directives the way the router does:
 * arguments split at spaces, arity checked against the declaration.  A
 * name the module does not declare is a mistake in the test, not
 * something to assert on: what the product says about it is checked
 * through the public API (test_create_set). */
static int set(void *in, const char *name, const char *value, char *err, size_t errlen)
{
    char copy[256];
    const char *argv[16];
    int argc = 0;
    snprintf(copy, sizeof copy, "%s", value);
    for (char *save, *w = strtok_r(copy, " ", &save); w && argc < 16;
         w = strtok_r(NULL, " ", &save))
        argv[argc++] = w;
    for (const struct verbd_directive *d = verbd_module_static.directives; d->name; d++) {
        if (strcmp(d->name, name) == 0)
            return directive_check_arity(d, argc, err, errlen) < 0
                       ? -1
                       : d->set(in, argc, argv, err, errlen);
    }
    unit_failed++;
    printf("FAIL %s:%d: the test sets \"%s\", which the static module does not declare\n", __FILE__,
           __LINE__, name);
    snprintf(err, errlen, "(no directive %s)", name);
    return -2;
}

static void test_mime(void)
{
    char p[512];
    snprintf(p, sizeof p, "%s/mime.types", tmp);
    FILE *f = fopen(p, "w");
    fputs("# comment\ntext/x-first\tfoo bar # trailing\n\ntext/x-second foo\nnot-a-type baz\n"
          "application/x-up  UPPER\n",
          f);
    fclose(f);
    mime_acquire_from(p);
    CHECK_STR(mime_type("a.foo"), "text/x-first"); /* the earlier line wins */
    CHECK_STR(mime_type("dir/a.FOO"), "text/x-first");
    CHECK_STR(mime_type("a.bar"), "text/x-first");
    CHECK_STR(mime_type("a.upper"), "application/x-up");
    CHECK_STR(mime_type("a.baz"), "application/octet-stream");
    CHECK_STR(mime_type("a.html"), "text/html"); /* built-in fallback */
    CHECK_STR(mime_type("a.md"), "text/markdown");
    CHECK_STR(mime_type("a.woff2"), "font/woff2");
    CHECK_STR(mime_type("a.tar.gz"), "application/gzip");
    CHECK_STR(mime_type(".foo"), "application/octet-stream"); /* a hidden file */
    CHECK_STR(mime_type("foo."), "application/octet-stream");
    CHECK_STR(mime_type("a.foo/b"), "application/octet-stream");
    CHECK_STR(mime_type("noext"), "application/octet-stream");
    CHECK_STR(mime_type("a.averyveryverylongextension"), "application/octet-stream");
    mime_release();

    /* A location's tables: types { } first, then its file (instead of the
     * system's), then the built-in table. */
    mime_acquire_from(p);
    char err[256] = "";
    const char block[] = "text/x-own own FOO;\napplication/x-html html;\n";
    struct mime_choice c = {mime_types_parse(block, sizeof block - 1, true, err, sizeof err), NULL,
                            false};
    CHECK_STR(mime_type_in(&c, "a.foo"), "text/x-own");
    CHECK_STR(mime_type_in(&c, "a.HTML"), "application/x-html");
    CHECK_STR(mime_type_in(&c, "a.bar"), "text/x-first"); /* the system's file */
    CHECK_STR(mime_type_in(&c, "a.png"), "image/png");
    c.no_file = true; /* mime_types off */
    CHECK_STR(mime_type_in(&c, "a.bar"), "application/octet-stream");
    c.file = mime_types_parse("text/x-file bar\n", 16, false, err, sizeof err);
    CHECK_STR(mime_type_in(&c, "a.bar"), "text/x-file");
    mime_types_free(c.types);
    mime_types_free(c.file);
    CHECK(mime_types_parse("html htm;", 9, true, err, sizeof err) == NULL);
    CHECK_STR(err, "types: \"html\" is not a media type (TYPE/SUBTYPE)");
    CHECK(mime_types_parse("text/html html image/png;", 25, true, err, sizeof err) == NULL);
    CHECK(mime_types_load("/nonexistent/mime.types", err, sizeof err) == NULL);
    CHECK_STR(err, "mime_types /nonexistent/mime.types: No such file or directory");
    mime_release();

    mime_acquire_from(NULL); /* built-in table only */
    CHECK_STR(mime_type("a.foo"), "application/octet-stream");
    CHECK_STR(mime_type("A.JPG"), "image/jpeg");
    CHECK_STR(mime_type("x.js"), "text/javascript");
    CHECK_STR(mime_type("x.svg"), "image/svg+xml");
    mime_release();
}

static void test_create_set(void)
{
    char err[256] = "";
    char p[512];
    snprintf(p, sizeof p, "%s/nope", tmp);
    CHECK(verbd_module_static.create(NULL, p, err, sizeof err) == NULL);
    char want[600];
    snprintf(want, sizeof want, "root %s: No such file or directory", p);
    CHECK_STR(err, want);

    snprintf(p, sizeof p, "%s/hello.txt", root);
    CHECK(verbd_module_static.create(NULL, p, err, sizeof err) == NULL);
    snprintf(want, sizeof want, "root %s: Not a directory", p);
    CHECK_STR(err, want);

    CHECK(verbd_module_static.create(NULL, "", err, sizeof err) == NULL);
    CHECK(verbd_module_static.create(NULL, NULL, err, sizeof err) == NULL);

    void *in = verbd_module_static.create(NULL, root, err, sizeof err);
    CHECK(in != NULL);
    CHECK_INT(set(in, "listing", "on", err, sizeof err), 0);
    CHECK_INT(set(in, "listing", "off", err, sizeof err), 0);
    CHECK_INT(set(in, "listing", "yes", err, sizeof err), -1);
    CHECK_STR(err, "listing: expected on or off, not \"yes\"");
    CHECK_INT(set(in, "index", "a.html  b.htm", err, sizeof err), 0);
    CHECK_INT(((struct static_inst *)in)->nindex, 2);
    CHECK_INT(set(in, "index", "   ", err, sizeof err), -1);
    CHECK_INT(set(in, "index", "a/b.html", err, sizeof err), -1);
    CHECK_INT(set(in, "index", "..", err, sizeof err), -1);
    CHECK_INT(((struct static_inst *)in)->nindex, 2); /* a refused value changes nothing */
    verbd_module_static.destroy(in);

    /* A directive static does not have, set on a real mapping: the router's
     * message, naming the module. */
    struct verbd_server *srv = verbd_server_new();
    struct verbd_mapping *map = verbd_server_map(srv, "/", "static", root, err, sizeof err);
    CHECK(map != NULL);
    const char *one[] = {"1"};
    if (map) {
        CHECK_INT(verbd_mapping_set(map, "bogus", 1, one, err, sizeof err), -1);
        CHECK_STR(err, "unknown directive \"bogus\" for module static");
        CHECK_INT(verbd_mapping_set(map, "listing", 1, (const char *[]){"on"}, err, sizeof err), 0);
    }
    verbd_server_free(srv);

    CHECK(verbd_module_static.methods == (METHOD_BIT(METHOD_GET) | METHOD_BIT(METHOD_HEAD)));

    /* charset: utf-8 by default on text and JavaScript, never on JSON;
     * another name, or off. */
    in = verbd_module_static.create(NULL, root, err, sizeof err);
    CHECK_STR(((struct static_inst *)in)->charset, "utf-8");
    CHECK_STR(mime_content_type(NULL, "a.txt", "utf-8"), "text/plain; charset=utf-8");
    CHECK_STR(mime_content_type(NULL, "a.js", "utf-8"), "text/javascript; charset=utf-8");
    CHECK_STR(mime_content_type(NULL, "a.json", "utf-8"), "application/json");
    CHECK_STR(mime_content_type(NULL, "a.png", "utf-8"), "image/png");
    CHECK_STR(mime_content_type(NULL, "a.txt", NULL), "text/plain");
    CHECK(mime_content_type(NULL, "a.css", "utf-8") == mime_content_type(NULL, "b.css", "utf-8"));
    CHECK_INT(set(in, "charset", "iso-8859-1", err, sizeof err), 0);
    CHECK_STR(((struct static_inst *)in)->charset, "iso-8859-1");
    CHECK_INT(set(in, "charset", "utf 8", err, sizeof err), -1);
    CHECK_INT(set(in, "charset", "a;b", err, sizeof err), -1);
    CHECK_STR(err, "charset: \"a;b\" is not a charset name (or off)");
    CHECK_STR(((struct static_inst *)in)->charset, "iso-8859-1");
    CHECK_INT(set(in, "charset", "off", err, sizeof err), 0);
    CHECK(((struct static_inst *)in)->charset == NULL);
    verbd_module_static.destroy(in);
    CHECK_STR(verbd_module_static.name, "static");
}

/* hello.txt's ETag: its inode, then the mtime set in make_tree and its
 * size (set_hello_etag fills in the inode once the file exists). */
static char hello_core[64], hello_etag[80], hello_weak[80], hello_unquoted[64], hello_in_list[160],
    hello_x_list[120], hello_unterminated[80];

static void set_hello_etag(void)
{
    char p[512];
    struct stat st;
    snprintf(p, sizeof p, "%s/hello.txt", root);
    if (stat(p, &st) != 0)
        printf("FAIL stat hello.txt\n");
    snprintf(hello_core, sizeof hello_core, "%llx-6553f100-75bcd15-e",
             (unsigned long long)st.st_ino);
    snprintf(hello_etag, sizeof hello_etag, "\"%s\"", hello_core);
    snprintf(hello_weak, sizeof hello_weak, "W/\"%s\"", hello_core);
    snprintf(hello_unquoted, sizeof hello_unquoted, "%s", hello_core);
    snprintf(hello_in_list, sizeof hello_in_list, "\"a\", \"%s\" ,\"b\"", hello_core);
    snprintf(hello_x_list, sizeof hello_x_list, "\"x\", \"%s\"", hello_core);
    snprintf(hello_unterminated, sizeof hello_unterminated, "\"%s", hello_core);
}
static const char hello_lm[] = "Tue, 14 Nov 2023 22:13:20 GMT";

static void test_files(void *in)
{
    GET(in, "/hello.txt");
    CHECK_INT(res.status, 200);
    CHECK(body_is("Hello, world!\n"));
    CHECK_STR(hdr("Content-Type"), "text/plain; charset=utf-8");
    CHECK_STR(hdr("ETag"), hello_etag);
    CHECK_STR(hdr("Last-Modified"), hello_lm);
    CHECK_STR(hdr("Accept-Ranges"), "bytes");
    CHECK(hdr("Content-Length") == NULL); /* the core's */
    CHECK_INT(res.npieces, 1);            /* small: from the cache's memory */
    CHECK(res.pieces[0].fd < 0);

    /* HEAD builds the very same response; the core drops the body */
    struct buf head_get = {0};
    buf_append(&head_get, res.head.p, res.head.len);
    HEAD(in, "/hello.txt");
    CHECK_INT(res.status, 200);
    CHECK(res.head.len == head_get.len && memcmp(res.head.p, head_get.p, head_get.len) == 0);
    CHECK_INT(response_body_length(&res), 14);
    buf_free(&head_get);

    GET(in, "/empty.txt");
    CHECK_INT(res.status, 200);
    CHECK_INT(response_body_length(&res), 0);
    CHECK(hdr("ETag") != NULL);

    GET(in, "/style.CSS");
    CHECK_STR(hdr("Content-Type"), "text/css; charset=utf-8");
    GET(in, "/noext");
    CHECK_STR(hdr("Content-Type"), "application/octet-stream");
    GET(in, "/sub/inner.md");
    CHECK_INT(res.status, 200);
    CHECK_STR(hdr("Content-Type"), "text/markdown; charset=utf-8");
    CHECK(body_is("# hi"));

    /* the ETag changes with the content */
    char before[64];
    GET(in, "/noext");
    snprintf(before, sizeof before, "%s", hdr("ETag"));
    putstr("noext", "xy");
    clock_new_epoch(); /* the cache checks the path again */
    GET(in, "/noext");
    CHECK(strcmp(before, hdr("ETag")) != 0);
    CHECK(hdr("ETag")[0] == '"'); /* strong */
}

static void test_errors(void *in)
{
    GET(in, "/missing");
    CHECK_INT(res.status, 404);
    GET(in, "/missing/x");
    CHECK_INT(res.status, 404);
    GET(in, "/hello.txt/");
    CHECK_INT(res.status, 404);
    GET(in, "/hello.txt/x");
    CHECK_INT(res.status, 404);

    /* symlinks: followed while they stay beneath the root */
    GET(in, "/link_in");
    CHECK_INT(res.status, 200);
    CHECK(body_is("Hello, world!\n"));
    GET(in, "/link_dir/inner.md");
    CHECK_INT(res.status, 200);
    GET(in, "/link_abs");
    CHECK_INT(res.status, 403);
    CHECK(body_has("outside the root"));
    GET(in, "/link_up");
    CHECK_INT(res.status, 403);
    GET(in, "/link_up2");
    CHECK_INT(res.status, 403);
    GET(in, "/link_proc");
    CHECK_INT(res.status, 403);
    GET(in, "/link_dangling");
    CHECK_INT(res.status, 404);

    /* a FIFO neither blocks nor is served */
    GET(in, "/fifo");
    CHECK_INT(res.status, 403);
    CHECK(!holds_file());
    CHECK_STR(hdr("Content-Type"), "text/plain; charset=utf-8");

    if (geteuid() != 0) { /* root reads anything */
        putstr("secret.txt", "s");
        char p[512];
        snprintf(p, sizeof p, "%s/secret.txt", root);
        chmod(p, 0);
        GET(in, "/secret.txt");
        CHECK_INT(res.status, 403);
    }
}

static void test_dirs(void *in)
{
    char err[256];

    /* no trailing slash: 301 to the slashed path, query kept */
    GET(in, "/sub");
    CHECK_INT(res.status, 301);
    CHECK_STR(hdr("Location"), "/sub/");
    run_q(in, METHOD_GET, "/sub", "/sub", "a=1&b", NULL);
    CHECK_INT(res.status, 301);
    CHECK_STR(hdr("Location"), "/sub/?a=1&b");
    run_q(in, METHOD_GET, "/d \xc3\xa9%", "/d \xc3\xa9%", NULL, NULL);
    CHECK_INT(res.status, 301);
    CHECK_STR(hdr("Location"), "/d%20%C3%A9%25/");
    /* a mapping "/files" reached as "/files": subpath "/", path without '/' */
    run_q(in, METHOD_GET, "/files", "/", NULL, NULL);
    CHECK_INT(res.status, 301);
    CHECK_STR(hdr("Location"), "/files/");
    CHECK(!holds_file());
    /* never "//host/": a client would take it for another server */
    run_q(in, METHOD_GET, "//sub", "/sub", NULL, NULL);
    CHECK_STR(hdr("Location"), "/sub/");

    /* index file */
    GET(in, "/sub/");
    CHECK_INT(res.status, 200);
    CHECK_STR(hdr("Content-Type"), "text/html; charset=utf-8");
    CHECK(body_is("<p>sub</p>"));
    CHECK(hdr("ETag") != NULL);
    GET(in, "/link_dir/");
    CHECK_INT(res.status, 200);

    /* listing off */
    GET(in, "/list/");
    CHECK_INT(res.status, 403);
    CHECK(body_has("listing is off"));
    GET(in, "/emptydir/");
    CHECK_INT(res.status, 403);

    /* other index names, in order; a directory so named is skipped */
    set(in, "index", "nope.html default.htm", err, sizeof err);
    GET(in, "/idx/");
    CHECK_INT(res.status, 200);
    CHECK(body_is("default"));
    CHECK_STR(hdr("Content-Type"), "text/html; charset=utf-8");
    GET(in, "/sub/"); /* index.html is no longer an index name */
    CHECK_INT(res.status, 403);
    set(in, "index", "index.html", err, sizeof err);

    /* listing on */
    set(in, "listing", "on", err, sizeof err);
    run_q(in, METHOD_GET, "/files/list/", "/list/", NULL, NULL);
    CHECK_INT(res.status, 200);
    CHECK_STR(hdr("Content-Type"), "text/html; charset=utf-8");
    char *b = body(NULL);
    CHECK(strstr(b, "<title>Index of /files/list/</title>") != NULL);
    CHECK(strstr(b, "<a href=\"../\">../</a>") != NULL);
    CHECK(strstr(b, "<a href=\"a%26b%3Cc%3E.txt\">a&amp;b&lt;c&gt;.txt</a>") != NULL);
    CHECK(strstr(b, "<a href=\"x%20y.txt\">x y.txt</a>") != NULL);
    CHECK(strstr(b, "<a href=\"dir2/\">dir2/</a>") != NULL);
    CHECK(strstr(b, "hidden") == NULL);
    /* sorted */
    const char *pa = strstr(b, "a&amp;b"), *pb = strstr(b, ">b.txt<"), *pd = strstr(b, ">dir2/<"),
               *px = strstr(b, ">x y.txt<");
    CHECK(pa && pb && pd && px && pa < pb && pb < pd && pd < px);
    free(b);

    /* at the mapping root: no "../"; only what would be served is listed */
    run_q(in, METHOD_GET, "/files/", "/", NULL, NULL);
    CHECK_INT(res.status, 200);
    CHECK(!body_has("href=\"../\""));
    CHECK(body_has(">hello.txt<"));
    CHECK(body_has(">sub/<"));
    CHECK(!body_has("link_dangling"));
    CHECK(!body_has(">fifo<"));
    CHECK(body_has(">link_in<"));
    CHECK(body_has(">link_dir/<"));
    CHECK(!body_has("link_abs")); /* symlinks leading out are not listed */
    CHECK(!body_has("link_up"));
    CHECK(!body_has("link_proc"));

    GET(in, "/emptydir/");
    CHECK_INT(res.status, 200);
    CHECK(body_has("Index of /emptydir/"));
    GET(in, "/sub/"); /* an index still wins over a listing */
    CHECK(body_is("<p>sub</p>"));
    GET(in, "/list/", "If-None-Match", "*");
    CHECK_INT(res.status, 304);
    CHECK_INT(response_body_length(&res), 0);
    GET(in, "/list/", "If-Match", "\"x\"");
    CHECK_INT(res.status, 412);
    HEAD(in, "/list/");
    CHECK_INT(res.status, 200);
    set(in, "listing", "off", err, sizeof err);
}

static void test_conditional(void *in)
{
    /* If-None-Match: weak comparison */
    GET(in, "/hello.txt", "If-None-Match", hello_etag);
    CHECK_INT(res.status, 304);
    CHECK_STR(hdr("ETag"), hello_etag);
    CHECK_STR(hdr("Last-Modified"), hello_lm);
    CHECK(hdr("Content-Type") == NULL);
    CHECK_INT(res.npieces, 0);
    CHECK(!holds_file());
    GET(in, "/hello.txt", "If-None-Match", hello_weak);
    CHECK_INT(res.status, 304);
    GET(in, "/hello.txt", "If-None-Match", hello_in_list);
    CHECK_INT(res.status, 304);
    GET(in, "/hello.txt", "If-None-Match", "*");
    CHECK_INT(res.status, 304);
    HEAD(in, "/hello.txt", "If-None-Match", "*");
    CHECK_INT(res.status, 304);
    GET(in, "/hello.txt", "If-None-Match", "\"other\"");
    CHECK_INT(res.status, 200);
    GET(in, "/hello.txt", "If-None-Match", hello_unquoted); /* unquoted: malformed */
    CHECK_INT(res.status, 200);
    GET(in, "/missing", "If-None-Match", "*");
    CHECK_INT(res.status, 404);

    /* If-Modified-Since */
    GET(in, "/hello.txt", "If-Modified-Since", hello_lm);
    CHECK_INT(res.status, 304);
    GET(in, "/hello.txt", "If-Modified-Since", "Tuesday, 14-Nov-23 22:13:21 GMT");
    CHECK_INT(res.status, 304);
    GET(in, "/hello.txt", "If-Modified-Since", "Tue, 14 Nov 2023 22:13:19 GMT");
    CHECK_INT(res.status, 200);
    GET(in, "/hello.txt", "If-Modified-Since", "yesterday");
    CHECK_INT(res.status, 200);
    GET(in, "/hello.txt", "If-Modified-Since", "Fri, 31 Dec 9999 23:59:59 GMT");
    CHECK_INT(res.status, 304); /* a future date is a date (RFC 9110) */
    /* If-None-Match present: If-Modified-Since is not consulted */
    GET(in, "/hello.txt", "If-None-Match", "\"x\"", "If-Modified-Since", hello_lm);
    CHECK_INT(res.status, 200);

    /* If-Match: strong comparison */
    GET(in, "/hello.txt", "If-Match", hello_etag);
    CHECK_INT(res.status, 200);
    GET(in, "/hello.txt", "If-Match", hello_x_list);
    CHECK_INT(res.status, 200);
    GET(in, "/hello.txt", "If-Match", "*");
    CHECK_INT(res.status, 200);
    GET(in, "/hello.txt", "If-Match", "\"x\"");
    CHECK_INT(res.status, 412);
    CHECK(!holds_file());
    CHECK(hdr("ETag") == NULL);
    GET(in, "/hello.txt", "If-Match", hello_weak);
    CHECK_INT(res.status, 412);
    GET(in, "/hello.txt", "If-Match", hello_unterminated);
    CHECK_INT(res.status, 412);

    /* If-Unmodified-Since, only without If-Match */
    GET(in, "/hello.txt", "If-Unmodified-Since", "Tue, 14 Nov 2023 22:13:19 GMT");
    CHECK_INT(res.status, 412);
    GET(in, "/hello.txt", "If-Unmodified-Since", hello_lm);
    CHECK_INT(res.status, 200);
    GET(in, "/hello.txt", "If-Unmodified-Since", "garbage");
    CHECK_INT(res.status, 200);
    GET(in, "/hello.txt", "If-Match", "*", "If-Unmodified-Since", "Tue, 14 Nov 2023 22:13:19 GMT");
    CHECK_INT(res.status, 200);

    /* order: 412 before 304 */
    GET(in, "/hello.txt", "If-Match", "\"x\"", "If-None-Match", hello_etag);
    CHECK_INT(res.status, 412);
    GET(in, "/hello.txt", "If-Match", hello_etag, "If-None-Match", hello_etag);
    CHECK_INT(res.status, 304);
    /* conditions before ranges */
    GET(in, "/hello.txt", "If-None-Match", hello_etag, "Range", "bytes=0-1");
    CHECK_INT(res.status, 304);
    GET(in, "/hello.txt", "If-Match", "\"x\"", "Range", "bytes=0-1");
    CHECK_INT(res.status, 412);

    /* header names are case-insensitive */
    GET(in, "/hello.txt", "if-none-match", hello_etag);
    CHECK_INT(res.status, 304);

    /* the list parser directly */
    bool bad;
    CHECK(etag_list_match("\"a\"", 3, "\"a\"", true, &bad) && !bad);
    CHECK(!etag_list_match("W/\"a\"", 5, "\"a\"", true, &bad) && !bad);
    CHECK(etag_list_match("W/\"a\"", 5, "\"a\"", false, &bad));
    CHECK(etag_list_match(" , \"b\",,\"a\" ", 12, "\"a\"", true, &bad) && !bad);
    CHECK(!etag_list_match("\"a\" \"b\"", 7, "\"b\"", false, &bad) && bad);
    CHECK(!etag_list_match("", 0, "\"a\"", false, &bad) && bad);
    CHECK(!etag_list_match("\"a b\"", 5, "\"a b\"", false, &bad) && bad);
    CHECK(!etag_list_match("\"a\", *", 6, "\"a\"", false, &bad) && bad);
    CHECK(etag_list_match("*", 1, NULL, true, &bad));
    CHECK(!etag_list_match("\"a\"", 3, NULL, false, &bad) && !bad);
}

/* The bytes of data.bin in [a, b]. */
static bool data_is(const char *b, size_t a, size_t last)
{
    return memcmp(b, data + a, last - a + 1) == 0;
}

static void check_single(void *in, const char *range, size_t a, size_t last)
{
    GET(in, "/data.bin", "Range", range);
    CHECK_INT(res.status, 206);
    char cr[64];
    snprintf(cr, sizeof cr, "bytes %zu-%zu/1000", a, last);
    CHECK_STR(hdr("Content-Range"), cr);
    CHECK_STR(hdr("Content-Type"), "application/octet-stream");
    size_t n;
    char *b = body(&n);
    CHECK_INT(n, last - a + 1);
    CHECK(n == last - a + 1 && data_is(b, a, last));
    free(b);
}

static void test_ranges(void *in)
{
    check_single(in, "bytes=0-9", 0, 9);
    check_single(in, "bytes=990-", 990, 999);
    check_single(in, "bytes=-10", 990, 999);
    check_single(in, "bytes=-2000", 0, 999);
    check_single(in, "bytes=995-2000", 995, 999);
    check_single(in, "bytes=0-0", 0, 0);
    check_single(in, "Bytes=5-5", 5, 5);
    check_single(in, "bytes=999-999", 999, 999);
    check_single(in, "bytes=0-99999999999999999999999", 0, 999);
    check_single(in, "bytes= 1-2 ,", 1, 2);
    /* one satisfiable range among several: a single part */
    check_single(in, "bytes=0-1, 2000-3000", 0, 1);
    CHECK(hdr("ETag") != NULL && hdr("Last-Modified") != NULL);
    CHECK_INT(hdr_count("Content-Type"), 1);

    /* ignored: 200 with everything */
    static const char *const ignored[] = {
        "bytes=5-1",
        "bites=0-1",
        "bytes=abc",
        "bytes=",
        "bytes = 0-1",
        "bytes=0-1;",
        "bytes=--1",
        "bytes=1",
        "bytes=0 -1",
        "bytes=-",
        "items=0-1",
        "bytes=0-1,5-3",
        "bytes=-1-2",
        "",
        "bytes=0-999,0-999,0-999", /* overlapping beyond twice the size */
        /* more than 16 ranges */
        ("bytes=0-0,1-1,2-2,3-3,4-4,5-5,6-6,7-7,8-8,9-9,10-10,11-11,12-12,13-13,14-14,15-15,"
         "16-16"),
    };
    for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++) {
        GET(in, "/data.bin", "Range", ignored[i]);
        if (res.status != 200)
            printf("Range \"%s\": %d\n", ignored[i], res.status);
        CHECK_INT(res.status, 200);
        CHECK_INT(response_body_length(&res), 1000);
        CHECK(hdr("Content-Range") == NULL);
    }

    /* unsatisfiable */
    static const char *const unsat[] = {"bytes=1000-", "bytes=1000-1001", "bytes=-0",
                                        "bytes=5000-, 1000-1000", "bytes=99999999999999999999-"};
    for (size_t i = 0; i < sizeof unsat / sizeof unsat[0]; i++) {
        GET(in, "/data.bin", "Range", unsat[i]);
        CHECK_INT(res.status, 416);
        CHECK_STR(hdr("Content-Range"), "bytes */1000");
        CHECK(!holds_file());
        CHECK_INT(res.npieces, 0);
        CHECK(hdr("ETag") == NULL);
    }
    GET(in, "/empty.txt", "Range", "bytes=0-");
    CHECK_INT(res.status, 416);
    CHECK_STR(hdr("Content-Range"), "bytes */0");
    CHECK_INT(response_body_length(&res), 0);
    GET(in, "/empty.txt", "Range", "bytes=-1");
    CHECK_INT(res.status, 416);
    GET(in, "/empty.txt", "Range", "bytes=x");
    CHECK_INT(res.status, 200);

    /* multipart */
    GET(in, "/data.bin", "Range", "bytes=0-1, 10-12,-3");
    CHECK_INT(res.status, 206);
    CHECK(hdr("Content-Range") == NULL);
    const char *ct = hdr("Content-Type");
    const char *pfx = "multipart/byteranges; boundary=";
    CHECK(ct && strncmp(ct, pfx, strlen(pfx)) == 0);
    if (ct && strncmp(ct, pfx, strlen(pfx)) == 0) {
        char bd[128];
        snprintf(bd, sizeof bd, "%s", ct + strlen(pfx));
        struct buf want = {0};
        buf_printf(&want,
                   "--%s\r\nContent-Type: application/octet-stream\r\n"
                   "Content-Range: bytes 0-1/1000\r\n\r\n",
                   bd);
        buf_append(&want, data, 2);
        buf_printf(&want,
                   "\r\n--%s\r\nContent-Type: application/octet-stream\r\n"
                   "Content-Range: bytes 10-12/1000\r\n\r\n",
                   bd);
        buf_append(&want, data + 10, 3);
        buf_printf(&want,
                   "\r\n--%s\r\nContent-Type: application/octet-stream\r\n"
                   "Content-Range: bytes 997-999/1000\r\n\r\n",
                   bd);
        buf_append(&want, data + 997, 3);
        buf_printf(&want, "\r\n--%s--\r\n", bd);
        size_t n;
        char *b = body(&n);
        CHECK_INT(n, want.len);
        CHECK(n == want.len && memcmp(b, want.p, n) == 0);
        free(b);
        buf_free(&want);
        /* the boundary differs from one response to the next */
        GET(in, "/data.bin", "Range", "bytes=0-1,3-4");
        CHECK(strcmp(hdr("Content-Type") + strlen(pfx), bd) != 0);
    }
    /* twice the size exactly is still served */
    GET(in, "/data.bin", "Range", "bytes=0-999,0-999");
    CHECK_INT(res.status, 206);
    CHECK(response_body_length(&res) > 2000);

    /* HEAD mirrors GET */
    HEAD(in, "/data.bin", "Range", "bytes=0-9");
    CHECK_INT(res.status, 206);
    CHECK_STR(hdr("Content-Range"), "bytes 0-9/1000");

    /* If-Range */
    GET(in, "/hello.txt", "Range", "bytes=0-4", "If-Range", hello_etag);
    CHECK_INT(res.status, 206);
    CHECK(body_is("Hello"));
    GET(in, "/hello.txt", "Range", "bytes=0-4", "If-Range", "\"stale\"");
    CHECK_INT(res.status, 200);
    CHECK(body_is("Hello, world!\n"));
    GET(in, "/hello.txt", "Range", "bytes=0-4", "If-Range", hello_weak);
    CHECK_INT(res.status, 200);
    GET(in, "/hello.txt", "Range", "bytes=0-4", "If-Range", hello_lm);
    CHECK_INT(res.status, 206);
    GET(in, "/hello.txt", "Range", "bytes=0-4", "If-Range", "Tue, 14 Nov 2023 22:13:21 GMT");
    CHECK_INT(res.status, 200);
    GET(in, "/hello.txt", "Range", "bytes=0-4", "If-Range", "nonsense");
    CHECK_INT(res.status, 200);
    GET(in, "/hello.txt", "If-Range", "\"stale\""); /* no Range: nothing to do */
    CHECK_INT(res.status, 200);

    /* the parser directly */
    struct byte_range r[RANGE_MAX];
    size_t count;
    CHECK_INT(range_parse("bytes=0-0,-1", 12, 10, r, &count), RANGE_SATISFIABLE);
    CHECK_INT(count, 2);
    CHECK(r[0].first == 0 && r[0].last == 0 && r[1].first == 9 && r[1].last == 9);
    CHECK_INT(range_parse("bytes=0-1", 9, 0, r, &count), RANGE_UNSATISFIABLE);
    /* the length is respected: "bytes=0-" is an open range */
    CHECK_INT(range_parse("bytes=0-1", 8, 10, r, &count), RANGE_SATISFIABLE);
    CHECK(count == 1 && r[0].first == 0 && r[0].last == 9);
    CHECK_INT(range_parse("bytes=0-1", 7, 10, r, &count), RANGE_IGNORE);
}

static void test_fallback(void *vin)
{
    const struct static_inst *in = vin;
    int status = 0;
    const char *why;
    int fd;
    static const struct {
        const char *rel;
        int status;
    } cases[] = {
        {"hello.txt", 0},
        {".", 0},
        {"sub", 0},
        {"sub/index.html", 0},
        {"link_in", 0},
        {"link_dir/inner.md", 0},
        {"missing", 404},
        {"sub/missing", 404},
        {"hello.txt/x", 404},
        {"link_abs", 403},
        {"link_up", 403},
        {"link_up2", 403},
        {"link_dangling", 404},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        status = 0;
        fd = static_open_fallback(in, cases[i].rel, &status, &why);
        if (cases[i].status == 0) {
            if (fd < 0)
                printf("fallback %s: %d\n", cases[i].rel, status);
            CHECK(fd >= 0);
            if (fd >= 0)
                close(fd);
        } else {
            if (status != cases[i].status)
                printf("fallback %s: %d\n", cases[i].rel, status);
            CHECK_INT(fd, -1);
            CHECK_INT(status, cases[i].status);
        }
    }
    /* the same answers from the openat2 path */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        status = 0;
        fd = static_open(in, cases[i].rel, &status, &why);
        if (fd >= 0)
            close(fd);
        CHECK_INT(fd >= 0 ? 0 : status, cases[i].status);
    }
}

/* ---- verbd_response_file_shared: one release per call, fd never closed */

static int releases;
static void count_release(void *ctx)
{
    CHECK(ctx == &releases);
    releases++;
}

static void test_shared_file(void)
{
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct verbd_response r;
    response_init(&r);
    verbd_response_file_shared(&r, fd, 0, 10, count_release, &releases);
    verbd_response_file_shared(&r, fd, 20, 10, count_release, &releases);
    CHECK_INT(releases, 1); /* the response holds the file once */
    CHECK_INT((int)r.npieces, 2);
    CHECK_INT((int)response_body_length(&r), 20);
    response_reset(&r);
    CHECK_INT(releases, 2);
    verbd_response_file_shared(&r, fd, 0, 1, count_release, &releases);
    verbd_response_error(&r, 500, NULL); /* drops the body, and the file */
    CHECK_INT(releases, 3);
    response_free(&r);
    CHECK_INT(releases, 3);
    CHECK(fcntl(fd, F_GETFD) >= 0); /* never closed by verbd */
    close(fd);
}

int main(void)
{
    response_init(&res); /* a zeroed response would own fd 0 */
    build_tree();
    set_hello_etag();
    int fds = count_fds();
    test_mime();
    test_create_set();
    test_shared_file();
    char err[256];
    void *in = verbd_module_static.create(NULL, root, err, sizeof err);
    if (!in) {
        printf("create: %s\n", err);
        return 1;
    }
    test_files(in);
    test_errors(in);
    test_dirs(in);
    test_conditional(in);
    test_ranges(in);
    test_fallback(in);
    response_free(&res);
    verbd_module_static.destroy(in);
    CHECK_INT(count_fds(), fds); /* nothing leaked */
    rm_tree(tmp);
    return unit_report();
}
