/*
 * hostile_reads.c - cases of test_hostile: reads a client can make expensive: one SSD block named many times, reads in flight, partial frames, and all hostile clients at once against one daemon.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client/kvcache.h"
#include "hostile.h"
#include "kc_tclient.h"


/* -m 2 and 64 KiB blocks: keys 1..n stored, all but the last ~30 pushed
 * out of the memory slabs onto the SSD. */
static uint64_t fill_to_ssd(struct tc *c, size_t n)
{
    uint64_t ns = tc_open_ns(c, "budget", 65536);

    for (size_t i = 0; i < n; i += 50)
        tc_put_blocks(c, ns, 1 + i, n - i < 50 ? n - i : 50, 65536);
    return ns;
}

/* A get naming one SSD block 1,024 times held 1,024 read buffers; it
 * must read the block once and send it 1,024 times. */
void dup_keys_read_once(void)
{
    static const char *const extra[] = { "-m", "2", NULL };
    const size_t copies = 1024;
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__GetRequest g = KVCACHE__GET_REQUEST__INIT;
    uint8_t *keys = malloc(copies * KC_KEY_WIRE_LEN), *want = malloc(65536);
    struct tc c;
    struct tc_resp rs;
    uint64_t ns;
    long long peak;

    CHECK(keys && want);
    td_start(&d, extra);
    tc_connect_unix(&c, d.sock);
    ns = fill_to_ssd(&c, 300);
    for (size_t i = 0; i < copies; i++)
        kc_key_pack(keys + i * KC_KEY_WIRE_LEN, 1, ~1ull);
    g.ns = ns;
    g.keys.data = keys;
    g.keys.len = copies * KC_KEY_WIRE_LEN;
    q.op_case = KVCACHE__REQUEST__OP_GET;
    q.get = &g;
    roundtrip(&c, &q, &rs);
    CHECK(rs.r->code == 0 && rs.r->get->n_status == copies);
    CHECK(rs.data_len == copies * 65536);
    tc_fill(want, 65536, 1);
    for (size_t i = 0; i < copies; i++) {
        CHECK(rs.r->get->status[i] == KVCACHE__CODE__OK);
        CHECK(memcmp(rs.data + i * 65536, want, 65536) == 0);
    }
    tc_resp_free(&rs);
    /* GetPrefix with repeats (1 2 1 2 1 2 1 2, then an absent key): the
     * prefix is the 8 keys, each block read once and sent where asked */
    {
        Kvcache__GetPrefixRequest gp = KVCACHE__GET_PREFIX_REQUEST__INIT;

        for (size_t i = 0; i < 9; i++) {
            uint64_t k = i == 8 ? 999999 : 1 + i % 2;

            kc_key_pack(keys + i * KC_KEY_WIRE_LEN, k, ~k);
        }
        kvcache__request__init(&q);
        gp.ns = ns;
        gp.keys.data = keys;
        gp.keys.len = 9 * KC_KEY_WIRE_LEN;
        q.op_case = KVCACHE__REQUEST__OP_GET_PREFIX;
        q.get_prefix = &gp;
        roundtrip(&c, &q, &rs);
        CHECK(rs.r->code == 0 && rs.r->get_prefix->found == 8);
        CHECK(rs.data_len == 8 * 65536);
        for (size_t i = 0; i < 8; i++) {
            tc_fill(want, 65536, 1 + i % 2);
            CHECK(memcmp(rs.data + i * 65536, want, 65536) == 0);
        }
        tc_resp_free(&rs);
    }
    peak = metric(d.mport, "inflight_peak_bytes");
    printf("in-flight peak %lld bytes for %zu copies of a 64 KiB block\n",
           peak, copies);
    CHECK(peak > 0 && peak < (1 << 20));
    tc_close(&c);
    CHECK(td_stop(&d) == 0);
    free(keys);
    free(want);
}

/* Gets over --read-inflight wait for room instead of growing the daemon;
 * one get larger than the limit on its own is answered LIMIT. */
void read_inflight_bounded(void)
{
    static const char *const extra[] = { "-m", "2", "--read-inflight", "16m",
                                         "--conn-inflight", "16m", NULL };
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__GetRequest g = KVCACHE__GET_REQUEST__INIT;
    struct tc c, p[6];
    pid_t pids[6];
    struct tc_resp rs;
    uint8_t *keys;
    uint64_t ns;
    long long peak, waits;

    td_start(&d, extra);
    tc_connect_unix(&c, d.sock);
    ns = fill_to_ssd(&c, 400);
    /* 250 SSD blocks of 68 KiB slots: 16.6 MiB, over 16 MiB alone */
    keys = tc_keys(2, 250);
    g.ns = ns;
    g.keys.data = keys;
    g.keys.len = 250 * KC_KEY_WIRE_LEN;
    q.op_case = KVCACHE__REQUEST__OP_GET;
    q.get = &g;
    roundtrip(&c, &q, &rs);
    CHECK(rs.r->code == KVCACHE__CODE__LIMIT);
    tc_resp_free(&rs);
    free(keys);
    /* six connections, three pipelined GetPrefix of 100 SSD blocks each
     * (6.8 MiB): at most two fit at once */
    keys = tc_keys(2, 100);
    g.keys.len = 100 * KC_KEY_WIRE_LEN;
    g.keys.data = keys;
    for (int i = 0; i < 6; i++) {
        tc_connect_unix(&p[i], d.sock);
        for (int k = 0; k < 3; k++) {
            Kvcache__GetPrefixRequest gp = KVCACHE__GET_PREFIX_REQUEST__INIT;

            kvcache__request__init(&q);
            gp.ns = ns;
            gp.keys = g.keys;
            q.op_case = KVCACHE__REQUEST__OP_GET_PREFIX;
            q.get_prefix = &gp;
            tc_send(&p[i], &q, NULL, 0);
        }
    }
    /* each connection read by its own process, as separate clients do */
    for (int i = 0; i < 6; i++) {
        pid_t pid = fork();

        if (pid == 0) {
            uint8_t *want = malloc(65536);

            for (int k = 0; k < 3; k++) {
                if (tc_recv(&p[i], &rs) != 0 || rs.r->code != 0 ||
                    rs.r->get_prefix->found != 100)
                    _exit(1);
                for (int b = 0; b < 100; b++) {
                    tc_fill(want, 65536, 2 + (uint64_t)b);
                    if (memcmp(rs.data + (size_t)b * 65536, want, 65536))
                        _exit(2);
                }
                tc_resp_free(&rs);
            }
            _exit(0);
        }
        CHECK(pid > 0);
        pids[i] = pid;
    }
    for (int i = 0; i < 6; i++) {
        int st;

        CHECK(waitpid(pids[i], &st, 0) == pids[i]);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        tc_close(&p[i]);
    }
    free(keys);
    peak = metric(d.mport, "inflight_peak_bytes");
    waits = metric(d.mport, "budget_waits_total");
    printf("in-flight peak %lld bytes (limit %d), %lld waits\n", peak,
           16 << 20, waits);
    CHECK(peak > 0 && peak <= (16 << 20));
    CHECK(waits > 0);
    tc_close(&c);
    CHECK(td_stop(&d) == 0);
}

/* 100 connections each declaring a 4 MiB protobuf message and sending 1 KB
 * of it took 4 MiB of buffer each at once. */
void partial_frames_bounded(void)
{
    struct tc bad[100], c;
    uint8_t junk[1024];
    long before, after;

    td_start(&d, NULL);
    tc_connect_unix(&c, d.sock);
    CHECK(tc_open_ns(&c, "warm", 16384) != 0);
    usleep(100000);
    before = rss_kib();
    memset(junk, 0x0a, sizeof(junk));
    for (int i = 0; i < 100; i++) {
        uint8_t h[KC_FRAME_HDR_LEN];
        struct kc_frame_hdr fh = { KC_FRAME_VERSION, 0, KC_FRAME_PB_MAX - 1,
                                   0 };

        tc_connect_unix(&bad[i], d.sock);
        kc_frame_encode(h, &fh);
        CHECK(tc_send_raw(&bad[i], h, sizeof(h)) == 0);
        CHECK(tc_send_raw(&bad[i], junk, sizeof(junk)) == 0);
    }
    usleep(300000);
    CHECK(tc_open_ns(&c, "still-here", 16384) != 0);   /* and it answers */
    after = rss_kib();
    printf("resident %ld -> %ld KiB with 100 partial 4 MiB frames\n", before,
           after);
    CHECK(after - before < 48 * 1024);
    for (int i = 0; i < 100; i++)
        tc_close(&bad[i]);
    tc_close(&c);
    CHECK(td_stop(&d) == 0);
}

/*
 * Everything at once against one daemon: 600 half-open connections, 50
 * partial 4 MiB frames, 4 connections pipelining gets of 1,024 copies of
 * an SSD block and never reading, 3 stalled puts, and a memcache line
 * naming one value 1,500 times. Throughout, a well-behaved client's puts
 * and gets must each finish within the stated bound (--put-timeout 2 plus
 * the 1 s tick, with slack: 8 s) and the daemon's resident memory must stay
 * under the bound of daemon/README.md ("Memory: the worst case").
 */
void hostile_live(void)
{
    static const char *const extra[] = {
        "--read-inflight", "64m", "--conn-inflight", "32m",
        "--put-timeout", "2", "--send-timeout", "3", "--memcache-port", "0",
        "--memcache-max-value", "256k", NULL };
    enum { NHALF = 600, NPART = 50, NDUP = 4, NSLOW = 3 };
    static int half[NHALF], part[NPART];
    struct tc good, dup[NDUP], slow[NSLOW];
    uint8_t *keys = malloc(1024 * KC_KEY_WIRE_LEN);
    char *line = malloc(16 + 1500 * 4);
    uint64_t ns, base = 100000;
    long rss0, rss_max = 0, bound;
    double t0, worst = 0;
    int mc, nconn;

    CHECK(keys && line);
    /* under ASan freed memory sits in a quarantine: keep it small so the
     * resident bound means the same in both builds */
    setenv("ASAN_OPTIONS", "quarantine_size_mb=4:detect_leaks=1", 1);
    td_start(&d, extra);
    tc_connect_unix(&good, d.sock);
    ns = fill_to_ssd(&good, 300);
    usleep(200000);
    rss0 = rss_kib();
    nconn = NHALF + NPART + NDUP + NSLOW + 3;
    /* F (measured) + -m 4 + --read-inflight 64 MiB + conns x 66 KiB, and
     * 16 MiB for the allocator's slack; the index of a 64 MiB device is
     * in F already */
    bound = rss0 + 4 * 1024 + 64 * 1024 + nconn * 66 + 16 * 1024;
    /* half-open and partial-frame connections */
    for (int i = 0; i < NHALF; i++)
        CHECK((half[i] = tcp_connect(d.port)) >= 0);
    for (int i = 0; i < NPART; i++) {
        uint8_t h[KC_FRAME_HDR_LEN + 1024];
        struct kc_frame_hdr fh = { KC_FRAME_VERSION, 0, KC_FRAME_PB_MAX - 1,
                                   0 };

        memset(h, 0x0a, sizeof(h));
        kc_frame_encode(h, &fh);
        CHECK((part[i] = tcp_connect(d.port)) >= 0);
        send_all(part[i], h, sizeof(h));
    }
    /* pipelined duplicate-key gets, never read */
    for (size_t i = 0; i < 1024; i++)
        kc_key_pack(keys + i * KC_KEY_WIRE_LEN, 1 + i % 2, ~(1 + i % 2));
    for (int i = 0; i < NDUP; i++) {
        Kvcache__Request q = KVCACHE__REQUEST__INIT;
        Kvcache__GetRequest g = KVCACHE__GET_REQUEST__INIT;

        tc_connect_unix(&dup[i], d.sock);
        g.ns = ns;
        g.keys.data = keys;
        g.keys.len = 1024 * KC_KEY_WIRE_LEN;
        q.op_case = KVCACHE__REQUEST__OP_GET;
        q.get = &g;
        for (int k = 0; k < 20; k++) {
            q.id = 0;
            tc_send(&dup[i], &q, NULL, 0);
        }
    }
    /* stalled puts */
    for (int i = 0; i < NSLOW; i++) {
        tc_connect_unix(&slow[i], d.sock);
        put_head_only(&slow[i], ns, 900000 + 100 * (uint64_t)i, 8, 65536, 10);
    }
    /* memcache: a 200 KiB value, pushed to the SSD, named 1,500 times */
    mc = memcache_port();
    CHECK(mc > 0);
    {
        int fd = tcp_connect(mc);
        size_t vlen = 200 << 10, n = 0;
        char *v = malloc(vlen + 64), reply[256] = { 0 };
        int len = snprintf(v, 64, "set hot 0 0 %zu\r\n", vlen);

        CHECK(fd >= 0 && v != NULL);
        memset(v + len, 'h', vlen);
        memcpy(v + len + vlen, "\r\n", 2);
        send_all(fd, v, (size_t)len + vlen + 2);
        CHECK(recv(fd, reply, sizeof(reply) - 1, 0) > 0);
        CHECK(strncmp(reply, "STORED", 6) == 0);
        free(v);
        tc_put_blocks(&good, ns, base, 100, 65536);     /* flush it out */
        base += 100;
        n = (size_t)sprintf(line, "get");
        for (int i = 0; i < 1500; i++)
            n += (size_t)sprintf(line + n, " hot");
        n += (size_t)sprintf(line + n, "\r\n");
        send_all(fd, line, n);
        /* the answer: refused (over the budget) or the values; either way
         * the daemon stays in bounds. Not read: a client that sends and
         * never reads. */
        close(fd);
    }
    /* the good client, for 8 s */
    for (t0 = now_s(); now_s() - t0 < 8;) {
        double t1 = now_s(), took;
        long r;

        tc_put_blocks(&good, ns, base, 4, 65536);
        CHECK(tc_get_prefix_check(&good, ns, base, 4, 65536) == 4);
        base += 4;
        took = now_s() - t1;
        if (took > worst)
            worst = took;
        r = rss_kib();
        if (r > rss_max)
            rss_max = r;
        usleep(50000);
    }
    printf("hostile: resident %ld KiB at start, at most %ld KiB (bound %ld "
           "KiB); worst put+get of the good client %.3f s\n", rss0, rss_max,
           bound, worst);
    CHECK(worst < 8.0);
    CHECK(rss_max < bound);
    /* the daemon answers Health, and closed the stalled ones */
    {
        Kvcache__Request q = KVCACHE__REQUEST__INIT;
        Kvcache__HealthRequest hq = KVCACHE__HEALTH_REQUEST__INIT;
        struct tc_resp rs;

        q.op_case = KVCACHE__REQUEST__OP_HEALTH;
        q.health = &hq;
        roundtrip(&good, &q, &rs);
        printf("health: %d %s\n", rs.r->health->state,
               rs.r->health->reason ? rs.r->health->reason : "");
        /* degraded is fair after such a storm (slow reads); down is not */
        CHECK(rs.r->code == 0 && rs.r->health->state !=
              KVCACHE__HEALTH_RESPONSE__STATE__DOWN);
        tc_resp_free(&rs);
    }
    CHECK(metric(d.mport, "put_timeouts_total") >= NSLOW);
    CHECK(metric(d.mport, "send_timeouts_total") >= NDUP);
    for (int i = 0; i < NHALF; i++)
        close(half[i]);
    for (int i = 0; i < NPART; i++)
        close(part[i]);
    for (int i = 0; i < NDUP; i++)
        tc_close(&dup[i]);
    for (int i = 0; i < NSLOW; i++)
        tc_close(&slow[i]);
    tc_close(&good);
    CHECK(td_stop(&d) == 0);
    free(keys);
    free(line);
}
