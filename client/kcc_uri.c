/*
 * kcc_uri.c - parsing of server URIs and lists.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvcache.h"
#include "kcc_uri.h"

#define URI_MAX_WEIGHT 10000

/* Parse a decimal in s[0..len) into [lo, hi]; 0 or -1. */
static int parse_uint(const char *s, size_t len, unsigned long lo, unsigned long hi,
                      unsigned long *out)
{
    unsigned long v = 0;
    if (len == 0 || len > 9)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int kcc_uri_parse(const char *s, size_t len, struct kcc_uri *uri)
{
    const char *star;
    unsigned long w = 1;

    memset(uri, 0, sizeof(*uri));
    while (len && (*s == ' ' || *s == '\t')) {  /* allow "a, b" */
        s++;
        len--;
    }
    star = memchr(s, '*', len);
    if (star) {
        if (parse_uint(star + 1, (size_t)(s + len - star - 1), 1, URI_MAX_WEIGHT, &w))
            return KVCACHE_EURI;
        len = (size_t)(star - s);
    }
    uri->weight = (uint32_t)w;
    if (len > 5 && memcmp(s, "unix:", 5) == 0) {
        size_t plen = len - 5;
        if (plen > 6 && memcmp(s + len - 6, "?shm=", 5) == 0 &&
            (s[len - 1] == '0' || s[len - 1] == '1')) {
            uri->no_shm = s[len - 1] == '0';
            plen -= 6;
        }
        if (plen == 0 || plen >= sizeof(uri->path) || memchr(s + 5, '\0', plen))
            return KVCACHE_EURI;
        uri->kind = KCC_URI_UNIX;
        memcpy(uri->path, s + 5, plen);
        memcpy(uri->name, s + 5, plen);
        return 0;
    }
    if (len > 4 && memcmp(s, "tcp:", 4) == 0) {
        const char *h = s + 4, *end = s + len, *colon;
        size_t hlen;
        unsigned long port;
        if (*h == '[') {  /* [v6]:port */
            const char *rb = memchr(h, ']', (size_t)(end - h));
            if (rb == NULL || rb + 1 >= end || rb[1] != ':')
                return KVCACHE_EURI;
            h++;
            hlen = (size_t)(rb - h);
            colon = rb + 1;
        } else {
            colon = NULL;
            for (const char *p = h; p < end; p++)
                if (*p == ':')
                    colon = p;
            if (colon == NULL)
                return KVCACHE_EURI;
            hlen = (size_t)(colon - h);
            if (memchr(h, ':', hlen))  /* bare v6 without brackets */
                return KVCACHE_EURI;
        }
        if (hlen == 0 || hlen >= sizeof(uri->host) ||
            parse_uint(colon + 1, (size_t)(end - colon - 1), 1, 65535, &port))
            return KVCACHE_EURI;
        uri->kind = KCC_URI_TCP;
        memcpy(uri->host, h, hlen);
        snprintf(uri->port, sizeof(uri->port), "%lu", port);
        snprintf(uri->name, sizeof(uri->name), "%s:%s", uri->host, uri->port);
        return 0;
    }
    return KVCACHE_EURI;
}

int kcc_uri_parse_list(const char *list, struct kcc_uri **out, uint32_t *n)
{
    uint32_t count = 1, i = 0;
    struct kcc_uri *uris;
    const char *p = list;
    int rc = KVCACHE_EURI;

    *out = NULL;
    *n = 0;
    if (list == NULL || *list == '\0')
        return KVCACHE_EURI;
    for (const char *c = list; *c; c++)
        count += *c == ',';
    uris = calloc(count, sizeof(*uris));
    if (uris == NULL)
        return KVCACHE_ENOMEM;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        rc = kcc_uri_parse(p, len, &uris[i]);
        if (rc)
            goto err;
        i++;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    *out = uris;
    *n = count;
    return 0;
err:
    free(uris);
    return rc;
}
