"""kcunit.py - kvcached.service and /etc/default/kvcached read as systemd
reads them, to run the daemon by the unit's own command lines outside
systemd (tests/pkg/test_unit.py, scripts/pkg-check.sh).

    unit = Unit("dist/systemd/kvcached.service")
    env = defaults("dist/default/kvcached", KVCACHED_DEVICE_SIZE="64m")
    argv = unit.command("ExecStart", env, {"/run/kvcached": tmp + "/run"})

Only what this unit uses is implemented: one [Service] key a line,
EnvironmentFile values (double quotes removed, no expansion), and in
commands ${NAME} (one word) and $NAME (split on whitespace), a leading '-'
or '@' prefix refused. Command words are split as systemd does: spaces, and
single or double quotes around a word."""
import re
import shlex

_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")


class Unit:
    """The keys of one unit file: {section: [(key, value), ...]}."""

    def __init__(self, path):
        self.path = path
        self.sections = {}
        cur = None
        for raw in open(path):
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("[") and line.endswith("]"):
                cur = self.sections.setdefault(line[1:-1], [])
                continue
            key, _, value = line.partition("=")
            assert cur is not None and _, "%s: bad line %r" % (path, line)
            cur.append((key.strip(), value.strip()))

    def get(self, key, section="Service"):
        """Every value of key in section, in order."""
        return [v for k, v in self.sections.get(section, []) if k == key]

    def one(self, key, section="Service"):
        vals = self.get(key, section)
        assert len(vals) == 1, "%s: %s= %d times" % (self.path, key, len(vals))
        return vals[0]

    def command(self, key, env, redirect=None):
        """The argv of Exec key (one command line) with env expanded and each
        path prefix in redirect replaced (longest first)."""
        line = self.one(key)
        assert line[:1] not in "-@+!:", "prefix %r not handled" % line[:1]
        argv = []
        for word in shlex.split(line):
            m = _VAR.fullmatch(word)
            if m and m.group(2):            # $NAME: split on whitespace
                argv += env.get(m.group(2), "").split()
                continue
            argv.append(_VAR.sub(lambda v: env.get(v.group(1) or v.group(2), ""), word))
        for prefix, to in sorted((redirect or {}).items(), key=lambda p: -len(p[0])):
            argv = [a.replace(prefix, to) for a in argv]
        return argv


def defaults(path, **override):
    """NAME=value lines of an EnvironmentFile (quotes removed), then override."""
    env = {}
    for raw in open(path):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        name, _, value = line.partition("=")
        assert _ and re.fullmatch(r"\w+", name.strip()), "%s: bad line %r" % (path, line)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        env[name.strip()] = value
    env.update(override)
    return env


def free_ports(argv, flags=("--port", "--metrics-port", "--memcache-port")):
    """argv with every fixed port (N > 0) after one of flags made 0 (any free
    port), so that runs side by side do not collide."""
    out = list(argv)
    for i in range(len(out) - 1):
        if out[i] in flags and out[i + 1].isdigit() and int(out[i + 1]) > 0:
            out[i + 1] = "0"
    return out
