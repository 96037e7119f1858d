"""Chain keys (Keys, keys) and namespace ids, computed by the library with
no I/O."""
import ctypes

from ._native import _KP, _Key, _NsDesc, _keys, _ns_id, _u32, _u64
from ._codes import strerror
from ._buffers import _Borrowed, _u32_tokens


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
