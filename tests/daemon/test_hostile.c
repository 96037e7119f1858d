/*
 * test_hostile.c - one case per defect of hostile or careless clients,
 * each run as its own meson test: `test_hostile KVCACHED CASE`. Every case
 * starts the real daemon on a temporary folder and stops it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client/kvcache.h"
#include "kc_tclient.h"

static struct td d;

/* Seconds on the monotonic clock. */
static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One request, its response checked to decode. */
static void roundtrip(struct tc *c, Kvcache__Request *q, struct tc_resp *rs)
{
    tc_send(c, q, NULL, 0);
    CHECK(tc_recv(c, rs) == 0);
}

/* ListNamespaces with more than 8 namespaces: the answer's descriptors
 * were read from a freed array once the entry array grew. */
static void list_namespaces_over_8(void)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__ListNamespacesRequest lq = KVCACHE__LIST_NAMESPACES_REQUEST__INIT;
    struct tc c;
    struct tc_resp rs;
    uint64_t ids[40];
    char model[40][32];
    size_t seen = 0;

    td_start(&d, NULL);
    tc_connect_unix(&c, d.sock);
    for (int i = 0; i < 40; i++) {
        snprintf(model[i], sizeof(model[i]), "model-%02d-of-forty", i);
        ids[i] = tc_open_ns(&c, model[i], 16384);
    }
    q.op_case = KVCACHE__REQUEST__OP_LIST_NAMESPACES;
    q.list_namespaces = &lq;
    roundtrip(&c, &q, &rs);
    CHECK(rs.r->code == 0 && rs.r->list_namespaces->n_namespaces == 40);
    for (size_t j = 0; j < 40; j++) {
        Kvcache__NamespaceInfo *ni = rs.r->list_namespaces->namespaces[j];

        for (int i = 0; i < 40; i++) {
            if (ni->ns != ids[i])
                continue;
            CHECK(ni->desc != NULL);
            CHECK(strcmp(ni->desc->model, model[i]) == 0);
            CHECK(strcmp(ni->desc->dtype, "bf16") == 0);
            seen++;
        }
    }
    CHECK(seen == 40);
    tc_resp_free(&rs);
    tc_close(&c);
    CHECK(td_stop(&d) == 0);
}

/* Run kvcached with -s on an existing regular file: it must exit non-zero,
 * say why, and leave the file alone. */
static void socket_path_not_a_socket(void)
{
    char store[300], cmd[1200];
    const char *content = "not a socket\n";
    char buf[64] = { 0 };
    int fd, st;
    pid_t pid;

    fd = open(d.sock, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0 && write(fd, content, strlen(content)) ==
          (ssize_t)strlen(content));
    close(fd);
    snprintf(store, sizeof(store), "%s/kc.store", d.dir);
    pid = fork();
    if (pid == 0) {
        int lfd = open(d.log, O_WRONLY | O_CREAT | O_APPEND, 0600);

        dup2(lfd, 2);
        dup2(lfd, 1);
        execl(td_binary_path(), td_binary_path(), "-D", store, "-S", "64m",
              "--slab-size", "1m", "-m", "4", "-p", "-1", "-s", d.sock,
              (char *)NULL);
        _exit(127);
    }
    CHECK(pid > 0);
    for (double t0 = now_s(); waitpid(pid, &st, WNOHANG) != pid;) {
        if (now_s() - t0 > 20) {        /* it started serving: the bug */
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            CHECK(!"kvcached started on a regular file's path");
        }
        usleep(20000);
    }
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != 127);
    fd = open(d.sock, O_RDONLY);
    CHECK(fd >= 0 && read(fd, buf, sizeof(buf) - 1) > 0);
    close(fd);
    CHECK(strcmp(buf, content) == 0);
    snprintf(cmd, sizeof(cmd), "grep -q 'is not a socket' '%s'", d.log);
    CHECK(system(cmd) == 0);
}

/* OpenNamespace with a NUL inside the model: refused, not cut short into
 * the namespace of the model's first part. */
static void nul_in_model(void)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__OpenNamespaceRequest o = KVCACHE__OPEN_NAMESPACE_REQUEST__INIT;
    Kvcache__NamespaceDesc nd = KVCACHE__NAMESPACE_DESC__INIT;
    struct kc_frame_hdr fh = { KC_FRAME_VERSION, 0, 0, 0 };
    uint8_t buf[512], *x;
    struct tc c;
    struct tc_resp rs;
    size_t len;

    td_start(&d, NULL);
    tc_connect_unix(&c, d.sock);
    nd.model = "llama@evil";
    nd.layer_end = 32;
    nd.tokens_per_block = 16;
    nd.dtype = "bf16";
    nd.kv_heads = 8;
    nd.head_dim = 128;
    nd.block_bytes = 16384;
    o.desc = &nd;
    q.id = 5;
    q.op_case = KVCACHE__REQUEST__OP_OPEN_NAMESPACE;
    q.open_namespace = &o;
    len = kvcache__request__pack(&q, buf + KC_FRAME_HDR_LEN);
    x = memchr(buf + KC_FRAME_HDR_LEN, '@', len);
    CHECK(x != NULL);
    *x = '\0';                      /* model "llama\0evil" on the wire */
    fh.pb_len = (uint32_t)len;
    kc_frame_encode(buf, &fh);
    CHECK(tc_send_raw(&c, buf, KC_FRAME_HDR_LEN + len) == 0);
    CHECK(tc_recv(&c, &rs) == 0);
    CHECK(rs.r->id == 5 && rs.r->code == KVCACHE__CODE__BAD_REQUEST);
    tc_resp_free(&rs);
    /* the connection stays usable and "llama" alone is a fine model */
    CHECK(tc_open_ns(&c, "llama", 16384) != 0);
    tc_close(&c);
    CHECK(td_stop(&d) == 0);
}

/* One Put larger than the whole store: its first blocks are evicted by its
 * last ones, and those must not be answered OK. Every OK is readable. */
static void put_overflow_self_evicted(void)
{
    const uint32_t blk = 256u << 10;
    const size_t n = 400;             /* 100 MiB into a 64 MiB store */
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__PutRequest p = KVCACHE__PUT_REQUEST__INIT;
    Kvcache__GetRequest g = KVCACHE__GET_REQUEST__INIT;
    Kvcache__PutItem *items = calloc(n, sizeof(*items));
    Kvcache__PutItem **ip = calloc(n, sizeof(*ip));
    uint8_t *keys = tc_keys(1, n), *data = malloc(n * blk);
    uint8_t *want = malloc(blk);
    size_t ok = 0, nospace = 0, off = 0, gone_later = 0;
    uint64_t ns;
    struct tc c;
    struct tc_resp rs, gr;

    CHECK(items && ip && data && want);
    td_start(&d, NULL);
    tc_connect_unix(&c, d.sock);
    ns = tc_open_ns(&c, "overflow", blk);
    for (size_t i = 0; i < n; i++) {
        kvcache__put_item__init(&items[i]);
        items[i].key.data = keys + i * KC_KEY_WIRE_LEN;
        items[i].key.len = KC_KEY_WIRE_LEN;
        items[i].chain_pos = (uint32_t)(1 + i);
        items[i].length = blk;
        ip[i] = &items[i];
        tc_fill(data + i * blk, blk, 1 + i);
    }
    p.ns = ns;
    p.n_items = n;
    p.items = ip;
    q.op_case = KVCACHE__REQUEST__OP_PUT;
    q.put = &p;
    tc_send(&c, &q, data, n * blk);
    CHECK(tc_recv(&c, &rs) == 0);
    CHECK(rs.r->code == 0 && rs.r->put->n_status == n);
    g.ns = ns;
    g.keys.data = keys;
    g.keys.len = n * KC_KEY_WIRE_LEN;
    kvcache__request__init(&q);
    q.op_case = KVCACHE__REQUEST__OP_GET;
    q.get = &g;
    roundtrip(&c, &q, &gr);
    CHECK(gr.r->code == 0 && gr.r->get->n_status == n);
    /* memory slabs still unflushed when the answer left may evict the
     * oldest OK items later (a cache evicts): at most -m 4 slabs of 3
     * slots of 260 KiB; every other OK item must still be there */
    for (size_t i = 0; i < n; i++) {
        int ps = rs.r->put->status[i], gs = gr.r->get->status[i];

        if (ps == KVCACHE__CODE__OK) {
            ok++;
            if (gs != KVCACHE__CODE__OK)
                gone_later++;
            CHECK(gs == KVCACHE__CODE__OK || ok == gone_later);
        } else {
            CHECK(ps == KVCACHE__CODE__NO_SPACE);
            nospace++;
        }
        if (gs == KVCACHE__CODE__OK) {
            tc_fill(want, blk, 1 + i);
            CHECK(memcmp(gr.data + off, want, blk) == 0);
            off += blk;
        }
    }
    printf("put of %zu blocks: %zu OK, %zu NO_SPACE, %zu of the OK evicted "
           "after the answer\n", n, ok, nospace, gone_later);
    CHECK(ok > 0 && nospace > 0 && gone_later <= 12);
    tc_resp_free(&rs);
    tc_resp_free(&gr);
    tc_close(&c);
    CHECK(td_stop(&d) == 0);
    free(items);
    free(ip);
    free(keys);
    free(data);
    free(want);
}

/* A TCP connection to 127.0.0.1:port, or -1. */
static int tcp_connect(int port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* GET /health on the metrics port; true if "200" came back within 5 s. */
static bool metrics_answers(int port)
{
    static const char req[] = "GET /health HTTP/1.0\r\n\r\n";
    char buf[256] = { 0 };
    struct pollfd pfd;
    int fd = tcp_connect(port);
    bool ok = false;

    if (fd < 0)
        return false;
    pfd.fd = fd;
    pfd.events = POLLIN;
    if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) == sizeof(req) - 1 &&
        poll(&pfd, 1, 5000) == 1 && recv(fd, buf, sizeof(buf) - 1, 0) > 0)
        ok = strstr(buf, " 200 ") != NULL;
    close(fd);
    return ok;
}

/* 64 silent connections held every metrics slot for good; they must be
 * closed at their deadline (10 s) and scrapes must work again. */
static void metrics_idle_timeout(void)
{
    int fds[64];
    double t0;
    bool back = false;

    td_start(&d, NULL);
    for (int i = 0; i < 64; i++) {
        fds[i] = tcp_connect(d.mport);
        CHECK(fds[i] >= 0);
        CHECK(send(fds[i], "G", 1, MSG_NOSIGNAL) == 1);  /* and no more */
    }
    usleep(200000);
    CHECK(!metrics_answers(d.mport));        /* every slot is taken */
    for (t0 = now_s(); now_s() - t0 < 30 && !back;) {
        sleep(1);
        back = metrics_answers(d.mport);
    }
    CHECK(back);
    printf("metrics answered again after %.1f s\n", now_s() - t0);
    for (int i = 0; i < 64; i++) {
        struct pollfd pfd = { .fd = fds[i], .events = POLLIN };
        char ch;

        /* closed: those accepted a little later go at the next tick */
        CHECK(poll(&pfd, 1, 5000) == 1 && recv(fds[i], &ch, 1, 0) == 0);
        close(fds[i]);
    }
    CHECK(td_stop(&d) == 0);
}

/* Send a Put header for n blocks of len bytes and the first `some` data
 * bytes, no more: its first block's slot stays reserved. */
static void put_head_only(struct tc *c, uint64_t ns, uint64_t base, size_t n,
                          uint32_t len, size_t some)
{
    uint8_t *zero = calloc(1, some + 1);

    CHECK(zero != NULL);
    tc_send_put_head(c, ns, base, n, len, (uint64_t)n * len);
    CHECK(tc_send_raw(c, zero, some) == 0);
    free(zero);
}

/* Three clients that reserve slots in both memory slabs and stop (one
 * trickles a byte every 300 ms) held every other client's puts for as
 * long as they liked. With
 * --put-timeout 2 they are closed and a good client's 4 MiB put goes
 * through in time. */
static void slow_put_stalls_others(void)
{
    static const char *const extra[] = { "-m", "2", "--put-timeout", "2",
                                         NULL };
    const uint32_t blk = 65536;
    struct tc bad[3], good;
    uint64_t ns;
    double t0, took;

    td_start(&d, extra);
    tc_connect_unix(&good, d.sock);
    ns = tc_open_ns(&good, "stall", blk);
    /* -m 2: two memory slabs; a reservation in each, the good client
     * filling the first in between */
    for (int i = 0; i < 3; i++) {
        tc_connect_unix(&bad[i], d.sock);
        put_head_only(&bad[i], ns, 100000 + 1000 * (uint64_t)i, 16, blk, 10);
        usleep(100000);
        if (i == 0)
            tc_put_blocks(&good, ns, 1000, 16, blk);
    }
    t0 = now_s();
    /* the good client's put needs memory slabs flushed: one request of
     * 4 MiB, twice the memory, sent while a trickler keeps sending */
    {
        pid_t pid = fork();

        if (pid == 0) {
            for (int k = 0; k < 40; k++) {
                if (send(bad[0].fd, "x", 1, MSG_NOSIGNAL) != 1)
                    _exit(0);
                usleep(300000);
            }
            _exit(0);
        }
        CHECK(pid > 0);
        tc_put_blocks(&good, ns, 1, 64, blk);
        took = now_s() - t0;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    printf("good put of 4 MiB took %.2f s beside 3 stalled puts\n", took);
    CHECK(took < 10.0);
    CHECK(tc_get_prefix_check(&good, ns, 1, 64, blk) > 0);
    for (int i = 0; i < 3; i++) {
        struct tc_resp rs;

        CHECK(tc_recv(&bad[i], &rs) == -1);     /* closed by the daemon */
        tc_close(&bad[i]);
    }
    tc_close(&good);
    CHECK(td_stop(&d) == 0);
}

/* One metric of GET /metrics, or -1. */
static long long metric(int port, const char *name)
{
    static const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
    char *buf = malloc(1 << 20), key[128], *p;
    size_t len = 0;
    long long v = -1;
    int fd = tcp_connect(port);
    ssize_t n;

    CHECK(fd >= 0 && buf != NULL);
    CHECK(send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) == sizeof(req) - 1);
    while (len < (1 << 20) - 1 && (n = recv(fd, buf + len, (1 << 20) - 1 - len,
                                            0)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    close(fd);
    snprintf(key, sizeof(key), "\nkvcached_%s ", name);
    if ((p = strstr(buf, key)) != NULL)
        v = atoll(p + strlen(key));
    free(buf);
    return v;
}

/* Resident memory of the daemon in KiB. */
static long rss_kib(void)
{
    char path[64], line[256];
    long kib = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)d.pid);
    f = fopen(path, "r");
    CHECK(f != NULL);
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

/* -m 2 and 64 KiB blocks: keys 1..n stored, all but the last ~30 pushed
 * out of the memory slabs onto the SSD. */
static uint64_t fill_to_ssd(struct tc *c, size_t n)
{
    uint64_t ns = tc_open_ns(c, "budget", 65536);

    for (size_t i = 0; i < n; i += 50)
        tc_put_blocks(c, ns, 1 + i, n - i < 50 ? n - i : 50, 65536);
    return ns;
}

/* A get naming one SSD block 1,024 times held 1,024 read buffers; it
 * must read the block once and send it 1,024 times. */
static void dup_keys_read_once(void)
{
    static const char *const extra[] = { "-m", "2", NULL };
    const size_t copies = 1024;
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__GetRequest g = KVCACHE__GET_REQUEST__INIT;
    uint8_t *keys = malloc(copies * KC_KEY_WIRE_LEN), *want = malloc(65536);
    struct tc c;
    struct tc_resp rs;
    uint64_t ns;
    long long peak;

    CHECK(keys && want);
    td_start(&d, extra);
    tc_connect_unix(&c, d.sock);
    ns = fill_to_ssd(&c, 300);
    for (size_t i = 0; i < copies; i++)
        kc_key_pack(keys + i * KC_KEY_WIRE_LEN, 1, ~1ull);
    g.ns = ns;
    g.keys.data = keys;
    g.keys.len = copies * KC_KEY_WIRE_LEN;
    q.op_case = KVCACHE__REQUEST__OP_GET;
    q.get = &g;
    roundtrip(&c, &q, &rs);
    CHECK(rs.r->code == 0 && rs.r->get->n_status == copies);
    CHECK(rs.data_len == copies * 65536);
    tc_fill(want, 65536, 1);
    for (size_t i = 0; i < copies; i++) {
        CHECK(rs.r->get->status[i] == KVCACHE__CODE__OK);
        CHECK(memcmp(rs.data + i * 65536, want, 65536) == 0);
    }
    tc_resp_free(&rs);
    /* GetPrefix with repeats (1 2 1 2 1 2 1 2, then an absent key): the
     * prefix is the 8 keys, each block read once and sent where asked */
    {
        Kvcache__GetPrefixRequest gp = KVCACHE__GET_PREFIX_REQUEST__INIT;

        for (size_t i = 0; i < 9; i++) {
            uint64_t k = i == 8 ? 999999 : 1 + i % 2;

            kc_key_pack(keys + i * KC_KEY_WIRE_LEN, k, ~k);
        }
        kvcache__request__init(&q);
        gp.ns = ns;
        gp.keys.data = keys;
        gp.keys.len = 9 * KC_KEY_WIRE_LEN;
        q.op_case = KVCACHE__REQUEST__OP_GET_PREFIX;
        q.get_prefix = &gp;
        roundtrip(&c, &q, &rs);
        CHECK(rs.r->code == 0 && rs.r->get_prefix->found == 8);
        CHECK(rs.data_len == 8 * 65536);
        for (size_t i = 0; i < 8; i++) {
            tc_fill(want, 65536, 1 + i % 2);
            CHECK(memcmp(rs.data + i * 65536, want, 65536) == 0);
        }
        tc_resp_free(&rs);
    }
    peak = metric(d.mport, "inflight_peak_bytes");
    printf("in-flight peak %lld bytes for %zu copies of a 64 KiB block\n",
           peak, copies);
    CHECK(peak > 0 && peak < (1 << 20));
    tc_close(&c);
    CHECK(td_stop(&d) == 0);
    free(keys);
    free(want);
}

/* Gets over --read-inflight wait for room instead of growing the daemon;
 * one get larger than the limit on its own is answered LIMIT. */
static void read_inflight_bounded(void)
{
    static const char *const extra[] = { "-m", "2", "--read-inflight", "16m",
                                         "--conn-inflight", "16m", NULL };
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__GetRequest g = KVCACHE__GET_REQUEST__INIT;
    struct tc c, p[6];
    pid_t pids[6];
    struct tc_resp rs;
    uint8_t *keys;
    uint64_t ns;
    long long peak, waits;

    td_start(&d, extra);
    tc_connect_unix(&c, d.sock);
    ns = fill_to_ssd(&c, 400);
    /* 250 SSD blocks of 68 KiB slots: 16.6 MiB, over 16 MiB alone */
    keys = tc_keys(2, 250);
    g.ns = ns;
    g.keys.data = keys;
    g.keys.len = 250 * KC_KEY_WIRE_LEN;
    q.op_case = KVCACHE__REQUEST__OP_GET;
    q.get = &g;
    roundtrip(&c, &q, &rs);
    CHECK(rs.r->code == KVCACHE__CODE__LIMIT);
    tc_resp_free(&rs);
    free(keys);
    /* six connections, three pipelined GetPrefix of 100 SSD blocks each
     * (6.8 MiB): at most two fit at once */
    keys = tc_keys(2, 100);
    g.keys.len = 100 * KC_KEY_WIRE_LEN;
    g.keys.data = keys;
    for (int i = 0; i < 6; i++) {
        tc_connect_unix(&p[i], d.sock);
        for (int k = 0; k < 3; k++) {
            Kvcache__GetPrefixRequest gp = KVCACHE__GET_PREFIX_REQUEST__INIT;

            kvcache__request__init(&q);
            gp.ns = ns;
            gp.keys = g.keys;
            q.op_case = KVCACHE__REQUEST__OP_GET_PREFIX;
            q.get_prefix = &gp;
            tc_send(&p[i], &q, NULL, 0);
        }
    }
    /* each connection read by its own process, as separate clients do */
    for (int i = 0; i < 6; i++) {
        pid_t pid = fork();

        if (pid == 0) {
            uint8_t *want = malloc(65536);

            for (int k = 0; k < 3; k++) {
                if (tc_recv(&p[i], &rs) != 0 || rs.r->code != 0 ||
                    rs.r->get_prefix->found != 100)
                    _exit(1);
                for (int b = 0; b < 100; b++) {
                    tc_fill(want, 65536, 2 + (uint64_t)b);
                    if (memcmp(rs.data + (size_t)b * 65536, want, 65536))
                        _exit(2);
                }
                tc_resp_free(&rs);
            }
            _exit(0);
        }
        CHECK(pid > 0);
        pids[i] = pid;
    }
    for (int i = 0; i < 6; i++) {
        int st;

        CHECK(waitpid(pids[i], &st, 0) == pids[i]);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        tc_close(&p[i]);
    }
    free(keys);
    peak = metric(d.mport, "inflight_peak_bytes");
    waits = metric(d.mport, "budget_waits_total");
    printf("in-flight peak %lld bytes (limit %d), %lld waits\n", peak,
           16 << 20, waits);
    CHECK(peak > 0 && peak <= (16 << 20));
    CHECK(waits > 0);
    tc_close(&c);
    CHECK(td_stop(&d) == 0);
}

/* 100 connections each declaring a 4 MiB protobuf message and sending 1 KB
 * of it took 4 MiB of buffer each at once. */
static void partial_frames_bounded(void)
{
    struct tc bad[100], c;
    uint8_t junk[1024];
    long before, after;

    td_start(&d, NULL);
    tc_connect_unix(&c, d.sock);
    CHECK(tc_open_ns(&c, "warm", 16384) != 0);
    usleep(100000);
    before = rss_kib();
    memset(junk, 0x0a, sizeof(junk));
    for (int i = 0; i < 100; i++) {
        uint8_t h[KC_FRAME_HDR_LEN];
        struct kc_frame_hdr fh = { KC_FRAME_VERSION, 0, KC_FRAME_PB_MAX - 1,
                                   0 };

        tc_connect_unix(&bad[i], d.sock);
        kc_frame_encode(h, &fh);
        CHECK(tc_send_raw(&bad[i], h, sizeof(h)) == 0);
        CHECK(tc_send_raw(&bad[i], junk, sizeof(junk)) == 0);
    }
    usleep(300000);
    CHECK(tc_open_ns(&c, "still-here", 16384) != 0);   /* and it answers */
    after = rss_kib();
    printf("resident %ld -> %ld KiB with 100 partial 4 MiB frames\n", before,
           after);
    CHECK(after - before < 48 * 1024);
    for (int i = 0; i < 100; i++)
        tc_close(&bad[i]);
    tc_close(&c);
    CHECK(td_stop(&d) == 0);
}

/* The memcache port from the daemon's port file, or -1. */
static int memcache_port(void)
{
    char pf[300];
    int tcp, met, pid, mc = -1;
    FILE *f;

    snprintf(pf, sizeof(pf), "%s/ports", d.dir);
    f = fopen(pf, "r");
    CHECK(f != NULL);
    if (fscanf(f, "tcp=%d metrics=%d pid=%d memcache=%d", &tcp, &met, &pid,
               &mc) != 4)
        mc = -1;
    fclose(f);
    return mc;
}

/* Send all of buf on a blocking fd. */
static void send_all(int fd, const void *buf, size_t len)
{
    CHECK(send(fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len);
}

/*
 * Everything at once against one daemon: 600 half-open connections, 50
 * partial 4 MiB frames, 4 connections pipelining gets of 1,024 copies of
 * an SSD block and never reading, 3 stalled puts, and a memcache line
 * naming one value 1,500 times. Throughout, a well-behaved client's puts
 * and gets must each finish within the stated bound (--put-timeout 2 plus
 * the 1 s tick, with slack: 8 s) and the daemon's resident memory must stay
 * under the bound of daemon/README.md ("Memory: the worst case").
 */
static void hostile_live(void)
{
    static const char *const extra[] = {
        "--read-inflight", "64m", "--conn-inflight", "32m",
        "--put-timeout", "2", "--send-timeout", "3", "--memcache-port", "0",
        "--memcache-max-value", "256k", NULL };
    enum { NHALF = 600, NPART = 50, NDUP = 4, NSLOW = 3 };
    static int half[NHALF], part[NPART];
    struct tc good, dup[NDUP], slow[NSLOW];
    uint8_t *keys = malloc(1024 * KC_KEY_WIRE_LEN);
    char *line = malloc(16 + 1500 * 4);
    uint64_t ns, base = 100000;
    long rss0, rss_max = 0, bound;
    double t0, worst = 0;
    int mc, nconn;

    CHECK(keys && line);
    /* under ASan freed memory sits in a quarantine: keep it small so the
     * resident bound means the same in both builds */
    setenv("ASAN_OPTIONS", "quarantine_size_mb=4:detect_leaks=1", 1);
    td_start(&d, extra);
    tc_connect_unix(&good, d.sock);
    ns = fill_to_ssd(&good, 300);
    usleep(200000);
    rss0 = rss_kib();
    nconn = NHALF + NPART + NDUP + NSLOW + 3;
    /* F (measured) + -m 4 + --read-inflight 64 MiB + conns x 66 KiB, and
     * 16 MiB for the allocator's slack; the index of a 64 MiB device is
     * in F already */
    bound = rss0 + 4 * 1024 + 64 * 1024 + nconn * 66 + 16 * 1024;
    /* half-open and partial-frame connections */
    for (int i = 0; i < NHALF; i++)
        CHECK((half[i] = tcp_connect(d.port)) >= 0);
    for (int i = 0; i < NPART; i++) {
        uint8_t h[KC_FRAME_HDR_LEN + 1024];
        struct kc_frame_hdr fh = { KC_FRAME_VERSION, 0, KC_FRAME_PB_MAX - 1,
                                   0 };

        memset(h, 0x0a, sizeof(h));
        kc_frame_encode(h, &fh);
        CHECK((part[i] = tcp_connect(d.port)) >= 0);
        send_all(part[i], h, sizeof(h));
    }
    /* pipelined duplicate-key gets, never read */
    for (size_t i = 0; i < 1024; i++)
        kc_key_pack(keys + i * KC_KEY_WIRE_LEN, 1 + i % 2, ~(1 + i % 2));
    for (int i = 0; i < NDUP; i++) {
        Kvcache__Request q = KVCACHE__REQUEST__INIT;
        Kvcache__GetRequest g = KVCACHE__GET_REQUEST__INIT;

        tc_connect_unix(&dup[i], d.sock);
        g.ns = ns;
        g.keys.data = keys;
        g.keys.len = 1024 * KC_KEY_WIRE_LEN;
        q.op_case = KVCACHE__REQUEST__OP_GET;
        q.get = &g;
        for (int k = 0; k < 20; k++) {
            q.id = 0;
            tc_send(&dup[i], &q, NULL, 0);
        }
    }
    /* stalled puts */
    for (int i = 0; i < NSLOW; i++) {
        tc_connect_unix(&slow[i], d.sock);
        put_head_only(&slow[i], ns, 900000 + 100 * (uint64_t)i, 8, 65536, 10);
    }
    /* memcache: a 200 KiB value, pushed to the SSD, named 1,500 times */
    mc = memcache_port();
    CHECK(mc > 0);
    {
        int fd = tcp_connect(mc);
        size_t vlen = 200 << 10, n = 0;
        char *v = malloc(vlen + 64), reply[256] = { 0 };
        int len = snprintf(v, 64, "set hot 0 0 %zu\r\n", vlen);

        CHECK(fd >= 0 && v != NULL);
        memset(v + len, 'h', vlen);
        memcpy(v + len + vlen, "\r\n", 2);
        send_all(fd, v, (size_t)len + vlen + 2);
        CHECK(recv(fd, reply, sizeof(reply) - 1, 0) > 0);
        CHECK(strncmp(reply, "STORED", 6) == 0);
        free(v);
        tc_put_blocks(&good, ns, base, 100, 65536);     /* flush it out */
        base += 100;
        n = (size_t)sprintf(line, "get");
        for (int i = 0; i < 1500; i++)
            n += (size_t)sprintf(line + n, " hot");
        n += (size_t)sprintf(line + n, "\r\n");
        send_all(fd, line, n);
        /* the answer: refused (over the budget) or the values; either way
         * the daemon stays in bounds. Not read: a client that sends and
         * never reads. */
        close(fd);
    }
    /* the good client, for 8 s */
    for (t0 = now_s(); now_s() - t0 < 8;) {
        double t1 = now_s(), took;
        long r;

        tc_put_blocks(&good, ns, base, 4, 65536);
        CHECK(tc_get_prefix_check(&good, ns, base, 4, 65536) == 4);
        base += 4;
        took = now_s() - t1;
        if (took > worst)
            worst = took;
        r = rss_kib();
        if (r > rss_max)
            rss_max = r;
        usleep(50000);
    }
    printf("hostile: resident %ld KiB at start, at most %ld KiB (bound %ld "
           "KiB); worst put+get of the good client %.3f s\n", rss0, rss_max,
           bound, worst);
    CHECK(worst < 8.0);
    CHECK(rss_max < bound);
    /* the daemon answers Health, and closed the stalled ones */
    {
        Kvcache__Request q = KVCACHE__REQUEST__INIT;
        Kvcache__HealthRequest hq = KVCACHE__HEALTH_REQUEST__INIT;
        struct tc_resp rs;

        q.op_case = KVCACHE__REQUEST__OP_HEALTH;
        q.health = &hq;
        roundtrip(&good, &q, &rs);
        printf("health: %d %s\n", rs.r->health->state,
               rs.r->health->reason ? rs.r->health->reason : "");
        /* degraded is fair after such a storm (slow reads); down is not */
        CHECK(rs.r->code == 0 && rs.r->health->state !=
              KVCACHE__HEALTH_RESPONSE__STATE__DOWN);
        tc_resp_free(&rs);
    }
    CHECK(metric(d.mport, "put_timeouts_total") >= NSLOW);
    CHECK(metric(d.mport, "send_timeouts_total") >= NDUP);
    for (int i = 0; i < NHALF; i++)
        close(half[i]);
    for (int i = 0; i < NPART; i++)
        close(part[i]);
    for (int i = 0; i < NDUP; i++)
        tc_close(&dup[i]);
    for (int i = 0; i < NSLOW; i++)
        tc_close(&slow[i]);
    tc_close(&good);
    CHECK(td_stop(&d) == 0);
    free(keys);
    free(line);
}

/* Write a token file of the given mode; returns its path (static). */
static const char *token_file(const char *name, const char *tok, mode_t mode)
{
    static char path[2][320];
    static int k;
    char *p = path[k++ % 2];
    int fd;

    snprintf(p, 320, "%s/%s", d.dir, name);
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    CHECK(write(fd, tok, strlen(tok)) == (ssize_t)strlen(tok));
    CHECK(write(fd, "\n", 1) == 1);
    close(fd);
    CHECK(chmod(p, mode) == 0);
    return p;
}

/* Start kvcached on d with exactly these options (plus -D, -s and the
 * port file); returns its pid, or waits for it to exit when it must fail
 * (*status set, pid 0). */
static pid_t spawn(const char *const *opts, int *status)
{
    char store[300], pf[300];
    const char *argv[40];
    int n = 0;
    pid_t pid;

    snprintf(store, sizeof(store), "%s/kc.store", d.dir);
    snprintf(pf, sizeof(pf), "%s/ports", d.dir);
    unlink(pf);
    argv[n++] = td_binary_path();
    argv[n++] = "-D"; argv[n++] = store;
    argv[n++] = "-S"; argv[n++] = "64m";
    argv[n++] = "--slab-size"; argv[n++] = "1m";
    argv[n++] = "-m"; argv[n++] = "4";
    argv[n++] = "-s"; argv[n++] = d.sock;
    argv[n++] = "--port-file"; argv[n++] = pf;
    for (int i = 0; opts[i] && n < 38; i++)
        argv[n++] = opts[i];
    argv[n] = NULL;
    pid = fork();
    if (pid == 0) {
        int lfd = open(d.log, O_WRONLY | O_CREAT | O_APPEND, 0600);

        dup2(lfd, 2);
        dup2(lfd, 1);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    CHECK(pid > 0);
    for (double t0 = now_s(); now_s() - t0 < 20; usleep(20000)) {
        FILE *f;

        if (waitpid(pid, status, WNOHANG) == pid)
            return 0;
        if ((f = fopen(pf, "r")) != NULL) {
            fclose(f);
            return pid;
        }
    }
    kill(pid, SIGKILL);
    waitpid(pid, status, 0);
    CHECK(!"kvcached neither started nor exited");
    return 0;
}

/* SIGTERM a spawned daemon and check it exits 0. */
static void spawn_stop(pid_t pid)
{
    int st;

    kill(pid, SIGTERM);
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
          WEXITSTATUS(st) == 0);
}

/* Does the daemon log hold this text? */
static bool log_has(const char *text)
{
    char cmd[800];

    snprintf(cmd, sizeof(cmd), "grep -qF -- '%s' '%s'", text, d.log);
    return system(cmd) == 0;
}

/* With no -p the daemon listened on 127.0.0.1:7070: any local user could
 * read, write and drop every namespace. TCP is off unless asked for. */
static void tcp_off_by_default(void)
{
    static const char *const none[] = { NULL };
    char pf[300];
    int tcp = 0, st;
    pid_t pid = spawn(none, &st);
    FILE *f;

    CHECK(pid > 0);
    snprintf(pf, sizeof(pf), "%s/ports", d.dir);
    f = fopen(pf, "r");
    CHECK(f != NULL && fscanf(f, "tcp=%d", &tcp) == 1);
    fclose(f);
    CHECK(tcp == -1);
    CHECK(!log_has("listening on tcp"));
    spawn_stop(pid);
}

/* A token file others can read is refused at start, with the reason. */
static void token_file_mode_checked(void)
{
    const char *tf = token_file("token", "0123456789abcdef-token", 0644);
    const char *const opts[] = { "-p", "0", "--token-file", tf, NULL };
    int st = 0;

    CHECK(spawn(opts, &st) == 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) != 0);
    CHECK(log_has("chmod 600"));
}

/* A request of one op on c; returns the response code (-1: closed). */
static int op_code(struct tc *c, int op)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__HealthRequest hq = KVCACHE__HEALTH_REQUEST__INIT;
    Kvcache__StatsRequest sq = KVCACHE__STATS_REQUEST__INIT;
    struct tc_resp rs;
    int code;

    if (op == KVCACHE__REQUEST__OP_HEALTH) {
        q.op_case = op;
        q.health = &hq;
    } else {
        q.op_case = KVCACHE__REQUEST__OP_STATS;
        q.stats = &sq;
    }
    tc_send(c, &q, NULL, 0);
    if (tc_recv(c, &rs) != 0)
        return -1;
    code = rs.r->code;
    tc_resp_free(&rs);
    return code;
}

/* Auth with tok on c; the response code. */
static int auth(struct tc *c, const char *tok)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__AuthRequest a = KVCACHE__AUTH_REQUEST__INIT;
    struct tc_resp rs;
    int code;

    a.token.data = (uint8_t *)tok;
    a.token.len = strlen(tok);
    q.op_case = KVCACHE__REQUEST__OP_AUTH;
    q.auth = &a;
    tc_send(c, &q, NULL, 0);
    CHECK(tc_recv(c, &rs) == 0);
    code = rs.r->code;
    tc_resp_free(&rs);
    return code;
}

/* With --token-file a TCP client must present the token first; anything
 * else, or a wrong token, is DENIED and closed. The Unix socket is
 * trusted. The client library presents $KVCACHE_TOKEN. */
static void auth_before_requests(void)
{
    const char *tok = "the-token-of-this-test-0123456789";
    const char *tf = token_file("token", tok, 0600);
    const char *const extra[] = { "--token-file", tf, NULL };
    struct tc c;
    char uri[64];
    kvcache_t *kc;
    int state;

    td_start(&d, extra);
    tc_connect_tcp(&c, d.port);
    CHECK(op_code(&c, KVCACHE__REQUEST__OP_HEALTH) == KVCACHE__CODE__DENIED);
    CHECK(op_code(&c, KVCACHE__REQUEST__OP_HEALTH) == -1);   /* closed */
    tc_close(&c);
    tc_connect_tcp(&c, d.port);
    CHECK(auth(&c, "not-the-token-at-all-0123") == KVCACHE__CODE__DENIED);
    CHECK(op_code(&c, KVCACHE__REQUEST__OP_HEALTH) == -1);
    tc_close(&c);
    tc_connect_tcp(&c, d.port);
    CHECK(auth(&c, tok) == 0);
    CHECK(op_code(&c, KVCACHE__REQUEST__OP_HEALTH) == 0);
    CHECK(op_code(&c, KVCACHE__REQUEST__OP_STATS) == 0);
    tc_close(&c);
    tc_connect_unix(&c, d.sock);
    CHECK(op_code(&c, KVCACHE__REQUEST__OP_HEALTH) == 0);
    tc_close(&c);
    /* the library, with and without the token */
    snprintf(uri, sizeof(uri), "tcp:127.0.0.1:%d", d.port);
    unsetenv("KVCACHE_TOKEN");
    kc = kvcache_create(uri, NULL, NULL);
    CHECK(kc != NULL);
    CHECK(kvcache_health(kc, 0, &state, NULL, 0) != 0);
    kvcache_destroy(kc);
    setenv("KVCACHE_TOKEN", tok, 1);
    kc = kvcache_create(uri, NULL, NULL);
    CHECK(kc != NULL);
    CHECK(kvcache_health(kc, 0, &state, NULL, 0) == 0);
    kvcache_destroy(kc);
    unsetenv("KVCACHE_TOKEN");
    CHECK(td_stop(&d) == 0);
}

/* Drop one namespace on c; the response code. */
static int drop(struct tc *c, uint64_t ns)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__DropNamespaceRequest dq = KVCACHE__DROP_NAMESPACE_REQUEST__INIT;
    struct tc_resp rs;
    int code;

    dq.ns = ns;
    q.op_case = KVCACHE__REQUEST__OP_DROP_NAMESPACE;
    q.drop_namespace = &dq;
    tc_send(c, &q, NULL, 0);
    CHECK(tc_recv(c, &rs) == 0);
    code = rs.r->code;
    tc_resp_free(&rs);
    return code;
}

/* With --admin-token-file only the admin token drops a namespace, even on
 * the Unix socket. */
static void admin_only_drop(void)
{
    const char *adm = "admin-token-of-this-test-0123456789";
    const char *tf = token_file("admin", adm, 0600);
    const char *const extra[] = { "--admin-token-file", tf, NULL };
    struct tc c;
    uint64_t ns;

    td_start(&d, extra);
    tc_connect_unix(&c, d.sock);
    ns = tc_open_ns(&c, "keep-me", 16384);
    CHECK(drop(&c, ns) == KVCACHE__CODE__DENIED);
    CHECK(tc_open_ns(&c, "keep-me", 16384) == ns);      /* still there */
    CHECK(auth(&c, adm) == 0);
    CHECK(drop(&c, ns) == 0);
    tc_close(&c);
    CHECK(td_stop(&d) == 0);
}

/* Open a namespace of this model; the response code. */
static int open_code(struct tc *c, const char *model)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__OpenNamespaceRequest o = KVCACHE__OPEN_NAMESPACE_REQUEST__INIT;
    Kvcache__NamespaceDesc nd = KVCACHE__NAMESPACE_DESC__INIT;
    struct tc_resp rs;
    int code;

    nd.model = (char *)model;
    nd.layer_end = 1;
    nd.tokens_per_block = 16;
    nd.dtype = "bf16";
    nd.block_bytes = 16384;
    o.desc = &nd;
    q.op_case = KVCACHE__REQUEST__OP_OPEN_NAMESPACE;
    q.open_namespace = &o;
    tc_send(c, &q, NULL, 0);
    CHECK(tc_recv(c, &rs) == 0);
    code = rs.r->code;
    tc_resp_free(&rs);
    return code;
}

/* --ns-quota: a credential creates at most N namespaces; opening one that
 * exists is free. */
static void ns_quota(void)
{
    static const char *const extra[] = { "--ns-quota", "2", NULL };
    struct tc c;

    td_start(&d, extra);
    tc_connect_unix(&c, d.sock);
    CHECK(open_code(&c, "one") == 0);
    CHECK(open_code(&c, "two") == 0);
    CHECK(open_code(&c, "three") == KVCACHE__CODE__LIMIT);
    CHECK(open_code(&c, "one") == 0);
    tc_close(&c);
    CHECK(td_stop(&d) == 0);
}

/* Send a memcache line and read one reply line (NUL-terminated in buf). */
static int mc_line(int fd, const char *line, char *buf, size_t cap)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    size_t n = 0;

    if (line && send(fd, line, strlen(line), MSG_NOSIGNAL) < 0)
        return -1;
    while (n < cap - 1 && (n == 0 || buf[n - 1] != '\n')) {
        ssize_t r;

        if (poll(&pfd, 1, 5000) != 1)
            return -1;
        r = recv(fd, buf + n, 1, 0);
        if (r <= 0)
            return -1;
        n++;
    }
    buf[n] = '\0';
    return 0;
}

/* With --token-file the memcache port wants "auth <token>" first. */
static void memcache_auth(void)
{
    const char *tok = "memcache-token-of-this-test-0123";
    const char *tf = token_file("token", tok, 0600);
    const char *const extra[] = { "--token-file", tf, "--memcache-port", "0",
                                  NULL };
    char buf[256], line[128];
    int fd;

    td_start(&d, extra);
    fd = tcp_connect(memcache_port());
    CHECK(fd >= 0 && mc_line(fd, "get x\r\n", buf, sizeof(buf)) == 0);
    CHECK(strncmp(buf, "CLIENT_ERROR authenticate first", 31) == 0);
    CHECK(mc_line(fd, NULL, buf, sizeof(buf)) == -1);           /* closed */
    close(fd);
    fd = tcp_connect(memcache_port());
    snprintf(line, sizeof(line), "auth %s\r\n", tok);
    CHECK(fd >= 0 && mc_line(fd, line, buf, sizeof(buf)) == 0);
    CHECK(strcmp(buf, "OK\r\n") == 0);
    CHECK(mc_line(fd, "set k 0 0 1\r\nx\r\n", buf, sizeof(buf)) == 0);
    CHECK(strcmp(buf, "STORED\r\n") == 0);
    close(fd);
    CHECK(td_stop(&d) == 0);
}

/* 1,000 memcache sets of direct keys in new namespaces filled the
 * namespace table for good; now only --memcache-namespaces (16) are
 * created and OpenNamespace keeps working. */
static void memcache_namespace_flood(void)
{
    static const char *const extra[] = { "--memcache-port", "0", NULL };
    char buf[256], line[160];
    int fd, stored = 0;
    struct tc c;

    td_start(&d, extra);
    fd = tcp_connect(memcache_port());
    CHECK(fd >= 0);
    for (int i = 0; i < 1000; i++) {
        snprintf(line, sizeof(line), "set %016x:%032x 0 0 1\r\nx\r\n",
                 0x5000 + i, i);
        CHECK(mc_line(fd, line, buf, sizeof(buf)) == 0);
        stored += strcmp(buf, "STORED\r\n") == 0;
    }
    close(fd);
    printf("memcache created %d of 1000 namespaces\n", stored);
    CHECK(stored == 16);
    tc_connect_unix(&c, d.sock);
    CHECK(open_code(&c, "after-the-flood") == 0);
    tc_close(&c);
    CHECK(td_stop(&d) == 0);
}

/* The cases, by name. */
static const struct {
    const char *name;
    void (*fn)(void);
} cases[] = {
    { "list_namespaces_over_8", list_namespaces_over_8 },
    { "socket_path_not_a_socket", socket_path_not_a_socket },
    { "nul_in_model", nul_in_model },
    { "put_overflow_self_evicted", put_overflow_self_evicted },
    { "metrics_idle_timeout", metrics_idle_timeout },
    { "slow_put_stalls_others", slow_put_stalls_others },
    { "dup_keys_read_once", dup_keys_read_once },
    { "read_inflight_bounded", read_inflight_bounded },
    { "partial_frames_bounded", partial_frames_bounded },
    { "hostile_live", hostile_live },
    { "tcp_off_by_default", tcp_off_by_default },
    { "token_file_mode_checked", token_file_mode_checked },
    { "auth_before_requests", auth_before_requests },
    { "admin_only_drop", admin_only_drop },
    { "ns_quota", ns_quota },
    { "memcache_auth", memcache_auth },
    { "memcache_namespace_flood", memcache_namespace_flood },
};

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s KVCACHED CASE\n", argv[0]);
        return 2;
    }
    td_set_binary(argv[1]);
    signal(SIGPIPE, SIG_IGN);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (strcmp(argv[2], cases[i].name) != 0)
            continue;
        td_mkdir(&d);
        cases[i].fn();
        td_cleanup(&d);
        printf("%s: ok\n", argv[2]);
        return 0;
    }
    fprintf(stderr, "no case %s\n", argv[2]);
    return 2;
}
