/* test_mcparse: tokens, numbers and the key mapping of the memcache port
 * (daemon/kc_mcparse.c) without a daemon. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/kc_mcitem.h"
#include "daemon/kc_mcparse.h"

#define CHECK(cond) do { \
        if (!(cond)) { \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            exit(1); \
        } \
    } while (0)

static struct mc_tok tok(const char *s)
{
    return (struct mc_tok){ s, strlen(s) };
}

int main(void)
{
    struct mc_tok t[4], x;
    struct kc_key k, k2;
    uint64_t u, ns;
    int64_t i;
    char out[MC_HEXKEY_LEN + 1];
    char big[300];

    /* tokens: runs of spaces, too many */
    CHECK(mc_tokenize("  get  a b ", 11, t, 4) == 3);
    CHECK(t[0].len == 3 && memcmp(t[0].p, "get", 3) == 0);
    CHECK(t[2].len == 1 && t[2].p[0] == 'b');
    CHECK(mc_tokenize("a b c d e", 9, t, 4) == 5);
    CHECK(mc_tokenize("", 0, t, 4) == 0);
    CHECK(mc_tok_is(&t[0], "a") && !mc_tok_is(&t[0], "ab"));
    /* numbers */
    x = tok("4294967295");
    CHECK(mc_parse_u64(&x, UINT32_MAX, &u) == 0 && u == UINT32_MAX);
    x = tok("4294967296");
    CHECK(mc_parse_u64(&x, UINT32_MAX, &u) < 0);
    x = tok("18446744073709551616");
    CHECK(mc_parse_u64(&x, UINT64_MAX, &u) < 0);
    x = tok("-1");
    CHECK(mc_parse_u64(&x, UINT64_MAX, &u) < 0);
    CHECK(mc_parse_i64(&x, &i) == 0 && i == -1);
    x = tok("12a");
    CHECK(mc_parse_i64(&x, &i) < 0);
    x = tok("");
    CHECK(mc_parse_u64(&x, 10, &u) < 0);
    /* keys: length and control characters */
    memset(big, 'k', sizeof(big));
    x = (struct mc_tok){ big, 250 };
    CHECK(mc_key_ok(&x));
    x.len = 251;
    CHECK(!mc_key_ok(&x));
    /* control bytes are taken, as memcached takes them (memcaslap's keys) */
    x = tok("a\tb\x01\x7f");
    CHECK(mc_key_ok(&x));
    x = tok("a b");
    CHECK(!mc_key_ok(&x));
    /* the direct form round-trips; either case names one block */
    k.lo = 0x0123456789abcdefull;
    k.hi = 0xfedcba9876543210ull;
    mc_key_format(0x00ab00cd00ef0012ull, &k, out);
    CHECK(strcmp(out, "00ab00cd00ef0012:efcdab89674523011032547698badcfe") == 0);
    x = tok(out);
    CHECK(mc_key_map(&x, &ns, &k2));
    CHECK(ns == 0x00ab00cd00ef0012ull && k2.lo == k.lo && k2.hi == k.hi);
    for (char *p = out; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    CHECK(mc_key_map(&x, &ns, &k2) && k2.lo == k.lo && k2.hi == k.hi);
    /* other shapes: text keys, a hash of the text */
    out[20] = 'g';
    CHECK(!mc_key_map(&x, &ns, &k2) && ns == MC_TEXT_NS);
    x = tok("user:42");
    CHECK(!mc_key_map(&x, &ns, &k));
    x = tok("user:43");
    mc_key_map(&x, &ns, &k2);
    CHECK(k.lo != k2.lo || k.hi != k2.hi);
    /* the item header round-trips; anything else is not one */
    {
        struct mc_meta m = { 0xdeadbeef, MCI_STALE, 1234567890123ll, 1ull << 60 }, m2;
        uint8_t h[MCI_HDR_LEN + 3] = { 0 };

        mci_encode(h, &m);
        CHECK(mci_decode(h, sizeof(h), &m2) == 0);
        CHECK(m2.flags == m.flags && m2.bits == m.bits && m2.exptime == m.exptime &&
              m2.cas == m.cas);
        CHECK(mci_decode(h, MCI_HDR_LEN - 1, &m2) < 0);
        h[2]++;
        CHECK(mci_decode(h, sizeof(h), &m2) < 0);
    }
    /* memcached's exptime rules */
    CHECK(mci_exptime(0, 1000) == 0);
    CHECK(mci_exptime(-1, 1000) == 1);
    CHECK(mci_exptime(10, 1000) == 1010);
    CHECK(mci_exptime(MCI_REL_MAX + 1, 1ll << 40) == 1);
    CHECK(mci_exptime(1ll << 40, 1000) == 1ll << 40);
    {
        struct mc_meta m = { 0, 0, 1010, 1 };

        CHECK(!mci_expired(&m, 1009) && mci_expired(&m, 1010));
        CHECK(mci_ttl(&m, 1000) == 10);
        m.exptime = 0;
        CHECK(!mci_expired(&m, 1ll << 40) && mci_ttl(&m, 5) == -1);
    }
    /* cas: above the clock at the start, above anything seen, never twice */
    {
        struct mc_state st = { 0 };
        uint64_t a, b;

        mc_cas_seen(&st, 5000);
        a = mc_cas_next(&st, 100);
        CHECK(a == 5001);
        b = mc_cas_next(&st, 1ull << 50);
        CHECK(b == a + 1);
        mc_cas_seen(&st, 1ull << 52);
        CHECK(mc_cas_next(&st, 0) == (1ull << 52) + 1);
        st = (struct mc_state){ 0 };
        CHECK(mc_cas_next(&st, 1ull << 50) == (1ull << 50) + 1);
    }
    printf("ok\n");
    return 0;
}
