/*
 * kc_stats.h - the daemon's counters, per-operation latency histograms,
 * health verdict, and their Prometheus text form.
 *
 * Counters are plain integers bumped by the one loop thread; nothing on the
 * hot path aggregates: percentiles and text are computed when asked for.
 */
#ifndef KC_STATS_H
#define KC_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "kc_ops.h"

#include "slab/kc_store.h"

/* Log2 buckets: bucket i counts latencies in [2^(i-1), 2^i) microseconds. */
#define HIST_BUCKETS 32

/* A latency histogram. */
struct hist {
    uint64_t b[HIST_BUCKETS];
    uint64_t count;
    uint64_t sum_ns;
    uint64_t max_ns;
};

void hist_add(struct hist *h, uint64_t ns);
/* Upper bound of the bucket holding quantile q (0..1), in microseconds. */
double hist_quantile_us(const struct hist *h, double q);

/* Operations, in the order of kvcache.proto's Request fields (the table
 * kc_ops.h is generated from it): OPK_OPEN_NAMESPACE, OPK_PUT, ... */
enum op_kind {
#define OPK_ENUM(name, NAME, num, flags) OPK_##NAME,
    KC_OPS(OPK_ENUM)
#undef OPK_ENUM
    OPK_COUNT,
};

/* Flags of an operation (KC_OP_ADMIN, ...; kc_ops.h). */
unsigned op_flags(int op);

/* Name of an operation ("get_prefix"). */
const char *op_name(int op);

/* Window over which Health judges the device. */
#define HEALTH_WINDOW_NS (10ull * 1000000000ull)

/* Everything the daemon counts itself (the store counts the rest). */
struct daemon_stats {
    uint64_t start_ns;
    uint64_t conns;              /* gauge: open client connections */
    uint64_t conns_total;
    uint64_t conns_rejected;     /* over --conns */
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t requests;
    uint64_t protocol_errors;
    uint64_t limit_errors;
    uint64_t idle_closed;
    uint64_t busy_retries;
    uint64_t inflight_peak;      /* highest kc_budget in-flight bytes */
    uint64_t budget_waits;       /* gets that waited for the budget */
    uint64_t quota_refused;      /* blocks refused: their namespace would
                                    go over --ns-max-bytes */
    uint64_t put_evicted;        /* Put items answered NO_SPACE: evicted
                                    by later items of the same request */
    uint64_t send_timeouts;      /* connections closed: answers not taken
                                    (--send-timeout) */
    uint64_t put_timeouts;       /* Puts cancelled: data too slow
                                    (--put-timeout) */
    uint64_t miss_bytes;
    /* the shared-memory path (kc_shm.c, kc_lease.c) */
    uint64_t shm_attached;       /* connections given the region */
    uint64_t leases;             /* leases granted */
    uint64_t leases_expired;     /* ended by the timeout, not released */
    uint64_t leased_bytes;       /* gauge: bytes held leased now */
    uint64_t ref_inline_blocks;  /* by_ref blocks sent as bytes (outside
                                    the region) */
    uint64_t staged_puts;        /* blocks put from a staging area */
    /* the memcache port (kc_memcache.c) */
    uint64_t mc_conns_total;     /* connections accepted on it */
    uint64_t mc_get_keys;        /* keys asked for by get, gets, mg */
    uint64_t mc_get_hits;        /* of which answered with a value */
    uint64_t mc_sets;            /* set, add, replace, ms */
    uint64_t mc_errors;          /* ERROR, CLIENT_ERROR, SERVER_ERROR sent */
    struct hist op[OPK_COUNT];   /* latency per op, request decoded to
                                    response queued */
    uint64_t op_errors[OPK_COUNT];
    /* health: device-bound get batches in the current and previous window */
    struct hist dev_win[2];
    uint64_t win_start_ns;
    uint64_t io_errors_base[2];  /* store io_errors at each window start */
};

/* Reset and stamp the start time. */
void stats_init(struct daemon_stats *s, uint64_t now_ns);

/* Latency of one get batch that waited on the device. */
void stats_device_read(struct daemon_stats *s, uint64_t ns);

/* Rotate health windows if due; io_errors is the store's counter now. */
void stats_tick(struct daemon_stats *s, uint64_t now_ns, uint64_t io_errors);

enum health_state { HEALTH_OK = 0, HEALTH_DEGRADED = 1, HEALTH_DOWN = 2 };

/* What Health answers. */
struct health {
    int state;                   /* enum health_state */
    char reason[128];
    double device_read_p99_ms;
    uint64_t io_errors_window;
};

/* Judge health from the windows and the thresholds. */
void stats_health(const struct daemon_stats *s, uint64_t io_errors,
                  unsigned latency_ms, unsigned errors, int stopping,
                  struct health *out);

/* A growable text buffer. */
struct sbuf {
    char *p;
    size_t len, cap;
};
void sbuf_printf(struct sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void sbuf_free(struct sbuf *b);

/* Append the Prometheus text exposition of everything to b. */
void stats_prometheus(struct sbuf *b, const struct daemon_stats *s,
                      const struct store_stats *ss, const struct health *h,
                      uint64_t now_ns);

#endif
