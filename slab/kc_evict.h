/*
 * kc_evict.h - eviction policies: which slab on the device to reclaim when
 * none is free, and which of its live blocks to copy forward first.
 *
 * The store tells the policy what happens to slabs and blocks (the calls
 * below, all on the store's thread), and asks it for a victim when it needs
 * a free slab. Only slabs wholly on the device (not open, not being written)
 * are ever on a policy's books, so any victim it names can be reclaimed.
 * Before reclaiming a victim, if the policy has a reinsert() method, the
 * store asks it, block by block, whether each live block of the victim
 * should be copied forward into the open memory slab of its class
 * (reinsertion); the copy counts as a write (write amplification).
 *
 * Per-block state a policy may use lives in the index entry (a saturating
 * 8-bit hit count and the 24-bit chain position): the index stays within
 * 32 bytes per stored block. Per-slab state is the policy's own.
 */
#ifndef KC_EVICT_H
#define KC_EVICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slab/kc_index.h"

#define EVICT_NONE UINT32_MAX

struct evict;

struct evict_ops {
    const char *name;
    const char *help;
    /* Optional: set up / free ev->priv. */
    int (*init)(struct evict *ev);
    void (*deinit)(struct evict *ev);
    /* A slab reached the device (written, or found at recovery). */
    void (*on_write)(struct evict *ev, uint32_t slab);
    /* A block was put into slab (still in memory) at chain_pos. Optional. */
    void (*on_insert)(struct evict *ev, uint32_t slab, uint32_t chain_pos);
    /* A block of slab was read (its entry's hit count already bumped). */
    void (*on_read)(struct evict *ev, uint32_t slab, const struct index_entry *e);
    /* A block of slab was deleted. Optional. */
    void (*on_delete)(struct evict *ev, uint32_t slab);
    /* A GetPrefix asked for n keys and found the leading `found`. Optional. */
    void (*on_prefix)(struct evict *ev, size_t found, size_t n);
    /* A slab left the device (reclaimed or lost). */
    void (*on_free)(struct evict *ev, uint32_t slab);
    /* The slab to reclaim, or EVICT_NONE. */
    uint32_t (*victim)(struct evict *ev);
    /* Optional: copy this live block of the victim forward? */
    bool (*reinsert)(struct evict *ev, uint32_t slab, const struct index_entry *e);
};

/* Policy state: the shared slab list (oldest first) and the policy's own. */
struct evict {
    const struct evict_ops *ops;
    uint32_t nslabs;
    uint32_t *prev, *next;   /* per slab; EVICT_NONE ends */
    uint32_t head, tail;
    uint32_t count;
    uint32_t param;          /* policy parameter (reinsert: hits needed) */
    bool hinted;             /* the engine marks finished chains
                                (ADMIT_HINT_DONE seen): admission keeps
                                only blocks of live chains */
    void *priv;
};

/* Policy by name, or NULL. */
const struct evict_ops *evict_find(const char *name);
/* Names of all policies, NULL-terminated. */
const char *const *evict_names(void);

int evict_init(struct evict *ev, const struct evict_ops *ops, uint32_t nslabs);
void evict_deinit(struct evict *ev);

/* The doubly linked slab list policies share (kc_evict.c). */
void evict_list_append(struct evict *ev, uint32_t s);
void evict_list_unlink(struct evict *ev, uint32_t s);
bool evict_list_has(const struct evict *ev, uint32_t s);

static inline void evict_on_write(struct evict *ev, uint32_t s) { ev->ops->on_write(ev, s); }
static inline void evict_on_free(struct evict *ev, uint32_t s) { ev->ops->on_free(ev, s); }
static inline uint32_t evict_victim(struct evict *ev) { return ev->ops->victim(ev); }
static inline void evict_on_read(struct evict *ev, uint32_t s, const struct index_entry *e)
{
    ev->ops->on_read(ev, s, e);
}
static inline void evict_on_insert(struct evict *ev, uint32_t s, uint32_t pos)
{
    if (ev->ops->on_insert != NULL)
        ev->ops->on_insert(ev, s, pos);
}
static inline void evict_on_delete(struct evict *ev, uint32_t s)
{
    if (ev->ops->on_delete != NULL)
        ev->ops->on_delete(ev, s);
}
static inline void evict_on_prefix(struct evict *ev, size_t found, size_t n)
{
    if (ev->ops->on_prefix != NULL)
        ev->ops->on_prefix(ev, found, n);
}

#endif
