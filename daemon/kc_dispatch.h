/*
 * kc_dispatch.h - decoded requests to store calls and responses.
 *
 * Synchronous operations answer at once. Get and GetPrefix are submitted to
 * the store and answered from its callback, with the blocks sent straight
 * from the engine's memory (struct get_ctx holds them until sent). Put is a
 * small state machine (kc_put.c) fed by the connection's data sink.
 */
#ifndef KC_DISPATCH_H
#define KC_DISPATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "kvcache.pb-c.h"
#include "slab/kc_store.h"

struct conn;
struct server;

/* What one step of the connection's reader achieved. */
enum step {
    STEP_CLOSED = -1,      /* the connection was closed */
    STEP_NEED_INPUT = 0,   /* read more bytes */
    STEP_PROGRESS = 1,     /* did something; step again */
    STEP_BLOCKED = 2,      /* waiting (KC_EBUSY, backpressure) */
};

/* An in-flight Get or GetPrefix. */
struct get_ctx {
    struct conn *c;        /* the asking connection (may be closed) */
    uint64_t id;           /* request id */
    int op;                /* OPK_GET or OPK_GET_PREFIX */
    uint64_t t0;           /* request decoded */
    uint32_t block_bytes;  /* namespace block size, for miss bytes */
    bool by_ref;           /* answer with region offsets and a lease */
    uint32_t holds;        /* owners: the request until answered, the
                              response being sent, the lease (kc_lease.c) */
    uint64_t lease;        /* lease id, 0 when not leased */
    uint64_t lease_deadline; /* loop_now_ns() at which the lease ends */
    uint64_t lease_bytes;  /* block bytes the lease holds */
    struct get_ctx *lprev, *lnext; /* the connection's lease list */
    struct store_get g;
    struct store_get_item items[];
};

/* Handle a decoded request (takes ownership of req). */
int dispatch_request(struct conn *c, Kvcache__Request *req, uint64_t data_len);

/* Queue r as the answer to op, recording its latency; returns a step. */
int dispatch_reply(struct conn *c, int op, uint64_t t0, Kvcache__Response *r);

/* Stats and ListNamespaces (kc_info.c). */
int dispatch_stats(struct conn *c, Kvcache__Request *q, uint64_t t0);
int dispatch_list_namespaces(struct conn *c, Kvcache__Request *q, uint64_t t0);

/* Drop one hold on a finished get; the last one releases its engine
 * memory and frees it. */
void get_ctx_release(struct server *s, struct get_ctx *g);

/* A store KC_* code as a wire kvcache.Code. */
int code_from_kc(int rc);

/* Begin a Put: validate, then receive its blocks via the sink. */
int put_start(struct conn *c, Kvcache__Request *req, uint64_t data_len);

/* The sink is full (or a reservation is to be retried): next item. */
int put_next(struct conn *c);

/* Connection closed mid-Put: abort the reservation, free everything. */
void put_abort(struct conn *c);

#endif
