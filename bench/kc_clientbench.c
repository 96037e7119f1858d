/*
 * kc_clientbench.c - what the client path costs: put and get_prefix throughput of one
 * chain of blocks through libkvcache, and get_prefix latency percentiles.
 *
 * Usage: kc_clientbench [URI] [-b BLOCK_BYTES] [-n BLOCKS] [-r ROUNDS] [-k KEYS_PER_CALL]
 *   Puts a chain of BLOCKS blocks, then reads it back ROUNDS times with
 *   get_prefix calls of KEYS_PER_CALL keys each, checking the bytes once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kvcache.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    const char *uri = "unix:./var/kvcached.sock";
    size_t block = 262144, nblk = 256, per = 16;
    int rounds = 8, opt, err;

    while ((opt = getopt(argc, argv, "b:n:r:k:")) != -1) {
        switch (opt) {
        case 'b': block = strtoul(optarg, NULL, 0); break;
        case 'n': nblk = strtoul(optarg, NULL, 0); break;
        case 'r': rounds = atoi(optarg); break;
        case 'k': per = strtoul(optarg, NULL, 0); break;
        default:
            fprintf(stderr, "usage: %s [URI] [-b BLOCK_BYTES] [-n BLOCKS] [-r ROUNDS] "
                            "[-k KEYS_PER_CALL]\n", argv[0]);
            return 2;
        }
    }
    if (optind < argc)
        uri = argv[optind];
    if (nblk == 0 || per == 0 || block == 0)
        return 2;
    kvcache_options_t o = {.timeout_ms = 5000};
    kvcache_t *kc = kvcache_create(uri, &o, &err);
    if (!kc) {
        fprintf(stderr, "bench: %s: %s\n", uri, kvcache_strerror(err));
        return 1;
    }
    kvcache_ns_desc_t d = {.model = "bench", .layer_end = 1, .tokens_per_block = 16,
                           .dtype = "u8", .block_bytes = (uint32_t)block};
    uint64_t ns;
    if ((err = kvcache_open_namespace(kc, &d, &ns))) {
        fprintf(stderr, "bench: open: %s\n", kvcache_last_error(kc));
        return 1;
    }
    uint32_t *tok = malloc(sizeof(uint32_t) * nblk * 16);
    kvcache_key_t *keys = malloc(sizeof(*keys) * nblk);
    uint8_t *src = malloc(nblk * block), *dst = malloc(nblk * block);
    void **sp = malloc(sizeof(void *) * nblk), **dp = malloc(sizeof(void *) * nblk);
    double *lat = malloc(sizeof(double) * (nblk / per + 1) * (size_t)rounds);
    if (!tok || !keys || !src || !dst || !sp || !dp || !lat)
        return 1;
    srand((unsigned)time(NULL) ^ (unsigned)getpid() << 16);
    uint32_t salt = (uint32_t)rand();
    for (size_t i = 0; i < nblk * 16; i++)
        tok[i] = (uint32_t)i ^ salt;
    kvcache_keys(ns, NULL, tok, nblk * 16, 16, keys, nblk);
    for (size_t i = 0; i < nblk * block; i++)
        src[i] = (uint8_t)(i * 131 + salt);
    for (size_t i = 0; i < nblk; i++) {
        sp[i] = src + i * block;
        dp[i] = dst + i * block;
    }
    size_t n, nl = 0;
    double t0 = now_s();
    for (size_t i = 0; i < nblk; i += per) {
        size_t c = nblk - i < per ? nblk - i : per;
        if ((err = kvcache_put(kc, ns, keys + i, c, (uint32_t)i, (const void *const *)sp + i,
                               block, NULL, &n)) || n != c) {
            fprintf(stderr, "bench: put: %s\n", kvcache_last_error(kc));
            return 1;
        }
    }
    double tput = now_s() - t0;
    t0 = now_s();
    for (int r = 0; r < rounds; r++)
        for (size_t i = 0; i < nblk; i += per) {
            size_t c = nblk - i < per ? nblk - i : per;
            double a = now_s();
            err = kvcache_get_prefix(kc, ns, keys + i, c, dp + i, block, NULL, &n);
            lat[nl++] = (now_s() - a) * 1e6;
            if (err || n != c) {
                fprintf(stderr, "bench: get_prefix: found %zu of %zu: %s\n", n, c,
                        kvcache_last_error(kc));
                return 1;
            }
        }
    double tget = now_s() - t0;
    if (memcmp(src, dst, nblk * block)) {
        fprintf(stderr, "bench: blocks differ\n");
        return 1;
    }
    qsort(lat, nl, sizeof(double), cmp_d);
    double mib = (double)nblk * block / (1 << 20);
    printf("%s: %zu blocks of %zu KiB, %zu keys per call\n", uri, nblk, block >> 10, per);
    printf("put        %8.1f MiB/s\n", mib / tput);
    printf("get_prefix %8.1f MiB/s  latency per call p50 %.0f us  p99 %.0f us  max %.0f us\n",
           mib * rounds / tget, lat[nl / 2], lat[nl * 99 / 100], lat[nl - 1]);
    kvcache_destroy(kc);
    free(tok); free(keys); free(src); free(dst); free(sp); free(dp); free(lat);
    return 0;
}
