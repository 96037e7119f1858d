/*
 * kc_pbscan.c - NUL bytes inside string fields of raw protobuf bytes.
 */
#include "kc_pbscan.h"

#include <string.h>

/* Deepest path followed. */
#define PBSCAN_DEPTH_MAX 8

/* Read a varint at *p (below end). 0, or -1 when cut or over 10 bytes. */
static int pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;

    for (unsigned shift = 0; shift < 70; shift += 7) {
        uint8_t b;

        if (*p >= end)
            return -1;
        b = *(*p)++;
        x |= (uint64_t)(b & 0x7f) << (shift < 64 ? shift : 63);
        if ((b & 0x80) == 0) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

int kc_pb_path_has_nul(const uint8_t *buf, size_t len, const uint32_t *path,
                       size_t depth)
{
    const uint8_t *p = buf, *end = buf + len;

    if (depth == 0 || depth > PBSCAN_DEPTH_MAX)
        return -1;
    while (p < end) {
        uint64_t tag, n;
        int r;

        if (pb_varint(&p, end, &tag) < 0)
            return -1;
        switch (tag & 7) {
        case 0:                                 /* varint */
            if (pb_varint(&p, end, &n) < 0)
                return -1;
            break;
        case 1:                                 /* fixed64 */
            if ((size_t)(end - p) < 8)
                return -1;
            p += 8;
            break;
        case 5:                                 /* fixed32 */
            if ((size_t)(end - p) < 4)
                return -1;
            p += 4;
            break;
        case 2:                                 /* length-delimited */
            if (pb_varint(&p, end, &n) < 0 || n > (uint64_t)(end - p))
                return -1;
            if ((tag >> 3) == path[0]) {
                if (depth == 1)
                    r = memchr(p, 0, (size_t)n) != NULL;
                else
                    r = kc_pb_path_has_nul(p, (size_t)n, path + 1, depth - 1);
                if (r != 0)
                    return r;
            }
            p += n;
            break;
        default:                                /* groups: not in proto3 */
            return -1;
        }
    }
    return 0;
}
