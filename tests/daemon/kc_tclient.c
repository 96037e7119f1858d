/*
 * kc_tclient.c - test client (frames through libkvcache's internal entry,
 * client/kcc_raw.h) and daemon harness.
 */
#include "kc_tclient.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
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

#include "kcc_raw.h"

static const char *td_binary;
static struct td *td_current[4];   /* daemons to kill on failure */

void td_set_binary(const char *path)
{
    td_binary = path;
}

const char *td_binary_path(void)
{
    return td_binary ? td_binary : getenv("KVCACHED");
}

/* Remember d so td_fail can kill it. */
static void td_track(struct td *d, bool on)
{
    for (int i = 0; i < 4; i++) {
        if (on && td_current[i] == NULL) {
            td_current[i] = d;
            return;
        }
        if (!on && td_current[i] == d) {
            td_current[i] = NULL;
            return;
        }
    }
}

void td_fail(void)
{
    for (int i = 0; i < 4; i++) {
        struct td *d = td_current[i];
        char cmd[400];

        if (d == NULL)
            continue;
        fprintf(stderr, "---- daemon log %s ----\n", d->log);
        snprintf(cmd, sizeof(cmd), "tail -40 '%s' >&2", d->log);
        if (system(cmd) != 0)
            fprintf(stderr, "(no log)\n");
        if (d->pid > 0)
            kill(d->pid, SIGKILL);
        td_cleanup(d);
    }
    exit(1);
}

void td_mkdir(struct td *d)
{
    const char *tmp = getenv("TMPDIR");

    memset(d, 0, sizeof(*d));
    snprintf(d->dir, sizeof(d->dir), "%s/kctest.XXXXXX", tmp ? tmp : "/tmp");
    if (mkdtemp(d->dir) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
    snprintf(d->sock, sizeof(d->sock), "%s/kc.sock", d->dir);
    snprintf(d->log, sizeof(d->log), "%s/kvcached.log", d->dir);
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void td_start(struct td *d, const char *const *extra)
{
    char store[300], pf[300];
    const char *argv[64];
    int n = 0;
    double t0;

    if (td_binary == NULL)
        td_binary = getenv("KVCACHED");
    if (td_binary == NULL) {
        fprintf(stderr, "no kvcached binary (argv[1] or $KVCACHED)\n");
        exit(1);
    }
    snprintf(store, sizeof(store), "%s/kc.store", d->dir);
    snprintf(pf, sizeof(pf), "%s/ports", d->dir);
    unlink(pf);
    argv[n++] = td_binary;
    argv[n++] = "-D"; argv[n++] = store;
    argv[n++] = "-s"; argv[n++] = d->sock;
    argv[n++] = "-p"; argv[n++] = "0";
    argv[n++] = "--no-auth";   /* a test-only TCP port; tokens: extra */
    argv[n++] = "--metrics-port"; argv[n++] = "0";
    argv[n++] = "--port-file"; argv[n++] = pf;
    argv[n++] = "-S"; argv[n++] = "64m";
    argv[n++] = "--slab-size"; argv[n++] = "1m";
    argv[n++] = "-m"; argv[n++] = "4";
    argv[n++] = "--min-item-size"; argv[n++] = "16k";
    for (int i = 0; extra && extra[i] && n < 62; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    d->pid = fork();
    if (d->pid == 0) {
        int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0600);

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
        }
        execv(td_binary, (char *const *)argv);
        _exit(127);
    }
    td_track(d, true);
    for (t0 = now_s(); now_s() - t0 < 20;) {
        FILE *f = fopen(pf, "r");
        int st;

        if (f) {
            int ok = fscanf(f, "tcp=%d metrics=%d", &d->port, &d->mport);

            fclose(f);
            if (ok == 2)
                return;
        }
        if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
            d->pid = 0;
            fprintf(stderr, "kvcached exited at start (status %d)\n", st);
            td_fail();
        }
        usleep(10000);
    }
    fprintf(stderr, "kvcached did not become ready\n");
    td_fail();
}

bool td_alive(struct td *d)
{
    int st;

    return d->pid > 0 && waitpid(d->pid, &st, WNOHANG) == 0;
}

int td_stop(struct td *d)
{
    double t0 = now_s();
    int st;

    if (d->pid <= 0)
        return -1;
    kill(d->pid, SIGTERM);
    while (now_s() - t0 < 20) {
        if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
            d->pid = 0;
            td_track(d, false);
            td_track(d, true);   /* keep the log for td_fail */
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        }
        usleep(10000);
    }
    kill(d->pid, SIGKILL);
    waitpid(d->pid, &st, 0);
    d->pid = 0;
    return -1;
}

void td_cleanup(struct td *d)
{
    char cmd[400];

    if (d->dir[0] == '\0')
        return;
    if (d->pid > 0) {
        kill(d->pid, SIGKILL);
        waitpid(d->pid, NULL, 0);
        d->pid = 0;
    }
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", d->dir);
    td_track(d, false);
    d->dir[0] = '\0';
}

/* The deadline of one test exchange: 10 s from now. */
static uint64_t tc_deadline(void)
{
    return kcc_now_ms() + TC_TIMEOUT_MS;
}

/* Connect a one-server handle to uri (no Attach: tests read the socket). */
static void tc_connect(struct tc *c, const char *uri)
{
    kvcache_options_t o = {.timeout_ms = TC_TIMEOUT_MS, .connect_timeout_ms = TC_TIMEOUT_MS};
    int rc = 0;

    memset(c, 0, sizeof(*c));
    c->next_id = 1;
    c->kc = kvcache_create(uri, &o, &rc);
    if (c->kc == NULL)
        fprintf(stderr, "tc: %s: %s\n", uri, kvcache_strerror(rc));
    CHECK(c->kc != NULL);
    c->conn = kcc_raw_conn(c->kc, 0, &rc);
    if (c->conn == NULL)
        fprintf(stderr, "tc: connect %s: %s\n", uri, kvcache_strerror(rc));
    CHECK(c->conn != NULL);
    c->fd = c->conn->fd;
}

void tc_connect_unix(struct tc *c, const char *path)
{
    char uri[400];

    snprintf(uri, sizeof(uri), "unix:%s?shm=0", path);
    tc_connect(c, uri);
}

void tc_connect_tcp(struct tc *c, int port)
{
    char uri[64];

    snprintf(uri, sizeof(uri), "tcp:127.0.0.1:%d", port);
    tc_connect(c, uri);
}

void tc_close(struct tc *c)
{
    kvcache_destroy(c->kc);
    c->kc = NULL;
    c->conn = NULL;
    c->fd = -1;
}

int tc_send_raw(struct tc *c, const void *buf, size_t len)
{
    return kcc_raw_write(c->conn, buf, len, tc_deadline()) == 0 ? 0 : -1;
}

uint64_t tc_send(struct tc *c, Kvcache__Request *r, const void *data,
                 size_t len)
{
    struct iovec iov = {(void *)data, len};

    if (r->id == 0)
        r->id = c->next_id++;
    CHECK(kcc_raw_send(c->conn, r, &iov, len ? 1 : 0, tc_deadline()) == 0);
    return r->id;
}

int tc_recv(struct tc *c, struct tc_resp *out)
{
    struct kcc_raw_resp rr;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = kcc_raw_recv(c->conn, KC_FRAME_PB_MAX, 1ull << 34, &rr, tc_deadline());
    if (rc == KVCACHE_ETIMEDOUT)
        fprintf(stderr, "tc: receive timed out\n");
    if (rc == KVCACHE_ETIMEDOUT || rc == KVCACHE_ECLOSED || (rc < 0 && rc > -4096))
        return -1;          /* closed, reset or silent: the test decides */
    CHECK(rc == 0);
    for (int i = 0; i < rr.nfds; i++)
        close(rr.fds[i]);       /* an Attach's region: these tests map none */
    out->r = rr.r;
    out->data_len = rr.data_len;
    out->data = rr.data ? rr.data : malloc(1);
    CHECK(out->data != NULL);
    return 0;
}

void tc_resp_free(struct tc_resp *r)
{
    if (r->r)
        kvcache__response__free_unpacked(r->r, NULL);
    free(r->data);
    memset(r, 0, sizeof(*r));
}

uint64_t tc_open_ns(struct tc *c, const char *model, uint32_t block_bytes)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__OpenNamespaceRequest o = KVCACHE__OPEN_NAMESPACE_REQUEST__INIT;
    Kvcache__NamespaceDesc d = KVCACHE__NAMESPACE_DESC__INIT;
    struct tc_resp rs;
    uint64_t ns;

    d.model = (char *)model;
    d.layer_end = 32;
    d.tokens_per_block = 16;
    d.dtype = "bf16";
    d.kv_heads = 8;
    d.head_dim = 128;
    d.block_bytes = block_bytes;
    o.desc = &d;
    q.op_case = KVCACHE__REQUEST__OP_OPEN_NAMESPACE;
    q.open_namespace = &o;
    tc_send(c, &q, NULL, 0);
    CHECK(tc_recv(c, &rs) == 0);
    CHECK(rs.r->code == 0);
    CHECK(rs.r->result_case == KVCACHE__RESPONSE__RESULT_OPEN_NAMESPACE);
    ns = rs.r->open_namespace->ns;
    tc_resp_free(&rs);
    return ns;
}

void tc_fill(uint8_t *buf, size_t len, uint64_t lo)
{
    uint64_t x = lo * 0x9E3779B97F4A7C15ull + 1;

    for (size_t i = 0; i < len; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(buf + i, &x, len - i < 8 ? len - i : 8);
    }
}

uint8_t *tc_keys(uint64_t base, size_t n)
{
    uint8_t *k = malloc(n * KC_KEY_WIRE_LEN + 1);

    CHECK(k != NULL);
    for (size_t i = 0; i < n; i++)
        kc_key_pack(k + i * KC_KEY_WIRE_LEN, base + i, ~(base + i));
    return k;
}

void tc_put_status(struct tc *c, uint64_t ns, uint64_t base, size_t n,
                   uint32_t len, int *status)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__PutRequest p = KVCACHE__PUT_REQUEST__INIT;
    Kvcache__PutItem *items = calloc(n, sizeof(*items)), **ip = calloc(n, sizeof(*ip));
    uint8_t *keys = tc_keys(base, n), *data = malloc(n * len + 1);
    struct tc_resp rs;

    CHECK(items && ip && data);
    for (size_t i = 0; i < n; i++) {
        kvcache__put_item__init(&items[i]);
        items[i].key.data = keys + i * KC_KEY_WIRE_LEN;
        items[i].key.len = KC_KEY_WIRE_LEN;
        items[i].chain_pos = (uint32_t)(base + i);
        items[i].length = len;
        ip[i] = &items[i];
        tc_fill(data + i * len, len, base + i);
    }
    p.ns = ns;
    p.n_items = n;
    p.items = ip;
    q.op_case = KVCACHE__REQUEST__OP_PUT;
    q.put = &p;
    tc_send(c, &q, data, n * len);
    CHECK(tc_recv(c, &rs) == 0);
    if (rs.r->code != 0)
        fprintf(stderr, "put: code %d: %s\n", rs.r->code, rs.r->message);
    CHECK(rs.r->code == 0 && rs.r->put->n_status == n);
    for (size_t i = 0; i < n; i++)
        status[i] = rs.r->put->status[i];
    tc_resp_free(&rs);
    free(items);
    free(ip);
    free(keys);
    free(data);
}

void tc_put_blocks(struct tc *c, uint64_t ns, uint64_t base, size_t n,
                   uint32_t len)
{
    int *st = malloc((n + 1) * sizeof(*st));

    CHECK(st != NULL);
    tc_put_status(c, ns, base, n, len, st);
    for (size_t i = 0; i < n; i++)
        CHECK(st[i] == KVCACHE__CODE__OK || st[i] == KVCACHE__CODE__EXISTS);
    free(st);
}

uint32_t tc_get_prefix_check(struct tc *c, uint64_t ns, uint64_t base,
                             size_t n, uint32_t len)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__GetPrefixRequest g = KVCACHE__GET_PREFIX_REQUEST__INIT;
    uint8_t *keys = tc_keys(base, n), *want = malloc(len + 1);
    struct tc_resp rs;
    uint32_t found;

    g.ns = ns;
    g.keys.data = keys;
    g.keys.len = n * KC_KEY_WIRE_LEN;
    q.op_case = KVCACHE__REQUEST__OP_GET_PREFIX;
    q.get_prefix = &g;
    tc_send(c, &q, NULL, 0);
    CHECK(tc_recv(c, &rs) == 0);
    CHECK(rs.r->code == 0);
    CHECK(rs.r->result_case == KVCACHE__RESPONSE__RESULT_GET_PREFIX);
    found = rs.r->get_prefix->found;
    CHECK(rs.r->get_prefix->n_lengths == found);
    CHECK(rs.data_len == (uint64_t)found * len);
    for (uint32_t i = 0; i < found; i++) {
        CHECK(rs.r->get_prefix->lengths[i] == len);
        CHECK(rs.r->get_prefix->chain_pos[i] == (uint32_t)(base + i));
        tc_fill(want, len, base + i);
        CHECK(memcmp(rs.data + (size_t)i * len, want, len) == 0);
    }
    tc_resp_free(&rs);
    free(keys);
    free(want);
    return found;
}

void tc_send_put_head(struct tc *c, uint64_t ns, uint64_t base, size_t n,
                      uint32_t len, uint64_t data_len)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__PutRequest p = KVCACHE__PUT_REQUEST__INIT;
    Kvcache__PutItem *items = calloc(n, sizeof(*items)), **ip = calloc(n, sizeof(*ip));
    uint8_t *keys = tc_keys(base, n);

    for (size_t i = 0; i < n; i++) {
        kvcache__put_item__init(&items[i]);
        items[i].key.data = keys + i * KC_KEY_WIRE_LEN;
        items[i].key.len = KC_KEY_WIRE_LEN;
        items[i].length = len;
        ip[i] = &items[i];
    }
    p.ns = ns;
    p.n_items = n;
    p.items = ip;
    q.id = 77;
    q.op_case = KVCACHE__REQUEST__OP_PUT;
    q.put = &p;
    CHECK(kcc_raw_send_head(c->conn, &q, data_len, tc_deadline()) == 0);
    free(items);
    free(ip);
    free(keys);
}
