/*
 * kc_recover.h - reading and writing the superblock, and the recovery scan
 * that finds every intact item on the device at open time.
 *
 * The scan reads the tail of every slab (its summary and header, FMT_TAIL
 * bytes: one read per slab, many in flight; a summary longer than that
 * takes a second read), and hands each intact item of the summaries of
 * valid slabs to a callback, oldest slab first. A slab is valid when its
 * header and summary checksums hold; an item is intact when its header
 * checksum holds and its sequence number is its slab's; its value is
 * verified later, when it is read. The caller decides which copy of a key
 * wins (the newest sequence number).
 */
#ifndef KC_RECOVER_H
#define KC_RECOVER_H

#include <stdbool.h>
#include <stdint.h>

#include "ssd/kc_dev.h"
#include "ssd/kc_format.h"

/*
 * Read both superblock copies into buf (FMT_SB_COPY bytes, aligned) and
 * keep the valid one with the higher generation. Returns 1 if found, 0 if
 * neither copy is valid, 2 if a copy is of another format version (its
 * header is in buf), or -errno.
 */
int recover_sb_load(struct dev *d, void *buf);

/* Write the superblock in buf (header + records, sealed here) to the copy
 * its generation selects. Returns 0 or -errno. */
int recover_sb_store(struct dev *d, void *buf);

struct recover_ops {
    /* A valid slab header; return false to skip its items. */
    bool (*slab)(void *arg, const struct fmt_slab *h);
    /* An intact item of an accepted slab. */
    void (*item)(void *arg, const struct fmt_slab *h, uint32_t unit,
                 const struct fmt_item *it);   /* unit: offset / FMT_ALIGN */
};

struct recover_geo {
    uint64_t data_off;
    uint32_t slab_size;
    uint32_t nslabs;
    uint64_t store_id;
};

/* Counts of one scan. */
struct recover_result {
    uint64_t slabs_scanned;
    uint64_t slabs_valid;
    uint64_t slabs_bad;      /* header intact, summary not: dropped */
    uint64_t items_seen;     /* items with an intact header */
    uint64_t items_bad;      /* items whose header failed */
    uint64_t reads;          /* device reads the scan made */
};

int recover_scan(struct dev *d, const struct recover_geo *geo,
                 const struct recover_ops *ops, void *arg,
                 struct recover_result *res);

#endif
