/*
 * hostile_limits.c - cases of test_hostile: bounds on what one request may ask: namespace lists, socket paths, names, puts larger than memory, idle metrics connections, stalled puts.
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
#include "hostile.h"
#include "kc_tclient.h"


/* ListNamespaces with more than 8 namespaces: the answer's descriptors
 * were read from a freed array once the entry array grew. */
void list_namespaces_over_8(void)
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
void socket_path_not_a_socket(void)
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
void nul_in_model(void)
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
void put_overflow_self_evicted(void)
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
void metrics_idle_timeout(void)
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

/* Three clients that reserve slots in both memory slabs and stop (one
 * trickles a byte every 300 ms) held every other client's puts for as
 * long as they liked. With
 * --put-timeout 2 they are closed and a good client's 4 MiB put goes
 * through in time. */
void slow_put_stalls_others(void)
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
