/*
 * kcc_conn.h - the socket of one server: a non-blocking connect within a
 * deadline, waiting for readiness, and the read-retry rule shared by the
 * readers (kcc_mux.c pipelines requests and responses on it; kcc_raw.c
 * sends and receives single frames).  A connection that failed or timed
 * out in the middle of a message is closed: its stream position is
 * unknown.
 */
#ifndef KCC_CONN_H
#define KCC_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "kcc_uri.h"

struct kcc_conn {
    int fd;                       /* socket, -1 when not connected */
    const struct kcc_uri *uri;     /* where to connect (owned by the handle) */
    uint64_t down_until_ms;       /* skip this server until then (after a timeout) */
    uint64_t nconnects;           /* connections made, for tests and stats */
};

/* Monotonic clock in ms. */
uint64_t kcc_now_ms(void);

void kcc_conn_init(struct kcc_conn *c, const struct kcc_uri *uri);
void kcc_conn_deinit(struct kcc_conn *c);
void kcc_conn_close(struct kcc_conn *c);

/* Wait until fd is ready for `events` (POLLIN, POLLOUT) or the deadline
 * passes.  0, KVCACHE_ETIMEDOUT or -errno. */
int kcc_conn_wait(int fd, short events, uint64_t deadline_ms);

/* After a read or recvmsg that returned r <= 0: 0 to read again (EINTR, or
 * readable again within the deadline), else the error to return (peer
 * closed, -errno, KVCACHE_ETIMEDOUT). */
int kcc_conn_read_retry(int fd, ssize_t r, uint64_t deadline_ms);

/* Connect if not connected, within min(deadline, now + connect_ms); a new
 * connection counts in nconnects (Auth is the caller's: kcc_raw_auth).
 * 0, -errno, KVCACHE_ETIMEDOUT. */
int kcc_conn_ensure(struct kcc_conn *c, uint64_t deadline_ms, int connect_ms);

/* True if the idle connection is readable or hung up (peer closed it). */
int kcc_conn_stale(const struct kcc_conn *c);

#endif
