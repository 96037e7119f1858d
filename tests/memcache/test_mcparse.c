/* test_mcparse: tokens, numbers and the key mapping of the memcache port
 * (daemon/kc_mcparse.c) without a daemon. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    x = tok("a\tb");
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
    /* other shapes: the default namespace, a hash of the text */
    out[20] = 'g';
    CHECK(!mc_key_map(&x, &ns, &k2) && ns == MC_DEFAULT_NS);
    x = tok("user:42");
    CHECK(!mc_key_map(&x, &ns, &k) && ns == MC_DEFAULT_NS);
    x = tok("user:43");
    mc_key_map(&x, &ns, &k2);
    CHECK(k.lo != k2.lo || k.hi != k2.hi);
    printf("ok\n");
    return 0;
}
