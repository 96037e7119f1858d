/*
 * kc_sim.c - kvcache-sim: replay request traces through the storage engine
 * in simulation mode for a list of eviction policies and capacities, next
 * to the exact bounds (infinite cache, Belady's MIN) and a per-block LRU,
 * and print a table and write a CSV of hit ratios, write amplification and
 * evictions. See docs/eviction.md for the figures and how to read them.
 */
#include "sim.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "slab/kc_admit.h"
#include "slab/kc_evict.h"

#ifndef KC_SOURCE_ROOT
#define KC_SOURCE_ROOT "."
#endif

#define MAX_LIST 32

/* What the command line asks for. */
struct opts {
    const char *traces[MAX_LIST];      /* names, paths, or "chat" */
    size_t ntraces;
    char *policies[MAX_LIST];          /* "name" or "name:param" */
    size_t npolicies;
    uint64_t caps[MAX_LIST];
    size_t ncaps;
    const char *traces_dir;
    const char *csv;
    const char *write_trace;
    const char *device;                /* replay through a real store here */
    uint32_t slab_blocks;
    uint32_t mem_slabs;
    bool partial;
    bool bounds;
    int hints;                         /* the engine's hints (enum sim_hints) */
    bool stats;                        /* print each trace's structure */
    uint64_t put_cost;                 /* puts per policy for --put-cost, 0 = no */
    uint32_t warm;                     /* percent of requests that only warm */
    struct sim_synth synth;
};

/* The numeric options, declared once: name, field, bounds. */
struct numopt {
    const char *name;
    int val;
    uint32_t *u32;
    uint64_t *u64;
    uint64_t min, max;
    const char *help;
};

enum { O_SLAB = 1000, O_MEM, O_CONV, O_TURNS, O_TTOK, O_THINK, O_SPAN, O_PROMPTS,
       O_PTOK, O_SEED, O_PARTIAL, O_NOBOUNDS, O_NOHINTS, O_PUTCOST, O_WARM, O_DIR, O_WRITE, O_DEVICE,
       O_HINTS, O_STATS };

static void usage(FILE *f, const struct numopt *num)
{
    fprintf(f,
        "usage: kvcache-sim [options]\n"
        "  -t, --trace NAME      a trace: file path, name in the traces folder, or 'chat'\n"
        "                        (the synthetic multi-turn chat generator); repeatable;\n"
        "                        default both Mooncake traces\n"
        "  -p, --policies LIST   comma-separated policy[:param][+admission[:param]];\n"
        "                        default all eviction policies, admitting every block\n"
        "  -c, --capacities LIST capacities in 512-token blocks; default 5000,10000,20000,50000\n"
        "  -o, --csv FILE        also write the results as CSV\n"
        "      --traces-dir DIR  where trace names are looked up; default %s/../shared/traces\n"
        "      --partial-blocks  count each request's trailing partial block as a block\n"
        "      --no-bounds       skip infinite, MIN, block-lru and fifo-oracle\n"
        "      --hints MODE      what puts marked done (no later read expected) are, taken\n"
        "                        from the trace's future: done (default: every block of a\n"
        "                        request whose last block no later request asks for),\n"
        "                        shared (those of a done request past the leading blocks\n"
        "                        another request holds too), block (every block no later\n"
        "                        request reads: a perfect filter), none\n"
        "                        (a policy with admission is then named POLICY@MODE)\n"
        "      --no-hints        --hints none\n"
        "      --stats           print each trace's request structure and reuse by use\n"
        "      --write-trace F   write the (last) trace as JSONL and go on\n"
        "      --device FILE     replay through a real store on FILE (erased; slow) instead\n"
        "                        of the simulated device, to check the simulation\n",
        KC_SOURCE_ROOT);
    for (const struct numopt *o = num; o->name != NULL; o++)
        fprintf(f, "      --%-17s %s\n", o->name, o->help);
    fprintf(f, "policies:");
    for (const char *const *n = evict_names(); *n != NULL; n++)
        fprintf(f, " %s", *n);
    fprintf(f, "\nadmission:");
    for (const char *const *n = admit_names(); *n != NULL; n++)
        fprintf(f, " %s", *n);
    fprintf(f, "\n");
}

/* Split a comma list into caps[]; false on a bad number. */
static bool parse_caps(struct opts *o, const char *s)
{
    char *copy = strdup(s), *save = NULL;
    bool ok = copy != NULL;

    o->ncaps = 0;
    for (char *tok = ok ? strtok_r(copy, ",", &save) : NULL; tok != NULL && ok;
         tok = strtok_r(NULL, ",", &save)) {
        char *end;
        double v = strtod(tok, &end);
        if (*end == 'k' || *end == 'K')
            v *= 1000, end++;
        if (*end != '\0' || v < 1 || o->ncaps == MAX_LIST)
            ok = false;
        else
            o->caps[o->ncaps++] = (uint64_t)v;
    }
    free(copy);
    return ok && o->ncaps > 0;
}

/* Split a comma list of policies; false on an unknown name. */
static bool parse_policies(struct opts *o, const char *s)
{
    char *copy = strdup(s), *save = NULL;
    bool ok = copy != NULL;

    o->npolicies = 0;
    for (char *tok = ok ? strtok_r(copy, ",", &save) : NULL; tok != NULL && ok;
         tok = strtok_r(NULL, ",", &save)) {
        char name[64], aname[64] = "all";
        snprintf(name, sizeof(name), "%s", tok);
        char *plus = strchr(name, '+');
        if (plus != NULL) {
            *plus = '\0';
            snprintf(aname, sizeof(aname), "%s", plus + 1);
            *strchrnul(aname, ':') = '\0';
        }
        *strchrnul(name, ':') = '\0';
        if (evict_find(name) == NULL || admit_find(aname) == NULL ||
            strlen(tok) >= sizeof(((struct sim_result *)0)->policy) ||
            o->npolicies == MAX_LIST) {
            fprintf(stderr, "kvcache-sim: unknown policy '%s'\n", name);
            ok = false;
        } else {
            o->policies[o->npolicies++] = strdup(tok);
        }
    }
    free(copy);
    return ok && o->npolicies > 0;
}

/* Load trace `name`: "chat", a readable path, or a file in the folder. */
static int load_trace(const struct opts *o, const char *name, struct sim_trace *t)
{
    char path[4096], err[256];

    if (strcmp(name, "chat") == 0) {
        if (sim_trace_synth(t, &o->synth, o->partial) < 0) {
            fprintf(stderr, "kvcache-sim: generating the chat trace: out of memory\n");
            return -1;
        }
        return 0;
    }
    snprintf(path, sizeof(path), "%s", name);
    if (access(path, R_OK) != 0 && strchr(name, '/') == NULL) {
        snprintf(path, sizeof(path), "%s/%s", o->traces_dir, name);
        if (access(path, R_OK) != 0)
            snprintf(path, sizeof(path), "%s/%s.jsonl", o->traces_dir, name);
    }
    if (sim_trace_load(t, path, o->partial, err, sizeof(err)) < 0) {
        fprintf(stderr, "kvcache-sim: %s\n", err);
        return -1;
    }
    return 0;
}

static void print_header(void)
{
    printf("%-26s %-12s %8s %6s %9s %9s %6s %9s %9s %7s\n", "trace", "policy", "capacity",
           "slabs", "block_hit", "prefix_hit", "WA", "evictions", "reinserts", "seconds");
}

static void print_row(const struct sim_result *r, FILE *csv)
{
    char cap[32];

    if (r->capacity == 0)
        snprintf(cap, sizeof(cap), "inf");
    else
        snprintf(cap, sizeof(cap), "%llu", (unsigned long long)r->capacity);
    printf("%-26s %-12s %8s %6llu %9.4f %10.4f %6.3f %9llu %9llu %7.2f\n", r->trace, r->policy,
           cap, (unsigned long long)r->slabs, sim_block_ratio(r), sim_prefix_ratio(r),
           sim_wa(r), (unsigned long long)r->evictions, (unsigned long long)r->reinserts,
           r->seconds);
    fflush(stdout);
    if (csv != NULL)
        fprintf(csv, "%s,%s,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%.6f,%.6f,%.4f,%llu,%llu,%llu,%.3f\n",
                r->trace, r->policy, (unsigned long long)r->capacity,
                (unsigned long long)r->slabs, (unsigned long long)r->requests,
                (unsigned long long)r->refs, (unsigned long long)r->present,
                (unsigned long long)r->tokens, (unsigned long long)r->hit_tokens,
                sim_block_ratio(r), sim_prefix_ratio(r), sim_wa(r),
                (unsigned long long)r->evictions, (unsigned long long)r->reinserts,
                (unsigned long long)r->reinsert_dropped, r->seconds);
}

/* Every policy and bound at every capacity on one trace. */
static int run_trace(const struct opts *o, const struct sim_geo *g,
                     const struct sim_trace *t, FILE *csv)
{
    struct sim_result r;
    char err[256];

    if (o->bounds) {
        if (sim_bound_infinite(t, &r) < 0)
            return -1;
        print_row(&r, csv);
    }
    for (size_t c = 0; c < o->ncaps; c++) {
        if (o->bounds) {
            if (sim_bound_min(t, o->caps[c], &r) < 0)
                return -1;
            print_row(&r, csv);
            if (sim_bound_lru(t, o->caps[c], &r) < 0)
                return -1;
            print_row(&r, csv);
            if (sim_bound_fifo_oracle(t, o->caps[c], &r) < 0)
                return -1;
            print_row(&r, csv);
        }
        for (size_t p = 0; p < o->npolicies; p++) {
            if (sim_replay_dev(t, g, o->policies[p], 0, o->caps[c], o->device, &r, err,
                               sizeof(err)) < 0) {
                fprintf(stderr, "kvcache-sim: %s at %llu: %s\n", o->policies[p],
                        (unsigned long long)o->caps[c], err);
                return -1;
            }
            /* hints other than the default: say which, next to the admission */
            if (o->hints != SIM_HINTS_DONE && strchr(r.policy, '+') != NULL) {
                size_t l = strlen(r.policy);
                snprintf(r.policy + l, sizeof(r.policy) - l, "@%s",
                         sim_hints_name((enum sim_hints)o->hints));
            }
            print_row(&r, csv);
        }
    }
    return 0;
}

/* CPU ns per admission check alone of the admission named after the '+'
 * of spec (n checks of distinct keys, chains of 16, every other one
 * finished, the device full), or -1 if spec names none. */
static double admit_cost(const char *spec, uint64_t capacity, uint64_t n)
{
    const char *plus = strchr(spec, '+');
    char name[64];
    struct admit a = { 0 };
    struct timespec t0, t1;
    uint64_t admitted = 0;

    if (plus == NULL)
        return -1;
    snprintf(name, sizeof(name), "%s", plus + 1);
    char *colon = strchr(name, ':');
    if (colon != NULL) {
        a.param = (uint32_t)strtoul(colon + 1, NULL, 10);
        *colon = '\0';
    }
    const struct admit_ops *ops = admit_find(name);
    if (ops == NULL || admit_init(&a, ops, capacity) < 0)
        return -1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    for (uint64_t i = 0; i < n; i++) {
        struct kc_key k;
        sim_key((uint32_t)i, &k.lo, &k.hi);
        admitted += admit_check(&a, &k, (uint32_t)(i % 16), (i / 16) % 2 ? ADMIT_HINT_DONE : 0,
                                false);
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
    admit_deinit(&a);
    /* the key hash is the caller's: time it alone and take it off */
    struct timespec h0, h1;
    volatile uint64_t sink = admitted;   /* keeps the hash loop */
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &h0);
    for (uint64_t i = 0; i < n; i++) {
        struct kc_key k;
        sim_key((uint32_t)i, &k.lo, &k.hi);
        sink += k.lo & 1;
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &h1);
    double all = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
    double hash = (double)(h1.tv_sec - h0.tv_sec) * 1e9 + (double)(h1.tv_nsec - h0.tv_nsec);
    return (all - hash) / (double)(n ? n : 1);
}

/* --put-cost: CPU per put of each policy at each capacity. */
static int put_costs(const struct opts *o, const struct sim_geo *g)
{
    char err[256];

    printf("%-20s %9s %12s %14s\n", "policy", "capacity", "ns_per_put", "ns_admit_check");
    for (size_t c = 0; c < o->ncaps; c++)
        for (size_t p = 0; p < o->npolicies; p++) {
            double ns;
            if (sim_put_cost(g, o->policies[p], o->caps[c], o->put_cost, o->device, &ns, err,
                             sizeof(err)) < 0) {
                fprintf(stderr, "kvcache-sim: %s: %s\n", o->policies[p], err);
                return 1;
            }
            double ac = admit_cost(o->policies[p], o->caps[c], o->put_cost);
            printf("%-20s %9llu %12.1f ", o->policies[p], (unsigned long long)o->caps[c], ns);
            if (ac < 0)
                printf("%14s\n", "-");
            else
                printf("%14.1f\n", ac);
        }
    return 0;
}

int main(int argc, char **argv)
{
    static char dir[4096];
    struct opts o = { .slab_blocks = 63, .mem_slabs = 4, .bounds = true,
                    .hints = SIM_HINTS_DONE };
    struct sim_geo g;
    FILE *csv = NULL;
    int rc = 1;

    sim_synth_default(&o.synth);
    snprintf(dir, sizeof(dir), "%s/../shared/traces", KC_SOURCE_ROOT);
    o.traces_dir = dir;
    const struct numopt num[] = {
        { "slab-blocks", O_SLAB, &o.slab_blocks, NULL, 1, 4095, "N  blocks per slab (default 63)" },
        { "memory-slabs", O_MEM, &o.mem_slabs, NULL, 2, 1u << 20, "N  DRAM budget in memory slabs (default 4)" },
        { "conversations", O_CONV, &o.synth.conversations, NULL, 1, 10000000, "N  chat: conversations (8000)" },
        { "turns", O_TURNS, &o.synth.turns, NULL, 1, 1000, "N  chat: mean turns per conversation (5)" },
        { "turn-tokens", O_TTOK, &o.synth.turn_tokens, NULL, 3, 1000000, "N  chat: mean tokens a turn adds (1200)" },
        { "think-ms", O_THINK, &o.synth.think_ms, NULL, 0, UINT32_MAX, "N  chat: mean think time, ms (120000)" },
        { "span-ms", O_SPAN, &o.synth.span_ms, NULL, 1, UINT32_MAX, "N  chat: conversations start within, ms (3600000)" },
        { "prompts", O_PROMPTS, &o.synth.prompts, NULL, 1, 1000000, "N  chat: shared system prompts (20)" },
        { "prompt-tokens", O_PTOK, &o.synth.prompt_tokens, NULL, 0, 1000000, "N  chat: tokens per system prompt (2048)" },
        { "seed", O_SEED, NULL, &o.synth.seed, 0, UINT64_MAX, "N  chat: random seed (1)" },
        { "warm", O_WARM, &o.warm, NULL, 0, 99,
          "P  the first P% of each trace's requests warm the cache, uncounted (0)" },
        { "put-cost", O_PUTCOST, NULL, &o.put_cost, 1, 1ull << 32,
          "N  instead of traces: CPU ns per put of each policy over N puts\n"
          "                           (on --device FILE if given)" },
        { NULL, 0, NULL, NULL, 0, 0, NULL },
    };
    struct option lopts[32] = {
        { "trace", required_argument, NULL, 't' },
        { "policies", required_argument, NULL, 'p' },
        { "capacities", required_argument, NULL, 'c' },
        { "csv", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { "partial-blocks", no_argument, NULL, O_PARTIAL },
        { "no-bounds", no_argument, NULL, O_NOBOUNDS },
        { "no-hints", no_argument, NULL, O_NOHINTS },
        { "hints", required_argument, NULL, O_HINTS },
        { "stats", no_argument, NULL, O_STATS },
        { "traces-dir", required_argument, NULL, O_DIR },
        { "write-trace", required_argument, NULL, O_WRITE },
        { "device", required_argument, NULL, O_DEVICE },
    };
    size_t nl = 0;
    while (lopts[nl].name != NULL)   /* after the fixed options */
        nl++;
    for (const struct numopt *n = num; n->name != NULL; n++)
        lopts[nl++] = (struct option){ n->name, required_argument, NULL, n->val };
    lopts[nl] = (struct option){ 0 };

    parse_caps(&o, "5000,10000,20000,50000");
    int ch;
    while ((ch = getopt_long(argc, argv, "t:p:c:o:h", lopts, NULL)) != -1) {
        switch (ch) {
        case 't':
            if (o.ntraces < MAX_LIST)
                o.traces[o.ntraces++] = optarg;
            break;
        case 'p':
            if (!parse_policies(&o, optarg))
                goto out;
            break;
        case 'c':
            if (!parse_caps(&o, optarg)) {
                fprintf(stderr, "kvcache-sim: bad capacity list '%s'\n", optarg);
                goto out;
            }
            break;
        case 'o': o.csv = optarg; break;
        case 'h': usage(stdout, num); rc = 0; goto out;
        case O_PARTIAL: o.partial = true; break;
        case O_NOBOUNDS: o.bounds = false; break;
        case O_NOHINTS: o.hints = SIM_HINTS_NONE; break;
        case O_HINTS:
            o.hints = sim_hints_parse(optarg);
            if (o.hints < 0) {
                fprintf(stderr, "kvcache-sim: --hints %s: want none, done, shared or block\n",
                        optarg);
                goto out;
            }
            break;
        case O_STATS: o.stats = true; break;
        case O_DIR: o.traces_dir = optarg; break;
        case O_WRITE: o.write_trace = optarg; break;
        case O_DEVICE: o.device = optarg; break;
        default: {
            const struct numopt *n = num;
            while (n->name != NULL && n->val != ch)
                n++;
            if (n->name == NULL) {
                usage(stderr, num);
                goto out;
            }
            char *end;
            errno = 0;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || v < n->min || v > n->max) {
                fprintf(stderr, "kvcache-sim: --%s %s: want %llu..%llu\n", n->name, optarg,
                        (unsigned long long)n->min, (unsigned long long)n->max);
                goto out;
            }
            if (n->u32 != NULL)
                *n->u32 = (uint32_t)v;
            else
                *n->u64 = v;
        }
        }
    }
    if (optind < argc) {
        usage(stderr, num);
        goto out;
    }
    if (o.npolicies == 0) {
        const char *const *names = evict_names();
        for (size_t i = 0; names[i] != NULL && i < MAX_LIST; i++)
            o.policies[o.npolicies++] = strdup(names[i]);
    }
    if (o.ntraces == 0) {
        o.traces[o.ntraces++] = "mooncake_synthetic_trace";
        o.traces[o.ntraces++] = "mooncake_conversation_first_half";
    }
    if (sim_geo_init(&g, o.slab_blocks, o.mem_slabs) < 0)
        goto out;
    printf("# geometry: %u blocks per slab (%u MiB slab, %u-byte values stand for 512-token "
           "blocks), %u memory slabs; %s blocks; hints %s\n", g.blocks_per_slab, g.slab_size >> 20,
           g.value_bytes, g.mem_slabs, o.partial ? "full and partial" : "full",
           sim_hints_name((enum sim_hints)o.hints));
    if (o.csv != NULL) {
        csv = fopen(o.csv, "w");
        if (csv == NULL) {
            fprintf(stderr, "kvcache-sim: %s: %s\n", o.csv, strerror(errno));
            goto out;
        }
        fprintf(csv, "trace,policy,capacity,slabs,requests,refs,present,tokens,hit_tokens,"
                     "block_hit,prefix_hit,wa,evictions,reinserts,reinsert_dropped,seconds\n");
    }
    if (o.put_cost != 0) {
        rc = put_costs(&o, &g);
        goto out;
    }
    print_header();
    for (size_t i = 0; i < o.ntraces; i++) {
        struct sim_trace t;
        if (load_trace(&o, o.traces[i], &t) < 0)
            goto out;
        t.warm = t.nreq * o.warm / 100;
        if (sim_trace_hints(&t, (enum sim_hints)o.hints) < 0 ||
            (o.stats && sim_trace_stats(&t, o.caps, o.ncaps, stdout) < 0)) {
            fprintf(stderr, "kvcache-sim: out of memory\n");
            sim_trace_deinit(&t);
            goto out;
        }
        if (o.write_trace != NULL && sim_trace_write(&t, o.write_trace) < 0)
            fprintf(stderr, "kvcache-sim: writing %s: %s\n", o.write_trace, strerror(errno));
        int r = run_trace(&o, &g, &t, csv);
        sim_trace_deinit(&t);
        if (r < 0)
            goto out;
    }
    rc = 0;
out:
    if (csv != NULL && fclose(csv) != 0 && rc == 0) {
        fprintf(stderr, "kvcache-sim: writing %s failed\n", o.csv);
        rc = 1;
    }
    for (size_t i = 0; i < o.npolicies; i++)
        free(o.policies[i]);
    return rc;
}
