/*
 * kc_mcparse.c - tokens, numbers and key mapping of the memcache protocol.
 */
#include "daemon/kc_mcparse.h"

#include <string.h>
#include <xxhash.h>

#include "kc_frame.h"

size_t mc_tokenize(const char *line, size_t len, struct mc_tok *t, size_t max)
{
    size_t n = 0, i = 0;

    while (i < len) {
        size_t j;

        while (i < len && line[i] == ' ')
            i++;
        if (i == len)
            break;
        if (n == max) {
            return max + 1;
        }
        for (j = i; j < len && line[j] != ' '; j++)
            ;
        t[n].p = line + i;
        t[n].len = j - i;
        n++;
        i = j;
    }
    return n;
}

bool mc_tok_is(const struct mc_tok *t, const char *name)
{
    size_t l = strlen(name);

    return t->len == l && memcmp(t->p, name, l) == 0;
}

int mc_parse_u64(const struct mc_tok *t, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (t->len == 0 || t->len > 20)
        return -1;
    for (size_t i = 0; i < t->len; i++) {
        unsigned d = (unsigned char)t->p[i] - '0';

        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

int mc_parse_i64(const struct mc_tok *t, int64_t *out)
{
    struct mc_tok u = *t;
    uint64_t v;
    bool neg = false;

    if (u.len > 0 && u.p[0] == '-') {
        neg = true;
        u.p++;
        u.len--;
    }
    if (mc_parse_u64(&u, (uint64_t)INT64_MAX, &v) < 0)
        return -1;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return 0;
}

bool mc_key_ok(const struct mc_tok *t)
{
    if (t->len == 0 || t->len > MC_KEY_MAX)
        return false;
    return memchr(t->p, ' ', t->len) == NULL;
}

/* Value of one hex digit, or -1. */
static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool mc_key_map(const struct mc_tok *t, uint64_t *ns, struct kc_key *key)
{
    uint8_t wire[KC_KEY_WIRE_LEN];
    uint64_t v = 0;
    XXH128_hash_t h;

    if (t->len != MC_HEXKEY_LEN || t->p[16] != ':')
        goto other;
    for (int i = 0; i < 16; i++) {
        int d = hexval(t->p[i]);

        if (d < 0)
            goto other;
        v = v << 4 | (uint64_t)d;
    }
    for (int i = 0; i < KC_KEY_WIRE_LEN; i++) {
        int hi = hexval(t->p[17 + 2 * i]), lo = hexval(t->p[18 + 2 * i]);

        if (hi < 0 || lo < 0)
            goto other;
        wire[i] = (uint8_t)(hi << 4 | lo);
    }
    *ns = v;
    kc_key_unpack(wire, &key->lo, &key->hi);
    return true;
other:
    h = XXH3_128bits(t->p, t->len);
    *ns = MC_TEXT_NS;
    key->lo = h.low64;
    key->hi = h.high64;
    return false;
}

void mc_key_format(uint64_t ns, const struct kc_key *key,
                   char out[MC_HEXKEY_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t wire[KC_KEY_WIRE_LEN];

    for (int i = 0; i < 16; i++)
        out[i] = hex[(ns >> (60 - 4 * i)) & 0xf];
    out[16] = ':';
    kc_key_pack(wire, key->lo, key->hi);
    for (int i = 0; i < KC_KEY_WIRE_LEN; i++) {
        out[17 + 2 * i] = hex[wire[i] >> 4];
        out[18 + 2 * i] = hex[wire[i] & 0xf];
    }
    out[MC_HEXKEY_LEN] = '\0';
}

int mc_b64_decode(const struct mc_tok *t, uint8_t *out, size_t cap)
{
    static const char a[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;

    for (size_t i = 0; i < t->len; i++) {
        const char *p;

        if (t->p[i] == '=')
            break;
        p = memchr(a, t->p[i], 64);
        if (p == NULL)
            return -1;
        acc = acc << 6 | (uint32_t)(p - a);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n == cap)
                return -1;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    return n ? (int)n : -1;
}

int mc_ns_listed(const char *list, uint64_t ns)
{
    const char *p = list;
    int found = 0;

    if (list == NULL)
        return 0;
    if (strcmp(list, "all") == 0)
        return 1;
    for (;;) {
        uint64_t id = 0;
        int nd = 0;

        for (; nd < 17 && p[nd] != ',' && p[nd] != '\0'; nd++) {
            int v = hexval(p[nd]);

            if (v < 0)
                return -1;
            id = id << 4 | (uint64_t)v;
        }
        if (nd != 16)
            return -1;
        found |= id == ns;
        p += nd;
        if (*p == '\0')
            return found;
        p++;
    }
}
