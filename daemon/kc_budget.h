/*
 * kc_budget.h - how many bytes requests in flight may hold, per connection
 * and for the whole daemon, so that what clients send cannot grow the
 * daemon's memory past what its flags say.
 *
 * Counted ("in flight" bytes):
 *   - read buffers that the gets of a connection hold until their answer
 *     is sent: estimated from the index before the get is started (a
 *     block in a memory slab needs none; one on the SSD needs its slot);
 *   - the connection's input buffer beyond its first CONN_IBUF_SIZE (a
 *     large protobuf message being received);
 *   - response bytes the daemon owns (frame header, protobuf, text).
 * Block data sent from memory slabs is not counted: -m bounds it.
 *
 * Limits: --conn-inflight per connection, --read-inflight for the daemon.
 * A get that would go over a limit waits (its connection starts nothing
 * else); a get larger than a limit on its own is answered LIMIT. A
 * connection over its own limit reads no new requests until its output
 * drains (backpressure). Contract: charge and uncharge are paired by the
 * caller; the counters never go below zero (asserted).
 */
#ifndef KC_BUDGET_H
#define KC_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slab/kc_store.h"

struct conn;

/* What budget_admit decides. */
enum budget_verdict {
    BUDGET_OK = 0,     /* charge it and go */
    BUDGET_WAIT = 1,   /* over a limit now: retry later */
    BUDGET_NEVER = 2,  /* larger than a limit on its own: refuse (LIMIT) */
};

/*
 * Read-buffer bytes a get of items[0..n) in namespace ns may hold: the
 * slots of the blocks that are on the SSD only. prefix: stop at the first
 * key absent from the index.
 */
uint64_t budget_get_bytes(struct store *st, uint64_t ns,
                          const struct store_get_item *items, size_t n,
                          bool prefix);

/* May c take bytes more? */
enum budget_verdict budget_admit(const struct conn *c, uint64_t bytes);

/* Add (delta > 0) or give back (delta < 0) bytes of c. */
void budget_charge(struct conn *c, int64_t delta);

/* Is c over its own limit (stop reading new requests)? */
bool budget_conn_over(const struct conn *c);

#endif
