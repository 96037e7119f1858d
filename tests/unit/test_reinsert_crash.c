/*
 * test_reinsert_crash.c - copying blocks forward (reinsertion) never loses
 * a durable block to a crash.
 *
 * The reinserting policies copy a victim's hot blocks into an open memory
 * slab and used to free the victim at once: it could be written over
 * before the copies reached the device, and a crash then lost blocks that
 * had been durable. Now the victim waits until its copies are written. A
 * child puts and reads under `prefix` and `reinsert`, flushes (a point where
 * every indexed block is durable), goes on putting and reading (reclaims
 * with copies), then ends without flushing. Every block indexed both at the
 * flush and at the end must be found after recovery, byte for byte.
 */
#include "kt.h"

enum { NS = 44, N = 3000, HOT = 96 };
#define BLK (48 * KT_KIB)

static struct store_config cfg;
static bool *at_flush, *at_end;   /* shared with the child */

/* Put keys [from, to), reading a hot set often enough to be reinserted. */
static void work(struct store *st, uint64_t from, uint64_t to)
{
    for (uint64_t i = from; i < to; i++) {
        KT_PUT(st, NS, i, BLK);
        for (uint64_t h = 0; h < 3; h++) {
            struct kc_key k = kt_key((i * 7 + h * 13) % HOT);
            uint32_t len;
            KT_GET(st, NS, &k, false, &len);
        }
    }
}

/* Note which keys are indexed. */
static void note(struct store *st, bool *v)
{
    for (uint64_t i = 0; i < N; i++) {
        struct kc_key k = kt_key(i);
        v[i] = store_match(st, NS, &k, 1) == 1;
    }
}

/* The child: work, flush, note; work more, note; end. */
static void child(void *arg)
{
    (void)arg;
    struct store *st = KT_OPEN(&cfg);
    KT_OK(store_ns_open(st, NS, BLK, NULL, 0));
    work(st, 0, N / 2);
    KT_OK(store_flush(st));
    note(st, at_flush);
    /* Go on until a reclaim has just copied blocks forward (they are in
     * an open memory slab, not yet written). */
    struct store_stats s0, s1;
    store_stats(st, &s0);
    for (uint64_t i = N / 2; i < N; i++) {
        work(st, i, i + 1);
        store_stats(st, &s1);
        if (i > N * 3 / 4 && s1.reinserts > s0.reinserts)
            break;
        s0 = s1;
    }
    /* Every write submitted lands (the open memory slabs are not written):
     * the crash comes at the worst point, not while writes are queued. */
    while (store_busy(st))
        KT_CHECK(store_poll(st, true) >= 0);
    note(st, at_end);
    struct store_stats s;
    store_stats(st, &s);
    printf("%s: %" PRIu64 " evictions, %" PRIu64 " blocks copied forward\n", cfg.evict,
           s.evictions, s.reinserts);
    KT_CHECK(s.reinserts > 0);
}

int main(void)
{
    kt_begin("reinsert_crash");
    char path[4200];
    const char *policies[] = { "prefix", "reinsert" };
    at_flush = kt_shared(N * sizeof(bool));
    at_end = kt_shared(N * sizeof(bool));
    for (int p = 0; p < 2; p++) {
        kt_config(&cfg, kt_path(path, sizeof(path), "store"), 24 * KT_MIB, 1 * KT_MIB,
                  3 * KT_MIB, 4 * KT_KIB);
        cfg.evict = policies[p];
        cfg.fresh = true;
        kt_crash_after(child, NULL);
        cfg.fresh = false;
        struct store *st = KT_OPEN(&cfg);
        uint64_t kept = 0, lost = 0;
        for (uint64_t i = 0; i < N; i++) {
            if (!at_flush[i] || !at_end[i])
                continue;
            struct kc_key k = kt_key(i);
            uint32_t len = 0;
            int r = KT_GET(st, NS, &k, false, &len);
            kept += r == KC_OK;
            lost += r != KC_OK;
        }
        printf("%s: %" PRIu64 " durable blocks kept, %" PRIu64 " lost\n", cfg.evict, kept, lost);
        KT_EQ(lost, 0);
        KT_CHECK(kept > 0);
        KT_CLOSE(st);
    }
    printf("ok\n");
    return 0;
}
