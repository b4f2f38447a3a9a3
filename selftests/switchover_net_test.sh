#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Faults after the pause: the link between the agents goes down, or netem
# delays it past the timeouts, at each message of the handover (final
# round, state, READY, COMMIT, STARTED).  After each, exactly one copy of
# the guest runs (where the outcome was in doubt, once the link is back and
# the source asked the destination, which kept its answer); it checks
# clean; vmdirty.ko keeps no session; both agents say what happened.
# lib/switchover.sh has the mechanics, Documentation/migration.rst the
# expected outcome of each case.
set -u
. "$(dirname "$0")/lib/migrate.sh"
. "$(dirname "$0")/lib/switchover.sh"

echo "TAP version 13"
echo "1..10"
sw_dst_t="--timeout 2000 --hold 3 --answer-for 15"
sw_idx=60
netem=1
modprobe sch_netem 2>/dev/null || [ -d /sys/module/sch_netem ] || netem=0

# The fault of case NAME: the link down, or 5 s of delay each way (past
# every timeout); and its end.
fault_on() {
	case $1 in
	*-link-down) link_down ;;
	*-delay) delay_on 5000ms ;;
	esac
}
fault_off() {
	case $1 in
	*-link-down) link_up ;;
	*-delay) delay_off ;;
	esac
}

# No READY in time: the source resumes and tells the destination, which
# discards (on the message, or on its idle timeout).
no_ready_source_resumes() {
	fault_on "$1"
	sw_continue
	sw_check wait_for 60 src_is running
	fault_off "$1"
	sw_check wait_for 60 not kill -0 "$sw_dpid"
	sw_check not grep -q "the guest runs here" "$tmp/$1.dstlog"
}

# READY lost or late: the source resumes; the destination's hold ends and
# it discards, keeping the answer for a source that might ask.
ready_lost_source_resumes() {
	fault_on "$1"
	sw_continue
	sw_check wait_for 60 src_is running
	sw_check wait_for 30 grep -q "discarded:" "$tmp/$1.dstlog"
	sw_check not grep -q "the guest runs here" "$tmp/$1.dstlog"
	fault_off "$1"
}

# COMMIT lost or late: in doubt, nothing runs; the destination's hold ends
# and it discards; once the link is back the source asks, hears
# "discarded", and resumes.
commit_lost_resolved_discarded() {
	fault_on "$1"
	sw_continue
	sw_check wait_for 30 src_is in-doubt
	sw_check wait_for 30 grep -q "discarded:" "$tmp/$1.dstlog"
	sw_check not dst_is running
	fault_off "$1"
	sw_check wait_for 60 src_is running
	# The answer comes by QUERY, or as the destination's own late ERROR.
	sw_check grep -qE "says the session is discarded|late DISCARDED" "$tmp/$1.srclog"
}

# STARTED lost or late: the guest runs there; the source, in doubt, stays
# paused until the answer (a late STARTED, or QUERY: running).
started_lost_resolved_running() {
	fault_on "$1"
	sw_continue
	sw_check wait_for 30 src_is in-doubt
	sw_check dst_is running
	fault_off "$1"
	sw_check wait_for 60 src_migrated "$1"
	sw_check dst_is running
}

# sw_net_case NAME ...: sw_case, skipped where netem is missing.
sw_net_case() {
	if [[ $1 == *-delay ]] && [ $netem -eq 0 ]; then
		sw_idx=$((sw_idx + 1))
		skip "$1" "no sch_netem"
		return
	fi
	sw_case "$@"
}

for phase in final-round state; do
	for f in link-down delay; do
		sw_net_case $phase-$f src src-$phase no_ready_source_resumes \
			"no READY in time: the VM resumed on the source, the destination discarded"
	done
done
for f in link-down delay; do
	sw_net_case ready-$f dst dst-ready ready_lost_source_resumes \
		"READY lost or late: the VM resumed on the source, the destination's hold ended and it discarded"
done
for f in link-down delay; do
	# Stopped with READY in hand, before COMMIT goes out.
	sw_net_case commit-$f src src-ready commit_lost_resolved_discarded \
		"COMMIT lost or late: in doubt, nothing ran; the destination discarded at the end of its hold, and the source resumed on its answer"
done
sw_run_for=20
for f in link-down delay; do
	sw_net_case started-$f dst dst-started started_lost_resolved_running \
		"STARTED lost or late: in doubt with the guest running there only; resolved to migrated once the source heard back"
done

mig_done
