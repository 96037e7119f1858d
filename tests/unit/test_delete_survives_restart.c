/*
 * test_delete_survives_restart.c - a delete is final across a clean
 * restart and a crash.
 *
 * Deletes used to change only the index: the item and slab headers on the
 * device stayed valid and recovery brought every deleted block back. Now a
 * delete writes a tombstone through the log. Three cases: blocks written
 * and deleted before a clean close; blocks on the device deleted after a
 * restart, then a clean close; blocks deleted then a crash (after a
 * flush). Blocks that were not deleted stay, byte for byte.
 */
#include "kt.h"

enum { NS = 41, N = 200 };
#define BLK (16 * KT_KIB)

static struct store_config cfg;

/* Count keys [from, to) found (bytes verified). */
static uint64_t found(struct store *st, uint64_t from, uint64_t to)
{
    uint64_t n = 0;
    for (uint64_t i = from; i < to; i++) {
        struct kc_key k = kt_key(i);
        uint32_t len = 0;
        n += KT_GET(st, NS, &k, false, &len) == KC_OK;
    }
    return n;
}

/* Delete keys [from, to); each must be there. */
static void delete_range(struct store *st, uint64_t from, uint64_t to)
{
    for (uint64_t i = from; i < to; i++) {
        struct kc_key k = kt_key(i);
        KT_EQ(store_delete(st, NS, &k), KC_OK);
    }
}

/* The child of the crash case: delete, flush, end without closing. */
static void delete_then_crash(void *arg)
{
    (void)arg;
    struct store *st = KT_OPEN(&cfg);
    delete_range(st, 100, 125);
    KT_OK(store_flush(st));
}

int main(void)
{
    kt_begin("delete_survives_restart");
    char path[4200];
    kt_config(&cfg, kt_path(path, sizeof(path), "store"), 64 * KT_MIB, 1 * KT_MIB,
              4 * KT_MIB, 4 * KT_KIB);
    cfg.fresh = true;
    struct store *st = KT_OPEN(&cfg);
    KT_OK(store_ns_open(st, NS, BLK, NULL, 0));
    for (uint64_t i = 0; i < N; i++)
        KT_PUT(st, NS, i, BLK);
    delete_range(st, 0, 25);          /* some still in DRAM, some on the device */
    KT_CLOSE(st);
    cfg.fresh = false;

    st = KT_OPEN(&cfg);
    KT_EQ(found(st, 0, 25), 0);
    KT_EQ(found(st, 25, N), N - 25);
    delete_range(st, 50, 75);         /* all on the device */
    KT_CLOSE(st);

    st = KT_OPEN(&cfg);
    KT_EQ(found(st, 0, 25), 0);
    KT_EQ(found(st, 50, 75), 0);
    KT_EQ(found(st, 25, 50) + found(st, 75, N), N - 50);
    KT_CLOSE(st);

    kt_crash_after(delete_then_crash, NULL);
    st = KT_OPEN(&cfg);
    KT_EQ(found(st, 0, 25) + found(st, 50, 75) + found(st, 100, 125), 0);
    KT_EQ(found(st, 25, 50) + found(st, 75, 100) + found(st, 125, N), N - 75);
    struct store_recovery rec;
    store_recovery_info(st, &rec);
    printf("recovery: %" PRIu64 " blocks, %" PRIu64 " tombstones, %" PRIu64 " keys deleted\n",
           rec.items, rec.tombstones, rec.items_deleted);
    KT_EQ(rec.items_deleted, 75);
    KT_CLOSE(st);
    printf("ok\n");
    return 0;
}
