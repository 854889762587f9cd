/* RFC 8941 Dictionaries, parsed by the algorithms of §4.2: any byte the
 * grammar does not allow fails the whole field. */
#include "http/sf.h"

#include <string.h>

struct cursor {
    const char *p, *end;
};

static bool at(const struct cursor *c, char ch)
{
    return c->p < c->end && *c->p == ch;
}

static bool lcalpha(char ch)
{
    return ch >= 'a' && ch <= 'z';
}

static bool digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static bool alpha(char ch)
{
    return lcalpha(ch) || (ch >= 'A' && ch <= 'Z');
}

static bool tchar(char ch)
{
    return alpha(ch) || digit(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static void skip_sp(struct cursor *c)
{
    while (at(c, ' '))
        c->p++;
}

static void skip_ows(struct cursor *c)
{
    while (at(c, ' ') || at(c, '\t'))
        c->p++;
}

/* §4.2.3.3 */
static bool parse_key(struct cursor *c, struct span *key)
{
    const char *start = c->p;
    if (!(c->p < c->end && (lcalpha(*c->p) || *c->p == '*')))
        return false;
    while (c->p < c->end && (lcalpha(*c->p) || digit(*c->p) || *c->p == '_' || *c->p == '-' ||
                             *c->p == '.' || *c->p == '*'))
        c->p++;
    *key = (struct span){start, (size_t)(c->p - start)};
    return true;
}

/* §4.2.4: at most 15 integer digits, or 12 before the point and 1 to 3
 * after it. */
static bool parse_number(struct cursor *c, struct sf_member *m)
{
    bool negative = at(c, '-');
    if (negative)
        c->p++;
    if (!(c->p < c->end && digit(*c->p)))
        return false;
    int64_t whole = 0, fraction = 0;
    size_t digits = 0, decimals = 0;
    bool decimal = false;
    while (c->p < c->end) {
        char ch = *c->p;
        if (digit(ch)) {
            if (decimal) {
                if (++decimals > 3)
                    return false;
                fraction = fraction * 10 + (ch - '0');
            } else {
                if (++digits > 15)
                    return false;
                whole = whole * 10 + (ch - '0');
            }
        } else if (ch == '.' && !decimal) {
            if (digits > 12)
                return false;
            decimal = true;
        } else {
            break;
        }
        c->p++;
    }
    if (decimal && decimals == 0)
        return false;
    m->type = decimal ? SF_DECIMAL : SF_INTEGER;
    if (decimal) {
        while (decimals++ < 3)
            fraction *= 10;
        whole = whole * 1000 + fraction;
    }
    m->number = negative ? -whole : whole;
    return true;
}

/* §4.2.5: printable ASCII; a backslash escapes '"' or '\' only. */
static bool parse_string(struct cursor *c, struct sf_member *m)
{
    const char *start = ++c->p;
    while (c->p < c->end) {
        unsigned char ch = (unsigned char)*c->p;
        if (ch == '"') {
            m->type = SF_STRING;
            m->text = (struct span){start, (size_t)(c->p - start)};
            c->p++;
            return true;
        }
        if (ch == '\\') {
            if (c->p + 1 >= c->end || (c->p[1] != '"' && c->p[1] != '\\'))
                return false;
            c->p++;
        } else if (ch < 0x20 || ch > 0x7e) {
            return false;
        }
        c->p++;
    }
    return false; /* no closing quote */
}

/* §4.2.6 */
static bool parse_token(struct cursor *c, struct sf_member *m)
{
    const char *start = c->p++;
    while (c->p < c->end && (tchar(*c->p) || *c->p == ':' || *c->p == '/'))
        c->p++;
    m->type = SF_TOKEN;
    m->text = (struct span){start, (size_t)(c->p - start)};
    return true;
}

/* §4.2.7 */
static bool parse_bytes(struct cursor *c, struct sf_member *m)
{
    const char *start = ++c->p;
    while (c->p < c->end && *c->p != ':') {
        char ch = *c->p;
        if (!(alpha(ch) || digit(ch) || ch == '+' || ch == '/' || ch == '='))
            return false;
        c->p++;
    }
    if (c->p == c->end)
        return false;
    m->type = SF_BYTES;
    m->text = (struct span){start, (size_t)(c->p - start)};
    c->p++;
    return true;
}

/* §4.2.3.1 */
static bool parse_bare_item(struct cursor *c, struct sf_member *m)
{
    if (c->p == c->end)
        return false;
    char ch = *c->p;
    if (ch == '-' || digit(ch))
        return parse_number(c, m);
    if (ch == '"')
        return parse_string(c, m);
    if (ch == '*' || alpha(ch))
        return parse_token(c, m);
    if (ch == ':')
        return parse_bytes(c, m);
    if (ch == '?') {
        if (c->p + 1 >= c->end || (c->p[1] != '0' && c->p[1] != '1'))
            return false;
        m->type = SF_BOOLEAN;
        m->number = c->p[1] == '1';
        c->p += 2;
        return true;
    }
    return false;
}

/* §4.2.3.2: checked, not kept. */
static bool parse_parameters(struct cursor *c)
{
    while (at(c, ';')) {
        c->p++;
        skip_sp(c);
        struct span key;
        if (!parse_key(c, &key))
            return false;
        if (at(c, '=')) {
            c->p++;
            struct sf_member value;
            if (!parse_bare_item(c, &value))
                return false;
        }
    }
    return true;
}

/* §4.2.1.2: checked; the member says only that it is one. */
static bool parse_inner_list(struct cursor *c, struct sf_member *m)
{
    c->p++;
    for (;;) {
        skip_sp(c);
        if (at(c, ')')) {
            c->p++;
            m->type = SF_INNER_LIST;
            return true;
        }
        struct sf_member item;
        if (!parse_bare_item(c, &item) || !parse_parameters(c))
            return false;
        if (!at(c, ' ') && !at(c, ')'))
            return false;
    }
}

/* One member (§4.2.2's loop body, up to the separator). */
static bool parse_member(struct cursor *c, struct sf_member *m)
{
    *m = (struct sf_member){.type = SF_BOOLEAN, .number = 1};
    if (!parse_key(c, &m->key))
        return false;
    if (at(c, '=')) {
        c->p++;
        bool ok = at(c, '(') ? parse_inner_list(c, m) : parse_bare_item(c, m);
        if (!ok)
            return false;
    }
    return parse_parameters(c);
}

bool sf_dict_valid(struct span value)
{
    struct cursor c = {value.p, value.p + value.n};
    skip_sp(&c);
    if (c.p == c.end)
        return true;
    for (size_t n = 1;; n++) {
        struct sf_member m;
        if (n > SF_DICT_MEMBERS_MAX || !parse_member(&c, &m))
            return false;
        skip_ows(&c);
        if (c.p == c.end)
            return true;
        if (*c.p++ != ',')
            return false;
        skip_ows(&c);
        if (c.p == c.end)
            return false; /* a trailing comma */
    }
}

bool sf_dict_next(struct span *rest, struct sf_member *m)
{
    struct cursor c = {rest->p, rest->p + rest->n};
    skip_ows(&c);
    if (at(&c, ','))
        c.p++;
    skip_ows(&c);
    if (c.p == c.end || !parse_member(&c, m)) {
        *rest = (struct span){c.end, 0};
        return false;
    }
    *rest = (struct span){c.p, (size_t)(c.end - c.p)};
    return true;
}
