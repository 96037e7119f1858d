"""kvt.py - helpers of the tools tests: a real kvcached in a temporary
directory, and the tools of this build tree (paths from the environment
meson sets: KVCACHED, KVCACHE_CLI, KVCACHE_BENCH). Everything a test starts
is stopped by pid when it ends; a missing binary skips the test (exit 77).
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SKIP = 77


def tool(name):
    path = os.environ.get(name)
    if not path or not os.access(path, os.X_OK):
        print(f"{name} not set or not executable: skipped")
        sys.exit(SKIP)
    return path


class Daemon:
    """One kvcached on a Unix socket in its own temporary directory."""

    def __init__(self, size="64m", memory=8, slab="1m", min_item="4k"):
        self.bin = tool("KVCACHED")
        self.dir = tempfile.mkdtemp(prefix="kc-tools-")
        self.sock = os.path.join(self.dir, "kvcached.sock")
        self.store = os.path.join(self.dir, "kvcache.store")
        self.args = ["-s", self.sock, "-p", "-1", "-D", self.store, "-S", size, "-m",
                     str(memory), "--slab-size", slab, "--min-item-size", min_item]
        self.proc = None
        self.uri = "unix:" + self.sock

    def start(self, fresh=True):
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        log = open(os.path.join(self.dir, "kvcached.log"), "a")
        self.proc = subprocess.Popen([self.bin] + self.args + (["--fresh"] if fresh else []),
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()
        for _ in range(1000):
            if os.path.exists(self.sock):
                return self
            if self.proc.poll() is not None:
                raise RuntimeError("kvcached exited at start:\n" + self.log())
            time.sleep(0.01)
        raise RuntimeError("kvcached not ready after 10 s:\n" + self.log())

    def stop(self, sig=signal.SIGTERM):
        """Stop it (SIGTERM: clean, memory slabs flushed to the store)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def log(self):
        try:
            return open(os.path.join(self.dir, "kvcached.log")).read()[-4000:]
        except OSError:
            return ""

    def cleanup(self):
        self.stop(signal.SIGKILL)
        if not os.environ.get("KC_TEST_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()


def run(args, expect=0, timeout=60):
    """Run a command; check its exit code; return stdout."""
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if expect is not None and p.returncode != expect:
        raise AssertionError(f"{' '.join(args)}: exit {p.returncode}, want {expect}\n"
                             f"stdout: {p.stdout[-2000:]}\nstderr: {p.stderr[-2000:]}")
    return p.stdout


def run_json(args, expect=0, timeout=60):
    out = run(args, expect, timeout)
    try:
        return json.loads(out)
    except ValueError as e:
        raise AssertionError(f"{' '.join(args)}: not JSON ({e}):\n{out[:2000]}")


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok -", what)
