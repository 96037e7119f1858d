# daemon.sh - sourced by tools/sim/replay.sh and tests/sim: start kvcached
# on a unix socket in a folder and wait for it, stop it.
#
#   kvd_start BUILD_DIR DIR [kvcached flags...]: kvcached -s DIR/sock with
#       no TCP, its log in DIR/daemon.log; kvd_pid is its pid. Exits 2 if
#       it does not start within 10 s (its log printed).
#   kvd_stop: TERM it and wait (nothing if it is not running).
kvd_pid=
kvd_start() {
    local build=$1 dir=$2
    shift 2
    rm -f "$dir/sock"
    "$build/daemon/kvcached" -s "$dir/sock" -p -1 "$@" >"$dir/daemon.log" 2>&1 &
    kvd_pid=$!
    for _ in $(seq 200); do
        [ -S "$dir/sock" ] && return 0
        kill -0 "$kvd_pid" 2>/dev/null || break
        sleep 0.05
    done
    echo "kvcached did not start"
    cat "$dir/daemon.log"
    exit 2
}
kvd_stop() {
    if [ -n "$kvd_pid" ] && kill -0 "$kvd_pid" 2>/dev/null; then
        kill -TERM "$kvd_pid"
        wait "$kvd_pid" 2>/dev/null || true
    fi
    kvd_pid=
}
