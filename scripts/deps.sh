#!/usr/bin/env bash
# Install the Debian 12 packages kvcached needs to build, test and benchmark,
# if any is missing. Runs apt-get update once, then apt-get install -y.
set -eu
pkgs=(build-essential pkg-config meson ninja-build python3
      liburing-dev libxxhash-dev libjemalloc-dev libprotobuf-c-dev protobuf-c-compiler
      fio memcached netcat-openbsd python3-torch python3-numpy
      nutcracker libmemcached-tools python3-pymemcache)
pkgs+=(gnuplot-nox)  # bench/compare.sh draws its chart with gnuplot
# the manual pages (scdoc), the Debian packages and their checks (tests/pkg),
# pip install of the Python binding with Debian's setuptools
pkgs+=(scdoc debhelper dh-python fakeroot lintian python3-setuptools python3-pip)
pkgs+=(python3-yaml)  # tests/ops reads the alert rules
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
