/*
 * kc_frame.c - pack and check kvcached frame headers and wire keys.
 */
#include "kc_frame.h"

void kc_frame_encode(uint8_t out[KC_FRAME_HDR_LEN],
                     const struct kc_frame_hdr *h)
{
    kc_put_le32(out, KC_FRAME_MAGIC);
    out[4] = h->version;
    out[5] = h->flags;
    out[6] = 0;
    out[7] = 0;
    kc_put_le32(out + 8, h->pb_len);
    kc_put_le64(out + 12, h->data_len);
}

int kc_frame_decode(const uint8_t buf[KC_FRAME_HDR_LEN], uint32_t pb_max,
                    uint64_t data_max, struct kc_frame_hdr *h)
{
    h->version = buf[4];
    h->flags = buf[5];
    h->pb_len = kc_get_le32(buf + 8);
    h->data_len = kc_get_le64(buf + 12);
    if (kc_get_le32(buf) != KC_FRAME_MAGIC)
        return KC_FRAME_EMAGIC;
    if (h->version != KC_FRAME_VERSION)
        return KC_FRAME_EVERSION;
    if ((h->flags & ~KC_FRAME_F_RESPONSE) != 0 || buf[6] != 0 || buf[7] != 0)
        return KC_FRAME_EFLAGS;
    if (pb_max > KC_FRAME_PB_MAX)
        pb_max = KC_FRAME_PB_MAX;
    if (h->pb_len > pb_max)
        return KC_FRAME_EPBLEN;
    if (h->data_len > data_max)
        return KC_FRAME_EDATALEN;
    return 0;
}

const char *kc_frame_strerror(int code)
{
    switch (code) {
    case 0: return "ok";
    case KC_FRAME_EMAGIC: return "bad frame magic";
    case KC_FRAME_EVERSION: return "unsupported protocol version";
    case KC_FRAME_EFLAGS: return "unknown frame flags or reserved bits set";
    case KC_FRAME_EPBLEN: return "protobuf length over the limit";
    case KC_FRAME_EDATALEN: return "data length over the limit";
    default: return "unknown frame error";
    }
}

void kc_key_pack(uint8_t out[KC_KEY_WIRE_LEN], uint64_t lo, uint64_t hi)
{
    kc_put_le64(out, lo);
    kc_put_le64(out + 8, hi);
}

void kc_key_unpack(const uint8_t in[KC_KEY_WIRE_LEN], uint64_t *lo,
                   uint64_t *hi)
{
    *lo = kc_get_le64(in);
    *hi = kc_get_le64(in + 8);
}
