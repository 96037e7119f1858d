/*
 * kc_mcget.h - memcache gets (get, gets, mg) on the store: one engine batch
 * per run of keys of one namespace, the answer sent from engine memory.
 * Private to kc_memcache.c.
 */
#ifndef KC_MCGET_H
#define KC_MCGET_H

#include <stddef.h>

#include "daemon/kc_mcparse.h"

struct conn;

/* Tokens of a command other than get: command, key, up to 30 flags. */
#define MC_TOKENS 32
/* Room for a meta reply's flags (a key of 250, an opaque of 32, ...). */
#define MC_FLAGS_MAX 512

/* Kinds of get. */
enum mc_get_kind { MCG_GET, MCG_GETS, MCG_MG };

/*
 * Start a get of keys[0..n) (tokens into line[0..len)); for mg, fl[0..nfl)
 * are its flags (checked already). The line is copied: the input buffer
 * moves on while the device is read. The answer is queued when every batch
 * is done, and the connection kicked to go on with its next command.
 * Returns an enum step.
 */
int mc_get_start(struct conn *c, int kind, const char *line, size_t len,
                 const struct mc_tok *keys, size_t n,
                 const struct mc_tok *fl, size_t nfl);

#endif
