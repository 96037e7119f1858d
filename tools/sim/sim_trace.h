/*
 * sim_trace.h - request traces for the eviction simulator: loading the
 * Mooncake JSONL traces (../shared/traces/README.md), generating synthetic
 * multi-turn chat traces, and writing a trace back as JSONL.
 *
 * A trace is a list of requests in arrival order; each request names the
 * chain of its prefix blocks by integer id (one id per 512-token block, an
 * id always following the same predecessor). Only the blocks the simulator
 * counts are kept: the full 512-token blocks, plus the trailing partial one
 * when the trace is loaded with partial blocks.
 */
#ifndef SIM_TRACE_H
#define SIM_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_BLOCK_TOKENS 512u

/* One request: its arrival and the chain of its blocks. */
struct sim_req {
    uint64_t t_ms;        /* arrival, milliseconds from the trace's start */
    uint32_t input_len;   /* prompt tokens */
    uint32_t output_len;  /* generated tokens */
    uint32_t nblocks;     /* blocks counted: ids[off .. off + nblocks) */
    uint32_t nall;        /* hash ids in the trace line (partial one included) */
    uint64_t off;         /* first id in sim_trace.ids */
};

/* A loaded or generated trace. */
struct sim_trace {
    struct sim_req *req;
    size_t nreq;
    uint32_t *ids;        /* chains of all requests, back to back in
                             arrival order: the sequence of references */
    uint64_t nids;        /* block references */
    uint32_t max_id;      /* largest id + 1 */
    uint64_t tokens;      /* sum of input_len */
    char name[64];        /* label for tables: file stem or "synthetic" */
    size_t warm;          /* the first `warm` requests only warm the cache:
                             they are replayed but not counted */
    uint8_t *done;        /* per request, after sim_trace_hints(): 1 if no
                             later request holds its last block (its chain
                             is finished); NULL = no hints derived */
    uint8_t *hint;        /* per block reference (nids), after
                             sim_trace_hints(): 1 if the put of that block
                             carries ADMIT_HINT_DONE; NULL = no hints sent */
};

/* What the engine is taken to know when it marks a put ADMIT_HINT_DONE
 * ("no later request is expected to read this block"), derived from the
 * trace's future. */
enum sim_hints {
    SIM_HINTS_NONE,     /* sends no hints */
    SIM_HINTS_DONE,     /* every block of a finished chain (no later request
                           extends it: the conversation is closed) */
    SIM_HINTS_SHARED,   /* the blocks of a finished chain past its shared
                           context (the leading blocks some other request
                           holds too: a system prompt or document that the
                           application sends with other prompts) */
    SIM_HINTS_BLOCK,    /* every block no later request reads: the perfect
                           admission filter, as a bound */
};

/* The mode of a name ("none", "done", "shared", "block"); -1 if unknown. */
int sim_hints_parse(const char *name);
/* The name of a mode. */
const char *sim_hints_name(enum sim_hints mode);

/* Parameters of the synthetic multi-turn chat generator. */
struct sim_synth {
    uint32_t conversations;   /* conversations in the trace */
    uint32_t turns;           /* mean turns per conversation (geometric) */
    uint32_t turn_tokens;     /* mean tokens a turn adds (user + answer) */
    uint32_t think_ms;        /* mean time between turns (exponential) */
    uint32_t span_ms;         /* conversations start uniformly over this */
    uint32_t prompts;         /* shared system prompts (Zipf-chosen) */
    uint32_t prompt_tokens;   /* tokens of each system prompt */
    uint64_t seed;
};

void sim_synth_default(struct sim_synth *p);

/* Load a JSONL trace; partial: count the trailing partial block too.
 * Returns 0, or -1 with a message in err. */
int sim_trace_load(struct sim_trace *t, const char *path, bool partial,
                   char *err, size_t errlen);

/* Generate a synthetic trace (full blocks only unless partial). */
int sim_trace_synth(struct sim_trace *t, const struct sim_synth *p, bool partial);

/* Build a trace from chains given inline (tests): nreq chains, chain i of
 * len[i] ids taken in turn from ids; every block is a full block. */
int sim_trace_from(struct sim_trace *t, const char *name, const uint32_t *ids,
                   const uint32_t *len, size_t nreq);

/* Write t as JSONL in the Mooncake format. */
int sim_trace_write(const struct sim_trace *t, const char *path);

/* Derive the engine's hints from the trace: t->done (a request whose last
 * block no later request asks for ends a finished chain, as an engine that
 * knows when a conversation is closed would tell) and t->hint per block
 * reference as mode says (SIM_HINTS_NONE: t->hint stays NULL). Returns 0
 * or -1 (out of memory). */
int sim_trace_hints(struct sim_trace *t, enum sim_hints mode);

void sim_trace_deinit(struct sim_trace *t);

/* The blocks of request i. */
static inline const uint32_t *sim_req_ids(const struct sim_trace *t, size_t i)
{
    return t->ids + t->req[i].off;
}

#endif
