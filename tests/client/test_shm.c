/* test_shm: the shared-memory path of libkvcache against a real kvcached.
 * The same bytes through shared memory, the plain unix socket and TCP for
 * every get call; references (kvcache_get_prefix_refs) point into the
 * mapped region and survive eviction pressure and flushes while leased; the
 * leased-bytes bound answers KVCACHE_ELIMIT; a lease left past the timeout
 * makes kvcache_release_refs say KVCACHE_ESTALE.  Seeded (KC_TEST_SEED). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kvcache.h"
#include "kc_daemon.h"
#include "kc_test.h"

#define BLOCK  16384
#define TPB    16
#define NBLK   40

static const kvcache_ns_desc_t desc = {
    .model = "shm-model", .layer_begin = 0, .layer_end = 2, .tokens_per_block = TPB,
    .dtype = "bf16", .kv_heads = 2, .head_dim = 64, .block_bytes = BLOCK,
};

static kvcache_key_t keys[NBLK];
static uint8_t *blocks[NBLK];
static uint8_t *out[NBLK];

/* A fresh chain of NBLK random blocks. */
static void make_chain(uint64_t ns)
{
    uint32_t tokens[NBLK * TPB];

    for (int i = 0; i < NBLK * TPB; i++)
        tokens[i] = (uint32_t)rng_next();
    CHECK(kvcache_keys(ns, NULL, tokens, NBLK * TPB, TPB, keys, NBLK) == NBLK);
    for (int i = 0; i < NBLK; i++)
        for (int j = 0; j < BLOCK; j += 8) {
            uint64_t v = rng_next();
            memcpy(blocks[i] + j, &v, 8);
        }
}

/* get_prefix and get on kc return exactly the blocks put. */
static void same_bytes(kvcache_t *kc, uint64_t ns, const char *what)
{
    uint32_t lens[NBLK];
    size_t n;

    for (int i = 0; i < NBLK; i++)
        memset(out[i], 0xEE, BLOCK);
    CHECK_RC(kvcache_get_prefix(kc, ns, keys, NBLK, (void *const *)out, BLOCK, lens, &n));
    CHECK(n == NBLK);
    for (int i = 0; i < NBLK; i++)
        CHECK(lens[i] == BLOCK && memcmp(out[i], blocks[i], BLOCK) == 0);
    kvcache_key_t mix[3] = {keys[7], keys[0], keys[33]};
    for (int i = 0; i < 3; i++)
        memset(out[i], 0xEE, BLOCK);
    CHECK_RC(kvcache_get(kc, ns, mix, 3, (void *const *)out, BLOCK, lens, &n));
    CHECK(n == 3 && memcmp(out[0], blocks[7], BLOCK) == 0 &&
          memcmp(out[1], blocks[0], BLOCK) == 0 && memcmp(out[2], blocks[33], BLOCK) == 0);
    printf("  %s: get_prefix and get byte-identical\n", what);
}

/* Reserved buffers lie in the staging area over shm (memory of the
 * library over tcp); committed blocks read back the same everywhere, and
 * writing the staging area after the commit changes nothing stored. */
static void put_by_reference(kvcache_t *shm, kvcache_t *tcp, uint64_t ns)
{
    void *bufs[NBLK], *sbase;
    size_t ssize, n;
    uint32_t lens[NBLK];
    int st[NBLK];

    make_chain(ns);
    CHECK_RC(kvcache_shm_staging(shm, 0, &sbase, &ssize));
    CHECK(kvcache_shm_staging(tcp, 0, &sbase, &ssize) == KVCACHE_ENOSHM);
    CHECK_RC(kvcache_shm_staging(shm, 0, &sbase, &ssize));
    CHECK_RC(kvcache_put_reserve(shm, ns, keys, NBLK / 2, BLOCK, bufs));
    for (int i = 0; i < NBLK / 2; i++) {
        CHECK((uint8_t *)bufs[i] >= (uint8_t *)sbase &&
              (uint8_t *)bufs[i] + BLOCK <= (uint8_t *)sbase + ssize);
        memcpy(bufs[i], blocks[i], BLOCK);
    }
    CHECK_RC(kvcache_put_commit(shm, ns, keys, NBLK / 2, 0, bufs, BLOCK, st, &n));
    CHECK(n == NBLK / 2 && st[0] == KVCACHE_PUT_STORED);
    memset(sbase, 0x5A, 2 * BLOCK);   /* after the commit: no effect */
    CHECK_RC(kvcache_put_reserve(tcp, ns, keys + NBLK / 2, NBLK / 2, BLOCK, bufs));
    for (int i = 0; i < NBLK / 2; i++)
        memcpy(bufs[i], blocks[NBLK / 2 + i], BLOCK);
    CHECK_RC(kvcache_put_commit(tcp, ns, keys + NBLK / 2, NBLK / 2, NBLK / 2, bufs, BLOCK,
                                NULL, &n));
    CHECK(n == NBLK / 2);
    CHECK_RC(kvcache_get_prefix(tcp, ns, keys, NBLK, (void *const *)out, BLOCK, lens, &n));
    CHECK(n == NBLK);
    for (int i = 0; i < NBLK; i++)
        CHECK(memcmp(out[i], blocks[i], BLOCK) == 0);
    /* a reservation given back unused */
    CHECK_RC(kvcache_put_reserve(shm, ns, keys, 2, BLOCK, bufs));
    kvcache_put_cancel(shm, bufs, 2);
    printf("  puts by reference: staging area over shm, same bytes back\n");
}

/* Every way in gives the same bytes; refs point into the region. */
static void every_path(struct kcd *d)
{
    char plain[400];
    kvcache_t *shm, *sock, *tcp;
    kvcache_ref_t refs[NBLK];
    const void *base;
    size_t size, n;
    uint64_t ns;
    int err = 0;

    snprintf(plain, sizeof(plain), "%s?shm=0", d->uri);
    shm = kvcache_create(d->uri, NULL, &err);
    sock = kvcache_create(plain, NULL, &err);
    tcp = kvcache_create(d->tcp_uri, NULL, &err);
    CHECK(shm && sock && tcp);
    CHECK_RC(kvcache_open_namespace(shm, &desc, &ns));
    CHECK_RC(kvcache_open_namespace(sock, &desc, &ns));
    CHECK_RC(kvcache_open_namespace(tcp, &desc, &ns));
    CHECK_RC(kvcache_shm_region(shm, 0, &base, &size));
    CHECK(base != NULL && size >= (8u << 20));
    /* sealed: the mapping cannot be made writable (daemon memory is safe) */
    CHECK(mprotect((void *)base, 4096, PROT_READ | PROT_WRITE) != 0);
    CHECK(kvcache_shm_region(sock, 0, &base, &size) == KVCACHE_ENOSHM);
    CHECK(kvcache_shm_region(tcp, 0, &base, &size) == KVCACHE_ENOSHM);
    CHECK_RC(kvcache_shm_region(shm, 0, &base, &size));
    make_chain(ns);
    CHECK_RC(kvcache_put(shm, ns, keys, NBLK, 0, (const void *const *)blocks, BLOCK, NULL, &n));
    CHECK(n == NBLK);
    same_bytes(shm, ns, "shared memory");
    same_bytes(sock, ns, "unix socket");
    same_bytes(tcp, ns, "tcp");

    /* references: in the region over shm, library copies over tcp */
    CHECK_RC(kvcache_get_prefix_refs(shm, ns, keys, NBLK, refs, &n));
    CHECK(n == NBLK);
    for (int i = 0; i < NBLK; i++) {
        CHECK(refs[i].flags & KVCACHE_REF_SHARED);
        CHECK((const uint8_t *)refs[i].data >= (const uint8_t *)base &&
              (const uint8_t *)refs[i].data + BLOCK <= (const uint8_t *)base + size);
        CHECK(refs[i].len == BLOCK && memcmp(refs[i].data, blocks[i], BLOCK) == 0);
    }
    CHECK_RC(kvcache_release_refs(shm, refs, n));
    CHECK(refs[0].data == NULL && refs[0].lease == 0);
    CHECK_RC(kvcache_get_prefix_refs(tcp, ns, keys, NBLK, refs, &n));
    CHECK(n == NBLK && !(refs[0].flags & KVCACHE_REF_SHARED));
    for (int i = 0; i < NBLK; i++)
        CHECK(memcmp(refs[i].data, blocks[i], BLOCK) == 0);
    CHECK_RC(kvcache_release_refs(tcp, refs, n));
    printf("  references: in the region over shm, copies over tcp\n");
    put_by_reference(shm, tcp, ns);
    kvcache_destroy(shm);
    kvcache_destroy(sock);
    kvcache_destroy(tcp);
}

/* Blocks held by reference keep their bytes while other puts evict
 * everything around them (the store is 64 MiB, memory 8 MiB). */
static void leased_survives_eviction(struct kcd *d)
{
    kvcache_t *shm = kvcache_create(d->uri, NULL, NULL), *tcp = kvcache_create(d->tcp_uri, NULL, NULL);
    kvcache_ref_t refs[NBLK];
    static kvcache_key_t fill[256];
    const void *fb[256];
    size_t n, found;
    uint64_t ns;

    CHECK(shm && tcp);
    CHECK_RC(kvcache_open_namespace(shm, &desc, &ns));
    CHECK_RC(kvcache_open_namespace(tcp, &desc, &ns));
    make_chain(ns);
    CHECK_RC(kvcache_put(shm, ns, keys, NBLK, 0, (const void *const *)blocks, BLOCK, NULL, &n));
    CHECK_RC(kvcache_get_prefix_refs(shm, ns, keys, NBLK, refs, &found));
    CHECK(found == NBLK);
    /* 96 MiB of other blocks through a 64 MiB store: every slab turns over */
    for (int round = 0; round < 24; round++) {
        uint32_t tok[256 * TPB];
        for (int i = 0; i < 256 * TPB; i++)
            tok[i] = (uint32_t)rng_next();
        CHECK(kvcache_keys(ns, NULL, tok, 256 * TPB, TPB, fill, 256) == 256);
        for (int i = 0; i < 256; i++)
            fb[i] = blocks[(i + round) % NBLK];
        kvcache_put(tcp, ns, fill, 256, 0, fb, BLOCK, NULL, &n);
    }
    CHECK_RC(kvcache_match(tcp, ns, keys, NBLK, &n));
    printf("  leased: %zu of %d blocks still indexed after the fill\n", n, NBLK);
    for (int i = 0; i < NBLK; i++)
        CHECK(memcmp(refs[i].data, blocks[i], BLOCK) == 0);
    CHECK_RC(kvcache_release_refs(shm, refs, found));
    printf("  leased blocks kept their bytes through eviction and flushes\n");
    kvcache_destroy(shm);
    kvcache_destroy(tcp);
}

/* Buffers reserved before a daemon restart are committed after it (the
 * new connection's staging area gets a copy) and given back without
 * freeing memory the library does not own (bug: cancel freed them). */
static void reserve_across_restart(struct kcd *d)
{
    kvcache_t *kc = kvcache_create(d->uri, NULL, NULL);
    void *bufs[4], *sbase, *sbase2;
    uint32_t lens[4];
    size_t n, ssize;
    uint64_t ns;

    CHECK(kc);
    CHECK_RC(kvcache_open_namespace(kc, &desc, &ns));
    make_chain(ns);
    CHECK_RC(kvcache_shm_staging(kc, 0, &sbase, &ssize));
    CHECK_RC(kvcache_put_reserve(kc, ns, keys, 4, BLOCK, bufs));
    for (int i = 0; i < 4; i++)
        memcpy(bufs[i], blocks[i], BLOCK);
    kcd_stop(d, SIGTERM);
    kcd_start(d, 0, 0);
    CHECK_RC(kvcache_put_commit(kc, ns, keys, 4, 0, bufs, BLOCK, NULL, &n));
    CHECK(n == 4);
    CHECK_RC(kvcache_shm_staging(kc, 0, &sbase2, &ssize));
    CHECK_RC(kvcache_get_prefix(kc, ns, keys, 4, (void *const *)out, BLOCK, lens, &n));
    CHECK(n == 4);
    for (int i = 0; i < 4; i++)
        CHECK(memcmp(out[i], blocks[i], BLOCK) == 0);
    kvcache_destroy(kc);
    printf("  reserved before a daemon restart, committed after it: same bytes\n");
}

/* A handle on d's unix socket with a new chain of nput blocks stored. */
static kvcache_t *handle_with_chain(struct kcd *d, uint64_t *ns, size_t nput)
{
    kvcache_t *kc = kvcache_create(d->uri, NULL, NULL);
    size_t n;

    CHECK(kc);
    CHECK_RC(kvcache_open_namespace(kc, &desc, ns));
    make_chain(*ns);
    CHECK_RC(kvcache_put(kc, *ns, keys, nput, 0, (const void *const *)blocks, BLOCK, NULL, &n));
    CHECK(n == nput);
    return kc;
}

/* --lease-max 256k: a get of 40 blocks of 16 KiB by reference is refused. */
static void lease_limit(struct kcd *d)
{
    kvcache_ref_t refs[NBLK];
    size_t n;
    uint64_t ns;
    kvcache_t *shm = handle_with_chain(d, &ns, NBLK);

    CHECK(kvcache_get_prefix_refs(shm, ns, keys, NBLK, refs, &n) == KVCACHE_ELIMIT);
    CHECK(n == 0);
    printf("  over --lease-max: %s\n", kvcache_last_error(shm));
    /* 16 blocks fit; 16 more while they are held do not; after release they do */
    CHECK_RC(kvcache_get_prefix_refs(shm, ns, keys, 16, refs, &n));
    CHECK(n == 16);
    kvcache_ref_t more[16];
    size_t m;
    CHECK(kvcache_get_prefix_refs(shm, ns, keys, 16, more, &m) == KVCACHE_ELIMIT);
    CHECK_RC(kvcache_release_refs(shm, refs, n));
    CHECK_RC(kvcache_get_prefix_refs(shm, ns, keys, 16, more, &m));
    CHECK(m == 16 && memcmp(more[15].data, blocks[15], BLOCK) == 0);
    CHECK_RC(kvcache_release_refs(shm, more, m));
    /* the copying calls are not leased past their return */
    for (int i = 0; i < 4; i++)
        CHECK_RC(kvcache_get_prefix(shm, ns, keys, 16, (void *const *)out, BLOCK, NULL, &n));
    kvcache_destroy(shm);
}

/* --lease-timeout 1: references kept 2.5 s are stale on release. */
static void lease_timeout(struct kcd *d)
{
    kvcache_ref_t refs[NBLK];
    size_t n;
    uint64_t ns;
    kvcache_t *shm = handle_with_chain(d, &ns, 8);

    CHECK_RC(kvcache_get_prefix_refs(shm, ns, keys, 8, refs, &n));
    CHECK(n == 8);
    usleep(2500 * 1000);
    CHECK(kvcache_release_refs(shm, refs, n) == KVCACHE_ESTALE);
    printf("  a lease kept past --lease-timeout: KVCACHE_ESTALE on release\n");
    kvcache_destroy(shm);
}

int main(void)
{
    struct kcd d;
    const char *seed = getenv("KC_TEST_SEED");

    rng_state = seed ? strtoull(seed, NULL, 0) : (uint64_t)time(NULL);
    printf("seed %llu\n", (unsigned long long)rng_state);
    kcd_setup();
    for (int i = 0; i < NBLK; i++) {
        blocks[i] = malloc(BLOCK);
        out[i] = malloc(BLOCK);
        CHECK(blocks[i] && out[i]);
    }
    kcd_start(&d, 0, 1);
    every_path(&d);
    leased_survives_eviction(&d);
    reserve_across_restart(&d);
    kcd_stop(&d, SIGTERM);
    kcd_start_opt(&d, 1, 1, "--lease-max", "256k");
    lease_limit(&d);
    kcd_stop(&d, SIGTERM);
    kcd_start_opt(&d, 2, 1, "--lease-timeout", "1");
    lease_timeout(&d);
    kcd_stop(&d, SIGTERM);
    for (int i = 0; i < NBLK; i++) {
        free(blocks[i]);
        free(out[i]);
    }
    printf("ok\n");
    return 0;
}
