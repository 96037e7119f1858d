/*
 * test_proto.c - unit test of proto/: frame header round trip and checks,
 * wire keys, the canonical namespace bytes and the pinned namespace id.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kc_frame.h"
#include "kc_nsid.h"
#include "kvcache.pb-c.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", \
    __FILE__, __LINE__, #c); exit(1); } } while (0)

/* Header encode/decode and each refusal. */
static void test_frame(void)
{
    struct kc_frame_hdr h = { KC_FRAME_VERSION, KC_FRAME_F_RESPONSE, 1234,
                              (1ull << 32) + 5 }, g;
    uint8_t b[KC_FRAME_HDR_LEN];

    kc_frame_encode(b, &h);
    CHECK(memcmp(b, "KVC1", 4) == 0);
    CHECK(kc_frame_decode(b, KC_FRAME_PB_MAX, UINT64_MAX, &g) == 0);
    CHECK(g.pb_len == 1234 && g.data_len == (1ull << 32) + 5 && g.flags == 1);
    CHECK(kc_frame_decode(b, KC_FRAME_PB_MAX, 1u << 30, &g) == KC_FRAME_EDATALEN);
    CHECK(kc_frame_decode(b, 100, UINT64_MAX, &g) == KC_FRAME_EPBLEN);
    b[6] = 1;
    CHECK(kc_frame_decode(b, KC_FRAME_PB_MAX, UINT64_MAX, &g) == KC_FRAME_EFLAGS);
    b[6] = 0; b[4] = 2;
    CHECK(kc_frame_decode(b, KC_FRAME_PB_MAX, UINT64_MAX, &g) == KC_FRAME_EVERSION);
    b[0] = 'X';
    CHECK(kc_frame_decode(b, KC_FRAME_PB_MAX, UINT64_MAX, &g) == KC_FRAME_EMAGIC);
}

/* Keys: lo little-endian first, then hi. */
static void test_keys(void)
{
    uint8_t k[16];
    uint64_t lo, hi;

    kc_key_pack(k, 0x0807060504030201ull, 0x100f0e0d0c0b0a09ull);
    for (int i = 0; i < 16; i++)
        CHECK(k[i] == i + 1);
    kc_key_unpack(k, &lo, &hi);
    CHECK(lo == 0x0807060504030201ull && hi == 0x100f0e0d0c0b0a09ull);
}

/* The README's example descriptor: bytes and id are part of the protocol. */
static void test_nsid(void)
{
    struct kc_ns_desc d = { "llama-3-8b", 10, 0, 32, 16, "bf16", 4, 8, 128,
                            262144 }, p;
    uint8_t b[KC_NS_CANON_MAX];
    uint64_t id;
    int n = kc_ns_canon(&d, b, sizeof(b));

    CHECK(n == 51);
    CHECK(kc_ns_id(&d, &id) == 0 && id == 0x9ee1d1d3ce74f7a0ull);
    CHECK(kc_ns_parse(b, (size_t)n, &p) == 0);
    CHECK(p.model_len == 10 && memcmp(p.model, "llama-3-8b", 10) == 0);
    CHECK(p.block_bytes == 262144 && p.layer_end == 32 && p.dtype_len == 4);
    CHECK(kc_ns_parse(b, (size_t)n - 1, &p) == -1);
    d.model_len = 0;
    CHECK(kc_ns_id(&d, &id) == -1);
}

/* The generated code links and round-trips an envelope. */
static void test_pb(void)
{
    Kvcache__Request r = KVCACHE__REQUEST__INIT, *u;
    Kvcache__MatchRequest m = KVCACHE__MATCH_REQUEST__INIT;
    uint8_t keys[32] = { 1 }, buf[128];
    size_t len;

    m.ns = 42;
    m.keys.data = keys;
    m.keys.len = sizeof(keys);
    r.id = 9;
    r.op_case = KVCACHE__REQUEST__OP_MATCH;
    r.match = &m;
    len = kvcache__request__pack(&r, buf);
    u = kvcache__request__unpack(NULL, len, buf);
    CHECK(u && u->id == 9 && u->op_case == KVCACHE__REQUEST__OP_MATCH);
    CHECK(u->match->ns == 42 && u->match->keys.len == 32);
    kvcache__request__free_unpacked(u, NULL);
}

int main(void)
{
    test_frame();
    test_keys();
    test_nsid();
    test_pb();
    printf("test_proto: ok\n");
    return 0;
}
