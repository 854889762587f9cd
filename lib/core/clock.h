/* The time as the event loop sees it: read once per loop turn. */
#ifndef VERBD_CORE_CLOCK_H
#define VERBD_CORE_CLOCK_H

#include <stdint.h>

#include "http/date.h"

/* Reads the clocks; call once per loop turn. */
void clock_update(void);
/* Monotonic milliseconds at the last update. */
uint64_t clock_ms(void);
/* The file-system epoch: requests answered in one epoch may share one
 * look at a file (the static module's cache).  A new epoch begins after
 * every read that brings input and after any request that may have changed
 * something, so no answer can miss a change that happened before its
 * request arrived.  The worker reads a whole batch of ready connections
 * before answering any, so their requests share one epoch. */
uint64_t clock_epoch(void);
void clock_new_epoch(void);
/* "Date: <IMF-fixdate>\r\n" for the last update, recomputed once a second;
 * always CLOCK_DATE_FIELD_LEN bytes. */
const char *clock_date_field(void);
#define CLOCK_DATE_FIELD_LEN (sizeof "Date: \r\n" - 1 + HTTP_DATE_LEN)

#endif
