#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make test-debug: the module's selftests under a debug kernel.  Builds (or
# reuses, from /var/cache/vmdirty) Debian's 6.1 from linux-source-6.1 with
# KASAN, lockdep (PROVE_LOCKING), DEBUG_ATOMIC_SLEEP and kmemleak
# (scripts/debug-kernel.sh; FLAVOUR kcsan swaps KASAN for KCSAN), builds the
# DEBUG vmdirty.ko against it (in-kernel self-tests at load, compat checks),
# boots it in the test host and runs the module's selftests against the
# DEBUG module.  run-suite.sh scans kmemleak after the module is unloaded;
# testhost.sh fails the run on any KASAN, lockdep, WARN or BUG report in the
# kernel log, and on KCSAN reports of races the module is part of
# (selftests/vm/kcsan-owner.awk).  The last line is "N passed, N failed".
#
# usage: test-debug.sh [kasan|kcsan] [TEST...]
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 2
flavour=${1:-kasan}
shift || true
# The module's own selftests by default (the VMM, transport and migration
# ones test userspace, and run far slower under KASAN in TCG).
[ $# -gt 0 ] || set -- module_test attach_test attach_fault_test compat_test harvest_test drain_test \
	lifetime_test netlink_test race_test track_test dirty_ring_test \
	bounds_test collector_test lsm_test

start=$(date +%s)
kdir=$(scripts/debug-kernel.sh "$flavour") || exit 2
echo "== debug kernel ($flavour): $kdir, $(( $(date +%s) - start )) s (built in $(cat "$kdir/build-seconds") s)"
kver=$(ls "$kdir/lib/modules")
# A tree of its own: build/kmod-debug is the stock kernel's DEBUG module,
# which any `make` rebuilds, even while this run's test host loads from here.
src=build/kmod-debug-$flavour
make --no-print-directory KDIR="$kdir/build" DEBUG_SRC="$top/$src" module-debug >/dev/null || exit 2
ko=$top/$src/kmod/vmdirty.ko
# The selftests' kernel-side helpers beside it (lifetime_test finds
# selftests/kmod/ next to the module's kmod/).
mkdir -p "$src/selftests/kmod"
cp selftests/kmod/Kbuild selftests/kmod/*.c "$src/selftests/kmod/"
rm -f "$src"/selftests/kmod/*.mod.c	# kbuild's, from the stock kernel's build
make -C "$kdir/build" M="$top/$src/selftests/kmod" W=1 modules >/dev/null || exit 2

results=build/test-results
mkdir -p "$results"
echo "== selftests under $kver (DEBUG module: $ko)"
start=$(date +%s)
# The suite runs against the DEBUG module (lifetime_test reloads it from
# VMDIRTY_KO); its self-tests run once more at the first load.  The guest's
# whole kernel log is kept (testhost.sh prints only the first 60 lines of
# its reports, and KCSAN's alone can be many more).
hostdir=$top/$results/debug-$flavour-host
VMDIRTY_KERNEL_ARGS="kmemleak=on" selftests/vm/testhost.sh -K "$kdir" -k "$kver" \
	-t "${VMDIRTY_TEST_TIMEOUT:-3000}" -o "$hostdir" -- \
	env VMDIRTY_KO="$ko" VMDIRTY_DEBUG_KO="$ko" selftests/vm/run-suite.sh "$@" 2>&1 |
	tee "$results/debug-$flavour.ktap"
hrc=${PIPESTATUS[0]}
echo "# test host: $(( $(date +%s) - start )) s; its kernel log: $hostdir/dmesg" |
	tee -a "$results/debug-$flavour.ktap"
status=0
if [ "$hrc" -ne 0 ]; then
	status=1
	echo "not ok 1 testhost: debug kernel run ended with status $hrc" |
		tee -a "$results/debug-$flavour.ktap"
fi
read -r p f s < <(awk -f scripts/ktap-summary.awk "$results/debug-$flavour.ktap")
[ "$f" -eq 0 ] || status=1
echo "$s skipped"
echo "$p passed, $f failed"
exit $status
