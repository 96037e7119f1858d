#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds twice (plain, and
# with AddressSanitizer + UndefinedBehaviorSanitizer), runs every meson test
# in both, and ends with one line "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
bash scripts/deps.sh || { echo "0 passed, 1 failed"; exit 1; }

passed=0; failed=0
run_suite() {  # name, build dir, meson setup args...
    local name=$1 dir=$2; shift 2
    if [ ! -f "$dir/build.ninja" ]; then
        meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; failed=$((failed+1)); return; }
    fi
    if ! ninja -C "$dir" >"$dir.build.log" 2>&1; then
        tail -50 "$dir.build.log"; echo "$name: build failed"; failed=$((failed+1)); return
    fi
    meson test -C "$dir" --print-errorlogs --num-processes 2 --timeout-multiplier 3
    local counts
    counts=$(python3 - "$dir/meson-logs/testlog.json" <<'PY'
import json, sys
p = f = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["result"] in ("OK", "EXPECTEDFAIL", "SKIP"): p += 1
    else: f += 1
print(p, f)
PY
)
    set -- $counts
    echo "$name: $1 passed, $2 failed"
    passed=$((passed+$1)); failed=$((failed+$2))
}
run_suite plain build
run_suite asan build-asan -Db_sanitize=address,undefined -Db_lundef=false -Djemalloc=disabled
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
