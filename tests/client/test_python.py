"""test_python: the kvcache Python binding against a real kvcached: key test
vectors, the round trip with bytes / bytearray / memoryview / numpy buffers,
torch tensors (bf16, pinned where CUDA is, slices of one staging tensor;
CUDA tensors where CUDA is), references into the daemon's shared region
(where the library has them), every call, a frozen daemon (miss within the timeout, no exception), and how
the library is found (KVCACHE_LIB, the loader's path, the build tree).
Needs $KC_TEST_DAEMON (else skipped, exit 77) and $KVCACHE_LIB."""
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import kvcache

try:
    import numpy as np
except ImportError:  # Debian's python3-numpy; without it those checks skip
    np = None
try:
    import torch
except ImportError:  # Debian's python3-torch; without it those checks skip
    torch = None

BLOCK = 8192
TPB = 16


def start_daemon(tmp, idx):
    sock = os.path.join(tmp, "p%d.sock" % idx)
    portfile = os.path.join(tmp, "p%d.port" % idx)
    log = open(os.path.join(tmp, "p%d.log" % idx), "w")
    p = subprocess.Popen([os.environ["KC_TEST_DAEMON"], "-s", sock, "-p", "0", "--no-auth",
                          "--port-file", portfile, "-D", os.path.join(tmp, "p%d.store" % idx),
                          "-S", "64m", "-m", "8", "--slab-size", "1m",
                          "--min-item-size", "4k", "--fresh"], stdout=log, stderr=log)
    for _ in range(1000):
        if os.path.exists(portfile) and os.path.exists(sock):
            return p, "unix:" + sock
        if p.poll() is not None:
            raise SystemExit("daemon exited at start")
        time.sleep(0.01)
    raise SystemExit("daemon not ready")


def check_vectors():
    k = kvcache.keys(0, list(range(9)), 4)
    assert len(k) == 2
    assert k.pairs()[0] == (0x817e878ac4a63c74, 0x3a9ee9fce3abb747)
    assert k.pairs()[1] == (0x8a9cd36ceaad6c98, 0x7d632ffc95e37038)
    assert k[0] == bytes.fromhex("743ca6c48a877e8147b7abe3fce99e3a")
    k2 = kvcache.keys(0x0123456789abcdef, [100000, 7, 4294967295], 3)
    assert k2.pairs()[0] == (0xd23769ec822f574d, 0x644086fdf0f46ce5)
    # Continuation and numpy tokens give the same keys.
    assert kvcache.Keys.from_bytes([k[0], k[1]]).pairs() == k.pairs()
    tail = kvcache.keys(0, list(range(4, 8)), 4, prev=k[:1])
    assert tail[0] == k[1]
    if np is not None:
        kn = kvcache.keys(0, np.arange(9, dtype=np.uint32), 4)
        assert kn.pairs() == k.pairs()
    assert kvcache.ns_id("llama-3-8b", 0, 32, 16, "bf16", 8, 128, 262144) == 0x9ee1d1d3ce74f7a0


def round_trip(c, rng):
    ns = c.open_namespace(model="py", layer_end=2, tokens_per_block=TPB, dtype="bf16",
                          kv_heads=1, head_dim=64, block_bytes=BLOCK)
    assert c.last_rc == 0, c.last_error
    tokens = [rng.getrandbits(32) for _ in range(12 * TPB)]
    keys = kvcache.keys(ns, tokens, TPB)
    assert len(keys) == 12
    blocks = [rng.randbytes(BLOCK) for _ in range(12)]
    assert c.match(ns, keys) == 0
    # bytes for the first 4, one contiguous bytearray for the next 4,
    # memoryviews for the last 4.
    assert c.exists(ns, keys) == [False] * 12
    assert c.put(ns, keys[:4], blocks[:4]) == [kvcache.PUT_STORED] * 4
    assert c.exists(ns, keys) == [True] * 4 + [False] * 8
    assert c.put(ns, keys[4:8], bytearray(b"".join(blocks[4:8])), first_pos=4) == [0] * 4
    assert c.put(ns, keys[8:], [memoryview(b) for b in blocks[8:]], first_pos=8) == [0] * 4
    assert c.put(ns, keys[:1], blocks[:1]) == [kvcache.PUT_EXISTS]
    assert c.match(ns, keys) == 12
    # Just put: every block has its DRAM copy in the daemon.
    assert c.match(ns, keys, where=True) == (12, ["dram"] * 12)
    # Into bytearrays, into one memoryview, into a numpy array.
    outs = [bytearray(BLOCK) for _ in range(12)]
    assert c.get_prefix(ns, keys, outs) == 12
    assert [bytes(o) for o in outs] == blocks
    big = memoryview(bytearray(12 * BLOCK))
    assert c.get_prefix(ns, keys, big) == 12
    assert big.tobytes() == b"".join(blocks)
    if np is not None:
        arr = np.zeros((12, BLOCK), dtype=np.uint8)
        assert c.get_prefix(ns, keys, arr) == 12
        assert arr.tobytes() == b"".join(blocks)
        rows = [arr[i] for i in range(12)]
        for r in rows:
            r[:] = 0
        assert c.get_prefix(ns, keys, rows) == 12 and arr.tobytes() == b"".join(blocks)
        # numpy source buffers for a put
        extra = kvcache.keys(ns, [rng.getrandbits(32) for _ in range(TPB)], TPB, prev=keys)
        src = np.frombuffer(rng.randbytes(BLOCK), dtype=np.uint8)
        assert c.put(ns, extra, [src], first_pos=12) == [0]
        back = np.zeros(BLOCK, dtype=np.uint8)
        assert c.get(ns, extra, [back]) == [BLOCK] and (back == src).all()
    # get with a miss, delete, prefix stops at the hole.
    other = kvcache.keys(ns, [rng.getrandbits(32) for _ in range(TPB)], TPB)
    mixed = keys[2:3] + other
    outs2 = [bytearray(BLOCK), bytearray(BLOCK)]
    assert c.get(ns, mixed, outs2) == [BLOCK, 0]
    assert bytes(outs2[0]) == blocks[2]
    assert c.delete(ns, keys[5:6]) == 1
    assert c.get_prefix(ns, keys, outs) == 5
    # async put refills the hole.
    assert c.put_async(ns, keys[5:6], blocks[5:6], first_pos=5)
    assert c.flush(2000)
    assert c.get_prefix(ns, keys, outs) == 12 and bytes(outs[5]) == blocks[5]
    st = c.stats(0)
    assert st["items"] >= 12 and st["hits"] > 0, st
    assert c.health(0) == (0, ""), c.health(0)
    cs = c.client_stats()
    assert cs["async_done"] == 1, cs
    # Bad arguments raise; a read-only output buffer is refused.
    try:
        c.get_prefix(ns, keys, [b"x" * BLOCK] * 12)
        raise AssertionError("read-only buffer accepted")
    except BufferError:
        pass
    try:
        c.get_prefix(ns, keys, [bytearray(BLOCK - 1)] * 12)
        raise AssertionError("short buffer accepted")
    except ValueError:
        pass
    return ns, keys


def tensors(c, rng):
    """Torch tensors as buffers, in place: a bf16 staging tensor read into
    slice by slice (what the engine does), tokens as an int32 tensor, put and
    put_async from tensors, error codes by name; where CUDA is, get_prefix
    into and put from CUDA tensors."""
    if torch is None:
        print("torch absent: tensor checks skipped")
        return
    ns = c.open_namespace(model="py-tensor", layer_end=1, tokens_per_block=TPB, dtype="bf16",
                          kv_heads=1, head_dim=64, block_bytes=BLOCK)
    tokens = [rng.randrange(1, 1 << 31) for _ in range(6 * TPB)]
    keys = kvcache.keys(ns, tokens, TPB)
    tk = kvcache.keys(ns, torch.tensor(tokens, dtype=torch.int32), TPB)
    assert tk.pairs() == keys.pairs()
    # bf16 blocks of [T, 2, 128]: BLOCK bytes each (numpy has no bf16).
    src = torch.randn(6, TPB, 2, 128).to(torch.bfloat16)
    assert src[0].numel() * src.element_size() == BLOCK
    assert c.put(ns, keys[:3], [src[i] for i in range(3)]) == [0] * 3
    assert c.put_async(ns, keys[3:], src[3:], first_pos=3)
    assert c.flush(2000) and c.last_rc == kvcache.OK
    pin = torch.cuda.is_available()
    st = torch.zeros(8, TPB, 2, 128, dtype=torch.bfloat16, pin_memory=pin)
    got = 0
    while got < 6:   # chunks of 4 blocks, into slices of one staging tensor
        n = min(4, 6 - got)
        f = c.get_prefix(ns, keys[got:got + n], st[got:got + n])
        assert f == n, (f, c.last_error)
        got += f
    assert torch.equal(st[:6], src) and not st[6:].any()
    assert c.match(ns, keys) == 6
    assert c.delete(ns, keys[2:3]) == 1
    rows = [st[i] for i in range(6)]
    assert c.get_prefix(ns, keys, rows) == 2
    assert c.get(ns, keys, rows) == [BLOCK, BLOCK, 0, BLOCK, BLOCK, BLOCK]
    for bad, err in ((st[:6, :, 0], ValueError),               # not contiguous
                     (st[:5], ValueError)):                      # 5 blocks for 6 keys
        try:
            c.get_prefix(ns, keys, bad)
            raise AssertionError("bad tensor accepted")
        except err:
            pass
    if torch.cuda.is_available():   # CUDA tensors: by reference, or through pinned memory
        dev = torch.zeros(6, TPB, 2, 128, dtype=torch.bfloat16, device="cuda")
        assert c.get_prefix(ns, keys, dev, stream=torch.cuda.Stream()) == 2
        assert torch.equal(dev[:2].cpu(), src[:2]) and not dev[2:].any()
        assert c.put(ns, keys[2:3], src[2:3].cuda(), first_pos=2) == [0]
        assert c.get_prefix(ns, keys, dev) == 6 and torch.equal(dev.cpu(), src)
    # A namespace this handle never opened: the error by name, no exception.
    assert c.get_prefix(99, keys, st, block_bytes=BLOCK) == 0
    assert c.last_rc == kvcache.ENONS, c.last_rc
    assert kvcache.strerror(kvcache.EFULL) and kvcache.EFULL == -30008


def refs(c, rng):
    """Zero-copy gets (where the library has them): references into the
    daemon's shared region read the blocks that were put, in place, and go
    back with release_refs; a miss gives no reference."""
    if not kvcache.HAVE_REFS:
        print("library without kvcache_get_prefix_refs: reference checks skipped")
        return
    ns = c.open_namespace(model="py-refs", layer_end=1, tokens_per_block=TPB, dtype="bf16",
                          kv_heads=1, head_dim=64, block_bytes=BLOCK)
    keys = kvcache.keys(ns, [rng.getrandbits(32) for _ in range(5 * TPB)], TPB)
    blocks = [rng.randbytes(BLOCK) for _ in range(5)]
    assert c.put(ns, keys[:4], blocks[:4]) == [0] * 4
    region = c.shm_region(0)
    r = c.get_prefix_refs(ns, keys)
    try:
        assert len(r) == 4, (len(r), c.last_error)
        for i in range(4):
            addr, n, shared = r[i]
            assert n == BLOCK and r.view(i).tobytes() == blocks[i]
            if region is not None:   # the daemon offers its region: the bytes lie there
                assert shared and region[0] <= addr and addr + n <= region[0] + region[1]
    finally:
        assert c.release_refs(r) and len(r) == 0
    miss = c.get_prefix_refs(ns, keys[4:])
    assert len(miss) == 0 and c.release_refs(miss)
    # What get_prefix and put do for CUDA tensors, with memmove for the GPU's
    # copies: by reference into the caller's memory, and reserve-copy-commit
    # through the staging area.
    import ctypes
    mover = kvcache._HostMover()
    dst = bytearray(5 * BLOCK)
    base = ctypes.addressof((ctypes.c_char * len(dst)).from_buffer(dst))
    assert c._get_prefix_by_ref(ns, keys, [base + i * BLOCK for i in range(5)], BLOCK, mover) == 4
    assert bytes(dst[:4 * BLOCK]) == b"".join(blocks[:4]) and not any(dst[4 * BLOCK:])
    assert 1 <= mover.runs <= 4
    src = bytearray(blocks[4])
    addr = ctypes.addressof((ctypes.c_char * BLOCK).from_buffer(src))
    assert c._put_by_ref(ns, keys[4:], [addr], 4, BLOCK, mover) == [kvcache.PUT_STORED]
    src[:] = bytes(BLOCK)    # changing the source after the commit changes nothing stored
    out = [bytearray(BLOCK) for _ in range(5)]
    assert c.get_prefix(ns, keys, out) == 5 and bytes(out[4]) == blocks[4]
    print("references: region %s" % ("%d MiB" % (region[1] >> 20) if region else
                                      "none (%s)" % kvcache.strerror(c.last_rc)))


def library_lookup():
    """Without KVCACHE_LIB the binding loads the loader's libkvcache.so.0
    (LD_LIBRARY_PATH), else the checkout's build tree; a bad KVCACHE_LIB
    fails the import."""
    libdir = os.path.dirname(os.path.abspath(os.environ["KVCACHE_LIB"]))
    here = os.path.dirname(os.path.abspath(kvcache.__file__))
    code = "import kvcache; print(kvcache.library_path)"
    env = dict(os.environ, PYTHONPATH=os.path.dirname(here))
    env.pop("KVCACHE_LIB")
    env["LD_LIBRARY_PATH"] = libdir
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "libkvcache.so.0", out
    env.pop("LD_LIBRARY_PATH")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    # The build tree of this checkout when it is called build/ or build-release/.
    if os.path.basename(os.path.dirname(libdir)) in ("build", "build-release"):
        assert out.returncode == 0 and out.stdout.strip().endswith("/client/libkvcache.so.0"), out
    # The build tree's copy of the module (BUILD/client/python, wherever BUILD
    # is) loads that build's library through its generated _libpath.py.
    pybuild = os.environ.get("KC_PY_BUILD")
    if pybuild:
        benv = dict(env, PYTHONPATH=pybuild)
        out = subprocess.run([sys.executable, "-c", code], env=benv, capture_output=True,
                             text=True)
        assert out.returncode == 0, out
        assert os.path.realpath(out.stdout.strip()) == \
            os.path.realpath(os.environ["KVCACHE_LIB"]), out
    env["KVCACHE_LIB"] = "/nonexistent/libkvcache.so.0"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "OSError" in out.stderr, out


def frozen(proc, uri, ns, keys):
    c = kvcache.Client(uri, timeout_ms=200, retry_ms=300)
    c.block_bytes[ns] = BLOCK
    outs = [bytearray(BLOCK) for _ in range(len(keys))]
    assert c.get_prefix(ns, keys, outs) == len(keys)
    proc.send_signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        found = c.get_prefix(ns, keys, outs)
        dt = time.monotonic() - t0
        print("frozen daemon: found %d in %.0f ms, %s (%s)" %
              (found, dt * 1000, kvcache.strerror(c.last_rc), c.last_error))
        assert found == 0 and c.last_rc == -30003 and dt < 0.4
    finally:
        proc.send_signal(signal.SIGCONT)
    time.sleep(0.35)
    assert c.get_prefix(ns, keys, outs) == len(keys)
    c.close()


def main():
    if not os.environ.get("KC_TEST_DAEMON") or not os.access(os.environ["KC_TEST_DAEMON"], os.X_OK):
        print("no daemon binary (KC_TEST_DAEMON): skipped")
        return 77
    seed = int(os.environ.get("KC_TEST_SEED", time.time()))
    print("seed %d (KC_TEST_SEED to repeat); numpy %s" % (seed, np.__version__ if np else "absent"))
    rng = random.Random(seed)
    check_vectors()
    tmp = tempfile.mkdtemp(prefix="kc-py-")
    procs = []
    try:
        p, uri = start_daemon(tmp, 0)
        procs.append(p)
        with kvcache.Client(uri) as c:
            ns, keys = round_trip(c, rng)
            tensors(c, rng)
            refs(c, rng)
        library_lookup()
        frozen(p, uri, ns, keys)
        # Two daemons behind one client: the same round trip.
        p2, uri2 = start_daemon(tmp, 1)
        procs.append(p2)
        with kvcache.Client(uri + "," + uri2) as c:
            assert c.server_count() == 2
            round_trip(c, rng)
            owners = {c.server_of(k) for k in (keys[i] for i in range(len(keys)))}
            assert owners <= {0, 1}
    finally:
        for p in procs:
            p.send_signal(signal.SIGCONT)
            p.kill()
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    print("python: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
