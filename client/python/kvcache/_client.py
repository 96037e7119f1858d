"""Client: a handle on one or several kvcached servers (the calls of
kvcache.h); its shared-memory and CUDA calls come from _shm._ShmMixin."""
import ctypes
import os

from ._native import (_ClientStats, _Key, _Options, _Stats, _client_stats, _create, _delete,
    _destroy, _exists, _flush, _get, _get_prefix, _health, _last_error, _match, _match_where,
    _open_ns,
    _put_async_hint, _put_hint, _server_count, _server_of, _server_of_ns, _set_timeout,
    _stats, _sz, _u32, _u64)
from ._codes import Error, RING_KEY, strerror
from ._buffers import _Borrowed, _block_pointers
from ._keys import _desc
from ._shm import _ShmMixin, _is_cuda


class Client(_ShmMixin):
    """A handle on one or several kvcached servers; use from one thread."""

    def __init__(self, servers, timeout_ms=0, connect_timeout_ms=0, retry_ms=0,
                 async_max_bytes=0, async_max_items=0, ring_points=0, ring_hash=RING_KEY):
        self._h = None
        o = _Options(connect_timeout_ms, timeout_ms, retry_ms, async_max_bytes,
                     async_max_items, ring_points, ring_hash)
        err = ctypes.c_int(0)
        self._h = _create(servers.encode(), ctypes.byref(o), ctypes.byref(err))
        if not self._h:
            raise Error(err.value, "kvcache_create(%r)" % servers)
        self.last_rc = 0
        self.block_bytes = {}

    def close(self):
        if self._h:
            if self.__dict__.get("_cuda_reg"):
                self._cuda_release()
            _destroy(self._h)
            self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may be gone
            pass

    def _done(self, rc):
        self.last_rc = rc
        return rc

    @property
    def last_error(self):
        """Detail of the last error ("" if the last call had none)."""
        return _last_error(self._h).decode() if self.last_rc else ""

    def set_timeout(self, ms):
        self._done(_set_timeout(self._h, ms))

    def server_count(self):
        return _server_count(self._h)

    def server_of(self, key):
        """Index of the server owning a 16-byte key."""
        k = _Key(int.from_bytes(key[:8], "little"), int.from_bytes(key[8:16], "little"))
        return _server_of(self._h, k)

    def server_of_ns(self, ns, key):
        """Index of the server owning a 16-byte key of namespace ns (needed
        with ring_hash=RING_MEMCACHE)."""
        k = _Key(int.from_bytes(key[:8], "little"), int.from_bytes(key[8:16], "little"))
        return _server_of_ns(self._h, ns, k)

    def open_namespace(self, model, layer_begin=0, layer_end=0, tokens_per_block=16,
                       dtype="", kv_heads=0, head_dim=0, block_bytes=0):
        """Open a namespace on every server; returns its id (also when servers
        fail: see last_rc)."""
        d = _desc(model, layer_begin, layer_end, tokens_per_block, dtype, kv_heads,
                  head_dim, block_bytes)
        v = _u64()
        rc = self._done(_open_ns(self._h, ctypes.byref(d), ctypes.byref(v)))
        if rc == -30000:
            raise ValueError(strerror(rc))
        self.block_bytes[v.value] = block_bytes
        return v.value

    def _size(self, ns, size):
        size = size or self.block_bytes.get(ns)
        if not size:
            raise ValueError("block size unknown: open the namespace or pass block_bytes")
        return size

    def match(self, ns, keys, where=False):
        """Number of leading keys present. With where=True, (number, where):
        where[i] is "dram" (a DRAM copy in the daemon: memory speed) or "ssd"
        (a device read) for each matched block, for planning load-or-compute."""
        n = _sz()
        if not where:
            self._done(_match(self._h, ns, keys._ptr(), len(keys), ctypes.byref(n)))
            return n.value
        w = (ctypes.c_uint8 * max(len(keys), 1))()
        self._done(_match_where(self._h, ns, keys._ptr(), len(keys), ctypes.byref(n), w))
        return n.value, ["dram" if w[i] == 1 else "ssd" for i in range(n.value)]

    def exists(self, ns, keys):
        """Which keys the daemons hold, in any order, with no data moved and
        no device read: a list of bools, one per key."""
        p = (ctypes.c_uint8 * max(len(keys), 1))()
        self._done(_exists(self._h, ns, keys._ptr(), len(keys), p, None))
        return [bool(p[i]) for i in range(len(keys))]

    def get_prefix(self, ns, keys, bufs, block_bytes=0, stream=None):
        """Read the longest present leading run of keys into bufs (a list of
        writable buffers or one writable buffer of len(keys) blocks; CUDA
        tensors too, copied on `stream`, see below); returns its length."""
        size = self._size(ns, block_bytes)
        if _is_cuda(bufs):
            return self._get_prefix_cuda(ns, keys, bufs, size, stream)
        n = _sz()
        with _Borrowed() as held:
            ptrs = _block_pointers(held, bufs, len(keys), size, True)
            self._done(_get_prefix(self._h, ns, keys._ptr(), len(keys), ptrs, size, None,
                                   ctypes.byref(n)))
        return n.value

    def get(self, ns, keys, bufs, block_bytes=0):
        """Read arbitrary keys; returns the list of block lengths (0: miss)."""
        size = self._size(ns, block_bytes)
        lens = (_u32 * max(len(keys), 1))()
        n = _sz()
        with _Borrowed() as held:
            ptrs = _block_pointers(held, bufs, len(keys), size, True)
            self._done(_get(self._h, ns, keys._ptr(), len(keys), ptrs, size, lens,
                            ctypes.byref(n)))
        return list(lens[:len(keys)])

    def put(self, ns, keys, blocks, first_pos=0, block_bytes=0, stream=None, hints=0):
        """Store blocks (a list of buffers or one buffer of len(keys) blocks;
        CUDA tensors too, copied on `stream`) at chain positions first_pos...;
        returns the per-key statuses (PUT_STORED, PUT_EXISTS or a negative
        error code).  hints (HINT_*) go with every block, for the daemon's
        admission; a CUDA put with hints goes through host memory (the
        by-reference commit carries none)."""
        size = self._size(ns, block_bytes)
        if _is_cuda(blocks):
            if hints:
                blocks = blocks.cpu()
            else:
                return self._put_cuda(ns, keys, blocks, first_pos, size, stream)
        st = (ctypes.c_int * max(len(keys), 1))()
        n = _sz()
        with _Borrowed() as held:
            ptrs = _block_pointers(held, blocks, len(keys), size, False)
            self._done(_put_hint(self._h, ns, keys._ptr(), len(keys), first_pos, hints, ptrs,
                                 size, st, ctypes.byref(n)))
        return list(st[:len(keys)])

    def put_async(self, ns, keys, blocks, first_pos=0, block_bytes=0, hints=0):
        """Queue a put: the keys and bytes are copied into the handle's queue
        before it returns, so the buffers may be reused at once; flush() waits
        for the queue.  False if the put was dropped (last_rc: EFULL when the
        queue was over its bound).  hints as for put()."""
        size = self._size(ns, block_bytes)
        with _Borrowed() as held:
            ptrs = _block_pointers(held, blocks, len(keys), size, False)
            rc = self._done(_put_async_hint(self._h, ns, keys._ptr(), len(keys), first_pos,
                                            hints, ptrs, size))
        return rc == 0

    def flush(self, timeout_ms=-1):
        """Wait for queued puts; True when the queue drained."""
        return self._done(_flush(self._h, timeout_ms)) == 0

    def delete(self, ns, keys):
        """Delete keys; returns how many were present."""
        n = _sz()
        self._done(_delete(self._h, ns, keys._ptr(), len(keys), ctypes.byref(n)))
        return n.value

    def stats(self, server=0):
        """A few counters of one server, as a dict ({} on failure)."""
        s = _Stats()
        if self._done(_stats(self._h, server, ctypes.byref(s))):
            return {}
        return {name: getattr(s, name) for name, _ in _Stats._fields_}

    def health(self, server=0):
        """(state, reason): state 0 ok, 1 degraded, 2 down or unreachable."""
        st = ctypes.c_int(2)
        reason = ctypes.create_string_buffer(256)
        self._done(_health(self._h, server, ctypes.byref(st), reason, 256))
        return st.value, reason.value.decode(errors="replace")

    def client_stats(self):
        """Counters of the handle itself."""
        s = _ClientStats()
        _client_stats(self._h, ctypes.byref(s))
        return {name: getattr(s, name) for name, _ in _ClientStats._fields_}
