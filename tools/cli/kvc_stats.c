/*
 * kvc_stats.c - `kvcache stats`, `kvcache top`, `kvcache health`.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kvc_json.h"
#include "kvc_rpc.h"

static const struct kvc_cmd stats_cmd = {
    "stats", NULL, "Counters of a running daemon, as a table (or --json: every field of\n"
    "the Stats RPC, names as in proto/kvcache.proto).", NULL, NULL,
};

static double ratio(uint64_t a, uint64_t b)
{
    return b ? (double)a / (double)b : 0.0;
}

/* The table of `kvcache stats`. */
static void stats_table(const Kvcache__StatsResponse *s)
{
    char a[32], b[32], c[32], d[32];
    uint64_t asked = s->hits + s->misses;

    printf("uptime %llu s, %llu connections open (%llu since start, %llu rejected)\n",
           (unsigned long long)s->uptime_s, (unsigned long long)s->connections,
           (unsigned long long)s->connections_total, (unsigned long long)s->connections_rejected);
    printf("%-12s %s blocks, %s\n", "stored", kvc_count(a, sizeof(a), (double)s->items),
           kvc_bytes(b, sizeof(b), (double)s->bytes));
    printf("%-12s %.4f (%s hits, %.1f%% of them from DRAM; %s misses)\n", "hit ratio",
           ratio(s->hits, asked), kvc_count(a, sizeof(a), (double)s->hits),
           100 * ratio(s->hits_mem, s->hits), kvc_count(b, sizeof(b), (double)s->misses));
    printf("%-12s %llu memory slabs (%llu free), %s; index %s for %s entries of %u B\n",
           "DRAM", (unsigned long long)s->mem_slabs, (unsigned long long)s->mem_slabs_free,
           kvc_bytes(a, sizeof(a), (double)s->mem_bytes),
           kvc_bytes(b, sizeof(b), (double)s->index_bytes),
           kvc_count(c, sizeof(c), (double)s->index_capacity), s->index_entry_bytes);
    printf("%-12s %llu slabs of %s, %llu used, %llu free; device %s\n", "SSD",
           (unsigned long long)s->ssd_slabs, kvc_bytes(a, sizeof(a), (double)s->slab_size),
           (unsigned long long)(s->ssd_slabs - s->ssd_slabs_free),
           (unsigned long long)s->ssd_slabs_free, kvc_bytes(b, sizeof(b), (double)s->device_size));
    printf("%-12s %s stored (%s), %s already present, %s rejected\n", "puts",
           kvc_count(a, sizeof(a), (double)s->puts), kvc_bytes(b, sizeof(b), (double)s->put_bytes),
           kvc_count(c, sizeof(c), (double)s->puts_exists),
           kvc_count(d, sizeof(d), (double)s->puts_rejected));
    printf("%-12s %s keys asked, %s returned, %s deleted\n", "gets",
           kvc_count(a, sizeof(a), (double)s->gets), kvc_bytes(b, sizeof(b), (double)s->hit_bytes),
           kvc_count(c, sizeof(c), (double)s->deletes));
    printf("%-12s %llu slabs, %s live blocks dropped\n", "evictions",
           (unsigned long long)s->evictions, kvc_count(a, sizeof(a), (double)s->evicted_items));
    printf("%-12s %s written in %llu slab flushes, %s read\n", "device I/O",
           kvc_bytes(a, sizeof(a), (double)s->bytes_written), (unsigned long long)s->flushes,
           kvc_bytes(b, sizeof(b), (double)s->bytes_read));
    printf("%-12s %llu checksum failures, %llu I/O errors\n", "integrity",
           (unsigned long long)s->checksum_failures, (unsigned long long)s->io_errors);
    printf("%-12s %s in, %s out, %s requests; %llu protocol errors, %llu over limits, "
           "%llu idle closed\n", "network", kvc_bytes(a, sizeof(a), (double)s->bytes_in),
           kvc_bytes(b, sizeof(b), (double)s->bytes_out),
           kvc_count(c, sizeof(c), (double)s->requests), (unsigned long long)s->protocol_errors,
           (unsigned long long)s->limit_errors, (unsigned long long)s->idle_closed);
    if (s->n_latency) {
        printf("\n%-16s %12s %8s %10s %10s %10s\n", "latency (us)", "count", "errors", "p50",
               "p99", "max");
        for (size_t i = 0; i < s->n_latency; i++) {
            const Kvcache__OpLatency *l = s->latency[i];
            if (l->count == 0)
                continue;
            printf("%-16s %12llu %8llu %10.1f %10.1f %10.1f\n", l->op,
                   (unsigned long long)l->count, (unsigned long long)l->errors, l->p50_us,
                   l->p99_us, l->max_us);
        }
    }
}

int cmd_stats(struct kvc_ctx *x, int argc, char **argv)
{
    struct kvc_rpc *r;
    Kvcache__Response *resp;
    int rc, first;

    if ((rc = kvc_parse(x, &stats_cmd, argc, argv, &first)) >= 0)
        return rc;
    if (first < argc) {
        kvc_err("stats", "no arguments expected");
        return KVC_EXIT_USAGE;
    }
    if ((r = kvc_rpc_open(x, "stats", &rc)) == NULL)
        return rc;
    if ((rc = kvc_rpc_stats(r, &resp)) != 0) {
        rc = kvc_rpc_fail(r, "stats", rc, resp);
        kvc_rpc_destroy(r);
        return rc;
    }
    if (x->json) {
        kvc_json_msg(stdout, &resp->stats->base);
        putchar('\n');
    } else {
        stats_table(resp->stats);
    }
    kvcache__response__free_unpacked(resp, NULL);
    kvc_rpc_destroy(r);
    return KVC_EXIT_OK;
}

/* ---- top ---- */

static long top_count, top_interval_ms = 1000;
static bool top_once;
static const struct kvc_opt top_opts[] = {
    { "interval", 'i', "MS", "refresh period (default 1000)", NULL, &top_interval_ms, NULL },
    { "count", 'n', "N", "stop after N refreshes (default: until interrupted)", NULL,
      &top_count, NULL },
    { "batch", 'b', NULL, "no screen clearing: append each refresh (for logs)", NULL, NULL,
      &top_once },
    { 0 },
};
static const struct kvc_cmd top_cmd = {
    "top", NULL, "Refresh every second with rates (requests, hits, bytes in and out of the\n"
    "device and the network) and the gauges that matter.",
    "With --json, one JSON object a line per refresh: {\"t\": seconds, \"rates\": {...},\n"
    "\"stats\": {...}} where rates are per second over the last interval.",
    top_opts,
};

static volatile sig_atomic_t top_stop;
static void on_int(int sig)
{
    (void)sig;
    top_stop = 1;
}

/* A rate of counter f between two Stats. */
#define RATE(cur, prev, f, dt) ((double)((cur)->f - (prev)->f) / (dt))

int cmd_top(struct kvc_ctx *x, int argc, char **argv)
{
    struct kvc_rpc *r;
    Kvcache__Response *prev = NULL, *cur = NULL;
    struct timespec t0, t1;
    int rc, first;
    bool tty;

    if ((rc = kvc_parse(x, &top_cmd, argc, argv, &first)) >= 0)
        return rc;
    if (first < argc || top_interval_ms < 10 || top_count < 0) {
        kvc_err("top", "bad arguments (see --help)");
        return KVC_EXIT_USAGE;
    }
    if ((r = kvc_rpc_open(x, "top", &rc)) == NULL)
        return rc;
    signal(SIGINT, on_int);
    signal(SIGTERM, on_int);
    tty = isatty(1) && !top_once && !x->json;
    if ((rc = kvc_rpc_stats(r, &prev)) != 0)
        goto fail;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long n = 0; !top_stop && (top_count == 0 || n < top_count); n++) {
        usleep((useconds_t)top_interval_ms * 1000);
        if ((rc = kvc_rpc_stats(r, &cur)) != 0)
            goto fail;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double dt = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
        const Kvcache__StatsResponse *c = cur->stats, *p = prev->stats;
        double gets = RATE(c, p, gets, dt), hits = RATE(c, p, hits, dt);
        if (x->json) {
            printf("{\"t\": %.3f, \"rates\": {\"requests\": %.1f, \"gets\": %.1f, \"hits\": %.1f, "
                   "\"hits_mem\": %.1f, \"puts\": %.1f, \"hit_bytes\": %.0f, \"put_bytes\": %.0f, "
                   "\"bytes_read\": %.0f, \"bytes_written\": %.0f, \"bytes_in\": %.0f, "
                   "\"bytes_out\": %.0f, \"evictions\": %.2f}, \"stats\": ",
                   (double)n * (double)top_interval_ms / 1000 + dt,
                   RATE(c, p, requests, dt), gets, hits, RATE(c, p, hits_mem, dt),
                   RATE(c, p, puts, dt), RATE(c, p, hit_bytes, dt), RATE(c, p, put_bytes, dt),
                   RATE(c, p, bytes_read, dt), RATE(c, p, bytes_written, dt),
                   RATE(c, p, bytes_in, dt), RATE(c, p, bytes_out, dt),
                   RATE(c, p, evictions, dt));
            kvc_json_msg(stdout, &c->base);
            printf("}\n");
        } else {
            char a[32], b[32], e[32], f[32];
            if (tty)
                printf("\033[H\033[2J");
            printf("kvcached %s  up %llu s  %llu conns\n", x->server,
                   (unsigned long long)c->uptime_s, (unsigned long long)c->connections);
            printf("requests/s %10.0f   gets/s %10.0f   hit %6.4f (window)  %6.4f (total)\n",
                   RATE(c, p, requests, dt), gets, gets > 0 ? hits / gets : 0.0,
                   ratio(c->hits, c->hits + c->misses));
            printf("puts/s     %10.0f   evictions/s %7.2f   DRAM hits %5.1f%%\n",
                   RATE(c, p, puts, dt), RATE(c, p, evictions, dt),
                   hits > 0 ? 100 * RATE(c, p, hits_mem, dt) / hits : 0.0);
            printf("net in  %10s/s  out %10s/s    device read %10s/s  written %10s/s\n",
                   kvc_bytes(a, sizeof(a), RATE(c, p, bytes_in, dt)),
                   kvc_bytes(b, sizeof(b), RATE(c, p, bytes_out, dt)),
                   kvc_bytes(e, sizeof(e), RATE(c, p, bytes_read, dt)),
                   kvc_bytes(f, sizeof(f), RATE(c, p, bytes_written, dt)));
            printf("stored %s blocks, %s; SSD slabs %llu/%llu used; memory slabs %llu/%llu "
                   "free; checksum failures %llu, I/O errors %llu\n",
                   kvc_count(a, sizeof(a), (double)c->items), kvc_bytes(b, sizeof(b),
                   (double)c->bytes), (unsigned long long)(c->ssd_slabs - c->ssd_slabs_free),
                   (unsigned long long)c->ssd_slabs, (unsigned long long)c->mem_slabs_free,
                   (unsigned long long)c->mem_slabs, (unsigned long long)c->checksum_failures,
                   (unsigned long long)c->io_errors);
            if (!tty)
                putchar('\n');
        }
        fflush(stdout);
        kvcache__response__free_unpacked(prev, NULL);
        prev = cur;
        cur = NULL;
        t0 = t1;
    }
    kvcache__response__free_unpacked(prev, NULL);
    kvc_rpc_destroy(r);
    return KVC_EXIT_OK;
fail:
    if (prev)
        kvcache__response__free_unpacked(prev, NULL);
    rc = kvc_rpc_fail(r, "top", rc, cur);
    kvc_rpc_destroy(r);
    return rc;
}

/* ---- health ---- */

static const struct kvc_cmd health_cmd = {
    "health", NULL, "The daemon's health: OK, DEGRADED (slow or failing device reads) or\n"
    "DOWN. Exit 0 when OK, 1 otherwise, 5 when it does not answer.", NULL, NULL,
};

int cmd_health(struct kvc_ctx *x, int argc, char **argv)
{
    struct kvc_rpc *r;
    Kvcache__Response *resp;
    int rc, first;

    if ((rc = kvc_parse(x, &health_cmd, argc, argv, &first)) >= 0)
        return rc;
    if ((r = kvc_rpc_open(x, "health", &rc)) == NULL)
        return rc;
    if ((rc = kvc_rpc_health(r, &resp)) != 0) {
        rc = kvc_rpc_fail(r, "health", rc, resp);
        kvc_rpc_destroy(r);
        return rc;
    }
    const Kvcache__HealthResponse *h = resp->health;
    if (x->json) {
        kvc_json_msg(stdout, &h->base);
        putchar('\n');
    } else {
        const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
            &kvcache__health_response__state__descriptor, h->state);
        printf("%s%s%s (device read p99 %.2f ms, %llu I/O errors in the window, up %llu s)\n",
               v ? v->name : "?", h->reason && *h->reason ? ": " : "", h->reason ? h->reason : "",
               h->device_read_p99_ms, (unsigned long long)h->io_errors_window,
               (unsigned long long)h->uptime_s);
    }
    rc = h->state == KVCACHE__HEALTH_RESPONSE__STATE__OK ? KVC_EXIT_OK : KVC_EXIT_ERROR;
    kvcache__response__free_unpacked(resp, NULL);
    kvc_rpc_destroy(r);
    return rc;
}
