/* Accept-Encoding: a list of codings with optional weights,
 *   #( codings [ OWS ";" OWS "q=" qvalue ] )
 * read leniently (unknown parameters skipped) but never guessing a weight. */
#include "http/coding.h"

#include <stdbool.h>
#include <strings.h>

void accept_encoding_init(struct accept_encoding *ae)
{
    *ae = (struct accept_encoding){-1, -1, -1, -1, 0};
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~': return true;
    default: return false;
    }
}

/* qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ): the
 * weight in thousandths, or -1. */
static int parse_qvalue(const char *p, size_t n)
{
    if (n == 0 || (p[0] != '0' && p[0] != '1'))
        return -1;
    int q = (p[0] - '0') * 1000;
    if (n == 1)
        return q;
    if (p[1] != '.' || n > 5)
        return -1;
    int scale = 100;
    for (size_t i = 2; i < n; i++, scale /= 10) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        q += (p[i] - '0') * scale;
    }
    return q > 1000 ? -1 : q;
}

static bool name_is(const char *p, size_t n, const char *name)
{
    size_t len = 0;
    while (name[len])
        len++;
    return n == len && strncasecmp(p, name, n) == 0;
}

static void record(struct accept_encoding *ae, const char *name, size_t n, int q)
{
    int *slot = NULL;
    if (name_is(name, n, "gzip") || name_is(name, n, "x-gzip")) /* RFC 9110 §8.4.1.3 */
        slot = &ae->gzip;
    else if (name_is(name, n, "br"))
        slot = &ae->br;
    else if (name_is(name, n, "identity"))
        slot = &ae->identity;
    else if (name_is(name, n, "*"))
        slot = &ae->star;
    if (slot && *slot < 0)
        *slot = q;
}

void accept_encoding_add(struct accept_encoding *ae, const char *p, size_t n)
{
    const char *end = p + n;
    ae->fields++;
    while (p < end) {
        while (p < end && (is_ows(*p) || *p == ','))
            p++;
        const char *name = p;
        while (p < end && is_tchar((unsigned char)*p))
            p++;
        size_t name_len = (size_t)(p - name);
        int q = 1000;
        bool bad = name_len == 0;
        /* Parameters up to the next comma. */
        while (!bad && p < end && *p != ',') {
            while (p < end && is_ows(*p))
                p++;
            if (p == end || *p == ',')
                break;
            if (*p != ';') {
                bad = true;
                break;
            }
            p++;
            while (p < end && is_ows(*p))
                p++;
            const char *pn = p;
            while (p < end && is_tchar((unsigned char)*p))
                p++;
            size_t pn_len = (size_t)(p - pn);
            if (pn_len == 0 || p == end || *p != '=') {
                bad = true;
                break;
            }
            p++;
            const char *pv = p;
            while (p < end && is_tchar((unsigned char)*p))
                p++;
            if (pn_len == 1 && (*pn == 'q' || *pn == 'Q')) {
                q = parse_qvalue(pv, (size_t)(p - pv));
                bad = q < 0;
            }
        }
        if (bad) { /* skip the rest of this element */
            while (p < end && *p != ',')
                p++;
            continue;
        }
        record(ae, name, name_len, q);
    }
}

int accept_encoding_weight(const struct accept_encoding *ae, enum http_coding coding)
{
    int own = coding == CODING_GZIP ? ae->gzip : coding == CODING_BR ? ae->br : ae->identity;
    if (own >= 0)
        return own;
    if (ae->star >= 0)
        return ae->star;
    return coding == CODING_IDENTITY ? 1000 : 0;
}

enum http_coding accept_encoding_choose(const struct accept_encoding *ae, unsigned offered)
{
    if (!ae->fields)
        return CODING_IDENTITY;
    enum http_coding best = CODING_IDENTITY;
    int best_q = 0;
    /* br first: it wins a tie with gzip. */
    static const enum http_coding order[] = {CODING_BR, CODING_GZIP};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        if (!(offered & (1u << order[i])))
            continue;
        int q = accept_encoding_weight(ae, order[i]);
        if (q > best_q) {
            best = order[i];
            best_q = q;
        }
    }
    /* Identity outweighs a coding only if the client weighed it (itself
     * or by `*`): "gzip;q=0.5" alone still asks for gzip. */
    int identity_q = ae->identity >= 0 ? ae->identity : ae->star;
    if (best != CODING_IDENTITY && identity_q > best_q)
        return CODING_IDENTITY;
    return best;
}

const char *http_coding_name(enum http_coding coding)
{
    switch (coding) {
    case CODING_GZIP: return "gzip";
    case CODING_BR: return "br";
    default: return "identity";
    }
}
