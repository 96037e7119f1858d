#!/usr/bin/env bash
# replay.sh - replay a trace through a running kvcached with the load
# generator (kvcache-bench -w trace, one connection, in order) and through
# kvcache-sim, with the same policy, capacity and geometry (63 blocks of
# 16,320 bytes per 1 MiB slab, 4 memory slabs, hints of finished chains),
# and print both prefix hit ratios in tokens. Exits 1 if they differ by
# more than the tolerance.
#
#   tools/sim/replay.sh TRACE POLICY CAPACITY [TOLERANCE] [BUILD_DIR]
#   e.g. tools/sim/replay.sh ../shared/traces/mooncake_synthetic_trace.jsonl prefix+hint 10000
set -eu
trace=${1:?usage: replay.sh TRACE POLICY CAPACITY [TOLERANCE] [BUILD_DIR]}
policy=${2:?policy}
cap=${3:?capacity in blocks}
tol=${4:-0.01}
build=${5:-build}
bpslab=63
slabs=$(( (cap + bpslab / 2) / bpslab ))
[ "$slabs" -ge 3 ] || slabs=3
dir=$(mktemp -d "${TMPDIR:-/var/tmp}/kvreplay-XXXXXX")
. "$(dirname "$0")/daemon.sh"
trap 'kvd_stop; rm -rf "$dir"' EXIT
# the store: a 1 MiB header area, then the slabs
kvd_start "$build" "$dir" -D "$dir/store" -S $(( (1 + slabs) << 20 )) \
    --slab-size 1m -m 4 --min-item-size 16320 --evict "$policy" --fresh
"$build/tools/loadgen/kvcache-bench" -s "unix:$dir/sock" -w trace -t "$trace" -c 1 -b 16320 \
    --hints -d 3600 -q -j >"$dir/bench.json"
daemon=$(python3 -c 'import json, sys; print("%.4f" % json.load(open(sys.argv[1]))["run"]["prefix_token_hit_ratio"])' "$dir/bench.json")
sim=$("$build/tools/sim/kvcache-sim" -t "$trace" -p "$policy" -c "$cap" --no-bounds |
      awk -v p="$policy" '$2 == p { printf "%.4f", $6 }')
echo "trace $(basename "$trace") policy $policy capacity $cap: prefix hit ratio daemon $daemon, simulator $sim"
awk -v a="$daemon" -v b="$sim" -v t="$tol" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && b != "" && d <= t) }' ||
    { echo "replay.sh: differ by more than $tol"; exit 1; }
