#!/usr/bin/env bash
# bench/compare.sh - kvcached side by side with the device limit (fio) and
# with memcached+extstore, in one run, on one file.
#
#   bash bench/compare.sh [options]
#
# 1. fio on the benchmark file: sequential write (1 MiB, iodepth 32) and
#    random read at each block size and each connection count used below;
#    the random reads again, alternating with each server's gets in rounds,
#    on the file as that server wrote it (the limit its figures are divided
#    by; medians of the rounds).
# 2. kvcached on the same file (same size, DRAM budget --dram): fill the key
#    space (--data bytes of blocks, well over the DRAM budget), then random
#    gets at each connection count; then the chat and trace workloads.
# 3. memcached with extstore on the same file, same size, same -m: the same
#    fill (with -M, so nothing is silently evicted: a refused set is retried)
#    and the same random gets, its page cache dropped continually so that
#    extstore reads reach the disk (bench/compare_dropcache.py); then the same
#    chat and trace workloads (GetPrefix as a multi-get; without -M there,
#    evicting as a cache does).
# 4. OUT/compare.md (table, each figure also as a ratio to fio) and
#    OUT/compare.png (gnuplot), from OUT/results.jsonl.
#
# Runs in about 5-6 minutes at the defaults. The machine must be otherwise
# idle for the figures to mean anything (see /work/shared/PEERS.md).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
DIR=/var/tmp/kvcache-compare      # where the benchmark file lives
OUT=""
FILE_SIZE_G=8                     # file size, GiB
DRAM_M=1024                       # DRAM budget of both servers, MiB
DATA_G=6                          # bytes of blocks written by the fill, GiB
BLOCKS="256k 1m"                  # block sizes
CONNS="1 4 16"                    # connection counts (= fio iodepths)
SECS=8                            # seconds of each measured figure
ROUNDS=3                          # server gets and fio reads alternate in this many rounds
TRANSPORT=unix                    # unix or tcp, for both servers
WORKLOADS="random chat trace"     # kvcached workloads (random also on memcached)
TRACE=/work/shared/traces/mooncake_synthetic_trace.jsonl
KEEP=0

usage() {
    sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
    cat <<EOT
Options (defaults in brackets):
  --dir DIR          where the benchmark file is created [$DIR]
  --out DIR          results [build/compare-DATE]
  --file-size GIB    benchmark file size [$FILE_SIZE_G]
  --dram MIB         DRAM budget of kvcached (-m) and memcached (-m) [$DRAM_M]
  --data GIB         data written by the fill [$DATA_G]
  --blocks "LIST"    block sizes [$BLOCKS]
  --conns "LIST"     connection counts [$CONNS]
  --secs N           seconds of each measured figure [$SECS]
  --rounds N         gets and fio reads alternate in N rounds of SECS/N,
                     medians reported [$ROUNDS]
  --transport T      unix or tcp [$TRANSPORT]
  --workloads "LIST" kvcached workloads among random chat trace [$WORKLOADS]
  --trace FILE       trace of the trace workload [$TRACE]
  --keep             keep the benchmark file
  --quick            a smoke run: 1 GiB file, 256 MiB DRAM, 256k, conns 1 4, 2 s
EOT
}

while [ $# -gt 0 ]; do
    case $1 in
    --dir) DIR=$2; shift ;;
    --out) OUT=$2; shift ;;
    --file-size) FILE_SIZE_G=$2; shift ;;
    --dram) DRAM_M=$2; shift ;;
    --data) DATA_G=$2; shift ;;
    --blocks) BLOCKS=$2; shift ;;
    --conns) CONNS=$2; shift ;;
    --secs) SECS=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --transport) TRANSPORT=$2; shift ;;
    --workloads) WORKLOADS=$2; shift ;;
    --trace) TRACE=$2; shift ;;
    --keep) KEEP=1 ;;
    --quick) FILE_SIZE_G=1; DRAM_M=256; DATA_G=0.75; BLOCKS=256k; CONNS="1 4"; SECS=2; ROUNDS=2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "compare.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

OUT=${OUT:-$BUILD/compare-$(date -u +%Y%m%d-%H%M%S)}
KVCACHED=$BUILD/daemon/kvcached
BENCH=$BUILD/tools/loadgen/kvcache-bench
REPORT="python3 $ROOT/bench/compare_report.py"
for t in fio memcached gnuplot python3; do
    command -v $t >/dev/null || { echo "compare.sh: $t missing (bash scripts/deps.sh)" >&2; exit 1; }
done
for b in "$KVCACHED" "$BENCH"; do
    [ -x "$b" ] || { echo "compare.sh: $b missing: meson setup build && ninja -C build" >&2; exit 1; }
done
mkdir -p "$DIR" "$OUT"
FILE=$DIR/bench.store
SOCK=$DIR/server.sock
RESULTS=$OUT/results.jsonl
: >"$RESULTS"
LOG=$OUT/log.txt
SERVER_PID=""; DROP_PID=""

# Stop what this script started, by pid.
stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
    if [ -n "$DROP_PID" ]; then
        kill "$DROP_PID" 2>/dev/null || true
        wait "$DROP_PID" 2>/dev/null || true
        DROP_PID=""
    fi
    rm -f "$SOCK"
}
cleanup() {
    stop_server
    [ "$KEEP" = 1 ] || rm -f "$FILE"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free TCP port.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Size argument in bytes ("256k" -> 262144).
bytes_of() {
    python3 -c 'import sys; s=sys.argv[1].lower(); m={"k":1<<10,"m":1<<20,"g":1<<30}
print(int(float(s[:-1])*m[s[-1]]) if s[-1] in m else int(s))' "$1"
}

# Wait until a path exists or a port accepts (max 30 s).
wait_ready() {
    for _ in $(seq 300); do
        if [ "$TRANSPORT" = unix ]; then [ -S "$SOCK" ] && return 0
        else (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && return 0; fi
        kill -0 "$SERVER_PID" 2>/dev/null || { echo "server died, see $LOG" >&2; exit 1; }
        sleep 0.1
    done
    echo "server not ready after 30 s" >&2; exit 1
}

# After a burst of writes the host's write cache drains for a while and
# reads crawl (0.04-0.2 GB/s instead of 1+ on these machines). Wait until
# 1-second random-read probes of the file (256 KiB, iodepth 4, read-only)
# reach 60% of the first settled probe (BASELINE) three times in a row, or,
# for that first one, until three probes in a row agree within 25% with the
# one before; at most SETTLE_MAX seconds.
BASELINE=0
SETTLE_MAX=45
probe() {
    local size
    size=$(( $(stat -c %s "$FILE") / 1048576 * 1048576 ))
    fio --name=probe --filename="$FILE" --size="$size" --readonly --rw=randread --bs=256k \
        --iodepth=4 --ioengine=io_uring --direct=1 --time_based --runtime=1 \
        --randrepeat=0 --output-format=json 2>>"$LOG" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["jobs"][0]["read"]["bw_bytes"])'
}
settle() {
    local prev=0 cur i ok good=0
    sync
    for i in $(seq "$SETTLE_MAX"); do
        cur=$(probe)
        if [ "$BASELINE" = 0 ]; then
            ok=$(python3 -c "print(int($i > 1 and $cur > 1e8 and abs($prev - $cur) <= 0.25 * max($prev, $cur)))")
        else
            ok=$(python3 -c "print(int($cur >= 0.6 * $BASELINE))")
        fi
        # three good probes in a row: the drain comes in waves
        if [ "$ok" = 1 ]; then good=$((good + 1)); else good=0; fi
        if [ "$good" -ge 3 ]; then
            [ "$BASELINE" = 0 ] && BASELINE=$cur
            echo "  settled after $i s ($(python3 -c "print(f'{$cur/1e9:.2f}')") GB/s probe)" >&2
            return 0
        fi
        prev=$cur
    done
    echo "  device did not settle in $SETTLE_MAX s (last probe $(python3 -c "print(f'{$cur/1e9:.2f}')") GB/s)" >&2
}

# fio random reads of one block size at each iodepth, read-only, within the
# file as it is now; TAG says when ("start", or before whose gets).
fio_reads() {  # tag bs
    local size
    size=$(( $(stat -c %s "$FILE") / 1048576 * 1048576 ))
    for qd in $CONNS; do
        fio --name=randread --filename="$FILE" --size="$size" --readonly --rw=randread \
            --bs="$2" --iodepth="$qd" --ioengine=io_uring --direct=1 --time_based \
            --runtime="$SECS" --randrepeat=0 --output-format=json 2>>"$LOG" |
            $REPORT add "$RESULTS" fio randread "$(bytes_of "$2")" "$qd" "$1"
    done
}

# One fio random read run: TAG, block size, iodepth, milliseconds.
fio_read() {  # tag bs qd ms
    local size
    size=$(( $(stat -c %s "$FILE") / 1048576 * 1048576 ))
    fio --name=randread --filename="$FILE" --size="$size" --readonly --rw=randread \
        --bs="$2" --iodepth="$3" --ioengine=io_uring --direct=1 --time_based \
        --runtime="$4ms" --randrepeat=0 --output-format=json 2>>"$LOG" |
        $REPORT add "$RESULTS" fio randread "$(bytes_of "$2")" "$3" "$1"
}

# Random gets of SYSTEM at each connection count, alternating with fio
# random reads at the same iodepth on the same file, ROUNDS times each, so
# that both see the device in the same state (the report takes medians).
gets_vs_fio() {  # system bs keys
    local block c r ms
    block=$(bytes_of "$2")
    ms=$(python3 -c "print(max(500, int($SECS * 1000 / $ROUNDS)))")
    for c in $CONNS; do
        for r in $(seq "$ROUNDS"); do
            fio_read "$1" "$2" "$c" "$ms"
            bench "$1" get "$block" "$c" -b "$block" -k "$3" -d "$(python3 -c "print($ms / 1000)")" \
                --seed "$((7 + r))"
        done
    done
}

FILE_BYTES=$((FILE_SIZE_G * 1024 * 1024 * 1024))
MAXCONNS=$(echo $CONNS | tr ' ' '\n' | sort -n | tail -1)
START=$(date +%s)
echo "compare: file $FILE (${FILE_SIZE_G} GiB), DRAM ${DRAM_M} MiB, fill ${DATA_G} GiB," \
     "blocks $BLOCKS, conns $CONNS, ${SECS} s a figure in $ROUNDS rounds, $TRANSPORT sockets;" \
     "results in $OUT" >&2
uptime >&2

# ---- 1. fio ----
echo "== fio" >&2
rm -f "$FILE"
# one pass over the file: it lays the file out for everything after
fio --name=seqwrite --filename="$FILE" --size="$FILE_BYTES" --rw=write --bs=1m --iodepth=32 \
    --ioengine=io_uring --direct=1 --output-format=json \
    2>>"$LOG" | $REPORT add "$RESULTS" fio seqwrite $((1 << 20)) 32
settle
for bs in $BLOCKS; do
    fio_reads start "$bs"
done

# Run kvcache-bench against the server now up; record `test` from its JSON.
bench() {  # system test block conns args...
    local system=$1 test=$2 block=$3 conns=$4; shift 4
    local target
    if [ "$system" = memcached ]; then
        target="--memcache $([ "$TRANSPORT" = unix ] && echo "unix:$SOCK" || echo "127.0.0.1:$PORT")"
    else
        target="--server $([ "$TRANSPORT" = unix ] && echo "unix:$SOCK" || echo "tcp:127.0.0.1:$PORT")"
    fi
    local json=$OUT/$system-$test-$block-$conns.json n=1
    while [ -e "$json" ]; do n=$((n + 1)); json=$OUT/$system-$test-$block-$conns.$n.json; done
    "$BENCH" $target --json -q --verify -c "$conns" "$@" >"$json" 2>>"$LOG" || {
        local rc=$?
        # 3 = ran with some failed requests: keep the figures, say so
        [ $rc -eq 3 ] || { echo "kvcache-bench failed ($rc), see $LOG" >&2; exit 1; }
        echo "  (some requests failed: see $json)" >&2
    }
    if [ "$test" = fill ]; then
        $REPORT add "$RESULTS" "$system" fill "$block" "$conns" <"$json"
    else
        $REPORT add "$RESULTS" "$system" "$test" "$block" "$conns" <"$json"
    fi
}

# Random blocks: fill with the most connections, then gets at each count.
random_runs() {  # system
    local system=$1 bs=$2
    local block; block=$(bytes_of "$bs")
    local keys; keys=$(python3 -c "print(int($DATA_G * (1 << 30) // $block))")
    bench "$system" fill "$block" "$MAXCONNS" -b "$block" -k "$keys" --fill -n 1 --seed 7
    settle
    gets_vs_fio "$system" "$bs" "$keys"
}

start_kvcached() {  # block
    rm -f "$SOCK"
    PORT=$(free_port)
    local listen=(-s "$SOCK" -p -1)
    [ "$TRANSPORT" = tcp ] && listen=(-s "" -p "$PORT" --no-auth)
    # started directly (no subshell in between), so that $! is the daemon
    "$KVCACHED" "${listen[@]}" -D "$FILE" -S "${FILE_SIZE_G}g" -m "$DRAM_M" --fresh \
        --min-item-size "$1" >>"$LOG" 2>&1 &
    SERVER_PID=$!
    wait_ready
}

start_memcached() {  # block (unused) [evict]: with "evict", no -M
    local nomem=-M
    [ "${2:-}" = evict ] && nomem=""
    rm -f "$SOCK"
    PORT=$(free_port)
    local listen="-s $SOCK -a 0700"
    [ "$TRANSPORT" = tcp ] && listen="-l 127.0.0.1 -p $PORT"
    rm -f "$FILE"
    # -M (random gets): refuse rather than evict, so that the fill is all
    # there; the chat and trace runs let it evict, as a cache does (under -M
    # it refuses most of their puts while extstore catches up). -I 2m: 1 MiB
    # values fit. extstore on the same file size; items over 4 KiB go to it.
    memcached -u "$(id -un)" $listen -U 0 -m "$DRAM_M" -c 1024 -t 2 $nomem -I 2m \
        -o "ext_path=$FILE:${FILE_SIZE_G}G,ext_item_size=4096,ext_threads=4" >>"$LOG" 2>&1 &
    SERVER_PID=$!
    wait_ready
}

# ---- 2. kvcached ----
for bs in $BLOCKS; do
    echo "== kvcached, $bs blocks" >&2
    start_kvcached "$bs"
    case " $WORKLOADS " in *" random "*) random_runs kvcached "$bs" ;; esac
    stop_server
done
FIRST_BLOCK=$(bytes_of "$(echo $BLOCKS | cut -d' ' -f1)")

# The chat and trace workloads on a fresh server (start_kvcached or
# start_memcached), the first block size.
prefix_runs() {  # system start-function
    case " $WORKLOADS " in *" chat "*)
        echo "== $1, chat" >&2
        $2 "$FIRST_BLOCK"
        [ "$1" = memcached ] && { python3 "$ROOT/bench/compare_dropcache.py" "$FILE" 10 & DROP_PID=$!; }
        bench "$1" chat "$FIRST_BLOCK" "$MAXCONNS" -w chat -b "$FIRST_BLOCK" -d "$SECS" \
            --conversations 256 --seed 7
        stop_server ;;
    esac
    case " $WORKLOADS " in *" trace "*)
        echo "== $1, trace replay" >&2
        $2 "$FIRST_BLOCK"
        [ "$1" = memcached ] && { python3 "$ROOT/bench/compare_dropcache.py" "$FILE" 10 & DROP_PID=$!; }
        bench "$1" trace "$FIRST_BLOCK" "$MAXCONNS" -w trace -t "$TRACE" -b "$FIRST_BLOCK" \
            -d "$SECS" --seed 7
        stop_server ;;
    esac
}
prefix_runs kvcached start_kvcached

# ---- 3. memcached + extstore ----
case " $WORKLOADS " in *" random "*)
    for bs in $BLOCKS; do
        echo "== memcached+extstore, $bs blocks" >&2
        start_memcached
        block=$(bytes_of "$bs")
        keys=$(python3 -c "print(int($DATA_G * (1 << 30) // $block))")
        bench memcached fill "$block" "$MAXCONNS" -b "$block" -k "$keys" --fill -n 1 --seed 7
        settle
        python3 "$ROOT/bench/compare_dropcache.py" "$FILE" 10 &
        DROP_PID=$!
        gets_vs_fio memcached "$bs" "$keys"
        # its own counters, to show the gets were served by extstore
        python3 - "$TRANSPORT" "$SOCK" "${PORT:-0}" >"$OUT/memcached-stats-$bs.txt" <<'PY' || true
import socket, sys
t, path, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_UNIX) if t == "unix" else socket.socket()
s.connect(path if t == "unix" else ("127.0.0.1", port))
s.sendall(b"stats\r\n")
buf = b""
while not buf.endswith(b"END\r\n"):
    buf += s.recv(65536)
print(buf.decode().replace("\r", ""), end="")
PY
        grep -E "get_hits|get_misses|get_extstore|extstore_bytes_read|extstore_objects_evicted|evictions" \
            "$OUT/memcached-stats-$bs.txt" | tr '\n' ' ' | sed 's/STAT //g; s/^/  memcached: /' >&2
        echo >&2
        stop_server
    done ;;
esac
start_memcached_evicting() { start_memcached "$1" evict; }
prefix_runs memcached start_memcached_evicting

# ---- 4. report ----
$REPORT report "$RESULTS" "$OUT"
echo "compare: done in $(( $(date +%s) - START )) s: $OUT/compare.md, $OUT/compare.png" >&2
cat "$OUT/compare.md"
