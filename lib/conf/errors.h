/* Positions in config files and the error sink: every message is
 * "FILE:LINE:COL: message". */
#ifndef VERBD_CONF_ERRORS_H
#define VERBD_CONF_ERRORS_H

#include <stddef.h>

/* One file read; kept until the load ends so positions can name it. */
struct conf_file {
    char *name;               /* as shown in messages */
    char *dir;                /* absolute directory, for relative paths */
    struct conf_file *next;
};

struct conf_pos {
    const struct conf_file *file;
    int line, col;            /* 1-based; col counts bytes */
};

struct conf_errors {
    void (*report)(void *ctx, const char *msg);
    void *ctx;
    int count;
};

/* After this many, one "too many errors" message and silence (a binary
 * file must not produce a million lines); the count goes on. */
#define CONF_MAX_REPORTED 100

void conf_error(struct conf_errors *e, const struct conf_pos *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
