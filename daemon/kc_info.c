/*
 * kc_info.c - the inspection answers that copy many fields: Stats and
 * ListNamespaces.
 */
#include <stdlib.h>
#include <string.h>

#include "daemon/kc_conn.h"
#include "daemon/kc_dispatch.h"
#include "daemon/kc_reply.h"
#include "daemon/kc_daemon.h"
#include "daemon/kc_info.h"
#include "kc_nsid.h"

int op_stats(struct conn *c, Kvcache__Request *q, uint64_t t0)
{
    struct server *s = c->srv;
    const struct daemon_stats *d = &s->stats;
    Kvcache__Response r = KVCACHE__RESPONSE__INIT;
    Kvcache__StatsResponse sr = KVCACHE__STATS_RESPONSE__INIT;
    Kvcache__OpLatency lat[OPK_COUNT], *latp[OPK_COUNT];
    struct store_stats ss;

    store_stats(s->st, &ss);
    sr.items = ss.items;
    sr.bytes = ss.bytes;
    sr.index_capacity = ss.index_capacity;
    sr.index_bytes = ss.index_bytes;
    sr.index_entry_bytes = ss.index_entry_bytes;
    sr.mem_slabs = ss.mem_slabs;
    sr.mem_slabs_free = ss.mem_slabs_free;
    sr.mem_bytes = ss.mem_bytes;
    sr.ssd_slabs = ss.ssd_slabs;
    sr.ssd_slabs_free = ss.ssd_slabs_free;
    sr.slab_size = ss.slab_size;
    sr.device_size = ss.device_size;
    sr.puts = ss.puts;
    sr.puts_exists = ss.puts_exists;
    sr.puts_rejected = ss.puts_rejected;
    sr.put_bytes = ss.put_bytes;
    sr.gets = ss.gets;
    sr.hits = ss.hits;
    sr.hits_mem = ss.hits_mem;
    sr.misses = ss.misses;
    sr.hit_bytes = ss.hit_bytes;
    sr.deletes = ss.deletes;
    sr.evictions = ss.evictions;
    sr.evicted_items = ss.evicted_items;
    sr.flushes = ss.flushes;
    sr.bytes_written = ss.bytes_written;
    sr.bytes_read = ss.bytes_read;
    sr.checksum_failures = ss.checksum_failures;
    sr.io_errors = ss.io_errors;
    sr.miss_bytes = d->miss_bytes;
    sr.uptime_s = (loop_now_ns() - d->start_ns) / 1000000000ull;
    sr.connections = d->conns;
    sr.connections_total = d->conns_total;
    sr.connections_rejected = d->conns_rejected;
    sr.bytes_in = d->bytes_in;
    sr.bytes_out = d->bytes_out;
    sr.requests = d->requests;
    sr.protocol_errors = d->protocol_errors;
    sr.limit_errors = d->limit_errors;
    sr.idle_closed = d->idle_closed;
    sr.busy_retries = d->busy_retries;
    sr.shm_attached = d->shm_attached;
    sr.leases = d->leases;
    sr.leases_expired = d->leases_expired;
    sr.leased_bytes = d->leased_bytes;
    sr.ref_inline_blocks = d->ref_inline_blocks;
    sr.staged_puts = d->staged_puts;
    sr.quota_refused = d->quota_refused;
    for (int i = 0; i < OPK_COUNT; i++) {
        kvcache__op_latency__init(&lat[i]);
        latp[i] = &lat[i];
        lat[i].op = (char *)op_name(i);
        lat[i].count = d->op[i].count;
        lat[i].errors = d->op_errors[i];
        lat[i].p50_us = hist_quantile_us(&d->op[i], 0.50);
        lat[i].p99_us = hist_quantile_us(&d->op[i], 0.99);
        lat[i].max_us = (double)d->op[i].max_ns / 1000.0;
    }
    sr.n_latency = OPK_COUNT;
    sr.latency = latp;
    r.id = q->id;
    r.result_case = KVCACHE__RESPONSE__RESULT_STATS;
    r.stats = &sr;
    return rpc_reply(c, OPK_STATS, t0, &r);
}

/* One namespace of the list, its descriptor parsed back from the store. */
struct ns_entry {
    Kvcache__NamespaceInfo info;
    Kvcache__NamespaceDesc desc;
    char model[KC_NS_MODEL_MAX + 1];
    char dtype[KC_NS_DTYPE_MAX + 1];
};

int op_list_namespaces(struct conn *c, Kvcache__Request *q, uint64_t t0)
{
    Kvcache__Response r = KVCACHE__RESPONSE__INIT;
    Kvcache__ListNamespacesResponse lr = KVCACHE__LIST_NAMESPACES_RESPONSE__INIT;
    struct store_ns_info in;
    struct ns_entry *e = NULL;
    Kvcache__NamespaceInfo **ptrs = NULL;
    size_t n = 0, cap = 0;
    int ret;

    for (size_t i = 0; store_ns_at(c->srv->st, i, &in) == 0; i++) {
        struct kc_ns_desc d;

        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            struct ns_entry *ne = realloc(e, ncap * sizeof(*e));

            if (ne == NULL)
                break;
            e = ne;
            cap = ncap;
        }
        kvcache__namespace_info__init(&e[n].info);
        e[n].info.ns = in.id;
        e[n].info.block_bytes = in.block_bytes;
        e[n].info.items = in.items;
        e[n].info.bytes = in.bytes;
        if (kc_ns_parse(in.desc, in.desc_len, &d) == 0) {
            kvcache__namespace_desc__init(&e[n].desc);
            memcpy(e[n].model, d.model, d.model_len);
            e[n].model[d.model_len] = '\0';
            memcpy(e[n].dtype, d.dtype, d.dtype_len);
            e[n].dtype[d.dtype_len] = '\0';
            e[n].desc.layer_begin = d.layer_begin;
            e[n].desc.layer_end = d.layer_end;
            e[n].desc.tokens_per_block = d.tokens_per_block;
            e[n].desc.kv_heads = d.kv_heads;
            e[n].desc.head_dim = d.head_dim;
            e[n].desc.block_bytes = d.block_bytes;
            e[n].info.desc = &e[n].desc;   /* any non-NULL: set below */
        }
        n++;
    }
    /* every pointer into e[] is taken only now: a realloc above moves the
     * entries, and a pointer taken inside the loop would dangle */
    ptrs = calloc(n + 1, sizeof(*ptrs));
    for (size_t i = 0; ptrs && i < n; i++) {
        if (e[i].info.desc) {
            e[i].desc.model = e[i].model;
            e[i].desc.dtype = e[i].dtype;
            e[i].info.desc = &e[i].desc;
        }
        ptrs[i] = &e[i].info;
    }
    lr.n_namespaces = ptrs ? n : 0;
    lr.namespaces = ptrs;
    r.id = q->id;
    r.result_case = KVCACHE__RESPONSE__RESULT_LIST_NAMESPACES;
    r.list_namespaces = &lr;
    ret = rpc_reply(c, OPK_LIST_NAMESPACES, t0, &r);
    free(ptrs);
    free(e);
    return ret;
}

void info_health(struct server *s, struct health *h)
{
    struct store_stats ss;

    store_stats(s->st, &ss);
    stats_health(&s->stats, ss.io_errors, s->opts->health_latency_ms,
                 s->opts->health_errors, s->stopping, h);
}
