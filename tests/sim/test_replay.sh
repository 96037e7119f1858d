#!/usr/bin/env bash
# test_replay.sh BUILD_DIR SOURCE_DIR - a generated chat trace replayed
# through the running daemon with the load generator gives the prefix hit
# ratio of kvcache-sim within 0.01, with and without hint admission, at a
# capacity the trace overflows. (The policies that copy, `prefix` and
# `prefix+hint`, are left out: their copies wait for a background read-back
# on a device, so on a loaded machine they drift further; docs/eviction.md
# gives their figures.)
set -eu
build=$1
src=$2
dir=$(mktemp -d "${TMPDIR:-/var/tmp}/kvreplay-test-XXXXXX")
trap 'rm -rf "$dir"' EXIT
"$build/tools/sim/kvcache-sim" -t chat --conversations 400 --write-trace "$dir/chat.jsonl" \
    -p fifo -c 1000 --no-bounds >/dev/null
for p in fifo lru fifo+hint lru+hint; do
    bash "$src/tools/sim/replay.sh" "$dir/chat.jsonl" "$p" 1000 0.01 "$build"
done
