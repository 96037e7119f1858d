/*
 * kb_main.c - kvcache-bench: the command line.
 *
 * Exit codes: 0 the run completed with no error; 1 it could not start
 * (connection, namespace, trace file); 2 bad usage; 3 it ran, but some
 * requests failed or some blocks failed verification.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kb_bench.h"

/* One option: its name, letter, argument and help. */
struct kb_opt {
    const char *name;
    int letter;
    const char *arg;    /* NULL: a flag */
    const char *help;
};

static const struct kb_opt opts[] = {
    { "server", 's', "URIS", "kvcached servers, libkvcache URIs (default unix:./var/kvcached.sock)" },
    { "memcache", 'M', "HOST:PORT", "drive a memcache text-protocol server instead (HOST:PORT\n"
                                      "                               or unix:PATH); a GetPrefix is a multi-get" },
    { "workload", 'w', "NAME", "random | chat | trace (default random)" },
    { "conns", 'c', "N", "connections, one client thread each (default 4)" },
    { "duration", 'd', "SECONDS", "length of the measured phase (default 10)" },
    { "count", 'n', "N", "or stop after N requests" },
    { "block-size", 'b', "SIZE", "block bytes, k/m suffixes (default 256k; trace: from --shape)" },
    { "keys", 'k', "N", "random: key space (default 4096)" },
    { "read-ratio", 'r', "F", "random: fraction of requests that are gets (default 1)" },
    { "batch", 'B', "N", "random: keys per request (default 1)" },
    { "fill", 'f', NULL, "random: write the whole key space first (reported as \"fill\")" },
    { "conversations", 0, "N", "chat: conversations open at once (default 64)" },
    { "turns", 0, "N", "chat: most turns of a conversation (default 10)" },
    { "system-prompts", 0, "N", "chat: distinct shared system prompts (default 4)" },
    { "system-tokens", 0, "N", "chat: tokens of a system prompt (default 1024)" },
    { "user-tokens", 0, "N", "chat: median tokens of a user message (default 120)" },
    { "reply-tokens", 0, "N", "chat: median tokens of a reply (default 300)" },
    { "block-tokens", 0, "N", "chat: tokens per block (default 16)" },
    { "max-tokens", 0, "N", "chat: a conversation ends past this many tokens (default 8192)" },
    { "trace", 't', "FILE", "trace: a JSONL trace (/work/shared/traces format)" },
    { "shape", 0, "L,H,D,B", "trace: model layers, KV heads, head dim, bytes per value "
                             "(default 32,8,128,2: Llama-3-8B fp16)" },
    { "layers", 0, "N", "trace: layers of the shard this cache holds (default 1)" },
    { "real-time", 0, NULL, "trace: honour arrival times (default: as fast as possible)" },
    { "speed", 0, "X", "trace: with --real-time, replay X times faster (default 1)" },
    { "loop", 0, NULL, "trace: start over at the end until the duration is up" },
    { "hints", 0, NULL, "trace: put the blocks of a request no later one extends with\n"
                        "                               KVCACHE_HINT_DONE (its chain is finished)" },
    { "seed", 0, "N", "random seed (default 1; printed)" },
    { "timeout", 0, "MS", "per request (default 10000)" },
    { "verify", 'V', NULL, "check that every block read is the one asked for" },
    { "json", 'j', NULL, "summary as one JSON object on stdout" },
    { "progress", 'p', NULL, "live line on stderr even when it is not a terminal" },
    { "no-progress", 'q', NULL, "no live line" },
    { "help", 'h', NULL, "this text" },
};
#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static void usage(FILE *f)
{
    fprintf(f, "Usage: kvcache-bench [options]\n\n"
               "Closed-loop load generator for kvcached (and memcached, for comparison).\n"
               "Each connection has one request in flight; prints requests/s, GB/s,\n"
               "p50/p99/p999 latency per operation and hit ratios.\n\nOptions:\n");
    for (size_t i = 0; i < NOPTS; i++) {
        char left[64];
        snprintf(left, sizeof(left), "%s%c%s--%s%s%s", opts[i].letter ? "-" : " ",
                 opts[i].letter ? opts[i].letter : ' ', opts[i].letter ? ", " : "  ",
                 opts[i].name, opts[i].arg ? " " : "", opts[i].arg ? opts[i].arg : "");
        fprintf(f, "  %-28s %s\n", left, opts[i].help);
    }
    fprintf(f, "\nExit: 0 ok, 1 could not start, 2 usage, 3 some requests failed.\n");
}

/* Parse a size with an optional k/m/g suffix (powers of 1024). */
static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0)
        return -1;
    switch (*end) {
    case 'k': case 'K': v *= 1024; end++; break;
    case 'm': case 'M': v *= 1024 * 1024; end++; break;
    case 'g': case 'G': v *= 1024.0 * 1024 * 1024; end++; break;
    default: break;
    }
    if (*end == 'i' || *end == 'b' || *end == 'B')
        end++;
    if (*end)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end || s[0] == '-')
        return -1;
    *out = v;
    return 0;
}

static int bad(const char *name, const char *arg)
{
    fprintf(stderr, "kvcache-bench: --%s: bad value \"%s\"\n", name, arg);
    return 2;
}

int main(int argc, char **argv)
{
    static struct kb_run run;
    struct kb_cfg *c = &run.cfg;
    struct option lo[NOPTS + 1];
    char so[3 * NOPTS + 1], *sp = so, err[512];
    uint64_t v, shape[4] = { 32, 8, 128, 2 }, layers = 1;
    bool block_set = false;
    int rc = 1;

    *c = (struct kb_cfg){ .target = { .proto = KB_KVCACHED, .servers = "unix:./var/kvcached.sock",
                                      .timeout_ms = 10000 },
                          .workload = KB_W_RANDOM, .conns = 4, .duration = 10, .block = 256 << 10,
                          .seed = 1, .progress = -1, .keys = 4096, .read_ratio = 1, .batch = 1,
                          .convs = 64, .max_turns = 10, .sys_prompts = 4, .sys_tokens = 1024,
                          .user_tokens = 120, .reply_tokens = 300, .block_tokens = 16,
                          .max_tokens = 8192, .speed = 1 };
    for (size_t i = 0; i < NOPTS; i++) {
        lo[i] = (struct option){ opts[i].name, opts[i].arg ? required_argument : no_argument,
                                 NULL, opts[i].letter ? opts[i].letter : 1000 + (int)i };
        if (opts[i].letter) {
            *sp++ = (char)opts[i].letter;
            if (opts[i].arg)
                *sp++ = ':';
        }
    }
    *sp = '\0';
    memset(&lo[NOPTS], 0, sizeof(lo[NOPTS]));

    int ch, li;
    while ((ch = getopt_long(argc, argv, so, lo, &li)) != -1) {
        const struct kb_opt *o = NULL;
        if (ch == '?') {
            fprintf(stderr, "see kvcache-bench --help\n");
            return 2;
        }
        for (size_t i = 0; i < NOPTS; i++)
            if (ch == (opts[i].letter ? opts[i].letter : 1000 + (int)i))
                o = &opts[i];
        const char *n = o->name, *a = optarg;
        if (!strcmp(n, "server")) {
            c->target.servers = a;
        } else if (!strcmp(n, "memcache")) {
            static char host[256];
            const char *colon = strrchr(a, ':');
            if (!strncmp(a, "unix:", 5) && a[5]) {
                c->target.proto = KB_MEMCACHE;
                c->target.mc_host = a + 5;
                c->target.mc_port = 0;
                continue;
            }
            if (colon == NULL || colon == a || (size_t)(colon - a) >= sizeof(host) ||
                parse_u64(colon + 1, &v) || v == 0 || v > 65535)
                return bad(n, a);
            memcpy(host, a, (size_t)(colon - a));
            host[colon - a] = '\0';
            c->target.proto = KB_MEMCACHE;
            c->target.mc_host = host;
            c->target.mc_port = (int)v;
        } else if (!strcmp(n, "workload")) {
            if (!strcmp(a, "random")) c->workload = KB_W_RANDOM;
            else if (!strcmp(a, "chat")) c->workload = KB_W_CHAT;
            else if (!strcmp(a, "trace")) c->workload = KB_W_TRACE;
            else return bad(n, a);
        } else if (!strcmp(n, "conns")) {
            if (parse_u64(a, &v) || v == 0 || v > 4096) return bad(n, a);
            c->conns = (unsigned)v;
        } else if (!strcmp(n, "duration")) {
            char *end;
            c->duration = strtod(a, &end);
            if (*end || !(c->duration > 0)) return bad(n, a);
        } else if (!strcmp(n, "count")) {
            if (parse_u64(a, &c->count) || c->count == 0) return bad(n, a);
        } else if (!strcmp(n, "block-size")) {
            if (parse_size(a, &v) || v < 32 || v > (1u << 30)) return bad(n, a);
            c->block = (uint32_t)v;
            block_set = true;
        } else if (!strcmp(n, "keys")) {
            if (parse_u64(a, &c->keys) || c->keys == 0) return bad(n, a);
        } else if (!strcmp(n, "read-ratio")) {
            char *end;
            c->read_ratio = strtod(a, &end);
            if (*end || c->read_ratio < 0 || c->read_ratio > 1) return bad(n, a);
        } else if (!strcmp(n, "batch")) {
            if (parse_u64(a, &v) || v == 0 || v > 4096) return bad(n, a);
            c->batch = (unsigned)v;
        } else if (!strcmp(n, "fill")) {
            c->fill = true;
        } else if (!strcmp(n, "trace")) {
            c->trace_path = a;
        } else if (!strcmp(n, "shape")) {
            unsigned long long s4[4];
            if (sscanf(a, "%llu,%llu,%llu,%llu", &s4[0], &s4[1], &s4[2], &s4[3]) != 4)
                return bad(n, a);
            for (int i = 0; i < 4; i++)
                shape[i] = s4[i];
        } else if (!strcmp(n, "layers")) {
            if (parse_u64(a, &layers) || layers == 0) return bad(n, a);
        } else if (!strcmp(n, "real-time")) {
            c->real_time = true;
        } else if (!strcmp(n, "speed")) {
            char *end;
            c->speed = strtod(a, &end);
            if (*end || !(c->speed > 0)) return bad(n, a);
        } else if (!strcmp(n, "hints")) {
            c->hints = true;
        } else if (!strcmp(n, "loop")) {
            c->loop = true;
        } else if (!strcmp(n, "seed")) {
            if (parse_u64(a, &c->seed)) return bad(n, a);
        } else if (!strcmp(n, "timeout")) {
            if (parse_u64(a, &v) || v == 0 || v > 3600000) return bad(n, a);
            c->target.timeout_ms = (int)v;
        } else if (!strcmp(n, "verify")) {
            c->verify = true;
        } else if (!strcmp(n, "json")) {
            c->json = true;
        } else if (!strcmp(n, "progress")) {
            c->progress = 1;
        } else if (!strcmp(n, "no-progress")) {
            c->progress = 0;
        } else if (!strcmp(n, "help")) {
            usage(stdout);
            return 0;
        } else {
            /* the chat numbers */
            static const struct { const char *name; size_t off; } nums[] = {
                { "conversations", offsetof(struct kb_cfg, convs) },
                { "turns", offsetof(struct kb_cfg, max_turns) },
                { "system-prompts", offsetof(struct kb_cfg, sys_prompts) },
                { "system-tokens", offsetof(struct kb_cfg, sys_tokens) },
                { "user-tokens", offsetof(struct kb_cfg, user_tokens) },
                { "reply-tokens", offsetof(struct kb_cfg, reply_tokens) },
                { "block-tokens", offsetof(struct kb_cfg, block_tokens) },
                { "max-tokens", offsetof(struct kb_cfg, max_tokens) },
            };
            for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
                if (!strcmp(n, nums[i].name)) {
                    if (parse_u64(a, &v) || v == 0 || v > (1u << 24)) return bad(n, a);
                    *(unsigned *)((char *)c + nums[i].off) = (unsigned)v;
                }
        }
    }
    if (optind < argc) {
        fprintf(stderr, "kvcache-bench: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    if (c->block < 32) {
        fprintf(stderr, "kvcache-bench: blocks of at least 32 bytes (the stamp)\n");
        return 2;
    }
    if (c->workload == KB_W_CHAT && c->max_tokens < 2 * c->block_tokens) {
        fprintf(stderr, "kvcache-bench: --max-tokens must hold two blocks\n");
        return 2;
    }
    if (c->workload == KB_W_TRACE) {
        if (c->trace_path == NULL) {
            fprintf(stderr, "kvcache-bench: the trace workload needs --trace FILE\n");
            return 2;
        }
        if (!block_set) {
            /* K and V: 2 * heads * dim * bytes per token and layer */
            uint64_t b = 2 * shape[1] * shape[2] * shape[3] * layers * KB_TRACE_BLOCK_TOKENS;
            if (layers > shape[0] || b < 32 || b > (1u << 30)) {
                fprintf(stderr, "kvcache-bench: --shape/--layers give %llu-byte blocks\n",
                        (unsigned long long)b);
                return 2;
            }
            c->block = (uint32_t)b;
        }
        if (kb_trace_load(c->trace_path, &run.trace, err, sizeof(err))) {
            fprintf(stderr, "kvcache-bench: %s\n", err);
            return 1;
        }
    }

    const char *model = c->workload == KB_W_RANDOM ? "kvcache-bench-random"
                      : c->workload == KB_W_CHAT ? "kvcache-bench-chat" : "kvcache-bench-trace";
    uint32_t tpb = c->workload == KB_W_CHAT ? c->block_tokens
                 : c->workload == KB_W_TRACE ? KB_TRACE_BLOCK_TOKENS : 1;
    if (kb_open_ns(&c->target, model, tpb, c->block, &c->target.ns, err, sizeof(err))) {
        fprintf(stderr, "kvcache-bench: %s\n", err);
        goto out;
    }
    if (kb_run_init(&run, err, sizeof(err))) {
        fprintf(stderr, "kvcache-bench: %s\n", err[0] ? err : "out of memory");
        goto out;
    }
    if (!c->json)
        printf("seed %llu\n", (unsigned long long)c->seed);

    struct kb_stat fill = { 0 }, st = { 0 };
    double fill_secs = 0, secs;
    if (c->fill && c->workload == KB_W_RANDOM) {
        fill_secs = kb_run_phase(&run, 0);
        for (unsigned i = 0; i < c->conns; i++)
            kb_stat_merge(&fill, &run.th[i].st);
        if (!c->json)
            kb_report_text(&run, "fill", &fill, fill_secs);
    }
    secs = kb_run_phase(&run, 1);
    for (unsigned i = 0; i < c->conns; i++) {
        kb_stat_merge(&st, &run.th[i].st);
        if (run.th[i].err[0])
            fprintf(stderr, "kvcache-bench: connection %u: first error: %s\n", i, run.th[i].err);
    }
    if (c->json)
        kb_report_json(&run, c->fill ? &fill : NULL, fill_secs, &st, secs);
    else
        kb_report_text(&run, "run", &st, secs);
    rc = (st.op[0].errors + st.op[1].errors + fill.op[0].errors + fill.op[1].errors +
          st.verify_fail) ? 3 : 0;
out:
    kb_run_deinit(&run);
    kb_trace_free(&run.trace);
    return rc;
}
