"""Every flag a program's --help lists is documented in its manual page.

Arguments: PROGRAM=PAGE.scd pairs. For each, `PROGRAM --help` is read; the
option lines are those whose first word starts with '-', and every flag at
the head of such a line (-x, --long) must occur as a word in PAGE. When the
help has a "Commands:" section, each command listed there must be named in
the page, and `PROGRAM COMMAND --help` is checked the same way. A flag added
to a program shows up here as a failure naming it, until its page says what
it does."""
import re
import subprocess
import sys

FLAG = re.compile(r"^-{1,2}[A-Za-z0-9][A-Za-z0-9-]*,?$")


def help_text(cmd):
    """The --help output of cmd (stdout, else stderr)."""
    out = subprocess.run(cmd + ["--help"], capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, (cmd, out.returncode, out.stderr)
    return out.stdout or out.stderr


def flags(text):
    """Flags at the head of option lines."""
    found = []
    for line in text.splitlines():
        words = line.split()
        if not line[:1].isspace() or not words or not words[0].startswith("-"):
            continue
        for w in words:
            if not FLAG.match(w):
                break
            found.append(w.rstrip(","))
    return found


def commands(text):
    """Names listed under a "Commands:" heading, up to the next blank line."""
    names, inside = [], False
    for line in text.splitlines():
        if line.strip().lower() == "commands:":
            inside = True
        elif inside and not line.strip():
            break
        elif inside:
            names.append(line.split()[0])
    return names


def documented(page, word):
    return re.search(r"(?<![\w-])" + re.escape(word) + r"(?![\w-])", page) is not None


def main():
    missing, checked = [], 0
    for arg in sys.argv[1:]:
        prog, page_path = arg.split("=", 1)
        page = open(page_path).read()
        text = help_text([prog])
        pairs = [("", f) for f in flags(text)]
        for cmd in commands(text):
            if not documented(page, cmd):
                missing.append("%s: command %s not in %s" % (prog, cmd, page_path))
            pairs += [(cmd + " ", f) for f in flags(help_text([prog, cmd]))]
        assert pairs, "%s --help lists no flags: is the format still parsed?" % prog
        for where, f in pairs:
            checked += 1
            if not documented(page, f):
                missing.append("%s %s%s: not in %s" % (prog, where, f, page_path))
    for m in missing:
        print("undocumented:", m)
    print("%d flags checked, %d undocumented" % (checked, len(missing)))
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
