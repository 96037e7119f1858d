#!/usr/bin/env bash
# gap.sh - from a kvcache-sim CSV, per trace and capacity: the prefix hit
# ratio of fifo and of MIN, the best policy whose write amplification is at
# most the limit, and the share of the fifo-to-MIN gap it closes (the goal
# of issue 6 is at least half, with WA <= 1.3). Prints a Markdown table.
#
#   tools/sim/gap.sh results.csv [max_wa]
set -eu
csv=${1:?usage: gap.sh results.csv [max_wa]}
maxwa=${2:-1.3}
awk -F, -v maxwa="$maxwa" '
NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
{ tr = $(col["trace"]); pol = $(col["policy"]); cap = $(col["capacity"]) + 0
  v = $(col["prefix_hit"]) + 0; wa = $(col["wa"]) + 0
  if (cap == 0) next
  key = tr SUBSEP cap; keys[key] = 1
  if (pol == "fifo") fifo[key] = v
  if (pol == "MIN") min[key] = v
  else if (pol != "infinite" && pol != "block-lru" && pol != "fifo-oracle" && wa <= maxwa + 1e-9) {
    if (!(key in best) || v > best[key] + 1e-9) { best[key] = v; who[key] = pol }
    else if (v > best[key] - 1e-9) who[key] = who[key] "=" pol } }
END {
  printf "| trace | capacity | fifo | MIN | half-gap target | best (WA <= %s) | gap closed |\n", maxwa
  printf "|---|---:|---:|---:|---:|---|---:|\n"
  n = 0
  for (k in keys) order[++n] = k
  for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) {
    split(order[i], a, SUBSEP); split(order[j], b, SUBSEP)
    if (a[1] > b[1] || (a[1] == b[1] && a[2] + 0 > b[2] + 0)) { t = order[i]; order[i] = order[j]; order[j] = t } }
  for (i = 1; i <= n; i++) {
    k = order[i]; split(k, a, SUBSEP)
    g = min[k] - fifo[k]
    closed = "-"
    if (g > 1e-9)
      closed = sprintf("%.0f%%", 100 * (best[k] - fifo[k]) / g)
    printf "| %s | %d | %.4f | %.4f | %.4f | %s %.4f | %s |\n", a[1], a[2], fifo[k], min[k],
           fifo[k] + g / 2, who[k], best[k], closed } }
' "$csv"
