/* The config file's tokens: bare words, quoted strings, ";", "{", "}".
 * A pure function over a buffer, like the HTTP parser: no I/O. */
#ifndef VERBD_CONF_LEX_H
#define VERBD_CONF_LEX_H

#include <stdbool.h>
#include <stddef.h>

#include "conf/errors.h"

#define CONF_MAX_TOKEN 4096 /* bytes in one word or string */

enum tok_kind { TOK_WORD, TOK_SEMI, TOK_OPEN, TOK_CLOSE, TOK_EOF };

struct token {
    enum tok_kind kind;
    char *text;          /* TOK_WORD: the word, unquoted (malloc'd) */
    bool bad;            /* an error was reported for it (too long) */
    struct conf_pos pos; /* its first byte */
    struct conf_pos end; /* just after its last byte */
};

struct lexer {
    const char *buf;
    size_t len, off;
    struct conf_pos at; /* of buf[off] */
    struct conf_errors *errs;
    bool unterminated; /* a string ran to the end: say nothing more */
};

void lex_init(struct lexer *lx, const char *buf, size_t len, const struct conf_file *file,
              struct conf_errors *errs);

/* The next token; errors (unterminated string, overlong token, NUL byte)
 * are reported through lx->errs.  The caller owns tok->text. */
void lex_next(struct lexer *lx, struct token *tok);

#endif
