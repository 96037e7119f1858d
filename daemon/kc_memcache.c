/*
 * kc_memcache.c - memcached's text protocol: classic commands (get, gets,
 * set, add, replace, delete, touch, stats, version, verbosity, quit) and the
 * meta commands mg, ms, md, mn. Replies byte for byte as memcached 1.6
 * sends them, for what is supported; see docs/pool.md for the differences
 * (no client flags, no expiry, no cas).
 */
#include "daemon/kc_memcache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon/kc_conn.h"
#include "daemon/kc_dispatch.h"
#include "daemon/kc_log.h"
#include "daemon/kc_mcget.h"
#include "daemon/kc_mcparse.h"
#include "daemon/kc_server.h"

/* Longest get line (many keys); other commands: memcached's 2048. */
#define MC_LINE_MAX (1u << 20)
#define MC_SHORT_LINE_MAX 2048
/* What `version` answers: the memcached protocol level it speaks first
 * (libmemcached parses major.minor.micro and refuses a major of 0). */
#define MC_VERSION "1.6.0 kvcached-" KC_VERSION
/* Descriptor of namespaces created by a set on the memcache port. */
#define MC_NS_DESC "memcache"

/* What the connection's data sink is filling. */
enum mc_sink {
    MCS_NONE,      /* nothing */
    MCS_SLOT,      /* a reserved slot of a memory slab */
    MCS_TEMP,      /* a heap buffer: the value replaces a present one */
    MCS_SWALLOW,   /* nowhere: a refused value and its \r\n */
};

/* How a store command treats a present key. */
enum mc_mode { MCM_SET, MCM_ADD, MCM_REPLACE };

/* Per-connection memcache state: the value being received. */
struct mc_conn {
    enum mc_sink sink;
    bool trailer;            /* the value is in: "\r\n" expected next */
    bool noreply;            /* classic noreply: no answer at all */
    bool meta;               /* ms: replies are HD / NS + flags */
    bool quiet;              /* ms q: no HD */
    struct store_wslot ws;   /* MCS_SLOT */
    uint8_t *temp;           /* MCS_TEMP */
    uint32_t len;            /* value length */
    uint64_t ns;
    struct kc_key key;
    char flags[MC_FLAGS_MAX];/* meta return flags, " k.. O.." */
    size_t flags_len;
};

static const char ERR_FORMAT[] = "CLIENT_ERROR bad command line format\r\n";

int mc_attach(struct conn *c)
{
    c->mc = calloc(1, sizeof(*c->mc));
    return c->mc ? 0 : -1;
}

/* Queue a NUL-terminated reply unless suppressed. */
static void mc_reply(struct conn *c, const char *s)
{
    conn_send_text(c, s, strlen(s));
}

/* A client error reply, counted. */
static int mc_error(struct conn *c, const char *s)
{
    c->srv->stats.mc_errors++;
    mc_reply(c, s);
    return c->closed ? STEP_CLOSED : STEP_PROGRESS;
}

/* Swallow len value bytes and their \r\n (after a refusal). */
static int mc_swallow(struct conn *c, uint64_t len)
{
    c->mc->sink = MCS_SWALLOW;
    conn_skip_data(c, len + 2);
    return c->closed ? STEP_CLOSED : STEP_PROGRESS;
}

/* ---- storing ---- */

/* The reply of a store command: classic text, or meta code + flags. */
static void mc_store_reply(struct conn *c, const char *classic, const char *meta)
{
    struct mc_conn *m = c->mc;
    char buf[MC_FLAGS_MAX + 8];

    if (m->meta) {
        if (m->quiet && strcmp(meta, "HD") == 0)
            return;
        snprintf(buf, sizeof(buf), "%s%.*s\r\n", meta, (int)m->flags_len, m->flags);
        mc_reply(c, buf);
    } else if (!m->noreply) {
        mc_reply(c, classic);
    }
}

/*
 * Begin receiving a value of len bytes for key (the command line is
 * consumed already; on KC_EBUSY the caller puts it back). Returns a step.
 */
static int mc_store_begin(struct conn *c, const struct mc_tok *key, uint64_t len,
                          int mode)
{
    struct server *s = c->srv;
    struct mc_conn *m = c->mc;
    uint64_t max = s->opts->memcache_max_value ? s->opts->memcache_max_value
                                               : s->opts->slab_size;
    struct store_ns_info info;
    bool present;
    int rc;

    s->stats.mc_sets++;
    mc_key_map(key, &m->ns, &m->key);
    if (len > max) {
        mc_store_reply(c, "SERVER_ERROR object too large for cache\r\n",
                       "SERVER_ERROR object too large for cache");
        s->stats.mc_errors++;
        return mc_swallow(c, len);
    }
    if (store_ns_get(s->st, m->ns, &info) != 0) {
        uint32_t bb = m->ns == MC_DEFAULT_NS ? 0 : (uint32_t)s->opts->memcache_block;

        rc = store_ns_open(s->st, m->ns, bb, MC_NS_DESC, sizeof(MC_NS_DESC) - 1);
        if (rc == 0)
            rc = store_ns_get(s->st, m->ns, &info);
        if (rc != 0) {
            char e[128];

            snprintf(e, sizeof(e), "SERVER_ERROR %s\r\n", kc_strerror(rc));
            mc_reply(c, e);
            s->stats.mc_errors++;
            return mc_swallow(c, len);
        }
        log_info("namespace %016llx created by a memcache set (%u bytes per "
                 "block)", (unsigned long long)m->ns, bb);
    }
    if (info.block_bytes && len != info.block_bytes) {
        mc_reply(c, "SERVER_ERROR value size differs from the namespace's "
                 "block size\r\n");
        s->stats.mc_errors++;
        return mc_swallow(c, len);
    }
    present = store_match(s->st, m->ns, &m->key, 1) == 1;
    if ((mode == MCM_ADD && present) || (mode == MCM_REPLACE && !present)) {
        mc_store_reply(c, "NOT_STORED\r\n", "NS");
        return mc_swallow(c, len);
    }
    m->len = (uint32_t)len;
    if (!present) {
        rc = store_put_reserve(s->st, m->ns, &m->key, 0, (uint32_t)len, &m->ws);
        if (rc == KC_EBUSY)
            return STEP_BLOCKED;
        if (rc == 0) {
            m->sink = MCS_SLOT;
            conn_set_sink(c, m->ws.buf, len);
            return STEP_PROGRESS;
        }
        if (rc != KC_EXISTS) {
            char e[128];

            snprintf(e, sizeof(e), "SERVER_ERROR %s\r\n", kc_strerror(rc));
            mc_reply(c, e);
            s->stats.mc_errors++;
            return mc_swallow(c, len);
        }
    }
    /* replacing a present value: receive it aside, swap once complete */
    m->temp = malloc(len ? len : 1);
    if (m->temp == NULL) {
        mc_reply(c, "SERVER_ERROR out of memory storing object\r\n");
        return mc_swallow(c, len);
    }
    m->sink = MCS_TEMP;
    conn_set_sink(c, m->temp, len);
    return STEP_PROGRESS;
}

/* The value and its trailer are in: store it or refuse it. */
static int mc_store_end(struct conn *c, bool good)
{
    struct server *s = c->srv;
    struct mc_conn *m = c->mc;
    int rc = KC_OK;

    if (!good) {
        mc_abort(c);
        s->stats.mc_errors++;
        if (!m->noreply)
            mc_reply(c, "CLIENT_ERROR bad data chunk\r\n");
        return c->closed ? STEP_CLOSED : STEP_PROGRESS;
    }
    if (m->sink == MCS_SLOT) {
        rc = store_put_commit(s->st, &m->ws);
    } else {
        struct store_put_item it = { m->key, 0, m->len, m->temp, 0 };

        store_delete(s->st, m->ns, &m->key);
        rc = store_put(s->st, m->ns, &it, 1);
        if (rc == 0)
            rc = it.status;
        free(m->temp);
        m->temp = NULL;
    }
    m->sink = MCS_NONE;
    if (rc == KC_OK || rc == KC_EXISTS) {
        mc_store_reply(c, "STORED\r\n", "HD");
    } else {
        char e[128];

        snprintf(e, sizeof(e), "SERVER_ERROR %s\r\n", kc_strerror(rc));
        s->stats.mc_errors++;
        mc_reply(c, e);
    }
    return c->closed ? STEP_CLOSED : STEP_PROGRESS;
}

void mc_abort(struct conn *c)
{
    struct mc_conn *m = c->mc;

    if (m->sink == MCS_SLOT)
        store_put_abort(c->srv->st, &m->ws);
    free(m->temp);
    m->temp = NULL;
    m->sink = MCS_NONE;
    m->trailer = false;
}

int mc_data_done(struct conn *c)
{
    struct mc_conn *m = c->mc;

    c->state = CS_HDR;
    if (m->sink == MCS_SWALLOW)
        m->sink = MCS_NONE;
    else if (m->sink != MCS_NONE)
        m->trailer = true;
    return STEP_PROGRESS;
}

/* ---- commands ---- */

/* Wait for a memory slab: the line is put back and read again later. */
static int mc_busy(struct conn *c, size_t line_start)
{
    struct server *s = c->srv;

    c->ipos = line_start;
    if (!c->busy_wait) {
        c->busy_wait = true;
        s->busy_waiters++;
    }
    s->stats.busy_retries++;
    return STEP_BLOCKED;
}

/* set / add / replace <key> <flags> <exptime> <bytes> [noreply] */
static int mc_cmd_store(struct conn *c, const struct mc_tok *t, size_t nt,
                        int mode, size_t line_start)
{
    struct mc_conn *m = c->mc;
    uint64_t flags, len;
    int64_t exptime;
    int r;

    if (nt != 5 && nt != 6)
        return mc_error(c, "ERROR\r\n");
    m->meta = m->quiet = false;
    m->noreply = nt == 6 && mc_tok_is(&t[5], "noreply");
    if (!mc_key_ok(&t[1]) || mc_parse_u64(&t[2], UINT32_MAX, &flags) < 0 ||
        mc_parse_i64(&t[3], &exptime) < 0 ||
        mc_parse_u64(&t[4], (uint64_t)INT32_MAX - 2, &len) < 0)
        return mc_error(c, ERR_FORMAT);
    if (flags != 0) {
        /* the engine keeps no client flags: refuse rather than lose them */
        c->srv->stats.mc_errors++;
        mc_reply(c, "SERVER_ERROR client flags are not supported\r\n");
        return mc_swallow(c, len);
    }
    r = mc_store_begin(c, &t[1], len, mode);
    return r == STEP_BLOCKED ? mc_busy(c, line_start) : r;
}

/* cas, append, prepend: known to memcached, refused here (value swallowed). */
static int mc_cmd_unsupported_store(struct conn *c, const struct mc_tok *t,
                                    size_t nt)
{
    uint64_t len;

    if (nt < 5 || mc_parse_u64(&t[4], (uint64_t)INT32_MAX - 2, &len) < 0)
        return mc_error(c, "ERROR\r\n");
    c->mc->sink = MCS_NONE;
    c->srv->stats.mc_errors++;
    mc_reply(c, "SERVER_ERROR command not supported by kvcached\r\n");
    return mc_swallow(c, len);
}

/* delete <key> [0] [noreply] */
static int mc_cmd_delete(struct conn *c, const struct mc_tok *t, size_t nt)
{
    struct server *s = c->srv;
    bool noreply = nt > 2 && mc_tok_is(&t[nt - 1], "noreply");
    size_t rest = nt - 2 - (noreply ? 1 : 0);
    struct kc_key k;
    uint64_t ns;
    int rc;

    if (nt < 2 || nt > 4)
        return mc_error(c, "ERROR\r\n");
    if (rest > 1 || (rest == 1 && !mc_tok_is(&t[2], "0")))
        return mc_error(c, "CLIENT_ERROR bad command line format.  "
                        "Usage: delete <key> [noreply]\r\n");
    if (!mc_key_ok(&t[1]))
        return mc_error(c, ERR_FORMAT);
    mc_key_map(&t[1], &ns, &k);
    rc = store_delete(s->st, ns, &k);
    if (!noreply)
        mc_reply(c, rc == KC_OK ? "DELETED\r\n" : "NOT_FOUND\r\n");
    return c->closed ? STEP_CLOSED : STEP_PROGRESS;
}

/* touch <key> <exptime> [noreply]: no expiry here, so: present or not. */
static int mc_cmd_touch(struct conn *c, const struct mc_tok *t, size_t nt)
{
    struct kc_key k;
    int64_t exptime;
    uint64_t ns;

    if (nt != 3 && nt != 4)
        return mc_error(c, "ERROR\r\n");
    if (!mc_key_ok(&t[1]) || mc_parse_i64(&t[2], &exptime) < 0)
        return mc_error(c, ERR_FORMAT);
    mc_key_map(&t[1], &ns, &k);
    if (nt == 3 || !mc_tok_is(&t[3], "noreply"))
        mc_reply(c, store_match(c->srv->st, ns, &k, 1) ? "TOUCHED\r\n"
                                                      : "NOT_FOUND\r\n");
    return c->closed ? STEP_CLOSED : STEP_PROGRESS;
}

/* stats: memcached's names where they mean the same, kc_* for the rest. */
static int mc_cmd_stats(struct conn *c, size_t nt)
{
    struct server *s = c->srv;
    struct daemon_stats *d = &s->stats;
    struct store_stats ss;
    struct sbuf b = { 0 };
    uint64_t now = loop_now_ns();

    if (nt > 1)
        return mc_error(c, "ERROR\r\n");
    store_stats(s->st, &ss);
    sbuf_printf(&b, "STAT pid %d\r\n", (int)getpid());
    sbuf_printf(&b, "STAT uptime %llu\r\n",
                (unsigned long long)((now - d->start_ns) / 1000000000ull));
    sbuf_printf(&b, "STAT time %lld\r\n", (long long)time(NULL));
    sbuf_printf(&b, "STAT version %s\r\n", "1.6.0");
    sbuf_printf(&b, "STAT kc_version %s\r\n", KC_VERSION);
    sbuf_printf(&b, "STAT pointer_size %d\r\n", (int)(8 * sizeof(void *)));
    sbuf_printf(&b, "STAT curr_connections %llu\r\n", (unsigned long long)d->conns);
    sbuf_printf(&b, "STAT total_connections %llu\r\n",
                (unsigned long long)d->conns_total);
    sbuf_printf(&b, "STAT cmd_get %llu\r\n", (unsigned long long)ss.gets);
    sbuf_printf(&b, "STAT cmd_set %llu\r\n", (unsigned long long)(ss.puts +
                ss.puts_exists + ss.puts_rejected));
    sbuf_printf(&b, "STAT get_hits %llu\r\n", (unsigned long long)ss.hits);
    sbuf_printf(&b, "STAT get_misses %llu\r\n", (unsigned long long)ss.misses);
    sbuf_printf(&b, "STAT delete_hits %llu\r\n", (unsigned long long)ss.deletes);
    sbuf_printf(&b, "STAT bytes_read %llu\r\n", (unsigned long long)d->bytes_in);
    sbuf_printf(&b, "STAT bytes_written %llu\r\n", (unsigned long long)d->bytes_out);
    sbuf_printf(&b, "STAT limit_maxbytes %llu\r\n", (unsigned long long)ss.device_size);
    sbuf_printf(&b, "STAT threads 1\r\n");
    sbuf_printf(&b, "STAT bytes %llu\r\n", (unsigned long long)ss.bytes);
    sbuf_printf(&b, "STAT curr_items %llu\r\n", (unsigned long long)ss.items);
    sbuf_printf(&b, "STAT evictions %llu\r\n", (unsigned long long)ss.evicted_items);
    sbuf_printf(&b, "STAT kc_get_hits_mem %llu\r\n", (unsigned long long)ss.hits_mem);
    sbuf_printf(&b, "STAT kc_ssd_bytes_read %llu\r\n", (unsigned long long)ss.bytes_read);
    sbuf_printf(&b, "STAT kc_ssd_bytes_written %llu\r\n",
                (unsigned long long)ss.bytes_written);
    sbuf_printf(&b, "STAT kc_slab_evictions %llu\r\n", (unsigned long long)ss.evictions);
    sbuf_printf(&b, "STAT kc_checksum_failures %llu\r\n",
                (unsigned long long)ss.checksum_failures);
    sbuf_printf(&b, "STAT kc_io_errors %llu\r\n", (unsigned long long)ss.io_errors);
    sbuf_printf(&b, "STAT kc_memcache_get_keys %llu\r\n",
                (unsigned long long)d->mc_get_keys);
    sbuf_printf(&b, "STAT kc_memcache_get_hits %llu\r\n",
                (unsigned long long)d->mc_get_hits);
    sbuf_printf(&b, "STAT kc_memcache_sets %llu\r\n", (unsigned long long)d->mc_sets);
    sbuf_printf(&b, "STAT kc_memcache_errors %llu\r\n", (unsigned long long)d->mc_errors);
    sbuf_printf(&b, "END\r\n");
    if (b.p == NULL)
        return mc_error(c, "SERVER_ERROR out of memory\r\n");
    conn_send_text(c, b.p, b.len);
    sbuf_free(&b);
    return c->closed ? STEP_CLOSED : STEP_PROGRESS;
}

/*
 * Meta flags after the key (t[from..nt)): each must be one of allowed,
 * with a number after it where numeric says so; O takes any token.
 * Fills flags with the return flags in request order (k and O), for the
 * replies that echo them. Returns 0, or -1 after an error reply.
 */
static int mc_meta_flags(struct conn *c, const struct mc_tok *t, size_t from,
                         size_t nt, const char *allowed, const char *numeric)
{
    struct mc_conn *m = c->mc;

    m->flags_len = 0;
    m->quiet = false;
    for (size_t i = from; i < nt; i++) {
        char f = t[i].p[0];
        int w = 0;

        if (strchr(allowed, f) == NULL) {
            mc_error(c, "CLIENT_ERROR invalid flag\r\n");
            return -1;
        }
        if (strchr(numeric, f)) {
            struct mc_tok v = { t[i].p + 1, t[i].len - 1 };
            int64_t x;

            if (mc_parse_i64(&v, &x) < 0) {
                mc_error(c, "CLIENT_ERROR bad token in command line format\r\n");
                return -1;
            }
        }
        if (f == 'q')
            m->quiet = true;
        if (f == 'k')
            w = snprintf(m->flags + m->flags_len, sizeof(m->flags) - m->flags_len,
                         " k%.*s", (int)t[1].len, t[1].p);
        if (f == 'O')
            w = snprintf(m->flags + m->flags_len, sizeof(m->flags) - m->flags_len,
                         " %.*s", (int)(t[i].len > 33 ? 33 : t[i].len), t[i].p);
        if (w > 0 && (size_t)w < sizeof(m->flags) - m->flags_len)
            m->flags_len += (size_t)w;
    }
    return 0;
}

/* ms <key> <datalen> <flags>*: flags I k O q s T F0 M(S|E|R) */
static int mc_cmd_ms(struct conn *c, const struct mc_tok *t, size_t nt,
                     size_t line_start)
{
    struct mc_conn *m = c->mc;
    int mode = MCM_SET, r;
    uint64_t len;

    if (nt < 3 || !mc_key_ok(&t[1]) ||
        mc_parse_u64(&t[2], (uint64_t)INT32_MAX - 2, &len) < 0)
        return mc_error(c, ERR_FORMAT);
    m->meta = true;
    m->noreply = false;
    if (mc_meta_flags(c, t, 3, nt, "IkOqsTFM", "TF") < 0)
        return mc_swallow(c, len);
    for (size_t i = 3; i < nt; i++) {
        char f = t[i].p[0];

        if (f == 'F' && !(t[i].len == 2 && t[i].p[1] == '0')) {
            c->srv->stats.mc_errors++;
            mc_reply(c, "SERVER_ERROR client flags are not supported\r\n");
            return mc_swallow(c, len);
        }
        if (f == 'M') {
            char md = t[i].len == 2 ? t[i].p[1] : 0;

            if (md == 'S' || md == 's') {
                mode = MCM_SET;
            } else if (md == 'E' || md == 'e') {
                mode = MCM_ADD;
            } else if (md == 'R' || md == 'r') {
                mode = MCM_REPLACE;
            } else if (md == 'A' || md == 'a' || md == 'P' || md == 'p') {
                c->srv->stats.mc_errors++;
                mc_reply(c, "SERVER_ERROR append and prepend are not "
                         "supported\r\n");
                return mc_swallow(c, len);
            } else {
                mc_error(c, "CLIENT_ERROR invalid mode for ms M token\r\n");
                return mc_swallow(c, len);
            }
        }
    }
    r = mc_store_begin(c, &t[1], len, mode);
    return r == STEP_BLOCKED ? mc_busy(c, line_start) : r;
}

/* md <key> <flags>*: flags q k O I T */
static int mc_cmd_md(struct conn *c, const struct mc_tok *t, size_t nt)
{
    struct mc_conn *m = c->mc;
    struct kc_key k;
    char buf[MC_FLAGS_MAX + 8];
    uint64_t ns;
    int rc;

    if (nt < 2)
        return mc_error(c, "ERROR\r\n");
    if (!mc_key_ok(&t[1]))
        return mc_error(c, ERR_FORMAT);
    if (mc_meta_flags(c, t, 2, nt, "qkOIT", "T") < 0)
        return c->closed ? STEP_CLOSED : STEP_PROGRESS;
    mc_key_map(&t[1], &ns, &k);
    rc = store_delete(c->srv->st, ns, &k);
    if (rc != KC_OK || !m->quiet) {
        snprintf(buf, sizeof(buf), "%s%.*s\r\n", rc == KC_OK ? "HD" : "NF",
                 (int)m->flags_len, m->flags);
        mc_reply(c, buf);
    }
    return c->closed ? STEP_CLOSED : STEP_PROGRESS;
}

/* Run one command line (line[0..len), without its \r\n). */
static int mc_command(struct conn *c, const char *line, size_t len,
                      size_t line_start)
{
    struct server *s = c->srv;
    struct mc_tok t[MC_TOKENS];
    size_t nt = mc_tokenize(line, len, t, MC_TOKENS);

    s->stats.requests++;
    if (nt == 0)
        return mc_error(c, "ERROR\r\n");
    if (mc_tok_is(&t[0], "get") || mc_tok_is(&t[0], "gets")) {
        struct mc_tok *keys;
        size_t n;
        int r;

        if (nt == 1)
            return mc_error(c, "ERROR\r\n");
        /* any number of keys: tokenize the whole line */
        keys = malloc((len / 2 + 2) * sizeof(*keys));
        if (keys == NULL)
            return mc_error(c, "SERVER_ERROR out of memory\r\n");
        n = mc_tokenize(line, len, keys, len / 2 + 1);
        for (size_t i = 1; i < n; i++)
            if (!mc_key_ok(&keys[i])) {
                free(keys);
                return mc_error(c, ERR_FORMAT);
            }
        r = mc_get_start(c, t[0].len == 4 ? MCG_GETS : MCG_GET, line, len,
                         keys + 1, n - 1, NULL, 0);
        free(keys);
        return r;
    }
    if (nt > MC_TOKENS)
        return mc_error(c, "ERROR\r\n");
    if (mc_tok_is(&t[0], "mg")) {
        if (nt < 2)
            return mc_error(c, "ERROR\r\n");
        if (!mc_key_ok(&t[1]))
            return mc_error(c, ERR_FORMAT);
        if (mc_meta_flags(c, t, 2, nt, "vkOqsftchlT", "T") < 0)
            return c->closed ? STEP_CLOSED : STEP_PROGRESS;
        return mc_get_start(c, MCG_MG, line, len, &t[1], 1, &t[2], nt - 2);
    }
    if (mc_tok_is(&t[0], "set"))
        return mc_cmd_store(c, t, nt, MCM_SET, line_start);
    if (mc_tok_is(&t[0], "add"))
        return mc_cmd_store(c, t, nt, MCM_ADD, line_start);
    if (mc_tok_is(&t[0], "replace"))
        return mc_cmd_store(c, t, nt, MCM_REPLACE, line_start);
    if (mc_tok_is(&t[0], "ms"))
        return mc_cmd_ms(c, t, nt, line_start);
    if (mc_tok_is(&t[0], "md"))
        return mc_cmd_md(c, t, nt);
    if (mc_tok_is(&t[0], "mn")) {
        mc_reply(c, "MN\r\n");
        return c->closed ? STEP_CLOSED : STEP_PROGRESS;
    }
    if (mc_tok_is(&t[0], "delete"))
        return mc_cmd_delete(c, t, nt);
    if (mc_tok_is(&t[0], "touch"))
        return mc_cmd_touch(c, t, nt);
    if (mc_tok_is(&t[0], "stats"))
        return mc_cmd_stats(c, nt);
    if (mc_tok_is(&t[0], "version")) {
        mc_reply(c, "VERSION " MC_VERSION "\r\n");
        return c->closed ? STEP_CLOSED : STEP_PROGRESS;
    }
    if (mc_tok_is(&t[0], "verbosity")) {
        if (nt < 2 || nt > 3)
            return mc_error(c, "ERROR\r\n");
        if (!mc_tok_is(&t[nt - 1], "noreply"))
            mc_reply(c, "OK\r\n");
        return c->closed ? STEP_CLOSED : STEP_PROGRESS;
    }
    if (mc_tok_is(&t[0], "quit")) {
        c->close_after_flush = true;
        return STEP_BLOCKED;
    }
    if (mc_tok_is(&t[0], "cas") || mc_tok_is(&t[0], "append") ||
        mc_tok_is(&t[0], "prepend"))
        return mc_cmd_unsupported_store(c, t, nt);
    if (mc_tok_is(&t[0], "incr") || mc_tok_is(&t[0], "decr") ||
        mc_tok_is(&t[0], "flush_all") || mc_tok_is(&t[0], "ma") ||
        mc_tok_is(&t[0], "me"))
        return mc_error(c, "SERVER_ERROR command not supported by kvcached\r\n");
    return mc_error(c, "ERROR\r\n");
}

int mc_step(struct conn *c)
{
    struct mc_conn *m = c->mc;
    size_t avail = c->ilen - c->ipos, len, start;
    const char *line, *nl;

    if (m->trailer) {
        bool good;

        if (avail < 2) {
            if (conn_ibuf_room(c, 2) < 0)
                goto nomem;
            return STEP_NEED_INPUT;
        }
        good = c->ibuf[c->ipos] == '\r' && c->ibuf[c->ipos + 1] == '\n';
        c->ipos += 2;
        m->trailer = false;
        return mc_store_end(c, good);
    }
    if (c->close_after_flush || c->busy_wait || c->srv->stopping ||
        c->gets_inflight || c->out_bytes > CONN_OUT_BYTES_MAX ||
        c->out_count > CONN_OUT_COUNT_MAX)
        return STEP_BLOCKED;
    line = (const char *)c->ibuf + c->ipos;
    nl = memchr(line, '\n', avail);
    if (nl == NULL) {
        bool is_get = avail >= 4 && (memcmp(line, "get ", 4) == 0 ||
                                     memcmp(line, "gets", 4) == 0);

        if (avail > (is_get ? MC_LINE_MAX : MC_SHORT_LINE_MAX)) {
            /* memcached closes here too: no way to find the next command */
            c->srv->stats.protocol_errors++;
            log_info("conn %llu (%s): memcache line of more than %zu bytes: "
                     "closing", (unsigned long long)c->id, c->peer, avail);
            c->close_after_flush = true;
            mc_error(c, "CLIENT_ERROR line too long\r\n");
            return c->closed ? STEP_CLOSED : STEP_BLOCKED;
        }
        if (conn_ibuf_room(c, avail + 4096) < 0)
            goto nomem;
        return STEP_NEED_INPUT;
    }
    start = c->ipos;
    len = (size_t)(nl - line);
    c->ipos += len + 1;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    return mc_command(c, line, len, start);
nomem:
    conn_close(c, "out of memory for the input buffer");
    return STEP_CLOSED;
}
