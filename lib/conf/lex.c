/* Tokens of the config file (docs/config.md, "Syntax"). */
#include "conf/lex.h"

#include <stdlib.h>
#include <string.h>

void lex_init(struct lexer *lx, const char *buf, size_t len, const struct conf_file *file,
              struct conf_errors *errs)
{
    *lx = (struct lexer){
        .buf = buf,
        .len = len,
        .at = {file, 1, 1},
        .errs = errs,
    };
    /* A UTF-8 byte order mark, which some editors write, is not text:
     * skipped, and the next byte is column 1 as the editor shows it. */
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
        lx->off = 3;
}

static void advance(struct lexer *lx)
{
    if (lx->buf[lx->off++] == '\n') {
        lx->at.line++;
        lx->at.col = 1;
    } else {
        lx->at.col++;
    }
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* Ends a bare word (and must follow a closing quote). */
static bool is_delimiter(char c)
{
    return is_space(c) || c == ';' || c == '{' || c == '}' || c == '\0';
}

/* A growing word, at most CONF_MAX_TOKEN bytes. */
struct word {
    char *s;
    size_t n, cap;
    bool too_long;
};

static void word_add(struct word *w, char c)
{
    if (w->n == CONF_MAX_TOKEN) {
        w->too_long = true;
        return;
    }
    if (w->n + 1 >= w->cap) {
        w->cap = w->cap ? w->cap * 2 : 32;
        if (w->cap > CONF_MAX_TOKEN + 1)
            w->cap = CONF_MAX_TOKEN + 1;
        char *s = realloc(w->s, w->cap);
        if (!s)
            abort();
        w->s = s;
    }
    w->s[w->n++] = c;
    w->s[w->n] = '\0';
}

static void quoted(struct lexer *lx, struct token *tok, struct word *w)
{
    char q = lx->buf[lx->off];
    advance(lx);
    for (;;) {
        if (lx->off == lx->len) {
            conf_error(lx->errs, &tok->pos, "unterminated string (no closing %c)", q);
            tok->bad = true;
            lx->unterminated = true;
            return;
        }
        char c = lx->buf[lx->off];
        advance(lx);
        if (c == q)
            break;
        if (c == '\0') {
            struct conf_pos at = lx->at;
            at.col--;
            conf_error(lx->errs, &at, "NUL byte in a string");
            tok->bad = true;
            continue;
        }
        if (c == '\\' && lx->off < lx->len) {
            char e = lx->buf[lx->off];
            switch (e) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case '"':
            case '\'':
            case '\\': c = e; break;
            default: e = 0; break; /* kept as written: "C:\dir" */
            }
            if (e)
                advance(lx);
        }
        word_add(w, c);
    }
    if (lx->off < lx->len && !is_delimiter(lx->buf[lx->off]) && lx->buf[lx->off] != '#') {
        conf_error(lx->errs, &lx->at, "unexpected \"%c\" after a quoted string (missing space?)",
                   lx->buf[lx->off]);
        tok->bad = true;
    }
}

void lex_next(struct lexer *lx, struct token *tok)
{
    *tok = (struct token){.kind = TOK_EOF};
    for (;;) {
        while (lx->off < lx->len && is_space(lx->buf[lx->off]))
            advance(lx);
        if (lx->off < lx->len && lx->buf[lx->off] == '#') {
            while (lx->off < lx->len && lx->buf[lx->off] != '\n')
                advance(lx);
            continue;
        }
        if (lx->off < lx->len && lx->buf[lx->off] == '\0') {
            conf_error(lx->errs, &lx->at, "NUL byte in the file");
            advance(lx);
            continue;
        }
        break;
    }
    tok->pos = lx->at;
    if (lx->off == lx->len) {
        tok->end = lx->at;
        return;
    }
    char c = lx->buf[lx->off];
    if (c == ';' || c == '{' || c == '}') {
        tok->kind = c == ';' ? TOK_SEMI : c == '{' ? TOK_OPEN : TOK_CLOSE;
        advance(lx);
        tok->end = lx->at;
        return;
    }
    struct word w = {0};
    tok->kind = TOK_WORD;
    if (c == '"' || c == '\'') {
        quoted(lx, tok, &w);
    } else {
        while (lx->off < lx->len && !is_delimiter(lx->buf[lx->off])) {
            word_add(&w, lx->buf[lx->off]);
            advance(lx);
        }
    }
    tok->end = lx->at;
    if (w.too_long) {
        conf_error(lx->errs, &tok->pos, "token longer than %d bytes", CONF_MAX_TOKEN);
        tok->bad = true;
    }
    if (!w.s && !(w.s = strdup("")))
        abort();
    tok->text = w.s;
}
