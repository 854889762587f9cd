/* HTTP-date (RFC 9110 §5.6.7): IMF-fixdate out; all three formats in. */
#ifndef VERBD_HTTP_DATE_H
#define VERBD_HTTP_DATE_H

#include <stddef.h>
#include <time.h>

#define HTTP_DATE_LEN 29 /* "Sun, 06 Nov 1994 08:49:37 GMT" */

/* Writes t as IMF-fixdate plus a NUL into out (HTTP_DATE_LEN + 1 bytes). */
void http_date_format(time_t t, char *out);

/* Parses IMF-fixdate, RFC 850 or asctime format.  Returns 0 and sets *t, or
 * -1 if invalid (an invalid date in a condition is ignored, RFC 9110). */
int http_date_parse(const char *p, size_t n, time_t *t);

#endif
