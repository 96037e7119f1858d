#!/usr/bin/env bash
# bench/memcache.sh - the same random-block workload over the memcache text
# protocol against kvcached's memcache port and against memcached with
# extstore (same DRAM budget, same file size, same disk), in one run, then
# the protobuf path's figures (bench/kc_rpcbench) beside them.
#
#   bench/memcache.sh            # kvcached vs memcached+extstore
#   bench/memcache.sh pool       # multi-gets direct vs through nutcracker
#   bench/memcache.sh memcaslap  # memcaslap's default workload on both, same run
#
# Environment (defaults): DIR (./var/bench-mc, on the disk under test),
# VALUE (262144 bytes), MEM_MB (1024: kvcached -m, memcached -m), FILE_GB (8:
# kvcached -S, memcached's ext_path size), FILL_GB (4: data set, > DRAM so
# most gets read the device), SECS (10 per get phase), CONNS ("1 4 16"),
# BATCH (1 key per get), ROUNDS (3), RPCBENCH (1: run tools/kc_rpcbench after).
#
# memcached runs with -M (no silent eviction while extstore writes: a set
# refused for memory is retried) and its extstore file's page cache is
# dropped every 20 ms during gets (kc_mcbench --dontneed): memcached reads
# extstore with buffered I/O, which otherwise measures memory (PEERS.md).
# kvcached reads with O_DIRECT. Machines here are noisy (15-35% between
# runs): compare figures of one run, not across runs.
set -eu
cd "$(dirname "$0")/.."
B=${BUILD:-build}
KC=$B/daemon/kvcached
MCB=$B/bench/kc_mcbench
[ -x "$KC" ] && [ -x "$MCB" ] || { echo "build first: ninja -C $B"; exit 1; }
DIR=${DIR:-./var/bench-mc}
VALUE=${VALUE:-262144}
MEM_MB=${MEM_MB:-1024}
FILE_GB=${FILE_GB:-8}
FILL_GB=${FILL_GB:-4}
SECONDS_=${SECS:-10}
CONNS=${CONNS:-"1 4 16"}
BATCH=${BATCH:-1}
ROUNDS=${ROUNDS:-3}
KEYS=$(( FILL_GB * 1024 * 1024 * 1024 / VALUE ))
mkdir -p "$DIR"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 500); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.02; done; echo "port $1 not up"; exit 1; }

# kvcached on a fresh store; sets PORT to its memcache port.
# $1: store, $2: MiB of memory, $3: device size
start_kvcached() {
    PORT=$(free_port)
    "$KC" -D "$1" -S "$3" -m "$2" --fresh -s "" -p 0 --no-auth --memcache-port "$PORT" \
        --memcache-block "$VALUE" -I "$(( VALUE > 1048576 ? VALUE : 1048576 ))" \
        >"$1.log" 2>&1 &
    PIDS+=($!)
    wait_port "$PORT"
}

# Where the hits came from: "name port stat-of-DRAM-hits stat-of-device-hits".
hit_share() {
    python3 - "$@" <<'PY'
import socket, sys
name, port, mem, dev = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = socket.create_connection(("127.0.0.1", port)); s.sendall(b"stats\r\n"); b = b""
while not b.endswith(b"END\r\n"):
    b += s.recv(65536)
st = dict(l.split(" ")[1:3] for l in b.decode().split("\r\n") if l.startswith("STAT "))
hits = int(st["get_hits"])
m = int(st[mem]) if mem != "-" else hits - int(st[dev])
print("%-22s get_hits %d, from DRAM %.0f%%" % (name, hits, 100.0 * m / max(hits, 1)))
PY
}

stop_last() { local p=${PIDS[-1]}; kill "$p"; wait "$p" 2>/dev/null || true; unset 'PIDS[-1]'; }
PORT=0

run_gets() {  # name port extra-args...
    local name=$1 port=$2; shift 2
    for c in $CONNS; do
        printf '%-22s ' "$name"
        "$MCB" get --port "$port" --keys "$KEYS" --value "$VALUE" --conns "$c" \
            --batch "$BATCH" --seconds "$SECONDS_" "$@"
    done
}

if [ "${1:-}" = pool ]; then
    # GetPrefix-sized multi-gets (BATCH keys, default 16 x 64 KiB) of blocks
    # in DRAM: what the proxy hop costs. One daemon direct, the same daemon
    # behind a one-server nutcracker pool, three daemons behind a pool.
    command -v nutcracker >/dev/null || { echo "nutcracker not installed"; exit 1; }
    VALUE=${VALUE_POOL:-65536}; BATCH=${BATCH_POOL:-16}; KEYS=${KEYS_POOL:-3000}
    start_kvcached "$DIR/p1.store" 512 2g; p1=$PORT
    start_kvcached "$DIR/p2.store" 512 2g; p2=$PORT
    start_kvcached "$DIR/p3.store" 512 2g; p3=$PORT
    mkpool() {  # conf listen servers...
        local conf=$1 listen=$2; shift 2
        printf 'kv:\n  listen: 127.0.0.1:%s\n  hash: md5\n  distribution: ketama\n  timeout: 5000\n  servers:\n' "$listen" >"$conf"
        for s in "$@"; do echo "   - 127.0.0.1:$s:1" >>"$conf"; done
        nutcracker -c "$conf" -s "$(free_port)" -o "$conf.log" -p "$conf.pid" &
        PIDS+=($!)
        wait_port "$listen"
    }
    n1=$(free_port); mkpool "$DIR/one.yml" "$n1" "$p1"
    n3=$(free_port); mkpool "$DIR/three.yml" "$n3" "$p1" "$p2" "$p3"
    echo "pool: $KEYS blocks of $VALUE bytes, gets of $BATCH keys, ${SECONDS_} s per line"
    "$MCB" fill --port "$p1" --keys "$KEYS" --value "$VALUE" --hex 1 >/dev/null
    "$MCB" fill --port "$n3" --keys "$KEYS" --value "$VALUE" --hex 2 >/dev/null
    run_gets "direct, 1 daemon" "$p1" --hex 1
    run_gets "nutcracker, 1 daemon" "$n1" --hex 1
    run_gets "nutcracker, 3 daemons" "$n3" --hex 2
    exit 0
fi

if [ "${1:-}" = memcaslap ]; then
    # libmemcached's load generator with its default workload (90% get,
    # 10% set, 16 connections, small values, keys with any byte but a space)
    # for SECS seconds per round, kvcached and plain memcached alternating.
    command -v memcaslap >/dev/null || { echo "libmemcached-tools not installed"; exit 1; }
    # small values: index sized for 4 KiB items, memcached-sized 1 MiB slabs
    kp=$(free_port)
    "$KC" -D "$DIR/cl.store" -S "${FILE_GB}g" -m "$MEM_MB" --fresh -s "" -p 0 --no-auth \
        --memcache-port "$kp" --slab-size 1m --min-item-size 4k >"$DIR/cl.log" 2>&1 &
    PIDS+=($!)
    wait_port "$kp"
    mp=$(free_port)
    U=(); [ "$(id -u)" -eq 0 ] && U=(-u root)
    "$(command -v memcached || echo /usr/bin/memcached)" "${U[@]}" -p "$mp" -U 0 \
        -l 127.0.0.1 -m "$MEM_MB" >"$DIR/mc.log" 2>&1 &
    PIDS+=($!)
    wait_port "$mp"
    echo "memcaslap default workload, ${SECONDS_} s per line, $ROUNDS rounds"
    for r in $(seq "$ROUNDS"); do
        for s in "kvcached $kp" "memcached $mp"; do
            set -- $s
            out=$(memcaslap -s "127.0.0.1:$2" -t "${SECONDS_}s" 2>&1)
            errs=$(grep -ciE "error|failed" <<<"$out" || true)
            printf '%-10s round %d: %s, get_misses %s, error lines %s\n' "$1" "$r" \
                "$(grep -o 'TPS: [0-9]*' <<<"$out" | tail -1)" \
                "$(grep -o 'get_misses: [0-9]*' <<<"$out" | head -1 | cut -d' ' -f2)" "$errs"
        done
    done
    exit 0
fi

echo "memcache protocol: $KEYS values of $VALUE bytes ($FILL_GB GiB), DRAM $MEM_MB MiB," \
     "file $FILE_GB GiB each in $DIR, gets of $BATCH key(s), ${SECONDS_} s per line," \
     "$ROUNDS rounds alternating the two servers"
# kvcached: hex keys of one namespace of VALUE-byte blocks
start_kvcached "$DIR/kc.store" "$MEM_MB" "${FILE_GB}g"; kp=$PORT
# memcached + extstore, same DRAM and file size, both up at once
MC=$(command -v memcached || echo /usr/bin/memcached)
mp=$(free_port)
rm -f "$DIR/mc.ext"
U=(); [ "$(id -u)" -eq 0 ] && U=(-u root)
ITEM_MAX=$(( VALUE * 2 > 1048576 ? VALUE * 2 : 1048576 ))
"$MC" "${U[@]}" -p "$mp" -U 0 -l 127.0.0.1 -m "$MEM_MB" -I "$ITEM_MAX" -M \
    -o "ext_path=$DIR/mc.ext:${FILE_GB}G" >"$DIR/mc.log" 2>&1 &
PIDS+=($!)
wait_port "$mp"
printf '%-22s ' "kvcached fill"; "$MCB" fill --port "$kp" --keys "$KEYS" --value "$VALUE" --hex 1
printf '%-22s ' "memcached fill"; "$MCB" fill --port "$mp" --keys "$KEYS" --value "$VALUE"
# let background writes (memcached's extstore, kvcached's flushes) settle
sync; sleep "${SETTLE:-10}"
# rounds alternate the servers so that noise from neighbours hits both
for c in $CONNS; do
    for r in $(seq "$ROUNDS"); do
        printf '%-22s ' "kvcached get"
        "$MCB" get --port "$kp" --keys "$KEYS" --value "$VALUE" --conns "$c" \
            --batch "$BATCH" --seconds "$SECONDS_" --seed "$r" --hex 1
        printf '%-22s ' "memcached+ext get"
        "$MCB" get --port "$mp" --keys "$KEYS" --value "$VALUE" --conns "$c" \
            --batch "$BATCH" --seconds "$SECONDS_" --seed "$r" --dontneed "$DIR/mc.ext"
    done
done
hit_share "kvcached" "$kp" kc_get_hits_mem -
hit_share "memcached+ext" "$mp" - get_extstore
stop_last
stop_last
rm -f "$DIR/mc.ext" "$DIR/kc.store"

if [ "${RPCBENCH:-1}" = 1 ] && [ -x "$B/bench/kc_rpcbench" ]; then
    echo "protobuf path (bench/kc_rpcbench --seconds 2 --rounds 1):"
    "$B/bench/kc_rpcbench" --seconds 2 --rounds 1 --dir "$DIR/rpc"
fi
