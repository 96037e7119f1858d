/*
 * test_units.c - unit tests of the load generator's pieces: latency
 * histograms (bucket bounds, quantiles, merge) and the trace reader.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kb_hist.h"
#include "kb_trace.h"

static int failures;

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                        \
        }                                                                      \
    } while (0)

/* Every value falls in a bucket whose bounds hold it, within 1/32. */
static void test_buckets(void)
{
    uint64_t v = 1;
    for (int i = 0; i < 2000; i++, v = v * 1.013 + 1) {
        unsigned b = kb_hist_bucket(v);
        uint64_t lo = kb_hist_bucket_low(b), hi = kb_hist_bucket_low(b + 1);
        CHECK(b + 1 < KB_HIST_BUCKETS);
        CHECK(lo <= v && v < hi);
        CHECK(hi - lo <= lo / 32 + 1);
        if (v > (1ull << 40))
            break;
    }
    CHECK(kb_hist_bucket(UINT64_MAX) == KB_HIST_BUCKETS - 1);
}

static void test_quantiles(void)
{
    static struct kb_hist h, a, b;
    memset(&h, 0, sizeof(h));
    CHECK(kb_hist_quantile(&h, 0.5) == 0);
    /* 1..10000 us: p50 ~ 5 ms, p99 ~ 9.9 ms, p999 ~ 9.99 ms, within 3% */
    for (uint64_t i = 1; i <= 10000; i++)
        kb_hist_add(i % 2 ? &a : &b, i * 1000);
    kb_hist_merge(&h, &a);
    kb_hist_merge(&h, &b);
    CHECK(h.count == 10000 && h.max_ns == 10000000);
    double p50 = (double)kb_hist_quantile(&h, 0.5), p99 = (double)kb_hist_quantile(&h, 0.99);
    double p999 = (double)kb_hist_quantile(&h, 0.999);
    CHECK(p50 > 5e6 * 0.97 && p50 < 5e6 * 1.03);
    CHECK(p99 > 9.9e6 * 0.97 && p99 < 9.9e6 * 1.03);
    CHECK(p999 > 9.99e6 * 0.97 && p999 <= 1e7);
    CHECK(kb_hist_quantile(&h, 1.0) <= h.max_ns);
    /* a single value: every quantile is about it */
    memset(&h, 0, sizeof(h));
    kb_hist_add(&h, 123456);
    CHECK(kb_hist_quantile(&h, 0.0) <= 123456 && kb_hist_quantile(&h, 0.999) <= 123456);
    CHECK(kb_hist_quantile(&h, 0.5) > 123456 * 0.97);
}

static void test_trace_line(void)
{
    struct kb_trace_req r;
    uint32_t ids[16];
    const char *err;
    CHECK(kb_trace_parse_line("{\"timestamp\": 12, \"input_length\": 1100, \"output_length\": 5,"
                              " \"hash_ids\": [4, 7, 9]}", &r, ids, 16, &err) == 0);
    CHECK(r.ts_ms == 12 && r.input_len == 1100 && r.output_len == 5 && r.nids == 3);
    CHECK(r.nfull == 2 && ids[0] == 4 && ids[2] == 9);
    /* key order does not matter, spaces neither, empty list is fine */
    CHECK(kb_trace_parse_line("{\"hash_ids\":[],\"input_length\":3,\"timestamp\":1.0}", &r, ids,
                              16, &err) == 0);
    CHECK(r.nids == 0 && r.nfull == 0 && r.ts_ms == 1);
    CHECK(kb_trace_parse_line("{\"timestamp\": 1, \"hash_ids\": [1]}", &r, ids, 16, &err) < 0);
    CHECK(kb_trace_parse_line("{\"timestamp\": 1, \"input_length\": 9, \"hash_ids\": [1, x]}",
                              &r, ids, 16, &err) < 0);
    CHECK(kb_trace_parse_line("{\"timestamp\": 1, \"input_length\": 9, \"hash_ids\": [1,2,3]}",
                              &r, ids, 2, &err) < 0);
}

static void test_trace_file(void)
{
    char path[] = "/tmp/kb-trace-XXXXXX", err[256];
    struct kb_trace t;
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    for (int i = 0; i < 3000; i++)   /* enough to grow every buffer */
        fprintf(f, "{\"timestamp\": %d, \"input_length\": 2048, \"hash_ids\": [%d, %d, %d, %d]}\n",
                i, 0, i, i + 1, i + 2);
    fprintf(f, "\n");
    fclose(f);
    CHECK(kb_trace_load(path, &t, err, sizeof(err)) == 0);
    CHECK(t.nreqs == 3000 && t.nids == 12000 && t.max_blocks == 4 && t.max_id == 3001);
    CHECK(t.reqs[2999].ids[1] == 2999 && t.reqs[2999].nfull == 4 && t.reqs[5].ts_ms == 5);
    kb_trace_free(&t);
    f = fopen(path, "a");
    fprintf(f, "{\"timestamp\": 1}\n");
    fclose(f);
    CHECK(kb_trace_load(path, &t, err, sizeof(err)) < 0 && strstr(err, ":3002:") != NULL);
    unlink(path);
    CHECK(kb_trace_load("/nonexistent/trace", &t, err, sizeof(err)) < 0);
}

int main(void)
{
    test_buckets();
    test_quantiles();
    test_trace_line();
    test_trace_file();
    if (failures) {
        fprintf(stderr, "%d checks failed\n", failures);
        return 1;
    }
    printf("all ok\n");
    return 0;
}
