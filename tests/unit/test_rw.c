/*
 * test_rw.c - put and get round trips, from DRAM and from the device.
 *
 * Values come back byte-identical into caller buffers (dst) and by the data
 * pointer, from memory slabs and after their slab was written and its
 * memory reused; prefix mode stops at the first miss; several asynchronous
 * batches are in flight together and each completes once through
 * store_poll(); pinned data survives memory slab reuse; zero-copy puts.
 */
#include <poll.h>

#include "kt.h"

enum { NS = 3, NSV = 4 };
#define BLK (48 * KT_KIB)
#define MEM (4 * KT_MIB)

/* Fill the device path: put blocks first..first+n-1 of NS. */
static void put_range(struct store *st, uint64_t first, uint64_t n)
{
    for (uint64_t i = first; i < first + n; i++)
        KT_PUT(st, NS, i, BLK);
}

/* Recent blocks are served from DRAM, into dst and by pointer. */
static void test_dram(struct store *st)
{
    put_range(st, 0, 16);
    struct store_stats a = kt_stats(st);
    for (uint64_t i = 0; i < 16; i++) {
        struct kc_key k = kt_key(i);
        struct store_item_info ii;
        KT_OK(store_describe(st, NS, &k, &ii));
        KT_CHECK(ii.in_memory);
        uint32_t len = 0;
        KT_EQ(KT_GET(st, NS, &k, true, &len), KC_OK);
        KT_EQ(len, BLK);
        KT_EQ(KT_GET(st, NS, &k, false, &len), KC_OK);
    }
    struct store_stats b = kt_stats(st);
    KT_EQ(b.hits - a.hits, 32);
    KT_EQ(b.hits_mem - a.hits_mem, 32);
    KT_EQ(b.gets - a.gets, 32);
    KT_EQ(b.hit_bytes - a.hit_bytes, 32ull * BLK);
    KT_EQ(b.bytes_read, a.bytes_read);
}

/* After 5x the memory budget, the first blocks come from the device. */
static void test_device(struct store *st)
{
    put_range(st, 16, 5 * MEM / BLK);
    struct store_stats a = kt_stats(st);
    KT_CHECK(a.flushes > 0);
    KT_CHECK(a.bytes_written >= 16ull * BLK);
    for (uint64_t i = 0; i < 16; i++) {
        struct kc_key k = kt_key(i);
        struct store_item_info ii;
        KT_OK(store_describe(st, NS, &k, &ii));
        KT_CHECKF(!ii.in_memory, "block %" PRIu64 " still in DRAM", i);
        uint32_t len = 0;
        KT_EQ(KT_GET(st, NS, &k, (i & 1) == 0, &len), KC_OK);
        KT_EQ(len, BLK);
    }
    struct store_stats b = kt_stats(st);
    KT_EQ(b.hits - a.hits, 16);
    KT_EQ(b.hits_mem, a.hits_mem);
    KT_CHECK(b.bytes_read - a.bytes_read >= 16ull * BLK);
    KT_EQ(b.checksum_failures, 0);
    KT_EQ(b.io_errors, 0);
    /* A missing key is a miss, counted. */
    struct kc_key k = kt_key(777777);
    KT_EQ(KT_GET(st, NS, &k, false, NULL), KC_MISS);
    KT_EQ(kt_stats(st).misses, b.misses + 1);
}

/* Variable-size values of up to 256 KiB, through the device. */
static void test_variable(struct store *st)
{
    const uint32_t sizes[] = { 256 * KT_KIB, 4 * KT_KIB, 100 * KT_KIB + 7,
                               256 * KT_KIB - 1, 16 * KT_KIB + 3 };
    for (uint64_t i = 0; i < 40; i++) {
        struct kc_key k = kt_key(50000 + i);
        KT_EQ(kt_put1(st, NSV, &k, sizes[i % 5], (uint32_t)i), KC_OK);
    }
    put_range(st, 100000, 2 * MEM / BLK);   /* push them out of DRAM */
    KT_OK(store_flush(st));
    for (uint64_t i = 0; i < 40; i++) {
        struct kc_key k = kt_key(50000 + i);
        uint32_t len = 0;
        KT_EQ(KT_GET(st, NSV, &k, i & 1, &len), KC_OK);
        KT_EQ(len, sizes[i % 5]);
    }
}

/* Get a chain of keys in one batch, in prefix mode or not. */
static void get_chain(struct store *st, const struct kc_key *keys, size_t n,
                      bool prefix, struct store_get_item *it,
                      struct store_get *g)
{
    memset(it, 0, n * sizeof(*it));
    for (size_t i = 0; i < n; i++) {
        it[i].key = keys[i];
        it[i].status = -1;
    }
    memset(g, 0, sizeof(*g));
    g->ns = NS;
    g->items = it;
    g->n = n;
    g->prefix = prefix;
    KT_OK(store_get(st, g));
    KT_OK(g->status);
}

/* Check one returned item against its key. */
static void check_item(const struct store_get_item *it, uint32_t len)
{
    KT_EQ(it->status, KC_OK);
    KT_EQ(it->len, len);
    const void *p = it->dst != NULL ? it->dst : it->data;
    KT_CHECK(p != NULL);
    long bad = kt_verify(p, it->len, &it->key);
    KT_CHECKF(bad < 0, "wrong bytes at offset %ld", bad);
}

/* Prefix mode: the leading run only; the run spans device and DRAM. */
static void test_prefix(struct store *st)
{
    struct kc_key keys[12];
    struct store_get_item it[12];
    struct store_get g;
    for (uint64_t i = 0; i < 12; i++)
        keys[i] = kt_key(20000 + i);
    for (uint64_t i = 0; i < 12; i++)
        if (i != 5 && i >= 3)
            KT_EQ(kt_put1(st, NS, &keys[i], BLK, (uint32_t)i), KC_OK);
    put_range(st, 30000, 2 * MEM / BLK);  /* 3..11 now on the device */
    for (uint64_t i = 0; i < 3; i++)      /* 0..2 in DRAM */
        KT_EQ(kt_put1(st, NS, &keys[i], BLK, (uint32_t)i), KC_OK);

    get_chain(st, keys, 12, true, it, &g);
    KT_EQ(g.found, 5);
    for (size_t i = 0; i < 5; i++) {
        check_item(&it[i], BLK);
        KT_EQ(it[i].chain_pos, (uint32_t)i);
    }
    KT_EQ(it[5].status, KC_MISS);
    for (size_t i = 6; i < 12; i++)
        KT_CHECKF(it[i].status != KC_OK, "prefix get returned item %zu after "
                  "the first miss", i);
    store_get_release(st, &g);
    KT_EQ(store_match(st, NS, keys, 12), 5);

    get_chain(st, keys, 12, false, it, &g);
    KT_EQ(g.found, 11);
    for (size_t i = 0; i < 12; i++) {
        if (i == 5)
            KT_EQ(it[i].status, KC_MISS);
        else
            check_item(&it[i], BLK);
    }
    store_get_release(st, &g);

    /* A missing first key: nothing. */
    get_chain(st, keys + 5, 7, true, it, &g);
    KT_EQ(g.found, 0);
    store_get_release(st, &g);
}

/* One asynchronous batch and its completion count. */
struct abatch {
    struct store_get g;
    struct store_get_item it[8];
    int done_calls;
};

static void on_done(struct store_get *g, void *arg)
{
    struct abatch *b = arg;
    KT_CHECK(g == &b->g);
    b->done_calls++;
}

/* Several batches in flight together, completed through store_poll(). */
static void test_async(struct store *st)
{
    enum { NB = 6, PER = 8 };
    static struct abatch b[NB];
    static uint8_t dst[NB][PER][BLK];
    KT_CHECK(store_fd(st) >= 0);
    uint64_t device_key = 16 + 10;           /* written long ago */
    for (int j = 0; j < NB; j++) {
        memset(&b[j], 0, sizeof(b[j]));
        for (int i = 0; i < PER; i++) {
            struct store_get_item *x = &b[j].it[i];
            x->key = kt_key(device_key++);
            x->status = -1;
            if ((j + i) % 2 == 0) {
                x->dst = dst[j][i];
                x->dst_cap = BLK;
            }
        }
        if (j == NB - 1) {                    /* a DRAM hit and a miss */
            b[j].it[0].key = kt_key(0);
            b[j].it[1].key = kt_key(888888);
        }
        b[j].g.ns = NS;
        b[j].g.items = b[j].it;
        b[j].g.n = PER;
        b[j].g.done = on_done;
        b[j].g.arg = &b[j];
    }
    /* Key 0 back into DRAM: delete it and put it again. */
    KT_EQ(store_delete(st, NS, &b[NB - 1].it[0].key), KC_OK);
    KT_EQ(kt_put1(st, NS, &b[NB - 1].it[0].key, BLK, 0), KC_OK);

    struct store_stats a = kt_stats(st);
    for (int j = 0; j < NB; j++)
        KT_OK(store_get_submit(st, &b[j].g));
    KT_CHECK(store_busy(st));
    KT_CHECK(kt_stats(st).reads_inflight > 1);
    /* The event fd becomes readable when reads complete. */
    struct pollfd pfd = { .fd = store_fd(st), .events = POLLIN };
    KT_EQ(poll(&pfd, 1, 5000), 1);
    int done = 0, rounds = 0;
    for (;;) {
        done = 0;
        for (int j = 0; j < NB; j++)
            done += b[j].done_calls;
        if (done == NB)
            break;
        int r = store_poll(st, true);
        KT_CHECKF(r >= 0, "store_poll -> %d (%s)", r, kc_strerror(r));
        KT_CHECK(++rounds < 100000);
    }
    /* Slab writes (the put above may have filled a memory slab) can still
     * be in flight: store_busy() counts them too. Drain; no batch may end
     * twice. */
    while (store_busy(st))
        KT_CHECK(store_poll(st, true) >= 0);
    KT_EQ(store_poll(st, false), 0);
    for (int j = 0; j < NB; j++) {
        KT_EQ(b[j].done_calls, 1);
        KT_OK(b[j].g.status);
        KT_EQ(b[j].g.found, j == NB - 1 ? PER - 1 : PER);
        for (int i = 0; i < PER; i++) {
            if (j == NB - 1 && i == 1) {
                KT_EQ(b[j].it[i].status, KC_MISS);
                continue;
            }
            check_item(&b[j].it[i], BLK);
        }
        store_get_release(st, &b[j].g);
    }
    struct store_stats s = kt_stats(st);
    KT_EQ(s.hits - a.hits, NB * PER - 1);
    KT_EQ(s.hits_mem - a.hits_mem, 1);
    KT_EQ(s.reads_inflight, 0);
    for (int j = 0; j < NB; j++)
        KT_EQ(b[j].done_calls, 1);
}

/* Data by pointer from a memory slab stays valid while more is written. */
static void test_pin(struct store *st)
{
    struct kc_key k = kt_key(60000);
    KT_EQ(kt_put1(st, NS, &k, BLK, 9), KC_OK);
    struct store_get_item it;
    struct store_get g;
    get_chain(st, &k, 1, false, &it, &g);
    check_item(&it, BLK);
    put_range(st, 61000, 3 * MEM / BLK);   /* cycles every memory slab */
    long bad = kt_verify(it.data, it.len, &k);
    KT_CHECKF(bad < 0, "pinned data changed at offset %ld", bad);
    store_get_release(st, &g);
    KT_EQ(KT_GET(st, NS, &k, false, NULL), KC_OK);
}

/* Zero-copy put: reserve, fill, commit; abort leaves nothing. */
static void test_reserve(struct store *st)
{
    struct store_wslot ws;
    struct kc_key k = kt_key(70000), k2 = kt_key(70001);
    KT_OK(store_put_reserve(st, NS, &k, 3, BLK, &ws));
    KT_CHECK(ws.buf != NULL);
    KT_EQ(ws.len, BLK);
    kt_fill(ws.buf, BLK, &k);
    KT_OK(store_put_commit(st, &ws));
    struct store_item_info ii;
    KT_OK(store_describe(st, NS, &k, &ii));
    KT_EQ(ii.chain_pos, 3);
    KT_EQ(KT_GET(st, NS, &k, false, NULL), KC_OK);
    KT_EQ(store_put_reserve(st, NS, &k, 3, BLK, &ws), KC_EXISTS);
    KT_EQ(store_put_reserve(st, NS, &k2, 0, BLK - 1, &ws), KC_EBADSIZE);

    KT_OK(store_put_reserve(st, NS, &k2, 0, BLK, &ws));
    memset(ws.buf, 0xab, BLK);
    store_put_abort(st, &ws);
    KT_EQ(store_match(st, NS, &k2, 1), 0);
    KT_EQ(KT_GET(st, NS, &k2, false, NULL), KC_MISS);

    put_range(st, 80000, 2 * MEM / BLK);  /* the reserved one to the device */
    KT_EQ(KT_GET(st, NS, &k, true, NULL), KC_OK);
    KT_EQ(KT_GET(st, NS, &k2, true, NULL), KC_MISS);
}

/* Two stores open in one process keep to themselves. */
static void test_two_stores(void)
{
    char p1[4200], p2[4200];
    struct store_config c1, c2;
    kt_config(&c1, kt_path(p1, sizeof(p1), "one"), 16 * KT_MIB, 1 * KT_MIB,
              2 * KT_MIB, 4 * KT_KIB);
    kt_config(&c2, kt_path(p2, sizeof(p2), "two"), 16 * KT_MIB, 1 * KT_MIB,
              2 * KT_MIB, 4 * KT_KIB);
    c1.fresh = c2.fresh = true;
    struct store *a = KT_OPEN(&c1), *b = KT_OPEN(&c2);
    KT_OK(store_ns_open(a, NS, BLK, NULL, 0));
    KT_OK(store_ns_open(b, NS, BLK, NULL, 0));
    for (uint64_t i = 0; i < 100; i++)
        KT_PUT(i % 2 ? a : b, NS, 900000 + i, BLK);
    for (uint64_t i = 0; i < 100; i++) {
        struct kc_key k = kt_key(900000 + i);
        KT_EQ(KT_GET(i % 2 ? a : b, NS, &k, false, NULL), KC_OK);
        KT_EQ(KT_GET(i % 2 ? b : a, NS, &k, false, NULL), KC_MISS);
    }
    KT_EQ(kt_stats(a).items, 50);
    KT_EQ(kt_stats(b).items, 50);
    KT_CLOSE(a);
    KT_CLOSE(b);
}

int main(void)
{
    kt_begin("rw");
    char path[4200];
    struct store_config cfg;
    kt_config(&cfg, kt_path(path, sizeof(path), "store"), 128 * KT_MIB,
              1 * KT_MIB, MEM, 4 * KT_KIB);
    cfg.fresh = true;
    struct store *st = KT_OPEN(&cfg);
    KT_OK(store_ns_open(st, NS, BLK, NULL, 0));
    KT_OK(store_ns_open(st, NSV, 0, NULL, 0));
    test_dram(st);
    test_device(st);
    test_variable(st);
    test_prefix(st);
    test_async(st);
    test_pin(st);
    test_reserve(st);
    struct store_stats s = kt_stats(st);
    KT_EQ(s.checksum_failures, 0);
    KT_EQ(s.io_errors, 0);
    KT_EQ(s.evictions, 0);
    KT_CLOSE(st);
    test_two_stores();
    printf("rw: ok\n");
    return 0;
}
