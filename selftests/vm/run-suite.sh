#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the test host, from the top of the build tree: load kvm_amd
# and the freshly built vmdirty.ko, run the installed kselftest suite with
# the upstream runner, and unload the module.  Every step is a KTAP result.
#
# usage: run-suite.sh [TEST...]    (default: the whole suite)
set -u
ko=kmod/vmdirty.ko
base=build/kselftest
rc=0

ok() { echo "ok $1 testhost: $2"; }
notok() { echo "not ok $1 testhost: $2"; rc=1; }

echo "TAP version 13"
echo "1..2"
echo "# testhost: Linux $(uname -r), $(nproc) CPUs, $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) MiB"
if modprobe kvm_amd nested=1 && [ -c /dev/kvm ]; then
	ok 1 "kvm_amd loaded, /dev/kvm present"
else
	notok 1 "kvm_amd loaded, /dev/kvm present"
fi
# KVM's static keys must not flip while the suite runs: see kvm-pin.py.
python3 "$(dirname "$0")/kvm-pin.py" >/dev/null 2>&1 &
pin=$!
if insmod "$ko" && [ -c /dev/vmdirty ]; then
	ok 2 "insmod vmdirty.ko, /dev/vmdirty present"
else
	notok 2 "insmod vmdirty.ko, /dev/vmdirty present"
	exit 1
fi

if [ $# -eq 0 ]; then
	set -- $(cd "$base/vmdirty" && ls -- *_test *_test.sh 2>/dev/null | sort -u)
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

kill "$pin" 2>/dev/null
wait "$pin" 2>/dev/null

# The suite has closed every session: the module must go away cleanly.
echo "TAP version 13"
echo "1..1"
if rmmod vmdirty; then
	ok 1 "rmmod vmdirty"
else
	notok 1 "rmmod vmdirty"
	grep vmdirty /proc/modules | sed 's/^/# /'
fi
exit $rc
