/* Positions in config files and the error sink: every message is
 * "FILE:LINE:COL: message", reported in the order of the text (an included
 * file's errors where it is included), whichever pass found them. */
#ifndef VERBD_CONF_ERRORS_H
#define VERBD_CONF_ERRORS_H

#include <stdbool.h>
#include <stddef.h>

struct conf_file;

struct conf_pos {
    const struct conf_file *file;
    int line, col; /* 1-based; col counts bytes */
};

/* One file read; kept until the load ends so positions can name it. */
struct conf_file {
    char *name;   /* as shown in messages */
    char *dir;    /* absolute directory, for relative paths */
    unsigned seq; /* order read */
    bool included;
    struct conf_pos from; /* if included: the include directive's argument */
    struct conf_file *next;
};

struct conf_error_entry;

struct conf_errors {
    void (*report)(void *ctx, const char *msg);
    void (*warn)(void *ctx, const char *msg); /* NULL: warnings are dropped */
    void *ctx;
    int count;                  /* errors: any means the file is not used */
    int warnings;               /* the file is used all the same */
    struct conf_error_entry *v; /* held until conf_errors_flush */
    size_t n, cap;
};

/* Reported: the first this many, then one "too many errors" line (a binary
 * file must not produce a million lines); the count goes on. */
#define CONF_MAX_REPORTED 100

void conf_error(struct conf_errors *e, const struct conf_pos *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A warning: "FILE:LINE:COL: warning: message", passed to warn in text
 * order with the errors, not counted as one. */
void conf_warning(struct conf_errors *e, const struct conf_pos *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reports the errors held, in text order, and frees them. */
void conf_errors_flush(struct conf_errors *e);

#endif
