/*
 * test_access.c - who may write what, and how much: a byte quota per
 * namespace, TCP only with a token or an explicit --no-auth, the memcache
 * port kept out of namespaces opened through the RPC, and a memcache get
 * over the in-flight budget waiting instead of failing. Each case is its
 * own meson test: `test_access KVCACHED CASE`; each starts the real daemon
 * on a temporary folder and stops it.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hostile.h"

struct td d;

/* Read exactly len bytes within timeout_ms; 0, or -1 on timeout/close. */
static int recv_all(int fd, void *buf, size_t len, int timeout_ms)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    size_t n = 0;

    while (n < len) {
        ssize_t r;

        if (poll(&pfd, 1, timeout_ms) != 1)
            return -1;
        r = recv(fd, (char *)buf + n, len - n, 0);
        if (r <= 0)
            return -1;
        n += (size_t)r;
    }
    return 0;
}

/* Send a memcache line (if any) and read one reply line into buf. */
static int mc_line(int fd, const char *line, char *buf, size_t cap,
                   int timeout_ms)
{
    size_t n = 0;

    if (line)
        send_all(fd, line, strlen(line));
    while (n < cap - 1 && (n == 0 || buf[n - 1] != '\n'))
        if (recv_all(fd, buf + n++, 1, timeout_ms) < 0)
            return -1;
    buf[n] = '\0';
    return 0;
}

/* The direct memcache key of (ns, key lo = i, hi = ~i), as tc_keys packs. */
static void mc_key(char out[50], uint64_t ns, uint64_t i)
{
    uint8_t *k = tc_keys(i, 1);
    int n = snprintf(out, 50, "%016llx:", (unsigned long long)ns);

    for (int j = 0; j < 16; j++)
        n += snprintf(out + n, 50 - (size_t)n, "%02x", k[j]);
    free(k);
}

/* A memcache set of a value of len bytes (tc_fill of seed); the reply. */
static void mc_set(int fd, const char *key, uint32_t len, uint64_t seed,
                   char *reply, size_t cap)
{
    char line[128];
    uint8_t *v = malloc(len + 2);

    CHECK(v != NULL);
    tc_fill(v, len, seed);
    memcpy(v + len, "\r\n", 2);
    snprintf(line, sizeof(line), "set %s 0 0 %u\r\n", key, len);
    send_all(fd, line, strlen(line));
    send_all(fd, v, len + 2);
    free(v);
    CHECK(mc_line(fd, NULL, reply, cap, 10000) == 0);
}

/* Stats over the Unix socket (caller frees). */
static void stats(struct tc_resp *rs)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__StatsRequest sq = KVCACHE__STATS_REQUEST__INIT;
    struct tc c;

    tc_connect_unix(&c, d.sock);
    q.op_case = KVCACHE__REQUEST__OP_STATS;
    q.stats = &sq;
    tc_send(&c, &q, NULL, 0);
    CHECK(tc_recv(&c, rs) == 0 && rs->r->code == 0);
    tc_close(&c);
}

/* Does GET /metrics contain text? */
static bool metrics_have(const char *text)
{
    static char buf[1 << 18];
    const char *rq = "GET /metrics HTTP/1.0\r\n\r\n";
    int fd = tcp_connect_buf(d.mport, 0);
    size_t n = 0;
    ssize_t r;

    CHECK(fd >= 0);
    send_all(fd, rq, strlen(rq));
    while (n < sizeof(buf) - 1 && (r = recv(fd, buf + n, sizeof(buf) - 1 - n, 0)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
    close(fd);
    return strstr(buf, text) != NULL;
}

/* --ns-max-bytes 256k: the fifth and sixth 64 KiB block of a namespace
 * get LIMIT (a present key still EXISTS), another namespace is not held
 * back, a memcache set over it is refused; Stats and /metrics count the
 * refused blocks. */
static void namespace_byte_quota(void)
{
    static const char *const extra[] = { "--ns-max-bytes", "256k",
        "--memcache-port", "0", NULL };
    const uint32_t blk = 65536;
    struct tc c;
    struct tc_resp rs;
    int st[16];
    char key[50], buf[256];
    uint64_t a, b;
    int fd;

    td_start(&d, extra);
    tc_connect_unix(&c, d.sock);
    a = tc_open_ns(&c, "quota-a", blk);
    b = tc_open_ns(&c, "quota-b", blk);
    tc_put_status(&c, a, 100, 6, blk, st);
    for (int i = 0; i < 4; i++)
        CHECK(st[i] == KVCACHE__CODE__OK);
    CHECK(st[4] == KVCACHE__CODE__LIMIT && st[5] == KVCACHE__CODE__LIMIT);
    tc_put_status(&c, a, 100, 1, blk, st);
    CHECK(st[0] == KVCACHE__CODE__EXISTS);
    CHECK(tc_get_prefix_check(&c, a, 100, 6, blk) == 4);
    tc_put_status(&c, b, 100, 4, blk, st);
    for (int i = 0; i < 4; i++)
        CHECK(st[i] == KVCACHE__CODE__OK);
    /* memcache: its own namespace of 64 KiB blocks fills the same way */
    fd = tcp_connect_buf(memcache_port(), 0);
    CHECK(fd >= 0);
    for (int i = 0; i < 5; i++) {
        mc_key(key, 0x00000000000a0001ull, (uint64_t)i);
        mc_set(fd, key, blk, (uint64_t)i, buf, sizeof(buf));
        if (i < 4)
            CHECK(strcmp(buf, "STORED\r\n") == 0);
        else
            CHECK(strcmp(buf, "SERVER_ERROR namespace over --ns-max-bytes\r\n") == 0);
    }
    close(fd);
    stats(&rs);
    printf("quota_refused %llu\n", (unsigned long long)rs.r->stats->quota_refused);
    CHECK(rs.r->stats->quota_refused == 3);
    tc_resp_free(&rs);
    CHECK(metrics_have("\nkvcached_quota_refused_total 3\n"));
    tc_close(&c);
    CHECK(td_stop(&d) == 0);
}

/* Run kvcached with args on d's folder; with stay: wait for its port
 * file, stop it and return 0; else wait for it to exit (its status). */
static int run_daemon(const char *const *args, bool stay)
{
    char store[300], pf[300];
    const char *argv[32];
    int n = 0, st = -1;
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
    for (int i = 0; args[i] && n < 30; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int lfd = open(d.log, O_WRONLY | O_CREAT | O_APPEND, 0600);

        dup2(lfd, 2);
        dup2(lfd, 1);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    for (double t0 = now_s(); now_s() - t0 < 20; usleep(20000)) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return st;
        if (stay && access(pf, F_OK) == 0) {
            kill(pid, SIGTERM);
            CHECK(waitpid(pid, &st, 0) == pid);
            return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
        }
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

/* Does the daemon's log contain text? */
static bool log_has(const char *text)
{
    static char buf[1 << 16];
    FILE *f = fopen(d.log, "r");
    size_t n;

    if (f == NULL)
        return false;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return strstr(buf, text) != NULL;
}

/* TCP or the memcache port without --token-file used to start with a
 * warning only; now the daemon refuses to start unless --no-auth says
 * it is meant, and starts with a token file. */
static void tcp_needs_token_or_no_auth(void)
{
    static const char *const tcp[] = { "-p", "0", NULL };
    static const char *const mc[] = { "--memcache-port", "0", NULL };
    static const char *const open_tcp[] = { "-p", "0", "--no-auth", NULL };
    const char *tf = "token";
    char path[400];
    const char *with_token[] = { "-p", "0", "--memcache-port", "0",
                                 "--token-file", path, NULL };
    int st, fd;

    st = run_daemon(tcp, false);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) != 0);
    CHECK(log_has("TCP (-p) is on without --token-file"));
    CHECK(log_has("--no-auth"));
    st = run_daemon(mc, false);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) != 0);
    CHECK(log_has("the memcache port is on without --token-file"));
    CHECK(run_daemon(open_tcp, true) == 0);
    CHECK(log_has("--no-auth: TCP or the memcache port is on"));
    snprintf(path, sizeof(path), "%s/%s", d.dir, tf);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0 && write(fd, "a-token-of-this-test-0123\n", 26) == 26);
    close(fd);
    CHECK(run_daemon(with_token, true) == 0);
}

/* A memcache set of "<ns>:<key>" overwrote a block put through the RPC
 * with other bytes of the same length. Now the memcache port writes only
 * its own namespaces and those of --memcache-writable. */
static void memcache_cannot_overwrite_rpc_block(void)
{
    static const char *const extra[] = { "--memcache-port", "0", NULL };
    const uint32_t blk = 16384;
    const char *ro = "SERVER_ERROR namespace not writable over memcache "
                     "(--memcache-writable)\r\n";
    char key[50], buf[256], line[128], nshex[20];
    const char *const writable[] = { "--memcache-port", "0",
                                     "--memcache-writable", nshex, NULL };
    struct tc c;
    uint64_t ns;
    int fd;

    td_start(&d, extra);
    tc_connect_unix(&c, d.sock);
    ns = tc_open_ns(&c, "rpc-only", blk);
    tc_put_blocks(&c, ns, 7, 1, blk);
    fd = tcp_connect_buf(memcache_port(), 0);
    CHECK(fd >= 0);
    mc_key(key, ns, 7);
    mc_set(fd, key, blk, 999, buf, sizeof(buf));         /* other bytes */
    CHECK(strcmp(buf, ro) == 0);
    mc_key(key, ns, 8);
    mc_set(fd, key, blk, 8, buf, sizeof(buf));           /* a new block */
    CHECK(strcmp(buf, ro) == 0);
    mc_key(key, ns, 7);
    snprintf(line, sizeof(line), "delete %s\r\n", key);
    CHECK(mc_line(fd, line, buf, sizeof(buf), 5000) == 0 && strcmp(buf, ro) == 0);
    snprintf(line, sizeof(line), "md %s\r\n", key);
    CHECK(mc_line(fd, line, buf, sizeof(buf), 5000) == 0);
    CHECK(strncmp(buf, "SERVER_ERROR namespace not writable", 35) == 0);
    /* the RPC's block is intact, and 8 was not created */
    CHECK(tc_get_prefix_check(&c, ns, 7, 2, blk) == 1);
    /* memcache's own namespaces and text keys are written as before */
    mc_key(key, 0x00000000000b0001ull, 1);
    mc_set(fd, key, blk, 1, buf, sizeof(buf));
    CHECK(strcmp(buf, "STORED\r\n") == 0);
    mc_set(fd, key, blk, 2, buf, sizeof(buf));
    CHECK(strcmp(buf, "STORED\r\n") == 0);
    mc_set(fd, "text-key", 10, 3, buf, sizeof(buf));
    CHECK(strcmp(buf, "STORED\r\n") == 0);
    close(fd);
    tc_close(&c);
    CHECK(td_stop(&d) == 0);
    /* an operator may list the namespace: then it is writable */
    snprintf(nshex, sizeof(nshex), "%016llx", (unsigned long long)ns);
    td_start(&d, writable);
    fd = tcp_connect_buf(memcache_port(), 0);
    CHECK(fd >= 0);
    mc_key(key, ns, 8);
    mc_set(fd, key, blk, 8, buf, sizeof(buf));
    CHECK(strcmp(buf, "STORED\r\n") == 0);
    snprintf(line, sizeof(line), "get %s\r\n", key);
    CHECK(mc_line(fd, line, buf, sizeof(buf), 5000) == 0);
    CHECK(strncmp(buf, "VALUE ", 6) == 0);
    close(fd);
    CHECK(td_stop(&d) == 0);
}

#define MCV (512u << 10)         /* value size of the budget case */
#define MC_VALUE_LINE 66u        /* "VALUE <49> 0 524288\r\n" */

/* Send "get" of keys [from, from + n) of namespace ns. */
static void mc_send_get(int fd, uint64_t ns, uint64_t from, unsigned n)
{
    char *line = malloc(16 + n * 50), key[50];
    size_t l = 3;

    CHECK(line != NULL);
    memcpy(line, "get", 3);
    for (unsigned i = 0; i < n; i++) {
        mc_key(key, ns, from + i);
        line[l++] = ' ';
        memcpy(line + l, key, 49);
        l += 49;
    }
    memcpy(line + l, "\r\n", 2);
    send_all(fd, line, l + 2);
    free(line);
}

/* Read the whole answer of a get of n present values (checked). */
static void mc_recv_values(int fd, uint64_t from, unsigned n)
{
    size_t len = (size_t)n * (MC_VALUE_LINE + MCV + 2) + 5, off = 0;
    uint8_t *buf = malloc(len), *want = malloc(MCV);

    CHECK(buf && want && recv_all(fd, buf, len, 20000) == 0);
    for (unsigned i = 0; i < n; i++) {
        CHECK(memcmp(buf + off, "VALUE ", 6) == 0);
        off += MC_VALUE_LINE;
        tc_fill(want, MCV, from + i);
        CHECK(memcmp(buf + off, want, MCV) == 0);
        off += MCV + 2;
    }
    CHECK(memcmp(buf + off, "END\r\n", 5) == 0);
    free(buf);
    free(want);
}

/* A memcache get over --read-inflight answered SERVER_ERROR while another
 * client held the read buffers; now its connection waits until they are
 * free and then gets its values. Only a get that can never fit (larger
 * than the limit alone) is an error. */
static void memcache_get_waits_for_budget(void)
{
    static const char *const extra[] = { "--memcache-port", "0",
        "--read-inflight", "16m", "--conn-inflight", "16m",
        "--memcache-block", "512k", NULL };
    const uint64_t ns = 0x00000000000c0001ull;
    struct pollfd pfd;
    char key[50], buf[256];
    int fd, a, b;

    td_start(&d, extra);
    fd = tcp_connect_buf(memcache_port(), 0);
    CHECK(fd >= 0);
    for (unsigned i = 0; i < 48; i++) {
        mc_key(key, ns, i);
        mc_set(fd, key, MCV, i, buf, sizeof(buf));
        CHECK(strcmp(buf, "STORED\r\n") == 0);
    }
    /* a: 13 MiB read from the SSD, its answer not taken */
    a = tcp_connect_buf(memcache_port(), 4096);
    CHECK(a >= 0);
    mc_send_get(a, ns, 0, 26);
    usleep(300000);
    /* b: 4 MiB more would go over 16 MiB: it waits, no answer */
    b = tcp_connect_buf(memcache_port(), 0);
    CHECK(b >= 0);
    mc_send_get(b, ns, 26, 8);
    pfd = (struct pollfd){ .fd = b, .events = POLLIN };
    CHECK(poll(&pfd, 1, 1000) == 0);
    /* a get larger than the limit alone is refused at once */
    mc_send_get(fd, ns, 0, 48);
    CHECK(mc_line(fd, NULL, buf, sizeof(buf), 5000) == 0);
    CHECK(strncmp(buf, "SERVER_ERROR get needs more read buffers", 40) == 0);
    /* a takes its answer: b's get goes on */
    mc_recv_values(a, 0, 26);
    mc_recv_values(b, 26, 8);
    close(a);
    close(b);
    close(fd);
    CHECK(td_stop(&d) == 0);
}

/* The cases, by name. */
static const struct {
    const char *name;
    void (*fn)(void);
} cases[] = {
    { "namespace_byte_quota", namespace_byte_quota },
    { "tcp_needs_token_or_no_auth", tcp_needs_token_or_no_auth },
    { "memcache_cannot_overwrite_rpc_block", memcache_cannot_overwrite_rpc_block },
    { "memcache_get_waits_for_budget", memcache_get_waits_for_budget },
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
        return 0;
    }
    fprintf(stderr, "unknown case %s\n", argv[2]);
    return 2;
}
