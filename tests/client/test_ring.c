/* test_ring: the ketama ring alone.  Layout as twemproxy's at 160 points,
 * spread over three servers within 10% of even, and the keys that move when
 * a server is added or removed.  Keys are random; the seed is printed and
 * can be forced with KC_TEST_SEED. */
#include <string.h>
#include <time.h>

#include "kvcache.h"
#include "kcc_ring.h"
#include "kc_test.h"

#define NKEYS 200000
#define POINTS 4000  /* the library's default points per server */

static uint32_t *hashes;  /* ring hash of each test key */

static int ring_has(const struct kcc_ring *r, uint32_t value, uint32_t server)
{
    for (uint32_t i = 0; i < r->npoints; i++)
        if (r->points[i].value == value && r->points[i].server == server)
            return 1;
    return 0;
}

/* At 160 points the ring is twemproxy's: 40 md5 digests per server of
 * "NAME-i", four LE words each (values computed with Python's hashlib). */
static void layout(void)
{
    const char *names[] = {"127.0.0.1:11211", "127.0.0.1:11212"};
    struct kcc_ring r;
    uint8_t key[16];

    CHECK(kcc_ring_init(&r, names, NULL, 2, 160) == 0);
    CHECK(r.npoints == 320);
    CHECK(ring_has(&r, 0x9a56fae2, 0) && ring_has(&r, 0x585ecf4e, 0));
    CHECK(ring_has(&r, 0x98bf09ab, 0) && ring_has(&r, 0x59c848d9, 0));
    CHECK(ring_has(&r, 0xa8ac08a3, 0) && ring_has(&r, 0x2475eb7b, 0));  /* "-39" */
    for (uint32_t i = 1; i < r.npoints; i++)
        CHECK(r.points[i - 1].value <= r.points[i].value);
    /* Lookup: first point >= hash, wrapping to the first point. */
    CHECK(kcc_ring_lookup(&r, r.points[5].value) == r.points[5].server);
    CHECK(kcc_ring_lookup(&r, r.points[5].value + 1) == r.points[6].server);
    CHECK(kcc_ring_lookup(&r, 0xffffffffu) == r.points[0].server ||
          r.points[r.npoints - 1].value == 0xffffffffu);
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)i;
    CHECK_EQ_U64(kcc_ring_hash(key), 0x01efc11aULL);
    kcc_ring_deinit(&r);

    /* Weights: 1 and 3 over 2 servers at 160 -> 80 and 240 points. */
    uint32_t w[2] = {1, 3};
    CHECK(kcc_ring_init(&r, names, w, 2, 160) == 0);
    CHECK(r.npoints == 320);
    uint32_t c0 = 0;
    for (uint32_t i = 0; i < r.npoints; i++)
        c0 += r.points[i].server == 0;
    CHECK(c0 == 80);
    kcc_ring_deinit(&r);
    CHECK(kcc_ring_init(&r, names, NULL, 0, 160) == KVCACHE_EINVAL);
}

/* Count keys per server. */
static void spread(const struct kcc_ring *r, uint32_t *count, uint32_t *owner)
{
    memset(count, 0, sizeof(uint32_t) * r->nservers);
    for (uint32_t i = 0; i < NKEYS; i++) {
        owner[i] = kcc_ring_lookup(r, hashes[i]);
        count[owner[i]]++;
    }
}

static void balance_and_moves(void)
{
    /* Socket paths as the live tests name them. */
    const char *names[] = {"/tmp/kc-test/d0.sock", "/tmp/kc-test/d1.sock",
                           "/tmp/kc-test/d2.sock", "/tmp/kc-test/d3.sock"};
    static uint32_t own2[NKEYS], own3[NKEYS], own4[NKEYS];
    uint32_t count[4];
    struct kcc_ring r2, r3, r4;
    uint32_t moved = 0;

    CHECK(kcc_ring_init(&r2, names, NULL, 2, POINTS) == 0);
    CHECK(kcc_ring_init(&r3, names, NULL, 3, POINTS) == 0);
    CHECK(kcc_ring_init(&r4, names, NULL, 4, POINTS) == 0);
    spread(&r3, count, own3);
    for (int s = 0; s < 3; s++) {
        double share = count[s] * 3.0 / NKEYS;
        printf("3 servers: server %d holds %.3f of even\n", s, share);
        CHECK(share > 0.9 && share < 1.1);
    }
    /* 2 -> 3 servers: about a third of the keys move, all to the new one. */
    spread(&r2, count, own2);
    for (uint32_t i = 0; i < NKEYS; i++)
        if (own2[i] != own3[i]) {
            CHECK(own3[i] == 2);
            moved++;
        }
    printf("2 -> 3 servers: %.3f of keys moved\n", (double)moved / NKEYS);
    CHECK(moved > NKEYS * 0.28 && moved < NKEYS * 0.39);
    /* 3 -> 4 servers: about a quarter move, all to the new one. */
    spread(&r4, count, own4);
    moved = 0;
    for (uint32_t i = 0; i < NKEYS; i++)
        if (own3[i] != own4[i]) {
            CHECK(own4[i] == 3);
            moved++;
        }
    printf("3 -> 4 servers: %.3f of keys moved\n", (double)moved / NKEYS);
    CHECK(moved > NKEYS * 0.20 && moved < NKEYS * 0.30);
    kcc_ring_deinit(&r2);
    kcc_ring_deinit(&r3);
    kcc_ring_deinit(&r4);
}

/* The memcache name of a key, and the placement that needs a namespace. */
static void memcache_names(void)
{
    kvcache_key_t k = { 0x0123456789abcdefull, 0xfedcba9876543210ull };
    kvcache_options_t o = { .ring_points = 160, .ring_hash = KVCACHE_RING_MEMCACHE };
    char name[KVCACHE_MEMCACHE_KEY_LEN + 1];
    int err = 0;
    kvcache_t *kc = kvcache_create("tcp:127.0.0.1:1,tcp:127.0.0.1:2", &o, &err);

    kvcache_memcache_key(0x00ab00cd00ef0012ull, k, name);
    CHECK(strcmp(name, "00ab00cd00ef0012:efcdab89674523011032547698badcfe") == 0);
    CHECK(kc != NULL);
    CHECK(kvcache_server_of(kc, k) == KVCACHE_EINVAL);
    CHECK(kvcache_server_of_ns(kc, 1, k) >= 0 && kvcache_server_of_ns(kc, 1, k) < 2);
    kvcache_destroy(kc);
}

int main(void)
{
    const char *env = getenv("KC_TEST_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
    printf("seed %llu (KC_TEST_SEED to repeat)\n", (unsigned long long)seed);
    rng_state = seed;
    hashes = malloc(sizeof(*hashes) * NKEYS);
    CHECK(hashes);
    for (uint32_t i = 0; i < NKEYS; i++) {
        uint8_t k[16];
        uint64_t a = rng_next(), b = rng_next();
        memcpy(k, &a, 8);
        memcpy(k + 8, &b, 8);
        hashes[i] = kcc_ring_hash(k);
    }
    layout();
    balance_and_moves();
    memcache_names();
    free(hashes);
    printf("ring: ok\n");
    return 0;
}
