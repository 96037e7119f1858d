/*
 * test_leases.c - the daemon's side of the shared-memory path, with raw
 * frames: Attach only on the Unix socket; GetPrefix by reference answers
 * offsets and a lease, no bytes; Release frees it; a client killed while
 * holding leases frees them at once; a lease never released ends at
 * --lease-timeout; --lease-max answers LIMIT; a client killed in the middle
 * of a Put leaves no reservation behind; staged Puts that name no staging
 * area of the connection, or point past it, are refused.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kc_tclient.h"

#define BLK 32768u

/* Send q (no data) and receive its response, checking the id. */
static void roundtrip(struct tc *c, Kvcache__Request *q, struct tc_resp *rs)
{
    uint64_t id = tc_send(c, q, NULL, 0);

    CHECK(tc_recv(c, rs) == 0);
    CHECK(rs->r->id == id);
}

/* Attach (the passed fds are dropped by a plain read); returns the code. */
static int attach(struct tc *c, uint64_t *staging_id)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__AttachRequest a = KVCACHE__ATTACH_REQUEST__INIT;
    struct tc_resp rs;
    int code;

    q.op_case = KVCACHE__REQUEST__OP_ATTACH;
    q.attach = &a;
    roundtrip(c, &q, &rs);
    code = rs.r->code;
    if (code == 0) {
        CHECK(rs.r->result_case == KVCACHE__RESPONSE__RESULT_ATTACH);
        CHECK(rs.r->attach->region_size >= (8u << 20));
        CHECK(rs.r->attach->staging_id != 0 && rs.r->attach->lease_timeout_ms == 1000);
        if (staging_id)
            *staging_id = rs.r->attach->staging_id;
    }
    tc_resp_free(&rs);
    return code;
}

/* GetPrefix by reference of n keys from base: returns the code; a found
 * run is checked (offsets, no data section) and its lease put in *lease. */
static int get_by_ref(struct tc *c, uint64_t ns, uint64_t base, size_t n, uint64_t *lease)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__GetPrefixRequest g = KVCACHE__GET_PREFIX_REQUEST__INIT;
    uint8_t *keys = tc_keys(base, n);
    struct tc_resp rs;
    int code;

    g.ns = ns;
    g.keys.data = keys;
    g.keys.len = n * KC_KEY_WIRE_LEN;
    g.by_ref = true;
    q.op_case = KVCACHE__REQUEST__OP_GET_PREFIX;
    q.get_prefix = &g;
    roundtrip(c, &q, &rs);
    code = rs.r->code;
    if (code == 0) {
        const Kvcache__GetPrefixResponse *p = rs.r->get_prefix;
        CHECK(p->found == n && p->n_offsets == n && rs.data_len == 0);
        for (size_t i = 0; i < n; i++)
            CHECK(p->offsets[i] != UINT64_MAX && p->lengths[i] == BLK);
        CHECK(p->lease != 0 && p->lease_deadline_ns != 0);
        *lease = p->lease;
    }
    tc_resp_free(&rs);
    free(keys);
    return code;
}

/* The daemon's Stats. */
static void stats(struct tc *c, uint64_t *leased, uint64_t *expired)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__StatsRequest s = KVCACHE__STATS_REQUEST__INIT;
    struct tc_resp rs;

    q.op_case = KVCACHE__REQUEST__OP_STATS;
    q.stats = &s;
    roundtrip(c, &q, &rs);
    CHECK(rs.r->code == 0);
    *leased = rs.r->stats->leased_bytes;
    *expired = rs.r->stats->leases_expired;
    tc_resp_free(&rs);
}

/* Wait (at most 5 s) until no bytes are leased. */
static void wait_unleased(struct tc *c)
{
    uint64_t leased = 1, expired;

    for (int i = 0; i < 500 && leased; i++) {
        stats(c, &leased, &expired);
        if (leased)
            usleep(10000);
    }
    CHECK(leased == 0);
}

static void release(struct tc *c, uint64_t lease)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__ReleaseRequest r = KVCACHE__RELEASE_REQUEST__INIT;

    r.n_leases = 1;
    r.leases = &lease;
    q.op_case = KVCACHE__REQUEST__OP_RELEASE;
    q.release = &r;
    tc_send(c, &q, NULL, 0);   /* no response */
}

/* A staged Put of one block at offset: returns the response code. */
static int staged_put(struct tc *c, uint64_t ns, uint64_t staging, uint64_t offset)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__PutRequest p = KVCACHE__PUT_REQUEST__INIT;
    Kvcache__PutItem it = KVCACHE__PUT_ITEM__INIT, *ip = &it;
    uint8_t *key = tc_keys(900, 1);
    struct tc_resp rs;
    int code;

    it.key.data = key;
    it.key.len = KC_KEY_WIRE_LEN;
    it.length = BLK;
    it.offset = offset;
    p.ns = ns;
    p.n_items = 1;
    p.items = &ip;
    p.staging = staging;
    q.op_case = KVCACHE__REQUEST__OP_PUT;
    q.put = &p;
    roundtrip(c, &q, &rs);
    code = rs.r->code;
    tc_resp_free(&rs);
    free(key);
    return code;
}

/* A child attaches, takes a lease (or starts a Put), and is killed. */
static void killed_child(struct td *d, uint64_t ns, bool mid_put)
{
    pid_t pid = fork();

    CHECK(pid >= 0);
    if (pid == 0) {
        struct tc c;
        uint64_t lease;

        tc_connect_unix(&c, d->sock);
        if (attach(&c, NULL) != 0 || (!mid_put && get_by_ref(&c, ns, 0, 8, &lease) != 0))
            _exit(2);
        if (mid_put) {
            /* a Put of 4 blocks whose data stops half way into the first */
            uint8_t *data = calloc(1, BLK * 2);

            tc_send_put_head(&c, ns, 500, 4, BLK, 4ull * BLK);
            if (!data || tc_send_raw(&c, data, BLK / 2))
                _exit(2);
            usleep(100000);
        }
        raise(SIGKILL);
    }
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

int main(int argc, char **argv)
{
    static const char *const extra[] = {"--lease-timeout", "1", "--lease-max", "256k", NULL};
    struct td d;
    struct tc u, t, w;
    uint64_t ns, lease, leased, expired, staging = 0;

    if (argc > 1)
        td_set_binary(argv[1]);
    td_mkdir(&d);
    td_start(&d, extra);
    tc_connect_unix(&u, d.sock);
    tc_connect_tcp(&t, d.port);
    ns = tc_open_ns(&u, "leases", BLK);
    tc_put_blocks(&u, ns, 0, 9, BLK);

    /* Attach: unix only; by_ref needs it */
    CHECK(attach(&t, NULL) == KVCACHE__CODE__UNSUPPORTED);
    CHECK(get_by_ref(&t, ns, 0, 4, &lease) == KVCACHE__CODE__BAD_REQUEST);
    CHECK(get_by_ref(&u, ns, 0, 4, &lease) == KVCACHE__CODE__BAD_REQUEST);
    CHECK(attach(&u, &staging) == 0);
    CHECK(attach(&u, NULL) == KVCACHE__CODE__BAD_REQUEST);   /* once */

    /* by reference: held until released */
    CHECK(get_by_ref(&u, ns, 0, 8, &lease) == 0);
    stats(&t, &leased, &expired);
    CHECK(leased == 8ull * BLK);
    CHECK(get_by_ref(&u, ns, 0, 1, &lease) == KVCACHE__CODE__LIMIT);  /* --lease-max */
    release(&u, lease - 0);
    stats(&u, &leased, &expired);   /* after the Release: same connection, in order */
    CHECK(leased == 0);
    CHECK(get_by_ref(&u, ns, 0, 9, &lease) == KVCACHE__CODE__LIMIT); /* 9 > 256k */
    printf("test_leases: attach, by_ref, release, LIMIT ok\n");

    /* killed while holding leases: freed when its socket closes */
    killed_child(&d, ns, false);
    wait_unleased(&t);
    printf("test_leases: a killed client's leases freed\n");

    /* never released: ended by the timeout (1 s, checked once a second) */
    tc_connect_unix(&w, d.sock);
    CHECK(attach(&w, NULL) == 0);
    CHECK(get_by_ref(&w, ns, 0, 4, &lease) == 0);
    wait_unleased(&t);
    stats(&t, &leased, &expired);
    CHECK(expired == 1);
    release(&w, lease);    /* too late: ignored */
    CHECK(get_by_ref(&w, ns, 0, 8, &lease) == 0);
    release(&w, lease);
    wait_unleased(&w);
    printf("test_leases: an unreleased lease ended by --lease-timeout\n");

    /* killed in the middle of a Put: nothing held, the keys still free */
    killed_child(&d, ns, true);
    tc_put_blocks(&t, ns, 500, 4, BLK);
    CHECK(tc_get_prefix_check(&t, ns, 500, 4, BLK) == 4);

    /* staged puts must name this connection's area, within it */
    CHECK(staged_put(&w, ns, staging, 0) == KVCACHE__CODE__BAD_REQUEST);   /* u's id */
    CHECK(staged_put(&t, ns, staging, 0) == KVCACHE__CODE__BAD_REQUEST);   /* tcp */
    CHECK(staged_put(&u, ns, staging, 1ull << 40) == KVCACHE__CODE__BAD_REQUEST);
    CHECK(staged_put(&u, ns, staging, UINT64_MAX - 8) == KVCACHE__CODE__BAD_REQUEST);
    CHECK(staged_put(&u, ns, staging, 0) == 0);
    printf("test_leases: killed mid-put holds nothing; staged puts checked\n");

    tc_close(&u);
    tc_close(&t);
    tc_close(&w);
    CHECK(td_stop(&d) == 0);
    td_cleanup(&d);
    printf("test_leases: ok\n");
    return 0;
}
