/*
 * kc_auth.c - tokens, credentials, admin operations, namespace quotas.
 */
#include "daemon/kc_auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/kc_log.h"
#include "daemon/kc_opts.h"
#include "slab/kc_store.h"

/* Bounds of a token. */
#define AUTH_TOKEN_MIN 16
#define AUTH_TOKEN_MAX 1024

/* Read the token of path into *out. 0 or -1 (logged). */
static int auth_read(const char *path, char **out, size_t *len)
{
    char buf[AUTH_TOKEN_MAX + 2];
    struct stat st;
    ssize_t n;
    size_t l;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    if (fd < 0 || fstat(fd, &st) < 0) {
        log_error("token file %s: %s", path, strerror(errno));
        goto err;
    }
    if (!S_ISREG(st.st_mode)) {
        log_error("token file %s: not a regular file", path);
        goto err;
    }
    if (st.st_mode & 077) {
        log_error("token file %s: mode %04o lets others read it: chmod 600",
                  path, (unsigned)(st.st_mode & 07777));
        goto err;
    }
    if (st.st_uid != geteuid()) {
        log_error("token file %s: owned by uid %u, not by the daemon's user",
                  path, (unsigned)st.st_uid);
        goto err;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    if (n < 0) {
        log_error("token file %s: %s", path, strerror(errno));
        goto err;
    }
    buf[n] = '\0';
    l = strcspn(buf, "\r\n");
    if (l < AUTH_TOKEN_MIN || l > AUTH_TOKEN_MAX || memchr(buf, 0, l)) {
        log_error("token file %s: the first line must be a token of %d to %d "
                  "bytes", path, AUTH_TOKEN_MIN, AUTH_TOKEN_MAX);
        goto err;
    }
    *out = malloc(l + 1);
    if (*out == NULL) {
        log_error("out of memory");
        goto err;
    }
    memcpy(*out, buf, l);
    (*out)[l] = '\0';
    *len = l;
    memset(buf, 0, sizeof(buf));
    close(fd);
    return 0;
err:
    memset(buf, 0, sizeof(buf));
    if (fd >= 0)
        close(fd);
    return -1;
}

int auth_init(struct auth *a, const struct options *o)
{
    memset(a, 0, sizeof(*a));
    a->ns_quota = o->ns_quota;
    a->ns_max_bytes = o->ns_max_bytes;
    if (o->token_file && auth_read(o->token_file, &a->token,
                                   &a->token_len) < 0)
        return -1;
    if (o->admin_token_file && auth_read(o->admin_token_file, &a->admin,
                                         &a->admin_len) < 0)
        return -1;
    /* opts_check refused this unless --no-auth said it is meant */
    if (a->token == NULL && (o->port >= 0 || o->memcache_port >= 0))
        log_warn("--no-auth: TCP or the memcache port is on without "
                 "--token-file: whoever reaches it may read, write and drop "
                 "every namespace (see docs/security.md)");
    return 0;
}

void auth_deinit(struct auth *a)
{
    if (a->token)
        memset(a->token, 0, a->token_len);
    if (a->admin)
        memset(a->admin, 0, a->admin_len);
    free(a->token);
    free(a->admin);
    a->token = a->admin = NULL;
}

enum auth_cred auth_initial(const struct auth *a, bool is_unix)
{
    if (is_unix)
        return CRED_UNIX;
    return a->token ? CRED_NONE : CRED_OPEN;
}

/* Equal, in a time that does not depend on where they differ. */
static bool auth_equal(const char *want, size_t wlen, const void *got,
                       size_t glen)
{
    const unsigned char *g = got;
    unsigned diff = wlen != glen;

    for (size_t i = 0; i < wlen; i++)
        diff |= (unsigned)(unsigned char)want[i] ^ (i < glen ? g[i] : 0u);
    return diff == 0;
}

enum auth_cred auth_check(const struct auth *a, const void *tok, size_t len)
{
    if (a->admin && auth_equal(a->admin, a->admin_len, tok, len))
        return CRED_ADMIN;
    if (a->token && auth_equal(a->token, a->token_len, tok, len))
        return CRED_TOKEN;
    return CRED_NONE;
}

bool auth_admin(const struct auth *a, enum auth_cred cred)
{
    if (a->admin)
        return cred == CRED_ADMIN;
    return cred != CRED_NONE;
}

bool auth_ns_create(struct auth *a, enum auth_cred cred)
{
    if (a->ns_quota && a->ns_created[cred] >= a->ns_quota)
        return false;
    a->ns_created[cred]++;
    return true;
}

bool auth_ns_bytes_ok(const struct auth *a, struct store *st, uint64_t ns,
                      uint64_t len)
{
    struct store_ns_info info;

    if (a->ns_max_bytes == 0 || store_ns_get(st, ns, &info) != 0)
        return true;
    return info.bytes <= a->ns_max_bytes && len <= a->ns_max_bytes - info.bytes;
}
