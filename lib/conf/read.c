/* Config files to a tree of directives: blocks, includes, error recovery
 * (report, skip to the next ";" or "}", go on), and the bounds. */
#include "conf/read.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/lex.h"

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (!p)
        abort();
    return p;
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d)
        abort();
    return d;
}

/* "a" + "b" = "a/b"; "" + "b" = "b". */
static char *join(const char *dir, size_t dirlen, const char *rel)
{
    size_t n = strlen(rel);
    char *out = xrealloc(NULL, dirlen + n + 2);
    memcpy(out, dir, dirlen);
    size_t k = dirlen;
    if (dirlen && dir[dirlen - 1] != '/')
        out[k++] = '/';
    memcpy(out + k, rel, n + 1);
    return out;
}

/* Leading "./" segments say nothing. */
static const char *skip_dot_slash(const char *rel)
{
    while (rel[0] == '.' && rel[1] == '/') {
        rel += 2;
        while (*rel == '/')
            rel++;
    }
    return rel;
}

char *conf_resolve(const char *dir, const char *rel)
{
    if (rel[0] == '/')
        return xstrdup(rel);
    rel = skip_dot_slash(rel);
    if (!*rel || strcmp(rel, ".") == 0)
        return xstrdup(dir);
    return join(dir, strlen(dir), rel);
}

/* The directory part of a path: "a/b.conf" -> "a", "b.conf" -> "". */
static size_t dir_len(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return 0;
    return slash == path ? 1 : (size_t)(slash - path);
}

static void dir_free(struct conf_dir *d)
{
    for (int j = 0; j < d->argc; j++)
        free(d->argv[j]);
    free(d->argv);
    free(d->pos);
    conf_list_free(&d->children);
}

void conf_list_free(struct conf_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        dir_free(&l->v[i]);
    free(l->v);
    *l = (struct conf_list){0};
}

void conf_reader_free(struct conf_reader *r)
{
    while (r->files) {
        struct conf_file *f = r->files;
        r->files = f->next;
        free(f->name);
        free(f->dir);
        free(f);
    }
}

static void dir_add_arg(struct conf_dir *d, struct token *t)
{
    d->argv = xrealloc(d->argv, ((size_t)d->argc + 1) * sizeof *d->argv);
    d->pos = xrealloc(d->pos, ((size_t)d->argc + 1) * sizeof *d->pos);
    d->argv[d->argc] = t->text;
    d->pos[d->argc] = t->pos;
    d->argc++;
    d->bad |= t->bad;
    t->text = NULL;
}

static void list_add(struct conf_list *l, struct conf_dir *d)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->v = xrealloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = *d;
}

/* Skips to the "}" that closes a block whose "{" was just read. */
static void skip_block(struct lexer *lx)
{
    struct token t;
    for (size_t depth = 1; depth;) {
        lex_next(lx, &t);
        free(t.text);
        if (t.kind == TOK_OPEN)
            depth++;
        else if (t.kind == TOK_CLOSE)
            depth--;
        else if (t.kind == TOK_EOF)
            return;
    }
}

static void parse_list(struct conf_reader *r, struct lexer *lx, struct conf_list *out,
                       const struct conf_pos *open);

static bool has_glob(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

/* include FILE; in the context of `out`. */
static void include(struct conf_reader *r, struct conf_dir *d, struct conf_list *out)
{
    if (d->block) {
        conf_error(r->errs, &d->open, "include does not take a block");
        return;
    }
    if (d->argc != 2) {
        conf_error(r->errs, &d->pos[0], "include takes one file name or pattern");
        return;
    }
    const struct conf_file *from = d->pos[0].file;
    const char *arg = d->argv[1];
    size_t from_dir = dir_len(from->name);
    char *path = conf_resolve(from->dir, arg);
    if (!has_glob(arg)) {
        char *name = arg[0] == '/' ? xstrdup(arg) : join(from->name, from_dir, skip_dot_slash(arg));
        conf_read_file(r, name, path, &d->pos[1], out);
        free(name);
        free(path);
        return;
    }
    glob_t g;
    int rc = glob(path, 0, NULL, &g);
    if (rc == 0) {
        size_t base = strlen(from->dir);
        for (size_t i = 0; i < g.gl_pathc; i++) {
            const char *m = g.gl_pathv[i];
            char *name;
            if (arg[0] != '/' && strncmp(m, from->dir, base) == 0 && m[base] == '/')
                name = join(from->name, from_dir, m + base + 1);
            else
                name = xstrdup(m);
            conf_read_file(r, name, m, &d->pos[1], out);
            free(name);
        }
        globfree(&g);
    } else if (rc != GLOB_NOMATCH) {
        conf_error(r->errs, &d->pos[1], "include \"%s\": cannot read the directory", arg);
        if (rc != GLOB_NOSPACE)
            globfree(&g);
    }
    free(path);
}

bool conf_data_block(const char *name)
{
    return strcmp(name, "types") == 0;
}

/* The rest of a directive whose name is `first`.  Returns true with *next
 * set if a token was read that belongs to what follows (a "}" or end of
 * file that ended the directive, or a directive name after a missing
 * ";"). */
static bool parse_directive(struct conf_reader *r, struct lexer *lx, struct conf_list *out,
                            struct token *first, struct token *next)
{
    struct conf_dir d = {0};
    struct conf_pos end = first->end;
    dir_add_arg(&d, first);
    bool pending = false;
    for (;;) {
        lex_next(lx, next);
        if (next->kind == TOK_WORD && next->pos.line > end.line && r->known && !r->data &&
            r->known(next->text)) {
            /* `listen 8080` then `workers 4;` on the next line. */
            conf_error(r->errs, &end, "missing \";\" after \"%s\"", d.argv[d.argc - 1]);
            d.bad = true;
            pending = true;
            break;
        }
        if (next->kind == TOK_WORD) {
            end = next->end;
            dir_add_arg(&d, next);
            continue;
        }
        if (next->kind == TOK_SEMI)
            break;
        if (next->kind == TOK_OPEN) {
            d.block = true;
            d.open = next->pos;
            if (r->nesting >= CONF_MAX_NESTING) {
                conf_error(r->errs, &next->pos, "blocks nested more than %d deep",
                           CONF_MAX_NESTING);
                d.bad = true;
                skip_block(lx);
            } else {
                bool data = conf_data_block(d.argv[0]);
                r->nesting++;
                r->data += data;
                parse_list(r, lx, &d.children, &d.open);
                r->data -= data;
                r->nesting--;
            }
            break;
        }
        /* "}" or end of file */
        if (!lx->unterminated)
            conf_error(r->errs, &end, "missing \";\" after \"%s\"", d.argv[d.argc - 1]);
        d.bad = true;
        pending = true;
        break;
    }
    if (!d.bad && !r->data && strcmp(d.argv[0], "include") == 0) {
        include(r, &d, out);
        dir_free(&d);
    } else {
        list_add(out, &d);
    }
    return pending;
}

/* Directives up to the end of the file or, in a block (open != NULL), up
 * to its "}". */
static void parse_list(struct conf_reader *r, struct lexer *lx, struct conf_list *out,
                       const struct conf_pos *open)
{
    struct token t;
    bool have = false;
    for (;;) {
        if (!have)
            lex_next(lx, &t);
        have = false;
        switch (t.kind) {
        case TOK_EOF:
            if (open && !lx->unterminated)
                conf_error(r->errs, open, "\"{\" is not closed (missing \"}\")");
            return;
        case TOK_CLOSE:
            if (open)
                return;
            conf_error(r->errs, &t.pos, "unexpected \"}\"");
            break;
        case TOK_SEMI: conf_error(r->errs, &t.pos, "unexpected \";\""); break;
        case TOK_OPEN:
            conf_error(r->errs, &t.pos, "unexpected \"{\" (a block needs a directive before it)");
            skip_block(lx);
            break;
        case TOK_WORD: {
            struct token next;
            if (parse_directive(r, lx, out, &t, &next)) {
                t = next;
                have = true;
            }
            break;
        }
        }
    }
}

/* The file record for `name` at `path` (absolute directory kept). */
static struct conf_file *new_file(struct conf_reader *r, const char *name, const char *path,
                                  const struct conf_pos *at)
{
    struct conf_file *f = calloc(1, sizeof *f);
    if (!f)
        abort();
    f->name = xstrdup(name);
    f->seq = r->nseq++;
    if (at) {
        f->included = true;
        f->from = *at;
    }
    size_t n = dir_len(path);
    if (path[0] == '/') {
        f->dir = xrealloc(NULL, n + 1);
        memcpy(f->dir, path, n);
        f->dir[n] = '\0';
    } else {
        /* Relative to the working directory: made absolute once, here. */
        char *d = n ? xrealloc(NULL, n + 1) : xstrdup(".");
        if (n) {
            memcpy(d, path, n);
            d[n] = '\0';
        }
        f->dir = realpath(d, NULL);
        if (!f->dir) {
            char cwd[4096];
            const char *c = getcwd(cwd, sizeof cwd) ? cwd : "/";
            f->dir = join(c, strlen(c), skip_dot_slash(d));
        }
        free(d);
    }
    f->next = r->files;
    r->files = f;
    return f;
}

int conf_read_file(struct conf_reader *r, const char *name, const char *path,
                   const struct conf_pos *at, struct conf_list *out)
{
    if (at && r->depth >= CONF_MAX_DEPTH) {
        conf_error(r->errs, at, "include \"%s\": includes nested more than %d deep", name,
                   CONF_MAX_DEPTH);
        return -1;
    }
    if (at && r->nfiles >= CONF_MAX_FILES) {
        conf_error(r->errs, at, "include \"%s\": more than %d files included", name,
                   CONF_MAX_FILES);
        return -1;
    }
    struct conf_file *f = new_file(r, name, path, at);
    struct conf_pos top = {f, 1, 1};
    const struct conf_pos *where = at ? at : &top;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat st;
    const char *why = NULL;
    if (fd < 0 || fstat(fd, &st) < 0)
        why = strerror(errno);
    else if (!S_ISREG(st.st_mode))
        why = "not a regular file";
    if (why) {
        if (at)
            conf_error(r->errs, at, "include \"%s\": %s", name, why);
        else
            conf_error(r->errs, &top, "%s", why);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    for (size_t i = 0; i < r->depth; i++) {
        if (r->stack[i].dev == (unsigned long)st.st_dev &&
            r->stack[i].ino == (unsigned long)st.st_ino) {
            conf_error(r->errs, where, "include \"%s\": a cycle (the file is already being read)",
                       name);
            close(fd);
            return -1;
        }
    }
    /* Read one byte past the bound to tell a file that grew. */
    char *buf = xrealloc(NULL, CONF_MAX_FILE + 1);
    size_t len = 0;
    while (len <= CONF_MAX_FILE) {
        ssize_t n = read(fd, buf + len, CONF_MAX_FILE + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            conf_error(r->errs, &top, "%s", strerror(errno));
            close(fd);
            free(buf);
            return -1;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (len > CONF_MAX_FILE) {
        conf_error(r->errs, &top, "file larger than 1 MiB");
        free(buf);
        return -1;
    }
    r->nfiles++;
    r->stack[r->depth].dev = (unsigned long)st.st_dev;
    r->stack[r->depth].ino = (unsigned long)st.st_ino;
    r->depth++;
    struct lexer lx;
    lex_init(&lx, buf, len, f, r->errs);
    parse_list(r, &lx, out, NULL);
    r->depth--;
    free(buf);
    return 0;
}
