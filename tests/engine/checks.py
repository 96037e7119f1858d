"""checks.py - how the engine's tests report: one line per check ("ok" or
"FAIL" and what was checked), and the count of failures for the exit code."""
import os
import sys

failures = 0


def check(cond, what):
    """Report one check; count it when it failed."""
    global failures
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures += 1


def examples_path():
    """Put examples/engine of this checkout first on sys.path."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, "..", "..", "examples", "engine"))


def summary():
    """Print the count of failures; the exit code (1 if any)."""
    print("%d failure(s)" % failures)
    return 1 if failures else 0
