"""mcutil: what the memcache tests share: start kvcached (and memcached,
nutcracker) on free ports in a temporary directory, raw connections that
send bytes and read replies, a seeded random generator.

KC_TEST_DAEMON is the kvcached to start (else the test is skipped, 77);
KC_TEST_SEED repeats a run; KC_TEST_KEEP=1 keeps the directory."""
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SKIP = 77


def skip(why):
    print("SKIP:", why)
    sys.exit(SKIP)


def seeded():
    seed = int(os.environ.get("KC_TEST_SEED", "0")) or random.randrange(1, 1 << 31)
    print("seed", seed, "(KC_TEST_SEED to repeat)")
    return random.Random(seed)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class TmpDir:
    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="kc-mc-")
        self.procs = []

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if os.environ.get("KC_TEST_KEEP") == "1":
            print("kept", self.path)
        else:
            shutil.rmtree(self.path, ignore_errors=True)


def wait_port(port, proc, what):
    for _ in range(1000):
        if proc.poll() is not None:
            raise SystemExit("%s exited at start" % what)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.01)
    raise SystemExit("%s not ready on port %d" % (what, port))


class Daemon:
    """A kvcached with a memcache port; small geometry so that values reach
    the device quickly (1 MiB slabs, 8 MiB of memory slabs)."""

    def __init__(self, tmp, name, port=0, extra=(), memory=8, size="64m"):
        if "KC_TEST_DAEMON" not in os.environ or not os.path.exists(os.environ["KC_TEST_DAEMON"]):
            skip("KC_TEST_DAEMON not built")
        self.tmp, self.name, self.extra = tmp, name, list(extra)
        self.memory, self.size = memory, size
        self.port = port or free_port()
        self.proc = None
        self.start(fresh=True)

    def start(self, fresh=False):
        d = self.tmp.path
        pf = os.path.join(d, self.name + ".port")
        if os.path.exists(pf):
            os.unlink(pf)
        args = [os.environ["KC_TEST_DAEMON"], "-D", os.path.join(d, self.name + ".store"),
                "-S", self.size, "-m", str(self.memory), "--slab-size", "1m",
                "--min-item-size", "4k", "-s", "", "-p", "0", "--no-auth", "--port-file", pf,
                "--memcache-port", str(self.port)] + self.extra
        if fresh:
            args.append("--fresh")
        self.log = open(os.path.join(d, self.name + ".log"), "a")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log)
        self.tmp.procs.append(self.proc)
        for _ in range(1000):
            if os.path.exists(pf):
                return
            if self.proc.poll() is not None:
                raise SystemExit("kvcached %s exited at start: see %s.log" % (self.name, self.name))
            time.sleep(0.01)
        raise SystemExit("kvcached %s not ready" % self.name)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=20)
        assert rc == 0, "kvcached %s exited %d" % (self.name, rc)


def start_memcached(tmp, port=0, extra=()):
    exe = shutil.which("memcached") or "/usr/bin/memcached"
    if not os.path.exists(exe):
        skip("memcached not installed")
    port = port or free_port()
    args = [exe, "-p", str(port), "-U", "0", "-l", "127.0.0.1", "-m", "64"] + list(extra)
    if os.getuid() == 0:
        args += ["-u", "nobody"]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tmp.procs.append(p)
    wait_port(port, p, "memcached")
    return port, p


class Raw:
    """A blocking text-protocol connection: send bytes, read lines/bytes."""

    def __init__(self, port, timeout=5):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def _fill(self):
        d = self.s.recv(1 << 20)
        if not d:
            raise EOFError("connection closed")
        self.buf += d

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        l, self.buf = self.buf.split(b"\r\n", 1)
        return l

    def read(self, n):
        while len(self.buf) < n:
            self._fill()
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def get(self, keys, cmd=b"get"):
        """A get of keys: {key: value} of the values answered."""
        self.send(cmd + b" " + b" ".join(keys) + b"\r\n")
        out = {}
        while True:
            l = self.line()
            if l == b"END":
                return out
            parts = l.split()
            assert parts[0] == b"VALUE", l
            v = self.read(int(parts[3]) + 2)
            assert v[-2:] == b"\r\n"
            out[parts[1]] = v[:-2]

    def set(self, key, value, cmd=b"set"):
        self.send(b"%s %s 0 0 %d\r\n%s\r\n" % (cmd, key, len(value), value))
        return self.line()

    def stats(self):
        self.send(b"stats\r\n")
        out = {}
        while True:
            l = self.line()
            if l == b"END":
                return out
            _, k, v = l.split(b" ", 2)
            out[k.decode()] = v.decode()

    def transcript(self, data, wait=2):
        """Send data and "mn", read up to the "MN" (or wait seconds of quiet)."""
        self.send(data + b"mn\r\n")
        self.s.settimeout(wait)
        want = data.count(b"mn\r\n") + 1
        try:
            while not (self.buf.endswith(b"MN\r\n") and self.buf.count(b"MN\r\n") >= want):
                d = self.s.recv(1 << 20)
                if not d:
                    break
                self.buf += d
        except socket.timeout:
            pass
        self.s.settimeout(5)
        out, self.buf = self.buf, b""
        return out

    def close(self):
        self.s.close()


def hexkey(ns, key16):
    """The direct form of a memcache key: namespace and 16 key bytes."""
    return b"%016x:%s" % (ns, key16.hex().encode())
