/*
 * kc_rpcbench.c - what the RPC costs: Put and GetPrefix throughput through
 * kvcached (Unix socket, TCP, and shared memory: puts from the staging
 * area, gets by reference copied once out of the region, docs/shm.md)
 * beside the storage engine called directly in this process, same
 * geometry, same run. Also GetPrefix latency alone
 * and under a Put flood (reads first).
 *
 *   kc_rpcbench [--smoke] [--seconds S] [--depth N] [--rounds R]
 *               [--dir DIR] [--kvcached PATH] [--shm MODE] [--flood]
 *
 * --flood runs only the GetPrefix latency alone and under a Put flood
 * (after the same puts over Unix), for each block size.
 *
 * --shm is passed to kvcached (auto, hugetlb, thp, 4k, off: the pages of
 * its shared region, which also hold the memory slabs and read buffers of
 * every column but the engine's; off = private memory, no shm column).
 *
 * Files go to DIR (default ./var/rpcbench.PID, removed at the end).
 *
 * For each block size (256 KiB, 1 MiB), the engine (its own store, in this
 * process) and a fresh kvcached (same geometry; one Unix, one TCP and one
 * attached Unix connection) run the same phases, interleaved round by round
 * so that noise from neighbours hits all alike; medians are printed:
 *   put              W bytes in all, batches of 4 blocks
 *   get_prefix dram  4-block chains among the newest blocks (DRAM-resident)
 *   get_prefix ssd   4-block chains among the oldest half (SSD-resident:
 *                    their memory slabs were reused long ago)
 * The DRAM share of hits is printed to show each set is what it claims.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kc_benchshm.h"
#include "kc_frame.h"
#include "kvcache.pb-c.h"
#include "slab/kc_store.h"

#ifndef KVCACHED_PATH
#define KVCACHED_PATH "kvcached"
#endif

#define CHAIN 4          /* blocks per GetPrefix and per Put batch */
#define DEPTH_MAX 64
#define ROUNDS_MAX 16

/* Run parameters. */
struct bench {
    const char *kvcached;
    const char *dir;
    double seconds;       /* per timed read phase */
    unsigned depth;       /* requests in flight */
    uint64_t memory;      /* memory slabs, bytes */
    uint64_t device;      /* device bytes */
    uint32_t slab;        /* slab bytes */
    uint64_t wbytes;      /* bytes written per put phase */
    uint32_t bs;          /* block size of the current round */
    bool one_size;        /* --smoke: 256 KiB only */
    int rounds;           /* interleaved rounds; medians are reported */
    uint8_t *block;       /* one block of random bytes, reused */
    const char *shm;      /* kvcached's --shm */
    int ntrans;           /* rpc columns: T_COUNT, or T_SHM with --shm off */
    bool flood_only;      /* --flood: the latency under a Put flood alone */
};

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "kc_rpcbench: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* Key i of a phase: lo = i, hi = a constant per run. */
static struct kc_key key_of(uint64_t i)
{
    struct kc_key k = { i, 0x6b63626e63686d6bull };
    return k;
}

/* A latency sample set. */
struct lat {
    double *v;
    size_t n, cap;
};

static void lat_add(struct lat *l, double s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 4096;
        l->v = realloc(l->v, l->cap * sizeof(*l->v));
        if (l->v == NULL)
            die("realloc");
    }
    l->v[l->n++] = s;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double lat_q(struct lat *l, double q)
{
    if (l->n == 0)
        return 0;
    qsort(l->v, l->n, sizeof(double), cmp_double);
    return l->v[(size_t)(q * (double)(l->n - 1))];
}

/* ---- the engine, called directly ---- */

/* One get batch slot of the engine read loop. */
struct eslot {
    struct store_get g;
    struct store_get_item items[CHAIN];
    uint8_t *dst;         /* the engine copies values here, as a client
                             needs them in its own memory */
    bool busy;
    double t0;
    uint64_t bytes;
    struct lat *lat;
};

static void eslot_done(struct store_get *g, void *arg)
{
    struct eslot *s = arg;

    for (size_t i = 0; i < g->found; i++)
        s->bytes += g->items[i].len;
    if (s->lat)
        lat_add(s->lat, now_s() - s->t0);
    s->busy = false;
}

/* Time GetPrefix of CHAIN keys at random in [lo, hi) on the engine. */
static double engine_reads(struct bench *b, struct store *st, uint64_t ns,
                           uint64_t lo, uint64_t hi, double *hit_mem_frac)
{
    struct eslot slots[DEPTH_MAX];
    struct store_stats s0, s1;
    uint64_t bytes = 0;
    double t0 = now_s(), t;

    memset(slots, 0, sizeof(slots));
    for (unsigned d = 0; d < b->depth; d++) {
        slots[d].dst = malloc((size_t)CHAIN * b->bs);
        if (slots[d].dst == NULL)
            die("malloc");
    }
    store_stats(st, &s0);
    for (;;) {
        t = now_s();
        bool stop = t - t0 >= b->seconds;
        bool any = false;

        for (unsigned d = 0; d < b->depth; d++) {
            struct eslot *s = &slots[d];

            if (s->busy) {
                any = true;
                continue;
            }
            if (s->g.items) {
                store_get_release(st, &s->g);
                bytes += s->bytes;
                s->g.items = NULL;
            }
            if (stop)
                continue;
            uint64_t k = lo + (uint64_t)rand() % (hi - lo - CHAIN);
            memset(&s->g, 0, sizeof(s->g));
            for (int i = 0; i < CHAIN; i++) {
                memset(&s->items[i], 0, sizeof(s->items[i]));
                s->items[i].key = key_of(k + (uint64_t)i);
                s->items[i].dst = s->dst + (size_t)i * b->bs;
                s->items[i].dst_cap = b->bs;
            }
            s->g.ns = ns;
            s->g.items = s->items;
            s->g.n = CHAIN;
            s->g.prefix = true;
            s->g.done = eslot_done;
            s->g.arg = s;
            s->busy = true;
            s->bytes = 0;
            s->t0 = t;
            any = true;
            if (store_get_submit(st, &s->g) < 0) {
                fprintf(stderr, "store_get_submit failed\n");
                exit(1);
            }
        }
        if (stop && !any)
            break;
        if (store_busy(st))
            store_poll(st, true);
    }
    for (unsigned d = 0; d < b->depth; d++)
        free(slots[d].dst);
    store_stats(st, &s1);
    *hit_mem_frac = s1.hits > s0.hits ? (double)(s1.hits_mem - s0.hits_mem) /
                                        (double)(s1.hits - s0.hits) : 0;
    return (double)bytes / (now_s() - t0) / 1e9;
}

/* The engine side: a store in this process, same geometry as the daemon. */
struct engine {
    struct store *st;
    uint64_t ns;
    uint64_t n;          /* blocks written so far: keys 1..n */
    char path[512];
};

static void engine_open(struct bench *b, uint32_t bs, struct engine *e)
{
    struct store_config cfg;
    char err[256];

    memset(e, 0, sizeof(*e));
    snprintf(e->path, sizeof(e->path), "%s/engine.store", b->dir);
    store_config_default(&cfg);
    cfg.path = e->path;
    cfg.device_size = b->device;
    cfg.slab_size = b->slab;
    cfg.memory = b->memory;
    cfg.min_item_size = bs;
    cfg.fresh = true;
    if (store_open(&cfg, &e->st, err, sizeof(err)) < 0) {
        fprintf(stderr, "engine: %s\n", err);
        exit(1);
    }
    e->ns = 42;
    store_ns_open(e->st, e->ns, bs, "bench", 5);
}

/* Put count more blocks in batches of CHAIN; GB/s. */
static double engine_put(struct bench *b, struct engine *e, uint32_t bs,
                         uint64_t count)
{
    struct store_put_item items[CHAIN];
    double t0 = now_s();

    for (uint64_t i = 0; i < count; i += CHAIN) {
        for (int j = 0; j < CHAIN; j++) {
            memset(&items[j], 0, sizeof(items[j]));
            items[j].key = key_of(e->n + i + (uint64_t)j + 1);
            items[j].chain_pos = (uint32_t)j;
            items[j].len = bs;
            items[j].data = b->block;
        }
        store_put(e->st, e->ns, items, CHAIN);
    }
    e->n += count;
    return (double)(count * bs) / (now_s() - t0) / 1e9;
}

static void engine_close(struct engine *e)
{
    store_close(e->st);
    unlink(e->path);
}

/* ---- through kvcached ---- */

/* A spawned daemon. */
struct daemon {
    pid_t pid;
    char sock[512];
    int port;
};

static void daemon_start(struct bench *b, uint32_t bs, struct daemon *d)
{
    char store[512], pf[512], log[512], dev[32], mem[32], slab[32], mi[32];
    double t0;

    snprintf(store, sizeof(store), "%s/rpc.store", b->dir);
    snprintf(d->sock, sizeof(d->sock), "%s/rpc.sock", b->dir);
    snprintf(pf, sizeof(pf), "%s/ports", b->dir);
    snprintf(log, sizeof(log), "%s/kvcached.log", b->dir);
    snprintf(dev, sizeof(dev), "%llu", (unsigned long long)b->device);
    snprintf(mem, sizeof(mem), "%llu", (unsigned long long)(b->memory >> 20));
    snprintf(slab, sizeof(slab), "%u", b->slab);
    snprintf(mi, sizeof(mi), "%u", bs);
    unlink(pf);
    d->pid = fork();
    if (d->pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (fd >= 0)
            dup2(fd, 2);
        execl(b->kvcached, b->kvcached, "-D", store, "-S", dev, "-m", mem,
              "--slab-size", slab, "--min-item-size", mi, "-s", d->sock,
              "-p", "0", "--no-auth", "--port-file", pf, "--fresh", "--shm", b->shm, (char *)NULL);
        _exit(127);
    }
    for (t0 = now_s(); now_s() - t0 < 30; usleep(10000)) {
        FILE *f = fopen(pf, "r");

        if (f && fscanf(f, "tcp=%d", &d->port) == 1) {
            fclose(f);
            return;
        }
        if (f)
            fclose(f);
        if (waitpid(d->pid, NULL, WNOHANG) == d->pid)
            break;
    }
    fprintf(stderr, "kc_rpcbench: kvcached (%s) did not start; see %s\n",
            b->kvcached, log);
    exit(1);
}

static void daemon_stop(struct bench *b, struct daemon *d)
{
    char store[512];
    int st;

    kill(d->pid, SIGTERM);
    waitpid(d->pid, &st, 0);
    snprintf(store, sizeof(store), "%s/rpc.store", b->dir);
    unlink(store);
}

/* A blocking client connection. */
struct cli {
    int fd;
    uint64_t id;
    uint8_t *rbuf;        /* receive buffer for data sections (and copies
                             out of the region) */
    size_t rcap;
    bool shm;             /* attached: puts staged, gets by reference */
    struct bshm sh;
};

/* Transports of the rpc columns. */
enum { T_UNIX, T_TCP, T_SHM, T_COUNT };

static void cli_connect(struct cli *c, struct daemon *d, int mode)
{
    bool tcp = mode == T_TCP;

    int one = 1, sz = 4 << 20;

    memset(c, 0, sizeof(*c));
    if (tcp) {
        struct sockaddr_in sa = { .sin_family = AF_INET };

        sa.sin_port = htons((uint16_t)d->port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        c->fd = socket(AF_INET, SOCK_STREAM, 0);
        if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
            die("connect tcp");
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    } else {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        if (strlen(d->sock) >= sizeof(sa.sun_path)) {
            fprintf(stderr, "kc_rpcbench: socket path too long\n");
            exit(1);
        }
        memcpy(sa.sun_path, d->sock, strlen(d->sock) + 1);
        c->fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
            die("connect unix");
    }
    setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    if (mode == T_SHM) {
        bshm_attach(c->fd, ++c->id, &c->sh);
        c->shm = true;
    }
}

static void cli_close(struct cli *c)
{
    close(c->fd);
    free(c->rbuf);
    bshm_deinit(&c->sh);
}

/* Room for len bytes in the receive buffer. */
static void cli_room(struct cli *c, uint64_t len)
{
    if (len > c->rcap) {
        c->rcap = len;
        c->rbuf = realloc(c->rbuf, c->rcap);
        if (c->rbuf == NULL)
            die("realloc");
    }
}

static void send_all(int fd, const void *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            die("send");
        p = (const uint8_t *)p + n;
        len -= (size_t)n;
    }
}

static void recv_all(int fd, void *p, size_t len)
{
    while (len > 0) {
        ssize_t n = recv(fd, p, len, 0);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            die("recv");
        p = (uint8_t *)p + n;
        len -= (size_t)n;
    }
}

/* Frame and send q plus n copies of the bench block as data. */
static void cli_send(struct cli *c, Kvcache__Request *q, const uint8_t *block,
                     uint32_t bs, unsigned n)
{
    uint8_t buf[4096];
    struct kc_frame_hdr h = { KC_FRAME_VERSION, 0, 0, (uint64_t)bs * n };
    size_t pb;

    q->id = ++c->id;
    pb = kvcache__request__get_packed_size(q);
    h.pb_len = (uint32_t)pb;
    kc_frame_encode(buf, &h);
    kvcache__request__pack(q, buf + KC_FRAME_HDR_LEN);
    send_all(c->fd, buf, KC_FRAME_HDR_LEN + pb);
    for (unsigned i = 0; i < n; i++)
        send_all(c->fd, block, bs);
}

/* Receive one response; returns its data length, checks the code. */
static uint64_t cli_recv(struct cli *c, uint64_t *id)
{
    uint8_t hb[KC_FRAME_HDR_LEN], pb[4096];
    struct kc_frame_hdr h;
    Kvcache__Response *r;

    recv_all(c->fd, hb, sizeof(hb));
    if (kc_frame_decode(hb, sizeof(pb), 1ull << 32, &h) != 0) {
        fprintf(stderr, "kc_rpcbench: bad response frame\n");
        exit(1);
    }
    recv_all(c->fd, pb, h.pb_len);
    r = kvcache__response__unpack(NULL, h.pb_len, pb);
    if (r == NULL || r->code != 0) {
        fprintf(stderr, "kc_rpcbench: error response: %s\n",
                r ? r->message : "undecodable");
        exit(1);
    }
    *id = r->id;
    uint64_t refd = 0;
    if (c->shm && r->result_case == KVCACHE__RESPONSE__RESULT_GET_PREFIX &&
        r->get_prefix->n_offsets) {
        /* by reference: one copy out of the region, then the release */
        const Kvcache__GetPrefixResponse *g = r->get_prefix;
        for (size_t i = 0; i < g->n_offsets; i++)
            refd += g->offsets[i] != UINT64_MAX ? g->lengths[i] : 0;
        cli_room(c, refd + h.data_len);
        refd = 0;
        for (size_t i = 0; i < g->n_offsets; i++) {
            if (g->offsets[i] == UINT64_MAX)
                continue;
            if (g->offsets[i] + g->lengths[i] > c->sh.region_size) {
                fprintf(stderr, "kc_rpcbench: offset past the region\n");
                exit(1);
            }
            memcpy(c->rbuf + refd, c->sh.region + g->offsets[i], g->lengths[i]);
            refd += g->lengths[i];
        }
        if (g->lease)
            bshm_release(c->fd, 0, g->lease);
    }
    kvcache__response__free_unpacked(r, NULL);
    cli_room(c, refd + h.data_len);
    recv_all(c->fd, c->rbuf + refd, h.data_len);
    return refd + h.data_len;
}

static uint64_t cli_open_ns(struct cli *c, uint32_t bs)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__OpenNamespaceRequest o = KVCACHE__OPEN_NAMESPACE_REQUEST__INIT;
    Kvcache__NamespaceDesc d = KVCACHE__NAMESPACE_DESC__INIT;
    uint8_t hb[KC_FRAME_HDR_LEN], pb[256];
    struct kc_frame_hdr h;
    Kvcache__Response *r;
    uint64_t ns;

    d.model = "bench";
    d.dtype = "bf16";
    d.block_bytes = bs;
    o.desc = &d;
    q.op_case = KVCACHE__REQUEST__OP_OPEN_NAMESPACE;
    q.open_namespace = &o;
    cli_send(c, &q, NULL, 0, 0);
    recv_all(c->fd, hb, sizeof(hb));
    if (kc_frame_decode(hb, sizeof(pb), 0, &h) != 0)
        exit(1);
    recv_all(c->fd, pb, h.pb_len);
    r = kvcache__response__unpack(NULL, h.pb_len, pb);
    if (r == NULL || r->code != 0) {
        fprintf(stderr, "kc_rpcbench: OpenNamespace failed\n");
        exit(1);
    }
    ns = r->open_namespace->ns;
    kvcache__response__free_unpacked(r, NULL);
    return ns;
}

/* The daemon's hits and DRAM hits so far. */
static void cli_hits(struct cli *c, uint64_t *hits, uint64_t *mem)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__StatsRequest sq = KVCACHE__STATS_REQUEST__INIT;
    uint8_t hb[KC_FRAME_HDR_LEN], *pb;
    struct kc_frame_hdr h;
    Kvcache__Response *r;

    q.op_case = KVCACHE__REQUEST__OP_STATS;
    q.stats = &sq;
    cli_send(c, &q, NULL, 0, 0);
    recv_all(c->fd, hb, sizeof(hb));
    if (kc_frame_decode(hb, KC_FRAME_PB_MAX, 0, &h) != 0 ||
        (pb = malloc(h.pb_len)) == NULL)
        exit(1);
    recv_all(c->fd, pb, h.pb_len);
    r = kvcache__response__unpack(NULL, h.pb_len, pb);
    free(pb);
    if (r == NULL || r->code != 0)
        exit(1);
    *hits = r->stats->hits;
    *mem = r->stats->hits_mem;
    kvcache__response__free_unpacked(r, NULL);
}

/* Send a Put of CHAIN blocks from key first. */
static void send_put(struct cli *c, struct bench *b, uint64_t ns, uint64_t first,
                     uint32_t bs)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__PutRequest p = KVCACHE__PUT_REQUEST__INIT;
    Kvcache__PutItem items[CHAIN], *ip[CHAIN];
    uint8_t keys[CHAIN][KC_KEY_WIRE_LEN];

    for (int j = 0; j < CHAIN; j++) {
        struct kc_key k = key_of(first + (uint64_t)j);

        kvcache__put_item__init(&items[j]);
        kc_key_pack(keys[j], k.lo, k.hi);
        items[j].key.data = keys[j];
        items[j].key.len = KC_KEY_WIRE_LEN;
        items[j].chain_pos = (uint32_t)j;
        items[j].length = bs;
        ip[j] = &items[j];
    }
    p.ns = ns;
    p.n_items = CHAIN;
    p.items = ip;
    q.op_case = KVCACHE__REQUEST__OP_PUT;
    q.put = &p;
    if (c->shm) {
        /* staged: the blocks are written into a slot of the staging area
         * (one per request in flight), the request names them */
        uint64_t slot = (uint64_t)CHAIN * bs, off = (c->id + 1) % b->depth * slot;
        if (off + slot > c->sh.staging_size) {
            fprintf(stderr, "kc_rpcbench: staging area too small for the depth\n");
            exit(1);
        }
        for (int j = 0; j < CHAIN; j++) {
            memcpy(c->sh.staging + off + (uint64_t)j * bs, b->block, bs);
            items[j].offset = off + (uint64_t)j * bs;
        }
        p.staging = c->sh.staging_id;
        cli_send(c, &q, NULL, 0, 0);
        return;
    }
    cli_send(c, &q, b->block, bs, CHAIN);
}

static void send_get_prefix(struct cli *c, uint64_t ns, uint64_t first)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__GetPrefixRequest g = KVCACHE__GET_PREFIX_REQUEST__INIT;
    uint8_t keys[CHAIN * KC_KEY_WIRE_LEN];

    for (int j = 0; j < CHAIN; j++) {
        struct kc_key k = key_of(first + (uint64_t)j);

        kc_key_pack(keys + j * KC_KEY_WIRE_LEN, k.lo, k.hi);
    }
    g.ns = ns;
    g.keys.data = keys;
    g.keys.len = sizeof(keys);
    g.by_ref = c->shm;
    q.op_case = KVCACHE__REQUEST__OP_GET_PREFIX;
    q.get_prefix = &g;
    cli_send(c, &q, NULL, 0, 0);
}

/* Put blocks [first, first + n) with depth requests in flight; GB/s. */
static double rpc_puts(struct cli *c, struct bench *b, uint64_t ns,
                       uint64_t first, uint64_t n, uint32_t bs, double limit_s)
{
    unsigned inflight = 0;
    uint64_t next = first, done = 0, id;
    double t0 = now_s();

    while (next < first + n || inflight) {
        while (inflight < b->depth && next < first + n &&
               (limit_s <= 0 || now_s() - t0 < limit_s)) {
            send_put(c, b, ns, next, bs);
            next += CHAIN;
            inflight++;
        }
        if (inflight == 0)
            break;
        cli_recv(c, &id);
        inflight--;
        done += CHAIN;
    }
    return (double)(done * bs) / (now_s() - t0) / 1e9;
}

/* GetPrefix of CHAIN keys at random in [lo, hi) for b->seconds; GB/s.
 * With depth 1 and lat, records each request's latency. */
static double rpc_reads(struct cli *c, struct bench *b, uint64_t ns,
                        uint64_t lo, uint64_t hi, unsigned depth,
                        struct lat *lat)
{
    double sent[DEPTH_MAX + 1], t0 = now_s();
    unsigned inflight = 0;
    uint64_t bytes = 0, id;

    while (inflight || now_s() - t0 < b->seconds) {
        while (inflight < depth && now_s() - t0 < b->seconds) {
            send_get_prefix(c, ns, lo + (uint64_t)rand() % (hi - lo - CHAIN));
            sent[c->id % (DEPTH_MAX + 1)] = now_s();
            inflight++;
        }
        if (inflight == 0)
            break;
        bytes += cli_recv(c, &id);
        if (lat)
            lat_add(lat, now_s() - sent[id % (DEPTH_MAX + 1)]);
        inflight--;
    }
    return (double)bytes / (now_s() - t0) / 1e9;
}

/* GetPrefix latency on SSD blocks [1, n/2), depth 1 over Unix, alone and
 * under a Put flood from another connection (keys far above n); in ms:
 * p50 and p99 alone, then under the flood. */
static void rpc_latency(struct bench *b, struct daemon *d, uint32_t bs,
                        uint64_t n, double latq[4])
{
    struct lat alone = { 0 }, flooded = { 0 };
    struct cli c;
    uint64_t ns;
    pid_t flood;

    cli_connect(&c, d, T_UNIX);
    ns = cli_open_ns(&c, bs);
    rpc_reads(&c, b, ns, 1, n / 2, 1, &alone);
    flood = fork();
    if (flood == 0) {
        struct cli f;

        cli_connect(&f, d, T_UNIX);
        double g = rpc_puts(&f, b, cli_open_ns(&f, bs), 10 * n, n, bs,
                            b->seconds + 0.5);
        if (b->flood_only)
            printf("%-6s put flood: %.2f GB/s\n", bs >= (1u << 20) ? "1M" : "256K", g);
        fflush(stdout);
        _exit(0);
    }
    usleep(100000);
    rpc_reads(&c, b, ns, 1, n / 2, 1, &flooded);
    waitpid(flood, NULL, 0);
    cli_close(&c);
    latq[0] = lat_q(&alone, 0.5) * 1e3;
    latq[1] = lat_q(&alone, 0.99) * 1e3;
    latq[2] = lat_q(&flooded, 0.5) * 1e3;
    latq[3] = lat_q(&flooded, 0.99) * 1e3;
    free(alone.v);
    free(flooded.v);
}

/* CPU seconds used so far by this process, plus by pid if pid > 0 (the
 * daemon, from /proc/PID/stat). */
static double cpu_now(pid_t pid)
{
    struct rusage ru;
    double t;

    getrusage(RUSAGE_SELF, &ru);
    t = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
        (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    if (pid > 0) {
        char path[64], buf[1024], *p;
        unsigned long ut = 0, st = 0;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        f = fopen(path, "r");
        if (f && fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) &&
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                   &ut, &st) == 2)
            t += (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
        if (f)
            fclose(f);
    }
    return t;
}

/* Run one measured phase: its GB/s into v, its CPU seconds per GB into c. */
#define MEASURE(v, c, pid, expr) do {                                        \
        double c0_ = cpu_now(pid), t0_ = now_s(), g_ = (expr);               \
        double gb_ = g_ * (now_s() - t0_);                                   \
        (v) = g_;                                                            \
        (c) = gb_ > 0 ? (cpu_now(pid) - c0_) / gb_ : 0;                      \
    } while (0)

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One block size: engine, Unix and TCP phases interleaved round by round
 * so that a noisy neighbour hurts all three alike; medians are printed. */
static void bench_size(struct bench *b, uint32_t bs)
{
    static const char *const ops[3] = { "put", "get_prefix dram",
                                        "get_prefix ssd" };
    const char *name = bs >= (1u << 20) ? "1M" : "256K";
    double v[3][1 + T_COUNT][ROUNDS_MAX], med[3][1 + T_COUNT];
    double cpu[3][1 + T_COUNT][ROUNDS_MAX], cmed[3][1 + T_COUNT];
    double mem[2][2] = { { 0 } }, latq[4];
    uint64_t per = b->wbytes / bs / (uint64_t)b->rounds / CHAIN * CHAIN;
    uint64_t rn = 0, ns = 0, h0, m0, h1, m1, h2, m2;
    struct engine e;
    struct daemon d;
    struct cli c[T_COUNT];

    b->bs = bs;
    engine_open(b, bs, &e);
    daemon_start(b, bs, &d);
    for (int t = 0; t < b->ntrans; t++) {
        cli_connect(&c[t], &d, t);
        ns = cli_open_ns(&c[t], bs);
    }
    if (b->ntrans > T_SHM)
        printf("%-6s shared region on %s pages\n", bs >= (1u << 20) ? "1M" : "256K",
               c[T_SHM].sh.pages);
    for (int r = 0; r < b->rounds; r++) {
        MEASURE(v[0][0][r], cpu[0][0][r], 0, engine_put(b, &e, bs, per));
        for (int t = 0; t < b->ntrans; t++) {
            MEASURE(v[0][1 + t][r], cpu[0][1 + t][r], d.pid,
                    rpc_puts(&c[t], b, ns, rn + 1, per, bs, 0));
            rn += per;
        }
    }
    /* DRAM set: the newest quarter of memory; SSD set: the oldest blocks,
     * as many as half of what the engine holds, on both sides */
    for (int r = 0; r < b->rounds; r++) {
        double f;

        MEASURE(v[1][0][r], cpu[1][0][r], 0,
                engine_reads(b, e.st, e.ns, e.n - b->memory / 4 / bs, e.n + 1,
                             &f));
        mem[0][0] += f / b->rounds;
        MEASURE(v[2][0][r], cpu[2][0][r], 0,
                engine_reads(b, e.st, e.ns, 1, e.n / 2, &f));
        mem[0][1] += f / b->rounds;
        for (int t = 0; t < b->ntrans; t++) {
            cli_hits(&c[t], &h0, &m0);
            MEASURE(v[1][1 + t][r], cpu[1][1 + t][r], d.pid,
                    rpc_reads(&c[t], b, ns, rn - b->memory / 4 / bs, rn + 1,
                              b->depth, NULL));
            cli_hits(&c[t], &h1, &m1);
            MEASURE(v[2][1 + t][r], cpu[2][1 + t][r], d.pid,
                    rpc_reads(&c[t], b, ns, 1, e.n / 2, b->depth, NULL));
            cli_hits(&c[t], &h2, &m2);
            mem[1][0] += h1 > h0 ? (double)(m1 - m0) / (double)(h1 - h0) /
                                   (b->ntrans * b->rounds) : 0;
            mem[1][1] += h2 > h1 ? (double)(m2 - m1) / (double)(h2 - h1) /
                                   (b->ntrans * b->rounds) : 0;
        }
    }
    for (int t = 0; t < b->ntrans; t++)
        cli_close(&c[t]);
    rpc_latency(b, &d, bs, rn, latq);
    daemon_stop(b, &d);
    engine_close(&e);
    for (int o = 0; o < 3; o++) {
        for (int p = 0; p < 1 + b->ntrans; p++) {
            med[o][p] = median(v[o][p], b->rounds);
            cmed[o][p] = median(cpu[o][p], b->rounds);
        }
    }
    for (int o = 0; o < 3; o++)
        printf("%-6s %-18s %12.2f %11.2f (%3.0f%%) %11.2f (%3.0f%%) %11.2f (%3.0f%%)\n",
               name, ops[o], med[o][0], med[o][1], 100 * med[o][1] / med[o][0],
               med[o][2], 100 * med[o][2] / med[o][0],
               b->ntrans > T_SHM ? med[o][3] : 0,
               b->ntrans > T_SHM ? 100 * med[o][3] / med[o][0] : 0);
    for (int o = 0; o < 3; o++)
        printf("%-6s %-18s %12.3f %18.3f %18.3f %18.3f   CPU s per GB\n", name, ops[o],
               cmed[o][0], cmed[o][1], cmed[o][2], b->ntrans > T_SHM ? cmed[o][3] : 0);
    printf("%-6s DRAM share of hits: engine dram set %.0f%%, ssd set %.0f%%;"
           " kvcached dram set %.0f%%, ssd set %.0f%%\n", name,
           100 * mem[0][0], 100 * mem[0][1], 100 * mem[1][0], 100 * mem[1][1]);
    printf("%-6s get_prefix ssd latency, depth 1 over unix: alone p50 %.2f ms"
           " p99 %.2f ms; under a put flood p50 %.2f ms p99 %.2f ms\n", name,
           latq[0], latq[1], latq[2], latq[3]);
    fflush(stdout);
}

/* --flood: fill a fresh kvcached over Unix, then GetPrefix latency on its
 * SSD blocks alone and under a Put flood. */
static void bench_flood(struct bench *b, uint32_t bs)
{
    const char *name = bs >= (1u << 20) ? "1M" : "256K";
    uint64_t n = b->wbytes / bs / CHAIN * CHAIN;
    double latq[4];
    struct daemon d;
    struct cli c;

    b->bs = bs;
    daemon_start(b, bs, &d);
    cli_connect(&c, &d, T_UNIX);
    rpc_puts(&c, b, cli_open_ns(&c, bs), 1, n, bs, 0);
    cli_close(&c);
    rpc_latency(b, &d, bs, n, latq);
    daemon_stop(b, &d);
    printf("%-6s get_prefix ssd latency, depth 1 over unix: alone p50 %.2f ms"
           " p99 %.2f ms; under a put flood p50 %.2f ms p99 %.2f ms"
           " (p99 %.2fx alone)\n", name, latq[0], latq[1], latq[2], latq[3],
           latq[1] > 0 ? latq[3] / latq[1] : 0);
    fflush(stdout);
}

static void usage(void)
{
    printf("usage: kc_rpcbench [--smoke] [--seconds S] [--depth N] [--rounds R]"
           " [--dir DIR] [--kvcached PATH] [--shm MODE] [--flood]\n");
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        { "smoke", no_argument, NULL, 'q' },
        { "seconds", required_argument, NULL, 't' },
        { "depth", required_argument, NULL, 'd' },
        { "rounds", required_argument, NULL, 'r' },
        { "dir", required_argument, NULL, 'o' },
        { "kvcached", required_argument, NULL, 'k' },
        { "shm", required_argument, NULL, 's' },
        { "flood", no_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct bench b = { KVCACHED_PATH, NULL, 1.0, 4, 256u << 20,
                       4ull << 30, 32u << 20, 768u << 20, 0, false, 3, NULL,
                       "auto", T_COUNT };
    static const uint32_t sizes[] = { 256u << 10, 1u << 20 };
    bool smoke = false;
    int ch;

    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (ch) {
        case 'q': smoke = true; break;
        case 't': b.seconds = atof(optarg); break;
        case 'd': b.depth = (unsigned)atoi(optarg); break;
        case 'r': b.rounds = atoi(optarg); break;
        case 'o': b.dir = optarg; break;
        case 'k': b.kvcached = optarg; break;
        case 's': b.shm = optarg; break;
        case 'f': b.flood_only = true; break;
        default: usage(); return ch == 'h' ? 0 : 2;
        }
    }
    b.ntrans = strcmp(b.shm, "off") ? T_COUNT : T_SHM;
    if (b.depth < 1 || b.depth > DEPTH_MAX)
        b.depth = 4;
    if (b.rounds < 1 || b.rounds > ROUNDS_MAX)
        b.rounds = 3;
    if (smoke) {
        b.seconds = 0.1;
        b.memory = 16u << 20;
        b.slab = 4u << 20;
        b.device = 256u << 20;
        b.wbytes = 32u << 20;
        b.one_size = true;
        b.rounds = 1;
    }
    char dirbuf[64], path[600];

    if (b.dir == NULL) {   /* one folder per run: runs side by side are fine */
        snprintf(dirbuf, sizeof(dirbuf), "./var/rpcbench.%d", (int)getpid());
        b.dir = dirbuf;
    }
    signal(SIGPIPE, SIG_IGN);
    srand(1);
    mkdir("./var", 0700);
    if (mkdir(b.dir, 0700) < 0 && errno != EEXIST)
        die(b.dir);
    b.block = malloc(1u << 20);
    if (b.block == NULL)
        die("malloc");
    for (size_t i = 0; i < (1u << 20); i++)
        b.block[i] = (uint8_t)rand();
    printf("kc_rpcbench: device %llu MiB, slabs %u MiB, memory %llu MiB, "
           "%llu MiB put per path, GetPrefix of %d blocks, depth %u, "
           "%.1f s per read phase, %d interleaved rounds (medians)\n",
           (unsigned long long)(b.device >> 20), b.slab >> 20,
           (unsigned long long)(b.memory >> 20),
           (unsigned long long)(b.wbytes >> 20), CHAIN, b.depth, b.seconds,
           b.rounds);
    printf("engine: in this process, values copied to caller buffers (dst);"
           " rpc: through kvcached, data received by the client\n"
           "CPU s per GB: engine = this process; rpc = daemon + client"
           " (what the protocol costs, less noisy than GB/s on a shared box)\n");
    printf("shm: puts written into the staging area and committed by offset,"
           " gets by reference copied once out of the region and released\n");
    printf("kvcached --shm %s\n", b.shm);
    printf("%-6s %-18s %12s %18s %18s %18s\n", "block", "op", "engine GB/s",
           "unix GB/s (%eng)", "tcp GB/s (%eng)", "shm GB/s (%eng)");
    for (size_t s = 0; s < (b.one_size ? 1 : sizeof(sizes) / sizeof(sizes[0]));
         s++)
        (b.flood_only ? bench_flood : bench_size)(&b, sizes[s]);
    free(b.block);
    snprintf(path, sizeof(path), "%s/kvcached.log", b.dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/ports", b.dir);
    unlink(path);
    rmdir(b.dir);
    return 0;
}
