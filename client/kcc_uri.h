/*
 * kcc_uri.h - server URIs: "unix:/path" (with "?shm=0": no shared memory)
 * and "tcp:host:port" ("tcp:[v6]:port"),
 * and comma-separated lists of them with optional "*weight".
 */
#ifndef KCC_URI_H
#define KCC_URI_H

#include <stdint.h>
#include <sys/un.h>

enum kcc_uri_kind { KCC_URI_UNIX = 1, KCC_URI_TCP = 2 };

/* One parsed server address. */
struct kcc_uri {
    enum kcc_uri_kind kind;              /* unix socket or TCP */
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* unix: socket path */
    char host[256];                     /* tcp: host name or address, no brackets */
    char port[8];                       /* tcp: decimal port */
    char name[300];                     /* ring name: "host:port" or the path */
    uint32_t weight;                    /* ring weight, >= 1 */
    int no_shm;                         /* unix: "?shm=0" given: socket only */
};

/* Parse one URI (with optional "*weight") from s[0..len).  0 or KVCACHE_EURI. */
int kcc_uri_parse(const char *s, size_t len, struct kcc_uri *uri);

/* Parse a comma-separated list into a new array (*out, free() it) of *n URIs.
 * 0, KVCACHE_EURI or KVCACHE_ENOMEM. */
int kcc_uri_parse_list(const char *list, struct kcc_uri **out, uint32_t *n);

#endif
