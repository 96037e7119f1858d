#!/bin/sh
# layer_inc.sh OUT SRCROOT DIR... - make OUT a folder of links to the named
# module folders of SRCROOT and nothing else: the include root of a module
# that may include those modules' headers ("ssd/kc_dev.h") and no others
# (meson.build, "Layering").
set -eu
out=$1 root=$2
shift 2
rm -rf "$out"
mkdir -p "$out"
for d in "$@"; do
    ln -s "$root/$d" "$out/$d"
done
