#!/usr/bin/env python3
"""test_engine.py - the sharded engine reuses KV through the real kvcached
and stays exact.

Starts kvcached (KC_TEST_DAEMON) on a temporary store, then with a tiny
Llama-style model (4 layers, split 2/2, one namespace per layer, 8 tokens per
block, fp32 on the wire):
  1. exact reuse: three turns of a growing chat; with reuse the generated
     tokens equal those of a reuse-off run and the first token's logits agree
     within 1e-4 relative; turns after the first reuse a prefix.  Both stages'
     KV is filled with NaN before every turn, so a turn can only use what it
     loaded or computed.
  2. missing block: deleting block 2 of one coordinator namespace, then block
     1 of one worker namespace, shortens the reused prefix to 2 and 1 blocks;
     the output is unchanged.
  3. damaged block: with the daemon stopped (its blocks on the device), a
     byte of one worker block's value is flipped in the store file; after the
     restart Match still finds it, the worker's load comes back short, both
     stages recompute from there; the output is unchanged.
  4. fp16 and int8 on the wire: same tokens, logits within 1e-2.
  5. reuse_bit_identical_to_split: a reuse turn against the same split
     computed without the cache (the prefix in one pass, then the rest on
     top of the KV kept in memory): bit-identical logits, in fp32 and in
     bf16 (the check that tells a cache bug from kernel rounding).
  6. load_or_compute: with rates that make the plan compute about half of
     the cached prefix while loading the rest, the output equals the
     reuse-off run, and with a block missing the plan splits the shorter
     prefix; the plan's estimate and its error are kept with the turn, and
     the head and the load enter the rates measured during load-or-compute
     (the planner itself: test_plan.py).
  7. kv_fp8: blocks stored as fp8 (kvfp8.py) live in their own namespaces
     (a native turn does not see them) and give logits close to fp32 KV;
     lc_forced_warmup: a split forced (force_c, the bench's untimed warm-up
     of the path) with fp8 KV computes what it was told and notes no rate.
  8. engine_put_hints_reach_admission: on a store that has been full, a
     turn with done=True (its blocks put with kvcache.HINT_DONE) is refused
     by the default admission (prefix+hint: puts_skipped_total), a plain
     turn is stored.
Exits 77 (skipped) without torch, the daemon or the library, and in
sanitizer builds (KC_ENGINE_SKIP), where ctypes cannot load an ASan library.
"""
import os
import random
import sys
import tempfile
import shutil

if os.environ.get("KC_ENGINE_SKIP"):
    print("skipped: " + os.environ["KC_ENGINE_SKIP"])
    sys.exit(77)
try:
    import numpy as np
    import torch
except ImportError:
    print("skipped: no torch/numpy (apt-get install python3-torch python3-numpy)")
    sys.exit(77)

import checks  # noqa: E402
from checks import check  # noqa: E402
checks.examples_path()
import daemon as D  # noqa: E402
import model as M  # noqa: E402
import plan  # noqa: E402
try:
    from engine import Engine  # noqa: E402  (imports the kvcache binding)
    import kvcache  # noqa: E402
except OSError as e:   # the binding found no libkvcache
    print("skipped: %s" % e)
    sys.exit(77)

T = 8
SEED = int(os.environ.get("KC_TEST_SEED", "11"))
def rel_err(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def same_turn(eng, hist, label, tol, gen=5):
    """A reuse turn and a reuse-off turn over hist: equal tokens, close logits."""
    on = eng.turn(hist, max_new=gen, reuse=True, want_logits=True, scrub=True)
    off = eng.turn(hist, max_new=gen, reuse=False, want_logits=True, scrub=True)
    e = rel_err(on["logits"], off["logits"])
    check(on["generated"] == off["generated"],
          "%s: tokens equal with and without reuse %s" % (label, on["generated"]))
    check(e <= tol, "%s: logits relative error %.2e <= %.0e (reused %d of %d tokens)"
          % (label, e, tol, on["reused_tokens"], on["prompt_tokens"]))
    eng.flush()
    return on


def metric(port, name):
    """A counter of the daemon's /metrics (Prometheus text), summed over lines."""
    import urllib.request
    txt = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10).read().decode()
    return sum(float(l.split()[-1]) for l in txt.splitlines()
               if l.split() and l.split()[0].split("{")[0].endswith(name))


def hints_arrive(bin_, tmp, cfg, wpath, rng):
    """engine_put_hints_reach_admission: with a store that has been full,
    a turn put with done=True (kvcache.HINT_DONE) is refused by the
    admission (puts_skipped_total grows by its blocks), a plain turn is
    stored."""
    d = os.path.join(tmp, "hints")
    os.makedirs(d)
    kd = D.Daemon(bin_, d, device_size="8m", memory_mib=2, slab_size="1m", min_item="4k",
                  extra=["--metrics-port", "0"])
    eng = None
    try:
        kd.start(fresh=True)
        mport = int(open(os.path.join(d, "port")).read().split("metrics=")[1].split()[0])
        c = kvcache.Client(kd.uri, timeout_ms=5000)
        bb = 256 << 10
        ns = c.open_namespace(model="filler", layer_end=1, tokens_per_block=T, dtype="u8",
                              kv_heads=1, head_dim=1, block_bytes=bb)
        filler = np.zeros((4, bb), dtype=np.uint8)
        for i in range(64):          # fill the store until it evicts: "room" is gone
            ks = kvcache.keys(ns, np.arange(i * 4 * T, (i + 1) * 4 * T, dtype=np.uint32), T)
            c.put(ns, ks, filler)
            if c.stats(0).get("evictions", 0):
                break
        evicted = c.stats(0).get("evictions", 0)
        c.close()
        eng = Engine(cfg, 2, weights=wpath, servers=kd.uri, tokens_per_block=T, layers_per_ns=1,
                     wire_enc="fp32", capacity=256)
        before = metric(mport, "puts_skipped_total")
        h = [rng.randrange(1, cfg.vocab) for _ in range(4 * T + 3)]
        eng.turn(h, max_new=1, reuse=True)
        eng.flush()
        plain = metric(mport, "puts_skipped_total") - before
        h = [rng.randrange(1, cfg.vocab) for _ in range(4 * T + 3)]
        eng.turn(h, max_new=1, reuse=True, done=True)
        eng.flush()
        done = metric(mport, "puts_skipped_total") - before - plain
        # 4 blocks in each of the 4 layers' namespaces
        check(evicted > 0 and plain == 0 and done == 16,
              "engine_put_hints_reach_admission: after %d evictions, skipped %d blocks of a plain "
              "turn and %d of a done one (16)" % (evicted, plain, done))
    finally:
        if eng is not None:
            eng.close()
        kd.stop()


def main():
    print("seed %d (KC_TEST_SEED)" % SEED)
    bin_ = os.environ.get("KC_TEST_DAEMON") or D.find_daemon()
    if not bin_ or not os.access(bin_, os.X_OK):
        print("skipped: no kvcached binary (KC_TEST_DAEMON)")
        return 77
    torch.set_num_threads(1)
    tmp = tempfile.mkdtemp(prefix="kc-engine-test-")
    kd = D.Daemon(bin_, tmp, device_size="64m", memory_mib=8, slab_size="1m", min_item="4k")
    eng = None
    try:
        kd.start(fresh=True)
        cfg = M.Config(seed=SEED)
        wpath = os.path.join(tmp, "w.bin")
        M.weights_save(cfg, wpath)
        # chunks of 2 blocks: every load is several GetPrefix calls taken by
        # both fetchers, and a short one (sections 2 and 3) must end the prefix
        eng = Engine(cfg, 2, weights=wpath, servers=kd.uri, tokens_per_block=T, layers_per_ns=1,
                     wire_enc="fp32", capacity=256, link={"chunk_blocks": 2, "fetchers": 2})
        rng = random.Random(SEED)
        hist = [rng.randrange(1, cfg.vocab) for _ in range(37)]

        # 1. exact reuse over a growing chat
        for t in range(3):
            r = same_turn(eng, hist, "turn %d" % t, 1e-4)
            if t > 0:
                check(r["reused_tokens"] >= T * ((len(hist) - 8) // T) - T,
                      "turn %d reuses the history (%d tokens)" % (t, r["reused_tokens"]))
            hist = hist + r["generated"] + [rng.randrange(1, cfg.vocab) for _ in range(11)]
        full = eng.turn(hist, max_new=1, reuse=True)   # what is reusable now
        eng.flush()
        nfull = full["reused_tokens"] // T
        check(nfull >= 8, "history of %d blocks in the cache" % nfull)

        # 2. a missing block in one stage shortens the prefix
        c = kvcache.Client(kd.uri, timeout_ms=2000)
        toks = np.asarray(hist, dtype=np.uint32)
        ns_c = eng.shard.link.ns[1]                         # coordinator, layer 1
        ks = kvcache.keys(ns_c, toks, T)
        check(c.delete(ns_c, ks[2:3]) == 1, "deleted block 2 of the coordinator's layer 1")
        r = same_turn(eng, hist, "coordinator block 2 missing", 1e-4)
        check(r["reused_tokens"] == 2 * T, "reused prefix shortened to 2 blocks (%d tokens)"
              % r["reused_tokens"])
        bb = cfg.kv_bytes_per_token_layer() * T
        ns_w = c.open_namespace(cfg.name, 3, 4, T, cfg.dtype, cfg.n_kv_heads, cfg.head_dim, bb)
        ks_w = kvcache.keys(ns_w, toks, T)
        check(c.delete(ns_w, ks_w[1:2]) == 1, "deleted block 1 of the worker's layer 3")
        r = same_turn(eng, hist, "worker block 1 missing", 1e-4)
        check(r["reused_tokens"] == T, "reused prefix shortened to 1 block (%d tokens)"
              % r["reused_tokens"])
        eng.turn(hist, max_new=1, reuse=True)               # puts the blocks back
        eng.flush()
        check(c.match(ns_w, ks_w) >= nfull, "blocks put back after the turn")

        # 3. a damaged block on the device: a miss, and a recompute from there
        buf = bytearray(bb)
        got = c.get_prefix(ns_w, ks_w[4:5], [buf])
        check(got == 1, "read block 4 of the worker's layer 3")
        c.close()
        kd.stop()                                          # flushes the memory slabs
        with open(kd.store, "r+b") as f:
            data = f.read()
            at = data.find(bytes(buf[:64]))
            check(at >= 0 and data.find(bytes(buf[:64]), at + 1) < 0, "block found once in the store")
            f.seek(at + 100)
            f.write(bytes([data[at + 100] ^ 0xFF]))
        kd.start()
        r = same_turn(eng, hist, "worker block 4 damaged", 1e-4)
        check(r["reused_tokens"] == 4 * T and r["restarts"] >= 1,
              "reused prefix shortened to 4 blocks by the load (%d tokens, %d restarts)"
              % (r["reused_tokens"], r["restarts"]))
        eng.close()
        eng = None

        # 4. fp16 and int8 hidden states on the wire
        for enc in ("fp16", "int8"):
            eng = Engine(cfg, 2, weights=wpath, servers=kd.uri, tokens_per_block=T, layers_per_ns=2,
                         wire_enc=enc, capacity=256)
            h = list(hist[:40])
            for t in range(2):
                r = same_turn(eng, h, "%s wire turn %d" % (enc, t), 1e-2)
                h = h + r["generated"] + [rng.randrange(1, cfg.vocab) for _ in range(9)]
            check(r["reused_tokens"] > 0, "%s wire reused %d tokens" % (enc, r["reused_tokens"]))
            eng.close()
            eng = None

        # 5. reuse against the same split without the cache, fp32 then bf16
        for dtype, enc in (("fp32", "fp32"), ("bf16", "bf16")):
            cfg5 = M.Config(seed=SEED, dtype=dtype)
            eng = Engine(cfg5, 2, weights=wpath if dtype == "fp32" else None, servers=kd.uri,
                         tokens_per_block=T, layers_per_ns=1, wire_enc=enc, capacity=256)
            h = [rng.randrange(1, cfg.vocab) for _ in range(5 * T)]
            eng.turn(h, max_new=1, reuse=True)      # the history's blocks, one pass
            eng.flush()
            h = h + [rng.randrange(1, cfg.vocab) for _ in range(13)]
            on = eng.turn(h, max_new=4, reuse=True, want_logits=True, scrub=True, put=False)
            ref = eng.turn(h, max_new=4, reuse=False, want_logits=True, scrub=True, put=False,
                           split=on["reused_tokens"])
            check(on["reused_tokens"] == 5 * T, "%s: reused %d tokens" % (dtype, on["reused_tokens"]))
            check(np.array_equal(on["logits"], ref["logits"]) and on["generated"] == ref["generated"],
                  "reuse_bit_identical_to_split %s: max abs diff %.1e"
                  % (dtype, float(np.abs(on["logits"] - ref["logits"]).max())))
            eng.close()
            eng = None

        # 6. load or compute: half the prefix computed, half loaded
        eng = Engine(cfg, 2, weights=wpath, servers=kd.uri, tokens_per_block=T, layers_per_ns=1,
                     wire_enc="fp32", capacity=256)
        h = [rng.randrange(1, cfg.vocab) for _ in range(8 * T + 5)]
        eng.turn(h, max_new=1, reuse=True)
        eng.flush()
        r = eng.turn(h, max_new=1, reuse=True, put=False)   # tier "auto": Match's where
        check(r["tier"] == "dram" and r["dram_blocks"] == r["matched_blocks"] == 8,
              "load_or_compute: Match says the %d blocks just put are in DRAM (%d): tier %s"
              % (r["matched_blocks"], r["dram_blocks"], r["tier"]))
        def even():   # rates that make the plan compute half the prefix, load half
            eng.rates = plan.Rates()
            eng.rates.set(prefill=(1000.0, 0.0), loads={"test": (1000.0, 0.0)})
            eng.rates.note_load("test", 1000, 1.0, lc=True)   # as fast beside the head
        even()
        lc = eng.turn(h, max_new=5, reuse=True, want_logits=True, scrub=True, put=False, lc=True,
                      tier="test")
        check(lc["plan"]["mode"] == "both" and lc["plan"]["est_s"] > 0
              and lc["plan_err"] is not None and "ssd" not in eng.rates.summary()
              and eng.rates.summary()["load:test@lc"]["n"] == 2
              and eng.rates.summary()["prefill@lc"]["n"] == 1,
              "load_or_compute: the plan's estimate %.3f s and its error %+.0f%% kept; the head "
              "and the load noted as rates during load-or-compute (%s)"
              % (lc["plan"]["est_s"], 100 * (lc["plan_err"] or 0), sorted(eng.rates.summary())))
        off = eng.turn(h, max_new=5, reuse=False, want_logits=True, scrub=True, put=False)
        check(lc["head_blocks"] == 4 and lc["reused_tokens"] == 8 * T,
              "load_or_compute: computed %d of %d blocks, then loaded to %d tokens"
              % (lc["head_blocks"], lc["matched_blocks"], lc["reused_tokens"]))
        check(lc["generated"] == off["generated"] and rel_err(lc["logits"], off["logits"]) <= 1e-4,
              "load_or_compute: same tokens, logits within 1e-4 (%.1e)"
              % rel_err(lc["logits"], off["logits"]))
        c = kvcache.Client(kd.uri, timeout_ms=2000)
        ks = kvcache.keys(eng.shard.link.ns[0], np.asarray(h, dtype=np.uint32), T)
        check(c.delete(eng.shard.link.ns[0], ks[6:7]) == 1, "deleted block 6 of the coordinator's layer 0")
        c.close()
        even()
        lc = eng.turn(h, max_new=5, reuse=True, want_logits=True, scrub=True, put=False, lc=True,
                      tier="test")
        check(lc["head_blocks"] == 3 and lc["reused_tokens"] == 6 * T and lc["generated"] == off["generated"]
              and rel_err(lc["logits"], off["logits"]) <= 1e-4,
              "load_or_compute with block 6 missing: computed %d of %d blocks, prefix of %d tokens, "
              "same output" % (lc["head_blocks"], lc["matched_blocks"], lc["reused_tokens"]))
        eng.close()
        eng = None
        # 7. fp8 KV: its own namespaces, close logits
        eng = Engine(cfg, 2, weights=wpath, servers=kd.uri, tokens_per_block=T, layers_per_ns=2,
                     wire_enc="fp32", capacity=256, link={"kv_formats": ["native", "fp8"]})
        h = [rng.randrange(1, cfg.vocab) for _ in range(6 * T + 3)]
        eng.turn(h, max_new=1, reuse=True, kv="fp8")          # the history stored as fp8 only
        eng.flush()
        nat = eng.turn(h, max_new=4, reuse=True, want_logits=True, scrub=True, put=False)
        f8 = eng.turn(h, max_new=4, reuse=True, want_logits=True, scrub=True, put=False, kv="fp8")
        link = eng.shard.link
        check(nat["reused_tokens"] == 0 and f8["reused_tokens"] == 6 * T
              and set(link.formats["fp8"][0]).isdisjoint(link.formats["native"][0]),
              "kv_fp8_own_namespaces: fp8 blocks reused (%d tokens), never as native ones (%d)"
              % (f8["reused_tokens"], nat["reused_tokens"]))
        e = rel_err(f8["logits"], nat["logits"])
        check(0 < e <= 5e-2, "kv_fp8: logits relative error vs fp32 KV %.1e (<= 5e-2)" % e)
        # the bench's warm-up of the split path: forced, untimed, out of the rates
        before = {k: list(v) for k, v in eng.rates.samples.items()}
        w = eng.turn(h, max_new=4, reuse=True, want_logits=True, scrub=True, put=False, kv="fp8",
                     lc=True, warmup=True, force_c=2)
        e = rel_err(w["logits"], nat["logits"])
        check(w["head_blocks"] == 2 and w["reused_tokens"] == 6 * T and e <= 5e-2
              and eng.rates.samples == before,
              "lc_forced_warmup: fp8 split at %d of %d blocks, logits vs fp32 KV %.1e, no rate noted"
              % (w["head_blocks"], w["matched_blocks"], e))
        eng.close()
        eng = None

        # 8. hints: a conversation's last turn marks its blocks done; once the
        # store is full, the default admission (prefix+hint) skips them
        hints_arrive(bin_, tmp, cfg, wpath, rng)
    finally:
        if eng is not None:
            eng.close()
        kd.stop()
        if checks.failures or os.environ.get("KC_TEST_KEEP"):
            print("kept %s (daemon log: %s)" % (tmp, kd.log))
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
