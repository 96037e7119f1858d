/*
 * kt.h - helpers shared by the storage engine's unit tests.
 *
 * Assertions print file:line and the seed of the run, so a failure can be
 * replayed with KC_TEST_SEED=<seed>. Every value a test stores is derived
 * from its key and the seed (kt_fill), so every read can be checked byte by
 * byte (kt_verify) without keeping copies. Each test gets a fresh folder on
 * a file system where O_DIRECT works (KC_TEST_DIR, set by meson to the build
 * folder, then $TMPDIR, /var/tmp, /tmp), removed at exit unless
 * KC_TEST_KEEP is set. Exit status 77 means "skipped" to meson.
 *
 * Header-only: each test is one translation unit.
 */
#ifndef KT_H
#define KT_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "slab/kc_store.h"

#define KT_KIB 1024u
#define KT_MIB (1024u * 1024u)

static uint64_t kt_seed;          /* seed of this run */
static const char *kt_name = "";  /* test name, for messages */
static char kt_dir[1024];         /* this run's temporary folder */
static pid_t kt_owner;            /* only this process cleans up */

/* Remove the temporary folder and what is in it (one level deep). */
static void kt_cleanup(void)
{
    if (kt_dir[0] == '\0' || getpid() != kt_owner)
        return;
    if (getenv("KC_TEST_KEEP") != NULL) {
        fprintf(stderr, "%s: kept %s\n", kt_name, kt_dir);
        return;
    }
    DIR *d = opendir(kt_dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            unlinkat(dirfd(d), e->d_name, 0);
        }
        closedir(d);
    }
    rmdir(kt_dir);
    kt_dir[0] = '\0';
}

/* Report a failed check and end the test (exit runs the cleanup). */
__attribute__((format(printf, 3, 4), noreturn))
static void kt_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s:%d: FAIL: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "  [%s seed=%" PRIu64 ", replay with KC_TEST_SEED=%" PRIu64
            "]\n", kt_name, kt_seed, kt_seed);
    fflush(stderr);
    exit(1);
}

#define KT_CHECK(c) \
    do { if (!(c)) kt_fail(__FILE__, __LINE__, "%s", #c); } while (0)

#define KT_CHECKF(c, ...) \
    do { if (!(c)) kt_fail(__FILE__, __LINE__, __VA_ARGS__); } while (0)

#define KT_EQ(a, b) \
    do { long long a_ = (long long)(a), b_ = (long long)(b); \
         if (a_ != b_) kt_fail(__FILE__, __LINE__, "%s == %s (%lld != %lld)", \
                               #a, #b, a_, b_); } while (0)

#define KT_LE(a, b) \
    do { long long a_ = (long long)(a), b_ = (long long)(b); \
         if (!(a_ <= b_)) kt_fail(__FILE__, __LINE__, "%s <= %s (%lld > %lld)", \
                                  #a, #b, a_, b_); } while (0)

/* An engine call that must return 0. */
#define KT_OK(expr) \
    do { int r_ = (expr); \
         if (r_ != 0) kt_fail(__FILE__, __LINE__, "%s -> %d (%s)", #expr, r_, \
                              kc_strerror(r_)); } while (0)

/* splitmix64's finaliser: a good 64-bit mix. */
static inline uint64_t kt_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Key number i of this run. */
static inline struct kc_key kt_key(uint64_t i)
{
    struct kc_key k;
    k.lo = kt_mix(kt_seed ^ kt_mix(2 * i + 1));
    k.hi = kt_mix(k.lo ^ kt_mix(i + 0x51ed27));
    return k;
}

static inline bool kt_key_eq(const struct kc_key *a, const struct kc_key *b)
{
    return a->lo == b->lo && a->hi == b->hi;
}

/* The value stream of a key: its first word, then kt_mix of a counter. */
static inline uint64_t kt_stream0(const struct kc_key *k)
{
    return kt_mix(k->lo ^ kt_mix(k->hi ^ kt_seed));
}

/* Fill buf with the len bytes the key implies. */
static inline void kt_fill(void *buf, uint32_t len, const struct kc_key *k)
{
    uint64_t s = kt_stream0(k), w;
    uint8_t *p = buf;
    uint32_t i = 0;
    for (; i + 8 <= len; i += 8) {
        w = kt_mix(s + i);
        memcpy(p + i, &w, 8);
    }
    if (i < len) {
        w = kt_mix(s + i);
        memcpy(p + i, &w, len - i);
    }
}

/* -1 if buf holds the bytes the key implies, else the first bad offset. */
static inline long kt_verify(const void *buf, uint32_t len,
                             const struct kc_key *k)
{
    uint64_t s = kt_stream0(k), w;
    const uint8_t *p = buf;
    uint32_t i = 0;
    for (; i + 8 <= len; i += 8) {
        w = kt_mix(s + i);
        if (memcmp(p + i, &w, 8) != 0)
            goto bad;
    }
    if (i < len) {
        w = kt_mix(s + i);
        if (memcmp(p + i, &w, len - i) != 0)
            goto bad;
    }
    return -1;
bad:
    for (uint32_t j = 0; j < 8 && i + j < len; j++)
        if (p[i + j] != ((uint8_t *)&w)[j])
            return (long)(i + j);
    return (long)i;
}

/* Seconds on the monotonic clock. */
static inline double kt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* True if dir takes an aligned O_DIRECT write (tmpfs does not). */
static bool kt_direct_ok(const char *dir)
{
    char p[4200];
    void *b = NULL;
    bool ok = false;
    snprintf(p, sizeof(p), "%s/.odirect-probe", dir);
    int fd = open(p, O_CREAT | O_RDWR | O_DIRECT, 0600);
    if (fd < 0)
        return false;
    if (posix_memalign(&b, 4096, 4096) == 0) {
        memset(b, 0, 4096);
        ok = pwrite(fd, b, 4096, 0) == 4096;
        free(b);
    }
    close(fd);
    unlink(p);
    return ok;
}

/*
 * Start a test: pick the seed (KC_TEST_SEED or the clock), print it, make
 * the temporary folder. Exits 77 (skip) if no folder takes O_DIRECT.
 */
static void kt_begin(const char *name)
{
    kt_name = name;
    const char *s = getenv("KC_TEST_SEED");
    if (s != NULL && *s != '\0')
        kt_seed = strtoull(s, NULL, 0);
    else
        kt_seed = kt_mix((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^
                         (uint64_t)clock());
    printf("%s: seed=%" PRIu64 "\n", name, kt_seed);
    fflush(stdout);

    const char *cands[] = { getenv("KC_TEST_DIR"), getenv("TMPDIR"),
                            "/var/tmp", "/tmp" };
    kt_owner = getpid();
    for (size_t i = 0; i < sizeof(cands) / sizeof(cands[0]); i++) {
        if (cands[i] == NULL || *cands[i] == '\0')
            continue;
        snprintf(kt_dir, sizeof(kt_dir), "%s/kc-%s-XXXXXX", cands[i], name);
        if (mkdtemp(kt_dir) == NULL)
            continue;
        if (kt_direct_ok(kt_dir)) {
            atexit(kt_cleanup);
            return;
        }
        rmdir(kt_dir);
    }
    kt_dir[0] = '\0';
    printf("%s: SKIP: no folder takes O_DIRECT (set KC_TEST_DIR)\n", name);
    exit(77);
}

/* Path of a file inside the test folder (a static buffer per call site). */
static inline const char *kt_path(char *buf, size_t cap, const char *file)
{
    snprintf(buf, cap, "%s/%s", kt_dir, file);
    return buf;
}

/* A tiny geometry that forces the SSD path. */
static inline void kt_config(struct store_config *c, const char *path,
                             uint64_t device, uint32_t slab, uint64_t memory,
                             uint32_t min_item)
{
    store_config_default(c);
    c->path = path;
    c->device_size = device;
    c->slab_size = slab;
    c->memory = memory;
    c->min_item_size = min_item;
    c->fresh = false;
}

/* Fail the test if index and slabs disagree (store_audit). */
#define KT_AUDIT(st) kt_audit_at(__FILE__, __LINE__, (st))
static inline void kt_audit_at(const char *file, int line, const struct store *st)
{
    char err[256];
    int bad = store_audit(st, err, sizeof(err));
    if (bad != 0)
        kt_fail(file, line, "store_audit: %d disagreements, first: %s", bad, err);
}

/* Open a store or fail the test with the engine's message. */
#define KT_OPEN(cfg) kt_open_at(__FILE__, __LINE__, (cfg))
static inline struct store *kt_open_at(const char *file, int line,
                                       const struct store_config *c)
{
    struct store *st = NULL;
    char err[512] = "";
    int r = store_open(c, &st, err, sizeof(err));
    if (r != 0 || st == NULL)
        kt_fail(file, line, "store_open(%s) -> %d (%s): %s", c->path, r,
                kc_strerror(r), err);
    kt_audit_at(file, line, st);   /* what recovery built agrees */
    return st;
}

/* End a phase: the store's audit must find nothing, then it is closed. */
#define KT_CLOSE(st) \
    do { kt_audit_at(__FILE__, __LINE__, (st)); store_close(st); } while (0)

/* Put one block whose bytes the key implies; returns its status. */
static inline int kt_put1(struct store *st, uint64_t ns,
                          const struct kc_key *k, uint32_t len,
                          uint32_t chain_pos)
{
    void *buf = malloc(len ? len : 1);
    if (buf == NULL)
        abort();
    kt_fill(buf, len, k);
    struct store_put_item it = { .key = *k, .chain_pos = chain_pos,
                                 .len = len, .data = buf, .status = -1 };
    int r = store_put(st, ns, &it, 1);
    free(buf);
    return r != 0 ? r : it.status;
}

/* Put key number i, failing the test unless it is stored (KC_OK). */
#define KT_PUT(st, ns, i, len) \
    do { struct kc_key k_ = kt_key(i); \
         int r_ = kt_put1((st), (ns), &k_, (len), (uint32_t)(i)); \
         if (r_ != KC_OK) kt_fail(__FILE__, __LINE__, "put #%llu len %u -> %d (%s)", \
                                  (unsigned long long)(i), (unsigned)(len), r_, \
                                  kc_strerror(r_)); } while (0)

/*
 * Get one block, synchronously; into a caller buffer if use_dst, else by
 * the data pointer. If found, the bytes must be the key's (else the test
 * fails: serving wrong bytes is never acceptable) and *len is set. Returns
 * the item's status.
 */
#define KT_GET(st, ns, k, use_dst, lenp) \
    kt_get1_at(__FILE__, __LINE__, (st), (ns), (k), (use_dst), (lenp))
static inline int kt_get1_at(const char *file, int line, struct store *st,
                             uint64_t ns, const struct kc_key *k, bool use_dst,
                             uint32_t *lenp)
{
    const uint32_t cap = 64 * KT_MIB;
    static void *dst;
    if (use_dst && dst == NULL && (dst = malloc(cap)) == NULL)
        abort();
    struct store_get_item it;
    memset(&it, 0, sizeof(it));
    it.key = *k;
    it.status = -1;
    if (use_dst) {
        it.dst = dst;
        it.dst_cap = cap;
    }
    struct store_get g;
    memset(&g, 0, sizeof(g));
    g.ns = ns;
    g.items = &it;
    g.n = 1;
    int r = store_get(st, &g);
    if (r != 0) {
        store_get_release(st, &g);
        return r;
    }
    if (g.status != 0) {
        store_get_release(st, &g);
        return g.status;
    }
    int status = it.status;
    if (status == KC_OK) {
        const void *p = use_dst ? dst : it.data;
        if (p == NULL)
            kt_fail(file, line, "get: found but no data (dst=%d)", use_dst);
        long bad = kt_verify(p, it.len, k);
        if (bad >= 0)
            kt_fail(file, line, "get: WRONG BYTES at offset %ld of %u "
                    "(key %016" PRIx64 ":%016" PRIx64 ", dst=%d)", bad, it.len,
                    k->hi, k->lo, use_dst);
        if (g.found != 1)
            kt_fail(file, line, "get: found %zu, expected 1", g.found);
        if (lenp != NULL)
            *lenp = it.len;
    }
    store_get_release(st, &g);
    return status;
}

/* Stats snapshot. */
static inline struct store_stats kt_stats(const struct store *st)
{
    struct store_stats s;
    memset(&s, 0, sizeof(s));
    store_stats(st, &s);
    return s;
}

/* Get key k of namespace ns into buf (cap bytes), whatever its bytes;
 * returns the item's status and sets *len. */
static inline int kt_get_into(struct store *st, uint64_t ns, const struct kc_key *k,
                              void *buf, uint32_t cap, uint32_t *len)
{
    struct store_get_item it;
    struct store_get g;
    memset(&it, 0, sizeof(it));
    memset(&g, 0, sizeof(g));
    it.key = *k;
    it.dst = buf;
    it.dst_cap = cap;
    g.ns = ns;
    g.items = &it;
    g.n = 1;
    if (store_get(st, &g) != 0)
        kt_fail(__FILE__, __LINE__, "store_get failed");
    *len = it.len;
    store_get_release(st, &g);
    return it.status;
}

/* Memory a child process writes and the parent reads (zeroed). */
static inline void *kt_shared(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        abort();
    return p;
}

/*
 * Run fn(arg) in a child process that then ends at once, closing nothing:
 * what its store had not written is lost, as with kill -9. Returns when
 * the child has exited; fails the test unless fn returned.
 */
static inline void kt_crash_after(void (*fn)(void *), void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        abort();
    if (pid == 0) {
        fn(arg);
        fflush(NULL);
        _exit(0);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        kt_fail(__FILE__, __LINE__, "child failed (status %d)", status);
}

#endif
