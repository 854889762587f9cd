/* HTTP status codes and their reason phrases, from one table. */
#ifndef VERBD_HTTP_STATUS_H
#define VERBD_HTTP_STATUS_H

#include <stddef.h>

/* Reason phrase for a status code ("Not Found"); "Unknown" for codes not in
 * the table. */
const char *http_status_reason(int status);
/* "HTTP/1.1 404 Not Found\r\n" for a code in the table (*len its length),
 * NULL for any other. */
const char *http_status_line(int status, size_t *len);

/* The codes of the table by position, for counters kept per status: the
 * position of a code (-1 if not in the table), and the code at one. */
#define HTTP_STATUS_COUNT 57
int http_status_index(int status);
int http_status_at(int index);

#endif
