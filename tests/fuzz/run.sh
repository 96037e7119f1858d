#!/usr/bin/env bash
# tests/fuzz/run.sh NAME SECONDS SRCROOT BUILDROOT
# Build the libFuzzer harness fuzz_NAME.c with clang (AddressSanitizer and
# UndefinedBehaviorSanitizer, aborting on any report) and run it for
# SECONDS on its corpus (BUILDROOT/tests/fuzz/corpus-NAME, kept between
# runs). Exit 77 (meson: skipped) with the reason when clang or its
# libFuzzer runtime is missing. FUZZ_RUNS=N runs N inputs instead of a time.
# FUZZ_BUILD_ONLY=1 builds BUILDROOT/tests/fuzz/fuzz_NAME and stops (long.sh).
set -u
name=$1 secs=$2 src=$3 bld=$4
out=$bld/tests/fuzz
mkdir -p "$out/corpus-$name"
cc=${FUZZ_CC:-clang}
if ! command -v "$cc" >/dev/null; then
    echo "skipped: $cc not installed (apt-get install clang)"
    exit 77
fi
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n)\n{ (void)d; (void)n; return 0; }\n' \
    > "$out/probe.c"
if ! "$cc" -fsanitize=fuzzer "$out/probe.c" -o "$out/probe" 2>"$out/probe.log"; then
    echo "skipped: $cc has no libFuzzer runtime ($(head -1 "$out/probe.log"))"
    exit 77
fi
flags=(-g -O1 -std=gnu11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=all -I"$src" -I"$src/proto" -I"$bld/proto" -I"$bld")
pb=$bld/proto/kvcache.pb-c.c
pbc=$(pkg-config --cflags --libs libprotobuf-c)
xx=$(pkg-config --cflags --libs libxxhash)
ur=$(pkg-config --cflags --libs liburing)
case $name in
request)
    srcs=("$src"/proto/*.c "$pb"); libs="$pbc $xx";;
mcparse)
    srcs=("$src/daemon/kc_mcparse.c" "$src/proto/kc_frame.c"); libs="$xx";;
recovery)
    # the checksum variants of wider vector units need their ISA flag
    "$cc" "${flags[@]/-fsanitize=fuzzer,/-fsanitize=}" -mavx2 -c \
        "$src/ssd/kc_csum_avx2.c" -o "$out/csum_avx2.o" || exit 1
    "$cc" "${flags[@]/-fsanitize=fuzzer,/-fsanitize=}" -mavx512f -c \
        "$src/ssd/kc_csum_avx512.c" -o "$out/csum_avx512.o" || exit 1
    # the storage engine: every source of slab/ and ssd/ (as the meson
    # library), the vector variants as built above
    srcs=("$src"/slab/*.c "$out/csum_avx2.o" "$out/csum_avx512.o")
    for f in "$src"/ssd/*.c; do
        case $f in *_avx*) ;; *) srcs+=("$f");; esac
    done
    libs="$ur $xx -lm";;
reply)
    srcs=("$src"/client/*.c "$src"/proto/*.c "$pb")
    libs="$pbc $xx -lpthread -lm";;
*)
    echo "no fuzzer $name"; exit 2;;
esac
# shellcheck disable=SC2086
if ! "$cc" "${flags[@]}" -o "$out/fuzz_$name" "$src/tests/fuzz/fuzz_$name.c" \
        "${srcs[@]}" $libs 2>"$out/build-$name.log"; then
    cat "$out/build-$name.log"
    echo "fuzz_$name: build failed"
    exit 1
fi
[ -n "${FUZZ_BUILD_ONLY:-}" ] && exit 0
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export KC_TEST_DIR=$out
if [ -n "${FUZZ_RUNS:-}" ]; then
    limit=(-runs="$FUZZ_RUNS")
else
    limit=(-max_total_time="$secs")
fi
dirs=("corpus-$name")
[ -d "$src/tests/fuzz/seeds-$name" ] && dirs+=("$src/tests/fuzz/seeds-$name")
cd "$out" || exit 1
# a finding must fail the test: libFuzzer's own exit code (77) would read
# as "skipped" to meson
exec "./fuzz_$name" "${limit[@]}" -timeout=10 -rss_limit_mb=2048 \
    -error_exitcode=1 -timeout_exitcode=1 \
    -print_final_stats=1 -artifact_prefix="$out/crash-$name-" "${dirs[@]}"
