/*
 * kc_server.h - the daemon's context: store, loop, listeners, connections.
 *
 * One server per process in practice, but nothing is global: everything a
 * module needs hangs off struct server, passed explicitly.
 */
#ifndef KC_SERVER_H
#define KC_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/kc_loop.h"
#include "daemon/kc_mcitem.h"
#include "daemon/kc_opts.h"
#include "daemon/kc_stats.h"
#include "slab/kc_store.h"

struct conn;
struct http_srv;
struct shm_region;

/* The daemon. */
struct server {
    const struct options *opts;
    struct store *st;
    struct loop *loop;
    struct loop_handler unix_lh;    /* Unix listener (fd -1 if none) */
    struct loop_handler tcp_lh;     /* TCP listener (fd -1 if none) */
    struct loop_handler mc_lh;      /* memcache listener (fd -1 if none) */
    struct loop_handler store_lh;   /* the store's eventfd */
    struct loop_handler signal_lh;  /* signalfd: SIGTERM, SIGINT */
    int tcp_port;                   /* bound TCP port, -1 if none */
    int metrics_port;               /* bound metrics port, -1 if none */
    int mc_port;                    /* bound memcache port, -1 if none */
    struct http_srv *http;          /* metrics endpoint, or NULL */
    struct shm_region *shm;         /* the shared region (kc_shm.c), or NULL */
    struct conn *conns;             /* live connections (doubly linked) */
    struct conn *dead;              /* closed, freed in before-sleep */
    struct conn *kick;              /* to process again in before-sleep */
    unsigned nconns;
    unsigned busy_waiters;          /* connections waiting on KC_EBUSY */
    uint64_t next_conn_id;
    bool in_get_submit;             /* inside store_get_submit: a get done
                                       now was served without the device */
    bool stopping;                  /* signal received: draining */
    uint64_t stop_deadline_ns;      /* give up draining at this time */
    uint64_t last_tick_ns;          /* last once-a-second housekeeping */
    struct daemon_stats stats;
    struct mc_state mcs;            /* memcache port: cas, flush, counters */
};

/*
 * Create listeners, signal handling and register everything with a new
 * loop. st is open already. Returns 0 or -1 (logged).
 */
int server_init(struct server *s, const struct options *o, struct store *st);

/* Run until SIGTERM/SIGINT and a drain; returns 0 on a clean stop. */
int server_run(struct server *s);

/* Close every connection and listener, free everything but the store. */
void server_deinit(struct server *s);

/* Ask for a connection to be processed again before the next sleep. */
void server_kick(struct server *s, struct conn *c);

/* The health verdict now. */
void server_health(struct server *s, struct health *h);

#endif
