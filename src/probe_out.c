/* verbd probe: the results as an aligned table (coloured on a terminal) or
 * as JSON.  Nothing the server sent reaches the terminal unfiltered. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "probe.h"

#define WIDTH 100 /* wrap prose at this column */

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
    }
    return "";
}

/* The detail column: what the class alone does not say. */
static void detail(const struct probe *p, char *out, size_t cap)
{
    char v[PROBE_VALUE];
    if (p->answered &&
        (p->status == 405 || (p->method[0] == 'O' && strcmp(p->method, "OPTIONS") == 0 &&
                              p->status >= 200 && p->status < 300))) {
        if (p->allow.present) {
            probe_copy_clean(v, sizeof v, p->allow.v, strlen(p->allow.v));
            snprintf(out, cap, "Allow: %s", v[0] ? v : "(empty)");
        } else {
            snprintf(out, cap, "no Allow header");
        }
    } else if (p->cls == CLASS_NOT_IMPLEMENTED ||
               (p->cls == CLASS_ALLOWED && !p->guarded && p->status < 300)) {
        out[0] = '\0';
    } else {
        probe_copy_clean(out, cap, p->explain, strlen(p->explain));
    }
    if (p->unknown) {
        size_t l = strlen(out);
        snprintf(out + l, cap - l, "%s(a made-up method)", l ? " " : "");
    }
    if (p->truncated) {
        size_t l = strlen(out);
        snprintf(out + l, cap - l, "%sbody cut short", l ? "; " : "");
    }
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
    printf("%sverbd probe %s%s%s%s%s\n\n", bold, cfg->url.text, off, server[0] ? "  (Server: " : "",
           server, server[0] ? ")" : "");

    int wm = 6, ws = 6, wc = 6;
    char st[64];
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
        detail(p, d, sizeof d);
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
    printf("\n");
    printf("%sVerdict:%s", run->problems ? red : green, off);
    wrap(8, run->verdict, 2, WIDTH);
    if (run->nadvice) {
        printf("\n%sWhat to check%s\n", bold, off);
        for (size_t i = 0; i < run->nadvice; i++) {
            printf("  -");
            wrap(3, run->advice[i], 4, WIDTH);
        }
    }
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
    printf(",\n  \"server\": ");
    const struct probe_value *server = NULL;
    for (size_t i = 0; i < run->nprobes && !server; i++)
        if (run->probes[i].server.present)
            server = &run->probes[i].server;
    if (server)
        jval(server);
    else
        printf("null");
    printf(",\n  \"consistent\": %s,\n  \"probes\": [", run->problems ? "false" : "true");
    for (size_t i = 0; i < run->nprobes; i++) {
        const struct probe *p = &run->probes[i];
        printf("%s\n    {\"method\": ", i ? "," : "");
        jstr(p->method);
        printf(", \"target\": ");
        jstr(p->asterisk ? "*" : cfg->url.target);
        printf(", \"guarded\": %s, \"unknown\": %s, ", p->guarded ? "true" : "false",
               p->unknown ? "true" : "false");
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
    printf("\n  ],\n  \"verdict\": ");
    jtext(run->verdict);
    printf(",\n  \"advice\": [");
    for (size_t i = 0; i < run->nadvice; i++) {
        printf("%s\n    ", i ? "," : "");
        jtext(run->advice[i]);
    }
    printf("\n  ]\n}\n");
}
