/* rewrite and return: compiled at configuration, run per request on the
 * decoded, normalised path ($uri). */
#include "route/rewrite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "http/path.h"
#include "http/status.h"

static bool redirect_code(int status)
{
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

static bool absolute_url(const char *s)
{
    return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

static int add_return(struct rw_rule *r, int captures, int argc, const char *const *argv, char *err,
                      size_t errlen)
{
    const char *code = argv[0];
    char *end;
    long status = strtol(code, &end, 10);
    if (argc == 1 && absolute_url(code)) {
        /* return URL; is return 302 URL; */
        status = 302;
        argv--, argc++;
    } else if (*end || end == code || status < 200 || status > 599) {
        snprintf(err, errlen, "return: \"%s\" is not a status code (200-599) or an http(s) URL",
                 code);
        return -1;
    }
    r->is_return = true;
    r->status = (int)status;
    if (argc > 2) {
        snprintf(err, errlen, "return takes a code and one URL or TEXT (quote text with spaces)");
        return -1;
    }
    if (redirect_code(r->status) && argc < 2) {
        snprintf(err, errlen, "return %ld needs the URL to redirect to", status);
        return -1;
    }
    if (argc == 2) {
        if (vars_check(argv[1], captures, err, errlen) < 0)
            return -1;
        /* A Location is a header field: no control characters in it. */
        if (redirect_code(r->status))
            for (const unsigned char *p = (const unsigned char *)argv[1]; *p; p++)
                if (*p < 0x20 || *p == 0x7f) {
                    snprintf(err, errlen, "return: the URL has a control character");
                    return -1;
                }
        r->value = strdup(argv[1]);
    }
    return 0;
}

static int add_rewrite(struct rw_rule *r, int argc, const char *const *argv, char *err,
                       size_t errlen)
{
    if (argc < 2 || argc > 3) {
        snprintf(err, errlen, "rewrite takes REGEX REPLACEMENT [last|break|redirect|permanent]");
        return -1;
    }
    static const char *const flags[] = {"", "last", "break", "redirect", "permanent"};
    r->flag = RW_NONE;
    if (argc == 3) {
        size_t i = 1;
        while (i < sizeof flags / sizeof flags[0] && strcmp(flags[i], argv[2]) != 0)
            i++;
        if (i == sizeof flags / sizeof flags[0]) {
            snprintf(err, errlen,
                     "rewrite: flag \"%s\" is not one of last, break, redirect, permanent",
                     argv[2]);
            return -1;
        }
        r->flag = (enum rw_flag)i;
    }
    /* $N is this rule's own capture, checked once it is compiled. */
    if (vars_check(argv[1], VARS_CAPTURES - 1, err, errlen) < 0)
        return -1;
    for (const unsigned char *p = (const unsigned char *)argv[1]; *p; p++)
        if (*p < 0x20 || *p == 0x7f) {
            snprintf(err, errlen, "rewrite: the replacement has a control character");
            return -1;
        }
    char why[200];
    if (regex_compile(&r->re, argv[0], false, why, sizeof why) < 0) {
        snprintf(err, errlen, "rewrite: \"%s\": %s", argv[0], why);
        return -1;
    }
    uint32_t captures = r->re.captures;
    for (const char *p = strchr(argv[1], '$'); p; p = strchr(p + 1, '$')) {
        int n = p[1] == '{' ? p[2] - '0' : p[1] - '0';
        if (n >= 1 && n <= 9 && (uint32_t)n > captures) {
            snprintf(err, errlen, "rewrite: $%d but the expression has %u capture%s", n, captures,
                     captures == 1 ? "" : "s");
            regex_free(&r->re);
            return -1;
        }
    }
    r->value = strdup(argv[1]);
    return 0;
}

int rw_add(struct rw_list *l, bool is_return, int captures, int argc, const char *const *argv,
           char *err, size_t errlen)
{
    struct rw_rule r = {0};
    if (argc < 1) {
        snprintf(err, errlen, "%s takes arguments", is_return ? "return" : "rewrite");
        return -1;
    }
    int rc = is_return ? add_return(&r, captures, argc, argv, err, errlen)
                       : add_rewrite(&r, argc, argv, err, errlen);
    if (rc < 0) {
        free(r.value);
        return -1;
    }
    struct rw_rule *v = realloc(l->v, (l->n + 1) * sizeof *v);
    if (!v)
        abort();
    l->v = v;
    l->v[l->n++] = r;
    return 0;
}

void rw_free(struct rw_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        regex_free(&l->v[i].re);
        free(l->v[i].value);
    }
    free(l->v);
    *l = (struct rw_list){0};
}

void rw_result_free(struct rw_result *r)
{
    buf_free(&r->path);
    buf_free(&r->args);
    buf_free(&r->text);
}

void rw_expand_replacement(const char *replacement, const struct vars *v, struct buf *out,
                           bool *drop_args)
{
    size_t n = strlen(replacement);
    *drop_args = n && replacement[n - 1] == '?';
    vars_expand(replacement, v, VARS_URL, out);
    if (*drop_args && out->len && out->p[out->len - 1] == '?')
        out->len--;
}

/* Appends the request's args to a URL being built: after '&' if it has a
 * query already, else after '?'. */
static void append_args(struct buf *url, const struct vars *v)
{
    if (!v->args || !v->args_len)
        return;
    buf_append(url, url->len && memchr(url->p, '?', url->len) ? "&" : "?", 1);
    buf_append(url, v->args, v->args_len);
}

/* The new URI for v: the path part decoded and normalised into r->path,
 * the query into r->args.  False (r->status set) if the path is not a
 * valid one. */
static bool take_uri(struct rw_result *r, struct vars *v, const char *uri, size_t n, bool drop_args)
{
    const char *q = memchr(uri, '?', n);
    size_t plen = q ? (size_t)(q - uri) : n;
    char *norm = malloc(plen + 2);
    if (!norm)
        abort();
    long len = plen && uri[0] == '/' ? path_normalise(uri, plen, norm) : -400;
    if (len < 0) {
        log_msg(LOG_WARN, "rewrite: \"%.*s\" is not a valid path: %ld", (int)n, uri, -len);
        free(norm);
        r->status = (int)-len;
        return false;
    }
    buf_reset(&r->path);
    buf_append(&r->path, norm, (size_t)len + 1);
    free(norm);
    if (q) {
        /* New args; the old ones after them unless the replacement ended
         * with '?'. */
        struct buf args = {0};
        buf_append(&args, q + 1, n - plen - 1);
        if (!drop_args && v->args && v->args_len) {
            if (args.len)
                buf_append(&args, "&", 1);
            buf_append(&args, v->args, v->args_len);
        }
        buf_free(&r->args);
        r->args = args;
        r->has_args = true;
    } else if (drop_args) {
        buf_reset(&r->args);
        r->has_args = true;
    }
    v->uri = r->path.p;
    if (r->has_args) {
        v->args = r->args.len ? r->args.p : NULL;
        v->args_len = r->args.len;
    }
    r->changed = true;
    return true;
}

/* Matches one rule's expression against $uri; the captures go into v.
 * 1 match, 0 none, -1 failed (500, logged). */
static int match(const struct rw_rule *rule, struct vars *v)
{
    int rc = regex_match(&rule->re, v->uri, &v->cap);
    if (rc >= 0)
        return rc;
    char msg[120];
    regex_error_text(rc, msg, sizeof msg);
    log_msg(LOG_ERROR, "rewrite: matching %.200s: %s", v->uri, msg);
    return -1;
}

void rw_run(const struct rw_list *l, struct vars *v, struct rw_result *r)
{
    r->outcome = RW_CONTINUE;
    for (size_t i = 0; i < l->n; i++) {
        const struct rw_rule *rule = &l->v[i];
        if (rule->is_return) {
            r->outcome = RW_ANSWER;
            r->status = rule->status;
            r->location = redirect_code(rule->status);
            buf_reset(&r->text);
            if (rule->value)
                vars_expand(rule->value, v, r->location ? VARS_URL : VARS_TEXT, &r->text);
            return;
        }
        int m = match(rule, v);
        if (m < 0) {
            r->outcome = RW_FAILED;
            r->status = 500;
            return;
        }
        if (!m)
            continue;
        struct buf uri = {0};
        bool drop_args;
        /* The subject (v->uri) may be r->path, which take_uri replaces:
         * the expansion is made first. */
        rw_expand_replacement(rule->value, v, &uri, &drop_args);
        bool absolute = absolute_url(rule->value);
        if (absolute || rule->flag == RW_REDIRECT || rule->flag == RW_PERMANENT) {
            if (!drop_args)
                append_args(&uri, v);
            buf_reset(&r->text);
            buf_append(&r->text, uri.p ? uri.p : "", uri.len);
            buf_free(&uri);
            r->outcome = RW_ANSWER;
            r->location = true;
            r->status = rule->flag == RW_PERMANENT ? 301 : 302;
            return;
        }
        bool ok = take_uri(r, v, uri.p ? uri.p : "", uri.len, drop_args);
        buf_free(&uri);
        if (!ok) {
            r->outcome = RW_FAILED;
            return;
        }
        if (rule->flag == RW_LAST) {
            r->outcome = RW_STOP_LAST;
            return;
        }
        if (rule->flag == RW_BREAK) {
            r->outcome = RW_STOP_BREAK;
            return;
        }
    }
}
