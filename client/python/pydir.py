"""Print where a module installed under the prefix argv[1] must go for this
interpreter to find it, when that differs from meson's choice (Debian's
/usr/local); print nothing otherwise. Called by meson.build."""
import sys
import sysconfig

prefix = sys.argv[1].rstrip("/")
if prefix == "/usr/local" and "posix_local" in sysconfig.get_scheme_names():
    print(sysconfig.get_path("purelib", "posix_local", vars={"base": "/usr", "platbase": "/usr"}))
