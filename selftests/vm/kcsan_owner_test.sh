#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# kcsan-owner.awk against a real KCSAN report of the debug kernel
# (testdata/kcsan-kvm-request.log: KVM's own race, reached from the
# module's drain worker, so vmdirty frames sit below KVM's) and that report
# with one racing access moved into the module.  Catches a classifier that
# looks at every frame (KVM's races would fail every KCSAN run) or at none
# of the access frames (the module's own races would pass).
set -u
here=$(cd "$(dirname "$0")" && pwd)
log=$here/testdata/kcsan-kvm-request.log
n=0
fail=0

check() {
	local name=$1 want=$2 got
	got=$(awk -f "$here/kcsan-owner.awk" | cut -f1 | tr '\n' ' ')
	n=$((n + 1))
	if [ "$got" = "$want" ]; then
		echo "ok $n kcsan_owner: $name"
	else
		echo "not ok $n kcsan_owner: $name: got '$got', want '$want'"
		fail=1
	fi
}

echo "TAP version 13"
echo "1..7"
check "kvm_race_with_vmdirty_callers_is_kernel" "kernel " <"$log"
# The writer's first frame in the module: the module's access.
check "first_access_in_vmdirty" "vmdirty " < <(sed '0,/ kvm_make_vcpu_request+0x70\/0x140 \[kvm\]/s// vmdirty_drain_work+0x70\/0x140 [vmdirty]/' "$log")
# The reader's first frame in the module.
check "second_access_in_vmdirty" "vmdirty " < <(sed 's/ vcpu_run+0x1001\/0x26f0 \[kvm\]/ vmdirty_harvest_locked+0x10\/0x20 [vmdirty]/' "$log")
# A title that names the module (KCSAN's own attribution).
check "title_names_vmdirty" "vmdirty " < <(sed 's/data-race in kvm_make_vcpu_request \[kvm\]/data-race in vmdirty_drain_work [vmdirty]/' "$log")
# Only the caller below the reader's first frame in the module: KVM's.
check "vmdirty_caller_below_access_is_kernel" "kernel " < <(sed 's/ kvm_arch_vcpu_ioctl_run+0x412\/0xc30 \[kvm\]/ vmdirty_drain_work+0x4\/0x8 [vmdirty]/' "$log")
# KCSAN's one-sided form: only the reader's stack is known.
check "unknown_origin_read_in_vmdirty" "vmdirty " < <(sed -e 's/^\(\[[ 0-9.]*\] \)write (marked) to .*/\1race at unknown origin, with read to 0xff40 of 4 bytes by task 1 on cpu 0:/' \
    -e 's/ kvm_make_vcpu_request+0x70\/0x140 \[kvm\]/ vmdirty_read_cursor+0x1\/0x2 [vmdirty]/' "$log")
# Two reports in one log, each judged on its own, in order.
check "each_report_on_its_own" "kernel vmdirty kernel " < <({ cat "$log"; sed 's/ vcpu_run+0x1001\/0x26f0 \[kvm\]/ vmdirty_harvest_locked+0x10\/0x20 [vmdirty]/' "$log"; cat "$log"; })
exit $fail
