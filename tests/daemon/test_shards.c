/*
 * test_shards.c - --threads 2: two independent shards (own store file,
 * own socket), each serving its blocks byte-identical; SIGTERM stops both
 * with exit 0 and each store is warm at the next start.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kc_tclient.h"

#define BLK 65536u
#define NBLK 40

/* Wait for a shard's socket to appear (shards start in parallel). */
static void wait_path(const char *path)
{
    struct stat sb;

    for (int i = 0; i < 500 && stat(path, &sb) < 0; i++)
        usleep(10000);
    CHECK(stat(path, &sb) == 0);
}

/* Put NBLK blocks into shard i's own namespace and read them back. */
static void fill_shard(struct td *d, int i, bool put)
{
    char path[400], model[32];
    struct tc c;

    snprintf(path, sizeof(path), "%s.%d", d->sock, i);
    wait_path(path);
    tc_connect_unix(&c, path);
    snprintf(model, sizeof(model), "shard-%d", i);
    uint64_t ns = tc_open_ns(&c, model, BLK);
    uint64_t base = 1000 + (uint64_t)i * 100000;
    if (put)
        tc_put_blocks(&c, ns, base, NBLK, BLK);
    CHECK(tc_get_prefix_check(&c, ns, base, NBLK, BLK) == NBLK);
    tc_close(&c);
}

int main(int argc, char **argv)
{
    static const char *const two[] = { "--threads", "2", NULL };
    struct td d;
    char store[400];
    struct stat sb;

    if (argc > 1)
        td_set_binary(argv[1]);
    td_mkdir(&d);
    td_start(&d, two);
    fill_shard(&d, 0, true);
    fill_shard(&d, 1, true);
    for (int i = 0; i < 2; i++) {
        snprintf(store, sizeof(store), "%s/kc.store.%d", d.dir, i);
        CHECK(stat(store, &sb) == 0);
    }
    CHECK(td_stop(&d) == 0);

    /* Warm: both shards recover their own blocks. */
    td_start(&d, two);
    fill_shard(&d, 0, false);
    fill_shard(&d, 1, false);
    CHECK(td_stop(&d) == 0);
    td_cleanup(&d);
    printf("shards: ok\n");
    return 0;
}
