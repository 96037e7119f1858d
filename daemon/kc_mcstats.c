/*
 * kc_mcstats.c - memcached's stats command and its sub-commands on the
 * memcache port: memcached's names where they mean the same, kc_* for
 * the SSD tier. `stats slabs` and `stats items` describe the store as one
 * memcached slab class (format 3 slabs pack items of any size): chunks are
 * the 64-byte units items are laid out in, pages are slabs (docs/pool.md).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon/kc_conn.h"
#include "daemon/kc_mcconn.h"
#include "daemon/kc_daemon.h"

/* What `version` and `stats` call the protocol level. */
#define MC_STATS_VERSION "1.6.0"
/* The unit items are laid out in within a slab: memcached's "chunk". */
#define MC_CHUNK 64

/* The general stats. */
static void mc_stats_general(struct conn *c, struct sbuf *b)
{
    struct server *s = c->srv;
    struct daemon_stats *d = &s->stats;
    struct mc_state *m = &s->mcs;
    struct store_stats ss;
    uint64_t now = loop_now_ns();

    store_stats(s->st, &ss);
    sbuf_printf(b, "STAT pid %d\r\n", (int)getpid());
    sbuf_printf(b, "STAT uptime %llu\r\n",
                (unsigned long long)((now - d->start_ns) / 1000000000ull));
    sbuf_printf(b, "STAT time %lld\r\n", (long long)time(NULL));
    sbuf_printf(b, "STAT version %s\r\n", MC_STATS_VERSION);
    sbuf_printf(b, "STAT kc_version %s\r\n", KC_VERSION);
    sbuf_printf(b, "STAT pointer_size %d\r\n", (int)(8 * sizeof(void *)));
    sbuf_printf(b, "STAT curr_connections %llu\r\n", (unsigned long long)d->conns);
    sbuf_printf(b, "STAT total_connections %llu\r\n",
                (unsigned long long)d->conns_total);
#define MC_PRINT(n) sbuf_printf(b, "STAT " #n " %llu\r\n", (unsigned long long)m->n);
    MC_COUNTERS(MC_PRINT)
#undef MC_PRINT
    sbuf_printf(b, "STAT bytes_read %llu\r\n", (unsigned long long)d->bytes_in);
    sbuf_printf(b, "STAT bytes_written %llu\r\n", (unsigned long long)d->bytes_out);
    sbuf_printf(b, "STAT limit_maxbytes %llu\r\n", (unsigned long long)ss.device_size);
    sbuf_printf(b, "STAT threads 1\r\n");
    sbuf_printf(b, "STAT bytes %llu\r\n", (unsigned long long)ss.bytes);
    sbuf_printf(b, "STAT curr_items %llu\r\n", (unsigned long long)ss.items);
    sbuf_printf(b, "STAT evictions %llu\r\n", (unsigned long long)ss.evicted_items);
    sbuf_printf(b, "STAT kc_gets %llu\r\n", (unsigned long long)ss.gets);
    sbuf_printf(b, "STAT kc_get_hits %llu\r\n", (unsigned long long)ss.hits);
    sbuf_printf(b, "STAT kc_get_hits_mem %llu\r\n", (unsigned long long)ss.hits_mem);
    sbuf_printf(b, "STAT kc_ssd_bytes_read %llu\r\n", (unsigned long long)ss.bytes_read);
    sbuf_printf(b, "STAT kc_ssd_bytes_written %llu\r\n",
                (unsigned long long)ss.bytes_written);
    sbuf_printf(b, "STAT kc_slab_evictions %llu\r\n", (unsigned long long)ss.evictions);
    sbuf_printf(b, "STAT kc_checksum_failures %llu\r\n",
                (unsigned long long)ss.checksum_failures);
    sbuf_printf(b, "STAT kc_io_errors %llu\r\n", (unsigned long long)ss.io_errors);
    sbuf_printf(b, "STAT kc_memcache_get_keys %llu\r\n",
                (unsigned long long)d->mc_get_keys);
    sbuf_printf(b, "STAT kc_memcache_get_hits %llu\r\n",
                (unsigned long long)m->get_hits);
    sbuf_printf(b, "STAT kc_memcache_sets %llu\r\n", (unsigned long long)d->mc_sets);
    sbuf_printf(b, "STAT kc_memcache_errors %llu\r\n", (unsigned long long)d->mc_errors);
}

/* stats settings: what memcached reports, with kvcached's values. */
static void mc_stats_settings(struct conn *c, struct sbuf *b)
{
    struct server *s = c->srv;
    const struct options *o = s->opts;
    struct store_stats ss;

    store_stats(s->st, &ss);
    sbuf_printf(b, "STAT maxbytes %llu\r\n", (unsigned long long)ss.device_size);
    sbuf_printf(b, "STAT maxconns %u\r\n", (unsigned)o->max_conns);
    sbuf_printf(b, "STAT tcpport %d\r\n", s->mc_port);
    sbuf_printf(b, "STAT udpport 0\r\n");
    sbuf_printf(b, "STAT inter %s\r\n", o->memcache_listen);
    sbuf_printf(b, "STAT verbosity 0\r\n");
    sbuf_printf(b, "STAT evictions on\r\n");
    sbuf_printf(b, "STAT num_threads 1\r\n");
    sbuf_printf(b, "STAT cas_enabled yes\r\n");
    sbuf_printf(b, "STAT item_size_max %llu\r\n", (unsigned long long)mc_max_value(c));
    sbuf_printf(b, "STAT flush_enabled yes\r\n");
    sbuf_printf(b, "STAT idle_timeout %llu\r\n", (unsigned long long)o->idle_timeout);
    sbuf_printf(b, "STAT kc_slab_size %llu\r\n", (unsigned long long)ss.slab_size);
    sbuf_printf(b, "STAT kc_memory %llu\r\n", (unsigned long long)ss.mem_bytes);
    sbuf_printf(b, "STAT kc_memcache_block %llu\r\n",
                (unsigned long long)o->memcache_block);
}

/* The store as one memcached slab class: totals over the slabs in use. */
struct mc_class {
    uint32_t slabs;       /* slabs in use (open, flushing or on the device) */
    uint64_t used_bytes;  /* bytes of items written into them */
    uint64_t live_bytes;  /* value bytes of the items still indexed */
    uint64_t live;        /* items still indexed */
};

/* Sum the slab table into cl. */
static void mc_class_sum(struct store *st, struct mc_class *cl)
{
    memset(cl, 0, sizeof(*cl));
    for (uint32_t i = 0; i < store_nslabs(st); i++) {
        struct store_slab_info si;

        if (store_slab_get(st, i, &si) != 0 || si.state == STORE_SLAB_FREE)
            continue;
        cl->slabs++;
        cl->used_bytes += si.used;
        cl->live_bytes += si.live_bytes;
        cl->live += si.nlive;
    }
}

/* stats slabs / stats items: class 1, the whole store. */
static void mc_stats_classes(struct conn *c, struct sbuf *b, bool items)
{
    struct store_stats ss;
    struct mc_class cl;

    store_stats(c->srv->st, &ss);
    mc_class_sum(c->srv->st, &cl);
    if (items) {
        sbuf_printf(b, "STAT items:1:number %llu\r\n", (unsigned long long)cl.live);
        sbuf_printf(b, "STAT items:1:age 0\r\n");
        sbuf_printf(b, "STAT items:1:evicted %llu\r\n",
                    (unsigned long long)ss.evicted_items);
        return;
    }
    uint64_t per_page = ss.slab_size / MC_CHUNK, total = per_page * cl.slabs;
    uint64_t used = (cl.used_bytes + MC_CHUNK - 1) / MC_CHUNK;
    if (used > total)
        used = total;
    sbuf_printf(b, "STAT 1:chunk_size %u\r\n", MC_CHUNK);
    sbuf_printf(b, "STAT 1:chunks_per_page %llu\r\n", (unsigned long long)per_page);
    sbuf_printf(b, "STAT 1:total_pages %u\r\n", cl.slabs);
    sbuf_printf(b, "STAT 1:total_chunks %llu\r\n", (unsigned long long)total);
    sbuf_printf(b, "STAT 1:used_chunks %llu\r\n", (unsigned long long)used);
    sbuf_printf(b, "STAT 1:free_chunks %llu\r\n", (unsigned long long)(total - used));
    sbuf_printf(b, "STAT 1:free_chunks_end 0\r\n");
    sbuf_printf(b, "STAT 1:mem_requested %llu\r\n", (unsigned long long)cl.live_bytes);
    sbuf_printf(b, "STAT 1:kc_live_items %llu\r\n", (unsigned long long)cl.live);
    sbuf_printf(b, "STAT active_slabs 1\r\n");
    sbuf_printf(b, "STAT total_malloced %llu\r\n",
                (unsigned long long)((uint64_t)cl.slabs * ss.slab_size));
}

/* stats conns: one group of lines per connection, as memcached. */
static void mc_stats_conns(struct conn *c, struct sbuf *b)
{
    struct server *s = c->srv;
    uint64_t now = loop_now_ns();

    for (struct conn *x = s->conns; x; x = x->next) {
        int fd = x->lh.fd;

        sbuf_printf(b, "STAT %d:addr %s\r\n", fd, x->mc ? "tcp:memcache" :
                    x->is_unix ? "unix" : "tcp");
        sbuf_printf(b, "STAT %d:state %s\r\n", fd,
                    x->state == CS_DATA ? "conn_nread" : "conn_parse_cmd");
        sbuf_printf(b, "STAT %d:secs_since_last_cmd %llu\r\n", fd,
                    (unsigned long long)((now - x->last_active_ns) / 1000000000ull));
    }
}

int mc_cmd_stats(struct conn *c, const struct mc_tok *t, size_t nt)
{
    struct server *s = c->srv;
    struct sbuf b = { 0 };

    if (nt == 1) {
        mc_stats_general(c, &b);
    } else if (nt == 2 && mc_tok_is(&t[1], "reset")) {
        memset(&s->mcs.cmd_get, 0, sizeof(s->mcs) -
               offsetof(struct mc_state, cmd_get));
        mc_reply(c, "RESET\r\n");
        return mc_done(c);
    } else if (nt == 2 && mc_tok_is(&t[1], "settings")) {
        mc_stats_settings(c, &b);
    } else if (nt == 2 && (mc_tok_is(&t[1], "slabs") || mc_tok_is(&t[1], "items"))) {
        mc_stats_classes(c, &b, t[1].p[0] == 'i');
    } else if (nt == 2 && mc_tok_is(&t[1], "conns")) {
        mc_stats_conns(c, &b);
    } else {
        return mc_error(c, "ERROR\r\n");
    }
    sbuf_printf(&b, "END\r\n");
    if (b.p == NULL)
        return mc_error(c, "SERVER_ERROR out of memory\r\n");
    conn_send_text(c, b.p, b.len);
    sbuf_free(&b);
    return mc_done(c);
}
