/* Internal redirects and the answers of the rewrite phase, per exchange:
 * try_files and error_page, and the state that rewrite, try_files and
 * error_page share (how many times the target changed, a pending
 * return).  DECISIONS.md: at most 10 internal redirects per request. */
#ifndef VERBD_ROUTE_REDIRECT_H
#define VERBD_ROUTE_REDIRECT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "route/vars.h"

struct verbd_exchange;
struct route_table;
struct route_mapping;

#define ROUTE_REDIRECTS_MAX 10

/* `try_files FILE... URI|=CODE;` */
struct try_files {
    char **files; /* each a template ($uri, ...): a path, '/' at the end: a directory */
    size_t n;
    char *uri; /* the last argument, or NULL with code */
    int code;
};

/* `error_page CODE... [=CODE] URI;` */
struct error_page {
    int *codes;
    size_t ncodes;
    int answer; /* =CODE, or 0: the original status */
    char *uri;
};

struct error_pages {
    struct error_page *v;
    size_t n;
};

/* What the router keeps per exchange once a rule or a redirect applies. */
struct route_state {
    int redirects;            /* internal redirects so far */
    struct captures location; /* the chosen location's match, if it is by regex */
    bool internal;            /* the last one was an internal redirect (not a `last`) */
    /* A return (or a rewrite's redirect) to answer once the method
     * decision lets the request in: status and body or Location. */
    int answer;
    bool answer_location;
    const char *answer_text;
    size_t answer_len;
    /* error_page: the original response kept while the page is fetched. */
    bool in_page;
    int page_status;
    int orig_method;
    int orig_status;
    bool orig_close;
    struct buf orig_head;
    struct buf orig_body;
};

/* `captures`: how many groups the location's expression has (-1: none). */
int try_files_parse(struct try_files **out, int captures, int argc, const char *const *argv,
                    char *err, size_t errlen);
void try_files_free(struct try_files *tf);
struct vars;
/* The index of the first FILE that exists under the root (its path, below
 * the location `prefix`, in found, NUL-terminated), or -1. */
int try_files_find(const struct try_files *tf, int root_fd, const char *prefix, size_t prefix_len,
                   const struct vars *v, struct buf *found);

int error_page_parse(struct error_pages *l, int argc, const char *const *argv, char *err,
                     size_t errlen);
void error_pages_free(struct error_pages *l);
/* The page for `status` in the mapping's list (or the table's where the
 * request has no mapping), or NULL. */
const struct error_page *error_page_find(const struct route_table *t, const struct route_mapping *m,
                                         int status);

/* Makes uri[0, len) (encoded, with its query) the exchange's target for
 * an internal redirect: false (req->refusal set: 500 past the bound, 400
 * for a path that is not one) if it cannot be. */
bool route_redirect_target(struct verbd_exchange *x, const char *uri, size_t len);

/* Whether rel names a regular file (dir: a directory) under the directory
 * root_fd, resolved without leaving it (no "..", no symlink out of it). */
bool route_file_beneath(int root_fd, const char *rel, bool dir);

/* The exchange's state, created on first use. */
struct route_state *route_state(struct verbd_exchange *x);

/* Answers the exchange's current (complete, in-memory) error response
 * with the page instead, keeping its status and Allow: true if the page
 * is being served (the exchange is taken over), false if there is none
 * to try (the response goes out as it is). */
bool error_page_serve(const struct route_table *t, struct verbd_exchange *x,
                      const struct error_page *page);

/* The head hook of a served location with error pages: a module's error
 * answered in one go goes through error_page_serve. */
bool error_page_intercept(struct verbd_exchange *x, bool last);

#endif
