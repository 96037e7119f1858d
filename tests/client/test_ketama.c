/* test_ketama: the ring at 160 points is twemproxy's.  Three memcached behind
 * a nutcracker (hash md5, distribution ketama) store 300 keys; each key must
 * be found on the memcached that kcc_ring picks for it.  Skipped (77) when
 * nutcracker or memcached is not installed. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kvcache.h"
#include "kcc_md5.h"
#include "kcc_ring.h"
#include "kc_test.h"

#define NKEYS 300

static pid_t pids[4];
static char dir[64];

static void cleanup(void)
{
    char cmd[128];
    for (int i = 0; i < 4; i++)
        if (pids[i] > 0) {
            kill(pids[i], SIGKILL);
            waitpid(pids[i], NULL, 0);
        }
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (dir[0] && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

/* A port that was free a moment ago. */
static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&a, &l) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* Connect to 127.0.0.1:port, retrying for up to 5 s while it starts. */
static int dial(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (int i = 0; i < 500; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
            return fd;
        close(fd);
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "port %d never answered\n", port);
    exit(1);
}

/* Send a command, read one reply until `end` is seen. */
static void chat(int fd, const char *cmd, char *reply, size_t cap, const char *end)
{
    size_t got = 0;
    CHECK(write(fd, cmd, strlen(cmd)) == (ssize_t)strlen(cmd));
    reply[0] = '\0';
    while (got + 1 < cap && strstr(reply, end) == NULL) {
        ssize_t r = read(fd, reply + got, cap - 1 - got);
        CHECK(r > 0);
        got += (size_t)r;
        reply[got] = '\0';
    }
}

static pid_t spawn(char *const argv[])
{
    pid_t p = fork();
    CHECK(p >= 0);
    if (p == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    return p;
}

int main(void)
{
    const char *nut = getenv("KC_NUTCRACKER") ? getenv("KC_NUTCRACKER") : "/usr/sbin/nutcracker";
    const char *mc = "/usr/bin/memcached";
    int ports[3], lport, mfd[3], nfd;
    char names[3][32], conf[128], reply[4096], cmd[256], portstr[3][8];
    const char *np[3];
    struct kcc_ring ring;
    FILE *f;

    if (access(nut, X_OK) || access(mc, X_OK)) {
        printf("nutcracker or memcached not installed: skipped\n");
        return 77;
    }
    snprintf(dir, sizeof(dir), "/tmp/kc-ketama-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    atexit(cleanup);
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < 3; i++) {
        ports[i] = free_port();
        snprintf(portstr[i], sizeof(portstr[i]), "%d", ports[i]);
        char *argv[] = {(char *)mc, "-p", portstr[i], "-U", "0", "-l", "127.0.0.1",
                        "-m", "8", "-u", "root", NULL};
        pids[i] = spawn(argv);
        snprintf(names[i], sizeof(names[i]), "127.0.0.1:%d", ports[i]);
        np[i] = names[i];
    }
    lport = free_port();
    snprintf(conf, sizeof(conf), "%s/nc.yml", dir);
    f = fopen(conf, "w");
    CHECK(f);
    fprintf(f, "kc:\n  listen: 127.0.0.1:%d\n  hash: md5\n  distribution: ketama\n"
               "  auto_eject_hosts: false\n  servers:\n", lport);
    for (int i = 0; i < 3; i++)
        fprintf(f, "   - 127.0.0.1:%d:1\n", ports[i]);
    fclose(f);
    char *nargv[] = {(char *)nut, "-c", conf, "-s", "0", NULL};
    char statport[8];
    snprintf(statport, sizeof(statport), "%d", free_port());
    nargv[4] = statport;
    pids[3] = spawn(nargv);
    for (int i = 0; i < 3; i++)
        mfd[i] = dial(ports[i]);
    nfd = dial(lport);

    CHECK(kcc_ring_init(&ring, np, NULL, 3, 160) == 0);
    int agree = 0;
    for (int k = 0; k < NKEYS; k++) {
        char key[32];
        uint8_t d[16];
        int len = snprintf(key, sizeof(key), "kc-key-%d", k), where = -1;
        snprintf(cmd, sizeof(cmd), "set %s 0 0 1\r\nx\r\n", key);
        chat(nfd, cmd, reply, sizeof(reply), "\r\n");
        CHECK(strncmp(reply, "STORED", 6) == 0);
        for (int i = 0; i < 3; i++) {
            snprintf(cmd, sizeof(cmd), "get %s\r\n", key);
            chat(mfd[i], cmd, reply, sizeof(reply), "END\r\n");
            if (strncmp(reply, "VALUE", 5) == 0) {
                CHECK(where < 0);
                where = i;
            }
        }
        kcc_md5(key, (size_t)len, d);
        uint32_t h = (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 |
                     (uint32_t)d[3] << 24;
        agree += (int)kcc_ring_lookup(&ring, h) == where;
    }
    printf("nutcracker ketama and kcc_ring agree on %d of %d keys\n", agree, NKEYS);
    CHECK(agree == NKEYS);
    kcc_ring_deinit(&ring);
    printf("ketama: ok\n");
    return 0;
}
