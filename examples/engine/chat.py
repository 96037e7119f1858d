#!/usr/bin/env python3
"""chat.py - a multi-turn chat driver for the engine.

Several conversations share a system prompt; each turn appends a user
message (random tokens from a seeded generator) to the conversation's
history, runs one engine turn over the whole history, and appends the reply.
Conversations take turns, so the engine's own KV always belongs to another
conversation and reuse comes from kvcached.  Prints per turn the prompt
length, the tokens reused, TTFT and the tokens generated; with --compare it
runs the same chats without reuse first and prints a table of both.

    python3 examples/engine/chat.py --convs 3 --turns 4 --compare
"""
import argparse
import random
import statistics
import sys

import torch

import cli


def conversations(a, vocab):
    """The seeded token streams: the system prompt and each turn's user message."""
    rng = random.Random(a.seed)
    system = [rng.randrange(1, vocab) for _ in range(a.system_tokens)]
    users = [[[rng.randrange(1, vocab) for _ in range(a.user_tokens)] for _ in range(a.turns)]
             for _ in range(a.convs)]
    return system, users


def run(a, setup, reuse):
    """All conversations, turn after turn; returns rows (conv, turn, result)."""
    eng = setup.engine(servers=reuse, capacity=a.system_tokens + a.turns * (a.user_tokens + a.gen) + 64)
    system, users = conversations(a, setup.cfg.vocab)
    hist = [list(system) for _ in range(a.convs)]
    rows = []
    label = "reuse" if reuse else "recompute"
    try:
        for t in range(a.turns):
            for c in range(a.convs):
                hist[c] += users[c][t]
                # the last turn ends the conversation: its blocks go with HINT_DONE
                r = eng.turn(hist[c], max_new=a.gen, reuse=reuse, done=t == a.turns - 1)
                hist[c] += r["generated"]
                rows.append((c, t, r))
                print("%-9s conv %d turn %d: prompt %5d tokens, reused %5d, TTFT %8.1f ms, "
                      "generated %d (%s)" % (label, c, t, r["prompt_tokens"], r["reused_tokens"],
                                             r["ttft_s"] * 1e3, len(r["generated"]),
                                             " ".join(map(str, r["generated"][:6]))), flush=True)
    finally:
        eng.close()
    return rows


def table(rows_off, rows_on, a):
    """Markdown: per turn index, mean prompt, reused and TTFT without and with reuse."""
    out = ["| turn | prompt tokens | reused tokens | TTFT recompute ms | TTFT reuse ms | speedup |",
           "|---|---|---|---|---|---|"]
    for t in range(a.turns):
        off = [r for c, tt, r in rows_off if tt == t]
        on = [r for c, tt, r in rows_on if tt == t]
        m_off = statistics.median(r["ttft_s"] for r in off) * 1e3
        m_on = statistics.median(r["ttft_s"] for r in on) * 1e3
        out.append("| %d | %d | %d | %.1f | %.1f | %.2fx |" % (
            t, statistics.mean(r["prompt_tokens"] for r in on),
            statistics.mean(r["reused_tokens"] for r in on), m_off, m_on, m_off / m_on))
    same = all(x[2]["generated"] == y[2]["generated"] for x, y in zip(rows_off, rows_on))
    out.append("")
    out.append("generated tokens identical with and without reuse: %s" % ("yes" if same else "NO"))
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_args(ap)
    ap.add_argument("--convs", type=int, default=3)
    ap.add_argument("--turns", type=int, default=4)
    ap.add_argument("--system-tokens", type=int, default=256)
    ap.add_argument("--user-tokens", type=int, default=64)
    ap.add_argument("--gen", type=int, default=16, help="tokens generated per turn")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--compare", action="store_true", help="run without reuse first, print a table")
    ap.add_argument("--no-reuse", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg = cli.config(a)
    setup = cli.Setup(a, cfg)
    try:
        rows_off = run(a, setup, reuse=False) if (a.compare or a.no_reuse) else None
        rows_on = run(a, setup, reuse=True) if not a.no_reuse else None
        if rows_off and rows_on:
            print()
            print(table(rows_off, rows_on, a))
    finally:
        setup.close()


if __name__ == "__main__":
    sys.exit(main())
