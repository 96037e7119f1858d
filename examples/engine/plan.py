"""plan.py - load or compute: how much of a cached prefix to recompute.

A turn whose prompt of n tokens starts with p cached blocks of T tokens has
three ways to get its first token:

  compute  recompute the whole prompt in one pass:      oc + n / P
  load     load the p blocks, then compute the rest s = n - p*T on top:
                                                        ol + p*T / L + oc + s / P
  both     compute blocks [0, c) from position 0 (the head pass) while the
           loader fetches blocks [c, p), then the rest on top:
           max(oc' + c*T / P', ol' + (p - c)*T / L') + oc + s / P

with P, L the prefill and load rates (tokens/s) and oc, ol the fixed costs of
a pass and of a load (Cake, "Compute Or Load KV Cache? Why Not Both?", ICML
2025, computes from the start while loading from the end).  The primed rates
are those measured while both run at once: a load that shares the stage with
a head pass can run slower than a load alone (the loader's copies and the
compute share the interpreter and the GPU), and the split that makes both
parts end together must use what they do together, not alone.  Until a
"together" rate is known, the plain prefill rate and LC_LOAD_PRIOR times the
plain load rate stand in for them (what the first H200 run measured), so the
first split is not taken on an estimate that only a load alone achieves.

choose() estimates the three (the split c where both parts end together,
rounded down and up) and takes the fastest; a split must be estimated at
least 10% faster than the better pure choice (MARGIN), so close calls, where
what the estimate does not see decides, go to the pure one.  Its estimate of
the TTFT is kept with the turn, so the error of every prediction can be
printed beside what happened.

Rates keeps the samples: per kind (a prefill pass from position 0; a load
from a tier: "dram", "ssd", "ssd-fp8", or whatever the caller names, since
kvcached's Match does not say where a block lives; and the same two measured
during a load-or-compute turn) the last KEEP (tokens, seconds) pairs, fitted
robustly: the rate is the Theil-Sen slope (the median of the slopes between
samples of clearly different sizes), the fixed cost the median of what each
sample leaves over, never negative; with one size only, the median of the
per-token rates once the fixed cost of the same work done alone is taken
off (for a kind measured during load-or-compute; none for the others).  A single slow sample (the first kernels of
a new shape, a page-cache miss) moves neither; warm-up turns are not given to
it at all (Engine.turn(..., warmup=True), and an engine's first turn).
Rates.params(tier, tokens) fits each kind over its samples of sizes
comparable to the turn's (within NEAR times), when at least two are, so a
fixed cost fitted at 16k and 32k is not carried down to 1k.

A rate measured during load-or-compute stands in for the plain one once
LC_MIN samples of comparable size are known, or with fewer if it predicts
within LC_TRUST of the plain rate (the prior for a load): one slow first
head pass (new shapes, loader threads
starting) must not rule splits out for good.  After EXPLORE_EVERY pure
choices in a row, a split estimated within EXPLORE of the better pure
choice is tried (params "explore"), so a bad sample is measured again.
params "force_c" makes the split (an untimed warm-up of the path).

The coordinator sends its Rates.params(tier) with the turn; both stages run
choose() on the same numbers and the same agreed p, so they agree on c
without another round trip.
"""

MARGIN = 0.9   # a split must be estimated this much faster than pure load or compute
KEEP = 8       # samples kept per kind
SIZES = 1.25   # two samples' sizes must differ this much for a slope between them
# a load beside a head pass, before one was measured: this share of the
# plain load rate (H200, 16k tokens: 1.45 GB/s beside the head, 1.81 alone)
LC_LOAD_PRIOR = 0.8
LC_MIN = 3          # samples of an @lc kind before it replaces the plain rate whatever it says
LC_TRUST = 1.5      # with fewer, only if its time is within this of the plain rate's
NEAR = 4.0          # samples within this factor of the turn's size are "comparable"
EXPLORE_EVERY = 4   # pure choices in a row after which a close split is tried
EXPLORE = 1.15      # "close": a split estimated within this of the better pure choice


def _median(xs):
    """Median of a non-empty list."""
    s = sorted(xs)
    m = len(s) // 2
    return s[m] if len(s) % 2 else 0.5 * (s[m - 1] + s[m])


def fit(samples, fixed=0.0):
    """(tokens/s, fixed seconds) of seconds = fixed + tokens / rate over
    samples [(tokens, seconds)], robustly (see the module comment); None
    without samples.  With one size only, the fixed cost cannot be told
    from the rate: `fixed` (a related kind's) is taken as known."""
    xs = [(float(x), float(y)) for x, y in samples if x > 0 and y > 0]
    if not xs:
        return None
    slopes = [(y2 - y1) / (x2 - x1) for i, (x1, y1) in enumerate(xs) for x2, y2 in xs[i + 1:]
              if max(x1, x2) >= SIZES * min(x1, x2)]
    if slopes:
        slope = _median(slopes)
        if slope > 0:
            fixed = max(0.0, _median([y - slope * x for x, y in xs]))
            return 1.0 / slope, fixed
    fixed = fixed if all(y > fixed for _, y in xs) else 0.0   # one size, or a senseless slope
    return _median([x / (y - fixed) for x, y in xs]), fixed


def choose(p, T, params, n=None):
    """The plan for p cached blocks of T tokens of a prompt of n tokens
    (default: p*T + 1), given params (Rates.params; None or a missing rate:
    load everything).  A dict: c (blocks to compute from position 0 while
    the rest loads; p: compute the whole prompt, 0: load every block), mode
    ("compute", "load", "both"), est_s (the estimated TTFT of the choice,
    None without rates), est_compute_s, est_load_s, est_head_s and
    est_tail_s (the two halves of a split, each from the turn's start)."""
    out = {"c": 0, "mode": "load", "est_s": None}
    if p <= 0 or not params:
        return out
    if params.get("force_c") is not None and p >= 2:   # a warm-up of the split path
        return dict(out, c=max(1, min(p - 1, int(params["force_c"]))), mode="both")
    P, L = params.get("prefill_tok_s"), params.get("load_tok_s")
    if not P or not L or P <= 0 or L <= 0:
        return out
    oc = params.get("prefill_fixed_s") or 0.0
    ol = params.get("load_fixed_s") or 0.0
    P2 = params.get("lc_prefill_tok_s") or P          # while the load runs beside it
    oc2 = params.get("lc_prefill_fixed_s") if params.get("lc_prefill_tok_s") else oc
    L2 = params.get("lc_load_tok_s") or LC_LOAD_PRIOR * L   # while the compute runs beside it
    ol2 = params.get("lc_load_fixed_s") if params.get("lc_load_tok_s") else ol
    n = p * T + 1 if n is None else max(n, p * T + 1)
    rest = oc + (n - p * T) / P                        # the pass after the prefix

    def halves(c):
        """(head, tail) seconds of a split at c, each from the turn's start."""
        return (oc2 + c * T / P2 if c else 0.0), (ol2 + (p - c) * T / L2 if c < p else 0.0)

    est = {"compute": oc + n / P, "load": ol + p * T / L + rest}
    out.update(est_compute_s=est["compute"], est_load_s=est["load"])
    pure = min(est, key=est.get)
    out.update(c=p if pure == "compute" else 0, mode=pure, est_s=est[pure])
    if p < 2:
        return out
    # where both parts end together: oc2 + c*T/P2 = ol2 + (p - c)*T/L2
    opt = (p * T / L2 + ol2 - oc2) / (T / P2 + T / L2)
    best = None
    for c in sorted({max(1, min(p - 1, int(opt))), max(1, min(p - 1, int(opt) + 1))}):
        h, t = halves(c)
        if best is None or max(h, t) < best[1]:
            best = (c, max(h, t), h, t)
    c, ready, h, t = best
    if ready + rest < (EXPLORE if params.get("explore") else MARGIN) * est[pure]:
        out.update(c=c, mode="both", est_s=ready + rest, est_head_s=h, est_tail_s=t)
    return out


def split(p, T, params, n=None):
    """Blocks to compute from the start, of p cached blocks of T tokens
    (choose()'s c: 0 loads everything, p computes the whole prompt)."""
    return choose(p, T, params, n)["c"]


class Rates:
    """Measured prefill and load rates (plain and during load-or-compute),
    one load rate per tier: each a robust fit (fit()) of seconds = fixed +
    tokens / rate over the last KEEP samples of its kind."""

    def __init__(self, keep=KEEP):
        self.keep = keep               # samples kept per kind
        self.samples = {}              # kind -> [(tokens, s)], kinds: see _key
        self.fixed = {}                # kind -> (tokens/s, fixed s) set by hand (tests)
        self.pure_run = 0              # turns in a row that planned a pure choice (planned())

    @staticmethod
    def _key(what, tier=None, lc=False):
        """The kind of a sample: ("prefill" | "load", tier or None, lc?)."""
        return (what, tier, bool(lc))

    def _note(self, key, tokens, seconds):
        """Add a sample of kind key and refit that kind."""
        if tokens > 0 and seconds > 0:
            xs = self.samples.setdefault(key, [])
            xs.append((float(tokens), float(seconds)))
            del xs[:-self.keep]
            self.fixed.pop(key, None)

    def note_prefill(self, tokens, seconds, lc=False):
        """A prefill of `tokens` tokens from position 0 took `seconds` (lc: a
        head pass, with a load running beside it)."""
        self._note(self._key("prefill", None, lc), tokens, seconds)

    def note_load(self, tier, tokens, seconds, lc=False):
        """A load of `tokens` tokens from `tier` took `seconds` (lc: beside a
        head pass)."""
        self._note(self._key("load", tier, lc), tokens, seconds)

    def _near(self, key, tokens):
        """The samples of kind key of a size within NEAR times `tokens`, when
        at least two are (else all of them; all without tokens)."""
        xs = self.samples.get(key, [])
        if tokens:
            near = [s for s in xs if tokens / NEAR <= s[0] <= tokens * NEAR]
            if len(near) >= 2:
                return near
        return xs

    def rate(self, what, tier=None, lc=False, tokens=None):
        """(tokens/s, fixed s) of a kind, or (None, 0.0) before any sample; a
        kind measured during load-or-compute borrows the fixed cost of its
        plain counterpart while its own samples have one size.  tokens: fit
        over the samples of comparable size (_near)."""
        key = self._key(what, tier, lc)
        if key in self.fixed:
            return self.fixed[key]
        if key not in self.samples:
            return None, 0.0
        return fit(self._near(key, tokens), self.rate(what, tier, tokens=tokens)[1] if lc else 0.0)

    def known(self, what, tier=None, lc=False, tokens=None):
        """Samples of a kind of comparable size (hand-set fits count as many)."""
        key = self._key(what, tier, lc)
        if key in self.fixed:
            return LC_MIN
        xs = self.samples.get(key, [])
        return len([s for s in xs if s[0] >= tokens / NEAR and s[0] <= tokens * NEAR]) if tokens \
            else len(xs)

    def planned(self, mode):
        """The coordinator planned `mode` for a timed turn (counts the pure
        choices in a row, for params' "explore")."""
        self.pure_run = 0 if mode == "both" else self.pure_run + 1

    @property
    def fits(self):
        """kind -> (tokens/s, fixed s), every kind known."""
        return {k: self.rate(*k) for k in set(self.samples) | set(self.fixed)}

    @property
    def prefill_tok_s(self):
        return self.rate("prefill")[0]

    @property
    def load_tok_s(self):
        """tier -> plain load tokens/s."""
        return {k[1]: v[0] for k, v in self.fits.items() if k[0] == "load" and not k[2]}

    def summary(self):
        """Every fit, as {"prefill", "prefill@lc", "load:ssd", "load:ssd@lc", ...:
        {"tok_s", "fixed_s", "n"}} (for reports)."""
        out = {}
        for k, (r, f) in sorted(self.fits.items(), key=lambda kv: str(kv[0])):
            name = k[0] + (":%s" % k[1] if k[1] is not None else "") + ("@lc" if k[2] else "")
            out[name] = {"tok_s": r, "fixed_s": f, "n": len(self.samples.get(k, ()))}
        return out

    def set(self, prefill=None, loads=None):
        """Set fits by hand (tests): prefill (tok/s, fixed), loads {tier: (tok/s, fixed)}."""
        if prefill:
            self.fixed[self._key("prefill")] = tuple(prefill)
        for tier, v in (loads or {}).items():
            self.fixed[self._key("load", tier)] = tuple(v)

    def params(self, tier, tokens=None):
        """What choose() needs for a prefix of `tokens` tokens expected in
        `tier`: the fits over samples of comparable size; an @lc rate only
        with LC_MIN such samples; "explore" after EXPLORE_EVERY pure
        choices in a row."""
        P, oc = self.rate("prefill", tokens=tokens)
        L, ol = self.rate("load", tier, tokens=tokens)
        half = tokens / 2 if tokens else None     # a split's halves are about this big
        P2, oc2 = self.rate("prefill", None, True, half)
        L2, ol2 = self.rate("load", tier, True, half)
        x = half or 1.0

        def trusted(what, r, f, r0, f0):
            """An @lc fit stands in with LC_MIN comparable samples, or with
            fewer if its time at the turn's size is within LC_TRUST of the
            plain one's (r0, f0): a lone outlier is not believed."""
            if not r:
                return False
            if self.known(what, tier if what == "load" else None, True, half) >= LC_MIN:
                return True
            return not r0 or f + x / r <= LC_TRUST * (f0 + x / r0)
        if not trusted("prefill", P2, oc2, P, oc):
            P2 = oc2 = None                        # the plain rate
        if not trusted("load", L2, ol2, L and LC_LOAD_PRIOR * L, ol):
            L2 = ol2 = None                        # the prior
        return {"explore": self.pure_run >= EXPLORE_EVERY, "prefill_tok_s": P, "prefill_fixed_s": oc, "load_tok_s": L, "load_fixed_s": ol,
                "lc_prefill_tok_s": P2, "lc_prefill_fixed_s": oc2,
                "lc_load_tok_s": L2, "lc_load_fixed_s": ol2}
