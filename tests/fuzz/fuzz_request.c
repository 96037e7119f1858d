/*
 * fuzz_request.c - libFuzzer harness: the daemon's frame header decoder and
 * request decoder on arbitrary bytes. The input is a frame as a client
 * would send it (20-byte header, protobuf message, data); every decoded
 * request is also re-encoded and decoded again, and its strings checked
 * for NUL bytes the way the daemon does (kc_pbscan). (Re-encoding is not
 * required to decode again: protobuf-c keeps an unknown field of number 0
 * and writes it back, which its decoder then refuses. The daemon never
 * re-encodes a request.)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kc_frame.h"
#include "kc_pbscan.h"
#include "kvcache.pb-c.h"

/* Walk the decoded request as the daemon's handlers would: keys, items. */
static size_t fuzz_walk(const Kvcache__Request *q)
{
    size_t n = 0;

    switch (q->op_case) {
    case KVCACHE__REQUEST__OP_PUT:
        for (size_t i = 0; i < q->put->n_items; i++) {
            const Kvcache__PutItem *it = q->put->items[i];
            uint64_t lo, hi;

            if (it->key.len == KC_KEY_WIRE_LEN) {
                kc_key_unpack(it->key.data, &lo, &hi);
                n += (size_t)(lo ^ hi) & 1;
            }
            n += it->length & 1;
        }
        break;
    case KVCACHE__REQUEST__OP_GET_PREFIX:
    case KVCACHE__REQUEST__OP_GET: {
        const ProtobufCBinaryData *k = q->op_case == KVCACHE__REQUEST__OP_GET
                                           ? &q->get->keys
                                           : &q->get_prefix->keys;

        for (size_t off = 0; off + KC_KEY_WIRE_LEN <= k->len;
             off += KC_KEY_WIRE_LEN) {
            uint64_t lo, hi;

            kc_key_unpack(k->data + off, &lo, &hi);
            n += (size_t)(lo + hi) & 1;
        }
        break;
    }
    case KVCACHE__REQUEST__OP_OPEN_NAMESPACE:
        if (q->open_namespace->desc)
            n += strlen(q->open_namespace->desc->model) +
                 strlen(q->open_namespace->desc->dtype);
        break;
    default:
        break;
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t model[] = { 10, 1, 1 }, dtype[] = { 10, 1, 5 };
    struct kc_frame_hdr h;
    Kvcache__Request *q;
    const uint8_t *pb = data;
    size_t pblen = size;

    if (size >= KC_FRAME_HDR_LEN &&
        kc_frame_decode(data, KC_FRAME_PB_MAX, 1ull << 30, &h) == 0) {
        pb = data + KC_FRAME_HDR_LEN;
        pblen = size - KC_FRAME_HDR_LEN;
        if (h.pb_len < pblen)
            pblen = h.pb_len;
    }
    /* the NUL scan runs on any bytes, decodable or not */
    (void)kc_pb_path_has_nul(pb, pblen, model, 3);
    q = kvcache__request__unpack(NULL, pblen, pb);
    if (q == NULL)
        return 0;
    (void)kc_pb_path_has_nul(pb, pblen, dtype, 3);
    (void)fuzz_walk(q);
    {
        size_t len = kvcache__request__get_packed_size(q);
        uint8_t *buf = malloc(len + 1);
        Kvcache__Request *again;

        if (buf == NULL)
            abort();
        if (kvcache__request__pack(q, buf) != len)
            abort();
        again = kvcache__request__unpack(NULL, len, buf);
        if (again != NULL && again->op_case != q->op_case)
            abort();              /* what decodes again means the same */
        if (again != NULL)
            kvcache__request__free_unpacked(again, NULL);
        free(buf);
    }
    kvcache__request__free_unpacked(q, NULL);
    return 0;
}
