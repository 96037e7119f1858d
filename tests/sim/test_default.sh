#!/usr/bin/env bash
# test_default.sh BUILD_DIR SOURCE_DIR - kvcached started without --evict
# runs the default policy of docs/eviction.md, prefix+hint (prefix
# eviction, hint admission), and says so when it starts; --evict still
# picks another.
set -eu
build=$1
src=$2
dir=$(mktemp -d "${TMPDIR:-/var/tmp}/kvdefault-test-XXXXXX")
. "$src/tools/sim/daemon.sh"
trap 'kvd_stop; rm -rf "$dir"' EXIT
flags=(-D "$dir/store" -S 8m --slab-size 1m -m 2 --fresh)
kvd_start "$build" "$dir" "${flags[@]}"
kvd_stop
grep -q "evict prefix+hint" "$dir/daemon.log" ||
    { echo "default policy is not prefix+hint:"; cat "$dir/daemon.log"; exit 1; }
kvd_start "$build" "$dir" "${flags[@]}" --evict fifo+ghost
kvd_stop
grep -q "evict fifo+ghost" "$dir/daemon.log" ||
    { echo "--evict fifo+ghost not taken:"; cat "$dir/daemon.log"; exit 1; }
echo "default prefix+hint; --evict taken"
