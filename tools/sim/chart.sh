#!/usr/bin/env bash
# chart.sh - draw kvcache-sim results: prefix hit ratio (or another CSV
# column) against capacity, one panel per trace, one line per policy, with
# MIN and the infinite cache as bounds. Needs gnuplot (Debian: gnuplot-nox).
#
#   tools/sim/chart.sh results.csv out.png [column]
#
# column is a CSV header name: prefix_hit (default), block_hit or wa.
set -eu
csv=${1:?usage: chart.sh results.csv out.png [column]}
out=${2:?usage: chart.sh results.csv out.png [column]}
col=${3:-prefix_hit}
command -v gnuplot >/dev/null || { echo "chart.sh: gnuplot not found (apt-get install gnuplot-nox)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One data file per trace and series: "capacity value", sorted by capacity.
# The infinite cache (capacity 0) becomes a flat line across the x range.
awk -F, -v col="$col" -v dir="$tmp" '
NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i
          if (!c) { print "chart.sh: no column " col > "/dev/stderr"; exit 1 }
          next }
{ tr = $1; pol = $2; cap = $3 + 0; v = $c
  traces[tr] = 1; series[tr SUBSEP pol] = 1
  if (cap == 0) { inf[tr] = v; next }
  if (!(tr in lo) || cap < lo[tr]) lo[tr] = cap
  if (!(tr in hi) || cap > hi[tr]) hi[tr] = cap
  f = dir "/" tr "__" pol ".dat"; print cap, v | ("sort -n > \"" f "\"") }
END { for (tr in traces) {
        print tr > (dir "/traces")
        if (tr in inf) { f = dir "/" tr "__infinite.dat"
                         print lo[tr], inf[tr] > f; print hi[tr], inf[tr] > f } } }
' "$csv"

n=$(wc -l < "$tmp/traces")
{
    echo "set terminal pngcairo size $((640 * n)),480 font ',10' noenhanced"
    echo "set output '$out'"
    echo "set multiplot layout 1,$n"
    echo "set logscale x"
    echo "set xlabel 'capacity (512-token blocks)'"
    echo "set ylabel '$col'"
    echo "set key bottom right"
    echo "set yrange [0:*]"
    echo "set grid"
    for tr in $(sort "$tmp/traces"); do
        echo "set title '$tr'"
        read -r lo hi < <(awk 'NR == 1 || $1 < lo { lo = $1 } $1 > hi { hi = $1 } END { print lo, hi }' "$tmp/$tr"__*.dat)
        echo "set xrange [$lo * 0.85:$hi * 1.15]"
        echo "set xtics ($(cat "$tmp/$tr"__*.dat | awk '{ print $1 }' | sort -nu | paste -sd, -))"
        plots=()
        for f in "$tmp/$tr"__*.dat; do
            pol=${f##*__}; pol=${pol%.dat}
            case $pol in
            infinite) style="lw 2 dt 2 lc rgb 'black' pt -1" ;;
            MIN) style="lw 2 dt 3 lc rgb 'black' pt 6" ;;
            block-lru|fifo-oracle) style="lw 1 dt 4 pt 6" ;;
            *) style="lw 2 pt 7" ;;
            esac
            plots+=("'$f' using 1:2 with linespoints $style title '$pol'")
        done
        (IFS=,; echo "plot ${plots[*]}")
    done
    echo "unset multiplot"
} > "$tmp/plot.gp"
gnuplot "$tmp/plot.gp"
echo "chart.sh: wrote $out"
