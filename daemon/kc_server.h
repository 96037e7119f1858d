/*
 * kc_server.h - running the daemon: listeners, accept, signals, the
 * store's eventfd, before-sleep work (retries, idle timeouts, deferred
 * frees, drain). Its state, struct server, is in kc_daemon.h; only
 * kc_main.c calls these.
 */
#ifndef KC_SERVER_H
#define KC_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/kc_daemon.h"

/*
 * Create listeners, signal handling and register everything with a new
 * loop. st is open already. Returns 0 or -1 (logged).
 */
int server_init(struct server *s, const struct options *o, struct store *st);

/* Run until SIGTERM/SIGINT and a drain; returns 0 on a clean stop. */
int server_run(struct server *s);

/* Close every connection and listener, free everything but the store. */
void server_deinit(struct server *s);

#endif
