/* Telling a service manager how the server is doing: systemd's readiness
 * protocol (sd_notify(3)) spoken directly, without libsystemd. */
#ifndef VERBD_ENGINE_NOTIFY_H
#define VERBD_ENGINE_NOTIFY_H

/* Reads $NOTIFY_SOCKET (a path, or "@name" for an abstract socket); from
 * then on this process, and only this one (not the workers it forks), sends
 * the states below.  Without the variable nothing is ever sent. */
void notify_init(void);

/* Sends one state message: "READY=1", "STOPPING=1". */
void notify(const char *state);

/* "RELOADING=1" with the MONOTONIC_USEC= that systemd asks to go with it. */
void notify_reloading(void);

#endif
