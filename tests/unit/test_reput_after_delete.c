/*
 * test_reput_after_delete.c - a block deleted and put again with other bytes
 * must come back after a restart with the bytes of the last put.
 *
 * When the deleted copy and the new one share a slab (the slab was still
 * open in DRAM), both are on the device with the same slab sequence number;
 * recovery must prefer the later slot, not whichever header it met first.
 * The same across slabs (newer slab wins) is checked as a control.
 */
#include "kt.h"

enum { NS = 30 };
#define BLK (16 * KT_KIB)

/* Put key under the bytes that content_key implies. */
static void put_as(struct store *st, const struct kc_key *key,
                   const struct kc_key *content_key)
{
    static uint8_t buf[BLK];
    kt_fill(buf, BLK, content_key);
    struct store_put_item it = { .key = *key, .len = BLK, .data = buf,
                                 .status = -1 };
    KT_OK(store_put(st, NS, &it, 1));
    KT_EQ(it.status, KC_OK);
}

/* Get key; its bytes must be those content_key implies. Returns status. */
static int get_as(struct store *st, const struct kc_key *key,
                  const struct kc_key *content_key, const char *what)
{
    struct store_get_item it;
    struct store_get g;
    memset(&it, 0, sizeof(it));
    memset(&g, 0, sizeof(g));
    it.key = *key;
    g.ns = NS;
    g.items = &it;
    g.n = 1;
    KT_OK(store_get(st, &g));
    int r = it.status;
    if (r == KC_OK) {
        KT_EQ(it.len, BLK);
        long bad = kt_verify(it.data, it.len, content_key);
        if (bad >= 0) {
            struct kc_key self = *key;
            bool old = kt_verify(it.data, it.len, &self) < 0;
            kt_fail(__FILE__, __LINE__, "%s: stale bytes at offset %ld: got "
                    "%s, not those of the last put", what, bad,
                    old ? "the DELETED copy's bytes" : "unknown bytes");
        }
    }
    store_get_release(st, &g);
    return r;
}

int main(void)
{
    kt_begin("reput_after_delete");
    char path[4200];
    struct store_config cfg;
    kt_config(&cfg, kt_path(path, sizeof(path), "store"), 16 * KT_MIB,
              1 * KT_MIB, 4 * KT_MIB, 4 * KT_KIB);
    cfg.fresh = true;
    struct store *st = KT_OPEN(&cfg);
    KT_OK(store_ns_open(st, NS, BLK, NULL, 0));

    /* Same slab: A put, deleted, B put under the same key, one open slab. */
    struct kc_key k1 = kt_key(1), b1 = kt_key(1001);
    KT_EQ(kt_put1(st, NS, &k1, BLK, 0), KC_OK);    /* bytes of k1 */
    for (uint64_t i = 100; i < 104; i++)           /* other blocks between */
        KT_PUT(st, NS, i, BLK);
    KT_EQ(store_delete(st, NS, &k1), KC_OK);
    put_as(st, &k1, &b1);                          /* bytes of b1 */

    /* Across slabs: A flushed in one slab, B in a later one. */
    struct kc_key k2 = kt_key(2), b2 = kt_key(1002);
    KT_EQ(kt_put1(st, NS, &k2, BLK, 0), KC_OK);
    KT_OK(store_flush(st));
    KT_EQ(store_delete(st, NS, &k2), KC_OK);
    put_as(st, &k2, &b2);

    KT_EQ(get_as(st, &k1, &b1, "same slab, before restart"), KC_OK);
    KT_EQ(get_as(st, &k2, &b2, "other slab, before restart"), KC_OK);
    struct store_item_info i1;
    KT_OK(store_describe(st, NS, &k1, &i1));
    printf("  key 1: slab %u slot %u\n", i1.slab, i1.slot);
    KT_CLOSE(st);

    cfg.fresh = false;
    st = KT_OPEN(&cfg);
    KT_EQ(get_as(st, &k2, &b2, "other slab, after restart"), KC_OK);
    KT_EQ(get_as(st, &k1, &b1, "same slab, after restart"), KC_OK);
    KT_CLOSE(st);
    printf("reput_after_delete: ok\n");
    return 0;
}
