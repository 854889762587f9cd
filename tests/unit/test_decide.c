/* The method decision of DESIGN.md ("The method decision"), driven through
 * lib/route's real API: tables built with route_add (static and webdav over
 * a temporary tree), route_add_handler (C handlers with their own method
 * lists, extension methods included) and route_set, finished as the server
 * finishes them; then one request per row, parsed as the session parses
 * it, decided with route_decide and answered with route_start on an
 * exchange whose session is a fake that keeps what it is sent.
 *
 * Each row: method, target -> verdict, status, the mapping chosen, and the
 * exact Allow (NULL: no Allow field at all).
 *
 * The regressions at the end are bugs these tests found. */
#define _XOPEN_SOURCE 700
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/exchange.h"
#include "core/settings.h"
#include "http/method.h"
#include "http/parse.h"
#include "route/route.h"
#include "unit.h"

/* ---- fixture: a temporary tree ---------------------------------------------- */

static char base[64];

static void make_path(const char *rel, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", base, rel);
}

static void mkdir_rel(const char *rel)
{
    char p[256];
    make_path(rel, p, sizeof p);
    if (mkdir(p, 0755) != 0) {
        perror(p);
        exit(2);
    }
}

static void file_rel(const char *rel, const char *text)
{
    char p[256];
    make_path(rel, p, sizeof p);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
        perror(p);
        exit(2);
    }
    close(fd);
}

static void build_tree(void)
{
    snprintf(base, sizeof base, "/tmp/verbd-decide-XXXXXX");
    if (!mkdtemp(base)) {
        perror("mkdtemp");
        exit(2);
    }
    mkdir_rel("www");
    file_rel("www/hello.txt", "Hello\n");
    file_rel("www/robots.txt", "User-agent: *\n");
    mkdir_rel("www/sub");
    file_rel("www/sub/index.html", "<p>sub</p>\n");
    /* webdav roots; their databases go beside them, in base */
    mkdir_rel("dav");
    file_rel("dav/file.txt", "file\n");
    mkdir_rel("dav/coll");
    file_rel("dav/coll/inner.txt", "inner\n");
    mkdir_rel("davro");
    file_rel("davro/doc.txt", "doc\n");
    mkdir_rel("davro/d");
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static void rm_tree(void)
{
    nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- building tables ------------------------------------------------------------ */

static char err[256];

static struct route_mapping *add(struct route_table *t, const char *location, const char *module,
                                 const char *rel)
{
    char p[256];
    make_path(rel, p, sizeof p);
    /* A URL (a proxy's upstream) is taken as it is; other arguments are
     * directories of the tree. */
    struct route_mapping *m =
        route_add(t, location, module, strstr(rel, "://") ? rel : p, err, sizeof err);
    if (!m) {
        printf("route_add %s %s: %s\n", location, module, err);
        exit(2);
    }
    return m;
}

/* A C handler: answers "<method> <path> <subpath>" with 200. */
static int handler_calls;

static void answer_handler(void *data, const struct verbd_request *req, struct verbd_response *res)
{
    (void)data;
    handler_calls++;
    size_t n;
    const char *m = verbd_request_method(req, &n);
    verbd_response_header(res, "Content-Type", "text/plain");
    verbd_response_body(res, m, n);
    verbd_response_body(res, " ", 1);
    verbd_response_body(res, verbd_request_path(req), strlen(verbd_request_path(req)));
    verbd_response_body(res, " ", 1);
    verbd_response_body(res, verbd_request_subpath(req), strlen(verbd_request_subpath(req)));
}

static struct route_mapping *add_handler(struct route_table *t, const char *location,
                                         const char *methods)
{
    struct route_mapping *m =
        route_add_handler(t, location, methods, answer_handler, NULL, NULL, err, sizeof err);
    if (!m) {
        printf("route_add_handler %s: %s\n", location, err);
        exit(2);
    }
    return m;
}

/* route_set with its arguments as one space-separated string. */
static void set(struct route_mapping *m, const char *name, const char *args)
{
    char copy[256];
    const char *argv[16];
    int argc = 0;
    snprintf(copy, sizeof copy, "%s", args);
    for (char *s = strtok(copy, " "); s && argc < 16; s = strtok(NULL, " "))
        argv[argc++] = s;
    if (route_set(m, name, argc, argv, err, sizeof err) != 0) {
        printf("route_set %s %s: %s\n", name, args, err);
        exit(2);
    }
}

/* As the server settles its table (engine/server.c, settle_routes), with
 * the server's max_body unset unless finish_body says otherwise. */
static void finish_body(struct route_table *t, int unknown_method, long refusal_max_age,
                        uint64_t max_body)
{
    t->unknown_405 = unknown_method == 405;
    t->refusal_max_age = refusal_max_age;
    t->max_body = max_body;
    t->has_max_body = max_body != BODY_LIMIT_UNSET; /* as the server sets it */
    route_finish(t);
}

static void finish(struct route_table *t, int unknown_method, long refusal_max_age)
{
    finish_body(t, unknown_method, refusal_max_age, BODY_LIMIT_UNSET);
}

/* ---- a fake session: keeps what the exchange sends ------------------------------ */

struct captured {
    int sends, lasts, aborts;
    int status;
    bool close;      /* the response asked to close the connection */
    char head[2048]; /* the response's fields, "Name: value\r\n" each */
    char body[2048]; /* memory pieces only */
    size_t body_len;
    size_t file_bytes; /* bytes of file pieces */
    char extra[512];   /* the mapping's `header` lines, if any */
};

static struct captured cap;

static bool fake_send(void *sess, struct verbd_exchange *x, bool last)
{
    (void)sess;
    struct verbd_response *res = &x->res;
    if (!cap.sends++) {
        cap.status = res->status;
        cap.close = res->close;
        snprintf(cap.head, sizeof cap.head, "%.*s", (int)res->head.len,
                 res->head.p ? res->head.p : "");
        if (x->extra_head)
            snprintf(cap.extra, sizeof cap.extra, "%.*s", (int)x->extra_head->len,
                     x->extra_head->p);
        x->head_sent = true;
    }
    for (size_t i = 0; i < res->npieces; i++) {
        const struct body_piece *p = &res->pieces[i];
        if (p->fd >= 0) {
            cap.file_bytes += p->len;
            continue;
        }
        size_t n = p->len;
        if (n > sizeof cap.body - 1 - cap.body_len)
            n = sizeof cap.body - 1 - cap.body_len;
        memcpy(cap.body + cap.body_len, res->body.p + p->offset, n);
        cap.body_len += n;
        cap.body[cap.body_len] = '\0';
    }
    response_clear_body(res);
    cap.lasts += last;
    return true;
}

static void fake_abort(void *sess, struct verbd_exchange *x)
{
    (void)sess, (void)x;
    cap.aborts++;
}

static void fake_nothing(void *sess, struct verbd_exchange *x)
{
    (void)sess, (void)x;
}

static void fake_pause(void *sess, struct verbd_exchange *x, bool paused)
{
    (void)sess, (void)x, (void)paused;
}

static const struct vx_session_ops fake_ops = {
    .send = fake_send,
    .abort = fake_abort,
    .read = fake_nothing,
    .pause = fake_pause,
    .send_continue = fake_nothing,
};

/* Every value of the field `name` in the captured head, joined with "|";
 * NULL if there is none. */
static const char *field(const char *name)
{
    static char out[1024];
    out[0] = '\0';
    bool any = false;
    size_t nl = strlen(name);
    for (const char *p = cap.head; *p;) {
        const char *eol = strstr(p, "\r\n");
        if (!eol)
            break;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (colon && (size_t)(colon - p) == nl && strncasecmp(p, name, nl) == 0) {
            const char *v = colon + 1;
            while (*v == ' ')
                v++;
            size_t used = strlen(out);
            snprintf(out + used, sizeof out - used, "%s%.*s", any ? "|" : "", (int)(eol - v), v);
            any = true;
        }
        p = eol + 2;
    }
    return any ? out : NULL;
}

/* ---- one request through parse, decide and start ---------------------------------- */

/* As settings_limits: the parser refuses no body length; the location's
 * max_body is the router's, after the method decision. */
static const struct http_limits limits = {
    .max_target = 8192,
    .max_header = 16384,
    .max_fields = 32,
    .max_body = BODY_UNLIMITED,
};

/* What a row expects. */
enum { PARSE = -1 }; /* the parser refuses it: no decision */
#define SERVE VERDICT_SERVE
#define ANSWER VERDICT_ANSWER
#define REFUSE VERDICT_REFUSE

struct row {
    int line;
    const char *method, *target;
    int verdict;       /* SERVE, ANSWER, REFUSE or PARSE */
    int status;        /* the refusal or answer; for SERVE the module's
                          status (0: do not start the module) */
    const char *loc;   /* the mapping's location; NULL: none */
    const char *allow; /* the exact Allow; NULL: no Allow field */
};
#define ROW(...)                                                                                   \
    {                                                                                              \
        __LINE__, __VA_ARGS__                                                                      \
    }

struct outcome {
    int parse; /* http_parse_request's result */
    enum verdict v;
    int refusal;
    const char *loc; /* req->mapping's location, or NULL */
    char subpath[256];
    char path[256];
    int method_id;
    uint64_t max_body; /* req->max_body: what the session would read */
};

static struct outcome last;

/* Parses `raw`, decides, and (if `start`) runs route_start; the answer is
 * in cap.  Returns false if the parser refused the request. */
static bool run_raw(const struct route_table *t, const char *raw, bool start)
{
    memset(&cap, 0, sizeof cap);
    memset(&last, 0, sizeof last);
    struct http_field fields[32];
    struct http_request h;
    const char *why = NULL;
    last.parse = http_parse_request(raw, strlen(raw), &limits, fields, &h, &why);
    if (last.parse <= 0)
        return false;
    struct verbd_exchange *x = vx_new(NULL, &fake_ops, NULL);
    vx_take_request(x, &h, raw);
    x->body_done = true;
    last.v = route_decide(t, x);
    last.refusal = x->req.refusal;
    last.loc = x->req.mapping ? x->req.mapping->location : NULL;
    last.method_id = x->req.method_id;
    last.max_body = x->req.max_body;
    snprintf(last.path, sizeof last.path, "%s", x->req.path ? x->req.path : "(null)");
    snprintf(last.subpath, sizeof last.subpath, "%s", x->req.subpath ? x->req.subpath : "(null)");
    if (start)
        route_start(t, last.v, x);
    vx_end(x);
    return true;
}

static bool run(const struct route_table *t, const char *method, const char *target, bool start)
{
    char raw[1024];
    snprintf(raw, sizeof raw, "%s %s HTTP/1.1\r\nHost: example.test\r\n\r\n", method, target);
    return run_raw(t, raw, start);
}

#define ROW_FAIL(r, fmt, ...)                                                                      \
    do {                                                                                           \
        unit_failed++;                                                                             \
        printf("FAIL %s:%d: %s %s: " fmt "\n", __FILE__, (r)->line, (r)->method, (r)->target,      \
               __VA_ARGS__);                                                                       \
    } while (0)
#define ROW_INT(r, what, got, want)                                                                \
    do {                                                                                           \
        if ((got) == (want))                                                                       \
            unit_passed++;                                                                         \
        else                                                                                       \
            ROW_FAIL(r, "%s %d, want %d", what, (int)(got), (int)(want));                          \
    } while (0)
#define ROW_STR(r, what, got, want)                                                                \
    do {                                                                                           \
        const char *g_ = (got), *w_ = (want);                                                      \
        if ((!g_ && !w_) || (g_ && w_ && strcmp(g_, w_) == 0))                                     \
            unit_passed++;                                                                         \
        else                                                                                       \
            ROW_FAIL(r, "%s \"%s\", want \"%s\"", what, g_ ? g_ : "(none)", w_ ? w_ : "(none)");   \
    } while (0)

static const char *verdict_name(int v)
{
    switch (v) {
    case SERVE: return "SERVE";
    case ANSWER: return "ANSWER";
    case REFUSE: return "REFUSE";
    default: return "PARSE";
    }
}

/* Checks one row; `max_age` is the table's refusal_cache (-1: off). */
static void check_row(const struct route_table *t, const struct row *r, long max_age)
{
    bool start = r->verdict != SERVE || r->status;
    if (!run(t, r->method, r->target, start)) {
        ROW_STR(r, "verdict", "PARSE", verdict_name(r->verdict));
        ROW_INT(r, "parse status", -last.parse, r->status);
        return;
    }
    ROW_STR(r, "verdict", verdict_name(last.v), verdict_name(r->verdict));
    ROW_INT(r, "refusal", last.refusal, r->verdict == REFUSE ? r->status : 0);
    ROW_STR(r, "mapping", last.loc, r->loc);
    if (!start)
        return;
    ROW_INT(r, "answers", cap.sends > 0 && cap.lasts == 1 && !cap.aborts, 1);
    ROW_INT(r, "status", cap.status, r->status);
    if (r->verdict != SERVE)
        ROW_STR(r, "Allow", field("Allow"), r->allow);
    /* refusal_cache: on 405 and 501 only, never on anything else. */
    char cc[32];
    snprintf(cc, sizeof cc, "max-age=%ld", max_age);
    bool refused_method = r->verdict == REFUSE && (r->status == 405 || r->status == 501);
    ROW_STR(r, "Cache-Control", field("Cache-Control"), refused_method && max_age >= 0 ? cc : NULL);
    /* A refusal's body names the method and, for 405, lists the Allow. */
    if (refused_method) {
        char want[640];
        snprintf(want, sizeof want, "The method %s ", r->method);
        if (!strstr(cap.body, want))
            ROW_FAIL(r, "body \"%s\" does not name the method", cap.body);
        else
            unit_passed++;
    }
    if (r->verdict == REFUSE && r->status == 405 && r->allow) {
        char want[640];
        snprintf(want, sizeof want, "Allowed here: %s.\n", r->allow);
        if (!strstr(cap.body, want))
            ROW_FAIL(r, "405 body \"%s\" lacks \"%s\"", cap.body, want);
        else
            unit_passed++;
    }
}

static void check_rows(const struct route_table *t, const struct row *rows, size_t n, long max_age)
{
    for (size_t i = 0; i < n; i++)
        check_row(t, &rows[i], max_age);
}
#define CHECK_ROWS(t, rows, max_age) check_rows(t, rows, sizeof rows / sizeof rows[0], max_age)

/* ---- the main table ---------------------------------------------------------------- */

/* Allow values, in the registry's order (http/method.h). */
#define A_WWW "GET, HEAD, OPTIONS, TRACE" /* "/": static, trace on */
#define A_GET "GET, HEAD, OPTIONS"        /* static narrowed to GET (or GET HEAD) */
#define A_DAV                                                                                      \
    "GET, HEAD, PUT, DELETE, OPTIONS, COPY, LOCK, MKCOL, MOVE, PROPFIND, PROPPATCH, UNLOCK"
#define A_DAV_FILE "GET, HEAD, PUT, DELETE, OPTIONS, COPY, LOCK, MOVE, PROPFIND, PROPPATCH, UNLOCK"
#define A_DAV_COLL "GET, HEAD, DELETE, OPTIONS, COPY, LOCK, MOVE, PROPFIND, PROPPATCH, UNLOCK"
#define A_DAV_MISSING "PUT, OPTIONS, LOCK, MKCOL"
#define A_RO "GET, HEAD, OPTIONS, PROPFIND" /* webdav narrowed */
#define A_API "GET, HEAD, POST, OPTIONS, BREW"
#define A_TEA "OPTIONS, STEEP"
#define A_ALL                                                                                      \
    "GET, HEAD, POST, PUT, DELETE, OPTIONS, TRACE, COPY, LOCK, MKCOL, MOVE, "                      \
    "PROPFIND, PROPPATCH, UNLOCK, BREW, STEEP"

/*
 * location /           { static www; trace on; header X-Loc root; }
 * location /files/     { webdav dav; }
 * location /files/ro/  { webdav davro; methods GET HEAD PROPFIND OPTIONS; }
 * location /api        handler "GET POST BREW"
 * location /tea/       handler "BREW STEEP"; methods STEEP
 * location = /robots.txt { static www; methods GET; }
 * location /pub        { static www; methods GET HEAD; }
 * unknown_method 501; refusal_cache off;
 */
static void build_main(struct route_table *t)
{
    struct route_mapping *m = add(t, "/", "static", "www");
    set(m, "trace", "on");
    set(m, "header", "X-Loc root");
    add(t, "/files/", "webdav", "dav");
    m = add(t, "/files/ro/", "webdav", "davro");
    set(m, "methods", "GET HEAD PROPFIND OPTIONS");
    add_handler(t, "/api", "GET POST BREW");
    m = add_handler(t, "/tea/", "BREW STEEP");
    set(m, "methods", "STEEP");
    m = add(t, "= /robots.txt", "static", "www");
    set(m, "methods", "GET");
    m = add(t, "/pub", "static", "www");
    set(m, "methods", "GET HEAD");
    finish(t, 501, -1);
}

static const struct row main_rows[] = {
    /* Step 1: the parser's refusals come first. */
    ROW("GE(T", "/", PARSE, 400, NULL, NULL),
    ROW("BREW", "*", PARSE, 400, NULL, NULL), /* "*" is for OPTIONS only */
    ROW("GET", "*", PARSE, 400, NULL, NULL),
    ROW("CONNECT", "/", PARSE, 400, NULL, NULL), /* CONNECT needs host:port */
    /* Step 2: unknown tokens are 501 on every target, existing or not. */
    ROW("WHEN", "/", REFUSE, 501, "/", NULL),
    ROW("WHEN", "/hello.txt", REFUSE, 501, "/", NULL),
    ROW("WHEN", "/nope", REFUSE, 501, "/", NULL),
    ROW("WHEN", "/files/file.txt", REFUSE, 501, "/files/", NULL),
    ROW("WHEN", "/files/missing", REFUSE, 501, "/files/", NULL),
    ROW("WHEN", "/api", REFUSE, 501, "/api", NULL),
    ROW("WHEN", "/tea/pot", REFUSE, 501, "/tea/", NULL),
    ROW("WHEN", "/robots.txt", REFUSE, 501, "= /robots.txt", NULL),
    /* Methods are case-sensitive: lowercase is another, unknown, token. */
    ROW("get", "/", REFUSE, 501, "/", NULL),
    ROW("get", "/hello.txt", REFUSE, 501, "/", NULL),
    ROW("Get", "/api", REFUSE, 501, "/api", NULL),
    ROW("brew", "/api", REFUSE, 501, "/api", NULL),
    ROW("options", "/", REFUSE, 501, "/", NULL),
    ROW("trace", "/", REFUSE, 501, "/", NULL),
    /* Registered but implemented by nothing enabled here. */
    ROW("PATCH", "/", REFUSE, 501, "/", NULL),
    ROW("PATCH", "/api", REFUSE, 501, "/api", NULL),
    ROW("PATCH", "/files/file.txt", REFUSE, 501, "/files/", NULL),
    ROW("REPORT", "/files/coll/", REFUSE, 501, "/files/", NULL),
    ROW("SEARCH", "/files/", REFUSE, 501, "/files/", NULL),
    ROW("QUERY", "/hello.txt", REFUSE, 501, "/", NULL),
    ROW("MKCALENDAR", "/files/cal/", REFUSE, 501, "/files/", NULL),
    ROW("CONNECT", "example.test:443", REFUSE, 501, NULL, NULL),
    ROW("PRI", "/", REFUSE, 501, "/", NULL),
    /* 501 wins over a bad or unmappable path. */
    ROW("WHEN", "/../etc/passwd", REFUSE, 501, NULL, NULL),
    ROW("WHEN", "/a%zz", REFUSE, 501, NULL, NULL),
    ROW("WHEN", "/a%00b", REFUSE, 501, NULL, NULL),
    ROW("WHEN", "/a%2Fb", REFUSE, 501, NULL, NULL),
    ROW("PATCH", "/files/../../x", REFUSE, 501, NULL, NULL),
    ROW("get", "/../x", REFUSE, 501, NULL, NULL),
    /* Bad paths with implemented methods: 400 (404 for an encoded slash). */
    ROW("GET", "/../etc/passwd", REFUSE, 400, NULL, NULL),
    ROW("GET", "/files/../../x", REFUSE, 400, NULL, NULL),
    ROW("GET", "/a%zz", REFUSE, 400, NULL, NULL),
    ROW("GET", "/a%00b", REFUSE, 400, NULL, NULL),
    ROW("GET", "/a%2Fb", REFUSE, 404, NULL, NULL),
    ROW("BREW", "/../api", REFUSE, 400, NULL, NULL),
    ROW("OPTIONS", "/..", REFUSE, 400, NULL, NULL),
    ROW("PUT", "/files/%2e%2e/%2e%2e/x", REFUSE, 400, NULL, NULL),
    /* Step 4: 405 + the mapping's Allow, narrowed by `methods`. */
    ROW("PUT", "/hello.txt", REFUSE, 405, "/", A_WWW),
    ROW("PUT", "/nope", REFUSE, 405, "/", A_WWW),
    ROW("POST", "/", REFUSE, 405, "/", A_WWW),
    ROW("DELETE", "/sub/", REFUSE, 405, "/", A_WWW),
    ROW("BREW", "/", REFUSE, 405, "/", A_WWW),
    ROW("STEEP", "/hello.txt", REFUSE, 405, "/", A_WWW),
    ROW("PROPFIND", "/hello.txt", REFUSE, 405, "/", A_WWW),
    ROW("MKCOL", "/x/", REFUSE, 405, "/", A_WWW),
    ROW("STEEP", "/api", REFUSE, 405, "/api", A_API),
    ROW("PUT", "/api", REFUSE, 405, "/api", A_API),
    ROW("DELETE", "/api/x", REFUSE, 405, "/api", A_API),
    ROW("TRACE", "/api", REFUSE, 405, "/api", A_API),
    ROW("BREW", "/tea/pot", REFUSE, 405, "/tea/", A_TEA), /* narrowed away */
    ROW("GET", "/tea/pot", REFUSE, 405, "/tea/", A_TEA),
    ROW("HEAD", "/tea/pot", REFUSE, 405, "/tea/", A_TEA),
    ROW("POST", "/tea/", REFUSE, 405, "/tea/", A_TEA),
    ROW("PUT", "/robots.txt", REFUSE, 405, "= /robots.txt", A_GET),
    ROW("TRACE", "/robots.txt", REFUSE, 405, "= /robots.txt", A_GET), /* trace is per mapping */
    ROW("PUT", "/pub/hello.txt", REFUSE, 405, "/pub", A_GET),
    ROW("PUT", "/pub", REFUSE, 405, "/pub", A_GET),
    ROW("TRACE", "/pub/", REFUSE, 405, "/pub", A_GET),
    ROW("PUT", "/pubx", REFUSE, 405, "/", A_WWW), /* "/pub" is no prefix of "/pubx" */
    /* WebDAV: the resource's state refines the Allow. */
    ROW("MKCOL", "/files/file.txt", REFUSE, 405, "/files/", A_DAV_FILE),
    ROW("PUT", "/files/coll/", REFUSE, 405, "/files/", A_DAV_COLL),
    ROW("PUT", "/files/coll", REFUSE, 405, "/files/", A_DAV_COLL),
    ROW("MKCOL", "/files/coll/", REFUSE, 405, "/files/", A_DAV_COLL),
    ROW("PUT", "/files/", REFUSE, 405, "/files/", A_DAV_COLL),
    ROW("PUT", "/files", REFUSE, 405, "/files/", A_DAV_COLL),
    ROW("POST", "/files/file.txt", REFUSE, 405, "/files/", A_DAV_FILE),
    ROW("TRACE", "/files/file.txt", REFUSE, 405, "/files/", A_DAV_FILE),
    ROW("BREW", "/files/coll/", REFUSE, 405, "/files/", A_DAV_COLL),
    ROW("POST", "/files/missing", REFUSE, 405, "/files/", A_DAV_MISSING),
    ROW("TRACE", "/files/missing", REFUSE, 405, "/files/", A_DAV_MISSING),
    ROW("BREW", "/files/coll/missing/", REFUSE, 405, "/files/", A_DAV_MISSING),
    ROW("PUT", "/files/ro/doc.txt", REFUSE, 405, "/files/ro/", A_RO),
    ROW("DELETE", "/files/ro/d/", REFUSE, 405, "/files/ro/", A_RO),
    ROW("MKCOL", "/files/ro/d/", REFUSE, 405, "/files/ro/", A_RO),
    ROW("LOCK", "/files/ro/doc.txt", REFUSE, 405, "/files/ro/", A_RO),
    ROW("PUT", "/files/ro", REFUSE, 405, "/files/ro/", A_RO),
    ROW("PUT", "/files/ro/missing", REFUSE, 405, "/files/ro/", "OPTIONS"),
    ROW("LOCK", "/files/ro/missing", REFUSE, 405, "/files/ro/", "OPTIONS"),
    ROW("PUT", "/files/x/../ro/doc.txt", REFUSE, 405, "/files/ro/", A_RO),
    /* Allowed: the module serves (HEAD wherever GET is). */
    ROW("GET", "/hello.txt", SERVE, 200, "/", NULL),
    ROW("HEAD", "/hello.txt", SERVE, 200, "/", NULL),
    ROW("GET", "/nope", SERVE, 404, "/", NULL),
    ROW("HEAD", "/nope", SERVE, 404, "/", NULL),
    ROW("GET", "/pubx", SERVE, 404, "/", NULL),
    ROW("GET", "/./files/../hello.txt", SERVE, 200, "/", NULL),
    ROW("GET", "//hello.txt", SERVE, 200, "/", NULL),
    ROW("GET", "/hell%6F.txt", SERVE, 200, "/", NULL),
    ROW("GET", "http://example.test/hello.txt", SERVE, 200, "/", NULL),
    ROW("GET", "/robots.txt", SERVE, 200, "= /robots.txt", NULL),
    ROW("HEAD", "/robots.txt", SERVE, 200, "= /robots.txt", NULL),
    ROW("GET", "/pub/hello.txt", SERVE, 200, "/pub", NULL),
    ROW("HEAD", "/pub/hello.txt", SERVE, 200, "/pub", NULL),
    ROW("GET", "/files/file.txt", SERVE, 200, "/files/", NULL),
    ROW("HEAD", "/files/file.txt", SERVE, 200, "/files/", NULL),
    ROW("GET", "/files/missing", SERVE, 404, "/files/", NULL), /* an honest 404 */
    ROW("HEAD", "/files/missing", SERVE, 404, "/files/", NULL),
    ROW("GET", "/files", SERVE, 301, "/files/", NULL), /* the module redirects */
    ROW("PUT", "/files/new.txt", SERVE, 0, "/files/", NULL),
    ROW("PUT", "/files/rox", SERVE, 0, "/files/", NULL), /* not under /files/ro/ */
    ROW("PUT", "/fil%65s/file.txt", SERVE, 0, "/files/", NULL),
    ROW("PUT", "/files/ro/../file.txt", SERVE, 0, "/files/", NULL),
    ROW("DELETE", "/files/missing", SERVE, 0, "/files/", NULL),
    ROW("MKCOL", "/files/newdir/", SERVE, 0, "/files/", NULL),
    ROW("LOCK", "/files/missing", SERVE, 0, "/files/", NULL),
    ROW("PROPFIND", "/files/coll/", SERVE, 0, "/files/", NULL),
    ROW("GET", "/files/ro/doc.txt", SERVE, 200, "/files/ro/", NULL),
    ROW("GET", "/files/ro/missing", SERVE, 404, "/files/ro/", NULL),
    ROW("PROPFIND", "/files/ro/doc.txt", SERVE, 0, "/files/ro/", NULL),
    ROW("GET", "/api", SERVE, 200, "/api", NULL),
    ROW("HEAD", "/api", SERVE, 200, "/api", NULL),
    ROW("POST", "/api/x", SERVE, 200, "/api", NULL),
    ROW("BREW", "/api", SERVE, 200, "/api", NULL),
    ROW("BREW", "/api/pot?milk=1", SERVE, 200, "/api", NULL),
    ROW("STEEP", "/tea/pot", SERVE, 200, "/tea/", NULL),
    ROW("STEEP", "/tea", SERVE, 200, "/tea/", NULL),
    /* TRACE: on in "/" only; the router answers it. */
    ROW("TRACE", "/", ANSWER, 200, "/", NULL),
    ROW("TRACE", "/hello.txt", ANSWER, 200, "/", NULL),
    ROW("TRACE", "/nope", ANSWER, 200, "/", NULL),
    /* Step 5: OPTIONS with a target: the resource's Allow; "*": the server's. */
    ROW("OPTIONS", "*", ANSWER, 204, NULL, A_ALL),
    ROW("OPTIONS", "/", ANSWER, 204, "/", A_WWW),
    ROW("OPTIONS", "/nope", ANSWER, 204, "/", A_WWW),
    ROW("OPTIONS", "/api", ANSWER, 204, "/api", A_API),
    ROW("OPTIONS", "/api/x/y", ANSWER, 204, "/api", A_API),
    ROW("OPTIONS", "http://example.test/api", ANSWER, 204, "/api", A_API),
    ROW("OPTIONS", "/tea/pot", ANSWER, 204, "/tea/", A_TEA),
    ROW("OPTIONS", "/robots.txt", ANSWER, 204, "= /robots.txt", A_GET),
    ROW("OPTIONS", "/pub", ANSWER, 204, "/pub", A_GET),
    ROW("OPTIONS", "/files/file.txt", ANSWER, 204, "/files/", A_DAV_FILE),
    ROW("OPTIONS", "/files/coll/", ANSWER, 204, "/files/", A_DAV_COLL),
    ROW("OPTIONS", "/files/", ANSWER, 204, "/files/", A_DAV_COLL),
    ROW("OPTIONS", "/files/missing", ANSWER, 204, "/files/", A_DAV_MISSING),
    ROW("OPTIONS", "/files/ro/doc.txt", ANSWER, 204, "/files/ro/", A_RO),
    ROW("OPTIONS", "/files/ro/missing", ANSWER, 204, "/files/ro/", "OPTIONS"),
};

/* Longest-prefix matching, exact locations and the subpath handed on. */
struct map_row {
    int line;
    const char *target, *loc, *subpath;
};
#define MAP(...)                                                                                   \
    {                                                                                              \
        __LINE__, __VA_ARGS__                                                                      \
    }

static const struct map_row map_rows[] = {
    MAP("/", "/", "/"),
    MAP("/hello.txt", "/", "/hello.txt"),
    MAP("/sub/", "/", "/sub/"),
    MAP("/files", "/files/", "/"),
    MAP("/files/", "/files/", "/"),
    MAP("/files/a/b", "/files/", "/a/b"),
    MAP("/files/ro", "/files/ro/", "/"),
    MAP("/files/ro/", "/files/ro/", "/"),
    MAP("/files/ro/doc.txt", "/files/ro/", "/doc.txt"),
    MAP("/files/rox", "/files/", "/rox"),
    MAP("/filesx", "/", "/filesx"),
    MAP("/api", "/api", "/"),
    MAP("/api/", "/api", "/"),
    MAP("/api/v1/x", "/api", "/v1/x"),
    MAP("/apix", "/", "/apix"),
    MAP("/robots.txt", "= /robots.txt", "/robots.txt"),
    MAP("/robots.txt/", "/", "/robots.txt/"),
    MAP("/robots.txtx", "/", "/robots.txtx"),
    MAP("/pub", "/pub", "/"),
    MAP("/pub/hello.txt", "/pub", "/hello.txt"),
    MAP("/pubx", "/", "/pubx"),
    MAP("/tea", "/tea/", "/"),
    MAP("/a/../files/./x", "/files/", "/x"),
    MAP("/%66iles/ro/doc.txt", "/files/ro/", "/doc.txt"),
};

static void test_mapping(const struct route_table *t)
{
    for (size_t i = 0; i < sizeof map_rows / sizeof map_rows[0]; i++) {
        const struct map_row *r = &map_rows[i];
        struct row as_row = {r->line, "GET", r->target, SERVE, 0, r->loc, NULL};
        run(t, "GET", r->target, false);
        ROW_STR(&as_row, "mapping", last.loc, r->loc);
        ROW_STR(&as_row, "subpath", last.subpath, r->subpath);
    }
}

/* The details of the main table's answers beyond status and Allow. */
static void test_main_details(const struct route_table *t)
{
    CHECK_STR(t->implemented_text, A_ALL);

    /* OPTIONS: 204, no body; WebDAV adds DAV (class 2 only with LOCK). */
    run(t, "OPTIONS", "/files/file.txt", true);
    CHECK_INT(cap.status, 204);
    CHECK_INT((int)cap.body_len, 0);
    CHECK_STR(field("DAV"), "1, 2");
    run(t, "OPTIONS", "/files/ro/doc.txt", true);
    CHECK_STR(field("DAV"), "1");
    run(t, "OPTIONS", "*", true); /* the server's, with no module's fields */
    CHECK(field("DAV") == NULL);
    CHECK_INT((int)cap.body_len, 0);
    run(t, "OPTIONS", "/api", true);
    CHECK(field("DAV") == NULL);

    /* TRACE echoes the head, without credentials. */
    run_raw(t,
            "TRACE /hello.txt?q=1 HTTP/1.1\r\nHost: example.test\r\nCookie: s=1\r\n"
            "Authorization: Basic eDp5\r\nProxy-Authorization: Basic eDp5\r\nX-A: b\r\n\r\n",
            true);
    CHECK_INT(last.v, VERDICT_ANSWER);
    CHECK_INT(cap.status, 200);
    CHECK_STR(field("Content-Type"), "message/http");
    CHECK_STR(cap.body, "TRACE /hello.txt?q=1 HTTP/1.1\r\nHost: example.test\r\nX-A: b\r\n\r\n");

    /* The 405's body, exactly. */
    run(t, "PUT", "/robots.txt", true);
    CHECK_STR(cap.body, "405 Method Not Allowed\nThe method PUT is not allowed at location "
                        "= /robots.txt.\nAllowed here: GET, HEAD, OPTIONS.\n");
    CHECK_STR(field("Allow"), A_GET);

    /* A 501 names no module when none implements the method, and lists
     * what is implemented. */
    run(t, "WHEN", "/api", true);
    CHECK_STR(cap.body, "501 Not Implemented\nThe method WHEN is not implemented by this "
                        "server.\nMethods implemented here: " A_ALL ".\n");
    CHECK(field("Retry-After") == NULL);

    /* The location's `header` lines go with its answers, refusals included
     * (the mapping is looked up for them even for a 501). */
    run(t, "GET", "/hello.txt", true);
    CHECK_STR(cap.extra, "X-Loc: root\r\n");
    run(t, "WHEN", "/hello.txt", true);
    CHECK_INT(cap.status, 501);
    CHECK_STR(cap.extra, "X-Loc: root\r\n");
    run(t, "PUT", "/hello.txt", true);
    CHECK_STR(cap.extra, "X-Loc: root\r\n");
    run(t, "OPTIONS", "/", true);
    CHECK_STR(cap.extra, "X-Loc: root\r\n");
    run(t, "PUT", "/api", true);
    CHECK_STR(cap.extra, "");

    /* The handler is handed the method as sent, the path and the subpath;
     * HEAD reaches it as HEAD. */
    handler_calls = 0;
    run(t, "BREW", "/api/pot?milk=1", true);
    CHECK_STR(cap.body, "BREW /api/pot /pot");
    run(t, "HEAD", "/api", true);
    CHECK_STR(cap.body, "HEAD /api /");
    run(t, "STEEP", "/tea", true);
    CHECK_STR(cap.body, "STEEP /tea /");
    CHECK_INT(handler_calls, 3);
    /* ...and never runs for a refusal. */
    run(t, "BREW", "/tea/pot", true);
    run(t, "WHEN", "/api", true);
    run(t, "PUT", "/api", true);
    run(t, "OPTIONS", "/api", true);
    CHECK_INT(handler_calls, 3);

    /* Extension methods have ids of their own; lowercase is not one. */
    run(t, "BREW", "/api", false);
    CHECK(last.method_id >= METHOD_REGISTERED_COUNT && last.method_id < METHOD_MAX_ID);
    int brew = last.method_id;
    run(t, "STEEP", "/tea/", false);
    CHECK(last.method_id >= METHOD_REGISTERED_COUNT && last.method_id != brew);
    run(t, "brew", "/api", false);
    CHECK_INT(last.method_id, METHOD_UNKNOWN);
    run(t, "get", "/api", false);
    CHECK_INT(last.method_id, METHOD_UNKNOWN);
    CHECK_INT(route_method_id(t, "GET", 3), METHOD_GET);
    CHECK_INT(route_method_id(t, "WHEN", 4), METHOD_UNKNOWN);
}

/* ---- other servers ------------------------------------------------------------------ */

/* TRACE off everywhere, refusal_cache 600: a static-only server. */
static const struct row static_rows[] = {
    ROW("TRACE", "/", REFUSE, 501, "/", NULL), /* off: not implemented at all */
    ROW("TRACE", "/hello.txt", REFUSE, 501, "= /hello.txt", NULL),
    ROW("WHEN", "/", REFUSE, 501, "/", NULL),
    ROW("PROPFIND", "/", REFUSE, 501, "/", NULL), /* no webdav mapping */
    ROW("PUT", "/hello.txt", REFUSE, 501, "= /hello.txt", NULL),
    ROW("DELETE", "/hello.txt", REFUSE, 501, "= /hello.txt", NULL),
    ROW("POST", "/", REFUSE, 501, "/", NULL),
    ROW("BREW", "/", REFUSE, 501, "/", NULL), /* an extension elsewhere, not here */
    ROW("CONNECT", "example.test:443", REFUSE, 501, NULL, NULL),
    ROW("GET", "/../x", REFUSE, 400, NULL, NULL),
    ROW("TRACE", "/../x", REFUSE, 501, NULL, NULL),
    ROW("GET", "/hello.txt", SERVE, 200, "= /hello.txt", NULL),
    ROW("HEAD", "/hello.txt", SERVE, 200, "= /hello.txt", NULL),
    ROW("OPTIONS", "*", ANSWER, 204, NULL, A_GET),
    ROW("OPTIONS", "/", ANSWER, 204, "/", A_GET),
    ROW("OPTIONS", "/x/y", ANSWER, 204, "/", A_GET),
};

/*
 * location /   { static www; }
 * location = /hello.txt { static www; methods GET; }
 * refusal_cache max-age=600;
 */
static void test_static_server(void)
{
    struct route_table t = {0};
    add(&t, "/", "static", "www");
    struct route_mapping *m = add(&t, "= /hello.txt", "static", "www");
    set(m, "methods", "GET");
    finish(&t, 501, 600);
    CHECK_STR(t.implemented_text, A_GET);

    CHECK_ROWS(&t, static_rows, 600);

    /* The 501 for a method of a module no location enables says so. */
    run(&t, "PROPFIND", "/", true);
    CHECK_STR(cap.body, "501 Not Implemented\nThe method PROPFIND is implemented by module "
                        "webdav, which no location on this server enables.\nMethods "
                        "implemented here: GET, HEAD, OPTIONS.\n");
    CHECK_STR(field("Cache-Control"), "max-age=600");
    CHECK(field("Retry-After") == NULL);
    run(&t, "PATCH", "/", true);
    CHECK_STR(cap.body, "501 Not Implemented\nThe method PATCH is not implemented by this "
                        "server.\nMethods implemented here: GET, HEAD, OPTIONS.\n");
    run(&t, "GET", "/hello.txt", true);
    CHECK(field("Cache-Control") == NULL);
    route_free(&t);
}

/* No mapping at all: only OPTIONS is implemented, and only "*" maps. */
static const struct row empty_rows[] = {
    ROW("OPTIONS", "*", ANSWER, 204, NULL, "OPTIONS"), ROW("OPTIONS", "/", REFUSE, 404, NULL, NULL),
    ROW("GET", "/", REFUSE, 501, NULL, NULL),          ROW("HEAD", "/", REFUSE, 501, NULL, NULL),
    ROW("WHEN", "/", REFUSE, 501, NULL, NULL),         ROW("TRACE", "/", REFUSE, 501, NULL, NULL),
};

static void test_empty_server(void)
{
    struct route_table t = {0};
    finish(&t, 501, 0);
    CHECK_ROWS(&t, empty_rows, 0);
    route_free(&t);
}

/* unknown_method 405: what nothing implements gets 405 + the mapping's
 * Allow; implemented methods are unaffected; "*" is unchanged. */
#define A_SITE "GET, HEAD, OPTIONS"
#define A_HANDLER "GET, HEAD, OPTIONS, BREW"
static const struct row u405_rows[] = {
    ROW("WHEN", "/site/x", REFUSE, 405, "/site/", A_SITE),
    ROW("get", "/site/x", REFUSE, 405, "/site/", A_SITE),
    ROW("PATCH", "/site/", REFUSE, 405, "/site/", A_SITE),
    ROW("POST", "/site/x", REFUSE, 405, "/site/", A_SITE),
    ROW("TRACE", "/site/x", REFUSE, 405, "/site/", A_SITE),
    ROW("PATCH", "/h", REFUSE, 405, "/h", A_HANDLER),
    ROW("WHEN", "/h/x", REFUSE, 405, "/h", A_HANDLER),
    ROW("PUT", "/h", REFUSE, 405, "/h", A_HANDLER), /* implemented (webdav), not here */
    ROW("WHEN", "/dav/missing", REFUSE, 405, "/dav/", A_DAV_MISSING),
    ROW("WHEN", "/dav/file.txt", REFUSE, 405, "/dav/", A_DAV_FILE),
    ROW("WHEN", "/dav/coll/", REFUSE, 405, "/dav/", A_DAV_COLL),
    ROW("WHEN", "/elsewhere", REFUSE, 404, NULL, NULL), /* no mapping: no Allow to give */
    ROW("WHEN", "/../x", REFUSE, 400, NULL, NULL),
    ROW("BREW", "/site/x", REFUSE, 405, "/site/", A_SITE),
    ROW("BREW", "/h", SERVE, 200, "/h", NULL),
    ROW("GET", "/site/hello.txt", SERVE, 200, "/site/", NULL),
    ROW("OPTIONS", "/site/", ANSWER, 204, "/site/", A_SITE),
    ROW("OPTIONS", "*", ANSWER, 204, NULL,
        "GET, HEAD, PUT, DELETE, OPTIONS, COPY, LOCK, MKCOL, "
        "MOVE, PROPFIND, PROPPATCH, UNLOCK, BREW"),
};

static void test_unknown_405(void)
{
    struct route_table t = {0};
    add(&t, "/site/", "static", "www");
    add(&t, "/dav/", "webdav", "dav");
    add_handler(&t, "/h", "GET BREW");
    finish(&t, 405, 60);
    CHECK_ROWS(&t, u405_rows, 60);
    /* OPTIONS and an unknown method agree on the Allow. */
    run(&t, "OPTIONS", "/h/x", true);
    char allow[256];
    snprintf(allow, sizeof allow, "%s", field("Allow") ? field("Allow") : "");
    run(&t, "WHEN", "/h/x", true);
    CHECK_STR(field("Allow"), allow);
    route_free(&t);
}

/* `methods` narrows a mapping, not the server: a webdav-only server with
 * a read-only share still implements PUT (405, not 501). */
static const struct row ro_rows[] = {
    ROW("PUT", "/share/doc.txt", REFUSE, 405, "/share/", A_RO),
    ROW("PUT", "/share/missing", REFUSE, 405, "/share/", "OPTIONS"),
    ROW("DELETE", "/share/d/", REFUSE, 405, "/share/", A_RO),
    ROW("PROPPATCH", "/share/doc.txt", REFUSE, 405, "/share/", A_RO),
    ROW("PUT", "/other", REFUSE, 404, NULL, NULL),
    ROW("GET", "/other", REFUSE, 404, NULL, NULL),
    ROW("TRACE", "/share/doc.txt", REFUSE, 501, "/share/", NULL),
    ROW("POST", "/share/doc.txt", REFUSE, 501, "/share/", NULL),
    ROW("PROPFIND", "/share/d/", SERVE, 0, "/share/", NULL),
    ROW("HEAD", "/share/doc.txt", SERVE, 200, "/share/", NULL),
    ROW("OPTIONS", "/share/d/", ANSWER, 204, "/share/", A_RO),
    ROW("OPTIONS", "*", ANSWER, 204, NULL, A_DAV),
};

static void test_narrowed_share(void)
{
    struct route_table t = {0};
    struct route_mapping *m = add(&t, "/share/", "webdav", "davro");
    set(m, "methods", "GET PROPFIND"); /* HEAD comes with GET, OPTIONS always */
    finish(&t, 501, -1);
    CHECK_ROWS(&t, ro_rows, -1);
    route_free(&t);
}

/* max_body belongs to the location and is checked after the method
 * decision (DESIGN.md step 1): a refused method gets its 501, 405 or 400,
 * never a 413, and its body is only discarded (up to BODY_DISCARD_MAX). */
struct body_row {
    int line;
    const char *method, *target;
    uint64_t length;     /* Content-Length */
    int verdict, status; /* status: the refusal, or 0 */
    uint64_t max_body;   /* req->max_body after the decision */
};
#define BODY(...)                                                                                  \
    {                                                                                              \
        __LINE__, __VA_ARGS__                                                                      \
    }
#define DISCARD BODY_DISCARD_MAX
#define MIB (UINT64_C(1) << 20)

static const struct body_row body_rows[] = {
    BODY("WHEN", "/api", 100, REFUSE, 501, DISCARD),
    BODY("PATCH", "/api", 100, REFUSE, 501, DISCARD),
    BODY("WHEN", "/../x", 100, REFUSE, 501, DISCARD),
    BODY("PUT", "/api", 100, REFUSE, 405, DISCARD),
    BODY("PUT", "/", 5 * MIB, REFUSE, 405, DISCARD),
    BODY("POST", "/", 11, REFUSE, 405, DISCARD),
    BODY("PUT", "/up/coll/", 5000, REFUSE, 405, DISCARD), /* the resource's 405 first */
    BODY("GET", "/../x", 5 * MIB, REFUSE, 400, DISCARD),
    BODY("POST", "/api", 11, REFUSE, 413, 10),
    BODY("BREW", "/api/x", 1000, REFUSE, 413, 10),
    BODY("OPTIONS", "/api", 11, REFUSE, 413, 10),
    BODY("POST", "/api", 10, SERVE, 0, 10),
    BODY("GET", "/api", 0, SERVE, 0, 10),
    BODY("PUT", "/up/new.txt", 1025, REFUSE, 413, 1024),
    BODY("PUT", "/up/new.txt", 1024, SERVE, 0, 1024),
    BODY("POST", "/big", 1 << 30, SERVE, 0, BODY_UNLIMITED),
    BODY("GET", "/hello.txt", MIB + 1, REFUSE, 413, MIB), /* a default for static */
    BODY("GET", "/hello.txt", MIB, SERVE, 0, MIB),
    BODY("PUT", "/dav/new.txt", 1 << 30, SERVE, 0, BODY_UNLIMITED), /* webdav streams */
};

static void test_body_limits(void)
{
    struct route_table t = {0};
    add(&t, "/", "static", "www");
    struct route_mapping *m = add(&t, "/up/", "webdav", "dav");
    set(m, "max_body", "1k");
    add(&t, "/dav/", "webdav", "dav");
    m = add_handler(&t, "/api", "GET POST BREW");
    set(m, "max_body", "10");
    m = add_handler(&t, "/big", "POST");
    set(m, "max_body", "off");
    finish(&t, 501, 60);
    for (size_t i = 0; i < sizeof body_rows / sizeof body_rows[0]; i++) {
        const struct body_row *b = &body_rows[i];
        struct row r = {b->line, b->method, b->target, b->verdict, b->status, NULL, NULL};
        char raw[512];
        snprintf(raw, sizeof raw,
                 "%s %s HTTP/1.1\r\nHost: example.test\r\n"
                 "Content-Length: %llu\r\n\r\n",
                 b->method, b->target, (unsigned long long)b->length);
        bool start = b->verdict != SERVE;
        if (!run_raw(&t, raw, start)) {
            ROW_FAIL(&r, "parse %d", last.parse);
            continue;
        }
        ROW_STR(&r, "verdict", verdict_name(last.v), verdict_name(b->verdict));
        ROW_INT(&r, "refusal", last.refusal, b->status);
        if (last.max_body == b->max_body)
            unit_passed++;
        else
            ROW_FAIL(&r, "max_body %llu, want %llu", (unsigned long long)last.max_body,
                     (unsigned long long)b->max_body);
        if (!start)
            continue;
        ROW_INT(&r, "status", cap.status, b->status);
        /* A 413 closes (the body is not read) and is not a cached refusal. */
        ROW_INT(&r, "close", cap.close, b->status == 413);
        ROW_STR(&r, "Cache-Control", field("Cache-Control"),
                b->status == 405 || b->status == 501 ? "max-age=60" : NULL);
        if (b->status == 413)
            ROW_STR(&r, "Allow", field("Allow"), NULL);
    }
    route_free(&t);

    /* The server's max_body is the default of every location without its
     * own, webdav's included; a location's own wins. */
    struct route_table u = {0};
    add(&u, "/", "static", "www");
    add(&u, "/dav/", "webdav", "dav");
    m = add_handler(&u, "/api", "POST");
    set(m, "max_body", "2k");
    finish_body(&u, 501, -1, 100);
    run_raw(&u, "PUT /dav/x HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n", false);
    CHECK_INT(last.refusal, 413);
    CHECK_INT(last.max_body, 100);
    run_raw(&u, "POST /api HTTP/1.1\r\nHost: h\r\nContent-Length: 2048\r\n\r\n", false);
    CHECK_INT(last.v, VERDICT_SERVE);
    CHECK_INT(last.max_body, 2048);
    run_raw(&u, "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n", false);
    CHECK_INT(last.v, VERDICT_SERVE);
    CHECK_INT(last.max_body, 100);
    /* A chunked body has no length to check now: the session enforces it. */
    run_raw(&u, "PUT /dav/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", false);
    CHECK_INT(last.v, VERDICT_SERVE);
    CHECK_INT(last.max_body, 100);
    route_free(&u);
}

/* The mapping directives refuse what a module does not implement. */
static void test_directive_errors(void)
{
    struct route_table t = {0};
    struct route_mapping *m = add(&t, "/", "static", "www");
    const char *put[] = {"GET PUT"};
    CHECK_INT(route_set(m, "methods", 1, put, err, sizeof err), -1);
    CHECK_STR(err, "methods: PUT is not implemented by module static");
    const char *brew[] = {"BREW"};
    CHECK_INT(route_set(m, "methods", 1, brew, err, sizeof err), -1);
    const char *lower[] = {"get"};
    CHECK_INT(route_set(m, "methods", 1, lower, err, sizeof err), -1);
    const char *bad[] = {"GE(T"};
    CHECK_INT(route_set(m, "methods", 1, bad, err, sizeof err), -1);
    const char *trace[] = {"maybe"};
    CHECK_INT(route_set(m, "trace", 1, trace, err, sizeof err), -1);
    const char *head[] = {"HEAD"}; /* HEAD without GET: GET's fields, GET refused */
    CHECK_INT(route_set(m, "methods", 1, head, err, sizeof err), -1);
    CHECK_STR(err, "methods: HEAD without GET (HEAD answers as GET does; allow GET, which "
                   "brings HEAD, or neither)");
    const char *get[] = {"GET"};
    CHECK_INT(route_set(m, "methods", 1, get, err, sizeof err), 0);
    CHECK(add_handler(&t, "/h", "BREW") != NULL);
    CHECK(route_add_handler(&t, "/h", "GET", answer_handler, NULL, NULL, err, sizeof err) == NULL);
    CHECK(route_add_handler(&t, "/x", "", answer_handler, NULL, NULL, err, sizeof err) == NULL);
    CHECK(route_add(&t, "files/", "static", base, err, sizeof err) == NULL);
    CHECK(route_add(&t, "/y/", "proxy", "x", err, sizeof err) == NULL);
    finish(&t, 501, -1);
    /* `methods GET` brings HEAD. */
    CHECK_STR(m->allowed_text, "GET, HEAD, OPTIONS");
    run(&t, "HEAD", "/x", false);
    CHECK_INT(last.v, VERDICT_SERVE);
    route_free(&t);
}

/* ---- regressions --------------------------------------------------------------------- */

/* With both "location /a/" and "location /a", the path "/a" matches only
 * the prefix "/a" (the longest matching prefix, DESIGN.md step 3): "/a/"
 * is not a prefix of "/a", and its "missing slash" redirect applies only
 * where no location matches as long a prefix. */
static void test_slash_mapping_does_not_shadow_its_own_prefix(void)
{
    struct route_table t = {0};
    add(&t, "/a/", "static", "www");
    add_handler(&t, "/a", "GET BREW");
    finish(&t, 501, -1);
    run(&t, "GET", "/a", false);
    CHECK_STR(last.loc, "/a");
    run(&t, "BREW", "/a", true);
    CHECK_INT(cap.status, 200);
    run(&t, "GET", "/a/x", false);
    CHECK_STR(last.loc, "/a/");
    route_free(&t);
}

/* An Allow of many long extension methods is whole: names may be 64
 * bytes and a table may have dozens of them. */
static void test_long_allow_whole(void)
{
    struct route_table t = {0};
    char methods[2048] = "", want[2048] = "GET, HEAD, OPTIONS";
    for (int i = 0; i < 20; i++) {
        char name[64];
        snprintf(name, sizeof name, "EXTENSION-METHOD-NUMBER-%02d-XXXXXXXXXX", i);
        size_t n = strlen(methods);
        snprintf(methods + n, sizeof methods - n, "%s%s", n ? " " : "", name);
        n = strlen(want);
        snprintf(want + n, sizeof want - n, ", %s", name);
    }
    char list[2100];
    snprintf(list, sizeof list, "GET %s", methods);
    add_handler(&t, "/h", list);
    finish(&t, 501, -1);
    run(&t, "OPTIONS", "/h", true);
    CHECK_STR(field("Allow"), want);
    run(&t, "OPTIONS", "*", true);
    CHECK_STR(field("Allow"), want);
    route_free(&t);
}

/* A gateway (proxy) implements every method but CONNECT, TRACE and PRI,
 * unknown names included; elsewhere they are 405 with the location's
 * Allow, not 501.  It answers OPTIONS with a target itself (forwards it).
 * SERVE rows with status 0: the module is not started (no upstream). */
static const struct row gateway_rows[] = {
    ROW("BREW", "/api/x", SERVE, 0, "/api/", NULL),
    ROW("PATCH", "/api/x", SERVE, 0, "/api/", NULL),
    ROW("WHEN", "/api/", SERVE, 0, "/api/", NULL),
    ROW("OPTIONS", "/api/x", SERVE, 0, "/api/", NULL),
    ROW("BREW", "/x", REFUSE, 405, "/", A_GET),
    ROW("PATCH", "/", REFUSE, 405, "/", A_GET),
    ROW("TRACE", "/api/x", REFUSE, 501, "/api/", NULL),
    ROW("PRI", "/api/x", REFUSE, 501, "/api/", NULL),
    ROW("GET", "/ro/x", SERVE, 0, "/ro/", NULL),
    ROW("PUT", "/ro/x", REFUSE, 405, "/ro/", "GET, HEAD, POST, OPTIONS"),
    ROW("BREW", "/ro/x", REFUSE, 405, "/ro/", "GET, HEAD, POST, OPTIONS"),
    ROW("OPTIONS", "/ro/x", SERVE, 0, "/ro/", NULL),
};

/* A narrowed gateway narrows the server's set: what it refuses is 501
 * unless another mapping implements it. */
static const struct row narrowed_gateway_rows[] = {
    ROW("GET", "/ro/x", SERVE, 0, "/ro/", NULL),
    ROW("PUT", "/ro/x", REFUSE, 501, "/ro/", NULL),
    ROW("BREW", "/ro/x", REFUSE, 501, "/ro/", NULL),
    ROW("POST", "/x", REFUSE, 405, "/", A_GET),
    ROW("OPTIONS", "*", ANSWER, 204, NULL, "GET, HEAD, POST, OPTIONS"),
};

static void test_gateway(void)
{
    struct route_table t = {0};
    set(add(&t, "/", "static", "www"), "methods", "GET");
    add(&t, "/api/", "proxy", "http://127.0.0.1:9/v1/");
    set(add(&t, "/ro/", "proxy", "http://127.0.0.1:9/"), "methods", "GET POST");
    finish(&t, 501, 0);
    CHECK(t.open);
    CHECK_ROWS(&t, gateway_rows, 0);
    /* OPTIONS *: every method a gateway forwards, by name. */
    CHECK(strstr(t.implemented_text, "PATCH") != NULL);
    CHECK(strstr(t.implemented_text, "CONNECT") == NULL);
    CHECK(strstr(t.implemented_text, "TRACE") == NULL);
    CHECK(strstr(t.implemented_text, "PRI") == NULL);
    route_free(&t);

    struct route_table u = {0};
    set(add(&u, "/", "static", "www"), "methods", "GET");
    set(add(&u, "/ro/", "proxy", "http://127.0.0.1:9/"), "methods", "GET POST");
    finish(&u, 501, 0);
    CHECK(!u.open);
    CHECK_ROWS(&u, narrowed_gateway_rows, 0);
    route_free(&u);
}

/* ---- locations by regular expression --------------------------------------------- */

/* route_set with its arguments as given (spaces inside one kept). */
static void set_args(struct route_mapping *m, const char *name, int argc, const char *const *argv)
{
    if (route_set(m, name, argc, argv, err, sizeof err) != 0) {
        printf("route_set %s: %s\n", name, err);
        exit(2);
    }
}

/* The method decision with a regex mapping: its methods where it answers
 * the path, the prefix's elsewhere, the server's set the union. */
static const struct row regex_rows[] = {
    ROW("POST", "/x.php", SERVE, 200, "~ \\.php$", NULL),
    ROW("BREW", "/x.php", REFUSE, 405, "~ \\.php$", "GET, HEAD, POST, OPTIONS"),
    ROW("OPTIONS", "/x.php", ANSWER, 204, "~ \\.php$", "GET, HEAD, POST, OPTIONS"),
    /* The regex answers below a prefix that is not ^~: its Allow. */
    ROW("BREW", "/brew/x.php", REFUSE, 405, "~ \\.php$", "GET, HEAD, POST, OPTIONS"),
    ROW("BREW", "/brew/x", SERVE, 200, "/brew/", NULL),
    ROW("POST", "/x.html", REFUSE, 405, "/", A_GET),
    ROW("OPTIONS", "/x.html", ANSWER, 204, "/", A_GET),
    ROW("PUT", "/x.html", REFUSE, 501, "/", NULL),
    ROW("PUT", "/x.php", REFUSE, 501, "~ \\.php$", NULL),
    ROW("POST", "/static/x.php", REFUSE, 405, "^~ /static/", A_GET),
    ROW("OPTIONS", "*", ANSWER, 204, NULL, "GET, HEAD, POST, OPTIONS, BREW"),
    ROW("GET", "/hello.txt", SERVE, 200, "/", NULL),
};

static void test_regex_locations(void)
{
    struct route_table t = {0};
    add(&t, "/", "static", "www");
    add_handler(&t, "~ \\.php$", "GET POST");
    add(&t, "^~ /static/", "static", "www");
    add_handler(&t, "/brew/", "BREW");
    /* try_files, rewrite ... last and error_page search again. */
    struct route_mapping *tf = add(&t, "/tf/", "static", "www");
    set(tf, "try_files", "/none.txt /tried.php");
    set(add(&t, "/rw/", "static", "www"), "rewrite", "^/rw/(.*)$ /$1.php last");
    set(add(&t, "/ep/", "static", "www"), "error_page", "404 /page.php");
    /* Captures: $1 in return and try_files. */
    const char *user[] = {"200", "user $1"};
    set_args(add(&t, "~ ^/u/(\\w+)$", "static", "www"), "return", 2, user);
    set(add(&t, "~ ^/t/(\\w+)$", "static", "www"), "try_files", "/$1.txt =404");
    const char *caps[] = {"200", "$2-$1"};
    struct route_mapping *both = add(&t, "~ ^/both/(\\w+)/(\\w+)$", "static", "www");
    set(both, "rewrite", "^/both/(\\w+)/x$ /u/$1");
    set_args(both, "return", 2, caps);
    for (size_t i = 0; i < t.n; i++)
        if (t.maps[i]->try_files)
            CHECK_INT(route_mapping_check(t.maps[i], err, sizeof err), 0);
    finish(&t, 501, -1);
    CHECK_ROWS(&t, regex_rows, -1);

    run(&t, "POST", "/a/b.php", true);
    CHECK_STR(cap.body, "POST /a/b.php /a/b.php"); /* the whole path is the subpath */
    run(&t, "GET", "/tf/x", true);
    CHECK_STR(cap.body, "GET /tried.php /tried.php");
    run(&t, "GET", "/rw/abc", true);
    CHECK_STR(cap.body, "GET /abc.php /abc.php");
    run(&t, "GET", "/ep/missing", true);
    CHECK_INT(cap.status, 404);
    CHECK_STR(cap.body, "GET /page.php /page.php");
    run(&t, "GET", "/u/bob", true);
    CHECK_STR(cap.body, "user bob");
    run(&t, "GET", "/t/hello", true);
    CHECK_INT(cap.status, 200);
    CHECK_STR(last.path, "/hello.txt");
    CHECK_STR(last.subpath, "/hello.txt");
    run(&t, "GET", "/t/nothing", true);
    CHECK_INT(cap.status, 404);
    /* The location's captures until a rewrite matches: then the
     * rewrite's own (one group: $2 is empty), as in nginx. */
    run(&t, "GET", "/both/p/q", true);
    CHECK_STR(cap.body, "q-p");
    run(&t, "GET", "/both/p/x", true);
    CHECK_STR(cap.body, "-p");
    route_free(&t);
}

int main(void)
{
    build_tree();
    struct route_table t = {0};
    build_main(&t);
    CHECK_ROWS(&t, main_rows, -1);
    test_mapping(&t);
    test_main_details(&t);
    route_free(&t);
    test_static_server();
    test_empty_server();
    test_unknown_405();
    test_narrowed_share();
    test_body_limits();
    test_directive_errors();
    test_slash_mapping_does_not_shadow_its_own_prefix();
    test_long_allow_whole();
    test_gateway();
    test_regex_locations();
    vx_pool_free();
    rm_tree();
    return unit_report();
}
