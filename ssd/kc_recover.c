/*
 * kc_recover.c - superblock I/O and the recovery scan (kc_recover.h).
 */
#include "ssd/kc_recover.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int recover_sb_load(struct dev *d, void *buf)
{
    void *other = dev_alloc(FMT_SB_COPY);
    int found = 0, rc;

    if (other == NULL)
        return -ENOMEM;
    rc = dev_rw_sync(d, DEV_READ, buf, FMT_SB_COPY, 0);
    if (rc < 0)
        goto out;
    rc = dev_rw_sync(d, DEV_READ, other, FMT_SB_COPY, FMT_SB_COPY);
    if (rc < 0)
        goto out;
    bool a = fmt_sb_check(buf, FMT_SB_COPY);
    bool b = fmt_sb_check(other, FMT_SB_COPY);
    if (b && (!a || ((struct fmt_sb *)other)->generation > ((struct fmt_sb *)buf)->generation))
        memcpy(buf, other, FMT_SB_COPY);
    found = a || b;
    rc = found;
out:
    dev_free(other, FMT_SB_COPY);
    return rc;
}

int recover_sb_store(struct dev *d, void *buf)
{
    struct fmt_sb *sb = buf;

    fmt_sb_seal(sb);
    return dev_rw_sync(d, DEV_WRITE, buf, FMT_SB_COPY,
                       (sb->generation & 1) * FMT_SB_COPY);
}

/* One read of the scan: a 4 KiB block at a slab header or slot start. */
struct scan_io {
    struct dev_io io;
    struct scan *sc;
    uint32_t idx;       /* slab index in phase 1, valid-slab index in phase 2 */
    uint32_t slot;
};

struct scan {
    struct dev *d;
    const struct recover_geo *geo;
    const struct recover_ops *ops;
    void *arg;
    struct recover_result *res;
    struct fmt_slab *valid;   /* valid slab headers */
    uint32_t nvalid;
    unsigned inflight;
    int err;
};

/* Phase 1 completion: keep the slab header if it belongs to this store. */
static void scan_slab_done(struct dev_io *io, void *arg)
{
    struct scan_io *si = arg;
    struct scan *sc = si->sc;
    const struct fmt_slab *h = io->buf;

    sc->inflight--;
    sc->res->slabs_scanned++;
    if (io->res < 0) {
        sc->err = io->res;
        return;
    }
    uint32_t max_slot = sc->geo->slab_size - FMT_SLAB_HDR;
    if (fmt_slab_check(h) && h->store_id == sc->geo->store_id &&
        h->slab_id == si->idx && h->slot_size >= FMT_BLOCK &&
        h->slot_size % FMT_BLOCK == 0 && h->slot_size <= max_slot &&
        h->nitems <= fmt_nslots(sc->geo->slab_size, h->slot_size)) {
        sc->valid[sc->nvalid++] = *h;
        sc->res->slabs_valid++;
    }
}

/* Phase 2 completion: hand an intact item header to the caller. */
static void scan_item_done(struct dev_io *io, void *arg)
{
    struct scan_io *si = arg;
    struct scan *sc = si->sc;
    const struct fmt_slab *h = &sc->valid[si->idx];
    const struct fmt_item *it = io->buf;

    sc->inflight--;
    if (io->res < 0) {
        sc->err = io->res;
        return;
    }
    if (fmt_item_check_hdr(it) && fmt_item_in_slab(h, it) &&
        (uint64_t)it->len + FMT_ITEM_HDR <= h->slot_size) {
        sc->res->items_seen++;
        sc->ops->item(sc->arg, h, si->slot, it);
    } else if (it->magic != 0) {
        sc->res->items_bad++;   /* holes of aborted puts have magic 0 */
    }
}

/* Order valid slabs by sequence number, oldest first. */
static int scan_cmp_seq(const void *a, const void *b)
{
    const struct fmt_slab *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Read the 4 KiB block at off into the j-th buffer of the scan. */
static void scan_submit(struct scan *sc, struct scan_io *ios, uint8_t *bufs, uint32_t j,
                        uint32_t idx, uint32_t slot, uint64_t off, dev_cb cb)
{
    struct scan_io *si = &ios[j];

    si->sc = sc;
    si->idx = idx;
    si->slot = slot;
    si->io = (struct dev_io){ .op = DEV_READ, .buf = bufs + (uint64_t)j * FMT_BLOCK,
                              .len = FMT_BLOCK, .off = off, .cb = cb, .arg = si };
    sc->inflight++;
    dev_submit(sc->d, &si->io);
}

/* Wait until every read of the scan has completed. */
static int scan_drain(struct scan *sc)
{
    while (sc->inflight > 0) {
        int rc = dev_reap(sc->d, true);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int recover_scan(struct dev *d, const struct recover_geo *geo,
                 const struct recover_ops *ops, void *arg,
                 struct recover_result *res)
{
    unsigned depth = d->depth > 64 ? 64 : d->depth;
    struct scan sc = { .d = d, .geo = geo, .ops = ops, .arg = arg, .res = res };
    struct scan_io *ios = calloc(depth, sizeof(*ios));
    uint8_t *bufs = dev_alloc((uint64_t)depth * FMT_BLOCK);
    int rc = -ENOMEM;

    memset(res, 0, sizeof(*res));
    sc.valid = calloc(geo->nslabs ? geo->nslabs : 1, sizeof(struct fmt_slab));
    if (ios == NULL || bufs == NULL || sc.valid == NULL)
        goto out;

    /* Phase 1: every slab header, depth reads at a time. */
    for (uint32_t first = 0; first < geo->nslabs && sc.err == 0; first += depth) {
        uint32_t batch = geo->nslabs - first < depth ? geo->nslabs - first : depth;
        for (uint32_t j = 0; j < batch; j++)
            scan_submit(&sc, ios, bufs, j, first + j, 0,
                        geo->data_off + (uint64_t)(first + j) * geo->slab_size, scan_slab_done);
        if ((rc = scan_drain(&sc)) < 0)
            goto out;
    }
    rc = sc.err;
    if (rc < 0)
        goto out;
    qsort(sc.valid, sc.nvalid, sizeof(*sc.valid), scan_cmp_seq);

    /* Phase 2: item headers of every used slot, slabs oldest first. */
    for (uint32_t v = 0; v < sc.nvalid && sc.err == 0; v++) {
        const struct fmt_slab *h = &sc.valid[v];
        if (!ops->slab(arg, h))
            continue;
        uint64_t base = geo->data_off + (uint64_t)h->slab_id * geo->slab_size;
        for (uint32_t s = 0; s < h->nitems && sc.err == 0; s += depth) {
            uint32_t batch = h->nitems - s < depth ? h->nitems - s : depth;
            for (uint32_t j = 0; j < batch; j++)
                scan_submit(&sc, ios, bufs, j, v, s + j,
                            base + fmt_slot_off(s + j, h->slot_size), scan_item_done);
            if ((rc = scan_drain(&sc)) < 0)
                goto out;
        }
    }
    rc = sc.err;
out:
    while (sc.inflight > 0 && dev_reap(d, true) >= 0)
        ;
    free(sc.valid);
    free(ios);
    dev_free(bufs, (uint64_t)depth * FMT_BLOCK);
    return rc;
}
