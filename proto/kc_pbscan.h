/*
 * kc_pbscan.h - a look at raw protobuf bytes that the decoded message
 * cannot give: protobuf-c hands `string` fields over NUL-terminated, so a
 * NUL inside one is invisible after decoding (the value is cut short).
 *
 * Contract: pure, no allocation, reads only buf[0..len). A message that
 * does not parse as protobuf wire format is reported as such (-1); callers
 * run this on bytes that decoded already.
 */
#ifndef KC_PBSCAN_H
#define KC_PBSCAN_H

#include <stddef.h>
#include <stdint.h>

/*
 * Does any length-delimited field reached by path (field numbers, outer
 * first, depth of them) contain a NUL byte? Every occurrence of every
 * field on the path is looked at (protobuf merges repeated occurrences).
 * Returns 1 (a NUL), 0 (none), or -1 (not wire format, or nested deeper
 * than 8).
 */
int kc_pb_path_has_nul(const uint8_t *buf, size_t len, const uint32_t *path,
                       size_t depth);

#endif
