/*
 * kc_error.c - text of the library's error codes.
 */
#include <string.h>

#include "kvcache.h"

/* Messages indexed by KVCACHE_E_BASE - code. */
static const char *const kc_errtext[] = {
    "invalid argument",
    "out of memory",
    "bad server URI",
    "timed out",
    "server skipped: it failed recently",
    "connection closed by the server",
    "malformed or unexpected response",
    "the server answered with an error",
    "async put queue full: put dropped",
    "wrong block size or buffer too small",
    "no space on the server",
    "namespace not opened with this handle",
    "a lease ended before its release: the bytes read may be wrong",
    "the server offers no shared memory",
    "a server limit was reached (leased bytes, batch size)",
};

const char *kvcache_strerror(int err)
{
    if (err == 0)
        return "success";
    if (err <= KVCACHE_E_BASE && err >= KVCACHE_E_LAST)
        return kc_errtext[KVCACHE_E_BASE - err];
    if (err < 0 && err > -4096)
        return strerror(-err);
    return "unknown error";
}
