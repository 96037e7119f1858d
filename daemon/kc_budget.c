/*
 * kc_budget.c - bytes of requests in flight, per connection and in all.
 */
#include "daemon/kc_budget.h"

#include <assert.h>

#include "daemon/kc_conn.h"
#include "daemon/kc_daemon.h"

/* A read buffer's size for a value of len bytes: its slot, rounded up to
 * the device's 4 KiB with room for the item header. */
static uint64_t budget_slot(uint32_t len)
{
    return ((uint64_t)len + 4096 + 4095) & ~4095ull;
}

uint64_t budget_get_bytes(struct store *st, uint64_t ns,
                          const struct store_get_item *items, size_t n,
                          bool prefix)
{
    uint64_t sum = 0;

    for (size_t i = 0; i < n; i++) {
        struct store_item_info in;

        if (store_describe(st, ns, &items[i].key, &in) != 0) {
            if (prefix)
                break;
            continue;
        }
        if (!in.in_memory)
            sum += budget_slot(in.len);
    }
    return sum;
}

enum budget_verdict budget_admit(const struct conn *c, uint64_t bytes)
{
    const struct server *s = c->srv;
    uint64_t conn_max = s->opts->conn_inflight;
    uint64_t all_max = s->opts->read_inflight;

    if (bytes > conn_max || bytes > all_max)
        return BUDGET_NEVER;
    if (c->inflight_bytes + bytes > conn_max ||
        s->inflight_bytes + bytes > all_max)
        return BUDGET_WAIT;
    return BUDGET_OK;
}

void budget_charge(struct conn *c, int64_t delta)
{
    struct server *s = c->srv;

    if (delta < 0) {
        uint64_t d = (uint64_t)-delta;

        assert(c->inflight_bytes >= d && s->inflight_bytes >= d);
        c->inflight_bytes -= d;
        s->inflight_bytes -= d;
        /* a connection that stopped reading because of its own limit
         * goes on once it is back under it */
        if (c->inflight_bytes + d > s->opts->conn_inflight &&
            c->inflight_bytes <= s->opts->conn_inflight)
            conn_kick(c);
    } else {
        c->inflight_bytes += (uint64_t)delta;
        s->inflight_bytes += (uint64_t)delta;
        if (s->inflight_bytes > s->stats.inflight_peak)
            s->stats.inflight_peak = s->inflight_bytes;
    }
}

bool budget_conn_over(const struct conn *c)
{
    return c->inflight_bytes > c->srv->opts->conn_inflight;
}
