"""test_pool: three kvcached daemons behind Debian's nutcracker (ketama, md5).
Blocks set through the proxy are found on the daemon ketama names (checked
against this file's own ketama and against libkvcache's ring with
ring_points 160 and ring_hash RING_MEMCACHE); blocks put by libkvcache
straight to the daemons are found through the proxy; one daemon stopped:
its blocks miss, the others hit, nothing wrong is served; restarted (it
recovers its store): served again. Skipped (77) without nutcracker."""
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mcutil
from mcutil import Raw, hexkey

NUTCRACKER = shutil.which("nutcracker") or "/usr/sbin/nutcracker"
if not os.path.exists(NUTCRACKER):
    mcutil.skip("nutcracker not installed")

NS = 0x42
BLOCK = 4096
NKEYS = 300


def ketama(names):
    """twemproxy's continuum: 160 points per server of equal weight."""
    pts = []
    for s, name in enumerate(names):
        for i in range(40):
            d = hashlib.md5(b"%s-%d" % (name, i)).digest()
            for x in range(4):
                pts.append((int.from_bytes(d[4 * x:4 * x + 4], "little"), s))
    pts.sort()

    def lookup(key):
        h = int.from_bytes(hashlib.md5(key).digest()[:4], "little")
        for v, s in pts:
            if v >= h:
                return s
        return pts[0][1]
    return lookup


def start_nutcracker(tmp, daemons, names):
    port = mcutil.free_port()
    conf = os.path.join(tmp.path, "nutcracker.yml")
    with open(conf, "w") as f:
        f.write("kv:\n  listen: 127.0.0.1:%d\n  hash: md5\n  distribution: ketama\n"
                "  timeout: 2000\n  auto_eject_hosts: true\n  server_failure_limit: 1\n"
                "  server_retry_timeout: 500\n  servers:\n" % port)
        for d, n in zip(daemons, names):
            # named as the client names the daemon, so both rings are one
            f.write("   - 127.0.0.1:%d:1 %s\n" % (d.port, n.decode()))
    p = subprocess.Popen([NUTCRACKER, "-c", conf, "-s", str(mcutil.free_port()),
                          "-o", os.path.join(tmp.path, "nutcracker.log"),
                          "-p", os.path.join(tmp.path, "nutcracker.pid")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tmp.procs.append(p)
    mcutil.wait_port(port, p, "nutcracker")
    return port


def proxy_get(r, key):
    """One key through the proxy: the value, None (miss) or "error"."""
    r.send(b"get %s\r\n" % key)
    l = r.line()
    if l.startswith(b"SERVER_ERROR"):
        return "error"
    if l == b"END":
        return None
    n = int(l.split()[3])
    v = r.read(n + 2)[:-2]
    assert r.line() == b"END"
    return v


def main():
    rng = mcutil.seeded()
    tmp = mcutil.TmpDir()
    try:
        ds = [mcutil.Daemon(tmp, "d%d" % i) for i in range(3)]
        tcp = []
        for d in ds:
            with open(os.path.join(tmp.path, d.name + ".port")) as f:
                tcp.append(int(f.read().split()[0].split("=")[1]))
        names = [b"127.0.0.1:%d" % t for t in tcp]
        where = ketama(names)
        pport = start_nutcracker(tmp, ds, names)
        proxy = Raw(pport)
        blocks = {}
        for _ in range(NKEYS):
            k = hexkey(NS, rng.randbytes(16))
            blocks[k] = rng.randbytes(BLOCK)
            assert proxy.set(k, blocks[k]) == b"STORED"
        keys = list(blocks)
        # a GetPrefix-sized multi-get through the proxy
        got = proxy.get(keys[:64])
        assert got == {k: blocks[k] for k in keys[:64]}
        # each block is on the daemon ketama names, and only there
        direct = [Raw(d.port) for d in ds]
        owner = {}
        for i in range(0, NKEYS, 50):
            part = keys[i:i + 50]
            found = [dr.get(part) for dr in direct]
            for k in part:
                on = [s for s in range(3) if k in found[s]]
                assert on == [where(k)], (k, on, where(k))
                assert found[on[0]][k] == blocks[k]
                owner[k] = on[0]
        counts = [list(owner.values()).count(s) for s in range(3)]
        assert min(counts) > 0, counts
        print("placement: ketama agrees for %d blocks, spread %s" % (NKEYS, counts))
        # libkvcache with the same ring, talking protobuf to the daemons
        if os.environ.get("KVCACHE_LIB") and not os.environ.get("KC_NO_BINDING"):
            sys.path.insert(0, os.environ["KC_PY_PATH"])
            import kvcache
            c = kvcache.Client(",".join("tcp:" + n.decode() for n in names),
                               ring_points=160, ring_hash=kvcache.RING_MEMCACHE)
            for k in keys:
                kb = bytes.fromhex(k.split(b":")[1].decode())
                assert c.server_of_ns(NS, kb) == owner[k]
            ns = c.open_namespace(model="pool", layer_end=1, tokens_per_block=4,
                                  dtype="bf16", kv_heads=1, head_dim=64, block_bytes=BLOCK)
            ck = kvcache.keys(ns, [rng.getrandbits(32) for _ in range(4 * 32)], 4)
            cb = [rng.randbytes(BLOCK) for _ in range(32)]
            assert c.put(ns, ck, cb) == [0] * 32
            mk = [kvcache.memcache_key(ns, ck[i]) for i in range(32)]
            got = proxy.get(mk)
            assert [got.get(m) for m in mk] == cb, "proxy misses blocks the client put"
            c.close()
            print("client: libkvcache's ring is nutcracker's (%d keys), its puts found "
                  "through the proxy" % NKEYS)
        for dr in direct:
            dr.close()
        # one daemon down: its blocks miss, the others hit, nothing wrong
        victim = 1
        ds[victim].stop()
        deadline = time.time() + 10
        misses = hits = errors = 0
        for k in keys:
            v = proxy_get(proxy, k)
            if v == "error":
                errors += 1
                v = None
            assert v is None or v == blocks[k], "wrong value for %s" % k
            if owner[k] == victim:
                assert v is None, "a block of the stopped daemon was served"
                misses += 1
            else:
                assert v == blocks[k], "block %s of a live daemon missed" % k
                hits += 1
        print("one down: %d hit, %d missed (%d answered SERVER_ERROR)" % (hits, misses, errors))
        # back (its store recovered): served again once nutcracker retries it
        ds[victim].start()
        while True:
            ok = all(proxy_get(proxy, k) == blocks[k] for k in keys if owner[k] == victim)
            if ok:
                break
            assert time.time() < deadline + 10, "blocks of the restarted daemon not served"
            time.sleep(0.2)
        print("restarted: its blocks served again")
        proxy.close()
        for d in ds:
            d.stop()
    finally:
        tmp.close()
    print("ok")


if __name__ == "__main__":
    main()
