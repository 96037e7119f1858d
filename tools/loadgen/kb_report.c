/*
 * kb_report.c - the live progress line and the summaries (text and JSON).
 *
 * Figures: ops/s counts requests of each kind; GB/s is block bytes moved
 * (received by gets, sent by puts) per second, 1 GB = 1e9 bytes; latency is
 * per request, from sending it to having every byte of the answer.
 * block hit ratio = blocks found / blocks asked (every get);
 * prefix hit ratio = the mean over gets of (leading run found / asked).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kb_bench.h"

static const char *op_names[KB_NOPS] = { "get", "put" };
static const char *wl_names[] = { "random", "chat", "trace" };

void kb_stat_merge(struct kb_stat *dst, const struct kb_stat *src)
{
    for (int i = 0; i < KB_NOPS; i++) {
        kb_hist_merge(&dst->op[i].h, &src->op[i].h);
        dst->op[i].blocks += src->op[i].blocks;
        dst->op[i].bytes += src->op[i].bytes;
        dst->op[i].errors += src->op[i].errors;
    }
    dst->requests += src->requests;
    dst->asked += src->asked;
    dst->hit += src->hit;
    dst->prefix_sum += src->prefix_sum;
    dst->prefix_n += src->prefix_n;
    dst->tokens += src->tokens;
    dst->hit_tokens += src->hit_tokens;
    dst->verify_fail += src->verify_fail;
    dst->retries += src->retries;
}

/* Totals of the counters the progress line shows (read while the threads
 * write them: a figure may be one request behind, never wrong for long). */
struct snap {
    uint64_t n[KB_NOPS], bytes, asked, hit;
};

static void take_snap(const struct kb_run *r, struct snap *s)
{
    memset(s, 0, sizeof(*s));
    for (unsigned i = 0; i < r->cfg.conns; i++) {
        const struct kb_stat *st = &r->th[i].st;
        for (int o = 0; o < KB_NOPS; o++) {
            s->n[o] += __atomic_load_n(&st->op[o].h.count, __ATOMIC_RELAXED);
            s->bytes += __atomic_load_n(&st->op[o].bytes, __ATOMIC_RELAXED);
        }
        s->asked += __atomic_load_n(&st->asked, __ATOMIC_RELAXED);
        s->hit += __atomic_load_n(&st->hit, __ATOMIC_RELAXED);
    }
}

static void *progress_main(void *arg)
{
    struct kb_run *r = arg;
    struct snap prev, cur;
    double tprev = kb_now();

    take_snap(r, &prev);
    pthread_mutex_lock(&r->prog_mu);
    while (r->prog_on) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&r->prog_cv, &r->prog_mu, &ts);
        if (!r->prog_on)
            break;
        double now = kb_now(), dt = now - tprev;
        take_snap(r, &cur);
        fprintf(stderr, "\r\033[K%-4s %6.1fs  get %8.0f/s  put %8.0f/s  %6.2f GB/s  hit %5.3f",
                r->prog_phase, now - r->t0, (double)(cur.n[0] - prev.n[0]) / dt,
                (double)(cur.n[1] - prev.n[1]) / dt, (double)(cur.bytes - prev.bytes) / dt / 1e9,
                cur.asked ? (double)cur.hit / (double)cur.asked : 0.0);
        prev = cur;
        tprev = now;
    }
    pthread_mutex_unlock(&r->prog_mu);
    return NULL;
}

void kb_progress_start(struct kb_run *r, const char *phase)
{
    bool on = r->cfg.progress < 0 ? isatty(2) : r->cfg.progress > 0;
    r->prog_on = false;
    if (!on)
        return;
    r->prog_phase = phase;
    pthread_mutex_init(&r->prog_mu, NULL);
    pthread_cond_init(&r->prog_cv, NULL);
    r->prog_on = true;
    if (pthread_create(&r->prog_tid, NULL, progress_main, r) != 0)
        r->prog_on = false;
}

void kb_progress_stop(struct kb_run *r)
{
    if (!r->prog_on)
        return;
    pthread_mutex_lock(&r->prog_mu);
    r->prog_on = false;
    pthread_cond_signal(&r->prog_cv);
    pthread_mutex_unlock(&r->prog_mu);
    pthread_join(r->prog_tid, NULL);
    pthread_mutex_destroy(&r->prog_mu);
    pthread_cond_destroy(&r->prog_cv);
    fprintf(stderr, "\r\033[K");
}

static double us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

void kb_report_text(const struct kb_run *r, const char *phase, const struct kb_stat *s,
                    double secs)
{
    const struct kb_cfg *c = &r->cfg;
    uint64_t bytes = 0;

    printf("%s: workload %s, %s, %u connections, %.1f s, block %u bytes\n", phase,
           wl_names[c->workload], c->target.proto == KB_MEMCACHE ? "memcache" : "kvcached",
           c->conns, secs, c->block);
    printf("  %-5s %10s %10s %8s %8s %9s %9s %9s %7s\n", "op", "requests", "req/s", "blocks/s",
           "GB/s", "p50 us", "p99 us", "p999 us", "errors");
    for (int o = 0; o < KB_NOPS; o++) {
        const struct kb_opstat *op = &s->op[o];
        if (op->h.count == 0)
            continue;
        bytes += op->bytes;
        printf("  %-5s %10llu %10.0f %8.0f %8.3f %9.0f %9.0f %9.0f %7llu\n", op_names[o],
               (unsigned long long)op->h.count, (double)op->h.count / secs,
               (double)op->blocks / secs, (double)op->bytes / secs / 1e9,
               us(kb_hist_quantile(&op->h, 0.5)), us(kb_hist_quantile(&op->h, 0.99)),
               us(kb_hist_quantile(&op->h, 0.999)), (unsigned long long)op->errors);
    }
    printf("  total %.3f GB/s, %llu requests", (double)bytes / secs / 1e9,
           (unsigned long long)s->requests);
    if (s->asked)
        printf(", block hit ratio %.4f, prefix hit ratio %.4f", (double)s->hit / (double)s->asked,
               s->prefix_n ? s->prefix_sum / (double)s->prefix_n : 0.0);
    if (s->tokens)
        printf(", prefix hit ratio in tokens %.4f", (double)s->hit_tokens / (double)s->tokens);
    if (s->retries)
        printf(", %llu retries", (unsigned long long)s->retries);
    if (c->verify)
        printf(", %llu blocks failed verification", (unsigned long long)s->verify_fail);
    printf("\n");
}

/* One phase as a JSON object. */
static void json_phase(const struct kb_stat *s, double secs)
{
    uint64_t bytes = 0, n = 0;
    printf("{\"seconds\": %.3f, \"requests\": %llu, \"ops\": {", secs,
           (unsigned long long)s->requests);
    bool first = true;
    for (int o = 0; o < KB_NOPS; o++) {
        const struct kb_opstat *op = &s->op[o];
        bytes += op->bytes;
        n += op->h.count;
        if (op->h.count == 0)
            continue;
        printf("%s\"%s\": {\"count\": %llu, \"ops_per_s\": %.1f, \"blocks\": %llu, "
               "\"bytes\": %llu, \"gb_per_s\": %.4f, \"mean_us\": %.1f, \"p50_us\": %.1f, "
               "\"p99_us\": %.1f, \"p999_us\": %.1f, \"max_us\": %.1f, \"errors\": %llu}",
               first ? "" : ", ", op_names[o], (unsigned long long)op->h.count,
               (double)op->h.count / secs, (unsigned long long)op->blocks,
               (unsigned long long)op->bytes, (double)op->bytes / secs / 1e9,
               us(op->h.sum_ns) / (double)op->h.count, us(kb_hist_quantile(&op->h, 0.5)),
               us(kb_hist_quantile(&op->h, 0.99)), us(kb_hist_quantile(&op->h, 0.999)),
               us(op->h.max_ns), (unsigned long long)op->errors);
        first = false;
    }
    printf("}, \"ops_per_s\": %.1f, \"gb_per_s\": %.4f, \"blocks_asked\": %llu, "
           "\"blocks_hit\": %llu, \"block_hit_ratio\": %.5f, \"prefix_hit_ratio\": %.5f, "
           "\"prefix_token_hit_ratio\": %.5f, "
           "\"errors\": %llu, \"verify_failures\": %llu, \"retries\": %llu}",
           (double)n / secs, (double)bytes / secs / 1e9, (unsigned long long)s->asked,
           (unsigned long long)s->hit, s->asked ? (double)s->hit / (double)s->asked : 0.0,
           s->prefix_n ? s->prefix_sum / (double)s->prefix_n : 0.0,
           s->tokens ? (double)s->hit_tokens / (double)s->tokens : 0.0,
           (unsigned long long)(s->op[0].errors + s->op[1].errors),
           (unsigned long long)s->verify_fail, (unsigned long long)s->retries);
}

void kb_report_json(const struct kb_run *r, const struct kb_stat *fill, double fill_secs,
                    const struct kb_stat *s, double secs)
{
    const struct kb_cfg *c = &r->cfg;
    printf("{\"workload\": \"%s\", \"protocol\": \"%s\", \"conns\": %u, \"block_bytes\": %u, "
           "\"batch\": %u, \"seed\": %llu, ", wl_names[c->workload],
           c->target.proto == KB_MEMCACHE ? "memcache" : "kvcached", c->conns, c->block,
           c->batch, (unsigned long long)c->seed);
    if (fill) {
        printf("\"fill\": ");
        json_phase(fill, fill_secs);
        printf(", ");
    }
    printf("\"run\": ");
    json_phase(s, secs);
    printf("}\n");
}
