"""The Python binding as a user installs it, checked from a temporary root:

- `meson install --destdir` puts kvcache/ into the interpreter's path under
  the prefix, with _libpath.py naming the installed libkvcache.so.0, and the
  library with its soname link; the installed module imports and computes
  keys with the installed library found through the loader;
- `pip install --no-build-isolation` of client/python (Debian's setuptools,
  no package index) gives a module that finds libkvcache.so.0 through the
  loader.

Needs $KC_BUILD (the build tree), $KC_SOURCE (the checkout), $KC_PYTHON
(the interpreter meson installs for) and $MESON. Skipped (77) when the
module is not installed by this build (python_module=disabled) or, for the
pip part only, when pip or setuptools is missing."""
import glob
import os
import shutil
import subprocess
import sys
import tempfile

SKIP = 77
CODE = ("import kvcache, sys; ns = kvcache.ns_id('m', 0, 1, 16, 'bf16', 8, 128); "
        "k = kvcache.keys(ns, list(range(64)), 16); assert len(k) == 4, k; "
        "print(kvcache.library_path)")


def run(cmd, **kw):
    """Run cmd, fail with its output when it fails."""
    out = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert out.returncode == 0, (cmd, out.stdout[-2000:], out.stderr[-2000:])
    return out.stdout


def installed(tmp):
    """meson install into tmp/root; returns (libdir, python dir) under it."""
    root = os.path.join(tmp, "root")
    run([os.environ["MESON"], "install", "-C", os.environ["KC_BUILD"], "--no-rebuild",
         "--quiet", "--destdir", root])
    mods = glob.glob(root + "/**/kvcache/__init__.py", recursive=True)
    libs = glob.glob(root + "/**/libkvcache.so.0", recursive=True)
    assert len(mods) == 1 and len(libs) == 1, (mods, libs)
    assert os.path.islink(libs[0]), libs[0]
    pydir = os.path.dirname(os.path.dirname(mods[0]))
    return os.path.dirname(libs[0]), pydir


def check_meson_install(tmp, py):
    libdir, pydir = installed(tmp)
    prefix_path = pydir[len(os.path.join(tmp, "root")):]
    # The install dir is one the interpreter searches (its site dirs).
    paths = run([py, "-c", "import sys; print('\\n'.join(sys.path))"]).split()
    assert prefix_path in paths, (prefix_path, paths)
    ns = {}
    exec(open(os.path.join(pydir, "kvcache", "_libpath.py")).read(), ns)
    assert ns["LIBRARY"].endswith("/libkvcache.so.0"), ns
    assert os.path.exists(os.path.join(tmp, "root") + ns["LIBRARY"]), ns["LIBRARY"]
    env = dict(os.environ, PYTHONPATH=pydir, LD_LIBRARY_PATH=libdir)
    env.pop("KVCACHE_LIB", None)
    got = run([py, "-c", CODE], env=env).strip()
    # The recorded path when that library is really installed, else the loader's.
    assert got in (ns["LIBRARY"], "libkvcache.so.0"), got
    print("meson install: module in %s, library %s" % (prefix_path, got))
    return libdir


def check_pip(tmp, py, libdir):
    probe = subprocess.run([py, "-c", "import setuptools, pip"], capture_output=True)
    if probe.returncode != 0:
        print("pip or setuptools missing for %s: pip install not checked" % py)
        return False
    src = os.path.join(tmp, "src")   # a copy: setuptools writes beside its sources
    shutil.copytree(os.path.join(os.environ["KC_SOURCE"], "client", "python"), src,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__",
                                                  "meson.build", "*.in"))
    target = os.path.join(tmp, "pip")
    run([py, "-m", "pip", "install", "--quiet", "--no-build-isolation", "--no-index",
         "--no-deps", "--target", target, src])
    assert not os.path.exists(os.path.join(target, "kvcache", "_libpath.py"))
    env = dict(os.environ, PYTHONPATH=target, LD_LIBRARY_PATH=libdir)
    env.pop("KVCACHE_LIB", None)
    got = run([py, "-c", CODE], env=env, cwd=tmp).strip()
    assert got == "libkvcache.so.0", got
    print("pip install: ok, library through the loader")
    return True


def main():
    py = os.environ.get("KC_PYTHON")
    if not py:
        print("the build installs no Python module (python_module=disabled): skipped")
        return SKIP
    tmp = tempfile.mkdtemp(prefix="kc-pyinst-")
    try:
        libdir = check_meson_install(tmp, py)
        check_pip(tmp, py, libdir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("python install: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
