#!/bin/sh
# layer_check.sh SRCROOT - the include paths of meson.build keep slab/ and
# ssd/ off daemon/, client/ and proto/, ssd/ off slab/, and client/ off
# daemon/ and slab/; a relative include ("../daemon/x.h") would sidestep
# them. Fails, naming the lines, if any file of those folders has one.
set -u
cd "$1"
bad=$(grep -n '#[[:space:]]*include[[:space:]]*"\.\./' slab/*.[ch] ssd/*.[ch] client/*.[ch] 2>/dev/null)
if [ -n "$bad" ]; then
    echo "relative includes cross the layering:"
    echo "$bad"
    exit 1
fi
echo "layering: no relative includes in slab/, ssd/, client/"
