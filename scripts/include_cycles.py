#!/usr/bin/env python3
"""include_cycles.py - import circles between the modules of a folder.

A module is a .c/.h pair with one name (daemon/kc_conn.c + kc_conn.h).
Module A imports B when A's .c or .h includes B's header. Prints every
strongly connected set of more than MAX modules (default 2: a module and
the one it calls back are allowed, longer circles are not) and exits 1
when there is one; prints the largest circle found either way.

Usage: include_cycles.py [--max N] DIR...   (e.g. daemon proto)
"""
import os
import re
import sys

INC = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def modules(dirs):
    mods = {}
    for d in dirs:
        for f in sorted(os.listdir(d)):
            base, ext = os.path.splitext(f)
            if ext in (".c", ".h"):
                mods.setdefault(os.path.join(d, base), []).append(os.path.join(d, f))
    return mods


def edges(mods):
    by_header = {os.path.basename(m) + ".h": m for m in mods}
    by_path = {m + ".h": m for m in mods}
    g = {m: set() for m in mods}
    for m, files in mods.items():
        for f in files:
            with open(f, errors="replace") as fh:
                for inc in INC.findall(fh.read()):
                    t = by_path.get(inc) or by_header.get(os.path.basename(inc))
                    if t and t != m:
                        g[m].add(t)
    return g


def sccs(g):
    """Tarjan's strongly connected components."""
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def main():
    args = sys.argv[1:]
    limit = 2
    if args[:1] == ["--max"]:
        limit, args = int(args[1]), args[2:]
    if not args:
        sys.exit(__doc__)
    mods = modules(args)
    comps = sccs(edges(mods))
    big = [c for c in comps if len(c) > limit]
    largest = max((len(c) for c in comps), default=0)
    for c in big:
        print("circle of %d modules: %s" % (len(c), " ".join(c)))
    print("%d modules, largest circle %d (allowed %d)" % (len(mods), largest, limit))
    sys.exit(1 if big else 0)


if __name__ == "__main__":
    main()
