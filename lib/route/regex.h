/* The router's regular expressions (rewrite, and locations by `~` and
 * `~*`): PCRE2, compiled once at configuration (JIT where the platform
 * has it) and matched under verbd's limits, so a hostile path costs a
 * bounded amount of work. */
#ifndef VERBD_ROUTE_REGEX_H
#define VERBD_ROUTE_REGEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "route/vars.h"

/* PCRE2's match limits for every expression: steps of the matcher and
 * depth of its backtracking (in KiB of heap). */
#define REGEX_MATCH_LIMIT 100000
#define REGEX_DEPTH_LIMIT 1000

struct regex {
    void *code;        /* pcre2_code *, or NULL */
    uint32_t captures; /* how many capturing groups it has */
    bool logged;       /* a failed match was logged (for a caller that logs it once) */
};

/* Compiles `pattern`; -1 + err ("MESSAGE at offset N", PCRE2's) if it does
 * not. */
int regex_compile(struct regex *re, const char *pattern, bool caseless, char *err, size_t errlen);
void regex_free(struct regex *re);

/* Matches `subject`: 1 (its captures, $0..$9, into cap), 0 no match, or
 * PCRE2's negative error code (over a limit, out of memory), whose text
 * regex_error_text gives. */
int regex_match(const struct regex *re, const char *subject, struct captures *cap);
void regex_error_text(int rc, char *msg, size_t n);

#endif
