/*
 * kc_mslab.c - memory slabs: the DRAM write buffers, one open at a time
 * taking items of any size and namespace (appended), written to their
 * device slab with the slab's summary and header at its end (flush), and
 * kept afterwards as the DRAM copy of that slab until reused.
 *
 * A memory slab is tied to its device slab from the moment it is opened, so
 * index entries name the device slab and the item's offset from the start
 * and never move: a flush changes no entry. After the write the memory slab stays the
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
    /* The items' writes, and one for the summary and header. */
    uint32_t nchunks = (st->slab_size + STORE_CHUNK - 1) / STORE_CHUNK + 1;

    st->mem = calloc(st->nmem, sizeof(*st->mem));
    /* A slab is queued once until the policy has it: nslabs entries suffice. */
    st->fq = calloc(st->nslabs, sizeof(*st->fq));
    if (st->mem == NULL || st->fq == NULL)
        return KC_ENOMEM;
    for (uint32_t m = 0; m < st->nmem; m++) {
        struct mslab *ms = &st->mem[m];
        ms->st = st;
        ms->slab = SLAB_NONE;
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
    KC_ASSERT(m < st->nmem && st->mem[m].pins > 0);
    st->mem[m].pins--;
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
        KC_ASSERT(best->pins == 0 && best->writers == 0);
        slab_detach_mem(st, best->slab);
        *out = best;
        return 0;
    }
    for (uint32_t m = 0; m < st->nmem; m++) {
        struct mslab *ms = &st->mem[m];
        if (ms->state == MS_OPEN && ms->writers == 0 && ms->nitems > 0) {
            mslab_flush(st, ms);
            break;
        }
    }
    return KC_EBUSY;
}

/* Open the memory slab puts go into, tied to a fresh device slab. */
int mslab_open(struct store *st, struct mslab **out)
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
    KC_ASSERT(st->slabs[s].state == STORE_SLAB_FREE && st->slabs[s].nlive == 0 &&
              st->slabs[s].mem == 0 && ms->pins == 0 && ms->writers == 0);
    uint64_t seq = store_seq_take(st);
    st->slabs[s] = (struct slabinfo){ .seq = seq, .seq_hi = seq, .seq_first = UINT64_MAX,
                                      .tomb_min = UINT64_MAX,
                                      .item_min = UINT64_MAX,
                                      .state = STORE_SLAB_OPEN, .mem = m + 1 };
    ms->slab = s;
    ms->state = MS_OPEN;
    ms->full = false;
    ms->used = 0;
    ms->nitems = 0;
    ms->writers = 0;
    ms->tick = ++st->tick;
    ms->flush_err = 0;
    st->open_mem = m + 1;
    *out = ms;
    return 0;
}

/* All writes of a flush are done: the slab is on the device, or lost. */
static void mslab_flush_done(struct dev_io *io, void *arg)
{
    struct mslab *ms = arg;
    struct store *st = ms->st;

    KC_ASSERT(ms->state == MS_FLUSHING && ms->chunks > 0 && st->flushing > 0);
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
        /* The blocks were acknowledged: their loss is counted (io_errors
         * makes the daemon's Health say degraded) and logged, and they
         * leave the index, so nothing serves them from a slab that is not
         * on the device. */
        st->st.io_errors++;
        st->st.blocks_lost += st->slabs[s].nlive;
        if (ms->flush_err == -ENOSPC)
            st->st.nospace_errors++;
        store_log(st, 0, "write of slab %u failed (%s%s): its %u acknowledged blocks are lost",
                  s, kc_strerror(ms->flush_err),
                  ms->flush_err == -ENOSPC ? ": the file system is full" : "",
                  st->slabs[s].nlive);
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

/* Write the summary (a copy of every item header, in order) and the slab
 * header at the end of ms's buffer. */
static void mslab_seal(struct store *st, struct mslab *ms)
{
    uint32_t s = ms->slab;
    uint8_t *sum = ms->buf + fmt_sum_off(st->slab_size, ms->nitems);
    uint64_t off = 0;

    memset(sum, 0, fmt_sum_bytes(ms->nitems) + FMT_SLAB_HDR);
    for (uint32_t i = 0; i < ms->nitems; i++) {
        const struct fmt_item *h = (const void *)(ms->buf + off);
        memcpy(sum + (uint64_t)i * FMT_ITEM_HDR, h, FMT_ITEM_HDR);
        off += fmt_item_span(h->len);
    }
    KC_ASSERT(off == ms->used);
    struct fmt_slab *h = (struct fmt_slab *)(ms->buf + fmt_hdr_off(st->slab_size));
    *h = (struct fmt_slab){ .magic = FMT_SLAB_MAGIC, .version = FMT_VERSION,
                            .slab_id = s, .store_id = st->store_id,
                            .seq = st->slabs[s].seq, .nitems = ms->nitems, .used = ms->used,
                            .seq_hi = st->slabs[s].seq_hi,
                            .sum_csum = st->cfg.simulate ? 0 : fmt_sum_csum(sum, ms->nitems) };
    fmt_slab_seal(h);
}

/* Submit one write of a flush: len bytes of ms's buffer at off. */
static void mslab_write(struct store *st, struct mslab *ms, uint32_t i, uint64_t off,
                        uint64_t len)
{
    struct dev_io *io = &ms->ios[i];

    *io = (struct dev_io){ .op = DEV_WRITE, .buf = ms->buf + off, .len = (uint32_t)len,
                           .off = FMT_DATA_OFF + (uint64_t)ms->slab * st->slab_size + off,
                           .cb = mslab_flush_done, .arg = ms };
    dev_submit(&st->dev, io);
}

void mslab_flush(struct store *st, struct mslab *ms)
{
    uint32_t m = (uint32_t)(ms - st->mem);
    uint32_t s = ms->slab;

    if (ms->state != MS_OPEN)
        return;
    KC_ASSERT(ms->writers == 0 && ms->slab != SLAB_NONE &&
              st->slabs[s].state == STORE_SLAB_OPEN && st->slabs[s].mem == m + 1);
    if (st->open_mem == m + 1)
        st->open_mem = 0;
    ms->full = true;
    if (ms->nitems == 0) {
        /* Nothing in it: give both slabs back unwritten. */
        st->slabs[s] = (struct slabinfo){ .state = STORE_SLAB_FREE };
        st->nfree++;
        ms->slab = SLAB_NONE;
        ms->state = MS_FREE;
        return;
    }
    ms->state = MS_FLUSHING;
    st->slabs[s].state = STORE_SLAB_FLUSHING;
    st->slabs[s].nitems = ms->nitems;
    st->slabs[s].used = ms->used;
    mslab_seal(st, ms);
    /* The items in 4 MiB writes, then the summary and header in one. */
    uint64_t len = fmt_align(ms->used), tail = fmt_sum_off(st->slab_size, ms->nitems);
    uint32_t n = (uint32_t)((len + STORE_CHUNK - 1) / STORE_CHUNK);
    ms->chunks = n + 1;
    st->flushing++;
    st->fq[(st->fq_head + st->fq_len) % st->nslabs] = (struct flushq_ent){ .slab = s };
    st->fq_len++;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t off = (uint64_t)i * STORE_CHUNK;
        mslab_write(st, ms, i, off, len - off < STORE_CHUNK ? len - off : STORE_CHUNK);
    }
    mslab_write(st, ms, n, tail, st->slab_size - tail);
}

/* A reservation of ms ended: write it out if it is full and now quiet. */
void mslab_writer_done(struct store *st, struct mslab *ms)
{
    KC_ASSERT(ms->writers > 0 && ms->state == MS_OPEN);
    ms->writers--;
    if (ms->writers == 0 && ms->full)
        mslab_flush(st, ms);
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
