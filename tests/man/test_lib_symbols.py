"""Every kvcache_* function libkvcache.so exports is named in libkvcache(3)
and listed in debian/libkvcache0.symbols, so a new public function shows up
here as a failure naming it. Arguments: LIBRARY PAGE.scd SYMBOLS."""
import re
import subprocess
import sys


def main():
    lib, page, symbols = sys.argv[1:4]
    out = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True,
                         check=True).stdout
    exported = sorted({w for w in out.split() if w.startswith("kvcache_")})
    assert len(exported) > 10, exported
    text, syms = open(page).read(), open(symbols).read()
    listed = set(re.findall(r"^ (kvcache_\w+)@Base", syms, re.M))
    missing = ["%s not in %s" % (f, page) for f in exported
               if not re.search(r"\b%s\b" % f, text)]
    missing += ["%s not in %s" % (f, symbols) for f in exported if f not in listed]
    missing += ["%s in %s but not exported" % (f, symbols) for f in sorted(listed)
                if f not in exported]
    for m in missing:
        print("undocumented:", m)
    print("%d functions exported, %d problems" % (len(exported), len(missing)))
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
