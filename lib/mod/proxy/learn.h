/* Refusals the gateway learnt from its upstreams, shared by all workers. */
#ifndef VERBD_MOD_PROXY_LEARN_H
#define VERBD_MOD_PROXY_LEARN_H

#include <stddef.h>
#include <stdint.h>

/* Maps the shared table; once, in the process that forks the workers.
 * -1 if no memory could be had (nothing is learnt then). */
int learn_init(void);
/* The upstream answered 501 to `method`: refused for ttl_ms from now. */
void learn_refusal(const char *upstream, const char *method, size_t len, uint64_t ttl_ms);
/* Milliseconds the refusal of `method` stays fresh; 0 if none is known. */
uint64_t learnt_refusal(const char *upstream, const char *method, size_t len);

#endif
