/* The config lexer on location lines by regular expression: a bare word
 * keeps its backslashes and '$'; a quoted one keeps "\." as written; "{"
 * ends a bare word, so an expression with "{" must be quoted, as in
 * nginx. */
#include <stdlib.h>
#include <string.h>

#include "conf/lex.h"
#include "unit.h"

static int reported;

static void count(void *ctx, const char *msg)
{
    (void)ctx, (void)msg;
    reported++;
}

/* The tokens of text, words as themselves and the others as ";", "{",
 * "}", joined with "|". */
static const char *tokens(const char *text)
{
    static char out[512];
    static struct conf_file file = {.name = "test.conf"};
    struct conf_errors errs = {.report = count};
    struct lexer lx;
    lex_init(&lx, text, strlen(text), &file, &errs);
    out[0] = '\0';
    for (;;) {
        struct token t;
        lex_next(&lx, &t);
        if (t.kind == TOK_EOF)
            break;
        const char *s = t.kind == TOK_WORD   ? t.text
                        : t.kind == TOK_SEMI ? ";"
                        : t.kind == TOK_OPEN ? "{"
                                             : "}";
        size_t n = strlen(out);
        snprintf(out + n, sizeof out - n, "%s%s", n ? "|" : "", s);
        free(t.text);
    }
    conf_errors_flush(&errs);
    return out;
}

int main(void)
{
    CHECK_STR(tokens("location ~ \\.php$ {"), "location|~|\\.php$|{");
    CHECK_STR(tokens("location ~* \"\\.(jpg|png)$\" {"), "location|~*|\\.(jpg|png)$|{");
    CHECK_STR(tokens("location ~ '^/a b$' {"), "location|~|^/a b$|{");
    CHECK_STR(tokens("location ^~ /static/ {"), "location|^~|/static/|{");
    /* "\\" in a quoted string is one backslash. */
    CHECK_STR(tokens("location ~ \"\\\\d\" {"), "location|~|\\d|{");
    /* Unquoted, "{" ends the expression and opens a block ... */
    CHECK_STR(tokens("location ~ ^/a{2}$ {"), "location|~|^/a|{|2|}|$|{");
    /* ... quoted, it is part of it. */
    CHECK_STR(tokens("location ~ \"^/a{2}$\" {"), "location|~|^/a{2}$|{");
    CHECK_INT(reported, 0);
    return unit_report();
}
