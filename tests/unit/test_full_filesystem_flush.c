/*
 * test_full_filesystem_flush.c - a slab write refused with ENOSPC (a full
 * file system under a store file that could not be given its blocks ahead)
 * is reported: io_errors and nospace_errors count it (the daemon's Health
 * says degraded on io_errors), blocks_lost counts the acknowledged blocks
 * it held, and a log line says so. Every other block stays byte-identical,
 * none of the lost ones is served, the audit agrees, and once space is
 * back (reopened without the fault) the store takes puts again.
 */
#include "kt.h"

enum { NS = 9, BLK = 60 * 1024, N = 120 };

/* Log sink: counts the lines that say the file system is full. */
static void full_log(void *arg, int level, const char *msg)
{
    if (level == 0 && strstr(msg, "file system is full") != NULL)
        ++*(int *)arg;
}

int main(void)
{
    kt_begin("full_filesystem_flush");
    char path[4200];
    struct store_config cfg;
    int full_lines = 0;
    kt_config(&cfg, kt_path(path, sizeof(path), "store"), 64 * KT_MIB,
              1 * KT_MIB, 2 * KT_MIB, 4 * KT_KIB);
    cfg.fresh = true;
    struct store *st = KT_OPEN(&cfg);
    KT_OK(store_ns_open(st, NS, BLK, NULL, 0));
    KT_CLOSE(st);

    /* Every third write is refused: the file system is full. */
    cfg.fresh = false;
    cfg.fault_write_every = 3;
    cfg.fault_errno = ENOSPC;
    cfg.log = full_log;
    cfg.log_arg = &full_lines;
    st = KT_OPEN(&cfg);
    for (uint64_t i = 0; i < N; i++)
        KT_PUT(st, NS, i, BLK);
    KT_OK(store_flush(st));
    struct store_stats s = kt_stats(st);
    printf("  %" PRIu64 " slab writes refused, %" PRIu64 " blocks lost, %" PRIu64
           " live of %d\n", s.nospace_errors, s.blocks_lost, s.items, N);
    KT_CHECK(s.nospace_errors > 0);
    KT_CHECK(s.io_errors >= s.nospace_errors);
    KT_CHECK(full_lines > 0);
    KT_EQ(s.evictions, 0);                  /* the device holds all N */
    KT_EQ(s.items + s.blocks_lost, (uint64_t)N);   /* nothing lost silently */
    KT_CHECK(s.blocks_lost > 0 && s.items > 0);
    uint64_t hits = 0;
    for (uint64_t i = 0; i < N; i++) {
        struct kc_key k = kt_key(i);
        int r = KT_GET(st, NS, &k, true, NULL);   /* wrong bytes fail the test */
        KT_CHECK(r == KC_OK || r == KC_MISS);
        hits += r == KC_OK;
    }
    KT_EQ(hits, s.items);
    KT_CLOSE(st);

    /* Space is back: what was written is there, and puts are taken. */
    cfg.fault_write_every = 0;
    cfg.fault_errno = 0;
    st = KT_OPEN(&cfg);
    KT_EQ(kt_stats(st).items, hits);
    struct kc_key k = kt_key(1000000);
    KT_EQ(kt_put1(st, NS, &k, BLK, 0), KC_OK);
    KT_OK(store_flush(st));
    KT_EQ(KT_GET(st, NS, &k, false, NULL), KC_OK);
    KT_EQ(kt_stats(st).io_errors, 0);
    KT_CLOSE(st);
    printf("full_filesystem_flush: ok\n");
    return 0;
}
