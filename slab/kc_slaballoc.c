/*
 * kc_slaballoc.c - device-slab allocation: the next free slab from the
 * write head (log-structured), reclaiming the policy's victim when none is
 * free, and reclaiming ahead of need when the next victim has something to
 * copy forward.
 */
#include "slab/kc_store_int.h"

/* The next free device slab from the write head, reclaiming one if none.
 * A reclaimed slab is free once its invalidation is written: until then
 * KC_EBUSY (an I/O is in flight, so polling makes progress). */
/* True if some slab in use holds tombstones. */
static bool slab_any_tombs(const struct store *st)
{
    for (uint32_t s = 0; s < st->nslabs; s++)
        if (st->slabs[s].ntombs > 0)
            return true;
    return false;
}

int slab_alloc(struct store *st, uint32_t *out)
{
    /* While slabs hold tombstones, the last free slab is kept for copies
     * forward: the tombstones of a victim must be copied before it can go,
     * and all puts share one open memory slab, full when a slab is needed. */
    uint32_t keep = !st->forwarding && !st->reinserting && st->nfree <= 1 &&
                    slab_any_tombs(st) ? 1 : 0;
    if (st->nfree <= keep) {
        if (st->reclaiming != SLAB_NONE || st->invalidating > 0)
            return KC_EBUSY;   /* room is being made */
        if (st->nretiring > 0 && mslab_flush_blockers(st))
            return KC_EBUSY;   /* copies being written, then a slab frees */
        uint32_t v = evict_victim(&st->ev);
        bool done = v != EVICT_NONE && slab_reclaim(st, v);
        if (!done && st->nfree == 0)
            return st->flushing > 0 || st->invalidating > 0 ? KC_EBUSY : KC_ENOSPC;
        if (done && st->nfree <= keep)
            return KC_EBUSY;   /* its invalidation is in flight */
    }
    for (uint32_t i = 0; i < st->nslabs; i++) {
        uint32_t s = (st->write_head + i) % st->nslabs;
        if (st->slabs[s].state == STORE_SLAB_FREE) {
            KC_ASSERT(st->slabs[s].nlive == 0 && st->slabs[s].mem == 0 &&
                      !st->slabs[s].retiring && !st->slabs[s].invalidating);
            st->write_head = (s + 1) % st->nslabs;
            st->nfree--;
            *out = s;
            return 0;
        }
    }
    return KC_ENOSPC;  /* not reached: nfree counts free slabs */
}

/* Reclaim ahead of need when two free slabs are left and the next victim
 * has something to copy forward (reinserted blocks, tombstones), so that
 * the copies find room; not while a reclaim is under way. */
void slab_reclaim_maybe(struct store *st)
{
    if (st->nfree + st->nretiring > 2 || st->reinserting || st->reclaiming != SLAB_NONE)
        return;
    uint32_t v = st->ev.ops->reinsert != NULL ? 0 : evict_victim(&st->ev);
    if (st->ev.ops->reinsert != NULL || (v != EVICT_NONE && st->slabs[v].ntombs > 0))
        slab_reclaim_ahead(st);
}
