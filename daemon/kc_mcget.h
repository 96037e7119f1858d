/*
 * kc_mcget.h - memcache reads on the store: get, gets, gat, gats, mg, and
 * the fetch of the old item that cas, incr, decr, append, prepend, touch
 * and md need. One engine batch per run of keys of one namespace; answers
 * are sent from engine memory. Private to the memcache modules.
 *
 * A read that must write (gat, mg T/N/R, a stale item's win token, a
 * fetch) finishes in mc_step (mc_get_resume), not in the store's callback:
 * writes may poll the store. Expired and flushed items are misses and are
 * removed from the index when seen.
 */
#ifndef KC_MCGET_H
#define KC_MCGET_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/kc_mcparse.h"

struct conn;

/* Kinds of read. */
enum mc_get_kind { MCG_GET, MCG_GETS, MCG_GAT, MCG_GATS, MCG_MG, MCG_FETCH };

/*
 * Start a read of keys[0..n) (tokens into line[0..len)); for mg, fl[0..nfl)
 * are its flags (checked already); for gat/gats, exptime is the new one
 * (absolute, mci_exptime). The line is copied: the input buffer moves on
 * while the device is read. MCG_FETCH reads c->mc's key and ends in
 * mc_store_apply. Returns an enum step.
 */
int mc_get_start(struct conn *c, int kind, const char *line, size_t len,
                 const struct mc_tok *keys, size_t n,
                 const struct mc_tok *fl, size_t nfl, int64_t exptime);

/* Finish a read whose writes were deferred to the reader (c->mc->ready). */
int mc_get_resume(struct conn *c);

/* The connection closes: drop a deferred read (releases its engine memory). */
void mc_get_discard(struct conn *c);

#endif
