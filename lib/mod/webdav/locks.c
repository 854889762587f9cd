/* Locks (RFC 4918 §6-7, §9.10-9.11): which locks apply where, the If
 * header (§10.4: tagged and untagged lists, Not, state tokens, ETags),
 * the check that a modification submits every token it must, and the
 * LOCK and UNLOCK methods. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libxml/tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include "http/path.h"
#include "mod/webdav/internal.h"

/* ---- where locks apply ---------------------------------------------------- */

bool dav_rel_within(const char *rel, const char *base, bool self)
{
    size_t n = strlen(base);
    if (n == 0)
        return self || *rel;
    if (strncmp(rel, base, n) != 0)
        return false;
    return rel[n] == '/' || (self && rel[n] == '\0');
}

bool dav_lock_covers(const struct dav_lock *l, const char *rel)
{
    return strcmp(l->root, rel) == 0 ||
           (l->depth == DAV_DEPTH_INFINITY && dav_rel_within(rel, l->root, false));
}

bool dav_lock_conflicts(const struct dav_lock *held, const struct dav_lock *wanted)
{
    bool overlap =
        dav_lock_covers(held, wanted->root) ||
        (wanted->depth == DAV_DEPTH_INFINITY && dav_rel_within(held->root, wanted->root, false));
    return overlap && (held->exclusive || wanted->exclusive);
}

/* ---- URIs in headers -------------------------------------------------------- */

int dav_uri_to_rel(const struct dav_req *r, const char *p, size_t n, char **rel, bool *slash)
{
    *rel = NULL;
    const char *path = p;
    size_t pn = n;
    if ((n > 7 && strncasecmp(p, "http://", 7) == 0) ||
        (n > 8 && strncasecmp(p, "https://", 8) == 0)) {
        const char *auth = memchr(p, ':', n) + 3;
        const char *end = p + n;
        const char *s = memchr(auth, '/', (size_t)(end - auth));
        size_t an = s ? (size_t)(s - auth) : (size_t)(end - auth);
        size_t hn;
        const char *host = verbd_request_header(r->req, "Host", &hn);
        if (host && (hn != an || strncasecmp(host, auth, an) != 0))
            return 502; /* another server: not ours to copy to */
        path = s ? s : "/";
        pn = s ? (size_t)(end - s) : 1;
    } else if (n == 0 || p[0] != '/') {
        return 400;
    }
    for (size_t i = 0; i < pn; i++)
        if (path[i] == '?' || path[i] == '#') {
            pn = i;
            break;
        }
    char *norm = malloc(pn + 2);
    if (!norm)
        abort();
    long len = path_normalise(path, pn, norm);
    if (len < 0) {
        free(norm);
        return 400;
    }
    size_t pl = strlen(r->prefix);
    if (strncmp(norm, r->prefix, pl) != 0 || (norm[pl] != '/' && norm[pl] != '\0')) {
        free(norm);
        return 502; /* outside this mapping */
    }
    const char *sub = norm + pl;
    while (*sub == '/')
        sub++;
    size_t sl = strlen(sub);
    *slash = len > 0 && norm[len - 1] == '/';
    while (sl && sub[sl - 1] == '/')
        sl--;
    *rel = strndup(sub, sl);
    free(norm);
    if (!*rel)
        abort();
    return 0;
}

/* ---- the If header ------------------------------------------------------------ */

struct dav_cond {
    bool not, is_etag;
    char *val; /* the state token without <>, or the entity-tag */
};

struct dav_list {
    char *tag; /* the resource tag, or NULL (the request URI) */
    struct dav_cond *c;
    size_t n;
};

struct dav_if {
    struct dav_list *l;
    size_t n;
};

void dav_if_free(struct dav_if *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++) {
        for (size_t j = 0; j < h->l[i].n; j++)
            free(h->l[i].c[j].val);
        free(h->l[i].c);
        free(h->l[i].tag);
    }
    free(h->l);
    free(h);
}

static void skip_ws(const char **p, const char *end)
{
    while (*p < end && (**p == ' ' || **p == '\t'))
        (*p)++;
}

/* Reads up to `close` (exclusive); returns a malloc'd copy or NULL. */
static char *read_until(const char **p, const char *end, char close)
{
    const char *s = *p;
    while (*p < end && **p != close) {
        unsigned char c = (unsigned char)**p;
        if (c < 0x21 || c == 0x7f)
            return NULL;
        (*p)++;
    }
    if (*p >= end || *p == s)
        return NULL;
    char *v = strndup(s, (size_t)(*p - s));
    if (!v)
        abort();
    (*p)++;
    return v;
}

static struct dav_if *if_parse(const char *p, size_t n)
{
    const char *end = p + n;
    struct dav_if *h = calloc(1, sizeof *h);
    if (!h)
        abort();
    char *tag = NULL;
    skip_ws(&p, end);
    if (p == end)
        goto bad;
    while (p < end) {
        if (*p == '<') { /* a resource tag for the lists that follow */
            p++;
            free(tag);
            if (!(tag = read_until(&p, end, '>')))
                goto bad;
            skip_ws(&p, end);
            if (p >= end || *p != '(')
                goto bad;
            continue;
        }
        if (*p != '(')
            goto bad;
        p++;
        h->l = realloc(h->l, (h->n + 1) * sizeof *h->l);
        if (!h->l)
            abort();
        struct dav_list *l = &h->l[h->n++];
        memset(l, 0, sizeof *l);
        if (tag && !(l->tag = strdup(tag)))
            abort();
        for (;;) {
            skip_ws(&p, end);
            if (p >= end)
                goto bad;
            if (*p == ')') {
                p++;
                break;
            }
            struct dav_cond c = {0};
            if (end - p >= 3 && strncasecmp(p, "Not", 3) == 0) {
                c.not = true;
                p += 3;
                skip_ws(&p, end);
                if (p >= end)
                    goto bad;
            }
            if (*p == '<') {
                p++;
                c.val = read_until(&p, end, '>');
            } else if (*p == '[') {
                p++;
                c.is_etag = true;
                c.val = read_until(&p, end, ']');
            }
            if (!c.val)
                goto bad;
            l->c = realloc(l->c, (l->n + 1) * sizeof *l->c);
            if (!l->c)
                abort();
            l->c[l->n++] = c;
        }
        if (l->n == 0)
            goto bad;
        skip_ws(&p, end);
    }
    free(tag);
    return h;
bad:
    free(tag);
    dav_if_free(h);
    return NULL;
}

bool dav_if_has_token(const struct dav_if *h, const char *token)
{
    if (!h)
        return false;
    for (size_t i = 0; i < h->n; i++)
        for (size_t j = 0; j < h->l[i].n; j++) {
            const struct dav_cond *c = &h->l[i].c[j];
            if (!c->not &&!c->is_etag && strcmp(c->val, token) == 0)
                return true;
        }
    return false;
}

/* ETags compared weakly: W/ does not matter for a precondition on state. */
static bool etag_eq(const char *a, const char *b)
{
    if (strncmp(a, "W/", 2) == 0)
        a += 2;
    if (strncmp(b, "W/", 2) == 0)
        b += 2;
    return strcmp(a, b) == 0;
}

static bool list_true(struct dav_req *r, const struct dav_list *l)
{
    const char *rel = r->rel;
    char *tag_rel = NULL;
    struct dav_stat st_buf, *st = &r->st;
    if (l->tag) {
        bool slash;
        if (dav_uri_to_rel(r, l->tag, strlen(l->tag), &tag_rel, &slash) != 0)
            return false; /* not a resource of ours: its state is unknown */
        rel = tag_rel;
        if (dav_stat(r->in, rel, &st_buf) != 0)
            st_buf.exists = false;
        st = &st_buf;
    }
    char etag[64] = "";
    if (st->exists)
        dav_etag(&st->st, etag, sizeof etag);
    bool ok = true;
    for (size_t j = 0; j < l->n && ok; j++) {
        const struct dav_cond *c = &l->c[j];
        bool match = false;
        if (c->is_etag) {
            match = st->exists && etag_eq(c->val, etag);
        } else {
            for (size_t k = 0; k < r->locks.n && !match; k++)
                match = strcmp(r->locks.v[k].token, c->val) == 0 &&
                        dav_lock_covers(&r->locks.v[k], rel);
        }
        ok = match != c->not ;
    }
    free(tag_rel);
    return ok;
}

int dav_if_parse(struct dav_req *r)
{
    size_t n;
    const char *v = verbd_request_header(r->req, "If", &n);
    if (!v)
        return 0;
    return (r->ifh = if_parse(v, n)) ? 0 : 400;
}

char **dav_if_tags(const struct dav_req *r, size_t *n)
{
    *n = 0;
    if (!r->ifh)
        return NULL;
    char **v = calloc(r->ifh->n, sizeof *v);
    if (!v)
        abort();
    for (size_t i = 0; i < r->ifh->n; i++) {
        bool slash;
        char *rel;
        if (r->ifh->l[i].tag &&
            dav_uri_to_rel(r, r->ifh->l[i].tag, strlen(r->ifh->l[i].tag), &rel, &slash) == 0)
            v[(*n)++] = rel;
    }
    return v;
}

int dav_if_eval(struct dav_req *r)
{
    if (!r->ifh)
        return 0;
    for (size_t i = 0; i < r->ifh->n; i++)
        if (list_true(r, &r->ifh->l[i]))
            return 0;
    return 412;
}

int dav_check_locks(struct dav_req *r, const char *rel, bool tree, bool parent)
{
    char *par = parent && *rel ? dav_parent(rel) : NULL;
    int status = 0;
    for (size_t i = 0; i < r->locks.n && !status; i++) {
        const struct dav_lock *l = &r->locks.v[i];
        if (!(dav_lock_covers(l, rel) || (tree && dav_rel_within(l->root, rel, false)) ||
              (par && strcmp(l->root, par) == 0)))
            continue;
        if (dav_if_has_token(r->ifh, l->token))
            continue;
        /* A shared lock is satisfied by the token of any shared lock with
         * the same root: each holder writes with its own. */
        bool shared_ok = false;
        for (size_t j = 0; j < r->locks.n && !l->exclusive && !shared_ok; j++)
            shared_ok = !r->locks.v[j].exclusive && strcmp(r->locks.v[j].root, l->root) == 0 &&
                        dav_if_has_token(r->ifh, r->locks.v[j].token);
        if (!shared_ok)
            status = 423;
    }
    free(par);
    return status;
}

/* ---- lockdiscovery -------------------------------------------------------------- */

void dav_activelock(struct dav_req *r, struct buf *b, const struct dav_lock *l)
{
    long left = l->left > 0 ? l->left : 0;
    buf_printf(b,
               "<D:activelock><D:locktype><D:write/></D:locktype>"
               "<D:lockscope><D:%s/></D:lockscope><D:depth>%s</D:depth>",
               l->exclusive ? "exclusive" : "shared",
               l->depth == DAV_DEPTH_INFINITY ? "infinity" : "0");
    if (l->owner)
        buf_printf(b, "<D:owner>%s</D:owner>", l->owner);
    buf_printf(b, "<D:timeout>Second-%ld</D:timeout><D:locktoken><D:href>", left);
    dav_xml_escape(b, l->token, strlen(l->token));
    buf_puts(b, "</D:href></D:locktoken><D:lockroot>");
    struct dav_stat st;
    bool dir = dav_stat(r->in, l->root, &st) == 0 && st.is_dir;
    dav_xml_href(b, r->prefix, l->root, dir);
    buf_puts(b, "</D:lockroot></D:activelock>");
}

void dav_lockdiscovery(struct dav_req *r, struct buf *b, const char *rel)
{
    for (size_t i = 0; i < r->locks.n; i++)
        if (dav_lock_covers(&r->locks.v[i], rel))
            dav_activelock(r, b, &r->locks.v[i]);
}

/* ---- LOCK ------------------------------------------------------------------- */

/* Timeout: "Second-N" or "Infinite", the first one we understand. */
static long parse_timeout(const struct verbd_request *req)
{
    size_t n;
    const char *v = verbd_request_header(req, "Timeout", &n);
    if (!v)
        return DAV_LOCK_TIMEOUT_DEFAULT;
    const char *end = v + n;
    while (v < end) {
        while (v < end && (*v == ' ' || *v == ',' || *v == '\t'))
            v++;
        const char *s = v;
        while (v < end && *v != ',')
            v++;
        size_t len = (size_t)(v - s);
        while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
            len--;
        if (len == 8 && strncasecmp(s, "Infinite", 8) == 0)
            return DAV_LOCK_TIMEOUT_MAX;
        if (len > 7 && strncasecmp(s, "Second-", 7) == 0) {
            long t = 0;
            size_t i = 7;
            for (; i < len && isdigit((unsigned char)s[i]); i++)
                t = t > DAV_LOCK_TIMEOUT_MAX ? t : t * 10 + (s[i] - '0');
            if (i == len && i > 7)
                return t < 1 ? 1 : t > DAV_LOCK_TIMEOUT_MAX ? DAV_LOCK_TIMEOUT_MAX : t;
        }
    }
    return DAV_LOCK_TIMEOUT_DEFAULT;
}

static void new_token(char *out, size_t len)
{
    unsigned char u[16];
    if (getrandom(u, sizeof u, 0) != (ssize_t)sizeof u)
        abort(); /* no randomness: a guessable token would be worse */
    u[6] = (unsigned char)((u[6] & 0x0f) | 0x40);
    u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
    snprintf(out, len,
             "opaquelocktoken:%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x",
             u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
             u[14], u[15]);
}

static void lock_answer(struct dav_req *r, int status, const struct dav_lock *l, bool token_hdr)
{
    struct buf b = {0};
    buf_puts(&b, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
                 "<D:prop xmlns:D=\"DAV:\"><D:lockdiscovery>");
    dav_activelock(r, &b, l);
    buf_puts(&b, "</D:lockdiscovery></D:prop>\n");
    if (token_hdr) {
        char h[80];
        snprintf(h, sizeof h, "<%s>", l->token);
        verbd_response_header(r->res, "Lock-Token", h);
    }
    dav_xml_respond(r->res, status, &b);
    buf_free(&b);
}

/* ---- LOCK: refreshing ---------------------------------------------------- */

static void refreshed(struct dav_req *r, int result)
{
    struct dav_lock *l = r->state;
    if (result == DAV_STORE_DOWN) {
        dav_unavailable(r);
        return;
    }
    if (result == DAV_STORE_GONE) /* expired or unlocked meanwhile */
        dav_error(r->res, 412, "lock-token-matches-request-uri");
    else
        lock_answer(r, 200, l, false);
    dav_done(r);
}

static void lock_refresh(struct dav_req *r)
{
    if (!r->ifh) {
        verbd_response_error(r->res, 400, "A lock refresh needs an If header with the token.");
        dav_done(r);
        return;
    }
    struct dav_lock *found = NULL;
    for (size_t i = 0; i < r->locks.n && !found; i++)
        if (dav_lock_covers(&r->locks.v[i], r->rel) &&
            dav_if_has_token(r->ifh, r->locks.v[i].token))
            found = &r->locks.v[i];
    if (!found) {
        dav_error(r->res, 412, "lock-token-matches-request-uri");
        dav_done(r);
        return;
    }
    found->timeout = found->left = parse_timeout(r->req);
    r->state = found;
    dav_refresh_lock(r, found->token, found->timeout, refreshed);
}

/* ---- LOCK: a new lock --------------------------------------------------------- */

struct new_lock {
    struct dav_lock l;
    bool created; /* the lock made the resource */
};

static void lock_undone(struct dav_req *r, int result)
{
    (void)result; /* if it stays, it expires with its timeout */
    verbd_response_error(r->res, 500, NULL);
    dav_done(r);
}

/* The lock is held (or refused): a lock on an unmapped URL then makes an
 * empty resource (§7.3).  Lock first, file second: a crash between leaves
 * a lock on a name that does not exist yet, which is what a lock on an
 * unmapped URL is, and it ends with its timeout. */
static void lock_taken(struct dav_req *r, int result)
{
    struct new_lock *nl = r->state;
    if (result == DAV_STORE_DOWN) {
        dav_unavailable(r);
        return;
    }
    if (result == DAV_STORE_CONFLICT) {
        dav_error(r->res, 423, "no-conflicting-lock");
        dav_done(r);
        return;
    }
    if (!r->st.exists) {
        const char *name;
        int dfd = dav_open_parent(r->in, r->rel, &name);
        int fd = dfd >= 0 ? openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666) : -1;
        int e = errno;
        nl->created = fd >= 0;
        if (fd >= 0)
            close(fd);
        if (dfd >= 0)
            close(dfd);
        if (!nl->created && e != EEXIST) {
            dav_drop_lock(r, nl->l.token, lock_undone);
            return;
        }
    }
    lock_answer(r, nl->created ? 201 : 200, &nl->l, true);
    dav_done(r);
}

static void free_owner(void *arg)
{
    free(arg);
}

void dav_lock(struct dav_req *r)
{
    if (r->body_len == 0) {
        lock_refresh(r);
        return;
    }
    xmlDoc *doc = dav_xml_parse(r->body, r->body_len);
    xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
    if (!dav_xml_is(root, "lockinfo")) {
        dav_xml_free(doc);
        verbd_response_error(r->res, 400, "The body is not a DAV:lockinfo document.");
        dav_done(r);
        return;
    }
    int scope = -1;
    bool write = false;
    char *owner = NULL;
    for (xmlNode *c = dav_xml_first(root); c; c = dav_xml_next(c)) {
        if (dav_xml_is(c, "lockscope")) {
            xmlNode *s = dav_xml_first(c);
            scope = dav_xml_is(s, "exclusive") ? 1 : dav_xml_is(s, "shared") ? 0 : -1;
        } else if (dav_xml_is(c, "locktype")) {
            write = dav_xml_is(dav_xml_first(c), "write");
        } else if (dav_xml_is(c, "owner") && !owner) {
            owner = dav_xml_dump(c, true);
        }
    }
    dav_xml_free(doc);
    if (owner)
        verbd_cleanup(r->x, free_owner, owner);
    int depth = dav_depth(r->req, DAV_DEPTH_INFINITY);
    if (scope < 0 || !write || (depth != 0 && depth != DAV_DEPTH_INFINITY)) {
        verbd_response_error(r->res, 400,
                             "A lock is a write lock, exclusive or shared, of "
                             "depth 0 or infinity.");
        dav_done(r);
        return;
    }
    if (!r->st.exists) {
        char *parent = dav_parent(r->rel);
        struct dav_stat pst;
        bool ok = dav_stat(r->in, parent, &pst) == 0 && pst.exists && pst.is_dir;
        free(parent);
        if (!ok || r->slash) {
            verbd_response_error(r->res, 409, "The parent collection does not exist.");
            dav_done(r);
            return;
        }
        /* Creating it adds a member to the parent: its locks apply. */
        int st = dav_check_locks(r, r->rel, false, true);
        if (st) {
            dav_error(r->res, st, "lock-token-submitted");
            dav_done(r);
            return;
        }
    }
    struct new_lock *nl = verbd_alloc(r->x, sizeof *nl);
    *nl = (struct new_lock){
        .l = {.root = (char *)r->rel, .depth = depth, .exclusive = scope == 1, .owner = owner}};
    nl->l.timeout = nl->l.left = parse_timeout(r->req);
    new_token(nl->l.token, sizeof nl->l.token);
    r->state = nl;
    /* The conflict check and the insert are one operation of the store,
     * which all workers and nodes share. */
    dav_take_lock(r, &nl->l, lock_taken);
}

/* ---- UNLOCK ----------------------------------------------------------------- */

static void unlocked(struct dav_req *r, int result)
{
    if (result == DAV_STORE_DOWN) {
        dav_unavailable(r);
        return;
    }
    if (result == DAV_STORE_GONE) /* expired or unlocked meanwhile */
        dav_error(r->res, 409, "lock-token-matches-request-uri");
    else
        verbd_response_status(r->res, 204);
    dav_done(r);
}

void dav_unlock(struct dav_req *r)
{
    size_t n;
    const char *v = verbd_request_header(r->req, "Lock-Token", &n);
    if (!v || n < 3 || v[0] != '<' || v[n - 1] != '>') {
        verbd_response_error(r->res, 400, "UNLOCK needs a Lock-Token header: <token>.");
        dav_done(r);
        return;
    }
    const struct dav_lock *found = NULL;
    for (size_t i = 0; i < r->locks.n && !found; i++)
        if (strlen(r->locks.v[i].token) == n - 2 &&
            strncmp(r->locks.v[i].token, v + 1, n - 2) == 0 &&
            dav_lock_covers(&r->locks.v[i], r->rel))
            found = &r->locks.v[i];
    if (!found) {
        dav_error(r->res, 409, "lock-token-matches-request-uri");
        dav_done(r);
        return;
    }
    dav_drop_lock(r, found->token, unlocked);
}
