/*
 * fuzz_recovery.c - libFuzzer harness: the recovery scan (ssd/kc_recover.c,
 * store_open) on damaged store images.
 *
 * Once: a small store (8 MiB, 1 MiB slabs) is filled with blocks of two
 * namespaces and several sizes and closed; its image is kept. Each input
 * is a list of patches (4-byte offset, 1-byte length, bytes) written over
 * a copy of that image; the store is opened (recovery runs), every block
 * of the fill is read, and a block that comes back must be byte for byte
 * what was stored (damage is a miss, never wrong data). Then it is closed.
 * The file lives in $KC_TEST_DIR (O_DIRECT needs a real file system).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "slab/kc_store.h"

#define FUZZ_DEV (8u << 20)
#define FUZZ_NBLK 120

static char fuzz_path[1024];
static uint8_t *fuzz_image;           /* the undamaged image */
static uint32_t fuzz_len[FUZZ_NBLK];  /* block i's length */

/* Quiet store log. */
static void fuzz_log(void *arg, int level, const char *msg)
{
    (void)arg;
    (void)level;
    (void)msg;
}

/* Namespace, key and bytes of block i. */
static uint64_t fuzz_ns(int i)
{
    return i % 3 ? 0x1111111111111111ull : 0x2222222222222222ull;
}

static void fuzz_fill(uint8_t *b, uint32_t len, int i)
{
    uint64_t x = (uint64_t)i * 0x9E3779B97F4A7C15ull + 7;

    for (uint32_t k = 0; k < len; k++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b[k] = (uint8_t)x;
    }
}

static void fuzz_config(struct store_config *cfg)
{
    store_config_default(cfg);
    cfg->path = fuzz_path;
    cfg->device_size = FUZZ_DEV;
    cfg->slab_size = 1u << 20;
    cfg->memory = 2u << 20;
    cfg->min_item_size = 16u << 10;
    cfg->log = fuzz_log;
}

/* Make the template image. */
static void fuzz_setup(void)
{
    const char *dir = getenv("KC_TEST_DIR");
    struct store_config cfg;
    struct store *st;
    uint8_t *buf = malloc(64u << 10);
    char err[256];
    int fd;

    snprintf(fuzz_path, sizeof(fuzz_path), "%s/fuzz_recovery.%d.store",
             dir ? dir : ".", (int)getpid());
    unlink(fuzz_path);
    fuzz_config(&cfg);
    cfg.fresh = true;
    if (buf == NULL || store_open(&cfg, &st, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_recovery: cannot make the store: %s\n", err);
        abort();
    }
    store_ns_open(st, 0x1111111111111111ull, 0, "a", 1);
    store_ns_open(st, 0x2222222222222222ull, 0, "b", 1);
    for (int i = 0; i < FUZZ_NBLK; i++) {
        struct store_put_item it = { { (uint64_t)i, ~(uint64_t)i }, (uint32_t)i,
                                     0, buf, 0 };

        fuzz_len[i] = (16u << 10) + (uint32_t)(i % 4) * (12u << 10) + (uint32_t)i;
        it.len = fuzz_len[i];
        fuzz_fill(buf, it.len, i);
        if (store_put(st, fuzz_ns(i), &it, 1) != 0 || it.status != KC_OK)
            abort();
    }
    store_close(st);
    fuzz_image = malloc(FUZZ_DEV);
    fd = open(fuzz_path, O_RDONLY);
    if (fuzz_image == NULL || fd < 0 ||
        pread(fd, fuzz_image, FUZZ_DEV, 0) != (ssize_t)FUZZ_DEV)
        abort();
    close(fd);
    free(buf);
}

/* Remove the store file at exit. */
static void fuzz_cleanup(void)
{
    unlink(fuzz_path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t *img, *want;
    struct store_config cfg;
    struct store *st;
    char err[256];
    int fd;

    if (fuzz_image == NULL) {
        fuzz_setup();
        atexit(fuzz_cleanup);
        img = malloc(FUZZ_DEV);
        want = malloc(64u << 10);
        if (img == NULL || want == NULL)
            abort();
    }
    memcpy(img, fuzz_image, FUZZ_DEV);
    for (size_t p = 0; p + 5 <= size;) {
        uint32_t off;
        size_t len = (size_t)data[p + 4] % 64 + 1;

        memcpy(&off, data + p, 4);
        off %= FUZZ_DEV;
        p += 5;
        if (len > size - p)
            len = size - p;
        if (len > FUZZ_DEV - off)
            len = FUZZ_DEV - off;
        memcpy(img + off, data + p, len);
        p += len;
    }
    fd = open(fuzz_path, O_WRONLY);
    if (fd < 0 || pwrite(fd, img, FUZZ_DEV, 0) != (ssize_t)FUZZ_DEV)
        abort();
    close(fd);
    fuzz_config(&cfg);
    if (store_open(&cfg, &st, err, sizeof(err)) != 0)
        return 0;                 /* refused: a damaged superblock may be */
    for (int i = 0; i < FUZZ_NBLK; i++) {
        struct store_get_item it = { .key = { (uint64_t)i, ~(uint64_t)i } };
        struct store_get g = { .ns = fuzz_ns(i), .items = &it, .n = 1 };

        if (store_get(st, &g) != 0)
            continue;
        if (g.status == 0 && it.status == KC_OK) {
            fuzz_fill(want, fuzz_len[i], i);
            if (it.len != fuzz_len[i] || memcmp(it.data, want, it.len) != 0)
                abort();          /* wrong bytes served: the bug to find */
        }
        store_get_release(st, &g);
    }
    store_close(st);
    return 0;
}
