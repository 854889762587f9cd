/* PROPFIND and PROPPATCH (RFC 4918 §9.1-9.2): the live properties from the
 * file system, the dead ones from the database. */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libxml/tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http/date.h"
#include "http/method.h"
#include "mod/webdav/internal.h"

enum live {
    L_CREATIONDATE,
    L_DISPLAYNAME,
    L_GETCONTENTLENGTH,
    L_GETCONTENTTYPE,
    L_GETETAG,
    L_GETLASTMODIFIED,
    L_RESOURCETYPE,
    L_SUPPORTEDLOCK,
    L_LOCKDISCOVERY,
    L_COUNT
};

static const char *const live_names[L_COUNT] = {
    "creationdate",    "displayname",  "getcontentlength", "getcontenttype", "getetag",
    "getlastmodified", "resourcetype", "supportedlock",    "lockdiscovery",
};

static int live_index(const char *ns, const char *name)
{
    if (strcmp(ns, "DAV:") != 0)
        return -1;
    for (int i = 0; i < L_COUNT; i++)
        if (strcmp(live_names[i], name) == 0)
            return i;
    return -1;
}

/* <name/> in its namespace, as an empty element. */
static void prop_name(struct buf *b, const char *ns, const char *name)
{
    if (strcmp(ns, "DAV:") == 0) {
        buf_printf(b, "<D:%s/>", name);
    } else if (!*ns) {
        buf_printf(b, "<%s/>", name); /* no default namespace is in scope */
    } else {
        buf_printf(b, "<P:%s xmlns:P=\"", name);
        dav_xml_escape(b, ns, strlen(ns));
        buf_puts(b, "\"/>");
    }
}

/* Appends live property i of rel; false if rel does not have it. */
static bool live_value(struct dav_req *r, struct buf *b, int i, const char *rel,
                       const struct dav_stat *st)
{
    char tmp[64];
    switch (i) {
    case L_CREATIONDATE:
        dav_iso_date(st->btime, tmp, sizeof tmp);
        buf_printf(b, "<D:creationdate>%s</D:creationdate>", tmp);
        return true;
    case L_DISPLAYNAME: {
        const char *s = strrchr(rel, '/');
        const char *name = s ? s + 1 : rel;
        buf_puts(b, "<D:displayname>");
        dav_xml_escape(b, name, strlen(name));
        buf_puts(b, "</D:displayname>");
        return true;
    }
    case L_GETCONTENTLENGTH:
        if (st->is_dir)
            return false;
        buf_printf(b, "<D:getcontentlength>%" PRIu64 "</D:getcontentlength>",
                   (uint64_t)st->st.st_size);
        return true;
    case L_GETCONTENTTYPE:
        if (st->is_dir)
            return false;
        buf_puts(b, "<D:getcontenttype>");
        const char *t = static_content_type(r->in->st, rel); /* as GET says */
        dav_xml_escape(b, t, strlen(t));
        buf_puts(b, "</D:getcontenttype>");
        return true;
    case L_GETETAG:
        dav_etag(&st->st, tmp, sizeof tmp);
        buf_puts(b, "<D:getetag>");
        dav_xml_escape(b, tmp, strlen(tmp));
        buf_puts(b, "</D:getetag>");
        return true;
    case L_GETLASTMODIFIED: {
        char d[HTTP_DATE_LEN + 1];
        http_date_format(st->st.st_mtime, d);
        buf_printf(b, "<D:getlastmodified>%s</D:getlastmodified>", d);
        return true;
    }
    case L_RESOURCETYPE:
        buf_puts(b, st->is_dir ? "<D:resourcetype><D:collection/></D:resourcetype>"
                               : "<D:resourcetype/>");
        return true;
    case L_SUPPORTEDLOCK:
        /* Empty where LOCK is refused (a read-only share): advertising
         * locks a client cannot take would contradict "DAV: 1". */
        if (!dav_locking(r->in)) {
            buf_puts(b, "<D:supportedlock/>");
            return true;
        }
        buf_puts(b, "<D:supportedlock>"
                    "<D:lockentry><D:lockscope><D:exclusive/></D:lockscope>"
                    "<D:locktype><D:write/></D:locktype></D:lockentry>"
                    "<D:lockentry><D:lockscope><D:shared/></D:lockscope>"
                    "<D:locktype><D:write/></D:locktype></D:lockentry>"
                    "</D:supportedlock>");
        return true;
    case L_LOCKDISCOVERY:
        buf_puts(b, "<D:lockdiscovery>");
        dav_lockdiscovery(r, b, rel);
        buf_puts(b, "</D:lockdiscovery>");
        return true;
    }
    return false;
}

bool dav_locking(const struct dav_inst *in)
{
    return in->mapping_methods & METHOD_BIT(METHOD_LOCK);
}

/* ---- PROPFIND ------------------------------------------------------------------ */

enum pf_mode { PF_ALLPROP, PF_PROPNAME, PF_PROP };

struct pf_name {
    const char *ns, *name;
};

struct propfind {
    struct dav_req *r;
    enum pf_mode mode;
    struct pf_name *names;
    size_t nnames;
    struct buf out;
};

/* The loaded dead properties of rel: *n of them from the returned one
 * (r->props is sorted by path). */
static const struct dav_prop *dead_props(const struct dav_req *r, const char *rel, size_t *n)
{
    size_t lo = 0, hi = r->props.n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(r->props.v[mid].path, rel) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t end = lo;
    while (end < r->props.n && strcmp(r->props.v[end].path, rel) == 0)
        end++;
    *n = end - lo;
    return *n ? r->props.v + lo : NULL;
}

static void propstat(struct buf *b, const struct buf *props, const char *status)
{
    buf_puts(b, "<D:propstat><D:prop>");
    buf_append(b, props->p, props->len);
    buf_printf(b, "</D:prop><D:status>HTTP/1.1 %s</D:status></D:propstat>", status);
}

static void pf_resource(struct propfind *pf, const char *rel, const struct dav_stat *st)
{
    struct dav_req *r = pf->r;
    struct buf *b = &pf->out;
    struct buf ok = {0}, missing = {0};
    buf_puts(b, "<D:response>");
    dav_xml_href(b, r->prefix, rel, st->is_dir);
    size_t ndead;
    const struct dav_prop *dead = dead_props(r, rel, &ndead);
    switch (pf->mode) {
    case PF_ALLPROP:
        for (int i = 0; i < L_COUNT; i++)
            live_value(r, &ok, i, rel, st);
        for (size_t k = 0; k < ndead; k++)
            buf_puts(&ok, dead[k].xml);
        break;
    case PF_PROPNAME:
        for (int i = 0; i < L_COUNT; i++)
            if (!(st->is_dir && (i == L_GETCONTENTLENGTH || i == L_GETCONTENTTYPE)))
                buf_printf(&ok, "<D:%s/>", live_names[i]);
        for (size_t k = 0; k < ndead; k++)
            prop_name(&ok, dead[k].ns, dead[k].name);
        break;
    case PF_PROP:
        for (size_t k = 0; k < pf->nnames; k++) {
            const struct pf_name *n = &pf->names[k];
            int li = live_index(n->ns, n->name);
            if (li >= 0 && live_value(r, &ok, li, rel, st))
                continue;
            const struct dav_prop *found = NULL;
            for (size_t j = 0; j < ndead && li < 0 && !found; j++)
                if (strcmp(dead[j].ns, n->ns) == 0 && strcmp(dead[j].name, n->name) == 0)
                    found = &dead[j];
            if (found)
                buf_puts(&ok, found->xml);
            else
                prop_name(&missing, n->ns, n->name);
        }
        break;
    }
    if (ok.len || !missing.len)
        propstat(b, &ok, "200 OK");
    if (missing.len)
        propstat(b, &missing, "404 Not Found");
    buf_puts(b, "</D:response>");
    buf_free(&ok);
    buf_free(&missing);
}

static void pf_walk(struct propfind *pf, const char *rel, int depth)
{
    int dfd = dav_open_dir(pf->r->in, rel);
    if (dfd < 0)
        return;
    int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    close(dfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            strncmp(de->d_name, DAV_RESERVED, strlen(DAV_RESERVED)) == 0)
            continue;
        char *child = dav_join(rel, de->d_name);
        struct dav_stat st;
        if (dav_stat(pf->r->in, child, &st) == 0 && st.exists) {
            pf_resource(pf, child, &st);
            /* Infinity descends into real directories only, never
             * through a symlink (which could loop). */
            struct stat lst;
            if (depth == DAV_DEPTH_INFINITY && st.is_dir &&
                fstatat(fd, de->d_name, &lst, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(lst.st_mode))
                pf_walk(pf, child, depth);
        }
        free(child);
    }
    closedir(d);
}

static const char *ns_of(const xmlNode *n)
{
    return n->ns && n->ns->href ? (const char *)n->ns->href : "";
}

void dav_propfind(struct dav_req *r)
{
    int depth = dav_depth(r->req, DAV_DEPTH_INFINITY);
    if (depth == -2) {
        verbd_response_error(r->res, 400, "Depth is 0, 1 or infinity.");
        dav_done(r);
        return;
    }
    if (depth == DAV_DEPTH_INFINITY && !r->in->depth_infinity) {
        dav_error(r->res, 403, "propfind-finite-depth");
        dav_done(r);
        return;
    }
    struct propfind pf = {.r = r, .mode = PF_ALLPROP};
    xmlDoc *doc = NULL;
    if (r->body_len) {
        doc = dav_xml_parse(r->body, r->body_len);
        xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
        xmlNode *what = dav_xml_first(root);
        if (!dav_xml_is(root, "propfind") ||
            !(dav_xml_is(what, "allprop") || dav_xml_is(what, "propname") ||
              dav_xml_is(what, "prop"))) {
            dav_xml_free(doc);
            verbd_response_error(r->res, 400, "The body is not a DAV:propfind document.");
            dav_done(r);
            return;
        }
        if (dav_xml_is(what, "propname")) {
            pf.mode = PF_PROPNAME;
        } else if (dav_xml_is(what, "prop")) {
            pf.mode = PF_PROP;
            for (xmlNode *c = dav_xml_first(what); c; c = dav_xml_next(c)) {
                pf.names = realloc(pf.names, (pf.nnames + 1) * sizeof *pf.names);
                if (!pf.names)
                    abort();
                pf.names[pf.nnames++] = (struct pf_name){ns_of(c), (const char *)c->name};
            }
        }
    }
    buf_puts(&pf.out, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
                      "<D:multistatus xmlns:D=\"DAV:\">");
    pf_resource(&pf, r->rel, &r->st);
    if (depth != 0 && r->st.is_dir)
        pf_walk(&pf, r->rel, depth);
    buf_puts(&pf.out, "</D:multistatus>\n");
    dav_xml_respond(r->res, 207, &pf.out);
    buf_free(&pf.out);
    free(pf.names);
    dav_xml_free(doc);
    dav_done(r);
}

/* ---- PROPPATCH ---------------------------------------------------------------- */

struct pp_op {
    bool set;
    const char *ns, *name;
    char *xml;
    int status;
};

static void pp_group(struct buf *b, const struct pp_op *ops, size_t n, int status, const char *text)
{
    struct buf names = {0};
    for (size_t i = 0; i < n; i++)
        if (ops[i].status == status)
            prop_name(&names, ops[i].ns, ops[i].name);
    if (names.len) {
        buf_puts(b, "<D:propstat><D:prop>");
        buf_append(b, names.p, names.len);
        buf_printf(b, "</D:prop><D:status>HTTP/1.1 %s</D:status>", text);
        if (status == 403)
            buf_puts(b, "<D:error><D:cannot-modify-protected-property/></D:error>");
        buf_puts(b, "</D:propstat>");
    }
    buf_free(&names);
}

/* A PROPPATCH between its parse and its answer. */
struct proppatch {
    struct pp_op *ops;
    size_t n;
    struct _xmlDoc *doc; /* the names point into it */
};

static void proppatch_free(void *arg)
{
    struct proppatch *pp = arg;
    for (size_t i = 0; i < pp->n; i++)
        free(pp->ops[i].xml);
    free(pp->ops);
    dav_xml_free(pp->doc);
}

static void proppatch_answer(struct dav_req *r, int result)
{
    struct proppatch *pp = r->state;
    if (result != DAV_STORE_OK) {
        dav_unavailable(r);
        return;
    }
    struct buf b = {0};
    buf_puts(&b, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
                 "<D:multistatus xmlns:D=\"DAV:\"><D:response>");
    dav_xml_href(&b, r->prefix, r->rel, r->st.is_dir);
    pp_group(&b, pp->ops, pp->n, 200, "200 OK");
    pp_group(&b, pp->ops, pp->n, 403, "403 Forbidden");
    pp_group(&b, pp->ops, pp->n, 424, "424 Failed Dependency");
    buf_puts(&b, "</D:response></D:multistatus>\n");
    dav_xml_respond(r->res, 207, &b);
    buf_free(&b);
    dav_done(r);
}

void dav_proppatch(struct dav_req *r)
{
    int status = dav_check_locks(r, r->rel, false, false);
    if (status) {
        dav_error(r->res, status, "lock-token-submitted");
        dav_done(r);
        return;
    }
    struct proppatch *pp = verbd_alloc(r->x, sizeof *pp);
    *pp = (struct proppatch){.doc = dav_xml_parse(r->body, r->body_len)};
    verbd_cleanup(r->x, proppatch_free, pp);
    r->state = pp;
    xmlNode *root = pp->doc ? xmlDocGetRootElement(pp->doc) : NULL;
    if (!dav_xml_is(root, "propertyupdate")) {
        verbd_response_error(r->res, 400, "The body is not a DAV:propertyupdate document.");
        dav_done(r);
        return;
    }
    bool bad = false, refused = false;
    for (xmlNode *c = dav_xml_first(root); c && !bad; c = dav_xml_next(c)) {
        bool set = dav_xml_is(c, "set");
        if (!set && !dav_xml_is(c, "remove"))
            continue; /* unknown elements are ignored (§17) */
        xmlNode *prop = dav_xml_first(c);
        if (!dav_xml_is(prop, "prop")) {
            bad = true;
            break;
        }
        for (xmlNode *p = dav_xml_first(prop); p; p = dav_xml_next(p)) {
            pp->ops = realloc(pp->ops, (pp->n + 1) * sizeof *pp->ops);
            if (!pp->ops)
                abort();
            struct pp_op *o = &pp->ops[pp->n++];
            *o = (struct pp_op){set, ns_of(p), (const char *)p->name, NULL, 200};
            if (live_index(o->ns, o->name) >= 0) {
                o->status = 403;
                refused = true;
            } else if (set) {
                o->xml = dav_xml_dump(p, false);
            }
        }
    }
    if (bad || pp->n == 0) {
        verbd_response_error(r->res, 400, "The body is not a DAV:propertyupdate document.");
        dav_done(r);
        return;
    }
    if (refused) {
        for (size_t i = 0; i < pp->n; i++)
            if (pp->ops[i].status == 200)
                pp->ops[i].status = 424;
        proppatch_answer(r, DAV_STORE_OK); /* nothing is changed */
        return;
    }
    /* In document order, all or nothing (§9.2): one store operation. */
    struct dav_patch *patch = calloc(pp->n, sizeof *patch);
    if (!patch)
        abort();
    for (size_t i = 0; i < pp->n; i++)
        patch[i] =
            (struct dav_patch){pp->ops[i].set, pp->ops[i].ns, pp->ops[i].name, pp->ops[i].xml};
    dav_patch(r, patch, pp->n, proppatch_answer);
    free(patch);
}
