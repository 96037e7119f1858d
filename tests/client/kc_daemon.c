/*
 * kc_daemon.c - kvcached processes for the client tests.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kc_daemon.h"

#define KCD_MAX 16

static char kcd_dir[256];
static struct kcd *kcd_all[KCD_MAX];

const char *kcd_setup(void)
{
    const char *bin = getenv("KC_TEST_DAEMON");
    if (bin == NULL || access(bin, X_OK)) {
        printf("no daemon binary (KC_TEST_DAEMON): skipped\n");
        exit(77);
    }
    snprintf(kcd_dir, sizeof(kcd_dir), "/tmp/kc-client-XXXXXX");
    if (mkdtemp(kcd_dir) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
    atexit(kcd_cleanup);
    return kcd_dir;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

void kcd_start(struct kcd *d, int idx, int fresh)
{
    kcd_start_opt(d, idx, fresh, NULL, NULL);
}

void kcd_start_opt(struct kcd *d, int idx, int fresh, const char *opt, const char *val)
{
    char store[300], portfile[300], log[300];
    const char *bin = getenv("KC_TEST_DAEMON");

    if (d->pid == 0 && d->idx == 0 && d->dir[0] == '\0') {
        memset(d, 0, sizeof(*d));
        for (int i = 0; i < KCD_MAX; i++)
            if (kcd_all[i] == NULL) {
                kcd_all[i] = d;
                break;
            }
    }
    d->idx = idx;
    snprintf(d->dir, sizeof(d->dir), "%s", kcd_dir);
    snprintf(d->sock, sizeof(d->sock), "%s/d%d.sock", kcd_dir, idx);
    snprintf(store, sizeof(store), "%s/d%d.store", kcd_dir, idx);
    snprintf(portfile, sizeof(portfile), "%s/d%d.port", kcd_dir, idx);
    snprintf(log, sizeof(log), "%s/d%d.log", kcd_dir, idx);
    unlink(portfile);
    fflush(stdout);
    fflush(stderr);
    d->pid = fork();
    if (d->pid < 0) {
        perror("fork");
        exit(1);
    }
    if (d->pid == 0) {
        FILE *f = freopen(log, "a", stdout);
        (void)f;
        dup2(1, 2);
        char *argv[] = {(char *)bin, "-s", d->sock, "-p", "0", "--no-auth", "--port-file",
                        portfile, "-D", store, "-S", "64m", "-m", "8", "--slab-size",
                        "1m", "--min-item-size", "4k", NULL, NULL, NULL, NULL};
        int k = 18;
        if (opt) {
            argv[k++] = (char *)opt;
            argv[k++] = (char *)val;
        }
        if (fresh)
            argv[k++] = "--fresh";
        execv(bin, argv);
        _exit(127);
    }
    /* Ready when the port file exists and the socket is there. */
    for (int waited = 0;; waited += 10) {
        FILE *f = fopen(portfile, "r");
        int st;
        if (f) {
            int ok = fscanf(f, "tcp=%d", &d->port) == 1;
            fclose(f);
            if (ok && access(d->sock, F_OK) == 0)
                break;
        }
        if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
            fprintf(stderr, "daemon %d exited at start (see %s)\n", idx, log);
            d->pid = 0;
            exit(1);
        }
        if (waited > 10000) {
            fprintf(stderr, "daemon %d not ready after 10 s (see %s)\n", idx, log);
            exit(1);
        }
        sleep_ms(10);
    }
    snprintf(d->uri, sizeof(d->uri), "unix:%s", d->sock);
    snprintf(d->tcp_uri, sizeof(d->tcp_uri), "tcp:127.0.0.1:%d", d->port);
}

void kcd_stop(struct kcd *d, int sig)
{
    if (d->pid <= 0)
        return;
    kill(d->pid, SIGCONT);
    kill(d->pid, sig);
    waitpid(d->pid, NULL, 0);
    d->pid = 0;
}

void kcd_freeze(struct kcd *d)
{
    kill(d->pid, SIGSTOP);
}

void kcd_thaw(struct kcd *d)
{
    kill(d->pid, SIGCONT);
}

void kcd_cleanup(void)
{
    char cmd[300];
    for (int i = 0; i < KCD_MAX; i++)
        if (kcd_all[i])
            kcd_stop(kcd_all[i], SIGKILL);
    if (kcd_dir[0] && getenv("KC_TEST_KEEP") == NULL) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", kcd_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", kcd_dir);
    }
}
