"""engine.py - the coordinator: embedding and layers [0, k), and the turn.

Engine starts the worker process (worker.py: layers [k, n), norm, head),
which connects back over TCP.  Engine.turn() runs one chat turn:

  1. both stages compute the prefix-chain keys of the prompt's full blocks in
     their own namespaces and ask kvcached how many leading blocks it holds;
     the usable prefix p is the shorter answer (the coordinator sends its
     count with the tokens, the worker answers with its own; both take the
     minimum, so both know p after one round trip);
  2. each stage loads its p blocks in a loader thread, group of layers after
     group, while the coordinator embeds and computes the positions
     [p*T, len) (each group waits for its own load only);
  3. hidden states go to the worker (fp16 by default, see wire.py), which
     finishes the prefill and sends back the sampled token (greedy);
     a stage whose load came back short (evicted or damaged block) makes
     both recompute from the shorter prefix;
  4. decode: one token at a time through both stages;
  5. after the turn each stage queues its new full blocks with the
     asynchronous put; the next turn's first step waits for that queue
     (standing in for the user's think time), outside the timed part.

TTFT is measured from the start of step 1 to the first token at the
coordinator.
"""
import json
import os
import socket
import subprocess
import sys
import time

import torch

try:
    import numpy as np
except ImportError:
    np = None

import model as M
import plan
import wire
from shard import Shard, kvcache   # the binding of this checkout

HERE = os.path.dirname(os.path.abspath(__file__))


def sync(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize(device)


class Engine:
    """Coordinator of a two-stage pipeline (this process + a worker process)."""

    def __init__(self, cfg, split, weights=None, servers=None, tokens_per_block=16, layers_per_ns=0,
                 device="cpu", wire_enc="fp16", capacity=4096, link=None, threads=1,
                 worker_device=None, python=None, worker_timeout_s=600):
        wire.check_encoding(wire_enc)
        self.cfg, self.split, self.device, self.enc = cfg, split, device, wire_enc
        self.T = tokens_per_block
        self.rates = plan.Rates()   # prefill and load rates, for load-or-compute
        self.turns = 0              # turns run (the first is a warm-up: never in the rates)
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(1)
        lsock.settimeout(worker_timeout_s)
        opts = {"config": cfg.__dict__, "split": split, "weights": weights, "servers": servers,
                "tokens_per_block": tokens_per_block, "layers_per_ns": layers_per_ns,
                "device": worker_device or device, "wire": wire_enc, "capacity": capacity,
                "link": link or {}, "threads": threads,
                "connect": "127.0.0.1:%d" % lsock.getsockname()[1]}
        env = dict(os.environ)
        env["PYTHONPATH"] = HERE + os.pathsep + env.get("PYTHONPATH", "")
        self.proc = subprocess.Popen([python or sys.executable, os.path.join(HERE, "worker.py"),
                                      json.dumps(opts)], env=env)
        # build our shard while the worker builds its own
        self.shard = Shard(cfg, 0, split, device, weights, capacity=capacity, servers=servers,
                           tokens_per_block=tokens_per_block, layers_per_ns=layers_per_ns, **(link or {}))
        try:
            s, _ = lsock.accept()
        except socket.timeout:
            self.proc.kill()
            raise RuntimeError("worker did not connect")
        finally:
            lsock.close()
        self.conn = wire.Conn(s)
        kind, meta, _ = self.conn.recv()
        assert kind == "RDY", kind

    def _worker_step(self, x, start, want_logits):
        """Send hidden states to the worker: ('TOK', token, logits) or ('SHRT', blocks)."""
        meta, body = wire.encode(x, self.enc)
        self.conn.send("HID", {"start": start, "x": meta, "logits": want_logits}, body)
        kind, m, payload = self.conn.recv()
        if kind == "SHRT":
            return "SHRT", m["blocks"], None
        logits = None
        if payload:
            logits = torch.frombuffer(bytearray(payload), dtype=torch.float32)
            logits = logits.numpy() if np is not None else logits
        return "TOK", m["token"], logits

    def turn(self, tokens, max_new=8, reuse=True, want_logits=False, scrub=False, put=True,
             split=None, lc=False, tier="auto", kv="native", warmup=False, done=False,
             force_c=None):
        """One chat turn over the whole history `tokens` (a list of ints).
        Returns a dict: generated tokens, reused tokens, ttft_s, total_s, the
        first token's logits (if asked), load figures of both stages.
        scrub fills both stages' KV with NaN first (tests: nothing stale is used);
        put=False leaves the cache as it was (benchmark repetitions).
        split=s (with reuse=False): the reference of a reuse turn without the
        cache: positions [0, s) in one pass, then [s, n) on top of the KV kept
        in memory, as a reuse turn of s tokens computes them.
        lc=True: load or compute (plan.py): of the p cached blocks, compute
        the first c from position 0 while loading the rest, c planned from
        the rates measured for `tier` ("dram", "ssd", ...; "auto": "dram"
        when Match says every block the coordinator found is in kvcached's
        DRAM, else "ssd", with "-fp8" for fp8 KV).
        kv: the KV format loaded and stored this turn, "native" (the model's
        dtype) or "fp8" (kvfp8.py; the engine's link must open it:
        link={"kv_formats": ("native", "fp8")}).
        force_c=c (with lc=True): split at c whatever the rates say (the
        untimed warm-up of the load-or-compute path, with warmup=True).
        warmup=True: its times never enter the rates (first kernels of a new
        shape, allocator growth); an engine's first turn is one anyway.
        done=True: the conversation ends with this turn: its blocks are put
        with kvcache.HINT_DONE (no later request extends the chain), so a
        full cache's admission need not keep them.
        The result's "plan" is plan.choose()'s answer (est_s: the TTFT it
        estimated, None without rates) and "plan_err" the error of that
        estimate, ttft / est_s - 1."""
        tokens = list(tokens)
        T, n = self.T, len(tokens)
        link = self.shard.link
        if link is not None:
            link.flush(2000)       # last turn's puts (the user's think time)
        if scrub:
            self.shard.scrub()
        sync(self.device)
        t0 = time.perf_counter()
        self.shard.select(kv)
        mine = self.shard.prepare(tokens, kv) if reuse else 0
        dram = link.last.get("dram_blocks", 0) if link is not None and reuse else 0
        if tier == "auto":
            tier = ("dram" if dram >= mine else "ssd") + ("-fp8" if kv == "fp8" else "")
        params = self.rates.params(tier, mine * T) if reuse and lc else None
        if params is not None and force_c is not None:
            params["force_c"] = force_c
        self.conn.send("TURN", {"tokens": tokens, "reuse": bool(reuse), "blocks": mine,
                                "scrub": bool(scrub), "plan": params, "kv": kv})
        kind, m, _ = self.conn.recv()
        assert kind == "PFX", kind
        p = min(mine, m["blocks"])
        choice = plan.choose(p, T, params, n)
        c = choice["c"]                # the worker computes the same c
        if params is not None and not warmup and self.turns and p > 0:
            self.rates.planned(choice["mode"])
        if c >= p:
            c = p = 0                  # all computed: one pass over the prompt
        t_agree = time.perf_counter() - t0
        self.shard.load(p, c)
        start, restarts, t_head = p * T, 0, 0.0
        if c or (split and p == 0):
            # the leading part from position 0, its KV kept for what follows
            th = time.perf_counter()
            head = c * T if c else min(split, n - 1)
            x, _ = self.shard.run(self.shard.embed(tokens[:head]), 0, head=bool(c))
            meta, body = wire.encode(x, self.enc)
            self.conn.send("HID", {"start": 0, "x": meta, "logits": False, "head": bool(c)}, body)
            kind, _, _ = self.conn.recv()
            assert kind in ("HACK", "TOK"), kind
            t_head = time.perf_counter() - th
            if not c:
                start = head
        while True:
            x, short = self.shard.run(self.shard.embed(tokens[start:]), start)
            if short is not None:
                start, restarts = short * T, restarts + 1
                continue
            kind, val, logits = self._worker_step(x, start, want_logits)
            if kind == "SHRT":
                start, restarts = min(start, val * T), restarts + 1
                continue
            break
        first = val
        ttft = time.perf_counter() - t0
        gen = [first]
        pos = n
        while len(gen) < max_new:
            x, _ = self.shard.run(self.shard.embed([gen[-1]]), pos)
            _, tok, _ = self._worker_step(x, pos, False)
            gen.append(tok)
            pos += 1
        total = time.perf_counter() - t0
        # positions with KV: the prompt and every generated token but the last
        n_kv = n + len(gen) - 1
        history = tokens + gen
        reused = start // T
        self.shard.loaded()
        hints = kvcache.HINT_DONE if done else 0
        self.conn.send("END", {"tokens": history[:n_kv], "n_kv": n_kv, "first": reused, "put": put,
                               "hints": hints})
        if put:
            self.shard.put(history, n_kv, reused, hints)
        self.conn.recv()
        out = {"generated": gen, "prompt_tokens": n, "reused_tokens": start, "matched_blocks": p,
               "restarts": restarts, "ttft_s": ttft, "total_s": total, "agree_s": t_agree,
               "logits": logits, "coord_load": dict(link.last) if link else {},
               "head_blocks": c, "head_s": t_head, "plan": dict(choice, params=params),
               "tier": tier, "dram_blocks": min(dram, p),
               "plan_err": ttft / choice["est_s"] - 1 if choice.get("est_s") else None}
        self.conn.send("STAT")
        out["worker_load"] = self.conn.recv()[1]
        if not warmup and self.turns:
            self._note_rates(out, n, tier, split)
        self.turns += 1
        return out

    def _note_rates(self, r, n, tier, split):
        """Feed the turn's prefill and load times to the load-or-compute
        rates: a whole prefill and a plain load as such, the head pass and
        the load of a load-or-compute turn as rates "during load-or-compute"
        (they ran beside each other)."""
        lc = bool(r["head_blocks"])
        if r["reused_tokens"] == 0 and not split and not r["restarts"]:
            self.rates.note_prefill(n, r["ttft_s"])          # a whole prefill
        elif lc:
            self.rates.note_prefill(r["head_blocks"] * self.T, r["head_s"], lc=True)
        c, w = r["coord_load"], r["worker_load"]
        blocks = min(c.get("load_blocks", 0), w.get("load_blocks", 0))
        s = max(c.get("load_s", 0.0), w.get("load_s", 0.0))
        if blocks and not r["restarts"] and "load_error" not in c and "load_error" not in w:
            self.rates.note_load(tier, blocks * self.T, s, lc=lc)

    def flush(self, timeout_ms=-1):
        """Wait for both stages' queued puts."""
        if self.shard.link is not None:
            self.shard.link.flush(timeout_ms)
        self.conn.send("FLSH", {"timeout_ms": timeout_ms})
        self.conn.recv()

    def ping(self):
        """Make both stages reconnect to kvcached now (after a restart), at
        once (new handles on the shared-memory path, see CacheLink.ping)."""
        self.conn.send("PING")
        if self.shard.link is not None:
            self.shard.link.ping(fresh=True)
        self.conn.recv()

    def close(self):
        try:
            self.conn.send("QUIT")
            self.conn.recv()
        except (OSError, ConnectionError):
            pass
        self.conn.close()
        self.shard.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
