/*
 * kc_format.h - the on-device format of a kvcached store.
 *
 * Layout of the device (all little-endian; superblocks, slabs and every
 * I/O 4 KiB aligned, items inside a slab 64-byte aligned):
 *
 *   [0, 512 KiB)       superblock copy A
 *   [512 KiB, 1 MiB)   superblock copy B (the valid one with the higher
 *                      generation wins; writes alternate, so a torn write
 *                      leaves the other copy intact)
 *   [1 MiB, ...)       slabs of slab_size bytes
 *
 * A superblock holds the geometry (slab size, slab count, device size), a
 * random store id, and the namespace table.
 *
 * A slab is a log segment of items of any size and namespace, appended
 * from its start: an item is a 64-byte item header (struct fmt_item) and
 * its value, rounded up to FMT_ALIGN (64 bytes), so a block wastes less
 * than 64 bytes and a power-of-two value none beyond its header. The slab
 * ends with its summary and its header: the summary is a copy of every
 * item header in order (holes of aborted puts included, with magic 0),
 * 4 KiB aligned, just before the last 4 KiB block, which holds the slab
 * header (struct fmt_slab, with the summary's checksum). The offset of
 * item i is the sum of the spans of the items before it. Recovery reads
 * the tail of each slab (summary and header, one read: FMT_TAIL bytes), not
 * each item.
 *
 * Every header carries an xxh3-64 checksum of itself; every item header the
 * xxh3-64 of its value and its own sequence number. Sequence numbers are
 * handed out store-wide, in the order items are written into memory slabs,
 * and never repeat (the superblock reserves a range before any is used). A
 * slab takes one when it is opened, below every item written into it; its
 * header records the highest of its items. An item belongs to the slab's
 * current contents only if its sequence lies in (slab seq, slab seq_hi]: an
 * item left over from an earlier use of the slab is older and is refused.
 *
 * A delete is an item too: a tombstone (magic TOMB, no value) whose vsum
 * field holds the sequence number of the delete. Recovery keeps, for every
 * key, the item or tombstone with the highest such order number; a
 * tombstone copied forward when its slab is reclaimed keeps its order.
 */
#ifndef KC_FORMAT_H
#define KC_FORMAT_H

#include <stdbool.h>
#include <stdint.h>

#define FMT_BLOCK 4096u                 /* alignment of every I/O */
#define FMT_SB_COPY (512u * 1024)       /* bytes per superblock copy */
#define FMT_DATA_OFF (2u * FMT_SB_COPY) /* where slab 0 begins */
#define FMT_SLAB_HDR FMT_BLOCK          /* slab header block (the last) */
#define FMT_ITEM_HDR 64u                /* item header bytes */
#define FMT_ALIGN 64u                   /* items are packed at this alignment */
#define FMT_TAIL (1u << 20)             /* bytes of a slab's end recovery reads
                                           at once (summary and header) */
#define FMT_VERSION 3u

#define FMT_SB_MAGIC 0x31305342434b564bULL   /* "KVKCBS01" */
#define FMT_SLAB_MAGIC 0x3130424c53434b56ULL /* "VKCSLB01" */
#define FMT_ITEM_MAGIC 0x4d455449u           /* "ITEM" */
#define FMT_TOMB_MAGIC 0x424d4f54u           /* "TOMB": a delete */

#define FMT_NS_DESC_MAX 512u

/* Superblock header, at the start of each copy. */
struct fmt_sb {
    uint64_t magic;
    uint32_t version;
    uint32_t ns_count;      /* namespace records that follow */
    uint64_t store_id;      /* random, new for every fresh store */
    uint64_t generation;    /* bumped on every superblock write */
    uint64_t device_size;
    uint32_t slab_size;
    uint32_t nslabs;
    uint64_t data_off;
    uint64_t epoch_next;    /* next namespace epoch: epochs are never reused */
    uint64_t seq_reserved;  /* sequence numbers below it may have been used:
                               a store reopened after a crash starts here */
    uint64_t csum;          /* xxh3-64 of header (csum zeroed) + records */
};

/* A namespace record in the superblock. */
struct fmt_ns {
    uint64_t id;
    uint32_t block_bytes;   /* 0 = variable sizes */
    uint32_t epoch;         /* unique for the store's life: items of an
                               earlier opening of the id never match */
    uint32_t live;          /* 1 (only open namespaces are written) */
    uint32_t desc_len;
    uint8_t desc[FMT_NS_DESC_MAX];
};

/* Most namespace records a superblock copy holds. */
#define FMT_NS_MAX ((FMT_SB_COPY - sizeof(struct fmt_sb)) / sizeof(struct fmt_ns))

/* Slab header, in the last 4 KiB block of each slab. */
struct fmt_slab {
    uint64_t magic;
    uint32_t version;
    uint32_t slab_id;
    uint64_t store_id;
    uint64_t seq;           /* taken when the slab was opened: below every
                               item of this use of the slab */
    uint32_t nitems;        /* items (and holes) in the slab and its summary */
    uint32_t used;          /* bytes of items from the slab's start */
    uint64_t seq_hi;        /* highest item sequence in the slab */
    uint64_t sum_csum;      /* xxh3-64 of the summary (fmt_sum_bytes bytes) */
    uint64_t csum;          /* xxh3-64 of this header with csum zeroed */
};

/* Item header, in front of each value (and copied in the summary). */
struct fmt_item {
    uint32_t magic;
    uint32_t len;           /* value bytes */
    uint64_t key_lo;
    uint64_t key_hi;
    uint64_t ns;
    uint64_t seq;           /* item sequence: when it was written */
    uint64_t vsum;          /* xxh3-64 of the value; a tombstone: the
                               sequence of the delete (its order) */
    uint32_t chain_pos;
    uint32_t ns_epoch;
    uint64_t hsum;          /* xxh3-64 of the 56 bytes before it */
};

_Static_assert(sizeof(struct fmt_item) == FMT_ITEM_HDR, "item header size");
_Static_assert(sizeof(struct fmt_slab) <= FMT_SLAB_HDR, "slab header size");

/* Round n up to a multiple of FMT_BLOCK. */
static inline uint64_t fmt_align(uint64_t n)
{
    return (n + FMT_BLOCK - 1) & ~(uint64_t)(FMT_BLOCK - 1);
}

/* Bytes an item of a value of len bytes takes in its slab. */
static inline uint32_t fmt_item_span(uint32_t len)
{
    return (uint32_t)(((uint64_t)len + FMT_ITEM_HDR + FMT_ALIGN - 1) & ~(uint64_t)(FMT_ALIGN - 1));
}

/* Bytes of the summary of nitems items (4 KiB aligned). */
static inline uint64_t fmt_sum_bytes(uint32_t nitems)
{
    return fmt_align((uint64_t)nitems * FMT_ITEM_HDR);
}

/* Offset of the summary of nitems items inside a slab. */
static inline uint64_t fmt_sum_off(uint32_t slab_size, uint32_t nitems)
{
    return slab_size - FMT_SLAB_HDR - fmt_sum_bytes(nitems);
}

/* Offset of the slab header inside a slab. */
static inline uint64_t fmt_hdr_off(uint32_t slab_size)
{
    return slab_size - FMT_SLAB_HDR;
}

/* True if nitems items taking used bytes fit a slab with their summary. */
static inline bool fmt_slab_fits(uint32_t slab_size, uint64_t used, uint32_t nitems)
{
    return fmt_align(used) + fmt_sum_bytes(nitems) + FMT_SLAB_HDR <= slab_size;
}

/* Largest value a slab holds (alone, with its summary). */
static inline uint32_t fmt_max_value(uint32_t slab_size)
{
    return slab_size - FMT_SLAB_HDR - FMT_BLOCK - FMT_ITEM_HDR;
}

/* Bytes of a slab's end recovery reads first (FMT_TAIL, or all of it). */
static inline uint32_t fmt_tail(uint32_t slab_size)
{
    return slab_size < FMT_TAIL ? slab_size : FMT_TAIL;
}

/* True if an intact item header belongs to the current use of slab h. */
static inline bool fmt_item_in_slab(const struct fmt_slab *h, const struct fmt_item *it)
{
    return it->seq > h->seq && it->seq <= h->seq_hi;
}

/* True if an item header is a tombstone (a delete). */
static inline bool fmt_item_is_tomb(const struct fmt_item *it)
{
    return it->magic == FMT_TOMB_MAGIC;
}

/* The order of an item among the copies of its key: newest wins. */
static inline uint64_t fmt_item_order(const struct fmt_item *it)
{
    return fmt_item_is_tomb(it) ? it->vsum : it->seq;
}

/* Fill the checksum of a superblock whose records follow it in memory. */
void fmt_sb_seal(struct fmt_sb *sb);
/* True if a superblock (with its records after it) is intact. */
bool fmt_sb_check(const struct fmt_sb *sb, uint64_t bytes_available);

void fmt_slab_seal(struct fmt_slab *h);
bool fmt_slab_check(const struct fmt_slab *h);
/* True if a checked header's geometry is possible in a slab of slab_size. */
bool fmt_slab_sane(const struct fmt_slab *h, uint32_t slab_size);
/* Checksum of a summary (fmt_sum_bytes(nitems) bytes at sum). */
uint64_t fmt_sum_csum(const void *sum, uint32_t nitems);

/* Fill an item header for value (len bytes), computing both checksums. */
void fmt_item_seal(struct fmt_item *h, const void *value);
/* Fill a tombstone's header (len 0) with delete order `order`. */
void fmt_tomb_seal(struct fmt_item *h, uint64_t order);
/* Header intact (magic of an item or a tombstone, header checksum)? */
bool fmt_item_check_hdr(const struct fmt_item *h);
/* Value matches the header's checksum? */
bool fmt_item_check_value(const struct fmt_item *h, const void *value);

#endif
