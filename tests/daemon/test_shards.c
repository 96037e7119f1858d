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

/* The daemon's umask, from /proc/PID/status ("Umask:\t0022"), or -1. */
static int proc_umask(pid_t pid)
{
    char path[64], line[256];
    int mask = -1;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "Umask: %o", (unsigned *)&mask) == 1)
            break;
    fclose(f);
    return mask;
}

int main(int argc, char **argv)
{
    static const char *const two[] = { "--threads", "2", NULL };
    static const char *const eight[] = { "--threads", "8", "-S", "512m", "-m", "64",
                                         "--slab-size", "4m", NULL };
    struct td d;
    char store[400];
    struct stat sb;

    if (argc > 1)
        td_set_binary(argv[1]);
    td_mkdir(&d);
    umask(022);
    td_start(&d, eight);
    for (int i = 0; i < 8; i++) {
        char path[400];
        snprintf(path, sizeof(path), "%s.%d", d.sock, i);
        wait_path(path);
        CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    }
    /* Bug "shards_umask_race": eight shards binding at once each set and
     * restored the process umask; interleaved, the socket's 0177 could
     * stay for good.  Every socket is 0600 and the umask is the one the
     * daemon was started with. */
    int m = proc_umask(d.pid);
    CHECK(m == -1 || m == 022);
    CHECK(td_stop(&d) == 0);
    td_cleanup(&d);
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
