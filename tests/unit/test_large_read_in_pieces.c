/*
 * test_large_read_in_pieces.c - a block of two read pieces (1 MiB) or more
 * is read as pieces all in flight and verified as they land: every byte
 * comes back; a byte flipped in a late piece, or in the first (the header's)
 * piece's value, is a miss counted as a checksum failure; a failed piece
 * read is a miss counted as an I/O error, never data. Sizes are chosen so
 * the last piece is short (the slot is not a multiple of a piece).
 */
#include "kt.h"

enum { NS = 9 };
#define BLK (5 * KT_MIB + 12345)   /* five pieces of 1 MiB + 4 KiB, the last shorter */
#define SLAB (16 * KT_MIB)
#define DEV (256 * KT_MIB)
#define MEM (2 * SLAB)
#define NKEEP 6                     /* blocks checked */

static char path[4200];

/* Offset in the store file of the value of key i: the only place its
 * first 64 bytes occur (found by scanning, not by the layout). */
static off_t value_at(uint64_t i)
{
    struct kc_key k = kt_key(i);
    uint8_t head[64];
    const size_t win = 8 * KT_MIB;
    uint8_t *buf = malloc(win + sizeof(head));
    off_t found = -1;
    int fd = open(path, O_RDONLY);

    KT_CHECK(buf != NULL && fd >= 0);
    kt_fill(head, sizeof(head), &k);
    for (off_t at = 0;; at += (off_t)win) {
        ssize_t n = pread(fd, buf, win + sizeof(head), at);
        if (n <= 0)
            break;
        uint8_t *q = memmem(buf, (size_t)n, head, sizeof(head));
        if (q != NULL) {
            KT_CHECKF(found < 0 || found == at + (q - buf), "two copies of block %" PRIu64, i);
            found = at + (q - buf);
        }
    }
    close(fd);
    free(buf);
    KT_CHECKF(found >= 0, "value of block %" PRIu64 " not in the file", i);
    return found;
}

/* XOR one byte of the store file at off. */
static void flip(off_t off)
{
    int fd = open(path, O_RDWR);
    uint8_t c;

    KT_CHECK(fd >= 0);
    KT_EQ(pread(fd, &c, 1, off), 1);
    c ^= 0xa5;
    KT_EQ(pwrite(fd, &c, 1, off), 1);
    KT_OK(fsync(fd));
    close(fd);
}

/* Open the store with blocks 0..NKEEP-1 on the device only. */
static struct store *fill(uint64_t fault_read_every)
{
    struct store_config cfg;
    kt_config(&cfg, path, DEV, SLAB, MEM, 64 * KT_KIB);
    cfg.fresh = true;
    cfg.fault_read_every = fault_read_every;
    struct store *st = KT_OPEN(&cfg);
    KT_OK(store_ns_open(st, NS, BLK, NULL, 0));
    for (uint64_t i = 0; i < NKEEP + 3 * MEM / BLK; i++)  /* the rest push
                                                              them out of DRAM */
        KT_PUT(st, NS, i, BLK);
    KT_OK(store_flush(st));
    for (uint64_t i = 0; i < NKEEP; i++) {
        struct store_item_info ii;
        struct kc_key k = kt_key(i);
        KT_OK(store_describe(st, NS, &k, &ii));
        KT_CHECK(!ii.in_memory);
    }
    return st;
}

int main(void)
{
    kt_begin("large_read_in_pieces");
    kt_path(path, sizeof(path), "store");

    /* Intact: every block reads back, by pointer and into a buffer. */
    struct store *st = fill(0);
    for (uint64_t i = 0; i < NKEEP; i++) {
        struct kc_key k = kt_key(i);
        uint32_t len = 0;
        KT_EQ(KT_GET(st, NS, &k, i & 1, &len), KC_OK);
        KT_EQ(len, BLK);
    }

    /* A byte of the last (short) piece, one of a middle piece, one in the
     * first piece: each block is a miss and a checksum failure. */
    flip(value_at(1) + BLK - 1);
    flip(value_at(2) + 3 * KT_MIB + 7);
    flip(value_at(3) + 100);
    struct store_stats a = kt_stats(st);
    for (uint64_t i = 0; i < NKEEP; i++) {
        struct kc_key k = kt_key(i);
        int want = i >= 1 && i <= 3 ? KC_MISS : KC_OK;
        KT_EQ(KT_GET(st, NS, &k, false, NULL), want);
    }
    struct store_stats b = kt_stats(st);
    KT_EQ(b.checksum_failures - a.checksum_failures, 3);
    KT_EQ(b.io_errors, a.io_errors);
    store_close(st);

    /* Every 4th piece read fails: a block with a failed piece is a miss
     * (an I/O error), never data; KT_GET checks the bytes of every hit. */
    st = fill(4);
    a = kt_stats(st);
    for (uint64_t i = 0; i < NKEEP; i++) {
        struct kc_key k = kt_key(i);
        KT_EQ(KT_GET(st, NS, &k, true, NULL), KC_MISS);  /* five pieces each */
    }
    b = kt_stats(st);
    KT_CHECK(b.io_errors - a.io_errors >= NKEEP);
    KT_EQ(b.checksum_failures, a.checksum_failures);
    store_close(st);
    printf("large_read_in_pieces: ok\n");
    return 0;
}
