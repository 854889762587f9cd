/* "Did you mean": what to suggest for a directive name the config does not
 * know, by edit distance to verbd's names and by nginx's spelling of the
 * same thing. */
#ifndef VERBD_CONF_HINT_H
#define VERBD_CONF_HINT_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Writes into out a hint to append to `unknown directive "NAME"`, such as
 * " (did you mean static?)" or " (nginx's ssl_certificate: verbd has no TLS
 * yet)", or "" when nothing is close.  in_location: where NAME was written;
 * a suggestion that belongs elsewhere says where it goes.
 */
void conf_hint(const char *name, bool in_location, char *out, size_t len);

/* The top-level directives with their own syntax (conf.c), NULL-ended. */
extern const char *const conf_top_directives[];

/*
 * Levenshtein distance with adjacent transpositions ("stauts" is one edit
 * from "status"), or limit + 1 if it is more than limit.
 */
unsigned conf_edit_distance(const char *a, const char *b, unsigned limit);

#endif
