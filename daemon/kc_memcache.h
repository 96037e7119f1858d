/*
 * kc_memcache.h - memcached's text protocol on kvcached's store.
 *
 * A connection accepted on --memcache-port gets a struct mc_conn (c->mc)
 * and its reader calls mc_step() at each command boundary instead of the
 * frame reader. Values of sets are received straight into a reserved slot
 * of a memory slab through the connection's data sink (the same path as a
 * Put); gets are answered with iovecs pointing at the engine's memory.
 * Replies are in command order: a connection starts no new command while
 * one of its gets waits on the device. The protocol and the key mapping
 * are described in docs/pool.md.
 */
#ifndef KC_MEMCACHE_H
#define KC_MEMCACHE_H

struct conn;
struct conn_proto;
struct mc_conn;

/* memcache's table for struct conn (kc_conn.h): on_read is mc_step. */
extern const struct conn_proto mc_proto;

/* Make c a memcache connection (allocates c->mc). 0 or -1. */
int mc_attach(struct conn *c);

/* One step at a command boundary (state CS_HDR); returns an enum step. */
int mc_step(struct conn *c);

/* The connection closes (or a value is refused): abort a reservation,
 * free a pending value. */
void mc_abort(struct conn *c);

/* Refuse a connection over --conns before it is set up (best effort). */
void mc_refuse(int fd, const char *why);

#endif
