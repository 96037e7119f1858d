/*
 * test_evicted_stays_gone.c - blocks evicted before a restart (clean or a
 * crash) do not come back.
 *
 * Reclaiming a slab used to change only the DRAM tables: its header and
 * items stayed valid on the device until the slab was written again, and a
 * restart brought the evicted blocks back (and, with them, values that had
 * been deleted or replaced since). Now a reclaimed slab's header is
 * overwritten before the slab is reused. The store is filled several times
 * over, under fifo, lru and prefix (which reclaims ahead of need), then
 * closed cleanly: exactly the blocks present before must be there after;
 * then filled more and crashed without a flush: no evicted block may come
 * back, and only blocks of that last fill (maybe still in DRAM) may be lost.
 */
#include "kt.h"

enum { NS = 43, N = 1500 };
#define BLK (48 * KT_KIB)

static struct store_config cfg;
static bool *present;   /* shared with the child */

/* Put keys [from, to), then note which of all keys are present. */
static void fill(struct store *st, uint64_t from, uint64_t to)
{
    for (uint64_t i = from; i < to; i++) {
        KT_PUT(st, NS, i, BLK);
        if (i % 7 == 0) {      /* reads, so that lru differs from fifo */
            struct kc_key k = kt_key(i / 2);
            uint32_t len;
            KT_GET(st, NS, &k, false, &len);
        }
    }
    for (uint64_t i = 0; i < N; i++) {
        struct kc_key k = kt_key(i);
        present[i] = store_match(st, NS, &k, 1) == 1;
    }
}

/* Every key present before must be there (except keys from `volatile_from`
 * on: maybe lost with DRAM), no other. */
static void check(const char *when, uint64_t volatile_from)
{
    struct store *st = KT_OPEN(&cfg);
    uint64_t lost = 0, back = 0, n = 0;
    for (uint64_t i = 0; i < N; i++) {
        struct kc_key k = kt_key(i);
        uint32_t len = 0;
        int r = KT_GET(st, NS, &k, false, &len);
        n += r == KC_OK;
        lost += present[i] && r != KC_OK && i < volatile_from;
        back += !present[i] && r == KC_OK;
    }
    printf("%s %s: %" PRIu64 " present, %" PRIu64 " lost, %" PRIu64 " evicted ones back\n",
           cfg.evict, when, n, lost, back);
    KT_EQ(lost, 0);
    KT_EQ(back, 0);
    KT_CLOSE(st);
}

/* The crash case: more puts, end without closing or flushing. */
static void fill_then_crash(void *arg)
{
    (void)arg;
    struct store *st = KT_OPEN(&cfg);
    fill(st, N / 2, N);
}

int main(void)
{
    kt_begin("evicted_stays_gone");
    char path[4200];
    const char *policies[] = { "fifo", "lru", "prefix" };
    present = kt_shared(N * sizeof(bool));
    for (int p = 0; p < 3; p++) {
        kt_config(&cfg, kt_path(path, sizeof(path), "store"), 24 * KT_MIB, 1 * KT_MIB,
                  3 * KT_MIB, 4 * KT_KIB);
        cfg.evict = policies[p];
        cfg.fresh = true;
        struct store *st = KT_OPEN(&cfg);
        KT_OK(store_ns_open(st, NS, BLK, NULL, 0));
        fill(st, 0, N / 2);
        KT_CLOSE(st);
        cfg.fresh = false;
        check("after a clean restart", N);
        kt_crash_after(fill_then_crash, NULL);
        check("after a crash", N / 2);
    }
    printf("ok\n");
    return 0;
}
