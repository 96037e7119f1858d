"""test_clients: Debian's memcache clients against kvcached's memcache port:
python3-pymemcache (every call it has that kvcached supports) and the
libmemcached tools (memccp, memccat, memcstat, memcrm, memcexist, memctouch).
Skipped (77) if a package is missing (scripts/deps.sh installs them)."""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mcutil

try:
    from pymemcache.client.base import Client
    from pymemcache.exceptions import MemcacheServerError
except ImportError:
    mcutil.skip("python3-pymemcache not installed")
TOOLS = ["memccp", "memccat", "memcstat", "memcrm", "memcexist", "memctouch"]
for t in TOOLS:
    if shutil.which(t) is None:
        mcutil.skip("libmemcached-tools not installed (%s)" % t)


def with_pymemcache(port, rng):
    c = Client(("127.0.0.1", port), connect_timeout=5, timeout=5, default_noreply=False)
    assert c.set("k1", b"v1")
    assert c.get("k1") == b"v1"
    assert c.add("k1", b"other") is False
    assert c.add("k2", b"v2") is True
    assert c.replace("k2", b"v2b") is True
    assert c.replace("nope", b"x") is False
    assert c.get_many(["k1", "k2", "nope"]) == {"k1": b"v1", "k2": b"v2b"}
    c.set_many({"m%d" % i: b"%d" % i * 10 for i in range(20)})
    got = c.get_many(["m%d" % i for i in range(20)])
    assert got == {"m%d" % i: b"%d" % i * 10 for i in range(20)}
    value, cas = c.gets("k1")
    assert value == b"v1" and cas
    assert c.touch("k1", 100) is True
    assert c.touch("nope", 100) is False
    assert c.delete("k1") is True
    assert c.get("k1") is None
    assert c.delete("k1", noreply=False) is False
    big = rng.randbytes(900 << 10)
    assert c.set("big", big)
    assert c.get("big") == big
    c.set("nr", b"x", noreply=True)
    assert c.get("nr") == b"x"
    st = c.stats()
    assert st[b"curr_items"] >= 20, st
    assert c.version() == b"1.6.0 kvcached-0.1.0", c.version()
    try:
        c.set("fl", b"x", flags=3)
        raise AssertionError("flags accepted")
    except MemcacheServerError:
        pass
    assert c.get("k2") == b"v2b"   # the connection goes on
    c.close()
    print("pymemcache: ok")


def with_libmemcached(port, tmpdir, rng):
    srv = "--servers=127.0.0.1:%d" % port
    path = os.path.join(tmpdir, "blockfile")
    data = rng.randbytes(300 << 10)
    with open(path, "wb") as f:
        f.write(data)

    def run(*args, ok=True):
        p = subprocess.run(list(args), capture_output=True, timeout=30)
        if ok and p.returncode != 0:
            raise AssertionError("%s: %d %r %r" % (args, p.returncode, p.stdout, p.stderr))
        return p
    run("memccp", srv, path)
    assert run("memccat", srv, "blockfile").stdout in (data, data + b"\n")  # it adds a newline
    assert run("memcexist", srv, "blockfile").returncode == 0
    assert run("memcexist", srv, "nope", ok=False).returncode != 0
    run("memctouch", srv, "--expire=100", "blockfile")
    out = run("memcstat", srv).stdout.decode()
    assert "curr_items" in out and "kc_ssd_bytes_read" in out, out
    run("memcrm", srv, "blockfile")
    assert run("memccat", srv, "blockfile", ok=False).stdout == b""
    print("libmemcached tools: ok")


def main():
    rng = mcutil.seeded()
    tmp = mcutil.TmpDir()
    try:
        d = mcutil.Daemon(tmp, "kc")
        with_pymemcache(d.port, rng)
        with_libmemcached(d.port, tmp.path, rng)
        d.stop()
    finally:
        tmp.close()
    print("ok")


if __name__ == "__main__":
    main()
