/*
 * hostile_auth.c - cases of test_hostile: access control: TCP off by default, token files, Auth before requests, admin-only DropNamespace, namespace quotas, the memcache port's auth and namespace flood.
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
void tcp_off_by_default(void)
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
void token_file_mode_checked(void)
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
void auth_before_requests(void)
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
void admin_only_drop(void)
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
void ns_quota(void)
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
void memcache_auth(void)
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
void memcache_namespace_flood(void)
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
