/*
 * kvc_keyset.c - the arguments of the key commands (kvc_keys.c): a
 * namespace (id or descriptor), keys in hex or computed from tokens, and
 * the block size, looked up on the server when not given.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kvc_keyset.h"

/* A 64-bit number in hex (0x optional, at most 16 digits). */
static int parse_hex_u64(const char *s, uint64_t *v)
{
    char *end;
    if (!strncasecmp(s, "0x", 2))
        s += 2;
    if (*s == '\0' || strlen(s) > 16)
        return -1;
    errno = 0;
    *v = strtoull(s, &end, 16);
    return errno || *end ? -1 : 0;
}

/* Size with an optional k/m/g suffix. */
static int parse_size(const char *s, uint64_t *v)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(s, &end, 0);
    if (errno || end == s)
        return -1;
    switch (*end) {
    case 'k': case 'K': n <<= 10; end++; break;
    case 'm': case 'M': n <<= 20; end++; break;
    case 'g': case 'G': n <<= 30; end++; break;
    default: break;
    }
    *v = n;
    return *end ? -1 : 0;
}

/* A namespace argument: an id in hex or a descriptor (see kvc_keyset.h). */
static int parse_ns(const char *cmd, const char *s, struct kvc_ns_arg *n)
{
    memset(n, 0, sizeof(*n));
    if (strchr(s, '=') == NULL) {
        if (parse_hex_u64(s, &n->id)) {
            kvc_err(cmd, "bad namespace \"%s\": an id in hex or a descriptor", s);
            return -1;
        }
        return 0;
    }
    char *dup = strdup(s), *save = NULL;
    int rc = 0;
    n->desc.layer_end = 1;
    for (char *kv = strtok_r(dup, ",", &save); kv && rc == 0; kv = strtok_r(NULL, ",", &save)) {
        char *v = strchr(kv, '=');
        uint64_t num = 0;
        unsigned a, b;
        if (v == NULL) {
            rc = -1;
            break;
        }
        *v++ = '\0';
        if (!strcmp(kv, "model")) {
            snprintf(n->model, sizeof(n->model), "%s", v);
        } else if (!strcmp(kv, "dtype")) {
            snprintf(n->dtype, sizeof(n->dtype), "%s", v);
        } else if (!strcmp(kv, "layers")) {
            if (sscanf(v, "%u-%u", &a, &b) != 2)
                rc = -1;
            n->desc.layer_begin = a;
            n->desc.layer_end = b;
        } else if (parse_size(v, &num) || num > UINT32_MAX) {
            rc = -1;
        } else if (!strcmp(kv, "tpb")) {
            n->desc.tokens_per_block = (uint32_t)num;
        } else if (!strcmp(kv, "heads")) {
            n->desc.kv_heads = (uint32_t)num;
        } else if (!strcmp(kv, "dim")) {
            n->desc.head_dim = (uint32_t)num;
        } else if (!strcmp(kv, "block")) {
            n->desc.block_bytes = (uint32_t)num;
        } else {
            rc = -1;
        }
    }
    free(dup);
    n->desc.model = n->model;
    n->desc.dtype = n->dtype;
    if (rc || kvcache_ns_id(&n->desc, &n->id)) {
        kvc_err(cmd, "bad namespace descriptor \"%s\" (see --help)", s);
        return -1;
    }
    n->has_desc = true;
    return 0;
}

/* A key as 32 hex digits (its 16 wire bytes). */
static int parse_key(const char *s, kvcache_key_t *k)
{
    uint8_t b[16];
    if (strlen(s) != 32)
        return -1;
    for (int i = 0; i < 16; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        b[i] = (uint8_t)v;
    }
    *k = kvcache_key_from_bytes(b);
    return 0;
}

void kvc_key_hex(kvcache_key_t k, char out[33])
{
    uint8_t b[16];
    kvcache_key_to_bytes(k, b);
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* What the daemon says of namespace id (block size, tokens per block). */
static int ns_lookup(struct kvc_ctx *x, const char *cmd, uint64_t id, uint32_t *block,
                     uint32_t *tpb)
{
    struct kvc_rpc *r;
    Kvcache__Response *resp;
    int rc;

    if ((r = kvc_rpc_open(x, cmd, &rc)) == NULL)
        return rc;
    if ((rc = kvc_rpc_list_ns(r, &resp)) != 0) {
        rc = kvc_rpc_fail(r, cmd, rc, resp);
        kvc_rpc_destroy(r);
        return rc;
    }
    rc = KVC_EXIT_MISS;
    for (size_t i = 0; i < resp->list_namespaces->n_namespaces; i++) {
        const Kvcache__NamespaceInfo *n = resp->list_namespaces->namespaces[i];
        if (n->ns != id)
            continue;
        *block = n->block_bytes;
        *tpb = n->desc ? n->desc->tokens_per_block : 0;
        rc = 0;
    }
    if (rc)
        kvc_err(cmd, "namespace %016llx: not known to %s", (unsigned long long)id, x->server);
    kvcache__response__free_unpacked(resp, NULL);
    kvc_rpc_destroy(r);
    return rc;
}

/* Read token ids from a string. */
static int parse_tokens(const char *s, uint32_t **out, size_t *n)
{
    size_t cap = 256;
    uint32_t *t = malloc(cap * sizeof(*t));
    *n = 0;
    if (t == NULL)
        return -1;
    while (*s) {
        char *end;
        if (strchr(", \t\r\n", *s)) {
            s++;
            continue;
        }
        errno = 0;
        unsigned long v = strtoul(s, &end, 0);
        if (errno || end == s || v > UINT32_MAX) {
            free(t);
            return -1;
        }
        if (*n == cap) {
            uint32_t *nt = realloc(t, 2 * cap * sizeof(*t));
            if (nt == NULL) {
                free(t);
                return -1;
            }
            t = nt;
            cap *= 2;
        }
        t[(*n)++] = (uint32_t)v;
        s = end;
    }
    *out = t;
    return 0;
}

/* A whole file, NUL-terminated (malloc'd; NULL with errno on failure). */
char *kvc_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long sz;
    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (sz = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)sz + 1)) != NULL) {
        *len = fread(buf, 1, (size_t)sz, f);
        buf[*len] = '\0';
    }
    fclose(f);
    return buf;
}

int kvc_keyset_parse(struct kvc_ctx *x, const char *cmd, int argc, char **argv, int first,
                     bool need_block, const struct kvc_keyopts *o, struct kvc_keyset *ks)
{
    uint32_t tpb = 0, block = 0;
    int rc;

    memset(ks, 0, sizeof(*ks));
    if (first >= argc) {
        kvc_err(cmd, "missing namespace (see --help)");
        return KVC_EXIT_USAGE;
    }
    if (parse_ns(cmd, argv[first++], &ks->ns))
        return KVC_EXIT_USAGE;
    if (ks->ns.has_desc) {
        tpb = ks->ns.desc.tokens_per_block;
        block = ks->ns.desc.block_bytes;
    }
    bool tokens = o->tokens || o->tokens_file;
    if (tokens == (first < argc)) {
        kvc_err(cmd, tokens ? "keys and --tokens both given" : "no keys (or --tokens) given");
        return KVC_EXIT_USAGE;
    }
    if (o->block_tokens > 0)
        tpb = (uint32_t)o->block_tokens;
    if (!ks->ns.has_desc && ((tokens && tpb == 0) || (need_block && o->block_size <= 0))) {
        uint32_t t2 = 0;
        if ((rc = ns_lookup(x, cmd, ks->ns.id, &block, &t2)) != 0)
            return rc;
        if (tpb == 0)
            tpb = t2;
    }
    if (o->block_size > 0)
        block = (uint32_t)o->block_size;
    ks->block = block;
    if (tokens) {
        uint32_t *tok;
        size_t ntok, flen;
        char *text = o->tokens ? strdup(o->tokens) : kvc_read_file(o->tokens_file, &flen);
        if (text == NULL) {
            kvc_err(cmd, "%s: %s", o->tokens_file ? o->tokens_file : "tokens", strerror(errno));
            return KVC_EXIT_USAGE;
        }
        rc = parse_tokens(text, &tok, &ntok);
        free(text);
        if (rc) {
            kvc_err(cmd, "bad token list");
            return KVC_EXIT_USAGE;
        }
        if (tpb == 0) {
            free(tok);
            kvc_err(cmd, "tokens per block unknown: give --block-tokens");
            return KVC_EXIT_USAGE;
        }
        ks->n = ntok / tpb;
        ks->keys = calloc(ks->n + 1, sizeof(*ks->keys));
        if (ks->keys)
            kvcache_keys(ks->ns.id, NULL, tok, ntok, tpb, ks->keys, ks->n);
        free(tok);
        if (ks->n == 0) {
            kvc_err(cmd, "fewer tokens than one block (%u)", tpb);
            return KVC_EXIT_USAGE;
        }
    } else {
        ks->n = (size_t)(argc - first);
        ks->keys = calloc(ks->n, sizeof(*ks->keys));
        for (size_t i = 0; ks->keys && i < ks->n; i++)
            if (parse_key(argv[first + i], &ks->keys[i])) {
                kvc_err(cmd, "bad key \"%s\": 32 hex digits", argv[first + i]);
                free(ks->keys);
                ks->keys = NULL;
                return KVC_EXIT_USAGE;
            }
    }
    return ks->keys ? -1 : KVC_EXIT_ERROR;
}

