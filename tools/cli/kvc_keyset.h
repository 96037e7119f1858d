/*
 * kvc_keyset.h - what the key commands (match, get, put, describe, keys)
 * are given: a namespace by id (16 hex digits, 0x optional) or by
 * descriptor "model=M,layers=B-E,tpb=T,dtype=D,heads=H,dim=D,block=SIZE"
 * (its id computed locally), and keys in hex or as the chain keys of a
 * token sequence, computed as libkvcache computes them.
 */
#ifndef KVC_KEYSET_H
#define KVC_KEYSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvc_rpc.h"

/* A parsed namespace argument. */
struct kvc_ns_arg {
    uint64_t id;                /* the namespace id */
    bool has_desc;              /* given by descriptor: desc holds it */
    kvcache_ns_desc_t desc;     /* the descriptor (strings in model, dtype) */
    char model[257], dtype[33]; /* storage of desc's strings */
};

/* The work of one key command: namespace, keys, block size. */
struct kvc_keyset {
    struct kvc_ns_arg ns;    /* the namespace */
    kvcache_key_t *keys;     /* the keys (malloc'd) */
    size_t n;                /* how many */
    uint32_t block;          /* namespace block size (0 unknown / variable) */
};

/* The token options of a key command. */
struct kvc_keyopts {
    const char *tokens;         /* --tokens LIST, or NULL */
    const char *tokens_file;    /* --tokens-file FILE, or NULL */
    long block_tokens;          /* --block-tokens (0: the namespace's) */
    long block_size;            /* --block-size (0: the namespace's) */
};

/*
 * Parse "NS KEY..." or "NS --tokens ..." (argv[first..argc)) into ks.
 * need_block: look up the block size too. Returns -1 on success, else an
 * exit code (the error printed).
 */
int kvc_keyset_parse(struct kvc_ctx *x, const char *cmd, int argc, char **argv, int first,
                     bool need_block, const struct kvc_keyopts *o, struct kvc_keyset *ks);

/* The 32 hex digits of a key's 16 wire bytes. */
void kvc_key_hex(kvcache_key_t k, char out[33]);

/* A whole file, NUL-terminated, its length in *len (malloc'd; NULL with
 * errno set on failure). */
char *kvc_read_file(const char *path, size_t *len);

#endif
