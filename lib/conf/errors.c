/* The error sink of a config load: errors are held, then reported sorted
 * by their place in the text, because the reader and the directives find
 * them in two passes. */
#include "conf/errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/read.h"

/* Held beyond what is reported so that sorting still puts the first ones
 * in the text first, yet a hostile file cannot make us hold millions. */
#define CONF_MAX_HELD 4096

struct conf_error_entry {
    struct conf_pos at;
    size_t seq; /* order found: ties keep it */
    bool warning;
    char *msg;
};

__attribute__((format(printf, 4, 0))) static void
hold(struct conf_errors *e, const struct conf_pos *at, bool warning, const char *fmt, va_list ap)
{
    if (e->n == CONF_MAX_HELD)
        return;
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 16;
        struct conf_error_entry *v = realloc(e->v, e->cap * sizeof *v);
        if (!v)
            abort();
        e->v = v;
    }
    char msg[1024];
    int n = snprintf(msg, sizeof msg, "%s:%d:%d: %s", at->file->name, at->line, at->col,
                     warning ? "warning: " : "");
    if (n < 0 || (size_t)n >= sizeof msg)
        n = 0;
    vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    /* One line each, whatever the tokens quoted in it hold. */
    char *copy = malloc(strlen(msg) * 4 + 1), *o = copy;
    if (!copy)
        abort();
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
        if (*p == '\n')
            o += sprintf(o, "\\n");
        else if (*p == '\t')
            o += sprintf(o, "\\t");
        else if (*p < 0x20 || *p == 0x7f)
            o += sprintf(o, "\\x%02x", *p);
        else
            *o++ = (char)*p;
    }
    *o = '\0';
    e->v[e->n] = (struct conf_error_entry){*at, e->n, warning, copy};
    e->n++;
}

void conf_error(struct conf_errors *e, const struct conf_pos *at, const char *fmt, ...)
{
    e->count++;
    va_list ap;
    va_start(ap, fmt);
    hold(e, at, false, fmt, ap);
    va_end(ap);
}

void conf_warning(struct conf_errors *e, const struct conf_pos *at, const char *fmt, ...)
{
    e->warnings++;
    va_list ap;
    va_start(ap, fmt);
    hold(e, at, true, fmt, ap);
    va_end(ap);
}

/* The chain of positions from the top file down to `p`. */
static size_t chain(const struct conf_pos *p, const struct conf_pos **out)
{
    size_t n = 0;
    for (; n < CONF_MAX_DEPTH + 1; p = &p->file->from) {
        out[n++] = p;
        if (!p->file->included)
            break;
    }
    for (size_t i = 0; i < n / 2; i++) {
        const struct conf_pos *t = out[i];
        out[i] = out[n - 1 - i];
        out[n - 1 - i] = t;
    }
    return n;
}

static int by_place(const void *va, const void *vb)
{
    const struct conf_error_entry *a = va, *b = vb;
    const struct conf_pos *ca[CONF_MAX_DEPTH + 1], *cb[CONF_MAX_DEPTH + 1];
    size_t na = chain(&a->at, ca), nb = chain(&b->at, cb);
    for (size_t i = 0; i < na && i < nb; i++) {
        if (ca[i]->file != cb[i]->file) /* two files of one include pattern */
            return ca[i]->file->seq < cb[i]->file->seq ? -1 : 1;
        if (ca[i]->line != cb[i]->line)
            return ca[i]->line < cb[i]->line ? -1 : 1;
        if (ca[i]->col != cb[i]->col)
            return ca[i]->col < cb[i]->col ? -1 : 1;
    }
    if (na != nb)
        return na < nb ? -1 : 1; /* the include before what it read */
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

void conf_errors_flush(struct conf_errors *e)
{
    if (e->n)
        qsort(e->v, e->n, sizeof *e->v, by_place);
    int reported = 0; /* errors */
    for (size_t i = 0; i < e->n; i++) {
        if (e->v[i].warning) {
            if (e->warn)
                e->warn(e->ctx, e->v[i].msg);
        } else if (e->report && reported < CONF_MAX_REPORTED) {
            e->report(e->ctx, e->v[i].msg);
            reported++;
        } else if (e->report && reported == CONF_MAX_REPORTED) {
            char msg[64];
            snprintf(msg, sizeof msg, "... and %d more errors", e->count - CONF_MAX_REPORTED);
            e->report(e->ctx, msg);
            reported++;
        }
        free(e->v[i].msg);
    }
    free(e->v);
    e->v = NULL;
    e->n = e->cap = 0;
}
