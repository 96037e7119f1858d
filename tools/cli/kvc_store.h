/*
 * kvc_store.h - a read-only reader of a kvcached store file or device
 * (format: ssd/kc_format.h). Used by `kvcache inspect --offline` and
 * `kvcache scrub`. It never writes: the file is opened O_RDONLY (with
 * O_DIRECT where the file system allows it, so reads reach the device and
 * not a stale page cache next to a daemon writing with O_DIRECT).
 */
#ifndef KVC_STORE_H
#define KVC_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ssd/kc_format.h"

/* An open store file. */
struct kvc_store {
    int fd;
    bool direct;                 /* opened with O_DIRECT */
    uint64_t file_size;          /* bytes of the file or device */
    bool copy_ok[2];             /* superblock copies A and B intact */
    bool copy_magic[2];          /* they carry the superblock magic */
    uint64_t copy_gen[2];        /* their generations */
    int copy;                    /* the copy in use (higher valid generation) */
    struct fmt_sb *sb;           /* it: header then ns_count records */
    const struct fmt_ns *ns;     /* the namespace records */
};

/* Open and read the superblock. 0, or -1 with a message in err (no store,
 * both copies bad). */
int kvc_store_open(const char *path, struct kvc_store *s, char *err, size_t errlen);
void kvc_store_close(struct kvc_store *s);

/* Read len bytes at off into buf (aligned to FMT_BLOCK, len a multiple of
 * it). 0 or -errno; a read past the end is -EIO. */
int kvc_store_read(const struct kvc_store *s, void *buf, size_t len, uint64_t off);

/* Aligned buffer for kvc_store_read (free with free()). */
void *kvc_store_alloc(size_t len);

/* Offset of slab id. */
static inline uint64_t kvc_slab_off(const struct kvc_store *s, uint32_t id)
{
    return s->sb->data_off + (uint64_t)id * s->sb->slab_size;
}

/* Is this slab header one of this store's, for slab id? */
bool kvc_slab_valid(const struct kvc_store *s, const struct fmt_slab *h, uint32_t id);

/* Read slab id's header into h and, if it is valid, a copy of its summary
 * into *sum (malloc'd; NULL if the slab is not valid). 0, 1 if the header
 * is valid but its summary is damaged, -1 on a read error. */
int kvc_slab_tail(const struct kvc_store *s, uint32_t id, struct fmt_slab *h, uint8_t **sum);

/* The record of namespace id, or NULL. */
const struct fmt_ns *kvc_store_ns(const struct kvc_store *s, uint64_t id);

#endif
