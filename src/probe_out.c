/* verbd probe: the results as an aligned table (coloured on a terminal) or
 * as JSON.  Nothing the server sent reaches the terminal unfiltered. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "probe.h"

#define WIDTH 100 /* wrap prose at this column */

/* What every row's detail needs to know about the run. */
struct run_view {
    const char *scratch;       /* the scratch resource's path */
    const char *scratch_label; /* how rows sent there say so */
};

static struct run_view view(const struct probe_run *run)
{
    return (struct run_view){run->scratch.path, run->scratch.given
                                                    ? "(on the --scratch resource)"
                                                    : "(on the probe's own resource)"};
}

/* The URL's OPTIONS, if it answered 2xx: its DAV and Accept-Patch. */
static const struct probe *url_options(const struct probe_run *run)
{
    for (size_t i = 0; i < run->nprobes; i++) {
        const struct probe *p = &run->probes[i];
        if (p->tried && p->answered && p->where == AT_RESOURCE && !p->asterisk &&
            strcmp(p->method, "OPTIONS") == 0 && p->status >= 200 && p->status < 300)
            return p;
    }
    return NULL;
}

void probe_copy_clean(char *out, size_t cap, const char *s, size_t n)
{
    size_t k = 0;
    if (cap == 0)
        return;
    for (size_t i = 0; i < n && k + 1 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        out[k++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    out[k] = '\0';
}

static const char *class_name(enum probe_class c)
{
    switch (c) {
    case CLASS_ALLOWED: return "allowed";
    case CLASS_CREDENTIALS: return "needs credentials";
    case CLASS_NOT_ALLOWED: return "not allowed here";
    case CLASS_NOT_IMPLEMENTED: return "not implemented";
    case CLASS_OTHER: return "other";
    case CLASS_MALFORMED: return "malformed";
    case CLASS_NO_ANSWER: return "no answer";
    case CLASS_NOT_TRIED: return "not tried (unsafe)";
    }
    return "?";
}

static const char *class_id(enum probe_class c)
{
    switch (c) {
    case CLASS_ALLOWED: return "allowed";
    case CLASS_CREDENTIALS: return "needs_credentials";
    case CLASS_NOT_ALLOWED: return "not_allowed";
    case CLASS_NOT_IMPLEMENTED: return "not_implemented";
    case CLASS_OTHER: return "other";
    case CLASS_MALFORMED: return "malformed";
    case CLASS_NO_ANSWER: return "no_answer";
    case CLASS_NOT_TRIED: return "not_tried";
    }
    return "?";
}

static const char *class_color(enum probe_class c)
{
    switch (c) {
    case CLASS_ALLOWED: return "\033[32m";
    case CLASS_CREDENTIALS: return "\033[36m";
    case CLASS_NOT_ALLOWED: return "\033[33m";
    case CLASS_NOT_IMPLEMENTED: return "\033[31m";
    case CLASS_OTHER: return "\033[35m";
    case CLASS_MALFORMED: return "\033[31m";
    case CLASS_NO_ANSWER: return "\033[31m";
    case CLASS_NOT_TRIED: return "\033[2m";
    }
    return "";
}

static void append(char *out, size_t cap, const char *sep, const char *text)
{
    size_t l = strlen(out);
    if (l < cap)
        snprintf(out + l, cap - l, "%s%s", l ? sep : "", text);
}

/* The detail column: what the class alone does not say. */
static void detail(const struct run_view *v, const struct probe *p, char *out, size_t cap)
{
    char val[PROBE_VALUE];
    out[0] = '\0';
    if (!p->tried) {
        probe_copy_clean(out, cap, p->known, strlen(p->known));
        return;
    }
    if (p->answered && (p->status == 405 || (strcmp(p->method, "OPTIONS") == 0 &&
                                             p->status >= 200 && p->status < 300))) {
        if (p->allow.present) {
            probe_copy_clean(val, sizeof val, p->allow.v, strlen(p->allow.v));
            snprintf(out, cap, "Allow: %s", val[0] ? val : "(empty)");
        } else {
            snprintf(out, cap, "no Allow header");
        }
    } else if (p->cls == CLASS_NOT_IMPLEMENTED ||
               (p->cls == CLASS_ALLOWED && !p->guarded && p->status < 300)) {
        out[0] = '\0';
    } else {
        probe_copy_clean(out, cap, p->explain, strlen(p->explain));
    }
    if (p->unknown)
        append(out, cap, " ", "(a made-up method, at a random missing path)");
    else if (p->where == AT_MISSING)
        append(out, cap, " ", "(at a random missing path)");
    else if (p->where == AT_SCRATCH)
        append(out, cap, " ",
               strcmp(p->target, v->scratch) == 0 ? v->scratch_label
                                                  : "(on a resource the probe created)");
    if (p->truncated)
        append(out, cap, "; ", "body cut short");
}

static void status_text(const struct probe *p, char *out, size_t cap)
{
    char r[sizeof p->reason];
    if (!p->answered) {
        snprintf(out, cap, "-");
        return;
    }
    probe_copy_clean(r, sizeof r, p->reason, strlen(p->reason));
    if (strlen(r) > 24)
        strcpy(r + 21, "...");
    snprintf(out, cap, "%d%s%.24s", p->status, r[0] ? " " : "", r);
}

/* Prints `text` wrapped at `width` columns, the lines after the first
 * indented by `indent` spaces.  The caller has printed `col` visible
 * columns of the first line already. */
static void wrap(int col, const char *text, int indent, int width)
{
    bool start = true;
    const char *p = text;
    while (*p) {
        while (*p == ' ')
            p++;
        size_t w = strcspn(p, " ");
        if (w == 0)
            break;
        if (!start && col + 1 + (int)w > width)
            col = printf("\n%*s", indent, "") - 1;
        else if (col > 0)
            col += printf(" ");
        start = false;
        col += printf("%.*s", (int)w, p);
        p += w;
    }
    printf("\n");
}

void probe_print_table(const struct probe_config *cfg, const struct probe_run *run)
{
    const char *bold = cfg->color ? "\033[1m" : "", *off = cfg->color ? "\033[0m" : "";
    const char *red = cfg->color ? "\033[31m" : "", *yellow = cfg->color ? "\033[33m" : "";
    const char *green = cfg->color ? "\033[32m" : "";
    char server[PROBE_VALUE] = "";
    for (size_t i = 0; i < run->nprobes && !server[0]; i++)
        if (run->probes[i].server.present)
            probe_copy_clean(server, sizeof server, run->probes[i].server.v,
                             strlen(run->probes[i].server.v));
    printf("%sverbd probe %s%s%s%s%s%s\n", bold, cfg->url.text, off,
           !cfg->http2    ? ""
           : cfg->url.tls ? "  over HTTP/2 (h2, TLS)"
                          : "  over HTTP/2 (h2c, prior knowledge)",
           server[0] ? "  (Server: " : "", server, server[0] ? ")" : "");
    if (cfg->tls.done)
        printf("TLS: %s, cipher %s, ALPN %s, %s\n", cfg->tls.version, cfg->tls.cipher,
               cfg->tls.alpn,
               cfg->insecure ? "certificate not verified (--insecure)" : "certificate verified");
    const struct probe *o = url_options(run);
    char v1[PROBE_VALUE], v2[PROBE_VALUE];
    if (o && (o->dav.present || o->accept_patch.present)) {
        probe_copy_clean(v1, sizeof v1, o->dav.v, strlen(o->dav.v));
        probe_copy_clean(v2, sizeof v2, o->accept_patch.v, strlen(o->accept_patch.v));
        printf("OPTIONS says:%s%s%s%s\n", o->dav.present ? "  DAV: " : "", o->dav.present ? v1 : "",
               o->accept_patch.present ? "  Accept-Patch: " : "",
               o->accept_patch.present ? v2 : "");
    }
    if (cfg->unsafe)
        printf("Scratch resource: %s://%s%s (%s)\n", cfg->url.scheme, cfg->url.authority,
               run->scratch.path,
               run->scratch.given   ? "named with --scratch; the probe replaces its content"
               : run->scratch.ready ? "created by the probe, deleted after"
                                    : "the probe could not create it");
    printf("\n");

    int wm = 6, ws = 6, wc = 6;
    char st[64];
    const struct run_view rv = view(run);
    for (size_t i = 0; i < run->nprobes; i++) {
        const struct probe *p = &run->probes[i];
        int n = (int)strlen(p->method) + (p->asterisk ? 2 : 0);
        wm = n > wm ? n : wm;
        status_text(p, st, sizeof st);
        ws = (int)strlen(st) > ws ? (int)strlen(st) : ws;
        n = (int)strlen(class_name(p->cls));
        wc = n > wc ? n : wc;
    }
    printf("%s%-*s  %-*s  %-*s  %s%s\n", bold, wm, "METHOD", ws, "STATUS", wc, "RESULT", "DETAIL",
           off);
    for (size_t i = 0; i < run->nprobes; i++) {
        const struct probe *p = &run->probes[i];
        char m[80], d[600];
        snprintf(m, sizeof m, "%s%s", p->method, p->asterisk ? " *" : "");
        status_text(p, st, sizeof st);
        detail(&rv, p, d, sizeof d);
        printf("%-*s  %-*s  %s%-*s%s%s%s\n", wm, m, ws, st, cfg->color ? class_color(p->cls) : "",
               d[0] ? wc : 0, class_name(p->cls), off, d[0] ? "  " : "", d);
    }

    size_t notes = run->nfindings - run->problems;
    if (run->problems) {
        printf("\n%sInconsistencies (%zu)%s\n", bold, run->problems, off);
        for (size_t i = 0; i < run->nfindings; i++) {
            const struct finding *f = &run->findings[i];
            if (f->kind != FINDING_PROBLEM)
                continue;
            char text[1100];
            snprintf(text, sizeof text, "%s: %s [%s]", f->methods, f->text, f->rfc);
            printf("  %s!%s", red, off);
            wrap(3, text, 4, WIDTH);
        }
    }
    if (notes) {
        printf("\n%sNotes (%zu)%s\n", bold, notes, off);
        for (size_t i = 0; i < run->nfindings; i++) {
            const struct finding *f = &run->findings[i];
            if (f->kind != FINDING_NOTE)
                continue;
            char text[1100];
            if (f->rfc)
                snprintf(text, sizeof text, "%s: %s [%s]", f->methods, f->text, f->rfc);
            else
                snprintf(text, sizeof text, "%s: %s", f->methods, f->text);
            printf("  %s-%s", yellow, off);
            wrap(3, text, 4, WIDTH);
        }
    }
    if (run->compared && run->ndiffers) {
        printf("\n%sHTTP/1.1 and HTTP/2 differ (%zu)%s\n", bold, run->ndiffers, off);
        for (size_t i = 0; i < run->ndiffers; i++) {
            const struct finding *f = &run->differs[i];
            char text[1100];
            snprintf(text, sizeof text, "%s: %s [%s]", f->methods, f->text, f->rfc);
            printf("  %s!%s", red, off);
            wrap(3, text, 4, WIDTH);
        }
    } else if (run->compared) {
        printf("\n%sHTTP/1.1 and HTTP/2: the same answers to every probe%s\n", bold, off);
    }
    printf("\n");
    printf("%sVerdict:%s", run->problems || run->ndiffers ? red : green, off);
    wrap(8, run->verdict, 2, WIDTH);
    if (run->nadvice) {
        printf("\n%sWhat to check%s\n", bold, off);
        for (size_t i = 0; i < run->nadvice; i++) {
            printf("  -");
            wrap(3, run->advice[i], 4, WIDTH);
        }
    }
}

static const char *where_id(enum probe_where w)
{
    switch (w) {
    case AT_RESOURCE: return "resource";
    case AT_MISSING: return "missing";
    case AT_SCRATCH: return "scratch";
    }
    return "?";
}

/* A JSON string; bytes >= 0x80 are taken as Latin-1 (obs-text). */
static void jstr(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p == '\n')
            printf("\\n");
        else if (*p < 0x20 || *p >= 0x7f)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

static void jval(const struct probe_value *v)
{
    if (v->present)
        jstr(v->v);
    else
        printf("null");
}

/* Our own texts hold "§" in UTF-8: keep them as they are. */
static void jtext(const char *s)
{
    putchar('"');
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if ((unsigned char)*p < 0x20)
            printf("\\u%04x", (unsigned char)*p);
        else
            putchar(*p);
    }
    putchar('"');
}

void probe_print_json(const struct probe_config *cfg, const struct probe_run *run)
{
    printf("{\n  \"url\": ");
    jstr(cfg->url.text);
    printf(",\n  \"protocol\": \"%s\"", cfg->http2 ? "h2" : "http/1.1");
    printf(",\n  \"tls\": ");
    if (cfg->tls.done) {
        printf("{\"version\": ");
        jstr(cfg->tls.version);
        printf(", \"cipher\": ");
        jstr(cfg->tls.cipher);
        printf(", \"alpn\": ");
        jstr(cfg->tls.alpn);
        printf(", \"verified\": %s}", cfg->insecure ? "false" : "true");
    } else {
        printf("null");
    }
    printf(",\n  \"server\": ");
    const struct probe_value *server = NULL;
    for (size_t i = 0; i < run->nprobes && !server; i++)
        if (run->probes[i].server.present)
            server = &run->probes[i].server;
    if (server)
        jval(server);
    else
        printf("null");
    const struct probe *o = url_options(run);
    printf(",\n  \"dav\": ");
    if (o)
        jval(&o->dav);
    else
        printf("null");
    printf(",\n  \"accept_patch\": ");
    if (o)
        jval(&o->accept_patch);
    else
        printf("null");
    printf(",\n  \"unsafe\": %s,\n  \"scratch\": ", cfg->unsafe ? "true" : "false");
    if (cfg->unsafe) {
        const struct probe_scratch *s = &run->scratch;
        printf("{\"path\": ");
        jstr(s->path);
        printf(", \"given\": %s, \"ready\": %s, \"why\": ", s->given ? "true" : "false",
               s->ready ? "true" : "false");
        if (s->why[0])
            jstr(s->why);
        else
            printf("null");
        printf(", \"left_behind\": [");
        for (size_t i = 0; i < s->nleft; i++) {
            printf("%s", i ? ", " : "");
            jstr(s->left[i]);
        }
        printf("]}");
    } else {
        printf("null");
    }
    printf(",\n  \"consistent\": %s,\n  \"probes\": [", run->problems ? "false" : "true");
    for (size_t i = 0; i < run->nprobes; i++) {
        const struct probe *p = &run->probes[i];
        printf("%s\n    {\"method\": ", i ? "," : "");
        jstr(p->method);
        printf(", \"target\": ");
        if (p->tried)
            jstr(p->target);
        else
            printf("null");
        printf(", \"where\": \"%s\", \"tried\": %s", where_id(p->where),
               p->tried ? "true" : "false");
        printf(", \"guarded\": %s, \"unknown\": %s, ", p->guarded ? "true" : "false",
               p->unknown ? "true" : "false");
        if (p->destination[0]) {
            printf("\"destination\": ");
            jstr(p->destination);
            printf(", ");
        }
        if (p->answered) {
            printf("\"status\": %d, \"reason\": ", p->status);
            jstr(p->reason);
        } else {
            printf("\"status\": null, \"reason\": null");
        }
        printf(", \"class\": \"%s\", \"explanation\": ", class_id(p->cls));
        jstr(p->explain);
        printf(", \"allow\": ");
        jval(&p->allow);
        printf(", \"retry_after\": ");
        jval(&p->retry_after);
        printf(", \"dav\": ");
        jval(&p->dav);
        printf(", \"accept_patch\": ");
        jval(&p->accept_patch);
        printf(", \"known\": ");
        if (p->known[0])
            jstr(p->known);
        else
            printf("null");
        printf(", \"body_bytes\": %llu, \"truncated\": %s, \"error\": ",
               (unsigned long long)p->body_bytes, p->truncated ? "true" : "false");
        if (p->error[0])
            jstr(p->error);
        else
            printf("null");
        printf("}");
    }
    for (int kind = FINDING_PROBLEM; kind <= FINDING_NOTE; kind++) {
        printf("\n  ],\n  \"%s\": [", kind == FINDING_PROBLEM ? "inconsistencies" : "notes");
        size_t n = 0;
        for (size_t i = 0; i < run->nfindings; i++) {
            const struct finding *f = &run->findings[i];
            if ((int)f->kind != kind)
                continue;
            printf("%s\n    {\"methods\": [", n++ ? "," : "");
            for (const char *m = f->methods; *m;) {
                size_t w = strcspn(m, ",");
                printf("%s\"%.*s\"", m == f->methods ? "" : ", ", (int)w, m);
                m += w;
                m += strspn(m, ", ");
            }
            printf("]");
            printf(", \"rfc\": ");
            if (f->rfc)
                jtext(f->rfc);
            else
                printf("null");
            printf(", \"message\": ");
            jtext(f->text);
            printf("}");
        }
    }
    if (run->compared) {
        /* --http2: where HTTP/1.1's answers differ */
        printf("\n  ],\n  \"http1_differences\": [");
        for (size_t i = 0; i < run->ndiffers; i++) {
            printf("%s\n    {\"method\": ", i ? "," : "");
            jstr(run->differs[i].methods);
            printf(", \"message\": ");
            jtext(run->differs[i].text);
            printf("}");
        }
    }
    printf("\n  ],\n  \"verdict\": ");
    jtext(run->verdict);
    printf(",\n  \"advice\": [");
    for (size_t i = 0; i < run->nadvice; i++) {
        printf("%s\n    ", i ? "," : "");
        jtext(run->advice[i]);
    }
    printf("\n  ]\n}\n");
}
