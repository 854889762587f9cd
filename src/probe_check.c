/* verbd probe: what each answer means, where the answers contradict each
 * other or the RFCs, and what a caller should make of it. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "http/method.h"
#include "http/response.h"
#include "http/status.h"
#include "probe.h"

void probe_classify(struct probe *p)
{
    int s = p->status;
    const char *e = NULL;
    char buf[sizeof p->explain];

    if (!p->tried) {
        p->cls = CLASS_NOT_TRIED;
        snprintf(p->explain, sizeof p->explain, "%s", p->not_tried);
        return;
    }
    if (!p->answered) {
        p->cls = p->malformed ? CLASS_MALFORMED : CLASS_NO_ANSWER;
        snprintf(p->explain, sizeof p->explain, "%s", p->error);
        return;
    }
    if (s == 405) {
        p->cls = CLASS_NOT_ALLOWED;
        e = "implemented, but not allowed on this resource";
    } else if (s == 501) {
        p->cls = CLASS_NOT_IMPLEMENTED;
        e = "not implemented by this server, for any resource";
    } else if (s == 401 || s == 407) {
        p->cls = CLASS_CREDENTIALS;
        e = "needs credentials (try --header \"Authorization: ...\")";
    } else if (s == 403) {
        p->cls = CLASS_CREDENTIALS;
        e = "forbidden: needs credentials or permission";
    } else if (s == 412 && p->guarded) {
        p->cls = CLASS_ALLOWED;
        e = "implemented and allowed: the guard held (412), nothing changed";
    } else if (s >= 200 && s < 300) {
        p->cls = CLASS_ALLOWED;
        e = p->guarded ? "answered 2xx: the server did not evaluate the If-Match guard"
                       : "implemented and allowed";
    } else if (s == 400 && p->where == AT_SCRATCH && !p->unknown) {
        /* The scratch resource is the probe's own: a 400 there is the
         * method refusing its empty request (PROPPATCH, LOCK ...). */
        p->cls = CLASS_ALLOWED;
        e = "implemented: refused the probe's empty request (400 Bad Request)";
    } else if (s == 409 || s == 411 || s == 413 || s == 415 || s == 422 || s == 423 || s == 424 ||
               s == 428) {
        p->cls = CLASS_ALLOWED;
        snprintf(buf, sizeof buf, "implemented: refused the probe's empty request (%d %s)", s,
                 http_status_reason(s));
        e = buf;
    } else {
        p->cls = CLASS_OTHER;
        if (s >= 300 && s < 400)
            snprintf(buf, sizeof buf, "redirected%s%.100s: probe that URL instead",
                     p->location.present ? " to " : "", p->location.present ? p->location.v : "");
        else if ((s == 404 || s == 410) && p->where == AT_MISSING)
            snprintf(buf, sizeof buf,
                     "%d at a random missing path: the server does not refuse "
                     "the method outright (that would be 501)",
                     s);
        else if (s == 404 || s == 410)
            snprintf(buf, sizeof buf, "no resource at this URL (the method may still be allowed)");
        else if (s == 400)
            snprintf(buf, sizeof buf, "rejected as a bad request%s",
                     strcmp(p->method, "COPY") == 0 || strcmp(p->method, "MOVE") == 0
                         ? " (the probe sends no Destination, on purpose)"
                         : "");
        else if (s >= 500)
            snprintf(buf, sizeof buf, "server error (%d %s)", s, http_status_reason(s));
        else
            snprintf(buf, sizeof buf, "%d %s", s, http_status_reason(s));
        e = buf;
    }
    snprintf(p->explain, sizeof p->explain, "%s", e);
}

static void add(struct probe_run *run, enum finding_kind kind, const char *method, const char *rfc,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void add(struct probe_run *run, enum finding_kind kind, const char *method, const char *rfc,
                const char *fmt, ...)
{
    char text[sizeof run->findings[0].text];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    /* The same finding for another method: one line naming both. */
    for (size_t i = 0; i < run->nfindings; i++) {
        struct finding *f = &run->findings[i];
        if (f->kind == kind && f->rfc == rfc && strcmp(f->text, text) == 0) {
            size_t l = strlen(f->methods);
            snprintf(f->methods + l, sizeof f->methods - l, ", %s", method);
            return;
        }
    }
    if (run->nfindings == PROBE_MAX_FINDINGS)
        return;
    struct finding *f = &run->findings[run->nfindings++];
    f->kind = kind;
    f->rfc = rfc;
    snprintf(f->methods, sizeof f->methods, "%s", method);
    memcpy(f->text, text, sizeof text);
    if (kind == FINDING_PROBLEM)
        run->problems++;
}

/* The probe of `method` sent to the URL itself (or to "*"). */
static const struct probe *find(const struct probe_run *run, const char *method, bool asterisk)
{
    for (size_t i = 0; i < run->nprobes; i++) {
        const struct probe *p = &run->probes[i];
        if (p->tried && p->where == AT_RESOURCE && p->asterisk == asterisk &&
            strcmp(p->method, method) == 0)
            return p;
    }
    return NULL;
}

static bool same_target(const struct probe *a, const struct probe *b)
{
    return a->asterisk == b->asterisk && strcmp(a->target, b->target) == 0;
}

static bool options_2xx(const struct probe *p)
{
    return p->tried && p->answered && !p->asterisk && strcmp(p->method, "OPTIONS") == 0 &&
           p->status >= 200 && p->status < 300;
}

/* A target's reference Allow: its OPTIONS's, else its first 405's.  Allow
 * describes one resource (RFC 9110 §10.2.1), so answers are only held to
 * the Allow of the same target. */
struct ref {
    const struct probe *options; /* the target's OPTIONS, answered 2xx */
    const struct probe *from;    /* whose Allow is the reference */
};

static struct ref reference(const struct probe_run *run, const struct probe *p)
{
    struct ref r = {NULL, NULL};
    for (size_t i = 0; i < run->nprobes && !r.options; i++) {
        const struct probe *q = &run->probes[i];
        if (options_2xx(q) && same_target(p, q))
            r.options = q;
    }
    if (r.options && r.options->allow.present) {
        r.from = r.options;
        return r;
    }
    for (size_t i = 0; i < run->nprobes && !r.from; i++) {
        const struct probe *q = &run->probes[i];
        if (q->tried && q->answered && q->status == 405 && q->allow.present && same_target(p, q))
            r.from = q;
    }
    return r;
}

static struct span sv(const struct probe_value *v)
{
    return (struct span){v->v, strlen(v->v)};
}

/* Every method of a also in b. */
static bool allow_subset(struct span a, struct span b)
{
    struct span e;
    while (http_list_next(&a, &e))
        if (!http_allow_has(b, e.p, e.n))
            return false;
    return true;
}

static bool allow_equal(const struct probe_value *a, const struct probe_value *b)
{
    return allow_subset(sv(a), sv(b)) && allow_subset(sv(b), sv(a));
}

/* A server-supplied string made safe to print and put in a finding. */
static const char *clean(const char *s, char *buf, size_t cap)
{
    probe_copy_clean(buf, cap, s, strlen(s));
    return buf;
}

static const char *label(const struct probe *p)
{
    if (p->where == AT_SCRATCH && strcmp(p->method, "OPTIONS") == 0)
        return "OPTIONS (scratch)"; /* not the URL's OPTIONS */
    return p->asterisk ? "OPTIONS *" : p->method;
}

/* HEAD must mirror GET (RFC 9110 §9.3.2). */
static void check_head(struct probe_run *run, const struct probe *get, const struct probe *head)
{
    if (!get || !head || !get->answered || !head->answered)
        return;
    if (head->unexpected_body)
        add(run, FINDING_PROBLEM, "HEAD", "RFC 9110 §9.3.2",
            "the response to HEAD carried %llu bytes of content (a server MUST NOT send any)",
            (unsigned long long)head->unexpected_body);
    if (get->cls == CLASS_ALLOWED &&
        (head->cls == CLASS_NOT_ALLOWED || head->cls == CLASS_NOT_IMPLEMENTED)) {
        add(run, FINDING_PROBLEM, "HEAD", "RFC 9110 §9.1",
            "GET works but HEAD is answered %d (general-purpose servers MUST support both)",
            head->status);
        return;
    }
    if (get->status != head->status) {
        add(run, FINDING_PROBLEM, "HEAD", "RFC 9110 §9.3.2",
            "HEAD is answered %d but GET %d (HEAD is GET without the content)", head->status,
            get->status);
        return;
    }
    if (get->status < 200 || get->status >= 300)
        return; /* error pages may well differ */
    static const struct {
        const char *name;
        size_t off;
    } cmp[] = {
        {"Content-Length", offsetof(struct probe, content_length)},
        {"Content-Type", offsetof(struct probe, content_type)},
        {"ETag", offsetof(struct probe, etag)},
        {"Last-Modified", offsetof(struct probe, last_modified)},
    };
    char b1[PROBE_VALUE], b2[PROBE_VALUE];
    for (size_t i = 0; i < sizeof cmp / sizeof cmp[0]; i++) {
        const struct probe_value *g = (const void *)((const char *)get + cmp[i].off);
        const struct probe_value *h = (const void *)((const char *)head + cmp[i].off);
        if (g->present && h->present && strcmp(g->v, h->v) != 0)
            add(run, FINDING_PROBLEM, "HEAD", "RFC 9110 §9.3.2",
                "%s differs: %s (GET) vs %s (HEAD)", cmp[i].name, clean(g->v, b1, sizeof b1),
                clean(h->v, b2, sizeof b2));
        else if (g->present != h->present && i == 0 && g->present)
            add(run, FINDING_NOTE, "HEAD", "RFC 9110 §8.6",
                "HEAD omits the Content-Length that GET sends (allowed, but less useful)");
        else if (g->present != h->present)
            add(run, FINDING_PROBLEM, "HEAD", "RFC 9110 §9.3.2", "%s is sent with %s only",
                cmp[i].name, g->present ? "GET" : "HEAD");
    }
}

/* RFC 9112 section a malformed response breaks. */
static const char *rfc9112_section(const char *why)
{
    if (strstr(why, "Content-Length") || strstr(why, "Transfer-Encoding"))
        return "RFC 9112 §6";
    if (strstr(why, "status") || strstr(why, "version") || strstr(why, "reason"))
        return "RFC 9112 §4";
    return "RFC 9112 §5";
}

static void check_message(struct probe_run *run, const struct probe *p)
{
    const char *m = label(p);
    if (p->malformed)
        add(run, FINDING_PROBLEM, m, rfc9112_section(p->malformed), "malformed response: %s",
            p->malformed);
    else if (!p->answered && !p->connect_failed)
        add(run, FINDING_NOTE, m, NULL, "no answer: %s", p->error);
    else if (!p->answered)
        add(run, FINDING_NOTE, m, NULL, "%s", p->error);
    if (!p->answered)
        return;
    if (p->te_and_cl)
        add(run, FINDING_PROBLEM, m, "RFC 9112 §6.2",
            "the response has both Transfer-Encoding and Content-Length (a sender MUST NOT)");
    if (p->truncated)
        add(run, FINDING_NOTE, m, NULL, "%s", p->error);
    if (p->body_error || p->body_incomplete)
        add(run, FINDING_PROBLEM, m, p->body_error ? "RFC 9112 §7.1" : "RFC 9112 §8", "%s",
            p->error);
    if (p->unexpected_body && strcmp(p->method, "HEAD") != 0)
        add(run, FINDING_PROBLEM, m, p->status == 304 ? "RFC 9110 §15.4.5" : "RFC 9110 §15.3.5",
            "a %d response carried %llu bytes of content (it cannot have any)", p->status,
            (unsigned long long)p->unexpected_body);
}

/* Whoever (at the same target, or any target for a 501) lists p's method
 * in an Allow, though p was refused. */
static const struct probe *lister_of(const struct probe_run *run, const struct probe *p)
{
    size_t n = strlen(p->method);
    bool anywhere = p->cls == CLASS_NOT_IMPLEMENTED; /* 501 is server-wide */
    for (int pass = 0; pass < 2; pass++)
        for (size_t k = 0; k < run->nprobes; k++) {
            const struct probe *q = &run->probes[k];
            bool usable = pass == 0 ? options_2xx(q)
                                    : q->tried && q->answered && q->status == 405 && !q->asterisk;
            if (usable && q->allow.present && (anywhere || same_target(p, q)) &&
                http_allow_has(sv(&q->allow), p->method, n))
                return q;
        }
    return NULL;
}

/* What the server said about a method the probe did not send. */
static void known_about(const struct probe_run *run, struct probe *p)
{
    const struct probe *options = find(run, "OPTIONS", false), *star = find(run, "OPTIONS", true);
    size_t n = strlen(p->method), l = 0;
    char v[PROBE_VALUE];
#define SAY(...)                                                                                   \
    do {                                                                                           \
        if (l < sizeof p->known)                                                                   \
            l += (size_t)snprintf(p->known + l, sizeof p->known - l, __VA_ARGS__);                 \
    } while (0)
    const struct probe *lister = NULL;
    bool have_allow = false;
    for (size_t k = 0; k < run->nprobes; k++) {
        const struct probe *q = &run->probes[k];
        if (q->where != AT_RESOURCE || q->asterisk || !q->allow.present ||
            !(options_2xx(q) || (q->tried && q->answered && q->status == 405)))
            continue;
        have_allow = true;
        if (!lister && http_allow_has(sv(&q->allow), p->method, n))
            lister = q;
    }
    if (lister)
        SAY("listed in the Allow of %s%s", lister == options ? "OPTIONS" : lister->method,
            lister == options ? "" : "'s 405");
    else if (have_allow)
        SAY("not in this resource's Allow");
    if (star && star->answered && star->allow.present && star->status >= 200 && star->status < 300)
        SAY("%sOPTIONS * %s", l ? "; " : "",
            http_allow_has(sv(&star->allow), p->method, n) ? "lists it" : "does not list it");
    int id = method_lookup(p->method, n);
    const struct probe_value *dav = options && options_2xx(options) ? &options->dav : NULL;
    if (dav && dav->present) {
        probe_copy_clean(v, sizeof v, dav->v, strlen(dav->v));
        if (id == METHOD_LOCK || id == METHOD_UNLOCK)
            SAY("%sDAV: %s (%s)", l ? "; " : "", v,
                strchr(v, '2') ? "class 2: locking" : "no class 2: no locking");
        else if (id == METHOD_PUT || id == METHOD_DELETE || id == METHOD_MKCOL ||
                 id == METHOD_COPY || id == METHOD_MOVE || id == METHOD_PROPPATCH)
            SAY("%sDAV: %s (WebDAV)", l ? "; " : "", v);
    }
    if (id == METHOD_PATCH && options && options_2xx(options) && options->accept_patch.present) {
        probe_copy_clean(v, sizeof v, options->accept_patch.v, strlen(options->accept_patch.v));
        SAY("%sAccept-Patch: %s (PATCH is accepted here, RFC 5789 §3.1)", l ? "; " : "", v);
    }
#undef SAY
}

void probe_check(const struct probe_config *cfg, struct probe_run *run)
{
    char b1[PROBE_VALUE], b2[PROBE_VALUE];
    const struct probe *star = find(run, "OPTIONS", true);

    for (size_t i = 0; i < run->nprobes; i++) {
        struct probe *p = &run->probes[i];
        const char *m = label(p);
        if (!p->tried) {
            known_about(run, p);
            continue;
        }
        check_message(run, p);
        if (!p->answered)
            continue;
        struct ref ref = reference(run, p);

        if (p->status == 405 && !p->allow.present) {
            add(run, FINDING_PROBLEM, m, "RFC 9110 §15.5.6",
                "405 without an Allow header field (a server MUST send one)");
        } else if (p->status == 405 && ref.from != p && !allow_equal(&ref.from->allow, &p->allow)) {
            add(run, FINDING_PROBLEM, m, "RFC 9110 §10.2.1",
                "the Allow of its 405 (%s) disagrees with the Allow of %s%s (%s)",
                clean(p->allow.v, b1, sizeof b1),
                ref.from == ref.options ? "OPTIONS" : ref.from->method,
                ref.from == ref.options ? "" : "'s 405", clean(ref.from->allow.v, b2, sizeof b2));
        }

        /* Listed in some Allow, then refused. */
        if ((p->cls == CLASS_NOT_ALLOWED || p->cls == CLASS_NOT_IMPLEMENTED) && !p->asterisk) {
            const struct probe *lister = lister_of(run, p);
            if (lister)
                add(run, FINDING_PROBLEM, m, "RFC 9110 §10.2.1",
                    "listed in the Allow of %s%s, yet answered %d",
                    options_2xx(lister) ? "OPTIONS"
                    : lister == p       ? "its own 405"
                                        : lister->method,
                    options_2xx(lister) || lister == p ? "" : "'s 405", p->status);
        }

        if (p->status == 501 && p->retry_after.present)
            add(run, FINDING_PROBLEM, m, "RFC 9110 §15.6.2",
                "501 with Retry-After: %s (not implemented is not a temporary condition; "
                "Retry-After belongs to 503 and 3xx, RFC 9110 §10.2.3)",
                clean(p->retry_after.v, b1, sizeof b1));

        if (p->unknown) {
            if (p->status >= 200 && p->status < 300)
                add(run, FINDING_PROBLEM, m, "RFC 9110 §9.1",
                    "a made-up method was answered %d as if it were implemented (expected 501)",
                    p->status);
            else if (p->status != 501)
                add(run, FINDING_NOTE, m, "RFC 9110 §9.1",
                    "a made-up method was answered %d; a server SHOULD answer 501 to a method it "
                    "does not recognise",
                    p->status);
        }

        /* Works, yet missing from what OPTIONS advertises for the target. */
        if (p->cls == CLASS_ALLOWED && !p->asterisk && !p->unknown && !options_2xx(p) &&
            ref.options && ref.from == ref.options &&
            !http_allow_has(sv(&ref.options->allow), p->method, strlen(p->method)))
            add(run, FINDING_NOTE, m, "RFC 9110 §10.2.1",
                "answered %d but not listed in the Allow of OPTIONS (%s)", p->status,
                clean(ref.options->allow.v, b1, sizeof b1));

        if (strcmp(p->method, "TRACE") == 0 && p->cookie_echoed)
            add(run, FINDING_PROBLEM, m, "RFC 9110 §9.3.8",
                "TRACE echoed the Cookie it was sent (sensitive fields SHOULD be left out)");
    }

    if (star && star->answered && (star->status < 200 || star->status >= 300))
        add(run, FINDING_PROBLEM, "OPTIONS *", "RFC 9110 §9.3.7",
            "OPTIONS * (the server as a whole) answered %d instead of 2xx", star->status);

    check_head(run, find(run, "GET", false), find(run, "HEAD", false));

    for (size_t i = 0; i < run->scratch.nleft; i++)
        add(run, FINDING_NOTE, "DELETE", NULL, "the probe could not remove what it created: %s",
            run->scratch.left[i]);

    /* The verdict, in plain words. */
    char ok[512] = "", refused[512] = "", unimpl[512] = "", creds[512] = "", untried[512] = "";
    char sok[512] = "", sref[512] = "";
    size_t nok = 0, nref = 0, nun = 0, ncr = 0, nans = 0, nnt = 0, nsok = 0, nsref = 0;
#define APPEND(buf, n, s)                                                                          \
    do {                                                                                           \
        size_t l_ = strlen(buf);                                                                   \
        snprintf(buf + l_, sizeof buf - l_, "%s%s", (n)++ ? ", " : "", s);                         \
    } while (0)
    for (size_t i = 0; i < run->nprobes; i++) {
        const struct probe *p = &run->probes[i];
        if (p->asterisk || p->unknown ||
            (p->where == AT_SCRATCH && strcmp(p->method, "OPTIONS") == 0))
            continue;
        nans += p->answered;
        /* What the probe's own resource allows is not what the URL does. */
        if (p->where == AT_SCRATCH && p->cls == CLASS_ALLOWED) {
            APPEND(sok, nsok, p->method);
            continue;
        }
        if (p->where == AT_SCRATCH && p->cls == CLASS_NOT_ALLOWED) {
            APPEND(sref, nsref, p->method);
            continue;
        }
        switch (p->cls) {
        case CLASS_ALLOWED: APPEND(ok, nok, p->method); break;
        case CLASS_NOT_ALLOWED: APPEND(refused, nref, p->method); break;
        case CLASS_NOT_IMPLEMENTED: APPEND(unimpl, nun, p->method); break;
        case CLASS_CREDENTIALS: APPEND(creds, ncr, p->method); break;
        case CLASS_NOT_TRIED: APPEND(untried, nnt, p->method); break;
        default: break;
        }
    }
#undef APPEND
    size_t l = 0;
#define SAY(...)                                                                                   \
    do {                                                                                           \
        if (l < sizeof run->verdict)                                                               \
            l += (size_t)snprintf(run->verdict + l, sizeof run->verdict - l, __VA_ARGS__);         \
    } while (0)
    if (!nans && !run->problems)
        SAY("No verdict: no method got a valid answer.");
    else if (run->problems)
        SAY("%zu inconsistenc%s: this server's answers about its methods cannot all be "
            "trusted (see above).",
            run->problems, run->problems == 1 ? "y" : "ies");
    else
        SAY("Consistent: the answers agree with each other and with RFC 9110.");
    if (nok)
        SAY(" Works here: %s.", ok);
    if (nref)
        SAY(" Implemented but not allowed on this resource (405): %s.", refused);
    if (nun)
        SAY(" Not implemented by the server at all (501): %s.", unimpl);
    if (ncr)
        SAY(" Needs credentials: %s.", creds);
    if (nnt)
        SAY(" Not tried (unsafe): %s.", untried);
    if (nsok || nsref)
        SAY(" On %s%s (not the URL itself):%s%s%s%s%s.",
            run->scratch.given ? "the --scratch resource " : "a resource the probe created, ",
            run->scratch.path, nsok ? " works: " : "", sok, nsok && nsref ? ";" : "",
            nsref ? " not allowed (405): " : "", sref);
    if (!nans && run->problems)
        SAY(" No method got a valid answer.");
#undef SAY

    const struct probe *options = find(run, "OPTIONS", false);
    struct ref ref = options ? reference(run, options) : (struct ref){NULL, NULL};
    size_t cap = sizeof run->advice / sizeof run->advice[0];
    if (nref && ref.from && run->nadvice < cap)
        snprintf(run->advice[run->nadvice++], sizeof run->advice[0],
                 "405 (%s): the server knows the method, but this resource refuses it. Use a "
                 "method from the resource's Allow list (%s), or check that you are calling "
                 "the URL where the method is meant to be used.",
                 refused, clean(ref.from->allow.v, b1, sizeof b1));
    else if (nref && run->nadvice < cap)
        snprintf(run->advice[run->nadvice++], sizeof run->advice[0],
                 "405 (%s): the server refuses the method on this resource but does not say "
                 "which methods it allows (no Allow). Methods that worked here: %s. Check that "
                 "you are calling the URL where the method is meant to be used.",
                 refused, nok ? ok : "none");
    if (nun && run->nadvice < cap)
        snprintf(run->advice[run->nadvice++], sizeof run->advice[0],
                 "501 (%s): no part of this server implements the method. Check the method "
                 "name and its case (methods are case-sensitive: \"get\" is not \"GET\"); if you "
                 "run the server, it needs a module or handler mapping that implements the "
                 "method (for verbd: a mapping with that module enabled).",
                 unimpl);
    if (ncr && run->nadvice < cap)
        snprintf(run->advice[run->nadvice++], sizeof run->advice[0],
                 "401/403 (%s): the method may well work with credentials; probe again with "
                 "--header \"Authorization: ...\" (or a Cookie).",
                 creds);
    if (nnt && !cfg->unsafe && run->nadvice < cap)
        snprintf(run->advice[run->nadvice++], sizeof run->advice[0],
                 "Not tried (%s): these methods may change what is on the server, so the probe "
                 "does not send them unless asked. The table shows what the server said about "
                 "them anyway. To try them, run again with --unsafe: they then go to a resource "
                 "the probe creates itself next to the URL (and deletes after), or to a "
                 "resource you name with --scratch URL.",
                 untried);
    else if (nnt && run->nadvice < cap)
        snprintf(run->advice[run->nadvice++], sizeof run->advice[0],
                 "Not tried (%s): %s. The probe sends unsafe methods only to a resource whose "
                 "content it wrote itself; name one that may be replaced and deleted with "
                 "--scratch URL.",
                 untried, run->scratch.why[0] ? run->scratch.why : "see the table");
}

/* What a probe got, in a few words: "405, Allow: GET, HEAD". */
static void summary(const struct probe *p, char *out, size_t cap)
{
    char v[PROBE_VALUE];
    if (!p->tried) {
        snprintf(out, cap, "not sent");
        return;
    }
    if (!p->answered) {
        snprintf(out, cap, "no answer (%s)", clean(p->error, v, sizeof v));
        return;
    }
    snprintf(out, cap, "%d", p->status);
    const struct probe_value *vals[] = {&p->allow, &p->dav, &p->accept_patch};
    const char *names[] = {"Allow", "DAV", "Accept-Patch"};
    for (size_t i = 0; i < 3; i++) {
        if (!vals[i]->present)
            continue;
        size_t l = strlen(out);
        snprintf(out + l, cap - l, ", %s: %s", names[i], clean(vals[i]->v, v, sizeof v));
    }
}

static bool same_value(const struct probe_value *a, const struct probe_value *b)
{
    return a->present == b->present && (!a->present || strcmp(a->v, b->v) == 0);
}

/* The same answer as far as the method decision goes: status, Allow (as
 * a set), DAV and Accept-Patch. */
static bool same_answer(const struct probe *a, const struct probe *b)
{
    if (a->tried != b->tried || a->where != b->where || a->answered != b->answered)
        return false;
    if (!a->tried || !a->answered)
        return true;
    return a->status == b->status && a->allow.present == b->allow.present &&
           (!a->allow.present || allow_equal(&a->allow, &b->allow)) &&
           same_value(&a->dav, &b->dav) && same_value(&a->accept_patch, &b->accept_patch);
}

void probe_compare(const struct probe_run *h1, struct probe_run *h2)
{
    h2->compared = true;
    for (size_t i = 0; i < h2->nprobes && i < h1->nprobes; i++) {
        const struct probe *a = &h1->probes[i], *b = &h2->probes[i];
        if (same_answer(a, b))
            continue;
        struct finding *f = &h2->differs[h2->ndiffers++];
        char s1[PROBE_VALUE * 3], s2[PROBE_VALUE * 3];
        summary(a, s1, sizeof s1);
        summary(b, s2, sizeof s2);
        f->kind = FINDING_PROBLEM;
        f->rfc = "RFC 9110: semantics shared by every version";
        snprintf(f->methods, sizeof f->methods, "%s", label(b));
        snprintf(f->text, sizeof f->text, "HTTP/1.1: %.180s; HTTP/2: %.180s", s1, s2);
    }
    size_t l = strlen(h2->verdict);
    if (h2->ndiffers)
        snprintf(h2->verdict + l, sizeof h2->verdict - l,
                 " Over HTTP/1.1 %zu answer%s differ%s from HTTP/2's (see above).", h2->ndiffers,
                 h2->ndiffers == 1 ? "" : "s", h2->ndiffers == 1 ? "s" : "");
    else
        snprintf(h2->verdict + l, sizeof h2->verdict - l,
                 " HTTP/1.1 and HTTP/2 get the same answers.");
}
