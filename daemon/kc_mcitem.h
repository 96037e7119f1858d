/*
 * kc_mcitem.h - what the memcache port keeps beside a value: client flags,
 * expiry and cas, in a small versioned header stored in front of the value
 * bytes inside the engine's block, plus the per-daemon memcache state
 * (the cas counter, a pending flush_all, memcached's counters).
 *
 * Contract:
 * - Only items of text keys (the namespace MC_TEXT_NS) carry the header;
 *   blocks named by the direct form are raw KV blocks shared with the
 *   protobuf path and carry none (flags 0, no expiry, cas from the key).
 * - A header that does not decode (wrong magic or version, too short) makes
 *   the item a miss: bytes of another format are never served.
 * - cas values never repeat within a daemon's life and start, at each
 *   start, above the wall clock in microseconds and above every cas read
 *   back since (see mc_cas_next).
 * - Expiry is checked lazily, on read: an expired item is a miss and its
 *   index entry is removed (its space is then reclaimed by eviction).
 * No I/O here: tests/memcache checks it alone.
 */
#ifndef KC_MCITEM_H
#define KC_MCITEM_H

#include <stdbool.h>
#include <stdint.h>

/* Bytes of the header in front of a text key's value. */
#define MCI_HDR_LEN 24
/* Its format version (byte 2); bump when the layout changes. */
#define MCI_VERSION 1
/* memcached: an exptime above 30 days is an absolute unix time. */
#define MCI_REL_MAX (60 * 60 * 24 * 30)

/* Bits of mc_meta.bits. */
enum {
    MCI_STALE = 1,   /* invalidated by md I: served with X until replaced */
    MCI_WON = 2,     /* a W (recache win) token was given for it */
};

/* The header of one item, decoded. */
struct mc_meta {
    uint32_t flags;   /* client flags, opaque */
    uint8_t bits;     /* MCI_* */
    int64_t exptime;  /* absolute unix seconds; 0 = never */
    uint64_t cas;     /* cas unique of this version of the value */
};

/* Write m as a header at p (MCI_HDR_LEN bytes). */
void mci_encode(void *p, const struct mc_meta *m);

/* Read the header of a stored value of len bytes. 0, or -1 if it is not one. */
int mci_decode(const void *p, uint32_t len, struct mc_meta *m);

/* memcached's exptime rules -> absolute time: 0 never, negative or an
 * absolute time already past -> expired at once (1), <= 30 days relative. */
int64_t mci_exptime(int64_t exptime, int64_t now);

/* Has it expired at now? */
bool mci_expired(const struct mc_meta *m, int64_t now);

/* Seconds to live for mg t: -1 when it never expires. */
int64_t mci_ttl(const struct mc_meta *m, int64_t now);

/* memcached's counters of the memcache port, with its names. */
#define MC_COUNTERS(X) \
    X(cmd_get) X(cmd_set) X(cmd_flush) X(cmd_touch) X(get_hits) X(get_misses) \
    X(get_expired) X(get_flushed) X(delete_misses) X(delete_hits) \
    X(incr_misses) X(incr_hits) X(decr_misses) X(decr_hits) X(cas_misses) \
    X(cas_hits) X(cas_badval) X(touch_hits) X(touch_misses)

/* Per-daemon memcache state (struct server has one). */
struct mc_state {
    uint64_t cas;          /* last cas value given (0: not started yet) */
    int64_t flush_at;      /* a delayed flush_all is due then; 0 = none */
    bool cas_started;      /* cas set above the wall clock already */
#define MC_FIELD(n) uint64_t n;
    MC_COUNTERS(MC_FIELD)  /* memcached's counters (stats reset zeroes) */
#undef MC_FIELD
};

/* The next cas value: above every one given or seen before, and at the
 * first call above the wall clock in microseconds (now_us). */
uint64_t mc_cas_next(struct mc_state *s, uint64_t now_us);

/* A cas value read back from the store: later ones go above it. */
void mc_cas_seen(struct mc_state *s, uint64_t cas);

#endif
