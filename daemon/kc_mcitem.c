/*
 * kc_mcitem.c - the header of text-key items, expiry arithmetic, the cas
 * counter.
 */
#include "daemon/kc_mcitem.h"

#include <assert.h>
#include <string.h>

/* First two bytes of a header: "mi". */
#define MCI_MAGIC0 0x6d
#define MCI_MAGIC1 0x69

/* Little-endian stores and loads. */
static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

void mci_encode(void *p, const struct mc_meta *m)
{
    uint8_t *b = p;

    b[0] = MCI_MAGIC0;
    b[1] = MCI_MAGIC1;
    b[2] = MCI_VERSION;
    b[3] = m->bits;
    for (int i = 0; i < 4; i++)
        b[4 + i] = (uint8_t)(m->flags >> (8 * i));
    put64(b + 8, (uint64_t)m->exptime);
    put64(b + 16, m->cas);
}

int mci_decode(const void *p, uint32_t len, struct mc_meta *m)
{
    const uint8_t *b = p;

    if (len < MCI_HDR_LEN || b[0] != MCI_MAGIC0 || b[1] != MCI_MAGIC1 ||
        b[2] != MCI_VERSION)
        return -1;
    m->bits = b[3];
    m->flags = (uint32_t)b[4] | (uint32_t)b[5] << 8 | (uint32_t)b[6] << 16 |
               (uint32_t)b[7] << 24;
    m->exptime = (int64_t)get64(b + 8);
    m->cas = get64(b + 16);
    return 0;
}

int64_t mci_exptime(int64_t exptime, int64_t now)
{
    if (exptime == 0)
        return 0;
    if (exptime < 0)
        return 1;
    if (exptime > MCI_REL_MAX)
        return exptime <= now ? 1 : exptime;
    return now + exptime;
}

bool mci_expired(const struct mc_meta *m, int64_t now)
{
    return m->exptime != 0 && m->exptime <= now;
}

int64_t mci_ttl(const struct mc_meta *m, int64_t now)
{
    if (m->exptime == 0)
        return -1;
    return m->exptime > now ? m->exptime - now : 0;
}

uint64_t mc_cas_next(struct mc_state *s, uint64_t now_us)
{
    if (!s->cas_started) {
        s->cas_started = true;
        if (s->cas < now_us)
            s->cas = now_us;
    }
    s->cas++;
    assert(s->cas != 0);
    return s->cas;
}

void mc_cas_seen(struct mc_state *s, uint64_t cas)
{
    if (cas > s->cas && cas != UINT64_MAX)
        s->cas = cas;
}
