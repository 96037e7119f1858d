/*
 * kc_conn.h - one blocking-style connection to one server, driven by
 * non-blocking sockets and poll() so that every operation honours an
 * absolute deadline.  A connection that failed or timed out in the middle
 * of a message is closed: its stream position is unknown.
 */
#ifndef KC_CONN_H
#define KC_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "kc_uri.h"

struct kc_conn {
    int fd;                       /* socket, -1 when not connected */
    const struct kc_uri *uri;     /* where to connect (owned by the handle) */
    uint64_t down_until_ms;       /* skip this server until then (after a timeout) */
    uint64_t nconnects;           /* connections made, for tests and stats */
};

/* Monotonic clock in ms. */
uint64_t kc_now_ms(void);

void kc_conn_init(struct kc_conn *c, const struct kc_uri *uri);
void kc_conn_deinit(struct kc_conn *c);
void kc_conn_close(struct kc_conn *c);

/* Connect if not connected, within min(deadline, now + connect_ms).
 * 0, -errno, KVCACHE_ETIMEDOUT. */
int kc_conn_ensure(struct kc_conn *c, uint64_t deadline_ms, int connect_ms);

/* Write all of iov[0..n) (iov is modified).  0, -errno, KVCACHE_ETIMEDOUT. */
int kc_conn_writev(struct kc_conn *c, struct iovec *iov, int n, uint64_t deadline_ms);

/* Read exactly the bytes of iov[0..n) (iov is modified), straight into the
 * caller's memory.  0, -errno, KVCACHE_ECLOSED, KVCACHE_ETIMEDOUT. */
int kc_conn_readv(struct kc_conn *c, struct iovec *iov, int n, uint64_t deadline_ms);

/* Read exactly len bytes into buf. */
int kc_conn_read(struct kc_conn *c, void *buf, size_t len, uint64_t deadline_ms);

#endif
