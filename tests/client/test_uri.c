/* test_uri: server URIs and lists, good and bad. */
#include <string.h>

#include "kvcache.h"
#include "kcc_uri.h"
#include "kc_test.h"

static void good(const char *s, enum kcc_uri_kind kind, const char *name, uint32_t w)
{
    struct kcc_uri u;
    int rc = kcc_uri_parse(s, strlen(s), &u);
    if (rc) {
        fprintf(stderr, "refused %s: %s\n", s, kvcache_strerror(rc));
        exit(1);
    }
    CHECK(u.kind == kind);
    CHECK(strcmp(u.name, name) == 0);
    CHECK(u.weight == w);
}

static void bad(const char *s)
{
    struct kcc_uri u;
    if (kcc_uri_parse(s, strlen(s), &u) != KVCACHE_EURI) {
        fprintf(stderr, "accepted %s\n", s);
        exit(1);
    }
}

int main(void)
{
    struct kcc_uri u, *list;
    uint32_t n;

    good("unix:/tmp/kvcached.sock", KCC_URI_UNIX, "/tmp/kvcached.sock", 1);
    good("unix:rel.sock*3", KCC_URI_UNIX, "rel.sock", 3);
    good("tcp:127.0.0.1:7070", KCC_URI_TCP, "127.0.0.1:7070", 1);
    good("tcp:localhost:1*2", KCC_URI_TCP, "localhost:1", 2);
    good("tcp:[::1]:65535", KCC_URI_TCP, "::1:65535", 1);
    CHECK(kcc_uri_parse("tcp:[::1]:80", 12, &u) == 0 && strcmp(u.host, "::1") == 0 &&
          strcmp(u.port, "80") == 0);
    bad("");
    bad("unix:");
    bad("http://x");
    bad("tcp:host");
    bad("tcp::80");
    bad("tcp:host:");
    bad("tcp:host:0");
    bad("tcp:host:65536");
    bad("tcp:host:80x");
    bad("tcp:::1:80");
    bad("tcp:[::1]80");
    bad("tcp:h:80*0");
    bad("tcp:h:80*");
    bad("unix:/x*y");
    char longpath[200] = "unix:/";
    memset(longpath + 6, 'a', 150);
    bad(longpath);

    CHECK(kcc_uri_parse_list("tcp:a:1, unix:/b*2,tcp:c:3", &list, &n) == 0);
    CHECK(n == 3 && list[1].kind == KCC_URI_UNIX && list[1].weight == 2);
    CHECK(strcmp(list[2].name, "c:3") == 0);
    free(list);
    CHECK(kcc_uri_parse_list("tcp:a:1,", &list, &n) == KVCACHE_EURI && list == NULL);
    CHECK(kcc_uri_parse_list("", &list, &n) == KVCACHE_EURI);
    printf("uri: ok\n");
    return 0;
}
