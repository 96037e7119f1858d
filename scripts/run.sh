#!/usr/bin/env bash
# The main job: install what is missing, build, start kvcached on its
# default store (./var/kvcache.store, socket ./var/kvcached.sock; no TCP
# unless -p is given), play a short multi-turn chat against it with the demo
# client, then stop the daemon with SIGTERM (it flushes; the next start is
# warm). With SERVE=1 the daemon keeps running in the foreground afterwards.
# Extra arguments go to kvcached (see build/daemon/kvcached --help).
set -eu
cd "$(dirname "$0")/.."
bash scripts/deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
mkdir -p var
./build/daemon/kvcached "$@" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    [ -S var/kvcached.sock ] && break
    kill -0 $pid 2>/dev/null || { echo "kvcached did not start" >&2; exit 1; }
    sleep 0.1
done
./build/client/kvcache-chat unix:var/kvcached.sock
if [ "${SERVE:-0}" = 1 ]; then
    echo "kvcached is serving (pid $pid); Ctrl-C stops it"
    wait $pid
fi
