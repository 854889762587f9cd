#include "core/clock.h"

#include <stdio.h>
#include <time.h>

#include "http/date.h"

static uint64_t now_ms;
static uint64_t epoch = 1;
static time_t date_second = -1;
static char date_field[sizeof "Date: \r\n" + HTTP_DATE_LEN];

void clock_update(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    now_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    time_t wall = time(NULL);
    if (wall != date_second) {
        char date[HTTP_DATE_LEN + 1];
        http_date_format(wall, date);
        snprintf(date_field, sizeof date_field, "Date: %s\r\n", date);
        date_second = wall;
    }
}

uint64_t clock_ms(void)
{
    return now_ms;
}

uint64_t clock_epoch(void)
{
    return epoch;
}

void clock_new_epoch(void)
{
    epoch++;
}

const char *clock_date_field(void)
{
    return date_field;
}
