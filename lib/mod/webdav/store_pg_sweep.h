/* The PostgreSQL store's background sweep of expired locks, one per
 * worker (store_pg_sweep.c). */
#ifndef VERBD_MOD_WEBDAV_STORE_PG_SWEEP_H
#define VERBD_MOD_WEBDAV_STORE_PG_SWEEP_H

#include <stdint.h>

struct loop;
struct pg_sweeper;

/* Sweeps every `every_ms`, the first time every_ms from now. */
struct pg_sweeper *pg_sweeper_start(struct loop *loop, const char *conninfo, uint64_t every_ms);
void pg_sweeper_stop(struct pg_sweeper *sw);

#endif
