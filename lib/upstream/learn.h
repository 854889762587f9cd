/* Refusals the gateway learnt from its upstreams, shared by all workers. */
#ifndef VERBD_UPSTREAM_LEARN_H
#define VERBD_UPSTREAM_LEARN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "http/parse.h"

/* Maps the shared table; once, in the process that forks the workers.
 * -1 if no memory could be had (nothing is learnt then). */
int learn_init(void);
/* The upstream answered 501 to `method`: refused for ttl_ms from now. */
void learn_refusal(const char *upstream, const char *method, size_t len, uint64_t ttl_ms);
/* A gateway's upstream answered 501 to the request h (method id `id`),
 * with the response's Cache-Control `cc`: learns the refusal (DESIGN.md)
 * unless the 501 may be about something else than the method (GET, HEAD
 * and OPTIONS, which every server implements; a chunked body, Expect,
 * Content-Range) or its freshness forbids; for its explicit freshness
 * (s-maxage, max-age), else default_ttl_ms.  Returns the milliseconds
 * learnt, 0 if nothing was. */
uint64_t learn_from_501(const char *upstream, const struct http_request *h, int id, struct span cc,
                        uint64_t default_ttl_ms);
/* Milliseconds the refusal of `method` stays fresh; 0 if none is known. */
uint64_t learnt_refusal(const char *upstream, const char *method, size_t len);
/* The upstream answered 405 without Allow (RFC 9110 §15.5.6): counted. */
void learn_missing_allow(const char *upstream);
/* The refusals fresh now and the counts, for the status page (the
 * module's metrics). */
void learn_metrics(struct buf *out);

/* The Allow of the upstream's answer to OPTIONS * (proxy_learn_options),
 * fresh for ttl_ms. */
void learn_allow(const char *upstream, const char *allow, size_t len, uint64_t ttl_ms);
/* Whether the upstream's fresh OPTIONS * Allow lists `method` (HEAD
 * comes with GET): 1 yes, 0 no, -1 nothing fresh is known. */
int learnt_allow_lists(const char *upstream, const char *method, size_t len);
/* True for the one worker that should ask the upstream's OPTIONS * now,
 * at most once every every_ms over all workers. */
bool learn_claim_asking(const char *upstream, uint64_t every_ms);

#endif
