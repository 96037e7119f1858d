/*
 * kc_admit.h - admission policies: which blocks put through a prefix-chain
 * Put are written to the SSD at all.
 *
 * Eviction (kc_evict.h) decides which slab goes when the device is full;
 * admission decides before that whether a new block takes room there. A
 * block refused is not stored (the put reports success: a cache may drop
 * anything) and costs no write, so a policy that refuses blocks that would
 * not be read again lets the others stay longer and writes less than one
 * block per block offered (write amplification below 1).
 *
 * Contract:
 * - admit_check() is called by the store once per block offered through
 *   store_put_reserve_hint(), before anything is reserved, on the store's
 *   thread. Plain store_put_reserve() (memcache sets, copies forward) is
 *   never subject to admission.
 * - It sees what the cache can know of a block: its key, its position in
 *   its chain, the hints the engine sent with it (ADMIT_HINT_*), whether
 *   the device still has room (it has never been full: storing the block
 *   pushes nothing out), plus the policy's own history. It must be cheap: a few loads and stores,
 *   no allocation.
 * - A policy's memory is sized once at admit_init() from the number of
 *   blocks the store can hold and never grows.
 */
#ifndef KC_ADMIT_H
#define KC_ADMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "slab/kc_store.h"

/* Hints an engine may send with a block it puts (PutItem.hints). */
#define ADMIT_HINT_DONE 1u    /* no later request will extend this chain
                                 (the conversation is closed) */
#define ADMIT_HINT_MASK 1u    /* the hints this version knows */

struct admit;

/* One admission policy, chosen by name. */
struct admit_ops {
    const char *name;
    const char *help;
    bool hints;   /* acts on ADMIT_HINT_*: eviction may count on it */
    /* Optional: set up a->priv for a store of `blocks` blocks. */
    int (*init)(struct admit *a, uint64_t blocks);
    /* Optional: free a->priv. */
    void (*deinit)(struct admit *a);
    /* Write this block to the device? */
    bool (*check)(struct admit *a, const struct kc_key *key, uint32_t chain_pos,
                  uint32_t hints, bool room);
};

/* Admission state of a store. */
struct admit {
    const struct admit_ops *ops;
    uint32_t param;           /* policy parameter, 0 = its default */
    void *priv;               /* the policy's own state */
};

/* Policy by name, or NULL. */
const struct admit_ops *admit_find(const char *name);
/* Names of all policies, NULL-terminated. */
const char *const *admit_names(void);

/* Set up a (its param already set) for a store of `blocks` blocks. */
int admit_init(struct admit *a, const struct admit_ops *ops, uint64_t blocks);
void admit_deinit(struct admit *a);

/* Should the block be written? */
static inline bool admit_check(struct admit *a, const struct kc_key *key, uint32_t chain_pos,
                               uint32_t hints, bool room)
{
    return a->ops->check(a, key, chain_pos, hints, room);
}

#endif
