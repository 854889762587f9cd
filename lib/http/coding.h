/* Content codings: what a client's Accept-Encoding accepts (RFC 9110
 * §12.5.3) and which coding verbd answers with.  Pure functions over the
 * field values, like the rest of lib/http/. */
#ifndef VERBD_HTTP_CODING_H
#define VERBD_HTTP_CODING_H

#include <stddef.h>

/* The codings verbd produces, as bits of a set ("offered"). */
enum http_coding {
    CODING_IDENTITY = 0,
    CODING_GZIP = 1,
    CODING_BR = 2,
};

/* The weights (thousandths, 0..1000) a client gave; -1 where its
 * Accept-Encoding did not list the coding. */
struct accept_encoding {
    int gzip, br, identity, star;
    int fields; /* Accept-Encoding fields seen; 0: the client sent none */
};

void accept_encoding_init(struct accept_encoding *ae);
/* Adds one Accept-Encoding field value [p, p+n).  A coding listed twice
 * keeps its first weight; an element whose weight does not parse is
 * ignored (as if it were not there). */
void accept_encoding_add(struct accept_encoding *ae, const char *p, size_t n);

/* The weight the client gives to `coding`: its own, else `*`'s, else 0
 * for gzip and br and 1000 for identity (acceptable unless excluded). */
int accept_encoding_weight(const struct accept_encoding *ae, enum http_coding coding);

/* The coding to answer with among `offered` (CODING_GZIP and CODING_BR
 * bits: 1 << CODING_GZIP...): the one of highest weight, br before gzip
 * and both before identity at equal weight; identity wins only with a
 * higher weight of its own (or `*`'s), not the default it has when
 * unlisted.  Without Accept-Encoding, or
 * with nothing offered acceptable, CODING_IDENTITY — also when the client
 * refused identity (identity;q=0, *;q=0): verbd then answers unencoded
 * rather than 406, as nginx does (docs/config.md). */
enum http_coding accept_encoding_choose(const struct accept_encoding *ae, unsigned offered);

/* The coding's name in Content-Encoding ("gzip", "br"; "identity"). */
const char *http_coding_name(enum http_coding coding);

#endif
