"""The shared library (libkvcache) and its C calls as ctypes prototypes: how
it is found, the structures of kvcache.h, and the zero-copy calls where the
library has them (HAVE_REFS)."""
import ctypes
import os


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


class _Stats(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in
                ("items", "bytes", "hits", "misses", "puts", "evictions",
                 "connections", "uptime_s")]


class _ClientStats(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in
                ("connects", "timeouts", "async_queued", "async_dropped",
                 "async_failed", "async_done")]


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
