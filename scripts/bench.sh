#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# What `make bench` runs: boot the test host (selftests/vm/testhost.sh), load
# kvm_amd (nested=1) and the freshly built vmdirty.ko, run every benchmark
# section, unload the module.  The whole output is also kept in
# build/bench-results/bench-<time>.txt.
#
# usage: bench.sh [-k KVER] [-q] [-t SECONDS] [-s SECTION]...
#   -q          quick mode (smaller guests, fewer points and repetitions);
#               also BENCH_QUICK=1 in the environment
#   -s SECTION  run only these sections (default: all, in the order below)
#   -t SECONDS  test-host timeout (default 2400, quick 900)
#
# Adding a benchmark: write a function bench_<name> (it runs inside the test
# host, from the top of the tree, with $quick set to 1 or empty) and add
# <name> to SECTIONS.  A failing section is reported and the others still run.
set -u

SECTIONS=(harvest)

# Harvest plus reset per pre-copy round: bitmap, ring reaper, vmdirty.ko.
bench_harvest() {
	build/userspace/bench/harvest_bench --verbose ${quick:+--quick}
}

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 2

if [ "${1:-}" = "--inside" ]; then
	shift
	quick=""
	[ "${1:-}" = "-q" ] && { quick=1; shift; }
	echo "# bench: Linux $(uname -r), $(nproc) CPUs, $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) MiB${quick:+, quick mode}"
	if ! modprobe kvm_amd nested=1 || [ ! -c /dev/kvm ]; then
		echo "bench: kvm_amd did not load, no /dev/kvm" >&2
		exit 1
	fi
	if insmod kmod/vmdirty.ko && [ -c /dev/vmdirty ]; then
		echo "# bench: vmdirty.ko loaded"
	else
		echo "# bench: vmdirty.ko did not load; the kmod rows will say so"
	fi
	rc=0
	for s in "$@"; do
		echo
		echo "=== $s"
		start=$(date +%s)
		if ! "bench_$s"; then
			echo "=== $s: FAILED"
			rc=1
		fi
		echo "=== $s: $(($(date +%s) - start)) s"
	done
	if grep -q '^vmdirty ' /proc/modules && ! rmmod vmdirty; then
		echo "bench: rmmod vmdirty failed" >&2
		rc=1
	fi
	exit $rc
fi

kver=""
quick=${BENCH_QUICK:-}
[ "$quick" = 0 ] && quick=""
timeout=""
sel=()
while getopts "k:qt:s:h" opt; do
	case $opt in
	k) kver=$OPTARG ;;
	q) quick=1 ;;
	t) timeout=$OPTARG ;;
	s) sel+=("$OPTARG") ;;
	*) sed -n '3,18p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
	esac
done
[ ${#sel[@]} -gt 0 ] || sel=("${SECTIONS[@]}")
for s in "${sel[@]}"; do
	declare -F "bench_$s" >/dev/null || { echo "bench: no section '$s' (have: ${SECTIONS[*]})" >&2; exit 2; }
done
[ -n "$kver" ] || kver=$(scripts/kver.sh) || exit 2
[ -n "$timeout" ] || timeout=$([ -n "$quick" ] && echo 900 || echo 2400)

mkdir -p build/bench-results
out=build/bench-results/bench-$(date +%Y%m%d-%H%M%S).txt
selftests/vm/testhost.sh -k "$kver" -t "$timeout" -- \
	scripts/bench.sh --inside ${quick:+-q} "${sel[@]}" | tee "$out"
rc=${PIPESTATUS[0]}
echo "bench: results in $out (status $rc)"
exit "$rc"
