/* Structured Field Dictionaries (RFC 8941 §3.2, parsed as §4.2.2 says):
 * strict, pure, no allocation; what a member holds is a span into the
 * caller's bytes.  Parameters are checked and ignored; inner lists are
 * checked and reported as such, without their items. */
#ifndef VERBD_HTTP_SF_H
#define VERBD_HTTP_SF_H

#include <stdbool.h>
#include <stdint.h>

#include "http/parse.h"

/* At least what RFC 8941 §3.2 asks a parser to support: more members make
 * a field invalid. */
#define SF_DICT_MEMBERS_MAX 1024

enum sf_type {
    SF_INTEGER,
    SF_DECIMAL,
    SF_STRING,
    SF_TOKEN,
    SF_BYTES,
    SF_BOOLEAN,
    SF_INNER_LIST,
};

struct sf_member {
    struct span key;
    enum sf_type type;
    /* SF_INTEGER: the value; SF_BOOLEAN: 0 or 1; SF_DECIMAL: the value
     * times 1000 (at most three decimals, RFC 8941 §3.3.2). */
    int64_t number;
    /* SF_STRING: the characters between the quotes, escapes still in;
     * SF_TOKEN: the token; SF_BYTES: the base64 between the colons. */
    struct span text;
};

/* Whether `value` is a valid Dictionary (an empty one is valid). */
bool sf_dict_valid(struct span value);

/* The members of a Dictionary already found valid, in order, one per
 * call (a key given twice comes twice: the last counts, §4.2.2).  Starts
 * with *rest = value; false past the last member. */
bool sf_dict_next(struct span *rest, struct sf_member *m);

#endif
