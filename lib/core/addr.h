/* A socket address as text, for logs, variables and the fields a gateway
 * adds (Forwarded, REMOTE_ADDR). */
#ifndef VERBD_CORE_ADDR_H
#define VERBD_CORE_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

#define ADDR_TEXT_MAX 46 /* INET6_ADDRSTRLEN */

/* The IPv4 or IPv6 address of sa ("192.0.2.1", "2001:db8::1"), or
 * `otherwise` for NULL or another family.  len ≥ ADDR_TEXT_MAX. */
void addr_text(const struct sockaddr *sa, char *out, size_t len, const char *otherwise);
/* Its port, or 0. */
unsigned addr_port(const struct sockaddr *sa);

#endif
