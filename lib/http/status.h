/* HTTP status codes and their reason phrases, from one table. */
#ifndef VERBD_HTTP_STATUS_H
#define VERBD_HTTP_STATUS_H

/* Reason phrase for a status code ("Not Found"); "Unknown" for codes not in
 * the table. */
const char *http_status_reason(int status);

#endif
