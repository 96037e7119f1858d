#!/usr/bin/env python3
"""compare_report.py - the bookkeeping of bench/compare.sh.

  compare_report.py add RESULTS SYSTEM TEST BLOCK CONNS [AT] < tool.json
      normalise one fio or kvcache-bench JSON output into a record and append
      it (one JSON object a line) to RESULTS. AT (fio only): "start", or the
      server whose gets the fio run came just before.
  compare_report.py report RESULTS OUTDIR
      write OUTDIR/compare.md (a markdown table, every figure also as a ratio
      to the fio limit of the same access pattern), OUTDIR/compare.dat and
      OUTDIR/compare.gp (gnuplot), then run gnuplot for OUTDIR/compare.png.

The fio limit of a test: random get of BLOCK at N connections -> fio random
read of BLOCK at iodepth N, the runs alternating with that server's gets if
there are (same file, same minutes), else the one at the start; fill -> fio
sequential write (1 MiB, iodepth 32); chat and trace -> fio random read of
BLOCK at the deepest iodepth measured before kvcached's gets.
"""
import json
import os
import statistics
import subprocess
import sys


def human(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:g} {unit}" if unit == "B" else f"{n:g}{unit[0].lower()}"
        n /= 1024


def add(results, system, test, block, conns, at="start"):
    doc = json.load(sys.stdin)
    rec = {"system": system, "test": test, "block": int(block), "conns": int(conns), "at": at}
    if system == "fio":
        job = doc["jobs"][0]
        side = job["write"] if test == "seqwrite" else job["read"]
        lat = side.get("clat_ns", side.get("lat_ns", {}))
        pct = lat.get("percentile", {})
        rec.update(gbps=side["bw_bytes"] / 1e9, ops=side["iops"],
                   p50_us=pct.get("50.000000", 0) / 1e3, p99_us=pct.get("99.000000", 0) / 1e3,
                   p999_us=pct.get("99.900000", 0) / 1e3)
    else:
        phase = doc["fill"] if test == "fill" else doc["run"]
        op = phase["ops"].get("put" if test == "fill" else "get", {})
        rec.update(gbps=phase["gb_per_s"], ops=phase["ops_per_s"],
                   p50_us=op.get("p50_us", 0), p99_us=op.get("p99_us", 0),
                   p999_us=op.get("p999_us", 0), errors=phase["errors"],
                   hit=phase["block_hit_ratio"], prefix_hit=phase["prefix_hit_ratio"],
                   retries=phase.get("retries", 0), seconds=phase["seconds"])
    with open(results, "a") as f:
        f.write(json.dumps(rec) + "\n")
    print(f"  {system if system != 'fio' else 'fio@' + at:13s} {test:9s} {human(int(block)):>5s} x{int(conns):<3d} "
          f"{rec['gbps']:7.3f} GB/s  p50 {rec['p50_us']:8.0f} us  p99 {rec['p99_us']:8.0f} us"
          + (f"  hit {rec['hit']:.3f}" if "hit" in rec else ""), file=sys.stderr)


def report(results, outdir):
    raw = [json.loads(l) for l in open(results) if l.strip()]
    # rounds of the same measurement: the median of each figure
    groups = {}
    for r in raw:
        groups.setdefault((r["system"], r["test"], r["block"], r["conns"], r.get("at", "start")),
                          []).append(r)
    recs = []
    for rs in groups.values():
        m = dict(rs[0])
        for f in ("gbps", "ops", "p50_us", "p99_us", "p999_us", "hit", "prefix_hit"):
            if f in m:
                m[f] = statistics.median(r[f] for r in rs)
        if "errors" in m:
            m["errors"] = sum(r["errors"] for r in rs)
        m["rounds"] = len(rs)
        m["spread"] = (max(r["gbps"] for r in rs) - min(r["gbps"] for r in rs)) / m["gbps"] \
            if m["gbps"] else 0
        recs.append(m)
    fio = {}
    for r in recs:
        if r["system"] == "fio":
            fio[(r["test"], r["block"], r["conns"], r.get("at", "start"))] = r

    def limit(test, block, conns, system="kvcached"):
        if test == "fill":
            return next((r for k, r in fio.items() if k[0] == "seqwrite"), None)
        if test == "get":
            return fio.get(("randread", block, conns, system)) or \
                fio.get(("randread", block, conns, "start"))
        for at in (system, "start"):
            deep = [r for k, r in fio.items() if k[0] == "randread" and k[1] == block
                    and k[3] == at]
            if deep:
                return max(deep, key=lambda r: r["conns"])
        return None

    rows = {}
    for r in recs:
        if r["system"] == "fio":
            continue
        rows.setdefault((r["test"], r["block"], r["conns"]), {})[r["system"]] = r
    order = {"fill": 0, "get": 1, "chat": 2, "trace": 3}
    keys = sorted(rows, key=lambda k: (k[1], order.get(k[0], 9), k[2]))

    md = ["# kvcached vs memcached+extstore vs the device (fio)", "",
          "GB/s of block data; in parentheses the ratio to the fio limit of the same "
          "pattern, measured on the same file, in rounds alternating with that server's gets (get: random "
          "read of the block size at an iodepth equal to the connections; fill: sequential "
          "write 1 MiB x32 at the start; chat/trace: random read at the deepest iodepth). "
          "Latency per request, p50 / p99 in microseconds. Gets and their fio reads "
          "alternate in rounds: every figure is the median of its rounds; [±x] is the "
          "spread (max - min) / median of the server's rounds.", "",
          "| test | block | conns | fio GB/s on kvcached's file | kvcached GB/s (x fio) "
          "| kvcached p50/p99 us | fio GB/s on memcached's file | memcached GB/s (x fio) "
          "| memcached p50/p99 us | kvcached / memcached |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    dat = []
    for k in keys:
        test, block, conns = k
        cells, ratios = [], {}
        for system in ("kvcached", "memcached"):
            r = rows[k].get(system)
            lim = limit(test, block, conns, system)
            lg = lim["gbps"] if lim else 0
            if r is None:
                cells += ["-", "-", "-"]
                continue
            ratios[system] = (r["gbps"] / lg if lg else 0, r["p99_us"] / 1000,
                              lim["p99_us"] / 1000 if lim else 0)
            ratio = f" ({r['gbps'] / lg:.2f})" if lg else ""
            extra = ""
            if r.get("errors"):
                extra += f", {r['errors']} errors"
            if test in ("chat", "trace"):
                extra += f", hit {r['hit']:.3f}"
            elif test == "get" and r.get("hit", 1) < 0.999:
                extra += f", hit {r['hit']:.3f}"
            if r.get("rounds", 1) > 1:
                extra += f" [±{r['spread'] / 2:.0%}]"
            cells += [f"{lg:.3f}" if lim else "-", f"{r['gbps']:.3f}{ratio}{extra}",
                      f"{r['p50_us']:.0f} / {r['p99_us']:.0f}"]
        kv, mc = rows[k].get("kvcached"), rows[k].get("memcached")
        vs = f"{kv['gbps'] / mc['gbps']:.2f}x" if kv and mc and mc["gbps"] > 0 else "-"
        md.append(f"| {test} | {human(block)} | {conns} | " + " | ".join(cells) + f" | {vs} |")
        label = f"{test} {human(block)} x{conns}"
        kr, mr = ratios.get("kvcached", (0, 0, 0)), ratios.get("memcached", (0, 0, 0))
        dat.append((label, kr[0], mr[0], kr[1], mr[1], kr[2] or mr[2]))
    md += ["", "fio runs of this report (at: start of the run, or alternating with whose gets; "
           "medians of the rounds):", "",
           "| fio test | block | iodepth | at | rounds | GB/s | spread | p50 / p99 us |",
           "|---|---|---|---|---|---|---|---|"]
    for (t, b, c, at), r in sorted(fio.items()):
        md.append(f"| {t} | {human(b)} | {c} | {at} | {r['rounds']} | {r['gbps']:.3f} | "
                  f"{r['spread']:.0%} | {r['p50_us']:.0f} / {r['p99_us']:.0f} |")
    # goals on 256 KiB random gets
    g = [(k, rows[k]) for k in keys if k[0] == "get" and k[1] == 256 * 1024]
    if g:
        md += ["", "Goals (256 KiB random gets): kvcached >= 2x memcached+extstore, and >= 0.85 "
               "of fio.", ""]
        for k, rr in g:
            kv, mc = rr.get("kvcached"), rr.get("memcached")
            lim = limit(*k, "kvcached")
            if not kv:
                continue
            a = kv["gbps"] / mc["gbps"] if mc and mc["gbps"] else float("nan")
            b = kv["gbps"] / lim["gbps"] if lim else float("nan")
            md.append(f"- {k[2]} connections: {a:.2f}x memcached ({'met' if a >= 2 else 'NOT met'}),"
                      f" {b:.2f} of fio ({'met' if b >= 0.85 else 'NOT met'})")
    md.append("")
    md.append("![throughput as a ratio to fio, and p99 latency](compare.png)")
    with open(os.path.join(outdir, "compare.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    with open(os.path.join(outdir, "compare.dat"), "w") as f:
        f.write("# label kv_ratio mc_ratio kv_p99_ms mc_p99_ms fio_p99_ms\n")
        for d in dat:
            f.write(f"\"{d[0]}\" {d[1]:.4f} {d[2]:.4f} {d[3]:.3f} {d[4]:.3f} {d[5]:.3f}\n")
    gp = os.path.join(outdir, "compare.gp")
    with open(gp, "w") as f:
        f.write(f"""set terminal pngcairo size 1400,900 font ",10"
set output "{os.path.join(outdir, 'compare.png')}"
set multiplot layout 2,1 title "kvcached vs memcached+extstore, relative to the device limit (fio)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set xtics rotate by -30 noenhanced
set key outside top center horizontal
set grid ytics
set ylabel "throughput / fio limit"
set yrange [0:*]
set arrow 1 from graph 0, first 0.85 to graph 1, first 0.85 nohead dt 2 lc rgb "#888888"
set arrow 2 from graph 0, first 1 to graph 1, first 1 nohead lc rgb "#444444"
plot "{os.path.join(outdir, 'compare.dat')}" using 2:xtic(1) title "kvcached" lc rgb "#1f77b4", \\
     "" using 3 title "memcached+extstore" lc rgb "#ff7f0e"
unset arrow 1
unset arrow 2
set ylabel "p99 latency (ms, log)"
set logscale y
set yrange [*:*]
plot "{os.path.join(outdir, 'compare.dat')}" using ($4>0?$4:1/0):xtic(1) title "kvcached" lc rgb "#1f77b4", \\
     "" using ($5>0?$5:1/0) title "memcached+extstore" lc rgb "#ff7f0e", \\
     "" using ($6>0?$6:1/0) title "fio (on kvcached's file)" lc rgb "#2ca02c"
unset multiplot
""")
    try:
        subprocess.run(["gnuplot", gp], check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"compare_report: gnuplot failed ({e}); table only", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) in (7, 8) and sys.argv[1] == "add":
        add(*sys.argv[2:])
    elif len(sys.argv) == 4 and sys.argv[1] == "report":
        report(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
