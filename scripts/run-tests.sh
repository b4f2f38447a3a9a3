#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The test command's body (make test): the host unit tests here, then the
# selftest suite in the test host, then the fuzzers here, then one summary.  The last line is
# "N passed, N failed"; skips are counted on the line before it.
#
# usage: run-tests.sh [-k KVER] [-K KROOT] [SELFTEST...]
#   -K KROOT  a kernel not installed here (testhost.sh -K)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 2
kver=""
kroot=""
while getopts "k:K:" opt; do
	case $opt in
	k) kver=$OPTARG ;;
	K) kroot=$OPTARG ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ -n "$kver" ] || kver=$(VMDIRTY_KROOT=$kroot scripts/kver.sh) || exit 2

results=build/test-results
mkdir -p "$results"
status=0

echo "== unit tests (this machine)"
: >"$results/unit.ktap"
for t in build/userspace/tests/*_test; do
	[ -x "$t" ] || continue
	echo "# $(basename "$t")" | tee -a "$results/unit.ktap"
	"$t" 2>&1 | tee -a "$results/unit.ktap"
	[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
done
# The test host's own host-side helpers (selftests/vm/*_test.sh), and the
# benchmark scripts' logic (scripts/*_test.py).
for t in selftests/vm/*_test.sh scripts/*_test.py; do
	echo "# $(basename "$t")" | tee -a "$results/unit.ktap"
	"$t" 2>&1 | tee -a "$results/unit.ktap"
	[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
done

echo "== selftests (test host: Debian $kver under qemu, nested KVM)"
# The test host's result share: its agents record what real migrations
# sent them there (seeds/, VMDIRTY_RECORD) for the fuzzers below.
hostout=$top/$results/testhost
rm -rf "$hostout"
mkdir -p "$hostout"
selftests/vm/testhost.sh ${kroot:+-K "$kroot"} -k "$kver" -t "${VMDIRTY_TEST_TIMEOUT:-3600}" -o "$hostout" -- \
	selftests/vm/run-suite.sh "$@" | tee "$results/selftests.ktap"
hrc=${PIPESTATUS[0]}
if [ "$hrc" -ne 0 ]; then
	status=1
	# A hang, a kernel warning or a failed rmmod is a failure of its own
	# even if every test line said ok.
	echo "not ok 1 testhost: run ended with status $hrc" >>"$results/selftests.ktap"
	echo "not ok 1 testhost: run ended with status $hrc"
fi

# The fuzzers, natively, each for a bounded time (scripts/fuzz.sh).
echo "== fuzzers (this machine, ${VMDIRTY_FUZZ_SECONDS:-20} s each)"
rm -rf build/fuzz/recorded
mkdir -p build/fuzz/recorded
cp -r "$hostout/seeds/." build/fuzz/recorded/ 2>/dev/null
# The whole suite records inputs for every harness; a selection may not.
VMDIRTY_FUZZ_REQUIRE_RECORDED=$([ $# -eq 0 ] && echo 1 || echo 0) scripts/fuzz.sh |
	tee "$results/fuzz.ktap"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

read -r p f s < <(cat "$results/unit.ktap" "$results/selftests.ktap" "$results/fuzz.ktap" |
	awk -f scripts/ktap-summary.awk)
[ "$f" -eq 0 ] || status=1
echo "$s skipped"
echo "$p passed, $f failed"
exit $status
