/*
 * kc_csum.h - the checksum of values and headers: xxh3-64, computed with
 * the widest vector unit the CPU has (AVX-512, AVX2, else SSE2), chosen once
 * at run time. Every variant gives the same digest as XXH3_64bits().
 *
 * Values are checksummed on every put and every device read, so this is
 * the hottest code of the read path: with Debian's libxxhash (SSE2) a
 * 256 KiB value took about 20 us of a 140 us read here.
 */
#ifndef KC_CSUM_H
#define KC_CSUM_H

#include <stddef.h>
#include <stdint.h>

/* xxh3-64 of len bytes at p (seed 0). */
uint64_t csum64(const void *p, size_t len);

/* Which variant csum64 uses: "avx512", "avx2" or "sse2". */
const char *csum_impl(void);

/* The variants, each in its own translation unit built for its ISA. */
uint64_t csum64_sse2(const void *p, size_t len);
uint64_t csum64_avx2(const void *p, size_t len);
uint64_t csum64_avx512(const void *p, size_t len);

#endif
