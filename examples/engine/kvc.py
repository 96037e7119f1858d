"""kvc.py - a minimal ctypes binding of libkvcache for the engine.

The client issue promises a `kvcache` Python module (client/python/kvcache/);
it is not on the client branch yet, so the engine carries this thin stand-in
over the same C calls (client/kvcache.h).  Only what the engine uses is bound:
keys, namespaces, match, get_prefix into caller buffers, get, put, put_async,
flush, delete, stats.  Buffers are anything exposing a writable address: a
torch tensor (data_ptr), a numpy array, a bytearray.

Errors: calls return (code, result); code is 0 or a negative libkvcache code
(kvcache_strerror text through strerror()).  A failed call is a miss, never an
exception, as the C library promises; only a wrong argument raises.
"""
import ctypes
import os

KEY_BYTES = 16
EFULL = -30008  # KVCACHE_EFULL: async queue over its bound


class Key(ctypes.Structure):
    """kvcache_key_t: two little-endian u64 halves."""
    _fields_ = [("lo", ctypes.c_uint64), ("hi", ctypes.c_uint64)]


class Options(ctypes.Structure):
    """kvcache_options_t; zero fields take the library's defaults."""
    _fields_ = [("connect_timeout_ms", ctypes.c_int), ("timeout_ms", ctypes.c_int),
                ("retry_ms", ctypes.c_int), ("async_max_bytes", ctypes.c_size_t),
                ("async_max_items", ctypes.c_size_t), ("ring_points", ctypes.c_int)]


class NsDesc(ctypes.Structure):
    """kvcache_ns_desc_t: what a namespace holds (model, layer range, layout)."""
    _fields_ = [("model", ctypes.c_char_p), ("layer_begin", ctypes.c_uint32),
                ("layer_end", ctypes.c_uint32), ("tokens_per_block", ctypes.c_uint32),
                ("dtype", ctypes.c_char_p), ("kv_heads", ctypes.c_uint32),
                ("head_dim", ctypes.c_uint32), ("block_bytes", ctypes.c_uint32)]


class Stats(ctypes.Structure):
    """kvcache_stats_t: a few counters of one server."""
    _fields_ = [(n, ctypes.c_uint64) for n in
                ("items", "bytes", "hits", "misses", "puts", "evictions",
                 "connections", "uptime_s")]


class ClientStats(ctypes.Structure):
    """kvcache_client_stats_t: counters of the handle."""
    _fields_ = [(n, ctypes.c_uint64) for n in
                ("connects", "timeouts", "async_queued", "async_dropped",
                 "async_failed", "async_done")]


_lib = None


def _find_lib():
    """libkvcache.so: $KVCACHE_LIB, else the build tree, else the loader's path."""
    cand = [os.environ.get("KVCACHE_LIB", "")]
    here = os.path.dirname(os.path.abspath(__file__))
    for b in ("build", "build-release"):
        cand.append(os.path.join(here, "..", "..", b, "client", "libkvcache.so"))
    cand.append("libkvcache.so.0")
    for c in cand:
        if c and (os.path.exists(c) or "/" not in c):
            try:
                return ctypes.CDLL(c)
            except OSError:
                continue
    raise OSError("libkvcache.so not found (set KVCACHE_LIB)")


def lib():
    """Load the library once and declare the prototypes."""
    global _lib
    if _lib is not None:
        return _lib
    L = _find_lib()
    P, I, U32, U64, SZ = (ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32,
                          ctypes.c_uint64, ctypes.c_size_t)
    KP = ctypes.POINTER(Key)
    SZP = ctypes.POINTER(ctypes.c_size_t)
    proto = {
        "kvcache_strerror": (ctypes.c_char_p, [I]),
        "kvcache_keys": (ctypes.c_long, [U64, KP, P, SZ, U32, KP, SZ]),
        "kvcache_create": (P, [ctypes.c_char_p, ctypes.POINTER(Options), ctypes.POINTER(I)]),
        "kvcache_destroy": (None, [P]),
        "kvcache_set_timeout": (I, [P, I]),
        "kvcache_last_error": (ctypes.c_char_p, [P]),
        "kvcache_ns_id": (I, [ctypes.POINTER(NsDesc), ctypes.POINTER(U64)]),
        "kvcache_open_namespace": (I, [P, ctypes.POINTER(NsDesc), ctypes.POINTER(U64)]),
        "kvcache_match": (I, [P, U64, KP, SZ, SZP]),
        "kvcache_get_prefix": (I, [P, U64, KP, SZ, P, SZ, ctypes.POINTER(U32), SZP]),
        "kvcache_get": (I, [P, U64, KP, SZ, P, SZ, ctypes.POINTER(U32), SZP]),
        "kvcache_put": (I, [P, U64, KP, SZ, U32, P, SZ, ctypes.POINTER(I), SZP]),
        "kvcache_put_async": (I, [P, U64, KP, SZ, U32, P, SZ]),
        "kvcache_flush": (I, [P, I]),
        "kvcache_delete": (I, [P, U64, KP, SZ, SZP]),
        "kvcache_stats": (I, [P, I, ctypes.POINTER(Stats)]),
        "kvcache_client_stats": (I, [P, ctypes.POINTER(ClientStats)]),
    }
    for name, (res, args) in proto.items():
        f = getattr(L, name)
        f.restype, f.argtypes = res, args
    _lib = L
    return L


def strerror(code):
    """Text of a libkvcache error code."""
    return lib().kvcache_strerror(code).decode()


def addr(buf):
    """The address of a contiguous writable buffer (torch tensor, numpy, bytearray)."""
    if hasattr(buf, "data_ptr"):
        return buf.data_ptr()
    if hasattr(buf, "ctypes"):
        return buf.ctypes.data
    return ctypes.addressof(ctypes.c_char.from_buffer(buf))


def keys(ns_id, tokens, tokens_per_block, prev=None):
    """Prefix-chain keys of the full blocks of tokens (a list of ints): a ctypes
    array of Key, one per full block (kvcache.h PREFIX-CHAIN KEYS)."""
    n = len(tokens) // tokens_per_block
    if hasattr(tokens, "data_ptr"):  # a contiguous torch int32/uint32 tensor: no copy
        assert tokens.is_contiguous() and tokens.element_size() == 4
        toks = ctypes.c_void_p(tokens.data_ptr())
    elif hasattr(tokens, "ctypes"):  # a numpy uint32 array: no copy
        toks = tokens.ctypes.data_as(ctypes.c_void_p)
    else:
        toks = (ctypes.c_uint32 * max(len(tokens), 1))(*tokens)
    out = (Key * max(n, 1))()
    r = lib().kvcache_keys(ns_id, prev, toks, len(tokens), tokens_per_block, out, n)
    if r < 0:
        raise ValueError("kvcache_keys: " + strerror(r))
    return out, r


def ptr_array(addrs):
    """A C array of void* from a list of addresses."""
    return (ctypes.c_void_p * max(len(addrs), 1))(*addrs)


class Client:
    """One kvcache_t handle: used by one thread at a time (kvcache.h)."""

    def __init__(self, servers, timeout_ms=2000, async_max_bytes=0):
        o = Options(timeout_ms=timeout_ms, async_max_bytes=async_max_bytes)
        err = ctypes.c_int(0)
        self.h = lib().kvcache_create(servers.encode(), ctypes.byref(o), ctypes.byref(err))
        if not self.h:
            raise OSError("kvcache_create(%s): %s" % (servers, strerror(err.value)))

    def close(self):
        """Destroy the handle (call flush first to keep queued async puts)."""
        if self.h:
            lib().kvcache_destroy(self.h)
            self.h = None

    def last_error(self):
        return lib().kvcache_last_error(self.h).decode(errors="replace")

    def open_namespace(self, model, layer_begin, layer_end, tokens_per_block, dtype,
                       kv_heads, head_dim, block_bytes):
        """Open a namespace on the servers: (code, ns_id)."""
        d = NsDesc(model.encode(), layer_begin, layer_end, tokens_per_block,
                   dtype.encode(), kv_heads, head_dim, block_bytes)
        ns = ctypes.c_uint64(0)
        r = lib().kvcache_open_namespace(self.h, ctypes.byref(d), ctypes.byref(ns))
        return r, ns.value

    def match(self, ns_id, ks, n):
        """How many leading keys are present: (code, matched)."""
        m = ctypes.c_size_t(0)
        r = lib().kvcache_match(self.h, ns_id, ks, n, ctypes.byref(m))
        return r, m.value

    def get_prefix(self, ns_id, ks, n, addrs, buf_size, first=0):
        """Fetch the leading run of ks[first:first+n] into the buffers at addrs
        (buf_size bytes each): (code, found)."""
        f = ctypes.c_size_t(0)
        kp = ctypes.cast(ctypes.byref(ks, first * ctypes.sizeof(Key)), ctypes.POINTER(Key))
        r = lib().kvcache_get_prefix(self.h, ns_id, kp, n, ptr_array(addrs), buf_size,
                                     None, ctypes.byref(f))
        return r, f.value

    def put(self, ns_id, ks, n, first_pos, addrs, block_len, first=0):
        """Synchronous batch put: (code, nstored)."""
        s = ctypes.c_size_t(0)
        kp = ctypes.cast(ctypes.byref(ks, first * ctypes.sizeof(Key)), ctypes.POINTER(Key))
        r = lib().kvcache_put(self.h, ns_id, kp, n, first_pos, ptr_array(addrs), block_len,
                              None, ctypes.byref(s))
        return r, s.value

    def put_async(self, ns_id, ks, n, first_pos, addrs, block_len, first=0):
        """Fire-and-forget put (the bytes are copied into the queue): code."""
        kp = ctypes.cast(ctypes.byref(ks, first * ctypes.sizeof(Key)), ctypes.POINTER(Key))
        return lib().kvcache_put_async(self.h, ns_id, kp, n, first_pos, ptr_array(addrs),
                                       block_len)

    def flush(self, timeout_ms=-1):
        return lib().kvcache_flush(self.h, timeout_ms)

    def delete(self, ns_id, ks, n, first=0):
        d = ctypes.c_size_t(0)
        kp = ctypes.cast(ctypes.byref(ks, first * ctypes.sizeof(Key)), ctypes.POINTER(Key))
        r = lib().kvcache_delete(self.h, ns_id, kp, n, ctypes.byref(d))
        return r, d.value

    def stats(self, server=0):
        st = Stats()
        r = lib().kvcache_stats(self.h, server, ctypes.byref(st))
        return r, {f: getattr(st, f) for f, _ in Stats._fields_}

    def client_stats(self):
        cs = ClientStats()
        lib().kvcache_client_stats(self.h, ctypes.byref(cs))
        return {f: getattr(cs, f) for f, _ in ClientStats._fields_}
