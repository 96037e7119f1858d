/*
 * kb_trace.h - request traces with prefix block hash ids (the Mooncake
 * format of /work/shared/traces/README.md): one JSON object a line,
 *
 *   {"timestamp": 0, "input_length": 7322, "output_length": 490,
 *    "hash_ids": [0, 14, 15, ...]}
 *
 * timestamp in ms since the start, one hash id per 512-token block of the
 * prompt (the last block usually partial). Other fields are ignored.
 */
#ifndef KB_TRACE_H
#define KB_TRACE_H

#include <stddef.h>
#include <stdint.h>

#define KB_TRACE_BLOCK_TOKENS 512

/* One request of a trace. */
struct kb_trace_req {
    uint64_t ts_ms;          /* arrival, ms since the first request */
    uint32_t input_len;      /* prompt tokens */
    uint32_t output_len;     /* generated tokens */
    uint32_t nids;           /* hash ids (blocks of the prompt) */
    uint32_t nfull;          /* of which full blocks: input_len / 512 */
    uint8_t done;            /* no later request holds its last full block:
                                its chain is finished (kb_trace_load) */
    uint32_t *ids;           /* into kb_trace.ids */
};

/* A whole trace in memory. */
struct kb_trace {
    struct kb_trace_req *reqs;
    size_t nreqs;
    uint32_t *ids;           /* every request's ids, back to back */
    size_t nids;
    uint64_t max_id;         /* largest hash id */
    uint32_t max_blocks;     /* most ids of one request */
};

/* Parse one line into r (ids written to a buffer of cap entries that the
 * caller owns, r->ids pointing into it). 0, or -1 with a reason in err. */
int kb_trace_parse_line(const char *line, struct kb_trace_req *r,
                        uint32_t *ids, size_t cap, const char **err);

/* Load a trace file. 0, or -1 with a message (file:line: reason) in err. */
int kb_trace_load(const char *path, struct kb_trace *t, char *err, size_t errlen);

/* Free what kb_trace_load allocated. */
void kb_trace_free(struct kb_trace *t);

#endif
