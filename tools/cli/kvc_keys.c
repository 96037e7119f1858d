/*
 * kvc_keys.c - `kvcache match | get | put | describe | keys`: operations
 * on a namespace and a list of keys, given in hex (the 16 wire bytes, as
 * `kvcache keys` prints them) or computed from a token sequence exactly as
 * the client computes them (kvcache_keys, see client/kvcache.h).
 *
 * A namespace is given by its id (16 hex digits, 0x optional) or by its
 * descriptor, "model=M,layers=B-E,tpb=T,dtype=D,heads=H,dim=D,block=SIZE",
 * whose id is computed locally; `put` opens such a namespace first.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <xxhash.h>

#include "kvc_json.h"
#include "kvc_keyset.h"
#include "kvc_rpc.h"

/* Options shared by the key commands. */
static const char *o_tokens, *o_tokens_file, *o_in, *o_out, *o_pattern;
static long o_block_tokens, o_block_size;
static bool o_prefix, o_no_describe;

#define KEY_OPTS \
    { "tokens", 't', "LIST", "token ids, comma or space separated: keys of its full blocks", \
      &o_tokens, NULL, NULL }, \
    { "tokens-file", 'T', "FILE", "token ids from a file", &o_tokens_file, NULL, NULL }, \
    { "block-tokens", 0, "N", "tokens per block (default: the namespace's)", NULL, \
      &o_block_tokens, NULL }

static const char key_details[] =
    "NS is a namespace id (16 hex digits) or a descriptor\n"
    "  model=NAME,layers=BEGIN-END,tpb=N,dtype=NAME,heads=N,dim=N,block=SIZE\n"
    "KEY is 32 hex digits: the key's 16 wire bytes (lo half little-endian, then\n"
    "hi), as `kvcache keys` prints them. Or give --tokens to use the chain keys\n"
    "of a token sequence, computed as libkvcache computes them.";

/* kvc_keyset_parse with this file's options. */
static int key_args(struct kvc_ctx *x, const char *cmd, int argc, char **argv, int first,
                    bool need_block, struct kvc_keyset *ks)
{
    const struct kvc_keyopts o = {o_tokens, o_tokens_file, o_block_tokens, o_block_size};

    return kvc_keyset_parse(x, cmd, argc, argv, first, need_block, &o, ks);
}

/* ---- keys ---- */

static const struct kvc_opt keys_opts[] = { KEY_OPTS, { 0 } };
static const struct kvc_cmd keys_cmd = {
    "keys", "NS --tokens LIST", "Print the chain keys of the full blocks of a token sequence, one a\n"
    "line, as libkvcache computes them (no server needed when NS is a\n"
    "descriptor or --block-tokens is given).", key_details, keys_opts,
};

int cmd_keys(struct kvc_ctx *x, int argc, char **argv)
{
    struct kvc_keyset ks;
    char hex[33];
    int rc, first;

    if ((rc = kvc_parse(x, &keys_cmd, argc, argv, &first)) >= 0)
        return rc;
    if ((rc = key_args(x, "keys", argc, argv, first, false, &ks)) >= 0)
        return rc;
    if (x->json)
        printf("{\"ns\": \"0x%016llx\", \"keys\": [", (unsigned long long)ks.ns.id);
    for (size_t i = 0; i < ks.n; i++) {
        kvc_key_hex(ks.keys[i], hex);
        if (x->json)
            printf("%s\"%s\"", i ? ", " : "", hex);
        else
            printf("%s\n", hex);
    }
    if (x->json)
        printf("]}\n");
    free(ks.keys);
    return KVC_EXIT_OK;
}

/* ---- match ---- */

static const struct kvc_opt match_opts[] = { KEY_OPTS, { 0 } };
static const struct kvc_cmd match_cmd = {
    "match", "NS (KEY... | --tokens LIST)", "How many leading keys of a chain the daemon holds "
    "(no data moved).\nExit 0 when all are there, 3 when not.", key_details, match_opts,
};

int cmd_match(struct kvc_ctx *x, int argc, char **argv)
{
    struct kvc_keyset ks;
    size_t matched = 0;
    int rc, first;

    if ((rc = kvc_parse(x, &match_cmd, argc, argv, &first)) >= 0)
        return rc;
    if ((rc = key_args(x, "match", argc, argv, first, false, &ks)) >= 0)
        return rc;
    if (kvc_handle(x) == NULL) {
        free(ks.keys);
        return KVC_EXIT_USAGE;
    }
    rc = kvcache_match(x->kc, ks.ns.id, ks.keys, ks.n, &matched);
    if (rc) {
        kvc_err("match", "%s (%s)", kvcache_strerror(rc), kvcache_last_error(x->kc));
        free(ks.keys);
        return kvc_exit_for(rc);
    }
    if (x->json)
        printf("{\"ns\": \"0x%016llx\", \"keys\": %zu, \"matched\": %zu}\n",
               (unsigned long long)ks.ns.id, ks.n, matched);
    else
        printf("%zu of %zu leading blocks cached\n", matched, ks.n);
    free(ks.keys);
    return matched == ks.n ? KVC_EXIT_OK : KVC_EXIT_MISS;
}

/* ---- exists ---- */

static const struct kvc_opt exists_opts[] = { KEY_OPTS, { 0 } };
static const struct kvc_cmd exists_cmd = {
    "exists", "NS (KEY... | --tokens LIST)", "Which keys the daemon holds, in any order (no data "
    "moved, no device read).\nExit 0 when all are there, 3 when not.", key_details, exists_opts,
};

int cmd_exists(struct kvc_ctx *x, int argc, char **argv)
{
    struct kvc_keyset ks;
    uint8_t *present = NULL;
    size_t n = 0;
    int rc, first;

    if ((rc = kvc_parse(x, &exists_cmd, argc, argv, &first)) >= 0)
        return rc;
    if ((rc = key_args(x, "exists", argc, argv, first, false, &ks)) >= 0)
        return rc;
    if (kvc_handle(x) == NULL) {
        free(ks.keys);
        return KVC_EXIT_USAGE;
    }
    if ((present = calloc(ks.n + 1, 1)) == NULL) {
        rc = KVC_EXIT_ERROR;
        goto out;
    }
    rc = kvcache_exists(x->kc, ks.ns.id, ks.keys, ks.n, present, &n);
    if (rc) {
        kvc_err("exists", "%s (%s)", kvcache_strerror(rc), kvcache_last_error(x->kc));
        rc = kvc_exit_for(rc);
        goto out;
    }
    if (x->json) {
        printf("{\"ns\": \"0x%016llx\", \"keys\": %zu, \"present\": %zu, \"each\": [",
               (unsigned long long)ks.ns.id, ks.n, n);
        for (size_t i = 0; i < ks.n; i++)
            printf("%s%s", i ? ", " : "", present[i] ? "true" : "false");
        printf("]}\n");
    } else {
        for (size_t i = 0; i < ks.n; i++) {
            uint8_t kb[16];
            kvcache_key_to_bytes(ks.keys[i], kb);
            for (int j = 0; j < 16; j++)
                printf("%02x", kb[j]);
            printf(" %s\n", present[i] ? "present" : "absent");
        }
        printf("%zu of %zu keys present\n", n, ks.n);
    }
    rc = n == ks.n ? KVC_EXIT_OK : KVC_EXIT_MISS;
out:
    free(present);
    free(ks.keys);
    return rc;
}

/* ---- describe / get ---- */

/* Where a key lives; JSON fragment or a table line. */
static void describe_one(struct kvc_rpc *r, struct kvc_ctx *x, uint64_t ns, kvcache_key_t k,
                         bool json)
{
    Kvcache__Response *resp;
    int rc = kvc_rpc_describe(r, ns, k, &resp);
    if (rc) {
        if (json)
            printf("null");
        else
            printf("  (describe: %s)", kvc_rpc_error(r));
        if (resp)
            kvcache__response__free_unpacked(resp, NULL);
        return;
    }
    const Kvcache__DescribeKeyResponse *d = resp->describe_key;
    if (json)
        kvc_json_msg(stdout, &d->base);
    else if (d->found)
        printf("  slab %u slot %u chain_pos %u hits %u%s", d->slab, d->slot, d->chain_pos,
               d->hits, d->in_memory ? " dram" : "");
    (void)x;
    kvcache__response__free_unpacked(resp, NULL);
}

static const struct kvc_opt describe_opts[] = { KEY_OPTS, { 0 } };
static const struct kvc_cmd describe_cmd = {
    "describe", "NS (KEY... | --tokens LIST)", "Where each key lives: slab, slot, length, chain "
    "position, hits, whether\na DRAM copy exists. Exit 3 when a key is missing.", key_details,
    describe_opts,
};

int cmd_describe(struct kvc_ctx *x, int argc, char **argv)
{
    struct kvc_keyset ks;
    struct kvc_rpc *r;
    int rc, first, missing = 0;
    char hex[33];

    if ((rc = kvc_parse(x, &describe_cmd, argc, argv, &first)) >= 0)
        return rc;
    if ((rc = key_args(x, "describe", argc, argv, first, false, &ks)) >= 0)
        return rc;
    if ((r = kvc_rpc_open(x, "describe", &rc)) == NULL) {
        free(ks.keys);
        return rc;
    }
    if (x->json)
        printf("{\"ns\": \"0x%016llx\", \"keys\": [", (unsigned long long)ks.ns.id);
    for (size_t i = 0; i < ks.n; i++) {
        Kvcache__Response *resp;
        kvc_key_hex(ks.keys[i], hex);
        if ((rc = kvc_rpc_describe(r, ks.ns.id, ks.keys[i], &resp)) != 0) {
            if (x->json)
                printf("]}\n");
            rc = kvc_rpc_fail(r, "describe", rc, resp);
            goto out;
        }
        const Kvcache__DescribeKeyResponse *d = resp->describe_key;
        missing += !d->found;
        if (x->json) {
            printf("%s{\"key\": \"%s\", \"where\": ", i ? ", " : "", hex);
            kvc_json_msg(stdout, &d->base);
            printf("}");
        } else if (d->found) {
            printf("%s  length %u slab %u slot %u chain_pos %u hits %u%s\n", hex, d->length,
                   d->slab, d->slot, d->chain_pos, d->hits, d->in_memory ? " dram" : "");
        } else {
            printf("%s  missing\n", hex);
        }
        kvcache__response__free_unpacked(resp, NULL);
    }
    if (x->json)
        printf("]}\n");
    rc = missing ? KVC_EXIT_MISS : KVC_EXIT_OK;
out:
    kvc_rpc_destroy(r);
    free(ks.keys);
    return rc;
}

static const struct kvc_opt get_opts[] = {
    KEY_OPTS,
    { "out", 'o', "FILE", "write the blocks found, back to back, to FILE (\"-\": stdout)",
      &o_out, NULL, NULL },
    { "prefix", 'p', NULL, "GetPrefix: only the leading run of present keys", NULL, NULL,
      &o_prefix },
    { "block-size", 'b', "BYTES", "buffer per block (default: the namespace's block size)",
      NULL, &o_block_size, NULL },
    { "no-describe", 0, NULL, "do not ask where each block lives", NULL, NULL, &o_no_describe },
    { 0 },
};
static const struct kvc_cmd get_cmd = {
    "get", "NS (KEY... | --tokens LIST)", "Fetch blocks: per key found or missing, its length "
    "and xxh3-64, and where\nit lives. --out dumps the blocks. Exit 3 when a key is missing.",
    key_details, get_opts,
};

int cmd_get(struct kvc_ctx *x, int argc, char **argv)
{
    struct kvc_keyset ks;
    struct kvc_rpc *r = NULL;
    void **bufs = NULL;
    uint32_t *lens = NULL;
    size_t found = 0;
    FILE *out = NULL;
    char hex[33];
    int rc, first;

    if ((rc = kvc_parse(x, &get_cmd, argc, argv, &first)) >= 0)
        return rc;
    if ((rc = key_args(x, "get", argc, argv, first, true, &ks)) >= 0)
        return rc;
    if (ks.block == 0) {
        kvc_err("get", "block size unknown (variable-size namespace): give --block-size");
        rc = KVC_EXIT_USAGE;
        goto out;
    }
    bufs = calloc(ks.n, sizeof(*bufs));
    lens = calloc(ks.n, sizeof(*lens));
    rc = KVC_EXIT_ERROR;
    if (bufs == NULL || lens == NULL)
        goto out;
    for (size_t i = 0; i < ks.n; i++)
        if ((bufs[i] = malloc(ks.block)) == NULL)
            goto out;
    if (o_out && (out = strcmp(o_out, "-") ? fopen(o_out, "wb") : stdout) == NULL) {
        kvc_err("get", "%s: %s", o_out, strerror(errno));
        goto out;
    }
    if (kvc_handle(x) == NULL) {
        rc = KVC_EXIT_USAGE;
        goto out;
    }
    int err = o_prefix ? kvcache_get_prefix(x->kc, ks.ns.id, ks.keys, ks.n, bufs, ks.block, lens,
                                            &found)
                       : kvcache_get(x->kc, ks.ns.id, ks.keys, ks.n, bufs, ks.block, lens, &found);
    if (err) {
        kvc_err("get", "%s (%s)", kvcache_strerror(err), kvcache_last_error(x->kc));
        rc = kvc_exit_for(err);
        goto out;
    }
    if (o_prefix)
        for (size_t i = found; i < ks.n; i++)
            lens[i] = 0;
    if (!o_no_describe)
        r = kvc_rpc_create(x->server, x->timeout_ms);
    /* with --out -, the report goes to stderr */
    FILE *rep = out == stdout ? stderr : stdout;
    size_t hits = 0;
    if (x->json)
        fprintf(rep, "{\"ns\": \"0x%016llx\", \"keys\": [", (unsigned long long)ks.ns.id);
    for (size_t i = 0; i < ks.n; i++) {
        kvc_key_hex(ks.keys[i], hex);
        uint64_t sum = lens[i] ? XXH3_64bits(bufs[i], lens[i]) : 0;
        hits += lens[i] > 0;
        if (out && lens[i] && fwrite(bufs[i], 1, lens[i], out) != lens[i]) {
            kvc_err("get", "%s: %s", o_out, strerror(errno));
            goto out;
        }
        if (x->json) {
            fprintf(rep, "%s{\"key\": \"%s\", \"found\": %s, \"length\": %u, \"xxh3\": "
                         "\"%016llx\", \"where\": ", i ? ", " : "", hex,
                    lens[i] ? "true" : "false", lens[i], (unsigned long long)sum);
            fflush(rep);
            if (r && lens[i] && rep == stdout)
                describe_one(r, x, ks.ns.id, ks.keys[i], true);
            else
                fprintf(rep, "null");
            fprintf(rep, "}");
        } else if (lens[i]) {
            fprintf(rep, "%s  found  %u bytes  xxh3 %016llx", hex, lens[i],
                    (unsigned long long)sum);
            fflush(rep);
            if (r && rep == stdout)
                describe_one(r, x, ks.ns.id, ks.keys[i], false);
            fprintf(rep, "\n");
        } else {
            fprintf(rep, "%s  missing\n", hex);
        }
    }
    if (x->json)
        fprintf(rep, "], \"found\": %zu}\n", hits);
    rc = hits == ks.n ? KVC_EXIT_OK : KVC_EXIT_MISS;
out:
    if (out && out != stdout && fclose(out) != 0 && rc == KVC_EXIT_OK)
        rc = KVC_EXIT_ERROR;
    kvc_rpc_destroy(r);
    for (size_t i = 0; bufs && i < ks.n; i++)
        free(bufs[i]);
    free(bufs);
    free(lens);
    free(ks.keys);
    return rc;
}

/* ---- put ---- */

static const struct kvc_opt put_opts[] = {
    KEY_OPTS,
    { "in", 'i', "FILE", "block data: one block (used for every key) or one per key, back to "
                         "back", &o_in, NULL, NULL },
    { "pattern", 'P', "BYTE", "fill each block with this byte (default: the key, repeated)",
      &o_pattern, NULL, NULL },
    { "block-size", 'b', "BYTES", "block size (default: the namespace's)", NULL, &o_block_size,
      NULL },
    { 0 },
};
static const struct kvc_cmd put_cmd = {
    "put", "NS (KEY... | --tokens LIST)", "Store blocks under keys (chain positions 0, 1, ... in "
    "the order given).\nA descriptor NS is opened (created) first. Exit 1 if a block was "
    "refused.", key_details, put_opts,
};

int cmd_put(struct kvc_ctx *x, int argc, char **argv)
{
    struct kvc_keyset ks;
    char *data = NULL;
    void **bufs = NULL;
    int *status = NULL;
    size_t dlen = 0, stored = 0;
    char hex[33];
    int rc, first;

    if ((rc = kvc_parse(x, &put_cmd, argc, argv, &first)) >= 0)
        return rc;
    if ((rc = key_args(x, "put", argc, argv, first, true, &ks)) >= 0)
        return rc;
    rc = KVC_EXIT_USAGE;
    if (ks.block == 0) {
        kvc_err("put", "block size unknown: give --block-size");
        goto out;
    }
    if (o_in) {
        if ((data = kvc_read_file(o_in, &dlen)) == NULL) {
            kvc_err("put", "%s: %s", o_in, strerror(errno));
            goto out;
        }
        if (dlen != ks.block && dlen != (size_t)ks.block * ks.n) {
            kvc_err("put", "%s: %zu bytes: want %u (one block) or %zu (one per key)", o_in, dlen,
                    ks.block, (size_t)ks.block * ks.n);
            goto out;
        }
    }
    unsigned long pat = 0;
    if (o_pattern) {
        char *end;
        pat = strtoul(o_pattern, &end, 0);
        if (*end || end == o_pattern || pat > 255) {
            kvc_err("put", "--pattern: a byte, 0..255");
            goto out;
        }
    }
    bufs = calloc(ks.n, sizeof(*bufs));
    status = calloc(ks.n, sizeof(*status));
    rc = KVC_EXIT_ERROR;
    if (bufs == NULL || status == NULL)
        goto out;
    for (size_t i = 0; i < ks.n; i++) {
        if (data) {
            bufs[i] = data + (dlen == ks.block ? 0 : i * (size_t)ks.block);
            continue;
        }
        uint8_t *b = malloc(ks.block), kb[16];
        if ((bufs[i] = b) == NULL)
            goto out;
        kvcache_key_to_bytes(ks.keys[i], kb);
        for (uint32_t j = 0; j < ks.block; j++)
            b[j] = o_pattern ? (uint8_t)pat : kb[j % 16];
    }
    if (kvc_handle(x) == NULL) {
        rc = KVC_EXIT_USAGE;
        goto out;
    }
    if (ks.ns.has_desc) {
        uint64_t id;
        int err = kvcache_open_namespace(x->kc, &ks.ns.desc, &id);
        if (err) {
            kvc_err("put", "open namespace: %s (%s)", kvcache_strerror(err),
                    kvcache_last_error(x->kc));
            rc = kvc_exit_for(err);
            goto out;
        }
    }
    int err = kvcache_put(x->kc, ks.ns.id, ks.keys, ks.n, 0, (const void *const *)bufs, ks.block,
                          status, &stored);
    if (err && stored == 0) {
        kvc_err("put", "%s (%s)", kvcache_strerror(err), kvcache_last_error(x->kc));
        rc = kvc_exit_for(err);
        goto out;
    }
    if (x->json)
        printf("{\"ns\": \"0x%016llx\", \"keys\": [", (unsigned long long)ks.ns.id);
    for (size_t i = 0; i < ks.n; i++) {
        const char *what = status[i] == KVCACHE_PUT_STORED ? "stored"
                         : status[i] == KVCACHE_PUT_EXISTS ? "exists" : kvcache_strerror(status[i]);
        kvc_key_hex(ks.keys[i], hex);
        if (x->json) {
            printf("%s{\"key\": \"%s\", \"status\": ", i ? ", " : "", hex);
            kvc_json_str(stdout, what);
            printf("}");
        } else {
            printf("%s  %s\n", hex, what);
        }
    }
    if (x->json)
        printf("], \"stored\": %zu}\n", stored);
    rc = stored == ks.n ? KVC_EXIT_OK : KVC_EXIT_ERROR;
out:
    for (size_t i = 0; bufs && !data && i < ks.n; i++)
        free(bufs[i]);
    free(bufs);
    free(status);
    free(data);
    free(ks.keys);
    return rc;
}
