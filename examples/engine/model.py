"""model.py - a Llama-style decoder in plain PyTorch, cut into layer ranges.

RMSNorm, rotary position embeddings, grouped-query attention and a SwiGLU
MLP, as in Llama 3.  A shard owns a contiguous range of layers and optionally
the embedding (first shard) or the final norm and head (last shard), so the
coordinator and the worker each load only their part.

Weights come from a fixed seed.  They are either written once to a raw file
(weights_save) and memory-mapped by each process (weights_load: numpy.memmap,
no copy; a shard touches only the pages of its own tensors), or generated
directly on the device from the same seed (random_weights), which is what the
GPU benchmark uses for an 8B-shaped model: 16 GB of random numbers are not
worth writing to a disk.

File format (little-endian):
    8 bytes  magic "KVCWGT01"
    8 bytes  u64 length of the JSON header
    JSON     {"config": {...}, "tensors": {name: {"dtype", "shape", "offset"}}}
    data     each tensor at its offset, a multiple of 4096 from the file start
bf16 tensors are stored as their raw 16-bit patterns (numpy has no bf16).
"""
import json
import math
import os
import struct
import warnings
import zlib
from dataclasses import asdict, dataclass

import torch

try:  # only the weight file needs numpy (memmap); the GPU machine may lack it
    import numpy as np
except ImportError:
    np = None
import torch.nn.functional as F

MAGIC = b"KVCWGT01"
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
NP_STORE = {"fp32": "float32", "bf16": "int16", "fp16": "float16"}


@dataclass
class Config:
    """Shape of the model (defaults: a tiny model for CPU tests)."""
    name: str = "tiny-llama"  # model name, part of the kvcached namespace
    vocab: int = 512          # vocabulary size
    dim: int = 64             # hidden size
    n_layers: int = 4         # decoder layers
    n_heads: int = 4          # query heads
    n_kv_heads: int = 2       # key/value heads (GQA: n_heads % n_kv_heads == 0)
    ffn_dim: int = 128        # SwiGLU inner size
    rope_theta: float = 500000.0
    norm_eps: float = 1e-5
    dtype: str = "fp32"       # fp32 | bf16 | fp16
    seed: int = 1234          # weights come from this seed

    @property
    def head_dim(self):
        return self.dim // self.n_heads

    @property
    def torch_dtype(self):
        return DTYPES[self.dtype]

    def kv_bytes_per_token_layer(self):
        """Bytes of K and V of one token in one layer."""
        return 2 * self.n_kv_heads * self.head_dim * torch.tensor([], dtype=self.torch_dtype).element_size()


LLAMA3_8B = Config(name="llama3-8b-shape", vocab=128256, dim=4096, n_layers=32, n_heads=32,
                   n_kv_heads=8, ffn_dim=14336, dtype="bf16")


def tensor_shapes(cfg):
    """Every weight of the model: name -> shape, in file order."""
    hd = cfg.head_dim
    shapes = {"embed": (cfg.vocab, cfg.dim)}
    for i in range(cfg.n_layers):
        p = "layers.%d." % i
        shapes[p + "attn_norm"] = (cfg.dim,)
        shapes[p + "wq"] = (cfg.n_heads * hd, cfg.dim)
        shapes[p + "wk"] = (cfg.n_kv_heads * hd, cfg.dim)
        shapes[p + "wv"] = (cfg.n_kv_heads * hd, cfg.dim)
        shapes[p + "wo"] = (cfg.dim, cfg.n_heads * hd)
        shapes[p + "ffn_norm"] = (cfg.dim,)
        shapes[p + "w1"] = (cfg.ffn_dim, cfg.dim)
        shapes[p + "w3"] = (cfg.ffn_dim, cfg.dim)
        shapes[p + "w2"] = (cfg.dim, cfg.ffn_dim)
    shapes["norm"] = (cfg.dim,)
    shapes["head"] = (cfg.vocab, cfg.dim)
    return shapes


def init_tensor(cfg, name, shape, device="cpu"):
    """The seeded value of one weight, in fp32: norms are ones, matrices are
    N(0, 1/fan_in) (embedding N(0, 1)), each from its own generator seeded by
    (seed, crc32(name)), so any subset can be made alone and in any order."""
    if name.endswith("norm"):
        return torch.ones(shape, device=device)
    g = torch.Generator(device=device)
    g.manual_seed(cfg.seed * 1000003 + zlib.crc32(name.encode()))
    t = torch.randn(shape, generator=g, device=device)
    if name != "embed":
        t.mul_(1.0 / math.sqrt(shape[-1]))
    return t


def weights_save(cfg, path):
    """Write the seeded weights of cfg to path (see the format above)."""
    shapes = tensor_shapes(cfg)
    esize = np.dtype(NP_STORE[cfg.dtype]).itemsize
    meta, off = {}, 0
    for n, s in shapes.items():
        meta[n] = {"dtype": cfg.dtype, "shape": list(s), "offset": off}
        off += (int(np.prod(s)) * esize + 4095) // 4096 * 4096
    header = json.dumps({"config": asdict(cfg), "tensors": meta}).encode()
    base = (16 + len(header) + 4095) // 4096 * 4096
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(MAGIC + struct.pack("<Q", len(header)) + header)
        for n, s in shapes.items():
            t = init_tensor(cfg, n, s).to(cfg.torch_dtype)
            if cfg.dtype == "bf16":
                t = t.view(torch.int16)
            f.seek(base + meta[n]["offset"])
            f.write(t.numpy().tobytes())
        f.truncate(base + off)
    os.replace(tmp, path)


class WeightFile:
    """A memory-mapped weight file: tensors are views of the mapping, so
    opening costs nothing and only the pages a shard uses are ever read."""

    def __init__(self, path):
        with open(path, "rb") as f:
            head = f.read(16)
            if head[:8] != MAGIC:
                raise ValueError("%s: not a weight file (magic)" % path)
            (hlen,) = struct.unpack("<Q", head[8:16])
            j = json.loads(f.read(hlen))
        self.config = Config(**j["config"])
        self.meta = j["tensors"]
        self.base = (16 + hlen + 4095) // 4096 * 4096
        self.map = np.memmap(path, dtype=np.uint8, mode="r")

    def get(self, name):
        """The tensor `name`, a read-only view of the mapping."""
        m = self.meta[name]
        npdt = np.dtype(NP_STORE[m["dtype"]])
        n = int(np.prod(m["shape"]))
        start = self.base + m["offset"]
        arr = self.map[start:start + n * npdt.itemsize].view(npdt).reshape(m["shape"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # read-only arrays: we never write them
            t = torch.from_numpy(arr)
        if m["dtype"] == "bf16":
            t = t.view(torch.bfloat16)
        return t


class Weights:
    """The tensors a shard needs, on its device: from a WeightFile or made
    from the seed on the device (source None)."""

    def __init__(self, cfg, names, device, source=None):
        self.t = {}
        shapes = tensor_shapes(cfg)
        for n in names:
            if source is not None:
                w = source.get(n)
            else:
                w = init_tensor(cfg, n, shapes[n], device=device).to(cfg.torch_dtype)
            self.t[n] = w.to(device)  # a no-op for the CPU mapping: weights stay mapped

    def __getitem__(self, n):
        return self.t[n]


def shard_names(cfg, layer_begin, layer_end, first, last):
    """Names of the weights of a shard."""
    names = ["embed"] if first else []
    for i in range(layer_begin, layer_end):
        names += [n for n in tensor_shapes(cfg) if n.startswith("layers.%d." % i)]
    if last:
        names += ["norm", "head"]
    return names


def rms_norm(x, w, eps):
    """RMSNorm computed in fp32, returned in x's dtype."""
    xf = x.float()
    xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return (xf * w.float()).to(x.dtype)


class Rope:
    """Rotary embeddings: cos/sin tables for positions [0, max_len), grown on demand."""

    def __init__(self, cfg, device):
        self.cfg, self.device = cfg, device
        self.max_len = 0
        self.grow(4096)

    def grow(self, n):
        if n <= self.max_len:
            return
        n = max(n, 2 * self.max_len)
        hd = self.cfg.head_dim
        inv = 1.0 / (self.cfg.rope_theta ** (torch.arange(0, hd, 2, device=self.device).float() / hd))
        ang = torch.outer(torch.arange(n, device=self.device).float(), inv)
        self.cos, self.sin = ang.cos(), ang.sin()
        self.max_len = n

    def apply(self, x, start):
        """Rotate x [S, heads, hd] at positions start.. (pairs are (i, i + hd/2))."""
        S = x.shape[0]
        self.grow(start + S)
        c = self.cos[start:start + S, None, :]
        s = self.sin[start:start + S, None, :]
        xf = x.float()
        x1, x2 = xf.chunk(2, dim=-1)
        return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], dim=-1).to(x.dtype)


HAVE_SDPA = hasattr(F, "scaled_dot_product_attention")


def attention(q, k, v, start, chunk=1024):
    """Causal attention of queries at positions [start, start+S) over keys
    [0, start+S).  q [S, H, hd]; k, v [start+S, KVH, hd].  On CUDA with
    PyTorch 2, scaled_dot_product_attention (flash for a plain causal
    prefill); otherwise an explicit softmax over query chunks in fp32."""
    S, H, hd = q.shape
    T, KVH, _ = k.shape
    rep = H // KVH
    if q.is_cuda and HAVE_SDPA:
        # contiguous [1, H, S, hd]: the flash kernel takes it at any length
        qh = q.transpose(0, 1).contiguous().unsqueeze(0)
        kh = k.repeat_interleave(rep, dim=1).transpose(0, 1).contiguous().unsqueeze(0)
        vh = v.repeat_interleave(rep, dim=1).transpose(0, 1).contiguous().unsqueeze(0)
        if start == 0:
            o = F.scaled_dot_product_attention(qh, kh, vh, is_causal=S > 1)
        elif S == 1:
            o = F.scaled_dot_product_attention(qh, kh, vh)
        else:
            outs = []
            for a in range(0, S, chunk):
                b = min(S, a + chunk)
                qpos = torch.arange(start + a, start + b, device=q.device)
                mask = torch.arange(start + b, device=q.device)[None, :] <= qpos[:, None]
                outs.append(F.scaled_dot_product_attention(
                    qh[:, :, a:b], kh[:, :, :start + b], vh[:, :, :start + b], attn_mask=mask))
            o = torch.cat(outs, dim=2)
        return o[0].transpose(0, 1).reshape(S, H * hd)
    scale = 1.0 / math.sqrt(hd)
    out = torch.empty(S, H, hd, dtype=q.dtype, device=q.device)
    for a in range(0, S, chunk):
        b = min(S, a + chunk)
        qc = q[a:b].float().view(b - a, KVH, rep, hd).permute(1, 2, 0, 3)  # [KVH, rep, c, hd]
        kc = k[:start + b].float().permute(1, 2, 0)                          # [KVH, hd, T']
        vc = v[:start + b].float().permute(1, 0, 2)                          # [KVH, T', hd]
        s = torch.matmul(qc, kc.unsqueeze(1)) * scale                        # [KVH, rep, c, T']
        if b - a > 1:  # a single query sees every key up to itself
            qpos = torch.arange(start + a, start + b, device=q.device)
            mask = torch.arange(start + b, device=q.device)[None, :] > qpos[:, None]
            s.masked_fill_(mask, float("-inf"))
        p = torch.softmax(s, dim=-1)
        o = torch.matmul(p, vc.unsqueeze(1))                                 # [KVH, rep, c, hd]
        out[a:b] = o.permute(2, 0, 1, 3).reshape(b - a, H, hd).to(q.dtype)
    return out.reshape(S, H * hd)


class KVCache:
    """K and V of a range of layers: per layer [capacity, KVH, hd] tensors,
    one slot per position.  Loading a cached prefix writes slots [0, p);
    prefill and decode write the slots of the positions they compute."""

    def __init__(self, cfg, layers, capacity, device):
        self.cfg, self.layers, self.device = cfg, list(layers), device
        self.capacity = 0
        self.k, self.v = {}, {}
        self.reserve(capacity)

    def reserve(self, n):
        """Make room for n positions, keeping what is there."""
        if n <= self.capacity:
            return
        n = max(n, self.capacity * 2)
        shape = (n, self.cfg.n_kv_heads, self.cfg.head_dim)
        for l in self.layers:
            nk = torch.zeros(shape, dtype=self.cfg.torch_dtype, device=self.device)
            nv = torch.zeros(shape, dtype=self.cfg.torch_dtype, device=self.device)
            if self.capacity:
                nk[:self.capacity] = self.k[l]
                nv[:self.capacity] = self.v[l]
            self.k[l], self.v[l] = nk, nv
        self.capacity = n


def layer_forward(cfg, w, l, x, kv, start, rope):
    """One decoder layer on hidden states x [S, dim] at positions start..,
    writing the layer's K and V for those positions into kv."""
    p = "layers.%d." % l
    S = x.shape[0]
    hd = cfg.head_dim
    h = rms_norm(x, w[p + "attn_norm"], cfg.norm_eps)
    q = (h @ w[p + "wq"].t()).view(S, cfg.n_heads, hd)
    k = (h @ w[p + "wk"].t()).view(S, cfg.n_kv_heads, hd)
    v = (h @ w[p + "wv"].t()).view(S, cfg.n_kv_heads, hd)
    q, k = rope.apply(q, start), rope.apply(k, start)
    kv.k[l][start:start + S] = k
    kv.v[l][start:start + S] = v
    a = attention(q, kv.k[l][:start + S], kv.v[l][:start + S], start)
    x = x + a @ w[p + "wo"].t()
    h = rms_norm(x, w[p + "ffn_norm"], cfg.norm_eps)
    x = x + (F.silu(h @ w[p + "w1"].t()) * (h @ w[p + "w3"].t())) @ w[p + "w2"].t()
    return x


def embed(cfg, w, tokens, device):
    """Hidden states of token ids (a list)."""
    return w["embed"][torch.tensor(tokens, dtype=torch.long, device=w["embed"].device)].to(device)


def head(cfg, w, x_last):
    """Logits (fp32) of the last position's hidden state [dim]."""
    h = rms_norm(x_last[None, :], w["norm"], cfg.norm_eps)
    return (h @ w["head"].t()).float()[0]
