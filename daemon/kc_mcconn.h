/*
 * kc_mcconn.h - what the memcache modules share (private to kc_memcache.c,
 * kc_mcstore.c, kc_mcget.c and kc_mcstats.c): the per-connection state and
 * the small reply helpers.
 *
 * Replies follow the command's order; a command with noreply sends
 * nothing at all, errors included (memcached's clients count on it: an
 * unexpected error line puts the reply stream out of step).
 */
#ifndef KC_MCCONN_H
#define KC_MCCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/kc_mcitem.h"
#include "daemon/kc_mcparse.h"
#include "slab/kc_store.h"

struct server;

struct conn;
struct mc_get;

/* Tokens of a command other than get: command, key, up to 30 flags. */
#define MC_TOKENS 32
/* Room for a meta reply's flags (a key of 250, an opaque of 32, ...). */
#define MC_FLAGS_MAX 512

/* What the connection's data sink is filling. */
enum mc_sink {
    MCS_NONE,      /* nothing */
    MCS_SLOT,      /* a reserved slot of a memory slab (header first) */
    MCS_TEMP,      /* a heap buffer: applied once the old item is known */
    MCS_SWALLOW,   /* nowhere: a refused value and its \r\n */
};

/* What a storage command does with the old item. */
enum mc_mode {
    MCM_SET, MCM_ADD, MCM_REPLACE, MCM_APPEND, MCM_PREPEND, MCM_CAS,
    MCM_INCR, MCM_DECR, MCM_TOUCH, MCM_MDEL,
};

/* Per-connection memcache state. */
struct mc_conn {
    enum mc_sink sink;
    bool trailer;            /* the value is in: "\r\n" expected next */
    bool noreply;            /* classic noreply: no answer at all */
    bool meta;               /* ms/md: replies are HD / NS ... + flags */
    bool quiet;              /* meta q: no HD */
    bool text;               /* a text key: the value has a header */
    int mode;                /* enum mc_mode */
    struct store_wslot ws;   /* MCS_SLOT */
    uint8_t *temp;           /* MCS_TEMP: header room + value */
    uint32_t len;            /* value length (without the header) */
    uint64_t ns;
    struct kc_key key;
    struct mc_meta nm;       /* header of the new version */
    uint64_t cas_in;         /* cas / ms C / md C: compare with this; 0 = no */
    uint64_t delta;          /* incr / decr */
    bool set_ttl;            /* meta T given: nm.exptime is the new one */
    bool md_stale;           /* md I: mark stale instead of deleting */
    bool b64;                /* meta b: the key is base64 */
    struct mc_get *ready;    /* a get or fetch done, to finish in mc_step */
    char flags[MC_FLAGS_MAX];/* meta return flags, " k.. O.." */
    size_t flags_len;
};

/* Queue a reply unless the command said noreply. */
void mc_reply(struct conn *c, const char *s);

/* An error reply (unless noreply), counted; returns a step. */
int mc_error(struct conn *c, const char *s);

/* The step to return after a reply. */
int mc_done(struct conn *c);

/* Swallow len value bytes and their \r\n (after a refusal); a step. */
int mc_swallow(struct conn *c, uint64_t len);

/* Wall-clock seconds and microseconds. */
int64_t mc_now(void);
uint64_t mc_now_us(void);

/* A due flush_all (immediate or delayed) removes the text keys' items. */
void mc_flush_due(struct conn *c);

/* Largest value the port takes (-I). */
uint64_t mc_max_value(const struct conn *c);

/* ---- kc_mcstore.c ---- */

/* Not a KC_E* code: a write to a namespace memcache may not write. */
#define MC_EREADONLY (-2001)
/* Not a KC_E* code: the namespace would go over --ns-max-bytes. */
#define MC_EQUOTA (-2002)
/* The reply of a write: classic text, or meta code + return flags (with
 * the new cas where ms c asked for it). */
void mc_store_reply(struct conn *c, const char *classic, const char *meta);
/* A SERVER_ERROR naming a store code (or MC_EREADONLY, MC_EQUOTA). */
void mc_server_error(struct conn *c, int rc);
/* Does this write need the old item? */
bool mc_needs_old(const struct mc_conn *m);

/* set/add/replace/append/prepend <key> <flags> <exptime> <bytes> [noreply],
 * cas <key> <flags> <exptime> <bytes> <cas> [noreply]. */
int mc_cmd_store(struct conn *c, const struct mc_tok *t, size_t nt, int mode,
                 size_t line_start);
/* ms <key> <datalen> <flags>* */
int mc_cmd_ms(struct conn *c, const struct mc_tok *t, size_t nt,
              size_t line_start);
/* incr / decr <key> <delta> [noreply] */
int mc_cmd_arith(struct conn *c, const struct mc_tok *t, size_t nt, int mode);
/* touch <key> <exptime> [noreply] */
int mc_cmd_touch(struct conn *c, const struct mc_tok *t, size_t nt);
/* md <key> <flags>* */
int mc_cmd_md(struct conn *c, const struct mc_tok *t, size_t nt);
/* The value and its trailer are in (good: the trailer was \r\n). */
int mc_store_end(struct conn *c, bool good);
/* May the memcache port write namespace ns: its text namespace, those of
 * --memcache-writable, those a memcache set created, or one that does not
 * exist yet (a set creates it, within --memcache-namespaces)? Never one
 * opened through the RPC. */
bool mc_ns_writable(struct server *s, uint64_t ns);
/* Write a text key's item: header nm + value (delete the old one first). */
int mc_item_write(struct conn *c, uint64_t ns, const struct kc_key *key,
                  const struct mc_meta *nm, const uint8_t *v1, uint32_t l1,
                  const uint8_t *v2, uint32_t l2);
/* Parse meta flags t[from..nt): return flags k/O into m->flags. 0 / -1. */
int mc_meta_flags(struct conn *c, const struct mc_tok *t, size_t from,
                  size_t nt, const char *allowed, const char *numeric);

/* ---- kc_mcapply.c ---- */

/* The old item of a read-modify-write is known: apply and reply. found:
 * the item, its header old and value val[0..vlen) (text keys). */
int mc_store_apply(struct conn *c, bool found, const struct mc_meta *old,
                   const uint8_t *val, uint32_t vlen);

/* ---- kc_mcstats.c ---- */

/* stats [settings|slabs|items|conns|reset] */
int mc_cmd_stats(struct conn *c, const struct mc_tok *t, size_t nt);

#endif
