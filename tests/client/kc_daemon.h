/*
 * kc_daemon.h - start and stop real kvcached processes for the client tests.
 * The binary comes from $KC_TEST_DAEMON (meson sets it to the build tree's
 * kvcached); without it the test exits 77 (skipped).  Each daemon gets its
 * own store file and Unix socket in a fresh temporary directory, a TCP port
 * chosen by the kernel, and is killed when the test ends.
 */
#ifndef KC_DAEMON_H
#define KC_DAEMON_H

#include <sys/types.h>

struct kcd {
    pid_t pid;              /* running process, 0 when stopped */
    char dir[256];          /* the temporary directory of the test */
    int idx;                /* number of this daemon in the test */
    int port;               /* its TCP port */
    char sock[300];         /* its Unix socket path */
    char uri[320];          /* "unix:<sock>" */
    char tcp_uri[64];       /* "tcp:127.0.0.1:<port>" */
};

/* Make the temporary directory shared by the daemons of a test; exits 77
 * when no daemon binary is configured. */
const char *kcd_setup(void);

/* Start daemon number idx (store and socket named after it).  fresh: start
 * with an empty store.  Exits the test on failure. */
void kcd_start(struct kcd *d, int idx, int fresh);

/* The same with one extra option and its value (e.g. "--idle-timeout", "1"). */
void kcd_start_opt(struct kcd *d, int idx, int fresh, const char *opt, const char *val);

/* Stop with SIGTERM (clean, the store stays warm) or SIGKILL, and reap. */
void kcd_stop(struct kcd *d, int sig);

/* Freeze / thaw the process (SIGSTOP / SIGCONT). */
void kcd_freeze(struct kcd *d);
void kcd_thaw(struct kcd *d);

/* Kill every daemon still running and remove the directory (atexit). */
void kcd_cleanup(void);

#endif
