#!/usr/bin/env python3
"""test_plan.py - the load-or-compute planner (examples/engine/plan.py), no
daemon, no torch: synthetic rates and turns.

  1. plan_never_worse_than_pure: over a grid of rates, fixed costs, prefix
     and prompt lengths, the plan's estimate is never above the better pure
     choice, and a split is taken only when it is estimated MARGIN faster.
  2. plan_lc_within_5pct_in_a_simulated_run: turns of a simulated engine
     (true rates, noise of +-5%, a load that runs 25% slower beside a head
     pass, a first turn per history 10x slower: a warm-up, one prefill of
     256 tokens before) fed to Rates as the engine and bench.py feed them: after the first turns at each history length the chosen
     plan's true time is within 5% of the faster pure choice, or better.
  3. plan_warmup_excluded: a 15x slow sample among normal ones moves the
     fitted rate by less than 5%, at one size and at several; the fixed cost
     of a pass is found from samples of two sizes.
  4. plan_replans_when_load_slows_during_lc: loads alone at L, then a
     load-or-compute turn whose load ran at 0.6 L: the next plan computes
     more blocks, and under the slower rate its two halves end within 5%.
  5. plan_one_slow_lc_sample_ignored: one head pass 4.5x slower than the
     prefill rate (the H200 run's first split) leaves the next plan as it
     was; only LC_MIN such samples of comparable size change it.
  6. plan_explores_after_pure_run: with @lc rates that make a split look
     a little worse than pure, EXPLORE_EVERY pure plans in a row are
     followed by a split, and the counter starts again after it.
  7. plan_fixed_cost_fitted_near_the_size: a fixed cost that loads of 16k
     and 32k tokens show is not carried to a 1k prefix.
"""
import random
import sys

import checks  # noqa: E402
from checks import check  # noqa: E402
checks.examples_path()
import plan  # noqa: E402

T = 32


def est(p, n, c, P, oc, L, ol, P2=None, L2=None, ol2=None):
    """True TTFT of a plan c (blocks computed of p) under the given rates."""
    P2, L2 = P2 or P, L2 or L
    ol2 = ol if ol2 is None else ol2
    if c >= p:
        return oc + n / P
    rest = oc + (n - p * T) / P
    head = oc + c * T / P2 if c else 0.0
    tail = (ol2 if c else ol) + (p - c) * T / (L2 if c else L)
    return max(head, tail) + rest


def never_worse():
    worst, bad_margin = 0.0, 0
    for P in (3e3, 16e3, 60e3):
        for L in (2e3, 14e3, 400e3):
            for oc in (0.0, 0.01, 0.1):
                for ol in (0.0, 0.02, 0.3):
                    for p in (1, 2, 7, 32, 128, 1024):
                        for extra in (1, 64, 4096):
                            n = p * T + extra
                            prm = {"prefill_tok_s": P, "prefill_fixed_s": oc, "load_tok_s": L,
                                   "load_fixed_s": ol}
                            ch = plan.choose(p, T, prm, n)
                            pure = min(ch["est_compute_s"], ch["est_load_s"])
                            true = est(p, n, ch["c"], P, oc, L, ol)
                            worst = max(worst, true / pure)
                            if ch["mode"] == "both" and ch["est_s"] >= plan.MARGIN * pure:
                                bad_margin += 1
    check(worst <= 1.0 + 1e-9 and bad_margin == 0 and plan.split(10, T, None) == 0,
          "plan_never_worse_than_pure: worst plan / better pure %.3f, splits inside the margin %d"
          % (worst, bad_margin))


def simulated_run():
    """The bench's sequence (recompute, load, load-or-compute per history),
    with the engine's rules for what enters the rates."""
    rng = random.Random(5)
    P, oc, L, ol, slow = 16500.0, 0.012, 14000.0, 0.03, 0.75   # load 25% slower during LC

    def noisy(x):
        return x * rng.uniform(0.95, 1.05)

    rates, worst, meds, cases = plan.Rates(), 0.0, [], []
    rates.note_prefill(256, noisy(oc + 256 / P))   # the bench's warm-up prefill
    for H in (1024, 4096, 16384, 32768):
        n, p = H + 64, H // T
        # first recompute at a new length: slow (first kernels), a warm-up
        for i in range(4):
            t = noisy(oc + n / P) * (10 if i == 0 else 1)
            if i:
                rates.note_prefill(n, t)
        for _ in range(3):
            rates.note_load("ssd", p * T, noisy(ol + p * T / L))
        ratios = []
        for _ in range(3):
            ch = plan.choose(p, T, rates.params("ssd"), n)
            c = ch["c"]
            true = est(p, n, c, P, oc, L, ol, L2=L * slow)
            pure = min(oc + n / P, est(p, n, 0, P, oc, L, ol))
            worst = max(worst, true / pure)
            ratios.append(true / pure)
            cases.append("%d:%s %d %.2f" % (H, ch["mode"], c, true / pure))
            if 0 < c < p:
                rates.note_prefill(c * T, noisy(oc + c * T / P), lc=True)
                rates.note_load("ssd", (p - c) * T, noisy(ol + (p - c) * T / (L * slow)), lc=True)
        meds.append(sorted(ratios)[1])
    check(max(meds) <= 1.05 and worst <= 1.10 and min(meds) < 0.7,
          "plan_lc_within_5pct_in_a_simulated_run: median per history %s, worst turn %.3f (%s)"
          % (" ".join("%.2f" % m for m in meds), worst, ", ".join(cases)))


def warmup():
    r = plan.Rates()
    r.note_prefill(1088, 1.03)            # the first kernels of a new shape
    for t in (0.066, 0.059, 0.064):
        r.note_prefill(1088, t)
    one = r.prefill_tok_s
    r2 = plan.Rates()
    for x, t in ((1088, 0.066), (4160, 0.245), (4160, 4.0), (16448, 0.99), (1088, 0.065),
                 (16448, 1.0)):
        r2.note_prefill(x, t)
    P2, oc2 = r2.rate("prefill")
    r3 = plan.Rates()
    for x in (1000, 4000, 1000, 4000):
        r3.note_prefill(x, 0.05 + x / 10000.0)
    P3, oc3 = r3.rate("prefill")
    check(abs(one / 16800 - 1) < 0.05 and abs(P2 / 16800 - 1) < 0.05
          and abs(P3 / 10000 - 1) < 1e-6 and abs(oc3 - 0.05) < 1e-9,
          "plan_warmup_excluded: one size %.0f tok/s, several %.0f tok/s (fixed %.3f s), "
          "fixed cost found %.3f s" % (one, P2, oc2, oc3))


def replan():
    P, L = 10000.0, 8000.0
    r = plan.Rates()
    for x in (2048, 8192, 2048, 8192):
        r.note_prefill(x, x / P)
        r.note_load("ssd", x, x / L)
    p, n = 256, 256 * T + 64
    c0 = plan.choose(p, T, r.params("ssd"), n)["c"]
    L2 = 0.6 * L                                       # the load beside a head pass
    for _ in range(plan.LC_MIN):
        r.note_prefill(c0 * T, c0 * T / P, lc=True)
        r.note_load("ssd", (p - c0) * T, (p - c0) * T / L2, lc=True)
    ch = plan.choose(p, T, r.params("ssd", p * T), n)
    c1 = ch["c"]
    head, tail = c1 * T / P, (p - c1) * T / L2
    check(c1 > c0 and abs(head / tail - 1) < 0.05,
          "plan_replans_when_load_slows_during_lc: computed %d then %d of %d blocks; "
          "head %.3f s, tail %.3f s at the slower rate" % (c0, c1, p, head, tail))


def one_slow_lc():
    P, L = 15000.0, 12000.0
    r = plan.Rates()
    for x in (1088, 4160, 16448):
        r.note_prefill(x, x / P)
        r.note_load("ssd", x, x / L)
    p, n = 512, 512 * T + 64
    c0 = plan.choose(p, T, r.params("ssd", p * T), n)
    r.note_prefill(4480, 1.36, lc=True)                # 3300 tok/s: the first head pass
    r.note_load("ssd", 5760, 0.6, lc=True)
    c1 = plan.choose(p, T, r.params("ssd", p * T), n)
    for _ in range(plan.LC_MIN - 1):
        r.note_prefill(4480, 1.36, lc=True)
        r.note_load("ssd", 5760, 0.6, lc=True)
    c2 = plan.choose(p, T, r.params("ssd", p * T), n)
    check(c0["mode"] == c1["mode"] == "both" and c0["c"] == c1["c"] and c2["c"] != c0["c"],
          "plan_one_slow_lc_sample_ignored: %s %d, after one slow sample %s %d, after %d %s %d"
          % (c0["mode"], c0["c"], c1["mode"], c1["c"], plan.LC_MIN, c2["mode"], c2["c"]))


def explore():
    P, L = 15000.0, 12000.0
    r = plan.Rates()
    for x in (4096, 16384):
        r.note_prefill(x, x / P)
        r.note_load("ssd", x, x / L)
        # during LC: a head pass at 0.5 P, a load at 0.55 L: a split looks a little worse
        for _ in range(plan.LC_MIN):
            r.note_prefill(x // 2, x / 2 / (0.5 * P), lc=True)
            r.note_load("ssd", x // 2, x / 2 / (0.55 * L), lc=True)
    p, n = 512, 512 * T + 64
    modes = []
    for _ in range(2 * plan.EXPLORE_EVERY + 2):
        ch = plan.choose(p, T, r.params("ssd", p * T), n)
        modes.append(ch["mode"])
        r.planned(ch["mode"])
    want = ["compute"] * plan.EXPLORE_EVERY + ["both"]
    check(modes[:2 * len(want)] == want * 2,
          "plan_explores_after_pure_run: %s" % " ".join(modes))


def fixed_near():
    r = plan.Rates()
    for x, t in ((16384, 0.683), (32768, 1.31)) * 4:    # fp8 loads of the H200 run
        r.note_load("ssd-fp8", x, t)
    far = r.params("ssd-fp8")["load_fixed_s"]
    r.note_load("ssd-fp8", 1024, 0.044)
    r.note_load("ssd-fp8", 1024, 0.045)
    near = r.params("ssd-fp8", 1024)
    check(far > 0.05 and near["load_fixed_s"] < 0.01 and abs(near["load_tok_s"] / 23000 - 1) < 0.05,
          "plan_fixed_cost_fitted_near_the_size: fixed %.0f ms over 16k and 32k, at 1k %.1f ms and "
          "%.0f tok/s" % (far * 1e3, near["load_fixed_s"] * 1e3, near["load_tok_s"]))


def main():
    never_worse()
    simulated_run()
    warmup()
    replan()
    one_slow_lc()
    explore()
    fixed_near()
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
