/* test_md5: the RFC 1321 appendix A.5 test suite, plus lengths around the
 * padding boundary checked against md5sum. */
#include <string.h>

#include "kcc_md5.h"
#include "kc_test.h"

static void hex(const uint8_t d[16], char out[33])
{
    for (int i = 0; i < 16; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static void check(const char *msg, size_t len, const char *want)
{
    uint8_t d[16];
    char h[33];
    kcc_md5(msg, len, d);
    hex(d, h);
    if (strcmp(h, want)) {
        fprintf(stderr, "md5 of %zu bytes: %s, want %s\n", len, h, want);
        exit(1);
    }
}

int main(void)
{
    static const struct { const char *msg, *md5; } rfc[] = {
        {"", "d41d8cd98f00b204e9800998ecf8427e"},
        {"a", "0cc175b9c0f1b6a831c399e269772661"},
        {"abc", "900150983cd24fb0d6963f7d28e17f72"},
        {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
        {"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"},
        {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
         "d174ab98d277d9f5a5611c2c9f419d9f"},
        {"1234567890123456789012345678901234567890"
         "1234567890123456789012345678901234567890",
         "57edf4a22be3c955ac49da2e2107b67a"},
    };
    for (size_t i = 0; i < sizeof(rfc) / sizeof(rfc[0]); i++)
        check(rfc[i].msg, strlen(rfc[i].msg), rfc[i].md5);
    /* 55, 56, 63, 64, 65 'x' bytes: one or two padding blocks. */
    char xs[65];
    memset(xs, 'x', sizeof(xs));
    check(xs, 55, "04364420e25c512fd958a70738aa8f72");
    check(xs, 56, "668a72d5ba17f08e62dabcafad6db14b");
    check(xs, 63, "7dc2ca208106a2f703567bdff99d8981");
    check(xs, 64, "c1bb4f81d892b2d57947682aeb252456");
    check(xs, 65, "1bc932052302d074bdec39795fe00cf6");
    printf("md5: ok\n");
    return 0;
}
