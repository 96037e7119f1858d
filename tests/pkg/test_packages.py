"""The Debian packages, built from the tree and used as an operator would.

1. Copy the checkout (tracked and untracked files git does not ignore) to a
   temporary directory and run `dpkg-buildpackage -us -uc -b` there
   (DEB_BUILD_OPTIONS=nocheck: scripts/test.sh runs the suite).
2. lintian --pedantic on the .changes: every tag must be listed in
   debian/lintian-expected (explained in debian/README.source).
3. `dpkg -x` each package into one clean root and check where files land.
4. From that root: the daemon started by the packaged unit's ExecStart and
   ExecStartPost with /etc/default/kvcached's variables (paths redirected to
   a temporary directory, a small store, free ports); the demo chat
   (client/examples/chat.c) compiled against libkvcache-dev through its
   pkg-config file and run against the socket; the python3-kvcache module
   used against it; kvcache stats; a stop by KillSignal with status 0.
5. With --system (scripts/pkg-check.sh --system, KC_PKG_SYSTEM=1, or CI=true
   as CI sets it; root only, and only where kvcached is not already
   installed): `dpkg -i` the
   four packages on this machine, the daemon as user kvcached on
   /var/lib/kvcached and /run/kvcached/kvcached.sock by the unit's command
   line, the chat run by an unprivileged member of the group kvcached,
   `dpkg --purge`, and checks that nothing is left.

Exit 77 (skipped, reason printed) where dpkg-buildpackage cannot run: not a
Debian system, build dependencies missing, or a sanitizer build
(KC_PKG_SKIP). Environment: KC_SOURCE (the checkout); KC_PKG_KEEP=1 keeps
the temporary directory."""
import glob
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kcunit  # noqa: E402

SKIP = 77
TAG = re.compile(r"^[EWIPXO]: [^:]+: (\S+)")   # "E: pkg[ type]: tag-name ..."
PACKAGES = ["kvcached", "libkvcache0", "libkvcache-dev", "python3-kvcache"]
# Where files must land (MA: the multiarch triplet).
EXPECT = {
    "kvcached": ["usr/sbin/kvcached", "usr/bin/kvcache", "usr/bin/kvcache-bench",
                 "usr/bin/kvcache-sim", "lib/systemd/system/kvcached.service",
                 "etc/default/kvcached", "usr/share/man/man8/kvcached.8.gz",
                 "usr/share/man/man1/kvcache.1.gz", "usr/share/man/man1/kvcache-bench.1.gz",
                 "usr/share/man/man1/kvcache-sim.1.gz", "usr/share/doc/kvcached/copyright"],
    "libkvcache0": ["usr/lib/MA/libkvcache.so.0"],
    "libkvcache-dev": ["usr/include/kvcache.h", "usr/lib/MA/libkvcache.a",
                       "usr/lib/MA/libkvcache.so", "usr/lib/MA/pkgconfig/kvcache.pc",
                       "usr/share/man/man3/libkvcache.3.gz"],
    "python3-kvcache": ["usr/lib/python3/dist-packages/kvcache/__init__.py",
                        "usr/lib/python3/dist-packages/kvcache/_client.py",
                        "usr/lib/python3/dist-packages/kvcache/_libpath.py"],
}
PY_USE = """
import kvcache, sys
c = kvcache.Client(sys.argv[1], timeout_ms=5000)
ns = c.open_namespace(model="pkg-check", layer_end=1, tokens_per_block=4,
                      dtype="bf16", kv_heads=1, head_dim=8, block_bytes=4096)
keys = kvcache.keys(ns, list(range(16)), 4)
blocks = [bytes([i]) * 4096 for i in range(len(keys))]
c.put(ns, keys, blocks)
out = [bytearray(4096) for _ in keys]
assert c.get_prefix(ns, keys, out) == len(keys), c.last_error
assert [bytes(b) for b in out] == blocks
print("python3-kvcache: put and get_prefix of %d blocks via %s" % (len(keys), kvcache.library_path))
"""


def sh(cmd, log=None, **kw):
    """Run cmd; on failure print its output (or the log's tail) and raise."""
    out = subprocess.run(cmd, capture_output=log is None, text=True,
                         stdout=log, stderr=subprocess.STDOUT if log else None, **kw)
    if out.returncode != 0:
        text = open(log.name).read() if log else (out.stdout or "") + (out.stderr or "")
        print(text[-4000:])
        raise AssertionError("%s: exit %d" % (" ".join(cmd), out.returncode))
    return out.stdout


def cannot_build(src):
    """Why dpkg-buildpackage cannot run here, or None."""
    if os.environ.get("KC_PKG_SKIP"):
        return os.environ["KC_PKG_SKIP"]
    for tool in ("dpkg-buildpackage", "dh", "dpkg-checkbuilddeps"):
        if not shutil.which(tool):
            return "%s not installed (Debian's dpkg-dev, debhelper)" % tool
    out = subprocess.run(["dpkg-checkbuilddeps"], cwd=src, capture_output=True, text=True)
    if out.returncode != 0:
        return "build dependencies missing: " + out.stderr.strip()
    return None


def copy_tree(src, dst):
    """The files of the checkout, without build trees."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=src,
                           capture_output=True, text=True)
    if files.returncode == 0:
        for f in files.stdout.split("\0"):
            if f and os.path.isfile(os.path.join(src, f)):
                os.makedirs(os.path.dirname(os.path.join(dst, f)), exist_ok=True)
                shutil.copy2(os.path.join(src, f), os.path.join(dst, f))
    else:
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("build*", "var", ".git"))


def build(tmp):
    src = os.path.join(tmp, "src")
    copy_tree(os.environ["KC_SOURCE"], src)
    env = dict(os.environ, DEB_BUILD_OPTIONS="nocheck parallel=2")
    t0 = time.monotonic()
    with open(os.path.join(tmp, "build.log"), "w") as log:
        sh(["dpkg-buildpackage", "-us", "-uc", "-b"], log=log, cwd=src, env=env)
    debs = {}
    for p in PACKAGES:
        found = glob.glob(os.path.join(tmp, p + "_*.deb"))
        assert len(found) == 1, (p, found)
        debs[p] = found[0]
    print("dpkg-buildpackage: %s in %.0f s" % (", ".join(sorted(os.path.basename(d)
                                                               for d in debs.values())),
                                               time.monotonic() - t0))
    return src, debs


def lintian(tmp, src):
    if not shutil.which("lintian"):
        print("lintian not installed: not checked")
        return
    changes = glob.glob(os.path.join(tmp, "*.changes"))
    out = subprocess.run(["lintian", "--pedantic"] + changes, capture_output=True, text=True)
    expected = [line.strip() for line in open(os.path.join(src, "debian", "lintian-expected"))
                if line.strip() and not line.startswith("#")]
    tags = [line for line in out.stdout.splitlines() if TAG.match(line)]
    for t in tags:
        print("lintian:", t)
    bad = [t for t in tags if TAG.match(t).group(1) not in expected]
    assert not bad, "lintian tags not in debian/lintian-expected: %s" % bad
    print("lintian: %d tags, all expected" % len(tags))


def extract(tmp, debs, arch):
    root = os.path.join(tmp, "root")
    for p, deb in debs.items():
        sh(["dpkg-deb", "-x", deb, root])
        listing = sh(["dpkg-deb", "-c", deb])
        for f in EXPECT[p]:
            f = f.replace("MA", arch)
            assert ("./" + f) in listing, "%s: %s missing" % (p, f)
    unit = kcunit.Unit(os.path.join(root, "lib/systemd/system/kvcached.service"))
    assert unit.command("ExecStart", {})[0] == "/usr/sbin/kvcached"
    assert unit.get("EnvironmentFile") == ["-/etc/default/kvcached"]
    print("dpkg -x: every package's files where they belong")
    return root


def compile_chat(tmp, sysroot, libdir):
    """client/examples/chat.c built against the packaged header and library
    through the packaged kvcache.pc."""
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(sysroot + libdir, "pkgconfig"))
    if sysroot:   # its Requires.private (protobuf-c, xxhash) are the system's
        env["PKG_CONFIG_SYSROOT_DIR"] = sysroot
    flags = sh(["pkg-config", "--cflags", "--libs", "kvcache"], env=env).split()
    exe = os.path.join(tmp, "kvcache-chat")
    sh(["cc", "-o", exe, os.path.join(os.environ["KC_SOURCE"], "client/examples/chat.c")]
       + flags)
    return exe


def serve(unit, env, redirect, tmp, as_user=None):
    """Start the daemon by the unit's ExecStart (+ ExecStartPost); returns
    (process, socket path)."""
    argv = kcunit.free_ports(unit.command("ExecStart", env, redirect))
    post = unit.command("ExecStartPost", env, redirect)
    if as_user:
        drop = ["setpriv", "--reuid=" + as_user, "--regid=" + as_user, "--init-groups", "--"]
        argv, post = drop + argv, drop + post
    print("ExecStart:", " ".join(argv))
    log = open(os.path.join(tmp, "kvcached.log"), "a")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    try:
        sh(post, timeout=60)
    except Exception:
        proc.kill()
        proc.wait()
        print(open(os.path.join(tmp, "kvcached.log")).read()[-3000:])
        raise
    sock = [a for a in argv if a.endswith(".sock")][0]
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o660
    return proc, sock


def stop(unit, proc):
    proc.send_signal(getattr(signal, unit.one("KillSignal")))
    rc = proc.wait(timeout=int(unit.one("TimeoutStopSec")))
    assert rc == 0, rc


def use(unit, proc, sock, chat, libdir, pydir, cli, user=None):
    """The chat, the Python module and kvcache stats against the daemon."""
    env = dict(os.environ)
    env.pop("KVCACHE_LIB", None)
    env.pop("PYTHONPATH", None)
    if libdir:
        env["LD_LIBRARY_PATH"] = libdir
    if pydir:
        env["PYTHONPATH"] = pydir
    pre = []
    if user:   # an unprivileged member of the group kvcached
        pre = ["setpriv", "--reuid=" + user[0], "--regid=" + user[1],
               "--groups=" + user[2], "--"]
    try:
        out = sh(pre + [chat, "unix:" + sock], env=env, timeout=120, cwd="/")
        print("kvcache-chat:", out.strip().splitlines()[-1])
        print(sh(pre + ["/usr/bin/python3", "-c", PY_USE, "unix:" + sock], env=env,
                 timeout=60, cwd="/").strip())
        out = sh([cli, "stats", "--json", "-s", "unix:" + sock], env=env, timeout=30)
        assert '"puts"' in out or "puts" in out, out[:400]
        print("kvcache stats: ok")
    finally:
        if proc.poll() is None:
            stop(unit, proc)
    print("stopped with status 0")


def in_root(tmp, root, arch):
    unit = kcunit.Unit(os.path.join(root, "lib/systemd/system/kvcached.service"))
    env = kcunit.defaults(os.path.join(root, "etc/default/kvcached"),
                          KVCACHED_DEVICE_SIZE="256m", KVCACHED_MEMORY="64")
    state, runtime = os.path.join(tmp, "state"), os.path.join(tmp, "run")
    os.makedirs(state, 0o750)
    os.makedirs(runtime, 0o750)
    redirect = {"/var/lib/kvcached": state, "/run/kvcached": runtime,
                "/usr/sbin/kvcached": os.path.join(root, "usr/sbin/kvcached")}
    libdir = "/usr/lib/" + arch
    chat = compile_chat(tmp, root, libdir)
    proc, sock = serve(unit, env, redirect, tmp)
    use(unit, proc, sock, chat, root + libdir,
        os.path.join(root, "usr/lib/python3/dist-packages"),
        os.path.join(root, "usr/bin/kvcache"))


def system(tmp, debs):
    """dpkg -i on this machine, use, dpkg --purge."""
    if os.geteuid() != 0:
        print("--system: not root, skipped")
        return
    q = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "kvcached"], capture_output=True,
                       text=True)
    if "installed" in q.stdout and "not-installed" not in q.stdout:
        print("--system: kvcached is already installed here; not touched")
        return
    sh(["dpkg", "-i"] + [debs[p] for p in PACKAGES])
    try:
        pwd.getpwnam("kvcached")
        unit = kcunit.Unit("/lib/systemd/system/kvcached.service")
        env = kcunit.defaults("/etc/default/kvcached", KVCACHED_DEVICE_SIZE="256m",
                              KVCACHED_MEMORY="64")
        for d in ("/run/kvcached", "/var/lib/kvcached"):   # what systemd would make
            os.makedirs(d, 0o750, exist_ok=True)
            shutil.chown(d, "kvcached", "kvcached")
        chat = compile_chat(tmp, "", "/usr/lib/" + arch_of())
        os.chmod(tmp, 0o755)   # the unprivileged user runs the chat from here
        os.chmod(chat, 0o755)
        proc, sock = serve(unit, env, {}, tmp, as_user="kvcached")
        assert sock == "/run/kvcached/kvcached.sock"
        use(unit, proc, sock, chat, None, None, "/usr/bin/kvcache",
            user=("nobody", "nogroup", "kvcached"))
    finally:
        sh(["dpkg", "--purge"] + PACKAGES[::-1])
        shutil.rmtree("/run/kvcached", ignore_errors=True)
    for f in ("/usr/sbin/kvcached", "/lib/systemd/system/kvcached.service",
              "/var/lib/kvcached", "/usr/lib/python3/dist-packages/kvcache"):
        assert not os.path.exists(f), f + " left after purge"
    print("--system: dpkg -i, served on /run/kvcached/kvcached.sock, dpkg --purge: ok")


def arch_of():
    return sh(["dpkg-architecture", "-qDEB_HOST_MULTIARCH"]).strip()


def main():
    src = os.environ["KC_SOURCE"]
    why = cannot_build(src)
    if why:
        print("skipped: " + why)
        return SKIP
    tmp = tempfile.mkdtemp(prefix="kc-pkg-")
    try:
        bsrc, debs = build(tmp)
        lintian(tmp, bsrc)
        arch = arch_of()
        root = extract(tmp, debs, arch)
        in_root(tmp, root, arch)
        # CI runs on a fresh machine: there the packages really get installed.
        if ("--system" in sys.argv or os.environ.get("KC_PKG_SYSTEM") == "1"
                or os.environ.get("CI") == "true"):
            system(tmp, debs)
    finally:
        if os.environ.get("KC_PKG_KEEP") == "1":
            print("kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print("packages: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
