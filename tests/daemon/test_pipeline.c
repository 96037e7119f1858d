/*
 * test_pipeline.c - pipelined requests on one connection (responses matched
 * by id), several clients at once (forked processes over both sockets),
 * blocks read back from the SSD, and a client that stops reading while
 * another keeps being served.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kc_tclient.h"

#define BLK 65536u

/* Send a GetPrefix of n keys from base without waiting; returns its id. */
static uint64_t send_get_prefix(struct tc *c, uint64_t ns, uint64_t base,
                                size_t n)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__GetPrefixRequest g = KVCACHE__GET_PREFIX_REQUEST__INIT;
    uint8_t *keys = tc_keys(base, n);
    uint64_t id;

    g.ns = ns;
    g.keys.data = keys;
    g.keys.len = n * KC_KEY_WIRE_LEN;
    q.op_case = KVCACHE__REQUEST__OP_GET_PREFIX;
    q.get_prefix = &g;
    id = tc_send(c, &q, NULL, 0);
    free(keys);
    return id;
}

/* Check a GetPrefix response whose keys started at base. */
static void check_prefix(const struct tc_resp *rs, uint64_t base, size_t n)
{
    static uint8_t want[BLK];

    CHECK(rs->r->code == 0 && rs->r->get_prefix->found == n);
    CHECK(rs->data_len == n * BLK);
    for (size_t i = 0; i < n; i++) {
        tc_fill(want, BLK, base + i);
        CHECK(memcmp(rs->data + i * BLK, want, BLK) == 0);
    }
}

/* Many requests in flight on one connection; answers matched by id. */
static void test_pipelined(struct td *d, uint64_t ns)
{
    enum { NREQ = 40, NK = 4 };
    uint64_t ids[NREQ], bases[NREQ];
    bool got[NREQ] = { false };
    struct tc c;
    unsigned seed = (unsigned)time(NULL);

    printf("pipelined: seed %u\n", seed);
    fflush(stdout);
    srand(seed);
    tc_connect_unix(&c, d->sock);
    for (int i = 0; i < NREQ; i++) {
        bases[i] = 10000 + (uint64_t)(rand() % (150 - NK));
        ids[i] = send_get_prefix(&c, ns, bases[i], NK);
    }
    for (int n = 0; n < NREQ; n++) {
        struct tc_resp rs;
        int k = -1;

        CHECK(tc_recv(&c, &rs) == 0);
        for (int i = 0; i < NREQ; i++)
            if (ids[i] == rs.r->id)
                k = i;
        CHECK(k >= 0 && !got[k]);
        got[k] = true;
        check_prefix(&rs, bases[k], NK);
        tc_resp_free(&rs);
    }
    tc_close(&c);
}

/* One forked client: its own blocks, pipelined puts and gets. */
static void client_proc(struct td *d, uint64_t ns, int k)
{
    uint64_t base = 100000 + (uint64_t)k * 1000;
    struct tc c;

    if (k % 2)
        tc_connect_tcp(&c, d->port);
    else
        tc_connect_unix(&c, d->sock);
    for (int round = 0; round < 5; round++) {
        tc_put_blocks(&c, ns, base + (uint64_t)round * 8, 8, BLK);
        CHECK(tc_get_prefix_check(&c, ns, base, (size_t)(round + 1) * 8, BLK) ==
              (uint32_t)(round + 1) * 8);
        CHECK(tc_get_prefix_check(&c, ns, 10000, 16, BLK) == 16);
    }
    tc_close(&c);
    exit(0);
}

static void test_clients(struct td *d, uint64_t ns)
{
    enum { NCLI = 4 };
    pid_t pids[NCLI];

    for (int k = 0; k < NCLI; k++) {
        pids[k] = fork();
        if (pids[k] == 0)
            client_proc(d, ns, k);
    }
    for (int k = 0; k < NCLI; k++) {
        int st;

        CHECK(waitpid(pids[k], &st, 0) == pids[k]);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
}

/* A client that does not read must not hold back another one. */
static void test_slow_reader(struct td *d, uint64_t ns)
{
    enum { NREQ = 400, NK = 8 };
    struct tc slow, fast;
    struct timespec t0, t1;

    tc_connect_tcp(&slow, d->port);
    for (int i = 0; i < NREQ; i++)   /* ~200 MiB of answers, none read */
        send_get_prefix(&slow, ns, 10000, NK);
    tc_connect_unix(&fast, d->sock);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 20; i++) {
        tc_put_blocks(&fast, ns, 200000 + (uint64_t)i * 4, 4, BLK);
        CHECK(tc_get_prefix_check(&fast, ns, 200000 + (uint64_t)i * 4, 4, BLK) == 4);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK(t1.tv_sec - t0.tv_sec < 10);
    for (int i = 0; i < NREQ; i++) {
        struct tc_resp rs;

        CHECK(tc_recv(&slow, &rs) == 0);
        check_prefix(&rs, 10000, NK);
        tc_resp_free(&rs);
    }
    tc_close(&slow);
    tc_close(&fast);
}

/*
 * Bug: the idle check computed now - last_active with a "now" taken before
 * the same iteration stamped the connection active, so the subtraction
 * wrapped and a busy connection was closed as idle. Keep one connection
 * busy across several once-a-second ticks; it must stay open.
 */
static void test_busy_is_not_idle(struct td *d, uint64_t ns)
{
    enum { NB = 8, DEPTH = 8 };
    Kvcache__PutItem items[NB], *ip[NB];
    static uint8_t data[NB * BLK];
    struct timespec t0, t1;
    uint64_t base = 1u << 30;
    struct tc c;

    tc_connect_unix(&c, d->sock);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {   /* a Put flood: memory slabs run out, Puts wait and are retried */
        for (int r = 0; r < DEPTH; r++) {
            Kvcache__Request q = KVCACHE__REQUEST__INIT;
            Kvcache__PutRequest p = KVCACHE__PUT_REQUEST__INIT;
            uint8_t *keys = tc_keys(base, NB);

            for (int i = 0; i < NB; i++) {
                kvcache__put_item__init(&items[i]);
                items[i].key.data = keys + i * KC_KEY_WIRE_LEN;
                items[i].key.len = KC_KEY_WIRE_LEN;
                items[i].length = BLK;
                ip[i] = &items[i];
            }
            p.ns = ns;
            p.n_items = NB;
            p.items = ip;
            q.op_case = KVCACHE__REQUEST__OP_PUT;
            q.put = &p;
            tc_send(&c, &q, data, sizeof(data));
            free(keys);
            base += NB;
        }
        for (int r = 0; r < DEPTH; r++) {
            struct tc_resp rs;

            CHECK(tc_recv(&c, &rs) == 0);
            CHECK(rs.r->code == 0);
            tc_resp_free(&rs);
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
    } while (t1.tv_sec - t0.tv_sec < 3);
    tc_close(&c);
}

int main(int argc, char **argv)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__StatsRequest sq = KVCACHE__STATS_REQUEST__INIT;
    struct tc_resp rs;
    struct td d;
    struct tc c;
    uint64_t ns;

    if (argc > 1)
        td_set_binary(argv[1]);
    td_mkdir(&d);
    td_start(&d, NULL);
    tc_connect_unix(&c, d.sock);
    ns = tc_open_ns(&c, "pipeline", BLK);
    /* 150 blocks of 64 KiB: more than the 4 MiB of memory slabs */
    for (int i = 0; i < 15; i++)
        tc_put_blocks(&c, ns, 10000 + (uint64_t)i * 10, 10, BLK);
    test_pipelined(&d, ns);
    test_clients(&d, ns);
    test_slow_reader(&d, ns);
    test_busy_is_not_idle(&d, ns);
    q.op_case = KVCACHE__REQUEST__OP_STATS;
    q.stats = &sq;
    tc_send(&c, &q, NULL, 0);
    CHECK(tc_recv(&c, &rs) == 0);
    printf("hits %llu, from DRAM %llu, device reads %llu bytes, flushes %llu\n",
           (unsigned long long)rs.r->stats->hits,
           (unsigned long long)rs.r->stats->hits_mem,
           (unsigned long long)rs.r->stats->bytes_read,
           (unsigned long long)rs.r->stats->flushes);
    CHECK(rs.r->stats->hits > rs.r->stats->hits_mem);   /* some from the SSD */
    CHECK(rs.r->stats->checksum_failures == 0);
    CHECK(rs.r->stats->idle_closed == 0);
    tc_resp_free(&rs);
    tc_close(&c);
    CHECK(td_stop(&d) == 0);
    td_cleanup(&d);
    printf("test_pipeline: ok\n");
    return 0;
}
