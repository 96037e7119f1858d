/*
 * kc_frame.h - the kvcached wire frame (protocol version 1).
 *
 * A frame is a fixed 20-byte header, then pb_len bytes of one protobuf
 * message (kvcache.Request or kvcache.Response, see kvcache.proto), then
 * data_len bytes of raw block data (the "data section"). All integers of the
 * header are little-endian:
 *
 *   offset size field
 *        0    4 magic     0x3143564B, the bytes "KVC1"
 *        4    1 version   1
 *        5    1 flags     bit 0: response (set by the server), others 0
 *        6    2 reserved  0
 *        8    4 pb_len    protobuf message length, <= KC_FRAME_PB_MAX
 *       12    8 data_len  data section length
 *
 * proto/README.md is the full description; this module only packs and
 * checks headers and keys, it does no I/O.
 */
#ifndef KC_FRAME_H
#define KC_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KC_FRAME_MAGIC 0x3143564Bu    /* "KVC1" on the wire */
#define KC_FRAME_VERSION 1
#define KC_FRAME_HDR_LEN 20
#define KC_FRAME_F_RESPONSE 0x01u
#define KC_FRAME_PB_MAX (4u << 20)    /* hard limit of the protobuf part */
#define KC_KEY_WIRE_LEN 16

/* A decoded frame header. */
struct kc_frame_hdr {
    uint8_t version;
    uint8_t flags;      /* KC_FRAME_F_* */
    uint32_t pb_len;    /* bytes of the protobuf message */
    uint64_t data_len;  /* bytes of the data section */
};

/* Header check failures (negative, distinct from the store's codes). */
enum kc_frame_err {
    KC_FRAME_EMAGIC = -2001,    /* wrong magic: not a kvcached peer */
    KC_FRAME_EVERSION = -2002,  /* unsupported protocol version */
    KC_FRAME_EFLAGS = -2003,    /* unknown flag or reserved bits set */
    KC_FRAME_EPBLEN = -2004,    /* protobuf length over the limit */
    KC_FRAME_EDATALEN = -2005,  /* data length over the limit */
};

/* Write header h into out (KC_FRAME_HDR_LEN bytes). */
void kc_frame_encode(uint8_t out[KC_FRAME_HDR_LEN],
                     const struct kc_frame_hdr *h);

/*
 * Parse and check the header in buf. pb_max (at most KC_FRAME_PB_MAX) and
 * data_max are the receiver's limits. Returns 0 or a KC_FRAME_E* code; h is
 * filled even on a length error so the caller can log what was asked.
 */
int kc_frame_decode(const uint8_t buf[KC_FRAME_HDR_LEN], uint32_t pb_max,
                    uint64_t data_max, struct kc_frame_hdr *h);

/* Text for a KC_FRAME_E* code. */
const char *kc_frame_strerror(int code);

/* Key halves to their 16 wire bytes: lo little-endian, then hi. */
void kc_key_pack(uint8_t out[KC_KEY_WIRE_LEN], uint64_t lo, uint64_t hi);

/* 16 wire bytes back to key halves. */
void kc_key_unpack(const uint8_t in[KC_KEY_WIRE_LEN], uint64_t *lo,
                   uint64_t *hi);

/* Little-endian helpers used by the frame and the namespace id. */
static inline void kc_put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

static inline void kc_put_le64(uint8_t *p, uint64_t v)
{
    kc_put_le32(p, (uint32_t)v);
    kc_put_le32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t kc_get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static inline uint64_t kc_get_le64(const uint8_t *p)
{
    return (uint64_t)kc_get_le32(p) | (uint64_t)kc_get_le32(p + 4) << 32;
}

#endif
