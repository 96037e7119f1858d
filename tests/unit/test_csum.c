/*
 * test_csum.c - a corrupted block on the device is a miss, never data.
 *
 * Blocks are written and flushed; a byte of one value, and of one item
 * header's key, is flipped in the file (found by scanning the file for the
 * bytes the key implies, so the test does not depend on the layout). After
 * a reopen, and also while the store stays open, those gets miss, the
 * failures are counted, every other block reads back intact, and a prefix
 * get stops at the corrupted block.
 */
#include "kt.h"

enum { NS = 5 };
#define BLK (64 * KT_KIB)
#define DEV (32 * KT_MIB)
#define MEM (3 * KT_MIB)

static char path[4200];

/* The whole store file, read with ordinary I/O (the store is closed or its
 * data flushed). */
static uint8_t *read_file(size_t *len)
{
    int fd = open(path, O_RDONLY);
    KT_CHECK(fd >= 0);
    struct stat sb;
    KT_OK(fstat(fd, &sb));
    uint8_t *b = malloc((size_t)sb.st_size);
    KT_CHECK(b != NULL);
    size_t got = 0;
    while (got < (size_t)sb.st_size) {
        ssize_t r = pread(fd, b + got, (size_t)sb.st_size - got, (off_t)got);
        KT_CHECK(r > 0);
        got += (size_t)r;
    }
    close(fd);
    *len = got;
    return b;
}

/* Offsets where needle occurs in the file (at most max); returns count. */
static size_t find_all(const uint8_t *f, size_t flen, const void *needle,
                       size_t nlen, off_t *offs, size_t max)
{
    size_t n = 0;
    const uint8_t *p = f, *end = f + flen;
    while (p < end) {
        const uint8_t *q = memmem(p, (size_t)(end - p), needle, nlen);
        if (q == NULL)
            break;
        if (n < max)
            offs[n] = q - f;
        n++;
        p = q + 1;
    }
    return n;
}

/* XOR one byte of the file at off with 0x5a, and make it durable. */
static void flip(off_t off)
{
    int fd = open(path, O_RDWR);
    KT_CHECK(fd >= 0);
    uint8_t c;
    KT_EQ(pread(fd, &c, 1, off), 1);
    c ^= 0x5a;
    KT_EQ(pwrite(fd, &c, 1, off), 1);
    KT_OK(fsync(fd));
    close(fd);
}

/* Offset of the value of key i in the file (the only copy). */
static off_t value_offset(uint64_t i)
{
    struct kc_key k = kt_key(i);
    uint8_t head[64];
    kt_fill(head, sizeof(head), &k);
    size_t flen;
    uint8_t *f = read_file(&flen);
    off_t off[4];
    size_t n = find_all(f, flen, head, sizeof(head), off, 4);
    free(f);
    KT_CHECKF(n == 1, "value of block %" PRIu64 " found %zu times in the file",
              i, n);
    return off[0];
}

/* Flip a byte inside every copy of key i's 16 key bytes in the file. */
static size_t flip_key(uint64_t i)
{
    struct kc_key k = kt_key(i);
    size_t flen;
    uint8_t *f = read_file(&flen);
    off_t off[16];
    size_t n = find_all(f, flen, &k.lo, 8, off, 16);
    free(f);
    KT_CHECKF(n >= 1 && n <= 16, "key of block %" PRIu64 " found %zu times",
              i, n);
    /* The first copy is the item's own header; the other, further on, its
     * copy in the slab's summary, left intact (a damaged summary drops its
     * whole slab: test_torn). */
    flip(off[0] + 3);
    return n;
}

/* Corrupt closed store, reopen: the two corrupted blocks miss. */
static void test_reopen(void)
{
    struct store_config cfg;
    kt_config(&cfg, path, DEV, 1 * KT_MIB, MEM, 4 * KT_KIB);
    cfg.fresh = true;
    struct store *st = KT_OPEN(&cfg);
    KT_OK(store_ns_open(st, NS, BLK, NULL, 0));
    for (uint64_t i = 0; i < 8; i++)
        KT_PUT(st, NS, i, BLK);
    KT_OK(store_flush(st));
    KT_CLOSE(st);

    off_t v3 = value_offset(3);
    flip(v3 + 1000);                 /* inside the value of block 3 */
    size_t nk = flip_key(5);         /* inside the item header of block 5 */
    printf("  value of 3 at %lld, key of 5 found %zu times\n", (long long)v3,
           nk);

    cfg.fresh = false;
    st = KT_OPEN(&cfg);
    struct store_recovery rec;
    store_recovery_info(st, &rec);
    printf("  recovered %" PRIu64 " items, skipped %" PRIu64 "\n", rec.items,
           rec.items_skipped);
    /* Block 5's summary copy is intact: it is indexed, and misses on read. */
    KT_CHECK(rec.items >= 6 && rec.items <= 8);
    struct store_stats a = kt_stats(st);
    for (uint64_t i = 0; i < 8; i++) {
        struct kc_key k = kt_key(i);
        int want = i == 3 || i == 5 ? KC_MISS : KC_OK;
        int r = KT_GET(st, NS, &k, i & 1, NULL);   /* verifies bytes */
        KT_CHECKF(r == want, "block %" PRIu64 ": get -> %d, want %d", i, r,
                  want);
    }
    struct store_stats b = kt_stats(st);
    printf("  checksum failures %" PRIu64 "\n", b.checksum_failures);
    KT_CHECK(b.checksum_failures - a.checksum_failures >= 1);
    KT_EQ(b.hits - a.hits, 6);
    KT_EQ(b.misses - a.misses, 2);
    KT_EQ(b.io_errors, 0);
    /* The failed block stays a miss. */
    struct kc_key k3 = kt_key(3);
    KT_EQ(KT_GET(st, NS, &k3, false, NULL), KC_MISS);
    KT_CLOSE(st);
}

/* Corrupt a block of an open store after its DRAM copy is gone. */
static void test_open(void)
{
    struct store_config cfg;
    kt_config(&cfg, path, DEV, 1 * KT_MIB, MEM, 4 * KT_KIB);
    cfg.fresh = true;
    struct store *st = KT_OPEN(&cfg);
    KT_OK(store_ns_open(st, NS, BLK, NULL, 0));
    struct kc_key chain[8];
    for (uint64_t i = 0; i < 8; i++) {
        chain[i] = kt_key(100 + i);
        KT_PUT(st, NS, 100 + i, BLK);
    }
    for (uint64_t i = 0; i < 3 * MEM / BLK; i++)  /* out of DRAM */
        KT_PUT(st, NS, 1000 + i, BLK);
    KT_OK(store_flush(st));
    struct store_item_info ii;
    KT_OK(store_describe(st, NS, &chain[3], &ii));
    KT_CHECK(!ii.in_memory);

    flip(value_offset(103) + BLK - 1);   /* the value's last byte */
    struct store_stats a = kt_stats(st);
    KT_EQ(KT_GET(st, NS, &chain[3], true, NULL), KC_MISS);
    struct store_stats b = kt_stats(st);
    KT_EQ(b.checksum_failures - a.checksum_failures, 1);
    KT_EQ(b.hits, a.hits);

    /* Prefix get: the run ends at the corrupted block. */
    flip(value_offset(106) + 5);
    struct store_get_item it[8];
    struct store_get g;
    memset(it, 0, sizeof(it));
    memset(&g, 0, sizeof(g));
    for (int i = 0; i < 8; i++) {
        it[i].key = chain[i];
        it[i].status = -1;
    }
    g.ns = NS;
    g.items = it;
    g.n = 8;
    g.prefix = true;
    KT_OK(store_get(st, &g));
    KT_EQ(g.found, 3);
    for (int i = 0; i < 3; i++) {
        KT_EQ(it[i].status, KC_OK);
        KT_CHECK(kt_verify(it[i].data, it[i].len, &chain[i]) < 0);
    }
    KT_CHECK(it[3].status != KC_OK);
    store_get_release(st, &g);

    /* Non-prefix: 6 of 8, 106 counted as a checksum failure. */
    memset(&g, 0, sizeof(g));
    for (int i = 0; i < 8; i++) {
        memset(&it[i], 0, sizeof(it[i]));
        it[i].key = chain[i];
        it[i].status = -1;
    }
    g.ns = NS;
    g.items = it;
    g.n = 8;
    KT_OK(store_get(st, &g));
    KT_EQ(g.found, 6);
    for (int i = 0; i < 8; i++) {
        if (i == 3 || i == 6) {
            KT_EQ(it[i].status, KC_MISS);
            continue;
        }
        KT_EQ(it[i].status, KC_OK);
        KT_CHECK(kt_verify(it[i].data, it[i].len, &chain[i]) < 0);
    }
    store_get_release(st, &g);
    KT_CHECK(kt_stats(st).checksum_failures >= 2);
    KT_CLOSE(st);
}

int main(void)
{
    kt_begin("csum");
    kt_path(path, sizeof(path), "store");
    test_reopen();
    test_open();
    printf("csum: ok\n");
    return 0;
}
