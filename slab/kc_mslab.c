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
void slab_detach_mem(struct store *st, uint32_t s)
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
void slab_ns_release(struct store *st, struct slabinfo *si)
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

/* The next free device slab from the write head, reclaiming one if none.
 * A reclaimed slab is free once its invalidation is written: until then
 * KC_EBUSY (an I/O is in flight, so polling makes progress). */
static int slab_alloc(struct store *st, uint32_t *out)
{
    if (st->nfree == 0) {
        if (st->reclaiming != SLAB_NONE || st->invalidating > 0)
            return KC_EBUSY;   /* room is being made */
        if (st->nretiring > 0 && mslab_flush_blockers(st))
            return KC_EBUSY;   /* copies being written, then a slab frees */
        uint32_t v = evict_victim(&st->ev);
        if (v == EVICT_NONE)
            return st->flushing > 0 ? KC_EBUSY : KC_ENOSPC;
        if (!slab_reclaim(st, v))
            return st->flushing > 0 || st->invalidating > 0 ? KC_EBUSY : KC_ENOSPC;
        if (st->nfree == 0)
            return KC_EBUSY;
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
    uint64_t seq = store_seq_take(st);
    st->slabs[s] = (struct slabinfo){ .seq = seq, .seq_hi = seq, .seq_first = UINT64_MAX,
                                      .tomb_min = UINT64_MAX,
                                      .item_min = UINT64_MAX, .cls = cls,
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
        if (st->nretiring > 0)
            slab_retire_check(st);
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
                            .nitems = ms->next_slot, .seq_hi = st->slabs[s].seq_hi };
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

/* Reclaim ahead of need when two free slabs are left and the next victim
 * has something to copy forward (reinserted blocks, tombstones), so that
 * the copies find room; not while a reclaim is under way. */
static void mslab_maybe_reclaim(struct store *st)
{
    if (st->nfree + st->nretiring > 2 || st->reinserting || st->reclaiming != SLAB_NONE)
        return;
    uint32_t v = st->ev.ops->reinsert != NULL ? 0 : evict_victim(&st->ev);
    if (st->ev.ops->reinsert != NULL || (v != EVICT_NONE && st->slabs[v].ntombs > 0))
        slab_reclaim_ahead(st);
}

/* A slot in the open memory slab of class cls (opening one if needed). */
static int mslab_reserve(struct store *st, uint16_t cls, struct mslab **out, uint32_t *slot)
{
    struct mslab *ms = NULL;

    if (st->class_open[cls] != 0)
        ms = &st->mem[st->class_open[cls] - 1];
    if (ms == NULL || ms->full) {
        int rc = mslab_open(st, cls, &ms);
        if (rc < 0)
            return rc;
    }
    *slot = ms->next_slot++;
    ms->writers++;
    if (ms->next_slot == ms->nslots) {
        ms->full = true;                /* the next put opens another */
        st->class_open[cls] = 0;
    }
    *out = ms;
    return 0;
}

/* A slot in any open memory slab with room, or KC_EBUSY. */
static int mslab_reserve_any(struct store *st, struct mslab **out, uint32_t *slot)
{
    for (uint32_t c = 0; c < CLASS_MAX; c++) {
        if (st->class_open[c] == 0)
            continue;
        struct mslab *ms = &st->mem[st->class_open[c] - 1];
        if (!ms->full)
            return mslab_reserve(st, (uint16_t)c, out, slot);
    }
    return KC_EBUSY;
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
    uint32_t slot;
    uint16_t cls;
    int rc;

    if (n == NULL)
        return KC_ENONS;
    if (!st->reinserting && !st->forwarding)
        store_seq_reserve(st, false);
    mslab_maybe_reclaim(st);
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
    if ((rc = mslab_reserve(st, cls, &ms, &slot)) < 0) {
        if (rc != KC_EBUSY)
            st->st.puts_rejected++;
        return rc;
    }
    *ws = (struct store_wslot){
        .buf = ms->buf + fmt_slot_off(slot, st->classes.slot[cls]) + FMT_ITEM_HDR,
        .len = len, .ns = ns, .key = *key, .chain_pos = chain_pos,
        .slab = ms->slab, .slot = slot, .mslab = (uint32_t)(ms - st->mem),
        .epoch = n->epoch };
    return 0;
}

int store_tomb_write(struct store *st, uint64_t ns, const struct kc_key *key, uint64_t order)
{
    struct nsent *n = store_ns_find(st, ns);
    uint16_t cls = class_geometric(&st->classes, 0);
    struct mslab *ms;
    uint32_t slot;
    int rc;

    if (n == NULL)
        return KC_ENONS;
    if (order == 0) {
        store_seq_reserve(st, false);
        mslab_maybe_reclaim(st);
    }
    if ((rc = mslab_reserve(st, cls, &ms, &slot)) < 0) {
        /* A copy forward cannot wait: any open memory slab with room takes
         * it (a tombstone fits a slot of any class). */
        if (order == 0 || (rc = mslab_reserve_any(st, &ms, &slot)) < 0)
            return rc;
    }
    struct fmt_item *h = (struct fmt_item *)(ms->buf + fmt_slot_off(slot,
                                                                    st->classes.slot[ms->cls]));
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
 * invalidation is in flight (no open memory slab of its class has room). */
static bool mslab_would_wait(const struct store *st, uint64_t ns, uint32_t len)
{
    const struct nsent *n = store_ns_find((struct store *)st, ns);

    if (n == NULL || st->nfree > 0 || st->invalidating == 0)
        return false;
    uint16_t cls = n->block_bytes != 0 ? n->cls
                                       : class_geometric((struct class_table *)&st->classes, len);
    if (cls == CLASS_NONE)
        return false;
    return st->class_open[cls] == 0 || st->mem[st->class_open[cls] - 1].full;
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

    if (n == NULL || n->epoch != ws->epoch) {   /* dropped since the reservation
                                                   (and maybe opened again) */
        store_put_abort(st, ws);
        return KC_ENONS;
    }
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
    uint32_t pos = n->block_bytes != 0 ? ws->chain_pos
                                       : st->classes.slot[ms->cls] - FMT_ITEM_HDR - ws->len;
    for (int tries = 0;; tries++) {
        rc = index_insert(&st->ix, ws->key.lo, ws->key.hi, nsidx, s, ws->slot,
                          st->slab_gen[s], pos, &e, &stale);
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

int store_flush(struct store *st)
{
    for (uint32_t m = 0; m < st->nmem; m++) {
        struct mslab *ms = &st->mem[m];
        if (ms->state == MS_OPEN && ms->writers == 0)
            mslab_flush(st, ms);
    }
    /* Retiring slabs are invalidated as the flushes complete: wait for
     * those writes too. */
    while (store_busy(st))
        if (store_poll(st, true) < 0)
            return KC_EIO;
    return 0;
}

bool mslab_flush_blockers(struct store *st)
{
    for (uint32_t s = 0; s < st->nslabs; s++) {
        if (!st->slabs[s].retiring)
            continue;
        for (uint32_t m = 0; m < st->nmem; m++) {
            struct mslab *ms = &st->mem[m];
            if (ms->state == MS_OPEN && ms->writers == 0 && slab_blocks(st, ms, s))
                mslab_flush(st, ms);
        }
    }
    return st->flushing > 0;
}
