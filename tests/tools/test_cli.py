#!/usr/bin/env python3
"""The kvcache CLI against a real daemon: every subcommand's --json output
parsed and checked against what was stored; exit codes; --help per command;
then, with the daemon stopped, inspect --offline on the store it wrote, and
scrub finding a byte flipped in a value on the device."""
import os
import struct
import sys

from kvt import Daemon, check, run, run_json, tool

CLI = tool("KVCACHE_CLI")
NS = "model=tools-test,layers=0-2,tpb=4,dtype=bf16,heads=2,dim=64,block=8k"
TOKENS = ",".join(str(t) for t in range(40))       # 10 blocks of 4 tokens


def cli(d, *args, expect=0):
    return run([CLI, *args, "-s", d.uri], expect)


def cli_json(d, *args, expect=0):
    return run_json([CLI, *args, "-s", d.uri, "--json"], expect)


def main():
    # usage and help without a daemon
    run([CLI], expect=2)
    run([CLI, "nosuch"], expect=2)
    for sub in ("stats", "top", "health", "ns", "slabs", "match", "exists", "get", "put", "describe",
                "keys", "scrub", "inspect"):
        out = run([CLI, sub, "--help"])
        check(out.startswith(f"Usage: kvcache {sub}") and "Exit:" in out, f"{sub} --help")
    run([CLI, "stats", "--bogus"], expect=2)
    run([CLI, "stats", "-s", "unix:/nonexistent/kvcached.sock"], expect=5)

    # keys are computed locally, like the client (test vector of kvcache.h
    # needs ns 0: use the descriptor's id, and check the chain property)
    k10 = run([CLI, "keys", NS, "--tokens", TOKENS]).split()
    k5 = run([CLI, "keys", NS, "--tokens", ",".join(str(t) for t in range(22))]).split()
    check(len(k10) == 10 and k5 == k10[:5], "keys: 10 full blocks, shared prefix shares keys")

    with Daemon() as d:
        d.start()
        st = cli_json(d, "stats")
        check(st["items"] == 0 and st["slab_size"] == 1 << 20, "stats --json on an empty store")
        check(cli_json(d, "health")["state"] == "OK", "health --json: OK")
        check(cli_json(d, "ns")["namespaces"] == [], "ns --json: none yet")

        # put the first 6 blocks of the chain, then match / get / describe
        r = cli_json(d, "put", NS, "--tokens", ",".join(str(t) for t in range(24)))
        check(r["stored"] == 6 and all(k["status"] == "stored" for k in r["keys"]),
              "put --tokens: 6 blocks stored")
        r = cli_json(d, "put", NS, "--tokens", ",".join(str(t) for t in range(24)))
        check(all(k["status"] == "exists" for k in r["keys"]), "put again: exists")
        ns = cli_json(d, "ns")["namespaces"]
        check(len(ns) == 1 and ns[0]["desc"]["model"] == "tools-test" and ns[0]["items"] == 6
              and ns[0]["block_bytes"] == 8192, "ns --json: the namespace, 6 blocks")
        nsid = ns[0]["ns"]
        m = cli_json(d, "match", NS, "--tokens", TOKENS, expect=3)
        check(m["matched"] == 6 and m["keys"] == 10, "match: 6 of 10, exit 3")
        m = cli_json(d, "match", nsid, *k10[:6])
        check(m["matched"] == 6, "match by id and hex keys: all, exit 0")
        e = cli_json(d, "exists", nsid, k10[7], k10[2], k10[0], expect=3)
        check(e["present"] == 2 and e["each"] == [False, True, True],
              "exists: per key in the order given, exit 3")
        check(cli_json(d, "exists", nsid, k10[5], k10[1])["present"] == 2, "exists: all, exit 0")
        out = os.path.join(d.dir, "blocks.bin")
        g = cli_json(d, "get", nsid, k10[0], k10[7], "-o", out, expect=3)
        check(g["found"] == 1 and g["keys"][0]["found"] and not g["keys"][1]["found"],
              "get: one found, one missing, exit 3")
        check(g["keys"][0]["where"]["chain_pos"] == 0, "get: describes where the block lives")
        blob = open(out, "rb").read()
        check(len(blob) == 8192 and blob[:16] == bytes.fromhex(k10[0]),
              "get -o: the block (default put pattern: its key repeated)")
        g = cli_json(d, "get", nsid, "--tokens", TOKENS, "--prefix", expect=3)
        check(g["found"] == 6, "get --prefix --tokens: the leading 6")
        ds = cli_json(d, "describe", nsid, *k10[4:7], expect=3)
        check([k["where"]["found"] for k in ds["keys"]] == [True, True, False]
              and ds["keys"][0]["where"]["chain_pos"] == 4, "describe: positions, missing key")
        # put from a file, read back byte for byte
        data = os.path.join(d.dir, "in.bin")
        with open(data, "wb") as f:
            f.write(bytes(range(256)) * 32)
        cli_json(d, "put", nsid, k10[6], "-i", data)
        cli_json(d, "get", nsid, k10[6], "-o", out)
        check(open(out, "rb").read() == open(data, "rb").read(), "put -i / get -o round trip")
        run([CLI, "put", nsid, k10[7], "-i", out + ".nosuch", "-s", d.uri], expect=2)

        # fill enough to reach the SSD: 80 blocks of 8 KiB, 8 MiB memory
        toks = ",".join(str(t) for t in range(4 * 1200))
        cli_json(d, "put", NS, "--tokens", toks)
        st = cli_json(d, "stats")
        check(st["items"] >= 1000 and st["flushes"] > 0 and st["bytes_written"] > 0,
              "stats: blocks flushed to the device")
        check(any(l["op"] == "put" and l["count"] > 0 for l in st["latency"]),
              "stats: latency per op")
        sl = cli_json(d, "slabs")
        check(sl["total"] == 63 and len(sl["slabs"]) == 63, "slabs --json: every slab")
        check(sum(s["nlive"] for s in sl["slabs"]) >= 1000, "slabs: live items")
        # format 3 slabs: fill, live bytes and sequence range per slab, and
        # the store's totals (no size classes)
        check(sl["slab_size"] == 1 << 20 and "classes" not in sl, "slabs --json: slab size")
        used = [s for s in sl["slabs"] if s.get("state", "FREE") != "FREE"]
        check(len(used) >= 10 and all(0 < s["used_bytes"] <= 1 << 20 and
                                      s.get("live_bytes", 0) <= s["used_bytes"] and
                                      s.get("seq_hi", 0) >= s.get("seq", 0) for s in used),
              "slabs --json: per slab, bytes written within the slab, live within those")
        tot, stb = sl["store"], cli_json(d, "stats")
        check(tot["slabs_used"] == len(used) and tot["live"] == stb["items"]
              and tot["live_bytes"] == stb["bytes"] == 8192 * stb["items"]
              and tot["used_bytes"] == sum(s["used_bytes"] for s in used)
              and 0 < tot["fill"] <= 1 and 0.9 < tot["live_share"] <= 1,
              "slabs --json: the store's totals agree with stats")
        txt = cli(d, "slabs", "-S")
        check("store:" in txt and "live" in txt and "class" not in txt, "slabs -S: totals")
        tops = run([CLI, "top", "-s", d.uri, "--json", "-n", "2", "-i", "100"]).splitlines()
        check(len(tops) == 2 and "rates" in __import__("json").loads(tops[1]),
              "top --json -n 2: two refreshes with rates")
        live = cli_json(d, "stats")["items"]
        # scrub next to the daemon: the file's checksums, then the daemon's
        # audit of this store (index and slabs agree)
        sc = run_json([CLI, "scrub", d.store, "--json", "-q", "-s", d.uri])
        check(sc["damaged_items"] == 0 and sc["audit"]["ran"] and sc["audit"]["agree"]
              and sc["audit"]["disagreements"] == 0, "scrub: the daemon's audit agrees")
        txt = run([CLI, "scrub", d.store, "-q", "-s", d.uri])
        check("index: agrees with the slabs" in txt, "scrub: the report says so")
        sc = run_json([CLI, "scrub", d.store, "--json", "-q", "-s", d.uri, "--no-audit"])
        check(not sc["audit"]["ran"] and sc["audit"]["why"] == "--no-audit", "scrub --no-audit")

        # offline: stop the daemon (it flushes), inspect the file it wrote
        d.stop()
        ins = run_json([CLI, "inspect", "--offline", d.store, "--json"])
        check(ins["items"] == live, f"inspect --offline: {live} live blocks, as the daemon said")
        check(ins["namespaces"]["namespaces"][0]["desc"]["model"] == "tools-test",
              "inspect --offline: the namespace's descriptor")
        sl2 = run_json([CLI, "inspect", "--offline", d.store, "slabs", "--json"])
        check(sum(s["nlive"] for s in sl2["slabs"]) == live, "inspect --offline slabs")
        check(sl2["store"]["live_bytes"] == 8192 * live and sl2["slab_size"] == 1 << 20,
              "inspect --offline slabs: live bytes and slab size from the file")
        its = run_json([CLI, "inspect", "--offline", d.store, "items", "--json"])["items"]
        first = [i for i in its if i["key"] == k10[0] and i["live"]]
        check(len(first) == 1 and first[0]["chain_pos"] == 0, "inspect --offline items: a key")
        run([CLI, "inspect", d.store], expect=2)          # --offline is required
        run([CLI, "inspect", "--offline", "/nonexistent"], expect=1)
        sc = run_json([CLI, "scrub", d.store, "--json", "-q", "-s", d.uri])
        check(sc["damaged_items"] == 0 and sc["items"] >= live, "scrub: a clean store")
        check(not sc["audit"]["ran"] and sc["audit"]["why"],
              "scrub with no daemon: the index is not audited, and why")

        # flip one byte inside the value of the block of k10[0]
        it = first[0]
        with open(d.store, "r+b") as f:
            f.seek(0)
            hdr = f.read(64)
            (magic, ver, nsc, sid, gen, dev, slab_size, nslabs, data_off) = struct.unpack(
                "<QIIQQQIIQ", hdr[:56])
            # "slot": the item's offset in its slab in 64-byte units; its
            # 64-byte header, then the value
            pos = data_off + it["slab"] * slab_size + it["slot"] * 64 + 64 + 100
            f.seek(pos)
            b = f.read(1)
            f.seek(pos)
            f.write(bytes([b[0] ^ 0x01]))
        sc = run_json([CLI, "scrub", d.store, "--json", "-q"], expect=4)
        check(sc["damaged_items"] == 1 and sc["damaged"][0]["key"] == k10[0]
              and sc["damaged"][0]["what"] == "value checksum",
              "scrub: finds the flipped byte, names the key, exit 4")
        text = run([CLI, "scrub", d.store, "-q"], expect=4)
        check("DAMAGED" in text and k10[0] in text, "scrub: human report")

        # the daemon refuses the damaged block (a miss), the CLI says so
        d.start(fresh=False)
        g = cli_json(d, "get", nsid, k10[0], expect=3)
        check(not g["keys"][0]["found"], "after restart: the damaged block is a miss")
        check(cli_json(d, "stats")["checksum_failures"] >= 1, "stats: checksum failure counted")
    print("all ok")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print("FAIL:", e)
        sys.exit(1)
