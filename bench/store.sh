#!/usr/bin/env bash
# bench/store.sh - the store beside fio, on the same file, in one run.
#
# For each block size: fio writes the file sequentially (bs = slab size,
# iodepth = the store's flushes in flight) and reads random blocks
# (bs = block size) at 1, 8 and 32 in flight, all with ioengine=io_uring
# direct=1; then kc_storebench writes the same amount through the store
# into the same (removed, re-created) file and reads random blocks that have
# no DRAM copy at the same depths. Prints a markdown table with the ratio to
# fio and the goals (writes and random reads >= 95% of fio).
#
# --perf records the store's read phases with perf (call graphs) and prints
# where their CPU time goes, per block size and depth: what still costs when
# reads fall short of fio.
#
# Each figure is the mean of --reps runs, fio and the store alternating (the
# virtual disk's speed drifts by 2x within minutes when other jobs run).
#
# usage: bench/store.sh [--smoke] [--gib N] [--seconds S] [--dir DIR] [--reps N]
#                        [--build DIR] [--configs "256K:32M 2M:32M 32M:128M"] [--perf]
set -euo pipefail
cd "$(dirname "$0")/.."

gib=2            # GiB written per block size
secs=5           # seconds per random-read depth
dir=./var        # a folder on the real disk (not tmpfs)
build=build
wqd=4            # slab writes in flight (fio iodepth; store wmem = wqd+1 slabs)
reps=2           # alternating runs of fio and the store per measurement
qds="1 8 32"
configs="256K:32M 2M:32M 32M:128M"  # block:slab (a 64 MiB slab holds one 32 MiB block)
smoke=0
perf=0           # --perf: profile the store's read phases
while [ $# -gt 0 ]; do
    case $1 in
    --smoke) smoke=1 ;;
    --gib) gib=$2; shift ;;
    --seconds) secs=$2; shift ;;
    --dir) dir=$2; shift ;;
    --build) build=$2; shift ;;
    --configs) configs=$2; shift ;;
    --reps) reps=$2; shift ;;
    --perf) perf=1 ;;
    *) echo "usage: $0 [--smoke] [--gib N] [--seconds S] [--dir DIR] [--build DIR] [--configs LIST] [--perf]" >&2; exit 2 ;;
    esac
    shift
done
case $secs in *[!0-9]*|"") echo "--seconds takes whole seconds (fio's runtime)" >&2; exit 2 ;; esac
write="${gib}G"
if [ "$smoke" = 1 ]; then
    write=48M; secs=1; configs="256K:4M"; reps=1
fi

bench=$build/bench/kc_storebench
[ -x "$bench" ] || { echo "build first: meson setup $build && ninja -C $build" >&2; exit 1; }
command -v fio >/dev/null || { echo "fio is not installed (apt-get install fio)" >&2; exit 1; }
if [ "$perf" = 1 ] && ! command -v perf >/dev/null; then
    echo "--perf: perf is not installed (apt-get install linux-perf)" >&2; exit 1
fi
mkdir -p "$dir"
file=$dir/bench.store
out=$(mktemp -d)
trap 'rm -f "$file"; rm -rf "$out"' EXIT
if [ "$(stat -f -c %T "$dir")" = tmpfs ]; then
    echo "$dir is tmpfs: O_DIRECT needs a real disk; use --dir" >&2; exit 1
fi

bytes() {  # 256K -> 262144
    python3 -c 'import sys
s=sys.argv[1]; m={"K":1<<10,"M":1<<20,"G":1<<30}
print(int(float(s[:-1])*m[s[-1]]) if s[-1] in m else int(s))' "$1"
}

# fio json -> "gbps p50_us p99_us" of the read or write side
fio_result() {
    python3 - "$1" "$2" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0][sys.argv[2]]
lat = j.get("lat_ns", {}).get("percentile") or j["clat_ns"]["percentile"]
print("%.4f %.1f %.1f" % (j["bw_bytes"] / 1e9, lat["50.000000"] / 1e3, lat["99.000000"] / 1e3))
PY
}

results=$out/results.tsv
: >"$results"
fio_common=(--ioengine=io_uring --direct=1 --filename="$file" --numjobs=1
            --lat_percentiles=1 --output-format=json)
# fio's buffers: the store's large buffers are huge pages (THP), which on
# a virtual disk makes large transfers up to 2x faster (fewer pages pinned
# and fewer segments per request). For the same limit, fio needs reserved
# huge pages: as root, `echo 640 > /proc/sys/vm/nr_hugepages` (1.25 GiB)
# before the run. fio runs whose buffers (block size x depth) do not fit
# them, or all runs without them, use 4 KiB pages, and then the ratios
# flatter kvcached: the table says which.
hp=$(cat /proc/sys/vm/nr_hugepages 2>/dev/null || echo 0)
echo "fio buffers: ${hp:-0} huge pages reserved" >&2
fio_mem() {  # block size, depth -> fio's --iomem option if it fits
    local need=$(( $(numfmt --from=iec "$1") * $2 / 2097152 + 8 ))
    if [ "${hp:-0}" -ge "$need" ]; then echo "--iomem=shmhuge"; else echo "--iomem=malloc"; fi
}
echo "# store benchmark: $(date -u +%FT%TZ), $(uname -r), $(fio --version), file $file" \
     "on $(df --output=source "$dir" | tail -1), ${write} per block size, ${secs} s per read depth"
for cfg in $configs; do
    blk=${cfg%%:*}; slab=${cfg##*:}
    b=$(bytes "$blk"); s=$(bytes "$slab"); w=$(bytes "$write")
    w=$(( w / s * s ))                   # whole slabs, same bytes for both
    echo "## block $blk, slab $slab" >&2

    # Writes, alternating fio and the store (this disk's speed drifts).
    for r in $(seq "$reps"); do
        rm -f "$file"
        fio --name=seqwrite --rw=write --bs="$s" --size="$w" --iodepth="$wqd" \
            --end_fsync=0 "$(fio_mem "$s" "$wqd")" "${fio_common[@]}" >"$out/w.json"
        echo "fio write $b $wqd $(fio_result "$out/w.json" write)" >>"$results"
        # The store's own write shape: 4 MiB writes, at most 16 in flight
        # (STORE_CHUNK, the device's max_writes).
        rm -f "$file"
        fio --name=seqwrite4m --rw=write --bs=4M --size="$w" --iodepth=16 \
            --end_fsync=0 "$(fio_mem 4M 16)" "${fio_common[@]}" >"$out/w.json"
        echo "fio write4m $b 16 $(fio_result "$out/w.json" write)" >>"$results"
        rm -f "$file"
        "$bench" --phase write --path "$file" --block "$b" --slab "$s" \
            --write "$w" --wmem $(( (wqd + 1) * s )) | tee "$out/store.txt" >&2
        grep '^RESULT ' "$out/store.txt" | while read -r _ t bb q g p50 p99; do
            echo "kvcached $t $bb $wqd $g $p50 $p99" >>"$results"
            echo "kvcached write4m $bb 16 $g $p50 $p99" >>"$results"
        done
    done
    # Random reads of the store's last store file: fio over its first
    # $w bytes (all written), the store over its blocks, alternating.
    for q in $qds; do
        for r in $(seq "$reps"); do
            fio --name=randread --rw=randread --bs="$b" --size="$w" --iodepth="$q" \
                --time_based --runtime="$secs" --norandommap --randrepeat=0 \
                "$(fio_mem "$b" "$q")" "${fio_common[@]}" >"$out/r.json"
            echo "fio randread $b $q $(fio_result "$out/r.json" read)" >>"$results"
            prof=()
            [ "$perf" = 1 ] && prof=(perf record -q -g -o "$out/perf.$b.$q.$r" --)
            "${prof[@]}" "$bench" --phase read --path "$file" --block "$b" --slab "$s" \
                --write "$w" --seconds "$secs" --qd "$q" --seed "$r$q" \
                | tee "$out/store.txt" >&2
            grep '^RESULT ' "$out/store.txt" | while read -r _ t bb qq g p50 p99; do
                echo "kvcached $t $bb $qq $g $p50 $p99" >>"$results"
            done
        done
    done
    rm -f "$file"
    if [ "$perf" = 1 ]; then
        for q in $qds; do
            echo "## perf: store random reads, block $blk, $q in flight (self time, top 15)"
            perf report -q -i "$out/perf.$b.$q.1" --stdio --no-children -g none --sort dso,symbol \
                2>/dev/null | awk '/^ +[0-9]/ && n++ < 15'
        done
    fi
done

python3 - "$results" "$configs" <<'PY'
import sys
samples = {}
for line in open(sys.argv[1]):
    src, test, blk, q, g, p50, p99 = line.split()
    samples.setdefault((test, int(blk), int(q), src), []).append(
        (float(g), float(p50), float(p99)))
def mean(v):
    return sum(v) / len(v)
rows = {k: tuple(mean([x[i] for x in v]) for i in range(3)) for k, v in samples.items()}
slabs = {}
def size(s):
    m = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(float(s[:-1]) * m[s[-1]]) if s[-1] in m else int(s)
for c in sys.argv[2].split():
    b, s = c.split(":")
    slabs[size(b)] = s
def human(b):
    return "%d MiB" % (b >> 20) if b >= 1 << 20 else "%d KiB" % (b >> 10)
print()
print("| test | block | slab | in flight | fio GB/s | kvcached GB/s | kvcached/fio | goal "
      "| fio p50 / p99 µs | kvcached p50 / p99 µs | runs: kvcached/fio |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
ok = True
order = {"write": 0, "write4m": 1, "randread": 2}
names = {"write": "sequential write", "write4m": "sequential write, fio at 4 MiB x 16",
         "randread": "random read"}
for (test, blk, q, src) in sorted((k for k in rows if k[3] == "fio"),
                                  key=lambda k: (order[k[0]], k[1], k[2])):
    f = rows[(test, blk, q, "fio")]
    e = rows.get((test, blk, q, "kvcached"))
    goal = 0.95
    name = names[test]
    if e is None:
        print("| %s | %s | %s | %d | %.2f | - | - | missing | %.0f / %.0f | - |"
              % (name, human(blk), slabs.get(blk, "?"), q, f[0], f[1], f[2]))
        ok = False
        continue
    r = e[0] / f[0] if f[0] > 0 else 0
    met = r >= goal
    ok &= met
    runs = ", ".join("%.0f%%" % (100 * a[0] / b[0]) for a, b in
                     zip(samples[(test, blk, q, "kvcached")], samples[(test, blk, q, "fio")]) if b[0] > 0)
    print("| %s | %s | %s | %d | %.2f | %.2f | %.0f%% | %s %.0f%% | %.0f / %.0f | %.0f / %.0f%s | %s |"
          % (name, human(blk), slabs.get(blk, "?"), q, f[0], e[0], 100 * r,
             "met" if met else "**missed**", 100 * goal, f[1], f[2], e[1], e[2],
             " (put)" if test != "randread" else "", runs))
print()
print("GB/s and latencies: means of the runs. fio write latency is per slab-sized write; "
      "kvcached's is per store_put() call (a memcpy, or a wait for a free memory slab). "
      "Random reads: fio over the first bytes of the store's store file, the store over its blocks.")
print("goals: %s" % ("all met" if ok else "not all met"))
PY
