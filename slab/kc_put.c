/*
 * kc_put.c - putting blocks and tombstones: room in the open memory slab,
 * which takes items of any size and namespace (store_put_reserve), the item header and the index
 * entry at commit, the admission policy's say (store_put_reserve_hint), and
 * a delete's tombstone.
 */
#include "slab/kc_store_int.h"

#include <string.h>

/* True if ms can take one more item of a value of len bytes. */
static bool mslab_fits(const struct store *st, const struct mslab *ms, uint32_t len)
{
    return !ms->full && fmt_slab_fits(st->slab_size, (uint64_t)ms->used + fmt_item_span(len),
                                      ms->nitems + 1);
}

/*
 * Room for an item of a value of len bytes in the open memory slab (opening
 * another if it has no room left: the full one is written once quiet). Its
 * header gets the length at once, so the items of a slab can be walked
 * (summary) even if the put is aborted. *off is the item's offset.
 */
static int mslab_reserve(struct store *st, uint32_t len, struct mslab **out, uint32_t *off)
{
    struct mslab *ms = st->open_mem != 0 ? &st->mem[st->open_mem - 1] : NULL;

    if (ms != NULL && !mslab_fits(st, ms, len)) {
        ms->full = true;
        st->open_mem = 0;
        if (ms->writers == 0)
            mslab_flush(st, ms);
        ms = NULL;
    }
    if (ms == NULL) {
        int rc = mslab_open(st, &ms);
        if (rc < 0)
            return rc;
    }
    *off = ms->used;
    ms->used += fmt_item_span(len);
    ms->nitems++;
    ms->writers++;
    *(struct fmt_item *)(ms->buf + *off) = (struct fmt_item){ .len = len };
    if (!mslab_fits(st, ms, len)) {
        /* No room for another item of this size: written as soon as it is
         * quiet, as a slab of one block size is when full (a smaller item
         * that would still fit is not waited for). */
        ms->full = true;
        st->open_mem = 0;
    }
    *out = ms;
    return 0;
}

/* Something with sequence seq was written into slab s (a tombstone of
 * order `tomb`, or a value if tomb is 0). */
static void slab_seq_note(struct store *st, uint32_t s, uint64_t seq, uint64_t tomb)
{
    struct slabinfo *si = &st->slabs[s];

    if (tomb != 0 && tomb < si->tomb_min)
        si->tomb_min = tomb;

    KC_ASSERT(seq > si->seq);
    if (seq > si->seq_hi)
        si->seq_hi = seq;
    if (seq < si->seq_first)
        si->seq_first = seq;
    if (!tomb && seq < si->item_min)
        si->item_min = seq;
}

int store_put_reserve(struct store *st, uint64_t ns, const struct kc_key *key,
                      uint32_t chain_pos, uint32_t len, struct store_wslot *ws)
{
    struct nsent *n = store_ns_find(st, ns);
    struct mslab *ms;
    uint32_t off;
    int rc;

    if (n == NULL)
        return KC_ENONS;
    if (!st->reinserting && !st->forwarding)
        store_seq_reserve(st, false);
    slab_reclaim_maybe(st);
    if (n->block_bytes != 0 && len != n->block_bytes) {
        st->st.puts_rejected++;
        return KC_EBADSIZE;
    }
    if (len > fmt_max_value(st->slab_size)) {
        st->st.puts_rejected++;
        return KC_ETOOBIG;
    }
    if (index_find(&st->ix, key->lo, key->hi, (uint32_t)(n - st->ns)) != NULL) {
        st->st.puts_exists++;
        return KC_EXISTS;
    }
    if ((rc = mslab_reserve(st, len, &ms, &off)) < 0) {
        if (rc != KC_EBUSY)
            st->st.puts_rejected++;
        return rc;
    }
    *ws = (struct store_wslot){
        .buf = ms->buf + off + FMT_ITEM_HDR,
        .len = len, .ns = ns, .key = *key, .chain_pos = chain_pos,
        .slab = ms->slab, .slot = off / FMT_ALIGN, .mslab = (uint32_t)(ms - st->mem),
        .epoch = n->epoch };
    return 0;
}

int store_tomb_write(struct store *st, uint64_t ns, const struct kc_key *key, uint64_t order)
{
    struct nsent *n = store_ns_find(st, ns);
    struct mslab *ms;
    uint32_t off;
    int rc;

    if (n == NULL)
        return KC_ENONS;
    if (order == 0) {
        store_seq_reserve(st, false);
        slab_reclaim_maybe(st);
    }
    if ((rc = mslab_reserve(st, 0, &ms, &off)) < 0)
        return rc;
    struct fmt_item *h = (struct fmt_item *)(ms->buf + off);
    uint64_t seq = store_seq_take(st);
    *h = (struct fmt_item){ .key_lo = key->lo, .key_hi = key->hi, .ns = ns, .seq = seq,
                            .ns_epoch = n->epoch };
    fmt_tomb_seal(h, order != 0 ? order : seq);
    struct slab_tomb t = { key->lo, key->hi, ns, order != 0 ? order : seq };
    slab_seq_note(st, ms->slab, seq, order != 0 ? order : seq);
    if (!slab_tomb_add(&st->slabs[ms->slab], &t))
        store_log(st, 1, "out of memory for the tombstones of slab %u", ms->slab);
    st->st.tombstones++;
    mslab_writer_done(st, ms);
    return 0;
}

/* True if a put of len bytes in ns would wait for a slab whose
 * invalidation is in flight (the open memory slab has no room for it). */
static bool mslab_would_wait(const struct store *st, uint64_t ns, uint32_t len)
{
    const struct nsent *n = store_ns_find((struct store *)st, ns);

    if (n == NULL || st->nfree > 0 || st->invalidating == 0)
        return false;
    return st->open_mem == 0 || !mslab_fits(st, &st->mem[st->open_mem - 1], len);
}

int store_put_reserve_hint(struct store *st, uint64_t ns, const struct kc_key *key,
                           uint32_t chain_pos, uint32_t hints, uint32_t len,
                           struct store_wslot *ws)
{
    /* Asked first: a key already present (rare: engines put what they
     * missed) is told apart only when refused, so an admitted put looks it
     * up once. */
    bool room = st->st.evictions == 0 && st->nfree > 2;   /* never full yet */
    if (mslab_would_wait(st, ns, len))
        return KC_EBUSY;   /* before asking: an answer may change the policy */
    if (!admit_check(&st->adm, key, chain_pos, hints, room)) {
        struct nsent *n = store_ns_find(st, ns);
        if (n == NULL || index_find(&st->ix, key->lo, key->hi, (uint32_t)(n - st->ns)) == NULL) {
            if (n == NULL)
                return KC_ENONS;
            if ((hints & ADMIT_HINT_DONE) && st->adm.ops->hints)
                st->ev.hinted = true;   /* admission acts on hints */
            st->st.puts_skipped++;
            return KC_SKIPPED;
        }
    }
    return store_put_reserve(st, ns, key, chain_pos, len, ws);
}

/* The item header of a reserved slot. */
static struct fmt_item *wslot_hdr(struct store_wslot *ws)
{
    return (struct fmt_item *)((uint8_t *)ws->buf - FMT_ITEM_HDR);
}

void store_put_abort(struct store *st, struct store_wslot *ws)
{
    *wslot_hdr(ws) = (struct fmt_item){ .len = ws->len };   /* a hole: recovery skips it */
    mslab_writer_done(st, &st->mem[ws->mslab]);
}

int store_put_commit(struct store *st, struct store_wslot *ws)
{
    struct mslab *ms = &st->mem[ws->mslab];
    struct nsent *n = store_ns_find(st, ws->ns);
    struct fmt_item *h = wslot_hdr(ws);
    struct index_entry *e, stale;
    int rc;

    if (n == NULL || n->epoch != ws->epoch) {   /* dropped since the reservation
                                                   (and maybe opened again) */
        store_put_abort(st, ws);
        return KC_ENONS;
    }
    KC_ASSERT(ms->state == MS_OPEN && ms->writers > 0 && ms->slab == ws->slab);
    uint32_t s = ws->slab, nsidx = (uint32_t)(n - st->ns);
    uint64_t seq = store_seq_take(st);
    *h = (struct fmt_item){ .len = ws->len, .key_lo = ws->key.lo, .key_hi = ws->key.hi,
                            .ns = ws->ns, .seq = seq,
                            .chain_pos = ws->chain_pos, .ns_epoch = n->epoch };
    if (st->cfg.simulate) {
        h->magic = FMT_ITEM_MAGIC;   /* no value checksum: nothing is read */
    } else {
        fmt_item_seal(h, ws->buf);
    }
    uint32_t aux = n->block_bytes != 0 ? ws->chain_pos : ws->len;
    for (int tries = 0;; tries++) {
        rc = index_insert(&st->ix, ws->key.lo, ws->key.hi, nsidx, s, ws->slot,
                          st->slab_gen[s], aux, &e, &stale);
        if (rc >= 0 || tries == 8)
            break;
        /* The index is full (blocks smaller than min_item_size): sweep out
         * stale entries, grow it (up to what the device holds in the
         * smallest class), and if that is not enough reclaim a slab. */
        if (tries == 0) {
            index_sweep(&st->ix, st->ix.cap, NULL, NULL, NULL);
        } else if (tries == 1 && st->ix.used >= st->ix.limit && store_index_grow(st) == 0) {
            continue;
        } else {
            uint32_t v = evict_victim(&st->ev);
            if (v == EVICT_NONE || v == s || !slab_reclaim(st, v))
                break;
            index_sweep(&st->ix, st->ix.cap, NULL, NULL, NULL);
        }
    }
    if (rc != 0) {
        h->magic = 0;
        mslab_writer_done(st, ms);
        if (rc == 1) {
            st->st.puts_exists++;
            return KC_EXISTS;
        }
        st->st.puts_rejected++;
        return KC_ENOSPC;
    }
    (void)stale;   /* a stale entry left no counts behind */
    slab_seq_note(st, s, seq, 0);
    slab_count_add(st, s, nsidx, ws->len);
    st->st.puts++;
    st->st.put_bytes += ws->len;
    evict_on_insert(&st->ev, s, ws->chain_pos);
    mslab_writer_done(st, ms);
    return 0;
}

int store_put(struct store *st, uint64_t ns, struct store_put_item *items, size_t n)
{
    struct store_wslot ws;

    if (store_ns_find(st, ns) == NULL)
        return KC_ENONS;
    for (size_t i = 0; i < n; i++) {
        struct store_put_item *it = &items[i];
        int rc;
        for (;;) {
            rc = store_put_reserve(st, ns, &it->key, it->chain_pos, it->len, &ws);
            if (rc != KC_EBUSY || !store_busy(st))
                break;
            if (store_poll(st, true) < 0)
                break;
        }
        if (rc == 0) {
            memcpy(ws.buf, it->data, it->len);
            rc = store_put_commit(st, &ws);
        }
        it->status = rc;
    }
    return 0;
}
