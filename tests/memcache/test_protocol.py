"""test_protocol: kvcached's memcache port against memcached itself (the
same bytes in, the same bytes out, for what both support), then what only
kvcached does: blocks through the SSD, prefix chains, namespaces of fixed
block size, the protobuf path seeing the same blocks, and bad input that
must leave nothing stored and every other connection unaffected."""
import os
import re
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mcutil
from mcutil import Raw, hexkey

# Scripts whose replies must be byte-identical on memcached and kvcached.
# Each runs on a fresh connection; keys are unique per script.
SCRIPTS = [
    b"set a1 0 0 3\r\nabc\r\nget a1\r\nget a1 a1 nope a1\r\n",
    b"set a2 0 0 0\r\n\r\nget a2\r\n",
    b"add a3 0 0 1\r\nx\r\nadd a3 0 0 1\r\ny\r\nget a3\r\nreplace a3 0 0 2\r\nzz\r\nget a3\r\n",
    b"replace a4 0 0 1\r\nx\r\nget a4\r\n",
    b"set a5 0 0 3\r\nabc\r\nset a5 0 0 4\r\nabcd\r\nget a5\r\n",
    b"set a6 0 0 3 noreply\r\nabc\r\nget a6\r\ndelete a6 noreply\r\nget a6\r\n",
    b"set a7 0 0 3\r\nabc\r\ndelete a7\r\ndelete a7\r\ndelete a7 0\r\ndelete a7 5\r\n",
    b"set a8 0 0 3\r\nabc\r\ntouch a8 10\r\ntouch a8x 10\r\ntouch a8 10 noreply\r\nmn\r\n",
    # meta commands
    b"ms b1 3\r\nxyz\r\nmg b1 v\r\nmg b1 s v f t k O77\r\nmg b1\r\nmg b1 k q\r\nmn\r\n",
    b"mg b2 v\r\nmg b2 v q\r\nmg b2 v k O9\r\nmg b2 s k\r\nmn\r\n",
    b"ms b3 2 q\r\nab\r\nms b3 2 ME\r\ncd\r\nms b3 2 ME k O1\r\ncd\r\nms b3x 2 MR\r\nab\r\nmg b3 v\r\n",
    b"ms b4 2 T0 I\r\nab\r\nmd b4 q\r\nmd b4\r\nmd b4 k O3\r\nmd b4 q k\r\nmn\r\n",
    b"ms b5 2 MZ\r\nab\r\nms b5 2 S3\r\nab\r\nmg b5 zz\r\nms b5 2 T\r\nab\r\nmg b5 v\r\n",
    # bad input
    b"bogus\r\nget\r\nset a9\r\nms x\r\nms x abc\r\nmg\r\nmd\r\nmn\r\n",
    b"get " + b"k" * 251 + b"\r\nset " + b"k" * 251 + b" 0 0 1\r\nx\r\nmn\r\n",
    b"set c1 0 0 xx\r\nabc\r\nget c1\r\n",
    b"set c2 0 0 -1\r\nabc\r\nget c2\r\n",
    b"set c3 0 0 3\r\nabcde\r\nget c3\r\n",
    b"set c4 0 0 3\nabc\nget c4\n",
    b"set c5 0 0 1 noreply\r\nxyz\r\nget c5\r\n",
    b"set c6 0 0 2000000\r\n" + b"x" * 2000000 + b"\r\nget c6\r\n",
    b"get c7\nset c7 0 0 1\nx\r\nget c7\n",
    b"\r\n \r\nverbosity 1\r\nverbosity 1 noreply\r\nmn\r\n",
    # issue 17: client flags, expiry, cas, the commands that read the old item
    b"set f1 5 0 3\r\nabc\r\nget f1\r\ngets f1\r\nset f1 4294967295 0 1\r\nx\r\nget f1\r\n"
    b"mg f1 f v\r\nms f1 2 F77\r\nab\r\nget f1\r\n",
    b"set x1 0 -1 1\r\nx\r\nget x1\r\nadd x1 0 0 1\r\ny\r\nget x1\r\ntouch x1 -1\r\nget x1\r\n"
    b"touch x1 10\r\nset x2 0 100 1\r\nz\r\nmg x2 t v\r\ngat 0 x2 nope\r\nmg x2 t\r\n"
    b"gats 50 x2\r\nmg x2 t\r\nms x3 1 T-1\r\nq\r\nmg x3 v\r\nmn\r\n",
    b"set s1 0 0 1\r\nx\r\ncas s1 0 0 1 1\r\ny\r\ncas nope 0 0 1 1\r\ny\r\nget s1\r\n"
    b"ms s1 2 C1\r\nxy\r\nms s1 2 c\r\nxy\r\nmd s1 C1\r\nms nope 1 C5\r\nz\r\nmn\r\n",
    b"set n1 0 0 3\r\n100\r\nincr n1 5\r\ndecr n1 10\r\nget n1\r\ndecr n1 1000\r\n"
    b"incr nope 1\r\nincr n1 abc\r\nset n2 0 0 2\r\nab\r\nincr n2 1\r\n"
    b"incr n1 18446744073709551615\r\nappend n1 0 0 2\r\nxy\r\nincr n1 1\r\nget n1\r\n",
    b"set p1 3 0 3\r\nabc\r\nappend p1 0 0 2\r\nxy\r\nprepend p1 0 0 2\r\n12\r\nget p1\r\n"
    b"append nope 0 0 1\r\nx\r\nprepend nope 0 0 1\r\nx\r\nms p1 2 MA\r\n++\r\n"
    b"ms p1 2 MP\r\n--\r\nmg p1 v f\r\nms nope 1 MA\r\nx\r\nmn\r\n",
    # noreply is silent, errors included
    b"set r1 0 0 3 noreply\r\nabc\r\nset r2 9 0 1 noreply\r\nz\r\nincr nope 1 noreply\r\n"
    b"decr nope 1 noreply\r\nappend nope 0 0 1 noreply\r\nx\r\nprepend nope 0 0 1 noreply\r\n"
    b"x\r\ncas nope 0 0 1 1 noreply\r\ny\r\ncas r1 0 0 1 1 noreply\r\ny\r\n"
    b"delete k 10 noreply\r\nincr r1 1 noreply\r\nget r1 r2\r\nflush_all noreply\r\nget r1\r\n",
    b"set q1 0 0 1\r\nx\r\nflush_all\r\nget q1\r\nflush_all 0\r\nflush_all -1\r\n"
    b"flush_all x\r\nverbosity x\r\nverbosity 1 2 3\r\nverbosity noreply\r\nmn\r\n",
    # keys: control bytes where memcached takes them, 250 bytes at most
    b"set a\x01\x7fb 0 0 1\r\nx\r\nget a\x01\x7fb\r\nget a\tb\r\nset " + b"k" * 250 +
    b" 0 0 1\r\ny\r\nget " + b"k" * 250 + b"\r\n",
    # meta: h, l, t, N (vivify), R (recache), I (stale: X W then Z X), b
    b"ms m1 2 T100\r\nab\r\nmg m1 h l t v\r\nmg m1 h l\r\nmg m2 N30 s v c t f\r\n"
    b"mg m2 v c t\r\nmd m1 I\r\nmg m1 v c\r\nmg m1 v c\r\nmd m1 I T30\r\nmg m1 t c v\r\n"
    b"mg m1 R200 v t\r\nmg m1 R200 v t\r\nmg m1 T0 t\r\nmg m1 t u\r\nmn\r\n",
    b"ms Zm9v 3 b\r\nabc\r\nmg Zm9v b v k c\r\nmd Zm9v b q\r\nmg Zm9v b v\r\nmn\r\n",
    b"stats reset\r\nstats bogus\r\nmn\r\n",
    b"set z1 0 0 1\r\nx\r\nquit\r\nmn\r\n",
]


def normalize(b):
    # cas values differ (memcached counts from 1, kvcached from the clock)
    b = re.sub(rb"(VALUE \S+ \d+ \d+) \d+\r\n", rb"\1 CAS\r\n", b)
    b = re.sub(rb"( c)\d+", rb"\1CAS", b)
    return b


def differential(kc_port, mc_port):
    for i, s in enumerate(SCRIPTS):
        got = []
        for port in (mc_port, kc_port):
            r = Raw(port)
            got.append(normalize(r.transcript(s)))
            r.close()
        if got[0] != got[1]:
            print("script %d differs:\n %r\nmemcached: %r\nkvcached:  %r" % (i, s, got[0], got[1]))
            sys.exit(1)
    print("differential: %d scripts identical" % len(SCRIPTS))
    # an HTTP request line: both close at once, with no reply (issue 17)
    for port in (mc_port, kc_port):
        r = Raw(port)
        r.send(b"GET / HTTP/1.1\r\n")
        try:
            assert r.s.recv(100) == b"", port
        except ConnectionResetError:
            pass
        r.close()


def big_values(port, rng):
    """256 KiB blocks under hex keys, 5x the memory budget: most gets are
    read back from the device, verified."""
    r = Raw(port)
    ns = 0x1234
    blocks = {}
    for i in range(160):
        k = hexkey(ns, rng.randbytes(16))
        v = rng.randbytes(256 << 10)
        assert r.set(k, v) == b"STORED"
        blocks[k] = v
    keys = list(blocks)
    rng.shuffle(keys)
    for i in range(0, len(keys), 16):
        got = r.get(keys[i:i + 16])
        for k in keys[i:i + 16]:
            assert got.get(k) == blocks[k], "block %s wrong or missing" % k
    st = r.stats()
    assert int(st["kc_ssd_bytes_read"]) > 0, st
    assert int(st["kc_checksum_failures"]) == 0, st
    assert int(st["curr_items"]) >= 160, st
    print("big values: 160 x 256 KiB, %s bytes read from the device" % st["kc_ssd_bytes_read"])
    r.close()


def prefix_chain(port, rng):
    """A get of a chain's keys in order answers with the blocks present."""
    r = Raw(port)
    ns = 0xabcdef
    keys = [hexkey(ns, rng.randbytes(16)) for _ in range(12)]
    for i, k in enumerate(keys):
        if i != 7:
            assert r.set(k, b"%d" % i * 100) == b"STORED"
    got = r.get(keys)
    assert list(got) == keys[:7] + keys[8:], list(got)
    # uppercase hex names the same block
    assert r.get([keys[0].upper()]) == {keys[0].upper(): b"0" * 100}
    # mg of a chain, quiet misses, mn marks the end
    r.send(b"".join(b"mg %s v q k\r\n" % k for k in keys) + b"mn\r\n")
    seen = []
    while True:
        l = r.line()
        if l == b"MN":
            break
        parts = l.split()
        assert parts[0] == b"VA", l
        seen.append(parts[2][1:])
        r.read(int(parts[1]) + 2)
    assert seen == keys[:7] + keys[8:]
    r.close()
    print("prefix chain: 11 of 12 answered in order")


def block_size(port):
    """A namespace created by a set has --memcache-block bytes per block;
    another length is refused, the connection goes on."""
    r = Raw(port)
    k = hexkey(0x77, bytes(range(16)))
    assert r.set(k, b"a" * 4096) == b"STORED"
    assert r.set(hexkey(0x77, bytes(16)), b"b" * 100) == \
        b"SERVER_ERROR value size differs from the namespace's block size"
    assert r.get([k]) == {k: b"a" * 4096}
    # other keys go to the default namespace, any size
    assert r.set(b"plain", b"c" * 100) == b"STORED"
    assert r.get([b"plain"]) == {b"plain": b"c" * 100}
    r.close()
    print("block size: fixed by --memcache-block")


def broken_sets(port):
    """A set cut short stores nothing; others are not held up."""
    a, b = Raw(port), Raw(port)
    a.send(b"set half 0 0 100000\r\n" + b"x" * 50000)
    assert b.set(b"other", b"fine") == b"STORED"
    assert b.get([b"other", b"half"]) == {b"other": b"fine"}
    a.close()
    time.sleep(0.2)
    assert b.get([b"half"]) == {}
    # a wrong trailer: nothing stored, the connection goes on
    b.send(b"set bad 0 0 4\r\n12345\r\n")
    assert b.line() == b"CLIENT_ERROR bad data chunk"
    assert b.line() == b"ERROR"
    assert b.get([b"bad"]) == {}
    # raw blocks (direct keys) keep no flags: refused, value swallowed
    hk = hexkey(0x99, bytes(16))
    b.send(b"set %s 5 0 3\r\nabc\r\nappend %s 0 0 3\r\nabc\r\n" % (hk, hk))
    assert b.line() == b"SERVER_ERROR client flags are not supported on block keys"
    assert b.line() == b"SERVER_ERROR command not supported on block keys"
    assert b.get([hk]) == {}
    # a line with no end: closed, as memcached does
    c = Raw(port)
    c.send(b"x" * 5000)
    try:
        assert c.line() == b"CLIENT_ERROR line too long"
        c.line()
        raise AssertionError("not closed")
    except (EOFError, ConnectionResetError):
        pass
    assert b.get([b"other"]) == {b"other": b"fine"}
    st = b.stats()
    assert int(st["kc_memcache_errors"]) >= 4
    b.close()
    print("broken sets: nothing stored, others unaffected")


def pipeline(port, rng):
    """Hundreds of commands in one write: answers in order."""
    r = Raw(port)
    vals = {b"p%d" % i: rng.randbytes(rng.randrange(1, 70000)) for i in range(100)}
    out = b""
    for k, v in vals.items():
        out += b"set %s 0 0 %d\r\n%s\r\nget %s\r\n" % (k, len(v), v, k)
    r.send(out + b"mn\r\n")
    for k, v in vals.items():
        assert r.line() == b"STORED"
        assert r.line() == b"VALUE %s 0 %d" % (k, len(v))
        assert r.read(len(v) + 2) == v + b"\r\n"
        assert r.line() == b"END"
    assert r.line() == b"MN"
    r.close()
    print("pipeline: 200 commands answered in order")


def concurrent(port, rng):
    """Four threads set and get their own keys at once."""
    errs = []

    def worker(t):
        try:
            r = Raw(port)
            for i in range(50):
                k = b"t%d-%d" % (t, i)
                v = bytes([t]) * (1000 + i)
                assert r.set(k, v) == b"STORED"
                assert r.get([k]) == {k: v}
            r.close()
        except Exception as e:  # reported below
            errs.append(e)
    th = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    assert not errs, errs
    print("concurrent: 4 connections")


def protobuf_same_store(port, tcp_port):
    """A block set over memcache is the block the protobuf client gets."""
    if not os.environ.get("KVCACHE_LIB") or os.environ.get("KC_NO_BINDING"):
        print("protobuf path: skipped (no binding in this build)")
        return
    sys.path.insert(0, os.environ["KC_PY_PATH"])
    import kvcache
    c = kvcache.Client("tcp:127.0.0.1:%d" % tcp_port)
    ns = c.open_namespace(model="mc", layer_end=1, tokens_per_block=4, dtype="bf16",
                          kv_heads=1, head_dim=64, block_bytes=4096)
    keys = kvcache.keys(ns, list(range(16)), 4)
    blocks = [bytes([i]) * 4096 for i in range(4)]
    r = Raw(port)
    for i in (0, 1):
        assert r.set(hexkey(ns, keys[i]), blocks[i]) == b"STORED"
    assert c.put(ns, keys[2:], blocks[2:], first_pos=2) == [0, 0]
    outs = [bytearray(4096) for _ in range(4)]
    assert c.get_prefix(ns, keys, outs) == 4
    assert [bytes(o) for o in outs] == blocks
    got = r.get([hexkey(ns, k) for k in keys])
    assert list(got.values()) == blocks
    assert r.set(hexkey(ns, keys[0]), b"x" * 10).startswith(b"SERVER_ERROR value size")
    r.close()
    c.close()
    print("protobuf path: same blocks both ways")


def issue17_expiry_and_cas_across_restart(d):
    """Flags, expiry and cas are kept with the value: an item set for 1 s is
    gone 2 s later, one set for 1000 s stays; after a restart the items keep
    flags and cas, and a new write gets a cas above every earlier one."""
    r = Raw(d.port)
    r.send(b"set short 0 1 1\r\na\r\nset long 7 1000 1\r\nb\r\n")
    assert r.line() == b"STORED" and r.line() == b"STORED"
    r.send(b"gets long\r\n")
    l = r.line().split()
    assert l[:4] == [b"VALUE", b"long", b"7", b"1"], l
    cas1 = int(l[4])
    assert r.read(3) == b"b\r\n" and r.line() == b"END"
    time.sleep(2.2)
    assert r.get([b"short", b"long"]) == {b"long": b"b"}
    r.close()
    d.stop()
    d.start()
    r = Raw(d.port)
    r.send(b"gets long\r\n")
    assert r.line() == b"VALUE long 7 1 %d" % cas1
    assert r.read(3) == b"b\r\n" and r.line() == b"END"
    r.send(b"cas long 8 0 1 %d\r\nc\r\ngets long\r\n" % cas1)
    assert r.line() == b"STORED"
    l = r.line().split()
    assert l[2] == b"8" and int(l[4]) > cas1, l
    r.close()
    print("expiry and cas: kept across a restart")


def issue17_counters_and_item_limit(port):
    """cmd_get and get_misses count a never-set key; the default item limit
    is memcached's 1 MiB (-I)."""
    r = Raw(port)
    st0 = r.stats()
    assert r.get([b"never-set-%d" % os.getpid()]) == {}
    st1 = r.stats()
    assert int(st1["cmd_get"]) == int(st0["cmd_get"]) + 1, (st0, st1)
    assert int(st1["get_misses"]) == int(st0["get_misses"]) + 1, (st0, st1)
    assert r.set(b"huge", b"h" * (1100 << 10)) == b"SERVER_ERROR object too large for cache"
    r.send(b"stats settings\r\n")
    lines = []
    while not lines or lines[-1] != b"END":
        lines.append(r.line())
    assert b"STAT item_size_max 1048576" in lines, lines
    r.close()
    print("counters: a never-set key is a miss; -I is 1 MiB by default")


def stats_slabs_one_class(port):
    """stats slabs / stats items: format 3 slabs hold items of any size, so
    the store is one class (1) with its totals: 64-byte chunks, slabs as
    pages, live bytes as mem_requested; every value a number."""
    r = Raw(port)
    for i in range(10):
        assert r.set(b"slabs-%d" % i, b"s" * (1000 + i)) == b"STORED"
    curr = int(r.stats()["curr_items"])

    def sub(name):
        r.send(b"stats " + name + b"\r\n")
        out = {}
        while True:
            l = r.line()
            if l == b"END":
                return out
            tag, k, v = l.split(b" ")
            assert tag == b"STAT", l
            out[k.decode()] = int(v)        # every value parses as a number

    sl = sub(b"slabs")
    assert {k.split(":")[0] for k in sl if ":" in k} == {"1"}, sl
    assert sl["1:chunk_size"] == 64 and sl["active_slabs"] == 1, sl
    assert sl["1:total_pages"] >= 1 and sl["1:kc_live_items"] == curr >= 10, sl
    assert sl["1:total_chunks"] == sl["1:total_pages"] * sl["1:chunks_per_page"], sl
    assert sl["1:used_chunks"] + sl["1:free_chunks"] == sl["1:total_chunks"], sl
    assert 0 < sl["1:mem_requested"] <= sl["1:used_chunks"] * 64, sl
    assert sl["1:used_chunks"] > 0 and sl["1:chunk_size"] != 0, sl
    it = sub(b"items")
    assert it["items:1:number"] == curr, it
    r.close()
    print("stats slabs: one class with the store's totals")


def issue17_cas_race(port):
    """Two connections cas the same key with the same token at once: one
    STORED, one EXISTS, every round (the loser re-reads the item when the
    winner wrote it while its read was in flight)."""
    a, b = Raw(port), Raw(port)
    assert a.set(b"race", b"0") == b"STORED"
    for i in range(40):
        a.send(b"gets race\r\n")
        cas = int(a.line().split()[4])
        a.read(len(b"%d" % i) + 2 if i else 3)
        assert a.line() == b"END"
        v = b"%d" % (i + 1)
        barrier = threading.Barrier(2)
        res = {}

        def go(r, name):
            barrier.wait()
            r.send(b"cas race 0 0 %d %d\r\n%s\r\n" % (len(v), cas, v))
            res[name] = r.line()
        th = [threading.Thread(target=go, args=(r, n)) for r, n in ((a, "a"), (b, "b"))]
        for t in th:
            t.start()
        for t in th:
            t.join()
        assert sorted(res.values()) == [b"EXISTS", b"STORED"], (i, res)
    assert a.get([b"race"]) == {b"race": b"40"}
    a.close()
    b.close()
    print("cas race: one winner in each of 40 rounds")


def main():
    rng = mcutil.seeded()
    tmp = mcutil.TmpDir()
    try:
        mc_port, _ = mcutil.start_memcached(tmp, extra=["-I", "1m"])
        # protobuf_same_store writes an RPC namespace over memcache: allowed here
        d = mcutil.Daemon(tmp, "kc", extra=["--memcache-max-value", "1m",
                                            "--memcache-writable", "all"])
        differential(d.port, mc_port)
        big_values(d.port, rng)
        prefix_chain(d.port, rng)
        broken_sets(d.port)
        pipeline(d.port, rng)
        concurrent(d.port, rng)
        with open(os.path.join(tmp.path, "kc.port")) as f:
            tcp_port = int(f.read().split()[0].split("=")[1])
        protobuf_same_store(d.port, tcp_port)
        issue17_cas_race(d.port)
        issue17_expiry_and_cas_across_restart(d)
        d.stop()
        d2 = mcutil.Daemon(tmp, "kc2", extra=["--memcache-block", "4096"])
        block_size(d2.port)
        issue17_counters_and_item_limit(d2.port)
        stats_slabs_one_class(d2.port)
        d2.stop()
    finally:
        tmp.close()
    print("ok")


if __name__ == "__main__":
    main()
