"""Return codes and constants of kvcache.h (KVCACHE_E*, put statuses, hints,
ring hashes), the Error a handle's creation raises, and strerror."""

from ._native import _strerror


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


RING_KEY = 0        # ring position: md5 of the key's 16 bytes (default)
RING_MEMCACHE = 1   # md5 of its memcache key, as nutcracker hashes it


class Error(Exception):
    """A handle could not be created (bad URI list, out of memory)."""

    def __init__(self, rc, what):
        super().__init__("%s: %s (%d)" % (what, strerror(rc), rc))
        self.rc = rc


def strerror(rc):
    """Text of a library error code."""
    return _strerror(rc).decode()


ESTALE = -30012      # a lease ended before its release: the copied bytes may be wrong
ENOSHM = -30013      # the server offers no shared memory
ELIMIT = -30014      # a server limit was reached (leased bytes, batch size)
REF_SHARED = 1       # kvcache_ref_t.flags: the block lies in the server's region
