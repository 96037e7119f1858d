"""wire.py - messages between the pipeline stages over TCP.

A frame is: 4-byte type (ASCII, space-padded), u32 length of a JSON header, u64 length of a binary
payload, the JSON, the payload.  Hidden states travel as a payload in one of
these encodings (the header says which, with the shape):
    fp32   exact (the correctness tests use it)
    fp16   the default: half the bytes, ~1e-3 relative rounding
    bf16   for bf16 models
    fp8    e4m3 with one fp32 scale per row, where PyTorch has float8_e4m3fn
           (>= 2.1); not on Debian's 1.13, which refuses it
    int8   one fp32 scale per row (absmax / 127): fp8's size on any PyTorch
"""
import ctypes
import json
import socket
import struct

import torch

HDR = struct.Struct("<4sIQ")
HAVE_FP8 = hasattr(torch, "float8_e4m3fn")
ENCODINGS = ("fp32", "fp16", "bf16", "fp8", "int8")


def tbytes(t):
    """The bytes of a CPU tensor (no numpy needed)."""
    t = t.contiguous()
    return ctypes.string_at(t.data_ptr(), t.numel() * t.element_size())


def check_encoding(enc):
    """Refuse an encoding this PyTorch cannot do."""
    if enc not in ENCODINGS:
        raise ValueError("wire encoding %s: one of %s" % (enc, ", ".join(ENCODINGS)))
    if enc == "fp8" and not HAVE_FP8:
        raise ValueError("wire encoding fp8: this PyTorch (%s) has no float8_e4m3fn; use int8"
                         % torch.__version__)


def encode(x, enc):
    """Hidden states [S, dim] -> (meta, bytes)."""
    S, D = x.shape
    meta = {"enc": enc, "shape": [S, D]}
    if enc in ("fp32", "fp16", "bf16"):
        dt = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[enc]
        t = x.to(dt).contiguous().cpu()
        if enc == "bf16":
            t = t.view(torch.int16)
        return meta, tbytes(t)
    xf = x.float()
    amax = xf.abs().amax(dim=1, keepdim=True).clamp_min(1e-12)
    if enc == "int8":
        scale = amax / 127.0
        q = torch.round(xf / scale).clamp(-127, 127).to(torch.int8)
    else:
        scale = amax / 448.0
        q = (xf / scale).to(torch.float8_e4m3fn).view(torch.int8)
    return meta, tbytes(scale.cpu()) + tbytes(q.cpu())


def decode(meta, payload, device, dtype):
    """Bytes -> hidden states [S, dim] on device in dtype."""
    S, D = meta["shape"]
    enc = meta["enc"]
    buf = bytearray(payload)
    if enc in ("fp32", "fp16", "bf16"):
        dt = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.int16}[enc]
        t = torch.frombuffer(buf, dtype=dt).view(S, D)
        if enc == "bf16":
            t = t.view(torch.bfloat16)
        return t.to(device=device, dtype=dtype)
    scale = torch.frombuffer(buf, dtype=torch.float32, count=S).view(S, 1)
    q = torch.frombuffer(buf, dtype=torch.int8, offset=4 * S).view(S, D)
    if enc == "fp8":
        q = q.view(torch.float8_e4m3fn)
    return (q.to(device).float() * scale.to(device)).to(dtype)


class Conn:
    """One framed TCP connection."""

    def __init__(self, sock):
        self.sock = sock
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sent = self.recvd = 0

    def send(self, kind, meta=None, payload=b""):
        j = json.dumps(meta or {}).encode()
        self.sock.sendall(HDR.pack(kind.encode().ljust(4), len(j), len(payload)) + j)
        if payload:
            self.sock.sendall(payload)
        self.sent += HDR.size + len(j) + len(payload)

    def _exact(self, n):
        buf = bytearray(n)
        mv = memoryview(buf)
        got = 0
        while got < n:
            r = self.sock.recv_into(mv[got:], n - got)
            if r == 0:
                raise ConnectionError("peer closed the connection")
            got += r
        return buf

    def recv(self):
        """(kind, meta, payload bytes)."""
        kind, jl, pl = HDR.unpack(self._exact(HDR.size))
        meta = json.loads(bytes(self._exact(jl))) if jl else {}
        payload = self._exact(pl) if pl else b""
        self.recvd += HDR.size + jl + pl
        return kind.decode().strip(), meta, payload

    def close(self):
        self.sock.close()
