/*
 * kc_lease.h - leases: get batches answered by reference (offsets into the
 * shared region) stay held (memory slabs pinned, read buffers kept) until
 * the client releases them, its connection closes, or the lease timeout
 * (--lease-timeout) passes. A lease is the get batch itself (struct
 * get_ctx), on its connection's list, oldest first: every lease of a
 * daemon has the same timeout, so the list is also in deadline order.
 *
 * Bounds per connection: --lease-max bytes of blocks and LEASE_COUNT_MAX
 * leases; past either a get by reference answers LIMIT.
 */
#ifndef KC_LEASE_H
#define KC_LEASE_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/kc_shm.h"
#include "kvcache.pb-c.h"

struct conn;
struct get_ctx;
struct server;

/* LEASE_COUNT_MAX and LEASE_SLOTS: kc_shm.h, beside the table. */

/* Would bytes more stay within c's bounds? */
bool lease_fits(const struct conn *c, uint64_t bytes);

/* Make x a lease of c holding bytes (takes a hold on x); sets x->lease and
 * x->lease_deadline. c must be attached and lease_fits(c, bytes). */
void lease_add(struct conn *c, struct get_ctx *x, uint64_t bytes);

/* op_release (kc_dispatch.h), the Release operation, is here: it gives
 * back the leases listed (unknown ids, already released or expired, are
 * ignored) and has no response. */

/* Drop every lease of c (the connection closes). */
void lease_drop_all(struct conn *c);

/* End leases past their deadline, on every connection. */
void lease_expire(struct server *s, uint64_t now);

#endif
