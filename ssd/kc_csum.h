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

/*
 * Streaming xxh3-64, for a value that lands in pieces: feed the pieces in
 * order; the digest equals csum64() of the whole. The state is opaque,
 * from csum_stream_create(), freed by csum_stream_destroy().
 */
struct csum_stream;
struct csum_stream *csum_stream_create(void);
void csum_stream_destroy(struct csum_stream *cs);
void csum_stream_reset(struct csum_stream *cs);
void csum_stream_update(struct csum_stream *cs, const void *p, size_t len);
uint64_t csum_stream_digest(const struct csum_stream *cs);

/* Which variant csum64 uses: "avx512", "avx2" or "sse2". */
const char *csum_impl(void);

/* The variants, each in its own translation unit built for its ISA. */
uint64_t csum64_sse2(const void *p, size_t len);
uint64_t csum64_avx2(const void *p, size_t len);
uint64_t csum64_avx512(const void *p, size_t len);
void csum_update_sse2(void *state, const void *p, size_t len);
void csum_update_avx2(void *state, const void *p, size_t len);
void csum_update_avx512(void *state, const void *p, size_t len);

#endif
