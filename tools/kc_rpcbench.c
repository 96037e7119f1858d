/*
 * kc_rpcbench.c - what the RPC costs: Put and GetPrefix throughput through
 * kvcached (Unix socket and TCP) beside the storage engine called directly
 * in this process, same geometry, same run. Also GetPrefix latency alone
 * and under a Put flood (reads first).
 *
 *   kc_rpcbench [--smoke] [--seconds S] [--depth N] [--dir DIR]
 *               [--kvcached PATH]
 *
 * Files go to DIR (default ./var/rpcbench.PID, removed at the end).
 *
 * For each block size (256 KiB, 1 MiB): the engine puts W bytes into its
 * own store, then GetPrefix of 4-block chains is timed on the newest blocks
 * (DRAM-resident) and on the oldest (SSD-resident, their memory slabs long
 * reused). The same is done through a fresh kvcached: Put over Unix then
 * over TCP (W each), then the reads over each transport.
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kc_frame.h"
#include "kvcache.pb-c.h"
#include "slab/kc_store.h"

#ifndef KVCACHED_PATH
#define KVCACHED_PATH "kvcached"
#endif

#define CHAIN 4          /* blocks per GetPrefix and per Put batch */
#define DEPTH_MAX 64

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
    uint8_t *block;       /* one block of random bytes, reused */
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

/* The engine's figures: put W bytes, then the two read sets. */
static void engine_run(struct bench *b, uint32_t bs, double out[3],
                       double mem[2])
{
    struct store_config cfg;
    struct store *st;
    char path[512], err[256];
    uint64_t n = b->wbytes / bs, ns = 42;
    struct store_put_item items[CHAIN];
    double t0;

    snprintf(path, sizeof(path), "%s/engine.store", b->dir);
    store_config_default(&cfg);
    cfg.path = path;
    cfg.device_size = b->device;
    cfg.slab_size = b->slab;
    cfg.memory = b->memory;
    cfg.min_item_size = bs;
    cfg.fresh = true;
    if (store_open(&cfg, &st, err, sizeof(err)) < 0) {
        fprintf(stderr, "engine: %s\n", err);
        exit(1);
    }
    store_ns_open(st, ns, bs, "bench", 5);
    t0 = now_s();
    for (uint64_t i = 0; i < n; i += CHAIN) {
        for (int j = 0; j < CHAIN; j++) {
            memset(&items[j], 0, sizeof(items[j]));
            items[j].key = key_of(i + (uint64_t)j + 1);
            items[j].chain_pos = (uint32_t)j;
            items[j].len = bs;
            items[j].data = b->block;
        }
        store_put(st, ns, items, CHAIN);
    }
    out[0] = (double)(n * bs) / (now_s() - t0) / 1e9;
    /* newest quarter of memory: DRAM; oldest half of what was written: SSD */
    out[1] = engine_reads(b, st, ns, n - b->memory / 4 / bs, n + 1, &mem[0]);
    out[2] = engine_reads(b, st, ns, 1, n / 2, &mem[1]);
    store_close(st);
    unlink(path);
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
              "-p", "0", "--port-file", pf, "--fresh", (char *)NULL);
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
    uint8_t *rbuf;        /* receive buffer for data sections */
    size_t rcap;
};

static void cli_connect(struct cli *c, struct daemon *d, bool tcp)
{
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
}

static void cli_close(struct cli *c)
{
    close(c->fd);
    free(c->rbuf);
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
    kvcache__response__free_unpacked(r, NULL);
    if (h.data_len > c->rcap) {
        c->rcap = h.data_len;
        c->rbuf = realloc(c->rbuf, c->rcap);
        if (c->rbuf == NULL)
            die("realloc");
    }
    recv_all(c->fd, c->rbuf, h.data_len);
    return h.data_len;
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

/* Through kvcached: out[t][0..2] = put, dram, ssd for t = unix, tcp;
 * lat[0..1] = p50/p99 alone, lat[2..3] = under a Put flood (ms). */
static void rpc_run(struct bench *b, uint32_t bs, double out[2][3],
                    double latq[4], double mem[2])
{
    uint64_t h0, m0, h1, m1, h2, m2;
    struct daemon d;
    struct cli c;
    uint64_t n = b->wbytes / bs, ns, dram_lo;
    struct lat alone = { 0 }, flooded = { 0 };
    pid_t flood;

    daemon_start(b, bs, &d);
    for (int t = 0; t < 2; t++) {
        cli_connect(&c, &d, t == 1);
        ns = cli_open_ns(&c, bs);
        out[t][0] = rpc_puts(&c, b, ns, 1 + (uint64_t)t * n, n, bs, 0);
        cli_close(&c);
    }
    /* both transports read the same sets: the newest blocks (TCP's last
     * quarter of memory) and the oldest (the first half Unix wrote) */
    dram_lo = 2 * n - b->memory / 4 / bs;
    for (int t = 0; t < 2; t++) {
        cli_connect(&c, &d, t == 1);
        ns = cli_open_ns(&c, bs);
        cli_hits(&c, &h0, &m0);
        out[t][1] = rpc_reads(&c, b, ns, dram_lo, 2 * n + 1, b->depth, NULL);
        cli_hits(&c, &h1, &m1);
        out[t][2] = rpc_reads(&c, b, ns, 1, n / 2, b->depth, NULL);
        cli_hits(&c, &h2, &m2);
        if (t == 0) {
            mem[0] = h1 > h0 ? (double)(m1 - m0) / (double)(h1 - h0) : 0;
            mem[1] = h2 > h1 ? (double)(m2 - m1) / (double)(h2 - h1) : 0;
        }
        cli_close(&c);
    }
    /* reads first: GetPrefix latency on SSD blocks, alone then under Puts */
    cli_connect(&c, &d, false);
    ns = cli_open_ns(&c, bs);
    rpc_reads(&c, b, ns, 1, n / 2, 1, &alone);
    flood = fork();
    if (flood == 0) {
        struct cli f;

        cli_connect(&f, &d, false);
        rpc_puts(&f, b, cli_open_ns(&f, bs), 10 * n, n, bs, b->seconds + 0.5);
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
    daemon_stop(b, &d);
}

static void usage(void)
{
    printf("usage: kc_rpcbench [--smoke] [--seconds S] [--depth N] [--dir DIR]"
           " [--kvcached PATH]\n");
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        { "smoke", no_argument, NULL, 'q' },
        { "seconds", required_argument, NULL, 't' },
        { "depth", required_argument, NULL, 'd' },
        { "dir", required_argument, NULL, 'o' },
        { "kvcached", required_argument, NULL, 'k' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct bench b = { KVCACHED_PATH, NULL, 2.0, 4, 256u << 20,
                       4ull << 30, 32u << 20, 768u << 20, 0, false, NULL };
    static const uint32_t sizes[] = { 256u << 10, 1u << 20 };
    bool smoke = false;
    int ch;

    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (ch) {
        case 'q': smoke = true; break;
        case 't': b.seconds = atof(optarg); break;
        case 'd': b.depth = (unsigned)atoi(optarg); break;
        case 'o': b.dir = optarg; break;
        case 'k': b.kvcached = optarg; break;
        default: usage(); return ch == 'h' ? 0 : 2;
        }
    }
    if (b.depth < 1 || b.depth > DEPTH_MAX)
        b.depth = 4;
    if (smoke) {
        b.seconds = 0.1;
        b.memory = 16u << 20;
        b.slab = 4u << 20;
        b.device = 256u << 20;
        b.wbytes = 32u << 20;
        b.one_size = true;
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
           "%llu MiB written per put phase, GetPrefix of %d blocks, depth %u, "
           "%.1f s per read phase\n", (unsigned long long)(b.device >> 20),
           b.slab >> 20, (unsigned long long)(b.memory >> 20),
           (unsigned long long)(b.wbytes >> 20), CHAIN, b.depth, b.seconds);
    printf("engine: in this process, values copied to caller buffers (dst);"
           " rpc: through kvcached, data received by the client\n");
    printf("%-6s %-18s %12s %18s %18s\n", "block", "op", "engine GB/s",
           "unix GB/s (%eng)", "tcp GB/s (%eng)");
    for (size_t s = 0; s < (b.one_size ? 1 : sizeof(sizes) / sizeof(sizes[0]));
         s++) {
        static const char *const ops[3] = { "put", "get_prefix dram",
                                            "get_prefix ssd" };
        double eng[3], mem[2], rpc[2][3], latq[4], rmem[2];
        uint32_t bs = sizes[s];

        b.bs = bs;
        engine_run(&b, bs, eng, mem);
        rpc_run(&b, bs, rpc, latq, rmem);
        for (int o = 0; o < 3; o++)
            printf("%-6s %-18s %12.2f %11.2f (%3.0f%%) %11.2f (%3.0f%%)\n",
                   bs >= (1u << 20) ? "1M" : "256K", ops[o], eng[o], rpc[0][o],
                   100 * rpc[0][o] / eng[o], rpc[1][o], 100 * rpc[1][o] / eng[o]);
        printf("%-6s DRAM share of hits: engine dram set %.0f%%, ssd set %.0f%%;"
               " kvcached dram set %.0f%%, ssd set %.0f%%\n",
               bs >= (1u << 20) ? "1M" : "256K", 100 * mem[0], 100 * mem[1],
               100 * rmem[0], 100 * rmem[1]);
        printf("%-6s get_prefix ssd latency, depth 1 over unix: alone p50 "
               "%.2f ms p99 %.2f ms; under a put flood p50 %.2f ms p99 %.2f ms\n",
               bs >= (1u << 20) ? "1M" : "256K", latq[0], latq[1], latq[2],
               latq[3]);
        fflush(stdout);
    }
    free(b.block);
    snprintf(path, sizeof(path), "%s/kvcached.log", b.dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/ports", b.dir);
    unlink(path);
    rmdir(b.dir);
    return 0;
}
