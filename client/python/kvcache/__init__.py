"""kvcache: Python binding of libkvcache (the kvcached client) through ctypes.

    import kvcache
    c = kvcache.Client("unix:/run/kvcached.sock")
    ns = c.open_namespace(model="llama-3-8b", layer_end=32, tokens_per_block=16,
                          dtype="bf16", kv_heads=8, head_dim=128, block_bytes=262144)
    keys = kvcache.keys(ns, tokens, 16)            # one key per full block
    found = c.get_prefix(ns, keys, bufs)           # bufs: writable buffers
    c.put(ns, keys[found:], new_blocks, first_pos=found)

Buffers are any object with the buffer protocol (bytes, bytearray,
memoryview, numpy arrays, ...) or a contiguous CPU torch tensor (pinned or
not, any dtype, bf16 included: its data_ptr() and size are used), one per
block or one contiguous buffer for all blocks; they are passed to the
library by address, without copies, and held only for the call (put_async
copies the bytes into its queue before it returns).

Like the C library, a call on a sick cache does not raise: it returns what
was found (a miss) and leaves the error in ``Client.last_rc`` and
``Client.last_error``.  Only bad arguments raise (ValueError, TypeError).

The shared library is found through $KVCACHE_LIB (a path), else at the
path that meson wrote beside this file (kvcache/_libpath.py: the build tree's
library in the copy under BUILD/client/python, wherever BUILD is; the
installed library in an installed copy), else as "libkvcache.so.0" on the
loader's path (LD_LIBRARY_PATH, the system's: what a pip-installed copy uses),
else in the build tree of the checkout that holds this file (build/client/ or
build-release/client/); importing raises OSError when none loads.
"""
import ctypes
import os

__all__ = ["Client", "Keys", "Refs", "keys", "ns_id", "strerror", "Error", "library_path",
           "PUT_STORED", "PUT_EXISTS", "OK", "EINVAL", "ENOMEM", "EURI", "ETIMEDOUT",
           "EDOWN", "ECLOSED", "EPROTO", "ESERVER", "EFULL", "ESIZE", "ENOSPACE", "ENONS",
           "ESTALE", "ENOSHM", "ELIMIT", "HAVE_REFS"]

PUT_STORED = 0
HINT_DONE = 1        # put hint: the blocks' chain is finished (kvcache.h KVCACHE_HINT_DONE)
PUT_EXISTS = 1

# Error codes (kvcache.h KVCACHE_E*); calls may also leave -errno in last_rc.
OK = 0
EINVAL = -30000      # bad argument
ENOMEM = -30001      # out of memory
EURI = -30002        # a server URI could not be parsed
ETIMEDOUT = -30003   # the call ran past its timeout
EDOWN = -30004       # server skipped: it failed recently (retry delay)
ECLOSED = -30005     # the server closed the connection
EPROTO = -30006      # malformed or unexpected response
ESERVER = -30007     # the server answered with an error
EFULL = -30008       # async queue full: the put was dropped
ESIZE = -30009       # wrong block size for the namespace / buffer too small
ENOSPACE = -30010    # the server had no space for a block
ENONS = -30011       # namespace not opened with this handle


def _load():
    """Load libkvcache: $KVCACHE_LIB, the path meson wrote (_libpath), the
    loader's path, the checkout's build tree."""
    env = os.environ.get("KVCACHE_LIB")
    if env:
        return ctypes.CDLL(env), env   # named explicitly: its error, not a fallback
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.normpath(os.path.join(here, "..", "..", ".."))
    cands = ["libkvcache.so.0"] + [os.path.join(root, b, "client", "libkvcache.so.0")
                                   for b in ("build", "build-release")]
    try:
        from . import _libpath   # absent in the checkout and in a pip install
        cands.insert(0, _libpath.LIBRARY)
    except ImportError:
        pass
    errors = []
    for c in cands:
        if "/" in c and not os.path.exists(c):
            continue
        try:
            return ctypes.CDLL(c), c
        except OSError as e:
            errors.append(str(e))
    raise OSError("libkvcache not found (set KVCACHE_LIB to libkvcache.so.0): "
                  + "; ".join(errors or ["no candidate"]))


_lib, library_path = _load()


class _Key(ctypes.Structure):
    _fields_ = [("lo", ctypes.c_uint64), ("hi", ctypes.c_uint64)]


class _NsDesc(ctypes.Structure):
    _fields_ = [("model", ctypes.c_char_p), ("layer_begin", ctypes.c_uint32),
                ("layer_end", ctypes.c_uint32), ("tokens_per_block", ctypes.c_uint32),
                ("dtype", ctypes.c_char_p), ("kv_heads", ctypes.c_uint32),
                ("head_dim", ctypes.c_uint32), ("block_bytes", ctypes.c_uint32)]


class _Options(ctypes.Structure):
    _fields_ = [("connect_timeout_ms", ctypes.c_int), ("timeout_ms", ctypes.c_int),
                ("retry_ms", ctypes.c_int), ("async_max_bytes", ctypes.c_size_t),
                ("async_max_items", ctypes.c_size_t), ("ring_points", ctypes.c_int),
                ("ring_hash", ctypes.c_int)]


RING_KEY = 0        # ring position: md5 of the key's 16 bytes (default)
RING_MEMCACHE = 1   # md5 of its memcache key, as nutcracker hashes it


class _Stats(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in
                ("items", "bytes", "hits", "misses", "puts", "evictions",
                 "connections", "uptime_s")]


class _ClientStats(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in
                ("connects", "timeouts", "async_queued", "async_dropped",
                 "async_failed", "async_done")]


class _PyBuffer(ctypes.Structure):
    """CPython's Py_buffer, to borrow any buffer's address without a copy."""
    _fields_ = [("buf", ctypes.c_void_p), ("obj", ctypes.c_void_p),
                ("len", ctypes.c_ssize_t), ("itemsize", ctypes.c_ssize_t),
                ("readonly", ctypes.c_int), ("ndim", ctypes.c_int),
                ("format", ctypes.c_char_p), ("shape", ctypes.c_void_p),
                ("strides", ctypes.c_void_p), ("suboffsets", ctypes.c_void_p),
                ("internal", ctypes.c_void_p)]


_get_buffer = ctypes.pythonapi.PyObject_GetBuffer
_get_buffer.argtypes = [ctypes.py_object, ctypes.POINTER(_PyBuffer), ctypes.c_int]
_get_buffer.restype = ctypes.c_int
_release_buffer = ctypes.pythonapi.PyBuffer_Release
_release_buffer.argtypes = [ctypes.POINTER(_PyBuffer)]
_release_buffer.restype = None
_PYBUF_WRITABLE = 0x0001

_vp = ctypes.c_void_p
_sz = ctypes.c_size_t
_u32 = ctypes.c_uint32
_u64 = ctypes.c_uint64
_KP = ctypes.POINTER(_Key)
_SZP = ctypes.POINTER(ctypes.c_size_t)


def _proto(name, restype, *argtypes):
    f = getattr(_lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


_strerror = _proto("kvcache_strerror", ctypes.c_char_p, ctypes.c_int)
_keys = _proto("kvcache_keys", ctypes.c_long, _u64, _KP, _vp, _sz, _u32, _KP, _sz)
_ns_id = _proto("kvcache_ns_id", ctypes.c_int, ctypes.POINTER(_NsDesc), ctypes.POINTER(_u64))
_create = _proto("kvcache_create", _vp, ctypes.c_char_p, ctypes.POINTER(_Options),
                 ctypes.POINTER(ctypes.c_int))
_destroy = _proto("kvcache_destroy", None, _vp)
_set_timeout = _proto("kvcache_set_timeout", ctypes.c_int, _vp, ctypes.c_int)
_last_error = _proto("kvcache_last_error", ctypes.c_char_p, _vp)
_server_count = _proto("kvcache_server_count", ctypes.c_int, _vp)
_server_of = _proto("kvcache_server_of", ctypes.c_int, _vp, _Key)
_server_of_ns = _proto("kvcache_server_of_ns", ctypes.c_int, _vp, _u64, _Key)
_open_ns = _proto("kvcache_open_namespace", ctypes.c_int, _vp, ctypes.POINTER(_NsDesc),
                  ctypes.POINTER(_u64))
_match = _proto("kvcache_match", ctypes.c_int, _vp, _u64, _KP, _sz, _SZP)
_match_where = _proto("kvcache_match_where", ctypes.c_int, _vp, _u64, _KP, _sz, _SZP,
                      ctypes.POINTER(ctypes.c_uint8))
_exists = _proto("kvcache_exists", ctypes.c_int, _vp, _u64, _KP, _sz,
                  ctypes.POINTER(ctypes.c_uint8), _SZP)
_get_prefix = _proto("kvcache_get_prefix", ctypes.c_int, _vp, _u64, _KP, _sz,
                     ctypes.POINTER(_vp), _sz, ctypes.POINTER(_u32), _SZP)
_get = _proto("kvcache_get", ctypes.c_int, _vp, _u64, _KP, _sz, ctypes.POINTER(_vp), _sz,
              ctypes.POINTER(_u32), _SZP)
_put_hint = _proto("kvcache_put_hint", ctypes.c_int, _vp, _u64, _KP, _sz, _u32, _u32,
                   ctypes.POINTER(_vp), _sz, ctypes.POINTER(ctypes.c_int), _SZP)
_put_async_hint = _proto("kvcache_put_async_hint", ctypes.c_int, _vp, _u64, _KP, _sz, _u32, _u32,
                         ctypes.POINTER(_vp), _sz)
_flush = _proto("kvcache_flush", ctypes.c_int, _vp, ctypes.c_int)
_delete = _proto("kvcache_delete", ctypes.c_int, _vp, _u64, _KP, _sz, _SZP)
_stats = _proto("kvcache_stats", ctypes.c_int, _vp, ctypes.c_int, ctypes.POINTER(_Stats))
_health = _proto("kvcache_health", ctypes.c_int, _vp, ctypes.c_int,
                 ctypes.POINTER(ctypes.c_int), ctypes.c_char_p, _sz)
_client_stats = _proto("kvcache_client_stats", ctypes.c_int, _vp,
                       ctypes.POINTER(_ClientStats))


class Error(Exception):
    """A handle could not be created (bad URI list, out of memory)."""

    def __init__(self, rc, what):
        super().__init__("%s: %s (%d)" % (what, strerror(rc), rc))
        self.rc = rc


def strerror(rc):
    """Text of a library error code."""
    return _strerror(rc).decode()


def _is_tensor(obj):
    """A torch tensor (or alike): data_ptr(), element_size(), numel()."""
    return (hasattr(obj, "data_ptr") and hasattr(obj, "element_size")
            and hasattr(obj, "numel") and not isinstance(obj, (bytes, bytearray, memoryview)))


class _Borrowed:
    """Addresses of buffers held for the duration of one call."""

    def __init__(self):
        self._views = []
        self._objs = []

    def address(self, obj, writable):
        """(address, length in bytes) of a buffer-protocol object, or of a
        contiguous CPU tensor (data_ptr: a device pointer is refused)."""
        if _is_tensor(obj):
            dev = getattr(obj, "device", None)
            if dev is not None and getattr(dev, "type", "cpu") != "cpu":
                raise ValueError("a %s tensor: pass host memory (e.g. a pinned CPU tensor)"
                                 % dev)
            if hasattr(obj, "is_contiguous") and not obj.is_contiguous():
                raise ValueError("a non-contiguous tensor")
            self._objs.append(obj)
            return obj.data_ptr(), obj.numel() * obj.element_size()
        view = _PyBuffer()
        _get_buffer(obj, ctypes.byref(view), _PYBUF_WRITABLE if writable else 0)
        self._views.append(view)
        return view.buf, view.len

    def release(self):
        for v in self._views:
            _release_buffer(ctypes.byref(v))
        self._views = []
        self._objs = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def _block_pointers(held, bufs, n, size, writable):
    """An array of n block addresses: from a list of n buffers (each at least
    `size` bytes), or from one buffer of at least n * size bytes."""
    ptrs = (_vp * max(n, 1))()
    if isinstance(bufs, (list, tuple)):
        if len(bufs) < n:
            raise ValueError("%d buffers for %d keys" % (len(bufs), n))
        for i in range(n):
            addr, length = held.address(bufs[i], writable)
            if length < size:
                raise ValueError("buffer %d holds %d bytes, need %d" % (i, length, size))
            ptrs[i] = addr
    else:
        addr, length = held.address(bufs, writable)
        if length < n * size:
            raise ValueError("buffer holds %d bytes, need %d" % (length, n * size))
        for i in range(n):
            ptrs[i] = addr + i * size
    return ptrs


class Keys:
    """A sequence of chain keys (16 bytes each on the wire)."""

    def __init__(self, array, n):
        self._a = array
        self._n = n

    def __len__(self):
        return self._n

    def __getitem__(self, i):
        if isinstance(i, slice):
            start, stop, step = i.indices(self._n)
            if step != 1:
                raise ValueError("only contiguous slices of keys")
            n = max(stop - start, 0)
            a = (_Key * max(n, 1))()
            ctypes.memmove(a, ctypes.addressof(self._a) + start * 16, n * 16)
            return Keys(a, n)
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(i)
        k = self._a[i]
        return k.lo.to_bytes(8, "little") + k.hi.to_bytes(8, "little")

    @classmethod
    def from_bytes(cls, items):
        """Keys from 16-byte wire forms (lo LE, hi LE), e.g. computed elsewhere."""
        items = list(items)
        a = (_Key * max(len(items), 1))()
        for i, b in enumerate(items):
            if len(b) != 16:
                raise ValueError("a key is 16 bytes")
            a[i] = _Key(int.from_bytes(b[:8], "little"), int.from_bytes(b[8:], "little"))
        return cls(a, len(items))

    def pairs(self):
        """The keys as (lo, hi) integer pairs."""
        return [(self._a[i].lo, self._a[i].hi) for i in range(self._n)]

    def _ptr(self):
        return ctypes.cast(self._a, _KP)

    def _last(self):
        return self._a[self._n - 1] if self._n else None

    def __add__(self, other):
        n = self._n + len(other)
        a = (_Key * max(n, 1))()
        ctypes.memmove(a, self._a, self._n * 16)
        ctypes.memmove(ctypes.addressof(a) + self._n * 16, other._a, len(other) * 16)
        return Keys(a, n)


def _u32_tokens(tokens):
    """Whether tokens can be read in place as 32-bit token ids."""
    if _is_tensor(tokens):   # int32/uint32 CPU tensor: ids < 2^31 have the u32 bytes
        dt = getattr(tokens, "dtype", None)
        return (tokens.element_size() == 4 and not getattr(dt, "is_floating_point", True)
                and getattr(getattr(tokens, "device", None), "type", "cpu") == "cpu"
                and tokens.is_contiguous())
    try:
        mv = memoryview(tokens)
    except TypeError:
        return False
    return mv.itemsize == 4 and mv.format in ("I", "L", "=I", "<I", "u4") and mv.c_contiguous


def keys(ns, tokens, tokens_per_block, prev=None):
    """Chain keys of the full blocks of `tokens` (ints, array('I'), a uint32
    numpy array, an int32/uint32 CPU tensor...; the arrays are read in place).
    prev: the Keys of the blocks before these tokens, to extend a sequence
    (its last key is key[-1] of this run)."""
    n_tok = len(tokens)
    n = n_tok // tokens_per_block
    out = (_Key * max(n, 1))()
    pk = None
    if prev is not None and len(prev):
        pk = ctypes.pointer(prev._last())
    with _Borrowed() as held:
        ok = _u32_tokens(tokens)
        if ok:
            addr, _ = held.address(tokens, False)
        else:
            arr = (_u32 * max(n_tok, 1))(*tokens)
            addr = ctypes.addressof(arr)
        got = _keys(ns, pk, addr, n_tok, tokens_per_block, out, n)
    if got < 0:
        raise ValueError(strerror(got))
    return Keys(out, got)


def _desc(model, layer_begin, layer_end, tokens_per_block, dtype, kv_heads, head_dim,
          block_bytes):
    return _NsDesc(model.encode(), layer_begin, layer_end, tokens_per_block,
                   (dtype or "").encode(), kv_heads, head_dim, block_bytes)


def memcache_key(ns, key):
    """The memcache key of a block on kvcached's memcache port (bytes)."""
    return b"%016x:%s" % (ns, bytes(key[:16]).hex().encode())


def ns_id(model, layer_begin=0, layer_end=0, tokens_per_block=16, dtype="", kv_heads=0,
          head_dim=0, block_bytes=0):
    """The stable id of a namespace descriptor (no I/O)."""
    d = _desc(model, layer_begin, layer_end, tokens_per_block, dtype, kv_heads, head_dim,
              block_bytes)
    v = _u64()
    rc = _ns_id(ctypes.byref(d), ctypes.byref(v))
    if rc:
        raise ValueError(strerror(rc))
    return v.value



# ---- shared memory with a local daemon, and CUDA tensors -----------------
#
# With a library that has the zero-copy calls (kvcache.h: kvcache_shm_region,
# kvcache_get_prefix_refs, kvcache_release_refs, kvcache_put_reserve/commit)
# and a daemon on a unix: socket that offers its region, a handle reads
# blocks where the daemon holds them.  Client.get_prefix_refs and
# release_refs hand out the references themselves; get_prefix and put also
# take CUDA tensors: the region is registered with CUDA once per mapping
# (cudaHostRegister, read-only), blocks are copied with cudaMemcpyAsync on
# the caller's stream straight from the region into the tensor (adjacent
# blocks in one copy), and puts copy from the tensor into reserved buffers
# of the connection's staging area (registered too), then commit.  Without
# those calls or without a region, CUDA tensors go through a pinned host
# buffer and the socket: the same results, slower.

ESTALE = -30012      # a lease ended before its release: the copied bytes may be wrong
ENOSHM = -30013      # the server offers no shared memory
ELIMIT = -30014      # a server limit was reached (leased bytes, batch size)
REF_SHARED = 1       # kvcache_ref_t.flags: the block lies in the server's region


class _Ref(ctypes.Structure):
    _fields_ = [("data", _vp), ("len", _u32), ("flags", _u32), ("deadline_ns", _u64),
                ("lease", _u64), ("server", _u32), ("priv_flags", _u32)]


def _opt_proto(name, restype, *argtypes):
    """_proto, or None when this library predates the symbol."""
    try:
        return _proto(name, restype, *argtypes)
    except AttributeError:
        return None


_RP = ctypes.POINTER(_Ref)
_VPP = ctypes.POINTER(_vp)
_get_prefix_refs = _opt_proto("kvcache_get_prefix_refs", ctypes.c_int, _vp, _u64, _KP, _sz, _RP,
                              _SZP)
_release_refs = _opt_proto("kvcache_release_refs", ctypes.c_int, _vp, _RP, _sz)
_shm_region = _opt_proto("kvcache_shm_region", ctypes.c_int, _vp, ctypes.c_int, _VPP, _SZP)
_shm_staging = _opt_proto("kvcache_shm_staging", ctypes.c_int, _vp, ctypes.c_int, _VPP, _SZP)
_put_reserve = _opt_proto("kvcache_put_reserve", ctypes.c_int, _vp, _u64, _KP, _sz, _sz, _VPP)
_put_commit = _opt_proto("kvcache_put_commit", ctypes.c_int, _vp, _u64, _KP, _sz, _u32, _VPP,
                         _sz, ctypes.POINTER(ctypes.c_int), _SZP)
_put_cancel = _opt_proto("kvcache_put_cancel", None, _vp, _VPP, _sz)

HAVE_REFS = None not in (_get_prefix_refs, _release_refs, _shm_region, _shm_staging,
                         _put_reserve, _put_commit, _put_cancel)


class Refs:
    """References to blocks in a server's memory (Client.get_prefix_refs):
    refs[i] is (address, length, shared), block i of the prefix found;
    view(i) a read-only memoryview of it.  Valid until Client.release_refs."""

    def __init__(self, array, n):
        self._a = array
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        r = self._a[i]
        return r.data, r.len, bool(r.flags & REF_SHARED)

    def view(self, i):
        """Block i's bytes in place (read-only; copy before release)."""
        addr, n, _ = self[i]
        return memoryview((ctypes.c_char * n).from_address(addr)).cast("B").toreadonly()


def _is_cuda(obj):
    """A CUDA tensor, or a non-empty list of them."""
    if isinstance(obj, (list, tuple)):
        return bool(obj) and all(_is_cuda(o) for o in obj)
    return _is_tensor(obj) and getattr(getattr(obj, "device", None), "type", "") == "cuda"


def _cuda_pointers(bufs, n, size):
    """Device addresses of n blocks of `size` bytes in a CUDA tensor (or a list)."""
    if isinstance(bufs, (list, tuple)):
        if len(bufs) < n:
            raise ValueError("%d buffers for %d keys" % (len(bufs), n))
        out = []
        for i, b in enumerate(bufs[:n]):
            if not b.is_contiguous() or b.numel() * b.element_size() < size:
                raise ValueError("buffer %d: not contiguous or under %d bytes" % (i, size))
            out.append(b.data_ptr())
        return out
    if not bufs.is_contiguous():
        raise ValueError("a non-contiguous tensor")
    if bufs.numel() * bufs.element_size() < n * size:
        raise ValueError("buffer holds %d bytes, need %d" % (bufs.numel() * bufs.element_size(),
                                                              n * size))
    return [bufs.data_ptr() + i * size for i in range(n)]


class _Cuda:
    """The few CUDA runtime calls the binding makes, through the libcudart
    that torch loaded (found in /proc/self/maps, opened with RTLD_NOLOAD so
    no second runtime is loaded)."""
    H2D, D2H = 1, 2
    REGISTER_PORTABLE = 1      # cudaHostRegisterPortable: pinned for every device's context
    REGISTER_READ_ONLY = 8     # cudaHostRegisterReadOnly

    def __init__(self):
        import torch
        torch.cuda.init()
        self.torch = torch
        self.rt = None
        paths = []
        with open("/proc/self/maps") as f:
            for line in f:
                p = line.split()[-1]
                if "libcudart" in p and p.startswith("/") and p not in paths:
                    paths.append(p)
        for p in paths:
            try:
                self.rt = ctypes.CDLL(p, mode=os.RTLD_NOLOAD | os.RTLD_GLOBAL)
                break
            except OSError:
                continue
        if self.rt is None:
            raise OSError("libcudart is not loaded by torch (%s)" % (paths or "no libcudart"))
        self.rt.cudaMemcpyAsync.argtypes = [_vp, _vp, _sz, ctypes.c_int, _vp]
        self.rt.cudaHostRegister.argtypes = [_vp, _sz, ctypes.c_uint]
        self.rt.cudaHostUnregister.argtypes = [_vp]
        self.rt.cudaGetLastError.argtypes = []

    def register(self, base, size, read_only):
        """Page-lock [base, base+size) for the GPU's copies; True when it is."""
        flags = self.REGISTER_PORTABLE | (self.REGISTER_READ_ONLY if read_only else 0)
        rc = self.rt.cudaHostRegister(base, size, flags)
        if rc and read_only:   # a runtime without the flag: plain registration
            self.rt.cudaGetLastError()
            rc = self.rt.cudaHostRegister(base, size, self.REGISTER_PORTABLE)
        if rc:
            self.rt.cudaGetLastError()   # not sticky: copies still work, pageable
        return rc == 0

    def unregister(self, base):
        if self.rt.cudaHostUnregister(base):
            self.rt.cudaGetLastError()


_cuda_rt = None


def _cuda():
    """The process's _Cuda (made on first use)."""
    global _cuda_rt
    if _cuda_rt is None:
        _cuda_rt = _Cuda()
    return _cuda_rt


def _tensor_device(t):
    """The device of a CUDA tensor, or of the first of a list."""
    return (t[0] if isinstance(t, (list, tuple)) else t).device


class _ShmMixin:
    """Client's calls for shared memory and CUDA tensors."""

    def shm_region(self, server=0):
        """(base, size) of server's shared region as mapped here (read-only),
        or None (last_rc: ENOSHM when the server offers none)."""
        if _shm_region is None:
            return None
        base, size = _vp(), _sz()
        if self._done(_shm_region(self._h, server, ctypes.byref(base), ctypes.byref(size))):
            return None
        return base.value, size.value

    def shm_staging(self, server=0):
        """(base, size) of this connection's staging area on server, or None."""
        if _shm_staging is None:
            return None
        base, size = _vp(), _sz()
        if self._done(_shm_staging(self._h, server, ctypes.byref(base), ctypes.byref(size))):
            return None
        return base.value, size.value

    def get_prefix_refs(self, ns, keys):
        """References to the longest present leading run of keys (Refs; give
        them back with release_refs, also after an error)."""
        if not HAVE_REFS:
            raise NotImplementedError("libkvcache at %s has no kvcache_get_prefix_refs"
                                      % library_path)
        a = (_Ref * max(len(keys), 1))()
        n = _sz()
        self._done(_get_prefix_refs(self._h, ns, keys._ptr(), len(keys), a, ctypes.byref(n)))
        return Refs(a, n.value)

    def release_refs(self, refs):
        """Give references back (batched, no round trip); False when a lease
        had ended first (last_rc ESTALE): bytes copied through them may be wrong."""
        rc = _release_refs(self._h, refs._a, refs.n)
        refs.n = 0
        if rc:
            self._done(rc)
        return rc == 0

    def cuda_prepare(self, areas=("region", "staging")):
        """Register the servers' regions (read-only, for gets) and staging
        areas (for puts) with CUDA now; they are otherwise registered on the
        first CUDA get or put.  After a reconnect (the handle's `connects`
        counter moved) every area is registered again: a new staging area
        may be mapped where the old one was, and a registration of the old
        pages would copy to the wrong place.  Returns how many are registered."""
        if not HAVE_REFS:
            return 0
        reg = self.__dict__.setdefault("_cuda_reg", {})
        rt = _cuda()
        conn = self.client_stats()["connects"]
        again = conn != self.__dict__.get("_cuda_conn")
        self._cuda_conn = conn
        for s in range(self.server_count()):
            for what in areas:
                area = self.shm_region(s) if what == "region" else self.shm_staging(s)
                old = reg.get((what, s))
                if area is None or (not again and old is not None and old[0] == area):
                    continue
                if old is not None and old[1]:
                    rt.unregister(old[0][0])
                reg[(what, s)] = (area, rt.register(area[0], area[1], what == "region"))
        self.last_rc = 0
        return sum(1 for v in reg.values() if v[1])

    def _cuda_release(self):
        """Unregister what cuda_prepare registered (before the library unmaps it)."""
        for (area, ok) in self.__dict__.pop("_cuda_reg", {}).values():
            if ok:
                _cuda().unregister(area[0])

    def _get_prefix_cuda(self, ns, keys, bufs, size, stream):
        """get_prefix into CUDA memory: from the region by reference when the
        server offers one, else through a pinned host buffer."""
        import torch
        dst = _cuda_pointers(bufs, len(keys), size)
        mover = _CudaMover(self, stream, _tensor_device(bufs))
        if HAVE_REFS and self.shm_region(0) is not None:
            return self._get_prefix_by_ref(ns, keys, dst, size, mover)
        host = torch.empty(len(keys) * size, dtype=torch.uint8, pin_memory=True)
        got = self.get_prefix(ns, keys, host, size)
        rc = self.last_rc
        mover.copy([(dst[i], host.data_ptr() + i * size) for i in range(got)], size, _Cuda.H2D)
        mover.wait()
        self.last_rc = rc
        return got

    def _get_prefix_by_ref(self, ns, keys, dst, size, mover):
        """get_prefix into the addresses dst (one per key): references, one
        copy each by `mover` (adjacent blocks together), release; a lease
        that ran out during the copy makes it a miss (0, last_rc ESTALE)."""
        mover.prepare(("region",))
        refs = self.get_prefix_refs(ns, keys)
        rc, found = self.last_rc, refs.n
        try:
            mover.prepare(("region",))   # the get may have reconnected
            for i in range(found):
                if refs._a[i].len != size:
                    rc, found = ESIZE, i
                    break
            mover.copy([(dst[i], refs._a[i].data) for i in range(found)], size, _Cuda.H2D)
            mover.wait()
        finally:
            fresh = self.release_refs(refs)
        if not fresh:
            return 0
        self.last_rc = rc
        return found

    def _put_cuda(self, ns, keys, blocks, first_pos, size, stream):
        """put from CUDA memory: into reserved staging buffers when the server
        has a staging area, else through host memory."""
        import torch
        n = len(keys)
        src = _cuda_pointers(blocks, n, size)
        mover = _CudaMover(self, stream, _tensor_device(blocks))
        if HAVE_REFS and self.shm_staging(0) is not None:
            return self._put_by_ref(ns, keys, src, first_pos, size, mover)
        host = torch.empty(n * size, dtype=torch.uint8, pin_memory=True)
        mover.copy([(host.data_ptr() + i * size, src[i]) for i in range(n)], size, _Cuda.D2H)
        mover.wait()
        return self.put(ns, keys, host, first_pos, size)

    def _put_by_ref(self, ns, keys, src, first_pos, size, mover):
        """put from the addresses src (one per key): reserve buffers in the
        staging area, copy into them by `mover`, commit (statuses as put)."""
        n = len(keys)
        bufs = (_vp * max(n, 1))()
        if self._done(_put_reserve(self._h, ns, keys._ptr(), n, size, bufs)):
            return [self.last_rc] * n
        try:
            mover.prepare(("staging",))   # after the reserve: its connection's area
            mover.copy([(bufs[i], src[i]) for i in range(n)], size, _Cuda.D2H)
            mover.wait()
        except BaseException:
            _put_cancel(self._h, bufs, n)
            raise
        st = (ctypes.c_int * max(n, 1))()
        got = _sz()
        self._done(_put_commit(self._h, ns, keys._ptr(), n, first_pos, bufs, size, st,
                               ctypes.byref(got)))
        return list(st[:n])


def _runs(pairs, size):
    """(dst, src, bytes) of each run of adjacent (dst, src) block pairs."""
    out, i, n = [], 0, len(pairs)
    while i < n:
        d0, s0 = pairs[i]
        j = i + 1
        while j < n and pairs[j][0] == d0 + (j - i) * size and pairs[j][1] == s0 + (j - i) * size:
            j += 1
        out.append((d0, s0, (j - i) * size))
        i = j
    return out


class _CudaMover:
    """Moves blocks for the by-reference calls with the GPU: cudaMemcpyAsync
    on a stream (default: the current stream of the tensor's device), with
    that device current in the calling thread; areas registered with CUDA
    by cuda_prepare."""

    def __init__(self, client, stream, device):
        import torch
        self.client, self.device = client, device
        self.stream = stream if stream is not None else torch.cuda.current_stream(device)

    def prepare(self, areas):
        self.client.cuda_prepare(areas)

    def copy(self, pairs, size, kind):
        import torch
        rt = _cuda().rt
        with torch.cuda.device(self.device):
            for d, s, n in _runs(pairs, size):
                rc = rt.cudaMemcpyAsync(d, s, n, kind, self.stream.cuda_stream)
                if rc:
                    raise RuntimeError("cudaMemcpyAsync: CUDA error %d" % rc)

    def wait(self):
        self.stream.synchronize()


class _HostMover:
    """Moves blocks for the by-reference calls with memmove (host memory on
    both sides): the same calls without a GPU, for tests."""
    runs = 0   # copies made (adjacent blocks are one)

    def prepare(self, areas):
        pass

    def copy(self, pairs, size, kind):
        for d, s, n in _runs(pairs, size):
            ctypes.memmove(d, s, n)
            self.runs += 1

    def wait(self):
        pass

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

