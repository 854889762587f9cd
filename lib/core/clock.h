/* The time as the event loop sees it: read once per loop turn. */
#ifndef VERBD_CORE_CLOCK_H
#define VERBD_CORE_CLOCK_H

#include <stdint.h>

/* Reads the clocks; call once per loop turn. */
void clock_update(void);
/* Monotonic milliseconds at the last update. */
uint64_t clock_ms(void);
/* Counts updates: equal values mean the same loop turn. */
uint64_t clock_turn(void);
/* "Date: <IMF-fixdate>\r\n" for the last update, recomputed once a second. */
const char *clock_date_field(void);

#endif
