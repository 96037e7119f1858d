"""Borrowing caller memory for one call: the address of a buffer-protocol
object or a contiguous CPU tensor, without a copy, and the array of block
addresses the C calls take."""
import ctypes

from ._native import _vp


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
