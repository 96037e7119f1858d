/*
 * kc_rebuild.c - rebuilding the index from the device at open time.
 *
 * The recovery scan (ssd/kc_recover.c) hands over every valid slab header
 * and every intact item and tombstone header that belongs to its slab.
 * Copies of one key can be in several slabs (an overwrite is a delete and a
 * put, a reinserted block is copied forward, a tombstone too), and slabs
 * arrive in no useful order, so the newest copy of each key is chosen in a
 * table of its own first: the copy with the highest order (the item's
 * sequence number, or a tombstone's delete sequence) wins, whatever its slab.
 * Only then is the index filled, with the winners that are not tombstones;
 * it is made larger if they do not fit, so that recovery never drops a block
 * for want of room. The table lives only while the store opens.
 */
#include "slab/kc_store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ssd/kc_recover.h"

/* The newest copy of one key found so far. */
struct rent {
    uint64_t key_lo, key_hi;
    uint64_t order;        /* 0: unused entry */
    uint64_t old_item;     /* highest order of an older value copy (0: none) */
    uint64_t old_tomb;     /* highest order of an older tombstone (0: none) */
    uint32_t slab, unit;   /* where: slab, offset / FMT_ALIGN */
    uint32_t aux;          /* chain position, or the length (variable size) */
    uint32_t len;
    uint16_t nsidx;
    bool tomb;
};

/* The table of newest copies: open addressing, linear probing, grown at
 * 3/4 load. */
struct rtab {
    struct rent *tab;
    uint64_t cap, used;
    int err;               /* -ENOMEM once an allocation failed */
};

/* What the scan callbacks need. */
struct rebuild {
    struct store *st;
    struct rtab t;
    uint64_t max_seq;      /* highest sequence seen */
    uint64_t ncover;       /* keys that need a covering tombstone */
};

/* Home of a key in a table of cap entries. */
static uint64_t rtab_home(uint64_t cap, uint64_t lo, uint64_t hi, uint32_t ns)
{
    uint64_t h = lo ^ (hi * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)ns * 0xc2b2ae3d27d4eb4fULL);
    h ^= h >> 31;
    return (uint64_t)(((unsigned __int128)h * cap) >> 64);
}

/* The entry of (key, ns), or the free entry where it goes. */
static struct rent *rtab_slot(struct rent *tab, uint64_t cap, uint64_t lo, uint64_t hi,
                              uint32_t ns)
{
    uint64_t i = rtab_home(cap, lo, hi, ns);

    while (tab[i].order != 0 &&
           !(tab[i].key_lo == lo && tab[i].key_hi == hi && tab[i].nsidx == ns))
        i = i + 1 == cap ? 0 : i + 1;
    return &tab[i];
}

/* Double the table (or make the first one). */
static int rtab_grow(struct rtab *t)
{
    uint64_t cap = t->cap ? t->cap * 2 : 4096;
    struct rent *tab = calloc(cap, sizeof(*tab));

    if (tab == NULL)
        return -ENOMEM;
    for (uint64_t i = 0; i < t->cap; i++)
        if (t->tab[i].order != 0)
            *rtab_slot(tab, cap, t->tab[i].key_lo, t->tab[i].key_hi, t->tab[i].nsidx) = t->tab[i];
    free(t->tab);
    t->tab = tab;
    t->cap = cap;
    return 0;
}

/* Fold a copy that lost into the older-copy marks of the winner e. */
static void rent_older(struct rent *e, uint64_t order, bool tomb)
{
    uint64_t *m = tomb ? &e->old_tomb : &e->old_item;
    if (order > *m)
        *m = order;
}

/* Offer a copy: it wins if it is newer than the one already known (at the
 * same order, a value beats the tombstone that covers what is below it). */
static void rtab_offer(struct rtab *t, const struct rent *r)
{
    if (t->err != 0)
        return;
    if ((t->used + 1) * 4 > t->cap * 3 && (t->err = rtab_grow(t)) != 0)
        return;
    struct rent *e = rtab_slot(t->tab, t->cap, r->key_lo, r->key_hi, r->nsidx);
    if (e->order == 0) {
        t->used++;
        *e = *r;
        return;
    }
    if (e->order > r->order || (e->order == r->order && (!e->tomb || r->tomb))) {
        rent_older(e, r->order, r->tomb);
        return;
    }
    struct rent lost = *e;
    *e = *r;
    e->old_item = lost.old_item;
    e->old_tomb = lost.old_tomb;
    rent_older(e, lost.order, lost.tomb);
}

/* Recovery: a valid slab header; take the slab back as written. */
static bool rebuild_slab(void *arg, const struct fmt_slab *h)
{
    struct rebuild *rb = arg;
    struct store *st = rb->st;
    if (h->seq_hi < h->seq || h->slab_id >= st->nslabs)
        return false;
    struct slabinfo *s = &st->slabs[h->slab_id];
    /* Value items in it are newer than its opening (item_min is a bound). */
    *s = (struct slabinfo){ .seq = h->seq, .seq_hi = h->seq_hi, .seq_first = UINT64_MAX,
                            .tomb_min = UINT64_MAX,
                            .item_min = h->seq + 1, .nitems = h->nitems, .used = h->used,
                            .state = STORE_SLAB_SSD };
    st->nfree--;
    /* Slabs arrive oldest first, so the policy sees them in write order. */
    evict_on_write(&st->ev, h->slab_id);
    if (h->seq_hi > rb->max_seq) {
        rb->max_seq = h->seq_hi;
        st->write_head = (h->slab_id + 1) % st->nslabs;
    }
    st->rec.slabs_valid++;
    return true;
}

/* Recovery: an intact item or tombstone of its slab; offer it. */
static void rebuild_item(void *arg, const struct fmt_slab *h, uint32_t unit,
                         const struct fmt_item *it)
{
    struct rebuild *rb = arg;
    struct store *st = rb->st;
    struct nsent *n = store_ns_find(st, it->ns);
    bool tomb = fmt_item_is_tomb(it);

    if (n == NULL || n->epoch != it->ns_epoch ||
        (!tomb && n->block_bytes != 0 && it->len != n->block_bytes)) {
        st->rec.items_skipped++;
        return;
    }
    if (tomb) {
        /* Kept whether or not it wins: it may still hide an older copy in
         * another slab (see slab_tomb_needed). */
        struct slab_tomb t = { it->key_lo, it->key_hi, it->ns, fmt_item_order(it) };
        if (!slab_tomb_add(&st->slabs[h->slab_id], &t))
            rb->t.err = -ENOMEM;
        st->rec.tombstones++;
    }
    uint32_t aux = n->block_bytes != 0 ? it->chain_pos : it->len;
    struct rent r = { .key_lo = it->key_lo, .key_hi = it->key_hi, .order = fmt_item_order(it),
                      .slab = h->slab_id, .unit = unit, .aux = aux, .len = it->len,
                      .nsidx = (uint16_t)(n - st->ns), .tomb = tomb };
    rtab_offer(&rb->t, &r);
}

/* Index the winners that are blocks; grow the index first if needed. */
static int rebuild_index(struct rebuild *rb)
{
    struct store *st = rb->st;
    uint64_t blocks = 0;

    for (uint64_t i = 0; i < rb->t.cap; i++)
        blocks += rb->t.tab[i].order != 0 && !rb->t.tab[i].tomb;
    if (blocks > st->ix.limit) {
        uint64_t cap = blocks + blocks / 8 + blocks / 16;
        store_log(st, 2, "%llu blocks on the device: the index grows from %llu to %llu entries",
                  (unsigned long long)blocks, (unsigned long long)st->ix.cap,
                  (unsigned long long)cap);
        if (index_grow(&st->ix, cap) < 0)
            return -ENOMEM;
        uint64_t step = 32 * (st->ix.cap / st->nslabs);
        st->sweep_step = step < 1024 ? 1024 : step;
    }
    for (uint64_t i = 0; i < rb->t.cap; i++) {
        const struct rent *r = &rb->t.tab[i];
        struct index_entry *e, stale;
        if (r->order == 0)
            continue;
        if (r->tomb) {
            st->rec.items_deleted++;
            continue;
        }
        if (index_insert(&st->ix, r->key_lo, r->key_hi, r->nsidx, r->slab, r->unit,
                         st->slab_gen[r->slab], r->aux, &e, &stale) != 0) {
            st->rec.items_skipped++;   /* not reached: the index was sized */
            continue;
        }
        if (r->old_item > r->old_tomb)
            rb->ncover++;   /* an older copy no tombstone hides: see rebuild_cover */
        struct slabinfo *si = &st->slabs[r->slab];
        if (r->order < si->item_min)
            si->item_min = r->order;
        slab_count_add(st, r->slab, r->nsidx, r->len);
        st->rec.items++;
        st->rec.bytes += r->len;
    }
    return 0;
}

/*
 * A key whose newest copy is a value, with an older value copy that no
 * tombstone between them hides (a crash kept the put but lost the delete
 * before it), gets a tombstone of the winner's order: it hides everything
 * older, loses to the winner, and lives as long as needed (the lifetime
 * rule of tombstones), so that evicting the winner later cannot bring the
 * older copy back.
 */
static int rebuild_cover(struct rebuild *rb)
{
    struct store *st = rb->st;

    for (uint64_t i = 0; i < rb->t.cap && rb->ncover > 0; i++) {
        const struct rent *r = &rb->t.tab[i];
        if (r->order == 0 || r->tomb || r->old_item <= r->old_tomb)
            continue;
        struct kc_key k = { r->key_lo, r->key_hi };
        int rc;
        for (;;) {
            rc = store_tomb_write(st, st->ns[r->nsidx].id, &k, r->order);
            if (rc != KC_EBUSY || !store_busy(st))
                break;
            if (store_poll(st, true) < 0)
                break;
        }
        if (rc < 0)
            return -EIO;
        st->rec.tombstones_added++;
    }
    return 0;
}

int store_recover(struct store *st, char *err, size_t errlen)
{
    struct recover_geo geo = { .data_off = FMT_DATA_OFF, .slab_size = st->slab_size,
                               .nslabs = st->nslabs, .store_id = st->store_id };
    struct recover_ops ops = { .slab = rebuild_slab, .item = rebuild_item };
    struct rebuild rb = { .st = st };
    struct recover_result res;
    struct timespec t0, t1;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = recover_scan(&st->dev, &geo, &ops, &rb, &res);
    if (rc == 0)
        rc = rb.t.err;
    if (rc == 0)
        rc = rebuild_index(&rb);
    if (rb.max_seq >= st->next_seq)
        st->next_seq = rb.max_seq + 1;
    if (rc == 0 && rb.ncover > 0)
        rc = rebuild_cover(&rb);
    free(rb.t.tab);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    st->rec.seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    st->rec.slabs_scanned = res.slabs_scanned;
    st->rec.reads = res.reads;
    st->rec.slabs_bad = res.slabs_bad;
    st->rec.items_skipped += res.items_bad;
    if (rb.max_seq >= st->next_seq)
        st->next_seq = rb.max_seq + 1;
    if (rc < 0) {
        snprintf(err, errlen, "recovery: %s", strerror(-rc));
        return rc == -ENOMEM ? KC_ENOMEM : KC_EIO;
    }
    return 0;
}
