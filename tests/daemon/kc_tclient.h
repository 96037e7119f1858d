/*
 * kc_tclient.h - the integration tests' client and daemon harness: frames
 * sent and received through libkvcache's internal entry (client/kcc_raw.h),
 * so the tests speak the protocol with the library's encoder.
 *
 * td_*: start the real kvcached on a temporary folder with free ports
 * (-p 0, --port-file), stop it with SIGTERM, kill it if the test dies
 * (PR_SET_PDEATHSIG). tc_*: one frame at a time, 10 s per exchange.
 */
#ifndef KC_TCLIENT_H
#define KC_TCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "kc_frame.h"
#include "kvcache.pb-c.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", \
    __FILE__, __LINE__, #c); td_fail(); } } while (0)

/* A running daemon. */
struct td {
    pid_t pid;
    char dir[256];        /* temporary folder: store, socket, log */
    char sock[300];
    char log[300];
    int port;             /* TCP */
    int mport;            /* metrics */
};

/* The daemon binary: argv[1] of the test, else $KVCACHED. */
void td_set_binary(const char *path);

/* The daemon binary in use. */
const char *td_binary_path(void);

/* Make a fresh temporary folder for d. */
void td_mkdir(struct td *d);

/* Start kvcached on d->dir with small geometry plus extra (NULL-ended). */
void td_start(struct td *d, const char *const *extra);

/* SIGTERM and wait; returns the exit status (or -1 on timeout/kill). */
int td_stop(struct td *d);

/* Is the daemon still running? */
bool td_alive(struct td *d);

/* Remove d->dir. */
void td_cleanup(struct td *d);

/* Print the daemon log, kill everything started, exit 1. */
void td_fail(void) __attribute__((noreturn));

/* How long a test exchange may take. */
#define TC_TIMEOUT_MS 10000

struct kcc_conn;
struct kvcache;

/* A client connection: a one-server libkvcache handle whose connection the
 * test drives frame by frame (client/kcc_raw.h: the library's framing). */
struct tc {
    struct kvcache *kc;         /* the handle (its URI: unix, no Attach, or tcp) */
    struct kcc_conn *conn;      /* its connection */
    int fd;                     /* the socket (non-blocking), for raw bytes and poll */
    uint64_t next_id;           /* next request id tc_send gives */
};

void tc_connect_unix(struct tc *c, const char *path);
void tc_connect_tcp(struct tc *c, int port);
void tc_close(struct tc *c);

/* Send raw bytes (all of them). Returns 0 or -1 (peer closed). */
int tc_send_raw(struct tc *c, const void *buf, size_t len);

/* Frame and send r with a data section; sets r->id if 0. Returns the id. */
uint64_t tc_send(struct tc *c, Kvcache__Request *r, const void *data,
                 size_t len);

/* A received response. */
struct tc_resp {
    Kvcache__Response *r;
    uint8_t *data;
    uint64_t data_len;
};

/* Receive one response (timeout 10 s); 0, or -1 if the peer closed. */
int tc_recv(struct tc *c, struct tc_resp *out);
void tc_resp_free(struct tc_resp *r);

/* Helpers: one request, one response, checked. */
uint64_t tc_open_ns(struct tc *c, const char *model, uint32_t block_bytes);

/* The block content for a key: deterministic bytes. */
void tc_fill(uint8_t *buf, size_t len, uint64_t lo);

/* Put n blocks of len bytes with keys (lo = base + i, hi = ~lo, chain
 * position base + i); each item's status into status[i]. */
void tc_put_status(struct tc *c, uint64_t ns, uint64_t base, size_t n,
                   uint32_t len, int *status);

/* Put n blocks of len bytes with keys (lo = base + i, hi = ~lo); checks
 * every status is OK or EXISTS. */
void tc_put_blocks(struct tc *c, uint64_t ns, uint64_t base, size_t n,
                   uint32_t len);

/* GetPrefix of n keys from base; returns found and checks every byte. */
uint32_t tc_get_prefix_check(struct tc *c, uint64_t ns, uint64_t base,
                             size_t n, uint32_t len);

/* Send a Put's frame header and message for n items of len bytes (keys
 * from base, id 77) declaring data_len bytes of data, and no data. */
void tc_send_put_head(struct tc *c, uint64_t ns, uint64_t base, size_t n,
                      uint32_t len, uint64_t data_len);

/* Keys field for n keys from base (caller frees). */
uint8_t *tc_keys(uint64_t base, size_t n);

#endif
