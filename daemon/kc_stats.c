/*
 * kc_stats.c - histograms, health windows and Prometheus text.
 */
#include "kc_stats.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const op_names[OPK_COUNT] = {
#define OP_NAME(name, NAME, num, flags) #name,
    KC_OPS(OP_NAME)
#undef OP_NAME
};

/* Flags of each operation, from the same table. */
static const unsigned op_flag[OPK_COUNT] = {
#define OP_FLAGS(name, NAME, num, flags) flags,
    KC_OPS(OP_FLAGS)
#undef OP_FLAGS
};

unsigned op_flags(int op)
{
    return op >= 0 && op < OPK_COUNT ? op_flag[op] : 0;
}

const char *op_name(int op)
{
    return op >= 0 && op < OPK_COUNT ? op_names[op] : "unknown";
}

void hist_add(struct hist *h, uint64_t ns)
{
    uint64_t us = ns / 1000;
    int i = us == 0 ? 0 : 64 - __builtin_clzll(us);

    if (i >= HIST_BUCKETS)
        i = HIST_BUCKETS - 1;
    h->b[i]++;
    h->count++;
    h->sum_ns += ns;
    if (ns > h->max_ns)
        h->max_ns = ns;
}

double hist_quantile_us(const struct hist *h, double q)
{
    uint64_t want, seen = 0;

    if (h->count == 0)
        return 0;
    want = (uint64_t)(q * (double)h->count);
    if (want >= h->count)
        want = h->count - 1;
    for (int i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen > want) {
            double ub = (double)(1ull << i);
            double max_us = (double)h->max_ns / 1000.0;

            return ub < max_us ? ub : max_us;
        }
    }
    return (double)h->max_ns / 1000.0;
}

void stats_init(struct daemon_stats *s, uint64_t now_ns)
{
    memset(s, 0, sizeof(*s));
    s->start_ns = now_ns;
    s->win_start_ns = now_ns;
}

void stats_device_read(struct daemon_stats *s, uint64_t ns)
{
    hist_add(&s->dev_win[0], ns);
}

void stats_tick(struct daemon_stats *s, uint64_t now_ns, uint64_t io_errors)
{
    if (now_ns - s->win_start_ns < HEALTH_WINDOW_NS)
        return;
    s->dev_win[1] = s->dev_win[0];
    memset(&s->dev_win[0], 0, sizeof(s->dev_win[0]));
    s->io_errors_base[1] = s->io_errors_base[0];
    s->io_errors_base[0] = io_errors;
    s->win_start_ns = now_ns;
}

void stats_health(const struct daemon_stats *s, uint64_t io_errors,
                  unsigned latency_ms, unsigned errors, int stopping,
                  struct health *out)
{
    struct hist both = s->dev_win[0];

    for (int i = 0; i < HIST_BUCKETS; i++)
        both.b[i] += s->dev_win[1].b[i];
    both.count += s->dev_win[1].count;
    if (s->dev_win[1].max_ns > both.max_ns)
        both.max_ns = s->dev_win[1].max_ns;
    memset(out, 0, sizeof(*out));
    out->device_read_p99_ms = hist_quantile_us(&both, 0.99) / 1000.0;
    out->io_errors_window = io_errors - s->io_errors_base[1];
    if (stopping) {
        out->state = HEALTH_DOWN;
        snprintf(out->reason, sizeof(out->reason), "shutting down");
    } else if (out->io_errors_window >= errors) {
        out->state = HEALTH_DEGRADED;
        snprintf(out->reason, sizeof(out->reason),
                 "%llu device I/O errors in the last window",
                 (unsigned long long)out->io_errors_window);
    } else if (both.count >= 10 && out->device_read_p99_ms > latency_ms) {
        out->state = HEALTH_DEGRADED;
        snprintf(out->reason, sizeof(out->reason),
                 "device read p99 %.1f ms over %u ms",
                 out->device_read_p99_ms, latency_ms);
    }
}

void sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        size_t room = b->cap - b->len;

        va_start(ap, fmt);
        n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = b->cap ? b->cap * 2 : 4096;
        while (ncap - b->len <= (size_t)n)
            ncap *= 2;
        char *np = realloc(b->p, ncap);
        if (np == NULL)
            return;
        b->p = np;
        b->cap = ncap;
    }
}

void sbuf_free(struct sbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* One counter or gauge line with its HELP and TYPE. */
static void prom(struct sbuf *b, const char *name, const char *type,
                 const char *help, uint64_t v)
{
    sbuf_printf(b, "# HELP kvcached_%s %s\n# TYPE kvcached_%s %s\n"
                "kvcached_%s %llu\n", name, help, name, type, name,
                (unsigned long long)v);
}

void stats_prometheus(struct sbuf *b, const struct daemon_stats *s,
                      const struct store_stats *ss, const struct health *h,
                      uint64_t now_ns)
{
    prom(b, "uptime_seconds", "gauge", "Seconds since start",
         (now_ns - s->start_ns) / 1000000000ull);
    prom(b, "items", "gauge", "Live blocks", ss->items);
    prom(b, "item_bytes", "gauge", "Live block bytes", ss->bytes);
    prom(b, "index_bytes", "gauge", "DRAM of the index", ss->index_bytes);
    prom(b, "index_entry_bytes", "gauge", "Index DRAM per block",
         ss->index_entry_bytes);
    prom(b, "memory_slabs", "gauge", "Memory slabs", ss->mem_slabs);
    prom(b, "memory_slabs_free", "gauge", "Free memory slabs",
         ss->mem_slabs_free);
    prom(b, "ssd_slabs", "gauge", "Slabs on the device", ss->ssd_slabs);
    prom(b, "ssd_slabs_free", "gauge", "Free device slabs", ss->ssd_slabs_free);
    prom(b, "puts_total", "counter", "Blocks stored", ss->puts);
    prom(b, "puts_exists_total", "counter", "Puts of present blocks",
         ss->puts_exists);
    prom(b, "puts_rejected_total", "counter", "Puts refused", ss->puts_rejected);
    prom(b, "puts_skipped_total", "counter", "Puts not admitted to the SSD",
         ss->puts_skipped);
    prom(b, "put_bytes_total", "counter", "Bytes stored", ss->put_bytes);
    prom(b, "gets_total", "counter", "Keys asked for", ss->gets);
    prom(b, "hits_total", "counter", "Keys found", ss->hits);
    prom(b, "hits_memory_total", "counter", "Keys found in DRAM", ss->hits_mem);
    prom(b, "misses_total", "counter", "Keys not found", ss->misses);
    prom(b, "hit_bytes_total", "counter", "Bytes of hits", ss->hit_bytes);
    prom(b, "miss_bytes_total", "counter", "Bytes of misses (known sizes)",
         s->miss_bytes);
    prom(b, "deletes_total", "counter", "Deletes", ss->deletes);
    prom(b, "evictions_total", "counter", "Slabs reclaimed", ss->evictions);
    prom(b, "evicted_items_total", "counter", "Blocks evicted",
         ss->evicted_items);
    prom(b, "flushes_total", "counter", "Memory slabs written", ss->flushes);
    prom(b, "device_written_bytes_total", "counter", "Bytes written to device",
         ss->bytes_written);
    prom(b, "device_read_bytes_total", "counter", "Bytes read from device",
         ss->bytes_read);
    prom(b, "checksum_failures_total", "counter", "Verification failures",
         ss->checksum_failures);
    prom(b, "io_errors_total", "counter", "Device I/O errors", ss->io_errors);
    prom(b, "connections", "gauge", "Open connections", s->conns);
    prom(b, "connections_total", "counter", "Accepted connections",
         s->conns_total);
    prom(b, "connections_rejected_total", "counter", "Over --conns",
         s->conns_rejected);
    prom(b, "network_in_bytes_total", "counter", "Bytes received", s->bytes_in);
    prom(b, "network_out_bytes_total", "counter", "Bytes sent", s->bytes_out);
    prom(b, "requests_total", "counter", "Requests decoded", s->requests);
    prom(b, "protocol_errors_total", "counter", "Bad frames or messages",
         s->protocol_errors);
    prom(b, "limit_errors_total", "counter", "Requests over a limit",
         s->limit_errors);
    prom(b, "idle_closed_total", "counter", "Idle connections closed",
         s->idle_closed);
    prom(b, "busy_retries_total", "counter", "Put reservations retried",
         s->busy_retries);
    prom(b, "inflight_peak_bytes", "gauge",
         "Highest bytes of requests in flight (--read-inflight)",
         s->inflight_peak);
    prom(b, "budget_waits_total", "counter",
         "Gets that waited for the in-flight budget", s->budget_waits);
    prom(b, "quota_refused_total", "counter",
         "Blocks refused: their namespace would go over --ns-max-bytes",
         s->quota_refused);
    prom(b, "put_self_evicted_total", "counter",
         "Put items evicted by later items of the same request",
         s->put_evicted);
    prom(b, "send_timeouts_total", "counter",
         "Connections closed because they did not take their answers",
         s->send_timeouts);
    prom(b, "put_timeouts_total", "counter",
         "Puts cancelled because their data arrived too slowly",
         s->put_timeouts);
    /* the shared-memory path */
    prom(b, "shm_attached_total", "counter",
         "Connections given the shared region", s->shm_attached);
    prom(b, "leases_total", "counter", "Get batches answered by reference",
         s->leases);
    prom(b, "leases_expired_total", "counter",
         "Leases ended by the timeout instead of a release", s->leases_expired);
    prom(b, "leased_bytes", "gauge", "Block bytes held by reference now",
         s->leased_bytes);
    prom(b, "ref_inline_blocks_total", "counter",
         "Blocks of gets by reference sent as bytes (outside the region)",
         s->ref_inline_blocks);
    prom(b, "staged_puts_total", "counter",
         "Blocks put from a staging area", s->staged_puts);
    /* the memcache port */
    prom(b, "memcache_connections_total", "counter",
         "Connections accepted on the memcache port", s->mc_conns_total);
    prom(b, "memcache_get_keys_total", "counter",
         "Keys asked for by get, gets and mg", s->mc_get_keys);
    prom(b, "memcache_get_hits_total", "counter",
         "Of them answered with a value", s->mc_get_hits);
    prom(b, "memcache_sets_total", "counter", "set, add, replace and ms",
         s->mc_sets);
    prom(b, "memcache_errors_total", "counter",
         "ERROR, CLIENT_ERROR and SERVER_ERROR replies", s->mc_errors);
    prom(b, "health", "gauge", "0 ok, 1 degraded, 2 down", (uint64_t)h->state);
    sbuf_printf(b, "# HELP kvcached_request_duration_seconds Request latency\n"
                "# TYPE kvcached_request_duration_seconds histogram\n");
    for (int op = 0; op < OPK_COUNT; op++) {
        const struct hist *hh = &s->op[op];
        uint64_t cum = 0;

        if (hh->count == 0)
            continue;
        for (int i = 0; i < HIST_BUCKETS; i++) {
            cum += hh->b[i];
            if (hh->b[i] == 0 && i != HIST_BUCKETS - 1)
                continue;
            sbuf_printf(b, "kvcached_request_duration_seconds_bucket"
                        "{op=\"%s\",le=\"%g\"} %llu\n", op_names[op],
                        (double)(1ull << i) / 1e6, (unsigned long long)cum);
        }
        sbuf_printf(b, "kvcached_request_duration_seconds_bucket"
                    "{op=\"%s\",le=\"+Inf\"} %llu\n"
                    "kvcached_request_duration_seconds_sum{op=\"%s\"} %.9f\n"
                    "kvcached_request_duration_seconds_count{op=\"%s\"} %llu\n",
                    op_names[op], (unsigned long long)hh->count, op_names[op],
                    (double)hh->sum_ns / 1e9, op_names[op],
                    (unsigned long long)hh->count);
    }
}
