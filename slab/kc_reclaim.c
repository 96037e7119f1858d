/*
 * kc_reclaim.c - taking device slabs back: eviction of a victim, copying
 * forward what must survive it (the blocks a policy reinserts, and the
 * tombstones that still hide an older copy elsewhere), and invalidating the
 * victim on the device once those copies are durable, so that recovery never
 * sees its contents again.
 *
 * Order of a reclaim (the argument is in docs/storage.md):
 *   1. the victim leaves the policy's books and the index (its generation
 *      is bumped: every entry into it is stale);
 *   2. copies go into open memory slabs, with new sequence numbers (a
 *      tombstone keeps its delete order);
 *   3. the victim waits (retiring) until no memory slab that may hold a
 *      copy is still unwritten;
 *   4. a barrier (fdatasync) makes the copies and earlier invalidations
 *      durable, then the victim's header block is overwritten with zeros;
 *   5. when that write completes the slab is free.
 */
#include "slab/kc_store_int.h"

#include <stdlib.h>
#include <string.h>

/* Keep a tombstone of slab s in its list; false if out of memory. */
bool slab_tomb_add(struct slabinfo *si, const struct slab_tomb *t)
{
    if (si->ntombs == si->captombs) {
        uint32_t cap = si->captombs ? si->captombs * 2 : 8;
        struct slab_tomb *v = realloc(si->tombs, cap * sizeof(*v));
        if (v == NULL)
            return false;
        si->tombs = v;
        si->captombs = cap;
    }
    si->tombs[si->ntombs++] = *t;
    return true;
}

void reclaim_deinit(struct store *st)
{
    if (st->slabs != NULL)
        for (uint32_t s = 0; s < st->nslabs; s++)
            free(st->slabs[s].tombs);
    free(st->inval_io);
    st->inval_io = NULL;
    dev_free(st->zero_blk, FMT_BLOCK);
    st->zero_blk = NULL;
}

/* Take device slab s out of service: its DRAM copy, its counts and every
 * index entry into it go (its generation is bumped). It is still on the
 * device and not free: see slab_finish. */
static void slab_unhook(struct store *st, uint32_t s)
{
    struct slabinfo *si = &st->slabs[s];

    KC_ASSERT(si->state != STORE_SLAB_FREE && !si->retiring && !si->invalidating);
    KC_ASSERT(st->st.items >= si->nlive && st->st.bytes >= si->bytes);
    slab_detach_mem(st, s);
    st->st.items -= si->nlive;
    st->st.bytes -= si->bytes;
    slab_ns_release(st, si);
    free(si->tombs);
    /* Every index entry into s is stale from here on. The index keeps 12
     * bits of generation: every 2048 reclaims of a slab a full sweep
     * removes its stale entries, before its generation can come round to
     * theirs again and make them look live. */
    st->slab_gen[s]++;
    if ((st->slab_gen[s] & (INDEX_GEN_MASK >> 1)) == 0)
        index_sweep(&st->ix, st->ix.cap, NULL, NULL, NULL);
    *si = (struct slabinfo){ .seq = si->seq, .seq_hi = si->seq_hi, .seq_first = UINT64_MAX,
                             .tomb_min = UINT64_MAX,
                             .item_min = si->item_min, .state = STORE_SLAB_SSD };
    index_sweep(&st->ix, st->sweep_step, NULL, NULL, NULL);
}

/* The invalidation write of a slab completed: the slab is free. */
static void slab_inval_done(struct dev_io *io, void *arg)
{
    struct store *st = arg;
    uint32_t s = (uint32_t)(io - st->inval_io);

    KC_ASSERT(st->invalidating > 0 && st->slabs[s].invalidating);
    st->invalidating--;
    if (io->res < 0) {
        st->st.io_errors++;
        store_log(st, 0, "invalidating slab %u failed (%s): until it is written again, "
                  "a restart may find its blocks", s, kc_strerror(io->res));
    }
    st->slabs[s] = (struct slabinfo){ .state = STORE_SLAB_FREE };
    st->nfree++;
}

/* Overwrite the header block of unhooked slab s with zeros, so recovery
 * never takes its contents back; it is free when the write completes. */
static void slab_invalidate(struct store *st, uint32_t s)
{
    struct slabinfo *si = &st->slabs[s];

    si->retiring = false;
    /* In simulation too (the write completes at the next poll), so that a
     * simulated store waits where one on a device does. */
    if ((st->inval_io == NULL &&
         (st->inval_io = calloc(st->nslabs, sizeof(*st->inval_io))) == NULL) ||
        (st->zero_blk == NULL && (st->zero_blk = dev_alloc(FMT_BLOCK)) == NULL)) {
        store_log(st, 0, "out of memory: slab %u freed without invalidation", s);
        *si = (struct slabinfo){ .state = STORE_SLAB_FREE };
        st->nfree++;
        return;
    }
    si->invalidating = true;
    st->invalidating++;
    st->st.invalidations++;
    st->inval_io[s] = (struct dev_io){ .op = DEV_WRITE, .buf = st->zero_blk, .len = FMT_BLOCK,
                                       .off = FMT_DATA_OFF + (uint64_t)s * st->slab_size +
                                              fmt_hdr_off(st->slab_size),
                                       .cb = slab_inval_done, .arg = st };
    dev_submit(&st->dev, &st->inval_io[s]);
}

/*
 * True if memory slab ms, not yet on the device, must be written before
 * retiring slab v is invalidated: it holds copies made out of v, or a
 * tombstone older than v's newest item (while that tombstone is unwritten,
 * v's newer copy of its key may be all that hides an older one elsewhere).
 */
bool slab_blocks(const struct store *st, const struct mslab *ms, uint32_t v)
{
    const struct slabinfo *x, *si = &st->slabs[v];

    if ((ms->state != MS_OPEN && ms->state != MS_FLUSHING) || ms->slab == SLAB_NONE)
        return false;
    x = &st->slabs[ms->slab];
    return x->seq_first <= si->wait_seq || x->tomb_min <= si->seq_hi;
}

/* True if slab v must still wait for a memory slab to be written. */
static bool slab_blocked(const struct store *st, uint32_t v)
{
    for (uint32_t m = 0; m < st->nmem; m++)
        if (slab_blocks(st, &st->mem[m], v))
            return true;
    return false;
}

/*
 * After unhooking victim s: it retires (stays valid on the device) while a
 * memory slab it waits for is unwritten (see slab_blocks); else it is
 * invalidated now, after a barrier if it held tombstones (they were found
 * unneeded because older slabs are invalid: those invalidations must be
 * durable before this slab's tombstones go) or copies were made.
 */
static void slab_finish(struct store *st, uint32_t s, bool copied, bool had_tombs)
{
    struct slabinfo *si = &st->slabs[s];

    si->wait_seq = copied ? st->next_seq - 1 : 0;
    if (slab_blocked(st, s)) {
        si->retiring = true;
        st->nretiring++;
        return;
    }
    if (had_tombs || copied)
        store_barrier(st);
    slab_invalidate(st, s);
}

void slab_retire_check(struct store *st)
{
    bool barrier = false;

    for (uint32_t s = 0; s < st->nslabs && st->nretiring > 0; s++) {
        struct slabinfo *si = &st->slabs[s];
        if (!si->retiring || slab_blocked(st, s))
            continue;
        if (!barrier) {
            store_barrier(st);   /* what it waited for is durable before it goes */
            barrier = true;
        }
        st->nretiring--;
        slab_invalidate(st, s);
    }
}

void slab_drop(struct store *st, uint32_t s)
{
    bool had_tombs = st->slabs[s].ntombs > 0;

    slab_unhook(st, s);
    slab_finish(st, s, false, had_tombs);
}

/*
 * Copy forward the tombstones of victim v that may still hide an older copy
 * of their key: one whose order is above the lowest value-item sequence of
 * any other slab still on the device (or being written) may; the others
 * cannot, since every older copy of their key is gone. Copies keep their
 * order. Sets *copied if any was made; false if one could not be (then v
 * must stay).
 */
static bool slab_tombs_forward(struct store *st, uint32_t v, bool *copied)
{
    struct slabinfo *si = &st->slabs[v];
    uint64_t oldest = UINT64_MAX;

    if (si->ntombs == 0)
        return true;
    if (st->forwarding)
        return false;            /* not from inside another forward */
    for (uint32_t s = 0; s < st->nslabs; s++)
        if (s != v && st->slabs[s].state != STORE_SLAB_FREE && st->slabs[s].item_min < oldest)
            oldest = st->slabs[s].item_min;
    st->forwarding = true;
    bool ok = true;
    for (uint32_t i = 0; i < si->ntombs && ok; i++) {
        const struct slab_tomb *t = &si->tombs[i];
        if (t->order < oldest || store_ns_find(st, t->ns) == NULL) {
            st->st.tomb_expired++;
            continue;
        }
        struct kc_key k = { t->key_lo, t->key_hi };
        ok = store_tomb_write(st, t->ns, &k, t->order) == 0;
        if (ok) {
            st->st.tomb_copies++;
            *copied = true;
        }
    }
    st->forwarding = false;
    if (!ok)
        st->st.tomb_waits++;   /* no room right now: v stays, tried later */
    return ok;
}

bool slab_reclaim(struct store *st, uint32_t s)
{
    bool copied = false, had_tombs = st->slabs[s].ntombs > 0;

    evict_on_free(&st->ev, s);        /* off the books: not picked again */
    if (!slab_tombs_forward(st, s, &copied)) {
        evict_on_write(&st->ev, s);   /* back on them, as if written now */
        return false;
    }
    st->st.evictions++;
    st->st.evicted_items += st->slabs[s].nlive;
    slab_unhook(st, s);
    slab_finish(st, s, copied, had_tombs);
    return true;
}

/* A block of a victim chosen to be copied forward. */
struct fwd {
    struct kc_key key;
    uint64_t ns;
    uint32_t chain_pos;
    uint32_t len;
    uint32_t unit;        /* in the victim: copies go in item order */
    const void *src;      /* value, or NULL in simulation */
};

/* Copy one block forward: its old entry goes, a new copy is put. */
static void slab_forward(struct store *st, struct index_entry *e, const struct fwd *f)
{
    struct store_wslot ws;

    slab_forget_entry(st, e);
    index_remove(&st->ix, e);
    int rc = store_put_reserve(st, f->ns, &f->key, f->chain_pos, f->len, &ws);
    if (rc == 0) {
        if (f->src != NULL)
            memcpy(ws.buf, f->src, f->len);
        rc = store_put_commit(st, &ws);
    }
    if (rc == 0) {
        st->st.puts--;           /* a copy, not a put */
        st->st.put_bytes -= f->len;
        st->st.reinserts++;
        st->st.reinsert_bytes += f->len;
    } else {
        st->st.reinsert_dropped++;
    }
}

/* Walk the image of victim v (DRAM copy or read back whole) through its
 * summary, forwarding the live blocks the policy picks. A read-back image
 * is checked: its header and summary checksums, and each item's header
 * against its summary copy and its value checksum. */
static void slab_forward_image(struct store *st, uint32_t v, const uint8_t *img, bool verify)
{
    struct slabinfo *si = &st->slabs[v];
    const struct fmt_slab *hdr = (const void *)(img + fmt_hdr_off(st->slab_size));
    const uint8_t *sum = img + fmt_sum_off(st->slab_size, si->nitems);
    uint64_t off = 0;

    if (verify && (!fmt_slab_check(hdr) || hdr->nitems != si->nitems ||
                   hdr->sum_csum != fmt_sum_csum(sum, si->nitems))) {
        st->st.checksum_failures++;
        store_log(st, 0, "slab %u read back for reinsertion has a damaged summary", v);
        return;
    }
    for (uint32_t i = 0; i < si->nitems && si->nlive > 0; i++) {
        const struct fmt_item *h = (const void *)(sum + (uint64_t)i * FMT_ITEM_HDR);
        const struct fmt_item *item = (const void *)(img + off);
        uint32_t unit = (uint32_t)(off / FMT_ALIGN);
        off += fmt_item_span(h->len);
        if (off > si->used)
            break;
        if (!fmt_item_check_hdr(h) || fmt_item_is_tomb(h) || h->seq <= si->seq ||
            h->seq > si->seq_hi)
            continue;
        struct nsent *n = store_ns_find(st, h->ns);
        if (n == NULL)
            continue;
        struct index_entry *e = index_find(&st->ix, h->key_lo, h->key_hi, (uint32_t)(n - st->ns));
        if (e == NULL || index_slab(e) != v || index_unit(e) != unit ||
            !st->ev.ops->reinsert(&st->ev, v, e))
            continue;
        if (verify && (memcmp(item, h, FMT_ITEM_HDR) != 0 ||
                       !fmt_item_check_value(item, item + 1))) {
            st->st.checksum_failures++;
            continue;
        }
        struct fwd f = { .key = { h->key_lo, h->key_hi }, .ns = h->ns,
                         .chain_pos = h->chain_pos, .len = h->len, .src = item + 1 };
        slab_forward(st, e, &f);
    }
}

/* Order of copies: by offset in the victim, as when walking its image. */
static int fwd_cmp(const void *a, const void *b)
{
    const struct fwd *x = a, *y = b;
    return x->unit < y->unit ? -1 : x->unit > y->unit;
}

/* Simulation: no image; find the victim's live entries in the index, then
 * offer them to the policy and copy them in item order, one at a time, as
 * slab_forward_image does: a policy with a budget then picks the same
 * blocks as with a device. */
static void slab_forward_sim(struct store *st, uint32_t v)
{
    struct slabinfo *si = &st->slabs[v];
    uint32_t max = si->nlive, n = 0;
    struct fwd *fw = calloc(max ? max : 1, sizeof(*fw));

    if (fw == NULL)
        return;
    struct index_entry *e;
    for (uint64_t i = 0; n < max && (e = index_walk(&st->ix, &i)) != NULL;) {
        if (index_slab(e) != v)
            continue;
        const struct nsent *ns = &st->ns[index_ns(e)];
        fw[n++] = (struct fwd){ .key = { e->key_lo, e->key_hi }, .ns = ns->id,
                                .chain_pos = store_entry_chain_pos(st, e),
                                .unit = index_unit(e), .len = store_entry_len(st, e) };
    }
    qsort(fw, n, sizeof(*fw), fwd_cmp);
    for (uint32_t k = 0; k < n; k++) {
        struct nsent *ns = store_ns_find(st, fw[k].ns);
        e = ns ? index_find(&st->ix, fw[k].key.lo, fw[k].key.hi, (uint32_t)(ns - st->ns)) : NULL;
        if (e != NULL && index_slab(e) == v && st->ev.ops->reinsert(&st->ev, v, e))
            slab_forward(st, e, &fw[k]);
    }
    free(fw);
}

/* Forward victim v's needed tombstones, then (with an image, or in
 * simulation) the blocks the policy picks; then it retires or goes. If a
 * tombstone could not be copied, v goes back on the policy's books. */
static void slab_evict_forward(struct store *st, uint32_t v, const uint8_t *img, bool verify)
{
    struct slabinfo *si = &st->slabs[v];
    bool copied = false, had_tombs = si->ntombs > 0;
    uint64_t before = st->st.reinserts;

    st->reinserting = true;
    if (!slab_tombs_forward(st, v, &copied)) {
        evict_on_write(&st->ev, v);
        st->reinserting = false;
        return;
    }
    st->st.evictions++;
    if (si->nlive > 0 && st->ev.ops->reinsert != NULL) {
        if (st->cfg.simulate)
            slab_forward_sim(st, v);
        else if (img != NULL)
            slab_forward_image(st, v, img, verify);
    }
    copied |= st->st.reinserts != before;
    st->st.evicted_items += st->slabs[v].nlive;
    slab_unhook(st, v);
    slab_finish(st, v, copied, had_tombs);
    st->reinserting = false;
}

/* The read-back of a victim finished: forward its picked blocks, drop it. */
static void slab_reclaim_read_done(struct dev_io *io, void *arg)
{
    struct store *st = arg;
    uint32_t v = st->reclaiming;

    st->reclaiming = SLAB_NONE;     /* the copies may need a free slab */
    if (st->closing) {
        evict_on_write(&st->ev, v);  /* nothing is evicted by a close */
        return;
    }
    if (io->res < 0) {
        st->st.io_errors++;
        store_log(st, 0, "reading back slab %u for reinsertion failed: %s", v,
                  kc_strerror(io->res));
    }
    slab_evict_forward(st, v, io->res == 0 ? st->scratch : NULL, true);
}

/*
 * Reclaim the policy's victim ahead of need (two free slabs left), copying
 * forward its needed tombstones and the live blocks the policy's reinsert()
 * picks, so the copies have room. A victim with a DRAM copy (or in
 * simulation, or with no blocks to pick) is handled at once; otherwise it
 * is read back in the background (throttled with the writes, behind reads)
 * and handled when the read completes. Meanwhile it is off the policy's
 * books, and a put that finds no free slab waits (KC_EBUSY).
 */
void slab_reclaim_ahead(struct store *st)
{
    uint32_t v = evict_victim(&st->ev);

    if (v == EVICT_NONE)
        return;
    evict_on_free(&st->ev, v);      /* off the books: not picked again */
    struct slabinfo *si = &st->slabs[v];
    if (si->nlive > 0 && st->ev.ops->reinsert != NULL && !st->cfg.simulate && si->mem == 0) {
        if (st->scratch == NULL)
            st->scratch = dev_alloc(st->slab_size);
        if (st->scratch != NULL) {
            st->reclaiming = v;
            st->reclaim_io = (struct dev_io){
                .op = DEV_READ, .bg = true, .buf = st->scratch,
                .len = st->slab_size,
                .off = FMT_DATA_OFF + (uint64_t)v * st->slab_size,
                .cb = slab_reclaim_read_done, .arg = st };
            dev_submit(&st->dev, &st->reclaim_io);
            return;
        }
    }
    if (si->mem != 0) {
        struct mslab *pinned = &st->mem[si->mem - 1];
        pinned->pins++;
        slab_evict_forward(st, v, pinned->buf, false);
        pinned->pins--;
    } else {
        slab_evict_forward(st, v, NULL, false);
    }
}
