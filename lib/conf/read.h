/* Reading config files into a tree of directives: the syntax, includes,
 * and every bound on untrusted input.  What the directives mean is
 * conf.c's business. */
#ifndef VERBD_CONF_READ_H
#define VERBD_CONF_READ_H

#include <stdbool.h>
#include <stddef.h>

#include "conf/errors.h"

#define CONF_MAX_FILE (1 << 20) /* bytes in one file */
#define CONF_MAX_DEPTH 16       /* files including files */
#define CONF_MAX_FILES 256      /* files read in one load */
#define CONF_MAX_NESTING 8      /* blocks within blocks (conf.c allows 1) */

struct conf_dir;

struct conf_list {
    struct conf_dir *v;
    size_t n, cap;
};

/* One directive: `name args... ;` or `name args... { children }`. */
struct conf_dir {
    int argc; /* argv[0] is the name */
    char **argv;
    struct conf_pos *pos; /* of each argv[i] */
    bool bad;             /* a syntax error was reported in it */
    bool block;
    struct conf_pos open; /* of "{" */
    struct conf_list children;
};

struct conf_reader {
    struct conf_errors *errs;
    struct conf_file *files; /* every file read, for positions */
    size_t nfiles;
    unsigned nseq; /* file records made */
    struct {
        unsigned long dev, ino;
    } stack[CONF_MAX_DEPTH]; /* the files being read, for cycles */
    size_t depth;
    int nesting; /* blocks open around the current directive */
    int data;    /* data blocks open around it (conf_data_block) */
    /* Whether a word names a directive; used to say "missing ;" when a
     * directive name starts a line inside another directive's arguments. */
    bool (*known)(const char *name);
};

/* Reads the file at `path` (absolute, or relative to the working
 * directory), shown as `name` in messages, and what it includes, appending
 * its directives to out.  `at` is the include directive's argument, NULL
 * for the top file.  Errors go to r->errs.  Returns 0 if the file was read
 * (maybe with errors), -1 if it could not be. */
int conf_read_file(struct conf_reader *r, const char *name, const char *path,
                   const struct conf_pos *at, struct conf_list *out);

/* True for a block whose lines are data, not directives (`types { }`):
 * its lines are read as words up to ";", never as includes, and their
 * first words are not taken for directive names. */
bool conf_data_block(const char *name);

void conf_list_free(struct conf_list *l);
void conf_reader_free(struct conf_reader *r);

/* `rel` against `dir` ("/etc/verbd" + "./public" = "/etc/verbd/public"),
 * or a copy of rel if it is absolute. */
char *conf_resolve(const char *dir, const char *rel);

#endif
