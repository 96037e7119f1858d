/*
 * kb_conn.h - one connection of the load generator to the server under
 * test: kvcached through libkvcache, or a memcache text-protocol server
 * (memcached), where a GetPrefix is a multi-get of which the leading hits
 * count and a Put is one set per block. One per client thread; calls
 * are blocking (closed loop: one request in flight per connection).
 */
#ifndef KB_CONN_H
#define KB_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvcache.h"

enum kb_proto { KB_KVCACHED, KB_MEMCACHE };

/* What every connection of a run shares. */
struct kb_target {
    enum kb_proto proto;
    const char *servers;     /* kvcached: libkvcache URI list */
    const char *mc_host;     /* memcache: host, or a Unix socket path */
    int mc_port;             /*           port; 0 for a Unix socket */
    int timeout_ms;          /* per call */
    uint64_t ns;             /* kvcached namespace id */
};

struct kb_conn {
    const struct kb_target *t;
    kvcache_t *kc;           /* kvcached */
    int fd;                  /* memcache socket, -1 when closed */
    char *rbuf;              /* memcache: bytes received, not yet used */
    size_t rcap, rlen, roff;
    char err[256];           /* last error, for the report */
};

/* Open (kvcached: create the handle; memcache: connect). 0 or -errno /
 * a KVCACHE_E* code, with err set. */
int kb_conn_open(struct kb_conn *c, const struct kb_target *t);
void kb_conn_close(struct kb_conn *c);

/* Open the run's namespace on kvcached (once, before the threads). */
int kb_open_ns(const struct kb_target *t, const char *model, uint32_t tokens_per_block,
               uint32_t block_bytes, uint64_t *ns, char *err, size_t errlen);

/*
 * Get n keys into bufs (block_len bytes each). prefix: only the leading run
 * (GetPrefix); else each key on its own (Get). lens[i] gets the length of
 * block i (0 for a miss); *found the leading run (prefix) or the hits.
 * 0 or a negative code (the counts stay valid).
 */
int kb_get(struct kb_conn *c, const kvcache_key_t *keys, size_t n, bool prefix,
           void *const *bufs, size_t block_len, uint32_t *lens, size_t *found);

/* Put n blocks at chain positions first_pos.. ; *stored counts stored or
 * already present. */
int kb_put(struct kb_conn *c, const kvcache_key_t *keys, size_t n, uint32_t first_pos,
           uint32_t hints,
           const void *const *bufs, size_t block_len, size_t *stored);

#endif
