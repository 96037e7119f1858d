"""daemon.py - start and stop a kvcached for the tests and benchmarks.

Daemon(bin, dir) runs `kvcached` with its store file and Unix socket in dir,
TCP on a free port, and waits until the port file says it is ready.  stop()
sends SIGTERM (the daemon writes its memory slabs and superblock, so a
restart finds every block on the device: that is how the benchmarks force
reads from the SSD) or SIGKILL.
"""
import os
import shutil
import signal
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def find_daemon():
    """The kvcached binary: $KVCACHED, else the build tree, else PATH."""
    for c in (os.environ.get("KVCACHED", ""),
              os.path.join(HERE, "..", "..", "build", "daemon", "kvcached")):
        if c and os.access(c, os.X_OK):
            return os.path.abspath(c)
    return shutil.which("kvcached")


class Daemon:
    """One kvcached process on a store in dir."""

    def __init__(self, binary, dir, device_size="256m", memory_mib=64, slab_size="1m",
                 min_item="4k", extra=()):
        self.bin, self.dir = binary, dir
        self.args = ["-p", "0", "--no-auth", "-S", device_size, "-m", str(memory_mib), "--slab-size", slab_size,
                     "--min-item-size", min_item] + list(extra)
        self.sock = os.path.join(dir, "kvcached.sock")
        self.store = os.path.join(dir, "kvcache.store")
        self.log = os.path.join(dir, "kvcached.log")
        self.proc = None

    @property
    def uri(self):
        return "unix:" + self.sock

    def start(self, fresh=False, timeout_s=60):
        portfile = os.path.join(self.dir, "port")
        if os.path.exists(portfile):
            os.unlink(portfile)
        argv = [self.bin, "-s", self.sock, "-D", self.store, "--port-file", portfile] + self.args
        if fresh:
            argv.append("--fresh")
        logf = open(self.log, "a")
        self.proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        t0 = time.time()
        while True:
            if os.path.exists(portfile) and open(portfile).read().startswith("tcp=") \
                    and os.path.exists(self.sock):
                self.port = int(open(portfile).read().split()[0].split("=")[1])
                return self
            if self.proc.poll() is not None:
                raise RuntimeError("kvcached exited at start:\n" + open(self.log).read()[-2000:])
            if time.time() - t0 > timeout_s:
                self.stop(signal.SIGKILL)
                raise RuntimeError("kvcached not ready after %d s" % timeout_s)
            time.sleep(0.02)

    def stop(self, sig=signal.SIGTERM, timeout_s=60):
        if self.proc is None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self):
        """Graceful stop and start on the same store: memory slabs come back empty."""
        self.stop(signal.SIGTERM)
        return self.start(fresh=False)
