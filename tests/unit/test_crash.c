/*
 * test_crash.c - kill -9 in the middle of writes.
 *
 * A child process opens the store and puts blocks in a loop, each with the
 * bytes its key implies, reporting every completed put through a pipe. The
 * parent kills it with SIGKILL at a random point, reopens the store and
 * checks that every readable block is byte-identical to what its key implies,
 * that no unknown key appears, and that at most the blocks that could still
 * be in DRAM were lost. Three rounds: each child recovers the previous
 * round's store and continues, so recovery after a crash is crashed again.
 */
#include <signal.h>
#include <sys/wait.h>

#include "kt.h"

enum { NS = 20, ROUNDS = 3 };
#define BLK (16 * KT_KIB)
#define DEV (64 * KT_MIB)
#define MEM (2 * KT_MIB)
#define SLAB (1 * KT_MIB)

static char path[4200];
#define MAXKEYS (ROUNDS * 1600)
static bool alive[MAXKEYS];  /* readable after the previous round */
static bool here[MAXKEYS];   /* readable after this round */

/* What the child reports after each put: keys [0, done) are stored. */
struct report {
    uint64_t done;
    uint64_t flushes;
};

static struct store *open_store(bool fresh)
{
    struct store_config cfg;
    kt_config(&cfg, path, DEV, SLAB, MEM, 4 * KT_KIB);
    cfg.fresh = fresh;
    return KT_OPEN(&cfg);
}

/* The child: put keys start, start+1, ... until killed (or the limit). */
__attribute__((noreturn))
static void child(int wfd, uint64_t start, uint64_t limit, bool fresh)
{
    struct store *st = open_store(fresh);
    int r = store_ns_open(st, NS, BLK, NULL, 0);
    if (r != 0)
        _exit(3);
    void *buf = malloc(BLK);
    if (buf == NULL)
        _exit(4);
    for (uint64_t i = start; i < limit; i++) {
        struct kc_key k = kt_key(i);
        kt_fill(buf, BLK, &k);
        struct store_put_item it = { .key = k, .chain_pos = (uint32_t)i,
                                     .len = BLK, .data = buf, .status = -1 };
        if (store_put(st, NS, &it, 1) != 0 || it.status != KC_OK)
            _exit(5);
        struct store_stats s;
        store_stats(st, &s);
        struct report rep = { i + 1, s.flushes };
        if (write(wfd, &rep, sizeof(rep)) != (ssize_t)sizeof(rep))
            _exit(6);
    }
    for (;;)
        pause();
}

/* Items seen by the item walk, all of known keys. */
struct walk {
    uint64_t items;
};

static int walk_cb(const struct store_item_info *ii, void *arg)
{
    struct walk *w = arg;
    KT_EQ(ii->ns, NS);
    KT_EQ(ii->len, BLK);
    /* The chain position is the key's number: check the key matches it. */
    struct kc_key k = kt_key(ii->chain_pos);
    KT_CHECKF(kt_key_eq(&k, &ii->key), "item walk: unknown key "
              "%016" PRIx64 ":%016" PRIx64 " at chain position %u",
              ii->key.hi, ii->key.lo, ii->chain_pos);
    w->items++;
    return 0;
}

int main(void)
{
    kt_begin("crash");
    kt_path(path, sizeof(path), "store");
    uint64_t start = 0, survivors_prev = 0, rng = kt_seed;
    KT_CHECK(ROUNDS * (1500 + 1) <= MAXKEYS);

    for (int round = 0; round < ROUNDS; round++) {
        rng = kt_mix(rng);
        uint64_t target = start + 200 + rng % 300;   /* 3 to 8 MiB written */
        unsigned delay_us = (unsigned)(kt_mix(rng) % 3000);
        int fds[2];
        KT_OK(pipe(fds));
        fflush(NULL);
        pid_t pid = fork();
        KT_CHECK(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            child(fds[1], start, start + 1500, round == 0);
        }
        close(fds[1]);
        struct report rep = { start, 0 };
        bool killed = false;
        for (;;) {
            struct report x;
            ssize_t r = read(fds[0], &x, sizeof(x));
            if (r == 0)
                break;                         /* child gone */
            KT_EQ(r, sizeof(x));
            rep = x;
            if (!killed && rep.done >= target) {
                usleep(delay_us);
                KT_OK(kill(pid, SIGKILL));
                killed = true;
            }
        }
        int wst = 0;
        KT_EQ(waitpid(pid, &wst, 0), pid);
        close(fds[0]);
        KT_CHECKF(WIFSIGNALED(wst) && WTERMSIG(wst) == SIGKILL,
                  "child ended on its own (status 0x%x) after %" PRIu64
                  " puts", wst, rep.done);

        /* Keys [0, rep.done) were stored; key rep.done may be half put. */
        uint64_t end = rep.done + 1;
        struct store *st = open_store(false);
        struct store_recovery rec;
        store_recovery_info(st, &rec);
        uint64_t survivors = 0, lost_new = 0;
        for (uint64_t i = 0; i < end; i++) {
            struct kc_key k = kt_key(i);
            uint32_t len = 0;
            int r = KT_GET(st, NS, &k, i & 1, &len);   /* verifies bytes */
            KT_CHECKF(r == KC_OK || r == KC_MISS, "key %" PRIu64 ": get -> %d "
                      "(%s)", i, r, kc_strerror(r));
            here[i] = r == KC_OK;
            if (r == KC_OK) {
                KT_EQ(len, BLK);
                survivors++;
            } else if (i >= start && i < rep.done) {
                lost_new++;
            }
        }
        struct walk w = { 0 };
        store_foreach_item(st, walk_cb, &w);
        struct store_stats s = kt_stats(st);
        printf("  round %d: killed after %" PRIu64 " puts (%" PRIu64
               " this round, %" PRIu64 " flushes), %" PRIu64 " readable, %"
               PRIu64 " of this round lost; recovery %" PRIu64 " items, %"
               PRIu64 " skipped, %.3f s\n", round, rep.done, rep.done - start,
               rep.flushes, survivors, lost_new, rec.items, rec.items_skipped,
               rec.seconds);
        KT_EQ(w.items, survivors);
        KT_EQ(s.items, survivors);
        KT_EQ(s.checksum_failures, 0);
        /* Earlier rounds' survivors are still there. */
        for (uint64_t i = 0; i < start; i++)
            KT_CHECKF(!alive[i] || here[i], "key %" PRIu64 " survived an "
                      "earlier crash but not this one", i);
        memcpy(alive, here, sizeof(alive));
        /* Lost: at most what the memory slabs could hold at the kill. */
        KT_LE(lost_new, (s.mem_bytes > MEM ? s.mem_bytes : MEM) / BLK);
        KT_CHECK(survivors >= survivors_prev);
        KT_CLOSE(st);
        survivors_prev = survivors;
        start = end;
    }
    printf("crash: ok\n");
    return 0;
}
