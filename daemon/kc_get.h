/*
 * kc_get.h - Get and GetPrefix: op_get and op_get_prefix (declared with
 * every handler in kc_dispatch.h) merge duplicate keys, take the
 * in-flight budget (waiting for it when over), and submit to the store;
 * its callback answers with iovecs into the engine's memory (memory slab
 * or read buffer), or with region offsets and a lease (by reference,
 * kc_lease.h). struct get_ctx holds the blocks until the answer is sent
 * and the lease released.
 */
#ifndef KC_GET_H
#define KC_GET_H

#include <stdbool.h>
#include <stdint.h>

#include "slab/kc_store.h"

struct conn;
struct server;

/* An in-flight Get or GetPrefix. */
struct get_ctx {
    struct conn *c;        /* the asking connection (may be closed) */
    uint64_t id;           /* request id */
    int op;                /* OPK_GET or OPK_GET_PREFIX */
    uint64_t t0;           /* request decoded */
    uint32_t block_bytes;  /* namespace block size, for miss bytes */
    uint64_t charged;      /* in-flight budget taken (kc_budget.h) */
    size_t n;              /* keys asked for (g.n: distinct keys) */
    uint32_t *uniq;        /* key i is items[uniq[i]]; NULL: all distinct */
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

/* Drop one hold on a finished get; the last one releases its engine
 * memory and frees it. */
void get_ctx_release(struct server *s, struct get_ctx *g);

#endif
