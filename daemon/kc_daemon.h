/*
 * kc_daemon.h - the daemon's shared state: store, loop, listeners,
 * connections, counters, tokens. Data only: every module reads and
 * updates the fields it owns here (passed explicitly, nothing global);
 * the functions that run the daemon are in kc_server.h, which only
 * kc_main.c includes, so that no module calls back into the server.
 */
#ifndef KC_DAEMON_H
#define KC_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/kc_auth.h"
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
    unsigned busy_waiters;          /* connections waiting on KC_EBUSY or
                                       on the in-flight budget */
    uint64_t inflight_bytes;        /* kc_budget.h, all connections */
    uint64_t next_conn_id;
    bool in_get_submit;             /* inside store_get_submit: a get done
                                       now was served without the device */
    bool stopping;                  /* signal received: draining */
    uint64_t stop_deadline_ns;      /* give up draining at this time */
    uint64_t last_tick_ns;          /* last once-a-second housekeeping */
    struct daemon_stats stats;
    struct mc_state mcs;            /* memcache port: cas, flush, counters */
    struct auth auth;               /* tokens, credentials, quotas */
};

#endif
