#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the test host, from the top of the build tree: load kvm_amd;
# load the DEBUG build of vmdirty.ko once, which runs its in-kernel
# self-tests at load time (kmod/selftest.c), count their result lines and
# unload it; load the module the suite runs against, run the installed
# kselftest suite with the upstream runner, unload the module, and on a
# kernel with kmemleak, scan for leaks.  Every step is a KTAP result.
#
# usage: run-suite.sh [TEST...]    (default: the whole suite)
#   VMDIRTY_KO        the module the suite runs against (kmod/vmdirty.ko)
#   VMDIRTY_DEBUG_KO  the DEBUG build whose self-tests run first
#                     (build/kmod-debug/kmod/vmdirty.ko; "" skips them)
set -u
ko=${VMDIRTY_KO:-kmod/vmdirty.ko}
debug_ko=${VMDIRTY_DEBUG_KO-build/kmod-debug/kmod/vmdirty.ko}
base=build/kselftest
kmemleak=/sys/kernel/debug/kmemleak
rc=0

ok() { echo "ok $1 testhost: $2"; }
notok() { echo "not ok $1 testhost: $2"; rc=1; }

# The DEBUG module's self-tests: insmod fails if one group fails; each group
# prints "vmdirty: <group> self-tests: pass" (or FAIL).  None counted, or
# any FAIL, is a failure: a module that skipped them cannot pass.
selftests_in_kernel() {
	local n=$1 log pass fail seen
	# Only what this load prints (the log itself is kept for testhost.sh).
	seen=$(dmesg | wc -l)
	if ! insmod "$debug_ko"; then
		notok "$n" "insmod DEBUG vmdirty.ko: in-kernel self-tests"
		dmesg | tail -n +"$((seen + 1))" | grep 'vmdirty' | sed 's/^/# /'
		return
	fi
	log=$(dmesg | tail -n +"$((seen + 1))" | grep -E 'vmdirty: .*self-tests: ')
	echo "$log" | sed 's/^/# /'
	pass=$(echo "$log" | grep -c 'self-tests: pass$')
	fail=$(echo "$log" | grep -vc 'self-tests: pass$')
	if [ "$pass" -ge 2 ] && [ "$fail" -eq 0 ] && [ -n "$log" ]; then
		ok "$n" "in-kernel self-tests: $pass groups passed"
	else
		notok "$n" "in-kernel self-tests: $pass groups passed, $fail failed"
	fi
	rmmod vmdirty || notok "$n" "rmmod DEBUG vmdirty.ko"
}

echo "TAP version 13"
echo "1..3"
echo "# testhost: Linux $(uname -r), $(nproc) CPUs, $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) MiB"
if modprobe kvm_amd nested=1 && [ -c /dev/kvm ]; then
	ok 1 "kvm_amd loaded, /dev/kvm present"
else
	notok 1 "kvm_amd loaded, /dev/kvm present"
fi
# Leaks from here on are ours to find: forget what booting left.
[ -w "$kmemleak" ] && echo clear >"$kmemleak"
# VMDIRTY_GUEST_FAULTS=1 (make test-mttcg): trace every page fault our
# guests take.  They run on static identity page tables that map all of
# their memory and take none; a #PF injected into one, or a triple fault
# (SHUTDOWN), is the emulated CPU failing under multi-threaded TCG (it
# happens with no vmdirty.ko at all: README, "make test-mttcg").
tr=/sys/kernel/tracing
if [ "${VMDIRTY_GUEST_FAULTS:-0}" = 1 ]; then
	[ -d "$tr/events/kvm" ] || mount -t tracefs nodev "$tr"
	echo 'exception == 14' >"$tr/events/kvm/kvm_inj_exception/filter" &&
		echo 1 >"$tr/events/kvm/kvm_inj_exception/enable" &&
		echo 'exit_reason == 127' >"$tr/events/kvm/kvm_exit/filter" &&
		echo 1 >"$tr/events/kvm/kvm_exit/enable" ||
		echo "# testhost: cannot trace guest faults"
fi
# KVM's static keys must not flip while the suite runs: see kvm-pin.py.
# Turning them on patches text too, so the pin takes its VMs with the other
# CPUs offline, where no CPU can be running the code being patched (a
# multi-threaded TCG run hung here once in 30 without this).
pin_kvm_keys() {
	local cpus c ready=/run/vmdirty-kvm-pin
	cpus=$(grep -l "^1$" /sys/devices/system/cpu/cpu[1-9]*/online 2>/dev/null)
	for c in $cpus; do echo 0 >"$c"; done
	rm -f "$ready"
	python3 "$(dirname "$0")/kvm-pin.py" >"$ready" 2>&1 &
	for _ in $(seq 100); do
		grep -q 'holding' "$ready" 2>/dev/null && break
		sleep 0.1
	done
	for c in $cpus; do echo 1 >"$c"; done
	if grep -q 'holding' "$ready"; then
		echo "# testhost: KVM's static keys pinned with $(echo "$cpus" | grep -c online) other CPUs offline"
	else
		echo "# testhost: KVM's static keys NOT pinned: kvm-pin.py: $(cat "$ready")"
	fi
}
cpus_before=$(nproc)
pin_kvm_keys
# The races the suite looks for need every CPU back.
if [ "$(nproc)" -ne "$cpus_before" ]; then
	echo "# testhost: $(nproc) of $cpus_before CPUs back online after pinning KVM's keys"
	rc=1
fi
if [ -z "$debug_ko" ]; then
	ok 2 "in-kernel self-tests # SKIP no DEBUG module asked for"
elif [ -e "$debug_ko" ]; then
	selftests_in_kernel 2
else
	notok 2 "in-kernel self-tests: $debug_ko not built (make module-debug)"
fi
if insmod "$ko" && [ -c /dev/vmdirty ]; then
	ok 3 "insmod $ko, /dev/vmdirty present"
else
	notok 3 "insmod $ko, /dev/vmdirty present"
	exit 1
fi

# attach_fault_test swaps in the DEBUG build for its fault injection and
# puts this one back: both as paths that work from the tests' directory.
[ -e "$ko" ] && export VMDIRTY_KO=$(realpath "$ko")
[ -n "$debug_ko" ] && [ -e "$debug_ko" ] && export VMDIRTY_DEBUG_KO=$(realpath "$debug_ko")

if [ $# -eq 0 ]; then
	set -- $(cd "$base/vmdirty" && ls -- *_test *_test.sh *_test.py 2>/dev/null | sort -u)
fi
# Every agent keeps a few inputs of each kind it accepted from real peers,
# seeds for the fuzzers (userspace/wire/record.h, scripts/fuzz.sh).
if [ -n "${VMDIRTY_TESTHOST_OUT:-}" ] && mkdir -p "$VMDIRTY_TESTHOST_OUT/seeds"; then
	export VMDIRTY_RECORD=$VMDIRTY_TESTHOST_OUT/seeds
fi
(
	cd "$base/vmdirty" || exit 1
	BASE_DIR=$(cd .. && pwd)
	export BASE_DIR
	set +u # the runner reads unset variables
	. "$BASE_DIR/kselftest/runner.sh"
	run_many $(printf './%s ' "$@")
)

# The pin is left alive until the power-off: ending it destroys its VMs,
# which turns the keys off, the very patching it exists to avoid.  A CI run
# of make test-mttcg hung there, the pin's os._exit() in exit_group, after
# every test had passed.
if [ "${VMDIRTY_GUEST_FAULTS:-0}" = 1 ]; then
	n=$(grep -vc '^#' "$tr/trace")
	[ "$n" -eq 0 ] || grep -v '^#' "$tr/trace" | head -n 5 |
		sed "s/^ */# guest CPU fault ($n events): /"
fi

# The suite has closed every session: the module must go away cleanly.
echo "TAP version 13"
if [ -e "$kmemleak" ]; then echo "1..2"; else echo "1..1"; fi
if rmmod vmdirty; then
	ok 1 "rmmod vmdirty"
else
	notok 1 "rmmod vmdirty"
	grep vmdirty /proc/modules | sed 's/^/# /'
fi
# kmemleak reports an object only once it is older than 5 s and was not
# seen referenced in two scans: wait, scan twice.
if [ -e "$kmemleak" ]; then
	sleep 6
	echo scan >"$kmemleak"
	sleep 6
	echo scan >"$kmemleak"
	leaks=$(grep -c '^unreferenced object' "$kmemleak")
	if [ "$leaks" -eq 0 ]; then
		ok 2 "kmemleak: no leaks"
	else
		notok 2 "kmemleak: $leaks unreferenced objects"
		head -n 200 "$kmemleak" | sed 's/^/# /'
	fi
fi
exit $rc
