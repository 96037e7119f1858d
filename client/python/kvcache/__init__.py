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

The modules: _native (the library and its prototypes), _codes (return
codes and constants), _buffers (borrowing caller memory), _keys (chain keys
and namespace ids), _shm (shared memory and CUDA tensors), _client (Client).
"""
from ._native import HAVE_REFS, library_path
from ._codes import (PUT_STORED, PUT_EXISTS, HINT_DONE, OK, EINVAL, ENOMEM, EURI, ETIMEDOUT,
                     EDOWN, ECLOSED, EPROTO, ESERVER, EFULL, ESIZE, ENOSPACE, ENONS, ESTALE,
                     ENOSHM, ELIMIT, REF_SHARED, RING_KEY, RING_MEMCACHE, Error, strerror)
from ._keys import Keys, keys, memcache_key, ns_id
from ._shm import Refs, _HostMover
from ._client import Client

__all__ = ["Client", "Keys", "Refs", "keys", "ns_id", "strerror", "Error", "library_path",
           "PUT_STORED", "PUT_EXISTS", "OK", "EINVAL", "ENOMEM", "EURI", "ETIMEDOUT",
           "EDOWN", "ECLOSED", "EPROTO", "ESERVER", "EFULL", "ESIZE", "ENOSPACE", "ENONS",
           "ESTALE", "ENOSHM", "ELIMIT", "HAVE_REFS"]
