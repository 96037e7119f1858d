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
    # cas, incr/decr, append/prepend, gat, flush_all (issue 17)
    value, cas = c.gets("k2")
    assert c.cas("k2", b"new", cas) is True
    assert c.cas("k2", b"newer", cas) is False
    assert c.get("k2") == b"new"
    assert c.set("n", b"10") and c.incr("n", 5) == 15 and c.decr("n", 20) == 0
    assert c.incr("nope", 1) is None
    assert c.append("k2", b"+") and c.prepend("k2", b"-") and c.get("k2") == b"-new+"
    assert c.touch("k2", 100) is True
    assert c.stats("settings")[b"item_size_max"] == 1 << 20
    sl = c.stats("slabs")   # one class, the store's totals (docs/pool.md)
    assert int(sl[b"1:chunk_size"]) == 64 and int(sl[b"1:total_pages"]) >= 1, sl
    assert c.flush_all() and c.get("k2") is None
    c.close()
    print("pymemcache: ok")


def issue17_pymemcache_pickle_serde(port):
    """pymemcache's default client (noreply on, pickle serde with client
    flags) round-trips ints, strings, dicts and bytes; nothing it sends
    answers out of step."""
    from pymemcache.client.base import Client as C
    from pymemcache.serde import pickle_serde
    c = C(("127.0.0.1", port), serde=pickle_serde, connect_timeout=5, timeout=5)
    vals = {"i": 5, "s": "text \u00e9", "d": {"a": [1, 2], "b": None}, "b": b"\x00\xff"}
    for k, v in vals.items():
        assert c.set(k, v) is True
    for k, v in vals.items():
        got = c.get(k)
        assert got == v and type(got) is type(v), (k, got)
    assert c.get_many(list(vals)) == vals
    c.set("e", 1, expire=-1)
    assert c.get("e") is None
    c.close()
    print("pymemcache pickle serde: ok")


def issue17_memccapable(port):
    """libmemcached's conformance tests, the text protocol: all pass."""
    if shutil.which("memccapable") is None:
        print("memccapable: not installed, skipped")
        return
    p = subprocess.run(["memccapable", "-a", "-h", "127.0.0.1", "-p", str(port)],
                       capture_output=True, timeout=120)
    out = p.stdout.decode() + p.stderr.decode()
    assert p.returncode == 0 and "All tests passed" in out, out
    assert out.count("[pass]") == 27, out
    print("memccapable -a: 27 of 27 pass")


def issue17_memcaslap_keys(port):
    """memcaslap's keys carry control bytes: its default workload for 2 s
    gets no error at all (it got 336,501 CLIENT_ERRORs before)."""
    if shutil.which("memcaslap") is None:
        print("memcaslap: not installed, skipped")
        return
    p = subprocess.run(["memcaslap", "-s", "127.0.0.1:%d" % port, "-t", "2s"],
                       capture_output=True, timeout=60)
    out = p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")
    bad = [l for l in out.splitlines() if "ERROR" in l.upper() or "fail" in l]
    assert not bad, bad[:5]
    gets = int(out.split("cmd_get: ")[1].split()[0])
    assert gets > 0, out
    print("memcaslap: %d gets, no errors" % gets)


def issue17_quit_closes(port):
    """quit closes at once: short-lived clients do not use up --conns 4."""
    srv = "--servers=127.0.0.1:%d" % port
    for i in range(12):
        p = subprocess.run(["memcexist", srv, "nope"], capture_output=True, timeout=10)
        assert b"refused" not in p.stderr and b"CONNECTION" not in p.stderr.upper(), p.stderr
    p = subprocess.run(["memcstat", srv], capture_output=True, timeout=10)
    assert p.returncode == 0 and b"curr_connections" in p.stdout, p
    print("quit: 12 short clients within --conns 4")


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
        issue17_pymemcache_pickle_serde(d.port)
        issue17_memccapable(d.port)
        issue17_memcaslap_keys(d.port)
        d.stop()
        d2 = mcutil.Daemon(tmp, "kc2", extra=["--conns", "4"])
        issue17_quit_closes(d2.port)
        d2.stop()
    finally:
        tmp.close()
    print("ok")


if __name__ == "__main__":
    main()
