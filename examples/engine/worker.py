"""worker.py - the last pipeline stage: layers [k, n), final norm and head.

Started by the coordinator (engine.py) with one JSON argument (its
settings); connects back to the coordinator over TCP and serves, one at a
time, these messages:
    TURN {tokens, reuse, blocks, scrub, plan, kv}
                                  (scrub: fill the KV with NaN first) keys, Match, agree on the prefix with the
                                  coordinator's `blocks`, start loading
                                  (blocks [c, p): c from plan.split on the
                                  coordinator's rates, load-or-compute);
                                  kv: the KV format of the turn's loads and puts;
                                  answers PFX {blocks: its own count}
    HID  {start: 0, head: true} + hidden states of positions [0, c*T)
                                  the head of a load-or-compute turn; HACK
    HID  {start, logits} + hidden states of positions [start, ..)
                                  runs its layers; answers TOK {token} (+ the
                                  last position's fp32 logits if asked), or
                                  SHORT {blocks} when its load came back
                                  shorter than start (recompute from there)
    END  {tokens, n_kv, first, put}
                                  queues its new full blocks (async put); ENOK
    FLSH                          waits for the async puts; FLOK
    PING                          reconnect to kvcached now; PONG
    STAT                          load figures of the last turn; STOK
    QUIT                          closes and exits
"""
import json
import socket
import sys
import time

import torch

import model as M
import plan
import wire
from shard import Shard


def serve(conn, shard, opts):
    """The message loop of the worker."""
    enc = opts["wire"]
    while True:
        kind, meta, payload = conn.recv()
        if kind == "TURN":
            tokens = meta["tokens"]
            t0 = time.perf_counter()
            if shard.link is not None:
                shard.link.flush(opts.get("flush_ms", 2000))
            if meta.get("scrub"):
                shard.scrub()
            shard.select(meta.get("kv", "native"))
            mine = shard.prepare(tokens, meta.get("kv", "native")) if meta["reuse"] else 0
            p = min(mine, meta["blocks"])
            c = plan.split(p, shard.T, meta.get("plan"), len(tokens))   # the coordinator's c
            if c >= p:
                c = p = 0                  # all computed: one pass over the prompt
            shard.load(p, c)
            conn.send("PFX", {"blocks": mine, "prepare_s": time.perf_counter() - t0})
        elif kind == "HID":
            x = wire.decode(meta["x"], payload, shard.device, shard.cfg.torch_dtype)
            if meta.get("head"):
                shard.run(x, 0, head=True)
                conn.send("HACK")
                continue
            x, short = shard.run(x, meta["start"])
            if short is not None:
                conn.send("SHRT", {"blocks": short})
                continue
            logits = shard.logits(x[-1])
            tok = int(torch.argmax(logits).item())
            body = wire.tbytes(logits.cpu()) if meta.get("logits") else b""
            conn.send("TOK", {"token": tok}, body)
        elif kind == "END":
            got = shard.loaded()
            n = shard.put(meta["tokens"], meta["n_kv"], meta["first"],
                          meta.get("hints", 0)) if meta.get("put", True) else 0
            conn.send("ENOK", {"queued": n, "loaded": got})
        elif kind == "FLSH":
            r = shard.link.flush(meta.get("timeout_ms", -1)) if shard.link else 0
            conn.send("FLOK", {"rc": r})
        elif kind == "PING":
            if shard.link is not None:
                shard.link.ping(fresh=True)
            conn.send("PONG")
        elif kind == "STAT":
            conn.send("STOK", dict(shard.link.last) if shard.link else {})
        elif kind == "QUIT":
            shard.close()
            conn.send("BYE")
            return
        else:
            raise ValueError("worker: unknown message " + kind)


def main():
    opts = json.loads(sys.argv[1])
    torch.set_num_threads(opts.get("threads", 1))
    if str(opts["device"]).startswith("cuda"):
        torch.cuda.set_device(opts["device"])   # its threads' copies and events go there
    cfg = M.Config(**opts["config"])
    host, port = opts["connect"].rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    conn = wire.Conn(sock)
    shard = Shard(cfg, opts["split"], cfg.n_layers, opts["device"], opts.get("weights"),
                  capacity=opts.get("capacity", 4096), servers=opts.get("servers"),
                  tokens_per_block=opts["tokens_per_block"], layers_per_ns=opts.get("layers_per_ns", 0),
                  **dict(opts.get("link", {}), wire=opts["wire"]))
    conn.send("RDY", {"layers": [opts["split"], cfg.n_layers]})
    try:
        serve(conn, shard, opts)
    finally:
        conn.close()


if __name__ == "__main__":
    main()
