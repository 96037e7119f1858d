/*
 * kc_put.h - receiving a Put: op_put (declared with every handler in
 * kc_dispatch.h) validates the request and reserves each block's slot in
 * a memory slab in turn; the connection's sink receives the block
 * straight into it; put_next commits it and goes on. A block that cannot
 * be stored is read into nowhere and gets its per-item status.
 */
#ifndef KC_PUT_H
#define KC_PUT_H

struct conn;

/* The sink is full (or a reservation is to be retried): next item.
 * Returns a step (kc_conn.h). */
int put_next(struct conn *c);

/* Connection closed mid-Put: abort the reservation, free everything. */
void put_abort(struct conn *c);

#endif
