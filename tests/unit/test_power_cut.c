/*
 * test_power_cut.c - writes past a chosen point are lost, as in a power
 * loss that keeps the device's writes in order: whatever the point, no
 * stale value and no deleted value comes back, and nothing that was on the
 * device before is lost unless it was deleted or evicted before the point.
 *
 * The format depends on the order of some writes: copies forward (blocks a
 * policy reinserts, tombstones still needed) before the invalidation of
 * their victim, a superblock before the sequence numbers it reserves, a
 * slab's items with its header. A child puts, overwrites (delete, then
 * put) and deletes variable-size values under `prefix` (which copies
 * forward) in a store small enough to evict, with the store discarding
 * every write after a random one (fault_write_cut); it notes which keys are
 * indexed when the cut happens, goes on a little, and ends without
 * closing. The parent reopens the store and checks every key against the
 * model. Many rounds, each with its own cut; the seed is printed.
 */
#include "kt.h"

enum { NS = 45, KEYS = 300, ROUNDS = 12, OPS = 1500, MAXV = 40 * 1024 };

/* The model, in memory shared with the child. */
struct key_state {
    uint32_t base_ver;     /* version found at the start of the round (0: none) */
    uint32_t vers[64];     /* versions acknowledged in the round (0: a delete) */
    uint32_t nvers;
    bool overflow;         /* more than 64: anything since is allowed */
    bool gone_at_cut;      /* not indexed when the cut happened */
    bool evicted;          /* found evicted before the cut */
    uint32_t hist[256];    /* every version ever acknowledged (all rounds) */
    uint32_t nhist;
};

static struct key_state *ks;
static volatile uint64_t *cut_seen;   /* the child saw the cut */
static struct store_config cfg;

/* The bytes of version v of key k: derived from (k, v), of a size v picks. */
static uint32_t ver_len(uint32_t v)
{
    static const uint32_t sizes[] = { 200, 3000, 9000, 30000 };
    return sizes[kt_mix(v) % 4];
}

static void ver_fill(uint8_t *buf, uint32_t k, uint32_t v)
{
    struct kc_key c = kt_key(((uint64_t)k << 32) | v);
    kt_fill(buf, ver_len(v), &c);
}

/* The version key k holds in st (0: none); its bytes must be a version's. */
static uint32_t read_ver(struct store *st, uint32_t k, const uint32_t *cands, uint32_t n)
{
    static uint8_t buf[MAXV];
    struct kc_key key = kt_key(k);
    uint32_t len = 0;
    int status = kt_get_into(st, NS, &key, buf, sizeof(buf), &len);
    uint32_t found = status == KC_OK ? UINT32_MAX : 0;
    for (uint32_t i = 0; i < n && found == UINT32_MAX; i++) {
        struct kc_key c = kt_key(((uint64_t)k << 32) | cands[i]);
        if (cands[i] != 0 && len == ver_len(cands[i]) && kt_verify(buf, len, &c) < 0)
            found = cands[i];
    }
    return found;   /* UINT32_MAX: a value of no candidate version */
}

/* Note a state of key k acknowledged in this round. */
static void ack(uint32_t k, uint32_t v)
{
    struct key_state *s = &ks[k];
    if (v != 0 && s->nhist < 256)
        s->hist[s->nhist++] = v;
    if (s->nvers == 64)
        s->overflow = true;
    else
        s->vers[s->nvers++] = v;
}

/* The child: random operations, the cut somewhere among their writes. */
static void child(void *arg)
{
    uint64_t seed = *(uint64_t *)arg;
    static uint8_t buf[MAXV];
    struct store *st = KT_OPEN(&cfg);
    KT_OK(store_ns_open(st, NS, 0, NULL, 0));
    uint32_t ver = (uint32_t)(seed >> 40) | 1;   /* fresh versions per round */
    bool cut = false;
    for (uint32_t op = 0; op < OPS; op++) {
        uint64_t r = kt_mix(seed + op);
        uint32_t k = (uint32_t)(r % KEYS);
        struct kc_key key = kt_key(k);
        uint32_t now = ks[k].nvers ? ks[k].vers[ks[k].nvers - 1] : ks[k].base_ver;
        if (!cut && now != 0 && store_match(st, NS, &key, 1) == 0)
            ks[k].evicted = true;   /* evicted: its older versions may be gone */
        if (r % 10 < 6) {
            uint32_t v = ++ver;
            if (store_delete(st, NS, &key) == KC_OK)
                ack(k, 0);
            ver_fill(buf, k, v);
            struct store_put_item it = { .key = key, .len = ver_len(v), .data = buf,
                                         .status = -1 };
            KT_OK(store_put(st, NS, &it, 1));
            KT_EQ(it.status, KC_OK);
            ack(k, v);
        } else if (r % 10 < 8) {
            if (store_delete(st, NS, &key) == KC_OK)
                ack(k, 0);
        } else {
            uint32_t len = 0;
            KT_GET(st, NS, &key, false, &len);
        }
        if (!cut && kt_stats(st).writes_discarded > 0) {
            cut = true;
            *cut_seen = op;
            for (uint32_t i = 0; i < KEYS; i++) {
                struct kc_key ki = kt_key(i);
                ks[i].gone_at_cut = store_match(st, NS, &ki, 1) == 0;
            }
        }
    }
    if (!cut)   /* no cut in this run: what is gone at the end may be missing */
        for (uint32_t i = 0; i < KEYS; i++) {
            struct kc_key ki = kt_key(i);
            ks[i].gone_at_cut = store_match(st, NS, &ki, 1) == 0;
        }
    struct store_stats s = kt_stats(st);
    printf("  child: %" PRIu64 " evictions, %" PRIu64 " tombstones (%" PRIu64 " copied, %"
           PRIu64 " expired), %" PRIu64 " blocks copied, cut %s\n", s.evictions, s.tombstones,
           s.tomb_copies, s.tomb_expired, s.reinserts, cut ? "inside" : "after the run");
}

int main(void)
{
    kt_begin("power_cut");
    char path[4200];
    ks = kt_shared(KEYS * sizeof(*ks));
    cut_seen = kt_shared(sizeof(*cut_seen));
    kt_config(&cfg, kt_path(path, sizeof(path), "store"), 24 * KT_MIB, 1 * KT_MIB,
              4 * KT_MIB, 4 * KT_KIB);
    cfg.evict = "prefix";
    cfg.fresh = true;
    struct store *st = KT_OPEN(&cfg);
    KT_OK(store_ns_open(st, NS, 0, NULL, 0));
    KT_CLOSE(st);
    cfg.fresh = false;
    uint64_t stale = 0, lost = 0, strange = 0, checked = 0, cuts = 0;
    for (uint32_t round = 0; round < ROUNDS; round++) {
        uint64_t seed = kt_mix(kt_seed + round);
        for (uint32_t k = 0; k < KEYS; k++)
        {
            uint32_t nh = ks[k].nhist;
            ks[k].nvers = 0;
            ks[k].overflow = ks[k].gone_at_cut = ks[k].evicted = false;
            ks[k].nhist = nh;
        }
        *cut_seen = UINT64_MAX;
        /* The cut: somewhere in the writes of the round (about 40 slab
         * writes of 4 MiB chunks, invalidations, superblocks). */
        cfg.fault_write_cut = 1 + kt_mix(seed) % 60;
        kt_crash_after(child, &seed);
        cfg.fault_write_cut = 0;
        cuts += *cut_seen != UINT64_MAX;
        st = KT_OPEN(&cfg);
        for (uint32_t k = 0; k < KEYS; k++) {
            struct key_state *s = &ks[k];
            uint32_t cands[66];
            uint32_t n = 0;
            cands[n++] = s->base_ver;
            for (uint32_t i = 0; i < s->nvers; i++)
                cands[n++] = s->vers[i];
            uint32_t got = read_ver(st, k, cands, n);
            checked++;
            bool allowed = got == s->base_ver || s->overflow;
            for (uint32_t i = 0; i < s->nvers && !allowed; i++)
                allowed = got == s->vers[i];
            /* Missing: fine if evicted (or deleted) before the cut. */
            if (!allowed && got == 0 && (s->gone_at_cut || s->evicted))
                allowed = true;
            if (got == UINT32_MAX)   /* an older version? */
                got = read_ver(st, k, s->hist, s->nhist);
            if (!allowed) {
                if (got == UINT32_MAX)
                    strange++;
                else if (got == 0)
                    lost++;
                else
                    stale++;
                printf("round %u key %u: version %u, base %u, %u acknowledged since:", round,
                       k, got, s->base_ver, s->nvers);
                for (uint32_t i = 0; i < s->nvers; i++)
                    printf(" %u", s->vers[i]);
                printf("\n");
            }
            s->base_ver = got == UINT32_MAX ? 0 : got;
        }
        KT_CLOSE(st);
    }
    printf("%" PRIu64 " keys checked after %u cuts (%" PRIu64 " inside the run): %" PRIu64
           " stale, %" PRIu64 " lost, %" PRIu64 " unknown values\n", checked, ROUNDS, cuts,
           stale, lost, strange);
    KT_EQ(stale + lost + strange, 0);
    printf("ok\n");
    return 0;
}
