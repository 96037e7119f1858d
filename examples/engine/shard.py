"""shard.py - one pipeline stage: a layer range, its KV, its link to kvcached.

A Shard holds layers [layer_begin, layer_end) of the model (plus the
embedding on the first stage, the final norm and head on the last), a KV
cache for its layers, and a CacheLink that moves the KV of full token blocks
between the shard and kvcached.

Namespaces and blocks.  The shard's layers are cut into groups of
`layers_per_ns` layers; each group is one kvcached namespace (model name,
its layer range, tokens per block, dtype, KV heads, head dim, block bytes).
Block i of a group holds K and V of the group's layers for tokens
[i*T, (i+1)*T), laid out [layer][K|V][token][kv head][head dim], and its key
is the client library's prefix-chain key of the tokens in the group's
namespace.  With one group per shard a block is the whole shard's KV of T
tokens; with smaller groups the load of group g+1 overlaps the prefill of
group g (layer-by-layer overlap), at the cost of more, smaller blocks.

A turn on a shard: prepare() computes keys and asks kvcached how many
leading blocks every group has (Match, no data); the stages agree on the
shorter answer p; load(p) starts a loader thread that fetches the groups in
order (GetPrefix straight into staging buffers, pinned on a GPU) and copies
each into the KV; run() computes the shard's layers for the positions past
the prefix, waiting for each group's load just before its first layer.  A
group that comes back shorter than p (a block evicted or damaged since the
Match: the daemon turns a bad checksum into a miss) makes run() return the
shorter prefix, and the caller computes again from there: a bad block only
shortens the reused prefix.  After the turn, put() gathers the new full
blocks and queues them with the asynchronous put.

kvcached is reached through the client library's Python binding
(client/python/kvcache, ctypes; the library through $KVCACHE_LIB, the
loader's path or the build tree).  A failed call is a miss, never an
exception: its code is in the handle's last_rc.
"""
import os
import sys
import threading
import time

import numpy as np
import torch

_BINDING = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                         "..", "..", "client", "python"))
if _BINDING not in sys.path:
    sys.path.insert(0, _BINDING)   # this checkout's binding, ahead of an installed one
import kvcache  # noqa: E402
import kvfp8  # noqa: E402
import model as M  # noqa: E402


# The loader thread and the compute share the interpreter: each of the
# loader's library calls gives up the GIL and must get it back from a thread
# that is launching kernels, which by default yields it only every 5 ms.  A
# shorter interval keeps a load that runs beside a prefill (load-or-compute,
# the layer-group overlap) from waiting on the interpreter.
SWITCH_INTERVAL_S = 0.0002
# GetPrefix calls a stage keeps in flight during a load (KC_ENGINE_FETCHERS,
# or the link's `fetchers`): with one, the device idles while a chunk's bytes
# are copied and the next call is made; with two, one is always waiting.
# On the shared-memory path a get copies nothing on the CPU, and each
# fetcher's handle maps and registers the region with CUDA after every
# daemon restart (H200: 1.1 s for two, 48 restarts a gpu_bench): one there.
FETCHERS = 2
FETCHERS_SHM = 1


class _Load:
    """One load's shared state, under cond: the chunks (group, offset,
    blocks) in the order they are fetched, the next to take, the shortest
    answer so far (limit: no chunk from there on is fetched), each chunk's
    (blocks got, CUDA events) by (group, index), the spans of the GetPrefix
    calls, their total time, the first error."""

    def __init__(self, chunks, limit):
        self.cond = threading.Condition()
        self.chunks, self.next, self.limit = chunks, 0, limit
        self.got, self.spans, self.fetch_s, self.error = {}, [], 0.0, None


def _idle(spans, t0, t1):
    """Seconds of [t0, t1) with no call of spans [(start, end)] in flight."""
    busy, end = 0.0, t0
    for a, b in sorted(spans):
        a = max(a, end)
        if b > a:
            busy, end = busy + b - a, b
    return max(0.0, (t1 - t0) - busy)


class CacheLink:
    """A shard's namespaces on kvcached, its staging buffers and its loader."""

    def __init__(self, cfg, layer_begin, layer_end, servers, tokens_per_block, layers_per_ns,
                 device, timeout_ms=5000, chunk_blocks=64, async_max_bytes=1 << 30, ns_model=None,
                 prealloc_blocks=0, kv_formats=("native",), fetchers=None):
        self.cfg, self.T, self.device = cfg, tokens_per_block, device
        self.chunk = chunk_blocks
        # GetPrefix calls in flight at once, each on its own handle and thread
        shm = str(device).startswith("cuda") and kvcache.HAVE_REFS and \
            os.environ.get("KC_ENGINE_SHM", "1") != "0"      # the shared-memory path tried
        self.nfetch = max(1, int(fetchers or os.environ.get("KC_ENGINE_FETCHERS",
                                                            FETCHERS_SHM if shm else FETCHERS)))
        self.stage_lock = threading.Lock()
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
        g = layers_per_ns if layers_per_ns > 0 else layer_end - layer_begin
        self.groups = [(a, min(a + g, layer_end)) for a in range(layer_begin, layer_end, g)]
        self.esize = torch.tensor([], dtype=cfg.torch_dtype).element_size()
        self.tok_layer_bytes = cfg.kv_bytes_per_token_layer()
        self.servers, self.timeout_ms, self.async_max_bytes = servers, timeout_ms, async_max_bytes
        self.descs = []
        self._connect()
        # per format ("native": the model's dtype; "fp8": kvfp8's layout),
        # the namespaces and block sizes of the groups; the descriptor's
        # dtype tells them apart, so the formats never share a block
        self.formats = {}
        for fmt in kv_formats:
            nss, bbs = [], []
            for a, b in self.groups:
                if fmt == "fp8":
                    bb, dt = kvfp8.block_bytes(b - a, tokens_per_block, cfg.n_kv_heads,
                                               cfg.head_dim), kvfp8.DTYPE
                else:
                    bb, dt = (b - a) * tokens_per_block * self.tok_layer_bytes, cfg.dtype
                desc = dict(model=ns_model or cfg.name, layer_begin=a, layer_end=b,
                            tokens_per_block=tokens_per_block, dtype=dt,
                            kv_heads=cfg.n_kv_heads, head_dim=cfg.head_dim, block_bytes=bb)
                self.descs.append(desc)
                ns = self.client.open_namespace(**desc)
                for c in self.lclients:
                    c.open_namespace(**desc)
                if self.client.last_rc < 0:
                    print("kvcached: open namespace %d-%d: %s (%s); running without the cache"
                          % (a, b, kvcache.strerror(self.client.last_rc), self.client.last_error),
                          flush=True)
                nss.append(ns)
                bbs.append(bb)
            self.formats[fmt] = (nss, bbs)
        self.select(kv_formats[0])
        self.staging = [None] * len(self.groups)   # bytes, viewed per format
        self.dev_staging = [None] * len(self.groups)
        self.pin = str(device).startswith("cuda")
        # one CUDA stream per fetcher: its copies and its scatter into the KV
        self.streams = [torch.cuda.Stream(device=device) if self.pin else None
                        for _ in range(self.nfetch)]
        self.keys = None
        self.thread = None
        self.last = {}
        # the shared-memory path (a local daemon that offers its region):
        # gets by reference straight into GPU staging, puts from GPU memory
        # through the staging area; KC_ENGINE_SHM=0 turns it off
        shm = self.pin and kvcache.HAVE_REFS and os.environ.get("KC_ENGINE_SHM", "1") != "0"
        self.shm_get = bool(shm and self.lclient.shm_region(0) is not None)
        self.shm_put = bool(shm and self.client.shm_staging(0) is not None)
        self.ping()   # registers the region and staging area with CUDA now
        for gi in range(len(self.groups)):  # pinned memory is slow to allocate: do it now
            if prealloc_blocks:
                self.stage(gi, prealloc_blocks)
                if self.shm_get:
                    self.stage(gi, prealloc_blocks, on_device=True)

    def _connect(self):
        """The handles: the main thread's (match, put, flush) and one per
        fetcher (get_prefix); a handle is one thread's.  Namespaces already
        known are opened on them."""
        self.client = kvcache.Client(self.servers, timeout_ms=self.timeout_ms,
                                     async_max_bytes=self.async_max_bytes)
        self.lclients = [kvcache.Client(self.servers, timeout_ms=self.timeout_ms)
                         for _ in range(self.nfetch)]
        self.lclient = self.lclients[0]
        for d in self.descs:
            for c in [self.client] + self.lclients:
                c.open_namespace(**d)

    def block_shape(self, gi):
        """Shape of one block of group gi, as a tensor."""
        a, b = self.groups[gi]
        return (b - a, 2, self.T, self.cfg.n_kv_heads, self.cfg.head_dim)

    def select(self, fmt):
        """Use the namespaces of KV format fmt ("native" or "fp8") from now on."""
        if fmt not in self.formats:
            raise ValueError("KV format %r not opened (kv_formats)" % fmt)
        self.fmt = fmt
        self.ns, self.block_bytes = self.formats[fmt]

    def stage(self, gi, nblocks, on_device=False):
        """Staging buffer of group gi for at least nblocks blocks of the
        current format: [n, *block_shape] in the model's dtype, or [n, bytes]
        uint8 for fp8.  One byte buffer per group (as large as a native
        block) serves every format: in host memory (pinned on a GPU), or on
        the GPU for the shared-memory path (on_device)."""
        size = (self.groups[gi][1] - self.groups[gi][0]) * self.T * self.tok_layer_bytes
        bufs = self.dev_staging if on_device else self.staging
        with self.stage_lock:    # fetchers share it: one allocation, never two
            st = bufs[gi]
            if st is None or st.shape[0] < nblocks * size:
                n = max(nblocks, 2 * st.shape[0] // size if st is not None else 0)
                if on_device:
                    st = torch.empty(n * size, dtype=torch.uint8, device=self.device)
                else:
                    st = torch.empty(n * size, dtype=torch.uint8, pin_memory=self.pin)
                bufs[gi] = st
        n = st.shape[0] // size
        if self.fmt == "fp8":
            bb = self.block_bytes[gi]
            return st[:n * bb].view(n, bb)
        return st.view(self.cfg.torch_dtype).view((n,) + self.block_shape(gi))

    def prepare(self, tokens, fmt="native"):
        """Keys of tokens' full blocks in every namespace of KV format fmt;
        returns the number of leading blocks that every group has (Match).
        last["dram_blocks"]: how many of them every group has in the
        daemon's DRAM (Match's where: the rest are SSD reads)."""
        self.select(fmt)
        toks = np.asarray(tokens, dtype=np.uint32)   # read in place by kvcache_keys
        self.keys = [kvcache.keys(ns, toks, self.T) for ns in self.ns]
        m = d = None
        for gi, ks in enumerate(self.keys):
            got, where = self.client.match(self.ns[gi], ks, where=True)
            if self.client.last_rc < 0:
                self.last["match_error"] = self._error(self.client)
            dram = next((i for i, w in enumerate(where) if w != "dram"), len(where))
            m = got if m is None else min(m, got)
            d = dram if d is None else min(d, dram)
        self.last["dram_blocks"] = d or 0
        return m or 0

    def load(self, kv, p, first=0):
        """Start fetching blocks [first, p) of every group into kv (a thread);
        blocks [0, first) are the caller's to compute (load-or-compute).
        Afterwards loaded[gi] counts the blocks from 0 that group gi holds,
        the computed ones included: first + what came back."""
        self.loaded = [None] * len(self.groups)
        self.events = [threading.Event() for _ in self.groups]
        self.cuda_events = [[] for _ in self.groups]
        self.last.update(load_bytes=0, fetch_s=0.0, load_s=0.0, idle_s=0.0, chunks=0,
                         load_blocks=max(p - first, 0), head_blocks=first, fetchers=self.nfetch)
        if p - first <= 0:
            for gi in range(len(self.groups)):
                self.loaded[gi] = max(first, 0) if p > 0 else 0
                self.events[gi].set()
            return
        self.thread = threading.Thread(target=self._load_thread, args=(kv, p, first), daemon=True)
        self.t_load0 = time.perf_counter()
        self.thread.start()

    def _load_thread(self, kv, p, first):
        """Loader: the chunks of blocks [first, p) of every group, group after
        group, go to nfetch fetcher threads that take them in order, so that
        a GetPrefix is always in flight while another chunk's bytes are
        copied; each group is announced (events) once all its chunks are in
        the KV, with the blocks from 0 it holds (a short chunk ends it)."""
        total = p - first
        per = (total + self.chunk - 1) // self.chunk
        ld = _Load([(gi, off, min(self.chunk, total - off)) for gi in range(len(self.groups))
                    for off in range(0, total, self.chunk)], total)
        for gi in range(len(self.groups)):   # staging before the fetchers share it
            self.stage(gi, total, on_device=self.shm_get)
        ths = [threading.Thread(target=self._fetcher, args=(i, kv, first, total, ld), daemon=True)
               for i in range(min(self.nfetch, len(ld.chunks)))]
        for t in ths:
            t.start()
        for gi in range(len(self.groups)):
            with ld.cond:
                while any(ld.got.get((gi, j)) is None for j in range(per)):
                    ld.cond.wait()
            got = 0
            for j in range(per):          # the blocks from the start, up to a short chunk
                g, evs = ld.got[(gi, j)]
                self.cuda_events[gi] += evs
                got += g
                if g < min(self.chunk, total - j * self.chunk):
                    break
            self.loaded[gi] = first + got
            self.events[gi].set()
        for t in ths:
            t.join()
        for s in self.streams:
            if s is not None:
                s.synchronize()
        t1 = time.perf_counter()
        self.last.update(load_s=t1 - self.t_load0, fetch_s=ld.fetch_s, chunks=len(ld.spans),
                         idle_s=_idle(ld.spans, self.t_load0, t1))
        if ld.error:
            self.last["load_error"] = ld.error

    def _fetcher(self, i, kv, first, total, ld):
        """Fetcher i: take the next chunk (gi, off, n), GetPrefix it on handle
        i into the group's staging, scatter what came into the KV slots of
        blocks [first + off, ...) on stream i; chunks past the shortest
        answer so far are skipped (a prefix ends at its first missing block)."""
        while True:
            with ld.cond:
                if ld.next >= len(ld.chunks):
                    return
                gi, off, n = ld.chunks[ld.next]
                ld.next += 1
                skip = off >= ld.limit
            got, evs = 0, []
            if not skip:
                t0 = time.perf_counter()
                try:
                    st, got, dev = self._fetch(i, gi, first, off, n, total)
                    t1 = time.perf_counter()
                    if got:
                        evs = self._to_kv(kv, gi, st[off:off + got], got, first + off, dev,
                                          self.streams[i])
                except Exception as e:  # a loader failure is a miss, never a crash
                    t1, got, ld.error = time.perf_counter(), 0, repr(e)
            with ld.cond:
                if not skip:
                    ld.spans.append((t0, t1))
                    ld.fetch_s += t1 - t0
                    self.last["load_bytes"] += got * self.block_bytes[gi]
                if got < n:
                    ld.limit = min(ld.limit, off + got)
                ld.got[(gi, off // self.chunk)] = (got, evs)
                ld.cond.notify_all()

    def _fetch(self, i, gi, first, off, n, total):
        """GetPrefix of blocks [first + off, + n) of group gi on handle
        i; returns (staging, blocks got, on the device?).  With the
        shared-memory path the blocks go from kvcached's region straight into
        a staging tensor on the GPU (the binding's cudaMemcpyAsync on stream
        i); otherwise into pinned host staging.  A failure of the
        shared-memory path turns it off for good (shm_error) and the chunk is
        fetched again through the socket."""
        c = self.lclients[i]
        ks = self.keys[gi][first + off:first + off + n]
        bb = self.block_bytes[gi]
        dev = self.shm_get
        while True:
            st = self.stage(gi, total, on_device=dev)
            try:
                got = c.get_prefix(self.ns[gi], ks, st[off:off + n], bb,
                                   **({"stream": self.streams[i]} if dev else {}))
            except Exception as e:
                if not dev:
                    raise
                self.shm_get = dev = False
                self.last["shm_error"] = repr(e)
                continue
            if c.last_rc < 0:
                self.last["load_error"] = self._error(c)
            self.last["path"] = "shm" if dev else "socket"
            return st, got, dev

    def _to_kv(self, kv, gi, st, nb, first, on_device, stream):
        """Copy nb staged blocks of group gi into the KV slots of blocks
        [first, first + nb) (on `stream` on a GPU); the CUDA events to wait
        for ([] on the CPU, where the copy is done on return)."""
        a, b = self.groups[gi]
        if not self.pin:
            self._scatter(kv, a, b, self._unpack(gi, st[:nb]), nb, first)
            return []
        with torch.cuda.stream(stream):
            src = st[:nb] if on_device else st[:nb].to(self.device, non_blocking=True)
            self._scatter(kv, a, b, self._unpack(gi, src), nb, first)
            ev = torch.cuda.Event()
            ev.record(stream)
        return [ev]

    def _unpack(self, gi, blocks):
        """Blocks of group gi as [n, *block_shape] in the model's dtype."""
        if self.fmt != "fp8":
            return blocks
        a, b = self.groups[gi]
        return kvfp8.unpack(blocks, b - a, self.T, self.cfg.n_kv_heads, self.cfg.head_dim,
                            self.cfg.torch_dtype)

    def _scatter(self, kv, a, b, src, nb, first=0):
        """Blocks src [nb, layers, K|V, T, kvh, hd] into the KV of layers
        [a, b) at the slots of blocks [first, first + nb)."""
        T, kvh, hd = self.T, self.cfg.n_kv_heads, self.cfg.head_dim
        s0, s1 = first * T, (first + nb) * T
        for li, l in enumerate(range(a, b)):
            kv.k[l][s0:s1].copy_(src[:, li, 0].reshape(nb * T, kvh, hd))
            kv.v[l][s0:s1].copy_(src[:, li, 1].reshape(nb * T, kvh, hd))

    def group_of(self, layer):
        for gi, (a, b) in enumerate(self.groups):
            if a <= layer < b:
                return gi
        raise ValueError(layer)

    def wait(self, gi):
        """Wait until group gi is in the KV; returns how many blocks it got."""
        self.events[gi].wait()
        for ev in self.cuda_events[gi]:
            torch.cuda.current_stream(self.device).wait_event(ev)
        return self.loaded[gi]

    def finish(self):
        """Wait for the whole load; the blocks every group got."""
        for gi in range(len(self.groups)):
            self.wait(gi)
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        return min(self.loaded) if self.loaded else 0

    def put(self, kv, tokens, n_kv, first_block, hints=0):
        """Queue the full blocks [first_block, n_kv // T) of every group with
        the asynchronous put, each with `hints` (kvcache.HINT_*: for the
        daemon's admission); returns the number of blocks queued per group.
        Hinted blocks go through the socket (the GPU path's by-reference
        commit carries no hints)."""
        T = self.T
        nb = n_kv // T
        if nb <= first_block:
            return 0
        toks = np.asarray(tokens[:nb * T], dtype=np.uint32)
        for gi, (a, b) in enumerate(self.groups):
            ks = kvcache.keys(self.ns[gi], toks, T)
            bb = self.block_bytes[gi]
            for c0 in range(first_block, nb, self.chunk):
                c1 = min(nb, c0 + self.chunk)
                parts = []
                for l in range(a, b):
                    kk = kv.k[l][c0 * T:c1 * T].reshape(c1 - c0, 1, 1, T, -1)
                    vv = kv.v[l][c0 * T:c1 * T].reshape(c1 - c0, 1, 1, T, -1)
                    parts.append(torch.cat([kk, vv], dim=2))
                blocks = torch.cat(parts, dim=1)                     # [n, L, 2, T, KVH*hd]
                if self.fmt == "fp8":                                # packed on the device
                    blocks = kvfp8.pack(blocks.reshape(blocks.shape[:4] + (self.cfg.n_kv_heads, -1)))
                if self.shm_put and not hints and self._put_gpu(gi, ks, c0, c1,
                                                                blocks.contiguous()):
                    continue
                host = blocks.contiguous().cpu()
                # the bytes are copied into the queue: host may go at once
                ok = self.client.put_async(self.ns[gi], ks[c0:c1], host, c0, bb, hints=hints)
                if not ok and self.client.last_rc == kvcache.EFULL:
                    self.client.flush(10000)   # queue over its bound: wait, then once more
                    ok = self.client.put_async(self.ns[gi], ks[c0:c1], host, c0, bb, hints=hints)
                if not ok:
                    self.last["put_error"] = self._error(self.client)
        return nb - first_block

    def _put_gpu(self, gi, ks, c0, c1, blocks):
        """Store blocks [c0, c1) of group gi from GPU memory through the
        staging area (synchronous); False when the path failed (it is then
        off for good, shm_error) and the caller puts through the socket."""
        try:
            st = self.client.put(self.ns[gi], ks[c0:c1], blocks, c0, self.block_bytes[gi])
        except Exception as e:
            self.shm_put = False
            self.last["shm_error"] = repr(e)
            return False
        if any(x < 0 for x in st):
            self.last["put_error"] = self._error(self.client)
        return True

    @staticmethod
    def _error(c):
        """The last error of a handle, as text."""
        return "%s (%s)" % (kvcache.strerror(c.last_rc), c.last_error)

    def flush(self, timeout_ms=-1):
        """Wait for the queued puts: 0, or the error code (ETIMEDOUT)."""
        return 0 if self.client.flush(timeout_ms) else self.client.last_rc

    def ping(self, fresh=False):
        """One cheap call on both handles, so that they reconnect now (after
        a daemon restart) rather than inside the next timed turn, and the
        shared-memory areas of the connection are registered with CUDA.
        fresh: new handles (the shared-memory path: a handle keeps the
        regions of earlier daemon runs mapped, so after a restart the old
        handles go, with their mappings and registrations)."""
        if fresh and (self.shm_get or self.shm_put):
            self.client.flush(10000)
            self.client.close()
            for c in self.lclients:
                c.close()
            self._connect()
        for c in [self.client] + self.lclients:
            c.stats(0)
        t0 = time.perf_counter()
        errs = []

        def prepare(c, areas):
            """Register one handle's areas (each handle maps the region itself)."""
            try:
                c.cuda_prepare(areas)
            except Exception as e:
                errs.append(repr(e))
        work = ([(c, ("region",)) for c in self.lclients] if self.shm_get else []) + \
            ([(self.client, ("staging",))] if self.shm_put else [])
        ths = [threading.Thread(target=prepare, args=w) for w in work]   # at once
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        if errs:
            self.shm_get = self.shm_put = False
            self.last["shm_error"] = errs[0]
        self.last["register_s"] = time.perf_counter() - t0

    def close(self):
        self.client.flush(2000)
        self.client.close()
        for c in self.lclients:
            c.close()


class Shard:
    """Layers [layer_begin, layer_end) of the model with their weights and KV."""

    def __init__(self, cfg, layer_begin, layer_end, device, weights_path=None, capacity=4096,
                 servers=None, tokens_per_block=16, layers_per_ns=0, **link_opts):
        self.cfg, self.device = cfg, device
        self.a, self.b = layer_begin, layer_end
        self.first, self.last = layer_begin == 0, layer_end == cfg.n_layers
        src = M.WeightFile(weights_path) if weights_path else None
        self.w = M.Weights(cfg, M.shard_names(cfg, layer_begin, layer_end, self.first, self.last),
                           device, src)
        self.kv = M.KVCache(cfg, range(layer_begin, layer_end), capacity, device)
        self.rope = M.Rope(cfg, device)
        self.T = tokens_per_block
        self.computed_from = None  # lowest position computed this turn (None: none yet)
        self.link = None
        if servers:
            # a stage past a lossy wire computes other KV than an exact one:
            # its namespaces carry the encoding, so they never share blocks
            wire_enc = link_opts.pop("wire", "fp32")
            ns_model = cfg.name if self.first or wire_enc == "fp32" else "%s@wire-%s" % (cfg.name, wire_enc)
            self.link = CacheLink(cfg, layer_begin, layer_end, servers, tokens_per_block,
                                  layers_per_ns, device, ns_model=ns_model, **link_opts)

    def max_reusable(self, ntokens):
        """Blocks that may be reused for a prompt of ntokens: at least the last
        token is always computed, to get its logits."""
        return max(0, (ntokens - 1) // self.T)

    def prepare(self, tokens, fmt="native"):
        """Blocks of tokens' prefix that kvcached holds for every namespace of
        this shard, in KV format fmt (loads and puts of the turn use it)."""
        self.kv.reserve(len(tokens) + 1)
        self.computed_from = None
        if self.link is None:
            return 0
        return min(self.link.prepare(tokens, fmt), self.max_reusable(len(tokens)))

    def select(self, fmt):
        """The KV format of this turn's loads and puts ("native" or "fp8")."""
        if self.link is not None:
            self.link.select(fmt)

    def scrub(self):
        """Fill the KV with NaN: a test's proof that a turn uses only what it
        loaded or computed (any stale slot it read would poison the logits)."""
        for l in self.kv.layers:
            self.kv.k[l].fill_(float("nan"))
            self.kv.v[l].fill_(float("nan"))

    def load(self, p, first=0):
        """Start loading blocks [first, p) (none: nothing to load); the
        caller computes blocks [0, first) with run(..., head=True)."""
        if self.link is not None:
            self.link.load(self.kv, p, first)

    def run(self, x, start, head=False):
        """The shard's layers on hidden states x of positions [start, ..).
        Returns (x, None), or (None, f) when a group's load came back with only
        f blocks and f*T < start: the caller computes again from f*T.
        head=True: the leading blocks [0, first) of a load-or-compute turn,
        computed from position 0 while the loader fills the slots after
        them; it waits for no load (it reads and writes none of its slots)."""
        self.kv.reserve(start + x.shape[0] + 1)
        if head:
            assert start == 0, "the head pass starts at position 0"
            for l in range(self.a, self.b):
                x = M.layer_forward(self.cfg, self.w, l, x, self.kv, 0, self.rope)
            return x, None
        # KV slots [0, start) must hold: those below the lowest start computed
        # this turn come from the load, the rest were computed this turn
        low = start if self.computed_from is None else min(start, self.computed_from)
        need = low // self.T
        for l in range(self.a, self.b):
            # before a group's first layer: its load must be in (the loader
            # writes the same KV slots), and long enough for this start
            if self.link is not None and (l == self.a or
                                          self.link.group_of(l) != self.link.group_of(l - 1)):
                got = self.link.wait(self.link.group_of(l))
                if got < need:
                    return None, self.link.finish()
            x = M.layer_forward(self.cfg, self.w, l, x, self.kv, start, self.rope)
        self.computed_from = low
        return x, None

    def loaded(self):
        """Wait for the load to end; blocks present in every group (None: no load)."""
        return self.link.finish() if self.link is not None else None

    def embed(self, tokens):
        return M.embed(self.cfg, self.w, tokens, self.device)

    def logits(self, x_last):
        return M.head(self.cfg, self.w, x_last)

    def put(self, tokens, n_kv, first_block, hints=0):
        """Queue the new full blocks (async put) after a turn, with hints
        (kvcache.HINT_*) for the daemon's admission."""
        if self.link is None:
            return 0
        return self.link.put(self.kv, tokens, n_kv, first_block, hints)

    def close(self):
        if self.link is not None:
            self.link.close()
