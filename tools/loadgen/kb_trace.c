/*
 * kb_trace.c - the trace reader (kb_trace.h). A small scanner for exactly
 * the fields the traces have, not a general JSON parser: it finds each
 * wanted key at the top level of the object and reads a number or an array
 * of numbers after it.
 */
#include "kb_trace.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where the value of "key" begins in the object line, or NULL. */
static const char *find_key(const char *line, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = strchr(line, '"'); p; p = strchr(p + 1, '"')) {
        if (strncmp(p + 1, key, kl) == 0 && p[1 + kl] == '"') {
            p += kl + 2;
            while (isspace((unsigned char)*p))
                p++;
            if (*p != ':')
                continue;
            p++;
            while (isspace((unsigned char)*p))
                p++;
            return p;
        }
    }
    return NULL;
}

/* Read a non-negative integer at *pp (a JSON number without sign or
 * fraction, or with a fraction that is dropped); advance *pp. */
static int read_uint(const char **pp, uint64_t *out)
{
    const char *p = *pp;
    char *end;
    if (!isdigit((unsigned char)*p))
        return -1;
    errno = 0;
    unsigned long long v = strtoull(p, &end, 10);
    if (errno)
        return -1;
    if (*end == '.' || *end == 'e' || *end == 'E') {   /* 12.0: keep 12 */
        double d = strtod(p, &end);
        if (d < 0)
            return -1;
        v = (unsigned long long)d;
    }
    *out = v;
    *pp = end;
    return 0;
}

int kb_trace_parse_line(const char *line, struct kb_trace_req *r,
                        uint32_t *ids, size_t cap, const char **err)
{
    const char *p;
    uint64_t v;

    memset(r, 0, sizeof(*r));
    r->ids = ids;
    if ((p = find_key(line, "timestamp")) == NULL || read_uint(&p, &r->ts_ms)) {
        *err = "no numeric \"timestamp\"";
        return -1;
    }
    if ((p = find_key(line, "input_length")) == NULL || read_uint(&p, &v) || v > UINT32_MAX) {
        *err = "no numeric \"input_length\"";
        return -1;
    }
    r->input_len = (uint32_t)v;
    if ((p = find_key(line, "output_length")) != NULL && read_uint(&p, &v) == 0 &&
        v <= UINT32_MAX)
        r->output_len = (uint32_t)v;
    if ((p = find_key(line, "hash_ids")) == NULL || *p != '[') {
        *err = "no \"hash_ids\" array";
        return -1;
    }
    p++;
    for (;;) {
        while (isspace((unsigned char)*p) || *p == ',')
            p++;
        if (*p == ']')
            break;
        if (read_uint(&p, &v) || v > UINT32_MAX) {
            *err = "bad number in \"hash_ids\"";
            return -1;
        }
        if (r->nids >= cap) {
            *err = "too many hash ids";
            return -1;
        }
        ids[r->nids++] = (uint32_t)v;
    }
    r->nfull = r->input_len / KB_TRACE_BLOCK_TOKENS;
    if (r->nfull > r->nids)
        r->nfull = r->nids;
    return 0;
}

/* Mark the requests whose last full block no later request holds (the
 * engine's "chain finished" hint, as kvcache-sim derives it). */
static int trace_mark_done(struct kb_trace *t)
{
    uint32_t *last = malloc(sizeof(uint32_t) * (t->max_id + 1));

    if (last == NULL)
        return -1;
    for (size_t i = 0; i < t->nreqs; i++)
        for (uint32_t b = 0; b < t->reqs[i].nfull && b < t->reqs[i].nids; b++)
            last[t->reqs[i].ids[b]] = (uint32_t)i;
    for (size_t i = 0; i < t->nreqs; i++) {
        const struct kb_trace_req *r = &t->reqs[i];
        uint32_t n = r->nfull < r->nids ? r->nfull : r->nids;
        t->reqs[i].done = n > 0 && last[r->ids[n - 1]] == i;
    }
    free(last);
    return 0;
}

int kb_trace_load(const char *path, struct kb_trace *t, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t linecap = 0, lineno = 0, idcap = 1 << 16, reqcap = 1024;
    ssize_t len;
    const char *why;
    int rc = -1;

    memset(t, 0, sizeof(*t));
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    t->ids = malloc(idcap * sizeof(uint32_t));
    t->reqs = malloc(reqcap * sizeof(*t->reqs));
    if (t->ids == NULL || t->reqs == NULL)
        goto nomem;
    while ((len = getline(&line, &linecap, f)) > 0) {
        lineno++;
        if (strspn(line, " \t\r\n") == (size_t)len)
            continue;
        /* a line of L bytes holds fewer than L/2 + 1 numbers */
        size_t need = t->nids + (size_t)len / 2 + 1;
        if (need > idcap) {
            while (idcap < need)
                idcap *= 2;
            uint32_t *n = realloc(t->ids, idcap * sizeof(uint32_t));
            if (n == NULL)
                goto nomem;
            t->ids = n;
        }
        if (t->nreqs == reqcap) {
            struct kb_trace_req *n = realloc(t->reqs, 2 * reqcap * sizeof(*n));
            if (n == NULL)
                goto nomem;
            t->reqs = n;
            reqcap *= 2;
        }
        struct kb_trace_req *r = &t->reqs[t->nreqs];
        if (kb_trace_parse_line(line, r, t->ids + t->nids, idcap - t->nids, &why)) {
            snprintf(err, errlen, "%s:%zu: %s", path, lineno, why);
            goto out;
        }
        for (uint32_t i = 0; i < r->nids; i++)
            if (r->ids[i] > t->max_id)
                t->max_id = r->ids[i];
        if (r->nids > t->max_blocks)
            t->max_blocks = r->nids;
        /* keep an offset now: ids may move on realloc */
        r->ids = (uint32_t *)(uintptr_t)t->nids;
        t->nids += r->nids;
        t->nreqs++;
    }
    if (t->nreqs == 0) {
        snprintf(err, errlen, "%s: no requests", path);
        goto out;
    }
    for (size_t i = 0; i < t->nreqs; i++)
        t->reqs[i].ids = t->ids + (uintptr_t)t->reqs[i].ids;
    if (trace_mark_done(t) < 0)
        goto nomem;
    rc = 0;
    goto out;
nomem:
    snprintf(err, errlen, "%s: out of memory", path);
out:
    free(line);
    fclose(f);
    if (rc)
        kb_trace_free(t);
    return rc;
}

void kb_trace_free(struct kb_trace *t)
{
    free(t->reqs);
    free(t->ids);
    memset(t, 0, sizeof(*t));
}
