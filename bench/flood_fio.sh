#!/usr/bin/env bash
# bench/flood_fio.sh - the device's own limit for kc_rpcbench --flood: how
# much a flood of writes raises the tail latency of reads at depth 1 on the
# same file system, measured by fio alone. kc_rpcbench --flood reports
# kvcached's GetPrefix p99 under a Put flood as a multiple of its p99 alone;
# this prints the same multiple for raw O_DIRECT reads under raw writes, so
# the two can be read side by side.
#   bash bench/flood_fio.sh [--dir DIR] [--gib N] [--seconds S] [--rate MB/s]
# --rate: the writers' total rate (default: unlimited, as a Put flood is).
set -eu
dir=/var/tmp/kc-flood-fio gib=4 secs=10 rate=
while [ $# -gt 0 ]; do
    case $1 in
        --dir) dir=$2; shift 2;;
        --gib) gib=$2; shift 2;;
        --seconds) secs=$2; shift 2;;
        --rate) rate=$2; shift 2;;
        *) echo "usage: flood_fio.sh [--dir DIR] [--gib N] [--seconds S] [--rate MB/s]" >&2; exit 2;;
    esac
done
command -v fio >/dev/null || { echo "fio is not installed (apt-get install fio)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 is needed to read fio's JSON" >&2; exit 1; }
mkdir -p "$dir"
rf=$dir/read.file wf=$dir/write.file
trap 'rm -f "$rf" "$wf"' EXIT
fio --name=fill --filename="$rf" --size="${gib}g" --rw=write --bs=4m \
    --direct=1 --ioengine=io_uring --iodepth=8 --output=/dev/null
# p99 of completion latency, in ms, of job 0 of fio's JSON on stdin
p99() {
    python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]["read"]["clat_ns"]["percentile"]; print("%.2f %.2f" % (j["50.000000"]/1e6, j["99.000000"]/1e6))'
}
printf '%-6s %-28s %-28s %s\n' block "fio read alone p50/p99 ms" "under a write flood p50/p99" "p99 ratio"
for bs in 256k 1m; do
    common=(--filename="$rf" --rw=randread --bs=$bs --direct=1 --ioengine=io_uring
            --iodepth=1 --time_based --runtime="$secs")
    alone=$(fio --output-format=json --name=read "${common[@]}" | p99)
    flood=$(fio --output-format=json --name=read "${common[@]}" \
        --name=flood --filename="$wf" --size="${gib}g" --rw=write --bs=1m \
        --direct=1 --ioengine=io_uring --iodepth=16 --time_based \
        --runtime="$secs" ${rate:+--rate=${rate}m} | p99)
    set -- $alone; a50=$1 a99=$2
    set -- $flood; f50=$1 f99=$2
    printf '%-6s %-28s %-28s %.2fx\n' $bs "$a50 / $a99" "$f50 / $f99" \
        "$(python3 -c "print($f99 / $a99)")"
done
