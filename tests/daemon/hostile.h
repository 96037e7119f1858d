/*
 * hostile.h - the cases of test_hostile (one per defect of hostile or
 * careless clients; hostile_limits.c, hostile_reads.c, hostile_auth.c) and
 * the helpers they share (hostile_util.c).  Every case runs against the
 * daemon `d` (kc_tclient.h), whose folder main() makes and removes.
 */
#ifndef HOSTILE_H
#define HOSTILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kc_tclient.h"

/* The daemon of the case being run. */
extern struct td d;

/* Seconds on the monotonic clock. */
double now_s(void);

/* One request, its response checked to decode. */
void roundtrip(struct tc *c, Kvcache__Request *q, struct tc_resp *rs);

/* A TCP connection to 127.0.0.1:port, or -1. */
int tcp_connect(int port);

int tcp_connect_buf(int port, int rcvbuf);

/* One metric of GET /metrics, or -1. */
long long metric(int port, const char *name);

/* Resident memory of the daemon in KiB. */
long rss_kib(void);

/* The memcache port from the daemon's port file, or -1. */
int memcache_port(void);

/* Send all of buf on a blocking fd. */
void send_all(int fd, const void *buf, size_t len);

/* Send a Put header for n blocks of len bytes and the first `some` data
 * bytes, no more: its first block's slot stays reserved. */
void put_head_only(struct tc *c, uint64_t ns, uint64_t base, size_t n,
                   uint32_t len, size_t some);

/* The cases, named as in meson.build. */
void list_namespaces_over_8(void);
void socket_path_not_a_socket(void);
void nul_in_model(void);
void put_overflow_self_evicted(void);
void metrics_idle_timeout(void);
void slow_put_stalls_others(void);
void dup_keys_read_once(void);
void read_inflight_bounded(void);
void partial_frames_bounded(void);
void hostile_live(void);
void tcp_off_by_default(void);
void token_file_mode_checked(void);
void auth_before_requests(void);
void admin_only_drop(void);
void ns_quota(void);
void memcache_auth(void);
void memcache_namespace_flood(void);

#endif
