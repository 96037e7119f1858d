#!/usr/bin/env bash
# make_carry.sh - gather what gpu_bench.sh needs on a machine without Debian's
# packages: kvcached, libkvcache.so and the shared libraries they link that
# are not part of every Linux (liburing, libxxhash, libprotobuf-c,
# libjemalloc), into one folder (default gpu-carry/ in the repo root).
#   meson setup build && ninja -C build && bash examples/engine/make_carry.sh [DIR]
set -eu
cd "$(dirname "$0")/../.."
DIR=${1:-gpu-carry}
BUILD=${BUILD:-build}
mkdir -p "$DIR"
cp -L "$BUILD/daemon/kvcached" "$DIR/"
cp -L "$BUILD/client/libkvcache.so" "$DIR/libkvcache.so"
cp -L "$BUILD/client/libkvcache.so" "$DIR/libkvcache.so.0"
for bin in "$BUILD/daemon/kvcached" "$BUILD/client/libkvcache.so"; do
    ldd "$bin" | awk '/=> \// {print $1, $3}' | while read -r name path; do
        case "$name" in
            liburing*|libxxhash*|libprotobuf-c*|libjemalloc*) cp -L "$path" "$DIR/$name" ;;
        esac
    done
done
ls -la "$DIR"
du -sh "$DIR"
