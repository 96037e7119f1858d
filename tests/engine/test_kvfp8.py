#!/usr/bin/env python3
"""test_kvfp8.py - fp8 KV blocks (examples/engine/kvfp8.py) encode and
decode e4m3fn exactly, without the daemon.

  1. every finite e4m3fn code decodes to the value the format defines, and
     encoding that value gives the code back;
  2. encoding rounds to the nearest e4m3fn value, ties to even mantissa,
     saturating at +-448 (random values over 7 decades, every midpoint);
  3. pack/unpack: a block comes back within half an e4m3 step of each
     head's scale (relative 1/16 of max|x| per head), all-zero heads stay
     zero, and the block has kvfp8.block_bytes bytes.
Exits 77 (skipped) without torch.
"""
import random
import sys

try:
    import torch
except ImportError:
    print("skipped: no torch (apt-get install python3-torch)")
    sys.exit(77)

import checks  # noqa: E402
from checks import check  # noqa: E402
checks.examples_path()
import kvfp8  # noqa: E402


def value(c):
    """The e4m3fn value of code c from the format's definition (None: NaN)."""
    e, m = (c >> 3) & 15, c & 7
    if e == 15 and m == 7:
        return None
    v = m / 8 * 2.0 ** -6 if e == 0 else (1 + m / 8) * 2.0 ** (e - 7)
    return -v if c & 128 else v


def main():
    codes = [c for c in range(256) if value(c) is not None]
    dec = kvfp8.decode(torch.tensor(codes, dtype=torch.uint8))
    check(all(float(dec[i]) == value(c) for i, c in enumerate(codes)),
          "decode: all %d finite codes" % len(codes))
    enc = kvfp8.encode(torch.tensor([value(c) for c in codes]))
    check(all(int(enc[i]) == c for i, c in enumerate(codes)), "encode(decode(code)) == code")

    pos = sorted({abs(value(c)) for c in codes})
    even = {abs(value(c)) for c in codes if c & 1 == 0}

    def nearest(x):
        a = min(abs(x), kvfp8.MAX)
        d = min(abs(v - a) for v in pos)
        cands = [v for v in pos if abs(v - a) == d]
        v = cands[0] if len(cands) == 1 else [c for c in cands if c in even][0]
        return -v if x < 0 else v

    rng = random.Random(5)
    xs = [rng.gauss(0, 1) * 10 ** rng.uniform(-4, 2.8) for _ in range(5000)]
    xs += [(pos[i] + pos[i + 1]) / 2 for i in range(len(pos) - 1)]
    xs += [-x for x in xs[-40:]] + [460.0, -1e4, 1e-12]
    t = torch.tensor(xs, dtype=torch.float32)
    got = kvfp8.decode(kvfp8.encode(t)).tolist()
    bad = [(x, g) for x, g in zip(t.tolist(), got) if g != nearest(x)]
    check(not bad, "encode rounds to nearest even, saturating (%d values, %d wrong %s)"
          % (len(xs), len(bad), bad[:3]))

    g = torch.Generator().manual_seed(7)
    n, L, T, kvh, hd = 3, 2, 8, 2, 16
    blocks = (torch.randn(n, L, 2, T, kvh, hd, generator=g) *
              torch.rand(n, L, 2, 1, kvh, 1, generator=g) * 50).to(torch.bfloat16)
    blocks[1, 0, 1, :, 1, :] = 0
    buf = kvfp8.pack(blocks)
    back = kvfp8.unpack(buf, L, T, kvh, hd, torch.float32)
    amax = blocks.float().abs().amax(dim=(3, 5), keepdim=True)
    err = ((back - blocks.float()).abs() / amax.clamp(min=1e-30)).nan_to_num(0).max()
    check(tuple(buf.shape) == (n, kvfp8.block_bytes(L, T, kvh, hd)),
          "pack: %d bytes per block" % buf.shape[1])
    check(float(err) <= 1 / 16 and bool((back[1, 0, 1, :, 1, :] == 0).all()),
          "unpack: within 1/16 of each head's max (%.3f), zero heads stay zero" % float(err))
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
