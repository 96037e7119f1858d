/*
 * kc_mcapply.c - memcache writes that depend on the old item (add,
 * replace, append, prepend, cas, incr, decr, touch, md C/I): once the old
 * item is known (fetched by kc_mcget.c), mc_store_apply checks it and
 * writes the new version (kc_mcstore.c's mc_item_write), then replies.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/kc_conn.h"
#include "daemon/kc_daemon.h"
#include "daemon/kc_mcconn.h"
#include "daemon/kc_mcget.h"
#include "daemon/kc_memcache.h"

/* memcached's reading of a number to incr: leading blanks, digits, then a
 * blank or the end. 0 or -1. */
static int mc_parse_counter(const uint8_t *v, uint32_t n, uint64_t *out)
{
    uint32_t i = 0;
    uint64_t x = 0;

    while (i < n && (v[i] == ' ' || v[i] == '\t'))
        i++;
    if (i == n || v[i] < '0' || v[i] > '9')
        return -1;
    for (; i < n && v[i] >= '0' && v[i] <= '9'; i++) {
        unsigned d = v[i] - '0';

        if (x > (UINT64_MAX - d) / 10)
            return -1;
        x = x * 10 + d;
    }
    if (i < n && v[i] != ' ' && v[i] != '\t' && v[i] != '\r' && v[i] != '\n')
        return -1;
    *out = x;
    return 0;
}

/* incr / decr on the old value: the reply is the new number. */
static int mc_apply_arith(struct conn *c, const struct mc_meta *old,
                          const uint8_t *val, uint32_t vlen)
{
    struct mc_conn *m = c->mc;
    struct mc_state *ms = &c->srv->mcs;
    char num[32], pad[32];
    uint64_t x;
    int n, rc;

    if (vlen > 20 + 64 || mc_parse_counter(val, vlen, &x) < 0)
        return mc_error(c, "CLIENT_ERROR cannot increment or decrement "
                        "non-numeric value\r\n");
    if (m->mode == MCM_INCR) {
        ms->incr_hits++;
        x += m->delta;
    } else {
        ms->decr_hits++;
        x = x < m->delta ? 0 : x - m->delta;
    }
    n = snprintf(num, sizeof(num), "%llu", (unsigned long long)x);
    /* memcached rewrites in place when it fits, padding with blanks */
    memcpy(pad, num, (size_t)n);
    if ((uint32_t)n < vlen && vlen <= sizeof(pad)) {
        memset(pad + n, ' ', vlen - (uint32_t)n);
        n = (int)vlen;
    }
    m->nm = *old;
    m->nm.cas = mc_cas_next(ms, mc_now_us());
    rc = mc_item_write(c, m->ns, &m->key, &m->nm, (const uint8_t *)pad,
                       (uint32_t)n, NULL, 0);
    if (rc != 0) {
        mc_server_error(c, rc);
        return mc_done(c);
    }
    memcpy(num + strlen(num), "\r\n", 3);
    mc_reply(c, num);
    return mc_done(c);
}

/* md C / I with the old item known. */
static int mc_apply_mdel(struct conn *c, bool found, const struct mc_meta *old,
                         const uint8_t *val, uint32_t vlen)
{
    struct mc_conn *m = c->mc;
    struct server *s = c->srv;

    if (!found) {
        s->mcs.delete_misses++;
        mc_store_reply(c, "NOT_FOUND\r\n", "NF");
        return mc_done(c);
    }
    if (m->cas_in && m->cas_in != old->cas) {
        mc_store_reply(c, "EXISTS\r\n", "EX");
        return mc_done(c);
    }
    s->mcs.delete_hits++;
    if (m->md_stale) {
        struct mc_meta nm = *old;

        nm.bits = MCI_STALE;
        nm.cas = mc_cas_next(&s->mcs, mc_now_us());
        if (m->set_ttl)
            nm.exptime = m->nm.exptime;
        mc_item_write(c, m->ns, &m->key, &nm, val, vlen, NULL, 0);
    } else {
        store_delete(s->st, m->ns, &m->key);
    }
    mc_store_reply(c, "DELETED\r\n", "HD");
    return mc_done(c);
}

int mc_store_apply(struct conn *c, bool found, const struct mc_meta *old,
                   const uint8_t *val, uint32_t vlen)
{
    struct mc_conn *m = c->mc;
    struct mc_state *ms = &c->srv->mcs;
    const uint8_t *v1 = m->temp, *v2 = NULL;
    uint32_t l1 = m->len, l2 = 0;
    int rc, r;

    switch (m->mode) {
    case MCM_INCR:
    case MCM_DECR:
        if (!found) {
            if (m->mode == MCM_INCR)
                ms->incr_misses++;
            else
                ms->decr_misses++;
            mc_reply(c, "NOT_FOUND\r\n");
            return mc_done(c);
        }
        return mc_apply_arith(c, old, val, vlen);
    case MCM_TOUCH:
        if (!found) {
            ms->touch_misses++;
            mc_reply(c, "NOT_FOUND\r\n");
            return mc_done(c);
        }
        ms->touch_hits++;
        m->nm.flags = old->flags;
        m->nm.bits = old->bits;
        m->nm.cas = old->cas;
        rc = mc_item_write(c, m->ns, &m->key, &m->nm, val, vlen, NULL, 0);
        if (rc != 0)
            mc_server_error(c, rc);
        else
            mc_reply(c, "TOUCHED\r\n");
        return mc_done(c);
    case MCM_MDEL:
        return mc_apply_mdel(c, found, old, val, vlen);
    default:
        break;
    }
    /* storage commands: the value is in m->temp */
    if (m->mode == MCM_CAS || m->cas_in) {
        if (!found) {
            ms->cas_misses++;
            mc_store_reply(c, "NOT_FOUND\r\n", "NF");
            goto out;
        }
        if (old->cas != m->cas_in) {
            ms->cas_badval++;
            mc_store_reply(c, "EXISTS\r\n", "EX");
            goto out;
        }
        if (m->mode == MCM_CAS)
            ms->cas_hits++;
    }
    if ((m->mode == MCM_ADD && found) ||
        ((m->mode == MCM_REPLACE || m->mode == MCM_APPEND ||
          m->mode == MCM_PREPEND) && !found)) {
        mc_store_reply(c, "NOT_STORED\r\n", "NS");
        goto out;
    }
    if (m->mode == MCM_APPEND || m->mode == MCM_PREPEND) {
        /* the old item keeps its flags and expiry */
        m->nm.flags = old->flags;
        m->nm.exptime = old->exptime;
        v1 = m->mode == MCM_APPEND ? val : m->temp;
        l1 = m->mode == MCM_APPEND ? vlen : m->len;
        v2 = m->mode == MCM_APPEND ? m->temp : val;
        l2 = m->mode == MCM_APPEND ? m->len : vlen;
        if ((uint64_t)l1 + l2 > mc_max_value(c)) {
            c->srv->stats.mc_errors++;
            mc_store_reply(c, "SERVER_ERROR out of memory storing object\r\n",
                           "SERVER_ERROR out of memory storing object");
            goto out;
        }
    }
    if (m->text) {
        rc = mc_item_write(c, m->ns, &m->key, &m->nm, v1, l1, v2, l2);
    } else {
        struct store_put_item it = { m->key, 0, m->len, m->temp, 0 };

        store_delete(c->srv->st, m->ns, &m->key);
        rc = store_put(c->srv->st, m->ns, &it, 1);
        if (rc == 0)
            rc = it.status;
    }
    if (rc == KC_OK || rc == KC_EXISTS)
        mc_store_reply(c, "STORED\r\n", "HD");
    else
        mc_server_error(c, rc);
out:
    r = mc_done(c);
    free(m->temp);
    m->temp = NULL;
    m->sink = MCS_NONE;
    return r;
}

