"""kvfp8.py - KV blocks stored as fp8 (e4m3) with a scale per block and head.

A block of a layer group holds K and V of `L` layers for `T` tokens,
[L][K|V][T][kv heads][head dim] in the model's dtype.  Stored as fp8 it is

    codes   [L][K|V][T][kv heads][head dim]   one byte each, e4m3 ("fn":
            4 exponent bits, bias 7, 3 mantissa bits, no infinity, largest
            finite 448)
    scales  [L][K|V][kv heads]                fp32, little-endian

with value = decode(code) * scale and scale = max|x| / 448 over the block's
tokens and head dims of that (layer, K|V, head) (1 where all are 0), so
each head of each block uses the whole e4m3 range: half the bytes of bf16
plus 4 bytes per head.  The namespace descriptor's dtype says "fp8e4m3-bh"
for this layout, so fp8 and bf16 blocks never share a namespace.

Encoding rounds to nearest, ties to even, saturating at +-448.  With
PyTorch's float8_e4m3fn (2.1 and later) the casts are PyTorch's; without it
(Debian's 1.13) encode and decode are done in fp32 arithmetic here, to the
same bits for finite inputs (test_kvfp8 in tests/engine checks both ways on
every code).
"""
import torch

DTYPE = "fp8e4m3-bh"        # the namespace descriptor's dtype of this layout
MAX = 448.0                 # largest finite e4m3fn value
HAVE_FP8 = hasattr(torch, "float8_e4m3fn")


def block_bytes(layers, T, kv_heads, head_dim):
    """Bytes of one fp8 block: the codes, then the scales."""
    return layers * 2 * T * kv_heads * head_dim + layers * 2 * kv_heads * 4


def _round_e4m3(a):
    """|x| values (fp32, finite, <= 448) rounded to the nearest e4m3 value,
    ties to even (torch.round rounds half to even)."""
    _, ex = torch.frexp(a)                       # a = m * 2^ex, m in [0.5, 1)
    e = torch.clamp(ex - 1, min=-6)              # binade; below 2^-6: subnormal step
    q = torch.pow(2.0, (e - 3).float())          # spacing of e4m3 values there
    return torch.round(a / q) * q


def encode_soft(x):
    """e4m3fn codes (uint8) of fp32 x, saturating at +-448, without torch's fp8."""
    x = x.float()
    a = _round_e4m3(torch.clamp(x.abs(), max=MAX))
    _, ex = torch.frexp(a)
    e = ex - 1
    normal = (a >= 2.0 ** -6)
    expf = torch.where(normal, e + 7, torch.zeros_like(e))
    mant = torch.where(normal, a / torch.pow(2.0, e.float()) * 8 - 8, a * 512)
    code = (expf << 3) | mant.round().to(torch.int32)
    code = torch.where(a == 0, torch.zeros_like(code), code)
    code = code | (torch.signbit(x).to(torch.int32) << 7)
    return code.to(torch.uint8)


def decode_soft(code):
    """fp32 values of e4m3fn codes (uint8), without torch's fp8 (no NaN codes expected)."""
    c = code.to(torch.int32)
    expf = (c >> 3) & 15
    mant = (c & 7).float()
    val = torch.where(expf == 0, mant * 2.0 ** -9,
                      (8 + mant) * torch.pow(2.0, (expf - 10).float()))
    return torch.where((c & 128) != 0, -val, val)


def encode(x):
    """e4m3fn codes of x (any float dtype), saturating."""
    if HAVE_FP8:
        return torch.clamp(x.float(), -MAX, MAX).to(torch.float8_e4m3fn).view(torch.uint8)
    return encode_soft(x)


def decode(code):
    """fp32 values of e4m3fn codes."""
    if HAVE_FP8:
        return code.view(torch.float8_e4m3fn).float()
    return decode_soft(code)


def pack(blocks):
    """blocks [n, L, 2, T, kvh, hd] (model dtype, any device) -> uint8
    [n, block_bytes] on the same device: the codes, then the fp32 scales."""
    n, L, two, T, kvh, hd = blocks.shape
    xf = blocks.float()
    amax = xf.abs().amax(dim=(3, 5))                          # [n, L, 2, kvh]
    scale = torch.where(amax > 0, amax / MAX, torch.ones_like(amax))
    codes = encode(xf / scale[:, :, :, None, :, None])
    out = torch.empty((n, block_bytes(L, T, kvh, hd)), dtype=torch.uint8, device=blocks.device)
    nc = L * 2 * T * kvh * hd
    out[:, :nc] = codes.reshape(n, nc)
    out[:, nc:] = scale.contiguous().reshape(n, -1).view(torch.uint8)
    return out


def unpack(buf, L, T, kvh, hd, dtype):
    """uint8 [n, block_bytes] -> [n, L, 2, T, kvh, hd] in dtype, on buf's device."""
    n = buf.shape[0]
    nc = L * 2 * T * kvh * hd
    codes = buf[:, :nc].reshape(n, L, 2, T, kvh, hd)
    scale = buf[:, nc:].contiguous().view(torch.float32).reshape(n, L, 2, 1, kvh, 1)
    return (decode(codes) * scale).to(dtype)
