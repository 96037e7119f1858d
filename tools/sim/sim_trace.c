/*
 * sim_trace.c - loading, generating and writing request traces (sim_trace.h).
 */
#include "sim_trace.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Growable arrays of the trace under construction. */
static int trace_grow(struct sim_trace *t, size_t *reqcap, uint64_t *idcap,
                      size_t addreq, uint64_t addids)
{
    if (t->nreq + addreq > *reqcap) {
        size_t c = *reqcap ? *reqcap * 2 : 1024;
        while (c < t->nreq + addreq)
            c *= 2;
        void *p = realloc(t->req, c * sizeof(*t->req));
        if (p == NULL)
            return -1;
        t->req = p;
        *reqcap = c;
    }
    if (t->nids + addids > *idcap) {
        uint64_t c = *idcap ? *idcap * 2 : 16384;
        while (c < t->nids + addids)
            c *= 2;
        void *p = realloc(t->ids, c * sizeof(*t->ids));
        if (p == NULL)
            return -1;
        t->ids = p;
        *idcap = c;
    }
    return 0;
}

/* Blocks a request of input_len tokens counts out of nall ids. */
static uint32_t req_blocks(uint32_t input_len, uint32_t nall, bool partial)
{
    uint32_t n = partial ? (input_len + SIM_BLOCK_TOKENS - 1) / SIM_BLOCK_TOKENS
                         : input_len / SIM_BLOCK_TOKENS;
    return n < nall ? n : nall;
}

/* The number after "key": in line, or false. */
static bool json_num(const char *line, const char *key, uint64_t *out)
{
    const char *p = strstr(line, key);
    if (p == NULL)
        return false;
    p += strlen(key);
    while (*p == ' ' || *p == ':' || *p == '"')
        p++;
    char *end;
    double v = strtod(p, &end);
    if (end == p || v < 0)
        return false;
    *out = (uint64_t)v;
    return true;
}

/* Label for a trace: the file name without folders and extension. */
static void trace_name(struct sim_trace *t, const char *path)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(t->name, sizeof(t->name), "%s", b);
    char *dot = strrchr(t->name, '.');
    if (dot != NULL)
        *dot = '\0';
}

int sim_trace_load(struct sim_trace *t, const char *path, bool partial,
                   char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t linecap = 0, reqcap = 0, lineno = 0;
    uint64_t idcap = 0;
    uint32_t *tmp = NULL;
    size_t tmpcap = 0;

    memset(t, 0, sizeof(*t));
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    trace_name(t, path);
    while (getline(&line, &linecap, f) > 0) {
        struct sim_req r = { 0 };
        uint64_t ts, in, out = 0;
        lineno++;
        if (strspn(line, " \t\r\n") == strlen(line))
            continue;
        const char *h = strstr(line, "\"hash_ids\"");
        if (!json_num(line, "\"timestamp\"", &ts) || !json_num(line, "\"input_length\"", &in) ||
            h == NULL || (h = strchr(h, '[')) == NULL) {
            snprintf(err, errlen, "%s:%zu: not a trace line", path, lineno);
            goto fail;
        }
        json_num(line, "\"output_length\"", &out);
        size_t n = 0;
        for (const char *p = h + 1; *p != ']' && *p != '\0';) {
            char *end;
            unsigned long long v = strtoull(p, &end, 10);
            if (end == p)
                break;
            if (n == tmpcap) {
                tmpcap = tmpcap ? tmpcap * 2 : 256;
                void *np = realloc(tmp, tmpcap * sizeof(*tmp));
                if (np == NULL)
                    goto nomem;
                tmp = np;
            }
            if (v >= UINT32_MAX - 1) {
                snprintf(err, errlen, "%s:%zu: hash id %llu too large", path, lineno, v);
                goto fail;
            }
            tmp[n++] = (uint32_t)v;
            p = end;
            while (*p == ',' || *p == ' ')
                p++;
        }
        r.t_ms = ts;
        r.input_len = (uint32_t)in;
        r.output_len = (uint32_t)out;
        r.nall = (uint32_t)n;
        r.nblocks = req_blocks(r.input_len, r.nall, partial);
        r.off = t->nids;
        if (trace_grow(t, &reqcap, &idcap, 1, r.nblocks) < 0)
            goto nomem;
        for (uint32_t i = 0; i < r.nblocks; i++) {
            t->ids[t->nids++] = tmp[i];
            if (tmp[i] + 1 > t->max_id)
                t->max_id = tmp[i] + 1;
        }
        t->tokens += r.input_len;
        t->req[t->nreq++] = r;
    }
    free(line);
    free(tmp);
    fclose(f);
    return 0;
nomem:
    snprintf(err, errlen, "%s: out of memory", path);
fail:
    free(line);
    free(tmp);
    fclose(f);
    sim_trace_deinit(t);
    return -1;
}

void sim_synth_default(struct sim_synth *p)
{
    *p = (struct sim_synth){ .conversations = 8000, .turns = 5, .turn_tokens = 1200,
                             .think_ms = 120000, .span_ms = 3600000, .prompts = 20,
                             .prompt_tokens = 2048, .seed = 1 };
}

/* splitmix64: the generator's random numbers, reproducible from the seed. */
static uint64_t rnd_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double rnd_unit(uint64_t *s)
{
    return (double)(rnd_next(s) >> 11) / 9007199254740992.0;
}

/* Exponential with the given mean. */
static double rnd_exp(uint64_t *s, double mean)
{
    return -mean * log(1.0 - rnd_unit(s));
}

/* Tokens of one part of a turn: uniform in [mean/2, 3*mean/2). */
static uint32_t rnd_tokens(uint64_t *s, uint32_t mean)
{
    return (uint32_t)(mean / 2 + rnd_unit(s) * mean) + 1;
}

/* Requests in arrival order; ties in generation order. */
static int req_cmp(const void *a, const void *b)
{
    const struct sim_req *x = a, *y = b;
    if (x->t_ms != y->t_ms)
        return x->t_ms < y->t_ms ? -1 : 1;
    return x->off < y->off ? -1 : x->off > y->off;
}

int sim_trace_synth(struct sim_trace *t, const struct sim_synth *p, bool partial)
{
    uint64_t rs = p->seed * 0x2545f4914f6cdd1dULL + 1;
    size_t reqcap = 0;
    uint64_t idcap = 0;
    uint32_t nprompts = p->prompts ? p->prompts : 1;
    uint32_t sys_blocks = p->prompt_tokens / SIM_BLOCK_TOKENS;
    double *cdf = calloc(nprompts, sizeof(double));
    uint32_t *conv = NULL;    /* ids of the current conversation's full blocks */
    size_t convcap = 0;
    uint32_t next_id = nprompts * sys_blocks;

    memset(t, 0, sizeof(*t));
    snprintf(t->name, sizeof(t->name), "chat");
    if (cdf == NULL)
        return -1;
    /* Zipf(1) popularity of the system prompts. */
    double sum = 0;
    for (uint32_t i = 0; i < nprompts; i++)
        cdf[i] = (sum += 1.0 / (i + 1));
    for (uint32_t c = 0; c < p->conversations; c++) {
        double u = rnd_unit(&rs) * sum;
        uint32_t pr = 0;
        while (pr + 1 < nprompts && cdf[pr] < u)
            pr++;
        double now = rnd_unit(&rs) * p->span_ms;
        uint64_t tokens = p->prompt_tokens;   /* context before this turn */
        uint32_t nconv = 0;                   /* full blocks with ids */
        for (uint32_t turn = 0;; turn++) {
            uint32_t user = rnd_tokens(&rs, p->turn_tokens / 3);
            uint32_t answer = rnd_tokens(&rs, p->turn_tokens - p->turn_tokens / 3);
            struct sim_req r = { .t_ms = (uint64_t)now, .output_len = answer };
            uint64_t in = tokens + user;
            r.input_len = in > UINT32_MAX ? UINT32_MAX : (uint32_t)in;
            r.nall = (uint32_t)((in + SIM_BLOCK_TOKENS - 1) / SIM_BLOCK_TOKENS);
            r.nblocks = req_blocks(r.input_len, r.nall, partial);
            r.off = t->nids;
            uint32_t full = r.input_len / SIM_BLOCK_TOKENS;
            if (full > convcap) {
                convcap = full * 2 + 64;
                void *np = realloc(conv, convcap * sizeof(*conv));
                if (np == NULL)
                    goto fail;
                conv = np;
            }
            /* New full blocks get ids once: the history only grows. */
            for (; nconv < full; nconv++)
                conv[nconv] = nconv < sys_blocks ? pr * sys_blocks + nconv : next_id++;
            if (trace_grow(t, &reqcap, &idcap, 1, r.nblocks) < 0)
                goto fail;
            for (uint32_t b = 0; b < r.nblocks; b++)
                t->ids[t->nids++] = b < full ? conv[b] : next_id++;  /* partial: new */
            t->tokens += r.input_len;
            t->req[t->nreq++] = r;
            tokens = in + answer;
            if (turn + 1 >= 1000 || rnd_unit(&rs) < 1.0 / (p->turns ? p->turns : 1))
                break;
            /* the answer streams at 50 tokens/s, then the user thinks */
            now += answer * 20.0 + rnd_exp(&rs, p->think_ms);
        }
    }
    t->max_id = next_id;
    qsort(t->req, t->nreq, sizeof(*t->req), req_cmp);
    /* Lay the chains out again in arrival order: the bounds walk ids[] as
     * the sequence of references. */
    uint32_t *ids = malloc((t->nids ? t->nids : 1) * sizeof(*ids));
    if (ids == NULL)
        goto fail;
    uint64_t at = 0;
    for (size_t i = 0; i < t->nreq; i++) {
        memcpy(ids + at, t->ids + t->req[i].off, t->req[i].nblocks * sizeof(*ids));
        t->req[i].off = at;
        at += t->req[i].nblocks;
    }
    free(t->ids);
    t->ids = ids;
    free(cdf);
    free(conv);
    return 0;
fail:
    free(cdf);
    free(conv);
    sim_trace_deinit(t);
    return -1;
}

int sim_trace_from(struct sim_trace *t, const char *name, const uint32_t *ids,
                   const uint32_t *len, size_t nreq)
{
    uint64_t total = 0;

    memset(t, 0, sizeof(*t));
    snprintf(t->name, sizeof(t->name), "%s", name);
    for (size_t i = 0; i < nreq; i++)
        total += len[i];
    t->req = calloc(nreq ? nreq : 1, sizeof(*t->req));
    t->ids = malloc((total ? total : 1) * sizeof(*t->ids));
    if (t->req == NULL || t->ids == NULL) {
        sim_trace_deinit(t);
        return -1;
    }
    for (size_t i = 0; i < nreq; i++) {
        struct sim_req *r = &t->req[i];
        *r = (struct sim_req){ .t_ms = i, .input_len = len[i] * SIM_BLOCK_TOKENS,
                               .nblocks = len[i], .nall = len[i], .off = t->nids };
        for (uint32_t b = 0; b < len[i]; b++) {
            uint32_t id = ids[t->nids];
            t->ids[t->nids++] = id;
            if (id + 1 > t->max_id)
                t->max_id = id + 1;
        }
        t->tokens += r->input_len;
    }
    t->nreq = nreq;
    return 0;
}

int sim_trace_write(const struct sim_trace *t, const char *path)
{
    FILE *f = fopen(path, "w");

    if (f == NULL)
        return -1;
    for (size_t i = 0; i < t->nreq; i++) {
        const struct sim_req *r = &t->req[i];
        fprintf(f, "{\"timestamp\": %llu, \"input_length\": %u, \"output_length\": %u, \"hash_ids\": [",
                (unsigned long long)r->t_ms, r->input_len, r->output_len);
        for (uint32_t b = 0; b < r->nblocks; b++)
            fprintf(f, "%s%u", b ? ", " : "", t->ids[r->off + b]);
        fprintf(f, "]}\n");
    }
    return fclose(f) == 0 ? 0 : -1;
}

static const char *const sim_hints_names[] = { "none", "done", "shared", "block" };

int sim_hints_parse(const char *name)
{
    for (int i = 0; i < (int)(sizeof(sim_hints_names) / sizeof(*sim_hints_names)); i++)
        if (strcmp(name, sim_hints_names[i]) == 0)
            return i;
    return -1;
}

const char *sim_hints_name(enum sim_hints mode)
{
    return sim_hints_names[mode];
}

/* Leading blocks of request i that some other request holds too (a block
 * is shared when held by two requests or more: cnt counts the requests
 * holding each id; ids of a chain are distinct). */
static uint32_t sim_shared_len(const struct sim_trace *t, const uint32_t *cnt, size_t i)
{
    const uint32_t *ids = sim_req_ids(t, i);
    uint32_t k = 0;

    while (k < t->req[i].nblocks && cnt[ids[k]] >= 2)
        k++;
    return k;
}

int sim_trace_hints(struct sim_trace *t, enum sim_hints mode)
{
    size_t nid = t->max_id ? t->max_id : 1;
    uint32_t *last = malloc(sizeof(uint32_t) * nid);
    uint32_t *cnt = calloc(nid, sizeof(uint32_t));

    free(t->done);
    free(t->hint);
    t->hint = NULL;
    t->done = calloc(t->nreq ? t->nreq : 1, 1);
    if (mode != SIM_HINTS_NONE)
        t->hint = calloc(t->nids ? t->nids : 1, 1);
    if (last == NULL || cnt == NULL || t->done == NULL ||
        (mode != SIM_HINTS_NONE && t->hint == NULL)) {
        free(last);
        free(cnt);
        free(t->done);
        free(t->hint);
        t->done = t->hint = NULL;
        return -1;
    }
    /* The last request that holds each id, then: is it this one? */
    for (size_t i = 0; i < t->nreq; i++)
        for (uint32_t b = 0; b < t->req[i].nblocks; b++) {
            last[sim_req_ids(t, i)[b]] = (uint32_t)i;
            cnt[sim_req_ids(t, i)[b]]++;
        }
    for (size_t i = 0; i < t->nreq; i++) {
        const uint32_t *ids = sim_req_ids(t, i);
        uint32_t n = t->req[i].nblocks;
        uint8_t *h = t->hint != NULL ? t->hint + t->req[i].off : NULL;
        t->done[i] = n > 0 && last[ids[n - 1]] == i;
        if (mode == SIM_HINTS_DONE && t->done[i])
            memset(h, 1, n);
        if (mode == SIM_HINTS_SHARED && t->done[i])
            for (uint32_t b = sim_shared_len(t, cnt, i); b < n; b++)
                h[b] = 1;
        if (mode == SIM_HINTS_BLOCK)
            for (uint32_t b = 0; b < n; b++)
                h[b] = last[ids[b]] == i;
    }
    free(last);
    free(cnt);
    return 0;
}

void sim_trace_deinit(struct sim_trace *t)
{
    free(t->done);
    free(t->hint);
    t->done = t->hint = NULL;
    free(t->req);
    free(t->ids);
    t->req = NULL;
    t->ids = NULL;
    t->nreq = 0;
    t->nids = 0;
}
