/*
 * kc_mslab.c - memory slabs and device slabs: putting blocks into the open
 * memory slab of their class, writing full memory slabs to the next free
 * device slab (log-structured), and reclaiming device slabs when none is
 * free.
 *
 * A memory slab is tied to its device slab from the moment it is opened, so
 * index entries name the device slab and its slot from the start and never
 * move: a flush changes no entry. After the write the memory slab stays the
 * DRAM copy of that device slab (reads are served from it) until it is
 * reused for another, coldest copy first.
 */
#include "slab/kc_store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int mslab_init_all(struct store *st)
{
    uint32_t nchunks = (st->slab_size + STORE_CHUNK - 1) / STORE_CHUNK;

    st->mem = calloc(st->nmem, sizeof(*st->mem));
    /* A slab is queued once until the policy has it: nslabs entries suffice. */
    st->fq = calloc(st->nslabs, sizeof(*st->fq));
    if (st->mem == NULL || st->fq == NULL)
        return KC_ENOMEM;
    for (uint32_t m = 0; m < st->nmem; m++) {
        struct mslab *ms = &st->mem[m];
        ms->st = st;
        ms->slab = SLAB_NONE;
        ms->cls = CLASS_NONE;
        ms->buf = st->cfg.mem_alloc ? st->cfg.mem_alloc(st->cfg.mem_arg, st->slab_size)
                                    : NULL;
        ms->ext = ms->buf != NULL;
        if (!ms->ext)
            ms->buf = mmap(NULL, st->slab_size, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        ms->ios = calloc(nchunks, sizeof(*ms->ios));
        if (ms->buf == MAP_FAILED || ms->ios == NULL) {
            if (ms->buf == MAP_FAILED)
                ms->buf = NULL;
            return KC_ENOMEM;
        }
        if (!st->cfg.simulate) {
            /* Huge pages (best effort), then touch it all now rather than
             * on the first puts. A slab write then pins 16 folios per
             * 32 MiB instead of 8192 pages: on a virtual disk that halved
             * the time of large transfers. */
            madvise(ms->buf, st->slab_size, MADV_HUGEPAGE);
            memset(ms->buf, 0, st->slab_size);
        }
    }
    return 0;
}

void mslab_deinit_all(struct store *st)
{
    if (st->mem == NULL)
        return;
    for (uint32_t m = 0; m < st->nmem; m++) {
        if (st->mem[m].buf != NULL && !st->mem[m].ext)
            munmap(st->mem[m].buf, st->slab_size);
        free(st->mem[m].ios);
    }
    free(st->mem);
    st->mem = NULL;
    free(st->fq);
    st->fq = NULL;
}

/* Cut the tie between device slab s and its DRAM copy, if any. */
static void slab_detach_mem(struct store *st, uint32_t s)
{
    if (st->slabs[s].mem == 0)
        return;
    struct mslab *ms = &st->mem[st->slabs[s].mem - 1];
    ms->slab = SLAB_NONE;
    if (ms->state == MS_CLEAN)
        ms->state = MS_FREE;   /* reusable once unpinned */
    st->slabs[s].mem = 0;
}

void mslab_unpin(struct store *st, uint32_t m)
{
    st->mem[m].pins--;
}

/* The namespace counter of slab s for nsidx, made if missing. */
static struct slab_ns *slab_ns_get(struct slabinfo *si, uint32_t nsidx, bool make)
{
    for (uint32_t i = 0; i < si->nnsv; i++)
        if (si->nsv[i].nsidx == nsidx)
            return &si->nsv[i];
    if (!make)
        return NULL;
    if (si->nnsv == si->capnsv) {
        uint32_t cap = si->capnsv ? si->capnsv * 2 : 2;
        struct slab_ns *v = realloc(si->nsv, cap * sizeof(*v));
        if (v == NULL)
            return NULL;
        si->nsv = v;
        si->capnsv = cap;
    }
    si->nsv[si->nnsv] = (struct slab_ns){ .nsidx = nsidx };
    return &si->nsv[si->nnsv++];
}

/* A live block of bytes in namespace nsidx now lives in slab s. Counts are
 * kept per slab and namespace, so that reclaiming a whole slab updates the
 * namespaces' counts at once, without visiting index entries. */
void slab_count_add(struct store *st, uint32_t s, uint32_t nsidx, uint64_t bytes)
{
    struct slabinfo *si = &st->slabs[s];
    struct slab_ns *c = slab_ns_get(si, nsidx, true);
    struct nsent *n = &st->ns[nsidx];

    if (c == NULL) {
        store_log(st, 1, "out of memory for the counts of slab %u", s);
    } else {
        c->items++;
        c->bytes += bytes;
    }
    si->nlive++;
    si->bytes += bytes;
    n->items++;
    n->bytes += bytes;
    st->st.items++;
    st->st.bytes += bytes;
}

void slab_forget_entry(struct store *st, const struct index_entry *e)
{
    uint32_t s = index_slab(e);
    struct slabinfo *si = &st->slabs[s];
    struct nsent *n = &st->ns[index_ns(e)];
    struct slab_ns *c = slab_ns_get(si, index_ns(e), false);
    uint64_t b = store_entry_len(st, e);

    if (c != NULL && c->items > 0) {
        c->items--;
        c->bytes -= b;
    }
    si->nlive--;
    si->bytes -= b;
    n->items--;
    n->bytes -= b;
    st->st.items--;
    st->st.bytes -= b;
}

/* Every block of slab s leaves its namespace's counts. */
static void slab_ns_release(struct store *st, struct slabinfo *si)
{
    for (uint32_t i = 0; i < si->nnsv; i++) {
        struct nsent *n = &st->ns[si->nsv[i].nsidx];
        n->items -= si->nsv[i].items;
        n->bytes -= si->nsv[i].bytes;
    }
    free(si->nsv);
    si->nsv = NULL;
    si->nnsv = si->capnsv = 0;
}

void slab_ns_free_all(struct store *st)
{
    for (uint32_t s = 0; s < st->nslabs; s++) {
        free(st->slabs[s].nsv);
        st->slabs[s].nsv = NULL;
    }
}

/* Reclaim device slab s, already off the policy's books. */
static void slab_drop(struct store *st, uint32_t s)
{
    struct slabinfo *si = &st->slabs[s];

    slab_detach_mem(st, s);
    st->st.items -= si->nlive;
    st->st.bytes -= si->bytes;
    slab_ns_release(st, si);
    /* Every index entry into s is stale from here on. */
    st->slab_gen[s]++;
    *si = (struct slabinfo){ .cls = CLASS_NONE, .state = STORE_SLAB_FREE };
    st->nfree++;
    index_sweep(&st->ix, st->sweep_step, NULL, NULL, NULL);
}

void slab_reclaim(struct store *st, uint32_t s)
{
    evict_on_free(&st->ev, s);
    st->st.evictions++;
    st->st.evicted_items += st->slabs[s].nlive;
    slab_drop(st, s);
}

/* The next free device slab from the write head, reclaiming one if none. */
static int slab_alloc(struct store *st, uint32_t *out)
{
    if (st->nfree == 0) {
        if (st->reclaiming != SLAB_NONE)
            return KC_EBUSY;   /* a victim is being read back to make room */
        uint32_t v = evict_victim(&st->ev);
        if (v == EVICT_NONE)
            return st->flushing > 0 ? KC_EBUSY : KC_ENOSPC;
        slab_reclaim(st, v);
    }
    for (uint32_t i = 0; i < st->nslabs; i++) {
        uint32_t s = (st->write_head + i) % st->nslabs;
        if (st->slabs[s].state == STORE_SLAB_FREE) {
            st->write_head = (s + 1) % st->nslabs;
            st->nfree--;
            *out = s;
            return 0;
        }
    }
    return KC_ENOSPC;  /* not reached: nfree counts free slabs */
}

/* A memory slab to fill: a free one, else the coldest unpinned DRAM copy.
 * If none, starts writing an open one so that it can be reused later. */
static int mslab_take(struct store *st, struct mslab **out)
{
    struct mslab *best = NULL;

    for (uint32_t m = 0; m < st->nmem; m++) {
        struct mslab *ms = &st->mem[m];
        if (ms->pins > 0)
            continue;
        if (ms->state == MS_FREE) {
            *out = ms;
            return 0;
        }
        if (ms->state == MS_CLEAN && (best == NULL || ms->tick < best->tick))
            best = ms;
    }
    if (best != NULL) {
        slab_detach_mem(st, best->slab);
        *out = best;
        return 0;
    }
    for (uint32_t m = 0; m < st->nmem; m++) {
        struct mslab *ms = &st->mem[m];
        if (ms->state == MS_OPEN && ms->writers == 0 && ms->next_slot > 0) {
            mslab_flush(st, ms);
            break;
        }
    }
    return KC_EBUSY;
}

/* Open a memory slab for class cls, tied to a fresh device slab. */
static int mslab_open(struct store *st, uint16_t cls, struct mslab **out)
{
    struct mslab *ms;
    uint32_t s;
    int rc;

    if ((rc = mslab_take(st, &ms)) < 0)
        return rc;
    ms->state = MS_FREE;
    if ((rc = slab_alloc(st, &s)) < 0)
        return rc;
    uint32_t m = (uint32_t)(ms - st->mem);
    st->slabs[s] = (struct slabinfo){ .seq = st->next_seq++, .cls = cls,
                                      .state = STORE_SLAB_OPEN, .mem = m + 1 };
    ms->slab = s;
    ms->cls = cls;
    ms->state = MS_OPEN;
    ms->full = false;
    ms->next_slot = 0;
    ms->nslots = fmt_nslots(st->slab_size, st->classes.slot[cls]);
    ms->writers = 0;
    ms->tick = ++st->tick;
    ms->flush_err = 0;
    st->class_open[cls] = m + 1;
    *out = ms;
    return 0;
}

/* All writes of a flush are done: the slab is on the device, or lost. */
static void mslab_flush_done(struct dev_io *io, void *arg)
{
    struct mslab *ms = arg;
    struct store *st = ms->st;

    if (io->res < 0 && ms->flush_err == 0)
        ms->flush_err = io->res;
    if (--ms->chunks > 0)
        return;
    st->flushing--;
    uint32_t s = ms->slab;
    struct flushq_ent *q = NULL;
    for (uint32_t i = 0; i < st->fq_len; i++)
        if (st->fq[(st->fq_head + i) % st->nslabs].slab == s)
            q = &st->fq[(st->fq_head + i) % st->nslabs];
    if (ms->flush_err < 0) {
        st->st.io_errors++;
        store_log(st, 0, "write of slab %u failed (%s): its %u blocks are dropped",
                  s, kc_strerror(ms->flush_err), st->slabs[s].nlive);
        if (q != NULL)
            q->done = -1;
        slab_drop(st, s);
        ms->state = MS_FREE;
        ms->slab = SLAB_NONE;
    } else {
        st->slabs[s].state = STORE_SLAB_SSD;
        ms->state = MS_CLEAN;
        st->st.flushes++;
        if (q != NULL)
            q->done = 1;
    }
    /* Hand written slabs to the policy in the order their flushes began. */
    while (st->fq_len > 0 && st->fq[st->fq_head].done != 0) {
        struct flushq_ent *h = &st->fq[st->fq_head];
        if (h->done == 1)
            evict_on_write(&st->ev, h->slab);
        st->fq_head = (st->fq_head + 1) % st->nslabs;
        st->fq_len--;
    }
}

void mslab_flush(struct store *st, struct mslab *ms)
{
    uint32_t m = (uint32_t)(ms - st->mem);
    uint32_t s = ms->slab;
    uint32_t slot_size = st->classes.slot[ms->cls];

    if (ms->state != MS_OPEN)
        return;
    if (st->class_open[ms->cls] == m + 1)
        st->class_open[ms->cls] = 0;
    ms->full = true;
    if (ms->next_slot == 0) {
        /* Nothing in it: give both slabs back unwritten. */
        st->slabs[s] = (struct slabinfo){ .cls = CLASS_NONE, .state = STORE_SLAB_FREE };
        st->nfree++;
        ms->slab = SLAB_NONE;
        ms->state = MS_FREE;
        return;
    }
    ms->state = MS_FLUSHING;
    st->slabs[s].state = STORE_SLAB_FLUSHING;
    st->slabs[s].nitems = ms->next_slot;
    memset(ms->buf, 0, FMT_SLAB_HDR);
    struct fmt_slab *h = (struct fmt_slab *)ms->buf;
    *h = (struct fmt_slab){ .magic = FMT_SLAB_MAGIC, .version = FMT_VERSION,
                            .slab_id = s, .store_id = st->store_id,
                            .seq = st->slabs[s].seq, .slot_size = slot_size,
                            .nitems = ms->next_slot };
    fmt_slab_seal(h);
    uint64_t len = fmt_slot_off(ms->next_slot, slot_size);
    uint64_t base = FMT_DATA_OFF + (uint64_t)s * st->slab_size;
    uint32_t n = (uint32_t)((len + STORE_CHUNK - 1) / STORE_CHUNK);
    ms->chunks = n;
    st->flushing++;
    st->fq[(st->fq_head + st->fq_len) % st->nslabs] = (struct flushq_ent){ .slab = s };
    st->fq_len++;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t off = (uint64_t)i * STORE_CHUNK;
        struct dev_io *io = &ms->ios[i];
        *io = (struct dev_io){ .op = DEV_WRITE, .buf = ms->buf + off,
                               .len = (uint32_t)(len - off < STORE_CHUNK ? len - off : STORE_CHUNK),
                               .off = base + off, .cb = mslab_flush_done, .arg = ms };
        dev_submit(&st->dev, io);
    }
}

/* A reservation of ms ended: write it out if it is full and now quiet. */
static void mslab_writer_done(struct store *st, struct mslab *ms)
{
    ms->writers--;
    if (ms->writers == 0 && ms->full)
        mslab_flush(st, ms);
}

int store_put_reserve(struct store *st, uint64_t ns, const struct kc_key *key,
                      uint32_t chain_pos, uint32_t len, struct store_wslot *ws)
{
    struct nsent *n = store_ns_find(st, ns);
    struct mslab *ms = NULL;
    uint16_t cls;
    int rc;

    if (n == NULL)
        return KC_ENONS;
    if (st->nfree <= 2 && st->ev.ops->reinsert != NULL && !st->reinserting &&
        st->reclaiming == SLAB_NONE)
        slab_reclaim_ahead(st);
    if (n->block_bytes != 0 && len != n->block_bytes) {
        st->st.puts_rejected++;
        return KC_EBADSIZE;
    }
    cls = n->block_bytes != 0 ? n->cls : class_geometric(&st->classes, len);
    if (cls == CLASS_NONE) {
        st->st.puts_rejected++;
        return KC_ETOOBIG;
    }
    if (index_find(&st->ix, key->lo, key->hi, (uint32_t)(n - st->ns)) != NULL) {
        st->st.puts_exists++;
        return KC_EXISTS;
    }
    if (st->class_open[cls] != 0)
        ms = &st->mem[st->class_open[cls] - 1];
    if (ms == NULL || ms->full) {
        rc = mslab_open(st, cls, &ms);
        if (rc < 0) {
            if (rc != KC_EBUSY)
                st->st.puts_rejected++;
            return rc;
        }
    }
    uint32_t slot = ms->next_slot++;
    ms->writers++;
    if (ms->next_slot == ms->nslots) {
        ms->full = true;                /* the next put opens another */
        st->class_open[cls] = 0;
    }
    *ws = (struct store_wslot){
        .buf = ms->buf + fmt_slot_off(slot, st->classes.slot[cls]) + FMT_ITEM_HDR,
        .len = len, .ns = ns, .key = *key, .chain_pos = chain_pos,
        .slab = ms->slab, .slot = slot, .mslab = (uint32_t)(ms - st->mem) };
    return 0;
}

int store_put_reserve_hint(struct store *st, uint64_t ns, const struct kc_key *key,
                           uint32_t chain_pos, uint32_t hints, uint32_t len,
                           struct store_wslot *ws)
{
    /* Asked first: a key already present (rare: engines put what they
     * missed) is told apart only when refused, so an admitted put looks it
     * up once. */
    bool room = st->st.evictions == 0 && st->nfree > 2;   /* never full yet */
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
    wslot_hdr(ws)->magic = 0;   /* a hole: recovery skips it */
    mslab_writer_done(st, &st->mem[ws->mslab]);
}

int store_put_commit(struct store *st, struct store_wslot *ws)
{
    struct mslab *ms = &st->mem[ws->mslab];
    struct nsent *n = store_ns_find(st, ws->ns);
    struct fmt_item *h = wslot_hdr(ws);
    struct index_entry *e, stale;
    int rc;

    if (n == NULL) {            /* dropped since the reservation */
        store_put_abort(st, ws);
        return KC_ENONS;
    }
    uint32_t s = ws->slab, nsidx = (uint32_t)(n - st->ns);
    *h = (struct fmt_item){ .len = ws->len, .key_lo = ws->key.lo, .key_hi = ws->key.hi,
                            .ns = ws->ns, .seq = st->slabs[s].seq,
                            .chain_pos = ws->chain_pos, .ns_epoch = n->epoch };
    if (st->cfg.simulate) {
        h->magic = FMT_ITEM_MAGIC;   /* no value checksum: nothing is read */
    } else {
        fmt_item_seal(h, ws->buf);
    }
    uint32_t pos = n->block_bytes != 0 ? ws->chain_pos
                                       : st->classes.slot[ms->cls] - FMT_ITEM_HDR - ws->len;
    for (int tries = 0;; tries++) {
        rc = index_insert(&st->ix, ws->key.lo, ws->key.hi, nsidx, s, ws->slot,
                          st->slab_gen[s], pos, &e, &stale);
        if (rc >= 0 || tries == 8)
            break;
        /* The index is full (blocks smaller than min_item_size): sweep out
         * stale entries, and if that is not enough reclaim a slab. */
        if (tries == 0) {
            index_sweep(&st->ix, st->ix.cap, NULL, NULL, NULL);
        } else {
            uint32_t v = evict_victim(&st->ev);
            if (v == EVICT_NONE)
                break;
            slab_reclaim(st, v);
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

int store_flush(struct store *st)
{
    for (uint32_t m = 0; m < st->nmem; m++) {
        struct mslab *ms = &st->mem[m];
        if (ms->state == MS_OPEN && ms->writers == 0)
            mslab_flush(st, ms);
    }
    while (store_busy(st))
        if (store_poll(st, true) < 0)
            return KC_EIO;
    return 0;
}

/* A block of a victim chosen to be copied forward. */
struct fwd {
    struct kc_key key;
    uint64_t ns;
    uint32_t chain_pos;
    uint32_t len;
    uint32_t slot;        /* in the victim: copies go in slot order */
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

/* Walk the image of victim v (DRAM copy or read back), forwarding the
 * live blocks the policy picks. */
static void slab_forward_image(struct store *st, uint32_t v, const uint8_t *img, bool verify)
{
    struct slabinfo *si = &st->slabs[v];
    uint32_t slot_size = st->classes.slot[si->cls];

    for (uint32_t slot = 0; slot < si->nitems && si->nlive > 0; slot++) {
        const struct fmt_item *h = (const void *)(img + fmt_slot_off(slot, slot_size));
        if (!fmt_item_check_hdr(h) || h->seq != si->seq)
            continue;
        struct nsent *n = store_ns_find(st, h->ns);
        if (n == NULL)
            continue;
        struct index_entry *e = index_find(&st->ix, h->key_lo, h->key_hi, (uint32_t)(n - st->ns));
        if (e == NULL || index_slab(e) != v || index_slot(e) != slot ||
            !st->ev.ops->reinsert(&st->ev, v, e))
            continue;
        if (verify && !fmt_item_check_value(h, h + 1)) {
            st->st.checksum_failures++;
            continue;
        }
        struct fwd f = { .key = { h->key_lo, h->key_hi }, .ns = h->ns,
                         .chain_pos = h->chain_pos, .len = h->len, .src = h + 1 };
        slab_forward(st, e, &f);
    }
}

/* Order of copies: by slot in the victim, as when walking its image. */
static int fwd_cmp(const void *a, const void *b)
{
    const struct fwd *x = a, *y = b;
    return x->slot < y->slot ? -1 : x->slot > y->slot;
}

/* Simulation: no image; find the victim's live entries in the index, then
 * offer them to the policy and copy them in slot order, one at a time, as
 * slab_forward_image does: a policy with a budget then picks the same
 * blocks as with a device. */
static void slab_forward_sim(struct store *st, uint32_t v)
{
    struct slabinfo *si = &st->slabs[v];
    uint32_t max = si->nlive, n = 0;
    struct fwd *fw = calloc(max ? max : 1, sizeof(*fw));

    if (fw == NULL)
        return;
    for (uint64_t i = 0; i < st->ix.cap && n < max; i++) {
        struct index_entry *e = &st->ix.tab[i];
        if (!index_live(&st->ix, e) || index_slab(e) != v)
            continue;
        const struct nsent *ns = &st->ns[index_ns(e)];
        fw[n++] = (struct fwd){ .key = { e->key_lo, e->key_hi }, .ns = ns->id,
                                .chain_pos = store_entry_chain_pos(st, e),
                                .slot = index_slot(e), .len = store_entry_len(st, e) };
    }
    qsort(fw, n, sizeof(*fw), fwd_cmp);
    for (uint32_t k = 0; k < n; k++) {
        struct nsent *ns = store_ns_find(st, fw[k].ns);
        struct index_entry *e = ns ? index_find(&st->ix, fw[k].key.lo, fw[k].key.hi,
                                                (uint32_t)(ns - st->ns)) : NULL;
        if (e != NULL && index_slab(e) == v && st->ev.ops->reinsert(&st->ev, v, e))
            slab_forward(st, e, &fw[k]);
    }
    free(fw);
}

/* The read-back of a victim finished: forward its picked blocks, drop it. */
static void slab_reclaim_read_done(struct dev_io *io, void *arg)
{
    struct store *st = arg;
    uint32_t v = st->reclaiming;

    st->reclaiming = SLAB_NONE;     /* the copies may need a free slab */
    st->reinserting = true;
    st->st.evictions++;
    if (io->res == 0) {
        slab_forward_image(st, v, st->scratch, true);
    } else {
        st->st.io_errors++;
        store_log(st, 0, "reading back slab %u for reinsertion failed: %s", v,
                  kc_strerror(io->res));
    }
    st->st.evicted_items += st->slabs[v].nlive;
    slab_drop(st, v);
    st->reinserting = false;
}

/*
 * Reclaim the policy's victim ahead of need (two free slabs left), copying
 * forward the live blocks its reinsert() picks, so the copies have room. A
 * victim with a DRAM copy (or in simulation) is handled at once; otherwise it
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
    if (si->nlive > 0 && !st->cfg.simulate && si->mem == 0) {
        if (st->scratch == NULL)
            st->scratch = dev_alloc(st->slab_size);
        if (st->scratch != NULL) {
            st->reclaiming = v;
            st->reclaim_io = (struct dev_io){
                .op = DEV_READ, .bg = true, .buf = st->scratch,
                .len = (uint32_t)fmt_slot_off(si->nitems, st->classes.slot[si->cls]),
                .off = FMT_DATA_OFF + (uint64_t)v * st->slab_size,
                .cb = slab_reclaim_read_done, .arg = st };
            dev_submit(&st->dev, &st->reclaim_io);
            return;
        }
    }
    st->reinserting = true;
    st->st.evictions++;
    if (si->nlive > 0) {
        if (st->cfg.simulate) {
            slab_forward_sim(st, v);
        } else if (si->mem != 0) {
            struct mslab *pinned = &st->mem[si->mem - 1];
            pinned->pins++;
            slab_forward_image(st, v, pinned->buf, false);
            pinned->pins--;
        }
    }
    st->st.evicted_items += st->slabs[v].nlive;
    slab_drop(st, v);
    st->reinserting = false;
}
