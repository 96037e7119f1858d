/*
 * kc_mcstore.c - memcache writes: set, add, replace, append, prepend, cas,
 * incr, decr, touch, ms and md. Values of text keys are stored behind a
 * header (kc_mcitem.h) with their flags, expiry and a new cas.
 *
 * A set of a key that is not in the index is received straight into a
 * reserved memory-slab slot (header first). Anything that depends on the
 * old item (add, replace, append, prepend, cas, incr, decr, touch, ms C,
 * md C/I) receives the value into a heap buffer, then fetches the old item
 * (kc_mcget.c, MCG_FETCH) and ends in mc_store_apply (kc_mcapply.c) from
 * mc_step; a write
 * of the same key by another connection meanwhile makes it fetch again.
 * A new version is written as delete + put of the key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/kc_conn.h"
#include "daemon/kc_log.h"
#include "daemon/kc_mcconn.h"
#include "daemon/kc_memcache.h"
#include "daemon/kc_mcget.h"
#include "daemon/kc_daemon.h"

/* Descriptor of namespaces created by a set on the memcache port. */
#define MC_NS_DESC "memcache"
/* In meta return flags: where the cas of the new version goes (ms c). */
#define MC_CAS_MARK '\x01'

static const char ERR_FORMAT[] = "CLIENT_ERROR bad command line format\r\n";


bool mc_ns_writable(struct server *s, uint64_t ns)
{
    struct store_ns_info info;

    if (ns == MC_TEXT_NS || mc_ns_listed(s->opts->memcache_writable, ns) == 1)
        return true;
    if (store_ns_get(s->st, ns, &info) != 0)
        return true;              /* a set creates it (mc_ns_ensure) */
    return info.desc_len == sizeof(MC_NS_DESC) - 1 &&
           memcmp(info.desc, MC_NS_DESC, info.desc_len) == 0;
}

/* Make sure namespace ns exists (a set creates it). 0 or a KC_E* code. */
static int mc_ns_ensure(struct conn *c, uint64_t ns, struct store_ns_info *info)
{
    struct server *s = c->srv;
    uint32_t bb;
    int rc;

    if (store_ns_get(s->st, ns, info) == 0)
        return mc_ns_writable(s, ns) ? 0 : MC_EREADONLY;
    /* --memcache-namespaces of the direct form, and the quota of the
     * connection's credential (docs/security.md) */
    if (ns != MC_TEXT_NS &&
        s->auth.mc_created >= s->opts->memcache_namespaces)
        return KC_ENSFULL;
    if (!auth_ns_create(&s->auth, (enum auth_cred)c->cred))
        return KC_ENSFULL;
    if (ns != MC_TEXT_NS)
        s->auth.mc_created++;
    bb = ns == MC_TEXT_NS ? 0 : (uint32_t)s->opts->memcache_block;
    rc = store_ns_open(s->st, ns, bb, MC_NS_DESC, sizeof(MC_NS_DESC) - 1);
    if (rc == 0)
        rc = store_ns_get(s->st, ns, info);
    if (rc == 0)
        log_info("namespace %016llx created by a memcache set (%u bytes per "
                 "block)", (unsigned long long)ns, bb);
    return rc;
}

/* Map the key of the command to m->ns, m->key (base64 with meta b). */
static int mc_map(struct conn *c, const struct mc_tok *key)
{
    struct mc_conn *m = c->mc;
    uint8_t raw[MC_KEY_MAX];
    struct mc_tok bt = *key;

    if (m->b64) {
        int bl = mc_b64_decode(key, raw, sizeof(raw));

        if (bl < 0)
            return -1;
        bt = (struct mc_tok){ (const char *)raw, (size_t)bl };
    }
    m->text = !mc_key_map(&bt, &m->ns, &m->key);
    return 0;
}

/* Reserve a slot, waiting for a flush while one is in flight. */
static int mc_reserve(struct store *st, uint64_t ns, const struct kc_key *key,
                      uint32_t len, struct store_wslot *ws)
{
    for (;;) {
        int rc = store_put_reserve(st, ns, key, 0, len, ws);

        if (rc != KC_EBUSY || !store_busy(st) || store_poll(st, true) < 0)
            return rc;
    }
}

int mc_item_write(struct conn *c, uint64_t ns, const struct kc_key *key,
                  const struct mc_meta *nm, const uint8_t *v1, uint32_t l1,
                  const uint8_t *v2, uint32_t l2)
{
    struct store *st = c->srv->st;
    struct store_ns_info info;
    struct store_wslot ws;
    int rc = mc_ns_ensure(c, ns, &info);

    if (rc != 0)
        return rc;
    if (!auth_ns_bytes_ok(&c->srv->auth, st, ns, MCI_HDR_LEN + l1 + l2)) {
        c->srv->stats.quota_refused++;
        return MC_EQUOTA;
    }
    /* the old version must be gone first: a failed delete fails the write */
    rc = store_delete(st, ns, key);
    if (rc != KC_OK && rc != KC_MISS)
        return rc;
    rc = mc_reserve(st, ns, key, MCI_HDR_LEN + l1 + l2, &ws);
    if (rc != 0)
        return rc == KC_EXISTS ? KC_EINVAL : rc;
    mci_encode(ws.buf, nm);
    if (l1)
        memcpy((uint8_t *)ws.buf + MCI_HDR_LEN, v1, l1);
    if (l2)
        memcpy((uint8_t *)ws.buf + MCI_HDR_LEN + l1, v2, l2);
    return store_put_commit(st, &ws);
}

/* The reply of a write: classic text, or meta code + return flags (with
 * the new cas where ms c asked for it). */
void mc_store_reply(struct conn *c, const char *classic, const char *meta)
{
    struct mc_conn *m = c->mc;
    char buf[MC_FLAGS_MAX + 64];
    size_t n;

    if (!m->meta) {
        mc_reply(c, classic);
        return;
    }
    if (m->quiet && strcmp(meta, "HD") == 0)
        return;
    n = (size_t)snprintf(buf, sizeof(buf), "%s", meta);
    for (size_t i = 0; i < m->flags_len && n < sizeof(buf) - 40; i++) {
        if (m->flags[i] != MC_CAS_MARK)
            buf[n++] = m->flags[i];
        else if (strcmp(meta, "HD") == 0)
            n += (size_t)snprintf(buf + n, sizeof(buf) - n, " c%llu",
                                  (unsigned long long)m->nm.cas);
    }
    memcpy(buf + n, "\r\n", 3);
    mc_reply(c, buf);
}

void mc_server_error(struct conn *c, int rc)
{
    char e[128];

    if (rc == MC_EREADONLY)
        snprintf(e, sizeof(e), "SERVER_ERROR namespace not writable over "
                 "memcache (--memcache-writable)\r\n");
    else if (rc == MC_EQUOTA)
        snprintf(e, sizeof(e), "SERVER_ERROR namespace over --ns-max-bytes\r\n");
    else
        snprintf(e, sizeof(e), "SERVER_ERROR %s\r\n", kc_strerror(rc));
    c->srv->stats.mc_errors++;
    mc_reply(c, e);
}

bool mc_needs_old(const struct mc_conn *m)
{
    return m->mode != MCM_SET || m->cas_in != 0;
}

/*
 * Begin receiving a value of len bytes (the command line is consumed
 * already; on KC_EBUSY the caller puts it back). m->mode, nm (flags,
 * exptime), cas_in, noreply/meta are set. Returns a step.
 */
static int mc_store_begin(struct conn *c, const struct mc_tok *key, uint64_t len)
{
    struct server *s = c->srv;
    struct mc_conn *m = c->mc;
    struct store_ns_info info;
    bool present;
    int rc;

    s->stats.mc_sets++;
    s->mcs.cmd_set++;
    if (mc_map(c, key) < 0) {
        mc_error(c, "CLIENT_ERROR error decoding key\r\n");
        return mc_swallow(c, len);
    }
    if (len > mc_max_value(c)) {
        /* memcached drops the old value of a set it refuses */
        if (m->mode == MCM_SET && m->text)
            store_delete(s->st, m->ns, &m->key);
        s->stats.mc_errors++;
        mc_store_reply(c, "SERVER_ERROR object too large for cache\r\n",
                       "SERVER_ERROR object too large for cache");
        return mc_swallow(c, len);
    }
    if (!m->text && (m->nm.flags != 0 || mc_needs_old(m))) {
        /* raw KV blocks shared with the protobuf path keep no header */
        s->stats.mc_errors++;
        mc_reply(c, m->nm.flags ? "SERVER_ERROR client flags are not "
                 "supported on block keys\r\n" : "SERVER_ERROR command not "
                 "supported on block keys\r\n");
        return mc_swallow(c, len);
    }
    rc = mc_ns_ensure(c, m->ns, &info);
    if (rc != 0) {
        mc_server_error(c, rc);
        return mc_swallow(c, len);
    }
    if (info.block_bytes && len != info.block_bytes) {
        s->stats.mc_errors++;
        mc_reply(c, "SERVER_ERROR value size differs from the namespace's "
                 "block size\r\n");
        return mc_swallow(c, len);
    }
    if (!auth_ns_bytes_ok(&s->auth, s->st, m->ns, len)) {
        s->stats.quota_refused++;
        mc_server_error(c, MC_EQUOTA);
        return mc_swallow(c, len);
    }
    present = store_match(s->st, m->ns, &m->key, 1) == 1;
    m->len = (uint32_t)len;
    m->nm.cas = m->text ? mc_cas_next(&s->mcs, mc_now_us())
                        : (m->key.lo >> 1) | 1;
    if (!m->text && m->mode == MCM_ADD && present) {
        mc_store_reply(c, "NOT_STORED\r\n", "NS");
        return mc_swallow(c, len);
    }
    if (!m->text && m->mode == MCM_REPLACE && !present) {
        mc_store_reply(c, "NOT_STORED\r\n", "NS");
        return mc_swallow(c, len);
    }
    if (!present && (m->mode == MCM_SET || m->mode == MCM_ADD) && m->cas_in == 0) {
        uint32_t hl = m->text ? MCI_HDR_LEN : 0;

        rc = store_put_reserve(s->st, m->ns, &m->key, 0, (uint32_t)len + hl, &m->ws);
        if (rc == KC_EBUSY)
            return STEP_BLOCKED;
        if (rc == 0) {
            if (m->text)
                mci_encode(m->ws.buf, &m->nm);
            m->sink = MCS_SLOT;
            conn_set_sink(c, (uint8_t *)m->ws.buf + hl, len);
            return STEP_PROGRESS;
        }
        if (rc != KC_EXISTS) {
            mc_server_error(c, rc);
            return mc_swallow(c, len);
        }
    }
    /* the old item matters, or is replaced: receive the value aside */
    m->temp = malloc(len ? len : 1);
    if (m->temp == NULL) {
        s->stats.mc_errors++;
        mc_reply(c, "SERVER_ERROR out of memory storing object\r\n");
        return mc_swallow(c, len);
    }
    m->sink = MCS_TEMP;
    conn_set_sink(c, m->temp, len);
    return STEP_PROGRESS;
}

int mc_store_end(struct conn *c, bool good)
{
    struct server *s = c->srv;
    struct mc_conn *m = c->mc;
    int rc;

    if (!good) {
        mc_abort(c);
        s->stats.mc_errors++;
        mc_reply(c, "CLIENT_ERROR bad data chunk\r\n");
        return mc_done(c);
    }
    if (m->sink == MCS_SLOT) {
        m->sink = MCS_NONE;
        rc = store_put_commit(s->st, &m->ws);
        if (rc == KC_OK || rc == KC_EXISTS)
            mc_store_reply(c, "STORED\r\n", "HD");
        else
            mc_server_error(c, rc);
        return mc_done(c);
    }
    if (m->text && mc_needs_old(m) && store_match(s->st, m->ns, &m->key, 1) == 1)
        return mc_get_start(c, MCG_FETCH, NULL, 0, NULL, 1, NULL, 0, 0);
    return mc_store_apply(c, false, NULL, NULL, 0);
}

/* Set up m for a new command. */
static void mc_cmd_reset(struct mc_conn *m, int mode, bool meta)
{
    m->mode = mode;
    m->meta = meta;
    m->quiet = m->noreply = m->set_ttl = m->md_stale = m->b64 = false;
    m->cas_in = m->delta = 0;
    m->nm = (struct mc_meta){ 0 };
    m->flags_len = 0;
}

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

int mc_cmd_store(struct conn *c, const struct mc_tok *t, size_t nt, int mode,
                 size_t line_start)
{
    struct mc_conn *m = c->mc;
    size_t want = mode == MCM_CAS ? 6 : 5;
    uint64_t flags, len;
    int64_t exptime;
    int r;

    mc_cmd_reset(m, mode, false);
    if (nt != want && nt != want + 1)
        return mc_error(c, "ERROR\r\n");
    m->noreply = nt == want + 1 && mc_tok_is(&t[want], "noreply");
    if (!mc_key_ok(&t[1]) || mc_parse_u64(&t[2], UINT32_MAX, &flags) < 0 ||
        mc_parse_i64(&t[3], &exptime) < 0 ||
        mc_parse_u64(&t[4], (uint64_t)INT32_MAX - 2, &len) < 0 ||
        (mode == MCM_CAS && mc_parse_u64(&t[5], UINT64_MAX, &m->cas_in) < 0))
        return mc_error(c, ERR_FORMAT);
    m->nm.flags = (uint32_t)flags;
    m->nm.exptime = mci_exptime(exptime, mc_now());
    if (mode == MCM_CAS && m->cas_in == 0)
        m->cas_in = UINT64_MAX;   /* matches no item: cas values are > 0 */
    r = mc_store_begin(c, &t[1], len);
    return r == STEP_BLOCKED ? mc_busy(c, line_start) : r;
}

int mc_cmd_arith(struct conn *c, const struct mc_tok *t, size_t nt, int mode)
{
    struct mc_conn *m = c->mc;

    mc_cmd_reset(m, mode, false);
    if (nt != 3 && nt != 4)
        return mc_error(c, "ERROR\r\n");
    m->noreply = nt == 4 && mc_tok_is(&t[3], "noreply");
    if (!mc_key_ok(&t[1]))
        return mc_error(c, ERR_FORMAT);
    if (mc_parse_u64(&t[2], UINT64_MAX, &m->delta) < 0)
        return mc_error(c, "CLIENT_ERROR invalid numeric delta argument\r\n");
    if (!mc_key_map(&t[1], &m->ns, &m->key))
        m->ns = MC_TEXT_NS;
    else
        return mc_error(c, "CLIENT_ERROR cannot increment or decrement "
                        "non-numeric value\r\n");
    m->text = true;
    if (store_match(c->srv->st, m->ns, &m->key, 1) != 1)
        return mc_store_apply(c, false, NULL, NULL, 0);
    return mc_get_start(c, MCG_FETCH, NULL, 0, NULL, 1, NULL, 0, 0);
}

int mc_cmd_touch(struct conn *c, const struct mc_tok *t, size_t nt)
{
    struct mc_conn *m = c->mc;
    int64_t exptime;

    mc_cmd_reset(m, MCM_TOUCH, false);
    if (nt != 3 && nt != 4)
        return mc_error(c, "ERROR\r\n");
    m->noreply = nt == 4 && mc_tok_is(&t[3], "noreply");
    if (!mc_key_ok(&t[1]))
        return mc_error(c, ERR_FORMAT);
    if (mc_parse_i64(&t[2], &exptime) < 0)
        return mc_error(c, "CLIENT_ERROR invalid exptime argument\r\n");
    c->srv->mcs.cmd_touch++;
    m->nm.exptime = mci_exptime(exptime, mc_now());
    m->text = !mc_key_map(&t[1], &m->ns, &m->key);
    if (m->text)
        m->ns = MC_TEXT_NS;
    if (store_match(c->srv->st, m->ns, &m->key, 1) != 1)
        return mc_store_apply(c, false, NULL, NULL, 0);
    if (!m->text) {
        /* raw blocks do not expire: present is all touch can tell */
        c->srv->mcs.touch_hits++;
        mc_reply(c, "TOUCHED\r\n");
        return mc_done(c);
    }
    return mc_get_start(c, MCG_FETCH, NULL, 0, NULL, 1, NULL, 0, 0);
}

int mc_meta_flags(struct conn *c, const struct mc_tok *t, size_t from,
                  size_t nt, const char *allowed, const char *numeric)
{
    struct mc_conn *m = c->mc;

    m->flags_len = 0;
    m->quiet = false;
    for (size_t i = from; i < nt; i++)
        if (t[i].p[0] == 'b')
            m->b64 = true;
    for (size_t i = from; i < nt; i++) {
        char f = t[i].p[0];
        size_t room = sizeof(m->flags) - m->flags_len;
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
            w = snprintf(m->flags + m->flags_len, room, " k%.*s%s", (int)t[1].len,
                         t[1].p, m->b64 ? " b" : "");
        if (f == 'O')
            w = snprintf(m->flags + m->flags_len, room, " %.*s",
                         (int)(t[i].len > 33 ? 33 : t[i].len), t[i].p);
        if (f == 'c')
            w = snprintf(m->flags + m->flags_len, room, "%c", MC_CAS_MARK);
        if (w > 0 && (size_t)w < room)
            m->flags_len += (size_t)w;
    }
    return 0;
}

/* The number after a meta flag (checked by mc_meta_flags). */
static uint64_t mc_flag_u64(const struct mc_tok *f)
{
    struct mc_tok v = { f->p + 1, f->len - 1 };
    uint64_t x = 0;

    mc_parse_u64(&v, UINT64_MAX, &x);
    return x;
}

/* The signed number after a meta flag. */
static int64_t mc_flag_i64(const struct mc_tok *f)
{
    struct mc_tok v = { f->p + 1, f->len - 1 };
    int64_t x = 0;

    mc_parse_i64(&v, &x);
    return x;
}

int mc_cmd_ms(struct conn *c, const struct mc_tok *t, size_t nt,
              size_t line_start)
{
    struct mc_conn *m = c->mc;
    uint64_t len;
    int r;

    mc_cmd_reset(m, MCM_SET, true);
    if (nt < 3 || !mc_key_ok(&t[1]) ||
        mc_parse_u64(&t[2], (uint64_t)INT32_MAX - 2, &len) < 0)
        return mc_error(c, ERR_FORMAT);
    if (mc_meta_flags(c, t, 3, nt, "bcCFIkOqsTM", "CFT") < 0)
        return mc_swallow(c, len);
    for (size_t i = 3; i < nt; i++) {
        char f = t[i].p[0];

        if (f == 'F')
            m->nm.flags = (uint32_t)mc_flag_u64(&t[i]);
        if (f == 'T')
            m->nm.exptime = mci_exptime(mc_flag_i64(&t[i]), mc_now());
        if (f == 'C')
            m->cas_in = mc_flag_u64(&t[i]) ? mc_flag_u64(&t[i]) : UINT64_MAX;
        if (f == 'M') {
            static const char modes[] = "SsEeRrAaPp";
            static const int mode_of[] = { MCM_SET, MCM_SET, MCM_ADD, MCM_ADD,
                MCM_REPLACE, MCM_REPLACE, MCM_APPEND, MCM_APPEND, MCM_PREPEND,
                MCM_PREPEND };
            const char *p = t[i].len == 2 ? strchr(modes, t[i].p[1]) : NULL;

            if (p == NULL || *p == '\0') {
                mc_error(c, "CLIENT_ERROR invalid mode for ms M token\r\n");
                return mc_swallow(c, len);
            }
            m->mode = mode_of[p - modes];
        }
    }
    r = mc_store_begin(c, &t[1], len);
    return r == STEP_BLOCKED ? mc_busy(c, line_start) : r;
}

int mc_cmd_md(struct conn *c, const struct mc_tok *t, size_t nt)
{
    struct mc_conn *m = c->mc;
    struct server *s = c->srv;

    mc_cmd_reset(m, MCM_MDEL, true);
    if (nt < 2)
        return mc_error(c, "ERROR\r\n");
    if (!mc_key_ok(&t[1]))
        return mc_error(c, ERR_FORMAT);
    if (mc_meta_flags(c, t, 2, nt, "bCqkOITx", "CT") < 0)
        return mc_done(c);
    for (size_t i = 2; i < nt; i++) {
        if (t[i].p[0] == 'C')
            m->cas_in = mc_flag_u64(&t[i]) ? mc_flag_u64(&t[i]) : UINT64_MAX;
        if (t[i].p[0] == 'I')
            m->md_stale = true;
        if (t[i].p[0] == 'T') {
            m->set_ttl = true;
            m->nm.exptime = mci_exptime(mc_flag_i64(&t[i]), mc_now());
        }
    }
    if (mc_map(c, &t[1]) < 0)
        return mc_error(c, "CLIENT_ERROR error decoding key\r\n");
    if (!mc_ns_writable(s, m->ns)) {
        mc_server_error(c, MC_EREADONLY);
        return mc_done(c);
    }
    if (m->text && (m->cas_in || m->md_stale) &&
        store_match(s->st, m->ns, &m->key, 1) == 1)
        return mc_get_start(c, MCG_FETCH, NULL, 0, NULL, 1, NULL, 0, 0);
    if (store_delete(s->st, m->ns, &m->key) == KC_OK) {
        s->mcs.delete_hits++;
        mc_store_reply(c, "DELETED\r\n", "HD");
    } else {
        s->mcs.delete_misses++;
        mc_store_reply(c, "NOT_FOUND\r\n", "NF");
    }
    return mc_done(c);
}
