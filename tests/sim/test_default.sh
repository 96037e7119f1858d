#!/usr/bin/env bash
# test_default.sh BUILD_DIR - kvcached started without --evict runs the
# default policy of docs/eviction.md, prefix+hint (prefix eviction, hint
# admission), and says so when it starts; --evict still picks another.
set -eu
build=$1
dir=$(mktemp -d "${TMPDIR:-/var/tmp}/kvdefault-test-XXXXXX")
pid=
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
}
trap cleanup EXIT
# start kvcached with the extra flags given, wait for its socket, stop it;
# its log is left in $dir/daemon.log
run_daemon() {
    rm -f "$dir/sock" "$dir/store"
    "$build/daemon/kvcached" -s "$dir/sock" -p -1 -D "$dir/store" -S 8m --slab-size 1m -m 2 \
        --fresh "$@" >"$dir/daemon.log" 2>&1 &
    pid=$!
    for _ in $(seq 200); do
        [ -S "$dir/sock" ] && break
        kill -0 "$pid" 2>/dev/null || { cat "$dir/daemon.log"; exit 1; }
        sleep 0.05
    done
    [ -S "$dir/sock" ] || { echo "kvcached did not start"; cat "$dir/daemon.log"; exit 1; }
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
    pid=
}
run_daemon
grep -q "evict prefix+hint" "$dir/daemon.log" ||
    { echo "default policy is not prefix+hint:"; cat "$dir/daemon.log"; exit 1; }
run_daemon --evict fifo+ghost
grep -q "evict fifo+ghost" "$dir/daemon.log" ||
    { echo "--evict fifo+ghost not taken:"; cat "$dir/daemon.log"; exit 1; }
echo "default prefix+hint; --evict taken"
