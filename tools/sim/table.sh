#!/usr/bin/env bash
# table.sh - from a kvcache-sim CSV, one Markdown table per trace: prefix hit
# ratio in tokens per policy and capacity, with the block hit ratio and the
# write amplification (blocks written per block offered) where it is not 1.
#
#   tools/sim/table.sh results.csv
set -eu
csv=${1:?usage: table.sh results.csv}
awk -F, '
NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
{ tr = $(col["trace"]); pol = $(col["policy"]); cap = $(col["capacity"]) + 0
  if (!(tr in seen_tr)) { seen_tr[tr] = 1; trs[++ntr] = tr }
  if (!((tr, pol) in seen_pol)) { seen_pol[tr, pol] = 1; pols[tr, ++npol[tr]] = pol }
  if (cap != 0 && !(cap in seen_cap)) { seen_cap[cap] = 1; caps[++ncap] = cap }
  wa = $(col["wa"]) + 0
  cell = sprintf("%.3f (%.3f", $(col["prefix_hit"]), $(col["block_hit"]))
  if (wa > 1.0005 || wa < 0.9995) cell = cell sprintf("; WA %.2f", wa)
  val[tr, pol, cap] = cell ")" }
END {
  for (i = 1; i <= ncap; i++) for (j = i + 1; j <= ncap; j++)
    if (caps[i] > caps[j]) { t = caps[i]; caps[i] = caps[j]; caps[j] = t }
  for (k = 1; k <= ntr; k++) {
    tr = trs[k]
    printf "#### %s\n\nPrefix hit ratio in tokens (block hit ratio; WA where not 1):\n\n| policy |", tr
    for (i = 1; i <= ncap; i++) printf " %dk blocks |", caps[i] / 1000
    printf "\n|---|"
    for (i = 1; i <= ncap; i++) printf "---:|"
    printf "\n"
    for (p = 1; p <= npol[tr]; p++) {
      pol = pols[tr, p]; printf "| %s |", pol
      for (i = 1; i <= ncap; i++) {
        c = caps[i]
        if ((tr, pol, c) in val) printf " %s |", val[tr, pol, c]
        else if ((tr, pol, 0) in val) printf " %s |", val[tr, pol, 0]
        else printf " - |"
      }
      printf "\n"
    }
    printf "\n" } }
' "$csv"
