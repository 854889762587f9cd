/* The config file (docs/config.md): from files to listeners, settings and
 * mappings on a server. */
#ifndef VERBD_CONF_CONF_H
#define VERBD_CONF_CONF_H

#include <stdbool.h>

struct verbd_server;

/*
 * Reads the config file at `path` (and what it includes) into srv.  Each
 * error is passed to report as "FILE:LINE:COL: message"; loading goes on
 * after an error to find the next.  With reload, `listen` directives are
 * checked but not bound (SIGHUP keeps the listeners; verbd -t binds
 * nothing).  Once the file could be read, it becomes the server's reload
 * source (verbd_server_on_reload).  Returns the number of errors.
 */
int conf_load(struct verbd_server *srv, const char *path, bool reload,
              void (*report)(void *ctx, const char *msg), void *ctx);

/* As conf_load, and warnings (a file that loads but will not serve as
 * meant, such as one with no location) go to warn as "FILE:LINE:COL:
 * warning: message"; they are not errors. */
int conf_load_warn(struct verbd_server *srv, const char *path, bool reload,
                   void (*report)(void *ctx, const char *msg),
                   void (*warn)(void *ctx, const char *msg), void *ctx);

#endif
