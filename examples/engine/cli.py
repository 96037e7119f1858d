"""cli.py - the command-line options the chat driver and the benchmarks share:
model shape, weights, pipeline split, kvcached (a running one, or one started
on a temporary store), block geometry, wire encoding, device."""
import argparse
import os
import shutil
import tempfile

import model as M
import daemon as D
from engine import Engine

PRESETS = {
    "tiny": M.Config(),
    "small": M.Config(name="small-llama", vocab=2048, dim=256, n_layers=8, n_heads=8, n_kv_heads=2,
                      ffn_dim=768),
    "llama3-8b": M.LLAMA3_8B,
}


def add_args(ap):
    g = ap.add_argument_group("model")
    g.add_argument("--model", default="small", choices=sorted(PRESETS), help="shape preset")
    for f in ("vocab", "dim", "n_layers", "n_heads", "n_kv_heads", "ffn_dim"):
        g.add_argument("--" + f.replace("_", "-"), type=int, help="override the preset's " + f)
    g.add_argument("--dtype", choices=sorted(M.DTYPES), help="override the preset's dtype")
    g.add_argument("--weights", help="weight file (written from the seed if absent); "
                   "'random' makes the weights on the device from the seed, no file")
    g.add_argument("--split", type=int, help="first layer of the worker (default n_layers/2)")
    g.add_argument("--device", default="cpu")
    g.add_argument("--worker-device", help="the worker's device (default: --device)")
    g.add_argument("--threads", type=int, default=1, help="torch threads per process")
    g.add_argument("--wire", default="fp16", help="hidden states on the wire: fp32 fp16 bf16 fp8 int8")
    k = ap.add_argument_group("kvcached")
    k.add_argument("--servers", help="kvcached URIs (default: start one on a temporary store)")
    k.add_argument("--daemon-dir", help="where to start kvcached (default: a new temp dir)")
    k.add_argument("--daemon-size", default="1g", help="its device size")
    k.add_argument("--daemon-mem", type=int, default=256, help="its DRAM in MiB")
    k.add_argument("--daemon-slab", help="its slab size (default: 32m for blocks of 256 KiB and up, "
                   "else about 4 blocks)")
    k.add_argument("--tokens-per-block", type=int, default=16)
    k.add_argument("--layers-per-ns", type=int, default=0,
                   help="layers per namespace (0: the whole shard); smaller overlaps load and compute")
    k.add_argument("--chunk-blocks", type=int, default=64, help="blocks per GetPrefix call")
    k.add_argument("--kv-fp8", action="store_true",
                   help="also open fp8 KV namespaces (kvfp8.py), for turns with kv='fp8'")
    return ap


def config(a):
    cfg = M.Config(**PRESETS[a.model].__dict__)
    for f in ("vocab", "dim", "n_layers", "n_heads", "n_kv_heads", "ffn_dim", "dtype"):
        if getattr(a, f, None) is not None:
            setattr(cfg, f, getattr(a, f))
    return cfg


class Setup:
    """The daemon (if we start it) and the weights file for a run."""

    def __init__(self, a, cfg):
        self.a, self.cfg, self.kd, self.tmp = a, cfg, None, None
        if a.daemon_dir is None or a.weights is None:
            self.tmp = tempfile.mkdtemp(prefix="kc-engine-")
        self.weights = a.weights
        if self.weights is None:
            self.weights = os.path.join(self.tmp, "%s.weights" % cfg.name)
        if self.weights == "random":
            self.weights = None
        elif not os.path.exists(self.weights):
            M.weights_save(cfg, self.weights)
        self.servers = a.servers
        if not self.servers:
            ddir = a.daemon_dir or self.tmp
            os.makedirs(ddir, exist_ok=True)
            bb = cfg.kv_bytes_per_token_layer() * a.tokens_per_block * \
                (a.layers_per_ns or cfg.n_layers // 2)
            slab = "%dm" % max(4, (4 * bb + (1 << 20) - 1) >> 20)
            if bb >= 256 << 10:
                slab = "32m"
            self.kd = D.Daemon(D.find_daemon(), ddir, device_size=a.daemon_size,
                               memory_mib=a.daemon_mem, slab_size=a.daemon_slab or slab,
                               min_item="%dk" % max(4, bb // 1024)).start(fresh=True)
            self.servers = self.kd.uri

    def engine(self, servers=True, capacity=4096):
        a, cfg = self.a, self.cfg
        return Engine(cfg, a.split or cfg.n_layers // 2, weights=self.weights,
                      servers=self.servers if servers else None,
                      tokens_per_block=a.tokens_per_block, layers_per_ns=a.layers_per_ns,
                      device=a.device, wire_enc=a.wire, capacity=capacity, threads=a.threads,
                      worker_device=a.worker_device,
                      link={"chunk_blocks": a.chunk_blocks,
                            "kv_formats": ["native", "fp8"] if a.kv_fp8 else ["native"],
                            "prealloc_blocks": capacity // a.tokens_per_block
                            if a.device.startswith("cuda") else 0})

    def close(self):
        if self.kd is not None:
            self.kd.stop()
        if self.tmp and not os.environ.get("KC_TEST_KEEP"):
            shutil.rmtree(self.tmp, ignore_errors=True)
