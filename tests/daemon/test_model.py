"""test_model: puts, overwrites and deletes through the memcache port and the
RPC against a model of what must be there, across SIGTERM and kill -9
restarts of the real daemon at random moments; every key is checked after
every restart.

After a clean stop every key holds exactly its last acknowledged state.
After kill -9 (also kill -9 during the SIGTERM flush) a key may hold its
state at the previous restart or any state acknowledged since, never an
older value ("stale"; a "resurrected delete" when a delete was undone), and
never be missing when no delete was acknowledged since the previous restart
("lost": that state was on the device). The store is large enough that
nothing is evicted (checked).

Short by default (CI); `test_model.py long` (or KC_MODEL_LONG=1) runs longer.
KC_TEST_SEED repeats a run; the counts are printed at the end."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "memcache"))
import mcutil  # noqa: E402

LONG = "long" in sys.argv[1:] or os.environ.get("KC_MODEL_LONG") == "1"
ROUNDS = 40 if LONG else 6
OPS = 1500 if LONG else 250
MC_KEYS = 400 if LONG else 120
RPC_KEYS = 100 if LONG else 30
SIZES = (100, 3000, 9000, 30000)
BLOCK = 4096


class Model:
    """Per key: the last acknowledged state, and the states a crash may leave
    (the one found at the previous restart, then each one acknowledged)."""

    def __init__(self, keys):
        self.cur = {k: None for k in keys}
        self.allowed = {k: [None] for k in keys}
        self.history = {k: [] for k in keys}   # every value ever acknowledged
        self.counts = dict(stale=0, resurrected=0, lost=0, lost_clean=0, wrong=0,
                           checked=0, crashes=0, clean=0, crash_in_flush=0)

    def ack(self, k, v):
        self.cur[k] = v
        self.allowed[k].append(v)
        if v is not None:
            self.history[k].append(v)

    def check(self, k, got, clean):
        c = self.counts
        c["checked"] += 1
        if clean:
            if got != self.cur[k]:
                if got is None:
                    c["lost_clean"] += 1
                elif got in self.history[k]:
                    c["stale"] += 1
                else:
                    c["wrong"] += 1
                print("after a clean stop: key %r holds %s, not %s" % (
                    k, desc(got), desc(self.cur[k])))
        elif got not in self.allowed[k]:
            if got is None:
                c["lost"] += 1
            elif got in self.history[k]:
                c["resurrected" if None in self.allowed[k][1:] or self.allowed[k][0] is None
                  else "stale"] += 1
            else:
                c["wrong"] += 1
            print("after kill -9: key %r holds %s, allowed: %s" % (
                k, desc(got), ", ".join(desc(a) for a in self.allowed[k])))
        self.cur[k] = got
        self.allowed[k] = [got]


def desc(v):
    return "nothing" if v is None else "%d bytes %r..." % (len(v), v[:24])


def mc_value(k, ver, size):
    head = b"%s:%d:" % (k, ver)
    return (head * (size // len(head) + 1))[:size]


class Rpc:
    """The RPC side, through the Python binding (absent under sanitizers)."""

    def __init__(self, tcp_port, keys):
        sys.path.insert(0, os.environ["KC_PY_PATH"])
        import kvcache
        self.kv = kvcache
        self.port = tcp_port
        self.keys = keys
        self.connect()

    def connect(self):
        self.c = self.kv.Client("tcp:127.0.0.1:%d" % self.port, timeout_ms=5000)
        self.ns = self.c.open_namespace(model="model-test", layer_end=1, tokens_per_block=4,
                                        dtype="bf16", kv_heads=1, head_dim=64,
                                        block_bytes=BLOCK)

    def key(self, k):
        return self.kv.Keys.from_bytes([(b"%015d" % k[1]) + b"r"])

    def put(self, k, v):
        return self.c.put(self.ns, self.key(k), [v]) == [0]

    def delete(self, k):
        self.c.delete(self.ns, self.key(k))

    def get(self, k):
        buf = bytearray(BLOCK)
        n = self.c.get(self.ns, self.key(k), [buf])
        return bytes(buf) if n == [BLOCK] else None

    def close(self):
        self.c.close()


def tcp_port_of(tmp, name):
    with open(os.path.join(tmp.path, name + ".port")) as f:
        return int(f.read().split()[0].split("=")[1])


def main():
    rng = mcutil.seeded()
    tmp = mcutil.TmpDir()
    try:
        d = mcutil.Daemon(tmp, "model", memory=16, size="512m" if LONG else "128m")
        rpc = None
        rpc_keys = []
        if os.environ.get("KVCACHE_LIB") and os.environ.get("KC_PY_PATH") and \
                not os.environ.get("KC_NO_BINDING"):
            rpc_keys = [("rpc", i) for i in range(RPC_KEYS)]
            rpc = Rpc(tcp_port_of(tmp, "model"), rpc_keys)
        else:
            print("RPC side skipped (no binding in this build): memcache only")
        mc_keys = [b"model-%d" % i for i in range(MC_KEYS)]
        m = Model(mc_keys + rpc_keys)
        ver = 0
        r = mcutil.Raw(d.port)
        for rnd in range(ROUNDS):
            for _ in range(OPS):
                ver += 1
                if rpc is not None and rng.random() < 0.3:
                    k = rng.choice(rpc_keys)
                    op = rng.random()
                    if op < 0.6:
                        v = mc_value(b"rpc%d" % k[1], ver, BLOCK)
                        if m.cur[k] is not None:
                            rpc.delete(k)          # an overwrite: delete, put
                            m.ack(k, None)
                        assert rpc.put(k, v), "rpc put refused"
                        m.ack(k, v)
                    elif op < 0.8:
                        rpc.delete(k)
                        m.ack(k, None)
                    else:
                        got = rpc.get(k)
                        assert got == m.cur[k], "rpc get of %r: %s, not %s" % (
                            k, desc(got), desc(m.cur[k]))
                    continue
                k = rng.choice(mc_keys)
                op = rng.random()
                if op < 0.6:
                    v = mc_value(k, ver, rng.choice(SIZES))
                    if m.cur[k] is not None:
                        m.ack(k, None)   # a set over a value: a delete, then a put
                    assert r.set(k, v) == b"STORED"
                    m.ack(k, v)
                elif op < 0.8:
                    r.send(b"delete %s\r\n" % k)
                    assert r.line() in (b"DELETED", b"NOT_FOUND")
                    m.ack(k, None)
                else:
                    got = r.get([k]).get(k)
                    assert got == m.cur[k], "get %r: %s, not %s" % (k, desc(got),
                                                                  desc(m.cur[k]))
            st = r.stats()
            assert int(st.get("kc_slab_evictions", "0")) == 0, "evictions: the model needs none"
            r.close()
            if rpc is not None:
                rpc.close()
            how = rng.choice(("clean", "kill", "kill_in_flush"))
            if how == "clean":
                d.stop()
                m.counts["clean"] += 1
            elif how == "kill":
                d.proc.kill()
                d.proc.wait()
                m.counts["crashes"] += 1
            else:
                d.proc.send_signal(signal.SIGTERM)
                time.sleep(rng.random() * 0.02)
                d.proc.kill()
                rc = d.proc.wait()
                how = "clean" if rc == 0 else "kill"   # it may have finished
                m.counts["clean" if rc == 0 else "crash_in_flush"] += 1
            d.start()
            r = mcutil.Raw(d.port)
            if rpc is not None:
                rpc.port = tcp_port_of(tmp, "model")
                rpc.connect()
            for k in mc_keys:
                m.check(k, r.get([k]).get(k), how == "clean")
            for k in rpc_keys:
                m.check(k, rpc.get(k), how == "clean")
            print("round %d (%s restart): %s" % (rnd, how, m.counts))
        r.close()
        if rpc is not None:
            rpc.close()
        d.stop()
        c = m.counts
        print("model: %d keys checked over %d clean stops, %d kill -9, %d kill -9 in the "
              "SIGTERM flush: %d stale, %d resurrected deletes, %d lost after a crash, "
              "%d lost on a clean stop, %d wrong" % (
                  c["checked"], c["clean"], c["crashes"], c["crash_in_flush"], c["stale"],
                  c["resurrected"], c["lost"], c["lost_clean"], c["wrong"]))
        assert c["stale"] == c["resurrected"] == c["lost"] == c["lost_clean"] == c["wrong"] == 0
    finally:
        tmp.close()


if __name__ == "__main__":
    main()
