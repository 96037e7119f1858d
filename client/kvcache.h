/*
 * kvcache.h - libkvcache, the client of the kvcached KV-cache sidecar.
 *
 * An inference engine links this library to reuse the KV cache of a prompt
 * prefix across turns and across nodes.  The engine cuts a token sequence
 * into blocks of tokens_per_block tokens, computes one 128-bit key per full
 * block with kvcache_keys() (each key depends on every token before it), then
 * asks the cache for the longest run of leading blocks it holds
 * (kvcache_get_prefix), computes the rest, and stores the new blocks
 * (kvcache_put or kvcache_put_async).
 *
 * Threads: a kvcache_t handle is used by one thread at a time (the async put
 * queue has its own internal thread).  Use one handle per thread; a handle is
 * cheap and keeps its connections open between calls.
 *
 * Errors: every call returns 0 or a negative code; kvcache_strerror() turns a
 * code into text.  Codes are either -errno (a system call failed) or one of
 * the KVCACHE_E* values below (all <= KVCACHE_E_BASE).  A call never aborts or
 * exits.  A timeout, an unreachable or a sick server is reported as a miss
 * (zero blocks found for that server's keys) *and* an error code, so an engine
 * can log it and carry on computing; the connection is re-established on a
 * later call.
 *
 * ---------------------------------------------------------------------------
 * PREFIX-CHAIN KEYS (normative; an engine in another language must compute
 * exactly these bytes)
 *
 *   A key is 128 bits: two 64-bit halves lo and hi.
 *   key[-1] = KVCACHE_KEY_SEED = { lo = 0x2d6568636163766b,
 *                                  hi = 0x31762d6e69616863 }
 *             (its 16 wire bytes are the ASCII text "kvcache-chain-v1")
 *   For block i = 0, 1, ... (only full blocks of tokens_per_block tokens):
 *     buf   = ns_id                as u64 little-endian      (8 bytes)
 *           ‖ key[i-1].lo          as u64 little-endian      (8 bytes)
 *           ‖ key[i-1].hi          as u64 little-endian      (8 bytes)
 *           ‖ tokens[i*T .. i*T+T-1], each as u32 little-endian (4*T bytes)
 *     h     = XXH3_128bits_withSeed(buf, 24 + 4*T, seed = 0)   (xxHash >= 0.8)
 *     key[i] = { lo = h.low64, hi = h.high64 }
 *   Wire and byte form of a key (kvcache_key_to_bytes): lo as u64 LE, then
 *   hi as u64 LE (16 bytes).  Note this is NOT xxHash's canonical form, which
 *   is big-endian high64 first: the canonical hex that `xxhsum -H2` prints
 *   for buf is hi then lo, each as 16 hex digits.
 *
 *   Test vectors (T = tokens_per_block), cross-checked with `xxhsum -H2`:
 *     ns_id = 0, T = 4, tokens = {0, 1, 2, 3, 4, 5, 6, 7}:
 *       key[0] = lo 0x817e878ac4a63c74 hi 0x3a9ee9fce3abb747
 *       key[1] = lo 0x8a9cd36ceaad6c98 hi 0x7d632ffc95e37038
 *       wire bytes of key[0]: 74 3c a6 c4 8a 87 7e 81 47 b7 ab e3 fc e9 9e 3a
 *     ns_id = 0x0123456789abcdef, T = 3, tokens = {100000, 7, 4294967295}:
 *       key[0] = lo 0xd23769ec822f574d hi 0x644086fdf0f46ce5
 *   (tests/client/test_key.c checks them.)
 *
 *   Two sequences that share their first k full blocks share their first k
 *   keys; different namespaces (ns_id) never share keys.
 * ---------------------------------------------------------------------------
 *
 * SEVERAL SERVERS.  kvcache_create() takes a comma-separated list of server
 * URIs; keys are spread over them by a ketama consistent-hash ring laid out as
 * twemproxy (nutcracker) does with `distribution: ketama` and `hash: md5`:
 * 160 points per server scaled by weight, the points of a server named NAME
 * are the four little-endian u32 words of md5("NAME-<i>") for i = 0..39, and a
 * key goes to the first point >= md5(16 key bytes)[0..3] read as u32 LE,
 * wrapping to the first point.  NAME is "host:port" for tcp and the socket
 * path for unix.  Adding a server to n moves about 1/(n+1) of the keys.
 * That is the ring with options.ring_points = 160; the default, 4000, adds
 * the points of "NAME-40" .. "NAME-999" for an even spread (each server's
 * share deviates by about 1/sqrt(points): 8% at 160, 1.6% at 4000).
 */
#ifndef KVCACHE_H
#define KVCACHE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exported from the shared library; everything else in it is hidden. */
#if defined(KVCACHE_BUILD) && defined(__GNUC__)
#define KVCACHE_API __attribute__((visibility("default")))
#else
#define KVCACHE_API
#endif

#define KVCACHE_VERSION_MAJOR 0
#define KVCACHE_VERSION_MINOR 1

/* One 128-bit block key (see PREFIX-CHAIN KEYS above). */
typedef struct kvcache_key {
    uint64_t lo;   /* low 64 bits of XXH3-128: first 8 bytes on the wire (LE) */
    uint64_t hi;   /* high 64 bits: next 8 bytes on the wire (LE) */
} kvcache_key_t;

#define KVCACHE_KEY_SEED_LO 0x2d6568636163766bULL  /* "kvcache-" LE */
#define KVCACHE_KEY_SEED_HI 0x31762d6e69616863ULL  /* "chain-v1" LE */
#define KVCACHE_KEY_BYTES   16

/* Error codes (besides -errno).  All negative, all <= KVCACHE_E_BASE. */
enum kvcache_error {
    KVCACHE_OK        = 0,
    KVCACHE_E_BASE    = -30000,
    KVCACHE_EINVAL    = -30000, /* bad argument */
    KVCACHE_ENOMEM    = -30001, /* out of memory */
    KVCACHE_EURI      = -30002, /* a server URI could not be parsed */
    KVCACHE_ETIMEDOUT = -30003, /* the call ran past its timeout */
    KVCACHE_EDOWN     = -30004, /* server skipped: it failed recently (retry delay) */
    KVCACHE_ECLOSED   = -30005, /* the server closed the connection */
    KVCACHE_EPROTO    = -30006, /* malformed or unexpected response */
    KVCACHE_ESERVER   = -30007, /* the server answered with an error */
    KVCACHE_EFULL     = -30008, /* async queue full: the put was dropped */
    KVCACHE_ESIZE     = -30009, /* wrong block size for the namespace / buffer too small */
    KVCACHE_ENOSPACE  = -30010, /* the server had no space for a block */
    KVCACHE_ENONS     = -30011, /* namespace not opened with this handle */
    KVCACHE_ESTALE    = -30012, /* a lease ended before its release: bytes read
                                   through those references may be wrong */
    KVCACHE_ENOSHM    = -30013, /* the server offers no shared memory (tcp:,
                                   opted out, or not a local daemon) */
    KVCACHE_ELIMIT    = -30014, /* a server limit was reached (leased bytes,
                                   batch size): release or send less */
    KVCACHE_E_LAST    = -30014,
};

/* Text for an error code (KVCACHE_E* or -errno); never NULL. */
KVCACHE_API const char *kvcache_strerror(int err);

/* ---- keys ---------------------------------------------------------------- */

/*
 * Compute the chain keys of the full blocks of tokens[0..ntokens).
 * prev is key[-1] of this run: NULL for the start of a sequence (the seed),
 * or the last key already computed when extending a sequence block by block.
 * Writes min(ntokens / tokens_per_block, max_keys) keys and returns how many,
 * or KVCACHE_EINVAL.
 */
KVCACHE_API long kvcache_keys(uint64_t ns_id, const kvcache_key_t *prev,
                  const uint32_t *tokens, size_t ntokens,
                  uint32_t tokens_per_block,
                  kvcache_key_t *keys, size_t max_keys);

/* The 16 wire bytes of a key (lo LE, hi LE), and back. */
KVCACHE_API void kvcache_key_to_bytes(kvcache_key_t key, uint8_t out[KVCACHE_KEY_BYTES]);
KVCACHE_API kvcache_key_t kvcache_key_from_bytes(const uint8_t in[KVCACHE_KEY_BYTES]);

/* ---- handle -------------------------------------------------------------- */

typedef struct kvcache kvcache_t;

/* Options of a handle; zero fields take the defaults shown. */
typedef struct kvcache_options {
    int connect_timeout_ms;  /* connect to one server (default 100) */
    int timeout_ms;          /* whole call, connect included (default 500) */
    int retry_ms;            /* after a timeout, skip the server for this long (default 1000) */
    size_t async_max_bytes;  /* async put queue: block bytes held (default 64 MiB) */
    size_t async_max_items;  /* async put queue: batches held (default 1024) */
    int ring_points;         /* ring points per server (default 4000; 160 = twemproxy's ring) */
    int ring_hash;           /* what a key hashes as on the ring: KVCACHE_RING_KEY
                                (default) or KVCACHE_RING_MEMCACHE */
} kvcache_options_t;

/*
 * Create a handle for the servers in `servers`: a comma-separated list of
 * URIs, each "unix:/path/to/socket" or "tcp:host:port", optionally followed
 * by "*weight" (default weight 1), e.g. "tcp:127.0.0.1:7070,tcp:10.0.0.2:7070*2".
 * Nothing is connected yet: connections are opened on first use.
 * Returns NULL and sets *err (if err is not NULL) on failure.
 */
KVCACHE_API kvcache_t *kvcache_create(const char *servers, const kvcache_options_t *opts, int *err);

/* Close connections, stop the async thread (dropping what is still queued;
 * call kvcache_flush first to wait for it), free the handle.  NULL is fine. */
KVCACHE_API void kvcache_destroy(kvcache_t *kc);

/* Change the timeout of later calls (ms > 0). */
KVCACHE_API int kvcache_set_timeout(kvcache_t *kc, int timeout_ms);

/* Detail of the last error on this handle (server message, which server,
 * what timed out); "" if none.  Valid until the next call on the handle. */
KVCACHE_API const char *kvcache_last_error(const kvcache_t *kc);

/* Number of servers, and the index of the server that owns a key. */
KVCACHE_API int kvcache_server_count(const kvcache_t *kc);
KVCACHE_API int kvcache_server_of(const kvcache_t *kc, kvcache_key_t key);

/*
 * Placement on the ring.  KVCACHE_RING_KEY: md5 of the key's 16 bytes.
 * KVCACHE_RING_MEMCACHE: md5 of the key's memcache name (below), which is
 * what nutcracker hashes: with ring_points = 160 and the same server list
 * ("host:port" names, as nutcracker names servers listed without a name)
 * the library and a nutcracker pool of the daemons' memcache ports put
 * each block on the same daemon.  That placement needs the namespace:
 * use kvcache_server_of_ns (kvcache_server_of answers KVCACHE_EINVAL).
 */
#define KVCACHE_RING_KEY 0
#define KVCACHE_RING_MEMCACHE 1
KVCACHE_API int kvcache_server_of_ns(const kvcache_t *kc, uint64_t ns_id, kvcache_key_t key);

/* The memcache key of a block on kvcached's memcache port:
 * "<ns_id as 16 hex digits>:<the key's 16 bytes as 32 hex digits>". */
#define KVCACHE_MEMCACHE_KEY_LEN 49
KVCACHE_API void kvcache_memcache_key(uint64_t ns_id, kvcache_key_t key,
                                      char out[KVCACHE_MEMCACHE_KEY_LEN + 1]);

/* ---- namespaces ---------------------------------------------------------- */

/* What a namespace holds (proto/README.md "Namespace id"): one model, one
 * shard's layer range, one KV layout.  All blocks are block_bytes long. */
typedef struct kvcache_ns_desc {
    const char *model;          /* model name, 1..256 bytes */
    uint32_t layer_begin;       /* first layer of the shard (inclusive) */
    uint32_t layer_end;         /* last layer (exclusive) */
    uint32_t tokens_per_block;  /* tokens per block, as given to kvcache_keys */
    const char *dtype;          /* e.g. "bf16"; NULL for "" */
    uint32_t kv_heads;
    uint32_t head_dim;
    uint32_t block_bytes;       /* bytes of every block */
} kvcache_ns_desc_t;

/* The stable 64-bit id of a descriptor, computed locally (no I/O). */
KVCACHE_API int kvcache_ns_id(const kvcache_ns_desc_t *desc, uint64_t *ns_id);

/*
 * Open (create or find) a namespace on every server and remember it in the
 * handle, so that a server which restarts empty or joins later gets it again
 * on demand.  *ns_id is set even when servers fail.  Returns 0 if at least
 * one server accepted it, else the first error (KVCACHE_ESIZE if a server
 * knows the id with another block size).
 */
KVCACHE_API int kvcache_open_namespace(kvcache_t *kc, const kvcache_ns_desc_t *desc,
                                       uint64_t *ns_id);

/* ---- calls ----------------------------------------------------------------
 * Every call honours the handle's timeout.  On an error the results are
 * still valid: they count what was found before the failure (a failed server
 * counts as missing its keys).
 */

/* How many leading keys of keys[0..n) are present (*matched), without data. */
KVCACHE_API int kvcache_match(kvcache_t *kc, uint64_t ns_id, const kvcache_key_t *keys,
                              size_t n, size_t *matched);

/*
 * Which of keys[0..n) the daemons hold, in any order and without data or
 * device I/O: present[i] = 1 if keys[i] is held (DRAM or SSD), else 0;
 * *npresent (optional) the count. A key whose server fails stays 0 and the
 * call returns that error.
 */
KVCACHE_API int kvcache_exists(kvcache_t *kc, uint64_t ns_id, const kvcache_key_t *keys,
                               size_t n, uint8_t *present, size_t *npresent);

/* Where a matched block lives (kvcache_match_where). */
#define KVCACHE_WHERE_DRAM 1   /* a DRAM copy in the daemon: memory speed */
#define KVCACHE_WHERE_SSD 2    /* on the SSD only: a device read */

/*
 * As kvcache_match, and where each matched block lives: where (n bytes) gets
 * KVCACHE_WHERE_DRAM or KVCACHE_WHERE_SSD for each i < *matched and 0 past
 * it. For planning what to load and what to recompute: the leading DRAM
 * blocks come at memory speed, the SSD ones at the device's.
 */
KVCACHE_API int kvcache_match_where(kvcache_t *kc, uint64_t ns_id, const kvcache_key_t *keys,
                                    size_t n, size_t *matched, uint8_t *where);

/*
 * Fetch the longest leading run of keys[0..n) that the cache holds.  The
 * bytes of block i are received from the socket directly into bufs[i]
 * (buf_size bytes each, at least the namespace's block_bytes); lengths[i]
 * (optional) gets its length.  *found is the length of the run: bufs past it
 * are untouched, or hold blocks fetched from a server beyond the first gap
 * (ignore them).  With several servers the run stops at the first missing
 * block whatever server owns it.
 */
KVCACHE_API int kvcache_get_prefix(kvcache_t *kc, uint64_t ns_id, const kvcache_key_t *keys,
                                   size_t n, void *const *bufs, size_t buf_size,
                                   uint32_t *lengths, size_t *found);

/* Fetch arbitrary keys: lengths[i] is the length of block i, 0 for a miss
 * (lengths is required here); *nfound counts the hits. */
KVCACHE_API int kvcache_get(kvcache_t *kc, uint64_t ns_id, const kvcache_key_t *keys,
                            size_t n, void *const *bufs, size_t buf_size,
                            uint32_t *lengths, size_t *nfound);

/* Per-key results of a put. */
enum kvcache_put_status {
    KVCACHE_PUT_STORED = 0,     /* stored now */
    KVCACHE_PUT_EXISTS = 1,     /* already present (puts are idempotent) */
    /* < 0: a KVCACHE_E* code (not stored) */
};

/*
 * Store n blocks of block_len bytes: keys[i] with the bytes bufs[i], at chain
 * position first_pos + i.  status (optional) gets a kvcache_put_status per
 * key; *nstored (optional) counts stored or already present blocks.
 */
KVCACHE_API int kvcache_put(kvcache_t *kc, uint64_t ns_id, const kvcache_key_t *keys,
                            size_t n, uint32_t first_pos, const void *const *bufs,
                            size_t block_len, int *status, size_t *nstored);

/*
 * The same put, fire and forget: the keys and bytes are copied into a bounded
 * queue and sent by the handle's background thread (started on first use)
 * over its own connections.  Returns at once: 0, or KVCACHE_EFULL when the
 * queue is over its byte or batch bound (the put is dropped and counted).
 */
KVCACHE_API int kvcache_put_async(kvcache_t *kc, uint64_t ns_id, const kvcache_key_t *keys,
                                  size_t n, uint32_t first_pos, const void *const *bufs,
                                  size_t block_len);

/*
 * Hints an engine may give with a put, for the daemon's admission policy
 * (docs/eviction.md): KVCACHE_HINT_DONE says the blocks' chain is finished
 * (the conversation is closed: no later request will extend it), so a full
 * cache need not keep them. Unknown bits are ignored.
 */
#define KVCACHE_HINT_DONE 1u

/* kvcache_put and kvcache_put_async with hints (KVCACHE_HINT_*) for every
 * block of the put. */
KVCACHE_API int kvcache_put_hint(kvcache_t *kc, uint64_t ns_id, const kvcache_key_t *keys,
                                 size_t n, uint32_t first_pos, uint32_t hints,
                                 const void *const *bufs, size_t block_len, int *status,
                                 size_t *nstored);
KVCACHE_API int kvcache_put_async_hint(kvcache_t *kc, uint64_t ns_id, const kvcache_key_t *keys,
                                       size_t n, uint32_t first_pos, uint32_t hints,
                                       const void *const *bufs, size_t block_len);

/* Wait until the async queue is empty and nothing is in flight, at most
 * timeout_ms (< 0: no limit).  0 or KVCACHE_ETIMEDOUT. */
KVCACHE_API int kvcache_flush(kvcache_t *kc, int timeout_ms);

/* Delete keys; *ndeleted (optional) counts those that were present. */
KVCACHE_API int kvcache_delete(kvcache_t *kc, uint64_t ns_id, const kvcache_key_t *keys,
                               size_t n, size_t *ndeleted);

/* ---- shared memory: zero-copy with a local daemon -------------------------
 *
 * On a "unix:" server the library asks the daemon, when it connects, for its
 * shared region: one memfd holding the daemon's memory slabs and read buffers,
 * mapped here read-only (PROT_READ, once per daemon, at the same address for
 * the life of the handle).  Gets are then answered with references (offset,
 * length, lease) instead of bytes on the socket: kvcache_get_prefix and
 * kvcache_get copy each block once, from the region into the caller's
 * buffers, and the calls below hand the references themselves to engines
 * that move the bytes on their own (cudaMemcpyAsync from the region).
 *
 * Nothing changes for the caller but speed: every call works the same on tcp:
 * servers, on daemons that offer no region and when shared memory is turned
 * off ("unix:/path?shm=0" in the URI, or KVCACHE_SHM=0 in the environment);
 * references then point into memory of the library.
 *
 * Leases.  A reference pins its block in the daemon: it is not reused,
 * evicted or overwritten until released, for at most the daemon's lease
 * timeout (--lease-timeout, 30 s by default); ref.deadline_ns says when that
 * ends (CLOCK_MONOTONIC, which both processes share).  A copy that has ended
 * before deadline_ns is good; kvcache_release_refs says KVCACHE_ESTALE when
 * a lease had already ended, and the copied bytes must then be discarded.
 * Each daemon also bounds the bytes one connection holds leased
 * (--lease-max): past it a get answers KVCACHE_ELIMIT.  Closing the handle
 * (or the process dying) releases everything at once.
 *
 * Typical engine loop (one CUDA stream, the region registered once):
 *
 *   const void *base; size_t size;
 *   if (kvcache_shm_region(kc, 0, &base, &size) == 0)
 *       cudaHostRegister((void *)base, size, cudaHostRegisterReadOnly);
 *   ...
 *   kvcache_ref_t refs[N]; size_t found;
 *   kvcache_get_prefix_refs(kc, ns, keys, n, refs, &found);
 *   for (size_t i = 0; i < found; i++)
 *       cudaMemcpyAsync(gpu_dst[i], refs[i].data, refs[i].len,
 *                       cudaMemcpyHostToDevice, stream);
 *   cudaStreamSynchronize(stream);
 *   if (kvcache_release_refs(kc, refs, found) == KVCACHE_ESTALE)
 *       recompute();            // a lease ran out during the copy
 *
 * Puts by reference: kvcache_put_reserve hands out buffers inside a staging
 * area the daemon shares with this connection (writable here; a GPU-to-host
 * copy can land there directly); kvcache_put_commit stores them.  The daemon
 * copies each committed block into its own memory (and checksums it then), so
 * a block can never change after its commit; reservations live only in this
 * process, so a client that dies holds nobody back.
 */

/* One block found by kvcache_get_prefix_refs. */
typedef struct kvcache_ref {
    const void *data;       /* the block's bytes, read-only; valid until
                               kvcache_release_refs and until deadline_ns */
    uint32_t len;           /* its length in bytes */
    uint32_t flags;         /* KVCACHE_REF_SHARED: data lies in the server's
                               shared region (kvcache_shm_region); otherwise
                               in memory of the library */
    uint64_t deadline_ns;   /* CLOCK_MONOTONIC time the lease ends (UINT64_MAX
                               for memory of the library) */
    uint64_t lease;         /* private: the daemon's lease id (0: none) */
    uint32_t server;        /* private: index of the server */
    uint32_t priv_flags;    /* private */
} kvcache_ref_t;

#define KVCACHE_REF_SHARED 1u

/*
 * kvcache_get_prefix without the copy: refs[i] (i < *found) names block i
 * of the longest leading run present; refs[*found .. n) are zeroed.  Give
 * refs[0 .. *found) back with kvcache_release_refs (also on error: *found
 * counts what was obtained).  At most one call's references per handle
 * should be held at a time; they count against the daemon's --lease-max.
 */
KVCACHE_API int kvcache_get_prefix_refs(kvcache_t *kc, uint64_t ns_id,
                                        const kvcache_key_t *keys, size_t n,
                                        kvcache_ref_t *refs, size_t *found);

/*
 * Release references (batched: one message per server, no wait for an
 * answer) and zero them.  Refs with no lease (zeroed) are skipped.  Returns
 * 0, or KVCACHE_ESTALE if any lease had ended before this call: the bytes
 * read through those references may have been overwritten.
 */
KVCACHE_API int kvcache_release_refs(kvcache_t *kc, kvcache_ref_t *refs, size_t n);

/*
 * The shared region of server `server` as mapped in this process (connects
 * if needed): [*base, *base + *size), read-only, page aligned, the same for
 * the life of the handle (a daemon restart maps the new region elsewhere:
 * ask again after KVCACHE_ECLOSED).  Register it with CUDA once
 * (cudaHostRegister with cudaHostRegisterReadOnly) to copy references to the
 * GPU at full speed.  KVCACHE_ENOSHM if the server offers none.
 */
KVCACHE_API int kvcache_shm_region(kvcache_t *kc, int server, const void **base,
                                   size_t *size);

/*
 * The staging area of server `server` (its puts by reference), writable,
 * [*base, *base + *size); it changes when the connection is re-established.
 * Registering it with CUDA (cudaHostRegister, flags 0) makes GPU-to-host
 * copies into reserved buffers run at full speed.  KVCACHE_ENOSHM if none.
 */
KVCACHE_API int kvcache_shm_staging(kvcache_t *kc, int server, void **base,
                                    size_t *size);

/*
 * Reserve n writable buffers of block_len bytes for the blocks keys[0..n)
 * (bufs[i] for keys[i]): inside the staging area of the key's server when it
 * has one and room is left, else memory of the library.  Fill them, then
 * kvcache_put_commit (or kvcache_put_cancel) with the same bufs.
 */
KVCACHE_API int kvcache_put_reserve(kvcache_t *kc, uint64_t ns_id, const kvcache_key_t *keys,
                                    size_t n, size_t block_len, void **bufs);

/*
 * Store reserved buffers as kvcache_put does (same arguments and results),
 * then give them back: bufs[i] must not be used after this call, whatever it
 * returns.  Buffers in a staging area go by reference (their offsets on the
 * socket, the daemon copies); the others are sent as bytes.
 */
KVCACHE_API int kvcache_put_commit(kvcache_t *kc, uint64_t ns_id, const kvcache_key_t *keys,
                                   size_t n, uint32_t first_pos, void *const *bufs,
                                   size_t block_len, int *status, size_t *nstored);

/* Give reserved buffers back without storing them. */
KVCACHE_API void kvcache_put_cancel(kvcache_t *kc, void *const *bufs, size_t n);

/* A few counters of one server (the Stats RPC has more). */
typedef struct kvcache_stats {
    uint64_t items;             /* blocks stored */
    uint64_t bytes;             /* their bytes */
    uint64_t hits;              /* blocks found */
    uint64_t misses;            /* blocks asked for and not found */
    uint64_t puts;              /* blocks stored by puts */
    uint64_t evictions;         /* slabs evicted */
    uint64_t connections;       /* open connections now */
    uint64_t uptime_s;          /* daemon uptime */
} kvcache_stats_t;

/* Stats of server `server` (0..kvcache_server_count()-1). */
KVCACHE_API int kvcache_stats(kvcache_t *kc, int server, kvcache_stats_t *st);

/* Health of one server: KVCACHE_HEALTH_OK, _DEGRADED (answering, but its
 * device I/O is slow or failing: stop waiting on it for latency-critical
 * work) or _DOWN (stopping, or unreachable: the call's error says which). */
enum kvcache_health_state {
    KVCACHE_HEALTH_OK = 0,
    KVCACHE_HEALTH_DEGRADED = 1,
    KVCACHE_HEALTH_DOWN = 2,
};

/* *state gets the server's health; reason (optional, len bytes) its text. */
KVCACHE_API int kvcache_health(kvcache_t *kc, int server, int *state, char *reason,
                               size_t len);

/* Counters of the handle itself. */
typedef struct kvcache_client_stats {
    uint64_t connects;          /* connections opened (first ones and reconnects) */
    uint64_t timeouts;          /* server exchanges that timed out */
    uint64_t async_queued;      /* async puts accepted */
    uint64_t async_dropped;     /* async puts refused (queue full) */
    uint64_t async_failed;      /* async puts that failed on the wire */
    uint64_t async_done;        /* async puts completed */
} kvcache_client_stats_t;

KVCACHE_API int kvcache_client_stats(const kvcache_t *kc, kvcache_client_stats_t *cs);

#ifdef __cplusplus
}
#endif
#endif /* KVCACHE_H */
