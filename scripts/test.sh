#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds twice (plain, and
# with AddressSanitizer + UndefinedBehaviorSanitizer), runs every meson test
# in both, and ends with one line "N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/.."
bash scripts/deps.sh || { echo "0 passed, 1 failed"; exit 1; }

passed=0; failed=0; skipped=0
run_suite() {  # name, build dir, meson setup args...
    local name=$1 dir=$2; shift 2
    if [ ! -f "$dir/build.ninja" ]; then
        if ! meson setup "$dir" "$@" >"$dir.setup.log" 2>&1; then
            cat "$dir.setup.log"; echo "$name: setup failed"; failed=$((failed+1)); return
        fi
    fi
    if ! ninja -C "$dir" >"$dir.build.log" 2>&1; then
        tail -50 "$dir.build.log"; echo "$name: build failed"; failed=$((failed+1)); return
    fi
    rm -f "$dir/meson-logs/testlog.json"
    meson test -C "$dir" --print-errorlogs --num-processes 2 --timeout-multiplier 3
    local counts
    counts=$(python3 - "$dir/meson-logs/testlog.json" <<'PY'
import json, sys
p = f = s = 0
try:
    for line in open(sys.argv[1]):
        r = json.loads(line)
        if r["result"] in ("OK", "EXPECTEDFAIL"): p += 1
        elif r["result"] == "SKIP": s += 1
        else: f += 1
except OSError:
    f = 1
print(p, f, s)
PY
)
    set -- $counts
    echo "$name: $1 passed, $2 failed, $3 skipped"
    passed=$((passed+$1)); failed=$((failed+$2)); skipped=$((skipped+$3))
}
run_suite plain build
run_suite asan build-asan -Db_sanitize=address,undefined -Db_lundef=false -Djemalloc=disabled
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
