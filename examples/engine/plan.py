"""plan.py - load or compute: how much of a cached prefix to recompute.

A turn whose prompt starts with p cached blocks can load all of them, compute
all of them again, or both at once: compute blocks [0, c) from position 0 on
the GPU while the loader fetches blocks [c, p), then compute the rest of the
prompt on top (Cake, "Compute Or Load KV Cache? Why Not Both?", ICML 2025,
computes from the start while loading from the end).  Both parts end
together when

    oc + c * T / P  =  ol + (p - c) * T / L

with P the prefill rate (tokens/s), L the load rate (tokens/s), oc and ol
the fixed costs of a pass and of a load.  split() takes the c that
minimises the estimated time max(oc + c*T/P, ol + (p-c)*T/L) among the
optimum rounded down and up, 0 (pure load) and p (pure compute: the engine
then recomputes the whole prompt in one pass), so the plan is never
estimated worse than the faster of the two alone.

The rates come from the turns themselves (Rates: a least-squares fit of
time against tokens over the last turns, updated turn by turn): P and oc
from every prefill pass computed from
position 0 (a turn without reuse, the head of a load-or-compute turn), L
and ol from every load, kept per tier ("dram", "ssd", or "any"): the caller says
which tier it expects the prefix in (kvcached's Match does not say where a
block lives).  Until both rates of a tier are known, split() answers 0, the
plain load.

The coordinator sends its Rates.params(tier) with the turn; both stages run
split() on the same numbers and the same agreed p, so they agree on c
without another round trip.
"""


def split(p, T, params):
    """Blocks to compute from the start, of p cached blocks of T tokens,
    given params {prefill_tok_s, prefill_fixed_s, load_tok_s, load_fixed_s} (None or a
    missing rate: 0, load everything)."""
    if p <= 0 or not params:
        return 0
    P, L = params.get("prefill_tok_s"), params.get("load_tok_s")
    o = params.get("load_fixed_s", 0.0) or 0.0
    oc = params.get("prefill_fixed_s", 0.0) or 0.0
    if not P or not L or P <= 0 or L <= 0:
        return 0

    def cost(c):
        """Estimated time to have blocks [0, p) in the KV."""
        load = (p - c) * T / L + o if c < p else 0.0
        comp = c * T / P + oc if c else 0.0
        return max(comp, load)

    opt = (p * T / L + o - oc) / (T / P + T / L)   # where both parts end together
    cands = {0, p, max(0, min(p, int(opt))), max(0, min(p, int(opt) + 1))}
    # the cheapest; on a tie the one that computes less (the GPU stays free)
    return min(sorted(cands), key=cost)


class Rates:
    """Measured prefill and load rates, one load rate per tier: each a fit of
    seconds = fixed + tokens / rate over the last few turns (least squares;
    with a single size seen, fixed is 0 and the rate their mean)."""

    def __init__(self, keep=8):
        self.keep = keep               # samples kept per kind
        self.samples = {}              # ("prefill", None) or ("load", tier) -> [(tokens, s)]
        self.prefill_tok_s = None      # tokens/s of prefill from position 0
        self.prefill_fixed_s = 0.0     # fixed cost of a prefill pass
        self.load_tok_s = {}           # tier -> tokens/s of loading
        self.load_fixed_s = {}         # tier -> fixed cost of a load, seconds

    def _fit(self, key, tokens, seconds):
        """Add a sample; (rate, fixed) of the fit over the kept ones."""
        xs = self.samples.setdefault(key, [])
        xs.append((float(tokens), float(seconds)))
        del xs[:-self.keep]
        n = len(xs)
        mx = sum(x for x, _ in xs) / n
        my = sum(y for _, y in xs) / n
        var = sum((x - mx) ** 2 for x, _ in xs)
        if var > 0:
            slope = sum((x - mx) * (y - my) for x, y in xs) / var
            fixed = my - slope * mx
            if slope > 0 and fixed >= 0:
                return 1.0 / slope, fixed
        return mx / my, 0.0          # one size, or a fit that makes no sense

    def note_prefill(self, tokens, seconds):
        """A prefill of `tokens` tokens from position 0 took `seconds`."""
        if tokens > 0 and seconds > 0:
            self.prefill_tok_s, self.prefill_fixed_s = self._fit(("prefill", None), tokens, seconds)

    def note_load(self, tier, tokens, seconds):
        """A load of `tokens` tokens from `tier` took `seconds`."""
        if tokens > 0 and seconds > 0:
            self.load_tok_s[tier], self.load_fixed_s[tier] = self._fit(("load", tier), tokens,
                                                                       seconds)

    def params(self, tier):
        """What split() needs for a prefix expected in `tier`."""
        return {"prefill_tok_s": self.prefill_tok_s, "prefill_fixed_s": self.prefill_fixed_s,
                "load_tok_s": self.load_tok_s.get(tier),
                "load_fixed_s": self.load_fixed_s.get(tier, 0.0)}
