/* verbd dav-store init|migrate -c FILE: creates or brings up to date the
 * tables of every WebDAV store (dav_store, dav_db) the config names. */
#ifndef VERBD_DAV_STORE_CMD_H
#define VERBD_DAV_STORE_CMD_H

/* argv[0] is "dav-store".  The exit status: 0 every store is ready, 1 one
 * or more could not be set up, 2 a usage or config error (no store
 * touched). */
int dav_store_main(int argc, char **argv);

#endif
