#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The test command's body (make test): the host unit tests here, then the
# selftest suite in the test host, then one summary.  The last line is
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

echo "== selftests (test host: Debian $kver under qemu, nested KVM)"
selftests/vm/testhost.sh ${kroot:+-K "$kroot"} -k "$kver" -t "${VMDIRTY_TEST_TIMEOUT:-1500}" -- \
	selftests/vm/run-suite.sh "$@" | tee "$results/selftests.ktap"
hrc=${PIPESTATUS[0]}
if [ "$hrc" -ne 0 ]; then
	status=1
	# A hang, a kernel warning or a failed rmmod is a failure of its own
	# even if every test line said ok.
	echo "not ok 1 testhost: run ended with status $hrc" >>"$results/selftests.ktap"
	echo "not ok 1 testhost: run ended with status $hrc"
fi

read -r p f s < <(cat "$results/unit.ktap" "$results/selftests.ktap" |
	awk -f scripts/ktap-summary.awk)
[ "$f" -eq 0 ] || status=1
echo "$s skipped"
echo "$p passed, $f failed"
exit $status
