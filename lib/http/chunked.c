/* The chunked transfer coding decoder (RFC 9112 §7.1): see chunked.h.
 *
 *   chunked-body = *chunk last-chunk trailer-section CRLF
 *   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *   chunk-ext    = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )
 *
 * A byte-at-a-time state machine for the size lines and the trailer; chunk
 * data is handed out as one slice of the input per call. */
#include "http/chunked.h"

#include <stdbool.h>

#include "http/method.h"

enum {
    S_SIZE,        /* chunk-size digits */
    S_SIZE_WS,     /* BWS after the size: only ";" may follow */
    S_EXT_NAME0,   /* after ";": BWS, then an ext-name */
    S_EXT_NAME,    /* in an ext-name */
    S_EXT_NAME_WS, /* BWS after an ext-name: "=" or ";" */
    S_EXT_VAL0,    /* after "=": BWS, then a token or quoted-string */
    S_EXT_TOKEN,   /* in a token ext-val */
    S_EXT_QUOTED,  /* in a quoted-string ext-val */
    S_EXT_QPAIR,   /* after a backslash in a quoted-string */
    S_EXT_QEND,    /* just after the closing quote */
    S_EXT_VAL_WS,  /* BWS after an ext-val: only ";" may follow */
    S_SIZE_LF,     /* the LF of the size line */
    S_DATA,        /* chunk-data */
    S_DATA_CR,     /* the CRLF after chunk-data */
    S_DATA_LF,
    S_TRAILER,  /* the start of a trailer line, or the final CRLF */
    S_TNAME,    /* a trailer field name */
    S_TVALUE,   /* a trailer field value */
    S_TLF,      /* the LF of a trailer line */
    S_FINAL_LF, /* the LF of the final CRLF */
    S_DONE,
    S_ERROR,
};

void chunked_init(struct chunked *c)
{
    *c = (struct chunked){.state = S_SIZE};
}

static bool is_tchar(unsigned char ch)
{
    char b = (char)ch;
    return http_is_token(&b, 1);
}

static bool is_ws(unsigned char ch)
{
    return ch == ' ' || ch == '\t';
}

/* VCHAR / obs-text */
static bool is_visible(unsigned char ch)
{
    return ch > 0x20 && ch != 0x7f;
}

static int hex_value(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* The message for an unexpected byte in a size line. */
static const char *bad_in_line(unsigned char ch)
{
    if (ch == '\n')
        return "bare LF in chunked body";
    if (ch == '\r')
        return "malformed chunk-size line";
    return is_ws(ch) ? "unexpected whitespace in chunk-size line"
                     : "invalid character in chunk-size line";
}

enum chunked_result chunked_decode(struct chunked *c, const char *in, size_t len, size_t *consumed,
                                   struct span *data, const char **why)
{
    const char *ignored;
    const char *msg = NULL;
    size_t i = 0;
    bool have_data = false;

    if (!why)
        why = &ignored;
    *data = (struct span){in, 0};
    *consumed = 0;
    if (c->state == S_DONE)
        return CHUNKED_DONE;
    if (c->state == S_ERROR) {
        *why = "malformed chunked body";
        return CHUNKED_ERROR;
    }

    while (i < len) {
        if (c->state == S_DATA) {
            /* One slice per call: stop before the next chunk's data. */
            if (have_data)
                break;
            size_t n = len - i;
            if (n > c->remaining)
                n = (size_t)c->remaining;
            *data = (struct span){in + i, n};
            have_data = true;
            i += n;
            c->remaining -= n;
            c->total += n;
            if (c->remaining == 0)
                c->state = S_DATA_CR;
            continue;
        }
        /* Leave the final LF for the next call when this one returns data,
         * so that CHUNKED_DONE never carries data. */
        if (c->state == S_FINAL_LF && have_data)
            break;

        unsigned char ch = (unsigned char)in[i];
        if (c->state <= S_SIZE_LF) {
            if (++c->line > CHUNKED_MAX_LINE) {
                msg = "chunk-size line too long";
                goto error;
            }
        } else if (c->state >= S_TRAILER) {
            if (++c->trailer > CHUNKED_MAX_TRAILER) {
                msg = "chunked trailer section too large";
                goto error;
            }
        }
        i++;

        switch (c->state) {
        case S_SIZE: {
            int h = hex_value(ch);
            if (h >= 0) {
                if (++c->digits > 16) {
                    msg = "chunk size too large";
                    goto error;
                }
                c->remaining = (c->remaining << 4) | (uint64_t)h;
                break;
            }
            if (c->digits == 0) {
                msg = ch == '\n' ? "bare LF in chunked body" : "invalid chunk size";
                goto error;
            }
            if (ch == '\r')
                c->state = S_SIZE_LF;
            else if (ch == ';')
                c->state = S_EXT_NAME0;
            else if (is_ws(ch))
                c->state = S_SIZE_WS;
            else {
                msg = ch == '\n' ? "bare LF in chunked body" : "invalid chunk size";
                goto error;
            }
            break;
        }
        case S_SIZE_WS:
        case S_EXT_NAME_WS:
        case S_EXT_VAL_WS:
            if (ch == ';')
                c->state = S_EXT_NAME0;
            else if (ch == '=' && c->state == S_EXT_NAME_WS)
                c->state = S_EXT_VAL0;
            else if (!is_ws(ch)) {
                msg = bad_in_line(ch);
                goto error;
            }
            break;
        case S_EXT_NAME0:
            if (is_tchar(ch))
                c->state = S_EXT_NAME;
            else if (!is_ws(ch)) {
                msg = bad_in_line(ch);
                goto error;
            }
            break;
        case S_EXT_NAME:
        case S_EXT_TOKEN:
        case S_EXT_QEND:
            if (ch == '\r')
                c->state = S_SIZE_LF;
            else if (ch == ';')
                c->state = S_EXT_NAME0;
            else if (is_ws(ch))
                c->state = c->state == S_EXT_NAME ? S_EXT_NAME_WS : S_EXT_VAL_WS;
            else if (ch == '=' && c->state == S_EXT_NAME)
                c->state = S_EXT_VAL0;
            else if (!is_tchar(ch) || c->state == S_EXT_QEND) {
                msg = bad_in_line(ch);
                goto error;
            }
            break;
        case S_EXT_VAL0:
            if (ch == '"')
                c->state = S_EXT_QUOTED;
            else if (is_tchar(ch))
                c->state = S_EXT_TOKEN;
            else if (!is_ws(ch)) {
                msg = bad_in_line(ch);
                goto error;
            }
            break;
        case S_EXT_QUOTED:
            if (ch == '"')
                c->state = S_EXT_QEND;
            else if (ch == '\\')
                c->state = S_EXT_QPAIR;
            else if (!is_visible(ch) && !is_ws(ch)) {
                msg = bad_in_line(ch);
                goto error;
            }
            break;
        case S_EXT_QPAIR:
            if (!is_visible(ch) && !is_ws(ch)) {
                msg = bad_in_line(ch);
                goto error;
            }
            c->state = S_EXT_QUOTED;
            break;
        case S_SIZE_LF:
            if (ch != '\n') {
                msg = "bare CR in chunked body";
                goto error;
            }
            c->line = 0;
            c->digits = 0;
            c->state = c->remaining ? S_DATA : S_TRAILER;
            break;
        case S_DATA_CR:
            if (ch != '\r') {
                msg = "missing CRLF after chunk data";
                goto error;
            }
            c->state = S_DATA_LF;
            break;
        case S_DATA_LF:
            if (ch != '\n') {
                msg = "missing CRLF after chunk data";
                goto error;
            }
            c->state = S_SIZE;
            break;
        case S_TRAILER:
            if (ch == '\r')
                c->state = S_FINAL_LF;
            else if (is_tchar(ch))
                c->state = S_TNAME;
            else {
                msg = ch == '\n'  ? "bare LF in chunked body"
                      : is_ws(ch) ? "obsolete line folding in trailer"
                      : ch == ':' ? "empty trailer field name"
                                  : "invalid character in trailer field name";
                goto error;
            }
            break;
        case S_TNAME:
            if (ch == ':')
                c->state = S_TVALUE;
            else if (!is_tchar(ch)) {
                msg = is_ws(ch)                  ? "whitespace between trailer field name and colon"
                      : ch == '\r' || ch == '\n' ? "trailer field line without colon"
                                                 : "invalid character in trailer field name";
                goto error;
            }
            break;
        case S_TVALUE:
            if (ch == '\r')
                c->state = S_TLF;
            else if (!is_visible(ch) && !is_ws(ch)) {
                msg = ch == '\n' ? "bare LF in chunked body"
                                 : "invalid character in trailer field value";
                goto error;
            }
            break;
        case S_TLF:
        case S_FINAL_LF:
            if (ch != '\n') {
                msg = "bare CR in chunked body";
                goto error;
            }
            if (c->state == S_FINAL_LF) {
                c->state = S_DONE;
                *consumed = i;
                return CHUNKED_DONE;
            }
            c->state = S_TRAILER;
            break;
        }
    }
    *consumed = i;
    return CHUNKED_MORE;

error:
    c->state = S_ERROR;
    *consumed = i;
    *why = msg;
    return CHUNKED_ERROR;
}
