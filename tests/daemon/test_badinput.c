/*
 * test_badinput.c - hostile and broken input, each case on its own
 * connection while a well-behaved client keeps working; after every case
 * the daemon is up and the good client's blocks are intact. Counters in
 * Stats must show the breaches.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kc_tclient.h"

#define BLK 65536u
#define MAX_BATCH 64

static struct td d;
static struct tc good;
static uint64_t ns;
static uint64_t good_next = 1000;   /* next key base of the good client */

/* The good client stores 4 new blocks and reads all of its blocks back. */
static void good_check(const char *after)
{
    CHECK(td_alive(&d));
    tc_put_blocks(&good, ns, good_next, 4, BLK);
    good_next += 4;
    CHECK(tc_get_prefix_check(&good, ns, 1000, good_next - 1000, BLK) ==
          good_next - 1000);
    printf("ok after: %s\n", after);
    fflush(stdout);
}

/* Read until the daemon closes the connection; returns the codes of the
 * responses seen before (first one in *code, -1 if none). */
static void expect_closed(struct tc *c, int *code)
{
    struct tc_resp rs;

    *code = -1;
    while (tc_recv(c, &rs) == 0) {
        if (*code == -1)
            *code = rs.r->code;
        tc_resp_free(&rs);
    }
}

/* Send a frame header with the given fields. */
static void send_hdr(struct tc *c, uint32_t magic, uint8_t version,
                     uint32_t pb_len, uint64_t data_len)
{
    uint8_t h[KC_FRAME_HDR_LEN];
    struct kc_frame_hdr fh = { version, 0, pb_len, data_len };

    kc_frame_encode(h, &fh);
    kc_put_le32(h, magic);
    CHECK(tc_send_raw(c, h, sizeof(h)) == 0);
}

/* One request and its answer on c, which must stay usable. */
static int match_roundtrip(struct tc *c)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__MatchRequest m = KVCACHE__MATCH_REQUEST__INIT;
    uint8_t *keys = tc_keys(1000, 4);
    struct tc_resp rs;
    int matched;

    m.ns = ns;
    m.keys.data = keys;
    m.keys.len = 4 * KC_KEY_WIRE_LEN;
    q.op_case = KVCACHE__REQUEST__OP_MATCH;
    q.match = &m;
    tc_send(c, &q, NULL, 0);
    CHECK(tc_recv(c, &rs) == 0 && rs.r->code == 0);
    matched = (int)rs.r->match->matched;
    tc_resp_free(&rs);
    free(keys);
    return matched;
}

/* A Put request header + message for n items of len bytes (no data). */
static void send_put_head(struct tc *c, uint64_t base, size_t n, uint32_t len,
                          uint64_t data_len)
{
    tc_send_put_head(c, ns, base, n, len, data_len);
}

/* Send data bytes of the given length (content irrelevant). */
static void send_zeros(struct tc *c, uint64_t len)
{
    static uint8_t z[BLK];

    while (len > 0) {
        size_t n = len < sizeof(z) ? (size_t)len : sizeof(z);

        CHECK(tc_send_raw(c, z, n) == 0);
        len -= n;
    }
}

int main(int argc, char **argv)
{
    static const char *const extra[] = { "--max-batch", "64", "-c", "6",
                                         "--idle-timeout", "2", NULL };
    unsigned seed = (unsigned)time(NULL);
    struct tc b, extra_c[6];
    struct tc_resp rs;
    int code;

    if (argc > 1)
        td_set_binary(argv[1]);
    printf("seed %u\n", seed);
    srand(seed);
    td_mkdir(&d);
    td_start(&d, extra);
    tc_connect_unix(&good, d.sock);
    ns = tc_open_ns(&good, "bad-input", BLK);
    good_check("start");

    /* random bytes */
    {
        uint8_t junk[4096];

        for (size_t i = 0; i < sizeof(junk); i++)
            junk[i] = (uint8_t)rand();
        junk[0] = 'X';   /* never the magic by chance */
        tc_connect_tcp(&b, d.port);
        tc_send_raw(&b, junk, sizeof(junk));
        expect_closed(&b, &code);
        CHECK(code == KVCACHE__CODE__BAD_REQUEST);
        tc_close(&b);
        good_check("random bytes");
    }

    /* wrong magic */
    tc_connect_unix(&b, d.sock);
    send_hdr(&b, 0x12345678, 1, 0, 0);
    expect_closed(&b, &code);
    CHECK(code == KVCACHE__CODE__BAD_REQUEST);
    tc_close(&b);
    good_check("wrong magic");

    /* wrong version */
    tc_connect_unix(&b, d.sock);
    send_hdr(&b, KC_FRAME_MAGIC, 9, 0, 0);
    expect_closed(&b, &code);
    CHECK(code == KVCACHE__CODE__UNSUPPORTED);
    tc_close(&b);
    good_check("wrong version");

    /* truncated frame: half a header, then a header and part of its message */
    tc_connect_unix(&b, d.sock);
    CHECK(tc_send_raw(&b, "KVC1\1\0", 6) == 0);
    tc_close(&b);
    tc_connect_tcp(&b, d.port);
    send_hdr(&b, KC_FRAME_MAGIC, 1, 100, 0);
    CHECK(tc_send_raw(&b, "\x08\x01", 2) == 0);
    tc_close(&b);
    good_check("truncated frames");

    /* lengths of 4 GiB */
    tc_connect_unix(&b, d.sock);
    send_hdr(&b, KC_FRAME_MAGIC, 1, 10, 4ull << 30);
    expect_closed(&b, &code);
    CHECK(code == KVCACHE__CODE__LIMIT);
    tc_close(&b);
    tc_connect_unix(&b, d.sock);
    send_hdr(&b, KC_FRAME_MAGIC, 1, 0xFFFFFFFFu, 0);
    expect_closed(&b, &code);
    CHECK(code == KVCACHE__CODE__LIMIT);
    tc_close(&b);
    good_check("4 GiB lengths");

    /* batch over the limit: refused, data skipped, connection usable */
    tc_connect_unix(&b, d.sock);
    send_put_head(&b, 700000, MAX_BATCH + 1, 16, 16ull * (MAX_BATCH + 1));
    send_zeros(&b, 16ull * (MAX_BATCH + 1));
    CHECK(tc_recv(&b, &rs) == 0 && rs.r->code == KVCACHE__CODE__LIMIT);
    CHECK(rs.r->id == 77);
    tc_resp_free(&rs);
    {
        Kvcache__Request q = KVCACHE__REQUEST__INIT;
        Kvcache__GetRequest g = KVCACHE__GET_REQUEST__INIT;
        uint8_t *keys = tc_keys(1000, MAX_BATCH + 1);

        g.ns = ns;
        g.keys.data = keys;
        g.keys.len = (MAX_BATCH + 1) * KC_KEY_WIRE_LEN;
        q.op_case = KVCACHE__REQUEST__OP_GET;
        q.get = &g;
        tc_send(&b, &q, NULL, 0);
        CHECK(tc_recv(&b, &rs) == 0 && rs.r->code == KVCACHE__CODE__LIMIT);
        tc_resp_free(&rs);
        g.keys.len = 17;   /* not a multiple of 16 */
        q.id = 0;
        tc_send(&b, &q, NULL, 0);
        CHECK(tc_recv(&b, &rs) == 0 && rs.r->code == KVCACHE__CODE__BAD_REQUEST);
        tc_resp_free(&rs);
        free(keys);
    }
    CHECK(match_roundtrip(&b) == 4);
    tc_close(&b);
    good_check("batch over the limit");

    /* protobuf that does not decode, with a data section to skip */
    tc_connect_tcp(&b, d.port);
    send_hdr(&b, KC_FRAME_MAGIC, 1, 8, 1000);
    CHECK(tc_send_raw(&b, "\xff\xff\xff\xff\xff\xff\xff\xff", 8) == 0);
    send_zeros(&b, 1000);
    CHECK(tc_recv(&b, &rs) == 0 && rs.r->code == KVCACHE__CODE__BAD_REQUEST);
    tc_resp_free(&rs);
    CHECK(match_roundtrip(&b) == 4);
    tc_close(&b);
    good_check("undecodable protobuf");

    /* unknown operation: no op set, and an unknown field number 99 */
    tc_connect_unix(&b, d.sock);
    {
        Kvcache__Request q = KVCACHE__REQUEST__INIT;

        q.id = 5;
        tc_send(&b, &q, NULL, 0);
        CHECK(tc_recv(&b, &rs) == 0 && rs.r->code == KVCACHE__CODE__UNSUPPORTED);
        CHECK(rs.r->id == 5);
        tc_resp_free(&rs);
        send_hdr(&b, KC_FRAME_MAGIC, 1, 5, 0);
        CHECK(tc_send_raw(&b, "\x08\x06\x9a\x06\x00", 5) == 0);  /* id 6, field 99 */
        CHECK(tc_recv(&b, &rs) == 0 && rs.r->code == KVCACHE__CODE__UNSUPPORTED);
        CHECK(rs.r->id == 6);
        tc_resp_free(&rs);
    }
    CHECK(match_roundtrip(&b) == 4);
    tc_close(&b);
    good_check("unknown operation");

    /* Put of the wrong size for its namespace: per-item BAD_SIZE */
    tc_connect_unix(&b, d.sock);
    send_put_head(&b, 800000, 2, 1000, 2000);
    send_zeros(&b, 2000);
    CHECK(tc_recv(&b, &rs) == 0 && rs.r->code == 0 && rs.r->put->n_status == 2);
    CHECK(rs.r->put->status[0] == KVCACHE__CODE__BAD_SIZE);
    CHECK(rs.r->put->status[1] == KVCACHE__CODE__BAD_SIZE);
    tc_resp_free(&rs);
    /* lengths that do not add up to the data section */
    send_put_head(&b, 800000, 1, BLK, 100);
    send_zeros(&b, 100);
    CHECK(tc_recv(&b, &rs) == 0 && rs.r->code == KVCACHE__CODE__BAD_REQUEST);
    tc_resp_free(&rs);
    /* data on an operation that takes none */
    send_hdr(&b, KC_FRAME_MAGIC, 1, 0, 10);
    send_zeros(&b, 10);
    CHECK(tc_recv(&b, &rs) == 0 && rs.r->code == KVCACHE__CODE__UNSUPPORTED);
    tc_resp_free(&rs);
    CHECK(match_roundtrip(&b) == 4);
    tc_close(&b);
    good_check("wrong sizes");

    /* connection closed half way through a Put: nothing of it is stored */
    tc_connect_tcp(&b, d.port);
    send_put_head(&b, 900000, 4, BLK, 4ull * BLK);
    send_zeros(&b, 2ull * BLK + BLK / 2);
    tc_close(&b);
    usleep(100000);
    {
        struct tc probe;
        Kvcache__Request q = KVCACHE__REQUEST__INIT;
        Kvcache__MatchRequest m = KVCACHE__MATCH_REQUEST__INIT;
        uint8_t *keys = tc_keys(900002, 2);

        tc_connect_unix(&probe, d.sock);
        m.ns = ns;
        m.keys.data = keys;
        m.keys.len = 2 * KC_KEY_WIRE_LEN;
        q.op_case = KVCACHE__REQUEST__OP_MATCH;
        q.match = &m;
        tc_send(&probe, &q, NULL, 0);
        CHECK(tc_recv(&probe, &rs) == 0 && rs.r->match->matched == 0);
        tc_resp_free(&rs);
        tc_close(&probe);
        free(keys);
    }
    good_check("closed mid-Put");

    /* too many connections (-c 6): the 7th gets LIMIT and is closed */
    for (int i = 0; i < 5; i++)
        tc_connect_unix(&extra_c[i], d.sock);
    usleep(50000);
    tc_connect_tcp(&b, d.port);
    expect_closed(&b, &code);
    CHECK(code == KVCACHE__CODE__LIMIT);
    tc_close(&b);
    for (int i = 0; i < 5; i++)
        tc_close(&extra_c[i]);
    usleep(50000);
    good_check("too many connections");

    /* idle timeout (2 s): an idle connection is closed; the good client
     * reconnects since it was idle too */
    tc_connect_unix(&b, d.sock);
    sleep(4);
    expect_closed(&b, &code);
    CHECK(code == -1);
    tc_close(&b);
    tc_close(&good);
    tc_connect_tcp(&good, d.port);
    good_check("idle timeout");

    /* the breaches were counted */
    {
        Kvcache__Request q = KVCACHE__REQUEST__INIT;
        Kvcache__StatsRequest sq = KVCACHE__STATS_REQUEST__INIT;

        q.op_case = KVCACHE__REQUEST__OP_STATS;
        q.stats = &sq;
        tc_send(&good, &q, NULL, 0);
        CHECK(tc_recv(&good, &rs) == 0 && rs.r->code == 0);
        printf("protocol_errors %llu limit_errors %llu rejected %llu idle %llu\n",
               (unsigned long long)rs.r->stats->protocol_errors,
               (unsigned long long)rs.r->stats->limit_errors,
               (unsigned long long)rs.r->stats->connections_rejected,
               (unsigned long long)rs.r->stats->idle_closed);
        CHECK(rs.r->stats->protocol_errors >= 5);
        CHECK(rs.r->stats->limit_errors >= 4);
        CHECK(rs.r->stats->connections_rejected >= 1);
        CHECK(rs.r->stats->idle_closed >= 2);
        tc_resp_free(&rs);
    }
    tc_close(&good);
    CHECK(td_stop(&d) == 0);
    td_cleanup(&d);
    printf("test_badinput: ok\n");
    return 0;
}
