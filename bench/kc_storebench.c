/*
 * kc_storebench.c - the store's benchmark (slab/ + ssd/, no daemon):
 * write, then random reads.
 *
 * Writes --write bytes of --block sized blocks into a fresh store (one
 * namespace, so one class), timing from the first put to the end of
 * store_flush(); closes the store and reopens it with a small memory budget
 * (timing the recovery scan); then reads random blocks that have no DRAM copy
 * for --seconds at each queue depth of --qd, keeping that many single-key
 * get batches in flight through store_get_submit() and store_poll().
 *
 * Prints a readable line per phase and a "RESULT" line per phase for
 * bench/store.sh:  RESULT <test> <block> <inflight> <GB/s> <p50 us> <p99 us>
 * GB/s are 1e9 bytes per second of value bytes. Every block read is checked
 * against the stamp its key put in its first bytes; a wrong block is fatal.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "slab/kc_store.h"

#define MIB ((uint64_t)1 << 20)

/* --phase: both (default), write only (keeps the file), read only (reads a
 * store an earlier "write" run left, with the same --block and --write). */
enum { PHASE_ALL, PHASE_WRITE, PHASE_READ };

/* Command line, with defaults. */
struct opts {
    const char *path;      /* store file */
    uint64_t block;        /* value size */
    uint64_t slab;         /* slab size */
    uint64_t write;        /* bytes to write */
    uint64_t device;       /* device size; 0 = write + slack */
    uint64_t wmem;         /* memory budget while writing */
    uint64_t rmem;         /* memory budget while reading */
    double seconds;        /* per read queue depth */
    unsigned qd[8];        /* read queue depths */
    unsigned nqd;
    bool dst;              /* read into caller buffers, not by pointer */
    bool reopen;           /* close and reopen between write and read */
    bool keep;             /* keep the store file */
    int phase;             /* PHASE_*: what this run does */
    uint64_t seed;
};

/* One single-key get batch kept in flight. */
struct rd {
    struct store_get g;
    struct store_get_item it;
    double t0;             /* submit time */
    double t1;             /* completion time (in the callback) */
    uint64_t idx;          /* block number asked for */
    bool done;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Key of block i. */
static struct kc_key key_of(uint64_t i)
{
    struct kc_key k = { mix(i ^ 0xb10c), mix(i + 0x5eed) };
    return k;
}

/* Bytes with an optional K/M/G suffix (powers of 1024). */
static uint64_t parse_size(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    switch (*end) {
    case 'k': case 'K': v *= 1024; break;
    case 'm': case 'M': v *= 1024 * 1024; break;
    case 'g': case 'G': v *= 1024.0 * 1024 * 1024; break;
    case '\0': break;
    default:
        fprintf(stderr, "bad size: %s\n", s);
        exit(2);
    }
    return (uint64_t)v;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Percentile p (0..1) of n sorted samples. */
static double pct(const double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

static void usage(void)
{
    fprintf(stderr,
        "usage: kc_storebench [options]\n"
        "  --path FILE       store file (default ./var/bench.store)\n"
        "  --block SIZE      value size (default 256K)\n"
        "  --slab SIZE       slab size (default 32M)\n"
        "  --write SIZE      bytes to write (default 2G)\n"
        "  --device SIZE     device size (default: 2 x write + 8 slabs)\n"
        "  --wmem SIZE       memory while writing (default 5 slabs)\n"
        "  --rmem SIZE       memory while reading (default 2 slabs)\n"
        "  --qd LIST         read queue depths (default 1,8,32)\n"
        "  --seconds S       per read queue depth (default 5)\n"
        "  --dst             read into caller buffers (default: by pointer)\n"
        "  --no-reopen       read from the store that wrote\n"
        "  --keep            keep the store file\n"
        "  --phase P         all, write (keeps the file) or read (of a kept file)\n"
        "  --seed N          random seed\n"
        "  --smoke           tiny run of a few seconds, as a test\n");
    exit(2);
}

static void parse(int argc, char **argv, struct opts *o)
{
    static const struct option lo[] = {
        { "path", 1, 0, 'p' }, { "block", 1, 0, 'b' }, { "slab", 1, 0, 's' },
        { "write", 1, 0, 'w' }, { "device", 1, 0, 'd' }, { "wmem", 1, 0, 'm' },
        { "rmem", 1, 0, 'r' }, { "qd", 1, 0, 'q' }, { "seconds", 1, 0, 't' },
        { "dst", 0, 0, 'D' }, { "no-reopen", 0, 0, 'R' }, { "keep", 0, 0, 'k' }, { "phase", 1, 0, 'P' },
        { "seed", 1, 0, 'S' }, { "smoke", 0, 0, 'Z' }, { "help", 0, 0, 'h' },
        { 0, 0, 0, 0 } };
    *o = (struct opts){ .path = "./var/bench.store", .block = 256 * 1024,
                        .slab = 32 * MIB, .write = 2048 * MIB, .seconds = 5,
                        .qd = { 1, 8, 32 }, .nqd = 3, .reopen = true,
                        .seed = 1 };
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'p': o->path = optarg; break;
        case 'b': o->block = parse_size(optarg); break;
        case 's': o->slab = parse_size(optarg); break;
        case 'w': o->write = parse_size(optarg); break;
        case 'd': o->device = parse_size(optarg); break;
        case 'm': o->wmem = parse_size(optarg); break;
        case 'r': o->rmem = parse_size(optarg); break;
        case 't': o->seconds = atof(optarg); break;
        case 'D': o->dst = true; break;
        case 'R': o->reopen = false; break;
        case 'k': o->keep = true; break;
        case 'P':
            if (strcmp(optarg, "all") == 0)
                o->phase = PHASE_ALL;
            else if (strcmp(optarg, "write") == 0)
                o->phase = PHASE_WRITE, o->keep = true;
            else if (strcmp(optarg, "read") == 0)
                o->phase = PHASE_READ, o->keep = true;
            else
                usage();
            break;
        case 'S': o->seed = strtoull(optarg, NULL, 0); break;
        case 'q': {
            o->nqd = 0;
            for (char *t = strtok(optarg, ","); t && o->nqd < 8; t = strtok(NULL, ","))
                o->qd[o->nqd++] = (unsigned)atoi(t);
            break;
        }
        case 'Z':
            o->block = 256 * 1024;
            o->slab = 4 * MIB;
            o->write = 48 * MIB;
            o->seconds = 0.3;
            break;
        default:
            usage();
        }
    }
    if (o->device == 0)   /* room for slots' padding: nothing is evicted */
        o->device = 2 * o->write + 8 * o->slab;
    if (o->wmem == 0)
        o->wmem = 5 * o->slab;
    if (o->rmem == 0)
        o->rmem = 2 * o->slab;
    if (o->block == 0 || o->block > UINT32_MAX || o->write < o->block)
        usage();
}

/* Open the store or exit. */
static struct store *open_store(const struct opts *o, uint64_t memory,
                                bool fresh)
{
    struct store_config cfg;
    store_config_default(&cfg);
    cfg.path = o->path;
    cfg.device_size = o->device;
    cfg.slab_size = (uint32_t)o->slab;
    cfg.memory = memory;
    cfg.min_item_size = (uint32_t)o->block;
    cfg.fresh = fresh;
    cfg.queue_depth = 64;
    struct store *st = NULL;
    char err[512] = "";
    int r = store_open(&cfg, &st, err, sizeof(err));
    if (r != 0) {
        fprintf(stderr, "store_open(%s): %s: %s\n", o->path, kc_strerror(r), err);
        exit(1);
    }
    return st;
}

/* Write phase: returns the number of blocks written. */
static uint64_t bench_write(struct store *st, const struct opts *o)
{
    uint64_t n = o->write / o->block;
    uint8_t *buf = NULL;
    if (posix_memalign((void **)&buf, 4096, o->block) != 0)
        exit(1);
    for (uint64_t i = 0; i < o->block; i += 8) {
        uint64_t w = mix(i);
        memcpy(buf + i, &w, o->block - i < 8 ? o->block - i : 8);
    }
    double *lat = calloc(n, sizeof(double));
    if (lat == NULL)
        exit(1);
    double t0 = now();
    for (uint64_t i = 0; i < n; i++) {
        struct kc_key k = key_of(i);
        memcpy(buf, &k, sizeof(k));   /* stamp: the key's bytes */
        struct store_put_item it = { .key = k, .chain_pos = (uint32_t)i,
                                     .len = (uint32_t)o->block, .data = buf };
        double a = now();
        int r = store_put(st, 1, &it, 1);
        lat[i] = now() - a;
        if (r != 0 || it.status != KC_OK) {
            fprintf(stderr, "put %" PRIu64 ": %s\n", i,
                    kc_strerror(r != 0 ? r : it.status));
            exit(1);
        }
    }
    int r = store_flush(st);
    double t = now() - t0;
    if (r != 0) {
        fprintf(stderr, "store_flush: %s\n", kc_strerror(r));
        exit(1);
    }
    struct store_stats s;
    store_stats(st, &s);
    qsort(lat, n, sizeof(double), cmp_double);
    double gbps = (double)(n * o->block) / t / 1e9;
    printf("write    block %8" PRIu64 " KiB  slab %4" PRIu64 " MiB  %7.2f GB/s"
           "  (%.2f GiB in %.2f s; device %.2f GB/s; put p50 %.0f us p99 %.0f"
           " us; %" PRIu64 " flushes, %" PRIu64 " evictions)\n",
           o->block / 1024, o->slab / MIB, gbps, (double)(n * o->block) /
           (1024.0 * MIB), t, (double)s.bytes_written / t / 1e9,
           pct(lat, n, 0.5) * 1e6, pct(lat, n, 0.99) * 1e6, s.flushes,
           s.evictions);
    printf("RESULT write %" PRIu64 " %u %.4f %.1f %.1f\n", o->block,
           (unsigned)(o->wmem / o->slab), gbps, pct(lat, n, 0.5) * 1e6,
           pct(lat, n, 0.99) * 1e6);
    if (s.evictions != 0)
        fprintf(stderr, "warning: %" PRIu64 " evictions while writing\n",
                s.evictions);
    free(lat);
    free(buf);
    return n;
}

/* Read completion: record the time; the loop resubmits. */
static void on_done(struct store_get *g, void *arg)
{
    (void)g;
    struct rd *r = arg;
    r->t1 = now();
    r->done = true;
}

/* Random reads at queue depth qd over the blocks in cand[0..nc). */
static void bench_read(struct store *st, const struct opts *o, unsigned qd,
                       const uint64_t *cand, uint64_t nc, uint64_t *rng)
{
    struct rd *rs = calloc(qd, sizeof(*rs));
    size_t cap = 1 << 16, nlat = 0;
    double *lat = malloc(cap * sizeof(double));
    void **dst = calloc(qd, sizeof(void *));
    if (rs == NULL || lat == NULL || dst == NULL)
        exit(1);
    for (unsigned j = 0; o->dst && j < qd; j++)
        if (posix_memalign(&dst[j], 4096, o->block) != 0)
            exit(1);

    uint64_t bytes = 0, outstanding = 0;
    double t0 = now(), end = t0 + o->seconds;
    bool stop = false;
    /* A slot is idle (nothing to account), or in flight until its done()
     * sets done, then accounted and resubmitted by this loop. */
    bool *idle = calloc(qd, sizeof(bool));
    if (idle == NULL)
        exit(1);
    for (unsigned j = 0; j < qd; j++)
        idle[j] = rs[j].done = true;
    for (;;) {
        double t = now();
        stop = stop || t >= end;
        for (unsigned j = 0; j < qd; j++) {
            struct rd *r = &rs[j];
            if (!r->done)
                continue;
            if (!idle[j]) {           /* a completion to account */
                outstanding--;
                if (r->g.status != 0 || r->it.status != KC_OK) {
                    fprintf(stderr, "read block %" PRIu64 ": %s\n", r->idx,
                            kc_strerror(r->g.status ? r->g.status : r->it.status));
                    exit(1);
                }
                struct kc_key k = key_of(r->idx);
                const void *p = o->dst ? dst[j] : r->it.data;
                if (r->it.len != o->block || memcmp(p, &k, sizeof(k)) != 0) {
                    fprintf(stderr, "read block %" PRIu64 ": WRONG DATA\n", r->idx);
                    exit(1);
                }
                store_get_release(st, &r->g);
                bytes += r->it.len;
                if (nlat == cap) {
                    cap *= 2;
                    lat = realloc(lat, cap * sizeof(double));
                    if (lat == NULL)
                        exit(1);
                }
                lat[nlat++] = r->t1 - r->t0;
                idle[j] = true;
            }
            if (stop)
                continue;
            *rng = mix(*rng);
            memset(r, 0, sizeof(*r));
            r->idx = cand[*rng % nc];
            r->it.key = key_of(r->idx);
            if (o->dst) {
                r->it.dst = dst[j];
                r->it.dst_cap = (uint32_t)o->block;
            }
            r->g.ns = 1;
            r->g.items = &r->it;
            r->g.n = 1;
            r->g.done = on_done;
            r->g.arg = r;
            r->t0 = now();
            idle[j] = false;
            outstanding++;
            int e = store_get_submit(st, &r->g);
            if (e != 0) {
                fprintf(stderr, "store_get_submit: %s\n", kc_strerror(e));
                exit(1);
            }
        }
        if (stop && outstanding == 0)
            break;
        int e = store_poll(st, true);
        if (e < 0) {
            fprintf(stderr, "store_poll: %s\n", kc_strerror(e));
            exit(1);
        }
    }
    double el = now() - t0;
    qsort(lat, nlat, sizeof(double), cmp_double);
    double gbps = (double)bytes / el / 1e9;
    printf("randread block %8" PRIu64 " KiB  qd %3u         %7.2f GB/s  "
           "(%zu reads in %.2f s; p50 %.0f us, p99 %.0f us)\n",
           o->block / 1024, qd, gbps, nlat, el, pct(lat, nlat, 0.5) * 1e6,
           pct(lat, nlat, 0.99) * 1e6);
    printf("RESULT randread %" PRIu64 " %u %.4f %.1f %.1f\n", o->block, qd,
           gbps, pct(lat, nlat, 0.5) * 1e6, pct(lat, nlat, 0.99) * 1e6);
    for (unsigned j = 0; o->dst && j < qd; j++)
        free(dst[j]);
    free(idle);
    free(dst);
    free(lat);
    free(rs);
}

int main(int argc, char **argv)
{
    struct opts o;
    parse(argc, argv, &o);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strchr(o.path, '/') != NULL) {      /* make the parent folder */
        char dir[4096];
        snprintf(dir, sizeof(dir), "%s", o.path);
        *strrchr(dir, '/') = '\0';
        if (dir[0] != '\0')
            mkdir(dir, 0755);
    }
    uint64_t n = o.write / o.block;
    struct store *st = NULL;
    if (o.phase != PHASE_READ) {
        unlink(o.path);
        st = open_store(&o, o.wmem, true);
        if (store_ns_open(st, 1, (uint32_t)o.block, NULL, 0) != 0) {
            fprintf(stderr, "store_ns_open failed\n");
            return 1;
        }
        n = bench_write(st, &o);
        if (o.phase == PHASE_WRITE) {
            store_close(st);
            return 0;
        }
    }
    if (o.reopen || o.phase == PHASE_READ) {
        if (st != NULL)
            store_close(st);
        st = open_store(&o, o.rmem, false);
        struct store_recovery rec;
        store_recovery_info(st, &rec);
        printf("recover  %" PRIu64 " slabs, %" PRIu64 " items (%" PRIu64
               " skipped) in %.3f s, %" PRIu64 " device reads\n", rec.slabs_scanned, rec.items,
               rec.items_skipped, rec.seconds, rec.reads);
        if (rec.items != n)
            fprintf(stderr, "warning: recovered %" PRIu64 " of %" PRIu64
                    " blocks\n", rec.items, n);
    }
    /* Candidates: blocks present with no DRAM copy. */
    uint64_t *cand = malloc(n * sizeof(uint64_t)), nc = 0;
    for (uint64_t i = 0; cand != NULL && i < n; i++) {
        struct store_item_info ii;
        struct kc_key k = key_of(i);
        if (store_describe(st, 1, &k, &ii) == 0 && !ii.in_memory)
            cand[nc++] = i;
    }
    if (nc == 0) {
        fprintf(stderr, "no block outside DRAM to read\n");
        return 1;
    }
    uint64_t rng = o.seed;
    for (unsigned q = 0; q < o.nqd; q++)
        bench_read(st, &o, o.qd[q], cand, nc, &rng);

    struct store_stats s;
    store_stats(st, &s);
    if (s.hits_mem != 0 || s.checksum_failures != 0 || s.io_errors != 0)
        printf("note: %" PRIu64 " DRAM hits, %" PRIu64 " checksum failures, %"
               PRIu64 " I/O errors\n", s.hits_mem, s.checksum_failures,
               s.io_errors);
    store_close(st);
    free(cand);
    if (!o.keep)
        unlink(o.path);
    return s.checksum_failures != 0 || s.io_errors != 0;
}
