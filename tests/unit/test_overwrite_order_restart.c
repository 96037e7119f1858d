/*
 * test_overwrite_order_restart.c - an overwrite (delete, then put) keeps
 * the last value across a clean restart and a crash, also when the new
 * value is in another size class.
 *
 * Sequence numbers used to be taken when a memory slab opened, and
 * recovery kept the copy in the slab with the higher number: a value put
 * later into a slab opened earlier (another class) lost to the value it
 * replaced. Now every item has its own sequence number, taken when it is
 * written, and the highest wins.
 */
#include "kt.h"

enum { NS = 42 };
#define SMALL 100u
#define LARGE (10u * 1000)

static struct store_config cfg;

/* Put key i with the bytes content key c implies, len bytes. */
static void put_as(struct store *st, uint64_t i, uint64_t c, uint32_t len)
{
    static uint8_t buf[LARGE];
    struct kc_key k = kt_key(i), ck = kt_key(c);
    kt_fill(buf, len, &ck);
    struct store_put_item it = { .key = k, .len = len, .data = buf, .status = -1 };
    KT_OK(store_put(st, NS, &it, 1));
    KT_EQ(it.status, KC_OK);
}

/* Key i must hold len bytes of content c. */
static void expect(struct store *st, uint64_t i, uint64_t c, uint32_t len, const char *when)
{
    static uint8_t buf[LARGE];
    struct kc_key k = kt_key(i);
    uint32_t got = 0;
    int status = kt_get_into(st, NS, &k, buf, sizeof(buf), &got);
    struct kc_key ck = kt_key(c);
    KT_CHECKF(status == KC_OK, "%s: key %llu missing", when, (unsigned long long)i);
    KT_CHECKF(got == len && kt_verify(buf, len, &ck) < 0,
              "%s: key %llu holds %u bytes, not the last value (%u bytes)", when,
              (unsigned long long)i, got, len);
}

/* Overwrite key i: delete, then put content c of len bytes. */
static void overwrite(struct store *st, uint64_t i, uint64_t c, uint32_t len)
{
    struct kc_key k = kt_key(i);
    KT_EQ(store_delete(st, NS, &k), KC_OK);
    put_as(st, i, c, len);
}

/* The crash case: overwrite twice more, flush, end without closing. */
static void overwrite_then_crash(void *arg)
{
    (void)arg;
    struct store *st = KT_OPEN(&cfg);
    overwrite(st, 1, 103, SMALL);
    overwrite(st, 2, 203, LARGE);
    KT_OK(store_flush(st));
}

int main(void)
{
    kt_begin("overwrite_order_restart");
    char path[4200];
    kt_config(&cfg, kt_path(path, sizeof(path), "store"), 32 * KT_MIB, 1 * KT_MIB,
              4 * KT_MIB, 4 * KT_KIB);
    cfg.fresh = true;
    struct store *st = KT_OPEN(&cfg);
    KT_OK(store_ns_open(st, NS, 0, NULL, 0));     /* variable sizes */
    put_as(st, 9, 9, LARGE);      /* opens the large class's slab first */
    put_as(st, 1, 101, SMALL);
    overwrite(st, 1, 102, LARGE); /* into the slab opened before the small one */
    put_as(st, 2, 201, LARGE);
    overwrite(st, 2, 202, SMALL);
    expect(st, 1, 102, LARGE, "before the close");
    KT_CLOSE(st);
    cfg.fresh = false;

    st = KT_OPEN(&cfg);
    expect(st, 1, 102, LARGE, "after a clean restart");
    expect(st, 2, 202, SMALL, "after a clean restart");
    expect(st, 9, 9, LARGE, "after a clean restart");
    KT_CLOSE(st);

    kt_crash_after(overwrite_then_crash, NULL);
    st = KT_OPEN(&cfg);
    expect(st, 1, 103, SMALL, "after a crash");
    expect(st, 2, 203, LARGE, "after a crash");
    KT_CLOSE(st);
    printf("ok\n");
    return 0;
}
