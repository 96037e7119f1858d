/*
 * test_units.c - unit tests of daemon modules that need no socket: the
 * option table (sizes, bounds, short and long forms), latency histograms,
 * and the health verdict (latency, I/O errors, stopping, window expiry).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/kc_opts.h"
#include "daemon/kc_stats.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", \
    __FILE__, __LINE__, #c); exit(1); } } while (0)

static int parse(struct options *o, const char *const *args)
{
    char *argv[32];
    int argc = 0;

    argv[argc++] = "kvcached";
    for (int i = 0; args[i]; i++)
        argv[argc++] = (char *)args[i];
    argv[argc] = NULL;
    opts_default(o);
    return opts_parse(o, argc, argv);
}

/* Bug "threads_on_block_device": -D /dev/X -t 2 wrote regular files
 * /dev/X.0 and /dev/X.1 on devtmpfs (RAM) with only a warning, and -S 0 with
 * threads failed to start without saying why.  Both are refused by
 * opts_check with a clear message now. */
static void test_threads_on_block_device(void)
{
    static const char *const blockdev[] = { "-D", "/dev/null", "-t", "2", NULL };
    static const char *const size0[] = { "-D", "/tmp/kc-never.store", "-t", "2",
                                         "-S", "0", NULL };
    static const char *const one[] = { "-D", "/dev/null", "-t", "1", NULL };
    struct options o;

    CHECK(parse(&o, blockdev) == 0);
    CHECK(opts_check(&o) < 0);
    CHECK(parse(&o, size0) == 0);
    CHECK(opts_check(&o) < 0);
    CHECK(parse(&o, one) == 0);
    CHECK(opts_check(&o) == 0);   /* one instance opens the device itself */
}

static void test_opts(void)
{
    static const char *const good[] = { "-p", "0", "--no-auth", "--socket", "/x.sock",
        "-S", "2g", "--slab-size", "8m", "-m", "64", "-vv", "--fresh",
        "--metrics-port=9100", "--max-batch", "10", NULL };
    static const char *const bad_range[] = { "-p", "70000", NULL };
    static const char *const bad_size[] = { "-S", "12q", NULL };
    static const char *const bad_opt[] = { "--nope", NULL };
    struct options o;
    uint64_t v;

    CHECK(opts_parse_size("4k", &v) == 0 && v == 4096);
    CHECK(opts_parse_size("3M", &v) == 0 && v == 3u << 20);
    CHECK(opts_parse_size("1g", &v) == 0 && v == 1u << 30);
    CHECK(opts_parse_size("1GB", &v) == 0 && v == 1u << 30);
    CHECK(opts_parse_size("77", &v) == 0 && v == 77);
    CHECK(opts_parse_size("-1", &v) < 0);
    CHECK(opts_parse_size("", &v) < 0);
    CHECK(opts_parse_size("99999999999999999999t", &v) < 0);
    CHECK(parse(&o, good) == 0);
    CHECK(o.port == 0 && strcmp(o.socket, "/x.sock") == 0);
    CHECK(o.device_size == 2ull << 30 && o.slab_size == 8u << 20);
    CHECK(o.memory_mib == 64 && o.verbose == 2 && o.fresh);
    CHECK(o.metrics_port == 9100 && o.max_batch == 10 && o.no_auth);
    CHECK(opts_check(&o) == 0);
    o.no_auth = false;            /* TCP without a token: refused */
    CHECK(opts_check(&o) < 0);
    o.token_file = "/x.token";
    CHECK(opts_check(&o) == 0);
    o.slab_size = (8u << 20) + 1;
    CHECK(opts_check(&o) < 0);
    fprintf(stderr, "(three refusals expected below)\n");
    CHECK(parse(&o, bad_range) < 0);
    CHECK(parse(&o, bad_size) < 0);
    CHECK(parse(&o, bad_opt) < 0);
}

static void test_hist(void)
{
    struct hist h;

    memset(&h, 0, sizeof(h));
    CHECK(hist_quantile_us(&h, 0.99) == 0);
    for (int i = 0; i < 99; i++)
        hist_add(&h, 100000);          /* 100 us */
    hist_add(&h, 50000000);            /* 50 ms */
    CHECK(h.count == 100);
    CHECK(hist_quantile_us(&h, 0.5) >= 100 && hist_quantile_us(&h, 0.5) <= 128);
    CHECK(hist_quantile_us(&h, 1.0) >= 50000);
}

static void test_health(void)
{
    const uint64_t s = 1000000000ull;
    struct daemon_stats st;
    struct health h;

    stats_init(&st, 0);
    stats_health(&st, 0, 50, 1, 0, &h);
    CHECK(h.state == HEALTH_OK);
    /* slow device reads: degraded */
    for (int i = 0; i < 20; i++)
        stats_device_read(&st, 200 * 1000000ull);
    stats_health(&st, 0, 50, 1, 0, &h);
    CHECK(h.state == HEALTH_DEGRADED && strstr(h.reason, "p99"));
    /* two windows later the slow reads have aged out */
    stats_tick(&st, 11 * s, 0);
    stats_health(&st, 0, 50, 1, 0, &h);
    CHECK(h.state == HEALTH_DEGRADED);
    stats_tick(&st, 22 * s, 0);
    stats_health(&st, 0, 50, 1, 0, &h);
    CHECK(h.state == HEALTH_OK);
    /* an I/O error: degraded until it ages out */
    stats_health(&st, 1, 50, 1, 0, &h);
    CHECK(h.state == HEALTH_DEGRADED && h.io_errors_window == 1);
    stats_tick(&st, 33 * s, 1);
    stats_tick(&st, 44 * s, 1);
    stats_health(&st, 1, 50, 1, 0, &h);
    CHECK(h.state == HEALTH_OK);
    /* stopping: down */
    stats_health(&st, 1, 50, 1, 1, &h);
    CHECK(h.state == HEALTH_DOWN);
}

int main(void)
{
    test_opts();
    test_threads_on_block_device();
    test_hist();
    test_health();
    printf("test_units: ok\n");
    return 0;
}
