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
    if (!found) {
        /* A store of another format version: the caller refuses it rather
         * than writing over it. */
        const struct fmt_sb *x = buf, *y = other;
        if (y->magic == FMT_SB_MAGIC && y->version != FMT_VERSION)
            memcpy(buf, other, sizeof(struct fmt_sb));
        if (x->magic == FMT_SB_MAGIC && x->version != FMT_VERSION)
            rc = 2;
        else if (y->magic == FMT_SB_MAGIC && y->version != FMT_VERSION)
            rc = 2;
    }
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

/* A valid slab found by the scan: its header and a copy of its summary
 * (NULL until read, when it did not fit the tail read). */
struct scan_slab {
    struct fmt_slab h;
    uint8_t *sum;
};

/* One read of the scan: the tail of a slab. */
struct scan_io {
    struct dev_io io;
    struct scan *sc;
    uint32_t idx;       /* slab index */
};

struct scan {
    struct dev *d;
    const struct recover_geo *geo;
    const struct recover_ops *ops;
    void *arg;
    struct recover_result *res;
    struct scan_slab *valid;  /* valid slabs */
    uint32_t nvalid;
    uint32_t tail;            /* bytes of each tail read */
    unsigned inflight;
    int err;
};

/* Keep a copy of a summary that passed its checksum; false if it failed. */
static bool scan_keep_sum(struct scan *sc, struct scan_slab *v, const uint8_t *sum)
{
    uint64_t bytes = fmt_sum_bytes(v->h.nitems);

    if (fmt_sum_csum(sum, v->h.nitems) != v->h.sum_csum)
        return false;
    v->sum = malloc(bytes ? bytes : 1);
    if (v->sum == NULL) {
        sc->err = -ENOMEM;
        return false;
    }
    memcpy(v->sum, sum, bytes);
    return true;
}

/* A tail read completed: keep the slab if its header is this store's and
 * its summary (when the tail holds it) is intact. */
static void scan_tail_done(struct dev_io *io, void *arg)
{
    struct scan_io *si = arg;
    struct scan *sc = si->sc;
    const uint8_t *buf = io->buf;
    const struct fmt_slab *h = (const void *)(buf + sc->tail - FMT_SLAB_HDR);

    sc->inflight--;
    sc->res->slabs_scanned++;
    if (io->res < 0) {
        sc->err = io->res;
        return;
    }
    if (!fmt_slab_check(h) || h->store_id != sc->geo->store_id || h->slab_id != si->idx ||
        h->version != FMT_VERSION || !fmt_slab_sane(h, sc->geo->slab_size))
        return;
    struct scan_slab *v = &sc->valid[sc->nvalid];
    *v = (struct scan_slab){ .h = *h };
    uint64_t bytes = fmt_sum_bytes(h->nitems);
    if (bytes + FMT_SLAB_HDR <= sc->tail) {
        if (!scan_keep_sum(sc, v, (const uint8_t *)h - bytes)) {
            sc->res->slabs_bad++;
            return;
        }
    }
    sc->nvalid++;
    sc->res->slabs_valid++;
}

/* Order valid slabs by sequence number, oldest first. */
static int scan_cmp_seq(const void *a, const void *b)
{
    const struct scan_slab *x = a, *y = b;
    return x->h.seq < y->h.seq ? -1 : x->h.seq > y->h.seq;
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

/* Read the summaries that did not fit the tail reads (slabs of many small
 * items), one at a time; a slab whose summary fails is dropped. */
static int scan_long_sums(struct scan *sc)
{
    uint32_t kept = 0;

    for (uint32_t i = 0; i < sc->nvalid; i++) {
        struct scan_slab *v = &sc->valid[i];
        if (v->sum == NULL) {
            uint64_t bytes = fmt_sum_bytes(v->h.nitems);
            uint8_t *buf = dev_alloc(bytes);
            if (buf == NULL)
                return -ENOMEM;
            uint64_t off = sc->geo->data_off + (uint64_t)v->h.slab_id * sc->geo->slab_size +
                           fmt_sum_off(sc->geo->slab_size, v->h.nitems);
            int rc = dev_rw_sync(sc->d, DEV_READ, buf, bytes, off);
            sc->res->reads++;
            bool ok = rc == 0 && scan_keep_sum(sc, v, buf);
            dev_free(buf, bytes);
            if (rc < 0)
                return rc;
            if (sc->err < 0)
                return sc->err;
            if (!ok) {
                sc->res->slabs_bad++;
                sc->res->slabs_valid--;
                continue;
            }
        }
        sc->valid[kept++] = *v;
    }
    for (uint32_t i = kept; i < sc->nvalid; i++)
        sc->valid[i].sum = NULL;   /* moved down or never kept: freed once */
    sc->nvalid = kept;
    return 0;
}

/* Hand the items of one valid slab to the caller, through its summary. */
static void scan_items(struct scan *sc, const struct scan_slab *v)
{
    const struct fmt_slab *h = &v->h;
    uint64_t off = 0;

    for (uint32_t i = 0; i < h->nitems; i++) {
        const struct fmt_item *it = (const void *)(v->sum + (uint64_t)i * FMT_ITEM_HDR);
        uint32_t unit = (uint32_t)(off / FMT_ALIGN);
        off += fmt_item_span(it->len);
        if (off > h->used) {
            sc->res->items_bad += h->nitems - i;   /* not written by us */
            return;
        }
        if (it->magic == 0)
            continue;   /* a hole: an aborted put */
        if (fmt_item_check_hdr(it) && fmt_item_in_slab(h, it)) {
            sc->res->items_seen++;
            sc->ops->item(sc->arg, h, unit, it);
        } else {
            sc->res->items_bad++;
        }
    }
}

int recover_scan(struct dev *d, const struct recover_geo *geo,
                 const struct recover_ops *ops, void *arg,
                 struct recover_result *res)
{
    unsigned depth = d->depth > 16 ? 16 : d->depth;
    struct scan sc = { .d = d, .geo = geo, .ops = ops, .arg = arg, .res = res,
                       .tail = fmt_tail(geo->slab_size) };
    struct scan_io *ios = calloc(depth, sizeof(*ios));
    uint8_t *bufs = dev_alloc((uint64_t)depth * sc.tail);
    int rc = -ENOMEM;

    memset(res, 0, sizeof(*res));
    sc.valid = calloc(geo->nslabs ? geo->nslabs : 1, sizeof(*sc.valid));
    if (ios == NULL || bufs == NULL || sc.valid == NULL)
        goto out;

    /* Phase 1: the tail of every slab (summary and header), depth reads at
     * a time. */
    for (uint32_t first = 0; first < geo->nslabs && sc.err == 0; first += depth) {
        uint32_t batch = geo->nslabs - first < depth ? geo->nslabs - first : depth;
        for (uint32_t j = 0; j < batch; j++) {
            struct scan_io *si = &ios[j];
            *si = (struct scan_io){ .sc = &sc, .idx = first + j };
            si->io = (struct dev_io){ .op = DEV_READ, .buf = bufs + (uint64_t)j * sc.tail,
                                      .len = sc.tail,
                                      .off = geo->data_off + (uint64_t)(first + j + 1) *
                                             geo->slab_size - sc.tail,
                                      .cb = scan_tail_done, .arg = si };
            sc.inflight++;
            res->reads++;
            dev_submit(d, &si->io);
        }
        if ((rc = scan_drain(&sc)) < 0)
            goto out;
    }
    rc = sc.err;
    if (rc == 0)
        rc = scan_long_sums(&sc);
    if (rc < 0)
        goto out;
    qsort(sc.valid, sc.nvalid, sizeof(*sc.valid), scan_cmp_seq);

    /* Phase 2: the items of every valid slab, oldest first, from memory. */
    for (uint32_t v = 0; v < sc.nvalid; v++)
        if (ops->slab(arg, &sc.valid[v].h))
            scan_items(&sc, &sc.valid[v]);
    rc = 0;
out:
    while (sc.inflight > 0 && dev_reap(d, true) >= 0)
        ;
    for (uint32_t v = 0; sc.valid != NULL && v < geo->nslabs; v++)
        free(sc.valid[v].sum);
    free(sc.valid);
    free(ios);
    dev_free(bufs, (uint64_t)depth * sc.tail);
    return rc;
}
