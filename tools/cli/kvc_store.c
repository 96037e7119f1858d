/*
 * kvc_store.c - read-only store reader (kvc_store.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvc_store.h"

void *kvc_store_alloc(size_t len)
{
    void *p = NULL;
    if (posix_memalign(&p, FMT_BLOCK, len ? len : FMT_BLOCK))
        return NULL;
    return p;
}

int kvc_store_read(const struct kvc_store *s, void *buf, size_t len, uint64_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t r = pread(s->fd, (char *)buf + done, len - done, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            return -EIO;   /* past the end: a truncated store */
        done += (size_t)r;
    }
    return 0;
}

int kvc_store_open(const char *path, struct kvc_store *s, char *err, size_t errlen)
{
    struct stat st;
    uint8_t *copies[2] = { NULL, NULL };
    int rc = -1;

    memset(s, 0, sizeof(*s));
    s->fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
    s->direct = s->fd >= 0;
    if (s->fd < 0 && errno == EINVAL)   /* tmpfs and friends */
        s->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (s->fd < 0 || fstat(s->fd, &st) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    s->file_size = (uint64_t)st.st_size;
    if (S_ISBLK(st.st_mode) && ioctl(s->fd, BLKGETSIZE64, &s->file_size) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (s->file_size < FMT_DATA_OFF) {
        snprintf(err, errlen, "%s: %llu bytes: too small for a store", path,
                 (unsigned long long)s->file_size);
        goto out;
    }
    for (int c = 0; c < 2; c++) {
        if ((copies[c] = kvc_store_alloc(FMT_SB_COPY)) == NULL ||
            kvc_store_read(s, copies[c], FMT_SB_COPY, (uint64_t)c * FMT_SB_COPY) < 0) {
            snprintf(err, errlen, "%s: cannot read the superblock", path);
            goto out;
        }
        const struct fmt_sb *sb = (const struct fmt_sb *)copies[c];
        s->copy_magic[c] = sb->magic == FMT_SB_MAGIC;
        s->copy_ok[c] = fmt_sb_check(sb, FMT_SB_COPY);
        s->copy_gen[c] = sb->generation;
    }
    if (!s->copy_ok[0] && !s->copy_ok[1]) {
        snprintf(err, errlen, "%s: no intact superblock (%s)", path,
                 s->copy_magic[0] || s->copy_magic[1] ? "both copies damaged"
                                                      : "not a kvcached store");
        goto out;
    }
    s->copy = s->copy_ok[1] && (!s->copy_ok[0] || s->copy_gen[1] > s->copy_gen[0]) ? 1 : 0;
    s->sb = (struct fmt_sb *)copies[s->copy];
    copies[s->copy] = NULL;
    s->ns = (const struct fmt_ns *)(s->sb + 1);
    if (s->sb->slab_size < 2 * FMT_BLOCK || s->sb->slab_size % FMT_BLOCK ||
        s->sb->data_off < FMT_DATA_OFF ||
        s->sb->data_off + (uint64_t)s->sb->nslabs * s->sb->slab_size > s->file_size) {
        snprintf(err, errlen, "%s: superblock geometry does not fit the file", path);
        goto out;
    }
    rc = 0;
out:
    free(copies[0]);
    free(copies[1]);
    if (rc)
        kvc_store_close(s);
    return rc;
}

void kvc_store_close(struct kvc_store *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    free(s->sb);
    s->sb = NULL;
}

bool kvc_slab_valid(const struct kvc_store *s, const struct fmt_slab *h, uint32_t id)
{
    return fmt_slab_check(h) && h->store_id == s->sb->store_id && h->slab_id == id &&
           fmt_slab_sane(h, s->sb->slab_size);
}

int kvc_slab_tail(const struct kvc_store *s, uint32_t id, struct fmt_slab *h, uint8_t **sum)
{
    uint32_t slab = s->sb->slab_size, tail = fmt_tail(slab);
    uint8_t *buf = kvc_store_alloc(tail);
    int rc = -1;

    *sum = NULL;
    memset(h, 0, sizeof(*h));
    if (buf == NULL || kvc_store_read(s, buf, tail, kvc_slab_off(s, id) + slab - tail))
        goto out;
    memcpy(h, buf + tail - FMT_SLAB_HDR, sizeof(*h));
    rc = 0;
    if (!kvc_slab_valid(s, h, id))
        goto out;
    uint64_t bytes = fmt_sum_bytes(h->nitems);
    uint8_t *src = buf + tail - FMT_SLAB_HDR - bytes, *big = NULL;
    if (bytes + FMT_SLAB_HDR > tail) {   /* a long summary: a second read */
        if ((big = kvc_store_alloc(bytes)) == NULL ||
            kvc_store_read(s, big, bytes, kvc_slab_off(s, id) + fmt_sum_off(slab, h->nitems))) {
            free(big);
            rc = -1;
            goto out;
        }
        src = big;
    }
    if (fmt_sum_csum(src, h->nitems) == h->sum_csum && (*sum = malloc(bytes + 1)) != NULL)
        memcpy(*sum, src, bytes);
    else
        rc = 1;
    free(big);
out:
    free(buf);
    return rc;
}

const struct fmt_ns *kvc_store_ns(const struct kvc_store *s, uint64_t id)
{
    for (uint32_t i = 0; i < s->sb->ns_count; i++)
        if (s->ns[i].id == id)
            return &s->ns[i];
    return NULL;
}
