/*
 * kcc_client.h - the inside of a kvcache_t handle, shared by the call
 * implementations (kcc_client.c, kcc_ops.c) and the async put thread
 * (kcc_async.c).
 */
#ifndef KCC_CLIENT_H
#define KCC_CLIENT_H

#include <pthread.h>
#include <stdatomic.h>

#include "kvcache.h"
#include "kcc_ring.h"
#include "kcc_mux.h"
#include "kcc_uri.h"

/* A namespace opened with the handle, replayed to servers that forgot it. */
struct kcc_ns {
    uint64_t id;                /* its stable id */
    char *model;                /* owned copies of the descriptor strings */
    char *dtype;
    kvcache_ns_desc_t desc;     /* descriptor, pointing at the copies */
};

/* The servers as one thread sees them: a connection per server. */
struct kcc_pool {
    struct kvcache *kc;         /* the handle (ring, namespaces, options) */
    struct kcc_server *srv;     /* one per server, same order as kc->uris */
    char err[256];              /* detail of this pool's last error */
};

struct kcc_async;

struct kvcache {
    kvcache_options_t opt;      /* options with defaults filled in */
    struct kcc_mux_cfg cfg;     /* connect and retry settings of the servers */
    struct kcc_uri *uris;       /* parsed servers */
    uint32_t nservers;
    struct kcc_ring ring;       /* key -> server */
    struct kcc_pool pool;       /* connections of the calling thread */
    pthread_mutex_t ns_lock;    /* guards ns/nns (the async thread reads them) */
    struct kcc_ns *ns;          /* namespaces opened, growable array */
    size_t nns, ns_cap;
    struct kcc_async *async;    /* async put queue and thread, NULL until used */
};

/* Largest batch in one request (the daemon's default limit is 4096) and
 * largest data section of one put request (its limit is 1 GiB). */
#define KCC_MAX_BATCH 1024
#define KCC_MAX_PUT_BYTES (256u << 20)

/* Keys of one call split by server: server s has idx[start[s] .. start[s] +
 * count[s]), ascending global indices. */
struct kcc_split {
    uint32_t *idx;
    uint32_t *start;
    uint32_t *count;
    uint8_t *wire;              /* the 16-byte wire keys, in idx order */
};

int kcc_split_keys(const struct kvcache *kc, uint64_t ns_id, const kvcache_key_t *keys, size_t n,
                   struct kcc_split *sp);
void kcc_split_free(struct kcc_split *sp);

/*
 * Run transfers with kcc_mux_run; then, for those a server refused with
 * UNKNOWN_NAMESPACE while the handle knows the namespace (the server lost
 * it), open it there and run them once more.  The first error of a transfer
 * is recorded in p->err ("what" names the call).
 */
void kcc_run(struct kcc_pool *p, struct kcc_xfer **x, size_t n, uint64_t ns,
             uint64_t deadline, const char *what);

/* First non-zero rc of x[0..n), 0 if none. */
int kcc_first_rc(struct kcc_xfer **x, size_t n);

/* Server index of a key. */
uint32_t kcc_server_of(const struct kvcache *kc, uint64_t ns_id, kvcache_key_t key);

/* Record an error detail in the pool ("server NAME: what: text"), unless
 * one is already recorded for this call. */
void kcc_pool_err(struct kcc_pool *p, uint32_t server, int rc, const char *what);

int kcc_pool_init(struct kcc_pool *p, struct kvcache *kc);
void kcc_pool_deinit(struct kcc_pool *p);

/* Copy a known namespace's descriptor into *d (strings stay owned by the
 * handle, which never frees them before destroy).  0 or KVCACHE_ENONS. */
int kcc_ns_lookup(struct kvcache *kc, uint64_t id, kvcache_ns_desc_t *d);

/* Send OpenNamespace for desc to server s and wait for the answer. */
int kcc_open_ns_on(struct kcc_pool *p, uint32_t s, const kvcache_ns_desc_t *desc,
                   uint64_t deadline_ms);

/* The put of kvcache_put on a pool (also used by the async thread). */
int kcc_op_put(struct kcc_pool *p, uint64_t ns, const kvcache_key_t *keys, size_t n,
               uint32_t first_pos, uint32_t hints, const void *const *bufs, size_t block_len,
               int *status, size_t *nstored, uint64_t deadline);

/* Async queue (kcc_async.c). */
void kcc_async_destroy(struct kcc_async *a);
int kcc_async_put(struct kvcache *kc, uint64_t ns, const kvcache_key_t *keys, size_t n,
                  uint32_t first_pos, const void *const *bufs, size_t block_len);
int kcc_async_flush(struct kvcache *kc, int timeout_ms);
void kcc_async_stats(const struct kvcache *kc, kvcache_client_stats_t *cs);

#endif
