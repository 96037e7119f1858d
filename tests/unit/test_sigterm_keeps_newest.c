/*
 * test_sigterm_keeps_newest.c - a clean close loses nothing, even when the
 * index was sized for larger blocks than those stored.
 *
 * The store is sized for 256 KiB blocks (the default min_item_size) and
 * filled with 4 KiB blocks, many times what fits: the put path reclaims
 * slabs to keep the index in bounds. Recovery used to read slabs oldest
 * first and stop inserting once the index was full, dropping the newest
 * blocks and bringing back evicted ones. Now every block present before
 * the close must be there after it, byte for byte, and no other.
 */
#include "kt.h"

enum { NS = 40, N = 6000 };
#define BLK (4 * KT_KIB)

static bool present[N];

int main(void)
{
    kt_begin("sigterm_keeps_newest");
    char path[4200];
    struct store_config cfg;
    kt_config(&cfg, kt_path(path, sizeof(path), "store"), 48 * KT_MIB, 1 * KT_MIB,
              4 * KT_MIB, 256 * KT_KIB);
    cfg.fresh = true;
    struct store *st = KT_OPEN(&cfg);
    KT_OK(store_ns_open(st, NS, BLK, NULL, 0));
    for (uint64_t i = 0; i < N; i++)
        KT_PUT(st, NS, i, BLK);
    uint64_t before = 0;
    for (uint64_t i = 0; i < N; i++) {
        struct kc_key k = kt_key(i);
        present[i] = store_match(st, NS, &k, 1) == 1;
        before += present[i];
    }
    KT_CHECK(before > 100);
    KT_CLOSE(st);

    cfg.fresh = false;
    st = KT_OPEN(&cfg);
    uint64_t after = 0, lost = 0, back = 0;
    for (uint64_t i = 0; i < N; i++) {
        struct kc_key k = kt_key(i);
        uint32_t len = 0;
        int r = KT_GET(st, NS, &k, false, &len);   /* verifies the bytes */
        after += r == KC_OK;
        lost += present[i] && r != KC_OK;
        back += !present[i] && r == KC_OK;
    }
    printf("%" PRIu64 " blocks before the close, %" PRIu64 " after: %" PRIu64
           " lost, %" PRIu64 " evicted ones back\n", before, after, lost, back);
    KT_EQ(lost, 0);
    KT_EQ(back, 0);
    KT_CLOSE(st);
    printf("ok\n");
    return 0;
}
