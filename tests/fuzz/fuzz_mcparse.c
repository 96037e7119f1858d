/*
 * fuzz_mcparse.c - libFuzzer harness: the memcache command parser's pure
 * parts (daemon/kc_mcparse.c) on arbitrary command lines: tokens, numbers,
 * key checks, key to namespace mapping and back, base64 keys.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/kc_mcparse.h"

/* Most tokens split from one line (more are reported as max + 1). */
#define FUZZ_TOKENS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mc_tok t[FUZZ_TOKENS];
    size_t nt = mc_tokenize((const char *)data, size, t, FUZZ_TOKENS);

    if (nt > FUZZ_TOKENS + 1)
        abort();
    if (nt > FUZZ_TOKENS)
        nt = FUZZ_TOKENS;
    for (size_t i = 0; i < nt; i++) {
        uint64_t u, ns;
        int64_t s;
        struct kc_key key;
        uint8_t raw[MC_KEY_MAX];
        int bl;

        if (t[i].p < (const char *)data ||
            t[i].p + t[i].len > (const char *)data + size)
            abort();              /* tokens stay inside the line */
        (void)mc_tok_is(&t[i], "get");
        (void)mc_parse_u64(&t[i], UINT64_MAX, &u);
        (void)mc_parse_u64(&t[i], 1u << 20, &u);
        (void)mc_parse_i64(&t[i], &s);
        if (!mc_key_ok(&t[i]))
            continue;
        if (mc_key_map(&t[i], &ns, &key)) {
            char back[MC_HEXKEY_LEN + 1];
            struct mc_tok bt = { back, MC_HEXKEY_LEN };
            uint64_t ns2;
            struct kc_key key2;

            /* the direct form maps back to itself */
            mc_key_format(ns, &key, back);
            if (!mc_key_map(&bt, &ns2, &key2) || ns2 != ns ||
                key2.lo != key.lo || key2.hi != key.hi)
                abort();
        }
        bl = mc_b64_decode(&t[i], raw, sizeof(raw));
        if (bl > (int)sizeof(raw))
            abort();
    }
    return 0;
}
