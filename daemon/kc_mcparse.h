/*
 * kc_mcparse.h - the pure parts of the memcache text protocol: splitting a
 * command line into tokens, numbers as memcached reads them, and the
 * mapping from a memcache key to a namespace and a 128-bit block key.
 *
 * No I/O and no store calls here, so that tests/memcache can check them
 * alone. The protocol itself (commands, replies) is in kc_memcache.c.
 */
#ifndef KC_MCPARSE_H
#define KC_MCPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slab/kc_store.h"

/* memcached's limit on a key's length. */
#define MC_KEY_MAX 250
/* Namespace of text keys (any key not of the direct form): "mctext01" in
 * ASCII; variable block sizes; values carry a header (kc_mcitem.h). */
#define MC_TEXT_NS 0x6d63746578743031ull
/* Length of a key of the direct form "<16 hex ns>:<32 hex key bytes>". */
#define MC_HEXKEY_LEN 49

/* A token of a command line: not NUL-terminated. */
struct mc_tok {
    const char *p;
    size_t len;
};

/*
 * Split line[0..len) on spaces into at most max tokens. Returns the number
 * of tokens found, or max + 1 when there are more than max (the rest is
 * not split).
 */
size_t mc_tokenize(const char *line, size_t len, struct mc_tok *t, size_t max);

/* Is this token a command of that name? */
bool mc_tok_is(const struct mc_tok *t, const char *name);

/* Unsigned decimal, all digits, at most max. 0 or -1. */
int mc_parse_u64(const struct mc_tok *t, uint64_t max, uint64_t *out);

/* Signed decimal (an exptime may be negative). 0 or -1. */
int mc_parse_i64(const struct mc_tok *t, int64_t *out);

/* A key memcached would take: 1..250 bytes (any byte but a space, which
 * ends a token; control bytes included, as memcached takes them). */
bool mc_key_ok(const struct mc_tok *t);

/*
 * The namespace and block key a memcache key names: the direct form
 * "<ns as 16 hex digits>:<the key's 16 wire bytes as 32 hex digits>" (either
 * case; 49 characters); for any other key (a text key, see kc_mcitem.h)
 * returns false with ns = MC_TEXT_NS and key = XXH3-128 of the text.
 */
bool mc_key_map(const struct mc_tok *t, uint64_t *ns, struct kc_key *key);

/* Write the direct form of (ns, key) into out (50 bytes with the NUL). */
void mc_key_format(uint64_t ns, const struct kc_key *key,
                   char out[MC_HEXKEY_LEN + 1]);

/*
 * Is namespace ns in list, a comma-separated list of 16-hex-digit ids or
 * "all" (--memcache-writable)? 1 yes, 0 no, -1 list malformed. NULL: no.
 */
int mc_ns_listed(const char *list, uint64_t ns);

/* Decode a base64 key (meta flag b) into out[0..cap); its length, or -1. */
int mc_b64_decode(const struct mc_tok *t, uint8_t *out, size_t cap);

#endif
