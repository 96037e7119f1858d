/*
 * kc_read.c - reading blocks: batches of gets served from DRAM copies or
 * read from the device with many reads in flight, every device read
 * verified (item header, key, namespace, sequence, value checksum) before
 * its bytes are handed out; match and delete.
 */
#include "slab/kc_store_int.h"
#include "ssd/kc_csum.h"

#include <stdlib.h>
#include <string.h>

/*
 * One device read of a get batch: the 4 KiB aligned range around the item
 * (O_DIRECT), its header skip bytes in. A range of at least two READ_PIECEs
 * is read as pieces of about READ_PIECE bytes (equal, 4 KiB aligned: no tiny
 * tail read), all in flight at once; each piece is fed to a
 * streaming checksum as soon as it and every piece before it have landed
 * (pieces that land early wait), so verifying a 32 MiB value overlaps the
 * reads of its later pieces instead of following the whole read.
 */
struct rd {
    struct store *st;
    struct store_get *g;
    struct store_get_item *it;
    uint64_t seq, seq_hi;/* the slab's sequence range when submitted */
    uint32_t unit;       /* the item's offset in its slab, in FMT_ALIGN units */
    uint32_t skip;       /* bytes of the read before the item header */
    uint32_t len;        /* the value length the index gives */
    uint32_t npieces;    /* ios below, one per piece */
    uint32_t piece;      /* bytes per piece (the last may be shorter) */
    uint32_t landed;     /* pieces completed */
    uint32_t fed;        /* leading pieces verified or fed to the checksum */
    bool failed;         /* a piece failed, or the header did not verify */
    bool io_error;       /* of those, an I/O error (else verification) */
    struct csum_stream *cs;  /* split reads: the value's checksum so far */
    bool *done;          /* per piece: landed */
    struct dev_io io[];  /* the pieces, in order */
};

#define READ_PIECE (1u << 20)   /* bytes per piece of a large read */
/* Keep a free buffer for reuse; false if the list cannot grow. */
static bool rbuf_keep(struct store *st, void *p, uint32_t len, bool arena)
{
    if (st->nrcache == st->caprcache) {
        uint32_t cap = st->caprcache ? st->caprcache * 2 : 64;
        struct rbuf *v = realloc(st->rcache, cap * sizeof(*v));
        if (v == NULL)
            return false;
        st->rcache = v;
        st->caprcache = cap;
    }
    st->rcache[st->nrcache++] = (struct rbuf){ .p = p, .len = len, .arena = arena };
    return true;
}

/* Carve len bytes from the huge-page arena, or NULL if it is used up.
 * O_DIRECT reads into huge pages pin a folio per 2 MiB instead of a page
 * per 4 KiB: on a virtual disk that doubled large reads' speed (fio with
 * --iomem=shmhuge). Arena buffers go back to the free list, never to the
 * system, until the store closes. */
static void *rbuf_carve(struct store *st, uint32_t len)
{
    if (st->arena_left < len) {
        if (st->narena == STORE_ARENA_MAX || len > STORE_ARENA_CHUNK)
            return NULL;
        if (st->arena == NULL && (st->arena = calloc(STORE_ARENA_MAX, sizeof(void *))) == NULL)
            return NULL;
        void *c = st->cfg.mem_alloc ? st->cfg.mem_alloc(st->cfg.mem_arg, STORE_ARENA_CHUNK)
                                    : dev_alloc(STORE_ARENA_CHUNK);   /* mmap, MADV_HUGEPAGE */
        if (c == NULL)
            return NULL;
        st->arena[st->narena++] = c;
        st->arena_cur = c;
        st->arena_left = STORE_ARENA_CHUNK;
    }
    void *p = st->arena_cur;
    st->arena_cur += len;
    st->arena_left -= len;
    return p;
}

void *rbuf_get(struct store *st, uint32_t len)
{
    for (uint32_t i = st->nrcache; i-- > 0;) {
        if (st->rcache[i].len == len) {
            void *p = st->rcache[i].p;
            if (!st->rcache[i].arena)
                st->rcache_bytes -= len;
            st->rcache[i] = st->rcache[--st->nrcache];
            return p;
        }
    }
    void *p = rbuf_carve(st, len);
    return p != NULL ? p : dev_alloc(len);
}

/* True if p was carved from the arena. */
static bool rbuf_in_arena(const struct store *st, const void *p)
{
    for (uint32_t i = 0; i < st->narena; i++)
        if ((const uint8_t *)p >= (const uint8_t *)st->arena[i] &&
            (const uint8_t *)p < (const uint8_t *)st->arena[i] + STORE_ARENA_CHUNK)
            return true;
    return false;
}

void rbuf_put(struct store *st, void *p, uint32_t len)
{
    bool arena = rbuf_in_arena(st, p);

    if (arena || st->rcache_bytes + len <= STORE_RBUF_CACHE) {
        if (rbuf_keep(st, p, len, arena)) {
            if (!arena)
                st->rcache_bytes += len;
            return;
        }
    }
    if (!arena)
        dev_free(p, len);   /* an arena buffer that cannot be listed is lost
                               until close, never freed twice */
}

void rbuf_deinit(struct store *st)
{
    for (uint32_t i = 0; i < st->nrcache; i++)
        if (!st->rcache[i].arena)
            dev_free(st->rcache[i].p, st->rcache[i].len);
    free(st->rcache);
    st->rcache = NULL;
    st->nrcache = st->caprcache = 0;
    for (uint32_t i = 0; i < st->narena && st->cfg.mem_alloc == NULL; i++)
        dev_free(st->arena[i], STORE_ARENA_CHUNK);
    free(st->arena);
    st->arena = NULL;
    st->narena = 0;
}

/* Give back what an item holds (read buffer or memory slab pin). */
static void get_item_release(struct store *st, struct store_get_item *it)
{
    if (it->rbuf != NULL) {
        rbuf_put(st, it->rbuf, it->rlen);
        it->rbuf = NULL;
    }
    if (it->mslab != 0) {
        mslab_unpin(st, it->mslab - 1);
        it->mslab = 0;
    }
}

/* Hand the value at src to the item: copy to dst if given, else point. */
static void get_item_deliver(struct store *st, struct store_get_item *it,
                             const void *src, uint32_t len)
{
    it->len = len;
    if (it->dst != NULL && src != NULL) {
        if (len > it->dst_cap) {
            it->status = KC_EINVAL;
            it->data = NULL;
            get_item_release(st, it);
            return;
        }
        memcpy(it->dst, src, len);
        it->data = it->dst;
        get_item_release(st, it);   /* nothing to hold on to */
    } else {
        it->data = src;
    }
    it->status = KC_OK;
    st->st.hits++;
    st->st.hit_bytes += len;
}

/* Mark an item missed, dropping whatever it held. */
static void get_item_miss(struct store *st, struct store_get_item *it, int status)
{
    get_item_release(st, it);
    it->data = NULL;
    it->len = 0;
    it->status = status;
    st->st.misses++;
}

/* Every item of g has its outcome: settle the prefix and call back. */
static void get_finish(struct store *st, struct store_get *g)
{
    size_t found = 0;

    if (g->prefix) {
        while (found < g->n && g->items[found].status == KC_OK)
            found++;
        for (size_t i = found; i < g->n; i++) {
            if (g->items[i].status == KC_OK) {
                /* Beyond a hole the block is of no use: not returned. */
                st->st.hits--;
                st->st.hit_bytes -= g->items[i].len;
                get_item_miss(st, &g->items[i], KC_MISS);
            }
        }
    } else {
        for (size_t i = 0; i < g->n; i++)
            found += g->items[i].status == KC_OK;
    }
    g->found = found;
    if (g->prefix)
        evict_on_prefix(&st->ev, found, g->n);
    if (g->done != NULL)
        g->done(g, g->arg);
}

/* A block failed verification: drop its index entry (if it still names
 * that item), so it is not read again; a new put can replace it. */
static void get_drop_damaged(struct store *st, uint64_t ns, const struct kc_key *key,
                             uint32_t slab, uint32_t unit)
{
    struct nsent *n = store_ns_find(st, ns);
    if (n == NULL)
        return;
    struct index_entry *e = index_find(&st->ix, key->lo, key->hi, (uint32_t)(n - st->ns));
    if (e != NULL && index_slab(e) == slab && index_unit(e) == unit) {
        slab_forget_entry(st, e);
        index_remove(&st->ix, e);
    }
}

/* The item header of a read landed: true if it is the block the index
 * names (key, namespace, sequence within the slab's, length). */
static bool get_read_hdr_ok(struct store *st, const struct rd *r)
{
    const struct fmt_item *h = (const void *)((const uint8_t *)r->it->rbuf + r->skip);

    (void)st;
    return fmt_item_check_hdr(h) && h->key_lo == r->it->key.lo && h->key_hi == r->it->key.hi &&
           h->ns == r->g->ns && !fmt_item_is_tomb(h) && h->seq > r->seq && h->seq <= r->seq_hi &&
           h->len == r->len;
}

/* Feed the leading pieces that have landed, in order, to the checksum:
 * piece 0 first has its header checked. */
static void get_read_feed(struct store *st, struct rd *r)
{
    const uint8_t *buf = r->it->rbuf;
    const struct fmt_item *h = (const void *)(buf + r->skip);

    while (!r->failed && r->fed < r->npieces && r->done[r->fed]) {
        uint64_t lo = (uint64_t)r->fed * r->piece, hi = lo + r->io[r->fed].len;
        if (r->fed == 0) {
            if (!get_read_hdr_ok(st, r)) {
                r->failed = true;
                break;
            }
            csum_stream_reset(r->cs);
        }
        /* The value's bytes, in the buffer's offsets. */
        uint64_t vlo = r->skip + FMT_ITEM_HDR, vhi = vlo + (uint64_t)h->len;
        if (lo > vlo)
            vlo = lo;
        if (hi < vhi)
            vhi = hi;
        if (vlo < vhi)
            csum_stream_update(r->cs, buf + vlo, vhi - vlo);
        r->fed++;
    }
}

/* Every piece of a read has landed: deliver the block or miss it. */
static void get_read_finish(struct store *st, struct rd *r)
{
    struct store_get_item *it = r->it;
    struct store_get *g = r->g;
    const struct fmt_item *h = (const void *)((const uint8_t *)it->rbuf + r->skip);
    bool ok;

    if (r->io_error) {          /* logged when its piece failed */
        st->st.io_errors++;
        get_item_miss(st, it, KC_MISS);
        goto out;
    }
    if (r->npieces == 1)
        ok = get_read_hdr_ok(st, r) && fmt_item_check_value(h, h + 1);
    else
        ok = !r->failed && r->fed == r->npieces && csum_stream_digest(r->cs) == h->vsum;
    if (!ok) {
        st->st.checksum_failures++;
        store_log(st, 0, "block in slab %u at offset %llu failed verification: "
                  "served as a miss and dropped", it->slab, (unsigned long long)r->io[0].off);
        get_item_miss(st, it, KC_MISS);
        get_drop_damaged(st, g->ns, &it->key, it->slab, r->unit);
    } else {
        get_item_deliver(st, it, h + 1, h->len);
    }
out:
    csum_stream_destroy(r->cs);
    free(r);
    if (--g->pending == 0)
        get_finish(st, g);
}

/* One piece of a device read finished: verify what can be, and finish the
 * read once every piece has landed. */
static void get_read_done(struct dev_io *io, void *arg)
{
    struct rd *r = arg;
    struct store *st = r->st;
    uint32_t k = (uint32_t)(io - r->io);

    KC_ASSERT(k < r->npieces && !r->done[k]);
    r->done[k] = true;
    r->landed++;
    if (io->res < 0) {
        if (!r->io_error)
            store_log(st, 0, "read of slab %u at offset %llu failed: %s", r->it->slab,
                      (unsigned long long)io->off, kc_strerror(io->res));
        r->io_error = r->failed = true;
    } else if (r->npieces > 1) {
        get_read_feed(st, r);
    }
    if (r->landed == r->npieces)
        get_read_finish(st, r);
}

/* Look up one item and serve it from DRAM or start its device read.
 * Returns false if the key is not there. */
static bool get_item_start(struct store *st, struct store_get *g, uint32_t nsidx,
                           struct store_get_item *it)
{
    struct index_entry *e = index_find(&st->ix, it->key.lo, it->key.hi, nsidx);

    if (e == NULL)
        return false;
    uint32_t s = index_slab(e), unit = index_unit(e), len = store_entry_len(st, e);
    struct slabinfo *si = &st->slabs[s];
    uint64_t off = (uint64_t)unit * FMT_ALIGN;

    index_hit(e);
    evict_on_read(&st->ev, s, e);
    it->slab = s;
    it->chain_pos = store_entry_chain_pos(st, e);
    if (si->mem != 0) {
        struct mslab *ms = &st->mem[si->mem - 1];
        const struct fmt_item *h = (const void *)(ms->buf + off);
        if (h->key_lo != it->key.lo || h->key_hi != it->key.hi || h->ns != g->ns) {
            st->st.checksum_failures++;   /* never expected: DRAM is ours */
            store_log(st, 0, "DRAM copy of slab %u at %llu holds another key", s,
                      (unsigned long long)off);
            return false;
        }
        ms->pins++;
        ms->tick = ++st->tick;
        it->mslab = si->mem;
        st->st.hits_mem++;
        get_item_deliver(st, it, h + 1, h->len);
        return true;
    }
    if (st->cfg.simulate) {
        /* No device: a block on it counts as read, with no bytes. */
        get_item_deliver(st, it, NULL, store_entry_len(st, e));
        it->data = NULL;
        return true;
    }
    /* The 4 KiB aligned range around the item (O_DIRECT). */
    uint64_t start = off & ~(uint64_t)(FMT_BLOCK - 1);
    uint32_t rlen = (uint32_t)(fmt_align(off + FMT_ITEM_HDR + len) - start);
    uint32_t np = rlen / READ_PIECE ? rlen / READ_PIECE : 1;
    uint32_t piece = (uint32_t)fmt_align((rlen + np - 1) / np);
    np = (rlen + piece - 1) / piece;
    struct rd *r = calloc(1, sizeof(*r) + np * (sizeof(struct dev_io) + sizeof(bool)));
    struct csum_stream *cs = np > 1 && r != NULL ? csum_stream_create() : NULL;
    it->rbuf = r != NULL && (np == 1 || cs != NULL) ? rbuf_get(st, rlen) : NULL;
    if (it->rbuf == NULL) {
        csum_stream_destroy(cs);
        free(r);
        return false;
    }
    it->rlen = rlen;
    *r = (struct rd){ .st = st, .g = g, .it = it, .seq = si->seq, .seq_hi = si->seq_hi,
                      .unit = unit, .skip = (uint32_t)(off - start), .len = len,
                      .npieces = np, .piece = piece, .cs = cs, .done = (bool *)&r->io[np] };
    uint64_t base = FMT_DATA_OFF + (uint64_t)s * st->slab_size + start;
    for (uint32_t k = 0; k < np; k++) {
        uint32_t at = k * piece;
        r->io[k] = (struct dev_io){ .op = DEV_READ, .buf = (uint8_t *)it->rbuf + at,
                                    .len = rlen - at < piece ? rlen - at : piece,
                                    .off = base + at, .cb = get_read_done, .arg = r };
    }
    it->status = KC_MISS;   /* until verified */
    g->pending++;
    for (uint32_t k = 0; k < np; k++)
        dev_submit(&st->dev, &r->io[k]);
    return true;
}

int store_get_submit(struct store *st, struct store_get *g)
{
    struct nsent *n = store_ns_find(st, g->ns);
    size_t i;

    g->found = 0;
    g->status = 0;
    if (n == NULL) {
        g->status = KC_ENONS;
        for (i = 0; i < g->n; i++)
            g->items[i].status = KC_MISS;
        return KC_ENONS;
    }
    uint32_t nsidx = (uint32_t)(n - st->ns);
    g->pending = 1;   /* held until every item is started */
    for (i = 0; i < g->n; i++) {
        struct store_get_item *it = &g->items[i];
        it->data = NULL;
        it->rbuf = NULL;
        it->mslab = 0;
        it->len = 0;
        it->chain_pos = 0;
        st->st.gets++;
        if (!get_item_start(st, g, nsidx, it)) {
            get_item_miss(st, it, KC_MISS);
            if (g->prefix)
                break;
        }
    }
    if (g->prefix) {
        for (i = i + 1; i < g->n; i++) {
            g->items[i].status = KC_MISS;
            g->items[i].data = NULL;
            g->items[i].rbuf = NULL;
            g->items[i].mslab = 0;
            g->items[i].len = 0;
        }
    }
    if (--g->pending == 0)
        get_finish(st, g);
    return 0;
}

/* done() of a synchronous get: note that the batch ended. */
static void get_sync_done(struct store_get *g, void *arg)
{
    (void)g;
    *(int *)arg = 1;
}

int store_get(struct store *st, struct store_get *g)
{
    void (*done)(struct store_get *, void *) = g->done;
    void *arg = g->arg;
    int finished = 0;

    g->done = get_sync_done;
    g->arg = &finished;
    int rc = store_get_submit(st, g);
    while (rc == 0 && !finished)
        if (store_poll(st, true) < 0)
            break;
    g->done = done;
    g->arg = arg;
    if (rc == 0 && done != NULL)
        done(g, arg);
    return rc;
}

void store_get_release(struct store *st, struct store_get *g)
{
    for (size_t i = 0; i < g->n; i++) {
        get_item_release(st, &g->items[i]);
        g->items[i].data = NULL;
    }
}

size_t store_match_where(struct store *st, uint64_t ns, const struct kc_key *keys, size_t n,
                         uint8_t *where)
{
    struct nsent *e = store_ns_find(st, ns);
    size_t i = 0;

    if (e == NULL)
        return 0;
    for (; i < n; i++) {
        const struct index_entry *x = index_find(&st->ix, keys[i].lo, keys[i].hi,
                                                 (uint32_t)(e - st->ns));
        if (x == NULL)
            break;
        if (where != NULL)
            where[i] = st->slabs[index_slab(x)].mem != 0 ? STORE_WHERE_DRAM : STORE_WHERE_SSD;
    }
    return i;
}

size_t store_match(struct store *st, uint64_t ns, const struct kc_key *keys, size_t n)
{
    return store_match_where(st, ns, keys, n, NULL);
}

/*
 * A delete is written to the log as a tombstone, so that no older copy of
 * the key comes back at a restart (a key that is not indexed has no copy
 * recovery could take back: evicted slabs are invalidated). Waits for a
 * memory slab if none is free, as store_put does.
 */
int store_delete(struct store *st, uint64_t ns, const struct kc_key *key)
{
    struct nsent *n = store_ns_find(st, ns);
    int rc;

    if (n == NULL)
        return KC_ENONS;
    uint32_t nsidx = (uint32_t)(n - st->ns);
    if (index_find(&st->ix, key->lo, key->hi, nsidx) == NULL)
        return KC_MISS;
    for (;;) {
        rc = store_tomb_write(st, ns, key, 0);
        if (rc != KC_EBUSY || !store_busy(st))
            break;
        if (store_poll(st, true) < 0)
            break;
    }
    if (rc < 0) {
        store_log(st, 1, "delete not written (%s): the block stays", kc_strerror(rc));
        return rc;
    }
    /* Making room for the tombstone may have evicted the block. */
    n = store_ns_find(st, ns);
    struct index_entry *e = n != NULL ? index_find(&st->ix, key->lo, key->hi, nsidx) : NULL;
    if (e == NULL)
        return KC_OK;
    evict_on_delete(&st->ev, index_slab(e));
    slab_forget_entry(st, e);
    index_remove(&st->ix, e);
    st->st.deletes++;
    return KC_OK;
}
