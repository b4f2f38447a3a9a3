#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Migration benchmark: per codec, channel count and transport, for each
guest workload, what a real migration between two agents costs: total time,
downtime, bytes on the wire, codec throughput per core (from the source's
own counters, on real guest memory) and page throughput.  The uncompressed
single-channel plain-send migration of the same workload is the baseline,
run in the same session: ratios against it are what to compare (TCG
inflates absolute times).

The codec and transport rows run without encryption (--insecure): zero copy
exists only there (the kernel's TLS takes no MSG_ZEROCOPY), and they compare
codecs and sends.  The encryption rows then migrate the same workload with
TLS 1.3 records by the kernel (kTLS) and by GnuTLS in userspace, each against
the same configuration unencrypted in the same run: that is encryption's
cost on a whole migration.

Runs inside the test host (scripts/bench.sh), from the top of the tree, as
root, with /dev/kvm.  Usage: bench_migrate.py [--quick] [--crypto-only] [--json FILE]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

AGENT = os.path.join(os.getcwd(), "build", "vmdirty")

# (codec, channels, transport, choice): the baseline first.  "zerocopy" is
# the agent's default, which stops asking for zero copy on a channel whose
# first sends the kernel all copied (loopback does); "zerocopy-always"
# keeps asking, to show what the deferred copies cost.  Choice "adaptive"
# is the agent's default: a batch goes raw where compressing does not pay
# against the link it measured (on loopback under TCG, it rarely does);
# "forced" compresses every batch (--no-adaptive), which shows what each
# codec saves on the wire.
CONFIGS = [
    ("raw", 1, "plain", "-"),
    ("raw", 1, "zerocopy", "-"),
    ("raw", 1, "zerocopy-always", "-"),
    ("raw", 4, "plain", "-"),
    ("raw", 4, "zerocopy", "-"),
    ("lz4", 1, "plain", "adaptive"),
    ("lz4", 1, "plain", "forced"),
    ("lz4", 4, "zerocopy", "forced"),
    ("zstd:-5", 1, "plain", "forced"),
    ("zstd:-1", 1, "plain", "adaptive"),
    ("zstd:-1", 1, "plain", "forced"),
    ("zstd:-1", 4, "zerocopy", "forced"),
    ("zstd:3", 1, "plain", "forced"),
]
QUICK_CONFIGS = [CONFIGS[0], CONFIGS[1], CONFIGS[6], CONFIGS[9], CONFIGS[11]]
WORKLOADS = ["random", "hotset", "seq"]
# Encryption rows: (codec, channels, transport, choice) x trust, workload random.
CRYPTO_CONFIGS = [("raw", 1, "plain", "-"), ("raw", 4, "plain", "-"),
                  ("zstd:-1", 1, "plain", "adaptive")]
QUICK_CRYPTO_CONFIGS = CRYPTO_CONFIGS[:1]
TRUSTS = ["none", "ktls", "gnutls"]
KEY = None


def trust_args(trust):
    """Both agents' options: no key (explicit), or the run's key and where records are made."""
    if trust == "none":
        return ["--insecure"]
    return ["--key", KEY, "--tls", "kernel" if trust == "ktls" else "user"]


def transport_args(transport):
    if transport.endswith("-always"):
        return ["--transport", transport[:-len("-always")], "--zerocopy-always"]
    return ["--transport", transport]


def migrate(workload, codec, channels, transport, choice, mem, rate, port, trust="none"):
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        dlog = open(os.path.join(tmp, "dest.log"), "w+")
        dest = subprocess.Popen(
            [AGENT, "dest", "--json", "--run-for", "0.5", "--no-guest-check",
             "--listen", "127.0.0.1:%d" % port, "--mem", str(mem), "--vcpus", "2"] +
            trust_args(trust),
            stdout=subprocess.PIPE, stderr=dlog, text=True)
        for _ in range(300):
            dlog.seek(0)
            if "waiting" in dlog.read():
                break
            time.sleep(0.1)
        src = subprocess.run(
            [AGENT, "source", "--json", "--quiet", "--to", "127.0.0.1:%d" % port,
             "--after", "1", "--mem", str(mem), "--vcpus", "2", "--workload", workload,
             "--rate", str(rate), "--hot-pages", "512", "--codec", codec,
             "--channels", str(channels)] + transport_args(transport) + trust_args(trust) +
            (["--no-adaptive"] if choice == "forced" else []),
            capture_output=True, text=True, timeout=900)
        dout, _ = dest.communicate(timeout=300)
    try:
        s = json.loads(src.stdout)
        d = json.loads(dout)
    except ValueError:
        return {"error": "no report: " + src.stderr.strip()[-200:]}
    if not s["ok"]:
        return {"error": "source: " + (s["error"] or "not ok")}
    if not d["ok"]:
        return {"error": "destination: " + (d["error"] or "not ok")}
    want = {"none": "none", "ktls": "ktls", "gnutls": "userspace"}[trust]
    if s.get("encryption") != want or d.get("encryption") != want:
        return {"error": "asked %s, got %s/%s" % (trust, s.get("encryption"), d.get("encryption"))}
    return s


def crypto_row(cfg, trust, r, base):
    codec, ch, tr, choice = cfg
    name = "%-8s %-8s %2d %-6s" % (codec, choice, ch, trust)
    if r.get("error"):
        return name + "  FAILED: " + r["error"]
    secs = r["total_ms"] / 1000
    tput = r["pages"] * 4096 / 2**20 / secs if secs else 0
    rel = ""
    if trust != "none" and base and not base.get("error"):
        btput = base["pages"] * 4096 / 2**20 / (base["total_ms"] / 1000)
        rel = "%5.2f %5.2f %5.2f" % (r["total_ms"] / base["total_ms"],
                                     r["downtime_ms"] / base["downtime_ms"] if base["downtime_ms"] else 0,
                                     tput / btput if btput else 0)
    return "%s %7.1f %7.1f %4d %8.1f %8.1f  %s" % (
        name, r["total_ms"], r["downtime_ms"], len(r["rounds"]), r["wire_bytes"] / 2**20, tput, rel)


def per_data_page(r):
    """Bytes on the wire per byte of non-zero page sent.  Zero pages go as
    markers whatever the codec, and how many pages are still zero, or how
    often hot pages are sent again, depends on how long each migration took:
    per data page is what compares codecs."""
    data = (r["pages"] - r["zero_pages"]) * 4096 if r.get("pages") else 0
    return r["wire_bytes"] / data if data else 0


def row(workload, cfg, r, base):
    codec, ch, tr, choice = cfg
    name = "%-7s %-8s %-8s %2d %-15s" % (workload, codec, choice, ch, tr)
    if r.get("error"):
        return name + "  FAILED: " + r["error"]
    c = r["codec_stats"]
    page_bytes = r["pages"] * 4096
    wire = r["wire_bytes"]
    secs = r["total_ms"] / 1000
    core = c["comp_bytes"] / 2**20 / (c["comp_ms"] / 1000) if c["comp_ms"] else 0
    tput = page_bytes / 2**20 / secs if secs else 0
    rel = ""
    if base and not base.get("error"):
        rel = "%5.2f %5.2f %5.2f %5.2f" % (
            per_data_page(r) / per_data_page(base) if per_data_page(base) else 0,
            wire / base["wire_bytes"] if base["wire_bytes"] else 0,
            r["total_ms"] / base["total_ms"] if base["total_ms"] else 0,
            tput / (base["pages"] * 4096 / 2**20 / (base["total_ms"] / 1000)))
    return "%s %7.1f %7.1f %4d %8.1f %6.3f %8s %8.1f  %s" % (
        name, r["total_ms"], r["downtime_ms"], len(r["rounds"]), wire / 2**20,
        wire / page_bytes if page_bytes else 0, "%.0f" % core if core else "-", tput, rel)


def summary(results):
    """The issue's targets, from this run's rows."""
    by = {(x["workload"], x["codec"], x["channels"], x["transport"], x["choice"]): x["report"]
          for x in results}
    ok = lambda r: r and not r.get("error")
    print("# zero copy against plain send, same workload, codec and channels (total time):")
    for (w, codec, ch, tr, choice), r in sorted(by.items()):
        p = by.get((w, codec, ch, "plain", choice))
        if tr == "plain" or not ok(r) or not ok(p):
            continue
        print("#   %-7s %-8s %d ch %-15s %.2f x plain%s" % (
            w, codec, ch, tr, r["total_ms"] / p["total_ms"],
            ", stopped asking on %d of %d channels" % (r["net"]["zc_stopped"], ch)
            if r["net"]["zc_stopped"] else ""))
    print("# bytes on the wire per data page against raw, same workload, channels and send")
    print("#   (then all bytes, which also count the extra rounds a slower migration takes):")
    for (w, codec, ch, tr, choice), r in sorted(by.items()):
        raw = by.get((w, "raw", ch, tr, "-"))
        if codec == "raw" or not ok(r) or not ok(raw):
            continue
        c = r["codec_stats"]
        print("#   %-7s %-8s %-8s %d ch %-9s %.2f x raw per data page, %.2f x all bytes"
              "  (link %.0f MiB/s%s, codec %.0f MiB/s)" % (
            w, codec, choice, ch, tr, per_data_page(r) / per_data_page(raw),
            r["wire_bytes"] / raw["wire_bytes"], c["link_mibps"],
            " measured" if c["link_measured"] else "", c["comp_mibps"]))


def median_run(runs):
    """The run of median total time; any failure is the result."""
    bad = [r for r in runs if r.get("error")]
    if bad:
        return bad[0]
    return sorted(runs, key=lambda r: r["total_ms"])[len(runs) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("--crypto-only", action="store_true",
                    help="only the encryption rows (with their unencrypted baselines)")
    ap.add_argument("--repeat", type=int, default=0,
                    help="migrations per row, the median by total time shown (default 3, quick 1)")
    a = ap.parse_args()
    global KEY
    keydir = tempfile.mkdtemp(prefix="vmdirty-bench-key-", dir="/var/tmp")
    KEY = os.path.join(keydir, "key")
    subprocess.run([AGENT, "genkey", KEY], check=True, capture_output=True)
    reps = a.repeat or (1 if a.quick else 3)
    configs = QUICK_CONFIGS if a.quick else CONFIGS
    workloads = WORKLOADS[:1] if a.quick else WORKLOADS
    mem = 32 if a.quick else 64
    rate = 10
    print("# migration of a %d MiB guest, 2 vCPUs, dirty-rate limit %d MB/s per vCPU, loopback;" %
          (mem, rate))
    print("# each row the median of %d migrations by total time (how many rounds a migration" % reps)
    print("#   takes under TCG varies from run to run)")
    print("# wire/page: bytes on the wire per byte of page sent (zero pages are markers)")
    print("# codec MiB/s/core: compressor input per second of compressing, on the guest's own pages")
    print("# vs raw/1/plain (same workload, same run): data = wire bytes per byte of non-zero")
    print("#   page sent, wire = all bytes, time = total time, tput = pages/s")
    print("%-7s %-8s %-8s %2s %-15s %7s %7s %4s %8s %6s %8s %8s  %s" % (
        "work", "codec", "choice", "ch", "send", "total", "down", "rnds", "wire MiB", "w/page",
        "codec/c", "MiB/s", " data  wire  time  tput"))
    results = []
    port = 5100
    for w in [] if a.crypto_only else workloads:
        base = None
        for cfg in configs:
            runs = []
            for _ in range(reps):
                port += 1
                runs.append(migrate(w, cfg[0], cfg[1], cfg[2], cfg[3], mem, rate, port))
            r = median_run(runs)
            if cfg == CONFIGS[0]:
                base = r
            print(row(w, cfg, r, base), flush=True)
            results.append({"workload": w, "codec": cfg[0], "channels": cfg[1],
                            "transport": cfg[2], "choice": cfg[3], "report": r})
    if results:
        summary(results)

    # Encryption: the same migration with and without TLS, same run.
    print("# encryption: TLS 1.3 records by the kernel (ktls) or by GnuTLS (gnutls), against the")
    print("#   same configuration without (none, --insecure), workload random, same run")
    print("%-8s %-8s %2s %-6s %7s %7s %4s %8s %8s  %s" % (
        "codec", "choice", "ch", "crypto", "total", "down", "rnds", "wire MiB", "MiB/s",
        " x none: time  down  tput"))
    crypto = []
    for cfg in QUICK_CRYPTO_CONFIGS if a.quick else CRYPTO_CONFIGS:
        base = None
        for trust in TRUSTS:
            runs = []
            for _ in range(reps):
                port += 1
                runs.append(migrate("random", cfg[0], cfg[1], cfg[2], cfg[3], mem, rate, port,
                                    trust))
            r = median_run(runs)
            if trust == "none":
                base = r
            print(crypto_row(cfg, trust, r, base), flush=True)
            crypto.append({"workload": "random", "codec": cfg[0], "channels": cfg[1],
                           "transport": cfg[2], "choice": cfg[3], "crypto": trust, "report": r})
    results.extend(crypto)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f)
    shutil.rmtree(keydir, ignore_errors=True)
    return 0 if not any(x["report"].get("error") for x in results) else 1


if __name__ == "__main__":
    sys.exit(main())
