#!/usr/bin/env bash
# Build the Debian packages from this tree (dpkg-buildpackage -us -uc -b in a
# temporary copy), run lintian, extract them into a clean root and check
# where their files land, then run the packaged daemon by its unit's command
# line and use it with the demo chat (built against libkvcache-dev), the
# Python module and kvcache stats. With --system (as root, on a machine
# where kvcached is not installed): also dpkg -i, serve on
# /run/kvcached/kvcached.sock as user kvcached, dpkg --purge.
# The same check is the meson test debian_packages (tests/pkg/test_packages.py).
set -eu
cd "$(dirname "$0")/.."
bash scripts/deps.sh
KC_SOURCE=$PWD exec /usr/bin/python3 -u tests/pkg/test_packages.py "$@"
