#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Where a migration's time goes: one migration of the comparison profile
# (512 MiB, 1 vCPU, random writer, 128 MiB/s cap, 300 ms downtime limit,
# loopback) with the whole test host sampled by perf, then the agent's own
# per-round breakdown (harvest, reading pages, compressing, sending,
# waiting for the link) and the hottest symbols of the source and the
# destination agents.  Run inside the test host, from the top of the tree
# (make bench runs it as its "profile" section).
#
# usage: profile_migration.sh [BACKEND] [SOURCE OPTIONS...]
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 2
agent=$top/build/vmdirty
be=${1:-ring}
[ $# -gt 0 ] && shift
out=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$out"' EXIT

command -v perf >/dev/null || { echo "profile: perf is missing (make deps)"; exit 1; }
ip link set lo up
"$agent" dest --listen 127.0.0.1:4999 --run-for 1 --no-guest-check >"$out/dest.txt" 2>&1 &
dpid=$!
for _ in $(seq 100); do grep -q waiting "$out/dest.txt" && break; sleep 0.1; done
perf record -a -F 499 -g -o "$out/perf.data" -- \
	"$agent" source --to 127.0.0.1:4999 --after 2 --mem 512 --vcpus 1 --workload random \
	--rate 66 --bandwidth 128 --downtime 300 --backend "$be" --stay 0 --json "$@" \
	>"$out/src.json" 2>"$out/src.log"
wait $dpid
python3 - "$out/src.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print("outcome %s, total %.0f ms, pre-copy %.0f ms, downtime %.1f ms (estimated %.1f)" %
      (r["outcome"], r["total_ms"], r["precopy_ms"], r["downtime_ms"],
       r["downtime_expected"]["total_ms"]))
print("round     pages      zero       ms  harvest     read compress     send     link  (ms; senders summed)")
for x in r["rounds"]:
    print("%5d%s %9d %9d %8.1f %8.1f %8.1f %8.1f %8.1f %8.1f" %
          (x["round"], "*" if x["final"] else " ", x["pages"], x["zero_pages"], x["ms"],
           x["harvest_ms"], x["read_ms"], x["comp_ms"], x["send_ms"], x["link_ms"]))
PY
report() {
	perf report -i "$out/perf.data" --no-children --stdio -g none "$@" 2>/dev/null |
		grep -v '^#' | grep -v '^$'
}
# The agents name their threads: src-main, src-send*, src-control, vcpu*
# (the source's guest), dst-main, dst-recv*, dst-answer.
echo "--- CPU time by thread (the source's vCPU threads run the guest)"
report --sort comm | head -14
for t in src-send0 dst-recv0 src-main dst-main; do
	echo "--- hottest symbols of $t"
	report --comm "$t" --sort dso,sym | head -12
done
