#!/usr/bin/env bash
# tests/fuzz/long.sh pack SRCROOT BUILDROOT DIR
#     Build every harness (run.sh) and gather them, their seeds and the
#     shared libraries they link that not every Linux has, into DIR, to run
#     on a machine with more cores and no compiler.
# tests/fuzz/long.sh run DIR RUNS [WORKERS]
#     Run each harness of DIR for RUNS inputs in all, spread over WORKERS
#     processes (default: the number of cores), and print one line per
#     harness: executions, coverage, findings. Exits non-zero on any finding
#     (a sanitizer report, a crash, a leak, a timeout). FUZZ_SECONDS=S stops
#     each job after S seconds as well (for the slow recovery harness);
#     FUZZ_HARNESSES="a b" picks harnesses.
set -u
cmd=${1:-}
harnesses=(${FUZZ_HARNESSES:-request mcparse reply recovery})
case $cmd in
pack)
    src=$2 bld=$3 dir=$4
    mkdir -p "$dir/lib"
    for n in "${harnesses[@]}"; do
        FUZZ_BUILD_ONLY=1 bash "$src/tests/fuzz/run.sh" "$n" 0 "$src" "$bld" || exit 1
        cp -L "$bld/tests/fuzz/fuzz_$n" "$dir/"
        [ -d "$src/tests/fuzz/seeds-$n" ] && cp -r "$src/tests/fuzz/seeds-$n" "$dir/"
        ldd "$bld/tests/fuzz/fuzz_$n" | awk '/=> \// {print $1, $3}' |
        while read -r lib path; do
            case $lib in
                liburing*|libxxhash*|libprotobuf-c*|libstdc++*) cp -L "$path" "$dir/lib/$lib";;
            esac
        done
    done
    cp "$src/tests/fuzz/long.sh" "$dir/"
    du -sh "$dir";;
run)
    dir=$(cd "$2" && pwd) runs=$3 workers=${4:-$(nproc)}
    export LD_LIBRARY_PATH=$dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    bad=0
    printf '%-10s %12s %8s %8s %10s %s\n' harness executions cov ft seconds findings
    for n in "${harnesses[@]}"; do
        [ -x "$dir/fuzz_$n" ] || continue
        w=$dir/work-$n
        rm -rf "$w"; mkdir -p "$w/corpus"
        export KC_TEST_DIR=$w
        seeds=()
        [ -d "$dir/seeds-$n" ] && seeds=("$dir/seeds-$n")
        t0=$(date +%s)
        # one job per worker, each running its share of the inputs; the
        # corpus is shared, so the jobs build on each other's finds
        (cd "$w" && "$dir/fuzz_$n" -jobs="$workers" -workers="$workers" \
            -runs=$(( (runs + workers - 1) / workers )) -timeout=10 \
            ${FUZZ_SECONDS:+-max_total_time=$FUZZ_SECONDS} \
            -rss_limit_mb=2048 -print_final_stats=1 \
            -artifact_prefix="$w/crash-" corpus "${seeds[@]}" \
            >/dev/null 2>&1)
        t1=$(date +%s)
        execs=$(cat "$w"/fuzz-*.log | awk -F: '/stat::number_of_executed_units/ {s += $NF} END {print s + 0}')
        cov=$(cat "$w"/fuzz-*.log | grep -o 'cov: [0-9]*' | awk '{if ($2 > m) m = $2} END {print m + 0}')
        ft=$(cat "$w"/fuzz-*.log | grep -o 'ft: [0-9]*' | awk '{if ($2 > m) m = $2} END {print m + 0}')
        finds=$(ls "$w" | grep -c '^crash-\|^leak-\|^timeout-\|^oom-')
        reports=$(cat "$w"/fuzz-*.log | grep -c 'ERROR: \(AddressSanitizer\|LeakSanitizer\|libFuzzer\)\|runtime error:')
        printf '%-10s %12s %8s %8s %10s %s\n' "$n" "$execs" "$cov" "$ft" $((t1 - t0)) "$((finds + reports))"
        if [ $((finds + reports)) -ne 0 ]; then
            bad=1
            grep -h -A20 'ERROR: \|runtime error:' "$w"/fuzz-*.log | head -60
        fi
    done
    exit $bad;;
*)
    echo "usage: long.sh pack SRCROOT BUILDROOT DIR | long.sh run DIR RUNS [WORKERS]"; exit 2;;
esac
