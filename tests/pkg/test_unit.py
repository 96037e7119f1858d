"""kvcached.service (dist/systemd) and its defaults file (dist/default):

- the directives an operator relies on are there (own user, state and
  runtime directories, options file, sandboxing, restart, a stop timeout
  that covers the flush of the configured memory);
- `systemd-analyze verify` accepts it (that part is skipped, with the reason
  printed, where systemd-analyze is missing);
- the daemon runs by the unit's own ExecStart and ExecStartPost, variables
  expanded from the defaults file, /var/lib/kvcached and /run/kvcached
  redirected to a temporary directory, sizes made small and fixed ports made
  free ones: the socket gets mode 0660, the demo chat runs against it,
  /metrics answers, and KillSignal stops it with status 0 within
  TimeoutStopSec.

Environment: KVCACHED (the daemon of this build), KVCACHE_CHAT, KC_SOURCE,
KC_UNIT (the unit as meson configured it), KC_SBIN_KVCACHED and
KC_ENV_FILE (the installed paths it must name)."""
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kcunit  # noqa: E402

SRC = os.environ["KC_SOURCE"]
UNIT = os.environ["KC_UNIT"]
SBIN = os.environ["KC_SBIN_KVCACHED"]
DEFAULTS = os.path.join(SRC, "dist", "default", "kvcached")
FLUSH_MBPS = 150   # the slowest device the stop timeout is sized for, MB/s


def check_directives(unit, env):
    want = {"User": "kvcached", "StateDirectory": "kvcached", "RuntimeDirectory": "kvcached",
            "EnvironmentFile": "-" + os.environ["KC_ENV_FILE"], "ProtectSystem": "strict",
            "NoNewPrivileges": "yes", "PrivateTmp": "yes", "CapabilityBoundingSet": "",
            "Restart": "on-failure", "KillSignal": "SIGTERM"}
    for k, v in want.items():
        assert unit.get(k) == [v], "%s=%r, want %r" % (k, unit.get(k), v)
    assert unit.command("ExecStart", env)[0] == SBIN
    # SIGTERM drains for at most 10 s, then writes --memory MiB of slabs.
    stop = int(unit.one("TimeoutStopSec"))
    need = 10 + int(env["KVCACHED_MEMORY"]) * 1.048576 / FLUSH_MBPS
    assert stop >= need, "TimeoutStopSec=%d < %.0f s for %s MiB" % (
        stop, need, env["KVCACHED_MEMORY"])
    print("directives: ok (TimeoutStopSec=%d, flush of %s MiB needs %.0f s at %d MB/s)"
          % (stop, env["KVCACHED_MEMORY"], need, FLUSH_MBPS))


def verify(tmp, daemon):
    tool = shutil.which("systemd-analyze")
    if not tool:
        print("systemd-analyze not installed: verify skipped")
        return
    # The unit names the installed daemon; verify checks that the binary
    # exists, so a copy names this build's.
    copy = os.path.join(tmp, "kvcached.service")
    with open(copy, "w") as f:
        f.write(open(UNIT).read().replace(SBIN, daemon))
    out = subprocess.run([tool, "verify", "--man=no", copy], capture_output=True, text=True)
    assert out.returncode == 0 and not out.stderr.strip(), out
    print("systemd-analyze verify: ok")


def run(unit, tmp, daemon, chat):
    env = kcunit.defaults(DEFAULTS, KVCACHED_DEVICE_SIZE="256m", KVCACHED_MEMORY="64")
    state, runtime = os.path.join(tmp, "state"), os.path.join(tmp, "run")
    os.mkdir(state, 0o750)
    os.mkdir(runtime, 0o750)
    redirect = {"/var/lib/kvcached": state, "/run/kvcached": runtime,
                SBIN: daemon}
    ports = os.path.join(tmp, "ports")
    argv = kcunit.free_ports(unit.command("ExecStart", env, redirect))
    argv += ["--port-file", ports]
    print("ExecStart:", " ".join(argv))
    log = open(os.path.join(tmp, "kvcached.log"), "w")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        post = unit.command("ExecStartPost", env, redirect)
        subprocess.run(post, check=True, timeout=30)
        sock = os.path.join(runtime, "kvcached.sock")
        mode = stat.S_IMODE(os.stat(sock).st_mode)
        assert mode == 0o660, oct(mode)
        assert os.path.exists(os.path.join(state, "kvcache.store"))
        out = subprocess.run([chat, "unix:" + sock], capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, (out.stdout[-2000:], out.stderr[-2000:])
        for _ in range(100):
            if os.path.exists(ports) and "metrics=" in open(ports).read():
                break
            time.sleep(0.05)
        got = dict(kv.split("=") for kv in open(ports).read().split())
        assert int(got.get("tcp", "-1")) <= 0, got   # no TCP listener by default
        text = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % got["metrics"],
                                      timeout=5).read().decode()
        assert "kvcached_" in text
        print("running: socket 0660, chat ok, /metrics on port %s" % got["metrics"])
        sig = getattr(signal, unit.one("KillSignal"))
        t0 = time.monotonic()
        proc.send_signal(sig)
        rc = proc.wait(timeout=int(unit.one("TimeoutStopSec")))
        assert rc == 0, rc
        print("stopped by %s: status 0 in %.1f s" % (sig.name, time.monotonic() - t0))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        if sys.exc_info()[0] is not None:
            print(open(os.path.join(tmp, "kvcached.log")).read()[-3000:])


def main():
    daemon, chat = os.environ.get("KVCACHED"), os.environ.get("KVCACHE_CHAT")
    if not daemon or not chat:
        print("KVCACHED or KVCACHE_CHAT not set: skipped")
        return 77
    unit = kcunit.Unit(UNIT)
    check_directives(unit, kcunit.defaults(DEFAULTS))
    tmp = tempfile.mkdtemp(prefix="kc-unit-")
    try:
        verify(tmp, daemon)
        run(unit, tmp, daemon, chat)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("unit: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
