"""Shared memory with a local daemon, and CUDA tensors.

With a library that has the zero-copy calls (kvcache.h: kvcache_shm_region,
kvcache_get_prefix_refs, kvcache_release_refs, kvcache_put_reserve/commit)
and a daemon on a unix: socket that offers its region, a handle reads
blocks where the daemon holds them.  Client.get_prefix_refs and
release_refs hand out the references themselves; get_prefix and put also
take CUDA tensors: the region is registered with CUDA once per mapping
(cudaHostRegister, read-only), blocks are copied with cudaMemcpyAsync on
the caller's stream straight from the region into the tensor (adjacent
blocks in one copy), and puts copy from the tensor into reserved buffers
of the connection's staging area (registered too), then commit.  Without
those calls or without a region, CUDA tensors go through a pinned host
buffer and the socket: the same results, slower."""
import ctypes
import os

from ._native import (HAVE_REFS, _Ref, _get_prefix_refs, _put_cancel, _put_commit,
    _put_reserve, _release_refs, _shm_region, _shm_staging, _sz, _vp, library_path)
from ._codes import ESIZE, REF_SHARED
from ._buffers import _is_tensor


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
