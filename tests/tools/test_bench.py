#!/usr/bin/env python3
"""Smoke runs of kvcache-bench, one per workload, against a real daemon
(and memcached for the memcache mode, skipped if it is not installed):
each must finish with exit 0, valid --json, no errors, no block failing
verification, and the hit ratios its workload implies."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

from kvt import Daemon, check, run, run_json, tool

BENCH = tool("KVCACHE_BENCH")


def bench(*args, expect=0):
    return run_json([BENCH, "--json", "-q", "--verify", *args], expect)


def main():
    run([BENCH, "--help"])
    run([BENCH, "--workload", "nosuch"], expect=2)
    run([BENCH, "-w", "trace"], expect=2)                   # needs --trace
    run([BENCH, "-s", "unix:/nonexistent.sock", "-n", "1"], expect=1)

    with Daemon(size="64m", memory=8) as d:
        d.start()
        # random: fill 200 blocks of 32 KiB, then 400 gets: all hit
        r = bench("-s", d.uri, "-b", "32k", "-k", "200", "--fill", "-n", "400", "-c", "3")
        check(r["fill"]["ops"]["put"]["count"] == 200 and r["fill"]["errors"] == 0,
              "random: fill wrote the key space")
        g = r["run"]["ops"]["get"]
        check(g["count"] == 400 and r["run"]["block_hit_ratio"] == 1.0
              and g["p50_us"] > 0 and g["p999_us"] >= g["p99_us"] >= g["p50_us"],
              "random: 400 gets, all hits, ordered percentiles")
        check(r["run"]["verify_failures"] == 0, "random: every block verified")
        # mixed, batched, for a duration
        r = bench("-s", d.uri, "-b", "32k", "-k", "200", "-r", "0.5", "-B", "4", "-d", "0.5")
        check(r["run"]["ops"]["get"]["count"] > 0 and r["run"]["ops"]["put"]["count"] > 0
              and r["run"]["errors"] == 0, "random: a 50/50 mix of batches of 4 for 0.5 s")
        check(0.4 < r["run"]["seconds"] < 5, "random: the duration is honoured")

        # chat: turns are a GetPrefix then a Put; shared system prompts hit
        r = bench("-s", d.uri, "-w", "chat", "-b", "8k", "--conversations", "8",
                  "--system-tokens", "256", "--max-tokens", "2048", "-n", "60", "-c", "2")
        check(r["run"]["requests"] == 60 and r["run"]["errors"] == 0, "chat: 60 turns")
        check(r["run"]["ops"]["put"]["count"] > 0 and 0 < r["run"]["prefix_hit_ratio"] < 1,
              "chat: puts, and a prefix hit ratio between 0 and 1")

        # trace: a small trace with shared prefixes, replayed twice: the second
        # pass hits what the first stored
        tdir = tempfile.mkdtemp(prefix="kc-trace-")
        try:
            path = os.path.join(tdir, "t.jsonl")
            with open(path, "w") as f:
                for i in range(20):
                    ids = [0, 1, 2] + [100 + i * 4 + j for j in range(3)]
                    f.write('{"timestamp": %d, "input_length": %d, "output_length": 7, '
                            '"hash_ids": [%s]}\n' % (i * 10, 512 * 6 - 100,
                                                     ", ".join(map(str, ids))))
            r = bench("-s", d.uri, "-w", "trace", "-t", path, "-b", "16k", "-c", "1")
            check(r["run"]["requests"] == 20 and r["run"]["ops"]["get"]["count"] == 20,
                  "trace: every request replayed once")
            # 5 full blocks each; 3 shared: (19 * 3) / 100 hits in the first pass
            check(abs(r["run"]["block_hit_ratio"] - 57 / 100) < 1e-6,
                  "trace: the shared prefix hits (57 of 100 blocks)")
            r = bench("-s", d.uri, "-w", "trace", "-t", path, "-b", "16k", "-c", "2")
            check(r["run"]["block_hit_ratio"] == 1.0, "trace: a second pass hits everything")
            r = bench("-s", d.uri, "-w", "trace", "-t", path, "-b", "16k", "--real-time",
                      "--speed", "2")
            check(0.08 < r["run"]["seconds"] < 3, "trace: arrival times honoured (190 ms / 2)")
            shared = "/work/shared/traces/mooncake_synthetic_trace.jsonl"
            if os.path.exists(shared):
                r = bench("-s", d.uri, "-w", "trace", "-t", shared, "-b", "4k", "-n", "50")
                check(r["run"]["requests"] == 50 and r["run"]["errors"] == 0,
                      "trace: the Mooncake trace parses and replays")
            with open(path, "a") as f:
                f.write('{"timestamp": 5, "hash_ids": [1, 2]}\n')
            run([BENCH, "-s", d.uri, "-w", "trace", "-t", path], expect=1)
        finally:
            shutil.rmtree(tdir, ignore_errors=True)

    # memcache mode against memcached, if there is one
    mc = shutil.which("memcached")
    if mc is None:
        print("ok - memcache mode skipped: no memcached")
        print("all ok")
        return
    tdir = tempfile.mkdtemp(prefix="kc-mc-")
    sock = os.path.join(tdir, "mc.sock")
    user = ["-u", "root"] if os.getuid() == 0 else []
    p = subprocess.Popen([mc, *user, "-s", sock, "-a", "0700", "-m", "16", "-U", "0"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(500):
            if os.path.exists(sock):
                break
            time.sleep(0.01)
        r = bench("--memcache", "unix:" + sock, "-b", "32k", "-k", "100", "--fill", "-n", "300",
                  "-c", "2")
        check(r["protocol"] == "memcache" and r["run"]["block_hit_ratio"] == 1.0
              and r["run"]["verify_failures"] == 0, "memcache: fill then 300 verified gets")
        r = bench("--memcache", "unix:" + sock, "-b", "32k", "-k", "100", "-B", "3", "-n", "50")
        check(r["run"]["block_hit_ratio"] == 1.0, "memcache: multi-key gets")
        r = bench("--memcache", "unix:" + sock, "-w", "chat", "-b", "8k", "--conversations", "4",
                  "--system-tokens", "256", "--max-tokens", "2048", "-n", "30")
        check(r["run"]["errors"] == 0 and 0 < r["run"]["prefix_hit_ratio"] < 1,
              "memcache: chat turns as multi-gets and sets")
    finally:
        p.kill()
        p.wait()
        shutil.rmtree(tdir, ignore_errors=True)
    print("all ok")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print("FAIL:", e)
        sys.exit(1)
