/*
 * kc_auth.h - who may do what: tokens from files, the credential of each
 * connection, admin-only operations, namespace quotas.
 *
 * Credentials: a Unix socket connection is trusted by the socket file's
 * mode (0600: the daemon's user only). A TCP or memcache connection holds
 * nothing until it proves it has the token of --token-file (Auth RPC, or
 * a first memcache line "auth <token>"); without --token-file those ports
 * are open to whoever reaches them (logged at start). With
 * --admin-token-file, DropNamespace needs the admin token, on any
 * listener. --ns-quota caps the namespaces one credential creates;
 * --ns-max-bytes the live bytes of one namespace.
 *
 * Token files must be regular files of the daemon's user with no access
 * for group or others (mode 0600 or 0400); the token is the file's first
 * line, 16 to 1024 bytes. Comparisons take the same time whatever matches.
 */
#ifndef KC_AUTH_H
#define KC_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct options;
struct conn;
struct store;

/* A connection's credential. */
enum auth_cred {
    CRED_NONE = 0,    /* nothing proven yet: only Auth is answered */
    CRED_UNIX,        /* the Unix socket (file permissions) */
    CRED_OPEN,        /* TCP or memcache on a daemon without --token-file */
    CRED_TOKEN,       /* proved the --token-file token */
    CRED_ADMIN,       /* proved the --admin-token-file token */
    CRED_COUNT,
};

/* The daemon's tokens and per-credential counts. */
struct auth {
    char *token;                  /* --token-file's token, or NULL */
    size_t token_len;
    char *admin;                  /* --admin-token-file's token, or NULL */
    size_t admin_len;
    unsigned ns_quota;            /* namespaces one credential may create; 0:
                                     no limit */
    uint64_t ns_max_bytes;        /* live bytes per namespace; 0: no limit */
    unsigned ns_created[CRED_COUNT]; /* namespaces created, per credential */
    unsigned mc_created;          /* namespaces created by memcache sets */
    uint64_t failures;            /* Auth attempts refused */
};

/* Read the token files of o (checking their mode). 0 or -1 (logged). */
int auth_init(struct auth *a, const struct options *o);

/* Free the tokens (wiped first). */
void auth_deinit(struct auth *a);

/* The credential a new connection starts with. */
enum auth_cred auth_initial(const struct auth *a, bool is_unix);

/* The credential a presented token gives, or CRED_NONE. */
enum auth_cred auth_check(const struct auth *a, const void *tok, size_t len);

/* May a connection with credential cred drop namespaces? */
bool auth_admin(const struct auth *a, enum auth_cred cred);

/* May cred create one more namespace? Counts it when it may. */
bool auth_ns_create(struct auth *a, enum auth_cred cred);

/* May namespace ns take a block of len bytes more under --ns-max-bytes
 * (its live bytes now plus len)? */
bool auth_ns_bytes_ok(const struct auth *a, struct store *st, uint64_t ns,
                      uint64_t len);

#endif
